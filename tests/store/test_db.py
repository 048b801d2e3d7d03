"""``peerline.store.db.Database``: durable peers and messages in one SQLite file (brief sec. 10)."""

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerline.errors import StoreError
from peerline.store import db as db_module
from peerline.store.db import SCHEMA_VERSION, Database, MessageRow, PeerRow

NUMBER = "482155901736"
OTHER_NUMBER = "100000000001"


def key(i: int) -> bytes:
    return bytes([i]) * 32


def mid(i: int) -> bytes:
    return i.to_bytes(16, "big")


def add(db: Database, i: int, *, created_at: float, body: str = "hi", status: str = "sent") -> bool:
    return db.add_message(
        message_id=mid(i),
        direction="out",
        peer_key=key(1),
        peer_number=NUMBER,
        body=body,
        created_at=created_at,
        status=status,  # type: ignore[arg-type]
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


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


# -- opening -----------------------------------------------------------------------------------
def test_open_new_file_is_in_wal_mode(db: Database, db_path: Path) -> None:
    """journal_mode is persistent, so a second connection sees WAL."""
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_open_sets_durability_pragmas(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """synchronous=FULL makes a commit survive power loss; the others are per connection too."""
    opened: list[sqlite3.Connection] = []
    real_connect = sqlite3.connect

    def spy(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = real_connect(*args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(sqlite3, "connect", spy)
    with Database.open(db_path):
        (conn,) = opened
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2000


def test_open_new_file_and_its_wal_files_are_mode_0600(db: Database, db_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        add(db, 1, created_at=1.0)
        for suffix in ("", "-wal", "-shm"):
            p = db_path.with_name(db_path.name + suffix)
            assert p.exists(), suffix
            assert mode(p) == 0o600, suffix
    finally:
        os.umask(old_umask)


def test_open_existing_world_readable_file_makes_it_private(db_path: Path) -> None:
    sqlite3.connect(db_path).close()
    db_path.chmod(0o644)
    with Database.open(db_path):
        assert mode(db_path) == 0o600


def test_open_sets_schema_version(db: Database, db_path: Path) -> None:
    db.close()
    assert user_version(db_path) == SCHEMA_VERSION


def test_reopen_keeps_data_and_does_not_migrate_again(db: Database, db_path: Path) -> None:
    db.upsert_peer(key(1), NUMBER, "192.0.2.1", 4720, now=10.0)
    add(db, 1, created_at=11.0)
    db.close()
    for _ in range(2):
        with Database.open(db_path) as again:
            assert [p.public_key for p in again.peers()] == [key(1)]
            assert [m.id for m in again.messages()] == [mid(1)]
        assert user_version(db_path) == SCHEMA_VERSION


def test_open_newer_schema_version_is_refused_and_left_alone(db: Database, db_path: Path) -> None:
    db.close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer") as info:
        Database.open(db_path)
    assert str(db_path) in str(info.value)
    assert user_version(db_path) == SCHEMA_VERSION + 1


def test_failed_migration_rolls_back_completely(
    db: Database, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration is one transaction: half a migration never lands, nor does its version."""
    db.close()
    broken = (*db_module._MIGRATIONS, ("CREATE TABLE half (x)", "THIS IS NOT SQL"))
    monkeypatch.setattr(db_module, "_MIGRATIONS", broken)
    monkeypatch.setattr(db_module, "SCHEMA_VERSION", len(broken))
    with pytest.raises(StoreError, match="syntax error"):
        Database.open(db_path)
    assert user_version(db_path) == SCHEMA_VERSION
    conn = sqlite3.connect(db_path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert "half" not in tables


# Schema version 1 exactly as it shipped (before 45d41fd). Phones in the field ran it, so it
# must never change; later changes are new migrations.
SHIPPED_V1 = (
    """CREATE TABLE peers (
            public_key BLOB PRIMARY KEY CHECK (length(public_key) = 32),
            number     TEXT NOT NULL CHECK (length(number) = 12),
            host       TEXT NOT NULL,
            port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
            added_at   REAL NOT NULL,
            last_seen  REAL
        )""",
    "CREATE INDEX peers_number ON peers (number)",
    """CREATE TABLE messages (
            id          BLOB PRIMARY KEY CHECK (length(id) = 16),
            direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            peer_key    BLOB NOT NULL CHECK (length(peer_key) = 32),
            peer_number TEXT NOT NULL,
            body        TEXT NOT NULL,
            created_at  REAL NOT NULL,
            status      TEXT NOT NULL
                CHECK (status IN ('queued', 'sent', 'delivered', 'failed', 'received'))
        )""",
    "CREATE INDEX messages_created_at ON messages (created_at)",
)


def make_v1_database(path: Path) -> None:
    """A file as a phone running schema version 1 left it, with three messages (two stored
    at the same time, so only their insertion order tells them apart)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        for statement in SHIPPED_V1:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO peers VALUES (?, ?, '192.0.2.1', 4720, 1.0, NULL)", (key(1), NUMBER)
        )
        for i, created_at in ((3, 5.0), (1, 5.0), (2, 4.0)):
            conn.execute(
                "INSERT INTO messages VALUES (?, 'in', ?, ?, ?, ?, 'received')",
                (mid(i), key(1), NUMBER, f"old {i}", created_at),
            )
    finally:
        conn.close()


def test_shipped_first_migration_is_unchanged() -> None:
    """Migrations are append-only (design.md rule 12)."""
    assert db_module._MIGRATIONS[0] == SHIPPED_V1


def test_version_1_database_upgrades_keeps_its_rows_and_accepts_a_message_without_number(
    db_path: Path,
) -> None:
    make_v1_database(db_path)
    with Database.open(db_path) as db:
        assert [(m.id, m.body, m.peer_number) for m in db.messages()] == [
            (mid(2), "old 2", NUMBER),
            (mid(3), "old 3", NUMBER),
            (mid(1), "old 1", NUMBER),
        ]
        assert [p.public_key for p in db.peers()] == [key(1)]
        assert db.add_message(
            message_id=mid(4),
            direction="in",
            peer_key=key(2),
            peer_number=None,
            body="from a key not yet known",
            created_at=6.0,
            status="received",
        )
        assert db.set_message_numbers(key(2), OTHER_NUMBER) == 1
        message = db.message(mid(4))
        assert message is not None and message.peer_number == OTHER_NUMBER
    assert user_version(db_path) == SCHEMA_VERSION == 4
    conn = sqlite3.connect(db_path)
    try:
        indexes = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (check,) = conn.execute("PRAGMA integrity_check").fetchone()
    finally:
        conn.close()
    assert {"messages_created_at", "messages_peer_key", "peers_number"} <= indexes
    assert tables == {"peers", "messages", "overlay_contacts", "state", "contacts", "calls"}
    assert check == "ok"


def test_version_2_still_checks_a_number_it_is_given(db_path: Path) -> None:
    make_v1_database(db_path)
    Database.open(db_path).close()
    conn = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO messages VALUES (?, 'in', ?, '123', 'x', 1.0, 'received')",
                (mid(9), key(1)),
            )
    finally:
        conn.close()


def test_open_file_that_is_not_a_database_raises_store_error(db_path: Path) -> None:
    db_path.write_bytes(b"this is certainly not an SQLite database file\n" * 100)
    with pytest.raises(StoreError) as info:
        Database.open(db_path)
    assert str(db_path) in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_open_database_with_corrupt_schema_raises_store_error(db: Database, db_path: Path) -> None:
    """A valid header over a garbled first page (where the schema lives) is refused on open."""
    db.close()
    data = bytearray(db_path.read_bytes())
    data[100:1024] = b"\xa5" * (1024 - 100)
    db_path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=str(db_path)):
        Database.open(db_path)


def test_open_in_missing_directory_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot create"):
        Database.open(tmp_path / "missing" / "peerline.db")


def test_open_directory_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Database.open(tmp_path)


def test_store_error_is_an_os_error(db_path: Path) -> None:
    db_path.write_bytes(b"x" * 4096)
    with pytest.raises(OSError):
        Database.open(db_path)


def test_context_manager_closes_the_database(db_path: Path) -> None:
    with Database.open(db_path) as db:
        pass
    with pytest.raises(StoreError):
        db.peers()
    db.close()  # closing twice is harmless


def test_committed_write_is_visible_to_another_connection(db: Database, db_path: Path) -> None:
    """Each write method commits before returning; nothing waits for close()."""
    assert add(db, 1, created_at=1.0)
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    finally:
        conn.close()


def test_write_while_another_process_holds_the_lock_raises_store_error(
    db: Database, db_path: Path
) -> None:
    """busy_timeout bounds the wait; then the caller gets StoreError, not sqlite3's error."""
    other = sqlite3.connect(db_path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"):
            add(db, 1, created_at=1.0)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert add(db, 1, created_at=1.0)


# -- peers -------------------------------------------------------------------------------------
def test_upsert_peer_new_peer_is_stored_unseen(db: Database) -> None:
    db.upsert_peer(key(1), NUMBER, "192.0.2.1", 4720, now=100.0)
    assert db.peer_by_key(key(1)) == PeerRow(
        public_key=key(1),
        number=NUMBER,
        host="192.0.2.1",
        port=4720,
        added_at=100.0,
        last_seen=None,
    )
    assert db.peer_by_key(key(2)) is None


def test_upsert_peer_known_peer_updates_address_and_keeps_times(db: Database) -> None:
    db.upsert_peer(key(1), NUMBER, "192.0.2.1", 4720, now=100.0)
    assert db.touch_peer(key(1), "192.0.2.1", 4720, now=150.0)
    db.upsert_peer(key(1), NUMBER, "2001:db8::1", 5000, now=200.0)
    row = db.peer_by_key(key(1))
    assert row is not None
    assert (row.host, row.port, row.added_at, row.last_seen) == ("2001:db8::1", 5000, 100.0, 150.0)
    assert len(db.peers()) == 1


def test_touch_peer_known_peer_updates_address_and_last_seen(db: Database) -> None:
    db.upsert_peer(key(1), NUMBER, "192.0.2.1", 4720, now=100.0)
    assert db.touch_peer(key(1), "198.51.100.7", 40000, now=130.5) is True
    row = db.peer_by_key(key(1))
    assert row is not None
    assert (row.host, row.port, row.last_seen, row.added_at) == (
        "198.51.100.7",
        40000,
        130.5,
        100.0,
    )


def test_touch_peer_unknown_peer_changes_nothing(db: Database) -> None:
    assert db.touch_peer(key(9), "192.0.2.1", 4720, now=1.0) is False
    assert db.peers() == []


def test_peers_by_number_two_keys_with_one_number_are_both_kept(db: Database) -> None:
    """Numbers collide; the store keeps every key so the UI can show the conflict."""
    db.upsert_peer(key(2), NUMBER, "192.0.2.2", 4720, now=2.0)
    db.upsert_peer(key(1), NUMBER, "192.0.2.1", 4720, now=1.0)
    db.upsert_peer(key(3), OTHER_NUMBER, "192.0.2.3", 4720, now=3.0)
    assert [p.public_key for p in db.peers_by_number(NUMBER)] == [key(1), key(2)]
    assert [p.public_key for p in db.peers_by_number(OTHER_NUMBER)] == [key(3)]
    assert db.peers_by_number("999999999999") == []
    assert [p.public_key for p in db.peers()] == [key(1), key(2), key(3)]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((b"\x01" * 31, NUMBER, "192.0.2.1", 4720), "public_key"),
        ((bytearray(32), NUMBER, "192.0.2.1", 4720), "public_key"),
        ((key(1), "48215590173", "192.0.2.1", 4720), "number"),
        ((key(1), "48215590173x", "192.0.2.1", 4720), "number"),
        ((key(1), "٤٨٢١٥٥٩٠١٧٣٦", "192.0.2.1", 4720), "number"),  # Arabic-Indic digits
        ((key(1), NUMBER, "", 4720), "host"),
        ((key(1), NUMBER, "192.0.2.1", 0), "port"),
        ((key(1), NUMBER, "192.0.2.1", 65536), "port"),
        ((key(1), NUMBER, "192.0.2.1", True), "port"),
    ],
)
def test_upsert_peer_bad_value_raises_value_error_and_changes_nothing(
    db: Database, args: tuple[object, ...], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        db.upsert_peer(*args, now=1.0)  # type: ignore[arg-type]
    assert db.peers() == []


def test_upsert_peer_non_finite_time_raises_value_error(db: Database) -> None:
    with pytest.raises(ValueError, match="now"):
        db.upsert_peer(key(1), NUMBER, "192.0.2.1", 4720, now=float("nan"))


# -- messages ----------------------------------------------------------------------------------
def test_add_message_stores_every_field(db: Database) -> None:
    assert db.add_message(
        message_id=mid(7),
        direction="in",
        peer_key=key(2),
        peer_number=NUMBER,
        body="héllo ☎",
        created_at=1234.5,
        status="received",
    )
    assert db.message(mid(7)) == MessageRow(
        id=mid(7),
        direction="in",
        peer_key=key(2),
        peer_number=NUMBER,
        body="héllo ☎",
        created_at=1234.5,
        status="received",
    )
    assert db.message(mid(8)) is None


def test_add_message_duplicate_id_returns_false_and_keeps_the_first(db: Database) -> None:
    """A retransmitted message is stored, and so shown, once."""
    assert add(db, 1, created_at=1.0, body="first", status="queued") is True
    assert add(db, 1, created_at=2.0, body="second", status="failed") is False
    assert [(m.body, m.status, m.created_at) for m in db.messages()] == [("first", "queued", 1.0)]


def test_messages_are_ordered_oldest_first_newest_last(db: Database) -> None:
    add(db, 1, created_at=30.0)
    add(db, 2, created_at=10.0)
    add(db, 3, created_at=20.0)
    assert [m.id for m in db.messages()] == [mid(2), mid(3), mid(1)]


def test_messages_limit_keeps_the_newest(db: Database) -> None:
    for i in range(10):
        add(db, i, created_at=float(i))
    assert [m.id for m in db.messages(limit=3)] == [mid(7), mid(8), mid(9)]
    assert db.messages(limit=0) == []
    assert len(db.messages()) == 10


def test_messages_with_equal_times_keep_insertion_order(db: Database) -> None:
    for i in (5, 3, 9, 1):
        add(db, i, created_at=42.0)
    assert [m.id for m in db.messages()] == [mid(5), mid(3), mid(9), mid(1)]
    assert [m.id for m in db.messages(limit=2)] == [mid(9), mid(1)]


@pytest.mark.parametrize("limit", [-1, True, 1.5])
def test_messages_bad_limit_raises_value_error(db: Database, limit: object) -> None:
    with pytest.raises(ValueError, match="limit"):
        db.messages(limit=limit)  # type: ignore[arg-type]


def test_set_message_status_updates_known_and_reports_unknown(db: Database) -> None:
    add(db, 1, created_at=1.0, status="queued")
    assert db.set_message_status(mid(1), "delivered") is True
    row = db.message(mid(1))
    assert row is not None
    assert row.status == "delivered"
    assert db.set_message_status(mid(2), "delivered") is False


def test_set_message_status_bad_status_raises_value_error(db: Database) -> None:
    add(db, 1, created_at=1.0, status="queued")
    with pytest.raises(ValueError, match="status"):
        db.set_message_status(mid(1), "read")  # type: ignore[arg-type]
    row = db.message(mid(1))
    assert row is not None
    assert row.status == "queued"


_GOOD_MESSAGE: dict[str, object] = {
    "message_id": mid(1),
    "direction": "out",
    "peer_key": key(1),
    "peer_number": NUMBER,
    "body": "hi",
    "created_at": 1.0,
    "status": "queued",
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("message_id", b"\x00" * 15),
        ("message_id", b"\x00" * 17),
        ("message_id", "0" * 16),
        ("direction", "sideways"),
        ("direction", ["in"]),
        ("peer_key", b"\x00" * 33),
        ("peer_number", "12345"),
        ("body", b"bytes"),
        ("body", "lone surrogate \ud800"),
        ("created_at", float("inf")),
        ("created_at", "1.0"),
        ("status", "read"),
        ("status", None),
    ],
)
def test_add_message_bad_value_raises_value_error_and_changes_nothing(
    db: Database, field: str, value: object
) -> None:
    with pytest.raises(ValueError, match=field):
        db.add_message(**{**_GOOD_MESSAGE, field: value})  # type: ignore[arg-type]
    assert db.messages() == []


def test_message_survives_close_and_reopen(db: Database, db_path: Path) -> None:
    add(db, 1, created_at=5.0, body="keep me")
    db.set_message_status(mid(1), "delivered")
    db.close()
    with Database.open(db_path) as again:
        row = again.message(mid(1))
    assert row is not None
    assert (row.body, row.status) == ("keep me", "delivered")


def test_rows_are_frozen(db: Database) -> None:
    add(db, 1, created_at=1.0)
    row = db.message(mid(1))
    assert row is not None
    with pytest.raises(AttributeError):
        row.body = "changed"  # type: ignore[misc]


def test_overlay_contact_cache_keeps_the_newest(tmp_path: Path) -> None:
    from peerline.store.db import MAX_OVERLAY_CONTACTS

    with Database.open(tmp_path / "p.db") as db:
        for i in range(MAX_OVERLAY_CONTACTS + 10):
            db.save_overlay_contacts([(i.to_bytes(32, "big"), "192.0.2.1", 1000 + i)], now=float(i))
        rows = db.overlay_contacts()
        assert len(rows) == MAX_OVERLAY_CONTACTS
        assert rows[0] == ((MAX_OVERLAY_CONTACTS + 9).to_bytes(32, "big"), "192.0.2.1", 1265)
        with pytest.raises(ValueError):
            db.save_overlay_contacts([(b"short", "192.0.2.1", 1)], now=1.0)


def test_state_values_survive_reopening(tmp_path: Path) -> None:
    with Database.open(tmp_path / "p.db") as db:
        assert db.get_state("record_seq") is None
        db.set_state("record_seq", "41")
        db.set_state("record_seq", "42")
    with Database.open(tmp_path / "p.db") as db:
        assert db.get_state("record_seq") == "42"
