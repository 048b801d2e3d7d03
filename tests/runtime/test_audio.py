"""The audio thread and its backends: parsing, null, file, and ALSA through real alsa-lib.

There is no sound card here, so the ALSA tests use the ``null`` PCM and the ALSA ``file``
plugin (a PCM defined in a test-written config that ``ALSA_CONFIG_PATH`` points alsa-lib at:
capture reads ``infile``, playback writes ``file``). alsa-lib notices a changed config by
inode and mtime, so configs are replaced atomically (``os.replace``) to be re-read.
"""

import importlib.util
import logging
import os
import struct
import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from peerline.errors import ConfigError
from peerline.runtime.audio import (
    AudioDevice,
    AudioFormatError,
    AudioSpec,
    parse_audio_spec,
)

FRAME = 640  # bytes per 20 ms at 16 kHz
needs_alsa = pytest.mark.skipif(
    importlib.util.find_spec("alsaaudio") is None, reason="pyalsaaudio is not installed"
)


def wait_until(cond: Callable[[], bool], timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def ramp(frames: int, start: int = 0, samples: int = 320) -> bytes:
    n = frames * samples
    return struct.pack(f"<{n}h", *(((start + i) * 7) % 65536 - 32768 for i in range(n)))


def chunks(data: bytes, size: int = FRAME) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.fixture
def running() -> Iterator[list[AudioDevice]]:
    """Devices the test starts; every one is stopped afterwards, pass or fail."""
    devices: list[AudioDevice] = []
    try:
        yield devices
    finally:
        for dev in devices:
            dev.stop(timeout=2.0)
        for dev in devices:
            assert not dev.status().running


def start(devices: list[AudioDevice], dev: AudioDevice) -> AudioDevice:
    devices.append(dev)
    dev.start()
    return dev


# Parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("null", AudioSpec(kind="null")),
        (" NULL ", AudioSpec(kind="null")),
        ("alsa:default", AudioSpec(kind="alsa", device="default")),
        ("alsa:plughw:1,0", AudioSpec(kind="alsa", device="plughw:1,0")),
        ("alsa:hw:CARD=Headset,DEV=0", AudioSpec(kind="alsa", device="hw:CARD=Headset,DEV=0")),
        (
            "file:in.wav,/tmp/out.wav",
            AudioSpec(kind="file", infile=Path("in.wav"), outfile=Path("/tmp/out.wav")),
        ),
    ],
)
def test_parse_valid(text: str, expected: AudioSpec) -> None:
    assert parse_audio_spec(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("pulse:default", "unknown backend 'pulse'"),
        ("alsa", "alsa needs a device"),
        ("alsa:", "alsa needs a device"),
        ("alsa:hw 0", "whitespace"),
        ("null:x", "null takes no argument"),
        ("file:in.wav", "two WAV files"),
        ("file:a.wav,b.wav,c.wav", "two WAV files"),
        ("file:,out.wav", "two WAV files"),
        ("file:x.wav,x.wav", "same file"),
    ],
)
def test_parse_invalid(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_audio_spec(text)
    assert isinstance(info.value, ConfigError)
    assert "--audio" in str(info.value)


def test_sample_rates() -> None:
    spec = parse_audio_spec("null", sample_rate=48000)
    assert (spec.frame_samples, spec.frame_bytes) == (960, 1920)
    assert parse_audio_spec("alsa:default").frame_samples == 320
    with pytest.raises(ConfigError, match="44100 Hz is not supported"):
        parse_audio_spec("null", sample_rate=44100)


# null


def test_null_cadence_silence_and_counters(running: list[AudioDevice]) -> None:
    dev = AudioDevice(parse_audio_spec("null"), capture_queue=100)
    t0 = time.monotonic()
    start(running, dev)
    dev.play(ramp(1))
    time.sleep(0.5)
    status = dev.status()
    elapsed = time.monotonic() - t0
    frames = dev.read_frames()
    assert status.running and status.device_open
    # Drift-free clock pacing: one frame per 20 ms since start (+1 for the frame at t=0).
    assert abs(status.frames_captured - elapsed / 0.02) <= 3
    assert status.frames_played == status.frames_captured
    assert status.underruns == status.frames_played - 1  # only one frame was queued
    assert all(f == bytes(FRAME) for f in frames)
    assert (status.errors, status.reopen_attempts, status.xruns) == (0, 0, 0)


def test_null_48k_and_bad_frame_size(running: list[AudioDevice]) -> None:
    dev = start(running, AudioDevice(parse_audio_spec("null", sample_rate=48000)))
    assert wait_until(lambda: dev.status().frames_captured >= 3)
    frame = dev.read_frame()
    assert frame is not None and len(frame) == 1920
    with pytest.raises(ValueError, match="1920 bytes"):
        dev.play(bytes(640))


def test_queues_drop_oldest_and_count(running: list[AudioDevice]) -> None:
    dev = AudioDevice(parse_audio_spec("null"), capture_queue=3, playback_queue=2)
    for i in range(5):
        dev.play(bytes([i]) * FRAME)
    assert dev.status().playback_dropped == 3
    start(running, dev)
    assert wait_until(lambda: dev.status().frames_captured >= 8)
    status = dev.status()
    assert status.overruns >= 5
    assert len(dev.read_frames()) == 3


def test_on_capture_callback_errors_are_counted(running: list[AudioDevice]) -> None:
    seen: list[bytes] = []

    def on_capture(frame: bytes) -> None:
        seen.append(frame)
        if len(seen) == 2:
            raise RuntimeError("boom")

    dev = start(running, AudioDevice(parse_audio_spec("null"), on_capture=on_capture))
    assert wait_until(lambda: len(seen) >= 5)
    assert dev.read_frame() is None  # frames went to the callback, not the queue
    status = dev.status()
    assert status.errors == 1 and "boom" in status.last_error and status.running


def test_stop_is_bounded_and_idempotent() -> None:
    dev = AudioDevice(parse_audio_spec("null"))
    dev.stop()  # before start: harmless
    dev.start()
    t0 = time.monotonic()
    dev.stop()
    dev.stop()
    assert time.monotonic() - t0 < 0.5
    assert not dev.status().running


# file:IN.wav,OUT.wav


def write_wav(
    path: Path, pcm: bytes, *, rate: int = 16000, channels: int = 1, width: int = 2
) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm)


def test_file_round_trip_paced_in_real_time(tmp_path: Path, running: list[AudioDevice]) -> None:
    infile, outfile = tmp_path / "in.wav", tmp_path / "out.wav"
    pcm_in = ramp(50)  # 1 s
    write_wav(infile, pcm_in)
    played = ramp(50, start=12345)
    dev = AudioDevice(parse_audio_spec(f"file:{infile},{outfile}"), playback_queue=60)
    for frame in chunks(played):
        dev.play(frame)
    t0 = time.monotonic()
    start(running, dev)
    captured: list[bytes] = []
    while len(captured) < 50 and time.monotonic() - t0 < 3:
        captured += dev.read_frames()
        time.sleep(0.002)
    elapsed = time.monotonic() - t0
    assert b"".join(captured[:50]) == pcm_in
    assert 0.9 <= elapsed <= 1.5, elapsed
    # Past the end of IN: silence, not a loop.
    assert wait_until(lambda: dev.status().frames_captured >= 53)
    assert all(f == bytes(FRAME) for f in dev.read_frames()[-2:])
    dev.stop()
    with wave.open(str(outfile), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        out = w.readframes(w.getnframes())
    assert out[: len(played)] == played
    assert out[len(played) :] == bytes(len(out) - len(played))  # underruns played silence


def read_wav(path: Path) -> tuple[int, bytes]:
    """(frames the header counts, those frames' bytes), checking the format."""
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        return w.getnframes(), w.readframes(w.getnframes())


def test_file_each_take_plays_in_from_its_start_and_starts_out_again(
    tmp_path: Path, running: list[AudioDevice]
) -> None:
    """Idle (no call, no tone), the thread neither reads IN nor writes OUT, and OUT is an empty
    WAV from ``start`` on. Each time the device becomes active (a take: a call, a tone) IN plays
    from its start and OUT starts again, so between calls OUT holds the last call."""
    infile, outfile = tmp_path / "in.wav", tmp_path / "out.wav"
    pcm_in = ramp(30)
    write_wav(infile, pcm_in)
    dev = AudioDevice(
        parse_audio_spec(f"file:{infile},{outfile}"), capture_queue=200, playback_queue=60
    )
    dev.set_active(False)
    start(running, dev)
    assert read_wav(outfile) == (0, b"")  # a valid, empty WAV before the first call
    time.sleep(0.2)
    idle = dev.status()
    assert not idle.active and idle.frames_captured == 0 and idle.frames_played == 0
    assert not idle.device_open and idle.problem == ""
    assert dev.read_frames() == []

    first = ramp(40, start=777)
    for frame in chunks(first):
        dev.play(frame)
    dev.set_active(True)  # take 1
    assert wait_until(lambda: dev.status().frames_captured >= 35)
    dev.set_active(False)
    assert dev.playback_queued == 0  # cleared: a stale frame must not play at the next call
    assert wait_until(lambda: not dev.status().device_open)
    paused = dev.status().frames_captured
    time.sleep(0.15)
    assert dev.status().frames_captured == paused
    captured = b"".join(dev.read_frames())
    assert captured[: len(pcm_in)] == pcm_in
    frames, out = read_wav(outfile)  # complete while the device is still running
    assert frames == paused * 320
    assert out[: len(first) // 2] == first[: len(first) // 2]

    second = ramp(10, start=31337)
    for frame in chunks(second):
        dev.play(frame)
    dev.set_active(True)  # take 2: IN again from its start, OUT again from empty
    assert wait_until(lambda: dev.status().frames_captured >= paused + 35)
    captured = b"".join(dev.read_frames())
    assert captured[: len(pcm_in)] == pcm_in
    dev.set_active(False)
    assert wait_until(lambda: not dev.status().device_open)
    frames, out = read_wav(outfile)
    assert frames == (dev.status().frames_captured - paused) * 320  # take 2 only
    assert out.startswith(second)
    assert outfile.stat().st_size == 44 + 2 * frames


def test_file_out_is_a_valid_wav_while_it_is_written(
    tmp_path: Path, running: list[AudioDevice]
) -> None:
    """A reader that opens OUT at any moment of a call finds a WAV whose header counts the
    frames written so far (at most one period behind the bytes on disk)."""
    infile, outfile = tmp_path / "in.wav", tmp_path / "out.wav"
    write_wav(infile, ramp(10))
    played = ramp(50, start=5)
    dev = AudioDevice(parse_audio_spec(f"file:{infile},{outfile}"), playback_queue=60)
    for frame in chunks(played):
        dev.play(frame)
    start(running, dev)
    seen = set()
    end = time.monotonic() + 1.2
    while time.monotonic() < end:
        frames, out = read_wav(outfile)
        ahead = outfile.stat().st_size - (44 + 2 * frames)
        assert len(out) == 2 * frames
        assert 0 <= ahead <= 2 * FRAME  # a write that had not reached the header, and one more
        assert out == (played + bytes(len(out)))[: len(out)]  # what was played, then silence
        seen.add(frames)
        time.sleep(0.013)
    assert len(seen) >= 10 and max(seen) >= 50 * 320  # it grew while we looked


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": 2}, "2 channels"),
        ({"rate": 8000}, "8000 Hz"),
        ({"width": 1}, "8-bit"),
    ],
)
def test_file_wrong_format_refused_at_start(tmp_path: Path, kwargs: Any, message: str) -> None:
    infile = tmp_path / "in.wav"
    write_wav(infile, bytes(640), **kwargs)
    dev = AudioDevice(parse_audio_spec(f"file:{infile},{tmp_path / 'out.wav'}"))
    with pytest.raises(AudioFormatError, match=message):
        dev.start()
    assert not dev.status().running


def test_file_missing_or_not_wav(tmp_path: Path) -> None:
    dev = AudioDevice(parse_audio_spec(f"file:{tmp_path / 'no.wav'},{tmp_path / 'o.wav'}"))
    with pytest.raises(AudioFormatError, match="does not exist"):
        dev.start()
    (tmp_path / "junk.wav").write_bytes(b"not a wav file at all")
    dev = AudioDevice(parse_audio_spec(f"file:{tmp_path / 'junk.wav'},{tmp_path / 'o.wav'}"))
    with pytest.raises(AudioFormatError, match="not a WAV"):
        dev.start()


# ALSA, through real alsa-lib


SYSTEM_CONF = Path("/usr/share/alsa/alsa.conf")


def write_alsa_conf(path: Path, pcms: dict[str, tuple[Path, Path]]) -> None:
    """An asoundrc: the system config plus one file-plugin PCM per name: capture reads the raw
    ``infile``, playback writes the raw ``outfile``."""
    text = f"<{SYSTEM_CONF}>\n"
    for name, (infile, outfile) in pcms.items():
        # asym: a capture file PCM also copies what it reads to its "file", so capture and
        # playback get separate file PCMs and only playback writes OUT.
        text += (
            f"pcm.{name} {{\n  type asym\n"
            f'  playback.pcm {{ type file; slave.pcm null; file "{outfile}"; format raw }}\n'
            f'  capture.pcm {{ type file; slave.pcm null; file "/dev/null"; infile "{infile}";'
            " format raw }\n}\n"
        )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # a new inode: alsa-lib re-reads its config on the next open


@pytest.fixture
def alsa_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not SYSTEM_CONF.exists():
        pytest.skip("no system alsa.conf")
    conf = tmp_path / "asoundrc"
    write_alsa_conf(conf, {})
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))
    return conf


@needs_alsa
def test_alsa_null_pcm(running: list[AudioDevice]) -> None:
    dev = start(running, AudioDevice(parse_audio_spec("alsa:null"), capture_queue=100))
    t0 = time.monotonic()
    assert wait_until(lambda: dev.status().frames_captured >= 25)
    elapsed = time.monotonic() - t0
    status = dev.status()
    assert status.device_open and status.reopen_attempts == 1 and status.errors == 0
    # The null PCM does not block, so the clock paces the thread: 25 frames take ~0.5 s.
    assert 0.4 <= elapsed <= 1.0, elapsed
    # Whole frames. Not silence: the null PCM is not documented to fill what it captures, and
    # one clean-clone CI run saw bytes other than zero (zeros in every other run).
    assert all(len(f) == FRAME for f in dev.read_frames())


@needs_alsa
def test_alsa_file_plugin_capture_and_playback(
    alsa_conf: Path, tmp_path: Path, running: list[AudioDevice]
) -> None:
    infile, outfile = tmp_path / "in.raw", tmp_path / "out.raw"
    pcm_in = ramp(20)
    infile.write_bytes(pcm_in)
    write_alsa_conf(alsa_conf, {"testfile": (infile, outfile)})
    played = ramp(20, start=999)
    dev = AudioDevice(parse_audio_spec("alsa:testfile"), playback_queue=30, capture_queue=100)
    for frame in chunks(played):
        dev.play(frame)
    start(running, dev)
    assert wait_until(lambda: dev.status().frames_captured >= 25)
    status = dev.status()
    assert status.device_open and status.errors == 0 and status.reopen_attempts == 1
    captured = b"".join(dev.read_frames())
    assert captured[: len(pcm_in)] == pcm_in
    dev.stop()
    out = outfile.read_bytes()
    # The device writes one period of silence ahead of the first frame (underrun guard).
    assert out[:FRAME] == bytes(FRAME)
    assert out[FRAME : FRAME + len(played)] == played


@needs_alsa
def test_alsa_unplug_replug_keeps_cadence(
    alsa_conf: Path, tmp_path: Path, running: list[AudioDevice]
) -> None:
    """The device is missing at start (an unknown PCM), then appears: the thread keeps its
    20 ms cadence on silence, retries the open, and then carries the device's real frames."""
    infile, outfile = tmp_path / "in.raw", tmp_path / "out.raw"
    pcm_in = ramp(10, start=4242)
    infile.write_bytes(pcm_in)
    dev = AudioDevice(parse_audio_spec("alsa:headset"), reopen_interval=0.1, capture_queue=200)
    t0 = time.monotonic()
    start(running, dev)
    time.sleep(0.35)
    status = dev.status()
    elapsed = time.monotonic() - t0
    assert status.running and not status.device_open
    assert 3 <= status.reopen_attempts <= 5
    assert abs(status.frames_played - elapsed / 0.02) <= 4  # still on the clock
    assert status.frames_captured == 0
    assert "headset" in status.last_error
    silence = dev.read_frames()
    assert silence and all(f == bytes(FRAME) for f in silence)

    write_alsa_conf(alsa_conf, {"headset": (infile, outfile)})  # plugged in
    assert wait_until(lambda: dev.status().frames_captured >= 15, timeout=3)
    assert dev.status().device_open
    captured = b"".join(dev.read_frames())
    assert pcm_in in captured


# ALSA recovery paths, with a scripted stand-in for pyalsaaudio's PCM


class FakePcm:
    def __init__(self, world: "FakeAlsa", capture: bool) -> None:
        self.world, self.capture = world, capture

    def read(self) -> tuple[int, bytes]:
        w = self.world
        with w.lock:
            if not w.present:
                raise OSError("No such device")
            if w.reads:
                return w.reads.pop(0)
            w.serial += 1
            return 320, bytes([w.serial % 256]) * FRAME

    def write(self, data: bytes) -> int:
        if not self.world.present:
            raise OSError("No such device")
        self.world.written.append(data)
        return 320

    def close(self) -> None:
        self.world.closed += 1


class FakeAlsa:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.present = True
        self.reads: list[tuple[int, bytes]] = []
        self.written: list[bytes] = []
        self.serial = 0
        self.opens = 0
        self.closed = 0

    def open(self, capture: bool) -> FakePcm:
        self.opens += 1
        if not self.present:
            raise OSError("No such file or directory [headset]")
        return FakePcm(self, capture)


def test_alsa_xruns_short_reads_and_mid_stream_unplug(running: list[AudioDevice]) -> None:
    world = FakeAlsa()
    world.reads = [(-32, b""), (100, b"\x01" * 200)]  # -EPIPE overrun, then a short read
    dev = AudioDevice(
        parse_audio_spec("alsa:headset"),
        pcm_opener=world.open,
        reopen_interval=0.1,
        capture_queue=500,
    )
    start(running, dev)
    assert wait_until(lambda: dev.status().frames_captured >= 5)
    frames = dev.read_frames()
    assert frames[0] == bytes(FRAME)  # the overrun became silence
    assert frames[1] == b"\x01" * 200 + bytes(FRAME - 200)  # the short read was padded
    assert dev.status().xruns == 2

    world.present = False  # unplugged mid-stream
    assert wait_until(lambda: dev.status().reopen_attempts >= 4)
    status = dev.status()
    assert status.running and not status.device_open and status.errors >= 2
    assert world.closed >= 2  # both PCMs were closed
    played_before = status.frames_played
    time.sleep(0.2)
    assert dev.status().frames_played >= played_before + 7  # silence, on the clock
    dev.read_frames()

    world.present = True  # plugged back in
    assert wait_until(lambda: dev.status().device_open)
    serial = world.serial
    assert wait_until(lambda: world.serial >= serial + 3)
    assert any(f != bytes(FRAME) for f in dev.read_frames())
    assert dev.status().running


def test_alsa_device_closed_while_inactive_and_reopened_when_wanted(
    running: list[AudioDevice],
) -> None:
    """Between calls the sound card is closed (free for others; an unplugged headset is no
    error); the next call opens it again at once."""
    world = FakeAlsa()
    dev = AudioDevice(parse_audio_spec("alsa:headset"), pcm_opener=world.open, capture_queue=500)
    start(running, dev)
    assert wait_until(lambda: dev.status().frames_captured >= 3)
    dev.set_active(False)
    assert wait_until(lambda: not dev.status().device_open)
    assert world.closed == 2  # capture and playback
    world.present = False  # unplugged while idle: nothing tries to open it
    opens = world.opens
    time.sleep(0.2)
    assert world.opens == opens and dev.status().errors == 0
    world.present = True
    dev.set_active(True)
    assert wait_until(lambda: dev.status().device_open)
    captured = dev.status().frames_captured
    assert wait_until(lambda: dev.status().frames_captured >= captured + 3)


def audio_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "peerline.runtime.audio" and r.levelno >= logging.WARNING
    ]


def test_alsa_missing_device_is_reported_at_start_retried_quietly_and_cleared_when_back(
    running: list[AudioDevice], caplog: pytest.LogCaptureFixture
) -> None:
    """A phone starts idle, so the thread probes its device at once (open, close): a missing
    one is one WARNING naming it and ALSA's reason, and ``status().problem``. During a call the
    retries (every ``reopen_interval``) log nothing more. Idle again, a probe finds the device
    back, clears the problem and says so, and leaves the device closed."""
    caplog.set_level(logging.DEBUG, logger="peerline.runtime.audio")
    world = FakeAlsa()
    world.present = False
    dev = AudioDevice(
        parse_audio_spec("alsa:headset"),
        pcm_opener=world.open,
        reopen_interval=0.05,
        probe_interval=0.1,
        capture_queue=500,
    )
    dev.set_active(False)
    start(running, dev)
    assert wait_until(lambda: dev.status().problem != "")
    status = dev.status()
    assert status.problem.startswith("alsa:headset cannot be opened: No such file or directory")
    assert "aplay -L" in status.problem
    assert status.last_error == status.problem and not status.device_open
    assert audio_warnings(caplog) == [f"audio: {status.problem}"]

    dev.set_active(True)  # a call: silence on the clock, the device retried every 50 ms
    assert wait_until(lambda: dev.status().reopen_attempts >= 6)
    status = dev.status()
    assert status.running and not status.device_open and status.frames_played > 0
    assert len(audio_warnings(caplog)) == 1  # the same reason is not logged again

    dev.set_active(False)
    world.present = True  # plugged in between calls
    assert wait_until(lambda: dev.status().problem == "")
    assert any("alsa:headset works again" in r.getMessage() for r in caplog.records)
    assert not dev.status().device_open  # probed, not held: the card stays free while idle
    assert dev.status().last_error  # the history stays


@needs_alsa
def test_alsa_unknown_pcm_reported_at_start_and_alsa_lib_silent_on_stderr(
    running: list[AudioDevice],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Through real alsa-lib: an unknown PCM name is reported at start (probe) with ALSA's
    reason; retries during a call print no ``ALSA lib ...`` line to stderr."""
    caplog.set_level(logging.INFO, logger="peerline.runtime.audio")
    capfd.readouterr()
    dev = AudioDevice(parse_audio_spec("alsa:peerline-no-such-pcm"), reopen_interval=0.05)
    dev.set_active(False)
    start(running, dev)
    assert wait_until(lambda: dev.status().problem != "")
    problem = dev.status().problem
    assert problem.startswith("alsa:peerline-no-such-pcm cannot be opened: "), problem
    assert "[peerline-no-such-pcm]" in problem  # pyalsaaudio's reason names the PCM
    dev.set_active(True)
    assert wait_until(lambda: dev.status().reopen_attempts >= 5)
    assert dev.status().running
    assert audio_warnings(caplog) == [f"audio: {problem}"]
    assert "ALSA lib" not in capfd.readouterr().err
