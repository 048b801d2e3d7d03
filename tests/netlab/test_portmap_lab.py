"""PortMapper (proto.nat.portmap) against a real NAT-PMP gateway: Debian's miniupnpd in a
port-restricted lab router (netlab.miniupnpd).

The point: behind a port-restricted NAT nobody outside reaches a phone it has not sent to;
the mapping miniupnpd makes on request lets any outside host in, and the delete sent by
``release`` shuts that door again. The phone's socket is driven by a small blocking loop.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from netlab import Lab, NatBehaviour
from netlab.miniupnpd import Miniupnpd, available, start_miniupnpd
from netlab.probe import reaches
from peerline.proto.nat.portmap import (
    MappingAcquired,
    MappingLost,
    MappingReleased,
    PortMapEvent,
    PortMapper,
    PortMapState,
)
from peerline.runtime.gateway import parse_default_gateway
from peerline.sim.rng import SeededRng
from peerline.wire.natpmp import NATPMP_PORT

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not available(), reason="miniupnpd-nftables is not installed"),
]

PHONE_PORT = 40000


def drive(
    mapper: PortMapper,
    sock: socket.socket,
    until: Callable[[PortMapEvent], bool] | None,
    *,
    seconds: float = 10.0,
) -> list[PortMapEvent]:
    """Run the mapper on a real socket until an event satisfies ``until`` (an error if none
    does within ``seconds``), or, with ``until=None``, for ``seconds``; its events."""
    events: list[PortMapEvent] = []
    deadline = time.monotonic() + seconds
    while True:
        now = time.monotonic()
        for data, addr in mapper.datagrams_to_send(now=now):
            sock.sendto(data, addr)
        while (event := mapper.next_event()) is not None:
            events.append(event)
            if until is not None and until(event):
                return events
        if now > deadline:
            if until is None:
                return events
            raise AssertionError(f"no such event within {seconds} s: {events}")
        timer = mapper.get_timer()
        wait = deadline - now if timer is None else min(timer, deadline) - now
        sock.settimeout(max(wait, 0.001))
        try:
            data, src = sock.recvfrom(2048)
        except TimeoutError:
            now = time.monotonic()
            if timer is not None and now >= timer:
                mapper.handle_timer(now=now)
            continue
        mapper.receive_datagram(data, (src[0], src[1]), now=time.monotonic())


def acquired(event: PortMapEvent) -> bool:
    return isinstance(event, MappingAcquired)


def released(event: PortMapEvent) -> bool:
    return isinstance(event, MappingReleased)


def home_with_miniupnpd(lab: Lab, workdir: Path) -> tuple[Miniupnpd, socket.socket]:
    """A public host ``out``, a port-restricted router ``home`` running miniupnpd, and a
    phone behind it; returns the daemon and the phone's socket."""
    out = lab.host("out")
    home = lab.router("home", nat=NatBehaviour.PORT_RESTRICTED)
    phone = lab.host("phone", behind=home)
    daemon = start_miniupnpd(home, stun=out, workdir=workdir)
    return daemon, phone.udp(PHONE_PORT)


def test_a_mapping_lets_an_outside_host_through_a_port_restricted_nat_until_released(
    lab: Lab, tmp_path: Path
) -> None:
    daemon, phone_sock = home_with_miniupnpd(lab, tmp_path)
    home, out = daemon.router, lab.nodes["out"]
    router_door = (home.addr, PHONE_PORT)
    # Without a mapping, nobody outside gets in (the phone has sent to no one).
    assert reaches(out.udp(), router_door, phone_sock) is None

    # The phone finds its gateway as a real one would: in its own routing table.
    gateway = parse_default_gateway(lab.nodes["phone"].run(["cat", "/proc/net/route"]).stdout)
    assert gateway is not None and gateway.address == home.gateway
    mapper = PortMapper((gateway.address, NATPMP_PORT), PHONE_PORT, rng=SeededRng(1), lifetime=600)
    mapper.start(now=time.monotonic())
    events = drive(mapper, phone_sock, acquired)
    assert events == [MappingAcquired(external=router_door, lifetime=600, internal_port=PHONE_PORT)]
    assert mapper.external == router_door
    assert f"dnat ip to {lab.nodes['phone'].addr}:{PHONE_PORT}" in daemon.rules()

    # Any outside host, any port, reaches the phone at the mapped address now.
    early = out.udp()
    assert reaches(early, router_door, phone_sock) == (out.addr, early.getsockname()[1])

    mapper.release(now=time.monotonic())
    events = drive(mapper, phone_sock, released)
    assert events == [MappingReleased(confirmed=True)]
    assert mapper.state is PortMapState.RELEASED and mapper.get_timer() is None
    assert "dnat" not in daemon.rules()
    # A new outside flow is filtered again ...
    assert reaches(out.udp(), router_door, phone_sock) is None
    # ... but one that came in while the mapping existed lives on in conntrack until it
    # idles out (miniupnpd deletes the rule, not the flows it let in).
    assert reaches(early, router_door, phone_sock) is not None
    c = mapper.counters
    assert (c.dropped_malformed, c.dropped_wrong_source, c.dropped_unsolicited) == (0, 0, 0)


def test_renewal_keeps_the_mapping_and_a_gateway_restart_is_noticed_and_repaired(
    lab: Lab, tmp_path: Path
) -> None:
    """Lifetime 2 s: renewed every second. miniupnpd restarted without its state (a router
    reboot: epoch back to 0, mappings gone): the next renewal's epoch gives it away
    (RFC 6886 §3.6; the old epoch must be over 2 s, hence three renewals first), the client
    reports the loss, maps again after its random delay, and outside hosts get in again."""
    daemon, phone_sock = home_with_miniupnpd(lab, tmp_path)
    home, out = daemon.router, lab.nodes["out"]
    mapper = PortMapper(
        (home.gateway, NATPMP_PORT), PHONE_PORT, rng=SeededRng(2), lifetime=2, reset_jitter_s=0.5
    )
    mapper.start(now=time.monotonic())
    (first,) = drive(mapper, phone_sock, acquired)
    assert isinstance(first, MappingAcquired)

    # Renewals go by without an event: same address, same port.
    assert drive(mapper, phone_sock, None, seconds=3.5) == []
    assert mapper.counters.renewals == 3 and mapper.state is PortMapState.MAPPED
    assert mapper.counters.epoch_resets == 0

    daemon.restart()
    assert "dnat" not in daemon.rules()  # it forgot the mapping
    events = drive(mapper, phone_sock, acquired, seconds=5)
    assert events == [MappingLost(reason="gateway-reset"), first]
    assert mapper.counters.epoch_resets == 1
    assert reaches(out.udp(), first.external, phone_sock) is not None
    mapper.release(now=time.monotonic())
    assert drive(mapper, phone_sock, released) == [MappingReleased(confirmed=True)]
