"""A relayed session keeps trying to go direct, and moves without dropping anything
(proto.nat.traversal, protocol.md §11.3), in virtual time.

The world of test_traversal.py: a public supernode R relays for phones A and B, each behind a
symmetric NAT, so A's call falls back to R. From then on both phones try to go direct
``upgrade_first_s`` after the path became relayed, then with doubling intervals up to
``upgrade_max_s``: A asks R to introduce it again (B then probes A's candidates) and both probe
the other's direct candidates.

- Both NATs become cone NATs (``Nat.become``). What is modelled, after the lab's routers when
  their nftables table is replaced: flows already made keep their ports and filters (conntrack
  keeps a flow's binding); the first flow a phone sends on afterwards, its relay traffic, lends
  its port as the phone's endpoint-independent mapping (the lab's EIM recipe learns it from
  every outbound packet); filtering stays per address and port; a flow idle for longer than
  the NAT's ``flow_timeout_s`` is forgotten. The candidates the phones exchanged, their
  mappings towards R, are then punchable, but each attempt's probes leave through the flows
  the punch made towards them, from stale ports, and keep those flows alive: the first
  attempt after a wait longer than the flow timeout probes from the right port, its probes
  cross, an echo returns, the session moves and the peer follows. Meanwhile both phones send
  a message every 100 ms: every one arrives exactly once, none fails, no new handshake.
- NATs that stay symmetric: the attempts go on with doubling intervals up to the cap, and the
  session stays on R without losing a message.
- Regressions: the side whose probe moved the session counts the upgrade; NATs that keep idle
  flows for 5 minutes still let the session go direct (the attempts space out beyond that).
"""

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from engine_world import EngineNode  # type: ignore[import-not-found, unused-ignore]
from test_traversal import (  # type: ignore[import-not-found, unused-ignore]
    R_ADDR,
    Setup,
    nat_world,
    relayed_session,
)

from peerline.proto.events import (
    HandshakeCompleted,
    MessageDelivered,
    MessageFailed,
    MessageReceived,
    PathValidated,
    PeerEndpointChanged,
)
from peerline.proto.nat.relay import is_relayed, relay_of
from peerline.proto.nat.traversal import TraversalConfig
from peerline.sim.nat import Nat
from peerline.types import Addr
from peerline.wire.spec import TYPE_RELAY, TYPE_TRANSPORT

EVERY_S = 0.1
"""Each phone sends a message this often while the stream runs."""
STREAM_PHASE_S = 0.07
"""The stream's first messages go this long after the relayed session is up. Its sends stay in
step with the upgrade attempts (whole seconds apart), so this fixes where they fall around each
attempt: 70 ms keeps them out of the window in which a message A sends on the relay after
echoing B's probe moves B back (a race in path migration that about 40 % of phases hit:
``test_a_session_that_went_direct_stays_direct_whatever_the_phase_of_its_traffic``)."""


def upgrade_intervals(config: TraversalConfig, count: int) -> list[float]:
    """The waits before the first ``count`` upgrade attempts: ``upgrade_first_s`` after the
    path became relayed, then doubling up to ``upgrade_max_s``."""
    out = [config.upgrade_first_s]
    while len(out) < count:
        out.append(min(config.upgrade_max_s, out[-1] * 2))
    return out


@dataclass
class Stream:
    """Messages from A to B and from B to A, one from each every ``every_s`` while it runs
    (scheduled on the simulator from ``next_at``)."""

    setup: Setup
    sent: dict[str, list[bytes]] = field(default_factory=lambda: {"A": [], "B": []})
    next_at: float = 0.0
    every_s: float = EVERY_S
    sending: bool = False

    def run(self, until: float, *, stop: Callable[[], bool] | None = None) -> bool:
        """Send while running the world to ``until`` (or until ``stop()``: True then, with the
        clock at the event that made it true)."""
        w = self.setup.world
        if not self.sending:
            self.sending = True
            w.sim.call_at(max(self.next_at, w.now), self._send_both)
        if stop is None:
            w.sim.run_until(until)
            return False
        return w.run_until(stop, timeout=max(0.0, until - w.now))

    def _send_both(self) -> None:
        if not self.sending:
            return
        w = self.setup.world
        for me, other in ((self.setup.a, self.setup.b), (self.setup.b, self.setup.a)):
            n = len(self.sent[me.name])
            self.sent[me.name].append(me.node.send_message(other.key, f"{me.name}{n}", now=w.now))
            w.poke(me)
        self.next_at = w.now + self.every_s
        w.sim.call_at(self.next_at, self._send_both)

    def drain(self, timeout: float) -> None:
        """Stop sending; run until every message sent was acknowledged."""
        w, a, b = self.setup.world, self.setup.a, self.setup.b
        self.sending = False

        def all_acked() -> bool:
            return all(
                set(self.sent[p.name]) <= {e.message_id for e in p.of_type(MessageDelivered)}
                for p in (a, b)
            )

        assert w.run_until(all_acked, timeout=timeout), w.failure()

    def assert_exactly_once(self) -> None:
        """Every message sent arrived once (one MessageReceived per id, none missing) and was
        acknowledged; nothing failed."""
        a, b = self.setup.a, self.setup.b
        for sender, receiver in ((a, b), (b, a)):
            got = [e for e in receiver.of_type(MessageReceived) if e.peer_key == sender.key]
            ids = [e.message_id for e in got]
            streamed = self.sent[sender.name]
            assert len(ids) == len(set(ids)), f"{receiver.name} got a message twice"
            assert set(streamed) <= set(ids), f"{len(set(streamed) - set(ids))} lost"
            texts = {e.message_id: e.text for e in got}
            assert [texts[m] for m in streamed] == [
                f"{sender.name}{n}" for n in range(len(streamed))
            ]
            assert sender.of_type(MessageFailed) == []
            assert sender.node.counters.messages_failed == 0


def direct_both_ways(s: Setup) -> bool:
    w = s.world
    path_a = s.a.node.live_path(s.b.key, now=w.now)
    path_b = s.b.node.live_path(s.a.key, now=w.now)
    if path_a is None or path_b is None:
        return False
    return not (is_relayed(path_a) or is_relayed(path_b))


def nats(s: Setup) -> tuple[Nat, Nat]:
    assert s.a.nat is not None and s.b.nat is not None
    return s.a.nat, s.b.nat


def relayed_with_stream(*, phase_s: float = STREAM_PHASE_S) -> tuple[Setup, Stream, float]:
    """A relayed session between A and B (test_traversal's phase one), and the stream
    started ``phase_s`` later. Returns when A's session went relayed (its upgrade schedule
    starts there)."""
    s = nat_world()
    w, a = s.world, s.a
    relayed_session(s)
    (done,) = a.of_type(HandshakeCompleted)
    assert is_relayed(done.addr) and not direct_both_ways(s)
    # A's only timer now is its first upgrade attempt, upgrade_first_s after the session
    # went relayed (no attempt yet: the phase took less than that).
    traversal = a.engine.traversal
    assert traversal.counters.upgrade_attempts == 0
    first_attempt = traversal.get_timer()
    assert first_attempt is not None and first_attempt > w.now
    stream = Stream(s, next_at=w.now + phase_s)
    return s, stream, first_attempt - traversal.config.upgrade_first_s


def sas(phone: EngineNode, now: float) -> str:
    (session,) = phone.node.sessions(now=now)
    return str(session["sas"])


def expected_upgrade(config: TraversalConfig, flow_timeout_s: float) -> tuple[int, float]:
    """Which attempt should go direct, and when (after the session went relayed), once both
    NATs are cone NATs. Each attempt's probes leave through the flows the punch and earlier
    attempts made towards the same candidates, from their old ports (conntrack keeps them;
    every probe keeps them alive): the first attempt that follows a wait longer than the NATs'
    flow timeout probes from the new mapping, which is the one the peer knows. Attempt 0 comes
    ``upgrade_first_s`` after the punch's last packet, itself within a punch wait: take it
    as the first attempt only for timeouts shorter than that."""
    intervals = upgrade_intervals(config, 64)
    first_gap = config.upgrade_first_s + config.punch_wait_max_s
    if config.upgrade_first_s > flow_timeout_s or first_gap <= flow_timeout_s:
        k = next(i for i in range(1, 64) if intervals[i] > flow_timeout_s)
    else:  # pragma: no cover - ambiguous: a timeout between the two
        raise ValueError(f"flow timeout {flow_timeout_s} s too close to the first attempt")
    return k, sum(intervals[: k + 1])


@pytest.mark.parametrize("flow_timeout_s", [5.0, 30.0])
def test_a_relayed_session_goes_direct_when_the_nats_allow_it_without_losing_a_message(
    flow_timeout_s: float,
) -> None:
    """Both NATs become cone NATs right after the session went relayed; their idle UDP flows
    expire after ``flow_timeout_s`` (30 s: Linux conntrack for a flow never answered, and the
    lab's routers; 5 s: the lab variant's routers)."""
    s, stream, relayed_at = relayed_with_stream()
    w, a, b = s.world, s.a, s.b
    config = a.engine.traversal.config
    nat_a, nat_b = nats(s)
    sas_before = sas(a, w.now)
    assert sas(b, w.now) == sas_before
    handshakes = (a.node.counters.handshakes_completed, b.node.counters.handshakes_completed)
    switched_at = w.now
    seen_a, seen_b = len(a.events), len(b.events)
    for nat in (nat_a, nat_b):
        nat.flow_timeout_s = flow_timeout_s
        nat.become("cone")
    # Direct at the first attempt the NATs let through; at the latest within twice the
    # schedule up to it (computed from the config and the NATs' flow timeout).
    k, after = expected_upgrade(config, flow_timeout_s)
    assert stream.run(relayed_at + 2 * after, stop=lambda: direct_both_ways(s)), (
        a.engine.traversal.counters,
        b.engine.traversal.counters,
    )
    direct_at = w.now
    assert relayed_at + after <= direct_at < relayed_at + after + 1.0, (after, direct_at)
    assert a.engine.traversal.counters.upgrade_attempts == k + 1
    # Keep talking on the direct path for a while, then let everything be acknowledged.
    stream.run(w.now + 3.0)
    stream.drain(timeout=10.0)
    stream.assert_exactly_once()
    assert len(stream.sent["A"]) >= (direct_at - switched_at) / EVERY_S
    # A probe's echo moved one side; the other followed its next packet.
    validated = [
        p
        for p, seen in ((a, seen_a), (b, seen_b))
        if any(
            isinstance(e, PathValidated) and e.moved and not is_relayed(e.addr)
            for e in p.events[seen:]
        )
    ]
    assert validated, "no probe echo moved either side"
    for p, seen in ((a, seen_a), (b, seen_b)):
        moves = [e for e in p.events[seen:] if isinstance(e, PeerEndpointChanged)]
        assert moves and not is_relayed(moves[-1].addr), p.name
    # Both end on one direct path: each where the other's NAT maps it towards it, which is
    # each one's mapping towards R (the candidates exchanged while relayed).
    assert direct_both_ways(s)
    path_a = a.node.live_path(b.key, now=w.now)
    path_b = b.node.live_path(a.key, now=w.now)
    assert path_a is not None and path_b is not None
    assert path_a == nat_b.mapping(b.addr, path_b) == nat_b.mapping(b.addr, R_ADDR)
    assert path_b == nat_a.mapping(a.addr, path_a) == nat_a.mapping(a.addr, R_ADDR)
    # The session left R: nothing went through it in the last two seconds.
    assert not any(d.sent_at >= w.now - 2.0 and d.data[0] == TYPE_RELAY for d in w.sent)
    # One session throughout: no new handshake, the same SAS on both phones.
    now_handshakes = (a.node.counters.handshakes_completed, b.node.counters.handshakes_completed)
    assert now_handshakes == handshakes
    assert sas(a, w.now) == sas(b, w.now) == sas_before


def test_a_session_that_went_direct_stays_direct_whatever_the_phase_of_its_traffic() -> None:
    """The upgrade of the test above, with the stream's sends at 10 ms steps around the
    attempts. B moves to the direct path when its probe's echo returns; A stays on the relay
    until B's next packet reaches it there, one direct trip later. A message A sends on the
    relay in between reaches B after B moved and is newer than the echo: it must not move B
    back (§5.7, the path a validation left is held for ``RETURN_HOLD_S``), or, with messages
    both ways every 100 ms, each side keeps following the other's newest packet between the
    two paths (which is what happened before the hold: found porting these tests to
    ``peerline.sim``; the former in-test world's stream missed the window by chance). Each
    phase must go direct once, stay there, and lose nothing."""
    flapped: list[tuple[float, str]] = []
    for phase_s in [i * 0.01 for i in range(10)]:
        s, stream, relayed_at = relayed_with_stream(phase_s=phase_s)
        w, a, b = s.world, s.a, s.b
        seen = {p.name: len(p.events) for p in (a, b)}
        for nat in nats(s):
            nat.flow_timeout_s = 5.0
            nat.become("cone")
        _, after = expected_upgrade(a.engine.traversal.config, 5.0)
        assert stream.run(relayed_at + 2 * after, stop=lambda: direct_both_ways(s))  # noqa: B023
        stream.run(w.now + 3.0)
        stream.drain(timeout=10.0)
        stream.assert_exactly_once()
        for p in (a, b):
            moves = [e for e in p.events[seen[p.name] :] if isinstance(e, PeerEndpointChanged)]
            back = [e for e in moves if is_relayed(e.addr)]
            if back or not moves:
                flapped.append((phase_s, f"{p.name}: {len(moves)} moves, {len(back)} back"))
    assert flapped == []


def test_the_side_whose_probe_moved_the_session_counts_the_upgrade() -> None:
    s, stream, relayed_at = relayed_with_stream()
    a, b = s.a, s.b
    seen = {p.name: len(p.events) for p in (a, b)}
    for nat in nats(s):
        nat.flow_timeout_s = 5.0
        nat.become("cone")
    _, after = expected_upgrade(a.engine.traversal.config, 5.0)
    assert stream.run(relayed_at + 2 * after, stop=lambda: direct_both_ways(s))
    validated = [
        p
        for p in (a, b)
        if any(
            isinstance(e, PathValidated) and e.moved and not is_relayed(e.addr)
            for e in p.events[seen[p.name] :]
        )
    ]
    assert validated
    for p in validated:
        counters = p.engine.traversal.counters
        assert counters.upgrade_attempts >= 1
        assert counters.upgrades >= 1, (p.name, counters)


def attempt_times(s: Setup, since: float) -> list[float]:
    """When A probed B's direct candidates (each upgrade attempt probes them all at once)."""
    w, a, b = s.world, s.a, s.b
    nat_a, _ = nats(s)
    known = a.engine.traversal.paths(b.key)["direct_candidates"]
    assert isinstance(known, list) and known
    candidates: set[Addr] = {(str(host), int(port)) for host, port in known}
    times = sorted(
        {
            d.sent_at
            for d in w.sent
            if d.sent_at >= since
            and d.src[0] == nat_a.public_host
            and d.dst in candidates
            and d.data[0] == TYPE_TRANSPORT
        }
    )
    return times


def test_a_relayed_session_behind_symmetric_nats_keeps_trying_with_backoff() -> None:
    s, stream, relayed_at = relayed_with_stream()
    w, a, b = s.world, s.a, s.b
    config = a.engine.traversal.config
    # Long enough to reach the cap and wait it out twice (367 s with the defaults).
    intervals = upgrade_intervals(config, 64)
    to_cap = sum(intervals[: intervals.index(config.upgrade_max_s)])
    duration = to_cap + 2.5 * config.upgrade_max_s
    sas_before = sas(a, w.now)
    stream.run(relayed_at + duration)
    stream.drain(timeout=20.0)
    stream.assert_exactly_once()
    # Still relayed, through R, both ways.
    for me, other in ((a, b), (b, a)):
        path = me.node.live_path(other.key, now=w.now)
        via = relay_of(path) if path is not None else None
        assert via is not None and via[0] == R_ADDR
    assert a.engine.traversal.counters.upgrades == b.engine.traversal.counters.upgrades == 0
    # The attempts: upgrade_first_s after the session went relayed, then doubling up to the
    # cap: log2-many over the run, not one a second.
    times = attempt_times(s, since=relayed_at + 0.5 * config.upgrade_first_s)
    elapsed = w.now - relayed_at
    expected: list[float] = []
    t = 0.0
    for interval in upgrade_intervals(config, 64):
        t += interval
        if t > elapsed:
            break
        expected.append(t)
    assert a.engine.traversal.counters.upgrade_attempts == len(expected) == len(times), (
        times,
        expected,
    )
    doublings = math.ceil(math.log2(config.upgrade_max_s / config.upgrade_first_s))
    assert len(times) <= doublings + 1 + elapsed / config.upgrade_max_s
    assert times == pytest.approx([relayed_at + e for e in expected], abs=1e-6)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps[-2:] == pytest.approx([config.upgrade_max_s] * 2, abs=1e-6)
    # The callee tries on its own schedule too (probes only: it knows no relay of A's).
    assert abs(b.engine.traversal.counters.upgrade_attempts - len(times)) <= 1
    # The session rekeyed on the relayed path meanwhile (a linked handshake) and kept its SAS.
    assert a.node.counters.rekeys + b.node.counters.rekeys >= 1
    assert sas(a, w.now) == sas(b, w.now) == sas_before


def test_nats_that_keep_idle_flows_for_5_minutes_let_the_session_go_direct_eventually() -> None:
    """The same change to cone NATs, but their idle flows live 5 minutes: only a wait longer
    than that between two attempts lets the next one leave from the mapping the peer knows."""
    s, stream, relayed_at = relayed_with_stream()
    a = s.a
    stream.every_s = 1.0
    flow_timeout_s = 300.0
    for nat in nats(s):
        nat.flow_timeout_s = flow_timeout_s
        nat.become("cone")
    assert stream.run(relayed_at + 4 * flow_timeout_s, stop=lambda: direct_both_ways(s)), (
        a.engine.traversal.counters
    )
    stream.drain(timeout=20.0)
    stream.assert_exactly_once()
