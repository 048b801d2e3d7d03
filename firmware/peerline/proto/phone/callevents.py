"""What the phone does when a call moves: report it to the front ends (the state, the ringing
call with the caller's number and trust, updates, DTMF), ask for the caller's number, warn of a
contact's changed key, follow forwards and transfers, and pass group legs to ``GroupCalls``.

Part of the phone core (``PhoneCore.reactions``), like ``requests`` and ``reach``: it reads
and drives the core's parts and reports through ``core.emit``.
"""

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from peerline.proto.call.events import CallEvent, MediaQuiet, Redirected, TransferRequested
from peerline.proto.call.events import CallStateChanged as CallMoved
from peerline.proto.call.events import CallUpdated as CallChanged
from peerline.proto.call.events import DtmfReceived as CallDtmf
from peerline.proto.call.state import Call, CallState, EndReason
from peerline.proto.identity import format_number

from . import events as ev

if TYPE_CHECKING:
    from .core import PhoneCore

log = logging.getLogger(__name__)


class CallReactions:
    def __init__(self, core: "PhoneCore") -> None:
        self.core = core

    def on_event(self, event: CallEvent) -> None:
        call = self.core.find_call(event.call_id)
        if isinstance(event, CallMoved):
            if call is None:
                return
            number = call.number
            if number is None and call.peer_key:
                number = call.number = self.core.numbers.get(call.peer_key)
            log.info(
                "call %s with %s: %s%s",
                event.call_id.hex()[:8],
                format_number(number) if number else call.target or self.core.label(call.peer_key),
                event.state,
                f" ({event.reason})" if event.reason else "",
            )
            self.core.emit(
                ev.CallStateChanged(
                    call_id=call.call_id,
                    state=event.state,
                    outgoing=call.outgoing,
                    peer_key=call.peer_key,
                    number=number,
                    name=call.name,
                    reason=event.reason,
                    detail=event.detail,
                    target=call.target,
                    answered=call.answered_at is not None,
                    forwarded_to=call.forwarded_to,
                    trust=str(self.core.trust(call)) if number is not None else "unknown",
                )
            )
            if not call.outgoing and number is None and call.peer_key:
                self.core.numbers.request(call.peer_key, urgent=True)  # caller ID, even if refused
            if event.state is CallState.INCOMING:
                card = self.core.book.get(number)
                self.core.emit(
                    ev.IncomingCall(
                        call_id=call.call_id,
                        peer_key=call.peer_key,
                        number=number,
                        name=call.name,
                        known=self.core.contacts.get(call.peer_key) is not None,
                        contact=card.name if card is not None else None,
                        trust=str(self.core.book.trust(number, call.peer_key)),
                        waiting=any(
                            c.state in (CallState.ACTIVE, CallState.HELD)
                            for c in self.core.calls.live_calls()
                        ),
                        group=call.group,
                        page=call.page,
                    )
                )
            if event.state in (CallState.INCOMING, CallState.DIALING):
                self.check_key(call)
            if event.state is CallState.ENDED:
                self.offline_forward(call)
            if call.fork:
                self.core.groups.leg_moved(call, now=self.core.now)
        elif isinstance(event, CallChanged):
            if call is None:
                return
            log.info("call %s: %s", event.call_id.hex()[:8], event.aspect)
            self.core.emit(
                ev.CallUpdated(
                    call_id=call.call_id,
                    aspect=event.aspect,
                    held_by_peer=call.held_by_peer,
                    sas=call.sas,
                )
            )
        elif isinstance(event, TransferRequested):
            self.core.requests.transfer_requested(event, self.core.now)
        elif isinstance(event, Redirected):
            self.core.requests.follow_forward(event, self.core.now)
        elif isinstance(event, MediaQuiet):
            # Nothing heard in a talking call: its path may be dead; look for another.
            if self.core.node.report_quiet(event.peer_key, now=self.core.now):
                log.info(
                    "call %s: nothing heard for a while; probing other paths",
                    event.call_id.hex()[:8],
                )
        elif isinstance(event, CallDtmf):
            log.info("call %s: DTMF %s", event.call_id.hex()[:8], event.digit)
            self.core.emit(
                ev.DtmfReceived(
                    call_id=event.call_id, digit=event.digit, duration_ms=event.duration_ms
                )
            )

    def check_key(self, call: Call) -> None:
        """A call with a contact's number from another key than the pinned one: say so, loudly
        (once per call). A first key for a contact with none is pinned."""
        if call.number is None or not call.peer_key or call.key_warned:
            return
        card = self.core.book.get(call.number)
        if card is None:
            return
        if card.public_key is None:
            self.core.save_card(replace(card, public_key=call.peer_key))
            # Pinned only now (trust on first use): an intercom call from a contact marked
            # auto-answer is answered as if the key had been known when its INVITE came.
            self.core.calls.recheck_intercom(call.call_id, now=self.core.now)
            return
        if card.public_key != call.peer_key:
            call.key_warned = True
            log.warning(
                "call %s: %s (%s) uses key %s, not the pinned %s: a reset phone or an impostor",
                call.call_id.hex()[:8],
                card.name,
                format_number(call.number),
                call.peer_key.hex()[:16],
                card.public_key.hex()[:16],
            )
            self.core.emit(
                ev.KeyChanged(
                    call_id=call.call_id,
                    number=call.number,
                    pinned_key=card.public_key,
                    public_key=call.peer_key,
                )
            )

    def offline_forward(self, call: Call) -> None:
        """A call that could not reach a phone whose record names a forwarding target (it is
        switched off): call the target instead. Without a target known when the call was placed
        (no record was read: it went out on a session that had gone stale; or the record named
        none then), the record is read now."""
        target = self.core.requests.offline_forwards.pop(call.call_id, None)
        if call.reason is not EndReason.UNREACHABLE or call.answered_at or not call.outgoing:
            return
        if target is None:
            if not call.fork:  # a group's leg is not forwarded
                self.core.requests.check_offline_forward(call, self.core.now)
            return
        self.follow_offline(call, target)

    def follow_offline(self, call: Call, target: str) -> None:
        """Call ``target``, the forwarding target in the record of the phone ``call`` could not
        reach, instead (unless that loops)."""
        if not self.core.calls.may_follow(call, target):
            self.core.calls.counters.forward_loops += 1
            log.info("call %s: offline forward to %s would loop", call.call_id.hex()[:8], target)
            return
        call.forwarded_to = target
        updated = ev.CallUpdated(call_id=call.call_id, aspect="forwarded", forwarded_to=target)
        self.core.emit(updated)
        chain = call.diverted + ((call.number,) if call.number else ())
        redirect = Redirected(
            call_id=call.call_id,
            peer_key=call.peer_key,
            target=target,
            reason="offline",
            diverted=chain,
        )
        self.core.requests.follow_forward(redirect, self.core.now)
