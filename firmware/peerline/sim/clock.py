"""Virtual time for the simulator: a float that only moves forward.

Protocol objects take ``now`` as an argument, so the simulator can hand them any clock it likes.
This one never goes backwards, which is what every ``now`` consumer (RTT estimators, replay
windows, rekey deadlines) assumes of a monotonic clock.
"""

import math

from peerline.errors import PeerlineError


class ClockError(PeerlineError, ValueError):
    """Someone tried to move virtual time backwards or to a non-finite value."""


class VirtualClock:
    """Monotonic virtual seconds, starting at ``start`` (default 0.0).

    Example::

        clock = VirtualClock()
        clock.advance_to(1.5)
        assert clock.now == 1.5
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        if not math.isfinite(start):
            raise ClockError(f"clock must start at a finite time, not {start!r}")
        self._now = float(start)

    @property
    def now(self) -> float:
        """Current virtual time in seconds."""
        return self._now

    def advance_to(self, t: float) -> None:
        """Move to ``t``; staying put is fine, going back raises ``ClockError``.

        Raising (rather than clamping) surfaces simulator bugs where an event was scheduled in
        the past instead of silently reordering history.
        """
        if not t >= self._now or t == math.inf:  # also rejects NaN
            raise ClockError(f"virtual time cannot go from {self._now!r} to {t!r}")
        self._now = t
