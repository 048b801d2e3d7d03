"""Calls to a LAN group extension, with no server (docs/lan.md §7).

Every member of a hunt or page group says so in its signed LAN announcement; the phone that
dials the group's extension places the calls itself:

- ring all: one call per member, all sharing a fork id; the first to answer takes the call and
  the call manager ends the others (``answered_elsewhere``);
- in turn: one member at a time, in order of their extensions, each for ``ring_s``; a member
  that is busy, declines or cannot be reached passes the call on at once; answered, the hunt
  is over; when the last member has had its turn the call ends as that member's did;
- page: one call per member with the page flag; members answer at once and only listen, and
  this phone's microphone goes to all of them (its calls are mixed as a conference).

Sans-I/O: ``GroupCalls`` is told when a leg moves (``leg_moved``) and when its timer is due, and
places or cancels legs through the two callables it is given.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from peerline.proto.call.state import Call, CallState, EndReason
from peerline.proto.lan import GroupMode, LanPeer

log = logging.getLogger(__name__)

PlaceLeg = Callable[[LanPeer, str, bytes, bool, float], Call | None]
"""(member, group extension, fork id, page?, now) -> the call placed to that member, or None
if it could not be placed (every line in use); never raises."""
CancelLeg = Callable[[bytes, float], None]
"""(call id, now): stop a leg that rang its turn out."""

MAX_HUNTS = 16
"""In-turn hunts followed at once (more than the call manager's lines could ever need)."""
_PASS_ON = frozenset(
    {
        EndReason.BUSY,
        EndReason.DECLINED,
        EndReason.NO_ANSWER,
        EndReason.UNREACHABLE,
        EndReason.FAILED,
        EndReason.INCOMPATIBLE,
        EndReason.CONNECTION_LOST,
        EndReason.FORWARDED,
        EndReason.FORWARD_LOOP,
        EndReason.SECURITY,
    }
)
"""How a member's leg may end and the hunt still go on to the next member."""


@dataclass(slots=True)
class _Hunt:
    extension: str
    fork: bytes
    waiting: list[LanPeer]
    "Members whose turn is still to come."
    leg: bytes
    "The call ringing now."
    turn_ends: float
    timed_out: bool = False
    "We cancelled the current leg ourselves (its turn was over)."
    tried: list[str] = field(default_factory=list)


class GroupCalls:
    """The group dials in progress (only in-turn hunts need following after they start)."""

    def __init__(self, *, place: PlaceLeg, cancel: CancelLeg, ring_s: float) -> None:
        self._place = place
        self._cancel = cancel
        self.ring_s = ring_s
        self._hunts: dict[bytes, _Hunt] = {}
        "fork id -> hunt"

    def dial(
        self, extension: str, mode: GroupMode, members: list[LanPeer], fork: bytes, *, now: float
    ) -> list[Call]:
        """Start a call to the group: the legs placed now (none if no line was free).
        ``members`` excludes this phone and is in hunt order; it must not be empty."""
        if not members:
            raise ValueError("a group call needs at least one member")
        if mode is GroupMode.IN_TURN:
            first, *rest = members
            leg = self._place(first, extension, fork, False, now)
            if leg is None:
                return []
            if len(self._hunts) >= MAX_HUNTS:
                self._hunts.pop(next(iter(self._hunts)))
            self._hunts[fork] = _Hunt(
                extension=extension,
                fork=fork,
                waiting=rest,
                leg=leg.call_id,
                turn_ends=now + self.ring_s,
                tried=[first.number],
            )
            return [leg]
        page = mode is GroupMode.PAGE
        legs = (self._place(member, extension, fork, page, now) for member in members)
        return [leg for leg in legs if leg is not None]

    def get_timer(self) -> float | None:
        return min((h.turn_ends for h in self._hunts.values() if not h.timed_out), default=None)

    def handle_timer(self, *, now: float) -> None:
        """Members whose turn is over stop ringing (``leg_moved`` then passes the call on)."""
        for hunt in list(self._hunts.values()):
            if not hunt.timed_out and now >= hunt.turn_ends:
                hunt.timed_out = True
                self._cancel(hunt.leg, now)

    def leg_moved(self, call: Call, *, now: float) -> None:
        """A call moved: if it is a hunt's current leg, the hunt goes on or ends."""
        hunt = self._hunts.get(call.fork) if call.fork else None
        if hunt is None or call.call_id != hunt.leg:
            return
        if call.answered_at is not None:
            del self._hunts[hunt.fork]  # answered: the hunt is over
            return
        if call.state is not CallState.ENDED:
            return
        passes_on = hunt.timed_out or call.reason in _PASS_ON
        if not passes_on or not hunt.waiting:
            del self._hunts[hunt.fork]  # the caller gave up, or every member had its turn
            return
        member = hunt.waiting.pop(0)
        log.info("group %s: %s's turn", hunt.extension, member.number)
        leg = self._place(member, hunt.extension, hunt.fork, False, now)
        if leg is None:
            del self._hunts[hunt.fork]
            return
        hunt.leg, hunt.turn_ends, hunt.timed_out = leg.call_id, now + self.ring_s, False
        hunt.tried.append(member.number)

    def hunting(self, fork: bytes) -> bool:
        """Whether the in-turn hunt with this fork id still has members to try."""
        hunt = self._hunts.get(fork)
        return hunt is not None and bool(hunt.waiting)
