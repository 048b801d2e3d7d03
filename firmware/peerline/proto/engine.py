"""The phone's protocol engine: secure sessions and the overlay on one socket.

Packets are told apart by their first byte (docs/protocol.md §3): 0x54 goes to the overlay,
everything else to the session node (which counts STUN and junk). Both halves stay separate
sans-I/O objects; this class only fans the driver's five calls out to them, so the asyncio
runtime and the simulator drive a whole phone exactly as they drive one part.
"""

from peerline.proto.events import Event
from peerline.proto.nat.stun_client import BindingFailed, BindingResult, StunClient
from peerline.proto.nat.stun_server import StunServer
from peerline.proto.node import Node
from peerline.proto.overlay.events import OverlayEvent
from peerline.proto.overlay.overlay import Overlay
from peerline.types import Addr
from peerline.wire.spec import STUN_FIRST_BYTE_MAX, TYPE_OVERLAY

EngineEvent = Event | OverlayEvent | BindingResult | BindingFailed


class Engine:
    __slots__ = ("node", "overlay", "stun", "stun_server")

    def __init__(
        self,
        *,
        node: Node,
        overlay: Overlay,
        stun: StunClient | None = None,
        stun_server: StunServer | None = None,
    ) -> None:
        if node.identity.public_key != overlay.public_key:
            raise ValueError("node and overlay must share one identity")
        self.node = node
        self.overlay = overlay
        self.stun = stun
        self.stun_server = stun_server
        "Answers Binding requests while the overlay says this phone is a supernode."

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        if data and data[0] == TYPE_OVERLAY:
            self.overlay.receive_datagram(data, addr, now=now)
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

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        out = self.node.datagrams_to_send(now=now)
        out.extend(self.overlay.datagrams_to_send(now=now))
        if self.stun is not None:
            out.extend(self.stun.datagrams_to_send(now=now))
        if self.stun_server is not None:
            out.extend(self.stun_server.datagrams_to_send(now=now))
        return out

    def get_timer(self) -> float | None:
        times = [self.node.get_timer(), self.overlay.get_timer()]
        if self.stun is not None:
            times.append(self.stun.get_timer())
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def handle_timer(self, *, now: float) -> None:
        self.node.handle_timer(now=now)
        self.overlay.handle_timer(now=now)
        if self.stun is not None:
            self.stun.handle_timer(now=now)

    def next_event(self) -> EngineEvent | None:
        event: EngineEvent | None = self.node.next_event()
        if event is None:
            event = self.overlay.next_event()
        if event is None and self.stun is not None:
            event = self.stun.next_event()
        return event
