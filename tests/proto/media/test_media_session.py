"""MediaSession (peerline.proto.media.session): two sessions with the real Opus codec talking
through a link with a fixed one-way delay and seeded loss, in virtual time.

(Named test_media_session.py: tests/proto/noise/test_session.py already owns the module name
``test_session`` and the test directories have no ``__init__.py``.)
"""

import heapq
import itertools
import random
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from peerline.adapters.opus import OpusDecoder, OpusEncoder
from peerline.proto.media.session import DTX_MAX_BYTES, MediaConfig, MediaSession
from peerline.proto.media.stream import LossPolicy
from peerline.wire.call import REPORT_SIZE, MediaReport, pull_report, push_report
from peerline.wire.media import MediaFrame, pull_media, push_media

RATE = 16_000
FRAME = RATE // 50
TICK = 0.02
SILENCE = bytes(2 * FRAME)


def burst_frame(i: int, freq: float = 440.0) -> bytes:
    """Frame ``i`` of a speech-like test signal: 200 ms tone bursts (a vowel-ish 440 Hz with a
    harmonic, syllable-rate tremolo) and 200 ms pauses of faint noise."""
    t = (np.arange(FRAME) + i * FRAME) / RATE
    if (i // 10) % 2 == 0:
        x = 7000 * np.sin(2 * np.pi * freq * t) + 2000 * np.sin(2 * np.pi * 2 * freq * t)
        x *= 0.75 + 0.25 * np.sin(2 * np.pi * 4 * t)
    else:
        x = 200 * np.sin(2 * np.pi * 150 * t)
    return bytes(np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes())


def samples(pcm: bytes) -> NDArray[np.float64]:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def rms(pcm: bytes) -> float:
    x = samples(pcm)
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0


@dataclass(order=True)
class _Packet:
    at: float
    order: int
    to: str = field(compare=False)
    kind: str = field(compare=False)
    body: bytes = field(compare=False)


@dataclass
class Call:
    """Sessions ``a`` and ``b`` joined by a link: ``delay`` seconds each way (``delay_ba`` for
    b -> a if it differs) and ``loss`` (0..1, seeded, on media and reports alike), changeable
    between ticks. ``tick`` runs one 20 ms period on both ends."""

    a: MediaSession
    b: MediaSession
    delay: float = 0.040
    delay_ba: float | None = None
    loss: float = 0.0
    seed: int = 1
    now: float = 0.0
    out_a: list[bytes] = field(default_factory=list)
    out_b: list[bytes] = field(default_factory=list)
    sent: dict[str, list[tuple[float, str]]] = field(default_factory=lambda: {"a": [], "b": []})

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._queue: list[_Packet] = []
        self._order = itertools.count()

    def tick(self, pcm_a: bytes | None, pcm_b: bytes | None) -> None:
        now = self.now
        while self._queue and self._queue[0].at <= now:
            p = heapq.heappop(self._queue)
            dst = self.a if p.to == "a" else self.b
            if p.kind == "media":
                dst.receive(p.body, p.at)
            else:
                dst.receive_report(p.body, p.at)
        for name, src, pcm in (("a", self.a, pcm_a), ("b", self.b, pcm_b)):
            to = "b" if name == "a" else "a"
            delay = self.delay if to == "b" or self.delay_ba is None else self.delay_ba
            body = src.capture(pcm, now) if pcm is not None else None
            report = src.report_due(now)
            for kind, data in (("media", body), ("report", report)):
                if data is None:
                    continue
                self.sent[name].append((now, kind))
                if self._rng.random() >= self.loss:
                    heapq.heappush(
                        self._queue, _Packet(now + delay, next(self._order), to, kind, data)
                    )
        self.out_a.append(self.a.playout(now))
        self.out_b.append(self.b.playout(now))
        self.now = round(now + TICK, 9)

    def run(self, seconds: float, *, a: str = "speech", b: str = "speech") -> None:
        start = round(self.now / TICK)
        for i in range(start, start + round(seconds / TICK)):
            self.tick(_input(a, i), _input(b, i))


def _input(kind: str, i: int) -> bytes | None:
    if kind == "speech":
        return burst_frame(i)
    if kind == "silence":
        return SILENCE
    return None


def make_call(**kwargs: float) -> Call:
    return Call(
        MediaSession(OpusEncoder(sample_rate=RATE), OpusDecoder(sample_rate=RATE)),
        MediaSession(OpusEncoder(sample_rate=RATE), OpusDecoder(sample_rate=RATE)),
        **kwargs,  # type: ignore[arg-type]
    )


# -- audio -----------------------------------------------------------------------------------
def test_speech_comes_out_of_the_far_end_loud_and_at_the_right_pitch() -> None:
    call = make_call()
    call.run(3.0)
    for out, session in ((call.out_b, call.b), (call.out_a, call.a)):
        assert all(len(f) == 2 * FRAME for f in out)
        heard = out[25:]  # past the link delay and the jitter buffer's start
        loud = [f for f in heard if rms(f) > 1000]
        assert len(loud) >= len(heard) // 3  # the bursts are half the signal
        x = samples(b"".join(heard))
        spectrum = np.abs(np.fft.rfft(x))
        peak_hz = np.argmax(spectrum) * RATE / len(x)
        assert abs(peak_hz - 440) < 15
        c = session.counters
        assert c.packets_received >= 140 and c.decoded >= 140
        assert c.malformed == c.decode_errors == 0


def test_speech_survives_loss_with_concealment() -> None:
    call = make_call(loss=0.1, seed=3)
    call.run(4.0)
    heard = call.out_b[25:]
    assert sum(rms(f) > 1000 for f in heard) >= len(heard) // 3
    assert call.b.receiver.counters.lost > 0
    stats = call.b.stats(call.now)
    assert stats["rx"]["loss_pct"] > 0
    assert stats["rx"]["recovered"] + stats["rx"]["concealed"] > 0


# -- reports: RTT and adaptation -------------------------------------------------------------
def test_rtt_from_reports_is_the_links_round_trip() -> None:
    call = make_call(delay=0.040)
    call.run(3.0)
    assert call.a.rtt == pytest.approx(0.080, abs=0.003)
    assert call.b.rtt == pytest.approx(0.080, abs=0.003)
    assert call.a.stats(call.now)["rtt_ms"] == pytest.approx(80.0, abs=3.0)


def test_rtt_is_the_sum_of_both_directions_on_an_asymmetric_link() -> None:
    call = make_call(delay=0.030, delay_ba=0.070)
    call.run(3.0)
    assert call.a.rtt == pytest.approx(0.100, abs=0.003)
    assert call.b.rtt == pytest.approx(0.100, abs=0.003)


def test_no_rtt_before_an_echo_comes_back() -> None:
    call = make_call()
    assert call.a.rtt is None and call.a.stats(0.0)["rtt_ms"] is None
    call.run(0.3)  # a's first report (0.25 s) has not come back echoed yet
    assert call.a.rtt is None


def test_reports_come_four_times_a_second_at_first_then_once_a_second() -> None:
    """The first ``first_reports`` reports come 250 ms apart (the first 250 ms in), so the far
    sender learns the loss fast; then one a second."""
    call = make_call()
    call.run(5.0)
    times = [t for t, kind in call.sent["a"] if kind == "report"]
    gaps = np.diff([0.0, *times])  # each goes at the first 20 ms tick once it is due
    quick = MediaConfig().first_reports
    assert all(0.25 - 1e-9 <= g < 0.25 + TICK for g in gaps[:quick])
    assert all(1.0 - 1e-9 <= g < 1.0 + TICK for g in gaps[quick:])
    assert len(times) == 7  # 0.26, 0.52, 0.78, 1.78, 2.78, 3.78, 4.78
    assert call.a.counters.reports_sent == len(times)
    assert call.b.counters.reports_received == len(times)  # the last is in flight, or not
    assert call.b.remote is not None and call.b.remote.highest_seq > 0


def test_reported_loss_raises_redundancy_and_a_clean_link_brings_it_back() -> None:
    call = make_call(seed=7)
    call.run(1.5)  # the first clean report drops the initial protection at once
    assert call.a.settings.redundancy == 0 and call.a.settings.bitrate == 32_000
    assert call.a.counters.settings_changes == 1
    call.loss = 0.15
    call.run(3.0)
    assert call.a.settings.redundancy >= 1  # b told a about the loss a's packets meet
    assert call.a.stats(call.now)["tx"]["far_loss_pct"] is not None
    raised = call.a.counters.settings_changes
    assert raised >= 2
    call.loss = 0.0
    call.run(4.0)
    assert call.a.settings.redundancy >= 1  # loss counts at once, a clean link only slowly
    call.run(16.0)
    assert call.a.settings.redundancy == 0 and call.a.settings.bitrate == 32_000
    assert call.a.counters.settings_changes > raised
    assert call.a.stats(call.now)["tx"]["far_loss_pct"] == 0.0


def test_redundant_copies_ride_in_the_media_bodies_when_protected() -> None:
    """At the start (protected until the first report) each packet carries two older ones."""
    call = make_call()
    bodies = []
    for i in range(5):
        body = call.a.capture(burst_frame(i), i * TICK)
        assert body is not None
        bodies.append(pull_media(body))
    assert [len(f.redundant) for f in bodies] == [0, 1, 2, 2, 2]
    assert bodies[4].redundant[0].data == bodies[3].payload


# -- DTX -------------------------------------------------------------------------------------
def test_silence_sends_almost_nothing_but_reports_still_flow() -> None:
    call = make_call()
    call.run(1.0, a="silence", b="silence")
    sent_before = call.a.counters.packets_sent
    reports_before = call.a.counters.reports_sent
    call.run(4.0, a="silence", b="silence")
    sent = call.a.counters.packets_sent - sent_before
    assert sent <= 4.0 / 0.4 + 1  # at most Opus' comfort-noise update every 400 ms
    assert call.a.counters.dtx_frames >= 200 - sent
    assert call.a.counters.frames_captured == 250
    assert call.a.counters.reports_sent - reports_before == 4  # once a second
    assert call.b.counters.reports_received >= 6
    assert call.a.rtt == pytest.approx(0.080, abs=0.003)  # measured on reports alone
    assert all(rms(f) < 50 for f in call.out_b)  # silence in, silence out
    stats = call.a.stats(call.now)
    assert stats["tx"]["dtx_frames"] == call.a.counters.dtx_frames
    assert stats["tx"]["kbps"] < 2.0


def test_talk_after_silence_sends_every_frame_again() -> None:
    call = make_call()
    call.run(1.0, a="silence", b="silence")
    before = call.a.counters.packets_sent
    call.run(1.0, a="speech", b="silence")
    assert call.a.counters.packets_sent - before >= 45


def test_without_dtx_silence_is_sent() -> None:
    call = Call(
        MediaSession(OpusEncoder(), OpusDecoder(), config=MediaConfig(dtx=False)),
        MediaSession(OpusEncoder(), OpusDecoder()),
    )
    call.run(1.0, a="silence", b="silence")
    assert call.a.counters.packets_sent == 50 and call.a.counters.dtx_frames == 0


def test_a_missing_capture_sends_nothing_and_reports_go_on() -> None:
    call = make_call()
    call.run(2.0, a="none", b="none")
    assert call.a.counters.frames_captured == call.a.counters.packets_sent == 0
    assert call.a.counters.reports_sent >= 4 and call.b.counters.reports_received >= 4
    assert call.a.last_heard() is not None
    assert all(f == SILENCE for f in call.out_a)


# -- malformed input -------------------------------------------------------------------------
def test_malformed_media_and_reports_are_counted_and_never_raise() -> None:
    s = MediaSession(OpusEncoder(), OpusDecoder())
    s.receive(b"", 0.0)
    s.receive(b"\xff" * 3, 0.0)
    s.receive_report(b"", 0.0)
    s.receive_report(bytes(REPORT_SIZE - 1), 0.0)
    s.receive_report(bytes(REPORT_SIZE + 1), 0.0)
    assert s.counters.malformed == 5
    assert s.counters.packets_received == s.counters.reports_received == 0
    assert s.last_heard() is None and s.remote is None
    assert s.stats(1.0)["counters"]["malformed"] == 5


def test_a_valid_body_with_garbage_opus_is_a_decode_error_then_concealed() -> None:
    s = MediaSession(OpusEncoder(), OpusDecoder())
    for i in range(10):
        s.receive(push_media(MediaFrame(seq=i, timestamp=i * 960, payload=b"\xff" * 3)), i * TICK)
    out = [s.playout(i * TICK) for i in range(15)]
    assert all(len(f) == 2 * FRAME for f in out)
    assert s.counters.decode_errors > 0 and s.counters.malformed == 0


@settings(max_examples=60, deadline=None)
@given(
    bodies=st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.builds(
                lambda seq, payload: push_media(
                    MediaFrame(seq=seq, timestamp=seq * 960, payload=payload)
                ),
                st.integers(0, 0xFFFF),
                st.binary(min_size=1, max_size=40),
            ),
        ),
        max_size=20,
    ),
    reports=st.lists(st.binary(min_size=REPORT_SIZE, max_size=REPORT_SIZE), max_size=5),
)
def test_any_bodies_never_raise_and_playout_stays_a_frame(
    bodies: list[bytes], reports: list[bytes]
) -> None:
    s = MediaSession(OpusEncoder(), OpusDecoder())
    for i, body in enumerate(bodies):
        s.receive(body, i * TICK)
        assert len(s.playout(i * TICK)) == 2 * FRAME
    for i, report in enumerate(reports):
        s.receive_report(report, 1.0 + i)
    assert s.counters.reports_received == len(reports)
    assert s.rtt is None or 0 <= s.rtt < 60
    c = s.counters
    assert c.packets_received + c.malformed == len(bodies)


def test_a_stale_echo_gives_no_rtt() -> None:
    s = MediaSession(OpusEncoder(), OpusDecoder())
    report = MediaReport(
        highest_seq=0,
        lost_total=0,
        fraction_lost=0,
        jitter=0,
        playout_ms=0,
        report_ts=1,
        echo_ts=5_000,  # echoes a time in our future: wraps to an absurd RTT
        echo_delay_ms=0,
    )
    s.receive_report(push_report(report), at=1.0)
    assert s.rtt is None and s.counters.reports_received == 1


def test_our_report_echoes_the_peers_latest_report() -> None:
    s = MediaSession(OpusEncoder(), OpusDecoder())
    peer = MediaReport(
        highest_seq=0, lost_total=0, fraction_lost=0, jitter=0, playout_ms=0, report_ts=777
    )
    s.receive_report(push_report(peer), at=0.1)
    body = s.report_due(0.35)
    assert body is not None
    mine = pull_report(body)
    assert (mine.echo_ts, mine.echo_delay_ms, mine.report_ts) == (777, 250, 350)
    assert s.report_due(0.36) is None


# -- stats -----------------------------------------------------------------------------------
def test_stats_has_the_documented_keys() -> None:
    call = make_call()
    call.run(2.0)
    stats = call.a.stats(call.now)
    assert set(stats) == {"codec", "bitrate", "redundancy", "fec", "rtt_ms", "rx", "tx", "counters"}
    assert set(stats["rx"]) == {
        "packets",
        "lost",
        "loss_pct",
        "jitter_ms",
        "playout_delay_ms",
        "target_delay_ms",
        "recovered",
        "concealed",
        "late",
        "duplicate",
    }
    assert set(stats["tx"]) == {
        "packets",
        "dtx_frames",
        "kbps",
        "far_loss_pct",
        "loss_estimate_pct",
        "far_jitter_ms",
        "far_playout_ms",
    }
    assert set(stats["counters"]) == {
        "malformed",
        "decode_errors",
        "reports_sent",
        "reports_received",
        "settings_changes",
    }
    assert stats["codec"] == "opus/16k"
    assert stats["rx"]["packets"] == call.a.counters.packets_received > 0
    assert stats["tx"]["packets"] == call.a.counters.packets_sent == 100
    assert 8 < stats["tx"]["kbps"] < 64
    assert stats["tx"]["far_playout_ms"] is not None


def test_stats_before_anything_arrived() -> None:
    s = MediaSession(OpusEncoder(), OpusDecoder())
    stats = s.stats(0.0)
    assert stats["rtt_ms"] is None
    assert stats["tx"]["far_loss_pct"] is None and stats["tx"]["far_jitter_ms"] is None
    assert stats["rx"]["packets"] == 0 and stats["rx"]["loss_pct"] == 0
    assert (stats["redundancy"], stats["bitrate"]) == (
        LossPolicy().settings(LossPolicy().initial_loss).redundancy,
        16_000,
    )
    assert DTX_MAX_BYTES == 2
