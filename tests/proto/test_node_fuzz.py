"""``Node.receive_datagram`` under garbage: never raises, drops and counts, and stays usable.

Every fuzz datagram is fed to one node of a pair in one of three phases (no sessions yet; a
handshake half done; sessions established). After each datagram the node must have raised
nothing, emitted no event and no datagram, and counted exactly one ``dropped_*``. Then the pair
must still finish a genuine handshake and exchange messages both ways.

The pair is built from fixed seeds, so the genuine packets captured at import time are the very
packets (same indexes, same keys) that a freshly prepared pair expects.
"""

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from harness import ADDR_A, ADDR_B, Wire, make_pair, of_type
from peerline.proto.events import Event, MessageFailed, MessageReceived
from peerline.proto.node import Node
from peerline.types import Addr
from peerline.wire.packet import INITIATION_SIZE, RESPONSE_SIZE, TRANSPORT_MIN_SIZE
from peerline.wire.spec import (
    MAX_DATAGRAM,
    PROTOCOL_VERSION,
    REJECT_AFTER_MESSAGES,
    TYPE_HANDSHAKE_INITIATION,
    TYPE_HANDSHAKE_RESPONSE,
    TYPE_TRANSPORT,
)

PHASES = ("idle", "handshaking", "established")
ATTACKER: Addr = ("203.0.113.66", 4720)
T_SETUP, T_FUZZ, T_FINISH = 0.0, 0.5, 0.6

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


def feed_garbage(node: Node, peer_key: bytes, data: bytes, src: Addr) -> None:
    """Deliver one fuzz datagram and check it was dropped, counted once and had no effect."""
    endpoint = node.peer_endpoint(peer_key)
    before = node.counters.as_dict()
    node.receive_datagram(data, src, now=T_FUZZ)  # must not raise
    after = node.counters.as_dict()
    diff = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    assert diff.pop("rx_datagrams") == 1
    assert diff.pop("rx_bytes", 0) == len(data)
    assert len(diff) == 1, f"expected exactly one dropped_* counter to move, got {diff}"
    ((name, delta),) = diff.items()
    assert name.startswith("dropped_") and delta == 1, diff
    if currently_in_test_context():
        event(name)  # --hypothesis-show-statistics shows which checks the fuzz reached
    events: list[Event] = list(iter(node.next_event, None))
    assert not of_type(events, MessageReceived)
    assert events == []
    assert node.datagrams_to_send(now=T_FUZZ) == []  # no reply, so no reflection
    assert node.peer_endpoint(peer_key) == endpoint


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
B_INDEX = int.from_bytes(GENUINE_RESPONSE[2:6], "big")
del _scene


def test_capture_is_one_handshake_one_message_and_one_ack() -> None:
    kinds = [d[0] for d in CAPTURED]
    assert kinds == [
        TYPE_HANDSHAKE_INITIATION,
        TYPE_HANDSHAKE_RESPONSE,
        TYPE_TRANSPORT,  # a's message
        TYPE_TRANSPORT,  # b's ack
    ]
    assert len(GENUINE_INITIATION) == INITIATION_SIZE and len(GENUINE_RESPONSE) == RESPONSE_SIZE
    assert int.from_bytes(GENUINE_RESPONSE[6:10], "big") == A_INDEX


def test_capture_is_deterministic() -> None:
    scene = prepare("established")
    assert [d for _, d in scene.w.sent] == CAPTURED


@pytest.mark.parametrize("phase", PHASES)
def test_every_phase_finishes_without_fuzz(phase: str) -> None:
    finish(prepare(phase))


def forges_response_index(data: bytes) -> bool:
    """The genuine response with only its sender index changed (see the xfail test below)."""
    g = GENUINE_RESPONSE
    return len(data) == len(g) and data[:2] == g[:2] and data[6:] == g[6:] and data != g


# -- strategies ------------------------------------------------------------------------------------
@st.composite
def mutations(draw: st.DrawFn, original: bytes) -> bytes:
    """Flip, insert and delete a few random bytes; never returns ``original`` itself."""
    data = bytearray(original)
    while bytes(data) == original:
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(("flip", "flip", "insert", "delete")))
            if op == "flip" and data:
                i = draw(st.integers(0, len(data) - 1))
                data[i] ^= draw(st.integers(1, 255))
            elif op == "insert":
                i = draw(st.integers(0, len(data)))
                data[i:i] = draw(st.binary(min_size=1, max_size=8))
            elif data:
                i = draw(st.integers(0, len(data) - 1))
                del data[i : i + draw(st.integers(1, 8))]
    return bytes(data)


phases = st.sampled_from(PHASES)
targets = st.sampled_from("ab")
mutated_genuine = (
    st.sampled_from(CAPTURED).flatmap(mutations).filter(lambda d: not forges_response_index(d))
)
header = st.sampled_from([TYPE_HANDSHAKE_INITIATION, TYPE_HANDSHAKE_RESPONSE, TYPE_TRANSPORT]).map(
    lambda t: bytes([t, PROTOCOL_VERSION])
)
plausible = st.one_of(
    st.builds(bytes.__add__, header, st.binary(max_size=MAX_DATAGRAM)),
    st.binary(min_size=INITIATION_SIZE - 2, max_size=INITIATION_SIZE - 2).map(
        lambda b: bytes([TYPE_HANDSHAKE_INITIATION, PROTOCOL_VERSION]) + b
    ),
    st.binary(min_size=RESPONSE_SIZE - 2, max_size=RESPONSE_SIZE - 2).map(
        lambda b: bytes([TYPE_HANDSHAKE_RESPONSE, PROTOCOL_VERSION]) + b
    ),
)
counters = st.one_of(
    st.integers(0, 3),
    st.integers(0, 2**64 - 1),
    st.sampled_from([REJECT_AFTER_MESSAGES - 1, REJECT_AFTER_MESSAGES, 2**64 - 1]),
)
# Forgeries that name a live index, so they reach the AEAD and the replay window.
for_live_sessions = st.one_of(
    st.builds(
        lambda index, counter, ct: (
            bytes([TYPE_TRANSPORT, PROTOCOL_VERSION])
            + index.to_bytes(4, "big")
            + counter.to_bytes(8, "big")
            + ct
        ),
        st.sampled_from([A_INDEX, B_INDEX]),
        counters,
        st.binary(min_size=TRANSPORT_MIN_SIZE - 14, max_size=200),
    ),
    st.builds(
        lambda sender, noise: (
            bytes([TYPE_HANDSHAKE_RESPONSE, PROTOCOL_VERSION])
            + sender.to_bytes(4, "big")
            + A_INDEX.to_bytes(4, "big")
            + noise
        ),
        st.integers(0, 2**32 - 1),
        st.one_of(st.binary(min_size=48, max_size=48), st.just(GENUINE_RESPONSE[10:])),
    ).filter(lambda d: not forges_response_index(d) and d != GENUINE_RESPONSE),
)


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


# -- examples ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "counter"),
    [
        (b"", "dropped_malformed"),
        (b"\x00\x01\x00\x00", "dropped_stun"),
        (b"\x03", "dropped_stun"),
        (bytes([TYPE_TRANSPORT, 2]) + bytes(40), "dropped_malformed"),
        (bytes([TYPE_TRANSPORT, PROTOCOL_VERSION]) + bytes(MAX_DATAGRAM - 1), "dropped_malformed"),
        (bytes([TYPE_HANDSHAKE_INITIATION, PROTOCOL_VERSION]) + bytes(132), "dropped_handshake"),
        (GENUINE_RESPONSE, "dropped_unknown_session"),  # stale: that handshake is over
        (CAPTURED[2], "dropped_replay"),  # the genuine message packet, replayed
    ],
    ids=["empty", "stun", "stun-1", "version", "oversize", "initiation", "stale", "replay"],
)
def test_known_garbage_lands_in_the_right_counter(data: bytes, counter: str) -> None:
    scene = prepare("established")
    node = scene.w.b if data[:1] != bytes([TYPE_HANDSHAKE_RESPONSE]) else scene.w.a
    before = getattr(node.counters, counter)
    peer = scene.w.a if node is scene.w.b else scene.w.b
    feed_garbage(node, peer.identity.public_key, data, ATTACKER)
    assert getattr(node.counters, counter) == before + 1
    finish(scene)


def test_many_garbage_datagrams_are_all_accounted_for() -> None:
    scene = prepare("established")
    b = scene.w.b
    garbage = [bytes([i % 256]) * (i % 300) for i in range(1, 500)]
    garbage += [bytes([TYPE_TRANSPORT, PROTOCOL_VERSION]) + B_INDEX.to_bytes(4, "big") + bytes(40)]
    before = sum(v for k, v in b.counters.as_dict().items() if k.startswith("dropped_"))
    for data in garbage:
        b.receive_datagram(data, ATTACKER, now=T_FUZZ)
    after = sum(v for k, v in b.counters.as_dict().items() if k.startswith("dropped_"))
    assert after - before == len(garbage)
    assert b.next_event() is None and b.datagrams_to_send(now=T_FUZZ) == []
    finish(scene)


@pytest.mark.xfail(
    strict=True,
    reason="BUG: a handshake response's sender_index is not authenticated: the initiator "
    "accepts a copy with a forged sender_index, abandons the handshake, and the genuine "
    "response is then dropped as unknown_session; its transport packets go to a wrong index",
)
def test_response_with_a_forged_sender_index_is_rejected() -> None:
    scene = prepare("handshaking")
    genuine = scene.held_response
    forged = genuine[:2] + bytes(x ^ 0xFF for x in genuine[2:6]) + genuine[6:]
    feed_garbage(scene.w.a, scene.w.b.identity.public_key, forged, ADDR_B)
    finish(scene)
