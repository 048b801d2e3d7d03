"""Events the extension registry hands out through ``next_event()`` (docs/lan.md §3)."""

from dataclasses import dataclass

from .announcement import LanAnnouncement, LanGroup


@dataclass(frozen=True, slots=True, kw_only=True)
class LanPeer:
    """A phone on the LAN whose signature and number binding have both been checked."""

    number: str
    "Its 12-digit number; its key derives to it."
    public_key: bytes
    "Its Ed25519 key: what a call to it must authenticate."
    host: str
    "Address zeroconf gave for it (not signed; the handshake to ``public_key`` is the check)."
    port: int
    "Its UDP port, from the signed announcement."
    extension: str | None
    "The extension it holds in this phone's view: None if it claims none or lost its claim."
    configured: bool
    "Whether its claim is an administrator's (configured) rather than automatic."
    groups: tuple[LanGroup, ...] = ()
    "The hunt and page groups it announces it is a member of."

    def __repr__(self) -> str:
        return (
            f"LanPeer(number={self.number!r}, key={self.public_key.hex()[:16]}, "
            f"host={self.host!r}, port={self.port}, extension={self.extension!r}, "
            f"configured={self.configured})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LanEvent:
    """Base of every LAN event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AnnouncementChanged(LanEvent):
    announcement: LanAnnouncement
    """This phone's new announcement: register it (``LanDiscovery.update``); persist its
    extension and claim_seq."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionClaimed(LanEvent):
    extension: str
    "This phone now holds this extension (after probing, or at once when configured)."
    configured: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionEstablished(LanEvent):
    extension: str
    "Our claim has been held a whole probe with no rival: announced as established now."


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionChanged(LanEvent):
    old: str
    "The extension this phone lost."
    new: str
    "The free extension it claimed instead."
    winner: bytes
    "Public key of the phone that keeps ``old``."


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionLost(LanEvent):
    extension: str
    "The extension this phone lost; no free one was left, so it now has none."
    winner: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionConflict(LanEvent):
    extension: str
    "Configured on more than one phone: all keep it and ``resolve`` answers None for it."
    keys: tuple[bytes, ...]
    "Public keys of every phone configured with it (this phone's too, if it is one), sorted."


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionConflictEnded(LanEvent):
    extension: str
    "At most one phone is configured with it now."


@dataclass(frozen=True, slots=True, kw_only=True)
class LanPeerAppeared(LanEvent):
    peer: LanPeer
    "A phone newly verified on the LAN (signature and number both checked)."


@dataclass(frozen=True, slots=True, kw_only=True)
class LanPeerUpdated(LanEvent):
    peer: LanPeer
    "A known phone whose extension (as held in this view), address or port changed."


@dataclass(frozen=True, slots=True, kw_only=True)
class LanPeerGone(LanEvent):
    public_key: bytes
    number: str
    "The phone said goodbye, its records expired, or it was dropped (bad number binding)."
