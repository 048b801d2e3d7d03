"""sd_notify by hand (peerline.runtime.notify): the messages on a real socket, the watchdog
period from the environment, and the journal's line format."""

import logging
import os
import socket
import sys
from pathlib import Path

from peerline.runtime.notify import JournalFormatter, ServiceNotifier, journal_stream


def test_no_notify_socket_means_nobody_to_tell() -> None:
    assert ServiceNotifier.from_environ({}) is None
    assert ServiceNotifier.from_environ({"NOTIFY_SOCKET": "relative/path"}) is None


def test_the_watchdog_period_is_for_this_process_only() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"}
    mine = ServiceNotifier.from_environ(env | {"WATCHDOG_PID": str(os.getpid())})
    theirs = ServiceNotifier.from_environ(env | {"WATCHDOG_PID": "1"})
    assert mine is not None and mine.watchdog_s == 30.0
    assert theirs is not None and theirs.watchdog_s is None


def test_messages_arrive_on_a_path_and_in_the_abstract_namespace(tmp_path: Path) -> None:
    for address in (str(tmp_path / "n.sock"), f"@peerline-test-{os.getpid()}"):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        server.bind("\0" + address[1:] if address.startswith("@") else address)
        server.settimeout(2)
        notifier = ServiceNotifier.from_environ({"NOTIFY_SOCKET": address})
        assert notifier is not None
        notifier.ready("4821 5590 1736 Front desk:\nidle\x00")
        notifier.watchdog()
        notifier.stopping()
        got = [server.recv(4096).decode() for _ in range(3)]
        assert got[0] == "READY=1\nSTATUS=4821 5590 1736 Front desk: idle "  # one line
        assert got[1:] == ["WATCHDOG=1", "STOPPING=1"]
        notifier.close()
        server.close()


def test_a_missing_socket_is_logged_once_and_never_raises(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    notifier = ServiceNotifier(str(tmp_path / "gone.sock"))
    for _ in range(3):
        notifier.watchdog()
    assert notifier.sent == 0
    assert sum("not sent" in r.getMessage() for r in caplog.records) == 1


def test_journal_stream_matches_the_very_stream(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with path.open("w") as f:
        st = os.fstat(f.fileno())
        assert journal_stream(f, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not journal_stream(f, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not journal_stream(f, {})
        assert not journal_stream(f, {"JOURNAL_STREAM": "junk"})


def test_journal_lines_carry_syslog_priorities_and_no_time() -> None:
    fmt = JournalFormatter()

    def line(level: int, msg: str) -> str:
        return fmt.format(logging.LogRecord("peerline", level, __file__, 1, msg, None, None))

    assert line(logging.ERROR, "boom") == "<3>peerline: boom"
    assert line(logging.WARNING, "hm") == "<4>peerline: hm"
    assert line(logging.INFO, "ok") == "<6>peerline: ok"
    assert line(logging.DEBUG, "x") == "<7>peerline: x"
    assert line(logging.CRITICAL, "a\nb") == "<2>peerline: a\n<2>b"
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord(
            "peerline", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    assert all(ln.startswith("<3>") for ln in fmt.format(record).splitlines())
