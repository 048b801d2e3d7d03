"""Packet codecs: one table of vectors drives both directions; hypothesis shows the parser is total.

``pull_packet`` takes bytes straight off the UDP socket, so for *any* input it must either
return a packet or raise ``DecodeError`` (never another exception), and never read or allocate
past the datagram it was given.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import mutations
from peerline.errors import DecodeError
from peerline.wire.packet import (
    COOKIE_NONCE_SIZE,
    COOKIE_REPLY_SIZE,
    COOKIE_SEALED_SIZE,
    INDEX_MAX,
    INITIATION_HEADER_SIZE,
    INITIATION_MAC1_OFFSET,
    INITIATION_MAC2_OFFSET,
    INITIATION_NOISE_SIZE,
    INITIATION_SIZE,
    MAC_SIZE,
    RESPONSE_NOISE_SIZE,
    RESPONSE_PAYLOAD_SIZE,
    RESPONSE_SIZE,
    TAG_SIZE,
    TRANSPORT_HEADER_SIZE,
    TRANSPORT_MIN_SIZE,
    CookieReply,
    HandshakeInitiation,
    HandshakeResponse,
    Packet,
    TransportPacket,
    initiation_header,
    is_stun,
    pull_packet,
    push_cookie_reply,
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

KNOWN_TYPES = (
    TYPE_HANDSHAKE_INITIATION,
    TYPE_HANDSHAKE_RESPONSE,
    TYPE_COOKIE_REPLY,
    TYPE_TRANSPORT,
)
FIXED_SIZES = {
    TYPE_HANDSHAKE_INITIATION: INITIATION_SIZE,
    TYPE_HANDSHAKE_RESPONSE: RESPONSE_SIZE,
    TYPE_COOKIE_REPLY: COOKIE_REPLY_SIZE,
}


def push(msg: Packet) -> bytes:
    """Encode any packet with its own codec (the transport header is recomputed, not copied)."""
    if isinstance(msg, HandshakeInitiation):
        return push_initiation(msg)
    if isinstance(msg, HandshakeResponse):
        return push_response(msg)
    if isinstance(msg, CookieReply):
        return push_cookie_reply(msg)
    return push_transport(msg.receiver_index, msg.counter, msg.ciphertext)


def transport(receiver_index: int, counter: int, ciphertext: bytes) -> TransportPacket:
    return TransportPacket(
        receiver_index=receiver_index,
        counter=counter,
        ciphertext=ciphertext,
        header=transport_header(receiver_index, counter),
    )


INIT_NOISE = bytes(range(INITIATION_NOISE_SIZE))
MAC1 = bytes(range(0x80, 0x80 + MAC_SIZE))
MAC2 = bytes(range(0x90, 0x90 + MAC_SIZE))
RESP_NOISE = bytes(range(0xA0, 0xA0 + RESPONSE_NOISE_SIZE))
NONCE = bytes(range(0xC0, 0xC0 + COOKIE_NONCE_SIZE))
SEALED = bytes(range(0x20, 0x20 + COOKIE_SEALED_SIZE))
TAG = bytes(range(0xE0, 0xF0))

# (message, exact bytes on the wire): both directions are checked against this one table.
VECTORS: list[tuple[Packet, bytes]] = [
    (
        HandshakeInitiation(sender_index=0x01020304, noise=INIT_NOISE, mac1=MAC1, mac2=MAC2),
        b"\x50\x01" + b"\x01\x02\x03\x04" + INIT_NOISE + MAC1 + MAC2,
    ),
    (  # no cookie: mac2 defaults to zeros
        HandshakeInitiation(sender_index=0xFFFFFFFF, noise=INIT_NOISE, mac1=MAC1),
        b"\x50\x01" + b"\xff\xff\xff\xff" + INIT_NOISE + MAC1 + bytes(MAC_SIZE),
    ),
    (
        HandshakeInitiation(
            sender_index=0, noise=bytes(INITIATION_NOISE_SIZE), mac1=bytes(MAC_SIZE)
        ),
        b"\x50\x01" + bytes(4 + INITIATION_NOISE_SIZE + 2 * MAC_SIZE),
    ),
    (
        HandshakeResponse(receiver_index=0x0A0B0C0D, noise=RESP_NOISE),
        b"\x51\x01" + b"\x0a\x0b\x0c\x0d" + RESP_NOISE,
    ),
    (
        HandshakeResponse(receiver_index=0, noise=bytes(RESPONSE_NOISE_SIZE)),
        b"\x51\x01" + bytes(4 + RESPONSE_NOISE_SIZE),
    ),
    (
        CookieReply(receiver_index=0x55667788, nonce=NONCE, sealed_cookie=SEALED),
        b"\x52\x01" + b"\x55\x66\x77\x88" + NONCE + SEALED,
    ),
    (
        CookieReply(
            receiver_index=INDEX_MAX,
            nonce=bytes(COOKIE_NONCE_SIZE),
            sealed_cookie=b"\xff" * COOKIE_SEALED_SIZE,
        ),
        b"\x52\x01" + b"\xff" * 4 + bytes(COOKIE_NONCE_SIZE) + b"\xff" * COOKIE_SEALED_SIZE,
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
VECTOR_IDS = [f"{type(m).__name__}-{len(b)}-{i}" for i, (m, b) in enumerate(VECTORS)]
FIXED = [i for i, (m, _) in enumerate(VECTORS) if not isinstance(m, TransportPacket)]
FIXED_SIZE = [VECTORS[i] for i in FIXED]
FIXED_SIZE_IDS = [VECTOR_IDS[i] for i in FIXED]


def test_vector_sizes_match_the_spec() -> None:
    assert INITIATION_HEADER_SIZE == 6
    assert INITIATION_NOISE_SIZE == 128
    assert INITIATION_MAC1_OFFSET == 134
    assert INITIATION_MAC2_OFFSET == 150
    assert INITIATION_SIZE == 166
    assert MAC_SIZE == 16
    assert RESPONSE_PAYLOAD_SIZE == 4
    assert RESPONSE_NOISE_SIZE == 32 + 4 + 16
    assert RESPONSE_SIZE == 58
    assert COOKIE_NONCE_SIZE == 24
    assert COOKIE_SEALED_SIZE == 32
    assert COOKIE_REPLY_SIZE == 62
    assert TRANSPORT_MIN_SIZE == 30
    expected = {HandshakeInitiation: 166, HandshakeResponse: 58, CookieReply: 62}
    kinds = set()
    for msg, data in VECTORS:
        kinds.add(type(msg))
        if isinstance(msg, TransportPacket):
            assert TRANSPORT_MIN_SIZE <= len(data) <= MAX_DATAGRAM
        else:
            assert len(data) == expected[type(msg)] == FIXED_SIZES[data[0]]
    assert kinds == {HandshakeInitiation, HandshakeResponse, CookieReply, TransportPacket}


def test_cookie_reply_is_smaller_than_the_initiation_it_answers() -> None:
    """No amplification: a spoofed initiation gets back fewer bytes than it cost."""
    assert COOKIE_REPLY_SIZE < INITIATION_SIZE
    assert RESPONSE_SIZE < INITIATION_SIZE


@pytest.mark.parametrize(("msg", "data"), VECTORS, ids=VECTOR_IDS)
def test_encode_matches_vector(msg: Packet, data: bytes) -> None:
    assert push(msg) == data


@pytest.mark.parametrize(("msg", "data"), VECTORS, ids=VECTOR_IDS)
def test_decode_matches_vector(msg: Packet, data: bytes) -> None:
    assert pull_packet(data) == msg


@pytest.mark.parametrize(("msg", "data"), VECTORS, ids=VECTOR_IDS)
def test_header_helpers_agree_with_vector(msg: Packet, data: bytes) -> None:
    if isinstance(msg, HandshakeInitiation):
        assert initiation_header(msg.sender_index) == data[:INITIATION_HEADER_SIZE]
        assert msg.mac1_input == data[:INITIATION_MAC1_OFFSET]
        assert msg.mac2_input == data[:INITIATION_MAC2_OFFSET]
        assert msg.mac1 == data[INITIATION_MAC1_OFFSET:INITIATION_MAC2_OFFSET]
        assert msg.mac2 == data[INITIATION_MAC2_OFFSET:]
    elif isinstance(msg, HandshakeResponse):
        assert msg.noise == data[6:]
    elif isinstance(msg, CookieReply):
        assert msg.nonce == data[6 : 6 + COOKIE_NONCE_SIZE]
        assert msg.sealed_cookie == data[6 + COOKIE_NONCE_SIZE :]
    else:
        decoded = pull_packet(data)
        assert isinstance(decoded, TransportPacket)
        assert decoded.header == data[:TRANSPORT_HEADER_SIZE]
    assert int.from_bytes(data[2:6], "big") == (
        msg.sender_index if isinstance(msg, HandshakeInitiation) else msg.receiver_index
    )


def test_initiation_mac2_defaults_to_zeros() -> None:
    msg = HandshakeInitiation(sender_index=7, noise=INIT_NOISE, mac1=MAC1)
    assert msg.mac2 == bytes(MAC_SIZE)
    assert push_initiation(msg)[INITIATION_MAC2_OFFSET:] == bytes(MAC_SIZE)


def test_mac_inputs_do_not_depend_on_what_they_do_not_cover() -> None:
    """mac1 covers neither mac; mac2 covers mac1 but not itself."""
    a = HandshakeInitiation(sender_index=9, noise=INIT_NOISE, mac1=MAC1, mac2=MAC2)
    b = HandshakeInitiation(sender_index=9, noise=INIT_NOISE, mac1=MAC2, mac2=MAC1)
    c = HandshakeInitiation(sender_index=9, noise=INIT_NOISE, mac1=MAC1)
    assert a.mac1_input == b.mac1_input == c.mac1_input
    assert a.mac2_input == c.mac2_input != b.mac2_input
    d = HandshakeInitiation(sender_index=10, noise=INIT_NOISE, mac1=MAC1, mac2=MAC2)
    assert d.mac1_input != a.mac1_input  # the header is covered


@pytest.mark.parametrize(("msg", "data"), FIXED_SIZE, ids=FIXED_SIZE_IDS)
def test_fixed_size_packets_reject_every_truncation_and_a_trailing_byte(
    msg: Packet, data: bytes
) -> None:
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            pull_packet(data[:n])
    for extra in (b"\x00", b"\xff", bytes(16)):
        with pytest.raises(DecodeError):
            pull_packet(data + extra)


@pytest.mark.parametrize("kind", sorted(FIXED_SIZES))
def test_fixed_size_types_reject_every_other_fixed_size(kind: int) -> None:
    """A body the size of another packet type is not silently accepted as this one."""
    for size in {*FIXED_SIZES.values(), TRANSPORT_MIN_SIZE, MAX_DATAGRAM}:
        data = bytes([kind, PROTOCOL_VERSION]) + bytes(size - 2)
        if size == FIXED_SIZES[kind]:
            assert push(pull_packet(data)) == data
        else:
            with pytest.raises(DecodeError, match="must be"):
                pull_packet(data)


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


@pytest.mark.parametrize(
    "size", [2, TRANSPORT_MIN_SIZE, RESPONSE_SIZE, COOKIE_REPLY_SIZE, INITIATION_SIZE, 200]
)
def test_every_unknown_type_is_rejected(size: int) -> None:
    for kind in range(256):
        if kind not in KNOWN_TYPES:
            data = bytes([kind, PROTOCOL_VERSION]) + bytes(size - 2)
            with pytest.raises(DecodeError, match="unknown packet type"):
                pull_packet(data)


def test_overlay_type_is_still_reserved_and_unknown_to_this_version() -> None:
    assert TYPE_OVERLAY not in KNOWN_TYPES
    for size in (2, TRANSPORT_MIN_SIZE, COOKIE_REPLY_SIZE, 66, INITIATION_SIZE):
        with pytest.raises(DecodeError, match="unknown packet type"):
            pull_packet(bytes([TYPE_OVERLAY, PROTOCOL_VERSION]) + bytes(size - 2))


def test_cookie_reply_type_is_known_now() -> None:
    data = bytes([TYPE_COOKIE_REPLY, PROTOCOL_VERSION]) + bytes(COOKIE_REPLY_SIZE - 2)
    assert pull_packet(data) == CookieReply(
        receiver_index=0, nonce=bytes(COOKIE_NONCE_SIZE), sealed_cookie=bytes(COOKIE_SEALED_SIZE)
    )
    with pytest.raises(DecodeError, match="cookie reply must be 62 bytes"):
        pull_packet(bytes([TYPE_COOKIE_REPLY, PROTOCOL_VERSION]) + bytes(64))


@pytest.mark.parametrize("size", [MAX_DATAGRAM + 1, MAX_DATAGRAM + 100, 65_535, 1 << 20])
def test_oversize_datagrams_are_rejected(size: int) -> None:
    data = bytes([TYPE_TRANSPORT, PROTOCOL_VERSION]) + bytes(size - 2)
    with pytest.raises(DecodeError, match="exceeds"):
        pull_packet(data)


def test_largest_datagram_is_accepted() -> None:
    data = bytes([TYPE_TRANSPORT, PROTOCOL_VERSION]) + bytes(MAX_DATAGRAM - 2)
    assert isinstance(pull_packet(data), TransportPacket)


@pytest.mark.parametrize("data", [b"", b"\x50", b"\x51", b"\x52", b"\x53", b"\x01"])
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
        lambda: HandshakeInitiation(sender_index=-1, noise=INIT_NOISE, mac1=MAC1),
        lambda: HandshakeInitiation(sender_index=INDEX_MAX + 1, noise=INIT_NOISE, mac1=MAC1),
        lambda: HandshakeInitiation(sender_index=0, noise=INIT_NOISE[:-1], mac1=MAC1),
        lambda: HandshakeInitiation(sender_index=0, noise=INIT_NOISE + b"\x00", mac1=MAC1),
        lambda: HandshakeInitiation(sender_index=0, noise=INIT_NOISE, mac1=b""),
        lambda: HandshakeInitiation(sender_index=0, noise=INIT_NOISE, mac1=MAC1[:-1]),
        lambda: HandshakeInitiation(sender_index=0, noise=INIT_NOISE, mac1=MAC1 + b"\x00"),
        lambda: HandshakeInitiation(sender_index=0, noise=INIT_NOISE, mac1=MAC1, mac2=b""),
        lambda: HandshakeInitiation(sender_index=0, noise=INIT_NOISE, mac1=MAC1, mac2=MAC2[:-1]),
        lambda: HandshakeInitiation(
            sender_index=0, noise=INIT_NOISE, mac1=MAC1, mac2=MAC2 + b"\x00"
        ),
        lambda: HandshakeInitiation(sender_index=0, noise=INIT_NOISE, mac1=MAC1, mac2=MAC2 * 2),
        lambda: HandshakeResponse(receiver_index=-1, noise=RESP_NOISE),
        lambda: HandshakeResponse(receiver_index=2**32, noise=RESP_NOISE),
        lambda: HandshakeResponse(receiver_index=0, noise=b""),
        lambda: HandshakeResponse(receiver_index=0, noise=RESP_NOISE[:-1]),
        lambda: HandshakeResponse(receiver_index=0, noise=RESP_NOISE + b"\x00"),
        lambda: HandshakeResponse(receiver_index=0, noise=RESP_NOISE * 2),
        lambda: CookieReply(receiver_index=-1, nonce=NONCE, sealed_cookie=SEALED),
        lambda: CookieReply(receiver_index=2**32, nonce=NONCE, sealed_cookie=SEALED),
        lambda: CookieReply(receiver_index=0, nonce=b"", sealed_cookie=SEALED),
        lambda: CookieReply(receiver_index=0, nonce=NONCE[:-1], sealed_cookie=SEALED),
        lambda: CookieReply(receiver_index=0, nonce=NONCE + b"\x00", sealed_cookie=SEALED),
        lambda: CookieReply(receiver_index=0, nonce=NONCE, sealed_cookie=b""),
        lambda: CookieReply(receiver_index=0, nonce=NONCE, sealed_cookie=SEALED[:-1]),
        lambda: CookieReply(receiver_index=0, nonce=NONCE, sealed_cookie=SEALED + b"\x00"),
        lambda: CookieReply(receiver_index=0, nonce=NONCE, sealed_cookie=SEALED[:16]),
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
    for make in (
        lambda: HandshakeInitiation(sender_index=-1, noise=INIT_NOISE, mac1=MAC1),
        lambda: HandshakeInitiation(sender_index=0, noise=INIT_NOISE, mac1=MAC1[:1]),
        lambda: CookieReply(receiver_index=0, nonce=NONCE[:1], sealed_cookie=SEALED),
    ):
        with pytest.raises(ValueError) as info:
            make()
        assert not isinstance(info.value, DecodeError)


# -- properties ------------------------------------------------------------------------------------
def fixed(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size, max_size=size)


indexes = st.integers(0, INDEX_MAX)
initiations = st.builds(
    HandshakeInitiation,
    sender_index=indexes,
    noise=fixed(INITIATION_NOISE_SIZE),
    mac1=fixed(MAC_SIZE),
    mac2=st.one_of(st.just(bytes(MAC_SIZE)), fixed(MAC_SIZE)),
)
responses = st.builds(
    HandshakeResponse,
    receiver_index=indexes,
    noise=fixed(RESPONSE_NOISE_SIZE),
)
cookie_replies = st.builds(
    CookieReply,
    receiver_index=indexes,
    nonce=fixed(COOKIE_NONCE_SIZE),
    sealed_cookie=fixed(COOKIE_SEALED_SIZE),
)
transports = st.builds(
    transport,
    indexes,
    st.integers(0, 2**64 - 1),
    st.binary(min_size=TAG_SIZE, max_size=MAX_DATAGRAM - TRANSPORT_HEADER_SIZE),
)
packets = st.one_of(initiations, responses, cookie_replies, transports)


@given(packets)
def test_round_trip(msg: Packet) -> None:
    data = push(msg)
    assert len(data) <= MAX_DATAGRAM
    if not isinstance(msg, TransportPacket):
        assert len(data) == FIXED_SIZES[data[0]]
    assert pull_packet(data) == msg


@given(initiations)
def test_initiation_mac_inputs_are_prefixes_of_the_encoding(msg: HandshakeInitiation) -> None:
    data = push_initiation(msg)
    assert data.startswith(msg.mac2_input) and msg.mac2_input.startswith(msg.mac1_input)
    assert len(msg.mac1_input) == INITIATION_MAC1_OFFSET
    assert len(msg.mac2_input) == INITIATION_MAC2_OFFSET


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
        fixed(INITIATION_SIZE - 2),
        fixed(RESPONSE_SIZE - 2),
        fixed(COOKIE_REPLY_SIZE - 2),
        st.binary(max_size=MAX_DATAGRAM + 10),
    ),
)
def test_random_bodies_behind_a_plausible_header(kind: int, version: int, body: bytes) -> None:
    check_total(bytes([kind, version]) + body)




@given(packets.map(push).flatmap(mutations))
def test_mutated_packets_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


@given(st.sampled_from([b for _, b in VECTORS]).flatmap(mutations))
def test_mutated_vectors_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)
