"""The handset's user interface: keys, the hook and phone events in; commands, a screen and
LEDs out. Pure, like the phone core: no threads, no I/O, times passed in.

``HandsetUI`` owns the key and hook machines (raw edges in, debounced meanings out) and a small
stack of views (idle, dialling, a call, menus, lists, pages, text entry), with security alerts
above them all (``alerts``). What each key does in each view is listed in docs/user-guide.md
(``_on_key`` dispatches by view kind; ``incall`` has the keys, the hook flash and the menu of
several calls). It drives the phone only through ``peerline.proto.phone`` commands
(``commands_to_send``) and learns what happened only from its events (``phone_event``),
reading the rest through the ``PhoneView`` port.

Inputs: ``key_edge``, ``hook_start``/``hook_edge``, ``phone_event``, ``audio_device``, ``rejected``,
``handle_timer``. Outputs: ``commands_to_send``, ``screen``, ``leds``, ``display_awake``,
``brightness``, ``settings_to_save``, ``missed_seen``, ``get_timer``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from peerline.proto.identity import format_number
from peerline.proto.phone import (
    CallInfo,
    CallState,
    Command,
    Dial,
    EndReason,
    Hangup,
    PhoneEvent,
    PlayKeyTone,
    SendMessage,
    SetDialTone,
    commands,
    events,
)

from .alerts import Alerts, KeyAlert
from .hook import HookKind, HookMachine, HookTiming
from .incall import InCall
from .keys import KeyEvent, KeyKind, KeyMachine, KeyTiming
from .menus import Menus
from .model import HandsetSettings, PhoneView
from .multitap import MultiTap
from .render import wrap
from .screens import BlankScreen, Screen, StatusBar
from .show import ALERT_SCREEN, REASONS, SCREENS, short_who
from .views import Kind, View

MAX_DIGITS = 16
UP_KEYS = frozenset({"2", "up"})
DOWN_KEYS = frozenset({"8", "down"})
"""Keys that move in a list: 2 and 8 on any pad, C and D (``up``, ``down``) on a 4x4 one."""
NUMBER_DIGITS = 12
"""A full number: dialled at once when the twelfth digit is typed."""
CALLING = frozenset({"call", "consult"})
"""Dial purposes that place a call: the twelfth digit, or a pause off hook, dials."""
WIDTH_CHARS = 21
"""Characters on a line of a 128-pixel screen (pages are wrapped to it)."""
MARQUEE_S = 0.3
"""A selected menu item too long for its line scrolls one character this often..."""
MARQUEE_PAUSE_S = 1.5
"""...after resting this long at its start and at its end."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HandsetConfig:
    hotline: str = ""
    "Lifting the handset calls this (a kiosk or hotline handset); empty: a normal phone."
    notice: str = ""
    "A lasting line for the idle screen: something the owner must fix (a refused boot file)."
    soft_keys: bool = False
    "The keypad has A-D (a 4x4 pad): A opens and selects, B goes back, C and D move."
    has_display: bool = True
    inter_digit_s: float = 4.0
    "Off hook, a pause this long after the last digit dials."
    ended_s: float = 3.0
    "How long the call-ended screen stays (on hook)."
    sleep_after_s: float = 30.0
    "With nothing happening, the display sleeps after this long (a call keeps it awake)."
    toast_s: float = 2.5
    keys: KeyTiming = field(default_factory=KeyTiming)
    hook: HookTiming = field(default_factory=HookTiming)


class HandsetUI:
    """See the module docstring."""

    def __init__(
        self,
        *,
        view: PhoneView,
        clock: Callable[[float], str],
        wall: Callable[[float], float] | None = None,
        config: HandsetConfig | None = None,
        settings: HandsetSettings | None = None,
        now: float = 0.0,
    ) -> None:
        self.config = cfg = config or HandsetConfig()
        self.phone = view
        self._clock = clock
        self.wall = wall or (lambda t: t)
        "The wall clock's seconds at a UI time (what a verified SAS is stamped with)."
        self.settings = settings or HandsetSettings()
        self.keys = KeyMachine(cfg.keys)
        self.hook = HookMachine(cfg.hook)
        self._commands: list[Command] = []
        self._stack: list[View] = [View(Kind.IDLE)]
        self.menus = Menus(self)
        self.incall = InCall(self)
        self.alerts = Alerts()
        self.shown_call: CallInfo | None = None
        "The call the screen follows: live, or just ended (shown ``ended_s``)."
        self._ended_at: float | None = None
        self.missed = view.missed_calls()
        "Missed calls not seen yet, as the call log counts them (read again as calls end)."
        self._missed_seen = False
        self.unread = 0
        self.toast: tuple[str, float] | None = None
        self._digit_at: float | None = None
        self._last_input = now
        self._awake = True
        self._sleeping = False
        self._settings_dirty = False
        self.now = now
        self.volume_shown_until: float | None = None
        self._marquee_at: float | None = None
        self.headset_missing = False
        "The sound device is gone (``audio_device``): a call shows it."
        self._held: str | None = None
        self._key_at = now
        "When the key being handled counted (its debounced time)."
        "A key down whose meaning waits for its release or its long press (``_on_key``)."
        self._events: dict[type[PhoneEvent], Callable[[Any], None]] = {
            events.CallStateChanged: self._on_call,
            events.CallUpdated: self._on_call_updated,
            events.KeyChanged: self._on_key_changed,
            events.ForwardingChanged: lambda _event: self.menus.forwarding_changed(),
            events.CallerIdentified: self._on_identified,
            events.MessageReceived: self._on_message,
            events.MessageStatusChanged: self._on_message_status,
            events.RequestFailed: self._on_request_failed,
        }

    # -- inputs -------------------------------------------------------------------------------
    def key_edge(self, key: str, down: bool, *, now: float) -> None:
        """A raw key edge (``peerline.ports.KeyInput``). Then: the outputs."""
        self.now = now
        self.keys.edge(key, down, now=now)
        self._run_machines(now)

    def hook_start(self, off_hook: bool, *, now: float) -> None:
        self.now = now
        self.hook.start(off_hook, now=now)
        self._run_machines(now)

    def hook_edge(self, off_hook: bool, *, now: float) -> None:
        self.now = now
        self.hook.edge(off_hook, now=now)
        self._run_machines(now)

    def phone_event(self, event: PhoneEvent, *, now: float) -> None:
        """Every event the phone core hands out (the UI picks what it shows)."""
        self.now = now
        handler = self._events.get(type(event))
        if handler is not None:
            handler(event)

    def audio_device(self, present: bool, *, now: float) -> None:
        """The sound device (a USB headset) went away or came back. The call goes on either
        way; the screen says so until it is back."""
        self.now = now
        was_missing, self.headset_missing = self.headset_missing, not present
        if present and was_missing and self._live() is not None:
            self.say("headset back")

    def rejected(self, command: Command, code: str, message: str, *, now: float) -> None:
        """The core refused one of ``commands_to_send``: say so for a moment."""
        self.now = now
        self.say(message or code)
        if isinstance(command, Dial) and self.top.kind is Kind.CALL and self._live() is None:
            self.shown_call = None
            self.pop_to(Kind.IDLE)

    # -- outputs ------------------------------------------------------------------------------
    def commands_to_send(self) -> list[Command]:
        out, self._commands = self._commands, []
        return out

    def settings_to_save(self) -> HandsetSettings | None:
        """The settings, once after each change (the shell stores them)."""
        if not self._settings_dirty:
            return None
        self._settings_dirty = False
        return self.settings

    def missed_seen(self) -> bool:
        """True once after the owner looked at the missed calls (the history): the shell marks
        them seen in its call log (``CallLog.mark_missed_seen``)."""
        seen, self._missed_seen = self._missed_seen, False
        return seen

    @property
    def display_awake(self) -> bool:
        return self._awake

    @property
    def brightness(self) -> int:
        """Display contrast 0-255 from the 1-5 setting."""
        return (0x10, 0x40, 0x80, 0xC0, 0xFF)[self.settings.brightness - 1]

    def leds(self) -> dict[str, str]:
        """The ring light blinks while a call rings (a waiting one too) and while a call is
        left on hold with the handset down; it is on while any other call is live."""
        ring = "off"
        if self._live() is not None:
            lines = self.incall.lines()
            left_on_hold = lines.held and not lines.talking and not self.hook.off_hook
            ring = "blink" if lines.ringing or left_on_hold else "on"
        message = "flash" if (self.unread or self.missed or len(self.alerts)) else "off"
        return {"ring": ring, "message": message}

    def screen(self) -> Screen:
        if not self.config.has_display:
            return BlankScreen()
        if self.alerts.top is not None:
            return ALERT_SCREEN(self)
        return SCREENS[self.top.kind](self)

    # -- timers -------------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        times = [self.keys.get_timer(), self.hook.get_timer()]
        top = self.top
        times.append(self._pause_dials_at(top))
        if top.editor is not None:
            times.append(top.editor.get_timer())
        if self._ended_at is not None:
            times.append(self._ended_at + self.config.ended_s)
        if self.toast is not None:
            times.append(self.toast[1])
        if self.volume_shown_until is not None:
            times.append(self.volume_shown_until)
        if self._awake and self._live() is None:
            times.append(self._last_input + self.config.sleep_after_s)
        times.append(self._marquee_due())
        if self._live() is not None and self._live_state() is CallState.ACTIVE:
            times.append(self.now + 1.0 - (self.now % 1.0))  # the call timer ticks
        elif top.kind is Kind.IDLE and self._awake:
            times.append(self.now + 15.0 - (self.now % 15.0))  # the clock
        return min((t for t in times if t is not None), default=None)

    def handle_timer(self, *, now: float) -> None:
        self.now = now
        self._run_machines(now)
        cfg, top = self.config, self.top
        pause_at = self._pause_dials_at(top)
        if pause_at is not None and now >= pause_at:
            self._digit_at = None
            self._dial_entered()
        if top.editor is not None:
            top.editor.handle_timer(now=now)
        if self._ended_at is not None and now >= self._ended_at + cfg.ended_s:
            self._ended_at = None
            if not self.hook.off_hook:
                self.shown_call = None
                self.pop_to(Kind.IDLE)
        if self.toast is not None and now >= self.toast[1]:
            self.toast = None
        if self.volume_shown_until is not None and now >= self.volume_shown_until:
            self.volume_shown_until = None
        due = self._marquee_due()
        if due is not None and now >= due:
            self._marquee_step(now)
        if self._awake and self._live() is None and now >= self._last_input + cfg.sleep_after_s:
            self._awake = False
            if top.kind in (Kind.MENU, Kind.PAGE, Kind.DIAL) and not self.hook.off_hook:
                self.pop_to(Kind.IDLE)  # a menu or a number left on hook goes; a text stays

    def _pause_dials_at(self, top: View) -> float | None:
        """Off hook, when a pause after the last digit dials (a number for a call only: a
        transfer, a speed dial or a recipient waits for '#')."""
        if top.kind is not Kind.DIAL or top.purpose not in CALLING or not self.hook.off_hook:
            return None
        return None if self._digit_at is None else self._digit_at + self.config.inter_digit_s

    # -- the machines' events -----------------------------------------------------------------
    def _run_machines(self, now: float) -> None:
        for machine in (self.keys, self.hook):
            due = machine.get_timer()
            if due is not None and now >= due:
                machine.handle_timer(now=now)
        while (hook := self.hook.next_event()) is not None:
            self._activity(hook.at, swallow=False)
            self._on_hook(hook.kind, hook.at)
        while (key := self.keys.next_event()) is not None:
            if key.kind is KeyKind.PRESS and not self._activity(key.at, swallow=True):
                continue  # the press that woke the display does nothing else
            self._on_key(key)

    def _activity(self, at: float, *, swallow: bool) -> bool:
        """Something happened: keep the display awake. False if it was asleep (and this press
        only wakes it)."""
        self._last_input = max(self._last_input, at)
        if self._awake:
            return True
        self._awake = True
        return not swallow

    # -- the hook -----------------------------------------------------------------------------
    def _on_hook(self, kind: HookKind, at: float) -> None:
        if kind is HookKind.OFF_HOOK:
            if not self.incall.off_hook():  # no call: a dial tone, or what was typed
                top = self.top
                lifted_at = at - self.config.hook.debounce_s  # when it really moved
                if top.kind is Kind.DIAL and top.purpose == "call" and top.digits:
                    if top.typed_at is not None and top.typed_at < lifted_at:
                        self._dial_entered()  # dialled on hook, then lifted: call it now
                    else:  # typed as it was lifted (the hook settles slower than a key)
                        self._digit_at = self.now
                elif self.config.hotline:
                    self.seen_missed()  # someone is at the phone (a kiosk has no history menu)
                    self.dial(self.config.hotline)
                else:
                    self.open_dial(tone=True)
        elif kind is HookKind.ON_HOOK:
            self.send(SetDialTone(on=False))
            if self._live() is not None:
                self.incall.on_hook()
            else:
                self.shown_call = None
                self._ended_at = None
                self.pop_to(Kind.IDLE)
        else:  # FLASH: the second line (answer the waiting call, swap, hold and dial)
            self.incall.flash()

    # -- keys ---------------------------------------------------------------------------------
    def _on_key(self, event: KeyEvent) -> None:
        """A key with a long meaning where it is pressed acts when it is let go (short) or
        when the long press comes, never both; any other key acts at once when pressed."""
        raw, kind = event.key, event.kind
        key = self._soft(raw)
        self._key_at = event.at
        if self.alerts.top is not None:
            if kind is KeyKind.PRESS:
                self._alert_key(key)
            return
        if kind is KeyKind.STUCK:
            self._held = None
            self.say(f"key {raw} stuck")
        elif kind is KeyKind.PRESS:
            if self._has_long(raw, key):
                self._held = raw
            else:
                self._dispatch(raw, key, long=False)
        elif kind is KeyKind.RELEASE:
            if self._held == raw:
                self._held = None
                self._dispatch(raw, key, long=False)
        elif self._held == raw:  # LONG
            self._held = None
            self._dispatch(raw, key, long=True)
        elif key in UP_KEYS | DOWN_KEYS:  # LONG, REPEAT: a held key goes on
            step = -1 if key in UP_KEYS else 1
            if self.top.kind in (Kind.MENU, Kind.PAGE):
                self._move(step)
            elif self.top.kind is Kind.CALL and self._live_state() is CallState.ACTIVE:
                self.menus.change_volume(-step)

    def _alert_key(self, key: str) -> None:
        """A key on an alert: ``#`` (``A``) says it was read; ``*`` (``B``) also ends the
        call it is about. Nothing else passes an alert."""
        alert = self.alerts.top
        assert alert is not None
        if key in ("#", "ok"):
            self.alerts.acknowledge()
        elif key in ("*", "back"):
            self.alerts.acknowledge()
            if any(c.call_id == alert.call_id for c in self.phone.live_calls()):
                self.send(Hangup(call_id=alert.call_id))

    def _has_long(self, raw: str, key: str) -> bool:
        """Whether ``raw`` means something else when held, in the view on screen now."""
        top = self.top
        if top.kind is Kind.IDLE:
            return raw == "0" or raw in self.settings.speed_dial
        if top.kind is Kind.DIAL:
            first = not top.digits and top.purpose == "call"
            return key in ("*", "back") or (first and raw in self.settings.speed_dial)
        if top.kind is Kind.CALL:
            return self.incall.has_long(raw)
        if top.kind is Kind.COMPOSE:
            return raw.isdigit() or raw in ("*", "#")
        return raw == "*"  # lists: a long * goes home

    def _dispatch(self, raw: str, key: str, *, long: bool) -> None:
        top = self.top
        if top.kind is Kind.CALL:
            self._call_key(raw, key, long)
        elif top.kind is Kind.IDLE:
            self._idle_key(raw, key, long)
        elif top.kind is Kind.DIAL:
            self._dial_key(raw, key, long)
        elif top.kind is Kind.COMPOSE:
            self._compose_key(raw, key, long)
        else:
            self._list_key(raw, key, long)

    def _soft(self, key: str) -> str:
        """A soft key's meaning (4x4 pads), else the key itself."""
        if self.config.soft_keys:
            return {"A": "ok", "B": "back", "C": "up", "D": "down"}.get(key, key)
        return key

    def _idle_key(self, raw: str, key: str, long: bool) -> None:
        if long and raw in self.settings.speed_dial:
            self.dial(self.settings.speed_dial[raw])
        elif long and raw == "0":
            self.menus.my_number()
        elif raw.isdigit():
            self.open_dial(tone=False)
            self.top.typed_at = self._key_at - self.config.keys.debounce_s
            self._dial_key(raw, raw, long=False)
        elif key in ("*", "ok"):
            self.menus.open_menu()
        elif key == "#" and self.settings.last_dialled:
            self.open_dial(tone=False)
            self.top.digits = self.settings.last_dialled

    def _dial_key(self, raw: str, key: str, long: bool) -> None:
        top = self.top
        if long and raw in self.settings.speed_dial:  # off hook, before any digit
            self.pop_to(Kind.IDLE)
            self.dial(self.settings.speed_dial[raw])
        elif raw.isdigit():
            if len(top.digits) < MAX_DIGITS:
                top.digits += raw
                self.send(SetDialTone(on=False))
                self.send(PlayKeyTone(digit=raw))
                self._digit_at = self.now
            if top.purpose in CALLING and len(top.digits) == NUMBER_DIGITS:
                self._dial_entered()
        elif key in ("*", "back"):
            if long or not top.digits:
                self.leave_dial()
            else:
                top.digits = top.digits[:-1]
        elif key in ("#", "ok"):
            self._dial_entered()

    def dial_key(self, digit: str) -> None:
        """``digit`` typed on the dial screen on top (a number begun on another screen)."""
        self._dial_key(digit, digit, long=False)

    def _call_key(self, raw: str, key: str, long: bool) -> None:
        if self._live() is None:  # the call-ended screen
            if key in ("*", "#", "back", "ok"):
                self.shown_call = None
                self._ended_at = None
                self.pop_to(Kind.IDLE)
            return
        self.incall.key(raw, key, long)

    def _list_key(self, raw: str, key: str, long: bool) -> None:
        top = self.top
        if long and raw == "*":
            self.home()
        elif key in ("*", "back"):
            self.back()
        elif key in UP_KEYS:
            self._move(-1)
        elif key in DOWN_KEYS:
            self._move(1)
        elif top.kind is Kind.MENU and (raw == "5" or key in ("#", "ok")):
            if top.actions:
                top.actions[top.selected]()
        elif top.kind is Kind.PAGE and key in ("#", "ok") and top.confirm is not None:
            top.confirm()
        elif top.kind is Kind.PAGE and key in ("#", "ok") and top.reply:
            self.compose(top.reply)

    def _compose_key(self, raw: str, key: str, long: bool) -> None:
        top = self.top
        editor = top.editor
        assert editor is not None
        if long and raw == "#":
            editor.handle_timer(now=self.now + editor.commit_s)
            if editor.text.strip():
                self.send(SendMessage(target=top.to, text=editor.text))
                self.say("sending")
                self.pop_to(Kind.IDLE)
        elif long and raw == "*":
            self.back()
        elif long and raw.isdigit():
            editor.insert(raw)  # a held key types its digit
        elif key in ("*", "back"):
            editor.backspace()
        elif raw == "#":
            editor.switch_mode()  # abc / ABC / 123
        elif raw.isdigit():
            editor.key(raw, now=self.now)  # 0: a space, twice 0

    def _move(self, step: int) -> None:
        top = self.top
        if top.kind is Kind.MENU and top.items:
            top.selected = (top.selected + step) % len(top.items)
            top.scroll = 0
            self._marquee_at = None
        elif top.kind is Kind.PAGE:
            visible = 3
            top.top = max(0, min(top.top + step, max(0, len(top.lines) - visible)))

    def _marquee_due(self) -> float | None:
        """When the selected menu item scrolls next (None: it fits, or nothing to scroll)."""
        top = self.top
        if top.kind is not Kind.MENU or not top.items or not self._awake:
            return None
        if len(top.items[top.selected]) <= WIDTH_CHARS - 1:
            return None
        if self._marquee_at is None:
            self._marquee_at = self.now + MARQUEE_PAUSE_S
        return self._marquee_at

    def _marquee_step(self, now: float) -> None:
        top = self.top
        overflow = len(top.items[top.selected]) - (WIDTH_CHARS - 1)
        if top.scroll >= overflow:
            top.scroll = 0  # back to the start, and rest there
            self._marquee_at = now + MARQUEE_PAUSE_S
            return
        top.scroll += 1
        self._marquee_at = now + (MARQUEE_PAUSE_S if top.scroll >= overflow else MARQUEE_S)

    # -- dialling -----------------------------------------------------------------------------
    def open_dial(self, *, tone: bool, purpose: str = "call", title: str = "") -> None:
        if self.top.kind is not Kind.DIAL:
            self.push(View(Kind.DIAL, purpose=purpose, title=title))
        if tone:
            self.send(SetDialTone(on=True))
        self._digit_at = None

    def leave_dial(self) -> None:
        """Give up the number being typed; a new call's goes back to the call on hold."""
        consult = self.top.purpose == "consult"
        self.send(SetDialTone(on=False))
        self._digit_at = None
        self.back()
        lines = self.incall.lines()
        if consult and lines.held and not lines.talking:
            self.send(commands.Resume())

    def _dial_entered(self) -> None:
        top = self.top
        digits = top.digits
        purpose = top.purpose
        if not digits and not purpose.startswith(("speed:", "forward")):  # empty: clears it
            return
        self._digit_at = None
        if purpose == "call":
            self.pop_to(Kind.IDLE)
            self.dial(digits)
        elif purpose in ("consult", "transfer"):
            self.incall.dialled(purpose, digits, top.call_id)
        elif purpose == "forward":
            self._stack.pop()
            self._marquee_at = None
            self.menus.forward_all(digits)
        elif purpose == "message":
            self._stack.pop()
            self._marquee_at = None
            self.compose(digits)
        elif purpose.startswith("speed:"):
            slot = purpose.removeprefix("speed:")
            self.set_settings(self.settings.with_speed_dial(slot, digits))
            self._stack.pop()
            self._marquee_at = None
            self.menus.refresh_speed_dials()

    def dial(self, target: str) -> None:
        self.send(SetDialTone(on=False))
        self.send(Dial(target=target))
        self.shown_call = None
        self._ended_at = None
        self.push(View(Kind.CALL, title=target))
        if target != self.settings.last_dialled:
            self.set_settings(replace(self.settings, last_dialled=target))

    # -- menus, lists, pages ------------------------------------------------------------------
    # -- the view stack -----------------------------------------------------------------------
    @property
    def top(self) -> View:
        """The view on screen."""
        return self._stack[-1]

    @property
    def stack(self) -> tuple[View, ...]:
        """The views, idle first, the one on screen last."""
        return tuple(self._stack)

    def push(self, view: View) -> None:
        self._stack.append(view)
        self._marquee_at = None

    def compose(self, to: str) -> None:
        """A message to ``to``, typed with multi-tap."""
        self.push(View(Kind.COMPOSE, to=to, editor=MultiTap(max_len=160)))

    def page(
        self,
        title: str,
        text: str,
        *,
        reply: str = "",
        confirm: Callable[[], None] | None = None,
    ) -> None:
        """A page of text (scrolled with up and down); ``reply``: a number '#' writes to;
        ``confirm``: what '#' does when the page asks a question."""
        lines = wrap(text, WIDTH_CHARS)
        self.push(View(Kind.PAGE, title=title, lines=lines, reply=reply, confirm=confirm))

    def back(self) -> None:
        if len(self._stack) > 1:
            self._stack.pop()
            self._marquee_at = None

    def pop_to(self, kind: Kind) -> None:
        while len(self._stack) > 1 and self.top.kind is not kind:
            self._stack.pop()
            self._marquee_at = None

    def to_calls(self) -> None:
        """Back to the call view: a menu, a page or a number typed over it goes (and the dial
        tone of a new call's number)."""
        if self.find(Kind.CALL) is None:
            return
        while self.top.kind is not Kind.CALL:
            if self.top.kind is Kind.DIAL:
                self.send(SetDialTone(on=False))
                self._digit_at = None
            self._stack.pop()
            self._marquee_at = None

    def home(self) -> None:
        """Back to the idle screen; while a call is live, back to the call."""
        if self._live() is not None and self.find(Kind.CALL) is not None:
            self.pop_to(Kind.CALL)
        else:
            self.pop_to(Kind.IDLE)

    def find(self, kind: Kind) -> View | None:
        """The topmost view of ``kind`` on the stack, if any."""
        return next((v for v in reversed(self._stack) if v.kind is kind), None)

    # -- phone events -------------------------------------------------------------------------
    def _on_call(self, event: events.CallStateChanged) -> None:
        """Keep a call view on screen while calls are live: a call that rings comes to the
        front (over a call menu or a transfer's number), so does what is left when one of
        several ends; the last one to end stays as 'Call ended' for ``ended_s``."""
        live = self.phone.live_call()
        if event.state is CallState.ENDED:
            if not event.outgoing:
                self.missed = self.phone.missed_calls()
            ended = next((c for c in self.phone.recent_calls() if c.call_id == event.call_id), None)
            if live is not None:  # another call is live (glare, a held or waiting one)
                if ended is not None and event.reason not in (None, EndReason.GLARE):
                    why = REASONS.get(ended.reason, "") if ended.reason is not None else ""
                    self.say(f"{why or 'ended'}: {short_who(self, ended)}")
                self._show_call(live, front=True)
                return
            if self.find(Kind.CALL) is None:
                return  # a caller refused here (busy, do not disturb), or an old call
            self.shown_call = ended
            self._ended_at = self.now
            self.to_calls()
            return
        if live is None:
            return
        if event.state is CallState.INCOMING:
            self._show_call(live, front=True)
            self._awake = True  # a ringing call wakes the display
            self._last_input = self.now
        elif live.call_id == event.call_id:
            self._show_call(live, front=False)

    def _show_call(self, call: CallInfo, *, front: bool) -> None:
        """Follow ``call``: a call view is put on the stack if there is none (a number being
        typed for a new call goes), and with ``front`` brought to the top."""
        self.shown_call = call
        self._ended_at = None
        if self.find(Kind.CALL) is None:
            if self.top.kind is Kind.DIAL:
                self._stack.pop()
                self._marquee_at = None
            self.push(View(Kind.CALL, title=call.target))
        elif front:
            self.to_calls()

    def _on_identified(self, event: events.CallerIdentified) -> None:
        call = self.phone.live_call()
        if call is not None and call.call_id == event.call_id:
            self.shown_call = call

    def _on_call_updated(self, event: events.CallUpdated) -> None:
        if event.aspect == "transfer_failed":
            self.say("transfer failed")

    def _on_key_changed(self, event: events.KeyChanged) -> None:
        """A contact's number from another key: an alert over everything, until read (a
        handset without a display has nowhere to show it: the log has it)."""
        if not self.config.has_display:
            return
        caller = self.phone.caller(event.number, event.public_key)
        self.alerts.push(
            KeyAlert(
                call_id=event.call_id,
                number=event.number,
                contact=caller.contact,
                seen=event.public_key.hex()[:8],
            )
        )
        self._held = None  # a key already down was not meant for the alert
        self._awake = True
        self._last_input = self.now

    def _on_message(self, event: events.MessageReceived) -> None:
        self.unread += 1
        who = format_number(event.number) if event.number else "?"
        self.say(f"message from {who}")
        self._awake = True
        self._last_input = self.now

    def _on_message_status(self, event: events.MessageStatusChanged) -> None:
        if event.status != "delivered":
            self.say("message not delivered")

    def _on_request_failed(self, event: events.RequestFailed) -> None:
        self.say(event.detail or event.code)

    # -- helpers ------------------------------------------------------------------------------
    def _live(self) -> CallInfo | None:
        return self.phone.live_call()

    def _live_state(self) -> CallState | None:
        live = self._live()
        return None if live is None else live.state

    def send(self, command: Command) -> None:
        self._commands.append(command)

    def say(self, text: str) -> None:
        self.toast = (text, self.now + self.config.toast_s)

    def set_settings(self, settings: HandsetSettings) -> None:
        self.settings = settings
        self._settings_dirty = True

    def seen_missed(self) -> None:
        """The owner has seen the missed calls (``missed_seen`` tells the shell)."""
        self.missed = 0
        self._missed_seen = True

    def status_bar(self) -> StatusBar:
        net = self.phone.network()
        prefs = self.phone.preferences()
        volume = prefs.volume if self.volume_shown_until is not None else None
        return StatusBar(
            clock=self._clock(self.now),
            online=net.joined,
            relayed=net.role == "client",
            missed=self.missed,
            unread=self.unread,
            dnd=prefs.do_not_disturb,
            forwarded=self.phone.forwarding().always is not None,
            muted=prefs.muted,
            volume=volume,
        )

    def hint(self, text: str) -> str:
        return self.toast[0] if self.toast is not None else text
