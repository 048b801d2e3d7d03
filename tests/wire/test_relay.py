"""Relayed session packets, type 0x55 (protocol.md §11.2): both directions, every boundary.

``pull_relayed`` takes bytes straight off the socket (on a relay, from anyone), so for *any*
input it returns (channel, session packet) or raises ``DecodeError``, never another exception.
``push_relayed`` refuses with ``ValueError`` anything ``pull_relayed`` would refuse.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import (  # type: ignore[import-not-found, unused-ignore]
    changed_mutations,
    mutations,
)
from peerline.errors import DecodeError
from peerline.wire.relay import MAX_RELAYED, pull_relayed, push_relayed
from peerline.wire.spec import (
    MAX_DATAGRAM,
    PROTOCOL_VERSION,
    RELAY_HEADER_SIZE,
    TYPE_COOKIE_REPLY,
    TYPE_HANDSHAKE_INITIATION,
    TYPE_HANDSHAKE_RESPONSE,
    TYPE_OVERLAY,
    TYPE_RELAY,
    TYPE_TRANSPORT,
)

SESSION_TYPES = (
    TYPE_HANDSHAKE_INITIATION,
    TYPE_HANDSHAKE_RESPONSE,
    TYPE_COOKIE_REPLY,
    TYPE_TRANSPORT,
)
NOT_SESSION_TYPES = (0x00, 0x01, 0x03, 0x4F, TYPE_OVERLAY, TYPE_RELAY, 0x56, 0xFF)
TRANSPORT = bytes([TYPE_TRANSPORT]) + bytes(range(1, 30))


def test_vector() -> None:
    data = push_relayed(0x01020304, TRANSPORT)
    assert data == b"\x55\x01\x01\x02\x03\x04" + TRANSPORT
    assert len(data) == RELAY_HEADER_SIZE + len(TRANSPORT)
    assert pull_relayed(data) == (0x01020304, TRANSPORT)


@pytest.mark.parametrize("kind", SESSION_TYPES)
@pytest.mark.parametrize("channel", [0, 1, 0x7FFFFFFF, 0xFFFFFFFF])
def test_every_session_packet_type_round_trips(kind: int, channel: int) -> None:
    inner = bytes([kind]) + b"\xaa" * 40
    assert pull_relayed(push_relayed(channel, inner)) == (channel, inner)


def test_largest_session_packet_fits_one_datagram_and_one_more_byte_does_not() -> None:
    assert MAX_RELAYED == MAX_DATAGRAM - RELAY_HEADER_SIZE
    inner = bytes([TYPE_TRANSPORT]) + bytes(MAX_RELAYED - 1)
    data = push_relayed(7, inner)
    assert len(data) == MAX_DATAGRAM
    assert pull_relayed(data) == (7, inner)
    with pytest.raises(ValueError, match="at most"):
        push_relayed(7, inner + b"\x00")
    with pytest.raises(DecodeError):
        pull_relayed(data + b"\x00")


def test_one_byte_session_packet_is_the_smallest() -> None:
    inner = bytes([TYPE_TRANSPORT])
    data = push_relayed(9, inner)
    assert len(data) == RELAY_HEADER_SIZE + 1
    assert pull_relayed(data) == (9, inner)


def test_empty_inner_packet_is_refused_both_ways() -> None:
    with pytest.raises(ValueError, match="session packets"):
        push_relayed(1, b"")
    header = bytes((TYPE_RELAY, PROTOCOL_VERSION)) + (1).to_bytes(4, "big")
    with pytest.raises(DecodeError):
        pull_relayed(header)


@pytest.mark.parametrize("n", range(RELAY_HEADER_SIZE + 1))
def test_truncated_header_is_a_decode_error(n: int) -> None:
    with pytest.raises(DecodeError):
        pull_relayed(push_relayed(1, TRANSPORT)[:n])


@pytest.mark.parametrize("kind", NOT_SESSION_TYPES)
def test_only_session_packets_ride_inside_both_ways(kind: int) -> None:
    inner = bytes([kind]) + b"\x00" * 40
    with pytest.raises(ValueError, match="session packets"):
        push_relayed(1, inner)
    data = bytes((TYPE_RELAY, PROTOCOL_VERSION)) + (1).to_bytes(4, "big") + inner
    with pytest.raises(DecodeError, match="session packets"):
        pull_relayed(data)


@pytest.mark.parametrize("version", [0, PROTOCOL_VERSION + 1, 0xFF])
def test_wrong_version_is_a_decode_error(version: int) -> None:
    data = bytearray(push_relayed(1, TRANSPORT))
    data[1] = version
    with pytest.raises(DecodeError, match="version"):
        pull_relayed(bytes(data))


@pytest.mark.parametrize("kind", [TYPE_OVERLAY, TYPE_TRANSPORT, 0x00, 0x56])
def test_wrong_type_is_a_decode_error(kind: int) -> None:
    data = bytearray(push_relayed(1, TRANSPORT))
    data[0] = kind
    with pytest.raises(DecodeError, match="not a relayed"):
        pull_relayed(bytes(data))


@pytest.mark.parametrize("channel", [-1, 1 << 32])
def test_channel_out_of_range_is_refused(channel: int) -> None:
    with pytest.raises(ValueError, match="32 bits"):
        push_relayed(channel, TRANSPORT)


def check_total(data: bytes) -> None:
    """The parser's contract: a (channel, session packet) that re-encodes to ``data``, or
    DecodeError; any other exception fails the test."""
    try:
        channel, inner = pull_relayed(data)
    except DecodeError:
        return
    assert push_relayed(channel, inner) == data


valid_relayed = st.builds(
    push_relayed,
    st.integers(0, 0xFFFFFFFF),
    st.builds(
        lambda kind, body: bytes([kind]) + body,
        st.sampled_from(SESSION_TYPES),
        st.binary(max_size=200),
    ),
)


@given(valid_relayed)
def test_valid_relayed_datagrams_round_trip(data: bytes) -> None:
    check_total(data)
    assert len(pull_relayed(data)[1]) == len(data) - RELAY_HEADER_SIZE


@given(valid_relayed.flatmap(mutations))
def test_mutated_relayed_datagrams_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


@given(valid_relayed.flatmap(changed_mutations))
def test_changed_relayed_datagrams_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


@given(st.binary(max_size=MAX_DATAGRAM + 16))
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


@given(
    st.builds(
        lambda header, body: header + body,
        st.sampled_from([b"\x55\x01", b"\x55\x00", b"\x54\x01", b"\x55"]),
        st.binary(max_size=MAX_DATAGRAM),
    )
)
def test_near_relayed_headers_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)
