"""The live calls as a person at a desk phone thinks of them: the one talking (or several, a
conference), those on hold, one being placed, one ringing (call waiting, when another is up).

``Lines`` is a snapshot taken from ``PhoneView.live_calls()`` whenever the UI decides what a
key, the hook or the screen means; it is never kept, so it cannot go stale behind the core.
"""

from dataclasses import dataclass

from peerline.proto.phone import CallInfo, CallState

PLACING = frozenset({CallState.RESOLVING, CallState.DIALING, CallState.RINGBACK})


@dataclass(frozen=True, slots=True)
class Lines:
    talking: tuple[CallInfo, ...] = ()
    "Answered and not on hold here (more than one: a conference this phone mixes)."
    held: tuple[CallInfo, ...] = ()
    "On hold here, least recently held first (the core resumes the one held last)."
    placing: tuple[CallInfo, ...] = ()
    ringing: tuple[CallInfo, ...] = ()

    @classmethod
    def of(cls, calls: list[CallInfo]) -> "Lines":
        return cls(
            talking=tuple(c for c in calls if c.state is CallState.ACTIVE),
            held=tuple(
                sorted(
                    (c for c in calls if c.state is CallState.HELD),
                    key=lambda c: c.held_at or 0.0,
                )
            ),
            placing=tuple(c for c in calls if c.state in PLACING),
            ringing=tuple(c for c in calls if c.state is CallState.INCOMING),
        )

    @property
    def any(self) -> bool:
        return bool(self.talking or self.held or self.placing or self.ringing)

    @property
    def busy(self) -> bool:
        """A call is up or being placed: one that rings now is call waiting."""
        return bool(self.talking or self.held or self.placing)

    @property
    def waiting(self) -> CallInfo | None:
        """A call ringing while another is up or being placed (call waiting)."""
        return self.ringing[0] if self.ringing and self.busy else None

    @property
    def conference(self) -> bool:
        return len(self.talking) > 1
