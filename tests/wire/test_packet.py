"""Packet codecs: one table of vectors drives both directions; hypothesis shows the parser is total.

``pull_packet`` takes bytes straight off the UDP socket, so for *any* input it must either
return a packet or raise ``DecodeError`` (never another exception), and never read or allocate
past the datagram it was given.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerline.errors import DecodeError
from peerline.wire.packet import (
    INDEX_MAX,
    INITIATION_NOISE_SIZE,
    INITIATION_SIZE,
    RESPONSE_NOISE_SIZE,
    RESPONSE_SIZE,
    TAG_SIZE,
    TRANSPORT_HEADER_SIZE,
    TRANSPORT_MIN_SIZE,
    HandshakeInitiation,
    HandshakeResponse,
    Packet,
    TransportPacket,
    initiation_header,
    is_stun,
    pull_packet,
    push_initiation,
    push_response,
    push_transport,
    transport_header,
)
from peerline.wire.spec import (
    MAX_DATAGRAM,
    PROTOCOL_VERSION,
    TYPE_COOKIE_REPLY,
    TYPE_HANDSHAKE_INITIATION,
    TYPE_HANDSHAKE_RESPONSE,
    TYPE_OVERLAY,
    TYPE_TRANSPORT,
)

KNOWN_TYPES = (TYPE_HANDSHAKE_INITIATION, TYPE_HANDSHAKE_RESPONSE, TYPE_TRANSPORT)


def push(msg: Packet) -> bytes:
    """Encode any packet with its own codec (the transport header is recomputed, not copied)."""
    if isinstance(msg, HandshakeInitiation):
        return push_initiation(msg)
    if isinstance(msg, HandshakeResponse):
        return push_response(msg)
    return push_transport(msg.receiver_index, msg.counter, msg.ciphertext)


def transport(receiver_index: int, counter: int, ciphertext: bytes) -> TransportPacket:
    return TransportPacket(
        receiver_index=receiver_index,
        counter=counter,
        ciphertext=ciphertext,
        header=transport_header(receiver_index, counter),
    )


INIT_NOISE = bytes(range(INITIATION_NOISE_SIZE))
RESP_NOISE = bytes(range(0xA0, 0xA0 + RESPONSE_NOISE_SIZE))
TAG = bytes(range(0xE0, 0xF0))

# (message, exact bytes on the wire): both directions are checked against this one table.
VECTORS: list[tuple[Packet, bytes]] = [
    (
        HandshakeInitiation(sender_index=0x01020304, noise=INIT_NOISE),
        b"\x50\x01" + b"\x01\x02\x03\x04" + INIT_NOISE,
    ),
    (
        HandshakeInitiation(sender_index=0, noise=bytes(INITIATION_NOISE_SIZE)),
        b"\x50\x01" + bytes(4 + INITIATION_NOISE_SIZE),
    ),
    (
        HandshakeResponse(sender_index=0xFFFFFFFF, receiver_index=0x0A0B0C0D, noise=RESP_NOISE),
        b"\x51\x01" + b"\xff\xff\xff\xff" + b"\x0a\x0b\x0c\x0d" + RESP_NOISE,
    ),
    (
        transport(0x11223344, 0, TAG),  # an empty payload: the 30-byte keepalive
        b"\x53\x01" + b"\x11\x22\x33\x44" + bytes(8) + TAG,
    ),
    (
        transport(0xDEADBEEF, 0x0102030405060708, b"payload" + TAG),
        b"\x53\x01" + b"\xde\xad\xbe\xef" + b"\x01\x02\x03\x04\x05\x06\x07\x08" + b"payload" + TAG,
    ),
    (
        transport(INDEX_MAX, 2**64 - 1, b"\x00" * (MAX_DATAGRAM - TRANSPORT_HEADER_SIZE)),
        b"\x53\x01" + b"\xff" * 12 + b"\x00" * (MAX_DATAGRAM - TRANSPORT_HEADER_SIZE),
    ),
]
VECTOR_IDS = [f"{type(m).__name__}-{len(b)}" for m, b in VECTORS]
FIXED_SIZE = [(m, b) for m, b in VECTORS if not isinstance(m, TransportPacket)]


def test_vector_sizes_match_the_spec() -> None:
    assert INITIATION_SIZE == 134
    assert RESPONSE_SIZE == 58
    assert TRANSPORT_MIN_SIZE == 30
    for msg, data in VECTORS:
        if isinstance(msg, HandshakeInitiation):
            assert len(data) == INITIATION_SIZE
        elif isinstance(msg, HandshakeResponse):
            assert len(data) == RESPONSE_SIZE


@pytest.mark.parametrize(("msg", "data"), VECTORS, ids=VECTOR_IDS)
def test_encode_matches_vector(msg: Packet, data: bytes) -> None:
    assert push(msg) == data


@pytest.mark.parametrize(("msg", "data"), VECTORS, ids=VECTOR_IDS)
def test_decode_matches_vector(msg: Packet, data: bytes) -> None:
    assert pull_packet(data) == msg


@pytest.mark.parametrize(("msg", "data"), VECTORS, ids=VECTOR_IDS)
def test_header_helpers_agree_with_vector(msg: Packet, data: bytes) -> None:
    if isinstance(msg, HandshakeInitiation):
        assert initiation_header(msg.sender_index) == data[:6]
    elif isinstance(msg, TransportPacket):
        decoded = pull_packet(data)
        assert isinstance(decoded, TransportPacket)
        assert decoded.header == data[:TRANSPORT_HEADER_SIZE]


@pytest.mark.parametrize(("msg", "data"), FIXED_SIZE)
def test_fixed_size_packets_reject_every_truncation_and_a_trailing_byte(
    msg: Packet, data: bytes
) -> None:
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            pull_packet(data[:n])
    with pytest.raises(DecodeError):
        pull_packet(data + b"\x00")


@pytest.mark.parametrize(
    ("msg", "data"),
    [(m, b) for m, b in VECTORS if isinstance(m, TransportPacket)],
)
def test_transport_rejects_truncation_below_the_minimum(msg: Packet, data: bytes) -> None:
    for n in range(TRANSPORT_MIN_SIZE):
        with pytest.raises(DecodeError):
            pull_packet(data[:n])
    shortest = pull_packet(data[:TRANSPORT_MIN_SIZE])  # the tag-only keepalive still parses
    assert isinstance(shortest, TransportPacket) and len(shortest.ciphertext) == TAG_SIZE


@pytest.mark.parametrize(("msg", "data"), VECTORS, ids=VECTOR_IDS)
def test_every_wrong_version_is_rejected(msg: Packet, data: bytes) -> None:
    for version in range(256):
        if version != PROTOCOL_VERSION:
            with pytest.raises(DecodeError, match="version"):
                pull_packet(data[:1] + bytes([version]) + data[2:])


@pytest.mark.parametrize("size", [2, TRANSPORT_MIN_SIZE, RESPONSE_SIZE, INITIATION_SIZE, 200])
def test_every_unknown_type_is_rejected(size: int) -> None:
    for kind in range(256):
        if kind not in KNOWN_TYPES:
            data = bytes([kind, PROTOCOL_VERSION]) + bytes(size - 2)
            with pytest.raises(DecodeError, match="unknown packet type"):
                pull_packet(data)


def test_reserved_types_are_unknown_to_this_version() -> None:
    for kind in (TYPE_COOKIE_REPLY, TYPE_OVERLAY):
        with pytest.raises(DecodeError):
            pull_packet(bytes([kind, PROTOCOL_VERSION]) + bytes(64))


@pytest.mark.parametrize("size", [MAX_DATAGRAM + 1, MAX_DATAGRAM + 100, 65_535, 1 << 20])
def test_oversize_datagrams_are_rejected(size: int) -> None:
    data = bytes([TYPE_TRANSPORT, PROTOCOL_VERSION]) + bytes(size - 2)
    with pytest.raises(DecodeError, match="exceeds"):
        pull_packet(data)


def test_largest_datagram_is_accepted() -> None:
    data = bytes([TYPE_TRANSPORT, PROTOCOL_VERSION]) + bytes(MAX_DATAGRAM - 2)
    assert isinstance(pull_packet(data), TransportPacket)


@pytest.mark.parametrize("data", [b"", b"\x50", b"\x53", b"\x01"])
def test_empty_and_one_byte_datagrams_are_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError):
        pull_packet(data)


def test_stun_demultiplexing_uses_the_first_byte() -> None:
    assert not is_stun(b"")
    assert all(is_stun(bytes([b, 0])) for b in range(4))
    assert not any(is_stun(bytes([b])) for b in range(4, 256))


# -- constructors reject field values that could not be encoded -----------------------------------
def raw_transport(receiver_index: int, counter: int, ciphertext: bytes) -> TransportPacket:
    return TransportPacket(
        receiver_index=receiver_index, counter=counter, ciphertext=ciphertext, header=bytes(14)
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: HandshakeInitiation(sender_index=-1, noise=INIT_NOISE),
        lambda: HandshakeInitiation(sender_index=INDEX_MAX + 1, noise=INIT_NOISE),
        lambda: HandshakeInitiation(sender_index=0, noise=INIT_NOISE[:-1]),
        lambda: HandshakeInitiation(sender_index=0, noise=INIT_NOISE + b"\x00"),
        lambda: HandshakeResponse(sender_index=-1, receiver_index=0, noise=RESP_NOISE),
        lambda: HandshakeResponse(sender_index=0, receiver_index=2**32, noise=RESP_NOISE),
        lambda: HandshakeResponse(sender_index=0, receiver_index=0, noise=b""),
        lambda: HandshakeResponse(sender_index=0, receiver_index=0, noise=RESP_NOISE * 2),
        lambda: raw_transport(-1, 0, TAG),
        lambda: raw_transport(2**32, 0, TAG),
        lambda: raw_transport(0, -1, TAG),
        lambda: raw_transport(0, 2**64, TAG),
        lambda: raw_transport(0, 0, TAG[:-1]),
        lambda: raw_transport(0, 0, b""),
        lambda: raw_transport(0, 0, bytes(MAX_DATAGRAM - TRANSPORT_HEADER_SIZE + 1)),
    ],
)
def test_constructors_reject_invalid_fields(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_constructor_errors_are_not_decode_errors() -> None:
    """ValueError from a constructor is a local bug, not remote garbage."""
    with pytest.raises(ValueError) as info:
        HandshakeInitiation(sender_index=-1, noise=INIT_NOISE)
    assert not isinstance(info.value, DecodeError)


# -- properties ------------------------------------------------------------------------------------
indexes = st.integers(0, INDEX_MAX)
initiations = st.builds(
    HandshakeInitiation,
    sender_index=indexes,
    noise=st.binary(min_size=INITIATION_NOISE_SIZE, max_size=INITIATION_NOISE_SIZE),
)
responses = st.builds(
    HandshakeResponse,
    sender_index=indexes,
    receiver_index=indexes,
    noise=st.binary(min_size=RESPONSE_NOISE_SIZE, max_size=RESPONSE_NOISE_SIZE),
)
transports = st.builds(
    transport,
    indexes,
    st.integers(0, 2**64 - 1),
    st.binary(min_size=TAG_SIZE, max_size=MAX_DATAGRAM - TRANSPORT_HEADER_SIZE),
)
packets = st.one_of(initiations, responses, transports)


@given(packets)
def test_round_trip(msg: Packet) -> None:
    data = push(msg)
    assert len(data) <= MAX_DATAGRAM
    assert pull_packet(data) == msg


def check_total(data: bytes) -> None:
    """The parser's contract: a packet that re-encodes to exactly ``data``, or DecodeError."""
    try:
        msg = pull_packet(data)
    except DecodeError:
        return
    assert len(data) <= MAX_DATAGRAM
    assert push(msg) == data  # exact lengths: nothing ignored, nothing invented


@given(st.binary(max_size=2000))
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


@given(
    st.sampled_from(KNOWN_TYPES),
    st.sampled_from([PROTOCOL_VERSION, PROTOCOL_VERSION, 0, 2, 255]),
    st.one_of(
        st.binary(min_size=INITIATION_SIZE - 2, max_size=INITIATION_SIZE - 2),
        st.binary(min_size=RESPONSE_SIZE - 2, max_size=RESPONSE_SIZE - 2),
        st.binary(max_size=MAX_DATAGRAM + 10),
    ),
)
def test_random_bodies_behind_a_plausible_header(kind: int, version: int, body: bytes) -> None:
    check_total(bytes([kind, version]) + body)


@st.composite
def mutations(draw: st.DrawFn, original: bytes) -> bytes:
    """Flip, insert and delete a few random bytes."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "insert", "delete")))
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            i = draw(st.integers(0, len(data) - 1))
            del data[i : i + draw(st.integers(1, 8))]
    return bytes(data)


@given(packets.map(push).flatmap(mutations))
def test_mutated_packets_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


@given(st.sampled_from([b for _, b in VECTORS]).flatmap(mutations))
def test_mutated_vectors_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)
