"""Fixtures shared by the tests that run real daemons on loopback."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daemons import LOOPBACK_CONFIG, Daemon, start_daemon, write_silence


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """``phones(name, *run_args, config=LOOPBACK_CONFIG)`` starts a daemon in ``tmp_path/name``
    (again on the same name: the same identity and database). Without ``--audio`` among the
    arguments it gets ``file:`` audio: silence in, ``tmp_path/name-out.wav`` out. Every daemon
    is killed afterwards if it still runs (a test that failed before stopping it)."""
    started: list[Daemon] = []
    quiet = tmp_path / "silence.wav"
    write_silence(quiet, seconds=1.0)

    def start(name: str, *args: str, config: str = LOOPBACK_CONFIG) -> Daemon:
        audio = () if "--audio" in args else ("--audio", f"file:{quiet},{tmp_path / name}-out.wav")
        d = start_daemon(tmp_path / name, *audio, *args, config=config)
        started.append(d)
        return d

    try:
        yield start
    finally:
        for d in started:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
            if d.proc.stdout is not None:
                d.proc.stdout.close()
