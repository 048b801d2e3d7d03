"""The phone's durable state in one SQLite file: peers, messages, contacts and call history.

Power loss on a Pi is common, so the database runs in WAL mode with ``synchronous=FULL``: once a
write method returns, the row survives a power cut. Every write method is one transaction, taken
with ``BEGIN IMMEDIATE`` so a second process (a CLI reader) can never deadlock an upgrade to a
write lock. The file holds private data (who the owner talks to), so it and its ``-wal``/``-shm``
companions are mode 0600.

Used from one thread only (the asyncio loop thread); sqlite3's same-thread check enforces it.
Timestamps (``now``, ``created_at``) are wall-clock seconds (``time.time()``), not the loop's
monotonic clock: they must still mean something after a reboot.

Bad arguments raise ``ValueError`` before the database is touched. Anything SQLite refuses (a
corrupt or foreign file, a newer schema, a full disk, a lock held too long) raises ``StoreError``
naming the file and the cause.
"""

import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from peerline.errors import StoreError

from .callhistory import CallHistory, CallRow
from .checks import (
    CALL_ID_LEN,
    DIRECTIONS,
    KEY_LEN,
    MAX_CALL_HISTORY,
    MAX_CONTACTS,
    MAX_NAME_LEN,
    MAX_OVERLAY_CONTACTS,
    MESSAGE_ID_LEN,
    NUMBER_LEN,
    CallOutcome,
    Direction,
    MessageStatus,
    check_bytes,
    check_host,
    check_key,
    check_number,
    check_port,
    check_status,
    check_text,
    check_time,
)
from .contactbook import ContactRow, ContactStore
from .sqlite import transaction

__all__ = [
    "CALL_ID_LEN",
    "KEY_LEN",
    "MAX_CALL_HISTORY",
    "MAX_CONTACTS",
    "MAX_NAME_LEN",
    "MESSAGE_ID_LEN",
    "NUMBER_LEN",
    "SCHEMA_VERSION",
    "CallOutcome",
    "CallRow",
    "ContactRow",
    "Database",
    "Direction",
    "MessageRow",
    "MessageStatus",
    "PeerRow",
]

_FILE_MODE = 0o600
_BUSY_TIMEOUT_MS = 2000

# Each entry moves the schema from version i to i + 1 inside one transaction. Append only:
# never edit a migration that has shipped, because phones in the field have already run it.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE peers (
            public_key BLOB PRIMARY KEY CHECK (length(public_key) = 32),
            number     TEXT NOT NULL CHECK (length(number) = 12),
            host       TEXT NOT NULL,
            port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
            added_at   REAL NOT NULL,
            last_seen  REAL
        )""",
        # Not unique: different keys may derive to the same number, and every one is kept.
        "CREATE INDEX peers_number ON peers (number)",
        # No foreign key to peers: a message may come from a phone that is not in the table.
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
    ),
    # 1 -> 2: messages.peer_number may be NULL (a message from a key whose number is still being
    # derived), and messages get an index by peer_key (to fill that number in). SQLite cannot
    # drop NOT NULL, so the table is rebuilt: rows keep their rowid, which orders messages
    # stored at the same created_at. Dropping the old table drops its index; both are remade.
    (
        """CREATE TABLE messages_v2 (
            id          BLOB PRIMARY KEY CHECK (length(id) = 16),
            direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            peer_key    BLOB NOT NULL CHECK (length(peer_key) = 32),
            peer_number TEXT CHECK (peer_number IS NULL OR length(peer_number) = 12),
            body        TEXT NOT NULL,
            created_at  REAL NOT NULL,
            status      TEXT NOT NULL
                CHECK (status IN ('queued', 'sent', 'delivered', 'failed', 'received'))
        )""",
        """INSERT INTO messages_v2
            (rowid, id, direction, peer_key, peer_number, body, created_at, status)
            SELECT rowid, id, direction, peer_key, peer_number, body, created_at, status
            FROM messages""",
        "DROP TABLE messages",
        "ALTER TABLE messages_v2 RENAME TO messages",
        "CREATE INDEX messages_created_at ON messages (created_at)",
        "CREATE INDEX messages_peer_key ON messages (peer_key)",
    ),
    # 2 -> 3: the overlay's contact cache (tried first at start, so a phone rejoins with no seed
    # after a week offline) and small named values (the directory record's sequence number,
    # which must never go back, and the LAN extension, which should survive a restart).
    (
        """CREATE TABLE overlay_contacts (
            public_key BLOB PRIMARY KEY CHECK (length(public_key) = 32),
            host       TEXT NOT NULL,
            port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
            last_ok    REAL NOT NULL
        )""",
        """CREATE TABLE state (
            name  TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
    ),
    # 3 -> 4: the owner's address book (a name, a speed dial, the key pinned when the owner
    # compared the SAS, intercom auto-answer) and the call history. Not to be confused with
    # overlay_contacts, the routing cache. A verified contact must have a pinned key: the
    # table-level CHECK makes "verified" mean "verified with this key", whoever writes the row.
    (
        """CREATE TABLE contacts (
            number      TEXT PRIMARY KEY CHECK (length(number) = 12),
            name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
            public_key  BLOB CHECK (public_key IS NULL OR length(public_key) = 32),
            verified_at REAL,
            speed_dial  INTEGER UNIQUE CHECK (speed_dial IS NULL OR speed_dial BETWEEN 1 AND 99),
            auto_answer INTEGER NOT NULL DEFAULT 0 CHECK (auto_answer IN (0, 1)),
            created_at  REAL NOT NULL,
            CHECK (verified_at IS NULL OR public_key IS NOT NULL)
        )""",
        "CREATE INDEX contacts_public_key ON contacts (public_key)",
        # No foreign key to contacts or peers: the history outlives both, and an outgoing call
        # that never resolved has no key at all.
        """CREATE TABLE calls (
            call_id      BLOB PRIMARY KEY CHECK (length(call_id) = 8),
            direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            peer_key     BLOB CHECK (peer_key IS NULL OR length(peer_key) = 32),
            number       TEXT CHECK (number IS NULL OR length(number) = 12),
            target       TEXT NOT NULL DEFAULT '',
            name         TEXT NOT NULL DEFAULT '',
            started_at   REAL NOT NULL,
            answered_at  REAL,
            ended_at     REAL,
            end_reason   TEXT CHECK (end_reason IS NULL OR length(end_reason) <= 32),
            outcome      TEXT NOT NULL CHECK (outcome IN ('live', 'answered', 'missed',
                'rejected', 'busy', 'forwarded', 'cancelled', 'failed')),
            forwarded_to TEXT CHECK (forwarded_to IS NULL OR length(forwarded_to) = 12),
            verified     INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
            seen         INTEGER NOT NULL DEFAULT 1 CHECK (seen IN (0, 1))
        )""",
        "CREATE INDEX calls_started_at ON calls (started_at)",
        "CREATE INDEX calls_peer_key ON calls (peer_key)",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)
"""The ``PRAGMA user_version`` this code writes; a file with a larger one is refused."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerRow:
    """A phone we know an address for (the on-disk peer cache used to bootstrap the overlay)."""

    public_key: bytes
    number: str
    host: str
    port: int
    added_at: float
    last_seen: float | None
    """None until ``touch_peer`` records that the peer was actually heard from."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRow:
    """One text message, sent or received."""

    id: bytes
    direction: Direction
    peer_key: bytes
    peer_number: str | None
    """None while the sender's number is still being derived from its key."""
    body: str
    created_at: float
    status: MessageStatus


class Database(ContactStore, CallHistory):
    """An open Peerline database. Make one with ``Database.open(path)``; close it when done.

    Usable as a context manager (``with Database.open(path) as db: ...``), which closes it.
    """

    __slots__ = ()

    @classmethod
    def open(cls, path: Path) -> "Database":
        """Open or create the database at ``path`` and bring its schema up to date.

        Raises ``StoreError`` if the file cannot be created, is not a SQLite database, is
        corrupt, or was written by a newer Peerline (it is never downgraded).
        """
        path = Path(path)
        try:
            _create_private(path)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create database: {exc}") from exc
        try:
            conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open database: {exc}") from exc
        try:
            _configure(conn, path)
            _migrate(conn, path)
            _restrict_files(path)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{path}: cannot open database: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    # -- peers -------------------------------------------------------------------------------
    def upsert_peer(
        self, public_key: bytes, number: str, host: str, port: int, *, now: float
    ) -> None:
        """Record a peer and its address; ``added_at`` and ``last_seen`` of a known peer stay."""
        check_key(public_key, "public_key")
        check_number(number, "number")
        check_host(host)
        check_port(port)
        check_time(now, "now")
        with self._write("upsert peer"):
            self._conn.execute(
                "INSERT INTO peers (public_key, number, host, port, added_at, last_seen)"
                " VALUES (?, ?, ?, ?, ?, NULL)"
                " ON CONFLICT (public_key) DO UPDATE SET"
                " number = excluded.number, host = excluded.host, port = excluded.port",
                (public_key, number, host, port, float(now)),
            )

    def touch_peer(self, public_key: bytes, host: str, port: int, *, now: float) -> bool:
        """Note that a known peer was heard from at ``host``:``port``; False if it is unknown."""
        check_key(public_key, "public_key")
        check_host(host)
        check_port(port)
        check_time(now, "now")
        with self._write("touch peer"):
            cur = self._conn.execute(
                "UPDATE peers SET host = ?, port = ?, last_seen = ? WHERE public_key = ?",
                (host, port, float(now), public_key),
            )
        return cur.rowcount > 0

    def peers(self) -> list[PeerRow]:
        """Every known peer, oldest first."""
        rows = self._read(
            "list peers",
            "SELECT public_key, number, host, port, added_at, last_seen FROM peers"
            " ORDER BY added_at, public_key",
            (),
        )
        return [_peer_row(r) for r in rows]

    def peer_by_key(self, public_key: bytes) -> PeerRow | None:
        """The peer with this key, or None."""
        check_key(public_key, "public_key")
        rows = self._read(
            "look up peer",
            "SELECT public_key, number, host, port, added_at, last_seen FROM peers"
            " WHERE public_key = ?",
            (public_key,),
        )
        return _peer_row(rows[0]) if rows else None

    def peers_by_number(self, number: str) -> list[PeerRow]:
        """Every peer whose key derives to ``number``; more than one is a collision to show."""
        check_number(number, "number")
        rows = self._read(
            "look up number",
            "SELECT public_key, number, host, port, added_at, last_seen FROM peers"
            " WHERE number = ? ORDER BY added_at, public_key",
            (number,),
        )
        return [_peer_row(r) for r in rows]

    # -- overlay contact cache and named state -----------------------------------------------
    def save_overlay_contacts(self, contacts: list[tuple[bytes, str, int]], *, now: float) -> None:
        """Remember ``(key, host, port)`` as good at ``now``; keep the newest few hundred."""
        for key, host, port in contacts:
            check_key(key, "public_key")
            check_host(host)
            check_port(port)
        check_time(now, "now")
        with self._write("save overlay contacts"):
            self._conn.executemany(
                "INSERT INTO overlay_contacts (public_key, host, port, last_ok) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (public_key) DO UPDATE SET"
                " host = excluded.host, port = excluded.port, last_ok = excluded.last_ok",
                [(k, h, p, float(now)) for k, h, p in contacts],
            )
            self._conn.execute(
                "DELETE FROM overlay_contacts WHERE public_key NOT IN"
                " (SELECT public_key FROM overlay_contacts ORDER BY last_ok DESC, public_key"
                " LIMIT ?)",
                (MAX_OVERLAY_CONTACTS,),
            )

    def overlay_contacts(self) -> list[tuple[bytes, str, int]]:
        """Cached contacts, most recently good first."""
        rows = self._read(
            "list overlay contacts",
            "SELECT public_key, host, port FROM overlay_contacts ORDER BY last_ok DESC, public_key",
            (),
        )
        return [(cast(bytes, k), cast(str, h), cast(int, p)) for k, h, p in rows]

    def get_state(self, name: str) -> str | None:
        rows = self._read("read state", "SELECT value FROM state WHERE name = ?", (name,))
        return cast(str, rows[0][0]) if rows else None

    def set_state(self, name: str, value: str) -> None:
        check_text(name, "name")
        check_text(value, "value")
        with self._write("write state"):
            self._conn.execute(
                "INSERT INTO state (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    # -- messages ----------------------------------------------------------------------------
    def add_message(
        self,
        *,
        message_id: bytes,
        direction: Direction,
        peer_key: bytes,
        peer_number: str | None,
        body: str,
        created_at: float,
        status: MessageStatus,
    ) -> bool:
        """Store a message; False (and nothing changes) if its id is already stored.

        This is how a message retransmitted by its sender is shown once: store it, and
        show or acknowledge it as new only when this returns True.
        """
        check_bytes(message_id, MESSAGE_ID_LEN, "message_id")
        if not (isinstance(direction, str) and direction in DIRECTIONS):
            raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}")
        check_key(peer_key, "peer_key")
        if peer_number is not None:
            check_number(peer_number, "peer_number")
        check_text(body, "body")
        check_time(created_at, "created_at")
        check_status(status)
        with self._write("add message"):
            cur = self._conn.execute(
                "INSERT INTO messages"
                " (id, direction, peer_key, peer_number, body, created_at, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (message_id, direction, peer_key, peer_number, body, float(created_at), status),
            )
        return cur.rowcount > 0

    def set_message_numbers(self, peer_key: bytes, number: str) -> int:
        """Fill in ``number`` on messages from ``peer_key`` stored before it was known."""
        check_key(peer_key, "peer_key")
        check_number(number, "number")
        with self._write("set message numbers"):
            cur = self._conn.execute(
                "UPDATE messages SET peer_number = ? WHERE peer_key = ? AND peer_number IS NULL",
                (number, peer_key),
            )
        return cur.rowcount

    def set_message_status(self, message_id: bytes, status: MessageStatus) -> bool:
        """Change a message's status; False if no message has this id."""
        check_bytes(message_id, MESSAGE_ID_LEN, "message_id")
        check_status(status)
        with self._write("set message status"):
            cur = self._conn.execute(
                "UPDATE messages SET status = ? WHERE id = ?", (status, message_id)
            )
        return cur.rowcount > 0

    def messages(self, limit: int = 100) -> list[MessageRow]:
        """The newest ``limit`` messages, oldest first (newest last, as a chat screen shows them).

        Messages with equal ``created_at`` keep the order in which they were stored.
        """
        if type(limit) is not int or limit < 0:
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        rows = self._read(
            "list messages",
            "SELECT id, direction, peer_key, peer_number, body, created_at, status FROM messages"
            " ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [_message_row(r) for r in reversed(rows)]

    def message(self, message_id: bytes) -> MessageRow | None:
        """The message with this id, or None."""
        check_bytes(message_id, MESSAGE_ID_LEN, "message_id")
        rows = self._read(
            "look up message",
            "SELECT id, direction, peer_key, peer_number, body, created_at, status FROM messages"
            " WHERE id = ?",
            (message_id,),
        )
        return _message_row(rows[0]) if rows else None


# -- opening -----------------------------------------------------------------------------------
def _create_private(path: Path) -> None:
    """Create an empty file with mode 0600, so the database is never briefly world-readable.

    An empty file is a valid empty SQLite database. The directory is synced so that the new
    entry itself survives a power cut.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _configure(conn: sqlite3.Connection, path: Path) -> None:
    """Set the durability pragmas; reading the journal mode also proves the file is SQLite."""
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if str(mode).lower() != "wal":
        raise StoreError(f"{path}: cannot enable WAL journal mode (got {mode!r})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")


def _user_version(conn: sqlite3.Connection) -> int:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return int(version)


def _check_not_newer(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is newer than this Peerline supports"
            f" ({SCHEMA_VERSION}); refusing to open it rather than downgrade"
        )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply each missing migration in its own transaction, bumping ``user_version`` with it.

    The version is read again inside each transaction, so two processes opening the same
    new file at once cannot both apply a migration.
    """
    _check_not_newer(_user_version(conn), path)
    while True:
        with transaction(conn):
            version = _user_version(conn)
            _check_not_newer(version, path)
            if version == SCHEMA_VERSION:
                return
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")


def _restrict_files(path: Path) -> None:
    """Make the database and its ``-wal``/``-shm`` files 0600 (SQLite copies the mode, but an
    existing file made by hand may be wider)."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StoreError(f"{p}: cannot check permissions: {exc}") from exc
        if stat.S_IMODE(st.st_mode) != _FILE_MODE:
            try:
                p.chmod(_FILE_MODE)
            except OSError as exc:
                raise StoreError(f"{p}: cannot make it private (mode 0600): {exc}") from exc


# -- rows --------------------------------------------------------------------------------------
def _peer_row(r: tuple[object, ...]) -> PeerRow:
    public_key, number, host, port, added_at, last_seen = r
    return PeerRow(
        public_key=cast(bytes, public_key),
        number=cast(str, number),
        host=cast(str, host),
        port=cast(int, port),
        added_at=cast(float, added_at),
        last_seen=cast("float | None", last_seen),
    )


def _message_row(r: tuple[object, ...]) -> MessageRow:
    message_id, direction, peer_key, peer_number, body, created_at, status = r
    return MessageRow(
        id=cast(bytes, message_id),
        direction=cast(Direction, direction),
        peer_key=cast(bytes, peer_key),
        peer_number=cast("str | None", peer_number),
        body=cast(str, body),
        created_at=cast(float, created_at),
        status=cast(MessageStatus, status),
    )
