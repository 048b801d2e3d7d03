"""A LAN for the simulator: the mDNS stand-in that carries phones' signed announcements.

On a real LAN, zeroconf multicasts each phone's announcement and every phone resolves it after
some delay (``peerline.runtime.lan``). Here a ``LanSegment`` delivers every announcement a
member makes to every other member after a random delay below ``max_delay`` (drawn from the
simulator's seeded randomness, so runs replay), keeping each pair's messages in order as a LAN
does. A member that joins hears every current announcement; one that leaves sends a goodbye.
Until ``loss_until``, each delivery is lost with probability ``loss``; every ``refresh_s`` each
member's announcement goes out again (mDNS re-announces), so what was lost arrives later (the
refreshes stop one round after ``loss_until``: nothing is lost after it).
"""

from typing import TYPE_CHECKING, Protocol

from peerline.proto.lan import LanAnnouncement

if TYPE_CHECKING:
    from .simulator import Simulator


class LanMember(Protocol):
    """What a segment needs of a phone (``SimPhone`` is one)."""

    @property
    def host(self) -> str: ...

    @property
    def lan_announcement(self) -> LanAnnouncement | None: ...

    def lan_heard(self, announcement: LanAnnouncement, host: str) -> None: ...

    def lan_lost(self, key: bytes) -> None: ...


class LanSegment:
    def __init__(
        self,
        sim: "Simulator",
        *,
        max_delay: float = 0.05,
        loss: float = 0.0,
        loss_until: float = 0.0,
        refresh_s: float = 5.0,
    ) -> None:
        if max_delay < 0 or not 0 <= loss <= 1 or refresh_s <= 0:
            raise ValueError("max_delay >= 0, loss in [0, 1], refresh_s > 0")
        self.sim = sim
        self.max_delay = max_delay
        self.loss = loss
        self.loss_until = loss_until
        self.refresh_s = refresh_s
        self.members: list[LanMember] = []
        self.delivered = 0
        self.lost = 0
        self._last: dict[tuple[int, int], float] = {}
        self._refreshing = False

    def join(self, member: LanMember) -> None:
        """``member`` starts listening: it hears every current announcement (the answers to
        its first browse), and its own goes out."""
        if member in self.members:
            return
        self.members.append(member)
        for other in self.members:
            ann = other.lan_announcement
            if other is not member and ann is not None:
                self._send(other, member, ann)
        own = member.lan_announcement
        if own is not None:
            self.announce(member, own)
        if self.loss and not self._refreshing:
            self._refreshing = True
            self.sim.call_at(self.sim.now + self.refresh_s, self._refresh)

    def leave(self, member: LanMember, *, goodbye: bool = True) -> None:
        """``member`` leaves: with ``goodbye`` the others drop it at once (zeroconf's goodbye
        packets), else it just falls silent. A member that has left hears nothing more."""
        if member not in self.members:
            return
        self.members.remove(member)
        ann = member.lan_announcement
        if goodbye and ann is not None:
            key = ann.public_key
            for other in self.members:
                self._schedule(member, other, lambda o=other: self._goodbye(o, key))

    def announce(self, member: LanMember, announcement: LanAnnouncement) -> None:
        """``member``'s announcement changed: every other member hears it."""
        if member not in self.members:
            return
        for other in self.members:
            if other is not member:
                self._send(member, other, announcement)

    def _send(self, src: LanMember, dst: LanMember, announcement: LanAnnouncement) -> None:
        now = self.sim.now
        if now < self.loss_until and self.sim.random.random() < self.loss:
            self.lost += 1
            return
        host = src.host
        self._schedule(src, dst, lambda: self._deliver(dst, announcement, host))

    def _schedule(self, src: LanMember, dst: LanMember, action: "_Action") -> None:
        pair = (id(src), id(dst))
        delay = self.sim.random.uniform(0.0, self.max_delay)
        at = max(self.sim.now + delay, self._last.get(pair, 0.0))
        self._last[pair] = at
        self.sim.call_at(at, action)

    def _deliver(self, dst: LanMember, announcement: LanAnnouncement, host: str) -> None:
        if dst in self.members:
            self.delivered += 1
            dst.lan_heard(announcement, host)

    def _goodbye(self, dst: LanMember, key: bytes) -> None:
        if dst in self.members:
            dst.lan_lost(key)

    def _refresh(self) -> None:
        for member in list(self.members):
            ann = member.lan_announcement
            if ann is not None:
                self.announce(member, ann)
        if self.sim.now < self.loss_until + self.refresh_s:
            self.sim.call_at(self.sim.now + self.refresh_s, self._refresh)
        else:
            self._refreshing = False  # nothing is lost any more: every member has heard all


class _Action(Protocol):
    def __call__(self) -> object: ...
