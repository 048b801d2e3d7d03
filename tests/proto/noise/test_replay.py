"""ReplayWindow against a reference model: a set of accepted counters plus the highest one.

The rule (protocol.md §5.3): a counter is accepted exactly when it was never accepted before and
is within ``size`` of the highest accepted counter (``counter > highest - size``).
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from peerline.proto.noise.handshake import TransportKeys
from peerline.proto.noise.replay import REPLAY_WINDOW, ReplayWindow
from peerline.proto.noise.session import Session
from peerline.wire.spec import REJECT_AFTER_MESSAGES

U64_MAX = 2**64 - 1


class Model:
    def __init__(self, size: int) -> None:
        self.size = size
        self.accepted: set[int] = set()
        self.highest = -1

    def would_accept(self, counter: int) -> bool:
        return counter not in self.accepted and counter > self.highest - self.size

    def accept(self, counter: int) -> bool:
        if not self.would_accept(counter):
            return False
        self.accepted.add(counter)
        self.highest = max(self.highest, counter)
        return True


def state(w: ReplayWindow) -> tuple[int, int]:
    return w._bits, w.highest


def step(w: ReplayWindow, model: Model, counter: int) -> None:
    before = state(w)
    expected = model.would_accept(counter)
    assert w.check(counter) is expected
    assert state(w) == before  # check never mutates
    assert w.accept(counter) is expected
    assert model.accept(counter) is expected
    if not expected:
        assert state(w) == before  # a rejected counter changes nothing
    assert w.highest == model.highest
    assert w._bits.bit_length() <= w.size


# -- unit tests ------------------------------------------------------------------------------------
def test_window_is_at_least_2048() -> None:
    assert REPLAY_WINDOW >= 2048
    assert ReplayWindow().size == REPLAY_WINDOW


def test_sessions_use_a_window_of_at_least_2048() -> None:
    keys = TransportKeys(
        send_key=bytes(32), recv_key=bytes(32), handshake_hash=bytes(64), remote_static=bytes(32)
    )
    session = Session(keys=keys, local_index=1, remote_index=2, initiator=True, created_at=0.0)
    assert session.replay.size >= 2048


def test_fresh_window_accepts_zero_once() -> None:
    w = ReplayWindow()
    assert w.highest == -1
    assert w.check(0) and w.accept(0)
    assert not w.check(0) and not w.accept(0)


def test_edges_of_the_window() -> None:
    w = ReplayWindow(size=8)
    assert w.accept(100)
    assert not w.check(92)  # offset 8: just outside
    assert w.check(93)  # offset 7: the oldest slot
    assert w.accept(93) and not w.accept(93)
    assert w.accept(101)  # slides by one: 93 is now offset 8, outside
    assert not w.check(93)
    assert not w.check(92)


def test_jump_by_exactly_the_window_forgets_everything() -> None:
    w = ReplayWindow(size=8)
    for c in range(8):
        assert w.accept(c)
    assert w.accept(15)  # offset of 7 from 15 is 8: out
    assert not w.check(7) and w.check(8)
    assert w._bits == 1


def test_huge_jump_near_two_to_the_64() -> None:
    w = ReplayWindow()
    assert w.accept(0)
    assert w.accept(U64_MAX)
    assert not w.check(0)
    assert not w.accept(U64_MAX)
    assert w.accept(U64_MAX - REPLAY_WINDOW + 1)
    assert not w.accept(U64_MAX - REPLAY_WINDOW)
    assert w._bits.bit_length() <= w.size


def test_reject_after_messages_is_below_the_u64_range() -> None:
    assert REJECT_AFTER_MESSAGES < U64_MAX


# -- properties ------------------------------------------------------------------------------------
SIZES = st.sampled_from([1, 2, 3, 7, 8, 63, 64, 65, 128, REPLAY_WINDOW])


@st.composite
def counter_runs(draw: st.DrawFn) -> tuple[int, list[int]]:
    """A window size and counters that mostly stay near the window's edges."""
    size = draw(SIZES)
    counters: list[int] = []
    top = -1
    for _ in range(draw(st.integers(0, 60))):
        kind = draw(st.sampled_from(("near", "near", "near", "replay", "absolute", "huge")))
        if kind == "near" or (kind == "replay" and not counters):
            c = top + draw(st.integers(-size - 2, size + 2))
        elif kind == "replay":
            c = draw(st.sampled_from(counters))
        elif kind == "absolute":
            c = draw(st.integers(0, U64_MAX))
        else:
            c = U64_MAX - draw(st.integers(0, 2 * size + 2))
        c = min(max(c, 0), U64_MAX)
        counters.append(c)
        top = max(top, c)
    return size, counters


@given(counter_runs())
def test_window_agrees_with_the_model(run: tuple[int, list[int]]) -> None:
    size, counters = run
    w, model = ReplayWindow(size), Model(size)
    for c in counters:
        step(w, model, c)


@given(st.lists(st.integers(0, U64_MAX), max_size=40), SIZES)
def test_arbitrary_u64_counters_agree_with_the_model(counters: list[int], size: int) -> None:
    w, model = ReplayWindow(size), Model(size)
    for c in counters:
        step(w, model, c)


@given(st.permutations(range(300)), st.sampled_from([64, 299, 300, REPLAY_WINDOW]))
def test_any_order_within_the_window_is_accepted_once(order: list[int], size: int) -> None:
    w, model = ReplayWindow(size), Model(size)
    for c in order:
        step(w, model, c)
    if size >= 300:
        assert model.accepted == set(range(300))
    for c in range(300):
        assert not w.check(c)


class ReplayMachine(RuleBasedStateMachine):
    """Interleaves fresh, near, replayed and far counters, checking the model after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.w = ReplayWindow()
        self.model = Model(self.w.size)

    @initialize(size=SIZES)
    def make(self, size: int) -> None:
        self.w, self.model = ReplayWindow(size), Model(size)

    def _base(self) -> int:
        return max(self.model.highest, 0)

    @rule(delta=st.integers(-70, 70))
    def near(self, delta: int) -> None:
        step(self.w, self.model, min(max(self._base() + delta, 0), U64_MAX))

    @rule(delta=st.integers(-1, 1))
    def at_the_edge(self, delta: int) -> None:
        edge = self.model.highest - self.model.size + delta
        step(self.w, self.model, min(max(edge, 0), U64_MAX))

    @rule(jump=st.integers(1, 2**40))
    def jump_ahead(self, jump: int) -> None:
        step(self.w, self.model, min(self._base() + jump, U64_MAX))

    @rule(back=st.integers(0, 10))
    def near_the_top_of_u64(self, back: int) -> None:
        step(self.w, self.model, U64_MAX - back)

    @precondition(lambda self: bool(self.model.accepted))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        c = data.draw(st.sampled_from(sorted(self.model.accepted)))
        assert not self.w.check(c)
        step(self.w, self.model, c)

    @rule(counter=st.integers(0, U64_MAX))
    def check_only(self, counter: int) -> None:
        before = state(self.w)
        assert self.w.check(counter) is self.model.would_accept(counter)
        assert state(self.w) == before

    @invariant()
    def bitmap_is_bounded(self) -> None:
        assert self.w._bits.bit_length() <= self.w.size
        assert self.w.highest == self.model.highest


ReplayMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
test_replay_machine = ReplayMachine.TestCase


@pytest.mark.parametrize("size", [1, 64, REPLAY_WINDOW])
def test_bitmap_stays_bounded_under_a_long_ascending_run(size: int) -> None:
    w = ReplayWindow(size)
    for c in range(0, 3 * size + 5):
        assert w.accept(c)
        assert w._bits.bit_length() <= size
    assert w._bits == (1 << size) - 1  # every slot of the window is filled
