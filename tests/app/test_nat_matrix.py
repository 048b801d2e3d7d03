"""The NAT matrix with real phones: every pair of the plan dials by number and talks both ways.

For each of the 21 unordered pairs of netlab.plan.KINDS, a fresh lab holds the two phones and
a public supernode (the only seed); the first phone of the pair dials the second by number,
then a message goes each way (tests/app/nat_matrix.py does the work). Every pair must connect,
on the path docs/nat.md §5 plans ("direct" or, through a relay, "relayed"), and both ends
must agree on the path afterwards.

No link delays here: they cost a relay process per link and seconds per pair, and the paths
do not depend on them; ``bench/nat.py`` runs the same pairs with 20-60 ms per link and reports
the times. Each pair takes 4-6 s (the daemons' start and overlay join are most of it, and
their exit), the 21 about 2 minutes.
"""

import random
from pathlib import Path

import pytest
from nat_matrix import pair_id, pairs, run_pair

from netlab import Lab

pytestmark = pytest.mark.netns

#: A dial slower than this fails the pair (the benchmark's goal is 3 s at most).
DIAL_TIMEOUT_S = 10.0


@pytest.mark.parametrize(
    ("kind_a", "kind_b"), [pytest.param(a, b, id=pair_id(a, b)) for a, b in pairs()]
)
def test_pair_connects_on_the_planned_path(
    lab: Lab, tmp_path: Path, kind_a: str, kind_b: str
) -> None:
    result = run_pair(
        lab,
        tmp_path,
        kind_a,
        kind_b,
        delays=None,
        rng=random.Random(pair_id(kind_a, kind_b)),
        dial_timeout_s=DIAL_TIMEOUT_S,
    )
    assert result.connected, result.detail
    assert result.path == result.expected, (result.row(), result.detail)
    assert result.delivered_both_ways, (result.messages, result.detail)
    assert result.caller_id_ok, result.detail
    assert result.callee_path == result.final_path, (result.row(), result.detail)
    assert not result.problems, result.detail
    # The SAS the dial showed is the one both phones keep (the callee answers the caller's
    # initiation that came with the introduction: no second handshake, no glare).
    assert result.sas_ok, (result.row(), result.detail)
