"""The control socket's request parser: any line gets exactly one line of JSON back.

``ControlServer._answer`` is driven directly with hypothesis (random bytes, random JSON values,
random request-shaped objects) and then the real server is exercised on a Unix socket.
"""

import asyncio
import gc
import json
import logging
import math
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerline.runtime.control import MAX_REQUEST_BYTES, CommandError, ControlServer, Handler

T = TypeVar("T")


async def echo(args: dict[str, Any]) -> Any:
    return args


async def boom(args: dict[str, Any]) -> Any:
    raise Exception("handler exploded")


async def refuse(args: dict[str, Any]) -> Any:
    raise CommandError("refused", "not today")


HANDLERS: dict[str, Handler] = {"echo": echo, "boom": boom}
ERROR_CODES = {"bad_json", "bad_request", "unknown_command", "internal"}


@pytest.fixture(autouse=True)
def _quiet_handler_failures(caplog: pytest.LogCaptureFixture) -> None:
    """``boom`` is logged with a traceback by design; keep it out of the test output."""
    caplog.set_level(logging.CRITICAL, logger="peerline.runtime.control")


def answer(line: bytes, handlers: dict[str, Handler] | None = None) -> bytes:
    server = ControlServer(Path("/nonexistent/control.sock"), handlers or HANDLERS)
    return asyncio.run(server._answer(line))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def parse_answer(raw: bytes, *, strict: bool = True) -> dict[str, Any]:
    """One line of JSON shaped as docs/control-api.md says; strict rejects NaN and Infinity."""
    assert isinstance(raw, bytes)
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1, raw[:200]
    text = raw.decode("ascii")  # json.dumps escapes everything else
    body = json.loads(text, parse_constant=_reject_constant) if strict else json.loads(text)
    assert isinstance(body, dict)
    if body["ok"] is True:
        assert set(body) == {"id", "ok", "result"}
    else:
        assert body["ok"] is False
        assert set(body) == {"id", "ok", "error"}
        assert set(body["error"]) == {"code", "message"}
        assert isinstance(body["error"]["code"], str) and body["error"]["code"]
        assert isinstance(body["error"]["message"], str)
    return body


def expected(request: Any) -> tuple[Any, str, Any]:
    """Reference model: (id, error code or "ok", result) for a parsed request."""
    if not isinstance(request, dict):
        return None, "bad_request", None
    rid, cmd, args = request.get("id"), request.get("cmd"), request.get("args", {})
    if not isinstance(cmd, str) or not isinstance(args, dict):
        return rid, "bad_request", None
    if cmd == "echo":
        return rid, "ok", args
    if cmd == "boom":
        return rid, "internal", None
    return rid, "unknown_command", None


def check_against_model(request: Any, raw: bytes) -> None:
    body = parse_answer(raw)
    rid, code, result = expected(request)
    assert body["id"] == rid
    if code == "ok":
        assert body["ok"] is True and body["result"] == result
    else:
        assert body["error"]["code"] == code


# -- examples --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"", "bad_json"),
        (b"\n", "bad_json"),
        (b"not json\n", "bad_json"),
        (b"{\n", "bad_json"),
        (b"\xff\xfe\xfd\n", "bad_json"),
        (b'{"cmd": "echo"} trailing\n', "bad_json"),
        (b"[1, 2]\n", "bad_request"),
        (b'"echo"\n', "bad_request"),
        (b"null\n", "bad_request"),
        (b"{}\n", "bad_request"),
        (b'{"cmd": 5}\n', "bad_request"),
        (b'{"cmd": "echo", "args": []}\n', "bad_request"),
        (b'{"cmd": "echo", "args": null}\n', "bad_request"),
        (b'{"cmd": "nope"}\n', "unknown_command"),
        (b'{"cmd": "boom"}\n', "internal"),
        (b'{"cmd": "echo", "id": ' + b"9" * 5000 + b"}\n", "bad_json"),  # int digit limit
    ],
)
def test_malformed_requests_get_error_answers(line: bytes, code: str) -> None:
    body = parse_answer(answer(line))
    assert body["ok"] is False and body["error"]["code"] == code


def test_valid_echo_call() -> None:
    body = parse_answer(answer(b'{"id": 7, "cmd": "echo", "args": {"x": [1, "\xc3\xa9"]}}\n'))
    assert body == {"id": 7, "ok": True, "result": {"x": [1, "\u00e9"]}}


def test_missing_args_default_to_an_empty_object() -> None:
    assert parse_answer(answer(b'{"id": "a", "cmd": "echo"}'))["result"] == {}


def test_command_error_is_answered_with_its_code() -> None:
    body = parse_answer(answer(b'{"id": 1, "cmd": "refuse"}\n', {"refuse": refuse}))
    assert body["error"] == {"code": "refused", "message": "not today"}


def test_handler_exception_text_is_not_leaked() -> None:
    body = parse_answer(answer(b'{"id": 1, "cmd": "boom"}\n'))
    assert "exploded" not in body["error"]["message"]


@pytest.mark.parametrize(
    "line", [b"[" * 30_000 + b"\n", b"[" * 30_000 + b"]" * 30_000 + b"\n"], ids=["open", "closed"]
)
def test_deeply_nested_json_gets_an_error_answer(line: bytes) -> None:
    assert len(line) < MAX_REQUEST_BYTES
    body = parse_answer(answer(line))
    assert body["ok"] is False


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_answers_are_strict_json_even_for_nonstandard_ids(token: bytes) -> None:
    parse_answer(answer(b'{"id": ' + token + b', "cmd": "nope"}\n'), strict=True)


# -- properties ------------------------------------------------------------------------------------
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "cmd": st.one_of(st.sampled_from(["echo", "boom", "nope", "", "ECHO"]), json_values),
        "args": st.one_of(
            st.dictionaries(st.text(max_size=8), json_values, max_size=4), json_values
        ),
    },
)
line_endings = st.sampled_from([b"\n", b"", b"\r\n", b" \t\n"])


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_random_bytes_get_one_json_line(line: bytes) -> None:
    body = parse_answer(answer(line), strict=True)
    if body["ok"] is False:
        assert body["error"]["code"] in ERROR_CODES


@settings(max_examples=200)
@given(st.binary(max_size=200), line_endings)
def test_random_bytes_after_a_valid_prefix_get_one_json_line(tail: bytes, end: bytes) -> None:
    body = parse_answer(answer(b'{"id": 1, "cmd": "echo", "args": {' + tail + end), strict=False)
    if body["ok"]:
        assert body["id"] == 1 and isinstance(body["result"], dict)
    else:
        assert body["error"]["code"] in ERROR_CODES


@settings(max_examples=200)
@given(json_values, line_endings)
def test_any_json_value_is_answered_per_the_model(value: Any, end: bytes) -> None:
    check_against_model(value, answer(json.dumps(value).encode() + end))


@settings(max_examples=300)
@given(requests, line_endings)
def test_request_shaped_objects_are_answered_per_the_model(request: Any, end: bytes) -> None:
    check_against_model(request, answer(json.dumps(request).encode() + end))


@settings(max_examples=100)
@given(requests, st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-32"]))
def test_json_in_any_utf_encoding_is_understood(request: Any, encoding: str) -> None:
    """``json.loads`` on bytes detects the UTF encoding; either way the answer is one line."""
    raw = answer(json.dumps(request).encode(encoding))
    check_against_model(request, raw)


def test_float_ids_survive_the_round_trip() -> None:
    body = parse_answer(answer(b'{"id": 0.1, "cmd": "echo", "args": {"f": 1e308}}'))
    assert body["id"] == 0.1 and math.isclose(body["result"]["f"], 1e308)


# -- the real socket -------------------------------------------------------------------------------
def run_with_server(path: Path, body: Callable[[], Awaitable[T]]) -> T:
    """Run ``body`` against a started server; fail on any exception a client task leaked.

    Leaked exceptions reach the loop's exception handler (Python 3.12+ at once, 3.11 when the
    dead task is garbage-collected, hence the ``gc.collect()`` while the loop still runs).
    """
    leaked: list[dict[str, Any]] = []

    async def scenario() -> T:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: leaked.append(ctx))
        server = ControlServer(path, HANDLERS)
        await server.start()
        try:
            return await body()
        finally:
            await server.close()
            gc.collect()
            await asyncio.sleep(0)

    result = asyncio.run(scenario())
    assert not path.exists()
    assert [repr(ctx.get("exception")) for ctx in leaked] == []
    return result


async def _exchange(path: Path, payload: bytes, n_lines: int) -> list[bytes]:
    reader, writer = await asyncio.open_unix_connection(str(path), limit=2 * MAX_REQUEST_BYTES)
    try:
        writer.write(payload)
        await writer.drain()
        return [await asyncio.wait_for(reader.readline(), 5.0) for _ in range(n_lines)]
    finally:
        writer.close()


async def _closed_by_server(path: Path, payload: bytes) -> tuple[bytes, bytes]:
    """Send ``payload``; return the first line and whatever follows until the server hangs up."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(payload)
        await writer.drain()
        first = await asyncio.wait_for(reader.readline(), 5.0)
        try:
            rest = await asyncio.wait_for(reader.read(), 5.0)
        except ConnectionResetError:  # Linux resets when the server closes with unread input
            rest = b""
        return first, rest
    finally:
        writer.close()


def test_unix_socket_mode_size_limit_and_ordered_answers(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"

    async def body() -> None:
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

        too_long = b'{"cmd": "echo", "args": {"s": "' + b"x" * MAX_REQUEST_BYTES + b'"}}\n'
        first, rest = await _closed_by_server(path, too_long)
        answer = parse_answer(first)
        assert answer["ok"] is False and answer["error"]["code"] == "too_large"
        assert rest == b""  # and then the server hangs up

        big = "y" * (MAX_REQUEST_BYTES - 1000)  # under the limit: answered normally
        requests = [
            b"garbage\n",
            b'{"id": 1, "cmd": "echo", "args": {"n": 1}}\n',
            b"\xff\xfe not utf-8\n",
            b"[1, 2, 3]\n",
            b'{"id": 2, "cmd": "boom"}\n',
            b'{"id": 3, "cmd": "nope"}\n',
            b'{"id": 4, "cmd": 42}\n',
            json.dumps({"id": 5, "cmd": "echo", "args": {"s": big}}).encode() + b"\n",
            b'{"id": 6, "cmd": "echo"}\n',
        ]
        lines = await _exchange(path, b"".join(requests), len(requests))
        bodies = [parse_answer(line) for line in lines]
        summary = [(b["id"], b["error"]["code"] if not b["ok"] else "ok") for b in bodies]
        assert summary == [
            (None, "bad_json"),
            (1, "ok"),
            (None, "bad_json"),
            (None, "bad_request"),
            (2, "internal"),
            (3, "unknown_command"),
            (4, "bad_request"),
            (5, "ok"),
            (6, "ok"),
        ]
        assert bodies[1]["result"] == {"n": 1}
        assert bodies[7]["result"] == {"s": big}

    run_with_server(path, body)


def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    path.write_text("left over from a crash")

    async def body() -> None:
        (line,) = await _exchange(path, b'{"id": 1, "cmd": "echo"}\n', 1)
        assert parse_answer(line)["ok"] is True

    run_with_server(path, body)


def test_connection_survives_a_deeply_nested_request(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    payload = b"[" * 30_000 + b"\n" + b'{"id": 1, "cmd": "echo"}\n'

    async def body() -> list[bytes]:
        return await _exchange(path, payload, 2)

    lines = run_with_server(path, body)
    assert parse_answer(lines[0])["ok"] is False
    assert parse_answer(lines[1])["ok"] is True
