"""Simulator throughput: N echo nodes each pinging a random other node once a second.

Measures the engine, not a protocol: the nodes are as cheap as a sans-I/O endpoint can be, so
events per second here is the ceiling for overlay scenarios. Prints one JSON object:

    .venv/bin/python bench/sim_throughput.py [--nodes 10000] [--seconds 60] [--no-digest]
"""

import argparse
import json
import resource
import sys
import time

from peerline.ports import Rng
from peerline.sim import LinkProfile, Network, Simulator
from peerline.types import Addr


class PingEcho:
    """Pings a random peer every ``interval`` seconds and answers every ping with a pong."""

    __slots__ = ("_interval", "_next", "_out", "_peers", "_rng", "pongs")

    def __init__(self, peers: list[Addr], rng: Rng, *, interval: float) -> None:
        self._peers = peers
        self._rng = rng
        self._interval = interval
        self._next = rng.random() * interval  # spread the nodes' phases over one interval
        self._out: list[tuple[bytes, Addr]] = []
        self.pongs = 0

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        if data[:1] == b"P":
            self._out.append((b"p" + data[1:], addr))
        else:
            self.pongs += 1

    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]:
        out = self._out
        if out:
            self._out = []
        return out

    def get_timer(self) -> float | None:
        return self._next

    def handle_timer(self, *, now: float) -> None:
        peers = self._peers
        self._out.append((b"P" + bytes(63), peers[int(self._rng.random() * len(peers))]))
        self._next += self._interval


def main(argv: list[str] | None = None) -> int:
    """Build the population, run it, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-digest", action="store_true", help="turn the trace hash off")
    args = parser.parse_args(argv)

    network = Network(LinkProfile(latency_s=0.03, jitter_s=0.01, loss=0.01))
    sim = Simulator(args.seed, network, digest=not args.no_digest)
    addrs: list[Addr] = [
        (f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 4000) for i in range(args.nodes)
    ]
    nodes = [PingEcho(addrs, sim.node_rng(str(i)), interval=1.0) for i in range(args.nodes)]

    started = time.perf_counter()
    for addr, node in zip(addrs, nodes, strict=True):
        sim.add_node(addr, node)
    sim.run_until(args.seconds)
    wall = time.perf_counter() - started

    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    result = {
        "nodes": args.nodes,
        "events": sim.events,
        "events_per_s": round(sim.events / wall),
        "wall_s": round(wall, 3),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "sim_seconds": args.seconds,
        "digest": not args.no_digest,
        "delivered": network.stats.delivered,
        "dropped_loss": network.stats.dropped_loss,
        "pongs": sum(node.pongs for node in nodes),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
