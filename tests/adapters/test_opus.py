"""OpusEncoder/OpusDecoder (peerline.adapters.opus) against the real libopus (design brief §8).

Speech comes from alsa-utils' /usr/share/sounds/alsa/Front_Center.wav (48 kHz mono, "front
center"), resampled here to 16 kHz by linear interpolation.
"""

import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from peerline.adapters import opus
from peerline.adapters.opus import OpusDecodeError, OpusDecoder, OpusEncoder, OpusUnavailable
from peerline.errors import DecodeError, PeerlineError
from peerline.ports import AudioDecoder, AudioEncoder

SPEECH_WAV = Path("/usr/share/sounds/alsa/Front_Center.wav")

Signal = NDArray[np.float64]


def sine(freq: float, seconds: float, rate: int, amplitude: float = 8000.0) -> Signal:
    t = np.arange(int(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def speech(rate: int = 16_000) -> Signal:
    """The alsa-utils speech sample as float samples at ``rate`` (linear resampling)."""
    if not SPEECH_WAV.exists():
        pytest.skip(f"{SPEECH_WAV} missing: install alsa-utils (scripts/setup --dev)")
    with wave.open(str(SPEECH_WAV)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        src_rate = w.getframerate()
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    n = int(len(raw) * rate / src_rate)
    return np.interp(np.arange(n) * src_rate / rate, np.arange(len(raw)), raw)


def frames(signal: Signal, frame_samples: int) -> Iterator[bytes]:
    """Whole 20 ms frames of 16-bit little-endian PCM (a trailing partial frame is dropped)."""
    pcm = np.clip(np.round(signal), -32768, 32767).astype("<i2")
    for start in range(0, len(pcm) - frame_samples + 1, frame_samples):
        yield pcm[start : start + frame_samples].tobytes()


def samples(pcm: bytes) -> Signal:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def ncc(a: Signal, b: Signal) -> float:
    """Normalised cross-correlation at zero lag."""
    denominator = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b)) / denominator if denominator else 0.0


def round_trip(signal: Signal, enc: OpusEncoder, dec: OpusDecoder) -> tuple[Signal, int]:
    """Encode and decode every frame; the decoded signal and the total payload bytes."""
    out, size = [], 0
    for frame in frames(signal, enc.frame_samples):
        packet = enc.encode(frame)
        size += len(packet)
        out.append(samples(dec.decode(packet)))
    return np.concatenate(out), size


def aligned_ncc(original: Signal, decoded: Signal, delay: int) -> float:
    """Correlation once the codec delay (the encoder's lookahead) is taken out."""
    n = len(decoded) - delay
    return ncc(original[:n], decoded[delay : delay + n])


def test_opus_types_implement_the_audio_ports() -> None:
    enc: AudioEncoder = OpusEncoder()
    dec: AudioDecoder = OpusDecoder()
    assert (enc.sample_rate, enc.frame_samples) == (16_000, 320)
    assert (dec.sample_rate, dec.frame_samples) == (16_000, 320)
    assert OpusEncoder(sample_rate=48_000).frame_samples == 960


@pytest.mark.parametrize("rate", [16_000, 48_000])
def test_sine_round_trip_correlates_after_codec_delay(rate: int) -> None:
    enc, dec = OpusEncoder(sample_rate=rate, bitrate=32_000), OpusDecoder(sample_rate=rate)
    signal = sine(440.0, 1.0, rate)
    decoded, _ = round_trip(signal, enc, dec)
    assert len(decoded) == len(signal)
    assert aligned_ncc(signal, decoded, enc.lookahead) > 0.95


def test_speech_round_trip_correlates_after_codec_delay() -> None:
    enc, dec = OpusEncoder(bitrate=32_000), OpusDecoder()
    signal = speech()
    decoded, _ = round_trip(signal, enc, dec)
    assert aligned_ncc(signal, decoded, enc.lookahead) > 0.9


def test_speech_round_trip_scores_well_on_pesq() -> None:
    """Wideband PESQ (ITU-T P.862.2) of 32 kbit/s voice: a sanity check of the dev tool chain."""
    from pesq import pesq

    enc, dec = OpusEncoder(bitrate=32_000), OpusDecoder()
    signal = speech()
    decoded, _ = round_trip(signal, enc, dec)
    n = len(decoded) - enc.lookahead
    score = pesq(16_000, signal[:n], decoded[enc.lookahead :], "wb")
    assert score > 3.0


def test_higher_bitrate_gives_larger_packets() -> None:
    signal = speech()
    _, low = round_trip(signal, OpusEncoder(bitrate=8_000), OpusDecoder())
    enc = OpusEncoder(bitrate=8_000)
    enc.set_bitrate(64_000)
    _, high = round_trip(signal, enc, OpusDecoder())
    assert high > 3 * low


def test_decode_fec_recovers_lost_frame_better_than_concealment() -> None:
    """Lose voiced frames one at a time: FEC from the next packet beats PLC on average."""
    enc = OpusEncoder(bitrate=24_000)
    enc.set_fec(True)
    enc.set_packet_loss_percent(20)
    signal = speech()
    packets = [enc.encode(frame) for frame in frames(signal, enc.frame_samples)]
    n, delay = enc.frame_samples, enc.lookahead
    energy = [float(np.sum(np.square(signal[i * n : (i + 1) * n]))) for i in range(len(packets))]
    loud = max(energy)
    lost = [k for k in range(10, len(packets) - 1) if energy[k] > 0.05 * loud][::3]
    assert len(lost) >= 5
    fec_scores, plc_scores = [], []
    for k in lost:
        with_fec, with_plc = OpusDecoder(), OpusDecoder()
        for packet in packets[:k]:
            with_fec.decode(packet)
            with_plc.decode(packet)
        original = signal[k * n - delay : (k + 1) * n - delay]
        fec_scores.append(ncc(original, samples(with_fec.decode_fec(packets[k + 1]))))
        plc_scores.append(ncc(original, samples(with_plc.conceal())))
        with_fec.decode(packets[k + 1])  # the decoder goes on normally after the FEC frame
    assert np.mean(fec_scores) > 0.5
    assert np.mean(fec_scores) > np.mean(plc_scores) + 0.1


def test_conceal_returns_one_frame_without_any_packet() -> None:
    dec = OpusDecoder(sample_rate=48_000)
    assert len(dec.conceal()) == 2 * 960


def test_dtx_on_silence_gives_tiny_packets() -> None:
    silence = np.zeros(16_000)
    enc = OpusEncoder(bitrate=24_000, dtx=True)
    packets = [enc.encode(frame) for frame in frames(silence, enc.frame_samples)]
    tiny = [p for p in packets[10:] if len(p) <= 2]
    assert len(tiny) >= 0.9 * len(packets[10:])  # plus a comfort-noise update every 400 ms
    dec = OpusDecoder()
    assert all(len(dec.decode(p)) == 640 for p in packets if p)
    no_dtx = OpusEncoder(bitrate=24_000)
    assert min(len(no_dtx.encode(f)) for f in frames(silence, 320)) > 2


@pytest.mark.parametrize(
    "payload",
    [b"", b"\xff" * 10, b"\x00", b"\x18" + bytes(20)],
    ids=["empty", "corrupt", "10ms-frame", "60ms-frame"],
)
def test_decode_rejects_bad_payload_with_opus_decode_error(payload: bytes) -> None:
    dec = OpusDecoder()
    with pytest.raises(OpusDecodeError) as info:
        dec.decode(payload)
    assert isinstance(info.value, DecodeError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(OpusDecodeError):
        dec.decode_fec(payload)
    good = OpusEncoder().encode(bytes(640))
    assert len(dec.decode(good)) == 640  # still usable


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_random_bytes_gives_a_frame_or_opus_decode_error(payload: bytes) -> None:
    dec = OpusDecoder()
    try:
        pcm = dec.decode(payload)
    except OpusDecodeError:
        return
    assert len(pcm) == 640


def test_encoder_rejects_bad_arguments() -> None:
    enc = OpusEncoder()
    with pytest.raises(ValueError):
        enc.encode(bytes(639))
    with pytest.raises(ValueError):
        enc.set_bitrate(1_000)
    with pytest.raises(ValueError):
        enc.set_packet_loss_percent(101)
    with pytest.raises(ValueError):
        OpusDecoder(sample_rate=44_100)


def test_missing_libopus_raises_opus_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opuslib", None)
    opus._opuslib.cache_clear()
    try:
        with pytest.raises(OpusUnavailable) as info:
            OpusEncoder()
        assert isinstance(info.value, PeerlineError)
        assert isinstance(info.value, ImportError)
    finally:
        opus._opuslib.cache_clear()
