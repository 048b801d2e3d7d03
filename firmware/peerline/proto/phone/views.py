"""Read-only snapshots of the core's state for front ends (a call as a screen shows it).

Front ends never hold the core's own objects: a snapshot cannot be changed behind the core's
back, and stays true to the moment it was taken.
"""

from dataclasses import dataclass

from peerline.proto.call.state import Call, CallState, EndReason


@dataclass(frozen=True, slots=True, kw_only=True)
class CallInfo:
    call_id: bytes
    state: CallState
    outgoing: bool
    peer_key: bytes
    "Empty while an outgoing call still resolves its number."
    number: str | None
    name: str
    target: str
    "What was dialled (outgoing)."
    reason: EndReason | None
    detail: str
    answered: bool
    "Whether it was ever answered."
    held_at: float | None = None
    "When it was put on hold here (HELD only): the core resumes the one held last."
    held_by_peer: bool = False
    sas: str | None = None
    "The call's SAS (protocol.md §2.6), once both nonces are in."
    group: str | None = None
    "The LAN group extension the call was dialled to, if any."
    page: bool = False
    forwarded_to: str | None = None
    "Where the callee (or its record, when it was switched off) forwarded the call."
    followed_by: bytes | None = None
    "The call this phone placed to follow that forward."

    @property
    def live(self) -> bool:
        return self.state is not CallState.ENDED

    @classmethod
    def of(cls, call: Call) -> "CallInfo":
        return cls(
            call_id=call.call_id,
            state=call.state,
            outgoing=call.outgoing,
            peer_key=call.peer_key,
            number=call.number,
            name=call.name,
            target=call.target,
            reason=call.reason,
            detail=call.detail,
            answered=call.answered_at is not None,
            held_at=call.held_at if call.state is CallState.HELD else None,
            held_by_peer=call.held_by_peer,
            sas=call.sas,
            group=call.group,
            page=call.page,
            forwarded_to=call.forwarded_to,
            followed_by=call.followed_by,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactInfo:
    """A stored peer: a key the phone trusts for a number."""

    number: str
    public_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkInfo:
    """How this phone is reached, in a few words for a small screen."""

    joined: bool
    "In the directory: it has run its join lookup and knows overlay nodes."
    role: str
    "'supernode' or 'client' (behind a NAT, reached through relays)."
    contacts: int
    relays: int
    reflexive: tuple[str, int] | None
    "Where overlay peers see it."
    host: tuple[tuple[str, int], ...]
    nat: str | None
    "The NAT's mapping behaviour from STUN (e.g. 'endpoint-independent'), if classified."
    port_mapping: str | None
    "'mapped', 'acquiring', 'failed', ... or None when not asked."
    lan_extension: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Preferences:
    volume: int
    muted: bool
    do_not_disturb: bool
