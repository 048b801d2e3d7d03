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
    "Answered: audio flows both ways (unless the far phone holds it: ``Call.held_by_peer``)."
    HELD = "held"
    "On hold here: no audio either way until resumed (the far phone was told; it plays the hold"
    " tone). Receiver reports go on, so a dead path still ends the call."
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
    HOLD = "hold"
    "Put on hold here (by the user, or because another call was answered, dialled or resumed)."
    RESUME = "resume"
    "Taken off hold here."
    END = "end"
    "Hung up, refused, failed or timed out, at either end (the reason says which)."


LIVE_STATES = frozenset(
    {
        CallState.RESOLVING,
        CallState.DIALING,
        CallState.RINGBACK,
        CallState.INCOMING,
        CallState.ACTIVE,
        CallState.HELD,
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
    (CallState.ACTIVE, CallTrigger.HOLD): CallState.HELD,
    (CallState.ACTIVE, CallTrigger.END): CallState.ENDED,
    (CallState.HELD, CallTrigger.RESUME): CallState.ACTIVE,
    (CallState.HELD, CallTrigger.END): CallState.ENDED,
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
    TRANSFERRED = "transferred"
    "Handed on by a transfer: the far phone now talks to the transfer's target."
    REPLACED = "replaced"
    "An attended transfer replaced this call with one from the transferred phone."
    ANSWERED_ELSEWHERE = "answered_elsewhere"
    "A group call that another phone of the group answered (or that rang here in vain)."
    FORWARDED = "forwarded"
    "The callee forwarded it (a new call follows to the target), or this phone did."
    FORWARD_LOOP = "forward_loop"
    "Forwarding led back to a phone the call had already passed: not followed."
    SECURITY = "security"
    "The far phone broke its SAS commitment (a man in the middle?): the call was refused."
    TOO_MANY_CALLS = "too_many_calls"
    "Every line of this phone is in use."


TONE_AFTER = frozenset(
    {
        EndReason.SECURITY,
        EndReason.FORWARD_LOOP,
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
    held_by_peer: bool = False
    "The far phone put this call on hold: nothing is sent either way, the hold tone plays."
    hold_out_seq: int = 0
    "The next HOLD/RESUME seq this phone sends for the call."
    hold_in_seq: int | None = None
    "The seq of the newest HOLD/RESUME applied from the far phone (older ones are stale)."
    held_at: float = 0.0
    "When it was last put on hold here (``swap`` resumes the most recent)."
    sas: str | None = None
    "The call's short authentication string, once both nonces are in (protocol.md §2.6)."
    sas_nonce: bytes = b""
    "This phone's SAS nonce for the call."
    sas_peer_nonce: bytes = b""
    sas_commitment: bytes = b""
    "The callee's commitment (caller only), checked against the nonce it reveals."
    intercom: bool = False
    "The caller asked for auto-answer (an intercom call)."
    page: bool = False
    "A one-way announcement: the receiver's microphone is not sent."
    group: str | None = None
    "The group extension the call was dialled to (a ring-all or in-turn hunt group, or a page)."
    fork: bytes = b""
    "Outgoing calls of one group dial share it: the first answered ends the others."
    diverted: tuple[str, ...] = ()
    "Numbers that forwarded this call to here (oldest first)."
    referred_by: str | None = None
    "The number that transferred the far phone to us (or us to the far phone)."
    replaces: bytes | None = None
    "Attended transfer: the call this one replaces at the callee."
    transfer_target: str | None = None
    "A transfer asked of the far phone, until it reports its outcome."
    transfer_of: bytes | None = None
    "This call was placed because the far phone of that call asked for a transfer: report to it."
    transfer_replaced: bytes | None = None
    "Attended transfer at the transferor: the consultation call the target replaces."
    forwarded_to: str | None = None
    "Where the call was forwarded (the callee's choice)."
    followed_by: bytes | None = None
    "The call placed to follow a forward (a new call id)."
    key_warned: bool = False
    "The far phone's key is not the one pinned for its number, and the user was told."

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES
