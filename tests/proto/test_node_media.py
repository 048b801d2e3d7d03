"""Voice packets on a session: sent at once, never queued, acknowledged or retransmitted;
handed to the app with their arrival time; they keep the session alive as keepalives would."""

import pytest

from harness import make_pair, of_type
from peerline.errors import DecodeError
from peerline.proto.events import MediaReceived
from peerline.proto.node import NodeConfig
from peerline.wire.frames import MediaDataFrame, pull_frames, push_frames
from peerline.wire.media import MediaFrame, push_media


def body(seq: int) -> bytes:
    return push_media(MediaFrame(seq=seq, timestamp=seq * 960, payload=bytes([seq % 256]) * 60))


def test_media_flows_both_ways_on_a_session_with_arrival_times() -> None:
    w = make_pair()
    key_a, key_b = w.a.identity.public_key, w.b.identity.public_key
    w.a.connect(key_b, now=0.0)
    w.transfer(now=0.0)
    for i in range(5):
        assert w.a.send_media(key_b, body(i), now=1.0 + i * 0.02)
        assert w.b.send_media(key_a, body(100 + i), now=1.0 + i * 0.02)
        w.transfer(now=1.0 + i * 0.02)
    got_b = of_type(w.events_b, MediaReceived)
    got_a = of_type(w.events_a, MediaReceived)
    assert [e.body for e in got_b] == [body(i) for i in range(5)]
    assert [e.body for e in got_a] == [body(100 + i) for i in range(5)]
    assert [e.at for e in got_b] == [1.0 + i * 0.02 for i in range(5)]
    assert w.a.counters.media_sent == w.b.counters.media_received == 5


def test_media_without_a_session_is_dropped_and_counted_not_queued() -> None:
    w = make_pair()
    assert not w.a.send_media(w.b.identity.public_key, body(1), now=0.0)
    assert w.a.counters.media_unsent == 1 and w.a.datagrams_to_send(now=0.0) == []
    assert not w.a.send_media(bytes(32), body(1), now=0.0)  # an unknown peer too


def test_lost_media_is_never_retransmitted() -> None:
    w = make_pair()
    key_b = w.b.identity.public_key
    w.a.connect(key_b, now=0.0)
    w.transfer(now=0.0)
    w.a.send_media(key_b, body(1), now=1.0)
    w.a.datagrams_to_send(now=1.0)  # lost
    w.a.handle_timer(now=5.0)
    w.transfer(now=5.0)
    assert of_type(w.events_b, MediaReceived) == []


def test_a_call_needs_no_keepalives() -> None:
    cfg = NodeConfig(keepalive_s=1.0)
    w = make_pair(cfg, cfg)
    key_b = w.b.identity.public_key
    w.a.connect(key_b, now=0.0)
    w.transfer(now=0.0)
    before = w.a.counters.keepalives_sent
    for i in range(200):  # 4 s of audio
        now = 0.1 + i * 0.02
        w.a.send_media(key_b, body(i), now=now)
        w.a.handle_timer(now=now)
        w.transfer(now=now)
    assert w.a.counters.keepalives_sent == before


def test_the_media_frame_round_trips_and_an_empty_one_is_malformed() -> None:
    frame = MediaDataFrame(body=body(7))
    assert pull_frames(push_frames([frame])) == ([frame], 0)
    with pytest.raises(DecodeError):
        pull_frames(b"\x20\x00\x00")
