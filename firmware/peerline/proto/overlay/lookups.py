"""Lookups in progress: the glue between the ``Lookup`` machine and the network
(protocol.md §9.12).

``lookup.Lookup`` only decides whom to ask; this module asks them. It sends the FIND_NODE or
FIND_VALUE queries a lookup picks (padded while we hold no token from the node), feeds the
NODES replies, soft timeouts and failures back, takes the records a FIND_VALUE turns up
(signature, number binding, the budget of binding checks for keys only one responder offers),
and ends each lookup: a value lookup with ``LookupCompleted`` or ``LookupFailed`` (after
handing newer records to storers that answered with older ones), any other with the callback
its starter gave (joining, refreshing a bucket, finding where to publish).
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from peerline.errors import LocalProtocolError
from peerline.wire.overlay import (
    FLAG_TRUNCATED,
    NO_TOKEN,
    OVERLAY_MAC_SIZE,
    Body,
    Contact,
    FindNode,
    FindValue,
    Kind,
    Nodes,
)
from peerline.wire.record import Record

from .events import LookupCompleted, LookupFailed
from .ids import as_int, node_id, record_key
from .lookup import Lookup
from .records import Verdict, check_binding, verify_signed
from .rpc import Purpose, Reply, Request

if TYPE_CHECKING:
    from .overlay import Overlay

UNVALIDATED_REQUEST_SIZE = 420
"""A lookup query to a node that has not given us a token yet is padded to this many bytes, so
the reply may carry k IPv4 contacts without exceeding the request (no amplification)."""
LONE_KEYS_CHECKED_PER_LOOKUP = 2
"""Keys offered by a single responder whose binding a lookup checks at once; more wait for a
second responder or for the end of the lookup (liars mint keys to make the caller pay)."""
VALUE_GRACE_S = 0.25
"""After the first verified record, wait this long for a second storer to confirm it."""


@dataclass(slots=True, eq=False)
class Op:
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
    "Records held back from the binding check (see take_record), with their depth."
    seq: int = 0
    thorough: bool = False
    "A value lookup that runs to the end instead of stopping at the first agreeing storers."
    raws: dict[bytes, bytes] = field(default_factory=dict)
    "Key -> the record in ``records`` as it was signed (what a repair stores)."
    offered: dict[int, dict[bytes, int]] = field(default_factory=dict)
    "Responder id -> key -> the newest sequence number it returned (older ones get repaired)."
    responders: dict[int, Contact] = field(default_factory=dict)
    "Responders that returned records, by id."
    on_done: "Callable[[Op, float], None] | None" = None
    "Called when a lookup that is not a value lookup ends."
    done: bool = False


class Lookups:
    """See module docstring."""

    def __init__(self, overlay: "Overlay") -> None:
        self._overlay = overlay
        self._rpc = overlay.rpc
        self._config = overlay.config
        self._table = overlay.table
        self._counters = overlay.counters
        self.ops: dict[int, Op] = {}
        "Lookups in progress, by lookup id (at most ``max_lookups``)."
        self._ids = itertools.count(1)
        self._t_op = self._rpc.new_timer(self._op_live, self._op_due)
        overlay.register_reply(
            Kind.NODES, self._on_nodes, on_timeout=self._on_timeout, on_slow=self._on_slow
        )

    # -- value lookups ------------------------------------------------------------------------
    def lookup(self, number: str, *, now: float, thorough: bool) -> int:
        """``Overlay.lookup``: start resolving ``number``; returns the lookup id."""
        self._counters.lookups_started += 1
        key = record_key(number)
        local = self._overlay.publishing.records_for(key, now)
        op = self.start(
            key, Kind.FIND_VALUE, "value", now, number=number, hold=bool(local), thorough=thorough
        )
        # What this phone holds itself counts as one responder (a network of two must work),
        # and the lookup still asks the others: more keys may hold the number.
        for raw in local:
            self.take_record(op, raw, 0, as_int(self._overlay.id), now)
        if not op.done:
            op.held = False
            self.check(op, now)
        return op.lookup.lookup_id

    def bindings_changed(self, now: float) -> None:
        """Re-check records that were waiting for their number binding."""
        for op in list(self.ops.values()):
            if op.pending_raw:
                waiting, op.pending_raw = op.pending_raw, []
                for raw, depth in waiting:
                    self.take_record(op, raw, depth, None, now)
                self.check(op, now)

    def take_record(self, op: Op, raw: bytes, depth: int, source: int | None, now: float) -> None:
        """A record for ``op``'s number from responder ``source`` (None: checked late)."""
        counters = self._counters
        verdict, record = verify_signed(raw)
        if verdict is not Verdict.VALID or record is None:
            counters.count_rejected(verdict)
            return
        if record.number != op.number:
            counters.records_rejected_binding += 1
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
                counters.records_unchecked += 1
                return
            op.keys_checked.add(key)
            op.unchecked.pop(key, None)
        verdict = check_binding(record, self._overlay.binding, urgent=op.purpose == "value")
        if verdict is Verdict.PENDING:
            op.pending_raw.append((raw, depth))
            return
        if verdict is not Verdict.VALID:
            counters.count_rejected(verdict)
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
                self._rpc.at(now + VALUE_GRACE_S, self._t_op, op)

    # -- any lookup ---------------------------------------------------------------------------
    def start(
        self,
        target: bytes,
        kind: Kind,
        purpose: str,
        now: float,
        *,
        number: str = "",
        hold: bool = False,
        thorough: bool = False,
        on_done: Callable[[Op, float], None] | None = None,
    ) -> Op:
        """Start a lookup of ``target``; ``hold`` keeps it from finishing until ``held`` is
        cleared and ``check`` called. Raises LocalProtocolError beyond ``max_lookups``."""
        if len(self.ops) >= self._config.max_lookups:
            raise LocalProtocolError("too many lookups in progress")
        cfg, table = self._config, self._table
        first = [(e.contact, e.id) for e in table.closest(as_int(target), cfg.k)]
        lookup = Lookup(
            lookup_id=next(self._ids),
            target=target,
            first=first,
            k=cfg.k,
            alpha=cfg.alpha,
            paths=cfg.paths,
            started=now,
        )
        index = table.bucket_index(as_int(target))
        if index >= 0:
            table.touched[index] = now
        op = Op(
            lookup,
            kind,
            purpose,
            now + cfg.lookup_timeout_s,
            number=number,
            held=hold,
            thorough=thorough,
            on_done=on_done,
        )
        self.ops[lookup.lookup_id] = op
        self._rpc.at(op.deadline, self._t_op, op)
        self.drive(op, now)
        return op

    def drive(self, op: Op, now: float) -> None:
        """Send the queries the lookup wants now; finish it if it is done."""
        if op.done:
            return
        if op.first_record_at is None or op.thorough:
            rpc = self._rpc
            for cand in op.lookup.next_queries():
                token = rpc.token_for(cand.contact.addr, now)
                padding = 0
                if token == NO_TOKEN:
                    padding = UNVALIDATED_REQUEST_SIZE - (44 + 8 + 20 + OVERLAY_MAC_SIZE)
                body: Body
                if op.kind is Kind.FIND_VALUE:
                    body = FindValue(key=op.lookup.target, token=token, padding=padding)
                else:
                    body = FindNode(target=op.lookup.target, token=token, padding=padding)
                req = rpc.request(
                    op.kind,
                    body,
                    cand.contact.public_key,
                    cand.contact.addr,
                    now=now,
                    purpose=Purpose.LOOKUP,
                    op=op,
                    cand=cand,
                    soft_s=rpc.rto(cand.contact.public_key),
                )
                if req is None:
                    op.lookup.failed(cand)
        self.check(op, now)

    def check(self, op: Op, now: float) -> None:
        """Finish ``op`` if it has what it needs (or can get nothing more)."""
        if op.done or op.held:
            return
        if op.pending_raw:
            return  # records still waiting for their number binding
        lookup = op.lookup
        confirmed = op.records and (len(op.record_from) >= 2 or lookup.outstanding() == 0)
        if op.kind is Kind.FIND_VALUE and confirmed and not op.thorough:
            self.finish(op, now)
        elif lookup.finished():
            if not op.records and op.unchecked:
                # Nothing verified: give the held-back keys their check, most vouched first.
                held = sorted(op.unchecked.items(), key=lambda kv: -len(op.vouchers.get(kv[0], ())))
                op.unchecked.clear()
                for key, (raw, depth) in held[:LONE_KEYS_CHECKED_PER_LOOKUP]:
                    op.keys_checked.add(key)
                    self.take_record(op, raw, depth, None, now)
                if op.pending_raw or op.records:
                    self.check(op, now)
                    return
            self.finish(op, now)

    def finish(self, op: Op, now: float, *, timed_out: bool = False) -> None:
        if op.done:
            return
        if timed_out and op.first_record_at is None and op.pending_raw and now < op.deadline:
            return
        op.done = True
        self.ops.pop(op.lookup.lookup_id, None)
        if op.purpose != "value":
            if op.on_done is not None:
                op.on_done(op, now)
            return
        lookup = op.lookup
        elapsed = now - lookup.started
        overlay = self._overlay
        if op.records:
            self._counters.lookups_completed += 1
            overlay.publishing.repair(op, now)
            records = tuple(sorted(op.records.values(), key=lambda r: r.public_key))
            overlay.add_event(
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
            self._counters.lookups_failed += 1
            reason = "timeout" if timed_out else "not found"
            if not len(self._table):
                reason = "no overlay contacts"
            overlay.add_event(
                LookupFailed(
                    lookup_id=lookup.lookup_id,
                    number=op.number,
                    reason=reason,
                    elapsed_s=elapsed,
                    queries=lookup.queries,
                    replies=lookup.replies,
                )
            )

    # -- outcomes of queries ------------------------------------------------------------------
    def _on_nodes(self, reply: Reply) -> None:
        req, body = reply.request, reply.body
        op, cand = req.op, req.cand
        if op is None or cand is None or not isinstance(body, Nodes):
            return
        ident, now = reply.ident, reply.now
        if op.done or cand.id != ident:
            return
        if op.kind is Kind.FIND_VALUE:
            if body.records:
                op.responders[ident] = cand.contact
            for raw in body.records:
                self.take_record(op, raw, cand.depth, ident, now)
        if reply.header.flags & FLAG_TRUNCATED and not body.records and op.lookup.retry(cand):
            # Cut short because our address was not validated yet: ask again with the token.
            self.drive(op, now)
            return
        own = self._overlay.public_key
        contacts = []
        for contact in body.contacts:
            if contact.public_key == own:
                continue
            contacts.append((contact, as_int(node_id(contact.public_key))))
        op.lookup.answered(cand, contacts)
        self.drive(op, now)

    def _on_slow(self, req: Request, now: float) -> None:
        if req.op is not None and req.cand is not None:
            req.op.lookup.slow(req.cand)
            self.drive(req.op, now)

    def _on_timeout(self, req: Request, now: float) -> None:
        if req.op is not None and req.cand is not None:
            req.op.lookup.failed(req.cand)
            self.drive(req.op, now)

    # -- timers -------------------------------------------------------------------------------
    @staticmethod
    def _op_live(ref: object) -> bool:
        return isinstance(ref, Op) and not ref.done

    def _op_due(self, ref: object, now: float) -> None:
        if isinstance(ref, Op):
            self.finish(ref, now, timed_out=True)
