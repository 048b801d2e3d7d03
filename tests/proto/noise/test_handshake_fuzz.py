"""IK handshake reads under garbage: only CryptoError or DecodeError, and no damage done.

``IKHandshake`` promises that a read which raises leaves the object as it was, so a forged
message cannot spoil a real handshake. These tests feed random and mutated messages, then
finish the genuine handshake on the same objects.
"""

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzing import changed_mutations
from peerline.errors import CryptoError, DecodeError, LocalProtocolError
from peerline.proto.noise.handshake import (
    HandshakeState,
    IKHandshake,
    Role,
    initiation_length,
    response_length,
    x25519_public,
)

PROLOGUE = b"peerline-test/handshake-fuzz"
INIT_STATIC = bytes(range(1, 33))
INIT_EPHEMERAL = bytes(range(33, 65))
RESP_STATIC = bytes(range(65, 97))
RESP_EPHEMERAL = bytes(range(97, 129))
INIT_PAYLOAD = bytes(range(200, 232))  # 32 bytes, as the node sends its Ed25519 key


def initiator() -> IKHandshake:
    return IKHandshake(
        role=Role.INITIATOR,
        static_private=INIT_STATIC,
        ephemeral_private=INIT_EPHEMERAL,
        prologue=PROLOGUE,
        remote_static=x25519_public(RESP_STATIC),
    )


def responder() -> IKHandshake:
    return IKHandshake(
        role=Role.RESPONDER,
        static_private=RESP_STATIC,
        ephemeral_private=RESP_EPHEMERAL,
        prologue=PROLOGUE,
    )


# The keys are fixed, so the genuine messages are the same on every run.
_i, _r = initiator(), responder()
GENUINE_INITIATION = _i.write_initiation(INIT_PAYLOAD)
_r.read_initiation(GENUINE_INITIATION)
GENUINE_RESPONSE = _r.write_response(b"")
del _i, _r


def finish(init: IKHandshake, resp: IKHandshake) -> None:
    """Complete the handshake with genuine messages and check both sides agree."""
    if init.state is HandshakeState.START:
        assert init.write_initiation(INIT_PAYLOAD) == GENUINE_INITIATION
    if resp.state is HandshakeState.START:
        assert resp.read_initiation(GENUINE_INITIATION) == INIT_PAYLOAD
    if resp.state is HandshakeState.INITIATION_RECEIVED:
        assert resp.write_response(b"") == GENUINE_RESPONSE
    assert init.read_response(GENUINE_RESPONSE) == b""
    assert init.handshake_hash == resp.handshake_hash
    ik, rk = init.transport_keys(), resp.transport_keys()
    assert ik.send_key == rk.recv_key and ik.recv_key == rk.send_key
    assert rk.remote_static == x25519_public(INIT_STATIC)
    assert ik.remote_static == x25519_public(RESP_STATIC)


def test_genuine_messages_have_the_expected_sizes() -> None:
    assert len(GENUINE_INITIATION) == initiation_length(len(INIT_PAYLOAD)) == 128
    assert len(GENUINE_RESPONSE) == response_length(0) == 48
    finish(initiator(), responder())


def read_and_expect_rejection(hs: IKHandshake, read: Callable[[bytes], bytes], msg: bytes) -> None:
    """``read(msg)`` raises CryptoError or DecodeError and leaves ``hs`` exactly as it was."""
    state, h = hs.state, hs.handshake_hash
    remote = hs.remote_static
    with pytest.raises((CryptoError, DecodeError)):
        read(msg)
    assert hs.state is state
    assert hs.handshake_hash == h
    assert hs.remote_static == remote




# Random bytes of the right length get past the length check into the DH and AEAD; an all-zero
# or other low-order ephemeral key makes the DH fail (CryptoError from libsodium's check).
LOW_ORDER_POINTS = [bytes(32), (1).to_bytes(32, "little"), b"\xe0\xeb\x7a\x7c" + bytes(28)]


def random_messages(length: int) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        st.binary(min_size=length, max_size=length),
        st.builds(
            lambda point, rest: point + rest,
            st.sampled_from(LOW_ORDER_POINTS),
            st.binary(min_size=length - 32, max_size=length - 32),
        ),
        # the genuine ephemeral key with a forged remainder: the DH succeeds, the AEAD fails
        st.binary(min_size=length - 32, max_size=length - 32).map(
            lambda rest: (
                GENUINE_INITIATION[:32] + rest
                if length == len(GENUINE_INITIATION)
                else GENUINE_RESPONSE[:32] + rest
            )
        ),
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(random_messages(len(GENUINE_INITIATION)), min_size=1, max_size=3))
def test_random_initiations_are_rejected_and_leave_the_responder_usable(
    messages: list[bytes],
) -> None:
    resp = responder()
    for msg in messages:
        read_and_expect_rejection(resp, resp.read_initiation, msg)
    finish(initiator(), resp)


@settings(max_examples=150, deadline=None)
@given(st.lists(changed_mutations(GENUINE_INITIATION), min_size=1, max_size=3))
def test_mutated_initiations_are_rejected_and_leave_the_responder_usable(
    messages: list[bytes],
) -> None:
    resp = responder()
    for msg in messages:
        read_and_expect_rejection(resp, resp.read_initiation, msg)
    finish(initiator(), resp)


@settings(max_examples=150, deadline=None)
@given(st.lists(random_messages(len(GENUINE_RESPONSE)), min_size=1, max_size=3))
def test_random_responses_are_rejected_and_leave_the_initiator_usable(
    messages: list[bytes],
) -> None:
    init = initiator()
    init.write_initiation(INIT_PAYLOAD)
    for msg in messages:
        read_and_expect_rejection(init, init.read_response, msg)
    finish(init, responder())


@settings(max_examples=150, deadline=None)
@given(st.lists(changed_mutations(GENUINE_RESPONSE), min_size=1, max_size=3))
def test_mutated_responses_are_rejected_and_leave_the_initiator_usable(
    messages: list[bytes],
) -> None:
    init = initiator()
    init.write_initiation(INIT_PAYLOAD)
    for msg in messages:
        read_and_expect_rejection(init, init.read_response, msg)
    finish(init, responder())


@pytest.mark.parametrize("point", LOW_ORDER_POINTS)
def test_low_order_ephemeral_keys_are_crypto_errors(point: bytes) -> None:
    resp = responder()
    with pytest.raises(CryptoError):
        resp.read_initiation(point + GENUINE_INITIATION[32:])
    init = initiator()
    init.write_initiation(INIT_PAYLOAD)
    with pytest.raises(CryptoError):
        init.read_response(point + GENUINE_RESPONSE[32:])
    finish(init, resp)


def test_initiation_for_another_responder_is_rejected() -> None:
    other = IKHandshake(
        role=Role.RESPONDER,
        static_private=bytes(range(129, 161)),
        ephemeral_private=RESP_EPHEMERAL,
        prologue=PROLOGUE,
    )
    read_and_expect_rejection(other, other.read_initiation, GENUINE_INITIATION)


def test_initiation_with_another_prologue_is_rejected() -> None:
    other = IKHandshake(
        role=Role.RESPONDER,
        static_private=RESP_STATIC,
        ephemeral_private=RESP_EPHEMERAL,
        prologue=PROLOGUE + b"!",
    )
    read_and_expect_rejection(other, other.read_initiation, GENUINE_INITIATION)


def test_replayed_response_from_another_handshake_is_rejected() -> None:
    """A response belongs to one initiation: a fresh ephemeral key makes the old one useless."""
    init = IKHandshake(
        role=Role.INITIATOR,
        static_private=INIT_STATIC,
        ephemeral_private=bytes(range(161, 193)),
        prologue=PROLOGUE,
        remote_static=x25519_public(RESP_STATIC),
    )
    init.write_initiation(INIT_PAYLOAD)
    read_and_expect_rejection(init, init.read_response, GENUINE_RESPONSE)


# -- steps out of order ----------------------------------------------------------------------------
def _initiation_sent() -> IKHandshake:
    hs = initiator()
    hs.write_initiation(INIT_PAYLOAD)
    return hs


def _initiation_received() -> IKHandshake:
    hs = responder()
    hs.read_initiation(GENUINE_INITIATION)
    return hs


def _initiator_done() -> IKHandshake:
    hs = _initiation_sent()
    hs.read_response(GENUINE_RESPONSE)
    return hs


def _responder_done() -> IKHandshake:
    hs = _initiation_received()
    hs.write_response(b"")
    return hs


STEPS: dict[str, Callable[[IKHandshake], object]] = {
    "write_initiation": lambda hs: hs.write_initiation(INIT_PAYLOAD),
    "read_initiation": lambda hs: hs.read_initiation(GENUINE_INITIATION),
    "write_response": lambda hs: hs.write_response(b""),
    "read_response": lambda hs: hs.read_response(GENUINE_RESPONSE),
    "read_initiation_garbage": lambda hs: hs.read_initiation(b"x"),
    "read_response_garbage": lambda hs: hs.read_response(b"x"),
    "transport_keys": lambda hs: hs.transport_keys(),
}
SETUPS: dict[str, tuple[Callable[[], IKHandshake], set[str]]] = {
    # state -> (how to get there, the steps that are legal there)
    "initiator-start": (initiator, {"write_initiation"}),
    "initiator-sent": (_initiation_sent, {"read_response", "read_response_garbage"}),
    "initiator-done": (_initiator_done, {"transport_keys"}),
    "responder-start": (responder, {"read_initiation", "read_initiation_garbage"}),
    "responder-received": (_initiation_received, {"write_response"}),
    "responder-done": (_responder_done, {"transport_keys"}),
}


@pytest.mark.parametrize(
    ("setup", "step"),
    [(s, t) for s, (_, legal) in SETUPS.items() for t in STEPS if t not in legal],
)
def test_steps_out_of_order_raise_local_protocol_error(setup: str, step: str) -> None:
    """Checked before any input is parsed: garbage in the wrong state is a local error too."""
    make, _ = SETUPS[setup]
    hs = make()
    state, h = hs.state, hs.handshake_hash
    with pytest.raises(LocalProtocolError):
        STEPS[step](hs)
    assert hs.state is state and hs.handshake_hash == h


def test_initiator_needs_the_remote_static_key() -> None:
    with pytest.raises(LocalProtocolError):
        IKHandshake(
            role=Role.INITIATOR,
            static_private=INIT_STATIC,
            ephemeral_private=INIT_EPHEMERAL,
            prologue=PROLOGUE,
        )


@pytest.mark.parametrize("size", [0, 31, 33])
def test_private_keys_must_be_32_bytes(size: int) -> None:
    with pytest.raises(LocalProtocolError):
        IKHandshake(
            role=Role.RESPONDER,
            static_private=bytes(size),
            ephemeral_private=RESP_EPHEMERAL,
            prologue=PROLOGUE,
        )
    with pytest.raises(LocalProtocolError):
        IKHandshake(
            role=Role.RESPONDER,
            static_private=RESP_STATIC,
            ephemeral_private=bytes(size),
            prologue=PROLOGUE,
        )


@pytest.mark.parametrize("step", sorted(set(STEPS) - {"transport_keys"}))
def test_no_handshake_step_is_legal_after_transport_keys(step: str) -> None:
    for hs in (_initiator_done(), _responder_done()):
        hs.transport_keys()
        with pytest.raises(LocalProtocolError):
            STEPS[step](hs)
