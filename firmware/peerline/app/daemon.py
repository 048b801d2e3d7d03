"""``peerline run``: the shell around one phone core.

It decides nothing about the phone: the core does (calls, finding peers, every timer). The
shell owns what is not protocol and wires it in: the UDP sockets (``runtime.udp``), the control
socket, the sound device's thread, the number-derivation worker, LAN discovery (zeroconf), the
host's addresses, and the store. Every event the core hands out goes, in order, to the store
(``persistence``), to whoever waits for it (``eventhub``: control commands and event streams),
to the LAN publisher and to the sound device.
"""

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from peerline.errors import StoreError
from peerline.ports import Rng
from peerline.proto.identity import Identity, derive_number
from peerline.proto.phone import CodecFactory, PhoneConfig, PhoneCore, PhoneEvent, events
from peerline.runtime.audio import AudioDevice, parse_audio_spec
from peerline.runtime.control import ControlServer
from peerline.runtime.lan import LanDiscovery, LanPublisher
from peerline.runtime.udp import UdpDriver
from peerline.store.config import Config
from peerline.store.db import Database
from peerline.types import Addr

from .bootconfig import read_import_state
from .control import Control, status_json
from .eventhub import EventHub
from .eventjson import event_json
from .handset import Handset
from .hardware import Hardware
from .hostaddrs import surroundings, watches_addresses
from .numbers import NumberWorker
from .paths import Paths
from .persistence import Persistence, load_state
from .texts import event_text
from .wiring import opus_codecs, phone_config

log = logging.getLogger("peerline")

ADDRESS_WATCH_S = 1.0
"""How often a phone bound to a wildcard address looks for a change of its own addresses."""
PLAYBACK_DEPTH = 3
"""Frames queued for the speaker at most: more is latency, so a frame beyond is dropped."""
CLOSE_WAIT_S = 2.0
"""At exit, how long the router gets to confirm the port mapping's release."""
LIVE_KEYS = frozenset(
    {
        "phone.name",
        "calls.auto_answer",
        "calls.ring_timeout_s",
        "calls.call_waiting",
        "audio.tones",
        "log.level",
        "hardware.hotline",
    }
)
"""Settings a reload (SIGHUP) applies at once, a live call going on; the others wait for a
restart (``Phone.reconfigure``)."""
_LOGGED = (
    events.CallStateChanged,
    events.IncomingCall,
    events.NetworkChanged,
    events.PeerMoved,
    events.RequestFailed,
)
"""Events the shell logs itself (the core logs what only it sees)."""


class Phone:
    """One running phone: a ``PhoneCore`` on real sockets, with its store and control API.

    ``rng``, ``codecs``, ``core_config`` and ``derive`` are injected for tests; by default the
    OS random source, libopus, the core configuration built from ``config`` and argon2id.
    """

    def __init__(
        self,
        *,
        paths: Paths,
        config: Config,
        identity: Identity,
        db: Database,
        rng: Rng | None = None,
        codecs: CodecFactory = opus_codecs,
        core_config: PhoneConfig | None = None,
        derive: Callable[[bytes], str] = derive_number,
        hardware: Hardware | None = None,
    ) -> None:
        if rng is None:
            from peerline.adapters.rng import OsRng  # noqa: PLC0415 - the real phone's default

            rng = OsRng()
        self.paths = paths
        self.config = config
        self.db = db
        self.started_at = time.time()
        self.core = PhoneCore(
            identity=identity,
            number=derive(identity.public_key),
            rng=rng,
            codecs=codecs,
            config=core_config or phone_config(config),
            state=(state := load_state(db)),
        )
        self.had_peer_cache = bool(state.peer_cache)
        "The overlay contacts of the last run: something to join through besides seeds."
        self.persistence = Persistence(db)
        self.hub = EventHub()
        self.control = Control(self)
        self.worker = NumberWorker(self.core, on_done=self.poke, derive=derive)
        self.audio: AudioDevice | None = None
        self.audio_frames_dropped = 0
        "Speaker frames dropped because the playback queue was already deep (latency cap)."
        self.handset: Handset | None = None
        self._audio_present = True
        self.listeners: list[Callable[[PhoneEvent], None]] = []
        "Called with every event after the shell's own work (the systemd link)."
        self.restart_pending: list[str] = []
        "Settings changed by a reload that apply at the next start."
        self.boot_import = read_import_state(paths.data)
        "How importing a boot-partition peerline.toml went at this boot (None: there was none)."
        self._driver: UdpDriver | None = None
        self._server: ControlServer | None = None
        if hardware is not None:
            self.handset = Handset(self, hardware)
        self._lan: LanDiscovery | None = None
        self._publisher: LanPublisher | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        net = self.config.network
        self._driver = UdpDriver(
            self.core,
            self._on_event,
            dscp=net.dscp,
            dscp_media=net.dscp_media,
            after_poke=self.worker.kick,
        )
        bound = await self._driver.start(bind4=net.bind4, bind6=net.bind6, port=net.port)
        where = surroundings(bound, port_mapping=self.core.config.port_mapping)
        lan_port = next((p for h, p in bound if ":" not in h), None)
        lan = self.core.config.lan is not None and lan_port is not None
        self.core.start(where, now=loop.time(), lan_port=lan_port if lan else None)
        self.poke()
        self._server = ControlServer(self.paths.control_socket, self.control.handlers())
        await self._server.start()
        if lan:
            await self._start_lan(net.bind4)
        self._start_audio()
        if self.handset is not None:
            self.handset.start()
        if watches_addresses(bound):
            self._spawn(self._watch_addresses_every(ADDRESS_WATCH_S))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        loop = self._loop
        if loop is not None and self._driver is not None:
            closed = self.hub.waiter(lambda e: isinstance(e, events.PhoneClosed))
            self.core.close(now=loop.time())  # hangs up (the far end is told), releases ports
            self.poke()
            if self.audio is not None:
                await asyncio.to_thread(self.audio.stop)
            await self.hub.wait(closed, CLOSE_WAIT_S)
        elif self.audio is not None:
            await asyncio.to_thread(self.audio.stop)
        if self.handset is not None:
            await asyncio.to_thread(self.handset.close)
        if self._publisher is not None:
            await self._publisher.close()
        if self._lan is not None:
            await self._lan.close()
        if self._server is not None:
            await self._server.close()
        self.hub.close()
        if self._driver is not None:
            self._driver.close()
        self.worker.close()

    def poke(self) -> None:
        """After any input to the core: send what it queued, hand out its events, re-arm."""
        if self._driver is not None:
            self._driver.poke()

    @property
    def local_addrs(self) -> list[Addr]:
        return self._driver.local_addrs if self._driver else []

    @property
    def socket_errors(self) -> int:
        return self._driver.socket_errors if self._driver else 0

    def status(self) -> dict[str, Any]:
        return status_json(self)

    def reconfigure(self, config: Config) -> list[str]:
        """A reloaded ``peerline.toml`` (SIGHUP): apply at once what can change in a running
        phone (``LIVE_KEYS``), a live call going on; return the keys that wait for a restart.

        :raises ConfigError: never; the caller has checked ``config`` by loading it.
        """
        changed = self.config.changed(config)
        later = [key for key in changed if key not in LIVE_KEYS]
        keys = {"phone.name", "calls.auto_answer", "calls.ring_timeout_s", "calls.call_waiting"}
        if (keys | {"audio.tones"}) & set(changed):
            calls = replace(
                self.core.config.calls,
                name=config.phone.name,
                auto_answer=config.calls.auto_answer,
                ring_timeout_s=config.calls.ring_timeout_s,
                call_waiting=config.calls.call_waiting,
                region=config.audio.tones,
            )
            self.core.reconfigure_calls(calls)
        if "log.level" in changed:
            logging.getLogger().setLevel(config.log.level.upper())
        if "hardware.hotline" in changed:
            self.core.config = replace(self.core.config, hotline=config.hardware.hotline or "")
        if self.handset is not None:
            self.handset.reconfigure(config)
        self.config = config
        self.restart_pending = sorted(set(self.restart_pending) | set(later))
        applied = [key for key in changed if key in LIVE_KEYS]
        log.info(
            "configuration reloaded: %s%s",
            ", ".join(applied) or "nothing changed that applies now",
            f"; at the next start: {', '.join(later)}" if later else "",
        )
        return later

    def store_state(self, name: str, value: str) -> None:
        """Keep a small named value (the handset's settings); a failed write is logged."""
        try:
            self.db.set_state(name, value)
        except StoreError as exc:
            log.error("could not store %s: %s", name, exc)

    # -- events from the core -----------------------------------------------------------------
    def _on_event(self, event: PhoneEvent) -> None:
        self.persistence.handle(event)  # first: a message acknowledged must never be lost
        self.hub.publish(event)
        if isinstance(event, events.AudioActiveChanged) and self.audio is not None:
            self.audio.set_active(event.active)
            if not event.active and not self._audio_present:  # known again at the next call
                self._audio_present = True
                if self.handset is not None:
                    self.handset.audio_device(True)
        elif isinstance(event, events.LanAnnouncementChanged) and self._publisher is not None:
            self._publisher.want(event.announcement)
        if isinstance(event, _LOGGED):
            log.info("%s", event_text(event_json(event)))
        if self.handset is not None:
            self.handset.phone_event(event)
        for listener in self.listeners:
            listener(event)

    # -- LAN discovery ------------------------------------------------------------------------
    async def _start_lan(self, bind4: str) -> None:
        """Announce this phone on the LAN (zeroconf) and hear the others."""
        loop = asyncio.get_running_loop()
        interfaces = None if ipaddress.ip_address(bind4).is_unspecified else [bind4]

        def heard(announcement: Any, host: str) -> None:
            self.core.lan_heard(announcement, host, now=loop.time())
            self.poke()

        def lost(key: bytes) -> None:
            self.core.lan_lost(key, now=loop.time())
            self.poke()

        discovery = LanDiscovery(on_heard=heard, on_lost=lost, interfaces=interfaces)
        announcement = self.core.lan_announcement
        assert announcement is not None
        try:
            await discovery.start(announcement)
        except OSError as exc:  # no multicast-capable interface: the phone works without LAN
            log.warning("LAN discovery unavailable: %s", exc)
            self.core.lan_unavailable()
            return
        self._lan = discovery
        self._publisher = LanPublisher(discovery)
        self._publisher.started(announcement)
        latest = self.core.lan_announcement
        if latest is not None:
            self._publisher.want(latest)

    # -- audio --------------------------------------------------------------------------------
    def _start_audio(self) -> None:
        backend = self.config.audio.backend
        if backend == "auto":  # the handset's sound: the computer's (or the Pi's) default card
            with_handset = self.handset is not None and self.handset.hardware.kind != "none"
            backend = "alsa:default" if with_handset else "null"
        spec = parse_audio_spec(backend)
        self.audio = AudioDevice(spec, on_capture=self._captured)
        self.audio.set_active(self.core.audio_active)  # opened when a call or a tone needs it
        self.audio.start()

    def _captured(self, frame: bytes) -> None:
        """From the audio thread, every 20 ms while active: hand the frame to the loop."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the phone is stopping
                loop.call_soon_threadsafe(self._audio_tick, frame)

    def _audio_tick(self, frame: bytes) -> None:
        audio, loop, driver = self.audio, self._loop, self._driver
        if audio is None or loop is None or driver is None:
            return
        out = self.core.audio_tick(frame, now=loop.time())
        driver.send_media_now()  # the voice first
        if audio.active and audio.playback_queued < PLAYBACK_DEPTH:
            audio.play(out)
        else:
            self.audio_frames_dropped += 1
        driver.poke()
        present = audio.device_open or not audio.active
        if present != self._audio_present:
            self._audio_present = present
            log.info("audio: the sound device %s", "is back" if present else "is gone")
            if self.handset is not None:
                self.handset.audio_device(present)

    # -- host addresses -----------------------------------------------------------------------
    async def _watch_addresses_every(self, period: float) -> None:
        """Notice this machine's addresses changing (DHCP, Wi-Fi to Ethernet)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            where = surroundings(self.local_addrs, port_mapping=False)
            if list(where.host) != self.core.host_addresses:
                log.info("this phone's addresses changed: %s", list(where.host))
                self.core.set_surroundings(where, now=loop.time())
                self.poke()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
