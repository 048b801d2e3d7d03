"""Which handset this phone has, opened: the pin map's parts on a Pi, the terminal in the
emulator, or nothing (headless).

``hardware.kind`` picks: ``"pi"`` (the pin map in ``hardware.pinmap``), ``"emulator"`` (this
terminal's keyboard and a drawing of the screen), ``"none"``, or ``"auto"``: a Pi when the
device tree says so, else the emulator when both stdin and stdout are a terminal, else none.

A part that fails to open is left out and named in ``Hardware.problems``; the phone goes on
with the rest (no display: headless; no keypad: the control API still works). Only a pin map
that cannot be read stops the phone: that is a configuration error.
"""

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from peerline.errors import ConfigError, HardwareError
from peerline.ports import Display, HookInput, Indicators, KeyInput
from peerline.store.config import Config
from peerline.store.pinmap import PinMap, load_pinmap

log = logging.getLogger("peerline")

DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
CLEAR = "\x1b[2J"
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"


@dataclass(slots=True, kw_only=True)
class Hardware:
    """The handset's parts that opened. Close with ``close``."""

    kind: str
    "'pi', 'emulator' or 'none' (what ``auto`` became)."
    keys: KeyInput | None = None
    hook: HookInput | None = None
    leds: Indicators | None = None
    display: Display | None = None
    soft_keys: bool = False
    "The keypad has A-D (a 4x4 pad, or the emulator's letters and arrows)."
    problems: list[str] = field(default_factory=list)
    "Parts that failed to open, one line each (logged once, shown in ``status``)."
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception as exc:  # closing must not stop the phone's shutdown
                log.warning("handset: closing a part failed: %s", exc)
        self.closers.clear()


def resolve_kind(kind: str, *, stdin: TextIO, stdout: TextIO, where: str = "") -> str:
    """``auto`` made concrete (see the module docstring); other kinds as they are, but the
    emulator only in a terminal (``where`` says where it was asked for, for the error).

    :raises ConfigError: ``emulator`` without a terminal to draw in and read keys from.
    """
    if kind == "emulator" and not (_is_tty(stdin) and _is_tty(stdout)):
        origin = f" ({where})" if where else ""
        raise ConfigError(
            f'hardware.kind = "emulator"{origin} draws the phone in a terminal, but stdin and'
            " stdout are not one: run it in a terminal, or use --hw none (headless)"
        )
    if kind != "auto":
        return kind
    if on_raspberry_pi():
        return "pi"
    if _is_tty(stdin) and _is_tty(stdout):
        return "emulator"
    return "none"


def on_raspberry_pi(model_file: Path = DEVICE_TREE_MODEL) -> bool:
    try:
        return "Raspberry Pi" in model_file.read_text(errors="replace")
    except OSError:
        return False


def open_hardware(
    config: Config,
    *,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    pin_factory: Any = None,
    pinmap: PinMap | None = None,
) -> Hardware:
    """Open the handset ``config`` asks for. ``pin_factory``: gpiozero's (None: its default,
    lgpio on a Pi; tests pass a ``MockFactory``). ``pinmap``: instead of ``hardware.pinmap``.

    :raises ConfigError: the pin map cannot be read.
    """
    kind = resolve_kind(config.hardware.kind, stdin=stdin, stdout=stdout)
    log.info("handset: %s", kind)
    if kind == "pi":
        return _open_pi(pinmap or load_pinmap(config.hardware.pinmap), pin_factory)
    if kind == "emulator":
        return _open_emulator(stdin, stdout)
    return Hardware(kind="none")


def _open_pi(pinmap: PinMap, pin_factory: Any) -> Hardware:
    from peerline.adapters.gpio import HookSwitch, Leds, MatrixKeypad  # noqa: PLC0415

    hw = Hardware(kind="pi")
    if pinmap.keypad is not None:
        kp = pinmap.keypad
        hw.soft_keys = "A" in kp.keys
        _try(
            hw,
            "keypad",
            lambda: MatrixKeypad(
                rows=kp.rows, columns=kp.columns, layout=kp.layout, pin_factory=pin_factory
            ),
            lambda part: setattr(hw, "keys", part),
        )
    if pinmap.hook is not None:
        hook = pinmap.hook
        _try(
            hw,
            "hook switch",
            lambda: HookSwitch(
                pin=hook.pin,
                off_hook_when_high=hook.off_hook == "high",
                pull_up=hook.pull == "up",
                pin_factory=pin_factory,
            ),
            lambda part: setattr(hw, "hook", part),
        )
    if pinmap.leds is not None and pinmap.leds.pins:
        leds = pinmap.leds
        _try(
            hw,
            "LEDs",
            lambda: Leds(leds.pins, active_high=leds.active_high, pin_factory=pin_factory),
            lambda part: setattr(hw, "leds", part),
        )
    if pinmap.display is not None:
        spec = pinmap.display

        def open_display() -> Display:
            from peerline.adapters.display import OledDisplay  # noqa: PLC0415

            return OledDisplay.open(
                driver=spec.driver,
                bus=spec.bus,
                address=spec.address,
                rotate=spec.rotate,
                width=spec.width,
                height=spec.height,
            )

        _try(hw, "display", open_display, lambda part: setattr(hw, "display", part))
    return hw


def _try(
    hw: Hardware, what: str, open_part: Callable[[], Any], keep: Callable[[Any], None]
) -> None:
    try:
        part = open_part()
    except (HardwareError, OSError, ValueError) as exc:
        hw.problems.append(f"{what}: {exc}")
        log.warning("handset: no %s (%s); the phone goes on without it", what, exc)
        return
    keep(part)
    hw.closers.append(part.close)


def _open_emulator(stdin: TextIO, stdout: TextIO) -> Hardware:
    from peerline.adapters.display import TerminalDisplay  # noqa: PLC0415
    from peerline.adapters.terminal import KEYS_HELP, TerminalInput  # noqa: PLC0415

    terminal = TerminalInput(stdin.fileno())
    display = TerminalDisplay(stdout)
    hw = Hardware(kind="emulator", keys=terminal.keys, hook=terminal.hook, soft_keys=True)
    hw.display = display
    # A clean terminal, the keys under the picture (row 35: the picture and its frame take
    # 34), the cursor hidden; all put back at close.
    rows = display.size[1] // 2 + 2
    stdout.write(f"{CLEAR}{HIDE_CURSOR}\x1b[{rows + 1};1H{KEYS_HELP}\x1b[H")
    stdout.flush()

    def restore() -> None:
        stdout.write(f"\x1b[{rows + 2};1H{SHOW_CURSOR}\n")
        stdout.flush()

    hw.closers += [restore, terminal.close, display.close]
    return hw


def _is_tty(stream: TextIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor (a test's StringIO)
        return False
