"""Which handset a phone opens (peerline.app.hardware): ``auto``, the pin map's parts, and the
emulator's terminal."""

import io
import os
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from peerline.app.hardware import on_raspberry_pi, open_hardware, resolve_kind
from peerline.store.config import Config


def test_auto_is_the_emulator_only_in_a_terminal(tmp_path: Path) -> None:
    r, w = os.openpty()
    try:
        with open(r, closefd=False) as tty_in, open(w, "w", closefd=False) as tty_out:
            assert resolve_kind("auto", stdin=tty_in, stdout=tty_out) in ("emulator", "pi")
            assert resolve_kind("auto", stdin=tty_in, stdout=io.StringIO()) in ("none", "pi")
            assert resolve_kind("none", stdin=tty_in, stdout=tty_out) == "none"
    finally:
        os.close(r)
        os.close(w)


def test_a_raspberry_pi_is_known_by_its_device_tree(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    assert on_raspberry_pi(model)
    model.write_bytes(b"QEMU Virtual Machine\x00")
    assert not on_raspberry_pi(model)
    assert not on_raspberry_pi(tmp_path / "missing")


def test_a_pi_handset_opens_its_pin_maps_parts_and_leaves_out_a_missing_display() -> None:
    factory = MockFactory()
    config = Config().override({"hardware.kind": "pi", "hardware.pinmap": "desk-4x4"})
    hw = open_hardware(config, pin_factory=factory)
    try:
        assert hw.kind == "pi" and hw.soft_keys
        assert hw.keys is not None and hw.hook is not None and hw.leds is not None
        # no I2C bus on this machine: the display is named as a problem, the rest works
        assert hw.display is None or hw.problems == []
        if hw.display is None:
            assert len(hw.problems) == 1 and hw.problems[0].startswith("display:")
    finally:
        hw.close()
        factory.reset()


def test_none_opens_nothing() -> None:
    hw = open_hardware(Config().override({"hardware.kind": "none"}))
    assert (hw.kind, hw.keys, hw.hook, hw.leds, hw.display) == ("none", None, None, None, None)
