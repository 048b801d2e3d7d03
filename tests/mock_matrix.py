"""A key matrix wired to gpiozero's MockFactory pins as a real one is: pressed keys join rows
and columns, and a column reads low only through a row driven low. For the keypad adapter's
tests and the handset's end-to-end tests (keys pressed "on the pins")."""

import threading
from collections.abc import Sequence
from typing import Any

from gpiozero.exc import PinInvalidFunction
from gpiozero.pins.mock import MockFactory, MockPin

Rows = tuple[str, ...]
"""What each row does: ``"in"`` (an input: high-impedance), ``"low"`` or ``"high"`` (output)."""


class Matrix:
    """A key matrix on gpiozero's mock pins, wired as a real one.

    A pressed key joins its row to its column; lines joined through pressed keys (directly,
    or through other keys and lines) form one net. A net holding a row that is an output
    driving low is low, so its columns read low; any other net floats up to the columns'
    pull-ups (a row that is an input is high-impedance). ``log`` holds what the rows do after
    every change (consecutive repeats dropped), ``shorts`` each moment a net joined a row
    driven high to a row driven low: two outputs fighting through the keypad.
    """

    def __init__(
        self,
        factory: MockFactory,
        *,
        rows: Sequence[int],
        columns: Sequence[int],
        layout: Sequence[Sequence[str]],
    ) -> None:
        self._lock = threading.RLock()
        self.layout = [list(row) for row in layout]
        self._row_count = len(rows)
        self.pressed: set[str] = set()
        self.log: list[Rows] = []
        self.shorts: list[tuple[Rows, frozenset[str]]] = []
        self.columns: list[MockPin] = [factory.pin(n) for n in columns]
        self.rows: list[RowPin] = [factory.pin(n, pin_class=RowPin, matrix=self) for n in rows]

    def press(self, *keys: str) -> None:
        with self._lock:
            self.pressed.update(keys)
            self.update()

    def release(self, *keys: str) -> None:
        with self._lock:
            self.pressed.difference_update(keys)
            self.update()

    def now(self) -> Rows:
        """What the rows do now."""
        return tuple(_row_mode(row) for row in self.rows)

    def update(self) -> None:
        """Recompute every column's level (called on every row change and key change)."""
        with self._lock:
            if len(getattr(self, "rows", [])) < self._row_count:
                return  # still building the rows
            modes = self.now()
            if not self.log or self.log[-1] != modes:
                self.log.append(modes)
            for c, column in enumerate(self.columns):
                levels = {modes[r] for r in self._net_rows(c)}
                if {"low", "high"} <= levels:
                    self.shorts.append((modes, frozenset(self.pressed)))
                if column.function != "input":
                    continue
                if "low" in levels:
                    column.drive_low()
                elif "high" in levels or column.pull == "up":
                    column.drive_high()

    def _net_rows(self, column: int) -> set[int]:
        """The rows in one net with ``column``."""
        rows: set[int] = set()
        columns = {column}
        while True:
            more_rows = {
                r
                for r, labels in enumerate(self.layout)
                for c in columns
                if labels[c] in self.pressed
            }
            more_columns = columns | {
                c
                for r in more_rows
                for c, label in enumerate(self.layout[r])
                if label in self.pressed
            }
            if (more_rows, more_columns) == (rows, columns):
                return rows
            rows, columns = more_rows, more_columns


def _row_mode(pin: MockPin) -> str:
    if pin.function == "input":
        return "in"
    return "high" if pin.state else "low"


class RowPin(MockPin):
    """A mock row pin that tells its ``Matrix`` whenever its function or level changes, and
    that fails (as a real pin can) once ``fail`` is set."""

    def __init__(self, factory: MockFactory, info: Any, matrix: Matrix | None = None) -> None:
        self.matrix = matrix
        self.fail = False
        super().__init__(factory, info)

    def _set_function(self, value: str) -> None:
        if self.fail:
            raise PinInvalidFunction(f"{self!r} stopped answering")
        super()._set_function(value)
        if self.matrix is not None:
            self.matrix.update()

    def _change_state(self, value: bool) -> bool:
        changed: bool = super()._change_state(value)
        if self.matrix is not None:
            self.matrix.update()
        return changed
