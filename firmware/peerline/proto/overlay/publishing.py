"""Putting records where lookups will find them: this phone's own record, and records held for
others (protocol.md §9.13).

Its own record: signed with the next sequence number, stored at the k nodes nearest its key
(found by a FIND_NODE lookup), STOREs retried while a storer is busy or wants a fresh token,
republished every ``republish_s`` (soon after joining, when the table was still thin), and
re-signed past the sequence number two storers say they hold (lost state). Records held for
others: handed to a newcomer that is nearer their key than we are (replication), and, after a
lookup saw two versions, the newer one stored where the older was returned (repair).
"""

from typing import TYPE_CHECKING

from peerline.errors import LocalProtocolError
from peerline.types import Addr
from peerline.wire.overlay import (
    MAX_RECORD_SIZE,
    MAX_RECORDS_PER_REPLY,
    Contact,
    Kind,
    Store,
    StoreAck,
    StoreStatus,
)
from peerline.wire.record import CandidateKind, Presence, Record

from .events import RecordPublished
from .ids import as_int, record_key
from .lookups import Op
from .records import sign_record
from .rpc import Purpose, Reply, Request

if TYPE_CHECKING:
    from .overlay import Overlay

STORE_RETRY_S = 1.0
STORE_ATTEMPTS = 5
MAX_SEQ = 2**63
"""Sequence numbers a storer may claim to hold for us; anything above is ignored as hostile."""
SETTLE_REPUBLISH_S = 90.0
"""The first republish after joining comes this soon (then every ``republish_s``)."""


class Publishing:
    """See module docstring."""

    def __init__(self, overlay: "Overlay", *, seq_start: int) -> None:
        self._overlay = overlay
        self._rpc = overlay.rpc
        self._config = overlay.config
        self._counters = overlay.counters
        self.record: Record | None = None
        "This phone's record, as last signed."
        self.record_raw = b""
        self.record_seq = seq_start - 1
        self.seq_floor = 0
        "Sequence number storers said they hold for us (see STALE in StoreAck)."
        self.publishes_since_join = 0
        self.publish_due: float | None = None
        "When the record is to be stored again (None: not due, or being stored)."
        self.publishing: Op | None = None
        "The publish in progress."
        self._t_retry = self._rpc.new_timer(self._rpc.is_pending, self._resend_store)
        overlay.register_reply(Kind.STORE_ACK, self._on_store_ack, on_timeout=self._on_timeout)

    # -- own record ---------------------------------------------------------------------------
    def publish(
        self,
        *,
        addresses: tuple[tuple[CandidateKind, Addr], ...],
        relays: tuple[Contact, ...] | None,
        presence: Presence,
        forward_to: str | None,
        now: float,
    ) -> int:
        """``Overlay.publish``: sign the next record and store it when joined."""
        overlay = self._overlay
        self.record_seq += 1
        record = sign_record(
            overlay.identity,
            Record(
                number=overlay.number,
                public_key=overlay.public_key,
                seq=self.record_seq,
                ttl_s=self._config.record_ttl_s,
                presence=presence,
                addresses=addresses,
                relays=overlay.relays if relays is None else relays,
                forward_to=forward_to,
            ),
        )
        raw = record.encode()
        if len(raw) > MAX_RECORD_SIZE:
            raise LocalProtocolError("record too large: fewer addresses or relays")
        self.record, self.record_raw = record, raw
        self.publish_due = now
        overlay.arm_maintenance(now, soon=True)
        if overlay.joined:
            self.start(now)
        return self.record_seq

    def republish(self, now: float) -> None:
        """Sign the record again as it is (relays as they are now) and store it."""
        record = self.record
        if record is None:
            return
        self.publish(
            addresses=record.addresses,
            relays=None,
            presence=record.presence,
            forward_to=record.forward_to,
            now=now,
        )

    def start(self, now: float) -> None:
        """Store the current record, unless a publish is already out."""
        if self.record is None or self.publishing is not None:
            return
        overlay = self._overlay
        try:
            # Held until its bookkeeping is set: with no one to ask, the lookup finishes at once
            # and must then see which record it published.
            op = overlay.lookups.start(
                record_key(overlay.number),
                Kind.FIND_NODE,
                "publish",
                now,
                hold=True,
                on_done=self._store_at,
            )
        except LocalProtocolError:
            return
        op.seq = self.record_seq
        self.publishing = op
        self.publish_due = None
        op.held = False
        overlay.lookups.check(op, now)

    def joined(self) -> None:
        """The node (re)joined: the next publish counts as the first after joining."""
        self.publishes_since_join = 0

    def records_for(self, key: bytes, now: float) -> list[bytes]:
        """Records held for ``key``: stored for others, and our own if it is ours."""
        overlay = self._overlay
        held = overlay.store.get(key, now)
        if self.record is not None and key == record_key(overlay.number):
            held = [r for r in held if r != self.record_raw] + [self.record_raw]
        return held[:MAX_RECORDS_PER_REPLY]

    def _store_at(self, op: Op, now: float) -> None:
        """The publish lookup ended: STORE at the k nearest nodes that answered it."""
        rpc = self._rpc
        for cand in op.lookup.closest_answered(self._config.k):
            token = rpc.token_for(cand.contact.addr, now)
            req = rpc.request(
                Kind.STORE,
                Store(token=token, record=self.record_raw),
                cand.contact.public_key,
                cand.contact.addr,
                now=now,
                purpose=Purpose.STORE,
                op=op,
            )
            if req is not None:
                req.record = self.record_raw
                op.stores_out += 1
        if not op.stores_out:
            self._published(op, now)

    def _on_store_ack(self, reply: Reply) -> None:
        req, ack, now = reply.request, reply.body, reply.now
        if not isinstance(ack, StoreAck):
            return
        op = req.op
        if (
            ack.status in (StoreStatus.BUSY, StoreStatus.BAD_TOKEN)
            and req.attempts < STORE_ATTEMPTS
        ):
            retry = Request(
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
            self._rpc.pending[req.txid] = retry
            delay = STORE_RETRY_S if ack.status is StoreStatus.BUSY else 0.0
            self._rpc.at(now + delay, self._t_retry, retry)
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

    def _resend_store(self, ref: object, now: float) -> None:
        if not isinstance(ref, Request):
            return
        rpc = self._rpc
        del rpc.pending[ref.txid]
        token = rpc.token_for(ref.addr, now)
        new = rpc.request(
            Kind.STORE,
            Store(token=token, record=ref.record),
            ref.public_key,
            ref.addr,
            now=now,
            purpose=Purpose.STORE,
            op=ref.op,
        )
        if new is None:
            if ref.op is not None:
                self._store_settled(ref.op, now)
            return
        new.record = ref.record
        new.attempts = ref.attempts

    def _on_timeout(self, req: Request, now: float) -> None:
        if req.op is not None:
            self._store_settled(req.op, now)

    def _store_settled(self, op: Op, now: float) -> None:
        op.stores_out -= 1
        if op.stores_out <= 0:
            self._published(op, now)

    def _published(self, op: Op, now: float) -> None:
        if self.publishing is op:
            self.publishing = None
        if len(op.stale_reports) >= 2:
            # Jump past what storers hold, but only as far as the second-lowest report: a
            # single lying storer cannot push the counter anywhere.
            self.seq_floor = max(self.seq_floor, sorted(op.stale_reports.values())[1])
        self._counters.publishes += 1
        self.publishes_since_join += 1
        self._overlay.add_event(RecordPublished(seq=op.seq, storers=op.stored))
        if self.record is not None:
            if self.seq_floor >= self.record_seq:
                self.record_seq = self.seq_floor
                self.republish(now)  # re-signed with a sequence number past the one held
            elif self.record_seq > op.seq:
                self.start(now)  # a newer record was signed meanwhile
            elif self.publish_due is None:
                period = self._config.republish_s
                if self.publishes_since_join == 1:
                    # Right after joining the routing table is thin, and the nodes nearest the
                    # number may not all have been found (or may have been liars): store again
                    # soon, from a table that has since filled.
                    period = min(period, SETTLE_REPUBLISH_S)
                self.publish_due = now + period * (0.9 + 0.1 * self._overlay.rng.random())

    # -- records held for others --------------------------------------------------------------
    def repair(self, op: Op, now: float) -> None:
        """Storers that answered a lookup with an older record than another storer's get the
        newer one (this phone's store too), so later quick lookups stop finding a phone where it
        was: they end at the first two storers that agree. One STORE per stale responder that
        this lookup queried (it holds a token from it); the storer checks the record as any."""
        overlay, rpc = self._overlay, self._rpc
        own = as_int(overlay.id)
        for ident, offered in op.offered.items():
            for public_key, seq in offered.items():
                newest = op.records.get(public_key)
                raw = op.raws.get(public_key)
                if newest is None or raw is None or seq >= newest.seq:
                    continue
                if ident == own:
                    if overlay.store.refresh(record_key(newest.number), newest, raw, now):
                        self._counters.records_repaired += 1
                    continue
                contact = op.responders.get(ident)
                if contact is None:
                    continue
                req = rpc.request(
                    Kind.STORE,
                    Store(token=rpc.token_for(contact.addr, now), record=raw),
                    contact.public_key,
                    contact.addr,
                    now=now,
                    purpose=Purpose.STORE,
                )
                if req is not None:
                    req.record = raw
                    self._counters.records_repaired += 1

    def replicate_to(self, contact: Contact, ident: int, now: float) -> None:
        """A node new to our table gets the records it is now nearer to than we are (Kademlia
        §2.5), so records published before it joined are found where lookups now end."""
        overlay, rpc = self._overlay, self._rpc
        own = as_int(overlay.id)
        k = self._config.k
        for key, raw in overlay.store.items(now):
            target = as_int(key)
            if ident ^ target >= own ^ target:
                continue
            nearer = overlay.table.closest(target, k)
            if len(nearer) >= k and (nearer[-1].id ^ target) < (own ^ target):
                continue  # we are not among the k nearest ourselves: not ours to hand on
            token = rpc.token_for(contact.addr, now)
            req = rpc.request(
                Kind.STORE,
                Store(token=token, record=raw),
                contact.public_key,
                contact.addr,
                now=now,
                purpose=Purpose.STORE,
            )
            if req is not None:
                req.record = raw
