"""A hunt group and a page on a LAN of real phones, with no server (docs/lan.md §7).

Four daemons in network namespaces on one bridge (``netns_lan``), found by one another over
mDNS. Phone 0 (extension 201) calls; phones 1-3 (202-204) are members of group 700 (ring all),
701 (in turn) and 800 (page), as each one's ``overlay.groups`` says. Phone 0 dials:

- 700: all three ring, each showing phone 0's number (never seen before: derived from its
  key); phone 2 answers; the other two stop ringing (``answered_elsewhere``);
- 701: phone 1 (the lowest extension) rings alone for ``group_ring_s`` (3 s, phone 0's
  setting), then phone 2 alone; phone 2 declines and phone 3 rings at once, and answers;
- 800: the three answer at once with nobody touching them, and hear phone 0 (a 1 kHz tone in,
  found in each member's OUT.wav); phone 0 hears none of them (each member's microphone
  carries a 600 Hz tone that never reaches phone 0's OUT.wav): a page is one way.

Levels are RMS within 40 Hz of the tone over the last 1.5 s of each OUT.wav (the page is the
last thing played). Measured (8 runs, 5 of them with both CPUs busy): members 5602-5629 of
the 5657 sent, phone 0 0.0 at 600 Hz. About 12 s (16-22 s loaded).
"""

import subprocess
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from netns_lan import netns_lan, run_in, stop_all

from peerline.app.control_client import call
from peerline.app.paths import CONTROL_SOCKET_NAME

pytestmark = pytest.mark.netns
PHONES = 4
RATE = 16_000
PAGER_HZ, MEMBER_HZ = 1000.0, 600.0
GROUPS = '["700", "701:turn", "800:page"]'


@pytest.fixture
def lan() -> Iterator[list[str]]:
    with netns_lan(PHONES) as phones:
        yield phones


def _tone(path: Path, hz: float, seconds: float) -> None:
    t = np.arange(round(RATE * seconds)) / RATE
    pcm = (8000 * np.sin(2 * np.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def _level(path: Path, hz: float, *, last_s: float = 1.5) -> float:
    """RMS of the last ``last_s`` of ``path`` within 40 Hz of ``hz`` (0 if it is shorter)."""
    with wave.open(str(path), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    pcm = pcm[-round(RATE * last_s) :]
    if len(pcm) < RATE // 2:
        return 0.0
    spectrum = np.fft.rfft(pcm)
    freqs = np.fft.rfftfreq(len(pcm), 1 / RATE)
    band = np.abs(freqs - hz) < 40
    return float(np.sqrt(2 * np.sum(np.abs(spectrum[band]) ** 2)) / len(pcm))


def _control(data: Path, cmd: str, args: dict[str, Any] | None = None) -> Any:
    return call(data / CONTROL_SOCKET_NAME, cmd, args, timeout=30)


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except OSError:  # a phone still starting: its control socket is not there yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _live(data: Path) -> list[dict[str, Any]]:
    return [c for c in _control(data, "status")["calls"] if c["state"] != "ended"]


def _states(data: Path) -> list[str]:
    return [c["state"] for c in _live(data)]


def _newest(data: Path) -> dict[str, Any]:
    calls: list[dict[str, Any]] = _control(data, "status")["calls"]
    return calls[0]


def _config(extension: str, groups: str) -> str:
    return f"""\
[overlay]
extension = "{extension}"
groups = {groups}
group_ring_s = 3.0
"""


def test_a_hunt_group_rings_all_then_in_turn_and_a_page_is_one_way(
    lan: list[str], tmp_path: Path
) -> None:
    procs: list[subprocess.Popen[str]] = []
    datas = [tmp_path / f"phone{i}" for i in range(PHONES)]
    try:
        for i, (ns, data) in enumerate(zip(lan, datas, strict=True)):
            config = _config(f"20{i + 1}", GROUPS if i else "[]")
            _tone(tmp_path / f"in{i}.wav", PAGER_HZ if i == 0 else MEMBER_HZ, 30.0)
            audio = f"file:{tmp_path / f'in{i}.wav'},{tmp_path / f'out{i}.wav'}"
            procs.append(run_in(ns, data, "--audio", audio, config=config))
        caller, members = datas[0], datas[1:]

        def settled() -> bool:
            view = _control(caller, "lan")
            grouped = [p for p in view["phones"] if p["groups"] == ["700", "701t", "800p"]]
            return len(grouped) == 3 and all(p["number"] for p in grouped)

        _wait(settled, 40, "phone 0 to see the three members of the groups")
        ids = [_control(d, "id") for d in datas]
        number = ids[0]["number"]

        def rings(d: Path) -> bool:
            live = _live(d)
            return [c["state"] for c in live] == ["incoming"] and live[0]["number"] == number

        # Ring all: every member rings at once, showing the caller's number and the group.
        dialled = _control(caller, "dial", {"number": "700"})
        assert dialled["call"]["group"] == "700", dialled
        _wait(lambda: all(rings(d) for d in members), 15, "all three members to ring")
        assert all(_live(d)[0]["group"] == "700" for d in members)
        _control(members[1], "answer")
        _wait(lambda: _states(caller) == ["active"], 10, "phone 0 to talk to phone 2")
        assert _live(caller)[0]["number"] == ids[2]["number"]
        for other in (members[0], members[2]):
            _wait(lambda d=other: not _live(d), 10, "the other members to stop ringing")
            assert _newest(other)["reason"] == "answered_elsewhere"
        _control(caller, "hangup")
        _wait(lambda: not _live(caller) and not _live(members[1]), 10, "the call to end")

        # In turn: phone 1 alone for 3 s, then phone 2 alone; it declines, phone 3 rings.
        _control(caller, "dial", {"number": "701"})
        _wait(lambda: rings(members[0]), 15, "phone 1 to ring first")
        assert not _live(members[1]) and not _live(members[2])
        started = time.monotonic()
        _wait(lambda: rings(members[1]), 10, "phone 2's turn")
        assert time.monotonic() - started > 1.5  # phone 1 had its turn (3 s; not a fast pass)
        assert not _live(members[0]) and _newest(members[0])["reason"] == "cancelled"
        assert not _live(members[2])
        _control(members[1], "hangup")  # declines: phone 3's turn at once
        _wait(lambda: rings(members[2]), 10, "phone 3's turn")
        _control(members[2], "answer")
        _wait(lambda: _states(caller) == ["active"], 10, "phone 0 to talk to phone 3")
        assert _live(caller)[0]["number"] == ids[3]["number"]
        _control(caller, "hangup")
        _wait(lambda: all(not _live(d) for d in datas), 10, "every call to end")

        # Page: every member answers at once, hears phone 0, and sends nothing back.
        _control(caller, "dial", {"number": "800"})
        _wait(lambda: _states(caller) == ["active"] * 3, 15, "three page legs to be up")
        for d in members:
            (leg,) = _live(d)
            assert leg["state"] == "active" and leg["number"] == number and leg["page"], leg

        def played(d: Path) -> bool:
            (leg,) = _live(d)
            return int(leg["media"]["rx"]["packets"]) >= 100  # two seconds of the page

        _wait(lambda: all(played(d) for d in members), 15, "two seconds of the page")
        for d in members:
            assert _live(d)[0]["media"]["tx"]["packets"] == 0  # one way: members only listen
        while _live(caller):
            _control(caller, "hangup")  # a leg at a time
        _wait(lambda: all(not _live(d) for d in datas), 10, "every member to hang up")
    finally:
        stop_all(procs, datas)
    heard = [_level(tmp_path / f"out{i}.wav", PAGER_HZ) for i in range(1, PHONES)]
    back = _level(tmp_path / "out0.wav", MEMBER_HZ)
    assert min(heard) > 1000, heard  # the 1 kHz tone in: 5657 RMS
    assert back < 100, back
