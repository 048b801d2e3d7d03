"""The directory record: where a number can be reached, signed by the number's key.

Byte layout in docs/protocol.md §10. This module encodes and decodes with hard bounds; checking
the signature and the number binding is ``proto.overlay.records``'s job.
"""

from dataclasses import dataclass
from enum import IntEnum

from peerline.errors import DecodeError
from peerline.types import Addr

from .buffer import Buffer
from .overlay import (
    MAX_RECORD_SIZE,
    PUBLIC_KEY_SIZE,
    Contact,
    pull_addr,
    pull_contact,
    push_addr,
    push_contact,
)

RECORD_VERSION = 1
SIGNATURE_SIZE = 64
RECORD_SIGNING_CONTEXT = b"peerline-record/1"
"""Prefixed to the signed bytes so a record signature can never be replayed as anything else."""
MAX_ADDRESSES = 8
MAX_RELAYS = 4
MAX_TTL_S = 2 * 3600
NUMBER_DIGITS = 12
_FLAG_FORWARD = 0x01


class Presence(IntEnum):
    AVAILABLE = 0
    BUSY = 1
    DO_NOT_DISTURB = 2
    AWAY = 3


class CandidateKind(IntEnum):
    """Where an address came from (the NAT layer ranks them; RFC 8445 §5.1.2 terms)."""

    HOST = 1
    REFLEXIVE = 2
    MAPPED = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    number: str
    "12 ASCII digits; valid only if ``public_key`` derives to it."
    public_key: bytes
    seq: int
    "Higher replaces lower for the same key; never the other way round."
    ttl_s: int
    "Seconds a storer keeps the record from when it receives it (at most MAX_TTL_S)."
    presence: Presence = Presence.AVAILABLE
    addresses: tuple[tuple[CandidateKind, Addr], ...] = ()
    relays: tuple[Contact, ...] = ()
    "Supernodes that keep a path open to this phone (rendezvous for hole punching)."
    forward_to: str | None = None
    "Call forwarding target number, if set."
    signature: bytes = bytes(SIGNATURE_SIZE)

    def signed_bytes(self) -> bytes:
        """What the signature covers: the context string, then every field before it."""
        return RECORD_SIGNING_CONTEXT + _encode_fields(self)

    def encode(self) -> bytes:
        out = _encode_fields(self) + self.signature
        if len(self.signature) != SIGNATURE_SIZE:
            raise ValueError("signature is 64 bytes")
        if len(out) > MAX_RECORD_SIZE:
            raise ValueError(f"record of {len(out)} bytes exceeds {MAX_RECORD_SIZE}")
        return out


def _number_to_int(number: str) -> int:
    if len(number) != NUMBER_DIGITS or not number.isascii() or not number.isdigit():
        raise ValueError("a number is 12 ASCII digits")
    return int(number)


def _int_to_number(value: int) -> str:
    if value >= 10**NUMBER_DIGITS:
        raise DecodeError("number field out of range")
    return f"{value:0{NUMBER_DIGITS}d}"


def _encode_fields(record: Record) -> bytes:
    if len(record.public_key) != PUBLIC_KEY_SIZE:
        raise ValueError("public key is 32 bytes")
    if not 0 <= record.seq < 2**64 or not 0 < record.ttl_s <= MAX_TTL_S:
        raise ValueError("seq out of range or ttl not in (0, MAX_TTL_S]")
    if len(record.addresses) > MAX_ADDRESSES or len(record.relays) > MAX_RELAYS:
        raise ValueError("too many addresses or relays")
    buf = Buffer()
    buf.push_u8(RECORD_VERSION)
    buf.push_u64(_number_to_int(record.number))
    buf.push_bytes(record.public_key)
    buf.push_u64(record.seq)
    buf.push_u32(record.ttl_s)
    buf.push_u8(Presence(record.presence))
    buf.push_u8(_FLAG_FORWARD if record.forward_to is not None else 0)
    if record.forward_to is not None:
        buf.push_u64(_number_to_int(record.forward_to))
    buf.push_u8(len(record.addresses))
    for kind, addr in record.addresses:
        buf.push_u8(CandidateKind(kind))
        push_addr(buf, addr)
    buf.push_u8(len(record.relays))
    for relay in record.relays:
        push_contact(buf, relay)
    return buf.getvalue()


def decode_record(data: bytes) -> Record:
    """Parse a record. Raises DecodeError on anything malformed; checks no signature."""
    if len(data) > MAX_RECORD_SIZE:
        raise DecodeError(f"record of {len(data)} bytes exceeds {MAX_RECORD_SIZE}")
    buf = Buffer(data)
    if buf.pull_u8() != RECORD_VERSION:
        raise DecodeError("unknown record version")
    number = _int_to_number(buf.pull_u64())
    public_key = buf.pull_bytes(PUBLIC_KEY_SIZE)
    seq = buf.pull_u64()
    ttl_s = buf.pull_u32()
    if not 0 < ttl_s <= MAX_TTL_S:
        raise DecodeError(f"ttl {ttl_s} s not in (0, {MAX_TTL_S}]")
    raw_presence = buf.pull_u8()
    try:
        presence = Presence(raw_presence)
    except ValueError:
        raise DecodeError(f"unknown presence {raw_presence}") from None
    flags = buf.pull_u8()
    if flags & ~_FLAG_FORWARD:
        raise DecodeError(f"unknown record flags {flags:#x}")
    forward_to = _int_to_number(buf.pull_u64()) if flags & _FLAG_FORWARD else None
    n = buf.pull_u8()
    if n > MAX_ADDRESSES:
        raise DecodeError(f"{n} addresses exceed {MAX_ADDRESSES}")
    addresses = []
    for _ in range(n):
        raw_kind = buf.pull_u8()
        try:
            kind = CandidateKind(raw_kind)
        except ValueError:
            raise DecodeError(f"unknown candidate kind {raw_kind}") from None
        addresses.append((kind, pull_addr(buf)))
    m = buf.pull_u8()
    if m > MAX_RELAYS:
        raise DecodeError(f"{m} relays exceed {MAX_RELAYS}")
    relays = tuple(pull_contact(buf) for _ in range(m))
    signature = buf.pull_bytes(SIGNATURE_SIZE)
    buf.expect_end()
    return Record(
        number=number,
        public_key=public_key,
        seq=seq,
        ttl_s=ttl_s,
        presence=presence,
        addresses=tuple(addresses),
        relays=relays,
        forward_to=forward_to,
        signature=signature,
    )
