"""A real STUN server for tests: coturn's ``turnserver`` in STUN-only mode on loopback."""

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peerline.types import Addr
from peerline.wire.stun import decode_stun, encode_binding_request


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Addr]:
    exe = shutil.which("turnserver")
    if exe is None:
        pytest.skip("coturn's turnserver is not installed (scripts/setup --dev installs it)")
    port = free_udp_port()
    log = (tmp_path / "coturn.log").open("w")
    proc = subprocess.Popen(
        [
            exe,
            "-n",
            "--stun-only",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--listening-ip=127.0.0.1",
            f"--listening-port={port}",
            "--log-file=stdout",
            "--simple-log",
            "--no-stdout-log",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        deadline = time.monotonic() + 10
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.2)
            while True:  # wait until it answers a Binding request
                probe.sendto(encode_binding_request(bytes(12)), ("127.0.0.1", port))
                try:
                    decode_stun(probe.recv(2048))
                    break
                except TimeoutError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        pytest.fail(
                            f"coturn did not start:\n{(tmp_path / 'coturn.log').read_text()}"
                        )
        yield ("127.0.0.1", port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
