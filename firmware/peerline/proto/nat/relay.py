"""Relaying session packets through a supernode when no direct path opens (protocol.md §11).

Two parts, both sans-I/O:

- ``RelayTable``: the relay's side. A caller opens a channel to one of the relay's NAT clients
  (``Overlay`` checks the caller's MAC and token and that the target is a client); the table
  forwards session packets between the two, swapping channel numbers, under per-channel rate
  limits and a cap on channels. It never sees a key: what it forwards is ciphertext.
- Relayed paths as addresses: a session whose path runs through relay ``R`` on channel ``c``
  has the endpoint ``relayed_addr(R, c)``. The session node treats it as any other address
  (authenticated packets from it move the path, probes validate it); the engine wraps and
  unwraps at the socket. So every path rule (mobility, probing, upgrade) holds for relays too.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass

from peerline.errors import DecodeError
from peerline.ports import Rng
from peerline.types import Addr
from peerline.wire.overlay import RelayStatus
from peerline.wire.relay import pull_relayed, push_relayed

RELAYED_PREFIX = "relay:"


def relayed_addr(relay: Addr, channel: int) -> Addr:
    """The endpoint of a path through ``relay`` on ``channel`` (this phone's channel number)."""
    return (f"{RELAYED_PREFIX}{channel:08x}@{relay[0]}", relay[1])


def relay_of(addr: Addr) -> tuple[Addr, int] | None:
    """(relay address, channel) of a relayed endpoint; None for a direct one."""
    host = addr[0]
    if not host.startswith(RELAYED_PREFIX):
        return None
    channel, _, relay_host = host[len(RELAYED_PREFIX) :].partition("@")
    return (relay_host, addr[1]), int(channel, 16)


def is_relayed(addr: Addr) -> bool:
    return addr[0].startswith(RELAYED_PREFIX)


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayConfig:
    """A supernode's relay quotas (not wire-visible)."""

    max_channels: int = 64
    "Channels carried at once; beyond this, RELAY_OPEN gets FULL."
    max_channels_per_caller: int = 4
    idle_s: float = 60.0
    "A channel with no packet either way for this long is closed (sessions keep alive at 15 s)."
    packets_per_s: float = 100.0
    "Per channel and direction: 50/s is a 20 ms voice call; the rest is headroom for bursts."
    bytes_per_s: float = 24_000.0
    "Per channel and direction: a 64 kbit/s call with headers is about 10 kB/s."

    def __post_init__(self) -> None:
        if self.max_channels < 0 or self.max_channels_per_caller < 1 or self.idle_s <= 0:
            raise ValueError("max_channels >= 0, max_channels_per_caller >= 1, idle_s > 0")


@dataclass(slots=True)
class RelayCounters:
    channels_opened: int = 0
    channels_refused: int = 0
    "RELAY_OPEN answered FULL (quota)."
    channels_expired: int = 0
    packets_forwarded: int = 0
    bytes_forwarded: int = 0
    dropped_malformed: int = 0
    dropped_unknown_channel: int = 0
    dropped_wrong_source: int = 0
    "A known channel number from an address that is not that channel's side: spoofed or stale."
    dropped_rate_limited: int = 0
    dropped_no_client: int = 0
    "The target stopped pinging this relay: no path to it any more."

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True, eq=False)
class _Bucket:
    packets: float
    octets: float
    at: float


@dataclass(slots=True, eq=False)
class _Channel:
    caller: bytes
    target: bytes
    caller_addr: Addr
    caller_channel: int
    "The number the caller sends under (and receives under)."
    target_channel: int
    "The number the target sends under (and receives under)."
    last_used: float
    from_caller: _Bucket
    from_target: _Bucket


class RelayTable:
    """The relay's channels. ``client_addr(key, now)`` says where a client is now (from its
    validated pings), so a target that moves behind its NAT is still reached."""

    def __init__(
        self,
        *,
        rng: Rng,
        client_addr: Callable[[bytes, float], Addr | None],
        config: RelayConfig | None = None,
    ) -> None:
        self.config = config or RelayConfig()
        self.counters = RelayCounters()
        self._rng = rng
        self._client_addr = client_addr
        self._by_number: dict[int, _Channel] = {}
        self._by_pair: dict[tuple[bytes, bytes], _Channel] = {}

    def __len__(self) -> int:
        return len(self._by_pair)

    def open(
        self, caller: bytes, caller_addr: Addr, target: bytes, now: float
    ) -> tuple[RelayStatus, int]:
        """Open (or refresh) the caller's channel to ``target``, a client already checked by
        the overlay. Returns the status and the caller's channel number. Opening again from a
        new address moves the caller's side there (the caller's NAT rebound)."""
        self.expire(now)
        existing = self._by_pair.get((caller, target))
        if existing is not None:
            existing.caller_addr = caller_addr
            existing.last_used = now
            return RelayStatus.OPENED, existing.caller_channel
        per_caller = sum(1 for c in self._by_pair.values() if c.caller == caller)
        if (
            len(self._by_pair) >= self.config.max_channels
            or per_caller >= self.config.max_channels_per_caller
        ):
            self.counters.channels_refused += 1
            return RelayStatus.FULL, 0
        channel = _Channel(
            caller=caller,
            target=target,
            caller_addr=caller_addr,
            caller_channel=self._new_number(),
            target_channel=0,
            last_used=now,
            from_caller=self._bucket(now),
            from_target=self._bucket(now),
        )
        self._by_number[channel.caller_channel] = channel
        channel.target_channel = self._new_number()
        self._by_number[channel.target_channel] = channel
        self._by_pair[(caller, target)] = channel
        self.counters.channels_opened += 1
        return RelayStatus.OPENED, channel.caller_channel

    def forward(self, data: bytes, addr: Addr, now: float) -> tuple[bytes, Addr] | None:
        """The datagram to send on for a relayed datagram from ``addr``, or None (counted)."""
        c = self.counters
        try:
            number, inner = pull_relayed(data)
        except DecodeError:
            c.dropped_malformed += 1
            return None
        channel = self._by_number.get(number)
        if channel is None or now - channel.last_used >= self.config.idle_s:
            c.dropped_unknown_channel += 1
            return None
        if number == channel.caller_channel:
            if addr != channel.caller_addr:
                c.dropped_wrong_source += 1
                return None
            to = self._client_addr(channel.target, now)
            if to is None:
                c.dropped_no_client += 1
                return None
            bucket, out_number = channel.from_caller, channel.target_channel
        else:
            if addr != self._client_addr(channel.target, now):
                c.dropped_wrong_source += 1
                return None
            bucket, out_number = channel.from_target, channel.caller_channel
            to = channel.caller_addr
        if not self._take(bucket, len(data), now):
            c.dropped_rate_limited += 1
            return None
        channel.last_used = now
        c.packets_forwarded += 1
        c.bytes_forwarded += len(data)
        return push_relayed(out_number, inner), to

    def expire(self, now: float) -> None:
        """Close idle channels (cheap: called on every open; the table is small)."""
        for pair, channel in list(self._by_pair.items()):
            if now - channel.last_used >= self.config.idle_s:
                del self._by_pair[pair]
                self._by_number.pop(channel.caller_channel, None)
                self._by_number.pop(channel.target_channel, None)
                self.counters.channels_expired += 1

    def _new_number(self) -> int:
        while True:
            number = int.from_bytes(self._rng.random_bytes(4), "big")
            if number and number not in self._by_number:
                return number

    def _bucket(self, now: float) -> _Bucket:
        return _Bucket(self.config.packets_per_s, self.config.bytes_per_s, now)

    def _take(self, bucket: _Bucket, size: int, now: float) -> bool:
        cfg = self.config
        elapsed = max(0.0, now - bucket.at)
        bucket.packets = min(cfg.packets_per_s, bucket.packets + elapsed * cfg.packets_per_s)
        bucket.octets = min(cfg.bytes_per_s, bucket.octets + elapsed * cfg.bytes_per_s)
        bucket.at = now
        if bucket.packets < 1.0 or bucket.octets < size:
            return False
        bucket.packets -= 1.0
        bucket.octets -= size
        return True
