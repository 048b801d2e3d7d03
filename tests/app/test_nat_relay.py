"""Relay fallback in the network lab: phones whose NATs no punch can open still talk, through
a public supernode that forwards their (encrypted) session packets; and a relayed session
survives the death of its relay.

Real daemons: public supernodes (the first is everyone's seed) and two phones behind NATs.
Symmetric x symmetric cannot be punched (each side's mapping towards the other is new and
random), so the caller opens a channel through one of the callee's relays after the punch had
its time; the session runs through it. Killing that relay mid-session: the next message goes
unanswered on the relayed path, the caller opens a channel through another of the callee's
relays, probes it, and the session moves there.
"""

import time
from pathlib import Path
from typing import Any

import pytest
from lab_phones import PORT, control, start_phone, wait_until

from netlab import Host, Lab, NatBehaviour

pytestmark = pytest.mark.netns


def _session(data: Path, peer_key: str) -> dict[str, Any]:
    sessions = control(data, "status")["sessions"]
    (session,) = [s for s in sessions if s["peer_key"] == peer_key]
    return dict(session)


def _start_pair(
    lab: Lab, tmp_path: Path, nat_a: NatBehaviour, nat_b: NatBehaviour, supernodes: int
) -> tuple[list[tuple[Host, Path, Any]], Path, Path, list[Path]]:
    hosts = [lab.host(f"s{i}") for i in range(supernodes)]
    router_a = lab.router("ra", nat=nat_a)
    router_b = lab.router("rb", nat=nat_b)
    a_host = lab.host("a", behind=router_a)
    b_host = lab.host("b", behind=router_b)
    datas = [tmp_path / f"s{i}" for i in range(supernodes)]
    a, b = tmp_path / "a", tmp_path / "b"
    logs = [p / "daemon.log" for p in (*datas, a, b)]
    seed = f"{hosts[0].addr}:{PORT}"
    procs = [start_phone(hosts[0], datas[0])]
    wait_until(lambda: control(datas[0], "status"), 15, "the seed phone", logs)
    procs += [start_phone(h, d, "--seed", seed) for h, d in zip(hosts[1:], datas[1:], strict=True)]
    start_phone(a_host, a, "--seed", seed)
    start_phone(b_host, b, "--seed", seed)

    def ready() -> bool:
        sa, sb = control(a, "status")["overlay"], control(b, "status")["overlay"]
        members = [control(d, "status")["overlay"]["role"] for d in datas]
        return (
            members == ["supernode"] * supernodes
            and sa["role"] == sb["role"] == "client"
            and len(sa["relays"]) >= min(supernodes, 2)
            and len(sb["relays"]) >= min(supernodes, 2)
        )

    wait_until(ready, 40, "supernodes, and both NATted phones clients with relays", logs)
    number_b = control(b, "id")["number"]

    def b_published_with_relays() -> bool:
        found = control(a, "lookup", {"number": number_b})
        return bool(found["found"] and len(found["records"][0]["relays"]) >= min(supernodes, 2))

    wait_until(b_published_with_relays, 40, "b's record to list its relays", logs)
    return list(zip(hosts, datas, procs, strict=True)), a, b, logs


def test_symmetric_phones_talk_through_a_relay(lab: Lab, tmp_path: Path) -> None:
    supers, a, b, logs = _start_pair(
        lab, tmp_path, NatBehaviour.SYMMETRIC, NatBehaviour.SYMMETRIC, 1
    )
    id_a, id_b = control(a, "id"), control(b, "id")
    started = time.monotonic()
    dialed = control(a, "dial", {"number": id_b["number"]})
    connect_s = time.monotonic() - started
    assert dialed["path"] == "relayed", (dialed, [p.read_text()[-2000:] for p in logs])
    for src, dst in ((a, id_b), (b, id_a)):
        sent = control(src, "msg.send", {"number": dst["number"], "text": "via", "wait_s": 10})
        assert sent["status"] == "delivered", (sent, [p.read_text()[-2000:] for p in logs])
    host, _, _ = supers[0]
    for me, other in ((a, id_b), (b, id_a)):
        session = _session(me, other["public_key"])
        assert session["path"] == "relayed" and session["relay"] == [host.addr, PORT]
    relay = control(supers[0][1], "status")["overlay"]["relaying"]
    assert relay["channels"] == 1 and relay["counters"]["packets_forwarded"] >= 4
    assert connect_s < 3.0, connect_s


def test_a_relayed_session_survives_its_relay_dying(lab: Lab, tmp_path: Path) -> None:
    supers, a, b, logs = _start_pair(
        lab, tmp_path, NatBehaviour.SYMMETRIC, NatBehaviour.SYMMETRIC, 3
    )
    id_a, id_b = control(a, "id"), control(b, "id")
    control(a, "dial", {"number": id_b["number"]})
    sent = control(a, "msg.send", {"number": id_b["number"], "text": "one", "wait_s": 10})
    assert sent["status"] == "delivered"
    before = _session(a, id_b["public_key"])
    assert before["path"] == "relayed"
    (dead,) = [(h, d, p) for h, d, p in supers if [h.addr, PORT] == before["relay"]]
    dead[2].kill()
    dead[2].wait(5)
    started = time.monotonic()
    sent = control(a, "msg.send", {"number": id_b["number"], "text": "two", "wait_s": 20})
    recovered_s = time.monotonic() - started
    assert sent["status"] == "delivered", (sent, [p.read_text()[-2000:] for p in logs])
    after = _session(a, id_b["public_key"])
    assert after["path"] == "relayed" and after["relay"] != before["relay"]
    back = control(b, "msg.send", {"number": id_a["number"], "text": "three", "wait_s": 10})
    assert back["status"] == "delivered"
    assert _session(b, id_a["public_key"])["relay"] == after["relay"]
    assert recovered_s < 5.0, recovered_s
