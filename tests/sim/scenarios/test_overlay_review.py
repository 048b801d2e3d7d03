"""Cases from review: the smallest network, scoped sources, unusable keys, stale tokens,
and the budget of binding checks a lookup pays for keys only one responder vouches for."""

import hashlib

from peerline.proto.identity import Identity
from peerline.proto.nat.introductions import Introductions
from peerline.proto.overlay.events import LookupCompleted
from peerline.proto.overlay.ids import node_id, record_key
from peerline.proto.overlay.lookups import LONE_KEYS_CHECKED_PER_LOOKUP
from peerline.proto.overlay.overlay import Overlay, OverlayConfig
from peerline.proto.overlay.records import SyncBinding, Verdict, sign_record, verify_signed
from peerline.proto.overlay.rpc import PADDED_PING_SIZE
from peerline.sim import LinkProfile, Network, Simulator
from peerline.sim.numbers import sim_number
from peerline.types import Addr
from peerline.wire.overlay import NO_TOKEN, Contact, Introduce, Kind, decode_overlay
from peerline.wire.record import CandidateKind, Record


def phone(seed: int, sim: Simulator, binding: SyncBinding) -> Overlay:
    me = Identity.from_seed(bytes([seed]) * 32)
    return Overlay(
        identity=me,
        rng=sim.node_rng(str(seed)),
        binding=binding,
        number=sim_number(me.public_key),
        config=OverlayConfig(),
    )


def test_a_network_of_two_phones_resolves_both_numbers() -> None:
    sim = Simulator(seed=1, network=Network(LinkProfile(latency_s=0.02)))
    binding = SyncBinding(sim_number)
    a, b = phone(1, sim, binding), phone(2, sim, binding)
    addr_a: Addr = ("100.64.0.1", 7000)
    addr_b: Addr = ("100.64.0.2", 7000)
    sim.add_node(addr_a, a)
    sim.add_node(addr_b, b)
    a.publish(addresses=((CandidateKind.HOST, addr_a),), now=sim.now)
    b.bootstrap([(None, addr_a)], now=sim.now)
    b.publish(addresses=((CandidateKind.HOST, addr_b),), now=sim.now)
    sim.poke(addr_a)
    sim.poke(addr_b)
    sim.run_for(10.0)
    for caller, callee, where in ((a, b, addr_b), (b, a, addr_a)):
        lid = caller.lookup(callee.number, now=sim.now)
        sim.poke(addr_a if caller is a else addr_b)
        sim.run_for(5.0)
        found = []
        while (e := caller.next_event()) is not None:
            if isinstance(e, LookupCompleted) and e.lookup_id == lid:
                found.append(e)
        assert found and found[0].records[0].addresses == ((CandidateKind.HOST, where),)


def test_datagrams_from_scoped_addresses_are_dropped() -> None:
    sim = Simulator(seed=2)
    node = phone(3, sim, SyncBinding(sim_number))
    node.receive_datagram(b"\x54" + bytes(100), ("fe80::1%eth0", 7000), now=0.0)
    assert node.counters.dropped_malformed == 1
    assert node.datagrams_to_send(now=0.0) == []


def test_a_record_whose_key_has_no_x25519_twin_is_unusable() -> None:
    # A key that is not a valid curve point: signatures cannot verify under it either way,
    # and the record is refused before any binding check.
    record = Record(number="000000000001", public_key=bytes(32), seq=1, ttl_s=60)
    verdict, _ = verify_signed(record.encode())
    assert verdict in (Verdict.MALFORMED, Verdict.BAD_SIGNATURE)


def test_a_stale_token_is_not_used_and_the_ping_is_padded() -> None:
    sim = Simulator(seed=3, network=Network(LinkProfile(latency_s=0.01)))
    binding = SyncBinding(sim_number)
    a, b = phone(4, sim, binding), phone(5, sim, binding)
    addr_a: Addr = ("100.64.1.1", 7000)
    addr_b: Addr = ("100.64.1.2", 7000)
    sim.add_node(addr_a, a)
    sim.add_node(addr_b, b)
    b.bootstrap([(None, addr_a)], now=sim.now)
    sim.poke(addr_b)
    sim.run_for(5.0)
    assert len(b.table) == 1
    sim.run_for(400.0)  # every token b holds is now older than TOKEN_ROTATE_S
    b.add_contact(Contact(a.public_key, addr_a), now=sim.now)
    out = b.datagrams_to_send(now=sim.now)
    pings = [d for d, to in out if to == addr_a]
    assert pings and all(len(d) >= PADDED_PING_SIZE for d in pings)


def test_a_lookup_checks_few_keys_that_only_one_responder_offers() -> None:
    """White-box: forged keys from many lone liars are not all paid for; a key two
    responders agree on always is."""
    sim = Simulator(seed=4)
    calls: list[bytes] = []

    def counting(pk: bytes) -> str:
        calls.append(pk)
        return sim_number(pk)

    caller = phone(6, sim, SyncBinding(counting))
    target = Identity.from_seed(bytes([7]) * 32)
    number = sim_number(target.public_key)
    op = caller.lookups.start(record_key(number), Kind.FIND_VALUE, "value", 0.0, number=number)
    liars = [Identity.from_seed(hashlib.sha256(b"liar%d" % i).digest()) for i in range(6)]
    for i, liar in enumerate(liars):
        forged = sign_record(
            liar, Record(number=number, public_key=liar.public_key, seq=1, ttl_s=60)
        )
        caller.lookups.take_record(op, forged.encode(), 1, 1000 + i, 0.0)
    assert len(calls) == LONE_KEYS_CHECKED_PER_LOOKUP
    real = sign_record(target, Record(number=number, public_key=target.public_key, seq=1, ttl_s=60))
    caller.lookups.take_record(op, real.encode(), 2, 2000, 0.0)
    caller.lookups.take_record(op, real.encode(), 2, 2001, 0.0)
    assert target.public_key in calls
    assert op.records and target.public_key in op.records


def test_an_introduction_refused_for_want_of_a_token_is_sent_again_with_it() -> None:
    sim = Simulator(seed=9, network=Network(LinkProfile(latency_s=0.01)))
    binding = SyncBinding(sim_number)
    caller, relay = phone(30, sim, binding), phone(31, sim, binding)
    addr_c: Addr = ("100.64.9.1", 7000)
    addr_r: Addr = ("100.64.9.2", 7000)
    sim.add_node(addr_c, caller)
    sim.add_node(addr_r, relay)
    target = Identity.from_seed(bytes([32]) * 32).public_key
    introduces: list[bytes] = []
    original = caller.datagrams_to_send

    def spy(*, now: float) -> list[tuple[bytes, Addr]]:
        out = original(now=now)
        for data, _ in out:
            msg = decode_overlay(data)
            if msg.header.kind is Kind.INTRODUCE:
                assert isinstance(msg.body, Introduce)
                introduces.append(msg.body.token)
        return out

    caller.datagrams_to_send = spy  # type: ignore[method-assign]
    Introductions(relay)  # the relay serves INTRODUCE (as an Engine would have it)
    introductions = Introductions(caller)
    introductions.introduce(target, (Contact(relay.public_key, addr_r),), (addr_c,), now=sim.now)
    sim.poke(addr_c)
    sim.run_for(2.0)
    # Refused once for want of a token, then sent again with the token the refusal carried.
    assert len(introduces) == 2 and introduces[0] == NO_TOKEN and introduces[1] != NO_TOKEN


def test_introduced_callers_are_held_to_the_peer_limit() -> None:
    import pytest

    from peerline.errors import LocalProtocolError
    from peerline.proto.node import Node, NodeConfig
    from peerline.sim.rng import SeededRng

    node = Node(
        identity=Identity.from_seed(bytes(32)), rng=SeededRng(1), config=NodeConfig(max_peers=2)
    )
    for i in (1, 2):
        node.add_peer(Identity.from_seed(bytes([i]) * 32).public_key, ("192.0.2.1", 1), pin=False)
    with pytest.raises(LocalProtocolError):
        node.add_peer(Identity.from_seed(bytes([3]) * 32).public_key, ("192.0.2.1", 1), pin=False)
    assert node.counters.dropped_peer_limit == 1


def test_publishing_with_no_one_to_store_at_does_not_loop() -> None:
    """A record re-signed while a publish is out, whose only contact then fails: the next
    publish finds no one and finishes at once; it must not start itself again and again."""
    sim = Simulator(seed=10)
    alone = phone(40, sim, SyncBinding(sim_number))
    here: Addr = ("100.64.10.1", 7000)
    sim.add_node(here, alone)
    ghost = Identity.from_seed(bytes([41]) * 32).public_key
    ident = int.from_bytes(node_id(ghost), "big")
    alone.table.seen(Contact(ghost, ("100.64.10.2", 7000)), ident, 0.0)
    alone.table.failed(ident)  # one more failure and it is gone
    alone.warm_start(now=0.0, republish_at=None, refreshed_at=0.0)
    alone.publish(addresses=((CandidateKind.HOST, here),), now=sim.now)
    alone.publish(addresses=((CandidateKind.HOST, ("100.64.10.1", 7001)),), now=sim.now)
    sim.poke(here)
    sim.run_for(10.0)
    assert alone.record is not None and alone.record.seq == 2
    assert len(alone.table) == 0 and alone.counters.publishes >= 2
