"""Malicious overlay nodes for simulations: they drop, lie and collude.

A ``MaliciousOverlay`` is a real ``Overlay`` (it answers pings, so it stays in routing tables,
and it authenticates like everyone else: it holds its own key) that abuses every answer:

- it drops a share of queries outright;
- it throws records away: STOREs are acknowledged and discarded, FIND_VALUE never returns the
  real record;
- it forges: it answers FIND_VALUE with a record for the number, signed by its own key (which
  does not derive to the number), or a copy of a real record with the addresses changed;
- it colludes: its contact lists hold only fellow colluders, the nearest to the target it can
  find, to pull lookups into the colluders' part of the network.

The colluders share what they know (their contacts, which number a key is about) through a
``Colluders`` registry: the strongest adversary a bounded simulation can field.

It lies through ``Overlay.serve``, the overlay's one hook for changing what a node answers (it
runs after the rate limit and the MAC check, before any token work), and sends its lies with
``Overlay.answer``.
"""

import bisect

from peerline.ports import Rng
from peerline.proto.identity import Identity
from peerline.proto.overlay.ids import as_int, node_id
from peerline.proto.overlay.overlay import Overlay, OverlayConfig
from peerline.proto.overlay.records import NumberBinding, sign_record
from peerline.types import Addr
from peerline.wire.overlay import (
    Contact,
    FindNode,
    FindValue,
    Kind,
    Nodes,
    OverlayMessage,
    Store,
    StoreAck,
    StoreStatus,
)
from peerline.wire.record import CandidateKind, Record


class Colluders:
    """What every malicious node knows: each other, and which record key belongs to which number."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._contacts: dict[int, Contact] = {}
        self.numbers: dict[bytes, str] = {}
        "record key -> number, for forging records for the number a query is about."

    def join(self, contact: Contact) -> None:
        ident = as_int(node_id(contact.public_key))
        if ident not in self._contacts:
            bisect.insort(self._ids, ident)
        self._contacts[ident] = contact

    def leave(self, contact: Contact) -> None:
        ident = as_int(node_id(contact.public_key))
        if self._contacts.pop(ident, None) is not None:
            self._ids.remove(ident)

    def closest(self, target: int, count: int) -> list[Contact]:
        """The colluders nearest ``target`` (approximately: neighbours in id order, then XOR)."""
        i = bisect.bisect_left(self._ids, target)
        window = self._ids[max(0, i - 4 * count) : i + 4 * count]
        window.sort(key=lambda x: x ^ target)
        return [self._contacts[x] for x in window[:count]]


class MaliciousOverlay(Overlay):
    """See module docstring. ``drop`` is the share of queries left unanswered."""

    def __init__(
        self,
        *,
        colluders: Colluders,
        drop: float = 0.3,
        identity: Identity,
        rng: Rng,
        binding: NumberBinding,
        number: str,
        config: OverlayConfig | None = None,
    ) -> None:
        super().__init__(identity=identity, rng=rng, binding=binding, number=number, config=config)
        self.colluders = colluders
        self.drop = drop
        self.forged_sent = 0

    def serve(self, msg: OverlayMessage, addr: Addr, size: int, now: float) -> None:
        """The ``Overlay.serve`` hook: pings answered honestly, every other request abused."""
        header, body = msg.header, msg.body
        if header.kind is Kind.PING:
            super().serve(msg, addr, size, now)  # stay in everyone's routing table
            return
        if self.rng.random() < self.drop:
            return
        token = self.tokens.issue(addr, now)
        if isinstance(body, Store):
            self.answer(header, StoreAck(status=StoreStatus.STORED, token=token), addr)
            return
        if isinstance(body, FindNode | FindValue):
            target = body.target if isinstance(body, FindNode) else body.key
            contacts = tuple(
                c
                for c in self.colluders.closest(as_int(target), self.config.k + 1)
                if c.public_key != header.sender
            )[: self.config.k]
            records: tuple[bytes, ...] = ()
            if isinstance(body, FindValue):
                records = self._forgeries(body.key)
            reply = Nodes(observed=addr, token=token, contacts=contacts, records=records)
            self.answer(header, reply, addr)

    def _forgeries(self, key: bytes) -> tuple[bytes, ...]:
        number = self.colluders.numbers.get(key)
        if number is None:
            return ()
        # A record for the number under our own key: a valid signature, a wrong binding.
        own = sign_record(
            self.identity,
            Record(
                number=number,
                public_key=self.public_key,
                seq=2**63,
                ttl_s=self.config.record_ttl_s,
                addresses=((CandidateKind.HOST, ("203.0.113.66", 6666)),),
            ),
        )
        forged = [own.encode()]
        # A real record with the address swapped: the signature no longer verifies.
        for raw in self.store.get(key, 0.0)[:1]:
            forged.append(raw[:-70] + bytes([raw[-70] ^ 1]) + raw[-69:])
        self.forged_sent += len(forged)
        return tuple(forged)
