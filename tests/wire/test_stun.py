"""STUN codec (wire.stun): RFC 8489 Binding, checked against bytes from a real server."""

import contextlib

import hypothesis.strategies as st
import pytest
from hypothesis import given

from fuzzing import mutations  # type: ignore[import-not-found, unused-ignore]
from peerline.errors import DecodeError
from peerline.wire.stun import (
    BINDING_REQUEST,
    BINDING_SUCCESS,
    CHANGE_IP,
    CHANGE_PORT,
    decode_stun,
    encode_binding_request,
    encode_binding_success,
)

# A Binding success response captured from coturn 4.6.1 (Debian's `coturn`) answering our
# request with transaction id 01..0c from 127.0.0.1:40404: XOR-MAPPED-ADDRESS,
# MAPPED-ADDRESS, RESPONSE-ORIGIN, SOFTWARE and a FINGERPRINT we must verify.
COTURN_RESPONSE = bytes.fromhex(
    "010100442112a4420102030405060708090a0b0c002000080001bcc65e12a443"
    "0001000800019dd47f000001802b0008000187df7f00000180220014436f7475"
    "726e2d342e362e312027476f7273742780280004a714da91"
)


def test_a_real_servers_response_decodes() -> None:
    msg = decode_stun(COTURN_RESPONSE)
    assert msg.msg_type == BINDING_SUCCESS
    assert msg.txid == bytes(range(1, 13))
    assert msg.mapped == ("127.0.0.1", 40404)
    assert msg.origin == ("127.0.0.1", 34783)
    assert msg.software == "Coturn-4.6.1 'Gorst'"


def test_a_broken_fingerprint_is_refused() -> None:
    broken = COTURN_RESPONSE[:-1] + bytes([COTURN_RESPONSE[-1] ^ 1])
    with pytest.raises(DecodeError, match="FINGERPRINT"):
        decode_stun(broken)


@given(
    txid=st.binary(min_size=12, max_size=12),
    change=st.sampled_from([0, CHANGE_IP, CHANGE_PORT, CHANGE_IP | CHANGE_PORT]),
    pad=st.integers(0, 200),
)
def test_requests_round_trip(txid: bytes, change: int, pad: int) -> None:
    data = encode_binding_request(txid, change=change, pad_to=pad)
    msg = decode_stun(data)
    assert (msg.msg_type, msg.txid, msg.change) == (BINDING_REQUEST, txid, change)
    assert len(data) % 4 == 0 and len(data) >= pad


@given(
    txid=st.binary(min_size=12, max_size=12),
    host=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str),
    port=st.integers(0, 65535),
)
def test_success_responses_round_trip(txid: bytes, host: str, port: int) -> None:
    origin = ("192.0.2.1", 3478)
    msg = decode_stun(encode_binding_success(txid, (host, port), origin=origin, other=origin))
    assert msg.mapped == (host, port) and msg.origin == origin and msg.other == origin


@given(st.binary(max_size=600))
def test_random_bytes_only_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_stun(data)


@given(mutations(COTURN_RESPONSE))
def test_mutated_responses_only_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_stun(data)
