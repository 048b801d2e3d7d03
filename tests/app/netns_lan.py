"""A LAN built from network namespaces for daemon tests: one namespace per phone, each with a
veth into a bridge namespace (the switch), addresses 10.77.0.N/24 and nothing else (no route
out, so no gateway to ask for a port mapping and no mDNS beyond the bridge)."""

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@contextmanager
def netns_lan(count: int) -> Iterator[list[str]]:
    """Namespaces for a switch and ``count`` phones (phone i at 10.77.0.{i+1}); always deleted
    afterwards. Skips the test, saying why, where namespaces cannot be made (CI is root)."""
    if shutil.which("ip") is None:
        pytest.skip("LAN test needs the `ip` command (iproute2) to build network namespaces")
    if os.geteuid() != 0:
        pytest.skip("LAN test needs root to build network namespaces (CI runs as root)")
    tag = uuid.uuid4().hex[:6]
    switch = f"pl-sw-{tag}"
    phones = [f"pl-p{i}-{tag}" for i in range(count)]
    made: list[str] = []
    try:
        for ns in (switch, *phones):
            try:
                ip("netns", "add", ns)
            except subprocess.CalledProcessError as exc:
                pytest.skip(f"cannot create a network namespace here: {exc.stderr.strip()}")
            made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", switch, "link", "add", "br0", "type", "bridge")
        ip("-n", switch, "link", "set", "br0", "up")
        for i, ns in enumerate(phones):
            ip("link", "add", f"v{tag}{i}", "type", "veth", "peer", "name", f"s{tag}{i}")
            ip("link", "set", f"v{tag}{i}", "netns", ns, "name", "eth0")
            ip("link", "set", f"s{tag}{i}", "netns", switch)
            ip("-n", switch, "link", "set", f"s{tag}{i}", "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"10.77.0.{i + 1}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
        yield phones
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def run_in(ns: str, data: Path, *args: str, config: str | None = None) -> "subprocess.Popen[str]":
    """``peerline init`` (if new), then ``config`` as its ``peerline.toml`` (if given), then
    ``peerline run`` in namespace ``ns``; its log goes to ``DATA/daemon.log``."""
    if not (data / "identity.key").exists():
        subprocess.run(
            [sys.executable, "-m", "peerline", "init", "--data", str(data)],
            check=True,
            capture_output=True,
        )
    if config is not None:
        (data / "peerline.toml").write_text(config)
    run = [sys.executable, "-m", "peerline", "run", "--data", str(data), *args]
    with (data / "daemon.log").open("a") as log:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, *run], stdout=subprocess.DEVNULL, stderr=log, text=True
        )


def stop_all(procs: "list[subprocess.Popen[str]]", datas: list[Path]) -> None:
    """SIGTERM every daemon (killed after 5 s) and show the tail of each log."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for data in datas:
        log = data / "daemon.log"
        if log.exists():
            sys.stderr.write(log.read_text()[-1500:])
