"""The phone's commands, carried out: what each one asks of the parts, and its outcome.

``PhoneRequests`` is the half of the core that front ends talk to. A command is checked at once
(``CommandRejected``), then either done on the spot (answer, hang up, DTMF) or started (a dial,
a message, a lookup, a peer to add) and finished when the part it waits on answers: the peer
finder (``Found``/``NotFound``/``LookupDone``), a secure session (the INVITE goes out), or a
number derivation. Open requests are bounded (``MAX_OPEN_REQUESTS``).
"""

import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from peerline.errors import InvalidNumber, LocalProtocolError
from peerline.proto.call.events import Redirected, TransferRequested
from peerline.proto.call.manager import CallError, Forwarding
from peerline.proto.call.state import Call, CallState, EndReason
from peerline.proto.identity import format_number, parse_number
from peerline.proto.lan import GroupMode, LanPeer, is_extension
from peerline.proto.media.tones import Tone
from peerline.proto.overlay import events as overlay_events
from peerline.wire.call import DTMF_DIGITS
from peerline.wire.frames import MessageFrame
from peerline.wire.record import Presence

from . import commands as cmd
from . import events as ev
from .addressbook import ContactCard
from .contacts import StoredPeer
from .finder import FinderEvent, Found, LookupDone, NotFound

if TYPE_CHECKING:
    from .core import PhoneCore

log = logging.getLogger("peerline.phone")

MAX_OPEN_REQUESTS = 256
"""Commands waiting for a lookup or a derivation (dials, messages, peer additions), each kind."""

_NOT_FOUND_REASONS = {
    "unknown_number": EndReason.UNKNOWN_NUMBER,
    "number_conflict": EndReason.NUMBER_CONFLICT,
    "unreachable": EndReason.UNREACHABLE,
    "bad_record": EndReason.BAD_RECORD,
    "busy": EndReason.LOOKUP_BUSY,
    "timeout": EndReason.LOOKUP_TIMEOUT,
}


class PhoneRequests:
    """Commands and their open requests, for one ``PhoneCore``."""

    def __init__(self, core: "PhoneCore") -> None:
        self.core = core
        self._dials: dict[int, bytes] = {}
        "Finder request -> the resolving call it is for."
        self.offline_forwards: dict[bytes, str] = {}
        "Call id -> the callee record's forwarding target, followed if the call ends"
        " unreachable (the callee is switched off)."
        self._sends: dict[int, cmd.SendMessage] = {}
        "Finder request -> the message waiting for its recipient."
        self._adds: dict[bytes, list[tuple[int, cmd.AddPeer]]] = {}
        "Key -> peer additions waiting for its number."
        self._forward_checks: dict[int, bytes] = {}
        "Finder lookup -> a call that ended unreachable with no offline forwarding target known"
        " (it went out on a session that had gone stale, so no record was read; or the record"
        " named none then): the callee's record is read now, and its target followed."
        self._requests = 0
        self._handlers: dict[type[cmd.Command], Callable[[Any, float], cmd.Accepted]] = {
            cmd.Dial: self._dial,
            cmd.Answer: self._answer,
            cmd.Hangup: self._hangup,
            cmd.SendDtmf: self._dtmf,
            cmd.SendMessage: self._send_message,
            cmd.Lookup: self._lookup,
            cmd.AddPeer: self._add_peer,
            cmd.SetDialTone: self._dial_tone,
            cmd.PlayKeyTone: self._key_tone,
            cmd.SetMute: self._mute,
            cmd.SetVolume: self._volume,
            cmd.SetDoNotDisturb: self._do_not_disturb,
            cmd.Hold: self._hold,
            cmd.Resume: self._resume,
            cmd.Swap: self._swap,
            cmd.Conference: self._conference,
            cmd.Transfer: self._transfer,
            cmd.SetForwarding: self._forwarding,
            cmd.SaveContact: self._save_contact,
            cmd.RemoveContact: self._remove_contact,
            cmd.VerifyContact: self._verify_contact,
        }
        self._answers: dict[type[Any], Callable[[Any, float], None]] = {
            Found: self._found,
            NotFound: self._not_found,
            LookupDone: self._on_lookup_done,
            ev.PeerMoved: self._peer_moved,
            ev.PeerSaved: self._peer_saved,
        }
        "Finder event type -> what to do with it."

    def handle(self, command: cmd.Command, now: float) -> cmd.Accepted:
        handler = self._handlers.get(type(command))
        if handler is None:
            raise cmd.CommandRejected("unknown_command", f"not a phone command: {command!r}")
        return handler(command, now)

    def session_up(self, key: bytes, now: float) -> None:
        """A secure session with ``key`` completed: calls waiting for it send their INVITE."""
        for call in self.core.calls.resolving():
            if call.peer_key == key:
                self.core.calls.invite(call.call_id, now=now)

    def number_known(self, key: bytes, number: str) -> None:
        """``key``'s number was derived: peer additions waiting for it finish."""
        for request, add in self._adds.pop(key, []):
            self._finish_add(request, add, number)

    def _dial(self, command: cmd.Dial, now: float) -> cmd.Accepted:
        target = self._target(command.target)
        group = self._group(target)
        if group is not None:
            return self._dial_group(target, *group, now)
        key = self._peer_of(target, command.public_key)
        for live in self.core.calls.live_calls():
            if key is not None and live.peer_key == key:
                return cmd.Accepted(call_id=live.call_id)  # dialling a live call's peer again
        call, request = self.place(
            target, now, public_key=command.public_key, intercom=command.intercom
        )
        return cmd.Accepted(request=request, call_id=call.call_id)

    def _group(self, target: str) -> tuple[GroupMode, list[LanPeer]] | None:
        """The LAN group ``target`` names, if it is a group's extension (not a phone's)."""
        lan = self.core.lan
        if lan is None or not is_extension(target) or lan.resolve(target) is not None:
            return None
        return lan.group(target)

    def _dial_group(
        self, extension: str, mode: GroupMode, members: list[LanPeer], now: float
    ) -> cmd.Accepted:
        """Ring a hunt group (all at once or in turn) or page a page group (groups.py)."""
        if not members:
            raise cmd.CommandRejected(
                "unknown_extension", f"no other phone is in group {extension} now"
            )
        fork = self.core.rng.random_bytes(8)
        legs = self.core.groups.dial(extension, mode, members, fork, now=now)
        if not legs:
            raise cmd.CommandRejected("busy", "every line is in use")
        log.info("group %s (%s): %d call(s)", extension, mode.name.lower(), len(legs))
        return cmd.Accepted(call_id=legs[0].call_id)

    def place_member(
        self, member: LanPeer, extension: str, fork: bytes, page: bool, now: float
    ) -> Call | None:
        """One leg of a group call, to ``member`` (``groups.PlaceLeg``)."""
        try:
            call = self._place(extension, now, fork=fork, group=extension, page=page)
        except cmd.CommandRejected as exc:
            log.info("group %s: no call to %s: %s", extension, member.number, exc.message)
            return None
        call.number = member.number
        self.core.numbers.pin(member.public_key, member.number)
        self.core.node.add_peer(member.public_key, (member.host, member.port))
        self._connect_call(call, member.public_key, member.number, now)
        return call

    def cancel_leg(self, call_id: bytes, now: float) -> None:
        """A hunt member's turn is over: stop ringing it (``groups.CancelLeg``)."""
        try:
            self.core.calls.hangup(call_id, now=now)
        except CallError as exc:
            log.debug("hunt leg %s already over: %s", call_id.hex()[:8], exc)

    def _target(self, target: str) -> str:
        """What a dialled string means: the hotline when empty, a contact for ``*N``."""
        target = target.strip()
        if not target:
            if not self.core.config.hotline:
                raise cmd.CommandRejected("bad_number", "no number given and no hotline set")
            return self.core.config.hotline
        if target.startswith("*") and target[1:].isdigit():
            card = self.core.book.by_slot(int(target[1:]))
            if card is None:
                raise cmd.CommandRejected("bad_number", f"speed dial {target[1:]} is empty")
            return card.number
        return target

    def place(
        self, target: str, now: float, *, public_key: bytes | None = None, **kwargs: Any
    ) -> tuple[Call, int | None]:
        """Place a call to a number or extension (``kwargs`` go to ``CallManager.place``):
        the call, and the finder request resolving it (None on the LAN)."""
        if is_extension(target):
            peer_key, number = self._lan_target(target)
            call = self._place(target, now, **kwargs)
            call.number = number
            self._connect_call(call, peer_key, number, now)
            return call, None
        number = self._parse(target)
        call = self._place(target, now, **kwargs)
        call.number = number
        request = self.core.finder.resolve(number, public_key, now=now)
        self._dials[request] = call.call_id
        return call, request

    def transfer_requested(self, event: TransferRequested, now: float) -> None:
        """The far phone of a call asked us to call ``event.target`` (a transfer)."""
        origin = self.core.find_call(event.call_id)
        if origin is None or not origin.live:
            return
        log.info("call %s: transfer to %s asked", event.call_id.hex()[:8], event.target)
        try:
            self.place(
                event.target,
                now,
                referred_by=origin.number,
                replaces=event.replaces,
                transfer_of=origin.call_id,
            )
        except cmd.CommandRejected as exc:
            log.info("transfer to %s refused: %s", event.target, exc.message)
            self.core.calls.refuse_transfer(origin.call_id)

    def follow_forward(self, event: Redirected, now: float) -> None:
        """The callee forwarded our call: a new call to the target, the chain carried along."""
        old = self.core.find_call(event.call_id)
        log.info(
            "call %s forwarded (%s) to %s", event.call_id.hex()[:8], event.reason, event.target
        )
        try:
            call, _ = self.place(event.target, now, diverted=event.diverted)
        except cmd.CommandRejected as exc:
            log.info("forward to %s not followed: %s", event.target, exc.message)
            return
        if old is not None:
            old.followed_by = call.call_id

    def _peer_of(self, target: str, key: bytes | None) -> bytes | None:
        """The key ``target`` means without any lookup (stored or on the LAN), if unique."""
        if is_extension(target):
            peer = self.core.lan.resolve(target) if self.core.lan is not None else None
            return None if peer is None else peer.public_key
        try:
            stored = self.core.contacts.by_number(parse_number(target))
        except InvalidNumber:
            return None
        keys = [p.public_key for p in stored if key is None or p.public_key == key]
        return keys[0] if len(keys) == 1 else None

    def _place(self, target: str, now: float, **kwargs: Any) -> Call:
        try:
            return self.core.calls.place(target=target, now=now, **kwargs)
        except CallError as exc:
            raise cmd.CommandRejected(exc.code, str(exc)) from None

    def _connect_call(self, call: Call, key: bytes, number: str | None, now: float) -> None:
        """The call's far phone is ``key``: INVITE now over a live session, or once one is up."""
        self.core.calls.resolved(
            call.call_id, key, number=number, connect_by=now + self.core.config.connect_timeout_s
        )
        if self.core.node.live_path(key, now=now) is not None:
            self.core.calls.invite(call.call_id, now=now)
            return
        try:
            self.core.node.connect(key, now=now)
        except LocalProtocolError as exc:
            self.core.calls.fail(call.call_id, EndReason.UNREACHABLE, detail=str(exc), now=now)

    def _answer(self, command: cmd.Answer, now: float) -> cmd.Accepted:
        try:
            call = self.core.calls.answer(command.call_id, now=now)
        except CallError as exc:
            raise cmd.CommandRejected(exc.code, str(exc)) from None
        return cmd.Accepted(call_id=call.call_id)

    def _hangup(self, command: cmd.Hangup, now: float) -> cmd.Accepted:
        try:
            call = self.core.calls.hangup(command.call_id, now=now)
        except CallError as exc:
            raise cmd.CommandRejected(exc.code, str(exc)) from None
        for request, call_id in list(self._dials.items()):
            if call_id == call.call_id:
                del self._dials[request]  # its lookup's answer no longer matters
        return cmd.Accepted(call_id=call.call_id)

    def _dtmf(self, command: cmd.SendDtmf, now: float) -> cmd.Accepted:
        digits = command.digits
        if not 1 <= len(digits) <= 32 or any(d not in DTMF_DIGITS for d in digits.upper()):
            raise cmd.CommandRejected("bad_request", f"DTMF digits are 1 to 32 of {DTMF_DIGITS}")
        try:
            call = self.core.calls.send_dtmf(digits, command.call_id, now=now)
        except CallError as exc:
            raise cmd.CommandRejected(exc.code, str(exc)) from None
        return cmd.Accepted(call_id=call.call_id)

    def _send_message(self, command: cmd.SendMessage, now: float) -> cmd.Accepted:
        text = command.text
        if not isinstance(text, str) or not text:
            raise cmd.CommandRejected("bad_request", '"text" must be a non-empty string')
        try:
            MessageFrame(message_id=bytes(16), text=text)
        except ValueError as exc:
            raise cmd.CommandRejected("bad_request", str(exc)) from None
        request = self._next_request()
        if is_extension(command.target):
            key, number = self._lan_target(command.target)
            self._deliver(request, command, key, number, now)
            return cmd.Accepted(request=request)
        number = self._parse(command.target)
        if len(self._sends) >= MAX_OPEN_REQUESTS:
            raise cmd.CommandRejected("busy", "too many messages waiting for their recipient")
        found = self.core.finder.resolve(number, command.public_key, now=now)
        self._sends[found] = command
        return cmd.Accepted(request=found)

    def _deliver(
        self, request: int, command: cmd.SendMessage, key: bytes, number: str, now: float
    ) -> None:
        try:
            message_id = self.core.node.send_message(key, command.text, now=now)
        except ValueError as exc:
            self.core.emit(ev.RequestFailed(request=request, code="bad_request", detail=str(exc)))
            return
        except LocalProtocolError as exc:
            self.core.emit(ev.RequestFailed(request=request, code="not_sent", detail=str(exc)))
            return
        self.core.emit(
            ev.MessageSent(
                request=request,
                message_id=message_id,
                peer_key=key,
                number=number,
                text=command.text,
            )
        )

    def _lookup(self, command: cmd.Lookup, now: float) -> cmd.Accepted:
        number = self._parse(command.number)
        return cmd.Accepted(request=self.core.finder.lookup(number, now=now))

    def _add_peer(self, command: cmd.AddPeer, now: float) -> cmd.Accepted:
        number = self._parse(command.number)
        key = command.public_key
        if len(key) != 32:
            raise cmd.CommandRejected("bad_key", "public key must be 64 hex digits")
        if key == self.core.public_key:
            raise cmd.CommandRejected("bad_key", "that is this phone's own key")
        try:
            ipaddress.ip_address(command.addr[0])
        except ValueError:
            raise cmd.CommandRejected("bad_address", "host must be an IP address") from None
        if not 1 <= command.addr[1] <= 0xFFFF:
            raise cmd.CommandRejected("bad_address", "port must be 1..65535")
        add = cmd.AddPeer(number=number, public_key=key, addr=command.addr)
        request = self._next_request()
        derived = self.core.numbers.get(key)
        if derived is not None:
            self._finish_add(request, add, derived)
            return cmd.Accepted(request=request)
        if sum(len(v) for v in self._adds.values()) >= MAX_OPEN_REQUESTS:
            raise cmd.CommandRejected("busy", "too many peer additions waiting")
        self._adds.setdefault(key, []).append((request, add))
        self.core.numbers.request(key, urgent=True)
        return cmd.Accepted(request=request)

    def _finish_add(self, request: int, add: cmd.AddPeer, derived: str) -> None:
        key = add.public_key
        if derived != add.number:
            self.core.emit(
                ev.RequestFailed(
                    request=request,
                    code="number_mismatch",
                    detail=f"key does not derive to {format_number(add.number)}: "
                    "refusing a forged pairing",
                )
            )
            return
        peer = StoredPeer(public_key=key, number=add.number, addr=add.addr)
        if not self.core.contacts.save(peer):
            self.core.emit(ev.RequestFailed(request=request, code="full", detail="too many peers"))
            return
        self.core.emit(ev.PeerSaved(public_key=key, number=add.number, addr=add.addr))
        self.core.numbers.pin(key, add.number)
        self.core.node.add_peer(key, add.addr)
        self.core.emit(
            ev.PeerAdded(request=request, public_key=key, number=add.number, addr=add.addr)
        )

    def _dial_tone(self, command: cmd.SetDialTone, now: float) -> cmd.Accepted:
        self.core.calls.set_local_tone(Tone.DIAL if command.on else None)
        return cmd.Accepted()

    def _key_tone(self, command: cmd.PlayKeyTone, now: float) -> cmd.Accepted:
        if len(command.digit) != 1 or command.digit.upper() not in DTMF_DIGITS:
            raise cmd.CommandRejected("bad_request", f"a key tone is one of {DTMF_DIGITS}")
        self.core.calls.play_dtmf_feedback(command.digit.upper())
        return cmd.Accepted()

    def _mute(self, command: cmd.SetMute, now: float) -> cmd.Accepted:
        self.core.calls.set_mute(command.on)
        return cmd.Accepted()

    def _volume(self, command: cmd.SetVolume, now: float) -> cmd.Accepted:
        try:
            self.core.calls.set_volume(command.level)
        except CallError as exc:
            raise cmd.CommandRejected(exc.code, str(exc)) from None
        return cmd.Accepted()

    def _do_not_disturb(self, command: cmd.SetDoNotDisturb, now: float) -> cmd.Accepted:
        if self.core.calls.do_not_disturb != command.on:
            self.core.calls.set_do_not_disturb(command.on)
            self.core.reach.set_presence(
                Presence.DO_NOT_DISTURB if command.on else Presence.AVAILABLE, now
            )
        return cmd.Accepted()

    def _hold(self, command: cmd.Hold, now: float) -> cmd.Accepted:
        call = self._calls(lambda: self.core.calls.hold(command.call_id, now=now))
        return cmd.Accepted(call_id=call.call_id)

    def _resume(self, command: cmd.Resume, now: float) -> cmd.Accepted:
        call = self._calls(lambda: self.core.calls.resume(command.call_id, now=now))
        return cmd.Accepted(call_id=call.call_id)

    def _swap(self, command: cmd.Swap, now: float) -> cmd.Accepted:
        call = self._calls(lambda: self.core.calls.swap(now=now))
        return cmd.Accepted(call_id=call.call_id)

    def _conference(self, command: cmd.Conference, now: float) -> cmd.Accepted:
        legs = self._calls(lambda: self.core.calls.conference(now=now))
        return cmd.Accepted(call_id=legs[0].call_id)

    def _transfer(self, command: cmd.Transfer, now: float) -> cmd.Accepted:
        calls = self.core.calls
        if command.attended or command.consultation is not None:
            consult = (
                self.core.find_call(command.consultation)
                if command.consultation is not None
                else next(iter(calls.talking()), None)
            )
            if consult is None or consult.state not in (CallState.ACTIVE, CallState.HELD):
                raise cmd.CommandRejected("no_call", "no consultation call to transfer to")
            if consult.number is None:
                raise cmd.CommandRejected("no_number", "the consultation call's number is unknown")
            replaces = consult.call_id
            call = self._calls(
                lambda: calls.transfer(
                    command.call_id, consult.number or "", replaces=replaces, now=now
                )
            )
            return cmd.Accepted(call_id=call.call_id)
        target = self._target(command.target)
        if not is_extension(target):
            target = self._parse(target)
        call = self._calls(lambda: calls.transfer(command.call_id, target, now=now))
        return cmd.Accepted(call_id=call.call_id)

    def _forwarding(self, command: cmd.SetForwarding, now: float) -> cmd.Accepted:
        targets = {}
        for mode in ("always", "busy", "no_answer", "offline"):
            value = getattr(command, mode)
            targets[mode] = None if value in (None, "") else self._parse(value)
        if not 5.0 <= command.no_answer_s <= 300.0:
            raise cmd.CommandRejected("bad_request", "no-answer time is 5 to 300 s")
        forwarding = Forwarding(no_answer_s=command.no_answer_s, **targets)
        self._calls(lambda: self.core.calls.set_forwarding(forwarding))
        self.core.set_offline_forward(forwarding.offline, now)
        self.core.emit(ev.ForwardingChanged(**forwarding.as_dict()))
        return cmd.Accepted()

    def _save_contact(self, command: cmd.SaveContact, now: float) -> cmd.Accepted:
        number = self._parse(command.number)
        old = self.core.book.get(number)
        if old is not None and not command.replace:
            raise cmd.CommandRejected("exists", f"{format_number(number)} is already a contact")
        key = command.public_key
        if key is not None and len(key) != 32:
            raise cmd.CommandRejected("bad_key", "public key must be 64 hex digits")
        if key is not None:
            derived = self.core.numbers.get(key)
            if derived is not None and derived != number:
                raise cmd.CommandRejected(
                    "number_mismatch", f"that key is {format_number(derived)}'s, not this number's"
                )
        verified_at = old.verified_at if old is not None else None
        card = ContactCard(
            number=number,
            name=command.name,
            public_key=key if key is not None else (old.public_key if old else None),
            verified_at=verified_at,
            speed_dial=command.speed_dial,
            auto_answer=command.auto_answer,
        )
        try:
            self.core.save_card(card)
        except ValueError as exc:
            raise cmd.CommandRejected("bad_request", str(exc)) from None
        return cmd.Accepted()

    def _remove_contact(self, command: cmd.RemoveContact, now: float) -> cmd.Accepted:
        number = self._parse(command.number)
        if not self.core.book.remove(number):
            raise cmd.CommandRejected("not_found", f"{format_number(number)} is not a contact")
        self.core.calls.intercom_keys = self.core.book.intercom_keys()
        self.core.emit(ev.ContactRemoved(number=number))
        return cmd.Accepted()

    def _verify_contact(self, command: cmd.VerifyContact, now: float) -> cmd.Accepted:
        number = self._parse(command.number)
        call = next(
            (c for c in self.core.calls.calls() if c.number == number and c.sas is not None),
            None,
        )
        if call is None:
            raise cmd.CommandRejected(
                "no_call", "verify after a call with that number, once its SAS was compared"
            )
        old = self.core.book.get(number)
        card = ContactCard(
            number=number,
            name=old.name if old is not None else (call.name or format_number(number)),
            public_key=call.peer_key,
            verified_at=command.wall_time,
            speed_dial=old.speed_dial if old is not None else None,
            auto_answer=old.auto_answer if old is not None else False,
        )
        if old is not None and old.public_key not in (None, call.peer_key):
            log.warning("%s: the key pinned for it is replaced by the verified one", number)
        self.core.save_card(card)
        return cmd.Accepted(call_id=call.call_id)

    def _calls(self, action: Callable[[], Any]) -> Any:
        """Run a call-control command; its CallError becomes CommandRejected."""
        try:
            return action()
        except CallError as exc:
            raise cmd.CommandRejected(exc.code, str(exc)) from None

    def _parse(self, text: str) -> str:
        try:
            return parse_number(text)
        except InvalidNumber as exc:
            raise cmd.CommandRejected("bad_number", str(exc)) from None

    def _lan_target(self, extension: str) -> tuple[bytes, str]:
        if self.core.lan is None:
            raise cmd.CommandRejected("unknown_extension", "LAN discovery is off on this phone")
        peer = self.core.lan.resolve(extension)
        if peer is None:
            raise cmd.CommandRejected("unknown_extension", f"no phone holds extension {extension}")
        self.core.numbers.pin(peer.public_key, peer.number)
        self.core.node.add_peer(peer.public_key, (peer.host, peer.port))
        return peer.public_key, peer.number

    def _next_request(self) -> int:
        self._requests -= 1  # negative: never equal to a finder request (positive)
        return self._requests

    # -- the pump: act on what the parts produced ---------------------------------------------
    # -- finder answers -----------------------------------------------------------------------
    def on_found(self, event: FinderEvent, now: float) -> None:
        """The finder answered a request (or moved or saved a peer on its own)."""
        self._answers[type(event)](event, now)

    def _found(self, event: Found, now: float) -> None:
        call_id = self._dials.pop(event.request, None)
        if call_id is not None:
            call = self.core.find_call(call_id)
            if call is not None and call.state is CallState.RESOLVING:
                if event.forward_to and event.forward_to != self.core.number:
                    self.offline_forwards[call.call_id] = event.forward_to
                    while len(self.offline_forwards) > MAX_OPEN_REQUESTS:
                        del self.offline_forwards[next(iter(self.offline_forwards))]
                self._connect_call(call, event.public_key, event.number, now)
        send = self._sends.pop(event.request, None)
        if send is not None:
            self._deliver(event.request, send, event.public_key, event.number, now)

    def _not_found(self, event: NotFound, now: float) -> None:
        call_id = self._dials.pop(event.request, None)
        if call_id is not None:
            reason = _NOT_FOUND_REASONS.get(event.code, EndReason.UNREACHABLE)
            self.core.calls.fail(call_id, reason, detail=event.detail, now=now)
        if self._sends.pop(event.request, None) is not None:
            self.core.emit(
                ev.RequestFailed(request=event.request, code=event.code, detail=event.detail)
            )

    def _peer_moved(self, event: ev.PeerMoved, now: float) -> None:
        who = self.core.label(event.public_key)
        log.info("%s moved to %s:%d (%s)", who, *event.addr, event.why)
        self.core.emit(event)

    def _peer_saved(self, event: ev.PeerSaved, now: float) -> None:
        self.core.emit(event)

    def check_offline_forward(self, call: Call, now: float) -> None:
        """``call`` ended unreachable and no record read for it named an offline forwarding
        target: read the callee's record now (``reactions.follow_offline`` if it names one)."""
        if call.number is None or len(self._forward_checks) >= MAX_OPEN_REQUESTS:
            return
        self._forward_checks[self.core.finder.lookup(call.number, now=now)] = call.call_id

    def _forward_checked(self, call_id: bytes, done: LookupDone) -> None:
        call = self.core.find_call(call_id)
        result = done.result
        if call is None or not isinstance(result, overlay_events.LookupCompleted):
            return
        if any(c.created_at > (call.ended_at or call.created_at) for c in self.core.calls.calls()):
            return  # another call began meanwhile: no surprise call now
        targets = [r.forward_to for r in result.records if r.public_key == call.peer_key]
        if targets and targets[0] and targets[0] != self.core.number:
            self.core.reactions.follow_offline(call, targets[0])

    def _on_lookup_done(self, done: LookupDone, now: float) -> None:
        checked = self._forward_checks.pop(done.request, None)
        if checked is not None:
            self._forward_checked(checked, done)
            return
        result = done.result
        if result is None:
            code = done.error or "timeout"
            detail = (
                "the lookup did not finish in time"
                if code == "timeout"
                else ("too many lookups in progress")
            )
            self.core.emit(ev.RequestFailed(request=done.request, code=code, detail=detail))
            return
        if isinstance(result, overlay_events.LookupCompleted):
            finished = ev.LookupFinished(
                request=done.request,
                number=done.number,
                found=True,
                records=result.records,
                hops=result.hops,
                elapsed_s=result.elapsed_s,
                queries=result.queries,
                replies=result.replies,
            )
        else:
            finished = ev.LookupFinished(
                request=done.request,
                number=done.number,
                found=False,
                elapsed_s=result.elapsed_s,
                queries=result.queries,
                replies=result.replies,
                reason=result.reason,
            )
        self.core.emit(finished)

    # -- engine events ------------------------------------------------------------------------
