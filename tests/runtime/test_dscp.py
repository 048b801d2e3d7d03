"""DSCP marking by the UDP runtime (runtime/udp.py), measured by the kernel.

``UdpDriver`` gives its sockets the signalling class (``[network] dscp``, AF41 by default) and
sends a call's packets (``Node.send_media``: MEDIA and MEDIA_REPORT) one by one with their own
class as ancillary data (``sendmsg`` with IP_TOS / IPV6_TCLASS = ``dscp_media << 2``, EF by
default). Every test builds its own network namespace (a netlab host, used only through its
loopback) and checks two independent witnesses there:

- an nftables table counting the phones' UDP packets per DSCP class on output and input
  (``ip dscp ef`` / ``af41`` / ``cs0`` / anything else), keyed by each phone's port;
- a receiving phone whose socket asks for each datagram's TOS byte (IP_RECVTOS /
  IPV6_RECVTCLASS) and learns from its Node whether the datagram carried media, so every
  single packet's class is checked against what it was.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from harness import make_identity
from netlab import _ns
from netlab.lab import Lab
from peerline.proto.events import (
    HandshakeCompleted,
    MediaReceived,
    MediaReportReceived,
    MessageDelivered,
)
from peerline.proto.node import Node
from peerline.runtime.udp import DSCP_AF41, DSCP_EF, UdpDriver
from peerline.sim.rng import SeededRng

pytestmark = pytest.mark.netns

TABLE = "dscp_test"
CLASSES = ("ef", "af41", "cs0")
"""Classes with a counter of their own; anything else lands in ``other``."""
DSCP_OF = {"ef": DSCP_EF, "af41": DSCP_AF41, "cs0": 0}
VOICE_CALLS = 30
"""``send_media`` calls made by phone A in every scenario (one datagram each)."""
REPLY_CALLS = 10
"""``send_media`` calls made by phone B when it runs a UdpDriver too."""
WAIT_S = 5.0

_libc = ctypes.CDLL(None, use_errno=True)


# -- namespace --------------------------------------------------------------------------------


@pytest.fixture
def netns(lab: Lab) -> Iterator[str]:
    """A fresh namespace (deleted by the ``lab`` fixture whatever happens) whose loopback
    carries IPv4 and, where the kernel has it, IPv6 (netlab switches IPv6 off by default)."""
    host = lab.host("dscp")
    _ns.write_sysctls(
        host.ns,
        {
            "net.ipv6.conf.all.disable_ipv6": "0",
            "net.ipv6.conf.default.disable_ipv6": "0",
            "net.ipv6.conf.lo.disable_ipv6": "0",
        },
        if_present=True,
    )
    yield host.ns


def _setns(ns: str) -> None:
    """Move the calling thread (only) into ``ns``: sockets made afterwards live there."""
    fd = os.open(_ns.NETNS_DIR / ns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, _ns.CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _run_in(ns: str, scenario: Callable[[], Any]) -> Any:
    """Run the coroutine function ``scenario`` on a fresh event loop, on a thread inside ns."""
    return _ns.in_netns(ns, lambda: asyncio.run(scenario()))


# -- nftables counters ------------------------------------------------------------------------


def _ruleset(ports: dict[str, int]) -> str:
    """Per phone (by port) and family: output packets by source port, input packets by
    destination port, one named counter per class, ``other`` for the rest."""
    counters: list[str] = []
    chains: dict[str, list[str]] = {"output": [], "input": []}
    for who, port in ports.items():
        for hook, match in (("output", f"udp sport {port}"), ("input", f"udp dport {port}")):
            for fam, proto in (("4", "ip"), ("6", "ip6")):
                for cls in (*CLASSES, "other"):
                    name = f"{who}_{hook}_{cls}{fam}"
                    counters.append(f"  counter {name} {{ }}")
                    cond = f"{proto} dscp {cls}" if cls != "other" else f"meta nfproto ipv{fam}"
                    chains[hook].append(f"    {match} {cond} counter name {name} return")
    body = "\n".join(counters)
    for hook, rules in chains.items():
        body += (
            f"\n  chain {hook} {{\n    type filter hook {hook} priority 0; policy accept;\n"
            + "\n".join(rules)
            + "\n  }"
        )
    return f"table inet {TABLE} {{\n{body}\n}}\n"


def _nft(ns: str, *args: str, input_text: str | None = None) -> str:
    return _ns.run(["ip", "netns", "exec", ns, "nft", *args], input_text=input_text)


def _counts(ns: str) -> dict[str, int]:
    listing = json.loads(_nft(ns, "-j", "list", "counters", "table", "inet", TABLE))
    return {
        item["counter"]["name"]: item["counter"]["packets"]
        for item in listing["nftables"]
        if "counter" in item
    }


def _by_class(counts: dict[str, int], who: str, hook: str, fam: str) -> dict[str, int]:
    return {cls: counts[f"{who}_{hook}_{cls}{fam}"] for cls in (*CLASSES, "other")}


# -- the phones -------------------------------------------------------------------------------


@dataclass
class _TosPeer:
    """Phone B without the runtime: a Node on a plain socket that reads every datagram's TOS
    byte (IP_RECVTOS / IPV6_RECVTCLASS) and whether the Node found media in it."""

    node: Node
    family: int
    host: str
    seen: list[tuple[int | None, bool]] = field(default_factory=list)
    "(TOS / traffic class byte, carried MEDIA or MEDIA_REPORT) per datagram received."
    events: list[Any] = field(default_factory=list)
    sock: socket.socket = field(init=False)

    def __post_init__(self) -> None:
        self.sock = socket.socket(self.family, socket.SOCK_DGRAM)
        if self.family == socket.AF_INET6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
        else:
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
        self.sock.setblocking(False)
        self.sock.bind((self.host, 0))
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.sock.fileno(), self._readable)

    @property
    def addr(self) -> tuple[str, int]:
        name = self.sock.getsockname()
        return (name[0], name[1])

    def _readable(self) -> None:
        while True:
            try:
                data, ancillary, _flags, src = self.sock.recvmsg(65535, socket.CMSG_SPACE(4))
            except BlockingIOError:
                return
            tos: int | None = None
            for level, kind, cdata in ancillary:
                if (level, kind) in (
                    (socket.IPPROTO_IP, socket.IP_TOS),
                    (socket.IPPROTO_IPV6, socket.IPV6_TCLASS),
                ):  # IPv4 hands over one byte, IPv6 an int
                    tos = cdata[0] if len(cdata) == 1 else int.from_bytes(cdata[:4], sys.byteorder)
            now = self.loop.time()
            self.node.receive_datagram(data, (src[0], src[1]), now=now)
            media = False
            while (event := self.node.next_event()) is not None:
                self.events.append(event)
                media = media or isinstance(event, MediaReceived | MediaReportReceived)
            self.seen.append((tos, media))
            for out, dst in self.node.datagrams_to_send(now=now):
                self.sock.sendto(out, dst)

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


@dataclass
class Outcome:
    """What one scenario measured (counters read after both phones stopped)."""

    counts: dict[str, int]
    a: Node
    driver_a: UdpDriver
    a_both: int
    "``send_media`` calls of A carrying a voice body and a report (one datagram, two frames)."
    b: Node
    driver_b: UdpDriver | None
    peer: _TosPeer | None


async def _until(cond: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {WAIT_S} s waiting for {what}")
        await asyncio.sleep(0.005)


def _scenario(
    ns: str, *, v6: bool, dscp: int, dscp_media: int, b_driver: bool
) -> Callable[[], Any]:
    """A call's worth of traffic from A (UdpDriver) to B (UdpDriver or _TosPeer), on
    loopback: handshake, a message, 30 media calls (voice, reports, both; sent both by
    ``poke`` and by the audio tick's ``send_media_now``), another message; B replies with
    media when it has a driver."""
    host = "::1" if v6 else "127.0.0.1"
    family = socket.AF_INET6 if v6 else socket.AF_INET
    bind = {"bind4": "", "bind6": host} if v6 else {"bind4": host, "bind6": ""}

    async def run() -> Outcome:
        loop = asyncio.get_running_loop()
        a = Node(identity=make_identity(1), rng=SeededRng(1))
        b = Node(identity=make_identity(2), rng=SeededRng(2))
        events_a: list[Any] = []
        events_b: list[Any] = []
        driver_a = UdpDriver(a, events_a.append, dscp=dscp, dscp_media=dscp_media)
        driver_b: UdpDriver | None = None
        peer: _TosPeer | None = None
        try:
            await driver_a.start(port=0, **bind)
            addr_a = driver_a.local_addrs[0]
            if b_driver:
                driver_b = UdpDriver(b, events_b.append, dscp=dscp, dscp_media=dscp_media)
                await driver_b.start(port=0, **bind)
                addr_b = driver_b.local_addrs[0]
            else:
                peer = _TosPeer(b, family, host)
                events_b = peer.events
                addr_b = peer.addr
            _nft(ns, "-f", "-", input_text=_ruleset({"a": addr_a[1], "b": addr_b[1]}))
            a.add_peer(b.identity.public_key, addr_b)
            b.add_peer(a.identity.public_key, addr_a)
            key_b, key_a = b.identity.public_key, a.identity.public_key

            a.connect(key_b, now=loop.time())
            driver_a.poke()
            await _until(
                lambda: any(isinstance(e, HandshakeCompleted) for e in events_a), "A's handshake"
            )
            a.send_message(key_b, "before the call", now=loop.time())
            driver_a.poke()
            await _until(
                lambda: any(isinstance(e, HandshakeCompleted) for e in events_b), "B's handshake"
            )
            await _until(
                lambda: sum(isinstance(e, MessageDelivered) for e in events_a) == 1, "delivery"
            )

            both = 0
            for i in range(VOICE_CALLS):
                body = None if i % 7 == 3 else bytes([i]) * 60
                report = b"\x01" * 24 if i % 5 == 0 or body is None else None
                both += body is not None and report is not None
                assert a.send_media(key_b, body, now=loop.time(), report=report)
                if i % 2:
                    driver_a.send_media_now()
                else:
                    driver_a.poke()
                if driver_b is not None and i % 3 == 0:
                    assert b.send_media(key_a, b"\x02" * 40, now=loop.time())
                    driver_b.send_media_now()
                await asyncio.sleep(0.002)
            a.send_message(key_b, "after the call", now=loop.time())
            driver_a.poke()
            await _until(
                lambda: sum(isinstance(e, MessageDelivered) for e in events_a) == 2,
                "second delivery",
            )
            await _until(
                lambda: (
                    b.counters.media_received + b.counters.media_reports_received
                    == a.counters.media_sent + a.counters.media_reports_sent
                ),
                "B to receive all of A's media",
            )
            await asyncio.sleep(0.05)  # stragglers (acks) are counted too
        finally:
            driver_a.close()
            if driver_b is not None:
                driver_b.close()
            if peer is not None:
                peer.close()
        return Outcome(_counts(ns), a, driver_a, both, b, driver_b, peer)

    return run


def _tos(dscp: int) -> int:
    return dscp << 2


# -- tests ------------------------------------------------------------------------------------


def test_media_goes_out_ef_and_everything_else_af41(netns: str) -> None:
    """Default classes, both phones on UdpDriver (A initiates, B responds; both send media):
    per phone, the EF counter equals the driver's ``media_sent`` (= its ``send_media``
    calls), AF41 counts every other datagram the Node sent, nothing leaves as CS0 or other;
    the input side of each port sees the same numbers (loopback loses nothing)."""
    out: Outcome = _run_in(
        netns,
        _scenario(netns, v6=False, dscp=DSCP_AF41, dscp_media=DSCP_EF, b_driver=True),
    )
    assert out.driver_b is not None
    c = out.counts
    a_sent, b_sent = out.a.counters.tx_datagrams, out.b.counters.tx_datagrams
    # Every send_media call became one datagram, on the marked path.
    assert out.driver_a.media_sent == VOICE_CALLS
    assert out.a.counters.media_sent + out.a.counters.media_reports_sent == VOICE_CALLS + out.a_both
    assert out.driver_b.media_sent == out.b.counters.media_sent == REPLY_CALLS
    assert out.driver_a.socket_errors == out.driver_b.socket_errors == 0

    for who, node_sent, media in (
        ("a", a_sent, out.driver_a.media_sent),
        ("b", b_sent, out.driver_b.media_sent),
    ):
        expected = {"ef": media, "af41": node_sent - media, "cs0": 0, "other": 0}
        assert _by_class(c, who, "output", "4") == expected, (who, c)
        assert expected["af41"] >= 2, "the handshake and messages went out AF41"
    # B receives what A sent and A what B sent; on loopback input sees the same packets.
    assert _by_class(c, "b", "input", "4") == _by_class(c, "a", "output", "4")
    assert _by_class(c, "a", "input", "4") == _by_class(c, "b", "output", "4")
    assert all(v == 0 for k, v in c.items() if k.endswith("6")), c


@pytest.mark.parametrize(
    ("dscp", "dscp_media"),
    [(DSCP_AF41, DSCP_EF), (DSCP_AF41, DSCP_AF41), (0, 0), (0, DSCP_EF)],
    ids=["default-ef", "media-as-signalling-af41", "unmarked", "only-media-marked"],
)
def test_each_packet_carries_its_configured_class(netns: str, dscp: int, dscp_media: int) -> None:
    """Receiver-side, packet by packet (IP_RECVTOS): every datagram that carried MEDIA or
    MEDIA_REPORT arrived with ``dscp_media << 2``, every other with ``dscp << 2``; the nft
    counters on A's output agree. Covers media = signalling (no ancillary data is sent then,
    media rides the socket's AF41), both 0 (nothing marked) and unmarked signalling with EF
    media (the per-packet class overrides a socket default of 0)."""
    out: Outcome = _run_in(
        netns, _scenario(netns, v6=False, dscp=dscp, dscp_media=dscp_media, b_driver=False)
    )
    assert out.peer is not None
    _check_per_packet(out, dscp=dscp, dscp_media=dscp_media, fam="4")


def test_ipv6_media_ef_by_traffic_class(netns: str) -> None:
    """The same over ::1: IPV6_TCLASS on the socket for signalling, per packet for media."""

    def loopback_v6() -> bool:
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
                probe.bind(("::1", 0))
        except OSError:
            return False
        return True

    if not socket.has_ipv6 or not _ns.in_netns(netns, loopback_v6):
        pytest.skip("IPv6 test: this kernel gives the test namespace no ::1 (IPv6 disabled)")
    out: Outcome = _run_in(
        netns, _scenario(netns, v6=True, dscp=DSCP_AF41, dscp_media=DSCP_EF, b_driver=False)
    )
    _check_per_packet(out, dscp=DSCP_AF41, dscp_media=DSCP_EF, fam="6")
    assert all(v == 0 for k, v in out.counts.items() if k.endswith("4")), out.counts


def _check_per_packet(out: Outcome, *, dscp: int, dscp_media: int, fam: str) -> None:
    assert out.peer is not None
    seen = out.peer.seen
    media_tos = [tos for tos, media in seen if media]
    other_tos = [tos for tos, media in seen if not media]
    # Every datagram A sent arrived, and the receiver could tell each one's class.
    assert len(seen) == out.a.counters.tx_datagrams
    assert len(media_tos) == out.driver_a.media_sent == VOICE_CALLS
    assert other_tos, "the handshake and messages reached B"
    assert media_tos == [_tos(dscp_media)] * len(media_tos), media_tos
    assert other_tos == [_tos(dscp)] * len(other_tos), other_tos
    assert out.driver_a.socket_errors == 0

    # The kernel's view at A's output: per class, the same split.
    expected = dict.fromkeys((*CLASSES, "other"), 0)
    for value, n in ((dscp_media, len(media_tos)), (dscp, len(other_tos))):
        cls = next((k for k, v in DSCP_OF.items() if v == value), "other")
        expected[cls] += n
    assert _by_class(out.counts, "a", "output", fam) == expected, out.counts
    assert _by_class(out.counts, "b", "input", fam) == expected, out.counts
