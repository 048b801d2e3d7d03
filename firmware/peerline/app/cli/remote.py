"""Commands for a running phone: each sends one control request (docs/control-api.md) and
prints the answer through ``Output``: the JSON as it is with ``--json``, else one text."""

import argparse
import logging
from pathlib import Path
from typing import Any

from peerline.app.arguments import RESOLVE_WAIT_S
from peerline.app.control_client import call, stream
from peerline.app.paths import Paths
from peerline.app.texts import address, event_text, plural, seconds, shown, when, who

from .exits import FAILED, Fail
from .output import Output

log = logging.getLogger("peerline.cli")


def ask(
    args: argparse.Namespace,
    cmd: str,
    cargs: dict[str, Any] | None = None,
    *,
    timeout: float = 30.0,
) -> Any:
    """One request to the phone on ``--data``; ``-v`` logs it and its answer."""
    log.debug("-> %s %s", cmd, cargs or {})
    result = call(control_socket(args.data), cmd, cargs, timeout=timeout)
    log.debug("<- %s", result)
    return result


def control_socket(data: Path) -> Path:
    return Paths(data).control_socket


# -- status and events ------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace, out: Output) -> int:
    st = ask(args, "status")
    out.result(st, status_text(st))
    return 0


def status_text(st: dict[str, Any]) -> str:
    """``status`` for people: the phone, where it listens, whether it is on the overlay, its
    audio, then sessions and calls."""
    up = seconds(st["uptime_s"])
    lines = [f"{st['name']}  {st['number_display']}  (up {up}, version {st['version']})"]
    lines.append("  listen    udp " + ", ".join(address(h, p) for h, p in st["listen"]))
    ov = st.get("overlay") or {}
    if ov:
        role = (
            "supernode (serves the directory)" if ov["role"] == "supernode" else "client behind NAT"
        )
        state = "joined" if ov["joined"] else "not joined yet (no seed or phone answered)"
        lines.append(
            f"  overlay   {state}; {role}; {plural(ov['contacts'], 'contact')},"
            f" {plural(ov['records_held'], 'record')} held"
        )
        if ov.get("reflexive"):
            lines.append(f"            seen by peers at {address(*ov['reflexive'])}")
    lan = st.get("lan")
    if lan is None:
        lines.append("  lan       off")
    else:
        ext = lan.get("extension") or "none yet"
        lines.append(
            f"  lan       extension {ext}, {plural(len(lan.get('phones', [])), 'phone')} seen"
        )
    lines.append(f"  audio     {_audio_text(st.get('audio'))}")
    handset = st.get("handset")
    if handset:
        lines.append(f"  handset   {_handset_text(handset)}")
    sessions = st.get("sessions", [])
    lines.append(f"  peers     {st['peers']} known, {plural(len(sessions), 'secure session')}")
    for s in sessions:
        label = shown(s.get("number")) if s.get("number") else f"key {s['peer_key'][:16]}…"
        if s.get("relay"):
            endpoint = f"via relay {address(*s['relay'])}"
        else:
            endpoint = address(*s["endpoint"]) if s.get("endpoint") else "?"
        lines.append(f"            {label}  {endpoint}  {s.get('path', 'direct')}  SAS {s['sas']}")
    for c in st.get("calls", []):
        lines.append(f"  call      {_call_line(c)}")
    fwd = {m: v for m, v in (st.get("forwarding") or {}).items() if v and m != "no_answer_s"}
    if fwd:
        text = "; ".join(f"{m.replace('_', ' ')} -> {shown(v)}" for m, v in fwd.items())
        lines.append(f"  forward   {text}")
    if st.get("do_not_disturb"):
        lines.append("  dnd       on: calls are declined")
    if st.get("missed_calls"):
        lines.append(
            f"  missed    {plural(st['missed_calls'], 'call')} not seen (peerline history)"
        )
    dropped = {k: v for k, v in st.get("counters", {}).items() if k.startswith("dropped") and v}
    if dropped:
        lines.append(
            "  dropped   "
            + ", ".join(f"{k.removeprefix('dropped_')} {v}" for k, v in dropped.items())
        )
    if st.get("restart_pending"):
        lines.append("  restart   to apply: " + ", ".join(st["restart_pending"]))
    return "\n".join(lines)


def _audio_text(audio: dict[str, Any] | None) -> str:
    if audio is None:
        return "none"
    spec = str(audio.get("spec") or "?")
    problem = audio.get("problem") or (
        None if audio.get("device_open", True) else audio.get("last_error")
    )
    if problem:
        return f"{spec}: PROBLEM: {problem}"
    state = "in use" if audio.get("active") else "ready"
    return f"{spec} ({state})"


def _handset_text(handset: dict[str, Any]) -> str:
    kind = str(handset.get("kind", "?"))
    if kind == "none":
        return "none (headless)"
    parts = ("keypad", "hook", "leds", "display")
    missing = [p for p in parts if handset.get(p) is False]
    text = kind + (f"; not working: {', '.join(missing)}" if missing else "")
    problems = handset.get("problems") or []
    return text + (f" ({problems[-1]})" if problems else "")


def _call_line(c: dict[str, Any]) -> str:
    arrow = "->" if c["direction"] == "outgoing" else "<-"
    trust = " verified" if c.get("verified") else ""
    line = f"{c['call_id'][:8]} {arrow} {who(c)}{trust}: {call_state(c)}"
    media = c.get("media")
    if c["state"] == "active" and media is not None:
        rx = media["rx"]
        line += (
            f", {c.get('path') or '?'}, {media['codec']} {media['bitrate'] // 1000} kbit/s"
            f" +{media['redundancy']}, rtt {media['rtt_ms']} ms, loss {rx['loss_pct']} %,"
            f" jitter {rx['jitter_ms']} ms, playout {rx['playout_delay_ms']} ms"
        )
    if c.get("sas") and c["state"] in ("active", "held"):
        line += f", SAS {c['sas']}"
    return line


def call_state(c: dict[str, Any]) -> str:
    state = str(c["state"])
    if c.get("reason"):
        state += f" ({c['reason']})"
    return state


def cmd_events(args: argparse.Namespace, out: Output) -> int:
    """Print the phone's events as they happen until Ctrl-C or the phone stops."""
    for event in stream(control_socket(args.data), "events"):
        out.line(event, event_text(event))
    return 0


# -- the directory ------------------------------------------------------------------------------
def cmd_lookup(args: argparse.Namespace, out: Output) -> int:
    out.progress(f"looking up {shown(args.number)} in the overlay…")
    res = ask(args, "lookup", {"number": args.number}, timeout=RESOLVE_WAIT_S)
    took = f"{res['elapsed_ms']:.0f} ms, {plural(res['queries'], 'query', 'queries')}"
    if not res["found"]:
        why = "no phone has this number" if res["reason"] == "not found" else res["reason"]
        human = f"{shown(res['number'])}: {why} ({took})"
    else:
        hops = (
            "answered from this phone's own table"
            if not res["hops"]
            else plural(res["hops"], "hop")
        )
        lines = [f"{shown(res['number'])}: {plural(len(res['records']), 'record')}, {hops}, {took}"]
        if res["conflict"]:
            lines.append("  WARNING: several keys hold this number; choose one with --key")
        for r in res["records"]:
            where = ", ".join(
                f"{address(a['host'], a['port'])} ({a['kind']})" for a in r["addresses"]
            )
            lines.append(
                f"  key {r['public_key']}  seq {r['seq']}  {r['presence']}  {where or 'no address'}"
            )
            if r.get("forward_to"):
                lines.append(f"      forwards to {shown(r['forward_to'])} while switched off")
        human = "\n".join(lines)
    out.result(res, human)
    return 0 if res["found"] else FAILED


def cmd_peer_add(args: argparse.Namespace, out: Output) -> int:
    host, port = args.address
    res = ask(
        args,
        "peer.add",
        {"number": args.number, "public_key": args.public_key, "host": host, "port": port},
    )
    out.result(res, f"added {shown(res['number'])} at {address(res['host'], res['port'])}")
    return 0


def cmd_peer_list(args: argparse.Namespace, out: Output) -> int:
    rows = ask(args, "peer.list")
    lines = [
        f"{shown(r['number'])}  {address(r['host'], r['port'])}  {r['public_key']}" for r in rows
    ]
    out.result(rows, "\n".join(lines) or "no peers added by hand")
    return 0


def cmd_lan(args: argparse.Namespace, out: Output) -> int:
    res = ask(args, "lan")
    if not res["enabled"]:
        out.result(res, "LAN discovery is off")
        return 0
    lines = [f"this phone: extension {res['extension'] or '(none yet)'}"]
    for p in sorted(res["phones"], key=lambda p: p["extension"] or ""):
        lines.append(
            f"  {p['extension'] or '---':>4}  {shown(p['number'])}  {address(p['host'], p['port'])}"
        )
    for g in res.get("groups", []):
        members = ", ".join(str(m) for m in g.get("members", []))
        lines.append(f"  group {g['extension']} ({g.get('mode', 'all')}): {members}")
    out.result(res, "\n".join(lines))
    return 0


# -- messages ---------------------------------------------------------------------------------
def cmd_msg_send(args: argparse.Namespace, out: Output) -> int:
    cargs: dict[str, Any] = {"number": args.number, "text": args.text, "wait_s": args.wait}
    if args.key:
        cargs["public_key"] = args.key
    if args.wait >= 1:
        out.progress(
            f"sending to {shown(args.number)}, waiting up to {args.wait:g} s for delivery…"
        )
    res = ask(args, "msg.send", cargs, timeout=args.wait + RESOLVE_WAIT_S + 10)
    out.result(res, f"{res['status']} (message {res['id'][:8]})")
    return FAILED if res["status"] == "failed" else 0


def cmd_msg_list(args: argparse.Namespace, out: Output) -> int:
    rows = ask(args, "msg.list", {"limit": args.limit})
    lines = [
        f"{when(m.get('created_at'))} {'<-' if m['direction'] == 'in' else '->'} {who(m)}"
        f"  [{m['status']}]  {m['text']}"
        for m in rows
    ]
    out.result(rows, "\n".join(lines) or "no messages")
    return 0


# -- calls ------------------------------------------------------------------------------------
def cmd_call_action(args: argparse.Namespace, out: Output) -> int:
    cargs: dict[str, Any] = {}
    if args.call_id:
        cargs["call_id"] = args.call_id
    if args.command == "dtmf":
        cargs["digits"] = args.digits
    command = "hangup" if args.command == "reject" else args.command
    if args.command == "reject" and not args.call_id:
        ringing = [c for c in ask(args, "status")["calls"] if c["state"] == "incoming"]
        if not ringing:
            raise Fail(FAILED, "no call is ringing")
        cargs["call_id"] = ringing[0]["call_id"]
    res = ask(args, command, cargs)
    out.result(res, f"call with {who(res)}: {call_state(res)}")
    return 0


def cmd_swap(args: argparse.Namespace, out: Output) -> int:
    res = ask(args, "swap")
    out.result(res, f"talking with {who(res)}; the other call is on hold")
    return 0


def cmd_switch(args: argparse.Namespace, out: Output) -> int:
    """``mute on|off`` and ``dnd on|off``."""
    res = ask(args, args.command, {"on": args.state == "on"})
    out.result(res, f"{args.command} {args.state}")
    return 0


def cmd_transfer(args: argparse.Namespace, out: Output) -> int:
    cargs: dict[str, Any] = {"target": args.number, "attended": args.attended}
    if args.call_id:
        cargs["call_id"] = args.call_id
    out.progress(f"transferring to {shown(args.number)}…")
    res = ask(args, "transfer", cargs, timeout=RESOLVE_WAIT_S + 130)
    done = "transferred" if res["transferred"] else f"not transferred: {call_state(res)}"
    out.result(res, f"call with {who(res)}: {done}")
    return 0 if res["transferred"] else FAILED


def cmd_conference(args: argparse.Namespace, out: Output) -> int:
    if args.numbers:
        out.progress(f"dialling {', '.join(shown(n) for n in args.numbers)} one after another…")
    res = ask(args, "conference", {"numbers": args.numbers}, timeout=130.0 * 9)
    lines = [f"conference of {plural(len(res['legs']), 'call')} (mixed here):"]
    lines += [f"  {who(c)}  {call_state(c)}" for c in res["legs"]]
    out.result(res, "\n".join(lines))
    return 0


def cmd_forward(args: argparse.Namespace, out: Output) -> int:
    if args.forward_command == "set":
        cargs: dict[str, Any] = {"mode": args.mode.replace("-", "_"), "number": args.number}
        if args.after is not None:
            cargs["after_s"] = args.after
        res = ask(args, "forward.set", cargs)
    else:
        mode = args.mode.replace("-", "_") if args.mode else None
        res = ask(args, "forward.clear", {"mode": mode} if mode else {})
    shown_modes = [
        f"{mode.replace('_', ' ')}: {shown(res[mode])}"
        + (f" after {res['no_answer_s']:g} s" if mode == "no_answer" else "")
        for mode in ("always", "busy", "no_answer", "offline")
        if res.get(mode)
    ]
    out.result(res, "forwarding " + ("; ".join(shown_modes) if shown_modes else "off"))
    return 0


# -- contacts and history -----------------------------------------------------------------------
def _contact_line(c: dict[str, Any]) -> str:
    slot = f"  *{c['speed_dial']}" if c.get("speed_dial") else ""
    mark = "verified" if c["verified"] else ("key pinned" if c["public_key"] else "no key yet")
    intercom = ", intercom" if c.get("auto_answer") else ""
    return f"{shown(c['number'])}  {c['name']}  ({mark}{intercom}){slot}"


def cmd_contacts(args: argparse.Namespace, out: Output) -> int:
    action = args.contacts_command
    if action == "list":
        rows = ask(args, "contacts.list")
        out.result(rows, "\n".join(_contact_line(c) for c in rows) or "no contacts")
        return 0
    if action == "add":
        cargs: dict[str, Any] = {
            "number": args.number,
            "name": args.name,
            "auto_answer": args.auto_answer,
            "replace": args.replace,
        }
        if args.key:
            cargs["public_key"] = args.key
        if args.speed_dial is not None:
            cargs["speed_dial"] = args.speed_dial
        res = ask(args, "contacts.add", cargs)
        out.result(res, _contact_line(res))
        return 0
    if action == "rm":
        res = ask(args, "contacts.rm", {"number": args.number})
        out.result(res, f"removed {shown(res['removed'])}")
        return 0
    res = ask(args, "contacts.verify", {"number": args.number})
    out.result(res, _contact_line(res))
    return 0


def cmd_history(args: argparse.Namespace, out: Output) -> int:
    res = ask(args, "history", {"limit": args.limit, "missed": args.missed})
    lines = []
    for c in res["calls"]:
        arrow = "<-" if c["direction"] == "in" else "->"
        label = shown(c["number"]) if c["number"] else (c["target"] or "?")
        took = f" {seconds(c['duration_s'])}" if c["duration_s"] is not None else ""
        mark = " verified" if c["verified"] else ""
        fwd = f" to {shown(c['forwarded_to'])}" if c.get("forwarded_to") else ""
        lines.append(f"{when(c['started_at'])} {arrow} {label}  {c['outcome']}{fwd}{took}{mark}")
    unseen = res["missed_unseen"]
    head = f"{plural(unseen, 'missed call')} not seen before" if unseen else ""
    out.result(res, "\n".join(([head] if head else []) + lines) or "no calls")
    return 0
