"""bench/nat.py runs one pair end to end and prints its row and the summary (shape, not figures:
the figures come from running the benchmark itself). One pair, with delays, about 5 s."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netlab import unavailable_reason

BENCH = Path(__file__).resolve().parents[2] / "bench" / "nat.py"

pytestmark = pytest.mark.netns


def test_nat_bench_prints_a_row_per_pair_and_a_summary() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"netlab unavailable: {reason}")
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--pairs", "public-port", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    row, summary = (json.loads(line) for line in proc.stdout.splitlines())
    assert {"a", "b", "connected", "path", "connect_ms"} <= row.keys()
    assert (row["a"], row["b"]) == ("public", "port-restricted")
    assert row["connected"] and row["path"] == "direct", (row, proc.stderr[-3000:])
    assert all(20 <= ms <= 60 for ms in row["delays_ms"].values()), row
    # The default scope: each site's internet link (the seed's, the public phone's and the
    # router's), not the LAN link behind the router.
    assert sorted(row["delays_ms"]) == ["a", "rb", "seed"], row
    for field in ("pairs", "connected", "direct", "relayed", "connect_ms_p50", "connect_ms_max"):
        assert field in summary, field
    assert (summary["pairs"], summary["connected"], summary["direct"]) == (1, 1, 1)
    assert summary["connect_ms_p50"] == summary["connect_ms_max"] == row["connect_ms"]
