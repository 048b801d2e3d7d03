"""MatrixKeypad, HookSwitch and Leds (peerline.adapters.gpio) on gpiozero's MockFactory.

Each test gets a fresh factory, as gpiozero's own tests do. The keypad is wired to its mock
pins by ``Matrix``, an electrical model of a key matrix: pressed keys join rows and columns
into nets, and a column reads low exactly when its net holds a row that is an output driving
low (a row that is an input is high-impedance and pulls nothing). ``Matrix`` also logs what
the rows do after every change and records any short, a row driven high joined to a row
driven low, so every keypad test checks that none ever happens. Keypad tests drive the scan
directly (``start(..., background=False)`` and ``step()``) with a fake clock; the few that run
the scan thread wait on events and queues with timeouts, or poll pin states with a deadline,
never on fixed sleeps (one test sleeps to count the scans an idle thread makes, a bound that a
busy CPU can only lower).
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

from mock_matrix import Matrix
from peerline.adapters.gpio import (
    BLINK_S,
    FLASH_S,
    IDLE_AFTER_SCANS,
    HookSwitch,
    Leds,
    MatrixKeypad,
)
from peerline.errors import HardwareError, LocalProtocolError, PeerlineError

# The bundled pin map desk-4x3 (hw/pinmaps/desk-4x3.toml)
ROWS = [5, 6, 16, 26]
COLUMNS = [22, 23, 24]
LAYOUT = [["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"], ["*", "0", "#"]]
HOOK_PIN = 4
LED_PINS = {"ring": 17, "message": 27}

Edge = tuple[str, bool, float]
Rows = tuple[str, ...]
"""What each row does: ``"in"`` (an input: high-impedance), ``"low"`` or ``"high"`` (output)."""

ALL_IN: Rows = ("in",) * len(ROWS)
ALL_LOW: Rows = ("low",) * len(ROWS)


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


@pytest.fixture
def matrix(factory: MockFactory) -> Iterator[Matrix]:
    """The key matrix; after the test, no short may have happened."""
    wired = Matrix(factory, rows=ROWS, columns=COLUMNS, layout=LAYOUT)
    yield wired
    assert wired.shorts == []
    assert not any("high" in rows for rows in wired.log), "a row was driven high"


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


def step_until_idle(keypad: MatrixKeypad, matrix: Matrix) -> None:
    """Step a keypad with no key down until it goes idle (every row low)."""
    for _ in range(IDLE_AFTER_SCANS):
        keypad.step()
    assert matrix.now() == ALL_LOW


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll ``condition`` every 2 ms until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def keypad_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "peerline-keypad" and t.is_alive()]


def scans_of(log: list[Rows]) -> list[Rows]:
    """``log`` from the first moment every row was an input (idle left behind)."""
    return log[log.index(ALL_IN) :]


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


def test_keypad_scan_drives_one_row_low_at_a_time_the_others_high_impedance(
    keypad: MatrixKeypad, matrix: Matrix
) -> None:
    """Rows rest as inputs; a scan makes each in turn an output driving low, and only it."""
    assert matrix.now() == ALL_IN
    matrix.log.clear()
    assert keypad.scan() == frozenset()
    assert matrix.log == [
        ("low", "in", "in", "in"),
        ALL_IN,
        ("in", "low", "in", "in"),
        ALL_IN,
        ("in", "in", "low", "in"),
        ALL_IN,
        ("in", "in", "in", "low"),
        ALL_IN,
    ]


def test_keypad_never_drives_two_rows_while_scanning_or_between_scans(
    keypad: MatrixKeypad, matrix: Matrix
) -> None:
    """From idle (every row low) to scanning with keys down in one row and one column: once
    idle is left, at most one row is an output at any moment, every row is an input between
    two scans, and no row is ever driven high (the ``matrix`` fixture checks for shorts)."""
    edges = started(keypad)
    step_until_idle(keypad, matrix)
    matrix.log.clear()
    matrix.press("2", "8", "4", "6")  # 2 and 8 share a column, 4 and 6 a row
    for _ in range(3):
        keypad.step()
        assert matrix.now() == ALL_IN  # between two scans
    leaving_idle = matrix.log[: matrix.log.index(ALL_IN)]  # every output low, one by one
    assert leaving_idle == [
        ALL_LOW,
        ("in", "low", "low", "low"),
        ("in", "in", "low", "low"),
        ("in", "in", "in", "low"),
    ]
    assert all(rows.count("low") <= 1 for rows in scans_of(matrix.log))
    assert sorted(key for key, down, _ in edges if down) == ["2", "4", "6", "8"]
    assert matrix.shorts == []


def test_keypad_goes_idle_with_every_row_low_after_quiet_scans(
    keypad: MatrixKeypad, matrix: Matrix, clock: FakeClock
) -> None:
    """After ``IDLE_AFTER_SCANS`` scans find nothing, every row is driven low and a key press
    pulls its column low: that edge sets the wake the scan thread sleeps on."""
    edges = started(keypad)
    for _ in range(IDLE_AFTER_SCANS - 1):
        keypad.step()
        assert matrix.now() == ALL_IN
    keypad.step()
    assert matrix.now() == ALL_LOW
    before = keypad.idle_wake_pending
    matrix.press("6")
    assert (before, keypad.idle_wake_pending) == (False, True)
    assert not matrix.columns[2].state  # pulled low through the key by its low row
    clock.now = 101.0
    keypad.step()
    assert edges == [("6", True, 101.0)]
    assert not keypad.idle_wake_pending
    assert matrix.now() == ALL_IN  # scanning while the key is down


def test_keypad_release_bounce_is_still_scanned_before_idle(
    keypad: MatrixKeypad, matrix: Matrix
) -> None:
    """Scanning goes on for ``IDLE_AFTER_SCANS`` scans after the last key is released, so a
    contact that bounces back meanwhile is scanned, not slept through."""
    edges = started(keypad)
    matrix.press("0")
    keypad.step()
    matrix.release("0")
    for _ in range(IDLE_AFTER_SCANS - 1):
        keypad.step()
    assert matrix.now() == ALL_IN
    matrix.press("0")  # bounces back
    keypad.step()
    assert [(key, down) for key, down, _ in edges] == [("0", True), ("0", False), ("0", True)]
    assert matrix.now() == ALL_IN


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (("1", "9"), ["1", "9"]),  # different rows and columns
        (("4", "6"), ["4", "6"]),  # one row
        (("2", "8"), ["2", "8"]),  # one column: would short a high row to a low one
        (("3", "6", "9", "#"), ["#", "3", "6", "9"]),  # a whole column
    ],
)
def test_keypad_keys_held_at_once_are_all_reported_without_a_short(
    keypad: MatrixKeypad,
    matrix: Matrix,
    clock: FakeClock,
    keys: tuple[str, ...],
    expected: list[str],
) -> None:
    edges = started(keypad)
    step_until_idle(keypad, matrix)
    matrix.press(*keys)
    keypad.step()
    assert edges == [(key, True, clock.now) for key in expected]
    matrix.release(keys[0])
    clock.now += 0.005
    keypad.step()
    assert edges[len(keys) :] == [(keys[0], False, clock.now)]
    assert keypad.scan() == frozenset(keys[1:])
    assert matrix.shorts == []


def test_keypad_three_keys_in_an_l_show_the_fourth_corner(
    keypad: MatrixKeypad, matrix: Matrix
) -> None:
    """Matrix ghosting, as on any keypad without a diode per key (hw/README.md): with 1, 2 and
    5 down, row 2 reaches column 1 through 5, 2 and 1, so 4 reads as down too."""
    matrix.press("1", "2", "5")
    assert keypad.scan() == frozenset({"1", "2", "4", "5"})


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
    assert keypad_threads() == []
    assert edges.empty()


def test_keypad_thread_sleeps_while_idle_until_a_key_press_wakes_it(
    factory: MockFactory, matrix: Matrix
) -> None:
    """Idle, every row is low; the press pulls its column low, and that edge, not a scan on
    a timer (the safety scan is an hour away here), brings the key to ``on_edge``."""
    pressed = threading.Event()
    edges: list[Edge] = []

    def on_edge(key: str, down: bool, at: float) -> None:
        edges.append((key, down, at))
        pressed.set()

    keypad = MatrixKeypad(
        rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory, idle_poll_s=3600.0
    )
    try:
        keypad.start(on_edge)
        assert wait_until(lambda: matrix.now() == ALL_LOW)
        matrix.press("8")
        assert pressed.wait(timeout=2.0)
        assert [(key, down) for key, down, _ in edges] == [("8", True)]
    finally:
        keypad.close()
    assert keypad_threads() == []


def test_keypad_thread_goes_back_to_idle_after_the_last_release(
    factory: MockFactory, matrix: Matrix
) -> None:
    pressed = threading.Event()
    released = threading.Event()

    def on_edge(key: str, down: bool, at: float) -> None:
        (pressed if down else released).set()

    keypad = MatrixKeypad(
        rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory, idle_poll_s=3600.0
    )
    try:
        matrix.press("1", "4")  # down at start: the first scan finds them
        keypad.start(on_edge)
        assert pressed.wait(timeout=2.0)
        assert matrix.now() != ALL_LOW  # scanning
        matrix.release("1", "4")
        assert released.wait(timeout=2.0)
        assert wait_until(lambda: matrix.now() == ALL_LOW)
        assert not keypad.idle_wake_pending
    finally:
        keypad.close()
    assert matrix.now() == ALL_IN  # closed: every row released, high-impedance


class CountingKeypad(MatrixKeypad):
    """A MatrixKeypad that counts its scans."""

    def __init__(self, **kwargs: Any) -> None:
        self.scans = 0
        super().__init__(**kwargs)

    def scan(self) -> frozenset[str]:
        self.scans += 1
        return super().scan()


def test_keypad_thread_scans_rarely_while_idle(factory: MockFactory, matrix: Matrix) -> None:
    """Idle, the thread makes only its safety scans (one a second), not the 40 a scanner
    polling every 5 ms would make in the 0.2 s counted. A busy CPU can only lower the count."""
    keypad = CountingKeypad(
        rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory, scan_interval_s=0.001
    )
    try:
        keypad.start(lambda key, down, at: None)
        assert wait_until(lambda: matrix.now() == ALL_LOW)
        before = keypad.scans
        time.sleep(0.2)
        idle_scans = keypad.scans - before
    finally:
        keypad.close()
    assert idle_scans <= 2


def test_keypad_safety_scan_finds_a_key_whose_edge_was_missed(
    factory: MockFactory, matrix: Matrix
) -> None:
    pressed = threading.Event()
    keypad = MatrixKeypad(
        rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory, idle_poll_s=0.02
    )
    try:
        keypad.start(lambda key, down, at: pressed.set())
        assert wait_until(lambda: matrix.now() == ALL_LOW)
        for column in matrix.columns:
            column.when_changed = None  # the interrupt is lost
        matrix.press("9")
        assert not keypad.idle_wake_pending
        assert pressed.wait(timeout=2.0)
    finally:
        keypad.close()


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


def test_keypad_thread_pin_failure_is_logged_once_and_ends_the_thread(
    factory: MockFactory, matrix: Matrix, caplog: pytest.LogCaptureFixture
) -> None:
    keypad = MatrixKeypad(rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory)
    try:
        with caplog.at_level(logging.ERROR, logger="peerline.adapters.gpio"):
            keypad.start(lambda key, down, at: None)
            assert wait_until(lambda: matrix.now() == ALL_LOW)
            matrix.rows[1].fail = True
            matrix.press("5")  # wakes the thread, whose scan then fails
            assert wait_until(lambda: keypad_threads() == [])
    finally:
        matrix.rows[1].fail = False
        keypad.close()
    stopped = [r for r in caplog.records if r.getMessage().startswith("keypad stopped")]
    assert len(stopped) == 1
    assert "stopped answering" in stopped[0].getMessage()


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
    assert wait_until(lambda: keypad_threads() == [])


def test_keypad_close_is_idempotent_and_releases_the_pins(
    factory: MockFactory, matrix: Matrix
) -> None:
    keypad = MatrixKeypad(rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory)
    keypad.start(lambda key, down, at: None)
    assert wait_until(lambda: matrix.now() == ALL_LOW)
    keypad.close()
    keypad.close()
    assert matrix.now() == ALL_IN
    assert all(column.when_changed is None for column in matrix.columns)
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
    with pytest.raises(HardwareError, match="keypad"):
        keypad.step()


def test_keypad_pin_in_use_raises_hardware_error_and_releases_the_rest(
    factory: MockFactory,
) -> None:
    other = Leds({"busy": COLUMNS[-1]}, pin_factory=factory)
    with pytest.raises(HardwareError, match=r"keypad.*GPIO24.*in use") as raised:
        MatrixKeypad(rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory)
    assert isinstance(raised.value, PeerlineError)
    assert isinstance(raised.value, OSError)
    other.close()
    MatrixKeypad(rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory).close()


def test_keypad_row_in_use_raises_hardware_error(factory: MockFactory) -> None:
    other = Leds({"busy": ROWS[2]}, pin_factory=factory)
    with pytest.raises(HardwareError, match=r"keypad.*GPIO16.*in use"):
        MatrixKeypad(rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory)
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


@pytest.mark.parametrize(
    ("timing", "match"),
    [
        ({"scan_interval_s": 0}, "scan_interval_s"),
        ({"settle_s": -1e-6}, "settle_s"),
        ({"idle_after_scans": 0}, "idle_after_scans"),
        ({"idle_poll_s": 0}, "idle_poll_s"),
    ],
)
def test_keypad_bad_timing_raises_value_error(
    factory: MockFactory, timing: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        MatrixKeypad(rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=factory, **timing)


def test_no_pin_factory_available_raises_hardware_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``pin_factory=None`` means gpiozero's default; when none loads, the part says so."""
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "peerline-test-no-such-factory")
    with pytest.raises(HardwareError, match=r"keypad \(rows .*pin factory"):
        MatrixKeypad(rows=ROWS, columns=COLUMNS, layout=LAYOUT, pin_factory=None)
    with pytest.raises(HardwareError, match=r"hook switch \(pin 4\).*pin factory"):
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
    with pytest.raises(HardwareError, match=r"hook switch \(pin 4\).*in use"):
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
