"""The owner's address book in the database: names, speed dial slots, pinned and verified
keys, intercom (auto-answer) flags."""

from dataclasses import dataclass
from typing import cast

from .checks import (
    MAX_CONTACTS,
    UNSET,
    Unset,
    check_contact_name,
    check_flag,
    check_key,
    check_number,
    check_speed_dial,
    check_time,
)
from .sqlite import SqliteStore


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


class ContactStore(SqliteStore):
    """The ``contacts`` table (schema migration 4), a part of ``Database``."""

    __slots__ = ()

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
        check_number(number, "number")
        check_contact_name(name)
        if public_key is not None:
            check_key(public_key, "public_key")
        if speed_dial is not None:
            check_speed_dial(speed_dial)
        check_flag(auto_answer, "auto_answer")
        check_time(now, "now")
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
        name: str | Unset = UNSET,
        public_key: bytes | Unset | None = UNSET,
        speed_dial: int | Unset | None = UNSET,
        auto_answer: bool | Unset = UNSET,
    ) -> ContactRow | None:
        """Change the given fields of a contact (None clears ``public_key`` or ``speed_dial``);
        the contact as it is now, or None if ``number`` is not a contact.

        Pinning a different key (or none) clears ``verified_at``: the owner compared the SAS
        with the old key, which says nothing about the new one. ``ValueError`` if the speed
        dial slot belongs to another contact.
        """
        check_number(number, "number")
        if name is not UNSET:
            check_contact_name(name)
        if public_key is not UNSET and public_key is not None:
            check_key(public_key, "public_key")
        if speed_dial is not UNSET and speed_dial is not None:
            check_speed_dial(speed_dial)
        if auto_answer is not UNSET:
            check_flag(auto_answer, "auto_answer")
        with self._write("update contact"):
            old = self._contact_now(number)
            if old is None:
                return None
            new_key = old.public_key if public_key is UNSET else public_key
            new_slot = old.speed_dial if speed_dial is UNSET else speed_dial
            if new_slot is not None and new_slot != old.speed_dial:
                self._check_slot_free(new_slot, number)
            new = ContactRow(
                number=number,
                name=old.name if name is UNSET else name,
                public_key=new_key,
                verified_at=old.verified_at if new_key == old.public_key else None,
                speed_dial=new_slot,
                auto_answer=old.auto_answer if auto_answer is UNSET else auto_answer,
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
        check_number(number, "number")
        check_key(public_key, "public_key")
        check_time(now, "now")
        with self._write("verify contact"):
            self._conn.execute(
                "UPDATE contacts SET public_key = ?, verified_at = ? WHERE number = ?",
                (public_key, float(now), number),
            )
            return self._contact_now(number)

    def remove_contact(self, number: str) -> bool:
        """Delete a contact (its calls stay in the history); False if it was not one."""
        check_number(number, "number")
        with self._write("remove contact"):
            cur = self._conn.execute("DELETE FROM contacts WHERE number = ?", (number,))
        return cur.rowcount > 0

    def contact(self, number: str) -> ContactRow | None:
        """The contact with this number, or None."""
        check_number(number, "number")
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
        check_key(public_key, "public_key")
        rows = self._read(
            "look up contact by key",
            "SELECT number, name, public_key, verified_at, speed_dial, auto_answer, created_at"
            " FROM contacts WHERE public_key = ? ORDER BY verified_at IS NULL, number LIMIT 1",
            (public_key,),
        )
        return _contact_row(rows[0]) if rows else None

    def contact_by_speed_dial(self, slot: int) -> ContactRow | None:
        """The contact under speed dial ``slot`` (1..99), or None."""
        check_speed_dial(slot)
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
