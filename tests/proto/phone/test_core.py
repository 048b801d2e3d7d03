"""PhoneCore (peerline.proto.phone.core): the phone's commands and events, driven in the
simulator (``PhoneWorld``) as the daemon drives them, with explicit virtual time.

Each test states one rule of the command/event face (design rule 16, control-api.md): what a
command is refused with, which events follow one that finishes later, and what the core does
on its own (caller identity, the peer cache, closing).
"""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerline.proto.phone import (
    AddPeer,
    Answer,
    CallState,
    CommandRejected,
    Dial,
    EndReason,
    Hangup,
    Lookup,
    PhoneConfig,
    PlayKeyTone,
    SendDtmf,
    SendMessage,
    SetDialTone,
    SetDoNotDisturb,
    SetMute,
    SetVolume,
    events,
)
from peerline.proto.phone.commands import SaveContact, SetForwarding
from peerline.sim.numbers import sim_number
from peerline.sim.phone import SimPhone
from peerline.sim.phones import PhoneWorld

NOBODY = "000000000001"


def world(seed: int = 1) -> tuple[PhoneWorld, SimPhone, SimPhone]:
    """A supernode and two phones that joined through it (t = 5 s)."""
    w = PhoneWorld(seed)
    s = w.add_phone("s", ("203.0.113.1", 4720))
    a = w.add_phone("a", ("198.51.100.2", 4720), seeds=[s])
    b = w.add_phone("b", ("198.51.100.3", 4720), seeds=[s])
    w.run_for(5.0)
    return w, a, b


# -- commands refused at once -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "code"),
    [
        (Dial(target="12345"), "bad_number"),
        (Dial(target="201"), "unknown_extension"),  # no LAN on this phone
        (SendMessage(target=NOBODY, text=""), "bad_request"),
        (SendMessage(target=NOBODY, text="x" * 2000), "bad_request"),
        (SendMessage(target="not a number", text="hi"), "bad_number"),
        (Lookup(number="1"), "bad_number"),
        (AddPeer(number=NOBODY, public_key=b"\x01" * 31, addr=("192.0.2.1", 1)), "bad_key"),
        (AddPeer(number=NOBODY, public_key=b"\x01" * 32, addr=("nohost", 1)), "bad_address"),
        (AddPeer(number=NOBODY, public_key=b"\x01" * 32, addr=("192.0.2.1", 0)), "bad_address"),
        (Answer(), "no_call"),
        (Hangup(), "no_call"),
        (SendDtmf(digits="1"), "no_call"),
        (SendDtmf(digits="XYZ"), "bad_request"),
        (SendDtmf(digits=""), "bad_request"),
        (PlayKeyTone(digit="77"), "bad_request"),
    ],
)
def test_a_command_that_cannot_be_carried_out_is_refused_and_changes_nothing(
    command: object, code: str
) -> None:
    _w, a, _ = world()
    before = len(a.events)
    with pytest.raises(CommandRejected) as refused:
        a.handle(command)  # type: ignore[arg-type]
    assert refused.value.code == code
    assert a.events[before:] == [] and a.core.live_call() is None


def test_adding_this_phones_own_key_is_refused() -> None:
    _, a, _ = world()
    with pytest.raises(CommandRejected, match="own key"):
        a.handle(AddPeer(number=a.number, public_key=a.key, addr=("192.0.2.1", 4720)))


def test_a_second_dial_places_a_second_call_unless_it_is_the_same_peer() -> None:
    w, a, b = world()
    first = a.handle(Dial(target=b.number))
    assert w.run_until(lambda: b.core.live_call() is not None, timeout=5.0)
    again = a.handle(Dial(target=b.number))  # b is a stored peer now: the live call again
    assert again.call_id == first.call_id
    other = a.handle(Dial(target=sim_number(b"\x09" * 32)))
    assert other.call_id not in (None, first.call_id)
    assert len([c for c in a.core.recent_calls() if c.live]) == 2


# -- commands that finish later ---------------------------------------------------------------
def test_dialling_a_number_nobody_has_ends_the_call_unknown_number() -> None:
    w, a, _ = world()
    accepted = a.handle(Dial(target=NOBODY))
    assert accepted.call_id is not None and accepted.request is not None
    call = a.core.call(accepted.call_id)
    assert call is not None and call.state is CallState.RESOLVING
    assert w.run_until(lambda: not a.core.call(accepted.call_id).live, timeout=40.0)  # type: ignore[union-attr]
    ended = a.core.call(accepted.call_id)
    assert ended is not None and ended.reason is EndReason.UNKNOWN_NUMBER
    assert "not found" in ended.detail
    assert [(e.state, e.reason) for e in a.of_type(events.CallStateChanged)] == [
        (CallState.RESOLVING, None),
        (CallState.ENDED, EndReason.UNKNOWN_NUMBER),
    ]
    assert not a.core.audio_active  # nothing played while the number was being found


def test_a_message_to_an_unknown_number_fails_its_request() -> None:
    w, a, _ = world()
    accepted = a.handle(SendMessage(target=NOBODY, text="anyone?"))
    assert w.run_until(lambda: bool(a.of_type(events.RequestFailed)), timeout=40.0)
    (failed,) = a.of_type(events.RequestFailed)
    assert failed.request == accepted.request and failed.code == "unknown_number"
    assert not a.of_type(events.MessageSent)


def test_a_message_is_sent_then_delivered_and_the_sender_is_learned_by_number() -> None:
    w, a, b = world()
    accepted = a.handle(SendMessage(target=b.number, text="hello"))
    assert w.run_until(lambda: bool(a.of_type(events.MessageStatusChanged)), timeout=10.0)
    (sent,) = a.of_type(events.MessageSent)
    assert sent.request == accepted.request and sent.number == b.number
    (status,) = a.of_type(events.MessageStatusChanged)
    assert status.message_id == sent.message_id and status.status == "delivered"
    (got,) = b.of_type(events.MessageReceived)
    assert got.text == "hello" and got.peer_key == a.key
    # b had never seen a's key: the number comes with the message or just after it.
    learned = [e.number for e in b.of_type(events.NumberLearned) if e.public_key == a.key]
    assert a.number in [got.number, *learned]
    saved = [e for e in a.of_type(events.PeerSaved) if e.public_key == b.key]
    assert saved and saved[0].number == b.number  # pinned on first use


def test_a_lookup_reports_the_verified_record() -> None:
    w, a, b = world()
    accepted = a.handle(Lookup(number=b.number))
    assert w.run_until(lambda: bool(a.of_type(events.LookupFinished)), timeout=10.0)
    (found,) = a.of_type(events.LookupFinished)
    assert found.request == accepted.request and found.found
    assert [r.public_key for r in found.records] == [b.key]
    assert not a.of_type(events.PeerSaved)  # a lookup stores nothing


def test_add_peer_checks_the_number_against_the_key() -> None:
    w, a, b = world()
    wrong = a.handle(AddPeer(number=NOBODY, public_key=b.key, addr=b.addr))
    right = a.handle(AddPeer(number=b.number, public_key=b.key, addr=b.addr))
    w.run_for(0.1)
    (failed,) = a.of_type(events.RequestFailed)
    assert failed.request == wrong.request and failed.code == "number_mismatch"
    (added,) = a.of_type(events.PeerAdded)
    assert added.request == right.request and added.number == b.number


# -- what the core does on its own ------------------------------------------------------------
def test_an_incoming_call_names_its_caller_once_the_number_is_derived() -> None:
    """The caller's number is derived while the phone rings (urgent): ``IncomingCall`` carries
    it, or ``CallerIdentified`` follows; ``CallStateChanged`` events carry it from then on."""
    w, a, b = world()
    a.handle(Dial(target=b.number))
    assert w.run_until(lambda: bool(b.of_type(events.IncomingCall)), timeout=5.0)
    (ringing,) = b.of_type(events.IncomingCall)
    named = [e.number for e in b.of_type(events.CallerIdentified)]
    assert a.number in [ringing.number, *named]
    assert ringing.peer_key == a.key and not ringing.known
    b.handle(Answer())
    w.run_for(1.0)
    active = [e for e in b.of_type(events.CallStateChanged) if e.state is CallState.ACTIVE]
    assert active and active[0].number == a.number


def test_an_intercom_call_from_a_contact_added_by_number_is_answered_at_once() -> None:
    """A contact marked auto-answer with no key yet: its first intercom call pins the key once
    the caller's number is derived (trust on first use) and is answered then, unasked. Another
    caller's intercom call rings."""
    w, a, b = world()
    b.handle(SaveContact(number=a.number, name="Alice", auto_answer=True))
    a.handle(Dial(target=b.number, intercom=True))
    assert w.run_until(lambda: bool(b.of_type(events.IncomingCall)), timeout=5.0)
    assert w.run_until(
        lambda: any(c.live and c.state is CallState.ACTIVE for c in b.core.recent_calls()),
        timeout=5.0,
    )
    assert b.core.book.intercom_keys() == {a.key}
    assert w.run_until(
        lambda: getattr(a.core.live_call(), "state", None) is CallState.ACTIVE, timeout=2.0
    )
    a.handle(Hangup())
    w.run_for(1.0)
    c = w.add_phone("c", ("198.51.100.4", 4720), seeds=[w.phones["s"]])
    w.run_for(5.0)
    c.handle(Dial(target=b.number, intercom=True))
    assert w.run_until(lambda: len(b.of_type(events.IncomingCall)) == 2, timeout=5.0)
    w.run_for(2.0)
    ringing = b.core.live_call()
    assert ringing is not None and ringing.state is CallState.INCOMING
    assert ringing.peer_key == c.key


def _offline_forwarding_world() -> tuple[PhoneWorld, SimPhone, SimPhone, SimPhone]:
    """``world()`` and C; B forwards to C while switched off (its record says so)."""
    w, a, b = world()
    c = w.add_phone("c", ("198.51.100.4", 4720), seeds=[w.phones["s"]])
    b.handle(SetForwarding(offline=c.number))
    w.run_for(5.0)
    assert b.core.overlay.record is not None and b.core.overlay.record.forward_to == c.number
    return w, a, b, c


def _switched_off_then_forwarded(w: PhoneWorld, a: SimPhone, b: SimPhone, c: SimPhone) -> None:
    w.sim.remove_node(b.addr)
    dialled = a.handle(Dial(target=b.number))
    assert w.run_until(lambda: bool(c.of_type(events.IncomingCall)), timeout=60.0)
    first = a.core.call(dialled.call_id or b"")
    assert first is not None and first.reason is EndReason.UNREACHABLE
    (ringing,) = c.of_type(events.IncomingCall)
    assert ringing.number == a.number
    (at_c,) = [x for x in c.core.calls.calls() if x.live]
    assert at_c.diverted == (b.number,)


def test_a_call_to_a_phone_switched_off_follows_its_records_forwarding() -> None:
    w, a, b, c = _offline_forwarding_world()
    _switched_off_then_forwarded(w, a, b, c)  # a never saw b: the lookup read the record


def test_offline_forwarding_is_followed_after_a_call_on_a_stale_session_too() -> None:
    """A talked to B lately (a session that still counts as live: no lookup when dialling B
    again). B is switched off; A's call goes out on that session, ends unreachable at the dial
    timeout, and only then is B's record read: its forwarding target is called."""
    w, a, b, c = _offline_forwarding_world()
    a.handle(Dial(target=b.number))
    assert w.run_until(lambda: b.core.live_call() is not None, timeout=5.0)
    b.handle(Hangup())
    w.run_for(1.0)
    assert a.core.node.live_path(b.key, now=w.sim.now) is not None
    _switched_off_then_forwarded(w, a, b, c)


def test_audio_is_wanted_while_a_call_rings_or_talks_and_for_the_dial_tone() -> None:
    w, a, b = world()
    assert not a.core.audio_active
    a.handle(SetDialTone(on=True))
    assert a.core.audio_active
    a.handle(SetDialTone(on=False))
    assert not a.core.audio_active
    a.handle(Dial(target=b.number))
    assert w.run_until(lambda: b.core.audio_active, timeout=5.0)  # the ringer
    b.handle(Hangup())
    w.run_for(5.0)  # a hears busy for end_tone_s, then the device is released
    assert not a.core.audio_active and not b.core.audio_active
    changes = [e.active for e in a.of_type(events.AudioActiveChanged)]
    assert changes[:2] == [True, False] and changes[-1] is False


def test_the_peer_cache_goes_out_every_few_minutes_and_at_close() -> None:
    config = PhoneConfig(peer_cache_save_s=60.0)
    w = PhoneWorld(2)
    s = w.add_phone("s", ("203.0.113.1", 4720))
    a = w.add_phone("a", ("198.51.100.2", 4720), seeds=[s], config=config)
    w.run_for(125.0)
    assert len(a.of_type(events.PeerCacheSaved)) == 2
    a.core.close(now=w.sim.now)
    a.handle(SetDialTone(on=False))  # any input drains the core
    assert len(a.of_type(events.PeerCacheSaved)) == 3
    assert isinstance(a.events[-1], events.PhoneClosed)


def test_the_core_asks_for_one_timer_and_never_for_the_past() -> None:
    w, a, b = world()
    a.handle(Dial(target=b.number))
    for _ in range(200):
        due = a.core.get_timer()
        assert due is None or (math.isfinite(due) and due >= w.sim.now - 1e-9)
        w.run_for(0.05)


# -- bad input never raises -------------------------------------------------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=20))
def test_any_datagrams_are_dropped_or_counted_never_raised(datagrams: list[bytes]) -> None:
    w, a, _ = world_cached()
    for data in datagrams:
        a.core.receive_datagram(data, ("192.0.2.99", 4720), now=w.sim.now)
    a.core.handle_timer(now=w.sim.now)
    assert a.core.datagrams_to_send(now=w.sim.now) is not None


_CACHE: dict[str, tuple[PhoneWorld, SimPhone, SimPhone]] = {}


def world_cached() -> tuple[PhoneWorld, SimPhone, SimPhone]:
    if "w" not in _CACHE:
        _CACHE["w"] = world()
    return _CACHE["w"]


# -- preferences ------------------------------------------------------------------------------
def test_do_not_disturb_refuses_callers_busy_and_says_so_in_the_record() -> None:
    w, a, b = world()
    b.handle(SetDoNotDisturb(on=True))
    record = b.core.overlay.record
    assert record is not None and record.presence.name == "DO_NOT_DISTURB"
    a.handle(Dial(target=b.number))
    assert w.run_until(
        lambda: a.core.live_call() is None and len(a.core.recent_calls()) > 0, timeout=10.0
    )
    assert a.core.recent_calls()[0].reason is EndReason.BUSY
    assert b.core.recent_calls()[0].reason is EndReason.DO_NOT_DISTURB
    assert not b.of_type(events.IncomingCall)  # it never rang
    b.handle(SetDoNotDisturb(on=False))
    assert b.core.preferences().do_not_disturb is False


def test_mute_sends_silence_and_volume_zero_plays_silence() -> None:
    w, a, b = world()
    a.handle(Dial(target=b.number))
    assert w.run_until(lambda: b.core.live_call() is not None, timeout=5.0)
    b.handle(Answer())
    w.run_for(2.0)
    heard = b.audio.frames_heard
    w.run_for(2.0)
    assert b.audio.frames_heard > heard  # a talks
    a.handle(SetMute(on=True))
    w.run_for(1.0)  # what was in flight plays out
    heard = b.audio.frames_heard
    w.run_for(3.0)
    assert b.audio.frames_heard == heard  # silence from a muted phone
    assert a.core.live_call() is not None and a.core.preferences().muted
    a.handle(SetMute(on=False))
    b.handle(SetVolume(level=0))
    w.run_for(1.0)
    heard = b.audio.frames_heard
    w.run_for(2.0)
    assert b.audio.frames_heard == heard  # volume 0: the speaker gets silence
    with pytest.raises(CommandRejected):
        b.handle(SetVolume(level=11))
