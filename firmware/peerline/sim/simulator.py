"""Discrete-event driver for sans-I/O nodes: the simulator twin of ``runtime/udp.py``.

It makes exactly the calls the asyncio runtime makes (``receive_datagram``, ``handle_timer``,
then ``datagrams_to_send`` and ``get_timer``), but on a ``VirtualClock`` and a ``Network``. One
heap holds every pending event, ordered by (time, sequence number), so each event costs
O(log n) and ties break in the order events were scheduled. A node is touched only when a
datagram reaches it, when the deadline it asked for arrives, or when a test ``poke``\\ s it.

Everything random comes from one ``random.Random(seed)``; with the trace digest, one seed run
twice must give the same hash, which is how determinism is tested.
"""

import hashlib
import heapq
import itertools
import math
import random
import sys
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from peerline.errors import PeerlineError
from peerline.ports import DatagramEndpoint, Rng
from peerline.sim.clock import ClockError, VirtualClock
from peerline.sim.nat import Nat
from peerline.sim.network import Network, Outcome
from peerline.sim.rng import SeededRng
from peerline.types import Addr

_DELIVER = 0
_TIMER = 1
_CALL = 2

_FIELDS = 6
"""Numbers per trace record: time, what, address id, peer address id, size, payload CRC-32."""

_FLUSH_AT = _FIELDS * 1024
"""Buffered numbers before one hash update: far fewer C calls than one per record."""

_TAIL = 64
"""Records kept for failure reports even when the full trace is off."""

_COMPACT_MIN = 4096
"""Stale heap entries tolerated before the heap is rebuilt without them."""

_Event = tuple[float, int, int, Any, Any, Any]
"""(time, seq, kind, a, b, c): deliver (src, dst, data), timer (slot, gen, -), call (fn, -, -)."""

_Record = tuple[float, ...]
"""One trace record: ``_FIELDS`` numbers, -1 where a field does not apply."""

# What a trace record says happened; the index is the number stored in the record.
_WORDS = (
    "recv",
    "timer",
    "drop-nonode",
    "add",
    "remove",
    "move",
    "poke",
    "call",
    "note",
    "drop-nat",
    *(outcome.value for outcome in Outcome if outcome is not Outcome.DELIVER),
)
_RECV, _FIRE, _NONODE, _ADD, _REMOVE, _MOVE, _POKE, _CALLED, _NOTE, _NATDROP = range(10)
_OUTCOME_CODE: dict[Outcome, int] = {
    o: _WORDS.index(o.value) for o in Outcome if o is not Outcome.DELIVER
}
_BIG_ENDIAN = sys.byteorder == "big"

Observer = Callable[[float, Addr, Addr, bytes, str], object]
"""``observer(time, src, dst, data, what)``: one datagram seen by the simulator, payload and all.

Called when a node sends (``what`` is the network's ``Outcome`` value: ``"deliver"``, ``"dup"``,
``"drop-loss"``, ``"drop-partition"``, ``"drop-mtu"``; ``src`` is the source on the wire, after
the sender's NAT) and when a copy arrives (``"recv"``: handed to the node; ``"drop-nat"``: a NAT
filtered it; ``"drop-nonode"``: nobody at ``dst``). ``dst`` is always the address as sent to
(a NAT's public address for a node behind one), as in trace records.
"""


class SimulationError(PeerlineError, RuntimeError):
    """A node or scenario did something that would hang or corrupt the run."""


class _Slot:
    """Per-node bookkeeping: where it lives and which timer entry in the heap is current."""

    __slots__ = ("addr", "deadline", "gen", "nat", "node", "spin_at", "spins")

    def __init__(self, addr: Addr, node: DatagramEndpoint, nat: Nat | None = None) -> None:
        self.addr = addr
        self.node = node
        self.nat = nat
        "The NAT the node sits behind (its ``addr`` is private), or None."
        self.gen = 0
        "Bumped whenever the pending timer entry is superseded; older entries are stale."
        self.deadline: float | None = None
        "The deadline of the live timer entry in the heap, or None if there is none."
        self.spin_at = -math.inf
        self.spins = 0


def _fmt(addr: Addr) -> str:
    return f"{addr[0]}:{addr[1]}"


class Simulator:
    """Runs many sans-I/O nodes on one virtual clock and one virtual network.

    Example::

        sim = Simulator(seed=1, network=Network(LinkProfile(latency_s=0.05, loss=0.01)))
        sim.add_node(("10.0.0.1", 4000), node_a)
        sim.add_node(("10.0.0.2", 4000), node_b)
        node_a.call(...)                 # any API method on the node...
        sim.poke(("10.0.0.1", 4000))     # ...then let the simulator collect its output
        assert sim.run_until_predicate(lambda: node_b.ringing, timeout=5.0), sim.trace_tail()

    Parameters:
        seed: seeds the simulator's ``random.Random`` (network decisions, ``node_rng``).
        network: the virtual network; a default ``Network()`` if omitted.
        trace: keep every trace record so ``trace`` can list them (memory: 48 bytes a record).
        digest: hash every trace record into ``trace_digest()``; ``trace=False, digest=False``
            turns tracing off entirely, for benchmarks.
        max_timer_spins: how many times one node may fire its timer at the same instant before
            the run stops with ``SimulationError`` (a node whose ``get_timer`` stays <= now).
        observer: called for every datagram sent and every copy that arrives, with its payload
            (see ``Observer``), so a test can check what a node sent or saw; also settable as
            the ``observer`` attribute. Off (None), it costs one check per arriving datagram;
            on or off, it never changes the run or its digest.

    Trace records are numbers (time, what, address ids, size, CRC-32 of the payload) hashed in
    batches, so tracing costs well under a microsecond an event; readable lines are built only
    when ``trace`` or ``trace_tail`` is asked for.
    """

    def __init__(
        self,
        seed: int,
        network: Network | None = None,
        *,
        trace: bool = False,
        digest: bool = True,
        max_timer_spins: int = 1000,
        observer: Observer | None = None,
    ) -> None:
        self.seed = seed
        self.network = network if network is not None else Network()
        self.random = random.Random(seed)  # noqa: S311 - simulation only
        "The simulator's randomness; scenarios may draw from it too and stay deterministic."
        self.clock = VirtualClock()
        self.events = 0
        "Live events processed so far (deliveries, drops at arrival, timers, calls)."
        self._heap: list[_Event] = []
        self._seq = itertools.count()
        self._slots: dict[Addr, _Slot] = {}
        self._stale = 0
        self._max_spins = max_timer_spins
        tracing = trace or digest
        self._buf: list[float] | None = [] if tracing else None
        "Trace numbers not yet hashed; None means tracing is off (the one hot-path check)."
        self._hash = hashlib.blake2b(digest_size=16) if tracing else None
        self._kept: array[float] | None = array("d") if trace else None
        self._tail: deque[_Record] = deque(maxlen=_TAIL)
        self._ids: dict[Addr, int] = {}
        self._labels: dict[int, str] = {}
        self._nats: dict[str, Nat] = {}
        self.observer = observer
        "Sees every datagram with its payload (``Observer``), or None."

    # ----------------------------------------------------------------------------- nodes

    def add_nat(self, nat: Nat) -> Nat:
        """Put a NAT box on the network at ``nat.public_host``; nodes go behind it with
        ``add_node(..., nat=nat)``. Datagrams to its public host are translated or dropped
        (``dropped_nat``), as ``peerline.sim.nat`` describes."""
        if nat.public_host in self._nats:
            raise ValueError(f"a NAT already has the public host {nat.public_host}")
        self._nats[nat.public_host] = nat
        return nat

    def add_node(self, addr: Addr, node: DatagramEndpoint, *, nat: Nat | None = None) -> None:
        """Attach ``node`` at ``addr`` (one node per address); behind ``nat`` (added with
        ``add_nat``), ``addr`` is its private address and what it sends leaves translated.

        Then: the simulator immediately drains the node's output and reads its timer, so a node
        that starts by sending (bootstrap, keepalive) needs no ``poke``.
        """
        if addr in self._slots:
            raise ValueError(f"address {_fmt(addr)} already has a node")
        if nat is not None and self._nats.get(nat.public_host) is not nat:
            raise ValueError("add the NAT with add_nat first")
        slot = _Slot(addr, node, nat)
        self._slots[addr] = slot
        self._note(_ADD, self._id(addr))
        self._service(slot, self.clock.now)

    def remove_node(self, addr: Addr) -> DatagramEndpoint:
        """Detach the node at ``addr`` (churn) and return it; its timers never fire again.

        Datagrams still in flight to ``addr`` arrive to nobody and count as ``dropped_no_node``.
        The returned node can be added again later, at the same or another address.
        """
        slot = self._slots.pop(addr)
        if slot.deadline is not None:
            self._stale += 1
        slot.gen += 1
        slot.deadline = None
        self._note(_REMOVE, self._id(addr))
        return slot.node

    def move_node(self, old: Addr, new: Addr) -> None:
        """Give the node at ``old`` the address ``new`` (DHCP renewal, NAT rebinding, roaming).

        Its timers carry over; datagrams it sends from now on come from ``new``; datagrams in
        flight to ``old`` are dropped on arrival. The node itself is not told, as in real life.
        """
        if new in self._slots:
            raise ValueError(f"address {_fmt(new)} already has a node")
        slot = self._slots.pop(old)
        slot.addr = new
        self._slots[new] = slot
        self._note(_MOVE, self._id(old), self._id(new))

    def node(self, addr: Addr) -> DatagramEndpoint:
        """The node at ``addr``; ``KeyError`` if there is none."""
        return self._slots[addr].node

    def __contains__(self, addr: object) -> bool:
        return addr in self._slots

    def __len__(self) -> int:
        return len(self._slots)

    def poke(self, addr: Addr) -> None:
        """Say "I just called an API method on this node": drain its output, re-read its timer.

        Call this after every direct call into a node (dial, send a message, hang up); without
        it the simulator cannot know the node has something to send or a new deadline.
        """
        slot = self._slots[addr]
        self._note(_POKE, self._id(addr))
        self._service(slot, self.clock.now)

    def node_rng(self, name: str) -> Rng:
        """A deterministic ``Rng`` for one node, derived from the seed and ``name``.

        Independent of the network's draws, so adding a node does not perturb the others.
        """
        return SeededRng(f"peerline-sim/{self.seed}/{name}")

    def call_at(self, t: float, fn: Callable[[], object]) -> None:
        """Run ``fn()`` at virtual time ``t`` >= now: scripted churn, partitions, API calls.

        ``fn`` runs between events; if it calls into a node it must ``poke`` that node.
        """
        if not t >= self.clock.now or not math.isfinite(t):
            raise ClockError(f"cannot schedule a call at {t!r}, now is {self.clock.now!r}")
        heapq.heappush(self._heap, (t, next(self._seq), _CALL, fn, None, None))

    # ------------------------------------------------------------------------------- time

    @property
    def now(self) -> float:
        """Current virtual time in seconds."""
        return self.clock.now

    @property
    def pending(self) -> int:
        """Events still queued, stale timer entries excluded."""
        return len(self._heap) - self._stale

    def step(self) -> bool:
        """Process the next live event; False if there is none left."""
        heap = self._heap
        while heap:
            if self._process(heapq.heappop(heap)):
                return True
        return False

    def run_until(self, t: float) -> None:
        """Process every event due at or before ``t``, then leave the clock at ``t``."""
        if not self.clock.now <= t < math.inf:
            raise ClockError(f"cannot run until {t!r}, now is {self.clock.now!r}")
        heap = self._heap
        process = self._process
        pop = heapq.heappop
        while heap and heap[0][0] <= t:
            process(pop(heap))
        self.clock.advance_to(t)

    def run_for(self, dt: float) -> None:
        """``run_until(now + dt)``."""
        self.run_until(self.clock.now + dt)

    def run_until_predicate(self, pred: Callable[[], bool], timeout: float) -> bool:
        """Run until ``pred()`` is true (checked first and after each live event) or ``timeout``.

        Returns True with the clock at the event that made ``pred`` true, or False with the clock
        at ``now + timeout``. With ``timeout=math.inf`` it gives up (False, clock at the last
        event) only when no event is left.
        """
        if not timeout >= 0:
            raise ClockError(f"timeout must be >= 0, not {timeout!r}")
        deadline = self.clock.now + timeout
        if pred():
            return True
        heap = self._heap
        while heap and heap[0][0] <= deadline:
            if self._process(heapq.heappop(heap)) and pred():
                return True
        if deadline < math.inf:
            self.clock.advance_to(deadline)
        return False

    # ------------------------------------------------------------------------------ trace

    @property
    def trace(self) -> list[str]:
        """Every trace line so far, oldest first; requires ``Simulator(..., trace=True)``."""
        if self._kept is None:
            raise SimulationError("the full trace is off: create the Simulator with trace=True")
        self._flush()
        kept = self._kept
        return [self._line(kept[i : i + _FIELDS]) for i in range(0, len(kept), _FIELDS)]

    def trace_tail(self, n: int = 20) -> list[str]:
        """The seed, then the last ``n`` (at most 64) trace lines: print this on failure."""
        self._flush()
        records = list(self._tail)[-n:] if n > 0 else []
        return [f"seed={self.seed} now={self.clock.now!r}", *map(self._line, records)]

    def trace_digest(self) -> str:
        """Hex BLAKE2b over every trace record so far: equal for equal runs of one seed.

        Every record hashes to a fixed 48 bytes, so when it is read (or how often) does not
        change the final digest.
        """
        if self._hash is None:
            raise SimulationError("tracing is off: create the Simulator with digest=True")
        self._flush()
        return self._hash.copy().hexdigest()

    def record(self, note: str) -> None:
        """Add a scenario's own note (e.g. "partition a|b") to the trace and digest."""
        if self._buf is not None:
            self._note(_NOTE, self._label_id(note))

    # --------------------------------------------------------------------------- internals

    def _label_id(self, label: str) -> int:
        ident = zlib.crc32(label.encode())
        self._labels[ident] = label
        return ident

    def _id(self, addr: Addr) -> int:
        """A stable number for an address in trace records (CRC-32 of ``host:port``)."""
        ident = self._ids.get(addr)
        if ident is None:
            ident = self._ids[addr] = self._label_id(_fmt(addr))
        return ident

    def _line(self, record: Sequence[float]) -> str:
        """One trace record as a short line, e.g. ``0.25 recv 10.0.0.1:4000>10.0.0.2:4000 12``."""
        t, what, a, b, size, crc = record
        parts = [repr(t), _WORDS[int(what)]]
        if a >= 0:
            label = self._labels.get(int(a), f"#{int(a)}")
            parts.append(label if b < 0 else f"{label}>{self._labels.get(int(b), f'#{int(b)}')}")
        if size >= 0:
            parts.append(str(int(size)))
        if crc >= 0:
            parts.append(f"{int(crc):08x}")
        return " ".join(parts)

    def _note(self, what: int, a: int = -1, b: int = -1, size: int = -1) -> None:
        """Record an entry at the current time (cold paths; hot paths append inline)."""
        buf = self._buf
        if buf is not None:
            buf.extend((self.clock.now, what, a, b, size, -1))
            if len(buf) >= _FLUSH_AT:
                self._flush()

    def _flush(self) -> None:
        buf = self._buf
        if not buf or self._hash is None:
            return
        numbers = array("d", buf)
        if _BIG_ENDIAN:
            numbers.byteswap()  # the digest is the same on every machine
        self._hash.update(numbers)
        if self._kept is not None:
            self._kept.extend(numbers if not _BIG_ENDIAN else array("d", buf))
        start = max(0, len(buf) - _FIELDS * _TAIL)
        self._tail.extend(tuple(buf[i : i + _FIELDS]) for i in range(start, len(buf), _FIELDS))
        buf.clear()

    def _process(self, event: _Event) -> bool:
        """Run one popped event; False if it was a stale timer entry (nothing happened)."""
        t, _seq, kind, a, b, c = event
        if kind == _DELIVER:
            self.clock.advance_to(t)
            self.events += 1
            slot = self._slots.get(b)
            buf = self._buf
            if slot is None and self._nats:
                nat = self._nats.get(b[0])
                if nat is not None:
                    slot = self._through_nat(nat, t, a, b, c)
                    if slot is None:
                        return True
            if slot is None:
                self.network.stats.dropped_no_node += 1
                if buf is not None:
                    buf.extend((t, _NONODE, self._id(a), self._id(b), len(c), -1))
                if self.observer is not None:
                    self.observer(t, a, b, c, _WORDS[_NONODE])
                return True
            stats = self.network.stats
            stats.delivered += 1
            stats.bytes_delivered += len(c)
            if buf is not None:
                ids = self._ids  # both present: src was a node's address, dst is one
                buf.extend((t, _RECV, ids[a], ids[b], len(c), zlib.crc32(c)))
                if len(buf) >= _FLUSH_AT:
                    self._flush()
            if self.observer is not None:
                self.observer(t, a, b, c, "recv")
            try:
                slot.node.receive_datagram(c, a, now=t)
                self._service(slot, t)
            except Exception as exc:
                self._annotate(exc, f"in receive_datagram of {_fmt(slot.addr)} from {_fmt(a)}")
                raise
            return True
        if kind == _TIMER:
            slot = a
            if b != slot.gen:
                self._stale -= 1
                return False
            slot.deadline = None  # this entry is consumed
            self.clock.advance_to(t)
            self.events += 1
            try:
                self._fire(slot, t)
            except Exception as exc:
                self._annotate(exc, f"in handle_timer of {_fmt(slot.addr)}")
                raise
            return True
        self.clock.advance_to(t)
        self.events += 1
        if self._buf is not None:
            self._note(_CALLED, self._label_id(getattr(a, "__qualname__", type(a).__name__)))
        try:
            a()
        except Exception as exc:
            self._annotate(exc, "in a call_at callback")
            raise
        return True

    def _fire(self, slot: _Slot, t: float) -> None:
        """Call ``handle_timer`` if the node still wants it; never before its deadline."""
        node = slot.node
        wanted = node.get_timer()
        if wanted is None or wanted > t:
            # The node changed its deadline without a poke: follow it, never fire early.
            self._arm(slot, t)
            return
        if t == slot.spin_at:
            slot.spins += 1
            if slot.spins > self._max_spins:
                raise SimulationError(
                    f"node {_fmt(slot.addr)} fired its timer {slot.spins} times at t={t!r}: "
                    "get_timer() keeps returning a deadline <= now after handle_timer"
                )
        else:
            slot.spin_at = t
            slot.spins = 0
        buf = self._buf
        if buf is not None:
            buf.extend((t, _FIRE, self._ids[slot.addr], -1, -1, -1))
            if len(buf) >= _FLUSH_AT:
                self._flush()
        node.handle_timer(now=t)
        self._service(slot, t)

    def _service(self, slot: _Slot, now: float) -> None:
        """After any call into a node: send what it queued, then re-arm its one timer."""
        out = slot.node.datagrams_to_send(now=now)
        if out:
            src = slot.addr
            nat = slot.nat
            transmit = self.network.transmit if self.observer is None else self._transmit_observed
            rng = self.random
            heap = self._heap
            seq = self._seq
            buf = self._buf
            deliver = Outcome.DELIVER
            for data, dst in out:
                if nat is not None:
                    src = nat.outbound(slot.addr, dst, now=now)
                    self._id(src)
                outcome, arrivals = transmit(src, dst, data, now, rng)
                if outcome is not deliver and buf is not None:
                    code = _OUTCOME_CODE[outcome]
                    buf.extend((now, code, self._id(src), self._id(dst), len(data), -1))
                for at in arrivals:
                    heapq.heappush(heap, (at, next(seq), _DELIVER, src, dst, data))
        if slot.node.get_timer() != slot.deadline:  # the common case costs no call
            self._arm(slot, now)

    def _transmit_observed(
        self, src: Addr, dst: Addr, data: bytes, now: float, rng: random.Random
    ) -> tuple[Outcome, tuple[float, ...]]:
        """``Network.transmit``, then the observer hears what was sent and what became of it."""
        outcome, arrivals = self.network.transmit(src, dst, data, now, rng)
        if self.observer is not None:
            self.observer(now, src, dst, data, outcome.value)
        return outcome, arrivals

    def _through_nat(
        self, nat: Nat, t: float, src: Addr, public: Addr, data: bytes
    ) -> "_Slot | None":
        """A datagram for ``nat``'s public address: the slot of the private node it is let
        through to, or None (dropped and traced: no mapping, filtered, or nobody there)."""
        private = nat.inbound(public, src, now=t)
        slot = self._slots.get(private) if private is not None else None
        if slot is None or slot.nat is not nat:
            self.network.stats.dropped_nat += 1
            if self._buf is not None:
                self._buf.extend((t, _NATDROP, self._id(src), self._id(public), len(data), -1))
            if self.observer is not None:
                self.observer(t, src, public, data, _WORDS[_NATDROP])
            return None
        self._id(public)  # traced as received at the public address it was sent to
        return slot

    def _arm(self, slot: _Slot, now: float) -> None:
        """Schedule the node's wake-up from ``get_timer()``; an unchanged deadline costs nothing."""
        deadline = slot.node.get_timer()
        if deadline == slot.deadline:
            return
        if deadline is not None and not deadline < math.inf:
            if deadline != math.inf:
                raise SimulationError(f"node {_fmt(slot.addr)} returned timer {deadline!r}")
            deadline = None  # "never", spelled as infinity
            if slot.deadline is None:
                return
        if slot.deadline is not None:
            self._stale += 1
        slot.gen += 1
        slot.deadline = deadline
        if deadline is not None:
            at = deadline if deadline > now else now
            heapq.heappush(self._heap, (at, next(self._seq), _TIMER, slot, slot.gen, None))
        if self._stale > _COMPACT_MIN and self._stale * 2 > len(self._heap):
            self._compact()

    def _compact(self) -> None:
        """Drop stale timer entries in O(n); (time, seq) order, hence the run, is unchanged."""
        heap = self._heap  # mutate in place: run loops hold a reference to this list
        heap[:] = [e for e in heap if e[2] != _TIMER or e[4] == e[3].gen]
        heapq.heapify(heap)
        self._stale = 0

    def _annotate(self, exc: Exception, where: str) -> None:
        """Attach the seed and the last trace lines to an exception escaping a node."""
        exc.add_note(f"peerline.sim: {where}; replay with seed={self.seed}")
        for line in self.trace_tail(10):
            exc.add_note(f"  {line}")
