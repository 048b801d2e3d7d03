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

import enum
import math
import os
import sqlite3
import stat
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Self, cast, get_args

from peerline.errors import StoreError

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

Direction = Literal["in", "out"]
MessageStatus = Literal["queued", "sent", "delivered", "failed", "received"]
CallOutcome = Literal[
    "live", "answered", "missed", "rejected", "busy", "forwarded", "cancelled", "failed"
]
"""How a call in the history went; ``live`` until ``call_ended`` (or a restart) settles it."""

_DIRECTIONS: frozenset[str] = frozenset(get_args(Direction))
_STATUSES: frozenset[str] = frozenset(get_args(MessageStatus))
_OUTCOMES: frozenset[str] = frozenset(get_args(CallOutcome))

KEY_LEN = 32
"""Bytes in a public key (Ed25519)."""
MESSAGE_ID_LEN = 16
"""Bytes in a message id; the sender picks it at random, so retransmissions reuse it."""
NUMBER_LEN = 12
"""Digits in a dialable number."""
CALL_ID_LEN = 8
"""Bytes in a call id (the wire's ``CALL_ID_SIZE``; the caller picks it at random)."""
MAX_NAME_LEN = 64
"""Characters in a contact's name or a caller's display name (the wire allows 64 UTF-8 bytes)."""
_MAX_HOST_LEN = 255
_MAX_TARGET_LEN = 64
_MAX_END_REASON_LEN = 32
_SPEED_DIALS = range(1, 100)
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
MAX_OVERLAY_CONTACTS = 256
"""Contacts kept in the cache; the most recently good ones win."""
MAX_CONTACTS = 1000
"""Entries in the address book; a handset's menu is no place for more."""
MAX_CALL_HISTORY = 1000
"""Calls kept in the history; ``call_started`` drops the oldest beyond this."""

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


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactRow:
    """One entry in the owner's address book."""

    number: str
    name: str
    public_key: bytes | None
    """The key pinned for this number: None until the owner pins or verifies one."""
    verified_at: float | None
    """When the owner confirmed the SAS on a call with ``public_key``; None if never."""
    speed_dial: int | None
    """The speed dial slot (1..99) that calls this contact, or None."""
    auto_answer: bool
    """Intercom: a call from this contact is answered at once."""
    created_at: float

    @property
    def verified(self) -> bool:
        """True if the owner confirmed the SAS with the key that is pinned now."""
        return self.verified_at is not None and self.public_key is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRow:
    """One call in the history, made or received."""

    call_id: bytes
    direction: Direction
    peer_key: bytes | None
    """None for an outgoing call that never found the callee's key."""
    number: str | None
    """None while the far phone's number is unknown (still being derived, or never resolved)."""
    target: str
    """What the owner dialled (outgoing calls); empty for incoming ones."""
    name: str
    """The display name the caller sent, as sent; the screen sanitizes it."""
    started_at: float
    answered_at: float | None
    ended_at: float | None
    end_reason: str | None
    """Why it ended (an ``EndReason`` value such as ``hangup``, or ``interrupted``)."""
    outcome: CallOutcome
    forwarded_to: str | None
    """The number the call went on to, when ``outcome`` is ``forwarded``."""
    verified: bool
    """The SAS was confirmed (or the key matched a verified contact) during the call."""
    seen: bool
    """False for a missed call the owner has not looked at yet."""

    @property
    def duration_s(self) -> float | None:
        """Seconds from answer to end; None unless both are known.

        Never negative: the wall clock may step back (an NTP correction) during a call.
        """
        if self.answered_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.answered_at)


class _Unset(enum.Enum):
    """The type of ``_UNSET``: marks an argument that was not given where None is a value."""

    UNSET = enum.auto()


_UNSET: Final = _Unset.UNSET


class Database:
    """An open Peerline database. Make one with ``Database.open(path)``; close it when done.

    Usable as a context manager (``with Database.open(path) as db: ...``), which closes it.
    """

    __slots__ = ("_conn", "_path")

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        """Private: use ``Database.open``, which sets the pragmas and migrates the schema."""
        self._conn = conn
        self._path = path

    # -- lifecycle ---------------------------------------------------------------------------
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

    def close(self) -> None:
        """Close the connection; committed data is already durable. Calling it twice is fine."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def path(self) -> Path:
        """The database file, for messages and ``status``."""
        return self._path

    # -- peers -------------------------------------------------------------------------------
    def upsert_peer(
        self, public_key: bytes, number: str, host: str, port: int, *, now: float
    ) -> None:
        """Record a peer and its address; ``added_at`` and ``last_seen`` of a known peer stay."""
        _check_key(public_key, "public_key")
        _check_number(number, "number")
        _check_host(host)
        _check_port(port)
        _check_time(now, "now")
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
        _check_key(public_key, "public_key")
        _check_host(host)
        _check_port(port)
        _check_time(now, "now")
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
        _check_key(public_key, "public_key")
        rows = self._read(
            "look up peer",
            "SELECT public_key, number, host, port, added_at, last_seen FROM peers"
            " WHERE public_key = ?",
            (public_key,),
        )
        return _peer_row(rows[0]) if rows else None

    def peers_by_number(self, number: str) -> list[PeerRow]:
        """Every peer whose key derives to ``number``; more than one is a collision to show."""
        _check_number(number, "number")
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
            _check_key(key, "public_key")
            _check_host(host)
            _check_port(port)
        _check_time(now, "now")
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
        _check_text(name, "name")
        _check_text(value, "value")
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
        _check_bytes(message_id, MESSAGE_ID_LEN, "message_id")
        if not (isinstance(direction, str) and direction in _DIRECTIONS):
            raise ValueError(f"direction must be one of {sorted(_DIRECTIONS)}, got {direction!r}")
        _check_key(peer_key, "peer_key")
        if peer_number is not None:
            _check_number(peer_number, "peer_number")
        _check_text(body, "body")
        _check_time(created_at, "created_at")
        _check_status(status)
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
        _check_key(peer_key, "peer_key")
        _check_number(number, "number")
        with self._write("set message numbers"):
            cur = self._conn.execute(
                "UPDATE messages SET peer_number = ? WHERE peer_key = ? AND peer_number IS NULL",
                (number, peer_key),
            )
        return cur.rowcount

    def set_message_status(self, message_id: bytes, status: MessageStatus) -> bool:
        """Change a message's status; False if no message has this id."""
        _check_bytes(message_id, MESSAGE_ID_LEN, "message_id")
        _check_status(status)
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
        _check_bytes(message_id, MESSAGE_ID_LEN, "message_id")
        rows = self._read(
            "look up message",
            "SELECT id, direction, peer_key, peer_number, body, created_at, status FROM messages"
            " WHERE id = ?",
            (message_id,),
        )
        return _message_row(rows[0]) if rows else None

    # -- contacts ----------------------------------------------------------------------------
    def add_contact(
        self,
        number: str,
        name: str,
        *,
        public_key: bytes | None = None,
        speed_dial: int | None = None,
        auto_answer: bool = False,
        now: float,
    ) -> ContactRow:
        """Add a contact, unverified. ``ValueError`` if the number is already a contact, the
        speed dial slot is taken (naming who holds it) or the book is full.

        Those three are checked inside the write transaction, so when one is refused nothing
        changes, and a second writer cannot slip in between the check and the insert.
        """
        _check_number(number, "number")
        _check_contact_name(name)
        if public_key is not None:
            _check_key(public_key, "public_key")
        if speed_dial is not None:
            _check_speed_dial(speed_dial)
        _check_flag(auto_answer, "auto_answer")
        _check_time(now, "now")
        with self._write("add contact"):
            if self._contact_now(number) is not None:
                raise ValueError(f"{number} is already a contact")
            if speed_dial is not None:
                self._check_slot_free(speed_dial, number)
            (count,) = self._conn.execute("SELECT count(*) FROM contacts").fetchone()
            if count >= MAX_CONTACTS:
                raise ValueError(f"the address book is full ({MAX_CONTACTS} contacts)")
            self._conn.execute(
                "INSERT INTO contacts"
                " (number, name, public_key, verified_at, speed_dial, auto_answer, created_at)"
                " VALUES (?, ?, ?, NULL, ?, ?, ?)",
                (number, name, public_key, speed_dial, int(auto_answer), float(now)),
            )
        return ContactRow(
            number=number,
            name=name,
            public_key=public_key,
            verified_at=None,
            speed_dial=speed_dial,
            auto_answer=auto_answer,
            created_at=float(now),
        )

    def update_contact(
        self,
        number: str,
        *,
        name: str | _Unset = _UNSET,
        public_key: bytes | _Unset | None = _UNSET,
        speed_dial: int | _Unset | None = _UNSET,
        auto_answer: bool | _Unset = _UNSET,
    ) -> ContactRow | None:
        """Change the given fields of a contact (None clears ``public_key`` or ``speed_dial``);
        the contact as it is now, or None if ``number`` is not a contact.

        Pinning a different key (or none) clears ``verified_at``: the owner compared the SAS
        with the old key, which says nothing about the new one. ``ValueError`` if the speed
        dial slot belongs to another contact.
        """
        _check_number(number, "number")
        if name is not _UNSET:
            _check_contact_name(name)
        if public_key is not _UNSET and public_key is not None:
            _check_key(public_key, "public_key")
        if speed_dial is not _UNSET and speed_dial is not None:
            _check_speed_dial(speed_dial)
        if auto_answer is not _UNSET:
            _check_flag(auto_answer, "auto_answer")
        with self._write("update contact"):
            old = self._contact_now(number)
            if old is None:
                return None
            new_key = old.public_key if public_key is _UNSET else public_key
            new_slot = old.speed_dial if speed_dial is _UNSET else speed_dial
            if new_slot is not None and new_slot != old.speed_dial:
                self._check_slot_free(new_slot, number)
            new = ContactRow(
                number=number,
                name=old.name if name is _UNSET else name,
                public_key=new_key,
                verified_at=old.verified_at if new_key == old.public_key else None,
                speed_dial=new_slot,
                auto_answer=old.auto_answer if auto_answer is _UNSET else auto_answer,
                created_at=old.created_at,
            )
            self._conn.execute(
                "UPDATE contacts SET name = ?, public_key = ?, verified_at = ?, speed_dial = ?,"
                " auto_answer = ? WHERE number = ?",
                (
                    new.name,
                    new.public_key,
                    new.verified_at,
                    new.speed_dial,
                    int(new.auto_answer),
                    number,
                ),
            )
        return new

    def verify_contact(self, number: str, public_key: bytes, *, now: float) -> ContactRow | None:
        """Pin ``public_key`` and mark it verified at ``now`` (the owner confirmed the SAS on a
        call with that key); None if ``number`` is not a contact."""
        _check_number(number, "number")
        _check_key(public_key, "public_key")
        _check_time(now, "now")
        with self._write("verify contact"):
            self._conn.execute(
                "UPDATE contacts SET public_key = ?, verified_at = ? WHERE number = ?",
                (public_key, float(now), number),
            )
            return self._contact_now(number)

    def remove_contact(self, number: str) -> bool:
        """Delete a contact (its calls stay in the history); False if it was not one."""
        _check_number(number, "number")
        with self._write("remove contact"):
            cur = self._conn.execute("DELETE FROM contacts WHERE number = ?", (number,))
        return cur.rowcount > 0

    def contact(self, number: str) -> ContactRow | None:
        """The contact with this number, or None."""
        _check_number(number, "number")
        rows = self._read(
            "look up contact",
            "SELECT number, name, public_key, verified_at, speed_dial, auto_answer, created_at"
            " FROM contacts WHERE number = ?",
            (number,),
        )
        return _contact_row(rows[0]) if rows else None

    def contact_by_key(self, public_key: bytes) -> ContactRow | None:
        """The contact that pinned this key, or None (how an incoming call finds its name).

        The store does not derive numbers from keys, so nothing stops two contacts pinning one
        key; then a verified one wins, and among equals the lowest number, so the answer is
        the same every time.
        """
        _check_key(public_key, "public_key")
        rows = self._read(
            "look up contact by key",
            "SELECT number, name, public_key, verified_at, speed_dial, auto_answer, created_at"
            " FROM contacts WHERE public_key = ? ORDER BY verified_at IS NULL, number LIMIT 1",
            (public_key,),
        )
        return _contact_row(rows[0]) if rows else None

    def contact_by_speed_dial(self, slot: int) -> ContactRow | None:
        """The contact under speed dial ``slot`` (1..99), or None."""
        _check_speed_dial(slot)
        rows = self._read(
            "look up speed dial",
            "SELECT number, name, public_key, verified_at, speed_dial, auto_answer, created_at"
            " FROM contacts WHERE speed_dial = ?",
            (slot,),
        )
        return _contact_row(rows[0]) if rows else None

    def contacts(self) -> list[ContactRow]:
        """Every contact, by name ignoring case, then by number.

        Sorted here rather than by SQLite, whose NOCASE folds ASCII only: "émile" and "Émile"
        must sort together.
        """
        rows = self._read(
            "list contacts",
            "SELECT number, name, public_key, verified_at, speed_dial, auto_answer, created_at"
            " FROM contacts",
            (),
        )
        return sorted((_contact_row(r) for r in rows), key=lambda c: (c.name.casefold(), c.number))

    # -- call history ------------------------------------------------------------------------
    def call_started(
        self,
        *,
        call_id: bytes,
        direction: Direction,
        peer_key: bytes | None,
        number: str | None,
        target: str,
        name: str,
        started_at: float,
        verified: bool = False,
    ) -> bool:
        """Record a call as it starts (outcome ``live``); False (nothing changes) if its id is
        already recorded, so a repeated event records the call once.

        The history is bounded: the same transaction drops the oldest calls beyond
        ``MAX_CALL_HISTORY``. Live calls are never dropped, so ``call_ended`` still finds them.

        ``name`` is stored as the far phone sent it (any text the wire allows), not refused:
        the call belongs in the history whatever the caller calls itself.
        """
        _check_bytes(call_id, CALL_ID_LEN, "call_id")
        _check_direction(direction)
        if peer_key is not None:
            _check_key(peer_key, "peer_key")
        if number is not None:
            _check_number(number, "number")
        _check_short_text(target, "target", _MAX_TARGET_LEN)
        _check_short_text(name, "name", MAX_NAME_LEN)
        _check_time(started_at, "started_at")
        _check_flag(verified, "verified")
        with self._write("record call"):
            cur = self._conn.execute(
                "INSERT INTO calls (call_id, direction, peer_key, number, target, name,"
                " started_at, outcome, verified, seen)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'live', ?, 1)"
                " ON CONFLICT (call_id) DO NOTHING",
                (
                    call_id,
                    direction,
                    peer_key,
                    number,
                    target,
                    name,
                    float(started_at),
                    int(verified),
                ),
            )
            if cur.rowcount > 0:
                self._conn.execute(
                    "DELETE FROM calls WHERE outcome != 'live' AND rowid NOT IN"
                    " (SELECT rowid FROM calls ORDER BY started_at DESC, rowid DESC LIMIT ?)",
                    (MAX_CALL_HISTORY,),
                )
        return cur.rowcount > 0

    def call_updated(
        self,
        call_id: bytes,
        *,
        peer_key: bytes | _Unset | None = _UNSET,
        number: str | _Unset | None = _UNSET,
        verified: bool | _Unset = _UNSET,
        answered_at: float | _Unset = _UNSET,
    ) -> bool:
        """Change the given fields of a recorded call (the caller was identified, the SAS was
        confirmed, the call was answered); False if no call has this id."""
        _check_bytes(call_id, CALL_ID_LEN, "call_id")
        if peer_key is not _UNSET and peer_key is not None:
            _check_key(peer_key, "peer_key")
        if number is not _UNSET and number is not None:
            _check_number(number, "number")
        if verified is not _UNSET:
            _check_flag(verified, "verified")
        if answered_at is not _UNSET:
            _check_time(answered_at, "answered_at")
        with self._write("update call"):
            row = self._conn.execute(
                "SELECT peer_key, number, verified, answered_at FROM calls WHERE call_id = ?",
                (call_id,),
            ).fetchone()
            if row is None:
                return False
            old_key, old_number, old_verified, old_answered_at = row
            self._conn.execute(
                "UPDATE calls SET peer_key = ?, number = ?, verified = ?, answered_at = ?"
                " WHERE call_id = ?",
                (
                    old_key if peer_key is _UNSET else peer_key,
                    old_number if number is _UNSET else number,
                    old_verified if verified is _UNSET else int(verified),
                    old_answered_at if answered_at is _UNSET else float(answered_at),
                    call_id,
                ),
            )
        return True

    def call_ended(
        self,
        call_id: bytes,
        *,
        ended_at: float,
        end_reason: str,
        outcome: CallOutcome,
        forwarded_to: str | None = None,
    ) -> bool:
        """Settle a live call: when and why it ended, and how it went. A ``missed`` call counts
        as unseen until ``mark_missed_seen``.

        False if no live call has this id: an unknown call, or one already settled (an end
        reported twice must not mark a missed call the owner has seen as unseen again).
        ``forwarded_to`` is the number the call went on to, and only for ``forwarded``.
        """
        _check_bytes(call_id, CALL_ID_LEN, "call_id")
        _check_time(ended_at, "ended_at")
        _check_end_reason(end_reason)
        if not (isinstance(outcome, str) and outcome in _OUTCOMES and outcome != "live"):
            raise ValueError(
                f"outcome must be one of {sorted(_OUTCOMES - {'live'})}, got {outcome!r}"
            )
        if forwarded_to is not None:
            _check_number(forwarded_to, "forwarded_to")
            if outcome != "forwarded":
                raise ValueError(f"forwarded_to is only for outcome 'forwarded', not {outcome!r}")
        with self._write("end call"):
            cur = self._conn.execute(
                "UPDATE calls SET ended_at = ?, end_reason = ?, outcome = ?, forwarded_to = ?,"
                " seen = ? WHERE call_id = ? AND outcome = 'live'",
                (
                    float(ended_at),
                    str(end_reason),
                    outcome,
                    forwarded_to,
                    int(outcome != "missed"),
                    call_id,
                ),
            )
        return cur.rowcount > 0

    def call_forwarded(self, call_id: bytes, forwarded_to: str) -> bool:
        """A settled call that failed went on to ``forwarded_to`` after all (offline
        forwarding, found once the call had ended unreachable). False if no such call."""
        _check_bytes(call_id, CALL_ID_LEN, "call_id")
        _check_number(forwarded_to, "forwarded_to")
        with self._write("forward call"):
            cur = self._conn.execute(
                "UPDATE calls SET outcome = 'forwarded', forwarded_to = ?"
                " WHERE call_id = ? AND outcome = 'failed'",
                (forwarded_to, call_id),
            )
        return cur.rowcount > 0

    def set_call_numbers(self, peer_key: bytes, number: str) -> int:
        """Fill in ``number`` on calls with ``peer_key`` recorded before it was known."""
        _check_key(peer_key, "peer_key")
        _check_number(number, "number")
        with self._write("set call numbers"):
            cur = self._conn.execute(
                "UPDATE calls SET number = ? WHERE peer_key = ? AND number IS NULL",
                (number, peer_key),
            )
        return cur.rowcount

    def close_interrupted_calls(self, *, now: float) -> int:
        """Settle every call still ``live`` (the phone stopped mid-call); how many there were.

        Call this once at start, before any new call. Such a call ends at ``now`` (the real end
        was lost with the process; never before it started or was answered) with reason
        ``interrupted``: ``answered`` if it was, otherwise an incoming call was ``missed``
        (and unseen) and an outgoing one ``cancelled``.
        """
        _check_time(now, "now")
        with self._write("close interrupted calls"):
            cur = self._conn.execute(
                "UPDATE calls SET"
                " ended_at = max(?, coalesce(answered_at, started_at)),"
                " end_reason = 'interrupted',"
                " outcome = CASE WHEN answered_at IS NOT NULL THEN 'answered'"
                " WHEN direction = 'in' THEN 'missed' ELSE 'cancelled' END,"
                " seen = CASE WHEN answered_at IS NULL AND direction = 'in' THEN 0 ELSE seen END"
                " WHERE outcome = 'live'",
                (float(now),),
            )
        return cur.rowcount

    def calls(self, limit: int = 100, *, missed_only: bool = False) -> list[CallRow]:
        """The newest ``limit`` calls, newest first (as the history screen lists them), or only
        the missed ones. Calls started at the same time: the one recorded last comes first."""
        if type(limit) is not int or limit < 0:
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        _check_flag(missed_only, "missed_only")
        if missed_only:
            sql = (
                "SELECT call_id, direction, peer_key, number, target, name, started_at,"
                " answered_at, ended_at, end_reason, outcome, forwarded_to, verified, seen"
                " FROM calls WHERE outcome = 'missed' ORDER BY started_at DESC, rowid DESC LIMIT ?"
            )
        else:
            sql = (
                "SELECT call_id, direction, peer_key, number, target, name, started_at,"
                " answered_at, ended_at, end_reason, outcome, forwarded_to, verified, seen"
                " FROM calls ORDER BY started_at DESC, rowid DESC LIMIT ?"
            )
        return [_call_row(r) for r in self._read("list calls", sql, (limit,))]

    def call(self, call_id: bytes) -> CallRow | None:
        """The call with this id, or None."""
        _check_bytes(call_id, CALL_ID_LEN, "call_id")
        rows = self._read(
            "look up call",
            "SELECT call_id, direction, peer_key, number, target, name, started_at,"
            " answered_at, ended_at, end_reason, outcome, forwarded_to, verified, seen"
            " FROM calls WHERE call_id = ?",
            (call_id,),
        )
        return _call_row(rows[0]) if rows else None

    def missed_unseen(self) -> int:
        """Missed calls the owner has not looked at (the idle screen's count)."""
        rows = self._read(
            "count missed calls",
            "SELECT count(*) FROM calls WHERE outcome = 'missed' AND seen = 0",
            (),
        )
        return cast(int, rows[0][0])

    def mark_missed_seen(self) -> int:
        """Mark every missed call seen (the owner opened the history); how many were unseen."""
        with self._write("mark missed calls seen"):
            cur = self._conn.execute(
                "UPDATE calls SET seen = 1 WHERE outcome = 'missed' AND seen = 0"
            )
        return cur.rowcount

    # -- plumbing ----------------------------------------------------------------------------
    @contextmanager
    def _write(self, what: str) -> Iterator[None]:
        """One atomic write: everything in the block commits together or not at all."""
        try:
            with _transaction(self._conn):
                yield
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: cannot {what}: {exc}") from exc

    def _contact_now(self, number: str) -> ContactRow | None:
        """The contact, read inside the caller's write transaction."""
        row = self._conn.execute(
            "SELECT number, name, public_key, verified_at, speed_dial, auto_answer, created_at"
            " FROM contacts WHERE number = ?",
            (number,),
        ).fetchone()
        return _contact_row(row) if row is not None else None

    def _check_slot_free(self, slot: int, number: str) -> None:
        """``ValueError`` naming the contact other than ``number`` that holds speed dial
        ``slot``; inside the caller's write transaction."""
        row = self._conn.execute(
            "SELECT number, name FROM contacts WHERE speed_dial = ? AND number != ?",
            (slot, number),
        ).fetchone()
        if row is not None:
            raise ValueError(f"speed dial {slot} is taken by {row[1]} ({row[0]})")

    def _read(self, what: str, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        try:
            return cast(list[tuple[object, ...]], self._conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: cannot {what}: {exc}") from exc


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
        with _transaction(conn):
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


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if the block raises.

    The connection is in autocommit mode (``isolation_level=None``) so that DDL in migrations
    is transactional too; Python 3.11's implicit transactions would commit before it.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (disk full, I/O error) can leave the transaction open; end it so the
        # next write can begin.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


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


def _contact_row(r: tuple[object, ...]) -> ContactRow:
    number, name, public_key, verified_at, speed_dial, auto_answer, created_at = r
    return ContactRow(
        number=cast(str, number),
        name=cast(str, name),
        public_key=cast("bytes | None", public_key),
        verified_at=cast("float | None", verified_at),
        speed_dial=cast("int | None", speed_dial),
        auto_answer=bool(auto_answer),
        created_at=cast(float, created_at),
    )


def _call_row(r: tuple[object, ...]) -> CallRow:
    (
        call_id,
        direction,
        peer_key,
        number,
        target,
        name,
        started_at,
        answered_at,
        ended_at,
        end_reason,
        outcome,
        forwarded_to,
        verified,
        seen,
    ) = r
    return CallRow(
        call_id=cast(bytes, call_id),
        direction=cast(Direction, direction),
        peer_key=cast("bytes | None", peer_key),
        number=cast("str | None", number),
        target=cast(str, target),
        name=cast(str, name),
        started_at=cast(float, started_at),
        answered_at=cast("float | None", answered_at),
        ended_at=cast("float | None", ended_at),
        end_reason=cast("str | None", end_reason),
        outcome=cast(CallOutcome, outcome),
        forwarded_to=cast("str | None", forwarded_to),
        verified=bool(verified),
        seen=bool(seen),
    )


# -- argument checks (before the database is touched) ------------------------------------------
def _check_bytes(value: object, length: int, name: str) -> None:
    if type(value) is not bytes:
        raise ValueError(f"{name} must be bytes, got {type(value).__name__}")
    if len(value) != length:
        raise ValueError(f"{name} must be {length} bytes, got {len(value)}")


def _check_key(value: object, name: str) -> None:
    _check_bytes(value, KEY_LEN, name)


def _check_number(value: object, name: str) -> None:
    if not (
        isinstance(value, str) and len(value) == NUMBER_LEN and value.isascii() and value.isdigit()
    ):
        raise ValueError(f"{name} must be {NUMBER_LEN} ASCII digits, got {value!r}")


def _check_text(value: object, name: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be str, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{name} is not valid Unicode text: {exc}") from exc


def _check_host(value: object) -> None:
    _check_text(value, "host")
    assert isinstance(value, str)
    if not 0 < len(value) <= _MAX_HOST_LEN or "\x00" in value:
        raise ValueError(f"host must be 1..{_MAX_HOST_LEN} characters without NUL, got {value!r}")


def _check_port(value: object) -> None:
    if type(value) is not int or not 1 <= value <= 65535:
        raise ValueError(f"port must be an integer 1..65535, got {value!r}")


def _check_time(value: object, name: str) -> None:
    if type(value) not in (int, float) or not math.isfinite(cast(float, value)):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")


def _check_status(value: object) -> None:
    if not (isinstance(value, str) and value in _STATUSES):
        raise ValueError(f"status must be one of {sorted(_STATUSES)}, got {value!r}")


def _check_direction(value: object) -> None:
    if not (isinstance(value, str) and value in _DIRECTIONS):
        raise ValueError(f"direction must be one of {sorted(_DIRECTIONS)}, got {value!r}")


def _check_flag(value: object, name: str) -> None:
    """Only a real bool: 0, 1 or "yes" here is more likely a swapped argument than a flag."""
    if type(value) is not bool:
        raise ValueError(f"{name} must be True or False, got {value!r}")


def _check_speed_dial(value: object) -> None:
    if type(value) is not int or value not in _SPEED_DIALS:
        raise ValueError(
            f"speed_dial must be an integer {_SPEED_DIALS[0]}..{_SPEED_DIALS[-1]}, got {value!r}"
        )


def _has_control(value: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in value)


def _check_contact_name(value: object) -> None:
    """A name the owner typed: shown on one line of a small screen, so no control characters
    (newlines, escapes) and not blank."""
    _check_text(value, "name")
    assert isinstance(value, str)
    if not 0 < len(value) <= MAX_NAME_LEN or _has_control(value) or value.isspace():
        raise ValueError(
            f"name must be 1..{MAX_NAME_LEN} characters, not blank, without control characters,"
            f" got {value!r}"
        )


def _check_short_text(value: object, name: str, max_len: int) -> None:
    _check_text(value, name)
    assert isinstance(value, str)
    if len(value) > max_len:
        raise ValueError(f"{name} must be at most {max_len} characters, got {len(value)}")


def _check_end_reason(value: object) -> None:
    _check_text(value, "end_reason")
    assert isinstance(value, str)
    if not 0 < len(value) <= _MAX_END_REASON_LEN or _has_control(value):
        raise ValueError(
            f"end_reason must be 1..{_MAX_END_REASON_LEN} characters without control"
            f" characters, got {value!r}"
        )
