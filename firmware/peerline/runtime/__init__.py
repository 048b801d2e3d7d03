"""The only asyncio code: drives sans-I/O protocol objects with real sockets and timers."""
