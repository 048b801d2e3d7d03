"""``Rng`` implementations: the OS CSPRNG for phones, a seeded one for simulations and tests."""

import os
import random
import secrets


class OsRng:
    """Randomness from the operating system's CSPRNG. The only ``Rng`` a real phone uses."""

    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)

    def random(self) -> float:
        return secrets.SystemRandom().random()


class SeededRng:
    """Deterministic randomness for simulations and tests. Never use for real keys."""

    def __init__(self, seed: int | str | bytes) -> None:
        self._random = random.Random(seed)  # noqa: S311 - simulation only, by design

    def random_bytes(self, n: int) -> bytes:
        return self._random.randbytes(n)

    def random(self) -> float:
        return self._random.random()
