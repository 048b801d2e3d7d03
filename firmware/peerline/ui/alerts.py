"""Security alerts the owner must acknowledge: a contact's number reached from a key other
than the one pinned for it (``KeyChanged``: a reset phone, or an impostor).

Never silent and never lost: an alert covers whatever the screen shows, survives the views
beneath it coming and going (a call ending, the display sleeping), and goes only when the owner
presses the key that says they have read it. Alerts queue, oldest first.
"""

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyAlert:
    call_id: bytes
    number: str
    contact: str | None
    "The contact's name: who the owner would believe is calling."
    seen: str
    "The first hex digits of the key the call came from (not the one pinned)."


class Alerts:
    """The alerts not yet acknowledged."""

    def __init__(self) -> None:
        self._queue: deque[KeyAlert] = deque()

    def push(self, alert: KeyAlert) -> None:
        if all(a.call_id != alert.call_id for a in self._queue):
            self._queue.append(alert)

    @property
    def top(self) -> KeyAlert | None:
        """The alert on screen, or None."""
        return self._queue[0] if self._queue else None

    def acknowledge(self) -> KeyAlert | None:
        """The owner read the alert on screen: it goes (and is returned)."""
        return self._queue.popleft() if self._queue else None

    def __len__(self) -> int:
        return len(self._queue)
