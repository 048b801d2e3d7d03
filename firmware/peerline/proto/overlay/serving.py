"""Answering requests: the table from request kind to handler, and the DHT's own four
(PING, FIND_NODE, FIND_VALUE, STORE; protocol.md §9.7-§9.9, §9.13).

What a node answers, and how large an answer may be while the requester's address is not
proven, is where the overlay meets hostile input (amplification, storage abuse), so one place
applies the rules to every kind: the token is checked and a fresh one handed out, a reply to an
unvalidated address is never larger than its request (fixed-size replies are dropped, NODES are
cut and flagged TRUNCATED), and the reply is MAC'd for the requester. A handler only decides
what to answer. Other packages serve the kinds the overlay does not know through
``Overlay.register_request`` (``proto.nat`` serves INTRODUCE, INTRODUCTION and RELAY_OPEN).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from peerline.errors import LocalProtocolError
from peerline.types import Addr
from peerline.wire.overlay import (
    FLAG_ANONYMOUS,
    FLAG_FULL,
    FLAG_MEMBER,
    FLAG_TRUNCATED,
    MAX_RECORD_SIZE,
    NO_TOKEN,
    OVERLAY_MAC_SIZE,
    REQUESTS,
    Body,
    Contact,
    FindNode,
    FindValue,
    Header,
    Kind,
    Nodes,
    OverlayMessage,
    Pong,
    Store,
    StoreAck,
    StoreStatus,
    addr_size,
    contact_size,
    encode_overlay,
)
from peerline.wire.spec import MAX_DATAGRAM

from .ids import as_int, node_id, record_key
from .records import Verdict, check_binding, verify_signed
from .rpc import REPLY_TO

if TYPE_CHECKING:
    from .overlay import Overlay


@dataclass(slots=True, eq=False)
class Inbound:
    """A request that passed the rate limit and the MAC check, as its handler gets it."""

    header: Header
    body: Body
    addr: Addr
    "Where it came from: where the reply goes."
    validated: bool
    "It carried a token we gave to ``addr``: the requester receives there."
    limit: int | None
    "None if validated; else the request's size, which the reply may not exceed."
    token: bytes
    "A fresh token for ``addr``, for the reply to carry."
    now: float


RequestHandler = Callable[[Inbound], tuple[Body, int] | None]
"""Answers an ``Inbound`` with (reply body, reply flags), or None to send nothing. The reply's
kind is the one the request kind expects (``rpc.REPLY_TO``)."""


class Serving:
    """See module docstring."""

    def __init__(self, overlay: "Overlay") -> None:
        self._overlay = overlay
        self._rpc = overlay.rpc
        self._handlers: dict[Kind, RequestHandler] = {}
        self.register(Kind.PING, self._ping)
        self.register(Kind.FIND_NODE, self._find_node)
        self.register(Kind.FIND_VALUE, self._find_value)
        self.register(Kind.STORE, self._store)

    def register(self, kind: Kind, handler: RequestHandler) -> None:
        if kind not in REQUESTS or kind in self._handlers:
            raise LocalProtocolError(f"{kind.name}: not a request kind, or already served")
        self._handlers[kind] = handler

    def serve(self, msg: OverlayMessage, addr: Addr, size: int, now: float) -> None:
        """Answer one request through its kind's handler (see module docstring)."""
        header = msg.header
        handler = self._handlers.get(header.kind)
        ov = self._overlay
        if handler is None:
            ov.counters.dropped_malformed += 1  # a kind nothing here serves
            return
        body = msg.body
        token = getattr(body, "token", NO_TOKEN)
        validated = token != NO_TOKEN and ov.tokens.valid(token, addr, now)
        limit = None if validated else size
        fresh = ov.tokens.issue(addr, now)
        ov.counters.queries_answered += 1
        answer = handler(Inbound(header, body, addr, validated, limit, fresh, now))
        if answer is None:
            return
        reply, flags = answer
        kind = REPLY_TO[header.kind]
        if flags & FLAG_TRUNCATED:
            ov.counters.replies_truncated += 1
        if limit is not None and kind is not Kind.NODES:
            # Fixed-size replies: send only if they are no larger than the request.
            probe = encode_overlay(
                Header(kind=kind, flags=0, txid=header.txid, sender=ov.public_key), reply
            )
            if len(probe) + OVERLAY_MAC_SIZE > limit:
                return
        self._rpc.emit(kind, reply, header.txid, to_key=header.sender, addr=addr, flags=flags)

    # -- the DHT's requests -------------------------------------------------------------------
    def _ping(self, q: Inbound) -> tuple[Body, int]:
        header, flags = q.header, 0
        if not header.flags & (FLAG_MEMBER | FLAG_ANONYMOUS) and not self._overlay.roles.client_ok(
            header.sender, q.addr, q.validated, q.now
        ):
            flags = FLAG_FULL
        return Pong(observed=q.addr, token=q.token), flags

    def _find_node(self, q: Inbound) -> tuple[Body, int] | None:
        if not isinstance(q.body, FindNode):
            return None
        target = as_int(q.body.target)
        return self._nodes_reply(target, q, records=())

    def _find_value(self, q: Inbound) -> tuple[Body, int] | None:
        if not isinstance(q.body, FindValue):
            return None
        records = tuple(self._overlay.publishing.records_for(q.body.key, q.now))
        return self._nodes_reply(as_int(q.body.key), q, records=records)

    def _store(self, q: Inbound) -> tuple[Body, int] | None:
        if not isinstance(q.body, Store):
            return None
        status, held = self.on_store(q.body, q.validated, q.addr, q.now)
        return StoreAck(status=status, token=q.token, held_seq=held), 0

    def _nodes_reply(
        self, target: int, q: Inbound, *, records: tuple[bytes, ...]
    ) -> tuple[Nodes, int]:
        ov, addr, limit = self._overlay, q.addr, q.limit
        k = ov.config.k
        requester_id = as_int(node_id(q.header.sender))
        contacts = [e.contact for e in ov.table.closest(target, k + 1) if e.id != requester_id][:k]
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
        reply = Nodes(observed=addr, token=q.token, contacts=tuple(fitted), records=tuple(kept))
        return reply, flags

    def on_store(
        self, body: Store, validated: bool, addr: Addr, now: float
    ) -> tuple[StoreStatus, int]:
        """Check a STORE (protocol.md §9.13.2 order) and keep the record if it passes."""
        ov = self._overlay
        c = ov.counters
        if not validated:
            c.stores_bad_token += 1
            return StoreStatus.BAD_TOKEN, 0
        if len(body.record) > MAX_RECORD_SIZE:
            c.records_rejected_oversize += 1
            return StoreStatus.INVALID, 0
        verdict, record = verify_signed(body.record)
        if verdict is not Verdict.VALID or record is None:
            c.count_rejected(verdict)
            return StoreStatus.INVALID, 0
        key = record_key(record.number)
        refused = ov.store.precheck(key, record, body.record, addr[0], now)
        if refused is None:
            verdict = check_binding(record, ov.binding)  # argon2id: only once limits allow
            if verdict is Verdict.PENDING:
                return StoreStatus.BUSY, 0
            if verdict is not Verdict.VALID:
                c.count_rejected(verdict)
                return StoreStatus.INVALID, 0
        status, held = refused or ov.store.put(key, record, body.record, addr[0], now)
        if status is StoreStatus.STORED:
            c.records_stored += 1
        elif status is StoreStatus.STALE:
            c.records_rejected_stale += 1
        elif status is StoreStatus.FULL:
            c.records_rejected_full += 1
        return status, held
