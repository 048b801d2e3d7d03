"""bench/voice.py runs the real voice path (Opus, MEDIA frames, a Noise session, the jitter
buffer) on 2 s of speech over a clean network and prints its row and the summary (shape, and a
loose quality floor; the figures come from running the benchmark itself)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voice_needs import voice_unavailable

BENCH = Path(__file__).resolve().parents[2] / "bench" / "voice.py"


def test_voice_bench_prints_a_row_and_a_summary() -> None:
    reason = voice_unavailable("numpy", "pesq", "opuslib")
    if reason is not None:
        pytest.skip(reason)
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--conditions", "0:0", "--seconds", "2", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    row, summary = (json.loads(line) for line in proc.stdout.splitlines())
    for field in ("loss_pct", "jitter_ms", "pesq_wb", "added_delay_ms", "kbps_on_wire"):
        assert field in row, field
    assert (row["loss_pct"], row["jitter_ms"]) == (0, 0)
    assert row["pesq_wb"] > 3.5, row
    assert 20 <= row["added_delay_ms"] <= 100, row
    assert 0 < row["kbps_on_wire"] < row["kbps_with_ip_udp"] <= 64, row
    # A call starts at a 60 ms playout delay; on a clean path the buffer comes down to its
    # target by dropping a quiet frame (at most one in 2 s).
    assert row["frames"] == 100 and 99 <= row["played"] <= 100, row
    assert row["skipped"] <= 1 and row["concealed"] == row["inserted"], row
    assert summary["summary"] and summary["conditions"] == 1
