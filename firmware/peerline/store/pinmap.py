"""The handset's pin map: which GPIO pins the keypad, hook switch and LEDs use, and the display.

One small TOML file per build of the phone (``hw/pinmaps/*.toml``; the schema and the wiring
are in ``hw/README.md``). It is checked as strictly as ``peerline.toml``: every problem in the
file is reported at once, one per line, naming the file and the dotted key::

    hw/pinmaps/desk-4x3.toml: hook.pin: GPIO 22 is already keypad.columns[0]

``peerline.toml`` names the pin map (``hardware.pinmap``), either by name (a file bundled in
``hw/pinmaps/`` of a source checkout, or in ``/usr/share/peerline/pinmaps`` of an installed
image) or as a path. Pins are BCM GPIO numbers, as gpiozero and lgpio count them, never header
pin numbers. The dataclasses check themselves when built, so an invalid ``PinMap`` cannot
exist, however it was made.
"""

import dataclasses
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, get_args

import peerline
from peerline.errors import ConfigError
from peerline.store.config import (
    _PINMAP_NAME,
    _Bad,
    _boolean,
    _choice,
    _integer,
    _key,
    _show,
)

__all__ = [
    "GPIO_HEADER_PINS",
    "I2C_BUS_PINS",
    "KEY_LABELS",
    "MAX_PINMAP_BYTES",
    "PINMAP_DIRS",
    "PINMAP_SUFFIX",
    "DisplayDriver",
    "DisplaySpec",
    "HookPins",
    "KeypadPins",
    "LedPins",
    "PinMap",
    "known_pinmaps",
    "load_pinmap",
    "parse_pinmap",
    "resolve_pinmap",
]

MAX_PINMAP_BYTES: Final = 64 * 1024
"""A pin map is about a kilobyte with its comments; a bigger file is a mistake."""

PINMAP_SUFFIX: Final = ".toml"

PINMAP_DIRS: Final[tuple[Path, ...]] = (
    Path(peerline.__file__).resolve().parents[2] / "hw" / "pinmaps",
    Path("/usr/share/peerline/pinmaps"),
)
"""Where a pin map name is looked up, in this order: the source checkout (or an editable
install) that this package was imported from, then an installed image."""

KEY_LABELS: Final = "0123456789*#ABCD"
"""Every label a key may have: the digits, star, hash, and the soft keys A-D of a 4x4 pad."""

GPIO_HEADER_PINS: Final[Mapping[int, int]] = {
    0: 27, 1: 28, 2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21,
    10: 19, 11: 23, 12: 32, 13: 33, 14: 8, 15: 10, 16: 36, 17: 11, 18: 12, 19: 35,
    20: 38, 21: 40, 22: 15, 23: 16, 24: 18, 25: 22, 26: 37, 27: 13,
}  # fmt: skip
"""BCM GPIO number -> physical pin of the 40-pin header (the same on every Pi with one)."""

I2C_BUS_PINS: Final[Mapping[int, tuple[int, int]]] = {0: (0, 1), 1: (2, 3)}
"""I2C bus -> its (SDA, SCL) GPIO pins, for the buses fixed to header pins. Bus 1 is the one to
use; bus 0 is the HAT ID EEPROM's. Other buses come from overlays that choose their own pins."""

DisplayDriver = Literal["ssd1306", "sh1106"]
HookLevel = Literal["high", "low"]
Pull = Literal["up", "down"]

_MAX_LINES: Final = 8
"""Rows or columns of a keypad; real ones have 3 or 4."""
_DESCRIPTION_MAX: Final = 200
_DISPLAY_ADDRESSES: Final = (0x3C, 0x3D)
_REQUIRED: Final = object()
"""Marks a key that has no default."""

_Check = Callable[[object], object]


# -- checks of single values -------------------------------------------------------------------
def _gpio(value: object) -> object:
    if type(value) is not int or value not in GPIO_HEADER_PINS:
        raise _Bad(f"must be a BCM GPIO number 0..27 (not a header pin), got {_show(value)}")
    return value


def _gpio_list(value: object) -> object:
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= _MAX_LINES:
        raise _Bad(f"must be an array of 1..{_MAX_LINES} BCM GPIO numbers, got {_show(value)}")
    for i, item in enumerate(value):
        try:
            _gpio(item)
        except _Bad:
            raise _Bad(
                f"BCM GPIO numbers are 0..27 (not header pins), got {_show(item)} at [{i}]"
            ) from None
    return tuple(value)


def _layout(value: object) -> object:
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= _MAX_LINES:
        raise _Bad(
            f'must be an array of 1..{_MAX_LINES} rows of key labels such as "123", '
            f"got {_show(value)}"
        )
    seen: set[str] = set()
    for row in value:
        if not isinstance(row, str) or not 1 <= len(row) <= _MAX_LINES:
            raise _Bad(
                f'each row is a string of 1..{_MAX_LINES} key labels such as "123",'
                f" got {_show(row)}"
            )
        for label in row:
            if label not in KEY_LABELS:
                raise _Bad(f"{_show(label)} is not a key label (0-9, *, #, A-D)")
            if label in seen:
                raise _Bad(f"key {_show(label)} appears twice")
            seen.add(label)
    return tuple(value)


def _name(value: object) -> object:
    if not isinstance(value, str) or not _PINMAP_NAME.fullmatch(value):
        raise _Bad(
            "must be 1..32 lowercase letters, digits and dashes, starting with a letter or "
            f"digit, got {_show(value)}"
        )
    return value


def _description(value: object) -> object:
    if not isinstance(value, str) or len(value) > _DESCRIPTION_MAX or not value.isprintable():
        raise _Bad(f"must be at most {_DESCRIPTION_MAX} printable characters, got {_show(value)}")
    return value


def _one_of_ints(options: tuple[int, ...]) -> _Check:
    def check(value: object) -> object:
        if type(value) is not int or value not in options:
            listed = " or ".join(str(o) for o in options)
            raise _Bad(f"must be {listed} (panels are 128x64 or 128x32), got {_show(value)}")
        return value

    return check


def _address(value: object) -> object:
    shown = _show(value) if type(value) is not int else f"0x{value:X}"
    if type(value) is not int or value not in _DISPLAY_ADDRESSES:
        raise _Bad(f"must be 0x3C or 0x3D (the panel's I2C address), got {shown}")
    return value


# -- the schema --------------------------------------------------------------------------------
_TOP: dict[str, tuple[_Check, object]] = {
    "name": (_name, _REQUIRED),
    "description": (_description, ""),
}
_SCHEMA: dict[str, dict[str, tuple[_Check, object]]] = {
    "keypad": {
        "layout": (_layout, _REQUIRED),
        "rows": (_gpio_list, _REQUIRED),
        "columns": (_gpio_list, _REQUIRED),
    },
    "hook": {
        "pin": (_gpio, _REQUIRED),
        "off_hook": (_choice(get_args(HookLevel)), _REQUIRED),
        "pull": (_choice(get_args(Pull)), "up"),
    },
    "leds": {
        "ring": (_gpio, None),
        "message": (_gpio, None),
        "active_high": (_boolean, True),
    },
    "display": {
        "driver": (_choice(get_args(DisplayDriver)), _REQUIRED),
        "bus": (_integer(0, 255), 1),
        "address": (_address, 0x3C),
        "rotate": (_integer(0, 3), 0),
        "width": (_one_of_ints((128,)), 128),
        "height": (_one_of_ints((64, 32)), 64),
    },
}


def _check_table(
    section: str, table: Mapping[str, object], *, prefix: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """Check one section's values: (the valid ones, normalised, with defaults; the problems).

    ``prefix`` goes before each problem (the file's name, for the loader).
    """
    schema = _SCHEMA[section]
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in table.items():
        if key not in schema:
            known = ", ".join(sorted(schema))
            problems.append(f"{prefix}{_key(section, key)}: unknown key (known: {known})")
            continue
        try:
            values[key] = schema[key][0](value)
        except _Bad as exc:
            problems.append(f"{prefix}{_key(section, key)}: {exc}")
    for key, (_, default) in schema.items():
        if key in table:
            continue
        if default is _REQUIRED:
            problems.append(f"{prefix}{_key(section, key)}: missing (this key is required)")
        else:
            values[key] = default
    if not problems:
        problems += [f"{prefix}{p}" for p in _section_rules(section, values)]
    return values, problems


def _section_rules(section: str, values: Mapping[str, Any]) -> list[str]:
    """Rules across the keys of one section whose every key is valid."""
    if section == "keypad":
        layout, rows, columns = values["layout"], values["rows"], values["columns"]
        problems = []
        if len(layout) != len(rows):
            problems.append(
                f"keypad.layout: has {len(layout)} rows, but keypad.rows lists {len(rows)} pins"
            )
        problems += [
            f"keypad.layout: row {i} {_show(row)} has {len(row)} keys, but keypad.columns "
            f"lists {len(columns)} pins"
            for i, row in enumerate(layout, 1)
            if len(row) != len(columns)
        ]
        return problems
    if section == "leds" and values["ring"] is None and values["message"] is None:
        return ["leds: names no LED; give ring, message or both, or leave the section out"]
    return []


def _pin_uses(section: str, values: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Every (dotted key, GPIO) a section's valid values claim."""
    uses: list[tuple[str, int]] = []
    if section == "keypad":
        for key in ("rows", "columns"):
            uses += [(f"keypad.{key}[{i}]", pin) for i, pin in enumerate(values.get(key, ()))]
    elif section == "hook" and "pin" in values:
        uses.append(("hook.pin", values["pin"]))
    elif section == "leds":
        uses += [(f"leds.{k}", values[k]) for k in ("ring", "message") if values.get(k) is not None]
    return uses


def _i2c_uses(display: Mapping[str, Any] | None) -> list[tuple[str, int]]:
    """The GPIO pins a configured display's I2C bus takes, as ``display.sda``/``display.scl``."""
    if display is None or display.get("bus") not in I2C_BUS_PINS:
        return []
    sda, scl = I2C_BUS_PINS[display["bus"]]
    return [("display.sda", sda), ("display.scl", scl)]


def _clashes(uses: Sequence[tuple[str, int]], bus: int | None) -> list[str]:
    """A pin may do one job: every later use of a pin is a problem naming the first."""
    owner: dict[int, str] = {}
    problems = []
    for key, pin in uses:
        first = owner.setdefault(pin, key)
        if first == key:
            continue
        if first.startswith("display."):
            line = first.removeprefix("display.").upper()
            problems.append(
                f"{key}: GPIO {pin} is I2C bus {bus}'s {line} line, which the display needs; "
                "pick another pin"
            )
        else:
            problems.append(f"{key}: GPIO {pin} is already {first}")
    return problems


def _check_self(obj: Any, section: str) -> None:
    """A section dataclass checks and normalises its own fields as it is built."""
    table = {
        f.name: getattr(obj, f.name)
        for f in dataclasses.fields(obj)
        if getattr(obj, f.name) is not None
    }
    values, problems = _check_table(section, table)
    if problems:
        raise ConfigError("\n".join(problems))
    for name, value in values.items():
        object.__setattr__(obj, name, value)


# -- the pin map -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class KeypadPins:
    """A matrix keypad: rows driven low one at a time, columns read with pull-ups.

    A pressed key joins its row to its column, so while its row is low its column reads low.
    """

    SECTION: ClassVar[str] = "keypad"
    layout: tuple[str, ...]
    """The key labels, one string per row, top row first: ``("123", "456", "789", "*0#")``."""
    rows: tuple[int, ...]
    """Output pins (BCM GPIO), one per row of ``layout``, top row first."""
    columns: tuple[int, ...]
    """Input pins (BCM GPIO, internal pull-ups), one per column, left column first."""

    def __post_init__(self) -> None:
        _check_self(self, self.SECTION)

    @property
    def keys(self) -> tuple[str, ...]:
        """Every key label, row by row."""
        return tuple(label for row in self.layout for label in row)

    def key_at(self, row: int, column: int) -> str:
        """The label of the key that joins ``rows[row]`` and ``columns[column]``."""
        return self.layout[row][column]


@dataclass(frozen=True, slots=True, kw_only=True)
class HookPins:
    """The hook switch: one input pin, and which level it reads while the handset is lifted."""

    SECTION: ClassVar[str] = "hook"
    pin: int
    """Input pin (BCM GPIO)."""
    off_hook: HookLevel
    """The level the pin reads with the handset lifted: "high" or "low"."""
    pull: Pull = "up"
    """The internal pull resistor: "up" for a switch to ground, "down" for one to 3.3 V."""

    def __post_init__(self) -> None:
        _check_self(self, self.SECTION)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedPins:
    """The phone's LEDs by name (``Indicators`` in ``peerline.ports``); a map may have just one."""

    SECTION: ClassVar[str] = "leds"
    ring: int | None = None
    """Output pin (BCM GPIO) of the ring LED, or None."""
    message: int | None = None
    """Output pin (BCM GPIO) of the message LED, or None."""
    active_high: bool = True
    """True when a high pin lights the LED (GPIO -> resistor -> LED -> ground)."""

    def __post_init__(self) -> None:
        _check_self(self, self.SECTION)

    @property
    def pins(self) -> dict[str, int]:
        """The LEDs this map has, name -> pin: what ``Indicators.set`` may name."""
        named = {"ring": self.ring, "message": self.message}
        return {name: pin for name, pin in named.items() if pin is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class DisplaySpec:
    """A small I2C OLED: which controller, where on the bus, and which way up."""

    SECTION: ClassVar[str] = "display"
    driver: DisplayDriver
    """The panel's controller: "ssd1306" (most 0.96" panels) or "sh1106" (most 1.3")."""
    bus: int = 1
    """The I2C bus (``/dev/i2c-N``): 1 is the one on header pins 3 and 5."""
    address: int = 0x3C
    """The panel's 7-bit I2C address: 0x3C, or 0x3D when its address jumper is moved."""
    rotate: int = 0
    """Quarter turns clockwise, 0..3 (2 for a panel mounted upside down)."""
    width: int = 128
    """Pixels across, before rotation."""
    height: int = 64
    """Pixels down, before rotation: 64 or 32."""

    def __post_init__(self) -> None:
        _check_self(self, self.SECTION)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as the UI draws, after rotation."""
        if self.rotate % 2:
            return (self.height, self.width)
        return (self.width, self.height)


_SECTION_TYPES: Final = {
    "keypad": KeypadPins,
    "hook": HookPins,
    "leds": LedPins,
    "display": DisplaySpec,
}
assert set(_SECTION_TYPES) == set(_SCHEMA)


@dataclass(frozen=True, slots=True, kw_only=True)
class PinMap:
    """One build of the handset. Every part is optional: a hotline handset has no keypad."""

    name: str
    """The pin map's name, as ``hardware.pinmap`` gives it for a bundled one."""
    description: str = ""
    """What the build is, for people."""
    keypad: KeypadPins | None = None
    hook: HookPins | None = None
    leds: LedPins | None = None
    display: DisplaySpec | None = None
    source: str = field(default="", compare=False)
    """Where it was read from (a path), or "" when built in code; for messages and logs."""

    def __post_init__(self) -> None:
        problems = []
        for key, check in (("name", _name), ("description", _description)):
            try:
                check(getattr(self, key))
            except _Bad as exc:
                problems.append(f"{key}: {exc}")
        for section, cls in _SECTION_TYPES.items():
            part = getattr(self, section)
            if part is not None and type(part) is not cls:
                problems.append(f"{section}: must be a {cls.__name__} or None")
        if problems:
            raise ConfigError("\n".join(problems))
        problems = _clashes(self._uses(), self.display.bus if self.display else None)
        if problems:
            raise ConfigError("\n".join(problems))

    def _uses(self) -> list[tuple[str, int]]:
        display = dataclasses.asdict(self.display) if self.display else None
        uses = _i2c_uses(display)
        for section in ("keypad", "hook", "leds"):
            part = getattr(self, section)
            if part is not None:
                uses += _pin_uses(section, dataclasses.asdict(part))
        return uses

    def pins(self) -> dict[int, str]:
        """Every GPIO pin this handset uses -> what uses it, as a dotted key.

        ``"keypad.rows[0]"``, ``"keypad.columns[2]"``, ``"hook.pin"``, ``"leds.ring"``,
        ``"leds.message"``, and ``"display.sda"``/``"display.scl"`` for a display on a bus
        with fixed pins. ``hw/README.md``'s wiring tables list exactly these.
        """
        return {pin: key for key, pin in self._uses()}


# -- reading -----------------------------------------------------------------------------------
def parse_pinmap(tree: Mapping[str, object], *, source: str = "pin map") -> PinMap:
    """Check a parsed TOML document and build the ``PinMap``.

    Raises ``ConfigError`` listing every problem, one per line, each starting with ``source``
    and the dotted key. Then: hand the ``PinMap`` to the hardware adapters.
    """
    prefix = f"{source}: "
    problems: list[str] = []
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for key, value in tree.items():
        if key in _SCHEMA:
            if not isinstance(value, dict):
                problems.append(f"{prefix}{_key(key)}: must be a table, got {_show(value)}")
                continue
            sections[key], found = _check_table(key, value, prefix=prefix)
            problems += found
        elif key in _TOP:
            try:
                top[key] = _TOP[key][0](value)
            except _Bad as exc:
                problems.append(f"{prefix}{_key(key)}: {exc}")
        else:
            known = ", ".join([*_TOP, *_SCHEMA])
            problems.append(f"{prefix}{_key(key)}: unknown key (known: {known})")
    if "name" not in tree:
        problems.append(f"{prefix}name: missing (this key is required)")
    display = sections.get("display")
    uses = _i2c_uses(display)
    for section in ("keypad", "hook", "leds"):
        uses += _pin_uses(section, sections.get(section, {}))
    problems += [f"{prefix}{p}" for p in _clashes(uses, display.get("bus") if display else None)]
    if problems:
        raise ConfigError("\n".join(problems))
    return PinMap(
        name=top["name"],
        description=top.get("description", ""),
        keypad=KeypadPins(**sections["keypad"]) if "keypad" in sections else None,
        hook=HookPins(**sections["hook"]) if "hook" in sections else None,
        leds=LedPins(**sections["leds"]) if "leds" in sections else None,
        display=DisplaySpec(**display) if display is not None else None,
        source=source,
    )


def known_pinmaps(dirs: Sequence[Path] = PINMAP_DIRS) -> list[str]:
    """The names of the pin maps found in ``dirs``, sorted, each once."""
    names: set[str] = set()
    for folder in dirs:
        try:
            found = list(folder.glob(f"*{PINMAP_SUFFIX}"))
        except OSError:
            continue
        names.update(p.stem for p in found if _PINMAP_NAME.fullmatch(p.stem))
    return sorted(names)


def resolve_pinmap(name_or_path: str | Path, dirs: Sequence[Path] = PINMAP_DIRS) -> Path:
    """The file a pin map name or path stands for.

    A ``Path``, or a string containing ``/`` or ending in ``.toml``, is a path and is returned
    as it is. Anything else is a name, looked up as ``NAME.toml`` in each of ``dirs`` in turn.
    Raises ``ConfigError`` for a malformed name, or one found nowhere (listing the known
    names).
    """
    if isinstance(name_or_path, Path):
        return name_or_path
    if "/" in name_or_path or name_or_path.endswith(PINMAP_SUFFIX):
        return Path(name_or_path)
    if not _PINMAP_NAME.fullmatch(name_or_path):
        raise ConfigError(
            f"pin map {_show(name_or_path)}: not a pin map name (lowercase letters, digits and "
            'dashes, such as "desk-4x3") or a path to a .toml file'
        )
    for folder in dirs:
        candidate = folder / f"{name_or_path}{PINMAP_SUFFIX}"
        if candidate.is_file():
            return candidate
    known = ", ".join(known_pinmaps(dirs)) or "none"
    looked = ", ".join(str(d) for d in dirs)
    raise ConfigError(
        f"pin map {_show(name_or_path)}: not found (known: {known}; looked in {looked})"
    )


def load_pinmap(name_or_path: str | Path, dirs: Sequence[Path] = PINMAP_DIRS) -> PinMap:
    """Read and check the pin map ``hardware.pinmap`` names: a bundled name, or a path.

    Names are found as ``resolve_pinmap`` says. Raises ``ConfigError`` when the file is
    missing or unreadable, over 64 KiB, not UTF-8 TOML, or breaks any rule of the schema
    (``hw/README.md``); the message names the file, the dotted key and the problem, one line
    per problem. Then: hand the ``PinMap`` to the hardware adapters.
    """
    path = resolve_pinmap(name_or_path, dirs)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_PINMAP_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such pin map file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL in the path
        raise ConfigError(f"{_show(str(path))}: not a usable path: {exc}") from None
    if len(data) > MAX_PINMAP_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_PINMAP_BYTES} bytes; not a pin map")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): {exc.reason}") from None
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except ValueError as exc:  # an integer literal beyond int_max_str_digits
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    return parse_pinmap(tree, source=str(path))
