"""Packets on the shared UDP socket: exact-length codecs for the four secure-channel packets.

Every Peerline packet starts ``type (u8) | version (u8)``. Sizes are fixed where Noise makes them
fixed and decoding rejects any other length (docs/protocol.md §3-§5).
"""

from dataclasses import dataclass

from peerline.errors import DecodeError

from .buffer import Buffer
from .spec import (
    MAX_DATAGRAM,
    PROTOCOL_VERSION,
    STUN_FIRST_BYTE_MAX,
    TYPE_COOKIE_REPLY,
    TYPE_HANDSHAKE_INITIATION,
    TYPE_HANDSHAKE_RESPONSE,
    TYPE_TRANSPORT,
)

MAC_SIZE = 16
INITIATION_NOISE_SIZE = 32 + (32 + 16) + (32 + 16)
"""e, encrypted static key, encrypted payload (the initiator's 32-byte Ed25519 key)."""
INITIATION_HEADER_SIZE = 6
INITIATION_MAC1_OFFSET = INITIATION_HEADER_SIZE + INITIATION_NOISE_SIZE  # 134
INITIATION_MAC2_OFFSET = INITIATION_MAC1_OFFSET + MAC_SIZE  # 150
INITIATION_SIZE = INITIATION_MAC2_OFFSET + MAC_SIZE  # 166
RESPONSE_PAYLOAD_SIZE = 4
"""The responder's session index, carried encrypted so that it is authenticated."""
RESPONSE_NOISE_SIZE = 32 + RESPONSE_PAYLOAD_SIZE + 16
"""e, and the encrypted payload."""
RESPONSE_SIZE = 2 + 4 + RESPONSE_NOISE_SIZE  # 58
COOKIE_NONCE_SIZE = 24
COOKIE_SEALED_SIZE = 16 + 16
COOKIE_REPLY_SIZE = 2 + 4 + COOKIE_NONCE_SIZE + COOKIE_SEALED_SIZE  # 62
TRANSPORT_HEADER_SIZE = 2 + 4 + 8  # 14
TAG_SIZE = 16
TRANSPORT_MIN_SIZE = TRANSPORT_HEADER_SIZE + TAG_SIZE  # 30, an empty (keepalive) packet
INDEX_MAX = 2**32 - 1


def _check_index(name: str, value: int) -> None:
    if not 0 <= value <= INDEX_MAX:
        raise ValueError(f"{name} must fit in 32 bits")


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeInitiation:
    sender_index: int
    noise: bytes
    mac1: bytes
    "Keyed with the responder's static key: proves the sender knows whom it calls."
    mac2: bytes = bytes(MAC_SIZE)
    "Keyed with a cookie from the responder, or zeros when the sender has none."

    def __post_init__(self) -> None:
        _check_index("sender_index", self.sender_index)
        if len(self.noise) != INITIATION_NOISE_SIZE:
            raise ValueError(f"initiation noise message must be {INITIATION_NOISE_SIZE} bytes")
        if len(self.mac1) != MAC_SIZE or len(self.mac2) != MAC_SIZE:
            raise ValueError(f"macs must be {MAC_SIZE} bytes")

    @property
    def mac1_input(self) -> bytes:
        """Bytes 0-133: what mac1 covers."""
        return initiation_header(self.sender_index) + self.noise

    @property
    def mac2_input(self) -> bytes:
        """Bytes 0-149: what mac2 covers."""
        return self.mac1_input + self.mac1


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeResponse:
    receiver_index: int
    noise: bytes

    def __post_init__(self) -> None:
        _check_index("receiver_index", self.receiver_index)
        if len(self.noise) != RESPONSE_NOISE_SIZE:
            raise ValueError(f"response noise message must be {RESPONSE_NOISE_SIZE} bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class CookieReply:
    """Sent instead of a response when the responder is under load (docs/protocol.md §4.5)."""

    receiver_index: int
    nonce: bytes
    sealed_cookie: bytes

    def __post_init__(self) -> None:
        _check_index("receiver_index", self.receiver_index)
        if len(self.nonce) != COOKIE_NONCE_SIZE:
            raise ValueError(f"nonce must be {COOKIE_NONCE_SIZE} bytes")
        if len(self.sealed_cookie) != COOKIE_SEALED_SIZE:
            raise ValueError(f"sealed cookie must be {COOKIE_SEALED_SIZE} bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportPacket:
    receiver_index: int
    counter: int
    ciphertext: bytes
    header: bytes
    """The 14 header bytes as received: the AEAD's associated data."""

    def __post_init__(self) -> None:
        _check_index("receiver_index", self.receiver_index)
        if not 0 <= self.counter < 2**64:
            raise ValueError("counter must fit in 64 bits")
        if not TAG_SIZE <= len(self.ciphertext) <= MAX_DATAGRAM - TRANSPORT_HEADER_SIZE:
            raise ValueError("ciphertext length out of range")


Packet = HandshakeInitiation | HandshakeResponse | CookieReply | TransportPacket


def is_stun(data: bytes) -> bool:
    """RFC 7983 demultiplexing: first byte 0-3 is STUN (left to the NAT layer)."""
    return bool(data) and data[0] <= STUN_FIRST_BYTE_MAX


def initiation_header(sender_index: int) -> bytes:
    """The initiation's first 6 bytes; also mixed into the Noise prologue."""
    return bytes((TYPE_HANDSHAKE_INITIATION, PROTOCOL_VERSION)) + sender_index.to_bytes(4, "big")


def transport_header(receiver_index: int, counter: int) -> bytes:
    return (
        bytes((TYPE_TRANSPORT, PROTOCOL_VERSION))
        + receiver_index.to_bytes(4, "big")
        + counter.to_bytes(8, "big")
    )


def push_initiation(msg: HandshakeInitiation) -> bytes:
    return msg.mac2_input + msg.mac2


def push_response(msg: HandshakeResponse) -> bytes:
    buf = Buffer()
    buf.push_u8(TYPE_HANDSHAKE_RESPONSE)
    buf.push_u8(PROTOCOL_VERSION)
    buf.push_u32(msg.receiver_index)
    buf.push_bytes(msg.noise)
    return buf.getvalue()


def push_cookie_reply(msg: CookieReply) -> bytes:
    buf = Buffer()
    buf.push_u8(TYPE_COOKIE_REPLY)
    buf.push_u8(PROTOCOL_VERSION)
    buf.push_u32(msg.receiver_index)
    buf.push_bytes(msg.nonce)
    buf.push_bytes(msg.sealed_cookie)
    return buf.getvalue()


def push_transport(receiver_index: int, counter: int, ciphertext: bytes) -> bytes:
    return transport_header(receiver_index, counter) + ciphertext


def pull_packet(data: bytes) -> Packet:
    """Decode one datagram. Raises ``DecodeError`` (only) on anything but a well-formed packet."""
    if len(data) > MAX_DATAGRAM:
        raise DecodeError(f"datagram of {len(data)} bytes exceeds {MAX_DATAGRAM}")
    buf = Buffer(data)
    kind = buf.pull_u8()
    version = buf.pull_u8()
    if version != PROTOCOL_VERSION:
        raise DecodeError(f"unsupported protocol version {version}")
    if kind == TYPE_TRANSPORT:
        if len(data) < TRANSPORT_MIN_SIZE:
            raise DecodeError("transport packet too short")
        receiver, counter = buf.pull_u32(), buf.pull_u64()
        return TransportPacket(
            receiver_index=receiver,
            counter=counter,
            ciphertext=buf.pull_rest(),
            header=data[:TRANSPORT_HEADER_SIZE],
        )
    if kind == TYPE_HANDSHAKE_INITIATION:
        if len(data) != INITIATION_SIZE:
            raise DecodeError(f"initiation must be {INITIATION_SIZE} bytes, got {len(data)}")
        return HandshakeInitiation(
            sender_index=buf.pull_u32(),
            noise=buf.pull_bytes(INITIATION_NOISE_SIZE),
            mac1=buf.pull_bytes(MAC_SIZE),
            mac2=buf.pull_bytes(MAC_SIZE),
        )
    if kind == TYPE_HANDSHAKE_RESPONSE:
        if len(data) != RESPONSE_SIZE:
            raise DecodeError(f"response must be {RESPONSE_SIZE} bytes, got {len(data)}")
        return HandshakeResponse(receiver_index=buf.pull_u32(), noise=buf.pull_rest())
    if kind == TYPE_COOKIE_REPLY:
        if len(data) != COOKIE_REPLY_SIZE:
            raise DecodeError(f"cookie reply must be {COOKIE_REPLY_SIZE} bytes, got {len(data)}")
        return CookieReply(
            receiver_index=buf.pull_u32(),
            nonce=buf.pull_bytes(COOKIE_NONCE_SIZE),
            sealed_cookie=buf.pull_rest(),
        )
    raise DecodeError(f"unknown packet type 0x{kind:02x}")
