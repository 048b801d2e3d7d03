"""A handset UI on a simulated phone: ``HandsetUI`` driven as the daemon's handset loop drives
it (raw key and hook edges in; its commands to the phone core; the core's events back), in the
simulator's virtual time with real phone cores on both ends of every call."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from peerline.proto.phone import CommandRejected, events
from peerline.sim.phone import SimPhone
from peerline.sim.phones import PhoneWorld
from peerline.sim.simulator import Simulator
from peerline.ui.coreview import CoreView
from peerline.ui.handset import HandsetConfig, HandsetUI
from peerline.ui.model import HandsetSettings, MessageInfo
from peerline.ui.screens import Screen

PRESS_S = 0.1
"""How long a finger rests on a key in these tests (over the debounce, under a long press)."""


@dataclass
class SimHandset:
    phone: SimPhone
    ui: HandsetUI
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

    def screen(self) -> Screen:
        return self.ui.screen()


def attach(
    world: PhoneWorld,
    phone: SimPhone,
    *,
    config: HandsetConfig | None = None,
    settings: HandsetSettings | None = None,
    off_hook: bool = False,
) -> SimHandset:
    """A handset UI on ``phone``: its messages come from the phone's own events."""

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

    view = CoreView(phone.core, name=phone.name, clock=lambda: world.sim.now, messages=messages)
    ui = HandsetUI(
        view=view,
        clock=lambda now: f"{int(now // 3600) % 24:02d}:{int(now // 60) % 60:02d}",
        config=config,
        settings=settings,
        now=world.sim.now,
    )
    handset = SimHandset(phone=phone, ui=ui)
    phone.listeners.append(handset.event)
    ui.hook_start(off_hook, now=world.sim.now)
    handset.drive()
    return handset
