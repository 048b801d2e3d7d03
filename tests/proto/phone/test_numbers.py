"""NumberBook (peerline.proto.phone.numbers): which number each key derives to, and the queue
of derivations the shell runs (urgent first, a bounded background queue; design rule 11)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from peerline.proto.phone.numbers import BookBinding, NumberBook


def key(i: int) -> bytes:
    return bytes([i]) * 32


def test_number_book_keeps_pinned_keys_and_drops_the_least_recently_used_others() -> None:
    book = NumberBook(capacity=2)
    book.pin(b"own", "000000000000")
    for k in (b"k1", b"k2"):
        book.remember(k, "111111111111")
    assert book.get(b"k1") == "111111111111"  # k1 is now the most recently used
    book.remember(b"k3", "333333333333")
    assert book.get(b"k2") is None and book.get(b"k1") is not None
    assert book.get(b"own") == "000000000000" and len(book) == 3
    book.pin(b"k1", "111111111111")  # a stored peer moves out of the bounded part
    for i in range(10):
        book.remember(bytes([i]), "999999999999")
    assert book.get(b"k1") == "111111111111" and len(book) == 2 + 2


def test_urgent_derivations_go_ahead_of_every_queued_background_one() -> None:
    book = NumberBook()
    for i in range(5):
        book.request(key(i), urgent=False)
    book.request(key(9), urgent=True)
    book.request(key(3), urgent=True)  # a queued background key becomes urgent
    order = [book.next_derivation() for _ in range(6)]
    assert order == [key(9), key(3), key(0), key(1), key(2), key(4)]
    assert book.next_derivation() is None


def test_a_key_is_derived_once_however_often_it_is_asked_for() -> None:
    book = NumberBook()
    for urgent in (False, True, False):
        assert book.request(key(1), urgent=urgent)
    running = book.next_derivation()
    assert running == key(1) and book.pending(key(1))
    book.request(key(1), urgent=True)  # asked again while it runs: not queued twice
    assert book.next_derivation() is None
    book.derived(key(1), "123456789012")
    assert not book.pending(key(1)) and book.get(key(1)) == "123456789012"
    assert book.request(key(1), urgent=True) and book.next_derivation() is None  # known


def test_background_requests_beyond_the_bound_are_deferred_but_urgent_ones_are_not() -> None:
    book = NumberBook(max_pending=2)
    assert book.request(key(1), urgent=False) and book.request(key(2), urgent=False)
    assert not book.request(key(3), urgent=False)
    assert book.counters.numbers_deferred == 1
    assert book.request(key(4), urgent=True)
    assert [book.next_derivation() for _ in range(3)] == [key(4), key(1), key(2)]


def test_an_abandoned_derivation_may_be_asked_for_again() -> None:
    book = NumberBook()
    book.request(key(1), urgent=False)
    assert book.next_derivation() == key(1)
    book.abandoned(key(1))
    assert not book.pending(key(1))
    book.request(key(1), urgent=False)
    assert book.next_derivation() == key(1)


def test_book_binding_answers_known_numbers_and_queues_the_rest() -> None:
    book = NumberBook()
    binding = BookBinding(book)
    assert binding.number_of(key(1), urgent=True) is None
    assert book.next_derivation() == key(1)
    book.derived(key(1), "555555555555")
    assert binding.number_of(key(1)) == "555555555555"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.booleans(), st.booleans()), max_size=80))
def test_the_queue_never_holds_a_key_twice_and_stays_bounded(
    ops: list[tuple[int, bool, bool]],
) -> None:
    """Random requests, derivations and completions: every key is handed out at most once at
    a time, and the background queue never exceeds its bound."""
    book = NumberBook(max_pending=5, capacity=8)
    running: set[bytes] = set()
    for i, urgent, step in ops:
        book.request(key(i), urgent=urgent)
        assert book.background_waiting <= 5
        if step:
            k = book.next_derivation()
            if k is not None:
                assert k not in running
                running.add(k)
        elif running:
            done = sorted(running)[0]
            running.discard(done)
            book.derived(done, f"{done[0]:012d}")
