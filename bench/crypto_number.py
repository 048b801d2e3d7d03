"""Benchmark: the dialable-number derivation and check (argon2id), in milliseconds.

The protocol fixes the argon2id parameters; this shows what they cost on the machine at hand
(budget: <= 150 ms here, usable on a Pi Zero 2 W). Run from the repo root:
``.venv/bin/python bench/crypto_number.py``. ``bench/crypto.py`` imports ``bench_number``.
"""

import json
import math
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "firmware"))

from peerline.adapters.rng import OsRng
from peerline.proto.identity import Identity, derive_number, verify_number


def bench_number(samples: int = 20) -> dict[str, float]:
    """Median derive and verify times over ``samples`` fresh keys, plus the derive p95."""
    if samples < 1:
        raise ValueError("samples must be at least 1")
    rng = OsRng()
    derive_ms: list[float] = []
    verify_ms: list[float] = []
    for _ in range(samples):
        public_key = Identity.generate(rng).public_key
        start = time.perf_counter()
        number = derive_number(public_key)
        derive_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        ok = verify_number(number, public_key)
        verify_ms.append((time.perf_counter() - start) * 1000)
        assert ok, "a number must verify against the key it was derived from"
    return {
        "number_derive_ms": statistics.median(derive_ms),
        "number_verify_ms": statistics.median(verify_ms),
        "number_derive_ms_p95": _nearest_rank(derive_ms, 0.95),
    }


def _nearest_rank(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: an observed value, so small sample counts stay honest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


if __name__ == "__main__":
    print(json.dumps(bench_number(), indent=2))
