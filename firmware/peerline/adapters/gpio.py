"""The handset's GPIO parts over gpiozero: the matrix keypad, the hook switch and the LEDs.

Each adapter takes its pins as plain numbers (BCM numbering, from the pin map) and a gpiozero
pin factory by keyword. The factory is never chosen behind the caller's back: the composition
root passes ``pin_factory=None`` to mean gpiozero's default (lgpio on a Pi, the Pi 5 included),
and tests pass a fresh ``gpiozero.pins.mock.MockFactory()``. With the pins of the bundled pin
map ``desk-4x3`` (``hw/pinmaps/desk-4x3.toml``):

    from gpiozero.pins.mock import MockFactory
    keypad = MatrixKeypad(rows=[5, 6, 16, 26], columns=[22, 23, 24],
                          layout=["123", "456", "789", "*0#"],
                          pin_factory=MockFactory())
    keypad.start(lambda key, down, at: print(key, down, at))
    ...
    keypad.close()

The adapters report raw edges with ``time.monotonic()`` timestamps and nothing more: debounce,
long press, repeat and hook-flash detection are the UI's pure machines (house style §3).

Errors: any failure to open a pin (a pin used by another device or program, no pin factory
available, no permission on ``/dev/gpiochip*``) raises ``HardwareError`` naming the part and
its pins; the pins already opened are released first. ``close`` is idempotent everywhere.
"""

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from gpiozero import (
    LED,
    BadPinFactory,
    DigitalInputDevice,
    GPIODevice,
    GPIOZeroError,
    InputDevice,
)

from peerline.errors import HardwareError, LocalProtocolError
from peerline.ports import HookEdgeCallback, HookInput, Indicators, KeyEdgeCallback, KeyInput

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Monotonic seconds; ``time.monotonic`` unless a test injects its own."""

SCAN_INTERVAL_S: Final = 0.005
"""How often the keypad thread scans the whole matrix while a key is down, in seconds (200 scans
a second)."""

IDLE_AFTER_SCANS: Final = 10
"""How many scans in a row must find no key before the keypad goes idle (all rows low, the
thread asleep until a column falls): 50 ms at 5 ms, so release bounce is still scanned."""

IDLE_POLL_S: Final = 1.0
"""While idle, the keypad thread still scans once every this many seconds, so a missed edge
cannot hide a key for longer."""

SETTLE_S: Final = 50e-6
"""How long a keypad row is held low before its columns are read, in seconds: time for the
column lines to follow the key contacts through their pull-ups (longer cable, longer wait)."""

JOIN_TIMEOUT_S: Final = 1.0
"""How long ``MatrixKeypad.close`` waits for the scan thread (blocked in ``on_edge``) to end."""

BLINK_S: Final = (0.5, 0.5)
"""LED mode ``"blink"``: seconds on, seconds off (1 Hz: ringing)."""

FLASH_S: Final = (0.06, 1.94)
"""LED mode ``"flash"``: a 60 ms blink every 2 s (something waiting)."""

LED_MODES: Final = ("off", "on", "blink", "flash")


def _pin_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this pin cannot be had or used": gpiozero's own, OS errors, and
    the lgpio library's ``lgpio.error`` (a bare ``Exception``) once its factory has loaded it."""
    errors: list[type[BaseException]] = [GPIOZeroError, OSError]
    lgpio = sys.modules.get("lgpio")
    lgpio_error = getattr(lgpio, "error", None)
    if isinstance(lgpio_error, type) and issubclass(lgpio_error, BaseException):
        errors.append(lgpio_error)
    return tuple(errors)


@contextmanager
def _opening(part: str, opened: list[Any]) -> Iterator[None]:
    """Turn a failure to open ``part``'s pins into ``HardwareError``, closing ``opened``."""
    try:
        yield
    except _pin_errors() as exc:
        _close_all(opened)
        hint = ""
        if isinstance(exc, BadPinFactory):
            hint = (
                " (gpiozero has no working pin factory: this is not a Raspberry Pi, or lgpio"
                " is missing; scripts/setup installs it on a Pi from requirements/pi.txt)"
            )
        raise HardwareError(f"cannot open the {part}: {exc}{hint}") from exc


def _close_all(devices: Sequence[Any]) -> None:
    """Close gpiozero devices, last opened first; a failure to close one is logged, not raised."""
    for device in reversed(devices):
        try:
            device.close()
        except Exception:  # closing must go on for the others
            logger.exception("closing %r failed", device)


class MatrixKeypad:
    """A key matrix scanned by a thread that sleeps until a key goes down.

    Wiring: each column is an input with the Pi's pull-up; a key joins its row to its column.
    Rows are never driven high: a row is either an output driving low or a high-impedance
    input (no pull), as an open-drain output would be. A column therefore reads low exactly
    when a key joins it to a row driven low.

    Scanning: the rows are driven low one at a time, every other row high-impedance, and the
    columns read. Every ``scan_interval_s`` (5 ms) while a key is down, and for
    ``idle_after_scans`` scans (50 ms) after the last one is released (release bounce), the
    thread scans and reports each key whose state differs from the previous scan to
    ``on_edge(key, down, at)``, with ``at`` the ``time.monotonic()`` of that scan.

    Idle: then the keypad drives every row low at once and the thread sleeps. A key going
    down pulls its column low, and that falling edge (a GPIO interrupt through gpiozero)
    wakes the thread, which scans again at once. A quiet keypad costs one scan every
    ``idle_poll_s`` (1 s), a safety net that finds a key whose edge was missed, instead of
    200 scans a second.

    Why open drain: with idle rows driven high, two keys down in one column would join the
    scanned row (low) to another row (high) through the keypad, an output shorted to an
    output. A high-impedance row cannot fight, so any keys may be held at once and no series
    resistors are needed. While idle every row is low, so nothing can fight either.

    What it does not do: debounce (a bouncing contact is reported edge by edge, as sampled by
    the scan; a press and release both within one interval are not seen at all), hold or
    repeat (``ui``'s ``KeyMachine`` does these), and tell a phantom key from a real one:
    three keys down in an L (``1``, ``2``, ``5``) also show the fourth corner (``4``), as on
    any matrix without a diode per key. What bounds it: an edge is a *change* between two
    scans, so a key stuck down is reported once (and keeps the thread scanning), and the
    thread reports at most one edge per key per scan. It never blocks anything but itself:
    ``on_edge`` is called on the scan thread, and an exception from it is logged and scanning
    goes on. A pin that fails while scanning (``HardwareError``) is logged once and ends the
    thread; the keypad then stays quiet until closed.

    :param rows: BCM pin numbers of the rows, top to bottom.
    :param columns: BCM pin numbers of the columns, left to right.
    :param layout: the key labels, one sequence per row, one label per column
        (``"0"``-``"9"``, ``"*"``, ``"#"``, ``"A"``-``"D"``); each label once. A string per row
        (``["123", "456", "789", "*0#"]``, as pin maps write it) is such a sequence.
    :param pin_factory: a gpiozero pin factory, or None for gpiozero's default (keyword only,
        and required: hardware is never opened unless asked for).
    :param scan_interval_s: seconds between two scans while a key is down (default 0.005).
    :param settle_s: seconds a row is held low before its columns are read (default 50 us).
    :param idle_after_scans: scans that find no key before the keypad goes idle (default 10).
    :param idle_poll_s: seconds between two safety scans while idle (default 1.0).
    :param clock: the clock that stamps edges (default ``time.monotonic``).
    :raises ValueError: the layout does not match the rows and columns, a label repeats, a
        pin is listed twice, or a timing is out of range.
    :raises HardwareError: a pin cannot be opened.
    """

    __slots__ = (
        "__weakref__",  # gpiozero holds the column edge callback by weak reference
        "_clock",
        "_closed",
        "_columns",
        "_down",
        "_idle",
        "_idle_after_scans",
        "_idle_poll_s",
        "_keys",
        "_lock",
        "_on_edge",
        "_quiet_scans",
        "_rows",
        "_scan_interval_s",
        "_settle_s",
        "_stop",
        "_thread",
        "_wake",
    )

    def __init__(
        self,
        *,
        rows: Sequence[int],
        columns: Sequence[int],
        layout: Sequence[Sequence[str]],
        pin_factory: Any,
        scan_interval_s: float = SCAN_INTERVAL_S,
        settle_s: float = SETTLE_S,
        idle_after_scans: int = IDLE_AFTER_SCANS,
        idle_poll_s: float = IDLE_POLL_S,
        clock: Clock = time.monotonic,
    ) -> None:
        self._keys = _check_layout(rows, columns, layout)
        if not scan_interval_s > 0:
            raise ValueError(f"scan_interval_s must be > 0, not {scan_interval_s}")
        if not settle_s >= 0:
            raise ValueError(f"settle_s must be >= 0, not {settle_s}")
        if idle_after_scans < 1:
            raise ValueError(f"idle_after_scans must be >= 1, not {idle_after_scans}")
        if not idle_poll_s > 0:
            raise ValueError(f"idle_poll_s must be > 0, not {idle_poll_s}")
        self._scan_interval_s = scan_interval_s
        self._settle_s = settle_s
        self._idle_after_scans = idle_after_scans
        self._idle_poll_s = idle_poll_s
        self._clock = clock
        self._down: frozenset[str] = frozenset()
        self._on_edge: KeyEdgeCallback | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by a falling column edge, and by close()
        self._lock = threading.Lock()
        self._closed = False
        self._idle = False
        self._quiet_scans = 0
        opened: list[Any] = []
        part = f"keypad (rows {list(rows)}, columns {list(columns)})"
        with _opening(part, opened):
            for pin in rows:
                # A bare GPIODevice reserves the pin and hands over its Pin: the keypad
                # switches the pin between input and output itself (_float, _drive_low).
                opened.append(GPIODevice(pin, pin_factory=pin_factory))
            for pin in columns:
                opened.append(InputDevice(pin, pull_up=True, pin_factory=pin_factory))
            for row in opened[: len(rows)]:
                _float(row.pin)
                if not row.pin.info.pull:  # GPIO 2 and 3 have fixed pull-ups; others: none
                    row.pin.pull = "floating"
                # Once low as an output, each row's output latch stays low, so a later switch
                # to output starts low on every pin factory (lgpio claims outputs low anyway).
                _drive_low(row.pin)
                _float(row.pin)
            for column in opened[len(rows) :]:
                column.pin.edges = "falling"
                column.pin.when_changed = self._column_fell
        self._rows = opened[: len(rows)]
        self._columns = opened[len(rows) :]

    @property
    def idle_wake_pending(self) -> bool:
        """Whether a column has fallen since the keypad went idle: the scan thread is woken
        (or, without a thread, the next ``step`` has a key to find)."""
        return self._idle and self._wake.is_set()

    def start(self, on_edge: KeyEdgeCallback, *, background: bool = True) -> None:
        """Begin reporting edges to ``on_edge(key, down, at)`` from the scan thread.

        With ``background=False`` no thread is started: the caller scans by calling ``step``
        (tests do, with an injected clock). Keys already down at start are reported as edges
        by the first scan. Then: ``close`` when done.

        :raises LocalProtocolError: already started, or closed.
        """
        with self._lock:
            if self._closed:
                raise LocalProtocolError("keypad is closed")
            if self._on_edge is not None:
                raise LocalProtocolError("keypad already started")
            self._on_edge = on_edge
            if background:
                self._thread = threading.Thread(
                    target=self._run, name="peerline-keypad", daemon=True
                )
                self._thread.start()

    def step(self) -> None:
        """Scan the matrix once, report what changed since the last scan, and go idle (every
        row low) after ``idle_after_scans`` scans in a row found no key down.

        The scan thread calls this every ``scan_interval_s`` while a key is down, and when
        woken while idle; without a thread (``start(..., background=False)``) the caller
        does, and ``idle_wake_pending`` tells it a key went down. The first exception from
        ``on_edge`` is raised here once every edge has been reported. Not to be called while
        the thread runs.

        :raises HardwareError: a pin failed.
        """
        self._step(raise_errors=True)

    def scan(self) -> frozenset[str]:
        """The keys down now: one pass over the rows (reports nothing).

        Each row in turn is driven low while every other row is high-impedance; the scan ends
        with every row high-impedance (no longer idle). Not to be called while the thread
        runs: the two would mix up their rows (though never into a short, as no row is ever
        driven high).

        :raises HardwareError: a pin failed (or the keypad is closed).
        """
        down: set[str] = set()
        with self._matrix_errors("reading the matrix"):
            rows = [row.pin for row in self._rows]
            if self._idle:  # leave idle: every row high-impedance before one is driven
                self._idle = False
                for pin in rows:
                    _float(pin)
            for r, pin in enumerate(rows):
                _drive_low(pin)
                try:
                    if self._settle_s:
                        time.sleep(self._settle_s)
                    for c, column in enumerate(self._columns):
                        if column.is_active:  # pulled up: active when low
                            down.add(self._keys[r][c])
                finally:
                    _float(pin)
        return frozenset(down)

    def close(self) -> None:
        """Stop the scan thread and release every pin (rows left high-impedance). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._stop.set()
        self._wake.set()  # after _stop: an idle thread wakes and sees it
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                logger.warning("keypad: the scan thread is still in on_edge; closing the pins")
        for column in self._columns:
            try:
                column.pin.when_changed = None
            except Exception:  # closing must go on for the others
                logger.exception("keypad: disarming %r failed", column)
        _close_all([*self._rows, *self._columns])

    @contextmanager
    def _matrix_errors(self, doing: str) -> Iterator[None]:
        if self._closed:
            raise HardwareError("keypad: the keypad is closed")
        try:
            yield
        except _pin_errors() as exc:
            raise HardwareError(f"keypad: {doing} failed: {exc}") from exc

    def _column_fell(self, ticks: object, state: object) -> None:
        """gpiozero's edge callback (its event thread, or the caller of a mock pin)."""
        self._wake.set()

    def _step(self, *, raise_errors: bool) -> bool:
        """Scan, go idle if quiet long enough, report; True if the keypad is now idle."""
        down = self.scan()
        at = self._clock()
        self._quiet_scans = 0 if down else self._quiet_scans + 1
        if self._quiet_scans >= self._idle_after_scans:
            self._go_idle()  # before reporting: a press during a slow on_edge still wakes
        self._report(down, at, raise_errors=raise_errors)
        return self._idle

    def _go_idle(self) -> None:
        """Drive every row low, so any key pressed from now on pulls its column low."""
        with self._matrix_errors("going idle"):
            self._wake.clear()  # first: a key pressed while the rows go low still wakes
            for row in self._rows:
                _drive_low(row.pin)
            self._idle = True

    def _report(self, down: frozenset[str], at: float, *, raise_errors: bool) -> None:
        on_edge = self._on_edge
        changed = down ^ self._down
        self._down = down
        if on_edge is None:
            return
        failure: Exception | None = None
        for key in sorted(changed):
            try:
                on_edge(key, key in down, at)
            except Exception as exc:  # the other keys' edges are still reported
                if raise_errors:
                    failure = failure or exc
                else:
                    logger.exception("keypad: on_edge(%r) raised; scanning goes on", key)
        if failure is not None:
            raise failure

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                idle = self._step(raise_errors=False)
            except HardwareError as exc:
                if not self._stop.is_set():  # not just close() racing a scan
                    logger.error("keypad stopped: %s", exc)
                return
            if self._stop.is_set():
                return
            if idle:
                # Until a column falls, close() is called (both set _wake; _go_idle cleared
                # it before driving the rows low), or the safety scan is due.
                self._wake.wait(self._idle_poll_s)
                next_at = time.monotonic()
                continue
            next_at += self._scan_interval_s
            now = time.monotonic()
            next_at = max(next_at, now)  # fell behind (a slow on_edge): skip missed scans
            if self._stop.wait(next_at - now):
                return


def _float(pin: Any) -> None:
    """Make a row high-impedance: an input, so it neither drives nor pulls its keys."""
    pin.function = "input"


def _drive_low(pin: Any) -> None:
    """Make a row an output driving low (never high: the keypad's rows are open drain)."""
    pin.function = "output"
    pin.state = False


def _check_layout(
    rows: Sequence[int], columns: Sequence[int], layout: Sequence[Sequence[str]]
) -> tuple[tuple[str, ...], ...]:
    if not rows or not columns:
        raise ValueError("a keypad needs at least one row and one column")
    pins = [*rows, *columns]
    if len(set(pins)) != len(pins):
        raise ValueError(f"a keypad pin is listed twice: rows {rows}, columns {columns}")
    if len(layout) != len(rows) or any(len(labels) != len(columns) for labels in layout):
        raise ValueError(
            f"layout must have {len(rows)} rows of {len(columns)} keys "
            f"(one per row and column pin), not {[len(labels) for labels in layout]}"
        )
    keys = tuple(tuple(labels) for labels in layout)
    flat = [key for labels in keys for key in labels]
    if any(not isinstance(key, str) or not key for key in flat):
        raise ValueError("every key label must be a non-empty string")
    if len(set(flat)) != len(flat):
        raise ValueError(f"a key label repeats in the layout: {flat}")
    return keys


class HookSwitch:
    """The hook switch: one input pin, reported edge by edge through gpiozero's callbacks.

    ``start(on_edge)`` reports ``on_edge(off_hook, at)`` once with the current position, then
    on every change gpiozero sees (bounce included: the UI's ``HookMachine`` debounces), from
    gpiozero's event thread; ``at`` is ``time.monotonic()``. An exception from ``on_edge`` is
    logged there (it is raised to the caller of ``start`` for the first report).

    :param pin: BCM pin number of the switch.
    :param off_hook_when_high: True if the pin reads high while the handset is lifted.
    :param pull_up: True for the Pi's pull-up on the pin (a switch to ground), False for the
        pull-down (a switch to 3.3 V).
    :param pin_factory: a gpiozero pin factory, or None for gpiozero's default (keyword only,
        required).
    :param clock: the clock that stamps edges (default ``time.monotonic``).
    :raises HardwareError: the pin cannot be opened.
    """

    __slots__ = (
        "_clock",
        "_closed",
        "_device",
        "_last",
        "_lock",
        "_off_hook_when_active",
        "_on_edge",
    )

    def __init__(
        self,
        *,
        pin: int,
        off_hook_when_high: bool,
        pull_up: bool,
        pin_factory: Any,
        clock: Clock = time.monotonic,
    ) -> None:
        self._clock = clock
        self._lock = threading.RLock()  # RLock: on_edge may call close()
        self._on_edge: HookEdgeCallback | None = None
        self._last: bool | None = None
        self._closed = False
        # gpiozero: a pulled-up input is "active" when low, a pulled-down one when high
        self._off_hook_when_active = (not pull_up) == off_hook_when_high
        opened: list[Any] = []
        with _opening(f"hook switch (pin {pin})", opened):
            opened.append(
                DigitalInputDevice(pin, pull_up=pull_up, bounce_time=None, pin_factory=pin_factory)
            )
        self._device = opened[0]

    @property
    def off_hook(self) -> bool:
        """Whether the handset is off its cradle now (read from the pin).

        :raises HardwareError: the pin failed or the switch is closed.
        """
        try:
            return bool(self._device.is_active) == self._off_hook_when_active
        except _pin_errors() as exc:
            raise HardwareError(f"hook switch: reading the pin failed: {exc}") from exc

    def start(self, on_edge: HookEdgeCallback) -> None:
        """Report the current position to ``on_edge`` now, then every edge. Then: ``close``.

        :raises LocalProtocolError: already started, or closed.
        :raises HardwareError: the pin failed.
        """
        with self._lock:
            if self._closed:
                raise LocalProtocolError("hook switch is closed")
            if self._on_edge is not None:
                raise LocalProtocolError("hook switch already started")
            self._on_edge = on_edge
            # Callbacks first, then the read: an edge in between is reported after the
            # current state (and dropped if it is the state just reported).
            self._device.when_activated = self._activated
            self._device.when_deactivated = self._deactivated
            off_hook = self.off_hook
            self._last = off_hook
            on_edge(off_hook, self._clock())

    def close(self) -> None:
        """Stop reporting and release the pin. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._on_edge = None
        _close_all([self._device])

    def _activated(self) -> None:
        self._changed(active=True)

    def _deactivated(self) -> None:
        self._changed(active=False)

    def _changed(self, *, active: bool) -> None:
        at = self._clock()
        off_hook = active == self._off_hook_when_active
        with self._lock:
            on_edge = self._on_edge
            if on_edge is None or off_hook == self._last:
                return
            self._last = off_hook
            try:
                on_edge(off_hook, at)  # under the lock, so edges arrive in order
            except Exception:  # gpiozero's event thread must go on
                logger.exception("hook switch: on_edge(%r) raised", off_hook)


class Leds:
    """The phone's LEDs by name, each off, on, blinking (1 Hz) or flashing (60 ms every 2 s).

    Blinking runs in gpiozero's per-LED background thread (``LED.blink``). Setting the mode an
    LED already shows does nothing, so a UI that re-applies its state on every redraw does not
    restart the blink. Unknown names are ignored (a pin map may have fewer LEDs); after
    ``close`` every ``set`` is ignored.

    :param pins: BCM pin number of each LED by name, e.g. ``{"ring": 17, "message": 27}``.
    :param active_high: True if a high pin lights the LED (LED to ground).
    :param pin_factory: a gpiozero pin factory, or None for gpiozero's default (keyword only,
        required).
    :param blink_s: ``"blink"`` as (seconds on, seconds off); default (0.5, 0.5).
    :param flash_s: ``"flash"`` as (seconds on, seconds off); default (0.06, 1.94).
    :raises HardwareError: a pin cannot be opened.
    """

    __slots__ = ("_blink_s", "_closed", "_flash_s", "_leds", "_lock", "_modes")

    def __init__(
        self,
        pins: Mapping[str, int],
        *,
        active_high: bool = True,
        pin_factory: Any,
        blink_s: tuple[float, float] = BLINK_S,
        flash_s: tuple[float, float] = FLASH_S,
    ) -> None:
        for name, (on_s, off_s) in (("blink_s", blink_s), ("flash_s", flash_s)):
            if not (on_s > 0 and off_s > 0):
                raise ValueError(f"{name} must be two times > 0, not {(on_s, off_s)}")
        self._blink_s = blink_s
        self._flash_s = flash_s
        self._lock = threading.Lock()
        self._closed = False
        opened: list[Any] = []
        with _opening(f"LEDs {dict(pins)}", opened):
            for pin in pins.values():
                opened.append(
                    LED(pin, active_high=active_high, initial_value=False, pin_factory=pin_factory)
                )
        self._leds: dict[str, Any] = dict(zip(pins, opened, strict=True))
        self._modes: dict[str, str] = dict.fromkeys(pins, "off")

    def set(self, name: str, mode: str) -> None:
        """Show ``mode`` (``"off"``, ``"on"``, ``"blink"``, ``"flash"``) on LED ``name``.

        :raises ValueError: an unknown mode.
        :raises HardwareError: the pin failed.
        """
        if mode not in LED_MODES:
            raise ValueError(f"LED mode must be one of {LED_MODES}, not {mode!r}")
        with self._lock:
            led = self._leds.get(name)
            if self._closed or led is None or self._modes[name] == mode:
                return
            try:
                if mode == "off":
                    led.off()
                elif mode == "on":
                    led.on()
                else:
                    on_s, off_s = self._blink_s if mode == "blink" else self._flash_s
                    led.blink(on_time=on_s, off_time=off_s, background=True)
            except _pin_errors() as exc:
                raise HardwareError(f"LED {name!r}: {exc}") from exc
            self._modes[name] = mode

    def mode(self, name: str) -> str | None:
        """The mode LED ``name`` shows, or None if there is no such LED."""
        with self._lock:
            return self._modes.get(name)

    def close(self) -> None:
        """Stop blinking, turn every LED off and release the pins. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for name, led in self._leds.items():
            try:
                led.off()  # stops the blink thread; a released pin keeps its last level
            except Exception:  # closing must go on for the others
                logger.exception("turning LED %r off failed", name)
        _close_all(list(self._leds.values()))


if TYPE_CHECKING:  # each adapter is its port (checked by mypy, free at run time)

    def _key_input(keypad: MatrixKeypad) -> KeyInput:
        return keypad

    def _hook_input(hook: HookSwitch) -> HookInput:
        return hook

    def _indicators(leds: Leds) -> Indicators:
        return leds
