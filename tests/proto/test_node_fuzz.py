"""``Node.receive_datagram`` under garbage: never raises, drops and counts, and stays usable.

Every fuzz datagram is fed to one node of a pair in one of three phases (no sessions yet; a
handshake half done; sessions established). After each datagram the node must have raised
nothing, emitted no event and no datagram, left the peer's endpoint alone, and counted exactly
one ``dropped_*`` (``dropped_mac1`` included). Then the pair must still finish a genuine
handshake and exchange messages both ways.

The nodes run the default ``NodeConfig`` and see at most a few initiations with a valid mac1 per
example, so they are never under load: they never answer with a cookie reply, and mac2 is not
checked. A changed mac2 on the genuine initiation is therefore a repeat of it, which the protocol
answers while the session it made is pending (docs/protocol.md §4.9); those datagrams are left
out of the garbage properties and checked on their own below.

The pair is built from fixed seeds, so the genuine packets captured at import time are the very
packets (same indexes, same keys) that a freshly prepared pair expects.
"""

from dataclasses import dataclass, field, fields

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from fuzzing import changed_mutations
from harness import ADDR_A, ADDR_B, Wire, make_pair, of_type
from peerline.proto.events import Event, MessageFailed, MessageReceived
from peerline.proto.node import Node, NodeConfig, NodeCounters
from peerline.proto.noise.cookie import cookie_key, mac, mac1_key, open_cookie, seal_cookie
from peerline.types import Addr
from peerline.wire.packet import (
    COOKIE_NONCE_SIZE,
    COOKIE_REPLY_SIZE,
    COOKIE_SEALED_SIZE,
    INITIATION_MAC1_OFFSET,
    INITIATION_MAC2_OFFSET,
    INITIATION_NOISE_SIZE,
    INITIATION_SIZE,
    MAC_SIZE,
    RESPONSE_NOISE_SIZE,
    RESPONSE_SIZE,
    TRANSPORT_MIN_SIZE,
)
from peerline.wire.spec import (
    MAX_DATAGRAM,
    PROTOCOL_VERSION,
    REJECT_AFTER_MESSAGES,
    TYPE_COOKIE_REPLY,
    TYPE_HANDSHAKE_INITIATION,
    TYPE_HANDSHAKE_RESPONSE,
    TYPE_TRANSPORT,
)

PHASES = ("idle", "handshaking", "established")
ATTACKER: Addr = ("203.0.113.66", 4720)
T_SETUP, T_FUZZ, T_FINISH = 0.0, 0.5, 0.6
DROP_COUNTERS = frozenset(f.name for f in fields(NodeCounters) if f.name.startswith("dropped_"))

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Scene:
    phase: str
    w: Wire
    held_response: bytes = b""
    "In the handshaking phase: b's genuine response, not yet delivered to a."
    expect_b: list[str] = field(default_factory=list)
    expect_a: list[str] = field(default_factory=list)


def prepare(phase: str) -> Scene:
    w = make_pair()
    scene = Scene(phase=phase, w=w)
    if phase == "handshaking":
        w.a.send_message(w.b.identity.public_key, "hello", now=T_SETUP)
        ((init, _),) = w.a.datagrams_to_send(now=T_SETUP)
        w.b.receive_datagram(init, ADDR_A, now=T_SETUP)
        ((scene.held_response, _),) = w.b.datagrams_to_send(now=T_SETUP)
        w.sent += [("a", init), ("b", scene.held_response)]
        scene.expect_b.append("hello")
    elif phase == "established":
        w.a.send_message(w.b.identity.public_key, "hello", now=T_SETUP)
        w.transfer(now=T_SETUP)
        assert [e.text for e in of_type(w.events_b, MessageReceived)] == ["hello"]
    w.drain_events()
    w.events_a.clear()
    w.events_b.clear()
    return scene


def finish(scene: Scene) -> None:
    """Complete what the phase left open, then send one message each way."""
    w = scene.w
    if scene.phase == "idle":
        w.a.send_message(w.b.identity.public_key, "hello", now=T_FINISH)
        scene.expect_b.append("hello")
    elif scene.phase == "handshaking":
        w.a.receive_datagram(scene.held_response, ADDR_B, now=T_FINISH)
    w.transfer(now=T_FINISH)
    w.b.send_message(w.a.identity.public_key, "back", now=T_FINISH)
    w.a.send_message(w.b.identity.public_key, "again", now=T_FINISH)
    w.transfer(now=T_FINISH)
    assert [e.text for e in of_type(w.events_b, MessageReceived)] == [*scene.expect_b, "again"]
    assert [e.text for e in of_type(w.events_a, MessageReceived)] == [*scene.expect_a, "back"]
    assert not of_type(w.events_a + w.events_b, MessageFailed)
    assert w.a.counters.handshakes_completed >= 1 and w.b.counters.handshakes_completed >= 1
    for node in (w.a, w.b):
        assert node.counters.cookie_replies_sent == 0  # never under load in these tests


def feed_garbage(node: Node, peer_key: bytes, data: bytes, src: Addr) -> str:
    """Deliver one fuzz datagram and check it was dropped, counted once and had no effect.

    Returns the name of the ``dropped_*`` counter that moved.
    """
    endpoint = node.peer_endpoint(peer_key)
    before = node.counters.as_dict()
    node.receive_datagram(data, src, now=T_FUZZ)  # must not raise
    after = node.counters.as_dict()
    diff = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    assert diff.pop("rx_datagrams") == 1
    assert diff.pop("rx_bytes", 0) == len(data)
    assert len(diff) == 1, f"expected exactly one dropped_* counter to move, got {diff}"
    ((name, delta),) = diff.items()
    assert name in DROP_COUNTERS and delta == 1, diff
    if currently_in_test_context():
        event(name)  # --hypothesis-show-statistics shows which checks the fuzz reached
    events: list[Event] = list(iter(node.next_event, None))
    assert not of_type(events, MessageReceived)
    assert events == []
    assert node.datagrams_to_send(now=T_FUZZ) == []  # no reply (no cookie either): no reflection
    assert node.peer_endpoint(peer_key) == endpoint
    return name


def run(phase: str, target: str, datagrams: list[bytes], src_is_peer: bool) -> None:
    scene = prepare(phase)
    w = scene.w
    node, peer = (w.a, w.b) if target == "a" else (w.b, w.a)
    src = (ADDR_B if target == "a" else ADDR_A) if src_is_peer else ATTACKER
    for data in datagrams:
        feed_garbage(node, peer.identity.public_key, data, src)
    finish(scene)


# -- the genuine traffic of one exchange, captured once -----------------------------------------
_scene = prepare("established")
CAPTURED: list[bytes] = [data for _, data in _scene.w.sent]
GENUINE_INITIATION, GENUINE_RESPONSE = CAPTURED[0], CAPTURED[1]
A_INDEX = int.from_bytes(GENUINE_INITIATION[2:6], "big")
B_INDEX = int.from_bytes(CAPTURED[2][2:6], "big")  # a's first transport packet names it
A_X25519 = _scene.w.a.identity.x25519_public
B_X25519 = _scene.w.b.identity.x25519_public
X25519 = {"a": A_X25519, "b": B_X25519}
GENUINE_MAC1 = GENUINE_INITIATION[INITIATION_MAC1_OFFSET:INITIATION_MAC2_OFFSET]
del _scene


def _capture_cookie_reply() -> bytes:
    """What b would answer to a's genuine initiation when under load (a genuine cookie reply)."""
    w = make_pair(config_b=NodeConfig(handshakes_per_s=1e-9))  # one token, then under load
    w.a.send_message(w.b.identity.public_key, "hello", now=T_SETUP)  # as prepare() does
    ((init, _),) = w.a.datagrams_to_send(now=T_SETUP)
    assert init == GENUINE_INITIATION
    w.b.receive_datagram(init, ADDR_A, now=T_SETUP)
    ((response, _),) = w.b.datagrams_to_send(now=T_SETUP)
    assert response[0] == TYPE_HANDSHAKE_RESPONSE
    w.b.receive_datagram(init, ADDR_A, now=T_SETUP)  # the same again: now over the rate
    ((reply, _),) = w.b.datagrams_to_send(now=T_SETUP)
    assert w.b.counters.cookie_replies_sent == 1
    return reply


GENUINE_COOKIE_REPLY = _capture_cookie_reply()


def test_capture_is_one_handshake_one_message_and_one_ack() -> None:
    kinds = [d[0] for d in CAPTURED]
    assert kinds == [
        TYPE_HANDSHAKE_INITIATION,
        TYPE_HANDSHAKE_RESPONSE,
        TYPE_TRANSPORT,  # a's message
        TYPE_TRANSPORT,  # b's ack
    ]
    assert len(GENUINE_INITIATION) == INITIATION_SIZE and len(GENUINE_RESPONSE) == RESPONSE_SIZE
    assert int.from_bytes(GENUINE_RESPONSE[2:6], "big") == A_INDEX  # the response's receiver
    assert int.from_bytes(CAPTURED[3][2:6], "big") == A_INDEX  # b's ack goes to a's index
    assert B_INDEX != A_INDEX
    assert B_INDEX.to_bytes(4, "big") not in GENUINE_RESPONSE  # b's index travels encrypted


def test_genuine_initiation_carries_mac1_for_the_responder_and_no_mac2() -> None:
    body = GENUINE_INITIATION[:INITIATION_MAC1_OFFSET]
    assert mac(mac1_key(B_X25519), body) == GENUINE_MAC1
    assert mac(mac1_key(A_X25519), body) != GENUINE_MAC1
    assert GENUINE_INITIATION[INITIATION_MAC2_OFFSET:] == bytes(MAC_SIZE)


def test_genuine_cookie_reply_is_for_a_and_bound_to_the_genuine_mac1() -> None:
    reply = GENUINE_COOKIE_REPLY
    assert len(reply) == COOKIE_REPLY_SIZE
    assert reply[:2] == bytes([TYPE_COOKIE_REPLY, PROTOCOL_VERSION])
    assert int.from_bytes(reply[2:6], "big") == A_INDEX
    nonce, sealed = reply[6 : 6 + COOKIE_NONCE_SIZE], reply[6 + COOKIE_NONCE_SIZE :]
    assert len(open_cookie(cookie_key(B_X25519), nonce, sealed, GENUINE_MAC1)) == 16


def test_capture_is_deterministic() -> None:
    scene = prepare("established")
    assert [d for _, d in scene.w.sent] == CAPTURED
    assert prepare("handshaking").held_response == GENUINE_RESPONSE
    assert _capture_cookie_reply() == GENUINE_COOKIE_REPLY


@pytest.mark.parametrize("phase", PHASES)
def test_every_phase_finishes_without_fuzz(phase: str) -> None:
    finish(prepare(phase))


def replays_genuine_initiation(data: bytes) -> bool:
    """The genuine initiation with at most mac2 changed: a repeat, answered by design."""
    g = GENUINE_INITIATION
    return len(data) == len(g) and data[:INITIATION_MAC2_OFFSET] == g[:INITIATION_MAC2_OFFSET]


# -- strategies ------------------------------------------------------------------------------------
def fixed(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size, max_size=size)


@st.composite
def flips(draw: st.DrawFn, original: bytes) -> bytes:
    """Flip a few bytes (same length); never returns ``original`` itself."""
    data = bytearray(original)
    while bytes(data) == original:
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


def with_mac1(key_owner: str, body: bytes, mac2: bytes) -> bytes:
    """An initiation ``body`` (header and noise) with a valid mac1 for ``key_owner``'s key."""
    assert len(body) == INITIATION_MAC1_OFFSET
    return body + mac(mac1_key(X25519[key_owner]), body) + mac2


phases = st.sampled_from(PHASES)
targets = st.sampled_from("ab")
mutated_genuine = (
    st.sampled_from([*CAPTURED, GENUINE_COOKIE_REPLY])
    .flatmap(changed_mutations)
    .filter(lambda d: not replays_genuine_initiation(d))
)
header = st.sampled_from(
    [TYPE_HANDSHAKE_INITIATION, TYPE_HANDSHAKE_RESPONSE, TYPE_COOKIE_REPLY, TYPE_TRANSPORT]
).map(lambda t: bytes([t, PROTOCOL_VERSION]))
plausible = st.one_of(
    st.builds(bytes.__add__, header, st.binary(max_size=MAX_DATAGRAM)),
    fixed(INITIATION_SIZE - 2).map(
        lambda b: bytes([TYPE_HANDSHAKE_INITIATION, PROTOCOL_VERSION]) + b
    ),
    fixed(RESPONSE_SIZE - 2).map(lambda b: bytes([TYPE_HANDSHAKE_RESPONSE, PROTOCOL_VERSION]) + b),
    fixed(COOKIE_REPLY_SIZE - 2).map(lambda b: bytes([TYPE_COOKIE_REPLY, PROTOCOL_VERSION]) + b),
)
counters = st.one_of(
    st.integers(0, 3),
    st.integers(0, 2**64 - 1),
    st.sampled_from([REJECT_AFTER_MESSAGES - 1, REJECT_AFTER_MESSAGES, 2**64 - 1]),
)
live_indexes = st.sampled_from([A_INDEX, B_INDEX])
mac2s = st.one_of(st.just(bytes(MAC_SIZE)), fixed(MAC_SIZE))
genuine_ephemeral = GENUINE_RESPONSE[6:38]
genuine_sealed_index = GENUINE_RESPONSE[38:]
# Forgeries that name a live index, so they reach the AEAD and the replay window.
for_live_sessions = st.one_of(
    st.builds(
        lambda index, counter, ct: (
            bytes([TYPE_TRANSPORT, PROTOCOL_VERSION])
            + index.to_bytes(4, "big")
            + counter.to_bytes(8, "big")
            + ct
        ),
        live_indexes,
        counters,
        st.binary(min_size=TRANSPORT_MIN_SIZE - 14, max_size=200),
    ),
    st.builds(
        lambda index, noise: (
            bytes([TYPE_HANDSHAKE_RESPONSE, PROTOCOL_VERSION]) + index.to_bytes(4, "big") + noise
        ),
        live_indexes,
        st.one_of(
            fixed(RESPONSE_NOISE_SIZE),
            fixed(32).map(lambda e: e + genuine_sealed_index),  # another ephemeral key
            fixed(RESPONSE_NOISE_SIZE - 32).map(lambda s: genuine_ephemeral + s),  # forged index
            st.just(GENUINE_RESPONSE[6:]).flatmap(flips),
        ),
    ),
    st.builds(
        lambda index, nonce, sealed: (
            bytes([TYPE_COOKIE_REPLY, PROTOCOL_VERSION]) + index.to_bytes(4, "big") + nonce + sealed
        ),
        live_indexes,
        fixed(COOKIE_NONCE_SIZE),
        fixed(COOKIE_SEALED_SIZE),
    ),
    st.builds(  # sealed under the right key, but bound to some other mac1
        lambda index, nonce, cookie, other_mac1: (
            bytes([TYPE_COOKIE_REPLY, PROTOCOL_VERSION])
            + index.to_bytes(4, "big")
            + nonce
            + seal_cookie(cookie_key(B_X25519), nonce, cookie, other_mac1)
        ),
        live_indexes,
        fixed(COOKIE_NONCE_SIZE),
        fixed(16),
        fixed(MAC_SIZE).filter(lambda m: m != GENUINE_MAC1),
    ),
)


@st.composite
def past_mac1(draw: st.DrawFn, target: str) -> bytes:
    """Initiations with a valid mac1 for ``target``: they get past the cheap check to Noise."""
    genuine_body = GENUINE_INITIATION[:INITIATION_MAC1_OFFSET]
    body = draw(
        st.one_of(
            st.builds(  # a random initiation
                lambda sender, noise: (
                    bytes([TYPE_HANDSHAKE_INITIATION, PROTOCOL_VERSION])
                    + sender.to_bytes(4, "big")
                    + noise
                ),
                st.integers(0, 2**32 - 1),
                fixed(INITIATION_NOISE_SIZE),
            ),
            st.just(genuine_body[2:])  # the genuine one, changed (sender index included)
            .flatmap(flips)
            .map(lambda rest: genuine_body[:2] + rest),
        )
    )
    return with_mac1(target, body, draw(mac2s))


# -- properties ------------------------------------------------------------------------------------
@FUZZ
@given(phases, targets, st.lists(st.binary(max_size=1400), min_size=1, max_size=3), st.booleans())
def test_random_bytes_are_dropped_and_counted(
    phase: str, target: str, datagrams: list[bytes], src_is_peer: bool
) -> None:
    run(phase, target, datagrams, src_is_peer)


@FUZZ
@given(phases, targets, st.lists(mutated_genuine, min_size=1, max_size=3), st.booleans())
def test_mutated_genuine_packets_are_dropped_and_counted(
    phase: str, target: str, datagrams: list[bytes], src_is_peer: bool
) -> None:
    run(phase, target, datagrams, src_is_peer)


@FUZZ
@given(phases, targets, st.lists(plausible, min_size=1, max_size=3), st.booleans())
def test_random_bodies_behind_valid_headers_are_dropped_and_counted(
    phase: str, target: str, datagrams: list[bytes], src_is_peer: bool
) -> None:
    run(phase, target, datagrams, src_is_peer)


@FUZZ
@given(phases, targets, st.lists(for_live_sessions, min_size=1, max_size=3), st.booleans())
def test_forgeries_for_live_indexes_are_dropped_and_counted(
    phase: str, target: str, datagrams: list[bytes], src_is_peer: bool
) -> None:
    run(phase, target, datagrams, src_is_peer)


@FUZZ
@given(phases, targets, st.data(), st.booleans())
def test_initiations_with_a_valid_mac1_are_dropped_and_counted(
    phase: str, target: str, data: st.DataObject, src_is_peer: bool
) -> None:
    datagrams = data.draw(st.lists(past_mac1(target), min_size=1, max_size=3))
    run(phase, target, datagrams, src_is_peer)


# -- examples ------------------------------------------------------------------------------------
ZERO_INITIATION = bytes([TYPE_HANDSHAKE_INITIATION, PROTOCOL_VERSION]) + bytes(INITIATION_SIZE - 2)


def cookie_reply_for(index: int) -> bytes:
    return GENUINE_COOKIE_REPLY[:2] + index.to_bytes(4, "big") + GENUINE_COOKIE_REPLY[6:]


@pytest.mark.parametrize(
    ("phase", "target", "data", "counter"),
    [
        ("established", "b", b"", "dropped_malformed"),
        ("established", "b", b"\x00\x01\x00\x00", "dropped_stun"),
        ("established", "b", b"\x03", "dropped_stun"),
        ("established", "b", bytes([TYPE_TRANSPORT, 2]) + bytes(40), "dropped_malformed"),
        (
            "established",
            "b",
            bytes([TYPE_TRANSPORT, PROTOCOL_VERSION]) + bytes(MAX_DATAGRAM - 1),
            "dropped_malformed",
        ),
        ("established", "b", ZERO_INITIATION[:134], "dropped_malformed"),  # the old, macless size
        ("established", "b", ZERO_INITIATION, "dropped_mac1"),
        ("established", "a", GENUINE_INITIATION, "dropped_mac1"),  # a's key is not b's
        ("established", "b", with_mac1("b", ZERO_INITIATION[:134], bytes(16)), "dropped_handshake"),
        ("idle", "a", with_mac1("a", GENUINE_INITIATION[:134], bytes(16)), "dropped_handshake"),
        ("established", "a", GENUINE_RESPONSE, "dropped_unknown_session"),  # stale: handshake over
        ("established", "b", GENUINE_RESPONSE, "dropped_unknown_session"),  # b never initiated
        ("established", "b", CAPTURED[2], "dropped_replay"),  # the genuine message, replayed
        ("idle", "a", GENUINE_COOKIE_REPLY, "dropped_unknown_session"),
        ("established", "a", GENUINE_COOKIE_REPLY, "dropped_unknown_session"),  # handshake over
        ("handshaking", "a", cookie_reply_for(A_INDEX ^ 1), "dropped_unknown_session"),
        ("handshaking", "b", GENUINE_COOKIE_REPLY, "dropped_unknown_session"),  # b has no attempt
        (
            "handshaking",
            "a",
            GENUINE_COOKIE_REPLY[:-1] + bytes([GENUINE_COOKIE_REPLY[-1] ^ 1]),
            "dropped_auth",
        ),
        (
            "handshaking",
            "a",
            GENUINE_COOKIE_REPLY[:6] + bytes(COOKIE_REPLY_SIZE - 6),
            "dropped_auth",
        ),
        ("handshaking", "a", GENUINE_COOKIE_REPLY[:-1], "dropped_malformed"),
    ],
    ids=[
        "empty",
        "stun",
        "stun-1",
        "version",
        "oversize",
        "initiation-134",
        "initiation-zeros",
        "initiation-to-wrong-key",
        "initiation-zero-noise",
        "initiation-to-its-own-initiator",
        "stale-response",
        "response-to-responder",
        "replay",
        "cookie-idle",
        "cookie-stale",
        "cookie-wrong-index",
        "cookie-to-responder",
        "cookie-tampered",
        "cookie-zeros",
        "cookie-truncated",
    ],
)
def test_known_garbage_lands_in_the_right_counter(
    phase: str, target: str, data: bytes, counter: str
) -> None:
    scene = prepare(phase)
    node, peer = (scene.w.a, scene.w.b) if target == "a" else (scene.w.b, scene.w.a)
    before = getattr(node.counters, counter)
    assert feed_garbage(node, peer.identity.public_key, data, ATTACKER) == counter
    assert getattr(node.counters, counter) == before + 1
    finish(scene)


def test_drop_counters_include_mac1() -> None:
    assert {"dropped_mac1", "dropped_auth", "dropped_unknown_session"} <= DROP_COUNTERS
    assert not {"cookies_received", "cookie_replies_sent"} & DROP_COUNTERS


def test_many_garbage_datagrams_are_all_accounted_for() -> None:
    scene = prepare("established")
    b = scene.w.b
    garbage = [bytes([i % 256]) * (i % 300) for i in range(1, 500)]
    garbage += [bytes([TYPE_TRANSPORT, PROTOCOL_VERSION]) + B_INDEX.to_bytes(4, "big") + bytes(40)]
    garbage += [ZERO_INITIATION, ZERO_INITIATION[:2] + b"\x50" * (INITIATION_SIZE - 2)]
    garbage += [cookie_reply_for(i) for i in (0, A_INDEX, B_INDEX)]
    before = sum(v for k, v in b.counters.as_dict().items() if k in DROP_COUNTERS)
    mac1_before = b.counters.dropped_mac1
    for data in garbage:
        b.receive_datagram(data, ATTACKER, now=T_FUZZ)
    after = sum(v for k, v in b.counters.as_dict().items() if k in DROP_COUNTERS)
    assert after - before == len(garbage)
    assert b.counters.dropped_mac1 - mac1_before == 2
    assert b.next_event() is None and b.datagrams_to_send(now=T_FUZZ) == []
    finish(scene)


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_response_with_any_byte_changed_is_rejected(mask: int) -> None:
    """Every byte of the response is checked, the responder's index included.

    The index used to travel in plaintext, unauthenticated: a copy with a forged index was
    accepted, the handshake abandoned, and the genuine response then dropped. It now travels
    in the encrypted payload, so a change anywhere either names an index that does not exist
    or fails authentication; either way the half-done handshake survives.
    """
    scene = prepare("handshaking")
    genuine = scene.held_response
    assert genuine == GENUINE_RESPONSE
    a, b_key = scene.w.a, scene.w.b.identity.public_key
    for i in range(len(genuine)):
        forged = bytearray(genuine)
        forged[i] ^= mask
        name = feed_garbage(a, b_key, bytes(forged), ADDR_B)
        if i >= 6:  # ephemeral key, encrypted index, tag
            assert name == "dropped_handshake", (i, name)
        elif i >= 2:  # receiver index
            assert name == "dropped_unknown_session", (i, name)
        else:  # type or version
            assert name in {"dropped_malformed", "dropped_stun", "dropped_unknown_session"}
    assert a.counters.dropped_handshake == RESPONSE_SIZE - 6
    assert a.counters.handshakes_completed == 0
    finish(scene)
    assert a.counters.handshakes_completed == 1  # by the genuine response, on its first try
    assert a.counters.handshakes_initiated == 1
    assert scene.w.b.counters.handshakes_completed == 1


def test_response_with_a_forged_responder_index_is_rejected() -> None:
    """The old attack, on the new format: splice a different index into the sealed payload."""
    scene = prepare("handshaking")
    genuine = scene.held_response
    for forged in (
        genuine[:38] + bytes(x ^ 0xFF for x in genuine[38:42]) + genuine[42:],
        genuine[:38] + B_INDEX.to_bytes(4, "big") + genuine[42:],  # the plaintext index
        genuine[:38] + bytes(4) + genuine[42:],
    ):
        assert feed_garbage(scene.w.a, scene.w.b.identity.public_key, forged, ADDR_B) == (
            "dropped_handshake"
        )
    finish(scene)


@pytest.mark.parametrize("phase", PHASES)
def test_genuine_cookie_reply_has_no_visible_effect(phase: str) -> None:
    """Only the waiting initiator takes it, and it emits no event and sends nothing."""
    scene = prepare(phase)
    a, b_key = scene.w.a, scene.w.b.identity.public_key
    endpoint = a.peer_endpoint(b_key)
    before = a.counters.as_dict()
    a.receive_datagram(GENUINE_COOKIE_REPLY, ADDR_B, now=T_FUZZ)
    after = a.counters.as_dict()
    diff = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    moved = "cookies_received" if phase == "handshaking" else "dropped_unknown_session"
    assert diff == {"rx_datagrams": 1, "rx_bytes": COOKIE_REPLY_SIZE, moved: 1}
    assert a.next_event() is None
    assert a.datagrams_to_send(now=T_FUZZ) == []
    assert a.peer_endpoint(b_key) == endpoint
    finish(scene)


@pytest.mark.parametrize("phase", PHASES)
def test_initiation_with_a_changed_mac2_is_answered_once_and_makes_one_session(phase: str) -> None:
    """Not under load, mac2 is not checked: this is the genuine initiation, replayed.

    Initiations carry no timestamp (docs/protocol.md §7.3), so b answers one it has not seen
    (idle phase). One it has answered (the other phases) is a repeat (§4.9): it makes no new
    pending session; while the one it made is pending, b sends the same response again, and
    once that session is confirmed, nothing. Either way the pair still finishes.
    """
    scene = prepare(phase)
    b, a_key = scene.w.b, scene.w.a.identity.public_key
    replay = GENUINE_INITIATION[:INITIATION_MAC2_OFFSET] + b"\x5a" * MAC_SIZE
    endpoint = b.peer_endpoint(a_key)
    before = b.counters.as_dict()
    b.receive_datagram(replay, ATTACKER, now=T_FUZZ)
    after = b.counters.as_dict()
    assert not {k for k in DROP_COUNTERS if after[k] != before[k]}
    repeats = after["initiations_repeated"] - before["initiations_repeated"]
    answers = b.datagrams_to_send(now=T_FUZZ)
    if phase == "established":
        assert repeats == 1 and answers == []
    else:
        assert repeats == (phase == "handshaking")
        ((answer, dst),) = answers
        assert dst == ATTACKER and answer[0] == TYPE_HANDSHAKE_RESPONSE
        assert len(answer) == RESPONSE_SIZE
        if phase == "handshaking":
            assert answer == scene.held_response  # the same answer, no new session
    assert b.next_event() is None
    assert b.peer_endpoint(a_key) == endpoint
    finish(scene)
