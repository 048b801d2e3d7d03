"""The connection hash (protocol.md §2.4, §2.6): the handshake hash ``h`` of the session that
began a connection, which both phones hold while they share a session and which the call SAS
is computed from. Like the connection SAS, linked handshakes (rekeys, a re-handshake after
silence) carry it on, and a restart begins a new one.
"""

from harness import ADDR_A, ADDR_B, Wire, make_identity, make_pair, of_type
from peerline.proto.events import Event, MessageDelivered, MessageReceived
from peerline.proto.identity.sas import HANDSHAKE_HASH_SIZE, call_sas
from peerline.proto.node import Node, NodeConfig
from peerline.sim import LinkProfile, Network, Simulator
from peerline.sim.rng import SeededRng

CID = bytes(range(1, 9))
N_I, N_R = bytes(16), bytes(range(16))


def hashes(w: Wire) -> tuple[bytes | None, bytes | None]:
    return (
        w.a.connection_hash(w.b.identity.public_key),
        w.b.connection_hash(w.a.identity.public_key),
    )


def current_handshake_hash(node: Node, peer_key: bytes) -> bytes:
    current = node._peers[peer_key].current
    assert current is not None
    return current.handshake_hash


def test_no_session_no_connection_hash() -> None:
    w = make_pair()
    assert hashes(w) == (None, None)
    assert w.a.connection_hash(make_identity(9).public_key) is None  # not a peer at all


def test_both_phones_get_the_same_connection_hash() -> None:
    w = make_pair()
    w.a.send_message(w.b.identity.public_key, "hello", now=0.0)
    w.transfer(now=0.0)
    at_a, at_b = hashes(w)
    assert at_a is not None and len(at_a) == HANDSHAKE_HASH_SIZE
    assert at_a == at_b
    assert at_a == current_handshake_hash(w.a, w.b.identity.public_key)  # a new connection
    assert call_sas(at_a, CID, N_I, N_R) == call_sas(at_b, CID, N_I, N_R)


def test_glare_leaves_both_phones_with_one_connection_hash() -> None:
    for seed in range(5):
        w = make_pair(seed=seed)
        w.a.connect(w.b.identity.public_key, now=0.0)
        w.b.connect(w.a.identity.public_key, now=0.0)
        w.transfer(now=0.0)
        w.run_timers(until=5.0)
        at_a, at_b = hashes(w)
        assert at_a is not None and at_a == at_b


def test_rekeys_keep_the_connection_hash() -> None:
    cfg = NodeConfig(rekey_after_messages=3)
    w = make_pair(cfg, cfg)
    w.a.send_message(w.b.identity.public_key, "m0", now=0.0)
    w.transfer(now=0.0)
    first, _ = hashes(w)
    for i in range(1, 10):
        w.a.send_message(w.b.identity.public_key, f"m{i}", now=float(i))
        w.transfer(now=float(i))
    assert w.a.counters.handshakes_completed >= 3
    assert hashes(w) == (first, first)
    # It is inherited, not recomputed: the current session has a handshake hash of its own.
    assert current_handshake_hash(w.a, w.b.identity.public_key) != first


def test_a_handshake_in_flight_does_not_show_the_hash_in_reprs() -> None:
    cfg = NodeConfig(rekey_after_messages=3)
    w = make_pair(cfg, cfg)
    w.a.send_message(w.b.identity.public_key, "m0", now=0.0)
    w.transfer(now=0.0)
    first, _ = hashes(w)
    assert first is not None
    for i in range(1, 4):  # the rekey's initiation goes out, and its response never comes
        w.a.send_message(w.b.identity.public_key, f"m{i}", now=float(i))
        w.a.datagrams_to_send(now=float(i))
    peer = w.a._peers[w.b.identity.public_key]
    assert peer.handshake is not None and peer.handshake.link_hash == first
    for shown in (repr(peer), repr(peer.handshake), str(w.a.sessions(now=4.0))):
        assert first.hex() not in shown and repr(first) not in shown


def test_a_fresh_connection_after_a_restart_changes_the_connection_hash() -> None:
    w = make_pair()
    w.a.send_message(w.b.identity.public_key, "before", now=0.0)
    w.transfer(now=0.0)
    before, _ = hashes(w)
    # b restarts: same identity, no sessions; a still holds its old session
    b2 = Node(identity=make_identity(2), rng=SeededRng(77))
    b2.add_peer(w.a.identity.public_key, ADDR_A)
    w2 = Wire(a=w.a, b=b2)
    assert hashes(w2) == (before, None)
    w.a.send_message(b2.identity.public_key, "after restart", now=10.0)
    w2.transfer(now=10.0)
    w2.run_timers(until=30.0, now=10.0)
    assert [e.text for e in of_type(w2.events_b, MessageReceived)] == ["after restart"]
    at_a, at_b = hashes(w2)
    assert at_a is not None and at_a == at_b != before
    assert at_a == current_handshake_hash(w.a, b2.identity.public_key)


def test_silence_recovery_without_a_restart_keeps_the_connection_hash() -> None:
    """§4.7: only acknowledgements were lost, so the recovery handshake is linked."""
    rtt = 0.1
    sim = Simulator(seed=1, network=Network(LinkProfile(latency_s=rtt / 2)))
    a = Node(identity=make_identity(1), rng=sim.node_rng("a"))
    b = Node(identity=make_identity(2), rng=sim.node_rng("b"))
    a.add_peer(b.identity.public_key, ADDR_B)
    b.add_peer(a.identity.public_key, ADDR_A)
    sim.add_node(ADDR_A, a)
    sim.add_node(ADDR_B, b)
    events: list[Event] = []

    def drain() -> int:
        events.extend(iter(a.next_event, None))
        return len(of_type(events, MessageDelivered))

    a.send_message(b.identity.public_key, "hello", now=sim.now)
    sim.poke(ADDR_A)
    assert sim.run_until_predicate(lambda: drain() >= 1, timeout=10.0)
    sim.run_until(5.0)
    before = a.connection_hash(b.identity.public_key)
    assert before is not None and before == b.connection_hash(a.identity.public_key)
    completed = a.counters.handshakes_completed
    lossy = LinkProfile(latency_s=rtt / 2, loss=1.0)
    sim.network.set_link(ADDR_B[0], ADDR_A[0], lossy, symmetric=False)  # b -> a is lost
    a.send_message(b.identity.public_key, "acks lost", now=sim.now)
    sim.poke(ADDR_A)
    sim.run_for(7.5)  # a transmits four times and starts a handshake; its response is lost
    sim.network.clear_link(ADDR_B[0], ADDR_A[0], symmetric=False)
    assert sim.run_until_predicate(lambda: drain() >= 2, timeout=60.0)
    sim.run_for(2.0)
    assert a.counters.handshakes_completed > completed
    assert current_handshake_hash(a, b.identity.public_key) != before
    assert a.connection_hash(b.identity.public_key) == before
    assert b.connection_hash(a.identity.public_key) == before
