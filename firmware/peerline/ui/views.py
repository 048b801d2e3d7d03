"""The handset UI's views: what kind each is, and what it holds (digits, a list, an editor).

The UI keeps a stack of them (idle at the bottom); a call, a menu or a page goes on top, and
going back pops it.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from .multitap import MultiTap


class Kind(Enum):
    IDLE = "idle"
    DIAL = "dial"
    CALL = "call"
    MENU = "menu"
    PAGE = "page"
    COMPOSE = "compose"


@dataclass(slots=True, eq=False)
class View:
    kind: Kind
    title: str = ""
    items: list[str] = field(default_factory=list)
    actions: list[Callable[[], None]] = field(default_factory=list)
    "One per item (menus): what selecting it does."
    item_hints: list[str] = field(default_factory=list)
    "MENU: what the hint line says while each item is selected (none: the keys)."
    selected: int = 0
    scroll: int = 0
    "MENU: how far the selected item's text has scrolled (a long item scrolls)."
    lines: list[str] = field(default_factory=list)
    top: int = 0
    digits: str = ""
    purpose: str = "call"
    "DIAL: what the digits are for: 'call', 'consult' (a new call while one is held),"
    " 'transfer' (where ``call_id`` goes), 'forward' (where every call goes), 'message' (the"
    " recipient), 'speed:<key>'."
    call_id: bytes | None = None
    "DIAL: the call a transfer's number is for."
    typed_at: float | None = None
    "DIAL: when the first digit's key went down, if typed on the idle screen (raw time)."
    editor: MultiTap | None = None
    to: str = ""
    "COMPOSE: the recipient."
    reply: str = ""
    "PAGE: a number to reply to or call back with '#'."
    confirm: Callable[[], None] | None = None
    "PAGE: what '#' does when the page asks a question (a SAS compared)."
    hint: str = ""
