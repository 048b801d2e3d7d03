"""LAN announcements (proto.lan.announcement): signed bytes, TXT codec, decode fuzzing.

docs/lan.md §2 gives the byte layout and the TXT keys these tests pin.
"""

import base64
import contextlib
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzing import changed_mutations
from peerline.errors import DecodeError
from peerline.proto.identity import Identity
from peerline.proto.lan import (
    ANNOUNCEMENT_DOMAIN,
    MAX_TXT_ENTRIES,
    LanAnnouncement,
    from_txt,
    is_extension,
    sign_announcement,
    to_txt,
    verify_announcement,
)

ME = Identity.from_seed(bytes(range(32)))
OTHER = Identity.from_seed(bytes(range(32, 64)))
NUMBER = "482155901736"


def announce(
    identity: Identity = ME,
    *,
    number: str = NUMBER,
    port: int = 4720,
    extension: str | None = "201",
    configured: bool = False,
    established: bool = False,
    claim_seq: int = 7,
) -> LanAnnouncement:
    return sign_announcement(
        identity,
        number=number,
        port=port,
        extension=extension,
        configured=configured,
        established=established,
        claim_seq=claim_seq,
    )


def txt_bytes(ann: LanAnnouncement) -> dict[bytes, bytes | None]:
    """The TXT properties as zeroconf hands them to a browser: bytes keys and values."""
    return {k.encode(): v for k, v in to_txt(ann).items()}


extensions = st.one_of(
    st.none(),
    st.from_regex(r"\A[1-9][0-9]{2,3}\Z", fullmatch=True),
)


@st.composite
def announcements(draw: st.DrawFn) -> LanAnnouncement:
    ext = draw(extensions)
    return announce(
        Identity.from_seed(draw(st.binary(min_size=32, max_size=32))),
        number=draw(st.from_regex(r"\A[0-9]{12}\Z", fullmatch=True)),
        port=draw(st.integers(1, 65535)),
        extension=ext,
        configured=ext is not None and draw(st.booleans()),
        established=ext is not None and draw(st.booleans()),
        claim_seq=draw(st.integers(0, 2**32 - 1)),
    )


# -- signed bytes --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("configured", "established", "flags"),
    [
        (False, False, b"\x00"),
        (True, False, b"\x01"),
        (False, True, b"\x02"),
        (True, True, b"\x03"),
    ],
)
def test_signed_bytes_follow_the_documented_layout(
    configured: bool, established: bool, flags: bytes
) -> None:
    """docs/lan.md §2.1: domain, number, key, u16 port, ext length, ext, flags, u32 seq."""
    ann = announce(
        port=0x1270,
        extension="2019",
        configured=configured,
        established=established,
        claim_seq=0x01020304,
    )
    expected = (
        b"peerline-lan/1"
        + NUMBER.encode()
        + ME.public_key
        + b"\x12\x70"
        + b"\x04"
        + b"2019"
        + flags
        + b"\x01\x02\x03\x04"
    )
    assert ann.signed_bytes() == expected
    assert len(expected) == 70


def test_signed_bytes_without_extension_have_a_zero_length_field() -> None:
    ann = announce(extension=None, claim_seq=0)
    assert ann.signed_bytes()[14 + 12 + 32 + 2 :] == b"\x00" + b"\x00" + bytes(4)
    assert len(ann.signed_bytes()) == 66
    assert ann.signed_bytes().startswith(ANNOUNCEMENT_DOMAIN)


def test_sign_announcement_verifies_and_every_field_is_covered() -> None:
    ann = announce()
    assert verify_announcement(ann)
    changes = {
        "number": "000000000001",
        "public_key": OTHER.public_key,
        "port": 4721,
        "extension": "202",
        "configured": True,
        "established": True,
        "claim_seq": 8,
    }
    for field, value in changes.items():
        fields = {
            "number": ann.number,
            "public_key": ann.public_key,
            "port": ann.port,
            "extension": ann.extension,
            "configured": ann.configured,
            "established": ann.established,
            "claim_seq": ann.claim_seq,
            "signature": ann.signature,
        }
        fields[field] = value
        forged = LanAnnouncement(**fields)  # type: ignore[arg-type]
        assert not verify_announcement(forged), field


def test_a_signature_of_the_same_fields_by_another_key_does_not_verify() -> None:
    theirs = announce(OTHER)
    stolen = LanAnnouncement(
        number=theirs.number,
        public_key=ME.public_key,
        port=theirs.port,
        extension=theirs.extension,
        configured=theirs.configured,
        established=theirs.established,
        claim_seq=theirs.claim_seq,
        signature=theirs.signature,
    )
    assert not verify_announcement(stolen)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"number": "12345"},
        {"number": "48215590173a"},
        {"port": 0},
        {"port": 65536},
        {"extension": "012"},
        {"extension": "20"},
        {"extension": "20000"},
        {"extension": None, "configured": True},
        {"extension": None, "established": True},
        {"established": 1},
        {"configured": 1},
        {"claim_seq": -1},
        {"claim_seq": 2**32},
    ],
)
def test_invalid_announcements_cannot_be_built(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        announce(**kwargs)  # type: ignore[arg-type]


def test_is_extension() -> None:
    assert all(is_extension(e) for e in ("100", "201", "999", "1000", "9999"))
    bad = ("", "12", "012", "0999", "12345", "2a1", "\uff12\uff10\uff11", 201, None, b"201")
    assert not any(is_extension(e) for e in bad)


def test_repr_shows_a_key_prefix_not_the_signature() -> None:
    ann = announce()
    assert ann.signature.hex() not in repr(ann)
    assert ME.public_key.hex()[:16] in repr(ann)


# -- TXT codec ----------------------------------------------------------------------------------
def test_txt_layout() -> None:
    """docs/lan.md §2.2: the keys, and their values as ASCII."""
    ann = announce(extension="201", configured=True, claim_seq=12)
    txt = to_txt(ann)
    assert txt == {
        "v": b"1",
        "num": NUMBER.encode(),
        "pk": ME.public_key.hex().encode(),
        "port": b"4720",
        "ext": b"201",
        "cfg": b"1",
        "est": b"0",
        "seq": b"12",
        "sig": base64.urlsafe_b64encode(ann.signature).rstrip(b"="),
    }
    assert len(txt["sig"]) == 86
    assert "ext" not in to_txt(announce(extension=None))


@given(announcements())
def test_txt_round_trip(ann: LanAnnouncement) -> None:
    txt = to_txt(ann)
    assert all(len(k) + 1 + len(v) <= 255 for k, v in txt.items())
    assert from_txt(txt) == ann
    assert from_txt(txt_bytes(ann)) == ann
    assert verify_announcement(from_txt(txt))


def test_from_txt_ignores_unknown_keys_and_matches_keys_in_any_case() -> None:
    ann = announce()
    txt: dict[object, object] = {k.upper(): v for k, v in txt_bytes(ann).items()}
    txt[b"future"] = b"whatever"
    txt[b"flag"] = None
    assert from_txt(txt) == ann


def _with(ann: LanAnnouncement, **changes: object) -> dict[object, object]:
    txt: dict[object, object] = dict(txt_bytes(ann))
    for key, value in changes.items():
        if value is ...:
            del txt[key.encode()]
        else:
            txt[key.encode()] = value
    return txt


GOOD = announce()
GOOD_SIG = to_txt(GOOD)["sig"]


@pytest.mark.parametrize(
    "txt",
    [
        _with(GOOD, v=b"2"),
        _with(GOOD, v=...),
        _with(GOOD, v=None),
        _with(GOOD, num=b"48215590173"),
        _with(GOOD, num=b"4821559017361"),
        _with(GOOD, num=b"48215590173x"),
        _with(GOOD, pk=ME.public_key.hex().upper().encode()),
        _with(GOOD, pk=ME.public_key.hex()[:-2].encode()),
        _with(GOOD, pk=...),
        _with(GOOD, port=b"0"),
        _with(GOOD, port=b"65536"),
        _with(GOOD, port=b"04720"),
        _with(GOOD, port=b"+4720"),
        _with(GOOD, port=b" 4720"),
        _with(GOOD, ext=b"012"),
        _with(GOOD, ext=b""),
        _with(GOOD, ext=None),
        _with(GOOD, ext=b"20\xff"),
        _with(GOOD, cfg=b"2"),
        _with(GOOD, cfg=b"true"),
        _with(announce(extension=None), cfg=b"1"),
        _with(announce(extension=None), est=b"1"),
        _with(GOOD, est=b"yes"),
        _with(GOOD, est=...),
        _with(GOOD, seq=b"4294967296"),
        _with(GOOD, seq=b"007"),
        _with(GOOD, seq=b"-1"),
        _with(GOOD, seq=b"1e3"),
        _with(GOOD, sig=GOOD_SIG + b"=="),
        _with(GOOD, sig=GOOD_SIG[:-1]),
        _with(GOOD, sig=b"+" + GOOD_SIG[1:]),
        _with(GOOD, sig=b"/" + GOOD_SIG[1:]),
        _with(GOOD, sig=b"=" + GOOD_SIG[1:]),
        {**txt_bytes(GOOD), b"NUM": NUMBER.encode()},
        {**txt_bytes(GOOD), b"": b"x"},
        {**txt_bytes(GOOD), b"x": b"y" * 254},
        {**txt_bytes(GOOD), b"\xff": b"x"},
        {**txt_bytes(GOOD), **{f"k{i}".encode(): b"" for i in range(MAX_TXT_ENTRIES)}},
        {**txt_bytes(GOOD), b"num": 482155901736},
        {**txt_bytes(GOOD), 5: b"x"},
        {},
    ],
)
def test_from_txt_refuses_malformed_records(txt: Mapping[object, object]) -> None:
    with pytest.raises(DecodeError):
        from_txt(txt)


def test_from_txt_refuses_non_canonical_last_signature_character() -> None:
    """86 base64url characters carry 516 bits; the last 4 must be zero (one encoding only)."""
    sig = bytearray(GOOD_SIG)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sig[-1] = alphabet[alphabet.index(sig[-1]) ^ 1]
    with pytest.raises(DecodeError):
        from_txt(_with(GOOD, sig=bytes(sig)))


@pytest.mark.parametrize("value", [None, [], "v=1", b"v=1", 42])
def test_from_txt_refuses_non_mappings(value: object) -> None:
    with pytest.raises(DecodeError):
        from_txt(value)


# -- fuzz ---------------------------------------------------------------------------------------
txt_atoms = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    st.none(),
    st.integers(),
    st.sampled_from(
        [b"v", b"num", b"pk", b"port", b"ext", b"cfg", b"est", b"seq", b"sig", "v", "EXT"]
    ),
)


@settings(max_examples=500)
@given(st.dictionaries(txt_atoms, txt_atoms, max_size=40))
def test_random_txt_dicts_raise_only_decode_error(txt: dict[object, object]) -> None:
    with contextlib.suppress(DecodeError):
        from_txt(txt)


@st.composite
def mutated_txt(draw: st.DrawFn) -> tuple[LanAnnouncement, dict[object, object]]:
    ann = draw(announcements())
    txt: dict[object, object] = dict(txt_bytes(ann))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["mutate", "mutate", "drop", "rename", "add"]))
        keys = sorted(txt, key=repr)
        if action == "mutate" and keys:
            key = draw(st.sampled_from(keys))
            value = txt[key]
            raw = value if isinstance(value, bytes) else b""
            txt[key] = draw(changed_mutations(raw))
        elif action == "drop" and keys:
            del txt[draw(st.sampled_from(keys))]
        elif action == "rename" and keys:
            key = draw(st.sampled_from(keys))
            txt[draw(changed_mutations(key if isinstance(key, bytes) else b""))] = txt.pop(key)
        else:
            txt[draw(st.binary(min_size=1, max_size=8))] = draw(st.binary(max_size=16))
    return ann, txt


@settings(max_examples=500)
@given(mutated_txt())
def test_mutated_txt_raises_only_decode_error_and_never_forges(
    case: tuple[LanAnnouncement, dict[object, object]],
) -> None:
    """A changed record either fails to decode or fails its signature (or is unchanged)."""
    ann, txt = case
    try:
        decoded = from_txt(txt)
    except DecodeError:
        return
    assert decoded == ann or not verify_announcement(decoded)
