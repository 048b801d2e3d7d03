"""``peerline boot-config``: import a ``peerline.toml`` left on the boot partition.

Runs as root at boot, before the phone (``peerline-bootconfig.service`` in the image). The
checking and merging are ``peerline.store.bootconfig``; this module does the files, in an order
that leaves the phone with its old configuration or its new one, never half of each:

1. the merged configuration is written beside the old one and renamed over it (the old one is
   kept as ``peerline.toml.previous``); the Wi-Fi file the same way;
2. only then is the boot file removed (it may hold a Wi-Fi passphrase), and a report written in
   its place, ``peerline-import.txt``, for whoever looks at the card from a computer.

A file that fails its check stays where it is, untouched; the report lists the problems, the
console shows them, and ``DATA/boot-import.json`` tells the phone, whose display shows them.
"""

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError
from ..store.bootconfig import BOOT_FILE_NAME, MAX_BOOT_FILE_BYTES, plan_import, wpa_supplicant_conf

__all__ = ["REPORT_FILE_NAME", "STATE_FILE_NAME", "import_boot_config", "read_import_state"]

REPORT_FILE_NAME = "peerline-import.txt"
STATE_FILE_NAME = "boot-import.json"
"""In the phone's data directory: the last import's outcome, for its status and display."""


def import_boot_config(
    boot_dir: Path,
    config_path: Path,
    data_dir: Path,
    wifi_path: Path | None,
    *,
    say: Callable[[str], None],
    owner: tuple[int, int] | None = None,
) -> bool:
    """Import ``boot_dir/peerline.toml`` if there is one; False if it was refused.

    ``owner`` (uid, gid) is given the state file, so the phone's user can read it.
    """
    source = boot_dir / BOOT_FILE_NAME
    state = data_dir / STATE_FILE_NAME
    if not source.is_file():
        state.unlink(missing_ok=True)
        return True
    try:
        with source.open("rb") as f:
            boot = f.read(MAX_BOOT_FILE_BYTES + 1)
        current = config_path.read_bytes() if config_path.exists() else None
        plan = plan_import(boot, current, boot_source=str(source), current_source=str(config_path))
    except (ConfigError, OSError) as exc:
        errors = _problems(exc)
        say(f"peerline: {source} refused, nothing changed:")
        for line in errors:
            say(f"  {line}")
        _write(boot_dir / REPORT_FILE_NAME, _report(False, errors), mode=0o644)
        _write_state(state, {"ok": False, "errors": errors}, owner)
        return False
    if config_path.exists():
        shutil.copy2(config_path, config_path.with_name(config_path.name + ".previous"))
    _write(config_path, plan.config_text, mode=0o644)
    if plan.wifi is not None and wifi_path is not None:
        _write(wifi_path, wpa_supplicant_conf(plan.wifi), mode=0o600)
    elif plan.wifi is not None:
        say("peerline: [wifi] ignored: this system has no Wi-Fi configuration to write")
    source.unlink()
    _sync_dir(boot_dir)
    _write(boot_dir / REPORT_FILE_NAME, _report(True, plan.changed), mode=0o644)
    _write_state(state, {"ok": True, "imported": plan.changed}, owner)
    say(f"peerline: imported {source}: {', '.join(plan.changed) or 'nothing to change'}")
    return True


def read_import_state(data_dir: Path) -> dict[str, object] | None:
    """The last boot import's outcome, or None (no import, or an unreadable file)."""
    try:
        raw = (data_dir / STATE_FILE_NAME).read_bytes()
        value = json.loads(raw[:65536])
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("ok"), bool):
        return None
    return {
        "ok": value["ok"],
        "errors": [str(e)[:300] for e in _list(value.get("errors"))][:20],
        "imported": [str(k)[:100] for k in _list(value.get("imported"))][:50],
    }


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _problems(exc: Exception) -> list[str]:
    if isinstance(exc, OSError):
        return [f"{exc.filename}: cannot read: {exc.strerror or exc}"]
    return [line for line in str(exc).splitlines() if line]


def _report(ok: bool, lines: list[str]) -> str:
    if ok:
        head = "Peerline imported peerline.toml from this card and removed it.\nSettings changed:\n"
        body = "".join(f"  {line}\n" for line in lines) or "  (none)\n"
    else:
        head = (
            "Peerline did NOT import peerline.toml: nothing was changed. Fix the file and\n"
            "start the phone again. The problems:\n"
        )
        body = "".join(f"  {line}\n" for line in lines)
    return head + body


def _write(path: Path, text: str, *, mode: int) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, synced, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _sync_dir(path.parent)


def _write_state(path: Path, value: dict[str, object], owner: tuple[int, int] | None) -> None:
    _write(path, json.dumps(value, indent=1) + "\n", mode=0o600)
    if owner is not None:
        os.chown(path, *owner)


def _sync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # FAT through some drivers: nothing to sync on a directory
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
