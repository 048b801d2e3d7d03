"""Interfaces the sans-I/O core depends on, implemented by ``peerline.adapters``.

As with gpiozero's pin factories, the core never reaches for the operating system: randomness
comes in through ``Rng`` so that a simulation with a seeded ``Rng`` replays exactly.
"""

from typing import Protocol


class Rng(Protocol):
    """A source of randomness.

    Must implement: ``random_bytes`` (key material and nonces: the production adapter reads the
    OS CSPRNG) and ``random`` (uniform float in [0, 1) for timer jitter and sampling).
    """

    def random_bytes(self, n: int) -> bytes:
        """Return ``n`` random bytes."""
        ...

    def random(self) -> float:
        """Return a uniform float in [0, 1)."""
        ...


class DatagramEndpoint(Protocol):
    """The five calls every sans-I/O protocol object exposes (aioquic's names).

    Both drivers, ``peerline.runtime`` (asyncio, real UDP) and ``peerline.sim`` (virtual clock
    and network), move a protocol object only through these. ``now`` is monotonic seconds.
    """

    def receive_datagram(self, data: bytes, addr: tuple[str, int], *, now: float) -> None:
        """Take one datagram from ``addr``. Never raises on bad bytes. Then: datagrams_to_send."""
        ...

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        """Hand out everything due to be sent. Then: get_timer."""
        ...

    def get_timer(self) -> float | None:
        """The next time ``handle_timer`` must be called, or None."""
        ...

    def handle_timer(self, *, now: float) -> None:
        """Run everything due at ``now``. Then: datagrams_to_send."""
        ...
