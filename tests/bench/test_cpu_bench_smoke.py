"""bench/cpu.py runs a 3 s call between two real daemons and prints its JSON line (shape and
sane ranges, not figures: the figures come from running the benchmark itself). About 10 s."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voice_needs import voice_unavailable

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cpu.py"


def _unavailable() -> str | None:
    if not Path("/proc/self/stat").exists():
        return "no /proc (the benchmark reads /proc/PID/stat and /proc/PID/status)"
    return voice_unavailable("numpy")


def test_cpu_bench_prints_one_line_with_the_cost_of_a_call() -> None:
    reason = _unavailable()
    if reason is not None:
        pytest.skip(reason)
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--seconds", "3", "--idle-seconds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = proc.stdout.splitlines()
    out = json.loads(line)
    for field in ("cpu_pct_per_call", "rss_mb", "idle_cpu_pct", "call_wall_s", "daemons"):
        assert field in out, field
    assert 0 < out["cpu_pct_per_call"] < 100, out
    assert 10 < out["rss_mb"] < 500, out
    assert 0 <= out["idle_cpu_pct"] < out["cpu_pct_per_call"], out
    assert 3 <= out["call_wall_s"] < 4, out
    assert out["machine"]["cpus"] >= 1 and out["machine"]["cpu_model"], out
    assert sorted(out["daemons"]) == ["a", "b"], out
    for name, d in out["daemons"].items():
        # The kernel splits CPU time into user and system by sampling at each tick, so over a
        # 3 s call of ~70 ms either part alone may be 0 (seen once): only their sum must not.
        assert 0 < d["cpu_pct"] < 100 and d["user_s"] + d["sys_s"] > 0, (name, d)
        assert 10 < d["rss_mb"] <= d["hwm_mb"] < 500, (name, d)
        media = d["media"]
        assert 5 < media["tx_kbps"] < 64, (name, media)  # Opus at 16-32 kbit/s plus overhead
        assert media["tx_packets"] > 100 and media["rx_packets"] > 100, (name, media)  # 50/s
        assert media["decode_errors"] == 0 and media["rtt_ms"] is not None, (name, media)
        assert d["audio"]["frames_captured"] > 100, (name, d["audio"])
    assert out["cpu_pct_per_call"] == pytest.approx(
        sum(d["cpu_pct"] for d in out["daemons"].values()) / 2, abs=0.02
    )
    assert out["rss_mb"] == max(d["rss_mb"] for d in out["daemons"].values())
