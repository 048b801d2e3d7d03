"""The display on its own thread: the event loop hands over what to show and never waits.

An SSD1306 frame is 1 KiB over I2C: about 25 ms at 400 kHz, 100 ms at the 100 kHz default, more
than one audio period. So the loop never calls the ``Display`` itself: it gives ``ScreenWorker``
the newest ``Screen`` (data, cheap to compare), and the worker draws it (``ui.render``) and
sends it from its thread. Only the newest screen, contrast and awake state are kept: a worker
that falls behind skips pictures nobody would have seen, so nothing queues up.

A display that fails (``DisplayError``, or anything else a driver raises) is closed and the
worker stops; ``on_failed(error)`` is called once, from the worker's thread, and the phone goes
on headless.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from peerline.errors import DisplayError, LocalProtocolError
from peerline.ports import Display
from peerline.ui.render import render
from peerline.ui.screens import Screen

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 2.0
"""How long ``close`` waits for a picture being sent (a stuck bus must not hang the exit)."""


@dataclass(slots=True)
class _Wanted:
    screen: Screen | None = None
    awake: bool | None = None
    contrast: int | None = None


class ScreenWorker:
    """Shows screens on ``display`` from a thread. Then: ``start``; ``show``/``set_awake``/
    ``set_contrast`` from the loop (they only record what is wanted); ``close``."""

    def __init__(self, display: Display, *, on_failed: Callable[[Exception], None]) -> None:
        self.display = display
        self._on_failed = on_failed
        self._wanted = _Wanted()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.failed: Exception | None = None
        self.frames_shown = 0
        "Pictures handed to the display (unchanged ones it skips itself)."
        self.frames_skipped = 0
        "Screens replaced by a newer one before the worker got to them."

    @property
    def size(self) -> tuple[int, int]:
        return self.display.size

    def start(self) -> None:
        if self._thread is not None:
            raise LocalProtocolError("screen worker already started")
        self._thread = threading.Thread(target=self._run, name="peerline-screen", daemon=True)
        self._thread.start()

    def show(self, screen: Screen) -> None:
        with self._cond:
            if self._wanted.screen is not None:
                self.frames_skipped += 1
            self._wanted.screen = screen
            self._cond.notify()

    def set_awake(self, awake: bool) -> None:
        with self._cond:
            self._wanted.awake = awake
            self._cond.notify()

    def set_contrast(self, level: int) -> None:
        with self._cond:
            self._wanted.contrast = level
            self._cond.notify()

    def close(self) -> None:
        """Stop the thread once what is wanted has been shown (at most ``JOIN_TIMEOUT_S``),
        then close the display. Idempotent."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.warning("display: still sending a picture at exit; leaving it")
                return
        self._close_display()

    def _take(self) -> _Wanted | None:
        with self._cond:
            while not self._stopping and self._wanted == _Wanted():
                self._cond.wait()
            if self._wanted == _Wanted():  # stopping, and nothing left to show
                return None
            wanted, self._wanted = self._wanted, _Wanted()
            return wanted

    def _run(self) -> None:
        while (wanted := self._take()) is not None:
            try:
                self._apply(wanted)
            except Exception as exc:  # any driver failure: the phone goes on headless
                self.failed = exc
                with self._cond:
                    self._stopping = True
                self._close_display()
                try:
                    self._on_failed(exc)
                except Exception:
                    log.exception("display: on_failed raised")
                return

    def _apply(self, wanted: _Wanted) -> None:
        display = self.display
        if wanted.contrast is not None:
            display.contrast(wanted.contrast)
        if wanted.awake is False:
            display.sleep()
        if wanted.screen is not None:
            display.show(render(wanted.screen, display.size))
            self.frames_shown += 1
        if wanted.awake is True:
            display.wake()

    def _close_display(self) -> None:
        try:
            self.display.close()
        except (DisplayError, OSError) as exc:
            log.debug("display: close failed: %s", exc)
