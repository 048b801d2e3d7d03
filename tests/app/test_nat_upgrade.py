"""A relayed session goes direct once the NATs allow it, without losing a message, in the
network lab (the daemon side of tests/proto/nat/test_upgrade.py).

Real daemons: a public supernode (everyone's seed) and two phones, each behind a symmetric
router, so the call falls back to a relay. Then both routers load the port-restricted recipe
(one nftables transaction: ``table ip netlab`` deleted and loaded again), as if they had been
reconfigured. Conntrack keeps every existing flow's binding, so:

- the relay flows keep their ports, and the first packet each phone sends towards the relay
  under the new rules makes that port the phone's endpoint-independent mapping (the recipe's
  ``learn`` chain fills ``eim_out`` from every outbound packet): the addresses the phones
  already exchanged (what the relay sees) are their mappings for any destination now;
- the flows the punch made towards those addresses keep their old random ports as long as
  something is sent on them, and every upgrade attempt's probes do. The routers forget idle
  UDP after ``UDP_TIMEOUT_S``; the first attempt after a longer wait (the schedule doubles: 1,
  2, 4, 8 s...) leaves from the new mapping, the probes cross, and the session moves.

The phones keep their relay mappings (and sessions) alive with ``keepalive_s`` below that
timeout. Both send a message every ``EVERY_S`` throughout: all arrive, exactly once.
"""

import time
from pathlib import Path
from typing import Any

import pytest
from lab_phones import PORT, control, start_phone, wait_until

from netlab import Lab, NatBehaviour, Router
from netlab.nat import router_ruleset

pytestmark = pytest.mark.netns

UDP_TIMEOUT_S = 5
"""The routers forget an idle UDP flow after this (and their EIM mappings)."""
KEEPALIVE_S = 2.0
EVERY_S = 0.5
DIRECT_WITHIN_S = 30.0
"""From the routers' change: the fourth attempt (15 s after the session went relayed) is the
first after a wait longer than ``UDP_TIMEOUT_S``."""


def _session(data: Path, peer_key: str) -> dict[str, Any]:
    sessions = control(data, "status")["sessions"]
    (session,) = [s for s in sessions if s["peer_key"] == peer_key]
    return dict(session)


def _become_port_restricted(router: Router) -> None:
    """Replace the router's table in one transaction: the NAT hooks never all go away, so
    conntrack keeps its NAT'd flows (removing the last one would clean them up)."""
    ruleset = router_ruleset(
        NatBehaviour.PORT_RESTRICTED,
        wan_addr=router.addr,
        lan=router.lan,
        hairpin=router.hairpin,
        udp_timeout_s=router.udp_timeout_s,
    )
    router.nft("table ip netlab\ndelete table ip netlab\n" + ruleset)
    router.nat, router.ruleset = NatBehaviour.PORT_RESTRICTED, ruleset


def test_a_relayed_session_goes_direct_when_the_routers_allow_it(lab: Lab, tmp_path: Path) -> None:
    s_host = lab.host("s0")
    routers = [
        lab.router(name, nat=NatBehaviour.SYMMETRIC, udp_timeout_s=UDP_TIMEOUT_S)
        for name in ("ra", "rb")
    ]
    a_host = lab.host("a", behind=routers[0])
    b_host = lab.host("b", behind=routers[1])
    s, a, b = tmp_path / "s0", tmp_path / "a", tmp_path / "b"
    logs = [p / "daemon.log" for p in (s, a, b)]
    seed = f"{s_host.addr}:{PORT}"
    start_phone(s_host, s)
    wait_until(lambda: control(s, "status"), 15, "the seed phone", logs)
    start_phone(a_host, a, "--seed", seed, keepalive_s=KEEPALIVE_S)
    start_phone(b_host, b, "--seed", seed, keepalive_s=KEEPALIVE_S)

    def clients() -> bool:
        sa, sb = control(a, "status")["overlay"], control(b, "status")["overlay"]
        return sa["role"] == sb["role"] == "client" and bool(sa["relays"] and sb["relays"])

    wait_until(clients, 40, "both NATted phones clients with a relay", logs)
    id_a, id_b = control(a, "id"), control(b, "id")

    def published() -> bool:
        found = control(a, "lookup", {"number": id_b["number"]})
        return bool(found["found"] and found["records"][0]["relays"])

    wait_until(published, 40, "b's record to list its relay", logs)
    dialed = control(a, "dial", {"number": id_b["number"]})
    assert dialed["path"] == "relayed", (dialed, [p.read_text()[-2000:] for p in logs])
    sas = dialed["sas"]
    sent: dict[str, list[str]] = {"a": [], "b": []}
    texts: dict[str, list[str]] = {"a": [], "b": []}

    def send_both() -> None:
        for name, src, dst in (("a", a, id_b), ("b", b, id_a)):
            text = f"{name}{len(texts[name])}"
            out = control(src, "msg.send", {"number": dst["number"], "text": text, "wait_s": 0})
            sent[name].append(out["id"])
            texts[name].append(text)

    send_both()
    for router in routers:
        _become_port_restricted(router)
    changed = time.monotonic()
    direct_s: float | None = None
    while time.monotonic() - changed < DIRECT_WITHIN_S:
        send_both()
        if _session(a, id_b["public_key"])["path"] == "direct":
            direct_s = time.monotonic() - changed
            break
        time.sleep(EVERY_S)
    traversal = control(a, "status")["traversal"], control(b, "status")["traversal"]
    assert direct_s is not None, (traversal, [p.read_text()[-3000:] for p in logs])
    # A few more on the direct path; then every message is delivered, and arrived once.
    for _ in range(4):
        send_both()
        time.sleep(EVERY_S)

    def all_delivered() -> bool:
        for name, data in (("a", a), ("b", b)):
            status = {m["id"]: m["status"] for m in control(data, "msg.list", {"limit": 10_000})}
            if any(status.get(mid) != "delivered" for mid in sent[name]):
                return False
        return True

    wait_until(all_delivered, 20, "every message delivered", logs)
    for name, receiver in (("a", b), ("b", a)):
        got = [
            m["text"]
            for m in control(receiver, "msg.list", {"limit": 10_000})
            if m["direction"] == "in"
        ]
        assert sorted(got) == sorted(texts[name]), (name, len(got), len(texts[name]))
    # Both on one direct path: each at the other's router, on its phone's port there (the
    # one the relay saw), and the same session (no new handshake: the SAS is the one dialed).
    wait_until(lambda: _session(b, id_a["public_key"])["path"] == "direct", 5, "b to follow", logs)
    session_a, session_b = _session(a, id_b["public_key"]), _session(b, id_a["public_key"])
    assert session_a["endpoint"][0] == routers[1].addr, session_a
    assert session_b["endpoint"][0] == routers[0].addr, session_b
    assert session_a["sas"] == session_b["sas"] == sas
    counters = [control(p, "status")["counters"] for p in (a, b)]
    assert [c["messages_failed"] for c in counters] == [0, 0]
    print(f"direct {direct_s:.1f} s after the routers changed")  # shown with -s
