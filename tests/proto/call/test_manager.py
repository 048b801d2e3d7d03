"""CallManager (peerline.proto.call.manager): one sans-I/O class through its API.

Managers are joined only by what the test hands between them, as aioquic's tests join a client
and a server: ``Signals`` carries the SIGNAL bodies one manager hands out to the other's
``receive_signal`` (in order, reordered, duplicated or dropped, as a test says), ``audio`` runs
one 20 ms period and hands each manager's media straight to its peer, and ``fire_timers`` is
what a driver's timer does. Nothing here has a clock: every call takes the test's ``now``.
Randomness is seeded. Whole phones calling each other over the simulated network (the phone
core joining a manager to its node) are scenarios in tests/sim/scenarios/.
"""

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerline.adapters.opus import OpusDecoder, OpusEncoder
from peerline.ports import AudioDecoder, AudioEncoder
from peerline.proto.call.events import (
    CallEvent,
    CallStateChanged,
    CallUpdated,
    DtmfReceived,
    MediaQuiet,
)
from peerline.proto.call.manager import CallConfig, CallError, CallManager, SasFunction
from peerline.proto.call.state import LIVE_STATES, CallState
from peerline.proto.identity.sas import call_sas
from peerline.proto.media.tones import Tone
from peerline.sim.rng import SeededRng
from peerline.wire.call import (
    Answer,
    Dtmf,
    Hangup,
    HangupReason,
    Invite,
    Ringing,
    Signal,
    pull_signal,
    push_signal,
)

RATE = 16_000
FRAME = RATE // 50
TICK = 0.02
SILENCE = bytes(2 * FRAME)
KEY = {name: bytes([i + 1]) * 32 for i, name in enumerate("abcdef")}
NUMBER = {name: f"{i + 1:012d}" for i, name in enumerate("abcdef")}


def connection_hash(x: bytes, y: bytes) -> bytes:
    """What both ends of an honest session share (the node's connection hash, in the phone)."""
    return hashlib.blake2b(b"".join(sorted((x, y)))).digest()


def sas_for(name: str) -> SasFunction:
    def sas(peer: bytes, call_id: bytes, caller: bytes, callee: bytes) -> str:
        return call_sas(connection_hash(KEY[name], peer), call_id, caller, callee)

    return sas


def speech(i: int) -> bytes:
    """Frame ``i`` of a loud 300 Hz tone with a harmonic: what the microphone hears."""
    t = (np.arange(FRAME) + i * FRAME) / RATE
    x = 6000 * np.sin(2 * np.pi * 300 * t) + 2000 * np.sin(2 * np.pi * 600 * t)
    return bytes(np.round(x).astype("<i2").tobytes())


def peak(pcm: bytes) -> int:
    return int(np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32)).max(initial=0))


def opus_codecs(rate: int) -> tuple[AudioEncoder, AudioDecoder]:
    return OpusEncoder(sample_rate=rate), OpusDecoder(sample_rate=rate)


class FakeEncoder:
    """A trivial codec for the random tests: a 'packet' is the frame's first bytes (DTX when
    silent)."""

    sample_rate = RATE
    frame_samples = FRAME

    def encode(self, pcm: bytes) -> bytes:
        return b"\x00" if pcm == SILENCE else b"\x7f" + pcm[:16]

    def set_bitrate(self, bps: int) -> None:
        pass

    def set_fec(self, on: bool) -> None:
        pass

    def set_packet_loss_percent(self, pct: int) -> None:
        pass

    def set_dtx(self, on: bool) -> None:
        pass


class FakeDecoder:
    sample_rate = RATE
    frame_samples = FRAME

    def decode(self, payload: bytes) -> bytes:
        return b"\x10\x10" * FRAME

    def decode_fec(self, next_payload: bytes) -> bytes:
        return b"\x08\x08" * FRAME

    def conceal(self) -> bytes:
        return SILENCE


def fake_codecs(rate: int) -> tuple[AudioEncoder, AudioDecoder]:
    return FakeEncoder(), FakeDecoder()


@dataclass
class Signals:
    """Managers by name and the SIGNAL bodies in flight between them (sender, receiver, body),
    with the events each manager handed out. It delivers signals and nothing else."""

    phones: dict[str, CallManager]
    events: dict[str, list[CallEvent]] = field(default_factory=dict)
    flight: list[tuple[str, str, bytes]] = field(default_factory=list)

    def collect(self) -> None:
        """Take every manager's outgoing signals into flight and its events into ``events``."""
        for name, phone in self.phones.items():
            for key, body in phone.signals_to_send():
                self.flight.append((name, name_of(key), body))
            while (ev := phone.next_event()) is not None:
                self.events.setdefault(name, []).append(ev)

    def deliver(self, index: int = 0, *, now: float) -> tuple[str, str, bytes]:
        """Hand one signal in flight to its receiver (if it is still there)."""
        src, dst, body = self.flight.pop(index)
        if dst in self.phones:
            self.phones[dst].receive_signal(KEY[src], body, now=now)
        self.collect()
        return src, dst, body

    def settle(self, *, now: float, limit: int = 100) -> None:
        """Deliver everything in flight, oldest first, until nothing is left."""
        self.collect()
        for _ in range(limit):
            if not self.flight:
                return
            self.deliver(0, now=now)
        raise AssertionError("signalling did not settle")

    def states(self, name: str) -> list[tuple[CallState, str]]:
        return [
            (e.state, e.reason or "")
            for e in self.events.get(name, [])
            if isinstance(e, CallStateChanged)
        ]

    def signals(self, src: str) -> list[Signal]:
        return [pull_signal(body) for s, _, body in self.flight if s == src]


def name_of(key: bytes) -> str:
    return next(n for n, k in KEY.items() if k == key)


def audio(
    sig: Signals, *, now: float, mic: Callable[[int], bytes | None] = speech
) -> dict[str, bytes]:
    """One 20 ms period at ``now`` on every manager: frame ``now / TICK`` of ``mic`` in, the
    speaker's frame out, and the media each hands out given to its peer at once."""
    i = round(now / TICK)
    out = {name: phone.audio_tick(mic(i), now=now) for name, phone in sig.phones.items()}
    for name, phone in sig.phones.items():
        for key, body, report in phone.media_to_send():
            dst = sig.phones.get(name_of(key))
            if dst is None:
                continue
            if body is not None:
                dst.receive_media(KEY[name], body, at=now)
            if report is not None:
                dst.receive_report(KEY[name], report, at=now)
    sig.collect()
    return out


def ticks(start: float, n: int) -> list[float]:
    """The times of ``n`` audio periods from ``start``."""
    return [round(start + i * TICK, 9) for i in range(n)]


def fire_timers(
    phones: Iterable[CallManager], *, until: float, not_before: float = 0.0
) -> None:
    """Fire each manager's deadlines up to ``until`` in order, each when it falls due but not
    before ``not_before`` (its latest input), as a driver's one timer per manager does.
    Signals stay in flight."""
    for phone in phones:
        while (t := phone.get_timer()) is not None and t <= until:
            phone.handle_timer(now=max(t, not_before))


def make_phones(
    names: str = "ab",
    *,
    codecs: Callable[[int], tuple[AudioEncoder, AudioDecoder]] = opus_codecs,
    config: CallConfig | None = None,
    seed: int = 1,
) -> Signals:
    return Signals(
        {
            name: CallManager(
                codecs=codecs,
                rng=SeededRng(seed * 10 + i),
                config=config,
                number=NUMBER[name],
                sas=sas_for(name),
            )
            for i, name in enumerate(names)
        }
    )


def connected(names: str = "ab", **kwargs: object) -> Signals:
    """a called b and b answered at 0.0: both ACTIVE."""
    sig = make_phones(names, **kwargs)  # type: ignore[arg-type]
    sig.phones["a"].dial(KEY["b"], now=0.0)
    sig.settle(now=0.0)
    sig.phones["b"].answer(now=0.0)
    sig.settle(now=0.0)
    assert sig.phones["a"].live_call().state is CallState.ACTIVE  # type: ignore[union-attr]
    assert sig.phones["b"].live_call().state is CallState.ACTIVE  # type: ignore[union-attr]
    return sig


# -- placing, ringing, answering -------------------------------------------------------------
def test_dial_rings_the_callee_and_the_caller_hears_ringback() -> None:
    sig = make_phones()
    a, b = sig.phones["a"], sig.phones["b"]
    call = a.dial(KEY["b"], now=0.0)
    sig.collect()
    assert call.state is CallState.DIALING and call.outgoing
    assert sig.states("a") == [(CallState.RESOLVING, ""), (CallState.DIALING, "")]
    (invite,) = sig.signals("a")
    assert isinstance(invite, Invite) and invite.call_id == call.call_id
    assert (invite.codec, invite.rate_khz) == (1, 16)
    sig.settle(now=0.0)
    assert sig.states("b") == [(CallState.INCOMING, "")]
    assert sig.states("a") == [
        (CallState.RESOLVING, ""),
        (CallState.DIALING, ""),
        (CallState.RINGBACK, ""),
    ]
    incoming = b.live_call()
    assert incoming is not None and incoming.call_id == call.call_id
    assert not incoming.outgoing and incoming.peer_key == KEY["a"]
    assert a.counters.calls_placed == b.counters.calls_received == 1
    out = [audio(sig, now=t, mic=lambda i: SILENCE) for t in ticks(0.0, 10)]
    assert max(peak(o["a"]) for o in out) > 1000  # ringback
    assert max(peak(o["b"]) for o in out) > 1000  # the ringer
    assert a.audio_active(0.2) and b.audio_active(0.2)
    assert a.media_to_send() == [] and b.media_to_send() == []  # no media before an answer


def test_the_callers_name_reaches_the_callee() -> None:
    sig = make_phones(config=CallConfig(name="Front desk"))
    sig.phones["a"].dial(KEY["b"], now=0.0)
    sig.settle(now=0.0)
    assert sig.phones["b"].live_call().name == "Front desk"  # type: ignore[union-attr]


def test_answer_makes_both_active_and_audio_flows_both_ways() -> None:
    sig = make_phones()
    a, b = sig.phones["a"], sig.phones["b"]
    call = a.dial(KEY["b"], now=0.0)
    sig.settle(now=0.0)
    answered = b.answer(now=0.5)
    sig.collect()
    (ans,) = sig.signals("b")
    assert isinstance(ans, Answer) and ans.call_id == call.call_id
    sig.settle(now=0.5)
    assert sig.states("a")[-1] == (CallState.ACTIVE, "")
    assert sig.states("b")[-1] == (CallState.ACTIVE, "")
    assert answered.call_id == call.call_id
    assert a.counters.calls_answered == b.counters.calls_answered == 1
    outs = [audio(sig, now=t) for t in ticks(0.5, 100)]
    now = 0.5 + 100 * TICK
    for name in "ab":
        heard = [peak(o[name]) for o in outs[20:]]
        assert min(heard) > 2000, name  # the other phone's speech, past the jitter buffer
    for phone in (a, b):
        live = phone.live_call()
        assert live is not None and live.media is not None
        assert live.media.counters.packets_received >= 90
        status = phone.call_status(live, now)
        assert status["state"] == "active" and status["media"]["rx"]["packets"] >= 90
        assert phone.audio_active(now)


def test_silence_on_an_active_call_sends_only_reports() -> None:
    sig = connected()
    for t in ticks(0.0, 50):
        audio(sig, now=t, mic=lambda i: SILENCE)
    before = sig.phones["a"].live_call().media.counters.packets_sent  # type: ignore[union-attr]
    sent: list[tuple[bytes, bytes | None, bytes | None]] = []
    for t in ticks(50 * TICK, 100):
        sig.phones["a"].audio_tick(SILENCE, now=t)
        sent += sig.phones["a"].media_to_send()
    media = sig.phones["a"].live_call().media  # type: ignore[union-attr]
    assert media is not None and media.counters.packets_sent - before <= 6  # DTX updates
    assert sum(r is not None for _, _, r in sent) >= 2  # reports go on
    assert all(key == KEY["b"] for key, _, _ in sent)


def test_auto_answer_answers_at_once() -> None:
    sig = make_phones()
    sig.phones["b"].config = CallConfig(auto_answer=True)
    sig.phones["a"].dial(KEY["b"], now=0.0)
    sig.settle(now=0.0)
    assert sig.states("b") == [(CallState.INCOMING, ""), (CallState.ACTIVE, "")]
    assert sig.states("a")[-1] == (CallState.ACTIVE, "")


def test_an_invite_for_another_rate_is_refused_as_incompatible() -> None:
    sig = make_phones()
    call_id = bytes(range(8))
    sig.phones["b"].receive_signal(
        KEY["a"], push_signal(Invite(call_id=call_id, rate_khz=48)), now=0.0
    )
    sig.collect()
    assert sig.states("b") == [(CallState.ENDED, "incompatible")]
    (hangup,) = sig.signals("b")
    assert hangup == Hangup(call_id=call_id, reason=HangupReason.INCOMPATIBLE)
    assert sig.phones["b"].live_call() is None


# -- ending ----------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["a", "b"])
def test_hangup_by_either_side(who: str) -> None:
    sig = connected()
    other = "b" if who == "a" else "a"
    call = sig.phones[who].hangup(now=1.0)
    sig.settle(now=1.0)
    assert call.state is CallState.ENDED and call.reason == "hangup"
    assert sig.states(who)[-1] == (CallState.ENDED, "hangup")
    assert sig.states(other)[-1] == (CallState.ENDED, "remote_hangup")
    for phone in sig.phones.values():
        assert phone.live_call() is None
        assert phone.calls()[0].call_id == call.call_id  # kept for status
    out = [audio(sig, now=t) for t in ticks(1.0, 10)]
    assert all(peak(o["a"]) == peak(o["b"]) == 0 for o in out)  # no tone after a talk
    assert not any(p.audio_active(1.2) for p in sig.phones.values())
    assert all(p.media_to_send() == [] for p in sig.phones.values())


def test_decline_ends_as_declined_and_the_caller_hears_busy_for_end_tone_s() -> None:
    sig = make_phones()
    a, b = sig.phones["a"], sig.phones["b"]
    a.dial(KEY["b"], now=0.0)
    sig.settle(now=0.0)
    b.hangup(now=0.0)
    sig.collect()
    (hangup,) = sig.signals("b")
    assert isinstance(hangup, Hangup) and hangup.reason is HangupReason.DECLINED
    sig.settle(now=0.0)
    assert sig.states("b")[-1] == (CallState.ENDED, "declined_here")
    assert sig.states("a")[-1] == (CallState.ENDED, "declined")
    end_tone_s = a.config.end_tone_s
    n = round(end_tone_s / TICK)
    during = [audio(sig, now=t, mic=lambda i: None) for t in ticks(0.0, n)]
    after = [audio(sig, now=t, mic=lambda i: None) for t in ticks(n * TICK, 50)]
    assert sum(peak(o["a"]) > 1000 for o in during) >= n // 3  # busy: 0.5 s on, 0.5 off
    assert all(peak(o["a"]) == 0 for o in after)
    assert all(peak(o["b"]) == 0 for o in during + after)  # the callee plays no end tone
    assert not a.audio_active((n + 50) * TICK)


def test_cancel_before_answer_ends_as_cancelled_on_both_sides() -> None:
    sig = make_phones()
    sig.phones["a"].dial(KEY["b"], now=0.0)
    sig.settle(now=0.0)
    sig.phones["a"].hangup(now=1.0)
    sig.settle(now=1.0)
    assert sig.states("a")[-1] == (CallState.ENDED, "cancelled")
    assert sig.states("b")[-1] == (CallState.ENDED, "cancelled")
    out = [audio(sig, now=t, mic=lambda i: None) for t in ticks(1.0, 10)]
    assert all(peak(o["b"]) == 0 for o in out)  # the ringer stopped


def test_a_second_caller_rings_as_call_waiting_and_a_third_hears_busy() -> None:
    sig = connected("abcd")
    a, b, c, d = (sig.phones[n] for n in "abcd")
    talking = b.live_call()
    assert talking is not None
    c.dial(KEY["b"], now=1.0)
    sig.settle(now=1.0)
    assert sig.states("c")[-1] == (CallState.RINGBACK, "")
    assert sig.states("b")[-1] == (CallState.INCOMING, "")
    out = [audio(sig, now=t, mic=lambda i: None) for t in ticks(1.0, 25)]
    assert max(peak(o["b"]) for o in out) > 1000  # the call-waiting beep over the call
    d.dial(KEY["b"], now=1.5)
    sig.settle(now=1.5)
    assert sig.states("d")[-1] == (CallState.ENDED, "busy")  # one call waits at a time
    assert b.counters.calls_busy == 1
    assert talking.state is CallState.ACTIVE
    a_call = a.live_call()
    assert a_call is not None and a_call.state is CallState.ACTIVE


def test_with_call_waiting_off_a_second_caller_hears_busy() -> None:
    sig = connected("abc", config=CallConfig(call_waiting=False))
    b, c = sig.phones["b"], sig.phones["c"]
    talking = b.live_call()
    c.dial(KEY["b"], now=1.0)
    sig.settle(now=1.0)
    assert sig.states("c")[-1] == (CallState.ENDED, "busy")
    assert sig.states("b")[-1] == (CallState.ENDED, "busy_here")
    assert b.live_call() is talking
    out = [audio(sig, now=t, mic=lambda i: None) for t in ticks(1.0, 25)]
    assert max(peak(o["c"]) for o in out) > 1000  # busy tone at the second caller


def test_a_phone_in_a_call_dials_another_and_the_first_goes_on_hold() -> None:
    sig = connected("abc")
    a, b = sig.phones["a"], sig.phones["b"]
    first = a.live_call()
    assert first is not None
    second = a.dial(KEY["c"], now=1.0)
    sig.settle(now=1.0)
    assert first.state is CallState.HELD and second.state is CallState.RINGBACK
    held_at_b = b.live_call()
    assert held_at_b is not None and held_at_b.held_by_peer


@pytest.mark.parametrize("seed", range(6))
def test_glare_leaves_one_call_active_on_both_phones(seed: int) -> None:
    sig = make_phones(seed=seed)
    a, b = sig.phones["a"], sig.phones["b"]
    ours = a.dial(KEY["b"], now=0.0)
    theirs = b.dial(KEY["a"], now=0.0)
    sig.settle(now=0.0)
    live_a, live_b = a.live_call(), b.live_call()
    assert live_a is not None and live_b is not None
    assert live_a.call_id == live_b.call_id == min(ours.call_id, theirs.call_id)
    assert live_a.state is live_b.state is CallState.ACTIVE
    assert live_a.outgoing != live_b.outgoing
    assert a.counters.glare == b.counters.glare == 1
    assert sum(c.live for c in a.calls()) == sum(c.live for c in b.calls()) == 1
    outs = [audio(sig, now=t) for t in ticks(0.0, 40)]
    assert min(peak(o["a"]) for o in outs[20:]) > 2000
    assert min(peak(o["b"]) for o in outs[20:]) > 2000


def test_glare_in_either_order_of_arrival() -> None:
    for first in (0, 1):
        sig = make_phones(seed=3)
        a, b = sig.phones["a"], sig.phones["b"]
        a.dial(KEY["b"], now=0.0)
        b.dial(KEY["a"], now=0.0)
        sig.collect()
        sig.deliver(first, now=0.0)
        sig.settle(now=0.0)
        live_a, live_b = a.live_call(), b.live_call()
        assert live_a is not None and live_b is not None
        assert live_a.call_id == live_b.call_id
        assert live_a.state is live_b.state is CallState.ACTIVE


# -- timeouts --------------------------------------------------------------------------------
def test_a_call_that_rings_nothing_fails_as_unreachable() -> None:
    sig = make_phones()
    a = sig.phones["a"]
    call = a.dial(KEY["b"], now=0.0)
    sig.collect()
    sig.flight.clear()  # the INVITE never arrives
    assert a.get_timer() == pytest.approx(a.config.dial_timeout_s)
    a.handle_timer(now=a.config.dial_timeout_s - 0.001)
    assert call.state is CallState.DIALING
    fire_timers([a], until=a.config.dial_timeout_s)
    sig.collect()
    assert sig.states("a")[-1] == (CallState.ENDED, "unreachable")
    assert sig.signals("a") == [Hangup(call_id=call.call_id)]
    assert a.get_timer() is None
    out = [audio(sig, now=t, mic=lambda i: None) for t in ticks(a.config.dial_timeout_s, 25)]
    assert max(peak(o["a"]) for o in out) > 1000  # congestion


def test_peer_unreachable_ends_the_call_to_that_peer_only() -> None:
    sig = make_phones("abc")
    a = sig.phones["a"]
    a.dial(KEY["b"], now=0.0)
    sig.collect()
    a.peer_unreachable(KEY["c"], now=1.0)
    assert a.live_call() is not None
    a.peer_unreachable(KEY["b"], now=1.0)
    sig.collect()
    assert sig.states("a")[-1] == (CallState.ENDED, "unreachable")


def test_nobody_answers_missed_at_the_callee_no_answer_at_the_caller() -> None:
    sig = make_phones()
    a, b = sig.phones["a"], sig.phones["b"]
    a.dial(KEY["b"], now=0.0)
    sig.settle(now=0.0)
    ring = b.config.ring_timeout_s
    assert b.get_timer() == pytest.approx(ring)
    b.handle_timer(now=ring)  # the callee's timer first: it tells the caller
    sig.collect()
    assert sig.signals("b")[-1] == Hangup(
        call_id=a.live_call().call_id,  # type: ignore[union-attr]
        reason=HangupReason.NO_ANSWER,
    )
    sig.settle(now=ring)
    assert sig.states("b")[-1] == (CallState.ENDED, "missed")
    assert sig.states("a")[-1] == (CallState.ENDED, "no_answer")


def test_the_callers_ring_timer_gives_no_answer_and_cancels_the_ringing() -> None:
    sig = make_phones()
    a = sig.phones["a"]
    a.dial(KEY["b"], now=0.0)
    sig.settle(now=0.0)
    a.handle_timer(now=a.config.ring_timeout_s)
    sig.settle(now=a.config.ring_timeout_s)
    assert sig.states("a")[-1] == (CallState.ENDED, "no_answer")
    assert sig.states("b")[-1] == (CallState.ENDED, "cancelled")


def test_a_call_that_hears_nothing_ends_as_connection_lost() -> None:
    sig = connected()
    a, b = sig.phones["a"], sig.phones["b"]
    for t in ticks(0.0, 50):
        audio(sig, now=t)
    heard = a.live_call().media.last_heard()  # type: ignore[union-attr]
    assert heard is not None
    # First the silence is reported (its path may be dead), once; then the call times out.
    assert a.get_timer() == pytest.approx(heard + a.config.media_quiet_s)
    # b's phone goes away: a hears nothing more
    del sig.phones["b"]
    for t in ticks(1.0, 10):
        audio(sig, now=t)
    fire_timers([a], until=heard + a.config.media_quiet_s, not_before=1.2)
    sig.collect()
    quiet = [e for e in sig.events["a"] if isinstance(e, MediaQuiet)]
    assert [e.call_id for e in quiet] == [a.live_call().call_id]  # type: ignore[union-attr]
    assert a.live_call() is not None
    assert a.get_timer() == pytest.approx(heard + a.config.media_timeout_s)
    fire_timers([a], until=heard + a.config.media_timeout_s, not_before=1.2)
    sig.collect()
    assert len([e for e in sig.events["a"] if isinstance(e, MediaQuiet)]) == 1
    assert sig.states("a")[-1] == (CallState.ENDED, "connection_lost")
    (hangup,) = [s for s in sig.signals("a") if isinstance(s, Hangup)]
    assert hangup.reason is HangupReason.FAILED
    b.receive_signal(KEY["a"], push_signal(hangup), now=heard + a.config.media_timeout_s)
    assert b.live_call() is None
    assert b.calls()[0].reason == "failed"


def test_media_keeps_an_active_call_alive() -> None:
    sig = connected()
    a = sig.phones["a"]
    timeout = a.config.media_timeout_s
    for t in ticks(0.0, round((timeout + 5) / TICK)):
        audio(sig, now=t)
        fire_timers(sig.phones.values(), until=t + TICK, not_before=t + TICK)
        sig.collect()
    assert a.live_call() is not None and a.live_call().state is CallState.ACTIVE  # type: ignore[union-attr]


# -- who may say what ------------------------------------------------------------------------
def test_signals_from_the_wrong_peer_are_ignored_and_counted() -> None:
    sig = connected("abc")
    b = sig.phones["b"]
    call = b.live_call()
    assert call is not None
    for signal in (
        Hangup(call_id=call.call_id),
        Answer(call_id=call.call_id),
        Ringing(call_id=call.call_id),
        Dtmf(call_id=call.call_id, seq=0, digit="1"),
    ):
        b.receive_signal(KEY["c"], push_signal(signal), now=1.0)
    assert b.counters.signals_ignored == 4
    assert call.state is CallState.ACTIVE and call.dtmf_received == ""
    assert b.next_event() is None


def test_media_from_the_wrong_peer_or_without_a_call_is_ignored_and_counted() -> None:
    sig = connected("abc")
    b = sig.phones["b"]
    b.receive_media(KEY["c"], b"x", at=1.0)
    b.receive_report(KEY["c"], b"x", at=1.0)
    assert b.counters.media_without_call == 2
    idle = sig.phones["c"]
    idle.receive_media(KEY["a"], b"x", at=1.0)
    assert idle.counters.media_without_call == 1


def test_messages_for_an_ended_call_are_ignored() -> None:
    sig = connected()
    a, b = sig.phones["a"], sig.phones["b"]
    call = a.hangup(now=1.0)
    sig.settle(now=1.0)
    ignored = b.counters.signals_ignored
    for signal in (
        Answer(call_id=call.call_id),
        Ringing(call_id=call.call_id),
        Hangup(call_id=call.call_id),
        Dtmf(call_id=call.call_id, seq=0, digit="5"),
        Invite(call_id=call.call_id),  # a duplicate INVITE never rings twice
    ):
        b.receive_signal(KEY["a"], push_signal(signal), now=2.0)
    assert b.counters.signals_ignored == ignored + 5
    assert b.next_event() is None and b.live_call() is None
    assert b.signals_to_send() == []


def test_malformed_and_unknown_signals_are_counted() -> None:
    b = make_phones().phones["b"]
    b.receive_signal(KEY["a"], b"", now=0.0)
    b.receive_signal(KEY["a"], b"\x02\x00", now=0.0)
    b.receive_signal(KEY["a"], b"\x7e" + bytes(8), now=0.0)
    assert b.counters.signals_malformed == 2 and b.counters.signals_unknown == 1
    assert b.next_event() is None


def test_a_duplicate_invite_rings_once() -> None:
    sig = make_phones()
    sig.phones["a"].dial(KEY["b"], now=0.0)
    sig.collect()
    invite = sig.flight[0][2]
    sig.settle(now=0.0)
    sig.phones["b"].receive_signal(KEY["a"], invite, now=0.1)
    sig.collect()
    assert sig.states("b") == [(CallState.INCOMING, "")]
    assert sig.phones["b"].counters.signals_ignored == 1


# -- DTMF ------------------------------------------------------------------------------------
def test_dtmf_is_delivered_in_order_once_even_when_it_arrives_reversed() -> None:
    sig = connected()
    a, b = sig.phones["a"], sig.phones["b"]
    a.send_dtmf("12#a9", now=1.0)
    sig.collect()
    bodies = [body for src, _, body in sig.flight if src == "a"]
    sig.flight.clear()
    assert [pull_signal(x).seq for x in bodies] == [0, 1, 2, 3, 4]  # type: ignore[union-attr]
    for body in reversed(bodies):
        b.receive_signal(KEY["a"], body, now=1.0)
    for body in bodies:  # duplicates change nothing
        b.receive_signal(KEY["a"], body, now=1.0)
    sig.collect()
    digits = [e.digit for e in sig.events["b"] if isinstance(e, DtmfReceived)]
    assert digits == ["1", "2", "#", "A", "9"]
    assert b.live_call().dtmf_received == "12#A9"  # type: ignore[union-attr]
    assert b.counters.dtmf_received == 5 and a.counters.dtmf_sent == 5
    out = [audio(sig, now=t, mic=lambda i: SILENCE) for t in ticks(1.0, 5)]
    assert max(peak(o["b"]) for o in out) > 1000  # the digits play locally
    assert max(peak(o["a"]) for o in out) > 1000  # and at the sender as feedback


def test_dtmf_held_behind_a_gap_waits_for_it() -> None:
    sig = connected()
    a, b = sig.phones["a"], sig.phones["b"]
    a.send_dtmf("345", now=1.0)
    sig.collect()
    bodies = [body for src, _, body in sig.flight if src == "a"]
    sig.flight.clear()
    b.receive_signal(KEY["a"], bodies[2], now=1.0)
    b.receive_signal(KEY["a"], bodies[1], now=1.0)
    sig.collect()
    assert not [e for e in sig.events.get("b", []) if isinstance(e, DtmfReceived)]
    b.receive_signal(KEY["a"], bodies[0], now=1.0)
    sig.collect()
    assert [e.digit for e in sig.events["b"] if isinstance(e, DtmfReceived)] == ["3", "4", "5"]


def test_dtmf_that_overtakes_the_answer_is_not_lost() -> None:
    sig = make_phones()
    a, b = sig.phones["a"], sig.phones["b"]
    a.dial(KEY["b"], now=0.0)
    sig.settle(now=0.0)
    b.answer(now=1.0)
    b.send_dtmf("78", now=1.0)
    sig.collect()
    answer, *dtmf = sig.flight
    sig.flight = [*dtmf, answer]  # the digits overtake the ANSWER
    sig.settle(now=1.0)
    assert a.live_call().state is CallState.ACTIVE  # type: ignore[union-attr]
    assert [e.digit for e in sig.events["a"] if isinstance(e, DtmfReceived)] == ["7", "8"]


def test_a_cancel_that_overtakes_its_invite_does_not_ring() -> None:
    sig = make_phones()
    a, b = sig.phones["a"], sig.phones["b"]
    a.dial(KEY["b"], now=0.0)
    a.hangup(now=0.0)
    sig.collect()
    invite, hangup = sig.flight
    sig.flight = [hangup, invite]
    sig.settle(now=0.0)
    assert b.live_call() is None


# -- commands in the wrong state -------------------------------------------------------------
def test_commands_in_the_wrong_state_raise_call_error_with_a_code() -> None:
    sig = make_phones()
    a, b = sig.phones["a"], sig.phones["b"]

    def code(fn: Callable[[], object]) -> str:
        with pytest.raises(CallError) as info:
            fn()
        return info.value.code

    assert code(lambda: a.answer(now=0.0)) == "no_call"
    assert code(lambda: a.hangup(now=0.0)) == "no_call"
    assert code(lambda: a.send_dtmf("1", now=0.0)) == "no_call"
    call = a.dial(KEY["b"], now=0.0)
    sig.settle(now=0.0)
    assert code(lambda: a.answer(call.call_id, now=0.0)) == "wrong_state"  # our own call
    assert code(lambda: a.answer(now=0.0)) == "no_call"  # nothing rings here
    assert code(lambda: a.send_dtmf("1", now=0.0)) == "no_call"  # nothing talks yet
    assert code(lambda: a.send_dtmf("1", call.call_id, now=0.0)) == "wrong_state"
    assert code(lambda: b.send_dtmf("1", now=0.0)) == "no_call"
    assert code(lambda: b.send_dtmf("", now=0.0)) == "bad_request"
    assert code(lambda: b.send_dtmf("12E", now=0.0)) == "bad_request"
    assert code(lambda: b.answer(bytes(8), now=0.0)) == "no_call"  # no such call id
    assert code(lambda: b.resume(now=0.0)) == "no_call"
    assert code(lambda: b.swap(now=0.0)) == "no_call"
    assert code(lambda: b.conference(now=0.0)) == "no_call"
    b.answer(now=0.0)
    sig.settle(now=0.0)
    assert code(lambda: b.answer(now=0.0)) == "no_call"
    assert code(lambda: b.answer(call.call_id, now=0.0)) == "wrong_state"
    a.hangup(now=1.0)
    sig.settle(now=1.0)
    assert code(lambda: a.hangup(call.call_id, now=1.0)) == "no_call"  # it ended
    assert code(lambda: b.hangup(now=1.0)) == "no_call"
    assert all(isinstance(e, CallStateChanged | CallUpdated) for e in sig.events["a"])


# -- the speaker -----------------------------------------------------------------------------
def test_audio_tick_is_silence_when_idle_and_never_sends() -> None:
    a = make_phones().phones["a"]
    for i in range(10):
        assert a.audio_tick(speech(i), now=i * TICK) == SILENCE
    assert a.media_to_send() == [] and not a.audio_active(1.0)


def test_audio_tick_plays_ringback_then_call_audio_with_frames_of_the_right_size() -> None:
    sig = make_phones()
    sig.phones["a"].dial(KEY["b"], now=0.0)
    sig.settle(now=0.0)
    ringing = [audio(sig, now=t, mic=lambda i: SILENCE) for t in ticks(0.0, 25)]
    sig.phones["b"].answer(now=0.5)
    sig.settle(now=0.5)
    talking = [audio(sig, now=t) for t in ticks(0.5, 50)]
    for o in ringing + talking:
        assert len(o["a"]) == len(o["b"]) == 2 * FRAME
    assert all(peak(o["a"]) > 0 for o in ringing[1:])  # ringback: 2 s on at first
    spectrum = np.abs(
        np.fft.rfft(np.frombuffer(b"".join(o["a"] for o in talking[20:]), dtype="<i2"))
    )
    peak_hz = np.argmax(spectrum) * RATE / (len(talking[20:]) * FRAME)
    assert abs(peak_hz - 300) < 15  # b's microphone, not a ringback tone (440/480 Hz)


# -- random interleavings --------------------------------------------------------------------
PHONES = "abc"
# Progress is likelier than trouble, so that calls get answered and talk.
OPS = (
    ["deliver"] * 8
    + ["dial"] * 3
    + ["answer"] * 3
    + ["hangup", "dtmf", "dtmf", "duplicate", "reorder", "drop", "unreachable"]
    + ["hold", "resume", "swap", "conference", "transfer"]
    + ["tick", "tick", "advance"]
)


@st.composite
def steps(draw: st.DrawFn) -> tuple[str, object, object]:
    op = draw(st.sampled_from(OPS))
    phone = st.sampled_from(PHONES)
    index = st.integers(0, 7)
    if op == "dial":
        return op, draw(phone), draw(phone)
    if op in ("answer", "hangup", "hold", "resume", "swap", "conference"):
        return op, draw(phone), None
    if op == "transfer":
        return op, draw(phone), draw(phone)
    if op == "dtmf":
        return op, draw(phone), draw(st.sampled_from(["1", "*9", "x"]))
    if op == "reorder":
        return op, draw(index), draw(index)
    if op == "tick":
        return op, draw(st.integers(1, 10)), None
    if op == "advance":
        return op, draw(st.sampled_from([0.5, 5.0, 21.0, 31.0, 61.0])), None
    return op, draw(index), None


def _check(sig: Signals) -> None:
    """The call tables' invariants: every call is in a state of the table; at most one call
    rings per phone while others are up, at most ``max_calls`` live; a call id up at both ends
    joins the same two phones."""
    for name, phone in sig.phones.items():
        live = phone.live_calls()
        assert len(live) <= phone.config.max_calls
        ringing = [c for c in live if c.state is CallState.INCOMING]
        assert len(ringing) <= 1 or not any(c.state in UP for c in live)
        for call in live:
            assert call.state in LIVE_STATES
            assert call.peer_key != KEY[name]
    up: dict[bytes, list[str]] = {}
    for name, phone in sig.phones.items():
        for call in phone.live_calls():
            if call.state in UP:
                up.setdefault(call.call_id, []).append(name)
    for call_id, names in up.items():
        assert len(names) <= 2
        if len(names) == 2:
            x, y = names
            cx = next(c for c in sig.phones[x].live_calls() if c.call_id == call_id)
            cy = next(c for c in sig.phones[y].live_calls() if c.call_id == call_id)
            assert cx.peer_key == KEY[y] and cy.peer_key == KEY[x]


UP = (CallState.ACTIVE, CallState.HELD)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(steps(), min_size=10, max_size=60), seed=st.integers(0, 3))
def test_random_interleavings_never_raise_and_never_split_a_call(
    script: list[tuple[str, object, object]], seed: int
) -> None:
    sig = make_phones(PHONES, codecs=fake_codecs, seed=seed)
    p = sig.phones
    now = 0.0
    for op, x, y in script:
        try:
            if op == "dial":
                assert isinstance(x, str) and isinstance(y, str)
                if x != y:
                    p[x].dial(KEY[y], now=now)
            elif op == "answer":
                p[str(x)].answer(now=now)
            elif op == "hangup":
                p[str(x)].hangup(now=now)
            elif op == "dtmf":
                p[str(x)].send_dtmf(str(y), now=now)
            elif op == "hold":
                p[str(x)].hold(now=now)
            elif op == "resume":
                p[str(x)].resume(now=now)
            elif op == "swap":
                p[str(x)].swap(now=now)
            elif op == "conference":
                p[str(x)].conference(now=now)
            elif op == "transfer":
                p[str(x)].transfer(None, NUMBER[str(y)], now=now)
        except CallError:
            pass
        sig.collect()
        n = len(sig.flight)
        if op in ("deliver", "duplicate", "reorder", "drop", "unreachable") and n:
            assert isinstance(x, int)
            i = x % n
            if op == "deliver":
                sig.deliver(i, now=now)
            elif op == "duplicate":
                sig.flight.append(sig.flight[i])
                sig.deliver(i, now=now)
            elif op == "reorder":
                assert isinstance(y, int)
                sig.flight.insert(y % n, sig.flight.pop(i))
            elif op == "drop":
                sig.flight.pop(i)
            else:  # the node gave up on it: the sender hears so
                src, dst, _ = sig.flight.pop(i)
                p[src].peer_unreachable(KEY[dst], now=now)
                sig.collect()
        elif op == "tick":
            assert isinstance(x, int)
            for t in ticks(now, x):
                audio(sig, now=t, mic=speech)
            now = round(now + x * TICK, 9)
        elif op == "advance":
            assert isinstance(x, float)
            fire_timers(p.values(), until=now + x, not_before=now)
            sig.collect()
            now += x
        _check(sig)
    # Then the network heals: everything in flight arrives, and calls settle.
    sig.settle(now=now, limit=500)
    _check(sig)
    for t in ticks(now, 5):
        audio(sig, now=t)
        sig.settle(now=t, limit=500)
        _check(sig)
    # No stuck state: with nobody acting and nothing heard, every call reaches ENDED by its
    # own timers (ring, dial, resolve and media timeouts), and transfers asked never hang.
    now += 0.1
    for _ in range(10):
        fire_timers(p.values(), until=now + 100.0, not_before=now)
        sig.settle(now=now + 100.0, limit=500)
        now += 100.0
    for phone in p.values():
        assert phone.live_calls() == [], [(c.state, c.peer_key[:1]) for c in phone.live_calls()]
        assert all(c.state is CallState.ENDED and c.reason is not None for c in phone.calls())


def test_a_phone_without_a_codec_fails_the_call_cleanly() -> None:
    """No libopus (OpusUnavailable is an ImportError): answering ends the call 'failed' at
    both ends instead of raising into the daemon or leaving the caller at ringback."""
    from peerline.adapters.opus import OpusUnavailable

    def broken(rate: int) -> tuple[AudioEncoder, AudioDecoder]:
        raise OpusUnavailable("libopus is not installed")

    sig = make_phones()
    sig.phones["b"] = CallManager(codecs=broken, rng=SeededRng(99))
    a, b = sig.phones["a"], sig.phones["b"]
    a.dial(KEY["b"], now=0.0)
    sig.settle(now=0.0)
    call = b.answer(now=1.0)
    sig.settle(now=1.0)
    assert (call.state, call.reason) == (CallState.ENDED, "failed")
    assert a.live_call() is None
    assert a.calls()[0].reason == "failed"


def test_local_dial_tone_plays_until_a_call_needs_the_speaker() -> None:
    """The handset sets the dial tone when it goes off the hook; dialling silences it, ringback
    replaces it, and clearing it lets the device go idle."""
    sig = make_phones()
    a = sig.phones["a"]
    assert not a.audio_active(0.0)
    a.set_local_tone(Tone.DIAL)
    assert a.audio_active(0.0)
    frames = [a.audio_tick(SILENCE, now=i * TICK) for i in range(5)]
    assert all(peak(f) > 1000 for f in frames)  # 350 + 440 Hz, continuous
    a.dial(KEY["b"], now=0.1)
    assert peak(a.audio_tick(SILENCE, now=0.12)) == 0  # dialling: nothing rings yet
    sig.settle(now=0.12)
    assert a.live_call().state is CallState.RINGBACK  # type: ignore[union-attr]
    a.hangup(now=0.2)
    a.set_local_tone(None)
    assert not a.audio_active(0.3)
    assert a.audio_tick(SILENCE, now=0.3) == SILENCE
    a.play_dtmf_feedback("5")
    assert a.audio_active(0.3) and peak(a.audio_tick(SILENCE, now=0.32)) > 1000
