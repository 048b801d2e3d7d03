"""The overlay endpoint: a Kademlia node that serves, looks up and publishes signed records.

Sans-I/O, like ``proto.node.Node``: ``receive_datagram`` / ``datagrams_to_send`` /
``get_timer`` / ``handle_timer`` / ``next_event``, plus the calls a phone makes (``bootstrap``,
``lookup``, ``publish``). It shares the phone's UDP socket; ``proto.engine`` routes packet
type 0x54 here. docs/protocol.md §9-§10 specify the messages; docs/overlay.md the design.
"""

import heapq
import hmac
import itertools
from collections import Counter, OrderedDict, deque
from dataclasses import asdict, dataclass, field
from enum import IntEnum

from peerline.errors import DecodeError, LocalProtocolError
from peerline.ports import Rng
from peerline.proto.identity import Identity
from peerline.proto.nat.relay import RelayConfig, RelayTable
from peerline.types import Addr
from peerline.wire.overlay import (
    FLAG_ANONYMOUS,
    FLAG_FULL,
    FLAG_MEMBER,
    FLAG_TRUNCATED,
    MAX_CANDIDATES,
    MAX_CONTACTS,
    MAX_RECORD_SIZE,
    MAX_RECORDS_PER_REPLY,
    NO_TOKEN,
    OVERLAY_MAC_SIZE,
    REQUESTS,
    Body,
    Contact,
    FindNode,
    FindValue,
    Header,
    IntroAck,
    Introduce,
    Introduction,
    IntroStatus,
    Kind,
    Nodes,
    OverlayMessage,
    Ping,
    Pong,
    RelayOpen,
    RelayOpened,
    RelayStatus,
    Store,
    StoreAck,
    StoreStatus,
    addr_size,
    contact_size,
    decode_overlay,
    encode_overlay,
)
from peerline.wire.record import MAX_TTL_S, CandidateKind, Presence, Record
from peerline.wire.spec import MAX_DATAGRAM

from .auth import PairKeys, mac
from .events import (
    IntroductionAccepted,
    IntroductionReceived,
    LookupCompleted,
    LookupFailed,
    OverlayEvent,
    RecordPublished,
    ReflexiveAddressChanged,
    RelayChannelFailed,
    RelayChannelOpened,
    RelaysChanged,
    RoleChanged,
)
from .ids import ID_BITS, as_int, node_id, random_id_in_bucket, record_key
from .lookup import Candidate, Lookup
from .records import (
    NumberBinding,
    Verdict,
    check_binding,
    sign_record,
    verify_signed,
)
from .routing import RoutingTable
from .store import RecordStore
from .tokens import TOKEN_ROTATE_S, TokenIssuer

PADDED_PING_SIZE = 100
"""A ping without a token is padded to this size so the pong (75 or 87 bytes) fits under it."""
UNVALIDATED_REQUEST_SIZE = 420
"""A lookup query to a node that has not given us a token yet is padded to this many bytes, so
the reply may carry k IPv4 contacts without exceeding the request (no amplification)."""
STORE_RETRY_S = 1.0
LONE_KEYS_CHECKED_PER_LOOKUP = 2
"""Keys offered by a single responder whose binding a lookup checks at once; more wait for a
second responder or for the end of the lookup (liars mint keys to make the caller pay)."""
MAX_SEQ = 2**63
"""Sequence numbers a storer may claim to hold for us; anything above is ignored as hostile."""
REFUSED_FOR_S = 600.0
"""A supernode that answered FULL is not asked to be a relay again for this long."""
SETTLE_REPUBLISH_S = 90.0
"""The first republish after joining comes this soon (then every ``republish_s``)."""
STORE_ATTEMPTS = 5
VALUE_GRACE_S = 0.25
"""After the first verified record, wait this long for a second storer to confirm it."""
OBSERVED_REPORTS = 16
MAX_TOKENS_CACHED = 4096
MAX_RATE_SOURCES = 4096


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
    introductions_sent: int = 0
    introductions_relayed: int = 0
    introductions_refused: int = 0
    "Introductions from a node that is not one of our relays (counted by the client)."
    relay_opens_sent: int = 0
    relay_opens_refused: int = 0
    "RELAY_OPENs this node answered with anything but OPENED (as a relay)."
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


class _Purpose(IntEnum):
    PING = 0
    LOOKUP = 1
    STORE = 2
    BOOTSTRAP = 3
    RELAY = 4


@dataclass(slots=True, eq=False)
class _Request:
    txid: bytes
    kind: Kind
    purpose: _Purpose
    public_key: bytes | None
    addr: Addr
    sent_at: float
    op: "_Op | None" = None
    cand: Candidate | None = None
    record: bytes = b""
    attempts: int = 1
    intro: Introduce | None = None
    "An INTRODUCE sent without a token: sent once more if the relay refuses it for that."
    intro_target: bytes = b""
    "An INTRODUCE's target: a DONE answer is reported (``IntroductionAccepted``)."
    relay_open: RelayOpen | None = None
    "A RELAY_OPEN: its target (for the outcome's event) and the token it carried."
    relay_retry: bool = False
    "This RELAY_OPEN is already the retry of a refused one (refused again: failed)."


@dataclass(slots=True, eq=False)
class _Op:
    """A lookup in progress and what it is for."""

    lookup: Lookup
    kind: Kind
    "FIND_NODE or FIND_VALUE."
    purpose: str
    "'value', 'join', 'refresh' or 'publish'."
    deadline: float
    number: str = ""
    records: dict[bytes, Record] = field(default_factory=dict)
    record_from: set[int] = field(default_factory=set)
    first_record_at: float | None = None
    first_record_depth: int = 0
    pending_raw: list[tuple[bytes, int]] = field(default_factory=list)
    "Records whose number binding is still being derived, with the depth they came from."
    stores_out: int = 0
    stored: int = 0
    held: bool = False
    "Not to be finished yet: the caller is still adding what it holds locally."
    stale_reports: dict[bytes, int] = field(default_factory=dict)
    "Storer key -> the higher sequence number it says it holds for us."
    keys_checked: set[bytes] = field(default_factory=set)
    "Keys whose number binding this lookup asked for (each may cost an argon2id run)."
    vouchers: dict[bytes, set[int]] = field(default_factory=dict)
    "Key -> ids of the responders that returned a validly signed record for it."
    unchecked: dict[bytes, tuple[bytes, int]] = field(default_factory=dict)
    "Records held back from the binding check (see _take_record), with their depth."
    seq: int = 0
    thorough: bool = False
    "A value lookup that runs to the end instead of stopping at the first agreeing storers."
    raws: dict[bytes, bytes] = field(default_factory=dict)
    "Key -> the record in ``records`` as it was signed (what a repair stores)."
    offered: dict[int, dict[bytes, int]] = field(default_factory=dict)
    "Responder id -> key -> the newest sequence number it returned (older ones get repaired)."
    responders: dict[int, Contact] = field(default_factory=dict)
    "Responders that returned records, by id."
    done: bool = False


_REPLY_TO = {
    Kind.PING: Kind.PONG,
    Kind.FIND_NODE: Kind.NODES,
    Kind.FIND_VALUE: Kind.NODES,
    Kind.STORE: Kind.STORE_ACK,
    Kind.INTRODUCE: Kind.INTRO_ACK,
    Kind.INTRODUCTION: Kind.INTRO_ACK,
    Kind.RELAY_OPEN: Kind.RELAY_OPENED,
}

# Timer tags.
_T_SOFT, _T_HARD, _T_MAINT, _T_OP, _T_STORE_RETRY, _T_RELAY = range(6)


class Overlay:
    """One phone's overlay node. See module docstring.

    Example::

        overlay = Overlay(identity=me, rng=rng, binding=SyncBinding(derive_number), number=n)
        overlay.bootstrap([(None, ("192.0.2.7", 7000))], now=now)
        lid = overlay.lookup("482155901736", now=now)   # later: LookupCompleted(lookup_id=lid)
    """

    def __init__(
        self,
        *,
        identity: Identity,
        rng: Rng,
        binding: NumberBinding,
        number: str,
        config: OverlayConfig | None = None,
        relay_config: RelayConfig | None = None,
        seq_start: int = 1,
    ) -> None:
        self.identity = identity
        self.public_key = identity.public_key
        self.id = node_id(identity.public_key)
        self.number = number
        self.config = config or OverlayConfig()
        self.rng = rng
        self.binding = binding
        self.table = RoutingTable(self.id, k=self.config.k)
        self.pairs = PairKeys(
            x25519_private=identity.x25519_private, public_key=identity.public_key
        )
        self.tokens = TokenIssuer(rng)
        self.store = RecordStore(
            max_records=self.config.max_records,
            per_source=self.config.max_records_per_source,
            per_number=self.config.max_keys_per_number,
        )
        self.counters = OverlayCounters()
        self._out: list[tuple[bytes, Addr]] = []
        self._events: deque[OverlayEvent] = deque()
        self._pending: dict[bytes, _Request] = {}
        self._timers: list[tuple[float, int, int, object]] = []
        self._seq = itertools.count()
        self._ops: dict[int, _Op] = {}
        self._lookup_ids = itertools.count(1)
        self._peer_tokens: OrderedDict[Addr, tuple[bytes, float]] = OrderedDict()
        "Tokens others gave us, with when: one is sure to be accepted for TOKEN_ROTATE_S."
        self._rates: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._pair_budget = (self.config.new_pairs_per_s, -1e18)
        self._seeds: list[tuple[bytes | None, Addr]] = []
        self._joined = False
        self._joining = False
        self._observed: deque[tuple[int, Addr]] = deque(maxlen=OBSERVED_REPORTS)
        self.reflexive: Addr | None = None
        # Own record.
        self._record_seq = seq_start - 1
        self._seq_floor = 0
        "Sequence number storers said they hold for us (see STALE in StoreAck)."
        self._publishes_since_join = 0
        self._record: Record | None = None
        self._record_raw = b""
        self._publish_due: float | None = None
        self._publishing: _Op | None = None
        self._maint_gen = 0
        # Roles (docs/overlay.md): supernode or client, and a client's relays.
        self._auto_member = True
        self._host_addrs: set[Addr] = set()
        self._relays: dict[bytes, Contact] = {}
        self._refused: dict[bytes, float] = {}
        "Supernodes that answered FULL, and when: not asked again for REFUSED_FOR_S."
        self._clients: OrderedDict[bytes, tuple[float, Addr]] = OrderedDict()
        "As a supernode: client key -> when it last pinged, and from where (validated)."
        self._relay_gen = 0
        self.relay_table = RelayTable(rng=rng, client_addr=self.client_addr, config=relay_config)
        "Channels this node carries for others while it is a supernode (§11)."
        self._now_hint = 0.0
        self._maint_at: float | None = None

    # -- API ----------------------------------------------------------------------------------
    def bootstrap(self, seeds: list[tuple[bytes | None, Addr]], *, now: float) -> None:
        """Join through ``seeds`` (key if known, address). Safe to call again with more."""
        for seed in seeds:
            if seed not in self._seeds:
                self._seeds.append(seed)
        self._arm_maintenance(now, soon=True)
        for public_key, addr in seeds:
            self._ping(public_key, addr, now, purpose=_Purpose.BOOTSTRAP)

    def add_contact(self, contact: Contact, *, now: float) -> None:
        """A node learned out of band (peer cache, LAN discovery): ping it; in if it answers."""
        if contact.public_key != self.public_key:
            self._ping(contact.public_key, contact.addr, now, purpose=_Purpose.BOOTSTRAP)
            self._arm_maintenance(now, soon=True)

    def lookup(self, number: str, *, now: float, thorough: bool = False) -> int:
        """Start resolving ``number`` (12 digits); the answer comes as LookupCompleted/Failed.

        A normal lookup ends once two storers agree (or shortly after the first answers): quick
        for dialling. ``thorough`` asks every one of the ``k`` nodes nearest the number and
        keeps the newest record of each key: for a peer that stopped answering at the address
        we hold, which the first storers to answer may still list (they missed its move).
        """
        if len(number) != 12 or not number.isascii() or not number.isdigit():
            raise LocalProtocolError("a number is 12 ASCII digits")
        self.counters.lookups_started += 1
        key = record_key(number)
        local = self._records_for(key, now)
        op = self._start_op(
            key, Kind.FIND_VALUE, "value", now, number=number, hold=bool(local), thorough=thorough
        )
        # What this phone holds itself counts as one responder (a network of two must work),
        # and the lookup still asks the others: more keys may hold the number.
        for raw in local:
            self._take_record(op, raw, 0, as_int(self.id), now)
        if not op.done:
            op.held = False
            self._check_op(op, now)
        return op.lookup.lookup_id

    def _records_for(self, key: bytes, now: float) -> list[bytes]:
        """Records held for ``key``: stored for others, and our own if it is ours."""
        held = self.store.get(key, now)
        if self._record is not None and key == record_key(self.number):
            held = [r for r in held if r != self._record_raw] + [self._record_raw]
        return held[:MAX_RECORDS_PER_REPLY]

    def publish(
        self,
        *,
        addresses: tuple[tuple[CandidateKind, Addr], ...],
        relays: tuple[Contact, ...] | None = None,
        presence: Presence = Presence.AVAILABLE,
        forward_to: str | None = None,
        now: float,
    ) -> int:
        """Sign a new record (next sequence number) and store it on the number's k closest nodes.

        Returns the record's sequence number. It is republished every ``republish_s``.
        """
        self._record_seq += 1
        record = sign_record(
            self.identity,
            Record(
                number=self.number,
                public_key=self.public_key,
                seq=self._record_seq,
                ttl_s=self.config.record_ttl_s,
                presence=presence,
                addresses=addresses,
                relays=self.relays if relays is None else relays,
                forward_to=forward_to,
            ),
        )
        raw = record.encode()
        if len(raw) > MAX_RECORD_SIZE:
            raise LocalProtocolError("record too large: fewer addresses or relays")
        self._record, self._record_raw = record, raw
        self._publish_due = now
        self._arm_maintenance(now, soon=True)
        if self._joined:
            self._start_publish(now)
        return self._record_seq

    def warm_start(self, *, now: float, republish_at: float | None, refreshed_at: float) -> None:
        """Simulation only: take up the state of a phone that has been in the overlay a while.

        The routing table must already be filled (``table.seen``) and, if ``republish_at`` is
        given, the record published and stored; timers continue from there.
        """
        self._joined = bool(len(self.table))
        self._publish_due = republish_at if self._record is not None else None
        self.table.touched_default = refreshed_at
        self._arm_maintenance(now)

    @property
    def record(self) -> Record | None:
        return self._record

    @property
    def joined(self) -> bool:
        return self._joined

    def contacts(self) -> list[Contact]:
        return [e.contact for e in self.table.entries()]

    def bindings_changed(self, *, now: float) -> None:
        """The NumberBinding learned something: re-check records that were waiting on it."""
        for op in list(self._ops.values()):
            if op.pending_raw:
                waiting, op.pending_raw = op.pending_raw, []
                for raw, depth in waiting:
                    self._take_record(op, raw, depth, None, now)
                self._check_op(op, now)

    # -- the driver's calls -------------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        """Take one overlay datagram. Never raises: bad input is dropped and counted."""
        self._now_hint = now
        c = self.counters
        c.rx_datagrams += 1
        c.rx_bytes += len(data)
        try:
            msg = decode_overlay(data)
        except DecodeError:
            c.dropped_malformed += 1
            return
        header = msg.header
        if header.sender == self.public_key or "%" in addr[0]:
            # Our own packet reflected, or a scoped (link-local) source no record can carry.
            c.dropped_malformed += 1
            return
        is_request = header.kind in REQUESTS
        if is_request and not self._rate_ok(addr[0], now):
            c.dropped_rate_limited += 1
            return
        req = None if is_request else self._pending.get(header.txid)
        if not is_request and (
            req is None
            or _REPLY_TO[req.kind] is not header.kind
            or (req.public_key is not None and req.public_key != header.sender)
        ):
            c.dropped_unsolicited += 1  # before any crypto: stray replies cost one lookup
            return
        if header.flags & FLAG_ANONYMOUS:
            if header.kind is not Kind.PING or msg.mac != bytes(OVERLAY_MAC_SIZE):
                c.dropped_malformed += 1
                return
            if not self._pair_key_affordable(header.sender, now):
                c.dropped_busy += 1
                return
            self._serve(msg, addr, len(data), now)
            return
        if not self._pair_key_affordable(header.sender, now):
            c.dropped_busy += 1
            return
        key = self.pairs.key_for(header.sender)
        if key is None or not hmac.compare_digest(mac(key, msg.signed_part), msg.mac):
            c.dropped_bad_mac += 1
            return
        contact = Contact(header.sender, addr)
        ident = as_int(node_id(header.sender))
        if header.flags & FLAG_MEMBER and self._address_proven(msg, req, addr, now):
            known = ident in self.table
            if self.table.seen(contact, ident, now) is not None and not known:
                self._replicate_to(contact, ident, now)
                if not self._joined and not self._joining:
                    self._arm_maintenance(now, soon=True)  # someone found us: join through them
        if req is None:
            self._serve(msg, addr, len(data), now)
        else:
            self._on_reply(msg, req, contact, ident, now)

    def _address_proven(
        self, msg: OverlayMessage, req: "_Request | None", addr: Addr, now: float
    ) -> bool:
        """Whether ``addr`` is where the sender really is, so it may go in the routing table.

        A reply to our query proves it when it comes from where we sent (a replayed or
        redirected copy from elsewhere does not); a request proves it with a valid token.
        """
        if req is not None:
            return req.addr == addr
        token = getattr(msg.body, "token", NO_TOKEN)
        return token != NO_TOKEN and self.tokens.valid(token, addr, now)

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        self.counters.tx_datagrams += len(out)
        self.counters.tx_bytes += sum(len(d) for d, _ in out)
        return out

    def get_timer(self) -> float | None:
        timers = self._timers
        while timers and not self._timer_live(timers[0]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def handle_timer(self, *, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            entry = heapq.heappop(timers)
            if self._timer_live(entry):
                self._fire(entry, now)

    def next_event(self) -> OverlayEvent | None:
        return self._events.popleft() if self._events else None

    # -- timers -------------------------------------------------------------------------------
    def _at(self, t: float, tag: int, ref: object) -> None:
        heapq.heappush(self._timers, (t, next(self._seq), tag, ref))

    def _timer_live(self, entry: tuple[float, int, int, object]) -> bool:
        _, _, tag, ref = entry
        if tag in (_T_SOFT, _T_HARD, _T_STORE_RETRY):
            return isinstance(ref, _Request) and self._pending.get(ref.txid) is ref
        if tag == _T_OP:
            return isinstance(ref, _Op) and not ref.done
        if tag == _T_RELAY:
            return ref == self._relay_gen
        return ref == self._maint_gen

    def _fire(self, entry: tuple[float, int, int, object], now: float) -> None:
        _, _, tag, ref = entry
        if tag == _T_MAINT:
            self._maint_at = None
            self._maintain(now)
        elif tag == _T_OP and isinstance(ref, _Op):
            self._finish_op(ref, now, timed_out=True)
        elif tag == _T_SOFT and isinstance(ref, _Request):
            if ref.op is not None and ref.cand is not None:
                ref.op.lookup.slow(ref.cand)
                self._drive(ref.op, now)
        elif tag == _T_HARD and isinstance(ref, _Request):
            self._request_failed(ref, now)
        elif tag == _T_STORE_RETRY and isinstance(ref, _Request):
            self._resend_store(ref, now)
        elif tag == _T_RELAY:
            self._keep_relays(now)

    def _arm_maintenance(self, now: float, *, soon: bool = False) -> None:
        """Keep exactly one maintenance wake-up pending; ``soon`` pulls it to within a second."""
        jitter = 0.5 + self.rng.random()
        at = now + (jitter if soon else self.config.maintenance_s * jitter)
        if self._maint_at is not None and self._maint_at <= at:
            return
        self._maint_gen += 1
        self._maint_at = at
        self._at(at, _T_MAINT, self._maint_gen)

    def _maintain(self, now: float) -> None:
        cfg = self.config
        self.store.expire(now)
        if not len(self.table):
            self._joined = False
            for public_key, addr in self._seeds:
                self._ping(public_key, addr, now, purpose=_Purpose.BOOTSTRAP)
        else:
            if not self._joined and not self._joining:
                self._join(now)
            for entry in self.table.stale(now, cfg.ping_after_s, cfg.pings_per_maintenance):
                entry.pinging = True
                self._ping(entry.contact.public_key, entry.contact.addr, now, _Purpose.PING)
            if self._joined:
                self._refresh_one(now)
                if (
                    self._publish_due is not None
                    and now >= self._publish_due
                    and self._publishing is None
                ):
                    self._start_publish(now)
        self._arm_maintenance(now)

    def _refresh_one(self, now: float) -> None:
        nonempty = self.table.nonempty_buckets()
        if not nonempty:
            return
        cutoff = now - self.config.refresh_s
        for index in range(nonempty[0], ID_BITS):
            if self.table.last_touched(index) <= cutoff:
                self.table.touched[index] = now
                target = random_id_in_bucket(self.id, index, self.rng.random_bytes(20))
                self._start_op(target, Kind.FIND_NODE, "refresh", now)
                return

    def _join(self, now: float) -> None:
        self._joining = True
        self._start_op(self.id, Kind.FIND_NODE, "join", now)

    # -- sending ------------------------------------------------------------------------------
    def _flags(self) -> int:
        return FLAG_MEMBER if self.member else 0

    # -- roles --------------------------------------------------------------------------------
    @property
    def member(self) -> bool:
        """Whether this phone serves the DHT (a supernode) rather than only using it."""
        return self._auto_member if self.config.member is None else self.config.member

    @property
    def relays(self) -> tuple[Contact, ...]:
        return tuple(self._relays.values())

    def set_host_addresses(self, addrs: list[Addr], *, now: float) -> None:
        """The addresses this phone's socket is bound to (for the reachability test)."""
        self._host_addrs = set(addrs)
        self._decide_role(now)

    def _decide_role(self, now: float) -> None:
        if self.config.member is not None:
            return
        # Reachable from outside if peers see us at an address we hold ourselves: no NAT
        # between us. (A NAT with endpoint-independent filtering would also do, but only a
        # dial-back probe can tell; the NAT layer will add one.)
        # Until peers have told us how they see us, act as a supernode: two phones that both
        # waited for proof before serving would never let each other in.
        member = self.reflexive is None or self.reflexive in self._host_addrs
        if member != self._auto_member:
            self._auto_member = member
            self._events.append(RoleChanged(member=member))
            if member:
                self._relays.clear()
                self._relays_changed(now)
            else:
                self._arm_relays(now, soon=True)

    def _arm_relays(self, now: float, *, soon: bool = False) -> None:
        self._relay_gen += 1
        delay = 1.0 if soon else self.config.relay_keepalive_s
        self._at(now + delay, _T_RELAY, self._relay_gen)

    def _keep_relays(self, now: float) -> None:
        """As a client: top up the relay set, and ping every relay (the NAT keepalive)."""
        if self.member:
            return
        if self._joined and len(self._relays) < self.config.relays:
            changed = False
            refused_until = now - REFUSED_FOR_S
            self._refused = {k: t for k, t in self._refused.items() if t > refused_until}
            ranked = sorted(
                self.table.entries(),
                key=lambda e: (e.failures, e.srtt if e.srtt is not None else 1.0),
            )
            for entry in ranked:
                key = entry.contact.public_key
                if key in self._relays or key in self._refused:
                    continue
                self._relays[key] = entry.contact
                changed = True
                if len(self._relays) >= self.config.relays:
                    break
            if changed:
                self._relays_changed(now)
        for contact in list(self._relays.values()):
            self._ping(contact.public_key, contact.addr, now, _Purpose.RELAY)
        self._arm_relays(now)

    def _drop_relay(self, key: bytes, now: float, *, refused: bool) -> None:
        if refused:
            self._refused[key] = now
        if self._relays.pop(key, None) is not None:
            self._relays_changed(now)
            self._arm_relays(now, soon=True)

    def _relays_changed(self, now: float) -> None:
        self._events.append(RelaysChanged(relays=tuple(c.addr for c in self._relays.values())))
        if self._record is not None:
            self._republish(now)

    def _emit(
        self, kind: Kind, body: Body, txid: bytes, *, to_key: bytes | None, addr: Addr, flags: int
    ) -> bool:
        header = Header(kind=kind, flags=flags | self._flags(), txid=txid, sender=self.public_key)
        try:
            data = encode_overlay(header, body)
        except ValueError:
            return False
        if to_key is None:
            tag = bytes(OVERLAY_MAC_SIZE)
        else:
            key = self.pairs.key_for(to_key)
            if key is None:
                return False
            tag = mac(key, data)
        self._out.append((data + tag, addr))
        return True

    def _request(
        self,
        kind: Kind,
        body: Body,
        public_key: bytes | None,
        addr: Addr,
        *,
        now: float,
        purpose: _Purpose,
        op: _Op | None = None,
        cand: Candidate | None = None,
        soft_s: float | None = None,
    ) -> _Request | None:
        if len(self._pending) >= self.config.max_pending:
            return None
        txid = self.rng.random_bytes(8)
        flags = FLAG_ANONYMOUS if public_key is None else 0
        if not self._emit(kind, body, txid, to_key=public_key, addr=addr, flags=flags):
            return None
        req = _Request(txid, kind, purpose, public_key, addr, now, op=op, cand=cand)
        self._pending[txid] = req
        self.counters.queries_sent += 1
        if soft_s is not None:
            self._at(now + soft_s, _T_SOFT, req)
        self._at(now + self.config.query_hard_timeout_s, _T_HARD, req)
        return req

    def _ping(self, public_key: bytes | None, addr: Addr, now: float, purpose: _Purpose) -> None:
        token = self._token_for(addr, now)
        padding = 0
        if token == NO_TOKEN:  # unvalidated: the pong may not be larger than the ping
            padding = PADDED_PING_SIZE - (44 + 8 + OVERLAY_MAC_SIZE)
        body = Ping(token=token, padding=padding)
        if purpose is _Purpose.RELAY:  # what holding the NAT mapping open costs
            self.counters.keepalive_bytes_sent += 44 + 8 + padding + OVERLAY_MAC_SIZE
        self._request(Kind.PING, body, public_key, addr, now=now, purpose=purpose)

    def rtt(self, public_key: bytes) -> float | None:
        """Smoothed round-trip time to a node in the routing table, if measured."""
        entry = self.table.get(as_int(node_id(public_key)))
        return entry.srtt if entry is not None else None

    def _rto(self, public_key: bytes) -> float:
        entry = self.table.get(as_int(node_id(public_key)))
        if entry is not None and entry.srtt is not None:
            return min(self.config.query_timeout_s, max(0.25, 2.5 * entry.srtt))
        return self.config.query_timeout_s

    def _token_for(self, addr: Addr, now: float) -> bytes:
        """A token from ``addr`` young enough to be accepted, or NO_TOKEN."""
        held = self._peer_tokens.get(addr)
        if held is None or now - held[1] >= TOKEN_ROTATE_S:
            return NO_TOKEN
        return held[0]

    # -- serving ------------------------------------------------------------------------------
    def _rate_ok(self, host: str, now: float) -> bool:
        cfg = self.config
        tokens, last = self._rates.pop(host, (cfg.request_burst, now))
        tokens = min(cfg.request_burst, tokens + (now - last) * cfg.requests_per_source_per_s)
        ok = tokens >= 1.0
        self._rates[host] = (tokens - 1.0 if ok else tokens, now)
        if len(self._rates) > MAX_RATE_SOURCES:
            self._rates.popitem(last=False)
        return ok

    def _pair_key_affordable(self, public_key: bytes, now: float) -> bool:
        if self.pairs.cached(public_key):
            return True
        rate = self.config.new_pairs_per_s
        tokens, last = self._pair_budget
        tokens = min(rate, tokens + (now - last) * rate)
        if tokens < 1.0:
            self._pair_budget = (tokens, now)
            return False
        self._pair_budget = (tokens - 1.0, now)
        return True

    def _serve(self, msg: OverlayMessage, addr: Addr, size: int, now: float) -> None:
        header, body = msg.header, msg.body
        token = getattr(body, "token", NO_TOKEN)
        validated = token != NO_TOKEN and self.tokens.valid(token, addr, now)
        limit = None if validated else size
        fresh = self.tokens.issue(addr, now)
        self.counters.queries_answered += 1
        reply: Body
        kind = Kind.NODES
        flags = 0
        if isinstance(body, Ping):
            reply, kind = Pong(observed=addr, token=fresh), Kind.PONG
            if not header.flags & (FLAG_MEMBER | FLAG_ANONYMOUS) and not self._client_ok(
                header.sender, addr, validated, now
            ):
                flags = FLAG_FULL
        elif isinstance(body, FindNode):
            reply, flags = self._nodes_reply(
                as_int(body.target), header.sender, addr, token=fresh, records=(), limit=limit
            )
        elif isinstance(body, FindValue):
            records = tuple(self._records_for(body.key, now))
            reply, flags = self._nodes_reply(
                as_int(body.key), header.sender, addr, token=fresh, records=records, limit=limit
            )
        elif isinstance(body, Store):
            status, held = self._on_store(body, validated, addr, now)
            reply, kind = StoreAck(status=status, token=fresh, held_seq=held), Kind.STORE_ACK
        elif isinstance(body, Introduce):
            intro = self._on_introduce(header.sender, body, addr, validated, now)
            reply, kind = IntroAck(status=intro, token=fresh), Kind.INTRO_ACK
        elif isinstance(body, Introduction):
            intro = self._on_introduction(header.sender, body)
            reply, kind = IntroAck(status=intro, token=fresh), Kind.INTRO_ACK
        elif isinstance(body, RelayOpen):
            opened, channel = self._on_relay_open(header.sender, body, addr, validated, now)
            reply = RelayOpened(status=opened, token=fresh, channel=channel)
            kind = Kind.RELAY_OPENED
        else:
            return
        if flags & FLAG_TRUNCATED:
            self.counters.replies_truncated += 1
        if limit is not None and kind is not Kind.NODES:
            # Fixed-size replies: send only if they are no larger than the request.
            probe = encode_overlay(
                Header(kind=kind, flags=0, txid=header.txid, sender=self.public_key), reply
            )
            if len(probe) + OVERLAY_MAC_SIZE > limit:
                return
        self._emit(kind, reply, header.txid, to_key=header.sender, addr=addr, flags=flags)

    def client_addr(self, key: bytes, now: float) -> Addr | None:
        """Where client ``key`` pinged us from lately (validated), or None: no path to it."""
        client = self._clients.get(key)
        if client is None or client[0] < now - 3 * self.config.relay_keepalive_s:
            return None
        return client[1]

    def _client_ok(self, key: bytes, addr: Addr, validated: bool, now: float) -> bool:
        """Per-client quota: a supernode keeps at most ``max_clients`` NAT clients.

        Only a ping from a validated address (it carries our token) records where the client
        is: that is where introductions for it will be sent.
        """
        clients = self._clients
        cutoff = now - 3 * self.config.relay_keepalive_s
        while clients and next(iter(clients.values()))[0] < cutoff:
            clients.popitem(last=False)  # gone quiet: its slot is free again
        if key not in clients and len(clients) >= self.config.max_clients:
            self.counters.clients_refused += 1
            return False
        if validated:
            clients[key] = (now, addr)
            clients.move_to_end(key)
        return True

    def introduce(
        self,
        target: bytes,
        relays: tuple[Contact, ...],
        candidates: tuple[Addr, ...],
        *,
        now: float,
        initiation: bytes = b"",
    ) -> int:
        """Ask ``target``'s relays to tell it we are calling from ``candidates`` (hole punching:
        it will send towards us, opening its NAT, while we send towards it). Returns how many
        relays were asked."""
        asked = 0
        for relay in relays[:2]:
            if relay.public_key == self.public_key:
                continue
            token = self._token_for(relay.addr, now)
            body = Introduce(
                token=token,
                target=target,
                candidates=candidates[:MAX_CANDIDATES],
                initiation=initiation,
            )
            req = self._request(
                Kind.INTRODUCE, body, relay.public_key, relay.addr, now=now, purpose=_Purpose.PING
            )
            if req is not None:
                req.intro = body if token == NO_TOKEN else None
                req.intro_target = target
                asked += 1
                self.counters.introductions_sent += 1
        return asked

    def _on_introduce(
        self, sender: bytes, body: Introduce, addr: Addr, validated: bool, now: float
    ) -> IntroStatus:
        """As a relay: pass a caller's introduction to our client (validated callers only:
        the client will send towards the addresses it names)."""
        client = self._clients.get(body.target)
        if not validated:
            return IntroStatus.REFUSED
        if client is None or client[0] < now - 3 * self.config.relay_keepalive_s:
            return IntroStatus.NOT_MY_CLIENT
        candidates = (addr, *[c for c in body.candidates if c != addr])[:MAX_CANDIDATES]
        note = Introduction(
            token=NO_TOKEN, caller=sender, candidates=candidates, initiation=body.initiation
        )
        self._request(
            Kind.INTRODUCTION, note, body.target, client[1], now=now, purpose=_Purpose.PING
        )
        self.counters.introductions_relayed += 1
        return IntroStatus.DONE

    def _on_introduction(self, sender: bytes, body: Introduction) -> IntroStatus:
        """As a client: a caller is coming; only our own relays may say so."""
        if sender not in self._relays:
            self.counters.introductions_refused += 1
            return IntroStatus.REFUSED
        self._events.append(
            IntroductionReceived(
                caller=body.caller, candidates=body.candidates, initiation=body.initiation
            )
        )
        return IntroStatus.DONE

    def open_relay(self, target: bytes, relay: Contact, *, now: float) -> bool:
        """Ask ``relay`` (one of ``target``'s relays) for a channel to ``target`` (§11.1): for
        when no direct path opens. The outcome: ``RelayChannelOpened`` or ``RelayChannelFailed``."""
        if relay.public_key == self.public_key:
            return False
        token = self._token_for(relay.addr, now)
        body = RelayOpen(token=token, target=target)
        req = self._request(
            Kind.RELAY_OPEN, body, relay.public_key, relay.addr, now=now, purpose=_Purpose.PING
        )
        if req is None:
            return False
        req.relay_open = body
        self.counters.relay_opens_sent += 1
        return True

    def _on_relay_open(
        self, sender: bytes, body: RelayOpen, addr: Addr, validated: bool, now: float
    ) -> tuple[RelayStatus, int]:
        """As a relay: open a channel from a validated caller to one of our clients."""
        status, channel = RelayStatus.FULL, 0
        if not validated:
            status = RelayStatus.REFUSED  # the caller's address must be proven (§9.8)
        elif not self.member or body.target == sender:
            status = RelayStatus.FULL  # a node behind NAT relays nothing
        elif self.client_addr(body.target, now) is None:
            status = RelayStatus.NOT_MY_CLIENT
        else:
            status, channel = self.relay_table.open(sender, addr, body.target, now)
        if status is not RelayStatus.OPENED:
            self.counters.relay_opens_refused += 1
        return status, channel

    def _on_relay_opened(self, req: _Request, body: RelayOpened, token: bytes, now: float) -> None:
        opened = req.relay_open
        if opened is None or req.public_key is None:
            return
        relay = Contact(req.public_key, req.addr)
        failed = RelayChannelFailed
        if body.status is RelayStatus.OPENED:
            self._events.append(
                RelayChannelOpened(target=opened.target, relay=relay, channel=body.channel)
            )
        elif body.status is RelayStatus.REFUSED and not req.relay_retry and token != NO_TOKEN:
            # Refused for want of a valid token (none yet, or one for the address we had before
            # our NAT rebound), which this very reply carries: ask once more.
            again = RelayOpen(token=token, target=opened.target)
            retry = self._request(
                Kind.RELAY_OPEN, again, req.public_key, req.addr, now=now, purpose=_Purpose.PING
            )
            if retry is not None:
                retry.relay_open, retry.relay_retry = again, True
            else:
                self._events.append(failed(target=opened.target, relay=relay, reason="busy"))
        else:
            reason = body.status.name.lower()
            self._events.append(failed(target=opened.target, relay=relay, reason=reason))

    def forward_relayed(self, data: bytes, addr: Addr, *, now: float) -> None:
        """As a supernode: pass a relayed session packet on (§11.2); dropped and counted if it
        fits no channel, comes from the wrong side, or is over the channel's rate."""
        if not self.member:
            self.relay_table.counters.dropped_unknown_channel += 1
            return
        out = self.relay_table.forward(data, addr, now)
        if out is not None:
            self._out.append(out)

    def _nodes_reply(
        self,
        target: int,
        requester: bytes,
        addr: Addr,
        *,
        token: bytes,
        records: tuple[bytes, ...],
        limit: int | None,
    ) -> tuple[Nodes, int]:
        requester_id = as_int(node_id(requester))
        contacts = [
            e.contact for e in self.table.closest(target, self.config.k + 1) if e.id != requester_id
        ][: self.config.k]
        # Never more than one datagram; never more than the request while the requester's
        # address is unvalidated (then TRUNCATED says: ask again with the token).
        budget = MAX_DATAGRAM if limit is None else min(limit, MAX_DATAGRAM)
        room = budget - (44 + 8 + addr_size(addr) + 2 + OVERLAY_MAC_SIZE)
        flags = 0
        kept: list[bytes] = []
        for record in records:  # records first: they are what FIND_VALUE is for
            if 2 + len(record) > room:
                if limit is not None:
                    flags = FLAG_TRUNCATED
                break
            room -= 2 + len(record)
            kept.append(record)
        if limit is not None and len(kept) < len(records):
            kept = []  # all or nothing before validation: the retry with the token gets them
            room = budget - (44 + 8 + addr_size(addr) + 2 + OVERLAY_MAC_SIZE)
        fitted: list[Contact] = []
        for contact in contacts:
            room -= contact_size(contact)
            if room < 0:
                if limit is not None:
                    flags = FLAG_TRUNCATED
                break
            fitted.append(contact)
        records, contacts = tuple(kept), fitted
        return Nodes(observed=addr, token=token, contacts=tuple(contacts), records=records), flags

    def _on_store(
        self, body: Store, validated: bool, addr: Addr, now: float
    ) -> tuple[StoreStatus, int]:
        c = self.counters
        if not validated:
            c.stores_bad_token += 1
            return StoreStatus.BAD_TOKEN, 0
        if len(body.record) > MAX_RECORD_SIZE:
            c.records_rejected_oversize += 1
            return StoreStatus.INVALID, 0
        verdict, record = verify_signed(body.record)
        if verdict is not Verdict.VALID or record is None:
            self._count_rejected(verdict)
            return StoreStatus.INVALID, 0
        key = record_key(record.number)
        refused = self.store.precheck(key, record, body.record, addr[0], now)
        if refused is None:
            verdict = check_binding(record, self.binding)  # argon2id: only once limits allow
            if verdict is Verdict.PENDING:
                return StoreStatus.BUSY, 0
            if verdict is not Verdict.VALID:
                self._count_rejected(verdict)
                return StoreStatus.INVALID, 0
        status, held = refused or self.store.put(key, record, body.record, addr[0], now)
        if status is StoreStatus.STORED:
            c.records_stored += 1
        elif status is StoreStatus.STALE:
            c.records_rejected_stale += 1
        elif status is StoreStatus.FULL:
            c.records_rejected_full += 1
        return status, held

    def _count_rejected(self, verdict: Verdict) -> None:
        c = self.counters
        if verdict is Verdict.BAD_SIGNATURE:
            c.records_rejected_signature += 1
        elif verdict is Verdict.WRONG_NUMBER:
            c.records_rejected_binding += 1
        else:
            c.records_rejected_malformed += 1

    # -- replies ------------------------------------------------------------------------------
    def _on_reply(
        self, msg: OverlayMessage, req: _Request, contact: Contact, ident: int, now: float
    ) -> None:
        header, body = msg.header, msg.body
        del self._pending[header.txid]
        entry = self.table.get(ident)
        if entry is not None:
            entry.note_rtt(now - req.sent_at)
            entry.pinging = False
        token = getattr(body, "token", NO_TOKEN)
        self._remember_token(contact.addr, token, now)
        if header.flags & FLAG_FULL and contact.public_key in self._relays:
            self._drop_relay(contact.public_key, now, refused=True)
        if isinstance(body, Pong | Nodes):
            self._note_observed(ident, body.observed)
        if req.purpose is _Purpose.BOOTSTRAP and self.table.get(ident) is not None:
            self._arm_maintenance(now, soon=not self._joined)
        if isinstance(body, Nodes) and req.op is not None and req.cand is not None:
            self._on_nodes(
                req.op, req.cand, body, flags=header.flags, ident=ident, token=token, now=now
            )
        elif isinstance(body, StoreAck):
            self._on_store_ack(req, body, now)
        elif isinstance(body, RelayOpened):
            self._on_relay_opened(req, body, token, now)
        elif isinstance(body, IntroAck) and body.status is IntroStatus.DONE and req.intro_target:
            self._events.append(IntroductionAccepted(target=req.intro_target, relay=contact))
        elif isinstance(body, IntroAck) and body.status is IntroStatus.REFUSED and req.intro:
            # Refused for want of a token, which this very reply carries: ask once more.
            again = Introduce(
                token=token,
                target=req.intro.target,
                candidates=req.intro.candidates,
                initiation=req.intro.initiation,
            )
            if req.public_key is not None and token != NO_TOKEN:
                retry = self._request(
                    Kind.INTRODUCE, again, req.public_key, req.addr, now=now, purpose=_Purpose.PING
                )
                if retry is not None:
                    retry.intro_target = again.target

    def _remember_token(self, addr: Addr, token: bytes, now: float) -> None:
        if token == NO_TOKEN:
            return
        self._peer_tokens[addr] = (token, now)
        self._peer_tokens.move_to_end(addr)
        if len(self._peer_tokens) > MAX_TOKENS_CACHED:
            self._peer_tokens.popitem(last=False)

    def _note_observed(self, reporter: int, addr: Addr) -> None:
        self._observed.append((reporter, addr))
        if addr == self.reflexive:
            return  # the common case: nothing can change
        votes: Counter[Addr] = Counter()
        seen: set[int] = set()
        for who, where in reversed(self._observed):
            if who not in seen:
                seen.add(who)
                votes[where] += 1
        best, count = votes.most_common(1)[0]
        if best != self.reflexive and (count >= 2 or (len(seen) == 1 and len(self.table) <= 1)):
            self.reflexive = best
            self._events.append(ReflexiveAddressChanged(addr=best))
            self._decide_role(self._now_hint)

    def _on_nodes(
        self,
        op: _Op,
        cand: Candidate,
        body: Nodes,
        *,
        flags: int,
        ident: int,
        token: bytes,
        now: float,
    ) -> None:
        if op.done or cand.id != ident:
            return
        if op.kind is Kind.FIND_VALUE:
            if body.records:
                op.responders[ident] = cand.contact
            for raw in body.records:
                self._take_record(op, raw, cand.depth, ident, now)
        if flags & FLAG_TRUNCATED and not body.records and op.lookup.retry(cand):
            # Cut short because our address was not validated yet: ask again with the token.
            self._drive(op, now)
            return
        contacts = []
        for contact in body.contacts:
            if contact.public_key == self.public_key:
                continue
            contacts.append((contact, as_int(node_id(contact.public_key))))
        op.lookup.answered(cand, contacts)
        self._drive(op, now)

    def _take_record(self, op: _Op, raw: bytes, depth: int, source: int | None, now: float) -> None:
        verdict, record = verify_signed(raw)
        if verdict is not Verdict.VALID or record is None:
            self._count_rejected(verdict)
            return
        if record.number != op.number:
            self.counters.records_rejected_binding += 1
            return
        key = record.public_key
        if source is not None:
            op.vouchers.setdefault(key, set()).add(source)
            offered = op.offered.setdefault(source, {})
            offered[key] = max(offered.get(key, -1), record.seq)
        if key not in op.keys_checked:
            # Checking a binding may cost an argon2id run (0.7 s on a Zero 2 W), and a liar can
            # mint keys for free: a key one responder alone offers is checked only while few
            # have been; a key two responders agree on, always.
            vouched = len(op.vouchers.get(key, ())) >= 2
            if not vouched and len(op.keys_checked) >= LONE_KEYS_CHECKED_PER_LOOKUP:
                op.unchecked[key] = (raw, depth)
                self.counters.records_unchecked += 1
                return
            op.keys_checked.add(key)
            op.unchecked.pop(key, None)
        verdict = check_binding(record, self.binding, urgent=op.purpose == "value")
        if verdict is Verdict.PENDING:
            op.pending_raw.append((raw, depth))
            return
        if verdict is not Verdict.VALID:
            self._count_rejected(verdict)
            return
        held = op.records.get(record.public_key)
        if held is None or held.seq < record.seq:
            op.records[record.public_key] = record
            op.raws[record.public_key] = raw
        if source is not None:
            op.record_from.add(source)
        if op.first_record_at is None:
            op.first_record_at = now
            op.first_record_depth = depth
            if not op.thorough:
                self._at(now + VALUE_GRACE_S, _T_OP, op)

    # -- lookups ------------------------------------------------------------------------------
    def _start_op(
        self,
        target: bytes,
        kind: Kind,
        purpose: str,
        now: float,
        *,
        number: str = "",
        hold: bool = False,
        thorough: bool = False,
    ) -> _Op:
        if len(self._ops) >= self.config.max_lookups:
            raise LocalProtocolError("too many lookups in progress")
        cfg = self.config
        first = [(e.contact, e.id) for e in self.table.closest(as_int(target), cfg.k)]
        lookup = Lookup(
            lookup_id=next(self._lookup_ids),
            target=target,
            first=first,
            k=cfg.k,
            alpha=cfg.alpha,
            paths=cfg.paths,
            started=now,
        )
        index = self.table.bucket_index(as_int(target))
        if index >= 0:
            self.table.touched[index] = now
        op = _Op(
            lookup,
            kind,
            purpose,
            now + cfg.lookup_timeout_s,
            number=number,
            held=hold,
            thorough=thorough,
        )
        self._ops[lookup.lookup_id] = op
        self._at(op.deadline, _T_OP, op)
        self._drive(op, now)
        return op

    def _drive(self, op: _Op, now: float) -> None:
        """Send the queries the lookup wants now; finish it if it is done."""
        if op.done:
            return
        if op.first_record_at is None or op.thorough:
            for cand in op.lookup.next_queries():
                token = self._token_for(cand.contact.addr, now)
                padding = 0
                if token == NO_TOKEN:
                    padding = UNVALIDATED_REQUEST_SIZE - (44 + 8 + 20 + OVERLAY_MAC_SIZE)
                body: Body
                if op.kind is Kind.FIND_VALUE:
                    body = FindValue(key=op.lookup.target, token=token, padding=padding)
                else:
                    body = FindNode(target=op.lookup.target, token=token, padding=padding)
                req = self._request(
                    op.kind,
                    body,
                    cand.contact.public_key,
                    cand.contact.addr,
                    now=now,
                    purpose=_Purpose.LOOKUP,
                    op=op,
                    cand=cand,
                    soft_s=self._rto(cand.contact.public_key),
                )
                if req is None:
                    op.lookup.failed(cand)
        self._check_op(op, now)

    def _check_op(self, op: _Op, now: float) -> None:
        if op.done or op.held:
            return
        if op.pending_raw:
            return  # records still waiting for their number binding
        lookup = op.lookup
        confirmed = op.records and (len(op.record_from) >= 2 or lookup.outstanding() == 0)
        if op.kind is Kind.FIND_VALUE and confirmed and not op.thorough:
            self._finish_op(op, now)
        elif lookup.finished():
            if not op.records and op.unchecked:
                # Nothing verified: give the held-back keys their check, most vouched first.
                held = sorted(op.unchecked.items(), key=lambda kv: -len(op.vouchers.get(kv[0], ())))
                op.unchecked.clear()
                for key, (raw, depth) in held[:LONE_KEYS_CHECKED_PER_LOOKUP]:
                    op.keys_checked.add(key)
                    self._take_record(op, raw, depth, None, now)
                if op.pending_raw or op.records:
                    self._check_op(op, now)
                    return
            self._finish_op(op, now)

    def _finish_op(self, op: _Op, now: float, *, timed_out: bool = False) -> None:
        if op.done:
            return
        if timed_out and op.first_record_at is None and op.pending_raw and now < op.deadline:
            return
        op.done = True
        self._ops.pop(op.lookup.lookup_id, None)
        lookup = op.lookup
        elapsed = now - lookup.started
        if op.purpose == "value":
            if op.records:
                self.counters.lookups_completed += 1
                self._repair(op, now)
                records = tuple(sorted(op.records.values(), key=lambda r: r.public_key))
                self._events.append(
                    LookupCompleted(
                        lookup_id=lookup.lookup_id,
                        number=op.number,
                        records=records,
                        hops=op.first_record_depth,
                        elapsed_s=elapsed,
                        queries=lookup.queries,
                        replies=lookup.replies,
                    )
                )
            else:
                self.counters.lookups_failed += 1
                reason = "timeout" if timed_out else "not found"
                if not len(self.table):
                    reason = "no overlay contacts"
                self._events.append(
                    LookupFailed(
                        lookup_id=lookup.lookup_id,
                        number=op.number,
                        reason=reason,
                        elapsed_s=elapsed,
                        queries=lookup.queries,
                        replies=lookup.replies,
                    )
                )
        elif op.purpose == "join":
            self._joining = False
            self._publishes_since_join = 0
            self._joined = bool(len(self.table))
            if self._joined and not self.member:
                self._arm_relays(now, soon=True)
            if self._joined and self._publish_due is not None:
                self._start_publish(now)
        elif op.purpose == "publish":
            self._store_at(op, now)

    # -- publishing ---------------------------------------------------------------------------
    def _start_publish(self, now: float) -> None:
        if self._record is None or self._publishing is not None:
            return
        try:
            # Held until its bookkeeping is set: with no one to ask, the lookup finishes at once
            # and must then see which record it published.
            op = self._start_op(record_key(self.number), Kind.FIND_NODE, "publish", now, hold=True)
        except LocalProtocolError:
            return
        op.seq = self._record_seq
        self._publishing = op
        self._publish_due = None
        op.held = False
        self._check_op(op, now)

    def _store_at(self, op: _Op, now: float) -> None:
        targets = op.lookup.closest_answered(self.config.k)
        for cand in targets:
            token = self._token_for(cand.contact.addr, now)
            req = self._request(
                Kind.STORE,
                Store(token=token, record=self._record_raw),
                cand.contact.public_key,
                cand.contact.addr,
                now=now,
                purpose=_Purpose.STORE,
                op=op,
            )
            if req is not None:
                req.record = self._record_raw
                op.stores_out += 1
        if not op.stores_out:
            self._published(op, now)

    def _on_store_ack(self, req: _Request, ack: StoreAck, now: float) -> None:
        op = req.op
        if (
            ack.status in (StoreStatus.BUSY, StoreStatus.BAD_TOKEN)
            and req.attempts < STORE_ATTEMPTS
        ):
            retry = _Request(
                req.txid,
                req.kind,
                req.purpose,
                req.public_key,
                req.addr,
                now,
                op=op,
                record=req.record,
                attempts=req.attempts + 1,
            )
            self._pending[req.txid] = retry
            delay = STORE_RETRY_S if ack.status is StoreStatus.BUSY else 0.0
            self._at(now + delay, _T_STORE_RETRY, retry)
            return
        if op is None:
            return  # a record handed on to a newcomer: nothing more to do
        if ack.status is StoreStatus.STORED:
            op.stored += 1
        elif (
            ack.status is StoreStatus.STALE
            and op.seq <= ack.held_seq < MAX_SEQ
            and req.public_key is not None
        ):
            # Our counter may have gone backwards (lost state, clock reset). Noted per storer;
            # the jump happens only if two storers agree (see _published).
            op.stale_reports[req.public_key] = ack.held_seq
        self._store_settled(op, now)

    def _resend_store(self, req: _Request, now: float) -> None:
        del self._pending[req.txid]
        token = self._token_for(req.addr, now)
        new = self._request(
            Kind.STORE,
            Store(token=token, record=req.record),
            req.public_key,
            req.addr,
            now=now,
            purpose=_Purpose.STORE,
            op=req.op,
        )
        if new is None:
            if req.op is not None:
                self._store_settled(req.op, now)
            return
        new.record = req.record
        new.attempts = req.attempts

    def _store_settled(self, op: _Op, now: float) -> None:
        op.stores_out -= 1
        if op.stores_out <= 0:
            self._published(op, now)

    def _published(self, op: _Op, now: float) -> None:
        if self._publishing is op:
            self._publishing = None
        if len(op.stale_reports) >= 2:
            # Jump past what storers hold, but only as far as the second-lowest report: a
            # single lying storer cannot push the counter anywhere.
            self._seq_floor = max(self._seq_floor, sorted(op.stale_reports.values())[1])
        self.counters.publishes += 1
        self._publishes_since_join += 1
        self._events.append(RecordPublished(seq=op.seq, storers=op.stored))
        if self._record is not None:
            if self._seq_floor >= self._record_seq:
                self._record_seq = self._seq_floor
                self._republish(now)  # re-signed with a sequence number past the one held
            elif self._record_seq > op.seq:
                self._start_publish(now)  # a newer record was signed meanwhile
            elif self._publish_due is None:
                period = self.config.republish_s
                if self._publishes_since_join == 1:
                    # Right after joining the routing table is thin, and the nodes nearest the
                    # number may not all have been found (or may have been liars): store again
                    # soon, from a table that has since filled.
                    period = min(period, SETTLE_REPUBLISH_S)
                self._publish_due = now + period * (0.9 + 0.1 * self.rng.random())

    def _republish(self, now: float) -> None:
        record = self._record
        if record is None:
            return
        self.publish(
            addresses=record.addresses,
            relays=None,
            presence=record.presence,
            forward_to=record.forward_to,
            now=now,
        )

    def _repair(self, op: _Op, now: float) -> None:
        """Storers that answered a lookup with an older record than another storer's get the
        newer one (this phone's store too), so later quick lookups stop finding a phone where it
        was: they end at the first two storers that agree. One STORE per stale responder that
        this lookup queried (it holds a token from it); the storer checks the record as any."""
        own = as_int(self.id)
        for ident, offered in op.offered.items():
            for public_key, seq in offered.items():
                newest = op.records.get(public_key)
                raw = op.raws.get(public_key)
                if newest is None or raw is None or seq >= newest.seq:
                    continue
                if ident == own:
                    if self.store.refresh(record_key(newest.number), newest, raw, now):
                        self.counters.records_repaired += 1
                    continue
                contact = op.responders.get(ident)
                if contact is None:
                    continue
                req = self._request(
                    Kind.STORE,
                    Store(token=self._token_for(contact.addr, now), record=raw),
                    contact.public_key,
                    contact.addr,
                    now=now,
                    purpose=_Purpose.STORE,
                )
                if req is not None:
                    req.record = raw
                    self.counters.records_repaired += 1

    def _replicate_to(self, contact: Contact, ident: int, now: float) -> None:
        """A node new to our table gets the records it is now nearer to than we are (Kademlia
        §2.5), so records published before it joined are found where lookups now end."""
        own = as_int(self.id)
        k = self.config.k
        for key, raw in self.store.items(now):
            target = as_int(key)
            if ident ^ target >= own ^ target:
                continue
            nearer = self.table.closest(target, k)
            if len(nearer) >= k and (nearer[-1].id ^ target) < (own ^ target):
                continue  # we are not among the k nearest ourselves: not ours to hand on
            token = self._token_for(contact.addr, now)
            req = self._request(
                Kind.STORE,
                Store(token=token, record=raw),
                contact.public_key,
                contact.addr,
                now=now,
                purpose=_Purpose.STORE,
            )
            if req is not None:
                req.record = raw

    # -- failures -----------------------------------------------------------------------------
    def _request_failed(self, req: _Request, now: float) -> None:
        del self._pending[req.txid]
        self.counters.query_timeouts += 1
        if req.relay_open is not None and req.public_key is not None:
            relay = Contact(req.public_key, req.addr)
            self._events.append(
                RelayChannelFailed(target=req.relay_open.target, relay=relay, reason="timeout")
            )
        if req.public_key is not None:
            self.table.failed(as_int(node_id(req.public_key)))
            if req.purpose is _Purpose.RELAY:
                self._drop_relay(req.public_key, now, refused=False)
        if req.op is not None:
            if req.cand is not None:
                req.op.lookup.failed(req.cand)
                self._drive(req.op, now)
            elif req.purpose is _Purpose.STORE:
                self._store_settled(req.op, now)
