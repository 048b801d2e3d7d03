"""How long a ``peerline`` command takes against a running phone, as one JSON line.

    .venv/bin/python bench/cli_latency.py [--runs 30]

One ``peerline run`` daemon on loopback (``tests/app/daemons.py``: 127.0.0.1 only, no LAN
discovery, no port mapping, null audio). Then, ``--runs`` times each and one after another,
the installed ``peerline`` entry point runs ``status``, ``status --json`` and ``lookup`` of the
daemon's own number, each a fresh process as a shell script or a kiosk loop would start it;
``--version`` (no phone asked) shows what starting Python and the CLI costs by itself.

Definition::

    wall_ms = from just before fork/exec to the exit of the process (time.perf_counter)

reported per command as p50, p90 and max over the runs, with ``import_ms``: the time of
``import peerline.app.cli`` alone (``python -X importtime``'s cumulative figure for it, one run)
and the target the issue set (``status`` p50 <= 100 ms). The machine (CPU model, CPUs, load
average) is in the line too: the figures are this machine's.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "app")]

from daemons import start_daemon  # noqa: E402

TARGET_STATUS_P50_MS = 100.0
PEERLINE = Path(sys.executable).with_name("peerline")


def timed(argv: list[str]) -> float:
    """Milliseconds from start to exit of one command; it must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    took = (time.perf_counter() - t0) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr}")
    return took


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(p90, 1),
        "max_ms": round(ordered[-1], 1),
    }


def import_ms() -> float:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import peerline.app.cli"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| peerline\.app\.cli$", line)
        if match:
            return int(match.group(1)) / 1000
    return float("nan")


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model or platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each command (default 30)")
    args = parser.parse_args(argv)
    entry = str(PEERLINE) if PEERLINE.exists() else None
    base = [entry] if entry else [sys.executable, "-m", "peerline"]
    with tempfile.TemporaryDirectory(prefix="peerline-bench-cli-") as tmp:
        data = Path(tmp) / "phone"
        phone = start_daemon(data, "--audio", "null", "--no-port-mapping")
        try:
            where = ["--data", str(data)]
            commands = {
                "version": [*base, "--version"],
                "status": [*base, "status", *where],
                "status_json": [*base, "status", "--json", *where],
                "lookup_own_number": [*base, "lookup", phone.number, *where],
            }
            results = {
                name: summary([timed(cmd) for _ in range(args.runs)])
                for name, cmd in commands.items()
            }
        finally:
            phone.stop(timeout=10)
            if phone.proc.stdout is not None:
                phone.proc.stdout.close()
    status_p50 = results["status"]["p50_ms"]
    print(
        json.dumps(
            {
                "bench": "cli_latency",
                "runs": args.runs,
                "entry_point": "peerline" if entry else "python -m peerline",
                "commands": results,
                "import_ms": round(import_ms(), 1),
                "target_status_p50_ms": TARGET_STATUS_P50_MS,
                "status_meets_target": status_p50 <= TARGET_STATUS_P50_MS,
                "machine": machine(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
