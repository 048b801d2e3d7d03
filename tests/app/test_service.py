"""The phone as a systemd service, with real daemons: what it tells systemd on a notify socket
that the test binds (``$NOTIFY_SOCKET``), the watchdog from the event loop, SIGHUP reloading
the configuration under a live call, and the journal's log format (``$JOURNAL_STREAM``).

A stall is simulated with SIGSTOP: the event loop stops, so the watchdog pings stop (systemd
would then restart the phone: ``WatchdogSec`` in systemd/peerline.service). Every wait is
bounded; every daemon is stopped by its own pid.
"""

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daemons import LOOPBACK_CONFIG, Daemon, cli, cli_json, start_daemon

WATCHDOG_S = 0.6


class NotifySocket:
    """The systemd end of sd_notify: a datagram socket, drained by a thread (as systemd reads
    at once: a socket left unread fills, and the phone's sends then wait and drop)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self.cursor = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def pump(self, seconds: float) -> None:
        """Let ``seconds`` pass while the thread keeps what arrives."""
        time.sleep(seconds)

    def wait_for(
        self, pred: Callable[[dict[str, str]], bool], timeout: float = 15.0
    ) -> dict[str, str]:
        """The first message from the cursor on that ``pred`` accepts; the cursor moves past
        it (so two waits in a row see two messages, in order)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in range(self.cursor, len(self.messages)):
                if pred(self.messages[i][1]):
                    self.cursor = i + 1
                    return self.messages[i][1]
            self.pump(0.1)
        raise AssertionError(f"not heard in {timeout} s; heard {self.messages[-5:]}")

    def pings_between(self, start: float, end: float) -> int:
        return sum(1 for at, f in self.messages if start <= at <= end and "WATCHDOG" in f)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def systemd_env(notify: NotifySocket) -> dict[str, str]:
    return {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))}


def test_ready_status_and_watchdog_pings_that_stop_when_the_loop_stalls(
    tmp_path: Path, notify: NotifySocket
) -> None:
    d = start_daemon(tmp_path / "a", env=systemd_env(notify))
    try:
        ready = notify.wait_for(lambda f: f.get("READY") == "1")
        number = d.number[:4] + " " + d.number[4:8] + " " + d.number[8:]
        assert ready["STATUS"].startswith(f"{number} Peerline: ") and "idle" in ready["STATUS"]
        start = time.monotonic()
        notify.pump(1.5)
        assert notify.pings_between(start, time.monotonic()) >= 3  # every WATCHDOG_S / 3

        os.kill(d.proc.pid, signal.SIGSTOP)  # a stalled event loop
        try:
            notify.pump(0.3)  # a ping already on its way
            stalled = time.monotonic()
            notify.pump(1.5)
            assert notify.pings_between(stalled, time.monotonic()) == 0
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        resumed = time.monotonic()
        notify.pump(1.0)
        assert notify.pings_between(resumed, time.monotonic()) >= 1
    finally:
        d.stop()
    notify.pump(0.3)
    assert any(f.get("STOPPING") == "1" for _, f in notify.messages)
    assert d.proc.returncode == 0


ANSWERING = LOOPBACK_CONFIG + "\n[calls]\nauto_answer = true\n"


def test_sighup_applies_a_changed_setting_and_a_live_call_goes_on(
    tmp_path: Path, notify: NotifySocket
) -> None:
    a = start_daemon(tmp_path / "a", env=systemd_env(notify))
    b = start_daemon(tmp_path / "b", config=ANSWERING)
    try:
        notify.wait_for(lambda f: f.get("READY") == "1")
        cli(a.data, "peer", "add", b.number, b.public_key, b.addr)
        cli(b.data, "peer", "add", a.number, a.public_key, a.addr)
        cli(a.data, "dial", b.number, check=False)
        assert wait(lambda: call_state(a) == "active")
        received = reports(a)

        config = tmp_path / "a" / "peerline.toml"
        config.write_text(
            LOOPBACK_CONFIG
            + '\n[phone]\nname = "Front desk"\n[hardware]\nhotline = "482155901736"\n'
        )
        os.kill(a.proc.pid, signal.SIGHUP)
        notify.wait_for(lambda f: f.get("RELOADING") == "1")
        after = notify.wait_for(lambda f: f.get("READY") == "1")
        assert "Front desk" in after["STATUS"] and "in a call with" in after["STATUS"]
        st = cli_json(a.data, "status")
        assert st["name"] == "Front desk" and st["restart_pending"] == []
        assert st["hotline"] == "482155901736"
        assert call_state(a) == "active" and call_state(b) == "active"
        assert wait(lambda: reports(a) >= received + 3)  # the media path still carries

        config.write_text(LOOPBACK_CONFIG.replace("port = 0", "port = 4999"))
        os.kill(a.proc.pid, signal.SIGHUP)
        notify.wait_for(lambda f: f.get("RELOADING") == "1")
        notify.wait_for(lambda f: "restart to apply" in f.get("STATUS", ""))
        st = cli_json(a.data, "status")
        assert "network.port" in st["restart_pending"] and st["name"] == "Peerline"

        config.write_text("[network]\nport = 'seventy'\n")  # broken: refused, nothing changes
        os.kill(a.proc.pid, signal.SIGHUP)
        notify.wait_for(lambda f: f.get("RELOADING") == "1")
        notify.wait_for(lambda f: f.get("READY") == "1")
        assert call_state(a) == "active"
        assert "reload refused" in (tmp_path / "a" / "daemon.log").read_text()
    finally:
        a.stop()
        b.stop()


def test_under_systemd_the_log_carries_priorities_and_no_time_of_its_own(tmp_path: Path) -> None:
    data = tmp_path / "a"
    data.mkdir()
    log = data / "daemon.log"
    log.touch()
    st = os.stat(log)
    d = start_daemon(data, env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    d.stop()
    lines = [line for line in log.read_text().splitlines() if line]
    assert lines and all(line.startswith("<") for line in lines), lines[:5]
    assert any(line.startswith("<6>peerline: ") for line in lines)
    assert not any(line[3:7].isdigit() for line in lines)  # no year: journald keeps the time


def call_state(d: Daemon) -> str | None:
    calls = cli_json(d.data, "status")["calls"]
    return calls[0]["state"] if calls else None


def reports(d: Daemon) -> int:
    """Receiver reports heard: once a second both ways, silence or not (null audio)."""
    media = cli_json(d.data, "status")["calls"][0].get("media") or {}
    return int(media.get("counters", {}).get("reports_received", 0))


def wait(pred: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False
