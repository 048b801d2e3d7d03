"""What a ``Node`` remembers about each peer: ``Peer`` (its sessions, the handshake in flight,
messages waiting for acknowledgement, path probes), with ``Outgoing`` (one reliable message or
signal) and ``Handshake`` (this phone's initiation in flight).

These are records, not machines: ``peerline.proto.node`` and the modules beside this one change
them. Kept apart so that every part of the node reads the same definition.
"""

from collections import OrderedDict
from dataclasses import dataclass, field

from peerline.proto.noise.handshake import IKHandshake
from peerline.proto.noise.session import Session
from peerline.types import Addr
from peerline.wire.frames import MessageAckFrame, MessageFrame, SignalFrame


@dataclass(slots=True)
class Outgoing:
    """A message or signal sent until acknowledged, or until ``deadline`` (§6.4)."""

    frame: MessageFrame | SignalFrame
    deadline: float
    next_send: float
    interval: float
    sends: int = 0
    quiet_sends: int = 0
    "Transmissions since the peer was last heard from (valid while ``quiet_epoch`` is current)."
    quiet_epoch: int = -1
    "The peer's ``heard`` count when ``quiet_sends`` started."


@dataclass(slots=True)
class Handshake:
    """This phone's handshake with a peer, as initiator, while it waits for a response."""

    state: IKHandshake
    local_index: int
    started_at: float
    "When the first attempt of this series began (for the give-up timeout)."
    next_retry: float
    attempts: int
    mac1: bytes
    "mac1 of the initiation in flight: a cookie reply must be bound to it."
    sent_as: int
    "The node's handshake event number when this attempt was sent (``Session.begun``)."
    link_index: int | None = None
    "The responder's index that would prove it holds ``link_sas``'s session (§4.7), if linked."
    link_sas: str = ""
    "Connection SAS of the session this initiation is linked to (empty: not linked)."
    link_hash: bytes = field(default=b"", repr=False)
    "Connection hash of that session (empty: not linked). Not in repr: never logged."
    packet: bytes = b""
    "The initiation as sent: sent again unchanged by ``repeat_initiation``."


@dataclass(slots=True, eq=False)
class Peer:
    """Everything the node holds for one peer key (protocol.md §5.5 for the session slots)."""

    public_key: bytes
    x25519_public: bytes
    endpoint: Addr | None
    current: Session | None = None
    previous: Session | None = None
    pending: list[Session] = field(default_factory=list)
    "Responder sessions not yet confirmed by a packet from the initiator (newest last)."
    handshake: Handshake | None = None
    unacked: dict[bytes, Outgoing] = field(default_factory=dict)
    acks_due: list[MessageAckFrame] = field(default_factory=list)
    recent_ids: OrderedDict[bytes, None] = field(default_factory=OrderedDict)
    recent_initiations: OrderedDict[bytes, tuple[int, int, bytes]] = field(
        default_factory=OrderedDict, repr=False
    )
    "The last ``RECENT_INITIATIONS`` initiations answered: ephemeral key -> (index and ``begun``"
    " of the session it made, response sent). Not the session itself: it may be long gone."
    cookie: bytes = field(default=b"", repr=False)
    "Cookie from this peer's last cookie reply (empty: none), for mac2. A secret: not in repr."
    cookie_at: float = float("-inf")
    last_sent: float = float("-inf")
    "When a transport packet was last sealed for this peer (keepalive clock)."
    heard: int = 0
    "Times the peer was heard from: authentic transport packets and valid handshake responses."
    pinned: bool = False
    "Added by the user (``add_peer``); unknown callers' peers are forgotten when idle."
    confirm_needed: bool = False
    "Initiator just finished a handshake: send something so the responder can confirm."
    probes: OrderedDict[bytes, tuple[Addr, float]] = field(default_factory=OrderedDict)
    "Path challenges in flight: data -> (where sent, when)."
    responses_due: list[tuple[bytes, Addr]] = field(default_factory=list)
    "Path challenges to echo: data and the address the challenge came from."
    quiet_reported: int = -1
    "The ``heard`` count at the last ``PathQuiet``: one report per silence."
    left: tuple[Addr, float] | None = None
    "The path a validation moved away from, and until when its traffic may not move the path"
    " back (protocol.md §5.7): the peer's packets in flight there predate the move."


def sending_session(peer: Peer, now: float) -> Session | None:
    """The session to send on: the current one, if confirmed, usable and the peer has an
    address; None otherwise (then messages wait and a handshake may start)."""
    s = peer.current
    if s is not None and s.confirmed and s.is_usable(now) and peer.endpoint is not None:
        return s
    return None
