"""The SQLite plumbing the parts of the database share: one connection in autocommit mode,
writes that are one ``BEGIN IMMEDIATE`` transaction each, and errors that name the file."""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self, cast

from peerline.errors import StoreError


class SqliteStore:
    """An open connection and what every part of ``Database`` does with it."""

    __slots__ = ("_conn", "_path")

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        """Private: use ``Database.open``, which sets the pragmas and migrates the schema."""
        self._conn = conn
        self._path = path

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

    @contextmanager
    def _write(self, what: str) -> Iterator[None]:
        """One atomic write: everything in the block commits together or not at all."""
        try:
            with transaction(self._conn):
                yield
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: cannot {what}: {exc}") from exc

    def _read(self, what: str, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        try:
            return cast(list[tuple[object, ...]], self._conn.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: cannot {what}: {exc}") from exc


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
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
