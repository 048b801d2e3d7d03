"""What each view of the handset shows: the UI's state as a ``Screen`` (``render`` draws it).

One function per view kind (``SCREENS``), reading the UI's public state and its ``PhoneView``:
who is calling and how to show them, the call timer, quality bars from loss and round-trip
time, the hints that say what the keys do. Wherever a far phone is named, its trust mark
follows (``MARKS``): a check for a verified key, a warning for a changed one, '?' for a
phone that is not a contact.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from peerline.proto.identity import format_number
from peerline.proto.phone import CallInfo, CallState, EndReason

from .lines import Lines
from .model import HistoryEntry
from .render import KEY_CHANGED, VERIFIED
from .screens import (
    AlertScreen,
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
    EndReason.TRANSFERRED: "transferred",
    EndReason.REPLACED: "transferred",
    EndReason.ANSWERED_ELSEWHERE: "answered elsewhere",
    EndReason.FORWARDED: "forwarded",
    EndReason.FORWARD_LOOP: "forwarding loop",
    EndReason.SECURITY: "security check failed",
    EndReason.TOO_MANY_CALLS: "all lines busy",
}
"""A few words for the call-ended screen."""

MARKS = {"verified": VERIFIED, "pinned": "", "key_changed": KEY_CHANGED, "unknown": "?"}
"""Trust -> the mark after a far phone's name or number."""

OUTCOMES = {
    "answered": "",
    "missed": "missed",
    "rejected": "rejected",
    "busy": "busy",
    "forwarded": "forwarded",
    "cancelled": "cancelled",
    "failed": "failed",
    "live": "now",
}
"""A history entry's outcome in a word (answered calls say 'in' or 'out')."""


def marked(name: str, trust: str) -> str:
    """``name`` and its trust mark."""
    return f"{name} {MARKS.get(trust, '?')}".strip()


def _idle_screen(ui: "HandsetUI") -> Screen:
    net = ui.phone.network()
    note = ui.config.notice
    forward = ui.phone.forwarding().always
    if forward is not None and not note:
        note = f"fwd to {_who_target(forward)}"
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


DIAL_HINTS = {
    "call": "# call  * delete",
    "consult": "# call  * delete",
    "transfer": "# transfer  * delete",
}
"""What '#' does on the dial screen, by what the number is for (else: '# ok')."""


def _dial_screen(ui: "HandsetUI") -> Screen:
    top = ui.top
    status = ui.status_bar()
    if top.title and not top.digits:
        return DialScreen(status=status, digits="", hint=ui.hint(f"{top.title}: number"))
    hint = DIAL_HINTS.get(top.purpose, "# ok  * delete")
    return DialScreen(status=status, digits=group(top.digits), hint=ui.hint(hint))


def _call_screen(ui: "HandsetUI") -> Screen:
    live = ui.phone.live_call()
    call = live if live is not None else ui.shown_call
    top = ui.top
    if call is None:
        return CallScreen(title="Calling", who=_who_target(top.title), hint=ui.hint("* cancel"))
    who = _who(call)
    state = call.state
    if state is CallState.ENDED:
        detail = REASONS.get(call.reason, "") if call.reason is not None else ""
        return CallScreen(title="Call ended", who=who, detail=detail, hint=ui.hint(""))
    lines = ui.incall.lines()
    caller = ui.phone.caller(call.number, call.peer_key)
    # the contact's name (given by the owner), else the one the far phone sends (anyone may
    # send any name: its mark says '?')
    detail = marked(caller.contact or call.name, caller.trust)
    other = _other(ui, lines, call)
    alarm = "KEY CHANGED" if caller.trust == "key_changed" else ""
    if state is CallState.INCOMING:
        hint = "# answer  * decline"
        return CallScreen(
            title="Incoming call", who=who, detail=detail, other=other, hint=ui.hint(hint)
        )
    if state is CallState.HELD:
        return CallScreen(
            title="On hold", who=who, detail=detail, other=other, hint=ui.hint("# resume")
        )
    if state is CallState.ACTIVE:
        details = ui.phone.call_details(call.call_id)
        timer, sas, path, bars, held_by_peer = "", "", "", None, False
        if details is not None:
            timer = _mmss(details.talk_s or 0.0)
            sas = details.sas
            path = "relay" if details.relayed else "direct"
            bars = _bars(details.loss_pct, details.rtt_ms)
            held_by_peer = details.held_by_peer
        title = "In call"
        if lines.conference:
            title = "Conference"
        elif held_by_peer:
            title = "Held by far end"
        if lines.waiting is not None:
            hint = "# answer  * reject"
        elif ui.headset_missing:
            hint = "no headset!"
        else:
            hint = alarm
        return CallScreen(
            title=title,
            who=who,
            detail=detail,
            timer=timer,
            sas=sas,
            path=path,
            bars=bars,
            muted=ui.phone.preferences().muted,
            other=other,
            hint=ui.hint(hint),
        )
    title = {CallState.RINGBACK: "Ringing"}.get(state, "Calling")
    return CallScreen(
        title=title, who=who, detail=detail, other=other, hint=ui.hint(alarm or "* cancel")
    )


def short_who(ui: "HandsetUI", call: CallInfo) -> str:
    """One call in a few characters: the contact's name, else the number, and the mark."""
    caller = ui.phone.caller(call.number, call.peer_key)
    return marked(caller.contact or _who(call), caller.trust)


def _other(ui: "HandsetUI", lines: Lines, front: CallInfo) -> str:
    """The line about the calls not in front: one waiting, the rest of a conference, one on
    hold (``+1`` for each more)."""
    waiting = lines.waiting
    if waiting is not None and waiting.call_id != front.call_id:
        return f"wait {short_who(ui, waiting)}"
    for prefix, group in (("+ ", lines.talking), ("hold ", lines.held), ("call ", lines.placing)):
        rest = [c for c in group if c.call_id != front.call_id]
        if rest:
            more = f" +{len(rest) - 1}" if len(rest) > 1 else ""
            return f"{prefix}{short_who(ui, rest[-1])}{more}"
    return ""


def _alert_screen(ui: "HandsetUI") -> Screen:
    alert = ui.alerts.top
    assert alert is not None
    first = alert.contact or format_number(alert.number)
    return AlertScreen(
        title="! KEY CHANGED !",
        lines=(
            first,
            format_number(alert.number) if alert.contact else "",
            f"new key: {alert.seen}",
            "reset or impostor?",
        ),
        hint="# ok  * end call",
    )


ALERT_SCREEN = _alert_screen
"""The screen of the alert on top (``HandsetUI.alerts``)."""


def history_item(entry: HistoryEntry) -> tuple[str, str]:
    """A history line and what the hint line says while it is selected: an arrow for the
    direction (``<`` in, ``>`` out) or the outcome's mark (``!`` missed, ``x`` rejected or
    busy, ``*`` forwarded), the contact's name or the number with its trust mark; the hint has
    the outcome in a word and the time."""
    who = entry.contact or _who_target(entry.number or entry.target) or "?"
    mark = "<" if entry.incoming else ">"
    if entry.outcome == "missed":
        mark = "!"
    elif entry.outcome in ("rejected", "busy") and entry.incoming:
        mark = "x"
    elif entry.outcome == "forwarded":
        mark = "*"
    word = OUTCOMES.get(entry.outcome, entry.outcome) or ("in" if entry.incoming else "out")
    return f"{mark}{marked(who, entry.trust)}", f"{word} {entry.when}".strip()


def _menu_screen(ui: "HandsetUI") -> Screen:
    top = ui.top
    hint = "A ok  B back" if ui.config.soft_keys else "5 ok  * back"
    if top.item_hints and top.selected < len(top.item_hints):
        hint = top.item_hints[top.selected]
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
    if top.confirm is not None:
        hint = "# yes  * no"
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
