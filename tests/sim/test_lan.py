"""Tests for ``peerline.sim.lan``: the ``LanSegment`` that carries LAN announcements.

Members here are plain recorders (``Listener``), so each test sees exactly what the segment
delivered and when, in virtual time.
"""

from dataclasses import dataclass, field

from lan_harness import announce, identity
from peerline.proto.lan import LanAnnouncement
from peerline.sim import Simulator
from peerline.sim.lan import LanSegment


@dataclass(eq=False)
class Listener:
    host: str
    lan_announcement: LanAnnouncement | None
    sim: Simulator
    heard: list[tuple[float, bytes, str]] = field(default_factory=list)
    lost: list[tuple[float, bytes]] = field(default_factory=list)

    def lan_heard(self, announcement: LanAnnouncement, host: str) -> None:
        self.heard.append((self.sim.now, announcement.public_key, host))

    def lan_lost(self, key: bytes) -> None:
        self.lost.append((self.sim.now, key))


def key_of(member: Listener) -> bytes:
    assert member.lan_announcement is not None
    return member.lan_announcement.public_key


def three(sim: Simulator) -> tuple[LanSegment, list[Listener]]:
    lan = LanSegment(sim, max_delay=0.05)
    members = [
        Listener(f"192.168.1.{10 + i}", announce(identity(i), f"20{i}"), sim) for i in range(3)
    ]
    for m in members:
        lan.join(m)
    return lan, members


def test_a_joining_member_hears_every_announcement_within_max_delay() -> None:
    sim = Simulator(3)
    _, (a, b, c) = three(sim)
    sim.run_for(1.0)
    for me in (a, b, c):
        others = {(key_of(m), m.host) for m in (a, b, c) if m is not me}
        assert {(key, host) for _, key, host in me.heard} == others
        assert all(t <= 0.05 for t, _, _ in me.heard)


def test_a_goodbye_reaches_those_still_there_and_not_one_that_left_meanwhile() -> None:
    """A member that leaves hears nothing more, goodbyes on their way to it included: the
    segment never calls a member that left (whose node may be gone from the simulator)."""
    sim = Simulator(5)
    lan, (a, b, c) = three(sim)
    sim.run_for(1.0)
    lan.leave(b)
    lan.leave(c)  # b's goodbye to c is still on its way
    sim.run_for(1.0)
    assert sorted(key for _, key in a.lost) == sorted([key_of(b), key_of(c)])
    assert c.lost == [] and b.lost == []
