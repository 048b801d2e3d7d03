"""Node: handshakes, sessions and reliable messages between two nodes (protocol.md §4-§6)."""

from dataclasses import dataclass

import pytest

from harness import ADDR_A, ADDR_B, make_identity, make_pair, of_type
from peerline.errors import LocalProtocolError
from peerline.proto.events import (
    Event,
    HandshakeCompleted,
    MessageDelivered,
    MessageFailed,
    MessageReceived,
    PeerEndpointChanged,
)
from peerline.proto.node import Node, NodeConfig, _Peer
from peerline.sim import LinkProfile, Network, Simulator
from peerline.sim.rng import SeededRng
from peerline.types import Addr
from peerline.wire.packet import RESPONSE_SIZE, TRANSPORT_MIN_SIZE
from peerline.wire.spec import REJECT_AFTER_TIME, TYPE_TRANSPORT


def test_message_is_delivered_both_ways_after_one_handshake() -> None:
    w = make_pair()
    w.a.send_message(w.b.identity.public_key, "hello b", now=0.0)
    w.transfer(now=0.0)
    w.b.send_message(w.a.identity.public_key, "hello a", now=0.1)
    w.transfer(now=0.1)
    assert [e.text for e in of_type(w.events_b, MessageReceived)] == ["hello b"]
    assert [e.text for e in of_type(w.events_a, MessageReceived)] == ["hello a"]
    assert len(of_type(w.events_a, MessageDelivered)) == 1
    assert len(of_type(w.events_b, MessageDelivered)) == 1
    assert w.a.counters.handshakes_completed == w.b.counters.handshakes_completed == 1


def test_both_sides_show_the_same_sas() -> None:
    w = make_pair()
    w.a.connect(w.b.identity.public_key, now=0.0)
    w.transfer(now=0.0)
    (ha,) = of_type(w.events_a, HandshakeCompleted)
    (hb,) = of_type(w.events_b, HandshakeCompleted)
    assert ha.sas == hb.sas and ha.initiator and not hb.initiator
    assert len(ha.sas.replace(" ", "")) == 6


def test_response_is_smaller_than_initiation_so_no_amplification() -> None:
    w = make_pair()
    w.a.connect(w.b.identity.public_key, now=0.0)
    w.transfer(now=0.0)
    init, resp = w.sent[0][1], w.sent[1][1]
    assert len(resp) == RESPONSE_SIZE < len(init)


def test_transport_overhead_is_30_bytes() -> None:
    w = make_pair()
    w.a.connect(w.b.identity.public_key, now=0.0)
    w.transfer(now=0.0)
    keepalive = w.sent[2][1]  # key confirmation after the handshake
    assert keepalive[0] == TYPE_TRANSPORT and len(keepalive) == TRANSPORT_MIN_SIZE == 30


def test_tampered_transport_packet_is_dropped_and_counted() -> None:
    w = make_pair()
    w.a.send_message(w.b.identity.public_key, "first", now=0.0)
    w.transfer(now=0.0)
    w.a.send_message(w.b.identity.public_key, "second", now=1.0)
    ((data, _dst),) = w.a.datagrams_to_send(now=1.0)
    for i in (3, 20, len(data) - 1):  # header (AD), ciphertext, tag
        forged = bytearray(data)
        forged[i] ^= 0x01
        w.b.receive_datagram(bytes(forged), ADDR_A, now=1.0)
    w.drain_events()
    assert w.b.counters.dropped_auth == 2  # byte 3 changes the index: unknown session
    assert w.b.counters.dropped_unknown_session == 1
    assert [e.text for e in of_type(w.events_b, MessageReceived)] == ["first"]


def test_replayed_transport_packet_is_dropped_and_counted() -> None:
    w = make_pair()
    w.a.send_message(w.b.identity.public_key, "once", now=0.0)
    w.transfer(now=0.0)
    data = next(d for who, d in w.sent if who == "a" and d[0] == TYPE_TRANSPORT and len(d) > 30)
    w.b.receive_datagram(data, ADDR_A, now=0.5)
    w.b.receive_datagram(data, ADDR_A, now=0.6)
    w.drain_events()
    assert w.b.counters.dropped_replay == 2
    assert len(of_type(w.events_b, MessageReceived)) == 1


def test_duplicate_message_after_lost_ack_is_acked_but_not_shown_twice() -> None:
    w = make_pair()
    w.a.send_message(w.b.identity.public_key, "once", now=0.0)
    # initiation, response, a's data packet, b's ack: drop the ack
    w.transfer(now=0.0, drop=[3])
    assert not of_type(w.events_a, MessageDelivered)
    w.run_timers(until=5.0)
    assert len(of_type(w.events_b, MessageReceived)) == 1
    assert len(of_type(w.events_a, MessageDelivered)) == 1
    assert w.b.counters.messages_duplicate == 1


def test_lost_initiation_is_retried_with_a_fresh_ephemeral_key() -> None:
    w = make_pair()
    w.a.send_message(w.b.identity.public_key, "x", now=0.0)
    w.transfer(now=0.0, drop=[0])
    w.run_timers(until=3.0)
    inits = [d for who, d in w.sent if who == "a" and d[0] == 0x50]
    assert len(inits) == 2 and inits[0][6:38] != inits[1][6:38]
    assert len(of_type(w.events_b, MessageReceived)) == 1


def test_unreachable_peer_fails_messages_after_handshake_timeout() -> None:
    cfg = NodeConfig(handshake_timeout_s=10.0)
    w = make_pair(cfg)
    w.a.send_message(w.b.identity.public_key, "void", now=0.0)
    w.a.datagrams_to_send(now=0.0)  # lost
    now = 0.0
    while (t := w.a.get_timer()) is not None and t <= 20.0:
        now = t
        w.a.handle_timer(now=now)
        w.a.datagrams_to_send(now=now)  # all lost
    failed = [e for e in iter(w.a.next_event, None) if isinstance(e, MessageFailed)]
    assert len(failed) == 1 and failed[0].reason == "unreachable"
    assert 10.0 <= now < 12.0


def test_rekey_by_message_count_keeps_messages_flowing() -> None:
    cfg = NodeConfig(rekey_after_messages=5)
    w = make_pair(cfg, cfg)
    for i in range(20):
        w.a.send_message(w.b.identity.public_key, f"m{i}", now=float(i))
        w.transfer(now=float(i))
    assert [e.text for e in of_type(w.events_b, MessageReceived)] == [f"m{i}" for i in range(20)]
    assert w.a.counters.rekeys + w.b.counters.rekeys >= 3  # whichever side's counter crosses first
    assert w.a.counters.handshakes_completed >= 4


def test_rekey_by_time_starts_a_new_handshake() -> None:
    cfg = NodeConfig(rekey_after_time_s=30.0)
    w = make_pair(cfg, cfg)
    w.a.send_message(w.b.identity.public_key, "early", now=0.0)
    w.transfer(now=0.0)
    w.a.send_message(w.b.identity.public_key, "late", now=31.0)
    w.transfer(now=31.0)
    assert w.a.counters.rekeys == 1
    assert len(of_type(w.events_a, HandshakeCompleted)) == 2
    assert [e.text for e in of_type(w.events_b, MessageReceived)] == ["early", "late"]


def test_idle_session_is_wiped_after_reject_after_time() -> None:
    w = make_pair()
    w.a.connect(w.b.identity.public_key, now=0.0)
    w.transfer(now=0.0)
    assert w.a.sessions(now=1.0)
    w.run_timers(until=REJECT_AFTER_TIME + 1)
    assert w.a.sessions(now=REJECT_AFTER_TIME + 1) == []
    assert w.a.get_timer() is None and w.b.get_timer() is None


def test_unknown_caller_is_accepted_and_answered_by_key() -> None:
    a = Node(identity=make_identity(1), rng=SeededRng(1))
    b = Node(identity=make_identity(2), rng=SeededRng(2))
    a.add_peer(b.identity.public_key, ADDR_B)
    from harness import Wire

    w = Wire(a=a, b=b)
    a.send_message(b.identity.public_key, "hi stranger", now=0.0)
    w.transfer(now=0.0)
    (msg,) = of_type(w.events_b, MessageReceived)
    assert msg.peer_key == a.identity.public_key
    b.send_message(a.identity.public_key, "hi back", now=1.0)
    w.transfer(now=1.0)
    assert [e.text for e in of_type(w.events_a, MessageReceived)] == ["hi back"]


def test_initiation_to_a_different_responder_key_is_dropped() -> None:
    a = Node(identity=make_identity(1), rng=SeededRng(1))
    wrong = Node(identity=make_identity(3), rng=SeededRng(3))
    a.add_peer(make_identity(2).public_key, ADDR_B)  # a believes b's key lives at ADDR_B
    a.connect(make_identity(2).public_key, now=0.0)
    ((data, _),) = a.datagrams_to_send(now=0.0)
    wrong.receive_datagram(data, ADDR_A, now=0.0)
    assert wrong.counters.dropped_mac1 == 1  # rejected by one keyed hash, before any DH
    assert wrong.datagrams_to_send(now=0.0) == []


def test_forged_response_does_not_spoil_the_real_handshake() -> None:
    w = make_pair()
    w.a.connect(w.b.identity.public_key, now=0.0)
    ((init, _),) = w.a.datagrams_to_send(now=0.0)
    w.b.receive_datagram(init, ADDR_A, now=0.0)
    ((resp, _),) = w.b.datagrams_to_send(now=0.0)
    forged = bytearray(resp)
    forged[20] ^= 0xFF  # inside the responder's ephemeral key
    w.a.receive_datagram(bytes(forged), ADDR_B, now=0.0)
    assert w.a.counters.dropped_handshake == 1
    w.a.receive_datagram(resp, ADDR_B, now=0.0)
    assert w.a.counters.handshakes_completed == 1


def test_replayed_initiation_does_not_displace_the_working_session() -> None:
    w = make_pair()
    w.a.connect(w.b.identity.public_key, now=0.0)
    w.transfer(now=0.0)
    init = w.sent[0][1]
    w.b.receive_datagram(init, ("203.0.113.66", 9), now=1.0)  # attacker replays it
    w.b.datagrams_to_send(now=1.0)
    w.b.send_message(w.a.identity.public_key, "still here", now=2.0)
    w.transfer(now=2.0)
    assert [e.text for e in of_type(w.events_a, MessageReceived)] == ["still here"]
    assert w.b.peer_endpoint(w.a.identity.public_key) == ADDR_A


def test_authenticated_packet_from_new_address_moves_the_path() -> None:
    w = make_pair()
    w.a.send_message(w.b.identity.public_key, "one", now=0.0)
    w.transfer(now=0.0)
    new_addr = ("192.0.2.77", 5000)
    w.a.send_message(w.b.identity.public_key, "two", now=1.0)
    ((data, _),) = w.a.datagrams_to_send(now=1.0)
    w.b.receive_datagram(data, new_addr, now=1.0)
    w.drain_events()
    (moved,) = of_type(w.events_b, PeerEndpointChanged)
    assert moved.addr == new_addr
    assert all(dst == new_addr for _, dst in w.b.datagrams_to_send(now=1.0))


def test_simultaneous_first_messages_glare_converges() -> None:
    w = make_pair()
    w.a.send_message(w.b.identity.public_key, "from a", now=0.0)
    w.b.send_message(w.a.identity.public_key, "from b", now=0.0)
    w.transfer(now=0.0)
    w.run_timers(until=10.0)
    assert [e.text for e in of_type(w.events_b, MessageReceived)] == ["from a"]
    assert [e.text for e in of_type(w.events_a, MessageReceived)] == ["from b"]
    assert len(of_type(w.events_a, MessageDelivered)) == 1


def test_send_message_to_unknown_peer_is_a_local_error() -> None:
    w = make_pair()
    with pytest.raises(LocalProtocolError):
        w.a.send_message(make_identity(9).public_key, "x", now=0.0)
    with pytest.raises(ValueError):
        w.a.send_message(w.b.identity.public_key, "x" * 1001, now=0.0)


def test_adding_self_as_peer_is_refused() -> None:
    w = make_pair()
    with pytest.raises(LocalProtocolError):
        w.a.add_peer(w.a.identity.public_key, ADDR_A)


def test_idle_session_sends_keepalives_until_it_expires_and_never_rekeys_for_them() -> None:
    cfg = NodeConfig(keepalive_s=10.0)
    w = make_pair(cfg, cfg)
    w.a.connect(w.b.identity.public_key, now=0.0)
    w.transfer(now=0.0)
    w.run_timers(until=REJECT_AFTER_TIME + 5)
    # each side keeps its session alive every 10 s until the 180 s lifetime ends
    assert 15 <= w.a.counters.keepalives_sent <= 18
    assert 15 <= w.b.counters.keepalives_sent <= 18
    assert w.a.counters.keepalive_bytes_sent == 30 * w.a.counters.keepalives_sent  # 14 + 16
    assert w.a.counters.rekeys == w.b.counters.rekeys == 0
    assert w.a.sessions(now=REJECT_AFTER_TIME + 5) == []
    assert w.a.get_timer() is None


def test_keepalive_is_not_sent_while_traffic_flows() -> None:
    cfg = NodeConfig(keepalive_s=10.0)
    w = make_pair(cfg, cfg)
    for i in range(6):
        w.a.send_message(w.b.identity.public_key, f"m{i}", now=float(i * 5))
        w.transfer(now=float(i * 5))
    assert w.a.counters.keepalives_sent == 0


def test_responder_under_load_answers_with_a_cookie_and_accepts_the_retry_with_mac2() -> None:
    """protocol.md §4.5: beyond handshakes_per_s, an initiation needs a valid mac2."""
    busy = NodeConfig(handshakes_per_s=0.01)  # one initiation, then under load for a long while
    w = make_pair(None, busy)
    third = Node(identity=make_identity(3), rng=SeededRng(3))
    third.add_peer(w.b.identity.public_key, ADDR_B)
    w.a.connect(w.b.identity.public_key, now=0.0)
    w.transfer(now=0.0)  # uses b's one token
    addr_c = ("203.0.113.9", 4720)
    third.connect(w.b.identity.public_key, now=1.0)
    ((init, _),) = third.datagrams_to_send(now=1.0)
    w.b.receive_datagram(init, addr_c, now=1.0)
    ((reply, dst),) = w.b.datagrams_to_send(now=1.0)
    assert dst == addr_c and reply[0] == 0x52 and len(reply) == 62 < len(init) == 166
    assert w.b.counters.cookie_replies_sent == 1
    third.receive_datagram(reply, ADDR_B, now=1.0)
    assert third.counters.cookies_received == 1
    t = third.get_timer()
    assert t is not None
    third.handle_timer(now=t)
    ((retry, _),) = third.datagrams_to_send(now=t)
    assert retry[150:166] != bytes(16)  # mac2 is set now
    w.b.receive_datagram(retry, addr_c, now=t)
    ((resp, _),) = w.b.datagrams_to_send(now=t)
    assert resp[0] == 0x51
    third.receive_datagram(resp, ADDR_B, now=t)
    assert third.counters.handshakes_completed == 1


def test_mac2_from_a_spoofed_address_does_not_pass_under_load() -> None:
    busy = NodeConfig(handshakes_per_s=0.01)
    w = make_pair(None, busy)
    w.a.connect(w.b.identity.public_key, now=0.0)
    w.transfer(now=0.0)
    victim, attacker = ("203.0.113.9", 4720), ("203.0.113.66", 4720)
    third = Node(identity=make_identity(3), rng=SeededRng(3))
    third.add_peer(w.b.identity.public_key, ADDR_B)
    third.connect(w.b.identity.public_key, now=1.0)
    ((init, _),) = third.datagrams_to_send(now=1.0)
    w.b.receive_datagram(init, attacker, now=1.0)
    ((reply, _),) = w.b.datagrams_to_send(now=1.0)
    third.receive_datagram(reply, ADDR_B, now=1.0)
    t = third.get_timer()
    assert t is not None
    third.handle_timer(now=t)
    ((retry, _),) = third.datagrams_to_send(now=t)
    w.b.receive_datagram(retry, victim, now=t)  # cookie was made for the attacker's address
    ((again, _),) = w.b.datagrams_to_send(now=t)
    assert again[0] == 0x52 and w.b.counters.cookie_replies_sent == 2


def test_forged_cookie_reply_is_dropped() -> None:
    w = make_pair()
    w.a.connect(w.b.identity.public_key, now=0.0)
    ((init, _),) = w.a.datagrams_to_send(now=0.0)
    index = init[2:6]
    forged = bytes((0x52, 1)) + index + bytes(24) + bytes(32)
    w.a.receive_datagram(forged, ADDR_B, now=0.1)
    assert w.a.counters.dropped_auth == 1 and w.a.counters.cookies_received == 0


def test_response_index_is_authenticated() -> None:
    """The responder's index travels encrypted: changing bytes in the response fails the tag."""
    w = make_pair()
    w.a.connect(w.b.identity.public_key, now=0.0)
    ((init, _),) = w.a.datagrams_to_send(now=0.0)
    w.b.receive_datagram(init, ADDR_A, now=0.0)
    ((resp, _),) = w.b.datagrams_to_send(now=0.0)
    for i in range(6, len(resp)):
        forged = bytearray(resp)
        forged[i] ^= 0x01
        w.a.receive_datagram(bytes(forged), ADDR_B, now=0.0)
    assert w.a.counters.handshakes_completed == 0
    assert w.a.counters.dropped_handshake == len(resp) - 6
    w.a.receive_datagram(resp, ADDR_B, now=0.0)
    assert w.a.counters.handshakes_completed == 1


def test_unconfirmed_responder_sessions_expire_quickly_and_free_the_peer_table() -> None:
    """Anyone who knows a phone's key can make valid initiations; they must not pile up."""
    target = Node(
        identity=make_identity(2),
        rng=SeededRng(2),
        config=NodeConfig(max_peers=10, handshakes_per_s=1000.0, confirm_timeout_s=15.0),
    )

    def stranger_initiation(seed: int) -> bytes:
        s = Node(identity=make_identity(100 + seed), rng=SeededRng(seed))
        s.add_peer(target.identity.public_key, ADDR_B)
        s.connect(target.identity.public_key, now=0.0)
        ((init, _),) = s.datagrams_to_send(now=0.0)
        return init

    for i in range(20):
        target.receive_datagram(stranger_initiation(i), ("203.0.113.7", 1000 + i), now=0.0)
    assert len(target.datagrams_to_send(now=0.0)) == 10
    assert target.counters.dropped_peer_limit == 10
    t = target.get_timer()
    assert t == pytest.approx(15.0)
    target.handle_timer(now=t)
    assert target.get_timer() is None  # nothing held any more
    target.receive_datagram(stranger_initiation(50), ("203.0.113.7", 999), now=16.0)
    assert len(target.datagrams_to_send(now=16.0)) == 1


def test_duplicated_initiation_before_confirmation_does_not_cut_off_the_new_session() -> None:
    w = make_pair()
    w.a.send_message(w.b.identity.public_key, "first", now=0.0)
    ((init, _),) = w.a.datagrams_to_send(now=0.0)
    w.b.receive_datagram(init, ADDR_A, now=0.0)
    ((resp, _),) = w.b.datagrams_to_send(now=0.0)
    w.b.receive_datagram(init, ADDR_A, now=0.01)  # the network duplicated the initiation
    w.b.datagrams_to_send(now=0.01)  # its response goes nowhere useful
    w.a.receive_datagram(resp, ADDR_B, now=0.02)
    w.transfer(now=0.02)
    assert [e.text for e in of_type(w.events_b, MessageReceived)] == ["first"]
    assert len(of_type(w.events_a, MessageDelivered)) == 1


def test_peer_that_restarted_gets_a_fresh_handshake_and_the_message_arrives() -> None:
    w = make_pair()
    w.a.send_message(w.b.identity.public_key, "before", now=0.0)
    w.transfer(now=0.0)
    from harness import Wire

    # b restarts: same identity, no sessions; a still holds its old session
    b2 = Node(identity=make_identity(2), rng=SeededRng(77))
    b2.add_peer(w.a.identity.public_key, ADDR_A)
    w2 = Wire(a=w.a, b=b2)
    w.a.send_message(b2.identity.public_key, "after restart", now=10.0)
    w2.transfer(now=10.0)
    w2.run_timers(until=30.0, now=10.0)
    assert [e.text for e in of_type(w2.events_b, MessageReceived)] == ["after restart"]
    delivered_at = w.a.counters.messages_delivered
    assert delivered_at == 2 and w.a.counters.messages_failed == 0


def test_glare_leaves_both_phones_on_one_session_with_one_sas() -> None:
    for seed in range(5):
        w = make_pair(seed=seed)
        w.a.connect(w.b.identity.public_key, now=0.0)
        w.b.connect(w.a.identity.public_key, now=0.0)
        w.transfer(now=0.0)
        w.run_timers(until=5.0)
        (sa,) = w.a.sessions(now=5.0)
        (sb,) = w.b.sessions(now=5.0)
        assert sa["sas"] == sb["sas"]
        assert sa["initiator"] != sb["initiator"]  # the same session, seen from both ends


def test_sas_stays_the_same_across_rekeys_of_one_connection() -> None:
    cfg = NodeConfig(rekey_after_messages=3)
    w = make_pair(cfg, cfg)
    w.a.send_message(w.b.identity.public_key, "m0", now=0.0)
    w.transfer(now=0.0)
    (first,) = w.a.sessions(now=0.0)
    for i in range(1, 10):
        w.a.send_message(w.b.identity.public_key, f"m{i}", now=float(i))
        w.transfer(now=float(i))
    assert w.a.counters.handshakes_completed >= 3
    (later,) = w.a.sessions(now=10.0)
    (other,) = w.b.sessions(now=10.0)
    assert later["sas"] == first["sas"] == other["sas"]


def test_cookie_holder_is_still_rate_limited_per_address_under_load() -> None:
    busy = NodeConfig(handshakes_per_s=0.01)
    w = make_pair(None, busy)
    w.a.connect(w.b.identity.public_key, now=0.0)
    w.transfer(now=0.0)
    src = ("203.0.113.9", 4720)
    third = Node(identity=make_identity(3), rng=SeededRng(3))
    third.add_peer(w.b.identity.public_key, ADDR_B)
    third.connect(w.b.identity.public_key, now=1.0)
    ((init, _),) = third.datagrams_to_send(now=1.0)
    w.b.receive_datagram(init, src, now=1.0)
    ((reply, _),) = w.b.datagrams_to_send(now=1.0)
    third.receive_datagram(reply, ADDR_B, now=1.0)
    t = third.get_timer()
    assert t is not None
    third.handle_timer(now=t)
    ((with_cookie, _),) = third.datagrams_to_send(now=t)
    for _ in range(20):  # an attacker at a real address replays its cookie-holding initiation
        w.b.receive_datagram(with_cookie, src, now=t)
    assert 1 <= len(w.b.datagrams_to_send(now=t)) <= 5
    assert w.b.counters.dropped_rate_limited >= 15


# -- restarts, silence, glare and the connection SAS (protocol.md §2.4, §4.7-§4.10) -----------
# These run in the simulator with a 100 ms round trip, so that handshakes and silence take the
# time they take on a real network (the Wire above delivers everything at once).

A_AT: Addr = ADDR_A
B_AT: Addr = ADDR_B
RTT = 0.1


@dataclass
class Net:
    """Two phones in the simulator; ``restart`` replaces one by a fresh Node with its identity."""

    sim: Simulator
    nodes: dict[str, Node]
    events: dict[str, list[Event]]

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def other(self, name: str) -> str:
        return "b" if name == "a" else "a"

    def addr(self, name: str) -> Addr:
        return A_AT if name == "a" else B_AT

    def drain(self) -> None:
        for name, node in self.nodes.items():
            self.events[name].extend(iter(node.next_event, None))

    def send(self, frm: str, text: str) -> None:
        to = self.nodes[self.other(frm)].identity.public_key
        self.nodes[frm].send_message(to, text, now=self.sim.now)
        self.sim.poke(self.addr(frm))

    def restart(self, name: str) -> None:
        self.sim.remove_node(self.addr(name))
        fresh = Node(identity=self.nodes[name].identity, rng=self.sim.node_rng(f"{name}-restarted"))
        fresh.add_peer(
            self.nodes[self.other(name)].identity.public_key, self.addr(self.other(name))
        )
        self.nodes[name] = fresh
        self.events[name] = []
        self.sim.add_node(self.addr(name), fresh)

    def run_until_received(self, name: str, text: str, timeout: float = 60.0) -> float:
        """Run until ``name`` has received ``text``; returns how long that took."""
        start = self.sim.now

        def got() -> bool:
            self.drain()
            return any(isinstance(e, MessageReceived) and e.text == text for e in self.events[name])

        assert self.sim.run_until_predicate(got, timeout=timeout), self.sim.trace_tail()
        return self.sim.now - start

    def run_until_delivered(self, name: str, count: int, timeout: float = 60.0) -> float:
        start = self.sim.now

        def done() -> bool:
            self.drain()
            return len(of_type(self.events[name], MessageDelivered)) >= count

        assert self.sim.run_until_predicate(done, timeout=timeout), self.sim.trace_tail()
        return self.sim.now - start

    def shown_sas(self) -> tuple[list[str], list[str]]:
        now = self.sim.now
        return (
            [s["sas"] for s in self.nodes["a"].sessions(now=now)],
            [s["sas"] for s in self.nodes["b"].sessions(now=now)],
        )


def make_net(seed: int = 1) -> Net:
    sim = Simulator(seed=seed, network=Network(LinkProfile(latency_s=RTT / 2)))
    a = Node(identity=make_identity(1), rng=sim.node_rng("a"))
    b = Node(identity=make_identity(2), rng=sim.node_rng("b"))
    a.add_peer(b.identity.public_key, B_AT)
    b.add_peer(a.identity.public_key, A_AT)
    sim.add_node(A_AT, a)
    sim.add_node(B_AT, b)
    return Net(sim=sim, nodes={"a": a, "b": b}, events={"a": [], "b": []})


def connected_net(first: str = "a", seed: int = 1) -> Net:
    """a and b with one session, made by ``first``'s message at t = 0, then idle until t = 5."""
    net = make_net(seed)
    net.send(first, "hello")
    net.run_until_received(net.other(first), "hello")
    net.sim.run_until(5.0)
    net.drain()
    return net


def smaller_key_name(net: Net) -> str:
    a, b = net.nodes["a"].identity.public_key, net.nodes["b"].identity.public_key
    return "a" if a < b else "b"


@pytest.mark.parametrize("restarted", ["a", "b"])
@pytest.mark.parametrize("sender", ["restarted", "survivor"])
def test_both_phones_show_the_same_sas_after_one_restarts(restarted: str, sender: str) -> None:
    """§2.4: the restarted phone cannot carry the old connection on, so neither may."""
    net = connected_net()
    (before,) = net.shown_sas()[0]
    net.restart(restarted)
    frm = restarted if sender == "restarted" else net.other(restarted)
    net.send(frm, "after the restart")
    net.run_until_received(net.other(frm), "after the restart")
    net.sim.run_for(1.0)
    shown_a, shown_b = net.shown_sas()
    assert shown_a == shown_b and len(shown_a) == 1
    assert shown_a != [before]  # a new connection: the old digits were never checked by b2


def test_silence_recovery_after_a_restart_runs_one_handshake() -> None:
    """§4.8: the response to the recovery handshake counts as hearing from the peer, so the
    message it makes due at once does not look unanswered and start another handshake."""
    net = connected_net()
    net.restart("b")
    before = net.nodes["a"].counters.handshakes_initiated
    net.send("a", "are you there")
    took = net.run_until_delivered("a", 2)  # "hello", then this one
    net.sim.run_for(20.0)
    assert net.nodes["a"].counters.handshakes_initiated - before == 1
    assert net.nodes["b"].counters.handshakes_initiated == 0
    assert 7.0 < took < 7.0 + 3 * RTT  # silence is noticed at the fourth transmission (~7 s)


def test_silence_recovery_without_a_restart_keeps_the_sas() -> None:
    """§2.4, §4.7: if both phones still hold the session (only acknowledgements were lost),
    the recovery handshake proves it, and the connection and its SAS go on."""
    net = connected_net()
    (before,) = net.shown_sas()[0]
    lossy = LinkProfile(latency_s=RTT / 2, loss=1.0)
    net.sim.network.set_link(B_AT[0], A_AT[0], lossy, symmetric=False)  # b -> a is lost
    net.send("a", "acks lost")
    net.sim.run_for(7.5)  # a transmits four times and starts a handshake; its response is lost
    net.sim.network.clear_link(B_AT[0], A_AT[0], symmetric=False)
    net.run_until_delivered("a", 2)
    net.sim.run_for(2.0)
    assert net.nodes["a"].counters.handshakes_completed >= 2
    assert net.shown_sas() == ([before], [before])


def test_new_session_after_a_restart_is_used_at_once_even_within_seconds() -> None:
    """§4.10: a session the peer lost (it restarted) is not in a glare with the new one, even
    when the old one is only seconds old and was initiated by the smaller key."""
    net = make_net()
    small = smaller_key_name(net)
    other = net.other(small)
    net.send(small, "hello")  # the old session is initiated by the smaller key
    net.run_until_received(other, "hello")
    net.sim.run_for(2.0)
    net.restart(other)
    net.send(other, "after the restart")
    took = net.run_until_delivered(other, 1)
    net.sim.run_for(20.0)
    assert took < 3 * RTT  # handshake, message, acknowledgement
    assert net.nodes[other].counters.handshakes_initiated == 1
    assert net.nodes[small].counters.handshakes_initiated == 1  # only its first one
    shown_a, shown_b = net.shown_sas()
    assert shown_a == shown_b


def test_a_late_confirmed_older_session_does_not_displace_a_newer_one() -> None:
    """§4.10: b starts its handshake after it answered a's, but confirms a's session only
    after its own completed. Both phones must still agree that b's session is the newer one."""
    w = make_pair()
    w.a.connect(w.b.identity.public_key, now=0.0)
    ((init_a, _),) = w.a.datagrams_to_send(now=0.0)
    w.b.receive_datagram(init_a, ADDR_A, now=0.0)
    ((resp_b, _),) = w.b.datagrams_to_send(now=0.0)
    w.a.receive_datagram(resp_b, ADDR_B, now=0.05)
    w.a.datagrams_to_send(now=0.05)  # a's key confirmation is lost: b's session stays pending
    w.b.send_message(w.a.identity.public_key, "from b", now=0.1)  # so b starts its own
    w.transfer(now=0.1)
    w.a.send_message(w.b.identity.public_key, "from a", now=0.2)
    w.transfer(now=0.2)
    w.run_timers(until=5.0, now=0.2)
    (sa,) = w.a.sessions(now=5.0)
    (sb,) = w.b.sessions(now=5.0)
    assert sa["initiator"] is False and sb["initiator"] is True  # both on b's session
    assert sa["sas"] == sb["sas"]


def test_burst_of_duplicated_initiations_does_not_cut_off_the_new_session() -> None:
    """§4.9, §7.11: repeats of an initiation already answered make no new pending session, so
    four or more of them cannot push the real one out. They get the same response again."""
    w = make_pair()
    w.a.send_message(w.b.identity.public_key, "first", now=0.0)
    ((init, _),) = w.a.datagrams_to_send(now=0.0)
    w.b.receive_datagram(init, ADDR_A, now=0.0)
    ((resp, _),) = w.b.datagrams_to_send(now=0.0)
    attacker = ("203.0.113.66", 9)
    for i in range(8):  # duplicates, or an attacker replaying what it captured
        w.b.receive_datagram(init, attacker, now=0.01 + i * 0.001)
    assert w.b.datagrams_to_send(now=0.02) == [(resp, attacker)] * 8  # no new handshake work
    assert w.b.counters.initiations_repeated == 8
    w.a.receive_datagram(resp, ADDR_B, now=0.03)
    w.transfer(now=0.03)
    assert [e.text for e in of_type(w.events_b, MessageReceived)] == ["first"]
    assert len(of_type(w.events_a, MessageDelivered)) == 1
    w.b.receive_datagram(init, attacker, now=0.04)  # once confirmed, a repeat gets nothing
    assert w.b.datagrams_to_send(now=0.04) == []
    assert w.b.counters.initiations_repeated == 9


def test_initiation_raced_ahead_by_an_eavesdropper_still_completes_the_handshake() -> None:
    """§4.9: if a copy of the initiation reaches b first from another address, the real one
    is a repeat; b answers it with the same response, so a still gets one at once."""
    w = make_pair()
    w.a.send_message(w.b.identity.public_key, "raced", now=0.0)
    ((init, _),) = w.a.datagrams_to_send(now=0.0)
    w.b.receive_datagram(init, ("203.0.113.66", 9), now=0.0)
    w.b.datagrams_to_send(now=0.0)  # the response goes to the eavesdropper, who drops it
    w.b.receive_datagram(init, ADDR_A, now=0.01)
    w.transfer(now=0.01)
    assert [e.text for e in of_type(w.events_b, MessageReceived)] == ["raced"]
    assert w.a.counters.handshakes_initiated == 1


def test_handshake_gives_up_at_its_deadline_without_spinning() -> None:
    """§4.8: the give-up check uses the same sum as the deadline ``get_timer`` reports, so a
    rounding difference cannot leave the timer due forever (found at t0 = 9.600757126093018)."""
    a = Node(identity=make_identity(1), rng=SeededRng(1), config=NodeConfig())
    a.add_peer(make_identity(2).public_key, ADDR_B)
    t0 = 9.600757126093018
    a.send_message(make_identity(2).public_key, "void", now=t0)
    now = t0
    while (t := a.get_timer()) is not None and t <= t0 + 60:
        assert t > now or t == t0, "timer did not advance"
        now = t
        a.handle_timer(now=now)
        a.datagrams_to_send(now=now)
        assert a.get_timer() is None or a.get_timer() > now  # type: ignore[operator]
    failed = of_type(list(iter(a.next_event, None)), MessageFailed)
    assert [f.reason for f in failed] == ["unreachable"]


def test_peer_repr_does_not_show_the_cookie() -> None:
    """design.md rule 13: a cookie is a mac2 key."""
    peer = _Peer(public_key=bytes(32), x25519_public=bytes(32), endpoint=None, cookie=b"\xab" * 16)
    assert "cookie=" not in repr(peer) and "\\xab" not in repr(peer)
