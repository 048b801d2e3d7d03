"""The ``PhoneView`` of a real phone core: what the handset reads, from the core's own views.

The UI reads only this; it is built by the shell (the daemon, the simulator) with the core, a
source of stored messages and the call history (the database in the daemon).
"""

from collections.abc import Callable

from peerline.proto.phone import (
    CallInfo,
    ContactInfo,
    Forwarding,
    NetworkInfo,
    PhoneCore,
    Preferences,
)

from .model import CallDetails, Caller, CallLog, HistoryEntry, MessageInfo


class CoreView:
    """``PhoneView`` over ``core``. ``clock`` gives the core's time for its views (monotonic)."""

    def __init__(
        self,
        core: PhoneCore,
        *,
        name: str,
        clock: Callable[[], float],
        messages: Callable[[int], list[MessageInfo]],
        calls: CallLog,
    ) -> None:
        self._core = core
        self.name = name
        "The phone's name (a reload may change it)."
        self._clock = clock
        self._messages = messages
        self._calls = calls

    @property
    def number(self) -> str:
        return self._core.number

    def live_call(self) -> CallInfo | None:
        return self._core.live_call()

    def live_calls(self) -> list[CallInfo]:
        return [c for c in self._core.recent_calls() if c.live]

    def recent_calls(self) -> list[CallInfo]:
        return self._core.recent_calls()

    def contacts(self) -> list[ContactInfo]:
        return self._core.contacts_view()

    def caller(self, number: str | None, key: bytes) -> Caller:
        """The contact book's word on ``key`` for ``number`` (as the core's events give it)."""
        book = self._core.book
        card = book.get(number)
        trust = book.trust(number, key) if key else "unknown"
        return Caller(contact=None if card is None else card.name, trust=str(trust))

    def history(self, limit: int) -> list[HistoryEntry]:
        return self._calls.history(limit)

    def missed_calls(self) -> int:
        return self._calls.missed_unseen()

    def messages(self, limit: int) -> list[MessageInfo]:
        return self._messages(limit)

    def network(self) -> NetworkInfo:
        return self._core.network_view()

    def preferences(self) -> Preferences:
        return self._core.preferences()

    def forwarding(self) -> Forwarding:
        return Forwarding(**self._core.forwarding())

    def call_details(self, call_id: bytes) -> CallDetails | None:
        now = self._clock()
        call = self._core.call_json(call_id, now)
        info = self._core.call(call_id)
        if call is None or info is None:
            return None
        session = self._core.session(info.peer_key, now=now) or {}
        media = call.get("media") or {}
        rx = media.get("rx") or {}
        return CallDetails(
            sas=info.sas or "",
            relayed=session.get("path") == "relayed",
            loss_pct=rx.get("loss_pct"),
            rtt_ms=media.get("rtt_ms"),
            talk_s=call.get("talk_s"),
            held_by_peer=info.held_by_peer,
        )
