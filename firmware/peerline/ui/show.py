"""What each view of the handset shows: the UI's state as a ``Screen`` (``render`` draws it).

One function per view kind (``SCREENS``), reading the UI's public state and its ``PhoneView``:
who is calling and how to show them, the call timer, quality bars from loss and round-trip
time, the hints that say what the keys do.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from peerline.proto.identity import format_number
from peerline.proto.phone import CallInfo, CallState, EndReason

from .screens import (
    CallScreen,
    ComposeScreen,
    DialScreen,
    IdleScreen,
    MenuScreen,
    Screen,
    TextScreen,
)
from .views import Kind

if TYPE_CHECKING:
    from .handset import HandsetUI

NUMBER_DIGITS = 12

REASONS = {
    EndReason.HANGUP: "",
    EndReason.REMOTE_HANGUP: "hung up",
    EndReason.CANCELLED: "cancelled",
    EndReason.DECLINED: "declined",
    EndReason.DECLINED_HERE: "declined",
    EndReason.BUSY: "busy",
    EndReason.BUSY_HERE: "busy here",
    EndReason.DO_NOT_DISTURB: "do not disturb",
    EndReason.NO_ANSWER: "no answer",
    EndReason.MISSED: "missed",
    EndReason.UNREACHABLE: "not reachable",
    EndReason.CONNECTION_LOST: "connection lost",
    EndReason.INCOMPATIBLE: "incompatible",
    EndReason.FAILED: "failed",
    EndReason.GLARE: "",
    EndReason.UNKNOWN_NUMBER: "unknown number",
    EndReason.NUMBER_CONFLICT: "number conflict",
    EndReason.UNKNOWN_EXTENSION: "unknown extension",
    EndReason.BAD_RECORD: "bad directory record",
    EndReason.LOOKUP_BUSY: "directory busy",
    EndReason.LOOKUP_TIMEOUT: "not found in time",
}
"""A few words for the call-ended screen."""


def _idle_screen(ui: "HandsetUI") -> Screen:
    net = ui.phone.network()
    note = ui.config.notice
    if ui.missed:
        note = f"{ui.missed} missed call" + ("s" if ui.missed > 1 else "")
    elif ui.unread:
        note = f"{ui.unread} new message" + ("s" if ui.unread > 1 else "")
    if ui.toast is not None:
        note = ui.toast[0]
    return IdleScreen(
        status=ui.status_bar(),
        name=ui.phone.name,
        number=format_number(ui.phone.number),
        extension=net.lan_extension,
        note=note,
    )


def _dial_screen(ui: "HandsetUI") -> Screen:
    top = ui.top
    status = ui.status_bar()
    if top.title and not top.digits:
        return DialScreen(status=status, digits="", hint=ui.hint(f"{top.title}: number"))
    hint = "# call  * delete" if top.purpose == "call" else "# ok  * delete"
    return DialScreen(status=status, digits=group(top.digits), hint=ui.hint(hint))


def _call_screen(ui: "HandsetUI") -> Screen:
    call = ui.shown_call if ui.shown_call is not None else ui.phone.live_call()
    top = ui.top
    if call is None:
        return CallScreen(title="Calling", who=_who_target(top.title), hint=ui.hint("* cancel"))
    who = _who(call)
    state = call.state
    prefs = ui.phone.preferences()
    if state is CallState.ENDED:
        detail = REASONS.get(call.reason, "") if call.reason is not None else ""
        return CallScreen(title="Call ended", who=who, detail=detail, hint=ui.hint(""))
    if state is CallState.INCOMING:
        detail = call.name or ""
        known = any(c.public_key == call.peer_key for c in ui.phone.contacts())
        if not known:
            detail = (detail + " " if detail else "") + "(new)"
        return CallScreen(
            title="Incoming call", who=who, detail=detail, hint=ui.hint("# answer  * decline")
        )
    if state is CallState.ACTIVE:
        details = ui.phone.call_details(call.call_id)
        timer, sas, path, bars = "", "", "", None
        if details is not None:
            timer = _mmss(details.talk_s or 0.0)
            sas = details.sas
            path = "relay" if details.relayed else "direct"
            bars = _bars(details.loss_pct, details.rtt_ms)
        return CallScreen(
            title="In call",
            who=who,
            detail=call.name,
            timer=timer,
            sas=sas,
            path=path,
            bars=bars,
            muted=prefs.muted,
            hint=ui.hint("no headset!" if ui.headset_missing else ""),
        )
    title = {CallState.RINGBACK: "Ringing"}.get(state, "Calling")
    return CallScreen(title=title, who=who, hint=ui.hint("* cancel"))


def _menu_screen(ui: "HandsetUI") -> Screen:
    top = ui.top
    hint = "A ok  B back" if ui.config.soft_keys else "5 ok  * back"
    return MenuScreen(
        title=top.title,
        items=tuple(top.items),
        selected=top.selected,
        hint=ui.hint(hint),
        scroll=top.scroll,
    )


def _page_screen(ui: "HandsetUI") -> Screen:
    top = ui.top
    hint = "# reply  * back" if top.reply else "* back"
    return TextScreen(title=top.title, lines=tuple(top.lines), top=top.top, hint=ui.hint(hint))


def _compose_screen(ui: "HandsetUI") -> Screen:
    top = ui.top
    editor = top.editor
    assert editor is not None
    title = f"To {_who_target(top.to)}"
    return ComposeScreen(
        title=title[:17],  # "To 4821 5590 1736", then the mode: 21 characters
        text=editor.text,
        pending=editor.pending,
        mode=editor.mode.value,
        hint=ui.hint("hold # send"),
    )


SCREENS: dict[Kind, Callable[["HandsetUI"], Screen]] = {
    Kind.IDLE: _idle_screen,
    Kind.DIAL: _dial_screen,
    Kind.CALL: _call_screen,
    Kind.MENU: _menu_screen,
    Kind.PAGE: _page_screen,
    Kind.COMPOSE: _compose_screen,
}
"""View kind -> its screen."""


def _who(call: CallInfo) -> str:
    if call.number:
        return format_number(call.number)
    if call.target:
        return _who_target(call.target)
    return f"key {call.peer_key.hex()[:8]}"


def _who_target(target: str) -> str:
    return format_number(target) if len(target) == NUMBER_DIGITS and target.isdigit() else target


def group(digits: str) -> str:
    """Digits as they are read: a number in fours ('4821 5590 17' while typing); an
    extension or a short code as is."""
    if len(digits) <= 4 or not digits.isdigit():
        return digits
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _mmss(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


def _bars(loss_pct: float | None, rtt_ms: float | None) -> int:
    """Call quality 0-4 from loss and round-trip time (4: under 1 % and 150 ms)."""
    bars = 4
    loss = loss_pct or 0.0
    if loss >= 1:
        bars -= 1
    if loss >= 5:
        bars -= 1
    if loss >= 15:
        bars -= 1
    if rtt_ms is not None and rtt_ms >= 300:
        bars -= 1
    return max(0, bars)
