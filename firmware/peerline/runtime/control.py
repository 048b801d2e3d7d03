"""The local control API: JSON lines over a Unix socket only the phone's user can open.

Each request is one line ``{"id": ..., "cmd": "...", "args": {...}}``; each answer one line
``{"id": ..., "ok": true, "result": ...}`` or ``{"id": ..., "ok": false, "error": {"code",
"message"}}``. A malformed request gets an error answer and the connection stays usable
(docs/control-api.md). A handler may answer with an ``EventStream``: the connection then
carries ``{"id": ..., "ok": true, "stream": "events"}`` and one ``{"id": ..., "event": {...}}``
line per item until the stream ends or the client leaves.
"""

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
MAX_CLIENTS = 16

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class CommandError(Exception):
    """Raised by a handler to answer with ``{"ok": false, "error": {code, message}}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class EventStream:
    """A handler's answer that goes on: each item is sent as one line as it comes."""

    def __init__(self, items: AsyncIterator[Any]) -> None:
        self.items = items


class ControlServer:
    """Serve ``handlers`` (command name -> coroutine taking the args dict) on ``path``."""

    def __init__(self, path: Path, handlers: dict[str, Handler]) -> None:
        self.path = path
        self.handlers = handlers
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()  # a stale socket from a crash; the data dir is ours
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_REQUEST_BYTES
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        for task in list(self._clients):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._clients) >= MAX_CLIENTS:
            writer.close()
            return
        self._clients.add(task)
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    return
                except asyncio.LimitOverrunError:
                    msg = f"request over {MAX_REQUEST_BYTES} bytes"
                    writer.write(_error(None, "too_large", msg))
                    await writer.drain()
                    return
                answer = await self._answer(line)
                if isinstance(answer, tuple):
                    rid, stream = answer
                    await self._stream(writer, rid, stream)
                    return
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        except Exception:  # a bug in one client's handling must never take the phone down
            log.exception("control connection failed")
            return
        finally:
            self._clients.discard(task)
            writer.close()

    async def _stream(self, writer: asyncio.StreamWriter, rid: Any, stream: EventStream) -> None:
        """Send ``stream``'s items until it ends or the client goes away."""
        writer.write((json.dumps({"id": rid, "ok": True, "stream": "events"}) + "\n").encode())
        await writer.drain()
        async for item in stream.items:
            writer.write((json.dumps({"id": rid, "event": item}) + "\n").encode())
            await writer.drain()

    async def _answer(self, line: bytes) -> bytes | tuple[Any, EventStream]:
        try:
            request = json.loads(line, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _error(None, "bad_json", "request is not valid JSON")
        if not isinstance(request, dict):
            return _error(None, "bad_request", "request must be a JSON object")
        rid = request.get("id")
        cmd, args = request.get("cmd"), request.get("args", {})
        if not isinstance(cmd, str) or not isinstance(args, dict):
            return _error(rid, "bad_request", '"cmd" must be a string and "args" an object')
        handler = self.handlers.get(cmd)
        if handler is None:
            return _error(rid, "unknown_command", f"unknown command {cmd!r}")
        try:
            result = await handler(args)
        except CommandError as exc:
            return _error(rid, exc.code, exc.message)
        except Exception:
            log.exception("control command %s failed", cmd)
            return _error(rid, "internal", f"{cmd} failed; see the phone's log")
        if isinstance(result, EventStream):
            return rid, result
        return (json.dumps({"id": rid, "ok": True, "result": result}) + "\n").encode()


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON; Python's parser would accept them."""
    raise ValueError(f"{name} is not valid JSON")


def _error(rid: Any, code: str, message: str) -> bytes:
    body = {"id": rid, "ok": False, "error": {"code": code, "message": message}}
    return (json.dumps(body) + "\n").encode()
