"""``image-build/lock``: resolve ``packages.toml`` and the Python pins to exact artifacts.

Bootstraps both root filesystems from the selections alone (newest versions in the archive),
records what got installed in ``debian.lock``; then, in the builder, downloads the phone's
Python requirements for arm64 and records each file's sha256 in ``python-wheels.lock``
(binary wheels) and ``python-sdists.lock`` (the two packages without arm64 wheels for this
Python, compiled at build time). The build then uses exactly these.
"""

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

from .build import HERE, REPO, bootstrap, chroot, host_certificates, mounted
from .host import enable_arm64_emulation, ensure_tools, find_mirrors, main_guard
from .locks import dump_debian_lock, load_selections, parse_dpkg_query

SDISTS = {"pyalsaaudio", "lgpio", "opuslib"}
"""Published without a wheel for arm64 and CPython 3.13 (opuslib without any): built into
wheels by the builder, from the sdists' pinned hashes."""
BUILD_ONLY = {"wheel"}
"""Pinned in requirements/ for developers' editable installs only. (setuptools stays: colorzero
declares it as a dependency, and ``pip check`` holds the image to its declarations.)"""


def requirements() -> list[str]:
    pins = []
    for name in ("runtime.txt", "pi.txt"):
        for line in (REPO / "requirements" / name).read_text().splitlines():
            pin = line.split("#", 1)[0].strip()
            if pin and pin.split("==")[0].lower() not in BUILD_ONLY:
                pins.append(pin)
    return pins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image-build/lock", description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=HERE / "work-lock")
    parser.add_argument(
        "--python-only",
        action="store_true",
        help="keep debian.lock; refresh the Python locks in the builder left by the last run",
    )
    args = parser.parse_args(argv)
    main_guard()
    ensure_tools()
    enable_arm64_emulation()
    work = args.work.resolve()
    if not args.python_only:
        debian_lock(work)
    builder = work / "builder"
    if not (builder / "usr" / "bin" / "python3").exists():
        sys.exit(f"image-build/lock: no builder root in {work}; run without --python-only")
    with mounted(builder):
        python_locks(builder)
    print("image-build/lock: wrote debian.lock, python-wheels.lock, python-sdists.lock")
    return 0


def debian_lock(work: Path) -> None:
    """Bootstrap both roots from the selections and record what got installed."""
    selections = load_selections(HERE / "packages.toml")
    mirrors = find_mirrors()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    sources = mirrors.sources(selections.suite, selections.components)
    jobs = {
        name: bootstrap(
            work / name, list(names), selections.architecture, selections.suite, sources, {},
            work / f"{name}.log",
        )
        for name, names in selections.sets.items()
    }  # fmt: skip
    for name, proc in jobs.items():
        if proc.wait() != 0:
            sys.exit(f"image-build/lock: mmdebstrap ({name}) failed: {work / name}.log")
    sets = {
        name: parse_dpkg_query(
            chroot(work / name, ["dpkg-query", "-W", "-f=${Package} ${Version}\n"], capture=True)
        )
        for name in jobs
    }
    (HERE / "debian.lock").write_text(
        dump_debian_lock(selections.suite, selections.architecture, sets)
    )


def python_locks(builder: Path) -> None:
    """Download the pins for arm64 in the builder and record each file's sha256."""
    shutil.copy2("/etc/resolv.conf", builder / "etc" / "resolv.conf")
    net = host_certificates(builder)
    pins = requirements()
    req = builder / "req"
    if req.exists():
        shutil.rmtree(req)
    req.mkdir()
    (req / "wheels.txt").write_text(
        "\n".join(p for p in pins if p.split("==")[0].lower() not in SDISTS) + "\n"
    )
    (req / "sdists.txt").write_text(
        "\n".join(p for p in pins if p.split("==")[0].lower() in SDISTS) + "\n"
    )
    chroot(
        builder,
        ["python3", "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "-r", "/req/wheels.txt", "-d", "/req/wheels"],
        env=net,
    )  # fmt: skip
    chroot(
        builder,
        ["python3", "-m", "pip", "download", "--no-deps", "--no-binary=:all:",
         "--no-build-isolation", "-r", "/req/sdists.txt", "-d", "/req/sdists"],
        env=net,
    )  # fmt: skip
    for kind in ("wheels", "sdists"):
        lines = [
            f"# {kind} for linux arm64 and Debian 13's CPython 3.13, by hash; written by "
            "image-build/lock from requirements/runtime.txt and pi.txt. Do not edit by hand."
        ]
        for path in sorted((req / kind).iterdir()):
            name, pinned = _pin_of(path.name, pins)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            lines.append(f"{name}=={pinned} --hash=sha256:{digest}")
        (HERE / f"python-{kind}.lock").write_text("\n".join(lines) + "\n")


def _pin_of(filename: str, pins: list[str]) -> tuple[str, str]:
    """Which pin a downloaded file satisfies (wheel and sdist names normalise differently)."""
    stem = filename.lower().replace("-", "_").replace(".", "_")
    for pin in pins:
        name, _, version = pin.partition("==")
        norm = name.lower().replace("-", "_").replace(".", "_")
        if stem.startswith(f"{norm}_{version.replace('.', '_').replace('-', '_')}"):
            return name, version
    raise SystemExit(f"image-build/lock: downloaded {filename}, which no pin asked for")


if __name__ == "__main__":
    sys.exit(main())
