"""The handset's menus: contacts, history, messages, speed dials, settings, forwarding, network,
my number.

Each entry of the main menu opens a list (``MenuScreen``), a page of text or a text editor on
the UI's view stack; selecting an item does what it says (call a contact, read a message, set a
speed dial). ``Menus`` reads through the UI's ``PhoneView`` and acts through the UI (commands,
settings): it keeps no state of its own.
"""

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from peerline.proto.identity import format_number
from peerline.proto.phone import SetDoNotDisturb, SetVolume, commands

from .model import SPEED_DIAL_KEYS, MessageInfo
from .show import group, history_item
from .views import Kind, View

HISTORY_SHOWN = 20
"""Calls the history list shows (the store keeps more)."""

if TYPE_CHECKING:
    from .handset import HandsetUI


class Menus:
    def __init__(self, ui: "HandsetUI") -> None:
        self.ui = ui

    def open_menu(self) -> None:
        dnd = self.ui.phone.preferences().do_not_disturb
        entries: list[tuple[str, Callable[[], None]]] = [
            ("Contacts", self._contacts),
            ("History", self._history),
            (f"Messages ({self.ui.unread})" if self.ui.unread else "Messages", self._messages),
            ("New message", self._new_message),
            ("Speed dial", self._speed_dials),
            (f"Do not disturb: {'on' if dnd else 'off'}", self._toggle_dnd),
            (self._forward_label(), self._forward_page),
            ("Volume", self._volume_page),
            ("Brightness", self._brightness_page),
            ("Network", self._network),
            ("My number", self.my_number),
        ]
        self._push_menu("Menu", entries)

    def _push_menu(
        self,
        title: str,
        entries: Sequence[tuple[str, Callable[[], None]]],
        *,
        hints: Sequence[str] = (),
    ) -> None:
        self.ui.push(
            View(
                Kind.MENU,
                title=title,
                items=[label for label, _ in entries],
                actions=[action for _, action in entries],
                item_hints=list(hints),
            )
        )

    def _contacts(self) -> None:
        contacts = self.ui.phone.contacts()
        entries = [(format_number(c.number), partial(self.ui.dial, c.number)) for c in contacts]
        if not entries:
            self.ui.page("Contacts", "No contacts yet. A number you call is kept here.")
            return
        self._push_menu("Contacts", entries)

    def _history(self) -> None:
        """The last calls from the call log, newest first; selecting one calls it back. The
        missed calls count as seen from here on."""
        self.ui.seen_missed()
        entries, hints = [], []
        for entry in self.ui.phone.history(HISTORY_SHOWN):
            target = entry.number or entry.target
            if not target:
                continue
            label, hint = history_item(entry)
            entries.append((label, partial(self.ui.dial, target)))
            hints.append(hint)
        if not entries:
            self.ui.page("History", "No calls yet.")
            return
        self._push_menu("History", entries, hints=hints)

    def _messages(self) -> None:
        self.ui.unread = 0
        messages = self.ui.phone.messages(20)
        if not messages:
            self.ui.page("Messages", "No messages.")
            return
        entries = []
        for m in reversed(messages):
            who = format_number(m.number) if m.number else "?"
            mark = "<" if m.incoming else ">"
            entries.append((f"{mark}{who} {m.text}", partial(self._read_message, m)))
        self._push_menu("Messages", entries)

    def _read_message(self, message: MessageInfo) -> None:
        who = format_number(message.number) if message.number else "unknown"
        title = ("From " if message.incoming else "To ") + who
        body = message.text + ("" if message.incoming else f"\n({message.status})")
        self.ui.page(title, body, reply=message.number or "")

    def _new_message(self) -> None:
        self.ui.open_dial(tone=False, purpose="message", title="Message to")

    def _reply(self, number: str) -> None:
        self.ui.compose(number)

    def _speed_dials(self) -> None:
        self._push_menu("Speed dial", [])
        self.refresh_speed_dials()

    def refresh_speed_dials(self) -> None:
        top = self.ui.top
        if top.kind is not Kind.MENU or top.title != "Speed dial":
            return
        dials = self.ui.settings.speed_dial
        top.items = [f"{k}: {group(dials[k]) if k in dials else '-'}" for k in SPEED_DIAL_KEYS]
        top.actions = [partial(self._edit_speed_dial, k) for k in SPEED_DIAL_KEYS]

    def _edit_speed_dial(self, key: str) -> None:
        self.ui.open_dial(tone=False, purpose=f"speed:{key}", title=f"Speed dial {key}")

    def _toggle_dnd(self) -> None:
        on = not self.ui.phone.preferences().do_not_disturb
        self.ui.send(SetDoNotDisturb(on=on))
        top = self.ui.top
        if top.kind is Kind.MENU:
            top.items[top.selected] = f"Do not disturb: {'on' if on else 'off'}"

    def _forward_label(self) -> str:
        always = self.ui.phone.forwarding().always
        return f"Forward: {group(always) if always else 'off'}"

    def _forward_page(self) -> None:
        """Forward every call: the number to send them to (none: forwarding off)."""
        self.ui.open_dial(tone=False, purpose="forward", title="Forward to")

    def forward_all(self, target: str) -> None:
        """Send every call to ``target`` (empty: ring here again); the other forwarding modes
        (busy, no answer, offline: ``peerline forward``) stay as they are."""
        now = self.ui.phone.forwarding()
        self.ui.send(
            commands.SetForwarding(
                always=target or None,
                busy=now.busy,
                no_answer=now.no_answer,
                no_answer_s=now.no_answer_s,
                offline=now.offline,
            )
        )
        self.ui.say(f"forwarding to {group(target)}" if target else "forwarding off")

    def forwarding_changed(self) -> None:
        """The core took new forwarding settings (``ForwardingChanged``): the main menu, if
        open, says where calls go now (a number the core refused changes nothing)."""
        menu = next((v for v in self.ui.stack if v.kind is Kind.MENU and v.title == "Menu"), None)
        if menu is None:
            return
        for i, item in enumerate(menu.items):
            if item.startswith("Forward: "):
                menu.items[i] = self._forward_label()

    def _volume_page(self) -> None:
        level = self.ui.phone.preferences().volume
        self._push_menu(
            "Volume", [(f"Volume {v}", partial(self._set_volume, v)) for v in range(11)]
        )
        self.ui.top.selected = level

    def _set_volume(self, level: int) -> None:
        self.ui.send(SetVolume(level=level))
        self.ui.say(f"volume {level}")
        self.ui.back()

    def change_volume(self, step: int) -> None:
        level = max(0, min(10, self.ui.phone.preferences().volume + step))
        self.ui.send(SetVolume(level=level))
        self.ui.volume_shown_until = self.ui.now + self.ui.config.toast_s
        self.ui.say(f"volume {level}")  # a call's screen has no status line

    def _brightness_page(self) -> None:
        entries = [(f"Brightness {b}", partial(self._set_brightness, b)) for b in range(1, 6)]
        self._push_menu("Brightness", entries)
        self.ui.top.selected = self.ui.settings.brightness - 1

    def _set_brightness(self, level: int) -> None:
        self.ui.set_settings(replace(self.ui.settings, brightness=level))
        self.ui.back()

    def _network(self) -> None:
        net = self.ui.phone.network()
        lines = [
            f"Directory: {'joined' if net.joined else 'not joined'}",
            f"Role: {net.role}",
            f"Nodes known: {net.contacts}",
        ]
        if net.role == "client":
            lines.append(f"Relays: {net.relays}")
        if net.reflexive is not None:
            lines.append(f"Seen at {net.reflexive[0]}:{net.reflexive[1]}")
        lines += [f"Here: {h}:{p}" for h, p in net.host]
        if net.nat:
            lines.append(f"NAT: {net.nat}")
        if net.port_mapping:
            lines.append(f"Port mapping: {net.port_mapping}")
        if net.lan_extension:
            lines.append(f"LAN extension: {net.lan_extension}")
        self.ui.page("Network", "\n".join(lines))

    def my_number(self) -> None:
        net = self.ui.phone.network()
        lines = [format_number(self.ui.phone.number), self.ui.phone.name]
        if net.lan_extension:
            lines.append(f"extension {net.lan_extension}")
        self.ui.page("My number", "\n".join(lines))
