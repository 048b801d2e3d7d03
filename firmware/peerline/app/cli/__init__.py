"""The ``peerline`` command: set up a phone, run it, and talk to a running one.

``parser`` is the command line (help, man page and completion come from it), ``local`` the
commands without a phone, ``remote`` and ``dialing`` those for a running one, ``output`` the one
formatter, ``exits`` the exit codes, ``main`` ties them. Importing this stays light (no crypto,
no asyncio): ``peerline status`` should answer in well under 100 ms.
"""

from .main import main

__all__ = ["main"]
