"""``peerline events --json`` follows a real phone's events (control-api.md ``events``).

Two daemons on loopback. While phone A's event stream runs (the CLI, a subprocess), phone B,
which A has never seen, sends A a message and calls it; A answers and B hangs up. A's stream
must show, in order: the message (with its text and, once derived, B's number), the incoming
call with the caller's identity, and the call's states, ringing, active, ended.
"""

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemons import Daemon, cli, start_daemon

Event = dict[str, Any]


class Follower:
    """``peerline events --json`` as a subprocess; its lines on a queue."""

    def __init__(self, data: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "peerline", "events", "--json", "--data", str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[Event] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pred: Callable[[Event], bool], timeout: float = 20.0) -> Event:
        deadline = time.monotonic() + timeout
        for event in self.seen:
            if pred(event):
                return event
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            event = json.loads(line)
            self.seen.append(event)
            if pred(event):
                return event
        raise AssertionError(f"no such event within {timeout} s; saw {self.seen}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


def test_events_json_shows_a_message_an_incoming_call_and_its_states(tmp_path: Path) -> None:
    a = start_daemon(tmp_path / "a")
    follower = Follower(a.data)
    b: Daemon | None = None
    try:
        deadline = time.monotonic() + 10.0
        while a.status()["events"]["subscribers"] < 1:  # the stream is open before anything
            assert time.monotonic() < deadline, "peerline events never subscribed"
            time.sleep(0.05)
        # B starts only now: whatever makes A derive B's number (B's record stored at A as it
        # joins, its message, its call) happens while the stream is open.
        b = start_daemon(tmp_path / "b", "--seed", a.addr)
        cli(b.data, "msg", "send", a.number, "hello from b")
        message = follower.wait_for(lambda e: e["event"] == "message_received")
        assert message["text"] == "hello from b" and message["peer_key"] == b.public_key
        dialled = json.loads(cli(b.data, "dial", a.number, "--json").stdout)
        call_id = dialled["call"]["call_id"]
        incoming = follower.wait_for(lambda e: e["event"] == "incoming_call")
        assert incoming["call_id"] == call_id and incoming["peer_key"] == b.public_key
        if incoming["number"] is None:  # derived from B's key while it rings
            named = follower.wait_for(
                lambda e: e["event"] == "caller_identified" and e["call_id"] == call_id
            )
            assert named["number"] == b.number
        else:
            assert incoming["number"] == b.number
        cli(a.data, "answer")
        cli(b.data, "hangup")
        follower.wait_for(
            lambda e: (
                e["event"] == "call_state_changed"
                and e["call_id"] == call_id
                and e["state"] == "ended"
            )
        )
        states = [
            (e["state"], e["reason"])
            for e in follower.seen
            if e["event"] == "call_state_changed" and e["call_id"] == call_id
        ]
        assert states == [("incoming", None), ("active", None), ("ended", "remote_hangup")]
        learned = [e for e in follower.seen if e["event"] == "number_learned"]
        assert any(e["public_key"] == b.public_key and e["number"] == b.number for e in learned)
    finally:
        follower.stop()
        for d in (b, a):
            if d is not None:
                d.stop(timeout=5)
    assert follower.proc.returncode is not None
