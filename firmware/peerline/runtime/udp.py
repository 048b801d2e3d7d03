"""Drive a sans-I/O endpoint with real UDP sockets: one per address family, one timer.

This is aioquic's ``asyncio/protocol.py`` loop and nothing more: feed datagrams in, send
everything due, re-arm a single ``call_at`` for ``get_timer()``, hand events to a callback.
"""

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any, Protocol

from peerline.ports import DatagramEndpoint
from peerline.runtime.timer import DeadlineTimer
from peerline.types import Addr

log = logging.getLogger(__name__)

DSCP_AF41 = 34
"""Signalling class (RFC 4594); media will use EF (46) on its own packets."""


class EventSource(Protocol):
    def next_event(self) -> Any: ...


class _Endpoint(DatagramEndpoint, EventSource, Protocol):
    pass


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, driver: "UdpDriver") -> None:
        self._driver = driver

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._driver.datagram_received(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable) surface here; UDP keeps going.
        self._driver.socket_errors += 1


class UdpDriver:
    """Owns the sockets and the timer of one endpoint.

    Then: ``await start(...)``; call ``poke()`` after any API call made on the endpoint
    (e.g. ``send_message``) so its output is sent and its timer re-armed; ``close()`` at exit.
    """

    def __init__(self, endpoint: _Endpoint, on_event: Callable[[Any], None]) -> None:
        self.endpoint = endpoint
        self._on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._transports: dict[int, asyncio.DatagramTransport] = {}
        self._timer = DeadlineTimer(self._loop, self._fire)
        self.socket_errors = 0
        self.local_addrs: list[Addr] = []

    async def start(self, *, bind4: str, bind6: str, port: int) -> list[Addr]:
        """Bind the sockets; with port 0 the IPv6 socket reuses the port picked for IPv4."""
        if bind4:
            await self._open(socket.AF_INET, bind4, port)
            port = port or self.local_addrs[-1][1]
        if bind6 and socket.has_ipv6:
            try:
                await self._open(socket.AF_INET6, bind6, port)
            except OSError as exc:  # no IPv6 on this host is fine when IPv4 works
                if not self._transports:
                    raise
                log.warning("IPv6 socket not available: %s", exc)
        if not self._transports:
            raise OSError("no address family enabled (network.bind4 and bind6 both empty)")
        self._rearm()
        return self.local_addrs

    async def _open(self, family: int, host: str, port: int) -> None:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, DSCP_AF41 << 2)
            else:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, DSCP_AF41 << 2)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        transport, _ = await self._loop.create_datagram_endpoint(lambda: _Socket(self), sock=sock)
        self._transports[family] = transport
        name = sock.getsockname()
        self.local_addrs.append((name[0], name[1]))

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.endpoint.receive_datagram(data, addr, now=self._loop.time())
        self.poke()

    def poke(self) -> None:
        """Send what the endpoint has queued, deliver its events, re-arm its timer."""
        now = self._loop.time()
        self._send(now)
        handled = False
        while (event := self.endpoint.next_event()) is not None:
            handled = True
            try:
                self._on_event(event)
            except Exception:
                log.exception("event handler failed for %s", type(event).__name__)
        if handled:
            self._send(now)  # what the events led to (the engine acts on some itself)
        self._rearm()

    def _send(self, now: float) -> None:
        for data, addr in self.endpoint.datagrams_to_send(now=now):
            family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
            transport = self._transports.get(family)
            if transport is None:
                self.socket_errors += 1
                continue
            try:
                transport.sendto(data, addr)
            except OSError:
                self.socket_errors += 1

    def _rearm(self) -> None:
        self._timer.set(self.endpoint.get_timer())

    def _fire(self, now: float) -> None:
        self.endpoint.handle_timer(now=now)
        self.poke()

    def close(self) -> None:
        self._timer.cancel()
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
