"""The conference mix: what each leg of a hosted conference hears, and what the host hears.

A phone that hosts a conference decodes every leg's 20 ms frame, then sends each leg the host's
microphone plus every *other* leg (never a leg's own voice back: that would be an echo a
round trip late), and plays the sum of all legs on its own speaker. Each leg is then encoded
by its own ``MediaSession`` and sealed with its own session keys: no leg can read another's
packets, and a leg that drops takes only its own frame out of the sums.

One pass: the full sum is made once, and each leg's mix is that sum minus the leg itself, so the
cost grows with the number of legs, not its square. Sums saturate at PCM16's limits.
"""

from __future__ import annotations

import sys
from array import array

_LITTLE = sys.byteorder == "little"
_LO, _HI = -32768, 32767


def _samples(frame: bytes) -> array[int]:
    a = array("h", frame)
    if not _LITTLE:
        a.byteswap()
    return a


def _frame(values: list[int]) -> bytes:
    out = array("h", [_LO if v < _LO else (_HI if v > _HI else v) for v in values])
    if not _LITTLE:
        out.byteswap()
    return out.tobytes()


def conference_mix(mic: bytes, legs: list[bytes]) -> tuple[list[bytes], bytes]:
    """PCM16 LE frames of equal length in: the host's microphone and what each leg played out.

    Out: for each leg, in order, the frame to send it (``mic`` + every other leg), and the frame
    for the host's speaker (every leg). With one leg, that leg gets ``mic`` unchanged.
    """
    if any(len(leg) != len(mic) for leg in legs) or len(mic) % 2:
        raise ValueError("conference_mix needs PCM16 frames of equal length")
    if len(legs) <= 1:
        return [mic] * len(legs), (legs[0] if legs else bytes(len(mic)))
    parts = [_samples(leg) for leg in legs]
    heard = [sum(column) for column in zip(*parts, strict=True)]
    total = [h + m for h, m in zip(heard, _samples(mic), strict=True)]
    sends = [_frame([t - s for t, s in zip(total, part, strict=True)]) for part in parts]
    return sends, _frame(heard)
