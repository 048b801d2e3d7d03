"""``peerline boot-config`` on real files: what it writes, removes and leaves alone."""

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest
from daemons import cli_json, start_daemon

from peerline.app.bootconfig import REPORT_FILE_NAME, STATE_FILE_NAME, read_import_state
from peerline.app.cli import main
from peerline.app.handset import boot_notice


@pytest.fixture
def card(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "boot": tmp_path / "boot",
        "etc": tmp_path / "etc",
        "data": tmp_path / "data",
        "wifi": tmp_path / "wpa" / "wpa_supplicant-wlan0.conf",
    }
    for key in ("boot", "etc", "data"):
        paths[key].mkdir()
    return paths


def run(card: dict[str, Path]) -> int:
    return main(
        [
            "boot-config",
            "--boot",
            str(card["boot"]),
            "--config",
            str(card["etc"] / "peerline.toml"),
            "--data",
            str(card["data"]),
            "--wifi-conf",
            str(card["wifi"]),
        ]
    )


def test_import_merges_removes_the_file_and_reports(
    card: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = card["etc"] / "peerline.toml"
    config.write_text('[phone]\nname = "Old"\n[calls]\nauto_answer = true\n')
    (card["boot"] / "peerline.toml").write_text(
        '[phone]\nname = "Lobby"\n[hardware]\nhotline = "482155901736"\n'
        '[wifi]\ncountry = "DE"\nssid = "Office"\npsk = "correct horse"\n'
    )
    assert run(card) == 0
    assert tomllib.loads(config.read_text()) == {
        "phone": {"name": "Lobby"},
        "calls": {"auto_answer": True},
        "hardware": {"hotline": "482155901736"},
    }
    assert "Old" in (card["etc"] / "peerline.toml.previous").read_text()
    assert not (card["boot"] / "peerline.toml").exists()
    report = (card["boot"] / REPORT_FILE_NAME).read_text()
    assert "phone.name" in report and "hardware.hotline" in report and "wifi" in report
    assert "correct horse" not in report
    wifi = card["wifi"]
    assert stat.S_IMODE(wifi.stat().st_mode) == 0o600
    assert "ssid=" + b"Office".hex() in wifi.read_text()
    assert read_import_state(card["data"]) == {
        "ok": True,
        "errors": [],
        "imported": ["phone.name", "hardware.hotline", "wifi"],
    }
    assert "imported" in capsys.readouterr().out
    assert not [p for p in card["etc"].iterdir() if p.name.startswith(".")]  # no temp files left
    # The next boot has no file: nothing changes, and the outcome is forgotten.
    assert run(card) == 0
    assert read_import_state(card["data"]) is None
    assert tomllib.loads(config.read_text())["phone"]["name"] == "Lobby"


def test_refused_file_changes_nothing_and_says_why(
    card: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = card["etc"] / "peerline.toml"
    config.write_text('[phone]\nname = "Old"\n')
    before = config.read_bytes()
    bad = '[phone]\nname = "Lobby"\n[hardware]\nhotline = 5\n[wifi]\ncountry = "DE"\nssid = "x"\n'
    (card["boot"] / "peerline.toml").write_text(bad)
    assert run(card) == 1
    assert config.read_bytes() == before
    assert (card["boot"] / "peerline.toml").read_text() == bad  # left for the owner to fix
    assert not card["wifi"].exists()
    report = (card["boot"] / REPORT_FILE_NAME).read_text()
    assert "NOT import" in report and "hardware.hotline" in report
    state = read_import_state(card["data"])
    assert state is not None and state["ok"] is False
    assert any("hardware.hotline" in e for e in state["errors"])  # type: ignore[attr-defined]
    assert "hardware.hotline" in capsys.readouterr().out  # the console
    assert "refused" in boot_notice(state)
    assert boot_notice(None) == "" and boot_notice({"ok": True}) == ""


def test_a_broken_state_file_is_ignored(card: dict[str, Path]) -> None:
    for junk in (b"", b"[]", b'{"ok": "yes"}', b"\xff" * 10, b'{"ok": false, "errors": 5}'):
        (card["data"] / STATE_FILE_NAME).write_bytes(junk)
        state = read_import_state(card["data"])
        assert state is None or state["ok"] is False


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the state file away")
def test_owner_gets_the_state_file(card: dict[str, Path]) -> None:
    (card["boot"] / "peerline.toml").write_text('[phone]\nname = "Lobby"\n')
    args = ["boot-config", "--boot", str(card["boot"]), "--config"]
    args += [str(card["etc"] / "peerline.toml"), "--data", str(card["data"]), "--owner", "nobody"]
    assert main(args) == 0
    st = (card["data"] / STATE_FILE_NAME).stat()
    assert st.st_uid != 0
    assert json.loads((card["data"] / STATE_FILE_NAME).read_text())["ok"] is True


def test_the_running_phone_shows_a_refused_file(tmp_path: Path) -> None:
    """A real daemon: the import's outcome in ``status`` (the idle screen reads the same)."""
    data = tmp_path / "phone"
    data.mkdir()
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "peerline.toml").write_text('[hardware]\nhotline = "12"\n')
    args = ["boot-config", "--boot", str(boot), "--config", str(data / "peerline.toml")]
    assert main([*args, "--data", str(data)]) == 1
    phone = start_daemon(data)
    try:
        st = cli_json(data, "status")
        assert st["boot_config"]["ok"] is False
        assert "hardware.hotline" in st["boot_config"]["errors"][0]
        assert st["hotline"] is None
    finally:
        phone.stop()
