"""Calls through the network lab: real daemons behind nftables NATs place a call by number,
answer it and talk through ``file:`` audio, on a relayed path and on a punched direct one.

Each test builds a public seed phone (a supernode: everyone's relay) and two phones behind NAT
routers, plays half of the ALSA speech WAVs from each phone's IN.wav (test_call_daemons.py's
helpers: same lead silence, same windowed-correlation score) and checks the call's status on
both phones and the output at the far end:

- symmetric x symmetric cannot be punched, so the call runs through the supernode's relay:
  both phones say ``path: "relayed"``, and the relay's counters show the voice forwarded
  (at least every media packet the phones received) and nothing dropped for its per-channel
  quota (100 packets/s, 24,000 B/s each way): 50 voice packets/s plus reports fit;
- port-restricted x port-restricted punches: ``path: "direct"``, with 50 ms added each way on
  the caller's router link (``Lab.delay``), so the call's measured RTT is about 100 ms;
- the same direct call with 10 % loss each way on the caller's router link, switched on once
  the call is active (the media is what is measured, not the handshake's retries): each sender
  hears the loss in the far end's reports and sends redundant copies, and the speech still
  correlates above a lower floor.

The measured figures are printed (``-rP`` or ``-s`` shows them). Measured on a 2-CPU VM
(6 runs of the file, 38-40 s each, about 12-13 s per test of which ~4 s is the phones joining):

- relayed: RTT 2-5 ms, 302-306 media packets received each way, none lost; the relay forwarded
  623-625 datagrams (about 112 B each: ~50 packets/s and ~5.6 kB/s per direction, a quarter
  of the byte quota) with every drop counter 0; correlation 0.948 / 0.934-0.942, PESQ-WB 4.52;
- delayed direct (50 ms each way): RTT 102-104 ms, correlation 0.948 / 0.934, PESQ-WB 4.52;
- 10 % loss: 17-35 packets lost of ~300 each way (most recovered from the copies), peak
  far_loss_pct 9.8-50 (the last report's figure was 0 once: hence the peak), redundancy 2 at
  16 kbit/s at both ends, correlation 0.924-0.945, PESQ-WB 3.77-4.24.

Floors: correlation ``MIN_CORRELATION`` (0.7, test_call_daemons.py's) for the clean calls and
``MIN_CORRELATION_LOSSY`` under loss; the RTT within -5..+60 ms of the configured 100 ms.
"""

import json
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from lab_phones import PORT, control, start_phone, wait_until
from test_call_daemons import (
    LEAD_S,
    MAX_LAG_S,
    MIN_CORRELATION,
    RATE,
    TAIL_S,
    _read_wav,
    _score,
    _voice,
)

from netlab import Host, Lab, NatBehaviour, Router

pytestmark = pytest.mark.netns

DELAY_MS = 50.0
"Added each way on the caller's router link in the delayed call: the RTT grows by twice this."
RTT_SLACK_MS = 60.0
"The frame relay and two Python daemons on a busy machine add a little on top of the delay."
LOSS_PCT = 10.0
MIN_CORRELATION_LOSSY = 0.6
"10 % loss each way, mostly recovered from redundancy, the rest concealed (measured 0.9+)."


@dataclass
class Call:
    """Two NATted phones and the public seed (their relay), ready to call."""

    lab: Lab
    tmp: Path
    seed: Path
    a: Path
    b: Path
    router_a: Router
    router_b: Router
    procs: dict[str, "subprocess.Popen[bytes]"]
    said: dict[str, npt.NDArray[np.int16]]
    voice: Any
    logs: list[Path] = field(default_factory=list)

    def tails(self) -> str:
        return "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in self.logs if p.exists())


def _current(data: Path) -> dict[str, Any]:
    calls = control(data, "status")["calls"]
    assert calls, "no call in status"
    call: dict[str, Any] = calls[0]
    return call


def _setup(
    lab: Lab,
    tmp_path: Path,
    nat_a: NatBehaviour,
    nat_b: NatBehaviour,
    links: Callable[[Router, Router], None] | None = None,
) -> Call:
    """Speech WAVs, the seed, two phones behind NATs with ``file:`` audio; returns once both
    are clients with a relay and A finds B's record (listing its relay)."""
    voice = _voice()
    try:
        speech = voice.load_speech(0)
    except (OSError, SystemExit) as exc:
        pytest.skip(f"ALSA speech WAVs unavailable (Debian package alsa-utils): {exc}")
    half = len(speech) // 2 // 320 * 320
    said = {"a": speech[:half], "b": speech[half : 2 * half]}
    lead = np.zeros(round(LEAD_S * RATE), dtype=np.int16)
    for name, x in said.items():
        voice.write_wav(tmp_path / f"{name}_in.wav", np.concatenate([lead, x]))

    seed_host = lab.host("s0")
    router_a, router_b = lab.router("ra", nat=nat_a), lab.router("rb", nat=nat_b)
    if links is not None:
        links(router_a, router_b)
    hosts: dict[str, Host] = {
        "a": lab.host("a", behind=router_a),
        "b": lab.host("b", behind=router_b),
    }
    seed = tmp_path / "s0"
    datas = {name: tmp_path / name for name in hosts}
    logs = [p / "daemon.log" for p in (seed, *datas.values())]
    procs = {"s0": start_phone(seed_host, seed)}
    wait_until(lambda: control(seed, "status"), 15, "the seed phone", logs)
    for name, host in hosts.items():
        audio = f"file:{tmp_path / f'{name}_in.wav'},{tmp_path / f'{name}_out.wav'}"
        procs[name] = start_phone(
            host, datas[name], "--seed", f"{seed_host.addr}:{PORT}", "--audio", audio
        )
    a, b = datas["a"], datas["b"]

    def ready() -> bool:
        sa, sb = control(a, "status")["overlay"], control(b, "status")["overlay"]
        return (
            control(seed, "status")["overlay"]["role"] == "supernode"
            and sa["role"] == sb["role"] == "client"
            and bool(sa["relays"])
            and bool(sb["relays"])
        )

    wait_until(ready, 40, "a supernode, and both NATted phones clients with a relay", logs)
    number_b = control(b, "id")["number"]

    def b_published_with_relay() -> bool:
        found = control(a, "lookup", {"number": number_b})
        return bool(found["found"] and found["records"][0]["relays"])

    wait_until(b_published_with_relay, 40, "b's record to list its relay", logs)
    return Call(lab, tmp_path, seed, a, b, router_a, router_b, procs, said, voice, logs)


def _talk(
    c: Call, during: Callable[[], None] | None = None
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, float]]:
    """A dials B by number, B answers, both talk; returns A's dial result, both phones' call
    status at the end of the speech (the call still active) and the highest ``far_loss_pct``
    each phone showed while talking (one report's figure can be 0 by chance: few packets in a
    pause). ``during`` runs once the call is active."""
    number_b = control(c.b, "id")["number"]
    dialed = control(c.a, "dial", {"number": number_b})
    t_ring = time.monotonic()  # both devices have started (about now): IN.wav is being read
    assert dialed["call"]["state"] == "ringback", (dialed, c.tails())
    wait_until(lambda: _current(c.b)["state"] == "incoming", 5, "b to ring", c.logs)
    answered = control(c.b, "answer")
    assert answered["state"] == "active", answered
    wait_until(lambda: _current(c.a)["state"] == "active", 5, "a to see the answer", c.logs)
    if during is not None:
        during()
    end = t_ring + LEAD_S + len(c.said["a"]) / RATE + TAIL_S
    peak_far_loss = {"a": 0.0, "b": 0.0}
    while True:
        calls = {"a": _current(c.a), "b": _current(c.b)}
        for name, call in calls.items():
            assert call["state"] == "active", (name, call, c.tails())
            far = call["media"]["tx"]["far_loss_pct"]
            peak_far_loss[name] = max(peak_far_loss[name], far or 0.0)
        if time.monotonic() >= end:
            return dialed, calls, peak_far_loss
        time.sleep(min(0.25, max(0.0, end - time.monotonic())))


def _hang_up_and_score(c: Call) -> dict[str, dict[str, float]]:
    """A hangs up; both phones stop (OUT.wav's header is written on close); each direction's
    output scored against the speech sent."""
    hung = control(c.a, "hangup")
    assert (hung["state"], hung["reason"]) == ("ended", "hangup"), hung
    wait_until(lambda: _current(c.b)["state"] == "ended", 5, "b to see the hangup", c.logs)
    assert _current(c.b)["reason"] == "remote_hangup", _current(c.b)
    for name in ("a", "b"):
        proc = c.procs[name]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    scores = {}
    for talker, listener in (("a", "b"), ("b", "a")):
        out = _read_wav(c.tmp / f"{listener}_out.wav")
        ref = c.said[talker].astype(np.float64)
        scores[f"{talker}->{listener}"] = _score(ref, out, c.voice.align)
    return scores


def _check_media(calls: dict[str, dict[str, Any]], path: str) -> None:
    for name, call in calls.items():
        assert call["path"] == path, (name, call)
        media = call["media"]
        assert media["rtt_ms"] is not None, (name, media)
        assert media["rx"]["packets"] > 0, (name, media)
        assert media["tx"]["packets"] > 0, (name, media)
        assert media["counters"]["decode_errors"] == 0, (name, media)
        assert media["counters"]["reports_received"] > 0, (name, media)


def _figures(calls: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        name: {
            "path": call["path"],
            "rtt_ms": call["media"]["rtt_ms"],
            "rx": call["media"]["rx"],
            "tx": call["media"]["tx"],
            "redundancy": call["media"]["redundancy"],
            "bitrate": call["media"]["bitrate"],
        }
        for name, call in calls.items()
    }


def _check_scores(scores: dict[str, dict[str, float]], floor: float) -> None:
    for direction, s in scores.items():
        assert s["corr"] >= floor, (direction, scores)
        assert LEAD_S * 1000 <= s["lag_ms"] <= MAX_LAG_S * 1000, (direction, scores)


def test_a_call_between_symmetric_nats_runs_through_the_relay(lab: Lab, tmp_path: Path) -> None:
    started = time.monotonic()
    c = _setup(lab, tmp_path, NatBehaviour.SYMMETRIC, NatBehaviour.SYMMETRIC)
    relay_before = control(c.seed, "status")["overlay"]["relaying"]["counters"]
    dialed, calls, _ = _talk(c)
    assert dialed["path"] == "relayed", (dialed, c.tails())
    relaying = control(c.seed, "status")["overlay"]["relaying"]
    relay = relaying["counters"]
    _check_media(calls, "relayed")
    scores = _hang_up_and_score(c)
    forwarded = relay["packets_forwarded"] - relay_before["packets_forwarded"]
    print(
        "relayed call:",
        json.dumps(
            {
                "calls": _figures(calls),
                "relay": relay,
                "forwarded_during_call": forwarded,
                "scores": scores,
                "wall_s": round(time.monotonic() - started, 1),
            }
        ),
    )
    assert relaying["channels"] == 1, relaying
    for name, call in calls.items():
        assert call["media"]["rx"]["lost"] == 0, (name, call["media"])  # nothing dropped
    rx_total = sum(call["media"]["rx"]["packets"] for call in calls.values())
    assert forwarded >= rx_total, (forwarded, rx_total, relay)
    assert relay["dropped_rate_limited"] == 0, relay
    assert relay["channels_refused"] == 0, relay
    assert relay["dropped_no_client"] == 0, relay
    _check_scores(scores, MIN_CORRELATION)


def _delay(lab: Lab, router: Router) -> None:
    lab.delay(router, DELAY_MS)


def test_a_punched_call_is_direct_and_measures_the_link_delay(lab: Lab, tmp_path: Path) -> None:
    started = time.monotonic()
    c = _setup(
        lab,
        tmp_path,
        NatBehaviour.PORT_RESTRICTED,
        NatBehaviour.PORT_RESTRICTED,
        links=lambda ra, _rb: _delay(lab, ra),
    )
    dialed, calls, _ = _talk(c)
    assert dialed["path"] == "direct", (dialed, c.tails())
    assert dialed["addr"][0] == c.router_b.addr, dialed
    _check_media(calls, "direct")
    scores = _hang_up_and_score(c)
    print(
        "delayed direct call:",
        json.dumps(
            {
                "delay_ms_each_way": DELAY_MS,
                "calls": _figures(calls),
                "scores": scores,
                "wall_s": round(time.monotonic() - started, 1),
            }
        ),
    )
    for name, call in calls.items():
        rtt = call["media"]["rtt_ms"]
        assert 2 * DELAY_MS - 5 <= rtt <= 2 * DELAY_MS + RTT_SLACK_MS, (name, rtt)
    _check_scores(scores, MIN_CORRELATION)


def test_a_lossy_direct_call_adds_redundancy_and_stays_intelligible(
    lab: Lab, tmp_path: Path
) -> None:
    started = time.monotonic()
    c = _setup(lab, tmp_path, NatBehaviour.PORT_RESTRICTED, NatBehaviour.PORT_RESTRICTED)
    dialed, calls, peak_far_loss = _talk(c, during=lambda: lab.loss(c.router_a, LOSS_PCT))
    assert dialed["path"] == "direct", (dialed, c.tails())
    _check_media(calls, "direct")
    lab.loss(c.router_a, 0)  # the hangup and the phones' exit are not under test here
    scores = _hang_up_and_score(c)
    print(
        "lossy direct call:",
        json.dumps(
            {
                "loss_pct_each_way": LOSS_PCT,
                "calls": _figures(calls),
                "peak_far_loss_pct": peak_far_loss,
                "scores": scores,
                "wall_s": round(time.monotonic() - started, 1),
            }
        ),
    )
    for name, call in calls.items():
        media = call["media"]
        assert media["rx"]["lost"] > 0, (name, media)
        assert peak_far_loss[name] > 0, (name, peak_far_loss, media)
        assert media["redundancy"] > 0, (name, media)
        assert media["bitrate"] < 32_000, (name, media)  # the clean calls end at 32 kbit/s
    _check_scores(scores, MIN_CORRELATION_LOSSY)
