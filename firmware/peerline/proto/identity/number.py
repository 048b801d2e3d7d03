"""The 12-digit dialable number: argon2id of the Ed25519 public key, so numbers self-certify.

A record for a number is valid only if its key derives to that number, and the memory-hard
derivation makes grinding a chosen number cost thousands of CPU-years. Numbers still collide
(about a million phones), so callers keep every valid record for a number and never pick one
silently. Every value here is part of the protocol: ``docs/protocol.md`` §2.3.
"""

from typing import Final

import nacl.bindings

from peerline.errors import InvalidKey
from peerline.wire.number_text import NUMBER_DIGITS, format_number, parse_number

NUMBER_SALT: Final = b"peerline-number1"
"""argon2id salt: fixed, exactly 16 bytes (libsodium's crypto_pwhash_SALTBYTES)."""

NUMBER_OPSLIMIT: Final = 1
"""argon2id passes over memory (t). Protocol constant: changing it renumbers every phone."""

NUMBER_MEMLIMIT: Final = 64 * 1024 * 1024
"""argon2id memory in bytes (64 MiB, m = 65536 KiB). Protocol constant, like the passes.

One pass over 64 MiB (RFC 9106 §4 favours memory over passes): about 68 ms median here on a
2-core x86_64, single-threaded, which keeps a check near the ~0.5-0.7 s the brief allows on a
512 MB Raspberry Pi Zero 2 W while grinding a chosen number costs about 2,150 CPU-years.
"""

NUMBER_HASH_BYTES: Final = 16
"""argon2id output length; the first 8 bytes become the number."""

_ALG: Final = nacl.bindings.crypto_pwhash_ALG_ARGON2ID13
_PUBLIC_KEY_SIZE: Final = 32
_ASCII_DIGITS: Final = frozenset("0123456789")

assert len(NUMBER_SALT) == nacl.bindings.crypto_pwhash_SALTBYTES
assert nacl.bindings.crypto_pwhash_argon2id_OPSLIMIT_MIN <= NUMBER_OPSLIMIT
assert nacl.bindings.crypto_pwhash_argon2id_MEMLIMIT_MIN <= NUMBER_MEMLIMIT

__all__ = [
    "NUMBER_DIGITS",
    "NUMBER_HASH_BYTES",
    "NUMBER_MEMLIMIT",
    "NUMBER_OPSLIMIT",
    "NUMBER_SALT",
    "derive_number",
    "format_number",
    "parse_number",
    "verify_number",
]


def derive_number(public_key: bytes) -> str:
    """The canonical number (12 ASCII digits) of an Ed25519 public key (~68 ms of argon2id).

    Raises InvalidKey unless ``public_key`` is 32 bytes. Then: ``format_number`` to show it.
    """
    if not (isinstance(public_key, bytes | bytearray) and len(public_key) == _PUBLIC_KEY_SIZE):
        raise InvalidKey(f"a number derives from a {_PUBLIC_KEY_SIZE}-byte Ed25519 public key")
    digest = nacl.bindings.crypto_pwhash_alg(
        NUMBER_HASH_BYTES,
        bytes(public_key),
        NUMBER_SALT,
        NUMBER_OPSLIMIT,
        NUMBER_MEMLIMIT,
        _ALG,
    )
    value = int.from_bytes(digest[:8], "big") % 10**NUMBER_DIGITS
    return f"{value:0{NUMBER_DIGITS}d}"


def verify_number(number: str, public_key: bytes) -> bool:
    """Whether ``public_key`` derives to ``number``; the check every directory record gets.

    ``number`` must be canonical (12 ASCII digits, as records carry it); run ``parse_number``
    first on anything a person typed. Never raises: malformed input of any kind gives False,
    and is rejected before paying for a derivation.
    """
    if not _is_canonical(number):
        return False
    if not (isinstance(public_key, bytes | bytearray) and len(public_key) == _PUBLIC_KEY_SIZE):
        return False
    return derive_number(public_key) == number


def _is_canonical(number: object) -> bool:
    """Exactly 12 ASCII digits; typed as ``object`` so remote input can be tested safely."""
    return (
        isinstance(number, str)
        and len(number) == NUMBER_DIGITS
        and all(ch in _ASCII_DIGITS for ch in number)
    )
