"""The ``peerline`` command's exit codes: one table for the code, ``--help``, the man page and
the README (a test checks the README against it)."""

OK = 0
FAILED = 1
USAGE = 2
NOT_RUNNING = 3
INTERRUPTED = 130
PIPE_CLOSED = 141

EXIT_CODES: dict[int, str] = {
    OK: "success",
    FAILED: "the command failed (the phone said why: not found, busy, not answered, ...)",
    USAGE: "bad usage, a value the phone would refuse, or a bad configuration",
    NOT_RUNNING: "no phone is running on the data directory",
    INTERRUPTED: "interrupted (Ctrl-C); a call being dialled is cancelled",
    PIPE_CLOSED: "whoever read the output stopped reading (as SIGPIPE, `| head`)",
}


class Fail(Exception):
    """A command stops with ``code`` and a sentence for people (no traceback)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
