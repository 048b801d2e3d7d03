"""Shared hypothesis strategies for fuzzing parsers with bytes close to valid ones."""

from hypothesis import strategies as st


@st.composite
def mutations(draw: st.DrawFn, original: bytes, *, changed: bool = False) -> bytes:
    """Flip, insert and delete a few random bytes of ``original``.

    With ``changed=True`` the result is never ``original`` itself (flips are drawn twice as
    often then, so most results keep the original's length and reach deeper checks).
    """
    ops = ("flip", "flip", "insert", "delete") if changed else ("flip", "insert", "delete")
    data = bytearray(original)
    while True:
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(ops))
            if op == "flip" and data:
                i = draw(st.integers(0, len(data) - 1))
                data[i] ^= draw(st.integers(1, 255))
            elif op == "insert":
                i = draw(st.integers(0, len(data)))
                data[i:i] = draw(st.binary(min_size=1, max_size=8))
            elif data:
                i = draw(st.integers(0, len(data) - 1))
                del data[i : i + draw(st.integers(1, 8))]
        if not changed or bytes(data) != original:
            return bytes(data)


def changed_mutations(original: bytes) -> st.SearchStrategy[bytes]:
    """``mutations(original, changed=True)``, as a one-argument function for ``flatmap``."""
    return mutations(original, changed=True)
