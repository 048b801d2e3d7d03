"""What the phone keeps on disk, written from the phone core's events.

The core never touches the store; the shell hands every event here, and the ones that change
what must survive a restart (messages, peers, the record's sequence number, the LAN claim, the
peer cache) are written at once, each in its own transaction. A write that fails is logged and
the phone goes on (a full disk must not take the phone down); a message acknowledged to its
sender is stored before anything else happens to it.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

from peerline.errors import StoreError
from peerline.proto.phone import PhoneState, StoredPeer, events
from peerline.store.db import Database

log = logging.getLogger("peerline")


def load_state(db: Database) -> PhoneState:
    """What the phone kept from its last run. Sequence numbers start above both what was used
    and the wall clock, so they move forward even if the store was lost."""
    stored_seq = int(db.get_state("record_seq") or 0)
    saved_claim = int(db.get_state("lan_claim_seq") or 0)
    return PhoneState(
        peers=tuple(
            StoredPeer(public_key=r.public_key, number=r.number, addr=(r.host, r.port))
            for r in db.peers()
        ),
        peer_cache=tuple((k, (h, p)) for k, h, p in db.overlay_contacts()),
        record_seq_start=max(stored_seq + 1, time.time_ns() // 1_000_000),
        lan_extension=db.get_state("lan_extension"),
        lan_claim_seq=max(saved_claim, int(time.time())),
    )


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
        }

    def handle(self, event: events.PhoneEvent) -> None:
        writer = self._writers.get(type(event))
        if writer is None:
            return
        try:
            writer(event)
        except StoreError as exc:
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
