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


def call(
    socket_path: Path, cmd: str, args: dict[str, Any] | None = None, *, timeout: float = 30.0
) -> Any:
    """Send one command and return its result; raises ``NotRunning`` or ``ControlError``."""
    request = {"id": next(_ids), "cmd": cmd, "args": args or {}}
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(socket_path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NotRunning(f"no phone is running with control socket {socket_path}") from exc
        sock.sendall((json.dumps(request) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    if not data:
        raise NotRunning("the phone closed the control connection without answering")
    answer = json.loads(data)
    if not answer.get("ok"):
        err = answer.get("error") or {}
        raise ControlError(str(err.get("code", "error")), str(err.get("message", "failed")))
    return answer.get("result")


def stream(socket_path: Path, cmd: str, args: dict[str, Any] | None = None) -> Iterator[Any]:
    """Send one command that answers with a stream (``events``) and yield each item until the
    phone stops; raises ``NotRunning`` or ``ControlError`` as ``call`` does."""
    request = {"id": next(_ids), "cmd": cmd, "args": args or {}}
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.connect(str(socket_path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NotRunning(f"no phone is running with control socket {socket_path}") from exc
        sock.sendall((json.dumps(request) + "\n").encode())
        lines = sock.makefile("rb")
        first = lines.readline()
        if not first:
            raise NotRunning("the phone closed the control connection without answering")
        answer = json.loads(first)
        if not answer.get("ok"):
            err = answer.get("error") or {}
            raise ControlError(str(err.get("code", "error")), str(err.get("message", "failed")))
        for line in lines:
            yield json.loads(line).get("event")
    finally:
        sock.close()
