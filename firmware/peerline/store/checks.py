"""What the database accepts: the value types and limits of its rows, and the checks every
write method runs on its arguments first (a bad value raises ``ValueError`` before SQLite is
touched)."""

import enum
import math
import unicodedata
from typing import Final, Literal, cast, get_args

Direction = Literal["in", "out"]
MessageStatus = Literal["queued", "sent", "delivered", "failed", "received"]
CallOutcome = Literal[
    "live", "answered", "missed", "rejected", "busy", "forwarded", "cancelled", "failed"
]
"""How a call in the history went; ``live`` until ``call_ended`` (or a restart) settles it."""

DIRECTIONS: frozenset[str] = frozenset(get_args(Direction))
STATUSES: frozenset[str] = frozenset(get_args(MessageStatus))
OUTCOMES: frozenset[str] = frozenset(get_args(CallOutcome))

KEY_LEN = 32
"""Bytes in a public key (Ed25519)."""
MESSAGE_ID_LEN = 16
"""Bytes in a message id; the sender picks it at random, so retransmissions reuse it."""
NUMBER_LEN = 12
"""Digits in a dialable number."""
CALL_ID_LEN = 8
"""Bytes in a call id (the wire's ``CALL_ID_SIZE``; the caller picks it at random)."""
MAX_NAME_LEN = 64
"""Characters in a contact's name or a caller's display name (the wire allows 64 UTF-8 bytes)."""
MAX_HOST_LEN = 255
MAX_TARGET_LEN = 64
MAX_END_REASON_LEN = 32
SPEED_DIALS = range(1, 100)
MAX_OVERLAY_CONTACTS = 256
"""Contacts kept in the cache; the most recently good ones win."""
MAX_CONTACTS = 1000
"""Entries in the address book; a handset's menu is no place for more."""
MAX_CALL_HISTORY = 1000
"""Calls kept in the history; ``call_started`` drops the oldest beyond this."""


class Unset(enum.Enum):
    """The type of ``UNSET``: marks an argument that was not given where None is a value."""

    UNSET = enum.auto()


UNSET: Final = Unset.UNSET


def check_bytes(value: object, length: int, name: str) -> None:
    if type(value) is not bytes:
        raise ValueError(f"{name} must be bytes, got {type(value).__name__}")
    if len(value) != length:
        raise ValueError(f"{name} must be {length} bytes, got {len(value)}")


def check_key(value: object, name: str) -> None:
    check_bytes(value, KEY_LEN, name)


def check_number(value: object, name: str) -> None:
    if not (
        isinstance(value, str) and len(value) == NUMBER_LEN and value.isascii() and value.isdigit()
    ):
        raise ValueError(f"{name} must be {NUMBER_LEN} ASCII digits, got {value!r}")


def check_text(value: object, name: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be str, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{name} is not valid Unicode text: {exc}") from exc


def check_host(value: object) -> None:
    check_text(value, "host")
    assert isinstance(value, str)
    if not 0 < len(value) <= MAX_HOST_LEN or "\x00" in value:
        raise ValueError(f"host must be 1..{MAX_HOST_LEN} characters without NUL, got {value!r}")


def check_port(value: object) -> None:
    if type(value) is not int or not 1 <= value <= 65535:
        raise ValueError(f"port must be an integer 1..65535, got {value!r}")


def check_time(value: object, name: str) -> None:
    if type(value) not in (int, float) or not math.isfinite(cast(float, value)):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")


def check_status(value: object) -> None:
    if not (isinstance(value, str) and value in STATUSES):
        raise ValueError(f"status must be one of {sorted(STATUSES)}, got {value!r}")


def check_direction(value: object) -> None:
    if not (isinstance(value, str) and value in DIRECTIONS):
        raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {value!r}")


def check_flag(value: object, name: str) -> None:
    """Only a real bool: 0, 1 or "yes" here is more likely a swapped argument than a flag."""
    if type(value) is not bool:
        raise ValueError(f"{name} must be True or False, got {value!r}")


def check_speed_dial(value: object) -> None:
    if type(value) is not int or value not in SPEED_DIALS:
        raise ValueError(
            f"speed_dial must be an integer {SPEED_DIALS[0]}..{SPEED_DIALS[-1]}, got {value!r}"
        )


def has_control(value: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in value)


def check_contact_name(value: object) -> None:
    """A name the owner typed: shown on one line of a small screen, so no control characters
    (newlines, escapes) and not blank."""
    check_text(value, "name")
    assert isinstance(value, str)
    if not 0 < len(value) <= MAX_NAME_LEN or has_control(value) or value.isspace():
        raise ValueError(
            f"name must be 1..{MAX_NAME_LEN} characters, not blank, without control characters,"
            f" got {value!r}"
        )


def check_short_text(value: object, name: str, max_len: int) -> None:
    check_text(value, name)
    assert isinstance(value, str)
    if len(value) > max_len:
        raise ValueError(f"{name} must be at most {max_len} characters, got {len(value)}")


def check_end_reason(value: object) -> None:
    check_text(value, "end_reason")
    assert isinstance(value, str)
    if not 0 < len(value) <= MAX_END_REASON_LEN or has_control(value):
        raise ValueError(
            f"end_reason must be 1..{MAX_END_REASON_LEN} characters without control"
            f" characters, got {value!r}"
        )
