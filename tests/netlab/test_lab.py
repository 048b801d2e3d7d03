"""netlab's own machinery: addressing, clean-up on every exit path, loss and delay."""

from __future__ import annotations

import select
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netlab import Lab, NatBehaviour, reap_stale, unavailable_reason
from netlab._ns import REGISTRY_DIR, delete_namespaces
from netlab.probe import reaches

pytestmark = pytest.mark.netns
TESTS = Path(__file__).resolve().parent.parent


def _existing() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _require_lab() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"netlab unavailable: {reason}")


def test_lab_addresses_nodes_from_documentation_and_private_ranges(lab: Lab) -> None:
    server = lab.host("server")
    carrier = lab.router("cgn", nat=NatBehaviour.SYMMETRIC, carrier=True)
    home = lab.router("home", behind=carrier)
    phone = lab.host("phone", behind=home)
    assert server.addr.startswith("198.51.100.")
    assert carrier.addr.startswith("203.0.113.")
    assert home.addr.startswith("100.64.") and home.upstream is carrier
    assert phone.addr.startswith("10.") and phone.upstream is home
    assert all(ns.startswith(f"pl-{lab.id}-") for ns in lab.namespaces)
    assert "inet " + phone.addr in phone.run(["ip", "-4", "addr", "show", "eth0"]).stdout
    sock, seen = phone.udp(), server.udp(5000)
    source = reaches(sock, (server.addr, 5000), seen)
    assert source is not None and source[0] == carrier.addr


def test_lab_deletes_namespaces_and_kills_processes_even_when_the_test_fails() -> None:
    _require_lab()
    with pytest.raises(RuntimeError, match="boom"), Lab() as lab:
        router = lab.router("r")
        host = lab.host("h", behind=router)
        tracked = host.popen(["sleep", "60"])
        # started behind the lab's back: found with `ip netns pids` and killed too
        stray = subprocess.Popen(["ip", "netns", "exec", router.ns, "sleep", "60"])
        names = lab.namespaces
        assert set(names) <= _existing()
        raise RuntimeError("boom")
    assert not set(names) & _existing()
    assert tracked.poll() is not None
    assert stray.wait(timeout=5) == -signal.SIGKILL


CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from netlab import Lab
lab = Lab().__enter__()
lab.host("h", behind=lab.router("r"))
print(" ".join(lab.namespaces), flush=True)
time.sleep(60)
"""


def _child_lab() -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(tests=str(TESTS))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    names = proc.stdout.readline().split()
    if len(names) != 3:  # the router, the switch, the host
        proc.kill()
        proc.wait()
        delete_namespaces(names)
        pytest.fail(f"the child lab did not start: {names}")
    return proc, names


def test_lab_is_deleted_when_its_process_gets_sigterm() -> None:
    _require_lab()
    proc, names = _child_lab()
    try:
        assert set(names) <= _existing()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == -signal.SIGTERM
        assert not set(names) & _existing()
    finally:
        proc.kill()
        proc.wait()
        delete_namespaces(names)


def test_lab_of_a_sigkilled_process_is_reaped_by_the_next_lab() -> None:
    _require_lab()
    proc, names = _child_lab()
    try:
        proc.kill()
        proc.wait(timeout=10)
        # Nothing could run on SIGKILL: the namespaces stay until a lab reaps them (this
        # call, or a lab started meanwhile by a concurrent test run).
        reap_stale()  # what Lab.__enter__ calls
        assert not set(names) & _existing()
        lab_id = names[0].split("-")[1]
        assert not (REGISTRY_DIR / f"{lab_id}.json").exists()
    finally:
        delete_namespaces(names)


def _delivery(sender: socket.socket, dest: tuple[str, int], receiver: socket.socket) -> float:
    """Share of 3000 datagrams that arrive (the receiver drains as they come)."""
    got = 0
    n = 3000
    for _ in range(n):
        sender.sendto(b"x", dest)
        while select.select([receiver], [], [], 0)[0]:
            receiver.recv(64)
            got += 1
    while select.select([receiver], [], [], 0.3)[0]:
        receiver.recv(64)
        got += 1
    return got / n


def test_loss_drops_the_configured_share_on_each_link(lab: Lab) -> None:
    """30 % on the router's WAN link, then 10 % on each host's link as well (two more
    crossings: 0.7 * 0.9 * 0.9 = 0.567 delivered), then none. 3000 datagrams: about ±0.03."""
    server = lab.host("server")
    router = lab.router("r")
    phone = lab.host("phone", behind=router)
    tx, rx = phone.udp(), server.udp(5000)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    dest = (server.addr, 5000)
    assert _delivery(tx, dest, rx) == 1.0
    lab.loss(router, 30)
    assert _delivery(tx, dest, rx) == pytest.approx(0.7, abs=0.04)
    lab.loss(phone, 10)
    lab.loss(server, 10)
    assert _delivery(tx, dest, rx) == pytest.approx(0.567, abs=0.04)
    for node in (router, phone, server):
        lab.loss(node, 0)
    assert _delivery(tx, dest, rx) == 1.0


def _rtts_ms(
    sock: socket.socket, dest: tuple[str, int], echo: socket.socket, n: int
) -> list[float]:
    out = []
    for _ in range(n):
        start = time.monotonic()
        src = reaches(sock, dest, echo, timeout=2.0)
        assert src is not None
        assert reaches(echo, src, sock, timeout=2.0) is not None
        out.append((time.monotonic() - start) * 1000)
    return out


def test_delay_relay_adds_delay_and_jitter_both_ways(lab: Lab) -> None:
    """A relay on the phone's router link (20 ms) and one on the server's (10 +- 8 ms): a
    round trip crosses each twice, so 60 ms +- 16 ms, with visible spread."""
    server = lab.host("server")
    router = lab.router("r")
    phone = lab.host("phone", behind=router)
    sock, echo = phone.udp(), server.udp(5000)
    dest = (server.addr, 5000)
    assert max(_rtts_ms(sock, dest, echo, 5)) < 10
    lab.delay(router, 20)
    lab.delay(server, 10, jitter_ms=8, seed=7)
    rtts = _rtts_ms(sock, dest, echo, 25)
    assert 40 <= statistics.median(rtts) <= 80, rtts
    assert min(rtts) >= 40 - 1 and max(rtts) <= 76 + 25, rtts  # + scheduling slack
    assert statistics.pstdev(rtts) > 1.5, rtts


def test_lab_or_skip_skips_with_the_reason_where_no_lab_can_be_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from netlab import _ns
    from netlab.plugin import lab_or_skip

    monkeypatch.setattr(_ns, "unavailable_reason", lambda: "no namespaces on this test machine")
    with (
        pytest.raises(pytest.skip.Exception, match="no namespaces on this test machine"),
        lab_or_skip(),
    ):
        pass
