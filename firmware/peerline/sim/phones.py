"""Worlds of whole phones for scenarios: phones, supernodes, NATs and LANs on one simulator.

``PhoneWorld`` builds ``SimPhone``s the way the daemon builds a phone (one ``PhoneCore`` each,
configured by ``PhoneConfig``) with the simulation's stand-ins (seeded ``Rng`` per phone,
``sim_number``, the stand-in codec), places them on the simulator's network (public, or behind
a ``Nat``), and gives a scenario one seed and one trace digest for everything: overlay, NAT
traversal and relays, calls with media, LAN extensions.

Example::

    world = PhoneWorld(seed=7)
    r = world.add_phone("r", ("203.0.113.10", 4720), member=True)
    a = world.add_phone("a", ("10.1.0.2", 4720), nat=world.add_nat("198.51.100.1"), seeds=[r])
    ...
    world.run_for(10.0)
    a.handle(Dial(target=b.number))
    assert world.run_until(lambda: ..., timeout=20.0), world.sim.trace_tail()
"""

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace

from peerline.proto.identity import Identity
from peerline.proto.phone import LanSettings, PhoneConfig, PhoneCore, PhoneState, Surroundings
from peerline.types import Addr

from .codec import sim_codecs, speech_frame
from .lan import LanSegment
from .nat import Nat, NatKind
from .network import LinkProfile, Network
from .numbers import sim_number
from .phone import SimPhone
from .simulator import Simulator

PORT = 4720


class PhoneWorld:
    def __init__(
        self,
        seed: int,
        *,
        link: LinkProfile | None = None,
        trace: bool = False,
    ) -> None:
        self.seed = seed
        self.sim = Simulator(seed, Network(link or LinkProfile(latency_s=0.02)), trace=trace)
        self.phones: dict[str, SimPhone] = {}

    def identity(self, name: str) -> Identity:
        return Identity.from_seed(
            hashlib.blake2b(f"peerline-sim/{self.seed}/{name}".encode(), digest_size=32).digest()
        )

    def add_nat(
        self, public_host: str, kind: NatKind = "symmetric", *, flow_timeout_s: float | None = None
    ) -> Nat:
        return self.sim.add_nat(Nat(public_host, kind, flow_timeout_s=flow_timeout_s))

    def add_lan(self, **kwargs: float) -> LanSegment:
        return LanSegment(self.sim, **kwargs)

    def add_phone(
        self,
        name: str,
        addr: Addr,
        *,
        member: bool | None = True,
        nat: Nat | None = None,
        seeds: Sequence[SimPhone] = (),
        config: PhoneConfig | None = None,
        lan: LanSegment | None = None,
        extension: str | None = None,
        state: PhoneState | None = None,
        talker: Callable[[int], bytes] | None = None,
        start: bool = True,
    ) -> SimPhone:
        """A phone at ``addr`` (private behind ``nat``), joining through ``seeds``. ``member``:
        a supernode (True, the default), a client behind NAT (False), or decided by
        reachability (None)."""
        if name in self.phones:
            raise ValueError(f"there is already a phone {name!r}")
        identity = self.identity(name)
        base = config or PhoneConfig()
        config = replace(
            base,
            overlay=replace(base.overlay, member=member),
            seeds=base.seeds + tuple((s.key, s.addr) for s in seeds),
            port_mapping=False,
            lan=replace(base.lan or LanSettings(), extension=extension)
            if lan is not None
            else base.lan,
        )
        core = PhoneCore(
            identity=identity,
            number=sim_number(identity.public_key),
            rng=self.sim.node_rng(name),
            codecs=sim_codecs,
            config=config,
            state=state,
        )
        phone = SimPhone(
            name, core, sim=self.sim, addr=addr, lan=lan, talker=talker or speech_frame
        )
        self.sim.add_node(addr, phone, nat=nat)
        self.phones[name] = phone
        if start:
            phone.start(lan_port=addr[1] if lan is not None else None)
        return phone

    def move(self, phone: SimPhone, addr: Addr) -> None:
        """``phone`` gets a new address (DHCP, another network) and notices, as the daemon's
        address watcher does: it tells its peers and publishes again."""
        self.sim.move_node(phone.addr, addr)
        phone.addr = addr
        phone.moved(Surroundings(host=(addr,), own=(addr,), bound=(addr,)))

    def run_for(self, dt: float) -> None:
        self.sim.run_for(dt)

    def run_until(self, pred: Callable[[], bool], *, timeout: float) -> bool:
        return self.sim.run_until_predicate(pred, timeout)

    def digest(self) -> str:
        return self.sim.trace_digest()
