"""What the voice benchmarks and their smoke tests need on this machine, said as a skip reason."""

import importlib.util
from pathlib import Path

SPEECH = Path("/usr/share/sounds/alsa/Front_Center.wav")


def voice_unavailable(*modules: str) -> str | None:
    """Why the real voice path cannot run here (a missing module, libopus or the speech WAVs),
    or None when it can."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (scripts/setup installs the dev requirements)"
    try:
        from peerline.adapters.opus import OpusEncoder

        OpusEncoder()
    except ImportError as exc:  # OpusUnavailable: no system libopus
        return f"Opus unavailable: {exc}"
    if not SPEECH.exists():
        return f"{SPEECH.parent}/*.wav missing (Debian package alsa-utils)"
    return None
