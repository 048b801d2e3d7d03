"""One iterative lookup (proto.overlay.lookup): disjoint paths, slots, and convergence.

The convergence tests drive a ``Lookup`` against a synthetic network: every node knows, for
each of its buckets, up to ``K`` of the nodes in it (a full Kademlia table), and answers a
query with the ``K`` nodes it knows nearest the target, all computed by brute force.
"""

import functools
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerline.proto.overlay.ids import ID_BITS, ID_SIZE
from peerline.proto.overlay.lookup import Candidate, Lookup, State
from peerline.sim.rng import SeededRng
from peerline.wire.overlay import Contact

K = 8
U160 = 2**ID_BITS - 1
TARGET = bytes(ID_SIZE)


def contact(ident: int) -> Contact:
    return Contact(ident.to_bytes(ID_SIZE, "big") + bytes(12), ("10.0.0.1", 1 + ident % 60000))


def pairs(*ids: int) -> list[tuple[Contact, int]]:
    return [(contact(i), i) for i in ids]


def lookup(
    first: list[int], *, target: int = 0, k: int = K, alpha: int = 3, paths: int = 1
) -> Lookup:
    return Lookup(
        lookup_id=1,
        target=target.to_bytes(ID_SIZE, "big"),
        first=pairs(*first),
        k=k,
        alpha=alpha,
        paths=paths,
        started=0.0,
    )


def ids_of(cands: list[Candidate]) -> list[int]:
    return [c.id for c in cands]


def state(cand: Candidate | None) -> State | None:
    """A candidate's state, read through a call so mypy does not narrow it across steps."""
    return None if cand is None else cand.state


# -- the synthetic network ----------------------------------------------------------------------
class Network:
    def __init__(self, size: int, seed: int) -> None:
        rng = SeededRng(seed)
        self.ids = sorted({int.from_bytes(rng.random_bytes(ID_SIZE), "big") for _ in range(size)})
        order = sorted(self.ids, key=lambda _: rng.random())
        self.known: dict[int, list[int]] = {}
        for node in self.ids:
            buckets: dict[int, list[int]] = {}
            for other in order:
                if other != node:
                    bucket = buckets.setdefault((node ^ other).bit_length(), [])
                    if len(bucket) < K:
                        bucket.append(other)
            self.known[node] = [i for b in buckets.values() for i in b]

    def answer(self, node: int, target: int) -> list[int]:
        return sorted(self.known[node], key=lambda i: i ^ target)[:K]

    def truth(self, target: int, count: int = K) -> list[int]:
        return sorted(self.ids, key=lambda i: i ^ target)[:count]


@functools.cache
def network() -> Network:
    return Network(300, seed=7)


def drive(
    lk: Lookup,
    net: Network,
    *,
    dead: frozenset[int] = frozenset(),
    liars: Callable[[int, int], list[int] | None] | None = None,
) -> Counter[int]:
    """Answer every query at once until the lookup stops asking; returns queries per node."""
    asked: Counter[int] = Counter()
    path_of: dict[int, int] = {}
    for _ in range(10_000):
        picked = lk.next_queries()
        if not picked:
            break
        for cand in picked:
            asked[cand.id] += 1
            assert cand.state is State.WAITING
            assert path_of.setdefault(cand.id, cand.path) == cand.path
            if cand.id in dead:
                lk.failed(cand)
                continue
            found = liars(cand.id, lk.target_int) if liars else None
            if found is None:
                found = net.answer(cand.id, lk.target_int)
            lk.answered(cand, pairs(*found))
    assert lk.finished()
    assert lk.outstanding() == 0
    return asked


def paths_hold_disjoint_candidates(lk: Lookup) -> None:
    seen: set[int] = set()
    for p, path in enumerate(lk._paths):
        ids = [c.id for c in path.candidates]
        assert not seen & set(ids)
        seen |= set(ids)
        assert all(c.path == p for c in path.candidates)
        assert [c.distance for c in path.candidates] == sorted(c.distance for c in path.candidates)


targets = st.integers(0, U160)


@settings(max_examples=60, deadline=None)
@given(
    targets,
    st.integers(1, 3),
    st.integers(1, 3),
    st.lists(st.integers(0, 299), min_size=1, max_size=K, unique=True),
)
def test_lookup_converges_to_the_true_k_closest(
    target: int, alpha: int, paths: int, first: list[int]
) -> None:
    net = network()
    lk = lookup([net.ids[i] for i in first], target=target, alpha=alpha, paths=paths)
    asked = drive(lk, net)
    assert ids_of(lk.closest_answered(K)) == net.truth(target)
    assert max(asked.values()) == 1  # nobody is asked twice
    assert lk.queries == sum(asked.values()) == lk.replies
    paths_hold_disjoint_candidates(lk)


@settings(max_examples=30, deadline=None)
@given(targets, st.data())
def test_lookup_finds_every_live_node_among_the_k_closest(target: int, data: st.DataObject) -> None:
    """Dead nodes stay in others' tables (and answers); the lookup routes around them."""
    net = network()
    truth = net.truth(target)
    dead = frozenset(data.draw(st.lists(st.sampled_from(truth), max_size=4)))
    first = data.draw(st.lists(st.sampled_from(net.ids), min_size=1, max_size=K, unique=True))
    first.append(data.draw(st.sampled_from([i for i in net.ids if i not in dead])))
    lk = lookup(first, target=target, paths=data.draw(st.integers(1, 3)))
    asked = drive(lk, net, dead=dead)
    got = ids_of(lk.closest_answered(K))
    live = [i for i in truth if i not in dead]
    assert not dead & set(got)
    assert got[: len(live)] == live
    assert max(asked.values()) == 1
    for i in dead & set(asked):
        cand = lk.candidate(i)
        assert cand is not None and cand.state is State.FAILED


def test_a_path_fed_by_liars_does_not_reach_the_others() -> None:
    """Liars answer only with each other; the honest path still finds the true closest."""
    net = network()
    target = 12345
    truth = net.truth(target)
    liar_ids = [i for i in net.ids if i not in net.truth(target, 40)][:12]
    honest_start = next(i for i in reversed(net.ids) if i not in liar_ids)

    def lie(node: int, _target: int) -> list[int] | None:
        return [i for i in liar_ids if i != node][:K] if node in liar_ids else None

    # Liars' ids are nearer the target than the honest start, so they are dealt to path 0.
    first = sorted([*liar_ids[:1], honest_start], key=lambda i: i ^ target)
    lk = lookup(first, target=target, paths=2)
    liar_path = lk.candidate(liar_ids[0])
    assert liar_path is not None
    drive(lk, net, liars=lie)
    paths_hold_disjoint_candidates(lk)
    for i in truth:  # every true-closest node was found, none through the liars' path
        cand = lk.candidate(i)
        assert cand is not None and cand.state is State.DONE
        assert cand.path != liar_path.path


# -- slots, states and bookkeeping ---------------------------------------------------------------
def test_first_contacts_are_dealt_round_robin_by_distance() -> None:
    lk = lookup([5, 1, 4, 2, 3, 6], paths=3)
    assert [ids_of(p.candidates) for p in lk._paths] == [[1, 4], [2, 5], [3, 6]]
    assert all(c.depth == 1 for c in lk._known.values())


def test_duplicate_first_contacts_are_kept_once() -> None:
    lk = lookup([1, 1, 2], paths=2)
    assert sorted(ids_of([c for p in lk._paths for c in p.candidates])) == [1, 2]


def test_paths_is_at_least_one() -> None:
    lk = lookup([1, 2], paths=0)
    assert len(lk._paths) == 1


def test_each_path_keeps_alpha_queries_in_flight() -> None:
    lk = lookup(list(range(1, 13)), alpha=2, paths=2)
    first = lk.next_queries()
    assert ids_of(first) == [1, 3, 2, 4]
    assert lk.next_queries() == []
    assert lk.queries == 4 and lk.outstanding() == 4


def test_slow_frees_a_slot_but_a_late_answer_still_counts() -> None:
    lk = lookup([1, 2, 3], alpha=1)
    (c1,) = lk.next_queries()
    assert lk.next_queries() == []
    lk.slow(c1)
    assert state(c1) is State.SLOW
    (c2,) = lk.next_queries()
    assert c2.id == 2
    lk.answered(c1, pairs(9))
    assert state(c1) is State.DONE and lk.replies == 1
    assert lk.candidate(9) is not None
    assert lk.outstanding() == 1


def test_slow_only_affects_waiting_candidates() -> None:
    lk = lookup([1, 2], alpha=1)
    (c1,) = lk.next_queries()
    lk.answered(c1, [])
    lk.slow(c1)
    assert state(c1) is State.DONE
    c2 = lk.candidate(2)
    assert c2 is not None
    lk.slow(c2)  # not asked yet
    assert state(c2) is State.NEW


def test_failed_candidates_free_their_slot_and_are_excluded() -> None:
    lk = lookup([1, 2, 3], alpha=1, k=2)
    (c1,) = lk.next_queries()
    lk.failed(c1)
    assert state(c1) is State.FAILED
    (c2,) = lk.next_queries()
    lk.answered(c2, [])
    (c3,) = lk.next_queries()
    lk.answered(c3, [])
    assert lk.finished()
    assert ids_of(lk.closest_answered(5)) == [2, 3]
    lk.answered(c1, [])  # a failed node answers after all: it counts
    assert ids_of(lk.closest_answered(5)) == [1, 2, 3]


def test_failed_does_not_undo_an_answer() -> None:
    lk = lookup([1])
    (c1,) = lk.next_queries()
    lk.answered(c1, [])
    lk.failed(c1)
    assert state(c1) is State.DONE


def test_a_slow_candidate_can_still_fail() -> None:
    lk = lookup([1])
    (c1,) = lk.next_queries()
    lk.slow(c1)
    lk.failed(c1)
    assert state(c1) is State.FAILED
    assert lk.finished()


def test_finished_needs_the_k_nearest_live_candidates_answered() -> None:
    lk = lookup([1, 2, 3, 4], k=2, alpha=1)
    assert not lk.finished()
    c1 = lk.next_queries()[0]
    lk.answered(c1, [])
    assert not lk.finished()
    c2 = lk.next_queries()[0]
    lk.slow(c2)
    assert not lk.finished()  # slow is not an answer
    lk.answered(c2, [])
    assert lk.finished()  # 3 and 4 were never needed
    assert lk.next_queries() == []
    assert state(lk.candidate(3)) is State.NEW


def test_a_nearer_node_learned_late_reopens_the_lookup() -> None:
    lk = lookup([4, 5], k=2, alpha=2)
    for c in lk.next_queries():
        lk.answered(c, [])
    assert lk.finished()
    c4 = lk.candidate(4)
    assert c4 is not None
    lk.answered(c4, pairs(1))  # a repeat answer is ignored...
    assert lk.candidate(1) is None and lk.finished()
    lk2 = lookup([4, 5], k=2, alpha=1)
    (c,) = lk2.next_queries()
    lk2.answered(c, pairs(1))  # ...but a first one that names a nearer node is followed
    assert not lk2.finished()
    assert ids_of(lk2.next_queries()) == [1]


def test_empty_lookup_is_finished_at_once() -> None:
    lk = lookup([], paths=3)
    assert lk.finished()
    assert lk.next_queries() == []
    assert lk.closest_answered(K) == []


def test_only_the_k_nearest_live_candidates_are_queried() -> None:
    lk = lookup(list(range(1, 10)), k=3, alpha=10)
    assert ids_of(lk.next_queries()) == [1, 2, 3]
    c2 = lk.candidate(2)
    assert c2 is not None
    lk.failed(c2)
    assert ids_of(lk.next_queries()) == [4]


def test_answered_contacts_join_the_answering_path_one_level_deeper() -> None:
    lk = lookup([8, 9], paths=2)
    c8 = lk.candidate(8)
    assert c8 is not None
    lk.next_queries()
    lk.answered(c8, pairs(1, 9, 2))  # 9 already belongs to the other path
    for ident in (1, 2):
        cand = lk.candidate(ident)
        assert cand is not None and (cand.path, cand.depth) == (c8.path, 2)
    c9 = lk.candidate(9)
    assert c9 is not None and c9.path != c8.path and c9.depth == 1
    paths_hold_disjoint_candidates(lk)


@given(
    st.lists(st.integers(1, 200), min_size=1, max_size=30, unique=True),
    st.lists(st.lists(st.integers(1, 200), max_size=10), max_size=30),
    st.integers(1, 4),
)
def test_no_candidate_is_ever_on_two_paths_or_queried_twice(
    first: list[int], answers: list[list[int]], paths: int
) -> None:
    lk = lookup(first, k=4, alpha=2, paths=paths)
    asked: Counter[int] = Counter()
    answers = list(answers)
    while (picked := lk.next_queries()) and answers:
        for cand in picked:
            asked[cand.id] += 1
            lk.answered(cand, pairs(*(answers.pop() if answers else [])))
        paths_hold_disjoint_candidates(lk)
    assert not asked or max(asked.values()) == 1


def test_answering_twice_counts_once() -> None:
    lk = lookup([1])
    (c1,) = lk.next_queries()
    lk.answered(c1, pairs(2))
    lk.answered(c1, pairs(3))
    assert lk.replies == 1
    assert lk.candidate(3) is None


def test_closest_answered_is_sorted_over_all_paths_and_cut_to_count() -> None:
    lk = lookup([0b1000, 0b0100, 0b0010, 0b0001, 0b1100], target=0b0011, paths=3, alpha=5)
    for c in lk.next_queries():
        if c.id != 0b0001:
            lk.answered(c, [])
    got = lk.closest_answered(3)
    assert ids_of(got) == [0b0010, 0b0100, 0b1000]
    assert [c.distance for c in got] == sorted(c.distance for c in got)
    assert len({c.path for c in got}) > 1
    assert ids_of(lk.closest_answered(10)) == [0b0010, 0b0100, 0b1000, 0b1100]


def test_retry_asks_a_candidate_once_more_then_refuses() -> None:
    lk = lookup([1, 2], alpha=1)
    (c1,) = lk.next_queries()
    assert lk.retry(c1)
    assert c1.retried and state(c1) is State.NEW
    assert lk.next_queries() == [c1]
    assert lk.queries == 2
    assert not lk.retry(c1)
    assert state(c1) is State.WAITING
    lk.answered(c1, [])
    assert state(c1) is State.DONE


@pytest.mark.parametrize("paths", [1, 2, 3])
def test_candidates_remember_their_path_and_distance(paths: int) -> None:
    lk = lookup(list(range(1, 20)), target=7, paths=paths)
    for cand in lk._known.values():
        assert cand.distance == cand.id ^ 7
        assert 0 <= cand.path < paths
