"""The number-derivation worker: argon2id (64 MiB) for the keys the phone core asks about.

The core decides which key to derive next (urgent ones first, a bounded background queue);
this runs them one at a time on one thread, so the event loop never stalls and a Pi Zero 2 W
(512 MB) never holds two 64 MiB derivations at once.
"""

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable

from peerline.proto.identity import derive_number
from peerline.proto.phone import PhoneCore

log = logging.getLogger("peerline")


class NumberWorker:
    """Runs ``core.next_derivation()`` keys on one thread and reports each with
    ``core.number_derived``; ``on_done`` lets the shell drain the core afterwards.

    Then: ``kick()`` after every input to the core (it starts the next key if the worker is
    idle); ``close()`` at exit.
    """

    def __init__(
        self,
        core: PhoneCore,
        *,
        on_done: Callable[[], None],
        derive: Callable[[bytes], str] = derive_number,
    ) -> None:
        self._core = core
        self._on_done = on_done
        self._derive = derive
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="number-kdf")
        self._running: bytes | None = None
        self._closed = False

    @property
    def busy(self) -> bool:
        return self._running is not None

    def kick(self) -> None:
        if self._running is not None or self._closed:
            return
        key = self._core.next_derivation()
        if key is None:
            return
        self._running = key
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._executor, self._derive, key)
        job.add_done_callback(lambda done: self._finish(key, done))

    def _finish(self, key: bytes, done: "asyncio.Future[str]") -> None:
        self._running = None
        if self._closed or done.cancelled():
            return
        exc = done.exception()
        if exc is not None:
            log.warning("number derivation failed: %s", exc)
            self._core.derivation_failed(key)
        else:
            loop = asyncio.get_running_loop()
            self._core.number_derived(key, done.result(), now=loop.time())
        self._on_done()
        self.kick()

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
