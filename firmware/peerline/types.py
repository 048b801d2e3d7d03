"""Small shared types."""

Addr = tuple[str, int]
"""A UDP endpoint: (host, port). IPv6 hosts are plain strings without brackets."""
