"""Telling systemd how the phone is: ready, reloading, stopping, its status line, and that the
event loop is alive (the watchdog), by the sd_notify protocol.

The protocol (sd_notify(3)) is one datagram of ``KEY=value`` lines to the ``AF_UNIX`` socket
named in ``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace). Written here rather
than taken from a library: it is a dozen lines, the maintained bindings (python-systemd) need
libsystemd's headers to build, and the pure-Python ones are unmaintained.

Without ``$NOTIFY_SOCKET`` (not started by systemd) ``from_environ`` gives None and the phone
tells nobody. A send never raises and waits at most ``SEND_TIMEOUT_S`` for room at systemd's
end: a notification that cannot be sent is logged once, and the phone goes on.
"""

import contextlib
import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

MAX_STATUS = 200
"""A status line longer than this is cut (systemctl shows one line)."""
SEND_TIMEOUT_S = 0.25


class ServiceNotifier:
    """sd_notify to ``address``. ``watchdog_s``: the watchdog period systemd asked for
    (``$WATCHDOG_USEC``), None when it asked for none."""

    def __init__(self, address: str, *, watchdog_s: float | None = None) -> None:
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_s = watchdog_s
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        # A full queue at systemd's end waits this long, then the message is dropped: READY
        # must not be lost to a burst, and the loop must not hang on a stuck manager.
        self._sock.settimeout(SEND_TIMEOUT_S)
        self._failed = False
        self.sent = 0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> "ServiceNotifier | None":
        address = environ.get("NOTIFY_SOCKET", "")
        if not address or not (address.startswith("/") or address.startswith("@")):
            return None
        watchdog_s = None
        usec, pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog_s = int(usec) / 1e6
        return cls(address, watchdog_s=watchdog_s)

    def ready(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={_line(status)}")

    def status(self, status: str) -> None:
        self._send(f"STATUS={_line(status)}")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def reloading(self) -> None:
        """A reload begins (``ready`` again when it is done)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def close(self) -> None:
        self._sock.close()

    def _send(self, message: str) -> None:
        try:
            self._sock.sendto(message.encode(), self.address)
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning("systemd notification not sent (%s); going on without", exc)
            return
        self.sent += 1


def _line(text: str) -> str:
    """One line, printable, bounded: a status never breaks the KEY=value framing."""
    flat = "".join(c if c.isprintable() else " " for c in text)
    return flat[:MAX_STATUS]


def journal_stream(stream: object, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``stream`` is connected to the journal (``$JOURNAL_STREAM`` names its device and
    inode): then the journal adds the time, and ``<N>`` prefixes give each line its priority."""
    wanted = environ.get("JOURNAL_STREAM", "")
    dev, _, ino = wanted.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    with contextlib.suppress(OSError, ValueError, AttributeError):
        st = os.fstat(stream.fileno())  # type: ignore[attr-defined]
        return (st.st_dev, st.st_ino) == (int(dev), int(ino))
    return False


class JournalFormatter(logging.Formatter):
    """A log line for the journal: ``<priority>logger: message``, no time (journald keeps it).

    Priorities are syslog's (sd-daemon(3)): error 3, warning 4, info 6, debug 7; critical 2.
    A traceback's lines follow on their own lines at the same priority."""

    PRIORITIES = (
        (logging.CRITICAL, 2),
        (logging.ERROR, 3),
        (logging.WARNING, 4),
        (logging.INFO, 6),
    )

    def format(self, record: logging.LogRecord) -> str:
        priority = next((p for level, p in self.PRIORITIES if record.levelno >= level), 7)
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())
