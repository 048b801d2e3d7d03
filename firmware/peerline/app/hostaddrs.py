"""This machine's addresses: what the phone core is told about where it lives.

The only code that asks the operating system which addresses and default gateway the host has
(``ifaddr``, ``/proc/net/route``). The core decides what to do with them (publish, ask the
router for a port mapping, tell peers it moved).
"""

import ipaddress

from peerline.proto.phone import Surroundings
from peerline.runtime.gateway import read_default_gateway
from peerline.types import Addr


def host_candidates(bound: list[Addr]) -> list[Addr]:
    """The addresses others can try to reach us at: the bound ones, wildcards expanded."""
    out: list[Addr] = []
    for host, port in bound:
        ip = ipaddress.ip_address(host)
        if not ip.is_unspecified:
            out.append((host, port))
            continue
        for local in interface_addresses(ip.version):
            out.append((local, port))
    return out


def interface_addresses(version: int) -> list[str]:
    """This machine's addresses of one IP version, loopback and link-local left out."""
    import ifaddr  # noqa: PLC0415 - only needed with a wildcard bind

    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                parsed = ipaddress.ip_address(text)
            except ValueError:
                continue
            if parsed.version == version and not parsed.is_link_local and not parsed.is_loopback:
                found.append(str(parsed))
    return found


def surroundings(bound: list[Addr], *, port_mapping: bool) -> Surroundings:
    """Where the phone is, for ``PhoneCore.start`` / ``set_surroundings``."""
    host = host_candidates(bound)
    # Phones on this very machine see us at 127.0.0.1: that is our own address too.
    own = host + [
        ("127.0.0.1", port)
        for h, port in bound
        if h in ("0.0.0.0", "127.0.0.1")  # noqa: S104 - matching, not binding
    ]
    gateway = None
    if port_mapping and any(":" not in h for h, _ in bound):
        found = read_default_gateway()
        gateway = found.address if found is not None else None
    return Surroundings(host=tuple(host), own=tuple(own), bound=tuple(bound), gateway=gateway)


def watches_addresses(bound: list[Addr]) -> bool:
    """A phone bound to a wildcard address must notice its addresses changing."""
    return any(ipaddress.ip_address(h).is_unspecified for h, _ in bound)
