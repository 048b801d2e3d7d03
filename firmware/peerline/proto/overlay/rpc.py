"""Requests out and replies matched: the overlay's RPC layer (protocol.md §9.6-§9.9).

Every part of the overlay, and every service another package registers on it, sends through
one ``Rpc``, because what sending costs and proves is one set of rules: each request gets a
random txid and waits in ``pending`` (at most ``max_pending``) until a reply from the right key
matches it or its hard timeout fails it against the node; everything sent carries the pair-key
MAC (or none, for an anonymous ping); a token a node gave us is reused towards its address
while it is young; and unknown senders and busy sources are held to their budgets before any
crypto is spent on them.

It also keeps the one timer heap of the overlay. A part registers a kind of timer
(``new_timer``: a liveness test and what to do when it fires) and schedules with ``at``; ties
break in scheduling order, so a simulation replays exactly.

It knows no message's meaning: a reply, a soft timeout and a hard timeout each go to the
handlers registered for the kind of reply the request expects (``handle_replies``).
"""

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from peerline.errors import LocalProtocolError
from peerline.ports import Rng
from peerline.types import Addr
from peerline.wire.overlay import (
    FLAG_ANONYMOUS,
    NO_TOKEN,
    OVERLAY_MAC_SIZE,
    REQUESTS,
    Body,
    Contact,
    Header,
    Kind,
    Ping,
    encode_overlay,
)

from .auth import PairKeys, mac
from .config import OverlayConfig, OverlayCounters
from .ids import as_int, node_id
from .lookup import Candidate
from .routing import RoutingTable
from .tokens import TOKEN_ROTATE_S

if TYPE_CHECKING:
    from .lookups import Op

PADDED_PING_SIZE = 100
"""A ping without a token is padded to this size so the pong (75 or 87 bytes) fits under it."""
MAX_TOKENS_CACHED = 4096
MAX_RATE_SOURCES = 4096

REPLY_TO = {
    Kind.PING: Kind.PONG,
    Kind.FIND_NODE: Kind.NODES,
    Kind.FIND_VALUE: Kind.NODES,
    Kind.STORE: Kind.STORE_ACK,
    Kind.INTRODUCE: Kind.INTRO_ACK,
    Kind.INTRODUCTION: Kind.INTRO_ACK,
    Kind.RELAY_OPEN: Kind.RELAY_OPENED,
}
"""The kind of reply each request kind expects (protocol.md §9.5)."""


class Purpose(IntEnum):
    """Why a request was sent, where that changes what its outcome does."""

    PLAIN = 0
    "Nothing beyond what the reply's handlers do."
    LOOKUP = 1
    STORE = 2
    BOOTSTRAP = 3
    "A ping to a seed or to a contact learned out of band: its answer may start a join."
    RELAY = 4
    "A client's keepalive ping to one of its relays: a timeout drops the relay."


@dataclass(slots=True, eq=False)
class Request:
    """A request of ours that waits for its reply."""

    txid: bytes
    kind: Kind
    purpose: Purpose
    public_key: bytes | None
    "Who must answer; None for an anonymous ping (whoever is at the address)."
    addr: Addr
    sent_at: float
    op: "Op | None" = None
    "The lookup (FIND_NODE, FIND_VALUE) or publish (STORE) it is part of."
    cand: Candidate | None = None
    "The lookup's candidate it asks."
    record: bytes = b""
    "A STORE's record, as sent (a retry sends it again)."
    attempts: int = 1
    "A STORE's attempts so far."
    context: object = None
    "What its sender needs again at the outcome (a registered service's own record)."


@dataclass(slots=True, eq=False)
class Reply:
    """An authenticated reply that matched ``request``, as a reply handler gets it."""

    request: Request
    "Already out of ``pending``."
    header: Header
    body: Body
    contact: Contact
    "The sender and the address the reply came from."
    ident: int
    "The sender's node id."
    token: bytes
    "The token the reply carried (NO_TOKEN if none): good towards ``contact.addr``."
    now: float


ReplyHandler = Callable[[Reply], None]
OutcomeHandler = Callable[[Request, float], None]
"""Called with a request that went unanswered (``on_slow``, ``on_timeout``) and ``now``."""
TimerKind = tuple[Callable[[object], bool], Callable[[object, float], None]]


class Rpc:
    """See module docstring. One per overlay; the parts share it."""

    def __init__(
        self,
        *,
        public_key: bytes,
        config: OverlayConfig,
        rng: Rng,
        pairs: PairKeys,
        table: RoutingTable,
        counters: OverlayCounters,
    ) -> None:
        self.public_key = public_key
        self.config = config
        self.rng = rng
        self.pairs = pairs
        self.table = table
        self.counters = counters
        self.pending: dict[bytes, Request] = {}
        "Our requests by txid, until answered or timed out."
        self.out: list[tuple[bytes, Addr]] = []
        "Datagrams to send, drained by ``Overlay.datagrams_to_send``."
        self.member_flag = 0
        "FLAG_MEMBER while this node is a supernode (``Roles`` keeps it): set on all we send."
        self._timers: list[tuple[float, int, int, object]] = []
        self._seq = itertools.count()
        self._timer_kinds: list[TimerKind] = []
        self._handled: set[Kind] = set()
        self._replies: dict[Kind, ReplyHandler] = {}
        self._slow: dict[Kind, OutcomeHandler] = {}
        self._timeouts: dict[Kind, OutcomeHandler] = {}
        self._peer_tokens: OrderedDict[Addr, tuple[bytes, float]] = OrderedDict()
        "Tokens others gave us, with when: one is sure to be accepted for TOKEN_ROTATE_S."
        self._rates: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._pair_budget = (config.new_pairs_per_s, -1e18)
        self._t_soft = self.new_timer(self.is_pending, self._soft_timeout)
        self._t_hard = self.new_timer(self.is_pending, self._hard_timeout)

    # -- timers -------------------------------------------------------------------------------
    def new_timer(
        self, live: Callable[[object], bool], fire: Callable[[object, float], None]
    ) -> int:
        """A kind of timer: ``live(ref)`` says whether an entry still matters (dead ones are
        skipped), ``fire(ref, now)`` acts on a live one. Returns its tag for ``at``."""
        self._timer_kinds.append((live, fire))
        return len(self._timer_kinds) - 1

    def at(self, t: float, tag: int, ref: object) -> None:
        heapq.heappush(self._timers, (t, next(self._seq), tag, ref))

    def get_timer(self) -> float | None:
        timers, kinds = self._timers, self._timer_kinds
        while timers and not kinds[timers[0][2]][0](timers[0][3]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def handle_timer(self, now: float) -> None:
        timers, kinds = self._timers, self._timer_kinds
        while timers and timers[0][0] <= now:
            _, _, tag, ref = heapq.heappop(timers)
            live, fire = kinds[tag]
            if live(ref):
                fire(ref, now)

    def is_pending(self, ref: object) -> bool:
        """Whether ``ref`` is a request still waiting (the liveness of request timers)."""
        return isinstance(ref, Request) and self.pending.get(ref.txid) is ref

    # -- outcomes -----------------------------------------------------------------------------
    def handle_replies(
        self,
        kind: Kind,
        handler: ReplyHandler | None = None,
        *,
        on_timeout: OutcomeHandler | None = None,
        on_slow: OutcomeHandler | None = None,
    ) -> None:
        """Route replies of ``kind`` to ``handler``, and the requests that expect that kind
        and go unanswered to ``on_slow`` (past their soft timeout, if sent with one) and
        ``on_timeout`` (past the hard one: they failed). One registration per kind."""
        if kind in REQUESTS or kind in self._handled:
            raise LocalProtocolError(f"{kind.name}: not a reply kind, or already handled")
        self._handled.add(kind)
        if handler is not None:
            self._replies[kind] = handler
        if on_slow is not None:
            self._slow[kind] = on_slow
        if on_timeout is not None:
            self._timeouts[kind] = on_timeout

    def reply_handler(self, kind: Kind) -> ReplyHandler | None:
        return self._replies.get(kind)

    def _soft_timeout(self, ref: object, now: float) -> None:
        if isinstance(ref, Request):
            handler = self._slow.get(REPLY_TO[ref.kind])
            if handler is not None:
                handler(ref, now)

    def _hard_timeout(self, ref: object, now: float) -> None:
        if not isinstance(ref, Request):
            return
        del self.pending[ref.txid]
        self.counters.query_timeouts += 1
        if ref.public_key is not None:
            self.table.failed(as_int(node_id(ref.public_key)))
        handler = self._timeouts.get(REPLY_TO[ref.kind])
        if handler is not None:
            handler(ref, now)

    # -- sending ------------------------------------------------------------------------------
    def emit(
        self, kind: Kind, body: Body, txid: bytes, *, to_key: bytes | None, addr: Addr, flags: int
    ) -> bool:
        """Queue one message, MAC'd for ``to_key`` (None: anonymous, a zero MAC)."""
        header = Header(
            kind=kind, flags=flags | self.member_flag, txid=txid, sender=self.public_key
        )
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
        self.out.append((data + tag, addr))
        return True

    def request(
        self,
        kind: Kind,
        body: Body,
        public_key: bytes | None,
        addr: Addr,
        *,
        now: float,
        purpose: Purpose = Purpose.PLAIN,
        op: "Op | None" = None,
        cand: Candidate | None = None,
        soft_s: float | None = None,
        context: object = None,
    ) -> Request | None:
        """Send a request and wait for its reply; None if it could not be sent (too many
        pending, too large, or no pair key for ``public_key``)."""
        if len(self.pending) >= self.config.max_pending:
            return None
        txid = self.rng.random_bytes(8)
        flags = FLAG_ANONYMOUS if public_key is None else 0
        if not self.emit(kind, body, txid, to_key=public_key, addr=addr, flags=flags):
            return None
        req = Request(txid, kind, purpose, public_key, addr, now, op=op, cand=cand, context=context)
        self.pending[txid] = req
        self.counters.queries_sent += 1
        if soft_s is not None:
            self.at(now + soft_s, self._t_soft, req)
        self.at(now + self.config.query_hard_timeout_s, self._t_hard, req)
        return req

    def ping(self, public_key: bytes | None, addr: Addr, now: float, purpose: Purpose) -> None:
        token = self.token_for(addr, now)
        padding = 0
        if token == NO_TOKEN:  # unvalidated: the pong may not be larger than the ping
            padding = PADDED_PING_SIZE - (44 + 8 + OVERLAY_MAC_SIZE)
        body = Ping(token=token, padding=padding)
        if purpose is Purpose.RELAY:  # what holding the NAT mapping open costs
            self.counters.keepalive_bytes_sent += 44 + 8 + padding + OVERLAY_MAC_SIZE
        self.request(Kind.PING, body, public_key, addr, now=now, purpose=purpose)

    def rto(self, public_key: bytes) -> float:
        """The soft timeout of a query to ``public_key``: from its RTT if measured."""
        entry = self.table.get(as_int(node_id(public_key)))
        if entry is not None and entry.srtt is not None:
            return min(self.config.query_timeout_s, max(0.25, 2.5 * entry.srtt))
        return self.config.query_timeout_s

    # -- tokens given to us -------------------------------------------------------------------
    def token_for(self, addr: Addr, now: float) -> bytes:
        """A token from ``addr`` young enough to be accepted, or NO_TOKEN."""
        held = self._peer_tokens.get(addr)
        if held is None or now - held[1] >= TOKEN_ROTATE_S:
            return NO_TOKEN
        return held[0]

    def remember_token(self, addr: Addr, token: bytes, now: float) -> None:
        if token == NO_TOKEN:
            return
        self._peer_tokens[addr] = (token, now)
        self._peer_tokens.move_to_end(addr)
        if len(self._peer_tokens) > MAX_TOKENS_CACHED:
            self._peer_tokens.popitem(last=False)

    # -- budgets ------------------------------------------------------------------------------
    def rate_ok(self, host: str, now: float) -> bool:
        """The per-source request rate limit (a token bucket per host, LRU-bounded)."""
        cfg = self.config
        tokens, last = self._rates.pop(host, (cfg.request_burst, now))
        tokens = min(cfg.request_burst, tokens + (now - last) * cfg.requests_per_source_per_s)
        ok = tokens >= 1.0
        self._rates[host] = (tokens - 1.0 if ok else tokens, now)
        if len(self._rates) > MAX_RATE_SOURCES:
            self._rates.popitem(last=False)
        return ok

    def pair_key_affordable(self, public_key: bytes, now: float) -> bool:
        """A cached pair key is free; a new one spends the derivation budget."""
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
