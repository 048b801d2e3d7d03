"""``image-build/build``: the SD-card image, from the lock files and this source tree.

Stages (each timed):

1. two arm64 root filesystems by mmdebstrap, at once: the image's own, and a throwaway builder
   with a compiler, which downloads the pinned Python wheels and sdists by hash and compiles the
   sdists (pyalsaaudio, lgpio) and Peerline itself into wheels;
2. the image's root finished in a chroot: the phone's venv in /opt/peerline, its user and
   groups, units, udev rules, network setup, boot files; build-time noise removed;
3. three filesystems: FAT boot, squashfs root (read-only by nature), ext4 data;
4. the partition table and the image, and its sha256.

Every timestamp is ``SOURCE_DATE_EPOCH`` (the commit's time), every identifier is derived from
the version, and every directory is written in sorted order, so two builds agree to the byte.
"""

import argparse
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

from .host import Step, enable_arm64_emulation, ensure_tools, find_mirrors, main_guard, run
from .layout import DATA_SIZE, Layout, fat_volume_id, fs_uuid, plan_layout
from .locks import diff_installed, load_debian_lock, load_selections, parse_dpkg_query

HERE = Path(__file__).resolve().parent.parent
"""image-build/"""
REPO = HERE.parent
STAGE = "/peerline-build"
"""Where the wheels wait inside the image's root while the venv is made (removed after)."""
NOISE = [
    "var/cache/apt",
    "var/cache/debconf/config.dat-old",
    "var/cache/debconf/templates.dat-old",
    "var/cache/ldconfig/aux-cache",
    "var/lib/apt/lists",
    "var/lib/dpkg/available-old",
    "var/lib/dpkg/diversions-old",
    "var/lib/dpkg/status-old",
    "var/lib/dbus/machine-id",
    "var/log",
    "root/.cache",
    "tmp",
    "peerline-build",
]
"""Build-time files that would differ between two builds, or have no place on a phone."""
CHROOT_ENV = {
    "PYTHONDONTWRITEBYTECODE": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_CACHE_DIR": "1",
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
    "DEBIAN_FRONTEND": "noninteractive",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image-build/build", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "out", help="where the image goes")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="scratch (emptied)")
    parser.add_argument("--no-xz", action="store_true", help="skip the compressed copy")
    args = parser.parse_args(argv)
    main_guard()
    step = Step()
    step("host tools")
    ensure_tools({"xz": "xz-utils"})
    enable_arm64_emulation()
    image = build_image(args.work.resolve(), args.out.resolve(), step, xz=not args.no_xz)
    total = step.total()
    print(f"\nimage-build: {image} built in {total:.0f} s", flush=True)
    for name, seconds in step.times.items():
        print(f"  {seconds:7.1f} s  {name}")
    return 0


def version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def source_date_epoch() -> str:
    """The last commit's time: the same for every build of one checkout."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return os.environ["SOURCE_DATE_EPOCH"]
    out = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%ct"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0 or not out.stdout.strip().isdigit():
        raise SystemExit("image-build: not a git checkout; set SOURCE_DATE_EPOCH")
    return out.stdout.strip()


def build_image(work: Path, out: Path, step: Step, *, xz: bool) -> Path:
    ver, epoch = version(), source_date_epoch()
    selections = load_selections(HERE / "packages.toml")
    suite, locked = load_debian_lock(HERE / "debian.lock")
    if suite != selections.suite:
        raise SystemExit(f"image-build: debian.lock is for {suite}; run image-build/lock")
    mirrors = find_mirrors()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    out.mkdir(parents=True, exist_ok=True)
    env = {"SOURCE_DATE_EPOCH": epoch}

    step("root filesystems (mmdebstrap, image and builder at once)")
    copy_sources(work / "src" / "peerline")
    jobs = {
        name: bootstrap(
            work / name,
            [f"{p}={v}" for p, v in sorted(locked[name].items())],
            selections.architecture,
            suite,
            mirrors.sources(suite, selections.components),
            env,
            work / f"{name}.log",
        )
        for name in ("image", "builder")
    }
    try:
        # The builder is the smaller root: its wheels are made while the image's root installs.
        wait_for(jobs["builder"], work, "builder")
        check_lock(work / "builder", locked["builder"], "builder")
        step("python wheels (builder: download by hash, compile sdists; image root installing)")
        with mounted(work / "builder"):
            wheels = build_wheels(work / "builder", work / "src", env)
        step("image root (mmdebstrap, the rest)")
        wait_for(jobs["image"], work, "image")
        check_lock(work / "image", locked["image"], "image")
    finally:
        for proc in jobs.values():  # a failed stage leaves no bootstrap running
            if proc.poll() is None:
                proc.terminate()
                proc.wait()

    step("image root (venv, user, units, boot files)")
    root = work / "image"
    with mounted(root):
        finish_root(root, wheels, env, ver)
    bootfs = work / "bootfs"
    shutil.move(root / "boot" / "firmware", bootfs)
    (root / "boot" / "firmware").mkdir()
    for copy in sorted((root / "boot").glob("vmlinuz-*")) + sorted(
        (root / "boot").glob("initrd.img-*")
    ):
        copy.unlink()  # the boot partition has them; a read-only root never boots another
    for name in NOISE:
        remove(root / name)
    (root / "tmp").mkdir(mode=0o1777)
    (root / "var" / "log").mkdir()
    (root / "tmp").chmod(0o1777)
    clamp_times([root, bootfs], int(epoch))

    step("filesystems (squashfs root, FAT boot, ext4 data)")
    squash = work / "root.squashfs"
    run(
        ["mksquashfs", root, squash, "-noappend", "-comp", "zstd", "-b", "256K",
         "-all-time", epoch, "-mkfs-time", epoch, "-quiet"],
    )  # fmt: skip
    layout = plan_layout(ver)
    fat = work / "boot.vfat"
    make_fat(fat, bootfs, layout, ver, epoch)
    data = work / "data.ext4"
    default_config = chroot(
        root,
        ["/opt/peerline/bin/python", "-c",
         "from peerline.store.config import DEFAULT_CONFIG_TEXT as t; print(t, end='')"],
        capture=True,
    )  # fmt: skip
    make_data(data, _ids(root, "peerline"), default_config, ver, epoch)

    step("image")
    image = out / f"peerline-{ver}-arm64.img"
    assemble(image, layout, {1: fat, 2: squash, 3: data})
    digest = sha256(image)
    (out / f"{image.name}.sha256").write_text(f"{digest}  {image.name}\n")
    print(f"{digest}  {image}  ({image.stat().st_size / 1e6:.0f} MB)")
    if xz:
        step("compressed copy (xz)")
        run(["xz", "-T0", "-6", "-k", "-f", image])
        packed = image.with_name(image.name + ".xz")
        print(f"{packed}: {packed.stat().st_size / 1e6:.0f} MB")
    return image


# -- stage 1 -----------------------------------------------------------------------------------
def copy_sources(dest: Path) -> None:
    """The tracked files of this checkout as they are now (uncommitted edits included)."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=False
    )
    if listed.returncode != 0:
        raise SystemExit("image-build: not a git checkout (the build takes its tracked files)")
    for rel in sorted(p for p in listed.stdout.decode().split("\0") if p):
        src = REPO / rel
        if not src.is_file() or rel.startswith("image-build/work"):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def bootstrap(  # noqa: PLR0917  (one call per root filesystem, each argument differs)
    target: Path,
    packages: list[str],
    arch: str,
    suite: str,
    sources: list[str],
    env: dict[str, str],
    log: Path,
) -> "subprocess.Popen[bytes]":
    argv = [
        "mmdebstrap",
        f"--architectures={arch}",
        "--variant=minbase",
        "--mode=root",
        "--format=directory",
        # dpkg without fsync (the tree is written once, then packed): minutes less under qemu
        "--hook-directory=/usr/share/mmdebstrap/hooks/eatmydata",
        '--aptopt=Acquire::Languages "none"',
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-include=/usr/share/locale/locale.alias",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/info/*",
        f"--include={','.join(packages)}",
        suite,
        str(target),
        *sources,
    ]
    print(f"+ mmdebstrap ... {target} ({len(packages)} packages; log {log})", flush=True)
    with log.open("wb") as f:
        return subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=os.environ | env)


def wait_for(proc: "subprocess.Popen[bytes]", work: Path, name: str) -> None:
    if proc.wait() != 0:
        log = (work / f"{name}.log").read_text(errors="replace").splitlines()
        print("\n".join(log[-40:]), file=sys.stderr)
        raise SystemExit(f"image-build: mmdebstrap ({name}) failed; log: {work / name}.log")


def check_lock(root: Path, locked: dict[str, str], name: str) -> None:
    listing = chroot(root, ["dpkg-query", "-W", "-f=${Package} ${Version}\n"], capture=True)
    problems = diff_installed(locked, parse_dpkg_query(listing))
    if problems:
        print("\n".join(f"  {p}" for p in problems), file=sys.stderr)
        raise SystemExit(
            f"image-build: the {name} root does not match debian.lock (the archive moved?); "
            "run image-build/lock to refresh it"
        )


@contextlib.contextmanager
def mounted(root: Path) -> Iterator[None]:
    """/proc and /dev/shm inside a root while commands run in it (pip, compileall -j)."""
    shm = root / "dev" / "shm"
    made_shm = not shm.exists()
    shm.mkdir(exist_ok=True)
    run(["mount", "-t", "proc", "proc", root / "proc"])
    try:
        run(["mount", "-t", "tmpfs", "-o", "size=64M", "tmpfs", shm])
        try:
            yield
        finally:
            run(["umount", shm])
    finally:
        run(["umount", root / "proc"])
        if made_shm:
            shm.rmdir()


PASSED_ENV = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
              "PIP_INDEX_URL", "PIP_DEFAULT_TIMEOUT")  # fmt: skip
"""What a command inside a root keeps from the build's environment: the way to the registries.
Not the rest: a host's pip settings name host paths (certificates, wheel directories)."""


def chroot(
    root: Path, argv: list[str], *, env: dict[str, str] | None = None, capture: bool = False
) -> str:
    kept = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
    return run(
        ["chroot", root, *argv], env=kept | CHROOT_ENV | (env or {}), capture=capture, clean=True
    )


def host_certificates(builder: Path) -> dict[str, str]:
    """The build machine's trust store, for pip inside the builder: a site whose TLS is
    inspected by a proxy has its own authority there. The builder is thrown away after."""
    bundle = next(
        (
            Path(p)
            for p in (
                os.environ.get("PIP_CERT"),
                os.environ.get("SSL_CERT_FILE"),
                "/etc/ssl/certs/ca-certificates.crt",
            )
            if p and Path(p).is_file()
        ),
        None,
    )
    if bundle is None:
        return {}
    shutil.copy2(bundle, builder / "etc" / "ssl" / "host-ca.crt")
    return {"PIP_CERT": "/etc/ssl/host-ca.crt"}


# -- stage 2 -----------------------------------------------------------------------------------
def build_wheels(builder: Path, src: Path, env: dict[str, str]) -> Path:
    """Every wheel the phone needs, for this Python on arm64, in ``builder/out`` (returned)."""
    shutil.copy2("/etc/resolv.conf", builder / "etc" / "resolv.conf")  # the builder downloads
    net = env | host_certificates(builder)
    shutil.copytree(src, builder / "build" / "src")
    for lock in ("python-wheels.lock", "python-sdists.lock"):
        shutil.copy2(HERE / lock, builder / "build" / lock)
    chroot(
        builder,
        ["python3", "-m", "pip", "download", "--no-deps", "--require-hashes",
         "--only-binary=:all:", "-r", "/build/python-wheels.lock", "-d", "/build/out"],
        env=net,
    )  # fmt: skip
    chroot(
        builder,
        ["python3", "-m", "pip", "download", "--no-deps", "--require-hashes",
         "--no-binary=:all:", "--no-build-isolation", "-r", "/build/python-sdists.lock",
         "-d", "/build/sdists"],
        env=net,
    )  # fmt: skip
    # Compiled in fixed directories (not pip's random temporary ones): paths end up in objects.
    for sdist in sorted((builder / "build" / "sdists").iterdir()):
        run(["tar", "-xzf", sdist, "-C", builder / "build" / "src"])
    trees = sorted(p.name for p in (builder / "build" / "src").iterdir() if p.is_dir())
    for tree in trees:
        chroot(
            builder,
            ["python3", "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
             "-w", "/build/built", f"/build/src/{tree}"],
            env=env | {"PYPI": "1", "CFLAGS": "-g0 -O2"},  # PYPI=1: lgpio links its C in
        )  # fmt: skip
    return builder / "build"


def finish_root(root: Path, wheels: Path, env: dict[str, str], ver: str) -> None:
    """The phone on Debian: venv, user, files, units, boot configuration."""
    stage = root / STAGE.lstrip("/")
    shutil.copytree(wheels / "out", stage)
    for wheel in sorted((wheels / "built").iterdir()):
        shutil.copy2(wheel, stage)
    shutil.copy2(HERE / "python-wheels.lock", stage)
    venv = "/opt/peerline"
    chroot(root, ["python3", "-m", "venv", venv], env=env)
    # --no-compile: pip's byte code is keyed by the time of installation, different per build
    pip = [f"{venv}/bin/python", "-m", "pip", "install", "--no-compile", "--no-index",
           "--find-links", STAGE]  # fmt: skip
    chroot(root, [*pip, "--no-deps", "--require-hashes", "-r", f"{STAGE}/python-wheels.lock"])
    built = sorted(p.name for p in (wheels / "built").iterdir())
    chroot(root, [*pip, "--no-deps", *[f"{STAGE}/{name}" for name in built]])
    chroot(root, [f"{venv}/bin/python", "-m", "pip", "check"])
    chroot(root, [f"{venv}/bin/python", "-m", "pip", "uninstall", "-q", "-y", "pip"])
    # Byte code made now, keyed by the sources' hashes (not their times): a read-only root could
    # not cache it, and a Pi Zero would compile every module at every start.
    chroot(
        root,
        [f"{venv}/bin/python", "-m", "compileall", "-q", "-f", "-j", "0", "--invalidation-mode",
         "unchecked-hash", f"{venv}/lib"],
        env=env,
    )  # fmt: skip
    share = root / "opt" / "peerline" / "share"
    (share / "doc").mkdir(parents=True, exist_ok=True)
    for doc in ("operator.md", "user-guide.md", "control-api.md"):
        if (REPO / "docs" / doc).exists():
            shutil.copy2(REPO / "docs" / doc, share / "doc" / doc)
    shutil.copytree(
        REPO / "hw" / "pinmaps", root / "usr" / "share" / "peerline" / "pinmaps", dirs_exist_ok=True
    )
    # Files of the appliance, then the units of this repository.
    overlay = HERE / "rootfs"
    for src in sorted(overlay.rglob("*")):
        rel = src.relative_to(overlay)
        target = root / rel
        if src.is_symlink():
            remove(target)
            target.symlink_to(os.readlink(src))
        elif src.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            shutil.copy2(src, target)
    for mount_point in ("data", "etc/peerline", "var/lib/peerline", "boot/firmware"):
        (root / mount_point).mkdir(parents=True, exist_ok=True)
    units = root / "usr" / "lib" / "systemd" / "system"
    for unit in sorted((REPO / "systemd").glob("*.service")):
        shutil.copy2(unit, units / unit.name)
    layout_ids = {
        "@ROOT@": f"PARTUUID={plan_layout(ver).partuuid(2)}",
        "@BOOT@": f"PARTUUID={plan_layout(ver).partuuid(1)}",
        "@DATA@": f"PARTUUID={plan_layout(ver).partuuid(3)}",
    }
    for templated in ("etc/fstab", "etc/default/raspi-firmware"):
        text = (root / templated).read_text()
        for key, value in layout_ids.items():
            text = text.replace(key, value)
        (root / templated).write_text(text)
    (root / "etc" / "default" / "raspi-firmware-custom").write_text(
        (REPO / "hw" / "config.txt").read_text()
    )
    for group in ("gpio", "i2c"):
        chroot(root, ["groupadd", "--system", "--force", group], env=env)  # i2c-tools has i2c
    chroot(
        root,
        ["useradd", "--system", "--user-group", "--home-dir", "/var/lib/peerline",
         "--no-create-home", "--shell", "/usr/sbin/nologin", "--groups", "gpio,i2c,audio",
         "--comment", "Peerline phone", "peerline"],
        env=env,
    )  # fmt: skip
    chroot(
        root,
        ["systemctl", "enable", "peerline.service", "peerline-firstboot.service",
         "peerline-bootconfig.service", "systemd-networkd.service", "systemd-resolved.service",
         "systemd-timesyncd.service"],
    )  # fmt: skip
    chroot(root, ["systemctl", "mask", "apt-daily.timer", "apt-daily-upgrade.timer"])
    # The firmware's boot files again, now with our root, consoles and config.txt lines.
    chroot(
        root,
        ["/etc/kernel/postinst.d/z50-raspi-firmware"],
        env=env | {"DEB_MAINT_PARAMS": "configure"},
    )
    # systemd sets the clock no earlier than this file's time at boot (a Pi has no RTC).
    (root / "usr" / "lib" / "clock-epoch").touch()
    (root / "etc" / "machine-id").write_text("")  # a fresh identifier at every boot
    (root / "etc" / "hostname").write_text("peerline\n")


def remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def clamp_times(roots: list[Path], epoch: int) -> None:
    """No file newer than the commit: what the build touched gets the commit's time."""
    for top in roots:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [*dirnames, *filenames]:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                if st.st_mtime > epoch:
                    os.utime(path, (epoch, epoch), follow_symlinks=False)
        os.utime(top, (epoch, epoch))


# -- stage 3 -----------------------------------------------------------------------------------
def make_fat(fat: Path, bootfs: Path, layout: Layout, ver: str, epoch: str) -> None:
    """FAT32 with fixed volume id and label, files added one by one in sorted order."""
    with fat.open("wb") as f:
        f.truncate(layout.boot_size)
    run(
        ["mkfs.vfat", "-F", "32", "-n", "PEERBOOT", "-i", fat_volume_id(ver), "--invariant",
         "-h", str(layout.boot_start // 512), fat],
        env={"SOURCE_DATE_EPOCH": epoch},
    )  # fmt: skip
    env = {"TZ": "UTC", "SOURCE_DATE_EPOCH": epoch, "MTOOLS_SKIP_CHECK": "1"}
    for dirpath, dirnames, filenames in sorted(os.walk(bootfs)):
        dirnames.sort()
        rel = Path(dirpath).relative_to(bootfs)
        target = "::/" + str(rel).replace(os.sep, "/") if str(rel) != "." else "::/"
        if str(rel) != ".":
            run(["mmd", "-i", fat, target], env=env)
        files = [os.path.join(dirpath, n) for n in sorted(filenames)]
        if files:
            run(["mcopy", "-i", fat, "-m", "-p", "-Q", *files, target], env=env)


def make_data(data: Path, owner: tuple[int, int], config_text: str, ver: str, epoch: str) -> None:
    """ext4 for the phone's state: /peerline (its data, owned by ``owner``), /etc (its
    configuration, ``config_text`` as peerline.toml) and /systemd (systemd's state)."""
    uid, gid = owner
    uuid = fs_uuid(ver, "data")
    with data.open("wb") as f:
        f.truncate(DATA_SIZE)
    env = {"E2FSPROGS_FAKE_TIME": epoch, "SOURCE_DATE_EPOCH": epoch}
    run(
        ["mke2fs", "-q", "-t", "ext4", "-F", "-L", "peerline-data", "-U", uuid,
         "-E", f"hash_seed={uuid},root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0",
         data],
        env=env,
    )  # fmt: skip
    config = data.with_name("peerline.toml")
    config.write_text(config_text)
    commands = [
        "mkdir peerline",
        f"set_inode_field peerline uid {uid}",
        f"set_inode_field peerline gid {gid}",
        "set_inode_field peerline mode 040700",
        "mkdir etc",
        "set_inode_field etc mode 040755",
        "mkdir systemd",
        "set_inode_field systemd mode 040755",
        f"write {config} etc/peerline.toml",
        "set_inode_field etc/peerline.toml mode 0100644",
    ]
    script = data.with_name("data.debugfs")
    script.write_text("\n".join(commands) + "\n")
    run(["debugfs", "-w", "-f", script, data], env=env)
    run(["e2fsck", "-f", "-n", data])


def _ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise SystemExit(f"image-build: no user {user} in the image")


# -- stage 4 -----------------------------------------------------------------------------------
def assemble(image: Path, layout: Layout, parts: dict[int, Path]) -> None:
    starts = {1: layout.boot_start, 2: layout.root_start, 3: layout.data_start}
    sizes = {1: layout.boot_size, 2: layout.root_size, 3: layout.data_size}
    with image.open("wb") as f:
        f.truncate(layout.image_size)
    run(
        ["sfdisk", "--no-reread", "--no-tell-kernel", "-q", image],
        input_text=layout.sfdisk_script(),
    )
    with image.open("r+b") as out:
        for number, part in parts.items():
            if part.stat().st_size > sizes[number]:
                raise SystemExit(f"image-build: {part} does not fit partition {number}")
            out.seek(starts[number])
            with part.open("rb") as f:
                shutil.copyfileobj(f, out, 4 * 1024 * 1024)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


if __name__ == "__main__":
    sys.exit(main())
