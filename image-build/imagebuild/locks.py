"""The lock files: exact Debian package versions and Python artifacts, and the selections.

``packages.toml`` says what we want (a few dozen names); the locks say exactly what that
resolved to the last time ``image-build/lock`` ran. A build asks apt for those versions and then
checks every installed package against the lock: a package that moved in the archive fails the
build by name instead of slipping into the image.
"""

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LockError",
    "Selections",
    "diff_installed",
    "dump_debian_lock",
    "load_debian_lock",
    "load_selections",
    "parse_dpkg_query",
]

_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_VERSION = re.compile(r"[0-9A-Za-z.+~:-]+")


class LockError(Exception):
    """A lock or selection file is malformed, or an installed system does not match it."""


@dataclass(frozen=True, slots=True)
class Selections:
    suite: str
    architecture: str
    components: tuple[str, ...]
    sets: dict[str, tuple[str, ...]]
    "Package names per root filesystem: 'image' (the phone) and 'builder' (compiles wheels)."


def load_selections(path: Path) -> Selections:
    tree = tomllib.loads(path.read_text())
    try:
        sets = {name: tuple(tree[name]["packages"]) for name in ("image", "builder")}
        selections = Selections(
            suite=str(tree["suite"]),
            architecture=str(tree["architecture"]),
            components=tuple(tree["components"]),
            sets=sets,
        )
    except (KeyError, TypeError) as exc:
        raise LockError(f"{path}: missing or malformed {exc}") from None
    for name in (n for names in sets.values() for n in names):
        if not _NAME.fullmatch(name):
            raise LockError(f"{path}: not a package name: {name!r}")
    return selections


def parse_dpkg_query(text: str) -> dict[str, str]:
    """``dpkg-query -W -f='${Package} ${Version}\\n'`` output as {package: version}."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, version = line.partition(" ")
        name = name.split(":", 1)[0]  # name:arch for multi-arch packages
        if not _NAME.fullmatch(name) or not _VERSION.fullmatch(version):
            raise LockError(f"unexpected dpkg-query line: {line!r}")
        out[name] = version
    return out


def dump_debian_lock(suite: str, architecture: str, sets: dict[str, dict[str, str]]) -> str:
    lines = [
        "# Exact Debian package versions of each root filesystem, written by image-build/lock.",
        "# Do not edit by hand: change image-build/packages.toml and run image-build/lock.",
        f"suite = {json.dumps(suite)}",
        f"architecture = {json.dumps(architecture)}",
    ]
    for name, packages in sets.items():
        lines += ["", f"[{name}]"]
        lines += [f"{json.dumps(p)} = {json.dumps(v)}" for p, v in sorted(packages.items())]
    return "\n".join(lines) + "\n"


def load_debian_lock(path: Path) -> tuple[str, dict[str, dict[str, str]]]:
    """(suite, {set name: {package: version}})."""
    tree = tomllib.loads(path.read_text())
    sets: dict[str, dict[str, str]] = {}
    for name, table in tree.items():
        if not isinstance(table, dict):
            continue
        for package, version in table.items():
            if not (_NAME.fullmatch(package) and isinstance(version, str)):
                raise LockError(f"{path}: [{name}] {package!r}: not a package = version pair")
            if not _VERSION.fullmatch(version):
                raise LockError(f"{path}: [{name}] {package}: not a version: {version!r}")
        sets[name] = dict(table)
    if "suite" not in tree:
        raise LockError(f"{path}: no suite")
    return str(tree["suite"]), sets


def diff_installed(locked: dict[str, str], installed: dict[str, str]) -> list[str]:
    """Every way ``installed`` differs from the lock, one line each (empty: identical)."""
    problems = []
    for name in sorted(set(locked) | set(installed)):
        want, got = locked.get(name), installed.get(name)
        if want == got:
            continue
        if want is None:
            problems.append(f"{name} {got}: installed but not in the lock")
        elif got is None:
            problems.append(f"{name} {want}: in the lock but not installed")
        else:
            problems.append(f"{name}: locked {want}, installed {got}")
    return problems
