"""The phone's protocol engine: secure sessions, the overlay and NAT traversal on one socket.

Packets are told apart by their first byte (docs/protocol.md §3): 0x54 goes to the overlay,
0x55 (relayed session packets) is unwrapped for the session node when it comes from one of our
relays and forwarded otherwise (this phone is the relay), STUN goes to the STUN client or
server, everything else to the session node (which counts junk). The parts stay separate
sans-I/O objects; this class fans the driver's five calls out to them, wraps session packets
bound for a relayed path, and shows every event to ``Traversal`` before handing it out, so the
asyncio runtime and the simulator drive a whole phone exactly as they drive one part.

It also composes NAT traversal onto the overlay: ``Introductions`` and ``RelayService`` register
the overlay message kinds they serve (INTRODUCE, INTRODUCTION, RELAY_OPEN) on the ``Overlay``,
and ``Traversal`` calls them. The overlay itself knows nothing of NAT traversal.
"""

from peerline.errors import DecodeError
from peerline.proto.events import Event
from peerline.proto.nat.introductions import Introductions
from peerline.proto.nat.portmap import PortMapEvent, PortMapper
from peerline.proto.nat.relay import RelayConfig, relay_of, relayed_addr
from peerline.proto.nat.relay_service import RelayService
from peerline.proto.nat.stun_client import BindingFailed, BindingResult, StunClient
from peerline.proto.nat.stun_server import StunServer
from peerline.proto.nat.traversal import Traversal, TraversalConfig
from peerline.proto.node import Node
from peerline.proto.overlay.events import OverlayEvent
from peerline.proto.overlay.overlay import Overlay
from peerline.types import Addr
from peerline.wire.relay import pull_relayed, push_relayed
from peerline.wire.spec import STUN_FIRST_BYTE_MAX, TYPE_OVERLAY, TYPE_RELAY

EngineEvent = Event | OverlayEvent | BindingResult | BindingFailed | PortMapEvent


class Engine:
    __slots__ = (
        "_now",
        "introductions",
        "node",
        "overlay",
        "portmap",
        "relay_service",
        "stun",
        "stun_server",
        "traversal",
    )

    def __init__(
        self,
        *,
        node: Node,
        overlay: Overlay,
        stun: StunClient | None = None,
        stun_server: StunServer | None = None,
        traversal: TraversalConfig | None = None,
        relay: RelayConfig | None = None,
    ) -> None:
        if node.identity.public_key != overlay.public_key:
            raise ValueError("node and overlay must share one identity")
        self.node = node
        self.overlay = overlay
        self.stun = stun
        self.stun_server = stun_server
        "Answers Binding requests while the overlay says this phone is a supernode."
        self.relay_service = RelayService(overlay, config=relay)
        "RELAY_OPEN / RELAY_OPENED and forwarding; its ``table`` holds the channels this phone"
        " carries for others as a supernode (``relay``: its quotas)."
        self.introductions = Introductions(overlay)
        "INTRODUCE / INTRODUCTION / INTRO_ACK: hole punching through relays."
        self.traversal = Traversal(
            node=node,
            overlay=overlay,
            introductions=self.introductions,
            relay_service=self.relay_service,
            config=traversal,
        )
        self.portmap: PortMapper | None = None
        "Holds a NAT-PMP mapping on the default gateway, when the app found one to ask."
        self._now = 0.0

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        self._now = now
        if data and data[0] == TYPE_OVERLAY:
            self.overlay.receive_datagram(data, addr, now=now)
        elif data and data[0] == TYPE_RELAY:
            self._on_relayed(data, addr, now)
        elif self.portmap is not None and self.portmap.is_gateway(addr):
            self.portmap.receive_datagram(data, addr, now=now)  # NAT-PMP: first byte 0, too
        elif data and data[0] <= STUN_FIRST_BYTE_MAX:
            # A request (class bits 00 in byte 1) to the server side; the rest to the client.
            is_request = len(data) > 1 and data[0] == 0 and not data[1] & 0x10
            if is_request and self.stun_server is not None and self.overlay.member:
                self.stun_server.receive_datagram(data, addr, now=now)
            elif self.stun is not None and not is_request:
                self.stun.receive_datagram(data, addr, now=now)
            else:
                self.node.receive_datagram(data, addr, now=now)  # counted as dropped_stun
        else:
            self.node.receive_datagram(data, addr, now=now)

    def _on_relayed(self, data: bytes, addr: Addr, now: float) -> None:
        """From one of our relays: a session packet for us, on the path through that relay's
        channel. From anyone else: for this phone to forward, if it relays at all."""
        traversal = self.traversal
        if not traversal.is_relay_source(addr):
            self.relay_service.forward(data, addr, now=now)
            return
        try:
            channel, inner = pull_relayed(data)
        except DecodeError:
            traversal.counters.relayed_dropped += 1
            return
        traversal.counters.relayed_in += 1
        self.node.receive_datagram(inner, relayed_addr(addr, channel), now=now)

    def media_datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        """A call's packets only (voice, receiver reports), for a runtime that marks them
        (DSCP EF); ``datagrams_to_send`` returns the rest, and these too if still queued."""
        self._now = now
        return self._wrap(self.node.media_datagrams_to_send(now=now))

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        self._now = now
        out = self._wrap(self.node.datagrams_to_send(now=now))
        out.extend(self.overlay.datagrams_to_send(now=now))
        if self.stun is not None:
            out.extend(self.stun.datagrams_to_send(now=now))
        if self.stun_server is not None:
            out.extend(self.stun_server.datagrams_to_send(now=now))
        if self.portmap is not None:
            out.extend(self.portmap.datagrams_to_send(now=now))
        return out

    def _wrap(self, datagrams: list[tuple[bytes, Addr]]) -> list[tuple[bytes, Addr]]:
        """Session packets bound for a relayed path go to the relay, in its channel."""
        out: list[tuple[bytes, Addr]] = []
        for data, addr in datagrams:
            via = relay_of(addr)
            if via is None:
                out.append((data, addr))
                continue
            try:
                out.append((push_relayed(via[1], data), via[0]))
                self.traversal.counters.relayed_out += 1
            except ValueError:
                self.traversal.counters.relayed_dropped += 1
        return out

    def get_timer(self) -> float | None:
        times = [self.node.get_timer(), self.overlay.get_timer(), self.traversal.get_timer()]
        if self.stun is not None:
            times.append(self.stun.get_timer())
        if self.portmap is not None:
            times.append(self.portmap.get_timer())
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def handle_timer(self, *, now: float) -> None:
        self._now = now
        self.node.handle_timer(now=now)
        self.overlay.handle_timer(now=now)
        self.traversal.handle_timer(now=now)
        if self.stun is not None:
            self.stun.handle_timer(now=now)
        if self.portmap is not None:
            self.portmap.handle_timer(now=now)

    def next_event(self) -> EngineEvent | None:
        """The next event for the app; NAT traversal has seen it first (and may have acted on
        it: the caller drains ``datagrams_to_send`` after the events, as always)."""
        event: Event | OverlayEvent | None = self.node.next_event()
        if event is None:
            event = self.overlay.next_event()
        if event is None:
            other = self.stun.next_event() if self.stun is not None else None
            if other is None and self.portmap is not None:
                return self.portmap.next_event()
            return other
        self.traversal.on_event(event, now=self._now)
        return event
