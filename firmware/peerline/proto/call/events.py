"""Events ``CallManager.next_event()`` hands out: small, immutable, past tense."""

from dataclasses import dataclass

from .state import CallState, EndReason


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent:
    call_id: bytes
    peer_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStateChanged(CallEvent):
    state: CallState
    reason: EndReason | None = None
    "Why the call ended (``CallState.ENDED`` only)."
    detail: str = ""
    "A sentence for people about the reason, or empty."


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(CallEvent):
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaQuiet(CallEvent):
    """A talking call has heard nothing from its peer for ``media_quiet_s``: its path may be
    dead (a relay gone, a NAT rebound). Once per silence; the call goes on."""
