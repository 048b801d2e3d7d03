"""Call signalling and receiver reports on a session (Node.send_signal, Node.send_media with a
report): signals are delivered once, acknowledged and retransmitted like text messages; media
and reports are sent at once, apart from the rest so that the runtime can mark them."""

import pytest

from harness import ADDR_A, ADDR_B, Wire, make_pair, of_type
from peerline.errors import LocalProtocolError
from peerline.proto.events import (
    Event,
    MediaReceived,
    MediaReportReceived,
    MessageDelivered,
    MessageFailed,
    MessageReceived,
    SignalReceived,
)
from peerline.proto.node import NodeConfig
from peerline.wire.call import Hangup, Invite, MediaReport, Ringing, push_report, push_signal
from peerline.wire.media import MediaFrame, push_media
from peerline.wire.spec import TYPE_TRANSPORT

CID = bytes(range(8))
INVITE = push_signal(Invite(call_id=CID, name="desk"))
REPORT = push_report(
    MediaReport(
        highest_seq=7, lost_total=1, fraction_lost=3, jitter=480, playout_ms=60, report_ts=5
    )
)


def media(seq: int) -> bytes:
    return push_media(MediaFrame(seq=seq, timestamp=seq * 960, payload=b"\x5a" * 40))


def connected(config: NodeConfig | None = None) -> Wire:
    w = make_pair(config, config)
    w.a.connect(w.b.identity.public_key, now=0.0)
    w.transfer(now=0.0)
    w.events_a.clear()
    w.events_b.clear()
    w.sent.clear()
    return w


# -- signals ---------------------------------------------------------------------------------
def test_a_signal_is_delivered_acknowledged_and_shown_as_a_signal_not_a_message() -> None:
    w = make_pair()
    mid = w.a.send_signal(w.b.identity.public_key, INVITE, now=0.0)  # makes the session too
    w.transfer(now=0.0)
    (got,) = of_type(w.events_b, SignalReceived)
    assert (got.peer_key, got.message_id, got.body) == (w.a.identity.public_key, mid, INVITE)
    assert of_type(w.events_b, MessageReceived) == []
    (delivered,) = of_type(w.events_a, MessageDelivered)
    assert delivered.message_id == mid
    assert w.a.counters.signals_sent == w.b.counters.signals_received == 1
    assert w.a.counters.messages_sent == w.b.counters.messages_received == 0


def test_a_lost_signal_is_retransmitted_and_delivered_once() -> None:
    w = connected()
    mid = w.a.send_signal(w.b.identity.public_key, INVITE, now=1.0)
    assert w.transfer(now=1.0, drop=[0]) == 1  # the signal's packet is lost
    assert of_type(w.events_b, SignalReceived) == []
    w.run_timers(until=6.0, now=1.0)
    assert [e.body for e in of_type(w.events_b, SignalReceived)] == [INVITE]
    assert [e.message_id for e in of_type(w.events_a, MessageDelivered)] == [mid]
    sent_by_a = [d for who, d in w.sent if who == "a" and d[0] == TYPE_TRANSPORT]
    assert len(sent_by_a) >= 2  # the lost packet and its retransmission


def test_a_signal_whose_ack_is_lost_is_shown_once_and_acknowledged_again() -> None:
    w = connected()
    mid = w.a.send_signal(w.b.identity.public_key, INVITE, now=1.0)
    assert w.transfer(now=1.0, drop=[1]) == 2  # the signal arrives, its ack is lost
    assert of_type(w.events_a, MessageDelivered) == []
    w.run_timers(until=6.0, now=1.0)
    assert len(of_type(w.events_b, SignalReceived)) == 1
    assert w.b.counters.messages_duplicate == 1
    assert [e.message_id for e in of_type(w.events_a, MessageDelivered)] == [mid]


def test_signals_get_distinct_ids_and_each_is_acknowledged() -> None:
    w = connected()
    key_b = w.b.identity.public_key
    bodies = [INVITE, push_signal(Ringing(call_id=CID)), push_signal(Hangup(call_id=CID))]
    ids = [w.a.send_signal(key_b, body, now=1.0) for body in bodies]
    w.transfer(now=1.0)
    assert len(set(ids)) == 3
    assert [e.body for e in of_type(w.events_b, SignalReceived)] == bodies
    assert sorted(e.message_id for e in of_type(w.events_a, MessageDelivered)) == sorted(ids)


def test_a_signal_to_a_peer_that_is_gone_fails_after_message_timeout() -> None:
    cfg = NodeConfig(message_timeout_s=5.0, message_retry_s=0.5)
    w = connected(cfg)
    mid = w.a.send_signal(w.b.identity.public_key, INVITE, now=1.0)
    w.a.datagrams_to_send(now=1.0)  # b is gone: everything is lost from now on
    now, sends = 1.0, 1
    events: list[Event] = []
    while not of_type(events, MessageFailed) and (t := w.a.get_timer()) is not None:
        assert t <= 30.0
        now = t
        w.a.handle_timer(now=now)
        sends += len(w.a.datagrams_to_send(now=now))
        events += list(iter(w.a.next_event, None))
    (failed,) = of_type(events, MessageFailed)
    assert failed.message_id == mid and failed.peer_key == w.b.identity.public_key
    assert failed.reason == "timeout"
    assert now == pytest.approx(1.0 + 5.0)
    assert of_type(events, MessageDelivered) == []
    assert sends >= 3  # it was retransmitted before giving up


def test_signal_to_an_unknown_peer_is_a_local_error() -> None:
    w = make_pair()
    with pytest.raises(LocalProtocolError):
        w.a.send_signal(bytes(32), INVITE, now=0.0)
    assert w.a.counters.signals_sent == 0


def test_signals_share_the_undelivered_queue_limit() -> None:
    w = make_pair(NodeConfig(max_queued_messages=2))
    key_b = w.b.identity.public_key
    w.a.send_signal(key_b, INVITE, now=0.0)
    w.a.send_message(key_b, "hi", now=0.0)
    with pytest.raises(LocalProtocolError):
        w.a.send_signal(key_b, INVITE, now=0.0)
    w.transfer(now=0.0)
    w.a.send_signal(key_b, INVITE, now=0.1)  # room again once acknowledged


# -- receiver reports ------------------------------------------------------------------------
def test_a_report_rides_alone_without_a_media_body() -> None:
    w = connected()
    assert w.a.send_media(w.b.identity.public_key, None, now=1.0, report=REPORT)
    assert w.transfer(now=1.0) == 1
    (got,) = of_type(w.events_b, MediaReportReceived)
    assert (got.peer_key, got.body, got.at) == (w.a.identity.public_key, REPORT, 1.0)
    assert of_type(w.events_b, MediaReceived) == []
    assert w.a.counters.media_reports_sent == w.b.counters.media_reports_received == 1
    assert w.a.counters.media_sent == w.b.counters.media_received == 0


def test_a_report_rides_with_a_media_body_in_one_packet() -> None:
    w = connected()
    assert w.a.send_media(w.b.identity.public_key, media(3), now=1.0, report=REPORT)
    assert w.transfer(now=1.0) == 1
    assert [e.body for e in of_type(w.events_b, MediaReportReceived)] == [REPORT]
    assert [(e.body, e.at) for e in of_type(w.events_b, MediaReceived)] == [(media(3), 1.0)]
    assert w.a.counters.media_reports_sent == w.b.counters.media_reports_received == 1
    assert w.a.counters.media_sent == w.b.counters.media_received == 1


def test_media_without_a_report_counts_no_report() -> None:
    w = connected()
    assert w.a.send_media(w.b.identity.public_key, media(1), now=1.0)
    w.transfer(now=1.0)
    assert of_type(w.events_b, MediaReportReceived) == []
    assert w.a.counters.media_reports_sent == 0 and w.a.counters.media_sent == 1


def test_a_report_without_a_session_is_dropped_and_counted() -> None:
    w = make_pair()
    assert not w.a.send_media(w.b.identity.public_key, None, now=0.0, report=REPORT)
    assert w.a.counters.media_unsent == 1 and w.a.counters.media_reports_sent == 0
    assert w.a.datagrams_to_send(now=0.0) == []


# -- the media queue -------------------------------------------------------------------------
def _queue_one_of_each(w: Wire) -> bytes:
    """A media packet, then a signal: one packet in each of the node's two queues."""
    key_b = w.b.identity.public_key
    assert w.a.send_media(key_b, media(1), now=1.0, report=REPORT)
    return w.a.send_signal(key_b, INVITE, now=1.0)


def _deliver(w: Wire, datagrams: list[tuple[bytes, tuple[str, int]]]) -> None:
    for data, dst in datagrams:
        assert dst == ADDR_B
        w.b.receive_datagram(data, ADDR_A, now=1.0)
    w.drain_events()


def test_media_datagrams_come_out_of_the_media_queue_first_and_only_once() -> None:
    w = connected()
    before = (w.a.counters.tx_datagrams, w.a.counters.tx_bytes)
    _queue_one_of_each(w)
    media_out = w.a.media_datagrams_to_send(now=1.0)
    rest = w.a.datagrams_to_send(now=1.0)
    assert len(media_out) == 1 and len(rest) == 1
    assert w.a.media_datagrams_to_send(now=1.0) == [] and w.a.datagrams_to_send(now=1.0) == []
    _deliver(w, media_out)
    assert len(of_type(w.events_b, MediaReceived)) == 1
    assert len(of_type(w.events_b, MediaReportReceived)) == 1
    assert of_type(w.events_b, SignalReceived) == []  # the signal was not in the media queue
    _deliver(w, rest)
    assert len(of_type(w.events_b, SignalReceived)) == 1
    sent = media_out + rest
    assert w.a.counters.tx_datagrams == before[0] + len(sent)
    assert w.a.counters.tx_bytes == before[1] + sum(len(d) for d, _ in sent)


def test_datagrams_to_send_also_takes_queued_media_counted_once() -> None:
    w = connected()
    before = (w.a.counters.tx_datagrams, w.a.counters.tx_bytes)
    _queue_one_of_each(w)
    out = w.a.datagrams_to_send(now=1.0)
    assert len(out) == 2
    assert w.a.media_datagrams_to_send(now=1.0) == []  # already taken
    _deliver(w, out[:1])  # media first
    assert len(of_type(w.events_b, MediaReceived)) == 1
    assert of_type(w.events_b, SignalReceived) == []
    _deliver(w, out[1:])
    assert len(of_type(w.events_b, SignalReceived)) == 1
    assert w.a.counters.tx_datagrams == before[0] + 2
    assert w.a.counters.tx_bytes == before[1] + sum(len(d) for d, _ in out)


def test_media_queue_is_oldest_first() -> None:
    w = connected()
    key_b = w.b.identity.public_key
    for seq in range(5):
        w.a.send_media(key_b, media(seq), now=1.0 + seq * 0.02)
    out = w.a.media_datagrams_to_send(now=1.1)
    assert len(out) == 5
    _deliver(w, out)
    assert [e.body for e in of_type(w.events_b, MediaReceived)] == [media(s) for s in range(5)]


def test_a_report_and_media_in_one_packet_arrive_report_first() -> None:
    w = connected()
    w.a.send_media(w.b.identity.public_key, media(2), now=1.0, report=REPORT)
    _deliver(w, w.a.media_datagrams_to_send(now=1.0))
    kinds = [type(e) for e in w.events_b if isinstance(e, MediaReceived | MediaReportReceived)]
    assert kinds == [MediaReportReceived, MediaReceived]
