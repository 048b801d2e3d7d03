"""bench/cli_latency.py times real ``peerline`` commands against a real daemon and prints its
JSON line (shape, not figures: the figures come from running the benchmark itself)."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cli_latency.py"


def test_cli_latency_bench_prints_percentiles_per_command() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--runs", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = json.loads(proc.stdout)
    assert out["bench"] == "cli_latency" and out["runs"] == 2
    for name in ("version", "status", "status_json", "lookup_own_number"):
        figures = out["commands"][name]
        assert 0 < figures["p50_ms"] <= figures["p90_ms"] <= figures["max_ms"], (name, figures)
    assert out["import_ms"] > 0 and isinstance(out["status_meets_target"], bool)
