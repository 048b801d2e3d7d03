"""KeyMachine (peerline.ui.keys): debounce, long press, repeat and stuck keys from raw edges,
with explicit times (docs/user-guide.md lists what each key does)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerline.ui.keys import KeyEvent, KeyKind, KeyMachine, KeyTiming

T = KeyTiming()


def run(m: KeyMachine, until: float) -> list[KeyEvent]:
    """Fire every timer up to ``until``, as a driver would, and collect the events."""
    out: list[KeyEvent] = []
    while (t := m.get_timer()) is not None and t <= until:
        m.handle_timer(now=t)
    while (e := m.next_event()) is not None:
        out.append(e)
    return out


def kinds(events: list[KeyEvent]) -> list[tuple[str, KeyKind]]:
    return [(e.key, e.kind) for e in events]


def test_a_clean_press_and_release_after_the_debounce() -> None:
    m = KeyMachine()
    m.edge("5", True, now=1.0)
    assert run(m, 1.0 + T.debounce_s - 0.001) == []
    (press,) = run(m, 1.1)
    assert (press.key, press.kind) == ("5", KeyKind.PRESS)
    assert press.at == pytest.approx(1.0 + T.debounce_s)
    m.edge("5", False, now=1.2)
    (release,) = run(m, 1.3)
    assert release.kind is KeyKind.RELEASE and release.at == pytest.approx(1.2 + T.debounce_s)


def test_bounce_shorter_than_the_debounce_is_filtered() -> None:
    m = KeyMachine()
    t = 1.0
    for i in range(6):  # contacts chattering every 3 ms, then closed
        m.edge("1", i % 2 == 0, now=t)
        t += 0.003
    m.edge("1", True, now=t)
    events = run(m, t + 0.5)
    assert kinds(events) == [("1", KeyKind.PRESS)]
    m.edge("1", False, now=1.3)  # before the hold time: no long press
    m.edge("1", True, now=1.305)  # a bounce on release
    m.edge("1", False, now=1.308)
    assert kinds(run(m, 3.0)) == [("1", KeyKind.RELEASE)]


def test_a_held_digit_is_a_long_press_once_and_never_repeats() -> None:
    m = KeyMachine()
    m.edge("5", True, now=0.0)
    events = run(m, 5.0)
    assert kinds(events) == [("5", KeyKind.PRESS), ("5", KeyKind.LONG)]
    assert events[1].at == pytest.approx(T.debounce_s + T.hold_s)


def test_2_and_8_repeat_as_they_move_in_lists() -> None:
    m = KeyMachine()
    m.edge("8", True, now=0.0)
    events = run(m, T.debounce_s + T.hold_s + 2 * T.repeat_s + 0.001)
    assert [k for _, k in kinds(events)] == [
        KeyKind.PRESS,
        KeyKind.LONG,
        KeyKind.REPEAT,
        KeyKind.REPEAT,
    ]


def test_a_held_soft_key_repeats_after_the_long_press() -> None:
    m = KeyMachine()
    m.edge("B", True, now=0.0)
    start = T.debounce_s + T.hold_s
    events = run(m, start + 3 * T.repeat_s + 0.001)
    assert kinds(events) == [
        ("B", KeyKind.PRESS),
        ("B", KeyKind.LONG),
        ("B", KeyKind.REPEAT),
        ("B", KeyKind.REPEAT),
        ("B", KeyKind.REPEAT),
    ]
    assert [e.at for e in events[2:]] == pytest.approx([start + T.repeat_s * i for i in (1, 2, 3)])
    m.edge("B", False, now=events[-1].at + 0.01)
    assert kinds(run(m, 10.0)) == [("B", KeyKind.RELEASE)]


def test_a_stuck_key_is_reported_once_and_then_stays_quiet() -> None:
    m = KeyMachine()
    m.edge("A", True, now=0.0)
    events = run(m, 120.0)
    stuck = [e for e in events if e.kind is KeyKind.STUCK]
    assert len(stuck) == 1 and stuck[0].at == pytest.approx(T.debounce_s + T.stuck_s)
    repeats = [e for e in events if e.kind is KeyKind.REPEAT]
    assert len(repeats) <= (T.stuck_s - T.hold_s) / T.repeat_s + 1
    assert m.get_timer() is None  # nothing more to do, however long it stays down
    m.edge("A", False, now=121.0)
    assert run(m, 122.0) == []  # the release of a stuck key is quiet
    m.edge("A", True, now=123.0)
    assert kinds(run(m, 123.1)) == [("A", KeyKind.PRESS)]  # and it works again


def test_two_keys_at_once_are_two_presses() -> None:
    m = KeyMachine()
    m.edge("1", True, now=0.0)
    m.edge("2", True, now=0.005)
    assert kinds(run(m, 0.1)) == [("1", KeyKind.PRESS), ("2", KeyKind.PRESS)]
    assert m.held() == ["1", "2"]


def test_labels_that_are_not_keys_are_ignored() -> None:
    m = KeyMachine()
    m.edge("Z", True, now=0.0)
    assert run(m, 1.0) == [] and m.ignored == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("15AB"), st.booleans(), st.floats(0, 0.5)), max_size=60))
def test_presses_and_releases_alternate_per_key_whatever_the_edges(
    edges: list[tuple[str, bool, float]],
) -> None:
    """Random bouncing: per key, PRESS and RELEASE alternate (starting with a press), LONG,
    REPEAT and STUCK only between them, and each key's events come in time order."""
    m = KeyMachine()
    now, events = 0.0, []
    for key, down, dt in edges:
        now += dt
        events += run(m, now)
        m.edge(key, down, now=now)
    events += run(m, now + 100.0)
    for key in "15AB":
        times = [e.at for e in events if e.key == key]
        assert times == sorted(times)
    for key in "15AB":
        mine = [e.kind for e in events if e.key == key]
        pressed = False
        for kind in mine:
            if kind is KeyKind.PRESS:
                assert not pressed
                pressed = True
            elif kind is KeyKind.RELEASE:
                assert pressed
                pressed = False
            else:
                assert pressed
