"""Keepalives hold a NAT mapping open: a phone behind a NAT that forgets idle UDP after 4 s
stays reachable by number when it pings its relay every 2 s, and the cost is reported."""

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from netlab import Host, Lab, NatBehaviour
from peerline.app.control_client import call
from peerline.app.daemon import CONTROL_SOCKET_NAME

pytestmark = pytest.mark.netns
PORT = 4720


def control(data: Path, cmd: str, args: dict[str, Any] | None = None) -> Any:
    return call(data / CONTROL_SOCKET_NAME, cmd, args, timeout=40)


def start_phone(host: Host, data: Path, keepalive_s: float, *extra: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "peerline", "init", "--data", str(data)],
        check=True,
        capture_output=True,
    )
    (data / "peerline.toml").write_text(
        f'[overlay]\nlan = false\n\n[network]\nbind6 = ""\nkeepalive_s = {keepalive_s}\n'
    )
    log = (data / "daemon.log").open("w")
    host.popen(
        [sys.executable, "-m", "peerline", "run", "--data", str(data), "--port", str(PORT), *extra],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    log.close()


def wait_until(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception:  # still starting
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_keepalives_hold_a_short_nat_mapping_and_their_cost_is_reported(
    lab: Lab, tmp_path: Path
) -> None:
    seed_host = lab.host("seed")
    caller_host = lab.host("caller")
    router = lab.router("home", nat=NatBehaviour.PORT_RESTRICTED, udp_timeout_s=4)
    callee_host = lab.host("callee", behind=router)
    seed, caller, callee = tmp_path / "seed", tmp_path / "caller", tmp_path / "callee"
    start_phone(seed_host, seed, 15)
    wait_until(lambda: control(seed, "status"), 15, "the seed phone")
    start_phone(caller_host, caller, 15, "--seed", f"{seed_host.addr}:{PORT}")
    start_phone(callee_host, callee, 2, "--seed", f"{seed_host.addr}:{PORT}")
    wait_until(lambda: bool(control(callee, "status")["overlay"]["relays"]), 30, "a relay")
    number = control(callee, "id")["number"]
    wait_until(
        lambda: control(caller, "lookup", {"number": number})["records"][0]["relays"],
        30,
        "the callee's record with its relay",
    )
    time.sleep(10)  # idle: 2.5 times the NAT's UDP timeout
    sent = control(caller, "msg.send", {"number": number, "text": "still there?", "wait_s": 15})
    assert sent["status"] == "delivered", sent
    overlay = control(callee, "status")["overlay"]
    # One relay, a 68-byte ping every 2 s (the pongs cost about as much again).
    assert 10 <= overlay["keepalive_bytes_per_s"] * 2 <= 200, overlay
