"""The virtual network: per-link latency, jitter, loss, reordering, duplication, MTU, partitions.

The network decides the fate of each datagram when it is sent (dropped, or delivered at one or
two arrival times); the simulator turns arrival times into heap events. All randomness comes from
the ``random.Random`` the simulator passes in, so a run replays exactly for a seed. Hosts are the
IP strings of ``Addr``: links and partitions are between hosts, not ports, as on a real network.
"""

import math
import random
from dataclasses import asdict, dataclass
from enum import StrEnum

from peerline.types import Addr

DEFAULT_MTU = 1500 - 28
"""Largest UDP payload on an Ethernet path: 1500 minus the IPv4 (20) and UDP (8) headers."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkProfile:
    """How one direction of a link treats datagrams. Immutable, so profiles can be shared.

    Arrival time is ``send + latency_s + U(0, jitter_s)``, plus ``U(0, reorder_delay_s)`` for
    the ``reorder`` fraction of datagrams (so later datagrams overtake them). Latency is one-way.
    """

    latency_s: float = 0.02
    "One-way propagation delay in seconds: the earliest a datagram can arrive."
    jitter_s: float = 0.0
    "Extra delay drawn uniformly from [0, jitter_s] for every datagram (and every copy)."
    loss: float = 0.0
    "Probability in [0, 1] that a datagram is dropped."
    reorder: float = 0.0
    "Probability in [0, 1] that a datagram is held back by an extra random delay."
    reorder_delay_s: float = 0.05
    "Upper bound of that extra delay in seconds; must exceed the send gap to cause overtaking."
    duplicate: float = 0.0
    "Probability in [0, 1] that a delivered datagram arrives twice (each copy jittered alone)."
    mtu: int = DEFAULT_MTU
    "Datagrams longer than this many bytes are dropped, as an IP path without fragmentation does."

    def __post_init__(self) -> None:
        """Reject nonsense at construction so an invalid profile cannot exist."""
        for name in ("latency_s", "jitter_s", "reorder_delay_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"LinkProfile.{name} must be a finite number >= 0, not {value!r}")
        for name in ("loss", "reorder", "duplicate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"LinkProfile.{name} is a probability in [0, 1], not {value!r}")
        if self.mtu < 1:
            raise ValueError(f"LinkProfile.mtu must be >= 1, not {self.mtu!r}")


class Outcome(StrEnum):
    """What the network did with one datagram; the value is the word used in traces."""

    DELIVER = "deliver"
    DUPLICATE = "dup"
    LOSS = "drop-loss"
    PARTITION = "drop-partition"
    MTU = "drop-mtu"


@dataclass(slots=True)
class NetworkStats:
    """Running counters, per reason, so scenario tests can assert on what the network did.

    ``sent``/``bytes_sent`` count datagrams offered by nodes; ``delivered``/``bytes_delivered``
    and ``dropped_no_node`` are filled in by the simulator when a copy reaches its address.
    """

    sent: int = 0
    bytes_sent: int = 0
    delivered: int = 0
    bytes_delivered: int = 0
    dropped_loss: int = 0
    dropped_partition: int = 0
    dropped_mtu: int = 0
    dropped_no_node: int = 0
    dropped_nat: int = 0
    "Arrived at a NAT's public address with no mapping, or from a source its filter refuses."
    duplicated: int = 0

    def as_dict(self) -> dict[str, int]:
        """A plain dict, e.g. for a benchmark's JSON output."""
        return asdict(self)


class Network:
    """A default ``LinkProfile`` plus per-host-pair overrides and partitions.

    Example::

        net = Network(LinkProfile(latency_s=0.03, loss=0.01))
        net.set_link("10.0.0.1", "10.0.0.2", LinkProfile(latency_s=0.2))
        net.partition({"10.0.0.1"}, {"10.0.0.3"})
        ...
        net.heal()
    """

    def __init__(self, default: LinkProfile | None = None) -> None:
        self.default = default if default is not None else LinkProfile()
        self.stats = NetworkStats()
        self._links: dict[tuple[str, str], LinkProfile] = {}
        self._partitions: list[tuple[frozenset[str], frozenset[str]]] = []
        self._access: dict[str, float] = {}

    def set_access_delay(self, host: str, delay_s: float) -> None:
        """Add ``delay_s`` to every datagram from or to ``host``: its access link (DSL, Wi-Fi).

        With a delay per host, thousands of hosts get varied pairwise round-trip times
        (``2 * (a + b)`` plus the profile's latency) without a profile per pair.
        """
        if not (math.isfinite(delay_s) and delay_s >= 0):
            raise ValueError(f"access delay must be a finite number >= 0, not {delay_s!r}")
        if delay_s:
            self._access[host] = delay_s
        else:
            self._access.pop(host, None)

    def set_link(
        self, a_host: str, b_host: str, profile: LinkProfile, *, symmetric: bool = True
    ) -> None:
        """Use ``profile`` from ``a_host`` to ``b_host`` (and back, unless ``symmetric=False``)."""
        self._links[(a_host, b_host)] = profile
        if symmetric:
            self._links[(b_host, a_host)] = profile

    def clear_link(self, a_host: str, b_host: str, *, symmetric: bool = True) -> None:
        """Fall back to the default profile for this pair."""
        self._links.pop((a_host, b_host), None)
        if symmetric:
            self._links.pop((b_host, a_host), None)

    def link(self, src_host: str, dst_host: str) -> LinkProfile:
        """The profile a datagram from ``src_host`` to ``dst_host`` sees."""
        return self._links.get((src_host, dst_host), self.default)

    def partition(
        self, group_a: set[str] | frozenset[str], group_b: set[str] | frozenset[str]
    ) -> None:
        """Drop every datagram between a host in ``group_a`` and one in ``group_b`` (both ways).

        Partitions add up until ``heal``. Datagrams already in flight still arrive, as they would
        on a real network whose route just went away behind them.
        """
        if group_a & group_b:
            raise ValueError(f"a host cannot be on both sides of a partition: {group_a & group_b}")
        self._partitions.append((frozenset(group_a), frozenset(group_b)))

    def heal(self) -> None:
        """Remove every partition."""
        self._partitions.clear()

    def is_partitioned(self, src_host: str, dst_host: str) -> bool:
        """True if an active partition separates the two hosts."""
        for side_a, side_b in self._partitions:
            if (src_host in side_a and dst_host in side_b) or (
                src_host in side_b and dst_host in side_a
            ):
                return True
        return False

    def transmit(
        self, src: Addr, dst: Addr, data: bytes, now: float, rng: random.Random
    ) -> tuple[Outcome, tuple[float, ...]]:
        """Decide one datagram's fate: the outcome and its arrival times (empty when dropped).

        Updates ``stats``. Arrival times are always >= ``now``. The order of checks is MTU,
        partition, loss, then duplication, and the number of ``rng`` draws depends only on the
        profile and those outcomes, so runs replay exactly.
        """
        stats = self.stats
        size = len(data)
        stats.sent += 1
        stats.bytes_sent += size
        src_host = src[0]
        dst_host = dst[0]
        profile = (
            self._links.get((src_host, dst_host), self.default) if self._links else self.default
        )
        if size > profile.mtu:
            stats.dropped_mtu += 1
            return Outcome.MTU, ()
        if self._partitions and self.is_partitioned(src_host, dst_host):
            stats.dropped_partition += 1
            return Outcome.PARTITION, ()
        if profile.loss and rng.random() < profile.loss:
            stats.dropped_loss += 1
            return Outcome.LOSS, ()
        if self._access:
            now += self._access.get(src_host, 0.0) + self._access.get(dst_host, 0.0)
        first = now + _delay(profile, rng)
        if profile.duplicate and rng.random() < profile.duplicate:
            stats.duplicated += 1
            return Outcome.DUPLICATE, (first, now + _delay(profile, rng))
        return Outcome.DELIVER, (first,)

    def deliveries(
        self, src: Addr, dst: Addr, data: bytes, now: float, rng: random.Random
    ) -> list[float]:
        """Arrival times for one datagram (empty if dropped); ``transmit`` without the outcome."""
        return list(self.transmit(src, dst, data, now, rng)[1])


def _delay(profile: LinkProfile, rng: random.Random) -> float:
    """One copy's one-way delay: latency, jitter, and sometimes a reordering hold-back."""
    delay = profile.latency_s
    if profile.jitter_s:
        delay += rng.random() * profile.jitter_s
    if profile.reorder and rng.random() < profile.reorder:
        delay += rng.random() * profile.reorder_delay_s
    return delay
