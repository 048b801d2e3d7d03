"""A conference one phone hosts and mixes: its CPU per leg and the delay it adds, as JSON.

    .venv/bin/python bench/conference.py [--legs 4 8] [--seconds 10] [--seed 1] [--quick]

Prints one JSON object: ``{"bench": "conference", "baseline": {...}, "results": [{"legs": 4,
...}, {"legs": 8, ...}], "ok": true, "machine": {...}}``. ``legs`` is the number of remote
parties the host talks to at once (N calls up on the host; N + 1 phones in the conference).

Why: a phone that hosts a conference decodes every leg, mixes (``conference_mix``: each leg is
sent the host's microphone plus every other leg, never its own voice) and encodes a separate
stream for every leg, all inside its 20 ms audio period, on a Raspberry Pi. What that costs per
leg, next to an ordinary two-party call, and what the extra hop does to the delay between two
parties are what decide how many legs a phone can host.

Set-up, everything but the network is the real code: N + 1 real ``CallManager``s
(``peerline.proto.call.manager``; libopus through ``peerline.adapters.opus``, 16 kHz; seeded
``SeededRng``; default ``CallConfig``, so the default media and jitter-buffer settings), joined
by hand as tests/proto/call/test_manager.py joins them: the SIGNAL bodies one hands out go to
the other's ``receive_signal`` keyed by the sender's key, the MEDIA and MEDIA_REPORT bodies to
``receive_media``/``receive_report`` at once (zero network delay, no loss, no jitter; no Noise
session: sealing and opening a packet, ``bench/crypto.py``'s ``seal_open_us_per_packet``, come
on top, once per leg each way). The host dials each party in turn (each dial holds the calls
that talk), each party answers, then the host calls ``conference()``: every leg talks. Then
``1 s`` of warm-up (the first receiver reports move the encoders from their protected start,
16 kbit/s and two redundant copies, to 32 kbit/s) and ``--seconds`` of audio in 20 ms ticks of
virtual time: per tick every phone's ``audio_tick`` (microphone frame in, speaker frame out),
then every phone's ``media_to_send`` delivered, then signals and due timers.

Microphones: every phone (host = source 0, party i = source i) plays a steady tone of its own
(``TONES_HZ[i]``, 319 to 2338 Hz, amplitude 2400, chosen so that no harmonic or
intermodulation product of the others falls on one); party 1 adds a marker every 0.5 s: a 40 ms
Hann-windowed chirp from 3 to 6.5 kHz (above every tone, so it does not disturb the tone
levels). All talk all the time: the worst case for CPU (no DTX).

CPU (host only): ``time.process_time_ns`` around the host's ``audio_tick`` and nothing else
(the parties' ticks, the delivery and the timers are outside), per tick after the warm-up:

- ``host_cpu_ms_per_tick``: mean CPU of one host tick (``host_cpu_ms_p95``: its 95th
  percentile; ``host_wall_ms_per_tick``: the same tick by ``perf_counter``);
- ``host_core_percent`` = ``host_cpu_ms_per_tick / 20 ms * 100``: the share of one core;
- ``cpu_us_per_leg_per_tick`` = ``host_cpu_ms_per_tick / legs`` (in microseconds);
- ``baseline_ms_per_tick``: ``host_cpu_ms_per_tick`` of the same run with one leg, i.e. an
  ordinary two-party call (one decode, one encode, no mixing); the ``baseline`` object;
- ``mix_overhead_us_per_leg`` = ``(host_cpu_ms_per_tick - legs * baseline_ms_per_tick) / legs``
  (microseconds): what a leg costs the host beyond what the same leg would cost as a call of
  its own: the mixing, and encoding a mix of several voices instead of one. (The baseline's
  per-tick fixed costs are counted N times here, so this slightly understates the overhead.)
- ``mixer_us_per_tick``: ``conference_mix`` alone on N legs of 20 ms frames (timed apart,
  best of 7 batches of 100): the part of the overhead that is the mix itself;
- ``host_receive_us_per_tick``: CPU of the host's ``receive_media``/``receive_report`` for
  what the legs sent in a tick (parsing, jitter buffer), outside ``audio_tick``; not counted
  above.

Delay: the lag of each marker, found by cross-correlating the chirp with what a listener's
speaker played in a window from its send time to 300 ms later. A frame goes into
``audio_tick`` when its last sample is in and the frame that comes out starts playing at once,
so mouth-to-ear = lag + one frame (20 ms; sound-card buffers would come on top):

- ``direct_delay_ms``: party 1 -> the host in the one-leg run (an ordinary call through one
  jitter buffer);
- ``conference_delay_ms``: party 1 -> party j through the host (the median over j = 2..N;
  ``conference_delay_spread_ms``: max - min over j); ``to_host_delay_ms``: party 1 -> the
  host's speaker in the conference (should equal the direct delay);
- ``added_delay_ms`` = conference - direct: what the host's hop adds (its jitter buffer's
  playout delay, a frame, Opus' look-ahead a second time).

All measured at the last marker: on a clean path the jitter buffers start at their initial
60 ms and come down to one frame only when they may drop a frame; with tones that never pause
that is the forced drop after ``shrink_wait`` (3 s) each, so about 8 s into the call.
``delay_settled`` says whether that happened (the last two markers had the same lag on every
path and every buffer ended at its target); ``*_at_start`` are the same at the first marker
(1.25 s into the call), with the buffers still at their initial delay. ``--quick`` runs 2 s:
only the start is measured, so its end figures are those too (``delay_settled`` false).

Correctness (the run fails, exit status 1, when a check fails): the level of each tone in each
phone's speaker, as the RMS over 0.5 s Hann-windowed blocks after the warm-up of the block's
amplitude at that frequency, in dB relative to the amplitude it was sent at.

- ``hears_others``: every phone hears every other phone's tone at ``min_heard_db`` >= -10 dB
  (the host hears all legs; a party hears the host and every other party).
- ``own_echo_db``: the level of a phone's own tone in its own speaker relative to the (power)
  mean of the other tones there; the worst phone's. A leg must not get its own voice back.
  Coding a mix of many tones leaves a noise floor between them, so ``own_echo_floor_db`` is
  that phone's floor next to its tone (the same measure 40 Hz either side, relative to the
  same mean). ``echo_free``: on every phone, the own tone is below -30 dB or within 6 dB of
  its floor (what an echo would stand out from: the mix never sends a leg its own frame back,
  so anything there is the codec's noise).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from peerline.adapters.opus import OpusDecoder, OpusEncoder
from peerline.ports import AudioDecoder, AudioEncoder
from peerline.proto.call.manager import CallConfig, CallManager
from peerline.proto.call.state import CallState
from peerline.proto.media.mixer import conference_mix
from peerline.sim.rng import SeededRng

RATE = 16_000
FRAME = RATE // 50
TICK = 0.020
WARMUP_S = 1.0
"Not measured: the encoders settle to the clean path's settings on the first reports."
QUICK_S = 2.0
HOST_KEY = b"\xf0" * 32
TONE_AMPLITUDE = 2400
TONES_HZ = (319.0, 414.0, 603.0, 806.0, 1183.0, 1397.0, 1522.0, 1657.0, 1822.0, 2092.0, 2338.0)
"""Source i's tone (host: 0). No two within 80 Hz, and no harmonic (2f, 3f) or intermodulation
product (f1 + f2, f1 - f2, 2 f1 - f2, f1 + f2 - f3) of any of them within 10 Hz of another:
distortion in the codec does not pass for a tone heard (evenly spaced tones would put every
third-order product on another tone)."""
MARKER_EVERY_S = 0.5
MARKER_S = 0.040
MARKER_LO_HZ, MARKER_HI_HZ = 3_000.0, 6_500.0
MARKER_AMPLITUDE = 6000
MAX_LAG_S = 0.300
BLOCK_S = 0.5
"Blocks of the tone-level analysis (a Hann window of 0.5 s: +-4 Hz main lobe)."
HEAR_DB = -10.0
ECHO_DB = -30.0
ECHO_OVER_FLOOR_DB = 6.0
FLOOR_OFFSETS_HZ = (-40.0, 40.0)
SETTLED_MS = 10.0

Samples = npt.NDArray[np.float64]


def party_key(i: int) -> bytes:
    return bytes([i]) * 32


def opus_codecs(rate: int) -> tuple[AudioEncoder, AudioDecoder]:
    return OpusEncoder(sample_rate=rate), OpusDecoder(sample_rate=rate)


# ------------------------------------------------------------------------------------- audio


def tone_hz(source: int) -> float:
    return TONES_HZ[source]


def marker() -> Samples:
    """A 40 ms linear chirp, 2.5 -> 6 kHz, Hann envelope."""
    n = round(MARKER_S * RATE)
    t = np.arange(n) / RATE
    sweep = MARKER_LO_HZ * t + (MARKER_HI_HZ - MARKER_LO_HZ) * t**2 / (2 * MARKER_S)
    out: Samples = MARKER_AMPLITUDE * np.hanning(n) * np.sin(2 * np.pi * sweep)
    return out


def marker_starts(frames: int) -> list[int]:
    """Sample indexes of party 1's markers: every 0.5 s from 0.25 s after the warm-up, each
    with room for the longest lag before the end."""
    first = round((WARMUP_S + MARKER_EVERY_S / 2) * RATE)
    end = frames * FRAME - round((MAX_LAG_S + MARKER_S) * RATE)
    return list(range(first, end, round(MARKER_EVERY_S * RATE)))


def microphone(source: int, frames: int, *, markers: bool) -> list[bytes]:
    """What source ``source``'s microphone hears, as 20 ms PCM16 frames."""
    t = np.arange(frames * FRAME) / RATE
    x: Samples = TONE_AMPLITUDE * np.sin(2 * np.pi * tone_hz(source) * t + source)
    if markers:
        m = marker()
        for s in marker_starts(frames):
            x[s : s + len(m)] += m
    pcm = np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
    return [pcm[i : i + 2 * FRAME] for i in range(0, len(pcm), 2 * FRAME)]


def marker_lags(out: Samples, starts: list[int]) -> list[int]:
    """For each marker sent at ``starts[k]``, its lag (samples) in ``out`` (0..300 ms)."""
    m = marker()
    span = round(MAX_LAG_S * RATE)
    lags = []
    for s in starts:
        corr = np.correlate(out[s : s + span + len(m)], m, mode="valid")
        lags.append(int(np.argmax(corr)))
    return lags


def level_db(out: Samples, hz: float, skip: int) -> float:
    """dB, relative to ``TONE_AMPLITUDE``, of the tone at ``hz`` in ``out`` (after ``skip``
    samples): the RMS over 0.5 s blocks of each block's Hann-windowed amplitude at ``hz``."""
    n = round(BLOCK_S * RATE)
    x = out[skip:]
    blocks = x[: len(x) // n * n].reshape(-1, n)
    w = np.hanning(n)
    probe = w * np.exp(-2j * np.pi * hz * np.arange(n) / RATE)
    amp = 2 * np.abs(blocks @ probe) / w.sum()
    rms = float(np.sqrt(np.mean(amp**2)))
    return float(20 * np.log10(max(rms, 1e-9) / TONE_AMPLITUDE))


def power_mean_db(levels: list[float]) -> float:
    return float(10 * np.log10(statistics.mean(10 ** (x / 10) for x in levels)))


# ------------------------------------------------------------------------------------ phones


class Conference:
    """The host and its ``legs`` parties, wired by hand, with every leg talking."""

    def __init__(self, legs: int, seed: int) -> None:
        self.keys = [HOST_KEY] + [party_key(i) for i in range(1, legs + 1)]
        self.phones = {
            key: CallManager(
                codecs=opus_codecs,
                rng=SeededRng(f"{seed}/conference/{n}"),
                config=CallConfig(),
                number=f"{n + 1:012d}",
            )
            for n, key in enumerate(self.keys)
        }
        self.host = self.phones[HOST_KEY]
        for key in self.keys[1:]:
            self.host.dial(key, now=0.0)  # holds the calls that talk
            self.settle(0.0)
            self.phones[key].answer(now=0.0)
            self.settle(0.0)
        if legs > 1:
            self.host.conference(now=0.0)
            self.settle(0.0)
        talking = self.host.talking()
        if len(talking) != legs or any(c.held_by_peer for c in talking):
            raise RuntimeError(f"the host talks on {len(talking)} of {legs} legs")
        for key in self.keys[1:]:
            calls = self.phones[key].talking()
            if len(calls) != 1 or calls[0].held_by_peer or calls[0].state is not CallState.ACTIVE:
                raise RuntimeError(f"party {key[0]} does not talk to the host")

    def settle(self, now: float) -> None:
        """Deliver every signal in flight (and drop the events) until none is left."""
        for _ in range(1000):
            moved = False
            for src, phone in self.phones.items():
                for dst, body in phone.signals_to_send():
                    self.phones[dst].receive_signal(src, body, now=now)
                    moved = True
                while phone.next_event() is not None:
                    pass
            if not moved:
                return
        raise RuntimeError("signalling did not settle")

    def buffers_at_target(self) -> bool:
        """Every talking call's jitter buffer plays at its target delay (half a frame)."""
        for phone in self.phones.values():
            for call in phone.talking():
                assert call.media is not None
                jb = call.media.receiver.buffer.counters
                if abs(jb.current_delay_ms - jb.target_delay_ms) >= SETTLED_MS:
                    return False
        return True


@dataclass
class Run:
    outputs: dict[bytes, Samples]
    "Each phone's speaker, the whole run."
    cpu_ns: list[int]
    wall_ns: list[int]
    receive_ns: list[int]
    "Per measured tick (after the warm-up)."
    at_target: bool


def run(conf: Conference, frames: int, warmup: int) -> Run:
    mics = {key: microphone(i, frames, markers=i == 1) for i, key in enumerate(conf.keys)}
    host = conf.host
    parties = [(key, conf.phones[key]) for key in conf.keys[1:]]
    outs: dict[bytes, list[bytes]] = {key: [] for key in conf.keys}
    cpu, wall, receive = [], [], []
    for k in range(frames):
        now = round((k + 1) * TICK, 9)
        w0, c0 = time.perf_counter_ns(), time.process_time_ns()
        played = host.audio_tick(mics[HOST_KEY][k], now=now)
        c1, w1 = time.process_time_ns(), time.perf_counter_ns()
        outs[HOST_KEY].append(played)
        for key, phone in parties:
            outs[key].append(phone.audio_tick(mics[key][k], now=now))
        received = 0
        for src, phone in conf.phones.items():
            for dst, body, report in phone.media_to_send():
                to = conf.phones[dst]
                r0 = time.process_time_ns()
                if body is not None:
                    to.receive_media(src, body, at=now)
                if report is not None:
                    to.receive_report(src, report, at=now)
                if dst == HOST_KEY:
                    received += time.process_time_ns() - r0
        conf.settle(now)
        for phone in conf.phones.values():
            timer = phone.get_timer()
            if timer is not None and timer <= now:
                phone.handle_timer(now=now)
        if k >= warmup:
            cpu.append(c1 - c0)
            wall.append(w1 - w0)
            receive.append(received)
    return Run(
        outputs={
            key: np.frombuffer(b"".join(v), dtype="<i2").astype(np.float64)
            for key, v in outs.items()
        },
        cpu_ns=cpu,
        wall_ns=wall,
        receive_ns=receive,
        at_target=conf.buffers_at_target(),
    )


def mixer_us(legs: int, repeat: int) -> float:
    """``conference_mix`` alone on ``legs`` legs of 20 ms tone frames: microseconds per call
    (best of 7 batches of ``repeat``)."""
    frames = [microphone(i, 1, markers=False)[0] for i in range(legs + 1)]
    best = float("inf")
    for _ in range(7):
        t0 = time.process_time_ns()
        for _ in range(repeat):
            conference_mix(frames[0], frames[1:])
        best = min(best, (time.process_time_ns() - t0) / repeat)
    return best / 1000


# ----------------------------------------------------------------------------------- measure


def _ms(lag: int) -> float:
    """Mouth-to-ear: the lag in samples plus the frame the microphone filled."""
    return lag / RATE * 1000 + TICK * 1000


def measure(legs: int, seconds: float, seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    warmup = round(WARMUP_S / TICK)
    frames = warmup + round(seconds / TICK)
    conf = Conference(legs, seed)
    r = run(conf, frames, warmup)
    keys = conf.keys
    starts = marker_starts(frames)
    if len(starts) < 2:
        raise SystemExit("--seconds too short for two markers")
    # Party 1's markers at every other phone.
    lags = {key: marker_lags(r.outputs[key], starts) for key in keys if key != party_key(1)}
    settled = r.at_target and all(v[-1] == v[-2] for v in lags.values())
    to_host = lags[HOST_KEY]
    via = [lags[key] for key in keys[2:]]
    # Tone levels: levels[listener][source]; each phone's own tone against the others' there,
    # and the codec's noise floor next to it (the same measure 40 Hz either side).
    skip = warmup * FRAME
    phones = range(len(keys))
    levels = [[level_db(r.outputs[key], tone_hz(i), skip) for i in phones] for key in keys]
    heard = [levels[j][i] for j in phones for i in phones if i != j]
    echo, floor = [], []
    for j, key in enumerate(keys):
        others = power_mean_db([levels[j][i] for i in phones if i != j])
        near = [level_db(r.outputs[key], tone_hz(j) + d, skip) for d in FLOOR_OFFSETS_HZ]
        echo.append(levels[j][j] - others)
        floor.append(power_mean_db(near) - others)
    worst = max(phones, key=lambda j: echo[j])
    echo_free = all(echo[j] < max(ECHO_DB, floor[j] + ECHO_OVER_FLOOR_DB) for j in phones)
    cpu_ms = statistics.mean(r.cpu_ns) / 1e6
    row: dict[str, Any] = {
        "legs": legs,
        "phones": legs + 1,
        "host_cpu_ms_per_tick": round(cpu_ms, 4),
        "host_cpu_ms_p95": round(float(np.percentile(r.cpu_ns, 95)) / 1e6, 4),
        "host_wall_ms_per_tick": round(statistics.mean(r.wall_ns) / 1e6, 4),
        "host_core_percent": round(cpu_ms / (TICK * 1000) * 100, 2),
        "cpu_us_per_leg_per_tick": round(cpu_ms * 1000 / legs, 1),
        "mixer_us_per_tick": round(mixer_us(legs, 100), 1),
        "host_receive_us_per_tick": round(statistics.mean(r.receive_ns) / 1000, 1),
        "to_host_delay_ms": round(_ms(to_host[-1]), 1),
        "to_host_delay_ms_at_start": round(_ms(to_host[0]), 1),
    }
    if via:
        end = [_ms(v[-1]) for v in via]
        start = [_ms(v[0]) for v in via]
        row |= {
            "conference_delay_ms": round(statistics.median(end), 1),
            "conference_delay_ms_at_start": round(statistics.median(start), 1),
            "conference_delay_spread_ms": round(max(end) - min(end), 1),
        }
    row |= {
        "delay_settled": settled,
        "markers": len(starts),
        "hears_others": min(heard) >= HEAR_DB,
        "min_heard_db": round(min(heard), 1),
        "own_echo_db": round(echo[worst], 1),
        "own_echo_floor_db": round(floor[worst], 1),
        "echo_free": echo_free,
        "ticks_measured": len(r.cpu_ns),
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    return row


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):  # x86; ARM (a Raspberry Pi) has Model
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    try:
        import opuslib.api.info  # type: ignore[import-untyped]

        opus = str(opuslib.api.info.get_version_string().decode())
    except (ImportError, OSError, AttributeError):  # informational only
        opus = ""
    return {
        "cpu_model": model or platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "arch": platform.machine(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "libopus": opus,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--legs", type=int, nargs="+", default=[4, 8], help="remote parties (default 4 8)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured audio (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_S:g} s (a smoke test)")
    args = parser.parse_args(argv)
    most = CallConfig().max_calls
    if any(not 2 <= n <= most for n in args.legs):
        parser.error(f"--legs: each from 2 to {most} (the host's max_calls)")
    seconds = QUICK_S if args.quick else args.seconds
    if seconds < 1.0:
        parser.error("--seconds must be at least 1")
    base = measure(1, seconds, args.seed)
    base_ms = base["host_cpu_ms_per_tick"]
    direct, direct_start = base["to_host_delay_ms"], base["to_host_delay_ms_at_start"]
    base = {k: v for k, v in base.items() if not k.startswith("to_host")} | {
        "direct_delay_ms": direct,
        "direct_delay_ms_at_start": direct_start,
    }
    results = []
    for legs in args.legs:
        row = measure(legs, seconds, args.seed)
        cpu_ms = row["host_cpu_ms_per_tick"]
        row |= {
            "baseline_ms_per_tick": base_ms,
            "mix_overhead_us_per_leg": round((cpu_ms - legs * base_ms) * 1000 / legs, 1),
            "direct_delay_ms": direct,
            "added_delay_ms": round(row["conference_delay_ms"] - direct, 1),
            "direct_delay_ms_at_start": direct_start,
            "added_delay_ms_at_start": round(row["conference_delay_ms_at_start"] - direct_start, 1),
        }
        row["delay_settled"] = row["delay_settled"] and base["delay_settled"]
        results.append(row)
    rows = [base, *results]
    ok = all(r["hears_others"] and r["echo_free"] for r in rows)
    out = {
        "bench": "conference",
        "seconds": seconds,
        "warmup_s": WARMUP_S,
        "seed": args.seed,
        "baseline": base,
        "results": results,
        "ok": ok,
        "machine": machine(),
    }
    print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
