"""Identity: Ed25519 keys, the X25519 keys derived from them, dialable numbers and SAS."""

from peerline.proto.identity.keys import (
    PUBLIC_KEY_SIZE,
    SEED_SIZE,
    SIGNATURE_SIZE,
    Identity,
    verify_signature,
    x25519_public_from_ed25519,
)
from peerline.proto.identity.number import (
    NUMBER_DIGITS,
    NUMBER_HASH_BYTES,
    NUMBER_MEMLIMIT,
    NUMBER_OPSLIMIT,
    NUMBER_SALT,
    derive_number,
    format_number,
    parse_number,
    verify_number,
)
from peerline.proto.identity.sas import (
    HANDSHAKE_HASH_SIZE,
    SAS_DIGITS,
    SAS_HASH_BYTES,
    SAS_PERSON,
    short_authentication_string,
)

__all__ = [
    "HANDSHAKE_HASH_SIZE",
    "NUMBER_DIGITS",
    "NUMBER_HASH_BYTES",
    "NUMBER_MEMLIMIT",
    "NUMBER_OPSLIMIT",
    "NUMBER_SALT",
    "PUBLIC_KEY_SIZE",
    "SAS_DIGITS",
    "SAS_HASH_BYTES",
    "SAS_PERSON",
    "SEED_SIZE",
    "SIGNATURE_SIZE",
    "Identity",
    "derive_number",
    "format_number",
    "parse_number",
    "short_authentication_string",
    "verify_number",
    "verify_signature",
    "x25519_public_from_ed25519",
]
