"""The short authentication string read aloud during a call (docs/protocol.md §2.4)."""

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerline.proto.identity import short_authentication_string

SAS_SHAPE = re.compile(r"[0-9]{3} [0-9]{3}")


@pytest.mark.parametrize(
    ("handshake_hash", "sas"),
    [
        (bytes(64), "400 428"),
        (bytes(range(64)), "675 350"),
    ],
)
def test_sas_matches_pinned_vectors(handshake_hash: bytes, sas: str) -> None:
    assert short_authentication_string(handshake_hash) == sas


def test_sas_is_reduced_from_a_personalised_blake2b_digest() -> None:
    h = bytes(range(64))
    digest = hashlib.blake2b(h, digest_size=8, person=b"peerline-sas").digest()
    expected = f"{int.from_bytes(digest, 'big') % 10**6:06d}"
    assert short_authentication_string(h).replace(" ", "") == expected
    unpersonalised = hashlib.blake2b(h, digest_size=8).digest()
    assert f"{int.from_bytes(unpersonalised, 'big') % 10**6:06d}" != expected


@given(handshake_hash=st.binary(min_size=64, max_size=64))
def test_sas_is_six_digits_in_two_groups_and_the_same_on_both_phones(
    handshake_hash: bytes,
) -> None:
    sas = short_authentication_string(handshake_hash)
    assert SAS_SHAPE.fullmatch(sas)
    assert short_authentication_string(bytes(handshake_hash)) == sas


def test_sas_differs_when_the_handshake_hash_differs() -> None:
    h = bytearray(64)
    first = short_authentication_string(bytes(h))
    h[63] ^= 1
    assert short_authentication_string(bytes(h)) != first


@given(handshake_hash=st.binary(max_size=128).filter(lambda b: len(b) != 64))
def test_sas_rejects_a_hash_that_is_not_64_bytes(handshake_hash: bytes) -> None:
    with pytest.raises(ValueError, match="64-byte"):
        short_authentication_string(handshake_hash)


def test_sas_rejects_a_hash_given_as_text() -> None:
    with pytest.raises(ValueError, match="64-byte"):
        short_authentication_string("00" * 32)  # type: ignore[arg-type]
