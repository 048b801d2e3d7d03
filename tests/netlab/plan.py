"""The expected path per pair of NAT situations: the plan the NAT layer is tested against.

``EXPECTED`` is the table of docs/nat.md §5 (tests/netlab/test_docs.py keeps the two equal;
tests/netlab/test_paths.py reproduces it in the lab with a plain hole punch). "direct" means
a simultaneous punch with server-reflexive and peer-reflexive addresses connects; "relay"
means it cannot, and only a relay or a many-probe ("birthday") strategy will.
"""

from __future__ import annotations

import itertools

from .nat import NatBehaviour

KINDS = (
    "public",
    "full-cone",
    "address-restricted",
    "port-restricted",
    "symmetric",
    "double-nat",
)
#: The NAT behind each kind of the table; double NAT is a port-restricted home NAT behind a
#: symmetric carrier NAT.
NATS = {
    "full-cone": NatBehaviour.FULL_CONE,
    "address-restricted": NatBehaviour.ADDRESS_RESTRICTED,
    "port-restricted": NatBehaviour.PORT_RESTRICTED,
    "symmetric": NatBehaviour.SYMMETRIC,
}
_RELAY = {
    ("port-restricted", "symmetric"),
    ("port-restricted", "double-nat"),
    ("symmetric", "symmetric"),
    ("symmetric", "double-nat"),
    ("double-nat", "double-nat"),
}
#: (kind, kind) -> "direct" | "relay" for the 21 unordered pairs, in KINDS order.
EXPECTED: dict[tuple[str, str], str] = {
    pair: "relay" if pair in _RELAY else "direct"
    for pair in itertools.combinations_with_replacement(KINDS, 2)
}
