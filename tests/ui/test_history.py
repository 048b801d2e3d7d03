"""The handset's history list, missed-call count and idle indicators (peerline.ui.menus,
peerline.ui.show) on real phone cores in the simulator, with the call log kept as the
simulator keeps it (``SimCallLog``) and as the daemon keeps it (``Persistence`` writing a real
``Database``, read by ``DbCallLog``): both must show the same history."""

from pathlib import Path

import pytest

from peerline.app.handset import DbCallLog
from peerline.app.persistence import Persistence
from peerline.proto.identity import format_number
from peerline.proto.phone import Answer, CallState, Dial, Hangup, commands
from peerline.sim.handset import SimCallLog, SimHandset, attach
from peerline.sim.phone import SimPhone
from peerline.sim.phones import PhoneWorld
from peerline.store.db import Database
from peerline.ui.model import CallLog, HistoryEntry, history_trust
from peerline.ui.render import VERIFIED
from peerline.ui.screens import CallScreen, DialScreen, IdleScreen, MenuScreen
from peerline.ui.show import history_item

MENU_HISTORY = "*85"
"""From the idle screen: the menu, down once, select (History)."""
MENU_FORWARD = "*" + "8" * 6 + "5"
"""From the idle screen: the menu's 'Forward' entry."""


def world(
    calls: CallLog | None = None,
) -> tuple[PhoneWorld, SimHandset, SimPhone, SimPhone]:
    w = PhoneWorld(1)
    s = w.add_phone("s", ("203.0.113.1", 4720))
    a = w.add_phone("a", ("198.51.100.2", 4720), seeds=[s])
    b = w.add_phone("b", ("198.51.100.3", 4720), seeds=[s])
    c = w.add_phone("c", ("198.51.100.4", 4720), seeds=[s])
    w.run_for(5.0)
    return w, attach(w, a, calls=calls), b, c


def live(phone: SimPhone) -> CallState | None:
    call = phone.core.live_call()
    return None if call is None else call.state


def ring(w: PhoneWorld, caller: SimPhone, h: SimHandset) -> None:
    caller.handle(Dial(target=h.phone.number))
    assert w.run_until(lambda: live(h.phone) is CallState.INCOMING, timeout=5.0)


def five_calls(w: PhoneWorld, h: SimHandset, b: SimPhone, c: SimPhone) -> None:
    """Missed (b), rejected (b), answered in (c), out (to b), forwarded here (b, to c)."""
    ring(w, b, h)
    b.handle(Hangup())
    w.run_for(5.0)
    ring(w, b, h)
    h.press("*")  # declined
    w.run_for(5.0)
    ring(w, c, h)
    h.press("#")
    w.run_for(2.0)
    c.handle(Hangup())
    w.run_for(5.0)
    h.press(b.number)
    assert w.run_until(lambda: live(b) is CallState.INCOMING, timeout=5.0)
    b.handle(Answer())
    w.run_for(2.0)
    b.handle(Hangup())
    w.run_for(5.0)
    h.phone.handle(commands.SetForwarding(always=c.number))
    b.handle(Dial(target=h.phone.number))
    assert w.run_until(lambda: live(c) is CallState.INCOMING, timeout=5.0)
    c.handle(Hangup())
    h.phone.handle(commands.SetForwarding())
    w.run_for(5.0)


def test_history_lists_direction_outcome_and_time_and_selecting_one_redials() -> None:
    w, h, b, c = world()
    five_calls(w, h, b, c)
    h.press(MENU_HISTORY)
    screen = h.screen()
    assert isinstance(screen, MenuScreen) and screen.title == "History"
    nb, nc = format_number(b.number), format_number(c.number)
    assert screen.items == (f"*{nb} ?", f">{nb} ?", f"<{nc} ?", f"x{nb} ?", f"!{nb} ?")
    hints = []
    for _ in screen.items:
        hints.append(h.screen().hint)  # type: ignore[attr-defined]
        h.press("8")
    assert [hint.split()[0] for hint in hints] == ["forwarded", "out", "in", "rejected", "missed"]
    assert all(hint.split()[1].count(":") == 1 for hint in hints)  # and when: 'HH:MM'
    h.press("88")  # round to the first line, then the third: c's call
    h.press("5")
    assert w.run_until(lambda: live(c) is CallState.INCOMING, timeout=5.0)
    assert isinstance(h.screen(), CallScreen)


def test_the_history_shows_a_contacts_name_and_the_check_of_a_verified_call() -> None:
    entry = HistoryEntry(
        incoming=False,
        outcome="answered",
        number="482155901736",
        target="482155901736",
        contact="Reception",
        trust="verified",
        when="09:41",
    )
    assert history_item(entry) == (f">Reception {VERIFIED}", "out 09:41")
    assert history_trust(verified=False, contact=True, pinned=b"k" * 32, key=b"j" * 32) == (
        "key_changed"
    )
    assert history_trust(verified=False, contact=True, pinned=None, key=b"j" * 32) == "pinned"
    assert history_trust(verified=False, contact=False, pinned=None, key=None) == "unknown"


def test_missed_calls_count_on_the_idle_screen_until_the_history_is_opened() -> None:
    w, h, b, c = world()
    ring(w, b, h)
    b.handle(Hangup())
    w.run_for(2.0)
    ring(w, c, h)
    c.handle(Hangup())
    w.run_for(5.0)
    idle = h.screen()
    assert isinstance(idle, IdleScreen) and idle.status.missed == 2
    assert idle.note == "2 missed calls" and h.ui.leds()["message"] == "flash"
    h.press(MENU_HISTORY)
    assert h.calls.missed_unseen() == 0 and h.ui.missed == 0
    h.hold("*")
    idle = h.screen()
    assert isinstance(idle, IdleScreen) and idle.status.missed == 0 and idle.note == ""


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database.open(tmp_path / "peerline.db")


def test_the_daemons_call_log_shows_the_same_history_as_the_simulators(db: Database) -> None:
    """``Persistence`` writes the database from the core's events (before the handset hears
    of them, as in the daemon); ``DbCallLog`` reads it for the UI. A ``SimCallLog`` on the same
    phone must agree on every line, and the missed count survives into a new UI."""
    w = PhoneWorld(1)
    s = w.add_phone("s", ("203.0.113.1", 4720))
    a = w.add_phone("a", ("198.51.100.2", 4720), seeds=[s])
    b = w.add_phone("b", ("198.51.100.3", 4720), seeds=[s])
    c = w.add_phone("c", ("198.51.100.4", 4720), seeds=[s])
    w.run_for(5.0)
    a.listeners.append(Persistence(db).handle)
    mirror = SimCallLog(a.core, w.sim)
    a.listeners.append(mirror.event)
    h = attach(w, a, calls=DbCallLog(db))
    five_calls(w, h, b, c)
    ring(w, c, h)  # one more missed
    c.handle(Hangup())
    w.run_for(5.0)

    def lines(log: CallLog) -> list[tuple[str, str, str]]:
        return [(*history_item(e)[:1], e.outcome, str(e.incoming)) for e in log.history(20)]

    assert lines(DbCallLog(db)) == lines(mirror)
    assert db.missed_unseen() == 2 == h.ui.missed
    again = attach(w, a, calls=DbCallLog(db))  # a restart: the count is in the store
    assert again.ui.missed == 2
    h.press(MENU_HISTORY)
    assert db.missed_unseen() == 0


def test_forward_all_from_the_menu_shows_on_the_idle_screen_and_goes_off_again() -> None:
    w, h, b, c = world()
    h.press(MENU_FORWARD)
    screen = h.screen()
    assert isinstance(screen, DialScreen) and screen.hint == "Forward to: number"
    h.press("201#")  # an extension: forwarding takes numbers only, and says so
    w.run_for(0.5)
    menu = h.screen()
    assert isinstance(menu, MenuScreen) and "Forward: off" in menu.items
    assert h.rejected[-1][1] == "bad_number"
    h.press("5")  # the entry again
    h.press(c.number)
    h.press("#")
    w.run_for(0.5)
    assert h.phone.core.forwarding()["always"] == c.number
    menu = h.screen()
    assert isinstance(menu, MenuScreen) and f"Forward: {format_number(c.number)}" in menu.items
    h.hold("*")
    w.run_for(3.0)  # the notice 'forwarding to ...' goes
    idle = h.screen()
    assert isinstance(idle, IdleScreen) and idle.status.forwarded
    assert idle.note == f"fwd to {format_number(c.number)}"
    b.handle(Dial(target=h.phone.number))
    assert w.run_until(lambda: live(c) is CallState.INCOMING, timeout=5.0)
    assert live(h.phone) is None  # forwarded: it does not ring here
    h.press(MENU_FORWARD)
    h.press("#")  # no number: forwarding off
    w.run_for(0.5)
    assert h.phone.core.forwarding()["always"] is None
    h.hold("*")
    assert not h.screen().status.forwarded  # type: ignore[attr-defined]


def test_do_not_disturb_shows_on_the_idle_screens_status_line() -> None:
    _, h, _, _ = world()
    h.press("*" + "8" * 5 + "5")
    h.hold("*")
    idle = h.screen()
    assert isinstance(idle, IdleScreen) and idle.status.dnd
