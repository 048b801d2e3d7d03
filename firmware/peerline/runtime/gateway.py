"""The IPv4 default gateway on Linux, from ``/proc/net/route``: where NAT-PMP requests go.

``parse_default_gateway`` is a pure function of the file's text (tested on captured
tables); ``read_default_gateway`` is the thin reader. On hosts without the file (not Linux)
there is no gateway to ask, which the caller treats like a router without NAT-PMP.
"""

import ipaddress
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROUTE_FILE = Path("/proc/net/route")
RTF_UP = 0x0001
RTF_GATEWAY = 0x0002
_MAX_LINES = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class DefaultGateway:
    address: str
    "The router's IPv4 address, e.g. '192.168.1.1'."
    interface: str
    metric: int


def parse_default_gateway(
    text: str, *, byteorder: Literal["little", "big"] = "little"
) -> DefaultGateway | None:
    """The default route with the lowest metric that goes via a gateway, or None.

    The kernel prints addresses as host-order hex words (``0100A8C0`` is 192.168.0.1 on a
    little-endian machine), hence ``byteorder``. Lines that do not parse are skipped.
    """
    best: DefaultGateway | None = None
    for line in text.splitlines()[1:_MAX_LINES]:
        fields = line.split()
        if len(fields) < 8:
            continue
        iface, dest, gateway, flags, metric, mask = (
            fields[0],
            fields[1],
            fields[2],
            fields[3],
            fields[6],
            fields[7],
        )
        try:
            dest_n, gw_n, flags_n, mask_n = (int(v, 16) for v in (dest, gateway, flags, mask))
            metric_n = int(metric)
            if max(dest_n, gw_n, mask_n) > 0xFFFFFFFF:
                continue
        except ValueError:
            continue
        if dest_n or mask_n or flags_n & (RTF_UP | RTF_GATEWAY) != RTF_UP | RTF_GATEWAY:
            continue
        address = str(ipaddress.IPv4Address(gw_n.to_bytes(4, byteorder)))
        if best is None or metric_n < best.metric:
            best = DefaultGateway(address=address, interface=iface, metric=metric_n)
    return best


def read_default_gateway(path: Path = ROUTE_FILE) -> DefaultGateway | None:
    """``parse_default_gateway`` of this host's routing table; None if it cannot be read."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return parse_default_gateway(text, byteorder=sys.byteorder)
