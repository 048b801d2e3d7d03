"""Client side of the control API: one JSON-lines request over the phone's Unix socket."""

import itertools
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from peerline.errors import PeerlineError

_ids = itertools.count(1)


class NotRunning(PeerlineError, ConnectionError):
    """No phone answers on the control socket."""


class ControlError(PeerlineError, RuntimeError):
    """The phone answered the request with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


def _connect(socket_path: Path, request: dict[str, Any], timeout: float | None) -> socket.socket:
    """A connection to the phone with ``request`` sent; raises ``NotRunning``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(socket_path))
        sock.sendall((json.dumps(request) + "\n").encode())
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        sock.close()
        raise NotRunning(f"no phone is running with control socket {socket_path}") from exc
    except BaseException:
        sock.close()
        raise
    return sock


def _answer(line: bytes) -> Any:
    """The result of one answer line; raises ``NotRunning`` or ``ControlError``."""
    if not line:
        raise NotRunning("the phone closed the control connection without answering")
    answer = json.loads(line)
    if not answer.get("ok"):
        err = answer.get("error") or {}
        raise ControlError(str(err.get("code", "error")), str(err.get("message", "failed")))
    return answer


def call(
    socket_path: Path, cmd: str, args: dict[str, Any] | None = None, *, timeout: float = 30.0
) -> Any:
    """Send one command and return its result; raises ``NotRunning`` or ``ControlError``."""
    request = {"id": next(_ids), "cmd": cmd, "args": args or {}}
    sock = _connect(socket_path, request, timeout)
    try:
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    return _answer(data).get("result")


def stream(socket_path: Path, cmd: str, args: dict[str, Any] | None = None) -> Iterator[Any]:
    """Send one command that answers with a stream (``events``) and yield each item until the
    phone stops; raises ``NotRunning`` or ``ControlError`` as ``call`` does."""
    request = {"id": next(_ids), "cmd": cmd, "args": args or {}}
    sock = _connect(socket_path, request, None)
    try:
        lines = sock.makefile("rb")
        _answer(lines.readline())
        for line in lines:
            yield json.loads(line).get("event")
    finally:
        sock.close()
