"""The short authentication string both displays show during a call.

Both phones compute it from the final Noise handshake hash ``h``; a man in the middle runs two
handshakes with different ``h``, so reading the six digits aloud exposes him except with chance
1 in 10**6. See ``docs/protocol.md`` §2.4.
"""

import hashlib
from typing import Final

SAS_DIGITS: Final = 6
"""Decimal digits shown, as two groups of three."""

SAS_PERSON: Final = b"peerline-sas"
"""BLAKE2b personalisation, so the SAS never equals any other hash of ``h`` the protocol uses."""

SAS_HASH_BYTES: Final = 8
"""BLAKE2b digest size; read as a big-endian integer before reduction mod 10**6."""

HANDSHAKE_HASH_SIZE: Final = 64
"""Bytes in a Noise handshake hash with BLAKE2b (HASHLEN)."""

__all__ = [
    "HANDSHAKE_HASH_SIZE",
    "SAS_DIGITS",
    "SAS_HASH_BYTES",
    "SAS_PERSON",
    "short_authentication_string",
]


def short_authentication_string(handshake_hash: bytes) -> str:
    """Six digits from the handshake hash, shown as ``"123 456"``.

    Raises ValueError unless ``handshake_hash`` is 64 bytes: a wrong length means the caller
    passed something other than the Noise ``h``, and a SAS from it would prove nothing.
    """
    if not (
        isinstance(handshake_hash, bytes | bytearray) and len(handshake_hash) == HANDSHAKE_HASH_SIZE
    ):
        raise ValueError(f"the SAS needs the {HANDSHAKE_HASH_SIZE}-byte Noise handshake hash")
    digest = hashlib.blake2b(
        bytes(handshake_hash), digest_size=SAS_HASH_BYTES, person=SAS_PERSON
    ).digest()
    digits = f"{int.from_bytes(digest, 'big') % 10**SAS_DIGITS:0{SAS_DIGITS}d}"
    return f"{digits[:3]} {digits[3:]}"
