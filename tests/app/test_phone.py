"""The daemon's ``Phone`` in one process: number derivation for never-seen senders and
``peer.add`` (protocol.md §7.9, control-api.md ``peer.add`` and ``msg.list``).

The phone runs for real (UDP on loopback, control socket); messages from never-seen keys are
fed through its node-event callback, as the UDP driver would after a handshake.
"""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from peerline.app import daemon
from peerline.app.control_client import call
from peerline.app.daemon import NumberCache, Paths, Phone
from peerline.proto.events import MessageReceived
from peerline.proto.identity import Identity, derive_number
from peerline.store.config import Config
from peerline.store.db import Database

LOOPBACK = {"network.port": 0, "network.bind4": "127.0.0.1", "network.bind6": ""}
FRIEND = Identity.from_seed(b"\x02" * 32)


def stranger(i: int) -> bytes:
    return Identity.from_seed(bytes([100 + i]) * 32).public_key


def message_from(key: bytes, i: int) -> MessageReceived:
    return MessageReceived(peer_key=key, message_id=i.to_bytes(16, "big"), text=f"hello {i}")


def run_phone(tmp_path: Path, scenario: Callable[[Phone], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        with Database.open(tmp_path / "peerline.db") as db:
            phone = Phone(
                paths=Paths(tmp_path),
                config=Config().override(LOOPBACK),
                identity=Identity.from_seed(b"\x01" * 32),
                db=db,
            )
            await phone.start()
            try:
                return await scenario(phone)
            finally:
                await phone.close()

    return asyncio.run(main())


async def peer_add(phone: Phone, identity: Identity, number: str) -> Any:
    args = {
        "number": number,
        "public_key": identity.public_key.hex(),
        "host": "192.0.2.5",
        "port": 4720,
    }
    return await asyncio.to_thread(call, phone.paths.control_socket, "peer.add", args)


def test_peer_add_goes_ahead_of_queued_derivations_for_never_seen_senders(
    tmp_path: Path,
) -> None:
    """A stream of messages from fresh keys must not delay ``peer.add`` behind all of them."""
    strangers = [stranger(i) for i in range(12)]
    friend_number = derive_number(FRIEND.public_key)

    async def scenario(phone: Phone) -> tuple[int, int]:
        for i, key in enumerate(strangers):
            phone._on_event(message_from(key, i))  # stored at once, number derivation queued
        await peer_add(phone, FRIEND, friend_number)
        labelled_then = sum(m.peer_number is not None for m in phone.db.messages())
        for _ in range(200):  # the queued derivations still finish, one at a time
            if all(m.peer_number is not None for m in phone.db.messages()):
                break
            await asyncio.sleep(0.05)
        return labelled_then, sum(m.peer_number is not None for m in phone.db.messages())

    labelled_then, labelled_at_end = run_phone(tmp_path, scenario)
    assert labelled_then <= 1  # at most the derivation already running when peer.add came
    assert labelled_at_end == len(strangers)


def test_peer_add_fills_in_the_number_on_earlier_messages_from_that_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages stored while no derivation could be queued (``numbers_deferred``) get their
    number when the user adds the key."""
    monkeypatch.setattr(daemon, "MAX_PENDING_DERIVATIONS", 0)  # every derivation is deferred
    friend_number = derive_number(FRIEND.public_key)

    async def scenario(phone: Phone) -> dict[bytes, str | None]:
        phone._on_event(message_from(FRIEND.public_key, 1))
        phone._on_event(message_from(FRIEND.public_key, 2))
        phone._on_event(message_from(stranger(0), 3))
        assert phone.status()["counters"]["numbers_deferred"] == 3
        await peer_add(phone, FRIEND, friend_number)
        return {m.id: m.peer_number for m in phone.db.messages()}

    numbers = run_phone(tmp_path, scenario)
    assert numbers == {
        (1).to_bytes(16, "big"): friend_number,
        (2).to_bytes(16, "big"): friend_number,
        (3).to_bytes(16, "big"): None,
    }


def test_number_cache_keeps_pinned_keys_and_drops_the_least_recently_used_others() -> None:
    cache = NumberCache(2)
    cache.pin(b"own", "000000000000")
    for key in (b"k1", b"k2"):
        cache.remember(key, "111111111111")
    assert cache.get(b"k1") == "111111111111"  # k1 is now the most recently used
    cache.remember(b"k3", "333333333333")
    assert cache.get(b"k2") is None and cache.get(b"k1") is not None
    assert cache.get(b"own") == "000000000000" and len(cache) == 3
    cache.pin(b"k1", "111111111111")  # adding a peer moves it out of the bounded part
    for i in range(10):
        cache.remember(bytes([i]), "999999999999")
    assert cache.get(b"k1") == "111111111111" and len(cache) == 2 + 2
