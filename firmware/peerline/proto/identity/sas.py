"""The short authentication strings both displays show: the connection's and a call's.

Both phones compute the connection SAS from the final Noise handshake hash ``h``; a man in the
middle runs two handshakes with different ``h``, so reading the six digits aloud exposes him
except with chance 1 in 10**6, unless he searches for a match offline (``docs/protocol.md``
§2.4, §7.10).

The call SAS (§2.6) closes that search: it also hashes a nonce from each phone, exchanged per
call with a commitment (the callee commits to its nonce before it sees the caller's, and the
caller reveals its own before it sees the callee's), so a man in the middle matches with chance
1 in 10**6 per call whatever his computing power.
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

SAS_NONCE_SIZE: Final = 16
"""Bytes in each phone's call-SAS nonce (SAS_NONCE, SAS_REVEAL)."""

SAS_COMMITMENT_SIZE: Final = 32
"""Bytes in the callee's commitment to its nonce (SAS_COMMIT)."""

SAS_COMMIT_PERSON: Final = b"peerline-sascmt"
"""BLAKE2b personalisation of the commitment ``H(n_r)``."""

CALL_SAS_PERSON: Final = b"peerline-callsas"
"""BLAKE2b personalisation of the call SAS (exactly BLAKE2b's 16 bytes)."""

CALL_ID_SIZE: Final = 8
"""Bytes in a call id (``peerline.wire.call.CALL_ID_SIZE``)."""

__all__ = [
    "CALL_SAS_PERSON",
    "HANDSHAKE_HASH_SIZE",
    "SAS_COMMITMENT_SIZE",
    "SAS_COMMIT_PERSON",
    "SAS_DIGITS",
    "SAS_HASH_BYTES",
    "SAS_NONCE_SIZE",
    "SAS_PERSON",
    "call_sas",
    "sas_commitment",
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
    return _digits(digest)


def sas_commitment(nonce: bytes) -> bytes:
    """The callee's commitment to its call-SAS nonce ``n_r``: BLAKE2b-256 of it, personalised.

    Sent in SAS_COMMIT before the caller's nonce is known; the caller checks the nonce later
    revealed against it. Raises ValueError unless ``nonce`` is 16 bytes.
    """
    _check_bytes(nonce, SAS_NONCE_SIZE, "nonce")
    return hashlib.blake2b(
        bytes(nonce), digest_size=SAS_COMMITMENT_SIZE, person=SAS_COMMIT_PERSON
    ).digest()


def call_sas(
    connection_hash: bytes, call_id: bytes, caller_nonce: bytes, callee_nonce: bytes
) -> str:
    """The six digits both phones show for one call, as ``"123 456"`` (protocol.md §2.6).

    ``connection_hash`` is the handshake hash ``h`` of the session that started the connection
    (``Session.connection_hash``), ``call_id`` the call's id, and the nonces the caller's
    (SAS_NONCE) and the callee's (SAS_REVEAL, checked against its commitment). Raises
    ValueError on a wrong length: 64, 8, 16 and 16 bytes.
    """
    _check_bytes(connection_hash, HANDSHAKE_HASH_SIZE, "connection_hash")
    _check_bytes(call_id, CALL_ID_SIZE, "call_id")
    _check_bytes(caller_nonce, SAS_NONCE_SIZE, "caller_nonce")
    _check_bytes(callee_nonce, SAS_NONCE_SIZE, "callee_nonce")
    data = bytes(connection_hash) + bytes(call_id) + bytes(caller_nonce) + bytes(callee_nonce)
    digest = hashlib.blake2b(data, digest_size=SAS_HASH_BYTES, person=CALL_SAS_PERSON).digest()
    return _digits(digest)


def _digits(digest: bytes) -> str:
    """The digest as a big-endian integer mod 10**6, shown as two groups of three digits."""
    digits = f"{int.from_bytes(digest, 'big') % 10**SAS_DIGITS:0{SAS_DIGITS}d}"
    return f"{digits[:3]} {digits[3:]}"


def _check_bytes(value: bytes, size: int, what: str) -> None:
    if not (isinstance(value, bytes | bytearray) and len(value) == size):
        raise ValueError(f"{what} must be {size} bytes")
