"""NAT-PMP codec (wire.natpmp): RFC 6886 §3, one vector table for both directions, checked
against bytes captured from a real gateway (Debian's miniupnpd 2.3.1 in the lab)."""

import contextlib

import hypothesis.strategies as st
import pytest
from hypothesis import given

from fuzzing import mutations  # type: ignore[import-not-found, unused-ignore]
from peerline.errors import DecodeError
from peerline.wire.natpmp import (
    ErrorResponse,
    ExternalAddressRequest,
    ExternalAddressResponse,
    MapRequest,
    MapResponse,
    Opcode,
    Request,
    Response,
    ResultCode,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    result_name,
)

# Captured from miniupnpd 2.3.1 (tests/netlab/miniupnpd.py) answering 10.1.0.2:4000, two
# seconds after it started, with WAN address 203.0.113.1.
MINIUPNPD_ADDRESS = bytes.fromhex("0080000000000002 cb007101".replace(" ", ""))
MINIUPNPD_MAP = bytes.fromhex("0081000000000002 0fa00fa00000003c".replace(" ", ""))
MINIUPNPD_DELETE = bytes.fromhex("0081000000000002 0fa0000000000000".replace(" ", ""))
# Its 8-byte answer to opcode 7 (unsupported opcode, §3.5): well-formed, but no opcode we send.
MINIUPNPD_BAD_OPCODE = bytes.fromhex("0087000500000001")
# The 8-byte form of a failed address request (RFC 6886 §3.5; miniupnpd hands versions other
# than 0 to its PCP code, so this one is written by hand).
SHORT_BAD_VERSION = bytes.fromhex("0080000100000002")

REQUESTS: list[tuple[Request, bytes]] = [
    (ExternalAddressRequest(), b"\x00\x00"),
    (
        MapRequest(internal_port=4000, external_port=4000, lifetime=7200),
        bytes.fromhex("0001 0000 0fa0 0fa0 00001c20".replace(" ", "")),
    ),
    (
        MapRequest(opcode=Opcode.MAP_TCP, internal_port=1, external_port=0, lifetime=1),
        bytes.fromhex("0002 0000 0001 0000 00000001".replace(" ", "")),
    ),
    (  # delete (§3.4): lifetime 0, suggested external port 0
        MapRequest(internal_port=4000, lifetime=0),
        bytes.fromhex("0001 0000 0fa0 0000 00000000".replace(" ", "")),
    ),
    (  # delete all of this client's mappings
        MapRequest(internal_port=0, lifetime=0),
        bytes.fromhex("0001 0000 0000 0000 00000000".replace(" ", "")),
    ),
]

RESPONSES: list[tuple[Response, bytes]] = [
    (ExternalAddressResponse(result=0, epoch=2, address="203.0.113.1"), MINIUPNPD_ADDRESS),
    (
        MapResponse(
            opcode=Opcode.MAP_UDP,
            result=0,
            epoch=2,
            internal_port=4000,
            external_port=4000,
            lifetime=60,
        ),
        MINIUPNPD_MAP,
    ),
    (
        MapResponse(
            opcode=Opcode.MAP_UDP,
            result=0,
            epoch=2,
            internal_port=4000,
            external_port=0,
            lifetime=0,
        ),
        MINIUPNPD_DELETE,
    ),
    (
        ErrorResponse(opcode=Opcode.EXTERNAL_ADDRESS, result=1, epoch=2),
        SHORT_BAD_VERSION,
    ),
    (  # a full-size failure keeps its fields (they mean nothing, but the size is legal)
        MapResponse(
            opcode=Opcode.MAP_UDP,
            result=ResultCode.NOT_AUTHORIZED,
            epoch=0xFFFFFFFF,
            internal_port=9,
            external_port=0,
            lifetime=0,
        ),
        bytes.fromhex("0081 0002 ffffffff 0009 0000 00000000".replace(" ", "")),
    ),
    (
        ExternalAddressResponse(result=ResultCode.NETWORK_FAILURE, epoch=7, address="0.0.0.0"),
        bytes.fromhex("0080 0003 00000007 00000000".replace(" ", "")),
    ),
]


@pytest.mark.parametrize(("msg", "data"), REQUESTS)
def test_requests_match_their_vectors(msg: Request, data: bytes) -> None:
    assert encode_request(msg) == data
    assert decode_request(data) == msg


@pytest.mark.parametrize(("msg", "data"), RESPONSES)
def test_responses_match_their_vectors(msg: Response, data: bytes) -> None:
    assert encode_response(msg) == data
    assert decode_response(data) == msg


@pytest.mark.parametrize("data", [d for _, d in REQUESTS])
def test_requests_are_exact_no_truncation_no_trailing_byte(data: bytes) -> None:
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            decode_request(data[:n])
    with pytest.raises(DecodeError):
        decode_request(data + b"\x00")


@pytest.mark.parametrize("data", [d for _, d in RESPONSES])
def test_responses_are_exact_no_truncation_no_trailing_byte(data: bytes) -> None:
    short_error_ok = data[2:4] != b"\x00\x00"  # a failure may be cut to its 8-byte header
    for n in range(len(data)):
        if n == 8 and short_error_ok:
            assert isinstance(decode_response(data[:n]), ErrorResponse)
            continue
        with pytest.raises(DecodeError):
            decode_response(data[:n])
    with pytest.raises(DecodeError):
        decode_response(data + b"\x00")


def test_an_8_byte_success_is_not_a_response() -> None:
    with pytest.raises(DecodeError):
        decode_response(MINIUPNPD_MAP[:8])


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x02\x00", "PCP's version 2 is not NAT-PMP"),
        (b"\x00\x80", "a response is not a request"),
        (b"\x00\x03", "unknown opcode"),
        (bytes.fromhex("0001 0000 0000 0000 00000001".replace(" ", "")), "port 0, not a delete"),
    ],
)
def test_bad_requests_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(DecodeError):
        decode_request(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\x02" + MINIUPNPD_MAP[1:],  # PCP version
        MINIUPNPD_MAP[:1] + b"\x01" + MINIUPNPD_MAP[2:],  # a request opcode
        MINIUPNPD_MAP[:1] + b"\x83" + MINIUPNPD_MAP[2:],  # unknown opcode
        MINIUPNPD_ADDRESS[:1] + b"\x81" + MINIUPNPD_ADDRESS[2:],  # map opcode, address size
        MINIUPNPD_BAD_OPCODE,
    ],
)
def test_bad_responses_are_refused(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_response(data)


def test_requests_and_events_validate_when_built() -> None:
    with pytest.raises(ValueError, match="internal port 0"):
        MapRequest(internal_port=0, lifetime=60)
    with pytest.raises(ValueError):
        MapRequest(internal_port=65536, lifetime=60)
    with pytest.raises(ValueError):
        MapRequest(internal_port=1, lifetime=2**32)
    with pytest.raises(ValueError):
        MapRequest(opcode=Opcode.EXTERNAL_ADDRESS, internal_port=1, lifetime=1)
    with pytest.raises(ValueError):
        ExternalAddressResponse(result=0, epoch=0, address="2001:db8::1")
    with pytest.raises(ValueError):
        ErrorResponse(opcode=Opcode.MAP_UDP, result=0, epoch=0)


def test_result_codes_have_names() -> None:
    assert result_name(ResultCode.NOT_AUTHORIZED) == "not-authorized"
    assert result_name(0) == "success"
    assert result_name(77) == "result 77"


ports = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)


@given(
    opcode=st.sampled_from([Opcode.MAP_UDP, Opcode.MAP_TCP]),
    internal=st.integers(1, 0xFFFF),
    external=ports,
    lifetime=u32,
)
def test_map_requests_round_trip(
    opcode: Opcode, internal: int, external: int, lifetime: int
) -> None:
    msg = MapRequest(
        opcode=opcode, internal_port=internal, external_port=external, lifetime=lifetime
    )
    data = encode_request(msg)
    assert len(data) == 12 and decode_request(data) == msg


map_responses = st.builds(
    MapResponse,
    opcode=st.sampled_from([Opcode.MAP_UDP, Opcode.MAP_TCP]),
    result=ports,
    epoch=u32,
    internal_port=ports,
    external_port=ports,
    lifetime=u32,
)


@given(map_responses)
def test_map_responses_round_trip(msg: MapResponse) -> None:
    data = encode_response(msg)
    assert len(data) == 16 and decode_response(data) == msg


@given(result=ports, epoch=u32, address=st.ip_addresses(v=4).map(str))
def test_address_responses_round_trip(result: int, epoch: int, address: str) -> None:
    msg = ExternalAddressResponse(result=result, epoch=epoch, address=address)
    data = encode_response(msg)
    assert len(data) == 12 and decode_response(data) == msg


@given(st.binary(max_size=40))
def test_random_bytes_only_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_response(data)
    with contextlib.suppress(DecodeError):
        decode_request(data)


@given(st.sampled_from([d for _, d in RESPONSES]).flatmap(mutations))
def test_mutated_responses_only_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_response(data)


@given(st.sampled_from([d for _, d in REQUESTS]).flatmap(mutations))
def test_mutated_requests_only_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_request(data)
