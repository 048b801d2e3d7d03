"""``runtime.livewav.LiveWav``: a WAV that is complete at every moment while it is written."""

import os
import wave
from pathlib import Path

import pytest

from peerline.runtime.livewav import HEADER_BYTES, LiveWav


def frames_and_data(path: Path) -> tuple[int, bytes]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        return w.getnframes(), w.readframes(w.getnframes())


def test_livewav_header_counts_every_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    wav = LiveWav.create(path, sample_rate=16000)
    assert frames_and_data(path) == (0, b"")
    written = b""
    for i in range(1, 6):
        pcm = bytes([i, 0]) * 320
        wav.write(pcm)
        written += pcm
        # Not closed, not flushed by hand: another reader sees the whole WAV now.
        assert frames_and_data(path) == (320 * i, written)
        assert path.stat().st_size == HEADER_BYTES + len(written)
    assert wav.frames == 1600
    wav.close()
    wav.close()
    assert frames_and_data(path) == (1600, written)
    with pytest.raises(ValueError, match="closed"):
        wav.write(b"\0\0")


def test_livewav_create_replaces_the_old_file_whole(tmp_path: Path) -> None:
    """``create`` renames a new empty WAV over the old one: a reader that had the old file open
    keeps all of it, and a new reader finds the empty WAV, never a truncated file."""
    path = tmp_path / "out.wav"
    old = LiveWav.create(path, sample_rate=16000)
    old.write(b"\1\0" * 1000)
    old.close()
    with path.open("rb") as reader:
        new = LiveWav.create(path, sample_rate=16000)
        assert frames_and_data(path) == (0, b"")
        assert len(reader.read()) == HEADER_BYTES + 2000  # the old take, whole
    new.write(b"\2\0" * 10)
    new.close()
    assert frames_and_data(path) == (10, b"\2\0" * 10)
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temporary file left


def test_livewav_through_a_symlink_rewrites_the_target(tmp_path: Path) -> None:
    target = tmp_path / "real.wav"
    link = tmp_path / "link.wav"
    link.symlink_to(target)
    wav = LiveWav.create(link, sample_rate=16000)
    wav.write(b"\3\0" * 4)
    wav.close()
    assert link.is_symlink()
    assert frames_and_data(target) == (4, b"\3\0" * 4)


def test_livewav_to_dev_null_is_a_stream(tmp_path: Path) -> None:
    """A path that is not a regular file is written in place and never seeked."""
    wav = LiveWav.create(Path(os.devnull), sample_rate=16000)
    wav.write(b"\0\0" * 320)
    assert wav.frames == 320
    wav.close()
    assert Path(os.devnull).is_char_device()


def test_livewav_unwritable_directory_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        LiveWav.create(tmp_path / "missing-dir" / "out.wav", sample_rate=16000)
