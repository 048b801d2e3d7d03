"""STUN (RFC 8489) Binding messages: the codec, bounded, for the first-byte range 0-3.

Only what a phone needs to learn its reflexive address from a standard STUN server and to
classify its NAT (RFC 5780): Binding requests (optionally with CHANGE-REQUEST; a PADDING
attribute is accepted but never sent) and
Binding success/error responses with XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, OTHER-ADDRESS,
RESPONSE-ORIGIN, SOFTWARE, ERROR-CODE and FINGERPRINT. No long-term credentials: a Binding
request needs none (RFC 8489 §9). Unknown comprehension-optional attributes are skipped;
an unknown comprehension-required one makes a response unusable (RFC 8489 §7.3.3).
"""

import ipaddress
import struct
import zlib
from dataclasses import dataclass

from peerline.errors import DecodeError
from peerline.types import Addr

from .spec import MAX_DATAGRAM

MAGIC_COOKIE = 0x2112A442
HEADER_SIZE = 20
TXID_SIZE = 12
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111

ATTR_MAPPED_ADDRESS = 0x0001
ATTR_CHANGE_REQUEST = 0x0003
ATTR_ERROR_CODE = 0x0009
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_PADDING = 0x0026
ATTR_SOFTWARE = 0x8022
ATTR_RESPONSE_ORIGIN = 0x802B
ATTR_OTHER_ADDRESS = 0x802C
ATTR_FINGERPRINT = 0x8028
_FINGERPRINT_XOR = 0x5354554E
_KNOWN_REQUIRED = {
    ATTR_MAPPED_ADDRESS,
    ATTR_CHANGE_REQUEST,
    ATTR_ERROR_CODE,
    ATTR_XOR_MAPPED_ADDRESS,
    ATTR_PADDING,
}
MAX_ATTRIBUTES = 32
CHANGE_IP = 0x04
CHANGE_PORT = 0x02
_HEADER = struct.Struct(">HHI12s")
_ATTR = struct.Struct(">HH")


@dataclass(frozen=True, slots=True, kw_only=True)
class StunMessage:
    msg_type: int
    txid: bytes
    mapped: Addr | None = None
    "XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS: how the server saw the sender."
    other: Addr | None = None
    "OTHER-ADDRESS (RFC 5780): the server's alternate IP and port, for NAT classification."
    origin: Addr | None = None
    "RESPONSE-ORIGIN (RFC 5780): where the response was sent from."
    change: int = 0
    "CHANGE-REQUEST flags (CHANGE_IP, CHANGE_PORT) of a request."
    error_code: int | None = None
    software: str | None = None
    unknown_required: tuple[int, ...] = ()


def _xor_addr(value: bytes, txid: bytes) -> Addr:
    if len(value) < 4 or value[0] != 0:
        raise DecodeError("bad address attribute")
    family = value[1]
    port = int.from_bytes(value[2:4], "big") ^ (MAGIC_COOKIE >> 16)
    if family == 1 and len(value) == 8:
        raw = int.from_bytes(value[4:8], "big") ^ MAGIC_COOKIE
        return (str(ipaddress.IPv4Address(raw)), port)
    if family == 2 and len(value) == 20:
        key = int.from_bytes(MAGIC_COOKIE.to_bytes(4, "big") + txid, "big")
        raw = int.from_bytes(value[4:20], "big") ^ key
        return (str(ipaddress.IPv6Address(raw)), port)
    raise DecodeError("bad address family or length")


def _plain_addr(value: bytes) -> Addr:
    if len(value) < 4 or value[0] != 0:
        raise DecodeError("bad address attribute")
    family, port = value[1], int.from_bytes(value[2:4], "big")
    if family == 1 and len(value) == 8:
        return (str(ipaddress.IPv4Address(value[4:8])), port)
    if family == 2 and len(value) == 20:
        return (str(ipaddress.IPv6Address(value[4:20])), port)
    raise DecodeError("bad address family or length")


def _encode_addr(addr: Addr, txid: bytes, *, xor: bool) -> bytes:
    ip = ipaddress.ip_address(addr[0])
    port = addr[1] ^ (MAGIC_COOKIE >> 16) if xor else addr[1]
    family = 1 if ip.version == 4 else 2
    raw = int.from_bytes(ip.packed, "big")
    if xor:
        key = (
            MAGIC_COOKIE
            if ip.version == 4
            else int.from_bytes(MAGIC_COOKIE.to_bytes(4, "big") + txid, "big")
        )
        raw ^= key
    return bytes([0, family]) + port.to_bytes(2, "big") + raw.to_bytes(len(ip.packed), "big")


def decode_stun(data: bytes) -> StunMessage:
    """Parse a Binding request or response; DecodeError on anything malformed.

    A FINGERPRINT, if present, must be last and must match.
    """
    if not HEADER_SIZE <= len(data) <= MAX_DATAGRAM:
        raise DecodeError("STUN message size out of range")
    msg_type, length, cookie, txid = _HEADER.unpack_from(data)
    if msg_type & 0xC000 or cookie != MAGIC_COOKIE:
        raise DecodeError("not a STUN message")
    if length % 4 or HEADER_SIZE + length != len(data):
        raise DecodeError("STUN length does not match the datagram")
    if msg_type not in (BINDING_REQUEST, BINDING_SUCCESS, BINDING_ERROR):
        raise DecodeError(f"unsupported STUN message type {msg_type:#06x}")
    fields: dict[str, object] = {}
    unknown: list[int] = []
    pos, count = HEADER_SIZE, 0
    while pos < len(data):
        count += 1
        if count > MAX_ATTRIBUTES or pos + 4 > len(data):
            raise DecodeError("too many or truncated STUN attributes")
        attr, alen = _ATTR.unpack_from(data, pos)
        start, end = pos + 4, pos + 4 + alen
        if end > len(data):
            raise DecodeError("STUN attribute runs past the message")
        value = data[start:end]
        pos = end + (-alen % 4)
        if attr == ATTR_FINGERPRINT:
            if alen != 4 or pos != len(data):
                raise DecodeError("FINGERPRINT must be the last attribute, 4 bytes")
            covered = data[: start - 4]
            if int.from_bytes(value, "big") != (zlib.crc32(covered) ^ _FINGERPRINT_XOR):
                raise DecodeError("FINGERPRINT mismatch")
        elif attr == ATTR_XOR_MAPPED_ADDRESS:
            fields["mapped"] = _xor_addr(value, txid)
        elif attr == ATTR_MAPPED_ADDRESS:
            fields.setdefault("mapped_plain", _plain_addr(value))
        elif attr == ATTR_OTHER_ADDRESS:
            fields["other"] = _plain_addr(value)
        elif attr == ATTR_RESPONSE_ORIGIN:
            fields["origin"] = _plain_addr(value)
        elif attr == ATTR_CHANGE_REQUEST:
            if alen != 4:
                raise DecodeError("CHANGE-REQUEST is 4 bytes")
            fields["change"] = int.from_bytes(value, "big") & (CHANGE_IP | CHANGE_PORT)
        elif attr == ATTR_ERROR_CODE:
            if alen < 4:
                raise DecodeError("ERROR-CODE too short")
            fields["error_code"] = (value[2] & 0x07) * 100 + value[3]
        elif attr == ATTR_SOFTWARE:
            fields["software"] = value[:128].decode("utf-8", "replace")
        elif attr < 0x8000 and attr not in _KNOWN_REQUIRED:
            unknown.append(attr)
    mapped = fields.get("mapped") or fields.get("mapped_plain")
    return StunMessage(
        msg_type=msg_type,
        txid=txid,
        mapped=mapped,  # type: ignore[arg-type]
        other=fields.get("other"),  # type: ignore[arg-type]
        origin=fields.get("origin"),  # type: ignore[arg-type]
        change=fields.get("change", 0),  # type: ignore[arg-type]
        error_code=fields.get("error_code"),  # type: ignore[arg-type]
        software=fields.get("software"),  # type: ignore[arg-type]
        unknown_required=tuple(unknown),
    )


def _attr(attr: int, value: bytes) -> bytes:
    return _ATTR.pack(attr, len(value)) + value + bytes(-len(value) % 4)


def _finish(msg_type: int, txid: bytes, body: bytes) -> bytes:
    """Header and body, then a FINGERPRINT over everything before it."""
    length = len(body) + 8
    head = _HEADER.pack(msg_type, length, MAGIC_COOKIE, txid) + body
    crc = zlib.crc32(head) ^ _FINGERPRINT_XOR  # the header's length already counts it
    return head + _attr(ATTR_FINGERPRINT, crc.to_bytes(4, "big"))


def encode_binding_request(txid: bytes, *, change: int = 0, pad_to: int = 0) -> bytes:
    """A Binding request, at least ``pad_to`` bytes long.

    The length comes from the SOFTWARE text, not a PADDING attribute: RFC 5780 servers answer a
    PADDING with a reply padded to the path MTU (coturn: 1,604 bytes), the opposite of what
    padding is for here (letting reflectors answer without sending more than they got).
    """
    if len(txid) != TXID_SIZE:
        raise ValueError("a STUN transaction id is 12 bytes")
    change_attr = b""
    if change:
        flags = (change & (CHANGE_IP | CHANGE_PORT)).to_bytes(4, "big")
        change_attr = _attr(ATTR_CHANGE_REQUEST, flags)
    fixed = HEADER_SIZE + len(change_attr) + 8 + 4  # header, CHANGE-REQUEST, FINGERPRINT, SOFTWARE
    software = b"peerline".ljust(min(max(8, pad_to - fixed), 763))
    return _finish(BINDING_REQUEST, txid, _attr(ATTR_SOFTWARE, software) + change_attr)


def encode_binding_success(
    txid: bytes, mapped: Addr, *, origin: Addr | None = None, other: Addr | None = None
) -> bytes:
    """A Binding success response (what a phone answers as a reflector)."""
    body = _attr(ATTR_XOR_MAPPED_ADDRESS, _encode_addr(mapped, txid, xor=True))
    if origin is not None:
        body += _attr(ATTR_RESPONSE_ORIGIN, _encode_addr(origin, txid, xor=False))
    if other is not None:
        body += _attr(ATTR_OTHER_ADDRESS, _encode_addr(other, txid, xor=False))
    return _finish(BINDING_SUCCESS, txid, body)
