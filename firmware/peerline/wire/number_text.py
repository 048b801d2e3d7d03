"""Numbers and LAN extensions as text: what people type and read (``4821 5590 1736``, ``201``)
and what records carry (12 ASCII digits). Apart from the derivation (proto/identity/number.py)
so that the CLI can check and show numbers without loading the crypto (protocol.md §2.3)."""

from typing import Final

from peerline.errors import InvalidNumber

NUMBER_DIGITS: Final = 12
"""Decimal digits in a number; 10**12 numbers in all."""

_ASCII_DIGITS: Final = frozenset("0123456789")
_SEPARATORS: Final = frozenset(" -")


def parse_number(text: str) -> str:
    """Canonicalise a number a person typed or read: ``"4821 5590-1736"`` -> ``"482155901736"``.

    Spaces and dashes anywhere are ignored; what is left must be exactly 12 ASCII digits.
    Raises InvalidNumber naming the problem otherwise.
    """
    if not isinstance(text, str):
        raise InvalidNumber(f"a number is text, not {type(text).__name__}")
    digits = "".join(ch for ch in text if ch not in _SEPARATORS)
    for ch in digits:
        if ch not in _ASCII_DIGITS:
            raise InvalidNumber(
                f"a number may contain only digits 0-9, spaces and dashes; found {ch!r}"
            )
    if len(digits) != NUMBER_DIGITS:
        raise InvalidNumber(f"a number has {NUMBER_DIGITS} digits; got {len(digits)}")
    return digits


def format_number(number: str) -> str:
    """Group a number in fours for the display and for reading aloud: ``"4821 5590 1736"``.

    Accepts anything ``parse_number`` does (so formatting is idempotent); raises InvalidNumber
    otherwise.
    """
    digits = parse_number(number)
    return " ".join(digits[i : i + 4] for i in range(0, NUMBER_DIGITS, 4))


def is_extension(value: object) -> bool:
    """Whether ``value`` is a well-formed extension: 3 or 4 ASCII digits, not starting with 0.

    A leading 0 is left to "dial out" prefixes, as on office PBXs. Typed ``object`` so remote
    input can be tested without raising.
    """
    return (
        isinstance(value, str)
        and len(value) in (3, 4)
        and all(ch in _ASCII_DIGITS for ch in value)
        and value[0] != "0"
    )
