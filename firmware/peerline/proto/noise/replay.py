"""Sliding anti-replay window over 64-bit packet counters (the RFC 6479 idea, one big bitmap).

Voice packets arrive out of order; the window accepts any counter not seen before that is
within ``size`` of the highest one accepted, and rejects everything else.
"""

REPLAY_WINDOW = 4096
"""Counters more than this far behind the highest accepted one are rejected (protocol value)."""


class ReplayWindow:
    """Remembers which of the last ``size`` counters were accepted.

    Call ``check`` before decrypting (cheap rejection) and ``accept`` only after the packet
    authenticated, so forged packets can never move the window.
    """

    __slots__ = ("_bits", "_mask", "_top", "size")

    def __init__(self, size: int = REPLAY_WINDOW) -> None:
        self.size = size
        self._mask = (1 << size) - 1
        self._top = -1  # highest accepted counter; bit i of _bits is counter _top - i
        self._bits = 0

    @property
    def highest(self) -> int:
        return self._top

    def check(self, counter: int) -> bool:
        """True if ``counter`` would be accepted (fresh and not too old)."""
        if counter > self._top:
            return True
        offset = self._top - counter
        if offset >= self.size:
            return False
        return not (self._bits >> offset) & 1

    def accept(self, counter: int) -> bool:
        """Record ``counter``; False (and no change) if it is a replay or too old."""
        if counter > self._top:
            shift = counter - self._top
            self._bits = ((self._bits << shift) | 1) & self._mask if shift < self.size else 1
            self._top = counter
            return True
        offset = self._top - counter
        if offset >= self.size or (self._bits >> offset) & 1:
            return False
        self._bits |= 1 << offset
        return True
