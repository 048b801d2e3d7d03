"""The phone core: the whole phone, sans-I/O, driven by commands and reporting events.

Front ends (the control API, the keypad UI, the emulator, gateways) use only what this package
exports: ``PhoneCore``, its configuration, the commands and the events.
"""

from peerline.proto.call.manager import CodecFactory, Forwarding
from peerline.proto.call.state import CallState, EndReason
from peerline.proto.lan import GroupMode, LanGroup, canonical_groups

from . import commands, events
from .commands import (
    Accepted,
    AddPeer,
    Answer,
    Command,
    CommandRejected,
    Dial,
    Hangup,
    Lookup,
    PlayKeyTone,
    SendDtmf,
    SendMessage,
    SetDialTone,
    SetDoNotDisturb,
    SetMute,
    SetVolume,
)
from .config import LanSettings, PhoneConfig, PhoneState, Surroundings
from .contacts import StoredPeer
from .core import PhoneCore
from .events import PhoneEvent
from .views import CallInfo, ContactInfo, NetworkInfo, Preferences

__all__ = [
    "Forwarding",
    "GroupMode",
    "LanGroup",
    "canonical_groups",
    "Accepted",
    "AddPeer",
    "Answer",
    "CallInfo",
    "CallState",
    "CodecFactory",
    "ContactInfo",
    "Command",
    "CommandRejected",
    "Dial",
    "EndReason",
    "Hangup",
    "LanSettings",
    "Lookup",
    "NetworkInfo",
    "PhoneConfig",
    "PhoneCore",
    "PhoneEvent",
    "PhoneState",
    "PlayKeyTone",
    "Preferences",
    "SendDtmf",
    "SendMessage",
    "SetDialTone",
    "SetDoNotDisturb",
    "SetMute",
    "SetVolume",
    "StoredPeer",
    "Surroundings",
    "commands",
    "events",
]
