"""What the phone plays besides the calls' audio: the tone the calls' states call for (the
ringer, call waiting, ringback, hold, busy or congestion after a failed call), a tone a front
end asks for (the dial tone), DTMF and key feedback over everything, and the speaker volume.

Sans-I/O and stateful only in what it plays now: the call manager tells it the calls each
20 ms period (``frame``) and it answers with the tone's frame, if any.
"""

from peerline.proto.media.tones import (
    Tone,
    ToneGenerator,
    TonePlan,
    ToneSpec,
    mix,
    scale,
    tone_plan,
)

from .config import DEFAULT_VOLUME, VOLUME_LEVELS
from .state import Call, CallState

VOLUME_DB_PER_STEP = 3.0
MAX_OVERLAYS = 4
"""DTMF and key tones playing at once (older ones are dropped)."""
_UP = (CallState.ACTIVE, CallState.HELD)
_ENGAGED = (CallState.ACTIVE, CallState.HELD, CallState.DIALING, CallState.RINGBACK)
"""A call in one of these silences the busy tone of one that failed (it is being talked in)."""


class LocalSounds:
    def __init__(self, *, region: str, sample_rate: int, level_dbfs: float) -> None:
        self.plan: TonePlan = tone_plan(region)
        self.sample_rate = sample_rate
        self.level_dbfs = level_dbfs
        self.frame_samples = sample_rate // 50
        self.volume = DEFAULT_VOLUME
        self._gain = 1.0
        self._tone: tuple[Tone, bytes] | None = None
        "The tone playing and the call it is for."
        self._tone_gen: ToneGenerator | None = None
        self._end_tone: tuple[Tone, bytes, float] | None = None
        "(tone, call id, until): busy or congestion after a failed outgoing call."
        self._overlays: list[ToneGenerator] = []
        "DTMF feedback mixed over whatever plays."
        self.local_tone: Tone | None = None
        "A tone a front end asked for (the dial tone), played while no call is live."

    def reconfigure(self, *, region: str, level_dbfs: float) -> None:
        """A new tone plan and level (a reloaded configuration), for tones started from now."""
        self.plan = tone_plan(region)
        self.level_dbfs = level_dbfs

    def set_volume(self, level: int) -> None:
        """Speaker volume 0..``VOLUME_LEVELS`` (0 is silent), 3 dB a step around
        ``DEFAULT_VOLUME``. ValueError outside that range."""
        if not 0 <= level <= VOLUME_LEVELS:
            raise ValueError(f"volume is 0 to {VOLUME_LEVELS}")
        self.volume = level
        self._gain = (
            0.0 if level == 0 else 10 ** ((level - DEFAULT_VOLUME) * VOLUME_DB_PER_STEP / 20)
        )

    def after_failure(self, tone: Tone, call_id: bytes, until: float) -> None:
        """Busy or congestion for a failed outgoing call, until ``until`` (or a call is up)."""
        self._end_tone = (tone, call_id, until)

    def overlay(self, spec: ToneSpec) -> None:
        """Play ``spec`` (a DTMF digit) over whatever plays."""
        self._overlays.append(
            ToneGenerator(spec, sample_rate=self.sample_rate, level_dbfs=self.level_dbfs)
        )
        del self._overlays[:-MAX_OVERLAYS]

    def frame(self, live: list[Call], talking: list[Call], now: float) -> bytes | None:
        """The state tone for this period (to mix over the calls' audio), or None."""
        want: tuple[Tone, bytes] | None = None
        ringing = [c for c in live if c.state is CallState.INCOMING]
        engaged = [c for c in live if c.state in _ENGAGED]
        ringback = [c for c in live if c.state is CallState.RINGBACK]
        if ringing:
            tone = Tone.CALL_WAITING if engaged else Tone.RINGER
            want = (tone, ringing[0].call_id)
        elif ringback and not talking:
            want = (Tone.RINGBACK, ringback[0].call_id)
        elif not talking and any(c.state is CallState.ACTIVE and c.held_by_peer for c in live):
            want = (Tone.HOLD, b"")
        elif not engaged and self._end_tone is not None:
            tone, call_id, until = self._end_tone
            if now < until:
                want = (tone, call_id)
            else:
                self._end_tone = None
        if want is None and not live and self.local_tone is not None:
            want = (self.local_tone, b"")
        if want != self._tone:
            self._tone = want
            self._tone_gen = None if want is None else self._generator(want[0])
        return None if self._tone_gen is None else self._tone_gen.frame(self.frame_samples)

    def finish(self, out: bytes) -> bytes:
        """The speaker's frame: ``out`` with the overlays mixed in, at the volume."""
        if self._overlays:
            for gen in self._overlays:
                out = mix(out, gen.frame(self.frame_samples))
            self._overlays = [g for g in self._overlays if not g.finished]
        return scale(out, self._gain)

    def active(self, now: float) -> bool:
        """Whether something plays with no call live (the audio device must stay open)."""
        if self._overlays or self.local_tone is not None:
            return True
        return self._end_tone is not None and now < self._end_tone[2]

    def until(self) -> float | None:
        """When the busy or congestion tone after a failed call stops, if one plays."""
        return None if self._end_tone is None else self._end_tone[2]

    def _generator(self, tone: Tone) -> ToneGenerator:
        return ToneGenerator(
            self.plan.spec(tone), sample_rate=self.sample_rate, level_dbfs=self.level_dbfs
        )
