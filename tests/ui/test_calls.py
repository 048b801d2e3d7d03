"""HandsetUI with several calls (peerline.ui.incall, peerline.ui.lines) on real phone cores in
the simulator: call waiting, hold and resume, swap, conference, blind and attended transfer,
mute, the hook flash, trust marks, the key-change alert and the SAS confirmed from the keypad
(docs/user-guide.md section 3)."""

from peerline.proto.identity import format_number
from peerline.proto.phone import Answer, CallState, Dial, EndReason, Hangup, commands, events
from peerline.sim.handset import SimHandset, attach
from peerline.sim.phone import SimPhone
from peerline.sim.phones import PhoneWorld
from peerline.ui.handset import HandsetConfig
from peerline.ui.render import KEY_CHANGED, VERIFIED
from peerline.ui.screens import AlertScreen, CallScreen, DialScreen, IdleScreen, MenuScreen

FLASH_S = 0.3
"""A quick dip of the cradle (``HookTiming``: a flash is 0.1 to 0.6 s)."""


def world(
    config: HandsetConfig | None = None,
) -> tuple[PhoneWorld, SimHandset, SimPhone, SimPhone]:
    """The handset phone ``a`` and two plain phones ``b`` and ``c``, joined (t = 5 s)."""
    w = PhoneWorld(1)
    s = w.add_phone("s", ("203.0.113.1", 4720))
    a = w.add_phone("a", ("198.51.100.2", 4720), seeds=[s])
    b = w.add_phone("b", ("198.51.100.3", 4720), seeds=[s])
    c = w.add_phone("c", ("198.51.100.4", 4720), seeds=[s])
    w.run_for(5.0)
    return w, attach(w, a, config=config), b, c


def states(phone: SimPhone) -> dict[str, CallState]:
    """Live calls of ``phone``, by the far phone's number."""
    return {c.number or "?": c.state for c in phone.core.recent_calls() if c.live}


def call_screen(h: SimHandset) -> CallScreen:
    screen = h.screen()
    assert isinstance(screen, CallScreen), screen
    return screen


def talking_to(w: PhoneWorld, h: SimHandset, b: SimPhone) -> None:
    """``a`` lifts its handset and dials ``b``, who answers."""
    h.lift()
    h.press(b.number)
    assert w.run_until(lambda: states(b).get(h.phone.number) is CallState.INCOMING, timeout=5.0)
    b.handle(Answer())
    assert w.run_until(lambda: states(h.phone) == {b.number: CallState.ACTIVE}, timeout=5.0)
    w.run_for(1.0)


def waiting_from(w: PhoneWorld, h: SimHandset, c: SimPhone) -> None:
    c.handle(Dial(target=h.phone.number))
    assert w.run_until(lambda: states(h.phone).get(c.number) is CallState.INCOMING, timeout=5.0)
    w.run_for(0.5)


def menu(h: SimHandset, entry: str) -> None:
    """Open the call menu (a long 5) and select ``entry``."""
    h.hold("5")
    screen = h.screen()
    assert isinstance(screen, MenuScreen) and screen.title == "Call", screen
    assert entry in screen.items, screen.items
    h.press("8" * screen.items.index(entry) + "5")


def test_a_waiting_call_shows_who_with_its_mark_and_hash_answers_it_holding_the_first() -> None:
    w, h, b, c = world()
    talking_to(w, h, b)
    waiting_from(w, h, c)
    screen = call_screen(h)
    assert screen.title == "In call" and screen.who == format_number(b.number)
    assert screen.other == f"wait {format_number(c.number)} ?"  # not a contact
    assert screen.hint == "# answer  * reject"
    assert h.ui.leds()["ring"] == "blink"
    h.press("#")
    assert w.run_until(lambda: states(c).get(h.phone.number) is CallState.ACTIVE, timeout=5.0)
    assert states(h.phone) == {b.number: CallState.HELD, c.number: CallState.ACTIVE}
    screen = call_screen(h)
    assert screen.who == format_number(c.number)
    assert screen.other == f"hold {format_number(b.number)} ?"
    assert h.ui.leds()["ring"] == "on"
    assert b.of_type(events.DtmfReceived) == []  # the '#' answered; it was not a tone


def test_star_turns_a_waiting_call_away_and_the_talk_goes_on() -> None:
    w, h, b, c = world()
    talking_to(w, h, b)
    waiting_from(w, h, c)
    h.press("*")
    assert w.run_until(lambda: not states(c), timeout=5.0)
    assert c.core.recent_calls()[0].reason is EndReason.DECLINED
    assert states(h.phone) == {b.number: CallState.ACTIVE}
    screen = call_screen(h)
    assert screen.other == "" and screen.hint == f"declined: {format_number(c.number)} ?"
    assert h.ui.missed == 0  # turned away is not missed


def test_the_waiting_callers_contact_name_and_check_mark_show() -> None:
    w, h, b, c = world()
    h.phone.handle(commands.SaveContact(number=c.number, name="Carol", public_key=c.key))
    w.run_for(0.5)
    talking_to(w, h, b)
    c.handle(Dial(target=h.phone.number))
    assert w.run_until(lambda: states(h.phone).get(c.number) is CallState.INCOMING, timeout=5.0)
    assert call_screen(h).other == "wait Carol"  # a contact (pinned): the name, no '?'


def test_a_hook_flash_answers_the_waiting_call_then_swaps_back_and_forth() -> None:
    w, h, b, c = world()
    talking_to(w, h, b)
    waiting_from(w, h, c)
    h.flash(FLASH_S)
    assert w.run_until(lambda: states(h.phone).get(c.number) is CallState.ACTIVE, timeout=5.0)
    assert states(h.phone)[b.number] is CallState.HELD
    h.flash(FLASH_S)
    w.run_for(0.5)
    assert states(h.phone) == {b.number: CallState.ACTIVE, c.number: CallState.HELD}
    assert call_screen(h).who == format_number(b.number)
    h.flash(FLASH_S)
    w.run_for(0.5)
    assert states(h.phone) == {b.number: CallState.HELD, c.number: CallState.ACTIVE}


def test_a_long_dip_of_the_hook_hangs_up_a_short_one_does_not() -> None:
    """The hook machine reports on hook only after 0.6 s down: 0.5 s is a flash (the talking
    call is held and a new call can be dialled), 0.7 s hangs up."""
    w, h, b, _ = world()
    talking_to(w, h, b)
    h.flash(0.5)
    w.run_for(0.5)
    assert states(h.phone) == {b.number: CallState.HELD}
    screen = h.screen()
    assert isinstance(screen, DialScreen) and screen.hint == "New call: number"
    assert h.phone.core.audio_active  # the dial tone
    h.flash(FLASH_S)  # changed my mind: back to b
    w.run_for(0.5)
    assert states(h.phone) == {b.number: CallState.ACTIVE}
    assert call_screen(h).title == "In call"
    h.flash(0.7)  # down too long for a flash: on hook, and up again
    assert w.run_until(lambda: not states(b), timeout=5.0)
    assert b.core.recent_calls()[0].reason is EndReason.REMOTE_HANGUP


def test_hold_and_resume_from_the_call_menu_and_hash_resumes() -> None:
    w, h, b, _ = world()
    talking_to(w, h, b)
    menu(h, "Hold")
    w.run_for(0.5)
    assert states(h.phone) == {b.number: CallState.HELD}
    screen = call_screen(h)
    assert screen.title == "On hold" and screen.hint == "# resume"
    h.press("#")
    w.run_for(0.5)
    assert states(h.phone) == {b.number: CallState.ACTIVE}
    menu(h, "Hold")
    w.run_for(0.5)
    menu(h, "Resume")
    w.run_for(0.5)
    assert states(h.phone) == {b.number: CallState.ACTIVE}


def test_a_call_held_with_the_handset_down_blinks_and_lifting_takes_it_back() -> None:
    w, h, b, c = world()
    talking_to(w, h, b)
    waiting_from(w, h, c)
    h.press("#")  # c answered, b held
    assert w.run_until(lambda: states(h.phone).get(c.number) is CallState.ACTIVE, timeout=5.0)
    h.hang_up()  # ends the talk with c; b stays on hold
    assert w.run_until(lambda: not states(c), timeout=5.0)
    assert states(h.phone) == {b.number: CallState.HELD}
    assert call_screen(h).title == "On hold" and h.ui.leds()["ring"] == "blink"
    h.lift()
    w.run_for(0.5)
    assert states(h.phone) == {b.number: CallState.ACTIVE}


def test_a_conference_from_the_call_menu_joins_both_and_a_long_hash_leaves_it() -> None:
    w, h, b, c = world()
    talking_to(w, h, b)
    waiting_from(w, h, c)
    h.press("#")
    assert w.run_until(lambda: states(h.phone).get(c.number) is CallState.ACTIVE, timeout=5.0)
    menu(h, "Conference")
    w.run_for(0.5)
    assert states(h.phone) == {b.number: CallState.ACTIVE, c.number: CallState.ACTIVE}
    screen = call_screen(h)
    assert screen.title == "Conference" and screen.other.startswith("+ ")
    h.hold("#")
    assert w.run_until(lambda: not states(b) and not states(c), timeout=5.0)


def test_blind_transfer_a_number_typed_and_confirmed_takes_the_call_over() -> None:
    w, h, b, c = world()
    talking_to(w, h, b)
    menu(h, "Transfer")
    screen = h.screen()
    assert isinstance(screen, DialScreen) and screen.hint == "Transfer to: number"
    h.press(c.number)  # twelve digits do not transfer by themselves
    w.run_for(5.0)  # nor does a pause, handset lifted
    assert isinstance(h.screen(), DialScreen) and states(c) == {}
    h.press("#")
    assert w.run_until(lambda: states(c).get(b.number) is CallState.INCOMING, timeout=5.0)
    c.handle(Answer())
    assert w.run_until(lambda: states(b) == {c.number: CallState.ACTIVE}, timeout=5.0)
    assert not states(h.phone)
    assert call_screen(h).detail == "transferred"


def test_attended_transfer_consult_while_the_first_is_held_then_complete() -> None:
    w, h, b, c = world()
    talking_to(w, h, b)
    menu(h, "New call")
    w.run_for(0.5)
    assert states(h.phone) == {b.number: CallState.HELD}
    h.press(c.number)  # the twelfth digit dials the consultation
    assert w.run_until(lambda: states(c).get(h.phone.number) is CallState.INCOMING, timeout=5.0)
    assert call_screen(h).other == f"hold {format_number(b.number)} ?"
    c.handle(Answer())
    assert w.run_until(lambda: states(h.phone).get(c.number) is CallState.ACTIVE, timeout=5.0)
    menu(h, "Complete transfer")
    assert w.run_until(lambda: states(b) == {c.number: CallState.ACTIVE}, timeout=10.0)
    assert states(c) == {b.number: CallState.ACTIVE} and not states(h.phone)


def test_a_consultation_given_up_goes_back_to_the_held_call() -> None:
    w, h, b, c = world()
    talking_to(w, h, b)
    h.flash(FLASH_S)
    h.press(c.number)
    assert w.run_until(lambda: states(c).get(h.phone.number) is CallState.INCOMING, timeout=5.0)
    h.press("*")  # cancel the call being placed
    w.run_for(1.0)
    assert states(h.phone) == {b.number: CallState.ACTIVE} and not states(c)


def test_mute_from_the_call_menu_and_its_mark() -> None:
    w, h, b, _ = world()
    talking_to(w, h, b)
    menu(h, "Mute")
    assert h.phone.core.preferences().muted and call_screen(h).muted
    menu(h, "Unmute")
    assert not h.phone.core.preferences().muted


def test_the_sas_confirmed_from_the_keypad_verifies_the_contact_and_shows_its_check() -> None:
    w, h, b, _ = world()
    h.phone.handle(commands.SaveContact(number=b.number, name="Bob"))
    talking_to(w, h, b)
    screen = call_screen(h)
    assert screen.detail == "Bob" and screen.sas  # a contact, key pinned on first use
    sas = screen.sas
    far = b.core.live_call()
    assert far is not None
    assert (b.core.call_json(far.call_id, w.sim.now) or {})["sas"] == sas  # the same digits
    menu(h, f"SAS {sas} ok?")
    page = h.screen()
    assert page.hint == "# yes  * no" and sas in " ".join(page.lines)  # type: ignore[attr-defined]
    h.press("#")
    w.run_for(0.5)
    assert call_screen(h).detail == f"Bob {VERIFIED}"
    assert [c["verified"] for c in h.phone.core.contact_cards()] == [True]
    h.hold("5")
    assert not any(item.startswith("SAS") for item in h.screen().items)  # type: ignore[attr-defined]


def test_a_changed_key_is_an_alert_that_only_hash_puts_away() -> None:
    """The contact 'Carol' is pinned to ``b``'s key; ``c`` (Carol's number, another key)
    calls: the alert covers the screen, keys other than '#' and '*' do nothing, and once read
    the call screen keeps the warning."""
    w, h, b, c = world()
    h.phone.handle(commands.SaveContact(number=c.number, name="Carol", public_key=b.key))
    c.handle(Dial(target=h.phone.number))
    assert w.run_until(lambda: states(h.phone).get(c.number) is CallState.INCOMING, timeout=5.0)
    w.run_for(0.5)
    alert = h.screen()
    assert isinstance(alert, AlertScreen) and alert.lines[0] == "Carol"
    assert h.ui.leds()["message"] == "flash"
    h.press("1")
    h.hold("5")
    assert isinstance(h.screen(), AlertScreen) and h.ui.commands_to_send() == []
    h.press("#")
    screen = call_screen(h)
    assert screen.title == "Incoming call" and screen.detail == f"Carol {KEY_CHANGED}"
    h.lift()
    assert w.run_until(lambda: states(h.phone).get(c.number) is CallState.ACTIVE, timeout=5.0)
    assert call_screen(h).hint == "KEY CHANGED"
    h.hang_up()
    w.run_for(4.0)
    h.press("*85")  # History: the contact's name with the warning, never plain
    history = h.screen()
    assert isinstance(history, MenuScreen) and history.items[0] == f"<Carol {KEY_CHANGED}"


def test_star_on_the_alert_ends_the_call_it_is_about() -> None:
    w, h, b, c = world()
    h.phone.handle(commands.SaveContact(number=c.number, name="Carol", public_key=b.key))
    c.handle(Dial(target=h.phone.number))
    assert w.run_until(lambda: states(h.phone).get(c.number) is CallState.INCOMING, timeout=5.0)
    w.run_for(0.5)
    h.press("*")
    assert w.run_until(lambda: not states(c), timeout=5.0)
    assert isinstance(h.screen(), CallScreen | IdleScreen)


def test_an_alert_outlasts_its_call() -> None:
    w, h, b, c = world()
    h.phone.handle(commands.SaveContact(number=c.number, name="Carol", public_key=b.key))
    c.handle(Dial(target=h.phone.number))
    assert w.run_until(lambda: states(h.phone).get(c.number) is CallState.INCOMING, timeout=5.0)
    c.handle(Hangup())
    w.run_for(40.0)  # the call ended, the display slept
    h.press("1")  # wakes the display only
    assert isinstance(h.screen(), AlertScreen)
    h.press("#")
    assert isinstance(h.screen(), IdleScreen)


def test_a_16_key_pad_opens_the_call_menu_with_a() -> None:
    w, h, b, _ = world(HandsetConfig(soft_keys=True))
    talking_to(w, h, b)
    h.press("A")
    screen = h.screen()
    assert isinstance(screen, MenuScreen) and screen.title == "Call"
    assert screen.hint == "A ok  B back"
    h.press("B")
    assert isinstance(h.screen(), CallScreen)
    assert b.of_type(events.DtmfReceived) == []


def test_a_long_star_in_the_call_menu_goes_back_to_the_call_not_to_idle() -> None:
    w, h, b, _ = world()
    talking_to(w, h, b)
    h.hold("5")
    h.hold("*")
    assert call_screen(h).title == "In call"


def test_a_call_waiting_that_rings_out_counts_as_missed() -> None:
    w, h, b, c = world()
    talking_to(w, h, b)
    waiting_from(w, h, c)
    c.handle(Hangup())
    w.run_for(1.0)
    assert h.ui.missed == 1 and call_screen(h).other == ""
