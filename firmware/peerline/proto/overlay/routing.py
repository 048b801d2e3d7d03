"""The routing table: k-buckets by XOR distance, with replacement caches and liveness.

Bucket ``i`` holds contacts whose distance from us has its highest set bit at ``i``. A bucket
keeps at most ``k`` contacts, least recently seen first; newcomers to a full bucket wait in its
replacement cache and move in when a contact fails. Only contacts that proved their key (an
authenticated message from them) enter, so the table cannot be filled with ids nobody holds.
At most ``per_subnet`` contacts of one bucket may share an IPv4 /24 or IPv6 /48, so one network
cannot take over a bucket by itself (loopback and private ranges are exempt: a LAN office).
"""

import functools
import ipaddress
from collections import defaultdict
from dataclasses import dataclass

from peerline.wire.overlay import Contact

from .ids import as_int

MAX_FAILURES = 2
"""Consecutive unanswered queries after which a contact leaves its bucket."""


@dataclass(slots=True)
class Entry:
    contact: Contact
    id: int
    last_seen: float
    subnet: str | None
    "``subnet_of`` the contact's host, kept with it for the per-subnet limit."
    failures: int = 0
    srtt: float | None = None
    "Smoothed round-trip time in seconds (RFC 6298 style), once measured."
    pinging: bool = False

    def note_rtt(self, sample: float) -> None:
        self.srtt = sample if self.srtt is None else 0.875 * self.srtt + 0.125 * sample


_LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)
"""Loopback, private (RFC 1918, RFC 4193) and link-local networks: a LAN office may put many
phones in one bucket. Listed here, not taken from ``ipaddress.is_private``, whose meaning
changes between Python versions and which also covers the documentation ranges."""


@functools.lru_cache(maxsize=16384)
def subnet_of(host: str) -> str | None:
    """The /24 or /48 a host belongs to, or None for loopback and private addresses."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return subnet_of(str(ip.ipv4_mapped))
    if any(ip in net for net in _LOCAL_NETWORKS):
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{host}/{prefix}", strict=False))


class RoutingTable:
    __slots__ = (
        "_buckets",
        "_by_id",
        "_replacements",
        "k",
        "own",
        "per_subnet",
        "touched",
        "touched_default",
    )

    def __init__(self, own_id: bytes, *, k: int, per_subnet: int = 2) -> None:
        self.own = as_int(own_id)
        self.k = k
        self.per_subnet = per_subnet
        # Buckets and caches by index, created on first use: a phone fills only about
        # log2(network size) of the 160, and a simulation holds many phones.
        self._buckets: defaultdict[int, list[Entry]] = defaultdict(list)
        self._replacements: defaultdict[int, list[Entry]] = defaultdict(list)
        self._by_id: dict[int, Entry] = {}
        self.touched: dict[int, float] = {}
        "When a lookup last went through each bucket; untouched buckets get refreshed."
        self.touched_default = 0.0
        "What ``last_touched`` says for a bucket no lookup has gone through yet."

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, ident: int) -> bool:
        return ident in self._by_id

    def get(self, ident: int) -> Entry | None:
        return self._by_id.get(ident)

    def bucket_index(self, ident: int) -> int:
        return (ident ^ self.own).bit_length() - 1

    def entries(self) -> list[Entry]:
        return list(self._by_id.values())

    def last_touched(self, index: int) -> float:
        return self.touched.get(index, self.touched_default)

    def nonempty_buckets(self) -> list[int]:
        return sorted(i for i, b in self._buckets.items() if b)

    def seen(self, contact: Contact, ident: int, now: float) -> Entry | None:
        """Record an authenticated message from ``contact``; returns its entry if it is in a bucket.

        A known contact is refreshed (and its address updated: it proved its key from there). A
        new one joins its bucket if there is room, else the replacement cache.
        """
        if ident == self.own:
            return None
        entry = self._by_id.get(ident)
        index = self.bucket_index(ident)
        if entry is not None:
            entry.last_seen = now
            entry.failures = 0
            bucket = self._buckets[index]
            bucket.remove(entry)
            if entry.contact.addr != contact.addr:
                entry.contact = contact
                entry.subnet = subnet_of(contact.addr[0])
                if not self._subnet_allows(bucket, entry.subnet):
                    # It moved into a subnet that already has its share of this bucket: it
                    # waits in the replacement cache like any newcomer from there.
                    del self._by_id[ident]
                    cache = self._replacements[index]
                    cache.append(entry)
                    if len(cache) > self.k:
                        del cache[0]
                    return None
            bucket.append(entry)
            return entry
        bucket = self._buckets[index]
        fresh = Entry(contact, ident, now, subnet_of(contact.addr[0]))
        cached = self._replacements.get(index)
        if cached:  # one copy of a contact at most: drop an older cached one
            for i, old in enumerate(cached):
                if old.id == ident:
                    del cached[i]
                    break
        if len(bucket) < self.k and self._subnet_allows(bucket, fresh.subnet):
            bucket.append(fresh)
            self._by_id[ident] = fresh
            return fresh
        cache = self._replacements[index]
        cache.append(fresh)
        if len(cache) > self.k:
            del cache[0]
        return None

    def _subnet_allows(self, bucket: list[Entry], subnet: str | None) -> bool:
        if subnet is None:
            return True
        held = 0
        for e in bucket:
            if e.subnet == subnet:
                held += 1
        return held < self.per_subnet

    def failed(self, ident: int) -> bool:
        """Count an unanswered query; returns True if the contact was removed."""
        entry = self._by_id.get(ident)
        if entry is None:
            return False
        entry.failures += 1
        entry.pinging = False
        index = self.bucket_index(ident)
        cache = self._replacements[index]
        if entry.failures < MAX_FAILURES and not cache:
            return False
        self._buckets[index].remove(entry)
        del self._by_id[ident]
        bucket = self._buckets[index]
        cache[:] = [c for c in cache if c.id != ident]
        for i in range(len(cache) - 1, -1, -1):  # the most recently seen first
            candidate = cache[i]
            if self._subnet_allows(bucket, candidate.subnet):
                del cache[i]
                bucket.append(candidate)
                self._by_id[candidate.id] = candidate
                break
        return True

    def remove(self, ident: int) -> None:
        entry = self._by_id.pop(ident, None)
        if entry is not None:
            self._buckets[self.bucket_index(ident)].remove(entry)

    def closest(self, target: int, count: int) -> list[Entry]:
        """The ``count`` known contacts nearest ``target``, nearest first."""
        entries = self._by_id.values()
        if len(entries) <= count:
            return sorted(entries, key=lambda e: e.id ^ target)
        # Buckets nearer the target's bucket hold the nearest contacts; start there and widen.
        start = (target ^ self.own).bit_length() - 1
        buckets = self._buckets
        picked: list[Entry] = []
        farther: list[int] = []
        for i, bucket in buckets.items():
            if i <= start:
                picked.extend(bucket)
            else:
                farther.append(i)
        if len(picked) < count:
            for i in sorted(farther):
                picked.extend(buckets[i])
                if len(picked) >= count:
                    break
        # The nearest `count` lie among the target's bucket, all nearer buckets and as many
        # farther ones as needed; sorting that set by true distance gives the exact answer.
        picked.sort(key=lambda e: e.id ^ target)
        return picked[:count]

    def stale(self, now: float, older_than: float, limit: int) -> list[Entry]:
        """Up to ``limit`` contacts silent for ``older_than`` seconds, quietest first."""
        cutoff = now - older_than
        old = [e for e in self._by_id.values() if e.last_seen <= cutoff and not e.pinging]
        old.sort(key=lambda e: e.last_seen)
        return old[:limit]
