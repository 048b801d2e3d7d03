"""alsa-lib's own error messages go to the log (DEBUG, rate-limited) instead of stderr.

alsa-lib reports through one process-wide error handler (``snd_lib_error_set_handler``). Its
default prints lines like ``ALSA lib pcm.c:2666:(snd_pcm_open_noupdate) Unknown PCM headset``
to stderr, from whichever thread called it, at every failed open: once a second while the
audio thread retries a missing sound card during a call. ``install()`` replaces it, through
ctypes and once per process, with one that logs on ``peerline.alsa`` at DEBUG, each message
(by source line) at most once per ``REPEAT_S`` with a count of those left out. The phone says
what went wrong itself, from pyalsaaudio's exception, in its own log line and in ``status``
(``runtime.audio``).

The C handler is variadic and a ctypes callback cannot be, so it takes the fixed arguments (file,
line, function, error code, format) and logs the format unexpanded (``Unknown PCM %s``):
reading the variable arguments without knowing their C types could crash the phone.

Example::

    install()  # then open PCMs with pyalsaaudio: nothing reaches stderr
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger("peerline.alsa")

REPEAT_S = 60.0
"A message from one source line is logged at most once in this many seconds."
MAX_SOURCES = 64
"Source lines remembered for the rate limit (forgotten all at once beyond this)."

_HANDLER = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)
"""``void handler(const char *file, int line, const char *function, int err, const char *fmt,
...)``, without the ``...``."""

_lock = threading.Lock()
_installed: object | None = None
"The ctypes callback alsa-lib calls: kept here for as long as the process lives."
_tried = False
_seen: dict[tuple[str, int], tuple[float, int]] = {}
"(file, line) -> (when last logged, messages left out since)."


def _text(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode("utf-8", "replace")


def handle(
    file: bytes | None,
    line: int,
    function: bytes | None,
    err: int,
    fmt: bytes | None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Log one alsa-lib message (what the installed handler calls). Never raises."""
    try:
        key = (_text(file), line)
        now = clock()
        with _lock:
            last = _seen.get(key)
            if last is not None and now - last[0] < REPEAT_S:
                _seen[key] = (last[0], last[1] + 1)
                return
            if len(_seen) >= MAX_SOURCES:
                _seen.clear()
            _seen[key] = (now, 0)
        reason = f" ({os.strerror(abs(err))})" if err else ""
        more = f" [{last[1]} more like it in the last {REPEAT_S:.0f} s]" if last and last[1] else ""
        log.debug(
            "alsa-lib %s:%d (%s): %s%s%s",
            key[0],
            line,
            _text(function),
            _text(fmt).strip(),
            reason,
            more,
        )
    except Exception:  # noqa: S110 - a C callback must not raise, and stderr is what we avoid
        pass


def reset() -> None:
    """Forget which messages were logged (a test's fresh start)."""
    with _lock:
        _seen.clear()


def _on_error(
    file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None
) -> None:
    handle(file, line, function, err, fmt)


def _load() -> ctypes.CDLL | None:
    for name in ("libasound.so.2", ctypes.util.find_library("asound")):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
    return None


def install() -> bool:
    """Route alsa-lib's messages to the log, once per process; safe from any thread.

    Returns True when the handler is in place, False when alsa-lib cannot be loaded (then
    nothing changed, and nothing of ALSA can work either). Then: use pyalsaaudio as usual.
    """
    global _installed, _tried  # noqa: PLW0603 - one handler per process, as alsa-lib has
    with _lock:
        if _installed is not None or _tried:
            return _installed is not None
        _tried = True
        lib = _load()
        if lib is None:
            log.debug("alsa-lib not found: its messages are left alone")
            return False
        callback = _HANDLER(_on_error)
        try:
            setter = lib.snd_lib_error_set_handler
        except AttributeError:
            log.debug("alsa-lib has no snd_lib_error_set_handler")
            return False
        setter.argtypes = [_HANDLER]
        setter.restype = ctypes.c_int
        if setter(callback) != 0:
            return False
        _installed = callback
        return True
