"""Hands each phone event to whoever waits for it: a control command, or an event stream.

The shell publishes every event the core hands out, in order. A control command that waits for
an outcome (a dial for its ring, a message for its acknowledgement) registers a predicate;
``peerline events`` subscribes to all of them. A subscriber that stops reading is dropped once
``MAX_QUEUED`` events wait for it (it could otherwise hold any amount of memory).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from peerline.proto.phone import PhoneEvent

MAX_QUEUED = 1024

Predicate = Callable[[PhoneEvent], bool]


class EventHub:
    def __init__(self) -> None:
        self._waiters: list[tuple[Predicate, asyncio.Future[PhoneEvent]]] = []
        self._subscribers: set[asyncio.Queue[PhoneEvent | None]] = set()

    def publish(self, event: PhoneEvent) -> None:
        if self._waiters:
            keep = []
            for pred, fut in self._waiters:
                if fut.done():
                    continue
                if pred(event):
                    fut.set_result(event)
                else:
                    keep.append((pred, fut))
            self._waiters = keep
        for queue in list(self._subscribers):
            if queue.qsize() >= MAX_QUEUED:
                self._subscribers.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)  # tell it it was dropped
                continue
            queue.put_nowait(event)

    def waiter(self, pred: Predicate) -> "asyncio.Future[PhoneEvent]":
        """A future for the next event that satisfies ``pred``. Register it before the
        command whose outcome it waits for is drained from the core."""
        fut: asyncio.Future[PhoneEvent] = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        return fut

    async def wait(self, fut: "asyncio.Future[PhoneEvent]", timeout: float) -> PhoneEvent | None:
        """The event ``fut`` waits for, or None after ``timeout`` seconds."""
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> "Subscription":
        """Every event from now on, queued for one reader: take it before submitting the
        command whose progress it follows, and no event of it is missed."""
        return Subscription(self)

    async def stream(self) -> AsyncIterator[PhoneEvent]:
        """Every event from now on, until the subscriber falls ``MAX_QUEUED`` behind."""
        sub = self.subscribe()
        try:
            while (event := await sub.next()) is not None:
                yield event
        finally:
            sub.close()

    def close(self) -> None:
        for _, fut in self._waiters:
            fut.cancel()
        self._waiters.clear()
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self._subscribers.clear()


class Subscription:
    """One reader's queue of events (``EventHub.subscribe``); ``close`` when done."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[PhoneEvent | None] = asyncio.Queue(MAX_QUEUED + 1)
        self.dropped = False
        hub._subscribers.add(self._queue)

    async def next(self, timeout: float | None = None) -> PhoneEvent | None:
        """The next event; None after ``timeout`` seconds, or when the hub dropped this
        reader or closed (``dropped`` says which)."""
        if self.dropped:
            return None
        try:
            event = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if event is None:
            self.dropped = True
        return event

    def close(self) -> None:
        self._hub._subscribers.discard(self._queue)
