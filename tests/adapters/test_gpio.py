"""MatrixKeypad, HookSwitch and Leds (peerline.adapters.gpio) on gpiozero's MockFactory.

Each test gets a fresh factory, as gpiozero's own tests do. The keypad is wired to its mock
pins by ``Matrix``: a pressed key joins its row pin to its column pin, so a column reads low
while its row is driven low. Keypad tests drive the scan directly (``start(...,
background=False)`` and ``step()``) with a fake clock; the few that run the scan thread wait
on queues with timeouts, never on fixed sleeps.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPin

from peerline.adapters.gpio import (
    BLINK_S,
    FLASH_S,
    HookSwitch,
    Leds,
    MatrixKeypad,
)
from peerline.errors import HardwareError, LocalProtocolError, PeerlineError

ROWS = [5, 6, 13, 19]
COLUMNS = [12, 16, 20]
LAYOUT = [["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"], ["*", "0", "#"]]
HOOK_PIN = 26
LED_PINS = {"ring": 17, "message": 27}

Edge = tuple[str, bool, float]


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """A fresh mock pin factory for each test (nothing global is touched)."""
    pin_factory = MockFactory()
    yield pin_factory
    pin_factory.reset()


class FakeClock:
    """A clock that moves only when told (``clock.now = ...``)."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Matrix:
    """A 4x3 key matrix on mock pins: a pressed key joins its row to its column.

    A column pin reads low while any row joined to it through a pressed key is driven low, and
    returns to its pull-up otherwise. ``most_rows_low`` records the most rows ever driven low
    at the same moment.
    """

    def __init__(self, factory: MockFactory) -> None:
        self._lock = threading.RLock()
        self.pressed: set[str] = set()
        self.most_rows_low = 0
        self.columns: list[MockPin] = [factory.pin(n) for n in COLUMNS]
        self.rows: list[MockPin] = [factory.pin(n, pin_class=RowPin, matrix=self) for n in ROWS]

    def press(self, *keys: str) -> None:
        with self._lock:
            self.pressed.update(keys)
            self.update()

    def release(self, *keys: str) -> None:
        with self._lock:
            self.pressed.difference_update(keys)
            self.update()

    def update(self) -> None:
        with self._lock:
            rows = getattr(self, "rows", [])
            driven_low = [r for r, row in enumerate(rows) if _driven_low(row)]
            self.most_rows_low = max(self.most_rows_low, len(driven_low))
            for c, column in enumerate(self.columns):
                if column.function != "input":
                    continue
                if any(LAYOUT[r][c] in self.pressed for r in driven_low):
                    column.drive_low()
                elif column.pull == "up":
                    column.drive_high()


def _driven_low(pin: MockPin) -> bool:
    return pin.function == "output" and not pin.state


class RowPin(MockPin):
    """A mock row pin that tells its ``Matrix`` whenever its level changes."""

    def __init__(self, factory: MockFactory, info: Any, matrix: Matrix | None = None) -> None:
        self.matrix = matrix
        super().__init__(factory, info)

    def _change_state(self, value: bool) -> bool:
        changed: bool = super()._change_state(value)
        if self.matrix is not None:
            self.matrix.update()
        return changed


@pytest.fixture
def matrix(factory: MockFactory) -> Matrix:
    return Matrix(factory)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keypad(factory: MockFactory, matrix: Matrix, clock: FakeClock) -> Iterator[MatrixKeypad]:
    pad = MatrixKeypad(
        rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory, settle_s=0, clock=clock
    )
    yield pad
    pad.close()


def started(keypad: MatrixKeypad) -> list[Edge]:
    """Start ``keypad`` without a thread; its edges collect in the list returned."""
    edges: list[Edge] = []
    keypad.start(lambda key, down, at: edges.append((key, down, at)), background=False)
    return edges


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll ``condition`` every 2 ms until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


# --- MatrixKeypad -----------------------------------------------------------------------------


def test_keypad_press_and_release_reports_down_then_up(
    keypad: MatrixKeypad, matrix: Matrix, clock: FakeClock
) -> None:
    edges = started(keypad)
    keypad.step()
    assert edges == []
    matrix.press("5")
    clock.now = 100.005
    keypad.step()
    assert edges == [("5", True, 100.005)]
    matrix.release("5")
    clock.now = 100.010
    keypad.step()
    assert edges == [("5", True, 100.005), ("5", False, 100.010)]


def test_keypad_scan_drives_one_row_low_at_a_time(keypad: MatrixKeypad, matrix: Matrix) -> None:
    """Rows idle high; a scan drives each low in turn and leaves them all high again."""
    assert all(row.state for row in matrix.rows)
    for row in matrix.rows:
        row.clear_states()
    assert keypad.scan() == frozenset()
    assert matrix.most_rows_low == 1
    assert all(row.state for row in matrix.rows)
    for row in matrix.rows:
        assert [s.state for s in row.states] == [True, False, True]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (("1", "9"), ["1", "9"]),  # different rows and columns
        (("4", "6"), ["4", "6"]),  # one row
        (("2", "8"), ["2", "8"]),  # one column
    ],
)
def test_keypad_two_keys_at_once_are_both_reported(
    keypad: MatrixKeypad,
    matrix: Matrix,
    clock: FakeClock,
    keys: tuple[str, str],
    expected: list[str],
) -> None:
    edges = started(keypad)
    matrix.press(*keys)
    keypad.step()
    assert edges == [(key, True, clock.now) for key in expected]
    matrix.release(keys[0])
    clock.now += 0.005
    keypad.step()
    assert edges[2:] == [(keys[0], False, clock.now)]
    assert keypad.scan() == frozenset({keys[1]})


def test_keypad_stuck_key_is_reported_once(
    keypad: MatrixKeypad, matrix: Matrix, clock: FakeClock
) -> None:
    edges = started(keypad)
    matrix.press("#")
    for _ in range(200):  # one second of scans at 5 ms
        keypad.step()
        clock.now += 0.005
    assert edges == [("#", True, 100.0)]


def test_keypad_bounce_is_reported_edge_by_edge(
    keypad: MatrixKeypad, matrix: Matrix, clock: FakeClock
) -> None:
    """The adapter does not debounce: each change between two scans is an edge (the UI's
    KeyMachine filters them). A press and release within one scan interval is not seen."""
    edges = started(keypad)
    for down in (True, False, True, False, True):
        if down:
            matrix.press("0")
        else:
            matrix.release("0")
        keypad.step()
        clock.now += 0.005
    assert [(key, down) for key, down, _ in edges] == [
        ("0", True),
        ("0", False),
        ("0", True),
        ("0", False),
        ("0", True),
    ]
    matrix.release("0")
    matrix.press("0")  # released and pressed again between two scans
    keypad.step()
    assert len(edges) == 5


def test_keypad_keys_down_at_start_are_reported_by_the_first_scan(
    keypad: MatrixKeypad, matrix: Matrix
) -> None:
    matrix.press("*")
    edges = started(keypad)
    keypad.step()
    assert edges == [("*", True, 100.0)]


def test_keypad_thread_reports_edges_with_monotonic_times(
    factory: MockFactory, matrix: Matrix
) -> None:
    edges: queue.Queue[Edge] = queue.Queue()
    keypad = MatrixKeypad(
        rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory, scan_interval_s=0.001
    )
    try:
        before = time.monotonic()
        keypad.start(lambda key, down, at: edges.put((key, down, at)))
        matrix.press("5")
        key, down, pressed_at = edges.get(timeout=5)
        assert (key, down) == ("5", True)
        matrix.release("5")
        key, down, released_at = edges.get(timeout=5)
        assert (key, down) == ("5", False)
        assert before <= pressed_at <= released_at <= time.monotonic()
    finally:
        keypad.close()
    assert not any(t.name == "peerline-keypad" and t.is_alive() for t in threading.enumerate())
    assert edges.empty()


def test_keypad_thread_goes_on_after_on_edge_raises(
    factory: MockFactory, matrix: Matrix, caplog: pytest.LogCaptureFixture
) -> None:
    edges: queue.Queue[Edge] = queue.Queue()

    def on_edge(key: str, down: bool, at: float) -> None:
        edges.put((key, down, at))
        if down:
            raise RuntimeError("a bug in the UI")

    keypad = MatrixKeypad(
        rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory, scan_interval_s=0.001
    )
    try:
        with caplog.at_level(logging.ERROR, logger="peerline.adapters.gpio"):
            keypad.start(on_edge)
            matrix.press("7")
            assert edges.get(timeout=5)[:2] == ("7", True)
            matrix.release("7")
            assert edges.get(timeout=5)[:2] == ("7", False)
    finally:
        keypad.close()
    assert "on_edge('7') raised" in caplog.text


def test_keypad_close_from_on_edge_does_not_deadlock(factory: MockFactory, matrix: Matrix) -> None:
    closed = threading.Event()
    keypad = MatrixKeypad(
        rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory, scan_interval_s=0.001
    )

    def on_edge(key: str, down: bool, at: float) -> None:
        keypad.close()
        closed.set()

    keypad.start(on_edge)
    matrix.press("3")
    assert closed.wait(timeout=5)
    assert wait_until(lambda: not any(t.name == "peerline-keypad" for t in threading.enumerate()))


def test_keypad_close_is_idempotent_and_releases_the_pins(
    factory: MockFactory, matrix: Matrix
) -> None:
    keypad = MatrixKeypad(rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory)
    keypad.start(lambda key, down, at: None)
    keypad.close()
    keypad.close()
    again = MatrixKeypad(rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory)
    again.close()


def test_keypad_start_twice_or_after_close_raises(keypad: MatrixKeypad) -> None:
    keypad.start(lambda key, down, at: None, background=False)
    with pytest.raises(LocalProtocolError, match="already started"):
        keypad.start(lambda key, down, at: None, background=False)
    keypad.close()
    with pytest.raises(LocalProtocolError, match="closed"):
        keypad.start(lambda key, down, at: None)


def test_keypad_scan_after_close_raises_hardware_error(keypad: MatrixKeypad) -> None:
    keypad.close()
    with pytest.raises(HardwareError, match="keypad"):
        keypad.scan()


def test_keypad_pin_in_use_raises_hardware_error_and_releases_the_rest(
    factory: MockFactory,
) -> None:
    other = Leds({"busy": COLUMNS[-1]}, pin_factory=factory)
    with pytest.raises(HardwareError, match=r"keypad.*GPIO20.*in use") as raised:
        MatrixKeypad(rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory)
    assert isinstance(raised.value, PeerlineError)
    assert isinstance(raised.value, OSError)
    other.close()
    MatrixKeypad(rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory).close()


@pytest.mark.parametrize(
    ("rows", "columns", "layout", "match"),
    [
        (ROWS[:3], COLUMNS, LAYOUT, "layout must have 3 rows of 3 keys"),
        (ROWS, COLUMNS[:2], LAYOUT, "layout must have 4 rows of 2 keys"),
        (ROWS, [*COLUMNS[:2], ROWS[0]], LAYOUT, "listed twice"),
        (ROWS, COLUMNS, [["1", "2", "3"]] * 4, "repeats"),
        (ROWS, COLUMNS, [*LAYOUT[:3], ["*", "", "#"]], "non-empty"),
        ([], COLUMNS, [], "at least one row"),
    ],
)
def test_keypad_bad_pin_map_raises_value_error(
    factory: MockFactory,
    rows: list[int],
    columns: list[int],
    layout: list[list[str]],
    match: str,
) -> None:
    with pytest.raises(ValueError, match=match):
        MatrixKeypad(rows=rows, columns=columns, layout=layout, pin_factory=factory)
    MatrixKeypad(rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory).close()


def test_no_pin_factory_available_raises_hardware_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``pin_factory=None`` means gpiozero's default; when none loads, the part says so."""
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "peerline-test-no-such-factory")
    with pytest.raises(HardwareError, match=r"hook switch \(pin 26\).*pin factory"):
        HookSwitch(pin=HOOK_PIN, off_hook_when_high=True, pull_up=True, pin_factory=None)
    with pytest.raises(HardwareError, match="pin factory"):
        Leds(LED_PINS, pin_factory=None)


# --- HookSwitch -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pull_up", "off_hook_when_high"),
    [(True, True), (True, False), (False, True), (False, False)],
)
def test_hook_reports_the_position_at_start_then_each_edge(
    factory: MockFactory, clock: FakeClock, pull_up: bool, off_hook_when_high: bool
) -> None:
    pin = factory.pin(HOOK_PIN)
    hook = HookSwitch(
        pin=HOOK_PIN,
        off_hook_when_high=off_hook_when_high,
        pull_up=pull_up,
        pin_factory=factory,
        clock=clock,
    )
    edges: list[tuple[bool, float]] = []
    try:
        hook.start(lambda off_hook, at: edges.append((off_hook, at)))
        resting_high = pull_up  # the pull decides the level of an open switch
        assert edges == [(resting_high == off_hook_when_high, 100.0)]
        clock.now = 101.0
        if resting_high:
            pin.drive_low()
        else:
            pin.drive_high()
        assert edges[1:] == [((not resting_high) == off_hook_when_high, 101.0)]
        assert hook.off_hook is edges[-1][0]
        clock.now = 102.0
        if resting_high:
            pin.drive_high()
        else:
            pin.drive_low()
        assert edges[2:] == [(resting_high == off_hook_when_high, 102.0)]
    finally:
        hook.close()


def test_hook_bounce_is_reported_edge_by_edge(factory: MockFactory, clock: FakeClock) -> None:
    """No debounce here: the UI's HookMachine gets every edge gpiozero sees."""
    pin = factory.pin(HOOK_PIN)
    hook = HookSwitch(
        pin=HOOK_PIN, off_hook_when_high=True, pull_up=True, pin_factory=factory, clock=clock
    )
    edges: list[bool] = []
    hook.start(lambda off_hook, at: edges.append(off_hook))
    for _ in range(3):
        pin.drive_low()
        pin.drive_high()
    pin.drive_low()
    hook.close()
    assert edges == [True, False, True, False, True, False, True, False]


def test_hook_close_stops_reports_and_releases_the_pin(factory: MockFactory) -> None:
    pin = factory.pin(HOOK_PIN)
    hook = HookSwitch(pin=HOOK_PIN, off_hook_when_high=True, pull_up=True, pin_factory=factory)
    edges: list[bool] = []
    hook.start(lambda off_hook, at: edges.append(off_hook))
    hook.close()
    hook.close()
    pin.drive_low()
    assert edges == [True]
    with pytest.raises(LocalProtocolError, match="closed"):
        hook.start(lambda off_hook, at: None)
    HookSwitch(pin=HOOK_PIN, off_hook_when_high=True, pull_up=True, pin_factory=factory).close()


def test_hook_start_twice_raises(factory: MockFactory) -> None:
    hook = HookSwitch(pin=HOOK_PIN, off_hook_when_high=True, pull_up=True, pin_factory=factory)
    hook.start(lambda off_hook, at: None)
    with pytest.raises(LocalProtocolError, match="already started"):
        hook.start(lambda off_hook, at: None)
    hook.close()


def test_hook_timestamps_are_monotonic_seconds(factory: MockFactory) -> None:
    pin = factory.pin(HOOK_PIN)
    hook = HookSwitch(pin=HOOK_PIN, off_hook_when_high=True, pull_up=True, pin_factory=factory)
    times: list[float] = []
    before = time.monotonic()
    hook.start(lambda off_hook, at: times.append(at))
    pin.drive_low()
    hook.close()
    assert before <= times[0] <= times[1] <= time.monotonic()


def test_hook_pin_in_use_raises_hardware_error(factory: MockFactory) -> None:
    leds = Leds({"ring": HOOK_PIN}, pin_factory=factory)
    with pytest.raises(HardwareError, match=r"hook switch \(pin 26\).*in use"):
        HookSwitch(pin=HOOK_PIN, off_hook_when_high=True, pull_up=True, pin_factory=factory)
    leds.close()


# --- Leds -------------------------------------------------------------------------------------


def led_pin(factory: MockFactory, name: str) -> MockPin:
    pin: MockPin = factory.pin(LED_PINS[name])
    return pin


@pytest.mark.parametrize("active_high", [True, False])
def test_leds_on_and_off_set_the_pin(factory: MockFactory, active_high: bool) -> None:
    leds = Leds(LED_PINS, active_high=active_high, pin_factory=factory)
    ring = led_pin(factory, "ring")
    message = led_pin(factory, "message")
    assert ring.state is (not active_high)  # off at start
    leds.set("ring", "on")
    assert ring.state is active_high
    assert message.state is (not active_high)
    assert leds.mode("ring") == "on"
    leds.set("ring", "off")
    assert ring.state is (not active_high)
    leds.close()


def phases(pin: MockPin) -> list[tuple[bool, float]]:
    """(state, seconds held) for each completed phase of a mock pin's history."""
    states = pin.states
    return [(states[i].state, states[i + 1].timestamp) for i in range(len(states) - 1)]


def test_leds_blink_toggles_the_pin_evenly(factory: MockFactory) -> None:
    leds = Leds(LED_PINS, pin_factory=factory, blink_s=(0.02, 0.02))
    ring = led_pin(factory, "ring")
    ring.clear_states()
    leds.set("ring", "blink")
    assert wait_until(lambda: len(ring.states) >= 6)
    leds.set("ring", "off")
    held = phases(ring)[1:5]  # skip the wait before the blink began
    assert [state for state, _ in held] == [True, False, True, False]
    assert all(seconds >= 0.015 for _, seconds in held)
    settled = len(ring.states)
    time.sleep(0.06)
    assert len(ring.states) == settled and not ring.state  # stopped, off


def test_leds_flash_is_a_short_on_and_a_long_off(factory: MockFactory) -> None:
    leds = Leds(LED_PINS, pin_factory=factory, flash_s=(0.01, 0.06))
    message = led_pin(factory, "message")
    message.clear_states()
    leds.set("message", "flash")
    assert wait_until(lambda: len(message.states) >= 5)
    leds.close()
    (on1, on_s), (off1, off_s), (on2, _) = phases(message)[1:4]
    assert (on1, off1, on2) == (True, False, True)
    assert on_s >= 0.008
    assert off_s >= 0.05
    assert off_s > on_s


def test_leds_default_timings_are_1_hz_blink_and_60_ms_flash(factory: MockFactory) -> None:
    assert BLINK_S == (0.5, 0.5)
    assert FLASH_S == (0.06, 1.94)
    leds = Leds(LED_PINS, pin_factory=factory)
    ring = led_pin(factory, "ring")
    ring.clear_states()
    leds.set("ring", "flash")
    assert wait_until(lambda: len(ring.states) >= 3)  # on, then off after 60 ms
    leds.close()
    (state, seconds) = phases(ring)[1]
    assert state is True
    assert seconds >= 0.05


def test_leds_setting_the_same_mode_again_does_not_restart_the_blink(
    factory: MockFactory,
) -> None:
    """A UI re-applies its LED state on every redraw; the blink must keep its rhythm."""
    leds = Leds(LED_PINS, pin_factory=factory, blink_s=(0.03, 0.03))
    ring = led_pin(factory, "ring")
    ring.clear_states()

    def blinking() -> bool:
        leds.set("ring", "blink")  # a restart would hold the LED on
        return len(ring.states) >= 4

    assert wait_until(blinking)
    leds.close()
    assert [state for state, _ in phases(ring)[1:3]] == [True, False]


def test_leds_unknown_name_is_ignored_and_unknown_mode_raises(factory: MockFactory) -> None:
    leds = Leds(LED_PINS, pin_factory=factory)
    leds.set("voicemail", "blink")
    assert leds.mode("voicemail") is None
    with pytest.raises(ValueError, match="LED mode"):
        leds.set("ring", "strobe")
    leds.close()


def test_leds_close_turns_them_off_releases_the_pins_and_ignores_later_sets(
    factory: MockFactory,
) -> None:
    leds = Leds(LED_PINS, pin_factory=factory, blink_s=(0.02, 0.02))
    leds.set("ring", "blink")
    leds.set("message", "on")
    leds.close()
    leds.close()
    assert not led_pin(factory, "ring").state
    assert not led_pin(factory, "message").state
    leds.set("ring", "on")
    assert not led_pin(factory, "ring").state
    Leds(LED_PINS, pin_factory=factory).close()


def test_leds_pin_in_use_raises_hardware_error_and_releases_the_rest(
    factory: MockFactory,
) -> None:
    with pytest.raises(HardwareError, match=r"LEDs.*GPIO17.*in use"):
        Leds({"ring": 17, "message": 17}, pin_factory=factory)
    Leds({"ring": 17}, pin_factory=factory).close()


def test_keypad_step_reports_every_edge_before_raising_from_on_edge(
    keypad: MatrixKeypad, matrix: Matrix
) -> None:
    edges: list[str] = []

    def on_edge(key: str, down: bool, at: float) -> None:
        edges.append(key)
        raise RuntimeError(f"a bug at {key}")

    keypad.start(on_edge, background=False)
    matrix.press("1", "2")
    with pytest.raises(RuntimeError, match="a bug at 1"):
        keypad.step()
    assert edges == ["1", "2"]


def test_hook_on_edge_raising_is_logged_and_edges_go_on(
    factory: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    pin = factory.pin(HOOK_PIN)
    hook = HookSwitch(pin=HOOK_PIN, off_hook_when_high=True, pull_up=True, pin_factory=factory)
    edges: list[bool] = []

    def on_edge(off_hook: bool, at: float) -> None:
        edges.append(off_hook)
        if len(edges) == 2:
            raise RuntimeError("a bug in the UI")

    hook.start(on_edge)
    with caplog.at_level(logging.ERROR, logger="peerline.adapters.gpio"):
        pin.drive_low()
        pin.drive_high()
    hook.close()
    assert edges == [True, False, True]
    assert "hook switch: on_edge(False) raised" in caplog.text


def test_keypad_layout_may_be_one_string_per_row(
    factory: MockFactory, matrix: Matrix, clock: FakeClock
) -> None:
    """Pin maps write a layout as ``["123", "456", "789", "*0#"]``."""
    keypad = MatrixKeypad(
        rows=tuple(ROWS),
        columns=tuple(COLUMNS),
        layout=("123", "456", "789", "*0#"),
        pin_factory=factory,
        settle_s=0,
        clock=clock,
    )
    edges = started(keypad)
    matrix.press("0")
    keypad.step()
    keypad.close()
    assert edges == [("0", True, 100.0)]
