"""Media: the adaptive jitter buffer for 20 ms Opus frames (design §8)."""

from .jitter import (
    FRAME_SECONDS,
    FRAME_TICKS,
    SAMPLE_RATE,
    Frame,
    JitterBuffer,
    JitterConfig,
    JitterCounters,
    Missing,
    Playout,
    Silence,
)

__all__ = [
    "FRAME_SECONDS",
    "FRAME_TICKS",
    "SAMPLE_RATE",
    "Frame",
    "JitterBuffer",
    "JitterConfig",
    "JitterCounters",
    "Missing",
    "Playout",
    "Silence",
]
