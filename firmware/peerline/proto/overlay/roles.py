"""Roles: supernode or client, how peers see this phone, and the paths kept open through NATs
(protocol.md §9.10.3, §9.10.4).

One concern seen from both ends. Peers report the address they see us at (in every PONG and
NODES); the address most of them agree on is the reflexive address, and with ``member=None``
the phone is a supernode exactly when that address is one of its own. A client keeps
``relays`` supernodes, chosen from the routing table, and pings each every
``relay_keepalive_s`` so its NAT mapping towards them stays open; one that answers FULL is
left alone for ``REFUSED_FOR_S``. A supernode keeps the clients that ping it (at most
``max_clients``), and where each pinged from, from validated pings only: that is where a
relay reaches its client (``client_addr``; introductions and relay channels in ``proto.nat``
go there).
"""

from collections import Counter, OrderedDict, deque
from typing import TYPE_CHECKING

from peerline.types import Addr
from peerline.wire.overlay import FLAG_MEMBER, Contact, Kind

from .events import ReflexiveAddressChanged, RelaysChanged, RoleChanged
from .rpc import Purpose, Request

if TYPE_CHECKING:
    from .overlay import Overlay

REFUSED_FOR_S = 600.0
"""A supernode that answered FULL is not asked to be a relay again for this long."""
OBSERVED_REPORTS = 16


class Roles:
    """See module docstring."""

    def __init__(self, overlay: "Overlay") -> None:
        self._overlay = overlay
        self._rpc = overlay.rpc
        self._config = overlay.config
        self.reflexive: Addr | None = None
        "How peers see this phone (its NAT mapping when behind one), once two agree."
        self._observed: deque[tuple[int, Addr]] = deque(maxlen=OBSERVED_REPORTS)
        self._auto_member = True
        self.member = self._auto_member if self._config.member is None else self._config.member
        "Whether this phone serves the DHT (a supernode) rather than only using it."
        self._host_addrs: set[Addr] = set()
        self._relays: dict[bytes, Contact] = {}
        self._refused: dict[bytes, float] = {}
        "Supernodes that answered FULL, and when: not asked again for REFUSED_FOR_S."
        self.clients: OrderedDict[bytes, tuple[float, Addr]] = OrderedDict()
        "As a supernode: client key -> when it last pinged, and from where (validated)."
        self._relay_gen = 0
        self._t_relay = self._rpc.new_timer(self._relay_live, self._relay_due)
        self._rpc.member_flag = FLAG_MEMBER if self.member else 0
        overlay.register_reply(Kind.PONG, on_timeout=self._on_ping_timeout)

    # -- the role -----------------------------------------------------------------------------
    @property
    def relays(self) -> tuple[Contact, ...]:
        return tuple(self._relays.values())

    def set_host_addresses(self, addrs: list[Addr], *, now: float) -> None:
        self._host_addrs = set(addrs)
        self._decide_role(now)

    def _decide_role(self, now: float) -> None:
        if self._config.member is not None:
            return
        # Reachable from outside if peers see us at an address we hold ourselves: no NAT
        # between us. (A NAT with endpoint-independent filtering would also do, but only a
        # dial-back probe can tell; the NAT layer will add one.)
        # Until peers have told us how they see us, act as a supernode: two phones that both
        # waited for proof before serving would never let each other in.
        member = self.reflexive is None or self.reflexive in self._host_addrs
        if member != self._auto_member:
            self._auto_member = self.member = member
            self._rpc.member_flag = FLAG_MEMBER if member else 0
            self._overlay.add_event(RoleChanged(member=member))
            if member:
                self._relays.clear()
                self._relays_changed(now)
            else:
                self.arm_relays(now, soon=True)

    def forget_observed(self) -> None:
        """This phone's own address changed: what peers reported is stale. The reflexive
        address is unknown until two peers report again (the role stays as it is meanwhile:
        a client that briefly looked like a supernode would drop its relays)."""
        self._observed.clear()
        self.reflexive = None

    def note_observed(self, reporter: int, addr: Addr, now: float) -> None:
        """Node ``reporter`` sees us at ``addr`` (a PONG or NODES of ours)."""
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
        lone = len(seen) == 1 and len(self._overlay.table) <= 1
        if best != self.reflexive and (count >= 2 or lone):
            self.reflexive = best
            self._overlay.add_event(ReflexiveAddressChanged(addr=best))
            self._decide_role(now)

    # -- a client's relays --------------------------------------------------------------------
    def arm_relays(self, now: float, *, soon: bool = False) -> None:
        self._relay_gen += 1
        delay = 1.0 if soon else self._config.relay_keepalive_s
        self._rpc.at(now + delay, self._t_relay, self._relay_gen)

    def _relay_live(self, ref: object) -> bool:
        return ref == self._relay_gen

    def _relay_due(self, ref: object, now: float) -> None:
        """As a client: top up the relay set, and ping every relay (the NAT keepalive)."""
        if self.member:
            return
        cfg = self._config
        if self._overlay.joined and len(self._relays) < cfg.relays:
            changed = False
            refused_until = now - REFUSED_FOR_S
            self._refused = {k: t for k, t in self._refused.items() if t > refused_until}
            ranked = sorted(
                self._overlay.table.entries(),
                key=lambda e: (e.failures, e.srtt if e.srtt is not None else 1.0),
            )
            for entry in ranked:
                key = entry.contact.public_key
                if key in self._relays or key in self._refused:
                    continue
                self._relays[key] = entry.contact
                changed = True
                if len(self._relays) >= cfg.relays:
                    break
            if changed:
                self._relays_changed(now)
        for contact in list(self._relays.values()):
            self._rpc.ping(contact.public_key, contact.addr, now, Purpose.RELAY)
        self.arm_relays(now)

    def refused_by(self, key: bytes, now: float) -> None:
        """A reply from ``key`` carried FULL: if it is one of our relays, it is one no more."""
        if key in self._relays:
            self._drop_relay(key, now, refused=True)

    def _on_ping_timeout(self, req: Request, now: float) -> None:
        if req.purpose is Purpose.RELAY and req.public_key is not None:
            self._drop_relay(req.public_key, now, refused=False)

    def _drop_relay(self, key: bytes, now: float, *, refused: bool) -> None:
        if refused:
            self._refused[key] = now
        if self._relays.pop(key, None) is not None:
            self._relays_changed(now)
            self.arm_relays(now, soon=True)

    def _relays_changed(self, now: float) -> None:
        self._overlay.add_event(RelaysChanged(relays=tuple(c.addr for c in self._relays.values())))
        self._overlay.publishing.republish(now)  # the record lists them

    # -- a supernode's clients ----------------------------------------------------------------
    def client_addr(self, key: bytes, now: float) -> Addr | None:
        client = self.clients.get(key)
        if client is None or client[0] < now - 3 * self._config.relay_keepalive_s:
            return None
        return client[1]

    def client_ok(self, key: bytes, addr: Addr, validated: bool, now: float) -> bool:
        """Per-client quota: a supernode keeps at most ``max_clients`` NAT clients.

        Only a ping from a validated address (it carries our token) records where the client
        is: that is where introductions for it will be sent.
        """
        clients = self.clients
        cutoff = now - 3 * self._config.relay_keepalive_s
        while clients and next(iter(clients.values()))[0] < cutoff:
            clients.popitem(last=False)  # gone quiet: its slot is free again
        if key not in clients and len(clients) >= self._config.max_clients:
            self._overlay.counters.clients_refused += 1
            return False
        if validated:
            clients[key] = (now, addr)
            clients.move_to_end(key)
        return True
