"""Media, sans-I/O: one call's audio both ways (jitter buffer, sender, receiver reports)
and local tones (design §8)."""

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
