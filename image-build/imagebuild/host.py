"""The build machine: its tools, its Debian package registry, and running commands on it."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HOST_PACKAGES",
    "Mirrors",
    "Step",
    "enable_arm64_emulation",
    "ensure_tools",
    "find_mirrors",
    "run",
]

HOST_PACKAGES = {
    "mmdebstrap": "mmdebstrap",
    "qemu-aarch64-static": "qemu-user-static",
    "update-binfmts": "binfmt-support",
    "arch-test": "arch-test",
    "mksquashfs": "squashfs-tools",
    "unsquashfs": "squashfs-tools",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "sfdisk": "fdisk",
    "mke2fs": "e2fsprogs",
    "debugfs": "e2fsprogs",
}
"""Command -> the Debian package that has it. ``ensure_tools`` installs what is missing."""


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    capture: bool = False,
    cwd: Path | None = None,
    input_text: str | None = None,
    clean: bool = False,
) -> str:
    """Run a command, echoing it; a failure ends the build with its exit status. ``clean``:
    with ``env`` only, not the build's own environment."""
    args = [str(a) for a in argv]
    print("+ " + shlex.join(args), flush=True)
    merged = ({} if clean else dict(os.environ)) | dict(env or {})
    done = subprocess.run(
        args,
        env=merged,
        cwd=cwd,
        text=True,
        input=input_text,
        stdout=subprocess.PIPE if capture else None,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"image-build: {args[0]} failed with status {done.returncode}")
    return done.stdout if capture else ""


class Step:
    """Prints how long each stage took: the build's time budget is part of its contract."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.times: dict[str, float] = {}
        self._name: str | None = None
        self._at = self.started

    def __call__(self, name: str) -> None:
        self._close()
        self._name, self._at = name, time.monotonic()
        print(f"\n== {name}", flush=True)

    def _close(self) -> None:
        if self._name is not None:
            self.times[self._name] = round(time.monotonic() - self._at, 1)

    def total(self) -> float:
        self._close()
        self._name = None
        return round(time.monotonic() - self.started, 1)


def ensure_tools(extra: Mapping[str, str] | None = None) -> None:
    """Install the host packages the build needs (as root, from the host's registry)."""
    wanted = dict(HOST_PACKAGES) | dict(extra or {})
    missing = sorted({pkg for cmd, pkg in wanted.items() if not _have(cmd)})
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(
            f"image-build: missing tools; as root: apt-get install {' '.join(missing)}"
        )
    print(f"image-build: installing host packages: {' '.join(missing)}", flush=True)
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], env=env)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)


def _have(command: str) -> bool:
    return shutil.which(command, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is not None


def enable_arm64_emulation() -> None:
    """arm64 programs run through qemu-user (binfmt_misc); mount and enable it if need be."""
    misc = Path("/proc/sys/fs/binfmt_misc")
    if not (misc / "register").exists():
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", misc])
    if not (misc / "qemu-aarch64").exists():
        run(["update-binfmts", "--enable", "qemu-aarch64"])
    out = subprocess.run(["arch-test", "arm64"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"image-build: this machine cannot run arm64 programs: {out.stdout}")


@dataclass(frozen=True, slots=True)
class Mirrors:
    """Where Debian packages come from: the main archive and the security archive."""

    main: str
    security: str

    def sources(self, suite: str, components: Sequence[str]) -> list[str]:
        comps = " ".join(components)
        return [
            f"deb {self.main} {suite} {comps}",
            f"deb {self.main} {suite}-updates {comps}",
            f"deb {self.security} {suite}-security {comps}",
        ]


def find_mirrors(env: Mapping[str, str] | None = None, apt_dir: Path = Path("/etc/apt")) -> Mirrors:
    """The Debian registry this machine is configured for (its apt sources), unless
    ``PEERLINE_DEBIAN_MIRROR`` and ``PEERLINE_DEBIAN_SECURITY`` say otherwise."""
    env = os.environ if env is None else env
    main = env.get("PEERLINE_DEBIAN_MIRROR", "")
    security = env.get("PEERLINE_DEBIAN_SECURITY", "")
    if not (main and security):
        found = _apt_entries(apt_dir)
        for uri, suite in found:
            if suite.endswith("-security"):
                security = security or uri
            elif "/debian" in uri:
                main = main or uri
    if not main:
        raise SystemExit(
            "image-build: no Debian registry in this machine's apt sources; "
            "set PEERLINE_DEBIAN_MIRROR (and PEERLINE_DEBIAN_SECURITY)"
        )
    if not security:
        security = main.rstrip("/") + "-security"
    return Mirrors(main=main.rstrip("/"), security=security.rstrip("/"))


def _apt_entries(apt_dir: Path) -> list[tuple[str, str]]:
    """(URI, suite) of every ``deb`` entry, one-line and deb822 formats."""
    out: list[tuple[str, str]] = []
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                out.append((words[1], words[2]))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for raw in stanza.splitlines():
                if raw.startswith("#") or ":" not in raw:
                    continue
                key, _, value = raw.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                out += [(uri, suite) for suite in fields.get("suites", "").split()]
    return out


def main_guard() -> None:
    if os.geteuid() != 0:
        sys.exit("image-build: run as root (it builds filesystems and chroots into them)")
