"""Records held for others (proto.overlay.store): sequence rules, limits and expiry.

The store trusts its caller to have checked signatures, so these records are unsigned.
"""

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from peerline.proto.overlay.ids import record_key
from peerline.proto.overlay.store import RecordStore
from peerline.wire.overlay import StoreStatus
from peerline.wire.record import Presence, Record, decode_record

NUMBER = "004915123456"
KEY = record_key(NUMBER)
PK1, PK2, PK3 = (bytes([i]) * 32 for i in (1, 2, 3))


def rec(
    pk: bytes = PK1,
    seq: int = 1,
    ttl: int = 100,
    *,
    number: str = NUMBER,
    presence: Presence = Presence.AVAILABLE,
) -> tuple[Record, bytes]:
    record = Record(number=number, public_key=pk, seq=seq, ttl_s=ttl, presence=presence)
    return record, record.encode()


def store(max_records: int = 100, per_source: int = 10, per_number: int = 4) -> RecordStore:
    return RecordStore(max_records=max_records, per_source=per_source, per_number=per_number)


def put(
    s: RecordStore,
    record: tuple[Record, bytes],
    now: float = 0.0,
    *,
    key: bytes = KEY,
    source: str = "100.64.1.1",
) -> tuple[StoreStatus, int]:
    return s.put(key, record[0], record[1], source, now)


def test_stored_record_is_returned() -> None:
    s = store()
    r = rec()
    assert put(s, r) == (StoreStatus.STORED, 0)
    assert s.get(KEY, now=1.0) == [r[1]]
    assert s.get(record_key("000000000001"), now=1.0) == []
    assert len(s) == 1


def test_newer_seq_replaces_older() -> None:
    s = store()
    put(s, rec(seq=1))
    new = rec(seq=2, presence=Presence.BUSY)
    assert put(s, new) == (StoreStatus.STORED, 0)
    assert s.get(KEY, now=0.0) == [new[1]]
    assert len(s) == 1


def test_older_seq_is_stale_and_reports_the_held_seq() -> None:
    s = store()
    held = rec(seq=7)
    put(s, held)
    assert put(s, rec(seq=6)) == (StoreStatus.STALE, 7)
    assert s.get(KEY, now=0.0) == [held[1]]


def test_same_seq_with_other_bytes_is_stale_and_the_first_stays() -> None:
    s = store()
    first = rec(seq=3)
    put(s, first)
    assert put(s, rec(seq=3, presence=Presence.AWAY)) == (StoreStatus.STALE, 3)
    assert s.get(KEY, now=0.0) == [first[1]]


def test_same_record_again_refreshes_its_expiry() -> None:
    s = store()
    r = rec(seq=3, ttl=100)
    put(s, r, now=0.0)
    assert put(s, r, now=80.0) == (StoreStatus.STORED, 0)
    assert s.get(KEY, now=150.0) == [r[1]]  # would have expired at 100
    assert s.get(KEY, now=180.0) == []


def test_replacement_takes_the_new_records_lifetime() -> None:
    s = store()
    put(s, rec(seq=1, ttl=1000), now=0.0)
    short = rec(seq=2, ttl=10)
    put(s, short, now=5.0)
    assert s.get(KEY, now=14.0) == [short[1]]
    assert s.get(KEY, now=15.0) == []
    assert s.get(KEY, now=1001.0) == []
    assert len(s) == 0


def test_record_expires_exactly_ttl_after_it_was_stored() -> None:
    s = store()
    r = rec(ttl=100)
    put(s, r, now=10.0)
    assert s.get(KEY, now=109.999) == [r[1]]
    assert s.get(KEY, now=110.0) == []
    assert len(s) == 0


def test_every_key_of_a_number_is_kept_up_to_per_number() -> None:
    s = store(per_number=2)
    a, b = rec(PK1), rec(PK2)
    assert put(s, a)[0] is StoreStatus.STORED
    assert put(s, b)[0] is StoreStatus.STORED
    assert put(s, rec(PK3)) == (StoreStatus.FULL, 0)
    assert sorted(s.get(KEY, now=0.0)) == sorted([a[1], b[1]])
    assert put(s, rec(PK1, seq=2))[0] is StoreStatus.STORED  # updates still fit


def test_per_source_limit() -> None:
    s = store(per_source=2)
    for i in range(2):
        assert put(s, rec(), key=bytes([i]) * 20, source="a")[0] is StoreStatus.STORED
    assert put(s, rec(), key=b"\x09" * 20, source="a") == (StoreStatus.FULL, 0)
    assert put(s, rec(), key=b"\x09" * 20, source="b")[0] is StoreStatus.STORED
    assert put(s, rec(seq=2), key=bytes(20), source="a")[0] is StoreStatus.STORED  # update


def test_total_limit() -> None:
    s = store(max_records=3, per_source=100)
    for i in range(3):
        assert put(s, rec(), key=bytes([i]) * 20, source=str(i))[0] is StoreStatus.STORED
    assert put(s, rec(), key=b"\x09" * 20, source="9") == (StoreStatus.FULL, 0)
    assert len(s) == 3


def test_expiry_frees_the_sources_share_and_the_total() -> None:
    s = store(max_records=2, per_source=1)
    assert put(s, rec(ttl=10), key=b"\x01" * 20, source="a", now=0.0)[0] is StoreStatus.STORED
    assert put(s, rec(ttl=50), key=b"\x02" * 20, source="b", now=0.0)[0] is StoreStatus.STORED
    assert put(s, rec(), key=b"\x03" * 20, source="a", now=5.0)[0] is StoreStatus.FULL
    assert put(s, rec(), key=b"\x03" * 20, source="a", now=10.0)[0] is StoreStatus.STORED
    assert "a" in s._per_source and s._per_source["a"] == 1
    s.expire(now=1000.0)
    assert len(s) == 0 and not s._per_source and not s._keys


def test_an_expired_record_no_longer_blocks_an_older_one() -> None:
    s = store()
    put(s, rec(seq=9, ttl=10), now=0.0)
    assert put(s, rec(seq=1), now=10.0) == (StoreStatus.STORED, 0)


def test_items_lists_every_live_record_with_its_key() -> None:
    s = store()
    a, b = rec(PK1, ttl=10), rec(PK2, ttl=100)
    put(s, a, key=b"\x01" * 20)
    put(s, b, key=b"\x02" * 20)
    assert sorted(s.items(now=5.0)) == [(b"\x01" * 20, a[1]), (b"\x02" * 20, b[1])]
    assert s.items(now=10.0) == [(b"\x02" * 20, b[1])]


def test_refresh_does_not_let_the_old_heap_entry_expire_the_record() -> None:
    s = store()
    r = rec(ttl=10)
    for now in (0.0, 8.0, 16.0, 24.0):
        put(s, r, now=now)
    assert s.get(KEY, now=33.0) == [r[1]]
    assert s.get(KEY, now=34.0) == []


def test_a_newer_copy_from_a_lookup_replaces_only_an_older_held_record() -> None:
    s = store(per_source=1)
    put(s, rec(seq=2, ttl=10), source="a", now=0.0)
    newer = rec(seq=3, ttl=50)
    assert not s.refresh(KEY, *rec(seq=2, ttl=50), now=1.0)  # same seq: nothing to repair
    assert not s.refresh(KEY, *rec(seq=1), now=1.0)
    assert not s.refresh(KEY, *rec(PK2, seq=9), now=1.0)  # a key not held is not taken in
    assert s.refresh(KEY, *newer, now=5.0)
    assert s.get(KEY, now=5.0) == [newer[1]]
    assert dict(s._per_source) == {"a": 1} and len(s) == 1  # "a" still pays for it
    assert s.get(KEY, now=54.0) == [newer[1]] and s.get(KEY, now=55.0) == []


def test_no_source_holds_more_than_per_source_records() -> None:
    s = store(per_source=1)
    mine = rec(PK1)
    theirs = rec(PK2)
    put(s, mine, key=b"\x01" * 20, source="a")
    put(s, theirs, key=b"\x02" * 20, source="b")
    put(s, theirs, key=b"\x02" * 20, source="a")  # "a" replays b's record: STORED
    assert s._per_source["a"] <= 1  # actual: 2


# -- a model of the rules ------------------------------------------------------------------------
@dataclass
class Held:
    seq: int
    raw: bytes
    expires: float
    source: str


KEYS = [bytes([i]) * 20 for i in range(3)]
PKS = [bytes([i]) * 32 for i in range(1, 5)]
SOURCES = ["a", "b", "c"]


class StoreMachine(RuleBasedStateMachine):
    """Random puts and gets over a few keys, publishers and sources, against a plain model."""

    def __init__(self) -> None:
        super().__init__()
        self.s = store()
        self.model: dict[tuple[bytes, bytes], Held] = {}
        self.now = 0.0

    @initialize(
        max_records=st.integers(1, 8), per_source=st.integers(1, 5), per_number=st.integers(1, 3)
    )
    def make(self, max_records: int, per_source: int, per_number: int) -> None:
        self.s = store(max_records, per_source, per_number)

    def _expire(self) -> None:
        self.model = {k: h for k, h in self.model.items() if h.expires > self.now}

    @rule(dt=st.sampled_from([0.0, 1.0, 5.0, 10.0, 25.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule(
        key=st.sampled_from(KEYS),
        pk=st.sampled_from(PKS),
        seq=st.integers(0, 4),
        ttl=st.sampled_from([1, 5, 10, 30]),
        presence=st.sampled_from(list(Presence)),
        source=st.sampled_from(SOURCES),
    )
    def put(
        self, *, key: bytes, pk: bytes, seq: int, ttl: int, presence: Presence, source: str
    ) -> None:
        record, raw = rec(pk, seq, ttl, presence=presence)
        self._expire()
        held = self.model.get((key, pk))
        if held is not None and (seq < held.seq or (seq == held.seq and raw != held.raw)):
            expected = (StoreStatus.STALE, held.seq)
        elif held is not None and (
            source == held.source
            or sum(1 for h in self.model.values() if h.source == source) < self.s.per_source
        ):
            expected = (StoreStatus.STORED, 0)
        elif held is not None:
            expected = (StoreStatus.FULL, 0)  # another source may not take over past its limit
        elif (
            sum(1 for k in self.model if k[0] == key) >= self.s.per_number
            or sum(1 for h in self.model.values() if h.source == source) >= self.s.per_source
            or len(self.model) >= self.s.max_records
        ):
            expected = (StoreStatus.FULL, 0)
        else:
            expected = (StoreStatus.STORED, 0)
        assert self.s.put(key, record, raw, source, self.now) == expected
        if expected[0] is StoreStatus.STORED:
            self.model[key, pk] = Held(seq, raw, self.now + ttl, source)

    @rule(
        key=st.sampled_from(KEYS),
        pk=st.sampled_from(PKS),
        seq=st.integers(0, 4),
        ttl=st.sampled_from([1, 5, 10, 30]),
    )
    def refresh(self, *, key: bytes, pk: bytes, seq: int, ttl: int) -> None:
        """A newer copy learned from a lookup: replaces only an older held record."""
        record, raw = rec(pk, seq, ttl)
        self._expire()
        held = self.model.get((key, pk))
        expected = held is not None and seq > held.seq
        assert self.s.refresh(key, record, raw, self.now) is expected
        if held is not None and expected:
            self.model[key, pk] = Held(seq, raw, self.now + ttl, held.source)

    @rule(key=st.sampled_from(KEYS))
    def get(self, key: bytes) -> None:
        self._expire()
        got = self.s.get(key, self.now)
        assert sorted(got) == sorted(h.raw for k, h in self.model.items() if k[0] == key)

    @invariant()
    def limits_hold(self) -> None:
        s = self.s
        assert len(s) <= s.max_records
        assert all(len(slot) <= s.per_number for slot in s._keys.values())
        assert all(slot for slot in s._keys.values())

    @invariant()
    def nothing_expired_is_returned(self) -> None:
        for key in KEYS:
            for raw in self.s.get(key, self.now):
                assert any(
                    h.raw == raw and h.expires > self.now
                    for k, h in self.model.items()
                    if k[0] == key
                )

    @invariant()
    def per_source_counts_match_what_is_held(self) -> None:
        self.s.expire(self.now)
        held = [h.source for slot in self.s._keys.values() for h in slot.values()]
        counts = {src: n for src, n in self.s._per_source.items() if n}
        assert counts == {src: held.count(src) for src in set(held)}


StoreMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=50, deadline=None)
test_store_machine = StoreMachine.TestCase


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(KEYS),
            st.sampled_from(PKS),
            st.integers(0, 3),
            st.integers(1, 20),
            st.sampled_from(SOURCES),
            st.floats(0, 10),
        ),
        max_size=60,
    )
)
def test_store_never_exceeds_its_limits_or_returns_expired_records(
    ops: list[tuple[bytes, bytes, int, int, str, float]],
) -> None:
    s = store(max_records=5, per_source=3, per_number=2)
    now = 0.0
    stored_at: dict[bytes, float] = {}
    for key, pk, seq, ttl, source, dt in ops:
        now += dt
        record, raw = rec(pk, seq, ttl)
        if s.put(key, record, raw, source, now)[0] is StoreStatus.STORED:
            stored_at[raw] = now
        assert len(s) <= 5
        assert all(len(slot) <= 2 for slot in s._keys.values())
        for k in KEYS:
            for got in s.get(k, now):
                assert stored_at[got] + decode_record(got).ttl_s > now
