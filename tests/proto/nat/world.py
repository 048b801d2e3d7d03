"""An in-memory world of whole phones (``Engine``: node, overlay, traversal) behind NATs.

One virtual clock, one event queue, no sockets. Each phone is a full ``Engine`` as the daemon
builds it (``peerline.app.daemon``: a ``Node`` and an ``Overlay`` sharing one identity), with a
seeded ``Rng`` and a synchronous number binding (``sim_number``, as ``peerline.sim`` uses).
What the world adds is what the simulator does not model: NAT.

- ``Nat(kind="symmetric")``: a distinct public port for every (phone, destination) pair, and
  inbound datagrams accepted on a mapping only from the destination it was made for
  (address-and-port-dependent mapping and filtering, RFC 4787). No punch opens it: the peer's
  datagrams come from a mapping made towards someone else.
- ``Nat(kind="cone")``: one public port per phone, inbound from anyone it has sent to
  (endpoint-independent mapping, address-and-port-dependent filtering): punchable.

A NAT's behaviour may change under running phones (``Nat.become``, as when the lab loads a
router's other nftables recipe): flows already made keep their ports (conntrack keeps a flow's
binding); new ones follow the new behaviour.

Mappings never time out here unless asked (the phones keep them alive anyway; timeouts are the
keepalive tests' business): ``Nat(flow_timeout_s=...)`` forgets a flow (one private endpoint
towards one destination) idle for longer, as conntrack forgets an idle UDP flow. Every datagram
is logged with the addresses on the wire where it was sent and where it was delivered, so a
test can ask what a relay saw.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from harness import make_identity
from peerline.proto.engine import Engine, EngineEvent
from peerline.proto.nat.relay import RelayConfig
from peerline.proto.nat.traversal import TraversalConfig
from peerline.proto.node import Node, NodeConfig
from peerline.proto.overlay.overlay import Overlay, OverlayConfig
from peerline.proto.overlay.records import SyncBinding
from peerline.sim.numbers import sim_number
from peerline.sim.rng import SeededRng
from peerline.types import Addr
from peerline.wire.overlay import Contact

PORT = 4720
LATENCY_S = 0.02
"""One way, every hop (phone to relay, relay to phone): 40 ms round trips."""
MAX_SPINS = 1000

E = TypeVar("E")


@dataclass
class Nat:
    """One NAT box: its public host, and the mappings its phones made."""

    public_host: str
    kind: Literal["symmetric", "cone"] = "symmetric"
    _out: dict[tuple[Addr, Addr | None], int] = field(default_factory=dict)
    "(private, destination or None for a cone) -> public port."
    _in: dict[int, tuple[Addr, set[Addr]]] = field(default_factory=dict)
    "public port -> (private, destinations sent to from it)."
    _ports: itertools.count[int] = field(default_factory=lambda: itertools.count(30000, 7))
    _flows: dict[tuple[Addr, Addr], int] = field(default_factory=dict)
    "(private, destination) -> public port of every flow sent on (what conntrack holds)."
    flow_timeout_s: float | None = None
    "A flow without a packet either way for longer is forgotten: its port (unless it is the"
    " endpoint's cone mapping) and what its filter let in. None: never."
    _flow_at: dict[tuple[Addr, Addr], float] = field(default_factory=dict)
    dropped: int = 0

    def _expire(self, flow: tuple[Addr, Addr], now: float) -> None:
        at = self._flow_at.get(flow)
        if self.flow_timeout_s is None or at is None or now - at <= self.flow_timeout_s:
            return
        del self._flow_at[flow]
        port = self._flows.pop(flow)
        self._in[port][1].discard(flow[1])
        if self._out.get(flow) == port:
            del self._out[flow]  # a symmetric mapping: the next flow there gets a new port

    def outbound(self, private: Addr, dst: Addr, *, now: float = 0.0) -> Addr:
        self._expire((private, dst), now)
        self._flow_at[(private, dst)] = now
        port = self._flows.get((private, dst))
        if port is None:
            key = (private, dst if self.kind == "symmetric" else None)
            port = self._out.get(key)
            if port is None:
                port = self._out[key] = next(self._ports)
                self._in[port] = (private, set())
            self._flows[(private, dst)] = port
        elif self.kind == "cone":
            # A flow from before a change to cone: its port becomes the endpoint's mapping if
            # it has none yet (the lab's recipe learns mappings from every outbound packet).
            self._out.setdefault((private, None), port)
        self._in[port][1].add(dst)
        return (self.public_host, port)

    def become(self, kind: Literal["symmetric", "cone"]) -> None:
        """The router's rules change (the lab reloading its table): flows already made keep
        their ports and filters; new flows get ``kind``'s mapping. For a change to cone, the
        first flow an endpoint sends on afterwards lends it its port (the lab's EIM recipe
        learns ``eim_out`` from every outbound packet, existing sessions' too)."""
        self.kind = kind

    def inbound(self, public: Addr, src: Addr, *, now: float = 0.0) -> Addr | None:
        entry = self._in.get(public[1])
        if entry is not None:
            self._expire((entry[0], src), now)
        if entry is None or src not in entry[1]:
            self.dropped += 1
            return None
        self._flow_at[(entry[0], src)] = now
        return entry[0]

    def mapping(self, private: Addr, dst: Addr) -> Addr | None:
        """The public address ``private`` has towards ``dst``, if it sent there."""
        port = self._flows.get((private, dst))
        if port is None:
            port = self._out.get((private, dst if self.kind == "symmetric" else None))
        return None if port is None else (self.public_host, port)


@dataclass(frozen=True, slots=True)
class Datagram:
    sent_at: float
    src: Addr
    "As on the wire at the destination (after the sender's NAT)."
    dst: Addr
    "As addressed (a NAT's public address for a phone behind one)."
    data: bytes


@dataclass
class Phone:
    name: str
    addr: Addr
    "Its own address: private behind a NAT, public otherwise."
    engine: Engine
    nat: Nat | None = None
    events: list[EngineEvent] = field(default_factory=list)
    online: bool = True

    @property
    def key(self) -> bytes:
        return self.engine.node.identity.public_key

    @property
    def node(self) -> Node:
        return self.engine.node

    @property
    def overlay(self) -> Overlay:
        return self.engine.overlay

    @property
    def contact(self) -> Contact:
        return Contact(self.key, self.addr)

    def of_type(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]


@dataclass
class World:
    seed: int = 1
    latency_s: float = LATENCY_S
    now: float = 0.0
    phones: dict[str, Phone] = field(default_factory=dict)
    log: list[Datagram] = field(default_factory=list)
    filtered: list[Datagram] = field(default_factory=list)
    "Datagrams a NAT dropped (no mapping, or a mapping not made towards their source)."
    dropped_offline: int = 0
    _by_addr: dict[Addr, Phone] = field(default_factory=dict)
    _nats: dict[str, Nat] = field(default_factory=dict)
    _queue: list[tuple[float, int, Datagram]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _binding: SyncBinding = field(default_factory=lambda: SyncBinding(sim_number))

    # -- building --------------------------------------------------------------------------
    def add_phone(
        self,
        name: str,
        addr: Addr,
        *,
        member: bool,
        nat: Nat | None = None,
        identity_seed: int,
        overlay_config: OverlayConfig | None = None,
        relay_config: RelayConfig | None = None,
        traversal_config: TraversalConfig | None = None,
        node_config: NodeConfig | None = None,
    ) -> Phone:
        """A whole phone, built as the daemon builds one (minus STUN)."""
        identity = make_identity(identity_seed)
        node = Node(
            identity=identity, rng=SeededRng(f"{self.seed}/{name}/node"), config=node_config
        )
        overlay = Overlay(
            identity=identity,
            rng=SeededRng(f"{self.seed}/{name}/overlay"),
            binding=self._binding,
            number=sim_number(identity.public_key),
            config=overlay_config or OverlayConfig(member=member),
        )
        engine = Engine(node=node, overlay=overlay, traversal=traversal_config, relay=relay_config)
        phone = Phone(name=name, addr=addr, engine=engine, nat=nat)
        if nat is not None:
            self._nats[nat.public_host] = nat
        self.phones[name] = phone
        self._by_addr[addr] = phone
        self.poke(phone)
        return phone

    def public_addr(self, phone: Phone, towards: Phone) -> Addr:
        """Where ``towards`` sees ``phone`` (its mapping towards it, or its own address)."""
        if phone.nat is None:
            return phone.addr
        mapped = phone.nat.mapping(phone.addr, towards.addr)
        assert mapped is not None, f"{phone.name} never sent to {towards.name}"
        return mapped

    # -- the network -----------------------------------------------------------------------
    def _send(self, phone: Phone, data: bytes, dst: Addr) -> None:
        src = phone.addr if phone.nat is None else phone.nat.outbound(phone.addr, dst, now=self.now)
        dgram = Datagram(self.now, src, dst, data)
        self.log.append(dgram)
        heapq.heappush(self._queue, (self.now + self.latency_s, next(self._seq), dgram))

    def _deliver(self, dgram: Datagram) -> None:
        dst = dgram.dst
        nat = self._nats.get(dst[0])
        if nat is not None:
            private = nat.inbound(dst, dgram.src, now=self.now)
            if private is None:
                self.filtered.append(dgram)
                return
            dst = private
        phone = self._by_addr.get(dst)
        if phone is None or not phone.online:
            self.dropped_offline += 1
            return
        phone.engine.receive_datagram(dgram.data, dgram.src, now=self.now)
        self.poke(phone)

    def poke(self, phone: Phone) -> None:
        """After any call into a phone: collect its events and datagrams until it is quiet."""
        if not phone.online:
            return
        engine = phone.engine
        while True:
            while (event := engine.next_event()) is not None:
                phone.events.append(event)
            out = engine.datagrams_to_send(now=self.now)
            if not out:
                return
            for data, dst in out:
                self._send(phone, data, dst)

    # -- time ------------------------------------------------------------------------------
    def _next_timer(self) -> tuple[float, Phone] | None:
        best: tuple[float, Phone] | None = None
        for phone in self.phones.values():
            if not phone.online:
                continue
            t = phone.engine.get_timer()
            if t is not None and (best is None or t < best[0]):
                best = (t, phone)
        return best

    def run_until(self, t: float) -> None:
        spins = 0
        while True:
            timer = self._next_timer()
            arrival = self._queue[0][0] if self._queue else None
            if timer is not None and timer[0] <= t and (arrival is None or timer[0] <= arrival):
                at, phone = timer
                spins = spins + 1 if at <= self.now else 0
                assert spins < MAX_SPINS, f"{phone.name} keeps asking for a timer at {at}"
                self.now = max(self.now, at)
                phone.engine.handle_timer(now=self.now)
                self.poke(phone)
            elif arrival is not None and arrival <= t:
                at, _, dgram = heapq.heappop(self._queue)
                self.now = max(self.now, at)
                self._deliver(dgram)
            else:
                self.now = max(self.now, t)
                return

    def run_for(self, dt: float) -> None:
        self.run_until(self.now + dt)

    def run_until_true(
        self, pred: Callable[[], bool], *, timeout: float, step: float = 0.005
    ) -> bool:
        """Run in small steps until ``pred()``; False if ``timeout`` passes first."""
        deadline = self.now + timeout
        while not pred():
            if self.now >= deadline:
                return False
            self.run_until(min(deadline, self.now + step))
        return True

    def set_online(self, phone: Phone, online: bool) -> None:
        phone.online = online

    def handled_by(self, phone: Phone) -> list[Datagram]:
        """Every datagram ``phone`` sent or was sent (as addressed: what reached its socket)."""
        mine = {phone.addr}
        return [d for d in self.log if d.src in mine or d.dst in mine]
