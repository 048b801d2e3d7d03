"""Client side of the control API: one JSON-lines request over the phone's Unix socket."""

import itertools
import json
import socket
from collections.abc import Generator, Iterator
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
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as exc:
        sock.close()
        raise NotRunning(
            f"no phone is running on {socket_path.parent} (start one with"
            f" `peerline run --data {socket_path.parent}`)"
        ) from exc
    except PermissionError as exc:
        sock.close()
        raise NotRunning(
            f"{socket_path}: permission denied (the phone runs as another user)"
        ) from exc
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


def stream(
    socket_path: Path,
    cmd: str,
    args: dict[str, Any] | None = None,
    *,
    idle_s: float | None = None,
) -> Generator[Any, None, None]:
    """Send one command that answers with a stream (``events``, ``dial`` with progress) and
    yield each item until the stream ends; raises ``NotRunning`` or ``ControlError`` as
    ``call`` does. With ``idle_s``, None is yielded after each ``idle_s`` seconds without an
    item (so a caller can show time passing)."""
    request = {"id": next(_ids), "cmd": cmd, "args": args or {}}
    sock = _connect(socket_path, request, idle_s)
    try:
        lines = _lines(sock)
        first = next(lines, b"")
        while first is None:
            first = next(lines, b"")
        _answer(first)
        for line in lines:
            yield None if line is None else json.loads(line).get("event")
    finally:
        sock.close()


def _lines(sock: socket.socket) -> Iterator[bytes | None]:
    """The socket's lines as they come; None at each timeout; ends when the phone closes."""
    buffered = b""
    while True:
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            yield line
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            yield None
            continue
        if not chunk:
            if buffered:
                yield buffered
            return
        buffered += chunk
