"""One call's state and the facts kept about it (no behaviour: ``CallManager`` drives it)."""

import enum
from dataclasses import dataclass, field

from peerline.proto.media.session import MediaSession


class CallState(enum.StrEnum):
    DIALING = "dialing"
    "INVITE sent; the far phone has not rung yet."
    RINGBACK = "ringback"
    "The far phone rings; we hear ringback."
    INCOMING = "incoming"
    "Our phone rings."
    ACTIVE = "active"
    "Answered: audio flows both ways."
    ENDED = "ended"


LIVE_STATES = frozenset(
    {CallState.DIALING, CallState.RINGBACK, CallState.INCOMING, CallState.ACTIVE}
)


@dataclass(slots=True, eq=False)
class Call:
    call_id: bytes
    peer_key: bytes
    outgoing: bool
    state: CallState
    created_at: float
    state_since: float
    name: str = ""
    "The caller's display name from the INVITE (incoming calls)."
    answered_at: float | None = None
    ended_at: float | None = None
    reason: str = ""
    "Why it ended: 'hangup' (local), 'remote_hangup', 'busy', 'declined', 'no_answer',"
    " 'unreachable', 'connection_lost', 'incompatible', 'failed', 'cancelled'."
    media: MediaSession | None = None
    dtmf_out_seq: int = 0
    dtmf_in_next: int = 0
    dtmf_held: dict[int, tuple[str, int]] = field(default_factory=dict)
    "DTMF events that arrived ahead of a gap (signals are reliable but not ordered)."
    dtmf_received: str = ""
    "Digits received, in order (the last 32)."

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES
