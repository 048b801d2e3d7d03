"""Twelve real phones on loopback, each told one seed: they find each other by number alone.

Then a third of them restart on new ports; after they republish, they are found again there.
Every step goes through real processes, real UDP sockets and the control API.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from daemons import Daemon, start_daemon

from peerline.app.control_client import call
from peerline.app.paths import CONTROL_SOCKET_NAME

PHONES = 12


def control(d: Daemon, cmd: str, args: dict[str, Any] | None = None, timeout: float = 30) -> Any:
    return call(d.data / CONTROL_SOCKET_NAME, cmd, args, timeout=timeout)


def wait_until(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def send_all(pairs: list[tuple[Daemon, Daemon]], text: str) -> list[Any]:
    """Send one message per (from, to) pair, all at once (as many people would)."""

    def send(pair: tuple[Daemon, Daemon]) -> Any:
        a, b = pair
        return control(a, "msg.send", {"number": b.number, "text": text, "wait_s": 30}, 60)

    with ThreadPoolExecutor(max_workers=12) as pool:
        return list(pool.map(send, pairs))


def undelivered(a: Daemon, b: Daemon, sent: Any) -> str:
    """What a failed delivery leaves for whoever reads the CI log: both phones' last log lines."""
    tails = []
    for d in (a, b):
        log = d.data / "daemon.log"
        lines = log.read_text(errors="replace").splitlines()[-25:] if log.exists() else []
        tails.append(f"--- {d.number} at port {d.port}:\n" + "\n".join(lines))
    return f"{a.number} -> {b.number}: {sent}\n" + "\n".join(tails)


def found_port(caller: Daemon, callee: Daemon) -> int | None:
    res = control(caller, "lookup", {"number": callee.number})
    if not res["found"]:
        return None
    (record,) = res["records"]
    assert record["public_key"] == callee.public_key
    ports = {a["port"] for a in record["addresses"]}
    return callee.port if callee.port in ports else min(ports)


def test_twelve_phones_with_one_seed_each_find_and_message_each_other(tmp_path: Path) -> None:
    phones: list[Daemon] = []
    try:
        phones.append(start_daemon(tmp_path / "p0", "--no-lan"))
        for i in range(1, PHONES):
            seed = phones[(i * 5) % i]  # each knows exactly one earlier phone
            phones.append(start_daemon(tmp_path / f"p{i}", "--no-lan", "--seed", seed.addr))

        def everyone_joined() -> bool:
            return all(control(p, "status")["overlay"]["joined"] for p in phones)

        wait_until(everyone_joined, 30, "every phone to join the overlay")

        # Every phone resolves every other phone's number: the verified record, right port.
        def all_resolve() -> bool:
            return all(found_port(a, b) == b.port for a in phones for b in phones if a is not b)

        wait_until(all_resolve, 60, "every number to resolve from every phone")
        lookup = control(phones[3], "lookup", {"number": phones[9].number})
        assert lookup["hops"] >= 0 and lookup["queries"] >= 1 and lookup["elapsed_ms"] >= 0

        # And exchanges a message with it, by number only: no `peer add` anywhere.
        pairs = [(a, b) for a in phones for b in phones if a is not b]
        for (a, b), sent in zip(pairs, send_all(pairs, "hello"), strict=True):
            assert sent["status"] == "delivered", undelivered(a, b, sent)
        for b in phones:
            received = [
                m for m in control(b, "msg.list", {"limit": 1000}) if m["direction"] == "in"
            ]
            assert len(received) == PHONES - 1

        # A third restart on new ports (same identities and databases): found there again.
        moved = phones[::3]
        for d in moved:
            old_port = d.port
            d.stop()
            fresh = start_daemon(d.data, "--no-lan")  # port 0: a new free port; no seed at all
            assert fresh.port != old_port
            phones[phones.index(d)] = fresh
        moved_now = phones[::3]
        stayed = [p for p in phones if p not in moved_now]

        def moved_found() -> bool:
            return all(found_port(a, b) == b.port for a in stayed for b in moved_now)

        wait_until(moved_found, 60, "restarted phones to be found at their new ports")
        pairs = [(a, b) for a in stayed[:3] for b in moved_now]
        for (a, b), sent in zip(pairs, send_all(pairs, "found you again"), strict=True):
            assert sent["status"] == "delivered", undelivered(a, b, sent)
        for d in moved_now:
            status = control(d, "status")
            assert status["overlay"]["joined"], "rejoined from its peer cache, with no seed"
    finally:
        for d in phones:
            if d.proc.poll() is None:
                d.stop(timeout=5)
