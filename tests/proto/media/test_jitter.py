"""The adaptive jitter buffer: ordering, loss, lateness, adaptation, drift, wrap and resync."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerline.proto.media import (
    FRAME_SECONDS,
    FRAME_TICKS,
    Frame,
    JitterBuffer,
    JitterConfig,
    Missing,
    Playout,
    Silence,
)

F = FRAME_SECONDS


def payload(seq: int) -> bytes:
    return seq.to_bytes(2, "big") + b"opus"


@dataclass
class Run:
    outputs: list[tuple[float, Playout]] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    targets: list[float] = field(default_factory=list)

    @property
    def frames(self) -> list[Frame]:
        return [o for _, o in self.outputs if isinstance(o, Frame)]

    def missing(self) -> list[Missing]:
        """Lost frames (Missing, adjust 0) up to the last frame played: when a stream of
        non-quiet frames just stops, the buffer cannot tell and conceals the first few empty
        pops as lost before it falls silent."""
        last = max((i for i, (_, o) in enumerate(self.outputs) if isinstance(o, Frame)), default=-1)
        return [o for _, o in self.outputs[:last] if isinstance(o, Missing) and o.adjust == 0]

    def lost(self) -> list[int]:
        return [o.seq for o in self.missing()]


def simulate(
    jb: JitterBuffer,
    packets: Iterable[tuple[float, int, int, bool]],
    *,
    duration: float,
    pop_phase: float = 0.007,
    pop_rate: float = 1.0,
    on_pop: Callable[[JitterBuffer, float, Playout], None] | None = None,
    quiet: Iterable[int] = (),
) -> Run:
    """Deliver (arrival, seq, ts, marker) packets and pop every 20 ms, in time order. Packets
    in ``quiet`` carry a 1-byte payload (what Opus sends in DTX silence)."""
    quiet = set(quiet)
    heap = [(a, 0, s, t, m) for a, s, t, m in packets]
    heapq.heapify(heap)
    run = Run()
    n = 0
    while True:
        now = pop_phase + n * F / pop_rate
        if now > duration:
            break
        while heap and heap[0][0] <= now:
            a, _, s, t, m = heapq.heappop(heap)
            body = b"\x00" if s in quiet else payload(s % 65536)
            jb.push(s % 65536, t % (1 << 32), body, arrival=a, marker=m)
        out = jb.pop(now)
        run.outputs.append((now, out))
        if isinstance(out, Frame):
            run.delays.append(jb.counters.current_delay_ms)
        run.targets.append(jb.counters.target_delay_ms)
        if on_pop is not None:
            on_pop(jb, now, out)
        n += 1
    return run


def stream(
    seconds: float,
    *,
    jitter: float = 0.0,
    base: float = 0.040,
    seed: int = 1,
    first_seq: int = 0,
    first_ts: int = 0,
    drift: float = 0.0,
    jitter_between: tuple[float, float] | None = None,
) -> list[tuple[float, int, int, bool]]:
    rng = random.Random(seed)
    out = []
    for i in range(int(seconds / F)):
        sent = i * F * (1 + drift)
        j = jitter
        if jitter_between is not None and not jitter_between[0] <= sent < jitter_between[1]:
            j = 0.0
        out.append(
            (sent + base + rng.uniform(0, j), first_seq + i, first_ts + i * FRAME_TICKS, i == 0)
        )
    return out


def test_steady_stream_plays_everything_near_min_delay() -> None:
    jb = JitterBuffer(JitterConfig(initial_delay=0.020))
    run = simulate(jb, stream(10), duration=10.2)
    seqs = [f.seq for f in run.frames]
    assert seqs == list(range(500))
    c = jb.counters
    assert c.played == 500
    assert c.late == c.duplicate == c.shrunk == c.resyncs == 0
    assert max(run.delays) <= 30  # one frame plus the pop phase
    assert c.target_delay_ms == pytest.approx(20)
    assert isinstance(run.outputs[0][1], Silence)


def test_reordering_within_target_plays_in_order_without_loss() -> None:
    pkts = stream(4)
    # swap neighbours: every odd packet arrives 15 ms later, after the next one
    swapped = [(a + (0.025 if s % 2 else 0.0), s, t, m) for a, s, t, m in pkts]
    jb = JitterBuffer(JitterConfig(initial_delay=0.060))
    run = simulate(jb, swapped, duration=4.5)
    assert [f.seq for f in run.frames] == list(range(200))
    assert run.lost() == []
    assert jb.counters.reordered > 50
    assert jb.counters.late == 0


def test_duplicates_are_dropped_and_counted() -> None:
    pkts = stream(2)
    dup = pkts + [(a + 0.003, s, t, False) for a, s, t, _ in pkts[::4]]
    late_dup = [(a + 0.2, s, t, False) for a, s, t, _ in pkts[:10]]
    jb = JitterBuffer()
    run = simulate(jb, dup + late_dup, duration=2.5)
    assert [f.seq for f in run.frames] == list(range(100))
    assert jb.counters.duplicate == 25 + 10
    assert jb.counters.late == 0


def test_loss_gives_missing_with_next_payload() -> None:
    pkts = [p for p in stream(2) if p[1] != 40]
    jb = JitterBuffer()
    run = simulate(jb, pkts, duration=2.5)
    assert run.missing() == [Missing(seq=40, next_payload=payload(41))]
    assert [f.seq for f in run.frames] == [s for s in range(100) if s != 40]


def test_burst_loss_missing_without_next_payload() -> None:
    pkts = [p for p in stream(2) if p[1] not in (40, 41)]
    jb = JitterBuffer(JitterConfig(initial_delay=0.060))
    run = simulate(jb, pkts, duration=2.5)
    lost = run.missing()
    assert [m.seq for m in lost] == [40, 41]
    assert lost[0].next_payload is None or lost[0].next_payload == payload(41)
    assert lost[1].next_payload == payload(42)


def test_late_packet_is_counted_and_not_played() -> None:
    pkts = stream(2)
    pkts = [(a + 0.5 if s == 30 else a, s, t, m) for a, s, t, m in pkts]
    jb = JitterBuffer()
    run = simulate(jb, pkts, duration=2.5)
    assert 30 not in [f.seq for f in run.frames]
    assert jb.counters.late == 1
    assert run.lost() == [30]


def test_redundant_copy_fills_a_gap_but_never_replaces_a_primary() -> None:
    pkts = stream(2)
    jb = JitterBuffer()
    heap = []
    for a, s, t, m in pkts:
        if s != 20:
            heap.append((a, s, t, m, False, payload(s)))
        # each packet carries the previous frame as redundancy (RED)
        if s > 0:
            heap.append((a + 1e-6, s - 1, t - FRAME_TICKS, False, True, b"red"))
    heap.sort()
    frames = []
    i = 0
    for n in range(130):
        now = 0.007 + n * F
        while i < len(heap) and heap[i][0] <= now:
            a, s, t, m, r, p = heap[i]
            jb.push(s, t, p, arrival=a, marker=m, redundant=r)
            i += 1
        out = jb.pop(now)
        if isinstance(out, Frame):
            frames.append(out)
    assert [f.seq for f in frames] == list(range(100))
    assert all(f.payload == (b"red" if f.seq == 20 else payload(f.seq)) for f in frames)
    assert jb.counters.recovered == 1
    assert jb.counters.duplicate == 0


def test_30ms_jitter_grows_target_with_small_loss_and_bounded_delay() -> None:
    jb = JitterBuffer()
    run = simulate(jb, stream(60, jitter=0.030, seed=7), duration=60.5)
    c = jb.counters
    lost = len(run.lost()) + c.shrunk
    assert lost / 3000 < 0.01, (lost, c.as_dict())
    assert 40 <= c.target_delay_ms <= 70
    steady = run.delays[500:]
    assert max(steady) <= 100
    assert sum(steady) / len(steady) <= 75
    seqs = [f.seq for f in run.frames]
    assert seqs == sorted(set(seqs))


def test_calm_network_after_jitter_shrinks_target_within_seconds() -> None:
    pkts = stream(25, jitter=0.040, seed=3, jitter_between=(0.0, 10.0))
    jb = JitterBuffer()
    run = simulate(jb, pkts, duration=25.5)
    at_10s = run.targets[int(10 / F)]
    assert at_10s >= 50
    # within 5 s of calm the target is back to the minimum and the delay follows
    assert run.targets[int(15 / F)] == pytest.approx(20, abs=0.5)
    assert max(run.delays[-100:]) <= 35
    seqs = [f.seq for f in run.frames]
    assert seqs == sorted(set(seqs))


def test_jitter_rising_grows_target_quickly() -> None:
    pkts = stream(10, jitter=0.050, seed=5, jitter_between=(5.0, 10.0))
    jb = JitterBuffer()
    run = simulate(jb, pkts, duration=10.5)
    assert run.targets[int(5 / F)] == pytest.approx(20)
    assert run.targets[int(5.5 / F)] >= 50


def test_sequence_wraps_at_65535() -> None:
    jb = JitterBuffer()
    run = simulate(
        jb, stream(4, first_seq=65500, first_ts=(1 << 32) - 50 * FRAME_TICKS), duration=4.5
    )
    seqs = [f.seq for f in run.frames]
    assert seqs == [(65500 + i) % 65536 for i in range(200)]
    assert jb.counters.late == jb.counters.resyncs == 0


def test_resync_after_a_jump() -> None:
    first = stream(2)
    second = [(a + 2.5, s + 30000, t + 123456, m) for a, s, t, m in stream(2)]
    jb = JitterBuffer()
    run = simulate(jb, first + second, duration=5)
    seqs = [f.seq for f in run.frames]
    assert seqs == list(range(100)) + [30000 + i for i in range(100)]
    assert jb.counters.resyncs == 1


def test_marker_jump_after_silence_resyncs() -> None:
    first = stream(2)
    second = [(a + 3.0, s + 200, t + 3 * 48000, m) for a, s, t, m in stream(1)]
    jb = JitterBuffer()
    run = simulate(jb, first + second, duration=4.5)
    seqs = [f.seq for f in run.frames]
    assert seqs == list(range(100)) + [200 + i for i in range(50)]
    assert jb.counters.resyncs == 1


def test_dtx_gap_restarts_talkspurt_at_target_without_loss() -> None:
    first = stream(2)
    # the sender pauses 1 s (DTX): seq continues, timestamp jumps
    second = [(a + 3.0, s + 100, t + 150 * FRAME_TICKS, m) for a, s, t, m in stream(1)]
    jb = JitterBuffer(JitterConfig(initial_delay=0.020))  # no shrink to make in the quiet end
    # the talkspurt ends in DTX packets: after a quiet frame the empty pops wait, lose nothing
    run = simulate(jb, first + second, duration=4.5, quiet=range(95, 100))
    assert [f.seq for f in run.frames] == list(range(150))
    assert run.lost() == []  # (the second talkspurt stops in speech: its tail is not counted)
    assert jb.counters.grown == 5  # the waits after the quiet end
    gap = [o for now, o in run.outputs if 2.2 < now < 2.9]
    assert all(isinstance(o, Silence) for o in gap)


def test_stream_stopping_in_speech_conceals_then_resumes_at_the_first_frame_not_played() -> None:
    """No quiet frame before the stop: the first empty pops look like loss (concealed, the
    cursor moves on); once silent, the cursor is back on seq 100, where the next talkspurt
    starts, so none of its frames is dropped as late."""
    first = stream(2)
    second = [(a + 3.0, s + 100, t + 150 * FRAME_TICKS, m) for a, s, t, m in stream(1)]
    jb = JitterBuffer()
    run = simulate(jb, first + second, duration=4.5)
    assert [f.seq for f in run.frames] == list(range(150))
    empty = [o for now, o in run.outputs if 2.0 < now < 2.9 and isinstance(o, Missing)]
    assert [o.seq for o in empty] == [100, 101, 102, 103, 104]
    assert jb.counters.late == 0 and jb.counters.grown == 0
    gap = [o for now, o in run.outputs if 2.3 < now < 2.9]
    assert all(isinstance(o, Silence) for o in gap)


def test_a_loss_with_nothing_behind_it_is_concealed_without_growing_the_delay() -> None:
    """20 % loss with the next packet not yet in when the lost frame is due: the cursor moves
    on (Missing, adjust 0) instead of waiting (adjust +1), so the delay does not ratchet up."""
    rng = random.Random(3)
    pkts = [p for p in stream(20, jitter=0.015, seed=4) if rng.random() >= 0.2]
    jb = JitterBuffer(JitterConfig(initial_delay=0.020))
    run = simulate(jb, pkts, duration=20.5)
    c = jb.counters
    assert c.grown <= 3, c.as_dict()
    assert max(run.delays[100:]) <= 75
    assert len(run.lost()) == 1000 - len(pkts)


@pytest.mark.parametrize("drift", [0.001, -0.001])
def test_clock_drift_keeps_delay_bounded(drift: float) -> None:
    jb = JitterBuffer()
    run = simulate(jb, stream(300, drift=drift, jitter=0.005), duration=300)
    c = jb.counters
    assert max(run.delays[500:]) <= c.target_delay_ms + 25  # after the start's 60 ms
    assert len(run.lost()) <= 5
    if drift > 0:  # the sender is slower: the buffer inserts frames
        assert c.grown >= 10
    else:
        assert c.shrunk >= 10


def test_a_deep_start_shrinks_in_a_quiet_frame() -> None:
    """The first frames wait ``initial_delay`` (60 ms here); on a calm path the delay then
    comes down, by dropping quiet frames (every 25th here) rather than speech."""
    jb = JitterBuffer(JitterConfig(initial_delay=0.060))
    quiet = set(range(0, 500, 25))
    dropped: list[int] = []

    def on_pop(jb: JitterBuffer, now: float, out: Playout) -> None:
        if isinstance(out, Frame) and out.adjust == -1:
            dropped.append(out.seq - 1)

    run = simulate(jb, stream(10), duration=10.2, on_pop=on_pop, quiet=quiet)
    assert 50 <= run.delays[0] <= 70
    assert max(run.delays[-100:]) <= 30
    assert dropped and set(dropped) <= quiet
    assert jb.counters.grown == 0 and run.lost() == []


def test_growth_waits_for_a_quiet_frame_but_not_for_ever() -> None:
    """Jitter appears at 5 s: the target rises at once, the inserted frames come mostly after
    quiet frames (every 20th) when there are some, and after ``grow_wait`` pops when not."""
    pkts = stream(10, jitter=0.060, seed=5, jitter_between=(5.0, 10.0))
    for quiet, limit in ((set(range(0, 500, 20)), None), (set(), 50)):
        jb = JitterBuffer(JitterConfig(initial_delay=0.020))
        grown_after: list[int] = []
        last: list[int] = [-1]

        def on_pop(
            jb: JitterBuffer,
            now: float,
            out: Playout,
            last: list[int] = last,
            grown_after: list[int] = grown_after,
        ) -> None:
            if isinstance(out, Frame):
                last[0] = out.seq
            elif isinstance(out, Missing) and out.adjust == 1 and 5.0 < now < 9.5:
                grown_after.append(last[0])

        simulate(jb, pkts, duration=10.5, on_pop=on_pop, quiet=quiet)
        assert grown_after, jb.counters.as_dict()
        if limit is None:  # mostly right after a quiet frame (else after waiting grow_wait)
            assert sum(k in quiet for k in grown_after) * 2 >= len(grown_after), grown_after
        assert jb.counters.target_delay_ms >= 60


def test_under_loss_the_target_covers_the_redundant_copies() -> None:
    """10 % loss, each packet carrying the two before it (RED): copies of lost frames come 20
    or 40 ms after their primary would have; the target grows to wait for them, so nearly
    every frame is played, where primaries alone would ask for 20 ms."""
    rng = random.Random(11)
    jb = JitterBuffer(JitterConfig(initial_delay=0.020))
    events = []
    sent = [rng.random() >= 0.1 for _ in range(1500)]
    for i in range(1500):
        if not sent[i]:
            continue
        a = 0.04 + i * F
        events.append((a, i, i * FRAME_TICKS, payload(i), False))
        for age in (1, 2):
            if i - age >= 0:
                k = i - age
                events.append((a + 1e-6, k, k * FRAME_TICKS, payload(k), True))
    played, i, n = set(), 0, 0
    while n < 1550:
        now = 0.007 + n * F
        while i < len(events) and events[i][0] <= now:
            a, s, t, p, r = events[i]
            jb.push(s, t, p, arrival=a, redundant=r)
            i += 1
        out = jb.pop(now)
        if isinstance(out, Frame):
            played.add(out.seq)
        n += 1
    unrecoverable = sum(1 for k in range(1498) if not any(sent[k : k + 3]))
    assert len(played) >= 1500 - unrecoverable - 12, jb.counters.as_dict()
    assert jb.counters.target_delay_ms >= 39  # age-1 copies come 20 ms late: 20 + a frame
    assert jb.counters.recovered > 100


def test_counters_as_dict() -> None:
    jb = JitterBuffer()
    d = jb.counters.as_dict()
    for key in (
        "received",
        "played",
        "concealed",
        "late",
        "duplicate",
        "reordered",
        "resyncs",
        "grown",
        "shrunk",
        "current_delay_ms",
        "target_delay_ms",
        "jitter_ms",
    ):
        assert key in d


def test_bad_config_rejected() -> None:
    with pytest.raises(ValueError):
        JitterConfig(min_delay=0.5, max_delay=0.3)
    with pytest.raises(ValueError):
        JitterConfig(quiet_ratio=-0.1)
    with pytest.raises(ValueError):
        JitterConfig(grow_wait=-1)
    with pytest.raises(ValueError):
        JitterConfig(shrink_over=0.001)


# ------------------------------------------------------------------ properties

packet_event = st.tuples(
    st.integers(0, 400),  # frame index (gaps and duplicates come from repeats and omissions)
    st.floats(0, 0.5),  # extra network delay
    st.booleans(),  # redundant
    st.booleans(),  # marker
    st.booleans(),  # quiet (a 1-byte payload: adjustments and waits happen after these)
)


def check_invariants(
    events: list[tuple[float, int, int, bytes, bool, bool]],
    pops: list[float],
    *,
    delay_bound_ms: float | None = None,
) -> None:
    """Never raises, never replays, stays within the cap; with ``delay_bound_ms``, every frame
    played after the first 20 s waited at most that long."""
    jb = JitterBuffer()
    cap = jb.config.max_delay * 1000 + 20 + 1e-6
    played: set[int] = set()
    last: int | None = None
    epoch = 0
    i = 0
    for now in pops:
        while i < len(events) and events[i][0] <= now:
            a, s, t, p, m, r = events[i]
            jb.push(s, t, p, arrival=a, marker=m, redundant=r)
            i += 1
            assert jb.counters.buffered_ms <= cap
        out = jb.pop(now)
        assert isinstance(out, (Frame, Missing, Silence))
        assert out.adjust in (-1, 0, 1)
        assert jb.counters.buffered_ms <= cap
        if jb.counters.resyncs != epoch:
            epoch = jb.counters.resyncs
            played.clear()
            last = None
        if isinstance(out, Frame):
            if delay_bound_ms is not None and now > pops[0] + 20:
                assert jb.counters.current_delay_ms <= delay_bound_ms, jb.counters.as_dict()
            assert out.seq not in played
            played.add(out.seq)
            if last is not None:
                assert (out.seq - last) % 65536 < 32768
            last = out.seq


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(packet_event, max_size=300),
    st.integers(0, 65535),
    st.integers(0, (1 << 32) - 1),
)
def test_any_arrival_order_never_raises_or_replays(
    evs: list[tuple[int, float, bool, bool, bool]], seq0: int, ts0: int
) -> None:
    events = sorted(
        (
            i * F + d,
            (seq0 + i) % 65536,
            (ts0 + i * FRAME_TICKS) % (1 << 32),
            b"\x00" if q else payload(i),
            m,
            r,
        )
        for i, d, r, m, q in evs
    )
    pops = [0.003 + n * F for n in range(int(9.0 / F))]
    check_invariants(events, pops)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([-0.001, 0.0, 0.001]),
    st.floats(0, 0.08),
    st.floats(0, 0.1),
    st.integers(0, 65535),
    st.integers(0, 2**31),
)
def test_minutes_of_drift_jitter_and_loss_stay_bounded(
    drift: float, jitter: float, loss: float, seq0: int, seed: int
) -> None:
    rng = random.Random(seed)
    events = []
    minutes = 3
    n = int(minutes * 60 / F)
    for i in range(n):
        if rng.random() < loss:
            continue
        a = i * F * (1 + drift) + 0.03 + rng.uniform(0, jitter)
        copies = 2 if rng.random() < 0.02 else 1
        body = b"\x00" if i % 50 < 5 else payload(i)  # a pause now and then
        for _ in range(copies):
            events.append(
                (a, (seq0 + i) % 65536, (i * FRAME_TICKS) % (1 << 32), body, False, False)
            )
        for age in (1, 2):  # RED copies, as MediaReceiver pushes them
            if i >= age:
                k = i - age
                ts = (k * FRAME_TICKS) % (1 << 32)
                events.append((a, (seq0 + k) % 65536, ts, payload(k), False, True))
    events.sort()
    pops = [0.011 + k * F for k in range(n)]
    # jitter + two frames of copies + the target's frame + the pop grid, well under max_delay
    check_invariants(events, pops, delay_bound_ms=jitter * 1000 + 40 + 20 + 40 + 25)


def test_arbitrary_garbage_never_raises() -> None:
    rng = random.Random(42)
    jb = JitterBuffer()
    now = 0.0
    for _ in range(20000):
        if rng.random() < 0.5:
            jb.push(
                rng.randrange(65536),
                rng.randrange(1 << 32),
                b"x",
                arrival=now + rng.uniform(-1, 1),
                marker=rng.random() < 0.1,
                redundant=rng.random() < 0.2,
            )
        else:
            jb.pop(now)
            now += F
        assert jb.counters.buffered_ms <= 320 + 1e-6
