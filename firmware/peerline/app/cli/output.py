"""How the CLI prints: one formatter for every command, for people and for ``--json``.

A command builds its result as the control API's JSON and one text for people from it; with
``--json`` the JSON goes to stdout as it is, else the text. Progress on anything slower than a
second goes to stderr (rewritten in place on a terminal, a line per step otherwise), so stdout
stays clean for scripts. Addresses are ``HOST:PORT`` or ``[V6]:PORT``, numbers in fours.
"""

import json
import sys
from typing import IO, Any


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
