"""SIGNAL and MEDIA_REPORT bodies (peerline.wire.call) and their frames (peerline.wire.frames).

Vectors pin the layout of every kind; hypothesis round-trips every kind over its valid field
ranges and shows that both parsers are total: any bytes give a value or ``DecodeError``.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import mutations
from peerline.errors import DecodeError
from peerline.wire.call import (
    CALL_ID_SIZE,
    DTMF_DIGITS,
    MAX_DTMF_MS,
    MAX_NAME_BYTES,
    MIN_DTMF_MS,
    REPORT_SIZE,
    Answer,
    Dtmf,
    Hangup,
    HangupReason,
    Invite,
    MediaReport,
    Ringing,
    Signal,
    SignalKind,
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

# (signal, exact body bytes): both directions are checked against this one table.
VECTORS: list[tuple[Signal, bytes]] = [
    (Invite(call_id=CID), b"\x01" + CID + b"\x01\x10\x00\x40\x00"),
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
]


@pytest.mark.parametrize(("signal", "data"), VECTORS)
def test_signal_matches_vector_both_ways(signal: Signal, data: bytes) -> None:
    assert push_signal(signal) == data
    assert pull_signal(data) == signal


def test_kind_and_reason_values_are_pinned() -> None:
    assert [int(k) for k in SignalKind] == [1, 2, 3, 4, 5]
    assert [int(r) for r in HangupReason] == [0, 1, 2, 3, 4, 5]
    assert (FrameType.SIGNAL, FrameType.MEDIA_REPORT) == (0x12, 0x21)


# -- round trips over valid field ranges -----------------------------------------------------
call_ids = st.binary(min_size=CALL_ID_SIZE, max_size=CALL_ID_SIZE)
u8 = st.integers(0, 0xFF)
names = st.text(max_size=MAX_NAME_BYTES).map(
    lambda s: s.encode()[:MAX_NAME_BYTES].decode("utf-8", "ignore")
)
invites = st.builds(
    Invite,
    call_id=call_ids,
    codec=u8,
    rate_khz=u8,
    max_kbps=st.integers(8, 510),
    name=names,
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
signals = st.one_of(invites, ringings, answers, hangups, dtmfs)


@pytest.mark.parametrize(
    "strategy", [invites, ringings, answers, hangups, dtmfs], ids=[k.name for k in SignalKind]
)
@given(data=st.data())
def test_every_kind_round_trips(strategy: st.SearchStrategy[Signal], data: st.DataObject) -> None:
    signal = data.draw(strategy)
    encoded = push_signal(signal)
    assert (
        encoded[0]
        == {
            Invite: SignalKind.INVITE,
            Ringing: SignalKind.RINGING,
            Answer: SignalKind.ANSWER,
            Hangup: SignalKind.HANGUP,
            Dtmf: SignalKind.DTMF,
        }[type(signal)]
    )
    assert encoded[1 : 1 + CALL_ID_SIZE] == signal.call_id
    assert pull_signal(encoded) == signal


def test_the_longest_name_fits_and_one_byte_more_does_not() -> None:
    name = "\u20ac" * (MAX_NAME_BYTES // 3) + "x" * (MAX_NAME_BYTES % 3)
    assert len(name.encode()) == MAX_NAME_BYTES
    invite = Invite(call_id=CID, name=name)
    assert pull_signal(push_signal(invite)) == invite
    with pytest.raises(ValueError, match="name"):
        Invite(call_id=CID, name=name + "x")


# -- malformed input -------------------------------------------------------------------------
@pytest.mark.parametrize(("signal", "data"), VECTORS)
def test_every_truncation_is_a_decode_error(signal: Signal, data: bytes) -> None:
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            pull_signal(data[:n])


@given(signal=signals, extra=st.binary(min_size=1, max_size=16))
def test_trailing_bytes_are_allowed_only_after_an_invite(signal: Signal, extra: bytes) -> None:
    data = push_signal(signal) + extra
    if isinstance(signal, Invite):
        assert pull_signal(data) == signal  # a later version's fields, ignored
    else:
        with pytest.raises(DecodeError):
            pull_signal(data)


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
    ],
)
def test_constructors_reject_invalid_fields(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


# -- the parser is total ---------------------------------------------------------------------
def _check_total(data: bytes) -> None:
    try:
        signal = pull_signal(data)
    except DecodeError:
        return
    # What parses re-encodes to something that parses the same (an INVITE drops trailing
    # bytes, an unknown hangup reason becomes FAILED).
    again = push_signal(signal)
    assert pull_signal(again) == signal
    if not isinstance(signal, Invite | Hangup):
        assert again == data


@given(data=st.binary(max_size=96))
def test_arbitrary_bytes_never_raise_anything_but_decode_error(data: bytes) -> None:
    _check_total(data)


@given(data=signals.map(push_signal).flatmap(mutations))
def test_mutated_signals_never_raise_anything_but_decode_error(data: bytes) -> None:
    _check_total(data)


@given(kind=st.sampled_from(SignalKind), rest=st.binary(max_size=80))
def test_every_known_kind_with_random_fields_is_total(kind: SignalKind, rest: bytes) -> None:
    _check_total(bytes([kind]) + CID + rest)


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
