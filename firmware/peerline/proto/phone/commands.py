"""What a front end may ask of the phone: one closed set of commands, as data.

A command is handed to ``PhoneCore.handle(command, now=...)``. It is checked at once: a command
that cannot be carried out raises ``CommandRejected`` (with a control-API error code) and
changes nothing. One that finishes later returns an ``Accepted`` with a request id that the
later events carry (``MessageSent``, ``LookupFinished``, ``PeerAdded``, ``RequestFailed``); a
dialled call is followed by its ``call_id`` in ``CallStateChanged`` events.
"""

from dataclasses import dataclass

from peerline.errors import LocalProtocolError
from peerline.types import Addr


class CommandRejected(LocalProtocolError):
    """A command that cannot be carried out now; ``code`` is the control API's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Base of every phone command."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Dial(Command):
    target: str
    "A number (12 digits; spaces and dashes allowed), a LAN extension or group, or a"
    " speed-dial slot as ``*N``. Empty: the hotline (``PhoneConfig.hotline``)."
    public_key: bytes | None = None
    "Which key, when several hold the number (never chosen silently)."
    intercom: bool = False
    "Ask the far phone to answer at once (it does so only if we are a contact it marked)."


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer(Command):
    call_id: bytes | None = None
    "Default: the ringing call."


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup(Command):
    """Hang up a talking call, cancel one being placed, or decline a ringing one."""

    call_id: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SendDtmf(Command):
    digits: str
    "1 to 32 of 0-9, *, #, A-D: sent as events, played locally."
    call_id: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SendMessage(Command):
    target: str
    "A number or a LAN extension."
    text: str
    public_key: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Lookup(Command):
    """Look a number up in the directory (stores nothing): ``LookupFinished``."""

    number: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AddPeer(Command):
    """Store a peer given by hand, once its key is shown to derive to its number."""

    number: str
    public_key: bytes
    addr: Addr


@dataclass(frozen=True, slots=True, kw_only=True)
class SetDialTone(Command):
    """The handset is off the hook with nothing dialled (on) or not (off)."""

    on: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayKeyTone(Command):
    """A key's tone, locally only (digits pressed before a call exists)."""

    digit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMute(Command):
    """Cut the microphone in calls (the far end hears silence), or restore it."""

    on: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SetVolume(Command):
    """Speaker volume, 0 (silent) to 10; 7 plays at the level received."""

    level: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SetDoNotDisturb(Command):
    """Refuse new callers (they hear busy) and show "do not disturb" in the directory record."""

    on: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold(Command):
    """Put a talking call on hold (default: every talking call)."""

    call_id: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume(Command):
    """Take a held call off hold (default: the most recently held); talking calls are held."""

    call_id: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Swap(Command):
    """Hold what talks and resume the call held most recently."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Conference(Command):
    """Join every call that is up into one conference this phone hosts and mixes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer(Command):
    """Hand a call to another phone. Blind: ``target`` is a number or extension, and the far
    phone of ``call_id`` (default: the talking one) calls it. Attended: ``consultation`` is
    our call with the target (talking), and the held call is handed to it."""

    target: str = ""
    call_id: bytes | None = None
    consultation: bytes | None = None
    attended: bool = False
    "Without ``consultation``: the talking call is the consultation, the held one is handed."


@dataclass(frozen=True, slots=True, kw_only=True)
class SetForwarding(Command):
    """Where calls go instead of ringing here (None clears that mode)."""

    always: str | None = None
    busy: str | None = None
    no_answer: str | None = None
    no_answer_s: float = 20.0
    offline: str | None = None
    "Published in the directory record: callers that cannot reach this phone follow it."


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveContact(Command):
    """Add a contact, or change one (``replace``). The key, if given, is pinned at once."""

    number: str
    name: str
    public_key: bytes | None = None
    speed_dial: int | None = None
    auto_answer: bool = False
    replace: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveContact(Command):
    number: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyContact(Command):
    """The user compared the SAS of the latest call with ``number`` and it matched: pin that
    call's key and mark it verified (a contact is made if there is none)."""

    number: str
    wall_time: float
    "Wall-clock seconds, stored as when it was verified."


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    """A command was taken. ``request``: the id its later events carry (None if it finished
    at once); ``call_id``: the call it made or acted on."""

    request: int | None = None
    call_id: bytes | None = None
