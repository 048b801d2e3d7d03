"""Measure what a NAT does, RFC 5780 style, with UDP sockets made inside lab namespaces.

Two public servers stand in for a STUN server with two addresses (RFC 5780 §4): ``a`` with
ports 3478 and 3479, ``b`` with port 3478. Every probe carries a fresh token, and a receiver
ignores anything else, so late or stray datagrams never count.

- mapping (§4.3): one inside socket sends to a:3478, a:3479 and b:3478; the three source
  addresses the servers see say EIM (all equal), ADM (equal per server address) or APDM;
- filtering (§4.4): a fresh inside socket sends to a:3478; then b:3478 and a:3479 try to
  reach its mapping: EIF (both arrive), ADF (only a:3479) or APDF (neither);
- hairpinning (RFC 4787 §6): an inside host sends to another inside host's mapping; it
  works if the datagram arrives and its source is the sender's own mapping (REQ-9).
- mapping lifetime: ``mapping_alive`` after an idle gap or with keepalives.
"""

from __future__ import annotations

import os
import select
import socket
import time
from dataclasses import dataclass

from .lab import Node
from .nat import Filtering, Mapping

Addr = tuple[str, int]
#: How long a probe waits before calling a datagram lost. Namespaces answer in microseconds;
#: this only bounds the negative cases.
QUIET_S = 0.25
PRIMARY_PORT = 3478
ALTERNATE_PORT = 3479


def _token() -> bytes:
    return b"netlab-probe:" + os.urandom(8).hex().encode()


def wait_for(sock: socket.socket, token: bytes, timeout: float = QUIET_S) -> Addr | None:
    """The source of the datagram carrying ``token`` arriving on ``sock`` within ``timeout``
    seconds (others are discarded), or None."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        readable, _, _ = select.select([sock], [], [], left)
        if not readable:
            return None
        data, src = sock.recvfrom(2048)
        if data == token:
            return (src[0], src[1])


def reaches(
    sender: socket.socket, dest: Addr, receiver: socket.socket, timeout: float = QUIET_S
) -> Addr | None:
    """Send one datagram from ``sender`` to ``dest``; the source ``receiver`` saw, or None."""
    token = _token()
    sender.sendto(token, dest)
    return wait_for(receiver, token, timeout)


@dataclass
class Servers:
    """The two public "STUN" servers: ``a`` on two ports, ``b`` on one."""

    a: Node
    b: Node

    def __post_init__(self) -> None:
        self.a1 = self.a.udp(PRIMARY_PORT)
        self.a2 = self.a.udp(ALTERNATE_PORT)
        self.b1 = self.b.udp(PRIMARY_PORT)

    def addr(self, which: socket.socket) -> Addr:
        node = self.a if which in (self.a1, self.a2) else self.b
        return (node.addr, which.getsockname()[1])

    def reflect(self, inside: socket.socket, server: socket.socket) -> Addr:
        """Binding request: the mapped address ``server`` sees for ``inside``; the server
        answers (so the NAT session has seen both directions) and the answer must arrive."""
        mapped = reaches(inside, self.addr(server), server, timeout=2.0)
        if mapped is None:
            raise AssertionError(f"{self.addr(server)} never heard from the inside socket")
        if reaches(server, mapped, inside, timeout=2.0) is None:
            raise AssertionError(f"the answer from {self.addr(server)} to {mapped} was dropped")
        return mapped

    def mapping(self, inside: Node) -> tuple[Mapping | None, list[Addr]]:
        """RFC 5780 §4.3 mapping behaviour of the NAT(s) between ``inside`` and the servers;
        None when the servers see the inside's own address (no NAT)."""
        sock = inside.udp()
        seen = [self.reflect(sock, s) for s in (self.a1, self.a2, self.b1)]
        via_a1, via_a2, via_b1 = seen
        if via_a1 == (inside.addr, sock.getsockname()[1]) and len(set(seen)) == 1:
            return None, seen
        if via_a1 == via_a2 == via_b1:
            return Mapping.ENDPOINT_INDEPENDENT, seen
        if via_a1 == via_a2:
            return Mapping.ADDRESS_DEPENDENT, seen
        return Mapping.ADDRESS_AND_PORT_DEPENDENT, seen

    def filtering(self, inside: Node) -> tuple[Filtering, dict[str, bool]]:
        """RFC 5780 §4.4 filtering behaviour: after the inside sent to a:3478, who else can
        reach its mapping. Returns the verdict and the raw reachability."""
        sock = inside.udp()
        mapped = self.reflect(sock, self.a1)
        other_address = reaches(self.b1, mapped, sock) is not None
        other_port = reaches(self.a2, mapped, sock) is not None
        same = reaches(self.a1, mapped, sock) is not None
        raw = {"other_address": other_address, "other_port": other_port, "same": same}
        if not same:
            raise AssertionError(f"the server the inside sent to cannot answer: {raw}")
        if other_address and other_port:
            return Filtering.ENDPOINT_INDEPENDENT, raw
        if other_port:
            return Filtering.ADDRESS_DEPENDENT, raw
        if not other_address:
            return Filtering.ADDRESS_AND_PORT_DEPENDENT, raw
        raise AssertionError(f"filtering lets another address in but not another port: {raw}")

    def mapping_alive(self, server: socket.socket, mapped: Addr, inside: socket.socket) -> bool:
        """Can ``server`` (still) reach the inside socket at ``mapped``?"""
        return reaches(server, mapped, inside) is not None


@dataclass(frozen=True)
class Hairpin:
    """What happened when one inside host sent to another's mapping (RFC 4787 §6)."""

    delivered: bool
    source: Addr | None
    """The source address the receiving host saw (None if nothing arrived)."""
    sender_mapping: Addr
    """The sender's mapping as a public server saw it."""
    answered: bool
    """Whether the receiver's answer to that source came back to the sender."""

    @property
    def works(self) -> bool:
        """Delivered from the NAT's external address (REQ-9: never the internal one) and
        answerable."""
        return (
            self.delivered
            and self.source is not None
            and self.source[0] == self.sender_mapping[0]
            and self.answered
        )

    @property
    def same_mapping(self) -> bool:
        """The hairpinned packet came from the very mapping a server saw (expected under
        endpoint-independent mapping; a symmetric NAT makes a new one for the new
        destination)."""
        return self.source == self.sender_mapping


def hairpin(servers: Servers, first: Node, second: Node) -> Hairpin:
    """``first`` sends to ``second``'s mapping on their shared NAT."""
    s1, s2 = first.udp(), second.udp()
    m1 = servers.reflect(s1, servers.a1)
    m2 = servers.reflect(s2, servers.a1)
    source = reaches(s1, m2, s2)
    answered = source is not None and reaches(s2, source, s1) is not None
    return Hairpin(
        delivered=source is not None, source=source, sender_mapping=m1, answered=answered
    )


@dataclass(frozen=True)
class Punch:
    """Result of a simple simultaneous hole punch between two hosts (``punch``)."""

    direct: bool
    """Datagrams flow both ways on the addresses each side finally learned."""
    x_reflexive: Addr
    y_reflexive: Addr
    x_heard_y_at: Addr | None
    """Where x's datagrams from y came from (y's server-reflexive or peer-reflexive address)."""
    y_heard_x_at: Addr | None


def punch(servers: Servers, x: Node, y: Node, *, rounds: int = 6, gap_s: float = 0.02) -> Punch:
    """Simultaneous UDP hole punching with no port prediction, the way ICE does it:

    each side learns its server-reflexive address from a:3478 (the exchange of candidates is
    out of band, here), then for ``rounds`` rounds both send to every address they know for
    the other and read what arrived; a datagram from a new address adds that address (a
    peer-reflexive candidate, RFC 8445 §7.3.1.3). Direct if, afterwards, each side reaches
    the other at the address it heard from. Relay is needed otherwise.
    """
    sx, sy = x.udp(), y.udp()
    mx, my = servers.reflect(sx, servers.a1), servers.reflect(sy, servers.a1)
    hello = _token()
    known: dict[socket.socket, list[Addr]] = {sx: [my], sy: [mx]}
    heard: dict[socket.socket, Addr | None] = {sx: None, sy: None}
    for _ in range(rounds):
        for sock in (sx, sy):
            for addr in known[sock]:
                sock.sendto(hello, addr)
        deadline = time.monotonic() + gap_s
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([sx, sy], [], [], left)
            for sock in readable:
                data, src = sock.recvfrom(2048)
                if data != hello:
                    continue
                addr = (src[0], src[1])
                heard[sock] = addr
                if addr not in known[sock]:
                    known[sock].append(addr)
    at_x, at_y = heard[sx], heard[sy]
    direct = (
        at_x is not None
        and at_y is not None
        and reaches(sx, at_x, sy) is not None
        and reaches(sy, at_y, sx) is not None
    )
    for sock in (sx, sy):
        sock.close()
    return Punch(
        direct=direct, x_reflexive=mx, y_reflexive=my, x_heard_y_at=at_x, y_heard_x_at=at_y
    )
