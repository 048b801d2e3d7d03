"""Low-level namespace plumbing: commands, per-thread ``setns``, the cleanup registry.

Everything here acts only on namespaces whose names this module built (``pl-<6 hex>-<node>``)
and on the processes inside them.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

NETNS_DIR = Path("/run/netns")
#: One JSON file per live lab (owner pid and namespaces), so a lab whose process was killed
#: with SIGKILL is still deleted by the next lab started on the machine (``reap_stale``).
REGISTRY_DIR = Path("/run/peerline-netlab")
CLONE_NEWNET = 0x40000000
COMMAND_TIMEOUT_S = 30.0

_libc = ctypes.CDLL(None, use_errno=True)


class NetlabError(RuntimeError):
    """A lab command failed; the message carries the command and its stderr."""


def run(
    argv: list[str], *, input_text: str | None = None, timeout: float = COMMAND_TIMEOUT_S
) -> str:
    """Run a command to completion; raise NetlabError (with stderr) when it fails."""
    proc = subprocess.run(
        argv, input=input_text, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise NetlabError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def ip_batch(ns: str | None, commands: Iterable[str]) -> None:
    """Run many ``ip`` commands in one process (``ip -batch``), inside ``ns`` if given."""
    lines = "\n".join(commands) + "\n"
    argv = ["ip", *(["-n", ns] if ns else []), "-batch", "-"]
    run(argv, input_text=lines)


def in_netns(ns: str, fn: Callable[[], T]) -> T:
    """Call ``fn`` on a fresh thread that has joined network namespace ``ns``.

    Only the calling thread's network namespace changes with ``setns(2)``, so the rest of the
    process stays where it was. Sockets made by ``fn`` keep living in ``ns`` whatever thread
    uses them later; processes it forks start in ``ns``; ``/proc/sys/net`` shows ``ns``.
    """
    box: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fd = os.open(NETNS_DIR / ns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            box.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{ns}")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return box[0]


def write_sysctls(ns: str, values: dict[str, str], *, if_present: bool = False) -> None:
    """Set ``net.*`` sysctls inside ``ns`` (they are per network namespace). With
    ``if_present``, keys this kernel does not have (IPv6 off, no br_netfilter) are skipped."""

    def write() -> None:
        for key, value in values.items():
            path = Path("/proc/sys", *key.split("."))
            if if_present and not path.exists():
                continue
            path.write_text(value)

    in_netns(ns, write)


def pids_in(ns: str) -> list[int]:
    """Processes living in namespace ``ns`` (``ip netns pids``)."""
    try:
        out = run(["ip", "netns", "pids", ns], timeout=10)
    except (NetlabError, subprocess.TimeoutExpired):
        return []
    return [int(p) for p in out.split()]


def delete_namespaces(names: Iterable[str]) -> None:
    """Kill every process left in the namespaces, then delete them; never raises."""
    names = list(names)
    for ns in names:
        for pid in pids_in(ns):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    for ns in names:
        for _ in range(3):
            proc = subprocess.run(
                ["ip", "netns", "del", ns], capture_output=True, text=True, timeout=10, check=False
            )
            if proc.returncode == 0 or not (NETNS_DIR / ns).exists():
                break
            time.sleep(0.05)


def register(lab_id: str, namespaces: list[str]) -> None:
    REGISTRY_DIR.mkdir(mode=0o700, exist_ok=True)
    path = REGISTRY_DIR / f"{lab_id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "namespaces": namespaces}))
    tmp.replace(path)


def unregister(lab_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (REGISTRY_DIR / f"{lab_id}.json").unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale() -> list[str]:
    """Delete the namespaces of labs whose owning process is gone; return their names."""
    reaped: list[str] = []
    if not REGISTRY_DIR.is_dir():
        return reaped
    for path in REGISTRY_DIR.glob("*.json"):
        try:
            entry = json.loads(path.read_text())
            pid = int(entry["pid"])
            names = [str(n) for n in entry["namespaces"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(pid):
            continue
        delete_namespaces(names)
        reaped.extend(names)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return reaped


@functools.cache
def unavailable_reason() -> str | None:
    """Why a lab cannot run here (None if it can); checked once per process, for real."""
    if not Path("/proc/self/ns/net").exists():
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "building network namespaces needs root (CI runs as root)"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"the `{tool}` command is missing (install the Debian package {package})"
    ns = f"pl-{os.urandom(3).hex()}-check"
    try:
        run(["ip", "netns", "add", ns])
    except (NetlabError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns add` fails here: {exc}"
    try:
        run(
            ["ip", "netns", "exec", ns, "nft", "-f", "-"],
            input_text="table ip netlab_check {\n chain c {\n"
            "  type nat hook postrouting priority srcnat;\n  masquerade\n }\n}\n",
        )
    except (NetlabError, subprocess.TimeoutExpired) as exc:
        return f"nftables NAT does not work in a namespace here: {exc}"
    finally:
        delete_namespaces([ns])
    return None
