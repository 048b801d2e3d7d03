"""Keys as a person means them: debounced presses, long presses and repeats, from raw edges.

A keypad's contacts bounce for a few milliseconds, and a desk phone gives some keys a second
meaning when held (speed dial, a menu). ``KeyMachine`` turns the raw edges an adapter reports
(``peerline.ports.KeyInput``) into ``KeyEvent``s, as a pure machine fed with times: no threads,
no sleeping, so every timing is tested exactly (gpiozero's hold and debounce run in threads on
the wall clock; style.md says why not here).

- **Debounce**: a key's state counts once it has held for ``debounce_s`` (20 ms).
- **Press** at the debounced press, **release** at the debounced release.
- **Long** press once the key has been held ``hold_s`` (0.8 s); then, for keys in
  ``repeat_keys`` (2, 8 and A-D: the keys that move in lists), a **repeat** every
  ``repeat_s`` (0.15 s).
- **Stuck**: a key held longer than ``stuck_s`` (10 s) repeats no more and is reported once
  as ``stuck``; it must be released before it counts again. A stuck key never floods.

Inputs: ``edge(key, down, now=...)``, ``handle_timer(now=...)``. Outputs: ``next_event()``,
``get_timer()``.
"""

from collections import deque
from dataclasses import dataclass
from enum import Enum

KEYS = frozenset("0123456789*#ABCD")


class KeyKind(Enum):
    PRESS = "press"
    LONG = "long"
    REPEAT = "repeat"
    RELEASE = "release"
    STUCK = "stuck"


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyEvent:
    key: str
    kind: KeyKind
    at: float
    "When it happened (the debounced edge, or the hold/repeat deadline)."


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyTiming:
    debounce_s: float = 0.02
    hold_s: float = 0.8
    "How long a key is held before it counts as a long press."
    repeat_s: float = 0.15
    stuck_s: float = 10.0
    repeat_keys: frozenset[str] = frozenset("28ABCD")
    "Keys that repeat while held: those that move in lists (2, 8, the soft keys)."

    def __post_init__(self) -> None:
        if not 0 < self.debounce_s < self.hold_s < self.stuck_s or self.repeat_s <= 0:
            raise ValueError("need 0 < debounce_s < hold_s < stuck_s and repeat_s > 0")


@dataclass(slots=True)
class _Key:
    raw: bool = False
    raw_at: float = 0.0
    down: bool = False
    "The debounced state."
    settle_at: float | None = None
    "When a raw change that differs from ``down`` becomes the debounced state."
    next_at: float | None = None
    "When the held key's next long press / repeat is due."
    long_sent: bool = False
    stuck: bool = False
    down_at: float = 0.0


class KeyMachine:
    """See the module docstring. Keys are labels (``KEYS``); others are ignored."""

    def __init__(self, timing: KeyTiming | None = None) -> None:
        self.timing = timing or KeyTiming()
        self._keys: dict[str, _Key] = {}
        self._events: deque[KeyEvent] = deque()
        self.ignored = 0
        "Edges of keys that are not keys (a miswired pin map) and edges while stuck."

    def edge(self, key: str, down: bool, *, now: float) -> None:
        """A raw edge from the keypad. Then: ``get_timer``."""
        if key not in KEYS:
            self.ignored += 1
            return
        state = self._keys.setdefault(key, _Key())
        if down == state.raw:
            return
        state.raw, state.raw_at = down, now
        state.settle_at = now + self.timing.debounce_s if down != state.down else None

    def get_timer(self) -> float | None:
        times = [t for k in self._keys.values() for t in (k.settle_at, k.next_at) if t is not None]
        return min(times, default=None)

    def handle_timer(self, *, now: float) -> None:
        timing = self.timing
        for key in sorted(self._keys):
            state = self._keys[key]
            if state.settle_at is not None and now >= state.settle_at:
                at = state.settle_at
                state.settle_at = None
                self._settle(key, state, at)
            while state.next_at is not None and now >= state.next_at:
                at = state.next_at
                if at - state.down_at >= timing.stuck_s:
                    state.stuck = True
                    state.next_at = None
                    self._events.append(KeyEvent(key=key, kind=KeyKind.STUCK, at=at))
                elif not state.long_sent:
                    state.long_sent = True
                    self._events.append(KeyEvent(key=key, kind=KeyKind.LONG, at=at))
                    state.next_at = self._after(key, state, at)
                else:
                    self._events.append(KeyEvent(key=key, kind=KeyKind.REPEAT, at=at))
                    state.next_at = self._after(key, state, at)

    def next_event(self) -> KeyEvent | None:
        return self._events.popleft() if self._events else None

    def held(self) -> list[str]:
        """Keys down now (debounced), stuck ones included."""
        return sorted(k for k, s in self._keys.items() if s.down)

    def _settle(self, key: str, state: _Key, at: float) -> None:
        state.down = state.raw
        if state.down:
            state.down_at = at
            state.long_sent = False
            state.stuck = False
            state.next_at = at + self.timing.hold_s
            self._events.append(KeyEvent(key=key, kind=KeyKind.PRESS, at=at))
        else:
            state.next_at = None
            if state.stuck:
                self.ignored += 1  # its release ends the stuck state quietly
                state.stuck = False
                return
            self._events.append(KeyEvent(key=key, kind=KeyKind.RELEASE, at=at))

    def _after(self, key: str, state: _Key, at: float) -> float:
        """The next repeat (or, for a key that does not repeat, when it counts as stuck)."""
        stuck_at = state.down_at + self.timing.stuck_s
        if key in self.timing.repeat_keys:
            return min(at + self.timing.repeat_s, stuck_at)
        return stuck_at
