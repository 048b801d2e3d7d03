"""``peerline run``: the composition root that wires a Node to sockets, storage and the API.

It owns what is not protocol: the wall clock for stored timestamps, number derivation for
callers the phone has never seen (argon2id, run in a worker thread so the loop never stalls),
the SQLite store and the control socket.
"""

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import logging
import signal
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from peerline import __version__
from peerline.adapters.opus import OpusDecoder, OpusEncoder
from peerline.adapters.rng import OsRng
from peerline.errors import InvalidKey, InvalidNumber, LocalProtocolError, StoreError
from peerline.ports import AudioDecoder, AudioEncoder
from peerline.proto.call.events import CallEvent, CallStateChanged, DtmfReceived
from peerline.proto.call.manager import CallConfig, CallError, CallManager
from peerline.proto.call.state import Call, CallState
from peerline.proto.engine import Engine
from peerline.proto.events import (
    HandshakeCompleted,
    MediaReceived,
    MediaReportReceived,
    MessageDelivered,
    MessageFailed,
    MessageReceived,
    PeerEndpointChanged,
    PeerSilent,
    SignalReceived,
)
from peerline.proto.identity import (
    Identity,
    derive_number,
    format_number,
    parse_number,
)
from peerline.proto.lan import ExtensionRegistry, is_extension
from peerline.proto.lan.events import (
    AnnouncementChanged,
    ExtensionConflict,
    ExtensionLost,
    LanEvent,
    LanPeerAppeared,
    LanPeerUpdated,
)
from peerline.proto.nat.classify import NatClassifier
from peerline.proto.nat.portmap import (
    MappingAcquired,
    MappingFailed,
    MappingLost,
    MappingReleased,
    PortMapper,
    PortMapState,
)
from peerline.proto.nat.relay import is_relayed, relay_of
from peerline.proto.nat.stun_client import BindingFailed, BindingResult, StunClient
from peerline.proto.nat.stun_server import StunServer
from peerline.proto.node import Node, NodeConfig
from peerline.proto.overlay.events import (
    IntroductionReceived,
    LookupCompleted,
    LookupFailed,
    RecordPublished,
    ReflexiveAddressChanged,
    RelaysChanged,
    RoleChanged,
)
from peerline.proto.overlay.overlay import Overlay, OverlayConfig
from peerline.runtime.audio import AudioDevice, parse_audio_spec
from peerline.runtime.control import CommandError, ControlServer
from peerline.runtime.gateway import read_default_gateway
from peerline.runtime.lan import LanDriver
from peerline.runtime.udp import UdpDriver
from peerline.store.config import Config
from peerline.store.db import Database, MessageStatus
from peerline.types import Addr
from peerline.wire.natpmp import NATPMP_PORT
from peerline.wire.overlay import Contact
from peerline.wire.record import CandidateKind, Record

log = logging.getLogger("peerline")

CONTROL_SOCKET_NAME = "control.sock"
DATABASE_NAME = "peerline.db"
MAX_PENDING_DERIVATIONS = 1024
"""Never-seen keys waiting for their number. Beyond this their messages are still stored (the
number is filled in later, when the key is seen again or added with ``peer.add``) but no
derivation is queued."""
MAX_CACHED_NUMBERS = 4096
"""Numbers remembered for keys that are not stored peers (least recently used out first), so a
sender's later messages are labelled without deriving again. Stored peers are always kept."""
MAX_WAIT_S = 120.0
CONTACT_SAVE_S = 300.0
"""How often the overlay's live contacts are written to the peer cache (and at exit)."""
LOOKUP_WAIT_S = 15.0
ADDRESS_WATCH_S = 1.0
"""How often a phone bound to a wildcard address looks for a change of its own addresses."""
CALL_TICK_S = 0.25
"""How often call timers (ring and media timeouts) are looked at."""
PLAYBACK_DEPTH = 3
"""Frames queued for the speaker at most: more is latency, so a frame beyond is dropped."""
DIAL_WAIT_S = 10.0
"""``dial`` waits this long for the far phone to ring (or refuse) before it returns."""
MAX_SIGNAL_IDS = 1024
RECHECK_AFTER_S = 3.0
"""A handshake to a phone just found by a (quick) lookup that is still unanswered this long
after is followed by a thorough lookup: the record may have been a stale copy."""
RELOCATE_ATTEMPTS = 3
RELOCATE_RETRY_S = 4.0
"""A silent peer is looked up again this long after a lookup that found it nowhere new (lost
queries, storers that missed its move), while this phone is still trying to reach it."""
_ROLE_MEMBER: dict[str, bool | None] = {"supernode": True, "client": False, "auto": None}


@dataclass(frozen=True, slots=True)
class Paths:
    data: Path

    @property
    def control_socket(self) -> Path:
        return self.data / CONTROL_SOCKET_NAME

    @property
    def database(self) -> Path:
        return self.data / DATABASE_NAME


class NumberCache:
    """Key -> dialable number, for labelling messages. Bounded (design rule 11).

    ``pin`` keeps a number for good (this phone, stored peers: bounded by the peer table);
    ``remember`` keeps one among at most ``capacity`` others, dropping the least recently
    used. Every number in it was derived from its key here, or checked by ``peer.add``.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self._pinned: dict[bytes, str] = {}
        self._recent: OrderedDict[bytes, str] = OrderedDict()

    def pin(self, key: bytes, number: str) -> None:
        self._recent.pop(key, None)
        self._pinned[key] = number

    def remember(self, key: bytes, number: str) -> None:
        if key in self._pinned:
            return
        self._recent[key] = number
        self._recent.move_to_end(key)
        while len(self._recent) > self.capacity:
            self._recent.popitem(last=False)

    def get(self, key: bytes) -> str | None:
        number = self._pinned.get(key)
        if number is None:
            number = self._recent.get(key)
            if number is not None:
                self._recent.move_to_end(key)
        return number

    def __len__(self) -> int:
        return len(self._pinned) + len(self._recent)


class NumberWorker:
    """Derives numbers (argon2id, 64 MiB each) on one thread, one at a time, urgent first.

    ``peer.add`` asks with ``urgent=True`` and so waits at most for the derivation already
    running, however many never-seen senders are queued behind it. Requests for a key already
    queued share one derivation (an urgent request moves the key to the urgent queue). Call
    from the event loop thread only. Then: ``close`` at shutdown.
    """

    def __init__(self, derive: Callable[[bytes], str] = derive_number) -> None:
        self._derive = derive
        # One thread: each derivation holds 64 MiB, and a Pi Zero 2 W has 512 MB in all.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="number-kdf")
        self._urgent: deque[bytes] = deque()
        self._background: deque[bytes] = deque()
        self._futures: dict[bytes, asyncio.Future[str]] = {}
        self._running: bytes | None = None

    @property
    def background_waiting(self) -> int:
        """Keys queued without urgency and not yet started."""
        return len(self._background)

    def __contains__(self, key: object) -> bool:
        return key in self._futures

    def request(self, key: bytes, *, urgent: bool) -> "asyncio.Future[str]":
        """A future for ``key``'s number. Await it through ``asyncio.shield``: it is shared."""
        fut = self._futures.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._futures[key] = fut
            (self._urgent if urgent else self._background).append(key)
        elif urgent and key in self._background:
            self._background.remove(key)
            self._urgent.append(key)
        self._start_next()
        return fut

    def _start_next(self) -> None:
        if self._running is not None:
            return
        queue = self._urgent or self._background
        if not queue:
            return
        key = self._running = queue.popleft()
        job = asyncio.get_running_loop().run_in_executor(self._executor, self._derive, key)
        job.add_done_callback(lambda done: self._finish(key, done))

    def _finish(self, key: bytes, done: "asyncio.Future[str]") -> None:
        self._running = None
        fut = self._futures.pop(key, None)
        if fut is not None and not fut.done():
            if done.cancelled():
                fut.cancel()
            elif (exc := done.exception()) is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(done.result())
        self._start_next()

    def close(self) -> None:
        for fut in self._futures.values():
            fut.cancel()
        self._futures.clear()
        self._urgent.clear()
        self._background.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)


CARRIER_NAT = ipaddress.ip_network("100.64.0.0/10")
"""Shared address space (RFC 6598): a phone there sits behind a carrier's NAT."""


class WorkerBinding:
    """The overlay's ``NumberBinding``: cached numbers at once, the rest from the KDF worker.

    A key not yet known is queued (urgent for the phone's own lookups, in the background for
    records others ask it to store) and the overlay re-checks once the number is in.
    """

    def __init__(self, numbers: NumberCache, worker: NumberWorker, on_new: Callable[[], None]):
        self._numbers = numbers
        self._worker = worker
        self._on_new = on_new

    def number_of(self, public_key: bytes, *, urgent: bool = False) -> str | None:
        number = self._numbers.get(public_key)
        if number is not None:
            return number
        if public_key not in self._worker:
            if not urgent and self._worker.background_waiting >= MAX_PENDING_DERIVATIONS:
                return None
            fut = self._worker.request(public_key, urgent=urgent)
            fut.add_done_callback(lambda done: self._derived(public_key, done))
        elif urgent:
            self._worker.request(public_key, urgent=True)
        return None

    def _derived(self, key: bytes, done: "asyncio.Future[str]") -> None:
        if done.cancelled() or done.exception() is not None:
            return
        self._numbers.remember(key, done.result())
        self._on_new()


class Phone:
    """One running phone: Node + Overlay on one UDP socket, store and control API."""

    def __init__(
        self,
        *,
        paths: Paths,
        config: Config,
        identity: Identity,
        db: Database,
        node_config: NodeConfig | None = None,
        overlay_config: OverlayConfig | None = None,
    ) -> None:
        self.paths = paths
        self.config = config
        self.identity = identity
        self.db = db
        self.number = derive_number(identity.public_key)
        self.node = Node(
            identity=identity,
            rng=OsRng(),
            config=node_config or NodeConfig(keepalive_s=config.network.keepalive_s),
        )
        self.started_at = time.time()
        self._numbers = NumberCache(MAX_CACHED_NUMBERS)
        self._numbers.pin(identity.public_key, self.number)
        self.numbers_deferred = 0
        self._kdf = NumberWorker()
        self._waiters: dict[bytes, asyncio.Future[str]] = {}
        self._lookups: dict[int, asyncio.Future[LookupCompleted | LookupFailed]] = {}
        self._relocating: set[bytes] = set()
        "Silent peers being looked up again (one relocation per peer at a time)."
        self._handshakes: dict[bytes, list[asyncio.Future[HandshakeCompleted]]] = {}
        settings = config.overlay
        # A record's sequence number must never go back, across restarts and clock resets.
        stored_seq = int(db.get_state("record_seq") or 0)
        self._binding = WorkerBinding(self._numbers, self._kdf, self._bindings_changed)
        self.overlay = Overlay(
            identity=identity,
            rng=OsRng(),
            binding=self._binding,
            number=self.number,
            config=overlay_config
            or OverlayConfig(
                member=_ROLE_MEMBER[settings.role],
                # One setting for every NAT keepalive: sessions' and the relays' pings.
                relay_keepalive_s=config.network.keepalive_s,
            ),
            seq_start=max(stored_seq + 1, time.time_ns() // 1_000_000),
        )
        self.stun = StunClient(OsRng())
        self.stun_results: dict[Addr, BindingResult | BindingFailed] = {}
        self.classifier: NatClassifier | None = None
        self.stun_server = StunServer()
        self.engine = Engine(
            node=self.node, overlay=self.overlay, stun=self.stun, stun_server=self.stun_server
        )
        self._driver: UdpDriver | None = None
        self._control: ControlServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._host_candidates: list[Addr] = []
        self.lan: LanDriver | None = None
        self.calls = CallManager(
            codecs=opus_codecs,
            rng=OsRng(),
            config=CallConfig(
                region=config.audio.tones,
                name=config.phone.name,
                auto_answer=config.calls.auto_answer,
                ring_timeout_s=config.calls.ring_timeout_s,
            ),
        )
        self.audio: AudioDevice | None = None
        self.audio_frames_dropped = 0
        "Speaker frames dropped because the playback queue was already deep (latency cap)."
        self._signal_ids: OrderedDict[bytes, bytes] = OrderedDict()
        "SIGNAL message id -> peer key, to route delivery failures to the call."
        self._call_waiters: dict[bytes, list[asyncio.Future[CallStateChanged]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        for row in self.db.peers():
            self._numbers.pin(row.public_key, row.number)
            try:
                self.node.add_peer(row.public_key, (row.host, row.port))
            except (InvalidKey, LocalProtocolError) as exc:
                log.warning("skipping stored peer %s: %s", row.number, exc)
        self._loop = asyncio.get_running_loop()
        net = self.config.network
        self._driver = UdpDriver(
            self.engine, self._on_event, dscp=net.dscp, dscp_media=net.dscp_media
        )
        await self._driver.start(bind4=net.bind4, bind6=net.bind6, port=net.port)
        self._host_candidates = host_candidates(self._driver.local_addrs)
        self._tell_overlay_own_addresses()
        self._control = ControlServer(self.paths.control_socket, self._handlers())
        await self._control.start()
        if self.config.overlay.lan and net.bind4:
            await self._start_lan()
        self._ask_stun_servers()
        self._map_port()
        self._join_overlay()
        self._spawn(self._save_contacts_every(CONTACT_SAVE_S))
        self._start_audio()
        self._spawn(self._call_timers_every(CALL_TICK_S))
        if any(ipaddress.ip_address(h).is_unspecified for h, _ in self._driver.local_addrs):
            self._spawn(self._watch_addresses_every(ADDRESS_WATCH_S))

    async def _start_lan(self) -> None:
        """Announce this phone on the LAN (zeroconf) and take an extension there."""
        assert self._driver is not None
        port = next(p for h, p in self._driver.local_addrs if ":" not in h)
        saved_seq = int(self.db.get_state("lan_claim_seq") or 0)
        registry = ExtensionRegistry(
            identity=self.identity,
            number=self.number,
            port=port,
            binding=self._binding,
            configured_extension=self.config.overlay.extension or None,
            previous_extension=self.db.get_state("lan_extension"),
            claim_seq=max(saved_seq, int(time.time())),
        )
        bind4 = self.config.network.bind4
        interfaces = None if ipaddress.ip_address(bind4).is_unspecified else [bind4]
        self.lan = LanDriver(registry, on_event=self._on_lan_event, interfaces=interfaces)
        try:
            await self.lan.start()
        except OSError as exc:  # no multicast-capable interface: the phone works without LAN
            log.warning("LAN discovery unavailable: %s", exc)
            self.lan = None

    def _on_lan_event(self, event: LanEvent) -> None:
        if isinstance(event, AnnouncementChanged):
            ann = event.announcement
            self.db.set_state("lan_claim_seq", str(ann.claim_seq))
            if ann.extension and not ann.configured:
                self.db.set_state("lan_extension", ann.extension)
        elif isinstance(event, LanPeerAppeared | LanPeerUpdated):
            peer = event.peer
            self._numbers.pin(peer.public_key, peer.number)
            # A phone on the LAN is an overlay contact too: no seed needed on a LAN.
            now = asyncio.get_running_loop().time()
            self.overlay.add_contact(Contact(peer.public_key, (peer.host, peer.port)), now=now)
            self._poke()
        elif isinstance(event, ExtensionConflict):
            keys = ", ".join(k.hex()[:16] for k in event.keys)
            log.warning("extension %s is configured on several phones (%s)", event.extension, keys)
        elif isinstance(event, ExtensionLost):
            log.warning("this phone lost its LAN extension: %s", event)

    def _ask_stun_servers(self) -> None:
        """Ask every STUN server for our address; classify the NAT (RFC 5780) with the first."""
        now = asyncio.get_running_loop().time()
        servers = [
            server
            for server in self.config.nat.parsed_servers()
            if any((":" in h) == (":" in server[0]) for h, _ in self.local_addrs)
        ]
        for server in servers[1:]:
            self.stun.request(server, now=now)
        if servers:
            self.classifier = NatClassifier(self.stun, local=set(self._host_candidates))
            self.classifier.start(servers[0], now=now)
        self._poke()

    def _map_port(self) -> None:
        """Behind a router (a private address and a default gateway): ask it for a mapping
        by NAT-PMP. A router without it never answers; that costs a few datagrams."""
        if not self.config.nat.port_mapping or not self.config.network.bind4:
            return
        gateway = read_default_gateway()
        private = [
            a
            for a in self._host_candidates
            if ":" not in a[0]
            and ((ip := ipaddress.ip_address(a[0])).is_private or ip in CARRIER_NAT)
            and not (ip.is_loopback or ip.is_link_local)
        ]
        if gateway is None or not private:
            return
        mapper = PortMapper((gateway.address, NATPMP_PORT), private[0][1], rng=OsRng())
        self.engine.portmap = mapper
        mapper.start(now=asyncio.get_running_loop().time())
        log.info("asking the router %s for a port mapping (NAT-PMP)", gateway.address)
        self._poke()

    def _on_portmap(
        self, event: MappingAcquired | MappingFailed | MappingLost | MappingReleased
    ) -> None:
        if isinstance(event, MappingAcquired):
            log.info("the router forwards %s:%d to this phone (NAT-PMP)", *event.external)
            self._publish()
        elif isinstance(event, MappingLost):
            log.info("port mapping lost (%s)", event.reason)
            self._publish()
        elif isinstance(event, MappingFailed):
            log.info("no port mapping from the router (%s)", event.reason)

    async def _release_port(self, timeout: float = 2.0) -> None:
        """At exit: delete the router's mapping, so no hole stays open after us."""
        mapper = self.engine.portmap
        if mapper is None or self._driver is None:
            return
        mapper.release(now=asyncio.get_running_loop().time())
        self._poke()
        deadline = asyncio.get_running_loop().time() + timeout
        while mapper.state is PortMapState.RELEASING:
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.05)

    def _own_candidates(self) -> list[tuple[CandidateKind, Addr]]:
        """Where others may reach this phone, best first: a router's mapping, the address
        overlay peers see, then the host's own addresses."""
        out: list[tuple[CandidateKind, Addr]] = []
        mapped = self.engine.portmap.external if self.engine.portmap is not None else None
        if mapped is not None:
            out.append((CandidateKind.MAPPED, mapped))
        reflexive = self.overlay.reflexive
        if reflexive is not None and reflexive not in self._host_candidates:
            out.append((CandidateKind.REFLEXIVE, reflexive))
        out.extend((CandidateKind.HOST, a) for a in self._host_candidates)
        unique: list[tuple[CandidateKind, Addr]] = []
        for kind, addr in out:
            if all(addr != a for _, a in unique):
                unique.append((kind, addr))
        return unique

    def _join_overlay(self) -> None:
        """Peer cache first, then the configured seeds; then publish where we are."""
        now = asyncio.get_running_loop().time()
        for key, host, port in self.db.overlay_contacts():
            self.overlay.add_contact(Contact(key, (host, port)), now=now)
        seeds = [
            (seed.public_key, (seed.host, seed.port)) for seed in self.config.overlay.parsed_seeds()
        ]
        if seeds:
            self.overlay.bootstrap(seeds, now=now)
        self._publish()

    def _publish(self) -> None:
        now = asyncio.get_running_loop().time()
        addresses = self._own_candidates()  # mapped and reflexive first: never cut off
        seq = self.overlay.publish(addresses=tuple(addresses[:8]), now=now)
        self.db.set_state("record_seq", str(seq))
        self._poke()

    def _bindings_changed(self) -> None:
        self.overlay.bindings_changed(now=asyncio.get_running_loop().time())
        if self.lan is not None:
            self.lan.bindings_changed()
        self._poke()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch_addresses_every(self, period: float) -> None:
        """Notice this machine's addresses changing (DHCP, Wi-Fi to Ethernet): tell every peer
        at once (a keepalive from the new address moves its path) and republish."""
        while True:
            await asyncio.sleep(period)
            assert self._driver is not None
            fresh = host_candidates(self._driver.local_addrs)
            if fresh != self._host_candidates:
                log.info("this phone's addresses changed: %s", fresh)
                self._host_candidates = fresh
                self._tell_overlay_own_addresses()
                now = asyncio.get_running_loop().time()
                self.node.nudge(now=now)
                self.engine.traversal.rebind(now=now)
                self._publish()

    def _tell_overlay_own_addresses(self) -> None:
        assert self._driver is not None
        # Phones on this very machine see us at 127.0.0.1: that is our own address too.
        own = self._host_candidates + [
            ("127.0.0.1", port)
            for host, port in self._driver.local_addrs
            if host in ("0.0.0.0", "127.0.0.1")  # noqa: S104 - matching, not binding
        ]
        self.overlay.set_host_addresses(own, now=asyncio.get_running_loop().time())

    async def _save_contacts_every(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            self._save_contacts()

    def _save_contacts(self) -> None:
        contacts = [
            (c.public_key, c.addr[0], c.addr[1]) for c in self.overlay.contacts() if c.addr[1]
        ]
        if contacts:
            try:
                self.db.save_overlay_contacts(contacts, now=time.time())
            except StoreError as exc:
                log.warning("cannot save the overlay contacts: %s", exc)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        call = self.calls.live_call()
        if call is not None and self._loop is not None:  # tell the far end, best effort
            self.calls.hangup(call.call_id, now=self._loop.time())
            self._pump_calls(self._loop.time(), poke=True)
        if self.audio is not None:
            await asyncio.to_thread(self.audio.stop)
        await self._release_port()
        self._save_contacts()
        for pending in self._lookups.values():
            pending.cancel()
        if self.lan is not None:
            await self.lan.close()
        if self._control is not None:
            await self._control.close()
        if self._driver is not None:
            self._driver.close()
        for fut in self._waiters.values():
            fut.cancel()
        self._kdf.close()

    @property
    def local_addrs(self) -> list[Addr]:
        return self._driver.local_addrs if self._driver else []

    def _poke(self) -> None:
        if self._driver is not None:
            self._driver.poke()

    # -- events from the node -----------------------------------------------------------------
    def _on_event(self, event: object) -> None:
        if isinstance(event, MediaReceived):
            self.calls.receive_media(event.peer_key, event.body, at=event.at)
        elif isinstance(event, MediaReportReceived):
            self.calls.receive_report(event.peer_key, event.body, at=event.at)
        elif isinstance(event, SignalReceived):
            now = asyncio.get_running_loop().time()
            self.calls.receive_signal(event.peer_key, event.body, now=now)
            self._pump_calls(now, poke=False)
        elif (
            isinstance(event, MessageDelivered | MessageFailed)
            and event.message_id in self._signal_ids
        ):
            peer = self._signal_ids.pop(event.message_id)
            if isinstance(event, MessageFailed):
                now = asyncio.get_running_loop().time()
                self.calls.peer_unreachable(peer, now=now)
                self._pump_calls(now, poke=False)
        elif isinstance(event, MessageReceived):
            # Stored at once: the node has acknowledged it, so it must never be lost.
            number = self._numbers.get(event.peer_key)
            self._store_incoming(event, number)
            if number is None:
                self._learn_number(event.peer_key)
        elif isinstance(event, MessageDelivered | MessageFailed):
            status: MessageStatus = "delivered" if isinstance(event, MessageDelivered) else "failed"
            self.db.set_message_status(event.message_id, status)
            fut = self._waiters.pop(event.message_id, None)
            if fut is not None and not fut.done():
                fut.set_result(status)
            if isinstance(event, MessageFailed):
                log.info("message %s failed: %s", event.message_id.hex()[:8], event.reason)
        elif isinstance(event, HandshakeCompleted):
            self._on_handshake(event)
            log.info(
                "secure session with %s (%s), SAS %s",
                self._label(event.peer_key),
                "we called" if event.initiator else "they called",
                event.sas,
            )
        elif isinstance(event, PeerEndpointChanged):
            if not is_relayed(event.addr):  # a relay's channel means nothing after a restart
                self.db.touch_peer(event.peer_key, event.addr[0], event.addr[1], now=time.time())
            log.info("%s moved to %s:%d", self._label(event.peer_key), *event.addr)
        elif isinstance(event, MappingAcquired | MappingFailed | MappingLost | MappingReleased):
            self._on_portmap(event)
        elif isinstance(event, BindingResult | BindingFailed):
            self._on_stun(event)
        elif isinstance(event, PeerSilent):
            number = self._numbers.get(event.peer_key)
            if number is not None and len(self.overlay.table):
                self._spawn(self._relocate(event.peer_key, number))
        elif isinstance(event, LookupCompleted | LookupFailed):
            lookup = self._lookups.pop(event.lookup_id, None)
            if lookup is not None and not lookup.done():
                lookup.set_result(event)
        elif isinstance(event, RecordPublished):
            log.info("directory record %d stored on %d nodes", event.seq, event.storers)
            if event.seq > int(self.db.get_state("record_seq") or 0):
                self.db.set_state("record_seq", str(event.seq))  # also re-signed records
        elif isinstance(event, ReflexiveAddressChanged) and event.addr not in self._host_candidates:
            log.info("overlay peers see this phone at %s:%d", *event.addr)
            self._publish()
        elif isinstance(event, RoleChanged):
            log.info("overlay role: %s", "supernode" if event.member else "client behind NAT")
        elif isinstance(event, IntroductionReceived):
            self._on_introduction(event)
        elif isinstance(event, RelaysChanged):
            log.info("keeping a path open through %d supernode(s)", len(event.relays))

    def _on_introduction(self, event: IntroductionReceived) -> None:
        """A caller behind a NAT is coming through our relay; the engine's traversal has
        already sent towards it (or probed it, for a session that wants to go direct)."""
        if event.candidates and event.caller != self.identity.public_key:
            log.info("introduced: %s at %s:%d", self._label(event.caller), *event.candidates[0])

    def _reach(self, record: Record, addr: Addr) -> None:
        """Before calling a phone behind a NAT: punch through its relays, with a relay ready
        if the punch fails (``Traversal.reach``)."""
        if addr in self._host_candidates:
            return
        traversal = self.engine.traversal
        traversal.own_candidates = tuple(a for _, a in self._own_candidates())
        direct = [addr, *(a for _, a in record.addresses if a != addr)]
        now = asyncio.get_running_loop().time()
        traversal.reach(record.public_key, direct=direct, relays=record.relays, now=now)
        self._poke()

    def _on_stun(self, event: BindingResult | BindingFailed) -> None:
        classifier = self.classifier
        if classifier is not None and classifier.result is None:
            behaviour = classifier.on_stun(event, now=asyncio.get_running_loop().time())
            self._poke()  # the next classification test, if any
            if behaviour is not None:
                log.info("NAT behaviour: %s", behaviour.as_dict())
        # A success is what the server says about us; a failure is kept only if nothing better.
        if isinstance(event, BindingResult) or event.server not in self.stun_results:
            self.stun_results[event.server] = event
        if isinstance(event, BindingResult):
            log.debug("STUN %s:%d sees this phone at %s:%d", *event.server, *event.mapped)
        else:
            log.debug("STUN %s:%d: %s", *event.server, event.reason)

    def _on_handshake(self, event: HandshakeCompleted) -> None:
        for fut in self._handshakes.pop(event.peer_key, []):
            if not fut.done():
                fut.set_result(event)

    def _label(self, key: bytes) -> str:
        number = self._numbers.get(key)
        return format_number(number) if number else f"key {key.hex()[:16]}…"

    def _learn_number(self, key: bytes) -> None:
        """Derive a never-seen key's number in the worker, then fill it in on its messages."""
        if key in self._kdf:
            return
        if self._kdf.background_waiting >= MAX_PENDING_DERIVATIONS:
            self.numbers_deferred += 1
            return
        fut = self._kdf.request(key, urgent=False)
        fut.add_done_callback(lambda done: self._number_derived(key, done))

    def _number_derived(self, key: bytes, done: "asyncio.Future[str]") -> None:
        if done.cancelled() or done.exception() is not None:
            return
        number = done.result()
        self._numbers.remember(key, number)
        self._fill_numbers(key, number)
        self._bindings_changed()  # a lookup may be waiting on this very key's number

    def _fill_numbers(self, key: bytes, number: str) -> None:
        try:
            self.db.set_message_numbers(key, number)
        except StoreError as exc:
            log.warning("cannot fill in the number of %s: %s", self._label(key), exc)

    def _store_incoming(self, event: MessageReceived, number: str | None) -> None:
        fresh = self.db.add_message(
            message_id=event.message_id,
            direction="in",
            peer_key=event.peer_key,
            peer_number=number,
            body=event.text,
            created_at=time.time(),
            status="received",
        )
        if fresh:
            log.info("message %s from %s", event.message_id.hex()[:8], self._label(event.peer_key))

    # -- control API --------------------------------------------------------------------------
    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "id": self._cmd_id,
            "status": self._cmd_status,
            "peer.add": self._cmd_peer_add,
            "peer.list": self._cmd_peer_list,
            "msg.send": self._cmd_msg_send,
            "msg.list": self._cmd_msg_list,
            "lookup": self._cmd_lookup,
            "dial": self._cmd_dial,
            "answer": self._cmd_answer,
            "hangup": self._cmd_hangup,
            "dtmf": self._cmd_dtmf,
            "lan": self._cmd_lan,
        }

    async def _cmd_id(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"number": self.number, "public_key": self.identity.public_key.hex()}

    async def _cmd_status(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.status()

    def status(self) -> dict[str, Any]:
        now = asyncio.get_running_loop().time()
        counters = self.node.counters.as_dict()
        counters["numbers_deferred"] = self.numbers_deferred
        if self._driver is not None:
            counters["socket_errors"] = self._driver.socket_errors
        return {
            "version": __version__,
            "number": self.number,
            "number_display": format_number(self.number),
            "public_key": self.identity.public_key.hex(),
            "name": self.config.phone.name,
            "listen": [list(a) for a in self.local_addrs],
            "uptime_s": round(time.time() - self.started_at, 1),
            "nat": {
                "stun": [
                    {
                        "server": list(server),
                        "mapped": list(r.mapped) if isinstance(r, BindingResult) else None,
                        "rtt_ms": round(r.rtt_s * 1000, 1)
                        if isinstance(r, BindingResult)
                        else None,
                        "error": r.reason if isinstance(r, BindingFailed) else None,
                    }
                    for server, r in self.stun_results.items()
                ],
                "behaviour": (
                    self.classifier.result.as_dict()
                    if self.classifier is not None and self.classifier.result is not None
                    else None
                ),
                "counters": self.stun.counters.as_dict(),
                "server": self.stun_server.counters.as_dict(),
                "port_mapping": (
                    self.engine.portmap.status(now=now) if self.engine.portmap is not None else None
                ),
            },
            "peers": len(self.db.peers()),
            "sessions": [self._session_status(s) for s in self.node.sessions(now=now)],
            "calls": [self._call_json(c, now) for c in self.calls.calls()],
            "call_counters": self.calls.counters.as_dict(),
            "audio": None
            if self.audio is None
            else asdict(self.audio.status()) | {"frames_dropped": self.audio_frames_dropped},
            "counters": counters,
            "lan": self.lan.registry.status() if self.lan is not None else None,
            "overlay": {
                "role": "supernode" if self.overlay.member else "client",
                "relays": [list(c.addr) for c in self.overlay.relays],
                "joined": self.overlay.joined,
                "contacts": len(self.overlay.table),
                "records_held": len(self.overlay.store),
                "reflexive": list(self.overlay.reflexive) if self.overlay.reflexive else None,
                "record_seq": self.overlay.record.seq if self.overlay.record else None,
                "keepalive_bytes_per_s": round(
                    self.overlay.counters.keepalive_bytes_sent
                    / max(1.0, time.time() - self.started_at),
                    1,
                ),
                "session_keepalive_bytes_per_s": round(
                    self.node.counters.keepalive_bytes_sent
                    / max(1.0, time.time() - self.started_at),
                    1,
                ),
                "counters": self.overlay.counters.as_dict(),
                "relaying": {
                    "channels": len(self.overlay.relay_table),
                    "counters": self.overlay.relay_table.counters.as_dict(),
                },
            },
            "traversal": self.engine.traversal.counters.as_dict(),
        }

    @staticmethod
    def _session_status(session: dict[str, Any]) -> dict[str, Any]:
        """A node session for status: its path says direct or relayed (and through whom)."""
        endpoint = session["endpoint"]
        via = relay_of((endpoint[0], endpoint[1])) if endpoint else None
        session["path"] = "relayed" if via is not None else "direct"
        session["relay"] = list(via[0]) if via is not None else None
        return session

    async def _cmd_peer_add(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            number = parse_number(str(args.get("number", "")))
        except InvalidNumber as exc:
            raise CommandError("bad_number", str(exc)) from None
        key = _parse_key(args.get("public_key"))
        host, port = _parse_host_port(args.get("host"), args.get("port"))
        if key == self.identity.public_key:
            raise CommandError("bad_key", "that is this phone's own key")
        # A number in the cache was derived here from its key; otherwise derive it now, ahead of
        # any never-seen senders queued for the worker.
        derived = self._numbers.get(key)
        if derived is None:
            derived = await asyncio.shield(self._kdf.request(key, urgent=True))
            self._numbers.remember(key, derived)
        # Messages the key sent before its number was known get it now, whatever follows.
        self._fill_numbers(key, derived)
        if derived != number:
            raise CommandError(
                "number_mismatch",
                f"key does not derive to {format_number(number)}: refusing a forged pairing",
            )
        self.db.upsert_peer(key, number, host, port, now=time.time())
        self._numbers.pin(key, number)
        self.node.add_peer(key, (host, port))
        self._poke()
        return {"number": number, "public_key": key.hex(), "host": host, "port": port}

    async def _cmd_peer_list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "number": r.number,
                "public_key": r.public_key.hex(),
                "host": r.host,
                "port": r.port,
                "added_at": r.added_at,
                "last_seen": r.last_seen,
            }
            for r in self.db.peers()
        ]

    async def _cmd_msg_send(self, args: dict[str, Any]) -> dict[str, Any]:
        text = args.get("text")
        if not isinstance(text, str) or not text:
            raise CommandError("bad_request", '"text" must be a non-empty string')
        wait = args.get("wait_s", 10.0)
        bad_type = isinstance(wait, bool) or not isinstance(wait, int | float)
        if bad_type or not 0 <= wait <= MAX_WAIT_S:
            raise CommandError("bad_request", f'"wait_s" must be a number 0..{MAX_WAIT_S:g}')
        number, key = await self._target(args)
        now = asyncio.get_running_loop().time()
        try:
            message_id = self.node.send_message(key, text, now=now)
        except ValueError as exc:
            raise CommandError("bad_request", str(exc)) from None
        except LocalProtocolError as exc:
            raise CommandError("not_sent", str(exc)) from None
        self.db.add_message(
            message_id=message_id,
            direction="out",
            peer_key=key,
            peer_number=number,
            body=text,
            created_at=time.time(),
            status="sent",
        )
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters[message_id] = fut
        self._poke()
        status = "sent"
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                status = await asyncio.wait_for(asyncio.shield(fut), wait)
        if fut.done():
            self._waiters.pop(message_id, None)
        return {"id": message_id.hex(), "status": status}

    def _resolve(self, number: str, key_hex: object) -> bytes:
        """The key to use for ``number``: never picks silently among colliding keys."""
        rows = self.db.peers_by_number(number)
        if key_hex is not None:
            key = _parse_key(key_hex)
            if not any(r.public_key == key for r in rows):
                raise CommandError("unknown_number", "no peer with that number and key")
            return key
        if not rows:
            raise CommandError(
                "unknown_number",
                f"{format_number(number)} is not known; add it with `peerline peer add`",
            )
        if len(rows) > 1:
            keys = ", ".join(r.public_key.hex() for r in rows)
            raise CommandError(
                "number_conflict",
                f"{format_number(number)} belongs to several keys ({keys}); choose one",
            )
        return rows[0].public_key

    async def _resolve_or_lookup(self, number: str, key_hex: object) -> bytes:
        """A stored peer first; otherwise look the number up in the overlay and verify it.

        A stored peer with no live session is looked up too (it may have moved since): its
        address is updated if the overlay has a newer one for the same key.
        """
        if self.db.peers_by_number(number):
            key = self._resolve(number, key_hex)
            now = asyncio.get_running_loop().time()
            live = any(s["peer_key"] == key.hex() for s in self.node.sessions(now=now))
            if not live and len(self.overlay.table):
                with contextlib.suppress(CommandError):
                    found = await self._lookup(number, thorough=True)
                    if isinstance(found, LookupCompleted):
                        for record in found.records:
                            addr = self._pick_address(record)
                            if record.public_key == key and addr is not None:
                                self.db.upsert_peer(key, number, addr[0], addr[1], now=time.time())
                                self.node.add_peer(key, addr)
                                self._reach(record, addr)
            return key
        event = await self._lookup(number)
        if isinstance(event, LookupFailed):
            raise CommandError(
                "unknown_number", f"{format_number(number)} not found ({event.reason})"
            )
        records = list(event.records)
        if key_hex is not None:
            key = _parse_key(key_hex)
            records = [r for r in records if r.public_key == key]
        if not records:
            raise CommandError("unknown_number", "no record for that number and key")
        if len(records) > 1:
            keys = ", ".join(r.public_key.hex() for r in records)
            raise CommandError(
                "number_conflict",
                f"{format_number(number)} belongs to several keys ({keys}); choose one",
            )
        record = records[0]
        addr = self._pick_address(record)
        if addr is None:
            raise CommandError("unreachable", f"{format_number(number)} lists no address")
        # Trust on first use: the key is verified to derive to the number; pin it. A live
        # session (the peer called us) keeps its path: only authenticated packets move it.
        path = self.node.live_path(record.public_key, now=asyncio.get_running_loop().time())
        try:
            self.node.add_peer(record.public_key, addr if path is None else None)
        except (InvalidKey, LocalProtocolError) as exc:
            raise CommandError("bad_record", f"unusable key in the record: {exc}") from None
        self.db.upsert_peer(record.public_key, number, addr[0], addr[1], now=time.time())
        self._numbers.pin(record.public_key, number)
        self._reach(record, addr)
        if path is None:
            self._spawn(self._recheck(record, number))
        return record.public_key

    async def _recheck(self, used: Record, number: str) -> None:
        """A quick lookup ends at the first storers that agree, which may hold an old copy of a
        phone that moved: if the handshake to it is still unanswered after ``RECHECK_AFTER_S``,
        look again thoroughly, and follow a newer record of the same key to its address."""
        key = used.public_key
        await asyncio.sleep(RECHECK_AFTER_S)
        if not self.node.initiation_in_flight(key) or key in self._relocating:
            return
        try:
            found = await self._lookup(number, thorough=True)
        except CommandError:
            return
        if not isinstance(found, LookupCompleted) or not self.node.initiation_in_flight(key):
            return
        for record in found.records:
            addr = self._pick_address(record)
            if record.public_key == key and record.seq > used.seq and addr is not None:
                self._follow(key, number, addr, "newer record")
                self._reach(record, addr)

    async def _relocate(self, key: bytes, number: str) -> None:
        """A peer went silent: if the directory has moved it, follow (its messages go there).

        Looked up thoroughly (the first storers to answer may have missed the move), and again
        while this phone still tries to reach the peer, if a lookup found it nowhere new.
        """
        if key in self._relocating:
            return
        self._relocating.add(key)
        try:
            for attempt in range(RELOCATE_ATTEMPTS):
                if attempt:
                    await asyncio.sleep(RELOCATE_RETRY_S)
                    if not self.node.initiation_in_flight(key):
                        return  # reached meanwhile (or given up on)
                if await self._relocate_once(key, number):
                    return
        finally:
            self._relocating.discard(key)

    async def _relocate_once(self, key: bytes, number: str) -> bool:
        """One lookup for a silent peer; True once there is nothing more to look for."""
        try:
            found = await self._lookup(number, thorough=True)
        except CommandError:
            return False
        if not isinstance(found, LookupCompleted):
            return False
        for record in found.records:
            addr = self._pick_address(record)
            if record.public_key != key or addr is None:
                continue
            self._reach(record, addr)
            endpoint = self.node.peer_endpoint(key)
            if endpoint is not None and is_relayed(endpoint):
                return True  # a relayed path is the traversal's to replace (it probes first)
            if addr == endpoint:
                return False  # the directory still says where it is not answering
            self._follow(key, number, addr, "directory")
            return True
        return False

    def _follow(self, key: bytes, number: str, addr: Addr, why: str) -> None:
        """Send the peer's handshake and queued messages to ``addr`` from now on."""
        log.info("%s moved to %s:%d (%s)", self._label(key), *addr, why)
        self.node.add_peer(key, addr)
        if self.db.peer_by_key(key) is not None:
            self.db.upsert_peer(key, number, addr[0], addr[1], now=time.time())
        self._poke()

    def _pick_address(self, record: Record) -> Addr | None:
        """Until NAT traversal lands: the same NAT -> its host address; else reflexive first."""
        hosts = [a for k, a in record.addresses if k is CandidateKind.HOST]
        others = [a for k, a in record.addresses if k is not CandidateKind.HOST]
        mine = self.overlay.reflexive
        if mine is not None and any(a[0] == mine[0] for a in others) and hosts:
            return hosts[0]
        if others and not all(ipaddress.ip_address(h).is_loopback for h, _ in hosts):
            return others[0]
        return hosts[0] if hosts else (others[0] if others else None)

    async def _lookup(
        self, number: str, *, thorough: bool = False
    ) -> LookupCompleted | LookupFailed:
        """Look ``number`` up; once more if it was not found while some queries went unanswered
        (a lossy or busy network, not an absent number). ``thorough``: see ``Overlay.lookup``."""
        event = await self._lookup_once(number, thorough)
        if isinstance(event, LookupFailed) and event.replies < event.queries:
            log.info("lookup of %s: %s with queries unanswered; again", number, event.reason)
            event = await self._lookup_once(number, thorough)
        return event

    async def _lookup_once(self, number: str, thorough: bool) -> LookupCompleted | LookupFailed:
        loop = asyncio.get_running_loop()
        try:
            lookup_id = self.overlay.lookup(number, now=loop.time(), thorough=thorough)
        except LocalProtocolError as exc:
            raise CommandError("busy", str(exc)) from None
        fut: asyncio.Future[LookupCompleted | LookupFailed] = loop.create_future()
        self._lookups[lookup_id] = fut
        self._poke()
        try:
            return await asyncio.wait_for(fut, LOOKUP_WAIT_S)
        except TimeoutError:
            self._lookups.pop(lookup_id, None)
            raise CommandError("timeout", "the lookup did not finish in time") from None

    async def _target(self, args: dict[str, Any]) -> tuple[str, bytes]:
        """The number and key that ``args["number"]`` (a number or a LAN extension) means."""
        text = str(args.get("number", ""))
        if is_extension(text):
            if self.lan is None:
                raise CommandError("unknown_extension", "LAN discovery is off on this phone")
            peer = self.lan.resolve(text)
            if peer is None:
                raise CommandError("unknown_extension", f"no phone holds extension {text}")
            self._numbers.pin(peer.public_key, peer.number)
            self.node.add_peer(peer.public_key, (peer.host, peer.port))
            return peer.number, peer.public_key
        try:
            number = parse_number(text)
        except InvalidNumber as exc:
            raise CommandError("bad_number", str(exc)) from None
        return number, await self._resolve_or_lookup(number, args.get("public_key"))

    async def _cmd_lan(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.lan is None:
            return {"enabled": False, "extension": None, "phones": []}
        status = self.lan.registry.status()
        return {
            "enabled": True,
            "extension": status["extension"],
            "state": status["state"],
            "phones": [
                {
                    "extension": p.extension,
                    "number": p.number,
                    "public_key": p.public_key.hex(),
                    "host": p.host,
                    "port": p.port,
                    "configured": p.configured,
                }
                for p in self.lan.registry.peers()
            ],
            "conflicts": status["conflicts"],
        }

    async def _cmd_lookup(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            number = parse_number(str(args.get("number", "")))
        except InvalidNumber as exc:
            raise CommandError("bad_number", str(exc)) from None
        event = await self._lookup(number)
        result: dict[str, Any] = {
            "number": number,
            "found": isinstance(event, LookupCompleted),
            "elapsed_ms": round(event.elapsed_s * 1000.0, 1),
            "queries": event.queries,
            "replies": event.replies,
        }
        if isinstance(event, LookupCompleted):
            result["hops"] = event.hops
            result["records"] = [record_json(r) for r in event.records]
            result["conflict"] = len(event.records) > 1
        else:
            result["reason"] = event.reason
        return result

    async def _cmd_dial(self, args: dict[str, Any]) -> dict[str, Any]:
        """Resolve a number or LAN extension, open a secure session and place a call on it;
        returns once the far phone rings or refuses (or after ``DIAL_WAIT_S``)."""
        number, key = await self._target(args)
        session = await self._open_session(number, key)
        loop = asyncio.get_running_loop()
        live = self.calls.live_call()
        if live is not None and live.peer_key != key:
            raise CommandError("busy", "another call is in progress; hang it up first")
        call = live or self._place_call(key, loop.time())
        if call.state is CallState.DIALING:
            fut: asyncio.Future[CallStateChanged] = loop.create_future()
            self._call_waiters.setdefault(call.call_id, []).append(fut)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, DIAL_WAIT_S)
        now_live = self.calls.live_call()
        if call.reason == "glare" and now_live is not None and now_live.peer_key == key:
            call = now_live  # both dialled at once: the peer's call survived, answered here
        return session | {"call": self._call_json(call, loop.time())}

    def _place_call(self, key: bytes, now: float) -> Call:
        try:
            call = self.calls.dial(key, now=now)
        except CallError as exc:
            raise CommandError(exc.code, str(exc)) from None
        self._pump_calls(now, poke=True)
        return call

    async def _open_session(self, number: str, key: bytes) -> dict[str, Any]:
        """A live secure session with ``key``: the one there is, or a new handshake."""
        loop = asyncio.get_running_loop()
        for session in self.node.sessions(now=loop.time()):
            if session["peer_key"] == key.hex():  # already connected: nothing to wait for
                return {
                    "number": number,
                    "public_key": key.hex(),
                    "sas": session["sas"],
                    "addr": session["endpoint"],
                    "path": self._session_status(session)["path"],
                }
        fut: asyncio.Future[HandshakeCompleted] = loop.create_future()
        self._handshakes.setdefault(key, []).append(fut)
        self.node.connect(key, now=loop.time())
        self._poke()
        try:
            done = await asyncio.wait_for(fut, LOOKUP_WAIT_S)
        except TimeoutError:
            raise CommandError("unreachable", f"{format_number(number)} did not answer") from None
        return {
            "number": number,
            "public_key": key.hex(),
            "sas": done.sas,
            "addr": list(done.addr),
            "path": "relayed" if is_relayed(done.addr) else "direct",
        }

    async def _cmd_answer(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._call_command(args, "answer")

    async def _cmd_hangup(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._call_command(args, "hangup")

    async def _cmd_dtmf(self, args: dict[str, Any]) -> dict[str, Any]:
        digits = args.get("digits")
        if not isinstance(digits, str) or not 1 <= len(digits) <= 32:
            raise CommandError("bad_request", '"digits" must be a string of 1 to 32 DTMF digits')
        return self._call_command(args, "dtmf")

    def _call_command(self, args: dict[str, Any], what: str) -> dict[str, Any]:
        call_id: bytes | None = None
        if args.get("call_id") is not None:
            try:
                call_id = bytes.fromhex(str(args["call_id"]))
            except ValueError:
                raise CommandError("bad_request", '"call_id" must be hex') from None
        now = asyncio.get_running_loop().time()
        try:
            if what == "answer":
                call = self.calls.answer(call_id, now=now)
            elif what == "hangup":
                call = self.calls.hangup(call_id, now=now)
            else:
                call = self.calls.send_dtmf(str(args["digits"]), call_id, now=now)
        except CallError as exc:
            raise CommandError(exc.code, str(exc)) from None
        self._pump_calls(now, poke=True)
        return self._call_json(call, now)

    def _call_json(self, call: Call, now: float) -> dict[str, Any]:
        """A call for the control API: the manager's view plus number and path."""
        out = self.calls.call_status(call, now)
        out["number"] = self._numbers.get(call.peer_key)
        endpoint = self.node.peer_endpoint(call.peer_key)
        out["path"] = None
        if call.live and endpoint is not None:
            out["path"] = "relayed" if is_relayed(endpoint) else "direct"
        return out

    # -- calls and audio ----------------------------------------------------------------------
    def _start_audio(self) -> None:
        spec = parse_audio_spec(self.config.audio.backend)
        self.audio = AudioDevice(spec, on_capture=self._captured)
        self.audio.set_active(False)  # opened when a call or a tone needs it
        self.audio.start()

    def _captured(self, frame: bytes) -> None:
        """From the audio thread, every 20 ms while active: hand the frame to the loop."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the phone is stopping
                loop.call_soon_threadsafe(self._audio_tick, frame)

    def _audio_tick(self, frame: bytes) -> None:
        audio = self.audio
        if audio is None or self._loop is None:
            return
        now = self._loop.time()
        out = self.calls.audio_tick(frame, now=now)
        if audio.active and audio.playback_queued < PLAYBACK_DEPTH:
            audio.play(out)
        else:
            self.audio_frames_dropped += 1
        self._pump_calls(now, poke=False)
        if self._driver is not None:
            self._driver.send_media_now()

    async def _call_timers_every(self, period: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            deadline = self.calls.get_timer()
            if deadline is not None and deadline <= now:
                self.calls.handle_timer(now=now)
            self._pump_calls(now, poke=True)

    def _pump_calls(self, now: float, *, poke: bool) -> None:
        """Send what the call manager produced, act on its events, (de)activate the audio."""
        signalled = False
        for peer, body in self.calls.signals_to_send():
            try:
                message_id = self.node.send_signal(peer, body, now=now)
            except LocalProtocolError as exc:
                log.info("call signal to %s not sent: %s", self._label(peer), exc)
                self.calls.peer_unreachable(peer, now=now)
                continue
            self._signal_ids[message_id] = peer
            while len(self._signal_ids) > MAX_SIGNAL_IDS:
                self._signal_ids.popitem(last=False)
            signalled = True
        for key, media, report in self.calls.media_to_send():
            self.node.send_media(key, media, now=now, report=report)
        while (event := self.calls.next_event()) is not None:
            self._on_call_event(event)
        if self.audio is not None:
            self.audio.set_active(self.calls.audio_active(now))
        if poke and signalled:
            self._poke()

    def _on_call_event(self, event: CallEvent) -> None:
        if isinstance(event, CallStateChanged):
            if event.state is not CallState.DIALING:
                for fut in self._call_waiters.pop(event.call_id, []):
                    if not fut.done():
                        fut.set_result(event)
            log.info(
                "call %s with %s: %s%s",
                event.call_id.hex()[:8],
                self._label(event.peer_key),
                event.state,
                f" ({event.reason})" if event.reason else "",
            )
        elif isinstance(event, DtmfReceived):
            log.info("call %s: DTMF %s", event.call_id.hex()[:8], event.digit)

    async def _cmd_msg_list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        limit = args.get("limit", 100)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 10_000:
            raise CommandError("bad_request", '"limit" must be an integer 0..10000')
        return [
            {
                "id": m.id.hex(),
                "direction": m.direction,
                "number": m.peer_number,
                "peer_key": m.peer_key.hex(),
                "text": m.body,
                "created_at": m.created_at,
                "status": m.status,
            }
            for m in self.db.messages(limit)
        ]


def opus_codecs(sample_rate: int) -> tuple[AudioEncoder, AudioDecoder]:
    """A fresh Opus encoder and decoder for one call."""
    return OpusEncoder(sample_rate=sample_rate), OpusDecoder(sample_rate=sample_rate)


def record_json(record: Record) -> dict[str, Any]:
    """A verified directory record as the control API shows it."""
    return {
        "number": record.number,
        "public_key": record.public_key.hex(),
        "seq": record.seq,
        "ttl_s": record.ttl_s,
        "presence": record.presence.name.lower(),
        "addresses": [
            {"kind": kind.name.lower(), "host": addr[0], "port": addr[1]}
            for kind, addr in record.addresses
        ],
        "relays": [
            {"public_key": c.public_key.hex(), "host": c.addr[0], "port": c.addr[1]}
            for c in record.relays
        ],
        "forward_to": record.forward_to,
    }


def host_candidates(bound: list[Addr]) -> list[Addr]:
    """The addresses others can try to reach us at: the bound ones, wildcards expanded."""
    out: list[Addr] = []
    for host, port in bound:
        ip = ipaddress.ip_address(host)
        if not ip.is_unspecified:
            out.append((host, port))
            continue
        for local in interface_addresses(ip.version):
            out.append((local, port))
    return out


def interface_addresses(version: int) -> list[str]:
    """This machine's addresses of one IP version, loopback and link-local last or left out."""
    import ifaddr  # noqa: PLC0415 - only needed with a wildcard bind

    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                parsed = ipaddress.ip_address(text)
            except ValueError:
                continue
            if parsed.version == version and not parsed.is_link_local and not parsed.is_loopback:
                found.append(str(parsed))
    return found


def _parse_key(value: object) -> bytes:
    try:
        key = bytes.fromhex(str(value))
    except ValueError:
        raise CommandError("bad_key", "public key must be 64 hex digits") from None
    if len(key) != 32:
        raise CommandError("bad_key", "public key must be 64 hex digits")
    return key


def _parse_host_port(host: object, port: object) -> Addr:
    try:
        ip = ipaddress.ip_address(str(host))
    except ValueError:
        raise CommandError("bad_address", f"host must be an IP address, got {host!r}") from None
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise CommandError("bad_address", f"port must be 1..65535, got {port!r}")
    return (str(ip), port)


async def serve(phone: Phone, *, on_ready: Callable[[Phone], None] | None = None) -> None:
    """Run ``phone`` until SIGINT or SIGTERM, then shut down cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await phone.start()
        if on_ready is not None:
            on_ready(phone)
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await phone.close()
