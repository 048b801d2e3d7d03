"""A real NAT-PMP/PCP gateway in a lab router: Debian's ``miniupnpd`` (miniupnpd-nftables).

``start_miniupnpd(router, stun=host, workdir=...)`` writes a config file, creates the nftables
table miniupnpd adds its rules to, and runs ``miniupnpd -d`` (foreground, log to a file) in
the router's namespace; the lab stops it with everything else. What it needed:

- its own table. The nftables backend (2.3.1) only adds and deletes rules in chains that
  must already exist: a DNAT rule per mapping in ``prerouting_miniupnpd`` and an accept
  rule in ``miniupnpd`` (forward). :func:`miniupnpd_ruleset` makes ``table inet miniupnpd``
  with those chains and base chains that jump to them (forward policy *accept*: the lab's
  own forward chain, policy drop, already lets in what a DNAT rule sent in, by
  ``ct status dnat``). The router's ``table ip netlab`` stays as it is.
- a "public" address. miniupnpd refuses to forward ports when its WAN address is private
  or reserved, and every documentation range the lab uses (192.0.2.0/24, 198.51.100.0/24,
  203.0.113.0/24) is on its list (``addr_is_reserved`` in getifaddr.c); ``ext_ip=`` with
  such an address is refused at start. Its way out is ``ext_perform_stun=yes``: it sends
  four STUN Binding requests (with the RFC 5780 change flags 0, port, IP, both) and takes the
  mapped address as public if all four are answered, the first from the address it asked,
  each with the request's own port and one address. :class:`StunReflector` answers every
  Binding request from where it was asked, ignoring the change flags, which is what
  miniupnpd needs to see for a router that really is on the lab's internet with nothing
  filtering in front of it.
- ``-P`` and ``lease_file`` in the work dir, so nothing is written under /run or /var.

Mappings are made for LAN hosts only (``secure_mode``: a client maps to its own address),
ports 1024-65535. UPnP-IGD (SSDP, HTTP) is off; NAT-PMP and PCP listen on the LAN
address, port 5351.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .lab import Host, Router

EXE = "/usr/sbin/miniupnpd"
TABLE = "miniupnpd"
FORWARD_CHAIN = "miniupnpd"
PREROUTING_CHAIN = "prerouting_miniupnpd"
POSTROUTING_CHAIN = "postrouting_miniupnpd"
STUN_PORT = 3478
READY = "Listening for NAT-PMP/PCP traffic on port 5351"
_STUN_COOKIE = 0x2112A442


class MiniupnpdError(RuntimeError):
    """miniupnpd did not start, or would not forward ports; the message has its log."""


def available() -> bool:
    """Whether the Debian package ``miniupnpd-nftables`` is installed."""
    return Path(EXE).is_file()


def miniupnpd_ruleset() -> str:
    """``table inet miniupnpd``: the chains miniupnpd 2.3.1's nftables backend adds to."""
    return f"""table inet {TABLE} {{
    chain forward {{
        type filter hook forward priority filter; policy accept;
        jump {FORWARD_CHAIN}
    }}
    chain {FORWARD_CHAIN} {{
    }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        jump {PREROUTING_CHAIN}
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        jump {POSTROUTING_CHAIN}
    }}
    chain {PREROUTING_CHAIN} {{
    }}
    chain {POSTROUTING_CHAIN} {{
    }}
}}
"""


def miniupnpd_config(router: Router, *, stun: str, workdir: Path) -> str:
    """The config file for ``router`` (WAN ``wan``, LAN bridge ``lan``), STUN at ``stun``."""
    return "\n".join(
        [
            "ext_ifname=wan",
            "listening_ip=lan",
            "ext_perform_stun=yes",
            f"ext_stun_host={stun}",
            f"ext_stun_port={STUN_PORT}",
            "enable_natpmp=yes",
            "enable_upnp=no",
            "ipv6_disable=yes",
            "secure_mode=yes",
            "system_uptime=no",
            f"lease_file={workdir / 'miniupnpd.leases'}",
            f"upnp_table_name={TABLE}",
            f"upnp_nat_table_name={TABLE}",
            f"upnp_forward_chain={FORWARD_CHAIN}",
            f"upnp_nat_chain={PREROUTING_CHAIN}",
            f"upnp_nat_postrouting_chain={POSTROUTING_CHAIN}",
            f"allow 1024-65535 {router.lan} 1024-65535",
            "deny 0-65535 0.0.0.0/0 0-65535",
            "",
        ]
    )


class StunReflector:
    """Answers STUN Binding requests on ``host``:3478 with the sender's address, from 3478
    whatever CHANGE-REQUEST asks (see the module doc: only for miniupnpd's start-up check).

    A thread of the test process, on a socket the lab closes (which ends the thread).
    """

    def __init__(self, host: Host, port: int = STUN_PORT) -> None:
        self.host = host
        self.addr = (host.addr, port)
        self.answered = 0
        self._sock = host.udp(port)
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, name="stun-reflector", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sock = self._sock
        while sock.fileno() != -1:
            try:
                data, src = sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = _binding_success(data, (src[0], src[1]))
            if answer is not None:
                with contextlib.suppress(OSError):
                    sock.sendto(answer, src)
                    self.answered += 1

    def close(self) -> None:
        self._sock.close()
        self._thread.join(timeout=1)


def _binding_success(request: bytes, src: tuple[str, int]) -> bytes | None:
    """A Binding success (XOR-MAPPED-ADDRESS only) for an IPv4 Binding request, else None."""
    if len(request) < 20:
        return None
    msg_type, _, cookie = struct.unpack_from(">HHI", request)
    if msg_type != 0x0001 or cookie != _STUN_COOKIE:
        return None
    txid = request[8:20]
    port = src[1] ^ (_STUN_COOKIE >> 16)
    addr = struct.unpack(">I", socket.inet_aton(src[0]))[0] ^ _STUN_COOKIE
    attr = struct.pack(">HHBBHI", 0x0020, 8, 0, 1, port, addr)
    return struct.pack(">HHI", 0x0101, len(attr), _STUN_COOKIE) + txid + attr


@dataclass
class Miniupnpd:
    """A running miniupnpd in ``router``'s namespace."""

    router: Router
    workdir: Path
    stun: StunReflector
    proc: subprocess.Popen[Any] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / "miniupnpd.log"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def rules(self) -> str:
        """``nft list table inet miniupnpd`` in the router: the mappings as DNAT rules."""
        return self.router.run(["nft", "list", "table", "inet", TABLE]).stdout

    def start(self, timeout: float = 15.0) -> None:
        """Start (or start again: a new NAT-PMP epoch) and wait until it listens."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("miniupnpd is running")
        config = self.workdir / "miniupnpd.conf"
        config.write_text(
            miniupnpd_config(self.router, stun=self.stun.addr[0], workdir=self.workdir)
        )
        seen = len(self.log())
        with self.log_path.open("a") as log:
            self.proc = self.router.popen(
                [EXE, "-d", "-f", str(config), "-P", str(self.workdir / "miniupnpd.pid")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()[seen:]
            if READY in text:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise MiniupnpdError(f"miniupnpd did not start:\n{self.log()[-4000:]}")
            time.sleep(0.05)
        if "Port forwarding is now enabled" not in text:
            raise MiniupnpdError(f"miniupnpd will not forward ports:\n{text[-4000:]}")

    def stop(self) -> None:
        """SIGTERM, then wait. Its rules stay (see ``restart``); the lab removes them all."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def restart(self, *, keep_state: bool = False) -> None:
        """Stop and start again: its NAT-PMP epoch starts at 0. Like a rebooted router it
        has forgotten every mapping, unless ``keep_state``: miniupnpd leaves its rules in
        place when it stops, and at start takes over the rules it finds and reloads its lease
        file, so both are cleared here first."""
        self.stop()
        if not keep_state:
            (self.workdir / "miniupnpd.leases").unlink(missing_ok=True)
            self.router.nft(
                "".join(
                    f"flush chain inet {TABLE} {chain}\n"
                    for chain in (FORWARD_CHAIN, PREROUTING_CHAIN, POSTROUTING_CHAIN)
                )
            )
        self.start()


def start_miniupnpd(router: Router, *, stun: Host, workdir: Path) -> Miniupnpd:
    """Run miniupnpd in ``router`` with a STUN reflector on the public host ``stun``.

    ``workdir`` (a pytest ``tmp_path``) gets the config, lease file, pid file and log.
    """
    if not available():
        raise MiniupnpdError(f"{EXE} is missing (Debian package miniupnpd-nftables)")
    if not stun.public:
        raise ValueError("the STUN reflector must be on the lab's public switch")
    workdir.mkdir(parents=True, exist_ok=True)
    router.nft(miniupnpd_ruleset())
    daemon = Miniupnpd(router=router, workdir=workdir, stun=StunReflector(stun))
    daemon.start()
    return daemon
