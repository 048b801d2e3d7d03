"""Address-validation tokens: proof that a requester receives at the address it sends from.

A token is a MAC of the requester's address under a secret that rotates every
``TOKEN_ROTATE_S``; tokens made under the current or the previous secret are accepted. A
node hands one out in every reply; STORE needs a valid one (so a record cannot be stored from a
spoofed source), and a reply to a request without one is never larger than the request (so the
overlay cannot be used to amplify a flood at someone else's address).
"""

import hashlib
import hmac

from peerline.ports import Rng
from peerline.types import Addr

TOKEN_ROTATE_S = 300.0
TOKEN_SIZE = 8
_PERSON = b"peerline-ovltokn"


class TokenIssuer:
    __slots__ = ("_current", "_previous", "_rng", "_rotated_at")

    def __init__(self, rng: Rng) -> None:
        self._rng = rng
        self._current = rng.random_bytes(32)
        self._previous = self._current
        self._rotated_at: float | None = None

    def _rotate(self, now: float) -> None:
        if self._rotated_at is None:
            self._rotated_at = now
        elif now - self._rotated_at >= TOKEN_ROTATE_S:
            stale = now - self._rotated_at >= 2 * TOKEN_ROTATE_S
            self._previous = self._rng.random_bytes(32) if stale else self._current
            self._current = self._rng.random_bytes(32)
            self._rotated_at = now

    @staticmethod
    def _make(secret: bytes, addr: Addr) -> bytes:
        text = f"{addr[0]}|{addr[1]}".encode()
        return hashlib.blake2b(text, digest_size=TOKEN_SIZE, key=secret, person=_PERSON).digest()

    def issue(self, addr: Addr, now: float) -> bytes:
        self._rotate(now)
        return self._make(self._current, addr)

    def valid(self, token: bytes, addr: Addr, now: float) -> bool:
        self._rotate(now)
        return hmac.compare_digest(token, self._make(self._current, addr)) or hmac.compare_digest(
            token, self._make(self._previous, addr)
        )
