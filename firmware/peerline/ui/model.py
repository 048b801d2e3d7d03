"""What the handset UI reads and keeps: the phone's read-only view, and the handset's settings.

The UI never reaches into the phone core: it gets events, sends commands, and reads what it
must show through ``PhoneView`` (a port the shell implements over the core's views and the
store; tests use a fake). ``HandsetSettings`` is what the handset remembers across restarts
(speed dials, brightness); the shell stores it when the UI says it changed.
"""

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from peerline.proto.phone import CallInfo, ContactInfo, NetworkInfo, Preferences

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
    relayed: bool
    loss_pct: float | None
    rtt_ms: float | None
    talk_s: float | None


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
