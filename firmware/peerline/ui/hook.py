"""The hook switch as a person means it: off hook, on hook, and a hook flash.

The switch bounces like any contact, and a quick press of the cradle (a *flash*, 0.1-0.6 s) is
how desk phones have long asked for a second line (call waiting, hold, transfer) without a
button. ``HookMachine`` turns raw edges (``peerline.ports.HookInput``) into ``HookEvent``s, as a
pure machine fed with times:

- **Debounce**: a position counts once it has held for ``debounce_s`` (30 ms).
- **Off hook** at once.
- **On hook** only once the handset has stayed down ``flash_max_s`` (0.6 s): a shorter visit
  to the cradle, at least ``flash_min_s`` (0.1 s) long, is a **flash**; a shorter one still is
  ignored (a knock). So hanging up is reported 0.6 s after the handset goes down.

Inputs: ``start(off_hook, now=...)``, ``edge(off_hook, now=...)``, ``handle_timer(now=...)``.
Outputs: ``next_event()``, ``get_timer()``, ``off_hook``.
"""

from collections import deque
from dataclasses import dataclass
from enum import Enum


class HookKind(Enum):
    OFF_HOOK = "off_hook"
    ON_HOOK = "on_hook"
    FLASH = "flash"


@dataclass(frozen=True, slots=True, kw_only=True)
class HookEvent:
    kind: HookKind
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class HookTiming:
    debounce_s: float = 0.03
    flash_min_s: float = 0.1
    flash_max_s: float = 0.6

    def __post_init__(self) -> None:
        if not 0 < self.debounce_s < self.flash_min_s < self.flash_max_s:
            raise ValueError("need 0 < debounce_s < flash_min_s < flash_max_s")


class HookMachine:
    """See the module docstring."""

    def __init__(self, timing: HookTiming | None = None) -> None:
        self.timing = timing or HookTiming()
        self._raw = False
        self._stable = False
        "Debounced position: True while off hook."
        self._settle_at: float | None = None
        self._down_at: float | None = None
        "When the handset went down (debounced), while a flash is still possible."
        self._reported_off = False
        "What was last reported: off hook (True) or on hook (False)."
        self._events: deque[HookEvent] = deque()

    @property
    def off_hook(self) -> bool:
        """The position last reported (a flash in progress still counts as off hook)."""
        return self._reported_off

    def start(self, off_hook: bool, *, now: float) -> None:
        """The position at start: reported as is, no debounce (nothing bounced yet)."""
        self._raw = self._stable = self._reported_off = off_hook
        self._events.append(
            HookEvent(kind=HookKind.OFF_HOOK if off_hook else HookKind.ON_HOOK, at=now)
        )

    def edge(self, off_hook: bool, *, now: float) -> None:
        """A raw edge. Then: ``get_timer``."""
        if off_hook == self._raw:
            return
        self._raw = off_hook
        self._settle_at = now + self.timing.debounce_s if off_hook != self._stable else None

    def get_timer(self) -> float | None:
        times = [self._settle_at]
        if self._down_at is not None:
            times.append(self._down_at + self.timing.flash_max_s)
        return min((t for t in times if t is not None), default=None)

    def handle_timer(self, *, now: float) -> None:
        timing = self.timing
        if self._settle_at is not None and now >= self._settle_at:
            at = self._settle_at
            self._settle_at = None
            self._stable = self._raw
            if self._stable:
                self._lifted(at)
            else:
                self._down_at = at  # on hook or a flash: the next edge or the timer tells
        if self._down_at is not None and now >= self._down_at + timing.flash_max_s:
            at = self._down_at + timing.flash_max_s
            self._down_at = None
            if self._reported_off:
                self._reported_off = False
                self._events.append(HookEvent(kind=HookKind.ON_HOOK, at=at))

    def next_event(self) -> HookEvent | None:
        return self._events.popleft() if self._events else None

    def _lifted(self, at: float) -> None:
        down_at, self._down_at = self._down_at, None
        if not self._reported_off:
            self._reported_off = True
            self._events.append(HookEvent(kind=HookKind.OFF_HOOK, at=at))
        elif down_at is not None and at - down_at >= self.timing.flash_min_s:
            self._events.append(HookEvent(kind=HookKind.FLASH, at=at))
        # shorter: a knock on the cradle, ignored
