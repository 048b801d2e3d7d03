"""The phone as a process: signals, and systemd's view of it.

``serve`` runs a ``Phone`` until SIGINT or SIGTERM (then a clean shutdown: calls hung up, port
mapping released, peer cache saved, control socket removed); SIGHUP reloads the configuration
(``Phone.reconfigure``). Started by systemd (``$NOTIFY_SOCKET``), it also says READY once the
phone has its sockets and has joined the overlay's directory or given up waiting
(``READY_JOIN_WAIT_S``), keeps a one-line STATUS, pings the watchdog from the event loop (a
stalled loop stops the pings, and systemd restarts the phone), and says RELOADING and STOPPING.
"""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from peerline.errors import ConfigError
from peerline.proto.identity import format_number
from peerline.proto.phone import CallState, PhoneEvent, events
from peerline.runtime.notify import ServiceNotifier
from peerline.store.config import Config

from .daemon import Phone

log = logging.getLogger("peerline")

READY_JOIN_WAIT_S = 10.0
"""How long READY waits for the phone to join the directory (seeds, peer cache or LAN)."""


class ServiceLink:
    """What systemd hears about ``phone``: readiness, a status line, the watchdog."""

    def __init__(self, phone: Phone, notifier: ServiceNotifier) -> None:
        self.phone = phone
        self.notifier = notifier
        self._joined = asyncio.Event()
        self._last_status = ""
        phone.listeners.append(self._on_event)

    def status_line(self) -> str:
        core = self.phone.core
        who = f"{format_number(core.number)} {self.phone.config.phone.name}"
        net = "in the directory" if core.network_view().joined else "not in the directory"
        live = core.live_call()
        if live is None:
            call = "idle"
        else:
            peer = format_number(live.number) if live.number else live.target or "a caller"
            call = {
                CallState.ACTIVE: f"in a call with {peer}",
                CallState.INCOMING: f"ringing: {peer}",
            }.get(live.state, f"calling {peer}")
        pending = self.phone.restart_pending
        later = f"; restart to apply {', '.join(pending)}" if pending else ""
        return f"{who}: {net}, {call}{later}"

    async def run(self) -> None:
        """READY once joined (or given up), then the watchdog until cancelled."""
        await self._wait_for_join()
        self._last_status = self.status_line()
        self.notifier.ready(self._last_status)
        log.info("ready: %s", self._last_status)
        period = self.notifier.watchdog_s
        if period is None:
            return
        while True:  # from the event loop: a stalled loop stops the pings
            self.notifier.watchdog()
            await asyncio.sleep(period / 3)

    def reloaded(self) -> None:
        self._last_status = self.status_line()
        self.notifier.ready(self._last_status)

    async def _wait_for_join(self) -> None:
        phone = self.phone
        config = phone.core.config
        nothing_to_join = not config.seeds and config.lan is None and not phone.had_peer_cache
        if nothing_to_join or phone.core.network_view().joined:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._joined.wait(), READY_JOIN_WAIT_S)
        if not phone.core.network_view().joined:
            log.warning("not in the directory after %.0f s; ready anyway", READY_JOIN_WAIT_S)

    def _on_event(self, event: PhoneEvent) -> None:
        if isinstance(event, events.NetworkChanged) and event.aspect == "directory":
            self._joined.set()
        if isinstance(event, events.NetworkChanged | events.CallStateChanged):
            line = self.status_line()
            if line != self._last_status:
                self._last_status = line
                self.notifier.status(line)


async def serve(
    phone: Phone,
    *,
    on_ready: Callable[[Phone], None] | None = None,
    reload: Callable[[], Config] | None = None,
    notifier: ServiceNotifier | None = None,
) -> None:
    """Run ``phone`` until SIGINT or SIGTERM, then shut down cleanly. ``reload`` gives the
    configuration again (SIGHUP); ``notifier`` talks to systemd."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    link = ServiceLink(phone, notifier) if notifier is not None else None

    def hangup() -> None:
        if reload is None:
            log.info("SIGHUP: nothing to reload")
            return
        if notifier is not None:
            notifier.reloading()
        try:
            config = reload()
        except ConfigError as exc:
            log.error("reload refused, the configuration stays as it was:\n%s", exc)
        else:
            phone.reconfigure(config)
        if link is not None:
            link.reloaded()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, hangup)
    task: asyncio.Task[None] | None = None
    try:
        await phone.start()
        if on_ready is not None:
            on_ready(phone)
        if link is not None:
            task = loop.create_task(link.run())
        await stop.wait()
        log.info("stopping")
        if notifier is not None:
            notifier.stopping()
    finally:
        if task is not None:
            task.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await phone.close()
        if notifier is not None:
            notifier.close()
