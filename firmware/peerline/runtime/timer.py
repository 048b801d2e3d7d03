"""One asyncio timer that follows a sans-I/O object's ``get_timer()`` deadline.

Both drivers (the UDP engine's and the LAN registry's) keep exactly one pending ``call_at`` per
object, re-armed only when the deadline changes, and never hand the object a time earlier than
the deadline it asked for.
"""

import asyncio
from collections.abc import Callable


class DeadlineTimer:
    __slots__ = ("_at", "_handle", "_loop", "_on_fire")

    def __init__(self, loop: asyncio.AbstractEventLoop, on_fire: Callable[[float], None]) -> None:
        self._loop = loop
        self._on_fire = on_fire
        self._handle: asyncio.TimerHandle | None = None
        self._at: float | None = None

    def set(self, at: float | None) -> None:
        """Fire ``on_fire(now)`` at ``at`` (None: never); a no-op if ``at`` is unchanged."""
        if at == self._at and self._handle is not None:
            return
        self.cancel()
        self._at = at
        if at is not None:
            self._handle = self._loop.call_at(at, self._fire, at)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._at = None

    def _fire(self, deadline: float) -> None:
        self._handle = None
        self._at = None
        self._on_fire(max(deadline, self._loop.time()))
