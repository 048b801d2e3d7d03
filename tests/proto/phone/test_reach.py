"""When a phone asks its router for a port mapping (``mapping_source`` in
peerline.proto.phone.reach; protocol.md §9.17, operator.md §5.3).

The router maps the port to the source address of the request, and a request to the default
gateway leaves by the gateway's interface; so the phone asks only for an address it is reached
at there: a bound IPv4 address (with a wildcard bind, any address) on the gateway's interface,
in the gateway's subnet, private or in the carriers' range. Loopback never asks.
"""

import pytest

from peerline.proto.phone import Surroundings
from peerline.proto.phone.reach import mapping_source
from peerline.types import Addr

PORT = 4720


def where(bound: str, link: tuple[str, ...], gateway: str | None = "192.168.1.1") -> Surroundings:
    bound_addr = [(bound, PORT)]
    return Surroundings(
        host=tuple(bound_addr), own=(), bound=tuple(bound_addr), gateway=gateway, gateway_link=link
    )


LAN = ("192.168.1.23/24",)


@pytest.mark.parametrize(
    ("surroundings", "source"),
    [
        # a wildcard bind: the gateway interface's address
        (where("0.0.0.0", LAN), ("192.168.1.23", PORT)),
        # bound to that address
        (where("192.168.1.23", LAN), ("192.168.1.23", PORT)),
        # the README demo: bound to loopback, never
        (where("127.0.0.1", LAN), None),
        # bound to another interface's address (docker0): the request would leave by the
        # gateway's interface with 172.17.0.1, a port mapped for an address not reached there
        (where("172.17.0.1", LAN), None),
        # a carrier's NAT (RFC 6598 shared space)
        (where("0.0.0.0", ("100.64.3.7/10",), "100.64.0.1"), ("100.64.3.7", PORT)),
        # a public address on the link: nothing to map
        (where("0.0.0.0", ("81.2.69.142/24",), "81.2.69.1"), None),
        # the gateway is not in the address's subnet (an on-link route to a /32 address)
        (where("0.0.0.0", ("10.0.0.5/32",), "10.0.0.1"), None),
        # a second subnet on the gateway's interface that does not hold the gateway
        (where("10.5.0.2", ("192.168.1.23/24", "10.5.0.2/24")), None),
        # a link-local address only
        (where("0.0.0.0", ("169.254.3.4/16",), "169.254.0.1"), None),
        # no default gateway, or none on record
        (where("0.0.0.0", LAN, None), None),
        (where("0.0.0.0", ()), None),
        # IPv6 only
        (where("::", LAN), None),
    ],
)
def test_a_mapping_is_asked_only_for_an_address_on_the_gateways_link(
    surroundings: Surroundings, source: Addr | None
) -> None:
    assert mapping_source(surroundings) == source


def test_a_wildcard_bind_asks_for_the_address_in_the_gateways_subnet() -> None:
    link = ("81.2.69.142/24", "192.168.1.23/24")
    assert mapping_source(where("0.0.0.0", link)) == ("192.168.1.23", PORT)


def test_the_ipv4_socket_is_the_one_that_asks() -> None:
    both = Surroundings(
        host=(),
        own=(),
        bound=(("::", 4801), ("0.0.0.0", 4800)),
        gateway="192.168.1.1",
        gateway_link=LAN,
    )
    assert mapping_source(both) == ("192.168.1.23", 4800)


def test_malformed_surroundings_ask_nothing() -> None:
    assert mapping_source(where("0.0.0.0", LAN, "router.lan")) is None
    assert mapping_source(where("0.0.0.0", ("192.168.1.23/99",))) is None
    assert mapping_source(where("localhost", LAN)) is None
