"""Tests for ``peerline.sim``: VirtualClock, Network and Simulator.

Every test drives a small test-only endpoint (``EchoNode``) through the same five calls the
protocol core exposes; a failing assertion prints ``sim.trace_tail()`` (seed plus last lines).
"""

import itertools
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerline.sim import (
    DEFAULT_MTU,
    ClockError,
    LinkProfile,
    Network,
    SimulationError,
    Simulator,
    VirtualClock,
)
from peerline.sim.nat import Nat
from peerline.types import Addr

A: Addr = ("10.0.0.1", 4000)
B: Addr = ("10.0.0.2", 4000)
C: Addr = ("10.0.0.3", 4000)
NOWHERE: Addr = ("10.0.0.99", 4000)


class EchoNode:
    """Test-only endpoint: answers b"ping<token>" with b"pong<token>", pings with retransmission.

    It also checks the driver's contract from inside: ``now`` never decreases across calls, and
    ``handle_timer`` never runs before the deadline it asked for.
    """

    def __init__(self, *, rto: float = 1.0, echo: bool = True) -> None:
        self.rto = rto
        self.echo = echo
        self.outbox: list[tuple[bytes, Addr]] = []
        self.received: list[tuple[float, bytes, Addr]] = []
        self.timer_calls: list[float] = []
        self.deadline: float | None = None
        self.pinging: tuple[bytes, Addr] | None = None
        self.pongs = 0
        self.last_now = float("-inf")

    # ---- API a test calls (followed by sim.poke)
    def send(self, data: bytes, dst: Addr) -> None:
        self.outbox.append((data, dst))

    def ping(self, dst: Addr, token: bytes, *, now: float) -> None:
        self.pinging = (b"ping" + token, dst)
        self.outbox.append(self.pinging)
        self.deadline = now + self.rto

    # ---- the five calls
    def _saw(self, now: float) -> None:
        assert now >= self.last_now, f"time went backwards: {self.last_now} -> {now}"
        self.last_now = now

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        self._saw(now)
        self.received.append((now, data, addr))
        if self.echo and data.startswith(b"ping"):
            self.outbox.append((b"pong" + data[4:], addr))
        elif self.pinging is not None and data == b"pong" + self.pinging[0][4:]:
            self.pongs += 1
            self.pinging = None
            self.deadline = None

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        self._saw(now)
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        return self.deadline

    def handle_timer(self, *, now: float) -> None:
        self._saw(now)
        assert self.deadline is not None, "handle_timer without a deadline"
        assert now >= self.deadline, f"timer fired early: {now} < {self.deadline}"
        self.timer_calls.append(now)
        if self.pinging is not None:
            self.outbox.append(self.pinging)
            self.deadline = now + self.rto
        else:
            self.deadline = None


def stamped(seq: int, sent_at: float) -> bytes:
    """A payload carrying its sequence number and send time."""
    return struct.pack("!Id", seq, sent_at)


def unstamp(data: bytes) -> tuple[int, float]:
    seq, sent_at = struct.unpack("!Id", data)
    return int(seq), float(sent_at)


def two_nodes(
    profile: LinkProfile, *, seed: int = 1, trace: bool = False
) -> tuple[Simulator, EchoNode, EchoNode]:
    sim = Simulator(seed, Network(profile), trace=trace)
    a, b = EchoNode(echo=False), EchoNode(echo=False)
    sim.add_node(A, a)
    sim.add_node(B, b)
    return sim, a, b


def blast(sim: Simulator, src: Addr, dst: Addr, n: int, gap: float) -> None:
    """Send ``n`` stamped datagrams from the node at ``src`` to ``dst``, one every ``gap`` s."""
    node = sim.node(src)
    assert isinstance(node, EchoNode)
    for i in range(n):
        sim.run_until(i * gap)
        node.send(stamped(i, sim.now), dst)
        sim.poke(src)


# ------------------------------------------------------------------------------- clock


def test_virtual_clock_advances_and_refuses_to_go_back() -> None:
    clock = VirtualClock()
    clock.advance_to(1.5)
    clock.advance_to(1.5)
    assert clock.now == 1.5
    with pytest.raises(ClockError):
        clock.advance_to(1.0)
    with pytest.raises(ClockError):
        clock.advance_to(float("nan"))
    assert clock.now == 1.5


# ---------------------------------------------------------------------------- network


def test_link_profile_rejects_invalid_values() -> None:
    with pytest.raises(ValueError, match="loss"):
        LinkProfile(loss=1.5)
    with pytest.raises(ValueError, match="latency_s"):
        LinkProfile(latency_s=-0.1)
    with pytest.raises(ValueError, match="mtu"):
        LinkProfile(mtu=0)
    assert LinkProfile().mtu == DEFAULT_MTU == 1472


def test_delivery_without_jitter_arrives_after_exactly_the_latency() -> None:
    sim, _, b = two_nodes(LinkProfile(latency_s=0.05))
    blast(sim, A, B, 20, 0.01)
    sim.run_for(1.0)
    assert len(b.received) == 20, sim.trace_tail()
    for now, data, src in b.received:
        _, sent_at = unstamp(data)
        assert src == A
        assert now == pytest.approx(sent_at + 0.05)


def test_delivery_with_jitter_arrives_within_latency_plus_jitter() -> None:
    sim, _, b = two_nodes(LinkProfile(latency_s=0.05, jitter_s=0.02))
    blast(sim, A, B, 300, 0.001)
    sim.run_for(1.0)
    delays = [now - unstamp(data)[1] for now, data, _ in b.received]
    assert len(delays) == 300
    assert all(0.05 - 1e-12 <= d <= 0.07 + 1e-12 for d in delays), sim.trace_tail()
    assert max(delays) - min(delays) > 0.015  # jitter actually spreads arrivals


def test_per_pair_link_overrides_the_default_profile() -> None:
    net = Network(LinkProfile(latency_s=0.01))
    net.set_link(A[0], C[0], LinkProfile(latency_s=0.3))
    sim = Simulator(3, net)
    a, b, c = EchoNode(echo=False), EchoNode(echo=False), EchoNode(echo=False)
    for addr, node in ((A, a), (B, b), (C, c)):
        sim.add_node(addr, node)
    a.send(b"x", B)
    a.send(b"y", C)
    c.send(b"z", A)  # symmetric by default
    sim.poke(A)
    sim.poke(C)
    sim.run_for(1.0)
    assert [now for now, _, _ in b.received] == [pytest.approx(0.01)]
    assert [now for now, _, _ in c.received] == [pytest.approx(0.3)]
    assert [now for now, _, _ in a.received] == [pytest.approx(0.3)]


def test_loss_at_30_percent_drops_about_30_percent_of_2000() -> None:
    sim, _, b = two_nodes(LinkProfile(latency_s=0.01, loss=0.3), seed=7)
    blast(sim, A, B, 2000, 0.0005)
    sim.run_for(1.0)
    stats = sim.network.stats
    assert stats.sent == 2000
    assert stats.dropped_loss + stats.delivered == 2000
    assert len(b.received) == stats.delivered
    assert 0.27 <= stats.dropped_loss / 2000 <= 0.33, stats


def test_reordering_lets_later_datagrams_overtake_earlier_ones() -> None:
    sim, _, b = two_nodes(LinkProfile(latency_s=0.01, reorder=0.2, reorder_delay_s=0.05))
    blast(sim, A, B, 200, 0.001)
    sim.run_for(1.0)
    order = [unstamp(data)[0] for _, data, _ in b.received]
    assert sorted(order) == list(range(200))
    inversions = sum(1 for x, y in itertools.pairwise(order) if x > y)
    assert inversions > 10, sim.trace_tail()


def test_without_reordering_or_jitter_order_is_preserved() -> None:
    sim, _, b = two_nodes(LinkProfile(latency_s=0.01))
    blast(sim, A, B, 200, 0.0)  # all at t=0: ties break by send order
    sim.run_for(1.0)
    assert [unstamp(data)[0] for _, data, _ in b.received] == list(range(200))


def test_duplicate_at_probability_one_delivers_every_datagram_twice() -> None:
    sim, _, b = two_nodes(LinkProfile(latency_s=0.01, jitter_s=0.005, duplicate=1.0))
    blast(sim, A, B, 50, 0.01)
    sim.run_for(1.0)
    seqs = sorted(unstamp(data)[0] for _, data, _ in b.received)
    assert seqs == sorted(list(range(50)) * 2)
    assert sim.network.stats.duplicated == 50
    assert sim.network.stats.delivered == 100


def test_duplicate_at_half_duplicates_about_half() -> None:
    sim, _, b = two_nodes(LinkProfile(latency_s=0.01, duplicate=0.5), seed=11)
    blast(sim, A, B, 1000, 0.001)
    sim.run_for(1.0)
    assert 400 <= sim.network.stats.duplicated <= 600
    assert len(b.received) == 1000 + sim.network.stats.duplicated


def test_partition_drops_both_ways_spares_others_and_heals() -> None:
    net = Network(LinkProfile(latency_s=0.01))
    sim = Simulator(5, net)
    a, b, c = EchoNode(echo=False), EchoNode(echo=False), EchoNode(echo=False)
    for addr, node in ((A, a), (B, b), (C, c)):
        sim.add_node(addr, node)
    net.partition({A[0]}, {B[0]})
    a.send(b"a>b", B)
    b.send(b"b>a", A)
    a.send(b"a>c", C)
    sim.poke(A)
    sim.poke(B)
    sim.run_for(1.0)
    assert a.received == [] and b.received == []
    assert [d for _, d, _ in c.received] == [b"a>c"]
    assert net.stats.dropped_partition == 2
    net.heal()
    a.send(b"a>b", B)
    sim.poke(A)
    sim.run_for(1.0)
    assert [d for _, d, _ in b.received] == [b"a>b"]


def test_datagrams_over_the_mtu_are_dropped() -> None:
    sim, a, b = two_nodes(LinkProfile(latency_s=0.01, mtu=100))
    a.send(b"x" * 100, B)
    a.send(b"y" * 101, B)
    sim.poke(A)
    sim.run_for(1.0)
    assert [len(d) for _, d, _ in b.received] == [100]
    assert sim.network.stats.dropped_mtu == 1


# ----------------------------------------------------------------------------- timers


def test_timer_fires_at_exactly_the_requested_deadline() -> None:
    sim = Simulator(1)
    node = EchoNode()
    sim.add_node(A, node)
    node.deadline = 1.234567
    sim.poke(A)
    sim.run_until(1.234566)
    assert node.timer_calls == []
    sim.run_until(2.0)
    assert node.timer_calls == [1.234567]


def test_past_deadline_fires_at_now_never_before_it() -> None:
    sim = Simulator(1)
    node = EchoNode()
    sim.add_node(A, node)
    sim.run_until(5.0)
    node.deadline = 3.0  # already due
    sim.poke(A)
    assert sim.step()
    assert node.timer_calls == [5.0]


def test_superseded_timer_does_not_fire() -> None:
    sim = Simulator(1)
    node = EchoNode()
    sim.add_node(A, node)
    node.deadline = 5.0
    sim.poke(A)
    node.deadline = 10.0
    sim.poke(A)
    sim.run_until(9.99)
    assert node.timer_calls == []
    sim.run_until(20.0)
    assert node.timer_calls == [10.0]
    node.deadline = 30.0
    sim.poke(A)
    node.deadline = None
    sim.poke(A)
    sim.run_until(40.0)
    assert node.timer_calls == [10.0]
    assert sim.pending == 0


def test_deadline_moved_later_without_poke_is_not_fired_early() -> None:
    sim = Simulator(1)
    node = EchoNode()
    sim.add_node(A, node)
    node.deadline = 1.0
    sim.poke(A)
    node.deadline = 2.0  # the test "forgot" to poke
    sim.run_until(3.0)
    assert node.timer_calls == [2.0]


def test_node_whose_timer_stays_due_stops_the_run() -> None:
    class Stuck(EchoNode):
        def handle_timer(self, *, now: float) -> None:
            self.timer_calls.append(now)  # never clears its deadline

    sim = Simulator(1, max_timer_spins=50)
    node = Stuck()
    node.deadline = 1.0
    sim.add_node(A, node)
    with pytest.raises(SimulationError, match="fired its timer"):
        sim.run_until(2.0)


def test_many_superseded_timers_are_compacted_and_never_fire() -> None:
    sim = Simulator(1)
    node = EchoNode()
    sim.add_node(A, node)
    for i in range(20_000):
        node.deadline = 100.0 - i * 0.001
        sim.poke(A)
    assert sim.pending == 1  # 19,999 stale entries are skipped (or compacted away) unseen
    sim.run_until(200.0)
    assert node.timer_calls == [pytest.approx(100.0 - 19_999 * 0.001)]


def test_infinite_deadline_means_no_timer_and_nan_is_refused() -> None:
    sim = Simulator(1)
    node = EchoNode()
    sim.add_node(A, node)
    node.deadline = float("inf")
    sim.poke(A)
    assert sim.pending == 0
    node.deadline = float("nan")
    with pytest.raises(SimulationError, match="returned timer"):
        sim.poke(A)


def test_ping_retransmits_every_rto_until_the_partition_heals() -> None:
    net = Network(LinkProfile(latency_s=0.05))
    sim = Simulator(2, net)
    pinger, echo = EchoNode(rto=0.2), EchoNode()
    sim.add_node(A, pinger)
    sim.add_node(B, echo)
    net.partition({A[0]}, {B[0]})
    sim.call_at(0.5, net.heal)
    pinger.ping(B, b"42", now=sim.now)
    sim.poke(A)
    assert sim.run_until_predicate(lambda: pinger.pongs == 1, timeout=30.0), sim.trace_tail()
    assert pinger.timer_calls == [pytest.approx(t) for t in (0.2, 0.4, 0.6)]
    assert sim.now == pytest.approx(0.7)  # the 0.6 ping's pong: two one-way latencies later
    assert net.stats.dropped_partition == 3
    assert pinger.deadline is None


def test_ping_with_retransmit_timer_gets_through_heavy_loss() -> None:
    sim = Simulator(2, Network(LinkProfile(latency_s=0.05, loss=0.7)))
    pinger, echo = EchoNode(rto=0.2), EchoNode()
    sim.add_node(A, pinger)
    sim.add_node(B, echo)
    pinger.ping(B, b"42", now=sim.now)
    sim.poke(A)
    assert sim.run_until_predicate(lambda: pinger.pongs == 1, timeout=60.0), sim.trace_tail()
    assert pinger.deadline is None


def test_run_until_predicate_times_out_with_the_clock_at_the_deadline() -> None:
    sim = Simulator(1)
    node = EchoNode()
    sim.add_node(A, node)
    assert not sim.run_until_predicate(lambda: False, timeout=2.5)
    assert sim.now == 2.5
    assert sim.run_until_predicate(lambda: True, timeout=1.0)
    assert sim.now == 2.5
    node.deadline = 4.0
    sim.poke(A)
    assert not sim.run_until_predicate(lambda: False, timeout=math.inf)  # ends when idle
    assert sim.now == 4.0
    with pytest.raises(ClockError):
        sim.run_until_predicate(lambda: False, timeout=-1.0)
    with pytest.raises(ClockError):
        sim.run_until(math.inf)


# ----------------------------------------------------------------------- determinism


def lossy_run(seed: int) -> tuple[str, Simulator]:
    """Ten nodes pinging each other over a lossy, jittery, reordering, duplicating network."""
    profile = LinkProfile(latency_s=0.03, jitter_s=0.01, loss=0.2, reorder=0.1, duplicate=0.05)
    sim = Simulator(seed, Network(profile))
    addrs = [(f"10.0.1.{i}", 4000) for i in range(10)]
    nodes = [EchoNode(rto=0.25) for _ in addrs]
    for addr, node in zip(addrs, nodes, strict=True):
        sim.add_node(addr, node)
    for i, (addr, node) in enumerate(zip(addrs, nodes, strict=True)):
        node.ping(addrs[(i + 3) % 10], str(i).encode(), now=sim.now)
        sim.poke(addr)
    sim.run_for(10.0)
    return sim.trace_digest(), sim


def test_same_seed_gives_identical_trace_digest() -> None:
    first, sim = lossy_run(1234)
    second, _ = lossy_run(1234)
    assert first == second
    assert sim.network.stats.dropped_loss > 0


def test_different_seed_gives_different_trace_digest_under_loss() -> None:
    assert lossy_run(1)[0] != lossy_run(2)[0]


def test_full_trace_reads_as_lines_and_tail_names_the_seed() -> None:
    sim, _, _ = two_nodes(LinkProfile(latency_s=0.01, loss=0.5), seed=9, trace=True)
    blast(sim, A, B, 20, 0.01)
    sim.run_for(1.0)
    assert any(" recv 10.0.0.1:4000>10.0.0.2:4000 12 " in line for line in sim.trace)
    assert any(" drop-loss 10.0.0.1:4000>10.0.0.2:4000 12" in line for line in sim.trace)
    tail = sim.trace_tail(5)
    assert tail[0].startswith("seed=9 ") and tail[1:] == sim.trace[-5:]


def test_digest_does_not_depend_on_when_it_is_read() -> None:
    sims = [two_nodes(LinkProfile(latency_s=0.01, loss=0.2), seed=4)[0] for _ in range(2)]
    for i in range(1500):  # more than one hashing batch
        for sim in sims:
            sim.run_until(i * 0.001)
            node = sim.node(A)
            assert isinstance(node, EchoNode)
            node.send(stamped(i, sim.now), B)
            sim.poke(A)
        if i % 7 == 0:
            sims[0].trace_digest()
    for sim in sims:
        sim.run_for(1.0)
    assert sims[0].trace_digest() == sims[1].trace_digest()


def test_digest_does_not_depend_on_the_python_hash_seed() -> None:
    """Trace ids come from CRC-32, not ``hash()``, so another process gets the same digest."""
    code = "from tests.sim.test_simulator import lossy_run; print(lossy_run(77)[0])"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == lossy_run(77)[0]


def test_exception_in_a_node_carries_the_seed_and_trace_tail() -> None:
    class Broken(EchoNode):
        def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
            raise RuntimeError("boom")

    sim = Simulator(31)
    sender = EchoNode()
    sim.add_node(A, sender)
    sim.add_node(B, Broken())
    sender.send(b"x", B)
    sim.poke(A)
    with pytest.raises(RuntimeError, match="boom") as info:
        sim.run_for(1.0)
    notes = "\n".join(info.value.__notes__)
    assert "seed=31" in notes and "recv 10.0.0.1:4000>10.0.0.2:4000 1" in notes


def test_tracing_off_costs_nothing_and_says_so() -> None:
    sim = Simulator(1, digest=False)
    sim.add_node(A, EchoNode())
    with pytest.raises(SimulationError, match="tracing is off"):
        sim.trace_digest()
    with pytest.raises(SimulationError, match="trace=True"):
        _ = sim.trace
    assert sim.trace_tail() == ["seed=1 now=0.0"]


def test_node_rng_is_deterministic_per_seed_and_name() -> None:
    assert Simulator(1).node_rng("a").random_bytes(8) == Simulator(1).node_rng("a").random_bytes(8)
    assert Simulator(1).node_rng("a").random() != Simulator(1).node_rng("b").random()
    assert Simulator(1).node_rng("a").random() != Simulator(2).node_rng("a").random()


def observed_run(observe: bool) -> tuple[str, list[tuple[float, Addr, Addr, bytes, str]]]:
    """C behind a NAT pings B and hears the pong; A sends to C's mapping (filtered), to
    nobody, and one datagram over the MTU. Returns the digest and what the observer saw."""
    seen: list[tuple[float, Addr, Addr, bytes, str]] = []
    sim = Simulator(
        5,
        Network(LinkProfile(latency_s=0.01, mtu=100)),
        observer=(lambda *d: seen.append(d)) if observe else None,
    )
    nat = sim.add_nat(Nat("198.51.100.1"))
    inside: Addr = ("192.168.0.2", 4000)
    a, c = EchoNode(echo=False), EchoNode(echo=False)
    sim.add_node(A, a)
    sim.add_node(B, EchoNode())
    sim.add_node(inside, c, nat=nat)
    c.send(b"ping1", B)
    sim.poke(inside)
    sim.run_for(0.5)
    mapped = nat.mapping(inside, B)
    assert mapped is not None
    a.send(b"let me in", mapped)
    a.send(b"anyone?", NOWHERE)
    a.send(bytes(101), B)
    sim.poke(A)
    sim.run_for(0.5)
    assert [d for _, d, _ in c.received] == [b"pong1"]
    stats = sim.network.stats
    assert (stats.dropped_nat, stats.dropped_no_node, stats.dropped_mtu) == (1, 1, 1)
    return sim.trace_digest(), seen


def test_observer_sees_every_datagram_sent_and_what_became_of_it() -> None:
    """Sends with the network's outcome and the source after NAT; arrivals as ``recv``,
    ``drop-nat`` or ``drop-nonode`` (also counted with a NAT on the network), to the address as
    sent; payloads whole. Observing changes neither the run nor its digest."""
    digest, seen = observed_run(True)
    mapped: Addr = ("198.51.100.1", 30000)
    assert seen == [
        (0.0, mapped, B, b"ping1", "deliver"),
        (0.01, mapped, B, b"ping1", "recv"),
        (0.01, B, mapped, b"pong1", "deliver"),
        (0.02, B, mapped, b"pong1", "recv"),
        (0.5, A, mapped, b"let me in", "deliver"),
        (0.5, A, NOWHERE, b"anyone?", "deliver"),
        (0.5, A, B, bytes(101), "drop-mtu"),
        (0.51, A, mapped, b"let me in", "drop-nat"),
        (0.51, A, NOWHERE, b"anyone?", "drop-nonode"),
    ]
    assert observed_run(False)[0] == digest


# ------------------------------------------------------------------------ churn, moves


def test_removed_node_stops_receiving_and_its_timers_stop() -> None:
    sim, a, b = two_nodes(LinkProfile(latency_s=0.1))
    b.deadline = 0.5
    sim.poke(B)
    a.send(b"in flight", B)
    sim.poke(A)
    sim.run_until(0.05)
    assert sim.remove_node(B) is b
    a.send(b"after", B)
    sim.poke(A)
    sim.run_for(2.0)
    assert b.received == [] and b.timer_calls == []
    assert sim.network.stats.dropped_no_node == 2
    assert B not in sim and len(sim) == 1


def test_datagram_to_an_address_without_a_node_is_counted_and_dropped() -> None:
    sim, a, _ = two_nodes(LinkProfile(latency_s=0.01))
    a.send(b"?", NOWHERE)
    sim.poke(A)
    sim.run_for(1.0)
    assert sim.network.stats.dropped_no_node == 1
    assert sim.network.stats.delivered == 0


def test_moved_node_receives_at_its_new_address_and_sends_from_it() -> None:
    sim, a, b = two_nodes(LinkProfile(latency_s=0.01))
    new_b: Addr = ("192.0.2.7", 5000)
    b.deadline = 0.5
    sim.poke(B)
    sim.move_node(B, new_b)
    a.send(b"old", B)
    a.send(b"new", new_b)
    b.send(b"hello", A)
    sim.poke(A)
    sim.poke(new_b)
    sim.run_for(1.0)
    assert [d for _, d, _ in b.received] == [b"new"]
    assert [(d, src) for _, d, src in a.received] == [(b"hello", new_b)]
    assert b.timer_calls == [0.5]  # its timer moved with it
    assert sim.node(new_b) is b
    with pytest.raises(ValueError, match="already has a node"):
        sim.move_node(A, new_b)


def test_call_at_runs_scripted_actions_in_virtual_time() -> None:
    sim, a, b = two_nodes(LinkProfile(latency_s=0.01))
    seen: list[float] = []
    sim.call_at(3.0, lambda: seen.append(sim.now))
    sim.call_at(1.0, lambda: sim.network.partition({A[0]}, {B[0]}))
    sim.run_until(5.0)
    assert seen == [3.0]
    a.send(b"x", B)
    sim.poke(A)
    sim.run_for(1.0)
    assert b.received == []
    with pytest.raises(ClockError):
        sim.call_at(1.0, lambda: None)


# ------------------------------------------------------------------------- properties

profiles = st.builds(
    LinkProfile,
    latency_s=st.floats(0.0, 0.3),
    jitter_s=st.floats(0.0, 0.2),
    loss=st.floats(0.0, 1.0),
    reorder=st.floats(0.0, 1.0),
    reorder_delay_s=st.floats(0.0, 0.3),
    duplicate=st.floats(0.0, 1.0),
    mtu=st.integers(1, 1600),
)
NODES = [A, B, C]
schedule = st.lists(
    st.tuples(
        st.floats(0.0, 0.5),  # wait before sending
        st.integers(0, 2),  # sender
        st.sampled_from([*NODES, NOWHERE]),  # destination
        st.integers(0, 1600),  # size
        st.booleans(),  # ping (echoed) or plain data
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    default=profiles,
    override=profiles,
    sends=schedule,
    partition=st.booleans(),
)
def test_random_profiles_and_schedules_never_raise_or_run_time_backwards(
    seed: int,
    default: LinkProfile,
    override: LinkProfile,
    sends: list[tuple[float, int, Addr, int, bool]],
    partition: bool,
) -> None:
    net = Network(default)
    net.set_link(A[0], B[0], override)
    if partition:
        net.partition({C[0]}, {A[0]})
    sim = Simulator(seed, net)
    nodes = [EchoNode() for _ in NODES]
    for addr, node in zip(NODES, nodes, strict=True):
        sim.add_node(addr, node)
    times = [sim.now]
    for wait, sender, dst, size, ping in sends:
        sim.run_for(wait)
        times.append(sim.now)
        payload = (b"ping" if ping else b"data") + bytes(max(0, size - 4))
        nodes[sender].send(payload, dst)
        sim.poke(NODES[sender])
    while sim.step():  # no timers are armed, so this drains every datagram and echo
        times.append(sim.now)
    assert times == sorted(times)
    s = net.stats
    in_flight_end = s.sent - s.dropped_loss - s.dropped_partition - s.dropped_mtu + s.duplicated
    assert s.delivered + s.dropped_no_node == in_flight_end
    assert sim.pending == 0
