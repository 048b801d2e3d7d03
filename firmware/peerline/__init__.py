"""Peerline: a serverless, end-to-end encrypted desk phone.

Import direction: ``wire`` <- ``proto`` <- ``runtime``/``sim`` <- ``app``.
``proto`` and ``wire`` are sans-I/O: they never touch sockets, threads, clocks or files.
"""

__version__ = "0.1.0"
