"""Node ids and record keys (proto.overlay.ids): sizes, determinism and the XOR metric."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerline.proto.identity import Identity
from peerline.proto.overlay.ids import (
    ID_BITS,
    ID_SIZE,
    as_int,
    distance,
    node_id,
    random_id_in_bucket,
    record_key,
)
from peerline.proto.overlay.routing import RoutingTable

ids = st.binary(min_size=ID_SIZE, max_size=ID_SIZE)
keys = st.binary(min_size=32, max_size=32)
numbers = st.text(alphabet="0123456789", min_size=12, max_size=12)


def test_constants() -> None:
    assert (ID_SIZE, ID_BITS) == (20, 160)


def test_node_id_of_a_real_key_is_20_bytes_and_stable() -> None:
    me = Identity.from_seed(bytes([1]) * 32)
    assert len(node_id(me.public_key)) == ID_SIZE
    assert node_id(me.public_key) == node_id(Identity.from_seed(bytes([1]) * 32).public_key)
    assert node_id(me.public_key) != node_id(Identity.from_seed(bytes([2]) * 32).public_key)


@given(keys)
def test_node_id_is_deterministic_and_20_bytes(key: bytes) -> None:
    assert len(node_id(key)) == ID_SIZE
    assert node_id(key) == node_id(bytes(key))


@given(keys, keys)
def test_different_keys_give_different_node_ids(a: bytes, b: bytes) -> None:
    assert (node_id(a) == node_id(b)) == (a == b)


@given(numbers)
def test_record_key_is_deterministic_and_20_bytes(number: str) -> None:
    assert len(record_key(number)) == ID_SIZE
    assert record_key(number) == record_key(str(number))


@given(numbers, numbers)
def test_different_numbers_give_different_record_keys(a: str, b: str) -> None:
    assert (record_key(a) == record_key(b)) == (a == b)


def test_node_ids_and_record_keys_are_domain_separated() -> None:
    text = "004915123456"
    assert node_id(text.encode("ascii")) != record_key(text)


@given(ids)
def test_as_int_is_big_endian_and_lossless(a: bytes) -> None:
    assert as_int(a).to_bytes(ID_SIZE, "big") == a
    assert as_int(a) < 2**ID_BITS


@given(ids, ids)
def test_distance_is_symmetric(a: bytes, b: bytes) -> None:
    assert distance(a, b) == distance(b, a)


@given(ids, ids)
def test_distance_is_zero_exactly_for_the_same_id(a: bytes, b: bytes) -> None:
    assert distance(a, a) == 0
    assert (distance(a, b) == 0) == (a == b)
    assert 0 <= distance(a, b) < 2**ID_BITS


@given(ids, ids, ids)
def test_distance_composes_by_xor_and_obeys_the_triangle_inequality(
    a: bytes, b: bytes, c: bytes
) -> None:
    assert distance(a, c) == distance(a, b) ^ distance(b, c)
    assert distance(a, c) <= distance(a, b) + distance(b, c)


@given(ids, ids, ids)
def test_distance_is_unidirectional(a: bytes, b: bytes, c: bytes) -> None:
    """For a given point and distance there is exactly one other point (Kademlia §2.1)."""
    if distance(a, b) == distance(a, c):
        assert b == c


@pytest.mark.parametrize("index", range(ID_BITS))
def test_random_id_in_bucket_lands_in_every_bucket(index: int) -> None:
    own = bytes(range(ID_SIZE))
    for fill in (bytes(ID_SIZE), b"\xff" * ID_SIZE, bytes(range(100, 100 + ID_SIZE))):
        ident = random_id_in_bucket(own, index, fill)
        assert len(ident) == ID_SIZE
        assert distance(own, ident).bit_length() - 1 == index
        assert RoutingTable(own, k=8).bucket_index(as_int(ident)) == index


@given(ids, st.integers(0, ID_BITS - 1), ids)
def test_random_id_in_bucket_takes_its_low_bits_from_the_random_bytes(
    own: bytes, index: int, fill: bytes
) -> None:
    ident = random_id_in_bucket(own, index, fill)
    d = distance(own, ident)
    assert d.bit_length() - 1 == index
    assert d & ((1 << index) - 1) == as_int(fill) & ((1 << index) - 1)
    assert random_id_in_bucket(own, index, fill) == ident
