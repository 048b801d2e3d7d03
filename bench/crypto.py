"""Benchmark: the secure channel and the dialable number, as JSON.

Prints ``{"handshake_ms", "seal_open_us_per_packet", "number_derive_ms", "number_verify_ms", ...}``.
``handshake_ms`` is both sides' CPU for one Noise IK handshake (four X25519 operations each side,
plus key derivation), the work a phone does per call setup; ``seal_open_us_per_packet`` seals and
opens one 100-byte payload (a 20 ms Opus frame at ~40 kbit/s) through the real transport session,
replay window included. Run: ``.venv/bin/python bench/crypto.py [--quick]``.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crypto_number import bench_number
from peerline.proto.identity import Identity
from peerline.proto.noise.handshake import IKHandshake, Role
from peerline.proto.noise.session import Session
from peerline.wire.packet import initiation_header, pull_packet
from peerline.wire.spec import PROLOGUE


def one_handshake(a: Identity, b: Identity) -> tuple[Session, Session]:
    prologue = PROLOGUE + initiation_header(7)
    init = IKHandshake(
        role=Role.INITIATOR,
        static_private=a.x25519_private,
        ephemeral_private=os.urandom(32),
        prologue=prologue,
        remote_static=b.x25519_public,
    )
    resp = IKHandshake(
        role=Role.RESPONDER,
        static_private=b.x25519_private,
        ephemeral_private=os.urandom(32),
        prologue=prologue,
    )
    m1 = init.write_initiation(a.public_key)
    resp.read_initiation(m1)
    m2 = resp.write_response(b"")
    init.read_response(m2)
    si = Session(
        keys=init.transport_keys(), local_index=7, remote_index=9, initiator=True, created_at=0.0
    )
    sr = Session(
        keys=resp.transport_keys(), local_index=9, remote_index=7, initiator=False, created_at=0.0
    )
    return si, sr


def bench_handshake(samples: int) -> float:
    a, b = Identity.from_seed(os.urandom(32)), Identity.from_seed(os.urandom(32))
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        one_handshake(a, b)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_seal_open(packets: int) -> float:
    a, b = Identity.from_seed(os.urandom(32)), Identity.from_seed(os.urandom(32))
    sender, receiver = one_handshake(a, b)
    payload = os.urandom(100)
    t0 = time.perf_counter()
    for _ in range(packets):
        receiver.open(pull_packet(sender.seal(payload)))  # type: ignore[arg-type]
    return (time.perf_counter() - t0) / packets * 1e6


def main() -> None:
    quick = "--quick" in sys.argv
    result = {
        "handshake_ms": round(bench_handshake(50 if quick else 300), 3),
        "seal_open_us_per_packet": round(bench_seal_open(2000 if quick else 50000), 2),
    }
    result.update({k: round(v, 1) for k, v in bench_number(5 if quick else 20).items()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
