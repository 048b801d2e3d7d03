"""Events the node hands out through ``Node.next_event()``: small, immutable, past tense."""

from dataclasses import dataclass

from peerline.types import Addr


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every node event."""

    peer_key: bytes
    "The peer's Ed25519 public key (32 bytes): the identity the event is about."


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeCompleted(Event):
    initiator: bool
    "True if this phone started the handshake."
    sas: str
    "Short authentication string to compare by voice, e.g. '042 917'."
    addr: Addr
    "Where the peer is reached."


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived(Event):
    message_id: bytes
    "16 bytes chosen by the sender; the same id on a retransmission."
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDelivered(Event):
    message_id: bytes
    "The peer acknowledged this message."


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageFailed(Event):
    message_id: bytes
    reason: str
    "Why delivery was given up, e.g. 'unreachable' or 'timeout'."


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerEndpointChanged(Event):
    addr: Addr
    "An authenticated packet arrived from this new address; the path moved there."


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerSilent(Event):
    addr: Addr | None
    "Where the peer was last reached; it no longer answers there (it may have moved)."


@dataclass(frozen=True, slots=True, kw_only=True)
class PathQuiet(Event):
    addr: Addr
    "A message sent on this path went unanswered for a retransmission: the path may be dead"
    " (a relay gone, a NAT rebound). Earlier than ``PeerSilent``: time to probe alternatives."


@dataclass(frozen=True, slots=True, kw_only=True)
class PathValidated(Event):
    addr: Addr
    "A probe's echo came back from here: the path is open both ways."
    moved: bool
    "Whether the session's path moved here (it does, unless it was already here)."


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaReceived(Event):
    body: bytes
    "A MEDIA frame body (``peerline.wire.media``): 20 ms of the peer's audio."
    at: float
    "When its packet arrived (the node's clock): the jitter buffer's arrival time."


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaReportReceived(Event):
    body: bytes
    "A MEDIA_REPORT body (``peerline.wire.call``): how the peer receives our audio."
    at: float
    "When its packet arrived (the node's clock)."


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalReceived(Event):
    message_id: bytes
    "16 bytes chosen by the sender; already acknowledged, duplicates suppressed."
    body: bytes
    "A call-control message (``peerline.wire.call``), not yet parsed."
