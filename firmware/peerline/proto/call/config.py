"""What call control is told and what it counts: its tunables (``CallConfig``), where calls are
forwarded (``Forwarding``), its counters, its command error, and the ports it is given (a codec
factory, the SAS function). Plain data, shared by the call manager and the phone core."""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from peerline.errors import LocalProtocolError
from peerline.ports import AudioDecoder, AudioEncoder
from peerline.proto.media.session import MediaConfig

CodecFactory = Callable[[int], tuple[AudioEncoder, AudioDecoder]]
"""Sample rate -> a fresh (encoder, decoder) pair for one call (the Opus adapter in the phone)."""
SasFunction = Callable[[bytes, bytes, bytes, bytes], str | None]
"""(peer key, call id, caller's nonce, callee's nonce) -> the call's SAS (protocol.md §2.6), or
None when no session with the peer is current. The phone core binds it to the node's
connection hash."""

VOLUME_LEVELS = 10
"""Speaker volume runs 0..VOLUME_LEVELS; ``DEFAULT_VOLUME`` plays at unity gain."""
DEFAULT_VOLUME = 7
SUPPORTED_RATES_KHZ = (16,)
"""Wideband: what the phone's audio runs at (48 kHz is defined on the wire for later)."""
MAX_DIVERSIONS = 5
"""A call forwarded this many times is not forwarded again (with the loop check, it bounds
every forwarding chain)."""


class CallError(LocalProtocolError):
    """A command that cannot be carried out now; ``code`` says why (control API error code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True, kw_only=True)
class Forwarding:
    """Where calls go instead of ringing here (numbers; None: not forwarded that way)."""

    always: str | None = None
    "Every call, at once (the phone does not ring)."
    busy: str | None = None
    "Calls that would be refused busy (a call waiting already, or do not disturb)."
    no_answer: str | None = None
    "Calls not answered within ``no_answer_s``."
    no_answer_s: float = 20.0
    offline: str | None = None
    "Published in the directory record: callers that cannot reach this phone call it instead."

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallConfig:
    region: str = "us"
    "Tone plan (``peerline.proto.media.tones``)."
    sample_rate: int = 16_000
    name: str = ""
    "Display name sent in INVITEs."
    auto_answer: bool = False
    "Answer every call at once while no other call is up (a hotline handset or a kiosk)."
    call_waiting: bool = True
    "A caller rings (with the call-waiting beep) while a call is up; off: it hears busy."
    max_calls: int = 10
    "Calls up at once (talking, held, ringing, being placed): a conference of up to nine legs."
    accept_pages: bool = True
    "Pages (one-way announcements from a LAN group) are played at once, microphone not sent."
    resolve_timeout_s: float = 35.0
    "A placed call whose number is not found by then fails ('lookup_timeout'): two lookups of"
    " at most 15 s each, and slack."
    dial_timeout_s: float = 30.0
    "An INVITE that rings nothing by then: the call fails ('unreachable')."
    ring_timeout_s: float = 60.0
    "A ringing call nobody answers by then ends ('no_answer')."
    media_quiet_s: float = 2.5
    "A talking call that hears nothing this long reports ``MediaQuiet`` (its path may be dead:"
    " a relay gone). Receiver reports come every second even in silence: two missed, and slack."
    media_timeout_s: float = 20.0
    "A call that hears nothing (no media, no report) this long ends ('connection_lost')."
    end_tone_s: float = 3.0
    "How long busy or congestion plays after a failed outgoing call."
    tone_level_dbfs: float = -16.0
    ended_kept: int = 16
    "Ended calls kept for status and so that late messages for them are ignored."
    media: MediaConfig = field(default_factory=MediaConfig)


@dataclass(slots=True)
class CallCounters:
    calls_placed: int = 0
    calls_received: int = 0
    calls_answered: int = 0
    calls_busy: int = 0
    "INVITEs refused because the lines were in use (or do not disturb)."
    calls_forwarded: int = 0
    "INVITEs this phone forwarded elsewhere."
    forward_loops: int = 0
    "Forwards not followed because they led back into the chain."
    sas_failures: int = 0
    "Calls refused because the callee's nonce did not match its commitment."
    glare: int = 0
    "Crossed INVITEs resolved by call id."
    signals_malformed: int = 0
    signals_unknown: int = 0
    signals_ignored: int = 0
    "Well-formed signals for no call of ours, from the wrong peer, or out of place."
    media_without_call: int = 0
    media_on_hold: int = 0
    "Media that arrived for a call on hold (in flight when it was held): dropped."
    dtmf_sent: int = 0
    dtmf_received: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
