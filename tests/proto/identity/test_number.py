"""The 12-digit dialable number derived with argon2id (docs/protocol.md §2.3).

Each derivation costs about 68 ms by design, so only a handful of tests derive.
"""

import re

import nacl.bindings
import nacl.pwhash.argon2id
import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerline.errors import InvalidKey, InvalidNumber
from peerline.proto.identity import (
    NUMBER_DIGITS,
    NUMBER_MEMLIMIT,
    NUMBER_OPSLIMIT,
    NUMBER_SALT,
    Identity,
    derive_number,
    format_number,
    parse_number,
    verify_number,
)

# Public key of RFC 8032 §7.1 TEST 1; its number was computed once and is pinned here, so any
# change to the salt, the argon2id parameters or the output handling fails this test.
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_NUMBER = "065937273087"

FULL_WIDTH = "".join(chr(0xFF10 + int(d)) for d in "482155901736")  # full-width digits

digits12 = st.text(alphabet="0123456789", min_size=12, max_size=12)


def test_number_parameters_are_the_protocol_constants() -> None:
    assert NUMBER_SALT == b"peerline-number1"
    assert len(NUMBER_SALT) == nacl.bindings.crypto_pwhash_SALTBYTES == 16
    assert NUMBER_OPSLIMIT == 1
    assert NUMBER_MEMLIMIT == 64 * 1024 * 1024
    assert NUMBER_DIGITS == 12


def test_derive_number_matches_the_pinned_known_answer() -> None:
    assert derive_number(RFC8032_PUBLIC) == RFC8032_NUMBER


def test_derive_number_is_first_8_bytes_of_argon2id_mod_10_pow_12() -> None:
    digest = nacl.pwhash.argon2id.kdf(
        16, RFC8032_PUBLIC, NUMBER_SALT, opslimit=NUMBER_OPSLIMIT, memlimit=NUMBER_MEMLIMIT
    )
    assert f"{int.from_bytes(digest[:8], 'big') % 10**12:012d}" == RFC8032_NUMBER


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_derive_number_rejects_a_key_that_is_not_32_bytes(size: int) -> None:
    with pytest.raises(InvalidKey):
        derive_number(bytes(size))


def test_verify_number_accepts_the_key_that_derives_to_it() -> None:
    assert verify_number(RFC8032_NUMBER, RFC8032_PUBLIC)


def test_verify_number_rejects_key_that_derives_elsewhere() -> None:
    other = Identity.from_seed(bytes(range(32))).public_key
    assert verify_number(RFC8032_NUMBER, other) is False


@pytest.mark.parametrize(
    ("number", "public_key"),
    [
        (format_number(RFC8032_NUMBER), RFC8032_PUBLIC),  # canonical form only
        (RFC8032_NUMBER[:11], RFC8032_PUBLIC),
        (RFC8032_NUMBER + "0", RFC8032_PUBLIC),
        ("", RFC8032_PUBLIC),
        ("١٥٧١٩٧٢٠٠٥٩٢", RFC8032_PUBLIC),  # Arabic-Indic digits are not ASCII digits
        (int(RFC8032_NUMBER), RFC8032_PUBLIC),
        (None, RFC8032_PUBLIC),
        (RFC8032_NUMBER, RFC8032_PUBLIC[:31]),
        (RFC8032_NUMBER, RFC8032_PUBLIC.hex()),
        (RFC8032_NUMBER, None),
    ],
)
def test_verify_number_returns_false_for_malformed_input(
    number: object, public_key: object
) -> None:
    assert verify_number(number, public_key) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    ["482155901736", "4821 5590 1736", "4821-5590-1736", " 4821 5590 1736 ", "48-21 55--90 1736"],
)
def test_parse_number_accepts_digits_with_spaces_and_dashes(text: str) -> None:
    assert parse_number(text) == "482155901736"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "12 digits; got 0"),
        ("4821 5590 173", "12 digits; got 11"),
        ("4821 5590 17361", "12 digits; got 13"),
        ("4821.5590.1736", "found '.'"),
        ("+482155901736", "found '+'"),
        ("4821\t5590\t1736", "found '\\t'"),
        (FULL_WIDTH, "found '\uff14'"),
        ("48215590173O", "found 'O'"),
    ],
)
def test_parse_number_rejects_bad_text_with_a_clear_message(text: str, problem: str) -> None:
    with pytest.raises(InvalidNumber, match=re.escape(problem)):
        parse_number(text)


def test_parse_number_rejects_non_text() -> None:
    with pytest.raises(InvalidNumber):
        parse_number(482155901736)  # type: ignore[arg-type]


@given(text=st.text())
def test_parse_number_returns_canonical_digits_or_raises_invalid_number_only(text: str) -> None:
    try:
        number = parse_number(text)
    except InvalidNumber:
        return
    assert len(number) == 12
    assert set(number) <= set("0123456789")


@given(
    number=digits12,
    separators=st.lists(
        st.sampled_from(["", " ", "-", "  ", "--", " - "]), min_size=13, max_size=13
    ),
)
def test_parse_number_ignores_separators_anywhere(number: str, separators: list[str]) -> None:
    text = "".join(sep + digit for sep, digit in zip(separators, number, strict=False))
    assert parse_number(text + separators[-1]) == number


@given(number=digits12)
def test_format_number_groups_in_fours_and_parse_undoes_it(number: str) -> None:
    shown = format_number(number)
    assert shown == f"{number[:4]} {number[4:8]} {number[8:]}"
    assert parse_number(shown) == number
    assert format_number(shown) == shown


def test_format_number_shows_the_design_example() -> None:
    assert format_number("482155901736") == "4821 5590 1736"
    assert format_number("000000000007") == "0000 0000 0007"


@pytest.mark.parametrize("text", ["48215590173", "4821 5590 17a6", ""])
def test_format_number_rejects_what_parse_number_rejects(text: str) -> None:
    with pytest.raises(InvalidNumber):
        format_number(text)
