"""Voice quality through the real engine, under packet loss and jitter, as JSON.

Prints one JSON row per condition, then a summary row with the goals met or not:

    .venv/bin/python bench/voice.py [--conditions "0:0,5:30,10:30,20:30,0:30"] [--seed 1]
        [--seconds 0] [--phase-ms 10]

Each row has ``loss_pct``, ``jitter_ms``, ``pesq_wb``, ``added_delay_ms`` and ``kbps_on_wire``,
plus what happened on the way (frames played, concealed, rebuilt from FEC; the jitter buffer's
counters; the encoder settings at the end).

The pipeline, in virtual time with 20 ms ticks; everything but the network is the real code:

- Speech: the ALSA test WAVs (/usr/share/sounds/alsa, 48 kHz mono 16-bit; Noise.wav left out),
  concatenated (about 11 s), low-passed by a Kaiser-windowed sinc FIR (cutoff 7.6 kHz) and
  decimated by 3 to 16 kHz, cut into 20 ms frames of 320 samples. ``--seconds`` shortens it
  (or repeats it to length).
- Phone A talks, phone B listens; each runs the real ``MediaSession``
  (``peerline.proto.media.session``) that the daemon runs for a call, on a real Noise IK
  session between two ``Node``s (handshake done before the call). A: frame k is complete at
  ``(k + 1) * 20 ms``; then ``MediaSession.capture``: ``OpusEncoder`` (16 kHz, VOIP, DTX;
  bitrate and expected loss from the loss policy) -> ``MediaSender`` (seq, timestamp, marker,
  RFC 2198 redundancy) -> the MEDIA body -> ``Node.send_media`` (with a MEDIA_REPORT when one
  is due) -> the sealed datagrams. ``--no-dtx`` sends silence too.
- Network: each datagram, either way, is dropped with probability ``loss`` (seeded) or
  delivered after 20 ms plus a uniform 0..``jitter`` ms (so packets may overtake each other).
- B: ``Node.receive_datagram`` at the arrival time -> ``MediaReceived`` ->
  ``MediaSession.receive`` (jitter buffer); every 20 ms (at ``--phase-ms`` past each sender
  tick: the two phones' audio clocks are not in step; 10 ms is the mean of a random phase)
  ``MediaSession.playout``: a frame decoded, concealed (FEC from the next packet if it has
  any, else PLC), or silence. Every playout yields exactly 20 ms, so the jitter buffer's
  time-stretch lengthens or shortens the output as it would on a phone. B's microphone is
  silent: with DTX it sends only its receiver reports (MEDIA_REPORT: loss, jitter, RTT echo;
  every 250 ms for the first three, then every second), which cross the same lossy network
  and drive A's loss policy, exactly as between two phones.

Scoring: the output is aligned to the input by cross-correlation (the best single lag over the
whole run). That lag, in ms, is the mouth-to-ear delay on this simulated path: framing (20 ms:
a frame is sent when its last sample is in), Opus' lookahead (6.5 ms), the network (20 ms base
plus its jitter), the jitter buffer's wait and the playout phase. ``added_delay_ms`` is that lag
minus the 20 ms base network delay: what the engine and the jitter add on top of the network's
own latency (an audio device's buffers would come on top of it). The aligned output, trimmed or
zero-padded to the input's length, is scored with ``pesq(16000, ref, deg, "wb")`` (PESQ-WB,
MOS-LQO). ``kbps_on_wire``: every byte of every datagram A sent during the call (UDP payload:
session header, tag, frame headers, media header, Opus, redundancy; IP/UDP headers excluded) per
second of audio, times 8 / 1000; ``kbps_with_ip_udp`` adds 28 bytes (IPv4 + UDP) per datagram.
Goals (the voice issue), each at most 64 kbit/s on the wire: 0 % loss and 0 ms jitter PESQ-WB
>= 4.3 and at most 60 ms added delay; 5 % / 30 ms >= 3.8; 10 % / 30 ms >= 3.5; 20 % / 30 ms
>= 3.0; 30 ms jitter at most 100 ms added delay.
"""

import argparse
import heapq
import itertools
import json
import random
import sys
import time
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from peerline.adapters.opus import OpusDecoder, OpusEncoder
from peerline.proto.events import MediaReceived, MediaReportReceived
from peerline.proto.identity import Identity
from peerline.proto.media.session import MediaConfig, MediaSession
from peerline.proto.media.stream import EncoderSettings
from peerline.proto.node import Node
from peerline.sim.rng import SeededRng
from peerline.types import Addr

SOUNDS = Path("/usr/share/sounds/alsa")
SPEECH = (
    "Front_Center",
    "Front_Left",
    "Front_Right",
    "Rear_Center",
    "Rear_Left",
    "Rear_Right",
    "Side_Left",
    "Side_Right",
)
RATE = 16_000
FRAME = 320
TICK = 0.020
BASE_DELAY = 0.020
IP_UDP_BYTES = 28
CALL_START = 1.0
"The call starts at 1 s of virtual time (the handshake happens at 0)."
ADDR_A: Addr = ("192.0.2.1", 4720)
ADDR_B: Addr = ("198.51.100.2", 4720)
DEFAULT_CONDITIONS = "0:0,5:30,10:30,20:30,0:30"

Samples = npt.NDArray[np.float64]


# ------------------------------------------------------------------------------------- audio


def lowpass_decimate3(x: Samples, taps: int = 255) -> Samples:
    """48 kHz -> 16 kHz: Kaiser-windowed sinc low-pass at 7.6 kHz (about 80 dB stop band
    from 8 kHz on), then every third sample. Zero phase (the filter's delay is removed)."""
    n = np.arange(taps) - (taps - 1) / 2
    cutoff = 7_600 / 48_000  # cycles per sample
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(taps, 8.0)
    h /= h.sum()
    y = np.convolve(x, h)[(taps - 1) // 2 :][: len(x)]
    out: Samples = y[::3]
    return out


def load_speech(seconds: float) -> npt.NDArray[np.int16]:
    """The ALSA speech WAVs at 16 kHz, whole 20 ms frames (``seconds`` > 0: cut or repeated)."""
    parts = []
    for name in SPEECH:
        with wave.open(str(SOUNDS / f"{name}.wav")) as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (48_000, 1, 2):
                raise SystemExit(f"{name}.wav is not 48 kHz mono 16-bit")
            parts.append(np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"))
    x48 = np.concatenate(parts).astype(np.float64)
    x16 = lowpass_decimate3(x48)
    if seconds > 0:
        want = round(seconds * RATE)
        x16 = np.resize(x16, want)  # repeats when longer than the speech
    x16 = x16[: len(x16) // FRAME * FRAME]
    return np.clip(np.round(x16), -32768, 32767).astype(np.int16)


def write_wav(path: Path, samples: npt.NDArray[np.int16]) -> None:
    """A 16 kHz mono 16-bit WAV, as ``peerline run --audio file:IN,OUT`` reads it."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype("<i2").tobytes())


def align(ref: Samples, deg: Samples, max_lag: int) -> int:
    """The lag (samples, 0..max_lag) at which ``deg`` best matches ``ref`` (FFT correlation)."""
    n = 1 << int(np.ceil(np.log2(len(ref) + len(deg))))
    corr = np.fft.irfft(np.fft.rfft(deg, n) * np.conj(np.fft.rfft(ref, n)), n)
    return int(np.argmax(corr[: max_lag + 1]))


# ----------------------------------------------------------------------------------- the call


@dataclass
class Outcome:
    output: npt.NDArray[np.int16]
    datagrams: int
    wire_bytes: int
    decoded: int
    concealed: int
    fec_decodes: int
    inserted: int
    skipped: int
    decode_errors: int
    silence: int
    settings_changes: int
    settings: EncoderSettings
    sender: dict[str, int]
    receiver: dict[str, int]
    jitter: dict[str, int | float]
    rtt_ms: float | None


def connected_pair(seed: int) -> tuple[Node, Node]:
    """Phones A and B with a live session (the handshake crossed a perfect link at t = 0)."""
    a = Node(identity=Identity.from_seed(b"\x01" * 32), rng=SeededRng(seed))
    b = Node(identity=Identity.from_seed(b"\x02" * 32), rng=SeededRng(seed + 1000))
    a.add_peer(b.identity.public_key, ADDR_B)
    b.add_peer(a.identity.public_key, ADDR_A)
    a.connect(b.identity.public_key, now=0.0)
    for _ in range(20):
        out_a = a.datagrams_to_send(now=0.0)
        out_b = b.datagrams_to_send(now=0.0)
        if not out_a and not out_b:
            break
        for data, _addr in out_a:
            b.receive_datagram(data, ADDR_A, now=0.0)
        for data, _addr in out_b:
            a.receive_datagram(data, ADDR_B, now=0.0)
    while a.next_event() is not None or b.next_event() is not None:
        pass
    return a, b


# Event kinds, in the order they run when they fall on the same instant.
_ARRIVE_B, _ARRIVE_A, _SEND, _PLAY = range(4)


def run_call(
    pcm: npt.NDArray[np.int16],
    *,
    loss: float,
    jitter: float,
    seed: int,
    phase: float,
    config: MediaConfig | None = None,
) -> Outcome:
    """Send ``pcm`` from A to B through the engine and a lossy, jittery path; B's playout."""
    rng = random.Random(seed)
    a, b = connected_pair(seed)
    key_a, key_b = a.identity.public_key, b.identity.public_key
    config = config or MediaConfig()
    # A talks; B listens (its microphone is silent: DTX sends only its receiver reports).
    talk = MediaSession(OpusEncoder(), OpusDecoder(), config=config, now=CALL_START)
    listen = MediaSession(OpusEncoder(), OpusDecoder(), config=config, now=CALL_START + phase)
    frames = len(pcm) // FRAME
    raw = pcm.astype("<i2").tobytes()
    silent = b"\x00" * (2 * FRAME)
    # Playout runs until every frame has had time to arrive and drain (plus a second).
    end = CALL_START + frames * TICK + BASE_DELAY + jitter + 1.0
    queue: list[tuple[float, int, int, bytes]] = []
    order = itertools.count()

    def at(t: float, kind: int, data: bytes = b"") -> None:
        heapq.heappush(queue, (round(t, 9), kind, next(order), data))

    def network(datagrams: list[tuple[bytes, Addr]], now: float, kind: int) -> None:
        for datagram, _addr in datagrams:
            if rng.random() >= loss:
                at(now + BASE_DELAY + rng.uniform(0.0, jitter), kind, datagram)

    for k in range(frames):
        at(CALL_START + (k + 1) * TICK, _SEND, k.to_bytes(4, "big"))
    for m in range(int((end - CALL_START) / TICK)):
        at(CALL_START + phase + m * TICK, _PLAY)

    out: list[bytes] = []
    wire = {"datagrams": 0, "bytes": 0}
    settings, changes = talk.settings, 0
    while queue:
        now, kind, _, data = heapq.heappop(queue)
        if kind == _SEND:
            k = int.from_bytes(data, "big")
            body = talk.capture(raw[k * 2 * FRAME : (k + 1) * 2 * FRAME], now)
            report = talk.report_due(now)
            if (body is not None or report is not None) and not a.send_media(
                key_b, body, now=now, report=report
            ):
                raise RuntimeError("no session to send on")
            sent = a.datagrams_to_send(now=now)
            wire["datagrams"] += len(sent)
            wire["bytes"] += sum(len(d) for d, _ in sent)
            network(sent, now, _ARRIVE_B)
        elif kind == _ARRIVE_B:
            b.receive_datagram(data, ADDR_A, now=now)
            while (ev := b.next_event()) is not None:
                if isinstance(ev, MediaReceived):
                    listen.receive(ev.body, ev.at)
                elif isinstance(ev, MediaReportReceived):
                    listen.receive_report(ev.body, ev.at)
            network(b.datagrams_to_send(now=now), now, _ARRIVE_A)
        elif kind == _ARRIVE_A:
            a.receive_datagram(data, ADDR_B, now=now)
            while (ev := a.next_event()) is not None:
                if isinstance(ev, MediaReportReceived):
                    talk.receive_report(ev.body, ev.at)
                    if talk.settings != settings:
                        settings, changes = talk.settings, changes + 1
                elif isinstance(ev, MediaReceived):
                    talk.receive(ev.body, ev.at)
        else:
            out.append(listen.playout(now))
            body = listen.capture(silent, now)
            report = listen.report_due(now)
            if body is not None or report is not None:
                b.send_media(key_a, body, now=now, report=report)
            network(b.datagrams_to_send(now=now), now, _ARRIVE_A)
        for node in (a, b):
            timer = node.get_timer()
            if timer is not None and timer <= now:
                node.handle_timer(now=now)
    c, jb = listen.counters, listen.receiver.buffer.counters
    return Outcome(
        output=np.frombuffer(b"".join(out), dtype="<i2").copy(),
        datagrams=wire["datagrams"],
        wire_bytes=wire["bytes"],
        decoded=c.decoded,
        concealed=c.concealed,
        fec_decodes=c.fec_decoded,
        inserted=jb.grown,
        skipped=jb.shrunk,
        decode_errors=c.decode_errors,
        silence=c.silence,
        settings_changes=changes,
        settings=settings,
        sender=talk.sender.counters.as_dict()
        | {
            "dtx_frames": talk.counters.dtx_frames,
            "reports_received": talk.counters.reports_received,
        },
        receiver=listen.receiver.counters.as_dict() | {"reports_sent": c.reports_sent},
        jitter=jb.as_dict(),
        rtt_ms=None if talk.rtt is None else round(talk.rtt * 1000, 1),
    )


def measure(
    pcm: npt.NDArray[np.int16],
    loss_pct: float,
    jitter_ms: float,
    seed: int,
    phase_ms: float,
    *,
    dtx: bool = True,
) -> dict[str, object]:
    from pesq import pesq  # type: ignore[import-untyped]

    t0 = time.perf_counter()
    o = run_call(
        pcm,
        loss=loss_pct / 100,
        jitter=jitter_ms / 1000,
        seed=seed,
        phase=phase_ms / 1000,
        config=MediaConfig(dtx=dtx),
    )
    ref = pcm.astype(np.float64)
    deg = o.output.astype(np.float64)
    lag = align(ref, deg, max_lag=min(len(deg) - 1, RATE // 2))
    aligned = deg[lag : lag + len(ref)]
    aligned = np.pad(aligned, (0, len(ref) - len(aligned)))
    score = float(pesq(RATE, ref, aligned, "wb"))
    # The output starts at the first playout tick (CALL_START + phase); the input at CALL_START.
    total_ms = lag / RATE * 1000 + phase_ms
    seconds = len(pcm) / RATE
    s = o.settings
    return {
        "loss_pct": loss_pct,
        "jitter_ms": jitter_ms,
        "pesq_wb": round(score, 3),
        "added_delay_ms": round(total_ms - BASE_DELAY * 1000, 1),
        "kbps_on_wire": round(o.wire_bytes * 8 / seconds / 1000, 2),
        "kbps_with_ip_udp": round(
            (o.wire_bytes + IP_UDP_BYTES * o.datagrams) * 8 / seconds / 1000, 2
        ),
        "mouth_to_ear_ms": round(total_ms, 1),
        "rtt_ms": o.rtt_ms,
        "dtx": dtx,
        "seconds": round(seconds, 2),
        "datagrams": o.datagrams,
        "bytes_per_datagram": round(o.wire_bytes / max(1, o.datagrams), 1),
        "frames": len(pcm) // FRAME,
        "played": o.decoded,
        "concealed": o.concealed,
        "fec_decodes": o.fec_decodes,
        "inserted": o.inserted,
        "skipped": o.skipped,
        "silence": o.silence,
        "decode_errors": o.decode_errors,
        "settings_changes": o.settings_changes,
        "final_settings": asdict(s),
        "sender": o.sender,
        "receiver": o.receiver,
        "jitter_buffer": {
            k: round(v, 1) if isinstance(v, float) else v for k, v in o.jitter.items()
        },
        "wall_s": round(time.perf_counter() - t0, 2),
    }


def goals(row: dict[str, object]) -> dict[str, bool]:
    """The issue's goals that apply to this row's condition."""
    loss, jit = row["loss_pct"], row["jitter_ms"]
    pesq_wb, delay, kbps = row["pesq_wb"], row["added_delay_ms"], row["kbps_on_wire"]
    assert isinstance(pesq_wb, float) and isinstance(delay, float) and isinstance(kbps, float)
    met = {"kbps<=64": kbps <= 64}
    floor = {(0, 0): 4.3, (5, 30): 3.8, (10, 30): 3.5, (20, 30): 3.0}.get((loss, jit))  # type: ignore[arg-type]
    if floor is not None:
        met[f"pesq_wb>={floor}"] = pesq_wb >= floor
    if (loss, jit) == (0, 0):
        met["added_delay_ms<=60"] = delay <= 60
    if jit == 30:
        met["added_delay_ms<=100"] = delay <= 100
    return met


def parse_conditions(text: str) -> list[tuple[float, float]]:
    out = []
    for item in text.split(","):
        loss, _, jit = item.strip().partition(":")
        out.append((float(loss), float(jit or 0)))
    return out


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", default=DEFAULT_CONDITIONS, help='"loss%%:jitter_ms,..."')
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=0.0, help="0: all the speech (~11 s)")
    parser.add_argument("--phase-ms", type=float, default=10.0, help="playout clock phase")
    parser.add_argument("--no-dtx", action="store_true", help="send every frame, silence too")
    args = parser.parse_args(argv)
    if not 0 <= args.phase_ms < TICK * 1000:
        parser.error("--phase-ms must be in [0, 20)")
    pcm = load_speech(args.seconds)
    rows = []
    for loss, jit in parse_conditions(args.conditions):
        row = measure(pcm, _num(loss), _num(jit), args.seed, args.phase_ms, dtx=not args.no_dtx)
        row["goals"] = goals(row)
        rows.append(row)
        print(json.dumps(row), flush=True)
    checked = {
        f"{r['loss_pct']}:{r['jitter_ms']} {name}": ok
        for r in rows
        for name, ok in r["goals"].items()  # type: ignore[attr-defined]
    }
    print(
        json.dumps(
            {
                "summary": True,
                "conditions": len(rows),
                "goals_met": sum(checked.values()),
                "goals_checked": len(checked),
                "all_met": all(checked.values()),
                "failed": [name for name, ok in checked.items() if not ok],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
