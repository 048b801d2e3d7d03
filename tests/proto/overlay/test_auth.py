"""Overlay pair keys and MACs (proto.overlay.auth): static-static X25519, cached in an LRU."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerline.proto.identity import Identity
from peerline.proto.overlay.auth import MAC_SIZE, PairKeys, mac

ALICE = Identity.from_seed(bytes([1]) * 32)
BOB = Identity.from_seed(bytes([2]) * 32)
CAROL = Identity.from_seed(bytes([3]) * 32)

# Ed25519 encodings no pair key may come from: small-order points (RFC 8032 §5.1.3 encodings of
# the identity, the point of order 2 and others), non-points and wrong lengths.
BAD_KEYS = [
    bytes(32),  # y = 0: a point of order 4
    b"\x01" + bytes(31),  # the identity point (0, 1)
    b"\xec" + b"\xff" * 30 + b"\x7f",  # y = -1: order 2
    b"\xed" + b"\xff" * 30 + b"\x7f",  # y = p: non-canonical
    b"\xff" * 32,
    b"\x02" + bytes(31),  # y = 2: not on the curve
    bytes(31),
    bytes(33),
    b"",
]


def pairs(identity: Identity, capacity: int = 4096) -> PairKeys:
    return PairKeys(
        x25519_private=identity.x25519_private,
        public_key=identity.public_key,
        capacity=capacity,
    )


def test_both_sides_derive_the_same_pair_key() -> None:
    ab = pairs(ALICE).key_for(BOB.public_key)
    ba = pairs(BOB).key_for(ALICE.public_key)
    assert ab is not None and len(ab) == 32
    assert ab == ba


def test_different_pairs_have_different_keys() -> None:
    keys = {
        pairs(ALICE).key_for(BOB.public_key),
        pairs(ALICE).key_for(CAROL.public_key),
        pairs(BOB).key_for(CAROL.public_key),
    }
    assert None not in keys
    assert len(keys) == 3


@given(st.integers(4, 255), st.integers(4, 255))
def test_any_two_identities_agree_on_their_pair_key(a: int, b: int) -> None:
    x, y = Identity.from_seed(bytes([a]) * 32), Identity.from_seed(bytes([b]) * 32)
    assert pairs(x).key_for(y.public_key) == pairs(y).key_for(x.public_key)


@pytest.mark.parametrize("bad", BAD_KEYS, ids=lambda b: b.hex()[:8] + f"/{len(b)}")
def test_unusable_key_gives_none_and_is_not_cached(bad: bytes) -> None:
    p = pairs(ALICE)
    assert p.key_for(bad) is None
    assert not p.cached(bad)
    assert p.derived == 0


@given(st.binary(min_size=32, max_size=32))
def test_any_32_bytes_give_a_key_or_none_without_raising(key: bytes) -> None:
    p = pairs(ALICE)
    got = p.key_for(key)
    assert got is None or (len(got) == 32 and p.key_for(key) == got)


def test_cache_hit_does_not_derive_again() -> None:
    p = pairs(ALICE)
    first = p.key_for(BOB.public_key)
    assert p.cached(BOB.public_key) and p.derived == 1
    assert p.key_for(BOB.public_key) == first
    assert p.derived == 1


def test_cache_keeps_at_most_capacity_least_recently_used_first_out() -> None:
    p = pairs(ALICE, capacity=2)
    assert p.key_for(BOB.public_key) is not None
    assert p.key_for(CAROL.public_key) is not None
    assert p.key_for(BOB.public_key) is not None  # touch Bob: Carol is now the oldest
    dave = Identity.from_seed(bytes([4]) * 32)
    assert p.key_for(dave.public_key) is not None
    assert p.cached(BOB.public_key) and p.cached(dave.public_key)
    assert not p.cached(CAROL.public_key)
    assert p.derived == 3
    assert p.key_for(CAROL.public_key) == pairs(CAROL).key_for(ALICE.public_key)
    assert p.derived == 4
    assert not p.cached(BOB.public_key)


@given(st.lists(st.integers(10, 40), max_size=30), st.integers(1, 5))
def test_cache_never_exceeds_its_capacity(seeds: list[int], capacity: int) -> None:
    p = pairs(ALICE, capacity=capacity)
    for s in seeds:
        p.key_for(Identity.from_seed(bytes([s]) * 32).public_key)
        assert len(p._cache) <= capacity
    assert p.derived >= len(set(seeds))


def test_mac_is_16_bytes_and_keyed() -> None:
    key = pairs(ALICE).key_for(BOB.public_key)
    other = pairs(ALICE).key_for(CAROL.public_key)
    assert key is not None and other is not None
    assert MAC_SIZE == 16
    assert len(mac(key, b"message")) == MAC_SIZE
    assert mac(key, b"message") == mac(key, b"message")
    assert mac(key, b"message") != mac(other, b"message")


@given(st.binary(min_size=1, max_size=200), st.data())
def test_mac_changes_when_any_byte_is_flipped(data: bytes, draw: st.DataObject) -> None:
    key = bytes(range(32))
    i = draw.draw(st.integers(0, len(data) - 1))
    flip = draw.draw(st.integers(1, 255))
    forged = bytearray(data)
    forged[i] ^= flip
    assert mac(key, bytes(forged)) != mac(key, data)


@pytest.mark.parametrize("i", range(32))
def test_mac_changes_when_any_key_byte_is_flipped(i: int) -> None:
    key = bytearray(range(32))
    before = mac(bytes(key), b"overlay message")
    key[i] ^= 0x01
    assert mac(bytes(key), b"overlay message") != before


def test_mac_of_a_truncated_or_extended_message_differs() -> None:
    key = bytes(32)
    assert mac(key, b"abc") != mac(key, b"ab")
    assert mac(key, b"abc") != mac(key, b"abc\x00")
