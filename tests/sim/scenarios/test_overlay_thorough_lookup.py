"""A phone that moved republishes a newer record, but some storers still hold the old one.

A quick lookup stops once two storers agree, and the stale ones can be those two (the caller
itself may be one). A thorough lookup, used for a peer that stopped answering, asks all ``k``
nearest nodes and keeps the newest record. Any lookup that sees both hands the newer record
to the storers that answered with the older one, so the next quick lookups find it.
"""

import dataclasses
import hashlib

from peerline.proto.identity import Identity
from peerline.proto.overlay.events import LookupCompleted, LookupFailed
from peerline.proto.overlay.ids import as_int, node_id, record_key
from peerline.proto.overlay.records import sign_record, verify_signed
from peerline.sim.overlay_world import OverlayWorld, Phone
from peerline.wire.record import CandidateKind, Record

MOVED_TO = ("100.99.0.1", 7000)


def _identity(world: OverlayWorld, phone: Phone) -> Identity:
    """The world derives each phone's key from its seed and index; so do we."""
    seed = hashlib.blake2b(f"{world.seed}/{phone.index}".encode(), digest_size=32).digest()
    identity = Identity.from_seed(seed)
    assert identity.public_key == phone.overlay.public_key
    return identity


def _seq_held(phone: Phone, key: bytes, now: float) -> int:
    (raw,) = phone.overlay.store.get(key, now)
    _, record = verify_signed(raw)
    assert record is not None
    return record.seq


def _resolve(world: OverlayWorld, caller: Phone, number: str, *, thorough: bool) -> Record:
    lookup_id = caller.overlay.lookup(number, now=world.sim.now, thorough=thorough)
    world.sim.poke(caller.addr)
    world.sim.run_for(10.0)
    while (event := caller.overlay.next_event()) is not None:
        if isinstance(event, LookupCompleted | LookupFailed) and event.lookup_id == lookup_id:
            assert isinstance(event, LookupCompleted), event
            (record,) = event.records
            return record
    raise AssertionError("the lookup did not finish")


def test_a_thorough_lookup_finds_the_newer_record_that_few_storers_hold() -> None:
    world = OverlayWorld(seed=11)
    world.populate(40, warm=True)
    now = world.sim.now
    target = world.phones[0]
    number = target.overlay.number
    key = record_key(number)
    old = target.overlay.record
    assert old is not None
    holders = [p for p in world.phones if p is not target and p.overlay.store.get(key, now)]
    assert len(holders) >= 3
    holders.sort(key=lambda p: as_int(node_id(p.overlay.public_key)) ^ as_int(key))
    # The caller holds the stale copy itself; only the holder farthest from the key got the
    # newer one (the others missed the republish).
    caller, fresh_holder = holders[0], holders[-1]
    newer = sign_record(
        _identity(world, target),
        dataclasses.replace(old, seq=old.seq + 1, addresses=((CandidateKind.HOST, MOVED_TO),)),
    )
    fresh_holder.overlay.store.put(key, newer, newer.encode(), target.addr[0], now)

    quick = _resolve(world, caller, number, thorough=False)
    assert quick.seq == old.seq  # the staleness this is about: two stale storers agreed first
    repaired_before = caller.overlay.counters.records_repaired
    thorough = _resolve(world, caller, number, thorough=True)
    assert thorough.seq == newer.seq
    assert thorough.addresses == ((CandidateKind.HOST, MOVED_TO),)

    # Repaired: every storer that answered with the old record now holds the new one, the
    # caller included, and a quick lookup from anywhere finds the new address.
    assert caller.overlay.counters.records_repaired - repaired_before == len(holders) - 1
    now = world.sim.now
    assert all(_seq_held(p, key, now) == newer.seq for p in holders)
    others = [p for p in world.phones if p is not target and p not in holders]
    for other in others[:5]:
        assert _resolve(world, other, number, thorough=False).seq == newer.seq


def test_a_thorough_lookup_of_an_unknown_number_ends() -> None:
    world = OverlayWorld(seed=12)
    world.populate(20, warm=True)
    caller = world.phones[3]
    lookup_id = caller.overlay.lookup("000000000001", now=world.sim.now, thorough=True)
    world.sim.poke(caller.addr)
    world.sim.run_for(10.0)
    events = []
    while (event := caller.overlay.next_event()) is not None:
        if isinstance(event, LookupCompleted | LookupFailed) and event.lookup_id == lookup_id:
            events.append(event)
    assert len(events) == 1 and isinstance(events[0], LookupFailed)
    assert events[0].reason == "not found" and events[0].elapsed_s < 2.0
