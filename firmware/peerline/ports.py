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


class KeyInput(Protocol):
    """A keypad: reports every raw key edge (bouncy, as the contacts make it) with its time.

    Must implement: ``start`` (begin reporting edges to ``on_edge(key, down, at)``: ``key`` is
    the key's label, ``"0"``-``"9"``, ``"*"``, ``"#"``, ``"A"``-``"D"``; ``at`` is
    ``time.monotonic()`` seconds; called from any thread), ``close``. Debounce, long press and
    repeat are not the adapter's job: the UI's pure ``KeyMachine`` does them from these edges.
    """

    def start(self, on_edge: "KeyEdgeCallback") -> None: ...

    def close(self) -> None: ...


class HookInput(Protocol):
    """A hook switch: reports every raw edge of the handset leaving or returning to its cradle.

    Must implement: ``start`` (report ``on_edge(off_hook, at)`` from any thread, and once at
    start with the current position), ``close``. Debounce and flash detection are the UI's
    (``HookMachine``).
    """

    def start(self, on_edge: "HookEdgeCallback") -> None: ...

    def close(self) -> None: ...


class Indicators(Protocol):
    """The phone's LEDs, by name (``"ring"``, ``"message"``).

    Must implement: ``set(name, mode)`` with ``mode`` one of ``"off"``, ``"on"``,
    ``"blink"`` (about 1 Hz: ringing) and ``"flash"`` (a short blink every 2 s: something
    waiting); an unknown name is ignored (a pin map may have fewer LEDs). ``close``.
    """

    def set(self, name: str, mode: str) -> None: ...

    def close(self) -> None: ...


class Display(Protocol):
    """A small monochrome screen (a luma.oled device, its dummy, or the emulator's).

    Must implement: ``size`` ((width, height) in pixels), ``show(image)`` (a PIL image of
    ``size``, mode ``"1"``), ``contrast(level)`` (0-255), ``sleep()`` and ``wake()`` (panel
    off and on, keeping the picture), ``close``. Raises ``DisplayError`` when the panel stops
    answering (the phone then runs headless).
    """

    @property
    def size(self) -> tuple[int, int]: ...

    def show(self, image: object) -> None: ...

    def contrast(self, level: int) -> None: ...

    def sleep(self) -> None: ...

    def wake(self) -> None: ...

    def close(self) -> None: ...


class KeyEdgeCallback(Protocol):
    def __call__(self, key: str, down: bool, at: float) -> None: ...


class HookEdgeCallback(Protocol):
    def __call__(self, off_hook: bool, at: float) -> None: ...
