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


@dataclass(frozen=True, slots=True, kw_only=True)
class CallUpdated(CallEvent):
    """Something about a call changed but not its state: ``aspect`` says what ('held_by_peer',
    'sas', 'transfer', 'transfer_failed')."""

    aspect: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRequested(CallEvent):
    """The far phone of this call asks us to call ``target`` instead (a transfer): the phone
    places that call (``place(transfer_of=...)``), and its progress goes back to the asker."""

    target: str
    replaces: bytes | None
    "Attended: the call id the target knows, which our new call replaces there."


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirected(CallEvent):
    """The callee forwarded our call to ``target``: the phone follows with a new call."""

    target: str
    reason: str
    "'always', 'busy', 'no_answer' or 'offline'."
    diverted: tuple[str, ...]
    "The numbers the call passed, for the new call's INVITE (loop detection)."
