"""Finding a phone by number: number -> key -> path, as deadlines and events (protocol.md §9.17).

``PeerFinder`` is the phone's policy for reaching someone it only knows by number, sans-I/O:

- **Resolving** (dial, message): a stored peer is used at once, after a thorough lookup moves
  it if it has no live session (it may have moved since); any other number is looked up
  quickly, and exactly one verified key (or the one the user chose) is pinned on first use.
  A lookup that failed while some queries went unanswered is run once more.
- **Rechecking**: a quick lookup ends at the first storers that agree, which may hold a moved
  phone's old record. A handshake to a phone just found that is still unanswered
  ``RECHECK_AFTER_S`` later is followed by a thorough lookup, and a newer record of the same
  key is followed to its address.
- **Relocating**: a peer that went silent (``PeerSilent``) is looked up thoroughly, and again
  ``RELOCATE_RETRY_S`` later while this phone still tries to reach it, up to
  ``RELOCATE_ATTEMPTS`` times; a record of the same key at a new address moves it there.

Inputs: ``resolve``/``lookup`` calls, ``on_lookup`` (the overlay's LookupCompleted/Failed),
``on_silent`` and ``handle_timer``. Outputs: ``next_event`` (``Found``, ``NotFound``,
``LookupDone``, and the phone events ``PeerSaved`` and ``PeerMoved``) and ``get_timer``.
"""

import enum
from collections import deque
from dataclasses import dataclass, field

from peerline.errors import InvalidKey, LocalProtocolError
from peerline.proto.identity import format_number
from peerline.proto.nat.relay import is_relayed
from peerline.proto.nat.traversal import Traversal
from peerline.proto.node import Node
from peerline.proto.overlay.events import LookupCompleted, LookupFailed
from peerline.proto.overlay.overlay import Overlay
from peerline.types import Addr
from peerline.wire.record import Record

from .candidates import pick_address
from .contacts import ContactBook, StoredPeer
from .events import PeerMoved, PeerSaved
from .numbers import NumberBook

RECHECK_AFTER_S = 3.0
"""A handshake to a phone just found by a quick lookup, still unanswered this long after, is
followed by a thorough lookup: the record may have been a stale copy."""
RELOCATE_ATTEMPTS = 3
RELOCATE_RETRY_S = 4.0
"""A silent peer is looked up again this long after a lookup that found it nowhere new (lost
queries, storers that missed its move), while this phone is still trying to reach it."""
LOOKUP_GUARD_S = 15.0
"""A lookup the overlay has not answered by then is given up here ('timeout'); the overlay's own
deadline (10 s) normally comes first."""
MAX_RECHECKS = 256
MAX_RELOCATIONS = 256


class Purpose(enum.Enum):
    RESOLVE = "resolve"
    "A number the user dials or messages, not stored: the answer pins a key."
    REFRESH = "refresh"
    "A stored peer without a live session: may move it; the answer is its stored key anyway."
    LOOKUP = "lookup"
    "Only the answer is wanted (``peerline lookup``)."
    RECHECK = "recheck"
    RELOCATE = "relocate"


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    request: int
    number: str
    public_key: bytes
    forward_to: str | None = None
    "The record's call forwarding target: where to call if this phone cannot be reached."


@dataclass(frozen=True, slots=True, kw_only=True)
class NotFound:
    request: int
    number: str
    code: str
    "unknown_number, number_conflict, unreachable, bad_record, busy or timeout."
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupDone:
    request: int
    number: str
    result: LookupCompleted | LookupFailed | None
    "None when the lookup could not run or finish (``error`` says why)."
    error: str = ""
    "'busy' (too many lookups) or 'timeout'; empty with a result."


FinderEvent = Found | NotFound | LookupDone | PeerSaved | PeerMoved


@dataclass(slots=True, eq=False)
class _Job:
    request: int
    purpose: Purpose
    number: str
    key: bytes | None
    "The chosen key: given by the user, stored, or the one rechecked / relocated."
    thorough: bool
    lookup_id: int | None = None
    guard_at: float | None = None
    retried: bool = False
    used_seq: int = 0
    "RECHECK: the sequence number of the record the handshake went to."
    attempt: int = 0
    "RELOCATE: lookups done so far."
    retry_at: float | None = None
    "RELOCATE: when to look again."
    done: bool = field(default=False)


class PeerFinder:
    """See module docstring. ``host`` is the phone's own host addresses, kept current by the
    core (an address of ours in a record is never dialled)."""

    def __init__(
        self,
        *,
        node: Node,
        overlay: Overlay,
        traversal: Traversal,
        contacts: ContactBook,
        numbers: NumberBook,
        host: list[Addr],
    ) -> None:
        self.node = node
        self.overlay = overlay
        self.traversal = traversal
        self.contacts = contacts
        self.numbers = numbers
        self.host = host
        self._events: deque[FinderEvent] = deque()
        self._requests = 0
        self._by_lookup: dict[int, _Job] = {}
        self._rechecks: dict[bytes, tuple[float, Record, str]] = {}
        "Key -> (when, the record used, number): handshakes to verify."
        self._relocating: dict[bytes, _Job] = {}

    # -- API ----------------------------------------------------------------------------------
    def resolve(self, number: str, key: bytes | None, *, now: float) -> int:
        """Find the key to use for ``number`` (``key``: the user's choice among colliding
        keys). The answer comes as ``Found`` or ``NotFound`` with the returned request id; the
        peer is then known to the node at its best address, and traversal is under way."""
        request = self._next()
        stored = self.contacts.by_number(number)
        if stored:
            chosen = self._choose_stored(request, number, key, stored)
            if chosen is None:
                return request
            live = self.node.live_path(chosen, now=now) is not None
            if live or not len(self.overlay.table):
                self._events.append(Found(request=request, number=number, public_key=chosen))
            else:
                job = _Job(request, Purpose.REFRESH, number, chosen, thorough=True)
                if not self._start(job, now):
                    self._events.append(Found(request=request, number=number, public_key=chosen))
            return request
        job = _Job(request, Purpose.RESOLVE, number, key, thorough=False)
        if not self._start(job, now):
            self._not_found(job, "busy", "too many lookups in progress")
        return request

    def lookup(self, number: str, *, now: float) -> int:
        """Look ``number`` up for its answer alone (stores nothing): ``LookupDone``."""
        request = self._next()
        job = _Job(request, Purpose.LOOKUP, number, None, thorough=False)
        if not self._start(job, now):
            self._events.append(
                LookupDone(request=request, number=number, result=None, error="busy")
            )
        return request

    def on_silent(self, key: bytes, *, now: float) -> None:
        """The node says ``key`` stopped answering: if the directory moved it, follow."""
        number = self.numbers.get(key)
        if number is None or not len(self.overlay.table) or key in self._relocating:
            return
        if len(self._relocating) >= MAX_RELOCATIONS:
            return
        job = _Job(self._next(), Purpose.RELOCATE, number, key, thorough=True)
        self._relocating[key] = job
        self._relocate_again(job, now)

    def on_lookup(self, event: LookupCompleted | LookupFailed, *, now: float) -> None:
        job = self._by_lookup.pop(event.lookup_id, None)
        if job is None or job.done:
            return
        job.lookup_id = job.guard_at = None
        if (
            isinstance(event, LookupFailed)
            and event.replies < event.queries
            and not job.retried
            and job.purpose in (Purpose.RESOLVE, Purpose.LOOKUP, Purpose.REFRESH)
        ):
            # Not found while some queries went unanswered: a lossy or busy network, not
            # necessarily an absent number. Once more.
            job.retried = True
            if self._start(job, now):
                return
        self._answer(job, event, now)

    def rechecking(self, key: bytes) -> bool:
        return key in self._rechecks

    def relocating(self, key: bytes) -> bool:
        return key in self._relocating

    # -- driver calls -------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        times = [t for t, _, _ in self._rechecks.values()]
        times += [j.guard_at for j in self._by_lookup.values() if j.guard_at is not None]
        times += [j.retry_at for j in self._relocating.values() if j.retry_at is not None]
        return min(times, default=None)

    def handle_timer(self, *, now: float) -> None:
        for job in [j for j in self._by_lookup.values() if j.guard_at is not None]:
            if job.guard_at is not None and now >= job.guard_at:
                if job.lookup_id is not None:
                    self._by_lookup.pop(job.lookup_id, None)
                job.lookup_id = job.guard_at = None
                self._answer(job, None, now)
        for key, (due, record, number) in list(self._rechecks.items()):
            if now >= due:
                del self._rechecks[key]
                self._recheck(key, record, number, now)
        for job in list(self._relocating.values()):
            if job.retry_at is not None and now >= job.retry_at:
                job.retry_at = None
                if not self.node.initiation_in_flight(job.key or b""):
                    self._relocated(job)  # reached meanwhile (or given up on)
                else:
                    self._relocate_again(job, now)

    def next_event(self) -> FinderEvent | None:
        return self._events.popleft() if self._events else None

    # -- internals ----------------------------------------------------------------------------
    def _next(self) -> int:
        self._requests += 1
        return self._requests

    def _start(self, job: _Job, now: float) -> bool:
        """Start ``job``'s lookup; False if the overlay has too many running."""
        try:
            lookup_id = self.overlay.lookup(job.number, now=now, thorough=job.thorough)
        except LocalProtocolError:
            return False
        job.lookup_id = lookup_id
        job.guard_at = now + LOOKUP_GUARD_S
        self._by_lookup[lookup_id] = job
        return True

    def _choose_stored(
        self, request: int, number: str, key: bytes | None, stored: list[StoredPeer]
    ) -> bytes | None:
        shown = format_number(number)
        if key is not None:
            if any(p.public_key == key for p in stored):
                return key
            self._events.append(
                NotFound(
                    request=request,
                    number=number,
                    code="unknown_number",
                    detail="no peer with that number and key",
                )
            )
            return None
        if len(stored) > 1:
            keys = ", ".join(p.public_key.hex() for p in stored)
            self._events.append(
                NotFound(
                    request=request,
                    number=number,
                    code="number_conflict",
                    detail=f"{shown} belongs to several keys ({keys}); choose one",
                )
            )
            return None
        return stored[0].public_key

    def _answer(self, job: _Job, event: LookupCompleted | LookupFailed | None, now: float) -> None:
        purpose = job.purpose
        if purpose is Purpose.LOOKUP:
            job.done = True
            self._events.append(
                LookupDone(
                    request=job.request,
                    number=job.number,
                    result=event,
                    error="" if event is not None else "timeout",
                )
            )
        elif purpose is Purpose.RESOLVE:
            self._resolved(job, event, now)
        elif purpose is Purpose.REFRESH:
            job.done = True
            forward: str | None = None
            if isinstance(event, LookupCompleted) and job.key is not None:
                for record in event.records:
                    addr = pick_address(record, reflexive=self.overlay.reflexive)
                    if record.public_key == job.key:
                        forward = record.forward_to
                    if record.public_key == job.key and addr is not None:
                        self._save(job.key, job.number, addr)
                        self.node.add_peer(job.key, addr)
                        self._reach(record, addr, now)
            assert job.key is not None
            self._events.append(
                Found(
                    request=job.request, number=job.number, public_key=job.key, forward_to=forward
                )
            )
        elif purpose is Purpose.RECHECK:
            job.done = True
            self._rechecked(job, event, now)
        else:
            self._relocate_answer(job, event, now)

    def _resolved(
        self, job: _Job, event: LookupCompleted | LookupFailed | None, now: float
    ) -> None:
        job.done = True
        shown = format_number(job.number)
        if event is None:
            self._not_found(job, "timeout", "the lookup did not finish in time")
            return
        if isinstance(event, LookupFailed):
            self._not_found(job, "unknown_number", f"{shown} not found ({event.reason})")
            return
        records = list(event.records)
        if job.key is not None:
            records = [r for r in records if r.public_key == job.key]
        if not records:
            self._not_found(job, "unknown_number", "no record for that number and key")
            return
        if len(records) > 1:
            keys = ", ".join(r.public_key.hex() for r in records)
            detail = f"{shown} belongs to several keys ({keys}); choose one"
            self._not_found(job, "number_conflict", detail)
            return
        record = records[0]
        addr = pick_address(record, reflexive=self.overlay.reflexive)
        if addr is None:
            self._not_found(job, "unreachable", f"{shown} lists no address")
            return
        # Trust on first use: the key is verified to derive to the number; pin it. A live
        # session (the peer called us) keeps its path: only authenticated packets move it.
        key = record.public_key
        path = self.node.live_path(key, now=now)
        try:
            self.node.add_peer(key, addr if path is None else None)
        except (InvalidKey, LocalProtocolError) as exc:
            self._not_found(job, "bad_record", f"unusable key in the record: {exc}")
            return
        self._save(key, job.number, addr)
        self.numbers.pin(key, job.number)
        self._reach(record, addr, now)
        if path is None and len(self._rechecks) < MAX_RECHECKS:
            self._rechecks[key] = (now + RECHECK_AFTER_S, record, job.number)
        self._events.append(
            Found(
                request=job.request,
                number=job.number,
                public_key=key,
                forward_to=record.forward_to,
            )
        )

    def _not_found(self, job: _Job, code: str, detail: str) -> None:
        job.done = True
        self._events.append(
            NotFound(request=job.request, number=job.number, code=code, detail=detail)
        )

    def _recheck(self, key: bytes, used: Record, number: str, now: float) -> None:
        if not self.node.initiation_in_flight(key) or key in self._relocating:
            return
        job = _Job(self._next(), Purpose.RECHECK, number, key, thorough=True, used_seq=used.seq)
        self._start(job, now)

    def _rechecked(
        self, job: _Job, event: LookupCompleted | LookupFailed | None, now: float
    ) -> None:
        key = job.key
        if not isinstance(event, LookupCompleted) or key is None:
            return
        if not self.node.initiation_in_flight(key):
            return
        for record in event.records:
            addr = pick_address(record, reflexive=self.overlay.reflexive)
            if record.public_key == key and record.seq > job.used_seq and addr is not None:
                self._follow(key, job.number, addr, "newer record")
                self._reach(record, addr, now)

    def _relocate_again(self, job: _Job, now: float) -> None:
        job.attempt += 1
        if not self._start(job, now):
            self._relocate_answer(job, None, now)

    def _relocate_answer(
        self, job: _Job, event: LookupCompleted | LookupFailed | None, now: float
    ) -> None:
        if self._relocate_once(job, event, now) or job.attempt >= RELOCATE_ATTEMPTS:
            self._relocated(job)
        else:
            job.retry_at = now + RELOCATE_RETRY_S

    def _relocate_once(
        self, job: _Job, event: LookupCompleted | LookupFailed | None, now: float
    ) -> bool:
        """One lookup's answer for a silent peer; True once there is nothing more to look for."""
        key = job.key
        if not isinstance(event, LookupCompleted) or key is None:
            return False
        for record in event.records:
            addr = pick_address(record, reflexive=self.overlay.reflexive)
            if record.public_key != key or addr is None:
                continue
            self._reach(record, addr, now)
            endpoint = self.node.peer_endpoint(key)
            if endpoint is not None and is_relayed(endpoint):
                return True  # a relayed path is the traversal's to replace (it probes first)
            if addr == endpoint:
                return False  # the directory still says where it is not answering
            self._follow(key, job.number, addr, "directory")
            return True
        return False

    def _relocated(self, job: _Job) -> None:
        job.done = True
        if job.key is not None and self._relocating.get(job.key) is job:
            del self._relocating[job.key]

    def _follow(self, key: bytes, number: str, addr: Addr, why: str) -> None:
        """Send the peer's handshake and queued messages to ``addr`` from now on."""
        self.node.add_peer(key, addr)
        if self.contacts.get(key) is not None:
            self._save(key, number, addr)
        self._events.append(PeerMoved(public_key=key, number=number, addr=addr, why=why))

    def _save(self, key: bytes, number: str, addr: Addr) -> None:
        if is_relayed(addr):
            return
        if self.contacts.save(StoredPeer(public_key=key, number=number, addr=addr)):
            self._events.append(PeerSaved(public_key=key, number=number, addr=addr))

    def _reach(self, record: Record, addr: Addr, now: float) -> None:
        """Before calling a phone behind a NAT: punch through its relays, with a relay ready
        if the punch fails (``Traversal.reach``)."""
        if addr in self.host:
            return
        direct = [addr, *(a for _, a in record.addresses if a != addr)]
        self.traversal.reach(record.public_key, direct=direct, relays=record.relays, now=now)
