"""Audio I/O in its own thread at a 20 ms cadence, with three backends chosen by a spec string.

``peerline run --audio SPEC`` takes one of (``parse_audio_spec``):

- ``alsa:DEVICE`` -- pyalsaaudio capture and playback on an ALSA PCM (``default``,
  ``plughw:1,0``, ``null``, a PCM defined in an asoundrc). Blocking reads of one period pace the
  thread; a device that does not block (the ``null`` PCM) is paced by the clock instead. An
  idle phone starts by *probing* the device (opened without waiting, closed at once), so a
  device that cannot work is reported at start, not at the first call. alsa-lib's own messages
  go to the log at DEBUG, not to stderr (``runtime.alsalog``).
- ``file:IN.wav,OUT.wav`` -- capture comes from IN (mono, 16-bit, at the sample rate; anything
  else is refused by ``AudioDevice.start``), playback goes to OUT, paced in real time. Each time
  the device becomes active (a call starts ringing, or a tone plays) IN plays from its start and
  OUT starts again, empty: between calls OUT holds the last call's audio, from its ring to its
  end. When IN runs out, capture continues with silence (it does not loop). OUT is a complete
  WAV at every moment: its header's sizes are rewritten after each 20 ms (``runtime.livewav``).
  ``start`` makes OUT an empty WAV.
- ``null`` -- captures silence and discards playback, paced by the clock.

Every frame is 16-bit little-endian mono PCM, 20 ms long: 320 samples (640 bytes) at 16 kHz,
960 at 48 kHz.

The thread is the thin adapter at the edge (as gpiozero's pin factories are). Towards the event
loop it never blocks and never raises: each period it takes one frame from a bounded playback
queue (``play``), or silence when that is empty (an *underrun*), hands it to the device, and
puts the captured frame on a bounded capture queue (``read_frame``) or gives it to
``on_capture``. Full queues drop their oldest frame and count it. An ALSA device that fails to
open, errors mid-stream or disappears (an unplugged USB headset) is closed; the thread goes on
with silence on the clock and tries to open it again every ``reopen_interval`` seconds, resuming
real audio when it is back. What keeps the device from working is logged once as a WARNING
(the same message again at most every ``REPORT_REPEAT_S``) and shown by ``status()`` as
``problem`` until the device opens. ``status()`` reports the counters.

Example (no hardware needed)::

    dev = AudioDevice(parse_audio_spec("null"))
    dev.start()
    try:
        dev.play(bytes(dev.frame_bytes))
        frame = dev.read_frame()  # None until the first period has run
    finally:
        dev.stop()
"""

from __future__ import annotations

import collections
import contextlib
import functools
import importlib
import logging
import math
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from peerline.errors import ConfigError, PeerlineError

from . import alsalog
from .livewav import LiveWav

log = logging.getLogger(__name__)

SAMPLE_RATES = (16000, 48000)
"Supported sample rates in Hz."
DEFAULT_SAMPLE_RATE = 16000
FRAME_MS = 20
"Period length in milliseconds (one Opus frame)."
SAMPLE_BYTES = 2
"16-bit mono: bytes per sample."
DEFAULT_REOPEN_INTERVAL = 1.0
"Seconds between attempts to open an ALSA device that is missing or failed."
DEFAULT_PROBE_INTERVAL = 10.0
"""Seconds between probes of an ALSA device that failed, while the phone is idle (so that
``status`` stops showing the problem once the device is there)."""
MAX_LATE_PERIODS = 5
"When the thread falls this many periods behind the clock it re-anchors instead of bursting."
REPORT_REPEAT_S = 60.0
"""The audio thread logs one message (a device that cannot be opened) at most once in this
many seconds; the repeats are counted in ``errors`` and said with the next report."""
MAX_REPORTS = 32
"Messages remembered for ``REPORT_REPEAT_S`` (forgotten all at once beyond this)."

Kind = Literal["alsa", "file", "null"]
OnCapture = Callable[[bytes], None]


IDLE_POLL_S = 0.05
"""How often an inactive audio thread looks whether it is wanted again."""


class AudioFormatError(ConfigError):
    """An input WAV file is not mono 16-bit PCM at the configured sample rate."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioSpec:
    """A parsed ``--audio`` option. Build it with ``parse_audio_spec``."""

    kind: Kind
    "'alsa', 'file' or 'null'."
    device: str = ""
    "The ALSA PCM name (``alsa`` only)."
    infile: Path | None = None
    "The WAV file capture reads (``file`` only)."
    outfile: Path | None = None
    "The WAV file playback writes (``file`` only)."
    sample_rate: int = DEFAULT_SAMPLE_RATE
    "Hz: 16000 or 48000."

    def __post_init__(self) -> None:
        if self.sample_rate not in SAMPLE_RATES:
            raise ConfigError(
                f"--audio: sample rate {self.sample_rate} Hz is not supported "
                f"(use {' or '.join(str(r) for r in SAMPLE_RATES)})"
            )
        if self.kind == "alsa" and not self.device:
            raise ConfigError("--audio: alsa needs a device name")
        if self.kind == "file" and (self.infile is None or self.outfile is None):
            raise ConfigError("--audio: file needs an input and an output WAV file")

    @property
    def frame_samples(self) -> int:
        """Samples in one 20 ms period (320 at 16 kHz)."""
        return self.sample_rate * FRAME_MS // 1000

    @property
    def frame_bytes(self) -> int:
        """Bytes in one period of 16-bit mono PCM (640 at 16 kHz)."""
        return self.frame_samples * SAMPLE_BYTES

    def __str__(self) -> str:
        if self.kind == "alsa":
            return f"alsa:{self.device}"
        if self.kind == "file":
            return f"file:{self.infile},{self.outfile}"
        return "null"


_USAGE = "expected alsa:DEVICE, file:IN.wav,OUT.wav or null"


def parse_audio_spec(text: str, *, sample_rate: int = DEFAULT_SAMPLE_RATE) -> AudioSpec:
    """Parse ``alsa:DEVICE``, ``file:IN.wav,OUT.wav`` or ``null``.

    Raises ``ConfigError`` (a ``ValueError``) naming the problem. The ALSA device name is kept
    as written, commas and colons included (``alsa:plughw:1,0``). Then: ``AudioDevice(spec)``.
    """
    if not isinstance(text, str):
        raise ConfigError(f"--audio: expected a string, got {type(text).__name__}")
    spec = text.strip()
    if not spec:
        raise ConfigError(f"--audio: empty spec; {_USAGE}")
    kind, sep, rest = spec.partition(":")
    kind = kind.lower()
    if kind == "null":
        if sep:
            raise ConfigError(f"--audio: null takes no argument (got {text!r})")
        return AudioSpec(kind="null", sample_rate=sample_rate)
    if kind == "alsa":
        device = rest.strip()
        if not sep or not device:
            raise ConfigError(f"--audio: alsa needs a device, e.g. alsa:default (got {text!r})")
        if any(c.isspace() or not c.isprintable() for c in device):
            raise ConfigError(f"--audio: ALSA device name {device!r} contains whitespace")
        return AudioSpec(kind="alsa", device=device, sample_rate=sample_rate)
    if kind == "file":
        parts = rest.split(",")
        if not sep or len(parts) != 2 or not all(p.strip() for p in parts):
            raise ConfigError(
                f"--audio: file needs two WAV files separated by one comma, "
                f"e.g. file:in.wav,out.wav (got {text!r})"
            )
        infile, outfile = (Path(p.strip()) for p in parts)
        if infile == outfile:
            raise ConfigError(f"--audio: input and output are the same file ({infile})")
        return AudioSpec(kind="file", infile=infile, outfile=outfile, sample_rate=sample_rate)
    raise ConfigError(f"--audio: unknown backend {kind!r} in {text!r}; {_USAGE}")


def check_audio(text: str) -> None:
    """Refuse now, before a phone starts, an audio spec that cannot work: malformed, or
    ``file:`` with an IN that is missing or not 16 kHz mono PCM, or an OUT that cannot be
    written (it is left an empty WAV). ALSA devices are checked when the phone starts (a
    missing one is a warning, not an error: it may be plugged in later).

    :raises ConfigError: naming the problem.
    """
    spec = parse_audio_spec(text)
    if spec.kind == "file":
        _FileBackend(spec).check()


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioStatus:
    """A snapshot of an ``AudioDevice``'s counters (``dataclasses.asdict`` for JSON)."""

    spec: str
    "The spec as given to ``parse_audio_spec``."
    running: bool
    "The thread is alive."
    active: bool
    "Wanted now (a call or a tone); idle, the device is left alone."
    device_open: bool
    "The backend is open (False while an ALSA device is missing and being retried)."
    frames_captured: int
    "Periods captured from the device (silence while it is missing is not counted)."
    frames_played: int
    "Periods handed to the device, silence for underruns included."
    underruns: int
    "Periods at which the playback queue was empty, so silence was played."
    overruns: int
    "Captured frames dropped because the capture queue was full (oldest first)."
    playback_dropped: int
    "Frames dropped by ``play`` because the playback queue was full (oldest first)."
    xruns: int
    "ALSA over/underruns and short reads reported by the device."
    late: int
    "Times the thread fell behind the clock by several periods and re-anchored its schedule."
    reopen_attempts: int
    "Attempts to (re)open the ALSA device after a failure."
    errors: int
    "Device errors (open, read, write) and exceptions raised by ``on_capture``."
    last_error: str
    "The most recent error, '' if none (kept after the device works again)."
    problem: str
    """What keeps the device from working now, '' if nothing: an ALSA device that cannot be
    opened (found by the probe at start, or at the last attempt) or that failed mid-call, a
    file that cannot be read or written. Cleared when the device opens (or an idle probe
    succeeds)."""


class _Backend(Protocol):
    paced_by_device: bool

    def check(self) -> None:
        """At ``AudioDevice.start``: refuse a configuration that cannot work (``ConfigError``).
        Quick, and never waits for hardware."""
        ...

    def open(self) -> None:
        """The device becomes active (a call, a tone): start using it."""
        ...

    def transfer(self, playback: bytes) -> bytes:
        """Play one frame and capture one; may block for up to one period."""
        ...

    def close(self) -> None: ...


class _DeviceError(PeerlineError, OSError):
    """The backend failed; the thread closes it and retries (ALSA) or stops using it."""


class _NullBackend:
    paced_by_device = False

    def __init__(self, frame_bytes: int) -> None:
        self._silence = bytes(frame_bytes)

    def check(self) -> None:
        pass

    def open(self) -> None:
        pass

    def transfer(self, playback: bytes) -> bytes:
        return self._silence

    def close(self) -> None:
        pass


class _FileBackend:
    """WAV in, WAV out, one *take* at a time: ``open`` (the device becomes active) plays IN from
    its start and makes OUT an empty WAV; ``transfer`` appends to OUT, whose header is right
    after every frame; ``close`` (idle again) leaves OUT holding that take. IN ends in silence
    (no looping)."""

    paced_by_device = False

    def __init__(self, spec: AudioSpec) -> None:
        assert spec.infile is not None and spec.outfile is not None
        self._spec = spec
        self._infile: Path = spec.infile
        self._outfile: Path = spec.outfile
        self._in: wave.Wave_read | None = None
        self._out: LiveWav | None = None
        self._silence = bytes(spec.frame_bytes)

    def _open_input(self) -> wave.Wave_read:
        """IN, at its start; ``AudioFormatError`` if it is missing or not the right format."""
        spec, infile = self._spec, self._infile
        try:
            reader = wave.open(str(infile), "rb")  # noqa: SIM115 (closed by close())
        except FileNotFoundError:
            raise AudioFormatError(f"--audio: input file {infile} does not exist") from None
        except (wave.Error, EOFError) as exc:
            raise AudioFormatError(f"--audio: {infile} is not a WAV file: {exc}") from None
        except OSError as exc:
            raise AudioFormatError(f"--audio: cannot read {infile}: {exc}") from None
        problems = []
        if reader.getnchannels() != 1:
            problems.append(f"{reader.getnchannels()} channels (need mono)")
        if reader.getsampwidth() != SAMPLE_BYTES:
            problems.append(f"{8 * reader.getsampwidth()}-bit samples (need 16-bit)")
        if reader.getframerate() != spec.sample_rate:
            problems.append(f"{reader.getframerate()} Hz (need {spec.sample_rate} Hz)")
        if reader.getcomptype() != "NONE":
            problems.append(f"compression {reader.getcomptype()!r} (need PCM)")
        if problems:
            reader.close()
            raise AudioFormatError(f"--audio: {infile}: " + ", ".join(problems))
        return reader

    def _create_output(self) -> LiveWav:
        try:
            return LiveWav.create(self._outfile, sample_rate=self._spec.sample_rate)
        except OSError as exc:
            raise ConfigError(f"--audio: cannot write {self._outfile}: {exc}") from None

    def check(self) -> None:
        self._open_input().close()
        self._create_output().close()  # OUT is an empty WAV until the first call

    def open(self) -> None:
        self.close()
        reader = self._open_input()
        try:
            writer = self._create_output()
        except ConfigError:
            reader.close()
            raise
        self._in, self._out = reader, writer

    def transfer(self, playback: bytes) -> bytes:
        captured = self._silence
        try:
            if self._in is not None:
                data = self._in.readframes(self._spec.frame_samples)
                if len(data) < len(self._silence):
                    data += bytes(len(self._silence) - len(data))
                    self._in.close()
                    self._in = None
                captured = data
            if self._out is not None:
                self._out.write(playback)
        except (OSError, wave.Error, EOFError) as exc:
            raise _DeviceError(f"file audio: {exc}") from exc
        return captured

    def close(self) -> None:
        reader, writer, self._in, self._out = self._in, self._out, None, None
        if reader is not None:
            reader.close()
        if writer is not None:
            writer.close()  # complete already: the header is rewritten at every write


PcmOpener = Callable[[bool], Any]
"""``opener(capture)`` returns an object with pyalsaaudio's ``read()`` (capture) or
``write(data)`` (playback) and ``close()``; tests inject fakes here."""


class _AlsaBackend:
    """Two pyalsaaudio PCMs in PCM_NORMAL (blocking) mode, S16_LE mono, one-period transfers."""

    paced_by_device = True

    def __init__(self, spec: AudioSpec, opener: PcmOpener | None) -> None:
        self._spec = spec
        self._opener = opener or self._open_pcm
        self._prober = opener or functools.partial(self._open_pcm, nonblock=True)
        self._capture: Any = None
        self._playback: Any = None
        self.xruns = 0
        self._silence = bytes(spec.frame_bytes)

    def _open_pcm(self, capture: bool, *, nonblock: bool = False) -> Any:
        try:
            alsaaudio: Any = importlib.import_module("alsaaudio")
        except ImportError as exc:
            raise _DeviceError(f"pyalsaaudio is not available: {exc}") from exc
        alsalog.install()  # before alsa-lib's first message: none reaches stderr
        return alsaaudio.PCM(
            alsaaudio.PCM_CAPTURE if capture else alsaaudio.PCM_PLAYBACK,
            alsaaudio.PCM_NONBLOCK if nonblock else alsaaudio.PCM_NORMAL,
            device=self._spec.device,
            rate=self._spec.sample_rate,
            channels=1,
            format=alsaaudio.PCM_FORMAT_S16_LE,
            periodsize=self._spec.frame_samples,
            periods=4,
        )

    def _cannot_open(self, exc: Exception) -> str:
        """One line naming the device and ALSA's reason."""
        if isinstance(exc, _DeviceError):
            return str(exc)
        hint = " (aplay -L lists the devices)" if "No such file or directory" in str(exc) else ""
        return f"alsa:{self._spec.device} cannot be opened: {exc}{hint}"

    def check(self) -> None:
        pass  # the audio thread probes the device: an open may take time

    def probe(self) -> None:
        """Open both directions and close them again at once, without waiting for a card
        another program holds (a non-blocking open): can ``open`` work? Raises ``_DeviceError``
        naming the device and ALSA's reason."""
        for capture in (True, False):
            try:
                pcm = self._prober(capture)
            except Exception as exc:
                raise _DeviceError(self._cannot_open(exc)) from exc
            with contextlib.suppress(Exception):
                pcm.close()

    def open(self) -> None:
        self.close()
        try:
            self._capture = self._opener(True)
            self._playback = self._opener(False)
            # One period of silence ahead so the first period does not underrun.
            self._playback.write(self._silence)
        except Exception as exc:
            self.close()
            raise _DeviceError(self._cannot_open(exc)) from exc

    def transfer(self, playback: bytes) -> bytes:
        if self._capture is None or self._playback is None:
            raise _DeviceError(f"alsa:{self._spec.device}: not open")
        try:
            length, data = self._capture.read()
            if length < 0:  # -EPIPE: overrun; pyalsaaudio has re-prepared the PCM
                self.xruns += 1
                data = self._silence
            elif len(data) != len(self._silence):
                self.xruns += 1
                data = (bytes(data) + self._silence)[: len(self._silence)]
            written = self._playback.write(playback)
            if written is not None and written < self._spec.frame_samples:
                self.xruns += 1  # an underrun the library recovered from, or a short write
        except Exception as exc:
            raise _DeviceError(f"alsa:{self._spec.device}: {exc}") from exc
        return bytes(data)

    def close(self) -> None:
        for pcm in (self._capture, self._playback):
            if pcm is not None:
                with contextlib.suppress(Exception):
                    pcm.close()
        self._capture = self._playback = None


class AudioDevice:
    """Runs one audio backend in a daemon thread, one period (20 ms) at a time.

    ``spec``: from ``parse_audio_spec``. ``on_capture(frame)``: if given, called from the audio
    thread with each captured frame instead of queuing it; it MUST NOT block (use
    ``loop.call_soon_threadsafe``). ``capture_queue``/``playback_queue``: queue lengths in
    frames (1 s and 200 ms by default). ``reopen_interval``: seconds between attempts to open a
    failed ALSA device during a call; ``probe_interval``: between probes of a failed one while
    idle. ``clock``: monotonic seconds. ``pcm_opener``: replaces pyalsaaudio (tests).

    Then: ``start()``; each period ``read_frame()`` until None and ``play(frame)``; ``stop()``.
    """

    def __init__(
        self,
        spec: AudioSpec,
        *,
        on_capture: OnCapture | None = None,
        capture_queue: int = 50,
        playback_queue: int = 10,
        reopen_interval: float = DEFAULT_REOPEN_INTERVAL,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        pcm_opener: PcmOpener | None = None,
    ) -> None:
        if capture_queue < 1 or playback_queue < 1:
            raise ValueError("queue lengths must be at least one frame")
        self.spec = spec
        self._on_capture = on_capture
        self._capture_max = capture_queue
        self._playback_max = playback_queue
        self._reopen_interval = reopen_interval
        self._probe_interval = probe_interval
        self._clock = clock
        self._captured: collections.deque[bytes] = collections.deque()
        self._playback: collections.deque[bytes] = collections.deque()
        self._silence = bytes(spec.frame_bytes)
        self._backend: _Backend
        self._alsa: _AlsaBackend | None = None
        if spec.kind == "alsa":
            self._alsa = _AlsaBackend(spec, pcm_opener)
            self._backend = self._alsa
        elif spec.kind == "file":
            self._backend = _FileBackend(spec)
        else:
            self._backend = _NullBackend(spec.frame_bytes)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._active = True
        "False: the thread leaves the device alone (closed: ALSA free, a file not read)."
        self._activations = 0
        "Times the device was made active: a new one starts a new take (``file:`` rewinds)."
        self._open = False
        self._opened_at = 0.0
        # Counters: each is written by one thread only (the audio thread, except
        # _playback_dropped, which only play() writes).
        self._frames_captured = 0
        self._frames_played = 0
        self._underruns = 0
        self._overruns = 0
        self._playback_dropped = 0
        self._late = 0
        self._reopen_attempts = 0
        self._errors = 0
        self._last_error = ""
        self._problem = ""
        self._reported: dict[str, tuple[float, int]] = {}
        "Message -> (when it was last logged, repeats left out since): ``_report``."

    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate

    @property
    def frame_samples(self) -> int:
        return self.spec.frame_samples

    @property
    def frame_bytes(self) -> int:
        return self.spec.frame_bytes

    def start(self) -> None:
        """Check the backend and start the thread.

        ``file`` checks IN here (a bad input WAV raises ``AudioFormatError``) and makes OUT an
        empty WAV (``ConfigError`` if it cannot be written). An ALSA device is opened by the
        thread, which first probes it if the device starts idle; a device that cannot be
        opened is logged and shown in ``status().problem``, and the thread runs on silence and
        retries, so this never raises for a missing sound card. Then: ``read_frame``/``play``.
        """
        if self._thread is not None:
            raise RuntimeError("AudioDevice already started")
        self._backend.check()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"audio {self.spec}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread (waiting at most ``timeout`` s) and close the device. Safe to call
        twice or before ``start``."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("audio thread did not stop within %.1f s", timeout)
                return  # it closes the backend itself when it leaves its loop
        self._close_backend()

    def play(self, frame: bytes) -> None:
        """Queue one frame (``frame_bytes`` bytes) for playback; never blocks.

        A full queue drops its oldest frame (counted as ``playback_dropped``).
        """
        if len(frame) != len(self._silence):
            raise ValueError(f"a frame is {len(self._silence)} bytes, got {len(frame)}")
        if len(self._playback) >= self._playback_max:
            with contextlib.suppress(IndexError):  # the audio thread may have taken it
                self._playback.popleft()
                self._playback_dropped += 1
        self._playback.append(bytes(frame))

    @property
    def active(self) -> bool:
        return self._active

    def set_active(self, active: bool) -> None:
        """Run the device only while something plays (a call, a tone): idle, it is closed (an
        ALSA sound card is free, an unplugged headset is no error; a file is not read). Each
        time it becomes active is a new take: ``file:`` plays IN from its start and starts OUT
        again. Takes effect within 50 ms."""
        if active != self._active:
            if active:
                self._activations += 1
            self._active = active
            if not active:
                self._playback.clear()

    @property
    def device_open(self) -> bool:
        """The device is open and taking frames (False while inactive, and while an ALSA
        device that failed is retried)."""
        return self._open

    @property
    def playback_queued(self) -> int:
        """Frames waiting to be played: the app keeps this small (latency)."""
        return len(self._playback)

    def read_frame(self) -> bytes | None:
        """The oldest captured frame not yet read, or None. Never blocks."""
        try:
            return self._captured.popleft()
        except IndexError:
            return None

    def read_frames(self) -> list[bytes]:
        """Every captured frame waiting, oldest first. Never blocks."""
        frames = []
        while (frame := self.read_frame()) is not None:
            frames.append(frame)
        return frames

    def status(self) -> AudioStatus:
        """The counters now (read without locks: each may be one period stale)."""
        thread = self._thread
        xruns = self._alsa.xruns if self._alsa is not None else 0
        return AudioStatus(
            spec=str(self.spec),
            running=thread is not None and thread.is_alive(),
            active=self._active,
            device_open=self._open,
            frames_captured=self._frames_captured,
            frames_played=self._frames_played,
            underruns=self._underruns,
            overruns=self._overruns,
            playback_dropped=self._playback_dropped,
            xruns=xruns,
            late=self._late,
            reopen_attempts=self._reopen_attempts,
            errors=self._errors,
            last_error=self._last_error,
            problem=self._problem,
        )

    # The audio thread.

    def _report(self, level: int, message: str) -> None:
        """Log ``message``, but the same message at most once per ``REPORT_REPEAT_S``."""
        now = self._clock()
        last = self._reported.get(message)
        if last is not None and now - last[0] < REPORT_REPEAT_S:
            self._reported[message] = (last[0], last[1] + 1)
            return
        if len(self._reported) >= MAX_REPORTS:
            self._reported.clear()
        self._reported[message] = (now, 0)
        again = f" (repeated {last[1]} times since last logged)" if last and last[1] else ""
        log.log(level, "audio: %s%s", message, again)

    def _error(self, message: str) -> None:
        """Something went wrong (counted, logged, kept as ``last_error``)."""
        self._errors += 1
        self._last_error = message
        self._report(logging.WARNING, message)

    def _failed(self, message: str) -> None:
        """The device cannot be used: an error, and the ``problem`` until it opens."""
        self._error(message)
        self._problem = message  # after the log line: whoever sees the problem finds it logged

    def _works(self, what: str) -> None:
        """The device opened, or an idle probe found it: the problem, if any, is over."""
        if self._problem:
            self._problem = ""
            self._report(logging.INFO, f"{self.spec} works again ({what})")
        else:
            log.debug("audio: %s %s", self.spec, what)

    def _close_backend(self) -> None:
        self._open = False
        try:
            self._backend.close()
        except Exception as exc:
            self._error(f"close failed: {exc}")

    def _try_open(self) -> None:
        if self._alsa is not None:
            self._reopen_attempts += 1
        try:
            self._backend.open()
        except Exception as exc:
            self._failed(str(exc))
        else:
            self._open = True
            self._opened_at = self._clock()
            self._works("open")

    def _probe(self) -> None:
        """ALSA, idle: can the device be opened? Said at once, not at the first call."""
        if self._alsa is None:
            return
        try:
            self._alsa.probe()
        except Exception as exc:
            self._failed(str(exc))
        else:
            self._works("probed")

    def _run(self) -> None:
        try:
            if not self._active:
                self._probe()
            self._loop()
        except Exception as exc:  # a bug; keep the app alive and say so
            log.exception("audio thread failed")
            self._error(f"audio thread failed: {exc}")
        finally:
            self._close_backend()

    def _loop(self) -> None:
        period = self.spec.frame_samples / self.spec.sample_rate
        retry_at = self._clock()  # first open right away
        deadline = self._clock()
        probe_at = self._clock() + self._probe_interval
        take = self._activations
        while not self._stopping.is_set():
            if not self._active or take != self._activations:
                if self._open:  # ALSA: the card is free; a file: OUT holds the take
                    self._close_backend()
                take = self._activations
                if not self._active:
                    if self._problem and self._clock() >= probe_at:
                        self._probe()
                        probe_at = self._clock() + self._probe_interval
                    self._stopping.wait(IDLE_POLL_S)
                retry_at = deadline = self._clock()
                continue
            now = self._clock()
            if not self._open and now >= retry_at:
                self._try_open()
                # ALSA: again every reopen_interval; a file or null: once a take.
                retry_at = now + self._reopen_interval if self._alsa is not None else math.inf
            try:
                frame = self._playback.popleft()
            except IndexError:
                frame = self._silence
                self._underruns += 1
            blocked = False
            captured = self._silence
            if self._open:
                before = self._clock()
                try:
                    captured = self._backend.transfer(frame)
                except Exception as exc:
                    self._failed(str(exc))
                    self._close_backend()
                    retry_at = self._retry_after_failure()
                else:
                    self._frames_captured += 1
                    blocked = self._clock() - before >= period / 4
            self._frames_played += 1
            self._deliver(captured)
            # Pacing: a device that blocked for its period set the pace, so re-anchor on it;
            # otherwise follow the clock from a fixed start (no cumulative sleep drift).
            now = self._clock()
            if blocked and self._backend.paced_by_device:
                deadline = now
                continue
            deadline += period
            if deadline < now - MAX_LATE_PERIODS * period:
                self._late += 1
                deadline = now
            elif deadline > now:
                self._stopping.wait(deadline - now)

    def _retry_after_failure(self) -> float:
        """When to open the device again after it failed mid-stream."""
        now = self._clock()
        if self._alsa is None:
            return math.inf  # a file: silence until the next take
        # ALSA: at once (an xrun that needs a fresh PCM), unless it has just been opened and
        # failed already (a device that opens but does not work): then after reopen_interval.
        if now - self._opened_at >= self._reopen_interval:
            return now
        return now + self._reopen_interval

    def _deliver(self, frame: bytes) -> None:
        if self._on_capture is not None:
            try:
                self._on_capture(frame)
            except Exception as exc:
                self._error(f"on_capture raised {type(exc).__name__}: {exc}")
            return
        if len(self._captured) >= self._capture_max:
            with contextlib.suppress(IndexError):  # the app may have drained it meanwhile
                self._captured.popleft()
                self._overruns += 1
        self._captured.append(frame)
