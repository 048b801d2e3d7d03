"""The phone's protocol engine: secure sessions and the overlay on one socket.

Packets are told apart by their first byte (docs/protocol.md §3): 0x54 goes to the overlay,
everything else to the session node (which counts STUN and junk). Both halves stay separate
sans-I/O objects; this class only fans the driver's five calls out to them, so the asyncio
runtime and the simulator drive a whole phone exactly as they drive one part.
"""

from peerline.proto.events import Event
from peerline.proto.node import Node
from peerline.proto.overlay.events import OverlayEvent
from peerline.proto.overlay.overlay import Overlay
from peerline.types import Addr
from peerline.wire.spec import TYPE_OVERLAY


class Engine:
    __slots__ = ("node", "overlay")

    def __init__(self, *, node: Node, overlay: Overlay) -> None:
        if node.identity.public_key != overlay.public_key:
            raise ValueError("node and overlay must share one identity")
        self.node = node
        self.overlay = overlay

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        if data and data[0] == TYPE_OVERLAY:
            self.overlay.receive_datagram(data, addr, now=now)
        else:
            self.node.receive_datagram(data, addr, now=now)

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        out = self.node.datagrams_to_send(now=now)
        out.extend(self.overlay.datagrams_to_send(now=now))
        return out

    def get_timer(self) -> float | None:
        a = self.node.get_timer()
        b = self.overlay.get_timer()
        if a is None:
            return b
        return a if b is None else min(a, b)

    def handle_timer(self, *, now: float) -> None:
        self.node.handle_timer(now=now)
        self.overlay.handle_timer(now=now)

    def next_event(self) -> Event | OverlayEvent | None:
        event = self.node.next_event()
        return event if event is not None else self.overlay.next_event()
