"""``image-build/reproduce``: build the image twice, in separate directories, and compare.

Prints ``identical <sha256>`` when the two images agree to the byte. Otherwise it names what
differs: the partitions, then the files inside the root (squashfs, unpacked) and the boot
partition (FAT, copied out), and hands the first pair of differing files to diffoscope when it
is installed.
"""

import argparse
import filecmp
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .build import HERE, sha256, version
from .build import main as build_main
from .host import main_guard


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="image-build/reproduce", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--work", type=Path, default=HERE / "work-reproduce")
    args = parser.parse_args(argv)
    main_guard()
    top = args.work.resolve()
    images = []
    for run_name in ("a", "b"):
        out = top / run_name / "out"
        code = build_main(["--out", str(out), "--work", str(top / run_name / "work"), "--no-xz"])
        if code != 0:
            return code
        images.append(out / f"peerline-{version()}-arm64.img")
        shutil.rmtree(top / run_name / "work")  # keep the disk for the second build
    first, second = (sha256(p) for p in images)
    if first == second:
        print(f"identical {first}")
        return 0
    print(f"DIFFERENT {first} {second}")
    explain(images[0], images[1], top)
    return 1


def explain(a: Path, b: Path, top: Path) -> None:
    """Which partitions and which files differ."""
    mbr = [_hash_range(p, 0, 512) for p in (a, b)]
    print(f"partition table (MBR): {'same' if mbr[0] == mbr[1] else 'DIFFERS'}")
    for number, (start, size) in enumerate(_partitions(a), start=1):
        da, db = (_hash_range(p, start, size) for p in (a, b))
        print(f"partition {number}: {'same' if da == db else 'DIFFERS'}")
    trees = []
    for image, name in ((a, "a"), (b, "b")):
        dest = top / f"unpacked-{name}"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        (start, size) = _partitions(image)[1]
        squash = dest / "root.squashfs"
        _extract(image, start, size, squash)
        subprocess.run(
            ["unsquashfs", "-q", "-n", "-d", str(dest / "root"), str(squash)], check=False
        )
        (bstart, _) = _partitions(image)[0]
        (dest / "boot").mkdir()
        subprocess.run(
            ["mcopy", "-s", "-m", "-n", "-i", f"{image}@@{bstart}", "::/*", str(dest / "boot")],
            check=False,
            env=os.environ | {"MTOOLS_SKIP_CHECK": "1"},
        )
        trees.append(dest)
    differing: list[tuple[Path, Path]] = []
    for part in ("root", "boot"):
        _walk(filecmp.dircmp(trees[0] / part, trees[1] / part, ignore=[]), differing)
    for left, _ in differing[:50]:
        print(f"  differs: {left.relative_to(trees[0])}")
    if len(differing) > 50:
        print(f"  ... and {len(differing) - 50} more")
    if differing and shutil.which("diffoscope"):
        subprocess.run(["diffoscope", str(differing[0][0]), str(differing[0][1])], check=False)
    elif not differing:
        print("  no file differs: the difference is in filesystem metadata (times, order, ids)")


def _walk(cmp: filecmp.dircmp[str], out: list[tuple[Path, Path]]) -> None:
    for name in cmp.left_only + cmp.right_only:
        out.append((Path(cmp.left) / name, Path(cmp.right) / name))
    _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
    out += [(Path(cmp.left) / n, Path(cmp.right) / n) for n in mismatch + errors]
    for sub in cmp.subdirs.values():  # (dircmp would skip __pycache__ without ignore=[])
        _walk(sub, out)


def _partitions(image: Path) -> list[tuple[int, int]]:
    out = subprocess.run(
        ["sfdisk", "--json", str(image)], capture_output=True, text=True, check=True
    )
    parts = json.loads(out.stdout)["partitiontable"]["partitions"]
    return [(int(p["start"]) * 512, int(p["size"]) * 512) for p in parts]


def _hash_range(path: Path, start: int, size: int) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        f.seek(start)
        left = size
        while left > 0 and (chunk := f.read(min(left, 4 << 20))):
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def _extract(image: Path, start: int, size: int, dest: Path) -> None:
    with image.open("rb") as f, dest.open("wb") as out:
        f.seek(start)
        left = size
        while left > 0 and (chunk := f.read(min(left, 4 << 20))):
            out.write(chunk)
            left -= len(chunk)


if __name__ == "__main__":
    sys.exit(main())
