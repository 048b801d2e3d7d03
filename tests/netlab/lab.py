"""Topologies of Linux network namespaces: hosts, NAT routers, a public switch.

A :class:`Lab` owns every namespace it builds (names ``pl-<6 hex>-<node>``) and deletes them
all on ``__exit__``/``close()``, at interpreter exit, on SIGTERM, and, for a lab whose process
was SIGKILLed, when the next lab starts (a registry in ``/run/peerline-netlab``).

Addressing (documentation and private ranges only):

- the "internet" is one bridge (namespace ``pl-<id>-net``); public hosts get 198.51.100.N,
  routers' WAN sides 203.0.113.N (or any ``addr=`` in 192.0.2.0/24, 198.51.100.0/24,
  203.0.113.0/24); everything there is on-link (``default dev eth0``);
- router K's LAN is the bridge ``lan`` in its own namespace: 10.K.0.0/24 (gateway 10.K.0.1),
  or 100.64.K.0/24 for a carrier router (RFC 6598 shared address space), hosts from .2 on.

Example::

    with Lab() as lab:
        server = lab.host("server")
        home = lab.router("home", nat=NatBehaviour.PORT_RESTRICTED)
        phone = lab.host("phone", behind=home)
        phone.run(["ping", "-c1", server.addr])
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from . import _ns
from .nat import NatBehaviour, loss_ruleset, router_ruleset

PUBLIC_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
PUBLIC_HOSTS = ipaddress.IPv4Network("198.51.100.0/24")
PUBLIC_ROUTERS = ipaddress.IPv4Network("203.0.113.0/24")
_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")
_RESERVED = {"net"}
RELAY = Path(__file__).with_name("relay.py")


class LabUnavailable(RuntimeError):
    """Namespaces or nftables cannot be used here (the message says why)."""


@dataclass(eq=False)
class Node:
    """A network namespace in a lab: an end host or a router."""

    lab: Lab = field(repr=False)
    name: str
    ns: str
    addr: str
    """This node's address on its upstream segment (a router's WAN address)."""
    upstream: Router | None
    """The router whose LAN this node is on; None on the public switch."""

    @property
    def public(self) -> bool:
        return self.upstream is None

    def run(
        self,
        argv: list[str],
        *,
        check: bool = True,
        timeout: float = 30.0,
        input_text: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace (``ip netns exec``) and wait for it."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, *argv],
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    @property
    def iface(self) -> str:
        """The interface towards the upstream segment: ``eth0`` (host) or ``wan`` (router)."""
        return "wan" if isinstance(self, Router) else "eth0"

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the namespace; the lab stops it (SIGTERM, then SIGKILL) on
        close. Keyword arguments go to ``subprocess.Popen``."""
        proc: subprocess.Popen[Any] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *argv], **kwargs
        )
        self.lab._procs.append(proc)
        return proc

    def udp(self, port: int = 0, *, bind: str = "0.0.0.0") -> socket.socket:
        """A UDP socket of this process living in this namespace, bound to ``bind:port``.

        Made on a thread that joined the namespace (``setns``), so tests can use it directly;
        the lab closes it on close.
        """

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((bind, port))
            except OSError:
                sock.close()
                raise
            return sock

        sock = _ns.in_netns(self.ns, make)
        self.lab._sockets.append(sock)
        return sock

    def nft(self, ruleset: str) -> None:
        """Load an nftables ruleset (``nft -f -``) into this namespace."""
        _ns.run(["ip", "netns", "exec", self.ns, "nft", "-f", "-"], input_text=ruleset)

    def sysctl(self, values: dict[str, str]) -> None:
        """Set per-namespace ``net.*`` sysctls, e.g. ``{"net.ipv4.ip_forward": "1"}``."""
        _ns.write_sysctls(self.ns, values)


@dataclass(eq=False)
class Host(Node):
    """An end host: one interface ``eth0``."""


@dataclass(eq=False)
class Router(Node):
    """A NAT router: ``wan`` towards its upstream, the bridge ``lan`` for its hosts."""

    nat: NatBehaviour = NatBehaviour.PORT_RESTRICTED
    hairpin: bool = False
    udp_timeout_s: int = 30
    lan: ipaddress.IPv4Network = field(default_factory=lambda: ipaddress.IPv4Network("10.1.0.0/24"))
    ruleset: str = field(default="", repr=False)
    """The exact nftables text loaded into the router (``nat.router_ruleset``)."""
    _next_host: int = field(default=2, repr=False)

    @property
    def gateway(self) -> str:
        """The router's own address on its LAN (hosts' default gateway)."""
        return str(self.lan.network_address + 1)

    def listing(self) -> str:
        """``nft list ruleset`` of the router as the kernel holds it (sets with elements)."""
        return _ns.run(["ip", "netns", "exec", self.ns, "nft", "list", "ruleset"])


_live: set[Lab] = set()
_live_lock = threading.Lock()
_handlers_installed = False
_previous_sigterm: Any = None


def _close_all() -> None:
    with _live_lock:
        labs = list(_live)
    for lab in labs:
        lab.close()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _close_all()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_handlers() -> None:
    global _handlers_installed, _previous_sigterm  # noqa: PLW0603 - process-wide, once
    if _handlers_installed:
        return
    atexit.register(_close_all)
    if threading.current_thread() is threading.main_thread():
        _previous_sigterm = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm)
    _handlers_installed = True


class Lab:
    """A set of network namespaces built for one test or benchmark; see the module doc.

    Use it as a context manager (or call ``close()``); building needs root, ``ip`` and
    ``nft`` (``__enter__`` raises :class:`LabUnavailable` otherwise).
    """

    def __init__(self) -> None:
        self.id = os.urandom(3).hex()
        self.prefix = f"pl-{self.id}-"
        self.nodes: dict[str, Node] = {}
        self._namespaces: list[str] = []
        self._procs: list[subprocess.Popen[Any]] = []
        self._sockets: list[socket.socket] = []
        self._switch: str | None = None
        self._routers = 0
        self._used: set[str] = set()
        self._closed = False
        self._entered = False

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Lab:
        reason = _ns.unavailable_reason()
        if reason is not None:
            raise LabUnavailable(reason)
        _ns.reap_stale()
        _install_handlers()
        with _live_lock:
            _live.add(self)
        self._entered = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the lab's processes, close its sockets, delete its namespaces. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for sock in self._sockets:
            sock.close()
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2)
        _ns.delete_namespaces(reversed(self._namespaces))
        _ns.unregister(self.id)
        with _live_lock:
            _live.discard(self)

    @property
    def namespaces(self) -> list[str]:
        """Every namespace this lab made, in creation order."""
        return list(self._namespaces)

    # -- building ------------------------------------------------------------------------

    def host(self, name: str, *, behind: Router | None = None, addr: str | None = None) -> Host:
        """An end host on the public switch, or on ``behind``'s LAN."""
        ns = self._new_namespace(name)
        address, gateway = self._address(behind, addr, router=False)
        host = Host(lab=self, name=name, ns=ns, addr=address, upstream=behind)
        self.nodes[name] = host
        self._attach(host, "eth0", behind)
        self._configure_interface(ns, "eth0", address, behind, gateway)
        _ns.write_sysctls(ns, _QUIET, if_present=True)
        return host

    def router(
        self,
        name: str,
        *,
        nat: NatBehaviour = NatBehaviour.PORT_RESTRICTED,
        hairpin: bool = False,
        udp_timeout_s: int = 30,
        behind: Router | None = None,
        carrier: bool = False,
        addr: str | None = None,
        sequential: bool = False,
    ) -> Router:
        """A NAT router whose WAN is on the public switch (or on ``behind``'s LAN: double NAT).

        ``udp_timeout_s`` is how long an idle UDP mapping lives (integer seconds, >= 1).
        ``carrier`` gives the LAN 100.64.K.0/24, for home routers behind a carrier NAT.
        ``sequential`` makes a symmetric NAT hand out consecutive ports (``router_ruleset``).
        """
        if udp_timeout_s < 1:
            raise ValueError("udp_timeout_s must be at least 1 second")
        self._routers += 1
        if self._routers > 250:
            raise ValueError("at most 250 routers per lab")
        k = self._routers
        lan = ipaddress.IPv4Network(f"100.64.{k}.0/24" if carrier else f"10.{k}.0.0/24")
        ns = self._new_namespace(name)
        address, gateway = self._address(behind, addr, router=True)
        router = Router(
            lab=self,
            name=name,
            ns=ns,
            addr=address,
            upstream=behind,
            nat=nat,
            hairpin=hairpin,
            udp_timeout_s=udp_timeout_s,
            lan=lan,
        )
        self.nodes[name] = router
        self._attach(router, "wan", behind)
        self._configure_interface(ns, "wan", address, behind, gateway)
        _ns.ip_batch(
            ns,
            [
                "link add lan type bridge",
                f"addr add {router.gateway}/{lan.prefixlen} dev lan",
                "link set lan up",
            ],
        )
        _ns.write_sysctls(ns, _QUIET, if_present=True)
        router.ruleset = router_ruleset(
            nat,
            wan_addr=address,
            lan=lan,
            hairpin=hairpin,
            udp_timeout_s=udp_timeout_s,
            sequential=sequential,
        )
        router.nft(router.ruleset)  # first: it loads conntrack, whose sysctls come next
        timeout = str(udp_timeout_s)
        _ns.write_sysctls(
            ns,
            {
                "net.ipv4.ip_forward": "1",
                "net.netfilter.nf_conntrack_udp_timeout": timeout,
                "net.netfilter.nf_conntrack_udp_timeout_stream": timeout,
            },
        )
        return router

    def loss(self, node: Node, percent: float) -> None:
        """Make ``node``'s upstream link lossy: each packet crossing it, in either direction,
        is dropped with probability ``percent``/100 (nftables ``numgen``; ``nat.loss_ruleset``).

        The link is a host's ``eth0`` or a router's ``wan``, so on a router this is loss
        between its LAN and the outside, and LAN-internal traffic is spared. ``0`` removes it.
        """
        node.nft(loss_ruleset(percent, device=node.iface))

    def delay(
        self, node: Node, delay_ms: float, *, jitter_ms: float = 0.0, seed: int | None = None
    ) -> subprocess.Popen[Any]:
        """Delay every frame on ``node``'s upstream link by ``delay_ms`` +- ``jitter_ms``
        (uniform), both directions, with a userspace relay (``relay.py``; no netem here).

        The node's switch port is moved off the bridge; the relay copies frames between it and
        a new port (``d-<name>``) on the bridge. Jitter may reorder packets, as on a real
        path. Call once per node; the relay runs until the lab closes.
        """
        seg_ns = self._segment_ns(node.upstream)
        port = f"p-{node.name}"
        inner = f"d-{node.name}"
        _ns.ip_batch(
            seg_ns,
            [
                f"link set {port} nomaster",
                f"link add {inner} type veth peer name {inner}x",
                f"link set {inner}x master {_bridge(node.upstream)}",
                f"link set {inner}x up",
                f"link set {inner} up",
                f"link set {port} up",
                f"link set {port} promisc on",
                f"link set {inner} promisc on",
            ],
        )
        if node.upstream is not None:
            # A router's LAN: its kernel would answer ARP on the relay's two ports too (weak
            # host model), the host behind would learn the wrong MAC for its gateway and its
            # frames would miss the bridge. Answer only through the bridge.
            _ns.write_sysctls(
                seg_ns, {f"net.ipv4.conf.{name}.arp_ignore": "8" for name in (port, inner)}
            )
        argv = [
            sys.executable,
            str(RELAY),
            port,
            inner,
            "--delay-ms",
            str(delay_ms),
            "--jitter-ms",
            str(jitter_ms),
        ]
        if seed is not None:
            argv += ["--seed", str(seed)]
        proc: subprocess.Popen[Any] = subprocess.Popen(
            ["ip", "netns", "exec", seg_ns, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._procs.append(proc)
        line = proc.stdout.readline() if proc.stdout else ""
        if line.strip() != "ready":
            proc.kill()
            err = proc.stderr.read() if proc.stderr else ""
            raise _ns.NetlabError(f"delay relay did not start: {line!r} {err[-2000:]}")
        return proc

    # -- internals -----------------------------------------------------------------------

    def _new_namespace(self, name: str) -> str:
        if self._closed or not self._entered:
            raise RuntimeError("use the Lab as a context manager (with Lab() as lab: ...)")
        if not _NAME.match(name) or name in _RESERVED:
            raise ValueError(f"node name {name!r}: 1-10 of [a-z0-9], starting with a letter")
        if name in self.nodes:
            raise ValueError(f"node {name!r} exists already")
        return self._make_namespace(self.prefix + name)

    def _make_namespace(self, ns: str) -> str:
        self._namespaces.append(ns)
        _ns.register(self.id, self._namespaces)  # before creating: a kill in between is reaped
        _ns.run(["ip", "netns", "add", ns])
        _ns.ip_batch(ns, ["link set lo up"])
        return ns

    def _switch_ns(self) -> str:
        if self._switch is None:
            self._switch = self._make_namespace(self.prefix + "net")
            _ns.ip_batch(self._switch, ["link add br0 type bridge", "link set br0 up"])
            _ns.write_sysctls(self._switch, _QUIET, if_present=True)
        return self._switch

    def _segment_ns(self, behind: Router | None) -> str:
        return self._switch_ns() if behind is None else behind.ns

    def _address(
        self, behind: Router | None, addr: str | None, *, router: bool
    ) -> tuple[str, str | None]:
        if behind is None:
            if addr is None:
                pool = PUBLIC_ROUTERS if router else PUBLIC_HOSTS
                addr = next(str(a) for a in pool.hosts() if str(a) not in self._used)
            elif not any(ipaddress.IPv4Address(addr) in net for net in PUBLIC_RANGES):
                raise ValueError(f"public address {addr} is not in a documentation range")
            gateway = None
        else:
            if addr is not None:
                raise ValueError("addresses behind a router are assigned by the lab")
            addr = str(behind.lan.network_address + behind._next_host)
            behind._next_host += 1
            gateway = behind.gateway
        if addr in self._used:
            raise ValueError(f"address {addr} is taken")
        self._used.add(addr)
        return addr, gateway

    def _attach(self, node: Node, ifname: str, behind: Router | None) -> None:
        seg_ns = self._segment_ns(behind)
        port = f"p-{node.name}"
        _ns.ip_batch(
            seg_ns,
            [
                f"link add {port} type veth peer name {ifname} netns {node.ns}",
                f"link set {port} master {_bridge(behind)}",
                f"link set {port} up",
            ],
        )

    def _configure_interface(
        self, ns: str, ifname: str, address: str, behind: Router | None, gateway: str | None
    ) -> None:
        prefix = 24 if behind is None else behind.lan.prefixlen
        route = f"route add default via {gateway}" if gateway else f"route add default dev {ifname}"
        _ns.ip_batch(
            ns, [f"addr add {address}/{prefix} dev {ifname}", f"link set {ifname} up", route]
        )


def _bridge(behind: Router | None) -> str:
    return "br0" if behind is None else "lan"


#: Set where present: no IPv6 in the lab (no router solicitations or DAD packets to confuse
#: counts), and bridged frames kept out of the IP hooks (br_netfilter, when loaded, defaults
#: to sending them through iptables/nftables and conntrack in every new namespace).
_QUIET = {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
    "net.bridge.bridge-nf-call-iptables": "0",
}
