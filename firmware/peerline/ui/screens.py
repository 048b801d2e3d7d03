"""What the handset's screen shows, as data: one frozen dataclass per kind of screen.

The UI (``handset.py``) decides which screen and what is on it; ``render.py`` draws it. Kept
apart so that a screen can be compared in a test without pixels, and drawn the same way for the
OLED, the emulator and the golden images.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusBar:
    """The top line on every screen but a call's."""

    clock: str
    "'HH:MM', or empty while the time is unknown."
    online: bool
    "Joined to the directory (others can find this phone)."
    relayed: bool = False
    "Behind a NAT that needs relays (a client): shown as 'R'."
    missed: int = 0
    unread: int = 0
    dnd: bool = False
    forwarded: bool = False
    "Every call is forwarded elsewhere (the phone does not ring): shown as 'FWD'."
    muted: bool = False
    volume: int | None = None
    "Shown for a moment after a change."


@dataclass(frozen=True, slots=True, kw_only=True)
class Screen:
    """Base of every screen."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IdleScreen(Screen):
    status: StatusBar
    name: str
    number: str
    "Grouped for reading ('4821 5590 1736')."
    extension: str | None = None
    note: str = ""
    "One line about what needs attention ('2 missed calls', 'sending', a message)."


@dataclass(frozen=True, slots=True, kw_only=True)
class DialScreen(Screen):
    status: StatusBar
    digits: str
    hint: str
    "What the keys do now ('# call  * delete')."


@dataclass(frozen=True, slots=True, kw_only=True)
class CallScreen(Screen):
    title: str
    "'Calling', 'Ringing', 'Incoming call', 'In call', 'On hold', 'Conference', 'Call ended'."
    who: str
    "The far phone's number (grouped), name, extension, or what was dialled."
    detail: str = ""
    "The contact's (or the caller's own) name and its trust mark (``show.MARKS``), why it"
    " ended..."
    timer: str = ""
    "'0:42' while talking."
    sas: str = ""
    "The short authentication string, to compare by voice."
    path: str = ""
    "'direct' or 'relay'."
    bars: int | None = None
    "Call quality, 0-4 (from loss and round-trip time), while talking."
    muted: bool = False
    hint: str = ""
    other: str = ""
    "The other calls in a line: one waiting, one on hold, the rest of a conference. With it,"
    " the number is drawn small to make room."


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertScreen(Screen):
    """A warning drawn inverted over everything, until it is acknowledged."""

    title: str
    lines: tuple[str, ...]
    hint: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuScreen(Screen):
    title: str
    items: tuple[str, ...]
    selected: int
    hint: str = ""
    scroll: int = 0
    "Characters the selected item is scrolled by (a long one scrolls, marquee-like)."


@dataclass(frozen=True, slots=True, kw_only=True)
class TextScreen(Screen):
    title: str
    lines: tuple[str, ...]
    "Already wrapped to the screen's width."
    top: int = 0
    "The first line shown (scrolled with the up and down keys)."
    hint: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ComposeScreen(Screen):
    title: str
    text: str
    pending: str | None
    "The letter being chosen (multi-tap), drawn inverted at the end."
    mode: str
    "'abc', 'ABC' or '123'."
    hint: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BlankScreen(Screen):
    """Nothing (a hotline handset has no display; the display sleeps)."""
