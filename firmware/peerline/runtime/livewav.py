"""A WAV file that is complete at every moment: its header's sizes follow each write.

``LiveWav.create(path, sample_rate=16000)`` makes ``path`` an empty 16-bit mono PCM WAV, then
each ``write(pcm)`` appends samples and rewrites the RIFF and data sizes in the header. A
program that reads the file while it grows (a test script, ``aplay``, another phone's
scorer) always finds a valid WAV whose header counts at most the samples present: the samples
are written first, the sizes after them, so a reader is one write behind at worst. There is no
``close`` step that a crash could miss: ``close`` only lets go of the file.

``create`` writes the empty WAV beside ``path`` and renames it over ``path``: a reader finds
either the old file, whole, or the new one, never a truncated file or half a header. A path
that is not a regular file (``/dev/null``, a FIFO) is written in place, as a stream whose
header says "length unknown" (0xFFFFFFFF), and never rewritten.

Example::

    wav = LiveWav.create(Path("out.wav"), sample_rate=16000)
    wav.write(bytes(640))  # 20 ms of silence: out.wav now says 320 frames
    wav.close()
"""

from __future__ import annotations

import contextlib
import os
import stat
import struct
from pathlib import Path

SAMPLE_BYTES = 2
"16-bit samples."
CHANNELS = 1
"Mono."
HEADER_BYTES = 44
"RIFF header, ``fmt `` chunk and ``data`` chunk header: the samples start here."
UNKNOWN_SIZE = 0xFFFFFFFF
"What a stream's header says for both sizes: the length is not known."
MAX_DATA_BYTES = UNKNOWN_SIZE - (HEADER_BYTES - 8)
"The most samples (in bytes) a RIFF header can count: about 37 hours at 16 kHz."

_RIFF_SIZE_AT = 4
_DATA_SIZE_AT = 40


def wav_header(*, sample_rate: int, data_bytes: int) -> bytes:
    """The 44-byte header of a 16-bit mono PCM WAV holding ``data_bytes`` of samples."""
    riff = UNKNOWN_SIZE if data_bytes == UNKNOWN_SIZE else HEADER_BYTES - 8 + data_bytes
    block = CHANNELS * SAMPLE_BYTES
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        riff,
        b"WAVE",
        b"fmt ",
        16,  # the fmt chunk's size
        1,  # WAVE_FORMAT_PCM
        CHANNELS,
        sample_rate,
        sample_rate * block,
        block,
        8 * SAMPLE_BYTES,
        b"data",
        data_bytes,
    )


class LiveWav:
    """One WAV being written. Build it with ``LiveWav.create``.

    Then: ``write(pcm)`` for each piece of audio; ``close()`` when done.
    """

    def __init__(self, fd: int, *, path: Path, sample_rate: int, seekable: bool) -> None:
        self.path = path
        "The file as named to ``create``."
        self.sample_rate = sample_rate
        self._fd: int | None = fd
        self._seekable = seekable
        self._data_bytes = 0

    @classmethod
    def create(cls, path: Path, *, sample_rate: int) -> LiveWav:
        """Make ``path`` an empty WAV (0 frames) and return it open for ``write``.

        :raises OSError: the file (or, for a new regular file, its directory) is not writable.
        """
        real = Path(os.path.realpath(path))  # a symlink's target is rewritten, not the link
        try:
            mode = os.stat(real).st_mode
        except FileNotFoundError:
            mode = stat.S_IFREG
        header = wav_header(sample_rate=sample_rate, data_bytes=0)
        if not stat.S_ISREG(mode):
            fd = os.open(real, os.O_WRONLY | os.O_CLOEXEC)
            wav = cls(fd, path=path, sample_rate=sample_rate, seekable=False)
            wav._put(wav_header(sample_rate=sample_rate, data_bytes=UNKNOWN_SIZE), None)
            return wav
        tmp = real.with_name(f".{real.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        except PermissionError:  # the directory is read-only, the file is not: rewrite it
            fd = os.open(real, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
            wav = cls(fd, path=path, sample_rate=sample_rate, seekable=True)
            wav._put(header, 0)
            return wav
        wav = cls(fd, path=path, sample_rate=sample_rate, seekable=True)
        try:
            wav._put(header, 0)
            os.replace(tmp, real)
        except OSError:
            wav.close()
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return wav

    @property
    def frames(self) -> int:
        """Frames (samples) written so far."""
        return self._data_bytes // (CHANNELS * SAMPLE_BYTES)

    def write(self, pcm: bytes) -> None:
        """Append ``pcm`` (16-bit little-endian mono samples), then rewrite the header's sizes.

        Past ``MAX_DATA_BYTES`` the samples are still written but the header stays at its
        largest count. :raises OSError: the write failed (a full disk); :raises ValueError:
        after ``close``.
        """
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        if not pcm:
            return
        if not self._seekable:
            self._put(pcm, None)
            self._data_bytes += len(pcm)
            return
        self._put(pcm, HEADER_BYTES + self._data_bytes)
        self._data_bytes += len(pcm)
        size = min(self._data_bytes, MAX_DATA_BYTES)
        self._put(struct.pack("<I", HEADER_BYTES - 8 + size), _RIFF_SIZE_AT)
        self._put(struct.pack("<I", size), _DATA_SIZE_AT)

    def close(self) -> None:
        """Let go of the file (it is already complete). Safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _put(self, data: bytes, offset: int | None) -> None:
        """Write all of ``data`` at ``offset`` (None: where a stream is)."""
        assert self._fd is not None
        view = memoryview(data)
        while view:
            if offset is None:
                done = os.write(self._fd, view)
            else:
                done = os.pwrite(self._fd, view, offset)
                offset += done
            if done <= 0:
                raise OSError(f"{self.path}: nothing written")
            view = view[done:]
