"""Overlay (DHT) codec: one table of vectors for both directions; the parser is total.

``decode_overlay`` takes bytes straight off the UDP socket (before any MAC check), so for *any*
input it must either return a message or raise ``DecodeError``, never another exception. What
it returns re-encodes to exactly the bytes it was given: the encoding is canonical (padding is
a count of zero bytes, so it re-encodes the same too).
"""

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import (  # type: ignore[import-not-found, unused-ignore]
    changed_mutations,
    mutations,
)
from peerline.errors import DecodeError
from peerline.types import Addr
from peerline.wire.buffer import Buffer
from peerline.wire.overlay import (
    FLAG_ANONYMOUS,
    FLAG_FULL,
    FLAG_MEMBER,
    FLAG_TRUNCATED,
    MAX_CONTACTS,
    MAX_INITIATION,
    MAX_RECORD_SIZE,
    MAX_RECORDS_PER_REPLY,
    NO_TOKEN,
    NODE_ID_SIZE,
    OVERLAY_HEADER_SIZE,
    OVERLAY_MAC_SIZE,
    OVERLAY_MIN_SIZE,
    PUBLIC_KEY_SIZE,
    REQUESTS,
    TOKEN_SIZE,
    Body,
    Contact,
    FindNode,
    FindValue,
    Header,
    IntroAck,
    Introduce,
    Introduction,
    IntroStatus,
    Kind,
    Nodes,
    Ping,
    Pong,
    RelayOpen,
    RelayOpened,
    RelayStatus,
    Store,
    StoreAck,
    StoreStatus,
    addr_size,
    contact_size,
    decode_overlay,
    encode_overlay,
    pull_addr,
    pull_contact,
    push_addr,
    push_contact,
)
from peerline.wire.record import SIGNATURE_SIZE, CandidateKind, Presence, Record
from peerline.wire.spec import MAX_DATAGRAM, PROTOCOL_VERSION, TYPE_OVERLAY

TXID = bytes(range(1, 9))
SENDER = bytes(range(0x20, 0x40))
TOKEN = bytes(range(0xA0, 0xA8))
MAC = bytes(range(0xF0, 0x100))
TARGET = bytes(range(0x40, 0x40 + NODE_ID_SIZE))
KEY1 = b"\x11" * PUBLIC_KEY_SIZE
KEY2 = b"\x22" * PUBLIC_KEY_SIZE
V4: Addr = ("192.0.2.7", 8080)
V4_BYTES = b"\x04\xc0\x00\x02\x07\x1f\x90"
V6: Addr = ("2001:db8::1", 443)
V6_BYTES = b"\x06" + bytes.fromhex("20010db8000000000000000000000001") + b"\x01\xbb"
BODY_BUDGET = MAX_DATAGRAM - OVERLAY_MIN_SIZE
"""Bytes left for a body in the largest datagram."""
REPLIES = frozenset(Kind) - REQUESTS


def head(kind: int, flags: int = 0) -> bytes:
    return bytes([TYPE_OVERLAY, PROTOCOL_VERSION, kind, flags]) + TXID + SENDER


def header(kind: Kind, flags: int = 0) -> Header:
    return Header(kind=kind, flags=flags, txid=TXID, sender=SENDER)


# (header, body, exact bytes before the MAC): both directions are checked against this table.
VECTORS: list[tuple[Header, Body, bytes]] = [
    (header(Kind.PING), Ping(), head(0x01) + NO_TOKEN),
    (
        header(Kind.PING, FLAG_MEMBER | FLAG_ANONYMOUS),
        Ping(token=TOKEN, padding=3),
        head(0x01, 0x03) + TOKEN + bytes(3),
    ),
    (header(Kind.PONG), Pong(observed=V4, token=TOKEN), head(0x02) + TOKEN + V4_BYTES),
    (
        header(Kind.PONG, FLAG_MEMBER | FLAG_TRUNCATED),
        Pong(observed=V6, token=TOKEN),
        head(0x02, 0x05) + TOKEN + V6_BYTES,
    ),
    (
        header(Kind.FIND_NODE, FLAG_MEMBER),
        FindNode(target=TARGET),
        head(0x03, 0x01) + NO_TOKEN + TARGET,
    ),
    (
        header(Kind.FIND_VALUE, FLAG_ANONYMOUS),
        FindValue(key=TARGET, token=TOKEN, padding=2),
        head(0x04, 0x02) + TOKEN + TARGET + b"\x00\x00",
    ),
    (
        header(Kind.NODES),
        Nodes(observed=V4, token=TOKEN),
        head(0x05) + TOKEN + V4_BYTES + b"\x00" + b"\x00",
    ),
    (
        header(Kind.NODES, FLAG_TRUNCATED),
        Nodes(
            observed=V6,
            token=TOKEN,
            contacts=(Contact(KEY1, V4), Contact(KEY2, V6)),
            records=(b"", b"rec"),
        ),
        head(0x05, 0x04)
        + TOKEN
        + V6_BYTES
        + b"\x02"
        + KEY1
        + V4_BYTES
        + KEY2
        + V6_BYTES
        + b"\x02"
        + b"\x00\x00"
        + b"\x00\x03rec",
    ),
    (header(Kind.STORE), Store(token=TOKEN, record=b"abc"), head(0x06) + TOKEN + b"\x00\x03abc"),
    (
        header(Kind.STORE_ACK, FLAG_MEMBER),
        StoreAck(status=StoreStatus.BUSY, token=TOKEN),
        head(0x07, 0x01) + b"\x05" + TOKEN + bytes(8),
    ),
    (
        header(Kind.STORE_ACK, FLAG_TRUNCATED),
        StoreAck(status=StoreStatus.STALE, token=TOKEN, held_seq=0x0102030405060708),
        head(0x07, 0x04) + b"\x03" + TOKEN + b"\x01\x02\x03\x04\x05\x06\x07\x08",
    ),
    (
        header(Kind.STORE_ACK),
        StoreAck(status=StoreStatus.STORED, token=NO_TOKEN, held_seq=2**64 - 1),
        head(0x07) + b"\x00" + NO_TOKEN + b"\xff" * 8,
    ),
    (
        header(Kind.INTRODUCE),
        Introduce(token=TOKEN, target=KEY1, candidates=(V4, V6), initiation=b"\x50init"),
        head(0x08) + TOKEN + KEY1 + b"\x02" + V4_BYTES + V6_BYTES + b"\x00\x05\x50init",
    ),
    (
        header(Kind.INTRODUCTION, FLAG_MEMBER),
        Introduction(token=NO_TOKEN, caller=KEY2, candidates=(V4,)),
        head(0x09, 0x01) + NO_TOKEN + KEY2 + b"\x01" + V4_BYTES + b"\x00\x00",
    ),
    (
        header(Kind.INTRO_ACK, FLAG_TRUNCATED),
        IntroAck(status=IntroStatus.NOT_MY_CLIENT, token=TOKEN),
        head(0x0A, 0x04) + b"\x01" + TOKEN,
    ),
    (
        header(Kind.RELAY_OPEN),
        RelayOpen(token=TOKEN, target=KEY1),
        head(0x0B) + TOKEN + KEY1,
    ),
    (
        header(Kind.RELAY_OPENED, FLAG_FULL),
        RelayOpened(status=RelayStatus.OPENED, token=TOKEN, channel=0xDEADBEEF),
        head(0x0C, 0x08) + b"\x00" + TOKEN + b"\xde\xad\xbe\xef",
    ),
]
VECTOR_IDS = [f"{h.kind.name}-{len(b)}-{i}" for i, (h, _, b) in enumerate(VECTORS)]
PADDED = (Ping, FindNode, FindValue)
"""Bodies that end in zero padding: a shorter datagram may still be a valid one."""
UNPADDED = [v for v in VECTORS if not isinstance(v[1], PADDED)]
UNPADDED_IDS = [VECTOR_IDS[i] for i, v in enumerate(VECTORS) if not isinstance(v[1], PADDED)]
VECTOR_FOR_KIND = {h.kind: b for h, _, b in reversed(VECTORS)}
"""One valid encoding (without MAC) per kind: the first in the table."""
BODY_FOR_KIND = {h.kind: body for h, body, _ in reversed(VECTORS)}


def test_sizes_and_values_are_pinned() -> None:
    assert (OVERLAY_HEADER_SIZE, OVERLAY_MAC_SIZE, OVERLAY_MIN_SIZE) == (44, 16, 60)
    assert (TOKEN_SIZE, NODE_ID_SIZE, PUBLIC_KEY_SIZE) == (8, 20, 32)
    assert TYPE_OVERLAY == 0x54
    assert [int(k) for k in Kind] == list(range(1, 13))
    assert [int(s) for s in RelayStatus] == list(range(4))
    assert [int(s) for s in StoreStatus] == list(range(6))
    assert (FLAG_MEMBER, FLAG_ANONYMOUS, FLAG_TRUNCATED, FLAG_FULL) == (0x01, 0x02, 0x04, 0x08)
    assert {
        Kind.PING,
        Kind.FIND_NODE,
        Kind.FIND_VALUE,
        Kind.STORE,
        Kind.INTRODUCE,
        Kind.INTRODUCTION,
        Kind.RELAY_OPEN,
    } == REQUESTS
    assert {Kind.PONG, Kind.NODES, Kind.STORE_ACK, Kind.INTRO_ACK, Kind.RELAY_OPENED} == REPLIES
    assert {h.kind for h, _, _ in VECTORS} == set(Kind)


@pytest.mark.parametrize(("hdr", "body", "data"), VECTORS, ids=VECTOR_IDS)
def test_encode_matches_vector(hdr: Header, body: Body, data: bytes) -> None:
    assert encode_overlay(hdr, body) == data


@pytest.mark.parametrize(("hdr", "body", "data"), VECTORS, ids=VECTOR_IDS)
def test_decode_matches_vector(hdr: Header, body: Body, data: bytes) -> None:
    msg = decode_overlay(data + MAC)
    assert (msg.header, msg.body) == (hdr, body)
    assert msg.mac == MAC
    assert msg.signed_part == data


def test_the_mac_is_the_last_16_bytes_whatever_they_hold() -> None:
    """The codec checks no MAC: all zeros (anonymous) or anything else parses the same."""
    _, body, data = VECTORS[1]
    for mac in (bytes(OVERLAY_MAC_SIZE), b"\xff" * OVERLAY_MAC_SIZE, MAC):
        msg = decode_overlay(data + mac)
        assert msg.body == body and msg.mac == mac and msg.signed_part == data


# -- rejection: lengths --------------------------------------------------------------------------
@pytest.mark.parametrize(("hdr", "body", "data"), VECTORS, ids=VECTOR_IDS)
def test_datagrams_shorter_than_header_and_mac_are_rejected(
    hdr: Header, body: Body, data: bytes
) -> None:
    full = data + MAC
    for n in range(OVERLAY_MIN_SIZE):
        with pytest.raises(DecodeError, match="out of range"):
            decode_overlay(full[:n])


@pytest.mark.parametrize("kind", list(Kind))
def test_header_and_mac_without_a_body_are_rejected(kind: Kind) -> None:
    """60 bytes pass the length check, but no kind has an empty body."""
    data = head(kind) + MAC
    assert len(data) == OVERLAY_MIN_SIZE
    with pytest.raises(DecodeError, match="need"):
        decode_overlay(data)


@pytest.mark.parametrize(("hdr", "body", "data"), UNPADDED, ids=UNPADDED_IDS)
def test_every_truncated_body_is_rejected(hdr: Header, body: Body, data: bytes) -> None:
    """Without padding every field has an explicit length: a short body is an error."""
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            decode_overlay(data[:n] + MAC)


@pytest.mark.parametrize(("hdr", "body", "data"), UNPADDED, ids=UNPADDED_IDS)
def test_trailing_bytes_are_rejected(hdr: Header, body: Body, data: bytes) -> None:
    for extra in (b"\x00", b"\xff", bytes(16)):
        with pytest.raises(DecodeError, match="trailing"):
            decode_overlay(data + extra + MAC)


def test_largest_datagram_is_accepted_and_one_more_byte_is_not() -> None:
    padding = BODY_BUDGET - TOKEN_SIZE
    data = encode_overlay(header(Kind.PING), Ping(padding=padding))
    assert len(data) + OVERLAY_MAC_SIZE == MAX_DATAGRAM
    assert decode_overlay(data + MAC).body == Ping(padding=padding)
    for size in (MAX_DATAGRAM + 1, MAX_DATAGRAM + 100, 65_535, 1 << 20):
        with pytest.raises(DecodeError, match="out of range"):
            decode_overlay(data + bytes(size - len(data) - OVERLAY_MAC_SIZE) + MAC)


# -- rejection: header -----------------------------------------------------------------------------
def test_every_other_packet_type_is_rejected() -> None:
    data = VECTORS[0][2] + MAC
    for first in range(256):
        if first != TYPE_OVERLAY:
            with pytest.raises(DecodeError, match="not an overlay"):
                decode_overlay(bytes([first]) + data[1:])


def test_every_wrong_version_is_rejected() -> None:
    data = VECTORS[0][2] + MAC
    for version in range(256):
        if version != PROTOCOL_VERSION:
            with pytest.raises(DecodeError, match="version"):
                decode_overlay(data[:1] + bytes([version]) + data[2:])


def test_every_unknown_kind_is_rejected() -> None:
    for kind in range(256):
        if kind not in set(Kind):
            for body in (NO_TOKEN, TOKEN + TARGET + bytes(64)):
                with pytest.raises(DecodeError, match="unknown overlay kind"):
                    decode_overlay(head(kind) + body + MAC)


@pytest.mark.parametrize(("hdr", "body", "data"), VECTORS, ids=VECTOR_IDS)
def test_every_unknown_flag_is_rejected(hdr: Header, body: Body, data: bytes) -> None:
    for flags in range(256):
        patched = data[:3] + bytes([flags]) + data[4:] + MAC
        if flags & ~(FLAG_MEMBER | FLAG_ANONYMOUS | FLAG_TRUNCATED | FLAG_FULL):
            with pytest.raises(DecodeError, match="unknown flags"):
                decode_overlay(patched)


@pytest.mark.parametrize("kind", sorted(REPLIES))
def test_anonymous_flag_on_a_reply_is_rejected(kind: Kind) -> None:
    data = VECTOR_FOR_KIND[kind]
    for flags in (FLAG_ANONYMOUS, FLAG_ANONYMOUS | FLAG_MEMBER, FLAG_ANONYMOUS | FLAG_TRUNCATED):
        with pytest.raises(DecodeError, match="only a request may be anonymous"):
            decode_overlay(data[:3] + bytes([flags]) + data[4:] + MAC)


@pytest.mark.parametrize("kind", sorted(REQUESTS))
def test_truncated_flag_on_a_request_is_rejected(kind: Kind) -> None:
    data = VECTOR_FOR_KIND[kind]
    for flags in (FLAG_TRUNCATED, FLAG_TRUNCATED | FLAG_MEMBER, FLAG_FULL):
        with pytest.raises(DecodeError, match="only a reply may be truncated or full"):
            decode_overlay(data[:3] + bytes([flags]) + data[4:] + MAC)


@pytest.mark.parametrize("kind", list(Kind))
def test_every_allowed_flag_combination_is_accepted(kind: Kind) -> None:
    data = VECTOR_FOR_KIND[kind]
    allowed = FLAG_MEMBER | (FLAG_ANONYMOUS if kind in REQUESTS else FLAG_TRUNCATED | FLAG_FULL)
    for flags in range(16):
        if flags & ~allowed == 0:
            patched = data[:3] + bytes([flags]) + data[4:]
            msg = decode_overlay(patched + MAC)
            assert msg.header.flags == flags
            assert encode_overlay(msg.header, msg.body) == patched


# -- rejection: bodies ----------------------------------------------------------------------------
def contacts_bytes(n: int, addr: bytes = V4_BYTES) -> bytes:
    return b"".join(bytes([i]) * PUBLIC_KEY_SIZE + addr for i in range(n))


def test_contacts_over_the_limit_are_rejected() -> None:
    nodes = head(Kind.NODES) + TOKEN + V4_BYTES
    full = nodes + bytes([MAX_CONTACTS]) + contacts_bytes(MAX_CONTACTS) + b"\x00"
    body = decode_overlay(full + MAC).body
    assert isinstance(body, Nodes) and len(body.contacts) == MAX_CONTACTS
    over = nodes + bytes([MAX_CONTACTS + 1]) + contacts_bytes(MAX_CONTACTS + 1) + b"\x00"
    assert len(over) + OVERLAY_MAC_SIZE <= MAX_DATAGRAM  # rejected for the count, not the size
    for data in (over, nodes + b"\xff" + b"\x00"):
        with pytest.raises(DecodeError, match="contacts exceed"):
            decode_overlay(data + MAC)


def test_records_over_the_limit_are_rejected() -> None:
    nodes = head(Kind.NODES) + TOKEN + V4_BYTES + b"\x00"
    full = nodes + bytes([MAX_RECORDS_PER_REPLY]) + b"\x00\x00" * MAX_RECORDS_PER_REPLY
    body = decode_overlay(full + MAC).body
    assert isinstance(body, Nodes) and body.records == (b"",) * MAX_RECORDS_PER_REPLY
    over = nodes + bytes([MAX_RECORDS_PER_REPLY + 1]) + b"\x00\x00" * (MAX_RECORDS_PER_REPLY + 1)
    for data in (over, nodes + b"\xff"):
        with pytest.raises(DecodeError, match="records exceed"):
            decode_overlay(data + MAC)


def vbytes(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


@pytest.mark.parametrize(
    "prefix",
    [
        head(Kind.NODES) + TOKEN + V4_BYTES + b"\x00\x01",
        head(Kind.NODES) + TOKEN + V4_BYTES + b"\x00\x02" + vbytes(b"ok"),
    ],
    ids=["first-record", "second-record"],
)
def test_record_in_a_reply_over_the_size_limit_is_rejected(prefix: bytes) -> None:
    largest = prefix + vbytes(b"\xaa" * MAX_RECORD_SIZE) + MAC
    assert len(largest) <= MAX_DATAGRAM
    msg = decode_overlay(largest)
    assert encode_overlay(msg.header, msg.body) + MAC == largest
    over = prefix + vbytes(b"\xaa" * (MAX_RECORD_SIZE + 1)) + MAC
    assert len(over) <= MAX_DATAGRAM  # rejected for the record's size, not the datagram's
    for data in (over, prefix + b"\xff\xff" + MAC):
        with pytest.raises(DecodeError, match="exceeds limit"):
            decode_overlay(data)


STORE_RECORD_MAX = BODY_BUDGET - TOKEN_SIZE - 2
"""A STORE's record is bounded by the datagram only: the receiver answers INVALID to an
oversize record instead of dropping the STORE unseen."""


@pytest.mark.parametrize("size", [0, MAX_RECORD_SIZE, MAX_RECORD_SIZE + 1, STORE_RECORD_MAX])
def test_store_record_is_bounded_by_the_datagram(size: int) -> None:
    body = Store(token=TOKEN, record=b"\xaa" * size)
    data = encode_overlay(header(Kind.STORE), body)
    assert data == head(Kind.STORE) + TOKEN + vbytes(body.record)
    assert decode_overlay(data + MAC).body == body


def test_store_record_over_the_datagram_is_rejected() -> None:
    prefix = head(Kind.STORE) + TOKEN
    for claimed in (STORE_RECORD_MAX + 1, MAX_DATAGRAM, MAX_DATAGRAM + 1, 0xFFFF):
        with pytest.raises(DecodeError):  # the length says more than the datagram holds
            decode_overlay(prefix + claimed.to_bytes(2, "big") + bytes(STORE_RECORD_MAX) + MAC)
    for size in (STORE_RECORD_MAX + 1, 0xFFFF):
        with pytest.raises(ValueError, match="too large") as info:
            encode_overlay(header(Kind.STORE), Store(token=TOKEN, record=bytes(size)))
        assert not isinstance(info.value, DecodeError)


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (Kind.PING, NO_TOKEN),
        (Kind.FIND_NODE, TOKEN + TARGET),
        (Kind.FIND_VALUE, NO_TOKEN + TARGET),
    ],
)
def test_nonzero_padding_is_rejected(kind: Kind, body: bytes) -> None:
    for n in (1, 2, 7):
        decoded = decode_overlay(head(kind) + body + bytes(n) + MAC).body
        assert isinstance(decoded, PADDED) and decoded.padding == n
        for i in range(n):
            for value in (0x01, 0x80, 0xFF):
                pad = bytearray(n)
                pad[i] = value
                with pytest.raises(DecodeError, match="padding"):
                    decode_overlay(head(kind) + body + bytes(pad) + MAC)


UNKNOWN_FAMILIES = [f for f in range(256) if f not in (4, 6)]


def family_cases(family: int) -> list[bytes]:
    """A bad address family where each kind of message holds an address."""
    bad = bytes([family]) + bytes(16) + b"\x00\x01"
    return [
        head(Kind.PONG) + TOKEN + bad,
        head(Kind.NODES) + TOKEN + bad + b"\x00\x00",
        head(Kind.NODES) + TOKEN + V4_BYTES + b"\x01" + KEY1 + bad + b"\x00",
        head(Kind.NODES) + TOKEN + V4_BYTES + b"\x02" + KEY1 + V6_BYTES + KEY2 + bad + b"\x00",
    ]


def test_every_unknown_address_family_is_rejected() -> None:
    for family in UNKNOWN_FAMILIES:
        for data in family_cases(family):
            with pytest.raises(DecodeError, match="address family"):
                decode_overlay(data + MAC)


def test_address_family_and_length_must_agree() -> None:
    """An IPv4 family with IPv6 bytes leaves bytes over; an IPv6 family with IPv4 bytes is short."""
    v4_as_v6 = b"\x06" + V4_BYTES[1:]
    v6_as_v4 = b"\x04" + V6_BYTES[1:]
    for addr in (v4_as_v6, v6_as_v4):
        with pytest.raises(DecodeError):
            decode_overlay(head(Kind.PONG) + TOKEN + addr + MAC)


def test_every_unknown_store_status_is_rejected() -> None:
    for status in range(256):
        data = head(Kind.STORE_ACK) + bytes([status]) + TOKEN + bytes(8) + MAC
        if status in set(StoreStatus):
            assert decode_overlay(data).body == StoreAck(status=StoreStatus(status), token=TOKEN)
        else:
            with pytest.raises(DecodeError, match="store status"):
                decode_overlay(data)


# -- the largest reply -------------------------------------------------------------------------
def expected_size(body: Nodes) -> int:
    return (
        OVERLAY_MIN_SIZE
        + TOKEN_SIZE
        + addr_size(body.observed)
        + 1
        + sum(contact_size(c) for c in body.contacts)
        + 1
        + sum(2 + len(r) for r in body.records)
    )


def check_fits_or_refused(hdr: Header, body: Nodes) -> None:
    """A reply either encodes to a datagram within MAX_DATAGRAM or raises ValueError."""
    size = expected_size(body)
    if size <= MAX_DATAGRAM:
        data = encode_overlay(hdr, body)
        assert len(data) + OVERLAY_MAC_SIZE == size
        assert decode_overlay(data + MAC).body == body
    else:
        with pytest.raises(ValueError, match="too large") as info:
            encode_overlay(hdr, body)
        assert not isinstance(info.value, DecodeError)


def test_largest_nodes_reply_fits_or_is_refused() -> None:
    contacts = tuple(
        Contact(bytes([i]) * PUBLIC_KEY_SIZE, (f"2001:db8:ffff:ffff:ffff:ffff:ffff:{i:x}", 65535))
        for i in range(MAX_CONTACTS)
    )
    records = tuple(bytes([i]) * MAX_RECORD_SIZE for i in range(MAX_RECORDS_PER_REPLY))
    observed: Addr = ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 65535)
    body = Nodes(observed=observed, token=TOKEN, contacts=contacts, records=records)
    assert expected_size(body) > MAX_DATAGRAM  # the caps allow more than one datagram holds
    check_fits_or_refused(header(Kind.NODES, FLAG_TRUNCATED), body)
    # Contacts alone at their cap always fit; records at their cap do not even alone.
    check_fits_or_refused(
        header(Kind.NODES), Nodes(observed=observed, token=TOKEN, contacts=contacts)
    )
    assert expected_size(Nodes(observed=observed, token=TOKEN, contacts=contacts)) <= MAX_DATAGRAM
    alone = Nodes(observed=observed, token=TOKEN, records=records)
    assert expected_size(alone) > MAX_DATAGRAM
    check_fits_or_refused(header(Kind.NODES), alone)


# -- the encoder refuses what it could not encode ------------------------------------------------
def encode(kind: Kind, body: Body, flags: int = 0) -> Callable[[], bytes]:
    return lambda: encode_overlay(header(kind, flags), body)


BAD_TOKENS = [b"", TOKEN[:-1], TOKEN + b"\x00"]
BAD_IDS = [b"", TARGET[:-1], TARGET + b"\x00"]
BAD_ADDRS: list[Addr] = [
    ("192.0.2.1", -1),
    ("192.0.2.1", 65536),
    ("2001:db8::1", 1 << 20),
    ("example.com", 1),
    ("", 1),
    ("192.0.2", 1),
    ("256.0.0.1", 1),
    ("2001:db8::g", 1),
    ("01.2.3.4", 1),
]
ENCODER_ERRORS: list[Callable[[], bytes]] = [
    lambda: encode_overlay(Header(kind=Kind.PING, flags=0, txid=TXID[:-1], sender=SENDER), Ping()),
    lambda: encode_overlay(
        Header(kind=Kind.PING, flags=0, txid=TXID + b"\x00", sender=SENDER), Ping()
    ),
    lambda: encode_overlay(Header(kind=Kind.PING, flags=0, txid=TXID, sender=SENDER[:-1]), Ping()),
    lambda: encode_overlay(Header(kind=Kind.PING, flags=0, txid=TXID, sender=SENDER * 2), Ping()),
    encode(Kind.PING, Ping(), flags=0x08),
    encode(Kind.PING, Ping(), flags=0x80),
    encode(Kind.PONG, Pong(observed=V4, token=TOKEN), flags=0x100),
    encode(Kind.PING, Ping(), flags=-1),
    encode(Kind.PING, Ping(padding=-1)),
    encode(Kind.PING, Ping(padding=BODY_BUDGET - TOKEN_SIZE + 1)),
    encode(Kind.FIND_NODE, FindNode(target=TARGET, padding=BODY_BUDGET - TOKEN_SIZE - 19)),
    encode(Kind.FIND_VALUE, FindValue(key=TARGET, padding=BODY_BUDGET)),
    *(encode(Kind.PING, Ping(token=t)) for t in BAD_TOKENS),
    *(encode(Kind.PONG, Pong(observed=V4, token=t)) for t in BAD_TOKENS),
    *(encode(Kind.FIND_NODE, FindNode(target=TARGET, token=t)) for t in BAD_TOKENS),
    *(encode(Kind.FIND_VALUE, FindValue(key=TARGET, token=t)) for t in BAD_TOKENS),
    *(encode(Kind.NODES, Nodes(observed=V4, token=t)) for t in BAD_TOKENS),
    *(encode(Kind.STORE, Store(token=t, record=b"")) for t in BAD_TOKENS),
    *(encode(Kind.STORE_ACK, StoreAck(status=StoreStatus.STORED, token=t)) for t in BAD_TOKENS),
    *(encode(Kind.FIND_NODE, FindNode(target=t)) for t in BAD_IDS),
    *(encode(Kind.FIND_VALUE, FindValue(key=t)) for t in BAD_IDS),
    *(encode(Kind.PONG, Pong(observed=a, token=TOKEN)) for a in BAD_ADDRS),
    *(encode(Kind.NODES, Nodes(observed=a, token=TOKEN)) for a in BAD_ADDRS),
    *(
        encode(Kind.NODES, Nodes(observed=V4, token=TOKEN, contacts=(Contact(KEY1, a),)))
        for a in BAD_ADDRS
    ),
    encode(
        Kind.NODES,
        Nodes(observed=V4, token=TOKEN, contacts=(Contact(KEY1, V4),) * (MAX_CONTACTS + 1)),
    ),
    encode(
        Kind.NODES, Nodes(observed=V4, token=TOKEN, records=(b"",) * (MAX_RECORDS_PER_REPLY + 1))
    ),
    encode(Kind.NODES, Nodes(observed=V4, token=TOKEN, records=(bytes(MAX_RECORD_SIZE + 1),))),
    encode(
        Kind.NODES,
        Nodes(observed=V4, token=TOKEN, records=(b"", bytes(MAX_RECORD_SIZE + 1))),
    ),
    encode(Kind.STORE, Store(token=TOKEN, record=bytes(STORE_RECORD_MAX + 1))),
]


@pytest.mark.parametrize("make", ENCODER_ERRORS)
def test_encoder_rejects_invalid_fields(make: Callable[[], bytes]) -> None:
    """ValueError from the encoder is a local bug, not remote garbage: never a DecodeError."""
    with pytest.raises(ValueError) as info:
        make()
    assert not isinstance(info.value, DecodeError)


EXPECTED_BODY = {
    Kind.PING: Ping,
    Kind.PONG: Pong,
    Kind.FIND_NODE: FindNode,
    Kind.FIND_VALUE: FindValue,
    Kind.NODES: Nodes,
    Kind.STORE: Store,
    Kind.STORE_ACK: StoreAck,
    Kind.INTRODUCE: Introduce,
    Kind.INTRODUCTION: Introduction,
    Kind.INTRO_ACK: IntroAck,
    Kind.RELAY_OPEN: RelayOpen,
    Kind.RELAY_OPENED: RelayOpened,
}


@pytest.mark.parametrize("kind", list(Kind))
def test_encoder_rejects_a_body_of_another_kind(kind: Kind) -> None:
    for _, body, _ in VECTORS:
        if not isinstance(body, EXPECTED_BODY[kind]):
            with pytest.raises(ValueError, match="does not match kind"):
                encode_overlay(header(kind), body)


# -- the encoder never writes what its own decoder rejects ----------------------------------
@pytest.mark.parametrize(
    ("kind", "flags"),
    [pytest.param(k, FLAG_ANONYMOUS, id=f"anonymous-{k.name}") for k in sorted(REPLIES)]
    + [pytest.param(k, FLAG_TRUNCATED, id=f"truncated-{k.name}") for k in sorted(REQUESTS)],
)
def test_encoder_rejects_flags_the_kind_may_not_carry(kind: Kind, flags: int) -> None:
    with pytest.raises(ValueError):
        encode_overlay(header(kind, flags), BODY_FOR_KIND[kind])


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_encoder_rejects_a_contact_key_of_the_wrong_length(length: int) -> None:
    body = Nodes(observed=V4, token=TOKEN, contacts=(Contact(b"\x01" * length, V4),))
    with pytest.raises(ValueError):
        encode_overlay(header(Kind.NODES), body)


@pytest.mark.parametrize("held_seq", [-1, 2**64])
def test_encoder_rejects_a_held_seq_out_of_range(held_seq: int) -> None:
    body = StoreAck(status=StoreStatus.STALE, token=TOKEN, held_seq=held_seq)
    with pytest.raises(ValueError):
        encode_overlay(header(Kind.STORE_ACK), body)


@pytest.mark.parametrize("size", [0x10000, 0x20000])
def test_encoder_rejects_a_store_record_of_64_kib_or_more(size: int) -> None:
    with pytest.raises(ValueError):
        encode_overlay(header(Kind.STORE), Store(token=TOKEN, record=bytes(size)))


def test_encoder_rejects_a_scoped_ipv6_address() -> None:
    with pytest.raises(ValueError):
        encode_overlay(header(Kind.PONG), Pong(observed=("fe80::1%eth0", 5), token=TOKEN))


# -- properties ------------------------------------------------------------------------------------
def fixed(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size, max_size=size)


ports = st.integers(0, 0xFFFF)
ipv4_addrs = st.tuples(st.ip_addresses(v=4).map(str), ports)
ipv6_addrs = st.tuples(st.ip_addresses(v=6).map(str), ports)
addrs = st.one_of(ipv4_addrs, ipv6_addrs)
tokens = st.one_of(st.just(NO_TOKEN), fixed(TOKEN_SIZE))
contacts = st.builds(Contact, fixed(PUBLIC_KEY_SIZE), addrs)
numbers = st.integers(0, 10**12 - 1).map(lambda n: f"{n:012d}")
encoded_records = st.builds(
    Record,
    number=numbers,
    public_key=fixed(PUBLIC_KEY_SIZE),
    seq=st.integers(0, 2**64 - 1),
    ttl_s=st.integers(1, 7200),
    presence=st.sampled_from(Presence),
    addresses=st.lists(st.tuples(st.sampled_from(CandidateKind), addrs), max_size=3).map(tuple),
    relays=st.lists(contacts, max_size=2).map(tuple),
    forward_to=st.none() | numbers,
    signature=fixed(SIGNATURE_SIZE),
).map(Record.encode)
record_blobs = st.one_of(encoded_records, st.binary(max_size=MAX_RECORD_SIZE))


@st.composite
def nodes_bodies(draw: st.DrawFn, *, fit: bool = True) -> Nodes:
    """A Nodes body; with ``fit`` its records are cut so the reply fits one datagram."""
    observed = draw(addrs)
    cs = tuple(draw(st.lists(contacts, max_size=MAX_CONTACTS)))
    budget = BODY_BUDGET - TOKEN_SIZE - addr_size(observed) - 2
    budget -= sum(contact_size(c) for c in cs)
    records: list[bytes] = []
    for _ in range(draw(st.integers(0, MAX_RECORDS_PER_REPLY))):
        record = draw(record_blobs)
        if fit:
            if budget < 2:
                break
            record = record[: budget - 2]
            budget -= 2 + len(record)
        records.append(record)
    return Nodes(observed=observed, token=draw(tokens), contacts=cs, records=tuple(records))


BODIES: dict[Kind, st.SearchStrategy[Body]] = {
    Kind.INTRODUCE: st.builds(
        Introduce,
        token=tokens,
        target=fixed(PUBLIC_KEY_SIZE),
        candidates=st.lists(addrs, min_size=1, max_size=8).map(tuple),
        initiation=st.binary(max_size=MAX_INITIATION),
    ),
    Kind.INTRODUCTION: st.builds(
        Introduction,
        token=tokens,
        caller=fixed(PUBLIC_KEY_SIZE),
        candidates=st.lists(addrs, min_size=1, max_size=8).map(tuple),
        initiation=st.binary(max_size=MAX_INITIATION),
    ),
    Kind.INTRO_ACK: st.builds(IntroAck, status=st.sampled_from(IntroStatus), token=tokens),
    Kind.RELAY_OPEN: st.builds(RelayOpen, token=tokens, target=fixed(PUBLIC_KEY_SIZE)),
    Kind.RELAY_OPENED: st.builds(
        RelayOpened,
        status=st.sampled_from(RelayStatus),
        token=tokens,
        channel=st.integers(0, 2**32 - 1),
    ),
    Kind.PING: st.builds(Ping, token=tokens, padding=st.integers(0, BODY_BUDGET - TOKEN_SIZE)),
    Kind.PONG: st.builds(Pong, observed=addrs, token=tokens),
    Kind.FIND_NODE: st.builds(
        FindNode,
        target=fixed(NODE_ID_SIZE),
        token=tokens,
        padding=st.integers(0, BODY_BUDGET - TOKEN_SIZE - NODE_ID_SIZE),
    ),
    Kind.FIND_VALUE: st.builds(
        FindValue,
        key=fixed(NODE_ID_SIZE),
        token=tokens,
        padding=st.integers(0, BODY_BUDGET - TOKEN_SIZE - NODE_ID_SIZE),
    ),
    Kind.NODES: nodes_bodies(),
    Kind.STORE: st.builds(
        Store,
        token=tokens,
        record=st.one_of(record_blobs, st.binary(max_size=STORE_RECORD_MAX)),
    ),
    Kind.STORE_ACK: st.builds(
        StoreAck,
        status=st.sampled_from(StoreStatus),
        token=tokens,
        held_seq=st.one_of(st.just(0), st.integers(0, 2**64 - 1)),
    ),
}


@st.composite
def headers(draw: st.DrawFn, kind: Kind) -> Header:
    allowed = FLAG_MEMBER | (FLAG_ANONYMOUS if kind in REQUESTS else FLAG_TRUNCATED)
    return Header(
        kind=kind,
        flags=draw(st.integers(0, 7)) & allowed,
        txid=draw(fixed(8)),
        sender=draw(fixed(PUBLIC_KEY_SIZE)),
    )


@st.composite
def messages(draw: st.DrawFn) -> tuple[Header, Body]:
    kind = draw(st.sampled_from(Kind))
    return draw(headers(kind)), draw(BODIES[kind])


def encoded(message: tuple[Header, Body]) -> bytes:
    return encode_overlay(*message) + MAC


@given(messages(), fixed(OVERLAY_MAC_SIZE))
def test_round_trip(message: tuple[Header, Body], mac: bytes) -> None:
    hdr, body = message
    data = encode_overlay(hdr, body)
    assert OVERLAY_HEADER_SIZE < len(data) <= MAX_DATAGRAM - OVERLAY_MAC_SIZE
    msg = decode_overlay(data + mac)
    assert (msg.header, msg.body) == (hdr, body)
    assert msg.signed_part == data
    assert msg.mac == mac


@given(st.sampled_from(Kind).flatmap(headers), fixed(OVERLAY_MAC_SIZE))
def test_header_is_the_first_44_bytes(hdr: Header, mac: bytes) -> None:
    data = encode_overlay(hdr, BODY_FOR_KIND[hdr.kind])
    assert (
        data[:OVERLAY_HEADER_SIZE]
        == bytes([TYPE_OVERLAY, PROTOCOL_VERSION, hdr.kind, hdr.flags]) + hdr.txid + hdr.sender
    )
    assert decode_overlay(data + mac).header == hdr


@given(st.one_of(BODIES[Kind.PONG], BODIES[Kind.NODES], BODIES[Kind.STORE]))
def test_body_sizes(body: Body) -> None:
    kind = next(k for k, t in EXPECTED_BODY.items() if isinstance(body, t))
    data = encode_overlay(header(kind), body)
    if isinstance(body, Pong):
        assert len(data) == OVERLAY_HEADER_SIZE + TOKEN_SIZE + addr_size(body.observed)
    elif isinstance(body, Nodes):
        assert len(data) + OVERLAY_MAC_SIZE == expected_size(body)
    elif isinstance(body, Store):
        assert len(data) == OVERLAY_HEADER_SIZE + TOKEN_SIZE + 2 + len(body.record)


@given(addrs)
def test_address_round_trip_and_size(addr: Addr) -> None:
    buf = Buffer()
    push_addr(buf, addr)
    data = buf.getvalue()
    assert len(data) == addr_size(addr) == (7 if data[0] == 4 else 19)
    reader = Buffer(data)
    assert pull_addr(reader) == addr
    reader.expect_end()


@given(contacts)
def test_contact_round_trip_and_size(contact: Contact) -> None:
    buf = Buffer()
    push_contact(buf, contact)
    data = buf.getvalue()
    assert len(data) == contact_size(contact)
    assert data[:PUBLIC_KEY_SIZE] == contact.public_key
    assert pull_contact(Buffer(data)) == contact


@given(nodes_bodies(fit=False), st.sampled_from([0, FLAG_MEMBER, FLAG_TRUNCATED]))
def test_any_nodes_reply_fits_or_is_refused(body: Nodes, flags: int) -> None:
    check_fits_or_refused(header(Kind.NODES, flags), body)


def check_total(data: bytes) -> None:
    """The parser's contract: a message that re-encodes to exactly ``data``, or DecodeError."""
    try:
        msg = decode_overlay(data)
    except DecodeError:
        return
    assert OVERLAY_MIN_SIZE <= len(data) <= MAX_DATAGRAM
    assert msg.signed_part + msg.mac == data
    assert len(msg.mac) == OVERLAY_MAC_SIZE
    assert encode_overlay(msg.header, msg.body) == msg.signed_part  # canonical: nothing ignored


def check_address_total(data: bytes) -> None:
    try:
        addr = pull_addr(Buffer(data))
    except DecodeError:
        return
    buf = Buffer()
    push_addr(buf, addr)
    assert data.startswith(buf.getvalue())


@given(st.binary(max_size=MAX_DATAGRAM + 16))
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


@given(st.binary(max_size=24))
def test_random_addresses_decode_or_raise_decode_error(data: bytes) -> None:
    check_address_total(data)
    check_address_total(b"\x04" + data)
    check_address_total(b"\x06" + data)


@given(
    st.sampled_from([*Kind, *Kind, 0x00, 0x08, 0xFF]),
    st.one_of(st.integers(0, 7), st.integers(0, 255)),
    st.sampled_from([PROTOCOL_VERSION, PROTOCOL_VERSION, 0, 2]),
    st.one_of(
        st.binary(max_size=64),
        st.binary(max_size=BODY_BUDGET + 8),
        st.tuples(
            fixed(TOKEN_SIZE),
            st.sampled_from([4, 6, 0, 5]),
            st.binary(max_size=40),
            st.integers(0, 20),
            st.binary(max_size=200),
        ).map(lambda t: t[0] + bytes([t[1]]) + t[2] + bytes([t[3]]) + t[4]),
    ),
    fixed(OVERLAY_MAC_SIZE),
)
def test_random_bodies_behind_a_plausible_header(
    kind: int, flags: int, version: int, body: bytes, mac: bytes
) -> None:
    check_total(
        bytes([TYPE_OVERLAY, version, kind, flags]) + TXID + SENDER + body + mac,
    )


@given(messages().map(encoded).flatmap(mutations))
def test_mutated_messages_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


@given(st.sampled_from([b + MAC for _, _, b in VECTORS]).flatmap(changed_mutations))
def test_mutated_vectors_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


def with_changed_mutation(original: bytes) -> st.SearchStrategy[tuple[bytes, bytes]]:
    return st.tuples(st.just(original), changed_mutations(original))


@given(messages().map(encoded).flatmap(with_changed_mutation))
def test_changed_messages_never_decode_to_the_original(pair: tuple[bytes, bytes]) -> None:
    """Canonical encoding, seen from the other side: no other bytes give the same message."""
    original, data = pair
    check_total(data)
    try:
        msg = decode_overlay(data)
    except DecodeError:
        return
    before = decode_overlay(original)
    assert (msg.header, msg.body, msg.mac) != (before.header, before.body, before.mac)
