"""pytest plugin (loaded by tests/conftest.py): the ``lab`` fixture and ``lab_or_skip``.

``lab`` gives a test its own entered :class:`netlab.Lab`, deleted after the test whatever
happens. Where namespaces or nftables cannot work (not root, no ``ip``/``nft``, ``ip netns
add`` refused), tests that use it are skipped with the reason; they never fail for it. A
module that wants one topology for all its tests uses ``lab_or_skip()`` in a module-scoped
fixture. Mark such tests ``@pytest.mark.netns``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from .lab import Lab, LabUnavailable


@contextlib.contextmanager
def lab_or_skip() -> Iterator[Lab]:
    """An entered Lab, closed on exit; ``pytest.skip`` (with the reason) if none can be built."""
    lab = Lab()
    try:
        lab.__enter__()
    except LabUnavailable as exc:
        pytest.skip(f"netlab unavailable: {exc}")
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A fresh network lab for one test (see ``netlab.Lab``)."""
    with lab_or_skip() as built:
        yield built
