"""The NAT recipes of netlab.nat, measured for real: each router must behave exactly as its
NatBehaviour says (RFC 4787 terms), classified RFC 5780 §4 style by netlab.probe.

One module-scoped lab holds two public "STUN" servers and, for every behaviour, a router with
hairpinning off and one with it on (two hosts each), double NATs, and short-timeout routers.
docs/nat.md records the recipes and these results.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from netlab import Filtering, Host, Lab, Mapping, NatBehaviour, Router
from netlab.plugin import lab_or_skip
from netlab.probe import Servers, hairpin, reaches

pytestmark = pytest.mark.netns

SHORT_TIMEOUT_S = 2
EIM_BEHAVIOURS = [n for n in NatBehaviour if n.mapping is Mapping.ENDPOINT_INDEPENDENT]


@dataclass
class World:
    lab: Lab
    servers: Servers
    #: (behaviour, hairpin) -> router and its two hosts
    nats: dict[tuple[NatBehaviour, bool], tuple[Router, Host, Host]] = field(default_factory=dict)
    #: behaviour -> router with SHORT_TIMEOUT_S mappings and its host
    short: dict[NatBehaviour, tuple[Router, Host]] = field(default_factory=dict)
    #: carrier behaviour -> host behind a port-restricted home router behind that carrier
    double: dict[NatBehaviour, Host] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with lab_or_skip() as lab:
        w = World(lab=lab, servers=Servers(lab.host("a"), lab.host("b")))
        for i, nat in enumerate(NatBehaviour):
            for hp in (False, True):
                tag = f"{i}{'h' if hp else 'n'}"
                router = lab.router(f"r{tag}", nat=nat, hairpin=hp)
                w.nats[nat, hp] = (
                    router,
                    lab.host(f"x{tag}", behind=router),
                    lab.host(f"y{tag}", behind=router),
                )
            short = lab.router(f"t{i}", nat=nat, udp_timeout_s=SHORT_TIMEOUT_S)
            w.short[nat] = (short, lab.host(f"th{i}", behind=short))
        for i, carrier_nat in enumerate((NatBehaviour.SYMMETRIC, NatBehaviour.PORT_RESTRICTED)):
            carrier = lab.router(f"cgn{i}", nat=carrier_nat, carrier=True)
            home = lab.router(f"home{i}", nat=NatBehaviour.PORT_RESTRICTED, behind=carrier)
            w.double[carrier_nat] = lab.host(f"dh{i}", behind=home)
        yield w


ALL = [(nat, hp) for nat in NatBehaviour for hp in (False, True)]
IDS = [f"{nat.name.lower()}-hairpin-{'on' if hp else 'off'}" for nat, hp in ALL]


@pytest.mark.parametrize(("nat", "hp"), ALL, ids=IDS)
def test_recipe_mapping_is_the_documented_one(world: World, nat: NatBehaviour, hp: bool) -> None:
    """One inside socket to a:3478, a:3479 and b:3478 (RFC 5780 §4.3)."""
    router, inside, _ = world.nats[nat, hp]
    mapping, seen = world.servers.mapping(inside)
    assert mapping is nat.mapping, seen
    assert {addr for addr, _ in seen} == {router.addr}


@pytest.mark.parametrize(("nat", "hp"), ALL, ids=IDS)
def test_recipe_filtering_is_the_documented_one(world: World, nat: NatBehaviour, hp: bool) -> None:
    """After the inside sent to a:3478, who else reaches the mapping (RFC 5780 §4.4)."""
    _, inside, _ = world.nats[nat, hp]
    filtering, raw = world.servers.filtering(inside)
    assert filtering is nat.filtering, raw


@pytest.mark.parametrize(("nat", "hp"), ALL, ids=IDS)
def test_recipe_hairpinning_works_exactly_when_switched_on(
    world: World, nat: NatBehaviour, hp: bool
) -> None:
    """x sends to y's mapping on the same NAT (RFC 4787 §6): with hairpinning on it arrives
    from x's external address (REQ-9) and y's answer gets back; off, nothing arrives."""
    router, x, y = world.nats[nat, hp]
    result = hairpin(world.servers, x, y)
    assert result.works is hp, result
    if hp:
        assert result.source is not None and result.source[0] == router.addr
        # EIM: the very mapping the server saw; APDM: a fresh one for the new destination.
        assert result.same_mapping is (nat.mapping is Mapping.ENDPOINT_INDEPENDENT), result
    else:
        assert not result.delivered, result


@pytest.mark.parametrize("nat", EIM_BEHAVIOURS, ids=[n.name.lower() for n in EIM_BEHAVIOURS])
def test_eim_holds_for_two_hosts_using_the_same_port(world: World, nat: NatBehaviour) -> None:
    """Two phones on one LAN, both on port 4720 (the default). x talks to a, y to b, then
    each to the other server: each keeps one mapping for every destination, the two differ
    (no port overloading, RFC 4787 REQ-3), and each leads to its own host. Plain Linux
    masquerade gives y port 4720 too (towards b), then moves x to a new port towards b."""
    _, x, y = world.nats[nat, False]
    srv = world.servers
    sx, sy = x.udp(4720), y.udp(4720)
    x_to_a, y_to_b = srv.reflect(sx, srv.a1), srv.reflect(sy, srv.b1)
    x_to_b, y_to_a = srv.reflect(sx, srv.b1), srv.reflect(sy, srv.a1)
    assert x_to_a == x_to_b and y_to_a == y_to_b and x_to_a != y_to_a
    assert reaches(srv.a1, x_to_a, sx) is not None
    assert reaches(srv.b1, y_to_b, sy) is not None


@pytest.mark.parametrize(
    ("carrier", "mapping"),
    [
        (NatBehaviour.SYMMETRIC, Mapping.ADDRESS_AND_PORT_DEPENDENT),
        (NatBehaviour.PORT_RESTRICTED, Mapping.ENDPOINT_INDEPENDENT),
    ],
    ids=["symmetric-carrier", "eim-carrier"],
)
def test_double_nat_behaves_as_the_composition_of_both(
    world: World, carrier: NatBehaviour, mapping: Mapping
) -> None:
    """A port-restricted home NAT behind a carrier NAT (100.64.0.0/10 between): from outside
    the pair has the carrier's mapping and the stricter (port-dependent) filtering."""
    inside = world.double[carrier]
    assert world.servers.mapping(inside)[0] is mapping
    assert world.servers.filtering(inside)[0] is Filtering.ADDRESS_AND_PORT_DEPENDENT


def test_mappings_expire_after_the_udp_timeout_unless_kept_alive(world: World) -> None:
    """Routers with SHORT_TIMEOUT_S mappings: an idle mapping is gone after the timeout (the
    server can no longer reach it); one refreshed by outbound keepalives every timeout/4 is
    still there, filtering as before (full cone: a server never contacted still gets in)."""
    srv = world.servers
    idle, kept = {}, {}
    for nat, (_, host) in world.short.items():
        si, sk = host.udp(), host.udp()
        idle[nat] = (si, srv.reflect(si, srv.a1))
        kept[nat] = (sk, srv.reflect(sk, srv.a1))
    start = time.monotonic()
    while time.monotonic() - start < SHORT_TIMEOUT_S + 1.0:
        for sock, _ in kept.values():
            sock.sendto(b"keepalive", srv.addr(srv.a1))
        time.sleep(SHORT_TIMEOUT_S / 4)
    # Positive checks first: they answer at once, so the kept mappings stay fresh.
    kept_alive = {
        nat: reaches(srv.a1, mapped, sock) is not None for nat, (sock, mapped) in kept.items()
    }
    full_cone_sock, full_cone_mapped = kept[NatBehaviour.FULL_CONE]
    stranger_in = reaches(srv.b1, full_cone_mapped, full_cone_sock) is not None
    idle_alive = {
        nat: reaches(srv.a1, mapped, sock) is not None for nat, (sock, mapped) in idle.items()
    }
    assert kept_alive == dict.fromkeys(NatBehaviour, True)
    assert stranger_in
    assert idle_alive == dict.fromkeys(NatBehaviour, False)
    # After expiry a symmetric NAT picks a new random port for the same destination.
    sock, old = idle[NatBehaviour.SYMMETRIC]
    assert srv.reflect(sock, srv.a1) != old


def test_a_sequential_symmetric_nat_hands_out_consecutive_ports(world: World) -> None:
    """The port-prediction case: address-and-port-dependent mapping and filtering, but each
    new destination gets the next external port, so a peer can guess the one it will see."""
    lab, servers = world.lab, world.servers
    router = lab.router("seq", nat=NatBehaviour.SYMMETRIC, sequential=True)
    inside = lab.host("seqh", behind=router)
    mapping, seen = servers.mapping(inside)
    assert mapping is Mapping.ADDRESS_AND_PORT_DEPENDENT, seen
    ports = [port for _, port in seen]
    assert ports == list(range(ports[0], ports[0] + 3)), ports
    verdict, raw = servers.filtering(inside)
    assert verdict is Filtering.ADDRESS_AND_PORT_DEPENDENT, raw
