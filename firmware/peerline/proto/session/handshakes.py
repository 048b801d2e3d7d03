"""Noise IK handshakes for a ``Node``, both sides (protocol.md §4).

As initiator: a fresh initiation on every attempt (new ephemeral key and index, a linked index
when a session is held, §4.7), with mac1 and, after a cookie reply, mac2 (§4.5). As responder:
mac1 first (cheap), then the load check (a token bucket of ``handshakes_per_s``; under load a
cookie reply, or, for an initiation with a valid cookie, a per-address limit), then the
initiation itself, repeats answered without a new session (§4.9), and the new session put
among the peer's pending ones. A response completes the initiator's session. Sessions go into
the node's ``SessionTable``, which orders them (§4.10).

``Handshakes`` shares the node's peer table, outgoing datagrams, events and counters, and
appends to them; what the node sends once a handshake completes (acks, queued messages, the key
confirmation) is the node's business, not this module's.
"""

from collections import OrderedDict, deque

from peerline.errors import CryptoError, DecodeError, InvalidKey
from peerline.ports import Rng
from peerline.proto.events import Event, HandshakeCompleted, PeerEndpointChanged
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
from peerline.proto.session.config import NodeConfig, NodeCounters
from peerline.proto.session.peer import Handshake, Peer
from peerline.proto.session.table import SessionTable
from peerline.types import Addr
from peerline.wire.packet import (
    MAC_SIZE,
    CookieReply,
    HandshakeInitiation,
    HandshakeResponse,
    initiation_header,
    pull_packet,
    push_cookie_reply,
    push_initiation,
    push_response,
)
from peerline.wire.spec import PROLOGUE

MAX_PENDING_SESSIONS = 4
"""Per peer, unconfirmed responder sessions kept at once; a fifth wipes the oldest. Repeats of
the last ``RECENT_INITIATIONS`` initiations never take a slot, but distinct older initiations
of the same key, replayed in a burst, can still push out the session the real initiator is
about to confirm (protocol.md §4.9, §7.11)."""

RECENT_INITIATIONS = 16
"""Per peer, the last initiations answered, by ephemeral key. One that arrives again (a network
duplicate or a replay) makes no new session: while the session it made is pending it gets the
same response again, otherwise nothing (``initiations_repeated``)."""

INITIATIONS_PER_ADDRESS_PER_S = 5.0
"""Under load, initiations with a valid cookie are still limited per source address."""


class Handshakes:
    """The node's handshakes: sending initiations, answering them, taking responses and
    cookie replies. Owns the cookie state and the load limits; the peers, datagrams, events and
    counters it changes are the node's."""

    __slots__ = (
        "_config",
        "_cookies",
        "_counters",
        "_events",
        "_expected_initiator",
        "_handshake_tokens",
        "_identity",
        "_out",
        "_peers",
        "_per_address",
        "_rng",
        "_table",
        "_tokens_at",
    )

    def __init__(
        self,
        *,
        identity: Identity,
        config: NodeConfig,
        counters: NodeCounters,
        rng: Rng,
        peers: dict[bytes, Peer],
        table: SessionTable,
        out: list[tuple[bytes, Addr]],
        events: deque[Event],
    ) -> None:
        self._identity = identity
        self._config = config
        self._counters = counters
        self._rng = rng
        self._peers = peers
        self._table = table
        self._out = out
        self._events = events
        self._cookies = CookieChecker(identity.x25519_public, rng)
        self._handshake_tokens = max(1.0, config.handshakes_per_s)
        self._tokens_at = float("-inf")
        self._per_address: OrderedDict[str, tuple[float, float]] = OrderedDict()
        "Source host -> (tokens, updated_at): limits cookie-holding initiators under load."
        self._expected_initiator: bytes | None = None
        "While an introduced initiation is handled: the only key it may be from."

    # -- initiator ---------------------------------------------------------------------------
    def start(self, peer: Peer, now: float) -> None:
        """Begin a new series of attempts (counted as ``handshakes_initiated``)."""
        self._counters.handshakes_initiated += 1
        self.send_initiation(peer, now, retry=False)

    def send_initiation(self, peer: Peer, now: float, *, retry: bool) -> None:
        """Send a fresh initiation (new ephemeral key and index on every attempt)."""
        table = self._table
        old = peer.handshake
        if old is not None:
            table.by_handshake.pop(old.local_index, None)
        if peer.endpoint is None:
            return
        ephemeral_private = self._rng.random_bytes(32)
        # Linked index (§4.7): prove that this phone still holds its current session, so that
        # the new session can carry on that connection's SAS and hash if the responder holds it.
        link = peer.current if peer.current is not None and peer.current.is_usable(now) else None
        ephemeral = x25519_public(ephemeral_private) if link is not None else b""
        index = link.link_tag(b"i", ephemeral) if link is not None else None
        if index is None or table.index_in_use(index):
            index, link = table.new_index(), None
        state = IKHandshake(
            role=Role.INITIATOR,
            static_private=self._identity.x25519_private,
            ephemeral_private=ephemeral_private,
            prologue=PROLOGUE + initiation_header(index),
            remote_static=peer.x25519_public,
        )
        noise = state.write_initiation(self._identity.public_key)
        mac1 = mac(mac1_key(peer.x25519_public), initiation_header(index) + noise)
        if peer.cookie and now - peer.cookie_at < COOKIE_SECRET_LIFETIME - COOKIE_USE_MARGIN:
            mac2 = mac(peer.cookie, initiation_header(index) + noise + mac1)
        else:
            mac2 = bytes(MAC_SIZE)
        attempts = old.attempts + 1 if (old is not None and retry) else 1
        interval = min(
            self._config.handshake_retry_s * 2 ** (attempts - 1), self._config.handshake_retry_max_s
        )
        jitter = 1.0 + 0.2 * self._rng.random()
        peer.handshake = Handshake(
            state=state,
            local_index=index,
            started_at=old.started_at if (old is not None and retry) else now,
            next_retry=now + interval * jitter,
            attempts=attempts,
            mac1=mac1,
            sent_as=table.next_event_number(),
        )
        if link is not None:
            peer.handshake.link_index = link.link_tag(b"r", ephemeral)
            peer.handshake.link_sas = link.connection_sas
            peer.handshake.link_hash = link.connection_hash
        table.by_handshake[index] = peer
        packet = HandshakeInitiation(sender_index=index, noise=noise, mac1=mac1, mac2=mac2)
        peer.handshake.packet = push_initiation(packet)
        self._out.append((peer.handshake.packet, peer.endpoint))

    def abandon(self, peer: Peer) -> None:
        """Forget the handshake in flight, if any: a late response to it is then unknown."""
        if peer.handshake is not None:
            self._table.by_handshake.pop(peer.handshake.local_index, None)
            peer.handshake = None

    def on_response(self, packet: HandshakeResponse, addr: Addr, now: float) -> Peer | None:
        """Complete the handshake in flight that ``packet`` answers: its session is installed,
        the peer's path is ``addr``, and ``HandshakeCompleted`` is queued. Returns the peer, or
        None when the response was dropped (and counted)."""
        c = self._counters
        table = self._table
        peer = table.by_handshake.get(packet.receiver_index)
        if peer is None or peer.handshake is None:
            c.dropped_unknown_session += 1
            return None
        hs = peer.handshake
        try:
            payload = hs.state.read_response(packet.noise)
            if len(payload) != 4:
                raise DecodeError("response payload must be the responder's 4-byte index")
        except (CryptoError, DecodeError):
            c.dropped_handshake += 1  # the handshake is untouched: the real response may follow
            return None
        self.abandon(peer)
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
            session.connection_hash = hs.link_hash
        session.begun, session.made = hs.sent_as, table.next_event_number()
        table.by_index[hs.local_index] = (peer, session)
        peer.heard += 1  # the response is authentic and fresh: the peer is there
        table.install(peer, session)
        c.handshakes_completed += 1
        if peer.endpoint != addr:
            peer.endpoint = addr
            self._events.append(PeerEndpointChanged(peer_key=peer.public_key, addr=addr))
        self._events.append(
            HandshakeCompleted(
                peer_key=peer.public_key,
                initiator=True,
                sas=table.connection_sas(peer),
                addr=addr,
            )
        )
        return peer

    def on_cookie_reply(self, packet: CookieReply, addr: Addr, now: float) -> None:
        """Keep the cookie for the next (timer-driven) attempt's mac2 (§4.5)."""
        c = self._counters
        peer = self._table.by_handshake.get(packet.receiver_index)
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

    # -- responder ---------------------------------------------------------------------------
    def _under_load(self, now: float) -> bool:
        """Token bucket over initiations: True once more than ``handshakes_per_s`` arrive."""
        rate = self._config.handshakes_per_s
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
        if len(self._per_address) > self._config.max_peers:
            self._per_address.popitem(last=False)
        return allowed

    def on_initiation(self, packet: HandshakeInitiation, addr: Addr, now: float) -> None:
        """Answer an initiation (a response, or a cookie reply under load) or drop it."""
        c = self._counters
        table = self._table
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
            static_private=self._identity.x25519_private,
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
        if peer_key == self._identity.public_key or (
            self._expected_initiator is not None and peer_key != self._expected_initiator
        ):
            c.dropped_handshake += 1
            return
        peer = self._peers.get(peer_key)
        if peer is None:
            if len(self._peers) >= self._config.max_peers:
                c.dropped_peer_limit += 1
                return
            assert hs.remote_static is not None
            peer = Peer(public_key=peer_key, x25519_public=hs.remote_static, endpoint=None)
            self._peers[peer_key] = peer
        seen = peer.recent_initiations.get(ephemeral)
        if seen is not None:
            # A duplicate or a replay must not take a pending slot. Its first copy may have come
            # from someone racing the real initiator, so repeat the answer while it can help.
            c.initiations_repeated += 1
            index, begun, response = seen
            entry = table.by_index.get(index)
            if entry is not None and entry[1].begun == begun and not entry[1].confirmed:
                self._out.append((response, addr))  # its session is still pending
            return
        # Linked indices (§4.7): if the initiator proved it holds a session we hold too, prove
        # it back with our index; the new session then continues that connection's SAS.
        link = table.linked_session(peer, packet.sender_index, ephemeral)
        local_index: int | None = None
        if link is not None:
            local_index = link.link_tag(b"r", ephemeral)
            if local_index is not None and table.index_in_use(local_index):
                local_index = None
        if local_index is None:
            link = None
            local_index = table.new_index()
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
            session.connection_hash = link.connection_hash
        session.begun = session.made = table.next_event_number()
        peer.pending.append(session)
        if len(peer.pending) > MAX_PENDING_SESSIONS:
            table.drop(peer.pending.pop(0))
        table.by_index[local_index] = (peer, session)
        response = push_response(HandshakeResponse(receiver_index=packet.sender_index, noise=noise))
        peer.recent_initiations[ephemeral] = (local_index, session.begun, response)
        if len(peer.recent_initiations) > RECENT_INITIATIONS:
            peer.recent_initiations.popitem(last=False)
        self._out.append((response, addr))

    def receive_introduced(self, data: bytes, addr: Addr, *, caller: bytes, now: float) -> bool:
        """Handle an initiation a relay passed along as if from ``addr``, only if it is
        ``caller``'s; returns whether a response or cookie reply went to ``addr``."""
        before = len(self._out)
        try:
            packet = pull_packet(data)
        except DecodeError:
            self._counters.dropped_malformed += 1
            return False
        if not isinstance(packet, HandshakeInitiation):
            self._counters.dropped_malformed += 1
            return False
        self._expected_initiator = caller
        try:
            self.on_initiation(packet, addr, now)
        finally:
            self._expected_initiator = None
        return len(self._out) > before

    def resend_response(self, peer: Peer, addrs: list[Addr]) -> int:
        """Send the response to the peer's latest initiation to ``addrs`` too, while its session
        is pending; returns how many were sent."""
        if not peer.recent_initiations:
            return 0
        index, begun, response = next(reversed(peer.recent_initiations.values()))
        entry = self._table.by_index.get(index)
        if entry is None or entry[1].begun != begun or entry[1].confirmed:
            return 0
        for addr in addrs:
            self._out.append((response, addr))
        return len(addrs)
