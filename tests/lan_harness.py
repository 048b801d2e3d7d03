"""Shared harness for LAN extension tests: a number binding double, helpers, and registries
as members of the simulator's LAN (``peerline.sim.lan.LanSegment``).

Numbers come from the simulator's stand-in for argon2id (``peerline.sim.numbers.sim_number``):
the registry only sees numbers through its ``NumberBinding`` port, so the real derivation adds
nothing but seconds.
"""

import hashlib

from peerline.proto.identity import Identity
from peerline.proto.lan import (
    AnnouncementChanged,
    ExtensionRegistry,
    LanAnnouncement,
    LanConfig,
    LanEvent,
    sign_announcement,
)
from peerline.sim import Simulator
from peerline.sim.lan import LanSegment
from peerline.sim.numbers import sim_number
from peerline.types import Addr


def identity(i: int) -> Identity:
    return Identity.from_seed(hashlib.sha256(b"lan-test-%d" % i).digest())


class Binding:
    """Answers at once with ``sim_number``, except for keys in ``held`` (then None) and in
    ``wrong`` (then a number that is not the key's); remembers what it was ``asked``."""

    def __init__(self) -> None:
        self.held: set[bytes] = set()
        self.asked: list[bytes] = []
        self.wrong: set[bytes] = set()

    def number_of(self, public_key: bytes) -> str | None:
        self.asked.append(public_key)
        if public_key in self.held:
            return None
        if public_key in self.wrong:
            return "000000000000"
        return sim_number(public_key)


def announce(
    who: Identity,
    extension: str | None = None,
    *,
    configured: bool = False,
    established: bool = False,
    seq: int = 1,
    port: int = 4720,
    number: str | None = None,
) -> LanAnnouncement:
    """A peer's announcement; configured claims are announced established, as phones do."""
    return sign_announcement(
        who,
        number=number or sim_number(who.public_key),
        port=port,
        extension=extension,
        configured=configured,
        established=established or configured,
        claim_seq=seq,
    )


def registry(
    who: Identity,
    *,
    binding: Binding | None = None,
    config: LanConfig | None = None,
    configured: str | None = None,
    previous: str | None = None,
    claim_seq: int = 0,
) -> ExtensionRegistry:
    return ExtensionRegistry(
        identity=who,
        number=sim_number(who.public_key),
        port=4720,
        binding=binding or Binding(),
        config=config,
        configured_extension=configured,
        previous_extension=previous,
        claim_seq=claim_seq,
    )


def drain(reg: ExtensionRegistry) -> list[LanEvent]:
    out = []
    while (event := reg.next_event()) is not None:
        out.append(event)
    return out


class RegistryMember:
    """One phone's ``ExtensionRegistry`` on a simulated LAN, as ``runtime/lan.py`` runs one.

    To the simulator it is a node at ``(host, 4720)`` with the registry's timer and no
    datagrams; to the ``LanSegment`` it is a member that hears and loses peers and announces
    whatever the registry announces (``AnnouncementChanged``). It listens from ``start()``
    (which joins the segment) until ``leave()`` (a goodbye to the others; its timer stops);
    a member that left before it started never starts. Schedule both with ``sim.call_at``.
    """

    def __init__(
        self, reg: ExtensionRegistry, host: str, *, sim: Simulator, segment: LanSegment
    ) -> None:
        self.reg = reg
        self.addr: Addr = (host, 4720)
        self.sim = sim
        self.segment = segment
        self.events: list[LanEvent] = []
        self.started = False
        self.gone = False
        sim.add_node(self.addr, self)

    @property
    def live(self) -> bool:
        return self.started and not self.gone

    def start(self) -> None:
        if self.gone:
            return
        self.started = True
        self.reg.start(now=self.sim.now)
        self._take_events()
        self.segment.join(self)
        self.sim.poke(self.addr)

    def leave(self) -> None:
        self.gone = True
        self.segment.leave(self)
        self.sim.remove_node(self.addr)

    # -- the segment's calls (LanMember) ------------------------------------------------------
    @property
    def host(self) -> str:
        return self.addr[0]

    @property
    def lan_announcement(self) -> LanAnnouncement | None:
        return self.reg.announcement

    def lan_heard(self, announcement: LanAnnouncement, host: str) -> None:
        self.reg.heard(announcement, host, now=self.sim.now)
        self._take_events()
        self.sim.poke(self.addr)

    def lan_lost(self, key: bytes) -> None:
        self.reg.lost(key, now=self.sim.now)
        self._take_events()
        self.sim.poke(self.addr)

    # -- the simulator's calls ----------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        """Nothing is sent to a registry over UDP."""

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        return []

    def get_timer(self) -> float | None:
        return self.reg.get_timer()

    def handle_timer(self, *, now: float) -> None:
        self.reg.handle_timer(now=now)
        self._take_events()

    def _take_events(self) -> None:
        while (event := self.reg.next_event()) is not None:
            self.events.append(event)
            if isinstance(event, AnnouncementChanged):
                self.segment.announce(self, event.announcement)
