"""A seed that starts a moment after the phones that name it still joins (protocol.md §9.12.5).

The README's demo starts three phones at once: bob seeded at alice, carol at bob. If bob's
first ping reaches alice's port before alice is listening, and carol enters bob's table before
bob's next maintenance, nothing else ever reaches alice (she has no seed: she is the first).
Pinging an unanswered seed again (after 1, 2, 4 … s, ``OverlayConfig.seed_retry_s``) lets her in.
"""

import dataclasses

from peerline.proto.identity import Identity
from peerline.proto.overlay.ids import as_int, node_id
from peerline.proto.overlay.overlay import Overlay, OverlayConfig
from peerline.sim.numbers import sim_number
from peerline.sim.overlay_world import OverlayWorld
from peerline.types import Addr
from peerline.wire.record import CandidateKind

ALICE: Addr = ("127.0.0.1", 4801)
BOB: Addr = ("127.0.0.1", 4802)
CAROL: Addr = ("127.0.0.1", 4803)


def _overlay(world: OverlayWorld, name: str, seed_byte: int) -> Overlay:
    me = Identity.from_seed(bytes([seed_byte]) * 32)
    return Overlay(
        identity=me,
        rng=world.sim.node_rng(name),
        binding=world.binding,
        number=sim_number(me.public_key),
        config=world.config,
    )


def _start(world: OverlayWorld, addr: Addr, overlay: Overlay, seeds: list[Addr]) -> None:
    world.sim.add_node(addr, overlay)
    overlay.bootstrap([(None, s) for s in seeds], now=world.sim.now)
    overlay.publish(addresses=((CandidateKind.HOST, addr),), now=world.sim.now)
    world.sim.poke(addr)


def _late_seed(config: OverlayConfig) -> tuple[Overlay, Overlay, Overlay]:
    """Bob and carol start at t = 0; alice, bob's seed, 0.3 s later; then 20 s pass."""
    world = OverlayWorld(seed=3, config=config)
    alice, bob, carol = (_overlay(world, n, 90 + i) for i, n in enumerate(("a", "b", "c")))
    _start(world, BOB, bob, [ALICE])
    _start(world, CAROL, carol, [BOB])
    world.sim.run_for(0.3)
    _start(world, ALICE, alice, [])
    world.sim.run_for(20.0)
    return alice, bob, carol


def test_a_seed_that_starts_late_is_pinged_again_and_joins() -> None:
    alice, bob, carol = _late_seed(OverlayConfig())
    assert alice.joined and bob.joined and carol.joined
    assert as_int(node_id(bob.public_key)) in alice.table


def test_without_retries_the_late_seed_is_left_alone() -> None:
    """What the retries are for (the README demo's seed that "never joins")."""
    alice, bob, carol = _late_seed(dataclasses.replace(OverlayConfig(), seed_retries=0))
    assert bob.joined and carol.joined
    assert not alice.joined and len(alice.table) == 0
