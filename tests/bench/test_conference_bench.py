"""bench/conference.py hosts a three-leg conference on real CallManagers with real Opus for 2 s
and prints its JSON (shape, the correctness checks and sane ranges, not figures: the figures
come from running the benchmark itself). About a second."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voice_needs import voice_unavailable

BENCH = Path(__file__).resolve().parents[2] / "bench" / "conference.py"

ROW_FIELDS = (
    "legs",
    "host_cpu_ms_per_tick",
    "host_core_percent",
    "cpu_us_per_leg_per_tick",
    "baseline_ms_per_tick",
    "mix_overhead_us_per_leg",
    "mixer_us_per_tick",
    "direct_delay_ms",
    "conference_delay_ms",
    "added_delay_ms",
    "added_delay_ms_at_start",
    "to_host_delay_ms",
    "hears_others",
    "own_echo_db",
    "echo_free",
)


def test_conference_bench_prints_the_cost_and_delay_of_a_hosted_conference() -> None:
    reason = voice_unavailable("numpy", "opuslib")
    if reason is not None:
        pytest.skip(reason)
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--legs", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    out = json.loads(proc.stdout)
    assert out["bench"] == "conference" and out["ok"] is True, out
    assert out["seconds"] == 2.0
    assert out["machine"]["python"] and out["machine"]["cpu_model"], out["machine"]
    base = out["baseline"]
    assert base["legs"] == 1 and base["hears_others"] and base["echo_free"], base
    (row,) = out["results"]
    for field in ROW_FIELDS:
        assert field in row, field
    assert row["legs"] == 3 and row["phones"] == 4, row
    # Every phone hears every other phone's tone, and no leg gets its own back.
    assert row["hears_others"] is True and row["echo_free"] is True, row
    assert row["min_heard_db"] >= -10 and row["own_echo_db"] < -20, row
    assert 0 < base["host_cpu_ms_per_tick"] == row["baseline_ms_per_tick"], (base, row)
    assert row["host_cpu_ms_per_tick"] > row["baseline_ms_per_tick"], row
    assert row["host_core_percent"] == pytest.approx(row["host_cpu_ms_per_tick"] * 5, abs=0.01)
    assert row["ticks_measured"] == 100, row  # 2 s after the warm-up
    # The host's hop adds at least a frame (20 ms) and Opus' look-ahead: through the host is
    # slower than a direct call, and a party's voice reaches the host as in a direct call.
    assert 20 <= row["direct_delay_ms"] <= 150, row
    assert row["to_host_delay_ms"] == row["direct_delay_ms"], row
    assert row["added_delay_ms"] == pytest.approx(
        row["conference_delay_ms"] - row["direct_delay_ms"], abs=0.2
    )
    assert 20 <= row["added_delay_ms"] <= 150, row
