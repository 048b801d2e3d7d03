"""Session paths (protocol.md §5.7, §11.3): probing, validation, migration and quiet paths.

Two nodes wired by hand (``harness.Wire``), every datagram placed where the test says, so
each rule is shown on its own:

- a probe (PATH_CHALLENGE) is echoed to where it came from, and never moves the path;
- the echo (PATH_RESPONSE) moves the prober's path only if it comes back from the very address
  probed, and then what is pending is sent there at once (``PathValidated(moved=True)``);
- otherwise the path follows the newest authenticated non-probe packet of the current session:
  a late packet from an old address (or an older session) never moves it back, a newer one from
  a new address does (mobility);
- ``PathQuiet``: once per silence, at the first retransmission the peer did not answer;
- ``redirect``: a handshake in flight is sent again at the new address at once; a live
  session is probed there instead of being moved blindly.
"""

import pytest

from harness import ADDR_A, ADDR_B, Wire, make_pair, of_type
from peerline.errors import LocalProtocolError
from peerline.proto.events import (
    Event,
    HandshakeCompleted,
    MessageDelivered,
    MessageReceived,
    PathQuiet,
    PathValidated,
    PeerEndpointChanged,
    PeerSilent,
)
from peerline.proto.nat.relay import relayed_addr
from peerline.proto.node import MAX_PROBES, PROBE_LIFETIME_S, RETURN_HOLD_S, Node, NodeConfig
from peerline.types import Addr
from peerline.wire.spec import TYPE_HANDSHAKE_INITIATION, TYPE_TRANSPORT

B_SECOND: Addr = ("203.0.113.50", 9000)
"B's other address (another interface, a punched hole, a relay): what A probes."
A_SEEN: Addr = ("192.0.2.200", 31000)
"A as B sees it on that other path (another NAT mapping)."
ELSEWHERE: Addr = ("198.18.0.9", 1234)


def connected(config_a: NodeConfig | None = None, config_b: NodeConfig | None = None) -> Wire:
    """A and B with a confirmed session both ways (t = 0), events drained."""
    w = make_pair(config_a, config_b)
    w.a.send_message(w.b.identity.public_key, "hello", now=0.0)
    w.transfer(now=0.0)
    assert of_type(w.events_a, MessageDelivered)
    w.events_a.clear()
    w.events_b.clear()
    return w


def key_a(w: Wire) -> bytes:
    return w.a.identity.public_key


def key_b(w: Wire) -> bytes:
    return w.b.identity.public_key


def events(node_events: list[Event], node: Node) -> list[Event]:
    """Drain ``node``'s events into ``node_events`` and return the new ones."""
    new = list(iter(node.next_event, None))
    node_events.extend(new)
    return new


def probe(w: Wire, addr: Addr, *, now: float) -> bytes:
    """A probes B at ``addr``: the one datagram it sends (checked to go to ``addr``)."""
    assert w.a.probe_path(key_b(w), addr, now=now)
    ((data, to),) = w.a.datagrams_to_send(now=now)
    assert to == addr and data[0] == TYPE_TRANSPORT
    return data


def echo(w: Wire, challenge: bytes, *, seen_from: Addr, now: float) -> bytes:
    """B takes A's challenge from ``seen_from`` and echoes it: the one datagram it sends back
    (checked to go to where the challenge came from, not to B's current path for A)."""
    w.b.receive_datagram(challenge, seen_from, now=now)
    ((data, to),) = w.b.datagrams_to_send(now=now)
    assert to == seen_from and data[0] == TYPE_TRANSPORT
    return data


# -- validation ---------------------------------------------------------------------------------
def test_echo_from_the_probed_address_moves_the_path_there() -> None:
    w = connected()
    challenge = probe(w, B_SECOND, now=1.0)
    response = echo(w, challenge, seen_from=A_SEEN, now=1.0)
    w.a.receive_datagram(response, B_SECOND, now=1.05)
    new = events(w.events_a, w.a)
    assert PathValidated(peer_key=key_b(w), addr=B_SECOND, moved=True) in new
    assert PeerEndpointChanged(peer_key=key_b(w), addr=B_SECOND) in new
    assert w.a.peer_endpoint(key_b(w)) == B_SECOND
    assert w.a.live_path(key_b(w), now=1.05) == B_SECOND
    c = w.a.counters
    assert (c.path_probes_sent, c.paths_validated, c.path_migrations) == (1, 1, 1)
    assert w.b.counters.path_probes_answered == 1
    # A says so on the new path at once (B moves when that non-probe packet arrives).
    out = w.a.datagrams_to_send(now=1.05)
    assert out and all(to == B_SECOND for _, to in out)
    for data, _ in out:
        w.b.receive_datagram(data, A_SEEN, now=1.1)
    assert w.b.peer_endpoint(key_a(w)) == A_SEEN


def test_echo_from_the_current_path_validates_without_moving() -> None:
    w = connected()
    challenge = probe(w, ADDR_B, now=1.0)
    response = echo(w, challenge, seen_from=ADDR_A, now=1.0)
    w.a.receive_datagram(response, ADDR_B, now=1.0)
    new = events(w.events_a, w.a)
    assert new == [PathValidated(peer_key=key_b(w), addr=ADDR_B, moved=False)]
    assert w.a.counters.path_migrations == 0


def test_validated_probe_resends_pending_messages_on_the_new_path_at_once() -> None:
    w = connected()
    w.a.send_message(key_b(w), "lost on the old path", now=1.0)
    assert [to for _, to in w.a.datagrams_to_send(now=1.0)] == [ADDR_B]  # lost
    challenge = probe(w, B_SECOND, now=1.2)
    response = echo(w, challenge, seen_from=A_SEEN, now=1.2)
    w.a.receive_datagram(response, B_SECOND, now=1.25)
    out = w.a.datagrams_to_send(now=1.25)  # well before the 1 s retransmission
    assert out and all(to == B_SECOND for _, to in out)
    for data, _ in out:
        w.b.receive_datagram(data, A_SEEN, now=1.3)
    assert [e.text for e in events(w.events_b, w.b) if isinstance(e, MessageReceived)] == [
        "lost on the old path"
    ]
    for data, to in w.b.datagrams_to_send(now=1.3):
        assert to == A_SEEN
        w.a.receive_datagram(data, B_SECOND, now=1.35)
    assert of_type(events(w.events_a, w.a), MessageDelivered)


def test_echo_on_the_current_path_resends_pending_messages_at_once() -> None:
    """The path answered after all (a quiet spell, a NAT rebound): what waits goes now."""
    w = connected()
    w.a.send_message(key_b(w), "waiting", now=1.0)
    w.a.datagrams_to_send(now=1.0)  # lost
    challenge = probe(w, ADDR_B, now=1.2)
    w.a.receive_datagram(echo(w, challenge, seen_from=ADDR_A, now=1.2), ADDR_B, now=1.25)
    out = w.a.datagrams_to_send(now=1.25)  # before the 1 s retransmission
    assert out and all(to == ADDR_B for _, to in out)
    for data, _ in out:
        w.b.receive_datagram(data, ADDR_A, now=1.3)
    assert [e.text for e in events(w.events_b, w.b) if isinstance(e, MessageReceived)] == [
        "waiting"
    ]


def test_echo_from_a_different_address_does_not_move() -> None:
    w = connected()
    challenge = probe(w, B_SECOND, now=1.0)
    response = echo(w, challenge, seen_from=A_SEEN, now=1.0)
    w.a.receive_datagram(response, ELSEWHERE, now=1.05)  # not where the probe went
    assert not of_type(events(w.events_a, w.a), PathValidated)
    assert not of_type(w.events_a, PeerEndpointChanged)
    assert w.a.peer_endpoint(key_b(w)) == ADDR_B
    assert w.a.counters.paths_validated == w.a.counters.path_migrations == 0
    assert w.a.counters.dropped_auth == 0  # authentic, just not proof of that path


def test_echo_of_an_unknown_challenge_does_not_move() -> None:
    """An echo only proves the path if it carries data this phone sent there."""
    w = connected()
    challenge = probe(w, B_SECOND, now=1.0)
    # B probes A's address itself; A echoes; B's echo handling is unrelated to A's probe.
    assert w.b.probe_path(key_a(w), A_SEEN, now=1.0)
    ((b_challenge, _),) = w.b.datagrams_to_send(now=1.0)
    w.a.receive_datagram(b_challenge, B_SECOND, now=1.0)
    ((a_echo, to),) = w.a.datagrams_to_send(now=1.0)
    assert to == B_SECOND  # echoed to where it came from...
    assert w.a.peer_endpoint(key_b(w)) == ADDR_B  # ...without moving A's path
    w.b.receive_datagram(a_echo, ELSEWHERE, now=1.0)
    assert w.b.peer_endpoint(key_a(w)) == ADDR_A
    # A's own probe is still outstanding, and B's echo of it (from elsewhere) proves nothing.
    w.a.receive_datagram(echo(w, challenge, seen_from=A_SEEN, now=1.1), ELSEWHERE, now=1.1)
    assert w.a.peer_endpoint(key_b(w)) == ADDR_B
    assert not of_type(events(w.events_a, w.a), PathValidated)


def test_echo_after_the_probe_lifetime_does_not_move() -> None:
    w = connected()
    challenge = probe(w, B_SECOND, now=1.0)
    response = echo(w, challenge, seen_from=A_SEEN, now=1.0)
    w.a.receive_datagram(response, B_SECOND, now=1.0 + PROBE_LIFETIME_S + 0.01)
    assert not of_type(events(w.events_a, w.a), PathValidated)
    assert w.a.peer_endpoint(key_b(w)) == ADDR_B


def test_only_the_last_max_probes_challenges_are_remembered() -> None:
    w = connected()
    addrs: list[Addr] = [("203.0.113.60", 9000 + i) for i in range(MAX_PROBES + 1)]
    challenges = [probe(w, addr, now=1.0) for addr in addrs]
    oldest = echo(w, challenges[0], seen_from=A_SEEN, now=1.0)
    w.a.receive_datagram(oldest, addrs[0], now=1.0)
    assert not of_type(events(w.events_a, w.a), PathValidated)
    newest = echo(w, challenges[-1], seen_from=A_SEEN, now=1.0)
    w.a.receive_datagram(newest, addrs[-1], now=1.0)
    assert of_type(events(w.events_a, w.a), PathValidated)
    assert w.a.peer_endpoint(key_b(w)) == addrs[-1]


def test_a_probe_needs_a_live_session() -> None:
    w = make_pair()
    assert not w.a.probe_path(key_b(w), B_SECOND, now=0.0)
    assert not w.a.probe_path(b"\x01" * 32, B_SECOND, now=0.0)
    assert w.a.datagrams_to_send(now=0.0) == []


def test_a_relayed_path_is_probed_and_validated_like_any_other() -> None:
    w = connected()
    path = relayed_addr(("203.0.113.1", 4720), 0xC0FFEE)
    challenge = probe(w, path, now=1.0)
    b_side = relayed_addr(("203.0.113.1", 4720), 0xBEEF)
    response = echo(w, challenge, seen_from=b_side, now=1.0)
    w.a.receive_datagram(response, path, now=1.0)
    assert PathValidated(peer_key=key_b(w), addr=path, moved=True) in events(w.events_a, w.a)
    assert w.a.live_path(key_b(w), now=1.0) == path


# -- migration ----------------------------------------------------------------------------------
def test_a_probe_never_moves_the_probed_side() -> None:
    w = connected()
    for i in range(3):
        challenge = probe(w, B_SECOND, now=1.0 + i)
        echo(w, challenge, seen_from=(A_SEEN[0], A_SEEN[1] + i), now=1.0 + i)
    assert w.b.peer_endpoint(key_a(w)) == ADDR_A
    assert not of_type(events(w.events_b, w.b), PeerEndpointChanged)
    assert w.b.counters.path_migrations == 0
    # B's own traffic still goes to A's current path.
    w.b.send_message(key_a(w), "still there", now=5.0)
    assert [to for _, to in w.b.datagrams_to_send(now=5.0)] == [ADDR_A]


def test_a_late_packet_from_an_old_address_does_not_move_the_path_back() -> None:
    w = connected()
    w.a.send_message(key_b(w), "one", now=1.0)
    ((first, _),) = w.a.datagrams_to_send(now=1.0)
    w.a.send_message(key_b(w), "two", now=1.1)
    ((second, _),) = w.a.datagrams_to_send(now=1.1)
    w.b.receive_datagram(second, A_SEEN, now=1.2)  # A moved; its newer packet arrives first
    assert w.b.peer_endpoint(key_a(w)) == A_SEEN
    w.b.receive_datagram(first, ADDR_A, now=1.3)  # reordered: the older one, from before
    assert w.b.peer_endpoint(key_a(w)) == A_SEEN
    new = events(w.events_b, w.b)
    assert [e.text for e in new if isinstance(e, MessageReceived)] == ["two", "one"]
    assert [e.addr for e in new if isinstance(e, PeerEndpointChanged)] == [A_SEEN]
    assert w.b.counters.path_migrations == 1
    assert {to for _, to in w.b.datagrams_to_send(now=1.3)} == {A_SEEN}


def validated_move(w: Wire) -> None:
    """A probes B at B_SECOND and the echo moves A's path there (t = 1.05)."""
    challenge = probe(w, B_SECOND, now=1.0)
    response = echo(w, challenge, seen_from=A_SEEN, now=1.0)
    w.a.receive_datagram(response, B_SECOND, now=1.05)
    assert w.a.peer_endpoint(key_b(w)) == B_SECOND
    w.a.datagrams_to_send(now=1.05)  # A's keepalive on the new path: lost here
    events(w.events_a, w.a)


def from_b(w: Wire, text: str, *, now: float) -> bytes:
    """B's next packet to A (a message), as sealed; where it goes is the test's business."""
    w.b.send_message(key_a(w), text, now=now)
    ((data, _),) = w.b.datagrams_to_send(now=now)
    return data


def test_traffic_from_the_path_a_validation_left_does_not_move_it_back() -> None:
    """§5.7: B's packets still on their way on the old path were sent before B learned of the
    move; they are newer than anything A heard, but must not pull A back (both sides would
    then chase each other's newest packet between two paths)."""
    w = connected()
    validated_move(w)
    w.a.receive_datagram(from_b(w, "sent on the old path", now=1.06), ADDR_B, now=1.1)
    assert w.a.peer_endpoint(key_b(w)) == B_SECOND
    new = events(w.events_a, w.a)
    assert [e.text for e in new if isinstance(e, MessageReceived)] == ["sent on the old path"]
    assert not [e for e in new if isinstance(e, PeerEndpointChanged)]
    assert {to for _, to in w.a.datagrams_to_send(now=1.1)} == {B_SECOND}  # the ack too


def test_the_peers_traffic_on_the_new_path_ends_the_hold() -> None:
    w = connected()
    validated_move(w)
    w.a.receive_datagram(from_b(w, "on the new path", now=1.2), B_SECOND, now=1.25)
    w.a.receive_datagram(from_b(w, "moved again", now=1.3), ADDR_B, now=1.35)
    assert w.a.peer_endpoint(key_b(w)) == ADDR_B  # an ordinary move, by traffic


def test_the_hold_on_the_path_left_ends_after_return_hold_s() -> None:
    """If the peer never speaks on the new path, its traffic from the old one moves the path
    back once ``RETURN_HOLD_S`` has passed (it is not traffic from before the move any more)."""
    w = connected()
    validated_move(w)
    late = 1.05 + RETURN_HOLD_S
    w.a.receive_datagram(from_b(w, "still here", now=late - 0.1), ADDR_B, now=late - 0.05)
    assert w.a.peer_endpoint(key_b(w)) == B_SECOND
    w.a.receive_datagram(from_b(w, "still here, later", now=late), ADDR_B, now=late)
    assert w.a.peer_endpoint(key_b(w)) == ADDR_B


def test_the_newest_packet_from_a_new_address_moves_the_path() -> None:
    w = connected()
    for i, addr in enumerate([A_SEEN, ELSEWHERE, ADDR_A]):
        w.a.send_message(key_b(w), f"from {addr}", now=1.0 + i)
        ((data, _),) = w.a.datagrams_to_send(now=1.0 + i)
        w.b.receive_datagram(data, addr, now=1.0 + i)
        assert w.b.peer_endpoint(key_a(w)) == addr
        assert {to for _, to in w.b.datagrams_to_send(now=1.0 + i)} == {addr}
    new = events(w.events_b, w.b)
    assert [e.addr for e in new if isinstance(e, PeerEndpointChanged)] == [
        A_SEEN,
        ELSEWHERE,
        ADDR_A,
    ]
    assert w.b.counters.path_migrations == 3


def test_a_keepalive_from_a_new_address_moves_the_path() -> None:
    """An empty packet is not a probe: a phone that moved says so with a keepalive (nudge)."""
    w = connected()
    assert w.a.nudge(now=2.0) == 1
    ((data, _),) = w.a.datagrams_to_send(now=2.0)
    w.b.receive_datagram(data, A_SEEN, now=2.0)
    assert w.b.peer_endpoint(key_a(w)) == A_SEEN


def test_a_replayed_packet_from_a_new_address_does_not_move_the_path() -> None:
    w = connected()
    w.a.send_message(key_b(w), "once", now=1.0)
    ((data, _),) = w.a.datagrams_to_send(now=1.0)
    w.b.receive_datagram(data, ADDR_A, now=1.0)
    w.b.receive_datagram(data, ELSEWHERE, now=1.1)  # an attacker replays it from elsewhere
    assert w.b.peer_endpoint(key_a(w)) == ADDR_A
    assert w.b.counters.dropped_replay == 1


def test_a_late_packet_of_the_previous_session_does_not_move_the_path_back() -> None:
    """Across a rekey too: "newest" is judged on the current session (a regression test: at
    d253e1d the previous session's last packet, delayed, moved the path back)."""
    w = connected(NodeConfig(rekey_after_messages=3))
    late: bytes = b""
    sent = 0
    # Send on the first session until A rekeys; keep its last packet back (it is delayed).
    while w.a.counters.rekeys == 0:
        sent += 1
        w.a.send_message(key_b(w), f"m{sent}", now=1.0)
        out = w.a.datagrams_to_send(now=1.0)
        for data, to in out:
            if data[0] == TYPE_TRANSPORT and w.a.counters.rekeys:
                late = data  # sealed on the old session, in the batch that started the rekey
            elif to == ADDR_B:
                w.b.receive_datagram(data, ADDR_A, now=1.0)
        for data, to in w.b.datagrams_to_send(now=1.0):
            if to == ADDR_A:
                w.a.receive_datagram(data, ADDR_B, now=1.0)
    assert late
    # A moves to A_SEEN; the new session completes from there and carries traffic.
    for _ in range(5):
        for data, _to in w.a.datagrams_to_send(now=2.0):
            w.b.receive_datagram(data, A_SEEN, now=2.0)
        for data, _to in w.b.datagrams_to_send(now=2.0):
            w.a.receive_datagram(data, ADDR_B, now=2.0)
    w.a.send_message(key_b(w), "on the new session", now=2.5)
    for data, _ in w.a.datagrams_to_send(now=2.5):
        w.b.receive_datagram(data, A_SEEN, now=2.5)
    assert w.b.peer_endpoint(key_a(w)) == A_SEEN
    assert w.a.counters.handshakes_completed >= 2
    # The old session's last packet, delayed in the network, arrives from the old address.
    w.b.receive_datagram(late, ADDR_A, now=3.0)
    assert w.b.peer_endpoint(key_a(w)) == A_SEEN


# -- quiet paths --------------------------------------------------------------------------------
def fire_a(w: Wire, *, until: float, deliver: bool = False) -> list[Event]:
    """Run A's timers up to ``until``; its datagrams are lost unless ``deliver``."""
    new: list[Event] = []
    while (t := w.a.get_timer()) is not None and t <= until:
        w.a.handle_timer(now=t)
        out = w.a.datagrams_to_send(now=t)
        if deliver:
            for data, _ in out:
                w.b.receive_datagram(data, ADDR_A, now=t)
        new.extend(events(w.events_a, w.a))
    return new


def test_path_quiet_is_reported_once_per_silence() -> None:
    w = connected()
    w.a.send_message(key_b(w), "into the void", now=1.0)
    w.a.send_message(key_b(w), "and another", now=1.0)
    w.a.datagrams_to_send(now=1.0)  # lost
    assert not of_type(events(w.events_a, w.a), PathQuiet)
    # First retransmission (1 s later): the path is quiet. Later ones say nothing new.
    first = fire_a(w, until=2.0)
    assert first == [PathQuiet(peer_key=key_b(w), addr=ADDR_B)]
    later = fire_a(w, until=12.0)
    assert not of_type(later, PathQuiet)
    assert of_type(later, PeerSilent)  # the stronger signal still comes, at its own retry count
    assert w.a.counters.message_retransmissions >= 3


def test_path_quiet_comes_again_only_after_the_peer_was_heard_and_went_silent_again() -> None:
    w = connected()
    w.a.send_message(key_b(w), "first", now=1.0)
    w.a.datagrams_to_send(now=1.0)
    assert of_type(fire_a(w, until=2.0), PathQuiet)
    # The peer is heard: the retransmission gets through and is acknowledged.
    fire_a(w, until=4.0, deliver=True)
    for data, _ in w.b.datagrams_to_send(now=4.0):
        w.a.receive_datagram(data, ADDR_B, now=4.0)
    assert of_type(events(w.events_a, w.a), MessageDelivered)
    # Quiet again: a new report.
    w.a.send_message(key_b(w), "second", now=5.0)
    w.a.datagrams_to_send(now=5.0)
    assert of_type(fire_a(w, until=6.0), PathQuiet) == [PathQuiet(peer_key=key_b(w), addr=ADDR_B)]
    assert len(of_type(w.events_a, PathQuiet)) == 2


def test_a_message_answered_in_time_never_makes_the_path_quiet() -> None:
    w = connected()
    for i in range(5):
        w.a.send_message(key_b(w), f"m{i}", now=1.0 + i)
        w.transfer(now=1.0 + i)
    w.run_timers(until=30.0, now=5.0)
    assert not of_type(w.events_a, PathQuiet)


def test_path_quiet_names_the_path_in_use() -> None:
    w = connected()
    challenge = probe(w, B_SECOND, now=1.0)
    w.a.receive_datagram(echo(w, challenge, seen_from=A_SEEN, now=1.0), B_SECOND, now=1.0)
    w.a.datagrams_to_send(now=1.0)
    events(w.events_a, w.a)
    w.a.send_message(key_b(w), "on the new path", now=2.0)
    w.a.datagrams_to_send(now=2.0)
    assert of_type(fire_a(w, until=3.0), PathQuiet) == [PathQuiet(peer_key=key_b(w), addr=B_SECOND)]


# -- redirect -----------------------------------------------------------------------------------
def test_redirect_with_a_handshake_in_flight_resends_the_initiation_there_at_once() -> None:
    w = make_pair()
    w.a.send_message(key_b(w), "via the relay", now=0.0)
    ((lost, to),) = w.a.datagrams_to_send(now=0.0)
    assert to == ADDR_B and lost[0] == TYPE_HANDSHAKE_INITIATION
    w.a.redirect(key_b(w), B_SECOND, now=0.3)  # well before the 1 s retry
    ((again, to),) = w.a.datagrams_to_send(now=0.3)
    assert to == B_SECOND and again[0] == TYPE_HANDSHAKE_INITIATION
    assert again[6:38] != lost[6:38]  # a fresh ephemeral key, as on any retry
    assert w.a.peer_endpoint(key_b(w)) == B_SECOND
    # The handshake completes there and the message follows.
    w.b.receive_datagram(again, A_SEEN, now=0.3)
    ((response, to),) = w.b.datagrams_to_send(now=0.3)
    assert to == A_SEEN
    w.a.receive_datagram(response, B_SECOND, now=0.35)
    (done,) = of_type(events(w.events_a, w.a), HandshakeCompleted)
    assert done.addr == B_SECOND
    for data, to in w.a.datagrams_to_send(now=0.35):
        assert to == B_SECOND
        w.b.receive_datagram(data, A_SEEN, now=0.4)
    assert [e.text for e in events(w.events_b, w.b) if isinstance(e, MessageReceived)] == [
        "via the relay"
    ]


def test_redirect_with_pending_messages_and_no_handshake_starts_one_there() -> None:
    cfg = NodeConfig(handshake_timeout_s=2.0)
    w = make_pair(cfg)
    w.a.send_message(key_b(w), "queued", now=0.0)
    w.a.datagrams_to_send(now=0.0)
    fire_a(w, until=3.0)  # the handshake gives up; the message is failed...
    w.a.send_message(key_b(w), "queued again", now=3.0)  # ...so queue a fresh one
    w.a.datagrams_to_send(now=3.0)
    w.a.redirect(key_b(w), B_SECOND, now=3.1)
    out = w.a.datagrams_to_send(now=3.1)
    assert [(d[0], to) for d, to in out] == [(TYPE_HANDSHAKE_INITIATION, B_SECOND)]


def test_redirect_with_a_live_session_probes_instead_of_moving() -> None:
    w = connected()
    w.a.redirect(key_b(w), B_SECOND, now=1.0)
    assert w.a.peer_endpoint(key_b(w)) == ADDR_B
    ((challenge, to),) = w.a.datagrams_to_send(now=1.0)
    assert to == B_SECOND and w.a.counters.path_probes_sent == 1
    w.a.receive_datagram(echo(w, challenge, seen_from=A_SEEN, now=1.0), B_SECOND, now=1.0)
    assert w.a.peer_endpoint(key_b(w)) == B_SECOND


def test_redirect_to_an_unknown_peer_is_a_local_error() -> None:
    w = make_pair()
    with pytest.raises(LocalProtocolError):
        w.a.redirect(b"\x09" * 32, B_SECOND, now=0.0)
