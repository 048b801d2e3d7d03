"""The simulator's stand-in for the dialable number: same format, no argon2id.

A real number is argon2id of the key with 64 MiB (45 ms here, 0.7 s on a Pi Zero 2 W); a
simulation of thousands of phones cannot pay that per key. Phones, the overlay and the LAN
registry see numbers only through their number binding, so the stand-in changes nothing else.
Simulations say they use it (``bench/overlay.py`` prints so).
"""

import hashlib


def sim_number(public_key: bytes) -> str:
    """12 digits from BLAKE2b of the key."""
    value = int.from_bytes(hashlib.blake2b(public_key, digest_size=8).digest(), "big")
    return f"{value % 10**12:012d}"
