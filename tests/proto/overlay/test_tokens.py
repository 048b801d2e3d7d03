"""Address-validation tokens (proto.overlay.tokens): bound to an address, rotating secrets."""

from hypothesis import given
from hypothesis import strategies as st

from peerline.proto.overlay.tokens import TOKEN_ROTATE_S, TOKEN_SIZE, TokenIssuer
from peerline.sim.rng import SeededRng
from peerline.types import Addr

ADDR: Addr = ("203.0.113.5", 4433)
V6: Addr = ("2001:db8::5", 4433)

addrs = st.tuples(
    st.ip_addresses().map(str),
    st.integers(0, 0xFFFF),
)


def issuer(seed: int = 1) -> TokenIssuer:
    return TokenIssuer(SeededRng(seed))


def test_token_is_valid_for_the_address_it_was_issued_to() -> None:
    t = issuer()
    token = t.issue(ADDR, now=0.0)
    assert len(token) == TOKEN_SIZE == 8
    assert t.valid(token, ADDR, now=0.0)
    assert t.valid(token, ADDR, now=TOKEN_ROTATE_S - 1)


def test_token_is_invalid_for_another_host_or_port() -> None:
    t = issuer()
    token = t.issue(ADDR, now=0.0)
    assert not t.valid(token, ("203.0.113.6", 4433), now=0.0)
    assert not t.valid(token, ("203.0.113.5", 4434), now=0.0)
    assert not t.valid(token, V6, now=0.0)


def test_issuing_twice_in_one_period_gives_the_same_token() -> None:
    t = issuer()
    assert t.issue(ADDR, now=0.0) == t.issue(ADDR, now=10.0)
    assert t.issue(ADDR, now=0.0) != t.issue(V6, now=0.0)


def test_issuers_with_different_secrets_do_not_accept_each_others_tokens() -> None:
    a, b = issuer(1), issuer(2)
    assert not b.valid(a.issue(ADDR, now=0.0), ADDR, now=0.0)


def test_token_survives_one_rotation() -> None:
    t = issuer()
    token = t.issue(ADDR, now=0.0)
    assert t.valid(token, ADDR, now=TOKEN_ROTATE_S)  # rotates: the token's secret is previous
    assert t.issue(ADDR, now=TOKEN_ROTATE_S) != token
    assert t.valid(token, ADDR, now=TOKEN_ROTATE_S + 1)


def test_token_is_rejected_after_two_rotations() -> None:
    t = issuer()
    token = t.issue(ADDR, now=0.0)
    assert t.valid(token, ADDR, now=TOKEN_ROTATE_S)
    assert not t.valid(token, ADDR, now=2 * TOKEN_ROTATE_S)


def test_token_is_rejected_after_a_silence_of_two_periods() -> None:
    """With no call in between, one late rotation must not keep the old secret as previous."""
    t = issuer()
    token = t.issue(ADDR, now=0.0)
    assert not t.valid(token, ADDR, now=2 * TOKEN_ROTATE_S)
    fresh = t.issue(ADDR, now=2 * TOKEN_ROTATE_S)
    assert t.valid(fresh, ADDR, now=2 * TOKEN_ROTATE_S + 1)


def test_token_issued_after_a_rotation_survives_the_next_one() -> None:
    t = issuer()
    t.issue(ADDR, now=0.0)
    token = t.issue(ADDR, now=TOKEN_ROTATE_S)
    assert t.valid(token, ADDR, now=2 * TOKEN_ROTATE_S)
    assert not t.valid(token, ADDR, now=3 * TOKEN_ROTATE_S)


@given(addrs, st.floats(0, 10 * TOKEN_ROTATE_S), st.floats(0, TOKEN_ROTATE_S))
def test_fresh_token_is_valid_within_one_period(addr: Addr, start: float, later: float) -> None:
    t = issuer()
    t.issue(ADDR, now=0.0)  # start the clock
    token = t.issue(addr, now=start)
    assert t.valid(token, addr, now=start + later)


@given(st.binary(min_size=0, max_size=16), addrs)
def test_random_tokens_are_rejected(token: bytes, addr: Addr) -> None:
    t = issuer()
    real = t.issue(addr, now=0.0)
    if token != real:
        assert not t.valid(token, addr, now=0.0)


@given(addrs, addrs)
def test_token_is_bound_to_its_address(a: Addr, b: Addr) -> None:
    t = issuer()
    token = t.issue(a, now=0.0)
    assert t.valid(token, b, now=0.0) == (a == b)
