"""Real phones in the network lab: start a daemon inside a lab host, talk to it, wait on it."""

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netlab import Host
from peerline.app.control_client import call
from peerline.app.paths import CONTROL_SOCKET_NAME

PORT = 4720


def control(data: Path, cmd: str, args: dict[str, Any] | None = None) -> Any:
    return call(data / CONTROL_SOCKET_NAME, cmd, args, timeout=40)


def start_phone(
    host: Host, data: Path, *extra: str, keepalive_s: float | None = None
) -> "subprocess.Popen[bytes]":
    """``peerline init`` + ``peerline run`` inside ``host``: IPv4 only, no LAN discovery."""
    subprocess.run(
        [sys.executable, "-m", "peerline", "init", "--data", str(data)],
        check=True,
        capture_output=True,
    )
    network = 'bind6 = ""\n' + (f"keepalive_s = {keepalive_s}\n" if keepalive_s else "")
    level = os.environ.get("PEERLINE_LAB_LOG", "info")  # "debug" to see every packet decision
    (data / "peerline.toml").write_text(
        f'[overlay]\nlan = false\n\n[log]\nlevel = "{level}"\n\n[network]\n{network}'
    )
    log = (data / "daemon.log").open("w")
    proc = host.popen(
        [sys.executable, "-m", "peerline", "run", "--data", str(data), "--port", str(PORT), *extra],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    log.close()
    return proc


def wait_until(pred: Any, timeout: float, what: str, logs: Sequence[Path] = ()) -> None:
    """Poll ``pred`` (errors count as "not yet": a phone still starting) until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception:  # still starting
            pass
        time.sleep(0.1)
    tails = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")
