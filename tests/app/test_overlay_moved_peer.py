"""Messaging a phone that moved, when the storers that answer first still hold its old record.

Four real phones on loopback. B's record is stored on A, C and D. B restarts on a new port
while A and D are paused (SIGSTOP), so only C gets its new record. Then C and B are paused
while A looks B up: A's quick lookup ends with the old record (its own copy and D's agree), and
its handshake to the old port goes unanswered. A few seconds later A looks again thoroughly,
finds C's newer record, follows it, and the message arrives. That lookup also repairs the
stale copies (A's and D's).
"""

import os
import re
import signal
from pathlib import Path

from daemons import Daemon, start_daemon
from test_overlay_daemons import control, found_port, wait_until


def pause(*phones: Daemon) -> None:
    for d in phones:
        os.kill(d.proc.pid, signal.SIGSTOP)


def resume(*phones: Daemon) -> None:
    for d in phones:
        os.kill(d.proc.pid, signal.SIGCONT)


def stored_on(d: Daemon) -> list[int]:
    """How many storers took each of the phone's publishes, from its log."""
    log = (d.data / "daemon.log").read_text()
    return [int(n) for n in re.findall(r"directory record \d+ stored on (\d+) nodes", log)]


def test_a_stale_record_from_the_first_storers_is_followed_up_with_a_thorough_lookup(
    tmp_path: Path,
) -> None:
    c = start_daemon(tmp_path / "c", "--no-lan")
    phones = [c]
    paused: list[Daemon] = []
    try:
        a, d = (start_daemon(tmp_path / n, "--no-lan", "--seed", c.addr) for n in "ad")
        phones += [a, d]
        wait_until(
            lambda: all(control(p, "status")["overlay"]["joined"] for p in phones),
            30,
            "A, C and D to join",
        )
        b = start_daemon(tmp_path / "b", "--no-lan", "--seed", c.addr)
        phones.append(b)
        wait_until(lambda: stored_on(b)[-1:] == [3], 30, "B's record on A, C and D")
        wait_until(lambda: found_port(a, b) == b.port, 30, "A to resolve B")

        old_port = b.port
        b.stop()
        paused = [a, d]
        pause(a, d)
        b = start_daemon(b.data, "--no-lan", "--seed", c.addr)  # a new port
        phones[3] = b
        assert b.port != old_port
        wait_until(lambda: len(stored_on(b)) == 2, 30, "B's new record on C")

        paused = [c, b]
        pause(c, b)
        resume(a, d)
        sent = control(a, "msg.send", {"number": b.number, "text": "moved?", "wait_s": 0})
        assert sent["status"] == "sent"
        resume(c, b)
        paused = []

        def delivered() -> bool:
            out = [m for m in control(a, "msg.list", {"limit": 10}) if m["id"] == sent["id"]]
            return bool(out) and out[0]["status"] == "delivered"

        wait_until(delivered, 20, "the message to reach B at its new port")
        log = (a.data / "daemon.log").read_text()
        assert f"moved to 127.0.0.1:{b.port} (newer record)" in log, log[-3000:]
        assert control(a, "status")["overlay"]["counters"]["records_repaired"] >= 1
        wait_until(lambda: found_port(d, b) == b.port, 10, "D to find B's new record")
    finally:
        resume(*paused)
        for p in phones:
            if p.proc.poll() is None:
                p.stop()
