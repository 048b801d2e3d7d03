"""A phone's long-term identity: one Ed25519 key pair, with the X25519 pair derived from it.

One seed is the whole identity, so the key file holds 32 secret bytes and nothing can drift out
of step: Ed25519 signs records, and the X25519 pair (libsodium's birational map, RFC 7748 §4.1
and RFC 8032 §5.1.5) is the Noise static key. See ``docs/protocol.md`` §2.1 and §2.2.
"""

import hmac
from typing import Final, NoReturn, Self

import nacl.bindings
import nacl.exceptions

from peerline.errors import InvalidKey
from peerline.ports import Rng

SEED_SIZE: Final = 32
"""Bytes in an Ed25519 seed (RFC 8032 §5.1.5, the private key ``k``)."""

PUBLIC_KEY_SIZE: Final = 32
"""Bytes in an encoded Ed25519 public key and in an X25519 public key."""

SIGNATURE_SIZE: Final = 64
"""Bytes in an Ed25519 signature ``R || S``."""

__all__ = [
    "PUBLIC_KEY_SIZE",
    "SEED_SIZE",
    "SIGNATURE_SIZE",
    "Identity",
    "verify_signature",
    "x25519_public_from_ed25519",
]


class Identity:
    """An Ed25519 key pair and the X25519 key pair derived from it; immutable.

    Built from the seed alone so that a key file cannot hold a mismatched pair. ``repr`` and
    ``str`` show only the public key, so logging an identity never leaks it.

    Example::

        me = Identity.generate(OsRng())
        sig = me.sign(b"record")
        assert verify_signature(me.public_key, b"record", sig)
    """

    __slots__ = ("_secret_key", "_seed", "public_key", "x25519_private", "x25519_public")

    public_key: bytes
    """Ed25519 public key, 32 bytes: what records carry and what numbers derive from."""
    x25519_private: bytes
    """X25519 private scalar, 32 bytes, for Noise DH. Secret."""
    x25519_public: bytes
    """X25519 public key, 32 bytes; equals ``x25519_public_from_ed25519(public_key)``."""
    _seed: bytes
    _secret_key: bytes

    def __init__(self, seed: bytes) -> None:
        """Prefer ``from_seed`` or ``generate``. Raises InvalidKey unless ``seed`` is 32 bytes."""
        if not _is_bytes_of(seed, SEED_SIZE):
            raise InvalidKey(f"an Ed25519 seed is {SEED_SIZE} bytes")
        public_key, secret_key = nacl.bindings.crypto_sign_seed_keypair(bytes(seed))
        object.__setattr__(self, "_seed", bytes(seed))
        object.__setattr__(self, "_secret_key", secret_key)
        object.__setattr__(self, "public_key", public_key)
        object.__setattr__(
            self,
            "x25519_private",
            nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(secret_key),
        )
        object.__setattr__(
            self,
            "x25519_public",
            nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(public_key),
        )

    @classmethod
    def from_seed(cls, seed: bytes) -> Self:
        """Rebuild the identity stored in a key file. Raises InvalidKey unless 32 bytes."""
        return cls(seed)

    @classmethod
    def generate(cls, rng: Rng) -> Self:
        """Make a new identity at first boot; the seed comes from ``rng`` (OsRng on a phone).

        Then: ``peerline.store.keyfile.write_identity`` before the key is used anywhere.
        """
        return cls(rng.random_bytes(SEED_SIZE))

    @property
    def seed(self) -> bytes:
        """The 32-byte secret seed; only the key file writer needs it."""
        return self._seed

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte detached Ed25519 signature of ``message``."""
        signed = nacl.bindings.crypto_sign(bytes(message), self._secret_key)
        return signed[:SIGNATURE_SIZE]

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"Identity is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"Identity is immutable; cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        return hmac.compare_digest(self._seed, other._seed)

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __repr__(self) -> str:
        return f"Identity(public_key={self.public_key.hex()!r})"

    __str__ = __repr__

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self

    def __reduce__(self) -> NoReturn:
        """Refuse pickling: secret material goes to disk only through the key file writer."""
        raise TypeError("Identity is not picklable; store it with peerline.store.keyfile")


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s Ed25519 signature of ``message``.

    Takes remote input, so it never raises: wrong types, wrong lengths, invalid or small-order
    keys and non-canonical signatures all give False (libsodium's strict verification).
    """
    if not (
        _is_bytes_of(public_key, PUBLIC_KEY_SIZE)
        and _is_bytes_of(signature, SIGNATURE_SIZE)
        and isinstance(message, bytes | bytearray)
    ):
        return False
    try:
        nacl.bindings.crypto_sign_open(bytes(signature) + bytes(message), bytes(public_key))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


def x25519_public_from_ed25519(public_key: bytes) -> bytes:
    """The X25519 key a peer's Noise static key must equal, from its Ed25519 key.

    Raises InvalidKey if ``public_key`` is not 32 bytes or libsodium rejects the point (not on
    the curve, non-canonical, or of small order).
    """
    if not _is_bytes_of(public_key, PUBLIC_KEY_SIZE):
        raise InvalidKey(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes")
    try:
        return nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(bytes(public_key))
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise InvalidKey("not a usable Ed25519 public key (rejected by libsodium)") from exc


def _is_bytes_of(value: object, size: int) -> bool:
    """Type and length check on ``object`` so callers can test remote input without raising."""
    return isinstance(value, bytes | bytearray) and len(value) == size
