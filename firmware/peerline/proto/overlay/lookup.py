"""One iterative lookup: which nodes to ask next, on disjoint paths, and when it is done.

Kademlia's lookup, hardened as in S/Kademlia (Baumgart and Mies, 2007): the first contacts are
dealt out to ``paths`` independent paths, and a node learned by one path is never queried by
another, so a path that runs into liars (who answer only with their colluders) cannot drag the
other paths with it. Each path keeps ``alpha`` queries in flight; a query that has not been
answered within its soft timeout stops holding a slot (a late answer still counts). A path is
done when its ``k`` nearest live candidates have all answered.

Pure state: the overlay sends the queries this object picks and reports what came back.
"""

from dataclasses import dataclass, field
from enum import Enum, IntEnum

from peerline.wire.overlay import Contact


class State(IntEnum):
    NEW = 0
    WAITING = 1
    SLOW = 2
    "Past its soft timeout: no longer holds a slot, but an answer is still welcome."
    DONE = 3
    FAILED = 4


class Happened(Enum):
    """What moves a candidate: the second key of ``TRANSITIONS``."""

    QUERIED = "queried"
    SOFT_TIMEOUT = "soft_timeout"
    ANSWERED = "answered"
    RETRY = "retry"
    "It cut its answer short before we held its token: ask once more."
    FAILED = "failed"
    "No answer by the hard timeout (or the query could not be sent)."


TRANSITIONS: dict[tuple[State, Happened], State] = {
    (State.NEW, Happened.QUERIED): State.WAITING,
    (State.WAITING, Happened.SOFT_TIMEOUT): State.SLOW,
    (State.WAITING, Happened.ANSWERED): State.DONE,
    (State.SLOW, Happened.ANSWERED): State.DONE,
    (State.NEW, Happened.ANSWERED): State.DONE,
    (State.FAILED, Happened.ANSWERED): State.DONE,
    (State.WAITING, Happened.RETRY): State.NEW,
    (State.SLOW, Happened.RETRY): State.NEW,
    (State.NEW, Happened.FAILED): State.FAILED,
    (State.WAITING, Happened.FAILED): State.FAILED,
    (State.SLOW, Happened.FAILED): State.FAILED,
}
"""(state, what happened) -> the next state of one candidate. A pair not in the table changes
nothing (a second answer, a timeout after the answer): remote timing, not a bug. A retried
candidate's earlier query may still answer (NEW, ANSWERED), and a node given up on that answers
after all counts (FAILED, ANSWERED)."""


def _move(cand: "Candidate", happened: Happened) -> bool:
    """Move ``cand`` as ``TRANSITIONS`` says; False (unchanged) if the pair is not there."""
    nxt = TRANSITIONS.get((cand.state, happened))
    if nxt is None:
        return False
    cand.state = nxt
    return True


@dataclass(slots=True, eq=False)
class Candidate:
    contact: Contact
    id: int
    distance: int
    path: int
    depth: int
    "1 for the lookup's first contacts; one more than the node that told us about it."
    state: State = State.NEW
    retried: bool = False


@dataclass(slots=True)
class _Path:
    candidates: list[Candidate] = field(default_factory=list)
    "Sorted by distance to the target, nearest first."


class Lookup:
    __slots__ = (
        "_known",
        "_paths",
        "alpha",
        "k",
        "lookup_id",
        "queries",
        "replies",
        "started",
        "target",
        "target_int",
    )

    def __init__(
        self,
        *,
        lookup_id: int,
        target: bytes,
        first: list[tuple[Contact, int]],
        k: int,
        alpha: int,
        paths: int,
        started: float,
    ) -> None:
        self.lookup_id = lookup_id
        self.target = target
        self.target_int = int.from_bytes(target, "big")
        self.k = k
        self.alpha = alpha
        self.started = started
        self.queries = 0
        self.replies = 0
        self._paths = [_Path() for _ in range(max(1, paths))]
        self._known: dict[int, Candidate] = {}
        ordered = sorted(first, key=lambda c: c[1] ^ self.target_int)
        for i, (contact, ident) in enumerate(ordered):
            self._add(contact, ident, i % len(self._paths), depth=1)

    def _add(self, contact: Contact, ident: int, path: int, depth: int) -> None:
        if ident in self._known:
            return
        cand = Candidate(contact, ident, ident ^ self.target_int, path, depth)
        self._known[ident] = cand
        lst = self._paths[path].candidates
        # Insertion keeps the list sorted; lists stay short (tens of entries).
        i = len(lst)
        while i > 0 and lst[i - 1].distance > cand.distance:
            i -= 1
        lst.insert(i, cand)

    def candidate(self, ident: int) -> Candidate | None:
        return self._known.get(ident)

    def next_queries(self) -> list[Candidate]:
        """Candidates to query now (marked WAITING); empty when nothing is due."""
        picked: list[Candidate] = []
        for path in self._paths:
            in_flight = sum(1 for c in path.candidates if c.state is State.WAITING)
            live = 0
            for cand in path.candidates:
                if in_flight >= self.alpha or live >= self.k:
                    break
                if cand.state is State.FAILED:
                    continue
                live += 1
                if cand.state is State.NEW:
                    _move(cand, Happened.QUERIED)
                    in_flight += 1
                    picked.append(cand)
        self.queries += len(picked)
        return picked

    def answered(self, cand: Candidate, contacts: list[tuple[Contact, int]]) -> None:
        """``cand`` answered with ``contacts`` (already authenticated as coming from it)."""
        if not _move(cand, Happened.ANSWERED):
            return
        self.replies += 1
        for contact, ident in contacts:
            self._add(contact, ident, cand.path, cand.depth + 1)

    def retry(self, cand: Candidate) -> bool:
        """Ask ``cand`` once more (it truncated its answer before we held its token)."""
        if cand.retried or not _move(cand, Happened.RETRY):
            return False
        cand.retried = True
        return True

    def slow(self, cand: Candidate) -> None:
        _move(cand, Happened.SOFT_TIMEOUT)

    def failed(self, cand: Candidate) -> None:
        _move(cand, Happened.FAILED)

    def outstanding(self) -> int:
        return sum(1 for c in self._known.values() if c.state in (State.WAITING, State.SLOW))

    def finished(self) -> bool:
        """Every path's ``k`` nearest non-failed candidates have answered."""
        for path in self._paths:
            live = 0
            for cand in path.candidates:
                if cand.state is State.FAILED:
                    continue
                if cand.state is not State.DONE:
                    return False
                live += 1
                if live >= self.k:
                    break
        return True

    def closest_answered(self, count: int) -> list[Candidate]:
        """The ``count`` nearest nodes that answered, over all paths: a lookup's result."""
        done = [c for c in self._known.values() if c.state is State.DONE]
        done.sort(key=lambda c: c.distance)
        return done[:count]
