"""The node's table of sessions: which index names which session, which session of a peer is
current, and in what order sessions replace each other (protocol.md §4.10, §5.5).

A peer holds a current session, the previous one (kept for stragglers until it expires) and up
to ``MAX_PENDING_SESSIONS`` responder sessions waiting for the initiator's confirmation. Every
session is also in ``by_index`` under its local index, and every initiation in flight in
``by_handshake``, so an incoming packet finds its session by the index it names. This module
keeps those maps, the slots and the session order in step; it sends nothing and emits no event.
It is plain code rather than a ``TRANSITIONS`` table (design.md, "Where the code departs").
"""

from peerline.ports import Rng
from peerline.proto.noise.session import Session
from peerline.proto.session.config import NodeConfig
from peerline.proto.session.peer import Peer
from peerline.wire.spec import REJECT_AFTER_TIME


class SessionTable:
    """Session and handshake indices, the per-peer slots, the session order and expiry."""

    __slots__ = ("by_handshake", "by_index", "_config", "_event_number", "_public_key", "_rng")

    def __init__(self, *, public_key: bytes, config: NodeConfig, rng: Rng) -> None:
        self._public_key = public_key
        "This phone's identity key: the initiator key of the sessions it initiated (§4.10)."
        self._config = config
        self._rng = rng
        self.by_index: dict[int, tuple[Peer, Session]] = {}
        "Local index -> the peer and the session it names (current, previous or pending)."
        self.by_handshake: dict[int, Peer] = {}
        "Local index of an initiation in flight -> its peer (for the response or cookie reply)."
        self._event_number = 0
        "Counts handshake events (initiation sent or received, response received): §4.10."

    def next_event_number(self) -> int:
        self._event_number += 1
        return self._event_number

    def install(self, peer: Peer, session: Session) -> None:
        """Make ``session`` current; the old current stays for stragglers until it expires.

        Glare (both phones initiated at once, so their initiations crossed) yields two fresh
        sessions in opposite directions; both phones then keep, as current, the one initiated
        by the smaller key, so they send on the same session and show the same SAS (§4.10).
        """
        cur = peer.current
        if cur is not None and cur is not session and not self._supersedes(peer, session, cur):
            if peer.previous is not None and peer.previous is not cur:
                self.drop(peer.previous)
            peer.previous = session  # usable for receiving; cur stays current
            return
        if peer.previous is not None and peer.previous is not cur:
            self.drop(peer.previous)
        if cur is not session:
            peer.previous = cur
        peer.current = session

    def _supersedes(self, peer: Peer, new: Session, cur: Session) -> bool:
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

    def _initiator_key(self, peer: Peer, session: Session) -> bytes:
        return self._public_key if session.initiator else peer.public_key

    @staticmethod
    def connection_sas(peer: Peer) -> str:
        """What the phone shows for ``peer``: its current session's connection SAS (§2.4)."""
        return peer.current.connection_sas if peer.current is not None else ""

    @staticmethod
    def connection_hash(peer: Peer) -> bytes | None:
        """The current session's connection hash (§2.4, §2.6), or None without one."""
        return peer.current.connection_hash if peer.current is not None else None

    @staticmethod
    def linked_session(peer: Peer, sender_index: int, ephemeral: bytes) -> Session | None:
        """The session held with ``peer`` whose initiator link tag is ``sender_index`` (§4.7)."""
        for s in (peer.current, peer.previous, *peer.pending):
            if s is not None and s.link_tag(b"i", ephemeral) == sender_index:
                return s
        return None

    def drop(self, session: Session) -> None:
        """Forget ``session``: its index no longer names it, and its keys are wiped."""
        self.by_index.pop(session.local_index, None)
        session.wipe()

    def expire(self, peer: Peer, now: float) -> None:
        """Drop ``peer``'s sessions that are no longer usable or whose end has come."""
        for name in ("current", "previous"):
            s: Session | None = getattr(peer, name)
            if s is not None and (not s.is_usable(now) or now >= self.session_end(s)):
                self.drop(s)
                setattr(peer, name, None)
        for s in list(peer.pending):
            if not s.is_usable(now) or now >= self.session_end(s):
                self.drop(s)
                peer.pending.remove(s)

    def session_end(self, s: Session) -> float:
        """When ``s`` is dropped: ``REJECT_AFTER_TIME`` after it was made once confirmed, and
        ``confirm_timeout_s`` after it was made while it waits for confirmation (§4.9)."""
        if s.confirmed:
            return s.created_at + REJECT_AFTER_TIME
        return s.created_at + min(self._config.confirm_timeout_s, REJECT_AFTER_TIME)

    def new_index(self) -> int:
        """A random local index that names no session and no handshake in flight."""
        while True:
            index = int.from_bytes(self._rng.random_bytes(4), "big")
            if not self.index_in_use(index):
                return index

    def index_in_use(self, index: int) -> bool:
        return index in self.by_index or index in self.by_handshake
