"""Call control and the phone's audio, sans-I/O (docs/protocol.md §6.7; design §8, §9).

``CallManager`` places, rings, answers and ends calls by exchanging SIGNAL messages
(``peerline.wire.call``) over the secure sessions the node keeps, runs a ``MediaSession`` for
the call that is talking, and makes what the speaker plays every 20 ms: the call's audio, or
the local tones of the region's plan (ringback, the ringer, busy, congestion) and DTMF.

It reads no clock and owns no socket or sound card. Inputs: commands (``dial``, ``answer``,
``hangup``, ``send_dtmf``), what the peer sent (``receive_signal``, ``receive_media``,
``receive_report``, ``peer_unreachable``), the microphone's 20 ms frames (``audio_tick``) and
``handle_timer``. Outputs: ``signals_to_send``, ``media_to_send``, ``next_event``,
``get_timer``, and ``audio_tick``'s return value for the speaker.

Rules a second implementation must share (protocol.md §6.7): one live call per phone (another
caller gets HANGUP busy; call waiting and conferences build on this later); a message names its
call and is honoured only from the peer the call is with; messages for a call that has ended are
ignored; when two phones dial each other at once (glare) the call with the smaller call id
survives and the phone that receives it answers it at once: both wanted to talk.
"""

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from peerline.errors import DecodeError, LocalProtocolError, PeerlineError
from peerline.ports import AudioDecoder, AudioEncoder, Rng
from peerline.proto.media.session import MediaConfig, MediaSession
from peerline.proto.media.tones import (
    Tone,
    ToneGenerator,
    TonePlan,
    ToneSpec,
    dtmf_tone,
    mix,
    scale,
    tone_plan,
)
from peerline.wire.call import (
    CALL_ID_SIZE,
    DTMF_DIGITS,
    Answer,
    Dtmf,
    Hangup,
    HangupReason,
    Invite,
    Ringing,
    Signal,
    UnknownSignal,
    pull_signal,
    push_signal,
)
from peerline.wire.media import MediaCodec

from .events import CallEvent, CallStateChanged, DtmfReceived, MediaQuiet
from .state import TONE_AFTER, Call, CallState, CallTrigger, EndReason, next_state

log = logging.getLogger(__name__)

CodecFactory = Callable[[int], tuple[AudioEncoder, AudioDecoder]]
"""Sample rate -> a fresh (encoder, decoder) pair for one call (the Opus adapter in the phone)."""

EARLY_HANGUPS_KEPT = 64
VOLUME_LEVELS = 10
"""Speaker volume runs 0..VOLUME_LEVELS; ``DEFAULT_VOLUME`` plays at unity gain."""
DEFAULT_VOLUME = 7
_VOLUME_DB_PER_STEP = 3.0
SUPPORTED_RATES_KHZ = (16,)
"""Wideband: what the phone's audio runs at (48 kHz is defined on the wire for later)."""

_REMOTE_REASONS = {
    HangupReason.NORMAL: EndReason.REMOTE_HANGUP,
    HangupReason.BUSY: EndReason.BUSY,
    HangupReason.DECLINED: EndReason.DECLINED,
    HangupReason.NO_ANSWER: EndReason.NO_ANSWER,
    HangupReason.INCOMPATIBLE: EndReason.INCOMPATIBLE,
    HangupReason.FAILED: EndReason.FAILED,
}
_BUSY_TONE = frozenset({EndReason.BUSY, EndReason.DECLINED})
"""An outgoing call that ended for one of ``TONE_AFTER`` plays busy for these, congestion for
the rest, for ``end_tone_s`` (none after a talk)."""


class CallError(LocalProtocolError):
    """A command that cannot be carried out now; ``code`` says why (control API error code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True, kw_only=True)
class CallConfig:
    region: str = "us"
    "Tone plan (``peerline.proto.media.tones``)."
    sample_rate: int = 16_000
    name: str = ""
    "Display name sent in INVITEs."
    auto_answer: bool = False
    "Answer every call at once (a hotline handset or a kiosk)."
    resolve_timeout_s: float = 35.0
    "A placed call whose number is not found by then fails ('lookup_timeout'): two lookups of"
    " at most 15 s each, and slack."
    dial_timeout_s: float = 30.0
    "An INVITE that rings nothing by then: the call fails ('unreachable')."
    ring_timeout_s: float = 60.0
    "A ringing call nobody answers by then ends ('no_answer')."
    media_quiet_s: float = 2.5
    "A talking call that hears nothing this long reports ``MediaQuiet`` (its path may be dead:"
    " a relay gone). Receiver reports come every second even in silence: two missed, and slack."
    media_timeout_s: float = 20.0
    "A talking call that hears nothing (no media, no report) this long ends ('connection_lost')."
    end_tone_s: float = 3.0
    "How long busy or congestion plays after a failed outgoing call."
    tone_level_dbfs: float = -16.0
    ended_kept: int = 16
    "Ended calls kept for status and so that late messages for them are ignored."
    media: MediaConfig = field(default_factory=MediaConfig)


@dataclass(slots=True)
class CallCounters:
    calls_placed: int = 0
    calls_received: int = 0
    calls_answered: int = 0
    calls_busy: int = 0
    "INVITEs refused because a call was live."
    glare: int = 0
    "Crossed INVITEs resolved by call id."
    signals_malformed: int = 0
    signals_unknown: int = 0
    signals_ignored: int = 0
    "Well-formed signals for no call of ours, from the wrong peer, or out of place."
    media_without_call: int = 0
    dtmf_sent: int = 0
    dtmf_received: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class CallManager:
    def __init__(self, *, codecs: CodecFactory, rng: Rng, config: CallConfig | None = None):
        self.config = config or CallConfig()
        self.plan: TonePlan = tone_plan(self.config.region)
        self.counters = CallCounters()
        self._codecs = codecs
        self._rng = rng
        self._calls: dict[bytes, Call] = {}
        self._ended: deque[Call] = deque(maxlen=self.config.ended_kept)
        self._signals: list[tuple[bytes, bytes]] = []
        self._media: list[tuple[bytes, bytes | None, bytes | None]] = []
        self._events: deque[CallEvent] = deque()
        self._frame = self.config.sample_rate // 50
        self._silence = b"\x00" * (2 * self._frame)
        self._tone: tuple[Tone, bytes] | None = None
        "The tone playing and the call it is for."
        self._tone_gen: ToneGenerator | None = None
        self._end_tone: tuple[Tone, bytes, float] | None = None
        "(tone, call id, until): busy or congestion after a failed outgoing call."
        self._overlays: list[ToneGenerator] = []
        "DTMF feedback mixed over whatever plays."
        self._local_tone: Tone | None = None
        self.muted = False
        "The microphone is cut: silence is sent instead (DTX), the call goes on."
        self.volume = DEFAULT_VOLUME
        self._gain = 1.0
        self.do_not_disturb = False
        "Callers are refused busy (``busy_here`` with the reason ``do_not_disturb`` shown here)."
        self._new: set[bytes] = set()
        "Calls made but not yet given their first state."
        self._early_hangups: OrderedDict[bytes, bytes] = OrderedDict()
        "call id -> peer key of HANGUPs for calls not seen yet: a cancel that overtook its"
        " INVITE (signals are not ordered); that INVITE must not ring."

    # -- commands ----------------------------------------------------------------------------
    def place(self, *, target: str = "", now: float) -> Call:
        """A call the user dialled, before its number is found: ``RESOLVING``. Then
        ``resolved`` when the finder knows the key, ``invite`` once the session is up, or
        ``fail`` with the reason the number could not be reached."""
        if self.live_call() is not None:
            raise CallError("busy", "a call is already in progress")
        call = self._new_call(self._rng.random_bytes(CALL_ID_SIZE), b"", True, now, target=target)
        self.counters.calls_placed += 1
        self._set(call, CallTrigger.PLACE, now)
        return call

    def resolved(
        self, call_id: bytes, peer_key: bytes, *, number: str | None, connect_by: float
    ) -> None:
        """The resolving call's number belongs to ``peer_key``; its session must be up by
        ``connect_by`` or the call ends ``unreachable``. A crossed INVITE from that key now
        counts as glare."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.RESOLVING:
            return
        call.peer_key = peer_key
        call.number = number
        call.connect_by = connect_by

    def invite(self, call_id: bytes, *, now: float) -> None:
        """The session with the resolving call's peer is up: send the INVITE (``DIALING``)."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.RESOLVING or not call.peer_key:
            return
        rate = self.config.sample_rate // 1000
        self._send(call, Invite(call_id=call.call_id, rate_khz=rate, name=self.config.name))
        call.connect_by = None
        self._set(call, CallTrigger.INVITE, now)

    def fail(self, call_id: bytes, reason: EndReason, *, detail: str = "", now: float) -> None:
        """End a resolving call that cannot be placed (number unknown, conflict, no session)."""
        call = self._calls.get(call_id)
        if call is not None and call.state is CallState.RESOLVING:
            self._end(call, reason, now, detail=detail)

    def reconfigure(self, config: CallConfig) -> None:
        """New settings from here on (a reloaded configuration): the name, auto-answer, the
        timeouts and the tone plan. A call keeps its media as it was set up.

        :raises CallError: ``config`` changes what calls already rely on (the sample rate, the
            ended calls kept, the media settings): that waits for a restart.
        """
        fixed = ("sample_rate", "ended_kept", "media")
        if any(getattr(config, f) != getattr(self.config, f) for f in fixed):
            raise CallError("bad_request", "the sample rate and media settings need a restart")
        self.config = config
        self.plan = tone_plan(config.region)

    def set_mute(self, on: bool) -> None:
        """Cut the microphone (silence is sent, so the far end hears nothing) or restore it.
        Mute lasts until the last live call ends: the next call starts with the microphone on."""
        self.muted = on

    def set_volume(self, level: int) -> None:
        """Speaker volume 0..``VOLUME_LEVELS`` (0 is silent), 3 dB a step around
        ``DEFAULT_VOLUME``."""
        if not 0 <= level <= VOLUME_LEVELS:
            raise CallError("bad_request", f"volume is 0 to {VOLUME_LEVELS}")
        self.volume = level
        self._gain = (
            0.0 if level == 0 else 10 ** ((level - DEFAULT_VOLUME) * _VOLUME_DB_PER_STEP / 20)
        )

    def set_do_not_disturb(self, on: bool) -> None:
        """Refuse every new caller (busy) while on; a live call goes on."""
        self.do_not_disturb = on

    def resolving(self) -> list[Call]:
        """Placed calls still waiting for their number or session."""
        return [c for c in self._calls.values() if c.state is CallState.RESOLVING]

    def dial(self, peer_key: bytes, *, now: float) -> Call:
        """Call ``peer_key`` at once (its session is there or being made): ``place``,
        ``resolved`` and ``invite`` in one, for a peer already known by key."""
        call = self.place(now=now)
        self.resolved(call.call_id, peer_key, number=None, connect_by=now)
        self.invite(call.call_id, now=now)
        return call

    def answer(self, call_id: bytes | None = None, *, now: float) -> Call:
        call = self._pick(call_id, CallState.INCOMING, "no call is ringing")
        if self._activate(call, now):
            rate = self.config.sample_rate // 1000
            self._send(call, Answer(call_id=call.call_id, rate_khz=rate))
        return call

    def hangup(self, call_id: bytes | None = None, *, now: float) -> Call:
        """End the live call: hang up a talk, cancel a call we placed, decline a ringing one."""
        call = self._pick(call_id, None, "no call to hang up")
        if call.state is CallState.INCOMING:
            self._send(call, Hangup(call_id=call.call_id, reason=HangupReason.DECLINED))
            self._end(call, EndReason.DECLINED_HERE, now)
        elif call.state is CallState.RESOLVING:
            self._end(call, EndReason.CANCELLED, now)  # nothing was sent yet
        else:
            self._send(call, Hangup(call_id=call.call_id, reason=HangupReason.NORMAL))
            active = call.state is CallState.ACTIVE
            self._end(call, EndReason.HANGUP if active else EndReason.CANCELLED, now)
        return call

    def send_dtmf(self, digits: str, call_id: bytes | None = None, *, now: float) -> Call:
        """Send DTMF digits as events (never as audio) and play them locally."""
        digits = digits.upper()
        bad = [d for d in digits if d not in DTMF_DIGITS]
        if not digits or bad:
            raise CallError("bad_request", f"DTMF digits are {DTMF_DIGITS}")
        call = self._pick(call_id, CallState.ACTIVE, "no call is talking")
        for digit in digits:
            self._send(
                call,
                Dtmf(call_id=call.call_id, seq=call.dtmf_out_seq & 0xFFFF, digit=digit),
            )
            call.dtmf_out_seq += 1
            self.counters.dtmf_sent += 1
            self._overlay(dtmf_tone(digit, 0.1))
        return call

    # -- what the peer sent ------------------------------------------------------------------
    def receive_signal(self, peer_key: bytes, body: bytes, *, now: float) -> None:
        try:
            signal = pull_signal(body)
        except UnknownSignal:
            self.counters.signals_unknown += 1
            return
        except DecodeError:
            self.counters.signals_malformed += 1
            return
        if isinstance(signal, Invite):
            self._on_invite(peer_key, signal, now)
            return
        call = self._calls.get(signal.call_id)
        if call is None and isinstance(signal, Hangup):
            self._early_hangups[signal.call_id] = peer_key
            while len(self._early_hangups) > EARLY_HANGUPS_KEPT:
                self._early_hangups.popitem(last=False)
        if call is None or call.peer_key != peer_key or not call.live:
            self.counters.signals_ignored += 1
            return
        if isinstance(signal, Ringing):
            if call.outgoing and call.state is CallState.DIALING:
                self._set(call, CallTrigger.RINGING, now)
            else:
                self.counters.signals_ignored += 1
        elif isinstance(signal, Answer):
            if call.outgoing and call.state in (CallState.DIALING, CallState.RINGBACK):
                self._activate(call, now)
            else:
                self.counters.signals_ignored += 1
        elif isinstance(signal, Hangup):
            reason = _REMOTE_REASONS[signal.reason]
            if not call.outgoing and call.state is CallState.INCOMING:
                reason = EndReason.CANCELLED  # the caller gave up before we answered
            self._end(call, reason, now)
        else:
            self._on_dtmf(call, signal)

    def receive_media(self, peer_key: bytes, body: bytes, *, at: float) -> None:
        if (media := self._talking_with(peer_key)) is not None:
            media.receive(body, at)

    def receive_report(self, peer_key: bytes, body: bytes, *, at: float) -> None:
        if (media := self._talking_with(peer_key)) is not None:
            media.receive_report(body, at)

    def _talking_with(self, peer_key: bytes) -> MediaSession | None:
        """The media of the active call with ``peer_key``; None (counted) if there is none."""
        call = self.live_call()
        if call is None or call.peer_key != peer_key or call.media is None:
            self.counters.media_without_call += 1
            return None
        return call.media

    def peer_unreachable(self, peer_key: bytes, *, now: float) -> None:
        """A signal to ``peer_key`` was never acknowledged: its call cannot go on."""
        call = self.live_call()
        if call is not None and call.peer_key == peer_key and call.state is not CallState.RESOLVING:
            self._end(call, EndReason.UNREACHABLE, now)

    # -- audio -------------------------------------------------------------------------------
    def audio_tick(self, captured: bytes | None, *, now: float) -> bytes:
        """One 20 ms period: the microphone's frame in (None if the device gave none), the
        speaker's frame out. Media to send collects in ``media_to_send``."""
        call = self.live_call()
        out = self._silence
        if call is not None and call.media is not None:
            media = call.media
            if captured is not None and self.muted:
                captured = self._silence
            body = media.capture(captured, now) if captured is not None else None
            report = media.report_due(now)
            if body is not None or report is not None:
                self._media.append((call.peer_key, body, report))
            out = media.playout(now)
        tone = self._tone_frame(call, now)
        if tone is not None:
            out = mix(out, tone)
        if self._overlays:
            for gen in self._overlays:
                out = mix(out, gen.frame(self._frame))
            self._overlays = [g for g in self._overlays if not g.finished]
        return scale(out, self._gain)

    # -- timers ------------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        deadlines = [
            d
            for c in self._calls.values()
            for d in (self._deadline(c), self._quiet_deadline(c))
            if d is not None
        ]
        return min(deadlines, default=None)

    def handle_timer(self, *, now: float) -> None:
        for call in list(self._calls.values()):
            quiet = self._quiet_deadline(call)
            if quiet is not None and now >= quiet and call.media is not None:
                call.quiet_since = call.media.last_heard() or call.state_since
                self._events.append(MediaQuiet(call_id=call.call_id, peer_key=call.peer_key))
            deadline = self._deadline(call)
            if deadline is None or now < deadline:
                continue
            if call.state is CallState.RESOLVING:
                detail = "the phone did not answer" if call.peer_key else "not found in time"
                reason = EndReason.UNREACHABLE if call.peer_key else EndReason.LOOKUP_TIMEOUT
                self._end(call, reason, now, detail=detail)
            elif call.state is CallState.DIALING:
                self._send(call, Hangup(call_id=call.call_id, reason=HangupReason.NORMAL))
                self._end(call, EndReason.UNREACHABLE, now)
            elif call.state is CallState.RINGBACK:
                self._send(call, Hangup(call_id=call.call_id, reason=HangupReason.NORMAL))
                self._end(call, EndReason.NO_ANSWER, now)
            elif call.state is CallState.INCOMING:
                self._send(call, Hangup(call_id=call.call_id, reason=HangupReason.NO_ANSWER))
                self._end(call, EndReason.MISSED, now)
            elif call.state is CallState.ACTIVE:
                self._send(call, Hangup(call_id=call.call_id, reason=HangupReason.FAILED))
                self._end(call, EndReason.CONNECTION_LOST, now)

    # -- outputs -----------------------------------------------------------------------------
    def signals_to_send(self) -> list[tuple[bytes, bytes]]:
        """(peer key, SIGNAL body) to give ``Node.send_signal``, oldest first."""
        out, self._signals = self._signals, []
        return out

    def media_to_send(self) -> list[tuple[bytes, bytes | None, bytes | None]]:
        """(peer key, MEDIA body or None, MEDIA_REPORT body or None) for ``Node.send_media``."""
        out, self._media = self._media, []
        return out

    def next_event(self) -> CallEvent | None:
        return self._events.popleft() if self._events else None

    # -- state -------------------------------------------------------------------------------
    def live_call(self) -> Call | None:
        for call in self._calls.values():
            if call.live:
                return call
        return None

    def set_local_tone(self, tone: Tone | None) -> None:
        """A tone to play while no call needs the speaker: the dial tone while the handset is
        off the hook and nothing is dialled yet (the handset's UI sets and clears it). Call
        tones (ringback, ringer, busy after a failed call) take precedence."""
        self._local_tone = tone

    def play_dtmf_feedback(self, digit: str) -> None:
        """The key's tone, locally only (e.g. dialling digits before a call exists)."""
        self._overlay(dtmf_tone(digit, 0.1))

    def audio_active(self, now: float) -> bool:
        """Whether the sound card is needed now: a call (placed, ringing or talking: not while
        its number is still being found), a tone, DTMF still playing."""
        live = self.live_call()
        if live is not None and live.state is not CallState.RESOLVING:
            return True
        if self._overlays or self._local_tone is not None:
            return True
        return self._end_tone is not None and now < self._end_tone[2]

    def tone_until(self) -> float | None:
        """When the busy or congestion tone after a failed call stops, if one plays."""
        return None if self._end_tone is None else self._end_tone[2]

    def calls(self) -> list[Call]:
        """Live calls, then the recently ended ones (newest first)."""
        return [c for c in self._calls.values() if c.live] + list(reversed(self._ended))

    def call_status(self, call: Call, now: float) -> dict[str, Any]:
        end = call.ended_at if call.ended_at is not None else now
        return {
            "call_id": call.call_id.hex(),
            "peer_key": call.peer_key.hex(),
            "direction": "outgoing" if call.outgoing else "incoming",
            "state": str(call.state),
            "reason": None if call.reason is None else str(call.reason),
            "name": call.name or None,
            "age_s": round(now - call.created_at, 1),
            "talk_s": None if call.answered_at is None else round(end - call.answered_at, 1),
            "dtmf_received": call.dtmf_received,
            "media": None if call.media is None else call.media.stats(now),
        }

    # -- internals ---------------------------------------------------------------------------
    def _on_invite(self, peer_key: bytes, invite: Invite, now: float) -> None:
        if invite.call_id in self._calls:
            self.counters.signals_ignored += 1  # a duplicate, or a reused id: never twice
            return
        if self._early_hangups.get(invite.call_id) == peer_key:
            del self._early_hangups[invite.call_id]
            self.counters.signals_ignored += 1  # cancelled before it arrived
            return
        live = self.live_call()
        auto = self.config.auto_answer
        if (
            live is not None
            and live.peer_key == peer_key
            and live.outgoing
            and live.state in (CallState.RESOLVING, CallState.DIALING, CallState.RINGBACK)
        ):
            self.counters.glare += 1
            if live.state is not CallState.RESOLVING and live.call_id < invite.call_id:
                return  # ours survives: the peer answers it when our INVITE arrives
            # Theirs survives (ours went nowhere yet, or has the larger id); the peer forgets
            # ours: no HANGUP.
            self._end(live, EndReason.GLARE, now)
            auto = True
        elif live is not None or self.do_not_disturb:
            self.counters.calls_busy += 1
            refused = self._new_call(invite.call_id, peer_key, False, now, name=invite.name)
            self._send(refused, Hangup(call_id=invite.call_id, reason=HangupReason.BUSY))
            why = EndReason.BUSY_HERE if live is not None else EndReason.DO_NOT_DISTURB
            self._end(refused, why, now)
            return
        call = self._new_call(invite.call_id, peer_key, False, now, name=invite.name)
        self.counters.calls_received += 1
        if invite.codec != MediaCodec.OPUS or invite.rate_khz not in SUPPORTED_RATES_KHZ:
            self._send(call, Hangup(call_id=call.call_id, reason=HangupReason.INCOMPATIBLE))
            self._end(call, EndReason.INCOMPATIBLE, now)
            return
        self._send(call, Ringing(call_id=call.call_id))
        self._set(call, CallTrigger.INVITED, now)
        if auto:
            self.answer(call.call_id, now=now)

    def _on_dtmf(self, call: Call, dtmf: Dtmf) -> None:
        if call.state is CallState.INCOMING:
            self.counters.signals_ignored += 1  # only the answering side can talk yet
            return
        ahead = (dtmf.seq - call.dtmf_in_next) & 0xFFFF
        if ahead >= 0x8000 or ahead > 64:
            self.counters.signals_ignored += 1  # already delivered, or absurdly far ahead
            return
        # Held until the call is ACTIVE here too: a digit may overtake the ANSWER.
        call.dtmf_held[dtmf.seq] = (dtmf.digit, dtmf.duration_ms)
        self._deliver_dtmf(call)

    def _deliver_dtmf(self, call: Call) -> None:
        if call.state is not CallState.ACTIVE:
            return
        while (held := call.dtmf_held.pop(call.dtmf_in_next, None)) is not None:
            digit, ms = held
            call.dtmf_in_next = (call.dtmf_in_next + 1) & 0xFFFF
            call.dtmf_received = (call.dtmf_received + digit)[-32:]
            self.counters.dtmf_received += 1
            self._overlay(dtmf_tone(digit, ms / 1000))
            self._events.append(
                DtmfReceived(
                    call_id=call.call_id, peer_key=call.peer_key, digit=digit, duration_ms=ms
                )
            )

    def _new_call(
        self,
        call_id: bytes,
        peer_key: bytes,
        outgoing: bool,
        now: float,
        *,
        name: str = "",
        target: str = "",
    ) -> Call:
        """A call not yet in any state (``_set`` gives it its first, through the table)."""
        call = Call(
            call_id=call_id,
            peer_key=peer_key,
            outgoing=outgoing,
            state=CallState.ENDED,  # placeholder until the first transition
            created_at=now,
            state_since=now,
            name=name,
            target=target,
        )
        self._new.add(call_id)
        self._calls[call_id] = call
        return call

    def _activate(self, call: Call, now: float) -> bool:
        """Start the call's media; without a codec (no libopus) the call fails, cleanly."""
        try:
            encoder, decoder = self._codecs(self.config.sample_rate)
        except (PeerlineError, ImportError, OSError) as exc:
            log.error("call %s: no audio codec: %s", call.call_id.hex()[:8], exc)
            self._send(call, Hangup(call_id=call.call_id, reason=HangupReason.FAILED))
            self._end(call, EndReason.FAILED, now)
            return False
        seeds = self._rng.random_bytes(6)
        call.media = MediaSession(
            encoder,
            decoder,
            config=self.config.media,
            first_seq=int.from_bytes(seeds[:2], "big"),
            first_ts=int.from_bytes(seeds[2:], "big"),
            now=now,
        )
        call.answered_at = now
        self.counters.calls_answered += 1
        self._set(call, CallTrigger.ANSWERED, now)
        self._deliver_dtmf(call)
        return True

    def _set(self, call: Call, trigger: CallTrigger, now: float) -> None:
        """Move ``call`` by ``trigger``, as ``TRANSITIONS`` allows, and report it."""
        new = call.call_id in self._new
        call.state = next_state(None if new else call.state, trigger)
        self._new.discard(call.call_id)
        call.state_since = now
        self._changed(call)

    def _end(self, call: Call, reason: EndReason, now: float, *, detail: str = "") -> None:
        call.reason = reason
        call.detail = detail
        call.ended_at = now
        self._set(call, CallTrigger.END, now)
        if call.outgoing and reason in TONE_AFTER:
            tone = Tone.BUSY if reason in _BUSY_TONE else Tone.CONGESTION
            self._end_tone = (tone, call.call_id, now + self.config.end_tone_s)
        self._ended.append(call)
        self._prune()
        if not any(c.live for c in self._calls.values()):
            self.muted = False

    def _prune(self) -> None:
        kept = {c.call_id for c in self._ended}
        for call_id in [k for k, c in self._calls.items() if not c.live and k not in kept]:
            del self._calls[call_id]

    def _changed(self, call: Call) -> None:
        self._events.append(
            CallStateChanged(
                call_id=call.call_id,
                peer_key=call.peer_key,
                state=call.state,
                reason=call.reason,
                detail=call.detail,
            )
        )

    def _send(self, call: Call, signal: Signal) -> None:
        self._signals.append((call.peer_key, push_signal(signal)))

    def _pick(self, call_id: bytes | None, state: CallState | None, none: str) -> Call:
        call = self._calls.get(call_id) if call_id is not None else self.live_call()
        if call is None or not call.live:
            raise CallError("no_call", none)
        if state is not None and call.state is not state:
            raise CallError("wrong_state", f"the call is {call.state}, not {state}")
        return call

    def _deadline(self, call: Call) -> float | None:
        cfg = self.config
        if call.state is CallState.RESOLVING:
            return (
                call.connect_by
                if call.connect_by is not None
                else (call.state_since + cfg.resolve_timeout_s)
            )
        if call.state is CallState.DIALING:
            return call.state_since + cfg.dial_timeout_s
        if call.state in (CallState.RINGBACK, CallState.INCOMING):
            return call.state_since + cfg.ring_timeout_s
        if call.state is CallState.ACTIVE and call.media is not None:
            heard = call.media.last_heard()
            return max(call.state_since, heard or call.state_since) + cfg.media_timeout_s
        return None

    def _quiet_deadline(self, call: Call) -> float | None:
        """When a talking call that hears nothing reports it (once per silence)."""
        if call.state is not CallState.ACTIVE or call.media is None:
            return None
        heard = call.media.last_heard() or call.state_since
        if call.quiet_since == heard:
            return None  # this silence was reported
        return max(call.state_since, heard) + self.config.media_quiet_s

    def _tone_frame(self, call: Call | None, now: float) -> bytes | None:
        want: tuple[Tone, bytes] | None = None
        if call is not None and call.state is CallState.RINGBACK:
            want = (Tone.RINGBACK, call.call_id)
        elif call is not None and call.state is CallState.INCOMING:
            want = (Tone.RINGER, call.call_id)
        elif call is None and self._end_tone is not None:
            tone, call_id, until = self._end_tone
            if now < until:
                want = (tone, call_id)
            else:
                self._end_tone = None
        if want is None and call is None and self._local_tone is not None:
            want = (self._local_tone, b"")
        if want != self._tone:
            self._tone = want
            self._tone_gen = None if want is None else self._generator(want[0])
        return None if self._tone_gen is None else self._tone_gen.frame(self._frame)

    def _generator(self, tone: Tone) -> ToneGenerator:
        return ToneGenerator(
            self.plan.spec(tone),
            sample_rate=self.config.sample_rate,
            level_dbfs=self.config.tone_level_dbfs,
        )

    def _overlay(self, spec: ToneSpec) -> None:
        self._overlays.append(
            ToneGenerator(
                spec, sample_rate=self.config.sample_rate, level_dbfs=self.config.tone_level_dbfs
            )
        )
        del self._overlays[:-4]
