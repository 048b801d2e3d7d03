"""HandsetUI (peerline.ui.handset) on real phone cores in the simulator: what a person does
with the keys and the hook, what the screen and LEDs show (docs/user-guide.md)."""

from peerline.proto.identity import format_number
from peerline.proto.phone import Answer, CallState, Dial, EndReason, Hangup, SendMessage, events
from peerline.sim.handset import SimHandset, attach
from peerline.sim.phone import SimPhone
from peerline.sim.phones import PhoneWorld
from peerline.ui.handset import HandsetConfig
from peerline.ui.model import HandsetSettings
from peerline.ui.screens import (
    CallScreen,
    ComposeScreen,
    DialScreen,
    IdleScreen,
    MenuScreen,
    TextScreen,
)


def world(
    config: HandsetConfig | None = None, settings: HandsetSettings | None = None
) -> tuple[PhoneWorld, SimHandset, SimPhone]:
    """A handset phone ``a`` and a plain phone ``b``, joined through a supernode (t = 5 s)."""
    w = PhoneWorld(1)
    s = w.add_phone("s", ("203.0.113.1", 4720))
    a = w.add_phone("a", ("198.51.100.2", 4720), seeds=[s])
    b = w.add_phone("b", ("198.51.100.3", 4720), seeds=[s])
    w.run_for(5.0)
    return w, attach(w, a, config=config, settings=settings), b


def live_state(phone: SimPhone) -> CallState | None:
    live = phone.core.live_call()
    return None if live is None else live.state


def test_the_idle_screen_shows_the_phones_name_and_number() -> None:
    _, h, _ = world()
    screen = h.screen()
    assert isinstance(screen, IdleScreen)
    assert screen.name == "a" and screen.number == format_number(h.phone.number)
    assert screen.status.online and h.ui.leds() == {"ring": "off", "message": "off"}


def test_typing_a_number_dials_it_and_the_far_phone_rings() -> None:
    w, h, b = world()
    h.press(b.number[:4])
    screen = h.screen()
    assert isinstance(screen, DialScreen) and screen.digits == b.number[:4]
    h.press("*")  # deletes the last digit
    assert h.screen().digits == b.number[:3]  # type: ignore[attr-defined]
    h.press(b.number[3:])  # the twelfth digit dials at once
    assert w.run_until(lambda: live_state(b) is CallState.INCOMING, timeout=5.0)
    w.run_for(0.2)
    screen = h.screen()
    assert isinstance(screen, CallScreen) and screen.title == "Ringing"
    assert screen.who == format_number(b.number)
    assert h.ui.leds()["ring"] == "on"


def test_off_hook_dial_tone_then_digits_and_a_pause_dial() -> None:
    w, h, b = world()
    h.lift()
    assert h.phone.core.audio_active  # the dial tone
    assert isinstance(h.screen(), DialScreen)
    h.press(b.number[:11])
    assert live_state(b) is None
    h.press(b.number[11:])
    assert w.run_until(lambda: live_state(b) is CallState.INCOMING, timeout=5.0)
    b.handle(Answer())
    assert w.run_until(lambda: live_state(h.phone) is CallState.ACTIVE, timeout=5.0)
    w.run_for(2.5)
    screen = h.screen()
    assert isinstance(screen, CallScreen) and screen.title == "In call"
    assert screen.timer.startswith("0:0") and screen.sas and screen.path == "direct"
    assert screen.bars == 4
    h.press("5")  # DTMF in a call
    w.run_for(0.5)
    assert [e.digit for e in b.of_type(events.DtmfReceived)] == ["5"]
    h.hang_up()
    assert w.run_until(lambda: live_state(b) is None, timeout=5.0)
    assert b.core.recent_calls()[0].reason is EndReason.REMOTE_HANGUP
    w.run_for(4.0)
    assert isinstance(h.screen(), IdleScreen)


def test_an_extension_typed_on_hook_is_dialled_when_the_handset_is_lifted() -> None:
    """Two phones on a LAN with extensions; no digit pause, no ``#``: lifting dials."""
    w = PhoneWorld(1)
    lan = w.add_lan(max_delay=0.05)
    a = w.add_phone("a", ("192.168.1.10", 4720), lan=lan, extension="201")
    b = w.add_phone("b", ("192.168.1.11", 4720), lan=lan, extension="202")
    w.run_for(5.0)
    h = attach(w, a)
    h.press("202")
    assert live_state(b) is None
    h.lift()
    assert w.run_until(lambda: live_state(b) is CallState.INCOMING, timeout=2.0)


def test_a_digit_typed_as_the_handset_is_lifted_starts_dialling_it_does_not_dial() -> None:
    """The hook settles in 30 ms, a key in 20: a key pressed 2 ms after the lift counts first,
    yet it was typed off hook, so it is the start of a number, not a number to call."""
    w, h, b = world()
    h.ui.hook_edge(True, now=w.sim.now)
    h.drive()
    w.sim.run_for(0.002)
    h.press(b.number[:3])
    screen = h.screen()
    assert isinstance(screen, DialScreen) and screen.digits == b.number[:3]
    assert live_state(h.phone) is None
    h.press(b.number[3:])
    assert w.run_until(lambda: live_state(b) is CallState.INCOMING, timeout=5.0)


def test_a_headset_unplugged_in_a_call_shows_and_the_call_goes_on() -> None:
    w, h, b = world()
    h.lift()
    h.press(b.number)
    assert w.run_until(lambda: live_state(b) is CallState.INCOMING, timeout=5.0)
    b.handle(Answer())
    assert w.run_until(lambda: live_state(h.phone) is CallState.ACTIVE, timeout=5.0)
    h.ui.audio_device(False, now=w.sim.now)
    h.drive()
    assert h.screen().hint == "no headset!"  # type: ignore[attr-defined]
    w.run_for(3.0)
    assert live_state(h.phone) is CallState.ACTIVE and live_state(b) is CallState.ACTIVE
    h.ui.audio_device(True, now=w.sim.now)
    h.drive()
    assert h.screen().hint == "headset back"  # type: ignore[attr-defined]
    w.run_for(3.0)
    assert h.screen().hint == ""  # type: ignore[attr-defined]


def test_an_incoming_call_rings_and_lifting_answers_it() -> None:
    w, h, b = world()
    b.handle(Dial(target=h.phone.number))
    assert w.run_until(lambda: live_state(h.phone) is CallState.INCOMING, timeout=5.0)
    w.run_for(0.5)
    screen = h.screen()
    assert isinstance(screen, CallScreen) and screen.title == "Incoming call"
    assert screen.who == format_number(b.number) and screen.detail == "?"  # not a contact
    assert h.ui.leds()["ring"] == "blink"
    h.lift()
    assert w.run_until(lambda: live_state(b) is CallState.ACTIVE, timeout=5.0)
    assert h.ui.leds()["ring"] == "on"
    h.hang_up()
    assert w.run_until(lambda: live_state(b) is None, timeout=5.0)


def test_a_call_nobody_answers_counts_as_missed_and_flashes_the_message_led() -> None:
    w, h, b = world()
    b.handle(Dial(target=h.phone.number))
    assert w.run_until(lambda: live_state(h.phone) is CallState.INCOMING, timeout=5.0)
    b.handle(Hangup())
    w.run_for(5.0)
    screen = h.screen()
    assert isinstance(screen, IdleScreen) and screen.status.missed == 1
    assert "missed" in screen.note and h.ui.leds()["message"] == "flash"
    h.press("*")  # the menu
    h.press("8")  # History
    h.press("5")
    history = h.screen()
    assert isinstance(history, MenuScreen) and history.title == "History"
    assert history.items[0] == f"!{format_number(b.number)} ?"  # missed; not a contact
    assert history.hint.startswith("missed ")  # and when
    assert h.ui.leds()["message"] == "off"  # seen
    assert h.calls.missed_unseen() == 0  # in the call log too


def test_the_menu_moves_with_2_and_8_and_opens_with_5() -> None:
    _, h, _ = world()
    h.press("*")
    menu = h.screen()
    assert isinstance(menu, MenuScreen) and menu.items[0] == "Contacts" and menu.selected == 0
    h.press("2")  # up from the first wraps to the last
    assert h.screen().selected == len(menu.items) - 1  # type: ignore[attr-defined]
    h.press("5")
    page = h.screen()
    assert isinstance(page, TextScreen) and page.title == "My number"
    assert page.lines[0] == format_number(h.phone.number)
    h.press("*")
    h.press("*")
    assert isinstance(h.screen(), IdleScreen)


def test_holding_8_in_a_menu_moves_on_by_itself() -> None:
    """Press (1), long press at 0.8 s (2), then a repeat every 0.15 s: 1.2 s held is 4."""
    _, h, _ = world()
    h.press("*")
    count = len(h.screen().items)  # type: ignore[attr-defined]
    h.hold("8", 0.02 + 0.8 + 2 * 0.15 + 0.05)
    assert h.screen().selected == 4 % count  # type: ignore[attr-defined]


def test_a_message_typed_with_multi_tap_reaches_the_other_phone() -> None:
    w, h, b = world()
    h.press("*8885")  # menu, down three times: New message
    assert h.screen().hint.endswith("number")  # type: ignore[attr-defined]
    h.press(b.number)
    h.press("#")
    assert isinstance(h.screen(), ComposeScreen)
    h.press("44", gap=0.1)
    w.run_for(1.2)  # the pause fixes the letter
    h.press("444")
    w.run_for(1.2)
    h.press("0#")  # a space; # to upper case
    h.press("2")
    h.hold("2")  # a long press types the digit itself
    assert h.screen().text == "hi A2"  # type: ignore[attr-defined]
    h.press("*")  # backspace
    assert h.screen().text == "hi A"  # type: ignore[attr-defined]
    h.hold("#")  # send
    assert w.run_until(lambda: bool(b.of_type(events.MessageReceived)), timeout=10.0)
    assert b.of_type(events.MessageReceived)[0].text == "hi A"


def test_a_key_held_where_it_has_no_long_meaning_acts_once() -> None:
    """Holding # to dial, or to answer, or 5 on a menu item, does the short press's job only
    (the long press that follows must not undo it)."""
    w, h, b = world()
    h.press(b.number)  # dialled at the twelfth digit
    assert w.run_until(lambda: live_state(b) is CallState.INCOMING, timeout=5.0)
    b.handle(Hangup())
    w.run_for(4.0)
    h.press("#")  # redial: the last number, ready
    h.hold("#", 1.5)  # ...and held to dial it
    assert w.run_until(lambda: live_state(b) is CallState.INCOMING, timeout=5.0)
    w.run_for(1.0)
    assert live_state(b) is CallState.INCOMING  # not cancelled by the long press
    b.handle(Hangup())
    w.run_for(4.0)
    b.handle(Dial(target=h.phone.number))
    assert w.run_until(lambda: live_state(h.phone) is CallState.INCOMING, timeout=5.0)
    h.hold("#", 1.5)  # answer
    w.run_for(1.0)
    assert live_state(h.phone) is CallState.ACTIVE and live_state(b) is CallState.ACTIVE
    h.press("*")  # DTMF at the release: a short * in a call
    w.run_for(0.5)
    assert [e.digit for e in b.of_type(events.DtmfReceived)] == ["*"]
    h.hold("*")  # long *: mute, and no tone
    w.run_for(0.5)
    assert h.phone.core.preferences().muted
    assert [e.digit for e in b.of_type(events.DtmfReceived)] == ["*"]


def test_in_a_call_held_2_and_8_change_the_volume_and_mute_ends_with_the_call() -> None:
    w, h, b = world()
    h.press(b.number)
    assert w.run_until(lambda: live_state(b) is CallState.INCOMING, timeout=5.0)
    b.handle(Answer())
    assert w.run_until(lambda: live_state(h.phone) is CallState.ACTIVE, timeout=5.0)
    start = h.phone.core.preferences().volume
    h.hold("2", 0.02 + 0.8 + 0.15 + 0.05)  # long press, one repeat: two steps up
    assert h.phone.core.preferences().volume == start + 2
    assert h.screen().hint == f"volume {start + 2}"  # type: ignore[attr-defined]
    h.hold("8", 0.9)  # the long press alone: one step down
    assert h.phone.core.preferences().volume == start + 1
    assert b.of_type(events.DtmfReceived) == []  # held keys send no tones
    h.press("8")  # a short 8 is a tone
    w.run_for(0.5)
    assert [e.digit for e in b.of_type(events.DtmfReceived)] == ["8"]
    h.hold("*")
    assert h.phone.core.preferences().muted and h.screen().muted  # type: ignore[attr-defined]
    b.handle(Hangup())
    assert w.run_until(lambda: live_state(h.phone) is None, timeout=5.0)
    assert not h.phone.core.preferences().muted  # the next call starts with the microphone on


def test_a_message_received_is_counted_read_and_answered() -> None:
    w, h, b = world()
    b.handle(SendMessage(target=h.phone.number, text="lunch at noon?"))
    w.run_for(2.0)
    idle = h.screen()
    assert isinstance(idle, IdleScreen) and idle.status.unread == 1
    h.press("*885")  # menu, Messages
    h.press("5")  # the newest
    page = h.screen()
    assert isinstance(page, TextScreen) and page.lines[0] == "lunch at noon?"
    h.press("#")  # reply
    assert isinstance(h.screen(), ComposeScreen)


def test_a_long_press_on_a_speed_dial_key_calls_its_number() -> None:
    w, h, b = world()
    h.press("*88885")  # menu, Speed dial
    h.press("5")  # slot 2
    h.press(b.number[:6])
    h.press(b.number[6:11])  # 11 digits: no auto dial while setting a speed dial
    h.press(b.number[11:])
    h.press("#")
    assert h.ui.settings.speed_dial == {"2": b.number}
    assert h.ui.settings_to_save() is not None
    h.hold("*")  # back to idle
    h.hold("2")
    assert w.run_until(lambda: live_state(b) is CallState.INCOMING, timeout=5.0)
    b.handle(Hangup())
    w.run_for(4.0)
    h.press("*88885")
    h.press("5")  # slot 2 again: an empty number clears it
    h.press("#")
    assert h.ui.settings.speed_dial == {}


def test_do_not_disturb_from_the_menu_turns_callers_away() -> None:
    w, h, b = world()
    h.press("*" + "8" * 5 + "5")  # menu, Do not disturb
    w.run_for(0.5)
    assert h.phone.core.preferences().do_not_disturb
    b.handle(Dial(target=h.phone.number))
    w.run_for(3.0)
    assert b.core.recent_calls()[0].reason is EndReason.BUSY
    assert live_state(h.phone) is None


def test_a_hotline_handset_calls_its_number_when_lifted_and_ends_when_put_down() -> None:
    w = PhoneWorld(1)
    s = w.add_phone("s", ("203.0.113.1", 4720))
    b = w.add_phone("b", ("198.51.100.3", 4720), seeds=[s])
    k = w.add_phone("kiosk", ("198.51.100.4", 4720), seeds=[s])
    w.run_for(5.0)
    h = attach(w, k, config=HandsetConfig(hotline=b.number, has_display=False))
    h.lift()
    assert w.run_until(lambda: live_state(b) is CallState.INCOMING, timeout=5.0)
    b.handle(Answer())
    w.run_for(1.0)
    assert h.ui.leds()["ring"] == "on"
    h.hang_up()
    assert w.run_until(lambda: live_state(b) is None and live_state(k) is None, timeout=5.0)


def test_the_display_sleeps_when_idle_and_the_first_key_only_wakes_it() -> None:
    w, h, _ = world()
    w.run_for(31.0)
    assert not h.ui.display_awake
    h.press("5")
    assert h.ui.display_awake and isinstance(h.screen(), IdleScreen)  # no digit dialled
    h.press("5")
    assert isinstance(h.screen(), DialScreen)


def test_a_message_being_written_survives_the_display_sleeping() -> None:
    w, h, b = world()
    h.press("*8885")  # New message
    h.press(b.number)
    h.press("#")
    h.press("44")
    w.run_for(40.0)
    assert not h.ui.display_awake
    h.press("5")  # wakes the display only
    screen = h.screen()
    assert isinstance(screen, ComposeScreen) and screen.text == "h"


def test_a_stuck_key_says_so_and_does_nothing_more() -> None:
    _w, h, _ = world()
    h.hold("5", seconds=12.0)
    screen = h.screen()
    assert isinstance(screen, DialScreen) and screen.digits == "5"
    assert h.ui.commands_to_send() == []


def test_a_long_menu_item_scrolls_when_selected_and_comes_back() -> None:
    w, h, b = world()
    b.handle(SendMessage(target=h.phone.number, text="lunch at noon?"))
    w.run_for(2.0)
    h.press("*885")  # Messages: "<7390 0012 4455 lunch at noon?" is longer than a line
    menu = h.screen()
    assert isinstance(menu, MenuScreen) and len(menu.items[0]) > 20 and menu.scroll == 0
    w.run_for(2.0)
    scrolled = h.screen()
    assert isinstance(scrolled, MenuScreen) and scrolled.scroll > 0
    w.run_for(10.0)  # to the end, a rest, and back to the start
    seen = set()
    for _ in range(40):
        w.run_for(0.3)
        seen.add(h.screen().scroll)  # type: ignore[attr-defined]
    assert 0 in seen and max(seen) == len(menu.items[0]) - 20
