"""Asking the home router to forward our UDP port by NAT-PMP (RFC 6886), sans-I/O.

A port-restricted or symmetric NAT lets nobody in until we have sent to them; a mapping the
router made on request (a "port-mapped candidate", design §7) lets any peer in, so a phone
behind such a router can be called directly. Used when present: a router that never answers
costs a few small datagrams and ends in ``MappingFailed('timeout')``.

What the client does (docs/nat.md, "Port mapping (NAT-PMP)"):

- it asks for the external address (opcode 0) and a UDP mapping of ``internal_port``
  (opcode 1) at once, each retransmitted from 250 ms, doubling, ``attempts`` times
  (RFC 6886 §3.1: 9, so silence is a failure after 127.75 s);
- it renews at half the granted lifetime (§3.3), retransmitting until the mapping would
  expire; an expired mapping is reported lost and asked for once more from scratch;
- it checks the gateway's epoch on every response (§3.6): a clock that went back means the
  router rebooted and forgot us, so the mapping is reported lost and asked for again after a
  random 0-5 s (§3.7, so a whole LAN does not ask at once);
- it accepts datagrams only from the gateway's address and port (NAT-PMP has no transaction
  ids; anything else is dropped and counted);
- ``release`` sends the lifetime-0 delete (§3.4), retransmitted ``release_attempts`` times,
  so a phone that exits leaves no hole in its router.
"""

import ipaddress
from collections import deque
from dataclasses import asdict, dataclass
from enum import Enum

from peerline.errors import DecodeError, LocalProtocolError
from peerline.ports import Rng
from peerline.types import Addr
from peerline.wire.natpmp import (
    RECOMMENDED_LIFETIME,
    ErrorResponse,
    ExternalAddressRequest,
    ExternalAddressResponse,
    MapRequest,
    MapResponse,
    Opcode,
    ResultCode,
    decode_response,
    encode_request,
    result_name,
)

RTO_S = 0.25
"""First retransmission timeout (RFC 6886 §3.1); it doubles on every retry."""
ATTEMPTS = 9
"""Requests sent before giving up (RFC 6886 §3.1)."""
RELEASE_ATTEMPTS = 3
"""Deletes sent at exit: 0, 0.25 and 0.75 s, then the phone stops waiting (1.75 s)."""
RESET_JITTER_S = 5.0
"""After a gateway reboot, wait uniformly 0..this before asking again (RFC 6886 §3.7)."""
MIN_RENEW_S = 1.0
"""Never renew more often than this, whatever lifetime a gateway grants."""
EPOCH_SLACK_S = 2
"""A gateway epoch this far below our estimate means it lost its state (RFC 6886 §3.6)."""


class PortMapState(Enum):
    IDLE = "idle"
    "Not started."
    ACQUIRING = "acquiring"
    "Asking for a mapping (first time, after expiry, or after a gateway reboot)."
    MAPPED = "mapped"
    "Holding a mapping; renewing it at half its lifetime."
    RELEASING = "releasing"
    "Deleting the mapping (``release``)."
    RELEASED = "released"
    FAILED = "failed"
    "No mapping: the gateway refused, or never answered. ``start`` may try again."


class PortMapTrigger(Enum):
    """What moves the mapper: the second key of ``TRANSITIONS``."""

    START = "start"
    "Ask for the address and the mapping from scratch (also after expiry, or a reset wait)."
    GRANTED = "granted"
    "Both the address and the mapping are known."
    REFUSED = "refused"
    "The gateway said no (or nonsense), or never answered."
    GATEWAY_RESET = "gateway_reset"
    "The gateway's epoch went back: it lost its state; ask again after a short wait."
    RELEASE = "release"
    "Delete the mapping at exit (the gateway may hold one)."
    NOTHING_HELD = "nothing_held"
    "Release with nothing to delete (never asked, or the gateway never answered)."
    DELETED = "deleted"
    "The delete was answered, or went unanswered to the end."


TRANSITIONS: dict[tuple[PortMapState, PortMapTrigger], PortMapState] = {
    (PortMapState.IDLE, PortMapTrigger.START): PortMapState.ACQUIRING,
    (PortMapState.FAILED, PortMapTrigger.START): PortMapState.ACQUIRING,
    (PortMapState.RELEASED, PortMapTrigger.START): PortMapState.ACQUIRING,
    (PortMapState.ACQUIRING, PortMapTrigger.START): PortMapState.ACQUIRING,
    (PortMapState.MAPPED, PortMapTrigger.START): PortMapState.ACQUIRING,
    (PortMapState.ACQUIRING, PortMapTrigger.GRANTED): PortMapState.MAPPED,
    (PortMapState.ACQUIRING, PortMapTrigger.REFUSED): PortMapState.FAILED,
    (PortMapState.MAPPED, PortMapTrigger.REFUSED): PortMapState.FAILED,
    (PortMapState.ACQUIRING, PortMapTrigger.GATEWAY_RESET): PortMapState.ACQUIRING,
    (PortMapState.MAPPED, PortMapTrigger.GATEWAY_RESET): PortMapState.ACQUIRING,
    (PortMapState.IDLE, PortMapTrigger.NOTHING_HELD): PortMapState.RELEASED,
    (PortMapState.ACQUIRING, PortMapTrigger.NOTHING_HELD): PortMapState.RELEASED,
    (PortMapState.FAILED, PortMapTrigger.NOTHING_HELD): PortMapState.RELEASED,
    (PortMapState.ACQUIRING, PortMapTrigger.RELEASE): PortMapState.RELEASING,
    (PortMapState.MAPPED, PortMapTrigger.RELEASE): PortMapState.RELEASING,
    (PortMapState.FAILED, PortMapTrigger.RELEASE): PortMapState.RELEASING,
    (PortMapState.RELEASING, PortMapTrigger.DELETED): PortMapState.RELEASED,
}
"""(state, trigger) -> the next state (protocol.md §9.17, nat.md §8). A mapping that expires
unrenewed, or that the gateway reset, is reported lost and asked for again (START)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MappingAcquired:
    external: Addr
    "Where peers outside reach our ``internal_port``: a port-mapped candidate to publish."
    lifetime: int
    "Seconds the gateway granted; the client renews on its own."
    internal_port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MappingFailed:
    reason: str
    "'timeout', a result code name ('not-authorized', 'network-failure', ...) or what was wrong."


@dataclass(frozen=True, slots=True, kw_only=True)
class MappingLost:
    reason: str
    "'expired', 'gateway-reset', or a result code name from a refused renewal."


@dataclass(frozen=True, slots=True, kw_only=True)
class MappingReleased:
    confirmed: bool
    "True if the gateway acknowledged the delete; False if it never answered."


PortMapEvent = MappingAcquired | MappingFailed | MappingLost | MappingReleased


@dataclass(slots=True)
class PortMapCounters:
    requests_sent: int = 0
    retransmissions: int = 0
    responses: int = 0
    renewals: int = 0
    epoch_resets: int = 0
    dropped_malformed: int = 0
    dropped_wrong_source: int = 0
    "Datagrams not from the gateway's address and port 5351."
    dropped_unsolicited: int = 0
    "Well-formed responses that answer nothing we asked."

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True, eq=False)
class _Txn:
    """One request being retransmitted."""

    data: bytes
    next_at: float
    interval: float
    tries: int
    limit: int | None
    "Sends before giving up; None: until ``deadline``."
    deadline: float | None
    delete: bool = False


def _host(addr: Addr) -> Addr:
    """'::ffff:10.0.0.1' (a dual-stack socket's view of an IPv4 peer) as '10.0.0.1'."""
    if addr[0].startswith("::ffff:"):
        try:
            mapped = ipaddress.IPv6Address(addr[0]).ipv4_mapped
        except ValueError:
            return addr
        if mapped is not None:
            return (str(mapped), addr[1])
    return addr


class PortMapper:
    """One UDP port mapping held on the default gateway by NAT-PMP (see the module doc).

    ``gateway`` is normally ``(default_gateway_ip, NATPMP_PORT)``: requests go there and
    only datagrams from exactly there are accepted. Requests may go out of the phone's own
    socket; then the node hands every datagram from ``gateway`` here (``is_gateway``), before
    its STUN demultiplexing, since NAT-PMP's first byte (0) is also STUN's.

    Then: ``start``; after every call, ``datagrams_to_send``, ``next_event`` until None, and
    re-arm the timer from ``get_timer``. At exit: ``release`` and keep driving until
    ``get_timer()`` is None (at most 1.75 s with the default ``release_attempts``).
    """

    def __init__(
        self,
        gateway: Addr,
        internal_port: int,
        *,
        rng: Rng,
        lifetime: int = RECOMMENDED_LIFETIME,
        suggested_external_port: int = 0,
        rto_s: float = RTO_S,
        attempts: int = ATTEMPTS,
        release_attempts: int = RELEASE_ATTEMPTS,
        reset_jitter_s: float = RESET_JITTER_S,
    ) -> None:
        if ipaddress.ip_address(gateway[0]).version != 4:
            raise ValueError("NAT-PMP gateways are IPv4")
        if not 1 <= internal_port <= 0xFFFF or not 0 <= suggested_external_port <= 0xFFFF:
            raise ValueError("ports must be 1..65535 (suggested external: 0 for any)")
        if not 1 <= lifetime <= 0xFFFFFFFF:
            raise ValueError("lifetime must be 1 s or more (0 is a delete: use release)")
        if attempts < 1 or release_attempts < 1 or rto_s <= 0 or reset_jitter_s < 0:
            raise ValueError("attempts must be >= 1, rto_s > 0 and reset_jitter_s >= 0")
        self.gateway = gateway
        self.internal_port = internal_port
        self.lifetime = lifetime
        self.rto_s = rto_s
        self.attempts = attempts
        self.release_attempts = release_attempts
        self.reset_jitter_s = reset_jitter_s
        self._rng = rng
        self._suggested = suggested_external_port
        self.state = PortMapState.IDLE
        self._ext_ip: str | None = None
        self._ext_port: int | None = None
        self._granted = 0
        self._announced: Addr | None = None
        self._addr_txn: _Txn | None = None
        self._map_txn: _Txn | None = None
        self._renew_at: float | None = None
        self._expires_at: float | None = None
        self._restart_at: float | None = None
        self._epoch: tuple[int, float] | None = None
        self._may_hold = False  # a map request went out: the gateway may hold a mapping
        self._out: list[tuple[bytes, Addr]] = []
        self._events: deque[PortMapEvent] = deque()
        self.counters = PortMapCounters()

    # -- API ------------------------------------------------------------------------------

    @property
    def external(self) -> Addr | None:
        """The mapped external address while ``state`` is MAPPED, else None."""
        if self.state is PortMapState.MAPPED:
            return self._announced
        return None

    def is_gateway(self, addr: Addr) -> bool:
        """Whether a datagram from ``addr`` is for this mapper (the node's demultiplexing)."""
        return _host(addr) == self.gateway

    def start(self, *, now: float) -> None:
        """Ask for the mapping. Then: datagrams_to_send, get_timer."""
        if self.state in (PortMapState.ACQUIRING, PortMapState.MAPPED, PortMapState.RELEASING):
            raise LocalProtocolError(f"port mapper is {self.state.value}")
        self._begin(now)

    def release(self, *, now: float) -> None:
        """Delete the mapping (lifetime 0) if the gateway may hold one; at exit.

        Emits ``MappingReleased`` once the gateway answers or ``release_attempts`` went
        unanswered; with nothing to delete (never asked, or the gateway never answered at
        all), the state is RELEASED at once and nothing is sent.
        Then: datagrams_to_send, get_timer (None once done).
        """
        if self.state in (PortMapState.RELEASING, PortMapState.RELEASED):
            return
        self._clear()
        if not self._may_hold or self._epoch is None:
            # Nothing asked, or a gateway that never answered anything: no NAT-PMP there
            # (the common case), so no mapping to delete and no reason to delay the exit.
            self._move(PortMapTrigger.NOTHING_HELD)
            return
        self._move(PortMapTrigger.RELEASE)
        request = MapRequest(internal_port=self.internal_port, external_port=0, lifetime=0)
        self._map_txn = self._send(request, now, limit=self.release_attempts, deadline=None)
        self._map_txn.delete = True

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        """Take one datagram from ``addr``. Never raises: anything unusable is dropped and
        counted. Then: datagrams_to_send, next_event, get_timer."""
        if _host(addr) != self.gateway:
            self.counters.dropped_wrong_source += 1
            return
        try:
            msg = decode_response(data)
        except DecodeError:
            self.counters.dropped_malformed += 1
            return
        if self._epoch_reset(msg.epoch, now):
            return
        if isinstance(msg, ExternalAddressResponse):
            self._on_address(msg.result, msg.address)
        elif isinstance(msg, ErrorResponse) and msg.opcode == Opcode.EXTERNAL_ADDRESS:
            self._on_address(msg.result, None)
        elif msg.opcode != Opcode.MAP_UDP:
            self.counters.dropped_unsolicited += 1  # TCP: never asked for
        elif isinstance(msg, ErrorResponse):
            self._on_map(None, msg.result, now)
        elif msg.internal_port != self.internal_port:
            self.counters.dropped_unsolicited += 1
        else:
            self._on_map(msg, msg.result, now)

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        """Everything due, each to the gateway. Then: get_timer."""
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must run next (retransmission, renewal, expiry, restart)."""
        deadlines = [t.next_at for t in (self._addr_txn, self._map_txn) if t is not None]
        if self._restart_at is not None:
            deadlines.append(self._restart_at)
        if self.state is PortMapState.MAPPED:
            deadlines += [t for t in (self._expires_at, self._renew_at) if t is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, *, now: float) -> None:
        """Retransmit, renew, expire or restart, whatever is due. Then: datagrams_to_send."""
        if self._restart_at is not None and now >= self._restart_at:
            self._restart_at = None
            self._begin(now)
        if (
            self.state is PortMapState.MAPPED
            and self._expires_at is not None
            and now >= self._expires_at
        ):
            self._lose("expired")
            self._begin(now)
        for txn in (self._addr_txn, self._map_txn):
            live = txn is self._addr_txn or txn is self._map_txn  # not ended by the other
            if txn is not None and live and now >= txn.next_at:
                self._retransmit(txn, now)
        renew_at = self._renew_at
        if self.state is PortMapState.MAPPED and renew_at is not None and now >= renew_at:
            self._renew(now)

    def next_event(self) -> PortMapEvent | None:
        """The oldest event not yet handed out, or None. Then: call again until None."""
        return self._events.popleft() if self._events else None

    def status(self, *, now: float) -> dict[str, object]:
        """For ``status --json``: state, mapping, seconds to expiry, counters."""
        external = self.external
        expires = self._expires_at if external is not None else None
        return {
            "state": self.state.value,
            "gateway": list(self.gateway),
            "internal_port": self.internal_port,
            "external": list(external) if external is not None else None,
            "lifetime_s": self._granted if external is not None else None,
            "expires_in_s": round(expires - now, 1) if expires is not None else None,
            "counters": self.counters.as_dict(),
        }

    # -- internals ------------------------------------------------------------------------

    def _move(self, trigger: PortMapTrigger) -> None:
        """Change state as ``TRANSITIONS`` says; anything else is a bug here."""
        try:
            self.state = TRANSITIONS[(self.state, trigger)]
        except KeyError:
            raise LocalProtocolError(
                f"port mapper may not {trigger.value} when {self.state.value}"
            ) from None

    def _begin(self, now: float) -> None:
        """Ask for the address and the mapping from scratch."""
        self._clear()
        self._move(PortMapTrigger.START)
        self._addr_txn = self._send(ExternalAddressRequest(), now, limit=self.attempts)
        self._map_txn = self._send(self._map_request(), now, limit=self.attempts)

    def _map_request(self) -> MapRequest:
        self._may_hold = True
        return MapRequest(
            internal_port=self.internal_port,
            external_port=self._suggested,
            lifetime=self.lifetime,
        )

    def _renew(self, now: float) -> None:
        self._renew_at = None
        self.counters.renewals += 1
        deadline = self._expires_at
        self._map_txn = self._send(self._map_request(), now, limit=None, deadline=deadline)
        self._addr_txn = self._send(ExternalAddressRequest(), now, limit=None, deadline=deadline)

    def _send(
        self,
        msg: ExternalAddressRequest | MapRequest,
        now: float,
        *,
        limit: int | None,
        deadline: float | None = None,
    ) -> _Txn:
        data = encode_request(msg)
        self._out.append((data, self.gateway))
        self.counters.requests_sent += 1
        txn = _Txn(data, now + self.rto_s, self.rto_s, 1, limit, deadline)
        if deadline is not None:
            txn.next_at = min(txn.next_at, deadline)
        return txn

    def _retransmit(self, txn: _Txn, now: float) -> None:
        exhausted = txn.limit is not None and txn.tries >= txn.limit
        if exhausted or (txn.deadline is not None and now >= txn.deadline):
            self._timed_out(txn)
            return
        self._out.append((txn.data, self.gateway))
        self.counters.requests_sent += 1
        self.counters.retransmissions += 1
        txn.tries += 1
        txn.interval *= 2
        txn.next_at = now + txn.interval
        if txn.deadline is not None:
            txn.next_at = min(txn.next_at, txn.deadline)

    def _timed_out(self, txn: _Txn) -> None:
        if txn is self._addr_txn:
            self._addr_txn = None
        if txn is self._map_txn:
            self._map_txn = None
        if self.state is PortMapState.ACQUIRING:
            self._fail("timeout")
        elif self.state is PortMapState.RELEASING:
            self._released(confirmed=False)
        # MAPPED: a renewal that ran to the expiry deadline; handle_timer reports the loss.

    def _epoch_reset(self, epoch: int, now: float) -> bool:
        """RFC 6886 §3.6: True (and the mapping restarted) if the gateway lost its state."""
        previous, self._epoch = self._epoch, (epoch, now)
        if previous is None:
            return False
        expected = previous[0] + (now - previous[1]) * 7 / 8
        if epoch + EPOCH_SLACK_S >= expected:
            return False
        self.counters.epoch_resets += 1
        if self.state is PortMapState.MAPPED:
            self._lose("gateway-reset")
        elif self.state is not PortMapState.ACQUIRING:
            return False  # releasing: the delete is moot, but its answer still counts
        self._clear()
        self._move(PortMapTrigger.GATEWAY_RESET)
        self._restart_at = now + self._rng.random() * self.reset_jitter_s
        return True

    def _on_address(self, result: int, address: str | None) -> None:
        """An address response: asked for, or (while MAPPED) an announcement (§3.2.1)."""
        if self._addr_txn is None and self.state is not PortMapState.MAPPED:
            self.counters.dropped_unsolicited += 1
            return
        self.counters.responses += 1
        self._addr_txn = None
        if result != ResultCode.SUCCESS or address is None:
            self._refused(result_name(result))
        elif ipaddress.IPv4Address(address).is_unspecified:
            self._refused("no-external-address")
        else:
            self._ext_ip = address
            self._progress()

    def _on_map(self, msg: MapResponse | None, result: int, now: float) -> None:
        txn = self._map_txn
        if txn is None:
            self.counters.dropped_unsolicited += 1
            return
        if result == ResultCode.SUCCESS and msg is not None and (msg.lifetime == 0) != txn.delete:
            self.counters.dropped_unsolicited += 1  # a late answer to an earlier request
            return
        self.counters.responses += 1
        self._map_txn = None
        if txn.delete:
            self._released(confirmed=result == ResultCode.SUCCESS)
            return
        if result != ResultCode.SUCCESS or msg is None:
            self._refused(result_name(result))
            return
        if msg.external_port == 0:
            self._refused("no-external-port")
            return
        self._ext_port = self._suggested = msg.external_port  # asked for again on renewal
        self._granted = msg.lifetime
        self._expires_at = now + msg.lifetime
        self._renew_at = now + max(msg.lifetime / 2, MIN_RENEW_S)
        self._progress()

    def _progress(self) -> None:
        """Enter or stay in MAPPED once both halves are known; announce any change."""
        if self._ext_ip is None or self._ext_port is None or self._expires_at is None:
            return
        if self.state is PortMapState.ACQUIRING:
            if self._addr_txn is not None or self._map_txn is not None:
                return
            self._move(PortMapTrigger.GRANTED)
        if self.state is not PortMapState.MAPPED:
            return
        external = (self._ext_ip, self._ext_port)
        if external != self._announced:
            self._announced = external
            self._events.append(
                MappingAcquired(
                    external=external, lifetime=self._granted, internal_port=self.internal_port
                )
            )

    def _refused(self, reason: str) -> None:
        """The gateway said no (or said nonsense): fail, or lose what we held."""
        if self.state is PortMapState.MAPPED:
            self._lose(reason)
            self._clear()
            self._move(PortMapTrigger.REFUSED)
        elif self.state is PortMapState.ACQUIRING:
            self._fail(reason)

    def _fail(self, reason: str) -> None:
        self._clear()
        self._move(PortMapTrigger.REFUSED)
        self._events.append(MappingFailed(reason=reason))

    def _lose(self, reason: str) -> None:
        self._announced = None
        self._events.append(MappingLost(reason=reason))

    def _released(self, *, confirmed: bool) -> None:
        self._clear()
        self._may_hold = False
        self._move(PortMapTrigger.DELETED)
        self._events.append(MappingReleased(confirmed=confirmed))

    def _clear(self) -> None:
        """Forget requests in flight and the mapping's timers (keeps the epoch baseline and
        the suggested external port: the last one granted, asked for again)."""
        self._addr_txn = self._map_txn = None
        self._renew_at = self._expires_at = self._restart_at = None
        self._ext_ip = None
        self._ext_port = None
        self._granted = 0
        self._announced = None
