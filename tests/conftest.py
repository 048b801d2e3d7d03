"""Fixtures shared by every test directory."""

from coturn_server import coturn

__all__ = ["coturn"]
