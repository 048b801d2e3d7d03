"""Shared test harness: connect sans-I/O nodes without sockets, with explicit time."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from peerline.proto.events import Event
from peerline.proto.identity import Identity
from peerline.proto.node import Node, NodeConfig
from peerline.sim.rng import SeededRng
from peerline.types import Addr

ADDR_A: Addr = ("192.0.2.1", 4720)
ADDR_B: Addr = ("198.51.100.2", 4720)


@dataclass
class Wire:
    """Two nodes joined by a perfect, instantaneous link; records what crossed it."""

    a: Node
    b: Node
    addr_a: Addr = ADDR_A
    addr_b: Addr = ADDR_B
    sent: list[tuple[str, bytes]] = field(default_factory=list)
    events_a: list[Event] = field(default_factory=list)
    events_b: list[Event] = field(default_factory=list)

    def node_at(self, addr: Addr) -> tuple[Node, Addr, list[Event]]:
        if addr == self.addr_a:
            return self.a, self.addr_b, self.events_a
        return self.b, self.addr_a, self.events_b

    def drain_events(self) -> None:
        for node, sink in ((self.a, self.events_a), (self.b, self.events_b)):
            while (ev := node.next_event()) is not None:
                sink.append(ev)

    def transfer(self, *, now: float, drop: Iterable[int] = ()) -> int:
        """Move every queued datagram across until both sides are quiet; returns how many."""
        dropped = set(drop)
        moved = 0
        for _ in range(50):
            out_a = [(d, dst, self.addr_a) for d, dst in self.a.datagrams_to_send(now=now)]
            out_b = [(d, dst, self.addr_b) for d, dst in self.b.datagrams_to_send(now=now)]
            if not out_a and not out_b:
                break
            for data, dst, src in out_a + out_b:
                self.sent.append(("a" if src == self.addr_a else "b", data))
                index = moved
                moved += 1
                if index in dropped:
                    continue
                target = self.b if dst == self.addr_b else self.a if dst == self.addr_a else None
                if target is not None:
                    target.receive_datagram(data, src, now=now)
        self.drain_events()
        return moved

    def run_timers(self, *, until: float, now: float = 0.0) -> float:
        """Fire timers in order up to ``until`` with transfers in between; returns the time."""
        while True:
            timers = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
            if not timers or min(timers) > until:
                return until
            now = max(now, min(timers))
            for node in (self.a, self.b):
                t = node.get_timer()
                if t is not None and t <= now:
                    node.handle_timer(now=now)
            self.transfer(now=now)


def make_identity(seed: int) -> Identity:
    return Identity.from_seed(bytes([seed]) * 32)


def make_pair(
    config_a: NodeConfig | None = None, config_b: NodeConfig | None = None, *, seed: int = 1
) -> Wire:
    """Nodes a and b that know each other's key and address."""
    a = Node(identity=make_identity(1), rng=SeededRng(seed), config=config_a)
    b = Node(identity=make_identity(2), rng=SeededRng(seed + 1000), config=config_b)
    a.add_peer(b.identity.public_key, ADDR_B)
    b.add_peer(a.identity.public_key, ADDR_A)
    return Wire(a=a, b=b)


def of_type(events: list[Event], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]
