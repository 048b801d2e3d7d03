"""``peerline run``: the composition root that wires a Node to sockets, storage and the API.

It owns what is not protocol: the wall clock for stored timestamps, number derivation for
callers the phone has never seen (argon2id, run in a worker thread so the loop never stalls),
the SQLite store and the control socket.
"""

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peerline import __version__
from peerline.adapters.rng import OsRng
from peerline.errors import InvalidKey, InvalidNumber, LocalProtocolError
from peerline.proto.events import (
    HandshakeCompleted,
    MessageDelivered,
    MessageFailed,
    MessageReceived,
    PeerEndpointChanged,
)
from peerline.proto.identity import (
    Identity,
    derive_number,
    format_number,
    parse_number,
)
from peerline.proto.node import Node, NodeConfig
from peerline.runtime.control import CommandError, ControlServer
from peerline.runtime.udp import UdpDriver
from peerline.store.config import Config
from peerline.store.db import Database, MessageStatus
from peerline.types import Addr

log = logging.getLogger("peerline")

CONTROL_SOCKET_NAME = "control.sock"
DATABASE_NAME = "peerline.db"
MAX_PENDING_DERIVATIONS = 1024
"""Never-seen keys waiting for their number. Beyond this their messages are still stored (the
number is filled in later, when the key is seen again) but no derivation is queued."""
MAX_WAIT_S = 120.0


@dataclass(frozen=True, slots=True)
class Paths:
    data: Path

    @property
    def control_socket(self) -> Path:
        return self.data / CONTROL_SOCKET_NAME

    @property
    def database(self) -> Path:
        return self.data / DATABASE_NAME


class Phone:
    """One running phone: Node + UDP driver + store + control API."""

    def __init__(
        self,
        *,
        paths: Paths,
        config: Config,
        identity: Identity,
        db: Database,
        node_config: NodeConfig | None = None,
    ) -> None:
        self.paths = paths
        self.config = config
        self.identity = identity
        self.db = db
        self.number = derive_number(identity.public_key)
        self.node = Node(
            identity=identity,
            rng=OsRng(),
            config=node_config or NodeConfig(keepalive_s=config.network.keepalive_s),
        )
        self.started_at = time.time()
        self._numbers: dict[bytes, str] = {identity.public_key: self.number}
        self._deriving: set[bytes] = set()
        self.numbers_deferred = 0
        # One worker: each derivation holds 64 MiB, and a Pi Zero 2 W has 512 MB in all.
        self._kdf = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="number-kdf")
        self._waiters: dict[bytes, asyncio.Future[str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._driver: UdpDriver | None = None
        self._control: ControlServer | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        for row in self.db.peers():
            self._numbers[row.public_key] = row.number
            try:
                self.node.add_peer(row.public_key, (row.host, row.port))
            except (InvalidKey, LocalProtocolError) as exc:
                log.warning("skipping stored peer %s: %s", row.number, exc)
        self._driver = UdpDriver(self.node, self._on_event)
        net = self.config.network
        await self._driver.start(bind4=net.bind4, bind6=net.bind6, port=net.port)
        self._control = ControlServer(self.paths.control_socket, self._handlers())
        await self._control.start()

    async def close(self) -> None:
        if self._control is not None:
            await self._control.close()
        if self._driver is not None:
            self._driver.close()
        for task in list(self._tasks):
            task.cancel()
        for fut in self._waiters.values():
            fut.cancel()
        self._kdf.shutdown(wait=False, cancel_futures=True)

    @property
    def local_addrs(self) -> list[Addr]:
        return self._driver.local_addrs if self._driver else []

    def _poke(self) -> None:
        if self._driver is not None:
            self._driver.poke()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- events from the node -----------------------------------------------------------------
    def _on_event(self, event: object) -> None:
        if isinstance(event, MessageReceived):
            # Stored at once: the node has acknowledged it, so it must never be lost.
            number = self._numbers.get(event.peer_key)
            self._store_incoming(event, number)
            if number is None:
                self._learn_number(event.peer_key)
        elif isinstance(event, MessageDelivered | MessageFailed):
            status: MessageStatus = "delivered" if isinstance(event, MessageDelivered) else "failed"
            self.db.set_message_status(event.message_id, status)
            fut = self._waiters.pop(event.message_id, None)
            if fut is not None and not fut.done():
                fut.set_result(status)
            if isinstance(event, MessageFailed):
                log.info("message %s failed: %s", event.message_id.hex()[:8], event.reason)
        elif isinstance(event, HandshakeCompleted):
            log.info(
                "secure session with %s (%s), SAS %s",
                self._label(event.peer_key),
                "we called" if event.initiator else "they called",
                event.sas,
            )
        elif isinstance(event, PeerEndpointChanged):
            self.db.touch_peer(event.peer_key, event.addr[0], event.addr[1], now=time.time())
            log.info("%s moved to %s:%d", self._label(event.peer_key), *event.addr)

    def _label(self, key: bytes) -> str:
        number = self._numbers.get(key)
        return format_number(number) if number else f"key {key.hex()[:16]}…"

    def _learn_number(self, key: bytes) -> None:
        """Derive a never-seen key's number in the worker, then fill it in on its messages."""
        if key in self._deriving:
            return
        if len(self._deriving) >= MAX_PENDING_DERIVATIONS:
            self.numbers_deferred += 1
            return
        self._deriving.add(key)
        self._spawn(self._derive_and_fill(key))

    async def _derive_and_fill(self, key: bytes) -> None:
        try:
            number = await self._derive(key)
            self._numbers[key] = number
            self.db.set_message_numbers(key, number)
        finally:
            self._deriving.discard(key)

    async def _derive(self, key: bytes) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._kdf, derive_number, key)

    def _store_incoming(self, event: MessageReceived, number: str | None) -> None:
        fresh = self.db.add_message(
            message_id=event.message_id,
            direction="in",
            peer_key=event.peer_key,
            peer_number=number,
            body=event.text,
            created_at=time.time(),
            status="received",
        )
        if fresh:
            log.info("message %s from %s", event.message_id.hex()[:8], self._label(event.peer_key))

    # -- control API --------------------------------------------------------------------------
    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "id": self._cmd_id,
            "status": self._cmd_status,
            "peer.add": self._cmd_peer_add,
            "peer.list": self._cmd_peer_list,
            "msg.send": self._cmd_msg_send,
            "msg.list": self._cmd_msg_list,
        }

    async def _cmd_id(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"number": self.number, "public_key": self.identity.public_key.hex()}

    async def _cmd_status(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.status()

    def status(self) -> dict[str, Any]:
        now = asyncio.get_running_loop().time()
        counters = self.node.counters.as_dict()
        counters["numbers_deferred"] = self.numbers_deferred
        if self._driver is not None:
            counters["socket_errors"] = self._driver.socket_errors
        return {
            "version": __version__,
            "number": self.number,
            "number_display": format_number(self.number),
            "public_key": self.identity.public_key.hex(),
            "name": self.config.phone.name,
            "listen": [list(a) for a in self.local_addrs],
            "uptime_s": round(time.time() - self.started_at, 1),
            "nat": None,
            "peers": len(self.db.peers()),
            "sessions": self.node.sessions(now=now),
            "calls": [],
            "counters": counters,
        }

    async def _cmd_peer_add(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            number = parse_number(str(args.get("number", "")))
        except InvalidNumber as exc:
            raise CommandError("bad_number", str(exc)) from None
        key = _parse_key(args.get("public_key"))
        host, port = _parse_host_port(args.get("host"), args.get("port"))
        if key == self.identity.public_key:
            raise CommandError("bad_key", "that is this phone's own key")
        if await self._derive(key) != number:
            raise CommandError(
                "number_mismatch",
                f"key does not derive to {format_number(number)}: refusing a forged pairing",
            )
        self.db.upsert_peer(key, number, host, port, now=time.time())
        self._numbers[key] = number
        self.node.add_peer(key, (host, port))
        self._poke()
        return {"number": number, "public_key": key.hex(), "host": host, "port": port}

    async def _cmd_peer_list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "number": r.number,
                "public_key": r.public_key.hex(),
                "host": r.host,
                "port": r.port,
                "added_at": r.added_at,
                "last_seen": r.last_seen,
            }
            for r in self.db.peers()
        ]

    async def _cmd_msg_send(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            number = parse_number(str(args.get("number", "")))
        except InvalidNumber as exc:
            raise CommandError("bad_number", str(exc)) from None
        text = args.get("text")
        if not isinstance(text, str) or not text:
            raise CommandError("bad_request", '"text" must be a non-empty string')
        wait = args.get("wait_s", 10.0)
        bad_type = isinstance(wait, bool) or not isinstance(wait, int | float)
        if bad_type or not 0 <= wait <= MAX_WAIT_S:
            raise CommandError("bad_request", f'"wait_s" must be a number 0..{MAX_WAIT_S:g}')
        key = self._resolve(number, args.get("public_key"))
        now = asyncio.get_running_loop().time()
        try:
            message_id = self.node.send_message(key, text, now=now)
        except ValueError as exc:
            raise CommandError("bad_request", str(exc)) from None
        except LocalProtocolError as exc:
            raise CommandError("not_sent", str(exc)) from None
        self.db.add_message(
            message_id=message_id,
            direction="out",
            peer_key=key,
            peer_number=number,
            body=text,
            created_at=time.time(),
            status="sent",
        )
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters[message_id] = fut
        self._poke()
        status = "sent"
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                status = await asyncio.wait_for(asyncio.shield(fut), wait)
        if fut.done():
            self._waiters.pop(message_id, None)
        return {"id": message_id.hex(), "status": status}

    def _resolve(self, number: str, key_hex: object) -> bytes:
        """The key to use for ``number``: never picks silently among colliding keys."""
        rows = self.db.peers_by_number(number)
        if key_hex is not None:
            key = _parse_key(key_hex)
            if not any(r.public_key == key for r in rows):
                raise CommandError("unknown_number", "no peer with that number and key")
            return key
        if not rows:
            raise CommandError(
                "unknown_number",
                f"{format_number(number)} is not known; add it with `peerline peer add`",
            )
        if len(rows) > 1:
            keys = ", ".join(r.public_key.hex() for r in rows)
            raise CommandError(
                "number_conflict",
                f"{format_number(number)} belongs to several keys ({keys}); choose one",
            )
        return rows[0].public_key

    async def _cmd_msg_list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        limit = args.get("limit", 100)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 10_000:
            raise CommandError("bad_request", '"limit" must be an integer 0..10000')
        return [
            {
                "id": m.id.hex(),
                "direction": m.direction,
                "number": m.peer_number,
                "peer_key": m.peer_key.hex(),
                "text": m.body,
                "created_at": m.created_at,
                "status": m.status,
            }
            for m in self.db.messages(limit)
        ]


def _parse_key(value: object) -> bytes:
    try:
        key = bytes.fromhex(str(value))
    except ValueError:
        raise CommandError("bad_key", "public key must be 64 hex digits") from None
    if len(key) != 32:
        raise CommandError("bad_key", "public key must be 64 hex digits")
    return key


def _parse_host_port(host: object, port: object) -> Addr:
    try:
        ip = ipaddress.ip_address(str(host))
    except ValueError:
        raise CommandError("bad_address", f"host must be an IP address, got {host!r}") from None
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise CommandError("bad_address", f"port must be 1..65535, got {port!r}")
    return (str(ip), port)


async def serve(phone: Phone, *, on_ready: Callable[[Phone], None] | None = None) -> None:
    """Run ``phone`` until SIGINT or SIGTERM, then shut down cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await phone.start()
        if on_ready is not None:
            on_ready(phone)
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await phone.close()
