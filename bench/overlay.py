"""Overlay at scale: the real overlay code, thousands of phones, in the simulator.

Prints one JSON object with lookup success, hops, latency, messages per lookup, background
upkeep bytes per phone per second, and forged records accepted (must be 0):

    .venv/bin/python bench/overlay.py --nodes 10000 --churn-per-hour 20 --malicious 0.2 \\
        --lookups 2000 --seed 1

``--churn-per-hour`` is a percentage of the population replaced per hour; ``--malicious`` the
fraction of phones that drop, lie and collude (``peerline.sim.adversary``). Round-trip times are
40-200 ms. The run: a warm-started population (``peerline.sim.overlay_world``), ``--settle-s``
of churn and upkeep, an upkeep window of ``--upkeep-s`` with churn but no measured lookups (its
traffic gives ``bytes_per_node_per_s``: bytes sent plus received per online phone per second,
joins and republishing included), then the lookups spread over ``--lookup-window-s``, each from
a random honest phone to a random honest phone online for at least ``--min-age-s``.
"""

import argparse
import json
import resource
import statistics
import sys
import time

from peerline.proto.overlay.overlay import OverlayConfig
from peerline.sim.overlay_world import OverlayWorld


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--churn-per-hour", type=float, default=20.0, help="percent per hour")
    parser.add_argument("--malicious", type=float, default=0.0, help="fraction in [0, 0.5)")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--loss", type=float, default=0.0, help="datagram loss probability")
    parser.add_argument("--settle-s", type=float, help="default 300 s (30 s above 20000 nodes)")
    parser.add_argument("--upkeep-s", type=float, help="default 600 s (60 s above 20000 nodes)")
    parser.add_argument(
        "--lookup-window-s", type=float, help="default 120 s (30 s above 20000 nodes)"
    )
    parser.add_argument("--min-age-s", type=float, help="default 60 s (20 s above 20000 nodes)")
    args = parser.parse_args(argv)
    # Simulated time costs wall time in proportion to the population: a 100 000-phone run gets
    # shorter windows so that it finishes in minutes (the figures say which were used).
    big = args.nodes > 20_000
    for name, normal, short in (
        ("settle_s", 300.0, 30.0),
        ("upkeep_s", 600.0, 60.0),
        ("lookup_window_s", 120.0, 30.0),
        ("min_age_s", 60.0, 20.0),
    ):
        if getattr(args, name) is None:
            setattr(args, name, short if big else normal)
    if not 0 <= args.malicious < 0.5 or args.nodes < 20 or args.churn_per_hour < 0:
        parser.error("need --nodes >= 20, --malicious in [0, 0.5), --churn-per-hour >= 0")

    wall0 = time.perf_counter()
    world = OverlayWorld(
        seed=args.seed, config=OverlayConfig(), malicious=args.malicious, loss=args.loss
    )
    world.populate(args.nodes, warm=True)
    sim = world.sim
    churn = args.churn_per_hour / 100.0
    end = args.settle_s + args.upkeep_s + args.lookup_window_s + 15.0
    world.schedule_churn(churn, until=end)
    sim.run_until(args.settle_s)
    world.collect()

    stats = sim.network.stats
    bytes0 = stats.bytes_sent + stats.bytes_delivered
    sim.run_until(args.settle_s + args.upkeep_s)
    online = sum(1 for p in world.phones if p.online)
    upkeep_bytes = stats.bytes_sent + stats.bytes_delivered - bytes0
    bytes_per_node_per_s = upkeep_bytes / online / args.upkeep_s
    world.collect()

    start = sim.now
    world.schedule_lookups(args.lookups, start, args.lookup_window_s, args.min_age_s)
    sim.run_until(end)
    world.collect()

    results = world.results
    ok = [r for r in results if r.ok]
    hops = [float(r.hops) for r in ok]
    latency_ms = [r.latency_s * 1000.0 for r in ok]
    forged_rejected = sum(
        p.overlay.counters.records_rejected_binding + p.overlay.counters.records_rejected_signature
        for p in world.phones
        if not p.malicious
    )
    out = {
        "nodes": args.nodes,
        "churn_per_hour_pct": args.churn_per_hour,
        "malicious": args.malicious,
        "lookups": args.lookups,
        "seed": args.seed,
        "lookup_success": round(len(ok) / max(1, args.lookups), 5),
        "lookups_unfinished": world.unanswered(),
        "hops_median": statistics.median(hops) if hops else None,
        "hops_p99": _percentile(hops, 0.99),
        "latency_ms_p50": round(_percentile(latency_ms, 0.50), 1),
        "latency_ms_p99": round(_percentile(latency_ms, 0.99), 1),
        "msgs_per_lookup": round(statistics.mean(r.messages for r in results), 1)
        if results
        else None,
        "bytes_per_node_per_s": round(bytes_per_node_per_s, 1),
        "forged_records_accepted": sum(r.forged for r in results),
        "forged_records_rejected": forged_rejected,
        "phones_joined_during_run": len(world.phones) - args.nodes,
        "simulated_s": round(sim.now, 1),
        "events": sim.events,
        "wall_s": round(time.perf_counter() - wall0, 1),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rtt_ms": [40, 200],
        "windows_s": {
            "settle": args.settle_s,
            "upkeep": args.upkeep_s,
            "lookups": args.lookup_window_s,
        },
        "start": "warm",
        "number_kdf": "blake2b stand-in for argon2id (see peerline.sim.numbers)",
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
