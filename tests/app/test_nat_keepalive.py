"""Keepalives hold a NAT mapping open: a phone behind a NAT that forgets idle UDP after 4 s
stays reachable by number when it pings its relay every 2 s, and the cost is reported."""

import time
from pathlib import Path

import pytest
from lab_phones import PORT, control, start_phone, wait_until

from netlab import Lab, NatBehaviour

pytestmark = pytest.mark.netns


def test_keepalives_hold_a_short_nat_mapping_and_their_cost_is_reported(
    lab: Lab, tmp_path: Path
) -> None:
    seed_host = lab.host("seed")
    caller_host = lab.host("caller")
    router = lab.router("home", nat=NatBehaviour.PORT_RESTRICTED, udp_timeout_s=4)
    callee_host = lab.host("callee", behind=router)
    seed, caller, callee = tmp_path / "seed", tmp_path / "caller", tmp_path / "callee"
    start_phone(seed_host, seed, keepalive_s=15)
    wait_until(lambda: control(seed, "status"), 15, "the seed phone")
    start_phone(caller_host, caller, "--seed", f"{seed_host.addr}:{PORT}", keepalive_s=15)
    start_phone(callee_host, callee, "--seed", f"{seed_host.addr}:{PORT}", keepalive_s=2)
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
