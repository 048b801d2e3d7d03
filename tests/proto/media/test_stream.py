"""MediaSender / MediaReceiver: numbering, talkspurts, loss-driven redundancy within the bitrate
steps, and redundancy actually filling the holes a lossy network makes."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerline.proto.media.jitter import FRAME_TICKS, Frame
from peerline.proto.media.stream import LossPolicy, LossStep, MediaReceiver, MediaSender
from peerline.wire.media import MAX_MEDIA_BODY, media_size, pull_media, push_media

OPUS = bytes(range(60))  # stands in for a 60-byte Opus packet (24 kbit/s)


def test_a_clean_network_gets_no_redundancy_and_no_fec() -> None:
    s = LossPolicy().settings(0.0)
    assert (s.redundancy, s.fec, s.loss_percent, s.bitrate) == (0, False, 0, 32_000)


@pytest.mark.parametrize(
    ("loss", "bitrate", "redundancy"),
    [(0.01, 32_000, 0), (0.02, 24_000, 1), (0.05, 16_000, 2), (0.1, 16_000, 2), (0.3, 16_000, 2)],
)
def test_redundancy_grows_with_loss_as_the_bitrate_shrinks(
    loss: float, bitrate: int, redundancy: int
) -> None:
    s = LossPolicy().settings(loss)
    assert (s.bitrate, s.redundancy, s.fec) == (bitrate, redundancy, False)


@given(st.floats(0.0, 1.0))
def test_nominal_bitrates_stay_within_64_kbit_s_of_opus_and_redundancy(loss: float) -> None:
    s = LossPolicy().settings(loss)
    assert s.bitrate * (1 + s.redundancy) <= 48_000  # + headers: ~61 kbit/s measured


def test_steps_must_start_at_zero_and_increase() -> None:
    with pytest.raises(ValueError):
        LossPolicy(steps=())
    with pytest.raises(ValueError):
        LossPolicy(steps=(LossStep(loss_from=0.1, bitrate=16_000, redundancy=1, fec=False),))


def test_loss_rises_at_once_and_falls_slowly() -> None:
    sender = MediaSender()
    assert sender.on_report(0.06).redundancy == 2
    assert sender.on_report(0.0).redundancy >= 1  # one clean second is common at 5 % loss
    for _ in range(10):
        sender.on_report(0.0)
    assert sender.settings.redundancy == 0


def test_a_call_starts_protected_until_the_first_report() -> None:
    sender = MediaSender()
    assert sender.settings == LossPolicy().settings(LossPolicy().initial_loss)
    assert (sender.settings.redundancy, sender.settings.bitrate) == (2, 16_000)
    frames = [sender.packet(bytes([i]) * 40) for i in range(3)]
    assert [len(f.redundant) for f in frames] == [0, 1, 2]


def test_a_clean_first_report_drops_the_protection_at_once() -> None:
    sender = MediaSender()
    s = sender.on_report(0.0)
    assert (s.redundancy, s.bitrate) == (0, 32_000)
    assert sender.loss_estimate == 0.0


def test_the_first_report_replaces_the_initial_assumption() -> None:
    sender = MediaSender()
    assert sender.on_report(0.03).redundancy == 1  # not max(0.05, 0.03) nor a slow decay
    assert sender.loss_estimate == pytest.approx(0.03)
    assert sender.on_report(0.2).redundancy == 2  # then: fast attack ...
    assert sender.on_report(0.0).redundancy == 2  # ... slow decay


def test_initial_loss_zero_starts_clean_and_is_checked() -> None:
    sender = MediaSender(policy=LossPolicy(initial_loss=0.0))
    assert (sender.settings.redundancy, sender.settings.bitrate) == (0, 32_000)
    assert sender.packet(OPUS).redundant == () and sender.packet(OPUS).redundant == ()
    with pytest.raises(ValueError):
        LossPolicy(initial_loss=1.5)


def test_packets_are_numbered_and_talkspurts_marked() -> None:
    sender = MediaSender(first_seq=65534, first_ts=2**32 - FRAME_TICKS)
    a, b, c = (sender.packet(OPUS) for _ in range(3))
    assert [f.seq for f in (a, b, c)] == [65534, 65535, 0]
    assert [f.timestamp for f in (a, b, c)] == [2**32 - FRAME_TICKS, 0, FRAME_TICKS]
    assert [f.marker for f in (a, b, c)] == [True, False, False]
    silence = sender.packet(b"\x01", dtx=True)
    sender.skip()
    again = sender.packet(OPUS)
    assert silence.dtx and not silence.marker and again.marker
    assert again.timestamp == c.timestamp + 3 * FRAME_TICKS and again.seq == 2
    assert sender.counters.talkspurts == 2


def test_redundancy_carries_the_previous_packets_by_age() -> None:
    three = LossStep(loss_from=0.0, bitrate=16_000, redundancy=3, fec=False)
    sender = MediaSender(policy=LossPolicy(steps=(three,)))
    frames = [sender.packet(bytes([i]) * 40) for i in range(5)]
    last = frames[-1]
    assert [(r.age, r.data[0]) for r in last.redundant] == [(1, 3), (2, 2), (3, 1)]
    assert frames[0].redundant == () and len(frames[1].redundant) == 1
    assert pull_media(push_media(last)) == last


def test_redundancy_is_cut_to_fit_one_datagram() -> None:
    sender = MediaSender()
    sender.on_report(0.5)
    big = bytes(500)
    frames = [sender.packet(big) for _ in range(4)]
    assert all(media_size(f) <= MAX_MEDIA_BODY for f in frames)
    assert sender.counters.redundancy_dropped > 0


def test_redundancy_fills_the_holes_of_a_lossy_network() -> None:
    """20 % random loss, redundancy 2 (what 64 kbit/s affords): a frame is lost only if it and
    the next two packets are (0.2**3 = 0.8 %); the jitter buffer plays the copies."""
    rng = random.Random(7)
    sender, receiver = MediaSender(), MediaReceiver()
    sender.on_report(0.2)
    played, missing, now = 0, 0, 0.0
    for i in range(3000):
        frame = sender.packet(i.to_bytes(2, "big") * 20)
        if rng.random() >= 0.2:
            receiver.receive(pull_media(push_media(frame)), arrival=now + 0.03)
        now += 0.02
        out = receiver.playout(now)
        if isinstance(out, Frame):
            played += 1
            assert out.payload == out.seq.to_bytes(2, "big") * 20 or out.seq > 0xFFFF
        elif receiver.counters.packets:
            missing += 1
    assert played >= 2940, (played, missing, receiver.buffer.counters.as_dict())
    assert receiver.counters.lost == pytest.approx(600, rel=0.15)
    assert receiver.buffer.counters.recovered > 500


def test_the_receiver_reports_the_loss_of_each_interval() -> None:
    sender, receiver = MediaSender(), MediaReceiver()
    for i in range(100):
        frame = sender.packet(OPUS)
        if i % 10 != 0:  # 10 % lost
            receiver.receive(frame, arrival=i * 0.02)
    assert receiver.loss_since_last_report() == pytest.approx(0.1, abs=0.011)
    for i in range(100, 150):
        receiver.receive(sender.packet(OPUS), arrival=i * 0.02)
    assert receiver.loss_since_last_report() == 0.0
    assert receiver.loss_since_last_report() == 0.0  # nothing new: nothing lost
