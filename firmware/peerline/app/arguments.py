"""What the values of control commands may be: one check each, for both sides of the socket.

The control API answers a bad value with ``bad_request``; the CLI runs the same check while it
parses its command line, so a bad value is a usage error (exit 2) whether or not a phone is
running, with the same words. Each check takes what a person or a JSON client gave and returns
the value to use, or raises ``ValueError`` with a sentence that names the problem. Light on
purpose (no phone code): the CLI imports it on every run.
"""

import ipaddress
import math

from peerline.errors import InvalidNumber
from peerline.wire.number_text import is_extension, parse_number

RESOLVE_WAIT_S = 60.0
"""At most this long for a lookup-backed command to hear back (the core's own deadlines end
every lookup well before: two lookups of at most 15 s each)."""
MAX_WAIT_S = 120.0
"""``msg send --wait``: the longest a command waits for a delivery acknowledgement."""
MAX_MESSAGE_BYTES = 1000
"""A text message's UTF-8 size on the wire (protocol.md §6.2; wire/frames.py checks it)."""
MAX_DTMF_DIGITS = 32
DTMF_DIGITS = "0123456789*#ABCD"
"""The digits a DTMF event can carry (RFC 4733's 16 events; wire/call.py)."""
CALL_ID_HEX = 16
"""A call id as the control API shows it: 8 bytes, 16 hex digits."""
MAX_MESSAGES = 10_000
MAX_HISTORY = 1000


def number(value: object) -> str:
    """A 12-digit number as people write it (spaces and dashes allowed), canonical."""
    try:
        return parse_number(str(value))
    except InvalidNumber as exc:
        raise ValueError(str(exc)) from None


def target(value: object) -> str:
    """What ``dial``, ``transfer`` and ``msg send`` take: a number, a LAN extension, a
    speed-dial slot ``*N`` (1-99), or nothing (``dial``: the hotline)."""
    text = str(value).strip()
    if not text or is_extension(text):
        return text
    if text.startswith("*"):
        slot = text[1:]
        if slot.isascii() and slot.isdigit() and 1 <= int(slot) <= 99:
            return text
        raise ValueError(f"a speed-dial slot is *1 to *99, not {text!r}")
    try:
        return parse_number(text)
    except InvalidNumber as exc:
        raise ValueError(
            f"{exc} (dial a 12-digit number, a 3-4 digit LAN extension or *N)"
        ) from None


def message_text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("the message text is empty")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise ValueError(f"the message text is over {MAX_MESSAGE_BYTES} bytes (UTF-8)")
    return value


def wait_seconds(value: object) -> float:
    number = _number(value, "the wait")
    if not 0 <= number <= MAX_WAIT_S:
        raise ValueError(f"the wait must be 0 to {MAX_WAIT_S:g} seconds, not {number:g}")
    return number


def message_limit(value: object) -> int:
    return _count(value, "the limit", 1, MAX_MESSAGES)


def history_limit(value: object) -> int:
    return _count(value, "the limit", 1, MAX_HISTORY)


def dtmf_digits(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_DTMF_DIGITS:
        raise ValueError(f"DTMF is 1 to {MAX_DTMF_DIGITS} digits")
    bad = sorted({d for d in value if d not in DTMF_DIGITS})
    if bad:
        raise ValueError(f"DTMF digits are 0-9, *, # and A-D, not {''.join(bad)!r}")
    return value


def call_id_text(value: object) -> str:
    return call_id(value).hex()


def call_id(value: object) -> bytes:
    text = str(value)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) * 2 != CALL_ID_HEX:
        raise ValueError(
            f"a call id is {CALL_ID_HEX} hex digits (status --json shows them), not {text!r}"
        )
    return raw


def public_key(value: object) -> bytes:
    try:
        key = bytes.fromhex(str(value))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError("a public key is 64 hex digits (peerline id prints it)")
    return key


def public_key_text(value: object) -> str:
    return public_key(value).hex()


def host(value: object) -> str:
    """An IP literal (no host names: nothing here resolves names)."""
    try:
        return str(ipaddress.ip_address(str(value).strip("[]")))
    except ValueError:
        raise ValueError(f"the host must be an IP address, not {value!r}") from None


def port(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ValueError(f"a port is 1 to 65535, not {value!r}")
    return value


def listen_port(value: object) -> int:
    """A port to listen on: 0 lets the system pick one."""
    if value in (0, "0"):
        return 0
    return port(value)


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT`` with HOST an IP literal."""
    address, sep, port_text = text.rpartition(":")
    if not sep or (":" in address and not address.startswith("[")):
        raise ValueError(f"an address is HOST:PORT or [IPV6]:PORT, not {text!r}")
    return host(address), port(port_text)


def _number(value: object, what: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{what} must be a number of seconds, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{what} must be a number of seconds")
    return float(value)


def _count(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{what} must be a whole number {low} to {high}, not {value!r}")
    return value
