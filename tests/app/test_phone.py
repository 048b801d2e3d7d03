"""The daemon's ``Phone`` in one process: number derivation for never-seen senders and
``peer.add`` (protocol.md §7.9, control-api.md ``peer.add`` and ``msg.list``).

The phone runs for real (UDP on loopback, control socket, its derivation worker). The
never-seen senders are real peers too: session ``Node``s on their own loopback sockets
(``runtime.udp.UdpDriver``), each doing a Noise handshake and sending a message.
"""

import asyncio
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from peerline.app.control_client import call
from peerline.app.daemon import Phone
from peerline.app.paths import Paths
from peerline.app.wiring import phone_config
from peerline.proto.identity import Identity, derive_number
from peerline.proto.node import Node
from peerline.runtime.udp import UdpDriver
from peerline.sim.rng import SeededRng
from peerline.store.config import Config
from peerline.store.db import Database

LOOPBACK = {
    "network.port": 0,
    "network.bind4": "127.0.0.1",
    "network.bind6": "",
    "overlay.lan": False,
    "nat.port_mapping": False,
}
FRIEND = Identity.from_seed(b"\x02" * 32)


def stranger(i: int) -> Identity:
    return Identity.from_seed(bytes([100 + i]) * 32)


class SlowDerive:
    """argon2id, made slower and logged, so the order the worker runs keys in is visible."""

    def __init__(self, extra_s: float) -> None:
        self.extra_s = extra_s
        self.order: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, key: bytes) -> str:
        number = derive_number(key)
        time.sleep(self.extra_s)
        with self._lock:
            self.order.append(key)
        return number


def run_phone(
    tmp_path: Path,
    scenario: Callable[[Phone], Awaitable[Any]],
    *,
    derive: Callable[[bytes], str] = derive_number,
    max_pending: int | None = None,
) -> Any:
    async def main() -> Any:
        config = Config().override(LOOPBACK)
        core_config = phone_config(config)
        if max_pending is not None:
            core_config = dataclasses.replace(core_config, max_pending_derivations=max_pending)
        with Database.open(tmp_path / "peerline.db") as db:
            phone = Phone(
                paths=Paths(tmp_path),
                config=config,
                identity=Identity.from_seed(b"\x01" * 32),
                db=db,
                core_config=core_config,
                derive=derive,
            )
            await phone.start()
            try:
                return await scenario(phone)
            finally:
                await phone.close()

    return asyncio.run(main())


async def send_from(phone: Phone, senders: list[Identity], texts: list[str]) -> None:
    """Each sender, a real session node on its own loopback socket, sends one message to the
    phone; returns once every message was acknowledged."""
    target = phone.core.public_key
    addr = next(a for a in phone.local_addrs if ":" not in a[0])
    drivers = []
    delivered = 0
    done = asyncio.Event()

    def on_event(event: object) -> None:
        nonlocal delivered
        if type(event).__name__ == "MessageDelivered":
            delivered += 1
            if delivered == len(senders):
                done.set()

    try:
        for i, (who, text) in enumerate(zip(senders, texts, strict=True)):
            node = Node(identity=who, rng=SeededRng(f"stranger/{i}"))
            driver = UdpDriver(node, on_event)
            await driver.start(bind4="127.0.0.1", bind6="", port=0)
            drivers.append(driver)
            node.add_peer(target, addr)
            node.send_message(target, text, now=asyncio.get_running_loop().time())
            driver.poke()
        await asyncio.wait_for(done.wait(), 20.0)
    finally:
        for driver in drivers:
            driver.close()


async def peer_add(phone: Phone, identity: Identity, number: str) -> Any:
    args = {
        "number": number,
        "public_key": identity.public_key.hex(),
        "host": "192.0.2.5",
        "port": 4720,
    }
    return await asyncio.to_thread(call, phone.paths.control_socket, "peer.add", args)


def labelled(phone: Phone, keys: list[bytes]) -> int:
    return sum(m.peer_number is not None for m in phone.db.messages() if m.peer_key in keys)


def test_peer_add_goes_ahead_of_queued_derivations_for_never_seen_senders(
    tmp_path: Path,
) -> None:
    """A stream of messages from fresh keys must not delay ``peer.add`` behind all of them:
    it waits at most for the derivation already running."""
    strangers = [stranger(i) for i in range(8)]
    keys = [s.public_key for s in strangers]
    friend_number = derive_number(FRIEND.public_key)
    derive = SlowDerive(0.5)

    async def scenario(phone: Phone) -> tuple[int, int, list[bytes]]:
        derive.order.clear()  # the phone's own number was derived at start
        await send_from(phone, strangers, [f"hello {i}" for i in range(8)])
        done_before = len(derive.order)  # stored at once; derivations queued, one running
        await peer_add(phone, FRIEND, friend_number)
        for _ in range(150):  # the queued derivations still finish, one at a time
            if labelled(phone, keys) == len(keys):
                break
            await asyncio.sleep(0.1)
        return done_before, labelled(phone, keys), list(derive.order)

    done_before, at_end, order = run_phone(tmp_path, scenario, derive=derive)
    assert done_before < len(keys) - 2, "the strangers' numbers were derived before peer.add"
    assert at_end == len(keys)
    # The friend's key went ahead of every queued stranger: at most the derivation already
    # running when peer.add came finished before it.
    assert order.index(FRIEND.public_key) <= done_before + 1, order


def test_peer_add_fills_in_the_number_on_earlier_messages_from_that_key(tmp_path: Path) -> None:
    """Messages stored while no derivation could be queued (``numbers_deferred``) get their
    number when the user adds the key."""
    friend_number = derive_number(FRIEND.public_key)

    async def scenario(phone: Phone) -> tuple[dict[str, str | None], int]:
        await send_from(phone, [FRIEND, stranger(0)], ["hi 1", "hi 3"])
        deferred = phone.status()["counters"]["numbers_deferred"]
        await peer_add(phone, FRIEND, friend_number)
        return {m.body: m.peer_number for m in phone.db.messages()}, deferred

    numbers, deferred = run_phone(tmp_path, scenario, max_pending=0)
    assert deferred == 2  # every background derivation is deferred
    assert numbers == {"hi 1": friend_number, "hi 3": None}
