"""The phone's ``Rng``: the OS CSPRNG (simulations and tests use ``peerline.sim.rng.SeededRng``)."""

import os
import secrets


class OsRng:
    """Randomness from the operating system's CSPRNG. The only ``Rng`` a real phone uses."""

    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)

    def random(self) -> float:
        return secrets.SystemRandom().random()
