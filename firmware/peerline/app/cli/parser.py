"""The ``peerline`` command line: every command, option, default and example in one tree.

``--help``, the man page (``scripts/manpage`` -> ``docs/peerline.1``) and shell completion
(``peerline completion bash``) are all drawn from this tree, so they cannot disagree. Values the
phone would refuse are checked here with the control API's own checks (``app/arguments.py``):
a usage error (exit 2) before any phone is asked. Global options go before or after the
command. Light on purpose: handlers import what they need when they run.
"""

import argparse
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from peerline import __version__
from peerline.app import arguments

from . import dialing, local, remote
from .exits import EXIT_CODES
from .output import Output

T = TypeVar("T")

LOG_LEVELS = ("debug", "info", "warning", "error")
HARDWARE_KINDS = ("auto", "pi", "emulator", "none")
FORWARD_MODES = ("always", "busy", "no-answer", "offline")
DIRECTORY = {"bash": "_shtab_compgen_dirs", "zsh": "_files -/", "tcsh": "d"}
"""shtab's completion of a directory (its ``shtab.DIRECTORY``), without importing shtab."""
FILE = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}

DATA_HELP = (
    "the phone's data directory (default: $PEERLINE_DATA, else $XDG_DATA_HOME/peerline,"
    " else ~/.local/share/peerline)"
)


def default_data_dir() -> Path:
    env = os.environ.get("PEERLINE_DATA")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "peerline"


def checked(check: Callable[[str], T], name: str) -> Callable[[str], T]:
    """An argparse type from one of ``arguments``' checks: its sentence is the usage error."""

    def parse(text: str) -> T:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name
    return parse


NUMBER = checked(arguments.number, "number")
TARGET = checked(arguments.target, "target")
KEY = checked(arguments.public_key_text, "key")


def _global_options(*, top: bool) -> argparse.ArgumentParser:
    """The options every command takes. On the top parser they carry the defaults; on each
    command they are SUPPRESSed, so ``peerline --json status`` and ``peerline status --json``
    mean the same and neither clears the other."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options (before or after the command)")

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    data = group.add_argument(
        "--data", type=Path, metavar="DIR", default=default(None), help=DATA_HELP
    )
    data.complete = DIRECTORY  # type: ignore[attr-defined]
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the result as JSON (the control API's own), for scripts",
    )
    group.add_argument(
        "-v",
        "--verbose",
        dest="log_level",
        action="store_const",
        const="debug",
        default=default(None),
        help="say more: --log-level debug",
    )
    group.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=default(None),
        help="how much to log (run: overrides log.level; other commands: debug shows each"
        " request to the phone and its answer)",
    )
    return parent


class _Tree:
    """Adds commands with their help, examples and handler in one call each."""

    def __init__(self, sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
        self.sub = sub
        self.parent = _global_options(top=False)

    def add(
        self,
        name: str,
        summary: str,
        examples: list[str],
        handler: Callable[[argparse.Namespace, Output], int] | None,
        *,
        description: str = "",
    ) -> argparse.ArgumentParser:
        epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples) if examples else None
        p = self.sub.add_parser(
            name,
            parents=[self.parent],
            help=summary,
            description=description or summary[0].upper() + summary[1:] + ".",
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if handler is not None:
            p.set_defaults(func=handler)
        return p

    def group(self, name: str, summary: str, dest: str) -> "_Tree":
        p = self.add(name, summary, [], None)
        return _Tree(p.add_subparsers(dest=dest, required=True, metavar="ACTION"))


def build_parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code:<3} {text}" for code, text in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="peerline",
        description="Peerline: a serverless, end-to-end encrypted desk phone. `peerline run`"
        " runs the phone; the other commands talk to the one running on --data.",
        epilog="examples:\n"
        "  peerline run                      # the phone, with the handset it finds\n"
        "  peerline status                   # how the running phone is doing\n"
        "  peerline dial 4821 5590 1736      # call a number\n"
        "  peerline COMMAND --help           # each command, with examples\n\n"
        f"exit codes:\n{codes}\n\n"
        "Options that every command takes (--data, --json, -v, --log-level) go before or after"
        " the command. See peerline(1) and docs/control-api.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"peerline {__version__}")
    tree = _Tree(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    _setup_commands(tree)
    _call_commands(tree)
    _directory_commands(tree)
    return parser


def _setup_commands(tree: _Tree) -> None:
    tree.add(
        "init",
        "create a phone identity and a peerline.toml in --data (run does it too)",
        ["peerline init --data /tmp/alice", "peerline init --json"],
        local.cmd_init,
    )
    tree.add("id", "print this phone's number and public key", ["peerline id --json"], local.cmd_id)
    p = tree.add(
        "run",
        "run the phone",
        [
            "peerline run                                   # the handset it finds",
            "peerline run --hw none --audio file:in.wav,out.wav",
            "peerline run --data /tmp/a --port 4801 --bind 127.0.0.1 --no-lan --hw none",
            "peerline run --data /tmp/b --port 4802 --bind 127.0.0.1 --no-lan --hw none"
            " --seed 127.0.0.1:4801",
        ],
        local.cmd_run,
        description="Run the phone until Ctrl-C or SIGTERM (SIGHUP reloads peerline.toml). It"
        " prints its number, addresses and control socket, then `ready` (one JSON object with"
        " --json). On first start it creates its identity in --data.",
    )
    p.add_argument(
        "--port",
        type=checked(arguments.listen_port, "port"),
        help="UDP port for everything (0 = any free port; default: network.port, 4720)",
    )
    p.add_argument(
        "--hw",
        choices=HARDWARE_KINDS,
        help="the handset: pi (GPIO keypad, hook, LEDs, I2C display), emulator (drawn in this"
        " terminal), none (headless), auto (default: pi on a Raspberry Pi, else the emulator"
        " in a terminal, else none)",
    )
    p.add_argument(
        "--pinmap", metavar="NAME|PATH", help="with --hw pi: the pin map (hw/pinmaps/NAME.toml)"
    )
    p.add_argument(
        "--audio",
        metavar="SPEC",
        help="alsa:DEVICE (e.g. alsa:default), file:IN.wav,OUT.wav (16 kHz mono; IN plays"
        " from its start in every call, OUT holds the last call), null, or auto (default:"
        " alsa:default with a handset, else null)",
    )
    config = p.add_argument(
        "--config", type=Path, metavar="FILE", help="config file (default: DIR/peerline.toml)"
    )
    config.complete = FILE  # type: ignore[attr-defined]
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
        type=checked(arguments.host, "address"),
        help="listen on this one IP address only; 127.0.0.1 keeps a demo on this machine (no"
        " port-mapping request, nothing sent off it)",
    )
    p.add_argument(
        "--no-port-mapping",
        action="store_true",
        help="never ask the router for a port forward (nat.port_mapping = false)",
    )

    p = tree.add(
        "boot-config",
        "import a peerline.toml left on the boot partition (run at boot, as root)",
        ["peerline boot-config --data /var/lib/peerline --owner peerline"],
        local.cmd_boot_config,
    )
    p.add_argument(
        "--boot",
        type=Path,
        default=Path("/boot/firmware"),
        help="boot partition (default: %(default)s)",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=Path("/etc/peerline/peerline.toml"),
        help="the phone's configuration, merged into (default: %(default)s)",
    )
    p.add_argument("--wifi-conf", type=Path, help="wpa_supplicant file for a [wifi] table")
    p.add_argument("--owner", metavar="USER", help="the phone's user (reads the outcome)")

    p = tree.add(
        "completion",
        "print a shell completion script",
        [
            'eval "$(peerline completion bash)"              # this shell',
            "peerline completion bash > ~/.local/share/bash-completion/completions/peerline",
        ],
        local.cmd_completion,
    )
    p.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete in")


def _call_id_option(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--call-id",
        dest="call_id",
        metavar="ID",
        type=checked(arguments.call_id_text, "call id"),
        help=f"which call, by the id status --json shows (default: {default})",
    )


def _until_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--until",
        choices=("ringing", "answered"),
        default="ringing",
        help="follow the call until it rings (the default) or is answered",
    )


def _call_commands(tree: _Tree) -> None:
    p = tree.add(
        "dial",
        "call a number, and follow the call until it rings, is answered or fails",
        [
            "peerline dial 4821 5590 1736",
            "peerline dial 201                # a LAN extension",
            "peerline dial '*3'               # speed-dial slot 3",
            "peerline dial                    # the hotline (hardware.hotline)",
            "peerline dial 482155901736 --json",
        ],
        dialing.cmd_dial,
        description="Call a number, a LAN extension or a speed-dial slot, and follow the call:"
        " progress on stderr while it is looked up and placed, then the outcome. Exit 0 once"
        " it rings or is answered, 1 if it fails; Ctrl-C cancels it (exit 130).",
    )
    p.add_argument(
        "number",
        type=TARGET,
        nargs="?",
        default="",
        help="12-digit number (spaces and dashes allowed), LAN extension (3-4 digits) or *N"
        " (speed dial); none: the hotline",
    )
    p.add_argument(
        "--key",
        type=KEY,
        help="choose the key when several phones share NUMBER (lookup shows them)",
    )
    p.add_argument(
        "--intercom",
        action="store_true",
        help="ask for auto-answer (only a phone that marked us auto-answer does so)",
    )
    _until_option(p)
    p = tree.add(
        "redial",
        "dial again what was dialled last",
        ["peerline redial"],
        dialing.cmd_dial,
    )
    _until_option(p)
    for name, summary, default in (
        ("answer", "answer the ringing call (a call that talks goes on hold)", "the one ringing"),
        ("hangup", "hang up, cancel a call being placed, or decline a ringing one", "the live one"),
        ("reject", "decline the ringing call", "the one ringing"),
        ("hold", "put the talking call on hold", "the talking one"),
        ("resume", "take a held call off hold (the talking one goes on hold)", "the held one"),
    ):
        examples = [f"peerline {name}", f"peerline {name} --call-id 1f2e3d4c5b6a7980"]
        p = tree.add(name, summary, examples, remote.cmd_call_action)
        _call_id_option(p, default)
    p = tree.add(
        "dtmf",
        "send DTMF digits in the call (as events, not audio)",
        ["peerline dtmf 1234#"],
        remote.cmd_call_action,
    )
    p.add_argument(
        "digits", type=checked(arguments.dtmf_digits, "digits"), help="1-32 of 0-9, *, #, A-D"
    )
    _call_id_option(p, "the talking one")
    tree.add(
        "swap",
        "talk to the held call, hold the other",
        ["peerline swap"],
        remote.cmd_swap,
    )
    for name, summary in (("mute", "cut the microphone in calls"), ("dnd", "do not disturb")):
        p = tree.add(name, f"{summary}: on or off", [f"peerline {name} on"], remote.cmd_switch)
        p.add_argument("state", choices=("on", "off"), help="on or off")
    p = tree.add(
        "transfer",
        "hand the call to NUMBER (blind, or --attended)",
        ["peerline transfer 4821 5590 1736", "peerline transfer 201 --attended"],
        remote.cmd_transfer,
    )
    p.add_argument("number", type=TARGET, help="where the call goes: number, extension or *N")
    p.add_argument(
        "--attended",
        action="store_true",
        help="talk to NUMBER first (dialled if needed), then hand the held call over",
    )
    _call_id_option(p, "the talking one")
    p = tree.add(
        "conference",
        "dial NUMBERs, then mix every call into one this phone hosts",
        [
            "peerline conference                  # the calls that are up",
            "peerline conference 201 202",
        ],
        remote.cmd_conference,
    )
    p.add_argument("numbers", nargs="*", type=TARGET, help="numbers to dial and add (at most 8)")

    fwd = tree.group("forward", "call forwarding", "forward_command")
    p = fwd.add(
        "set",
        "forward calls: MODE NUMBER",
        [
            "peerline forward set always 4821 5590 1736",
            "peerline forward set no-answer 201 --after 15",
        ],
        remote.cmd_forward,
    )
    p.add_argument("mode", choices=FORWARD_MODES, help="when: " + ", ".join(FORWARD_MODES))
    p.add_argument("number", type=NUMBER, help="where to (a 12-digit number)")
    p.add_argument(
        "--after",
        type=float,
        metavar="SECONDS",
        help="no-answer: seconds of ringing first (5-300; default 20)",
    )
    p = fwd.add(
        "clear",
        "stop forwarding (one MODE, or all)",
        ["peerline forward clear"],
        remote.cmd_forward,
    )
    p.add_argument("mode", nargs="?", choices=FORWARD_MODES, help="which (default: all)")


def _directory_commands(tree: _Tree) -> None:
    con = tree.group("contacts", "names, speed dial, verified keys", "contacts_command")
    p = con.add(
        "add",
        "add a contact: NUMBER NAME",
        [
            "peerline contacts add 4821 5590 1736 Alice --speed-dial 3",
            "peerline contacts add 482155901736 Bob --replace --auto-answer",
        ],
        remote.cmd_contacts,
    )
    p.add_argument("number", type=NUMBER, help="the contact's 12-digit number")
    p.add_argument("name", help="the name shown for it (1-32 characters)")
    p.add_argument(
        "--key",
        type=KEY,
        help="pin this public key for the number now",
    )
    p.add_argument(
        "--speed-dial", dest="speed_dial", type=int, metavar="N", help="slot 1-99 (dial *N)"
    )
    p.add_argument(
        "--auto-answer", dest="auto_answer", action="store_true", help="answer its intercom calls"
    )
    p.add_argument("--replace", action="store_true", help="change an existing contact")
    con.add("list", "list contacts", ["peerline contacts list --json"], remote.cmd_contacts)
    p = con.add(
        "rm", "remove a contact", ["peerline contacts rm 482155901736"], remote.cmd_contacts
    )
    p.add_argument("number", type=NUMBER, help="the contact's number")
    p = con.add(
        "verify",
        "the SAS of the last call with NUMBER matched: trust its key",
        ["peerline contacts verify 482155901736"],
        remote.cmd_contacts,
    )
    p.add_argument("number", type=NUMBER, help="the contact's number")

    p = tree.add(
        "history",
        "calls made and received, newest first",
        ["peerline history", "peerline history --missed --limit 10", "peerline history --json"],
        remote.cmd_history,
    )
    p.add_argument("--missed", action="store_true", help="missed calls only")
    p.add_argument(
        "--limit",
        type=checked(arguments.history_limit, "limit"),
        default=50,
        help="at most this many (1-1000; default: %(default)s)",
    )
    tree.add(
        "status",
        "show how the running phone is doing",
        ["peerline status", "peerline status --json"],
        remote.cmd_status,
    )
    tree.add(
        "events",
        "follow the phone's events (calls, messages, network) until Ctrl-C",
        ["peerline events", "peerline events --json | jq ."],
        remote.cmd_events,
    )
    p = tree.add(
        "lookup",
        "find a number in the overlay and show its signed, verified records",
        ["peerline lookup 4821 5590 1736"],
        remote.cmd_lookup,
    )
    p.add_argument("number", type=NUMBER, help="the 12-digit number")

    peer = tree.group("peer", "phones known by hand", "peer_command")
    p = peer.add(
        "add",
        "add a peer: NUMBER PUBKEY HOST:PORT",
        ["peerline peer add 482155901736 KEY 127.0.0.1:4802   # KEY: what peerline id prints"],
        remote.cmd_peer_add,
    )
    p.add_argument("number", type=NUMBER, help="its 12-digit number")
    p.add_argument(
        "public_key",
        type=KEY,
        help="its public key (64 hex digits)",
    )
    p.add_argument(
        "address",
        type=checked(arguments.host_port, "address"),
        help="HOST:PORT or [IPV6]:PORT (an IP address)",
    )
    peer.add("list", "list peers known by hand", ["peerline peer list"], remote.cmd_peer_list)
    tree.add("lan", "phones on this LAN and their extensions", ["peerline lan"], remote.cmd_lan)

    msg = tree.group("msg", "text messages", "msg_command")
    p = msg.add(
        "send",
        "send a text message: NUMBER TEXT",
        ['peerline msg send 4821 5590 1736 "back at 3"', 'peerline msg send 201 "lunch?" --wait 0'],
        remote.cmd_msg_send,
    )
    p.add_argument("number", type=TARGET, help="12-digit number, LAN extension or *N")
    p.add_argument(
        "text", type=checked(arguments.message_text, "text"), help="the message (1-1000 bytes)"
    )
    p.add_argument(
        "--key",
        type=KEY,
        help="choose the key when several phones share NUMBER",
    )
    p.add_argument(
        "--wait",
        type=checked(arguments.wait_seconds, "seconds"),
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for delivery (0-120; 0: return at once; default: %(default)g)",
    )
    p = msg.add(
        "list", "list messages, newest first", ["peerline msg list --limit 20"], remote.cmd_msg_list
    )
    p.add_argument(
        "--limit",
        type=checked(arguments.message_limit, "limit"),
        default=100,
        help="at most this many (1-10000; default: %(default)s)",
    )


def commands(
    parser: argparse.ArgumentParser, path: str = "peerline"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command that runs something (``peerline msg send``, ...) with its parser, in the
    order ``--help`` lists them: for the man page's examples and the tests."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, f"{path} {name}")
            return
    yield path, parser


def examples(parser: argparse.ArgumentParser) -> list[str]:
    """The example lines of one command's help."""
    epilog = parser.epilog or ""
    if not epilog.startswith("examples:"):
        return []
    return [line.strip() for line in epilog.splitlines()[1:] if line.startswith("  ")]


def parse(argv: list[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.data is None:
        args.data = default_data_dir()
    return args
