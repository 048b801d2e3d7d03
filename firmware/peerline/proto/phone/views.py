"""Read-only snapshots of the core's state for front ends (a call as a screen shows it).

Front ends never hold the core's own objects: a snapshot cannot be changed behind the core's
back, and stays true to the moment it was taken.
"""

from dataclasses import dataclass

from peerline.proto.call.state import Call, CallState, EndReason


@dataclass(frozen=True, slots=True, kw_only=True)
class CallInfo:
    call_id: bytes
    state: CallState
    outgoing: bool
    peer_key: bytes
    "Empty while an outgoing call still resolves its number."
    number: str | None
    name: str
    target: str
    "What was dialled (outgoing)."
    reason: EndReason | None
    detail: str
    answered: bool
    "Whether it was ever answered."

    @property
    def live(self) -> bool:
        return self.state is not CallState.ENDED

    @classmethod
    def of(cls, call: Call) -> "CallInfo":
        return cls(
            call_id=call.call_id,
            state=call.state,
            outgoing=call.outgoing,
            peer_key=call.peer_key,
            number=call.number,
            name=call.name,
            target=call.target,
            reason=call.reason,
            detail=call.detail,
            answered=call.answered_at is not None,
        )
