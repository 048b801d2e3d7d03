"""A whole phone in the simulator: ``PhoneCore`` driven as the daemon drives it, in virtual time.

``SimPhone`` is the simulator's twin of ``peerline.app.daemon.Phone``: it makes the same calls
on the same core, with the stand-ins a simulation needs instead of the shell's threads and
devices: numbers derived at once (``sim_number``), events kept in ``events`` for the scenario
to read, a 20 ms audio clock on the simulator's heap while the core wants audio (a scripted
talker for the microphone, counts of what the speaker got), and LAN announcements carried by a
``LanSegment`` instead of zeroconf.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from peerline.proto.lan import LanAnnouncement
from peerline.proto.phone import Accepted, Command, PhoneCore, PhoneEvent, Surroundings, events
from peerline.types import Addr

from .codec import speech_frame
from .numbers import sim_number

if TYPE_CHECKING:
    from .lan import LanSegment
    from .simulator import Simulator

FRAME_S = 0.02
E = TypeVar("E", bound=PhoneEvent)


@dataclass(slots=True)
class AudioCounts:
    ticks: int = 0
    "20 ms periods run while the core wanted audio."
    frames_heard: int = 0
    "Speaker frames with sound in them (decoded speech, tones)."


class SimPhone:
    """One phone on the simulator. See the module docstring.

    Then: ``start()`` once added to the simulator; ``handle(command)`` for anything a user
    does; read ``events`` (or ``of_type``) to see what happened.
    """

    def __init__(
        self,
        name: str,
        core: PhoneCore,
        *,
        sim: "Simulator",
        addr: Addr,
        derive: Callable[[bytes], str] = sim_number,
        talker: Callable[[int], bytes] = speech_frame,
        lan: "LanSegment | None" = None,
    ) -> None:
        self.name = name
        self.core = core
        self.sim = sim
        self.addr = addr
        self.events: list[PhoneEvent] = []
        self.listeners: list[Callable[[PhoneEvent], None]] = []
        "Front ends on this phone (a handset UI): each event goes to each, as it comes."
        self.audio = AudioCounts()
        self.lan = lan
        self._derive = derive
        self._talker = talker
        self._audio_on = False
        self._audio_gen = 0
        self._started = False

    @property
    def number(self) -> str:
        return self.core.number

    @property
    def key(self) -> bytes:
        return self.core.public_key

    def start(self, *, lan_port: int | None = None) -> None:
        where = Surroundings(host=(self.addr,), own=(self.addr,), bound=(self.addr,))
        self.core.start(where, now=self.sim.now, lan_port=lan_port)
        self._started = True
        self._settle()
        if self.lan is not None:
            self.lan.join(self)
        self.sim.poke(self.addr)

    def moved(self, surroundings: Surroundings) -> None:
        """The host's addresses changed (``PhoneWorld.move``)."""
        self.core.set_surroundings(surroundings, now=self.sim.now)
        self._settle()
        self.sim.poke(self.addr)

    def handle(self, command: Command) -> Accepted:
        """What a user does (dial, answer, ...): the core's answer, its effects sent at once."""
        try:
            return self.core.handle(command, now=self.sim.now)
        finally:
            self._settle()
            self.sim.poke(self.addr)

    def of_type(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    # -- the simulator's calls ----------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        self.core.receive_datagram(data, addr, now=now)
        self._settle()

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        return self.core.media_datagrams_to_send(now=now) + self.core.datagrams_to_send(now=now)

    def get_timer(self) -> float | None:
        return self.core.get_timer()

    def handle_timer(self, *, now: float) -> None:
        self.core.handle_timer(now=now)
        self._settle()

    # -- LAN (from the segment) ---------------------------------------------------------------
    def lan_heard(self, announcement: LanAnnouncement, host: str) -> None:
        self.core.lan_heard(announcement, host, now=self.sim.now)
        self._settle()
        self.sim.poke(self.addr)

    def lan_lost(self, key: bytes) -> None:
        self.core.lan_lost(key, now=self.sim.now)
        self._settle()
        self.sim.poke(self.addr)

    @property
    def lan_announcement(self) -> LanAnnouncement | None:
        return self.core.lan_announcement

    @property
    def host(self) -> str:
        return self.addr[0]

    # -- what the shell does after every input ------------------------------------------------
    def _settle(self) -> None:
        """Derive what the core asks for (at once) and take its events."""
        core, now = self.core, self.sim.now
        while (key := core.next_derivation()) is not None:
            core.number_derived(key, self._derive(key), now=now)
        while (event := core.next_event()) is not None:
            self.events.append(event)
            for listener in self.listeners:
                listener(event)
            if isinstance(event, events.AudioActiveChanged):
                self._audio(event.active)
            elif isinstance(event, events.LanAnnouncementChanged) and self.lan is not None:
                self.lan.announce(self, event.announcement)

    def _audio(self, active: bool) -> None:
        if active == self._audio_on:
            return
        self._audio_on = active
        self._audio_gen += 1
        if active:
            gen = self._audio_gen
            self.sim.call_at(self.sim.now + FRAME_S, lambda: self._tick(gen))

    def _tick(self, gen: int) -> None:
        if gen != self._audio_gen or not self._audio_on:
            return
        frame = self._talker(self.audio.ticks)
        self.audio.ticks += 1
        out = self.core.audio_tick(frame, now=self.sim.now)
        if any(out):
            self.audio.frames_heard += 1
        self._settle()
        self.sim.poke(self.addr)
        if gen == self._audio_gen and self._audio_on:
            self.sim.call_at(self.sim.now + FRAME_S, lambda: self._tick(gen))
