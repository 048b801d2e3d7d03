"""Message authentication between two overlay nodes: a MAC key from their static keys.

Each phone's X25519 key is derived from its Ed25519 identity, so two phones that know each
other's Ed25519 key share ``X25519(a, B) = X25519(b, A)`` without a round trip. A 16-byte
keyed BLAKE2b over every overlay message then proves to each side that the other holds the key
behind its node id, for one hash per message once the pair key is cached (a signature would
cost 64 bytes and ~70 us per message). Replies are bound to their request by the txid.
"""

import functools
import hashlib
from collections import OrderedDict

import nacl.bindings
import nacl.exceptions

_PAIR_PERSON = b"peerline-ovlpair"
MAC_SIZE = 16


class PairKeys:
    """Pair keys with one peer each, in a bounded LRU cache (each costs ~90 us to derive)."""

    __slots__ = ("_cache", "_capacity", "_public", "_x25519_private", "derived")

    def __init__(self, *, x25519_private: bytes, public_key: bytes, capacity: int = 4096) -> None:
        self._x25519_private = x25519_private
        self._public = public_key
        self._capacity = capacity
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self.derived = 0
        "How many pair keys were computed (a cache miss costs two curve operations)."

    def cached(self, peer_public_key: bytes) -> bool:
        return peer_public_key in self._cache

    def key_for(self, peer_public_key: bytes) -> bytes | None:
        """The pair key with ``peer_public_key``, or None if that key is not a usable point."""
        key = self._cache.get(peer_public_key)
        if key is not None:
            self._cache.move_to_end(peer_public_key)
            return key
        try:
            peer_x = _x25519_of(peer_public_key)
            shared = nacl.bindings.crypto_scalarmult(self._x25519_private, peer_x)
        except (nacl.exceptions.CryptoError, nacl.exceptions.RuntimeError, ValueError, TypeError):
            return None
        if shared.count(0) == len(shared):
            return None  # small-order point: no secret at all
        lo, hi = sorted((self._public, peer_public_key))
        key = hashlib.blake2b(shared + lo + hi, digest_size=32, person=_PAIR_PERSON).digest()
        self.derived += 1
        self._cache[peer_public_key] = key
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return key


@functools.lru_cache(maxsize=16384)
def _x25519_of(public_key: bytes) -> bytes:
    """Ed25519 -> X25519 public key (a pure function worth caching: it costs ~55 us)."""
    return nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(public_key)


def mac(key: bytes, data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=MAC_SIZE, key=key).digest()
