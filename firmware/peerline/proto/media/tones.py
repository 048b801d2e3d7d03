"""Local call-progress tones and DTMF feedback as PCM, sans-I/O.

Why here: with no exchange in the path, nobody sends the caller a dial, ringback or busy tone;
the phone makes them itself, in the tone plan the user expects (ITU-T E.180 Supplement 2 and the
national plans). The audio side pulls one frame at a time from a :class:`ToneGenerator`, exactly
as it pulls decoded speech, so there are no threads, clocks or devices here.

* Plans are data: :data:`TONE_PLANS` maps a region (``us``, ``gb``, ``de``, ``fr``, ``jp``,
  ``eu``) to a :class:`TonePlan` of :class:`ToneSpec` s; :func:`tone_plan` looks one up.
* A :class:`ToneSpec` is a set of frequencies and a cadence of :class:`Cadence` steps (sound or
  silence), played once or repeated.
* The generator is a table-lookup oscillator with one 32-bit phase accumulator per component, so
  output is phase-continuous across frames and identical however the caller slices it. Every
  edge between sound and silence gets a 5 ms raised-cosine ramp (no clicks); a change of
  frequency with the same number of components keeps the phases and needs no ramp (the ringer's
  warble relies on that).
* DTMF travels as events in call signalling; :func:`dtmf_tone` only makes the local key feedback
  and the tone played to the far-end listener.

Levels are per component in dBFS, where a full-scale sine (peak 32767) is 0 dBFS; the default
of -13 dBFS mirrors the -13 dBm0 per frequency of the North American precise tone plan.
"""

from __future__ import annotations

import enum
import math
import sys
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType

from peerline.errors import ConfigError

SILENCE: tuple[float, ...] = ()
"Frequencies of a silent :class:`Cadence` step."

RAMP_S = 0.005
"Length of the raised-cosine ramp at every sound/silence edge (5 ms)."

FULL_SCALE = 32767
"Peak of a 0 dBFS sine in signed 16-bit PCM."

_TABLE_BITS = 12
_TABLE_SIZE = 1 << _TABLE_BITS  # phase truncation spurs sit near -72 dBc: inaudible under a tone
_PHASE_BITS = 32
_PHASE_MASK = (1 << _PHASE_BITS) - 1
_SHIFT = _PHASE_BITS - _TABLE_BITS
_BIG_ENDIAN = sys.byteorder == "big"


def _check_frequencies(frequencies: tuple[float, ...]) -> None:
    for f in frequencies:
        if not (isinstance(f, int | float) and math.isfinite(f) and f > 0):
            raise ValueError(f"tone frequency must be a positive number of Hz, got {f!r}")


@dataclass(frozen=True, slots=True)
class Cadence:
    """One step of a cadence: ``duration_s`` seconds of sound or of silence.

    ``frequencies=None`` plays the tone's own frequencies, :data:`SILENCE` (``()``) is silence,
    and any other tuple plays just those components (a warble alternates such steps).
    """

    duration_s: float
    frequencies: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"cadence step must last > 0 s, got {self.duration_s!r}")
        if self.frequencies is not None:
            object.__setattr__(self, "frequencies", tuple(self.frequencies))
            _check_frequencies(self.frequencies)

    @property
    def silent(self) -> bool:
        """True for a step of silence."""
        return self.frequencies == SILENCE


@dataclass(frozen=True, slots=True)
class ToneSpec:
    """A tone: its frequencies (Hz), a cadence of steps, and whether the cadence repeats.

    ``frequencies`` lists every component the tone uses, so a step that names its own
    frequencies may only pick from them; a continuous tone is one sound step, repeated.
    """

    frequencies: tuple[float, ...]
    cadence: tuple[Cadence, ...]
    repeat: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "frequencies", tuple(self.frequencies))
        object.__setattr__(self, "cadence", tuple(self.cadence))
        _check_frequencies(self.frequencies)
        if not self.cadence:
            raise ValueError("a tone needs at least one cadence step")
        for step in self.cadence:
            if step.frequencies is None and not self.frequencies:
                raise ValueError("a step plays the tone's frequencies but the tone has none")
            if step.frequencies is not None and not set(step.frequencies) <= set(self.frequencies):
                raise ValueError(
                    f"step frequencies {step.frequencies} are not among the tone's "
                    f"{self.frequencies}"
                )

    @property
    def period_s(self) -> float:
        """Length of one pass through the cadence, in seconds."""
        return math.fsum(step.duration_s for step in self.cadence)

    def steps(self) -> tuple[tuple[float, tuple[float, ...]], ...]:
        """The cadence as ``(duration_s, frequencies)`` pairs, ``()`` for silence."""
        return tuple(
            (s.duration_s, self.frequencies if s.frequencies is None else s.frequencies)
            for s in self.cadence
        )


class Tone(enum.Enum):
    """The local tones a call can need; :meth:`TonePlan.spec` gives each one's sound."""

    DIAL = "dial"
    RINGBACK = "ringback"
    BUSY = "busy"
    CONGESTION = "congestion"
    CALL_WAITING = "call_waiting"
    RINGER = "ringer"
    HOLD = "hold"


HOLD_TONE = ToneSpec(
    (440.0, 620.0),
    (Cadence(0.15, (440.0,)), Cadence(0.15, (620.0,)), Cadence(5.7, SILENCE)),
    repeat=True,
)
"""Two short notes every 6 s while the far phone holds the call: no region's plan defines one,
and a held line must not sound dead (nor like any call-progress tone)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TonePlan:
    """One region's tones. ``ringer`` is the local ring of an incoming call on the speaker."""

    region: str
    dial: ToneSpec
    ringback: ToneSpec
    busy: ToneSpec
    congestion: ToneSpec
    call_waiting: ToneSpec
    ringer: ToneSpec
    hold: ToneSpec = HOLD_TONE
    "What a held party hears (the far phone stopped sending); no region's plan has its own."

    def spec(self, tone: Tone) -> ToneSpec:
        """The :class:`ToneSpec` this plan uses for ``tone``."""
        match tone:
            case Tone.DIAL:
                return self.dial
            case Tone.RINGBACK:
                return self.ringback
            case Tone.BUSY:
                return self.busy
            case Tone.CONGESTION:
                return self.congestion
            case Tone.CALL_WAITING:
                return self.call_waiting
            case Tone.RINGER:
                return self.ringer
            case Tone.HOLD:
                return self.hold


# --- Tone plans --------------------------------------------------------------------------------


def _on(duration_s: float, *frequencies: float) -> Cadence:
    return Cadence(duration_s, frequencies or None)


def _off(duration_s: float) -> Cadence:
    return Cadence(duration_s, SILENCE)


def _tone(frequencies: tuple[float, ...], *cadence: float) -> ToneSpec:
    """A repeating tone from alternating on/off durations (one duration: continuous)."""
    steps = tuple(_on(d) if i % 2 == 0 else _off(d) for i, d in enumerate(cadence))
    return ToneSpec(frequencies, steps, repeat=True)


RINGER_WARBLE_HZ = (1000, 1250)
"The ringer alternates these two frequencies ..."
RINGER_WARBLE_STEP_S = 0.025
"... every 25 ms (a 20 Hz warble), phase-continuous, in the manner of electronic ringers."


def _ringer(*cadence: float) -> ToneSpec:
    """A warbling ringer on the region's ringing cadence (alternating on/off durations).

    Every on-time in the plans is a whole number of warble steps, so each burst starts on the
    low frequency; the warble makes it unlike any ringback tone heard in the handset.
    """
    low, high = RINGER_WARBLE_HZ
    steps: list[Cadence] = []
    for i, duration in enumerate(cadence):
        if i % 2:
            steps.append(_off(duration))
            continue
        count = round(duration / RINGER_WARBLE_STEP_S)
        if not math.isclose(count * RINGER_WARBLE_STEP_S, duration):
            raise ValueError(f"ringer on-time {duration} s is not a whole number of warble steps")
        steps += [_on(RINGER_WARBLE_STEP_S, high if k % 2 else low) for k in range(count)]
    return ToneSpec(RINGER_WARBLE_HZ, tuple(steps), repeat=True)


def _plans() -> dict[str, TonePlan]:
    continuous = 1.0  # one sound step, repeated: a continuous tone
    return {
        # North America, precise tone plan (ATIS-0300011 / Bellcore): -13 dBm0 per frequency.
        "us": TonePlan(
            region="us",
            dial=_tone((350, 440), continuous),
            ringback=_tone((440, 480), 2.0, 4.0),
            busy=_tone((480, 620), 0.5, 0.5),
            congestion=_tone((480, 620), 0.25, 0.25),  # "reorder", fast busy
            call_waiting=_tone((440,), 0.3, 9.7),  # one beep every 10 s while waiting
            ringer=_ringer(2.0, 4.0),
        ),
        # United Kingdom, BT SIN 350.
        "gb": TonePlan(
            region="gb",
            dial=_tone((350, 450), continuous),
            ringback=_tone((400, 450), 0.4, 0.2, 0.4, 2.0),
            busy=_tone((400,), 0.375, 0.375),
            congestion=_tone((400,), 0.4, 0.35, 0.225, 0.525),
            call_waiting=_tone((400,), 0.1, 2.0),
            ringer=_ringer(0.4, 0.2, 0.4, 2.0),
        ),
        # Germany, 1TR110 / Telekom: 425 Hz for everything.
        "de": TonePlan(
            region="de",
            dial=_tone((425,), continuous),
            ringback=_tone((425,), 1.0, 4.0),
            busy=_tone((425,), 0.48, 0.48),
            congestion=_tone((425,), 0.24, 0.24),
            call_waiting=_tone((425,), 0.2, 0.2, 0.2, 5.0),
            ringer=_ringer(1.0, 4.0),
        ),
        # France: 440 Hz for everything; congestion as the ETSI fast cadence, call waiting a
        # 0.3 s beep every ~10 s.
        "fr": TonePlan(
            region="fr",
            dial=_tone((440,), continuous),
            ringback=_tone((440,), 1.5, 3.5),
            busy=_tone((440,), 0.5, 0.5),
            congestion=_tone((440,), 0.25, 0.25),
            call_waiting=_tone((440,), 0.3, 10.0),
            ringer=_ringer(1.5, 3.5),
        ),
        # Japan (NTT): 400 Hz. The ringback is 400 Hz modulated by 16 Hz in the network; a
        # plain 400 Hz on the same 1 s / 2 s cadence is used here. NTT has no separate
        # congestion tone we follow, so congestion is the busy tone; call waiting is our choice
        # (two short beeps, then 3 s).
        "jp": TonePlan(
            region="jp",
            dial=_tone((400,), continuous),
            ringback=_tone((400,), 1.0, 2.0),
            busy=_tone((400,), 0.5, 0.5),
            congestion=_tone((400,), 0.5, 0.5),
            call_waiting=_tone((400,), 0.1, 0.1, 0.1, 3.0),
            ringer=_ringer(1.0, 2.0),
        ),
        # ETSI/CEPT default (ETSI ES 201 970, TR 101 041): 425 Hz.
        "eu": TonePlan(
            region="eu",
            dial=_tone((425,), continuous),
            ringback=_tone((425,), 1.0, 4.0),
            busy=_tone((425,), 0.5, 0.5),
            congestion=_tone((425,), 0.25, 0.25),
            call_waiting=_tone((425,), 0.2, 0.2, 0.2, 5.0),
            ringer=_ringer(1.0, 4.0),
        ),
    }


TONE_PLANS: Mapping[str, TonePlan] = MappingProxyType(_plans())
"Every known tone plan by lower-case region code."


def tone_plan(region: str) -> TonePlan:
    """The tone plan for ``region`` (case and surrounding spaces ignored).

    Raises :class:`~peerline.errors.ConfigError` (a ``ValueError``) naming the known regions.
    """
    plan = TONE_PLANS.get(region.strip().lower())
    if plan is None:
        known = ", ".join(sorted(TONE_PLANS))
        raise ConfigError(f"unknown tone region {region!r}; known regions: {known}")
    return plan


# --- DTMF --------------------------------------------------------------------------------------

DTMF_FREQUENCIES: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        digit: (low, high)
        for row, low in zip(("123A", "456B", "789C", "*0#D"), (697, 770, 852, 941), strict=True)
        for digit, high in zip(row, (1209, 1336, 1477, 1633), strict=True)
    }
)
"(low, high) group frequencies in Hz of each DTMF key (ITU-T Q.23)."


def is_dtmf_digit(s: str) -> bool:
    """True if ``s`` is exactly one DTMF key: ``0``-``9``, ``*``, ``#`` or ``A``-``D``."""
    return isinstance(s, str) and s in DTMF_FREQUENCIES


def dtmf_tone(digit: str, duration_s: float = 0.1) -> ToneSpec:
    """The sound of one DTMF key for ``duration_s`` seconds, played once.

    Raises ``ValueError`` for anything but one DTMF key or a non-positive duration.
    """
    if not is_dtmf_digit(digit):
        raise ValueError(f"not a DTMF digit: {digit!r} (expected one of 0-9 * # A-D)")
    return ToneSpec(DTMF_FREQUENCIES[digit], (Cadence(duration_s),), repeat=False)


# --- Generation --------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _sine_table(amplitude: float) -> tuple[int, ...]:
    return tuple(
        round(amplitude * math.sin(2 * math.pi * i / _TABLE_SIZE)) for i in range(_TABLE_SIZE)
    )


@lru_cache(maxsize=16)
def _ramp(length: int) -> tuple[float, ...]:
    """Raised-cosine rise over ``length`` samples, sampled at the sample centres."""
    return tuple(0.5 - 0.5 * math.cos(math.pi * (j + 0.5) / length) for j in range(length))


@dataclass(frozen=True, slots=True)
class _Segment:
    """A cadence step resolved to samples at one sample rate."""

    length: int
    increments: tuple[int, ...]  # phase step per sample of each component; () is silence
    ramp_in: tuple[float, ...]  # envelope of the first samples when entered from another step
    ramp_out: tuple[float, ...]  # envelope of the last samples


def _segments(spec: ToneSpec, sample_rate: int) -> tuple[tuple[_Segment, ...], tuple[float, ...]]:
    """Resolve the cadence; also return the ramp-in of step 0 when the tone starts."""
    steps = spec.steps()
    bounds = [0]
    elapsed: list[float] = []
    for duration, _ in steps:
        elapsed.append(duration)
        bounds.append(round(math.fsum(elapsed) * sample_rate))
    lengths = [b - a for a, b in pairwise(bounds)]
    if min(lengths) < 1:
        raise ValueError(f"a cadence step is shorter than one sample at {sample_rate} Hz")
    nyquist = sample_rate / 2
    for _, frequencies in steps:
        if any(f >= nyquist for f in frequencies):
            raise ValueError(f"tone frequencies {frequencies} reach Nyquist at {sample_rate} Hz")
    counts = [len(f) for _, f in steps]
    ramp = round(RAMP_S * sample_rate)

    def edge(a: int | None, b: int | None) -> bool:
        """Whether sound changes on/off (or its component count) between steps a and b."""
        ca = 0 if a is None else counts[a]
        cb = 0 if b is None else counts[b]
        return ca != cb

    n = len(steps)
    segments = []
    start_ramp: tuple[float, ...] = ()
    for i, ((_, frequencies), length) in enumerate(zip(steps, lengths, strict=True)):
        r = min(ramp, length // 2)
        rise = _ramp(r) if frequencies and r else ()
        prev = (i - 1) % n if (i or spec.repeat) else None
        nxt = (i + 1) % n if (i + 1 < n or spec.repeat) else None
        segments.append(
            _Segment(
                length=length,
                increments=tuple(round(f / sample_rate * (1 << _PHASE_BITS)) for f in frequencies),
                ramp_in=rise if edge(prev, i) else (),
                ramp_out=rise[::-1] if edge(i, nxt) else (),
            )
        )
        if i == 0:
            start_ramp = rise  # the tone starts from silence
    return tuple(segments), start_ramp


class ToneGenerator:
    """Plays a :class:`ToneSpec` as signed 16-bit little-endian mono PCM, a frame at a time.

    ``sample_rate`` in Hz; ``level_dbfs`` per component (0 dBFS = full-scale sine), checked so
    that all components together cannot clip. Example::

        gen = ToneGenerator(tone_plan("gb").busy)
        pcm = gen.frame(320)  # 20 ms at 16 kHz
    """

    __slots__ = (
        "_finished",
        "_first_pass",
        "_index",
        "_offset",
        "_phases",
        "_segments",
        "_start_ramp",
        "_stop_ramp",
        "_table",
        "level_dbfs",
        "sample_rate",
        "spec",
    )

    def __init__(
        self, spec: ToneSpec, *, sample_rate: int = 16000, level_dbfs: float = -13.0
    ) -> None:
        if not (isinstance(sample_rate, int) and sample_rate > 0):
            raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
        if not (math.isfinite(level_dbfs) and level_dbfs <= 0):
            raise ValueError(f"level_dbfs must be <= 0, got {level_dbfs!r}")
        self.spec = spec
        self.sample_rate = sample_rate
        self.level_dbfs = level_dbfs
        self._segments, self._start_ramp = _segments(spec, sample_rate)
        amplitude = FULL_SCALE * 10 ** (level_dbfs / 20)
        components = max(len(s.increments) for s in self._segments)
        if components * round(amplitude) > FULL_SCALE:
            highest = math.floor(2000 * math.log10((FULL_SCALE // components) / FULL_SCALE)) / 100
            raise ValueError(
                f"{components} components at {level_dbfs} dBFS each would clip; "
                f"use at most {highest:.2f} dBFS"
            )
        self._table = _sine_table(amplitude)
        self._phases = [0] * components
        self._index = 0
        self._offset = 0
        self._first_pass = True
        self._finished = False
        self._stop_ramp: tuple[float, ...] | None = None

    @property
    def finished(self) -> bool:
        """True once a non-repeating tone has played out (or :meth:`stop` has faded it)."""
        return self._finished

    def stop(self) -> None:
        """Fade out over the next 5 ms instead of cutting the tone (e.g. the call was answered).

        Then: keep calling :meth:`frame` until :attr:`finished`; the rest is silence.
        """
        if not self._finished and self._stop_ramp is None:
            self._stop_ramp = _ramp(round(RAMP_S * self.sample_rate))[::-1]

    def frame(self, samples: int) -> bytes:
        """The next ``samples`` samples (``2 * samples`` bytes), following the cadence.

        Then: play the bytes (or :func:`mix` them over call audio) and call again for the next
        frame; after :attr:`finished` the frames are silence.
        """
        if not (isinstance(samples, int) and samples >= 0):
            raise ValueError(f"samples must be a non-negative int, got {samples!r}")
        out = array("h")
        stop = self._stop_ramp
        if stop is not None and not self._finished:
            fade = self._render(min(samples, len(stop)))
            out.extend(round(s * e) for s, e in zip(fade, stop, strict=False))
            self._stop_ramp = stop[len(fade) :] or None
            if self._stop_ramp is None:
                self._finished = True
        out.extend(self._render(samples - len(out)))
        if _BIG_ENDIAN:
            out.byteswap()
        return out.tobytes()

    def _render(self, samples: int) -> array[int]:
        """Advance the cadence by ``samples`` and return them (native byte order)."""
        out = array("h")
        while samples > 0:
            if self._finished:
                out.frombytes(bytes(2 * samples))
                break
            segment = self._segments[self._index]
            take = min(samples, segment.length - self._offset)
            out.extend(self._sound(segment, self._offset, take))
            samples -= take
            self._offset += take
            if self._offset == segment.length:
                self._offset = 0
                self._index += 1
                if self._index == len(self._segments):
                    self._index = 0
                    self._first_pass = False
                    if not self.spec.repeat:
                        self._finished = True
        return out

    def _sound(self, segment: _Segment, offset: int, take: int) -> list[int]:
        """Samples ``offset .. offset + take`` of ``segment``, advancing the phases."""
        if not segment.increments:
            return [0] * take
        table, phases = self._table, self._phases
        out: list[int] = []
        for k, inc in enumerate(segment.increments):
            start = phases[k]
            ph = range(start, start + take * inc, inc)
            if k == 0:
                out = [table[(p & _PHASE_MASK) >> _SHIFT] for p in ph]
            else:
                out = [o + table[(p & _PHASE_MASK) >> _SHIFT] for o, p in zip(out, ph, strict=True)]
            phases[k] = (start + take * inc) & _PHASE_MASK
        rise = self._start_ramp if (self._first_pass and self._index == 0) else segment.ramp_in
        for j in range(offset, min(offset + take, len(rise))):
            out[j - offset] = round(out[j - offset] * rise[j])
        fall = segment.ramp_out
        first_fall = segment.length - len(fall)
        for j in range(max(offset, first_fall), offset + take):
            out[j - offset] = round(out[j - offset] * fall[j - first_fall])
        return out


def mix(a: bytes, b: bytes) -> bytes:
    """Saturating sum of two equal-length PCM16 LE frames (a tone over call audio)."""
    if len(a) != len(b) or len(a) % 2:
        raise ValueError(f"mix needs two PCM16 frames of equal length, got {len(a)} and {len(b)}")
    x, y = array("h", a), array("h", b)
    if _BIG_ENDIAN:
        x.byteswap()
        y.byteswap()
    out = array(
        "h",
        [
            s if -32768 <= s <= 32767 else (32767 if s > 0 else -32768)
            for s in map(int.__add__, x, y)
        ],
    )
    if _BIG_ENDIAN:
        out.byteswap()
    return out.tobytes()


def scale(frame: bytes, gain: float) -> bytes:
    """A PCM16 LE frame at ``gain`` times its level (saturating): the speaker's volume."""
    if gain == 1.0:
        return frame
    x = array("h", frame)
    if _BIG_ENDIAN:
        x.byteswap()
    out = array(
        "h",
        [
            s if -32768 <= s <= 32767 else (32767 if s > 0 else -32768)
            for s in (int(v * gain) for v in x)
        ],
    )
    if _BIG_ENDIAN:
        out.byteswap()
    return out.tobytes()
