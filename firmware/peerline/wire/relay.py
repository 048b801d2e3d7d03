"""Relayed session packets, type 0x55 (docs/protocol.md §11.2).

``0x55 | version | channel (u32) | session packet``. A relay swaps the channel number and
passes the session packet on untouched: it is ciphertext the relay cannot read or forge. Only
session packets (types 0x50-0x53) may ride inside, never overlay or STUN messages, so a relay
cannot be used to make either look as if it came from the relay.
"""

from peerline.errors import DecodeError

from .spec import (
    MAX_DATAGRAM,
    PROTOCOL_VERSION,
    RELAY_HEADER_SIZE,
    TYPE_HANDSHAKE_INITIATION,
    TYPE_RELAY,
    TYPE_TRANSPORT,
)

MAX_RELAYED = MAX_DATAGRAM - RELAY_HEADER_SIZE
"""Largest session packet a relay carries (session packets are sized to fit, §6)."""


def push_relayed(channel: int, inner: bytes) -> bytes:
    """Wrap a session packet for a relay. Raises ValueError for anything a relay would drop."""
    if not 0 <= channel <= 0xFFFFFFFF:
        raise ValueError("channel must fit in 32 bits")
    if not inner or not TYPE_HANDSHAKE_INITIATION <= inner[0] <= TYPE_TRANSPORT:
        raise ValueError("only session packets are relayed")
    if len(inner) > MAX_RELAYED:
        raise ValueError(f"a relayed packet carries at most {MAX_RELAYED} bytes")
    return bytes((TYPE_RELAY, PROTOCOL_VERSION)) + channel.to_bytes(4, "big") + inner


def pull_relayed(data: bytes) -> tuple[int, bytes]:
    """(channel, session packet) of a relayed datagram. Raises DecodeError if malformed."""
    if not RELAY_HEADER_SIZE < len(data) <= MAX_DATAGRAM:
        raise DecodeError(f"relayed datagram length {len(data)} out of range")
    if data[0] != TYPE_RELAY:
        raise DecodeError("not a relayed datagram")
    if data[1] != PROTOCOL_VERSION:
        raise DecodeError("unknown relay version")
    inner = data[RELAY_HEADER_SIZE:]
    if not TYPE_HANDSHAKE_INITIATION <= inner[0] <= TYPE_TRANSPORT:
        raise DecodeError("only session packets are relayed")
    return int.from_bytes(data[2:6], "big"), inner
