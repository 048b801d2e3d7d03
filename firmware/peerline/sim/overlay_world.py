"""A population of overlay phones in the simulator: joins, churn, adversaries, measured lookups.

Used by ``bench/overlay.py`` and the overlay scenario tests. Every phone is a real ``Overlay``
driven through the simulator, as the asyncio runtime drives one phone. Two stand-ins, both
stated in the output:

- **Number binding.** Phones' numbers come from ``sim_number`` (BLAKE2b of the key) instead of
  argon2id, because 10^4-10^5 argon2id derivations of 64 MiB each (45 ms apiece here) would take
  the whole time budget. The overlay checks bindings through the same ``NumberBinding`` port
  either way; the cost a real storer pays is one derivation per new key it stores for.
- **Warm start.** Optionally, routing tables and stored records start as a long-running network
  would have them (each phone's buckets filled from the population, each record on its k
  closest phones, republish timers spread over one period), so a 100 000-phone run does not
  spend its budget replaying 100 000 joins. Phones that join later (churn) join for real.

Addresses: phone ``i`` gets a public-looking address in 100.64.0.0/10 (virtual only; the
simulator never touches a real network), spread over 16 384 /24 subnets so the routing table's
per-subnet limit sees a realistic mix. Each host has an access delay of 10-50 ms one way, so
round-trip times between phones fall between 40 and 200 ms.
"""

import bisect
import hashlib
import random
from dataclasses import dataclass, field

from peerline.proto.identity import Identity
from peerline.proto.overlay.events import LookupCompleted, LookupFailed
from peerline.proto.overlay.ids import ID_BITS, as_int, node_id, record_key
from peerline.proto.overlay.overlay import Overlay, OverlayConfig
from peerline.proto.overlay.records import SyncBinding
from peerline.types import Addr
from peerline.wire.overlay import Contact
from peerline.wire.record import CandidateKind

from .adversary import Colluders, MaliciousOverlay
from .network import LinkProfile, Network
from .numbers import sim_number
from .simulator import Simulator

SUBNETS = 16384
CHURN_SEEDS = 3
"""Addresses a phone joining during churn starts from (random online phones, liars included)."""
PORT = 7000


def address_of(i: int) -> Addr:
    s = i % SUBNETS
    return (f"100.{64 + (s >> 8)}.{s & 255}.{1 + i // SUBNETS}", PORT)


@dataclass(slots=True)
class Phone:
    index: int
    addr: Addr
    overlay: Overlay
    malicious: bool
    joined_at: float
    online: bool = True


@dataclass(slots=True)
class LookupResult:
    ok: bool
    hops: int
    latency_s: float
    messages: int
    forged: int


@dataclass(slots=True)
class OverlayWorld:
    seed: int
    config: OverlayConfig = field(default_factory=OverlayConfig)
    malicious: float = 0.0
    loss: float = 0.0
    sim: Simulator = field(init=False)
    rng: random.Random = field(init=False)
    phones: list[Phone] = field(default_factory=list)
    colluders: Colluders = field(default_factory=Colluders)
    binding: SyncBinding = field(init=False)
    results: list[LookupResult] = field(default_factory=list)
    _pending: dict[tuple[int, int], tuple[str, bytes]] = field(default_factory=dict)
    _next_index: int = 0

    def __post_init__(self) -> None:
        self.sim = Simulator(
            seed=self.seed,
            network=Network(LinkProfile(latency_s=0.0, jitter_s=0.002, loss=self.loss)),
            digest=False,
        )
        self.rng = random.Random(self.seed)  # noqa: S311 - simulation only
        self.binding = SyncBinding(sim_number, capacity=1 << 20)

    # -- population ---------------------------------------------------------------------------
    def _make(self, *, malicious: bool) -> Phone:
        i = self._next_index
        self._next_index += 1
        seed = hashlib.blake2b(f"{self.seed}/{i}".encode(), digest_size=32).digest()
        identity = Identity.from_seed(seed)
        rng = self.sim.node_rng(f"phone{i}")
        number = sim_number(identity.public_key)
        addr = address_of(i)
        overlay: Overlay
        if malicious:
            overlay = MaliciousOverlay(
                colluders=self.colluders,
                identity=identity,
                rng=rng,
                binding=self.binding,
                number=number,
                config=self.config,
            )
            self.colluders.join(Contact(identity.public_key, addr))
        else:
            overlay = Overlay(
                identity=identity, rng=rng, binding=self.binding, number=number, config=self.config
            )
        self.colluders.numbers[record_key(number)] = number
        self.sim.network.set_access_delay(addr[0], 0.010 + 0.040 * self.rng.random())
        phone = Phone(i, addr, overlay, malicious, self.sim.now, online=False)
        self.phones.append(phone)
        return phone

    def populate(self, n: int, *, warm: bool) -> None:
        """Create ``n`` phones; with ``warm``, as a long-running network would hold them."""
        new = [self._make(malicious=self.rng.random() < self.malicious) for _ in range(n)]
        if warm:
            self._warm(new)
            for phone in new:
                self.sim.add_node(phone.addr, phone.overlay)
                phone.online = True
        else:
            first = new[0]
            self.sim.add_node(first.addr, first.overlay)
            first.online = True
            self._publish(first)
            for phone in new[1:]:
                self.sim.run_for(self.rng.random() * 0.05)
                self.join(phone, seed=self._random_online(honest=True))

    def _warm(self, phones: list[Phone]) -> None:
        now = self.sim.now
        k = self.config.k
        ids = sorted((as_int(node_id(p.overlay.public_key)), j) for j, p in enumerate(phones))
        keys = [x for x, _ in ids]
        for position, (own, j) in enumerate(ids):
            phone = phones[j]
            # The nearest id shares the longest prefix and sits next to ours in sorted order:
            # buckets below its bucket are empty.
            neighbours = [keys[p] for p in (position - 1, position + 1) if 0 <= p < len(keys)]
            lowest = min(((own ^ x).bit_length() - 1 for x in neighbours), default=0)
            for bucket in range(ID_BITS - 1, lowest - 1, -1):
                lo_id = ((own >> bucket) ^ 1) << bucket
                lo = bisect.bisect_left(keys, lo_id)
                hi = bisect.bisect_left(keys, lo_id + (1 << bucket))
                if hi <= lo:
                    continue
                # k for the bucket and a couple waiting in its replacement cache.
                picks = range(lo, hi) if hi - lo <= k + 2 else self.rng.sample(range(lo, hi), k + 2)
                for p in picks:
                    other = phones[ids[p][1]]
                    phone.overlay.table.seen(
                        Contact(other.overlay.public_key, other.addr), keys[p], now
                    )
        # Records on their k closest honest-or-not phones, as a publish would have put them.
        for phone in phones:
            if phone.malicious:
                continue
            ov = phone.overlay
            ov.publish(addresses=((CandidateKind.HOST, phone.addr),), now=now)
            record = ov.record
            assert record is not None
            raw = record.encode()
            key = as_int(record_key(ov.number))
            i = bisect.bisect_left(keys, key)
            window = [ids[j] for j in range(max(0, i - 2 * k), min(len(ids), i + 2 * k))]
            window.sort(key=lambda t: t[0] ^ key)
            for _, j in window[:k]:
                holder = phones[j].overlay
                holder.store.put(record_key(ov.number), record, raw, phone.addr[0], now)
            # Republish and refresh timers spread over one period, as in a network that has run
            # for a while.
            ov.warm_start(
                now=now,
                republish_at=now + self.rng.random() * self.config.republish_s,
                refreshed_at=now - self.rng.random() * self.config.refresh_s,
            )
        for phone in phones:
            if phone.malicious:
                phone.overlay.warm_start(now=now, republish_at=None, refreshed_at=now)

    def _publish(self, phone: Phone) -> None:
        phone.overlay.publish(addresses=((CandidateKind.HOST, phone.addr),), now=self.sim.now)
        self.sim.poke(phone.addr)

    def join(self, phone: Phone, *, seed: Phone | list[Phone]) -> None:
        """Start ``phone`` for real: it knows its seeds' addresses only, and publishes."""
        seeds = seed if isinstance(seed, list) else [seed]
        if phone.addr not in self.sim:
            self.sim.add_node(phone.addr, phone.overlay)
        phone.joined_at = self.sim.now
        phone.online = True
        phone.overlay.bootstrap([(None, s.addr) for s in seeds], now=self.sim.now)
        if not phone.malicious:
            phone.overlay.publish(addresses=((CandidateKind.HOST, phone.addr),), now=self.sim.now)
        self.sim.poke(phone.addr)

    def _random_online(self, *, honest: bool = False, min_age: float = 0.0) -> Phone:
        cutoff = self.sim.now - min_age
        for _ in range(10000):
            phone = self.phones[self.rng.randrange(len(self.phones))]
            if phone.online and phone.joined_at <= cutoff and not (honest and phone.malicious):
                return phone
        raise RuntimeError("no online phone matches")

    def churn_once(self) -> None:
        """One phone leaves for good; a new one joins through a random online phone."""
        leaving = self._random_online()
        leaving.online = False
        self.sim.remove_node(leaving.addr)
        if leaving.malicious:
            self.colluders.leave(Contact(leaving.overlay.public_key, leaving.addr))
        # A returning phone knows a few addresses (its peer cache, a seed list): any of them may
        # be a liar, as any other node may.
        seeds = [self._random_online() for _ in range(CHURN_SEEDS)]
        newcomer = self._make(malicious=self.rng.random() < self.malicious)
        self.join(newcomer, seed=seeds)

    def schedule_churn(self, per_hour: float, until: float) -> None:
        """Replace ``per_hour`` (a fraction) of the population per hour until time ``until``."""
        population = sum(1 for p in self.phones if p.online)
        rate = per_hour * population / 3600.0
        if rate <= 0:
            return
        t = self.sim.now
        while True:
            t += self.rng.expovariate(rate)
            if t >= until:
                break
            self.sim.call_at(t, self.churn_once)

    # -- measurement --------------------------------------------------------------------------
    def schedule_lookups(self, count: int, start: float, spread_s: float, min_age: float) -> None:
        for j in range(count):
            self.sim.call_at(start + spread_s * j / max(1, count), lambda: self._lookup(min_age))

    def _lookup(self, min_age: float) -> None:
        caller = self._random_online(honest=True)
        callee = caller
        while callee is caller:
            callee = self._random_online(honest=True, min_age=min_age)
        lid = caller.overlay.lookup(callee.overlay.number, now=self.sim.now)
        self._pending[(caller.index, lid)] = (callee.overlay.number, callee.overlay.public_key)
        self.sim.poke(caller.addr)

    def collect(self) -> None:
        """Read every phone's overlay events; record the outcome of measured lookups."""
        for phone in self.phones:
            ov = phone.overlay
            while (event := ov.next_event()) is not None:
                if not isinstance(event, LookupCompleted | LookupFailed):
                    continue
                want = self._pending.pop((phone.index, event.lookup_id), None)
                if want is None:
                    continue
                _, owner = want
                messages = event.queries + event.replies
                if isinstance(event, LookupCompleted):
                    forged = sum(1 for r in event.records if r.public_key != owner)
                    ok = any(r.public_key == owner for r in event.records)
                    self.results.append(
                        LookupResult(ok, event.hops, event.elapsed_s, messages, forged)
                    )
                else:
                    self.results.append(LookupResult(False, 0, event.elapsed_s, messages, 0))

    def unanswered(self) -> int:
        return len(self._pending)
