"""Identity keys: Ed25519 signing and the derived X25519 pair (docs/protocol.md §2.1, §2.2)."""

import copy
import hashlib
import pickle

import nacl.bindings
import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerline.errors import InvalidKey
from peerline.proto.identity import (
    Identity,
    verify_signature,
    x25519_public_from_ed25519,
)
from peerline.sim.rng import SeededRng

# RFC 8032 §7.1, TEST 1 (empty message).
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)

SMALL_ORDER_POINTS = [
    bytes(32),  # y = 0: order 4
    b"\x01" + bytes(31),  # the neutral element
    b"\xec" + b"\xff" * 30 + b"\x7f",  # y = -1: order 2
]


# On the curve but outside the prime-order subgroup: a real key plus the order-2 point.
MIXED_ORDER_POINT = nacl.bindings.crypto_core_ed25519_add(
    Identity.from_seed(bytes(range(32))).public_key, SMALL_ORDER_POINTS[2]
)


def alice() -> Identity:
    return Identity.from_seed(bytes(range(32)))


def bob() -> Identity:
    return Identity.from_seed(bytes(range(32, 64)))


def test_identity_from_rfc8032_seed_has_the_published_public_key() -> None:
    assert Identity.from_seed(RFC8032_SEED).public_key == RFC8032_PUBLIC


def test_sign_produces_the_rfc8032_signature() -> None:
    signature = Identity.from_seed(RFC8032_SEED).sign(b"")
    assert signature == RFC8032_SIGNATURE
    assert verify_signature(RFC8032_PUBLIC, b"", signature)


@given(message=st.binary(max_size=512))
def test_verify_signature_accepts_what_sign_produced(message: bytes) -> None:
    me = alice()
    signature = me.sign(message)
    assert len(signature) == 64
    assert verify_signature(me.public_key, message, signature)


def test_verify_signature_rejects_another_message() -> None:
    me = alice()
    assert not verify_signature(me.public_key, b"call bob", me.sign(b"call alice"))


def test_verify_signature_rejects_another_signer() -> None:
    assert not verify_signature(bob().public_key, b"record", alice().sign(b"record"))


@pytest.mark.parametrize("bit", [0, 7, 255, 256, 511])
def test_verify_signature_rejects_any_flipped_signature_bit(bit: int) -> None:
    me = alice()
    signature = bytearray(me.sign(b"record"))
    signature[bit // 8] ^= 1 << (bit % 8)
    assert not verify_signature(me.public_key, b"record", bytes(signature))


@pytest.mark.parametrize(
    ("public_key", "message", "signature"),
    [
        (RFC8032_PUBLIC[:31], b"", RFC8032_SIGNATURE),
        (RFC8032_PUBLIC + b"\x00", b"", RFC8032_SIGNATURE),
        (RFC8032_PUBLIC, b"", RFC8032_SIGNATURE[:63]),
        (RFC8032_PUBLIC, b"", RFC8032_SIGNATURE + b"\x00"),
        (RFC8032_PUBLIC.hex(), b"", RFC8032_SIGNATURE),
        (None, b"", RFC8032_SIGNATURE),
        (RFC8032_PUBLIC, "", RFC8032_SIGNATURE),
        (RFC8032_PUBLIC, b"", None),
        (bytes(32), b"", bytes(64)),
        (b"\xff" * 32, b"", RFC8032_SIGNATURE),
    ],
)
def test_verify_signature_returns_false_for_malformed_input(
    public_key: object, message: object, signature: object
) -> None:
    assert verify_signature(public_key, message, signature) is False  # type: ignore[arg-type]


@given(public_key=st.binary(), message=st.binary(max_size=64), signature=st.binary())
def test_verify_signature_never_raises_on_arbitrary_bytes(
    public_key: bytes, message: bytes, signature: bytes
) -> None:
    assert verify_signature(public_key, message, signature) in (True, False)


def test_x25519_dh_between_two_identities_agrees_both_ways() -> None:
    a, b = alice(), bob()
    a_to_b = nacl.bindings.crypto_scalarmult(a.x25519_private, b.x25519_public)
    b_to_a = nacl.bindings.crypto_scalarmult(b.x25519_private, a.x25519_public)
    assert a_to_b == b_to_a
    assert a_to_b != bytes(32)


def test_x25519_keys_are_the_rfc8032_scalar_and_rfc7748_map_of_the_ed25519_keys() -> None:
    """Spec §2: private = clamped SHA-512(seed)[:32]; public u = (1 + y) / (1 - y) mod p."""
    me = Identity.from_seed(RFC8032_SEED)
    scalar = bytearray(hashlib.sha512(RFC8032_SEED).digest()[:32])
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    assert me.x25519_private == bytes(scalar)
    p = 2**255 - 19
    y = int.from_bytes(RFC8032_PUBLIC, "little") & ((1 << 255) - 1)
    u = (1 + y) * pow(1 - y, -1, p) % p
    assert me.x25519_public == u.to_bytes(32, "little")
    assert me.x25519_public.hex() == (
        "d85e07ec22b0ad881537c2f44d662d1a143cf830c57aca4305d85c7a90f6b62e"
    )


def test_x25519_public_is_the_base_point_times_x25519_private() -> None:
    me = alice()
    assert nacl.bindings.crypto_scalarmult_base(me.x25519_private) == me.x25519_public


def test_x25519_public_from_ed25519_matches_the_identity_own_derivation() -> None:
    me = alice()
    assert x25519_public_from_ed25519(me.public_key) == me.x25519_public


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_x25519_public_from_ed25519_rejects_wrong_length(size: int) -> None:
    with pytest.raises(InvalidKey):
        x25519_public_from_ed25519(bytes(size))


@pytest.mark.parametrize("point", [*SMALL_ORDER_POINTS, MIXED_ORDER_POINT, b"\xff" * 32])
def test_x25519_public_from_ed25519_rejects_points_libsodium_refuses(point: bytes) -> None:
    with pytest.raises(InvalidKey):
        x25519_public_from_ed25519(point)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_from_seed_rejects_a_seed_that_is_not_32_bytes(size: int) -> None:
    with pytest.raises(InvalidKey):
        Identity.from_seed(bytes(size))


def test_from_seed_rejects_a_seed_that_is_not_bytes() -> None:
    with pytest.raises(InvalidKey):
        Identity.from_seed(RFC8032_SEED.hex())  # type: ignore[arg-type]


def test_generate_takes_its_seed_from_the_rng() -> None:
    first = Identity.generate(SeededRng(7))
    assert first == Identity.generate(SeededRng(7))
    assert first.seed == SeededRng(7).random_bytes(32)
    assert first != Identity.generate(SeededRng(8))


def test_identity_from_the_same_seed_is_equal_and_hashes_equal() -> None:
    assert alice() == alice()
    assert hash(alice()) == hash(alice())
    assert alice() != bob()


def test_identity_repr_and_str_show_no_private_material() -> None:
    me = alice()
    secrets = [me.seed.hex(), me.x25519_private.hex(), me.seed.hex().upper()]
    for text in (repr(me), str(me), f"{me}", f"{me!r}"):
        assert me.public_key.hex() in text
        for secret in secrets:
            assert secret not in text


def test_identity_is_immutable() -> None:
    me = alice()
    with pytest.raises(AttributeError):
        me.public_key = bytes(32)
    with pytest.raises(AttributeError):
        del me.x25519_private
    with pytest.raises(AttributeError):
        me.extra = 1
    assert not hasattr(me, "__dict__")


def test_identity_copies_are_itself_and_pickling_is_refused() -> None:
    me = alice()
    assert copy.copy(me) is me
    assert copy.deepcopy(me) is me
    with pytest.raises(TypeError):
        pickle.dumps(me)
