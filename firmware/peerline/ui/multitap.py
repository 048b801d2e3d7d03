"""Typing text on a 12-key keypad: multi-tap (ITU-T E.161 letters on the digit keys).

Press 2 once for a, twice for b, three times for c; a pause of ``commit_s`` (1 s), or another
key, fixes the letter. 0 is a space (twice: the digit 0). ``switch_mode`` goes from lower case
to upper case to digits and back; ``insert`` types one character as it is (the handset's long
press types the key's digit). ``MultiTap`` is a pure machine fed with times, for names and
messages on the handset; which key does what is the handset's choice.
"""

from dataclasses import dataclass
from enum import Enum

LETTERS = {
    "1": ".,?!'-@1",
    "2": "abc2",
    "3": "def3",
    "4": "ghi4",
    "5": "jkl5",
    "6": "mno6",
    "7": "pqrs7",
    "8": "tuv8",
    "9": "wxyz9",
    "0": " 0",
}


class Mode(Enum):
    LOWER = "abc"
    UPPER = "ABC"
    DIGITS = "123"


_NEXT_MODE = {Mode.LOWER: Mode.UPPER, Mode.UPPER: Mode.DIGITS, Mode.DIGITS: Mode.LOWER}


@dataclass(slots=True)
class _Pending:
    key: str
    index: int
    commit_at: float


class MultiTap:
    """Text typed so far (``text``) and the letter being chosen (``pending``)."""

    def __init__(self, text: str = "", *, max_len: int = 160, commit_s: float = 1.0) -> None:
        if commit_s <= 0 or max_len < 1:
            raise ValueError("commit_s > 0 and max_len >= 1")
        self.max_len = max_len
        self.commit_s = commit_s
        self.mode = Mode.LOWER
        self._text = text[:max_len]
        self._pending: _Pending | None = None

    @property
    def text(self) -> str:
        """What has been typed, the letter being chosen included."""
        return self._text + (self.pending or "")

    @property
    def pending(self) -> str | None:
        """The letter being chosen (shown underlined), or None."""
        p = self._pending
        return None if p is None else self._char(p.key, p.index)

    def key(self, key: str, *, now: float) -> None:
        """A digit key (``0``-``9``): its next letter, or the digit in digit mode. Then:
        ``get_timer``."""
        if key not in LETTERS:
            return
        if self.mode is Mode.DIGITS:
            self._commit()
            self._append(key)
            return
        p = self._pending
        if p is not None and p.key == key and now < p.commit_at:
            p.index = (p.index + 1) % len(LETTERS[key])
            p.commit_at = now + self.commit_s
            return
        self._commit()
        if len(self._text) < self.max_len:
            self._pending = _Pending(key, 0, now + self.commit_s)

    def switch_mode(self) -> None:
        """abc -> ABC -> 123 -> abc (the letter being chosen is fixed first)."""
        self._commit()
        self.mode = _NEXT_MODE[self.mode]

    def insert(self, char: str) -> None:
        """Type ``char`` as it is (the letter being chosen is fixed first)."""
        self._commit()
        self._append(char)

    def backspace(self) -> None:
        """Drop the letter being chosen, or else the last one typed."""
        if self._pending is not None:
            self._pending = None
        else:
            self._text = self._text[:-1]

    def get_timer(self) -> float | None:
        return None if self._pending is None else self._pending.commit_at

    def handle_timer(self, *, now: float) -> None:
        if self._pending is not None and now >= self._pending.commit_at:
            self._commit()

    def _char(self, key: str, index: int) -> str:
        char = LETTERS[key][index]
        return char.upper() if self.mode is Mode.UPPER else char

    def _commit(self) -> None:
        p, self._pending = self._pending, None
        if p is not None:
            self._append(self._char(p.key, p.index))

    def _append(self, char: str) -> None:
        if len(self._text) < self.max_len:
            self._text += char
