"""The user's contacts: names, speed-dial slots, pinned keys and which of them were verified.

A contact is a number with a name. Its key is pinned the first time the phone learns it for
that number (a call, a dial, or by hand), and marked verified once the user has compared the
call's SAS with the far end and said so (``contacts verify``). Every later call with that key
shows "verified" without another comparison; a call for the number from any other key is a key
change, shown loudly on every screen and in every event, never accepted in silence.

The core holds the book (read from the store at start, ``PhoneState.contacts``); the shell
writes back what changes from ``ContactSaved`` and ``ContactRemoved`` events.
"""

import enum
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

MAX_CONTACTS = 1000
MAX_NAME_CHARS = 64
SPEED_DIAL_SLOTS = range(1, 100)


class Trust(enum.StrEnum):
    """What the book says about a key for a number."""

    VERIFIED = "verified"
    "The contact's pinned key, and its SAS was confirmed once."
    PINNED = "pinned"
    "The contact's pinned key, never verified."
    KEY_CHANGED = "key_changed"
    "A contact's number, but not the key pinned for it: a reset phone, or an impostor."
    UNKNOWN = "unknown"
    "Not a contact."


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactCard:
    number: str
    name: str
    public_key: bytes | None = None
    "The key pinned for the number (None until one is learnt)."
    verified_at: float | None = None
    "When the user confirmed the SAS with ``public_key`` (wall-clock seconds), else None."
    speed_dial: int | None = None
    auto_answer: bool = False
    "Intercom calls from this contact are answered at once."

    @property
    def verified(self) -> bool:
        return self.verified_at is not None and self.public_key is not None


def check_name(name: str) -> str:
    """A contact name as stored: stripped, 1..64 characters, no control characters."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise ValueError(f"a contact name is 1 to {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise ValueError("a contact name may not contain control characters")
    return name


class AddressBook:
    """Contacts by number, with indexes by key and by speed-dial slot."""

    def __init__(self, cards: Iterable[ContactCard] = ()) -> None:
        self._by_number: dict[str, ContactCard] = {}
        for card in cards:
            self._by_number[card.number] = card

    def save(self, card: ContactCard) -> ContactCard:
        """Add or replace the contact for ``card.number``. A new key clears verification.

        :raises ValueError: a bad name, a slot out of range or held by another contact, or a
            full book.
        """
        card = replace(card, name=check_name(card.name))
        old = self._by_number.get(card.number)
        if old is None and len(self._by_number) >= MAX_CONTACTS:
            raise ValueError(f"the contact list is full ({MAX_CONTACTS})")
        if card.speed_dial is not None:
            if card.speed_dial not in SPEED_DIAL_SLOTS:
                raise ValueError("speed-dial slots are 1 to 99")
            holder = self.by_slot(card.speed_dial)
            if holder is not None and holder.number != card.number:
                raise ValueError(f"speed dial {card.speed_dial} is {holder.name}'s")
        moved = old is not None and old.public_key != card.public_key
        if moved and old is not None and card.verified_at == old.verified_at:
            card = replace(card, verified_at=None)  # a new key is not the verified one
        self._by_number[card.number] = card
        return card

    def remove(self, number: str) -> bool:
        return self._by_number.pop(number, None) is not None

    def get(self, number: str | None) -> ContactCard | None:
        return None if number is None else self._by_number.get(number)

    def by_key(self, key: bytes) -> ContactCard | None:
        return next((c for c in self._by_number.values() if c.public_key == key), None)

    def by_slot(self, slot: int) -> ContactCard | None:
        return next((c for c in self._by_number.values() if c.speed_dial == slot), None)

    def trust(self, number: str | None, key: bytes) -> Trust:
        """How far ``key`` is trusted for ``number`` (or, without a number, as any contact's)."""
        card = self.get(number) if number is not None else self.by_key(key)
        if card is None or card.public_key is None:
            return Trust.UNKNOWN
        if card.public_key != key:
            return Trust.KEY_CHANGED
        return Trust.VERIFIED if card.verified else Trust.PINNED

    def intercom_keys(self) -> frozenset[bytes]:
        return frozenset(
            c.public_key for c in self._by_number.values() if c.auto_answer and c.public_key
        )

    def __len__(self) -> int:
        return len(self._by_number)

    def __iter__(self) -> Iterator[ContactCard]:
        return iter(sorted(self._by_number.values(), key=lambda c: (c.name.casefold(), c.number)))
