"""The handset on a running phone, end to end: keys pressed on gpiozero's mock pins (a
``MockFactory`` wired as a real key matrix by ``mock_matrix.Matrix``), the hook switch and LEDs
on mock pins, the screen on luma's ``dummy`` device; the far end is a real second daemon
(``peerline run`` on loopback, driven by the CLI).

The phone under test is the daemon's ``Phone`` in this process, with real sockets and the real
adapters (``MatrixKeypad``'s scan thread, ``HookSwitch`` on gpiozero's callbacks, ``Leds`` with
gpiozero's blink thread, ``ScreenWorker``'s display thread); only the pins and the panel are
mocks. Key presses last ``PRESS_S`` of real time; every wait is bounded and polls a condition.
"""

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemons import Daemon, cli, cli_json, start_daemon
from gpiozero.pins.mock import MockFactory
from luma.core.device import dummy
from PIL import ImageChops

from mock_matrix import Matrix
from peerline.adapters.display import OledDisplay
from peerline.app.daemon import Phone
from peerline.app.hardware import Hardware, open_hardware
from peerline.app.paths import Paths
from peerline.errors import DisplayError
from peerline.proto.identity import Identity, derive_number
from peerline.proto.phone import AddPeer, CallState
from peerline.store.config import Config
from peerline.store.db import Database
from peerline.store.pinmap import PinMap, load_pinmap
from peerline.ui.render import render
from peerline.ui.screens import CallScreen, DialScreen, IdleScreen, MenuScreen, TextScreen

LOOPBACK = {
    "network.port": 0,
    "network.bind4": "127.0.0.1",
    "network.bind6": "",
    "overlay.lan": False,
    "nat.port_mapping": False,
    "hardware.kind": "pi",
    "audio.backend": "null",  # never this machine's sound card
}
PRESS_S = 0.12
"""A finger on a key: over the 20 ms debounce, far under the 0.8 s long press."""
GAP_S = 0.1
IDENTITY = Identity.from_seed(b"\x11" * 32)


@dataclasses.dataclass
class Rig:
    """The phone under test and its mock hardware."""

    phone: Phone
    factory: MockFactory
    pinmap: PinMap
    matrix: Matrix | None
    panel: Any
    "luma's dummy device behind the phone's display (None: no display)."

    @property
    def ui(self) -> Any:
        assert self.phone.handset is not None and self.phone.handset.ui is not None
        return self.phone.handset.ui

    async def press(self, keys: str, *, hold: float = PRESS_S) -> None:
        assert self.matrix is not None
        for key in keys:
            self.matrix.press(key)
            await asyncio.sleep(hold)
            self.matrix.release(key)
            await asyncio.sleep(GAP_S)

    def hook(self, off_hook: bool) -> None:
        """Lift the handset or put it down: the switch's pin moves."""
        hook = self.pinmap.hook
        assert hook is not None
        pin = self.factory.pin(hook.pin)
        if off_hook == (hook.off_hook == "high"):
            pin.drive_high()
        else:
            pin.drive_low()

    def led(self, name: str) -> str | None:
        leds = self.phone.handset.hardware.leds if self.phone.handset else None
        return leds.mode(name) if leds is not None else None  # type: ignore[attr-defined]

    def live_state(self) -> CallState | None:
        live = self.phone.core.live_call()
        return None if live is None else live.state

    def shows(self, screen: Any) -> bool:
        """The panel shows exactly ``screen`` as the renderer draws it."""
        if self.panel is None:
            return False
        drawn = self.panel.image.convert("1")
        return ImageChops.difference(drawn, render(screen, (128, 64))).getbbox() is None


async def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return pred()


async def wait_for_daemon(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    """As ``wait_for``, for a condition that runs the CLI (kept off the event loop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(pred):
            return True
        await asyncio.sleep(0.1)
    return False


def call_state(d: Daemon) -> str | None:
    calls = d.status()["calls"]
    return calls[0]["state"] if calls else None


@pytest.fixture
def far(tmp_path: Path) -> Iterator[Daemon]:
    daemon = start_daemon(tmp_path / "far")
    yield daemon
    daemon.stop()


def run_rig(
    tmp_path: Path,
    far: Daemon | None,
    scenario: Callable[[Rig], Awaitable[None]],
    *,
    pinmap: str = "desk-4x3",
    hotline: str = "",
    display: bool = True,
    prepare: Callable[[Hardware], None] | None = None,
) -> None:
    """Run ``scenario`` on a phone with ``pinmap``'s parts on mock pins (the display on luma's
    dummy device), on hook at start, knowing ``far`` as a peer (and known to it)."""
    data = tmp_path / "near"
    data.mkdir()

    async def main() -> None:
        factory = MockFactory()
        spec = load_pinmap(pinmap)
        matrix = None
        if spec.keypad is not None:
            kp = spec.keypad
            matrix = Matrix(factory, rows=kp.rows, columns=kp.columns, layout=kp.layout)
        config = Config().override({**LOOPBACK, "hardware.hotline": hotline})
        hw = open_hardware(
            config, pin_factory=factory, pinmap=dataclasses.replace(spec, display=None)
        )
        assert hw.problems == []
        panel = None
        if display:
            panel = dummy(width=128, height=64, mode="1")
            hw.display = OledDisplay(panel)
        if prepare is not None:
            prepare(hw)
        with Database.open(data / "peerline.db") as db:
            phone = Phone(paths=Paths(data), config=config, identity=IDENTITY, db=db, hardware=hw)
            rig = Rig(phone=phone, factory=factory, pinmap=spec, matrix=matrix, panel=panel)
            rig.hook(False)  # resting in its cradle
            await phone.start()
            try:
                if far is not None:
                    now = asyncio.get_running_loop().time()
                    phone.core.handle(
                        AddPeer(
                            number=far.number,
                            public_key=bytes.fromhex(far.public_key),
                            addr=("127.0.0.1", far.port),
                        ),
                        now=now,
                    )
                    phone.poke()
                    host, port = phone.local_addrs[0]
                    number = derive_number(IDENTITY.public_key)
                    await asyncio.to_thread(
                        cli,
                        far.data,
                        "peer",
                        "add",
                        number,
                        IDENTITY.public_key.hex(),
                        f"{host}:{port}",
                    )
                await scenario(rig)
            finally:
                await phone.close()
        factory.reset()

    asyncio.run(main())


def test_keys_on_the_pins_dial_a_real_daemon_and_the_hook_hangs_up(
    tmp_path: Path, far: Daemon
) -> None:
    async def scenario(rig: Rig) -> None:
        assert await wait_for(lambda: isinstance(rig.ui.screen(), IdleScreen))
        assert await wait_for(lambda: rig.shows(rig.ui.screen()))  # the idle screen, drawn
        await rig.press(far.number[:5])
        screen = rig.ui.screen()
        assert isinstance(screen, DialScreen) and screen.digits.replace(" ", "") == far.number[:5]
        assert await wait_for(lambda: rig.shows(rig.ui.screen()))
        await rig.press(far.number[5:])  # the twelfth digit dials
        assert await wait_for_daemon(lambda: call_state(far) == "incoming")
        assert await wait_for(lambda: rig.live_state() is CallState.RINGBACK)
        ringing = rig.ui.screen()
        assert isinstance(ringing, CallScreen) and ringing.title == "Ringing"
        assert await wait_for(lambda: rig.shows(rig.ui.screen()))
        await asyncio.to_thread(cli, far.data, "answer")
        assert await wait_for(lambda: rig.live_state() is CallState.ACTIVE)
        assert await wait_for(lambda: rig.ui.screen().title == "In call")
        assert rig.ui.screen().sas  # the SAS to compare by voice
        assert rig.led("ring") == "on"
        rig.hook(True)  # lifted during a call: nothing changes...
        await asyncio.sleep(0.3)
        assert rig.live_state() is CallState.ACTIVE
        rig.hook(False)  # ...put down: hung up
        assert await wait_for(lambda: rig.live_state() is None)
        assert await wait_for_daemon(lambda: call_state(far) == "ended")
        assert far.status()["calls"][0]["reason"] == "remote_hangup"
        assert await wait_for(lambda: rig.ui.screen().title == "Call ended")
        assert await wait_for(lambda: rig.led("ring") == "off")

    run_rig(tmp_path, far, scenario)


def test_lifting_the_handset_answers_and_putting_it_down_hangs_up(
    tmp_path: Path, far: Daemon
) -> None:
    async def scenario(rig: Rig) -> None:
        number = derive_number(IDENTITY.public_key)
        await asyncio.to_thread(cli, far.data, "dial", number, check=False)
        assert await wait_for(lambda: rig.live_state() is CallState.INCOMING)
        assert await wait_for(lambda: rig.led("ring") == "blink")
        incoming = rig.ui.screen()
        assert isinstance(incoming, CallScreen) and incoming.title == "Incoming call"
        assert await wait_for(lambda: rig.shows(rig.ui.screen()))
        rig.hook(True)
        assert await wait_for_daemon(lambda: call_state(far) == "active")
        assert await wait_for(lambda: rig.live_state() is CallState.ACTIVE)
        rig.hook(False)
        assert await wait_for_daemon(lambda: call_state(far) == "ended")
        assert await wait_for(lambda: rig.live_state() is None)

    run_rig(tmp_path, far, scenario)


def test_a_hook_flash_on_the_pin_holds_and_resumes_and_a_missed_call_is_seen_in_history(
    tmp_path: Path, far: Daemon
) -> None:
    """The hook flash through the real hook adapter (a 0.3 s dip of the pin): the far daemon
    is put on hold and taken back; a long 5 opens the call menu; a missed call is counted from
    the database and seen when the history is opened."""

    async def scenario(rig: Rig) -> None:
        number = derive_number(IDENTITY.public_key)
        await asyncio.to_thread(cli, far.data, "dial", number, check=False)
        assert await wait_for(lambda: rig.live_state() is CallState.INCOMING)
        rig.hook(True)
        assert await wait_for(lambda: rig.live_state() is CallState.ACTIVE)
        rig.hook(False)  # a flash: hold, and a dial tone for a new call
        await asyncio.sleep(0.3)
        rig.hook(True)
        assert await wait_for(lambda: rig.live_state() is CallState.HELD)
        assert await wait_for_daemon(lambda: far.status()["calls"][0]["held_by_peer"])
        screen = rig.ui.screen()
        assert isinstance(screen, DialScreen) and screen.hint == "New call: number"
        rig.hook(False)  # a second flash, nothing dialled: back to the call
        await asyncio.sleep(0.3)
        rig.hook(True)
        assert await wait_for(lambda: rig.live_state() is CallState.ACTIVE)
        assert await wait_for_daemon(lambda: not far.status()["calls"][0]["held_by_peer"])
        await rig.press("5", hold=1.0)
        menu = rig.ui.screen()
        assert isinstance(menu, MenuScreen) and menu.title == "Call" and "Hold" in menu.items
        await rig.press("*")
        assert isinstance(rig.ui.screen(), CallScreen)
        rig.hook(False)  # down for good: hung up
        assert await wait_for_daemon(lambda: call_state(far) == "ended")
        await asyncio.to_thread(cli, far.data, "dial", number, check=False)
        assert await wait_for(lambda: rig.live_state() is CallState.INCOMING)
        await asyncio.to_thread(cli, far.data, "hangup")
        assert await wait_for(lambda: rig.phone.db.missed_unseen() == 1)
        assert await wait_for(lambda: rig.ui.missed == 1 and rig.led("message") == "flash")
        await rig.press("*")  # Call ended: back to idle
        await rig.press("*85")  # the menu, History
        history = rig.ui.screen()
        assert isinstance(history, MenuScreen) and history.title == "History"
        assert history.items[0].startswith("!") and history.hint.startswith("missed")
        assert await wait_for(lambda: rig.phone.db.missed_unseen() == 0)

    run_rig(tmp_path, far, scenario)


def test_a_bouncing_key_counts_once_a_long_press_means_more_and_held_keys_repeat(
    tmp_path: Path,
) -> None:
    async def scenario(rig: Rig) -> None:
        assert rig.matrix is not None
        # A contact that bounces for 8 ms (edges 2 ms apart, under the 20 ms debounce)
        for _ in range(4):
            rig.matrix.press("7")
            await asyncio.sleep(0.001)
            rig.matrix.release("7")
            await asyncio.sleep(0.001)
        rig.matrix.press("7")
        await asyncio.sleep(PRESS_S)
        rig.matrix.release("7")
        assert await wait_for(lambda: isinstance(rig.ui.screen(), DialScreen))
        await asyncio.sleep(0.2)
        assert rig.ui.screen().digits == "7"  # one 7: the bounces were filtered
        await rig.press("*", hold=1.0)  # long *: cancel dialling
        assert await wait_for(lambda: isinstance(rig.ui.screen(), IdleScreen))
        await rig.press("0", hold=1.0)  # long 0: my number
        page = rig.ui.screen()
        assert isinstance(page, TextScreen) and page.title == "My number"
        await rig.press("*")
        await rig.press("*")  # the menu; held 8 moves on by itself
        items = len(rig.ui.screen().items)
        await rig.press("8", hold=0.02 + 0.8 + 0.15 * 3 + 0.07)
        assert rig.ui.screen().selected == 5 % items
        assert await wait_for(lambda: rig.shows(rig.ui.screen()))

    run_rig(tmp_path, None, scenario)


def test_a_hotline_handset_calls_when_lifted_and_hangs_up_when_put_down(
    tmp_path: Path, far: Daemon
) -> None:
    """The kiosk: the hotline pin map (a hook switch and two LEDs, nothing else)."""

    async def scenario(rig: Rig) -> None:
        assert rig.phone.handset is not None and rig.phone.handset.status()["keypad"] is False
        rig.hook(True)
        assert await wait_for_daemon(lambda: call_state(far) == "incoming")
        assert rig.led("ring") == "on"
        await asyncio.to_thread(cli, far.data, "answer")
        assert await wait_for(lambda: rig.live_state() is CallState.ACTIVE)
        rig.hook(False)
        assert await wait_for_daemon(lambda: call_state(far) == "ended")
        assert await wait_for(lambda: rig.live_state() is None)
        assert await wait_for(lambda: rig.led("ring") == "off")

    run_rig(tmp_path, far, scenario, pinmap="hotline", hotline=far.number, display=False)


class FailingPanel:
    """A display that takes ``good`` pictures and then stops answering, as an unplugged
    panel does (every call raises ``DisplayError``)."""

    def __init__(self, good: int) -> None:
        self.good = good
        self.shown = 0
        self.closed = False

    @property
    def size(self) -> tuple[int, int]:
        return (128, 64)

    def show(self, image: object) -> None:
        if self.shown >= self.good:
            raise DisplayError("I2C: [Errno 121] Remote I/O error")
        self.shown += 1

    def contrast(self, level: int) -> None:
        pass

    def sleep(self) -> None:
        pass

    def wake(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_a_display_that_fails_leaves_a_working_headless_phone_that_says_so_once(
    tmp_path: Path, far: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    panel = FailingPanel(good=2)

    def prepare(hw: Hardware) -> None:
        hw.display = panel

    async def scenario(rig: Rig) -> None:
        await rig.press("12")  # two pictures taken, the third fails
        handset = rig.phone.handset
        assert handset is not None
        assert await wait_for(lambda: not handset.status()["display"])
        await rig.press("3*")  # keys still work, nothing more is drawn
        status = await asyncio.to_thread(cli_json, rig.phone.paths.data, "status")
        assert status["handset"]["display"] is False
        assert status["handset"]["problems"] == ["display: I2C: [Errno 121] Remote I/O error"]
        assert panel.closed and panel.shown == 2
        # the phone itself goes on: a call still works
        number = derive_number(IDENTITY.public_key)
        await asyncio.to_thread(cli, far.data, "dial", number, check=False)
        assert await wait_for(lambda: rig.live_state() is CallState.INCOMING)
        rig.hook(True)
        assert await wait_for_daemon(lambda: call_state(far) == "active")
        rig.hook(False)
        assert await wait_for_daemon(lambda: call_state(far) == "ended")

    run_rig(tmp_path, far, scenario, display=False, prepare=prepare)
    said = [r for r in caplog.records if "headless" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in said]


def test_without_a_keypad_the_control_api_still_places_calls(tmp_path: Path, far: Daemon) -> None:
    async def scenario(rig: Rig) -> None:
        status = await asyncio.to_thread(cli_json, rig.phone.paths.data, "status")
        assert status["handset"]["keypad"] is False and status["handset"]["hook"] is True
        await asyncio.to_thread(cli, rig.phone.paths.data, "dial", far.number, check=False)
        assert await wait_for_daemon(lambda: call_state(far) == "incoming")
        await asyncio.to_thread(cli, rig.phone.paths.data, "hangup")
        assert await wait_for_daemon(lambda: call_state(far) == "ended")

    def no_keypad(hw: Hardware) -> None:
        assert hw.keys is not None
        hw.keys.close()
        hw.keys = None

    run_rig(tmp_path, far, scenario, prepare=no_keypad)


def test_a_handset_unplugged_from_a_pi_pin_map_opens_the_rest(tmp_path: Path) -> None:
    """A part whose pins are taken (here by a stale device on the hook pin) is left out and
    named; the others open."""
    factory = MockFactory()
    spec = dataclasses.replace(load_pinmap("desk-4x3"), display=None)
    from gpiozero import DigitalInputDevice

    squatter = DigitalInputDevice(spec.hook.pin, pin_factory=factory)  # type: ignore[union-attr]
    config = Config().override(LOOPBACK)
    hw = open_hardware(config, pin_factory=factory, pinmap=spec)
    try:
        assert hw.hook is None and hw.keys is not None and hw.leds is not None
        assert len(hw.problems) == 1 and hw.problems[0].startswith("hook switch:")
    finally:
        hw.close()
        squatter.close()
        factory.reset()
