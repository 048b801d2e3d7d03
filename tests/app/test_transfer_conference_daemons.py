"""Transfers and a conference between real daemons on loopback, checked on what each phone
plays: a blind transfer, an attended transfer (the held party checked deaf meanwhile), and a
four-party conference one phone hosts, with a party dropping, one added back and one removed.

Audio. Each phone talks its own band-limited noise (100-3400 Hz, its own seed, RMS 2000,
about -24 dBFS) from ``file:IN.wav``; noises of different seeds are uncorrelated at every lag,
so a phone's OUT.wav, a mix of several talkers in a conference, is scored against each source
on its own. The ``file:`` device runs only while a call or a tone plays, so each phone's IN
and OUT advance together on the phone's own clock, and both start again when a phone's device
starts again (P3, called back into the conference). A *phase* (``_phase``) waits until media
flows on every call of the phones that talk (``FLOW_PACKETS`` more received on each), reads
every phone's position (the frames in its OUT.wav's header, which counts what the phone has
written so far: as far as it has read IN), waits until the listeners have played
``SETTLE_S + PHASE_S`` more (polling those headers), and reads them again. Each phase is scored
as soon as it ends, from the OUT.wav files of the running phones, before a new call can start
one of them again. A source's lag in a listener's OUT is the difference of their positions at
the phase's start plus the path's delay. ``_heard`` scores the listener's phase minus its first
``SETTLE_S`` in ``WINDOW_S`` windows, each aligned on its own at the lag from
``-LAG_SLACK_S`` to ``+MAX_PATH_S`` around that difference where it matches the source best
(a jitter buffer under load moves its delay by 20-100 ms at once), as one normalized
correlation over all windows.

A phase lists what each listener must hear (correlation at least ``MIN_HEARD``) and what it
must not (at most ``MAX_DEAF``, the negative controls): its own voice (a host sends each leg
its microphone and every *other* leg, and plays only the legs), a held party, and, for the
held party, the phones talking meanwhile. With k talkers of equal level in a mix, each scores
about its codec fidelity over sqrt(k); a source not there scores the best of chance over the
lags searched, about 0.07 per 0.5 s window of this noise. Mutating the mixer
(``peerline.proto.media.mixer``) to send each leg its own voice too fails the deaf checks at
0.44-0.53, to play the host's microphone on its own speaker at 0.52-0.60, and to send the legs
only the host's microphone fails the heard checks at 0.07.

Numbers. A caller knows its callee as a user would (``peer add`` by hand: number, key,
address; no directory on loopback), a transferred phone the target likewise. Callees learn
their callers from the calls alone: every incoming call is checked to show the caller's
number (and ``referred_by``, the transferor, on a transferred call), a caller never seen before
included.

Measured on a 2-CPU AMD EPYC VM shared with other test runs (load average 4.5-5.3 before ours),
10 runs, 5 of them with both CPUs busy besides (two ``while True`` loops; load 5.5-8.4). Heard
directly (A-C after a transfer, B-C consulting): 0.89-0.97 idle, down to 0.65 once loaded (a
jitter buffer starved for a moment); each of three talkers in the four-party mix: 0.43-0.60;
each of two in a three-party one: 0.53-0.72. Deaf: 0.065-0.078 (0.0 for the held phone, which
plays silence between its hold beeps). Mouth to ear 46-213 ms, up to 786 ms loaded. Floors:
``MIN_HEARD`` 0.25 and ``MAX_DEAF`` 0.15. The file takes 35-52 s (90-120 s with both CPUs
busy), the conference test 19-24 s of it.
"""

import json
import subprocess
import sys
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from daemons import (
    Daemon,
    call_with,
    calls_of,
    cli_json,
    knows,
    live_calls,
    state_with,
    wait_for,
)

from peerline.app.control_client import call
from peerline.app.paths import CONTROL_SOCKET_NAME

RATE = 16_000
INPUT_S = 60.0
"Each IN.wav: longer than any phone's audio device runs in a test (it must not run dry)."
LEVEL = 2_000.0
"RMS of each phone's noise (about -24 dBFS): four talkers summed stay far from clipping."
BAND_HZ = (100.0, 3_400.0)
PHASE_S = 2.0
"Audio scored per phase and listener."
FLOW_PACKETS = 10
"A phase starts once every call of the phones that talk has received this many more packets."
SETTLE_S = 0.5
"Then skipped at each phase's start: what was said before it plays out, buffers settle."
LAG_SLACK_S = 0.3
"""How far before the positions' difference a source may appear (the positions are read one
phone after the other: a loaded daemon answers late)."""
MAX_PATH_S = 1.5
"""Mouth to ear, through a host's mix too, is 0.07-0.25 s on loopback, up to 0.85 s measured
with both CPUs busy."""
WINDOW_S = 0.5
MIN_HEARD = 0.25
MAX_DEAF = 0.15
PHASE_WAIT_S = 30.0
"Generous: the phase needs SETTLE_S + PHASE_S of audio, which a loaded machine still plays."

Samples = npt.NDArray[np.float64]


# ------------------------------------------------------------------------------ the phones


def _noise(seed: int) -> npt.NDArray[np.int16]:
    rng = np.random.default_rng(seed)
    n = round(INPUT_S * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < BAND_HZ[0]) | (freqs > BAND_HZ[1])] = 0
    x = np.fft.irfft(spectrum, n)
    x *= LEVEL / float(np.std(x))
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _write_wav(path: Path, samples: npt.NDArray[np.int16]) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype("<i2").tobytes())


def _read_wav(path: Path) -> Samples:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


@dataclass
class Lab:
    """The phones of one test, each talking its own noise."""

    tmp: Path
    phones: dict[str, Daemon]
    said: dict[str, Samples]

    def __getitem__(self, name: str) -> Daemon:
        return self.phones[name]

    def played(self, name: str) -> Samples:
        """What ``name`` played since its device last started (its OUT.wav, complete at every
        moment)."""
        return _read_wav(self.tmp / f"{name}_out.wav")


def _lab(start: Callable[..., Daemon], tmp: Path, *names: str) -> Lab:
    phones, said = {}, {}
    for seed, name in enumerate(names, start=1):
        noise = _noise(seed)
        _write_wav(tmp / f"{name}_in.wav", noise)
        said[name] = noise.astype(np.float64)
        audio = f"file:{tmp / f'{name}_in.wav'},{tmp / f'{name}_out.wav'}"
        phones[name] = start(name, "--audio", audio)
    return Lab(tmp=tmp, phones=phones, said=said)


def _status(d: Daemon) -> dict[str, Any]:
    """``status`` over the control socket: what ``peerline status --json`` shows, without
    starting a Python process for every poll."""
    status: dict[str, Any] = call(d.data / CONTROL_SOCKET_NAME, "status", timeout=10)
    return status


def _talking(d: Daemon, peer: Daemon) -> bool:
    """``d`` and ``peer`` talk: active at ``d`` and not held by ``peer``."""
    c = call_with(d, peer)
    return c is not None and c["state"] == "active" and not c["held_by_peer"]


def _held_by_peer(d: Daemon, peer: Daemon) -> bool:
    c = call_with(d, peer)
    return c is not None and c["held_by_peer"] is True


def _ringing(callee: Daemon, caller: Daemon) -> dict[str, Any]:
    """``callee``'s call from ``caller`` once it rings showing a number: the caller's, which
    nobody told ``callee`` (it learns it from the call)."""

    def shown() -> bool:
        c = call_with(callee, caller)
        return c is not None and c["state"] == "incoming" and c["number"] is not None

    assert wait_for(shown), calls_of(callee)
    c = call_with(callee, caller)
    assert c is not None
    assert c["number"] == caller.number, c
    return c


def _answer(callee: Daemon, caller: Daemon) -> None:
    ringing = _ringing(callee, caller)
    answered = cli_json(callee.data, "answer", "--call-id", ringing["call_id"])
    assert answered["state"] == "active", answered


def _call_and_answer(caller: Daemon, callee: Daemon) -> None:
    res = cli_json(caller.data, "dial", callee.number)
    assert res["call"]["state"] in ("ringback", "dialing"), res
    _answer(callee, caller)
    assert wait_for(lambda: _talking(caller, callee) and _talking(callee, caller))


@pytest.fixture
def background() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """``background(data, *args)``: a ``peerline ... --json`` command that waits for answers
    the test gives meanwhile (``conference``); killed afterwards if it still runs."""
    started: list[subprocess.Popen[str]] = []

    def run(data: Path, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "peerline", *args, "--json", "--data", str(data)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    try:
        yield run
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def _finish(proc: subprocess.Popen[str]) -> Any:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, (proc.args, proc.returncode, out, err)
    return json.loads(out)


# ------------------------------------------------------------------------------ the phases


def _position(d: Daemon) -> int:
    """How far ``d``'s audio device has read IN.wav and written OUT.wav since its device last
    started, in samples: the frames OUT.wav's header counts (right at every moment)."""
    with wave.open(str(d.data.parent / f"{d.data.name}_out.wav"), "rb") as w:
        return w.getnframes()


@dataclass(frozen=True)
class Phase:
    name: str
    start: dict[str, int]
    "Every phone's position when the phase began (read one after the other, within ms)."
    end: dict[str, int]
    hears: dict[str, tuple[str, ...]]
    "Listener -> the phones it must hear."
    deaf: dict[str, tuple[str, ...]]
    "Listener -> the phones it must not hear."


def _receiving(d: Daemon) -> dict[str, int]:
    """Media packets received so far on each of ``d``'s calls that talk."""
    return {
        c["call_id"]: int(c["media"]["rx"]["packets"])
        for c in live_calls(d)
        if c["state"] == "active" and not c["held_by_peer"] and c["media"] is not None
    }


def _phase(
    lab: Lab,
    name: str,
    hears: dict[str, tuple[str, ...]],
    deaf: dict[str, tuple[str, ...]],
) -> Phase:
    """Once media flows on every call of the phones that talk, mark every phone's position,
    let the listeners play ``SETTLE_S + PHASE_S``, mark again."""
    talkers = sorted(set(hears) | {s for sources in hears.values() for s in sources})
    before = {n: _receiving(lab[n]) for n in talkers}

    def flowing() -> bool:
        for n in talkers:
            now = _receiving(lab[n])
            if not now or any(v < before[n].get(k, 0) + FLOW_PACKETS for k, v in now.items()):
                return False
        return True

    assert wait_for(flowing, timeout=PHASE_WAIT_S), (name, {n: calls_of(lab[n]) for n in talkers})
    start = {n: _position(d) for n, d in lab.phones.items()}
    need = round((SETTLE_S + PHASE_S) * RATE)
    listeners = sorted(set(hears) | set(deaf))

    def played() -> bool:
        return all(_position(lab[n]) >= start[n] + need for n in listeners)

    assert wait_for(played, timeout=PHASE_WAIT_S), (name, {n: _position(lab[n]) for n in start})
    end = {n: _position(d) for n, d in lab.phones.items()}
    dry = {n: pos for n, pos in end.items() if pos > len(lab.said[n])}
    assert not dry, f"IN.wav ran out ({dry} > {INPUT_S} s): make INPUT_S longer"
    return Phase(name=name, start=start, end=end, hears=hears, deaf=deaf)


def _heard(out: Samples, ref: Samples, w0: int, w1: int, lag0: int) -> dict[str, Any]:
    """How much of ``ref`` (a phone's IN) plays in ``out[w0:w1]`` (a listener's OUT), where
    ``out[i]`` would be ``ref[i - lag]`` for ``lag0`` plus the path's delay.

    Each ``WINDOW_S`` of ``out`` is aligned on its own, at the lag from ``lag0 - LAG_SLACK_S``
    to ``lag0 + MAX_PATH_S`` where it matches ``ref`` best: a jitter buffer under load moves
    its delay by 20-100 ms at a time, and a host's mix carries each leg through its own.
    ``corr``: one normalized correlation over all windows (sums of products and energies);
    ``path_ms``: the least and the most delay found."""
    lo = lag0 - round(LAG_SLACK_S * RATE)
    hi = lag0 + round(MAX_PATH_S * RATE)
    win = round(WINDOW_S * RATE)
    n = 1 << int(np.ceil(np.log2(2 * win + hi - lo)))
    dot = e_out = e_ref = 0.0
    paths: list[int] = []
    for w in range(w0, w1 - win + 1, win):
        o = out[w : w + win]
        # ref[w - hi : w + win - lo], zero outside the file: o's counterpart at every lag.
        first = w - hi
        span = np.zeros(win + hi - lo)
        a, b = max(first, 0), min(w + win - lo, len(ref))
        if b > a:
            span[a - first : b - first] = ref[a:b]
        raw = np.fft.irfft(np.fft.rfft(span, n) * np.conj(np.fft.rfft(o, n)), n)
        k = int(np.argmax(raw[: hi - lo + 1]))  # raw[k]: o against span[k : k + win]
        r = span[k : k + win]
        dot += float(np.dot(o, r))
        e_out += float(np.dot(o, o))
        e_ref += float(np.dot(r, r))
        paths.append(hi - k - lag0)
    corr = dot / np.sqrt(e_out * e_ref + 1e-9)
    ms = [round(min(paths) / RATE * 1000), round(max(paths) / RATE * 1000)]
    return {"corr": round(float(corr), 3), "path_ms": ms}


def _score(lab: Lab, phases: list[Phase]) -> None:
    """Score phases just ended (OUT.wav is complete at every moment, and holds them until the
    phone's device starts again) and assert."""
    outs = {n: lab.played(n) for n in lab.phones}
    table: dict[str, dict[str, dict[str, Any]]] = {}
    failed: list[str] = []
    for ph in phases:
        rows = table.setdefault(ph.name, {})
        for listener in sorted(set(ph.hears) | set(ph.deaf)):
            w0 = ph.start[listener] + round(SETTLE_S * RATE)
            w1 = ph.end[listener]
            assert w1 - w0 >= round(PHASE_S * RATE), (ph.name, listener, w0, w1)
            for must, sources in (
                (True, ph.hears.get(listener, ())),
                (False, ph.deaf.get(listener, ())),
            ):
                for source in sources:
                    lag0 = ph.start[listener] - ph.start[source]
                    s = _heard(outs[listener], lab.said[source], w0, w1, lag0)
                    rows[f"{source}->{listener}{'' if must else ' (deaf)'}"] = s
                    ok = s["corr"] >= MIN_HEARD if must else s["corr"] <= MAX_DEAF
                    if not ok:
                        failed.append(f"{ph.name}: {source}->{listener} {s}")
    print("scores:", json.dumps(table))  # shown with -rP or -s: the floors' evidence
    assert not failed, (failed, table)


def _stop(lab: Lab) -> None:
    for d in lab.phones.values():
        d.stop(5)


# ------------------------------------------------------------------------------- the tests


def test_blind_transfer_a_talks_with_c_and_both_hear_each_other(
    phones: Callable[..., Daemon], tmp_path: Path
) -> None:
    """A calls B; B hands A to C without talking to C first; A's phone calls C, which rings
    showing A's number (referred by B); C answers; A and C hear each other."""
    lab = _lab(phones, tmp_path, "a", "b", "c")
    a, b, c = lab["a"], lab["b"], lab["c"]
    knows(a, b, c)
    _call_and_answer(a, b)

    res = cli_json(b.data, "transfer", c.number)
    assert res["transferred"] is True and res["reason"] == "transferred", res
    ringing = _ringing(c, a)
    assert ringing["referred_by"] == b.number, ringing
    assert not live_calls(b), calls_of(b)
    ended = [x for x in calls_of(a) if x["peer_key"] == b.public_key]
    assert ended and ended[0]["reason"] == "transferred", calls_of(a)
    placed = call_with(a, c)
    assert placed is not None and placed["referred_by"] == b.number, calls_of(a)
    _answer(c, a)
    assert wait_for(lambda: _talking(a, c) and _talking(c, a)), (calls_of(a), calls_of(c))

    talk = _phase(lab, "a-c", {"a": ("c",), "c": ("a",)}, {"a": ("a",), "c": ("c",)})
    _score(lab, [talk])
    _stop(lab)


def test_attended_transfer_the_held_party_hears_nothing_then_talks_with_c(
    phones: Callable[..., Daemon], tmp_path: Path
) -> None:
    """A calls B; B dials C (A goes on hold) and talks to C; B hands A to C: A's new call
    replaces C's call with B, C answers it at once, B has no call left. While held, A hears
    neither B nor C, and they do not hear A."""
    lab = _lab(phones, tmp_path, "a", "b", "c")
    a, b, c = lab["a"], lab["b"], lab["c"]
    knows(a, b, c)
    knows(b, c)
    _call_and_answer(a, b)
    _call_and_answer(b, c)  # the consultation: B's call with A is held
    assert wait_for(lambda: state_with(b, a) == "held" and _held_by_peer(a, b)), calls_of(a)
    consult = _phase(
        lab,
        "b-c, a held",
        {"b": ("c",), "c": ("b",)},
        {"a": ("a", "b", "c"), "b": ("a", "b"), "c": ("a", "c")},
    )
    _score(lab, [consult])

    res = cli_json(b.data, "transfer", "--attended", c.number)
    assert res["transferred"] is True and res["peer_key"] == a.public_key, res
    assert wait_for(lambda: _talking(a, c) and _talking(c, a)), (calls_of(a), calls_of(c))
    # C answered A's call at once (it replaces the call with B): the number still shows.
    assert wait_for(lambda: (call_with(c, a) or {}).get("number") is not None), calls_of(c)
    new = call_with(c, a)
    assert new is not None and new["number"] == a.number and new["referred_by"] == b.number, new
    replaced = [x for x in calls_of(c) if x["peer_key"] == b.public_key]
    assert replaced and replaced[0]["reason"] == "replaced", calls_of(c)
    assert wait_for(lambda: not live_calls(b)), calls_of(b)
    assert {x["reason"] for x in calls_of(b)} == {"transferred"}, calls_of(b)

    after = _phase(lab, "a-c", {"a": ("c",), "c": ("a",)}, {"a": ("a",), "c": ("c",)})
    _score(lab, [after])
    _stop(lab)


def test_four_party_conference_with_a_drop_an_add_and_a_removal(
    phones: Callable[..., Daemon],
    tmp_path: Path,
    background: Callable[..., subprocess.Popen[str]],
) -> None:
    """H conferences P1, P2 and P3 (``conference N N N``): everyone hears the three others and
    not itself. P3 hangs up: H, P1 and P2 still hear each other. H adds P3 back (``dial``, then
    ``conference``) and removes P1 (``hangup --call-id``): H, P2 and P3 hear each other."""
    lab = _lab(phones, tmp_path, "h", "p1", "p2", "p3")
    h, p1, p2, p3 = (lab[n] for n in ("h", "p1", "p2", "p3"))
    knows(h, p1, p2, p3)

    conf = background(h.data, "conference", p1.number, p2.number, p3.number)
    for p in (p1, p2, p3):
        _answer(p, h)  # each rings once the one before has answered
    legs = _finish(conf)["legs"]
    assert sorted(leg["number"] for leg in legs) == sorted(p.number for p in (p1, p2, p3)), legs
    assert all(leg["conference"] for leg in legs), legs
    assert wait_for(lambda: all(_talking(p, h) and _talking(h, p) for p in (p1, p2, p3)))
    everyone = ("h", "p1", "p2", "p3")
    four = _phase(
        lab,
        "h+p1+p2+p3",
        {n: tuple(o for o in everyone if o != n) for n in everyone},
        {n: (n,) for n in everyone},
    )
    _score(lab, [four])  # now: P3's OUT.wav starts again when it is called back

    cli_json(p3.data, "hangup")  # a party drops
    assert wait_for(lambda: call_with(h, p3) is None), calls_of(h)
    left = next(x for x in calls_of(h) if x["peer_key"] == p3.public_key)
    assert left["reason"] == "remote_hangup", left
    assert all(_talking(h, p) and _talking(p, h) for p in (p1, p2)), calls_of(h)
    three = ("h", "p1", "p2")
    dropped = _phase(
        lab,
        "h+p1+p2 (p3 dropped)",
        {n: tuple(o for o in three if o != n) for n in three},
        {n: (n,) for n in three},
    )
    _score(lab, [dropped])

    # Add P3 back: dial it (the conference goes on hold meanwhile), then join every call.
    assert cli_json(h.data, "dial", p3.number)["call"]["state"] in ("ringback", "dialing")
    assert wait_for(lambda: all(_held_by_peer(p, h) for p in (p1, p2))), calls_of(h)
    _answer(p3, h)
    assert wait_for(lambda: _talking(h, p3)), calls_of(h)
    legs = cli_json(h.data, "conference")["legs"]
    assert {leg["peer_key"] for leg in legs} == {p.public_key for p in (p1, p2, p3)}, legs
    leg = call_with(h, p1)
    assert leg is not None
    removed = cli_json(h.data, "hangup", "--call-id", leg["call_id"])
    assert (removed["state"], removed["reason"]) == ("ended", "hangup"), removed
    assert wait_for(lambda: not live_calls(p1)), calls_of(p1)
    assert calls_of(p1)[0]["reason"] == "remote_hangup", calls_of(p1)
    assert wait_for(lambda: all(_talking(h, p) and _talking(p, h) for p in (p2, p3)))
    again = ("h", "p2", "p3")
    readded = _phase(
        lab,
        "h+p2+p3 (p3 added, p1 removed)",
        {n: tuple(o for o in again if o != n) for n in again},
        {n: (n,) for n in again},
    )
    _score(lab, [readded])
    _stop(lab)
