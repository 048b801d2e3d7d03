"""NAT boxes for the simulator: how a home router rewrites and filters UDP (RFC 4787).

A node the simulator places behind a ``Nat`` sends from its private address; on the way out the
NAT gives the datagram a public source (its mapping towards that destination), and on the way
in it lets a datagram through to the private address only if a mapping exists and its filter
allows the sender. Two behaviours, after the lab's nftables recipes (docs/nat.md):

- ``symmetric``: address-and-port-dependent mapping and filtering: a new public port for every
  destination, and only that destination may answer on it. No punch opens it: a peer's
  datagrams come from a mapping made towards someone else.
- ``cone``: endpoint-independent mapping, address-and-port-dependent filtering: one public port
  per private endpoint, inbound from anyone it has sent to. Punchable.

A NAT's behaviour may change under running phones (``become``, as when the lab loads a router's
other recipe): flows already made keep their ports (conntrack keeps a flow's binding); new ones
follow the new behaviour. ``flow_timeout_s`` forgets a flow idle for longer, as conntrack
forgets an idle UDP flow (None: never). Everything is deterministic: ports are handed out in
sequence from ``first_port`` in steps of ``port_step``.
"""

import itertools
from dataclasses import dataclass, field
from typing import Literal

from peerline.types import Addr

NatKind = Literal["symmetric", "cone"]


@dataclass(slots=True)
class NatCounters:
    translated_out: int = 0
    translated_in: int = 0
    dropped: int = 0
    "Inbound datagrams with no mapping, or from a source the mapping's filter refuses."


@dataclass(eq=False)
class Nat:
    """One NAT box: its public host and the mappings its private nodes made."""

    public_host: str
    kind: NatKind = "symmetric"
    flow_timeout_s: float | None = None
    "A flow without a packet either way for longer is forgotten: its port (unless it is the"
    " endpoint's cone mapping) and what its filter let in. None: never."
    first_port: int = 30000
    port_step: int = 7
    counters: NatCounters = field(default_factory=NatCounters)
    _out: dict[tuple[Addr, Addr | None], int] = field(default_factory=dict)
    "(private, destination or None for a cone) -> public port."
    _in: dict[int, tuple[Addr, set[Addr]]] = field(default_factory=dict)
    "public port -> (private, destinations sent to from it)."
    _ports: "itertools.count[int] | None" = None
    _flows: dict[tuple[Addr, Addr], int] = field(default_factory=dict)
    "(private, destination) -> public port of every flow sent on (what conntrack holds)."
    _flow_at: dict[tuple[Addr, Addr], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ports = itertools.count(self.first_port, self.port_step)

    def outbound(self, private: Addr, dst: Addr, *, now: float) -> Addr:
        """The public source of a datagram from ``private`` to ``dst`` (making a mapping)."""
        self._expire((private, dst), now)
        self._flow_at[(private, dst)] = now
        port = self._flows.get((private, dst))
        if port is None:
            key = (private, dst if self.kind == "symmetric" else None)
            port = self._out.get(key)
            if port is None:
                assert self._ports is not None
                port = self._out[key] = next(self._ports)
                self._in[port] = (private, set())
            self._flows[(private, dst)] = port
        elif self.kind == "cone":
            # A flow from before a change to cone: its port becomes the endpoint's mapping if
            # it has none yet (the lab's recipe learns mappings from every outbound packet).
            self._out.setdefault((private, None), port)
        self._in[port][1].add(dst)
        self.counters.translated_out += 1
        return (self.public_host, port)

    def inbound(self, public: Addr, src: Addr, *, now: float) -> Addr | None:
        """The private address a datagram from ``src`` to ``public`` goes to, or None: dropped."""
        entry = self._in.get(public[1])
        if entry is not None:
            self._expire((entry[0], src), now)
        if entry is None or src not in entry[1]:
            self.counters.dropped += 1
            return None
        self._flow_at[(entry[0], src)] = now
        self.counters.translated_in += 1
        return entry[0]

    def become(self, kind: NatKind) -> None:
        """The router's rules change: flows already made keep their ports and filters; new
        flows get ``kind``'s mapping. For a change to cone, the first flow an endpoint sends
        on afterwards lends it its port."""
        self.kind = kind

    def mapping(self, private: Addr, dst: Addr) -> Addr | None:
        """The public address ``private`` has towards ``dst``, if it sent there."""
        port = self._flows.get((private, dst))
        if port is None:
            port = self._out.get((private, dst if self.kind == "symmetric" else None))
        return None if port is None else (self.public_host, port)

    def _expire(self, flow: tuple[Addr, Addr], now: float) -> None:
        at = self._flow_at.get(flow)
        if self.flow_timeout_s is None or at is None or now - at <= self.flow_timeout_s:
            return
        del self._flow_at[flow]
        port = self._flows.pop(flow)
        self._in[port][1].discard(flow[1])
        if self._out.get(flow) == port:
            del self._out[flow]  # a symmetric mapping: the next flow there gets a new port
