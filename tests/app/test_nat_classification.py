"""A real phone behind each lab NAT classifies it with a real STUN server (coturn, RFC 5780).

The lab (tests/netlab) builds a public STUN host with two addresses running coturn, a NAT router
of each RFC 4787 behaviour, and a phone behind it running the real daemon with that STUN
server configured. What the phone reports in ``status --json`` must be the router's recipe.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from netlab import Lab, NatBehaviour
from peerline.app.control_client import call
from peerline.app.paths import CONTROL_SOCKET_NAME

pytestmark = pytest.mark.netns
SECOND_ADDR = "198.51.100.250"


def start_coturn(lab: Lab, tmp: Path) -> str:
    exe = shutil.which("turnserver")
    if exe is None:
        pytest.skip("coturn's turnserver is not installed (scripts/setup --dev installs it)")
    stun = lab.host("stun")
    stun.run(["ip", "addr", "add", f"{SECOND_ADDR}/24", "dev", "eth0"])
    stun.popen(
        [
            exe,
            "-n",
            "--stun-only",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            f"--listening-ip={stun.addr}",
            f"--listening-ip={SECOND_ADDR}",
            "--listening-port=3478",
            f"--pidfile={tmp / 'turn.pid'}",
            "--log-file=stdout",
            "--simple-log",
            "--no-stdout-log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return stun.addr


def phone_status(data: Path) -> Any:
    return call(data / CONTROL_SOCKET_NAME, "status", None, timeout=10)


@pytest.mark.parametrize(
    "behaviour",
    [
        NatBehaviour.FULL_CONE,
        NatBehaviour.ADDRESS_RESTRICTED,
        NatBehaviour.PORT_RESTRICTED,
        NatBehaviour.SYMMETRIC,
    ],
    ids=lambda b: b.name.lower(),
)
def test_a_phone_reports_its_routers_nat_behaviour(
    lab: Lab, tmp_path: Path, behaviour: NatBehaviour
) -> None:
    stun_addr = start_coturn(lab, tmp_path)
    router = lab.router("home", nat=behaviour)
    phone = lab.host("phone", behind=router)
    data = tmp_path / "phone"
    subprocess.run(
        [sys.executable, "-m", "peerline", "init", "--data", str(data)],
        check=True,
        capture_output=True,
    )
    (data / "peerline.toml").write_text(
        f'[overlay]\nlan = false\n\n[nat]\nstun_servers = ["{stun_addr}:3478"]\n'
    )
    log = (tmp_path / "phone.log").open("w")
    phone.popen(
        [sys.executable, "-m", "peerline", "run", "--data", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    log.close()
    deadline = time.monotonic() + 30
    seen: Any = None
    while time.monotonic() < deadline:
        try:
            seen = phone_status(data)["nat"]["behaviour"]
        except Exception:  # still starting
            seen = None
        if seen is not None:
            break
        time.sleep(0.25)
    assert seen is not None, (tmp_path / "phone.log").read_text()[-3000:]
    assert seen["mapping"] == behaviour.mapping.value, seen
    assert seen["filtering"] == behaviour.filtering.value, seen
    assert seen["mapped"][0] == router.addr
