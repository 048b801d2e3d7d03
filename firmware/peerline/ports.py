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


class AudioEncoder(Protocol):
    """A voice encoder for one call direction (the phone's is Opus, ``peerline.adapters.opus``).

    Must implement: ``encode`` (exactly one frame of 16-bit little-endian mono PCM in, one
    packet out), the read-only ``sample_rate`` (Hz) and ``frame_samples`` (samples per frame:
    20 ms, so 320 at 16 kHz), and the four setters the media layer adapts to measured loss and
    RTT: ``set_bitrate``, ``set_fec``, ``set_packet_loss_percent`` and ``set_dtx``.
    """

    @property
    def sample_rate(self) -> int:
        """Samples per second of the PCM taken by ``encode``."""
        ...

    @property
    def frame_samples(self) -> int:
        """Samples in one frame (20 ms); ``encode`` takes ``2 * frame_samples`` bytes."""
        ...

    def encode(self, pcm: bytes) -> bytes:
        """Encode one frame of 16-bit mono PCM into one packet. Then: send the packet."""
        ...

    def set_bitrate(self, bps: int) -> None:
        """Target bitrate in bits per second."""
        ...

    def set_fec(self, on: bool) -> None:
        """Carry a low-rate copy of each frame in the next packet (in-band FEC)."""
        ...

    def set_packet_loss_percent(self, pct: int) -> None:
        """Expected packet loss, 0..100 %: how much bitrate FEC may take."""
        ...

    def set_dtx(self, on: bool) -> None:
        """Discontinuous transmission: near-empty packets while the input is silent."""
        ...


class AudioDecoder(Protocol):
    """A voice decoder for one call direction (the phone's is Opus, ``peerline.adapters.opus``).

    Must implement: ``decode`` (one packet in, one frame of 16-bit little-endian mono PCM out),
    ``decode_fec`` and ``conceal`` for a lost frame, and the read-only ``sample_rate`` and
    ``frame_samples``. Every call returns exactly ``2 * frame_samples`` bytes.
    """

    @property
    def sample_rate(self) -> int:
        """Samples per second of the PCM handed out."""
        ...

    @property
    def frame_samples(self) -> int:
        """Samples in one frame (20 ms)."""
        ...

    def decode(self, payload: bytes) -> bytes:
        """Decode one packet into one frame of PCM. Then: play it."""
        ...

    def decode_fec(self, next_payload: bytes) -> bytes:
        """Rebuild the lost frame from the in-band FEC in the packet after it.

        Then: ``decode(next_payload)`` for the frame that packet itself carries.
        """
        ...

    def conceal(self) -> bytes:
        """Packet-loss concealment: a plausible frame for one lost without a successor."""
        ...
