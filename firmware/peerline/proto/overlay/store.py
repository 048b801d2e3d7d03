"""Records this node stores for others, with limits per number, per source and in total.

Every valid record for a number is kept (numbers can collide, and the caller must see the
conflict), up to ``per_number`` keys; for one key a higher sequence number replaces a lower one
and a lower one is refused, so an old record can never push out a newer one. A record lives
``ttl_s`` from when it was stored; its publisher republishes before then.
"""

import heapq
from collections import Counter
from dataclasses import dataclass

from peerline.wire.overlay import StoreStatus
from peerline.wire.record import Record


@dataclass(slots=True)
class _Held:
    record: Record
    raw: bytes
    expires: float
    source: str


class RecordStore:
    __slots__ = (
        "_count",
        "_expiry",
        "_keys",
        "_per_source",
        "max_records",
        "per_number",
        "per_source",
    )

    def __init__(self, *, max_records: int, per_source: int, per_number: int) -> None:
        self.max_records = max_records
        self.per_source = per_source
        self.per_number = per_number
        self._keys: dict[bytes, dict[bytes, _Held]] = {}
        self._per_source: Counter[str] = Counter()
        self._expiry: list[tuple[float, bytes, bytes]] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def precheck(
        self, key: bytes, record: Record, raw: bytes, source: str, now: float
    ) -> tuple[StoreStatus, int] | None:
        """What ``put`` would refuse with, before paying for the number-binding check; None if
        it would store. Cheap, so limits are enforced before any expensive work."""
        self.expire(now)
        slot = self._keys.get(key)
        held = slot.get(record.public_key) if slot else None
        if held is not None:
            if record.seq < held.record.seq or (record.seq == held.record.seq and raw != held.raw):
                return StoreStatus.STALE, held.record.seq
            if source != held.source and self._per_source[source] >= self.per_source:
                return StoreStatus.FULL, 0
            return None
        if slot is not None and len(slot) >= self.per_number:
            return StoreStatus.FULL, 0
        if self._per_source[source] >= self.per_source or self._count >= self.max_records:
            return StoreStatus.FULL, 0
        return None

    def put(
        self, key: bytes, record: Record, raw: bytes, source: str, now: float
    ) -> tuple[StoreStatus, int]:
        """Store a checked record; returns the status and, for STALE, the sequence held."""
        self.expire(now)
        slot = self._keys.get(key)
        held = slot.get(record.public_key) if slot else None
        if held is not None:
            if record.seq < held.record.seq:
                return StoreStatus.STALE, held.record.seq
            if record.seq == held.record.seq and raw != held.raw:
                return StoreStatus.STALE, held.record.seq  # one seq, two contents: keep the first
            if source != held.source and self._per_source[source] >= self.per_source:
                return StoreStatus.FULL, 0  # the new source pays for what it stores
            self._per_source[held.source] -= 1
            if not self._per_source[held.source]:
                del self._per_source[held.source]
            self._per_source[source] += 1
            held.record, held.raw, held.source = record, raw, source
            held.expires = now + record.ttl_s
            heapq.heappush(self._expiry, (held.expires, key, record.public_key))
            return StoreStatus.STORED, 0
        if slot is not None and len(slot) >= self.per_number:
            return StoreStatus.FULL, 0
        if self._per_source[source] >= self.per_source or len(self) >= self.max_records:
            return StoreStatus.FULL, 0
        entry = _Held(record, raw, now + record.ttl_s, source)
        self._keys.setdefault(key, {})[record.public_key] = entry
        self._count += 1
        self._per_source[source] += 1
        heapq.heappush(self._expiry, (entry.expires, key, record.public_key))
        return StoreStatus.STORED, 0

    def refresh(self, key: bytes, record: Record, raw: bytes, now: float) -> bool:
        """Replace a held record with a newer one of the same key, learned from a lookup (not
        stored for anyone new: the source that stored the old one keeps paying for it)."""
        self.expire(now)
        slot = self._keys.get(key)
        held = slot.get(record.public_key) if slot else None
        if held is None or record.seq <= held.record.seq:
            return False
        held.record, held.raw = record, raw
        held.expires = now + record.ttl_s
        heapq.heappush(self._expiry, (held.expires, key, record.public_key))
        return True

    def get(self, key: bytes, now: float) -> list[bytes]:
        self.expire(now)
        slot = self._keys.get(key)
        return [h.raw for h in slot.values()] if slot else []

    def items(self, now: float) -> list[tuple[bytes, bytes]]:
        """Every (key, raw record) held."""
        self.expire(now)
        return [(key, h.raw) for key, slot in self._keys.items() for h in slot.values()]

    def expire(self, now: float) -> None:
        heap = self._expiry
        while heap and heap[0][0] <= now:
            _, key, public_key = heapq.heappop(heap)
            slot = self._keys.get(key)
            held = slot.get(public_key) if slot else None
            if slot is None or held is None or held.expires > now:
                continue  # refreshed since; a newer heap entry stands for it
            del slot[public_key]
            self._count -= 1
            self._per_source[held.source] -= 1
            if not self._per_source[held.source]:
                del self._per_source[held.source]
            if not slot:
                del self._keys[key]
