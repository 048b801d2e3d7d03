"""Supernodes and NAT clients: who serves the DHT, and how clients stay reachable."""

import dataclasses
import itertools

from peerline.proto.identity import Identity
from peerline.proto.overlay.events import LookupCompleted, RoleChanged
from peerline.proto.overlay.ids import as_int, node_id
from peerline.proto.overlay.overlay import Overlay, OverlayConfig
from peerline.sim.numbers import sim_number
from peerline.sim.overlay_world import OverlayWorld
from peerline.types import Addr
from peerline.wire.record import CandidateKind


def world_with_clients(
    members: int, clients: int, *, max_clients: int = 256
) -> tuple[OverlayWorld, list[tuple[Addr, Overlay]]]:
    world = OverlayWorld(seed=5, config=OverlayConfig(max_clients=max_clients))
    world.populate(members, warm=False)
    world.sim.run_for(30.0)
    out = []
    for i in range(clients):
        me = Identity.from_seed(bytes([200 + i]) * 32)
        ov = Overlay(
            identity=me,
            rng=world.sim.node_rng(f"client{i}"),
            binding=world.binding,
            number=sim_number(me.public_key),
            config=dataclasses.replace(world.config, member=False),
        )
        addr: Addr = (f"100.100.{i}.9", 40000 + i)
        world.sim.add_node(addr, ov)
        ov.bootstrap([(None, world.phones[i].addr)], now=world.sim.now)
        ov.publish(addresses=((CandidateKind.REFLEXIVE, addr),), now=world.sim.now)
        world.sim.poke(addr)
        out.append((addr, ov))
    world.sim.run_for(60.0)
    return world, out


def test_clients_keep_relays_listed_in_their_record_and_stay_out_of_routing_tables() -> None:
    world, clients = world_with_clients(12, 4)
    member_keys = {p.overlay.public_key for p in world.phones}
    for _, client in clients:
        assert not client.member
        assert len(client.relays) == 3
        assert {r.public_key for r in client.relays} <= member_keys
        record = client.record
        assert record is not None and record.relays == client.relays
        ident = as_int(node_id(client.public_key))
        assert all(ident not in p.overlay.table for p in world.phones)
    # A member finds a client's record, relays included (the rendezvous for hole punching).
    caller = world.phones[7]
    _, client = clients[2]
    lid = caller.overlay.lookup(client.number, now=world.sim.now)
    world.sim.poke(caller.addr)
    world.sim.run_for(5.0)
    events = []
    while (e := caller.overlay.next_event()) is not None:
        if isinstance(e, LookupCompleted) and e.lookup_id == lid:
            events.append(e)
    (found,) = events
    assert found.records[0].relays == client.relays


def test_clients_ping_their_relays_often_enough_to_hold_a_nat_mapping() -> None:
    world, clients = world_with_clients(10, 1)
    _, client = clients[0]
    relay_addrs = {r.addr for r in client.relays}
    sends: list[tuple[float, Addr]] = []
    original = client.datagrams_to_send

    def spy(*, now: float) -> list[tuple[bytes, Addr]]:
        out = original(now=now)
        sends.extend((now, to) for _, to in out if to in relay_addrs)
        return out

    client.datagrams_to_send = spy  # type: ignore[method-assign]
    world.sim.run_for(120.0)
    for relay in relay_addrs:
        times = sorted(t for t, to in sends if to == relay)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert times and max(gaps) <= 25.0, (relay, gaps)


def test_a_full_supernode_refuses_new_clients_and_they_pick_another() -> None:
    world, clients = world_with_clients(8, 5, max_clients=2)  # 15 relay slots wanted, 16 offered
    refused = sum(p.overlay.counters.clients_refused for p in world.phones)
    assert refused >= 1
    load = {p.overlay.public_key: len(p.overlay.roles.clients) for p in world.phones}
    assert max(load.values()) <= 2
    for _, client in clients:
        assert len(client.relays) >= 2  # refused ones were replaced where there was room
        assert all(load[r.public_key] >= 1 for r in client.relays)


def test_auto_role_follows_how_peers_see_the_phone() -> None:
    world = OverlayWorld(seed=9)
    world.populate(6, warm=False)
    world.sim.run_for(20.0)
    results = {}
    for name, host_addr in (("public", None), ("natted", ("10.0.0.5", 4720))):
        me = Identity.from_seed(bytes([77 if name == "public" else 78]) * 32)
        ov = Overlay(
            identity=me,
            rng=world.sim.node_rng(name),
            binding=world.binding,
            number=sim_number(me.public_key),
            config=OverlayConfig(member=None),
        )
        addr: Addr = ("100.99.0.1", 5000) if name == "public" else ("100.99.0.2", 5000)
        ov.set_host_addresses([host_addr or addr], now=world.sim.now)
        world.sim.add_node(addr, ov)
        ov.bootstrap(
            [(None, world.phones[0].addr), (None, world.phones[1].addr)], now=world.sim.now
        )
        world.sim.poke(addr)
        world.sim.run_for(30.0)
        roles = []
        while (e := ov.next_event()) is not None:
            if isinstance(e, RoleChanged):
                roles.append(e.member)
        results[name] = (ov.member, ov.reflexive, roles)
    assert results["public"][0] is True and results["public"][1] == ("100.99.0.1", 5000)
    assert results["natted"][0] is False and results["natted"][2] == [False]
