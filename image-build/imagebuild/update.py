"""``image-build/update-card``: put a new image on a phone's card and keep the phone's data.

Every image has the same layout (``layout.py``): the partition table, the boot partition and
the read-only root come first, the data partition (identity, configuration, history) after
them at a fixed place. An update writes the new image's bytes up to the data partition and
leaves the data partition, and anything after it, as it is. It refuses a card whose data
partition is not where the new image expects it, and a card that is mounted.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from .layout import SECTOR

CHUNK = 4 * 1024 * 1024


def partitions(path: Path) -> list[tuple[int, int]]:
    """(start, size) in bytes of each partition in the MBR of ``path`` (a file or a device)."""
    out = subprocess.run(
        ["sfdisk", "--json", str(path)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"update-card: {path}: no partition table: {out.stderr.strip()}")
    parts = json.loads(out.stdout)["partitiontable"]["partitions"]
    return [(int(p["start"]) * SECTOR, int(p["size"]) * SECTOR) for p in parts]


def check_sha256(image: Path) -> None:
    listed = image.with_name(image.name + ".sha256")
    if not listed.exists():
        print(f"update-card: no {listed.name}; the image is not checked", file=sys.stderr)
        return
    want = listed.read_text().split()[0]
    h = hashlib.sha256()
    with image.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    if h.hexdigest() != want:
        raise SystemExit(f"update-card: {image} does not match {listed.name}: damaged download?")


def update(image: Path, card: Path) -> int:
    """Write ``image`` over ``card`` up to the data partition; the bytes written."""
    new, old = partitions(image), partitions(card)
    if len(new) != 3 or len(old) < 3:
        raise SystemExit("update-card: not a Peerline image or card (three partitions expected)")
    if new[2] != old[2]:
        raise SystemExit(
            f"update-card: the card's data partition is at {old[2][0]} (+{old[2][1]}) but the "
            f"image puts it at {new[2][0]} (+{new[2][1]}): a full flash is needed (the data "
            "would be lost; see image-build/README.md)"
        )
    end = new[2][0]
    written = 0
    with image.open("rb") as src, card.open("r+b") as dst:
        while written < end:
            chunk = src.read(min(CHUNK, end - written))
            if not chunk:
                raise SystemExit(f"update-card: {image} ends before its data partition")
            dst.write(chunk)
            written += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return written


def _mounted(card: Path) -> bool:
    name = card.resolve().name
    with open("/proc/mounts") as f:
        return any(line.split()[0].startswith(f"/dev/{name}") for line in f if line.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="image-build/update-card", description=__doc__.split("\n")[0]
    )
    parser.add_argument("image", type=Path, help="peerline-<version>-arm64.img")
    parser.add_argument("card", type=Path, help="the card's device (/dev/sdX, /dev/mmcblkN)")
    args = parser.parse_args(argv)
    if args.card.exists() and args.card.resolve().is_block_device() and _mounted(args.card):
        raise SystemExit(f"update-card: {args.card} is mounted; unmount its partitions first")
    check_sha256(args.image)
    written = update(args.image, args.card)
    subprocess.run(["sync"], check=False)
    print(f"update-card: wrote {written / 1e6:.0f} MB; the data partition was left as it was")
    return 0


if __name__ == "__main__":
    sys.exit(main())
