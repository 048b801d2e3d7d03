"""Frame codec: one table of vectors for both directions; hypothesis shows the parser is total.

A payload only reaches ``pull_frames`` after it authenticated, but a buggy or hostile peer still
controls it: for any bytes the parser returns frames or raises ``DecodeError``, nothing else.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import mutations
from peerline.errors import DecodeError
from peerline.wire.buffer import Buffer
from peerline.wire.frames import (
    MAX_MESSAGE_BYTES,
    MAX_PAYLOAD,
    MESSAGE_ID_SIZE,
    Frame,
    FrameType,
    MessageAckFrame,
    MessageFrame,
    PathChallengeFrame,
    PathResponseFrame,
    PingFrame,
    frame_size,
    pull_frames,
    push_frame,
    push_frames,
)
from peerline.wire.spec import MAX_DATAGRAM, RELAY_HEADER_SIZE

MID = bytes(range(16))
MID2 = bytes(range(0xF0, 0x100))

# (frames, exact payload bytes): both directions are checked against this one table.
VECTORS: list[tuple[list[Frame], bytes]] = [
    ([], b""),
    ([PingFrame()], b"\x01\x00\x00"),
    ([MessageAckFrame(message_id=MID)], b"\x11\x00\x10" + MID),
    ([MessageFrame(message_id=MID, text="")], b"\x10\x00\x10" + MID),
    ([MessageFrame(message_id=MID, text="hi")], b"\x10\x00\x12" + MID + b"hi"),
    (
        [MessageFrame(message_id=MID2, text="h\u00e9\u20ac\U0001f4de")],  # 1, 2, 3, 4 UTF-8 bytes
        b"\x10\x00\x1a" + MID2 + "h\u00e9\u20ac\U0001f4de".encode(),
    ),
    (
        [MessageFrame(message_id=MID, text="x" * MAX_MESSAGE_BYTES)],
        b"\x10\x03\xf8" + MID + b"x" * MAX_MESSAGE_BYTES,
    ),
    (
        [MessageAckFrame(message_id=MID2), PingFrame(), MessageFrame(message_id=MID, text="a")],
        b"\x11\x00\x10" + MID2 + b"\x01\x00\x00" + b"\x10\x00\x11" + MID + b"a",
    ),
]


@pytest.mark.parametrize(("frames", "data"), VECTORS)
def test_encode_matches_vector(frames: list[Frame], data: bytes) -> None:
    assert push_frames(frames) == data
    assert sum(frame_size(f) for f in frames) == len(data)


@pytest.mark.parametrize(("frames", "data"), VECTORS)
def test_decode_matches_vector(frames: list[Frame], data: bytes) -> None:
    assert pull_frames(data) == (frames, 0)


def test_frame_type_values_are_pinned() -> None:
    assert (FrameType.PING, FrameType.MESSAGE, FrameType.MESSAGE_ACK) == (0x01, 0x10, 0x11)


def test_largest_message_fits_one_datagram() -> None:
    frame = MessageFrame(message_id=MID, text="\U0001f4de" * (MAX_MESSAGE_BYTES // 4))
    assert frame_size(frame) <= MAX_PAYLOAD
    assert MAX_PAYLOAD + RELAY_HEADER_SIZE + 14 + 16 == MAX_DATAGRAM


# -- rejection -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        b"\x01",  # type, no length
        b"\x01\x00",  # half a length
        b"\x10\x00",
        b"\x10\x00\x11" + MID,  # length says 17, 16 left
        b"\x11\x00\x10" + MID[:-1],
        b"\x99\x00\x05abc",  # unknown frames are skipped by length, so their length is checked
        b"\x01\x00\x00\x01",  # a valid PING, then a truncated frame
    ],
)
def test_truncated_frames_are_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError):
        pull_frames(data)


@pytest.mark.parametrize(("frames", "data"), [v for v in VECTORS if v[1]])
def test_every_cut_is_a_prefix_or_an_error(frames: list[Frame], data: bytes) -> None:
    """Lengths are explicit: a cut on a frame boundary is a shorter list, anywhere else an error."""
    boundaries = {0}
    for f in frames:
        boundaries.add(max(boundaries) + frame_size(f))
    for n in range(len(data)):
        if n in boundaries:
            got, _ = pull_frames(data[:n])
            assert got == frames[: len(got)] and sum(frame_size(f) for f in got) == n
        else:
            with pytest.raises(DecodeError):
                pull_frames(data[:n])


@pytest.mark.parametrize(
    "data",
    [
        b"\x01\x00\x01\x00",  # PING with a body
        b"\x10\x00\x0f" + MID[:15],  # MESSAGE shorter than its id
        b"\x10\x00\x00",
        b"\x11\x00\x0f" + MID[:15],  # ACK with a short id
        b"\x11\x00\x11" + MID + b"\x00",  # ACK with a long id
        b"\x11\x00\x00",
    ],
)
def test_known_frames_with_bad_bodies_are_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError):
        pull_frames(data)


def test_message_text_over_the_limit_is_rejected() -> None:
    body = MID + b"x" * (MAX_MESSAGE_BYTES + 1)
    with pytest.raises(DecodeError, match="length"):
        pull_frames(bytes([FrameType.MESSAGE]) + len(body).to_bytes(2, "big") + body)
    with pytest.raises(ValueError):
        MessageFrame(message_id=MID, text="x" * (MAX_MESSAGE_BYTES + 1))
    with pytest.raises(ValueError):  # the limit counts UTF-8 bytes, not characters
        MessageFrame(message_id=MID, text="\u20ac" * (MAX_MESSAGE_BYTES // 3 + 1))


def test_body_over_the_payload_limit_is_rejected_even_for_unknown_types() -> None:
    body = bytes(MAX_PAYLOAD + 1)
    with pytest.raises(DecodeError, match="exceeds"):
        pull_frames(b"\x7f" + len(body).to_bytes(2, "big") + body)
    assert pull_frames(b"\x7f" + MAX_PAYLOAD.to_bytes(2, "big") + bytes(MAX_PAYLOAD)) == ([], 1)


@pytest.mark.parametrize(
    "text",
    [
        b"\xff",
        b"\xc3",  # truncated 2-byte sequence
        b"\xe2\x82",  # truncated 3-byte sequence
        b"\xc0\xaf",  # overlong '/'
        b"\xed\xa0\x80",  # an encoded surrogate
        b"\xf4\x90\x80\x80",  # beyond U+10FFFF
        b"ok\x80",
    ],
)
def test_invalid_utf8_is_rejected(text: bytes) -> None:
    body = MID + text
    with pytest.raises(DecodeError, match="UTF-8"):
        pull_frames(b"\x10" + len(body).to_bytes(2, "big") + body)


@pytest.mark.parametrize(
    "make",
    [
        lambda: MessageFrame(message_id=MID[:15], text=""),
        lambda: MessageFrame(message_id=MID + b"\x00", text=""),
        lambda: MessageFrame(message_id=MID, text="\ud800"),  # unencodable lone surrogate
        lambda: MessageAckFrame(message_id=b""),
        lambda: MessageAckFrame(message_id=MID * 2),
    ],
)
def test_constructors_reject_invalid_fields(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_unknown_frame_types_are_skipped_and_counted() -> None:
    data = (
        b"\x07\x00\x03abc"
        + b"\x01\x00\x00"
        + b"\xff\x00\x00"
        + b"\x11\x00\x10"
        + MID
        + b"\x00\x00\x01z"
    )
    assert pull_frames(data) == ([PingFrame(), MessageAckFrame(message_id=MID)], 3)


# -- properties ------------------------------------------------------------------------------------
message_ids = st.binary(min_size=MESSAGE_ID_SIZE, max_size=MESSAGE_ID_SIZE)


def _fit(text: str) -> str:
    """Cut ``text`` to MAX_MESSAGE_BYTES of UTF-8 without splitting a character."""
    return text.encode()[:MAX_MESSAGE_BYTES].decode("utf-8", "ignore")


texts = st.one_of(
    st.text(max_size=MAX_MESSAGE_BYTES).map(_fit),
    st.text(min_size=MAX_MESSAGE_BYTES, max_size=MAX_MESSAGE_BYTES).map(_fit),  # near the limit
)
frames_st = st.one_of(
    st.just(PingFrame()),
    st.builds(MessageFrame, message_id=message_ids, text=texts),
    st.builds(MessageAckFrame, message_id=message_ids),
)
UNKNOWN_TYPES = [t for t in range(256) if t not in set(FrameType)]


@given(st.lists(frames_st, max_size=8))
def test_round_trip(frames: list[Frame]) -> None:
    data = push_frames(frames)
    assert len(data) == sum(frame_size(f) for f in frames)
    assert pull_frames(data) == (frames, 0)


@given(
    st.lists(
        st.one_of(
            frames_st,
            st.tuples(st.sampled_from(UNKNOWN_TYPES), st.binary(max_size=MAX_PAYLOAD)),
        ),
        max_size=8,
    )
)
def test_unknown_frames_anywhere_are_skipped_and_counted(
    items: list[Frame | tuple[int, bytes]],
) -> None:
    buf = Buffer()
    known: list[Frame] = []
    for item in items:
        if isinstance(item, tuple):
            buf.push_u8(item[0])
            buf.push_vbytes16(item[1])
        else:
            push_frame(buf, item)
            known.append(item)
    assert pull_frames(buf.getvalue()) == (known, len(items) - len(known))


def check_total(data: bytes) -> None:
    """The parser's contract: frames that re-encode to exactly ``data``, or DecodeError."""
    try:
        frames, unknown = pull_frames(data)
    except DecodeError:
        return
    if unknown == 0:
        assert push_frames(frames) == data


@given(st.binary(max_size=2000))
def test_random_payloads_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([*FrameType, 0x00, 0x7F, 0xFF]),
            st.integers(0, 0xFFFF),
            st.binary(max_size=64),
        ),
        max_size=6,
    )
)
def test_random_frame_headers_decode_or_raise_decode_error(
    items: list[tuple[int, int, bytes]],
) -> None:
    """Known types with arbitrary (often lying) lengths reach every body check."""
    check_total(b"".join(bytes([t]) + n.to_bytes(2, "big") + body for t, n, body in items))




@given(st.lists(frames_st, min_size=1, max_size=4).map(push_frames).flatmap(mutations))
def test_mutated_payloads_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


def test_path_frames_round_trip_and_need_eight_bytes() -> None:
    frames: list[Frame] = [
        PathChallengeFrame(data=b"12345678"),
        PathResponseFrame(data=b"abcdefgh"),
    ]
    data = push_frames(frames)
    assert pull_frames(data) == (frames, 0)
    assert sum(frame_size(f) for f in frames) == len(data)
    with pytest.raises(DecodeError):
        pull_frames(b"\x02\x00\x07" + bytes(7))
    with pytest.raises(ValueError):
        PathResponseFrame(data=b"short")
