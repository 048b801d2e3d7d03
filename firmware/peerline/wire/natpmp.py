"""NAT-PMP (RFC 6886): the codec, bounded and exact, for messages to and from port 5351.

A phone asks its default gateway for the gateway's external IPv4 address (opcode 0) and for a
UDP mapping of its own port (opcode 1); lifetime 0 deletes a mapping (§3.4). Both directions
are here, so tests can play the gateway. Every datagram has one exact size (RFC 6886 §3.2,
§3.3): 2 bytes for an address request, 12 for a map request, 12 for an address response and
16 for a map response. The one exception is an error response, which a gateway may cut to the
8-byte common header (§3.5: unsupported version or opcode; miniupnpd 2.3.1 does). NAT-PMP has
no transaction ids: a response names its request by opcode (request + 128) and internal port.
"""

import ipaddress
from dataclasses import dataclass
from enum import IntEnum

from peerline.errors import DecodeError

from .buffer import Buffer

NATPMP_PORT = 5351
"""The gateway listens here, and answers from here (RFC 6886 §3)."""
ANNOUNCE_PORT = 5350
"""Clients may listen here (224.0.0.1) for the gateway's address announcements (§3.2.1)."""
VERSION = 0
RESPONSE_BIT = 0x80
ERROR_SIZE = 8
"""Version, opcode, result code (u16), seconds since start of epoch (u32)."""
MAX_LIFETIME = 0xFFFFFFFF
RECOMMENDED_LIFETIME = 7200
"""Seconds a mapping should be asked for (RFC 6886 §3.3)."""


class Opcode(IntEnum):
    """Request opcodes (RFC 6886 §3.2, §3.3); a response carries ``opcode | RESPONSE_BIT``."""

    EXTERNAL_ADDRESS = 0
    MAP_UDP = 1
    MAP_TCP = 2


class ResultCode(IntEnum):
    """RFC 6886 §3.5. Anything else a gateway sends is also a failure."""

    SUCCESS = 0
    UNSUPPORTED_VERSION = 1
    NOT_AUTHORIZED = 2
    "Refused: the gateway has NAT-PMP off, or the user turned mapping off."
    NETWORK_FAILURE = 3
    "The gateway has no external address yet (e.g. no DHCP lease upstream)."
    OUT_OF_RESOURCES = 4
    UNSUPPORTED_OPCODE = 5


def result_name(code: int) -> str:
    """``'not-authorized'`` for 2 and so on; ``'result 9'`` for codes RFC 6886 does not list."""
    try:
        return ResultCode(code).name.lower().replace("_", "-")
    except ValueError:
        return f"result {code}"


_SIZES = {  # exact request and success-response sizes by opcode
    Opcode.EXTERNAL_ADDRESS: (2, 12),
    Opcode.MAP_UDP: (12, 16),
    Opcode.MAP_TCP: (12, 16),
}


def _check_u16(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must be 0..65535, not {value}")


def _check_u32(name: str, value: int) -> None:
    if not 0 <= value <= MAX_LIFETIME:
        raise ValueError(f"{name} must fit 32 bits, not {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalAddressRequest:
    """What is the gateway's external IPv4 address? (RFC 6886 §3.2)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class MapRequest:
    """Create, renew (same request again) or delete (``lifetime=0``) a mapping (§3.3, §3.4)."""

    opcode: Opcode = Opcode.MAP_UDP
    internal_port: int
    "The client's own port; 0 only with lifetime 0, which deletes all its mappings."
    external_port: int = 0
    "The port the client would like outside; a hint, and 0 in a delete (§3.4)."
    lifetime: int
    "Seconds; 0 deletes the mapping."

    def __post_init__(self) -> None:
        if self.opcode not in (Opcode.MAP_UDP, Opcode.MAP_TCP):
            raise ValueError("a map request is for UDP or TCP")
        _check_u16("internal_port", self.internal_port)
        _check_u16("external_port", self.external_port)
        _check_u32("lifetime", self.lifetime)
        if self.internal_port == 0 and self.lifetime != 0:
            raise ValueError("internal port 0 is only valid in a delete-all (lifetime 0)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalAddressResponse:
    result: int
    epoch: int
    "Seconds since the gateway's mapping table was (re)initialised (§3.6)."
    address: str
    "The external IPv4 address; meaningless (0.0.0.0) unless ``result`` is SUCCESS."

    def __post_init__(self) -> None:
        _check_u16("result", self.result)
        _check_u32("epoch", self.epoch)
        if ipaddress.ip_address(self.address).version != 4:
            raise ValueError("NAT-PMP external addresses are IPv4")


@dataclass(frozen=True, slots=True, kw_only=True)
class MapResponse:
    opcode: Opcode
    "The request's opcode (MAP_UDP or MAP_TCP)."
    result: int
    epoch: int
    internal_port: int
    external_port: int
    "The mapped port, which may differ from the suggestion; 0 after a delete."
    lifetime: int
    "Seconds granted, which may be less than asked for; 0 after a delete."

    def __post_init__(self) -> None:
        if self.opcode not in (Opcode.MAP_UDP, Opcode.MAP_TCP):
            raise ValueError("a map response is for UDP or TCP")
        _check_u16("result", self.result)
        _check_u32("epoch", self.epoch)
        _check_u16("internal_port", self.internal_port)
        _check_u16("external_port", self.external_port)
        _check_u32("lifetime", self.lifetime)


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorResponse:
    """The 8-byte form of a failed response: header, result code and epoch only (§3.5)."""

    opcode: Opcode
    "The opcode of the request that failed."
    result: int
    epoch: int

    def __post_init__(self) -> None:
        _check_u16("result", self.result)
        _check_u32("epoch", self.epoch)
        if self.result == ResultCode.SUCCESS:
            raise ValueError("a short response is an error response")


Request = ExternalAddressRequest | MapRequest
Response = ExternalAddressResponse | MapResponse | ErrorResponse


def encode_request(msg: Request) -> bytes:
    buf = Buffer()
    buf.push_u8(VERSION)
    if isinstance(msg, ExternalAddressRequest):
        buf.push_u8(Opcode.EXTERNAL_ADDRESS)
        return buf.getvalue()
    buf.push_u8(msg.opcode)
    buf.push_u16(0)  # reserved
    buf.push_u16(msg.internal_port)
    buf.push_u16(msg.external_port)
    buf.push_u32(msg.lifetime)
    return buf.getvalue()


def decode_request(data: bytes) -> Request:
    """Parse a client's request (what a gateway does); DecodeError on anything malformed."""
    buf = Buffer(data)
    if buf.pull_u8() != VERSION:
        raise DecodeError("not NAT-PMP version 0")
    opcode = _opcode(buf.pull_u8(), response=False)
    if len(data) != _SIZES[opcode][0]:
        raise DecodeError(f"NAT-PMP request of {len(data)} bytes for opcode {opcode}")
    if opcode == Opcode.EXTERNAL_ADDRESS:
        return ExternalAddressRequest()
    buf.pull_u16()  # reserved: zero on sending, ignored on receipt (§3.3)
    internal, external, lifetime = buf.pull_u16(), buf.pull_u16(), buf.pull_u32()
    buf.expect_end()
    if internal == 0 and lifetime != 0:
        raise DecodeError("internal port 0 outside a delete-all")
    return MapRequest(
        opcode=opcode, internal_port=internal, external_port=external, lifetime=lifetime
    )


def encode_response(msg: Response) -> bytes:
    buf = Buffer()
    buf.push_u8(VERSION)
    if isinstance(msg, ExternalAddressResponse):
        buf.push_u8(Opcode.EXTERNAL_ADDRESS | RESPONSE_BIT)
    else:
        buf.push_u8(msg.opcode | RESPONSE_BIT)
    buf.push_u16(msg.result)
    buf.push_u32(msg.epoch)
    if isinstance(msg, ExternalAddressResponse):
        buf.push_bytes(ipaddress.IPv4Address(msg.address).packed)
    elif isinstance(msg, MapResponse):
        buf.push_u16(msg.internal_port)
        buf.push_u16(msg.external_port)
        buf.push_u32(msg.lifetime)
    return buf.getvalue()


def decode_response(data: bytes) -> Response:
    """Parse a gateway's response; DecodeError on anything malformed.

    Sizes are exact: a success is 12 (address) or 16 (map) bytes; a failure is that size or
    the 8-byte short form.
    """
    buf = Buffer(data)
    if buf.pull_u8() != VERSION:
        raise DecodeError("not NAT-PMP version 0")
    opcode = _opcode(buf.pull_u8(), response=True)
    result, epoch = buf.pull_u16(), buf.pull_u32()
    if len(data) == ERROR_SIZE and result != ResultCode.SUCCESS:
        return ErrorResponse(opcode=opcode, result=result, epoch=epoch)
    if len(data) != _SIZES[opcode][1]:
        raise DecodeError(f"NAT-PMP response of {len(data)} bytes for opcode {opcode}")
    if opcode == Opcode.EXTERNAL_ADDRESS:
        address = str(ipaddress.IPv4Address(buf.pull_bytes(4)))
        return ExternalAddressResponse(result=result, epoch=epoch, address=address)
    internal, external, lifetime = buf.pull_u16(), buf.pull_u16(), buf.pull_u32()
    buf.expect_end()
    return MapResponse(
        opcode=opcode,
        result=result,
        epoch=epoch,
        internal_port=internal,
        external_port=external,
        lifetime=lifetime,
    )


def _opcode(raw: int, *, response: bool) -> Opcode:
    if bool(raw & RESPONSE_BIT) != response:
        raise DecodeError("a NAT-PMP response where a request was expected, or the reverse")
    try:
        return Opcode(raw & ~RESPONSE_BIT)
    except ValueError:
        raise DecodeError(f"unknown NAT-PMP opcode {raw}") from None
