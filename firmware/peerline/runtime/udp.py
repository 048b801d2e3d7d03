"""Drive a sans-I/O endpoint with real UDP sockets: one per address family, one timer.

This is aioquic's ``asyncio/protocol.py`` loop and nothing more: feed datagrams in, send
everything due, re-arm a single ``call_at`` for ``get_timer()``, hand events to a callback.
"""

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any, Protocol

from peerline.ports import DatagramEndpoint
from peerline.runtime.timer import DeadlineTimer
from peerline.types import Addr

log = logging.getLogger(__name__)

DSCP_AF41 = 34
"""Signalling and everything else (RFC 4594 multimedia conferencing): the sockets' default."""
DSCP_EF = 46
"""Expedited forwarding (RFC 3246): a call's voice packets, marked one by one."""


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

    def __init__(
        self,
        endpoint: _Endpoint,
        on_event: Callable[[Any], None],
        *,
        dscp: int = DSCP_AF41,
        dscp_media: int = DSCP_EF,
        after_poke: Callable[[], None] | None = None,
    ) -> None:
        if not 0 <= dscp <= 63 or not 0 <= dscp_media <= 63:
            raise ValueError("DSCP values are 0..63")
        self.endpoint = endpoint
        self._on_event = on_event
        self._after_poke = after_poke
        "Called at the end of every poke: the shell's own work the endpoint may have queued."
        self._dscp = dscp
        self._dscp_media = dscp_media
        self._media_source: Callable[..., list[tuple[bytes, Addr]]] | None = getattr(
            endpoint, "media_datagrams_to_send", None
        )
        self._loop = asyncio.get_running_loop()
        self._transports: dict[int, asyncio.DatagramTransport] = {}
        self._sockets: dict[int, socket.socket] = {}
        self.media_sent = 0
        "Datagrams sent with the media class (per-packet IP_TOS / IPV6_TCLASS)."
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
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, self._dscp << 2)
            else:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, self._dscp << 2)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        transport, _ = await self._loop.create_datagram_endpoint(lambda: _Socket(self), sock=sock)
        self._transports[family] = transport
        self._sockets[family] = sock
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
        if self._after_poke is not None:
            self._after_poke()

    def _send(self, now: float) -> None:
        if self._media_source is not None:
            for data, addr in self._media_source(now=now):
                self._send_marked(data, addr)
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

    def send_media_now(self) -> None:
        """Send the endpoint's queued media packets only (the audio tick's fast path)."""
        if self._media_source is not None:
            for data, addr in self._media_source(now=self._loop.time()):
                self._send_marked(data, addr)

    def _send_marked(self, data: bytes, addr: Addr) -> None:
        """One media datagram with its own traffic class, straight on the socket (UDP: nothing
        to queue); a full socket buffer drops it, as the network would."""
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        sock = self._sockets.get(family)
        if sock is None:
            self.socket_errors += 1
            return
        if family == socket.AF_INET6:
            level, kind = socket.IPPROTO_IPV6, socket.IPV6_TCLASS
        else:
            level, kind = socket.IPPROTO_IP, socket.IP_TOS
        ancillary = []
        if self._dscp_media != self._dscp:
            ancillary.append((level, kind, struct.pack("@i", self._dscp_media << 2)))
        try:
            sock.sendmsg([data], ancillary, 0, addr)
            self.media_sent += 1
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
        self._sockets.clear()
