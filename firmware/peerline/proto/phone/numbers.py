"""Which number each key derives to, and the queue of derivations the phone wants done.

A number is argon2id of the key (64 MiB, about 0.7 s on a Pi Zero 2 W): far too slow for the
core, so the core only decides *what* to derive and in which order, and the shell runs the
derivations one at a time (``next_derivation`` out, ``derived`` back in; a worker thread in the
daemon, at once in the simulator). Urgent keys (a ``peer.add``, a lookup the user waits on, a
ringing caller) go ahead of background ones (numbers for messages from never-seen senders,
records stored for others). Everything here is bounded (design rule 11).
"""

from collections import OrderedDict, deque
from dataclasses import asdict, dataclass

MAX_PENDING_DERIVATIONS = 1024
"""Never-seen keys waiting for their number in the background queue. Beyond this no derivation
is queued (``numbers_deferred``); the number is filled in when the key is seen again."""
MAX_CACHED_NUMBERS = 4096
"""Numbers remembered for keys that are not pinned (least recently used out first)."""


@dataclass(slots=True)
class NumberCounters:
    derivations_requested: int = 0
    derivations_done: int = 0
    numbers_deferred: int = 0
    "Background derivations not queued because ``MAX_PENDING_DERIVATIONS`` were waiting."

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class NumberBook:
    """Key -> dialable number, and the derivations still to run.

    ``pin`` keeps a number for good (this phone, stored peers, LAN peers: bounded by their own
    tables); ``remember`` keeps one among at most ``capacity`` others. Every number in the book
    was derived from its key, or checked by whoever pinned it.

    Then: after any call that may have queued work, the shell asks ``next_derivation()`` while
    its worker is idle, and reports each result with ``derived``.
    """

    def __init__(
        self,
        *,
        capacity: int = MAX_CACHED_NUMBERS,
        max_pending: int = MAX_PENDING_DERIVATIONS,
    ) -> None:
        if capacity < 0 or max_pending < 0:
            raise ValueError("capacity and max_pending must be >= 0")
        self.capacity = capacity
        self.max_pending = max_pending
        self.counters = NumberCounters()
        self._pinned: dict[bytes, str] = {}
        self._recent: OrderedDict[bytes, str] = OrderedDict()
        self._urgent: deque[bytes] = deque()
        self._background: deque[bytes] = deque()
        self._queued: set[bytes] = set()
        self._running: set[bytes] = set()

    # -- the book ------------------------------------------------------------------------------
    def pin(self, key: bytes, number: str) -> None:
        self._recent.pop(key, None)
        self._pinned[key] = number

    def remember(self, key: bytes, number: str) -> None:
        if key in self._pinned:
            return
        self._recent[key] = number
        self._recent.move_to_end(key)
        while len(self._recent) > self.capacity:
            self._recent.popitem(last=False)

    def get(self, key: bytes) -> str | None:
        number = self._pinned.get(key)
        if number is None:
            number = self._recent.get(key)
            if number is not None:
                self._recent.move_to_end(key)
        return number

    def __len__(self) -> int:
        return len(self._pinned) + len(self._recent)

    # -- derivations ---------------------------------------------------------------------------
    def request(self, key: bytes, *, urgent: bool) -> bool:
        """Queue ``key`` for derivation unless its number is known, or it is queued or running
        (an urgent request moves a background one ahead). False if it was not queued for want
        of room (background only: counted as deferred)."""
        if key in self._running or self.get(key) is not None:
            return True
        if key in self._queued:
            if urgent and key in self._background:
                self._background.remove(key)
                self._urgent.append(key)
            return True
        if not urgent and len(self._background) >= self.max_pending:
            self.counters.numbers_deferred += 1
            return False
        self._queued.add(key)
        (self._urgent if urgent else self._background).append(key)
        self.counters.derivations_requested += 1
        return True

    def pending(self, key: bytes) -> bool:
        """Whether ``key`` waits for, or is in, a derivation."""
        return key in self._queued or key in self._running

    @property
    def background_waiting(self) -> int:
        return len(self._background)

    def next_derivation(self) -> bytes | None:
        """The key the shell should derive next (urgent first), now marked running."""
        queue = self._urgent or self._background
        if not queue:
            return None
        key = queue.popleft()
        self._queued.discard(key)
        self._running.add(key)
        return key

    def derived(self, key: bytes, number: str) -> None:
        """A derivation finished: the number is remembered (the core pins it where it must)."""
        self._running.discard(key)
        self.counters.derivations_done += 1
        self.remember(key, number)

    def abandoned(self, key: bytes) -> None:
        """A derivation could not run (the worker stopped): it may be asked for again."""
        self._running.discard(key)


class BookBinding:
    """The number binding the overlay and the LAN registry check records with: answers from
    the book at once, else queues a derivation and answers "not yet" (they re-check when the
    core calls their ``bindings_changed``)."""

    __slots__ = ("_book",)

    def __init__(self, book: NumberBook) -> None:
        self._book = book

    def number_of(self, public_key: bytes, *, urgent: bool = False) -> str | None:
        number = self._book.get(public_key)
        if number is None:
            self._book.request(public_key, urgent=urgent)
        return number
