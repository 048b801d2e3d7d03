"""Phone data as text for people: numbers in fours, addresses as ``HOST:PORT`` or
``[V6]:PORT``, durations, times, and events. One place for the CLI's output and the daemon's
log lines, so both say the same thing the same way."""

import time
from typing import Any

from peerline.errors import InvalidNumber
from peerline.wire.number_text import format_number


def address(host: str, port: int | str) -> str:
    """``127.0.0.1:4720``, ``[::1]:4720``: the form ``--seed`` and ``peer add`` take back."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def shown(number: object) -> str:
    """A 12-digit number in fours, as the phone's screen shows it; an extension or a speed-dial
    slot as it is; nothing as ``?``."""
    if not number:
        return "?"
    try:
        return format_number(str(number))
    except InvalidNumber:
        return str(number)


def who(item: dict[str, Any]) -> str:
    """The far phone of a call, message or event: its number, else the start of its key."""
    if item.get("number"):
        label = shown(item["number"])
        name = item.get("contact") or ""
        return f"{label} ({name})" if name else label
    key = str(item.get("peer_key") or "")
    return f"key {key[:16]}…" if key else "?"


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def seconds(value: float) -> str:
    """A duration for people: ``45 s``, ``3 min 20 s``, ``2 h 5 min``."""
    total = round(value)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60} s"
    return f"{total // 3600} h {total % 3600 // 60} min"


def when(epoch: float | None) -> str:
    """A wall-clock time for lists (history, messages): local time to the minute."""
    if epoch is None:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def event_text(event: dict[str, Any]) -> str:
    """One line for people, from an event's JSON (control-api.md ``events``)."""
    kind = str(event.get("event", "?"))
    if kind == "call_state_changed":
        reason = f" ({event['reason']})" if event.get("reason") else ""
        return f"call {event['call_id'][:8]} with {who(event)}: {event['state']}{reason}"
    if kind == "incoming_call":
        name = f' "{event["name"]}"' if event.get("name") else ""
        via = (
            f" ({'page' if event.get('page') else 'group'} {event['group']})"
            if event.get("group")
            else ""
        )
        return f"incoming call {event['call_id'][:8]} from {who(event)}{name}{via}"
    if kind == "message_received":
        return f"message from {who(event)}: {event['text']}"
    if kind == "network_changed":
        return f"network ({event['aspect']}): {event['summary']}"
    rest = " ".join(f"{k}={v}" for k, v in event.items() if k != "event")
    return f"{kind.replace('_', ' ')}: {rest}"
