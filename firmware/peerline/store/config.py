"""The phone's settings: a TOML file, checked strictly, as a frozen tree of dataclasses.

A phone that starts with a mistyped setting does something its owner did not ask for, so every
problem is an error that names the file, the dotted key and what is wrong::

    peerline.toml: network.port: must be an integer 0..65535, got "abc"

All problems in a file are reported at once, one per line. Nothing half-valid is ever returned:
the section dataclasses check themselves when built, so an invalid ``Config`` cannot exist.
Command-line options go through ``Config.override``, which checks them the same way.
"""

import dataclasses
import ipaddress
import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from peerline.errors import ConfigError
from peerline.proto.identity.number import NUMBER_DIGITS
from peerline.proto.media.tones import TONE_PLANS

__all__ = [
    "CONFIG_FILE_NAME",
    "DEFAULT_CONFIG_TEXT",
    "AudioConfig",
    "AudioKind",
    "Config",
    "HardwareConfig",
    "HardwareKind",
    "LogConfig",
    "LogLevel",
    "NatSettings",
    "NetworkConfig",
    "OverlayRole",
    "OverlaySettings",
    "Seed",
    "parse_seed",
    "PhoneConfig",
    "load_config",
    "config_from_tree",
    "parse_toml",
]

CONFIG_FILE_NAME = "peerline.toml"
"""The file's name inside the data directory."""

HardwareKind = Literal["auto", "none", "emulator", "pi"]
OverlayRole = Literal["auto", "supernode", "client"]
LogLevel = Literal["debug", "info", "warning", "error"]

_MAX_FILE_BYTES = 1 << 20
"""A real config is a few hundred bytes; a bigger file is a mistake, not something to parse."""
_NAME_MAX = 32
_MAX_SEEDS = 32


class _Bad(Exception):
    """A value failed its check; the message is the problem, without file or key."""


_Check = Callable[[object], object]
"""Returns the value, normalised (an int where a float is wanted becomes a float), or raises."""


# -- describing what was found -----------------------------------------------------------------
def _show(value: object) -> str:
    """A value as the user wrote it in TOML, short and with control characters escaped."""
    if isinstance(value, str):
        # JSON escapes the C0 controls; the rest that cannot be shown as is (C1 controls,
        # U+2028, ...) would break a message into lines, or hide in it.
        text = "".join(
            c if c.isprintable() else f"\\u{ord(c):04x}"
            for c in json.dumps(value, ensure_ascii=False)
        )
        return text if len(text) <= 40 else text[:36] + '..."'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"  # TOML dates and times


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(*parts: str) -> str:
    """A dotted key as TOML would spell it, quoting parts that are not bare keys."""
    return ".".join(p if _BARE_KEY.fullmatch(p) else json.dumps(p) for p in parts)


# -- checks ------------------------------------------------------------------------------------
def _integer(lo: int, hi: int) -> _Check:
    def check(value: object) -> object:
        if type(value) is not int or not lo <= value <= hi:
            raise _Bad(f"must be an integer {lo}..{hi}, got {_show(value)}")
        return value

    return check


def _number(lo: float, hi: float) -> _Check:
    def check(value: object) -> object:
        # bool is an int subclass, and true is not a duration; nan and inf fail the range.
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise _Bad(f"must be a number {lo:g}..{hi:g}, got {_show(value)}")
        return float(value)

    return check


def _choice(options: tuple[str, ...]) -> _Check:
    def check(value: object) -> object:
        if not (isinstance(value, str) and value in options):
            listed = ", ".join(json.dumps(o) for o in options)
            raise _Bad(f"must be one of {listed}, got {_show(value)}")
        return value

    return check


def _address(version: Literal[4, 6]) -> _Check:
    parse = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address

    def check(value: object) -> object:
        if not isinstance(value, str):
            raise _Bad(f'must be an IPv{version} address or "" to disable, got {_show(value)}')
        if value:
            try:
                parse(value)
            except ValueError:
                raise _Bad(
                    f'must be an IPv{version} address or "" to disable, got {_show(value)}'
                ) from None
        return value

    return check


def _phone_name(value: object) -> object:
    if not isinstance(value, str) or not 1 <= len(value) <= _NAME_MAX or not value.isprintable():
        raise _Bad(f"must be 1..{_NAME_MAX} printable characters, got {_show(value)}")
    return value


def _boolean(value: object) -> object:
    if not isinstance(value, bool):
        raise _Bad(f"must be true or false, got {_show(value)}")
    return value


@dataclass(frozen=True, slots=True)
class Seed:
    """An overlay node to join through: its address, and its Ed25519 key when known."""

    host: str
    port: int
    public_key: bytes | None = None


def parse_seed(text: str) -> Seed:
    """``HOST:PORT``, ``[IPV6]:PORT`` or ``KEYHEX@HOST:PORT`` (HOST an IP literal).

    Raises ValueError naming the problem.
    """
    key: bytes | None = None
    if "@" in text:
        key_hex, _, text = text.partition("@")
        try:
            key = bytes.fromhex(key_hex)
        except ValueError:
            raise ValueError("the key before @ must be 64 hex digits") from None
        if len(key) != 32:
            raise ValueError("the key before @ must be 64 hex digits")
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError("must end in :PORT with PORT 1..65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if "%" in host:
        raise ValueError("a scoped (link-local) IPv6 address cannot be a seed")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    return Seed(host, int(port_text), key)


def _seeds(value: object) -> object:
    if not isinstance(value, list | tuple) or len(value) > _MAX_SEEDS:
        raise _Bad(f"must be an array of at most {_MAX_SEEDS} strings, got {_show(value)}")
    for item in value:
        if not isinstance(item, str):
            raise _Bad(
                f'each seed is a string "HOST:PORT" or "KEYHEX@HOST:PORT", got {_show(item)}'
            )
        try:
            parse_seed(item)
        except ValueError as exc:
            raise _Bad(f"seed {_show(item)}: {exc}") from None
    return tuple(value)


def _stun_servers(value: object) -> object:
    if not isinstance(value, list | tuple) or len(value) > _MAX_SEEDS:
        raise _Bad(
            f'must be an array of at most {_MAX_SEEDS} "HOST:PORT" strings, got {_show(value)}'
        )
    for item in value:
        if not isinstance(item, str):
            raise _Bad(f'each STUN server is a string "HOST:PORT", got {_show(item)}')
        try:
            seed = parse_seed(item)
        except ValueError as exc:
            raise _Bad(f"STUN server {_show(item)}: {exc}") from None
        if seed.public_key is not None:
            raise _Bad(f"STUN server {_show(item)}: no key: a STUN server is just HOST:PORT")
    return tuple(value)


def _extension(value: object) -> object:
    well_formed = (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and 3 <= len(value) <= 4
        and value[0] != "0"  # a leading 0 is left for dial-out prefixes (docs/lan.md)
    )
    if not (value == "" or well_formed):
        raise _Bad(
            f'must be "" (pick one automatically) or 3 to 4 digits not starting with 0,'
            f" got {_show(value)}"
        )
    return value


GROUP_MODES = ("all", "turn", "page")
"""How a LAN group rings, as written after its extension: ring all, in turn, or a page."""


def _groups(value: object) -> object:
    if not isinstance(value, list | tuple) or len(value) > 8:
        raise _Bad(
            f'must be a list of at most 8 groups such as "700", "701:turn", "800:page",'
            f" got {_show(value)}"
        )
    seen: set[str] = set()
    for item in value:
        ext, _, mode = item.partition(":") if isinstance(item, str) else ("", "", "")
        try:
            _extension(ext)
        except _Bad:
            ext = ""
        if not ext or (mode and mode not in GROUP_MODES) or ext in seen:
            raise _Bad(
                f'each group is "EXT" or "EXT:MODE" (EXT 3 to 4 digits not starting with 0,'
                f" each once; MODE one of {', '.join(GROUP_MODES)}), got {_show(item)}"
            )
        seen.add(ext)
    return tuple(value)


_PINMAP_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
"""A bundled pin map's name: its file name in ``hw/pinmaps/`` without ``.toml``."""
_PATH_MAX = 4096


def _pinmap(value: object) -> object:
    is_name = isinstance(value, str) and _PINMAP_NAME.fullmatch(value) is not None
    is_path = (
        isinstance(value, str)
        and value.startswith("/")
        and value.endswith(".toml")
        and len(value) <= _PATH_MAX
        and value.isprintable()
    )
    if not (is_name or is_path):
        raise _Bad(
            'must be a pin map name such as "desk-4x3" or an absolute path to a .toml file,'
            f" got {_show(value)}"
        )
    return value


def _hotline(value: object) -> object:
    if (
        isinstance(value, str)
        and len(value) == NUMBER_DIGITS
        and value.isascii()
        and value.isdigit()
    ):
        return value
    try:
        return _extension(value)
    except _Bad:
        raise _Bad(
            f'must be "" (no hotline), a {NUMBER_DIGITS}-digit number without spaces, or a LAN'
            f" extension of 3 to 4 digits not starting with 0, got {_show(value)}"
        ) from None


_AUDIO_FORMS = '"auto", "null", "alsa:<device>" or "file:<in.wav>,<out.wav>"'
AudioKind = Literal["auto", "null", "alsa", "file"]


def _audio_backend(value: object) -> object:
    if isinstance(value, str) and value.isprintable() and _parse_audio(value) is not None:
        return value
    raise _Bad(f"must be {_AUDIO_FORMS}, got {_show(value)}")


def _parse_audio(value: str) -> tuple[AudioKind, tuple[str, ...]] | None:
    """("auto", ()), ("null", ()), ("alsa", (device,)) or ("file", (in, out)); None if
    malformed."""
    if value == "auto":
        return ("auto", ())
    if value == "null":
        return ("null", ())
    kind, sep, rest = value.partition(":")
    if not sep or not rest or rest != rest.strip():
        return None
    if kind == "alsa" and not any(c.isspace() for c in rest):
        return ("alsa", (rest,))
    if kind == "file":
        parts = rest.split(",")
        if len(parts) == 2 and all(parts) and all(p == p.strip() for p in parts):
            return ("file", (parts[0], parts[1]))
    return None


# -- the schema --------------------------------------------------------------------------------
_SCHEMA: dict[str, dict[str, _Check]] = {
    "network": {
        "port": _integer(0, 65535),
        "bind4": _address(4),
        "bind6": _address(6),
        "keepalive_s": _number(1, 25),
        "dscp": _integer(0, 63),
        "dscp_media": _integer(0, 63),
    },
    "phone": {"name": _phone_name},
    "hardware": {
        "kind": _choice(get_args(HardwareKind)),
        "pinmap": _pinmap,
        "hotline": _hotline,
    },
    "audio": {"backend": _audio_backend, "tones": _choice(tuple(sorted(TONE_PLANS)))},
    "calls": {"auto_answer": _boolean, "ring_timeout_s": _number(5, 600), "call_waiting": _boolean},
    "log": {"level": _choice(get_args(LogLevel))},
    "nat": {"stun_servers": _stun_servers, "port_mapping": _boolean},
    "overlay": {
        "seeds": _seeds,
        "role": _choice(get_args(OverlayRole)),
        "lan": _boolean,
        "extension": _extension,
        "groups": _groups,
        "group_ring_s": _number(3, 120),
    },
}


def _validate_section(obj: object, section: str) -> None:
    """Check and normalise every field of a section dataclass as it is built."""
    for name, check in _SCHEMA[section].items():
        try:
            value = check(getattr(obj, name))
        except _Bad as exc:
            raise ConfigError(f"{_key(section, name)}: {exc}") from None
        object.__setattr__(obj, name, value)


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkConfig:
    """The one UDP socket (per address family) that carries overlay, signalling and media."""

    SECTION: ClassVar[str] = "network"
    port: int = 4720
    """UDP port; 0 lets the OS pick a free one (for several phones on one machine)."""
    bind4: str = "0.0.0.0"  # noqa: S104 - a phone must be reachable from its LAN
    """IPv4 address to bind, or "" for no IPv4 socket."""
    bind6: str = "::"
    """IPv6 address to bind, or "" for no IPv6 socket."""
    keepalive_s: float = 15.0
    """Seconds between NAT keepalives; many NATs forget idle UDP mappings after 30 s."""
    dscp: int = 34
    """DSCP of signalling and everything else (34 = AF41, RFC 4594); 0 leaves it unmarked."""
    dscp_media: int = 46
    """DSCP of a call's voice packets (46 = EF, RFC 3246), marked packet by packet."""

    def __post_init__(self) -> None:
        _validate_section(self, self.SECTION)
        if not self.bind4 and not self.bind6:
            raise ConfigError(
                f"{_key(self.SECTION)}: bind4 and bind6 are both empty; enable at least one"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneConfig:
    """What the owner sees."""

    SECTION: ClassVar[str] = "phone"
    name: str = "Peerline"
    """Shown on the idle screen and offered to peers."""

    def __post_init__(self) -> None:
        _validate_section(self, self.SECTION)


@dataclass(frozen=True, slots=True, kw_only=True)
class HardwareConfig:
    """Which keypad, hook switch and display to drive (``peerline run --hw``)."""

    SECTION: ClassVar[str] = "hardware"
    kind: HardwareKind = "auto"
    """"pi" for GPIO and I2C, "emulator" for a phone drawn in the terminal, "none" for headless
    use; "auto": pi on a Raspberry Pi, else the emulator in a terminal, else none."""
    pinmap: str = "desk-4x3"
    """Which pins the handset uses (``kind = "pi"``): a pin map bundled in ``hw/pinmaps/``, by
    name, or an absolute path to a .toml file (``peerline.store.pinmap.load_pinmap``)."""
    hotline: str = ""
    """The number (12 digits) or LAN extension that lifting the handset calls at once: a
    hotline or kiosk handset; "" for a dial tone."""

    def __post_init__(self) -> None:
        _validate_section(self, self.SECTION)


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioConfig:
    """Where call audio comes from and goes to (``peerline run --audio``)."""

    SECTION: ClassVar[str] = "audio"
    backend: str = "auto"
    """"null" (silence), "alsa:<device>" or "file:<in.wav>,<out.wav>"; "auto": "alsa:default"
    for a phone with a handset (``hardware.kind`` pi or emulator), else "null"."""
    tones: str = "us"
    """Tone plan for ringback, busy, congestion and the ringer: a region code."""

    def __post_init__(self) -> None:
        _validate_section(self, self.SECTION)

    @property
    def kind(self) -> AudioKind:
        """The backend's kind, so the app can pick an adapter without parsing the string."""
        return self._parsed()[0]

    @property
    def alsa_device(self) -> str | None:
        """The ALSA PCM name for "alsa:<device>", else None."""
        kind, args = self._parsed()
        return args[0] if kind == "alsa" else None

    @property
    def file_paths(self) -> tuple[Path, Path] | None:
        """(input, output) WAV paths for "file:<in.wav>,<out.wav>", else None."""
        kind, args = self._parsed()
        return (Path(args[0]), Path(args[1])) if kind == "file" else None

    def _parsed(self) -> tuple[AudioKind, tuple[str, ...]]:
        parsed = _parse_audio(self.backend)
        assert parsed is not None  # checked in __post_init__
        return parsed


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    """How much the daemon logs."""

    SECTION: ClassVar[str] = "log"
    level: LogLevel = "info"
    """One of "debug", "info", "warning", "error"."""

    def __post_init__(self) -> None:
        _validate_section(self, self.SECTION)


@dataclass(frozen=True, slots=True, kw_only=True)
class OverlaySettings:
    """How the phone joins the overlay and its LAN."""

    SECTION: ClassVar[str] = "overlay"
    seeds: tuple[str, ...] = ()
    """Nodes to join through, tried at every start along with the peer cache (and again whenever
    the phone knows no one): "HOST:PORT" or "KEYHEX@HOST:PORT"."""
    role: OverlayRole = "auto"
    """"supernode" serves the DHT for others, "client" only uses it, "auto" decides by whether
    the phone is reachable from outside."""
    lan: bool = True
    """Find phones on the LAN with zeroconf (mDNS) and take a short extension there."""
    extension: str = ""
    """This phone's LAN extension (3 or 4 digits), or "" to pick a free one automatically."""
    groups: tuple[str, ...] = ()
    """LAN groups this phone is a member of: "EXT" (ring all: every member rings at once),
    "EXT:turn" (hunt group: members ring one after another, by extension) or "EXT:page" (a
    one-way announcement every member answers at once). Every member lists the group."""
    group_ring_s: float = 15.0
    """How long each member of an in-turn hunt group rings before the next one (seconds)."""

    def __post_init__(self) -> None:
        _validate_section(self, self.SECTION)
        if self.extension and any(g.partition(":")[0] == self.extension for g in self.groups):
            raise ConfigError(
                f"overlay.extension {self.extension} is also one of overlay.groups: a group"
                " extension belongs to the group, not to one phone"
            )

    def parsed_seeds(self) -> list[Seed]:
        return [parse_seed(s) for s in self.seeds]


@dataclass(frozen=True, slots=True, kw_only=True)
class NatSettings:
    """How the phone learns its public address beyond the overlay."""

    SECTION: ClassVar[str] = "nat"
    stun_servers: tuple[str, ...] = ()
    """Standard STUN servers (RFC 8489) to ask at start: "HOST:PORT" (IP literals)."""
    port_mapping: bool = True
    """Ask the default gateway for a port mapping (NAT-PMP, RFC 6886) when it offers one;
    released when the phone stops."""

    def __post_init__(self) -> None:
        _validate_section(self, self.SECTION)

    def parsed_servers(self) -> list[tuple[str, int]]:
        return [(s.host, s.port) for s in map(parse_seed, self.stun_servers)]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSettings:
    """How the phone takes calls."""

    SECTION: ClassVar[str] = "calls"
    auto_answer: bool = False
    """Answer every call at once (a hotline handset, a kiosk, an intercom)."""
    ring_timeout_s: float = 60.0
    """A call nobody answers stops ringing after this long."""
    call_waiting: bool = True
    """A second caller rings (a beep over the call) while a call is up; off: it hears busy."""

    def __post_init__(self) -> None:
        _validate_section(self, self.SECTION)


_Section = (
    NetworkConfig
    | PhoneConfig
    | HardwareConfig
    | AudioConfig
    | LogConfig
    | OverlaySettings
    | NatSettings
    | CallSettings
)
_SECTION_TYPES: dict[str, type[_Section]] = {
    "network": NetworkConfig,
    "phone": PhoneConfig,
    "hardware": HardwareConfig,
    "audio": AudioConfig,
    "log": LogConfig,
    "overlay": OverlaySettings,
    "nat": NatSettings,
    "calls": CallSettings,
}
assert set(_SECTION_TYPES) == set(_SCHEMA)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Every setting, one attribute per TOML section; ``Config()`` is the defaults."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    phone: PhoneConfig = field(default_factory=PhoneConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    log: LogConfig = field(default_factory=LogConfig)
    overlay: OverlaySettings = field(default_factory=OverlaySettings)
    nat: NatSettings = field(default_factory=NatSettings)
    calls: CallSettings = field(default_factory=CallSettings)

    def __post_init__(self) -> None:
        for name, cls in _SECTION_TYPES.items():
            if type(getattr(self, name)) is not cls:
                raise ConfigError(f"{name}: must be a {cls.__name__}")

    def override(self, values: Mapping[str, object], *, source: str = "override") -> "Config":
        """A copy with dotted keys replaced, checked like the file: ``{"network.port": 5000}``.

        For command-line options, which win over the file. Values must already have their
        TOML types (``--port`` parsed to int). ``source`` starts any error message, e.g.
        ``"command line"``. Raises ``ConfigError`` naming the key and the problem.
        """
        tree: dict[str, dict[str, object]] = {
            name: dataclasses.asdict(getattr(self, name)) for name in _SECTION_TYPES
        }
        problems: list[str] = []
        for dotted, value in values.items():
            section, dot, key = dotted.partition(".")
            check = _SCHEMA.get(section, {}).get(key) if dot else None
            if check is None:
                problems.append(f"{source}: {dotted}: unknown key")
                continue
            try:
                tree[section][key] = check(value)
            except _Bad as exc:
                problems.append(f"{source}: {_key(section, key)}: {exc}")
        if problems:
            raise ConfigError("\n".join(problems))
        return _build(tree, source)

    def changed(self, other: "Config") -> list[str]:
        """The dotted keys whose values differ in ``other`` (a reloaded file), in file order."""
        out = []
        for name in _SECTION_TYPES:
            mine, theirs = getattr(self, name), getattr(other, name)
            out += [
                f"{name}.{f.name}"
                for f in dataclasses.fields(mine)
                if getattr(mine, f.name) != getattr(theirs, f.name)
            ]
        return out


# -- loading -----------------------------------------------------------------------------------
def load_config(path: Path | None) -> Config:
    """Read the config file at ``path``; a missing file (or None) means every default.

    Raises ``ConfigError`` if the file cannot be read, is not TOML, or has an unknown section
    or key or a bad value; the message names the file, the dotted key and the problem.
    """
    if path is None:
        return Config()
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > _MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {_MAX_FILE_BYTES} bytes; not a config file")
    return _parse(data, str(path))


def _parse(data: bytes, source: str) -> Config:
    return _build(parse_toml(data, source), source)


def parse_toml(data: bytes, source: str) -> dict[str, Any]:
    """TOML bytes as a tree, or ``ConfigError`` naming ``source`` (not UTF-8, not TOML)."""
    try:
        text = data.decode("utf-8-sig")  # tolerate the BOM some editors write
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start}): {exc.reason}") from None
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except ValueError as exc:  # an integer literal beyond int_max_str_digits
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML: arrays or tables nested too deeply") from None
    return tree


def config_from_tree(tree: Mapping[str, object], source: str) -> Config:
    """A parsed TOML document checked against the schema, as ``load_config`` does."""
    return _build(tree, source)


def _build(tree: Mapping[str, object], source: str) -> Config:
    """Check a parsed TOML document against the schema and build the ``Config``."""
    problems: list[str] = []
    sections: dict[str, dict[str, Any]] = {}
    for section, table in tree.items():
        if section not in _SCHEMA:
            known = ", ".join(sorted(_SCHEMA))
            problems.append(f"{source}: {_key(section)}: unknown section (known: {known})")
            continue
        if not isinstance(table, dict):
            problems.append(f"{source}: {_key(section)}: must be a table, got {_show(table)}")
            continue
        values: dict[str, Any] = {}
        for key, value in table.items():
            check = _SCHEMA[section].get(key)
            if check is None:
                known = ", ".join(sorted(_SCHEMA[section]))
                problems.append(f"{source}: {_key(section, key)}: unknown key (known: {known})")
                continue
            try:
                values[key] = check(value)
            except _Bad as exc:
                problems.append(f"{source}: {_key(section, key)}: {exc}")
        sections[section] = values
    if problems:
        raise ConfigError("\n".join(problems))
    try:
        return Config(
            network=NetworkConfig(**sections.get("network", {})),
            phone=PhoneConfig(**sections.get("phone", {})),
            hardware=HardwareConfig(**sections.get("hardware", {})),
            audio=AudioConfig(**sections.get("audio", {})),
            log=LogConfig(**sections.get("log", {})),
            overlay=OverlaySettings(**sections.get("overlay", {})),
            nat=NatSettings(**sections.get("nat", {})),
            calls=CallSettings(**sections.get("calls", {})),
        )
    except ConfigError as exc:  # a rule across keys, such as bind4 and bind6 both empty
        raise ConfigError(f"{source}: {exc}") from None


DEFAULT_CONFIG_TEXT = """\
# Peerline configuration. Every key is shown with its default value; delete a line to keep
# the default, or change it. Unknown keys are errors, so a typo is caught at startup.
# Command-line options (--port, --hw, --audio) override what is set here.

[network]
# UDP port for everything (overlay, calls, messages). 0 lets the system pick a free port.
port = 4720
# Addresses to listen on: an IPv4 / IPv6 literal, or "" to turn that family off.
bind4 = "0.0.0.0"
bind6 = "::"
# Seconds between NAT keepalives, 1 to 25. Many routers forget idle UDP after 30 s.
keepalive_s = 15.0
# DSCP marks, 0 to 63 (0: unmarked): signalling and the rest (34 = AF41), voice (46 = EF).
dscp = 34
dscp_media = 46

[phone]
# Shown on the idle screen; 1 to 32 printable characters.
name = "Peerline"

[hardware]
# "pi" (GPIO keypad, hook switch, I2C display), "emulator" (the phone drawn in this terminal,
# keys from the keyboard), "none" (headless), or "auto": pi on a Raspberry Pi, else the
# emulator when run in a terminal, else none.
kind = "auto"
# With kind = "pi": which pins the handset uses. A pin map from hw/pinmaps/ by name
# ("desk-4x3", "desk-4x4", "hotline"), or an absolute path to a .toml file (hw/README.md).
pinmap = "desk-4x3"
# A hotline or kiosk handset: lifting the handset calls this number at once. 12 digits, or
# a LAN extension (3 or 4 digits); "" gives a dial tone instead.
hotline = ""

[audio]
# "null" (silence), "alsa:<device>" (e.g. "alsa:plughw:CARD=Headset"), "file:<in.wav>,<out.wav>",
# or "auto": "alsa:default" with a handset (hardware.kind pi or emulator), else "null".
backend = "auto"
# Tone plan (ringback, busy, congestion, ringer): "us", "gb", "de", "fr", "jp" or "eu".
tones = "us"

[calls]
# Answer every call at once (hotline handset, kiosk, intercom).
auto_answer = false
# Seconds an unanswered call rings, 5 to 600.
ring_timeout_s = 60.0
# Let a second caller ring (a beep over the call) while a call is up; false: it hears busy.
call_waiting = true

[log]
# "debug", "info", "warning" or "error".
level = "info"

[overlay]
# Nodes to join the overlay through, tried at every start along with the phones remembered
# from last time: "HOST:PORT" or "KEYHEX@HOST:PORT". Phones on the same LAN need none.
seeds = []
# "supernode" (serve the directory for others), "client" (only use it), or "auto".
role = "auto"
# Find phones on the LAN with zeroconf and take a short extension there.
lan = true
# This phone's LAN extension, 3 or 4 digits, or "" to pick a free one automatically.
extension = ""
# LAN groups this phone belongs to: "EXT" rings every member at once, "EXT:turn" one after
# another (by extension), "EXT:page" is a one-way announcement. Every member lists the group.
groups = []
# How long each member of an in-turn group rings before the next one, in seconds.
group_ring_s = 15.0

[nat]
# Standard STUN servers to ask how the internet sees this phone: "HOST:PORT" (IP literals).
# Overlay peers tell the phone too; these are an extra, independent opinion.
stun_servers = []
# Ask the home router to forward this phone's port (NAT-PMP) when it can; released on exit.
port_mapping = true
"""
