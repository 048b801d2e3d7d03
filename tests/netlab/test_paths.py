"""The expected-path table of docs/nat.md ("the plan", netlab.plan), reproduced in the lab.

For each of the 21 pairs of {public, full cone, address-restricted, port-restricted,
symmetric, double NAT} two hosts try a plain simultaneous hole punch (netlab.probe.punch:
server-reflexive addresses plus peer-reflexive learning, no port prediction or birthday
probing). "direct" pairs must connect; "relay" pairs must not, because that is what the NAT
layer's relay fallback (or its many-probe strategy) will have to handle. The double NAT of
the table is a port-restricted home NAT behind a symmetric carrier NAT; the other variants
(an RFC 6888 carrier with endpoint-independent mapping, two homes behind one carrier) are
checked separately.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from netlab import Lab, NatBehaviour, Node
from netlab.plan import EXPECTED, NATS
from netlab.plugin import lab_or_skip
from netlab.probe import Servers, punch

pytestmark = pytest.mark.netns


@dataclass
class World:
    lab: Lab
    servers: Servers
    #: kind -> two hosts of that kind (on different NATs, and different carriers)
    hosts: dict[str, list[Node]] = field(default_factory=dict)
    #: variant -> two hosts behind home NATs, for test_double_nat_variants
    variants: dict[str, tuple[Node, Node]] = field(default_factory=dict)


def _double(lab: Lab, tag: str, carrier_nat: NatBehaviour, homes: int) -> list[Node]:
    carrier = lab.router(f"c{tag}", nat=carrier_nat, carrier=True, hairpin=True)
    hosts: list[Node] = []
    for i in range(homes):
        home = lab.router(f"h{tag}{i}", nat=NatBehaviour.PORT_RESTRICTED, behind=carrier)
        hosts.append(lab.host(f"p{tag}{i}", behind=home))
    return hosts


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with lab_or_skip() as lab:
        w = World(lab=lab, servers=Servers(lab.host("a"), lab.host("b")))
        w.hosts["public"] = [lab.host("pub0"), lab.host("pub1")]
        for k, (kind, nat) in enumerate(NATS.items()):
            w.hosts[kind] = []
            for i in range(2):
                router = lab.router(f"n{k}{i}", nat=nat)
                w.hosts[kind].append(lab.host(f"h{k}{i}", behind=router))
        w.hosts["double-nat"] = [
            _double(lab, "s0", NatBehaviour.SYMMETRIC, 1)[0],
            _double(lab, "s1", NatBehaviour.SYMMETRIC, 1)[0],
        ]
        e0, e1 = (
            _double(lab, "e0", NatBehaviour.PORT_RESTRICTED, 1)[0],
            _double(lab, "e1", NatBehaviour.PORT_RESTRICTED, 1)[0],
        )
        w.variants["eim-carriers"] = (e0, e1)
        s0, s1 = _double(lab, "ss", NatBehaviour.SYMMETRIC, 2)
        w.variants["same-symmetric-carrier"] = (s0, s1)
        q0, q1 = _double(lab, "se", NatBehaviour.PORT_RESTRICTED, 2)
        w.variants["same-eim-carrier"] = (q0, q1)
        yield w


@pytest.mark.parametrize(
    ("pair", "path"), list(EXPECTED.items()), ids=[f"{x}+{y}" for x, y in EXPECTED]
)
def test_pair_gets_the_planned_path(world: World, pair: tuple[str, str], path: str) -> None:
    x_kind, y_kind = pair
    x = world.hosts[x_kind][0]
    y = world.hosts[y_kind][1]
    result = punch(world.servers, x, y)
    assert ("direct" if result.direct else "relay") == path, result


@pytest.mark.parametrize(
    ("variant", "path"),
    [
        ("eim-carriers", "direct"),
        ("same-symmetric-carrier", "relay"),
        ("same-eim-carrier", "direct"),
    ],
)
def test_double_nat_variants(world: World, variant: str, path: str) -> None:
    """Behind RFC 6888 carriers (EIM) double NAT punches like port-restricted cone; two homes
    behind one carrier connect through the carrier's hairpinning only if it maps
    endpoint-independently."""
    x, y = world.variants[variant]
    result = punch(world.servers, x, y)
    assert ("direct" if result.direct else "relay") == path, result
