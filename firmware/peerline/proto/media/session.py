"""Both directions of one call's audio, sans-I/O: 20 ms of microphone in, a MEDIA body out;
MEDIA bodies in, 20 ms of speaker out; receiver reports both ways (design §8).

``MediaSession`` strings the engine together: the Opus encoder (through the ``AudioEncoder``
port), ``MediaSender`` (numbering, talkspurts, redundancy), ``MediaReceiver`` (jitter buffer),
the decoder with concealment, and the receiver reports (``peerline.wire.call.MediaReport``) that
tell each sender what loss its packets meet, so that it can adapt (``LossPolicy``), and measure
the round trip. It never reads a clock or touches a socket: the caller passes the time and
sends what it returns, so the same object runs in the daemon, in ``bench/voice.py`` and in tests
in virtual time.
"""

from dataclasses import dataclass, field
from typing import Any

from peerline.errors import DecodeError
from peerline.ports import AudioDecoder, AudioEncoder
from peerline.wire.call import MediaReport, pull_report, push_report
from peerline.wire.media import pull_media, push_media, seq_distance

from .jitter import FRAME_TICKS, SAMPLE_RATE, Frame, JitterConfig, Missing
from .stream import EncoderSettings, LossPolicy, MediaReceiver, MediaSender

DTX_MAX_BYTES = 2
"""An Opus packet this short is a DTX 'nothing to send' frame (libopus returns 1-2 bytes)."""
_U32 = 1 << 32


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaConfig:
    report_every: float = 1.0
    "Seconds between receiver reports once the call has settled."
    first_reports: int = 3
    "The first reports go out every ``report_every / 4``: the sender learns the loss sooner."
    dtx: bool = True
    "Send nothing in silence (Opus DTX, with a comfort-noise update every 400 ms)."
    policy: LossPolicy = field(default_factory=LossPolicy)
    jitter: JitterConfig = field(default_factory=JitterConfig)


@dataclass(slots=True)
class MediaCounters:
    frames_captured: int = 0
    packets_sent: int = 0
    dtx_frames: int = 0
    "20 ms frames not sent because the encoder found silence."
    bytes_sent: int = 0
    "MEDIA bodies, before the session's framing and encryption."
    packets_received: int = 0
    malformed: int = 0
    "MEDIA or MEDIA_REPORT bodies that did not parse (dropped)."
    decoded: int = 0
    concealed: int = 0
    fec_decoded: int = 0
    decode_errors: int = 0
    silence: int = 0
    reports_sent: int = 0
    reports_received: int = 0
    settings_changes: int = 0


class MediaSession:
    """One call's media engine. Per 20 ms: ``capture`` (send what it returns), ``playout``;
    ``report_due`` whenever convenient (each tick is fine); feed ``receive`` and
    ``receive_report`` with what the peer sent."""

    def __init__(
        self,
        encoder: AudioEncoder,
        decoder: AudioDecoder,
        *,
        config: MediaConfig | None = None,
        first_seq: int = 0,
        first_ts: int = 0,
        now: float = 0.0,
    ) -> None:
        self.config = config or MediaConfig()
        self.encoder = encoder
        self.decoder = decoder
        self.sender = MediaSender(policy=self.config.policy, first_seq=first_seq, first_ts=first_ts)
        self.receiver = MediaReceiver(jitter=self.config.jitter)
        self.counters = MediaCounters()
        self.rtt: float | None = None
        "Latest round-trip time from the peer's reports, seconds."
        self.remote: MediaReport | None = None
        "The peer's latest report: how our audio reaches it."
        self._silence = b"\x00" * (2 * decoder.frame_samples)
        self._started = now
        self._next_report = now + self.config.report_every / 4
        self._last_heard: float | None = None
        self._highest_seq: int | None = None
        self._echo: tuple[int, float] | None = None
        "(report_ts, arrival) of the peer's latest report, to echo."
        self._apply(self.sender.settings)
        encoder.set_dtx(self.config.dtx)

    # -- sending -----------------------------------------------------------------------------
    def capture(self, pcm: bytes, now: float) -> bytes | None:
        """Encode 20 ms of microphone audio; the MEDIA body to send, or None (DTX silence)."""
        self.counters.frames_captured += 1
        opus = self.encoder.encode(pcm)
        if len(opus) <= DTX_MAX_BYTES:
            self.counters.dtx_frames += 1
            self.sender.skip()
            return None
        body = push_media(self.sender.packet(opus))
        self.counters.packets_sent += 1
        self.counters.bytes_sent += len(body)
        return body

    def report_due(self, now: float) -> bytes | None:
        """A MEDIA_REPORT body when one is due (send it with the next packet), else None."""
        if now < self._next_report:
            return None
        c = self.counters
        every = self.config.report_every
        fast = c.reports_sent + 1 < self.config.first_reports
        self._next_report = now + (every / 4 if fast else every)
        r = self.receiver
        loss = r.loss_since_last_report()
        echo_ts, echo_delay = 0, 0
        if self._echo is not None:
            echo_ts = self._echo[0]
            echo_delay = min(_U32 - 1, max(0, round((now - self._echo[1]) * 1000)))
        jb = r.buffer.counters
        report = MediaReport(
            highest_seq=self._highest_seq or 0,
            lost_total=min(_U32 - 1, r.counters.lost),
            fraction_lost=min(255, int(loss * 256)),
            jitter=min(_U32 - 1, round(jb.jitter_ms * SAMPLE_RATE / 1000)),
            playout_ms=min(0xFFFF, max(0, round(jb.current_delay_ms))),
            report_ts=_ms(now),
            echo_ts=echo_ts,
            echo_delay_ms=echo_delay,
        )
        c.reports_sent += 1
        return push_report(report)

    # -- receiving ---------------------------------------------------------------------------
    def receive(self, body: bytes, at: float) -> None:
        """A MEDIA body from the peer, with its arrival time. Malformed ones are counted."""
        try:
            frame = pull_media(body)
        except DecodeError:
            self.counters.malformed += 1
            return
        self.counters.packets_received += 1
        self._last_heard = at
        if self._highest_seq is None or seq_distance(self._highest_seq, frame.seq) > 0:
            self._highest_seq = frame.seq
        self.receiver.receive(frame, arrival=at)

    def receive_report(self, body: bytes, at: float) -> None:
        """The peer's receiver report: adapt the sender, measure the round trip."""
        try:
            report = pull_report(body)
        except DecodeError:
            self.counters.malformed += 1
            return
        self.counters.reports_received += 1
        self._last_heard = at
        self.remote = report
        self._echo = (report.report_ts, at)
        if report.echo_ts:
            rtt_ms = (_ms(at) - report.echo_ts - report.echo_delay_ms) % _U32
            if rtt_ms < 60_000:  # anything larger is a stale or wrapped echo
                self.rtt = rtt_ms / 1000
        new = self.sender.on_report(report.fraction_lost / 256)
        if new != self.settings:
            self._apply(new)
            self.counters.settings_changes += 1

    def playout(self, now: float) -> bytes:
        """The next 20 ms for the speaker: decoded, concealed (PLC or FEC) or silence."""
        c = self.counters
        p = self.receiver.playout(now)
        if isinstance(p, Frame):
            try:
                pcm = self.decoder.decode(p.payload)
                c.decoded += 1
                return pcm
            except DecodeError:
                c.decode_errors += 1
                return self.decoder.conceal()
        if isinstance(p, Missing):
            c.concealed += 1
            if p.next_payload is not None:
                try:
                    pcm = self.decoder.decode_fec(p.next_payload)
                    c.fec_decoded += 1
                    return pcm
                except DecodeError:
                    c.decode_errors += 1
            return self.decoder.conceal()
        c.silence += 1
        return self._silence

    # -- state -------------------------------------------------------------------------------
    @property
    def settings(self) -> EncoderSettings:
        return self._settings

    def last_heard(self) -> float | None:
        """When the peer's last media or report arrived (None: nothing yet)."""
        return self._last_heard

    def stats(self, now: float) -> dict[str, Any]:
        """What ``status --json`` shows for the call's audio."""
        jb = self.receiver.buffer.counters
        remote = self.remote
        elapsed = max(1e-9, now - self._started)
        s = self.settings
        return {
            "codec": f"opus/{self.encoder.sample_rate // 1000}k",
            "bitrate": s.bitrate,
            "redundancy": s.redundancy,
            "fec": s.fec,
            "rtt_ms": None if self.rtt is None else round(self.rtt * 1000, 1),
            "rx": {
                "packets": self.counters.packets_received,
                "lost": self.receiver.counters.lost,
                "loss_pct": round(
                    100 * self.receiver.counters.lost / max(1, self.receiver.counters.expected), 2
                ),
                "jitter_ms": round(jb.jitter_ms, 1),
                "playout_delay_ms": round(jb.current_delay_ms, 1),
                "target_delay_ms": round(jb.target_delay_ms, 1),
                "recovered": jb.recovered,
                "concealed": self.counters.concealed,
                "late": jb.late,
                "duplicate": jb.duplicate,
            },
            "tx": {
                "packets": self.counters.packets_sent,
                "dtx_frames": self.counters.dtx_frames,
                "kbps": round(self.counters.bytes_sent * 8 / elapsed / 1000, 2),
                "far_loss_pct": None if remote is None else round(remote.fraction_lost / 2.56, 2),
                "loss_estimate_pct": round(self.sender.loss_estimate * 100, 2),
                "far_jitter_ms": None
                if remote is None
                else round(remote.jitter * 1000 / SAMPLE_RATE, 1),
                "far_playout_ms": None if remote is None else remote.playout_ms,
            },
            "counters": {
                "malformed": self.counters.malformed,
                "decode_errors": self.counters.decode_errors,
                "reports_sent": self.counters.reports_sent,
                "reports_received": self.counters.reports_received,
                "settings_changes": self.counters.settings_changes,
            },
        }

    def _apply(self, s: EncoderSettings) -> None:
        self._settings = s
        self.encoder.set_bitrate(s.bitrate)
        self.encoder.set_fec(s.fec)
        self.encoder.set_packet_loss_percent(s.loss_percent)


def _ms(t: float) -> int:
    return round(t * 1000) % _U32


__all__ = ["DTX_MAX_BYTES", "FRAME_TICKS", "MediaConfig", "MediaCounters", "MediaSession"]
