"""The handset on a running phone: the adapters' edges into ``HandsetUI``, its commands into
the phone core, its screen to the display's thread, its LEDs to the pins.

All of it runs on the event loop but what must not: key and hook edges arrive on the adapters'
threads and are passed over with ``call_soon_threadsafe``; pictures go to ``ScreenWorker``'s
thread (an I2C frame takes longer than an audio period). A UI bug is logged and the phone goes
on: the handset must never take the calls, the network or the audio down with it.
"""

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from peerline.errors import HardwareError, StoreError
from peerline.proto.phone import Command, CommandRejected, PhoneEvent
from peerline.runtime.screen import ScreenWorker
from peerline.store.config import Config
from peerline.store.db import Database
from peerline.ui.coreview import CoreView
from peerline.ui.handset import HandsetConfig, HandsetUI
from peerline.ui.model import HandsetSettings, HistoryEntry, MessageInfo, history_trust
from peerline.ui.screens import Screen

from .hardware import Hardware

if TYPE_CHECKING:
    from .daemon import Phone

log = logging.getLogger("peerline")

SETTINGS_STATE = "handset"
"""The database state entry that keeps ``HandsetSettings`` (JSON)."""


def wall_clock(_now: float) -> str:
    """The idle screen's clock: local wall time (the UI's own times are monotonic)."""
    return time.strftime("%H:%M")


def wall_time(_now: float) -> float:
    """Wall-clock seconds, for what the UI asks the core to store (when a SAS was verified)."""
    return time.time()


def short_time(at: float, now: float) -> str:
    """When a call in the history was: 'HH:MM' today, else the day ('03 Mar'), local time."""
    then, today = time.localtime(at), time.localtime(now)
    same_day = (then.tm_year, then.tm_yday) == (today.tm_year, today.tm_yday)
    return time.strftime("%H:%M" if same_day else "%d %b", then)


class DbCallLog:
    """The call history in the phone's database (written by ``Persistence``), for the UI. A
    store that fails reads as empty (logged): the handset goes on without its history."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def history(self, limit: int) -> list[HistoryEntry]:
        try:
            contacts = {c.number: c for c in self.db.contacts()}
            rows = self.db.calls(limit)
        except StoreError as exc:
            log.warning("handset: cannot read the call history: %s", exc)
            return []
        now = time.time()
        out = []
        for row in rows:
            card = contacts.get(row.number) if row.number else None
            trust = history_trust(
                verified=row.verified,
                contact=card is not None,
                pinned=None if card is None else card.public_key,
                key=row.peer_key,
            )
            out.append(
                HistoryEntry(
                    incoming=row.direction == "in",
                    outcome=row.outcome,
                    number=row.number,
                    target=row.target,
                    contact=None if card is None else card.name,
                    trust=trust,
                    when=short_time(row.started_at, now),
                )
            )
        return out

    def missed_unseen(self) -> int:
        try:
            return self.db.missed_unseen()
        except StoreError as exc:
            log.warning("handset: cannot count missed calls: %s", exc)
            return 0

    def mark_missed_seen(self) -> None:
        try:
            self.db.mark_missed_seen()
        except StoreError as exc:
            log.warning("handset: cannot mark missed calls seen: %s", exc)


class Handset:
    """``HandsetUI`` wired to ``phone`` and ``hardware``. Then: ``start``, ``close``."""

    def __init__(self, phone: "Phone", hardware: Hardware) -> None:
        self.phone = phone
        self.hardware = hardware
        self.ui: HandsetUI | None = None
        self.problems = list(hardware.problems)
        "Parts that failed, at start or since (the display): ``status`` shows them."
        self.errors = 0
        "UI calls that raised (logged; the phone went on)."
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._driving = False
        self._last_now = 0.0
        self._screen: ScreenWorker | None = None
        self._shown: Screen | None = None
        self._awake: bool | None = None
        self._contrast: int | None = None
        self._leds: dict[str, str] = {}
        self._calls: DbCallLog | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        hw, phone, db = self.hardware, self.phone, self.phone.db
        now = self._last_now = loop.time()
        self._calls = calls = DbCallLog(db)
        view = CoreView(
            phone.core,
            name=phone.config.phone.name,
            clock=loop.time,
            messages=lambda limit: _messages(db, limit),
            calls=calls,
        )
        config = HandsetConfig(
            hotline=phone.config.hardware.hotline,
            notice=boot_notice(phone.boot_import),
            soft_keys=hw.soft_keys,
            has_display=hw.display is not None,
        )
        settings = HandsetSettings.from_json(db.get_state(SETTINGS_STATE))
        self.ui = HandsetUI(
            view=view,
            clock=wall_clock,
            wall=wall_time,
            config=config,
            settings=settings,
            now=now,
        )
        if hw.display is not None:
            self._screen = ScreenWorker(hw.display, on_failed=self._display_failed_threadsafe)
            self._screen.start()
        if hw.keys is not None:
            self._start_part("keypad", hw.keys.start, self._key_threadsafe)
        if hw.hook is not None:
            self._start_part("hook switch", hw.hook.start, self._hook_threadsafe)
        for problem in self.problems:
            log.warning("handset: %s", problem)
        self._drive()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._screen is not None:
            self._screen.close()
        self.hardware.close()

    def reconfigure(self, config: Config) -> None:
        """A reloaded configuration: the hotline number and the phone's name."""
        ui = self.ui
        if ui is None:
            return
        ui.config = dataclasses.replace(ui.config, hotline=config.hardware.hotline)
        if isinstance(ui.phone, CoreView):
            ui.phone.name = config.phone.name
        self._drive()

    def status(self) -> dict[str, Any]:
        hw = self.hardware
        screen = self._screen
        return {
            "kind": hw.kind,
            "keypad": hw.keys is not None,
            "hook": hw.hook is not None,
            "leds": hw.leds is not None,
            "display": screen is not None and screen.failed is None,
            "frames_shown": screen.frames_shown if screen is not None else 0,
            "problems": list(self.problems),
            "errors": self.errors,
        }

    # -- inputs -------------------------------------------------------------------------------
    def phone_event(self, event: PhoneEvent) -> None:
        """Every event the core hands out (from the shell's dispatch: commands wait a turn)."""
        ui, loop = self.ui, self._loop
        if ui is None or loop is None:
            return
        self._guard("phone event", lambda now: ui.phone_event(event, now=now))
        self._drive_soon()

    def audio_device(self, present: bool) -> None:
        """The sound device went away (a headset unplugged) or came back, in a call."""
        ui = self.ui
        if ui is not None:
            self._guard("audio", lambda now: ui.audio_device(present, now=now))
            self._drive_soon()

    def _key_threadsafe(self, key: str, down: bool, at: float) -> None:
        self._threadsafe(self._key, key, down, at)

    def _hook_threadsafe(self, off_hook: bool, at: float) -> None:
        self._threadsafe(self._hook, off_hook, at)

    def _display_failed_threadsafe(self, error: Exception) -> None:
        self._threadsafe(self._display_failed, error)

    def _threadsafe(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed: the phone is stopping
                loop.call_soon_threadsafe(fn, *args)

    def _key(self, key: str, down: bool, at: float) -> None:
        ui = self.ui
        if ui is not None:
            self._guard("key", lambda now: ui.key_edge(key, down, now=now), at)
            self._drive()

    def _hook(self, off_hook: bool, at: float) -> None:
        ui = self.ui
        if ui is not None:
            self._guard("hook", lambda now: ui.hook_edge(off_hook, now=now), at)
            self._drive()

    def _display_failed(self, error: Exception) -> None:
        problem = f"display: {error}"
        log.warning("handset: %s; the phone goes on headless", problem)
        self.problems.append(problem)
        self._screen = None

    # -- the UI's outputs ---------------------------------------------------------------------
    def _drive_soon(self) -> None:
        loop = self._loop
        if loop is not None and not self._driving:
            self._driving = True
            loop.call_soon(self._drive)

    def _drive(self) -> None:
        """After any input: the UI's commands to the core, then the screen, LEDs, settings
        and the next timer."""
        self._driving = False
        ui, loop = self.ui, self._loop
        if ui is None or loop is None:
            return
        core = self.phone.core
        sent = False
        for command in ui.commands_to_send():
            now = loop.time()
            try:
                core.handle(command, now=now)
            except CommandRejected as exc:
                self._rejected(ui, command, exc)
            sent = True
        if sent:
            self.phone.poke()
        self._guard("outputs", lambda _now: self._outputs(ui))
        self._arm(ui, loop)

    def _rejected(self, ui: HandsetUI, command: Command, exc: CommandRejected) -> None:
        self._guard("rejection", lambda now: ui.rejected(command, exc.code, exc.message, now=now))

    def _outputs(self, ui: HandsetUI) -> None:
        settings = ui.settings_to_save()
        if settings is not None:
            self.phone.store_state(SETTINGS_STATE, settings.to_json())
        if ui.missed_seen() and self._calls is not None:
            self._calls.mark_missed_seen()
        leds = self.hardware.leds
        if leds is not None:
            for name, mode in ui.leds().items():
                if self._leds.get(name) != mode:
                    self._leds[name] = mode
                    try:
                        leds.set(name, mode)
                    except HardwareError as exc:
                        log.warning("handset: LED %s: %s", name, exc)
        screen = self._screen
        if screen is None:
            return
        if ui.brightness != self._contrast:
            self._contrast = ui.brightness
            screen.set_contrast(ui.brightness)
        shown = ui.screen()
        if shown != self._shown:
            self._shown = shown
            screen.show(shown)
        if ui.display_awake != self._awake:
            self._awake = ui.display_awake
            screen.set_awake(ui.display_awake)

    def _arm(self, ui: HandsetUI, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = ui.get_timer()
        if due is not None:
            self._timer = loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self._timer = None
        ui = self.ui
        if ui is not None:
            self._guard("timer", lambda now: ui.handle_timer(now=now))
            self._drive()

    def _guard(self, what: str, fn: Any, at: float | None = None) -> None:
        """Call ``fn(now)`` with a time that never goes back; a UI bug is logged, not raised."""
        loop = self._loop
        assert loop is not None
        now = max(self._last_now, loop.time() if at is None else at)
        self._last_now = now
        try:
            fn(now)
        except Exception:
            self.errors += 1
            log.exception("handset: the UI failed on a %s; the phone goes on", what)

    def _start_part(self, what: str, start: Callable[[Any], None], on_edge: Any) -> None:
        try:
            start(on_edge)
        except (HardwareError, OSError) as exc:
            self.problems.append(f"{what}: {exc}")


def _messages(db: Database, limit: int) -> list[MessageInfo]:
    return [
        MessageInfo(
            incoming=row.direction == "in",
            number=row.peer_number,
            text=row.body,
            status=row.status,
        )
        for row in db.messages(limit)
    ]


def boot_notice(outcome: dict[str, Any] | None) -> str:
    """The idle screen's lasting line after a refused boot-partition peerline.toml."""
    if outcome is None or outcome["ok"]:
        return ""
    return "peerline.toml refused: see peerline-import.txt on the card"
