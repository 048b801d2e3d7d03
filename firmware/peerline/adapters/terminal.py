"""The emulator's keypad and hook switch: a terminal's keyboard.

A terminal sends characters, not key edges: there is no "key up", and a held key repeats. So
each key read is played as a press, a down edge and, ``press_s`` later, an up edge (then as
long with the key up, so that a key typed twice is two presses), through the
same ``KeyInput`` port as the GPIO keypad; the UI's ``KeyMachine`` then treats it exactly as a
real key. A long press is asked for with Alt (the terminal sends ESC before the key) and is
played held for ``long_s``.

Keys (``KEYS_HELP``):

- ``0``-``9``, ``*``, ``#``: the keypad; ``a``-``d`` (either case): the soft keys A-D of a 4x4
  pad; the arrow keys: up C, down D, left B (back), right A (select).
- Backspace: ``*`` (delete while dialling).
- Enter or space: the hook switch (lift, hang up); ``h`` too.
- Alt+key: a long press of that key (Alt+0 shows my number, Alt+# hangs up...).

The input stays in "cbreak" mode while it runs (keys arrive one by one, unechoed; Ctrl-C still
interrupts), and the terminal's settings are put back at ``close``. Without a terminal
(``fd`` not a TTY, as under tests) characters are read all the same.
"""

import contextlib
import logging
import os
import select
import termios
import threading
import time
import tty
from collections.abc import Callable
from typing import Any, Final

from peerline.errors import LocalProtocolError
from peerline.ports import HookEdgeCallback, HookInput, KeyEdgeCallback, KeyInput

log = logging.getLogger(__name__)

KEYS_HELP: Final = (
    "keys: 0-9 * #  |  Enter: hook  |  Alt+key: long press  |  arrows/a-d: soft keys  |  "
    "Ctrl-C: quit"
)
PRESS_S: Final = 0.08
"""A short press lasts this long (over the UI's 20 ms debounce)."""
LONG_S: Final = 1.1
"""An Alt+key press is held this long (over the UI's 0.8 s long press)."""
ESC_WAIT_S: Final = 0.05
"""After ESC, how long to wait for the rest of an escape sequence (Alt+key, an arrow)."""
POLL_S: Final = 0.2
"""How often the reader looks at its stop flag while no key comes."""

_PLAIN = {c: c for c in "0123456789*#"} | {c: c.upper() for c in "abcdABCD"} | {"\x7f": "*"}
_ARROWS = {"A": "C", "B": "D", "C": "A", "D": "B"}  # ESC [ A..D: up, down, right, left
_HOOK = {"\r", "\n", " ", "h", "H"}


def parse_keys(text: str) -> list[tuple[str, bool]]:
    """What ``text`` (a burst of characters read at once) asks for, in order: ``(key, long)``
    pairs, and ``("hook", False)`` for a hook toggle. Anything else is ignored."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(text):
        c = text[i]
        i += 1
        if c in _HOOK:
            out.append(("hook", False))
        elif c in _PLAIN:
            out.append((_PLAIN[c], False))
        elif c == "\x1b" and i < len(text):
            nxt = text[i]
            i += 1
            if nxt in "[O" and i < len(text):
                arrow = _ARROWS.get(text[i])
                i += 1
                if arrow is not None:
                    out.append((arrow, False))
            elif nxt in _PLAIN:
                out.append((_PLAIN[nxt], True))
            elif nxt in _HOOK:
                out.append(("hook", False))
    return out


class TerminalInput:
    """Keys and the hook from a terminal (``fd``, usually 0). ``keys`` and ``hook`` are the
    two ports; the reader thread starts with the first ``start`` and stops at ``close``."""

    def __init__(
        self,
        fd: int,
        *,
        press_s: float = PRESS_S,
        long_s: float = LONG_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fd = fd
        self._press_s = press_s
        self._long_s = long_s
        self._clock = clock
        self._on_key: KeyEdgeCallback | None = None
        self._on_hook: HookEdgeCallback | None = None
        self._off_hook = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved: list[Any] | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.keys: KeyInput = _Keys(self)
        self.hook: HookInput = _Hook(self)

    def start_keys(self, on_edge: KeyEdgeCallback) -> None:
        """``keys.start``: report key edges to ``on_edge``."""
        self._on_key = on_edge
        self._start()

    def start_hook(self, on_edge: HookEdgeCallback) -> None:
        """``hook.start``: report the hook (on hook now, then each toggle) to ``on_edge``."""
        self._on_hook = on_edge
        on_edge(self._off_hook, self._clock())
        self._start()

    def _start(self) -> None:
        with self._lock:
            if self._closed:
                raise LocalProtocolError("terminal input is closed")
            if self._thread is not None:
                return
            if os.isatty(self._fd):
                self._saved = termios.tcgetattr(self._fd)
                tty.setcbreak(self._fd)
            self._thread = threading.Thread(target=self._run, name="peerline-keys", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop reading and give the terminal its settings back. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._long_s + 2 * POLL_S)
        if self._saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)

    def _read(self) -> str | None:
        """The characters typed, once some are there; None at end of input or on stop."""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], POLL_S)
            if not ready:
                continue
            data = os.read(self._fd, 64)
            if not data:
                return None
            if data.endswith(b"\x1b"):  # the rest of an escape sequence may be on its way
                more, _, _ = select.select([self._fd], [], [], ESC_WAIT_S)
                if more:
                    data += os.read(self._fd, 64)
            return data.decode("utf-8", "replace")
        return None

    def _run(self) -> None:
        try:
            while (text := self._read()) is not None:
                for key, long in parse_keys(text):
                    if self._stop.is_set():
                        return
                    if key == "hook":
                        self._toggle_hook()
                    else:
                        self._press(key, long)
        except OSError as exc:
            log.warning("terminal keys stopped: %s", exc)

    def _press(self, key: str, long: bool) -> None:
        on_key = self._on_key
        if on_key is None:
            return
        on_key(key, True, self._clock())
        self._stop.wait(self._long_s if long else self._press_s)
        on_key(key, False, self._clock())
        self._stop.wait(self._press_s)  # let go for as long: "55" is two presses, not a bounce

    def _toggle_hook(self) -> None:
        self._off_hook = not self._off_hook
        if self._on_hook is not None:
            self._on_hook(self._off_hook, self._clock())


class _Keys:
    def __init__(self, owner: TerminalInput) -> None:
        self._owner = owner

    def start(self, on_edge: KeyEdgeCallback) -> None:
        self._owner.start_keys(on_edge)

    def close(self) -> None:
        self._owner.close()


class _Hook:
    def __init__(self, owner: TerminalInput) -> None:
        self._owner = owner

    def start(self, on_edge: HookEdgeCallback) -> None:
        self._owner.start_hook(on_edge)

    def close(self) -> None:
        self._owner.close()
