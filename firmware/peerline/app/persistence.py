"""What the phone keeps on disk, written from the phone core's events.

The core never touches the store; the shell hands every event here, and the ones that change
what must survive a restart (messages, peers, the record's sequence number, the LAN claim, the
peer cache) are written at once, each in its own transaction. A write that fails is logged and
the phone goes on (a full disk must not take the phone down); a message acknowledged to its
sender is stored before anything else happens to it.
"""

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from peerline.errors import StoreError
from peerline.proto.phone import CallState, EndReason, Forwarding, PhoneState, StoredPeer, events
from peerline.proto.phone.addressbook import ContactCard
from peerline.store.db import CallOutcome, Database

log = logging.getLogger("peerline")


def load_state(db: Database) -> PhoneState:
    """What the phone kept from its last run. Sequence numbers start above both what was used
    and the wall clock, so they move forward even if the store was lost."""
    stored_seq = int(db.get_state("record_seq") or 0)
    saved_claim = int(db.get_state("lan_claim_seq") or 0)
    interrupted = db.close_interrupted_calls(now=time.time())
    if interrupted:
        log.info("%d call(s) were cut off by the last stop; recorded as interrupted", interrupted)
    return PhoneState(
        contacts=tuple(
            ContactCard(
                number=c.number,
                name=c.name,
                public_key=c.public_key,
                verified_at=c.verified_at,
                speed_dial=c.speed_dial,
                auto_answer=c.auto_answer,
            )
            for c in db.contacts()
        ),
        forwarding=_forwarding(db.get_state("forwarding")),
        peers=tuple(
            StoredPeer(public_key=r.public_key, number=r.number, addr=(r.host, r.port))
            for r in db.peers()
        ),
        peer_cache=tuple((k, (h, p)) for k, h, p in db.overlay_contacts()),
        record_seq_start=max(stored_seq + 1, time.time_ns() // 1_000_000),
        lan_extension=db.get_state("lan_extension"),
        lan_claim_seq=max(saved_claim, int(time.time())),
    )


def _forwarding(text: str | None) -> Forwarding:
    """The stored forwarding settings; anything unreadable means none (and is said)."""
    if not text:
        return Forwarding()
    try:
        value = json.loads(text)
        return Forwarding(**{k: value[k] for k in Forwarding.__dataclass_fields__ if k in value})
    except (ValueError, TypeError, AttributeError) as exc:
        log.warning("stored call forwarding unreadable, ignored: %s", exc)
        return Forwarding()


_OUTCOMES: dict[EndReason, CallOutcome] = {
    EndReason.MISSED: "missed",
    EndReason.DECLINED_HERE: "rejected",
    EndReason.BUSY_HERE: "busy",
    EndReason.DO_NOT_DISTURB: "busy",
    EndReason.FORWARDED: "forwarded",
    EndReason.ANSWERED_ELSEWHERE: "cancelled",
}
"""How a call that was never answered went, for the history (the rest: see ``_outcome``)."""


def _outcome(event: events.CallStateChanged) -> CallOutcome:
    if event.answered:
        return "answered"
    reason = event.reason
    if reason is not None and reason in _OUTCOMES:
        return _OUTCOMES[reason]
    if not event.outgoing:
        return "missed"  # cancelled by the caller while it rang, or cut off: missed here
    if reason is EndReason.CANCELLED:
        return "cancelled"
    return "forwarded" if event.forwarded_to else "failed"


class Persistence:
    """Writes events to ``db``; ``handle(event)`` for every event the core hands out."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._writers: dict[type[Any], Callable[[Any], None]] = {
            events.MessageReceived: self._received,
            events.MessageSent: self._sent,
            events.MessageStatusChanged: self._status,
            events.NumberLearned: self._number,
            events.PeerSaved: self._peer,
            events.PeerSeen: self._seen,
            events.RecordPublished: self._record,
            events.PeerCacheSaved: self._cache,
            events.LanAnnouncementChanged: self._lan,
            events.CallStateChanged: self._call,
            events.CallerIdentified: self._caller,
            events.CallUpdated: self._call_forwarded,
            events.ContactSaved: self._contact,
            events.ContactRemoved: self._contact_removed,
            events.ForwardingChanged: self._forward,
        }

    def handle(self, event: events.PhoneEvent) -> None:
        writer = self._writers.get(type(event))
        if writer is None:
            return
        try:
            writer(event)
        except (StoreError, ValueError) as exc:
            log.warning("cannot store %s: %s", type(event).__name__, exc)

    def _received(self, event: events.MessageReceived) -> None:
        self.db.add_message(
            message_id=event.message_id,
            direction="in",
            peer_key=event.peer_key,
            peer_number=event.number,
            body=event.text,
            created_at=time.time(),
            status="received",
        )

    def _sent(self, event: events.MessageSent) -> None:
        self.db.add_message(
            message_id=event.message_id,
            direction="out",
            peer_key=event.peer_key,
            peer_number=event.number,
            body=event.text,
            created_at=time.time(),
            status="sent",
        )

    def _status(self, event: events.MessageStatusChanged) -> None:
        self.db.set_message_status(
            event.message_id, "delivered" if event.status == "delivered" else "failed"
        )

    def _number(self, event: events.NumberLearned) -> None:
        self.db.set_message_numbers(event.public_key, event.number)

    def _peer(self, event: events.PeerSaved) -> None:
        host, port = event.addr
        self.db.upsert_peer(event.public_key, event.number, host, port, now=time.time())

    def _seen(self, event: events.PeerSeen) -> None:
        host, port = event.addr
        self.db.touch_peer(event.public_key, host, port, now=time.time())

    def _record(self, event: events.RecordPublished) -> None:
        if event.seq > int(self.db.get_state("record_seq") or 0):
            self.db.set_state("record_seq", str(event.seq))

    def _cache(self, event: events.PeerCacheSaved) -> None:
        contacts = [(key, host, port) for key, (host, port) in event.contacts]
        self.db.save_overlay_contacts(contacts, now=time.time())

    def _lan(self, event: events.LanAnnouncementChanged) -> None:
        self.db.set_state("lan_claim_seq", str(event.claim_seq))
        if event.extension and not event.configured:
            self.db.set_state("lan_extension", event.extension)

    def _call(self, event: events.CallStateChanged) -> None:
        """The call history: a row when a call starts, its key and number when known, when it
        was answered, and how it ended. Each write is durable at once (``kill -9`` keeps it;
        a call cut off so is closed as interrupted at the next start)."""
        db, now = self.db, time.time()
        db.call_started(
            call_id=event.call_id,
            direction="out" if event.outgoing else "in",
            peer_key=event.peer_key or None,
            number=event.number,
            target=event.target[:32],
            name=event.name,
            started_at=now,
        )
        if event.state is CallState.ENDED:
            if event.trust == "verified":  # the SAS was confirmed during the call
                db.call_updated(event.call_id, verified=True)
            db.call_ended(
                event.call_id,
                ended_at=now,
                end_reason=str(event.reason or "ended"),
                outcome=_outcome(event),
                forwarded_to=event.forwarded_to,
            )
            return
        row = db.call(event.call_id)
        if row is None:
            return
        changes: dict[str, object] = {}
        if event.peer_key and row.peer_key is None:
            changes["peer_key"] = event.peer_key
        if event.number and row.number is None:
            changes["number"] = event.number
        if event.state is CallState.ACTIVE and row.answered_at is None:
            changes["answered_at"] = now
        if (event.trust == "verified") != row.verified:
            changes["verified"] = event.trust == "verified"
        if changes:
            db.call_updated(event.call_id, **changes)  # type: ignore[arg-type]

    def _call_forwarded(self, event: events.CallUpdated) -> None:
        """An outgoing call that ended unreachable went on to the offline forwarding target
        in the callee's record: the history says forwarded, not failed."""
        if event.aspect == "forwarded" and event.forwarded_to is not None:
            self.db.call_forwarded(event.call_id, event.forwarded_to)

    def _caller(self, event: events.CallerIdentified) -> None:
        self.db.set_call_numbers(event.peer_key, event.number)

    def _contact(self, event: events.ContactSaved) -> None:
        db = self.db
        if db.contact(event.number) is None:
            db.add_contact(
                event.number,
                event.name,
                public_key=event.public_key,
                speed_dial=event.speed_dial,
                auto_answer=event.auto_answer,
                now=time.time(),
            )
        else:
            db.update_contact(
                event.number,
                name=event.name,
                public_key=event.public_key,
                speed_dial=event.speed_dial,
                auto_answer=event.auto_answer,
            )
        if event.verified_at is not None and event.public_key is not None:
            db.verify_contact(event.number, event.public_key, now=event.verified_at)

    def _contact_removed(self, event: events.ContactRemoved) -> None:
        self.db.remove_contact(event.number)

    def _forward(self, event: events.ForwardingChanged) -> None:
        fields = ("always", "busy", "no_answer", "no_answer_s", "offline")
        self.db.set_state("forwarding", json.dumps({f: getattr(event, f) for f in fields}))
