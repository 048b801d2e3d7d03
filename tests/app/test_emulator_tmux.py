"""The emulator in a real terminal: ``peerline run --hw emulator`` inside tmux, keys typed with
``tmux send-keys``, the screen read back with ``capture-pane``.

The emulator draws the 128x64 picture in half blocks (``adapters.display.TerminalDisplay``);
``picture`` turns the captured characters back into pixels, and the test compares regions of
them with what ``ui.render`` draws for the screen expected: the picture the user sees, pixel
for pixel, not a text mirror of it. The far end is a real daemon that answers by itself.

tmux runs on a server of its own (``-L``, a socket named for this test), killed at the end; the
phone binds 127.0.0.1 with LAN discovery and port mapping off.
"""

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daemons import LOOPBACK_CONFIG, Daemon, cli, cli_json, start_daemon
from PIL import Image, ImageChops

from peerline.ui.render import render
from peerline.ui.screens import CallScreen, IdleScreen, StatusBar
from peerline.ui.show import group

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (scripts/setup --dev installs it)"
)

SIZE = (128, 64)
CELLS = {" ": (0, 0), "\u2580": (1, 0), "\u2584": (0, 1), "\u2588": (1, 1)}
EMULATOR_CONFIG = (
    LOOPBACK_CONFIG
    + '\n[nat]\nport_mapping = false\n\n[phone]\nname = "Desk 1"\n\n[audio]\nbackend = "null"\n'
)
ANSWERING = LOOPBACK_CONFIG + "\n[calls]\nauto_answer = true\n"


class Tmux:
    """One tmux server and session of our own."""

    def __init__(self, name: str) -> None:
        self.server = ["tmux", "-L", name]

    def run(self, *args: str) -> str:
        proc = subprocess.run(
            [*self.server, *args], capture_output=True, text=True, timeout=10, check=True
        )
        return proc.stdout

    def start(self, command: list[str], env: dict[str, str]) -> None:
        shell = " ".join(f"{k}={v}" for k, v in env.items()) + " " + " ".join(command)
        self.run("-u", "new-session", "-d", "-s", "phone", "-x", "140", "-y", "40", shell)
        self.run("set-option", "-t", "phone", "remain-on-exit", "on")  # the last screen stays

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "phone", *keys)

    def screen(self) -> list[str]:
        return self.run("capture-pane", "-p", "-t", "phone").splitlines()

    def kill(self) -> None:
        subprocess.run([*self.server, "kill-server"], capture_output=True, timeout=10, check=False)


def picture(lines: list[str]) -> Image.Image | None:
    """The emulator's picture, back in pixels from the captured terminal (None: not drawn)."""
    try:
        top = next(i for i, line in enumerate(lines) if line.startswith("\u250c"))
    except StopIteration:
        return None
    rows = lines[top + 1 : top + 1 + SIZE[1] // 2]
    if len(rows) < SIZE[1] // 2:
        return None
    image = Image.new("1", SIZE, 0)
    for y, row in enumerate(rows):
        cells = row[1 : 1 + SIZE[0]]
        if len(cells) < SIZE[0] or any(c not in CELLS for c in cells):
            return None
        for x, cell in enumerate(cells):
            upper, lower = CELLS[cell]
            if upper:
                image.putpixel((x, 2 * y), 255)
            if lower:
                image.putpixel((x, 2 * y + 1), 255)
    return image


def same(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> bool:
    return ImageChops.difference(a.crop(box), b.crop(box)).getbbox() is None


def wait_for(pred: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def far(tmp_path: Path) -> Iterator[Daemon]:
    daemon = start_daemon(tmp_path / "far", config=ANSWERING)
    yield daemon
    daemon.stop()


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    server = Tmux(f"peerline-test-{os.getpid()}-{tmp_path.name}")
    yield server
    server.kill()


def test_the_emulator_dials_shows_the_call_and_hangs_up(
    tmp_path: Path, far: Daemon, tmux: Tmux
) -> None:
    data = tmp_path / "near"
    data.mkdir()
    near = cli_json(data, "init")
    (data / "peerline.toml").write_text(EMULATOR_CONFIG)
    tmux.start(
        [sys.executable, "-m", "peerline", "run", "--hw", "emulator", "--data", str(data)],
        env={"LANG": "C.UTF-8", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    below = StatusBar(clock="", online=False)
    idle = render(IdleScreen(status=below, name="Desk 1", number=group(near["number"])), SIZE)

    def shows_idle() -> bool:
        shown = picture(tmux.screen())
        return shown is not None and same(shown, idle, (0, 11, 128, 64))  # all but the status

    assert wait_for(shows_idle), "\n".join(tmux.screen())
    status = cli_json(data, "status")
    assert status["handset"]["kind"] == "emulator" and status["handset"]["display"] is True
    cli(data, "peer", "add", far.number, far.public_key, far.addr)

    tmux.keys("Enter")  # off hook: the dial tone
    tmux.keys("-l", far.number)  # the twelfth digit dials
    in_call = render(CallScreen(title="In call", who=group(far.number)), SIZE)

    def shows_in_call() -> bool:
        shown = picture(tmux.screen())
        return (
            shown is not None
            and same(shown, in_call, (0, 0, 6 * len("In call"), 10))  # the title
            and same(shown, in_call, (0, 11, 128, 30))  # the far phone's number
        )

    assert wait_for(shows_in_call), "\n".join(tmux.screen())
    assert cli_json(far.data, "status")["calls"][0]["state"] == "active"

    tmux.keys("Enter")  # on hook: hung up
    ended = render(CallScreen(title="Call ended", who=group(far.number)), SIZE)

    def shows_ended() -> bool:
        shown = picture(tmux.screen())
        return shown is not None and same(shown, ended, (0, 0, 128, 30))

    assert wait_for(shows_ended), "\n".join(tmux.screen())
    assert wait_for(lambda: cli_json(far.data, "status")["calls"][0]["state"] == "ended")

    tmux.keys("C-c")  # the phone stops
    assert wait_for(lambda: _stopped(data))


def _stopped(data: Path) -> bool:
    proc = subprocess.run(
        [sys.executable, "-m", "peerline", "status", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return proc.returncode == 3  # no phone running
