"""The handset's GPIO parts over gpiozero: the matrix keypad, the hook switch and the LEDs.

Each adapter takes its pins as plain numbers (BCM numbering, from the pin map) and a gpiozero
pin factory by keyword. The factory is never chosen behind the caller's back: the composition
root passes ``pin_factory=None`` to mean gpiozero's default (lgpio on a Pi, the Pi 5 included),
and tests pass a fresh ``gpiozero.pins.mock.MockFactory()``:

    from gpiozero.pins.mock import MockFactory
    keypad = MatrixKeypad(rows=[5, 6, 13, 19], columns=[12, 16, 20],
                          layout=[["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"],
                                  ["*", "0", "#"]],
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
    DigitalOutputDevice,
    GPIOZeroError,
    InputDevice,
)

from peerline.errors import HardwareError, LocalProtocolError
from peerline.ports import HookEdgeCallback, HookInput, Indicators, KeyEdgeCallback, KeyInput

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Monotonic seconds; ``time.monotonic`` unless a test injects its own."""

SCAN_INTERVAL_S: Final = 0.005
"""How often the keypad thread scans the whole matrix, in seconds (200 scans a second)."""

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
    """A key matrix scanned by a thread: rows driven low one at a time, columns read.

    Wiring: each row is an output, held high (inactive) and driven low while it is scanned;
    each column is an input with the Pi's pull-up, so a column reads low exactly when a key
    joins it to the row being scanned. Every ``scan_interval_s`` (5 ms) the thread scans all
    rows and reports each key whose state differs from the previous scan to
    ``on_edge(key, down, at)``, with ``at`` the ``time.monotonic()`` of that scan.

    What it does not do: debounce (a bouncing contact is reported edge by edge, as sampled by
    the scan; a press and release both within one interval are not seen at all), hold or
    repeat (``ui``'s ``KeyMachine`` does these). What bounds it: an edge is a *change* between
    two scans, so a key stuck down is reported once, and the thread reports at most one edge
    per key per scan. It never blocks anything but itself: ``on_edge`` is called on the scan
    thread, and an exception from it is logged and scanning goes on. A pin that fails while
    scanning (``HardwareError``) is logged once and ends the thread; the keypad then stays
    quiet until closed.

    Hardware note: with two keys of one column down, the scanned (low) row and an idle (high)
    row are joined through them; put a series resistor (about 1 kOhm) or a diode in each row
    line. Three keys in an L may show a fourth, phantom key (matrix ghosting).

    :param rows: BCM pin numbers of the rows, top to bottom.
    :param columns: BCM pin numbers of the columns, left to right.
    :param layout: the key labels, one sequence per row, one label per column
        (``"0"``-``"9"``, ``"*"``, ``"#"``, ``"A"``-``"D"``); each label once. A string per row
        (``["123", "456", "789", "*0#"]``, as pin maps write it) is such a sequence.
    :param pin_factory: a gpiozero pin factory, or None for gpiozero's default (keyword only,
        and required: hardware is never opened unless asked for).
    :param scan_interval_s: seconds between two scans (default 0.005).
    :param settle_s: seconds a row is held low before its columns are read (default 50 us).
    :param clock: the clock that stamps edges (default ``time.monotonic``).
    :raises ValueError: the layout does not match the rows and columns, a label repeats, or a
        pin is listed twice.
    :raises HardwareError: a pin cannot be opened.
    """

    __slots__ = (
        "_clock",
        "_columns",
        "_down",
        "_keys",
        "_lock",
        "_on_edge",
        "_rows",
        "_scan_interval_s",
        "_settle_s",
        "_stop",
        "_thread",
        "_closed",
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
        clock: Clock = time.monotonic,
    ) -> None:
        self._keys = _check_layout(rows, columns, layout)
        if not scan_interval_s > 0:
            raise ValueError(f"scan_interval_s must be > 0, not {scan_interval_s}")
        if not settle_s >= 0:
            raise ValueError(f"settle_s must be >= 0, not {settle_s}")
        self._scan_interval_s = scan_interval_s
        self._settle_s = settle_s
        self._clock = clock
        self._down: frozenset[str] = frozenset()
        self._on_edge: KeyEdgeCallback | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        opened: list[Any] = []
        part = f"keypad (rows {list(rows)}, columns {list(columns)})"
        with _opening(part, opened):
            for pin in rows:
                # active_high=False: "on" drives the row low; idle rows stay high
                opened.append(
                    DigitalOutputDevice(
                        pin, active_high=False, initial_value=False, pin_factory=pin_factory
                    )
                )
            for pin in columns:
                # InputDevice, not DigitalInputDevice: a scanned column needs no edge events
                opened.append(InputDevice(pin, pull_up=True, pin_factory=pin_factory))
        self._rows = opened[: len(rows)]
        self._columns = opened[len(rows) :]

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
        """Scan the matrix once and report what changed since the last scan.

        The scan thread calls this every ``scan_interval_s``; without a thread
        (``start(..., background=False)``) the caller does. The first exception from
        ``on_edge`` is raised here once every edge has been reported. Not to be called while
        the thread runs.

        :raises HardwareError: a pin failed.
        """
        down = self.scan()
        self._report(down, self._clock(), raise_errors=True)

    def scan(self) -> frozenset[str]:
        """The keys down now: one pass over the rows (reports nothing).

        :raises HardwareError: a pin failed (or the keypad is closed).
        """
        down: set[str] = set()
        try:
            for r, row in enumerate(self._rows):
                row.on()
                try:
                    if self._settle_s:
                        time.sleep(self._settle_s)
                    for c, column in enumerate(self._columns):
                        if column.is_active:
                            down.add(self._keys[r][c])
                finally:
                    row.off()
        except _pin_errors() as exc:
            raise HardwareError(f"keypad: reading the matrix failed: {exc}") from exc
        return frozenset(down)

    def close(self) -> None:
        """Stop the scan thread and release every pin. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                logger.warning("keypad: the scan thread is still in on_edge; closing the pins")
        _close_all([*self._rows, *self._columns])

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
                down = self.scan()
            except HardwareError as exc:
                if not self._stop.is_set():  # not just close() racing a scan
                    logger.error("keypad stopped: %s", exc)
                return
            self._report(down, self._clock(), raise_errors=False)
            next_at += self._scan_interval_s
            now = time.monotonic()
            next_at = max(next_at, now)  # fell behind (a slow on_edge): skip missed scans
            if self._stop.wait(next_at - now):
                return


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
