"""Two phones behind lab NATs reach each other directly by number, through a public supernode.

Real daemons in the network lab: a public phone (a supernode: it sees its own address
reflected) that both others use as their only seed, and two phones behind NAT routers that
become clients, keep the supernode as their relay and list it in their records. The caller
looks the callee up and asks the relay to introduce it; both then send towards each other and
the NATs let the packets through (simultaneous open). The session must be direct: the
callee's endpoint, seen from the caller, is the callee's router. A port-restricted NAT facing
a symmetric one that allocates ports in sequence opens by port prediction: the initiation also
goes to the next few ports after the symmetric side's known mapping.
"""

import time
from pathlib import Path

import pytest
from lab_phones import PORT, control, start_phone, wait_until

from netlab import Lab, NatBehaviour

pytestmark = pytest.mark.netns


SEQ = "sequential"
"""A symmetric NAT that hands out consecutive ports: port prediction opens it."""


@pytest.mark.parametrize(
    ("nat_a", "nat_b"),
    [
        (NatBehaviour.PORT_RESTRICTED, NatBehaviour.PORT_RESTRICTED),
        (NatBehaviour.FULL_CONE, NatBehaviour.SYMMETRIC),
        (NatBehaviour.SYMMETRIC, NatBehaviour.ADDRESS_RESTRICTED),
        (SEQ, NatBehaviour.PORT_RESTRICTED),
        (NatBehaviour.PORT_RESTRICTED, SEQ),
    ],
    ids=lambda b: b if isinstance(b, str) else b.name.lower(),
)
def test_two_natted_phones_connect_directly_by_number(
    lab: Lab, tmp_path: Path, nat_a: NatBehaviour | str, nat_b: NatBehaviour | str
) -> None:
    seed_host = lab.host("seed")
    router_a, router_b = (
        lab.router(name, nat=NatBehaviour.SYMMETRIC, sequential=True)
        if nat == SEQ
        else lab.router(name, nat=NatBehaviour(nat))
        for name, nat in (("ra", nat_a), ("rb", nat_b))
    )
    a_host = lab.host("a", behind=router_a)
    b_host = lab.host("b", behind=router_b)
    seed, a, b = tmp_path / "seed", tmp_path / "a", tmp_path / "b"
    logs = [p / "daemon.log" for p in (seed, a, b)]
    start_phone(seed_host, seed)
    wait_until(lambda: control(seed, "status"), 15, "the seed phone", logs)
    start_phone(a_host, a, "--seed", f"{seed_host.addr}:{PORT}")
    start_phone(b_host, b, "--seed", f"{seed_host.addr}:{PORT}")

    def clients_ready() -> bool:
        sa, sb = control(a, "status")["overlay"], control(b, "status")["overlay"]
        return (
            sa["role"] == "client"
            and sb["role"] == "client"
            and bool(sa["relays"])
            and bool(sb["relays"])
        )

    wait_until(clients_ready, 30, "both NATted phones to become clients with a relay", logs)
    number_b = control(b, "id")["number"]

    def b_published_with_relay() -> bool:
        found = control(a, "lookup", {"number": number_b})
        return bool(found["found"] and found["records"][0]["relays"])

    wait_until(b_published_with_relay, 30, "b's record to list its relay", logs)
    started = time.monotonic()
    sent = control(a, "msg.send", {"number": number_b, "text": "through the NATs", "wait_s": 20})
    elapsed = time.monotonic() - started
    assert sent["status"] == "delivered", (sent, [p.read_text()[-1500:] for p in logs])
    sessions = control(a, "status")["sessions"]
    (session,) = [s for s in sessions if s["peer_key"] == control(b, "id")["public_key"]]
    assert session["endpoint"][0] == router_b.addr, "direct: the callee's router, not the relay"
    assert elapsed < 10
