"""Noise's CipherState and SymmetricState for 25519 / ChaChaPoly / BLAKE2b (Noise rev 34, §5).

Written straight from the specification on PyNaCl primitives; the published test vectors in
``tests/proto/noise`` pin the behaviour byte for byte.
"""

import hashlib
import hmac

from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError as NaclCryptoError

from peerline.errors import CryptoError

HASHLEN = 64
"""BLAKE2b output length (Noise §12.8)."""

KEYLEN = 32
TAGLEN = 16
MAX_NONCE = 2**64 - 1
"""Nonce 2^64-1 is reserved (Noise §5.1): it is used only by REKEY, never for a message."""


def nonce_bytes(n: int) -> bytes:
    """ChaChaPoly nonce: 32 bits of zeros, then the 64-bit counter little-endian (Noise §12.3)."""
    return b"\x00\x00\x00\x00" + n.to_bytes(8, "little")


def encrypt(k: bytes, n: int, ad: bytes, plaintext: bytes) -> bytes:
    return bytes(crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, ad, nonce_bytes(n), k))


def decrypt(k: bytes, n: int, ad: bytes, ciphertext: bytes) -> bytes:
    """Raise ``CryptoError`` if the tag does not verify."""
    try:
        return bytes(crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, ad, nonce_bytes(n), k))
    except NaclCryptoError as exc:
        raise CryptoError("authentication tag mismatch") from exc


def blake2b(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=HASHLEN).digest()


def hmac_blake2b(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.blake2b).digest()


def hkdf(chaining_key: bytes, ikm: bytes, outputs: int) -> tuple[bytes, ...]:
    """Noise's HKDF (§4.3), 2 or 3 outputs of HASHLEN bytes."""
    temp_key = hmac_blake2b(chaining_key, ikm)
    out1 = hmac_blake2b(temp_key, b"\x01")
    out2 = hmac_blake2b(temp_key, out1 + b"\x02")
    if outputs == 2:
        return out1, out2
    out3 = hmac_blake2b(temp_key, out2 + b"\x03")
    return out1, out2, out3


class CipherState:
    """A key and a counting nonce (Noise §5.1); with no key it passes data through."""

    __slots__ = ("k", "n")

    def __init__(self, k: bytes | None = None) -> None:
        self.k = k
        self.n = 0

    def has_key(self) -> bool:
        return self.k is not None

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self.k is None:
            return plaintext
        if self.n >= MAX_NONCE:
            raise CryptoError("nonce exhausted")
        out = encrypt(self.k, self.n, ad, plaintext)
        self.n += 1
        return out

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self.k is None:
            return ciphertext
        if self.n >= MAX_NONCE:
            raise CryptoError("nonce exhausted")
        out = decrypt(self.k, self.n, ad, ciphertext)
        self.n += 1
        return out


class SymmetricState:
    """Chaining key, handshake hash and the current CipherState (Noise §5.2)."""

    __slots__ = ("ck", "cipher", "h")

    def __init__(self, protocol_name: bytes) -> None:
        if len(protocol_name) <= HASHLEN:
            self.h = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            self.h = blake2b(protocol_name)
        self.ck = self.h
        self.cipher = CipherState()

    def copy(self) -> "SymmetricState":
        """A copy to try an incoming message on, so a forged one leaves this state untouched."""
        other = SymmetricState.__new__(SymmetricState)
        other.h, other.ck = self.h, self.ck
        other.cipher = CipherState(self.cipher.k)
        other.cipher.n = self.cipher.n
        return other

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = hkdf(self.ck, ikm, 2)
        self.cipher = CipherState(temp_k[:KEYLEN])

    def mix_hash(self, data: bytes) -> None:
        self.h = blake2b(self.h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[bytes, bytes]:
        """The two transport keys: (initiator->responder, responder->initiator)."""
        temp_k1, temp_k2 = hkdf(self.ck, b"", 2)
        return temp_k1[:KEYLEN], temp_k2[:KEYLEN]
