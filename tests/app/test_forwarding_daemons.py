"""Call features between real daemons on loopback (``file:`` audio), issue 19: a call cancelled
while it rings, glare, a call nobody answers, forwarding on busy, on no answer and while the
callee is switched off (from its signed directory record), intercom calls auto-answered for a
contact only, and the hotline.

In every test the phone that rings shows the caller's number (``status`` ``calls[].number``),
derived from the caller's key: the callee never had the caller added as a peer. A caller knows
its callee as a user would: its number, key and address given by hand (``peer add``), or by
number alone through the overlay (offline forwarding).
"""

import json
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from daemons import (
    LOOPBACK_CONFIG,
    Daemon,
    call_with,
    calls_of,
    cli,
    cli_json,
    knows,
    live_calls,
    state_with,
    wait_for,
)

from peerline.app.control_client import call as control
from peerline.app.paths import CONTROL_SOCKET_NAME
from peerline.proto.phone.config import CONNECT_TIMEOUT_S, CallConfig

Phones = Callable[..., Daemon]

RING_TIMEOUT_S = 5
"The shortest ring timeout the configuration allows (``[calls] ring_timeout_s``, 5-600)."
NO_ANSWER_S = 5
"The shortest no-answer forwarding time the phone accepts (``forward set --after``, 5-300)."
DIAL_TIMEOUT_S = CallConfig().dial_timeout_s
"A call whose INVITE rings nothing is given up after this long (``unreachable``)."
SLACK_S = 30.0
"What a wait for something due after a timeout allows on top of it (lookups, number"
" derivations, a busy machine)."


def _ended(d: Daemon, call_id: str) -> dict[str, Any] | None:
    """Call ``call_id`` at ``d`` once it has ended (None while it is live or unknown)."""
    call = next((c for c in calls_of(d) if c["call_id"] == call_id), None)
    return call if call is not None and call["state"] == "ended" else None


def _placing(d: Daemon, peer: Daemon) -> bool:
    """Whether ``d`` has placed a call to ``peer`` (being resolved, dialled or ringing)."""
    call = call_with(d, peer)
    return call is not None and call["direction"] == "outgoing"


def _rings(callee: Daemon, caller: Daemon, timeout: float = 10.0) -> dict[str, Any]:
    """``callee``'s call from ``caller`` once it rings and shows the caller's number."""

    def shown() -> bool:
        call = call_with(callee, caller)
        return call is not None and call["state"] == "incoming" and call["number"] is not None

    assert wait_for(shown, timeout), calls_of(callee)
    call = call_with(callee, caller)
    assert call is not None
    assert call["number"] == caller.number, call  # derived from the caller's key
    return call


def _dial(caller: Daemon, *args: str) -> dict[str, Any]:
    """``peerline dial ARGS``; its JSON also when it exits non-zero (the call ended: forwarded,
    refused)."""
    proc = cli(caller.data, "dial", *args, "--json", check=False)
    assert proc.stdout, proc.stderr
    res: dict[str, Any] = json.loads(proc.stdout)
    return res


def _ring(caller: Daemon, callee: Daemon, *args: str) -> dict[str, Any]:
    """``caller`` dials ``callee``; returns ``callee``'s ringing call once its number shows."""
    res = _dial(caller, callee.number, *args)
    assert res["call"]["state"] in ("ringback", "dialing"), res
    return _rings(callee, caller)


def _history(d: Daemon) -> list[tuple[str, str, str]]:
    """``d``'s call history, newest first: (number, direction, outcome)."""
    return [
        (h["number"], h["direction"], h["outcome"]) for h in cli_json(d.data, "history")["calls"]
    ]


def _control(d: Daemon, cmd: str, args: dict[str, Any]) -> Any:
    return control(d.data / CONTROL_SOCKET_NAME, cmd, args, timeout=60)


def _published(reader: Daemon, phone: Daemon, target: Daemon) -> bool:
    """Whether ``reader`` finds ``phone``'s record in the overlay, forwarding to ``target``."""
    found = _control(reader, "lookup", {"number": phone.number})
    forwards = [r["forward_to"] for r in found["records"]] if found["found"] else []
    return forwards == [target.number]


def _stored(d: Daemon) -> bool:
    """Whether other nodes acknowledged ``d``'s current record (it outlives ``d`` then)."""
    overlay = _control(d, "status", {})["overlay"]
    return bool(overlay["record_storers"]) and overlay["record_stored_seq"] == overlay["record_seq"]


@contextmanager
def _stopped(d: Daemon) -> Iterator[None]:
    """``d`` frozen (SIGSTOP): what reaches it waits in its sockets until it goes on."""
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)


def test_a_call_cancelled_while_it_rings_is_missed(phones: Phones) -> None:
    a, b = phones("a"), phones("b")
    knows(a, b)
    ringing = _ring(a, b)

    hung = cli_json(a.data, "hangup")
    assert (hung["state"], hung["reason"]) == ("ended", "cancelled"), hung
    assert wait_for(lambda: _ended(b, ringing["call_id"]) is not None), calls_of(b)
    assert (_ended(b, ringing["call_id"]) or {})["reason"] == "cancelled"
    assert not live_calls(a) and not live_calls(b)
    assert _history(b) == [(a.number, "in", "missed")]
    assert _history(a) == [(b.number, "out", "cancelled")]


def test_glare_two_phones_dialling_each_other_get_one_call(phones: Phones) -> None:
    """A's call and B's cross: each phone has placed its call before either INVITE arrives.

    B is frozen while A dials (A's handshake waits in B's socket), then A is frozen while B
    dials and takes A's handshake; only then do both run on. Whichever INVITE arrives first, the
    phone it reaches has a call to the other being placed: glare, resolved the same way at both
    ends (protocol.md §6.7)."""
    a, b = phones("a"), phones("b")
    knows(a, b)
    knows(b, a)
    with ThreadPoolExecutor(max_workers=2) as pool:
        with _stopped(b):
            dial_a = pool.submit(_control, a, "dial", {"number": b.number})
            assert wait_for(lambda: state_with(a, b) == "resolving"), calls_of(a)
            os.kill(a.proc.pid, signal.SIGSTOP)
        try:
            dial_b = pool.submit(_control, b, "dial", {"number": a.number})
            assert wait_for(lambda: _placing(b, a)), calls_of(b)
        finally:
            os.kill(a.proc.pid, signal.SIGCONT)
        results = [dial_a.result(timeout=60), dial_b.result(timeout=60)]

    def one_call_up() -> bool:
        at_a, at_b = call_with(a, b), call_with(b, a)
        return (
            at_a is not None
            and at_b is not None
            and at_a["state"] == at_b["state"] == "active"
            and at_a["call_id"] == at_b["call_id"]
        )

    assert wait_for(one_call_up), (calls_of(a), calls_of(b))
    calls = calls_of(a) + calls_of(b)
    glared = [c for c in calls if c["reason"] == "glare"]
    assert len(glared) == 1, calls
    survivor = call_with(a, b)
    assert survivor is not None and glared[0]["call_id"] != survivor["call_id"]
    assert len(live_calls(a)) == len(live_calls(b)) == 1, calls
    # Both dials answered with the call that survived; its callee shows the caller's number.
    assert {r["call"]["call_id"] for r in results} == {survivor["call_id"]}, results
    caller, callee = (a, b) if survivor["direction"] == "outgoing" else (b, a)
    incoming = call_with(callee, caller)
    assert incoming is not None and incoming["direction"] == "incoming"
    assert incoming["number"] == caller.number, incoming
    cli(a.data, "hangup")
    assert wait_for(lambda: not live_calls(a) and not live_calls(b))


def test_a_call_nobody_answers_stops_ringing_after_the_ring_timeout(phones: Phones) -> None:
    """``[calls] ring_timeout_s``: the callee's phone gives up (missed; the caller hears
    ``no_answer``), and a caller's phone gives up too (the callee's call is cancelled)."""
    a = phones("a")  # the default ring timeout: 60 s
    b = phones("b", config=LOOPBACK_CONFIG + f"\n[calls]\nring_timeout_s = {RING_TIMEOUT_S}\n")
    knows(a, b)

    # B's ring timeout ends A's call to B.
    ringing = _ring(a, b)
    assert wait_for(lambda: _ended(b, ringing["call_id"]) is not None, RING_TIMEOUT_S + SLACK_S)
    assert (_ended(b, ringing["call_id"]) or {})["reason"] == "missed"
    assert wait_for(lambda: _ended(a, ringing["call_id"]) is not None), calls_of(a)
    assert (_ended(a, ringing["call_id"]) or {})["reason"] == "no_answer"

    # B's ring timeout ends B's call to A (which would ring for 60 s).
    knows(b, a)
    ringing = _ring(b, a)
    assert wait_for(lambda: _ended(a, ringing["call_id"]) is not None, RING_TIMEOUT_S + SLACK_S)
    assert (_ended(a, ringing["call_id"]) or {})["reason"] == "cancelled"
    assert (_ended(b, ringing["call_id"]) or {})["reason"] == "no_answer"
    assert _history(b) == [(a.number, "out", "failed"), (a.number, "in", "missed")]
    assert _history(a)[0] == (b.number, "in", "missed")


def test_forward_on_busy_with_a_call_waiting_or_a_call_up(phones: Phones) -> None:
    """B (call waiting off) forwards on busy to C: while D's call rings at B, and while B
    talks to D, A's call to B follows to C, which shows A's number and that B diverted it."""
    a, c, d = phones("a"), phones("c"), phones("d")
    b = phones("b", config=LOOPBACK_CONFIG + "\n[calls]\ncall_waiting = false\n")
    knows(a, b, c)
    knows(d, b)
    cli_json(b.data, "forward", "set", "busy", c.number)

    def forwarded_to_c() -> None:
        dialled = _dial(a, b.number)  # answers with the call that follows the forward
        assert dialled["number"] == c.number, dialled
        assert dialled["call"]["diverted"] == [b.number], dialled
        first = next(x for x in calls_of(a) if x["number"] == b.number)
        assert (first["reason"], first["forwarded_to"]) == ("forwarded", c.number), first
        assert first["call_id"] != dialled["call"]["call_id"]
        call = _rings(c, a)
        assert call["diverted"] == [b.number], call
        cli(c.data, "reject")
        assert wait_for(lambda: not live_calls(a) and not live_calls(c)), calls_of(a)

    from_d = _ring(d, b)  # a call waiting at B: A's call would be refused busy
    forwarded_to_c()
    assert state_with(b, d) == "incoming"

    answered = cli_json(b.data, "answer")  # now B talks to D, call waiting off
    assert answered["call_id"] == from_d["call_id"] and answered["state"] == "active"
    forwarded_to_c()
    assert state_with(b, d) == "active" and state_with(d, b) == "active"

    forwards = [h for h in cli_json(b.data, "history")["calls"] if h["outcome"] == "forwarded"]
    assert [(h["number"], h["forwarded_to"]) for h in forwards] == [(a.number, c.number)] * 2


def test_forward_on_no_answer(phones: Phones) -> None:
    a, b, c = phones("a"), phones("b"), phones("c")
    knows(a, b, c)
    fwd = cli_json(b.data, "forward", "set", "no-answer", c.number, "--after", str(NO_ANSWER_S))
    assert (fwd["no_answer"], fwd["no_answer_s"]) == (c.number, NO_ANSWER_S), fwd

    ringing = _ring(a, b)  # rings at B first, shows A's number there
    at_c = _rings(c, a, NO_ANSWER_S + SLACK_S)  # then, unanswered, it follows to C
    assert at_c["diverted"] == [b.number], at_c
    ended = _ended(b, ringing["call_id"])
    assert ended is not None and ended["reason"] == "forwarded", calls_of(b)
    assert (_ended(a, ringing["call_id"]) or {})["forwarded_to"] == c.number
    answered = cli_json(c.data, "answer")
    assert answered["state"] == "active" and answered["diverted"] == [b.number]
    assert wait_for(lambda: state_with(a, c) == "active"), calls_of(a)
    assert _history(b) == [(a.number, "in", "forwarded")]


def test_offline_forwarding_follows_the_directory_record_of_a_phone_switched_off(
    phones: Phones,
) -> None:
    """B forwards to C and B2 to D while switched off: their signed records say so. Both are
    stopped; A, who never saw B, and E, who has B2 as a stored peer, find the records in the
    overlay, try the phones (in vain, for the connect timeout) and call C and D instead."""
    c = phones("c")  # every other phone joins the overlay through C
    d, b, b2, a, e = (phones(name, "--seed", c.addr) for name in ("d", "b", "b2", "a", "e"))
    knows(e, b2)
    for phone, target in ((b, c), (b2, d)):
        fwd = cli_json(phone.data, "forward", "set", "offline", target.number)
        assert fwd["offline"] == target.number, fwd

    # Other nodes hold the records that name the targets (not only B and B2 themselves).
    assert wait_for(lambda: _stored(b) and _stored(b2), 30)
    assert wait_for(lambda: _published(d, b, c) and _published(d, b2, d), 30)
    b.stop()
    b2.stop()
    with ThreadPoolExecutor(max_workers=2) as pool:
        dials = [
            pool.submit(cli, caller.data, "dial", callee.number, check=False, timeout=90)
            for caller, callee in ((a, b), (e, b2))
        ]
        at_c = _rings(c, a, CONNECT_TIMEOUT_S + SLACK_S)
        at_d = _rings(d, e, CONNECT_TIMEOUT_S + SLACK_S)
        for dial in dials:
            dial.result(timeout=90)
    assert at_c["diverted"] == [b.number] and at_d["diverted"] == [b2.number], (at_c, at_d)
    for caller, callee, target in ((a, b, c), (e, b2, d)):
        first = next(x for x in calls_of(caller) if x["number"] == callee.number)
        assert (first["reason"], first["forwarded_to"]) == ("unreachable", target.number), first
        assert state_with(caller, target) == "ringback"
        # The caller's history says where the call went, not that it failed.
        assert (callee.number, "out", "forwarded") in _history(caller), _history(caller)


@pytest.mark.slow
def test_offline_forwarding_after_a_call_on_a_session_gone_stale(phones: Phones) -> None:
    """A called B a moment ago: their session still counts as live when B is switched off, so
    A's next call goes out on it with no lookup, and is given up only at the dial timeout
    (``DIAL_TIMEOUT_S``). Then A reads B's record and calls C, its forwarding target."""
    c = phones("c")
    b, a = (phones(name, "--seed", c.addr) for name in ("b", "a"))
    knows(a, b)
    cli_json(b.data, "forward", "set", "offline", c.number)
    _ring(a, b)
    cli(a.data, "hangup")
    assert wait_for(lambda: not live_calls(b)), calls_of(b)
    assert wait_for(lambda: _stored(b) and _published(c, b, c), 30)
    b.stop()
    with ThreadPoolExecutor(max_workers=1) as pool:  # dial follows the call for ~30 s
        dial = pool.submit(cli, a.data, "dial", b.number, "--json", check=False, timeout=90)
        # On the old session, with no lookup: the INVITE goes out at once, unanswered.
        assert wait_for(lambda: state_with(a, b) == "dialing"), calls_of(a)
        dialled = call_with(a, b)
        assert dialled is not None
        at_c = _rings(c, a, DIAL_TIMEOUT_S + SLACK_S)
        out = json.loads(dial.result(timeout=90).stdout)
    assert out["stage"] == "ringing" and out["number"] == c.number, out  # dial followed it
    assert at_c["diverted"] == [b.number], at_c
    first = _ended(a, dialled["call_id"]) or {}
    assert (first["reason"], first["forwarded_to"]) == ("unreachable", c.number), first
    assert (b.number, "out", "forwarded") in _history(a), _history(a)


def test_intercom_calls_are_answered_at_once_for_a_contact_marked_auto_answer(
    phones: Phones,
) -> None:
    """B marks A auto-answer (by number: B never saw A's key): A's intercom call talks at once.
    C is no such contact: its intercom call rings, as A's ordinary call does."""
    a, b, c = phones("a"), phones("b"), phones("c")
    knows(a, b)
    knows(c, b)
    card = cli_json(b.data, "contacts", "add", a.number, "Alice", "--auto-answer")
    assert card["auto_answer"] and card["public_key"] is None, card

    dialled = _dial(a, b.number, "--intercom")
    assert dialled["call"]["intercom"], dialled
    assert wait_for(lambda: state_with(b, a) == "active" and state_with(a, b) == "active"), (
        calls_of(b)
    )
    at_b = call_with(b, a)
    assert at_b is not None and at_b["intercom"] and at_b["number"] == a.number, at_b
    assert at_b["contact"] == "Alice"
    cli(a.data, "hangup")
    assert wait_for(lambda: not live_calls(a) and not live_calls(b))

    at_b = _ring(c, b, "--intercom")
    assert at_b["intercom"] and at_b["contact"] is None, at_b
    cli(c.data, "hangup")
    assert wait_for(lambda: not live_calls(b)), calls_of(b)

    at_b = _ring(a, b)  # not an intercom call: it rings, from a contact too
    assert not at_b["intercom"] and at_b["contact"] == "Alice", at_b
    cli(a.data, "hangup")
    assert wait_for(lambda: not live_calls(b)), calls_of(b)

    # A's key is pinned for Alice now (trust on first use): answered as soon as it arrives.
    assert cli_json(b.data, "contacts", "list")[0]["public_key"] == a.public_key
    _dial(a, b.number, "--intercom")
    assert wait_for(lambda: state_with(b, a) == "active" and state_with(a, b) == "active"), (
        calls_of(b)
    )
    outcomes = [outcome for _, _, outcome in _history(b)]
    assert outcomes == ["live", "missed", "missed", "answered"], outcomes


def test_the_hotline_is_dialled_when_no_number_is_given(phones: Phones) -> None:
    b = phones("b")
    a = phones("a", config=LOOPBACK_CONFIG + f'\n[hardware]\nhotline = "{b.number}"\n')
    knows(a, b)
    assert cli_json(a.data, "status")["hotline"] == b.number
    dialled = _dial(a)
    assert dialled["number"] == b.number and dialled["call"]["state"] == "ringback", dialled
    at_b = _rings(b, a)
    assert at_b["call_id"] == dialled["call"]["call_id"]
    cli_json(b.data, "answer")
    assert wait_for(lambda: state_with(a, b) == "active"), calls_of(a)
    cli(a.data, "hangup")
    assert wait_for(lambda: not live_calls(b)), calls_of(b)
    assert _history(a) == [(b.number, "out", "answered")]
