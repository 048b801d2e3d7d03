"""How others reach this phone: its addresses, its directory record, STUN and a port mapping.

``Reachability`` is the part of the phone core that keeps what this phone publishes true: the
host's addresses (from the shell), how overlay peers see it (reflexive), a router's NAT-PMP
mapping, its relays; it signs a new record whenever one of them changes, and offers the same
addresses in introductions. It also asks STUN servers and classifies the NAT (RFC 5780) once at
start, for status. The core routes the related events here.
"""

import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from peerline.proto.nat.classify import NatClassifier
from peerline.proto.nat.portmap import (
    MappingAcquired,
    MappingFailed,
    MappingLost,
    MappingReleased,
    PortMapper,
)
from peerline.proto.nat.stun_client import BindingFailed, BindingResult
from peerline.proto.overlay import events as overlay_events
from peerline.types import Addr
from peerline.wire.natpmp import NATPMP_PORT
from peerline.wire.record import Presence

from . import events as ev
from .candidates import MAX_PUBLISHED, own_candidates
from .config import Surroundings

if TYPE_CHECKING:
    from .core import PhoneCore

log = logging.getLogger("peerline.phone")

CARRIER_NAT = ipaddress.ip_network("100.64.0.0/10")
"""Shared address space (RFC 6598): a phone there sits behind a carrier's NAT."""


def mapping_source(where: Surroundings) -> Addr | None:
    """The address a port mapping would forward to, or None: then the phone asks for none.

    A router maps the port to the source address of the request, and a request to the default
    gateway leaves by the gateway's interface. So the phone asks only for an IPv4 address a
    socket is bound to (with a wildcard bind, an address of the gateway's interface) that is
    on the gateway's interface, in a subnet that holds the gateway (``gateway_link``), and
    private (RFC 1918) or in the carriers' shared range (``CARRIER_NAT``), never loopback or
    link-local. A phone bound to loopback never asks; nor does one bound to an address of
    another interface, whose request would leave with an address it is not reached at.
    """
    if where.gateway is None:
        return None
    try:
        gateway = ipaddress.IPv4Address(where.gateway)
        link = [ipaddress.IPv4Interface(a) for a in where.gateway_link if ":" not in a]
    except ValueError:
        return None
    usable = [
        a.ip
        for a in link
        if gateway in a.network
        and (a.ip.is_private or a.ip in CARRIER_NAT)
        and not (a.ip.is_loopback or a.ip.is_link_local or a.ip.is_unspecified)
    ]
    for host, port in where.bound:
        if ":" in host:
            continue
        try:
            ip = ipaddress.IPv4Address(host)
        except ValueError:
            continue
        for address in usable:
            if ip.is_unspecified or ip == address:
                return (str(address), port)
    return None


class Reachability:
    """See the module docstring. ``host`` is shared with the peer finder (updated in place)."""

    def __init__(self, core: "PhoneCore", host: list[Addr]) -> None:
        self.core = core
        self.host = host
        self.surroundings = Surroundings(host=(), own=(), bound=())
        self.presence = Presence.AVAILABLE
        self.forward_to: str | None = core.calls.forwarding.offline
        "Offline call forwarding, published in the record (callers follow it)."
        self.classifier: NatClassifier | None = None
        self.stun_results: dict[Addr, BindingResult | BindingFailed] = {}

    def set_presence(self, presence: Presence, now: float) -> None:
        """What the record says about taking calls (do not disturb): published at once."""
        self.presence = presence
        self.publish(now)

    def start(self, surroundings: Surroundings, *, now: float) -> None:
        self.take(surroundings, now)
        self.ask_stun(now)
        self.map_port(now)

    def take(self, surroundings: Surroundings, now: float) -> None:
        """Where the phone is now (``set_host_addresses`` tells the overlay, for its role)."""
        self.surroundings = surroundings
        self.host[:] = list(surroundings.host)
        self.core.overlay.set_host_addresses(list(surroundings.own), now=now)

    def candidates(self) -> list[tuple[Any, Addr]]:
        mapper = self.core.engine.portmap
        return own_candidates(
            mapped=mapper.external if mapper is not None else None,
            reflexive=self.core.overlay.reflexive,
            host=self.host,
        )

    def publish(self, now: float) -> None:
        """Sign and store this phone's record where it is now; introductions offer the same."""
        addresses = self.candidates()
        self.core.traversal.own_candidates = tuple(a for _, a in addresses)
        seq = self.core.overlay.publish(
            addresses=tuple(addresses[:MAX_PUBLISHED]),
            presence=self.presence,
            forward_to=self.forward_to,
            now=now,
        )
        self.core.emit(ev.RecordPublished(seq=seq))

    def ask_stun(self, now: float) -> None:
        """Ask every STUN server for our address; classify the NAT (RFC 5780) with the first."""
        bound = self.surroundings.bound
        servers = [
            server
            for server in self.core.config.stun_servers
            if any((":" in h) == (":" in server[0]) for h, _ in bound)
        ]
        for server in servers[1:]:
            self.core.stun.request(server, now=now)
        if servers:
            self.classifier = NatClassifier(self.core.stun, local=set(self.host))
            self.classifier.start(servers[0], now=now)

    def map_port(self, now: float) -> None:
        """Behind a router, reached at a private address on the router's link: ask it for a
        mapping by NAT-PMP (``mapping_source`` says when). A router without it never answers;
        that costs a few datagrams."""
        gateway = self.surroundings.gateway
        source = mapping_source(self.surroundings)
        if not self.core.config.port_mapping or gateway is None or source is None:
            return
        mapper = PortMapper((gateway, NATPMP_PORT), source[1], rng=self.core.rng)
        self.core.engine.portmap = mapper
        mapper.start(now=now)
        log.info("asking the router %s for a port mapping to %s:%d (NAT-PMP)", gateway, *source)

    def on_reflexive(self, event: overlay_events.ReflexiveAddressChanged, now: float) -> None:
        if event.addr in self.host:
            return
        self.core.emit(
            ev.NetworkChanged(
                aspect="reflexive",
                summary=f"overlay peers see this phone at {event.addr[0]}:{event.addr[1]}",
            )
        )
        self.publish(now)

    def on_role(self, event: overlay_events.RoleChanged, now: float) -> None:
        role = "supernode" if event.member else "client behind NAT"
        self.core.emit(ev.NetworkChanged(aspect="role", summary=f"overlay role: {role}"))

    def on_relays(self, event: overlay_events.RelaysChanged, now: float) -> None:
        summary = f"keeping a path open through {len(event.relays)} supernode(s)"
        self.core.emit(ev.NetworkChanged(aspect="relays", summary=summary))

    def on_portmap(
        self, event: MappingAcquired | MappingFailed | MappingLost | MappingReleased, now: float
    ) -> None:
        if isinstance(event, MappingAcquired):
            host, port = event.external
            summary = f"the router forwards {host}:{port} to this phone (NAT-PMP)"
            self.core.emit(ev.NetworkChanged(aspect="port_mapping", summary=summary))
            self.publish(now)
        elif isinstance(event, MappingLost):
            summary = f"port mapping lost ({event.reason})"
            self.core.emit(ev.NetworkChanged(aspect="port_mapping", summary=summary))
            self.publish(now)
        elif isinstance(event, MappingFailed):
            summary = f"no port mapping from the router ({event.reason})"
            self.core.emit(ev.NetworkChanged(aspect="port_mapping", summary=summary))

    def on_stun(self, event: BindingResult | BindingFailed, now: float) -> None:
        classifier = self.classifier
        if classifier is not None and classifier.result is None:
            behaviour = classifier.on_stun(event, now=now)
            if behaviour is not None:
                summary = f"NAT behaviour: {behaviour.as_dict()}"
                self.core.emit(ev.NetworkChanged(aspect="nat", summary=summary))
        # A success is what the server says about us; a failure is kept only if nothing better.
        if isinstance(event, BindingResult) or event.server not in self.stun_results:
            self.stun_results[event.server] = event
