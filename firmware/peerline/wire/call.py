"""Call signalling and receiver reports: the bodies of SIGNAL (0x12) and MEDIA_REPORT (0x21)
frames (docs/protocol.md §6.7, §6.8).

A SIGNAL frame carries one call-control message, delivered reliably by the session (it is
acknowledged with MESSAGE_ACK and retransmitted like a text message, but not ordered: every
message names its call, and the state machine tolerates reordering). Its body is::

    message_id (16) | kind (u8) | call_id (8) | fields of that kind

Kinds and their fields (integers big-endian):

    0x01 INVITE    codec (u8, 1 = Opus) | rate_khz (u8: 16 or 48) | max_kbps (u16, 8..510)
                   | name (u8 length, 0..64 bytes of UTF-8: the caller's display name)
    0x02 RINGING   (none)  the callee's phone is ringing
    0x03 ANSWER    codec (u8) | rate_khz (u8): what the callee will send and expects
    0x04 HANGUP    reason (u8, ``HangupReason``): ends, declines or cancels the call
    0x05 DTMF      seq (u16, per call, from 0) | digit (u8: ASCII of 0-9 * # A-D)
                   | duration_ms (u16, 40..2000)

Unknown kinds are skipped (counted), so later versions can add hold, transfer and conference
messages. A MEDIA_REPORT frame (sent about once a second by each end of a call, never
retransmitted) is a receiver report, as RFC 3550's, for the stream the reporter receives::

    highest_seq (u16) | lost_total (u32) | fraction_lost (u8, /256 since the last report)
    | jitter (u32, 48 kHz units, RFC 3550 §6.4.1) | playout_ms (u16: the jitter buffer's delay)
    | report_ts (u32, ms on the reporter's clock) | echo_ts (u32: the last report_ts received)
    | echo_delay_ms (u32: how long ago that report arrived; 0 and echo_ts 0 when none yet)

The reporter's peer computes the round-trip time as ``now - echo_ts - echo_delay_ms`` on its own
clock (RFC 3550 §6.4.1's LSR/DLSR): clocks need not agree.
"""

import enum
from dataclasses import dataclass

from peerline.errors import DecodeError

from .buffer import Buffer

CALL_ID_SIZE = 8
MAX_NAME_BYTES = 64
DTMF_DIGITS = "0123456789*#ABCD"
MIN_DTMF_MS = 40
MAX_DTMF_MS = 2000
REPORT_SIZE = 2 + 4 + 1 + 4 + 2 + 4 + 4 + 4
SAMPLE_RATES_KHZ = (16, 48)


class SignalKind(enum.IntEnum):
    INVITE = 0x01
    RINGING = 0x02
    ANSWER = 0x03
    HANGUP = 0x04
    DTMF = 0x05


class HangupReason(enum.IntEnum):
    """Why a call ended, as the far end is told (and the local phone shows)."""

    NORMAL = 0
    "Hung up after talking (or the caller gave up before an answer: cancelled)."
    BUSY = 1
    "Already in a call."
    DECLINED = 2
    "The callee rejected the call."
    NO_ANSWER = 3
    "Nobody answered in time."
    INCOMPATIBLE = 4
    "No codec in common."
    FAILED = 5
    "Something else went wrong (the phone's audio, a protocol error)."


@dataclass(frozen=True, slots=True, kw_only=True)
class Invite:
    call_id: bytes
    codec: int = 1
    rate_khz: int = 16
    max_kbps: int = 64
    name: str = ""

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)
        if not 0 <= self.codec <= 255 or not 0 <= self.rate_khz <= 255:
            raise ValueError("codec and rate_khz are one byte each")
        if not 8 <= self.max_kbps <= 510:
            raise ValueError("max_kbps must be 8..510")
        if len(self.name.encode("utf-8")) > MAX_NAME_BYTES:
            raise ValueError(f"name exceeds {MAX_NAME_BYTES} UTF-8 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ringing:
    call_id: bytes

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    call_id: bytes
    codec: int = 1
    rate_khz: int = 16

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)
        if not 0 <= self.codec <= 255 or not 0 <= self.rate_khz <= 255:
            raise ValueError("codec and rate_khz are one byte each")


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup:
    call_id: bytes
    reason: HangupReason = HangupReason.NORMAL

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dtmf:
    call_id: bytes
    seq: int
    digit: str
    duration_ms: int = 100

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)
        if not 0 <= self.seq <= 0xFFFF:
            raise ValueError("DTMF seq is a u16")
        if len(self.digit) != 1 or self.digit not in DTMF_DIGITS:
            raise ValueError(f"DTMF digit must be one of {DTMF_DIGITS}")
        if not MIN_DTMF_MS <= self.duration_ms <= MAX_DTMF_MS:
            raise ValueError(f"DTMF duration must be {MIN_DTMF_MS}..{MAX_DTMF_MS} ms")


Signal = Invite | Ringing | Answer | Hangup | Dtmf


class UnknownSignal(DecodeError):
    """A well-formed SIGNAL of a kind this version does not know: skip it (and count it)."""


def push_signal(signal: Signal) -> bytes:
    buf = Buffer()
    if isinstance(signal, Invite):
        buf.push_u8(SignalKind.INVITE)
        buf.push_bytes(signal.call_id)
        buf.push_u8(signal.codec)
        buf.push_u8(signal.rate_khz)
        buf.push_u16(signal.max_kbps)
        name = signal.name.encode("utf-8")
        buf.push_u8(len(name))
        buf.push_bytes(name)
    elif isinstance(signal, Ringing):
        buf.push_u8(SignalKind.RINGING)
        buf.push_bytes(signal.call_id)
    elif isinstance(signal, Answer):
        buf.push_u8(SignalKind.ANSWER)
        buf.push_bytes(signal.call_id)
        buf.push_u8(signal.codec)
        buf.push_u8(signal.rate_khz)
    elif isinstance(signal, Hangup):
        buf.push_u8(SignalKind.HANGUP)
        buf.push_bytes(signal.call_id)
        buf.push_u8(signal.reason)
    else:
        buf.push_u8(SignalKind.DTMF)
        buf.push_bytes(signal.call_id)
        buf.push_u16(signal.seq)
        buf.push_u8(ord(signal.digit))
        buf.push_u16(signal.duration_ms)
    return buf.getvalue()


def pull_signal(data: bytes) -> Signal:
    """Decode a SIGNAL body (after its message id). Raises ``UnknownSignal`` for a kind this
    version does not know and ``DecodeError`` for anything malformed."""
    buf = Buffer(data)
    kind = buf.pull_u8()
    call_id = buf.pull_bytes(CALL_ID_SIZE)
    try:
        signal: Signal
        if kind == SignalKind.INVITE:
            codec, rate, kbps = buf.pull_u8(), buf.pull_u8(), buf.pull_u16()
            raw = buf.pull_bytes(buf.pull_u8())
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DecodeError("INVITE name is not UTF-8") from exc
            signal = Invite(call_id=call_id, codec=codec, rate_khz=rate, max_kbps=kbps, name=name)
        elif kind == SignalKind.RINGING:
            signal = Ringing(call_id=call_id)
        elif kind == SignalKind.ANSWER:
            signal = Answer(call_id=call_id, codec=buf.pull_u8(), rate_khz=buf.pull_u8())
        elif kind == SignalKind.HANGUP:
            value = buf.pull_u8()
            try:
                reason = HangupReason(value)
            except ValueError:
                reason = HangupReason.FAILED  # a reason added later still ends the call
            signal = Hangup(call_id=call_id, reason=reason)
        elif kind == SignalKind.DTMF:
            seq, digit, ms = buf.pull_u16(), chr(buf.pull_u8()), buf.pull_u16()
            signal = Dtmf(call_id=call_id, seq=seq, digit=digit, duration_ms=ms)
        else:
            raise UnknownSignal(f"unknown signal kind 0x{kind:02x}")
    except ValueError as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"bad {SignalKind(kind).name} signal: {exc}") from None
    if kind != SignalKind.INVITE:
        buf.expect_end()  # an INVITE may grow fields at its end; the others may not
    return signal


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaReport:
    """A receiver report about the stream its sender receives (RFC 3550 §6.4.1 in spirit)."""

    highest_seq: int
    lost_total: int
    fraction_lost: int
    "Lost fraction since the previous report, in 1/256 (0..255)."
    jitter: int
    "Interarrival jitter in 48 kHz units."
    playout_ms: int
    "The reporter's jitter buffer delay."
    report_ts: int
    "Milliseconds on the reporter's clock (mod 2**32): echoed back to measure RTT."
    echo_ts: int = 0
    echo_delay_ms: int = 0

    def __post_init__(self) -> None:
        for name, bound in (
            ("highest_seq", 0xFFFF),
            ("lost_total", 0xFFFFFFFF),
            ("fraction_lost", 0xFF),
            ("jitter", 0xFFFFFFFF),
            ("playout_ms", 0xFFFF),
            ("report_ts", 0xFFFFFFFF),
            ("echo_ts", 0xFFFFFFFF),
            ("echo_delay_ms", 0xFFFFFFFF),
        ):
            if not 0 <= getattr(self, name) <= bound:
                raise ValueError(f"{name} out of range")


def push_report(report: MediaReport) -> bytes:
    buf = Buffer()
    buf.push_u16(report.highest_seq)
    buf.push_u32(report.lost_total)
    buf.push_u8(report.fraction_lost)
    buf.push_u32(report.jitter)
    buf.push_u16(report.playout_ms)
    buf.push_u32(report.report_ts)
    buf.push_u32(report.echo_ts)
    buf.push_u32(report.echo_delay_ms)
    return buf.getvalue()


def pull_report(data: bytes) -> MediaReport:
    """Decode a MEDIA_REPORT body; exactly ``REPORT_SIZE`` bytes (``DecodeError`` otherwise)."""
    if len(data) != REPORT_SIZE:
        raise DecodeError(f"MEDIA_REPORT is {REPORT_SIZE} bytes")
    buf = Buffer(data)
    return MediaReport(
        highest_seq=buf.pull_u16(),
        lost_total=buf.pull_u32(),
        fraction_lost=buf.pull_u8(),
        jitter=buf.pull_u32(),
        playout_ms=buf.pull_u16(),
        report_ts=buf.pull_u32(),
        echo_ts=buf.pull_u32(),
        echo_delay_ms=buf.pull_u32(),
    )


def _check_call_id(call_id: bytes) -> None:
    if len(call_id) != CALL_ID_SIZE:
        raise ValueError(f"call_id must be {CALL_ID_SIZE} bytes")
