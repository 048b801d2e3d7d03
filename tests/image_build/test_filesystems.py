"""The boot and data filesystems come out the same to the byte, whatever the build machine's
clock, file order or timing: the reproducibility the image's acceptance rests on."""

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from imagebuild.build import clamp_times, make_data, make_fat
from imagebuild.layout import plan_layout

EPOCH = "1765000000"
needs = [shutil.which(tool) for tool in ("mkfs.vfat", "mcopy", "mke2fs", "debugfs")]
pytestmark = pytest.mark.skipif(
    None in needs, reason="needs dosfstools, mtools and e2fsprogs (scripts/setup --dev)"
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def boot_tree(top: Path, order: list[str]) -> Path:
    """Files made in a given order and at the build's own (varying) time."""
    for name in order:
        path = top / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"contents of {name}\n" * 50)
    return top


def test_fat_is_the_same_whatever_the_order_and_time(tmp_path: Path) -> None:
    names = ["config.txt", "overlays/README", "start4.elf", "bcm2711-rpi-4-b.dtb", "cmdline.txt"]
    layout = plan_layout("0.1.0")
    images = []
    for run_name, order in (("a", names), ("b", list(reversed(names)))):
        tree = boot_tree(tmp_path / run_name / "boot", order)
        clamp_times([tree], int(EPOCH))
        fat = tmp_path / run_name / "boot.vfat"
        make_fat(fat, tree, layout, "0.1.0", EPOCH)
        images.append(fat)
        time.sleep(1.1)  # a second build, a later second
    assert digest(images[0]) == digest(images[1])
    listing = subprocess.run(
        ["mdir", "-b", "-i", str(images[0]), "::/overlays"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"MTOOLS_SKIP_CHECK": "1"},
    ).stdout
    assert "README" in listing
    check = subprocess.run(["fsck.vfat", "-n", str(images[0])], capture_output=True, check=False)
    assert check.returncode == 0, check.stdout


def test_data_partition_is_the_same_and_holds_the_phones_directories(tmp_path: Path) -> None:
    images = []
    for run_name in ("a", "b"):
        (tmp_path / run_name).mkdir()
        data = tmp_path / run_name / "data.ext4"
        make_data(data, (998, 997), '[phone]\nname = "Peerline"\n', "0.1.0", EPOCH)
        images.append(data)
        time.sleep(1.1)
    assert digest(images[0]) == digest(images[1])

    def debugfs(request: str) -> str:
        return subprocess.run(
            ["debugfs", "-R", request, str(images[0])], capture_output=True, text=True, check=True
        ).stdout

    assert 'name = "Peerline"' in debugfs("cat /etc/peerline.toml")
    stat = debugfs("stat /peerline")
    assert "User:   998" in stat and "Group:   997" in stat and "Mode:  0700" in stat
    assert "Mode:  0755" in debugfs("stat /systemd")
