"""The handset's menus: contacts, history, messages, speed dials, settings, network, my number.

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
from peerline.proto.phone import SetDoNotDisturb, SetVolume

from .model import SPEED_DIAL_KEYS, MessageInfo
from .show import REASONS, group
from .views import Kind, View

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
            ("Volume", self._volume_page),
            ("Brightness", self._brightness_page),
            ("Network", self._network),
            ("My number", self.my_number),
        ]
        self._push_menu("Menu", entries)

    def _push_menu(self, title: str, entries: Sequence[tuple[str, Callable[[], None]]]) -> None:
        self.ui.push(
            View(
                Kind.MENU,
                title=title,
                items=[label for label, _ in entries],
                actions=[action for _, action in entries],
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
        self.ui.missed = 0
        entries = []
        for call in self.ui.phone.recent_calls():
            target = call.number or call.target
            if not target:
                continue
            arrow = ">" if call.outgoing else "<"
            why = REASONS.get(call.reason, "") if call.reason is not None else "live"
            label = f"{arrow}{format_number(target) if len(target) == 12 else target}"
            if why and not call.answered:
                label += f" {why}"
            entries.append((label, partial(self.ui.dial, target)))
        if not entries:
            self.ui.page("History", "No calls yet.")
            return
        self._push_menu("History", entries)

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
