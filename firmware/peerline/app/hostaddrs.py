"""This machine's addresses: what the phone core is told about where it lives.

The only code that asks the operating system which addresses and default gateway the host has
(``ifaddr``, ``/proc/net/route``): ``read_interfaces`` and ``read_default_gateway`` read,
``describe`` is a pure function of what they found (tested on captured tables). The core
decides what to do with it (publish, ask the router for a port mapping, tell peers it moved).
"""

import ipaddress
from collections.abc import Mapping, Sequence

from peerline.proto.phone import Surroundings
from peerline.runtime.gateway import DefaultGateway, read_default_gateway
from peerline.types import Addr

Interfaces = Mapping[str, Sequence[str]]
"""Each interface's addresses with their prefix length, by interface name, in the order the
system lists them: ``{"eth0": ["192.168.1.23/24", "fe80::1/64"], "lo": ["127.0.0.1/8"]}``."""


def read_interfaces() -> dict[str, list[str]]:
    """This machine's interfaces and their addresses (``Interfaces``), from ``ifaddr``."""
    import ifaddr  # noqa: PLC0415 - only needed with a wildcard bind or a gateway

    found: dict[str, list[str]] = {}
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                parsed = ipaddress.ip_interface(f"{text}/{ip.network_prefix}")
            except ValueError:
                continue
            found.setdefault(adapter.name, []).append(parsed.with_prefixlen)
    return found


def host_candidates(bound: list[Addr], interfaces: Interfaces) -> list[Addr]:
    """The addresses others can try to reach us at: the bound ones, wildcards expanded to
    every address of that IP version, loopback and link-local left out."""
    out: list[Addr] = []
    for host, port in bound:
        ip = ipaddress.ip_address(host)
        if not ip.is_unspecified:
            out.append((host, port))
            continue
        for local in interface_addresses(interfaces, ip.version):
            out.append((local, port))
    return out


def interface_addresses(interfaces: Interfaces, version: int) -> list[str]:
    """The addresses of one IP version in ``interfaces``, loopback and link-local left out."""
    found: list[str] = []
    for addresses in interfaces.values():
        for text in addresses:
            try:
                parsed = ipaddress.ip_interface(text).ip
            except ValueError:
                continue
            if parsed.version == version and not parsed.is_link_local and not parsed.is_loopback:
                found.append(str(parsed))
    return found


def describe(
    bound: list[Addr], *, interfaces: Interfaces, gateway: DefaultGateway | None
) -> Surroundings:
    """Where the phone is, from what the system said: its sockets' addresses (``bound``), the
    machine's interfaces and the IPv4 default route (None: none, or not to be asked)."""
    host = host_candidates(bound, interfaces)
    # Phones on this very machine see us at 127.0.0.1: that is our own address too.
    own = host + [
        ("127.0.0.1", port)
        for h, port in bound
        if h in ("0.0.0.0", "127.0.0.1")  # noqa: S104 - matching, not binding
    ]
    router: str | None = None
    link: tuple[str, ...] = ()
    if gateway is not None and any(":" not in h for h, _ in bound):
        router = gateway.address
        link = tuple(a for a in interfaces.get(gateway.interface, ()) if ":" not in a)
    return Surroundings(
        host=tuple(host), own=tuple(own), bound=tuple(bound), gateway=router, gateway_link=link
    )


def surroundings(bound: list[Addr], *, port_mapping: bool) -> Surroundings:
    """Where the phone is, for ``PhoneCore.start`` / ``set_surroundings``; the default route
    is read only with ``port_mapping`` and an IPv4 socket (the core decides whether to ask)."""
    gateway = None
    if port_mapping and any(":" not in h for h, _ in bound):
        gateway = read_default_gateway()
    needed = gateway is not None or watches_addresses(bound)
    interfaces = read_interfaces() if needed else {}
    return describe(bound, interfaces=interfaces, gateway=gateway)


def watches_addresses(bound: list[Addr]) -> bool:
    """A phone bound to a wildcard address must notice its addresses changing."""
    return any(ipaddress.ip_address(h).is_unspecified for h, _ in bound)
