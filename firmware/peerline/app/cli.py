"""The ``peerline`` command: set up a phone, run it, and talk to a running one.

Exit codes: 0 success, 1 the command failed, 2 bad usage or configuration, 3 no phone running.
"""

import argparse
import asyncio
import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import IO, Any, get_args

from peerline import __version__
from peerline.adapters.rng import OsRng
from peerline.app.bootconfig import import_boot_config
from peerline.app.control import RESOLVE_WAIT_S
from peerline.app.control_client import ControlError, NotRunning, call, stream
from peerline.app.daemon import Paths, Phone
from peerline.app.hardware import open_hardware, resolve_kind
from peerline.app.service import serve
from peerline.errors import ConfigError, InvalidNumber, StoreError
from peerline.proto.identity import Identity, derive_number, format_number, parse_number
from peerline.runtime.notify import JournalFormatter, ServiceNotifier, journal_stream
from peerline.store.config import (
    CONFIG_FILE_NAME,
    DEFAULT_CONFIG_TEXT,
    Config,
    HardwareKind,
    load_config,
)
from peerline.store.db import Database
from peerline.store.keyfile import KEY_FILE_NAME, read_identity, write_identity

EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUNNING = 1, 2, 3
SUPPORTED_AUDIO = ("auto", "null", "alsa", "file")
EMULATOR_LOG = "peerline.log"


def default_data_dir() -> Path:
    env = os.environ.get("PEERLINE_DATA")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "peerline"


def _out(args: argparse.Namespace, value: Any, human: str) -> None:
    print(json.dumps(value, indent=2) if getattr(args, "json", False) else human)


class _Fail(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- local commands ---------------------------------------------------------------------------
def _ensure_data_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def cmd_init(args: argparse.Namespace) -> int:
    data: Path = args.data
    _ensure_data_dir(data)
    identity = Identity.generate(OsRng())
    write_identity(data / KEY_FILE_NAME, identity)  # refuses to overwrite
    config_path = data / CONFIG_FILE_NAME
    if not config_path.exists():
        config_path.write_text(DEFAULT_CONFIG_TEXT)
        config_path.chmod(0o600)
    number = derive_number(identity.public_key)
    _out(
        args,
        {"number": number, "public_key": identity.public_key.hex(), "data": str(data)},
        f"New phone in {data}\n  number {format_number(number)}\n"
        f"  key    {identity.public_key.hex()}",
    )
    return 0


def cmd_id(args: argparse.Namespace) -> int:
    identity = read_identity(args.data / KEY_FILE_NAME)
    number = derive_number(identity.public_key)
    _out(
        args,
        {"number": number, "public_key": identity.public_key.hex()},
        f"{format_number(number)}  {identity.public_key.hex()}",
    )
    return 0


def _load_run_config(args: argparse.Namespace) -> Config:
    path = args.config or (args.data / CONFIG_FILE_NAME)
    if args.config is not None and not args.config.exists():
        raise ConfigError(f"{args.config}: no such file")
    config = load_config(path)
    overrides: dict[str, object] = {}
    if args.port is not None:
        overrides["network.port"] = args.port
    if args.hw is not None:
        overrides["hardware.kind"] = args.hw
    if args.pinmap is not None:
        overrides["hardware.pinmap"] = args.pinmap
    if args.audio is not None:
        overrides["audio.backend"] = args.audio
    if args.seed:
        overrides["overlay.seeds"] = list(args.seed)
    if args.no_lan:
        overrides["overlay.lan"] = False
    if args.bind is not None:
        v6 = ":" in args.bind
        overrides["network.bind4"] = "" if v6 else args.bind
        overrides["network.bind6"] = args.bind if v6 else ""
    if overrides:
        config = config.override(overrides, source="command line")
    if config.audio.kind not in SUPPORTED_AUDIO:
        raise ConfigError(
            f"audio.backend: {config.audio.backend!r} is not supported by this firmware yet "
            f"(supported: {', '.join(SUPPORTED_AUDIO)})"
        )
    return config


def cmd_run(args: argparse.Namespace) -> int:
    config = _load_run_config(args)
    data: Path = args.data
    _ensure_data_dir(data)
    kind = resolve_kind(config.hardware.kind, stdin=sys.stdin, stdout=sys.stdout)
    config = config.override({"hardware.kind": kind}, source="hardware.kind = auto")
    _setup_logging(config, data, emulator=kind == "emulator")

    def reload() -> Config:
        """SIGHUP: the same file and command line again (the handset stays as opened)."""
        return _load_run_config(args).override({"hardware.kind": kind}, source="reload")

    lock = _lock_data_dir(data)  # held until the process exits
    key_path = data / KEY_FILE_NAME
    if not key_path.exists():
        write_identity(key_path, Identity.generate(OsRng()))
        logging.getLogger("peerline").info("first start: created a new identity in %s", key_path)
    identity = read_identity(key_path)
    paths = Paths(data)
    hardware = open_hardware(config)
    with Database.open(paths.database) as db:
        phone = Phone(paths=paths, config=config, identity=identity, db=db, hardware=hardware)

        def ready(p: Phone) -> None:
            if kind == "emulator":  # the number is on the screen; the rest is in the log
                logging.getLogger("peerline").info("ready: %s", p.status()["number_display"])
                return
            st = p.status()
            listen = ", ".join(
                f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h, port in st["listen"]
            )
            print(
                f"Peerline {__version__}\n"
                f"  number   {st['number_display']}\n"
                f"  key      {st['public_key']}\n"
                f"  listen   udp {listen}\n"
                f"  control  {paths.control_socket}\n"
                f"  peers    {st['peers']} known\n"
                f"ready",
                flush=True,
            )

        try:
            notifier = ServiceNotifier.from_environ()
            asyncio.run(serve(phone, on_ready=ready, reload=reload, notifier=notifier))
        except OSError as exc:
            raise _Fail(EXIT_FAILED, f"cannot start the phone: {exc}") from None
    lock.close()
    return 0


def _setup_logging(config: Config, data: Path, *, emulator: bool) -> None:
    """The log: to the journal with priorities and no time of its own under systemd; to a
    file beside the phone's data in the emulator (the terminal is its screen); else stderr."""
    handler: logging.Handler
    if emulator:
        handler = logging.FileHandler(data / EMULATOR_LOG)
    else:
        handler = logging.StreamHandler(sys.stderr)
    if not emulator and journal_stream(sys.stderr):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(config.log.level.upper())


def _lock_data_dir(data: Path) -> "IO[bytes]":
    """One phone per data directory: a second ``run`` on it exits instead of stealing it."""
    fd = os.open(data / "run.lock", os.O_RDWR | os.O_CREAT, 0o600)
    f = os.fdopen(fd, "r+b")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise _Fail(EXIT_FAILED, f"another phone is already running on {data}") from None
    return f


# -- commands for a running phone ---------------------------------------------------------------
def _call(
    args: argparse.Namespace, cmd: str, cargs: dict[str, Any] | None = None, timeout: float = 30.0
) -> Any:
    return call(Paths(args.data).control_socket, cmd, cargs, timeout=timeout)


def cmd_status(args: argparse.Namespace) -> int:
    st = _call(args, "status")
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"{st['name']}  {st['number_display']}  (up {st['uptime_s']:.0f} s)")
    print(f"  listen   {st['listen']}")
    print(f"  peers    {st['peers']} known, {len(st['sessions'])} secure sessions")
    for s in st["sessions"]:
        print(f"    {s['peer_key'][:16]}…  {s['endpoint']}  SAS {s['sas']}")
    for c in st.get("calls", [])[:1]:  # the live call, or the last one
        who = format_number(c["number"]) if c.get("number") else c["peer_key"][:16] + "…"
        line = f"  call     {c['direction']} {who}: {_call_state(c)}"
        media = c.get("media")
        if c["state"] == "active" and media is not None:
            rx = media["rx"]
            line += (
                f", {c['path']}, {media['codec']} {media['bitrate'] // 1000} kbit/s"
                f" +{media['redundancy']}, rtt {media['rtt_ms']} ms, loss {rx['loss_pct']} %,"
                f" jitter {rx['jitter_ms']} ms, playout {rx['playout_delay_ms']} ms"
            )
        print(line)
    dropped = {k: v for k, v in st["counters"].items() if k.startswith("dropped") and v}
    if dropped:
        print(f"  dropped  {dropped}")
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    """Print the phone's events as they happen (one JSON object a line with --json)."""
    for event in stream(Paths(args.data).control_socket, "events"):
        if args.json:
            print(json.dumps(event), flush=True)
        else:
            print(_event_text(event), flush=True)
    return 0


def _event_text(event: dict[str, Any]) -> str:
    """One line for people, from an event's JSON (control-api.md ``events``)."""
    kind = str(event.get("event", "?"))
    number = event.get("number")
    who = format_number(number) if number else f"key {str(event.get('peer_key', ''))[:16]}…"
    if kind == "call_state_changed":
        reason = f" ({event['reason']})" if event.get("reason") else ""
        return f"call {event['call_id'][:8]} with {who}: {event['state']}{reason}"
    if kind == "incoming_call":
        name = f' "{event["name"]}"' if event.get("name") else ""
        return f"incoming call {event['call_id'][:8]} from {who}{name}"
    if kind == "message_received":
        return f"message from {who}: {event['text']}"
    if kind == "network_changed":
        return f"network ({event['aspect']}): {event['summary']}"
    rest = " ".join(f"{k}={v}" for k, v in event.items() if k != "event")
    return f"{kind.replace('_', ' ')}: {rest}"


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise _Fail(EXIT_USAGE, f"address must be HOST:PORT or [IPv6]:PORT, got {text!r}")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, int(port_text), type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _Fail(EXIT_USAGE, f"cannot resolve {host!r}: {exc}") from None
    return str(infos[0][4][0]), int(port_text)


def cmd_peer_add(args: argparse.Namespace) -> int:
    host, port = _host_port(args.address)
    res = _call(
        args,
        "peer.add",
        {"number": args.number, "public_key": args.public_key, "host": host, "port": port},
    )
    _out(args, res, f"added {format_number(res['number'])} at {res['host']}:{res['port']}")
    return 0


def cmd_peer_list(args: argparse.Namespace) -> int:
    rows = _call(args, "peer.list")
    _out(
        args,
        rows,
        "\n".join(
            f"{format_number(r['number'])}  {r['host']}:{r['port']}  {r['public_key']}"
            for r in rows
        )
        or "no peers",
    )
    return 0


def cmd_msg_send(args: argparse.Namespace) -> int:
    cargs: dict[str, Any] = {"number": args.number, "text": args.text, "wait_s": args.wait}
    if args.key:
        cargs["public_key"] = args.key
    # The phone may first look the number up (up to RESOLVE_WAIT_S) before it waits --wait.
    res = _call(args, "msg.send", cargs, timeout=args.wait + RESOLVE_WAIT_S + 10)
    _out(args, res, f"{res['status']} ({res['id']})")
    return EXIT_FAILED if res["status"] == "failed" else 0


def cmd_lookup(args: argparse.Namespace) -> int:
    res = _call(args, "lookup", {"number": args.number}, timeout=30.0)
    if not res["found"]:
        human = f"{format_number(res['number'])}: not found ({res['reason']})"
    else:
        lines = [
            f"{format_number(res['number'])}: {len(res['records'])} record(s), "
            f"{res['hops']} hops, {res['elapsed_ms']:.0f} ms, {res['queries']} queries"
        ]
        if res["conflict"]:
            lines.append("  WARNING: several keys hold this number; choose one with --key")
        for r in res["records"]:
            where = ", ".join(f"{a['host']}:{a['port']} ({a['kind']})" for a in r["addresses"])
            lines.append(f"  key {r['public_key']}  seq {r['seq']}  {r['presence']}  {where}")
        human = "\n".join(lines)
    _out(args, res, human)
    return 0 if res["found"] else EXIT_FAILED


def cmd_dial(args: argparse.Namespace) -> int:
    cargs: dict[str, Any] = {}
    if args.command == "dial":
        cargs["number"] = args.number
        if args.key:
            cargs["public_key"] = args.key
        if args.intercom:
            cargs["intercom"] = True
    res = _call(args, args.command, cargs, timeout=60.0)
    call = res["call"]
    diverted = call.get("diverted") or []
    via = f", forwarded by {' -> '.join(map(_shown, diverted))}" if diverted else ""
    human = (
        f"calling {_shown(res['number'])} ({res['path']}{via}), SAS {res['sas']}: "
        f"{_call_state(call)}"
    )
    _out(args, res, human)
    return EXIT_FAILED if call["state"] == "ended" else 0


def _call_state(call: dict[str, Any]) -> str:
    state = str(call["state"])
    if call.get("reason"):
        state += f" ({call['reason']})"
    return state


def cmd_call_action(args: argparse.Namespace) -> int:
    cargs: dict[str, Any] = {}
    if args.call_id:
        cargs["call_id"] = args.call_id
    if args.command == "dtmf":
        cargs["digits"] = args.digits
    command = "hangup" if args.command == "reject" else args.command
    if args.command == "reject" and not args.call_id:
        ringing = [c for c in _call(args, "status")["calls"] if c["state"] == "incoming"]
        if not ringing:
            raise _Fail(EXIT_FAILED, "no call is ringing")
        cargs["call_id"] = ringing[0]["call_id"]
    res = _call(args, command, cargs)
    who = format_number(res["number"]) if res.get("number") else res["peer_key"][:16] + "…"
    _out(args, res, f"call with {who}: {_call_state(res)}")
    return 0


def cmd_swap(args: argparse.Namespace) -> int:
    res = _call(args, "swap")
    who = format_number(res["number"]) if res.get("number") else res["peer_key"][:16] + "…"
    _out(args, res, f"talking with {who}; the other call is on hold")
    return 0


def cmd_switch(args: argparse.Namespace) -> int:
    """``mute on|off`` and ``dnd on|off``."""
    res = _call(args, args.command, {"on": args.state == "on"})
    _out(args, res, f"{args.command} {args.state}")
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    cargs: dict[str, Any] = {"target": args.number, "attended": args.attended}
    if args.call_id:
        cargs["call_id"] = args.call_id
    res = _call(args, "transfer", cargs, timeout=RESOLVE_WAIT_S + 130)
    done = "transferred" if res["transferred"] else f"not transferred: {_call_state(res)}"
    _out(args, res, f"call with {_shown(res['number'])}: {done}")
    return 0 if res["transferred"] else EXIT_FAILED


def cmd_conference(args: argparse.Namespace) -> int:
    res = _call(args, "conference", {"numbers": args.numbers}, timeout=130.0 * 9)
    lines = [f"conference of {len(res['legs'])} calls (mixed here):"]
    lines += [
        f"  {format_number(c['number']) if c['number'] else '?'}  {_call_state(c)}"
        for c in res["legs"]
    ]
    _out(args, res, "\n".join(lines))
    return 0


def cmd_forward(args: argparse.Namespace) -> int:
    if args.forward_command == "set":
        cargs: dict[str, Any] = {"mode": args.mode.replace("-", "_"), "number": args.number}
        if args.after is not None:
            cargs["after_s"] = args.after
        res = _call(args, "forward.set", cargs)
    else:
        mode = args.mode.replace("-", "_") if args.mode else None
        res = _call(args, "forward.clear", {"mode": mode} if mode else {})
    shown = [
        f"{mode.replace('_', ' ')}: {format_number(res[mode])}"
        for mode in ("always", "busy", "no_answer", "offline")
        if res.get(mode)
    ]
    _out(args, res, "forwarding " + ("; ".join(shown) if shown else "off"))
    return 0


def _contact_line(c: dict[str, Any]) -> str:
    slot = f"  *{c['speed_dial']}" if c.get("speed_dial") else ""
    mark = "verified" if c["verified"] else ("key pinned" if c["public_key"] else "no key yet")
    intercom = ", intercom" if c.get("auto_answer") else ""
    return f"{format_number(c['number'])}  {c['name']}  ({mark}{intercom}){slot}"


def cmd_contacts(args: argparse.Namespace) -> int:
    action = args.contacts_command
    if action == "list":
        rows = _call(args, "contacts.list")
        _out(args, rows, "\n".join(_contact_line(c) for c in rows) or "no contacts")
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
        res = _call(args, "contacts.add", cargs)
        _out(args, res, _contact_line(res))
        return 0
    if action == "rm":
        res = _call(args, "contacts.rm", {"number": args.number})
        _out(args, res, f"removed {format_number(res['removed'])}")
        return 0
    res = _call(args, "contacts.verify", {"number": args.number})
    _out(args, res, _contact_line(res))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    res = _call(args, "history", {"limit": args.limit, "missed": args.missed})
    lines = []
    for c in res["calls"]:
        arrow = "<-" if c["direction"] == "in" else "->"
        who = format_number(c["number"]) if c["number"] else (c["target"] or "?")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(c["started_at"]))
        took = f" {c['duration_s']:.0f} s" if c["duration_s"] is not None else ""
        mark = " verified" if c["verified"] else ""
        fwd = f" to {_shown(c['forwarded_to'])}" if c.get("forwarded_to") else ""
        lines.append(f"{when} {arrow} {who}  {c['outcome']}{fwd}{took}{mark}")
    head = f"{res['missed_unseen']} missed call(s) not seen before" if res["missed_unseen"] else ""
    _out(args, res, "\n".join(([head] if head else []) + lines) or "no calls")
    return 0


def cmd_msg_list(args: argparse.Namespace) -> int:
    rows = _call(args, "msg.list", {"limit": args.limit})
    lines = [
        f"{'<-' if m['direction'] == 'in' else '->'} "
        f"{format_number(m['number']) if m['number'] else m['peer_key'][:16] + '…'}  "
        f"[{m['status']}]  {m['text']}"
        for m in rows
    ]
    _out(args, rows, "\n".join(lines) or "no messages")
    return 0


# -- argument parsing ---------------------------------------------------------------------------
def _shown(number: str | None) -> str:
    """A number as the phone shows it (in fours); an extension or anything else as it is."""
    if not number:
        return "?"
    try:
        return format_number(number)
    except InvalidNumber:
        return number


def _number_arg(text: str) -> str:
    try:
        return parse_number(text)
    except InvalidNumber as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _target_arg(text: str) -> str:
    """A 12-digit number, a 3-4 digit LAN extension, a speed-dial slot as ``*N``, or nothing
    (``dial`` calls the hotline; argparse parses the default "" too)."""
    if not text:
        return text
    if text.isascii() and text.isdigit() and 3 <= len(text) <= 4:
        return text
    if text.startswith("*") and text[1:].isdigit() and 1 <= int(text[1:]) <= 99:
        return text
    return _number_arg(text)


def cmd_lan(args: argparse.Namespace) -> int:
    res = _call(args, "lan")
    if not res["enabled"]:
        _out(args, res, "LAN discovery is off")
        return 0
    lines = [f"this phone: extension {res['extension'] or '(none yet)'}"]
    for p in sorted(res["phones"], key=lambda p: p["extension"] or ""):
        lines.append(
            f"  {p['extension'] or '---':>4}  {format_number(p['number'])}  {p['host']}:{p['port']}"
        )
    _out(args, res, "\n".join(lines))
    return 0


def cmd_boot_config(args: argparse.Namespace) -> int:
    owner = None
    if args.owner:
        import pwd  # noqa: PLC0415  (only this root-run command needs it)

        try:
            entry = pwd.getpwnam(args.owner)
        except KeyError:
            raise _Fail(EXIT_USAGE, f"no such user: {args.owner}") from None
        owner = (entry.pw_uid, entry.pw_gid)
    ok = import_boot_config(
        args.boot, args.config, args.data, args.wifi_conf, say=print, owner=owner
    )
    return 0 if ok else EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data",
        type=Path,
        default=default_data_dir(),
        help="the phone's data directory (default: $PEERLINE_DATA or ~/.local/share/peerline)",
    )
    common.add_argument("--json", action="store_true", help="print JSON")

    parser = argparse.ArgumentParser(prog="peerline", description="Peerline desk phone")
    parser.add_argument("--version", action="version", version=f"peerline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", parents=[common], help="create a phone identity in --data")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("id", parents=[common], help="print this phone's number and key")
    p.set_defaults(func=cmd_id)

    p = sub.add_parser("run", parents=[common], help="run the phone")
    p.add_argument("--port", type=int, help="UDP port (0 = any free port)")
    p.add_argument(
        "--hw",
        choices=get_args(HardwareKind),
        help="the handset: pi (GPIO keypad, hook, LEDs, I2C display), emulator (drawn in this"
        " terminal), none (headless), auto (default: pi on a Raspberry Pi, else the emulator"
        " in a terminal, else none)",
    )
    p.add_argument(
        "--pinmap", metavar="NAME|PATH", help="with --hw pi: the pin map (hw/pinmaps/NAME.toml)"
    )
    p.add_argument(
        "--audio",
        help="audio: alsa:DEVICE (e.g. alsa:default), file:IN.wav,OUT.wav, null, or auto (the"
        " default: alsa:default with a handset, else null)",
    )
    p.add_argument("--config", type=Path, help=f"config file (default: DATA/{CONFIG_FILE_NAME})")
    p.add_argument(
        "--seed",
        action="append",
        metavar="HOST:PORT",
        help="join the overlay through this node (repeatable; KEYHEX@HOST:PORT also works)",
    )
    p.add_argument("--no-lan", action="store_true", help="no zeroconf discovery on the LAN")
    p.add_argument(
        "--bind",
        metavar="ADDRESS",
        help="listen on this one IP address only (e.g. 127.0.0.1 for phones on one machine)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "boot-config",
        parents=[common],
        help="import a peerline.toml left on the boot partition (run at boot, as root)",
    )
    p.add_argument("--boot", type=Path, default=Path("/boot/firmware"), help="boot partition")
    p.add_argument(
        "--config",
        type=Path,
        default=Path("/etc/peerline/peerline.toml"),
        help="the phone's configuration, merged into",
    )
    p.add_argument("--wifi-conf", type=Path, help="wpa_supplicant file for a [wifi] table")
    p.add_argument("--owner", metavar="USER", help="the phone's user (reads the outcome)")
    p.set_defaults(func=cmd_boot_config)

    p = sub.add_parser("lookup", parents=[common], help="find a number in the overlay")
    p.add_argument("number", type=_number_arg)
    p.set_defaults(func=cmd_lookup)

    p = sub.add_parser("dial", parents=[common], help="call a number (over a secure session)")
    p.add_argument(
        "number",
        type=_target_arg,
        nargs="?",
        default="",
        help="12-digit number, LAN extension or *N (speed dial); none: the hotline",
    )
    p.add_argument("--key", help="choose the key when several phones share NUMBER")
    p.add_argument(
        "--intercom",
        action="store_true",
        help="ask for auto-answer (only a phone that marked us auto-answer does so)",
    )
    p.set_defaults(func=cmd_dial)
    p = sub.add_parser("redial", parents=[common], help="dial again what was dialled last")
    p.set_defaults(func=cmd_dial)
    for name, text in (
        ("answer", "answer the ringing call (a call that talks goes on hold)"),
        ("hangup", "hang up, cancel a call being placed, or decline a ringing one"),
        ("reject", "decline the ringing call"),
        ("dtmf", "send DTMF digits in the call (as events, not audio)"),
        ("hold", "put the talking call on hold"),
        ("resume", "take a held call off hold (the talking one goes on hold)"),
    ):
        p = sub.add_parser(name, parents=[common], help=text)
        if name == "dtmf":
            p.add_argument("digits", help="0-9, *, #, A-D")
        p.add_argument("--call-id", dest="call_id", help="which call (default: the live one)")
        p.set_defaults(func=cmd_call_action)

    p = sub.add_parser("swap", parents=[common], help="talk to the held call, hold the other")
    p.set_defaults(func=cmd_swap)
    for name, text in (("mute", "cut the microphone in calls"), ("dnd", "do not disturb")):
        p = sub.add_parser(name, parents=[common], help=f"{text}: on or off")
        p.add_argument("state", choices=("on", "off"))
        p.set_defaults(func=cmd_switch)
    p = sub.add_parser(
        "transfer", parents=[common], help="hand the call to NUMBER (blind, or --attended)"
    )
    p.add_argument("number", type=_target_arg)
    p.add_argument(
        "--attended",
        action="store_true",
        help="talk to NUMBER first (dialled if needed), then hand the held call over",
    )
    p.add_argument("--call-id", dest="call_id", help="which call (default: the talking one)")
    p.set_defaults(func=cmd_transfer)
    p = sub.add_parser(
        "conference", parents=[common], help="dial NUMBERs, then mix every call into one"
    )
    p.add_argument("numbers", nargs="*", type=_target_arg)
    p.set_defaults(func=cmd_conference)
    fwd = sub.add_parser("forward", help="call forwarding").add_subparsers(
        dest="forward_command", required=True, metavar="ACTION"
    )
    p = fwd.add_parser("set", parents=[common], help="forward calls: MODE NUMBER")
    p.add_argument("mode", choices=("always", "busy", "no-answer", "offline"))
    p.add_argument("number", type=_number_arg)
    p.add_argument("--after", type=float, help="no-answer: seconds of ringing first (5-300)")
    p.set_defaults(func=cmd_forward)
    p = fwd.add_parser("clear", parents=[common], help="stop forwarding (one MODE, or all)")
    p.add_argument("mode", nargs="?", choices=("always", "busy", "no-answer", "offline"))
    p.set_defaults(func=cmd_forward)
    con = sub.add_parser("contacts", help="names, speed dial, verified keys").add_subparsers(
        dest="contacts_command", required=True, metavar="ACTION"
    )
    p = con.add_parser("add", parents=[common], help="add a contact: NUMBER NAME")
    p.add_argument("number", type=_number_arg)
    p.add_argument("name")
    p.add_argument("--key", help="pin this public key for the number now")
    p.add_argument("--speed-dial", dest="speed_dial", type=int, help="slot 1-99 (dial *N)")
    p.add_argument(
        "--auto-answer", dest="auto_answer", action="store_true", help="answer its intercom calls"
    )
    p.add_argument("--replace", action="store_true", help="change an existing contact")
    p.set_defaults(func=cmd_contacts)
    p = con.add_parser("list", parents=[common], help="list contacts")
    p.set_defaults(func=cmd_contacts)
    p = con.add_parser("rm", parents=[common], help="remove a contact")
    p.add_argument("number", type=_number_arg)
    p.set_defaults(func=cmd_contacts)
    p = con.add_parser(
        "verify", parents=[common], help="the SAS of the last call with NUMBER matched: trust it"
    )
    p.add_argument("number", type=_number_arg)
    p.set_defaults(func=cmd_contacts)
    p = sub.add_parser("history", parents=[common], help="calls made and received")
    p.add_argument("--missed", action="store_true", help="missed calls only")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("status", parents=[common], help="show a running phone's status")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser(
        "events", parents=[common], help="follow the phone's events (calls, messages, network)"
    )
    p.set_defaults(func=cmd_events)

    peer = sub.add_parser("peer", help="manually known peers").add_subparsers(
        dest="peer_command", required=True, metavar="ACTION"
    )
    p = peer.add_parser("add", parents=[common], help="add a peer: NUMBER PUBKEY HOST:PORT")
    p.add_argument("number", type=_number_arg)
    p.add_argument("public_key")
    p.add_argument("address", help="HOST:PORT or [IPv6]:PORT")
    p.set_defaults(func=cmd_peer_add)
    p = peer.add_parser("list", parents=[common], help="list known peers")
    p.set_defaults(func=cmd_peer_list)

    p = sub.add_parser("lan", parents=[common], help="phones on this LAN and their extensions")
    p.set_defaults(func=cmd_lan)

    msg = sub.add_parser("msg", help="text messages").add_subparsers(
        dest="msg_command", required=True, metavar="ACTION"
    )
    p = msg.add_parser("send", parents=[common], help="send a text message: NUMBER TEXT")
    p.add_argument("number", type=_target_arg, help="12-digit number or LAN extension")
    p.add_argument("text")
    p.add_argument("--key", help="choose the key when several phones share NUMBER")
    p.add_argument(
        "--wait", type=float, default=10.0, help="seconds to wait for delivery (0: return at once)"
    )
    p.set_defaults(func=cmd_msg_send)
    p = msg.add_parser("list", parents=[common], help="list messages")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_msg_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"peerline: configuration error:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"peerline: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except NotRunning as exc:
        print(f"peerline: {exc}", file=sys.stderr)
        return EXIT_NOT_RUNNING
    except ControlError as exc:
        print(f"peerline: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except TimeoutError:
        print("peerline: the phone did not answer in time; it may still finish", file=sys.stderr)
        return EXIT_FAILED
    except _Fail as exc:
        print(f"peerline: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
