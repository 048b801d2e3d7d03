"""Telephony between real daemons on loopback (``file:`` audio): a caller never seen before is
shown by number, hold and resume, call waiting and swap, the call SAS, verified contacts,
do not disturb, forwarding always, a forwarding loop stopped, and a history that survives
``kill -9``.

Each phone knows only what a user would give it: the caller adds the callee as a peer by hand
(its number, key and address); the callee learns the caller from the call alone.
"""

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemons import (
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


def _ring(caller: Daemon, callee: Daemon) -> dict[str, Any]:
    """``caller`` dials ``callee``; returns ``callee``'s ringing call once its number shows."""
    res = cli_json(caller.data, "dial", callee.number)
    assert res["call"]["state"] in ("ringback", "dialing"), res

    def shown() -> bool:
        call = call_with(callee, caller)
        return call is not None and call["state"] == "incoming" and call["number"] is not None

    assert wait_for(shown), calls_of(callee)
    call = call_with(callee, caller)
    assert call is not None
    assert call["number"] == caller.number  # derived from the caller's key, never seen before
    return call


def test_hold_waiting_swap_sas_contacts_and_history(phones: Callable[..., Daemon]) -> None:
    a, b, c = phones("a"), phones("b"), phones("c")
    knows(a, b)
    knows(c, b)

    ringing = _ring(a, b)
    assert ringing["trust"] == "unknown"
    cli_json(b.data, "answer")
    assert wait_for(lambda: state_with(a, b) == "active" and state_with(b, a) == "active")
    # The call SAS: both ends show the same digits once the nonces are exchanged.
    assert wait_for(lambda: (call_with(a, b) or {}).get("sas") is not None)
    assert wait_for(lambda: (call_with(b, a) or {}).get("sas") is not None)
    sas = (call_with(a, b) or {})["sas"]
    assert sas == (call_with(b, a) or {})["sas"]

    # Hold and resume: the far phone is told.
    held = cli_json(a.data, "hold")
    assert held["state"] == "held", held
    assert wait_for(lambda: (call_with(b, a) or {}).get("held_by_peer") is True)
    resumed = cli_json(a.data, "resume")
    assert resumed["state"] == "active", resumed
    assert wait_for(lambda: (call_with(b, a) or {}).get("held_by_peer") is False)

    # Call waiting: C rings B while B talks to A; B answers C, A goes on hold; swap back.
    _ring(c, b)
    answered = cli_json(b.data, "answer")
    assert answered["peer_key"] == c.public_key and answered["state"] == "active"
    assert wait_for(lambda: state_with(b, a) == "held" and state_with(c, b) == "active")
    assert wait_for(lambda: (call_with(a, b) or {}).get("held_by_peer") is True)
    swapped = cli_json(b.data, "swap")
    assert swapped["peer_key"] == a.public_key and swapped["state"] == "active"
    assert wait_for(lambda: state_with(b, c) == "held" and state_with(b, a) == "active")
    assert wait_for(lambda: (call_with(c, b) or {}).get("held_by_peer") is True)

    # B verifies A after comparing the SAS; later calls show A as verified.
    cli_json(b.data, "contacts", "add", a.number, "Alice")
    verified = cli_json(b.data, "contacts", "verify", a.number)
    assert verified["verified"] and verified["public_key"] == a.public_key
    for d in (b, b):
        cli(d.data, "hangup")
    assert wait_for(lambda: not live_calls(a) and not live_calls(c) and not live_calls(b)), (
        calls_of(b)
    )

    again = _ring(a, b)
    assert again["trust"] == "verified" and again["contact"] == "Alice", again
    cli(b.data, "reject")
    assert wait_for(lambda: not live_calls(a))

    # The history: every call, with numbers, outcomes and the verified mark.
    history = cli_json(b.data, "history")
    outcomes = [(h["number"], h["direction"], h["outcome"]) for h in history["calls"]]
    assert outcomes == [
        (a.number, "in", "rejected"),
        (c.number, "in", "answered"),
        (a.number, "in", "answered"),
    ], outcomes
    assert history["calls"][0]["verified"] is True
    assert all(h["duration_s"] is not None for h in history["calls"][1:])
    shown = cli(b.data, "history").stdout
    assert "rejected" in shown and "answered" in shown


def test_history_survives_kill_9_and_missed_calls_are_counted(
    phones: Callable[..., Daemon], tmp_path: Path
) -> None:
    a, b = phones("a"), phones("b")
    knows(a, b)
    _ring(a, b)
    cli(a.data, "hangup")  # cancelled while ringing: missed at B
    assert wait_for(lambda: not live_calls(b))
    _ring(a, b)
    cli_json(b.data, "answer")
    assert wait_for(lambda: state_with(a, b) == "active")
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait()
    b2 = phones("b")  # the same data directory: same identity and database
    history = cli_json(b2.data, "history")
    assert [h["outcome"] for h in history["calls"]] == ["answered", "missed"], history
    assert history["calls"][0]["end_reason"] == "interrupted"
    assert history["missed_unseen"] == 1
    assert cli_json(b2.data, "history")["missed_unseen"] == 0  # seen now

    # Redial: A hangs up the call B's crash cut and calls again what it dialled last, from its
    # history (B listens on a new port).
    cli(a.data, "hangup", check=False)  # unless it ended by itself (20 s without media)
    assert wait_for(lambda: not live_calls(a)), calls_of(a)
    knows(a, b2)
    again = cli_json(a.data, "redial")
    assert again["number"] == b2.number, again
    # B2 derives A's number again after its restart (argon2id): shown once derived.
    assert wait_for(
        lambda: (
            (call_with(b2, a) or {}).get("number") == a.number and state_with(b2, a) == "incoming"
        )
    ), calls_of(b2)


def test_dnd_forwarding_and_a_forwarding_loop(phones: Callable[..., Daemon]) -> None:
    a, b, c = phones("a"), phones("b"), phones("c")
    knows(a, b, c)
    knows(b, a, c)

    cli_json(b.data, "dnd", "on")
    refused = cli(a.data, "dial", b.number, "--json", check=False)
    assert refused.returncode != 0 or '"busy"' in refused.stdout
    assert wait_for(lambda: calls_of(a)[0]["reason"] == "busy"), calls_of(a)
    refused_at_b = calls_of(b)[0]  # refused, but shown (and kept) with the caller's number
    assert (refused_at_b["reason"], refused_at_b["number"]) == ("do_not_disturb", a.number)
    cli_json(b.data, "dnd", "off")

    # Always: B forwards to C; A's call follows to C, which rings and shows A's number.
    cli_json(b.data, "forward", "set", "always", c.number)
    cli(a.data, "dial", b.number, "--json", check=False)
    assert wait_for(lambda: state_with(c, a) == "incoming"), calls_of(c)
    call = call_with(c, a)
    assert call is not None and call["diverted"] == [b.number]
    assert wait_for(lambda: (call_with(c, a) or {}).get("number") == a.number)
    cli(c.data, "reject")
    assert wait_for(lambda: not live_calls(a))
    forwarded = [h for h in cli_json(b.data, "history")["calls"] if h["outcome"] == "forwarded"]
    assert forwarded and forwarded[0]["forwarded_to"] == c.number

    # A loop: B forwards to A (the caller itself): stopped, never rings anywhere.
    cli_json(b.data, "forward", "set", "always", a.number)
    cli(a.data, "dial", b.number, "--json", check=False)
    assert wait_for(lambda: calls_of(a)[0]["reason"] == "forward_loop"), calls_of(a)
    assert not live_calls(a) and not live_calls(c)
    looped_at_b = calls_of(b)[0]
    assert (looped_at_b["reason"], looped_at_b["number"]) == ("forwarded", a.number)
    cli_json(b.data, "forward", "clear")
