"""``peerline``: parse the command line, run the command, turn every failure into a sentence
and an exit code (``exits.EXIT_CODES``), never a traceback."""

import argparse
import json
import logging
import os
import sys

from peerline.app.control_client import ControlError, NotRunning
from peerline.errors import ConfigError, HardwareError, StoreError

from .exits import FAILED, INTERRUPTED, NOT_RUNNING, PIPE_CLOSED, USAGE, Fail
from .output import Output
from .parser import parse

USAGE_CODES = frozenset(
    {"bad_request", "bad_number", "bad_key", "bad_address", "unknown_command", "bad_json"}
)
"""Control API errors that mean the command's values were wrong: exit 2, as argparse's own."""


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(argv)
    except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else USAGE
    out = Output(json_mode=args.json)
    if args.command != "run" and args.log_level is not None:
        logging.basicConfig(
            level=args.log_level.upper(), stream=sys.stderr, format="peerline: %(message)s"
        )
    try:
        return int(args.func(args, out))
    except BrokenPipeError:
        # The reader went away (`peerline dial --json | head`): stop quietly, as SIGPIPE would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return PIPE_CLOSED
    except KeyboardInterrupt:
        out.end_progress()
        return INTERRUPTED
    except Fail as exc:
        return _failed(out, args, exc.code, "failed", str(exc))
    except ConfigError as exc:
        return _failed(out, args, USAGE, "config", f"configuration error:\n{exc}")
    except (StoreError, HardwareError) as exc:
        return _failed(out, args, FAILED, "store", str(exc))
    except NotRunning as exc:
        return _failed(out, args, NOT_RUNNING, "not_running", str(exc))
    except ControlError as exc:
        code = USAGE if exc.code in USAGE_CODES else FAILED
        return _failed(out, args, code, exc.code, exc.message)
    except TimeoutError:
        text = "the phone did not answer in time; it may still finish"
        return _failed(out, args, FAILED, "timeout", text)


def _failed(out: Output, args: argparse.Namespace, exit_code: int, code: str, text: str) -> int:
    """Say why on stderr; with ``--json`` also as ``{"error": {code, message}}`` on stdout."""
    out.warn(text)
    if args.json:
        try:
            print(json.dumps({"error": {"code": code, "message": text}}), flush=True)
        except BrokenPipeError:
            return PIPE_CLOSED
    return exit_code
