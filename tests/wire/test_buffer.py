"""Buffer: the one bounded reader every parser goes through."""

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerline.errors import DecodeError
from peerline.wire.buffer import Buffer

PULLS: dict[str, tuple[int, Callable[[Buffer], int]]] = {
    "u8": (1, lambda b: b.pull_u8()),
    "u16": (2, lambda b: b.pull_u16()),
    "u32": (4, lambda b: b.pull_u32()),
    "u64": (8, lambda b: b.pull_u64()),
}


@pytest.mark.parametrize("name", PULLS)
def test_integer_pulls_past_the_end_raise_and_consume_nothing(name: str) -> None:
    size, pull = PULLS[name]
    for n in range(size):
        buf = Buffer(bytes(range(1, n + 1)))
        with pytest.raises(DecodeError):
            pull(buf)
        assert buf.remaining == n


@pytest.mark.parametrize("name", PULLS)
def test_integer_pulls_are_big_endian(name: str) -> None:
    size, pull = PULLS[name]
    data = bytes(range(1, size + 1))
    buf = Buffer(data + b"\xff")
    assert pull(buf) == int.from_bytes(data, "big")
    assert buf.remaining == 1


def test_pull_bytes_past_the_end_raises() -> None:
    buf = Buffer(b"abc")
    with pytest.raises(DecodeError, match="need 4 bytes, 3 left"):
        buf.pull_bytes(4)
    assert buf.pull_bytes(3) == b"abc"
    with pytest.raises(DecodeError):
        buf.pull_bytes(1)
    with pytest.raises(DecodeError):
        buf.pull_u8()
    assert buf.pull_bytes(0) == b"" and buf.pull_rest() == b""


@pytest.mark.parametrize("n", [-1, -2, -(2**63)])
def test_negative_length_is_rejected(n: int) -> None:
    buf = Buffer(b"abcdef")
    with pytest.raises(DecodeError):
        buf.pull_bytes(n)
    assert buf.remaining == 6


def test_huge_length_is_rejected_without_allocating() -> None:
    buf = Buffer(b"abc")
    with pytest.raises(DecodeError):
        buf.pull_bytes(2**62)


def test_pull_vbytes16_respects_max_len() -> None:
    data = b"\x00\x05hello"
    assert Buffer(data).pull_vbytes16(5) == b"hello"
    assert Buffer(data).pull_vbytes16(0xFFFF) == b"hello"
    buf = Buffer(data)
    with pytest.raises(DecodeError, match="exceeds limit 4"):
        buf.pull_vbytes16(4)  # refused on the length alone, though the bytes are there


def test_pull_vbytes16_truncation_raises() -> None:
    for data in (b"", b"\x00", b"\x00\x05hell", b"\xff\xff" + bytes(100)):
        with pytest.raises(DecodeError):
            Buffer(data).pull_vbytes16(0xFFFF)
    assert Buffer(b"\x00\x00").pull_vbytes16(0) == b""


def test_expect_end() -> None:
    Buffer(b"").expect_end()
    buf = Buffer(b"ab")
    with pytest.raises(DecodeError, match="2 trailing bytes"):
        buf.expect_end()
    buf.pull_bytes(2)
    buf.expect_end()


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("u8"), st.integers(0, 2**8 - 1)),
            st.tuples(st.just("u16"), st.integers(0, 2**16 - 1)),
            st.tuples(st.just("u32"), st.integers(0, 2**32 - 1)),
            st.tuples(st.just("u64"), st.integers(0, 2**64 - 1)),
            st.tuples(st.just("vbytes16"), st.binary(max_size=300)),
            st.tuples(st.just("bytes"), st.binary(max_size=300)),
        ),
        max_size=20,
    )
)
def test_push_pull_round_trip(items: list[tuple[str, object]]) -> None:
    out = Buffer()
    for kind, value in items:
        getattr(out, f"push_{kind}")(value)
    buf = Buffer(out.getvalue())
    for kind, value in items:
        if kind == "vbytes16":
            assert buf.pull_vbytes16(300) == value
        elif kind == "bytes":
            assert isinstance(value, bytes)
            assert buf.pull_bytes(len(value)) == value
        else:
            assert getattr(buf, f"pull_{kind}")() == value
    buf.expect_end()


@given(
    st.binary(max_size=64),
    st.lists(st.sampled_from([*PULLS, "vbytes16", "bytes"]), max_size=30),
)
def test_any_pull_sequence_raises_only_decode_error(data: bytes, ops: list[str]) -> None:
    buf = Buffer(data)
    for op in ops:
        before = buf.remaining
        try:
            if op == "vbytes16":
                buf.pull_vbytes16(16)
            elif op == "bytes":
                buf.pull_bytes(3)
            else:
                PULLS[op][1](buf)
        except DecodeError:
            if op == "vbytes16":  # the length may have been read before the body failed
                assert buf.remaining in (before, before - 2)
                return
            assert buf.remaining == before  # a failed fixed-size pull consumes nothing
            continue
        assert 0 <= buf.remaining <= before
