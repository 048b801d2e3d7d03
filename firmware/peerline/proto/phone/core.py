"""The phone core: the whole phone, sans-I/O, behind one command/event face.

``PhoneCore`` owns every protocol part of one phone (the session node, the overlay, NAT
traversal, STUN, the port mapping, call control, the peer finder, LAN extensions, the number
book) and every timer they need. A shell (the asyncio daemon, the simulator) drives it:

- datagrams: ``receive_datagram`` in; ``datagrams_to_send`` (and ``media_datagrams_to_send``
  for the voice fast path) out;
- time: ``get_timer`` out, ``handle_timer(now=...)`` in, one timer for everything;
- front ends: ``handle(command, now=...)`` in, ``next_event()`` out (``peerline.proto.phone``
  commands and events only);
- the shell's own work: ``next_derivation`` out and ``number_derived`` in (argon2id runs on a
  worker thread), ``audio_tick`` every 20 ms while ``AudioActiveChanged(active=True)``,
  ``lan_heard``/``lan_lost`` from LAN discovery, ``set_surroundings`` when the host's
  addresses change.

Then: after any input, drain ``datagrams_to_send``, ``next_event`` and ``next_derivation``, and
re-arm one timer for ``get_timer()``. The core acts on its parts' events itself, at once: a
shell that only drains keeps the phone fully working.
"""

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from peerline.errors import InvalidKey, LocalProtocolError
from peerline.ports import Rng
from peerline.proto.call.manager import CallConfig, CallManager, CodecFactory
from peerline.proto.call.state import Call
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
from peerline.proto.identity import Identity, format_number
from peerline.proto.identity.sas import call_sas
from peerline.proto.lan import ExtensionRegistry, GroupMode, LanAnnouncement
from peerline.proto.lan.events import (
    AnnouncementChanged,
    ExtensionConflict,
    ExtensionLost,
    LanEvent,
    LanPeerAppeared,
    LanPeerUpdated,
)
from peerline.proto.nat.portmap import (
    MappingAcquired,
    MappingFailed,
    MappingLost,
    MappingReleased,
    PortMapState,
)
from peerline.proto.nat.relay import is_relayed
from peerline.proto.nat.stun_client import BindingFailed, BindingResult, StunClient
from peerline.proto.nat.stun_server import StunServer
from peerline.proto.node import Node
from peerline.proto.overlay import events as overlay_events
from peerline.proto.overlay.overlay import Overlay
from peerline.types import Addr
from peerline.wire.overlay import Contact

from . import commands as cmd
from . import events as ev
from .addressbook import AddressBook, ContactCard, Trust
from .callevents import CallReactions
from .config import PhoneConfig, PhoneState, Surroundings
from .contacts import ContactBook
from .finder import PeerFinder
from .groups import GroupCalls
from .numbers import BookBinding, NumberBook
from .reach import Reachability
from .requests import PhoneRequests
from .status import call_json, lan_view, phone_status, session_status
from .views import CallInfo, ContactInfo, NetworkInfo, Preferences

log = logging.getLogger("peerline.phone")

MAX_SIGNAL_IDS = 1024
"""SIGNAL message ids remembered to route their delivery failures to the call."""


class PhoneCore:
    """One phone, sans-I/O. See the module docstring."""

    def __init__(
        self,
        *,
        identity: Identity,
        number: str,
        rng: Rng,
        codecs: CodecFactory,
        config: PhoneConfig | None = None,
        state: PhoneState | None = None,
    ) -> None:
        self.identity = identity
        self.public_key = identity.public_key
        self.number = number
        self.config = cfg = config or PhoneConfig()
        state = state or PhoneState()
        self._state = state
        self.rng = rng
        self.numbers = NumberBook(max_pending=cfg.max_pending_derivations)
        self.record_stored: tuple[int, int] | None = None
        "The last of this phone's records that nodes acknowledged: (seq, how many stored it)."
        self.numbers.pin(identity.public_key, number)
        self._binding = BookBinding(self.numbers)
        self.contacts = ContactBook(state.peers)
        self.node = Node(identity=identity, rng=rng, config=cfg.node)
        self.overlay = Overlay(
            identity=identity,
            rng=rng,
            binding=self._binding,
            number=number,
            config=cfg.overlay,
            seq_start=state.record_seq_start,
        )
        self.stun = StunClient(rng)
        self.stun_server = StunServer()
        self.engine = Engine(
            node=self.node,
            overlay=self.overlay,
            stun=self.stun,
            stun_server=self.stun_server,
            traversal=cfg.traversal,
        )
        self.traversal = self.engine.traversal
        self.book = AddressBook(state.contacts)
        self.calls = CallManager(
            codecs=codecs, rng=rng, config=cfg.calls, number=number, sas=self._call_sas
        )
        self.calls.intercom_keys = self.book.intercom_keys()
        self.calls.forwarding = state.forwarding
        self.lan: ExtensionRegistry | None = None
        self._host: list[Addr] = []
        "Where others may reach this phone (shared with the finder, updated in place)."
        self.finder = PeerFinder(
            node=self.node,
            overlay=self.overlay,
            traversal=self.traversal,
            contacts=self.contacts,
            numbers=self.numbers,
            host=self._host,
        )
        self.reach = Reachability(self, self._host)
        self._events: deque[ev.PhoneEvent] = deque()
        self._signal_ids: OrderedDict[bytes, bytes] = OrderedDict()
        "SIGNAL message id -> peer key: a failed delivery ends that peer's call."
        self._audio_active = False
        self._cache_at: float | None = None
        self._started = False
        self._closing = False
        self._closed_reported = False
        self._joined_reported = False
        self._now = 0.0
        self._dispatch: dict[type[Any], Callable[[Any, float], None]] = {
            MediaReceived: self._on_media,
            MediaReportReceived: self._on_media_report,
            SignalReceived: self._on_signal,
            MessageReceived: self._on_message,
            MessageDelivered: self._on_delivery,
            MessageFailed: self._on_delivery,
            HandshakeCompleted: self._on_handshake,
            PeerEndpointChanged: self._on_endpoint,
            PeerSilent: self._on_silent,
            MappingAcquired: self.reach.on_portmap,
            MappingFailed: self.reach.on_portmap,
            MappingLost: self.reach.on_portmap,
            MappingReleased: self.reach.on_portmap,
            BindingResult: self.reach.on_stun,
            BindingFailed: self.reach.on_stun,
            overlay_events.LookupCompleted: self._on_lookup,
            overlay_events.LookupFailed: self._on_lookup,
            overlay_events.RecordPublished: self._on_published,
            overlay_events.ReflexiveAddressChanged: self.reach.on_reflexive,
            overlay_events.RoleChanged: self.reach.on_role,
            overlay_events.RelaysChanged: self.reach.on_relays,
            overlay_events.IntroductionReceived: self._on_introduction,
        }
        "Engine event type -> what the core does with it (the rest: traversal's alone)."
        self.requests = PhoneRequests(self)
        self.reactions = CallReactions(self)
        self.groups = GroupCalls(
            place=self.requests.place_member,
            cancel=self.requests.cancel_leg,
            ring_s=cfg.lan.group_ring_s if cfg.lan is not None else 15.0,
        )
        self.calls.hunting = self.groups.hunting
        self.calls.accept_page = self._accept_page

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, surroundings: Surroundings, *, now: float, lan_port: int | None = None) -> None:
        """Begin: stored peers, the overlay (peer cache, then seeds), STUN, a port mapping,
        LAN extensions (when ``lan_port``, this phone's IPv4 UDP port, is given), and the first
        record. Then: drain the outputs."""
        if self._started:
            raise LocalProtocolError("the phone is already started")
        self._started = True
        self._now = now
        for peer in self.contacts:
            self.numbers.pin(peer.public_key, peer.number)
            try:
                self.node.add_peer(peer.public_key, peer.addr)
            except (InvalidKey, LocalProtocolError) as exc:
                log.warning("skipping stored peer %s: %s", peer.number, exc)
        self.reach.start(surroundings, now=now)
        if self.config.lan is not None and lan_port is not None:
            self._start_lan(lan_port, now)
        for key, addr in self._state.peer_cache:
            self.overlay.add_contact(Contact(key, addr), now=now)
        if self.config.seeds:
            self.overlay.bootstrap(list(self.config.seeds), now=now)
        self.reach.publish(now)
        self._cache_at = now + self.config.peer_cache_save_s
        self._pump(now)

    def close(self, *, now: float) -> None:
        """Stop: hang up every live call (the far ends are told), release the port mapping,
        and hand out the peer cache. Then: keep driving until ``PhoneClosed`` (at most ~2 s)."""
        self._closing = True
        self._now = now
        for call in self.calls.live_calls():
            self.calls.hangup(call.call_id, now=now)
        mapper = self.engine.portmap
        if mapper is not None and mapper.state is not PortMapState.RELEASED:
            mapper.release(now=now)
        self._save_peer_cache()
        self._pump(now)

    @property
    def closed(self) -> bool:
        """After ``close``: nothing left to wait for (the router answered the release)."""
        mapper = self.engine.portmap
        return self._closing and (mapper is None or mapper.state is not PortMapState.RELEASING)

    def set_surroundings(self, surroundings: Surroundings, *, now: float) -> None:
        """The host's addresses changed (DHCP, Wi-Fi to Ethernet): every peer is told at once
        (a keepalive from the new address moves its path), relays too, and the record is
        published again."""
        if list(surroundings.host) == self._host:
            return
        self._now = now
        self.overlay.rebind(now=now)  # what peers saw before is stale: no old address published
        self.reach.take(surroundings, now)
        self.node.nudge(now=now)
        self.traversal.rebind(now=now)
        self.emit(ev.NetworkChanged(aspect="addresses", summary=f"addresses now {self._host}"))
        self.reach.publish(now)
        self._pump(now)

    # -- commands -----------------------------------------------------------------------------
    def handle(self, command: cmd.Command, *, now: float) -> cmd.Accepted:
        """Carry out ``command`` or raise ``CommandRejected`` (nothing changed). Then: drain."""
        self._now = now
        try:
            return self.requests.handle(command, now)
        finally:
            self._pump(now)

    # -- number derivations -------------------------------------------------------------------
    def next_derivation(self) -> bytes | None:
        """A key whose number the shell should derive now (one at a time; urgent first)."""
        return self.numbers.next_derivation()

    def number_derived(self, key: bytes, number: str, *, now: float) -> None:
        """The shell derived ``key``'s number. Then: drain."""
        self._now = now
        self.numbers.derived(key, number)
        self.emit(ev.NumberLearned(public_key=key, number=number))
        self.overlay.bindings_changed(now=now)
        if self.lan is not None:
            self.lan.bindings_changed(now=now)
        self.requests.number_known(key, number)
        for call in self.calls.calls():
            if call.peer_key == key and call.number is None:
                call.number = number
                self.emit(ev.CallerIdentified(call_id=call.call_id, peer_key=key, number=number))
                self.reactions.check_key(call)
        self._pump(now)

    def derivation_failed(self, key: bytes) -> None:
        """The shell could not derive ``key``'s number: it may be asked for again."""
        self.numbers.abandoned(key)

    # -- LAN discovery ------------------------------------------------------------------------
    def lan_heard(self, announcement: LanAnnouncement, host: str, *, now: float) -> None:
        """LAN discovery decoded a phone's announcement from ``host``. Never raises."""
        if self.lan is not None:
            self._now = now
            self.lan.heard(announcement, host, now=now)
            self._pump(now)

    def lan_lost(self, public_key: bytes, *, now: float) -> None:
        if self.lan is not None:
            self._now = now
            self.lan.lost(public_key, now=now)
            self._pump(now)

    def lan_unavailable(self) -> None:
        """The shell cannot run LAN discovery after all (no multicast interface): no
        extensions, and ``lan_status`` says so."""
        self.lan = None

    @property
    def lan_announcement(self) -> LanAnnouncement | None:
        return None if self.lan is None else self.lan.announcement

    # -- audio --------------------------------------------------------------------------------
    def audio_tick(self, captured: bytes | None, *, now: float) -> bytes:
        """One 20 ms period: the microphone's frame in (None if none), the speaker's out.
        Then: ``media_datagrams_to_send`` (the voice goes out at once)."""
        self._now = now
        out = self.calls.audio_tick(captured, now=now)
        self._pump_calls(now)
        return out

    @property
    def audio_active(self) -> bool:
        return self._audio_active

    def reconfigure_calls(self, calls: CallConfig) -> None:
        """Call settings changed (a reloaded configuration): the display name, auto-answer,
        the timeouts, the tone plan. A live call goes on.

        :raises CallError: a setting that needs a restart changed (``CallManager.reconfigure``).
        """
        self.calls.reconfigure(calls)
        self.config = replace(self.config, calls=calls)

    # -- the driver's calls -------------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        """Take one datagram. Never raises: bad input is dropped and counted."""
        self._now = now
        self.engine.receive_datagram(data, addr, now=now)
        self._pump(now)

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        return self.engine.datagrams_to_send(now=now)

    def media_datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        return self.engine.media_datagrams_to_send(now=now)

    def get_timer(self) -> float | None:
        times = [
            self.engine.get_timer(),
            self.calls.get_timer(),
            self.finder.get_timer(),
            self._cache_at,
            self._audio_deadline(),
            self.groups.get_timer(),
        ]
        if self.lan is not None:
            times.append(self.lan.get_timer())
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def handle_timer(self, *, now: float) -> None:
        self._now = now
        self.engine.handle_timer(now=now)
        deadline = self.calls.get_timer()
        if deadline is not None and now >= deadline:
            self.calls.handle_timer(now=now)
        self.finder.handle_timer(now=now)
        turn_over = self.groups.get_timer()
        if turn_over is not None and now >= turn_over:
            self.groups.handle_timer(now=now)
        if self.lan is not None:
            due = self.lan.get_timer()
            if due is not None and now >= due:
                self.lan.handle_timer(now=now)
        if self._cache_at is not None and now >= self._cache_at:
            self._cache_at = now + self.config.peer_cache_save_s
            self._save_peer_cache()
        self._pump(now)

    def next_event(self) -> ev.PhoneEvent | None:
        return self._events.popleft() if self._events else None

    # -- views (for status displays; no key material) ----------------------------------------
    def status(self, *, now: float, uptime_s: float = 0.0) -> dict[str, Any]:
        """The phone's state as the control API's ``status`` shows it (protocol parts only)."""
        return phone_status(self, now=now, uptime_s=uptime_s)

    def lan_status(self) -> dict[str, Any]:
        """This phone's LAN extension and the verified phones there (``lan`` command)."""
        return lan_view(self)

    def call(self, call_id: bytes) -> CallInfo | None:
        """A call, live or recently ended, as it is now."""
        found = self.find_call(call_id)
        return None if found is None else CallInfo.of(found)

    def recent_calls(self) -> list[CallInfo]:
        """The live call, then the recently ended ones, newest first (at most 16 kept)."""
        return [CallInfo.of(c) for c in self.calls.calls()]

    def contacts_view(self) -> list[ContactInfo]:
        """Stored peers, in the order they were stored."""
        return [ContactInfo(number=p.number, public_key=p.public_key) for p in self.contacts]

    def network_view(self) -> NetworkInfo:
        overlay, reach = self.overlay, self.reach
        behaviour = reach.classifier.result if reach.classifier is not None else None
        mapper = self.engine.portmap
        return NetworkInfo(
            joined=overlay.joined,
            role="supernode" if overlay.member else "client",
            contacts=len(overlay.table),
            relays=len(overlay.relays),
            reflexive=overlay.reflexive,
            host=tuple(self._host),
            nat=None if behaviour is None else behaviour.mapping.value,
            port_mapping=None if mapper is None else mapper.state.value,
            lan_extension=None if self.lan is None else self.lan.own_extension,
        )

    def preferences(self) -> Preferences:
        calls = self.calls
        return Preferences(
            volume=calls.volume, muted=calls.muted, do_not_disturb=calls.do_not_disturb
        )

    def forwarding(self) -> dict[str, Any]:
        """The call forwarding settings (``offline`` is in the record)."""
        return self.calls.forwarding.as_dict()

    def contact_cards(self) -> list[dict[str, Any]]:
        """The contacts, by name, as plain data (``contacts list``)."""
        return [
            {
                "number": c.number,
                "name": c.name,
                "public_key": c.public_key.hex() if c.public_key else None,
                "verified": c.verified,
                "verified_at": c.verified_at,
                "speed_dial": c.speed_dial,
                "auto_answer": c.auto_answer,
            }
            for c in self.book
        ]

    def live_call(self) -> CallInfo | None:
        live = self.calls.live_call()
        return None if live is None else CallInfo.of(live)

    def call_json(self, call_id: bytes, now: float) -> dict[str, Any] | None:
        """A call for the control API (``status.calls``), or None if there is no such call."""
        call = self.find_call(call_id)
        return None if call is None else call_json(self, call, now)

    def find_call(self, call_id: bytes) -> Call | None:
        """The call object itself, for the core's helpers (front ends use ``call``)."""
        return next((c for c in self.calls.calls() if c.call_id == call_id), None)

    def session(self, key: bytes, *, now: float) -> dict[str, Any] | None:
        """The live session with ``key`` as ``status.sessions`` shows it (with its ``path``:
        direct or relayed), or None."""
        for session in self.node.sessions(now=now):
            if session["peer_key"] == key.hex():
                return session_status(session, self.numbers.get(key))
        return None

    @property
    def host_addresses(self) -> list[Addr]:
        return list(self._host)

    def label(self, key: bytes) -> str:
        number = self.numbers.get(key)
        return format_number(number) if number else f"key {key.hex()[:16]}…"

    def _pump(self, now: float) -> None:
        """Act on every event the parts queued, until none is left."""
        busy = True
        while busy:
            busy = False
            while (event := self.engine.next_event()) is not None:
                busy = True
                handler = self._dispatch.get(type(event))
                if handler is not None:
                    handler(event, now)
            while (found := self.finder.next_event()) is not None:
                busy = True
                self.requests.on_found(found, now)
            if self.lan is not None:
                while (lan_event := self.lan.next_event()) is not None:
                    busy = True
                    self._on_lan(lan_event, now)
            busy = self._pump_calls(now) or busy
        joined = self.overlay.joined
        if joined != self._joined_reported:
            self._joined_reported = joined
            summary = (
                f"joined the directory ({len(self.overlay.table)} nodes known)"
                if joined
                else "out of the directory: no overlay node answers"
            )
            self.emit(ev.NetworkChanged(aspect="directory", summary=summary))
        if self._closing and not self._closed_reported and self.closed:
            self._closed_reported = True
            self.emit(ev.PhoneClosed())

    def _pump_calls(self, now: float) -> bool:
        """Send what call control produced and report its events; True if there was any."""
        busy = False
        for peer, body in self.calls.signals_to_send():
            busy = True
            try:
                message_id = self.node.send_signal(peer, body, now=now)
            except LocalProtocolError as exc:
                log.info("call signal to %s not sent: %s", self.label(peer), exc)
                self.calls.peer_unreachable(peer, now=now)
                continue
            self._signal_ids[message_id] = peer
            while len(self._signal_ids) > MAX_SIGNAL_IDS:
                self._signal_ids.popitem(last=False)
        for key, media, report in self.calls.media_to_send():
            self.node.send_media(key, media, now=now, report=report)
        while (event := self.calls.next_event()) is not None:
            busy = True
            self.reactions.on_event(event)
        active = self.calls.audio_active(now)
        if active != self._audio_active:
            self._audio_active = active
            self.emit(ev.AudioActiveChanged(active=active))
        return busy

    def _audio_deadline(self) -> float | None:
        """When the audio device may be released (a busy tone ending), while it is active."""
        if not self._audio_active:
            return None
        until = self.calls.tone_until()
        return until if until is not None and until > self._now else None

    @property
    def now(self) -> float:
        """The time of what the core is handling now (a command, a datagram, a timer)."""
        return self._now

    def emit(self, event: ev.PhoneEvent) -> None:
        """Queue an event for ``next_event`` (the core's helpers report through here)."""
        self._events.append(event)

    # -- call events --------------------------------------------------------------------------
    def set_offline_forward(self, target: str | None, now: float) -> None:
        """Publish (or withdraw) the offline forwarding target in this phone's record."""
        if target != self.reach.forward_to:
            self.reach.forward_to = target
            if self._started:
                self.reach.publish(now)

    def save_card(self, card: "ContactCard") -> "ContactCard":
        """Store a contact in the book and tell the shell (``ContactSaved``)."""
        card = self.book.save(card)
        self.calls.intercom_keys = self.book.intercom_keys()
        self.emit(
            ev.ContactSaved(
                number=card.number,
                name=card.name,
                public_key=card.public_key,
                verified_at=card.verified_at,
                speed_dial=card.speed_dial,
                auto_answer=card.auto_answer,
            )
        )
        return card

    def trust(self, call: Call) -> Trust:
        return self.book.trust(call.number, call.peer_key) if call.peer_key else Trust.UNKNOWN

    def _call_sas(self, peer: bytes, call_id: bytes, caller: bytes, callee: bytes) -> str | None:
        """The call's SAS over the current session's connection hash (protocol.md §2.6)."""
        connection = self.node.connection_hash(peer)
        return None if connection is None else call_sas(connection, call_id, caller, callee)

    def _on_media(self, event: MediaReceived, now: float) -> None:
        self.calls.receive_media(event.peer_key, event.body, at=event.at)

    def _on_media_report(self, event: MediaReportReceived, now: float) -> None:
        self.calls.receive_report(event.peer_key, event.body, at=event.at)

    def _on_signal(self, event: SignalReceived, now: float) -> None:
        self.calls.receive_signal(event.peer_key, event.body, now=now)

    def _on_message(self, event: MessageReceived, now: float) -> None:
        number = self.numbers.get(event.peer_key)
        if number is None:
            self.numbers.request(event.peer_key, urgent=False)
        log.info("message %s from %s", event.message_id.hex()[:8], self.label(event.peer_key))
        self.emit(
            ev.MessageReceived(
                message_id=event.message_id, peer_key=event.peer_key, number=number, text=event.text
            )
        )

    def _on_delivery(self, event: MessageDelivered | MessageFailed, now: float) -> None:
        peer = self._signal_ids.pop(event.message_id, None)
        if peer is not None:
            if isinstance(event, MessageFailed):
                self.calls.peer_unreachable(peer, now=now)
            return
        if isinstance(event, MessageFailed):
            log.info("message %s failed: %s", event.message_id.hex()[:8], event.reason)
        self.emit(
            ev.MessageStatusChanged(
                message_id=event.message_id,
                peer_key=event.peer_key,
                status="delivered" if isinstance(event, MessageDelivered) else "failed",
                reason=event.reason if isinstance(event, MessageFailed) else "",
            )
        )

    def _on_handshake(self, event: HandshakeCompleted, now: float) -> None:
        log.info(
            "secure session with %s (%s), SAS %s",
            self.label(event.peer_key),
            "we called" if event.initiator else "they called",
            event.sas,
        )
        self.emit(
            ev.SessionEstablished(
                peer_key=event.peer_key,
                number=self.numbers.get(event.peer_key),
                sas=event.sas,
                addr=event.addr,
                relayed=is_relayed(event.addr),
                initiator=event.initiator,
            )
        )
        self.requests.session_up(event.peer_key, now)

    def _on_endpoint(self, event: PeerEndpointChanged, now: float) -> None:
        log.info("%s moved to %s:%d", self.label(event.peer_key), *event.addr)
        if not is_relayed(event.addr) and self.contacts.moved(event.peer_key, event.addr):
            self.emit(ev.PeerSeen(public_key=event.peer_key, addr=event.addr))

    def _on_silent(self, event: PeerSilent, now: float) -> None:
        self.finder.on_silent(event.peer_key, now=now)

    def _on_lookup(
        self,
        event: overlay_events.LookupCompleted | overlay_events.LookupFailed,
        now: float,
    ) -> None:
        self.finder.on_lookup(event, now=now)

    def _on_published(self, event: overlay_events.RecordPublished, now: float) -> None:
        log.info("directory record %d stored on %d nodes", event.seq, event.storers)
        if event.storers:
            self.record_stored = (event.seq, event.storers)
        self.emit(ev.RecordPublished(seq=event.seq, storers=event.storers))

    def _on_introduction(self, event: overlay_events.IntroductionReceived, now: float) -> None:
        if event.candidates and event.caller != self.public_key:
            log.info("introduced: %s at %s:%d", self.label(event.caller), *event.candidates[0])

    # -- LAN ----------------------------------------------------------------------------------
    def _start_lan(self, port: int, now: float) -> None:
        settings = self.config.lan
        assert settings is not None
        self.lan = ExtensionRegistry(
            identity=self.identity,
            number=self.number,
            port=port,
            binding=self._binding,
            config=settings.config,
            configured_extension=settings.extension,
            previous_extension=self._state.lan_extension,
            claim_seq=self._state.lan_claim_seq,
            groups=settings.groups,
        )
        self.lan.start(now=now)

    def _accept_page(self, peer_key: bytes, group: str | None) -> bool:
        """A page is answered at once only from a phone on this LAN, to a page group this
        phone is a member of; any other page rings like a call."""
        if self.lan is None or group is None:
            return False
        member = any(g.extension == group and g.mode is GroupMode.PAGE for g in self.lan.groups)
        return member and any(p.public_key == peer_key for p in self.lan.peers())

    def _on_lan(self, event: LanEvent, now: float) -> None:
        if isinstance(event, AnnouncementChanged):
            ann = event.announcement
            self.emit(
                ev.LanAnnouncementChanged(
                    announcement=ann,
                    extension=ann.extension,
                    configured=ann.configured,
                    claim_seq=ann.claim_seq,
                )
            )
        elif isinstance(event, LanPeerAppeared | LanPeerUpdated):
            peer = event.peer
            self.numbers.pin(peer.public_key, peer.number)
            # A phone on the LAN is an overlay contact too: no seed needed on a LAN.
            self.overlay.add_contact(Contact(peer.public_key, (peer.host, peer.port)), now=now)
        elif isinstance(event, ExtensionConflict):
            keys = ", ".join(k.hex()[:16] for k in event.keys)
            summary = f"extension {event.extension} is configured on several phones ({keys})"
            self.emit(ev.NetworkChanged(aspect="lan", summary=summary))
        elif isinstance(event, ExtensionLost):
            summary = f"this phone lost its LAN extension {event.extension}"
            self.emit(ev.NetworkChanged(aspect="lan", summary=summary))

    # -- addresses, publishing ----------------------------------------------------------------
    def _save_peer_cache(self) -> None:
        contacts = tuple((c.public_key, c.addr) for c in self.overlay.contacts() if c.addr[1])
        if contacts:
            self.emit(ev.PeerCacheSaved(contacts=contacts))
