"""Run real ``peerline`` daemons as subprocesses on loopback for end-to-end tests."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from peerline.app.control_client import call as control
from peerline.app.paths import CONTROL_SOCKET_NAME

LOOPBACK_CONFIG = """\
[network]
port = 0
bind4 = "127.0.0.1"
bind6 = ""

[overlay]
lan = false
"""


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``pred`` every 0.1 s until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def write_silence(path: Path, *, seconds: float) -> None:
    """A 16 kHz mono WAV of silence: ``file:`` audio for a phone whose speech is not scored."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(bytes(2 * round(16_000 * seconds)))


def calls_of(d: "Daemon") -> list[dict[str, Any]]:
    """``d``'s ``status`` calls, live ones first, over the control socket (polled often: a CLI
    process per poll would be slow)."""
    status = control(d.data / CONTROL_SOCKET_NAME, "status", timeout=10)
    calls: list[dict[str, Any]] = status["calls"]
    return calls


def live_calls(d: "Daemon") -> list[dict[str, Any]]:
    return [c for c in calls_of(d) if c["state"] != "ended"]


def call_with(d: "Daemon", peer: "Daemon") -> dict[str, Any] | None:
    """``d``'s live call with ``peer``, if any."""
    return next((c for c in live_calls(d) if c["peer_key"] == peer.public_key), None)


def state_with(d: "Daemon", peer: "Daemon") -> str | None:
    """The state of ``d``'s live call with ``peer`` (None: no such call)."""
    call = call_with(d, peer)
    return None if call is None else str(call["state"])


def cli(
    data: Path, *args: str, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "peerline", *args, "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"peerline {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def knows(caller: "Daemon", *callees: "Daemon") -> None:
    """``caller`` adds each callee as a peer by hand (``peer add``: number, key, address), as a
    user would with no directory on loopback."""
    for callee in callees:
        cli(caller.data, "peer", "add", callee.number, callee.public_key, callee.addr)


def cli_json(data: Path, *args: str) -> Any:
    return json.loads(cli(data, *args, "--json").stdout)


@dataclass
class Daemon:
    data: Path
    proc: subprocess.Popen[str]
    number: str
    public_key: str
    port: int
    host: str = "127.0.0.1"

    @property
    def addr(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def status(self) -> Any:
        return cli_json(self.data, "status")

    def stop(self, timeout: float = 2.0) -> float:
        """SIGTERM; returns seconds until exit. Kills and raises if slower than ``timeout``."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon did not exit within {timeout} s of SIGTERM") from None
        return time.monotonic() - t0


def start_daemon(
    data: Path,
    *extra: str,
    config: str = LOOPBACK_CONFIG,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Daemon:
    """``peerline init`` + ``peerline run`` on a loopback-only config with a free port.

    The daemon's log goes to ``DATA/daemon.log`` (a pipe nobody reads would fill and block it).
    Starting again on an existing ``data`` keeps its identity and database.
    """
    data.mkdir(parents=True, exist_ok=True)
    ident = cli_json(data, "id" if (data / "identity.key").exists() else "init")
    (data / "peerline.toml").write_text(config)
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    port_args = ["--port", str(port)] if port is not None else []
    log = (data / "daemon.log").open("a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "peerline", "run", "--data", str(data), *port_args, *extra],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    log.close()
    assert proc.stdout is not None
    try:
        text = _until_ready(proc.stdout, data)
        match = re.search(r"listen\s+udp (127\.0\.0\.1|\[::1\]):(\d+)", text)
        assert match, text
    except BaseException:  # a daemon that is not what the test wanted is not left running
        proc.kill()
        proc.wait()
        proc.stdout.close()
        raise
    return Daemon(
        data=data,
        proc=proc,
        number=ident["number"],
        public_key=ident["public_key"],
        port=int(match.group(2)),
        host=match.group(1).strip("[]"),
    )


def _until_ready(stdout: "IO[str]", data: Path) -> str:
    """What a starting daemon printed up to its ``ready`` line."""
    lines: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = stdout.readline()
        if not line:
            err = (data / "daemon.log").read_text()
            raise AssertionError(f"daemon exited early: {''.join(lines)}{err}")
        lines.append(line)
        if line.strip() == "ready":
            break
    return "".join(lines)
