"""``peerline.store.db.Database``: the address book and the call history (schema version 4)."""

import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from peerline.store import contactbook
from peerline.store import db as db_module
from peerline.store.db import (
    MAX_CALL_HISTORY,
    MAX_NAME_LEN,
    SCHEMA_VERSION,
    CallRow,
    ContactRow,
    Database,
)

NUMBER = "482155901736"
OTHER_NUMBER = "100000000001"
THIRD_NUMBER = "100000000002"


def key(i: int) -> bytes:
    return bytes([i]) * 32


def cid(i: int) -> bytes:
    return i.to_bytes(8, "big")


def start(
    db: Database,
    i: int,
    *,
    started_at: float,
    direction: str = "in",
    peer_key: bytes | None = None,
    number: str | None = NUMBER,
) -> bool:
    return db.call_started(
        call_id=cid(i),
        direction=direction,  # type: ignore[arg-type]
        peer_key=key(1) if peer_key is None and direction == "in" else peer_key,
        number=number,
        target="",
        name="",
        started_at=started_at,
    )


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "peerline.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    with Database.open(db_path) as database:
        yield database


# -- migration 3 -> 4 ---------------------------------------------------------------------------
def make_v3_database(path: Path) -> None:
    """A file as a phone running schema version 3 left it: a peer, a message, a cached overlay
    contact and a state value."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        for migration in db_module._MIGRATIONS[:3]:
            for statement in migration:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
        conn.execute(
            "INSERT INTO peers VALUES (?, ?, '192.0.2.1', 4720, 1.0, NULL)", (key(1), NUMBER)
        )
        conn.execute(
            "INSERT INTO messages VALUES (?, 'in', ?, ?, 'old', 2.0, 'received')",
            (bytes(16), key(1), NUMBER),
        )
        conn.execute("INSERT INTO overlay_contacts VALUES (?, '192.0.2.9', 4720, 3.0)", (key(2),))
        conn.execute("INSERT INTO state VALUES ('record_seq', '7')")
    finally:
        conn.close()


def test_version_3_database_upgrades_keeps_its_rows_and_gains_contacts_and_calls(
    db_path: Path,
) -> None:
    make_v3_database(db_path)
    with Database.open(db_path) as db:
        assert [p.public_key for p in db.peers()] == [key(1)]
        assert [m.body for m in db.messages()] == ["old"]
        assert db.overlay_contacts() == [(key(2), "192.0.2.9", 4720)]
        assert db.get_state("record_seq") == "7"
        assert db.contacts() == []
        assert db.calls() == []
        db.add_contact(NUMBER, "Ada", public_key=key(1), speed_dial=2, now=10.0)
        assert start(db, 1, started_at=11.0)
    assert user_version(db_path) == SCHEMA_VERSION == 4
    conn = sqlite3.connect(db_path)
    try:
        indexes = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        contact_columns = [r[1] for r in conn.execute("PRAGMA table_info(contacts)")]
        call_columns = [r[1] for r in conn.execute("PRAGMA table_info(calls)")]
        (check,) = conn.execute("PRAGMA integrity_check").fetchone()
    finally:
        conn.close()
    assert {"contacts_public_key", "calls_started_at", "calls_peer_key"} <= indexes
    assert contact_columns == list(ContactRow.__dataclass_fields__)
    assert call_columns == list(CallRow.__dataclass_fields__)
    assert check == "ok"


@pytest.mark.parametrize(
    "sql",
    [
        # verified without a pinned key
        "INSERT INTO contacts (number, name, verified_at, created_at)"
        " VALUES ('100000000001', 'x', 1.0, 1.0)",
        "INSERT INTO contacts (number, name, created_at) VALUES ('100000000001', '', 1.0)",
        "INSERT INTO contacts (number, name, speed_dial, created_at)"
        " VALUES ('100000000001', 'x', 100, 1.0)",
        # slot 2 is Ada's
        "INSERT INTO contacts (number, name, speed_dial, created_at)"
        " VALUES ('100000000001', 'x', 2, 1.0)",
        "INSERT INTO calls (call_id, direction, started_at, outcome)"
        " VALUES (x'0000000000000009', 'in', 1.0, 'lost')",
        "INSERT INTO calls (call_id, direction, started_at, outcome, seen)"
        " VALUES (x'0000000000000009', 'in', 1.0, 'missed', 2)",
        "INSERT INTO calls (call_id, direction, started_at, outcome)"
        " VALUES (x'00000009', 'in', 1.0, 'missed')",
    ],
)
def test_schema_4_refuses_rows_the_methods_would_refuse(
    db: Database, db_path: Path, sql: str
) -> None:
    """The CHECKs hold for any writer (a hand-run sqlite3 shell too), not just this class."""
    db.add_contact(NUMBER, "Ada", speed_dial=2, now=1.0)
    conn = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(sql)
    finally:
        conn.close()


def test_contacts_and_calls_survive_a_process_killed_without_close(db_path: Path) -> None:
    """Each write is durable when it returns: a process that dies without close() (nor a WAL
    checkpoint) loses none of them."""
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from peerline.store.db import Database
        db = Database.open(Path({str(db_path)!r}))
        db.add_contact({NUMBER!r}, "Ada", public_key=bytes(32), speed_dial=3, now=1.0)
        db.verify_contact({NUMBER!r}, bytes([1]) * 32, now=2.0)
        db.call_started(call_id=bytes(8), direction="in", peer_key=bytes([1]) * 32,
                        number=None, target="", name="Ada", started_at=3.0)
        db.call_ended(bytes(8), ended_at=4.0, end_reason="missed", outcome="missed")
        os._exit(0)
        """
    )
    firmware = Path(db_module.__file__).parents[2]
    subprocess.run(
        [sys.executable, "-c", script], check=True, env={"PYTHONPATH": str(firmware)}, timeout=30
    )
    with Database.open(db_path) as db:
        contact = db.contact(NUMBER)
        assert contact is not None
        assert (contact.public_key, contact.verified_at, contact.speed_dial) == (key(1), 2.0, 3)
        call = db.call(bytes(8))
        assert call is not None
        assert (call.outcome, call.seen, call.name) == ("missed", False, "Ada")
        assert db.missed_unseen() == 1


# -- contacts ----------------------------------------------------------------------------------
def test_add_contact_stores_every_field(db: Database) -> None:
    row = db.add_contact(
        NUMBER, "Ada Lovelace ☎", public_key=key(1), speed_dial=7, auto_answer=True, now=100.5
    )
    assert row == ContactRow(
        number=NUMBER,
        name="Ada Lovelace ☎",
        public_key=key(1),
        verified_at=None,
        speed_dial=7,
        auto_answer=True,
        created_at=100.5,
    )
    assert db.contact(NUMBER) == row
    assert not row.verified
    assert db.contact(OTHER_NUMBER) is None


def test_add_contact_defaults_have_no_key_slot_or_auto_answer(db: Database) -> None:
    row = db.add_contact(NUMBER, "Ada", now=1.0)
    assert (row.public_key, row.speed_dial, row.auto_answer) == (None, None, False)
    assert db.contact(NUMBER) == row


def test_add_contact_existing_number_raises_value_error_and_keeps_the_first(db: Database) -> None:
    first = db.add_contact(NUMBER, "Ada", now=1.0)
    with pytest.raises(ValueError, match="already a contact"):
        db.add_contact(NUMBER, "Bob", now=2.0)
    assert db.contacts() == [first]


def test_add_contact_taken_speed_dial_names_its_holder(db: Database) -> None:
    db.add_contact(NUMBER, "Ada", speed_dial=2, now=1.0)
    with pytest.raises(ValueError, match=f"speed dial 2 is taken by Ada \\({NUMBER}\\)"):
        db.add_contact(OTHER_NUMBER, "Bob", speed_dial=2, now=2.0)
    assert db.contact(OTHER_NUMBER) is None


def test_add_contact_beyond_the_limit_raises_value_error(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contactbook, "MAX_CONTACTS", 2)  # where the limit is checked
    db.add_contact(NUMBER, "Ada", now=1.0)
    db.add_contact(OTHER_NUMBER, "Bob", now=1.0)
    with pytest.raises(ValueError, match="full"):
        db.add_contact(THIRD_NUMBER, "Cy", now=1.0)
    assert len(db.contacts()) == 2
    assert db.remove_contact(NUMBER)
    db.add_contact(THIRD_NUMBER, "Cy", now=1.0)


_GOOD_CONTACT: dict[str, object] = {"number": NUMBER, "name": "Ada", "now": 1.0}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("number", "48215590173"),
        ("number", 482155901736),
        ("name", ""),
        ("name", "x" * (MAX_NAME_LEN + 1)),
        ("name", "   "),
        ("name", "two\nlines"),
        ("name", "\x1b[2Jclear"),
        ("name", "C1 \x85 control"),
        ("name", b"Ada"),
        ("name", "lone surrogate \ud800"),
        ("public_key", b"\x01" * 31),
        ("public_key", bytearray(32)),
        ("speed_dial", 0),
        ("speed_dial", 100),
        ("speed_dial", True),
        ("speed_dial", "2"),
        ("auto_answer", 1),
        ("auto_answer", None),
        ("now", float("nan")),
    ],
)
def test_add_contact_bad_value_raises_value_error_and_changes_nothing(
    db: Database, field: str, value: object
) -> None:
    with pytest.raises(ValueError, match=field):
        db.add_contact(**{**_GOOD_CONTACT, field: value})  # type: ignore[arg-type]
    assert db.contacts() == []


def test_add_contact_name_of_the_longest_length_with_format_characters_is_accepted(
    db: Database,
) -> None:
    """Zero-width joiners (emoji) and bidi marks (Arabic, Hebrew) are text, not control."""
    name = "👩\u200d👩" + "\u200f\u05e9\u05dc\u05d5\u05dd" + "x" * (MAX_NAME_LEN - 8)
    assert len(name) == MAX_NAME_LEN
    assert db.add_contact(NUMBER, name, now=1.0).name == name


def test_update_contact_changes_only_the_given_fields(db: Database) -> None:
    db.add_contact(NUMBER, "Ada", public_key=key(1), speed_dial=2, now=1.0)
    row = db.update_contact(NUMBER, name="Ada L.", auto_answer=True)
    assert row == ContactRow(
        number=NUMBER,
        name="Ada L.",
        public_key=key(1),
        verified_at=None,
        speed_dial=2,
        auto_answer=True,
        created_at=1.0,
    )
    assert db.contact(NUMBER) == row
    assert db.update_contact(NUMBER) == row


def test_update_contact_none_clears_where_not_given_keeps(db: Database) -> None:
    db.add_contact(NUMBER, "Ada", public_key=key(1), speed_dial=2, now=1.0)
    row = db.update_contact(NUMBER, speed_dial=None)
    assert row is not None
    assert (row.speed_dial, row.public_key) == (None, key(1))
    row = db.update_contact(NUMBER, public_key=None)
    assert row is not None
    assert row.public_key is None
    assert db.contact_by_speed_dial(2) is None


def test_update_contact_unknown_number_returns_none(db: Database) -> None:
    assert db.update_contact(NUMBER, name="Ada") is None
    assert db.contacts() == []


def test_update_contact_same_key_keeps_verification_other_key_clears_it(db: Database) -> None:
    db.add_contact(NUMBER, "Ada", now=1.0)
    db.verify_contact(NUMBER, key(1), now=5.0)
    row = db.update_contact(NUMBER, public_key=key(1))
    assert row is not None and row.verified and row.verified_at == 5.0
    row = db.update_contact(NUMBER, public_key=key(2))
    assert row is not None
    assert (row.public_key, row.verified_at, row.verified) == (key(2), None, False)
    db.verify_contact(NUMBER, key(2), now=6.0)
    row = db.update_contact(NUMBER, public_key=None)
    assert row is not None
    assert (row.public_key, row.verified_at) == (None, None)
    assert db.contact(NUMBER) == row


def test_update_contact_taken_speed_dial_raises_and_changes_nothing(db: Database) -> None:
    db.add_contact(NUMBER, "Ada", speed_dial=2, now=1.0)
    bob = db.add_contact(OTHER_NUMBER, "Bob", speed_dial=3, now=1.0)
    with pytest.raises(ValueError, match=f"taken by Ada \\({NUMBER}\\)"):
        db.update_contact(OTHER_NUMBER, name="Robert", speed_dial=2)
    assert db.contact(OTHER_NUMBER) == bob
    # Its own slot again is no conflict; a slot freed by another contact can be taken.
    assert db.update_contact(OTHER_NUMBER, speed_dial=3) == bob
    db.update_contact(NUMBER, speed_dial=None)
    row = db.update_contact(OTHER_NUMBER, speed_dial=2)
    assert row is not None and row.speed_dial == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", None),
        ("public_key", b"short"),
        ("speed_dial", 0),
        ("auto_answer", None),
    ],
)
def test_update_contact_bad_value_raises_value_error_and_changes_nothing(
    db: Database, field: str, value: object
) -> None:
    before = db.add_contact(NUMBER, "Ada", public_key=key(1), speed_dial=2, now=1.0)
    with pytest.raises(ValueError, match=field):
        db.update_contact(NUMBER, **{field: value})  # type: ignore[arg-type]
    assert db.contact(NUMBER) == before


def test_verify_contact_pins_the_key_and_records_when(db: Database) -> None:
    db.add_contact(NUMBER, "Ada", public_key=key(1), now=1.0)
    row = db.verify_contact(NUMBER, key(2), now=9.5)
    assert row is not None
    assert (row.public_key, row.verified_at, row.verified) == (key(2), 9.5, True)
    assert db.contact(NUMBER) == row
    assert db.verify_contact(OTHER_NUMBER, key(2), now=9.5) is None
    with pytest.raises(ValueError, match="public_key"):
        db.verify_contact(NUMBER, b"short", now=1.0)


def test_contact_row_verified_needs_both_a_time_and_a_key() -> None:
    base = ContactRow(
        number=NUMBER,
        name="Ada",
        public_key=key(1),
        verified_at=1.0,
        speed_dial=None,
        auto_answer=False,
        created_at=1.0,
    )
    assert base.verified
    assert not replace(base, verified_at=None).verified
    assert not replace(base, public_key=None).verified


def test_remove_contact_frees_its_number_and_slot(db: Database) -> None:
    db.add_contact(NUMBER, "Ada", speed_dial=2, now=1.0)
    assert db.remove_contact(NUMBER) is True
    assert db.remove_contact(NUMBER) is False
    assert db.contact(NUMBER) is None
    db.add_contact(OTHER_NUMBER, "Bob", speed_dial=2, now=2.0)
    db.add_contact(NUMBER, "Ada again", now=3.0)


def test_remove_contact_keeps_its_calls(db: Database) -> None:
    db.add_contact(NUMBER, "Ada", public_key=key(1), now=1.0)
    start(db, 1, started_at=2.0)
    db.remove_contact(NUMBER)
    assert [c.call_id for c in db.calls()] == [cid(1)]


def test_contact_by_key_prefers_a_verified_contact(db: Database) -> None:
    assert db.contact_by_key(key(1)) is None
    db.add_contact(OTHER_NUMBER, "Bob", public_key=key(1), now=1.0)
    db.add_contact(THIRD_NUMBER, "Cy", public_key=key(1), now=1.0)
    db.add_contact(NUMBER, "Ada", now=1.0)
    found = db.contact_by_key(key(1))
    assert found is not None and found.number == OTHER_NUMBER
    db.verify_contact(NUMBER, key(1), now=2.0)
    found = db.contact_by_key(key(1))
    assert found is not None and found.number == NUMBER
    assert db.contact_by_key(key(2)) is None
    with pytest.raises(ValueError, match="public_key"):
        db.contact_by_key(b"short")


def test_contact_by_speed_dial(db: Database) -> None:
    db.add_contact(NUMBER, "Ada", speed_dial=99, now=1.0)
    found = db.contact_by_speed_dial(99)
    assert found is not None and found.number == NUMBER
    assert db.contact_by_speed_dial(1) is None
    for slot in (0, 100, True):
        with pytest.raises(ValueError, match="speed_dial"):
            db.contact_by_speed_dial(slot)


def test_contacts_are_ordered_by_name_ignoring_case_then_by_number(db: Database) -> None:
    """Case folding covers more than ASCII: "émile" and "Émile" sort as one name."""
    db.add_contact("100000000005", "émile", now=1.0)
    db.add_contact("100000000004", "bob", now=1.0)
    db.add_contact("100000000003", "Émile", now=1.0)
    db.add_contact("100000000002", "Alice", now=1.0)
    db.add_contact("100000000001", "alice", now=1.0)
    assert [(c.name, c.number[-1]) for c in db.contacts()] == [
        ("alice", "1"),
        ("Alice", "2"),
        ("bob", "4"),
        ("Émile", "3"),
        ("émile", "5"),
    ]


class ContactBook(RuleBasedStateMachine):
    """Random adds, updates, removes and verifies against a dict model; the invariants are read
    back from the database itself."""

    # Small pools, so that the steps keep meeting the same contacts, keys and slots.
    numbers = st.sampled_from(["100000000001", "100000000002", "100000000003"])
    keys = st.none() | st.sampled_from([key(1), key(2)])
    slots = st.none() | st.integers(1, 2)
    names = st.sampled_from(["Ada", "bob", "Cy"])

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.db = Database.open(Path(self.dir) / "p.db")
        self.model: dict[str, ContactRow] = {}
        self.now = 0.0

    def teardown(self) -> None:
        self.db.close()
        shutil.rmtree(self.dir)

    def _tick(self) -> float:
        self.now += 1.0
        return self.now

    def _slot_holder(self, slot: int | None, number: str) -> str | None:
        if slot is None:
            return None
        holders = [n for n, c in self.model.items() if c.speed_dial == slot and n != number]
        return holders[0] if holders else None

    @rule(number=numbers, name=names, public_key=keys, slot=slots, auto=st.booleans())
    def add(
        self, number: str, name: str, public_key: bytes | None, slot: int | None, auto: bool
    ) -> None:
        now = self._tick()
        if number in self.model or self._slot_holder(slot, number):
            with pytest.raises(ValueError):
                self.db.add_contact(number, name, public_key=public_key, speed_dial=slot, now=now)
            return
        row = self.db.add_contact(
            number, name, public_key=public_key, speed_dial=slot, auto_answer=auto, now=now
        )
        self.model[number] = row

    @rule(
        number=numbers,
        changes=st.fixed_dictionaries(
            {},
            optional={
                "name": names,
                "public_key": keys,
                "speed_dial": slots,
                "auto_answer": st.booleans(),
            },
        ),
    )
    def update(self, number: str, changes: dict[str, object]) -> None:
        old = self.model.get(number)
        if old is None:
            assert self.db.update_contact(number, **changes) is None  # type: ignore[arg-type]
            return
        slot = changes.get("speed_dial", old.speed_dial)
        if slot != old.speed_dial and self._slot_holder(slot, number):  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="taken"):
                self.db.update_contact(number, **changes)  # type: ignore[arg-type]
            return
        new = replace(old, **changes)  # type: ignore[arg-type]
        if new.public_key != old.public_key:
            new = replace(new, verified_at=None)
        self.model[number] = new
        assert self.db.update_contact(number, **changes) == self.model[number]  # type: ignore[arg-type]

    # Verifying and then re-pinning one existing contact is the sequence that must clear a
    # verification, so each gets a rule of its own rather than waiting for a lucky draw.
    @precondition(lambda self: self.model)
    @rule(data=st.data(), public_key=st.sampled_from([key(1), key(2)]))
    def verify_existing(self, data: st.DataObject, public_key: bytes) -> None:
        self.verify(data.draw(st.sampled_from(sorted(self.model))), public_key)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), public_key=keys)
    def repin(self, data: st.DataObject, public_key: bytes | None) -> None:
        number = data.draw(st.sampled_from(sorted(self.model)))
        old = self.model[number]
        verified_at = old.verified_at if public_key == old.public_key else None
        self.model[number] = replace(old, public_key=public_key, verified_at=verified_at)
        assert self.db.update_contact(number, public_key=public_key) == self.model[number]

    @rule(number=numbers)
    def remove(self, number: str) -> None:
        assert self.db.remove_contact(number) is (self.model.pop(number, None) is not None)

    @rule(number=numbers, public_key=st.sampled_from([key(1), key(2)]))
    def verify(self, number: str, public_key: bytes) -> None:
        now = self._tick()
        row = self.db.verify_contact(number, public_key, now=now)
        if number not in self.model:
            assert row is None
            return
        self.model[number] = replace(self.model[number], public_key=public_key, verified_at=now)
        assert row == self.model[number]

    @invariant()
    def database_matches_the_model(self) -> None:
        rows = self.db.contacts()
        assert {r.number: r for r in rows} == self.model
        slots = [r.speed_dial for r in rows if r.speed_dial is not None]
        assert len(slots) == len(set(slots))
        assert all(r.public_key is not None for r in rows if r.verified_at is not None)
        for r in rows:
            if r.speed_dial is not None:
                assert self.db.contact_by_speed_dial(r.speed_dial) == r


TestContactBook = ContactBook.TestCase
TestContactBook.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


# -- call history ------------------------------------------------------------------------------
def test_call_started_stores_every_field_as_live(db: Database) -> None:
    assert db.call_started(
        call_id=cid(1),
        direction="out",
        peer_key=key(2),
        number=OTHER_NUMBER,
        target="100000000001*12",
        name="Ada ☎",
        started_at=50.25,
        verified=True,
    )
    assert db.call(cid(1)) == CallRow(
        call_id=cid(1),
        direction="out",
        peer_key=key(2),
        number=OTHER_NUMBER,
        target="100000000001*12",
        name="Ada ☎",
        started_at=50.25,
        answered_at=None,
        ended_at=None,
        end_reason=None,
        outcome="live",
        forwarded_to=None,
        verified=True,
        seen=True,
    )
    assert db.call(cid(2)) is None


def test_call_started_without_key_or_number_is_kept(db: Database) -> None:
    """An outgoing call that never resolved still belongs in the history."""
    assert db.call_started(
        call_id=cid(1),
        direction="out",
        peer_key=None,
        number=None,
        target="999999999999",
        name="",
        started_at=1.0,
    )
    row = db.call(cid(1))
    assert row is not None
    assert (row.peer_key, row.number, row.verified) == (None, None, False)


def test_call_started_twice_returns_false_and_keeps_the_first(db: Database) -> None:
    assert start(db, 1, started_at=1.0) is True
    assert start(db, 1, started_at=2.0, direction="out") is False
    assert [(c.started_at, c.direction) for c in db.calls()] == [(1.0, "in")]


def test_call_started_keeps_a_name_with_control_characters_as_sent(db: Database) -> None:
    """The far phone chooses its name; the history keeps it, the screen sanitizes it."""
    name = "evil\x1b[2J\n" + "x" * (MAX_NAME_LEN - 9)
    assert db.call_started(
        call_id=cid(1),
        direction="in",
        peer_key=key(1),
        number=None,
        target="",
        name=name,
        started_at=1.0,
    )
    row = db.call(cid(1))
    assert row is not None and row.name == name


_GOOD_CALL: dict[str, object] = {
    "call_id": cid(1),
    "direction": "in",
    "peer_key": key(1),
    "number": NUMBER,
    "target": "",
    "name": "",
    "started_at": 1.0,
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("call_id", b"\x00" * 7),
        ("call_id", b"\x00" * 16),
        ("call_id", bytearray(8)),
        ("direction", "sideways"),
        ("peer_key", b"\x00" * 31),
        ("number", "12345"),
        ("target", "x" * 65),
        ("target", None),
        ("name", "x" * (MAX_NAME_LEN + 1)),
        ("name", b"Ada"),
        ("started_at", float("inf")),
        ("started_at", "1.0"),
        ("verified", 1),
    ],
)
def test_call_started_bad_value_raises_value_error_and_changes_nothing(
    db: Database, field: str, value: object
) -> None:
    with pytest.raises(ValueError, match=field):
        db.call_started(**{**_GOOD_CALL, field: value})  # type: ignore[arg-type]
    assert db.calls() == []


def test_call_updated_changes_only_the_given_fields(db: Database) -> None:
    db.call_started(
        call_id=cid(1),
        direction="out",
        peer_key=None,
        number=None,
        target=NUMBER,
        name="",
        started_at=1.0,
    )
    assert db.call_updated(cid(1), peer_key=key(1)) is True
    assert db.call_updated(cid(1), number=NUMBER, answered_at=3.0) is True
    assert db.call_updated(cid(1), verified=True) is True
    assert db.call_updated(cid(1)) is True
    row = db.call(cid(1))
    assert row is not None
    assert (row.peer_key, row.number, row.answered_at, row.verified, row.outcome) == (
        key(1),
        NUMBER,
        3.0,
        True,
        "live",
    )
    assert db.call_updated(cid(1), number=None, verified=False) is True
    row = db.call(cid(1))
    assert row is not None
    assert (row.peer_key, row.number, row.verified) == (key(1), None, False)


def test_call_updated_unknown_call_returns_false(db: Database) -> None:
    assert db.call_updated(cid(9), verified=True) is False
    assert db.call_updated(cid(9)) is False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("peer_key", b"short"),
        ("number", "1"),
        ("verified", None),
        ("answered_at", None),
        ("answered_at", float("nan")),
    ],
)
def test_call_updated_bad_value_raises_value_error_and_changes_nothing(
    db: Database, field: str, value: object
) -> None:
    start(db, 1, started_at=1.0)
    before = db.call(cid(1))
    with pytest.raises(ValueError, match=field):
        db.call_updated(cid(1), **{field: value})  # type: ignore[arg-type]
    assert db.call(cid(1)) == before


def test_call_ended_answered_call_records_end_and_duration(db: Database) -> None:
    start(db, 1, started_at=10.0)
    db.call_updated(cid(1), answered_at=12.0)
    assert db.call_ended(cid(1), ended_at=72.5, end_reason="hangup", outcome="answered")
    row = db.call(cid(1))
    assert row is not None
    assert (row.ended_at, row.end_reason, row.outcome, row.seen) == (
        72.5,
        "hangup",
        "answered",
        True,
    )
    assert row.duration_s == 60.5
    assert db.missed_unseen() == 0


def test_call_forwarded_turns_a_failed_call_into_a_forwarded_one_only(db: Database) -> None:
    """Offline forwarding is found after the call ended unreachable (recorded as failed)."""
    start(db, 1, started_at=10.0)
    assert not db.call_forwarded(cid(1), OTHER_NUMBER)  # still live: not settled yet
    assert db.call_ended(cid(1), ended_at=25.0, end_reason="unreachable", outcome="failed")
    assert db.call_forwarded(cid(1), OTHER_NUMBER)
    row = db.call(cid(1))
    assert row is not None and (row.outcome, row.forwarded_to) == ("forwarded", OTHER_NUMBER)
    assert row.end_reason == "unreachable"
    assert not db.call_forwarded(cid(1), OTHER_NUMBER)  # once
    start(db, 2, started_at=30.0)
    db.call_ended(cid(2), ended_at=31.0, end_reason="declined", outcome="rejected")
    assert not db.call_forwarded(cid(2), OTHER_NUMBER)  # only a failed call
    with pytest.raises(ValueError):
        db.call_forwarded(cid(3), "12")


def test_call_ended_missed_is_unseen_until_marked(db: Database) -> None:
    start(db, 1, started_at=1.0)
    start(db, 2, started_at=2.0)
    start(db, 3, started_at=3.0, direction="out")
    assert db.call_ended(cid(1), ended_at=5.0, end_reason="missed", outcome="missed")
    assert db.call_ended(cid(2), ended_at=6.0, end_reason="cancelled", outcome="missed")
    assert db.call_ended(cid(3), ended_at=7.0, end_reason="busy", outcome="busy")
    assert db.missed_unseen() == 2
    row = db.call(cid(1))
    assert row is not None and row.seen is False and row.duration_s is None
    assert db.mark_missed_seen() == 2
    assert db.mark_missed_seen() == 0
    assert db.missed_unseen() == 0
    assert all(c.seen for c in db.calls())


def test_call_ended_twice_returns_false_and_keeps_the_first_end(db: Database) -> None:
    """A repeated end event must not make a missed call the owner has seen unseen again."""
    start(db, 1, started_at=1.0)
    assert db.call_ended(cid(1), ended_at=5.0, end_reason="missed", outcome="missed")
    db.mark_missed_seen()
    assert not db.call_ended(cid(1), ended_at=6.0, end_reason="missed", outcome="missed")
    row = db.call(cid(1))
    assert row is not None
    assert (row.ended_at, row.seen) == (5.0, True)
    assert db.missed_unseen() == 0
    assert not db.call_ended(cid(9), ended_at=6.0, end_reason="hangup", outcome="answered")


def test_call_ended_forwarded_keeps_the_number_it_went_to(db: Database) -> None:
    start(db, 1, started_at=1.0)
    assert db.call_ended(
        cid(1),
        ended_at=2.0,
        end_reason="forwarded",
        outcome="forwarded",
        forwarded_to=OTHER_NUMBER,
    )
    row = db.call(cid(1))
    assert row is not None
    assert (row.outcome, row.forwarded_to) == ("forwarded", OTHER_NUMBER)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"outcome": "live"}, "outcome"),
        ({"outcome": "lost"}, "outcome"),
        ({"outcome": None}, "outcome"),
        ({"end_reason": ""}, "end_reason"),
        ({"end_reason": "x" * 33}, "end_reason"),
        ({"end_reason": "hang\nup"}, "end_reason"),
        ({"end_reason": None}, "end_reason"),
        ({"ended_at": float("-inf")}, "ended_at"),
        ({"forwarded_to": OTHER_NUMBER}, "forwarded_to"),
        ({"outcome": "forwarded", "forwarded_to": "12"}, "forwarded_to"),
    ],
)
def test_call_ended_bad_value_raises_value_error_and_changes_nothing(
    db: Database, changes: dict[str, object], match: str
) -> None:
    start(db, 1, started_at=1.0)
    before = db.call(cid(1))
    good: dict[str, object] = {"ended_at": 2.0, "end_reason": "hangup", "outcome": "answered"}
    with pytest.raises(ValueError, match=match):
        db.call_ended(cid(1), **{**good, **changes})  # type: ignore[arg-type]
    assert db.call(cid(1)) == before


def test_call_duration_is_never_negative() -> None:
    """The wall clock may step back (NTP) between answer and end."""
    row = CallRow(
        call_id=cid(1),
        direction="in",
        peer_key=None,
        number=None,
        target="",
        name="",
        started_at=10.0,
        answered_at=20.0,
        ended_at=15.0,
        end_reason="hangup",
        outcome="answered",
        forwarded_to=None,
        verified=False,
        seen=True,
    )
    assert row.duration_s == 0.0


def test_set_call_numbers_fills_only_missing_numbers_of_that_key(db: Database) -> None:
    start(db, 1, started_at=1.0, peer_key=key(1), number=None)
    start(db, 2, started_at=2.0, peer_key=key(1), number=THIRD_NUMBER)
    start(db, 3, started_at=3.0, peer_key=key(2), number=None)
    assert db.set_call_numbers(key(1), OTHER_NUMBER) == 1
    assert [(c.call_id, c.number) for c in db.calls()] == [
        (cid(3), None),
        (cid(2), THIRD_NUMBER),
        (cid(1), OTHER_NUMBER),
    ]
    with pytest.raises(ValueError, match="number"):
        db.set_call_numbers(key(1), "1")


def test_close_interrupted_calls_settles_each_live_call_by_what_happened(db: Database) -> None:
    start(db, 1, started_at=10.0)  # in, answered
    db.call_updated(cid(1), answered_at=11.0)
    start(db, 2, started_at=20.0)  # in, ringing
    start(db, 3, started_at=30.0, direction="out")  # out, ringing
    start(db, 4, started_at=40.0, direction="out")  # out, answered
    db.call_updated(cid(4), answered_at=41.0)
    start(db, 5, started_at=50.0)  # already ended: untouched
    db.call_ended(cid(5), ended_at=51.0, end_reason="hangup", outcome="rejected")
    ended_before = db.call(cid(5))

    assert db.close_interrupted_calls(now=100.0) == 4
    got = {c.call_id: (c.outcome, c.end_reason, c.ended_at, c.seen) for c in db.calls()}
    assert got == {
        cid(1): ("answered", "interrupted", 100.0, True),
        cid(2): ("missed", "interrupted", 100.0, False),
        cid(3): ("cancelled", "interrupted", 100.0, True),
        cid(4): ("answered", "interrupted", 100.0, True),
        cid(5): ("rejected", "hangup", 51.0, True),
    }
    assert db.call(cid(5)) == ended_before
    assert db.missed_unseen() == 1
    assert db.close_interrupted_calls(now=200.0) == 0


def test_close_interrupted_calls_never_ends_a_call_before_it_started(db: Database) -> None:
    """The clock may be behind after a reboot (a Pi has no RTC until NTP answers)."""
    start(db, 1, started_at=1000.0)
    db.call_updated(cid(1), answered_at=1005.0)
    start(db, 2, started_at=2000.0)
    assert db.close_interrupted_calls(now=3.0) == 2
    one, two = db.call(cid(1)), db.call(cid(2))
    assert one is not None and two is not None
    assert (one.ended_at, one.duration_s, two.ended_at) == (1005.0, 0.0, 2000.0)


def test_calls_are_newest_first_and_ties_keep_the_last_recorded_first(db: Database) -> None:
    start(db, 1, started_at=30.0)
    start(db, 2, started_at=10.0)
    start(db, 3, started_at=20.0)
    start(db, 4, started_at=20.0)
    assert [c.call_id for c in db.calls()] == [cid(1), cid(4), cid(3), cid(2)]
    assert [c.call_id for c in db.calls(2)] == [cid(1), cid(4)]
    assert db.calls(limit=0) == []


def test_calls_missed_only(db: Database) -> None:
    for i in range(4):
        start(db, i, started_at=float(i))
    db.call_ended(cid(0), ended_at=5.0, end_reason="missed", outcome="missed")
    db.call_ended(cid(2), ended_at=5.0, end_reason="missed", outcome="missed")
    db.call_ended(cid(3), ended_at=5.0, end_reason="hangup", outcome="answered")
    assert [c.call_id for c in db.calls(missed_only=True)] == [cid(2), cid(0)]
    assert [c.call_id for c in db.calls(1, missed_only=True)] == [cid(2)]


@pytest.mark.parametrize("limit", [-1, True, 1.5, None])
def test_calls_bad_limit_raises_value_error(db: Database, limit: object) -> None:
    with pytest.raises(ValueError, match="limit"):
        db.calls(limit=limit)  # type: ignore[arg-type]


def test_call_history_keeps_the_newest_and_every_live_call(db: Database) -> None:
    """The oldest calls go as new ones come; a live call stays (its end is still to come)."""
    start(db, 0, started_at=0.0)  # oldest, and still live
    for i in range(1, MAX_CALL_HISTORY + 5):
        start(db, i, started_at=float(i))
        db.call_ended(cid(i), ended_at=i + 0.5, end_reason="hangup", outcome="answered")
    ids = [c.call_id for c in db.calls(MAX_CALL_HISTORY + 10)]
    # the newest MAX_CALL_HISTORY, plus the old live call kept past the bound
    assert ids[:-1] == [cid(i) for i in range(MAX_CALL_HISTORY + 4, 4, -1)]
    assert ids[-1] == cid(0)
    assert db.call_ended(cid(0), ended_at=1.0, end_reason="hangup", outcome="cancelled")
    start(db, MAX_CALL_HISTORY + 5, started_at=1e6)
    ids = [c.call_id for c in db.calls(MAX_CALL_HISTORY + 10)]
    assert len(ids) == MAX_CALL_HISTORY
    assert cid(0) not in ids and cid(5) not in ids
