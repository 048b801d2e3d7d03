"""HookMachine (peerline.ui.hook): off hook, on hook and a hook flash from raw edges."""

import pytest

from peerline.ui.hook import HookEvent, HookKind, HookMachine, HookTiming

T = HookTiming()


def run(m: HookMachine, until: float) -> list[HookEvent]:
    while (t := m.get_timer()) is not None and t <= until:
        m.handle_timer(now=t)
    out = []
    while (e := m.next_event()) is not None:
        out.append(e)
    return out


def started(off_hook: bool = False) -> HookMachine:
    m = HookMachine()
    m.start(off_hook, now=0.0)
    assert [e.kind for e in run(m, 0.0)] == [HookKind.OFF_HOOK if off_hook else HookKind.ON_HOOK]
    return m


def test_lifting_the_handset_is_off_hook_after_the_debounce() -> None:
    m = started()
    m.edge(True, now=1.0)
    m.edge(False, now=1.004)  # bounce
    m.edge(True, now=1.008)
    (off,) = run(m, 2.0)
    assert off.kind is HookKind.OFF_HOOK and off.at == pytest.approx(1.008 + T.debounce_s)
    assert m.off_hook


def test_hanging_up_is_on_hook_once_the_handset_stayed_down_past_a_flash() -> None:
    m = started(off_hook=True)
    m.edge(False, now=5.0)
    assert run(m, 5.0 + T.debounce_s + T.flash_max_s - 0.001) == []
    assert m.off_hook  # still a possible flash
    (on,) = run(m, 10.0)
    assert on.kind is HookKind.ON_HOOK
    assert on.at == pytest.approx(5.0 + T.debounce_s + T.flash_max_s)
    assert not m.off_hook


def test_a_quick_press_of_the_cradle_is_a_flash_not_a_hang_up() -> None:
    m = started(off_hook=True)
    m.edge(False, now=5.0)
    assert run(m, 5.3) == []  # the driver fires the debounce deadline meanwhile
    m.edge(True, now=5.3)
    events = run(m, 10.0)
    assert [e.kind for e in events] == [HookKind.FLASH]
    assert m.off_hook


def test_a_knock_shorter_than_a_flash_is_ignored() -> None:
    m = started(off_hook=True)
    m.edge(False, now=5.0)
    assert run(m, 5.0 + T.debounce_s + 0.05) == []
    m.edge(True, now=5.0 + T.debounce_s + 0.05)
    assert run(m, 10.0) == []


def test_the_position_at_start_is_reported_as_is() -> None:
    m = HookMachine()
    m.start(True, now=3.0)
    assert run(m, 3.0) == [HookEvent(kind=HookKind.OFF_HOOK, at=3.0)]
