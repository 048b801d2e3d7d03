"""NAT matrix: every pair of NAT situations dials by number through a public supernode.

Needs root (network namespaces, nftables). From the repository root::

    .venv/bin/python bench/nat.py [--seed 1] [--pairs public-symmetric,symmetric-symmetric]
        [--no-delay | --delay-ms 20-60 --delay-scope all|internet]

For each of the 21 unordered pairs of {public, full-cone, address-restricted, port-restricted,
symmetric, double-nat} (tests/netlab/plan.py; double NAT is a port-restricted home NAT behind a
symmetric carrier NAT) it builds a fresh lab (tests/netlab): the two phones and one public
supernode, the only seed. Every link gets a delay drawn uniformly from ``--delay-ms``, each
way: with ``--delay-scope internet`` (the default) the ports on the public switch, i.e. each
site's link to the internet (one per phone's site and the seed), so any two parties are 40-120
ms apart one way, while a phone's LAN link and a carrier's internal link are as fast as in
life; with ``all`` every host's and router's port on its switch too (a phone behind one NAT is
two delayed links from the public switch, behind double NAT three): a harsher lab. Once the
NATted phones are clients with a relay and the callee's record is visible, the first phone of
the pair dials the second by number (``dial``: lookup, introduction, punch or relay,
handshake); ``connect_ms`` is that command's wall time. Then a message each way. ``--pairs``
takes ids like ``port-double``; ``double-port`` dials the other way.

Prints one JSON line per pair, ``{"a", "b", "connected", "path", "connect_ms", ...}``, as it
goes, and a summary line last: ``{"pairs", "connected", "direct", "relayed",
"connect_ms_p50", "connect_ms_max", "expected_path_mismatches", ...}``. A failed pair's daemon
logs go to stderr. The goal (the NAT issue): all connect, p50 <= 500 ms, max <= 3000 ms.
Every lab is deleted after its pair, also on Ctrl-C or SIGTERM.
"""

import argparse
import json
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "app")]

from nat_matrix import DELAY_SCOPES, PairResult, pair_id, pairs, parse_pair_id, run_pair  # noqa: E402

from netlab import Lab, LabUnavailable  # noqa: E402

GOAL_P50_MS = 500.0
GOAL_MAX_MS = 3000.0


def _delay_range(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    low, high = int(lo), int(hi or lo)
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError("want LO-HI milliseconds, 0 <= LO <= HI")
    return low, high


def _run_one(
    kind_a: str, kind_b: str, delays: tuple[int, int] | None, scope: str, seed: int
) -> PairResult:
    """One pair in its own lab and temporary directory, both gone when it returns."""
    rng = random.Random(f"{seed}:{kind_a}:{kind_b}")  # a pair's delays do not depend on --pairs
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="peerline-nat-") as tmp:
        try:
            return run_pair(
                lab, Path(tmp), kind_a, kind_b, delays=delays, rng=rng, delay_scope=scope
            )
        except Exception as exc:  # a lab that could not be built: report it, go on
            return PairResult(
                a=kind_a,
                b=kind_b,
                connected=False,
                path=None,
                connect_ms=None,
                detail=f"{type(exc).__name__}: {exc}",
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="draws the link delays")
    parser.add_argument(
        "--pairs", help="comma-separated pair ids, e.g. public-symmetric,port-double (default all)"
    )
    parser.add_argument("--delay-ms", type=_delay_range, default=(20, 60), help="LO-HI per link")
    parser.add_argument("--no-delay", action="store_true", help="no link delays")
    parser.add_argument(
        "--delay-scope",
        choices=DELAY_SCOPES,
        default="internet",
        help="only each site's link to the internet, the public switch (default), or all"
        " links, LAN and carrier links too",
    )
    args = parser.parse_args(argv)
    try:
        chosen = (
            [parse_pair_id(p.strip()) for p in args.pairs.split(",") if p.strip()]
            if args.pairs
            else pairs()
        )
    except ValueError as exc:
        parser.error(str(exc))
    delays = None if args.no_delay else args.delay_ms

    # SIGTERM unwinds like Ctrl-C (the lab's own handler deletes the namespaces first, then
    # calls this one), so the temporary directories go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    wall0 = time.perf_counter()
    results: list[PairResult] = []
    interrupted = False
    try:
        for kind_a, kind_b in chosen:
            try:
                result = _run_one(kind_a, kind_b, delays, args.delay_scope, args.seed)
            except LabUnavailable as exc:
                print(f"bench/nat.py: the network lab is unavailable: {exc}", file=sys.stderr)
                return 2
            results.append(result)
            row = result.row()
            row["delays_ms"] = result.delays_ms
            if result.detail:
                row["problem"] = result.detail.splitlines()[0]
                print(f"=== {pair_id(kind_a, kind_b)}: {result.detail}", file=sys.stderr)
            print(json.dumps(row), flush=True)
    except KeyboardInterrupt:  # the lab of the pair in progress is gone already
        interrupted = True
        print("bench/nat.py: interrupted; summary of the pairs done", file=sys.stderr)

    times = [r.connect_ms for r in results if r.connected and r.connect_ms is not None]
    p50 = round(statistics.median(times), 1) if times else None
    worst = max(times) if times else None
    summary = {
        "pairs": len(results),
        "connected": sum(r.connected for r in results),
        "direct": sum(r.path == "direct" for r in results),
        "relayed": sum(r.path == "relayed" for r in results),
        "connect_ms_p50": p50,
        "connect_ms_max": worst,
        "expected_path_mismatches": [
            pair_id(r.a, r.b) for r in results if r.connected and r.path != r.expected
        ],
        "not_connected": [pair_id(r.a, r.b) for r in results if not r.connected],
        "sas_changed_after_dial": [pair_id(r.a, r.b) for r in results if r.sas_ok is False],
        "messages_failed": [
            pair_id(r.a, r.b) for r in results if r.connected and not r.delivered_both_ways
        ],
        "goal_met": bool(
            results
            and all(r.connected for r in results)
            and p50 is not None
            and worst is not None
            and p50 <= GOAL_P50_MS
            and worst <= GOAL_MAX_MS
        ),
        "delay_ms": None if delays is None else list(delays),
        "delay_scope": None if delays is None else args.delay_scope,
        "seed": args.seed,
        "wall_s": round(time.perf_counter() - wall0, 1),
    }
    if interrupted:
        summary["interrupted"] = True
    print(json.dumps(summary), flush=True)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
