"""Node ids and record keys: 160-bit BLAKE2b hashes, compared by XOR distance.

A node id is the hash of the node's Ed25519 key, so it cannot be picked: every overlay message
is MACed with that key (``auth``), and whoever answers for an id must hold its key. A record's
key is the hash of the number it is about, so its storers are fixed by the number alone.
"""

import hashlib

ID_SIZE = 20
ID_BITS = ID_SIZE * 8
_NODE_PERSON = b"peerline-nodeid"
_RECORD_PERSON = b"peerline-reckey"


def node_id(public_key: bytes) -> bytes:
    """The 20-byte overlay id of the node holding ``public_key``."""
    return hashlib.blake2b(public_key, digest_size=ID_SIZE, person=_NODE_PERSON).digest()


def record_key(number: str) -> bytes:
    """The 20-byte DHT key under which the records for ``number`` (12 digits) are stored."""
    return hashlib.blake2b(
        number.encode("ascii"), digest_size=ID_SIZE, person=_RECORD_PERSON
    ).digest()


def as_int(ident: bytes) -> int:
    return int.from_bytes(ident, "big")


def distance(a: bytes, b: bytes) -> int:
    """Kademlia's XOR metric between two ids."""
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


def random_id_in_bucket(own: bytes, index: int, random_bytes: bytes) -> bytes:
    """An id whose distance to ``own`` has its top set bit at ``index`` (a bucket refresh target).

    ``random_bytes`` (20 bytes) supplies the free low bits.
    """
    low = int.from_bytes(random_bytes, "big") & ((1 << index) - 1)
    d = (1 << index) | low
    return (as_int(own) ^ d).to_bytes(ID_SIZE, "big")
