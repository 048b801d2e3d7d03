"""LAN discovery over mDNS/DNS-SD (python-zeroconf), and the driver that runs an
``ExtensionRegistry`` on it.

Two thin layers, as ``udp.py`` is for the node (docs/lan.md §4):

- ``LanDiscovery`` owns zeroconf. It registers this phone as ``_peerline._udp.local.`` (instance
  named by the number, TXT from the signed announcement, SRV port = the phone's UDP port),
  browses the same type, and hands every decoded announcement and every departure to two
  callbacks. It trusts nothing a record says: the TXT must decode (``from_txt``) and the
  registry checks the signature and the number. Malformed records are counted and dropped.
- ``LanDriver`` connects a ``LanDiscovery`` to an ``ExtensionRegistry``: it feeds it, keeps one
  timer armed for ``get_timer()``, hands events to a callback and keeps the registered
  announcement in step with ``AnnouncementChanged``.

Nothing here blocks the event loop: resolving a service runs as a task per name (at most
``max_resolving`` at once), signature checks are microseconds, and the slow number check is the
caller's ``NumberBinding`` (a worker thread in the daemon).
"""

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import ifaddr
from zeroconf import (
    DNSQuestionType,
    InterfaceChoice,
    IPVersion,
    ServiceInfo,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from peerline.errors import DecodeError
from peerline.proto.lan import (
    SERVICE_TYPE,
    AnnouncementChanged,
    ExtensionRegistry,
    LanAnnouncement,
    LanEvent,
    LanPeer,
    RegistryState,
    from_txt,
    to_txt,
)
from peerline.runtime.timer import DeadlineTimer

log = logging.getLogger(__name__)

RECORD_TTL_S = 120
"""TTL of every record we publish. RFC 6762 §10 suggests 75 min for the PTR record; a phone that
loses power would then stay "on the LAN" that long. 120 s (the host-record TTL) bounds it,
at the price of a refresh query per phone every ~100 s."""

RESOLVE_TIMEOUT_S = 3.0
MAX_RESOLVING = 64
"""Services resolved at once; more changes than this at one instant are dropped and counted
(the next refresh or update of that service brings it back)."""
MAX_NAMES = 4096
"""Service names remembered (name -> key, to report departures)."""
UPDATE_RETRY_S = 5.0


@dataclass(slots=True)
class LanDiscoveryCounters:
    services_seen: int = 0
    "Added or updated services of our type (including our own)."
    heard: int = 0
    "Announcements handed to ``on_heard``."
    malformed: int = 0
    "TXT records that did not decode as an announcement."
    no_address: int = 0
    resolve_failed: int = 0
    "Services that did not answer with SRV, TXT and an address in time."
    dropped_busy: int = 0
    "Service changes dropped because ``max_resolving`` resolutions were running."
    dropped_names: int = 0
    departures: int = 0
    callback_errors: int = 0
    registrations: int = 0
    updates: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _local_networks(addresses: Sequence[str] | None) -> list[ipaddress.IPv4Interface]:
    """Our IPv4 interface networks (all, or those carrying ``addresses``)."""
    nets = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                iface = ipaddress.IPv4Interface(f"{ip.ip}/{ip.network_prefix}")
                if addresses is None or ip.ip in addresses:
                    nets.append(iface)
    return nets


class LanDiscovery:
    """Announce this phone on the LAN and report the others, through python-zeroconf.

    ``interfaces`` are IPv4 addresses to listen and announce on (default: every interface,
    announcing every non-loopback address). IPv6 is not used yet.

    Then: ``await start(announcement)``; ``await update(announcement)`` when it changes;
    ``await close()`` at exit, which sends goodbye packets so other phones drop us at once.
    """

    def __init__(
        self,
        *,
        on_heard: Callable[[LanAnnouncement, str], None],
        on_lost: Callable[[bytes], None],
        interfaces: Sequence[str] | None = None,
        record_ttl_s: int = RECORD_TTL_S,
        resolve_timeout_s: float = RESOLVE_TIMEOUT_S,
        max_resolving: int = MAX_RESOLVING,
    ) -> None:
        for address in interfaces or ():
            if ipaddress.ip_address(address).version != 4:
                raise ValueError(f"LAN discovery listens on IPv4 addresses only: {address}")
        self._on_heard = on_heard
        self._on_lost = on_lost
        self._interfaces = list(interfaces) if interfaces is not None else None
        self._ttl = record_ttl_s
        self._timeout_ms = int(resolve_timeout_s * 1000)
        self._max_resolving = max_resolving
        self.counters = LanDiscoveryCounters()
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: ServiceInfo | None = None
        self._own_key = b""
        self._names: dict[str, bytes] = {}
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._networks: list[ipaddress.IPv4Interface] = []
        self._announcing: Awaitable[object] | None = None
        "zeroconf's announcements of our latest registration or update (3, 225 ms apart), which"
        " run on after ``register`` / ``update`` return: stopped before the goodbye."
        self._closed = False

    @property
    def service_name(self) -> str | None:
        """Our registered instance name (``<number>._peerline._udp.local.``, or ``-2``... if
        another host held that name)."""
        return None if self._info is None else self._info.name

    @property
    def addresses(self) -> list[str]:
        """The IPv4 addresses we announce."""
        return [] if self._info is None else self._info.parsed_addresses()

    async def start(self, announcement: LanAnnouncement) -> None:
        """Start browsing, then register ``announcement`` (about 1.5 s of mDNS probing)."""
        if self._zc is not None:
            raise RuntimeError("LanDiscovery already started")
        self._own_key = announcement.public_key
        self._networks = _local_networks(self._interfaces)
        choice = self._interfaces if self._interfaces is not None else InterfaceChoice.All
        self._zc = AsyncZeroconf(interfaces=choice, ip_version=IPVersion.V4Only)
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, SERVICE_TYPE, handlers=[self._on_service_state_change]
        )
        self._info = self._service_info(announcement, name=f"{announcement.number}.{SERVICE_TYPE}")
        self._announcing = await self._zc.async_register_service(self._info, allow_name_change=True)
        self.counters.registrations += 1

    async def update(self, announcement: LanAnnouncement) -> None:
        """Publish a changed announcement under the same name (new TXT, re-announced)."""
        if self._zc is None or self._info is None or self._closed:
            raise RuntimeError("LanDiscovery is not running")
        info = self._service_info(announcement, name=self._info.name)
        self._stop_announcing()
        self._announcing = await self._zc.async_update_service(info)
        self._info = info
        self.counters.updates += 1

    async def close(self) -> None:
        """Stop browsing and unregister, sending goodbye packets (RFC 6762 §10.1)."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._resolving.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._browser is not None:
            await self._browser.async_cancel()
        # An announcement still to come would follow the goodbye and bring us back on the
        # other phones (until its TTL ran out).
        self._stop_announcing()
        if self._zc is not None:
            await self._zc.async_close()  # unregisters every service: goodbyes go out

    def _stop_announcing(self) -> None:
        if isinstance(self._announcing, asyncio.Future) and not self._announcing.done():
            self._announcing.cancel()
        self._announcing = None

    def _service_info(self, announcement: LanAnnouncement, *, name: str) -> ServiceInfo:
        addresses = self._announced_addresses()
        host = f"peerline-{announcement.number}-{announcement.public_key.hex()[:8]}.local."
        return AsyncServiceInfo(
            SERVICE_TYPE,
            name,
            port=announcement.port,
            properties=to_txt(announcement),
            server=host,
            parsed_addresses=addresses,
            host_ttl=self._ttl,
            other_ttl=self._ttl,
        )

    def _announced_addresses(self) -> list[str]:
        if self._interfaces is not None:
            return list(self._interfaces)
        found = [str(net.ip) for net in self._networks if not net.ip.is_loopback]
        return sorted(set(found)) or ["127.0.0.1"]

    # -- browsing -----------------------------------------------------------------------------
    def _on_service_state_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        """zeroconf's callback, on the event loop: must return at once and never raise."""
        try:
            if state_change is ServiceStateChange.Removed:
                self._departed(name)
            else:
                self.counters.services_seen += 1
                self._schedule_resolve(name)
        except Exception:
            self.counters.callback_errors += 1
            log.exception("LAN discovery: handling %s for %r failed", state_change, name)

    def _schedule_resolve(self, name: str) -> None:
        if self._closed:
            return
        if name in self._resolving:
            self._again.add(name)  # resolve once more when the running one ends
            return
        if len(self._resolving) >= self._max_resolving:
            self.counters.dropped_busy += 1
            return
        task = asyncio.get_running_loop().create_task(self._resolve(name))
        self._resolving[name] = task

    async def _resolve(self, name: str) -> None:
        try:
            while True:
                self._again.discard(name)
                await self._resolve_once(name)
                if name not in self._again or self._closed:
                    return
        except asyncio.CancelledError:
            raise
        except Exception:  # zeroconf or a callback: never let one service break discovery
            self.counters.callback_errors += 1
            log.exception("LAN discovery: resolving %r failed", name)
        finally:
            self._resolving.pop(name, None)

    async def _resolve_once(self, name: str) -> None:
        assert self._zc is not None
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        ok = await info.async_request(
            self._zc.zeroconf, self._timeout_ms, question_type=DNSQuestionType.QM
        )
        if not ok:
            self.counters.resolve_failed += 1
            return
        try:
            announcement = from_txt(info.properties)
        except DecodeError as exc:
            self.counters.malformed += 1
            log.debug("LAN discovery: malformed record %r: %s", name, exc)
            return
        if announcement.public_key == self._own_key:
            return
        host = self._pick_address(info)
        if host is None:
            self.counters.no_address += 1
            return
        previous = self._names.get(name)
        if previous is None and len(self._names) >= MAX_NAMES:
            self.counters.dropped_names += 1
            return
        self._names[name] = announcement.public_key
        if previous is not None and previous != announcement.public_key:
            self._report_lost(previous)  # the name now belongs to another key
        self.counters.heard += 1
        try:
            self._on_heard(announcement, host)
        except Exception:
            self.counters.callback_errors += 1
            log.exception("LAN discovery: on_heard failed")

    def _pick_address(self, info: ServiceInfo) -> str | None:
        """An address of the service on one of our own networks, else the first one."""
        candidates = info.parsed_addresses(IPVersion.V4Only)
        for address in candidates:
            ip = ipaddress.IPv4Address(address)
            if any(ip in net.network for net in self._networks):
                return address
        return candidates[0] if candidates else None

    def _departed(self, name: str) -> None:
        key = self._names.pop(name, None)
        task = self._resolving.get(name)
        if task is not None:
            self._again.discard(name)
            task.cancel()
        if key is not None:
            self._report_lost(key)

    def _report_lost(self, key: bytes) -> None:
        if key in self._names.values():
            return  # still announced under another name
        self.counters.departures += 1
        try:
            self._on_lost(key)
        except Exception:
            self.counters.callback_errors += 1
            log.exception("LAN discovery: on_lost failed")


class LanPublisher:
    """Keeps zeroconf's copy of this phone's announcement in step with the one wanted, one
    update at a time; an update zeroconf refuses is tried again ``UPDATE_RETRY_S`` later.

    Then: ``want(announcement)`` whenever it changes (before or after ``started``);
    ``close()`` at exit.
    """

    def __init__(self, discovery: LanDiscovery) -> None:
        self.discovery = discovery
        self._loop = asyncio.get_running_loop()
        self._registered: LanAnnouncement | None = None
        self._wanted: LanAnnouncement | None = None
        self._updater: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False
        self.update_errors = 0

    def started(self, registered: LanAnnouncement) -> None:
        """``discovery.start`` registered ``registered``: later changes go out as updates."""
        self._registered = registered
        self._started = True
        self._kick()

    def want(self, announcement: LanAnnouncement) -> None:
        self._wanted = announcement
        self._kick()

    async def close(self) -> None:
        self._closed = True
        if self._updater is not None:
            self._updater.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._updater

    def _kick(self) -> None:
        if not self._started or self._closed:
            return
        if self._wanted is None or self._wanted == self._registered:
            return
        if self._updater is None or self._updater.done():
            self._updater = self._loop.create_task(self._push_updates())

    async def _push_updates(self) -> None:
        while not self._closed and self._wanted is not None and self._wanted != self._registered:
            wanted = self._wanted
            try:
                await self.discovery.update(wanted)
            except Exception as exc:  # zeroconf refused or the socket failed: try again later
                self.update_errors += 1
                log.warning("LAN announcement update failed (%s); retrying", exc)
                await asyncio.sleep(UPDATE_RETRY_S)
                continue
            self._registered = wanted


class LanDriver:
    """Runs a standalone ``ExtensionRegistry`` on ``LanDiscovery``: one timer, events to
    ``on_event`` (a phone runs its registry inside ``PhoneCore`` instead, and uses
    ``LanDiscovery`` and ``LanPublisher`` directly).

    Example::

        registry = ExtensionRegistry(identity=me, number=n, port=udp_port, binding=binding,
                                     previous_extension=saved_ext, claim_seq=saved_seq)
        lan = LanDriver(registry, on_event=handle)
        await lan.start()
        ...
        lan.bindings_changed()          # whenever the binding learned a number
        peer = lan.registry.resolve("201")
        await lan.close()
    """

    def __init__(
        self,
        registry: ExtensionRegistry,
        *,
        on_event: Callable[[LanEvent], None],
        interfaces: Sequence[str] | None = None,
        discovery: LanDiscovery | None = None,
    ) -> None:
        self.registry = registry
        self._on_event = on_event
        self.discovery = discovery or LanDiscovery(
            on_heard=self._heard, on_lost=self._lost, interfaces=interfaces
        )
        self.publisher = LanPublisher(self.discovery)
        self._loop = asyncio.get_running_loop()
        self._timer = DeadlineTimer(self._loop, self._fire)
        self._closed = False

    async def start(self) -> None:
        """Start the registry's probe (unless its owner already did, at a time it chose) and
        zeroconf (browse first, then register)."""
        if self.registry.state is RegistryState.IDLE:
            self.registry.start(now=self._loop.time())
        self.poke()
        announcement = self.registry.announcement
        assert announcement is not None
        await self.discovery.start(announcement)
        self.publisher.started(announcement)

    def bindings_changed(self) -> None:
        """The number binding learned something: let the registry re-check pending peers."""
        self.registry.bindings_changed(now=self._loop.time())
        self.poke()

    def resolve(self, extension: str) -> LanPeer | None:
        return self.registry.resolve(extension)

    async def close(self) -> None:
        """Stop the timer and updates, then unregister (goodbye packets)."""
        if self._closed:
            return
        self._closed = True
        self._timer.cancel()
        await self.publisher.close()
        await self.discovery.close()

    def poke(self) -> None:
        """Deliver the registry's events and re-arm its timer (after any call on it)."""
        while (event := self.registry.next_event()) is not None:
            if isinstance(event, AnnouncementChanged):
                self.publisher.want(event.announcement)
            try:
                self._on_event(event)
            except Exception:
                log.exception("LAN event handler failed for %s", type(event).__name__)
        self._rearm()

    def _heard(self, announcement: LanAnnouncement, host: str) -> None:
        if self._closed:
            return
        self.registry.heard(announcement, host, now=self._loop.time())
        self.poke()

    def _lost(self, key: bytes) -> None:
        if self._closed:
            return
        self.registry.lost(key, now=self._loop.time())
        self.poke()

    def _rearm(self) -> None:
        if not self._closed:
            self._timer.set(self.registry.get_timer())

    def _fire(self, now: float) -> None:
        self.registry.handle_timer(now=now)
        self.poke()

    @property
    def update_errors(self) -> int:
        return self.publisher.update_errors

    def status(self) -> dict[str, Any]:
        """Registry summary plus discovery counters, for ``peerline status``."""
        return {
            **self.registry.status(),
            "service": self.discovery.service_name,
            "addresses": self.discovery.addresses,
            "discovery": self.discovery.counters.as_dict(),
            "update_errors": self.update_errors,
        }
