"""Events the overlay hands out through ``next_event()``.

Its own, and those of the NAT services registered on it (``proto.nat.introductions``,
``proto.nat.relay_service``: the introduction and relay-channel events below), which queue
them through ``Overlay.add_event`` so that one stream keeps their order. They are defined here
so that the app and ``Traversal`` import every overlay event from one place; the overlay never
creates them itself.
"""

from dataclasses import dataclass

from peerline.types import Addr
from peerline.wire.overlay import Contact
from peerline.wire.record import Record


@dataclass(frozen=True, slots=True, kw_only=True)
class OverlayEvent:
    """Base of every overlay event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupCompleted(OverlayEvent):
    lookup_id: int
    number: str
    records: tuple[Record, ...]
    "Verified records, newest per key; more than one key means a number conflict."
    hops: int
    "Path length to the node that returned the first record."
    elapsed_s: float
    queries: int
    "Queries sent (some may have gone unanswered)."
    replies: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupFailed(OverlayEvent):
    lookup_id: int
    number: str
    reason: str
    elapsed_s: float
    queries: int
    "Queries sent (some may have gone unanswered)."
    replies: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordPublished(OverlayEvent):
    seq: int
    storers: int
    "How many of the closest nodes acknowledged the record."


@dataclass(frozen=True, slots=True, kw_only=True)
class ReflexiveAddressChanged(OverlayEvent):
    addr: Addr
    "How overlay peers see this phone (its NAT mapping when behind one)."


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleChanged(OverlayEvent):
    member: bool
    "True: publicly reachable, serving the DHT as a supernode. False: a client behind NAT."


@dataclass(frozen=True, slots=True, kw_only=True)
class RelaysChanged(OverlayEvent):
    relays: tuple[Addr, ...]
    "The supernodes this client keeps a path open through (listed in its record)."


@dataclass(frozen=True, slots=True, kw_only=True)
class IntroductionAccepted(OverlayEvent):
    """A relay passed our introduction on to ``target``: it is sending towards us now, so a
    handshake sent now meets an open NAT on its side (simultaneous open)."""

    target: bytes
    relay: Contact


@dataclass(frozen=True, slots=True, kw_only=True)
class IntroductionReceived(OverlayEvent):
    caller: bytes
    "The calling phone's Ed25519 key."
    candidates: tuple[Addr, ...]
    "First: the caller's address as our relay saw it; then the addresses it listed."
    initiation: bytes = b""
    "The caller's handshake initiation, if it sent one along: answer it (no glare)."


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayChannelOpened(OverlayEvent):
    """A relay opened a channel to ``target``: its endpoint is ``relayed_addr(relay.addr,
    channel)`` (``peerline.proto.nat.relay``)."""

    target: bytes
    relay: Contact
    channel: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayChannelFailed(OverlayEvent):
    target: bytes
    relay: Contact
    reason: str
    "'not_my_client', 'full', 'refused', 'timeout' or 'busy'."
