"""``dial`` and ``redial``: place a call and follow it until it rings, is answered or fails.

The phone streams the call's steps (``dial`` with ``progress``, docs/control-api.md); this
shows each on stderr with the time it has taken, prints the outcome, and hangs the call up if
the user presses Ctrl-C before it is settled: a call never keeps dialling unseen.
"""

import argparse
import contextlib
from typing import Any

from peerline.app.arguments import RESOLVE_WAIT_S
from peerline.app.control_client import ControlError, NotRunning, call, stream
from peerline.app.texts import shown

from .exits import FAILED, INTERRUPTED
from .output import Output
from .remote import control_socket

REASONS = {
    "busy": "the far phone is in a call",
    "declined": "the far phone declined",
    "do_not_disturb": "the far phone is set to do not disturb",
    "no_answer": "no one answered",
    "unreachable": "the far phone did not answer (switched off or cut off?)",
    "unknown_number": "no phone has this number",
    "number_conflict": "several phones hold this number: choose one with --key",
    "unknown_extension": "no phone on this LAN has this extension",
    "timeout": "the lookup did not finish in time",
    "glare": "the other phone called at the same moment",
}


def cmd_dial(args: argparse.Namespace, out: Output) -> int:
    cargs: dict[str, Any] = {"progress": True, "until": args.until}
    target = ""
    if args.command == "dial":
        target = args.number
        cargs["number"] = target
        if args.key:
            cargs["public_key"] = args.key
        if args.intercom:
            cargs["intercom"] = True
    call_id = None
    final: dict[str, Any] | None = None
    step, elapsed = "", 0.0
    items = stream(control_socket(args.data), args.command, cargs, idle_s=1.0)
    try:
        for item in items:
            if item is None:  # a second with no news: show that time passes
                elapsed += 1.0
            else:
                if item.get("call"):
                    call_id = item["call"]["call_id"]
                step, elapsed = _step_text(item, target), float(item.get("elapsed_s", 0.0))
                if item.get("final"):
                    final = item
                    break
            out.progress(step, elapsed)
    except KeyboardInterrupt:
        items.close()  # leave the stream before the hangup: the phone answers at once then
        out.end_progress()
        _cancel(args, call_id)
        out.warn("cancelled: the call was hung up" if call_id else "cancelled")
        return INTERRUPTED
    finally:
        items.close()
    if final is None:
        out.warn("the phone stopped before the call was placed")
        return FAILED
    return _outcome(final, out)


def _step_text(item: dict[str, Any], target: str) -> str:
    stage = item["stage"]
    number = shown(item.get("number") or target or "the hotline")
    if stage == "looking_up":
        return f"looking up {number}…"
    if stage == "calling":
        return f"calling {number} ({item.get('path') or 'direct'})…"
    if stage == "forwarded":
        to = shown((item.get("call") or {}).get("forwarded_to"))
        return f"{number} forwards to {to}…"
    if stage == "ringing":
        return f"ringing at {number}…"
    return f"{stage.replace('_', ' ')} {number}"


def _outcome(item: dict[str, Any], out: Output) -> int:
    call_info = item.get("call") or {}
    number = shown(item.get("number"))
    diverted = call_info.get("diverted") or []
    via = f", forwarded by {' -> '.join(map(shown, diverted))}" if diverted else ""
    sas = f", SAS {item['sas']}" if item.get("sas") else ""
    if item["stage"] == "failed":
        err = item.get("error") or {}
        code = str(err.get("code") or call_info.get("reason") or "failed")
        why = REASONS.get(code, str(err.get("message") or code).replace("_", " "))
        out.result(item, f"call to {number} failed: {why} ({code})")
        return FAILED
    if item["stage"] == "answered":
        human = f"{number} answered ({item.get('path') or 'direct'}{via}{sas})"
    else:
        human = f"{number} is ringing ({item.get('path') or 'direct'}{via}{sas})"
    out.result(item, human + "\n  call " + str(call_info.get("call_id", "?")))
    return 0


def _cancel(args: argparse.Namespace, call_id: str | None) -> None:
    if call_id is None:
        return
    # It may have ended already, or the phone gone away with it: nothing left to cancel then.
    with contextlib.suppress(ControlError, NotRunning, TimeoutError, OSError):
        call(control_socket(args.data), "hangup", {"call_id": call_id}, timeout=RESOLVE_WAIT_S)
