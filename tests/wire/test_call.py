"""SIGNAL and MEDIA_REPORT bodies (peerline.wire.call) and their frames (peerline.wire.frames).

Vectors pin the layout of every kind and of every INVITE option; hypothesis round-trips every
kind over its valid field ranges and shows that both parsers are total: any bytes give a value
or ``DecodeError``.
"""

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import mutations
from peerline.errors import DecodeError
from peerline.wire.call import (
    CALL_ID_SIZE,
    DTMF_DIGITS,
    MAX_DIVERSIONS,
    MAX_DTMF_MS,
    MAX_NAME_BYTES,
    MAX_TARGET_DIGITS,
    MIN_DTMF_MS,
    NUMBER_DIGITS,
    REPORT_SIZE,
    SAS_COMMITMENT_SIZE,
    SAS_NONCE_SIZE,
    Answer,
    Dtmf,
    Hangup,
    HangupReason,
    Hold,
    Invite,
    InviteTlv,
    MediaReport,
    Redirect,
    RedirectReason,
    Resume,
    Ringing,
    SasCommit,
    SasNonce,
    SasReveal,
    Signal,
    SignalKind,
    Transfer,
    TransferProgress,
    TransferStatus,
    UnknownSignal,
    pull_report,
    pull_signal,
    push_report,
    push_signal,
)
from peerline.wire.frames import (
    MAX_MESSAGE_BYTES,
    MAX_PAYLOAD,
    MESSAGE_ID_SIZE,
    Frame,
    FrameType,
    MediaReportFrame,
    MessageAckFrame,
    PingFrame,
    SignalFrame,
    frame_size,
    pull_frames,
    push_frames,
)

CID = bytes(range(1, 9))
MID = bytes(range(16))
OTHER = bytes(range(0xA1, 0xA9))  # another call's id (REPLACES)
NONCE = bytes(range(0x10, 0x20))
COMMITMENT = bytes(range(0x20, 0x40))
NUM_1, NUM_2, NUM_3 = "123456789012", "000000000001", "999900001111"
INVITE = b"\x01" + CID + b"\x01\x10\x00\x40\x00"  # Invite(call_id=CID): no name, no options

# (signal, exact body bytes): both directions are checked against this one table.
VECTORS: list[tuple[Signal, bytes]] = [
    (Invite(call_id=CID), INVITE),
    (
        Invite(call_id=CID, codec=1, rate_khz=48, max_kbps=510, name="Zo\u00eb"),
        b"\x01" + CID + b"\x01\x30\x01\xfe\x04Zo\xc3\xab",
    ),
    (Ringing(call_id=CID), b"\x02" + CID),
    (Answer(call_id=CID, codec=1, rate_khz=16), b"\x03" + CID + b"\x01\x10"),
    (Hangup(call_id=CID), b"\x04" + CID + b"\x00"),
    (Hangup(call_id=CID, reason=HangupReason.DECLINED), b"\x04" + CID + b"\x02"),
    (
        Dtmf(call_id=CID, seq=0x0102, digit="#", duration_ms=2000),
        b"\x05" + CID + b"\x01\x02#\x07\xd0",
    ),
    # -- later kinds
    (Hangup(call_id=CID, reason=HangupReason.ANSWERED_ELSEWHERE), b"\x04" + CID + b"\x06"),
    (Hangup(call_id=CID, reason=HangupReason.TRANSFERRED), b"\x04" + CID + b"\x07"),
    (Hangup(call_id=CID, reason=HangupReason.SECURITY), b"\x04" + CID + b"\x08"),
    (Hold(call_id=CID, seq=0x0102), b"\x06" + CID + b"\x01\x02"),
    (Resume(call_id=CID, seq=0xFFFF), b"\x07" + CID + b"\xff\xff"),
    (SasCommit(call_id=CID, commitment=COMMITMENT), b"\x08" + CID + COMMITMENT),
    (SasNonce(call_id=CID, nonce=NONCE), b"\x09" + CID + NONCE),
    (SasReveal(call_id=CID, nonce=NONCE), b"\x0a" + CID + NONCE),
    (Transfer(call_id=CID, target="1234"), b"\x0b" + CID + b"\x00\x041234"),
    (
        Transfer(call_id=CID, target=NUM_1, replaces=OTHER),
        b"\x0b" + CID + b"\x01" + OTHER + b"\x0c" + NUM_1.encode(),
    ),
    (
        Transfer(call_id=CID, target="0" * MAX_TARGET_DIGITS),
        b"\x0b" + CID + b"\x00\x10" + b"0" * 16,
    ),
    (
        TransferStatus(call_id=CID, status=TransferProgress.TRYING),
        b"\x0c" + CID + b"\x00",
    ),
    (
        TransferStatus(call_id=CID, status=TransferProgress.RINGING),
        b"\x0c" + CID + b"\x01",
    ),
    (
        TransferStatus(call_id=CID, status=TransferProgress.ANSWERED),
        b"\x0c" + CID + b"\x02",
    ),
    (
        TransferStatus(call_id=CID, status=TransferProgress.FAILED),
        b"\x0c" + CID + b"\x03",
    ),
    (
        Redirect(call_id=CID, target="7", reason=RedirectReason.ALWAYS),
        b"\x0d" + CID + b"\x00\x017",
    ),
    (
        Redirect(call_id=CID, target=NUM_1, reason=RedirectReason.OFFLINE),
        b"\x0d" + CID + b"\x03\x0c" + NUM_1.encode(),
    ),
    (
        Redirect(call_id=CID, target="42", reason=RedirectReason.NO_ANSWER),
        b"\x0d" + CID + b"\x02\x0242",
    ),
    (
        Redirect(call_id=CID, target="555", reason=RedirectReason.BUSY),
        b"\x0d" + CID + b"\x01\x03555",
    ),
    # -- INVITE options, one at a time, then all at once
    (Invite(call_id=CID, replaces=OTHER), INVITE + b"\x01\x08" + OTHER),
    (Invite(call_id=CID, diverted=(NUM_1,)), INVITE + b"\x02\x0c" + NUM_1.encode()),
    (
        Invite(call_id=CID, diverted=(NUM_1, NUM_2)),
        INVITE + b"\x02\x18" + NUM_1.encode() + NUM_2.encode(),
    ),
    (Invite(call_id=CID, intercom=True), INVITE + b"\x03\x01\x01"),
    (Invite(call_id=CID, page=True), INVITE + b"\x03\x01\x02"),
    (Invite(call_id=CID, intercom=True, page=True), INVITE + b"\x03\x01\x03"),
    (Invite(call_id=CID, referred_by=NUM_3), INVITE + b"\x04\x0c" + NUM_3.encode()),
    (Invite(call_id=CID, group="700"), INVITE + b"\x05\x03700"),
    (
        Invite(call_id=CID, intercom=True, group="700"),
        INVITE + b"\x03\x01\x01" + b"\x05\x03700",  # the example of protocol.md §6.7
    ),
    (
        Invite(
            call_id=CID,
            rate_khz=48,
            name="Desk",
            replaces=OTHER,
            diverted=(NUM_1, NUM_2),
            page=True,
            referred_by=NUM_3,
            group="9",
        ),
        b"\x01"
        + CID
        + b"\x01\x30\x00\x40\x04Desk"
        + (b"\x01\x08" + OTHER)
        + (b"\x02\x18" + NUM_1.encode() + NUM_2.encode())
        + b"\x03\x01\x02"
        + (b"\x04\x0c" + NUM_3.encode())
        + b"\x05\x019",
    ),
]


@pytest.mark.parametrize(("signal", "data"), VECTORS)
def test_signal_matches_vector_both_ways(signal: Signal, data: bytes) -> None:
    assert push_signal(signal) == data
    assert pull_signal(data) == signal


def test_every_kind_has_a_vector() -> None:
    assert {data[0] for _, data in VECTORS} == set(SignalKind)
    assert {int(s.reason) for s, _ in VECTORS if isinstance(s, Hangup)} >= {6, 7, 8}
    assert {int(s.status) for s, _ in VECTORS if isinstance(s, TransferStatus)} == {0, 1, 2, 3}
    assert {int(s.reason) for s, _ in VECTORS if isinstance(s, Redirect)} == {0, 1, 2, 3}


def test_kind_and_reason_values_are_pinned() -> None:
    assert [int(k) for k in SignalKind] == list(range(0x01, 0x0E))
    assert [k.name for k in SignalKind][5:] == [
        "HOLD",
        "RESUME",
        "SAS_COMMIT",
        "SAS_NONCE",
        "SAS_REVEAL",
        "TRANSFER",
        "TRANSFER_STATUS",
        "REDIRECT",
    ]
    assert [int(r) for r in HangupReason] == list(range(9))
    assert (
        HangupReason.ANSWERED_ELSEWHERE,
        HangupReason.TRANSFERRED,
        HangupReason.SECURITY,
    ) == (6, 7, 8)
    assert [(t.name, int(t)) for t in TransferProgress] == [
        ("TRYING", 0),
        ("RINGING", 1),
        ("ANSWERED", 2),
        ("FAILED", 3),
    ]
    assert [(r.name, int(r)) for r in RedirectReason] == [
        ("ALWAYS", 0),
        ("BUSY", 1),
        ("NO_ANSWER", 2),
        ("OFFLINE", 3),
    ]
    assert [(t.name, int(t)) for t in InviteTlv] == [
        ("REPLACES", 1),
        ("DIVERSION", 2),
        ("FLAGS", 3),
        ("REFERRED_BY", 4),
        ("GROUP", 5),
    ]
    assert (SAS_NONCE_SIZE, SAS_COMMITMENT_SIZE, NUMBER_DIGITS, MAX_TARGET_DIGITS) == (
        16,
        32,
        12,
        16,
    )
    assert MAX_DIVERSIONS == 8
    assert (FrameType.SIGNAL, FrameType.MEDIA_REPORT) == (0x12, 0x21)


# -- round trips over valid field ranges -----------------------------------------------------
call_ids = st.binary(min_size=CALL_ID_SIZE, max_size=CALL_ID_SIZE)
u8 = st.integers(0, 0xFF)
names = st.text(max_size=MAX_NAME_BYTES).map(
    lambda s: s.encode()[:MAX_NAME_BYTES].decode("utf-8", "ignore")
)
numbers = st.text(alphabet="0123456789", min_size=NUMBER_DIGITS, max_size=NUMBER_DIGITS)
targets = st.text(alphabet="0123456789", min_size=1, max_size=MAX_TARGET_DIGITS)
invites = st.builds(
    Invite,
    call_id=call_ids,
    codec=u8,
    rate_khz=u8,
    max_kbps=st.integers(8, 510),
    name=names,
    replaces=st.none() | call_ids,
    diverted=st.lists(numbers, max_size=MAX_DIVERSIONS).map(tuple),
    intercom=st.booleans(),
    page=st.booleans(),
    referred_by=st.none() | numbers,
    group=st.none() | targets,
)
ringings = st.builds(Ringing, call_id=call_ids)
answers = st.builds(Answer, call_id=call_ids, codec=u8, rate_khz=u8)
hangups = st.builds(Hangup, call_id=call_ids, reason=st.sampled_from(HangupReason))
dtmfs = st.builds(
    Dtmf,
    call_id=call_ids,
    seq=st.integers(0, 0xFFFF),
    digit=st.sampled_from(DTMF_DIGITS),
    duration_ms=st.integers(MIN_DTMF_MS, MAX_DTMF_MS),
)
holds = st.builds(Hold, call_id=call_ids)
resumes = st.builds(Resume, call_id=call_ids)
commits = st.builds(
    SasCommit,
    call_id=call_ids,
    commitment=st.binary(min_size=SAS_COMMITMENT_SIZE, max_size=SAS_COMMITMENT_SIZE),
)
nonces = st.binary(min_size=SAS_NONCE_SIZE, max_size=SAS_NONCE_SIZE)
sas_nonces = st.builds(SasNonce, call_id=call_ids, nonce=nonces)
reveals = st.builds(SasReveal, call_id=call_ids, nonce=nonces)
transfers = st.builds(Transfer, call_id=call_ids, target=targets, replaces=st.none() | call_ids)
transfer_statuses = st.builds(
    TransferStatus, call_id=call_ids, status=st.sampled_from(TransferProgress)
)
redirects = st.builds(
    Redirect, call_id=call_ids, target=targets, reason=st.sampled_from(RedirectReason)
)

# Every kind in kind order: its class and the strategy that draws it.
KINDS: list[tuple[type, st.SearchStrategy[Signal]]] = [
    (Invite, invites),
    (Ringing, ringings),
    (Answer, answers),
    (Hangup, hangups),
    (Dtmf, dtmfs),
    (Hold, holds),
    (Resume, resumes),
    (SasCommit, commits),
    (SasNonce, sas_nonces),
    (SasReveal, reveals),
    (Transfer, transfers),
    (TransferStatus, transfer_statuses),
    (Redirect, redirects),
]
signals = st.one_of([strategy for _, strategy in KINDS])


@pytest.mark.parametrize(
    ("kind", "cls", "strategy"),
    [(kind, cls, strategy) for kind, (cls, strategy) in zip(SignalKind, KINDS, strict=True)],
    ids=[k.name for k in SignalKind],
)
@given(data=st.data())
def test_every_kind_round_trips(
    kind: SignalKind, cls: type, strategy: st.SearchStrategy[Signal], data: st.DataObject
) -> None:
    signal = data.draw(strategy)
    assert type(signal) is cls
    encoded = push_signal(signal)
    assert encoded[0] == kind
    assert encoded[1 : 1 + CALL_ID_SIZE] == signal.call_id
    assert pull_signal(encoded) == signal


@given(
    call_id=call_ids,
    codec=u8,
    rate_khz=u8,
    max_kbps=st.integers(8, 510),
    name=names,
)
def test_an_invite_without_options_is_encoded_as_before_options_existed(
    call_id: bytes, codec: int, rate_khz: int, max_kbps: int, name: str
) -> None:
    invite = Invite(call_id=call_id, codec=codec, rate_khz=rate_khz, max_kbps=max_kbps, name=name)
    raw = name.encode()
    assert push_signal(invite) == (
        b"\x01"
        + call_id
        + bytes([codec, rate_khz])
        + max_kbps.to_bytes(2, "big")
        + bytes([len(raw)])
        + raw
    )


def test_the_longest_name_fits_and_one_byte_more_does_not() -> None:
    name = "\u20ac" * (MAX_NAME_BYTES // 3) + "x" * (MAX_NAME_BYTES % 3)
    assert len(name.encode()) == MAX_NAME_BYTES
    invite = Invite(call_id=CID, name=name)
    assert pull_signal(push_signal(invite)) == invite
    with pytest.raises(ValueError, match="name"):
        Invite(call_id=CID, name=name + "x")


def test_the_largest_invite_fits_one_signal_frame() -> None:
    invite = Invite(
        call_id=CID,
        name="n" * MAX_NAME_BYTES,
        replaces=OTHER,
        diverted=(NUM_1,) * MAX_DIVERSIONS,
        intercom=True,
        page=True,
        referred_by=NUM_3,
        group="1" * MAX_TARGET_DIGITS,
    )
    data = push_signal(invite)
    assert len(data) == 14 + MAX_NAME_BYTES + 10 + 98 + 3 + 14 + 18
    assert len(data) <= MAX_MESSAGE_BYTES
    assert pull_signal(data) == invite


# -- malformed input -------------------------------------------------------------------------
def _option_ends(data: bytes) -> set[int]:
    """Where an INVITE body's options start and each one ends (not the body's end)."""
    at = 1 + CALL_ID_SIZE + 4
    at += 1 + data[at]
    ends = set()
    while at < len(data):
        ends.add(at)
        at += 2 + data[at + 1]
    return ends


@pytest.mark.parametrize(("signal", "data"), VECTORS)
def test_every_truncation_is_a_decode_error(signal: Signal, data: bytes) -> None:
    """Except an INVITE cut exactly between two options: that is an INVITE with fewer."""
    whole = _option_ends(data) if isinstance(signal, Invite) else set()
    for n in range(len(data)):
        if n in whole:
            assert push_signal(pull_signal(data[:n])) == data[:n]
            continue
        with pytest.raises(DecodeError):
            pull_signal(data[:n])


@given(signal=signals, extra=st.binary(min_size=1, max_size=16))
def test_trailing_bytes_are_a_decode_error_except_after_an_invite(
    signal: Signal, extra: bytes
) -> None:
    data = push_signal(signal) + extra
    if isinstance(signal, Invite):
        with contextlib.suppress(DecodeError):  # read as options, maybe malformed ones
            pull_signal(data)
    else:
        with pytest.raises(DecodeError):
            pull_signal(data)


unknown_options = st.lists(
    st.tuples(
        st.integers(0, 0xFF).filter(lambda t: t not in set(InviteTlv)),
        st.binary(max_size=40),
    ),
    min_size=1,
    max_size=4,
).map(lambda tlvs: b"".join(bytes([t, len(v)]) + v for t, v in tlvs))


@given(invite=invites, before=unknown_options, after=unknown_options)
def test_options_of_unknown_types_are_skipped(invite: Invite, before: bytes, after: bytes) -> None:
    data = push_signal(invite)
    plain = push_signal(
        Invite(
            call_id=invite.call_id,
            codec=invite.codec,
            rate_khz=invite.rate_khz,
            max_kbps=invite.max_kbps,
            name=invite.name,
        )
    )
    options = data[len(plain) :]
    assert pull_signal(plain + before + options + after) == invite


def _tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind, len(value)]) + value


def test_options_out_of_type_order_are_accepted_and_sent_in_order() -> None:
    data = INVITE + _tlv(5, b"700") + _tlv(3, b"\x01") + _tlv(1, OTHER)
    invite = pull_signal(data)
    assert invite == Invite(call_id=CID, replaces=OTHER, intercom=True, group="700")
    assert push_signal(invite) == INVITE + _tlv(1, OTHER) + _tlv(3, b"\x01") + _tlv(5, b"700")


@pytest.mark.parametrize(
    "option",
    [
        _tlv(1, OTHER),
        _tlv(2, NUM_1.encode()),
        _tlv(3, b"\x01"),
        _tlv(4, NUM_1.encode()),
        _tlv(5, b"1"),
    ],
    ids=[t.name for t in InviteTlv],
)
def test_a_known_option_twice_is_a_decode_error(option: bytes) -> None:
    pull_signal(INVITE + option)
    with pytest.raises(DecodeError, match="twice"):
        pull_signal(INVITE + option + option)
    with pytest.raises(DecodeError, match="twice"):
        pull_signal(INVITE + option + _tlv(0x77, b"x") + option)


def test_an_unknown_option_twice_is_skipped_twice() -> None:
    assert pull_signal(INVITE + _tlv(6, b"a") + _tlv(6, b"b")) == Invite(call_id=CID)
    assert pull_signal(INVITE + _tlv(0, b"") + _tlv(0xFF, bytes(255))) == Invite(call_id=CID)


@pytest.mark.parametrize(
    "tail",
    [
        b"\x05",  # a type and no length
        b"\x05\x03" + b"70",  # a value running past the end
        b"\x01\x08" + OTHER[:7],
        b"\x99",  # unknown types too
        b"\x99\x04" + b"abc",
        _tlv(3, b"\x01") + b"\x04",
        _tlv(3, b"\x01") + b"\x04\x0c" + NUM_1[:11].encode(),
    ],
)
def test_an_option_running_past_the_end_is_a_decode_error(tail: bytes) -> None:
    with pytest.raises(DecodeError):
        pull_signal(INVITE + tail)


@pytest.mark.parametrize(
    "option",
    [
        _tlv(1, b""),
        _tlv(1, OTHER[:7]),
        _tlv(1, OTHER + b"\x00"),
        _tlv(2, b""),
        _tlv(2, NUM_1[:11].encode()),
        _tlv(2, NUM_1.encode() + b"1"),
        _tlv(2, NUM_1.encode() * (MAX_DIVERSIONS + 1)),
        _tlv(2, NUM_1.encode() + b"12345678901x"),
        _tlv(2, b"12345678901 "),
        _tlv(2, b"+12345678901"),
        _tlv(2, b"\xd9\xa1" * 6),  # an Arabic-Indic digit in UTF-8: not ASCII
        _tlv(3, b""),
        _tlv(3, b"\x01\x00"),
        _tlv(4, b""),
        _tlv(4, NUM_1[:11].encode()),
        _tlv(4, NUM_1.encode() + b"0"),
        _tlv(4, b"1234-5678-90"),
        _tlv(4, b"\x00" * 12),
        _tlv(5, b""),
        _tlv(5, b"1" * (MAX_TARGET_DIGITS + 1)),
        _tlv(5, b"7a"),
        _tlv(5, b"\xb9"),  # superscript one in Latin-1
    ],
)
def test_a_malformed_known_option_is_a_decode_error(option: bytes) -> None:
    with pytest.raises(DecodeError):
        pull_signal(INVITE + option)


@pytest.mark.parametrize(
    ("flags", "intercom", "page"),
    [(0x00, False, False), (0x04, False, False), (0xFD, True, False), (0xFE, False, True)],
)
def test_unknown_invite_flag_bits_are_ignored(flags: int, intercom: bool, page: bool) -> None:
    invite = pull_signal(INVITE + _tlv(3, bytes([flags])))
    assert invite == Invite(call_id=CID, intercom=intercom, page=page)


def test_the_bounds_of_diversion_and_group_are_inclusive() -> None:
    most = (NUM_1, NUM_2) * (MAX_DIVERSIONS // 2)
    data = INVITE + _tlv(2, "".join(most).encode()) + _tlv(5, b"9" * MAX_TARGET_DIGITS)
    assert pull_signal(data) == Invite(call_id=CID, diverted=most, group="9" * MAX_TARGET_DIGITS)


def _invite_body(name: bytes, *, kbps: int = 64) -> bytes:
    return b"\x01" + CID + b"\x01\x10" + kbps.to_bytes(2, "big") + bytes([len(name)]) + name


@pytest.mark.parametrize(
    "name",
    [b"\xff", b"\xc3", b"ok\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"],
)
def test_a_name_that_is_not_utf8_is_a_decode_error(name: bytes) -> None:
    with pytest.raises(DecodeError, match="UTF-8"):
        pull_signal(_invite_body(name))


def test_a_name_over_the_limit_is_a_decode_error() -> None:
    assert pull_signal(_invite_body(b"n" * MAX_NAME_BYTES)) == Invite(
        call_id=CID, name="n" * MAX_NAME_BYTES
    )
    for n in (MAX_NAME_BYTES + 1, 255):
        with pytest.raises(DecodeError, match="INVITE"):
            pull_signal(_invite_body(b"n" * n))


@pytest.mark.parametrize("kbps", [0, 7, 511, 0xFFFF])
def test_max_kbps_out_of_range_is_a_decode_error(kbps: int) -> None:
    with pytest.raises(DecodeError):
        pull_signal(_invite_body(b"", kbps=kbps))


def _dtmf_body(digit: int, ms: int) -> bytes:
    return b"\x05" + CID + b"\x00\x07" + bytes([digit]) + ms.to_bytes(2, "big")


@pytest.mark.parametrize("digit", [0, ord("E"), ord("a"), ord(" "), ord("+"), 0x80, 0xFF])
def test_a_bad_dtmf_digit_is_a_decode_error(digit: int) -> None:
    with pytest.raises(DecodeError, match="DTMF"):
        pull_signal(_dtmf_body(digit, 100))


@pytest.mark.parametrize("ms", [0, MIN_DTMF_MS - 1, MAX_DTMF_MS + 1, 0xFFFF])
def test_a_bad_dtmf_duration_is_a_decode_error(ms: int) -> None:
    with pytest.raises(DecodeError, match="DTMF"):
        pull_signal(_dtmf_body(ord("5"), ms))


@given(digit=st.sampled_from(DTMF_DIGITS), ms=st.sampled_from([MIN_DTMF_MS, MAX_DTMF_MS]))
def test_dtmf_bounds_are_inclusive(digit: str, ms: int) -> None:
    assert pull_signal(_dtmf_body(ord(digit), ms)) == Dtmf(
        call_id=CID, seq=7, digit=digit, duration_ms=ms
    )


@given(value=st.integers(len(HangupReason), 0xFF))
def test_an_unknown_hangup_reason_decodes_as_failed(value: int) -> None:
    assert pull_signal(b"\x04" + CID + bytes([value])) == Hangup(
        call_id=CID, reason=HangupReason.FAILED
    )


@given(value=st.integers(len(TransferProgress), 0xFF))
def test_an_unknown_transfer_status_decodes_as_failed(value: int) -> None:
    assert pull_signal(b"\x0c" + CID + bytes([value])) == TransferStatus(
        call_id=CID, status=TransferProgress.FAILED
    )


@given(value=st.integers(len(RedirectReason), 0xFF), target=targets)
def test_an_unknown_redirect_reason_decodes_as_always(value: int, target: str) -> None:
    data = b"\x0d" + CID + bytes([value, len(target)]) + target.encode()
    assert pull_signal(data) == Redirect(call_id=CID, target=target, reason=RedirectReason.ALWAYS)


@pytest.mark.parametrize(
    "body",
    [
        b"\x08" + CID + COMMITMENT[:31],
        b"\x08" + CID + COMMITMENT + b"\x00",
        b"\x08" + CID,
        b"\x09" + CID + NONCE[:15],
        b"\x09" + CID + NONCE + b"\x00",
        b"\x0a" + CID + NONCE[:15],
        b"\x0a" + CID + NONCE + b"\x00",
        b"\x06" + CID + b"\x00",
        b"\x07" + CID + b"\x00",
        b"\x0c" + CID,
        b"\x0c" + CID + b"\x00\x00",
    ],
)
def test_a_fixed_size_kind_of_the_wrong_size_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError):
        pull_signal(body)


@pytest.mark.parametrize("flags", [0x02, 0x03, 0x80, 0x81, 0xFF])
def test_unknown_transfer_flag_bits_are_a_decode_error(flags: int) -> None:
    rest = OTHER if flags & 1 else b""
    with pytest.raises(DecodeError, match="flags"):
        pull_signal(b"\x0b" + CID + bytes([flags]) + rest + b"\x041234")


def _transfer_body(target: bytes, *, length: int | None = None) -> bytes:
    n = len(target) if length is None else length
    return b"\x0b" + CID + b"\x00" + bytes([n]) + target


def _redirect_body(target: bytes, *, length: int | None = None) -> bytes:
    n = len(target) if length is None else length
    return b"\x0d" + CID + b"\x01" + bytes([n]) + target


BAD_TARGETS = [
    b"",
    b"1" * (MAX_TARGET_DIGITS + 1),
    b"1" * 255,
    b"12a4",
    b"12 4",
    b"+4912",
    b"*1",
    b"#",
    b"1\x00",
    b"\xb2",  # superscript two in Latin-1
    b"\xd9\xa1",  # Arabic-Indic one in UTF-8
    b"\xef\xbc\x91",  # fullwidth one in UTF-8
]


@pytest.mark.parametrize("make", [_transfer_body, _redirect_body], ids=["TRANSFER", "REDIRECT"])
@pytest.mark.parametrize("target", BAD_TARGETS)
def test_a_bad_target_is_a_decode_error(make: Callable[[bytes], bytes], target: bytes) -> None:
    with pytest.raises(DecodeError):
        pull_signal(make(target))


@pytest.mark.parametrize("make", [_transfer_body, _redirect_body], ids=["TRANSFER", "REDIRECT"])
@pytest.mark.parametrize("length", [0, 3, 5, 17, 255])
def test_a_target_length_that_disagrees_with_the_body_is_a_decode_error(
    make: Callable[..., bytes], length: int
) -> None:
    with pytest.raises(DecodeError):
        pull_signal(make(b"1234", length=length))


def test_a_transfer_flagged_with_replaces_but_without_it_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        pull_signal(b"\x0b" + CID + b"\x01\x041234")  # "\x041234" is read as the call id
    with pytest.raises(DecodeError):
        pull_signal(b"\x0b" + CID + b"\x01" + OTHER[:7])


@given(kind=st.integers(0, 0xFF).filter(lambda k: k not in set(SignalKind)), rest=st.binary())
def test_an_unknown_kind_raises_unknown_signal(kind: int, rest: bytes) -> None:
    with pytest.raises(UnknownSignal) as info:
        pull_signal(bytes([kind]) + CID + rest)
    assert isinstance(info.value, DecodeError)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Ringing(call_id=CID[:7]),
        lambda: Answer(call_id=CID + b"\x00"),
        lambda: Hangup(call_id=b""),
        lambda: Invite(call_id=CID, max_kbps=7),
        lambda: Invite(call_id=CID, codec=256),
        lambda: Answer(call_id=CID, rate_khz=-1),
        lambda: Dtmf(call_id=CID, seq=0x10000, digit="1"),
        lambda: Dtmf(call_id=CID, seq=0, digit="12"),
        lambda: Dtmf(call_id=CID, seq=0, digit="e"),
        lambda: Dtmf(call_id=CID, seq=0, digit="1", duration_ms=MIN_DTMF_MS - 1),
        lambda: Hold(call_id=CID[:7]),
        lambda: Resume(call_id=CID + b"\x00"),
        lambda: SasCommit(call_id=CID, commitment=COMMITMENT[:31]),
        lambda: SasCommit(call_id=CID, commitment=COMMITMENT + b"\x00"),
        lambda: SasCommit(call_id=CID[:7], commitment=COMMITMENT),
        lambda: SasNonce(call_id=CID, nonce=NONCE[:15]),
        lambda: SasNonce(call_id=CID, nonce=NONCE + b"\x00"),
        lambda: SasReveal(call_id=CID, nonce=b""),
        lambda: SasReveal(call_id=CID, nonce=COMMITMENT),
        lambda: Transfer(call_id=CID, target=""),
        lambda: Transfer(call_id=CID, target="1" * 17),
        lambda: Transfer(call_id=CID, target="12a"),
        lambda: Transfer(call_id=CID, target="\u0661\u0662"),  # Arabic-Indic digits
        lambda: Transfer(call_id=CID, target="\u00b2"),  # superscript two: isdigit() is True
        lambda: Transfer(call_id=CID, target="1234", replaces=OTHER[:7]),
        lambda: Transfer(call_id=CID[:7], target="1234"),
        lambda: TransferStatus(call_id=b"", status=TransferProgress.TRYING),
        lambda: Redirect(call_id=CID, target="", reason=RedirectReason.BUSY),
        lambda: Redirect(call_id=CID, target="1" * 17, reason=RedirectReason.BUSY),
        lambda: Redirect(call_id=CID, target=" 12", reason=RedirectReason.BUSY),
        lambda: Invite(call_id=CID, replaces=b""),
        lambda: Invite(call_id=CID, replaces=OTHER + b"\x00"),
        lambda: Invite(call_id=CID, diverted=(NUM_1,) * (MAX_DIVERSIONS + 1)),
        lambda: Invite(call_id=CID, diverted=(NUM_1[:11],)),
        lambda: Invite(call_id=CID, diverted=(NUM_1 + "0",)),
        lambda: Invite(call_id=CID, diverted=("12345678901x",)),
        lambda: Invite(call_id=CID, diverted=[NUM_1]),  # a list is not hashable
        lambda: Invite(call_id=CID, diverted=NUM_1),  # a string, not a tuple of them
        lambda: Invite(call_id=CID, referred_by=""),
        lambda: Invite(call_id=CID, referred_by="1234"),
        lambda: Invite(call_id=CID, referred_by="\uff11" * 12),  # fullwidth digits
        lambda: Invite(call_id=CID, group=""),
        lambda: Invite(call_id=CID, group="1" * 17),
        lambda: Invite(call_id=CID, group="7-0"),
    ],
)
def test_constructors_reject_invalid_fields(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


# -- the parser is total ---------------------------------------------------------------------
REASON_ENUM: dict[type, type[HangupReason] | type[TransferProgress] | type[RedirectReason]] = {
    Hangup: HangupReason,
    TransferStatus: TransferProgress,
    Redirect: RedirectReason,
}


def _check_total(data: bytes) -> None:
    try:
        signal = pull_signal(data)
    except DecodeError:
        return
    # What parses re-encodes to something that parses the same, and to the same bytes unless
    # the decoder dropped something: an INVITE drops options it does not know and sends the
    # others in type order, an unknown reason or status is read as a known one.
    again = push_signal(signal)
    assert pull_signal(again) == signal
    if isinstance(signal, Invite):
        assert len(again) <= len(data)  # options dropped or moved, never added
        return
    reason_enum = REASON_ENUM.get(type(signal))
    if reason_enum is None or data[1 + CALL_ID_SIZE] in set(reason_enum):
        assert again == data


@given(data=st.binary(max_size=96))
def test_arbitrary_bytes_never_raise_anything_but_decode_error(data: bytes) -> None:
    _check_total(data)


@given(data=signals.map(push_signal).flatmap(mutations))
def test_mutated_signals_never_raise_anything_but_decode_error(data: bytes) -> None:
    _check_total(data)


@given(data=invites.map(push_signal).flatmap(mutations))
def test_mutated_invites_with_options_never_raise_anything_but_decode_error(data: bytes) -> None:
    _check_total(data)


@given(kind=st.sampled_from(SignalKind), rest=st.binary(max_size=80))
def test_every_known_kind_with_random_fields_is_total(kind: SignalKind, rest: bytes) -> None:
    _check_total(bytes([kind]) + CID + rest)


@given(
    option=st.sampled_from(InviteTlv),
    value=st.binary(max_size=100) | numbers.map(str.encode) | targets.map(str.encode),
    rest=st.binary(max_size=20),
)
def test_every_known_option_with_random_values_is_total(
    option: InviteTlv, value: bytes, rest: bytes
) -> None:
    _check_total(INVITE + _tlv(option, value) + rest)


# -- MEDIA_REPORT ----------------------------------------------------------------------------
U32 = 0xFFFFFFFF
reports = st.builds(
    MediaReport,
    highest_seq=st.integers(0, 0xFFFF),
    lost_total=st.integers(0, U32),
    fraction_lost=st.integers(0, 0xFF),
    jitter=st.integers(0, U32),
    playout_ms=st.integers(0, 0xFFFF),
    report_ts=st.integers(0, U32),
    echo_ts=st.integers(0, U32),
    echo_delay_ms=st.integers(0, U32),
)


def test_report_matches_vector_both_ways() -> None:
    report = MediaReport(
        highest_seq=0x0102,
        lost_total=0x03040506,
        fraction_lost=0x07,
        jitter=0x08090A0B,
        playout_ms=0x0C0D,
        report_ts=0x0E0F1011,
        echo_ts=0x12131415,
        echo_delay_ms=0x16171819,
    )
    data = bytes(range(1, 0x1A))
    assert REPORT_SIZE == len(data) == 25
    assert push_report(report) == data
    assert pull_report(data) == report


@given(report=reports)
def test_report_round_trips(report: MediaReport) -> None:
    data = push_report(report)
    assert len(data) == REPORT_SIZE
    assert pull_report(data) == report


@given(report=reports, extra=st.binary(min_size=1, max_size=8))
def test_report_must_be_exactly_its_size(report: MediaReport, extra: bytes) -> None:
    data = push_report(report)
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            pull_report(data[:n])
    with pytest.raises(DecodeError):
        pull_report(data + extra)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("highest_seq", 0x10000),
        ("lost_total", U32 + 1),
        ("fraction_lost", 256),
        ("jitter", U32 + 1),
        ("playout_ms", 0x10000),
        ("report_ts", U32 + 1),
        ("echo_ts", -1),
        ("echo_delay_ms", U32 + 1),
    ],
)
def test_report_fields_out_of_range_are_rejected(field: str, bad: int) -> None:
    fields = dict.fromkeys(
        (
            "highest_seq",
            "lost_total",
            "fraction_lost",
            "jitter",
            "playout_ms",
            "report_ts",
            "echo_ts",
            "echo_delay_ms",
        ),
        0,
    )
    MediaReport(**fields)
    fields[field] = bad
    with pytest.raises(ValueError, match=field):
        MediaReport(**fields)


@given(data=st.one_of(st.binary(max_size=40), reports.map(push_report).flatmap(mutations)))
def test_report_parser_is_total(data: bytes) -> None:
    try:
        report = pull_report(data)
    except DecodeError:
        return
    assert push_report(report) == data


# -- SIGNAL (0x12) and MEDIA_REPORT (0x21) frames --------------------------------------------
message_ids = st.binary(min_size=MESSAGE_ID_SIZE, max_size=MESSAGE_ID_SIZE)
bodies = st.binary(min_size=1, max_size=MAX_MESSAGE_BYTES)


def test_frames_match_vectors_both_ways() -> None:
    body = push_signal(Ringing(call_id=CID))
    frames: list[Frame] = [SignalFrame(message_id=MID, body=body), MediaReportFrame(body=b"r")]
    data = b"\x12\x00\x19" + MID + body + b"\x21\x00\x01r"
    assert push_frames(frames) == data
    assert sum(frame_size(f) for f in frames) == len(data)
    assert pull_frames(data) == (frames, 0)


@given(message_id=message_ids, body=bodies, report=bodies)
def test_signal_and_report_frames_round_trip(message_id: bytes, body: bytes, report: bytes) -> None:
    frames: list[Frame] = [
        MessageAckFrame(message_id=message_id),
        SignalFrame(message_id=message_id, body=body),
        PingFrame(),
        MediaReportFrame(body=report),
    ]
    data = push_frames(frames)
    assert len(data) == sum(frame_size(f) for f in frames)
    assert pull_frames(data) == (frames, 0)


def test_the_largest_signal_and_report_fit_one_payload() -> None:
    big = bytes(MAX_MESSAGE_BYTES)
    assert frame_size(SignalFrame(message_id=MID, body=big)) <= MAX_PAYLOAD
    assert frame_size(MediaReportFrame(body=big)) <= MAX_PAYLOAD


@pytest.mark.parametrize(
    "make",
    [
        lambda: SignalFrame(message_id=MID, body=b""),
        lambda: SignalFrame(message_id=MID, body=bytes(MAX_MESSAGE_BYTES + 1)),
        lambda: SignalFrame(message_id=MID[:15], body=b"x"),
        lambda: SignalFrame(message_id=MID + b"\x00", body=b"x"),
        lambda: MediaReportFrame(body=b""),
        lambda: MediaReportFrame(body=bytes(MAX_MESSAGE_BYTES + 1)),
    ],
)
def test_frame_constructors_reject_bad_bodies(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def _raw(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(2, "big") + body


@pytest.mark.parametrize(
    "data",
    [
        _raw(FrameType.SIGNAL, b""),
        _raw(FrameType.SIGNAL, MID[:15]),
        _raw(FrameType.SIGNAL, MID),  # an id and no body
        _raw(FrameType.SIGNAL, MID + bytes(MAX_MESSAGE_BYTES + 1)),
        _raw(FrameType.MEDIA_REPORT, b""),
        _raw(FrameType.MEDIA_REPORT, bytes(MAX_MESSAGE_BYTES + 1)),
        _raw(FrameType.SIGNAL, MID + b"x")[:-1],  # truncated
        _raw(FrameType.MEDIA_REPORT, b"xy")[:-1],
    ],
)
def test_signal_and_report_frames_out_of_bounds_are_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError):
        pull_frames(data)


def test_signal_and_report_frames_at_their_bounds_are_accepted() -> None:
    top = bytes(MAX_MESSAGE_BYTES)
    assert pull_frames(_raw(FrameType.SIGNAL, MID + b"x")) == (
        [SignalFrame(message_id=MID, body=b"x")],
        0,
    )
    assert pull_frames(_raw(FrameType.SIGNAL, MID + top)) == (
        [SignalFrame(message_id=MID, body=top)],
        0,
    )
    assert pull_frames(_raw(FrameType.MEDIA_REPORT, top)) == ([MediaReportFrame(body=top)], 0)


@given(
    data=st.tuples(message_ids, bodies, bodies)
    .map(
        lambda t: push_frames(
            [SignalFrame(message_id=t[0], body=t[1]), MediaReportFrame(body=t[2])]
        )
    )
    .flatmap(mutations)
)
def test_mutated_signal_and_report_frames_never_raise_anything_but_decode_error(
    data: bytes,
) -> None:
    try:
        frames, _ = pull_frames(data)
    except DecodeError:
        return
    for frame in frames:
        if isinstance(frame, SignalFrame):
            assert len(frame.message_id) == MESSAGE_ID_SIZE
            assert 1 <= len(frame.body) <= MAX_MESSAGE_BYTES
        elif isinstance(frame, MediaReportFrame):
            assert 1 <= len(frame.body) <= MAX_MESSAGE_BYTES
