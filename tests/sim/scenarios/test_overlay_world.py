"""Overlays in the simulator: real joins, publishing, lookups, address changes, liars, restarts."""

from peerline.proto.identity import Identity
from peerline.proto.overlay.events import LookupCompleted, LookupFailed, RecordPublished
from peerline.proto.overlay.overlay import Overlay, OverlayConfig
from peerline.sim.overlay_world import OverlayWorld, Phone, sim_number
from peerline.types import Addr
from peerline.wire.record import CandidateKind


def lookup(
    world: OverlayWorld, caller: Phone, number: str, timeout: float = 15.0
) -> LookupCompleted | LookupFailed:
    lid = caller.overlay.lookup(number, now=world.sim.now)
    world.sim.poke(caller.addr)
    found: list[LookupCompleted | LookupFailed] = []

    def done() -> bool:
        while (event := caller.overlay.next_event()) is not None:
            if isinstance(event, LookupCompleted | LookupFailed) and event.lookup_id == lid:
                found.append(event)
        return bool(found)

    assert world.sim.run_until_predicate(done, timeout=timeout)
    return found[0]


def addresses(event: LookupCompleted | LookupFailed) -> list[Addr]:
    assert isinstance(event, LookupCompleted), event
    return [addr for record in event.records for _, addr in record.addresses]


def cold_world(n: int, *, seed: int = 7, malicious: float = 0.0, **config: object) -> OverlayWorld:
    world = OverlayWorld(seed=seed, config=OverlayConfig(**config), malicious=malicious)  # type: ignore[arg-type]
    world.populate(n, warm=False)
    world.sim.run_for(60.0)
    return world


def test_every_phone_finds_every_other_after_real_joins() -> None:
    world = cold_world(40)
    phones = world.phones
    assert all(p.overlay.joined for p in phones)
    published = sum(p.overlay.counters.publishes for p in phones)
    assert published >= len(phones)
    for caller in phones[::7]:
        for callee in phones:
            if callee is caller:
                continue
            event = lookup(world, caller, callee.overlay.number)
            assert addresses(event) == [callee.addr]
            assert event.records[0].public_key == callee.overlay.public_key


def test_a_moved_phone_is_found_at_its_new_address_after_republishing() -> None:
    world = cold_world(30)
    mover, caller = world.phones[5], world.phones[20]
    new_addr: Addr = ("100.127.250.9", 7100)
    world.sim.move_node(mover.addr, new_addr)
    mover.addr = new_addr
    seq = mover.overlay.publish(addresses=((CandidateKind.HOST, new_addr),), now=world.sim.now)
    world.sim.poke(new_addr)
    world.sim.run_for(10.0)
    event = lookup(world, caller, mover.overlay.number)
    assert addresses(event) == [new_addr]
    assert isinstance(event, LookupCompleted) and event.records[0].seq == seq


def test_records_outlive_their_ttl_by_republishing() -> None:
    world = cold_world(25, record_ttl_s=120, republish_s=50.0)
    world.sim.run_for(400.0)  # > 3 TTLs
    event = lookup(world, world.phones[3], world.phones[17].overlay.number)
    assert addresses(event) == [world.phones[17].addr]


def test_an_unknown_number_fails_cleanly() -> None:
    world = cold_world(20)
    event = lookup(world, world.phones[0], "000000000001")
    assert isinstance(event, LookupFailed) and event.reason == "not found"


def test_a_restarted_phone_with_a_lost_counter_catches_up() -> None:
    """Storers hold seq N; the phone restarts counting from 1: STALE says N, the phone jumps."""
    world = cold_world(25)
    old = world.phones[8]
    world.sim.remove_node(old.addr)
    identity: Identity = old.overlay.identity
    fresh = Overlay(
        identity=identity,
        rng=world.sim.node_rng("restarted"),
        binding=world.binding,
        number=old.overlay.number,
        config=world.config,
    )
    new_addr: Addr = ("100.127.250.10", 7200)
    world.sim.add_node(new_addr, fresh)
    fresh.bootstrap([(None, world.phones[0].addr)], now=world.sim.now)
    fresh.publish(addresses=((CandidateKind.HOST, new_addr),), now=world.sim.now)
    world.sim.poke(new_addr)
    world.sim.run_for(30.0)
    event = lookup(world, world.phones[2], old.overlay.number)
    assert addresses(event) == [new_addr]
    seqs = []
    while (e := fresh.next_event()) is not None:
        if isinstance(e, RecordPublished):
            seqs.append(e.seq)
    assert seqs and seqs[-1] > 1


def test_lookups_survive_a_fifth_of_liars_and_no_forgery_is_accepted() -> None:
    world = cold_world(80, seed=11, malicious=0.2)
    world.sim.run_for(120.0)  # past the first republish after joining
    honest = [p for p in world.phones if not p.malicious]
    liars = [p for p in world.phones if p.malicious]
    assert len(liars) >= 10
    ok = 0
    tried = 0
    for caller in honest[::6]:
        for callee in honest[1::5]:
            if callee is caller:
                continue
            tried += 1
            event = lookup(world, caller, callee.overlay.number)
            if isinstance(event, LookupCompleted):
                assert all(r.public_key == callee.overlay.public_key for r in event.records)
                ok += 1
    assert ok >= 0.95 * tried
    rejected = sum(
        p.overlay.counters.records_rejected_binding + p.overlay.counters.records_rejected_signature
        for p in honest
    )
    assert rejected > 0, "the liars did try forgeries; every one must have been rejected"


def test_same_seed_same_run() -> None:
    def run() -> list[tuple[str, int]]:
        world = cold_world(15, seed=3)
        return [(p.overlay.number, len(p.overlay.table)) for p in world.phones] + [
            ("events", world.sim.events)
        ]

    assert run() == run()


def test_sim_number_is_a_twelve_digit_stand_in() -> None:
    number = sim_number(bytes(32))
    assert len(number) == 12 and number.isdigit()
