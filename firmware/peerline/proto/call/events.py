"""Events ``CallManager.next_event()`` hands out: small, immutable, past tense."""

from dataclasses import dataclass

from .state import CallState


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent:
    call_id: bytes
    peer_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStateChanged(CallEvent):
    state: CallState
    reason: str = ""
    "Why the call ended (``CallState.ENDED`` only): e.g. 'hangup', 'busy', 'unreachable'."


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(CallEvent):
    digit: str
    duration_ms: int
