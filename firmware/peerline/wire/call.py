"""Call signalling and receiver reports: the bodies of SIGNAL (0x12) and MEDIA_REPORT (0x21)
frames (docs/protocol.md §6.7, §6.8).

A SIGNAL frame carries one call-control message, delivered reliably by the session (it is
acknowledged with MESSAGE_ACK and retransmitted like a text message, but not ordered: every
message names its call, and the state machine tolerates reordering). Its body is::

    message_id (16) | kind (u8) | call_id (8) | fields of that kind

Kinds and their fields (integers big-endian; a *target* is a u8 length, 1..16, then that many
ASCII digits: a 12-digit number or a LAN extension):

    0x01 INVITE    codec (u8, 1 = Opus) | rate_khz (u8: 16 or 48) | max_kbps (u16, 8..510)
                   | name (u8 length, 0..64 bytes of UTF-8: the caller's display name)
                   | options: TLVs ``type (u8) | len (u8) | value`` to the end, sent in type
                   order, each known type at most once, unknown types skipped (``InviteTlv``):
                     1 REPLACES     8 bytes: the call this one replaces (attended transfer)
                     2 DIVERSION    12*k bytes, k 1..8: 12-digit numbers that forwarded the
                                    call, oldest first
                     3 FLAGS        1 byte: bit0 intercom (auto-answer if allowed), bit1 page
                                    (one-way announcement); other bits ignored
                     4 REFERRED_BY  12 digits: the number that transferred this call
                     5 GROUP        1..16 digits: the group extension the call was dialled to
    0x02 RINGING   (none)  the callee's phone is ringing
    0x03 ANSWER    codec (u8) | rate_khz (u8): what the callee will send and expects
    0x04 HANGUP    reason (u8, ``HangupReason``): ends, declines or cancels the call
    0x05 DTMF      seq (u16, per call, from 0) | digit (u8: ASCII of 0-9 * # A-D)
                   | duration_ms (u16, 40..2000)
    0x06 HOLD      (none)  the sender put the call on hold: MEDIA stops both ways (reports go on)
    0x07 RESUME    (none)  the sender ends its hold
    0x08 SAS_COMMIT       commitment (32): the callee's ``sas_commitment(n_r)``, after RINGING
    0x09 SAS_NONCE        nonce (16): the caller's n_i, sent once it has the commitment
    0x0A SAS_REVEAL       nonce (16): the callee's n_r, sent once it has n_i
    0x0B TRANSFER  flags (u8: bit0 ``replaces`` present; other bits 0) | replaces (8, if bit0)
                   | target: "call the target and drop me"
    0x0C TRANSFER_STATUS  status (u8, ``TransferProgress``): how the transferred call goes
    0x0D REDIRECT  reason (u8, ``RedirectReason``) | target: the callee forwards the call (it
                   ends the call at both ends; the caller then calls the target)

Apart from INVITE's options, a message with bytes left over is malformed. An unknown
``HangupReason`` or ``TransferProgress`` decodes as FAILED, an unknown ``RedirectReason`` as
ALWAYS. Unknown kinds are skipped (counted), so later versions can add kinds (conference).

A MEDIA_REPORT frame (sent about once a second by each end of a call, never retransmitted) is a
receiver report, as RFC 3550's, for the stream the reporter receives::

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
SAS_NONCE_SIZE = 16
"""SAS_NONCE and SAS_REVEAL: one phone's call-SAS nonce (``proto.identity.sas``)."""
SAS_COMMITMENT_SIZE = 32
"""SAS_COMMIT: the callee's ``sas_commitment`` of its nonce."""
NUMBER_DIGITS = 12
"""A dialable number on the wire: 12 ASCII digits (INVITE's DIVERSION and REFERRED_BY)."""
MAX_TARGET_DIGITS = 16
"""A target (TRANSFER, REDIRECT, INVITE's GROUP): 1..16 ASCII digits, a number or extension."""
MAX_DIVERSIONS = 8
"""Numbers an INVITE's DIVERSION option may list."""
TRANSFER_REPLACES = 0x01
"""TRANSFER flags bit 0: a ``replaces`` call id follows. Other bits must be 0."""
INVITE_INTERCOM = 0x01
INVITE_PAGE = 0x02
"""INVITE FLAGS option bits; other bits are ignored."""


class SignalKind(enum.IntEnum):
    INVITE = 0x01
    RINGING = 0x02
    ANSWER = 0x03
    HANGUP = 0x04
    DTMF = 0x05
    HOLD = 0x06
    RESUME = 0x07
    SAS_COMMIT = 0x08
    SAS_NONCE = 0x09
    SAS_REVEAL = 0x0A
    TRANSFER = 0x0B
    TRANSFER_STATUS = 0x0C
    REDIRECT = 0x0D


class InviteTlv(enum.IntEnum):
    """Types of the options after an INVITE's name: ``type (u8) | len (u8) | value``."""

    REPLACES = 1
    DIVERSION = 2
    FLAGS = 3
    REFERRED_BY = 4
    GROUP = 5


_INVITE_TLVS = frozenset(InviteTlv)


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
    ANSWERED_ELSEWHERE = 6
    "A ring-all group: another phone took the call."
    TRANSFERRED = 7
    "The call was handed on to another phone (TRANSFER)."
    SECURITY = 8
    "The SAS commitment did not match the revealed nonce: the call is refused."


class TransferProgress(enum.IntEnum):
    """How the call a TRANSFER asked for goes, as reported to the transferor."""

    TRYING = 0
    RINGING = 1
    ANSWERED = 2
    FAILED = 3


class RedirectReason(enum.IntEnum):
    """Why a callee forwards a call (REDIRECT)."""

    ALWAYS = 0
    BUSY = 1
    NO_ANSWER = 2
    OFFLINE = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Invite:
    call_id: bytes
    codec: int = 1
    rate_khz: int = 16
    max_kbps: int = 64
    name: str = ""
    replaces: bytes | None = None
    "REPLACES: attended transfer, this call replaces that one (a ``call_id``) at the receiver."
    diverted: tuple[str, ...] = ()
    "DIVERSION: the 12-digit numbers that forwarded this call, oldest first (loop detection)."
    intercom: bool = False
    "FLAGS bit 0: please answer automatically, if the caller is allowed to."
    page: bool = False
    "FLAGS bit 1: a one-way announcement."
    referred_by: str | None = None
    "REFERRED_BY: the 12-digit number that transferred this call."
    group: str | None = None
    "GROUP: the hunt or page group extension this call was dialled to (1..16 digits)."

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)
        if not 0 <= self.codec <= 255 or not 0 <= self.rate_khz <= 255:
            raise ValueError("codec and rate_khz are one byte each")
        if not 8 <= self.max_kbps <= 510:
            raise ValueError("max_kbps must be 8..510")
        if len(self.name.encode("utf-8")) > MAX_NAME_BYTES:
            raise ValueError(f"name exceeds {MAX_NAME_BYTES} UTF-8 bytes")
        if self.replaces is not None:
            _check_call_id(self.replaces, "replaces")
        if not isinstance(self.diverted, tuple) or len(self.diverted) > MAX_DIVERSIONS:
            raise ValueError(f"diverted must be a tuple of at most {MAX_DIVERSIONS} numbers")
        for number in self.diverted:
            _check_digits(number, "diverted", NUMBER_DIGITS, NUMBER_DIGITS)
        if self.referred_by is not None:
            _check_digits(self.referred_by, "referred_by", NUMBER_DIGITS, NUMBER_DIGITS)
        if self.group is not None:
            _check_digits(self.group, "group", 1, MAX_TARGET_DIGITS)


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


@dataclass(frozen=True, slots=True, kw_only=True)
class _HoldChange:
    """HOLD and RESUME: the same fields; the newest by ``seq`` wins at the receiver."""

    call_id: bytes
    seq: int = 0
    "Counts the sender's HOLDs and RESUMEs of the call (u16), from 0."

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)
        if not 0 <= self.seq <= 0xFFFF:
            raise ValueError(f"{type(self).__name__} seq is a u16")


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold(_HoldChange):
    """The sender put the call on hold: both ends stop sending MEDIA (reports go on)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume(_HoldChange):
    """The sender ends its hold."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SasCommit:
    """The callee's commitment to its call-SAS nonce, sent right after RINGING (§2.6)."""

    call_id: bytes
    commitment: bytes

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)
        if len(self.commitment) != SAS_COMMITMENT_SIZE:
            raise ValueError(f"SAS commitment must be {SAS_COMMITMENT_SIZE} bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class _SasNonceField:
    """SAS_NONCE and SAS_REVEAL: the same field, a 16-byte nonce (§2.6)."""

    call_id: bytes
    nonce: bytes

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)
        _check_nonce(self.nonce)


@dataclass(frozen=True, slots=True, kw_only=True)
class SasNonce(_SasNonceField):
    """The caller's call-SAS nonce, sent only once it has the callee's commitment (§2.6)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SasReveal(_SasNonceField):
    """The callee's call-SAS nonce, sent only once it has the caller's (§2.6)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """The sender asks: call ``target`` and drop me. With ``replaces``, the new call replaces
    that call (the sender's with the target) at the target: an attended transfer."""

    call_id: bytes
    target: str
    replaces: bytes | None = None

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)
        _check_digits(self.target, "target", 1, MAX_TARGET_DIGITS)
        if self.replaces is not None:
            _check_call_id(self.replaces, "replaces")


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferStatus:
    """How the call a TRANSFER asked for goes, sent back to the transferor."""

    call_id: bytes
    status: TransferProgress

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect:
    """The callee forwards the call to ``target``: the call ends at both ends and the caller
    calls the target."""

    call_id: bytes
    target: str
    reason: RedirectReason

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)
        _check_digits(self.target, "target", 1, MAX_TARGET_DIGITS)


Signal = (
    Invite
    | Ringing
    | Answer
    | Hangup
    | Dtmf
    | Hold
    | Resume
    | SasCommit
    | SasNonce
    | SasReveal
    | Transfer
    | TransferStatus
    | Redirect
)


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
        _push_invite_options(buf, signal)
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
    elif isinstance(signal, Dtmf):
        buf.push_u8(SignalKind.DTMF)
        buf.push_bytes(signal.call_id)
        buf.push_u16(signal.seq)
        buf.push_u8(ord(signal.digit))
        buf.push_u16(signal.duration_ms)
    elif isinstance(signal, Hold | Resume):
        buf.push_u8(SignalKind.HOLD if isinstance(signal, Hold) else SignalKind.RESUME)
        buf.push_bytes(signal.call_id)
        buf.push_u16(signal.seq)
    elif isinstance(signal, SasCommit):
        buf.push_u8(SignalKind.SAS_COMMIT)
        buf.push_bytes(signal.call_id)
        buf.push_bytes(signal.commitment)
    elif isinstance(signal, SasNonce | SasReveal):
        kind = SignalKind.SAS_NONCE if isinstance(signal, SasNonce) else SignalKind.SAS_REVEAL
        buf.push_u8(kind)
        buf.push_bytes(signal.call_id)
        buf.push_bytes(signal.nonce)
    elif isinstance(signal, Transfer):
        buf.push_u8(SignalKind.TRANSFER)
        buf.push_bytes(signal.call_id)
        if signal.replaces is None:
            buf.push_u8(0)
        else:
            buf.push_u8(TRANSFER_REPLACES)
            buf.push_bytes(signal.replaces)
        _push_target(buf, signal.target)
    elif isinstance(signal, TransferStatus):
        buf.push_u8(SignalKind.TRANSFER_STATUS)
        buf.push_bytes(signal.call_id)
        buf.push_u8(signal.status)
    else:
        buf.push_u8(SignalKind.REDIRECT)
        buf.push_bytes(signal.call_id)
        buf.push_u8(signal.reason)
        _push_target(buf, signal.target)
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
            signal = _pull_invite(buf, call_id)
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
        elif kind == SignalKind.HOLD:
            signal = Hold(call_id=call_id, seq=buf.pull_u16())
        elif kind == SignalKind.RESUME:
            signal = Resume(call_id=call_id, seq=buf.pull_u16())
        elif kind == SignalKind.SAS_COMMIT:
            signal = SasCommit(call_id=call_id, commitment=buf.pull_bytes(SAS_COMMITMENT_SIZE))
        elif kind == SignalKind.SAS_NONCE:
            signal = SasNonce(call_id=call_id, nonce=buf.pull_bytes(SAS_NONCE_SIZE))
        elif kind == SignalKind.SAS_REVEAL:
            signal = SasReveal(call_id=call_id, nonce=buf.pull_bytes(SAS_NONCE_SIZE))
        elif kind == SignalKind.TRANSFER:
            flags = buf.pull_u8()
            if flags & ~TRANSFER_REPLACES:
                raise DecodeError(f"TRANSFER flags 0x{flags:02x} has unknown bits set")
            replaces = buf.pull_bytes(CALL_ID_SIZE) if flags & TRANSFER_REPLACES else None
            signal = Transfer(call_id=call_id, target=_pull_digits(buf), replaces=replaces)
        elif kind == SignalKind.TRANSFER_STATUS:
            value = buf.pull_u8()
            try:
                status = TransferProgress(value)
            except ValueError:
                status = TransferProgress.FAILED  # as an unknown hangup reason
            signal = TransferStatus(call_id=call_id, status=status)
        elif kind == SignalKind.REDIRECT:
            value = buf.pull_u8()
            try:
                why = RedirectReason(value)
            except ValueError:
                why = RedirectReason.ALWAYS  # the caller still follows it
            signal = Redirect(call_id=call_id, target=_pull_digits(buf), reason=why)
        else:
            raise UnknownSignal(f"unknown signal kind 0x{kind:02x}")
    except ValueError as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"bad {SignalKind(kind).name} signal: {exc}") from None
    if kind != SignalKind.INVITE:
        buf.expect_end()  # an INVITE's options run to its end; the others may not grow
    return signal


def _push_invite_options(buf: Buffer, invite: Invite) -> None:
    """The INVITE's options, in type order; none at all for an INVITE without any (its bytes
    are then those of an INVITE from before options existed)."""

    def tlv(kind: InviteTlv, value: bytes) -> None:
        buf.push_u8(kind)
        buf.push_u8(len(value))
        buf.push_bytes(value)

    if invite.replaces is not None:
        tlv(InviteTlv.REPLACES, invite.replaces)
    if invite.diverted:
        tlv(InviteTlv.DIVERSION, "".join(invite.diverted).encode("ascii"))
    flags = (INVITE_INTERCOM if invite.intercom else 0) | (INVITE_PAGE if invite.page else 0)
    if flags:
        tlv(InviteTlv.FLAGS, bytes([flags]))
    if invite.referred_by is not None:
        tlv(InviteTlv.REFERRED_BY, invite.referred_by.encode("ascii"))
    if invite.group is not None:
        tlv(InviteTlv.GROUP, invite.group.encode("ascii"))


def _pull_invite(buf: Buffer, call_id: bytes) -> Invite:
    """An INVITE's fields and then its options, to the end of ``buf``: an option of a type
    this version does not know is skipped; one running past the end, or a known type twice,
    is malformed. Options are accepted in any order."""
    codec, rate, kbps = buf.pull_u8(), buf.pull_u8(), buf.pull_u16()
    raw = buf.pull_bytes(buf.pull_u8())
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("INVITE name is not UTF-8") from exc
    seen: set[int] = set()
    replaces: bytes | None = None
    diverted: tuple[str, ...] = ()
    flags = 0
    referred_by: str | None = None
    group: str | None = None
    while buf.remaining:
        kind = buf.pull_u8()
        value = buf.pull_bytes(buf.pull_u8())
        if kind not in _INVITE_TLVS:
            continue  # a later version's option
        if kind in seen:
            raise DecodeError(f"INVITE option {InviteTlv(kind).name} appears twice")
        seen.add(kind)
        if kind == InviteTlv.REPLACES:
            replaces = value  # its length is checked by Invite
        elif kind == InviteTlv.DIVERSION:
            if not value or len(value) % NUMBER_DIGITS:
                raise DecodeError(f"INVITE DIVERSION is not {NUMBER_DIGITS}-digit numbers")
            diverted = tuple(
                value[i : i + NUMBER_DIGITS].decode("latin-1")
                for i in range(0, len(value), NUMBER_DIGITS)
            )
        elif kind == InviteTlv.FLAGS:
            if len(value) != 1:
                raise DecodeError("INVITE FLAGS is one byte")
            flags = value[0]
        elif kind == InviteTlv.REFERRED_BY:
            referred_by = value.decode("latin-1")
        else:
            group = value.decode("latin-1")
    return Invite(
        call_id=call_id,
        codec=codec,
        rate_khz=rate,
        max_kbps=kbps,
        name=name,
        replaces=replaces,
        diverted=diverted,
        intercom=bool(flags & INVITE_INTERCOM),
        page=bool(flags & INVITE_PAGE),
        referred_by=referred_by,
        group=group,
    )


def _push_target(buf: Buffer, target: str) -> None:
    buf.push_u8(len(target))
    buf.push_bytes(target.encode("ascii"))


def _pull_digits(buf: Buffer) -> str:
    """A u8 length and that many bytes, as text; the signal's constructor checks they are
    ASCII digits (Latin-1 maps every byte to one character, so nothing is lost)."""
    return buf.pull_bytes(buf.pull_u8()).decode("latin-1")


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


def _check_call_id(call_id: bytes, what: str = "call_id") -> None:
    if len(call_id) != CALL_ID_SIZE:
        raise ValueError(f"{what} must be {CALL_ID_SIZE} bytes")


def _check_nonce(nonce: bytes) -> None:
    if len(nonce) != SAS_NONCE_SIZE:
        raise ValueError(f"SAS nonce must be {SAS_NONCE_SIZE} bytes")


def _check_digits(value: str, what: str, low: int, high: int) -> None:
    """``value`` is ``low..high`` ASCII digits (not other Unicode digits: they are sent as
    ASCII)."""
    if not (
        isinstance(value, str) and low <= len(value) <= high and value.isascii() and value.isdigit()
    ):
        size = f"{low}" if low == high else f"{low}..{high}"
        raise ValueError(f"{what} must be {size} ASCII digits")
