"""The phone's protocol core: one object behind the shared UDP socket.

``Node`` demultiplexes every datagram, runs Noise IK handshakes, keeps transport sessions per
peer (rekeying them by time and count), and carries reliable text messages. It never touches a
socket or a clock: drivers (``peerline.runtime`` on real UDP, ``peerline.sim`` in virtual time)
call the five aioquic-style methods.

Peers are identified by their Ed25519 public key; mapping dialable numbers to keys is the
caller's job (numbers can collide, keys cannot).

This module is the node's face: the five driver calls, the API, transport packets and their
frames (messages, signals, media, path probes), and what is sent when (acknowledgements,
retransmissions, keepalives, rekeying). Its parts live in ``peerline.proto.session``: the config
and counters (``config``), the per-peer records (``peer``), the session table and session order
(``table``) and the handshakes (``handshakes``). The names other modules import from here stay
here.
"""

from collections import deque
from collections.abc import Callable
from typing import Any

from peerline.errors import CryptoError, DecodeError, LocalProtocolError, ReplayError
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
from peerline.proto.noise.session import Session
from peerline.proto.session.config import NodeConfig, NodeCounters
from peerline.proto.session.handshakes import (
    INITIATIONS_PER_ADDRESS_PER_S,
    MAX_PENDING_SESSIONS,
    RECENT_INITIATIONS,
    Handshakes,
)
from peerline.proto.session.peer import Outgoing, Peer, sending_session
from peerline.proto.session.table import SessionTable
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
    CookieReply,
    HandshakeInitiation,
    HandshakeResponse,
    Packet,
    TransportPacket,
    is_stun,
    pull_packet,
)

__all__ = [
    "INITIATIONS_PER_ADDRESS_PER_S",
    "MAX_PENDING_SESSIONS",
    "MAX_PROBES",
    "PROBE_LIFETIME_S",
    "RECENT_IDS",
    "RECENT_INITIATIONS",
    "RESPONDER_REKEY_GRACE",
    "RETURN_HOLD_S",
    "SILENCE_RETRIES",
    "Node",
    "NodeConfig",
    "NodeCounters",
]

RESPONDER_REKEY_GRACE = 10.0
"""A responder rekeys only this long after the initiator should have (avoids both rekeying)."""

SILENCE_RETRIES = 3
"""A message sent this many times since the peer was last heard from (an authentic transport
packet or a valid handshake response) means the peer lost its session (e.g. it restarted):
start a fresh handshake."""

RECENT_IDS = 1024
"""Per peer, message ids remembered to suppress duplicate deliveries after retransmission."""

MAX_PROBES = 8
"""Per peer, path challenges outstanding (the oldest is forgotten beyond this)."""

PROBE_LIFETIME_S = 10.0
"""A path challenge's echo is accepted this long after it was sent."""

RETURN_HOLD_S = 3.0
"""After a validation moved the path, traffic from the path it left does not move it back for
this long (or until the peer's first packet on the new path): that traffic was sent before the
peer learned of the move (protocol.md §5.7). Without it, two phones with traffic in flight both
ways chase each other's newest packet between the two paths."""

_Peer = Peer
"""``Peer``'s name from when it was defined here (``tests/proto/test_node.py`` builds one)."""


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
        self._peers: dict[bytes, Peer] = {}
        self._sessions = SessionTable(public_key=identity.public_key, config=self.config, rng=rng)
        self._by_index = self._sessions.by_index
        "The session table's index -> (peer, session), looked up for every transport packet."
        self._out: list[tuple[bytes, Addr]] = []
        "Everything to send but media; shared with the handshakes, so never rebound."
        self._media_out: list[tuple[bytes, Addr]] = []
        "Packets that carry a call's audio: the runtime may mark them for expedited forwarding."
        self._events: deque[Event] = deque()
        self._handshakes = Handshakes(
            identity=identity,
            config=self.config,
            counters=self.counters,
            rng=rng,
            peers=self._peers,
            table=self._sessions,
            out=self._out,
            events=self._events,
        )
        self._on_packet: dict[type[Packet], Callable[[Any, Addr, float], None]] = {
            TransportPacket: self._on_transport,
            HandshakeInitiation: self._handshakes.on_initiation,
            HandshakeResponse: self._on_response,
            CookieReply: self._handshakes.on_cookie_reply,
        }
        "What ``receive_datagram`` does with each kind of packet (protocol.md §3)."
        self._on_frame: dict[type[Frame], Callable[[Peer, Any, Addr, float], None]] = {
            PathChallengeFrame: self._on_path_challenge,
            PathResponseFrame: self._on_path_response,
            MediaDataFrame: self._on_media,
            MediaReportFrame: self._on_media_report,
            MessageFrame: self._on_message,
            SignalFrame: self._on_message,
            MessageAckFrame: self._on_ack,
        }
        "What an authenticated frame does (§6.2); PING has no entry: the packet was the point."

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
            peer = Peer(
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
        if peer is None or sending_session(peer, now) is None:
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

    def _queueable(self, public_key: bytes) -> Peer:
        peer = self._peers.get(public_key)
        if peer is None or peer.endpoint is None:
            raise LocalProtocolError("unknown peer or no address for it")
        if len(peer.unacked) >= self.config.max_queued_messages:
            raise LocalProtocolError("too many undelivered messages for this peer")
        return peer

    def _queue(self, peer: Peer, frame: MessageFrame | SignalFrame, now: float) -> None:
        peer.unacked[frame.message_id] = Outgoing(
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
        session = sending_session(peer, now) if peer is not None else None
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
        if sending_session(peer, now) is None and peer.handshake is None:
            self._handshakes.start(peer, now)  # one in flight already: it goes on

    def report_quiet(self, public_key: bytes, *, now: float) -> bool:
        """The app heard nothing from the peer for a while where traffic was expected (a call's
        voice and reports stopped): report ``PathQuiet`` for the live path now, as a message
        unanswered on it would, so that traversal probes other paths. Once per silence (the
        same rule as for messages); returns whether it reported."""
        peer = self._peers.get(public_key)
        if peer is None or peer.endpoint is None or sending_session(peer, now) is None:
            return False
        if peer.quiet_reported == peer.heard:
            return False
        peer.quiet_reported = peer.heard
        self._events.append(PathQuiet(peer_key=public_key, addr=peer.endpoint))
        return True

    def probe_path(self, public_key: bytes, addr: Addr, *, now: float) -> bool:
        """Send a path challenge on the live session to ``addr`` (another of the peer's
        addresses, a relay, a punched hole). If the echo comes back from there the path is open
        both ways and the session moves to it (``PathValidated``); otherwise nothing changes.
        Returns False when there is no live session to probe with."""
        peer = self._peers.get(public_key)
        if peer is None:
            return False
        session = sending_session(peer, now)
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
        return self._handshakes.receive_introduced(data, addr, caller=caller, now=now)

    def resend_response(self, public_key: bytes, addrs: list[Addr], *, now: float) -> int:
        """Send the response to the peer's latest initiation to ``addrs`` too, while its
        session waits for the initiator's confirmation (port prediction for a response:
        the initiator's NAT mapping towards us may be one of them). Returns how many."""
        peer = self._peers.get(public_key)
        if peer is None:
            return 0
        return self._handshakes.resend_response(peer, addrs)

    def repeat_initiation(self, public_key: bytes, *, now: float) -> bool:
        """Send the initiation in flight once more, unchanged, to the peer's address: the
        peer's NAT has just been opened towards us (hole punching). The responder answers a
        repeat as it answered the first (§4.9), so nothing is lost if both arrive."""
        peer = self._peers.get(public_key)
        if peer is None or peer.handshake is None or peer.endpoint is None:
            return False
        if sending_session(peer, now) is not None:
            return False
        self._out.append((peer.handshake.packet, peer.endpoint))
        return True

    def spray_initiation(self, public_key: bytes, addrs: list[Addr], *, now: float) -> int:
        """Send the initiation in flight, unchanged, to each of ``addrs`` too (port
        prediction: the peer's NAT will map it to one of them). A response from any of them
        completes the handshake there. Returns how many were sent."""
        peer = self._peers.get(public_key)
        if peer is None or peer.handshake is None or sending_session(peer, now):
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
        if sending_session(peer, now) is not None:
            self.probe_path(public_key, addr, now=now)
            return
        peer.endpoint = addr
        if peer.handshake is not None:
            self._handshakes.send_initiation(peer, now, retry=True)
        elif peer.unacked:
            self._handshakes.start(peer, now)

    def nudge(self, *, now: float) -> int:
        """Send a keepalive on every live session now: this phone's address just changed, and
        an authenticated packet from the new one moves each peer's path there (§5.7) before
        the peer sends anything to the old one. Returns how many peers were nudged."""
        nudged = 0
        for peer in self._peers.values():
            if sending_session(peer, now) is not None:
                peer.last_sent = float("-inf")
                self._flush(peer, now)
                nudged += 1
        return nudged

    def connection_hash(self, peer_key: bytes) -> bytes | None:
        """The handshake hash ``h`` that began the connection of ``peer_key``'s current session
        (protocol.md §2.4): the call SAS's input (§2.6). None when there is no current session.
        Both phones hold the same value while they share the current session. Never log it."""
        peer = self._peers.get(peer_key)
        return SessionTable.connection_hash(peer) if peer is not None else None

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
        self._on_packet[type(packet)](packet, addr, now)

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        """Everything to send, media included (``media_datagrams_to_send`` takes those first
        for a runtime that marks them)."""
        out = self.media_datagrams_to_send(now=now)
        rest = self._out  # shared with the handshakes: emptied, never replaced
        if rest:
            self._count_sent(rest)
            out += rest
            rest.clear()
        return out

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
        handshakes = self._handshakes
        for peer in list(self._peers.values()):
            self._sessions.expire(peer, now)
            hs = peer.handshake
            if hs is not None:
                if now >= hs.started_at + self.config.handshake_timeout_s:  # = the deadline
                    handshakes.abandon(peer)
                    if sending_session(peer, now) is None:
                        self._fail_all(peer, "unreachable")
                elif now >= hs.next_retry:
                    handshakes.send_initiation(peer, now, retry=True)
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
            self._sessions.install(peer, session)
            c.handshakes_completed += 1
            self._events.append(
                HandshakeCompleted(
                    peer_key=peer.public_key,
                    initiator=False,
                    sas=SessionTable.connection_sas(peer),
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
        if newest and session is peer.current and not probe_only:
            if peer.endpoint == addr:
                peer.left = None  # the peer's traffic follows the path: no more holding back
            elif not self._held_back(peer, addr, now):
                self._move(peer, addr)
        on_frame = self._on_frame
        for frame in frames:
            handler = on_frame.get(type(frame))
            if handler is not None:
                handler(peer, frame, addr, now)
        self._flush(peer, now)

    def _on_response(self, packet: HandshakeResponse, addr: Addr, now: float) -> None:
        peer = self._handshakes.on_response(packet, addr, now)
        if peer is None:
            return
        peer.confirm_needed = True
        for out in peer.unacked.values():
            out.next_send = now
        self._flush(peer, now)

    @staticmethod
    def _held_back(peer: Peer, addr: Addr, now: float) -> bool:
        """Whether traffic from ``addr`` must not move the path (§5.7: the path a validation
        just left)."""
        left = peer.left
        if left is None or left[0] != addr:
            return False
        if now < left[1]:
            return True
        peer.left = None
        return False

    def _move(self, peer: Peer, addr: Addr) -> None:
        peer.endpoint = addr
        self.counters.path_migrations += 1
        self._events.append(PeerEndpointChanged(peer_key=peer.public_key, addr=addr))

    def _on_path_challenge(
        self, peer: Peer, frame: PathChallengeFrame, addr: Addr, now: float
    ) -> None:
        peer.responses_due.append((frame.data, addr))
        del peer.responses_due[:-MAX_PROBES]

    def _on_path_response(
        self, peer: Peer, frame: PathResponseFrame, addr: Addr, now: float
    ) -> None:
        data = frame.data
        sent = peer.probes.get(data)
        if sent is None or sent[0] != addr or now - sent[1] > PROBE_LIFETIME_S:
            return  # not ours, echoed from elsewhere, or too old
        del peer.probes[data]
        self.counters.paths_validated += 1
        moved = peer.endpoint != addr
        if moved:
            if peer.endpoint is not None:
                peer.left = (peer.endpoint, now + RETURN_HOLD_S)
            self._move(peer, addr)
            peer.last_sent = float("-inf")  # say so on the new path at once: the peer moves
        for out in peer.unacked.values():
            out.next_send = now  # the path works (again): what is pending goes now
        self._events.append(PathValidated(peer_key=peer.public_key, addr=addr, moved=moved))

    def _on_media(self, peer: Peer, frame: MediaDataFrame, addr: Addr, now: float) -> None:
        self.counters.media_received += 1
        self._events.append(MediaReceived(peer_key=peer.public_key, body=frame.body, at=now))

    def _on_media_report(self, peer: Peer, frame: MediaReportFrame, addr: Addr, now: float) -> None:
        self.counters.media_reports_received += 1
        self._events.append(MediaReportReceived(peer_key=peer.public_key, body=frame.body, at=now))

    def _on_message(
        self, peer: Peer, frame: MessageFrame | SignalFrame, addr: Addr, now: float
    ) -> None:
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

    def _on_ack(self, peer: Peer, frame: MessageAckFrame, addr: Addr, now: float) -> None:
        if peer.unacked.pop(frame.message_id, None) is not None:
            self.counters.messages_delivered += 1
            self._events.append(
                MessageDelivered(peer_key=peer.public_key, message_id=frame.message_id)
            )

    # -- sending -----------------------------------------------------------------------------
    def _flush(self, peer: Peer, now: float) -> None:
        """Send what is due for ``peer``: acks, due messages, a key-confirmation keepalive."""
        session = sending_session(peer, now)
        due = [o for o in peer.unacked.values() if o.next_send <= now]
        if peer.responses_due and session is not None:
            responses, peer.responses_due = peer.responses_due, []
            for data, to in responses:
                self.counters.path_probes_answered += 1
                self._out.append((session.seal(push_frames([PathResponseFrame(data=data)])), to))
        if session is None:
            if due and peer.handshake is None and peer.endpoint is not None:
                self._handshakes.start(peer, now)
            return
        frames: list[Frame] = list(peer.acks_due)
        peer.acks_due.clear()
        silent = any(o.quiet_epoch == peer.heard and o.quiet_sends >= SILENCE_RETRIES for o in due)
        if silent and peer.handshake is None:
            self._handshakes.start(peer, now)  # the peer lost our session; keep trying on it too
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
            self._handshakes.start(peer, now)
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

    def _needs_rekey(self, session: Session, now: float) -> bool:
        cfg = self.config
        if session.send_counter >= cfg.rekey_after_messages:
            return True
        limit = cfg.rekey_after_time_s + (0.0 if session.initiator else RESPONDER_REKEY_GRACE)
        return session.age(now) >= limit

    def _fail_all(self, peer: Peer, reason: str) -> None:
        for mid in list(peer.unacked):
            del peer.unacked[mid]
            self.counters.messages_failed += 1
            self._events.append(
                MessageFailed(peer_key=peer.public_key, message_id=mid, reason=reason)
            )

    # -- timers ------------------------------------------------------------------------------
    @staticmethod
    def _is_idle(peer: Peer) -> bool:
        return not (peer.current or peer.previous or peer.pending or peer.handshake or peer.unacked)

    def _peer_deadline(self, peer: Peer) -> float | None:
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
                times.append(self._sessions.session_end(s))
        cur = peer.current
        if cur is not None and cur.confirmed and peer.endpoint is not None:
            times.append(peer.last_sent + self.config.keepalive_s)
        return min(times) if times else None


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
