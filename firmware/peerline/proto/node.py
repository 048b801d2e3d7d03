"""The phone's protocol core: one object behind the shared UDP socket.

``Node`` demultiplexes every datagram, runs Noise IK handshakes, keeps transport sessions per
peer (rekeying them by time and count), and carries reliable text messages. It never touches a
socket or a clock: drivers (``peerline.runtime`` on real UDP, ``peerline.sim`` in virtual time)
call the five aioquic-style methods.

Peers are identified by their Ed25519 public key; mapping dialable numbers to keys is the
caller's job (numbers can collide, keys cannot).
"""

from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from peerline.errors import (
    CryptoError,
    DecodeError,
    InvalidKey,
    LocalProtocolError,
    ReplayError,
)
from peerline.ports import Rng
from peerline.proto.events import (
    Event,
    HandshakeCompleted,
    MediaReceived,
    MediaReportReceived,
    MessageDelivered,
    MessageFailed,
    MessageReceived,
    PathQuiet,
    PathValidated,
    PeerEndpointChanged,
    PeerSilent,
    SignalReceived,
)
from peerline.proto.identity import Identity, x25519_public_from_ed25519
from peerline.proto.noise.cookie import (
    COOKIE_SECRET_LIFETIME,
    COOKIE_USE_MARGIN,
    CookieChecker,
    cookie_key,
    mac,
    mac1_key,
    open_cookie,
)
from peerline.proto.noise.handshake import DHLEN, IKHandshake, Role, x25519_public
from peerline.proto.noise.session import Session
from peerline.types import Addr
from peerline.wire.frames import (
    MAX_PAYLOAD,
    PATH_DATA_SIZE,
    PATH_FRAMES,
    Frame,
    MediaDataFrame,
    MediaReportFrame,
    MessageAckFrame,
    MessageFrame,
    PathChallengeFrame,
    PathResponseFrame,
    SignalFrame,
    frame_size,
    pull_frames,
    push_frames,
)
from peerline.wire.packet import (
    MAC_SIZE,
    CookieReply,
    HandshakeInitiation,
    HandshakeResponse,
    TransportPacket,
    initiation_header,
    is_stun,
    pull_packet,
    push_cookie_reply,
    push_initiation,
    push_response,
)
from peerline.wire.spec import PROLOGUE, REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME

RESPONDER_REKEY_GRACE = 10.0
"""A responder rekeys only this long after the initiator should have (avoids both rekeying)."""

MAX_PENDING_SESSIONS = 4
"""Per peer, unconfirmed responder sessions kept at once; a fifth wipes the oldest. Repeats of
the last ``RECENT_INITIATIONS`` initiations never take a slot, but distinct older initiations
of the same key, replayed in a burst, can still push out the session the real initiator is
about to confirm (protocol.md §4.9, §7.11)."""

RECENT_INITIATIONS = 16
"""Per peer, the last initiations answered, by ephemeral key. One that arrives again (a network
duplicate or a replay) makes no new session: while the session it made is pending it gets the
same response again, otherwise nothing (``initiations_repeated``)."""

SILENCE_RETRIES = 3
"""A message sent this many times since the peer was last heard from (an authentic transport
packet or a valid handshake response) means the peer lost its session (e.g. it restarted):
start a fresh handshake."""

INITIATIONS_PER_ADDRESS_PER_S = 5.0
"""Under load, initiations with a valid cookie are still limited per source address."""

RECENT_IDS = 1024
"""Per peer, message ids remembered to suppress duplicate deliveries after retransmission."""

MAX_PROBES = 8
"""Per peer, path challenges outstanding (the oldest is forgotten beyond this)."""

PROBE_LIFETIME_S = 10.0
"""A path challenge's echo is accepted this long after it was sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    """Tunables that do not change the wire format (spec values live in ``wire.spec``)."""

    handshake_retry_s: float = 1.0
    "First handshake retransmission; doubles per attempt up to ``handshake_retry_max_s``."
    handshake_retry_max_s: float = 5.0
    handshake_timeout_s: float = 30.0
    "Give up reaching a peer after this long without a completed handshake."
    message_retry_s: float = 1.0
    "First message retransmission; doubles per attempt up to ``message_retry_max_s``."
    message_retry_max_s: float = 8.0
    message_timeout_s: float = 60.0
    "A message not acknowledged by then is reported failed."
    keepalive_s: float = 15.0
    "An idle live session sends an empty packet this often, holding NAT mappings open."
    rekey_after_time_s: float = REKEY_AFTER_TIME
    rekey_after_messages: int = REKEY_AFTER_MESSAGES
    handshakes_per_s: float = 20.0
    "Initiations answered per second before the responder asks for cookies (under load)."
    confirm_timeout_s: float = 15.0
    "An unconfirmed responder session is dropped after this long (a real initiator confirms"
    " within one round trip; this bounds what forged initiations can hold)."
    max_peers: int = 4096
    "Memory bound: sessions from unknown callers are refused beyond this many peers."
    max_queued_messages: int = 256
    "Per peer: unacknowledged outgoing messages before ``send_message`` refuses more."

    def __post_init__(self) -> None:
        if self.keepalive_s <= 0:
            raise ValueError("keepalive_s must be positive")
        if not 0 < self.rekey_after_time_s <= REKEY_AFTER_TIME:
            raise ValueError("rekey_after_time_s must be in (0, REKEY_AFTER_TIME]")
        if not 0 < self.rekey_after_messages <= REKEY_AFTER_MESSAGES:
            raise ValueError("rekey_after_messages must be in (0, REKEY_AFTER_MESSAGES]")


@dataclass(slots=True)
class NodeCounters:
    """What the node saw and did; ``status --json`` shows these."""

    rx_datagrams: int = 0
    rx_bytes: int = 0
    tx_datagrams: int = 0
    tx_bytes: int = 0
    dropped_malformed: int = 0
    "Did not parse: wrong size, unknown type or version."
    dropped_stun: int = 0
    "STUN datagrams (first byte 0-3): no STUN handler yet."
    dropped_unknown_session: int = 0
    "Well-formed, but for a session or handshake index this node does not have."
    dropped_auth: int = 0
    "Failed authentication: tampered or forged."
    dropped_replay: int = 0
    "Authentic counter already seen, or older than the replay window."
    dropped_handshake: int = 0
    "Handshake messages that failed to decrypt or named a key that does not match."
    dropped_mac1: int = 0
    "Initiations whose mac1 is wrong: not meant for this phone's key (dropped cheaply)."
    initiations_repeated: int = 0
    "Initiations already answered that arrived again (duplicates, replays): no new session."
    cookie_replies_sent: int = 0
    "Initiations answered with a cookie instead of a handshake (under load)."
    cookies_received: int = 0
    dropped_rate_limited: int = 0
    "Initiations with a valid cookie over the per-address limit while under load."
    dropped_peer_limit: int = 0
    dropped_bad_frames: int = 0
    "Authenticated payloads whose frames did not parse."
    unknown_frames: int = 0
    handshakes_initiated: int = 0
    handshakes_completed: int = 0
    rekeys: int = 0
    keepalives_sent: int = 0
    keepalive_bytes_sent: int = 0
    "What idle sessions' keepalives cost (30 bytes each; 36 through a relay, counted there)."
    messages_sent: int = 0
    messages_received: int = 0
    messages_duplicate: int = 0
    messages_delivered: int = 0
    messages_failed: int = 0
    message_retransmissions: int = 0
    media_sent: int = 0
    media_received: int = 0
    media_unsent: int = 0
    "Media packets the app offered with no live session to send them on (dropped)."
    media_reports_sent: int = 0
    media_reports_received: int = 0
    signals_sent: int = 0
    signals_received: int = 0
    path_probes_sent: int = 0
    path_probes_answered: int = 0
    "Path challenges from peers echoed back to where they came from."
    paths_validated: int = 0
    path_migrations: int = 0
    "A peer's path moved: a newer authenticated packet, or a validated probe, from elsewhere."

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class _Outgoing:
    frame: MessageFrame | SignalFrame
    deadline: float
    next_send: float
    interval: float
    sends: int = 0
    quiet_sends: int = 0
    "Transmissions since the peer was last heard from (valid while ``quiet_epoch`` is current)."
    quiet_epoch: int = -1
    "The peer's ``heard`` count when ``quiet_sends`` started."


@dataclass(slots=True)
class _Handshake:
    state: IKHandshake
    local_index: int
    started_at: float
    "When the first attempt of this series began (for the give-up timeout)."
    next_retry: float
    attempts: int
    mac1: bytes
    "mac1 of the initiation in flight: a cookie reply must be bound to it."
    sent_as: int
    "The node's handshake event number when this attempt was sent (``Session.begun``)."
    link_index: int | None = None
    "The responder's index that would prove it holds ``link_sas``'s session (§4.7), if linked."
    link_sas: str = ""
    "Connection SAS of the session this initiation is linked to (empty: not linked)."
    packet: bytes = b""
    "The initiation as sent: sent again unchanged by ``repeat_initiation``."


@dataclass(slots=True, eq=False)
class _Peer:
    public_key: bytes
    x25519_public: bytes
    endpoint: Addr | None
    current: Session | None = None
    previous: Session | None = None
    pending: list[Session] = field(default_factory=list)
    "Responder sessions not yet confirmed by a packet from the initiator (newest last)."
    handshake: _Handshake | None = None
    unacked: dict[bytes, _Outgoing] = field(default_factory=dict)
    acks_due: list[MessageAckFrame] = field(default_factory=list)
    recent_ids: OrderedDict[bytes, None] = field(default_factory=OrderedDict)
    recent_initiations: OrderedDict[bytes, tuple[int, int, bytes]] = field(
        default_factory=OrderedDict, repr=False
    )
    "The last ``RECENT_INITIATIONS`` initiations answered: ephemeral key -> (index and ``begun``"
    " of the session it made, response sent). Not the session itself: it may be long gone."
    cookie: bytes = field(default=b"", repr=False)
    "Cookie from this peer's last cookie reply (empty: none), for mac2. A secret: not in repr."
    cookie_at: float = float("-inf")
    last_sent: float = float("-inf")
    "When a transport packet was last sealed for this peer (keepalive clock)."
    heard: int = 0
    "Times the peer was heard from: authentic transport packets and valid handshake responses."
    pinned: bool = False
    "Added by the user (``add_peer``); unknown callers' peers are forgotten when idle."
    confirm_needed: bool = False
    "Initiator just finished a handshake: send something so the responder can confirm."
    probes: OrderedDict[bytes, tuple[Addr, float]] = field(default_factory=OrderedDict)
    "Path challenges in flight: data -> (where sent, when)."
    responses_due: list[tuple[bytes, Addr]] = field(default_factory=list)
    "Path challenges to echo: data and the address the challenge came from."
    quiet_reported: int = -1
    "The ``heard`` count at the last ``PathQuiet``: one report per silence."


class Node:
    """Sans-I/O protocol core for one phone.

    Inputs: ``receive_datagram``, ``handle_timer`` and API calls (``add_peer``,
    ``send_message``). Outputs: ``datagrams_to_send``, ``get_timer``, ``next_event``.
    Then: after any input, drain ``datagrams_to_send`` and ``next_event`` and re-arm the timer.
    """

    def __init__(self, *, identity: Identity, rng: Rng, config: NodeConfig | None = None) -> None:
        self.identity = identity
        self.config = config or NodeConfig()
        self.counters = NodeCounters()
        self._rng = rng
        self._peers: dict[bytes, _Peer] = {}
        self._by_index: dict[int, tuple[_Peer, Session]] = {}
        self._handshakes: dict[int, _Peer] = {}
        self._out: list[tuple[bytes, Addr]] = []
        self._media_out: list[tuple[bytes, Addr]] = []
        "Packets that carry a call's audio: the runtime may mark them for expedited forwarding."
        self._events: deque[Event] = deque()
        self._cookies = CookieChecker(identity.x25519_public, rng)
        self._handshake_tokens = max(1.0, self.config.handshakes_per_s)
        self._tokens_at = float("-inf")
        self._per_address: OrderedDict[str, tuple[float, float]] = OrderedDict()
        "Source host -> (tokens, updated_at): limits cookie-holding initiators under load."
        self._expected_initiator: bytes | None = None
        "While an introduced initiation is handled: the only key it may be from."
        self._event_number = 0
        "Counts handshake events (initiation sent or received, response received): §4.10."

    # -- API --------------------------------------------------------------------------------
    def add_peer(self, public_key: bytes, addr: Addr | None, *, pin: bool = True) -> None:
        """Know a peer by key, optionally at an address. Raises ``InvalidKey``.

        ``pin=False`` (a caller someone introduced) counts against ``max_peers`` and is
        forgotten once idle, like any unknown caller; raises LocalProtocolError when full.
        """
        if public_key == self.identity.public_key:
            raise LocalProtocolError("cannot add this phone as its own peer")
        peer = self._peers.get(public_key)
        if peer is None and not pin and len(self._peers) >= self.config.max_peers:
            self.counters.dropped_peer_limit += 1
            raise LocalProtocolError("peer table full")
        if peer is None:
            peer = _Peer(
                public_key=public_key,
                x25519_public=x25519_public_from_ed25519(public_key),
                endpoint=addr,
            )
            self._peers[public_key] = peer
        elif addr is not None:
            peer.endpoint = addr
        peer.pinned = peer.pinned or pin

    def live_path(self, public_key: bytes, *, now: float) -> Addr | None:
        """Where the peer is reached on a live, confirmed session; None without one."""
        peer = self._peers.get(public_key)
        if peer is None or self._sending_session(peer, now) is None:
            return None
        return peer.endpoint

    def peer_endpoint(self, public_key: bytes) -> Addr | None:
        peer = self._peers.get(public_key)
        return peer.endpoint if peer else None

    def send_message(self, public_key: bytes, text: str, *, now: float) -> bytes:
        """Queue a text message; returns its 16-byte id. Delivery is reported by events.

        Raises ``LocalProtocolError`` for an unknown peer or a full queue, ``ValueError`` for a
        text that is too long. Then: datagrams_to_send, get_timer.
        """
        peer = self._queueable(public_key)
        message_id = self._rng.random_bytes(16)
        self._queue(peer, MessageFrame(message_id=message_id, text=text), now)
        self.counters.messages_sent += 1
        return message_id

    def send_signal(self, public_key: bytes, body: bytes, *, now: float) -> bytes:
        """Queue a call-control message (``peerline.wire.call``); delivered, retransmitted and
        reported (``MessageDelivered`` / ``MessageFailed`` with the returned id) as a text
        message is, but shown to the peer as ``SignalReceived``. Then: datagrams_to_send."""
        peer = self._queueable(public_key)
        message_id = self._rng.random_bytes(16)
        self._queue(peer, SignalFrame(message_id=message_id, body=body), now)
        self.counters.signals_sent += 1
        return message_id

    def _queueable(self, public_key: bytes) -> _Peer:
        peer = self._peers.get(public_key)
        if peer is None or peer.endpoint is None:
            raise LocalProtocolError("unknown peer or no address for it")
        if len(peer.unacked) >= self.config.max_queued_messages:
            raise LocalProtocolError("too many undelivered messages for this peer")
        return peer

    def _queue(self, peer: _Peer, frame: MessageFrame | SignalFrame, now: float) -> None:
        peer.unacked[frame.message_id] = _Outgoing(
            frame=frame,
            deadline=now + self.config.message_timeout_s,
            next_send=now,
            interval=self.config.message_retry_s,
        )
        self._flush(peer, now)

    def send_media(
        self, public_key: bytes, body: bytes | None, *, now: float, report: bytes | None = None
    ) -> bool:
        """Send one MEDIA body and/or a MEDIA_REPORT body on the live session, now: no queue, no
        acknowledgement, no retransmission (a late voice packet is useless). Pending
        acknowledgements ride along. Returns False (and counts it) without a live session.
        Then: datagrams_to_send."""
        peer = self._peers.get(public_key)
        session = self._sending_session(peer, now) if peer is not None else None
        if peer is None or session is None:
            self.counters.media_unsent += 1
            return False
        frames: list[Frame] = [*peer.acks_due]
        if report is not None:
            frames.append(MediaReportFrame(body=report))
            self.counters.media_reports_sent += 1
        if body is not None:
            frames.append(MediaDataFrame(body=body))
            self.counters.media_sent += 1
        peer.acks_due.clear()
        peer.confirm_needed = False
        peer.last_sent = now  # the call's packets are the keepalives
        assert peer.endpoint is not None
        for payload in _pack(frames):
            self._media_out.append((session.seal(payload), peer.endpoint))
        return True

    def connect(self, public_key: bytes, *, now: float) -> None:
        """Start a handshake with a known peer now (e.g. before a call), unless one is live or
        in flight. Then: datagrams_to_send."""
        peer = self._peers.get(public_key)
        if peer is None or peer.endpoint is None:
            raise LocalProtocolError("unknown peer or no address for it")
        if self._sending_session(peer, now) is None and peer.handshake is None:
            self._start_handshake(peer, now)  # one in flight already: it goes on

    def probe_path(self, public_key: bytes, addr: Addr, *, now: float) -> bool:
        """Send a path challenge on the live session to ``addr`` (another of the peer's
        addresses, a relay, a punched hole). If the echo comes back from there the path is open
        both ways and the session moves to it (``PathValidated``); otherwise nothing changes.
        Returns False when there is no live session to probe with."""
        peer = self._peers.get(public_key)
        if peer is None:
            return False
        session = self._sending_session(peer, now)
        if session is None:
            return False
        data = self._rng.random_bytes(PATH_DATA_SIZE)
        peer.probes[data] = (addr, now)
        while len(peer.probes) > MAX_PROBES:
            peer.probes.popitem(last=False)
        self.counters.path_probes_sent += 1
        self._out.append((session.seal(push_frames([PathChallengeFrame(data=data)])), addr))
        return True

    def initiation_in_flight(self, public_key: bytes) -> bytes:
        """The initiation this phone is sending to the peer (to pass along an introduction),
        or b"" when no handshake is in flight."""
        peer = self._peers.get(public_key)
        return peer.handshake.packet if peer is not None and peer.handshake is not None else b""

    def receive_introduced_initiation(
        self, data: bytes, addr: Addr, *, caller: bytes, now: float
    ) -> bool:
        """An initiation a relay passed along with an introduction: handled as if it had come
        from ``addr`` (where the relay saw the caller), but only if it is ``caller``'s (the
        relay vouches for the INTRODUCE's sender, not for what it carries). Returns whether it
        was taken: a response (or a cookie reply) went to ``addr``."""
        before = len(self._out)
        try:
            packet = pull_packet(data)
        except DecodeError:
            self.counters.dropped_malformed += 1
            return False
        if not isinstance(packet, HandshakeInitiation):
            self.counters.dropped_malformed += 1
            return False
        self._expected_initiator = caller
        try:
            self._on_initiation(packet, addr, now)
        finally:
            self._expected_initiator = None
        return len(self._out) > before

    def resend_response(self, public_key: bytes, addrs: list[Addr], *, now: float) -> int:
        """Send the response to the peer's latest initiation to ``addrs`` too, while its
        session waits for the initiator's confirmation (port prediction for a response:
        the initiator's NAT mapping towards us may be one of them). Returns how many."""
        peer = self._peers.get(public_key)
        if peer is None or not peer.recent_initiations:
            return 0
        index, begun, response = next(reversed(peer.recent_initiations.values()))
        entry = self._by_index.get(index)
        if entry is None or entry[1].begun != begun or entry[1].confirmed:
            return 0
        for addr in addrs:
            self._out.append((response, addr))
        return len(addrs)

    def repeat_initiation(self, public_key: bytes, *, now: float) -> bool:
        """Send the initiation in flight once more, unchanged, to the peer's address: the
        peer's NAT has just been opened towards us (hole punching). The responder answers a
        repeat as it answered the first (§4.9), so nothing is lost if both arrive."""
        peer = self._peers.get(public_key)
        if peer is None or peer.handshake is None or peer.endpoint is None:
            return False
        if self._sending_session(peer, now) is not None:
            return False
        self._out.append((peer.handshake.packet, peer.endpoint))
        return True

    def spray_initiation(self, public_key: bytes, addrs: list[Addr], *, now: float) -> int:
        """Send the initiation in flight, unchanged, to each of ``addrs`` too (port
        prediction: the peer's NAT will map it to one of them). A response from any of them
        completes the handshake there. Returns how many were sent."""
        peer = self._peers.get(public_key)
        if peer is None or peer.handshake is None or self._sending_session(peer, now):
            return 0
        for addr in addrs:
            self._out.append((peer.handshake.packet, addr))
        return len(addrs)

    def redirect(self, public_key: bytes, addr: Addr, *, now: float) -> None:
        """Reach the peer at ``addr`` from now on (e.g. through a relay when punching failed).
        A handshake in flight is sent again there at once; a live session is probed there
        instead (it moves when the probe's echo returns, never blindly)."""
        peer = self._peers.get(public_key)
        if peer is None:
            raise LocalProtocolError("unknown peer")
        if self._sending_session(peer, now) is not None:
            self.probe_path(public_key, addr, now=now)
            return
        peer.endpoint = addr
        if peer.handshake is not None:
            self._send_initiation(peer, now, retry=True)
        elif peer.unacked:
            self._start_handshake(peer, now)

    def nudge(self, *, now: float) -> int:
        """Send a keepalive on every live session now: this phone's address just changed, and
        an authenticated packet from the new one moves each peer's path there (§5.7) before
        the peer sends anything to the old one. Returns how many peers were nudged."""
        nudged = 0
        for peer in self._peers.values():
            if self._sending_session(peer, now) is not None:
                peer.last_sent = float("-inf")
                self._flush(peer, now)
                nudged += 1
        return nudged

    def sessions(self, *, now: float) -> list[dict[str, Any]]:
        """A snapshot of live sessions for status displays (no key material)."""
        out = []
        for peer in self._peers.values():
            s = peer.current
            if s is None:
                continue
            out.append(
                {
                    "peer_key": peer.public_key.hex(),
                    "endpoint": list(peer.endpoint) if peer.endpoint else None,
                    "initiator": s.initiator,
                    "sas": s.connection_sas,
                    "age_s": round(s.age(now), 3),
                    "sent": s.send_counter,
                    "received_highest": s.replay.highest,
                    "pending_messages": len(peer.unacked),
                }
            )
        return out

    # -- the five driver calls ---------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        """Take one datagram. Never raises: bad input is dropped and counted."""
        c = self.counters
        c.rx_datagrams += 1
        c.rx_bytes += len(data)
        if is_stun(data):
            c.dropped_stun += 1
            return
        try:
            packet = pull_packet(data)
        except DecodeError:
            c.dropped_malformed += 1
            return
        if isinstance(packet, TransportPacket):
            self._on_transport(packet, addr, now)
        elif isinstance(packet, HandshakeInitiation):
            self._on_initiation(packet, addr, now)
        elif isinstance(packet, HandshakeResponse):
            self._on_response(packet, addr, now)
        else:
            self._on_cookie_reply(packet, now)

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        """Everything to send, media included (``media_datagrams_to_send`` takes those first
        for a runtime that marks them)."""
        out = self.media_datagrams_to_send(now=now)
        rest, self._out = self._out, []
        self._count_sent(rest)
        return out + rest

    def media_datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        """Only the packets ``send_media`` made (voice and receiver reports), oldest first."""
        out, self._media_out = self._media_out, []
        self._count_sent(out)
        return out

    def _count_sent(self, out: list[tuple[bytes, Addr]]) -> None:
        for data, _ in out:
            self.counters.tx_datagrams += 1
            self.counters.tx_bytes += len(data)

    def get_timer(self) -> float | None:
        deadline: float | None = None
        for peer in self._peers.values():
            t = self._peer_deadline(peer)
            if t is not None and (deadline is None or t < deadline):
                deadline = t
        return deadline

    def handle_timer(self, *, now: float) -> None:
        for peer in list(self._peers.values()):
            self._expire_sessions(peer, now)
            hs = peer.handshake
            if hs is not None:
                if now >= hs.started_at + self.config.handshake_timeout_s:  # = the deadline
                    self._abandon_handshake(peer)
                    if self._sending_session(peer, now) is None:
                        self._fail_all(peer, "unreachable")
                elif now >= hs.next_retry:
                    self._send_initiation(peer, now, retry=True)
            for mid, out in list(peer.unacked.items()):
                if now >= out.deadline:
                    del peer.unacked[mid]
                    self.counters.messages_failed += 1
                    self._events.append(
                        MessageFailed(peer_key=peer.public_key, message_id=mid, reason="timeout")
                    )
            self._flush(peer, now)
            if not peer.pinned and self._is_idle(peer):
                del self._peers[peer.public_key]  # an unknown caller's state, now unused

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    # -- receiving ---------------------------------------------------------------------------
    def _on_transport(self, packet: TransportPacket, addr: Addr, now: float) -> None:
        c = self.counters
        entry = self._by_index.get(packet.receiver_index)
        if entry is None:
            c.dropped_unknown_session += 1
            return
        peer, session = entry
        if not session.is_usable(now):
            c.dropped_unknown_session += 1
            return
        newest = packet.counter > session.replay.highest
        try:
            payload = session.open(packet)
        except ReplayError:
            c.dropped_replay += 1
            return
        except CryptoError:
            c.dropped_auth += 1
            return
        peer.heard += 1
        if not session.confirmed:
            session.confirmed = True
            if session in peer.pending:
                peer.pending.remove(session)
            self._install(peer, session)
            c.handshakes_completed += 1
            self._events.append(
                HandshakeCompleted(
                    peer_key=peer.public_key,
                    initiator=False,
                    sas=self._connection_sas(peer),
                    addr=addr,
                )
            )
        try:
            frames, unknown = pull_frames(payload)
        except DecodeError:
            c.dropped_bad_frames += 1
            return
        c.unknown_frames += unknown
        probe_only = bool(frames) and all(isinstance(f, PATH_FRAMES) for f in frames)
        # The path follows the newest authenticated packet of the current session that is not a
        # probe (§5.7): a late packet from an old path or session, or a probe, never moves it.
        if peer.endpoint != addr and newest and session is peer.current and not probe_only:
            self._move(peer, addr)
        for frame in frames:
            if isinstance(frame, PathChallengeFrame):
                peer.responses_due.append((frame.data, addr))
                del peer.responses_due[:-MAX_PROBES]
            elif isinstance(frame, PathResponseFrame):
                self._on_path_response(peer, frame.data, addr, now)
            elif isinstance(frame, MediaDataFrame):
                c.media_received += 1
                self._events.append(
                    MediaReceived(peer_key=peer.public_key, body=frame.body, at=now)
                )
            elif isinstance(frame, MediaReportFrame):
                c.media_reports_received += 1
                self._events.append(
                    MediaReportReceived(peer_key=peer.public_key, body=frame.body, at=now)
                )
            elif isinstance(frame, MessageFrame | SignalFrame):
                self._on_message(peer, frame)
            elif (
                isinstance(frame, MessageAckFrame)
                and peer.unacked.pop(frame.message_id, None) is not None
            ):
                c.messages_delivered += 1
                self._events.append(
                    MessageDelivered(peer_key=peer.public_key, message_id=frame.message_id)
                )
        self._flush(peer, now)

    def _move(self, peer: _Peer, addr: Addr) -> None:
        peer.endpoint = addr
        self.counters.path_migrations += 1
        self._events.append(PeerEndpointChanged(peer_key=peer.public_key, addr=addr))

    def _on_path_response(self, peer: _Peer, data: bytes, addr: Addr, now: float) -> None:
        sent = peer.probes.get(data)
        if sent is None or sent[0] != addr or now - sent[1] > PROBE_LIFETIME_S:
            return  # not ours, echoed from elsewhere, or too old
        del peer.probes[data]
        self.counters.paths_validated += 1
        moved = peer.endpoint != addr
        if moved:
            self._move(peer, addr)
            peer.last_sent = float("-inf")  # say so on the new path at once: the peer moves
        for out in peer.unacked.values():
            out.next_send = now  # the path works (again): what is pending goes now
        self._events.append(PathValidated(peer_key=peer.public_key, addr=addr, moved=moved))

    def _on_message(self, peer: _Peer, frame: MessageFrame | SignalFrame) -> None:
        peer.acks_due.append(MessageAckFrame(message_id=frame.message_id))
        if frame.message_id in peer.recent_ids:
            self.counters.messages_duplicate += 1
            return
        peer.recent_ids[frame.message_id] = None
        if len(peer.recent_ids) > RECENT_IDS:
            peer.recent_ids.popitem(last=False)
        if isinstance(frame, SignalFrame):
            self.counters.signals_received += 1
            self._events.append(
                SignalReceived(
                    peer_key=peer.public_key, message_id=frame.message_id, body=frame.body
                )
            )
            return
        self.counters.messages_received += 1
        self._events.append(
            MessageReceived(peer_key=peer.public_key, message_id=frame.message_id, text=frame.text)
        )

    def _under_load(self, now: float) -> bool:
        """Token bucket over initiations: True once more than ``handshakes_per_s`` arrive."""
        rate = self.config.handshakes_per_s
        if now > self._tokens_at:
            elapsed = now - self._tokens_at
            self._handshake_tokens = min(max(1.0, rate), self._handshake_tokens + elapsed * rate)
            self._tokens_at = now
        if self._handshake_tokens >= 1.0:
            self._handshake_tokens -= 1.0
            return False
        return True

    def _address_allowed(self, host: str, now: float) -> bool:
        """Per-address token bucket (bounded LRU) for initiations that carry a valid cookie."""
        rate = INITIATIONS_PER_ADDRESS_PER_S
        tokens, at = self._per_address.pop(host, (rate, now))
        tokens = min(rate, tokens + (now - at) * rate)
        allowed = tokens >= 1.0
        self._per_address[host] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._per_address) > self.config.max_peers:
            self._per_address.popitem(last=False)
        return allowed

    def _on_initiation(self, packet: HandshakeInitiation, addr: Addr, now: float) -> None:
        c = self.counters
        if not self._cookies.mac1_ok(packet.mac1_input, packet.mac1):
            c.dropped_mac1 += 1
            return
        under_load = self._under_load(now)
        if under_load and self._cookies.mac2_ok(packet.mac2_input, packet.mac2, addr, now=now):
            if not self._address_allowed(addr[0], now):
                c.dropped_rate_limited += 1
                return
        elif under_load:
            nonce, sealed = self._cookies.sealed_cookie(addr, packet.mac1, now=now)
            reply = CookieReply(
                receiver_index=packet.sender_index, nonce=nonce, sealed_cookie=sealed
            )
            self._out.append((push_cookie_reply(reply), addr))
            c.cookie_replies_sent += 1
            return
        hs = IKHandshake(
            role=Role.RESPONDER,
            static_private=self.identity.x25519_private,
            ephemeral_private=self._rng.random_bytes(32),
            prologue=PROLOGUE + initiation_header(packet.sender_index),
        )
        ephemeral = packet.noise[:DHLEN]
        try:
            payload = hs.read_initiation(packet.noise)
            peer_key = payload
            if len(peer_key) != 32 or x25519_public_from_ed25519(peer_key) != hs.remote_static:
                raise CryptoError("initiator's identity key does not match its static key")
        except (CryptoError, DecodeError, InvalidKey):
            c.dropped_handshake += 1
            return
        if peer_key == self.identity.public_key or (
            self._expected_initiator is not None and peer_key != self._expected_initiator
        ):
            c.dropped_handshake += 1
            return
        peer = self._peers.get(peer_key)
        if peer is None:
            if len(self._peers) >= self.config.max_peers:
                c.dropped_peer_limit += 1
                return
            assert hs.remote_static is not None
            peer = _Peer(public_key=peer_key, x25519_public=hs.remote_static, endpoint=None)
            self._peers[peer_key] = peer
        seen = peer.recent_initiations.get(ephemeral)
        if seen is not None:
            # A duplicate or a replay must not take a pending slot. Its first copy may have come
            # from someone racing the real initiator, so repeat the answer while it can help.
            c.initiations_repeated += 1
            index, begun, response = seen
            entry = self._by_index.get(index)
            if entry is not None and entry[1].begun == begun and not entry[1].confirmed:
                self._out.append((response, addr))  # its session is still pending
            return
        # Linked indices (§4.7): if the initiator proved it holds a session we hold too, prove
        # it back with our index; the new session then continues that connection's SAS.
        link = self._linked_session(peer, packet.sender_index, ephemeral)
        local_index: int | None = None
        if link is not None:
            local_index = link.link_tag(b"r", ephemeral)
            if local_index is not None and self._index_in_use(local_index):
                local_index = None
        if local_index is None:
            link = None
            local_index = self._new_index()
        noise = hs.write_response(local_index.to_bytes(4, "big"))
        session = Session(
            keys=hs.transport_keys(),
            local_index=local_index,
            remote_index=packet.sender_index,
            initiator=False,
            created_at=now,
        )
        if link is not None:
            session.connection_sas = link.connection_sas
        session.begun = session.made = self._next_event_number()
        peer.pending.append(session)
        if len(peer.pending) > MAX_PENDING_SESSIONS:
            self._drop_session(peer.pending.pop(0))
        self._by_index[local_index] = (peer, session)
        response = push_response(HandshakeResponse(receiver_index=packet.sender_index, noise=noise))
        peer.recent_initiations[ephemeral] = (local_index, session.begun, response)
        if len(peer.recent_initiations) > RECENT_INITIATIONS:
            peer.recent_initiations.popitem(last=False)
        self._out.append((response, addr))

    def _on_response(self, packet: HandshakeResponse, addr: Addr, now: float) -> None:
        c = self.counters
        peer = self._handshakes.get(packet.receiver_index)
        if peer is None or peer.handshake is None:
            c.dropped_unknown_session += 1
            return
        hs = peer.handshake
        try:
            payload = hs.state.read_response(packet.noise)
            if len(payload) != 4:
                raise DecodeError("response payload must be the responder's 4-byte index")
        except (CryptoError, DecodeError):
            c.dropped_handshake += 1  # the handshake is untouched: the real response may follow
            return
        self._abandon_handshake(peer)
        remote_index = int.from_bytes(payload, "big")
        session = Session(
            keys=hs.state.transport_keys(),
            local_index=hs.local_index,
            remote_index=remote_index,
            initiator=True,
            created_at=now,
        )
        if hs.link_index is not None and remote_index == hs.link_index:
            session.connection_sas = hs.link_sas  # both phones proved they hold the old session
        session.begun, session.made = hs.sent_as, self._next_event_number()
        self._by_index[hs.local_index] = (peer, session)
        peer.heard += 1  # the response is authentic and fresh: the peer is there
        self._install(peer, session)
        c.handshakes_completed += 1
        if peer.endpoint != addr:
            peer.endpoint = addr
            self._events.append(PeerEndpointChanged(peer_key=peer.public_key, addr=addr))
        self._events.append(
            HandshakeCompleted(
                peer_key=peer.public_key,
                initiator=True,
                sas=self._connection_sas(peer),
                addr=addr,
            )
        )
        peer.confirm_needed = True
        for out in peer.unacked.values():
            out.next_send = now
        self._flush(peer, now)

    def _on_cookie_reply(self, packet: CookieReply, now: float) -> None:
        c = self.counters
        peer = self._handshakes.get(packet.receiver_index)
        if peer is None or peer.handshake is None:
            c.dropped_unknown_session += 1
            return
        try:
            cookie = open_cookie(
                cookie_key(peer.x25519_public),
                packet.nonce,
                packet.sealed_cookie,
                peer.handshake.mac1,
            )
        except CryptoError:
            c.dropped_auth += 1
            return
        c.cookies_received += 1
        peer.cookie, peer.cookie_at = cookie, now  # used by the next (timer-driven) attempt

    # -- sending -----------------------------------------------------------------------------
    def _flush(self, peer: _Peer, now: float) -> None:
        """Send what is due for ``peer``: acks, due messages, a key-confirmation keepalive."""
        session = self._sending_session(peer, now)
        due = [o for o in peer.unacked.values() if o.next_send <= now]
        if peer.responses_due and session is not None:
            responses, peer.responses_due = peer.responses_due, []
            for data, to in responses:
                self.counters.path_probes_answered += 1
                self._out.append((session.seal(push_frames([PathResponseFrame(data=data)])), to))
        if session is None:
            if due and peer.handshake is None and peer.endpoint is not None:
                self._start_handshake(peer, now)
            return
        frames: list[Frame] = list(peer.acks_due)
        peer.acks_due.clear()
        silent = any(o.quiet_epoch == peer.heard and o.quiet_sends >= SILENCE_RETRIES for o in due)
        if silent and peer.handshake is None:
            self._start_handshake(peer, now)  # the peer lost our session; keep trying on it too
            # The app may know a newer address (a directory lookup): ``add_peer`` redirects
            # this handshake's retries there.
            self._events.append(PeerSilent(peer_key=peer.public_key, addr=peer.endpoint))
        quiet = any(o.quiet_epoch == peer.heard and o.quiet_sends >= 1 for o in due)
        if quiet and peer.quiet_reported != peer.heard and peer.endpoint is not None:
            peer.quiet_reported = peer.heard
            self._events.append(PathQuiet(peer_key=peer.public_key, addr=peer.endpoint))
        for out in due:
            if out.sends:
                self.counters.message_retransmissions += 1
            out.sends += 1
            if out.quiet_epoch != peer.heard:
                out.quiet_epoch, out.quiet_sends = peer.heard, 0
            out.quiet_sends += 1
            frames.append(out.frame)
            out.next_send = now + out.interval
            out.interval = min(out.interval * 2, self.config.message_retry_max_s)
        # Only real traffic rekeys: an idle session keeps alive until it expires, then goes.
        if frames and self._needs_rekey(session, now) and peer.handshake is None:
            self.counters.rekeys += 1
            self._start_handshake(peer, now)
        keepalive = not frames and not peer.confirm_needed
        if keepalive:
            if now < peer.last_sent + self.config.keepalive_s:
                return
            self.counters.keepalives_sent += 1
        peer.confirm_needed = False
        peer.last_sent = now
        assert peer.endpoint is not None
        for payload in _pack(frames):
            packet = session.seal(payload)
            if keepalive:
                self.counters.keepalive_bytes_sent += len(packet)
            self._out.append((packet, peer.endpoint))

    def _sending_session(self, peer: _Peer, now: float) -> Session | None:
        s = peer.current
        if s is not None and s.confirmed and s.is_usable(now) and peer.endpoint is not None:
            return s
        return None

    def _needs_rekey(self, session: Session, now: float) -> bool:
        cfg = self.config
        if session.send_counter >= cfg.rekey_after_messages:
            return True
        limit = cfg.rekey_after_time_s + (0.0 if session.initiator else RESPONDER_REKEY_GRACE)
        return session.age(now) >= limit

    def _start_handshake(self, peer: _Peer, now: float) -> None:
        self.counters.handshakes_initiated += 1
        self._send_initiation(peer, now, retry=False)

    def _send_initiation(self, peer: _Peer, now: float, *, retry: bool) -> None:
        """Send a fresh initiation (new ephemeral key and index on every attempt)."""
        old = peer.handshake
        if old is not None:
            self._handshakes.pop(old.local_index, None)
        if peer.endpoint is None:
            return
        ephemeral_private = self._rng.random_bytes(32)
        # Linked index (§4.7): prove that this phone still holds its current session, so that
        # the new session can carry on that connection's SAS if the responder holds it too.
        link = peer.current if peer.current is not None and peer.current.is_usable(now) else None
        ephemeral = x25519_public(ephemeral_private) if link is not None else b""
        index = link.link_tag(b"i", ephemeral) if link is not None else None
        if index is None or self._index_in_use(index):
            index, link = self._new_index(), None
        state = IKHandshake(
            role=Role.INITIATOR,
            static_private=self.identity.x25519_private,
            ephemeral_private=ephemeral_private,
            prologue=PROLOGUE + initiation_header(index),
            remote_static=peer.x25519_public,
        )
        noise = state.write_initiation(self.identity.public_key)
        mac1 = mac(mac1_key(peer.x25519_public), initiation_header(index) + noise)
        if peer.cookie and now - peer.cookie_at < COOKIE_SECRET_LIFETIME - COOKIE_USE_MARGIN:
            mac2 = mac(peer.cookie, initiation_header(index) + noise + mac1)
        else:
            mac2 = bytes(MAC_SIZE)
        attempts = old.attempts + 1 if (old is not None and retry) else 1
        interval = min(
            self.config.handshake_retry_s * 2 ** (attempts - 1), self.config.handshake_retry_max_s
        )
        jitter = 1.0 + 0.2 * self._rng.random()
        peer.handshake = _Handshake(
            state=state,
            local_index=index,
            started_at=old.started_at if (old is not None and retry) else now,
            next_retry=now + interval * jitter,
            attempts=attempts,
            mac1=mac1,
            sent_as=self._next_event_number(),
        )
        if link is not None:
            peer.handshake.link_index = link.link_tag(b"r", ephemeral)
            peer.handshake.link_sas = link.connection_sas
        self._handshakes[index] = peer
        packet = HandshakeInitiation(sender_index=index, noise=noise, mac1=mac1, mac2=mac2)
        peer.handshake.packet = push_initiation(packet)
        self._out.append((peer.handshake.packet, peer.endpoint))

    def _abandon_handshake(self, peer: _Peer) -> None:
        if peer.handshake is not None:
            self._handshakes.pop(peer.handshake.local_index, None)
            peer.handshake = None

    def _fail_all(self, peer: _Peer, reason: str) -> None:
        for mid in list(peer.unacked):
            del peer.unacked[mid]
            self.counters.messages_failed += 1
            self._events.append(
                MessageFailed(peer_key=peer.public_key, message_id=mid, reason=reason)
            )

    # -- sessions ----------------------------------------------------------------------------
    def _install(self, peer: _Peer, session: Session) -> None:
        """Make ``session`` current; the old current stays for stragglers until it expires.

        Glare (both phones initiated at once, so their initiations crossed) yields two fresh
        sessions in opposite directions; both phones then keep, as current, the one initiated
        by the smaller key, so they send on the same session and show the same SAS (§4.10).
        """
        cur = peer.current
        if cur is not None and cur is not session and not self._supersedes(peer, session, cur):
            if peer.previous is not None and peer.previous is not cur:
                self._drop_session(peer.previous)
            peer.previous = session  # usable for receiving; cur stays current
            return
        if peer.previous is not None and peer.previous is not cur:
            self._drop_session(peer.previous)
        if cur is not session:
            peer.previous = cur
        peer.current = session

    def _supersedes(self, peer: _Peer, new: Session, cur: Session) -> bool:
        """Whether ``new`` should replace ``cur`` as current (§4.10). Each session's handshake
        spans an interval of this phone's handshake events (``begun``..``made``): the later of
        two disjoint intervals wins. Intervals overlap only when the peer's initiation arrived
        while this phone's own was in flight, i.e. the two crossed (glare): then the session
        initiated by the smaller key wins. Both phones reach the same answer (§4.10)."""
        if cur.made < new.begun:
            return True
        if new.made < cur.begun:
            return False
        return self._initiator_key(peer, new) < self._initiator_key(peer, cur)

    def _initiator_key(self, peer: _Peer, session: Session) -> bytes:
        return self.identity.public_key if session.initiator else peer.public_key

    def _next_event_number(self) -> int:
        self._event_number += 1
        return self._event_number

    @staticmethod
    def _connection_sas(peer: _Peer) -> str:
        """What the phone shows for ``peer``: its current session's connection SAS (§2.4)."""
        return peer.current.connection_sas if peer.current is not None else ""

    @staticmethod
    def _linked_session(peer: _Peer, sender_index: int, ephemeral: bytes) -> Session | None:
        """The session held with ``peer`` whose initiator link tag is ``sender_index`` (§4.7)."""
        for s in (peer.current, peer.previous, *peer.pending):
            if s is not None and s.link_tag(b"i", ephemeral) == sender_index:
                return s
        return None

    def _drop_session(self, session: Session) -> None:
        self._by_index.pop(session.local_index, None)
        session.wipe()

    def _expire_sessions(self, peer: _Peer, now: float) -> None:
        for name in ("current", "previous"):
            s: Session | None = getattr(peer, name)
            if s is not None and (not s.is_usable(now) or now >= self._session_end(s)):
                self._drop_session(s)
                setattr(peer, name, None)
        for s in list(peer.pending):
            if not s.is_usable(now) or now >= self._session_end(s):
                self._drop_session(s)
                peer.pending.remove(s)

    def _session_end(self, s: Session) -> float:
        if s.confirmed:
            return s.created_at + REJECT_AFTER_TIME
        return s.created_at + min(self.config.confirm_timeout_s, REJECT_AFTER_TIME)

    @staticmethod
    def _is_idle(peer: _Peer) -> bool:
        return not (peer.current or peer.previous or peer.pending or peer.handshake or peer.unacked)

    def _peer_deadline(self, peer: _Peer) -> float | None:
        times: list[float] = []
        if peer.handshake is not None:
            times.append(
                min(
                    peer.handshake.next_retry,
                    peer.handshake.started_at + self.config.handshake_timeout_s,
                )
            )
        for out in peer.unacked.values():
            times.append(out.deadline)
            if peer.current is not None:
                times.append(out.next_send)
        for s in (peer.current, peer.previous, *peer.pending):
            if s is not None:
                times.append(self._session_end(s))
        cur = peer.current
        if cur is not None and cur.confirmed and peer.endpoint is not None:
            times.append(peer.last_sent + self.config.keepalive_s)
        return min(times) if times else None

    def _new_index(self) -> int:
        while True:
            index = int.from_bytes(self._rng.random_bytes(4), "big")
            if not self._index_in_use(index):
                return index

    def _index_in_use(self, index: int) -> bool:
        return index in self._by_index or index in self._handshakes


def _pack(frames: list[Frame]) -> list[bytes]:
    """Group frames into payloads that each fit one datagram; [] frames -> one empty payload."""
    payloads: list[bytes] = []
    batch: list[Frame] = []
    size = 0
    for frame in frames:
        n = frame_size(frame)
        if batch and size + n > MAX_PAYLOAD:
            payloads.append(push_frames(batch))
            batch, size = [], 0
        batch.append(frame)
        size += n
    payloads.append(push_frames(batch))
    return payloads
