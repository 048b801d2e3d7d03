"""Overlay (DHT) messages, packet type 0x54: codecs with a hard bound on every field.

Layout (docs/protocol.md §9): a 44-byte header ``type | version | kind | flags | txid (8) |
sender Ed25519 key (32)``, a kind-specific body, and a 16-byte MAC over everything before it.
The MAC key comes from the two phones' static keys (``proto.overlay.auth``); this module only
moves bytes. Addresses are ``family (4|6) | ip | port``; a contact is a key and an address (its
node id is derived from the key by the reader, never trusted from the wire).
"""

import functools
import ipaddress
from dataclasses import dataclass, field
from enum import IntEnum

from peerline.errors import DecodeError
from peerline.types import Addr

from .buffer import Buffer
from .spec import MAX_DATAGRAM, PROTOCOL_VERSION, TYPE_OVERLAY

OVERLAY_HEADER_SIZE = 4 + 8 + 32  # 44
OVERLAY_MAC_SIZE = 16
OVERLAY_MIN_SIZE = OVERLAY_HEADER_SIZE + OVERLAY_MAC_SIZE
TOKEN_SIZE = 8
NODE_ID_SIZE = 20
PUBLIC_KEY_SIZE = 32
MAX_CONTACTS = 16
"""Contacts per reply. A lookup asks for ``k`` (8); the cap bounds what a reply can hold."""
MAX_RECORDS_PER_REPLY = 4
MAX_RECORD_SIZE = 512
NO_TOKEN = bytes(TOKEN_SIZE)

FLAG_MEMBER = 0x01
"""The sender serves the DHT (publicly reachable): others may put it in their routing tables."""
FLAG_ANONYMOUS = 0x02
"""Request only: the sender does not know the receiver's key yet, so the MAC is all zeros."""
FLAG_TRUNCATED = 0x04
"""Reply only: records or contacts were left out to keep the reply no larger than the request
(the requester's address was not validated yet); ask again with the token in this reply."""
FLAG_FULL = 0x08
"""Reply only: this supernode keeps no more NAT clients; the client should pick another."""
_KNOWN_FLAGS = FLAG_MEMBER | FLAG_ANONYMOUS | FLAG_TRUNCATED | FLAG_FULL


class Kind(IntEnum):
    PING = 0x01
    PONG = 0x02
    FIND_NODE = 0x03
    FIND_VALUE = 0x04
    NODES = 0x05
    STORE = 0x06
    STORE_ACK = 0x07
    INTRODUCE = 0x08
    "Caller to a callee's relay: tell the callee I am calling, from these addresses."
    INTRODUCTION = 0x09
    "Relay to its client: this caller is calling you, from these addresses."
    INTRO_ACK = 0x0A
    RELAY_OPEN = 0x0B
    "Caller to a callee's relay: forward my session packets to that client of yours."
    RELAY_OPENED = 0x0C


REQUESTS = frozenset(
    {
        Kind.PING,
        Kind.FIND_NODE,
        Kind.FIND_VALUE,
        Kind.STORE,
        Kind.INTRODUCE,
        Kind.INTRODUCTION,
        Kind.RELAY_OPEN,
    }
)
MAX_CANDIDATES = 8
MAX_INITIATION = 256
"""Largest handshake initiation an introduction carries (ours are 166 bytes)."""


class IntroStatus(IntEnum):
    DONE = 0
    "Forwarded (INTRODUCE) or taken (INTRODUCTION)."
    NOT_MY_CLIENT = 1
    "The relay keeps no path to that phone (any more)."
    REFUSED = 2
    """The caller's address is not validated (no token: ask again with the one in this reply),
    or the client does not take introductions from this relay."""


class RelayStatus(IntEnum):
    OPENED = 0
    "The channel is open: send session packets to the relay under the channel number."
    NOT_MY_CLIENT = 1
    "The relay keeps no path to that phone (any more)."
    REFUSED = 2
    "The caller's address is not validated (ask again with the token in this reply)."
    FULL = 3
    "The relay carries no more channels (for this caller, or at all), or relays nothing."


class StoreStatus(IntEnum):
    STORED = 0
    BAD_TOKEN = 1
    "The token does not match the sender's address: a spoofed or stale source."
    INVALID = 2
    "Signature, number binding, size or lifetime check failed."
    STALE = 3
    "A record with a higher sequence number for this key is already held."
    FULL = 4
    "Per-number, per-source or total storage limit reached."
    BUSY = 5
    "The number binding is being checked; send the STORE again shortly."


@dataclass(frozen=True, slots=True)
class Contact:
    """Someone on the overlay: its Ed25519 key and where it answers."""

    public_key: bytes
    addr: Addr


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    kind: Kind
    flags: int
    txid: bytes
    sender: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    token: bytes = NO_TOKEN
    padding: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    observed: Addr
    "The requester's address as this responder saw it: its reflexive address."
    token: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class FindNode:
    target: bytes
    token: bytes = NO_TOKEN
    padding: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FindValue:
    key: bytes
    token: bytes = NO_TOKEN
    padding: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Nodes:
    observed: Addr
    token: bytes
    contacts: tuple[Contact, ...] = ()
    records: tuple[bytes, ...] = ()
    "Signed records (FIND_VALUE only), still to be verified by the reader."


@dataclass(frozen=True, slots=True, kw_only=True)
class Store:
    token: bytes
    record: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreAck:
    status: StoreStatus
    token: bytes
    held_seq: int = 0
    "With STALE: the sequence number held, so a publisher that lost its counter can jump past."


@dataclass(frozen=True, slots=True, kw_only=True)
class Introduce:
    token: bytes
    target: bytes
    "The callee's Ed25519 key."
    candidates: tuple[Addr, ...]
    "Where the caller can be reached (its reflexive address first)."
    initiation: bytes = b""
    "The caller's handshake initiation for the callee, passed on untouched (may be empty)."


@dataclass(frozen=True, slots=True, kw_only=True)
class Introduction:
    token: bytes
    caller: bytes
    "The caller's Ed25519 key."
    candidates: tuple[Addr, ...]
    "First: the caller's address as the relay saw it; then what the caller listed."
    initiation: bytes = b""
    "The INTRODUCE's initiation, untouched: the callee answers it towards the first candidate."


@dataclass(frozen=True, slots=True, kw_only=True)
class IntroAck:
    status: IntroStatus
    token: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayOpen:
    token: bytes
    target: bytes
    "The callee's Ed25519 key: a client of the relay."


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayOpened:
    status: RelayStatus
    token: bytes
    channel: int = 0
    "With OPENED: the caller's channel number (u32)."


Body = (
    Ping
    | Pong
    | FindNode
    | FindValue
    | Nodes
    | Store
    | StoreAck
    | Introduce
    | Introduction
    | IntroAck
    | RelayOpen
    | RelayOpened
)


@dataclass(frozen=True, slots=True, kw_only=True)
class OverlayMessage:
    header: Header
    body: Body
    mac: bytes = field(repr=False)
    signed_part: bytes = field(repr=False)
    "Every byte before the MAC: what the MAC covers."


# -- addresses and contacts -------------------------------------------------------------------
@functools.lru_cache(maxsize=8192)
def _packed_host(host: str) -> bytes:
    """Family byte and packed address; cached because overlays encode the same hosts often.

    Raises ValueError for anything that is not a plain IPv4 or IPv6 address (a scope id such as
    ``%eth0`` has no meaning to the receiver and cannot be carried).
    """
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        raise ValueError(f"a scoped IPv6 address cannot be sent: {host!r}")
    return bytes([ip.version]) + ip.packed


@functools.lru_cache(maxsize=8192)
def _host_text(packed: bytes) -> str:
    if len(packed) == 4:
        return str(ipaddress.IPv4Address(packed))
    return str(ipaddress.IPv6Address(packed))


def push_addr(buf: Buffer, addr: Addr) -> None:
    if not 0 <= addr[1] <= 0xFFFF:
        raise ValueError(f"port out of range: {addr[1]}")
    buf.push_bytes(_packed_host(addr[0]))
    buf.push_u16(addr[1])


def pull_addr(buf: Buffer) -> Addr:
    family = buf.pull_u8()
    if family == 4:
        host = _host_text(buf.pull_bytes(4))
    elif family == 6:
        host = _host_text(buf.pull_bytes(16))
    else:
        raise DecodeError(f"unknown address family {family}")
    return (host, buf.pull_u16())


def addr_size(addr: Addr) -> int:
    return 1 + (16 if ":" in addr[0] else 4) + 2


def push_contact(buf: Buffer, contact: Contact) -> None:
    if len(contact.public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"a contact's key is {PUBLIC_KEY_SIZE} bytes")
    buf.push_bytes(contact.public_key)
    push_addr(buf, contact.addr)


def pull_contact(buf: Buffer) -> Contact:
    return Contact(buf.pull_bytes(PUBLIC_KEY_SIZE), pull_addr(buf))


def contact_size(contact: Contact) -> int:
    return PUBLIC_KEY_SIZE + addr_size(contact.addr)


# -- messages ---------------------------------------------------------------------------------
def encode_overlay(header: Header, body: Body) -> bytes:
    """Header and body, without the MAC: the caller appends ``mac(result)``."""
    if len(header.txid) != 8 or len(header.sender) != PUBLIC_KEY_SIZE:
        raise ValueError("txid is 8 bytes and sender a 32-byte key")
    if header.flags & ~_KNOWN_FLAGS:
        raise ValueError(f"unknown flags {header.flags:#x}")
    if header.flags & FLAG_ANONYMOUS and header.kind not in REQUESTS:
        raise ValueError("only a request may be anonymous")
    if header.flags & (FLAG_TRUNCATED | FLAG_FULL) and header.kind in REQUESTS:
        raise ValueError("only a reply may be truncated or full")
    buf = Buffer()
    buf.push_u8(TYPE_OVERLAY)
    buf.push_u8(PROTOCOL_VERSION)
    buf.push_u8(header.kind)
    buf.push_u8(header.flags)
    buf.push_bytes(header.txid)
    buf.push_bytes(header.sender)
    _push_body(buf, header.kind, body)
    out = buf.getvalue()
    if len(out) + OVERLAY_MAC_SIZE > MAX_DATAGRAM:
        raise ValueError(f"overlay message of {len(out) + OVERLAY_MAC_SIZE} bytes is too large")
    return out


def _check_token(token: bytes) -> None:
    if len(token) != TOKEN_SIZE:
        raise ValueError(f"a token is {TOKEN_SIZE} bytes")


def _check_padding(padding: int) -> None:
    if not 0 <= padding <= MAX_DATAGRAM:
        raise ValueError(f"padding must be in [0, {MAX_DATAGRAM}]")


def _push_body(buf: Buffer, kind: Kind, body: Body) -> None:
    if isinstance(body, Ping) and kind is Kind.PING:
        _check_token(body.token)
        _check_padding(body.padding)
        buf.push_bytes(body.token)
        buf.push_bytes(bytes(body.padding))
    elif isinstance(body, Pong) and kind is Kind.PONG:
        _check_token(body.token)
        buf.push_bytes(body.token)
        push_addr(buf, body.observed)
    elif isinstance(body, FindNode) and kind is Kind.FIND_NODE:
        _check_token(body.token)
        _check_padding(body.padding)
        if len(body.target) != NODE_ID_SIZE:
            raise ValueError("target is a 20-byte id")
        buf.push_bytes(body.token)
        buf.push_bytes(body.target)
        buf.push_bytes(bytes(body.padding))
    elif isinstance(body, FindValue) and kind is Kind.FIND_VALUE:
        _check_token(body.token)
        _check_padding(body.padding)
        if len(body.key) != NODE_ID_SIZE:
            raise ValueError("key is a 20-byte id")
        buf.push_bytes(body.token)
        buf.push_bytes(body.key)
        buf.push_bytes(bytes(body.padding))
    elif isinstance(body, Nodes) and kind is Kind.NODES:
        _check_token(body.token)
        if len(body.contacts) > MAX_CONTACTS or len(body.records) > MAX_RECORDS_PER_REPLY:
            raise ValueError("too many contacts or records for one reply")
        buf.push_bytes(body.token)
        push_addr(buf, body.observed)
        buf.push_u8(len(body.contacts))
        for contact in body.contacts:
            push_contact(buf, contact)
        buf.push_u8(len(body.records))
        for record in body.records:
            if len(record) > MAX_RECORD_SIZE:
                raise ValueError("record too large")
            buf.push_vbytes16(record)
    elif isinstance(body, Store) and kind is Kind.STORE:
        _check_token(body.token)
        if len(body.record) > MAX_DATAGRAM:
            raise ValueError("record too large")
        buf.push_bytes(body.token)
        buf.push_vbytes16(body.record)
    elif isinstance(body, Introduce | Introduction) and kind in (
        Kind.INTRODUCE,
        Kind.INTRODUCTION,
    ):
        _check_token(body.token)
        key = body.target if isinstance(body, Introduce) else body.caller
        if (isinstance(body, Introduce)) != (kind is Kind.INTRODUCE):
            raise ValueError(f"body {type(body).__name__} does not match kind {kind!r}")
        if len(key) != PUBLIC_KEY_SIZE or not 0 < len(body.candidates) <= MAX_CANDIDATES:
            raise ValueError("a 32-byte key and 1 to 8 candidates")
        buf.push_bytes(body.token)
        buf.push_bytes(key)
        if len(body.initiation) > MAX_INITIATION:
            raise ValueError(f"an introduction carries at most {MAX_INITIATION} initiation bytes")
        buf.push_u8(len(body.candidates))
        for addr in body.candidates:
            push_addr(buf, addr)
        buf.push_vbytes16(body.initiation)
    elif isinstance(body, IntroAck) and kind is Kind.INTRO_ACK:
        _check_token(body.token)
        buf.push_u8(IntroStatus(body.status))
        buf.push_bytes(body.token)
    elif isinstance(body, RelayOpen) and kind is Kind.RELAY_OPEN:
        _check_token(body.token)
        if len(body.target) != PUBLIC_KEY_SIZE:
            raise ValueError("target is a 32-byte key")
        buf.push_bytes(body.token)
        buf.push_bytes(body.target)
    elif isinstance(body, RelayOpened) and kind is Kind.RELAY_OPENED:
        _check_token(body.token)
        if not 0 <= body.channel <= 0xFFFFFFFF:
            raise ValueError("channel must fit in 32 bits")
        buf.push_u8(RelayStatus(body.status))
        buf.push_bytes(body.token)
        buf.push_u32(body.channel)
    elif isinstance(body, StoreAck) and kind is Kind.STORE_ACK:
        _check_token(body.token)
        if not 0 <= body.held_seq < 2**64:
            raise ValueError("held_seq must fit in 64 bits")
        buf.push_u8(StoreStatus(body.status))
        buf.push_bytes(body.token)
        buf.push_u64(body.held_seq)
    else:
        raise ValueError(f"body {type(body).__name__} does not match kind {kind!r}")


def decode_overlay(data: bytes) -> OverlayMessage:
    """Parse one overlay datagram. Raises DecodeError on anything malformed; checks no MAC."""
    if not OVERLAY_MIN_SIZE <= len(data) <= MAX_DATAGRAM:
        raise DecodeError(f"overlay message length {len(data)} out of range")
    buf = Buffer(data[:-OVERLAY_MAC_SIZE])
    if buf.pull_u8() != TYPE_OVERLAY:
        raise DecodeError("not an overlay message")
    if buf.pull_u8() != PROTOCOL_VERSION:
        raise DecodeError("unknown overlay version")
    raw_kind = buf.pull_u8()
    try:
        kind = Kind(raw_kind)
    except ValueError:
        raise DecodeError(f"unknown overlay kind {raw_kind:#x}") from None
    flags = buf.pull_u8()
    if flags & ~_KNOWN_FLAGS:
        raise DecodeError(f"unknown flags {flags:#x}")
    if flags & FLAG_ANONYMOUS and kind not in REQUESTS:
        raise DecodeError("only a request may be anonymous")
    if flags & (FLAG_TRUNCATED | FLAG_FULL) and kind in REQUESTS:
        raise DecodeError("only a reply may be truncated or full")
    header = Header(
        kind=kind, flags=flags, txid=buf.pull_bytes(8), sender=buf.pull_bytes(PUBLIC_KEY_SIZE)
    )
    body = _pull_body(buf, kind)
    buf.expect_end()
    return OverlayMessage(
        header=header,
        body=body,
        mac=data[-OVERLAY_MAC_SIZE:],
        signed_part=data[:-OVERLAY_MAC_SIZE],
    )


def _pull_padding(buf: Buffer) -> int:
    pad = buf.pull_rest()
    if pad.count(0) != len(pad):
        raise DecodeError("padding must be zero bytes")
    return len(pad)


def _pull_body(buf: Buffer, kind: Kind) -> Body:
    if kind is Kind.PING:
        token = buf.pull_bytes(TOKEN_SIZE)
        return Ping(token=token, padding=_pull_padding(buf))
    if kind is Kind.PONG:
        token = buf.pull_bytes(TOKEN_SIZE)
        return Pong(token=token, observed=pull_addr(buf))
    if kind is Kind.FIND_NODE:
        token = buf.pull_bytes(TOKEN_SIZE)
        target = buf.pull_bytes(NODE_ID_SIZE)
        return FindNode(token=token, target=target, padding=_pull_padding(buf))
    if kind is Kind.FIND_VALUE:
        token = buf.pull_bytes(TOKEN_SIZE)
        key = buf.pull_bytes(NODE_ID_SIZE)
        return FindValue(token=token, key=key, padding=_pull_padding(buf))
    if kind is Kind.NODES:
        token = buf.pull_bytes(TOKEN_SIZE)
        observed = pull_addr(buf)
        n = buf.pull_u8()
        if n > MAX_CONTACTS:
            raise DecodeError(f"{n} contacts exceed {MAX_CONTACTS}")
        contacts = tuple(pull_contact(buf) for _ in range(n))
        m = buf.pull_u8()
        if m > MAX_RECORDS_PER_REPLY:
            raise DecodeError(f"{m} records exceed {MAX_RECORDS_PER_REPLY}")
        records = tuple(buf.pull_vbytes16(MAX_RECORD_SIZE) for _ in range(m))
        return Nodes(token=token, observed=observed, contacts=contacts, records=records)
    if kind is Kind.STORE:
        token = buf.pull_bytes(TOKEN_SIZE)
        # Not bounded by MAX_RECORD_SIZE here (the datagram bounds it): the receiver answers an
        # oversize record with INVALID and counts it, rather than dropping the STORE unseen.
        return Store(token=token, record=buf.pull_vbytes16(MAX_DATAGRAM))
    if kind in (Kind.INTRODUCE, Kind.INTRODUCTION):
        token = buf.pull_bytes(TOKEN_SIZE)
        key = buf.pull_bytes(PUBLIC_KEY_SIZE)
        n = buf.pull_u8()
        if not 0 < n <= MAX_CANDIDATES:
            raise DecodeError(f"{n} candidates: 1 to {MAX_CANDIDATES} allowed")
        candidates = tuple(pull_addr(buf) for _ in range(n))
        initiation = buf.pull_vbytes16(MAX_INITIATION)
        if kind is Kind.INTRODUCE:
            return Introduce(token=token, target=key, candidates=candidates, initiation=initiation)
        return Introduction(token=token, caller=key, candidates=candidates, initiation=initiation)
    if kind is Kind.INTRO_ACK:
        raw_status = buf.pull_u8()
        try:
            intro_status = IntroStatus(raw_status)
        except ValueError:
            raise DecodeError(f"unknown introduction status {raw_status}") from None
        return IntroAck(status=intro_status, token=buf.pull_bytes(TOKEN_SIZE))
    if kind is Kind.RELAY_OPEN:
        token = buf.pull_bytes(TOKEN_SIZE)
        return RelayOpen(token=token, target=buf.pull_bytes(PUBLIC_KEY_SIZE))
    if kind is Kind.RELAY_OPENED:
        raw_relay = buf.pull_u8()
        try:
            relay_status = RelayStatus(raw_relay)
        except ValueError:
            raise DecodeError(f"unknown relay status {raw_relay}") from None
        token = buf.pull_bytes(TOKEN_SIZE)
        return RelayOpened(status=relay_status, token=token, channel=buf.pull_u32())
    raw = buf.pull_u8()
    try:
        status = StoreStatus(raw)
    except ValueError:
        raise DecodeError(f"unknown store status {raw}") from None
    token = buf.pull_bytes(TOKEN_SIZE)
    return StoreAck(status=status, token=token, held_seq=buf.pull_u64())
