"""The one seeded ``Rng`` of simulations and tests: replayable, and never for real keys."""

import random


class SeededRng:
    """Deterministic randomness from a seed (an int, or a name such as ``"7/alice/node"``).

    The simulator gives each node its own (``Simulator.node_rng``), so adding a node does not
    change the others' draws. A real phone uses ``peerline.adapters.rng.OsRng``.
    """

    __slots__ = ("_random",)

    def __init__(self, seed: int | str | bytes) -> None:
        self._random = random.Random(seed)  # noqa: S311 - simulation only, by design

    def random_bytes(self, n: int) -> bytes:
        return self._random.randbytes(n)

    def random(self) -> float:
        return self._random.random()
