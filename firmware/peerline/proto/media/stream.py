"""One direction of a call's audio, sans-I/O: what the sender puts in each MEDIA frame and what
the receiver makes of it (design §8; wire format in ``peerline.wire.media``).

- ``MediaSender`` numbers the 20 ms Opus packets (seq, 48 kHz timestamp, marker at the start
  of a talkspurt) and carries the last few packets again as redundancy, as RFC 2198 does. How
  many, and how the encoder is set (bitrate, in-band FEC, expected loss), follows the loss the
  far end reports (``on_report``): nothing extra on a clean network, where redundancy and FEC
  only cost quality; more as loss rises, within about 64 kbit/s of datagrams (``LossPolicy``).
  Until the first report the sender assumes ``LossPolicy.initial_loss`` (5 %: protected).
- ``MediaReceiver`` feeds the primary and the redundant packets to the jitter buffer (a
  redundant copy fills a hole, never replaces a packet), and keeps the loss and jitter figures
  for the receiver reports that drive the far end's sender (RFC 3550 style: expected from the
  highest sequence number, lost = expected - received).

Neither encodes audio nor touches a clock: the caller passes Opus packets and times in.
"""

from dataclasses import asdict, dataclass

from peerline.wire.media import MAX_MEDIA_BODY, MediaFrame, RedundantFrame, media_size

from .jitter import FRAME_TICKS, JitterBuffer, JitterConfig, Playout

_SEQ_MOD = 1 << 16
_TS_MOD = 1 << 32


@dataclass(frozen=True, slots=True, kw_only=True)
class EncoderSettings:
    """How the sender wants the Opus encoder set for the loss it was told about."""

    bitrate: int
    "Bits per second of one Opus stream (the primary frames)."
    fec: bool
    "Opus in-band FEC (LBRR): the decoder can rebuild a lost frame from the next packet."
    loss_percent: int
    "The loss the encoder should plan its FEC for."
    redundancy: int
    "Older packets carried in each MEDIA frame (0..3)."


@dataclass(frozen=True, slots=True, kw_only=True)
class LossStep:
    loss_from: float
    "This step applies from this loss (fraction) up."
    bitrate: int
    redundancy: int
    fec: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LossPolicy:
    """Loss (fraction) -> settings, as steps measured with ``bench/voice.py`` (PESQ-WB, 30 ms
    jitter, mean of 5 seeds): redundancy beats Opus' in-band FEC at every loss rate here, and
    both together cost quality without a gain (FEC alone also costs quality at 0 % loss: 4.53
    -> 4.25 at 32 kbit/s), so the steps use redundancy only. 16 kbit/s with two older copies
    scored 4.00 / 3.81 / 3.38 at 5 / 10 / 20 % loss in about 61 kbit/s of datagrams; 24 kbit/s
    with one copy is better at low loss; a clean network gets 32 kbit/s and nothing else."""

    steps: tuple[LossStep, ...] = (
        LossStep(loss_from=0.0, bitrate=32_000, redundancy=0, fec=False),
        LossStep(loss_from=0.02, bitrate=24_000, redundancy=1, fec=False),
        LossStep(loss_from=0.05, bitrate=16_000, redundancy=2, fec=False),
    )
    initial_loss: float = 0.05
    """The loss assumed until the far end's first report (fraction): a call starts protected
    (with the default steps 16 kbit/s and two older copies), because the first report comes
    only after a second of audio and a lossy path would leave that second bare (bench seed
    1-8, mean PESQ-WB at 5 / 10 / 20 % loss: 3.80 / 3.62 / 3.10 starting clean, 3.94 / 3.83 /
    3.32 starting at 5 %, for 4.53 -> 4.50 on a clean path). The first report replaces the
    assumption outright: a clean first second drops the protection at once."""

    def __post_init__(self) -> None:
        if not self.steps or self.steps[0].loss_from != 0.0:
            raise ValueError("the first step must start at 0 loss")
        if any(
            b.loss_from <= a.loss_from for a, b in zip(self.steps, self.steps[1:], strict=False)
        ):
            raise ValueError("steps must have increasing loss_from")
        if not 0.0 <= self.initial_loss <= 1.0:
            raise ValueError("initial_loss must be a fraction in [0, 1]")

    def settings(self, loss: float) -> EncoderSettings:
        step = self.steps[0]
        for candidate in self.steps:
            if loss >= candidate.loss_from:
                step = candidate
        return EncoderSettings(
            bitrate=step.bitrate,
            fec=step.fec,
            loss_percent=min(100, round(loss * 100)) if step.fec else 0,
            redundancy=step.redundancy,
        )


@dataclass(slots=True)
class SenderCounters:
    packets: int = 0
    talkspurts: int = 0
    redundant_frames: int = 0
    redundancy_dropped: int = 0
    "Redundant frames left out because the MEDIA frame would not fit one datagram."

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class MediaSender:
    def __init__(self, *, policy: LossPolicy | None = None, first_seq: int = 0, first_ts: int = 0):
        self.policy = policy or LossPolicy()
        self.loss_estimate = self.policy.initial_loss
        "Smoothed far-end loss: fast attack, slow decay."
        self.settings = self.policy.settings(self.loss_estimate)
        self._reported = False
        "Whether a report has come yet (until then the estimate is ``initial_loss``)."
        self.counters = SenderCounters()
        self._seq = first_seq % _SEQ_MOD
        self._ts = first_ts % _TS_MOD
        self._history: list[bytes] = []
        "The last packets sent (newest last), for redundancy."
        self._in_talkspurt = False

    def packet(self, opus: bytes, *, dtx: bool = False) -> MediaFrame:
        """The MEDIA frame for the next 20 ms: ``opus`` is the encoder's packet (empty or tiny
        with ``dtx`` in silence). Advances seq and timestamp."""
        marker = not self._in_talkspurt and not dtx
        if marker:
            self.counters.talkspurts += 1
        self._in_talkspurt = not dtx
        redundant = self._redundant(dtx)
        frame = MediaFrame(
            seq=self._seq,
            timestamp=self._ts,
            payload=opus,
            marker=marker,
            dtx=dtx,
            redundant=redundant,
        )
        while redundant and media_size(frame) > MAX_MEDIA_BODY:
            redundant = redundant[:-1]
            self.counters.redundancy_dropped += 1
            frame = MediaFrame(
                seq=self._seq,
                timestamp=self._ts,
                payload=opus,
                marker=marker,
                dtx=dtx,
                redundant=redundant,
            )
        self.counters.packets += 1
        self.counters.redundant_frames += len(redundant)
        self._history.append(opus)
        del self._history[:-3]
        self._seq = (self._seq + 1) % _SEQ_MOD
        self._ts = (self._ts + FRAME_TICKS) % _TS_MOD
        return frame

    def skip(self) -> None:
        """Nothing is sent for this 20 ms (DTX between updates): time goes on, seq does not."""
        self._ts = (self._ts + FRAME_TICKS) % _TS_MOD
        self._in_talkspurt = False
        self._history.clear()

    def on_report(self, loss: float) -> EncoderSettings:
        """The far end's loss over its last interval (fraction, 0..1): the settings to use from
        now on. The first report replaces ``initial_loss``; after it, rising loss counts at
        once, falling loss slowly (a second without loss at 5 % is common: protection must not
        switch off on it)."""
        loss = max(0.0, min(1.0, loss))
        if not self._reported:
            self.loss_estimate = loss
            self._reported = True
        self.loss_estimate = (
            loss if loss >= self.loss_estimate else 0.8 * self.loss_estimate + 0.2 * loss
        )
        self.settings = self.policy.settings(self.loss_estimate)
        return self.settings

    def _redundant(self, dtx: bool) -> tuple[RedundantFrame, ...]:
        """The packets sent 1..R packets ago, as redundancy (none in DTX or when R is 0)."""
        if dtx:
            return ()
        history = self._history
        return tuple(
            RedundantFrame(age=age, data=history[-age])
            for age in range(1, min(self.settings.redundancy, len(history)) + 1)
            if history[-age]
        )


@dataclass(slots=True)
class ReceiverCounters:
    packets: int = 0
    expected: int = 0
    lost: int = 0
    "Expected minus received primary packets (RFC 3550 §6.4.1), before redundancy."

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class MediaReceiver:
    def __init__(self, *, jitter: JitterConfig | None = None) -> None:
        self.buffer = JitterBuffer(jitter)
        self.counters = ReceiverCounters()
        self._base: int | None = None
        self._highest = 0
        "Extended highest seq seen (for expected = highest - base + 1)."
        self._seen: set[int] = set()
        self._interval = (0, 0)
        "(expected, received) at the last report: loss is reported per interval."

    def receive(self, frame: MediaFrame, *, arrival: float) -> None:
        ext = self._extend(frame.seq)
        if ext not in self._seen:
            self._seen.add(ext)
            self.counters.packets += 1
            if len(self._seen) > 4096:
                self._seen = {s for s in self._seen if s > self._highest - 2048}
        self.buffer.push(
            frame.seq, frame.timestamp, frame.payload, arrival=arrival, marker=frame.marker
        )
        for red in frame.redundant:
            seq = (frame.seq - red.age) % _SEQ_MOD
            ts = (frame.timestamp - red.age * FRAME_TICKS) % _TS_MOD
            self.buffer.push(seq, ts, red.data, arrival=arrival, redundant=True)
        self.counters.expected = self._highest - (self._base or 0) + 1
        self.counters.lost = max(0, self.counters.expected - self.counters.packets)

    def playout(self, now: float) -> Playout:
        return self.buffer.pop(now)

    def loss_since_last_report(self) -> float:
        """Fraction of packets lost since the previous call (the receiver report's figure)."""
        expected, received = self.counters.expected, self.counters.packets
        prev_expected, prev_received = self._interval
        self._interval = (expected, received)
        interval = expected - prev_expected
        if interval <= 0:
            return 0.0
        return max(0.0, min(1.0, (interval - (received - prev_received)) / interval))

    def _extend(self, seq: int) -> int:
        if self._base is None:
            self._base = self._highest = seq
            return seq
        delta = (seq - self._highest) % _SEQ_MOD
        if delta >= _SEQ_MOD // 2:
            delta -= _SEQ_MOD
        ext = self._highest + delta
        self._highest = max(self._highest, ext)
        return ext
