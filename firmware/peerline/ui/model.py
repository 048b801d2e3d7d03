"""What the handset UI reads and keeps: the phone's read-only view, and the handset's settings.

The UI never reaches into the phone core: it gets events, sends commands, and reads what it
must show through ``PhoneView`` (a port the shell implements over the core's views and the
store; tests use a fake). ``HandsetSettings`` is what the handset remembers across restarts
(speed dials, brightness); the shell stores it when the UI says it changed. ``CallLog`` is the
call history as the shell keeps it (the database in the daemon).
"""

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from peerline.proto.phone import CallInfo, ContactInfo, Forwarding, NetworkInfo, Preferences

SPEED_DIAL_KEYS = tuple("23456789")


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageInfo:
    """A stored text message, as the messages list shows it."""

    incoming: bool
    number: str | None
    "The other phone's number (None while a sender's is still being derived)."
    text: str
    status: str
    "'received', 'sent', 'delivered' or 'failed'."


@dataclass(frozen=True, slots=True, kw_only=True)
class CallDetails:
    """A talking call's facts for the in-call screen."""

    sas: str
    "The call's SAS (protocol.md 2.6): what the owner compares by voice and then confirms."
    relayed: bool
    loss_pct: float | None
    rtt_ms: float | None
    talk_s: float | None
    held_by_peer: bool = False
    "The far phone put the call on hold."


TRUST_LEVELS = ("verified", "pinned", "key_changed", "unknown")
"""How far a far phone's key is trusted (``peerline.proto.phone.addressbook.Trust``'s values)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """Who a far phone is to the owner: the contact's name, and how far its key is trusted."""

    contact: str | None
    "The contact's name for the number (a name the owner gave, unlike the one a caller sends)."
    trust: str
    "One of ``TRUST_LEVELS``."


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One call in the history, as the history list shows it."""

    incoming: bool
    outcome: str
    "'answered', 'missed', 'rejected', 'busy', 'forwarded', 'cancelled', 'failed' or 'live'."
    number: str | None
    target: str
    "What was dialled (outgoing): redialled when there is no number."
    contact: str | None
    "The contact's name for the number, if it is one."
    trust: str
    "``history_trust``: 'verified', 'key_changed', 'pinned' or 'unknown'."
    when: str
    "When it started, as the shell writes it for a small screen ('14:20', '03 Mar')."


def history_trust(*, verified: bool, contact: bool, pinned: bytes | None, key: bytes | None) -> str:
    """What the history says of a past call's key: 'verified' (the SAS was confirmed in the
    call); 'key_changed' (a contact's number, from another key than the one pinned for it);
    'pinned' (a contact's); else 'unknown'. A contact's name is never shown for a call from a
    key that was not theirs without the warning."""
    if verified:
        return "verified"
    if not contact:
        return "unknown"
    if pinned is not None and key is not None and key != pinned:
        return "key_changed"
    return "pinned"


class CallLog(Protocol):
    """The call history the shell keeps (it outlives the core's few recent calls)."""

    def history(self, limit: int) -> list[HistoryEntry]:
        """The newest ``limit`` calls, newest first."""
        ...

    def missed_unseen(self) -> int:
        """Missed calls the owner has not looked at yet."""
        ...

    def mark_missed_seen(self) -> None:
        """The owner looked at them (the shell calls this when the UI says so)."""
        ...


class PhoneView(Protocol):
    """Read-only: what the UI shows that events alone do not carry."""

    @property
    def number(self) -> str: ...

    @property
    def name(self) -> str: ...

    def live_call(self) -> CallInfo | None: ...

    def recent_calls(self) -> list[CallInfo]: ...

    def contacts(self) -> list[ContactInfo]: ...

    def messages(self, limit: int) -> list[MessageInfo]: ...

    def network(self) -> NetworkInfo: ...

    def preferences(self) -> Preferences: ...

    def call_details(self, call_id: bytes) -> CallDetails | None: ...

    def live_calls(self) -> list[CallInfo]:
        """Every call not ended, oldest first (talking, held, ringing, being placed)."""
        ...

    def caller(self, number: str | None, key: bytes) -> Caller: ...

    def history(self, limit: int) -> list[HistoryEntry]: ...

    def missed_calls(self) -> int:
        """Missed calls not seen yet (the idle screen's count)."""
        ...

    def forwarding(self) -> Forwarding: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class HandsetSettings:
    speed_dial: dict[str, str] = field(default_factory=dict)
    "Key ``2``-``9`` -> the number (or extension) a long press on it calls."
    brightness: int = 4
    "Display contrast, 1 (dim) to 5 (bright)."
    last_dialled: str = ""
    "What ``#`` on the idle screen dials again."

    def __post_init__(self) -> None:
        if not 1 <= self.brightness <= 5:
            raise ValueError("brightness is 1 to 5")
        if any(k not in SPEED_DIAL_KEYS for k in self.speed_dial):
            raise ValueError("speed dials are on keys 2-9")

    def with_speed_dial(self, key: str, target: str) -> "HandsetSettings":
        dials = dict(self.speed_dial)
        if target:
            dials[key] = target
        else:
            dials.pop(key, None)
        return replace(self, speed_dial=dials)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> "HandsetSettings":
        """Settings as stored; anything unreadable gives the defaults (never an error)."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            dials = {
                str(k): str(v)
                for k, v in dict(data.get("speed_dial", {})).items()
                if str(k) in SPEED_DIAL_KEYS and isinstance(v, str) and len(v) <= 16
            }
            return cls(
                speed_dial=dials,
                brightness=int(data.get("brightness", 4)),
                last_dialled=str(data.get("last_dialled", ""))[:16],
            )
        except (ValueError, TypeError, AttributeError):
            return cls()
