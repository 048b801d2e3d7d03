"""``runtime.alsalog``: alsa-lib's error messages go to the log, rate-limited, not to stderr."""

import importlib
import logging

import pytest

from peerline.runtime import alsalog


def test_alsalog_install_keeps_alsa_lib_off_stderr(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Opening a PCM that does not exist makes alsa-lib complain ("Unknown PCM"); after
    ``install`` that goes to the ``peerline.alsa`` log at DEBUG, and stderr stays empty."""
    try:
        alsaaudio = importlib.import_module("alsaaudio")
    except ImportError as exc:
        pytest.skip(f"pyalsaaudio is not installed ({exc}): alsa-lib's handler is not tested")
    if not alsalog.install():
        pytest.skip("LOUD: libasound.so.2 cannot be loaded: alsa-lib's handler is not tested")
    assert alsalog.install()  # again: still in place, nothing else happens
    alsalog.reset()
    caplog.set_level(logging.DEBUG, logger="peerline.alsa")
    capfd.readouterr()
    for _ in range(3):
        with pytest.raises(alsaaudio.ALSAAudioError, match="peerline-no-such-pcm"):
            alsaaudio.PCM(
                alsaaudio.PCM_PLAYBACK, alsaaudio.PCM_NONBLOCK, device="peerline-no-such-pcm"
            )
    assert "ALSA lib" not in capfd.readouterr().err
    unknown = [r for r in caplog.records if "Unknown PCM" in r.getMessage()]
    assert len(unknown) == 1, caplog.text  # three failures, logged once (rate limit)
    assert unknown[0].levelno == logging.DEBUG and unknown[0].name == "peerline.alsa"


def test_alsalog_handle_logs_a_source_line_once_a_minute_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="peerline.alsa")
    now = [1000.0]

    def say() -> None:
        alsalog.handle(b"test.c", 7, b"probe", 2, b"Unknown PCM %s", clock=lambda: now[0])

    alsalog.reset()
    say()
    now[0] += 30
    say()
    say()
    assert len(caplog.records) == 1
    first = caplog.records[0].getMessage()
    assert "test.c:7 (probe): Unknown PCM %s (No such file or directory)" in first
    now[0] += alsalog.REPEAT_S
    say()
    assert len(caplog.records) == 2
    assert "[2 more like it in the last 60 s]" in caplog.records[1].getMessage()
    alsalog.handle(None, 0, None, 0, None)  # NULL strings from C: no exception
