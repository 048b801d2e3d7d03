"""Phones as protocol engines (``Engine``: node, overlay, traversal) on ``peerline.sim``.

The NAT traversal tests call the engine's parts directly (``Traversal.reach``,
``Node.send_message``), below the phone core, so the simulator runs ``EngineNode``\\ s: an
``Engine`` as the daemon builds one (minus STUN), plus what a driver does after every input:
pull every ``next_event`` (``Traversal`` acts on them as they pass) and keep them for the test.
NATs are ``peerline.sim.nat``'s, latency is the simulator's ``Network``, and what crossed the
wire is read through the simulator's ``observer``: every datagram as sent (``sent``, source
after the sender's NAT) and every one a NAT filtered (``filtered``), payloads included, so a
test can check what a relay carried.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from peerline.proto.engine import Engine, EngineEvent
from peerline.proto.identity import Identity
from peerline.proto.nat.relay import RelayConfig
from peerline.proto.nat.traversal import TraversalConfig
from peerline.proto.node import Node, NodeConfig
from peerline.proto.overlay.overlay import Overlay, OverlayConfig
from peerline.proto.overlay.records import SyncBinding
from peerline.sim import LinkProfile, Network, Simulator
from peerline.sim.nat import Nat, NatKind
from peerline.sim.numbers import sim_number
from peerline.types import Addr
from peerline.wire.overlay import Contact

LATENCY_S = 0.02
"""One way, every hop (phone to relay, relay to phone): 40 ms round trips."""

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Datagram:
    sent_at: float
    src: Addr
    "As on the wire (after the sender's NAT)."
    dst: Addr
    "As addressed (a NAT's public address for a phone behind one)."
    data: bytes


class EngineNode:
    """One phone's ``Engine`` as a simulator node, keeping the events it hands out."""

    def __init__(self, name: str, addr: Addr, engine: Engine, nat: Nat | None) -> None:
        self.name = name
        self.addr = addr
        "Its own address: private behind a NAT, public otherwise."
        self.engine = engine
        self.nat = nat
        self.events: list[EngineEvent] = []

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

    # -- the simulator's calls -------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        self.engine.receive_datagram(data, addr, now=now)
        self._take_events()

    def handle_timer(self, *, now: float) -> None:
        self.engine.handle_timer(now=now)
        self._take_events()

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        """Everything due, including what traversal queued on seeing the latest events."""
        out: list[tuple[bytes, Addr]] = []
        while True:
            self._take_events()
            batch = self.engine.datagrams_to_send(now=now)
            if not batch:
                return out
            out.extend(batch)

    def get_timer(self) -> float | None:
        return self.engine.get_timer()

    def _take_events(self) -> None:
        while (event := self.engine.next_event()) is not None:
            self.events.append(event)


class EngineWorld:
    """Engines on one seeded ``Simulator`` (fixed ``latency_s`` each way), some behind NATs."""

    def __init__(self, seed: int, *, latency_s: float = LATENCY_S) -> None:
        self.seed = seed
        self.sim = Simulator(
            seed, Network(LinkProfile(latency_s=latency_s)), observer=self._observe
        )
        self.phones: dict[str, EngineNode] = {}
        self.sent: list[Datagram] = []
        "Every datagram a phone sent, in order."
        self.filtered: list[Datagram] = []
        "Datagrams a NAT dropped (no mapping, or a mapping not made towards their source)."
        self._binding = SyncBinding(sim_number)

    def _observe(self, t: float, src: Addr, dst: Addr, data: bytes, what: str) -> None:
        if what == "drop-nat":
            self.filtered.append(Datagram(t, src, dst, data))
        elif what != "recv":
            self.sent.append(Datagram(t, src, dst, data))

    @property
    def now(self) -> float:
        return self.sim.now

    def add_nat(self, public_host: str, kind: NatKind = "symmetric") -> Nat:
        return self.sim.add_nat(Nat(public_host, kind))

    def add_phone(
        self,
        name: str,
        addr: Addr,
        *,
        member: bool,
        nat: Nat | None = None,
        overlay_config: OverlayConfig | None = None,
        relay_config: RelayConfig | None = None,
        traversal_config: TraversalConfig | None = None,
        node_config: NodeConfig | None = None,
    ) -> EngineNode:
        """A phone's engine built as the daemon builds one (minus STUN), its identity and
        randomness derived from the seed and ``name``."""
        identity = Identity.from_seed(
            hashlib.blake2b(f"engine-world/{self.seed}/{name}".encode(), digest_size=32).digest()
        )
        node = Node(identity=identity, rng=self.sim.node_rng(f"{name}/node"), config=node_config)
        overlay = Overlay(
            identity=identity,
            rng=self.sim.node_rng(f"{name}/overlay"),
            binding=self._binding,
            number=sim_number(identity.public_key),
            config=overlay_config or OverlayConfig(member=member),
        )
        engine = Engine(node=node, overlay=overlay, traversal=traversal_config, relay=relay_config)
        phone = EngineNode(name, addr, engine, nat)
        self.phones[name] = phone
        self.sim.add_node(addr, phone, nat=nat)
        return phone

    def poke(self, phone: EngineNode) -> None:
        """After a call into ``phone``'s engine: its events, datagrams and timer are taken."""
        self.sim.poke(phone.addr)

    def kill(self, phone: EngineNode) -> None:
        """``phone`` goes away: it never sends or wakes again, and what is sent to it is lost."""
        self.sim.remove_node(phone.addr)
        self.sim.record(f"{phone.name} dies")

    def public_addr(self, phone: EngineNode, towards: EngineNode) -> Addr:
        """Where ``towards`` sees ``phone`` (its mapping towards it, or its own address)."""
        if phone.nat is None:
            return phone.addr
        mapped = phone.nat.mapping(phone.addr, towards.addr)
        assert mapped is not None, f"{phone.name} never sent to {towards.name}"
        return mapped

    def handled_by(self, phone: EngineNode) -> list[Datagram]:
        """Every datagram ``phone`` sent or was sent (as addressed: what reached its socket)."""
        return [d for d in self.sent if phone.addr in (d.src, d.dst)]

    def run_until(self, pred: Callable[[], bool], *, timeout: float) -> bool:
        """Run until ``pred()`` (the clock at the event that made it true) or ``timeout``."""
        return self.sim.run_until_predicate(pred, timeout)

    def run_for(self, dt: float) -> None:
        self.sim.run_for(dt)

    def failure(self) -> str:
        """The seed and the last trace lines, for an assertion message."""
        return "\n".join(self.sim.trace_tail())
