"""MEDIA frame body codec (peerline.wire.media): vectors, rejections, and a parser that is total.

A body only reaches ``pull_media`` after its session packet authenticated, but a buggy or hostile
peer still controls it: for any bytes the parser returns a frame that re-encodes to exactly those
bytes, or raises ``DecodeError``, nothing else.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import changed_mutations, mutations
from peerline.errors import DecodeError
from peerline.wire.frames import MAX_PAYLOAD
from peerline.wire.media import (
    FLAG_DTX,
    FLAG_MARKER,
    MAX_MEDIA_BODY,
    MAX_OPUS_FRAME,
    MAX_REDUNDANT,
    MEDIA_HEADER_SIZE,
    MediaCodec,
    MediaFrame,
    RedundantFrame,
    media_size,
    pull_media,
    push_media,
    seq_distance,
    ts_distance,
)

# (frame, exact body bytes): both directions are checked against this one table.
VECTORS: list[tuple[MediaFrame, bytes]] = [
    (
        MediaFrame(seq=1, timestamp=960, payload=b"\xaa\xbb"),
        b"\x00\x01" + b"\x00\x01" + b"\x00\x00\x03\xc0" + b"\x00" + b"\xaa\xbb",
    ),
    (  # wrap edges, an empty DTX update that also starts a talkspurt
        MediaFrame(seq=0xFFFF, timestamp=0xFFFFFFFF, payload=b"", marker=True, dtx=True),
        b"\x03\x01" + b"\xff\xff" + b"\xff\xff\xff\xff" + b"\x00",
    ),
    (  # a comfort-noise frame with content
        MediaFrame(seq=0, timestamp=0, payload=b"\x08", dtx=True),
        b"\x02\x01\x00\x00\x00\x00\x00\x00\x00\x08",
    ),
    (
        MediaFrame(
            seq=0x1234,
            timestamp=0x12345678,
            payload=b"P",
            marker=True,
            redundant=(RedundantFrame(age=1, data=b"ab"), RedundantFrame(age=3, data=b"c")),
        ),
        b"\x01\x01"
        + b"\x12\x34"
        + b"\x12\x34\x56\x78"
        + b"\x02"
        + b"\x01\x00\x02ab"
        + b"\x03\x00\x01c"
        + b"P",
    ),
    (
        MediaFrame(
            seq=7,
            timestamp=7 * 960,
            payload=b"\x00" * 3,
            redundant=tuple(RedundantFrame(age=a, data=bytes([a])) for a in (1, 2, 255)),
        ),
        b"\x00\x01\x00\x07\x00\x00\x1a\x40\x03"
        + b"\x01\x00\x01\x01"
        + b"\x02\x00\x01\x02"
        + b"\xff\x00\x01\xff"
        + b"\x00\x00\x00",
    ),
]


@pytest.mark.parametrize(("frame", "data"), VECTORS)
def test_encode_matches_vector(frame: MediaFrame, data: bytes) -> None:
    assert push_media(frame) == data
    assert media_size(frame) == len(data)


@pytest.mark.parametrize(("frame", "data"), VECTORS)
def test_decode_matches_vector(frame: MediaFrame, data: bytes) -> None:
    assert pull_media(data) == frame


def test_constants_are_pinned() -> None:
    assert (MediaCodec.OPUS, FLAG_MARKER, FLAG_DTX) == (1, 0x01, 0x02)
    assert (MAX_OPUS_FRAME, MAX_REDUNDANT, MEDIA_HEADER_SIZE) == (1275, 3, 9)
    assert MAX_MEDIA_BODY == MAX_PAYLOAD - 3  # the frame's type and length


# -- rejection -------------------------------------------------------------------------------------
BASE = VECTORS[3][1]  # two redundant frames and a primary


def _with(offset: int, value: int, data: bytes = BASE) -> bytes:
    return data[:offset] + bytes([value]) + data[offset + 1 :]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        *[(_with(0, 1 << bit), "flags") for bit in range(2, 8)],  # reserved flag bits
        (_with(0, 0xFF), "flags"),
        (_with(1, 0), "codec"),
        (_with(1, 2), "codec"),
        (_with(1, 0xFF), "codec"),
        (_with(8, MAX_REDUNDANT + 1), "at most"),
        (_with(8, 0xFF), "at most"),
        (_with(9, 0), "age 0"),  # first age 0
        (_with(14, 1), "increase"),  # second age equal to the first
        (_with(14, 0), "age 0"),
        (_with(9, 4), "increase"),  # first age 4, second 3
        (b"\x00\x01\x00\x00\x00\x00\x00\x00\x01\x01\x00\x00P", "empty redundant"),
        (b"\x00\x01\x00\x00\x00\x00\x00\x00\x00", "DTX"),  # empty primary without DTX
        (b"\x01\x01\x00\x00\x00\x00\x00\x00\x00", "DTX"),  # marker alone does not allow it
        (b"\x00\x01\x00\x00\x00\x00\x00\x00\x01\x01\x00\x01x", "DTX"),  # redundancy, no primary
    ],
)
def test_bad_field_values_are_rejected(data: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        pull_media(data)


def test_redundant_length_over_the_opus_limit_is_rejected() -> None:
    data = b"\x00\x01\x00\x00\x00\x00\x00\x00\x01\x01" + (MAX_OPUS_FRAME + 1).to_bytes(2, "big")
    with pytest.raises(DecodeError, match="exceeds"):
        pull_media(data + bytes(MAX_OPUS_FRAME + 1) + b"P")


@pytest.mark.parametrize(("frame", "data"), VECTORS)
def test_every_cut_before_the_primary_is_rejected(frame: MediaFrame, data: bytes) -> None:
    """Header and redundant frames have explicit sizes, so any cut inside them is an error."""
    primary_at = len(data) - len(frame.payload)
    for n in range(primary_at):
        with pytest.raises(DecodeError):
            pull_media(data[:n])


def test_a_redundant_length_past_the_end_is_rejected() -> None:
    with pytest.raises(DecodeError, match="need"):
        pull_media(b"\x00\x01\x00\x00\x00\x00\x00\x00\x01\x01\x00\x05abc")


def test_bytes_after_the_last_redundant_frame_are_the_primary() -> None:
    """The primary runs to the end of the body: the enclosing frame's length delimits it, so a
    cut inside the primary (or an extra byte) changes the payload instead of failing."""
    frame, data = VECTORS[3]
    assert pull_media(data + b"Q").payload == frame.payload + b"Q"
    with pytest.raises(DecodeError, match="DTX"):  # without DTX the primary cannot be empty
        pull_media(data[:-1])
    assert pull_media(_with(0, FLAG_DTX, data[:-1])).payload == b""


def test_body_over_the_limit_is_rejected() -> None:
    header = b"\x00\x01\x00\x00\x00\x00\x00\x00\x00"
    largest = header + bytes(MAX_MEDIA_BODY - len(header))
    assert media_size(pull_media(largest)) == MAX_MEDIA_BODY
    with pytest.raises(DecodeError, match="exceeds"):
        pull_media(largest + b"\x00")  # one trailing byte past the limit


def test_push_refuses_a_body_over_the_limit() -> None:
    """A valid frame may still not fit one payload; the sender then drops redundancy."""
    red = tuple(RedundantFrame(age=a, data=bytes(300)) for a in (1, 2, 3))
    fits = MAX_MEDIA_BODY - MEDIA_HEADER_SIZE - 3 * 303
    frame = MediaFrame(seq=5, timestamp=4800, payload=bytes(fits), redundant=red)
    assert len(push_media(frame)) == media_size(frame) == MAX_MEDIA_BODY
    over = MediaFrame(seq=5, timestamp=4800, payload=bytes(fits + 1), redundant=red)
    assert media_size(over) == MAX_MEDIA_BODY + 1
    with pytest.raises(ValueError, match="exceeds"):
        push_media(over)
    dropped = MediaFrame(seq=5, timestamp=4800, payload=bytes(fits + 1), redundant=red[:2])
    assert pull_media(push_media(dropped)) == dropped
    with pytest.raises(ValueError, match="exceeds"):
        push_media(MediaFrame(seq=0, timestamp=0, payload=bytes(MAX_OPUS_FRAME)))


R1 = RedundantFrame(age=1, data=b"x")
R2 = RedundantFrame(age=2, data=b"y")


@pytest.mark.parametrize(
    "make",
    [
        lambda: MediaFrame(seq=-1, timestamp=0, payload=b"x"),
        lambda: MediaFrame(seq=1 << 16, timestamp=0, payload=b"x"),
        lambda: MediaFrame(seq=0, timestamp=-1, payload=b"x"),
        lambda: MediaFrame(seq=0, timestamp=1 << 32, payload=b"x"),
        lambda: MediaFrame(seq=0, timestamp=0, payload=b""),
        lambda: MediaFrame(seq=0, timestamp=0, payload=b"", marker=True),
        lambda: MediaFrame(seq=0, timestamp=0, payload=bytes(MAX_OPUS_FRAME + 1)),
        lambda: MediaFrame(seq=0, timestamp=0, payload=b"x", redundant=(R2, R1)),
        lambda: MediaFrame(seq=0, timestamp=0, payload=b"x", redundant=(R1, R1)),
        lambda: MediaFrame(
            seq=0,
            timestamp=0,
            payload=b"x",
            redundant=tuple(RedundantFrame(age=a, data=b"z") for a in (1, 2, 3, 4)),
        ),
        lambda: RedundantFrame(age=0, data=b"x"),
        lambda: RedundantFrame(age=256, data=b"x"),
        lambda: RedundantFrame(age=1, data=b""),
        lambda: RedundantFrame(age=1, data=bytes(MAX_OPUS_FRAME + 1)),
    ],
)
def test_constructors_reject_invalid_fields(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_constructors_accept_the_edges() -> None:
    MediaFrame(seq=0, timestamp=0, payload=b"", dtx=True)
    MediaFrame(seq=0xFFFF, timestamp=0xFFFFFFFF, payload=bytes(MAX_OPUS_FRAME))
    RedundantFrame(age=255, data=bytes(MAX_OPUS_FRAME))


# -- properties ------------------------------------------------------------------------------------
@st.composite
def media_frames(draw: st.DrawFn) -> MediaFrame:
    """Valid frames whose body fits ``MAX_MEDIA_BODY``, sometimes filling it."""
    ages = sorted(draw(st.sets(st.integers(1, 255), max_size=MAX_REDUNDANT)))
    dtx = draw(st.booleans())
    budget = MAX_MEDIA_BODY - MEDIA_HEADER_SIZE - 3 * len(ages)
    redundant = []
    for i, age in enumerate(ages):
        reserve = len(ages) - i - 1 + (0 if dtx else 1)  # a byte for each frame still to come
        limit = min(MAX_OPUS_FRAME, budget - reserve)
        size = draw(st.one_of(st.integers(1, min(limit, 80)), st.integers(1, limit)))
        data = draw(st.binary(min_size=size, max_size=size))
        budget -= size
        redundant.append(RedundantFrame(age=age, data=data))
    low = 0 if dtx else 1
    size = draw(st.one_of(st.integers(low, min(budget, 160)), st.integers(low, budget)))
    return MediaFrame(
        seq=draw(st.integers(0, 0xFFFF)),
        timestamp=draw(st.integers(0, 0xFFFFFFFF)),
        payload=draw(st.binary(min_size=size, max_size=size)),
        marker=draw(st.booleans()),
        dtx=dtx,
        redundant=tuple(redundant),
    )


@given(media_frames())
def test_round_trip(frame: MediaFrame) -> None:
    data = push_media(frame)
    assert len(data) == media_size(frame) <= MAX_MEDIA_BODY
    assert pull_media(data) == frame


def check_total(data: bytes) -> None:
    """The parser's contract: a frame that re-encodes to exactly ``data``, or DecodeError."""
    try:
        frame = pull_media(data)
    except DecodeError:
        return
    assert push_media(frame) == data
    assert media_size(frame) == len(data)


@given(st.binary(max_size=MAX_MEDIA_BODY + 8))
def test_random_bodies_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


@given(
    st.tuples(
        st.integers(0, 255),
        st.sampled_from([*MediaCodec, 0, 2, 255]),
        st.binary(min_size=6, max_size=6),
        st.integers(0, 5),
    ),
    st.lists(
        st.tuples(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=40)),
        max_size=5,
    ),
    st.binary(max_size=40),
)
def test_random_media_headers_decode_or_raise_decode_error(
    header: tuple[int, int, bytes, int],
    items: list[tuple[int, int, bytes]],
    tail: bytes,
) -> None:
    """Arbitrary flags, counts, ages and (often lying) lengths reach every field check."""
    flags, codec, seq_ts, count = header
    body = b"".join(bytes([age]) + n.to_bytes(2, "big") + data for age, n, data in items)
    check_total(bytes([flags, codec]) + seq_ts + bytes([count]) + body + tail)


@given(media_frames().map(push_media).flatmap(mutations))
def test_mutated_bodies_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


@given(media_frames().map(push_media).flatmap(changed_mutations))
def test_changed_bodies_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


# -- sequence and timestamp arithmetic ------------------------------------------------------------
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [
        (0, 0, 0),
        (0, 1, 1),
        (1, 0, -1),
        (0xFFFF, 0, 1),  # wraps forward
        (0, 0xFFFF, -1),
        (0xFFF0, 0x0010, 0x20),
        (0, 0x7FFF, 32767),
        (0, 0x8000, -32768),  # exactly half the circle: both ways give -32768
        (0x8000, 0, -32768),
        (0, 0x8001, -32767),
    ],
)
def test_seq_distance_vectors(a: int, b: int, d: int) -> None:
    assert seq_distance(a, b) == d


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [
        (0, 960, 960),
        (0xFFFFFFFF, 959, 960),  # wraps forward
        (959, 0xFFFFFFFF, -960),
        (0, 0x7FFFFFFF, 2**31 - 1),
        (0, 0x80000000, -(2**31)),
    ],
)
def test_ts_distance_vectors(a: int, b: int, d: int) -> None:
    assert ts_distance(a, b) == d


@given(u16, u16)
def test_seq_distance_is_antisymmetric_and_in_range(a: int, b: int) -> None:
    d = seq_distance(a, b)
    assert -32768 <= d <= 32767
    assert (a + d) % (1 << 16) == b
    if d != -32768:
        assert seq_distance(b, a) == -d


@given(u16, st.integers(-32768, 32767))
def test_seq_distance_recovers_any_step_across_the_wrap(a: int, d: int) -> None:
    assert seq_distance(a, (a + d) % (1 << 16)) == d


@given(u32, u32)
def test_ts_distance_is_antisymmetric_and_in_range(a: int, b: int) -> None:
    d = ts_distance(a, b)
    assert -(2**31) <= d < 2**31
    assert (a + d) % (1 << 32) == b
    if d != -(2**31):
        assert ts_distance(b, a) == -d


@given(u32, st.integers(-(2**31), 2**31 - 1))
def test_ts_distance_recovers_any_step_across_the_wrap(a: int, d: int) -> None:
    assert ts_distance(a, (a + d) % (1 << 32)) == d
