"""Default gateway from /proc/net/route (runtime.gateway): where NAT-PMP requests go."""

from pathlib import Path

from peerline.runtime.gateway import DefaultGateway, parse_default_gateway, read_default_gateway

HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
# Captured on a little-endian Debian host: default via 192.0.2.1 on eth0.
HOST = HEADER + (
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)


def test_the_default_route_via_a_gateway_is_found() -> None:
    assert parse_default_gateway(HOST) == DefaultGateway(
        address="192.0.2.1", interface="eth0", metric=0
    )


def test_addresses_are_host_order_words() -> None:
    big_endian = HEADER + "eth0\t00000000\tC0000201\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    gw = parse_default_gateway(big_endian, byteorder="big")
    assert gw is not None and gw.address == "192.0.2.1"


def test_the_lowest_metric_wins_and_other_routes_are_ignored() -> None:
    text = HEADER + (
        "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        "eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        "eth1\t00000000\t0200000A\t0001\t0\t0\t0\t00000000\t0\t0\t0\n"  # no RTF_GATEWAY
        "eth2\t00000000\t0300000A\t0002\t0\t0\t0\t00000000\t0\t0\t0\n"  # not up
        "eth3\t0000000A\t0400000A\t0003\t0\t0\t0\t000000FF\t0\t0\t0\n"  # not default
    )
    assert parse_default_gateway(text) == DefaultGateway(
        address="10.0.0.1", interface="eth0", metric=100
    )


def test_no_default_route_or_garbage_gives_none() -> None:
    assert parse_default_gateway("") is None
    assert parse_default_gateway(HEADER) is None
    junk = HEADER + "eth0 zz 010200C0 0003 0 0 0 00000000\nshort line\n" + "x\t" * 20 + "\n"
    assert parse_default_gateway(junk) is None
    huge = HEADER + "eth0\t00000000\t1010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    assert parse_default_gateway(huge) is None


def test_reading_a_missing_table_gives_none(tmp_path: Path) -> None:
    assert read_default_gateway(tmp_path / "nope") is None
    (tmp_path / "route").write_text(HOST)
    gw = read_default_gateway(tmp_path / "route")
    assert gw is not None and gw.interface == "eth0"
