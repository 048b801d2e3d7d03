"""Directory record codec: one table of vectors for both directions; the parser is total.

A record reaches ``decode_record`` from any overlay node before its signature is checked, so
for *any* bytes it must return a record or raise ``DecodeError``, nothing else; what it returns
re-encodes to exactly those bytes (the signature covers the encoding, so it must be canonical).
"""

import dataclasses
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import (  # type: ignore[import-not-found, unused-ignore]
    changed_mutations,
    mutations,
)
from peerline.errors import DecodeError
from peerline.types import Addr
from peerline.wire.overlay import MAX_RECORD_SIZE, PUBLIC_KEY_SIZE, Contact
from peerline.wire.record import (
    MAX_ADDRESSES,
    MAX_RELAYS,
    MAX_TTL_S,
    NUMBER_DIGITS,
    RECORD_SIGNING_CONTEXT,
    RECORD_VERSION,
    SIGNATURE_SIZE,
    CandidateKind,
    Presence,
    Record,
    decode_record,
)

KEY = bytes(range(PUBLIC_KEY_SIZE))
RELAY_KEY = b"\x33" * PUBLIC_KEY_SIZE
SIG = bytes(range(0x80, 0x80 + SIGNATURE_SIZE))
NUMBER = "004915123456"
NUMBER_BYTES = bytes.fromhex("0000000124f6d500")
V4: Addr = ("192.168.1.20", 5060)
V4_BYTES = b"\x04\xc0\xa8\x01\x14\x13\xc4"
V6: Addr = ("2001:db8::7", 40000)
V6_BYTES = b"\x06" + bytes.fromhex("20010db8000000000000000000000007") + b"\x9c\x40"
RELAY_ADDR: Addr = ("198.51.100.1", 4433)
RELAY_ADDR_BYTES = b"\x04\xc6\x33\x64\x01\x11\x51"

MINIMAL = Record(number="000000000000", public_key=bytes(32), seq=0, ttl_s=1)
FULL = Record(
    number=NUMBER,
    public_key=KEY,
    seq=7,
    ttl_s=3600,
    presence=Presence.BUSY,
    addresses=((CandidateKind.HOST, V4), (CandidateKind.REFLEXIVE, V6)),
    relays=(Contact(RELAY_KEY, RELAY_ADDR),),
    forward_to="000000000042",
    signature=SIG,
)

# (record, exact bytes): both directions are checked against this one table.
VECTORS: list[tuple[Record, bytes]] = [
    (
        MINIMAL,
        b"\x01"
        + bytes(8)  # number
        + bytes(32)  # key
        + bytes(8)  # seq
        + b"\x00\x00\x00\x01"  # ttl
        + b"\x00"  # presence
        + b"\x00"  # flags
        + b"\x00"  # addresses
        + b"\x00"  # relays
        + bytes(SIGNATURE_SIZE),
    ),
    (
        FULL,
        b"\x01"
        + NUMBER_BYTES
        + KEY
        + b"\x00\x00\x00\x00\x00\x00\x00\x07"
        + b"\x00\x00\x0e\x10"
        + b"\x01"
        + b"\x01"
        + b"\x00\x00\x00\x00\x00\x00\x00\x2a"
        + b"\x02"
        + b"\x01"
        + V4_BYTES
        + b"\x02"
        + V6_BYTES
        + b"\x01"
        + RELAY_KEY
        + RELAY_ADDR_BYTES
        + SIG,
    ),
    (
        Record(
            number="999999999999",
            public_key=b"\xff" * 32,
            seq=2**64 - 1,
            ttl_s=MAX_TTL_S,
            presence=Presence.AWAY,
            forward_to="000000000000",
            signature=b"\xff" * 64,
        ),
        b"\x01"
        + (10**12 - 1).to_bytes(8, "big")
        + b"\xff" * 40
        + b"\x00\x00\x1c\x20"
        + b"\x03\x01"
        + bytes(8)
        + b"\x00\x00"
        + b"\xff" * 64,
    ),
]


def test_constants_are_pinned() -> None:
    assert (RECORD_VERSION, SIGNATURE_SIZE, NUMBER_DIGITS) == (1, 64, 12)
    assert RECORD_SIGNING_CONTEXT == b"peerline-record/1"
    assert (MAX_ADDRESSES, MAX_RELAYS, MAX_TTL_S, MAX_RECORD_SIZE) == (8, 4, 7200, 512)
    assert [int(p) for p in Presence] == [0, 1, 2, 3]
    assert [int(k) for k in CandidateKind] == [1, 2, 3]


@pytest.mark.parametrize(("record", "data"), VECTORS)
def test_encode_matches_vector(record: Record, data: bytes) -> None:
    assert record.encode() == data


@pytest.mark.parametrize(("record", "data"), VECTORS)
def test_decode_matches_vector(record: Record, data: bytes) -> None:
    assert decode_record(data) == record


@pytest.mark.parametrize(("record", "data"), VECTORS)
def test_signed_bytes_are_the_context_and_everything_but_the_signature(
    record: Record, data: bytes
) -> None:
    signed = record.signed_bytes()
    assert signed.startswith(RECORD_SIGNING_CONTEXT)
    assert signed == RECORD_SIGNING_CONTEXT + data[:-SIGNATURE_SIZE]
    assert data[-SIGNATURE_SIZE:] == record.signature


def test_defaults() -> None:
    assert MINIMAL.presence is Presence.AVAILABLE
    assert (MINIMAL.addresses, MINIMAL.relays, MINIMAL.forward_to) == ((), (), None)
    assert MINIMAL.signature == bytes(SIGNATURE_SIZE)
    assert len(MINIMAL.encode()) == 121


def largest(family: int = 6) -> Record:
    addr: Addr = ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 65535)
    if family == 4:
        addr = ("255.255.255.255", 65535)
    return Record(
        number="999999999999",
        public_key=KEY,
        seq=2**64 - 1,
        ttl_s=MAX_TTL_S,
        presence=Presence.DO_NOT_DISTURB,
        addresses=((CandidateKind.MAPPED, addr),) * MAX_ADDRESSES,
        relays=(Contact(RELAY_KEY, addr),) * MAX_RELAYS,
        forward_to="999999999999",
        signature=SIG,
    )


def test_the_largest_record_fits_the_record_limit() -> None:
    data = largest().encode()
    assert len(data) == 63 + 1 + MAX_ADDRESSES * 20 + 1 + MAX_RELAYS * 51 + SIGNATURE_SIZE == 493
    assert len(data) <= MAX_RECORD_SIZE
    assert decode_record(data) == largest()
    assert len(largest(4).encode()) == 493 - (MAX_ADDRESSES + MAX_RELAYS) * 12


# -- rejection -----------------------------------------------------------------------------------
def raw(
    *,
    version: int = RECORD_VERSION,
    number: int = 4915123456,
    seq: int = 7,
    ttl: int = 3600,
    presence: int = 0,
    flags: int | None = None,
    forward: int | None = None,
    addresses: Sequence[bytes] = (),
    relays: Sequence[bytes] = (),
    n_addresses: int | None = None,
    n_relays: int | None = None,
    tail: bytes = SIG,
) -> bytes:
    """A record's bytes built field by field, with any field free to be out of range."""
    if flags is None:
        flags = 0 if forward is None else 1
    return (
        bytes([version])
        + number.to_bytes(8, "big")
        + KEY
        + seq.to_bytes(8, "big")
        + ttl.to_bytes(4, "big")
        + bytes([presence, flags])
        + (b"" if forward is None else forward.to_bytes(8, "big"))
        + bytes([len(addresses) if n_addresses is None else n_addresses])
        + b"".join(addresses)
        + bytes([len(relays) if n_relays is None else n_relays])
        + b"".join(relays)
        + tail
    )


def check_accepted(data: bytes) -> Record:
    record = decode_record(data)
    assert record.encode() == data
    return record


def test_raw_builder_agrees_with_the_encoder() -> None:
    data = raw(
        presence=1,
        forward=42,
        addresses=[b"\x01" + V4_BYTES, b"\x02" + V6_BYTES],
        relays=[RELAY_KEY + RELAY_ADDR_BYTES],
    )
    assert decode_record(data) == FULL


@pytest.mark.parametrize("data", [b"", b"\x01", raw()[:9]])
def test_short_input_is_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_record(data)


@pytest.mark.parametrize(("record", "data"), VECTORS)
def test_every_truncation_and_trailing_bytes_are_rejected(record: Record, data: bytes) -> None:
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            decode_record(data[:n])
    for extra in (b"\x00", b"\xff", bytes(16)):
        with pytest.raises(DecodeError, match="trailing"):
            decode_record(data + extra)


def test_every_unknown_version_is_rejected() -> None:
    for version in range(256):
        if version != RECORD_VERSION:
            with pytest.raises(DecodeError, match="version"):
                decode_record(raw(version=version))


def test_oversize_input_is_rejected_before_parsing() -> None:
    data = largest().encode()
    for size in (MAX_RECORD_SIZE + 1, MAX_RECORD_SIZE + 100, 65_535):
        with pytest.raises(DecodeError, match="exceeds"):
            decode_record(data + bytes(size - len(data)))
    with pytest.raises(DecodeError, match="trailing"):  # within the limit: parsed, then refused
        decode_record(data + bytes(MAX_RECORD_SIZE - len(data)))


@pytest.mark.parametrize("ttl", [1, 60, MAX_TTL_S])
def test_ttl_within_bounds_is_accepted(ttl: int) -> None:
    assert check_accepted(raw(ttl=ttl)).ttl_s == ttl


@pytest.mark.parametrize("ttl", [0, MAX_TTL_S + 1, 86_400, 2**31, 2**32 - 1])
def test_ttl_out_of_bounds_is_rejected(ttl: int) -> None:
    with pytest.raises(DecodeError, match="ttl"):
        decode_record(raw(ttl=ttl))


@pytest.mark.parametrize("value", [0, 1, 4915123456, 10**12 - 1])
def test_numbers_below_10_to_the_12_are_accepted(value: int) -> None:
    record = check_accepted(raw(number=value, forward=value))
    assert record.number == record.forward_to == f"{value:012d}"


@pytest.mark.parametrize("value", [10**12, 10**12 + 1, 2**63, 2**64 - 1])
def test_number_fields_of_10_to_the_12_or_more_are_rejected(value: int) -> None:
    with pytest.raises(DecodeError, match="number field"):
        decode_record(raw(number=value))
    with pytest.raises(DecodeError, match="number field"):
        decode_record(raw(forward=value))


def test_every_unknown_presence_is_rejected() -> None:
    for presence in range(256):
        if presence in set(Presence):
            assert check_accepted(raw(presence=presence)).presence == presence
        else:
            with pytest.raises(DecodeError, match="presence"):
                decode_record(raw(presence=presence))


def test_every_unknown_flag_is_rejected() -> None:
    for flags in range(2, 256):
        forward = 42 if flags & 1 else None
        with pytest.raises(DecodeError, match="flags"):
            decode_record(raw(flags=flags, forward=forward))


def test_forward_flag_decides_whether_a_number_follows() -> None:
    assert check_accepted(raw(forward=42)).forward_to == "000000000042"
    assert check_accepted(raw()).forward_to is None
    with pytest.raises(DecodeError):  # the flag without the number: everything shifts
        decode_record(raw(flags=1))


def test_every_unknown_candidate_kind_is_rejected() -> None:
    for kind in range(256):
        entries = [b"\x01" + V4_BYTES, bytes([kind]) + V6_BYTES]
        if kind in set(CandidateKind):
            record = check_accepted(raw(addresses=entries))
            assert record.addresses[1] == (CandidateKind(kind), V6)
        else:
            with pytest.raises(DecodeError, match="candidate kind"):
                decode_record(raw(addresses=entries))


def test_every_unknown_address_family_is_rejected() -> None:
    for family in range(256):
        if family in (4, 6):
            continue
        bad = bytes([family]) + bytes(16) + b"\x00\x01"
        for data in (
            raw(addresses=[b"\x01" + bad]),
            raw(addresses=[b"\x01" + V4_BYTES, b"\x03" + bad]),
            raw(relays=[RELAY_KEY + bad]),
        ):
            with pytest.raises(DecodeError, match="address family"):
                decode_record(data)


def test_addresses_over_the_limit_are_rejected() -> None:
    entry = b"\x01" + V6_BYTES
    assert len(check_accepted(raw(addresses=[entry] * MAX_ADDRESSES)).addresses) == MAX_ADDRESSES
    for data in (raw(addresses=[entry] * (MAX_ADDRESSES + 1)), raw(n_addresses=255)):
        assert len(data) <= MAX_RECORD_SIZE  # rejected for the count, not the size
        with pytest.raises(DecodeError, match="addresses exceed"):
            decode_record(data)


def test_relays_over_the_limit_are_rejected() -> None:
    relay = RELAY_KEY + V6_BYTES
    assert len(check_accepted(raw(relays=[relay] * MAX_RELAYS)).relays) == MAX_RELAYS
    for data in (raw(relays=[relay] * (MAX_RELAYS + 1)), raw(n_relays=255)):
        assert len(data) <= MAX_RECORD_SIZE
        with pytest.raises(DecodeError, match="relays exceed"):
            decode_record(data)


@pytest.mark.parametrize("n", [1, 8, 63, 65, 100])
def test_signature_of_the_wrong_length_is_rejected(n: int) -> None:
    with pytest.raises(DecodeError):
        decode_record(raw(tail=bytes(n)))


# -- the encoder refuses what it could not encode ------------------------------------------------
def changed(**changes: object) -> Record:
    return dataclasses.replace(FULL, **changes)  # type: ignore[arg-type]


def fields(**changes: object) -> dict[str, object]:
    return changes


BAD_NUMBERS = [
    "",
    "00491512345",  # 11 digits
    "0049151234567",  # 13 digits
    "00491512345a",
    "+04915123456",
    " 04915123456",
    "04915123456 ",
    "-04915123456",
    "0049 1512345",
    "\u0661" * 12,  # ARABIC-INDIC DIGIT ONE: str.isdigit, not ASCII
    "\uff11" * 12,  # FULLWIDTH DIGIT ONE
    "\u00b2" * 12,  # SUPERSCRIPT TWO: isdigit but not a decimal
]
BAD_ADDRS: list[Addr] = [
    ("192.0.2.1", -1),
    ("192.0.2.1", 65536),
    ("example.com", 1),
    ("", 1),
    ("192.0.2", 1),
    ("2001:db8::g", 1),
]
BAD_FIELDS: list[dict[str, object]] = [
    *(fields(number=n) for n in BAD_NUMBERS),
    *(fields(forward_to=n) for n in BAD_NUMBERS),
    {"public_key": b""},
    {"public_key": KEY[:-1]},
    {"public_key": KEY + b"\x00"},
    {"seq": -1},
    {"seq": 2**64},
    {"ttl_s": 0},
    {"ttl_s": -1},
    {"ttl_s": MAX_TTL_S + 1},
    {"ttl_s": 2**32},
    {"addresses": ((CandidateKind.HOST, V4),) * (MAX_ADDRESSES + 1)},
    {"relays": (Contact(RELAY_KEY, V4),) * (MAX_RELAYS + 1)},
    *(fields(addresses=((CandidateKind.HOST, a),)) for a in BAD_ADDRS),
    *(fields(relays=(Contact(RELAY_KEY, a),)) for a in BAD_ADDRS),
]
"""Fields that neither ``encode`` nor ``signed_bytes`` may accept."""
BAD_SIGNATURES = [b"", SIG[:-1], SIG + b"\x00", SIG * 2]


def check_value_error(make: Callable[[], bytes]) -> None:
    """ValueError from the encoder is a local bug, not remote garbage: never a DecodeError."""
    with pytest.raises(ValueError) as info:
        make()
    assert not isinstance(info.value, DecodeError)


@pytest.mark.parametrize("changes", BAD_FIELDS)
def test_encoder_and_signed_bytes_reject_invalid_fields(changes: dict[str, object]) -> None:
    record = changed(**changes)
    check_value_error(record.encode)
    check_value_error(record.signed_bytes)


@pytest.mark.parametrize("signature", BAD_SIGNATURES)
def test_encoder_rejects_a_signature_of_the_wrong_length(signature: bytes) -> None:
    record = changed(signature=signature)
    check_value_error(record.encode)
    assert record.signed_bytes() == FULL.signed_bytes()  # the signature is not signed


# -- the encoder never writes what its own decoder rejects ----------------------------------
@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_encoder_rejects_a_relay_key_of_the_wrong_length(length: int) -> None:
    with pytest.raises(ValueError):
        changed(relays=(Contact(b"\x01" * length, V4),)).encode()


@pytest.mark.parametrize(
    "changes",
    [
        {"presence": 4},
        {"presence": 255},
        {"addresses": ((0, V4),)},
        {"addresses": ((4, V4),)},
    ],
    ids=["presence-4", "presence-255", "candidate-0", "candidate-4"],
)
def test_encoder_rejects_values_outside_the_enums(changes: dict[str, object]) -> None:
    """An int where an enum is expected (say, read from a config) gets written unchecked."""
    with pytest.raises(ValueError):
        changed(**changes).encode()


# -- properties ------------------------------------------------------------------------------------
def fixed(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size, max_size=size)


def number_string(n: int) -> str:
    return f"{n:012d}"


ports = st.integers(0, 0xFFFF)
addrs = st.one_of(
    st.tuples(st.ip_addresses(v=4).map(str), ports),
    st.tuples(st.ip_addresses(v=6).map(str), ports),
)
numbers = st.one_of(st.integers(0, 10**12 - 1), st.sampled_from([0, 10**12 - 1, 4915123456])).map(
    number_string
)
contacts = st.builds(Contact, fixed(PUBLIC_KEY_SIZE), addrs)
records = st.builds(
    Record,
    number=numbers,
    public_key=fixed(PUBLIC_KEY_SIZE),
    seq=st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 2**64 - 1])),
    ttl_s=st.one_of(st.integers(1, MAX_TTL_S), st.sampled_from([1, MAX_TTL_S])),
    presence=st.sampled_from(Presence),
    addresses=st.lists(
        st.tuples(st.sampled_from(CandidateKind), addrs), max_size=MAX_ADDRESSES
    ).map(tuple),
    relays=st.lists(contacts, max_size=MAX_RELAYS).map(tuple),
    forward_to=st.none() | numbers,
    signature=fixed(SIGNATURE_SIZE),
)


@given(records)
def test_round_trip(record: Record) -> None:
    data = record.encode()
    assert len(data) <= MAX_RECORD_SIZE
    assert data[-SIGNATURE_SIZE:] == record.signature
    assert decode_record(data) == record


@given(records, fixed(SIGNATURE_SIZE))
def test_signed_bytes_exclude_the_signature(record: Record, other: bytes) -> None:
    signed = record.signed_bytes()
    assert signed.startswith(RECORD_SIGNING_CONTEXT)
    assert signed == RECORD_SIGNING_CONTEXT + record.encode()[:-SIGNATURE_SIZE]
    resigned = dataclasses.replace(record, signature=other)
    assert resigned.signed_bytes() == signed
    assert decode_record(resigned.encode()) == resigned


@given(records, records)
def test_signed_bytes_tell_records_apart(a: Record, b: Record) -> None:
    """Two records share signed bytes exactly when they differ in nothing but the signature."""
    same_fields = dataclasses.replace(a, signature=SIG) == dataclasses.replace(b, signature=SIG)
    assert (a.signed_bytes() == b.signed_bytes()) == same_fields


@pytest.mark.parametrize(
    "changes",
    [
        {"number": "004915123457"},
        {"public_key": KEY[:-1] + b"\x00"},
        {"seq": 8},
        {"ttl_s": 3599},
        {"presence": Presence.AWAY},
        {"addresses": ((CandidateKind.HOST, V4),)},
        {"addresses": ((CandidateKind.MAPPED, V4), (CandidateKind.REFLEXIVE, V6))},
        {"addresses": ((CandidateKind.REFLEXIVE, V6), (CandidateKind.HOST, V4))},
        {"addresses": ((CandidateKind.HOST, (V4[0], 5061)), (CandidateKind.REFLEXIVE, V6))},
        {"relays": ()},
        {"relays": (Contact(KEY, RELAY_ADDR),)},
        {"forward_to": None},
        {"forward_to": "000000000043"},
    ],
)
def test_every_field_is_signed(changes: dict[str, object]) -> None:
    assert changed(**changes).signed_bytes() != FULL.signed_bytes()


def check_total(data: bytes) -> None:
    """The parser's contract: a record that re-encodes to exactly ``data``, or DecodeError."""
    try:
        record = decode_record(data)
    except DecodeError:
        return
    assert len(data) <= MAX_RECORD_SIZE
    assert record.encode() == data  # canonical: nothing ignored, nothing invented
    assert record.signed_bytes() == RECORD_SIGNING_CONTEXT + data[:-SIGNATURE_SIZE]


@given(st.binary(max_size=MAX_RECORD_SIZE + 16))
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


plausible_starts = st.builds(
    raw,
    number=st.integers(0, 10**12 + 5),
    seq=st.integers(0, 2**64 - 1),
    ttl=st.one_of(st.integers(0, MAX_TTL_S + 2), st.integers(0, 2**32 - 1)),
    presence=st.integers(0, 5),
    flags=st.sampled_from([0, 0, 1, 1, 2, 0xFF]),
    tail=st.just(b""),
).map(lambda data: data[:-2])  # cut the two empty counts: random bytes take their place


@given(plausible_starts, st.binary(max_size=400))
def test_random_bodies_behind_plausible_fields(start: bytes, rest: bytes) -> None:
    """Random bytes after a mostly valid start reach the forward, address and relay checks."""
    check_total(start + rest)


@given(records.map(Record.encode).flatmap(mutations))
def test_mutated_records_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


@given(st.sampled_from([d for _, d in VECTORS]).flatmap(changed_mutations))
def test_mutated_vectors_decode_or_raise_decode_error(data: bytes) -> None:
    check_total(data)


def with_changed_mutation(original: bytes) -> st.SearchStrategy[tuple[bytes, bytes]]:
    return st.tuples(st.just(original), changed_mutations(original))


@given(records.map(Record.encode).flatmap(with_changed_mutation))
def test_changed_records_never_decode_to_the_original(pair: tuple[bytes, bytes]) -> None:
    """Canonical encoding, seen from the other side: no other bytes give the same record."""
    original, data = pair
    check_total(data)
    try:
        record = decode_record(data)
    except DecodeError:
        return
    assert record != decode_record(original)
