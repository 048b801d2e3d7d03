"""update-card on image files: the data partition survives, a moved one is refused."""

import shutil
import subprocess
from pathlib import Path

import pytest

from imagebuild.layout import MIB, Layout, disk_id
from imagebuild.update import main, update

pytestmark = pytest.mark.skipif(shutil.which("sfdisk") is None, reason="needs sfdisk (fdisk)")


def small_layout(version: str, *, shift: int = 0) -> Layout:
    """The real layout's shape in a few MB (the real one is 1.3 GB)."""
    return Layout(
        disk_id=disk_id(version),
        boot_start=MIB,
        boot_size=2 * MIB,
        root_start=3 * MIB,
        root_size=3 * MIB,
        data_start=6 * MIB + shift,
        data_size=2 * MIB,
    )


def make_image(path: Path, version: str, fill: int, *, shift: int = 0) -> None:
    layout = small_layout(version, shift=shift)
    script = layout.sfdisk_script()
    size = layout.image_size
    with path.open("wb") as f:
        f.truncate(size)
    subprocess.run(
        ["sfdisk", "--no-reread", "--no-tell-kernel", "-q", str(path)],
        input=script,
        text=True,
        check=True,
    )
    with path.open("r+b") as f:  # a recognisable byte at the start of each partition
        for start in (layout.boot_start, layout.root_start, layout.data_start):
            f.seek(start)
            f.write(bytes([fill]) * MIB)


def byte_at(path: Path, offset: int) -> int:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(1)[0]


def test_update_replaces_boot_and_root_and_keeps_data(tmp_path: Path) -> None:
    card, new = tmp_path / "card.img", tmp_path / "new.img"
    make_image(card, "0.1.0", 0x11)
    make_image(new, "0.2.0", 0x22)
    layout = small_layout("0.2.0")
    written = update(new, card)
    assert written == layout.data_start
    assert byte_at(card, layout.boot_start) == 0x22
    assert byte_at(card, layout.root_start) == 0x22
    assert byte_at(card, layout.data_start) == 0x11  # the phone's data, untouched
    disk = subprocess.check_output(["sfdisk", "--disk-id", str(card)], text=True).strip()
    assert disk == f"0x{layout.disk_id}"  # the new image's partition names


def test_update_refuses_a_card_whose_data_partition_moved(tmp_path: Path) -> None:
    card, new = tmp_path / "card.img", tmp_path / "new.img"
    layout = small_layout("0.1.0")
    make_image(card, "0.1.0", 0x11, shift=MIB)
    make_image(new, "0.2.0", 0x22)
    before = card.read_bytes()[: layout.boot_start + MIB]
    with pytest.raises(SystemExit, match="full flash"):
        update(new, card)
    assert card.read_bytes()[: layout.boot_start + MIB] == before


def test_a_damaged_download_is_refused(tmp_path: Path) -> None:
    card, new = tmp_path / "card.img", tmp_path / "new.img"
    make_image(card, "0.1.0", 0x11)
    make_image(new, "0.2.0", 0x22)
    (tmp_path / "new.img.sha256").write_text("0" * 64 + "  new.img\n")
    with pytest.raises(SystemExit, match="damaged"):
        main([str(new), str(card)])
    assert byte_at(card, small_layout("0.1.0").boot_start) == 0x11
