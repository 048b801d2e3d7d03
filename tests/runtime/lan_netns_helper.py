"""Three phones' LAN discovery in one process, over real mDNS on 127.0.0.1.

Run by ``tests/runtime/test_lan.py`` inside a network namespace it created (this binds the mDNS
port 5353 and joins 224.0.0.251, which must not touch the host's network). Prints one JSON
document: what each phone claimed and saw, before and after one of them leaves.

Phones: A is configured with 150; B and C both held 201 before "restarting", so they contest it
(the smaller key keeps it; the other moves and re-registers). C listens on every interface
(the default), A and B on 127.0.0.1 only. A fourth zeroconf instance
publishes a malformed record of our type, which every phone must count and survive. Numbers are
derived for real (argon2id) on a worker thread, so peers go through the pending state.
"""

import asyncio
import hashlib
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from peerline.proto.identity import Identity, derive_number
from peerline.proto.lan import SERVICE_TYPE, ExtensionChanged, ExtensionRegistry, LanEvent
from peerline.runtime.lan import LanDriver

HOST = "127.0.0.1"
SETTLE_S = 14.0
LEAVE_S = 6.0


class ThreadBinding:
    """The daemon's pattern: answer None, derive on a worker thread, then tell the driver."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor
        self.known: dict[bytes, str] = {}
        self.waiting: set[bytes] = set()
        self.driver: LanDriver | None = None
        self.pending_answers = 0

    def number_of(self, public_key: bytes) -> str | None:
        if public_key in self.known:
            return self.known[public_key]
        self.pending_answers += 1
        if public_key not in self.waiting:
            self.waiting.add(public_key)
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self.executor, derive_number, public_key)
            future.add_done_callback(lambda f, k=public_key: self._derived(k, f.result()))
        return None

    def _derived(self, key: bytes, number: str) -> None:
        self.waiting.discard(key)
        self.known[key] = number
        if self.driver is not None:
            self.driver.bindings_changed()


class Phone:
    def __init__(
        self,
        name: str,
        seed: bytes,
        port: int,
        executor: ThreadPoolExecutor,
        *,
        configured: str | None = None,
        previous: str | None = None,
        interfaces: list[str] | None = None,
    ) -> None:
        self.name = name
        self.interfaces = interfaces
        self.identity = Identity.from_seed(seed)
        self.number = derive_number(self.identity.public_key)
        self.binding = ThreadBinding(executor)
        self.registry = ExtensionRegistry(
            identity=self.identity,
            number=self.number,
            port=port,
            binding=self.binding,
            configured_extension=configured,
            previous_extension=previous,
        )
        self.events: list[str] = []
        self.moves: list[dict[str, str]] = []
        self.driver: LanDriver | None = None

    def on_event(self, event: LanEvent) -> None:
        self.events.append(type(event).__name__)
        if isinstance(event, ExtensionChanged):
            self.moves.append({"old": event.old, "new": event.new, "winner": event.winner.hex()})

    async def start(self) -> None:
        self.driver = LanDriver(self.registry, on_event=self.on_event, interfaces=self.interfaces)
        self.binding.driver = self.driver
        await self.driver.start()

    def view(self) -> dict[str, Any]:
        assert self.driver is not None
        ann = self.registry.announcement
        return {
            "name": self.name,
            "key": self.identity.public_key.hex(),
            "number": self.number,
            "extension": self.registry.own_extension,
            "established": bool(ann and ann.established),
            "peers": sorted(
                (
                    {
                        "key": p.public_key.hex(),
                        "number": p.number,
                        "extension": p.extension,
                        "host": p.host,
                        "port": p.port,
                        "resolves": (
                            p.extension is not None and self.registry.resolve(p.extension) == p
                        ),
                    }
                    for p in self.registry.peers()
                ),
                key=lambda p: str(p["number"]),
            ),
            "events": list(self.events),
            "moves": list(self.moves),
            "status": self.driver.status(),
            "pending_answers": self.binding.pending_answers,
        }


def settled(phones: list[Phone]) -> bool:
    for me in phones:
        if me.registry.own_extension is None or not me.registry.announcement.established:  # type: ignore[union-attr]
            return False
        seen = {p.public_key: p.extension for p in me.registry.peers()}
        want = {o.identity.public_key: o.registry.own_extension for o in phones if o is not me}
        if seen != want:
            return False
    return True


async def wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


async def main() -> dict[str, Any]:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="number-kdf")
    seeds = [hashlib.sha256(b"lan-netns-%d" % i).digest() for i in range(3)]
    phones = [
        Phone("A", seeds[0], 7001, executor, configured="150", interfaces=[HOST]),
        Phone("B", seeds[1], 7002, executor, previous="201", interfaces=[HOST]),
        # C takes the default, every interface: in the namespace that is loopback alone.
        Phone("C", seeds[2], 7003, executor, previous="201"),
    ]
    t0 = time.monotonic()
    junk = AsyncZeroconf(interfaces=[HOST], ip_version=IPVersion.V4Only)
    await junk.async_register_service(
        ServiceInfo(
            SERVICE_TYPE,
            f"junk.{SERVICE_TYPE}",
            port=9,
            properties={"v": "1", "num": "not-a-number", "sig": "x"},
            server="junk.local.",
            parsed_addresses=[HOST],
        )
    )
    # Every registry starts its probe at one instant: B's and C's probes then end together, and
    # both claim 201 before either can hear the other's claim (a contest, whatever the time
    # each zeroconf takes to start, which delayed one probe past the other's claim under load).
    t0 = asyncio.get_running_loop().time()
    for p in phones:
        p.registry.start(now=t0)
    await asyncio.gather(*(p.start() for p in phones))
    ok = await wait_for(lambda: settled(phones), SETTLE_S)
    result: dict[str, Any] = {
        "settled": ok,
        "settle_s": round(time.monotonic() - t0, 2),
        "phones": [p.view() for p in phones],
    }
    leaver = phones[2]
    assert leaver.driver is not None
    t1 = time.monotonic()
    await leaver.driver.close()
    rest = phones[:2]
    gone = await wait_for(
        lambda: all(
            leaver.identity.public_key not in {q.public_key for q in p.registry.peers()}
            for p in rest
        ),
        LEAVE_S,
    )
    result["leave"] = {
        "gone": gone,
        "seconds": round(time.monotonic() - t1, 2),
        "phones": [p.view() for p in rest],
    }
    for p in rest:
        assert p.driver is not None
        await p.driver.close()
    await junk.async_close()
    executor.shutdown()
    return result


if __name__ == "__main__":
    out = asyncio.run(main())
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
