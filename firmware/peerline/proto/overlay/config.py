"""The overlay's tunables (``OverlayConfig``) and its counters (``OverlayCounters``).

Every part of the overlay (``rpc``, ``serving``, ``lookups``, ``publishing``, ``roles``) reads
the one config and counts into the one counters object; they live here so that the parts can
import them without importing the ``Overlay`` facade that composes the parts. Both are
re-exported by ``proto.overlay.overlay``. Counters of the NAT services that register on the
overlay (introductions, relay channels) are in ``proto.nat``.
"""

from dataclasses import asdict, dataclass

from peerline.wire.overlay import MAX_CONTACTS
from peerline.wire.record import MAX_TTL_S

from .records import Verdict


@dataclass(frozen=True, slots=True, kw_only=True)
class OverlayConfig:
    """Tunables that do not change the wire format."""

    k: int = 8
    "Bucket size, replication factor and lookup result size."
    alpha: int = 2
    "Queries in flight per lookup path."
    paths: int = 2
    "Disjoint lookup paths (S/Kademlia's d)."
    member: bool | None = True
    """Serve the DHT as a supernode (True), only use it as a client behind NAT (False), or decide
    by reachability (None: a supernode once two peers see it at one of its own addresses)."""
    relays: int = 3
    "Supernodes a client keeps a path open through and lists in its record."
    relay_keepalive_s: float = 15.0
    "How often a client pings its supernodes: holds its NAT mapping open (<= 25 s)."
    max_clients: int = 256
    "Clients a supernode keeps; beyond this it answers new ones FULL (its per-client quota)."
    query_timeout_s: float = 0.6
    "Soft timeout of a query to a node with no measured RTT: its slot goes to the next node."
    query_hard_timeout_s: float = 2.0
    "A query unanswered this long counts as a failure against the node."
    lookup_timeout_s: float = 10.0
    record_ttl_s: int = 3600
    republish_s: float = 1200.0
    "Own record is stored again this often (well inside its TTL), and at once when it changes."
    refresh_s: float = 1800.0
    "A bucket no lookup went through for this long is refreshed with a lookup into it."
    ping_after_s: float = 900.0
    "A contact silent this long is pinged before it is trusted again."
    maintenance_s: float = 60.0
    pings_per_maintenance: int = 16
    seed_retry_s: float = 1.0
    """A seed that has not answered is pinged again this long after the first ping, then after
    twice as long each time, ``seed_retries`` times (a seed that starts a moment later)."""
    seed_retries: int = 6
    requests_per_source_per_s: float = 20.0
    request_burst: float = 60.0
    new_pairs_per_s: float = 200.0
    "Pair-key derivations (two curve operations each) allowed per second for unknown senders."
    max_records: int = 20000
    max_records_per_source: int = 64
    max_keys_per_number: int = 4
    max_lookups: int = 64
    max_pending: int = 1024

    def __post_init__(self) -> None:
        if not (1 <= self.k <= MAX_CONTACTS and self.alpha >= 1 and self.paths >= 1):
            raise ValueError("k must be in [1, 16]; alpha and paths at least 1")
        if not 0 < self.record_ttl_s <= MAX_TTL_S or self.republish_s >= self.record_ttl_s:
            raise ValueError(f"record_ttl_s in (0, {MAX_TTL_S}] and republish_s below it")


@dataclass(slots=True)
class OverlayCounters:
    rx_datagrams: int = 0
    rx_bytes: int = 0
    tx_datagrams: int = 0
    tx_bytes: int = 0
    "Everything the overlay sent, relayed session packets it forwarded as a supernode included."
    dropped_malformed: int = 0
    dropped_bad_mac: int = 0
    "Failed authentication: forged sender or tampered message."
    dropped_rate_limited: int = 0
    dropped_busy: int = 0
    "Messages from unknown senders beyond the pair-key budget."
    dropped_unsolicited: int = 0
    "Replies that match no query of ours (late, duplicated or forged)."
    replies_truncated: int = 0
    "Replies cut to the request's size because the requester's address was not validated."
    queries_answered: int = 0
    queries_sent: int = 0
    query_timeouts: int = 0
    records_stored: int = 0
    stores_bad_token: int = 0
    "STOREs whose token did not match the source address (spoofed or stale source)."
    records_rejected_signature: int = 0
    records_rejected_binding: int = 0
    "Key does not derive to the record's number (or not the number asked for)."
    records_rejected_stale: int = 0
    records_repaired: int = 0
    "Newer records a lookup of ours handed to storers that answered it with an older one (ours"
    " included)."
    records_rejected_oversize: int = 0
    records_rejected_malformed: int = 0
    records_rejected_full: int = 0
    records_unchecked: int = 0
    "Records a lookup did not verify: beyond LONE_KEYS_CHECKED_PER_LOOKUP lone keys."
    keepalive_bytes_sent: int = 0
    "Bytes of a client's keepalive pings to its relays (the pongs cost about as much again)."
    clients_refused: int = 0
    "Pings from new clients answered FULL (over ``max_clients``)."
    lookups_started: int = 0
    lookups_completed: int = 0
    lookups_failed: int = 0
    publishes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def count_rejected(self, verdict: Verdict) -> None:
        """A record refused for ``verdict`` (anything but VALID and PENDING)."""
        if verdict is Verdict.BAD_SIGNATURE:
            self.records_rejected_signature += 1
        elif verdict is Verdict.WRONG_NUMBER:
            self.records_rejected_binding += 1
        else:
            self.records_rejected_malformed += 1
