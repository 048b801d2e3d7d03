"""Signing and checking directory records (proto.overlay.records): signature, binding, bounds.

The number binding is a cheap stand-in (BLAKE2b of the key) everywhere but in one test, which
runs the real argon2id ``derive_number`` once (~70 ms).
"""

import dataclasses
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzing import changed_mutations  # type: ignore[import-not-found, unused-ignore]
from peerline.proto.identity import Identity, derive_number
from peerline.proto.overlay.records import SyncBinding, Verdict, check_record, sign_record
from peerline.wire.overlay import MAX_RECORD_SIZE, Contact
from peerline.wire.record import (
    RECORD_SIGNING_CONTEXT,
    SIGNATURE_SIZE,
    CandidateKind,
    Presence,
    Record,
)

ALICE = Identity.from_seed(bytes([1]) * 32)
BOB = Identity.from_seed(bytes([2]) * 32)


def cheap_number(public_key: bytes) -> str:
    """A stand-in for argon2id: 12 digits from BLAKE2b of the key."""
    value = int.from_bytes(hashlib.blake2b(public_key, digest_size=8).digest(), "big")
    return f"{value % 10**12:012d}"


class Pending:
    """A binding whose derivation never finishes."""

    def number_of(self, public_key: bytes, *, urgent: bool = False) -> str | None:
        return None


def record_of(identity: Identity, **fields: object) -> Record:
    base = Record(
        number=cheap_number(identity.public_key),
        public_key=identity.public_key,
        seq=5,
        ttl_s=3600,
        presence=Presence.BUSY,
        addresses=((CandidateKind.HOST, ("192.168.1.20", 4433)),),
        relays=(Contact(BOB.public_key, ("100.64.1.1", 4433)),),
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


SIGNED = sign_record(ALICE, record_of(ALICE))
RAW = SIGNED.encode()
SIGNATURE_AT = len(RAW) - SIGNATURE_SIZE


def test_signed_record_checks_valid() -> None:
    verdict, record = check_record(RAW, SyncBinding(cheap_number))
    assert verdict is Verdict.VALID
    assert record == SIGNED


def test_signature_covers_the_context_and_the_fields() -> None:
    unsigned = record_of(ALICE)
    assert SIGNED.signature == ALICE.sign(unsigned.signed_bytes())
    assert unsigned.signed_bytes().startswith(RECORD_SIGNING_CONTEXT)
    assert dataclasses.replace(SIGNED, signature=unsigned.signature) == unsigned


def test_signing_is_deterministic_and_ignores_an_old_signature() -> None:
    resigned = sign_record(ALICE, dataclasses.replace(SIGNED, signature=b"\x55" * 64))
    assert resigned == SIGNED


def test_only_the_carried_key_may_sign() -> None:
    with pytest.raises(ValueError, match="signed by the key it carries"):
        sign_record(BOB, record_of(ALICE))


@pytest.mark.parametrize("i", range(len(RAW)))
def test_any_flipped_byte_is_rejected(i: int) -> None:
    forged = bytearray(RAW)
    forged[i] ^= 0x01
    verdict, _ = check_record(bytes(forged), SyncBinding(cheap_number))
    assert verdict in (Verdict.MALFORMED, Verdict.BAD_SIGNATURE)
    if i >= SIGNATURE_AT or 9 <= i < 49:  # signature, key, seq: still decodes
        assert verdict is Verdict.BAD_SIGNATURE


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 6},
        {"ttl_s": 60},
        {"presence": Presence.AWAY},
        {"addresses": ()},
        {"relays": ()},
        {"forward_to": "000000000042"},
        {"number": "000000000001"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_a_changed_field_breaks_the_signature(change: dict[str, object]) -> None:
    forged = dataclasses.replace(SIGNED, **change)  # type: ignore[arg-type]
    verdict, record = check_record(forged.encode(), SyncBinding(cheap_number))
    assert verdict is Verdict.BAD_SIGNATURE
    assert record == forged


def test_key_swapped_for_another_is_a_bad_signature() -> None:
    forged = dataclasses.replace(SIGNED, public_key=BOB.public_key)
    verdict, _ = check_record(forged.encode(), SyncBinding(cheap_number))
    assert verdict is Verdict.BAD_SIGNATURE


def test_record_for_a_number_the_key_does_not_derive_to_is_wrong_number() -> None:
    claimed = "000000000001"
    assert claimed != cheap_number(ALICE.public_key)
    record = sign_record(ALICE, record_of(ALICE, number=claimed))
    verdict, got = check_record(record.encode(), SyncBinding(cheap_number))
    assert verdict is Verdict.WRONG_NUMBER
    assert got == record


def test_bobs_number_signed_by_alice_is_wrong_number() -> None:
    record = sign_record(ALICE, record_of(ALICE, number=cheap_number(BOB.public_key)))
    assert check_record(record.encode(), SyncBinding(cheap_number))[0] is Verdict.WRONG_NUMBER


def test_pending_binding_gives_pending_with_the_record() -> None:
    verdict, record = check_record(RAW, Pending())
    assert verdict is Verdict.PENDING
    assert record == SIGNED


def test_bad_signature_is_found_before_asking_the_binding() -> None:
    forged = bytearray(RAW)
    forged[-1] ^= 0x80
    binding = SyncBinding(cheap_number)
    assert check_record(bytes(forged), binding)[0] is Verdict.BAD_SIGNATURE
    assert binding.derivations == 0


@pytest.mark.parametrize(
    "junk",
    [b"", b"\x01", b"\x02" + RAW[1:], RAW[:-1], RAW + b"\x00", bytes(100), b"\xff" * 200],
    ids=["empty", "one byte", "version 2", "truncated", "trailing", "zeros", "ones"],
)
def test_junk_is_malformed(junk: bytes) -> None:
    binding = SyncBinding(cheap_number)
    assert check_record(junk, binding) == (Verdict.MALFORMED, None)
    assert binding.derivations == 0


@pytest.mark.parametrize("size", [MAX_RECORD_SIZE + 1, MAX_RECORD_SIZE + 100, 65535])
def test_oversize_input_is_malformed(size: int) -> None:
    assert check_record(RAW + bytes(size - len(RAW)), SyncBinding(cheap_number)) == (
        Verdict.MALFORMED,
        None,
    )


def test_largest_record_fits_and_checks_valid() -> None:
    v6 = ("2a00:1450:4001:81c::200e", 65535)
    big = record_of(
        ALICE,
        addresses=tuple((CandidateKind.MAPPED, v6) for _ in range(8)),
        relays=tuple(Contact(bytes([i]) * 32, v6) for i in range(4)),
        forward_to="999999999999",
    )
    raw = sign_record(ALICE, big).encode()
    assert len(raw) <= MAX_RECORD_SIZE
    assert check_record(raw, SyncBinding(cheap_number))[0] is Verdict.VALID


@settings(max_examples=300)
@given(st.just(RAW).flatmap(changed_mutations))
def test_a_mutated_record_is_never_valid_and_never_raises(data: bytes) -> None:
    verdict, record = check_record(data, SyncBinding(cheap_number))
    assert verdict is not Verdict.VALID
    assert (record is None) == (verdict is Verdict.MALFORMED)


@given(st.binary(max_size=MAX_RECORD_SIZE + 8))
def test_random_bytes_never_raise(data: bytes) -> None:
    verdict, record = check_record(data, SyncBinding(cheap_number))
    assert verdict in (Verdict.MALFORMED, Verdict.BAD_SIGNATURE)
    assert (record is None) == (verdict is Verdict.MALFORMED)


@given(st.integers(4, 255), st.integers(0, 2**64 - 1), st.integers(1, 7200))
def test_any_identity_signs_records_that_check_valid(seed: int, seq: int, ttl: int) -> None:
    me = Identity.from_seed(bytes([seed]) * 32)
    record = sign_record(me, record_of(me, seq=seq, ttl_s=ttl))
    assert check_record(record.encode(), SyncBinding(cheap_number)) == (Verdict.VALID, record)


# -- SyncBinding ---------------------------------------------------------------------------------
def test_sync_binding_derives_each_key_once() -> None:
    binding = SyncBinding(cheap_number)
    for _ in range(3):
        assert binding.number_of(ALICE.public_key) == cheap_number(ALICE.public_key)
    assert binding.derivations == 1
    binding.number_of(BOB.public_key)
    assert binding.derivations == 2


def test_sync_binding_forgets_beyond_its_capacity() -> None:
    binding = SyncBinding(cheap_number, capacity=2)
    keys = [bytes([i]) * 32 for i in range(3)]
    for key in keys:
        binding.number_of(key)
    assert len(binding._cache) == 2
    binding.number_of(keys[0])  # evicted: derived again
    assert binding.derivations == 4


# -- the real derivation ---------------------------------------------------------------------------
def test_record_checks_with_the_real_argon2id_binding() -> None:
    binding = SyncBinding(derive_number)
    number = binding.number_of(ALICE.public_key)  # the one argon2id run of this file
    assert number is not None
    record = sign_record(ALICE, record_of(ALICE, number=number))
    assert check_record(record.encode(), binding) == (Verdict.VALID, record)
    wrong = sign_record(ALICE, record_of(ALICE, number=cheap_number(ALICE.public_key)))
    assert check_record(wrong.encode(), binding)[0] is Verdict.WRONG_NUMBER
    assert binding.derivations == 1
