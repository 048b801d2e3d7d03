"""The overlay endpoint: a Kademlia node that serves, looks up and publishes signed records.

Sans-I/O, like ``proto.node.Node``: ``receive_datagram`` / ``datagrams_to_send`` /
``get_timer`` / ``handle_timer`` / ``next_event``, plus the calls a phone makes (``bootstrap``,
``lookup``, ``publish``). It shares the phone's UDP socket; ``proto.engine`` routes packet
type 0x54 here. docs/protocol.md §9-§10 specify the messages; docs/overlay.md the design.

``Overlay`` is the facade: it owns the shared state (identity, routing table, record store,
tokens, counters, events), runs the order of checks on every datagram (protocol.md §9.7) and
the maintenance wake-up, and composes the parts that do the rest:

- ``rpc.Rpc``: pending requests, timeouts, the timer heap, MACs, tokens given to us, budgets;
- ``serving.Serving``: the request-kind table, and PING / FIND_NODE / FIND_VALUE / STORE;
- ``lookups.Lookups``: lookups in progress;
- ``publishing.Publishing``: the own record, republishing, repair, replication;
- ``roles.Roles``: supernode or client, the reflexive address, relays and clients.

Message kinds the overlay does not serve itself (introductions, relay channels: ``proto.nat``)
are served by whoever registers them (``register_request``, ``register_reply``).
"""

import hmac
from collections import deque
from typing import cast

from peerline.errors import DecodeError, LocalProtocolError
from peerline.ports import Rng
from peerline.proto.identity import Identity
from peerline.types import Addr
from peerline.wire.overlay import (
    FLAG_ANONYMOUS,
    FLAG_FULL,
    FLAG_MEMBER,
    NO_TOKEN,
    OVERLAY_MAC_SIZE,
    REQUESTS,
    Body,
    Contact,
    Header,
    Kind,
    Nodes,
    OverlayMessage,
    Pong,
    decode_overlay,
)
from peerline.wire.record import CandidateKind, Presence, Record

from .auth import PairKeys, mac
from .config import OverlayConfig, OverlayCounters
from .events import OverlayEvent
from .ids import ID_BITS, as_int, node_id, random_id_in_bucket
from .lookups import Lookups, Op
from .publishing import Publishing
from .records import NumberBinding
from .roles import Roles
from .routing import RoutingTable
from .rpc import REPLY_TO, OutcomeHandler, Purpose, Reply, ReplyHandler, Request, Rpc
from .serving import RequestHandler, Serving
from .store import RecordStore
from .tokens import TokenIssuer

__all__ = ["Overlay", "OverlayConfig", "OverlayCounters"]


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
        self._events: deque[OverlayEvent] = deque()
        self._seeds: list[tuple[bytes | None, Addr]] = []
        self._seed_waiting: dict[Addr, int] = {}
        "Seeds that have not answered yet, with the retries already sent."
        self._joined = False
        self._joining = False
        self._maint_gen = 0
        self._maint_at: float | None = None
        self.rpc = Rpc(
            public_key=self.public_key,
            config=self.config,
            rng=rng,
            pairs=self.pairs,
            table=self.table,
            counters=self.counters,
        )
        self._t_maint = self.rpc.new_timer(self._maint_live, self._maint_due)
        self._t_seed = self.rpc.new_timer(self._seed_live, self._seed_due)
        self.serving = Serving(self)
        self.roles = Roles(self)
        self.publishing = Publishing(self, seq_start=seq_start)
        self.lookups = Lookups(self)

    # -- API ----------------------------------------------------------------------------------
    def bootstrap(self, seeds: list[tuple[bytes | None, Addr]], *, now: float) -> None:
        """Join through ``seeds`` (key if known, address). Safe to call again with more."""
        for seed in seeds:
            if seed not in self._seeds:
                self._seeds.append(seed)
        self.arm_maintenance(now, soon=True)
        for public_key, addr in seeds:
            self.rpc.ping(public_key, addr, now, Purpose.BOOTSTRAP)
            self._retry_seed(public_key, addr, 0, now)

    def add_contact(self, contact: Contact, *, now: float) -> None:
        """A node learned out of band (peer cache, LAN discovery): ping it; in if it answers."""
        if contact.public_key != self.public_key:
            self.rpc.ping(contact.public_key, contact.addr, now, Purpose.BOOTSTRAP)
            self.arm_maintenance(now, soon=True)

    def lookup(self, number: str, *, now: float, thorough: bool = False) -> int:
        """Start resolving ``number`` (12 digits); the answer comes as LookupCompleted/Failed.

        A normal lookup ends once two storers agree (or shortly after the first answers): quick
        for dialling. ``thorough`` asks every one of the ``k`` nodes nearest the number and
        keeps the newest record of each key: for a peer that stopped answering at the address
        we hold, which the first storers to answer may still list (they missed its move).
        """
        if len(number) != 12 or not number.isascii() or not number.isdigit():
            raise LocalProtocolError("a number is 12 ASCII digits")
        return self.lookups.lookup(number, now=now, thorough=thorough)

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
        return self.publishing.publish(
            addresses=addresses, relays=relays, presence=presence, forward_to=forward_to, now=now
        )

    def warm_start(self, *, now: float, republish_at: float | None, refreshed_at: float) -> None:
        """Simulation only: take up the state of a phone that has been in the overlay a while.

        The routing table must already be filled (``table.seen``) and, if ``republish_at`` is
        given, the record published and stored; timers continue from there.
        """
        self._joined = bool(len(self.table))
        publishing = self.publishing
        publishing.publish_due = republish_at if publishing.record is not None else None
        self.table.touched_default = refreshed_at
        self.arm_maintenance(now)

    @property
    def record(self) -> Record | None:
        return self.publishing.record

    @property
    def joined(self) -> bool:
        return self._joined

    def contacts(self) -> list[Contact]:
        return [e.contact for e in self.table.entries()]

    def bindings_changed(self, *, now: float) -> None:
        """The NumberBinding learned something: re-check records that were waiting on it."""
        self.lookups.bindings_changed(now)

    def rtt(self, public_key: bytes) -> float | None:
        """Smoothed round-trip time to a node in the routing table, if measured."""
        entry = self.table.get(as_int(node_id(public_key)))
        return entry.srtt if entry is not None else None

    # -- roles --------------------------------------------------------------------------------
    @property
    def member(self) -> bool:
        """Whether this phone serves the DHT (a supernode) rather than only using it."""
        return self.roles.member

    @property
    def relays(self) -> tuple[Contact, ...]:
        """As a client: the supernodes it keeps a path open through (listed in its record)."""
        return self.roles.relays

    @property
    def reflexive(self) -> Addr | None:
        """How overlay peers see this phone, once two agree (None until then)."""
        return self.roles.reflexive

    def set_host_addresses(self, addrs: list[Addr], *, now: float) -> None:
        """The addresses this phone's socket is bound to (for the reachability test)."""
        self.roles.set_host_addresses(addrs, now=now)

    def rebind(self, *, now: float) -> None:
        """This phone's addresses changed (``set_host_addresses`` follows): how peers saw it
        before no longer holds, so ``reflexive`` is None until they report again (the next
        answers to its queries and pings)."""
        self.roles.forget_observed()

    def client_addr(self, key: bytes, now: float) -> Addr | None:
        """Where client ``key`` pinged us from lately (validated), or None: no path to it."""
        return self.roles.client_addr(key, now)

    # -- serving more kinds (for other packages: proto.nat) -----------------------------------
    def register_request(self, kind: Kind, handler: RequestHandler) -> None:
        """Serve requests of ``kind`` with ``handler`` (``serving.Inbound`` in, the reply's
        body and flags out). It gets only requests that passed the rate limit and the MAC
        check, and its reply goes through the same token and size rules as the overlay's own.
        A request kind nobody registered is dropped (``dropped_malformed``). Raises
        LocalProtocolError for a kind that is not a request or is served already."""
        self.serving.register(kind, handler)

    def register_reply(
        self,
        kind: Kind,
        handler: ReplyHandler | None = None,
        *,
        on_timeout: OutcomeHandler | None = None,
        on_slow: OutcomeHandler | None = None,
    ) -> None:
        """Take replies of ``kind`` (``rpc.Reply``: the request, the sender, its token) after the
        overlay's own bookkeeping (RTT, token, reflexive address); ``on_timeout`` hears of the
        requests expecting ``kind`` that went unanswered (the node is already charged a
        failure), ``on_slow`` of those past their soft timeout. Raises LocalProtocolError for
        a kind that is not a reply or is handled already."""
        self.rpc.handle_replies(kind, handler, on_timeout=on_timeout, on_slow=on_slow)

    def request(
        self,
        kind: Kind,
        body: Body,
        public_key: bytes,
        addr: Addr,
        *,
        now: float,
        context: object = None,
    ) -> Request | None:
        """Send a request to ``public_key`` at ``addr``; its reply (or timeout) goes to the
        handlers registered for the reply kind, with ``context`` in ``Request.context``. None
        if it could not be sent (too many pending, no pair key for the key)."""
        return self.rpc.request(kind, body, public_key, addr, now=now, context=context)

    def token_for(self, addr: Addr, now: float) -> bytes:
        """A token ``addr`` gave us that it still accepts, or NO_TOKEN."""
        return self.rpc.token_for(addr, now)

    def add_event(self, event: OverlayEvent) -> None:
        """Queue ``event`` for ``next_event`` (the parts and the registered services do)."""
        self._events.append(event)

    def queue_datagram(self, data: bytes, addr: Addr) -> None:
        """Queue a datagram that is not an overlay message (a relayed session packet this
        supernode forwards) to go out with the overlay's (counted in ``tx_*``)."""
        self.rpc.out.append((data, addr))

    # -- the adversary's hooks (sim.adversary) ------------------------------------------------
    def serve(self, msg: OverlayMessage, addr: Addr, size: int, now: float) -> None:
        """Answer one request of ``size`` bytes that passed the rate limit and the MAC check.

        The one place a subclass may change what this node answers (the simulator's lying
        nodes do); it runs before any token work. Everything else serves kinds through
        ``register_request``.
        """
        self.serving.serve(msg, addr, size, now)

    def answer(self, header: Header, body: Body, addr: Addr, *, flags: int = 0) -> None:
        """Send ``body`` as the reply to the request ``header`` (for ``serve`` overrides: no
        size rule is applied)."""
        self.rpc.emit(
            REPLY_TO[header.kind], body, header.txid, to_key=header.sender, addr=addr, flags=flags
        )

    # -- the driver's calls -------------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        """Take one overlay datagram. Never raises: bad input is dropped and counted."""
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
        rpc = self.rpc
        is_request = header.kind in REQUESTS
        if is_request and not rpc.rate_ok(addr[0], now):
            c.dropped_rate_limited += 1
            return
        req = None if is_request else rpc.pending.get(header.txid)
        if not is_request and (
            req is None
            or REPLY_TO[req.kind] is not header.kind
            or (req.public_key is not None and req.public_key != header.sender)
        ):
            c.dropped_unsolicited += 1  # before any crypto: stray replies cost one lookup
            return
        if header.flags & FLAG_ANONYMOUS:
            if header.kind is not Kind.PING or msg.mac != bytes(OVERLAY_MAC_SIZE):
                c.dropped_malformed += 1
                return
            if not rpc.pair_key_affordable(header.sender, now):
                c.dropped_busy += 1
                return
            self.serve(msg, addr, len(data), now)
            return
        if not rpc.pair_key_affordable(header.sender, now):
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
                self.publishing.replicate_to(contact, ident, now)
                if not self._joined and not self._joining:
                    self.arm_maintenance(now, soon=True)  # someone found us: join through them
        if req is None:
            self.serve(msg, addr, len(data), now)
        else:
            self._on_reply(msg, req, contact, ident, now)

    def _address_proven(
        self, msg: OverlayMessage, req: Request | None, addr: Addr, now: float
    ) -> bool:
        """Whether ``addr`` is where the sender really is, so it may go in the routing table.

        A reply to our query proves it when it comes from where we sent (a replayed or
        redirected copy from elsewhere does not); a request proves it with a valid token.
        """
        if req is not None:
            return req.addr == addr
        token = getattr(msg.body, "token", NO_TOKEN)
        return token != NO_TOKEN and self.tokens.valid(token, addr, now)

    def _on_reply(
        self, msg: OverlayMessage, req: Request, contact: Contact, ident: int, now: float
    ) -> None:
        """What every reply does, then what its kind's handler does (protocol.md §9.10)."""
        header, body = msg.header, msg.body
        del self.rpc.pending[header.txid]
        self._seed_waiting.pop(req.addr, None)  # a seed that answers is not asked again
        entry = self.table.get(ident)
        if entry is not None:
            entry.note_rtt(now - req.sent_at)
            entry.pinging = False
        token = getattr(body, "token", NO_TOKEN)
        self.rpc.remember_token(contact.addr, token, now)
        if header.flags & FLAG_FULL:
            self.roles.refused_by(contact.public_key, now)
        if isinstance(body, Pong | Nodes):
            self.roles.note_observed(ident, body.observed, now)
        if req.purpose is Purpose.BOOTSTRAP and self.table.get(ident) is not None:
            if self.member and (self._joined or self._joining) and token != NO_TOKEN:
                # No join lookup of ours will reach it: a ping with its token proves our
                # address, so it takes us in too (a seed that started late knows nobody else).
                self.rpc.ping(contact.public_key, contact.addr, now, Purpose.PLAIN)
            self.arm_maintenance(now, soon=not self._joined)
        handler = self.rpc.reply_handler(header.kind)
        if handler is not None:
            handler(Reply(req, header, body, contact, ident, token, now))

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        out, self.rpc.out = self.rpc.out, []
        self.counters.tx_datagrams += len(out)
        self.counters.tx_bytes += sum(len(d) for d, _ in out)
        return out

    def get_timer(self) -> float | None:
        return self.rpc.get_timer()

    def handle_timer(self, *, now: float) -> None:
        self.rpc.handle_timer(now)

    def next_event(self) -> OverlayEvent | None:
        return self._events.popleft() if self._events else None

    # -- maintenance --------------------------------------------------------------------------
    def arm_maintenance(self, now: float, *, soon: bool = False) -> None:
        """Keep exactly one maintenance wake-up pending; ``soon`` pulls it to within a second."""
        jitter = 0.5 + self.rng.random()
        at = now + (jitter if soon else self.config.maintenance_s * jitter)
        if self._maint_at is not None and self._maint_at <= at:
            return
        self._maint_gen += 1
        self._maint_at = at
        self.rpc.at(at, self._t_maint, self._maint_gen)

    def _retry_seed(self, public_key: bytes | None, addr: Addr, sent: int, now: float) -> None:
        """Ping seed ``addr`` again later unless it answers first (protocol.md §9.12.5): one
        ping lost because the seed was not up yet must not leave it out for good."""
        if sent >= self.config.seed_retries:
            self._seed_waiting.pop(addr, None)
            return
        self._seed_waiting[addr] = sent
        at = now + self.config.seed_retry_s * 2**sent
        self.rpc.at(at, self._t_seed, (public_key, addr, sent))

    def _seed_live(self, ref: object) -> bool:
        _, addr, sent = cast(tuple[bytes | None, Addr, int], ref)
        return self._seed_waiting.get(addr) == sent

    def _seed_due(self, ref: object, now: float) -> None:
        public_key, addr, sent = cast(tuple[bytes | None, Addr, int], ref)
        self.rpc.ping(public_key, addr, now, Purpose.BOOTSTRAP)
        self._retry_seed(public_key, addr, sent + 1, now)

    def _maint_live(self, ref: object) -> bool:
        return ref == self._maint_gen

    def _maint_due(self, ref: object, now: float) -> None:
        self._maint_at = None
        cfg, rpc = self.config, self.rpc
        self.store.expire(now)
        if not len(self.table):
            self._joined = False
            for public_key, addr in self._seeds:
                rpc.ping(public_key, addr, now, Purpose.BOOTSTRAP)
        else:
            if not self._joined and not self._joining:
                self._joining = True
                self.lookups.start(self.id, Kind.FIND_NODE, "join", now, on_done=self._on_joined)
            for entry in self.table.stale(now, cfg.ping_after_s, cfg.pings_per_maintenance):
                entry.pinging = True
                rpc.ping(entry.contact.public_key, entry.contact.addr, now, Purpose.PLAIN)
            if self._joined:
                self._refresh_one(now)
                publishing = self.publishing
                if (
                    publishing.publish_due is not None
                    and now >= publishing.publish_due
                    and publishing.publishing is None
                ):
                    publishing.start(now)
        self.arm_maintenance(now)

    def _refresh_one(self, now: float) -> None:
        nonempty = self.table.nonempty_buckets()
        if not nonempty:
            return
        cutoff = now - self.config.refresh_s
        for index in range(nonempty[0], ID_BITS):
            if self.table.last_touched(index) <= cutoff:
                self.table.touched[index] = now
                target = random_id_in_bucket(self.id, index, self.rng.random_bytes(20))
                self.lookups.start(target, Kind.FIND_NODE, "refresh", now)
                return

    def _on_joined(self, op: Op, now: float) -> None:
        """The join lookup (a FIND_NODE for our own id) ended."""
        self._joining = False
        self.publishing.joined()
        self._joined = bool(len(self.table))
        if self._joined and not self.member:
            self.roles.arm_relays(now, soon=True)
        if self._joined and self.publishing.publish_due is not None:
            self.publishing.start(now)
