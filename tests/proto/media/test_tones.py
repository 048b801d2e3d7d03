"""Local tones and DTMF: plans as data, generated PCM checked by measurement (frequencies by
least squares and Goertzel, cadence per 20 ms frame), click-free edges, chunking, levels, mix."""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerline.proto.media.tones import (
    DTMF_FREQUENCIES,
    FULL_SCALE,
    RAMP_S,
    RINGER_WARBLE_HZ,
    SILENCE,
    TONE_PLANS,
    Cadence,
    Tone,
    ToneGenerator,
    ToneSpec,
    dtmf_tone,
    is_dtmf_digit,
    mix,
    tone_plan,
)

Samples = npt.NDArray[np.float64]

RATE = 16_000
FRAME = 320  # 20 ms at 16 kHz
LEVEL = -13.0
AMPLITUDE = FULL_SCALE * 10 ** (LEVEL / 20)
REGIONS = ("us", "gb", "de", "fr", "jp", "eu")
CASES = [(region, tone) for region in REGIONS for tone in Tone]
CONTINUOUS = (1.0,)  # one sound step, repeated

# National values (ITU-T E.180 Suppl. 2 and the national plans): frequencies and alternating
# on/off durations in seconds, starting with on.
PINNED: dict[tuple[str, Tone], tuple[tuple[float, ...], tuple[float, ...]]] = {
    ("us", Tone.DIAL): ((350, 440), CONTINUOUS),
    ("us", Tone.RINGBACK): ((440, 480), (2.0, 4.0)),
    ("us", Tone.BUSY): ((480, 620), (0.5, 0.5)),
    ("us", Tone.CONGESTION): ((480, 620), (0.25, 0.25)),
    ("us", Tone.CALL_WAITING): ((440,), (0.3, 9.7)),
    ("gb", Tone.DIAL): ((350, 450), CONTINUOUS),
    ("gb", Tone.RINGBACK): ((400, 450), (0.4, 0.2, 0.4, 2.0)),
    ("gb", Tone.BUSY): ((400,), (0.375, 0.375)),
    ("gb", Tone.CONGESTION): ((400,), (0.4, 0.35, 0.225, 0.525)),
    ("gb", Tone.CALL_WAITING): ((400,), (0.1, 2.0)),
    ("de", Tone.DIAL): ((425,), CONTINUOUS),
    ("de", Tone.RINGBACK): ((425,), (1.0, 4.0)),
    ("de", Tone.BUSY): ((425,), (0.48, 0.48)),
    ("de", Tone.CONGESTION): ((425,), (0.24, 0.24)),
    ("de", Tone.CALL_WAITING): ((425,), (0.2, 0.2, 0.2, 5.0)),
    ("fr", Tone.DIAL): ((440,), CONTINUOUS),
    ("fr", Tone.RINGBACK): ((440,), (1.5, 3.5)),
    ("fr", Tone.BUSY): ((440,), (0.5, 0.5)),
    ("fr", Tone.CONGESTION): ((440,), (0.25, 0.25)),
    ("fr", Tone.CALL_WAITING): ((440,), (0.3, 10.0)),
    ("jp", Tone.DIAL): ((400,), CONTINUOUS),
    ("jp", Tone.RINGBACK): ((400,), (1.0, 2.0)),
    ("jp", Tone.BUSY): ((400,), (0.5, 0.5)),
    ("jp", Tone.CONGESTION): ((400,), (0.5, 0.5)),
    ("jp", Tone.CALL_WAITING): ((400,), (0.1, 0.1, 0.1, 3.0)),
    ("eu", Tone.DIAL): ((425,), CONTINUOUS),
    ("eu", Tone.RINGBACK): ((425,), (1.0, 4.0)),
    ("eu", Tone.BUSY): ((425,), (0.5, 0.5)),
    ("eu", Tone.CONGESTION): ((425,), (0.25, 0.25)),
    ("eu", Tone.CALL_WAITING): ((425,), (0.2, 0.2, 0.2, 5.0)),
    # The ringer warbles on the national ringing cadence (the module's choice).
    ("us", Tone.RINGER): (RINGER_WARBLE_HZ, (2.0, 4.0)),
    ("gb", Tone.RINGER): (RINGER_WARBLE_HZ, (0.4, 0.2, 0.4, 2.0)),
    ("de", Tone.RINGER): (RINGER_WARBLE_HZ, (1.0, 4.0)),
    ("fr", Tone.RINGER): (RINGER_WARBLE_HZ, (1.5, 3.5)),
    ("jp", Tone.RINGER): (RINGER_WARBLE_HZ, (1.0, 2.0)),
    ("eu", Tone.RINGER): (RINGER_WARBLE_HZ, (1.0, 4.0)),
}
# The hold tone is the same everywhere (no region's plan defines one): two notes every 6 s.
PINNED |= {(region, Tone.HOLD): ((440.0, 620.0), (0.3, 5.7)) for region, _ in list(PINNED)}


# --- helpers -----------------------------------------------------------------------------------


def play(
    spec: ToneSpec, seconds: float, *, rate: int = RATE, level: float = LEVEL, chunk: int = FRAME
) -> Samples:
    gen = ToneGenerator(spec, sample_rate=rate, level_dbfs=level)
    total = round(seconds * rate)
    pcm = b"".join(gen.frame(min(chunk, total - i)) for i in range(0, total, chunk))
    assert len(pcm) == 2 * total
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def timeline(spec: ToneSpec, seconds: float, rate: int) -> list[tuple[int, int, tuple[float, ...]]]:
    """(start, end, frequencies) of every step in ``seconds``, from the spec's durations."""
    steps = spec.steps()
    out: list[tuple[int, int, tuple[float, ...]]] = []
    base = 0
    while True:
        elapsed = 0.0
        for duration, frequencies in steps:
            start = base + round(elapsed * rate)
            elapsed += duration
            end = base + round(elapsed * rate)
            if start >= seconds * rate:
                return out
            out.append((start, end, frequencies))
        base = out[-1][1]
        if not spec.repeat:
            return out


def on_off(spec: ToneSpec) -> tuple[tuple[float, ...], tuple[bool, ...]]:
    """The cadence with consecutive sound (or silent) steps merged: durations and sounding."""
    merged: list[list[float | bool]] = []
    for duration, frequencies in spec.steps():
        sounding = bool(frequencies)
        if merged and merged[-1][1] == sounding:
            merged[-1][0] += duration
        else:
            merged.append([duration, sounding])
    return tuple(float(d) for d, _ in merged), tuple(bool(s) for _, s in merged)


def fit(x: Samples, start: int, frequencies: tuple[float, ...], rate: int) -> tuple[Samples, float]:
    """Least-squares amplitudes of ``frequencies`` in ``x`` and the residual's share of energy."""
    n = np.arange(start, start + len(x)) / rate
    columns = [g(2 * np.pi * f * n) for f in frequencies for g in (np.cos, np.sin)]
    basis = np.stack(columns, axis=1)
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    residual = x - basis @ coef
    amplitudes = np.hypot(coef[0::2], coef[1::2])
    return amplitudes, float(np.sum(residual**2) / np.sum(x**2))


def goertzel(x: Samples, frequency: float, rate: int) -> float:
    """Amplitude of ``frequency`` in ``x`` by the Goertzel recurrence."""
    coeff = 2 * math.cos(2 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for sample in x.tolist():
        s1, s2 = sample + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / len(x)


def max_step(spec: ToneSpec, rate: int, amplitude: float) -> float:
    """Largest sample-to-sample change a click-free rendering can have."""
    ramp_slope = math.pi / (2 * round(RAMP_S * rate))
    return (
        max(
            sum(amplitude * (2 * math.pi * f / rate + ramp_slope) for f in frequencies)
            for _, frequencies in spec.steps()
        )
        + 2
    )


# --- plans as data -----------------------------------------------------------------------------


@pytest.mark.parametrize(("region", "tone"), CASES)
def test_each_plan_pins_the_national_frequencies_and_cadence(region: str, tone: Tone) -> None:
    spec = tone_plan(region).spec(tone)
    frequencies, durations = PINNED[region, tone]
    merged, sounding = on_off(spec)
    assert tuple(sorted(spec.frequencies)) == frequencies
    assert merged == pytest.approx(durations)
    assert sounding == tuple(i % 2 == 0 for i in range(len(durations)))
    assert spec.repeat


def test_the_plan_table_knows_the_regions_and_each_plan_its_name() -> None:
    assert set(TONE_PLANS) == set(REGIONS)
    for region, plan in TONE_PLANS.items():
        assert plan.region == region
        for tone in Tone:
            assert plan.spec(tone) is getattr(plan, tone.value)


def test_unknown_region_raises_a_value_error_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown tone region 'xx'") as info:
        tone_plan("xx")
    for region in REGIONS:
        assert region in str(info.value)
    assert tone_plan(" GB ") is TONE_PLANS["gb"]


def test_specs_reject_what_cannot_be_played() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ToneSpec((440,), ())
    with pytest.raises(ValueError, match="not among"):
        ToneSpec((440,), (Cadence(0.1, (480,)),))
    with pytest.raises(ValueError, match="has none"):
        ToneSpec((), (Cadence(0.1),))
    with pytest.raises(ValueError, match="> 0 s"):
        Cadence(0.0)
    with pytest.raises(ValueError, match="positive"):
        ToneSpec((-440,), (Cadence(0.1),))
    with pytest.raises(ValueError, match="Nyquist"):
        ToneGenerator(ToneSpec((5000,), (Cadence(0.1),)), sample_rate=8000)
    with pytest.raises(ValueError, match="shorter than one sample"):
        ToneGenerator(ToneSpec((440,), (Cadence(1e-5), Cadence(0.1, SILENCE))))


# --- generated sound ---------------------------------------------------------------------------


def check_sound(spec: ToneSpec, rate: int) -> None:
    """Frequencies, amplitudes and silence per step; on/off timing per 20 ms frame."""
    seconds = min(spec.period_s + 3.0, 2 * spec.period_s)
    x = play(spec, seconds, rate=rate)
    ramp = round(RAMP_S * rate)
    amplitude = FULL_SCALE * 10 ** (LEVEL / 20)
    steps = timeline(spec, seconds, rate)
    for start, step_end, frequencies in steps:
        end = min(step_end, len(x))
        if not frequencies:
            assert not np.any(x[start:end]), f"sound in the silence at {start / rate:.3f} s"
            continue
        inner = x[start + ramp + 1 : end - ramp - 1]
        if len(inner) < rate // 100:
            continue  # the cut at the end of the recording
        amplitudes, residual = fit(inner, start + ramp + 1, frequencies, rate)
        assert amplitudes == pytest.approx([amplitude] * len(frequencies), rel=0.01)
        assert residual < 1e-4, f"energy off {frequencies} at {start / rate:.3f} s"

    # On/off per 20 ms frame, and every edge within one frame of where the spec puts it.
    frame = rate // 50
    frames = x[: len(x) // frame * frame].reshape(-1, frame)
    measured = np.sqrt(np.mean(frames**2, axis=1)) > 0.1 * amplitude
    expected_edges = [
        end
        for (_, end, f), (_, _, g) in itertools.pairwise(steps)
        if bool(f) != bool(g) and end < len(frames) * frame
    ]
    measured_edges = [k * frame for k in range(1, len(measured)) if measured[k] != measured[k - 1]]
    assert measured[0] == bool(steps[0][2])
    assert len(measured_edges) == len(expected_edges)
    for got, want in zip(measured_edges, expected_edges, strict=True):
        assert abs(got - want) <= frame, f"edge at {got / rate} s, spec says {want / rate} s"


@pytest.mark.parametrize(("region", "tone"), CASES)
def test_every_tone_sounds_at_its_frequencies_on_its_cadence(region: str, tone: Tone) -> None:
    check_sound(tone_plan(region).spec(tone), RATE)


@pytest.mark.parametrize("rate", [8000, 48000])
@pytest.mark.parametrize("tone", [Tone.BUSY, Tone.RINGBACK, Tone.RINGER])
def test_tones_keep_frequency_and_cadence_at_other_sample_rates(rate: int, tone: Tone) -> None:
    check_sound(tone_plan("gb").spec(tone), rate)


@pytest.mark.parametrize(("region", "tone"), CASES)
def test_every_edge_is_ramped_and_no_sample_jumps(region: str, tone: Tone) -> None:
    spec = tone_plan(region).spec(tone)
    seconds = min(spec.period_s + 1.0, 2 * spec.period_s)
    x = play(spec, seconds)
    assert np.max(np.abs(np.diff(x))) <= max_step(spec, RATE, AMPLITUDE)
    one_ms = RATE // 1000
    quiet = 0.1 * AMPLITUDE * len(spec.frequencies) + 1
    steps = [(0, 0, SILENCE), *timeline(spec, seconds, RATE)]
    for (_, _, before), (start, _, after) in itertools.pairwise(steps):
        if bool(before) != bool(after) and start + one_ms <= len(x):
            around = x[start - one_ms : start] if before else x[start : start + one_ms]
            assert np.max(np.abs(around), initial=0) <= quiet, f"click at {start / RATE} s"


tones = st.one_of(
    st.sampled_from([tone_plan(r).spec(t) for r, t in CASES]),
    st.sampled_from(sorted(DTMF_FREQUENCIES)).map(lambda d: dtmf_tone(d, 0.3)),
)


@settings(max_examples=60, deadline=None)
@given(spec=tones, chunks=st.lists(st.integers(0, 700), min_size=1, max_size=25))
def test_output_is_the_same_however_the_frames_are_cut(spec: ToneSpec, chunks: list[int]) -> None:
    gen = ToneGenerator(spec)
    cut = b"".join(gen.frame(n) for n in chunks)
    whole = ToneGenerator(spec).frame(sum(chunks))
    assert cut == whole
    x = np.frombuffer(cut, dtype="<i2").astype(np.float64)
    assert np.max(np.abs(np.diff(x)), initial=0) <= max_step(spec, RATE, AMPLITUDE)


@settings(max_examples=30, deadline=None)
@given(spec=tones, size=st.integers(1, 1000))
def test_frame_boundaries_never_click_for_any_frame_size(spec: ToneSpec, size: int) -> None:
    gen = ToneGenerator(spec)
    frames = [np.frombuffer(gen.frame(size), dtype="<i2").astype(np.float64) for _ in range(20)]
    bound = max_step(spec, RATE, AMPLITUDE)
    for a, b in itertools.pairwise(frames):
        assert abs(b[0] - a[-1]) <= bound


def test_a_continuous_tone_keeps_its_phase_across_repeats() -> None:
    """The dial tone repeats a 1 s step; the wrap must not reset the oscillator."""
    x = play(tone_plan("us").dial, 2.5)
    amplitudes, residual = fit(x[RATE // 2 : 2 * RATE], RATE // 2, (350, 440), RATE)
    assert amplitudes == pytest.approx([AMPLITUDE] * 2, rel=0.01)
    assert residual < 1e-4


# --- levels ------------------------------------------------------------------------------------


@given(level=st.floats(-60.0, -6.03))
@settings(max_examples=30, deadline=None)
def test_two_components_at_any_allowed_level_never_clip(level: float) -> None:
    x = play(tone_plan("us").busy, 0.6, level=level)
    amplitude = FULL_SCALE * 10 ** (level / 20)
    assert np.max(np.abs(x)) <= min(2 * round(amplitude), FULL_SCALE)
    assert np.max(np.abs(x)) >= 1.9 * amplitude - 2  # the components do add up at times


def test_a_level_that_would_clip_is_refused() -> None:
    with pytest.raises(ValueError, match="would clip"):
        ToneGenerator(tone_plan("us").dial, level_dbfs=-6.0)
    with pytest.raises(ValueError, match="<= 0"):
        ToneGenerator(tone_plan("de").dial, level_dbfs=1.0)
    x = play(tone_plan("de").dial, 0.1, level=0.0)
    assert np.max(np.abs(x)) == FULL_SCALE


# --- finishing and stopping --------------------------------------------------------------------


def test_a_tone_that_does_not_repeat_finishes_on_its_last_sample_then_stays_silent() -> None:
    gen = ToneGenerator(dtmf_tone("5", 0.1))  # 1600 samples
    states = []
    for n in (1599, 1):
        gen.frame(n)
        states.append(gen.finished)
    assert states == [False, True]
    assert gen.frame(FRAME) == bytes(2 * FRAME)
    assert gen.frame(0) == b""


def test_stop_fades_out_over_5_ms_then_finishes() -> None:
    gen = ToneGenerator(tone_plan("us").dial)
    before = np.frombuffer(gen.frame(1000), dtype="<i2").astype(np.float64)
    playing = gen.finished
    gen.stop()
    after = np.frombuffer(gen.frame(FRAME), dtype="<i2").astype(np.float64)
    ramp = round(RAMP_S * RATE)
    assert (playing, gen.finished) == (False, True)
    assert not np.any(after[ramp:])
    assert np.max(np.abs(after[ramp - 8 : ramp])) <= 0.05 * 2 * AMPLITUDE
    joined = np.concatenate([before, after])
    assert np.max(np.abs(np.diff(joined))) <= max_step(tone_plan("us").dial, RATE, AMPLITUDE)


def test_stop_spread_over_tiny_frames_is_the_same_fade() -> None:
    one, other = ToneGenerator(tone_plan("gb").dial), ToneGenerator(tone_plan("gb").dial)
    one.frame(500)
    other.frame(500)
    one.stop()
    other.stop()
    assert one.frame(200) == b"".join(other.frame(n) for n in (0, 3, 1, 50, 26, 120))


# --- DTMF --------------------------------------------------------------------------------------

DTMF_GROUPS = (697, 770, 852, 941, 1209, 1336, 1477, 1633)


def test_the_dtmf_table_is_the_q23_grid() -> None:
    assert "".join(DTMF_FREQUENCIES) == "123A456B789C*0#D"
    assert DTMF_FREQUENCIES["1"] == (697, 1209)
    assert DTMF_FREQUENCIES["0"] == (941, 1336)
    assert DTMF_FREQUENCIES["D"] == (941, 1633)


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("digit", list("0123456789*#ABCD"))
def test_each_digit_is_heard_at_its_two_frequencies(digit: str, rate: int) -> None:
    spec = dtmf_tone(digit)
    assert not spec.repeat and spec.period_s == pytest.approx(0.1)
    ramp = round(RAMP_S * rate)
    x = play(spec, 0.1, rate=rate)[ramp:-ramp]
    heard = {f: goertzel(x, f, rate) for f in DTMF_GROUPS}
    strongest = sorted(heard, key=heard.__getitem__)[-2:]
    assert tuple(sorted(strongest)) == DTMF_FREQUENCIES[digit]
    for f in strongest:
        assert heard[f] == pytest.approx(AMPLITUDE, rel=0.05)
    for f in set(DTMF_GROUPS) - set(strongest):
        assert heard[f] < 0.1 * AMPLITUDE


@pytest.mark.parametrize("bad", ["", "E", "a", "11", " 1", "#*", "\uff10"])
def test_anything_but_one_dtmf_key_is_refused(bad: str) -> None:
    assert not is_dtmf_digit(bad)
    with pytest.raises(ValueError, match="not a DTMF digit"):
        dtmf_tone(bad)


def test_dtmf_checks_its_duration() -> None:
    assert all(is_dtmf_digit(d) for d in "0123456789*#ABCD")
    with pytest.raises(ValueError):
        dtmf_tone("1", 0.0)


# --- mix ---------------------------------------------------------------------------------------

int16 = st.integers(-32768, 32767)


@given(st.lists(st.tuples(int16, int16), max_size=400))
def test_mix_is_a_saturating_sum(pairs: list[tuple[int, int]]) -> None:
    a = np.array([p[0] for p in pairs], dtype="<i2").tobytes()
    b = np.array([p[1] for p in pairs], dtype="<i2").tobytes()
    want = np.clip([p + q for p, q in pairs], -32768, 32767).astype("<i2").tobytes()
    assert mix(a, b) == want


def test_mix_saturates_at_both_rails_and_wants_equal_frames() -> None:
    loud = np.array([30000, -30000, 100], dtype="<i2").tobytes()
    got = np.frombuffer(mix(loud, loud), dtype="<i2")
    assert got.tolist() == [32767, -32768, 200]
    with pytest.raises(ValueError):
        mix(b"\x00\x00", b"\x00\x00\x00\x00")
    with pytest.raises(ValueError):
        mix(b"\x00", b"\x00")


def test_a_call_waiting_beep_mixes_over_speech() -> None:
    beep = ToneGenerator(tone_plan("us").call_waiting).frame(FRAME)
    speech = ToneGenerator(ToneSpec((200,), (Cadence(1.0),)), level_dbfs=-3.0).frame(FRAME)
    mixed = np.frombuffer(mix(speech, beep), dtype="<i2").astype(np.float64)
    x = np.frombuffer(beep, dtype="<i2").astype(np.float64)
    y = np.frombuffer(speech, dtype="<i2").astype(np.float64)
    assert np.array_equal(mixed, np.clip(x + y, -32768, 32767))
