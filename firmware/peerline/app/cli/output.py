"""How the CLI prints: one formatter for every command, for people and for ``--json``.

A command builds its result as the control API's JSON and one text for people from it; with
``--json`` the JSON goes to stdout as it is, else the text. Progress on anything slower than a
second goes to stderr (rewritten in place on a terminal, a line per step otherwise), so stdout
stays clean for scripts. Addresses are ``HOST:PORT`` or ``[V6]:PORT``, numbers in fours.
"""

import json
import sys
import time
from typing import IO, Any

from peerline.errors import InvalidNumber
from peerline.wire.number_text import format_number


def address(host: str, port: int | str) -> str:
    """``127.0.0.1:4720``, ``[::1]:4720``: the form ``--seed`` and ``peer add`` take back."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def shown(number: object) -> str:
    """A 12-digit number in fours, as the phone's screen shows it; an extension or a speed-dial
    slot as it is; nothing as ``?``."""
    if not number:
        return "?"
    try:
        return format_number(str(number))
    except InvalidNumber:
        return str(number)


def who(item: dict[str, Any]) -> str:
    """The far phone of a call, message or event: its number, else the start of its key."""
    if item.get("number"):
        label = shown(item["number"])
        name = item.get("contact") or ""
        return f"{label} ({name})" if name else label
    key = str(item.get("peer_key") or "")
    return f"key {key[:16]}…" if key else "?"


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def seconds(value: float) -> str:
    """A duration for people: ``45 s``, ``3 min 20 s``, ``2 h 5 min``."""
    total = round(value)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60} s"
    return f"{total // 3600} h {total % 3600 // 60} min"


def when(epoch: float | None) -> str:
    """A wall-clock time for lists (history, messages): local time to the minute."""
    if epoch is None:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


class Output:
    """Where one command's results and progress go."""

    def __init__(
        self, *, json_mode: bool, stdout: IO[str] | None = None, stderr: IO[str] | None = None
    ) -> None:
        self.json_mode = json_mode
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self._live = self.stderr.isatty()
        self._line = ""
        self._step = ""

    def result(self, value: Any, human: str) -> None:
        """The command's result: JSON with ``--json``, else ``human``."""
        self.end_progress()
        text = json.dumps(value, indent=2) if self.json_mode else human
        print(text, file=self.stdout, flush=True)

    def line(self, value: Any, human: str) -> None:
        """One item of a stream (``events``): a JSON object a line with ``--json``."""
        text = json.dumps(value) if self.json_mode else human
        print(text, file=self.stdout, flush=True)

    def progress(self, text: str, elapsed_s: float | None = None) -> None:
        """How a slow command stands. On a terminal the line is rewritten in place, with the
        seconds it has taken; else each new step is a line of its own (a log a script or a
        test can read), without the ticking seconds."""
        if self._live and elapsed_s is not None and elapsed_s >= 1:
            shown_text = f"{text} {elapsed_s:.0f} s"
        else:
            shown_text = text
        if text == self._step and (not self._live or shown_text == self._line):
            return
        self._step = text
        if self._live:
            pad = max(0, len(self._line) - len(shown_text))
            self.stderr.write("\r" + shown_text + " " * pad)
        else:
            self.stderr.write(shown_text + "\n")
        self.stderr.flush()
        self._line = shown_text

    def end_progress(self) -> None:
        if self._live and self._line:
            self.stderr.write("\n")
            self.stderr.flush()
        self._line = self._step = ""

    def warn(self, text: str) -> None:
        self.end_progress()
        print(f"peerline: {text}", file=self.stderr, flush=True)
