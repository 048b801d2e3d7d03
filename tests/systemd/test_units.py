"""systemd/'s units, checked by systemd itself: ``systemd-analyze verify`` says nothing about
them, and ``systemd-analyze security`` rates peerline.service at an exposure of 2.0 or lower.

Both run against a small root made for the test (the host's unit library, the units, a stand-in
for /opt/peerline/bin/peerline): ``verify`` checks that every command exists, and the host has
no Peerline installed there.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
HOST_UNITS = Path("/usr/lib/systemd/system")
MAX_EXPOSURE = 2.0

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not HOST_UNITS.is_dir(),
    reason="systemd-analyze is not installed (scripts/setup --dev installs systemd)",
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A root with the host's unit library, /bin/kill, our units and a stand-in peerline."""
    (tmp_path / "usr" / "lib" / "systemd").mkdir(parents=True)
    shutil.copytree(HOST_UNITS, tmp_path / "usr" / "lib" / "systemd" / "system", symlinks=True)
    (tmp_path / "usr" / "bin").mkdir()
    shutil.copy2(shutil.which("kill") or "/usr/bin/kill", tmp_path / "usr" / "bin" / "kill")
    (tmp_path / "lib").symlink_to("usr/lib")
    (tmp_path / "bin").symlink_to("usr/bin")
    peerline = tmp_path / "opt" / "peerline" / "bin" / "peerline"
    peerline.parent.mkdir(parents=True)
    peerline.write_text("#!/bin/sh\n")
    peerline.chmod(0o755)
    system = tmp_path / "etc" / "systemd" / "system"
    system.mkdir(parents=True)
    for unit in UNITS.glob("*.service"):
        shutil.copy2(unit, system / unit.name)
    return tmp_path


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_there_are_the_phone_its_first_boot_and_its_boot_file() -> None:
    assert sorted(p.name for p in UNITS.glob("*.service")) == [
        "peerline-bootconfig.service",
        "peerline-firstboot.service",
        "peerline.service",
    ]


def test_systemd_analyze_verify_is_clean(root: Path) -> None:
    units = [f"/etc/systemd/system/{p.name}" for p in UNITS.glob("*.service")]
    proc = analyze("verify", f"--root={root}", *units)
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr


def test_a_unit_with_a_mistake_is_not_clean(root: Path) -> None:
    """The check above can fail: an unknown key is reported."""
    unit = root / "etc" / "systemd" / "system" / "peerline.service"
    unit.write_text(unit.read_text().replace("UMask=0077", "UMask=0077\nUMaks=0077"))
    proc = analyze("verify", f"--root={root}", "/etc/systemd/system/peerline.service")
    assert "UMaks" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "unit", ["peerline.service", "peerline-firstboot.service", "peerline-bootconfig.service"]
)
def test_security_exposure_is_at_most_two(root: Path, unit: str) -> None:
    proc = analyze(
        "security",
        "--offline=true",
        f"--root={root}",
        f"--threshold={int(MAX_EXPOSURE * 10)}",
        "--no-pager",
        unit,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", proc.stdout)
    assert found, proc.stdout + proc.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE
    assert proc.returncode == 0, proc.stdout[-2000:]
