"""CPU and memory of one full-duplex call between two real daemons, as one JSON line.

    .venv/bin/python bench/cpu.py [--seconds 30] [--idle-seconds 5]

Two ``peerline run`` daemons on loopback (``tests/app/daemons.py``: 127.0.0.1 only, no LAN
discovery, no overlay), each with ``--audio file:IN.wav,OUT.wav``. Each IN.wav is the ALSA
speech (``bench/voice.py``'s ``load_speech``, 16 kHz) repeated to the call's length, phone B's
starting half-way through, so both phones talk all the time (only the pauses between words
are DTX; the input never runs out into silence). The phones add each other as peers; then
both sit with no call for ``--idle-seconds`` (the idle figures); then A dials, B answers, and
once both are active the call runs ``--seconds``; A hangs up.

Definition::

    cpu_pct_per_call = mean over the two daemons of
        (utime + stime during the call) / (wall time of the call) * 100

i.e. what one call costs one phone, in percent of one CPU core (a phone is always one end of a
call). "During the call" is from the moment both ends are active to just before the hangup;
utime and stime come from ``/proc/PID/stat`` (every thread of the daemon: the event loop and
the audio thread) read at both moments, so the control commands that set the call up and the
ones that read its status afterwards are outside the window. ``idle_cpu_pct`` is the same ratio
over the idle window (mean of the two daemons) and ``rss_mb`` the largest VmRSS of either
daemon, sampled every 0.25 s during the call (``/proc/PID/status``; MiB).

The line also has, per daemon: its own cpu_pct and idle_cpu_pct, user and system seconds, peak
RSS (VmRSS sampled, and VmHWM), the call's media stats from ``status --json`` (tx kbps and
packets, rx packets, lost, concealed, jitter, playout delay, rtt, bitrate, redundancy) and the
audio device's counters; and the machine (CPU model, CPUs, load average, Python, kernel).
Daemons are stopped with SIGTERM to their own pids (and killed by pid if one does not stop);
their logs go to stderr if something fails.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests" / "app")]

from daemons import Daemon, cli, cli_json, start_daemon  # noqa: E402

from voice import RATE, load_speech, write_wav  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
RSS_EVERY = 0.25
SLACK_S = 10.0
"Speech in IN.wav beyond the call (ringing, set-up, a slow machine): it must not run out."


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process so far, in seconds: every thread, not its children."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # fields 14 and 15 of stat


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):  # x86; ARM (a Raspberry Pi) has Model
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": model or platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "arch": platform.machine(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


class Window:
    """CPU seconds of some processes between ``start`` and ``stop`` against wall time."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.t0 = self.t1 = 0.0
        self.cpu0: dict[str, tuple[float, float]] = {}
        self.cpu1: dict[str, tuple[float, float]] = {}

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.cpu0 = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> None:
        self.cpu1 = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.t1 = time.monotonic()

    @property
    def wall(self) -> float:
        return self.t1 - self.t0

    def user_sys(self, name: str) -> tuple[float, float]:
        (u0, s0), (u1, s1) = self.cpu0[name], self.cpu1[name]
        return u1 - u0, s1 - s0

    def pct(self, name: str) -> float:
        return 100 * sum(self.user_sys(name)) / self.wall


def wait_for_state(d: Daemon, state: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        calls = d.status()["calls"]
        if calls and calls[0]["state"] == state:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{d.data.name}: the call did not become {state}: {d.status()['calls']}")


def media_summary(call: dict[str, Any]) -> dict[str, Any]:
    m = call["media"] or {}
    rx, tx = m.get("rx", {}), m.get("tx", {})
    return {
        "tx_kbps": tx.get("kbps"),
        "tx_packets": tx.get("packets"),
        "dtx_frames": tx.get("dtx_frames"),
        "rx_packets": rx.get("packets"),
        "rx_lost": rx.get("lost"),
        "concealed": rx.get("concealed"),
        "jitter_ms": rx.get("jitter_ms"),
        "playout_delay_ms": rx.get("playout_delay_ms"),
        "rtt_ms": m.get("rtt_ms"),
        "bitrate": m.get("bitrate"),
        "redundancy": m.get("redundancy"),
        "fec": m.get("fec"),
        "decode_errors": m.get("counters", {}).get("decode_errors"),
        "talk_s": call.get("talk_s"),
    }


def run(work: Path, seconds: float, idle_seconds: float) -> dict[str, Any]:
    total = round((seconds + SLACK_S) * RATE)
    speech = load_speech(total / RATE)  # repeated to length
    inputs = {"a": speech, "b": np.roll(speech, len(speech) // 2)}  # B says something else
    daemons: dict[str, Daemon] = {}
    try:
        for name, samples in inputs.items():
            write_wav(work / f"{name}_in.wav", samples)
            audio = f"file:{work / f'{name}_in.wav'},{work / f'{name}_out.wav'}"
            daemons[name] = start_daemon(work / name, "--audio", audio)
        a, b = daemons["a"], daemons["b"]
        cli(a.data, "peer", "add", b.number, b.public_key, b.addr)
        cli(b.data, "peer", "add", a.number, a.public_key, a.addr)
        pids = {name: d.proc.pid for name, d in daemons.items()}

        time.sleep(1.0)  # let start-up work settle before the idle window
        idle = Window(pids)
        idle.start()
        time.sleep(idle_seconds)
        idle.stop()

        dialed = cli_json(a.data, "dial", b.number)
        if dialed["call"]["state"] != "ringback":
            raise RuntimeError(f"dial: {dialed['call']}")
        wait_for_state(b, "incoming")
        cli_json(b.data, "answer")
        wait_for_state(a, "active")

        call = Window(pids)
        rss = dict.fromkeys(pids, 0)
        call.start()
        end = call.t0 + seconds
        while (now := time.monotonic()) < end:
            for name, pid in pids.items():
                rss[name] = max(rss[name], memory_kib(pid)["VmRSS"])
            time.sleep(min(RSS_EVERY, max(0.0, end - now)))
        call.stop()
        peaks = {name: memory_kib(pid) for name, pid in pids.items()}
        for name in pids:
            rss[name] = max(rss[name], peaks[name]["VmRSS"])

        statuses = {name: d.status() for name, d in daemons.items()}
        hung = cli_json(a.data, "hangup")
        if hung["state"] != "ended":
            raise RuntimeError(f"hangup: {hung}")
        for d in daemons.values():
            d.stop(5)
    except BaseException:
        for name, d in daemons.items():
            if d.proc.poll() is None:
                d.proc.kill()  # this daemon's own pid
                d.proc.wait()
            log = d.data / "daemon.log"
            if log.exists():
                print(f"--- {name} daemon.log\n{log.read_text()[-4000:]}", file=sys.stderr)
        raise

    per_daemon: dict[str, Any] = {}
    for name, st in statuses.items():
        user, system = call.user_sys(name)
        device = st.get("audio") or {}
        per_daemon[name] = {
            "pid": pids[name],
            "cpu_pct": round(call.pct(name), 2),
            "idle_cpu_pct": round(idle.pct(name), 2),
            "user_s": round(user, 2),
            "sys_s": round(system, 2),
            "rss_mb": round(rss[name] / 1024, 1),
            "hwm_mb": round(peaks[name]["VmHWM"] / 1024, 1),
            "media": media_summary(st["calls"][0]),
            "audio": {
                k: device.get(k)
                for k in ("frames_captured", "frames_played", "underruns", "late", "frames_dropped")
            },
        }
    names = list(per_daemon)
    return {
        "cpu_pct_per_call": round(sum(call.pct(n) for n in names) / len(names), 2),
        "rss_mb": round(max(rss.values()) / 1024, 1),
        "idle_cpu_pct": round(sum(idle.pct(n) for n in names) / len(names), 2),
        "call_wall_s": round(call.wall, 2),
        "idle_wall_s": round(idle.wall, 2),
        "seconds": seconds,
        "definition": "mean over both daemons of (utime+stime during the call) / call wall * 100",
        "daemons": per_daemon,
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="call length (default 30)")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=None,
        help="idle window before the call (default: min(5, --seconds))",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    idle_seconds = min(5.0, args.seconds) if args.idle_seconds is None else args.idle_seconds
    if idle_seconds <= 0:
        parser.error("--idle-seconds must be positive")
    with tempfile.TemporaryDirectory(prefix="peerline-cpu-") as tmp:
        result = run(Path(tmp), args.seconds, idle_seconds)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
