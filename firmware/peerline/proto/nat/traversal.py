"""Getting a session through NATs: punch first, relay if that fails, upgrade when it can
(protocol.md §11.3).

``Traversal`` is the caller's and the callee's strategy, sans-I/O. It drives the session node,
the overlay and the overlay's NAT services (``Introductions``, ``RelayService``) it is given
(it owns none of them) from events and a timer:

- ``reach``: the app looked a number up. Ask the callee's relays to introduce us (both sides
  then send towards each other: simultaneous open), and, when this phone is behind a NAT, open
  a relay channel at the same time so that the fallback costs no extra round trip. If no
  session exists ``punch_wait`` later, the handshake goes through the relay.
- An introduction (we are the callee): send towards the caller, or, with a live session
  already (the caller is trying to upgrade a relayed path), probe the caller's candidates.
- A relayed path keeps trying to go direct: introductions and path probes, backing off. A
  probe whose echo returns moves the session (``Node.probe_path``): nothing is dropped.
- ``PathQuiet`` (a message went unanswered): probe the other paths — another relay of the
  callee, its direct addresses — and move to the first that answers.
"""

import contextlib
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

from peerline.errors import InvalidKey, LocalProtocolError
from peerline.proto.events import (
    Event,
    HandshakeCompleted,
    PathQuiet,
    PathValidated,
    PeerEndpointChanged,
)
from peerline.proto.node import Node
from peerline.proto.overlay.events import (
    IntroductionAccepted,
    IntroductionReceived,
    OverlayEvent,
    RelayChannelFailed,
    RelayChannelOpened,
)
from peerline.proto.overlay.overlay import Overlay
from peerline.types import Addr
from peerline.wire.overlay import Contact

from .introductions import Introductions
from .relay import is_relayed, relay_of, relayed_addr
from .relay_service import RelayService


@dataclass(frozen=True, slots=True, kw_only=True)
class TraversalConfig:
    punch_wait_s: float = 1.0
    "Without a measured RTT to the relay: how long a punch may take before the relay is used."
    punch_wait_min_s: float = 0.3
    punch_wait_max_s: float = 1.0
    punch_wait_rtts: float = 3.0
    "With a measured RTT to the relay: wait this many of them (clamped to the bounds above)."
    " A punch needs about one and a half: the introduction to the callee through the relay,"
    " the callee's answer straight back."
    repeat_after_s: float = 0.1
    "After the relay's DONE: the initiation goes again at once and this much later."
    predicted_ports: int = 8
    "Port prediction: the initiation also goes to this many ports after the peer's address"
    " (a symmetric NAT that allocates ports in sequence maps the peer there; 0: off)."
    upgrade_first_s: float = 1.0
    "A relayed path first tries to go direct this soon (a punch that was merely slow)."
    upgrade_max_s: float = 600.0
    "Then tries again with doubling intervals up to this: longer than NATs keep an idle flow"
    " (RFC 4787: 2 min at least, 5 min recommended), or every probe would go out through the"
    " stale flow the failed punch left, from a port the peer does not know, and keep it alive."
    max_targets: int = 256
    "Peers whose candidates are remembered (least recently used forgotten)."
    max_relay_sources: int = 64


@dataclass(slots=True)
class TraversalCounters:
    punches: int = 0
    "Introductions asked for (one per reach or upgrade attempt)."
    relay_channels_opened: int = 0
    relay_channels_failed: int = 0
    predictions_sent: int = 0
    "Initiations sent to predicted ports (one per port)."
    initiations_repeated: int = 0
    "Initiations sent again when a relay said it introduced us (the callee's NAT is open)."
    relay_fallbacks: int = 0
    "Handshakes sent through a relay because no punch had succeeded in time."
    upgrade_attempts: int = 0
    upgrades: int = 0
    "Relayed sessions that moved to a direct path."
    path_recoveries: int = 0
    "Quiet paths replaced by another that answered."
    relayed_in: int = 0
    relayed_out: int = 0
    relayed_dropped: int = 0
    "Malformed relayed datagrams from our relays, and session packets too big to relay."

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True, eq=False)
class _Target:
    direct: list[Addr]
    "Where the peer may be reached directly: its record's addresses, introduction candidates."
    relays: tuple[Contact, ...]
    "The peer's relays (from its record): where to open channels."
    channels: dict[bytes, Addr] = field(default_factory=dict)
    "Relay key -> the relayed path opened through it."
    asked: set[bytes] = field(default_factory=set)
    "Relays asked for a channel in the current round (not asked again until the next)."
    fallback_at: float | None = None
    repeat_at: float | None = None
    upgrade_at: float | None = None
    upgrade_interval: float = 0.0
    recovering: bool = False
    "A quiet path is being replaced: the first channel that opens is probed."


class Traversal:
    def __init__(
        self,
        *,
        node: Node,
        overlay: Overlay,
        introductions: Introductions,
        relay_service: RelayService,
        config: TraversalConfig | None = None,
    ):
        self.node = node
        self.overlay = overlay
        self.introductions = introductions
        self.relay_service = relay_service
        self.config = config or TraversalConfig()
        self.counters = TraversalCounters()
        self.own_candidates: tuple[Addr, ...] = ()
        "Where callers can reach this phone directly (reflexive first): sent in introductions."
        self._targets: OrderedDict[bytes, _Target] = OrderedDict()
        self._relay_sources: OrderedDict[Addr, None] = OrderedDict()
        "Relays we opened channels through: their relayed datagrams are for us."

    # -- API ----------------------------------------------------------------------------------
    def reach(
        self, key: bytes, *, direct: list[Addr], relays: tuple[Contact, ...], now: float
    ) -> None:
        """The app resolved ``key`` (a record) and added it to the node at ``direct[0]``: punch
        through its relays, and have a relay ready in case the punch fails."""
        target = self._target(key)
        target.direct = _merge(direct, target.direct)
        target.relays = relays
        if self.node.live_path(key, now=now) is not None:
            if target.recovering:  # the path went quiet before we knew the peer's relays
                self._open_next_relay(key, target, now)
            return
        if not relays:
            return
        if self.own_candidates:
            # The handshake starts now, and its initiation rides along with the introduction:
            # the callee answers it straight towards us (no second handshake, no glare).
            with contextlib.suppress(LocalProtocolError):
                self.node.connect(key, now=now)
            initiation = self.node.initiation_in_flight(key)
            self.counters.punches += 1
            self.introductions.introduce(
                key, relays, self.own_candidates, now=now, initiation=initiation
            )
        if not self.overlay.member:  # behind a NAT: a punch may fail; get the relay ready
            target.asked.clear()
            self._open_next_relay(key, target, now)
            target.fallback_at = now + self._punch_wait(relays[0])

    def rebind(self, *, now: float) -> None:
        """This phone's address changed: relays must learn where our side of each relayed
        path is now (opening again from the new address moves it, §11.1)."""
        for key, target in self._targets.items():
            path = self.node.live_path(key, now=now)
            via = relay_of(path) if path is not None else None
            if via is None:
                continue
            for relay in target.relays:
                if relay.addr == via[0]:
                    self.relay_service.open(key, relay, now=now)

    def is_relay_source(self, addr: Addr) -> bool:
        """Whether relayed datagrams from ``addr`` are for this phone (not to be forwarded)."""
        return addr in self._relay_sources or any(r.addr == addr for r in self.overlay.relays)

    def forget(self, key: bytes) -> None:
        self._targets.pop(key, None)

    def paths(self, key: bytes) -> dict[str, object]:
        """For status displays: what is known about reaching ``key``."""
        target = self._targets.get(key)
        if target is None:
            return {}
        return {
            "direct_candidates": [list(a) for a in target.direct],
            "relay_channels": len(target.channels),
        }

    # -- driver calls -------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        times = [
            t
            for target in self._targets.values()
            for t in (target.fallback_at, target.repeat_at, target.upgrade_at)
            if t is not None
        ]
        return min(times) if times else None

    def handle_timer(self, *, now: float) -> None:
        for key, target in list(self._targets.items()):
            if target.repeat_at is not None and now >= target.repeat_at:
                target.repeat_at = None
                self._repeat(key, now)
            if target.fallback_at is not None and now >= target.fallback_at:
                target.fallback_at = None
                self._fall_back(key, target, now)
            if target.upgrade_at is not None and now >= target.upgrade_at:
                self._try_upgrade(key, target, now)

    def on_event(self, event: Event | OverlayEvent, *, now: float) -> None:
        """Every node and overlay event passes through here (the engine sees to it)."""
        if isinstance(event, RelayChannelOpened):
            self._on_channel(event, now)
        elif isinstance(event, RelayChannelFailed):
            self.counters.relay_channels_failed += 1
            target = self._targets.get(event.target)
            live = self.node.live_path(event.target, now=now)
            if target is not None and (target.recovering or live is None):
                self._open_next_relay(event.target, target, now)  # this one cannot: the next
        elif isinstance(event, IntroductionReceived):
            self._on_introduction(event, now)
        elif isinstance(event, IntroductionAccepted):
            # The callee is punching towards us right now: our first initiation most likely
            # met its closed NAT; one sent now arrives after its punch opened it.
            # Once now and once a little later, in case its punch left after ours arrived.
            self._repeat(event.target, now)
            target = self._targets.get(event.target)
            if target is not None:
                target.repeat_at = now + self.config.repeat_after_s
        elif isinstance(event, HandshakeCompleted | PeerEndpointChanged):
            self._on_path(event.peer_key, event.addr, now)
        elif isinstance(event, PathValidated):
            target = self._targets.get(event.peer_key)
            if target is not None and target.recovering:
                target.recovering = False
                self.counters.path_recoveries += 1
            if event.moved:
                self._on_path(event.peer_key, event.addr, now)
        elif isinstance(event, PathQuiet):
            self._on_quiet(event, now)

    # -- internals ----------------------------------------------------------------------------
    def _target(self, key: bytes) -> _Target:
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _Target(direct=[], relays=())
            while len(self._targets) > self.config.max_targets:
                self._targets.popitem(last=False)
        self._targets.move_to_end(key)
        return target

    def _repeat(self, key: bytes, now: float) -> None:
        if self.node.repeat_initiation(key, now=now):
            self.counters.initiations_repeated += 1
            path = self.node.peer_endpoint(key)
            if path is not None:
                self._predict(key, path, now)
            # Its other candidates at the same time (a stale mapping, a reflexive address
            # that changed): whichever answers first is where the session lands.
            target = self._targets.get(key)
            others = [a for a in target.direct[1:4] if a != path] if target is not None else []
            self.node.spray_initiation(key, others, now=now)

    def _predict(self, key: bytes, addr: Addr, now: float) -> None:
        """The peer's NAT may be symmetric: its mapping towards us is then new, and, if it
        hands out ports in sequence, just after the one we know (its mapping towards the
        relay). Send the initiation to the next few ports too."""
        guesses = self._predicted(addr)
        self.counters.predictions_sent += self.node.spray_initiation(key, guesses, now=now)

    def _predicted(self, addr: Addr) -> list[Addr]:
        if is_relayed(addr):
            return []
        ports = [addr[1] + i for i in range(1, self.config.predicted_ports + 1)]
        return [(addr[0], port) for port in ports if port <= 0xFFFF]

    def _punch_wait(self, relay: Contact) -> float:
        cfg = self.config
        rtt = self.overlay.rtt(relay.public_key)
        if rtt is None:
            return cfg.punch_wait_s
        return min(cfg.punch_wait_max_s, max(cfg.punch_wait_min_s, cfg.punch_wait_rtts * rtt))

    def _open_next_relay(self, key: bytes, target: _Target, now: float) -> bool:
        for relay in target.relays:
            if relay.public_key in target.asked or relay.public_key in target.channels:
                continue
            target.asked.add(relay.public_key)
            if self.relay_service.open(key, relay, now=now):
                return True
        return False

    def _on_channel(self, event: RelayChannelOpened, now: float) -> None:
        self.counters.relay_channels_opened += 1
        self._relay_sources[event.relay.addr] = None
        self._relay_sources.move_to_end(event.relay.addr)
        while len(self._relay_sources) > self.config.max_relay_sources:
            self._relay_sources.popitem(last=False)
        target = self._targets.get(event.target)
        if target is None:
            return
        path = relayed_addr(event.relay.addr, event.channel)
        target.channels[event.relay.public_key] = path
        if target.recovering:
            self.node.probe_path(event.target, path, now=now)
        elif target.fallback_at is None and self.node.live_path(event.target, now=now) is None:
            self._fall_back(event.target, target, now)  # the punch already timed out

    def _fall_back(self, key: bytes, target: _Target, now: float) -> None:
        """The punch had its time: without a session by now, handshake through a relay."""
        if self.node.live_path(key, now=now) is not None or not target.channels:
            return
        path = next(iter(target.channels.values()))
        self.counters.relay_fallbacks += 1
        try:
            self.node.redirect(key, path, now=now)
        except LocalProtocolError:
            return

    def _on_path(self, key: bytes, addr: Addr, now: float) -> None:
        target = self._targets.get(key)
        if target is None:
            return
        if is_relayed(addr):
            if target.upgrade_at is None:
                target.upgrade_interval = self.config.upgrade_first_s
                target.upgrade_at = now + target.upgrade_interval
        else:
            if target.upgrade_at is not None:  # it was relayed: now it is direct
                self.counters.upgrades += 1
            target.upgrade_at = None
            target.fallback_at = None
            if addr not in target.direct:
                target.direct = _merge([addr], target.direct)

    def _try_upgrade(self, key: bytes, target: _Target, now: float) -> None:
        path = self.node.live_path(key, now=now)
        if path is None or not is_relayed(path):
            target.upgrade_at = None
            return
        self.counters.upgrade_attempts += 1
        if target.relays and self.own_candidates:
            self.counters.punches += 1
            self.introductions.introduce(key, target.relays, self.own_candidates, now=now)
        for addr in target.direct[:4]:
            self.node.probe_path(key, addr, now=now)
        target.upgrade_interval = min(self.config.upgrade_max_s, target.upgrade_interval * 2)
        target.upgrade_at = now + target.upgrade_interval

    def _on_introduction(self, event: IntroductionReceived, now: float) -> None:
        """We are being called through a relay: send towards the caller (opens our NAT), or,
        with a session already up, probe the caller's candidates (it wants a direct path)."""
        if not event.candidates or event.caller == self.node.identity.public_key:
            return
        target = self._target(event.caller)
        target.direct = _merge(list(event.candidates), target.direct)
        if self.node.live_path(event.caller, now=now) is not None:
            for addr in event.candidates[:2]:
                self.node.probe_path(event.caller, addr, now=now)
            return
        first = event.candidates[0]
        try:
            self.node.add_peer(event.caller, first, pin=False)
        except (InvalidKey, LocalProtocolError):
            return
        if event.initiation and self.node.receive_introduced_initiation(
            event.initiation, first, caller=event.caller, now=now
        ):
            # Answered towards where the relay saw the caller. The same answer to its other
            # candidates and to the ports after that one (a symmetric NAT in sequence).
            others = list(event.candidates[1:4]) + self._predicted(first)
            self.counters.predictions_sent += self.node.resend_response(
                event.caller, others, now=now
            )
            return
        fresh = not self.node.initiation_in_flight(event.caller)
        try:
            self.node.connect(event.caller, now=now)
        except LocalProtocolError:
            return
        if fresh:  # predicted ports once per handshake, not once per introduction
            self._predict(event.caller, first, now)

    def _on_quiet(self, event: PathQuiet, now: float) -> None:
        """A message went unanswered on the current path: find one that answers. Through a
        relay, open that relay's channel again too (idempotent: if only our NAT mapping
        changed, that moves our side of the channel) and one through another relay."""
        target = self._targets.get(event.peer_key)
        if target is None:
            return
        target.recovering = True
        current = relay_of(event.addr)
        for relay_key, path in list(target.channels.items()):
            if path == event.addr:
                del target.channels[relay_key]  # reopened below, or replaced
            else:
                self.node.probe_path(event.peer_key, path, now=now)
        for addr in target.direct[:4]:
            if addr != event.addr:
                self.node.probe_path(event.peer_key, addr, now=now)
        target.asked = set()
        for relay in target.relays:
            if current is not None and relay.addr == current[0]:
                target.asked.add(relay.public_key)
                self.relay_service.open(event.peer_key, relay, now=now)
        self._open_next_relay(event.peer_key, target, now)


def _merge(first: list[Addr], then: list[Addr]) -> list[Addr]:
    out: list[Addr] = []
    for addr in (*first, *then):
        if addr not in out and not is_relayed(addr):
            out.append(addr)
    return out[:8]
