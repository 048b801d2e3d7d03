"""Protocol constants: changing any of these is a protocol version bump (docs/protocol.md).

Tunables that do not change the wire format live in ``peerline.proto.node.NodeConfig``.
"""

from typing import Final

PROTOCOL_VERSION: Final = 1
"""Byte 1 of every Peerline packet (docs/protocol.md §3)."""

PROLOGUE: Final = b"peerline/1"
"""Noise prologue prefix; the initiation's 6-byte header is appended (docs/protocol.md §4.2)."""

MAX_DATAGRAM: Final = 1232
"""Largest datagram Peerline sends or accepts: IPv6 minimum MTU 1280 - 40 (IPv6) - 8 (UDP)."""

# Packet types: the first byte of every datagram on the shared socket (docs/protocol.md §3).
# 0-3 stay free for STUN (RFC 7983 §7); Peerline uses 0x50-0x5F, outside every RFC 7983 range.
STUN_FIRST_BYTE_MAX: Final = 3
TYPE_HANDSHAKE_INITIATION: Final = 0x50
TYPE_HANDSHAKE_RESPONSE: Final = 0x51
TYPE_COOKIE_REPLY: Final = 0x52
TYPE_TRANSPORT: Final = 0x53
TYPE_OVERLAY: Final = 0x54  # the overlay (DHT), docs/protocol.md §9
TYPE_RELAY: Final = 0x55  # session packets forwarded by a relay, docs/protocol.md §11

RELAY_HEADER_SIZE: Final = 6
"""type | version | channel (u32): what a relay adds in front of a session packet (§11.2)."""

# Session timing and limits (docs/protocol.md §5.4); the same values WireGuard found workable.
REKEY_AFTER_TIME: Final = 120.0
REJECT_AFTER_TIME: Final = 180.0
REKEY_AFTER_MESSAGES: Final = 2**60
REJECT_AFTER_MESSAGES: Final = 2**64 - 2**13 - 1
