"""Shared harness for LAN extension tests: fake number binding, helpers, a simulated LAN.

Numbers here come from a fast stand-in for argon2id (``fake_number``): the registry only sees
numbers through its ``NumberBinding`` port, so the real derivation adds nothing but seconds.
"""

import hashlib
import heapq
import itertools
import random
from dataclasses import dataclass, field

from peerline.proto.identity import Identity
from peerline.proto.lan import (
    AnnouncementChanged,
    ExtensionRegistry,
    LanAnnouncement,
    LanConfig,
    LanEvent,
    sign_announcement,
)


def fake_number(public_key: bytes) -> str:
    digest = hashlib.blake2b(public_key, digest_size=8, person=b"test-number").digest()
    return f"{int.from_bytes(digest, 'big') % 10**12:012d}"


def identity(i: int) -> Identity:
    return Identity.from_seed(hashlib.sha256(b"lan-test-%d" % i).digest())


class Binding:
    """Answers at once with ``fake_number``, except for keys in ``held`` (then None)."""

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
        return fake_number(public_key)


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
        number=number or fake_number(who.public_key),
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
        number=fake_number(who.public_key),
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


@dataclass
class SimPhone:
    reg: ExtensionRegistry
    host: str
    start_at: float
    leave_at: float | None = None
    started: bool = False
    gone: bool = False
    events: list[LanEvent] = field(default_factory=list)


class LanWorld:
    """Phones on a simulated LAN: every announcement reaches every listening phone after a
    random delay below ``max_delay`` (mDNS multicast plus resolution), in virtual time.

    Phones start listening at ``start_at`` and at once hear every current announcement (the
    answers to their first browse query); leaving sends a goodbye (``lost``) to all. Until
    ``loss_until``, each announcement is lost with probability ``loss``; every ``refresh_s``
    each phone's current announcement goes out again (mDNS re-queries and re-announces), so
    what was lost arrives later, as on a real LAN.
    """

    def __init__(
        self,
        phones: list[SimPhone],
        *,
        seed: int,
        max_delay: float,
        loss: float = 0.0,
        loss_until: float = 0.0,
        refresh_s: float = 5.0,
    ) -> None:
        self.phones = phones
        self.rng = random.Random(seed)
        self.max_delay = max_delay
        self.loss = loss
        self.loss_until = loss_until
        self.refresh_s = refresh_s
        self.now = 0.0
        self._queue: list[tuple[float, int, int, str, object]] = []
        self._seq = itertools.count()
        self._last: dict[tuple[int, int], float] = {}
        if loss:
            self._push(refresh_s, -1, "refresh", None)
        for i, p in enumerate(phones):
            self._push(p.start_at, i, "start", None)
            if p.leave_at is not None:
                self._push(p.leave_at, i, "leave", None)

    def _push(self, at: float, dst: int, kind: str, payload: object) -> None:
        heapq.heappush(self._queue, (at, next(self._seq), dst, kind, payload))

    def _delay(self) -> float:
        return self.rng.uniform(0.0, self.max_delay)

    def _send(self, src: int, dst: int, kind: str, payload: object) -> None:
        """One message from src to dst; each pair's messages keep their order, as on a LAN."""
        if kind == "heard" and self.now < self.loss_until and self.rng.random() < self.loss:
            return
        at = max(self.now + self._delay(), self._last.get((src, dst), 0.0))
        self._last[src, dst] = at
        self._push(at, dst, kind, payload)

    def _broadcast(self, src: int, kind: str, payload: object) -> None:
        for j, p in enumerate(self.phones):
            if j != src and not p.gone:
                self._send(src, j, kind, payload)

    def _drain(self, i: int) -> None:
        phone = self.phones[i]
        while (event := phone.reg.next_event()) is not None:
            phone.events.append(event)
            if isinstance(event, AnnouncementChanged):
                self._broadcast(i, "heard", (event.announcement, phone.host))

    def _next_timer(self) -> tuple[float, int] | None:
        best: tuple[float, int] | None = None
        for i, p in enumerate(self.phones):
            if p.started and not p.gone:
                t = p.reg.get_timer()
                if t is not None and (best is None or t < best[0]):
                    best = (t, i)
        return best

    def run(self, *, until: float) -> None:
        while True:
            timer = self._next_timer()
            queued = self._queue[0][0] if self._queue else None
            if timer is not None and (queued is None or timer[0] <= queued):
                at, i = timer
                if at > until:
                    return
                self.now = max(self.now, at)
                self.phones[i].reg.handle_timer(now=self.now)
                self._drain(i)
                continue
            if queued is None or queued > until:
                return
            at, _, dst, kind, payload = heapq.heappop(self._queue)
            self.now = max(self.now, at)
            self._deliver(dst, kind, payload)

    def _deliver(self, i: int, kind: str, payload: object) -> None:
        if kind == "refresh":
            for j, p in enumerate(self.phones):
                if p.started and not p.gone and p.reg.announcement is not None:
                    self._broadcast(j, "heard", (p.reg.announcement, p.host))
            self._push(self.now + self.refresh_s, -1, "refresh", None)
            return
        phone = self.phones[i]
        if phone.gone:
            return
        if kind == "start":
            phone.started = True
            phone.reg.start(now=self.now)
            for j, other in enumerate(self.phones):
                ann = other.reg.announcement
                if j != i and other.started and not other.gone and ann is not None:
                    self._send(j, i, "heard", (ann, other.host))
            self._drain(i)
        elif kind == "leave":
            phone.gone = True
            self._broadcast(i, "lost", phone.reg.public_key)
        elif not phone.started:
            return
        elif kind == "heard":
            ann, host = payload  # type: ignore[misc]
            phone.reg.heard(ann, host, now=self.now)
            self._drain(i)
        elif kind == "lost":
            phone.reg.lost(payload, now=self.now)  # type: ignore[arg-type]
            self._drain(i)

    def live(self) -> list[SimPhone]:
        return [p for p in self.phones if p.started and not p.gone]
