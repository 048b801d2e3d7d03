"""ScreenWorker (peerline.runtime.screen): the display's own thread. The newest screen wins, a
failing display is closed and reported once, and the caller never waits for the panel."""

import threading

from luma.core.device import dummy
from PIL import ImageChops

from peerline.adapters.display import OledDisplay
from peerline.errors import DisplayError
from peerline.runtime.screen import ScreenWorker
from peerline.ui.render import render
from peerline.ui.screens import StatusBar, TextScreen

BAR = StatusBar(clock="", online=True)


def page(text: str) -> TextScreen:
    return TextScreen(title=text, lines=(text,))


class SlowPanel:
    """A display whose ``show`` blocks until released: a slow I2C bus."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.shown: list[object] = []
        self.closed = False
        self.fail = False

    @property
    def size(self) -> tuple[int, int]:
        return (128, 64)

    def show(self, image: object) -> None:
        self.entered.set()
        self.release.wait(5)
        if self.fail:
            raise DisplayError("the panel stopped answering")
        self.shown.append(image)

    def contrast(self, level: int) -> None:
        pass

    def sleep(self) -> None:
        pass

    def wake(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_the_screen_is_drawn_on_the_panel() -> None:
    device = dummy(width=128, height=64, mode="1")
    failed: list[Exception] = []
    worker = ScreenWorker(OledDisplay(device), on_failed=failed.append)
    worker.start()
    done = threading.Event()
    worker.show(page("hello"))
    worker.close()  # after the picture being sent
    done.set()
    assert (
        ImageChops.difference(device.image.convert("1"), render(page("hello"), (128, 64))).getbbox()
        is None
    )
    assert failed == []


def test_while_the_panel_is_busy_only_the_newest_screen_waits_and_show_never_blocks() -> None:
    panel = SlowPanel()
    worker = ScreenWorker(panel, on_failed=lambda e: None)
    worker.start()
    worker.show(page("first"))
    assert panel.entered.wait(2)
    for i in range(50):  # the loop goes on; nothing queues up
        worker.show(page(f"page {i}"))
    panel.release.set()
    worker.close()
    assert len(panel.shown) == 2  # the first, then only the newest
    assert worker.frames_skipped == 49
    assert panel.closed


def test_a_failing_panel_is_closed_and_reported_once() -> None:
    panel = SlowPanel()
    panel.fail = True
    panel.release.set()
    failed: list[Exception] = []
    reported = threading.Event()

    def on_failed(error: Exception) -> None:
        failed.append(error)
        reported.set()

    worker = ScreenWorker(panel, on_failed=on_failed)
    worker.start()
    worker.show(page("one"))
    assert reported.wait(2)
    worker.show(page("two"))  # ignored: the worker has stopped
    worker.close()
    assert len(failed) == 1 and isinstance(failed[0], DisplayError)
    assert panel.closed and worker.failed is failed[0]
