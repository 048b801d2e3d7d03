"""What the keys and the hook do while there are calls: one talking, others on hold, one
waiting, a conference, a transfer, a SAS to confirm.

A desk phone without feature buttons has two ways to a second line, and this handset keeps
both: the **hook flash** (a quick press of the cradle, as on an analogue line) and a **call
menu** (a long press on ``5``, or ``A`` on a 16-key pad) that lists only what can be done now.
While a call waits, ``#`` answers it (the talking call goes on hold) and ``*`` turns it away.
docs/user-guide.md (section 3) lists every binding.

``InCall`` reads the calls afresh (``Lines``) for every key, and acts only through phone
commands, so a key pressed as the calls change is judged against the calls as they are.
"""

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from peerline.proto.identity import format_number
from peerline.proto.phone import (
    Answer,
    CallInfo,
    CallState,
    Dial,
    Hangup,
    SendDtmf,
    SetMute,
    commands,
)

from .lines import Lines
from .views import Kind, View

if TYPE_CHECKING:
    from .handset import HandsetUI

DTMF_KEYS = frozenset("0123456789*#ABCD")
MENU_KEY = "5"
"""Held in a call: the call menu (the key in the middle, as ``5`` selects in lists)."""


class InCall:
    """The calls' keys, hook and menu for one ``HandsetUI``. See the module docstring."""

    def __init__(self, ui: "HandsetUI") -> None:
        self.ui = ui

    def lines(self) -> Lines:
        return Lines.of(self.ui.phone.live_calls())

    # -- keys on the call screen --------------------------------------------------------------
    def has_long(self, raw: str) -> bool:
        """Whether ``raw`` means something else when held on the call screen now."""
        live = self.ui.phone.live_call()
        if live is None or live.state is CallState.INCOMING:
            return False
        if live.state is CallState.ACTIVE:
            return raw in ("*", "#", "2", "8", MENU_KEY)  # mute, hang up, volume, the menu
        if live.state is CallState.HELD:
            return raw in ("#", MENU_KEY)  # hang up, the menu
        return raw == "#"  # placing a call: a long # cancels too

    def key(self, raw: str, key: str, long: bool) -> None:
        """A key on the call screen while a call is live (``live_call`` is not None)."""
        ui = self.ui
        live = ui.phone.live_call()
        if live is None:
            return
        lines = self.lines()
        if live.state is CallState.INCOMING:
            if key in ("#", "ok"):
                ui.send(Answer(call_id=live.call_id))
            elif key in ("*", "back"):
                ui.send(Hangup(call_id=live.call_id))
        elif live.state is CallState.ACTIVE:
            self._talking_key(raw, key, long, live, lines)
        elif live.state is CallState.HELD:
            if (long and raw == MENU_KEY) or key == "ok":
                self.open_menu()
            elif long and raw == "#":
                ui.send(Hangup(call_id=live.call_id))
            elif raw == "#":
                ui.send(commands.Resume(call_id=live.call_id))
            elif raw.isdigit():  # the start of a new call, the held one waiting
                ui.open_dial(tone=False, purpose="consult", title="New call")
                ui.dial_key(raw)
        elif key in ("*", "back") or (long and raw == "#"):
            self.cancel_placing(live)

    def _talking_key(self, raw: str, key: str, long: bool, live: CallInfo, lines: Lines) -> None:
        ui = self.ui
        waiting = lines.waiting
        if (long and raw == MENU_KEY) or key == "ok":
            self.open_menu()
        elif long and raw == "#":
            self.hang_up_talking()
        elif long and raw == "*":
            ui.send(SetMute(on=not ui.phone.preferences().muted))
        elif key in ("up", "down") or (long and raw in ("2", "8")):
            ui.menus.change_volume(1 if key == "up" or raw == "2" else -1)
        elif waiting is not None and raw == "#":
            ui.send(Answer(call_id=waiting.call_id))
        elif waiting is not None and raw == "*":
            self.reject(waiting)
        elif raw in DTMF_KEYS:
            ui.send(SendDtmf(digits=raw, call_id=live.call_id))

    # -- the hook ---------------------------------------------------------------------------
    def flash(self) -> None:
        """A hook flash: answer the call that rings (the talking one goes on hold); else give
        up a new call being placed and take the held one back; else swap the held call and
        the talking one; else take the held call back; else hold the talking call and give a
        dial tone for a new one (to consult, transfer or conference). On the new call's dial
        screen, before anything is dialled, a flash goes back to the held call."""
        ui = self.ui
        top = ui.top
        if top.kind is Kind.DIAL and top.purpose == "consult":
            ui.leave_dial()  # nothing dialled after all: back to the held call
            return
        ui.to_calls()  # a call menu or a transfer's number goes
        lines = self.lines()
        if lines.ringing:
            ui.send(Answer(call_id=lines.ringing[0].call_id))
        elif lines.placing and lines.held:
            self.cancel_placing(lines.placing[0])
        elif lines.held and lines.talking:
            ui.send(commands.Swap())
        elif lines.held:
            ui.send(commands.Resume())
        elif lines.talking:
            self.new_call()

    def on_hook(self) -> None:
        """The handset is put down: every call talking or being placed ends; calls on hold
        stay held (lifting the handset takes the latest back); one ringing rings on."""
        ui = self.ui
        lines = self.lines()
        for call in (*lines.talking, *lines.placing):
            ui.send(Hangup(call_id=call.call_id))
        if lines.held:
            ui.to_calls()

    def off_hook(self) -> bool:
        """The handset is lifted: answer the call that rings, else take back the latest held
        call (while nothing talks). False if there is no call at all (a dial tone, then)."""
        ui = self.ui
        lines = self.lines()
        if lines.ringing and not (lines.talking or lines.placing):
            ui.send(Answer(call_id=lines.ringing[0].call_id))
        elif lines.held and not (lines.talking or lines.placing):
            ui.send(commands.Resume())
        else:
            return lines.any
        return True

    # -- what the keys and the menu do --------------------------------------------------------
    def hang_up_talking(self) -> None:
        """End every talking call (all legs of a conference); held calls stay."""
        lines = self.lines()
        for call in lines.talking or lines.placing:
            self.ui.send(Hangup(call_id=call.call_id))

    def cancel_placing(self, call: CallInfo) -> None:
        """Give up a call being placed; with a call on hold, go back to it (a consultation
        that did not work out)."""
        self.ui.send(Hangup(call_id=call.call_id))
        if self.lines().held:
            self.ui.send(commands.Resume())

    def reject(self, call: CallInfo) -> None:
        """Turn a waiting call away (the caller hears it declined)."""
        self.ui.send(Hangup(call_id=call.call_id))

    def new_call(self) -> None:
        """Hold what talks and give a dial tone for another call (``consult``)."""
        if self.lines().talking:
            self.ui.send(commands.Hold())
        self.ui.to_calls()
        self.ui.open_dial(tone=True, purpose="consult", title="New call")

    def transfer_to(self, call: CallInfo) -> None:
        """Blind transfer: the number to hand ``call`` to, confirmed with ``#``."""
        self.ui.to_calls()
        self.ui.open_dial(tone=False, purpose="transfer", title="Transfer to")
        self.ui.top.call_id = call.call_id

    def dialled(self, purpose: str, digits: str, call_id: bytes | None) -> None:
        """A number typed for a new call or a transfer, and confirmed."""
        ui = self.ui
        ui.to_calls()
        if purpose == "consult":
            ui.send(Dial(target=digits))
        elif purpose == "transfer":
            ui.send(commands.Transfer(target=digits, call_id=call_id))
            ui.say("transferring")

    def connect(self, held: CallInfo, talking: CallInfo) -> None:
        """Attended transfer: hand the held call to the one we talk with, and leave both."""
        self.ui.send(
            commands.Transfer(call_id=held.call_id, consultation=talking.call_id, attended=True)
        )
        self.ui.say("transferring")

    def verify(self, call: CallInfo, sas: str) -> None:
        """Ask the owner whether the far end read out the same SAS; ``#`` says it did."""
        number = call.number
        if number is None:
            return
        text = f"Did {format_number(number)} read {sas} to you? Only then press #."
        self.ui.page(f"SAS {sas}", text, confirm=partial(self._verified, number))

    def _verified(self, number: str) -> None:
        ui = self.ui
        ui.send(commands.VerifyContact(number=number, wall_time=ui.wall(ui.now)))
        ui.say("verified")
        ui.to_calls()

    # -- the call menu ------------------------------------------------------------------------
    def open_menu(self) -> None:
        """What can be done with the calls now, as a menu (``Call``)."""
        ui = self.ui
        send = ui.send
        lines = self.lines()
        entries: list[tuple[str, Callable[[], None]]] = []
        waiting = lines.waiting
        if waiting is not None:
            entries.append(("Answer waiting", partial(send, Answer(call_id=waiting.call_id))))
            entries.append(("Reject waiting", partial(self.reject, waiting)))
        talking, held = lines.talking, lines.held
        if talking and held:
            entries.append(("Swap", partial(send, commands.Swap())))
            entries.append(("Conference", partial(send, commands.Conference())))
            if len(talking) == 1:
                entries.append(("Complete transfer", partial(self.connect, held[-1], talking[0])))
        elif len(talking) == 1:
            entries.append(("Hold", partial(send, commands.Hold(call_id=talking[0].call_id))))
            entries.append(("New call", self.new_call))
            entries.append(("Transfer", partial(self.transfer_to, talking[0])))
        elif talking:
            entries.append(("Hold all", partial(send, commands.Hold())))
        elif held:
            entries.append(("Resume", partial(send, commands.Resume())))
            entries.append(("New call", self.new_call))
            entries.append(("Transfer", partial(self.transfer_to, held[-1])))
        if talking:
            muted = ui.phone.preferences().muted
            entries.append(("Unmute" if muted else "Mute", partial(send, SetMute(on=not muted))))
            sas = self._sas_entry(talking[0])
            if sas is not None:
                entries.append(sas)
        if talking or held:
            entries.append(("Hang up", self._hang_up_front))
        if not entries:
            return
        ui.push(
            View(
                Kind.MENU,
                title="Call",
                items=[label for label, _ in entries],
                actions=[self._then_back(action) for _, action in entries],
            )
        )

    def _sas_entry(self, call: CallInfo) -> tuple[str, Callable[[], None]] | None:
        """'SAS 042 917 ok?' while the call's SAS is known and its key not verified yet."""
        if call.number is None:
            return None
        details = self.ui.phone.call_details(call.call_id)
        if details is None or not details.sas:
            return None
        if self.ui.phone.caller(call.number, call.peer_key).trust == "verified":
            return None
        return f"SAS {details.sas} ok?", partial(self.verify, call, details.sas)

    def _hang_up_front(self) -> None:
        lines = self.lines()
        if lines.talking:
            self.hang_up_talking()
        elif lines.held:
            self.ui.send(Hangup(call_id=lines.held[-1].call_id))

    def _then_back(self, action: Callable[[], None]) -> Callable[[], None]:
        """A menu entry's action, after the menu has gone (an action may open a view)."""

        def run() -> None:
            self.ui.to_calls()
            action()

        return run
