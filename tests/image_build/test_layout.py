"""Partition layout and identifiers: fixed by the version, the same for every build."""

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from imagebuild.layout import (
    ALIGN,
    BOOT_SIZE,
    DATA_SIZE,
    MIB,
    ROOT_SIZE,
    disk_id,
    fat_volume_id,
    fs_uuid,
    plan_layout,
)

REPO = Path(__file__).resolve().parents[2]


def test_ids_are_fixed_by_the_version_and_differ_between_versions() -> None:
    assert disk_id("0.1.0") == disk_id("0.1.0") != disk_id("0.2.0")
    assert len(disk_id("0.1.0")) == 8 and int(disk_id("0.1.0"), 16) != 0
    u = uuid.UUID(fs_uuid("0.1.0", "data"))
    assert u.version == 4 and str(u) == fs_uuid("0.1.0", "data") != fs_uuid("0.1.0", "x")
    assert len(fat_volume_id("0.1.0")) == 8


def test_every_version_puts_the_data_partition_at_the_same_place() -> None:
    a, b = plan_layout("0.1.0"), plan_layout("9.9.9")
    assert (a.data_start, a.data_size) == (b.data_start, b.data_size)
    assert a.boot_start == ALIGN and a.boot_size == BOOT_SIZE
    assert a.root_start == a.boot_start + BOOT_SIZE and a.root_size == ROOT_SIZE
    assert a.data_size == DATA_SIZE and a.image_size <= 1500 * 1000 * 1000
    assert all(x % ALIGN == 0 for x in (a.boot_start, a.root_start, a.data_start))
    assert a.partuuid(2) == f"{a.disk_id}-02"


@pytest.mark.skipif(shutil.which("sfdisk") is None, reason="sfdisk is not installed (fdisk)")
def test_sfdisk_writes_the_table_we_planned(tmp_path: Path) -> None:
    layout = plan_layout("0.1.0")
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(layout.image_size)
    subprocess.run(
        ["sfdisk", "--no-reread", "--no-tell-kernel", "-q", str(image)],
        input=layout.sfdisk_script(),
        text=True,
        check=True,
    )
    table = json.loads(subprocess.check_output(["sfdisk", "--json", str(image)]))
    table = table["partitiontable"]
    assert table["label"] == "dos" and table["id"] == f"0x{layout.disk_id}"
    parts = [(p["start"] * 512, p["size"] * 512, p["type"]) for p in table["partitions"]]
    assert parts == [
        (layout.boot_start, layout.boot_size, "c"),
        (layout.root_start, layout.root_size, "83"),
        (layout.data_start, layout.data_size, "83"),
    ]
    assert table["partitions"][0].get("bootable") is True
    assert layout.image_size == 1284 * MIB


def test_the_appliance_files_name_all_three_partitions() -> None:
    fstab = (REPO / "image-build" / "rootfs" / "etc" / "fstab").read_text()
    for key, mount in (("@ROOT@", "/"), ("@BOOT@", "/boot/firmware"), ("@DATA@", "/data")):
        assert any(line.split()[:2] == [key, mount] for line in fstab.splitlines() if line), key
    assert (
        "@ROOT@"
        in (REPO / "image-build" / "rootfs" / "etc" / "default" / "raspi-firmware").read_text()
    )


def test_hw_config_txt_is_the_build_guides_block() -> None:
    """hw/README.md section 4 shows the lines the image puts in config.txt."""
    readme = (REPO / "hw" / "README.md").read_text()
    block = readme.split("```ini\n", 1)[1].split("```", 1)[0]
    shipped = [
        line
        for line in (REPO / "hw" / "config.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    shown = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert shipped == shown
