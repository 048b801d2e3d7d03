"""A handset UI on a simulated phone: ``HandsetUI`` driven as the daemon's handset loop drives
it (raw key and hook edges in; its commands to the phone core; the core's events back), in the
simulator's virtual time with real phone cores on both ends of every call."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from peerline.proto.phone import CallState, CommandRejected, EndReason, PhoneCore, events
from peerline.sim.phone import SimPhone
from peerline.sim.phones import PhoneWorld
from peerline.sim.simulator import Simulator
from peerline.ui.coreview import CoreView
from peerline.ui.handset import HandsetConfig, HandsetUI
from peerline.ui.model import (
    CallLog,
    HandsetSettings,
    HistoryEntry,
    MessageInfo,
    history_trust,
)
from peerline.ui.screens import Screen

PRESS_S = 0.1
"""How long a finger rests on a key in these tests (over the debounce, under a long press)."""
FLASH_S = 0.3
"""How long the handset dips into the cradle for a hook flash (``HookTiming``: 0.1 to 0.6 s)."""

_NOT_ANSWERED = {
    EndReason.MISSED: "missed",
    EndReason.DECLINED_HERE: "rejected",
    EndReason.BUSY_HERE: "busy",
    EndReason.DO_NOT_DISTURB: "busy",
    EndReason.FORWARDED: "forwarded",
    EndReason.ANSWERED_ELSEWHERE: "cancelled",
}
"""The daemon's history outcomes (``peerline.app.persistence``), which this log mirrors: a
test runs one scenario through both and compares them."""


def sim_time(now: float) -> str:
    """Virtual seconds as a wall clock's 'HH:MM' (the simulated phones' idle clock)."""
    return f"{int(now // 3600) % 24:02d}:{int(now // 60) % 60:02d}"


@dataclass(slots=True)
class _Row:
    incoming: bool
    when: str
    number: str | None = None
    key: bytes | None = None
    target: str = ""
    outcome: str = "live"
    verified: bool = False


class SimCallLog:
    """The call history of a simulated phone, from its core's events (the daemon keeps it in
    its database, ``peerline.app.handset.DbCallLog``). Register ``event`` before the handset's
    listener, as the daemon writes the store before the handset hears of an event."""

    def __init__(self, core: PhoneCore, sim: Simulator) -> None:
        self._core = core
        self._sim = sim
        self._rows: dict[bytes, _Row] = {}
        "Call id -> its row, in the order the calls started."
        self._unseen: set[bytes] = set()

    def event(self, event: events.PhoneEvent) -> None:
        if not isinstance(event, events.CallStateChanged):
            return
        row = self._rows.get(event.call_id)
        if row is None:
            row = _Row(incoming=not event.outgoing, when=sim_time(self._sim.now))
            self._rows[event.call_id] = row
        row.number = event.number or row.number
        row.key = event.peer_key or row.key
        row.target = event.target
        row.verified = row.verified or event.trust == "verified"
        if event.state is CallState.ENDED and row.outcome == "live":
            row.outcome = self._outcome(event)
            if row.outcome == "missed":
                self._unseen.add(event.call_id)

    @staticmethod
    def _outcome(event: events.CallStateChanged) -> str:
        if event.answered:
            return "answered"
        if event.reason is not None and event.reason in _NOT_ANSWERED:
            return _NOT_ANSWERED[event.reason]
        if not event.outgoing:
            return "missed"
        if event.reason is EndReason.CANCELLED:
            return "cancelled"
        return "forwarded" if event.forwarded_to else "failed"

    def history(self, limit: int) -> list[HistoryEntry]:
        rows = list(self._rows.values())[-limit:] if limit > 0 else []
        out = []
        for row in reversed(rows):
            card = self._core.book.get(row.number)
            trust = history_trust(
                verified=row.verified,
                contact=card is not None,
                pinned=None if card is None else card.public_key,
                key=row.key,
            )
            out.append(
                HistoryEntry(
                    incoming=row.incoming,
                    outcome=row.outcome,
                    number=row.number,
                    target=row.target,
                    contact=None if card is None else card.name,
                    trust=trust,
                    when=row.when,
                )
            )
        return out

    def missed_unseen(self) -> int:
        return len(self._unseen)

    def mark_missed_seen(self) -> None:
        self._unseen.clear()


@dataclass
class SimHandset:
    phone: SimPhone
    ui: HandsetUI
    calls: CallLog
    rejected: list[tuple[object, str]] = field(default_factory=list)
    _gen: int = 0

    @property
    def sim(self) -> Simulator:
        return self.phone.sim

    def drive(self) -> None:
        """Send the UI's commands to the phone and re-arm its one timer (after any input)."""
        for command in self.ui.commands_to_send():
            try:
                self.phone.handle(command)
            except CommandRejected as exc:
                self.rejected.append((command, exc.code))
                self.ui.rejected(command, exc.code, exc.message, now=self.sim.now)
        if self.ui.missed_seen():
            self.calls.mark_missed_seen()
        self._gen += 1
        due = self.ui.get_timer()
        if due is not None:
            gen = self._gen
            self.sim.call_at(max(due, self.sim.now), lambda: self._fire(gen))

    def _fire(self, gen: int) -> None:
        if gen != self._gen:
            return
        self.ui.handle_timer(now=self.sim.now)
        self.drive()

    def event(self, event: events.PhoneEvent) -> None:
        self.ui.phone_event(event, now=self.sim.now)
        self.sim.call_at(self.sim.now, self.drive)

    # -- what a person does -------------------------------------------------------------------
    def press(self, keys: Iterable[str], *, hold: float = PRESS_S, gap: float = 0.15) -> None:
        """Press each key in turn (down ``hold`` seconds), ``gap`` seconds apart."""
        for key in keys:
            self.ui.key_edge(key, True, now=self.sim.now)
            self.drive()
            self.sim.run_for(hold)
            self.ui.key_edge(key, False, now=self.sim.now)
            self.drive()
            self.sim.run_for(gap)

    def hold(self, key: str, seconds: float = 1.0) -> None:
        self.press([key], hold=seconds)

    def lift(self) -> None:
        self.ui.hook_edge(True, now=self.sim.now)
        self.drive()
        self.sim.run_for(0.1)

    def hang_up(self) -> None:
        self.ui.hook_edge(False, now=self.sim.now)
        self.drive()
        self.sim.run_for(1.0)

    def flash(self, seconds: float = FLASH_S) -> None:
        """A quick press of the cradle: down ``seconds``, then up again."""
        self.ui.hook_edge(False, now=self.sim.now)
        self.drive()
        self.sim.run_for(seconds)
        self.ui.hook_edge(True, now=self.sim.now)
        self.drive()
        self.sim.run_for(0.1)

    def screen(self) -> Screen:
        return self.ui.screen()


def attach(
    world: PhoneWorld,
    phone: SimPhone,
    *,
    config: HandsetConfig | None = None,
    settings: HandsetSettings | None = None,
    off_hook: bool = False,
    calls: CallLog | None = None,
) -> SimHandset:
    """A handset UI on ``phone``: its messages come from the phone's own events, its call
    history from ``calls`` (default: a ``SimCallLog``, which is registered here)."""

    def messages(limit: int) -> list[MessageInfo]:
        """As the daemon's store has them: numbers filled in once derived (NumberLearned)."""
        learned = {
            e.public_key: e.number for e in phone.events if isinstance(e, events.NumberLearned)
        }
        out = [
            MessageInfo(
                incoming=True,
                number=e.number or learned.get(e.peer_key),
                text=e.text,
                status="received",
            )
            for e in phone.events
            if isinstance(e, events.MessageReceived)
        ]
        return out[-limit:]

    if calls is None:
        log = SimCallLog(phone.core, world.sim)
        phone.listeners.append(log.event)
        calls = log
    view = CoreView(
        phone.core, name=phone.name, clock=lambda: world.sim.now, messages=messages, calls=calls
    )
    ui = HandsetUI(
        view=view,
        clock=sim_time,
        config=config,
        settings=settings,
        now=world.sim.now,
    )
    handset = SimHandset(phone=phone, ui=ui, calls=calls)
    phone.listeners.append(handset.event)
    ui.hook_start(off_hook, now=world.sim.now)
    handset.drive()
    return handset
