"""Asking standard STUN servers how they see us (RFC 8489 Binding), sans-I/O.

The phone's one socket sends the requests, so the answers describe the very NAT mapping its
calls use. Retransmissions follow RFC 8489 §6.2.1 (RTO doubling from ``rto_s``) but give up
after ``attempts`` tries: a phone would rather ask another server than wait 39.5 s.
"""

import heapq
import itertools
from collections import deque
from dataclasses import asdict, dataclass

from peerline.errors import DecodeError
from peerline.ports import Rng
from peerline.types import Addr
from peerline.wire.stun import (
    BINDING_ERROR,
    BINDING_SUCCESS,
    TXID_SIZE,
    decode_stun,
    encode_binding_request,
)

MAX_OUTSTANDING = 32
REQUEST_SIZE = 56
"""Requests are padded this far, so a reflector that never answers larger than it was asked
(as Peerline phones do) can still answer with an IPv6 mapping and a fingerprint (52 bytes)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingResult:
    txid: bytes
    server: Addr
    mapped: Addr
    "Our address as the server saw it: the reflexive candidate."
    other: Addr | None
    origin: Addr | None
    responder: Addr
    "Where the answer came from (differs from ``server`` after a CHANGE-REQUEST)."
    rtt_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingFailed:
    txid: bytes
    server: Addr
    reason: str
    "'timeout' or 'error <code>'."


@dataclass(slots=True)
class StunCounters:
    requests_sent: int = 0
    retransmissions: int = 0
    responses: int = 0
    dropped_malformed: int = 0
    dropped_unsolicited: int = 0
    failures: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class _Pending:
    server: Addr
    data: bytes
    first_sent: float
    next_at: float
    interval: float
    tries: int


class StunClient:
    """Binding transactions in flight. ``request`` starts one; results come as events."""

    def __init__(self, rng: Rng, *, rto_s: float = 0.5, attempts: int = 4) -> None:
        self._rng = rng
        self.rto_s = rto_s
        self.attempts = attempts
        self._pending: dict[bytes, _Pending] = {}
        self._timers: list[tuple[float, int, bytes]] = []
        self._seq = itertools.count()
        self._out: list[tuple[bytes, Addr]] = []
        self._events: deque[BindingResult | BindingFailed] = deque()
        self.counters = StunCounters()

    def request(self, server: Addr, *, now: float, change: int = 0) -> bytes:
        """Ask ``server`` for our mapping (``change``: RFC 5780 CHANGE-REQUEST flags)."""
        if len(self._pending) >= MAX_OUTSTANDING:
            raise ValueError("too many STUN requests in flight")
        txid = self._rng.random_bytes(TXID_SIZE)
        data = encode_binding_request(txid, change=change, pad_to=REQUEST_SIZE)
        self._pending[txid] = _Pending(server, data, now, now + self.rto_s, self.rto_s, 1)
        heapq.heappush(self._timers, (now + self.rto_s, next(self._seq), txid))
        self._out.append((data, server))
        self.counters.requests_sent += 1
        return txid

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        try:
            msg = decode_stun(data)
        except DecodeError:
            self.counters.dropped_malformed += 1
            return
        pending = self._pending.get(msg.txid)
        if pending is None or msg.msg_type not in (BINDING_SUCCESS, BINDING_ERROR):
            self.counters.dropped_unsolicited += 1
            return
        del self._pending[msg.txid]
        self.counters.responses += 1
        if msg.msg_type == BINDING_ERROR or msg.mapped is None or msg.unknown_required:
            self.counters.failures += 1
            reason = f"error {msg.error_code}" if msg.error_code else "unusable response"
            self._events.append(BindingFailed(txid=msg.txid, server=pending.server, reason=reason))
            return
        self._events.append(
            BindingResult(
                txid=msg.txid,
                server=pending.server,
                mapped=msg.mapped,
                other=msg.other,
                origin=msg.origin,
                responder=addr,
                rtt_s=now - pending.first_sent,
            )
        )

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        while self._timers and self._timers[0][2] not in self._pending:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def handle_timer(self, *, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, txid = heapq.heappop(self._timers)
            pending = self._pending.get(txid)
            if pending is None or pending.next_at > now:
                continue
            if pending.tries >= self.attempts:
                del self._pending[txid]
                self.counters.failures += 1
                self._events.append(
                    BindingFailed(txid=txid, server=pending.server, reason="timeout")
                )
                continue
            pending.tries += 1
            pending.interval *= 2
            pending.next_at = now + pending.interval
            heapq.heappush(self._timers, (pending.next_at, next(self._seq), txid))
            self._out.append((pending.data, pending.server))
            self.counters.retransmissions += 1

    def next_event(self) -> BindingResult | BindingFailed | None:
        return self._events.popleft() if self._events else None
