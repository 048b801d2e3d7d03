"""Call control and the phone's audio, sans-I/O (docs/protocol.md §6.7; design §8, §9).

``CallManager`` places, rings, answers, holds, transfers, forwards and ends calls by exchanging
SIGNAL messages (``peerline.wire.call``) over the secure sessions the node keeps, runs a
``MediaSession`` for every answered call, mixes the calls that talk at once (a conference this
phone hosts), and makes what the speaker plays every 20 ms: the calls' audio, or the local
tones of the region's plan (ringback, the ringer, call waiting, hold, busy, congestion) and
DTMF (``sounds.LocalSounds``). Its tunables and counters are in ``config``.

It reads no clock and owns no socket or sound card. Inputs: commands (``place``, ``answer``,
``hangup``, ``hold``, ``resume``, ``swap``, ``conference``, ``transfer``, ``send_dtmf``), what
the peer sent (``receive_signal``, ``receive_media``, ``receive_report``,
``peer_unreachable``), the microphone's 20 ms frames (``audio_tick``) and ``handle_timer``.
Outputs: ``signals_to_send``, ``media_to_send``, ``next_event``, ``get_timer``, and
``audio_tick``'s return value for the speaker.

Rules a second implementation must share are protocol.md §6.7: several calls per phone, at
most one of them ringing while others are up (call waiting), the others refused busy; every
answered call either talks (ACTIVE: all of them are mixed together) or is on hold; a message
names its call and is honoured only from the peer the call is with; messages for a call that
has ended are ignored; when two phones dial each other at once (glare) the call with the
smaller call id survives and the phone that receives it answers it at once.
"""

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from peerline.errors import DecodeError, PeerlineError
from peerline.ports import Rng
from peerline.proto.identity.sas import SAS_NONCE_SIZE, sas_commitment
from peerline.proto.media.mixer import conference_mix
from peerline.proto.media.session import MediaSession
from peerline.proto.media.tones import (
    Tone,
    dtmf_tone,
    mix,
)
from peerline.wire.call import (
    CALL_ID_SIZE,
    DTMF_DIGITS,
    Answer,
    Dtmf,
    Hangup,
    HangupReason,
    Hold,
    Invite,
    Redirect,
    RedirectReason,
    Resume,
    Ringing,
    SasCommit,
    SasNonce,
    SasReveal,
    Signal,
    Transfer,
    TransferProgress,
    TransferStatus,
    UnknownSignal,
    pull_signal,
    push_signal,
)
from peerline.wire.media import MediaCodec

from .config import (
    DEFAULT_VOLUME,
    MAX_DIVERSIONS,
    SUPPORTED_RATES_KHZ,
    VOLUME_LEVELS,
    CallConfig,
    CallCounters,
    CallError,
    CodecFactory,
    Forwarding,
    SasFunction,
)
from .events import (
    CallEvent,
    CallStateChanged,
    CallUpdated,
    DtmfReceived,
    MediaQuiet,
    Redirected,
    TransferRequested,
)
from .sounds import LocalSounds
from .state import TONE_AFTER, Call, CallState, CallTrigger, EndReason, next_state

__all__ = [
    "DEFAULT_VOLUME",
    "MAX_DIVERSIONS",
    "SUPPORTED_RATES_KHZ",
    "VOLUME_LEVELS",
    "CallConfig",
    "CallCounters",
    "CallError",
    "CallManager",
    "CodecFactory",
    "Forwarding",
    "SasFunction",
]

log = logging.getLogger(__name__)

EARLY_HANGUPS_KEPT = 64
_VOLUME_DB_PER_STEP = 3.0

_REMOTE_REASONS = {
    HangupReason.NORMAL: EndReason.REMOTE_HANGUP,
    HangupReason.BUSY: EndReason.BUSY,
    HangupReason.DECLINED: EndReason.DECLINED,
    HangupReason.NO_ANSWER: EndReason.NO_ANSWER,
    HangupReason.INCOMPATIBLE: EndReason.INCOMPATIBLE,
    HangupReason.FAILED: EndReason.FAILED,
    HangupReason.ANSWERED_ELSEWHERE: EndReason.ANSWERED_ELSEWHERE,
    HangupReason.TRANSFERRED: EndReason.TRANSFERRED,
    HangupReason.SECURITY: EndReason.SECURITY,
}
_BUSY_TONE = frozenset({EndReason.BUSY, EndReason.DECLINED})
"""An outgoing call that ended for one of ``TONE_AFTER`` plays busy for these, congestion for
the rest, for ``end_tone_s`` (none after a talk)."""
_UP = (CallState.ACTIVE, CallState.HELD)
_PLACING = (CallState.RESOLVING, CallState.DIALING, CallState.RINGBACK)


class CallManager:
    def __init__(
        self,
        *,
        codecs: CodecFactory,
        rng: Rng,
        config: CallConfig | None = None,
        number: str = "",
        sas: SasFunction | None = None,
    ):
        self.config = config or CallConfig()
        self.sounds = LocalSounds(
            region=self.config.region,
            sample_rate=self.config.sample_rate,
            level_dbfs=self.config.tone_level_dbfs,
        )
        self.counters = CallCounters()
        self.number = number
        "This phone's own number (a forward back to it is a loop)."
        self.forwarding = Forwarding()
        self.intercom_keys: frozenset[bytes] = frozenset()
        "Callers whose intercom calls are answered at once (contacts marked auto-answer)."
        self._codecs = codecs
        self._rng = rng
        self._sas = sas
        self._calls: dict[bytes, Call] = {}
        self._ended: deque[Call] = deque(maxlen=self.config.ended_kept)
        self._signals: list[tuple[bytes, bytes]] = []
        self._media: list[tuple[bytes, bytes | None, bytes | None]] = []
        self._events: deque[CallEvent] = deque()
        self._frame = self.config.sample_rate // 50
        self._silence = b"\x00" * (2 * self._frame)
        self.muted = False
        "The microphone is cut: silence is sent instead (DTX), the calls go on."
        self.do_not_disturb = False
        "Callers are refused busy (``busy_here`` with the reason ``do_not_disturb`` shown here)."
        self._new: set[bytes] = set()
        "Calls made but not yet given their first state."
        self.accept_page: Callable[[bytes, str | None], bool] | None = None
        "(caller's key, group) -> whether its page is answered at once (None: every page is,"
        " if ``config.accept_pages``). The core allows members' pages from phones on the LAN."
        self.hunting: Callable[[bytes], bool] | None = None
        "fork id -> whether more legs of that group call are still to be placed (in turn)."
        self._early_hangups: OrderedDict[bytes, bytes] = OrderedDict()
        "call id -> peer key of HANGUPs for calls not seen yet: a cancel that overtook its"
        " INVITE (signals are not ordered); that INVITE must not ring."

    # -- commands: placing -------------------------------------------------------------------
    def place(
        self,
        *,
        target: str = "",
        now: float,
        fork: bytes = b"",
        group: str | None = None,
        diverted: tuple[str, ...] = (),
        referred_by: str | None = None,
        replaces: bytes | None = None,
        transfer_of: bytes | None = None,
        intercom: bool = False,
        page: bool = False,
    ) -> Call:
        """A call the user dialled, before its number is found: ``RESOLVING``. Calls that talk
        now go on hold (a new call is a consultation until ``conference`` or ``transfer``).
        Then ``resolved`` when the finder knows the key, ``invite`` once the session is up, or
        ``fail`` with the reason the number could not be reached.

        The keywords are for calls the phone places itself: a ring-all group's ``fork`` (the
        first to answer ends the others), a page, a forward followed (``diverted``: the chain
        so far), a transfer asked of us (``transfer_of``: report its progress there)."""
        if len(self.live_calls()) >= self.config.max_calls:
            raise CallError("busy", f"all {self.config.max_calls} lines are in use")
        if not fork or not any(c.fork == fork for c in self._calls.values()):
            self._hold_talking(now)
        call = self._new_call(self._rng.random_bytes(CALL_ID_SIZE), b"", True, now, target=target)
        call.fork, call.group, call.diverted = fork, group, diverted
        call.referred_by, call.replaces, call.transfer_of = referred_by, replaces, transfer_of
        call.intercom, call.page = intercom, page
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
        self._send(
            call,
            Invite(
                call_id=call.call_id,
                rate_khz=rate,
                name=self.config.name,
                replaces=call.replaces,
                diverted=call.diverted,
                intercom=call.intercom,
                page=call.page,
                referred_by=call.referred_by,
                group=call.group,
            ),
        )
        call.connect_by = None
        self._set(call, CallTrigger.INVITE, now)

    def fail(self, call_id: bytes, reason: EndReason, *, detail: str = "", now: float) -> None:
        """End a resolving call that cannot be placed (number unknown, conflict, no session)."""
        call = self._calls.get(call_id)
        if call is not None and call.state is CallState.RESOLVING:
            self._end(call, reason, now, detail=detail)

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

    # -- commands: settings ------------------------------------------------------------------
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
        self.sounds.reconfigure(region=config.region, level_dbfs=config.tone_level_dbfs)

    def set_forwarding(self, forwarding: Forwarding) -> None:
        """Where calls go instead (numbers are checked by the caller of this method)."""
        for target in (forwarding.always, forwarding.busy, forwarding.no_answer):
            if target is not None and target == self.number:
                raise CallError("bad_request", "a phone cannot forward to itself")
        self.forwarding = forwarding

    def set_mute(self, on: bool) -> None:
        """Cut the microphone (silence is sent, so the far end hears nothing) or restore it.
        Mute lasts until the last live call ends: the next call starts with the microphone on."""
        self.muted = on

    def set_volume(self, level: int) -> None:
        """Speaker volume 0..``VOLUME_LEVELS`` (0 is silent), 3 dB a step around
        ``DEFAULT_VOLUME``."""
        try:
            self.sounds.set_volume(level)
        except ValueError as exc:
            raise CallError("bad_request", str(exc)) from None

    @property
    def volume(self) -> int:
        return self.sounds.volume

    def set_do_not_disturb(self, on: bool) -> None:
        """Refuse every new caller (busy, or forwarded on busy) while on; live calls go on."""
        self.do_not_disturb = on

    # -- commands: the calls -----------------------------------------------------------------
    def answer(self, call_id: bytes | None = None, *, now: float) -> Call:
        """Answer the ringing call; calls that talk go on hold (call waiting)."""
        call = self._pick(call_id, (CallState.INCOMING,), "no call is ringing")
        self._hold_talking(now)
        self._answer(call, now)
        return call

    def hangup(self, call_id: bytes | None = None, *, now: float) -> Call:
        """End a call: hang up a talk, cancel a call we placed, decline a ringing one. Without
        ``call_id``: the call in front (talking, else being placed, else ringing, else held)."""
        call = self._pick(call_id, None, "no call to hang up")
        if call.state is CallState.INCOMING:
            self._send(call, Hangup(call_id=call.call_id, reason=HangupReason.DECLINED))
            self._end(call, EndReason.DECLINED_HERE, now)
        elif call.state is CallState.RESOLVING:
            self._end(call, EndReason.CANCELLED, now)  # nothing was sent yet
        else:
            self._send(call, Hangup(call_id=call.call_id, reason=HangupReason.NORMAL))
            up = call.state in _UP
            self._end(call, EndReason.HANGUP if up else EndReason.CANCELLED, now)
        return call

    def recheck_intercom(self, call_id: bytes, *, now: float) -> bool:
        """``intercom_keys`` changed while ``call_id`` rings (the phone pinned its caller's key
        only now, once the caller's number was derived: a contact marked auto-answer, added by
        number). Answer it if its INVITE would have been answered at once with the keys as they
        are now: an intercom call from one of them, no other call up. True if answered."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.INCOMING or call.outgoing:
            return False
        if not call.intercom or call.page or call.peer_key not in self.intercom_keys:
            return False
        if any(c.state in _UP for c in self.live_calls()):
            return False
        self.answer(call.call_id, now=now)
        return True

    def hold(self, call_id: bytes | None = None, *, now: float) -> Call:
        """Put a talking call on hold (every talking call of a conference, without an id)."""
        call = self._pick(call_id, (CallState.ACTIVE,), "no call is talking")
        if call_id is None:
            self._hold_talking(now)
        else:
            self._hold(call, now)
        return call

    def resume(self, call_id: bytes | None = None, *, now: float) -> Call:
        """Take a held call off hold (the most recently held, without an id); calls that talk
        go on hold."""
        if call_id is None:
            held = self._held()
            if not held:
                raise CallError("no_call", "no call is on hold")
            call = held[-1]
        else:
            call = self._pick(call_id, (CallState.HELD,), "no such call on hold")
        self._hold_talking(now)
        self._resume(call, now)
        return call

    def swap(self, *, now: float) -> Call:
        """Hold what talks and resume the call held most recently: back and forth between two
        calls. Returns the call now talking."""
        held = self._held()
        if not held:
            raise CallError("no_call", "no call on hold to swap to")
        target = held[-1]
        self._hold_talking(now)
        self._resume(target, now)
        return target

    def conference(self, *, now: float) -> list[Call]:
        """Join every call that is up (talking or held here) into one conference this phone
        mixes. Returns its legs."""
        up = [c for c in self.live_calls() if c.state in _UP]
        if len(up) < 2:
            raise CallError("no_call", "a conference needs two calls that are up")
        for call in up:
            if call.state is CallState.HELD:
                self._resume(call, now)
        return up

    def transfer(
        self,
        call_id: bytes | None,
        target: str,
        *,
        replaces: bytes | None = None,
        now: float,
    ) -> Call:
        """Ask the far phone of ``call_id`` (default: the talking call, else the latest held)
        to call ``target`` instead of us. Blind: the call ends once the far phone starts.
        Attended (``replaces``: our call with ``target`` that its new call replaces there):
        the call ends once the target has answered it."""
        if call_id is None:
            talking, held = self.talking(), self._held()
            if replaces is not None:
                held = [c for c in held if c.call_id != replaces]
                talking = [c for c in talking if c.call_id != replaces]
            candidates = held[-1:] if replaces is not None else (talking or held[-1:])
            if not candidates:
                raise CallError("no_call", "no call to transfer")
            call = candidates[0]
        else:
            call = self._pick(call_id, _UP, "no such call to transfer")
        if call.transfer_target is not None:
            raise CallError("wrong_state", "a transfer of this call is already under way")
        self._send(call, Transfer(call_id=call.call_id, target=target, replaces=replaces))
        call.transfer_target = target
        call.transfer_replaced = replaces
        self._updated(call, "transfer")
        return call

    def refuse_transfer(self, call_id: bytes) -> None:
        """A transfer the far phone asked for cannot even be placed (a bad target, no line)."""
        call = self._calls.get(call_id)
        if call is not None and call.live:
            self._send(call, TransferStatus(call_id=call.call_id, status=TransferProgress.FAILED))

    def may_follow(self, call: Call, target: str) -> bool:
        """Whether a forward of ``call`` to ``target`` may be followed: not back to this phone
        or into the chain it came through, and not beyond ``MAX_DIVERSIONS``."""
        chain = call.diverted + ((call.number,) if call.number else ())
        return target != self.number and target not in chain and len(chain) < MAX_DIVERSIONS

    def send_dtmf(self, digits: str, call_id: bytes | None = None, *, now: float) -> Call:
        """Send DTMF digits as events (never as audio) and play them locally."""
        digits = digits.upper()
        bad = [d for d in digits if d not in DTMF_DIGITS]
        if not digits or bad:
            raise CallError("bad_request", f"DTMF digits are {DTMF_DIGITS}")
        call = self._pick(call_id, (CallState.ACTIVE,), "no call is talking")
        for digit in digits:
            self._send(
                call,
                Dtmf(call_id=call.call_id, seq=call.dtmf_out_seq & 0xFFFF, digit=digit),
            )
            call.dtmf_out_seq += 1
            self.counters.dtmf_sent += 1
            self.sounds.overlay(dtmf_tone(digit, 0.1))
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
        handled = self._on_signal(call, signal, now)
        if not handled:
            self.counters.signals_ignored += 1

    def _on_signal(self, call: Call, signal: Signal, now: float) -> bool:
        """Act on a signal for ``call`` (live, from its peer); False if it was out of place."""
        placing = call.outgoing and call.state in (CallState.DIALING, CallState.RINGBACK)
        if isinstance(signal, Ringing):
            if call.outgoing and call.state is CallState.DIALING:
                self._set(call, CallTrigger.RINGING, now)
                return True
            return False
        if isinstance(signal, Answer):
            if not placing:
                return False
            self._activate(call, now)
            self._answered_elsewhere(call, now)
            return True
        if isinstance(signal, Hangup):
            reason = _REMOTE_REASONS[signal.reason]
            ringing = not call.outgoing and call.state is CallState.INCOMING
            kept = (HangupReason.ANSWERED_ELSEWHERE, HangupReason.SECURITY)
            if ringing and signal.reason not in kept:
                reason = EndReason.CANCELLED  # the caller gave up before we answered
            self._end(call, reason, now)
            return True
        if isinstance(signal, Dtmf):
            return self._on_dtmf(call, signal)
        if isinstance(signal, Hold | Resume):
            return self._on_hold_signal(call, signal)
        if isinstance(signal, SasCommit):
            return self._on_sas_commit(call, signal)
        if isinstance(signal, SasNonce):
            return self._on_sas_nonce(call, signal)
        if isinstance(signal, SasReveal):
            return self._on_sas_reveal(call, signal, now)
        if isinstance(signal, Transfer):
            if call.state not in _UP:
                return False
            self._events.append(
                TransferRequested(
                    call_id=call.call_id,
                    peer_key=call.peer_key,
                    target=signal.target,
                    replaces=signal.replaces,
                )
            )
            return True
        if isinstance(signal, TransferStatus):
            return self._on_transfer_status(call, signal, now)
        if isinstance(signal, Redirect):
            if not placing:
                return False
            self._follow(call, signal, now)
            return True
        return False

    def receive_media(self, peer_key: bytes, body: bytes, *, at: float) -> None:
        call = self._up_with(peer_key)
        if call is None or call.media is None:
            self.counters.media_without_call += 1
        elif call.state is CallState.HELD or call.held_by_peer:
            self.counters.media_on_hold += 1
        else:
            call.media.receive(body, at)

    def receive_report(self, peer_key: bytes, body: bytes, *, at: float) -> None:
        call = self._up_with(peer_key)
        if call is None or call.media is None:
            self.counters.media_without_call += 1
        else:
            call.media.receive_report(body, at)

    def _up_with(self, peer_key: bytes) -> Call | None:
        """The answered call with ``peer_key`` (talking ahead of held), if any."""
        found = None
        for call in self._calls.values():
            if call.peer_key == peer_key and call.state in _UP:
                if call.state is CallState.ACTIVE:
                    return call
                found = call
        return found

    def peer_unreachable(self, peer_key: bytes, *, now: float) -> None:
        """A signal to ``peer_key`` was never acknowledged: its calls cannot go on."""
        for call in self.live_calls():
            if call.peer_key == peer_key and call.state is not CallState.RESOLVING:
                self._end(call, EndReason.UNREACHABLE, now)

    # -- audio -------------------------------------------------------------------------------
    def audio_tick(self, captured: bytes | None, *, now: float) -> bytes:
        """One 20 ms period: the microphone's frame in (None if the device gave none), the
        speaker's frame out. Media to send collects in ``media_to_send``.

        Every talking call plays out and is sent the microphone plus every other talking call
        (``conference_mix``); a held one sends only its receiver reports."""
        talking: list[Call] = []
        for call in self._calls.values():
            media = call.media
            if media is None or call.state not in _UP:
                continue
            if call.state is CallState.ACTIVE and not call.held_by_peer:
                talking.append(call)
                continue
            media.sender.skip()  # on hold: time runs on, nothing is sent
            report = media.report_due(now)
            if report is not None:
                self._media.append((call.peer_key, None, report))
        heard = [c.media.playout(now) for c in talking if c.media is not None]
        mic = captured
        if mic is not None and self.muted:
            mic = self._silence
        sends, out = conference_mix(mic if mic is not None else self._silence, heard)
        for call, send in zip(talking, sends, strict=True):
            media = call.media
            assert media is not None
            if call.page and not call.outgoing:
                # A page is one way: the listener sends nothing (its receiver reports only).
                media.sender.skip()
                body = None
            else:
                body = media.capture(send, now) if mic is not None else None
            report = media.report_due(now)
            if body is not None or report is not None:
                self._media.append((call.peer_key, body, report))
        tone = self.sounds.frame(self.live_calls(), talking, now)
        if tone is not None:
            out = mix(out, tone)
        return self.sounds.finish(out)

    # -- timers ------------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        deadlines = [
            d
            for c in self._calls.values()
            for d in (self._deadline(c), self._quiet_deadline(c), self._forward_deadline(c))
            if d is not None
        ]
        return min(deadlines, default=None)

    def handle_timer(self, *, now: float) -> None:
        for call in list(self._calls.values()):
            quiet = self._quiet_deadline(call)
            if quiet is not None and now >= quiet and call.media is not None:
                call.quiet_since = call.media.last_heard() or call.state_since
                self._events.append(MediaQuiet(call_id=call.call_id, peer_key=call.peer_key))
            forward = self._forward_deadline(call)
            if forward is not None and now >= forward and self.forwarding.no_answer:
                self._redirect(call, self.forwarding.no_answer, RedirectReason.NO_ANSWER, now)
                continue
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
            elif call.state in _UP:
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
    def live_calls(self) -> list[Call]:
        """Every call not ended, oldest first."""
        return [c for c in self._calls.values() if c.live]

    def talking(self) -> list[Call]:
        """Answered calls not on hold here (more than one: a conference)."""
        return [c for c in self._calls.values() if c.state is CallState.ACTIVE]

    def live_call(self) -> Call | None:
        """The call in front: talking, else being placed, else ringing, else the latest held."""
        return self._front(None)

    def set_local_tone(self, tone: Tone | None) -> None:
        """A tone to play while no call needs the speaker: the dial tone while the handset is
        off the hook and nothing is dialled yet (the handset's UI sets and clears it). Call
        tones (ringback, ringer, busy after a failed call) take precedence."""
        self.sounds.local_tone = tone

    def play_dtmf_feedback(self, digit: str) -> None:
        """The key's tone, locally only (e.g. dialling digits before a call exists)."""
        self.sounds.overlay(dtmf_tone(digit, 0.1))

    def audio_active(self, now: float) -> bool:
        """Whether the sound card is needed now: a call (placed, ringing, talking or held: not
        while its number is still being found), a tone, DTMF still playing."""
        if any(c.state is not CallState.RESOLVING for c in self.live_calls()):
            return True
        return self.sounds.active(now)

    def tone_until(self) -> float | None:
        """When the busy or congestion tone after a failed call stops, if one plays."""
        return self.sounds.until()

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
            "detail": call.detail or None,
            "name": call.name or None,
            "held_by_peer": call.held_by_peer,
            "conference": call.state is CallState.ACTIVE and len(self.talking()) > 1,
            "sas": call.sas,
            "intercom": call.intercom,
            "page": call.page,
            "group": call.group,
            "diverted": list(call.diverted),
            "forwarded_to": call.forwarded_to,
            "referred_by": call.referred_by,
            "transfer_target": call.transfer_target,
            "age_s": round(now - call.created_at, 1),
            "talk_s": None if call.answered_at is None else round(end - call.answered_at, 1),
            "dtmf_received": call.dtmf_received,
            "media": None if call.media is None else call.media.stats(now),
        }

    # -- internals: arrivals -----------------------------------------------------------------
    def _on_invite(self, peer_key: bytes, invite: Invite, now: float) -> None:
        if invite.call_id in self._calls:
            self.counters.signals_ignored += 1  # a duplicate, or a reused id: never twice
            return
        if self._early_hangups.get(invite.call_id) == peer_key:
            del self._early_hangups[invite.call_id]
            self.counters.signals_ignored += 1  # cancelled before it arrived
            return
        live = self.live_calls()
        crossed = [c for c in live if c.peer_key == peer_key and c.outgoing and c.state in _PLACING]
        auto = self.config.auto_answer and not any(c.state in _UP for c in live)
        replaced = self._calls.get(invite.replaces) if invite.replaces is not None else None
        if replaced is not None and not (replaced.live and replaced.state in _UP):
            replaced = None
        if crossed:
            mine = crossed[0]
            self.counters.glare += 1
            if mine.state is not CallState.RESOLVING and mine.call_id < invite.call_id:
                return  # ours survives: the peer answers it when our INVITE arrives
            # Theirs survives (ours went nowhere yet, or has the larger id); the peer forgets
            # ours: no HANGUP.
            self._end(mine, EndReason.GLARE, now)
            auto = True
        elif replaced is None and self._refuse_busy(live):
            refused = self._incoming(peer_key, invite, now)
            always = self.forwarding.always
            if always is not None and self._may_forward(invite):
                self._redirect(refused, always, RedirectReason.ALWAYS, now)
                return  # forwarded at once, as if this phone were idle
            self.counters.calls_busy += 1
            target = self.forwarding.busy
            if target is not None and self._may_forward(invite):
                self._redirect(refused, target, RedirectReason.BUSY, now)
                return
            self._send(refused, Hangup(call_id=invite.call_id, reason=HangupReason.BUSY))
            why = EndReason.DO_NOT_DISTURB if self.do_not_disturb else EndReason.BUSY_HERE
            self._end(refused, why, now)
            return
        call = self._incoming(peer_key, invite, now)
        self.counters.calls_received += 1
        if invite.codec != MediaCodec.OPUS or invite.rate_khz not in SUPPORTED_RATES_KHZ:
            self._send(call, Hangup(call_id=call.call_id, reason=HangupReason.INCOMPATIBLE))
            self._end(call, EndReason.INCOMPATIBLE, now)
            return
        target = self.forwarding.always
        if target is not None and replaced is None and self._may_forward(invite):
            self._redirect(call, target, RedirectReason.ALWAYS, now)
            return
        self._send(call, Ringing(call_id=call.call_id))
        self._set(call, CallTrigger.INVITED, now)
        call.sas_nonce = self._rng.random_bytes(SAS_NONCE_SIZE)
        self._send(call, SasCommit(call_id=call.call_id, commitment=sas_commitment(call.sas_nonce)))
        others_up = any(c.state in _UP for c in live)
        if replaced is not None:
            # Attended transfer: the transferred phone takes over our call with the transferor.
            self._send(replaced, Hangup(call_id=replaced.call_id, reason=HangupReason.TRANSFERRED))
            self._end(replaced, EndReason.REPLACED, now)
            auto = True
        elif crossed:
            pass  # glare: the survivor is answered at once, a page or intercom call too
        elif invite.page:
            allowed = self.accept_page is None or self.accept_page(peer_key, invite.group)
            auto = self.config.accept_pages and allowed and not others_up
        elif invite.intercom and peer_key in self.intercom_keys and not others_up:
            auto = True
        if auto:
            self.answer(call.call_id, now=now)

    def _incoming(self, peer_key: bytes, invite: Invite, now: float) -> Call:
        call = self._new_call(invite.call_id, peer_key, False, now, name=invite.name)
        call.diverted, call.referred_by = invite.diverted, invite.referred_by
        call.intercom, call.page, call.group = invite.intercom, invite.page, invite.group
        return call

    def _refuse_busy(self, live: list[Call]) -> bool:
        """Whether a new caller hears busy: do not disturb, every line in use, a call already
        waiting, or a call up with call waiting off."""
        if self.do_not_disturb or len(live) >= self.config.max_calls:
            return True
        if any(c.state is CallState.INCOMING for c in live):
            return True
        return bool(live) and not self.config.call_waiting

    def _may_forward(self, invite: Invite) -> bool:
        """Forward a call unless it has passed this phone already (a loop) or too many."""
        if self.number and self.number in invite.diverted:
            self.counters.forward_loops += 1
            return False
        return len(invite.diverted) < MAX_DIVERSIONS

    def _redirect(self, call: Call, target: str, reason: RedirectReason, now: float) -> None:
        """Forward ``call`` (just arrived, or ringing) to ``target``: the caller follows."""
        self.counters.calls_forwarded += 1
        self._send(call, Redirect(call_id=call.call_id, target=target, reason=reason))
        call.forwarded_to = target
        self._end(call, EndReason.FORWARDED, now, detail=f"forwarded to {target} ({reason.name})")

    def _follow(self, call: Call, redirect: Redirect, now: float) -> None:
        """The callee forwarded our call: follow it, unless it leads back into the chain."""
        chain = call.diverted + ((call.number,) if call.number else ())
        target = redirect.target
        if not self.may_follow(call, target):
            self.counters.forward_loops += 1
            detail = f"forwarding to {target} would loop ({' -> '.join(chain)})"
            self._end(call, EndReason.FORWARD_LOOP, now, detail=detail)
            return
        call.forwarded_to = target
        self._end(call, EndReason.FORWARDED, now, detail=f"forwarded to {target}")
        self._events.append(
            Redirected(
                call_id=call.call_id,
                peer_key=call.peer_key,
                target=target,
                reason=redirect.reason.name.lower(),
                diverted=chain,
            )
        )

    def _on_hold_signal(self, call: Call, signal: Hold | Resume) -> bool:
        """The far phone held or resumed: the newest by ``seq`` wins (signals are reliable but
        unordered). At the caller one may overtake the ANSWER; it counts once the call is up."""
        if call.state not in _UP and not (call.outgoing and call.state in _PLACING):
            return False
        if call.hold_in_seq is not None:
            ahead = (signal.seq - call.hold_in_seq) & 0xFFFF
            if ahead == 0 or ahead >= 0x8000:
                return False  # stale: a newer HOLD/RESUME was applied already
        call.hold_in_seq = signal.seq
        held = isinstance(signal, Hold)
        if call.held_by_peer != held:
            call.held_by_peer = held
            if call.state in _UP:
                self._updated(call, "held_by_peer")
        return True

    def _on_dtmf(self, call: Call, dtmf: Dtmf) -> bool:
        if call.state is CallState.INCOMING:
            return False  # only the answering side can talk yet
        ahead = (dtmf.seq - call.dtmf_in_next) & 0xFFFF
        if ahead >= 0x8000 or ahead > 64:
            return False  # already delivered, or absurdly far ahead
        # Held until the call is ACTIVE here too: a digit may overtake the ANSWER.
        call.dtmf_held[dtmf.seq] = (dtmf.digit, dtmf.duration_ms)
        self._deliver_dtmf(call)
        return True

    def _deliver_dtmf(self, call: Call) -> None:
        if call.state not in _UP:
            return
        while (held := call.dtmf_held.pop(call.dtmf_in_next, None)) is not None:
            digit, ms = held
            call.dtmf_in_next = (call.dtmf_in_next + 1) & 0xFFFF
            call.dtmf_received = (call.dtmf_received + digit)[-32:]
            self.counters.dtmf_received += 1
            self.sounds.overlay(dtmf_tone(digit, ms / 1000))
            self._events.append(
                DtmfReceived(
                    call_id=call.call_id, peer_key=call.peer_key, digit=digit, duration_ms=ms
                )
            )

    # -- internals: the SAS exchange (protocol.md §2.6) --------------------------------------
    def _on_sas_commit(self, call: Call, signal: SasCommit) -> bool:
        """Caller: the callee committed to its nonce; only now may ours go out."""
        if not call.outgoing or call.sas_commitment or call.state is CallState.RESOLVING:
            return False
        call.sas_commitment = signal.commitment
        call.sas_nonce = self._rng.random_bytes(SAS_NONCE_SIZE)
        self._send(call, SasNonce(call_id=call.call_id, nonce=call.sas_nonce))
        return True

    def _on_sas_nonce(self, call: Call, signal: SasNonce) -> bool:
        """Callee: the caller's nonce is in (it could not see ours): reveal ours."""
        if call.outgoing or call.sas_peer_nonce or not call.sas_nonce:
            return False
        call.sas_peer_nonce = signal.nonce
        self._send(call, SasReveal(call_id=call.call_id, nonce=call.sas_nonce))
        self._settle_sas(call, caller=signal.nonce, callee=call.sas_nonce)
        return True

    def _on_sas_reveal(self, call: Call, signal: SasReveal, now: float) -> bool:
        """Caller: the callee's nonce must be the one it committed to, or the call is refused."""
        if not call.outgoing or not call.sas_commitment or call.sas_peer_nonce:
            return False
        call.sas_peer_nonce = signal.nonce
        if sas_commitment(signal.nonce) != call.sas_commitment:
            self.counters.sas_failures += 1
            log.warning("call %s: SAS commitment broken by the far phone", call.call_id.hex()[:8])
            self._send(call, Hangup(call_id=call.call_id, reason=HangupReason.SECURITY))
            detail = "the far phone changed its SAS nonce after committing to it"
            self._end(call, EndReason.SECURITY, now, detail=detail)
            return True
        self._settle_sas(call, caller=call.sas_nonce, callee=signal.nonce)
        return True

    def _settle_sas(self, call: Call, *, caller: bytes, callee: bytes) -> None:
        if self._sas is None:
            return
        call.sas = self._sas(call.peer_key, call.call_id, caller, callee)
        if call.sas is not None:
            self._updated(call, "sas")

    # -- internals: transfers ----------------------------------------------------------------
    def _on_transfer_status(self, call: Call, signal: TransferStatus, now: float) -> bool:
        """Transferor: how the far phone's call to the target goes."""
        if call.transfer_target is None:
            return False
        status = signal.status
        attended = call.transfer_replaced is not None
        if status is TransferProgress.FAILED:
            call.transfer_target = call.transfer_replaced = None
            self._updated(call, "transfer_failed")
            return True
        if status is TransferProgress.ANSWERED or not attended:
            self._send(call, Hangup(call_id=call.call_id, reason=HangupReason.TRANSFERRED))
            self._end(call, EndReason.TRANSFERRED, now, detail=f"to {call.transfer_target}")
        return True

    def _report_transfer(self, call: Call) -> None:
        """Transferee: our call placed for a transfer moved; tell the transferor."""
        origin = self._calls.get(call.transfer_of) if call.transfer_of is not None else None
        if origin is None or not origin.live:
            return
        progress = {
            CallState.RESOLVING: TransferProgress.TRYING,
            CallState.RINGBACK: TransferProgress.RINGING,
            CallState.ACTIVE: TransferProgress.ANSWERED,
        }.get(call.state)
        if call.state is CallState.ENDED and call.answered_at is None:
            progress = TransferProgress.FAILED
        if progress is None:
            return
        self._send(origin, TransferStatus(call_id=origin.call_id, status=progress))
        failed = progress is TransferProgress.FAILED
        if failed and origin.state is CallState.HELD and not self.talking():
            self._resume(origin, call.ended_at or call.state_since)

    def _answered_elsewhere(self, call: Call, now: float) -> None:
        """A ring-all group call was answered: the other phones of the fork stop ringing."""
        if not call.fork or call.page:
            return
        for other in self.live_calls():
            if other is not call and other.fork == call.fork and other.state in _PLACING:
                if other.state is not CallState.RESOLVING:
                    reason = HangupReason.ANSWERED_ELSEWHERE
                    self._send(other, Hangup(call_id=other.call_id, reason=reason))
                self._end(other, EndReason.ANSWERED_ELSEWHERE, now)

    # -- internals: moving calls -------------------------------------------------------------
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

    def _answer(self, call: Call, now: float) -> None:
        if self._activate(call, now):
            rate = self.config.sample_rate // 1000
            self._send(call, Answer(call_id=call.call_id, rate_khz=rate))

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
        if call.held_by_peer:
            self._updated(call, "held_by_peer")  # a HOLD overtook the ANSWER
        self._deliver_dtmf(call)
        return True

    def _hold(self, call: Call, now: float) -> None:
        self._send(call, Hold(call_id=call.call_id, seq=self._hold_seq(call)))
        call.held_at = now
        self._set(call, CallTrigger.HOLD, now)

    def _resume(self, call: Call, now: float) -> None:
        self._send(call, Resume(call_id=call.call_id, seq=self._hold_seq(call)))
        self._set(call, CallTrigger.RESUME, now)

    @staticmethod
    def _hold_seq(call: Call) -> int:
        seq = call.hold_out_seq
        call.hold_out_seq = (seq + 1) & 0xFFFF
        return seq

    def _hold_talking(self, now: float) -> None:
        """Every talking call goes on hold (before another call is answered, placed or
        resumed)."""
        for call in self.talking():
            self._hold(call, now)

    def _held(self) -> list[Call]:
        """Calls on hold here, least recently held first."""
        return sorted(
            (c for c in self._calls.values() if c.state is CallState.HELD),
            key=lambda c: c.held_at,
        )

    def _set(self, call: Call, trigger: CallTrigger, now: float) -> None:
        """Move ``call`` by ``trigger``, as ``TRANSITIONS`` allows, and report it."""
        new = call.call_id in self._new
        call.state = next_state(None if new else call.state, trigger)
        self._new.discard(call.call_id)
        call.state_since = now
        self._changed(call)
        if call.transfer_of is not None:
            self._report_transfer(call)

    def _end(self, call: Call, reason: EndReason, now: float, *, detail: str = "") -> None:
        call.reason = reason
        call.detail = detail
        call.ended_at = now
        self._set(call, CallTrigger.END, now)
        if (
            call.outgoing
            and reason in TONE_AFTER
            and not self.talking()
            and not self._fork_goes_on(call)
        ):
            tone = Tone.BUSY if reason in _BUSY_TONE else Tone.CONGESTION
            self.sounds.after_failure(tone, call.call_id, now + self.config.end_tone_s)
        self._ended.append(call)
        self._prune()
        if not any(c.live for c in self._calls.values()):
            self.muted = False

    def _fork_goes_on(self, call: Call) -> bool:
        """Whether a leg of a group call ended while the group call goes on (other legs ring,
        or more are to be placed): no busy tone for it then."""
        if not call.fork:
            return False
        if any(c.fork == call.fork and c is not call for c in self.live_calls()):
            return True
        return self.hunting is not None and self.hunting(call.fork)

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

    def _updated(self, call: Call, aspect: str) -> None:
        self._events.append(
            CallUpdated(call_id=call.call_id, peer_key=call.peer_key, aspect=aspect)
        )

    def _send(self, call: Call, signal: Signal) -> None:
        self._signals.append((call.peer_key, push_signal(signal)))

    def _front(self, states: tuple[CallState, ...] | None) -> Call | None:
        """The call a command without a call id means: talking, else being placed, else
        ringing, else the latest held (among ``states``, if given)."""
        live = [c for c in self.live_calls() if states is None or c.state in states]
        for group in ((CallState.ACTIVE,), _PLACING, (CallState.INCOMING,)):
            for call in live:
                if call.state in group:
                    return call
        held = [c for c in live if c.state is CallState.HELD]
        return max(held, key=lambda c: c.held_at) if held else None

    def _pick(self, call_id: bytes | None, states: tuple[CallState, ...] | None, none: str) -> Call:
        if call_id is None:
            call = self._front(states)
            if call is None:
                raise CallError("no_call", none)
            return call
        call = self._calls.get(call_id)
        if call is None or not call.live:
            raise CallError("no_call", none)
        if states is not None and call.state not in states:
            raise CallError("wrong_state", f"the call is {call.state}, not {states[0]}")
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
        if call.state in _UP and call.media is not None:
            heard = call.media.last_heard()
            return max(call.state_since, heard or call.state_since) + cfg.media_timeout_s
        return None

    def _forward_deadline(self, call: Call) -> float | None:
        """When a ringing call is forwarded on no answer, if it will be."""
        fwd = self.forwarding
        if call.state is not CallState.INCOMING or fwd.no_answer is None:
            return None
        if self.number and self.number in call.diverted:
            return None
        if len(call.diverted) >= MAX_DIVERSIONS:
            return None
        return call.state_since + fwd.no_answer_s

    def _quiet_deadline(self, call: Call) -> float | None:
        """When a talking call that hears nothing reports it (once per silence)."""
        if call.state is not CallState.ACTIVE or call.media is None or call.held_by_peer:
            return None
        heard = call.media.last_heard() or call.state_since
        if call.quiet_since == heard:
            return None  # this silence was reported
        return max(call.state_since, heard) + self.config.media_quiet_s
