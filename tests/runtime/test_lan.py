"""LAN discovery for real (runtime.lan): three phones over mDNS inside a network namespace.

The namespace keeps mDNS (UDP 5353, group 224.0.0.251) off the host's network: only its own
loopback, with multicast switched on and routed there, carries the traffic. The phones run in
``lan_netns_helper.py`` (one process, three ``LanDriver``s); this test checks what it reports.
docs/lan.md §4 describes the adapter.
"""

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HELPER = Path(__file__).with_name("lan_netns_helper.py")
pytestmark = pytest.mark.netns


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    """A fresh namespace whose loopback carries multicast; always deleted afterwards."""
    if shutil.which("ip") is None:
        pytest.skip("LAN test needs the `ip` command (iproute2) to create a network namespace")
    if os.geteuid() != 0:
        pytest.skip("LAN test needs root to create a network namespace (CI runs as root)")
    name = f"peerline-lan-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace here: {exc.stderr.strip()}")
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "set", "lo", "multicast", "on")
        _ip("-n", name, "route", "add", "224.0.0.0/4", "dev", "lo")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def report(netns: str) -> dict[str, Any]:
    """Run the helper once for the module (about 7 s) and parse what it printed."""
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, str(HELPER)],
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )
    assert proc.returncode == 0, f"helper failed:\n{proc.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_lan_phones_discover_each_other_with_verified_extensions(report: dict[str, Any]) -> None:
    """Each phone sees the other two, verified, holding the extension each claims; the
    contested 201 went to exactly one of B and C, and the configured 150 to A."""
    assert report["settled"], json.dumps(report["phones"], indent=1)
    phones = {p["name"]: p for p in report["phones"]}
    assert phones["A"]["extension"] == "150"
    assert {phones["B"]["extension"], phones["C"]["extension"]} & {"201"} == {"201"}
    extensions = [p["extension"] for p in phones.values()]
    assert len(set(extensions)) == 3
    for me in phones.values():
        others = {p["number"]: p for p in phones.values() if p is not me}
        assert {peer["number"] for peer in me["peers"]} == set(others)
        for peer in me["peers"]:
            other = others[peer["number"]]
            assert peer["key"] == other["key"]
            assert peer["extension"] == other["extension"]
            assert peer["resolves"]
            assert peer["host"] == "127.0.0.1"
            assert peer["port"] == {"A": 7001, "B": 7002, "C": 7003}[other["name"]]
        assert me["established"]
        assert me["pending_answers"] >= 2  # numbers were derived off the loop, then verified
        assert me["status"]["discovery"]["callback_errors"] == 0


def test_lan_loser_of_a_contest_re_registers_its_new_extension(report: dict[str, Any]) -> None:
    """B and C both wanted 201: one kept it; the other moved and updated its zeroconf record."""
    phones = {p["name"]: p for p in report["phones"]}
    loser = next(p for p in (phones["B"], phones["C"]) if p["extension"] != "201")
    winner = phones["C" if loser["name"] == "B" else "B"]
    assert loser["moves"][0]["old"] == "201"
    assert loser["moves"][0]["winner"] == winner["key"]
    assert winner["moves"] == []
    # Both probes started at one instant (the helper), so both claims are new when they meet,
    # or both established if mDNS took longer than a probe: the smaller key keeps 201 either
    # way (docs/lan.md §3.1).
    assert bytes.fromhex(winner["key"]) < bytes.fromhex(loser["key"])
    assert loser["status"]["discovery"]["updates"] >= 1  # moved (and established; may coalesce)


def test_lan_malformed_records_are_counted_not_fatal(report: dict[str, Any]) -> None:
    for phone in report["phones"]:
        assert phone["status"]["discovery"]["malformed"] >= 1


def test_lan_goodbye_removes_a_phone_from_the_others(report: dict[str, Any]) -> None:
    """close() sends mDNS goodbyes: the others drop the phone at once, not after a TTL."""
    leave = report["leave"]
    assert leave["gone"] and leave["seconds"] < 3.0
    for phone in leave["phones"]:
        assert len(phone["peers"]) == 1
        assert "LanPeerGone" in phone["events"]
