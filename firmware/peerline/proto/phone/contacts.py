"""The phone's stored peers: keys it trusts for a number (added by hand, or pinned on first use).

The core's copy of the ``peers`` table: read at start (``PhoneState``), changed only by the core,
and written back by the shell from the ``PeerSaved`` and ``PeerSeen`` events. A number may have
several keys (numbers collide): the phone never picks one of them silently.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from peerline.types import Addr

MAX_STORED_PEERS = 4096
"""Stored peers at most (the node keeps at most as many); beyond it, first-use pins are refused."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredPeer:
    public_key: bytes
    number: str
    addr: Addr
    "Where it was last known to be: a direct address (relay channels are never stored)."


class ContactBook:
    """Stored peers by key, with a by-number index."""

    def __init__(self, peers: Iterable[StoredPeer] = (), *, capacity: int = MAX_STORED_PEERS):
        self.capacity = capacity
        self._by_key: dict[bytes, StoredPeer] = {}
        self._by_number: dict[str, list[bytes]] = {}
        for peer in peers:
            self.save(peer)

    def save(self, peer: StoredPeer) -> bool:
        """Add or update; False (nothing stored) when full and the key is new."""
        old = self._by_key.get(peer.public_key)
        if old is None and len(self._by_key) >= self.capacity:
            return False
        if old is not None and old.number != peer.number:
            self._by_number[old.number].remove(peer.public_key)
        if old is None or old.number != peer.number:
            self._by_number.setdefault(peer.number, []).append(peer.public_key)
        self._by_key[peer.public_key] = peer
        return True

    def moved(self, public_key: bytes, addr: Addr) -> StoredPeer | None:
        """A stored peer was heard from at ``addr``: updated and returned; None if not stored."""
        old = self._by_key.get(public_key)
        if old is None:
            return None
        new = replace(old, addr=addr)
        self._by_key[public_key] = new
        return new

    def get(self, public_key: bytes) -> StoredPeer | None:
        return self._by_key.get(public_key)

    def by_number(self, number: str) -> list[StoredPeer]:
        """Every stored key for ``number``, in the order they were stored."""
        return [self._by_key[k] for k in self._by_number.get(number, ())]

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[StoredPeer]:
        return iter(list(self._by_key.values()))
