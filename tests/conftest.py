"""Fixtures shared by every test directory."""

from coturn_server import coturn

# The network lab (tests/netlab): the `lab` fixture for any test that builds namespaces.
pytest_plugins = ["netlab.plugin"]

__all__ = ["coturn"]
