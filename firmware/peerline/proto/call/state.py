"""One call's states, what moves it between them, and why it ends: data, no behaviour.

The transitions are a table (``TRANSITIONS``), as h11 keeps its connection states: every state
change ``CallManager`` makes goes through ``next_state``, and a pair missing from the table is a
bug that raises ``LocalProtocolError``. ``scripts/diagrams`` draws the table into
docs/state-machines.md, and a test fails when the drawing and the table differ.
"""

import enum
from dataclasses import dataclass, field

from peerline.errors import LocalProtocolError
from peerline.proto.media.session import MediaSession


class CallState(enum.StrEnum):
    RESOLVING = "resolving"
    "Placed here: finding the number (directory, LAN) and opening the secure session."
    DIALING = "dialing"
    "INVITE sent; the far phone has not rung yet."
    RINGBACK = "ringback"
    "The far phone rings; we hear ringback."
    INCOMING = "incoming"
    "Our phone rings."
    ACTIVE = "active"
    "Answered: audio flows both ways."
    ENDED = "ended"


class CallTrigger(enum.StrEnum):
    """What happened to a call: the second key of ``TRANSITIONS``."""

    PLACE = "place"
    "The user dialled: a call exists before the number is found."
    INVITE = "invite"
    "The session is up: our INVITE goes out."
    INVITED = "invited"
    "A peer's INVITE arrived."
    RINGING = "ringing"
    "The far phone says it rings."
    ANSWERED = "answered"
    "The far phone answered (or this one did, or a glare settled it)."
    END = "end"
    "Hung up, refused, failed or timed out, at either end (the reason says which)."


LIVE_STATES = frozenset(
    {
        CallState.RESOLVING,
        CallState.DIALING,
        CallState.RINGBACK,
        CallState.INCOMING,
        CallState.ACTIVE,
    }
)

_NEW = None
"""The 'state' of a call that does not exist yet (the first key of a creating transition)."""

TRANSITIONS: dict[tuple[CallState | None, CallTrigger], CallState] = {
    (_NEW, CallTrigger.PLACE): CallState.RESOLVING,
    (_NEW, CallTrigger.INVITED): CallState.INCOMING,
    (_NEW, CallTrigger.END): CallState.ENDED,
    (CallState.RESOLVING, CallTrigger.INVITE): CallState.DIALING,
    (CallState.RESOLVING, CallTrigger.END): CallState.ENDED,
    (CallState.DIALING, CallTrigger.RINGING): CallState.RINGBACK,
    (CallState.DIALING, CallTrigger.ANSWERED): CallState.ACTIVE,
    (CallState.DIALING, CallTrigger.END): CallState.ENDED,
    (CallState.RINGBACK, CallTrigger.ANSWERED): CallState.ACTIVE,
    (CallState.RINGBACK, CallTrigger.END): CallState.ENDED,
    (CallState.INCOMING, CallTrigger.ANSWERED): CallState.ACTIVE,
    (CallState.INCOMING, CallTrigger.END): CallState.ENDED,
    (CallState.ACTIVE, CallTrigger.END): CallState.ENDED,
}
"""(state, trigger) -> the next state. ``None`` as state: the call is being created (a call
refused as it arrives, busy here or incompatible, goes straight to ``ENDED``)."""


def next_state(state: CallState | None, trigger: CallTrigger) -> CallState:
    """The state ``trigger`` leads to from ``state``; LocalProtocolError if it may not happen."""
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        raise LocalProtocolError(f"a call may not go {trigger} from {state}") from None


class EndReason(enum.StrEnum):
    """Why a call ended: one closed list for the code, the control API and the docs."""

    HANGUP = "hangup"
    "Hung up here after it was answered."
    REMOTE_HANGUP = "remote_hangup"
    CANCELLED = "cancelled"
    "The caller gave up before an answer (here, or the far phone while it rang here)."
    DECLINED = "declined"
    "The callee refused."
    DECLINED_HERE = "declined_here"
    BUSY = "busy"
    "The callee was in a call."
    BUSY_HERE = "busy_here"
    "A caller refused because this phone was in a call."
    DO_NOT_DISTURB = "do_not_disturb"
    "A caller refused (busy) because do not disturb was on here."
    NO_ANSWER = "no_answer"
    MISSED = "missed"
    "Rang here, unanswered."
    UNREACHABLE = "unreachable"
    "No session or no answer to the INVITE: the far phone is off or cut off."
    CONNECTION_LOST = "connection_lost"
    "Nothing heard (no media, no report) for the media timeout."
    INCOMPATIBLE = "incompatible"
    FAILED = "failed"
    GLARE = "glare"
    "Both phones dialled each other at once and the other call survived (it is live now)."
    UNKNOWN_NUMBER = "unknown_number"
    "Not a stored peer, not found in the directory, or no record with the chosen key."
    NUMBER_CONFLICT = "number_conflict"
    "Several keys hold the number and none was chosen: never picked silently."
    UNKNOWN_EXTENSION = "unknown_extension"
    BAD_RECORD = "bad_record"
    "The directory record's key cannot be used."
    LOOKUP_BUSY = "lookup_busy"
    "Too many directory lookups running."
    LOOKUP_TIMEOUT = "lookup_timeout"


TONE_AFTER = frozenset(
    {
        EndReason.BUSY,
        EndReason.DECLINED,
        EndReason.UNREACHABLE,
        EndReason.FAILED,
        EndReason.INCOMPATIBLE,
        EndReason.CONNECTION_LOST,
    }
)
"""Reasons after which an outgoing call plays busy or congestion for a few seconds."""


@dataclass(slots=True, eq=False)
class Call:
    call_id: bytes
    peer_key: bytes
    "The far phone's key; empty while an outgoing call is still resolving its number."
    outgoing: bool
    state: CallState
    created_at: float
    state_since: float
    name: str = ""
    "The caller's display name from the INVITE (incoming calls)."
    number: str | None = None
    "The far phone's number: the one dialled, or the caller's once derived from its key."
    target: str = ""
    "What the user dialled (a number or a LAN extension); empty for incoming calls."
    connect_by: float | None = None
    "A resolving call whose number was found: the session must be up by then."
    answered_at: float | None = None
    ended_at: float | None = None
    reason: EndReason | None = None
    "Why it ended (``CallState.ENDED`` only)."
    detail: str = ""
    "A sentence for people about the reason (e.g. which keys conflict), or empty."
    media: MediaSession | None = None
    dtmf_out_seq: int = 0
    dtmf_in_next: int = 0
    dtmf_held: dict[int, tuple[str, int]] = field(default_factory=dict)
    "DTMF events that arrived ahead of a gap (signals are reliable but not ordered)."
    dtmf_received: str = ""
    "Digits received, in order (the last 32)."
    quiet_since: float | None = None
    "The last time heard when a silence was reported (``MediaQuiet``): one report per silence."

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES
