"""The short authentication strings read aloud: the connection's (docs/protocol.md §2.4) and a
call's, with the commitment to the callee's nonce (§2.6)."""

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerline.proto.identity import short_authentication_string
from peerline.proto.identity.sas import (
    CALL_ID_SIZE,
    SAS_COMMITMENT_SIZE,
    SAS_NONCE_SIZE,
    call_sas,
    sas_commitment,
)
from peerline.wire import call as wire_call

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


# -- the call SAS and its commitment (§2.6) -----------------------------------------------------
H = bytes(range(64))
CID = bytes(range(1, 9))
N_I = bytes(range(0x10, 0x20))
N_R = bytes(range(0x20, 0x30))


def test_sizes_match_the_wire() -> None:
    assert (SAS_NONCE_SIZE, SAS_COMMITMENT_SIZE) == (16, 32)
    assert wire_call.SAS_NONCE_SIZE == SAS_NONCE_SIZE
    assert wire_call.SAS_COMMITMENT_SIZE == SAS_COMMITMENT_SIZE
    assert CALL_ID_SIZE == wire_call.CALL_ID_SIZE == len(CID)


@pytest.mark.parametrize(
    ("nonce", "commitment"),
    [
        (bytes(16), "9fdfeb9b616433ebaee559540fa81717f0575d13b148c1033665fe4a572b1c02"),
        (bytes(range(16)), "4d2994bf067a32ffe89a12745d379fe3d74f9b1157030222d40955385dd349d8"),
        (N_R, "1612b5f895bafb1eff749804d0a4fc5db1e14781f91c7464f783ea12a6253ea8"),
    ],
)
def test_commitment_matches_pinned_vectors(nonce: bytes, commitment: str) -> None:
    assert sas_commitment(nonce).hex() == commitment
    assert sas_commitment(bytearray(nonce)).hex() == commitment


def test_commitment_is_a_personalised_blake2b_256() -> None:
    expected = hashlib.blake2b(N_R, digest_size=32, person=b"peerline-sascmt").digest()
    assert sas_commitment(N_R) == expected
    assert hashlib.blake2b(N_R, digest_size=32).digest() != expected


@given(a=st.binary(min_size=16, max_size=16), b=st.binary(min_size=16, max_size=16))
def test_commitment_differs_for_different_nonces(a: bytes, b: bytes) -> None:
    assert len(sas_commitment(a)) == SAS_COMMITMENT_SIZE
    assert (sas_commitment(a) == sas_commitment(b)) == (a == b)


@given(nonce=st.binary(max_size=40).filter(lambda b: len(b) != 16))
def test_commitment_rejects_a_nonce_that_is_not_16_bytes(nonce: bytes) -> None:
    with pytest.raises(ValueError, match="nonce must be 16 bytes"):
        sas_commitment(nonce)


@pytest.mark.parametrize(
    ("connection_hash", "call_id", "n_i", "n_r", "sas"),
    [
        (bytes(64), bytes(8), bytes(16), bytes(16), "543 737"),
        (H, CID, N_I, N_R, "243 233"),
        (H, CID, N_R, N_I, "093 909"),  # the two nonces swapped: their order counts
    ],
)
def test_call_sas_matches_pinned_vectors(
    connection_hash: bytes, call_id: bytes, n_i: bytes, n_r: bytes, sas: str
) -> None:
    assert call_sas(connection_hash, call_id, n_i, n_r) == sas


def test_call_sas_is_reduced_from_a_personalised_blake2b_digest() -> None:
    digest = hashlib.blake2b(H + CID + N_I + N_R, digest_size=8, person=b"peerline-callsas")
    assert digest.hexdigest() == "5d2bf82639c0dee1"
    expected = f"{int.from_bytes(digest.digest(), 'big') % 10**6:06d}"
    assert call_sas(H, CID, N_I, N_R).replace(" ", "") == expected == "243233"
    assert call_sas(H, CID, N_I, N_R) != short_authentication_string(H)


@given(
    connection_hash=st.binary(min_size=64, max_size=64),
    call_id=st.binary(min_size=8, max_size=8),
    n_i=st.binary(min_size=16, max_size=16),
    n_r=st.binary(min_size=16, max_size=16),
)
def test_call_sas_is_six_digits_in_two_groups(
    connection_hash: bytes, call_id: bytes, n_i: bytes, n_r: bytes
) -> None:
    sas = call_sas(connection_hash, call_id, n_i, n_r)
    assert SAS_SHAPE.fullmatch(sas)
    assert call_sas(bytearray(connection_hash), call_id, n_i, n_r) == sas


@pytest.mark.parametrize("which", range(4))
@pytest.mark.parametrize("byte", [0, -1])
def test_changing_any_input_changes_the_call_sas(which: int, byte: int) -> None:
    """The SAS binds the connection, the call and both nonces: flip one bit of any of them and
    the digits change (for this sample; in general with chance 1 - 10**-6)."""
    inputs = [bytearray(H), bytearray(CID), bytearray(N_I), bytearray(N_R)]
    before = call_sas(*map(bytes, inputs))
    inputs[which][byte] ^= 1
    assert call_sas(*map(bytes, inputs)) != before


@pytest.mark.parametrize(
    ("which", "size", "name"),
    [
        (0, 64, "connection_hash"),
        (1, 8, "call_id"),
        (2, 16, "caller_nonce"),
        (3, 16, "callee_nonce"),
    ],
)
@pytest.mark.parametrize("delta", [-1, 1])
def test_call_sas_rejects_wrong_lengths(which: int, size: int, name: str, delta: int) -> None:
    inputs = [H, CID, N_I, N_R]
    assert len(inputs[which]) == size
    inputs[which] = bytes(size + delta)
    with pytest.raises(ValueError, match=f"{name} must be {size} bytes"):
        call_sas(*inputs)


def test_call_sas_rejects_text() -> None:
    with pytest.raises(ValueError, match="connection_hash"):
        call_sas("00" * 32, CID, N_I, N_R)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nonce"):
        sas_commitment("0" * 16)  # type: ignore[arg-type]
