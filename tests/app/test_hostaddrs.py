"""Where the daemon tells the phone core it is (peerline.app.hostaddrs.describe), from captured
routing tables (``/proc/net/route``) and interface lists (as ``read_interfaces`` gives them),
and what the core then decides about a port mapping (``mapping_source``; operator.md §5.3).
"""

import pytest

from peerline.app.hostaddrs import describe, host_candidates
from peerline.proto.phone.reach import mapping_source
from peerline.runtime.gateway import parse_default_gateway
from peerline.types import Addr

HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"

# A laptop on Wi-Fi with Docker: default via 192.168.1.1 on wlan0.
LAPTOP_ROUTES = HEADER + (
    "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
    "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
    "wlan0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0\n"
)
LAPTOP = {
    "lo": ["127.0.0.1/8", "::1/128"],
    "wlan0": ["192.168.1.23/24", "2001:db8:1::23/64", "fe80::1c2:3ff:fe04:506/64"],
    "docker0": ["172.17.0.1/16"],
}

# The phone host of tests/app/test_loopback_demo.py: eth0 to the lab router (default via
# 10.1.0.1), and a second interface, side, with 10.99.0.2/24.
LAB_ROUTES = HEADER + (
    "eth0\t00000000\t0100010A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t0000010A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "side\t0000630A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)
LAB = {"lo": ["127.0.0.1/8"], "eth0": ["10.1.0.2/24"], "side": ["10.99.0.2/24"]}

# A phone on tests/app/netns_lan.py's bridge: an address, no route out.
LAN_ONLY_ROUTES = HEADER + "eth0\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
LAN_ONLY = {"lo": ["127.0.0.1/8"], "eth0": ["10.77.0.2/24"]}


@pytest.mark.parametrize(
    ("routes", "interfaces", "bind", "source"),
    [
        (LAPTOP_ROUTES, LAPTOP, "0.0.0.0", ("192.168.1.23", 4801)),
        (LAPTOP_ROUTES, LAPTOP, "192.168.1.23", ("192.168.1.23", 4801)),
        (LAPTOP_ROUTES, LAPTOP, "127.0.0.1", None),  # the README's demo
        (LAPTOP_ROUTES, LAPTOP, "172.17.0.1", None),  # Docker's bridge, not the router's link
        (LAB_ROUTES, LAB, "0.0.0.0", ("10.1.0.2", 4801)),
        (LAB_ROUTES, LAB, "10.1.0.2", ("10.1.0.2", 4801)),
        (LAB_ROUTES, LAB, "10.99.0.2", None),
        (LAB_ROUTES, LAB, "127.0.0.1", None),
        (LAN_ONLY_ROUTES, LAN_ONLY, "0.0.0.0", None),  # no gateway to ask
    ],
)
def test_a_phone_asks_only_for_the_address_it_has_on_the_routers_link(
    routes: str, interfaces: dict[str, list[str]], bind: str, source: Addr | None
) -> None:
    where = describe([(bind, 4801)], interfaces=interfaces, gateway=parse_default_gateway(routes))
    assert mapping_source(where) == source


def test_the_core_is_told_the_gateway_and_the_ipv4_addresses_of_its_interface() -> None:
    where = describe(
        [("0.0.0.0", 4801), ("::", 4801)],
        interfaces=LAPTOP,
        gateway=parse_default_gateway(LAPTOP_ROUTES),
    )
    assert where.gateway == "192.168.1.1"
    assert where.gateway_link == ("192.168.1.23/24",)
    assert where.host == (
        ("192.168.1.23", 4801),
        ("172.17.0.1", 4801),
        ("2001:db8:1::23", 4801),
    )
    assert ("127.0.0.1", 4801) in where.own


def test_an_ipv6_only_phone_is_told_no_gateway() -> None:
    where = describe(
        [("::", 4801)], interfaces=LAPTOP, gateway=parse_default_gateway(LAPTOP_ROUTES)
    )
    assert where.gateway is None and where.gateway_link == ()


def test_a_gateway_on_an_interface_without_ipv4_gives_an_empty_link() -> None:
    routes = HEADER + "ppp0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    where = describe([("0.0.0.0", 4801)], interfaces=LAPTOP, gateway=parse_default_gateway(routes))
    assert where.gateway == "192.168.1.1" and where.gateway_link == ()
    assert mapping_source(where) is None


def test_a_wildcard_expands_to_every_address_but_loopback_and_link_local() -> None:
    assert host_candidates([("0.0.0.0", 1), ("::", 2), ("10.1.0.2", 3)], LAPTOP) == [
        ("192.168.1.23", 1),
        ("172.17.0.1", 1),
        ("2001:db8:1::23", 2),
        ("10.1.0.2", 3),
    ]
