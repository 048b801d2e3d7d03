"""Commands that work on this machine without a running phone: ``init``, ``id``, ``run``,
``boot-config`` and ``completion``.

Everything heavy (the crypto, the daemon, asyncio) is imported inside the command that needs
it, so that ``peerline status`` never pays for it.
"""

import argparse
import errno
import os
import socket
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from peerline.app.paths import Paths
from peerline.app.texts import address

from .exits import FAILED, USAGE, Fail
from .output import Output

if TYPE_CHECKING:
    from peerline.app.daemon import Phone
    from peerline.store.config import Config


def prepare_data_dir(data: Path) -> None:
    """The data directory exists (made 0700 if new) and this user can write it; else a usage
    error that says what is wrong with it, before anything is created."""
    if data.exists() and not data.is_dir():
        raise Fail(USAGE, f"--data {data}: this is a file; the data directory must be a directory")
    try:
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
    except PermissionError:
        raise Fail(
            USAGE, f"--data {data}: cannot create it (permission denied); choose one you can write"
        ) from None
    except OSError as exc:
        raise Fail(USAGE, f"--data {data}: cannot create it ({exc.strerror})") from None
    if not os.access(data, os.R_OK | os.W_OK | os.X_OK):
        raise Fail(USAGE, f"--data {data}: this user cannot write there; choose another --data")


def cmd_init(args: argparse.Namespace, out: Output) -> int:
    from peerline.adapters.rng import OsRng  # noqa: PLC0415
    from peerline.proto.identity import Identity, derive_number, format_number  # noqa: PLC0415
    from peerline.store.config import DEFAULT_CONFIG_TEXT  # noqa: PLC0415
    from peerline.store.keyfile import write_identity  # noqa: PLC0415

    data: Path = args.data
    prepare_data_dir(data)
    identity = Identity.generate(OsRng())
    write_identity(Paths(data).key_file, identity)  # refuses to overwrite
    config_path = Paths(data).config_file
    if not config_path.exists():
        config_path.write_text(DEFAULT_CONFIG_TEXT)
        config_path.chmod(0o600)
    out.progress("deriving this phone's number (argon2id: under a second, or two on a Pi)…")
    number = derive_number(identity.public_key)
    out.result(
        {"number": number, "public_key": identity.public_key.hex(), "data": str(data)},
        f"New phone in {data}\n  number {format_number(number)}\n"
        f"  key    {identity.public_key.hex()}\n"
        f"  config {config_path} (every key with its default; `peerline run` starts it)",
    )
    return 0


def cmd_id(args: argparse.Namespace, out: Output) -> int:
    from peerline.proto.identity import derive_number, format_number  # noqa: PLC0415
    from peerline.store.keyfile import read_identity  # noqa: PLC0415

    identity = read_identity(Paths(args.data).key_file)
    number = derive_number(identity.public_key)
    out.result(
        {"number": number, "public_key": identity.public_key.hex()},
        f"{format_number(number)}  {identity.public_key.hex()}",
    )
    return 0


def load_run_config(args: argparse.Namespace) -> "Config":
    """``peerline.toml`` (or ``--config``) with the command line's options over it."""
    from peerline.errors import ConfigError  # noqa: PLC0415
    from peerline.store.config import load_config  # noqa: PLC0415

    path = args.config or Paths(args.data).config_file
    if args.config is not None and not args.config.is_file():
        raise ConfigError(f"--config {args.config}: no such file")
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
    if args.no_port_mapping:
        overrides["nat.port_mapping"] = False
    if args.log_level is not None:
        overrides["log.level"] = args.log_level
    if args.bind is not None:
        v6 = ":" in args.bind
        overrides["network.bind4"] = "" if v6 else args.bind
        overrides["network.bind6"] = args.bind if v6 else ""
    if overrides:
        config = config.override(overrides, source="command line")
    return config


def probe_port(config: "Config") -> None:
    """Fail now, before an identity or a database is made, if the phone cannot have its port:
    with the port, the address and what to do about it."""
    net = config.network
    host = net.bind4 or net.bind6
    if not host or net.port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((host, net.port))
        except OSError as exc:
            raise bind_failure(exc, host, net.port) from None


def bind_failure(exc: OSError, host: str, port: int) -> Fail:
    """Why the phone cannot listen where it was told to, for people."""
    where = address(host, port)
    if exc.errno == errno.EADDRINUSE:
        return Fail(
            FAILED,
            f"UDP port {port} is in use on {where} (another phone or program has it): stop it,"
            " or choose another port with --port N (--port 0: any free port)",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return Fail(USAGE, f"cannot listen on {host}: not an address of this machine (--bind)")
    if exc.errno == errno.EACCES:
        return Fail(USAGE, f"UDP port {port} needs privileges on {where}: use a port above 1023")
    return Fail(FAILED, f"cannot listen on {where}: {exc.strerror or exc}")


def cmd_run(args: argparse.Namespace, out: Output) -> int:
    import asyncio  # noqa: PLC0415

    from peerline.adapters.rng import OsRng  # noqa: PLC0415
    from peerline.app.daemon import Phone  # noqa: PLC0415
    from peerline.app.hardware import open_hardware, resolve_kind  # noqa: PLC0415
    from peerline.app.service import serve  # noqa: PLC0415
    from peerline.proto.identity import Identity  # noqa: PLC0415
    from peerline.runtime.audio import check_audio  # noqa: PLC0415
    from peerline.runtime.notify import ServiceNotifier  # noqa: PLC0415
    from peerline.store.db import Database  # noqa: PLC0415
    from peerline.store.keyfile import read_identity, write_identity  # noqa: PLC0415

    data: Path = args.data
    prepare_data_dir(data)
    config = load_run_config(args)
    where = "--hw" if args.hw is not None else str(args.config or Paths(data).config_file)
    kind = resolve_kind(config.hardware.kind, stdin=sys.stdin, stdout=sys.stdout, where=where)
    config = config.override({"hardware.kind": kind}, source="hardware.kind = auto")
    setup_logging(config, data, emulator=kind == "emulator")
    if config.audio.backend != "auto":
        check_audio(config.audio.backend)
    probe_port(config)

    def reload() -> "Config":
        """SIGHUP: the same file and command line again (the handset stays as opened)."""
        return load_run_config(args).override({"hardware.kind": kind}, source="reload")

    lock = _lock_data_dir(data)  # held until the process exits
    key_path = Paths(data).key_file
    if not key_path.exists():
        if kind != "emulator":
            out.progress("first start: creating this phone's identity and number…")
        write_identity(key_path, Identity.generate(OsRng()))
        import logging  # noqa: PLC0415

        logging.getLogger("peerline").info("first start: created a new identity in %s", key_path)
    identity = read_identity(key_path)
    paths = Paths(data)
    hardware = open_hardware(config)
    with Database.open(paths.database) as db:
        phone = Phone(paths=paths, config=config, identity=identity, db=db, hardware=hardware)

        def ready(p: Phone) -> None:
            _print_ready(p, out, emulator=kind == "emulator")

        try:
            notifier = ServiceNotifier.from_environ()
            asyncio.run(serve(phone, on_ready=ready, reload=reload, notifier=notifier))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
                raise bind_failure(
                    exc, config.network.bind4 or config.network.bind6, config.network.port
                ) from None
            raise Fail(FAILED, f"cannot start the phone: {exc}") from None
    lock.close()
    return 0


def _print_ready(phone: "Phone", out: Output, *, emulator: bool) -> None:
    import logging  # noqa: PLC0415

    from peerline import __version__  # noqa: PLC0415

    st = phone.status()
    if emulator:  # the number is on the screen; the rest is in the log
        logging.getLogger("peerline").info("ready: %s", st["number_display"])
        return
    listen = [address(h, port) for h, port in st["listen"]]
    audio = (st.get("audio") or {}).get("spec") or "none"
    out.result(
        {
            "version": __version__,
            "number": st["number"],
            "public_key": st["public_key"],
            "listen": listen,
            "control": str(phone.paths.control_socket),
            "audio": audio,
            "peers": st["peers"],
            "ready": True,
        },
        f"Peerline {__version__}\n"
        f"  number   {st['number_display']}\n"
        f"  key      {st['public_key']}\n"
        f"  listen   udp {', '.join(listen)}\n"
        f"  control  {phone.paths.control_socket}\n"
        f"  audio    {audio}\n"
        f"  peers    {st['peers']} known\n"
        f"ready",
    )


def setup_logging(config: "Config", data: Path, *, emulator: bool) -> None:
    """The log: to the journal with priorities and no time of its own under systemd; to a
    file beside the phone's data in the emulator (the terminal is its screen); else stderr."""
    import logging  # noqa: PLC0415

    from peerline.runtime.notify import JournalFormatter, journal_stream  # noqa: PLC0415

    handler: logging.Handler
    if emulator:
        handler = logging.FileHandler(Paths(data).emulator_log)
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
    import fcntl  # noqa: PLC0415

    fd = os.open(Paths(data).lock, os.O_RDWR | os.O_CREAT, 0o600)
    f = os.fdopen(fd, "r+b")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise Fail(FAILED, f"another phone is already running on {data}") from None
    return f


def cmd_boot_config(args: argparse.Namespace, out: Output) -> int:
    from peerline.app.bootconfig import import_boot_config  # noqa: PLC0415

    owner = None
    if args.owner:
        import pwd  # noqa: PLC0415

        try:
            entry = pwd.getpwnam(args.owner)
        except KeyError:
            raise Fail(USAGE, f"no such user: {args.owner}") from None
        owner = (entry.pw_uid, entry.pw_gid)
    ok = import_boot_config(
        args.boot, args.config, args.data, args.wifi_conf, say=print, owner=owner
    )
    return 0 if ok else FAILED


def cmd_completion(args: argparse.Namespace, out: Output) -> int:
    """The completion script, drawn by shtab from the same parser as ``--help``."""
    import shtab  # noqa: PLC0415

    from .parser import build_parser  # noqa: PLC0415

    script: Any = shtab.complete(build_parser(), shell=args.shell)
    print(script)
    return 0
