"""Properties of HandsetUI with several calls, on real phone cores in the simulator: whatever
a person does with the keys and the hook while the far phones call, answer and hang up, the UI
never raises, every screen draws, and the screen never disagrees with the core's calls (a call
view is on the stack while any call is live, and on top it shows the call in front, in its
state). Hypothesis shrinks a failure to the shortest sequence of actions."""

import contextlib
from dataclasses import dataclass

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from peerline.proto.phone import (
    Answer,
    CallState,
    CommandRejected,
    Dial,
    Hangup,
    PhoneConfig,
)
from peerline.proto.phone.config import CallConfig
from peerline.sim.handset import SimHandset, attach
from peerline.sim.phone import SimPhone
from peerline.sim.phones import PhoneWorld
from peerline.ui.handset import HandsetConfig
from peerline.ui.lines import PLACING
from peerline.ui.render import render
from peerline.ui.screens import AlertScreen, CallScreen
from peerline.ui.show import _who
from peerline.ui.views import Kind

TITLES = {
    CallState.INCOMING: {"Incoming call"},
    CallState.ACTIVE: {"In call", "Conference", "Held by far end"},
    CallState.HELD: {"On hold"},
    **{state: {"Calling", "Ringing"} for state in PLACING},
}
"""The titles a call view may show for the call in front, by its state."""
MISUSE = {"unknown_command", "bad_request"}
"""Rejections that would mean the UI built a command wrongly (others: the calls moved on)."""


@dataclass(frozen=True)
class Key:
    key: str
    long: bool


@dataclass(frozen=True)
class Hook:
    what: str
    "'lift', 'down' (hang up) or 'flash'."
    seconds: float = 0.3


@dataclass(frozen=True)
class Far:
    phone: str
    what: str
    "'dial' (calls the handset), 'answer', 'hangup'."


@dataclass(frozen=True)
class Number:
    """The person types a far phone's whole number (a call, a new call, a transfer...)."""

    phone: str


@dataclass(frozen=True)
class Wait:
    seconds: float


Action = Key | Hook | Far | Number | Wait

far_phone = st.sampled_from("bc")
actions = st.one_of(
    st.builds(Key, st.sampled_from("0123456789*#ABCD"), st.booleans()),
    st.builds(Key, st.sampled_from("5#*"), st.booleans()),  # the keys that handle calls
    st.builds(Hook, st.sampled_from(["lift", "down", "flash"]), st.floats(0.12, 0.55)),
    st.builds(Hook, st.just("flash"), st.floats(0.12, 0.55)),
    st.builds(Far, far_phone, st.just("dial")),
    st.builds(Far, far_phone, st.sampled_from(["dial", "answer", "hangup"])),
    st.builds(Number, far_phone),
    st.builds(Wait, st.floats(0.1, 3.0)),
)


def world(soft_keys: bool) -> tuple[PhoneWorld, SimHandset, dict[str, SimPhone]]:
    """The handset ``a``; ``b`` answers only when told, ``c`` answers every call at once."""
    w = PhoneWorld(3)
    s = w.add_phone("s", ("203.0.113.1", 4720))
    a = w.add_phone("a", ("198.51.100.2", 4720), seeds=[s])
    b = w.add_phone("b", ("198.51.100.3", 4720), seeds=[s])
    answering = PhoneConfig(calls=CallConfig(auto_answer=True))
    c = w.add_phone("c", ("198.51.100.4", 4720), seeds=[s], config=answering)
    w.run_for(5.0)
    return w, attach(w, a, config=HandsetConfig(soft_keys=soft_keys)), {"b": b, "c": c}


def act(w: PhoneWorld, h: SimHandset, far: dict[str, SimPhone], action: Action) -> None:
    if isinstance(action, Key):
        h.press(action.key, hold=1.0 if action.long else 0.1)
    elif isinstance(action, Hook):
        if action.what == "lift":
            h.lift()
        elif action.what == "down":
            h.hang_up()
        else:
            h.flash(action.seconds)
    elif isinstance(action, Number):
        h.press(far[action.phone].number)
    elif isinstance(action, Far):
        phone = far[action.phone]
        command = {
            "dial": Dial(target=h.phone.number),
            "answer": Answer(),
            "hangup": Hangup(),
        }[action.what]
        with contextlib.suppress(CommandRejected):  # nothing to answer or hang up there
            phone.handle(command)
    else:
        w.run_for(action.seconds)


def check(h: SimHandset) -> None:
    """The screen agrees with the core's calls, and draws."""
    ui = h.ui
    screen = ui.screen()
    render(screen, (128, 64))
    render(screen, (128, 32))
    assert not [code for _, code in h.rejected if code in MISUSE], h.rejected
    if ui.alerts.top is not None:
        assert isinstance(screen, AlertScreen)
        return
    front = h.phone.core.live_call()
    live = [c.state.value for c in h.phone.core.recent_calls() if c.live]
    event(f"live calls: {len(live)}")
    if front is None:
        assert not isinstance(screen, CallScreen) or screen.title == "Call ended", screen
        return
    assert ui.find(Kind.CALL) is not None, "a call is live but no call view is on the stack"
    event(f"top view with a call: {ui.top.kind.value} {ui.top.purpose}")
    ringing = CallState.INCOMING.value in live
    assert (ui.leds()["ring"] == "blink") >= ringing  # a call that rings always blinks
    if ui.top.kind is Kind.CALL:
        assert isinstance(screen, CallScreen)
        event(f"call screen: {screen.title}{' +other' if screen.other else ''}")
        assert screen.title in TITLES[front.state], (front.state, screen)
        assert screen.who == _who(front), (front, screen)
        if ringing:  # in front, or on the line about the others
            assert screen.title == "Incoming call" or screen.other.startswith("wait "), screen


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(actions, min_size=1, max_size=40), st.booleans())
def test_random_keys_hook_and_far_calls_never_raise_and_the_screen_follows_the_calls(
    steps: list[Action], soft_keys: bool
) -> None:
    w, h, far = world(soft_keys)
    check(h)
    for step in steps:
        act(w, h, far, step)
        check(h)
    w.run_for(10.0)  # calls settle, screens time out
    check(h)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(["flash", "#", "*", "5L", "5", "8", "#L", "b", "c", "nb", "wait"]),
        max_size=40,
    )
)
def test_a_flash_happy_person_with_two_callers_never_leaves_a_live_call_unshown(
    steps: list[str],
) -> None:
    """The same property, weighted towards what several calls need: both far phones ring in
    and are answered by hook flashes, ``#``, ``*``, the menu (a long 5) and long ``#``."""
    w, h, far = world(False)
    h.lift()
    for step in steps:
        if step == "flash":
            act(w, h, far, Hook("flash"))
        elif step in ("b", "c"):
            act(w, h, far, Far(step, "dial"))
            w.run_for(1.0)
        elif step == "nb":
            act(w, h, far, Number("c"))
        elif step == "wait":
            w.run_for(2.0)
        else:
            act(w, h, far, Key(step[0], step.endswith("L")))
        check(h)
