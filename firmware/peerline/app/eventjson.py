"""Phone events as JSON objects: what ``peerline events --json`` and the event stream print.

One generic rule for every event (no per-event code to keep in step): ``{"event":
"call_state_changed", ...fields}``, with bytes as hex, enums by value, addresses as
``[host, port]`` and directory records as the control API shows them. Nothing secret is in an
event, so nothing is left out.
"""

import dataclasses
import enum
import re
from typing import Any

from peerline.proto.phone import events
from peerline.wire.record import Record

_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def event_name(event: events.PhoneEvent) -> str:
    """``CallStateChanged`` -> ``call_state_changed``."""
    return _SNAKE.sub("_", type(event).__name__).lower()


def event_json(event: events.PhoneEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"event": event_name(event)}
    for f in dataclasses.fields(event):
        if f.name == "announcement":
            continue  # the signed LAN announcement: its fields are there already
        out[f.name] = _value(getattr(event, f.name))
    return out


def _value(value: object) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Record):
        return record_json(value)
    if isinstance(value, tuple | list):
        return [_value(v) for v in value]
    return value


def record_json(record: Record) -> dict[str, Any]:
    """A verified directory record as the control API shows it."""
    return {
        "number": record.number,
        "public_key": record.public_key.hex(),
        "seq": record.seq,
        "ttl_s": record.ttl_s,
        "presence": record.presence.name.lower(),
        "addresses": [
            {"kind": kind.name.lower(), "host": addr[0], "port": addr[1]}
            for kind, addr in record.addresses
        ],
        "relays": [
            {"public_key": c.public_key.hex(), "host": c.addr[0], "port": c.addr[1]}
            for c in record.relays
        ],
        "forward_to": record.forward_to,
    }
