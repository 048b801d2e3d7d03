"""bench/ui.py runs its handset scenario with a 3 s call and prints its JSON line (shape and
sane values, not figures: whether the UI fits its 1 ms a period comes from running the
benchmark itself). About 1 s."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ui.py"

FIGURES = ("mean", "p50", "p99", "p99_9", "max")


def test_ui_bench_prints_one_line_with_the_ui_cost_per_audio_period() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--seconds", "3", "--seed", "3", "--repeat", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = proc.stdout.splitlines()
    out = json.loads(line)
    for prefix in ("loop_us", "with_render_us", "render_us"):
        for figure in FIGURES:
            assert isinstance(out[f"{prefix}_{figure}"], float), (prefix, figure)
        assert 0 <= out[f"{prefix}_p50"] <= out[f"{prefix}_p99"], (prefix, out)
        assert out[f"{prefix}_p99"] <= out[f"{prefix}_p99_9"] <= out[f"{prefix}_max"], (prefix, out)
        assert 0 < out[f"{prefix}_mean"] <= out[f"{prefix}_max"], (prefix, out)
    for figure in FIGURES:  # render adds to the loop's share, never takes from it
        assert out[f"with_render_us_{figure}"] >= out[f"loop_us_{figure}"], (figure, out)
    assert out["budget_us"] == 1000
    assert out["goal_met"] is (
        out["loop_us_p99"] <= out["budget_us"] and out["loop_us_mean"] <= out["budget_us"]
    )
    # About 150 s of virtual time with a 3 s call: the idle stretches, the calls, the menus.
    assert 100 < out["window_s"] < 300 and out["call_s"] == 3, out
    assert abs(out["periods"] - out["window_s"] / 0.02) <= 1, out  # 20 ms periods
    assert 0 < out["busy_periods"] < out["periods"], out
    assert out["ui_calls"] > 0 and out["screens_rendered"] > 0, out
    assert out["key_presses"] > 30 and out["phone_events"] > 0, out
    calls = out["calls"]
    for entry in ("key_edge", "hook_edge", "phone_event", "handle_timer", "audio_device"):
        assert calls[entry]["calls"] > 0, entry
    for output in ("commands_to_send", "get_timer", "leds", "screen", "settings_to_save"):
        assert calls[output]["calls"] > 0, output
    assert calls["render"]["calls"] == out["screens_rendered"]
    assert sum(c["calls"] for c in calls.values()) == out["ui_calls"] + out["screens_rendered"]
    # Every kind of screen the scenario reaches is rendered, and timed on its own.
    assert {"IdleScreen", "DialScreen", "CallScreen", "MenuScreen", "TextScreen"} <= set(
        out["render_bench"]
    ), out["render_bench"]
    for kind, row in out["render_bench"].items():
        assert row["renders"] == 2 * row["rendered"] and row["rendered"] <= row["distinct"]
        assert 0 < row["p50_us"] <= row["p99_us"] <= row["max_us"], (kind, row)
    assert out["ui_wall_ms"] > 0 and out["ui_cpu_ms"] > 0, out
    assert len(out["worst_periods"]) == 5 and len(out["worst_renders"]) == 5, out
    assert out["worst_periods"][0]["loop_us"] == out["loop_us_max"], out
    assert out["machine"]["cpus"] >= 1 and out["machine"]["cpu_model"], out
