"""Whole phones (``PhoneCore``) in the simulator: seeded scenarios with trace digests.

Each scenario builds a ``PhoneWorld`` (``peerline.sim.phones``): phones made and driven as the
daemon makes and drives them, on one virtual network with NATs and a LAN, and runs what users
do (dial, answer, DTMF, hang up) through the phone's commands, reading only its events and
status. Each runs twice from one seed and must give the same trace digest: a failure replays
exactly (``world.sim.trace_tail()`` is in every assertion message).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from peerline.proto.call.manager import CallConfig
from peerline.proto.nat.relay import relay_of
from peerline.proto.overlay.ids import record_key
from peerline.proto.phone import (
    Answer,
    CallState,
    Dial,
    EndReason,
    GroupMode,
    Hangup,
    LanGroup,
    LanSettings,
    PhoneConfig,
    SendDtmf,
    SendMessage,
    events,
)
from peerline.sim.phone import SimPhone
from peerline.sim.phones import PhoneWorld
from peerline.wire.record import decode_record


@dataclass
class Outcome:
    digest: str
    facts: dict[str, object] = field(default_factory=dict)


def twice(scenario: Callable[[int], Outcome], seed: int) -> Outcome:
    """Run ``scenario`` twice from ``seed``: the digests (and what it found) must agree."""
    first, second = scenario(seed), scenario(seed)
    assert first.digest == second.digest, f"seed {seed} did not replay"
    assert first.facts == second.facts
    return first


def active(phone: SimPhone) -> bool:
    live = phone.core.live_call()
    return live is not None and live.state is CallState.ACTIVE


def states(phone: SimPhone) -> list[tuple[str, str | None]]:
    return [
        (e.state.value, e.reason.value if e.reason else None)
        for e in phone.of_type(events.CallStateChanged)
    ]


def supernodes(world: PhoneWorld, count: int) -> list[SimPhone]:
    first = world.add_phone("s0", ("203.0.113.1", 4720))
    return [first] + [
        world.add_phone(f"s{i}", (f"203.0.113.{i + 1}", 4720), seeds=[first])
        for i in range(1, count)
    ]


# -- a call with glare, DTMF and hangup -----------------------------------------------------------
def glare_call(seed: int) -> Outcome:
    """Two phones dial each other at the same instant: one call survives, answered at once on
    both; DTMF goes through in order; hanging up ends it at both ends."""
    world = PhoneWorld(seed)
    (s,) = supernodes(world, 1)
    a = world.add_phone("a", ("198.51.100.2", 4720), seeds=[s])
    b = world.add_phone("b", ("198.51.100.3", 4720), seeds=[s])
    world.run_for(5.0)
    a.handle(Dial(target=b.number))
    b.handle(Dial(target=a.number))
    assert world.run_until(lambda: active(a) and active(b), timeout=10.0), world.sim.trace_tail()
    live_a, live_b = a.core.live_call(), b.core.live_call()
    assert live_a is not None and live_b is not None and live_a.call_id == live_b.call_id
    ended = [p for p in (a, b) if ("ended", "glare") in states(p)]
    assert len(ended) == 1, (states(a), states(b))
    world.run_for(2.0)
    a.handle(SendDtmf(digits="159#*0D"))
    world.run_for(2.0)
    assert [e.digit for e in b.of_type(events.DtmfReceived)] == list("159#*0D")
    media = b.core.call_json(live_b.call_id, world.sim.now)
    assert media is not None and media["media"]["rx"]["packets"] > 100
    a.handle(Hangup())
    assert world.run_until(lambda: b.core.live_call() is None, timeout=5.0)
    assert states(b)[-1] == ("ended", "remote_hangup")
    assert states(a)[-1] == ("ended", "hangup")
    return Outcome(
        world.digest(),
        {"glare_at": ended[0].name, "rx": media["media"]["rx"]["packets"], "t": world.sim.now},
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_crossed_dials_settle_on_one_call_with_dtmf_and_hangup(seed: int) -> None:
    twice(glare_call, seed)


# -- a third caller while two phones talk -----------------------------------------------------
def busy_third_caller(seed: int) -> Outcome:
    """A and B talk, and B has call waiting off; C dials B: C's call ends busy (at B: busy
    here) and C hears the busy tone, while A and B's call goes on, audio flowing both ways (the
    phone core's side of ``test_with_call_waiting_off_a_second_caller_hears_busy`` in
    tests/proto/call)."""
    world = PhoneWorld(seed)
    (s,) = supernodes(world, 1)
    no_waiting = PhoneConfig(calls=CallConfig(call_waiting=False))
    a, b, c = (
        world.add_phone(
            n, (f"198.51.100.{2 + i}", 4720), seeds=[s], config=no_waiting if n == "b" else None
        )
        for i, n in enumerate("abc")
    )
    world.run_for(5.0)
    a.handle(Dial(target=b.number))
    assert world.run_until(lambda: b.core.live_call() is not None, timeout=10.0), (
        world.sim.trace_tail()
    )
    b.handle(Answer())
    assert world.run_until(lambda: active(a) and active(b), timeout=5.0), world.sim.trace_tail()
    talking = b.core.live_call()
    assert talking is not None
    c.handle(Dial(target=b.number))

    def c_ended() -> bool:
        return bool(states(c)) and states(c)[-1][0] == "ended"

    assert world.run_until(c_ended, timeout=10.0), (states(c), world.sim.trace_tail())
    assert states(c)[-1] == ("ended", EndReason.BUSY.value)
    assert states(b)[-1] == ("ended", EndReason.BUSY_HERE.value)

    def rx(phone: SimPhone) -> int:
        (call,) = [c for c in phone.core.status(now=world.sim.now)["calls"] if c["media"]]
        return int(call["media"]["rx"]["packets"])

    before = {p.name: rx(p) for p in (a, b)}
    world.run_for(2.0)
    assert c.audio.frames_heard > 0  # the busy tone
    live = b.core.live_call()
    assert live is not None and live.call_id == talking.call_id
    assert active(a) and active(b)
    for p in (a, b):
        assert rx(p) > before[p.name] + 50, (p.name, before)  # 2 s: 100 frames each way
    return Outcome(world.digest(), {"busy_at": states(c)[-1], "rx": before})


@pytest.mark.parametrize("seed", [1, 2])
def test_a_third_caller_hears_busy_while_two_phones_talk(seed: int) -> None:
    twice(busy_third_caller, seed)


# -- a symmetric x symmetric relayed call whose relay dies ------------------------------------
def relayed_call_relay_dies(seed: int) -> Outcome:
    """A and B sit behind symmetric NATs (no punch can work): the call runs through one of
    B's supernodes. That supernode dies mid-call: both phones hear nothing, report their path
    quiet, probe a channel through another of B's relays, and the call goes on through it."""
    world = PhoneWorld(seed)
    relays = supernodes(world, 3)
    a = world.add_phone(
        "a", ("10.0.0.2", 4720), member=False, nat=world.add_nat("198.51.100.1"), seeds=relays
    )
    b = world.add_phone(
        "b", ("10.1.0.2", 4720), member=False, nat=world.add_nat("198.51.100.2"), seeds=relays
    )

    def ready() -> bool:
        record = b.core.overlay.record
        return len(a.core.overlay.relays) == 3 and record is not None and len(record.relays) == 3

    assert world.run_until(ready, timeout=60.0), world.sim.trace_tail()
    world.run_for(5.0)
    a.handle(Dial(target=b.number))
    assert world.run_until(lambda: b.core.live_call() is not None, timeout=15.0)
    b.handle(Answer())
    assert world.run_until(lambda: active(a), timeout=5.0)
    world.run_for(5.0)
    path = a.core.session(b.key, now=world.sim.now)
    assert path is not None and path["endpoint"][0].startswith("relay:")
    via = relay_of(tuple(path["endpoint"]))  # type: ignore[arg-type]
    assert via is not None
    dead = next(r for r in relays if r.addr == via[0])
    before = a.core.status(now=world.sim.now)["calls"][0]["media"]["rx"]["packets"]
    world.sim.remove_node(dead.addr)
    world.sim.record(f"relay {dead.name} dies")
    world.run_for(20.0)  # as long as the media timeout: the call must still be up
    assert active(a) and active(b), (states(a), states(b), world.sim.trace_tail())
    after = a.core.session(b.key, now=world.sim.now)
    assert after is not None
    new_via = relay_of(tuple(after["endpoint"]))  # type: ignore[arg-type]
    assert new_via is not None and new_via[0] != dead.addr
    for phone in (a, b):
        rx = phone.core.status(now=world.sim.now)["calls"][0]["media"]["rx"]
        assert rx["packets"] > 600, rx  # audio flows again both ways
    gap = a.core.status(now=world.sim.now)["calls"][0]["media"]["rx"]
    assert gap["packets"] > before + 500
    assert a.core.status(now=world.sim.now)["traversal"]["path_recoveries"] >= 1
    return Outcome(world.digest(), {"dead": dead.name, "lost": gap["lost"]})


@pytest.mark.parametrize("seed", [3, 4])
def test_a_relayed_call_between_symmetric_nats_survives_its_relay_dying(seed: int) -> None:
    twice(relayed_call_relay_dies, seed)


# -- a moved phone, found through storers that still hold its old record ----------------------
def moved_phone(seed: int) -> Outcome:
    """B moves to a new address while most storers of its record (and the caller A, which
    stores it too) are cut off from it: they keep its old record. A dials B: its quick lookup
    ends at two storers that agree on the old record, the handshake there goes unanswered, the
    recheck's thorough lookup finds the newer record, A follows it, and B rings. The stale
    storers are repaired on the way."""
    world = PhoneWorld(seed)
    servers = supernodes(world, 8)
    a = world.add_phone("a", ("198.51.100.10", 4720), seeds=servers[:2])
    b = world.add_phone("b", ("198.51.100.20", 4720), seeds=servers[:2])
    world.run_for(120.0)
    key = record_key(b.number)
    holders = [p for p in (*servers, a) if p.core.overlay.store.get(key, world.sim.now)]
    assert a in holders and len(holders) >= 6
    stale = [*[p for p in holders if p is not a][:4], a]
    new_addr = ("198.51.100.21", 4720)
    world.sim.network.partition({p.host for p in stale}, {b.host, new_addr[0]})
    world.move(b, new_addr)
    world.run_for(30.0)
    world.sim.network.heal()
    record = b.core.overlay.record
    assert record is not None

    def holds_new(phone: SimPhone) -> bool:
        raws = phone.core.overlay.store.get(key, world.sim.now)
        return any(decode_record(r).seq == record.seq for r in raws)

    assert not any(holds_new(p) for p in stale)
    started = world.sim.now
    a.handle(Dial(target=b.number))
    assert world.run_until(lambda: b.core.live_call() is not None, timeout=20.0), (
        states(a),
        world.sim.trace_tail(),
    )
    moved = a.of_type(events.PeerMoved)
    assert [(m.why, m.addr) for m in moved] == [("newer record", new_addr)]
    repaired = sum(p.core.overlay.counters.records_repaired for p in world.phones.values())
    assert repaired >= 1 and holds_new(a)
    return Outcome(world.digest(), {"ring_s": round(world.sim.now - started, 3)})


@pytest.mark.parametrize("seed", [1, 2])
def test_a_moved_phone_is_found_through_storers_that_hold_its_old_record(seed: int) -> None:
    twice(moved_phone, seed)


# -- three LAN phones take extensions ---------------------------------------------------------
def lan_extensions(seed: int) -> Outcome:
    """Three phones on one LAN, no seeds, no server: each takes its own extension, sees the
    others' (verified), and they call and message each other by extension."""
    world = PhoneWorld(seed)
    lan = world.add_lan(max_delay=0.05)
    phones = [
        world.add_phone(n, (f"192.168.1.{10 + i}", 4720), lan=lan) for i, n in enumerate("abc")
    ]

    def settled() -> bool:
        for p in phones:
            view = p.core.lan_status()
            if not view["extension"] or sum(1 for q in view["phones"] if q["extension"]) != 2:
                return False
        return True

    assert world.run_until(settled, timeout=30.0), world.sim.trace_tail()
    extensions = [p.core.lan_status()["extension"] for p in phones]
    assert len(set(extensions)) == 3
    a, b, c = phones
    a.handle(Dial(target=extensions[1]))
    assert world.run_until(lambda: b.core.live_call() is not None, timeout=5.0)
    incoming = b.of_type(events.IncomingCall)
    assert incoming and incoming[0].number == a.number  # a LAN peer's number is verified
    c.handle(SendMessage(target=extensions[0], text="lunch?"))
    world.run_for(2.0)
    assert [e.text for e in a.of_type(events.MessageReceived)] == ["lunch?"]
    assert [e.status for e in c.of_type(events.MessageStatusChanged)] == ["delivered"]
    b.handle(Hangup())  # declines the ringing call
    world.run_for(1.0)
    assert states(a)[-1] == ("ended", EndReason.DECLINED.value)
    return Outcome(world.digest(), {"extensions": extensions})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_three_lan_phones_take_extensions_and_reach_each_other_by_them(seed: int) -> None:
    twice(lan_extensions, seed)


# -- hunt groups and pages on a LAN, no server -------------------------------------------------
def lan_group(seed: int, mode: str) -> Outcome:
    """Four phones on one LAN; b, c and d are members of group 700 (ring all, in turn or a
    page); a dials 700. Ring all: every member rings, c answers, the others stop
    (answered_elsewhere). In turn: b (the lowest extension) is busy-free but does not answer,
    its turn runs out, c declines, d answers. Page: every member answers at once, one way."""
    world = PhoneWorld(seed)
    lan = world.add_lan(max_delay=0.05)
    group = LanGroup(
        "700", {"all": GroupMode.RING_ALL, "turn": GroupMode.IN_TURN}.get(mode, GroupMode.PAGE)
    )
    member = PhoneConfig(lan=LanSettings(groups=(group,), group_ring_s=4.0))
    caller = PhoneConfig(lan=LanSettings(group_ring_s=4.0))  # the caller times the turns
    a = world.add_phone("a", ("192.168.1.10", 4720), lan=lan, extension="201", config=caller)
    b, c, d = (
        world.add_phone(
            n, (f"192.168.1.{11 + i}", 4720), lan=lan, extension=f"20{2 + i}", config=member
        )
        for i, n in enumerate("bcd")
    )

    def seen() -> bool:
        found = a.core.lan.group("700") if a.core.lan is not None else None
        return found is not None and len(found[1]) == 3

    assert world.run_until(seen, timeout=30.0), world.sim.trace_tail()
    t0 = world.sim.now
    a.handle(Dial(target="700"))

    def ringing(p: SimPhone) -> bool:
        return any(c.state is CallState.INCOMING for c in p.core.calls.live_calls())

    facts: dict[str, object] = {}
    if mode == "all":
        assert world.run_until(lambda: all(ringing(p) for p in (b, c, d)), timeout=5.0)
        c.handle(Answer())
        assert world.run_until(lambda: active(a) and active(c), timeout=5.0)
        world.run_for(1.0)
        assert not ringing(b) and not ringing(d)
        assert states(b)[-1] == ("ended", EndReason.ANSWERED_ELSEWHERE.value)
        facts["answered_by"] = "c"
    elif mode == "turn":
        assert world.run_until(lambda: ringing(b), timeout=5.0)
        assert not ringing(c) and not ringing(d)
        assert world.run_until(lambda: ringing(c), timeout=10.0), world.sim.trace_tail()
        facts["b_rang_s"] = round(world.sim.now - t0)
        assert not ringing(b) and states(b)[-1] == ("ended", EndReason.CANCELLED.value)
        c.handle(Hangup())  # declines: d's turn at once
        assert world.run_until(lambda: ringing(d), timeout=5.0)
        d.handle(Answer())
        assert world.run_until(lambda: active(a) and active(d), timeout=5.0)
        facts["answered_by"] = "d"
    else:
        def paged() -> bool:
            legs = [x for x in a.core.calls.live_calls() if x.state is CallState.ACTIVE]
            return len(legs) == 3 and all(active(p) for p in (b, c, d))

        assert world.run_until(paged, timeout=5.0), world.sim.trace_tail()
        world.run_for(2.0)
        for p in (b, c, d):
            (call,) = p.core.calls.live_calls()
            assert call.page and call.media is not None
            assert call.media.counters.packets_sent == 0  # one way: members only listen
            assert call.media.counters.packets_received > 0
        facts["paged"] = 3
    for p in (b, c, d):
        shown = p.of_type(events.IncomingCall)
        assert shown and all(e.number == a.number and e.group == "700" for e in shown)
    return Outcome(world.digest(), facts)


@pytest.mark.parametrize("mode", ["all", "turn", "page"])
def test_a_lan_group_rings_all_in_turn_or_pages_with_no_server(mode: str) -> None:
    out = twice(lambda seed: lan_group(seed, mode), 4)
    if mode == "turn":
        assert out.facts["b_rang_s"] == 4
