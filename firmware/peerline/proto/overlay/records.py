"""Making and checking directory records: signature, number binding, bounds.

A record is accepted only if its signature verifies under the key it carries and that key
derives to the record's number. The derivation is argon2id (~45-70 ms here, ~0.7 s on a Pi Zero
2 W), too slow for the event loop, so it goes through ``NumberBinding``: the daemon runs it in a
worker thread and answers "not yet" meanwhile; simulations and tests answer at once.
"""

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum
from typing import Protocol

from peerline.errors import DecodeError, InvalidKey
from peerline.proto.identity import Identity, verify_signature, x25519_public_from_ed25519
from peerline.wire.overlay import MAX_RECORD_SIZE
from peerline.wire.record import Record, decode_record


class NumberBinding(Protocol):
    """Which number a public key derives to (the check behind every record)."""

    def number_of(self, public_key: bytes, *, urgent: bool = False) -> str | None:
        """The number, if known now; None means "being derived, ask again later".

        ``urgent`` marks a key the phone's user is waiting on (a lookup), as opposed to one in a
        record stored for others.

        An implementation that answers None must call the overlay's ``bindings_changed``
        (through its driver) once it knows more.
        """
        ...


class SyncBinding:
    """Derives on the spot with ``derive`` and remembers the answers (tests, simulation)."""

    __slots__ = ("_cache", "_capacity", "_derive", "derivations")

    def __init__(self, derive: Callable[[bytes], str], *, capacity: int = 8192) -> None:
        self._derive = derive
        self._capacity = capacity
        self._cache: OrderedDict[bytes, str] = OrderedDict()
        self.derivations = 0

    def number_of(self, public_key: bytes, *, urgent: bool = False) -> str | None:
        number = self._cache.get(public_key)
        if number is not None:
            self._cache.move_to_end(public_key)
        else:
            number = self._derive(public_key)
            self.derivations += 1
            self._cache[public_key] = number
            if len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        return number


class Verdict(Enum):
    VALID = "valid"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    WRONG_NUMBER = "wrong_number"
    "The key does not derive to the record's number."
    PENDING = "pending"
    "Signature fine; the number binding is still being derived."


def sign_record(identity: Identity, record: Record) -> Record:
    """Return ``record`` with its signature (the key in it must be ``identity``'s)."""
    if record.public_key != identity.public_key:
        raise ValueError("a record is signed by the key it carries")
    # signed_bytes() never covers the signature field, so the record signs as it is.
    return dataclasses.replace(record, signature=identity.sign(record.signed_bytes()))


def verify_signed(raw: bytes) -> tuple[Verdict, Record | None]:
    """Decode a record and check its signature: the cheap part of ``check_record``."""
    if len(raw) > MAX_RECORD_SIZE:
        return Verdict.MALFORMED, None
    try:
        record = decode_record(raw)
    except DecodeError:
        return Verdict.MALFORMED, None
    if not verify_signature(record.public_key, record.signed_bytes(), record.signature):
        return Verdict.BAD_SIGNATURE, record
    try:
        # A key that signs but has no X25519 twin can never hold a session: useless to a caller.
        x25519_public_from_ed25519(record.public_key)
    except InvalidKey:
        return Verdict.MALFORMED, record
    return Verdict.VALID, record


def check_binding(record: Record, binding: NumberBinding, *, urgent: bool = False) -> Verdict:
    """Whether the record's key derives to its number: the expensive part."""
    number = binding.number_of(record.public_key, urgent=urgent)
    if number is None:
        return Verdict.PENDING
    return Verdict.VALID if number == record.number else Verdict.WRONG_NUMBER


def check_record(
    raw: bytes, binding: NumberBinding, *, urgent: bool = False
) -> tuple[Verdict, Record | None]:
    """Decode and check one record from the network. Never raises."""
    verdict, record = verify_signed(raw)
    if verdict is not Verdict.VALID or record is None:
        return verdict, record
    return check_binding(record, binding, urgent=urgent), record
