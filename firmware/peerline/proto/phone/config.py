"""How a phone core is set up: its tunables, and what it kept from its last run.

``PhoneConfig`` gathers the parts' configurations (one frozen dataclass, as aioquic's
``QuicConfiguration``); the app builds it from ``peerline.toml``, tests and the simulator build
it directly. ``PhoneState`` is what the shell read from its store at start; the core changes it
only through events the shell writes back.
"""

from dataclasses import dataclass, field

from peerline.proto.call.manager import CallConfig, Forwarding
from peerline.proto.lan import LanConfig, LanGroup
from peerline.proto.nat.traversal import TraversalConfig
from peerline.proto.node import NodeConfig
from peerline.proto.overlay.overlay import OverlayConfig
from peerline.types import Addr

from .addressbook import ContactCard
from .contacts import StoredPeer
from .numbers import MAX_PENDING_DERIVATIONS

__all__ = [
    "CONNECT_TIMEOUT_S",
    "PEER_CACHE_SAVE_S",
    "CallConfig",
    "LanConfig",
    "LanSettings",
    "NodeConfig",
    "OverlayConfig",
    "PhoneConfig",
    "PhoneState",
    "Surroundings",
    "TraversalConfig",
]

PEER_CACHE_SAVE_S = 300.0
"""How often the overlay's live contacts go out as ``PeerCacheSaved`` (and at close)."""
CONNECT_TIMEOUT_S = 15.0
"""A dialled phone whose secure session is not up this long after its number was found: the
call ends ``unreachable``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LanSettings:
    """LAN extensions (docs/lan.md): on when the shell can run discovery."""

    extension: str | None = None
    "An administrator's extension (always kept), or None for an automatic one."
    config: LanConfig = field(default_factory=LanConfig)
    groups: tuple[LanGroup, ...] = ()
    "Hunt and page groups this phone is a member of (announced, signed, on the LAN)."
    group_ring_s: float = 15.0
    "How long each member of an in-turn hunt group rings before the next."


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneConfig:
    node: NodeConfig = field(default_factory=NodeConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    traversal: TraversalConfig = field(default_factory=TraversalConfig)
    calls: CallConfig = field(default_factory=CallConfig)
    seeds: tuple[tuple[bytes | None, Addr], ...] = ()
    "Overlay seeds: (key if known, address)."
    stun_servers: tuple[Addr, ...] = ()
    "Asked once at start; the first one also classifies the NAT (RFC 5780)."
    port_mapping: bool = True
    "Ask the default gateway for a NAT-PMP mapping when this phone has a private address."
    lan: LanSettings | None = None
    "None: no LAN extensions."
    peer_cache_save_s: float = PEER_CACHE_SAVE_S
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    max_pending_derivations: int = MAX_PENDING_DERIVATIONS
    "Never-seen keys waiting in the background for their number (beyond: deferred)."
    hotline: str = ""
    "What ``Dial`` with no target calls (a number or extension); empty: no hotline."

    def __post_init__(self) -> None:
        if self.peer_cache_save_s <= 0 or self.connect_timeout_s <= 0:
            raise ValueError("peer_cache_save_s and connect_timeout_s must be positive")
        if self.max_pending_derivations < 0:
            raise ValueError("max_pending_derivations must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneState:
    """What the phone kept from its last run."""

    peers: tuple[StoredPeer, ...] = ()
    peer_cache: tuple[tuple[bytes, Addr], ...] = ()
    "Overlay contacts that were good lately, most recent first."
    record_seq_start: int = 1
    "The first sequence number to sign: above every one used before (the shell adds the"
    " wall clock in milliseconds, so a lost store still moves forward)."
    lan_extension: str | None = None
    "The automatic extension held before the restart (tried first)."
    lan_claim_seq: int = 0
    contacts: tuple[ContactCard, ...] = ()
    forwarding: Forwarding = field(default_factory=Forwarding)


@dataclass(frozen=True, slots=True, kw_only=True)
class Surroundings:
    """What the shell knows of the host at start (and again when it changes)."""

    host: tuple[Addr, ...]
    "Addresses others may reach this phone at: the bound ones, wildcards expanded."
    own: tuple[Addr, ...]
    "Every address that is this phone (``host``, plus loopback aliases of a wildcard bind)."
    bound: tuple[Addr, ...]
    "The sockets' own addresses, wildcards included (a wildcard means: watch for changes)."
    gateway: str | None = None
    "The IPv4 default gateway, if any (the router to ask for a port mapping)."
    gateway_link: tuple[str, ...] = ()
    """This host's IPv4 addresses on the interface the default route leaves by, each with its
    prefix length ('192.168.1.23/24'): the source addresses a request to ``gateway`` can have."""
