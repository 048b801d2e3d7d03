"""DoS protection for the handshake: mac1 on every initiation, cookies when under load.

An initiation costs the responder three X25519 operations, so:

- ``mac1`` (keyed with a hash of the responder's static key) lets a responder drop, for the cost
  of one BLAKE2b, any initiation not made by someone who knows its key (scanners, junk).
- Under load, a responder answers an initiation without a valid ``mac2`` with a small cookie
  reply instead of doing the handshake. The cookie is a MAC of the sender's address under a
  secret that changes every two minutes; an initiator that can receive at its address puts it
  in ``mac2`` of its next attempt, which proves the address is not spoofed.

The cookie reply is 62 bytes against an initiation's 166: no amplification. It is encrypted
(XChaCha20-Poly1305) with a key only the initiator can also derive, bound to the initiation's
mac1, so an off-path attacker can neither read nor forge one (docs/protocol.md §4.5).
"""

import hashlib
import hmac
import ipaddress

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError as NaclCryptoError

from peerline.errors import CryptoError
from peerline.ports import Rng
from peerline.types import Addr

MAC_SIZE = 16
COOKIE_SIZE = 16
COOKIE_NONCE_SIZE = 24
COOKIE_SECRET_LIFETIME = 120.0
"""The responder's cookie secret changes this often; a cookie is good for one lifetime."""
COOKIE_USE_MARGIN = 10.0
"""An initiator stops using a cookie this long before it could expire."""
LABEL_MAC1 = b"peerline-mac1---"
LABEL_COOKIE = b"peerline-cookie-"


def _hash32(label: bytes, static_public: bytes) -> bytes:
    return hashlib.blake2b(label + static_public, digest_size=32).digest()


def mac1_key(static_public: bytes) -> bytes:
    """Key for mac1, from the responder's X25519 static public key."""
    return _hash32(LABEL_MAC1, static_public)


def cookie_key(static_public: bytes) -> bytes:
    """Key that encrypts a cookie reply, from the responder's X25519 static public key."""
    return _hash32(LABEL_COOKIE, static_public)


def mac(key: bytes, data: bytes) -> bytes:
    """Keyed BLAKE2b-128."""
    return hashlib.blake2b(data, digest_size=MAC_SIZE, key=key).digest()


def address_bytes(addr: Addr) -> bytes:
    """The packed IP (4 or 16 bytes) followed by the port (u16): what a cookie vouches for."""
    try:
        packed = ipaddress.ip_address(addr[0]).packed
    except ValueError:
        packed = addr[0].encode("utf-8", "replace")[:255]
    return packed + (addr[1] & 0xFFFF).to_bytes(2, "big")


def seal_cookie(key: bytes, nonce: bytes, cookie: bytes, mac1: bytes) -> bytes:
    return bytes(crypto_aead_xchacha20poly1305_ietf_encrypt(cookie, mac1, nonce, key))


def open_cookie(key: bytes, nonce: bytes, sealed: bytes, mac1: bytes) -> bytes:
    """Decrypt a cookie reply's cookie; ``CryptoError`` if forged or not for ``mac1``."""
    try:
        return bytes(crypto_aead_xchacha20poly1305_ietf_decrypt(sealed, mac1, nonce, key))
    except NaclCryptoError as exc:
        raise CryptoError("cookie reply does not authenticate") from exc


class CookieChecker:
    """The responder's side: checks mac1 and mac2, and makes cookies for addresses."""

    __slots__ = ("_cookie_key", "_mac1_key", "_rng", "_secret", "_secret_at", "_previous")

    def __init__(self, static_public: bytes, rng: Rng) -> None:
        self._mac1_key = mac1_key(static_public)
        self._cookie_key = cookie_key(static_public)
        self._rng = rng
        self._secret = b""
        self._previous = b""
        self._secret_at = float("-inf")

    def mac1_ok(self, data: bytes, received_mac1: bytes) -> bool:
        return hmac.compare_digest(mac(self._mac1_key, data), received_mac1)

    def _rotate(self, now: float) -> None:
        if now - self._secret_at >= COOKIE_SECRET_LIFETIME:
            fresh_for_one_more = now - self._secret_at < 2 * COOKIE_SECRET_LIFETIME
            self._previous = self._secret if fresh_for_one_more else b""
            self._secret = self._rng.random_bytes(32)
            self._secret_at = now

    def cookie_for(self, addr: Addr, *, now: float) -> bytes:
        self._rotate(now)
        return mac(self._secret, address_bytes(addr))

    def mac2_ok(self, data: bytes, received_mac2: bytes, addr: Addr, *, now: float) -> bool:
        """True if ``received_mac2`` was made with a current (or just-replaced) cookie."""
        self._rotate(now)
        where = address_bytes(addr)
        for secret in (self._secret, self._previous):
            if secret and hmac.compare_digest(mac(mac(secret, where), data), received_mac2):
                return True
        return False

    def sealed_cookie(self, addr: Addr, mac1: bytes, *, now: float) -> tuple[bytes, bytes]:
        """(nonce, encrypted cookie) for a cookie reply answering an initiation with ``mac1``."""
        nonce = self._rng.random_bytes(COOKIE_NONCE_SIZE)
        return nonce, seal_cookie(self._cookie_key, nonce, self.cookie_for(addr, now=now), mac1)
