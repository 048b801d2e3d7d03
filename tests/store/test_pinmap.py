"""``peerline.store.pinmap``: the handset's pin maps, checked strictly (hw/README.md section 2)."""

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import peerline
from fuzzing import mutations  # type: ignore[import-not-found, unused-ignore]
from peerline.errors import ConfigError
from peerline.store.pinmap import (
    GPIO_HEADER_PINS,
    MAX_PINMAP_BYTES,
    PINMAP_DIRS,
    DisplaySpec,
    HookPins,
    KeypadPins,
    LedPins,
    PinMap,
    known_pinmaps,
    load_pinmap,
    parse_pinmap,
    resolve_pinmap,
)

BUNDLED = Path(__file__).resolve().parents[2] / "hw" / "pinmaps"
BUNDLED_NAMES = ["desk-4x3", "desk-4x4", "hotline"]

# A valid pin map as a parsed document: each bad case below changes one thing in it.
VALID: dict[str, Any] = {
    "name": "test",
    "description": "a pin map for tests",
    "keypad": {
        "layout": ["123", "456", "789", "*0#"], "rows": [5, 6, 16, 26], "columns": [22, 23, 24]
    },
    "hook": {"pin": 4, "off_hook": "high", "pull": "up"},
    "leds": {"ring": 17, "message": 27, "active_high": True},
    "display": {
        "driver": "ssd1306", "bus": 1, "address": 0x3C, "rotate": 0, "width": 128, "height": 64
    },
}  # fmt: skip


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for the printable text used here
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def dump(doc: dict[str, Any]) -> str:
    """A small TOML writer for the documents these tests build (tables one level deep)."""
    lines = [f"{k} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for section, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def changed(dotted: str, value: object) -> dict[str, Any]:
    """VALID with one key set (``...`` deletes it); "a.b" is key b of section a."""
    doc = copy.deepcopy(VALID)
    *section, key = dotted.split(".")
    table = doc[section[0]] if section else doc
    if value is ...:
        del table[key]
    else:
        table[key] = value
    return doc


def write(tmp_path: Path, text: str | bytes, name: str = "handset.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


# -- the bundled pin maps ----------------------------------------------------------------------
def test_known_pinmaps_are_the_bundled_files() -> None:
    assert known_pinmaps() == BUNDLED_NAMES
    assert sorted(p.stem for p in BUNDLED.glob("*.toml")) == BUNDLED_NAMES


@pytest.mark.parametrize("name", BUNDLED_NAMES)
def test_bundled_pinmap_loads_by_name_and_is_named_like_its_file(name: str) -> None:
    pinmap = load_pinmap(name)
    assert pinmap.name == name
    assert pinmap.description
    assert Path(pinmap.source) == BUNDLED / f"{name}.toml"
    assert pinmap.hook is not None and pinmap.leds is not None
    assert set(pinmap.leds.pins) == {"ring", "message"}


@pytest.mark.parametrize("name", BUNDLED_NAMES)
def test_bundled_pinmap_leaves_the_pins_of_other_jobs_free(name: str) -> None:
    """HAT ID EEPROM, SPI0, PWM audio, the serial console and I2S stay free; I2C is the OLED's."""
    reserved = {0, 1, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18, 19, 20, 21}
    pins = load_pinmap(name).pins()
    assert not reserved & set(pins)
    assert {pins[p] for p in {2, 3} & set(pins)} <= {"display.sda", "display.scl"}


def test_bundled_desk_4x3_is_a_phone_keypad_and_an_ssd1306() -> None:
    pinmap = load_pinmap("desk-4x3")
    assert pinmap.keypad is not None
    assert pinmap.keypad.layout == ("123", "456", "789", "*0#")
    assert pinmap.keypad.keys == tuple("123456789*0#")
    assert pinmap.keypad.key_at(3, 2) == "#"
    assert pinmap.display == DisplaySpec(driver="ssd1306", bus=1, address=0x3C)
    assert pinmap.display.size == (128, 64)


def test_bundled_desk_4x4_adds_soft_keys_and_an_sh1106() -> None:
    pinmap = load_pinmap("desk-4x4")
    assert pinmap.keypad is not None
    assert pinmap.keypad.layout == ("123A", "456B", "789C", "*0#D")
    assert len(pinmap.keypad.columns) == 4
    assert pinmap.display is not None
    assert (pinmap.display.driver, pinmap.display.address) == ("sh1106", 0x3C)


def test_bundled_hotline_has_only_a_hook_switch_and_leds() -> None:
    pinmap = load_pinmap("hotline")
    assert pinmap.keypad is None and pinmap.display is None
    assert set(pinmap.pins().values()) == {"hook.pin", "leds.ring", "leds.message"}


def test_bundled_desk_maps_share_the_hook_and_led_pins() -> None:
    """One board wires any build: the desk maps differ only in the fourth column."""
    small, large, hotline = (load_pinmap(n) for n in BUNDLED_NAMES)
    assert small.hook == large.hook == hotline.hook
    assert small.leds == large.leds == hotline.leds
    assert set(large.pins()) - set(small.pins()) == {25}


# -- finding a pin map -------------------------------------------------------------------------
def test_pinmap_dirs_are_the_source_tree_then_the_installed_image() -> None:
    root = Path(peerline.__file__).resolve().parents[2]
    assert (root / "hw" / "pinmaps", Path("/usr/share/peerline/pinmaps")) == PINMAP_DIRS
    assert PINMAP_DIRS[0] == BUNDLED


def test_load_pinmap_reads_a_path(tmp_path: Path) -> None:
    path = write(tmp_path, dump(VALID))
    assert load_pinmap(path).name == "test"
    assert load_pinmap(str(path)) == load_pinmap(path)
    assert load_pinmap(path).source == str(path)


def test_load_pinmap_reads_a_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, dump(VALID), "mine.toml")
    monkeypatch.chdir(tmp_path)
    assert load_pinmap("mine.toml").name == "test"
    assert load_pinmap("./mine.toml").name == "test"


def test_load_pinmap_searches_the_dirs_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "checkout", tmp_path / "image"
    first.mkdir()
    second.mkdir()
    write(first, dump(changed("description", "from the checkout")), "both.toml")
    write(second, dump(changed("description", "from the image")), "both.toml")
    write(second, dump(VALID), "image-only.toml")
    assert load_pinmap("both", [first, second]).description == "from the checkout"
    assert load_pinmap("image-only", [first, second]).source == str(second / "image-only.toml")
    assert known_pinmaps([first, second]) == ["both", "image-only"]


def test_load_pinmap_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load_pinmap("desk-5x5")
    message = str(info.value)
    assert message.startswith('pin map "desk-5x5": not found (known: desk-4x3, desk-4x4, hotline;')
    assert str(BUNDLED) in message and "/usr/share/peerline/pinmaps" in message


def test_load_pinmap_unknown_name_with_no_pinmaps_anywhere(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found \(known: none; looked in "):
        load_pinmap("desk-4x3", [tmp_path / "missing", tmp_path])


@pytest.mark.parametrize("bad", ["Desk-4x3", "-desk", "desk 4x3", "", "x" * 33, "desk_4x3"])
def test_load_pinmap_malformed_name_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="not a pin map name"):
        load_pinmap(bad)


def test_resolve_pinmap_tells_names_from_paths(tmp_path: Path) -> None:
    assert resolve_pinmap("hotline") == BUNDLED / "hotline.toml"
    assert resolve_pinmap("hotline.toml") == Path("hotline.toml")
    assert resolve_pinmap("pins/hotline") == Path("pins/hotline")
    assert resolve_pinmap(tmp_path) == tmp_path


def test_load_pinmap_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: no such pin map file"):
        load_pinmap(path)


def test_load_pinmap_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(str(tmp_path))}: cannot read"):
        load_pinmap(tmp_path)


def test_load_pinmap_nul_in_the_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a usable path"):
        load_pinmap("/tmp/a\0b.toml")


# -- files that are not pin maps ---------------------------------------------------------------
def test_load_pinmap_refuses_files_over_64_kib(tmp_path: Path) -> None:
    text = dump(VALID)
    padded = text + "#" * (MAX_PINMAP_BYTES - len(text) - 1) + "\n"
    assert len(padded.encode()) == MAX_PINMAP_BYTES
    assert load_pinmap(write(tmp_path, padded)).name == "test"
    with pytest.raises(ConfigError, match="larger than 65536 bytes"):
        load_pinmap(write(tmp_path, padded + "\n"))


def test_load_pinmap_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[keypad\nrows = [1]\n")
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: not valid TOML: .*line 1"):
        load_pinmap(path)


def test_load_pinmap_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_pinmap(write(tmp_path, b'name = "\xff"\n'))


def test_load_pinmap_accepts_a_utf8_byte_order_mark(tmp_path: Path) -> None:
    assert load_pinmap(write(tmp_path, b"\xef\xbb\xbf" + dump(VALID).encode())).name == "test"


def test_load_pinmap_deep_nesting_and_huge_integers_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_pinmap(write(tmp_path, "a = " + "[" * 30_000 + "]" * 30_000 + "\n"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_pinmap(write(tmp_path, "[hook]\npin = " + "9" * 5000 + "\n"))


# -- every rule, refused with the dotted key ---------------------------------------------------
BAD = [
    # structure
    ("colour", "red", "colour", "unknown key (known: name, description, keypad, hook, leds"),
    ("keypad.debounce_ms", 20, "keypad.debounce_ms", "unknown key (known: columns, layout, rows)"),
    ("keypad.extra", {"x": 1}, "keypad.extra", "unknown key"),
    ("keypad", 1, "keypad", "must be a table, got 1"),
    ("leds", [17], "leds", "must be a table, got an array"),
    ("name", ..., "name", "missing (this key is required)"),
    ("keypad.columns", ..., "keypad.columns", "missing (this key is required)"),
    ("hook.off_hook", ..., "hook.off_hook", "missing (this key is required)"),
    ("display.driver", ..., "display.driver", "missing (this key is required)"),
    # names
    ("name", "Desk 4x3", "name", "lowercase letters, digits and dashes"),
    ("name", "", "name", "lowercase letters"),
    ("name", 1, "name", "got 1"),
    ("description", "x" * 201, "description", "at most 200 printable characters"),
    ("description", "tab\there", "description", "printable"),
    # pins outside 0-27, or not integers
    ("hook.pin", 28, "hook.pin", "must be a BCM GPIO number 0..27 (not a header pin), got 28"),
    ("hook.pin", 40, "hook.pin", "not a header pin"),
    ("hook.pin", -1, "hook.pin", "got -1"),
    ("hook.pin", True, "hook.pin", "got true"),
    ("hook.pin", "4", "hook.pin", 'got "4"'),
    ("hook.pin", 4.0, "hook.pin", "got 4.0"),
    ("leds.ring", 99, "leds.ring", "got 99"),
    ("keypad.rows", [5, 6, 16, 28], "keypad.rows", "got 28 at [3]"),
    ("keypad.rows", [], "keypad.rows", "must be an array of 1..8 BCM GPIO numbers"),
    ("keypad.rows", 5, "keypad.rows", "must be an array"),
    ("keypad.columns", list(range(4, 13)), "keypad.columns", "1..8"),
    # a pin used twice
    ("leds.ring", 5, "leds.ring", "GPIO 5 is already keypad.rows[0]"),
    ("keypad.columns", [22, 22, 24], "keypad.columns[1]", "GPIO 22 is already keypad.columns[0]"),
    ("keypad.rows", [5, 6, 16, 22], "keypad.columns[0]", "GPIO 22 is already keypad.rows[3]"),
    ("leds.message", 17, "leds.message", "GPIO 17 is already leds.ring"),
    # the I2C pins while a display is configured
    ("hook.pin", 2, "hook.pin", "GPIO 2 is I2C bus 1's SDA line, which the display needs"),
    ("leds.message", 3, "leds.message", "GPIO 3 is I2C bus 1's SCL line"),
    ("keypad.rows", [5, 6, 16, 3], "keypad.rows[3]", "SCL"),
    # the layout
    ("keypad.layout", ["123", "456", "789"], "keypad.layout", "3 rows, but keypad.rows lists 4"),
    ("keypad.layout", ["12", "456", "789", "*0#"], "keypad.layout", 'row 1 "12" has 2 keys'),
    ("keypad.layout", ["123", "456", "789", "*0#D"], "keypad.layout", "columns lists 3 pins"),
    ("keypad.layout", ["123", "456", "789", "*0E"], "keypad.layout", '"E" is not a key label'),
    ("keypad.layout", ["abc", "456", "789", "*0#"], "keypad.layout", '"a" is not a key label'),
    ("keypad.layout", ["123", "456", "789", "*1#"], "keypad.layout", 'key "1" appears twice'),
    ("keypad.layout", [["1", "2", "3"]], "keypad.layout", "each row is a string"),
    ("keypad.layout", [], "keypad.layout", "must be an array of 1..8 rows"),
    ("keypad.layout", "123456789*0#", "keypad.layout", "must be an array"),
    # the hook and the LEDs
    ("hook.off_hook", "up", "hook.off_hook", 'must be one of "high", "low", got "up"'),
    ("hook.off_hook", True, "hook.off_hook", "got true"),
    ("hook.pull", "none", "hook.pull", 'must be one of "up", "down"'),
    ("leds.active_high", "yes", "leds.active_high", 'must be true or false, got "yes"'),
    ("leds.ring", "17", "leds.ring", 'got "17"'),
    # the display
    ("display.driver", "ssd1309", "display.driver", 'must be one of "ssd1306", "sh1106"'),
    ("display.driver", "SSD1306", "display.driver", "must be one of"),
    ("display.address", 0x3E, "display.address", "must be 0x3C or 0x3D"),
    ("display.address", 0x78, "display.address", "got 0x78"),
    ("display.address", "0x3C", "display.address", 'got "0x3C"'),
    ("display.rotate", 4, "display.rotate", "must be an integer 0..3, got 4"),
    ("display.rotate", -1, "display.rotate", "got -1"),
    ("display.rotate", 90, "display.rotate", "got 90"),
    ("display.width", 64, "display.width", "must be 128 (panels are 128x64 or 128x32), got 64"),
    ("display.height", 48, "display.height", "must be 64 or 32"),
    ("display.height", 128, "display.height", "got 128"),
    ("display.bus", -1, "display.bus", "must be an integer 0..255"),
    ("display.bus", "i2c-1", "display.bus", "must be an integer"),
]


@pytest.mark.parametrize(("dotted", "value", "key", "problem"), BAD)
def test_load_pinmap_refuses_a_bad_value_naming_file_and_key(
    tmp_path: Path, dotted: str, value: object, key: str, problem: str
) -> None:
    path = write(tmp_path, dump(changed(dotted, value)))
    with pytest.raises(ConfigError) as info:
        load_pinmap(path)
    lines = str(info.value).splitlines()
    assert any(line.startswith(f"{path}: {key}: ") and problem in line for line in lines), lines
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_leds_section_naming_no_led_is_refused() -> None:
    doc = changed("leds", {"active_high": False})
    with pytest.raises(ConfigError, match=r"^pin map: leds: names no LED"):
        parse_pinmap(doc)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    doc = changed("hook.pin", 28)
    doc["display"]["rotate"] = 5
    doc["leds"]["message"] = 17
    doc["extra"] = 1
    path = write(tmp_path, dump(doc))
    with pytest.raises(ConfigError) as info:
        load_pinmap(path)
    keys = [line.split(": ")[1] for line in str(info.value).splitlines()]
    assert sorted(keys) == ["display.rotate", "extra", "hook.pin", "leds.message"]


def test_the_i2c_pins_are_free_without_a_display() -> None:
    doc = changed("display", ...)
    doc["hook"]["pin"] = 2
    doc["leds"]["ring"] = 3
    assert parse_pinmap(doc).pins()[2] == "hook.pin"


def test_a_display_on_bus_0_takes_gpio_0_and_1() -> None:
    doc = changed("hook.pin", 0)
    doc["display"]["bus"] = 0
    with pytest.raises(ConfigError, match=r"hook\.pin: GPIO 0 is I2C bus 0's SDA line"):
        parse_pinmap(doc)


def test_a_display_on_an_overlay_bus_reserves_no_header_pin() -> None:
    """Buses made by overlays (i2c-gpio, i2c3..6) choose their own pins."""
    doc = changed("hook.pin", 2)
    doc["display"]["bus"] = 3
    pinmap = parse_pinmap(doc)
    assert "display.sda" not in pinmap.pins().values()


def test_defaults_fill_optional_keys() -> None:
    doc = changed("hook.pull", ...)
    for key in ("bus", "address", "rotate", "width", "height"):
        del doc["display"][key]
    del doc["leds"]["active_high"]
    del doc["leds"]["message"]
    del doc["description"]
    pinmap = parse_pinmap(doc)
    assert pinmap.hook == HookPins(pin=4, off_hook="high", pull="up")
    assert pinmap.display == DisplaySpec(
        driver="ssd1306", bus=1, address=0x3C, rotate=0, width=128, height=64
    )
    assert pinmap.leds == LedPins(ring=17)
    assert pinmap.leds.pins == {"ring": 17}
    assert pinmap.description == ""


def test_only_a_name_is_required() -> None:
    assert parse_pinmap({"name": "bare"}) == PinMap(name="bare")
    assert PinMap(name="bare").pins() == {}


def test_a_128x32_panel_and_rotation() -> None:
    doc = copy.deepcopy(VALID)
    doc["display"].update(height=32, rotate=1, address=0x3D)
    display = parse_pinmap(doc).display
    assert display is not None
    assert display.size == (32, 128)


def test_pins_lists_every_gpio_with_its_key() -> None:
    assert parse_pinmap(VALID).pins() == {
        2: "display.sda", 3: "display.scl",
        5: "keypad.rows[0]", 6: "keypad.rows[1]", 16: "keypad.rows[2]", 26: "keypad.rows[3]",
        22: "keypad.columns[0]", 23: "keypad.columns[1]", 24: "keypad.columns[2]",
        4: "hook.pin", 17: "leds.ring", 27: "leds.message",
    }  # fmt: skip


# -- the dataclasses themselves ----------------------------------------------------------------
def test_building_the_dataclasses_directly_is_checked_too() -> None:
    """An invalid PinMap cannot exist, however it is made."""
    with pytest.raises(ConfigError, match=r"^keypad\.layout: has 1 rows"):
        KeypadPins(layout=("12",), rows=(5, 6), columns=(7, 8))
    with pytest.raises(ConfigError, match=r"^hook\.pin: must be a BCM GPIO"):
        HookPins(pin=30, off_hook="high")
    with pytest.raises(ConfigError, match=r"^leds: names no LED"):
        LedPins()
    with pytest.raises(ConfigError, match=r"^display\.driver: must be one of"):
        DisplaySpec(driver="st7735")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^name: "):
        PinMap(name="Bad Name")
    with pytest.raises(ConfigError, match=r"^keypad: must be a KeypadPins or None"):
        PinMap(name="x", keypad=HookPins(pin=4, off_hook="low"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^leds\.ring: GPIO 4 is already hook\.pin"):
        PinMap(name="x", hook=HookPins(pin=4, off_hook="low"), leds=LedPins(ring=4))
    with pytest.raises(ConfigError, match=r"^hook\.pin: GPIO 3 is I2C bus 1's SCL"):
        PinMap(name="x", hook=HookPins(pin=3, off_hook="low"), display=DisplaySpec(driver="sh1106"))


def test_keypad_arrays_become_tuples() -> None:
    keypad = KeypadPins(layout=["12"], rows=[5], columns=[6, 7])  # type: ignore[arg-type]
    assert keypad.layout == ("12",) and keypad.rows == (5,) and keypad.columns == (6, 7)
    hash(keypad)


def test_pinmap_is_frozen() -> None:
    pinmap = load_pinmap("desk-4x3")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pinmap.name = "x"  # type: ignore[misc]
    assert pinmap.hook is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        pinmap.hook.pin = 5  # type: ignore[misc]


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_pinmap({})


def test_gpio_header_pins_are_the_28_gpio_pins_of_the_header() -> None:
    power_and_ground = {1, 2, 4, 6, 9, 14, 17, 20, 25, 30, 34, 39}
    assert sorted(GPIO_HEADER_PINS) == list(range(28))
    assert sorted(GPIO_HEADER_PINS.values()) == sorted(set(range(1, 41)) - power_and_ground)
    assert (GPIO_HEADER_PINS[2], GPIO_HEADER_PINS[3]) == (3, 5)  # SDA, SCL


# -- fuzzing -----------------------------------------------------------------------------------
_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_KEYS = [*VALID, *(k for t in VALID.values() if isinstance(t, dict) for k in t)]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.integers(-2, 30),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["ssd1306", "sh1106", "high", "low", "up", "down", "123", "*0#", "desk"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=20,
)


@_SETTINGS
@given(st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), _VALUES, max_size=8))
def test_parse_pinmap_random_documents_load_or_raise_config_error(doc: dict[str, Any]) -> None:
    try:
        pinmap = parse_pinmap(doc, source="fuzz.toml")
    except ConfigError as exc:
        assert all(line.startswith("fuzz.toml: ") for line in str(exc).splitlines())
        return
    assert isinstance(pinmap, PinMap)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """VALID with a few keys replaced or removed, so the deeper rules are reached."""
    doc = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(sorted(k for k, v in doc.items() if isinstance(v, dict))))
        table = doc[section]
        key = draw(st.sampled_from(sorted(table) or ["x"]))
        if draw(st.booleans()):
            table.pop(key, None)
        else:
            table[key] = draw(_VALUES | st.lists(st.integers(0, 27), max_size=9))
    return doc


@_SETTINGS
@given(near_valid())
def test_parse_pinmap_near_valid_documents_keep_the_invariants(doc: dict[str, Any]) -> None:
    """Whatever loads has distinct pins 0..27, and none on I2C bus 1 beside the display."""
    try:
        pinmap = parse_pinmap(doc)
    except ConfigError:
        return
    pins = pinmap.pins()
    assert all(0 <= pin <= 27 for pin in pins)
    claimed = 0
    if pinmap.keypad is not None:
        claimed += len(pinmap.keypad.rows) + len(pinmap.keypad.columns)
    claimed += (pinmap.hook is not None) + len(pinmap.leds.pins if pinmap.leds else {})
    if pinmap.display is not None and pinmap.display.bus in (0, 1):
        claimed += 2
    assert len(pins) == claimed  # no pin was counted twice


@_SETTINGS
@given(mutations((BUNDLED / "desk-4x4.toml").read_bytes()))
def test_load_pinmap_mutated_files_load_or_raise_config_error(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, data)
    try:
        pinmap = load_pinmap(path)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}: ")
        return
    assert isinstance(pinmap, PinMap)
