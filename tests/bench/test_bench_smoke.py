"""The benchmarks run and print the JSON their issues ask for (tiny sizes: this checks shape,
not figures; the figures come from running the benchmarks themselves)."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run(script: str, *args: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_overlay_bench_prints_every_field_and_accepts_no_forgery() -> None:
    out = run(
        "overlay.py",
        "--nodes",
        "200",
        "--churn-per-hour",
        "20",
        "--malicious",
        "0.2",
        "--lookups",
        "40",
        "--seed",
        "3",
        "--settle-s",
        "20",
        "--upkeep-s",
        "20",
        "--lookup-window-s",
        "10",
        "--min-age-s",
        "0",
    )
    for field in (
        "nodes",
        "lookup_success",
        "hops_median",
        "hops_p99",
        "latency_ms_p50",
        "latency_ms_p99",
        "msgs_per_lookup",
        "bytes_per_node_per_s",
        "forged_records_accepted",
    ):
        assert field in out, field
    assert out["nodes"] == 200
    assert out["forged_records_accepted"] == 0
    assert isinstance(out["lookup_success"], float) and out["lookup_success"] > 0.8


def test_crypto_bench_prints_its_fields() -> None:
    out = run("crypto.py", "--quick")
    for field in (
        "handshake_ms",
        "seal_open_us_per_packet",
        "number_derive_ms",
        "number_verify_ms",
    ):
        assert isinstance(out[field], float) and out[field] > 0, field
