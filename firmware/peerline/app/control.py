"""The control API's commands (docs/control-api.md): JSON in, phone commands to the core, JSON out.

Each handler checks its arguments (``bad_request`` and friends), turns them into one phone
command, and, for a command that finishes later, waits for the event that says how it went.
It never reaches into the core's parts: what it shows comes from events, ``status`` views and
the store.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from peerline import __version__
from peerline.errors import InvalidNumber, StoreError
from peerline.proto.identity import parse_number
from peerline.proto.phone import (
    CallInfo,
    CallState,
    CommandRejected,
    EndReason,
    PhoneEvent,
    commands,
    events,
)
from peerline.runtime.control import CommandError, EventStream
from peerline.types import Addr

from . import arguments
from .arguments import MAX_WAIT_S, RESOLVE_WAIT_S
from .eventhub import Subscription
from .eventjson import event_json, record_json

if TYPE_CHECKING:
    from peerline.proto.phone import PhoneCore

    from .daemon import Phone

T = TypeVar("T")

MAX_FOLLOWED = 5
"""Forwards a ``dial`` follows to the call that rings (the call manager's MAX_DIVERSIONS)."""
DIAL_WAIT_S = 10.0
"""``dial`` waits this long for the far phone to ring (or refuse) after the INVITE went out."""

_END_CODES = {
    EndReason.UNKNOWN_NUMBER: "unknown_number",
    EndReason.NUMBER_CONFLICT: "number_conflict",
    EndReason.UNKNOWN_EXTENSION: "unknown_extension",
    EndReason.BAD_RECORD: "bad_record",
    EndReason.LOOKUP_BUSY: "busy",
    EndReason.LOOKUP_TIMEOUT: "timeout",
}
"""A call that ended while resolving: the error ``dial`` answers with (else ``unreachable``)."""


class Control:
    """The handlers, bound to one running phone shell."""

    def __init__(self, phone: "Phone") -> None:
        self.phone = phone

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[Any]]]:
        return {
            "id": self.id,
            "status": self.status,
            "peer.add": self.peer_add,
            "peer.list": self.peer_list,
            "msg.send": self.msg_send,
            "msg.list": self.msg_list,
            "lookup": self.lookup,
            "dial": self.dial,
            "answer": self.answer,
            "hangup": self.hangup,
            "dtmf": self.dtmf,
            "hold": self.hold,
            "resume": self.resume,
            "swap": self.swap,
            "mute": self.mute,
            "conference": self.conference,
            "transfer": self.transfer,
            "forward.set": self.forward_set,
            "forward.clear": self.forward_clear,
            "dnd": self.dnd,
            "contacts.add": self.contacts_add,
            "contacts.list": self.contacts_list,
            "contacts.rm": self.contacts_rm,
            "contacts.verify": self.contacts_verify,
            "history": self.history,
            "redial": self.redial,
            "lan": self.lan,
            "events": self.events,
        }

    # -- helpers ------------------------------------------------------------------------------
    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _submit(self, command: commands.Command) -> commands.Accepted:
        try:
            return self.phone.core.handle(command, now=self._now())
        except CommandRejected as exc:
            self.phone.poke()
            raise CommandError(exc.code, exc.message) from None

    async def _outcome(
        self, command: commands.Command, match: Callable[[PhoneEvent, commands.Accepted], bool]
    ) -> tuple[commands.Accepted, PhoneEvent | None]:
        """Submit ``command`` and wait for the first event ``match`` says is its outcome."""
        accepted = self._submit(command)
        hub = self.phone.hub
        fut = hub.waiter(lambda e: match(e, accepted))
        self.phone.poke()  # the outcome may be queued already
        event = await hub.wait(fut, RESOLVE_WAIT_S)
        return accepted, event

    # -- commands -----------------------------------------------------------------------------
    async def id(self, args: dict[str, Any]) -> dict[str, Any]:
        core = self.phone.core
        return {"number": core.number, "public_key": core.public_key.hex()}

    async def status(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.phone.status()

    async def peer_add(self, args: dict[str, Any]) -> dict[str, Any]:
        number = str(args.get("number", ""))
        key = _parse_key(args.get("public_key"))
        addr = _parse_host_port(args.get("host"), args.get("port"))
        _, event = await self._outcome(
            commands.AddPeer(number=number, public_key=key, addr=addr), _for_request
        )
        if isinstance(event, events.RequestFailed):
            raise CommandError(event.code, event.detail)
        if not isinstance(event, events.PeerAdded):
            raise CommandError("timeout", "the number check did not finish in time")
        return {
            "number": event.number,
            "public_key": event.public_key.hex(),
            "host": event.addr[0],
            "port": event.addr[1],
        }

    async def peer_list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "number": r.number,
                "public_key": r.public_key.hex(),
                "host": r.host,
                "port": r.port,
                "added_at": r.added_at,
                "last_seen": r.last_seen,
            }
            for r in self.phone.db.peers()
        ]

    async def msg_send(self, args: dict[str, Any]) -> dict[str, Any]:
        text = _checked(arguments.message_text, args.get("text"), "text")
        wait = _checked(arguments.wait_seconds, args.get("wait_s", 10.0), "wait_s")
        key = _optional_key(args.get("public_key"))
        command = commands.SendMessage(
            target=str(args.get("number", "")), text=text, public_key=key
        )
        _, event = await self._outcome(command, _for_request)
        if isinstance(event, events.RequestFailed):
            raise CommandError(event.code, event.detail)
        if not isinstance(event, events.MessageSent):
            raise CommandError("timeout", "the recipient was not found in time")
        message_id = event.message_id
        hub = self.phone.hub
        fut = hub.waiter(
            lambda e: isinstance(e, events.MessageStatusChanged) and e.message_id == message_id
        )
        row = self.phone.db.message(message_id)
        status: str = row.status if row is not None else "sent"
        if status == "sent" and wait > 0:
            done = await hub.wait(fut, wait)
            if isinstance(done, events.MessageStatusChanged):
                status = done.status
        fut.cancel()
        return {"id": message_id.hex(), "status": status}

    async def msg_list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        limit = _checked(arguments.message_limit, args.get("limit", 100), "limit")
        return [
            {
                "id": m.id.hex(),
                "direction": m.direction,
                "number": m.peer_number,
                "peer_key": m.peer_key.hex(),
                "text": m.body,
                "created_at": m.created_at,
                "status": m.status,
            }
            for m in self.phone.db.messages(limit)
        ]

    async def lookup(self, args: dict[str, Any]) -> dict[str, Any]:
        _, event = await self._outcome(
            commands.Lookup(number=str(args.get("number", ""))), _for_request
        )
        if isinstance(event, events.RequestFailed):
            raise CommandError(event.code, event.detail)
        if not isinstance(event, events.LookupFinished):
            raise CommandError("timeout", "the lookup did not finish in time")
        result: dict[str, Any] = {
            "number": event.number,
            "found": event.found,
            "elapsed_ms": round(event.elapsed_s * 1000.0, 1),
            "queries": event.queries,
            "replies": event.replies,
        }
        if event.found:
            result["hops"] = event.hops
            result["records"] = [record_json(r) for r in event.records]
            result["conflict"] = len(event.records) > 1
        else:
            result["reason"] = event.reason
        return result

    async def dial(self, args: dict[str, Any]) -> dict[str, Any] | EventStream:
        """Resolve a number or LAN extension, open a secure session and place a call on it;
        returns once the far phone rings or refuses (or after ``DIAL_WAIT_S``). With
        ``progress``: a stream of the call's steps instead, until it rings (or, with
        ``until: "answered"``, is answered) or fails."""
        core = self.phone.core
        intercom = args.get("intercom", False)
        if not isinstance(intercom, bool):
            raise CommandError("bad_request", '"intercom" must be true or false')
        progress = args.get("progress", False)
        if not isinstance(progress, bool):
            raise CommandError("bad_request", '"progress" must be true or false')
        until = args.get("until", "ringing")
        if until not in ("ringing", "answered"):
            raise CommandError("bad_request", '"until" is "ringing" or "answered"')
        command = commands.Dial(
            target=str(args.get("number", "")),
            public_key=_optional_key(args.get("public_key")),
            intercom=intercom,
        )
        if progress:
            sub = self.phone.hub.subscribe()
            try:
                accepted = self._submit(command)
            except CommandError:
                sub.close()
                raise
            assert accepted.call_id is not None
            self.phone.poke()  # send the INVITE or the lookup, and deliver what is queued
            steps = DialProgress(self, accepted.call_id, answered=until == "answered")
            return EventStream(steps.items(sub))
        accepted = self._submit(command)
        call_id = accepted.call_id
        assert call_id is not None
        call = await self._placed(call_id)
        for _ in range(MAX_FOLLOWED):
            if call.state is not CallState.ENDED or call.followed_by is None:
                break
            call = await self._placed(call.followed_by)  # forwarded: the call that follows it
        call = _glare_survivor(core, call)
        return self.dial_result(call)

    def dial_result(self, call: CallInfo) -> dict[str, Any]:
        """What ``dial`` answers for ``call``: the far phone, its session, the call."""
        core = self.phone.core
        now = self._now()
        session = core.session(call.peer_key, now=now) or {}
        return {
            "number": call.number,
            "public_key": call.peer_key.hex(),
            "sas": session.get("sas"),
            "addr": session.get("endpoint"),
            "path": session.get("path", "direct"),
            "call": core.call_json(call.call_id, now),
        }

    async def _placed(self, call_id: bytes) -> CallInfo:
        """Wait until a call placed here has left RESOLVING (at most ``RESOLVE_WAIT_S``) and,
        if it was sent, DIALING (at most ``DIAL_WAIT_S``): how it stands then. A call that
        ended before it could be sent (its number not found, no session; and not forwarded)
        is the command's error."""
        await self._leave(call_id, CallState.RESOLVING, RESOLVE_WAIT_S)
        call = self._call_info(call_id)
        if (
            call.state is CallState.ENDED
            and not call.answered
            and call.followed_by is None
            and call.reason is not None
            and (call.reason in _END_CODES or call.reason is EndReason.UNREACHABLE)
        ):
            code = _END_CODES.get(call.reason, "unreachable")
            raise CommandError(code, call.detail or str(call.reason))
        await self._leave(call_id, CallState.DIALING, DIAL_WAIT_S)
        return self._call_info(call_id)

    async def _leave(self, call_id: bytes, state: CallState, limit: float) -> None:
        """Wait (at most ``limit``) until the call is no longer in ``state``."""
        core, hub = self.phone.core, self.phone.hub

        def moved_on(e: PhoneEvent) -> bool:
            return (
                isinstance(e, events.CallStateChanged)
                and e.call_id == call_id
                and e.state is not state
            )

        fut = hub.waiter(moved_on)
        self.phone.poke()
        call = core.call(call_id)
        if call is not None and call.state is state:
            await hub.wait(fut, limit)
        fut.cancel()

    def _call_info(self, call_id: bytes) -> CallInfo:
        call = self.phone.core.call(call_id)
        if call is None:
            raise CommandError("internal", "the call vanished")
        return call

    async def answer(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._call_result(self._submit(commands.Answer(call_id=_call_id(args))))

    async def hangup(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._call_result(self._submit(commands.Hangup(call_id=_call_id(args))))

    async def dtmf(self, args: dict[str, Any]) -> dict[str, Any]:
        digits = _checked(arguments.dtmf_digits, args.get("digits"), "digits")
        call_id = _call_id(args)
        return self._call_result(self._submit(commands.SendDtmf(digits=digits, call_id=call_id)))

    async def hold(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._call_result(self._submit(commands.Hold(call_id=_call_id(args))))

    async def resume(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._call_result(self._submit(commands.Resume(call_id=_call_id(args))))

    async def swap(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._call_result(self._submit(commands.Swap()))

    async def mute(self, args: dict[str, Any]) -> dict[str, Any]:
        on = args.get("on", True)
        if not isinstance(on, bool):
            raise CommandError("bad_request", '"on" must be true or false')
        self._submit(commands.SetMute(on=on))
        return {"muted": self.phone.core.preferences().muted}

    async def dnd(self, args: dict[str, Any]) -> dict[str, Any]:
        on = args.get("on")
        if not isinstance(on, bool):
            raise CommandError("bad_request", '"on" must be true or false')
        self._submit(commands.SetDoNotDisturb(on=on))
        return {"do_not_disturb": self.phone.core.preferences().do_not_disturb}

    async def _until_answered(self, call_id: bytes) -> CallInfo:
        """Wait until a call placed here is answered or ends (at most the ring timeout)."""
        core, hub = self.phone.core, self.phone.hub

        def settled(e: PhoneEvent) -> bool:
            return (
                isinstance(e, events.CallStateChanged)
                and e.call_id == call_id
                and e.state in (CallState.ACTIVE, CallState.ENDED)
            )

        fut = hub.waiter(settled)
        self.phone.poke()
        call = core.call(call_id)
        if call is not None and call.state not in (CallState.ACTIVE, CallState.ENDED):
            await hub.wait(fut, MAX_WAIT_S)
        fut.cancel()
        call = core.call(call_id)
        if call is None:
            raise CommandError("internal", "the call vanished")
        return call

    async def _dial_and_wait(self, target: str) -> CallInfo:
        accepted = self._submit(commands.Dial(target=target))
        assert accepted.call_id is not None
        call = await self._until_answered(accepted.call_id)
        if call.state is not CallState.ACTIVE:
            reason = call.reason or "ended"
            raise CommandError("not_answered", f"{target}: {reason} {call.detail}".strip())
        return call

    async def conference(self, args: dict[str, Any]) -> dict[str, Any]:
        """Dial each of ``numbers`` in turn (each waits for its answer, the others on hold),
        then join every call that is up into one conference this phone mixes."""
        numbers = args.get("numbers", [])
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
            raise CommandError("bad_request", '"numbers" must be a list of numbers')
        if len(numbers) > 8:
            raise CommandError("bad_request", "at most 8 numbers at once")
        for number in numbers:
            await self._dial_and_wait(number)
        self._submit(commands.Conference())
        self.phone.poke()
        now = self._now()
        core = self.phone.core
        legs = [c for c in core.recent_calls() if c.state is CallState.ACTIVE]
        return {"legs": [core.call_json(c.call_id, now) for c in legs]}

    async def transfer(self, args: dict[str, Any]) -> dict[str, Any]:
        """Blind: the talking call's far phone calls ``target``, and our call ends. Attended:
        dial ``target`` (unless a call with it is already up), wait for its answer, then hand
        the held call to it."""
        target = str(args.get("target", ""))
        attended = args.get("attended", False)
        if not isinstance(attended, bool):
            raise CommandError("bad_request", '"attended" must be true or false')
        call_id = _call_id(args)
        core = self.phone.core
        if not attended:
            accepted = self._submit(commands.Transfer(target=target, call_id=call_id))
        else:
            consult = next(
                (
                    c
                    for c in core.recent_calls()
                    if c.live and target and c.number == _number_or_none(target)
                ),
                None,
            )
            if consult is None:
                consult = await self._dial_and_wait(target)
            accepted = self._submit(
                commands.Transfer(
                    target=target, call_id=call_id, consultation=consult.call_id, attended=True
                )
            )
        handed = accepted.call_id or b""

        def finished(e: PhoneEvent) -> bool:
            return (
                isinstance(e, events.CallStateChanged)
                and e.call_id == handed
                and e.state is CallState.ENDED
            ) or (
                isinstance(e, events.CallUpdated)
                and e.call_id == handed
                and e.aspect == "transfer_failed"
            )

        fut = self.phone.hub.waiter(finished)
        self.phone.poke()
        info = core.call(handed)
        if info is not None and info.live:
            await self.phone.hub.wait(fut, RESOLVE_WAIT_S)
        fut.cancel()
        result = self._call_result(accepted)
        result["transferred"] = result["reason"] == "transferred"
        return result

    async def forward_set(self, args: dict[str, Any]) -> dict[str, Any]:
        mode = args.get("mode")
        if mode not in ("always", "busy", "no_answer", "offline"):
            raise CommandError("bad_request", '"mode" is always, busy, no_answer or offline')
        current = self.phone.core.forwarding()
        changes: dict[str, Any] = {mode: str(args.get("number", ""))}
        if mode == "no_answer" and args.get("after_s") is not None:
            after = args["after_s"]
            if isinstance(after, bool) or not isinstance(after, int | float):
                raise CommandError("bad_request", '"after_s" must be a number of seconds')
            changes["no_answer_s"] = float(after)
        return self._set_forwarding(current | changes)

    async def forward_clear(self, args: dict[str, Any]) -> dict[str, Any]:
        mode = args.get("mode")
        modes = ("always", "busy", "no_answer", "offline")
        if mode is not None and mode not in modes:
            raise CommandError("bad_request", '"mode" is always, busy, no_answer or offline')
        current = self.phone.core.forwarding()
        return self._set_forwarding(current | {m: None for m in modes if mode in (None, m)})

    def _set_forwarding(self, settings: dict[str, Any]) -> dict[str, Any]:
        self._submit(commands.SetForwarding(**settings))
        return self.phone.core.forwarding()

    async def contacts_add(self, args: dict[str, Any]) -> dict[str, Any]:
        slot = args.get("speed_dial")
        if slot is not None and (isinstance(slot, bool) or not isinstance(slot, int)):
            raise CommandError("bad_request", '"speed_dial" must be a slot number 1..99')
        auto = args.get("auto_answer", False)
        if not isinstance(auto, bool):
            raise CommandError("bad_request", '"auto_answer" must be true or false')
        self._submit(
            commands.SaveContact(
                number=str(args.get("number", "")),
                name=str(args.get("name", "")),
                public_key=_optional_key(args.get("public_key")),
                speed_dial=slot,
                auto_answer=auto,
                replace=bool(args.get("replace", False)),
            )
        )
        number = _number_or_none(str(args.get("number", "")))
        return next(c for c in self.phone.core.contact_cards() if c["number"] == number)

    async def contacts_list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        return self.phone.core.contact_cards()

    async def contacts_rm(self, args: dict[str, Any]) -> dict[str, Any]:
        self._submit(commands.RemoveContact(number=str(args.get("number", ""))))
        return {"removed": _number_or_none(str(args.get("number", "")))}

    async def contacts_verify(self, args: dict[str, Any]) -> dict[str, Any]:
        number = str(args.get("number", ""))
        self._submit(commands.VerifyContact(number=number, wall_time=time.time()))
        wanted = _number_or_none(number)
        return next(c for c in self.phone.core.contact_cards() if c["number"] == wanted)

    async def redial(self, args: dict[str, Any]) -> dict[str, Any] | EventStream:
        """Dial again what was dialled last (from the call history, so across restarts)."""
        last = next((r for r in self.phone.db.calls(200) if r.direction == "out"), None)
        target = None if last is None else (last.target or last.number)
        if not target:
            raise CommandError("no_call", "nothing was dialled yet")
        follow = {k: args[k] for k in ("progress", "until") if k in args}
        return await self.dial({"number": target} | follow)

    async def history(self, args: dict[str, Any]) -> dict[str, Any]:
        limit = _checked(arguments.history_limit, args.get("limit", 50), "limit")
        missed_only = bool(args.get("missed", False))
        db = self.phone.db
        rows = db.calls(limit, missed_only=missed_only)
        unseen = db.missed_unseen()
        if args.get("mark_seen", True):
            db.mark_missed_seen()
        return {
            "missed_unseen": unseen,
            "calls": [
                {
                    "call_id": r.call_id.hex(),
                    "direction": r.direction,
                    "number": r.number,
                    "peer_key": r.peer_key.hex() if r.peer_key else None,
                    "name": r.name or None,
                    "target": r.target or None,
                    "started_at": r.started_at,
                    "answered_at": r.answered_at,
                    "ended_at": r.ended_at,
                    "duration_s": None if r.duration_s is None else round(r.duration_s, 1),
                    "end_reason": r.end_reason,
                    "outcome": r.outcome,
                    "forwarded_to": r.forwarded_to,
                    "verified": r.verified,
                }
                for r in rows
            ],
        }

    def _call_result(self, accepted: commands.Accepted) -> dict[str, Any]:
        self.phone.poke()
        call = self.phone.core.call_json(accepted.call_id or b"", self._now())
        if call is None:
            raise CommandError("no_call", "no such call")
        return call

    async def lan(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.phone.core.lan_status()

    async def events(self, args: dict[str, Any]) -> EventStream:
        """Every phone event from now on, one JSON object a line, until the client leaves."""

        async def lines() -> AsyncIterator[dict[str, Any]]:
            async for event in self.phone.hub.stream():
                yield event_json(event)

        return EventStream(lines())


def status_json(phone: "Phone") -> dict[str, Any]:
    """``status``: the core's view plus what only the shell knows."""
    core = phone.core
    now = asyncio.get_running_loop().time()
    uptime = time.time() - phone.started_at
    out = core.status(now=now, uptime_s=uptime)
    out["counters"]["socket_errors"] = phone.socket_errors
    audio = phone.audio
    return {
        "version": __version__,
        "number": out.pop("number"),
        "number_display": out.pop("number_display"),
        "public_key": out.pop("public_key"),
        "name": phone.config.phone.name,
        "hotline": phone.config.hardware.hotline or None,
        "listen": [list(a) for a in phone.local_addrs],
        "uptime_s": round(uptime, 1),
        **out,
        "audio": None
        if audio is None
        else asdict(audio.status()) | {"frames_dropped": phone.audio_frames_dropped},
        "events": {"subscribers": phone.hub.subscribers},
        "handset": phone.handset.status() if phone.handset is not None else None,
        "restart_pending": list(phone.restart_pending),
        "boot_config": phone.boot_import,
        "missed_calls": _missed(phone),
    }


class DialProgress:
    """A call being placed, step by step, for ``dial`` with ``progress``: one item when it
    starts and one each time it moves (looked up, INVITE sent, ringing, answered, forwarded),
    until it rings (or is answered) or fails. Follows forwards and a glare's survivor."""

    STAGES: ClassVar[dict[CallState, str]] = {
        CallState.RESOLVING: "looking_up",
        CallState.DIALING: "calling",
        CallState.RINGBACK: "ringing",
        CallState.ACTIVE: "answered",
        CallState.HELD: "answered",
        CallState.INCOMING: "answered",
        CallState.ENDED: "failed",
    }

    def __init__(self, control: Control, call_id: bytes, *, answered: bool) -> None:
        self.control = control
        self.call_id = call_id
        self.answered = answered
        self.started = control._now()
        self.followed = 0

    async def items(self, sub: "Subscription") -> AsyncIterator[dict[str, Any]]:
        core = self.control.phone.core
        try:
            last = None
            while True:
                call = core.call(self.call_id)
                if call is None:
                    yield self._item("failed", None, code="internal", message="the call vanished")
                    return
                call = _glare_survivor(core, call)
                follower = call.followed_by if call.state is CallState.ENDED else None
                if follower is not None and self.followed < MAX_FOLLOWED:
                    self.followed += 1
                    yield self._item("forwarded", call)
                    self.call_id, last = follower, None
                    continue
                stage = self.STAGES[call.state]
                if (stage, call.state) != last:
                    last = (stage, call.state)
                    if stage == "failed":
                        reason = call.reason or EndReason.FAILED
                        code = _END_CODES.get(reason, str(reason))
                        yield self._item(stage, call, code=code, message=call.detail or str(reason))
                        return
                    done = stage == "answered" or (stage == "ringing" and not self.answered)
                    yield self._item(stage, call, final=done)
                    if done:
                        return
                event = await sub.next(timeout=1.0)
                if event is None and sub.dropped:
                    return
        finally:
            sub.close()

    def _item(
        self,
        stage: str,
        call: CallInfo | None,
        *,
        final: bool = False,
        code: str = "",
        message: str = "",
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "stage": stage,
            "elapsed_s": round(self.control._now() - self.started, 2),
            "final": final or stage == "failed",
        }
        if call is not None:
            item |= self.control.dial_result(call)
        if code:
            item["error"] = {"code": code, "message": message}
        return item


def _glare_survivor(core: "PhoneCore", call: CallInfo) -> CallInfo:
    """The call a ``dial`` stands for: ``call``, or, when it ended in glare (both phones dialled
    each other at once, while it resolved or while its INVITE was on its way), the peer's call
    that survived and was answered here."""
    if call.state is not CallState.ENDED or call.reason is not EndReason.GLARE:
        return call
    return next((c for c in core.recent_calls() if c.live and c.peer_key == call.peer_key), call)


def _missed(phone: "Phone") -> int | None:
    try:
        return phone.db.missed_unseen()
    except StoreError:
        return None


def _for_request(event: PhoneEvent, accepted: commands.Accepted) -> bool:
    return getattr(event, "request", None) == accepted.request


def _checked(check: Callable[[object], T], value: object, name: str) -> T:
    """One of ``arguments``' checks (the CLI runs the same): ``bad_request`` naming the field."""
    try:
        return check(value)
    except ValueError as exc:
        raise CommandError("bad_request", f'"{name}": {exc}') from None


def _call_id(args: dict[str, Any]) -> bytes | None:
    if args.get("call_id") is None:
        return None
    return _checked(arguments.call_id, args["call_id"], "call_id")


def _number_or_none(text: str) -> str | None:
    try:
        return parse_number(text)
    except InvalidNumber:
        return None


def _parse_key(value: object) -> bytes:
    try:
        return arguments.public_key(value)
    except ValueError as exc:
        raise CommandError("bad_key", str(exc)) from None


def _optional_key(value: object) -> bytes | None:
    return None if value is None else _parse_key(value)


def _parse_host_port(host: object, port: object) -> Addr:
    try:
        return (arguments.host(host), arguments.port(port))
    except ValueError as exc:
        raise CommandError("bad_address", str(exc)) from None
