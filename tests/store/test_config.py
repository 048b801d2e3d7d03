"""``peerline.store.config``: the TOML config, checked strictly (brief section 10)."""

import dataclasses
import json
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerline.errors import ConfigError
from peerline.store.config import (
    CONFIG_FILE_NAME,
    DEFAULT_CONFIG_TEXT,
    AudioConfig,
    Config,
    HardwareConfig,
    NetworkConfig,
    load_config,
)

SECTIONS = [f.name for f in dataclasses.fields(Config)]


def schema_keys() -> set[str]:
    """Every dotted key the schema has, read from the dataclasses themselves."""
    return {
        f"{section.name}.{f.name}"
        for section in dataclasses.fields(Config)
        for f in dataclasses.fields(getattr(Config(), section.name))
    }


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / CONFIG_FILE_NAME
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


# -- defaults ----------------------------------------------------------------------------------
def test_load_config_none_gives_defaults() -> None:
    assert load_config(None) == Config()


def test_load_config_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path / CONFIG_FILE_NAME) == Config()
    assert load_config(tmp_path / "no" / "such" / "dir" / CONFIG_FILE_NAME) == Config()


def test_load_config_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == Config()


def test_defaults_are_the_documented_values() -> None:
    c = Config()
    assert (c.network.port, c.network.bind4, c.network.bind6) == (4720, "0.0.0.0", "::")
    assert c.network.keepalive_s == 15.0
    assert c.phone.name == "Peerline"
    assert c.hardware.kind == "auto"
    assert (c.hardware.pinmap, c.hardware.hotline) == ("desk-4x3", "")
    assert c.audio.backend == "auto"
    assert c.log.level == "info"


def test_default_config_text_loads_to_exactly_the_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, DEFAULT_CONFIG_TEXT)) == Config()


def test_default_config_text_sets_every_key() -> None:
    """So the text `peerline init` writes documents the whole schema, and drift is caught."""
    doc = tomllib.loads(DEFAULT_CONFIG_TEXT)
    written = {f"{s}.{k}" for s, table in doc.items() for k in table}
    assert written == schema_keys()


def test_default_config_text_values_have_the_default_types() -> None:
    doc = tomllib.loads(DEFAULT_CONFIG_TEXT)
    defaults = Config()
    for dotted in schema_keys():
        section, key = dotted.split(".")
        expected = getattr(getattr(defaults, section), key)
        written = doc[section][key]
        if isinstance(written, list):  # TOML arrays are kept as tuples: configs are frozen
            written = tuple(written)
        assert written == expected
        assert type(written) is type(expected), dotted


# -- valid files -------------------------------------------------------------------------------
def test_load_config_reads_every_key(tmp_path: Path) -> None:
    text = """
[network]
port = 0
bind4 = ""
bind6 = "2001:db8::7"
keepalive_s = 5
[phone]
name = "Front desk ☎"
[hardware]
kind = "pi"
[audio]
backend = "alsa:plughw:CARD=Headset,DEV=0"
[log]
level = "debug"
"""
    c = load_config(write(tmp_path, text))
    assert c.network == NetworkConfig(port=0, bind4="", bind6="2001:db8::7", keepalive_s=5.0)
    assert type(c.network.keepalive_s) is float
    assert c.phone.name == "Front desk ☎"
    assert c.hardware.kind == "pi"
    assert c.audio.kind == "alsa"
    assert c.audio.alsa_device == "plughw:CARD=Headset,DEV=0"
    assert c.audio.file_paths is None
    assert c.log.level == "debug"


def test_load_config_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    c = load_config(write(tmp_path, "[network]\nport = 5000\n"))
    assert c == dataclasses.replace(Config(), network=NetworkConfig(port=5000))


@pytest.mark.parametrize(
    ("dotted", "literal"),
    [
        ("network.port", "65535"),
        ("network.bind4", '"127.0.0.1"'),
        ("network.bind6", '""'),
        ("network.bind6", '"fe80::1%eth0"'),
        ("network.keepalive_s", "1"),
        ("network.keepalive_s", "25.0"),
        ("phone.name", '"' + "x" * 32 + '"'),
        ("phone.name", '"a b"'),
        ("hardware.kind", '"emulator"'),
        ("hardware.pinmap", '"hotline"'),
        ("hardware.pinmap", '"desk-4x4"'),
        ("hardware.pinmap", '"' + "a" * 32 + '"'),
        ("hardware.pinmap", '"/etc/peerline/handset.toml"'),
        ("hardware.pinmap", '"/nowhere/yet.toml"'),
        ("hardware.hotline", '""'),
        ("hardware.hotline", '"000000000000"'),
        ("hardware.hotline", '"482155901736"'),
        ("hardware.hotline", '"201"'),
        ("hardware.hotline", '"9999"'),
        ("audio.backend", '"alsa:default"'),
        ("audio.backend", '"file:in.wav,out.wav"'),
        ("log.level", '"error"'),
    ],
)
def test_load_config_edge_values_are_accepted(tmp_path: Path, dotted: str, literal: str) -> None:
    section, key = dotted.split(".")
    load_config(write(tmp_path, f"[{section}]\n{key} = {literal}\n"))


def test_load_config_accepts_a_utf8_byte_order_mark(tmp_path: Path) -> None:
    c = load_config(write(tmp_path, b"\xef\xbb\xbf[phone]\nname = 'Hall'\n"))
    assert c.phone.name == "Hall"


def test_audio_file_backend_gives_both_paths() -> None:
    audio = AudioConfig(backend="file:/tmp/in.wav,/tmp/out.wav")
    assert audio.kind == "file"
    assert audio.file_paths == (Path("/tmp/in.wav"), Path("/tmp/out.wav"))
    assert audio.alsa_device is None
    assert AudioConfig().kind == "auto" and AudioConfig(backend="null").kind == "null"


# -- bad values: each error names the file, the key and the problem ----------------------------
BAD_VALUES = [
    ("network.port", '"abc"', 'must be an integer 0..65535, got "abc"'),
    ("network.port", "-1", "got -1"),
    ("network.port", "65536", "got 65536"),
    ("network.port", "true", "got true"),
    ("network.port", "4720.0", "got 4720.0"),
    ("network.port", "[4720]", "got an array"),
    ("network.bind4", '"::1"', "IPv4"),
    ("network.bind4", '"192.0.2"', "IPv4"),
    ("network.bind4", '"01.2.3.4"', "IPv4"),
    ("network.bind4", '"localhost"', "IPv4"),
    ("network.bind4", "0", "IPv4"),
    ("network.bind6", '"0.0.0.0"', "IPv6"),
    ("network.bind6", '"zz::"', "IPv6"),
    ("network.keepalive_s", "0.5", "must be a number 1..25, got 0.5"),
    ("network.keepalive_s", "26", "got 26"),
    ("network.keepalive_s", "nan", "got nan"),
    ("network.keepalive_s", "inf", "got inf"),
    ("network.keepalive_s", "true", "got true"),
    ("network.keepalive_s", '"15"', 'got "15"'),
    ("phone.name", '""', "1..32 printable"),
    ("phone.name", '"' + "x" * 33 + '"', "1..32 printable"),
    ("phone.name", '"tab\\there"', '"tab\\there"'),
    ("phone.name", "1979-05-27", "got a date"),
    ("hardware.kind", '"PI"', 'must be one of "auto", "none", "emulator", "pi", got "PI"'),
    ("hardware.kind", '"gpio"', "must be one of"),
    ("hardware.pinmap", '""', 'must be a pin map name such as "desk-4x3" or an absolute path'),
    ("hardware.pinmap", '"Desk-4x3"', "pin map name"),
    ("hardware.pinmap", '"desk 4x3"', "pin map name"),
    ("hardware.pinmap", '"-desk"', "pin map name"),
    ("hardware.pinmap", '"' + "a" * 33 + '"', "pin map name"),
    ("hardware.pinmap", '"desk-4x3.toml"', "absolute path"),
    ("hardware.pinmap", '"pinmaps/desk.toml"', "absolute path"),
    ("hardware.pinmap", '"/etc/peerline/handset"', "absolute path"),
    ("hardware.pinmap", '"/etc/peer\\u0000line.toml"', "absolute path"),
    ("hardware.pinmap", "3", "got 3"),
    ("hardware.hotline", '"4821 5590 1736"', 'must be "" (no hotline), a 12-digit number'),
    ("hardware.hotline", '"48215590173"', "12-digit number"),
    ("hardware.hotline", '"4821559017360"', "12-digit number"),
    ("hardware.hotline", '"012"', "not starting with 0"),
    ("hardware.hotline", '"20"', "3 to 4 digits"),
    ("hardware.hotline", '"12345"', 'got "12345"'),
    ("hardware.hotline", '"' + "\uff11" * 12 + '"', "12-digit"),  # fullwidth digits
    ("hardware.hotline", "482155901736", "got 482155901736"),
    ("audio.backend", '"alsa"', "alsa:<device>"),
    ("audio.backend", '"alsa:"', "alsa:<device>"),
    ("audio.backend", '"alsa:hw 0"', "alsa:<device>"),
    ("audio.backend", '"file:in.wav"', "file:<in.wav>,<out.wav>"),
    ("audio.backend", '"file:a.wav,b.wav,c.wav"', "file:<in.wav>,<out.wav>"),
    ("audio.backend", '"file:,out.wav"', "file:<in.wav>,<out.wav>"),
    ("audio.backend", '"pulse:default"', "null"),
    ("audio.backend", '"NULL"', "null"),
    ("log.level", '"verbose"', 'must be one of "debug", "info", "warning", "error"'),
    ("log.level", '"INFO"', "must be one of"),
]


@pytest.mark.parametrize(("dotted", "literal", "problem"), BAD_VALUES)
def test_load_config_bad_value_names_file_key_and_problem(
    tmp_path: Path, dotted: str, literal: str, problem: str
) -> None:
    section, key = dotted.split(".")
    path = write(tmp_path, f"[{section}]\n{key} = {literal}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {dotted}: ")
    assert problem in message


def test_load_config_message_matches_the_documented_example(tmp_path: Path) -> None:
    path = write(tmp_path, '[network]\nport = "abc"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f'{path}: network.port: must be an integer 0..65535, got "abc"'


def test_load_config_unknown_section_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[netwrok]\nport = 1\n")
    with pytest.raises(ConfigError, match=r": netwrok: unknown section \(known: audio, "):
        load_config(path)


def test_load_config_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[network]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r": network\.prot: unknown key \(known: bind4, "):
        load_config(path)


def test_load_config_nested_table_is_an_unknown_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"network\.extra: unknown key"):
        load_config(write(tmp_path, "[network.extra]\nx = 1\n"))


def test_load_config_top_level_key_is_an_unknown_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r": port: unknown section"):
        load_config(write(tmp_path, "port = 4720\n"))


def test_load_config_section_that_is_not_a_table_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r": network: must be a table, got 4720"):
        load_config(write(tmp_path, "network = 4720\n"))


def test_load_config_quoted_key_is_shown_quoted(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r': phone\."a\.b": unknown key'):
        load_config(write(tmp_path, '[phone]\n"a.b" = 1\n'))


def test_load_config_both_binds_disabled_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[network]\nbind4 = ""\nbind6 = ""\n')
    with pytest.raises(ConfigError, match=r"^.*peerline\.toml: network: bind4 and bind6"):
        load_config(path)


def test_load_config_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, '[network]\nport = -1\nprot = 2\n[log]\nlevel = "loud"\n[x]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = str(info.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "network.port",
        "network.prot",
        "log.level",
        "x",
    ]
    assert all(line.startswith(f"{path}: ") for line in lines)


# -- files that are not config at all ----------------------------------------------------------
def test_load_config_toml_syntax_error_names_file_and_position(tmp_path: Path) -> None:
    path = write(tmp_path, "[network]\nport = \n")
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 2") as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")


def test_load_config_duplicate_key_is_a_syntax_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[network]\nport = 1\nport = 2\n"))


def test_load_config_not_utf8_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(write(tmp_path, b"[phone]\nname = '\xff'\n"))


def test_load_config_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(str(tmp_path))}: cannot read"):
        load_config(tmp_path)


def test_load_config_oversized_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "# " + "x" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_config(path)


def test_load_config_deep_nesting_is_a_config_error(tmp_path: Path) -> None:
    """tomllib recurses per nesting level; RecursionError must not escape."""
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(write(tmp_path, "a = " + "[" * 50_000 + "]" * 50_000 + "\n"))


def test_load_config_huge_integer_is_a_config_error(tmp_path: Path) -> None:
    """tomllib raises a plain ValueError past int_max_str_digits."""
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[network]\nport = " + "9" * 5000 + "\n"))


_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(st.binary(max_size=512))
def test_load_config_arbitrary_bytes_load_or_raise_config_error(
    tmp_path: Path, data: bytes
) -> None:
    path = write(tmp_path, data)
    try:
        config = load_config(path)
    except ConfigError:
        return
    assert isinstance(config, Config)


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, except that TOML also escapes DEL."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


_KEYS = {name: [f.name for f in dataclasses.fields(getattr(Config(), name))] for name in SECTIONS}
_LITERALS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(f), repr(f))
    ),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40).map(toml_string),
    st.sampled_from(
        [
            "4720",
            "0",
            "15.0",
            "3",
            '"Peerline"',
            '"alsa:default"',
            '"file:a.wav,b.wav"',
            '"::1"',
            '"0.0.0.0"',
            '""',
            '"none"',
            '"pi"',
            '"debug"',
            "[1, 2]",
            "{ a = 1 }",
            "1979-05-27",
            "07:32:00",
        ]
    ),
)


@st.composite
def toml_documents(draw: st.DrawFn) -> str:
    """Well-formed TOML over mostly known sections and keys, with values of every type."""
    lines = []
    for section in draw(st.lists(st.sampled_from([*SECTIONS, "extra"]), unique=True)):
        lines.append(f"[{section}]")
        for key in draw(st.lists(st.sampled_from([*_KEYS.get(section, []), "x"]), unique=True)):
            lines.append(f"{key} = {draw(_LITERALS)}")
    return "\n".join(lines) + "\n"


@_SETTINGS
@given(toml_documents())
def test_load_config_toml_documents_load_or_raise_config_error(tmp_path: Path, text: str) -> None:
    """Well-formed TOML reaches the schema checks, which arbitrary bytes rarely do."""
    path = write(tmp_path, text)
    try:
        config = load_config(path)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}: ")
        return
    assert isinstance(config, Config)


@_SETTINGS
@given(toml_documents())
def test_override_accepts_exactly_what_the_file_accepts(tmp_path: Path, text: str) -> None:
    """The command line and the file share one set of checks."""
    doc = tomllib.loads(text)
    if not set(doc) <= set(SECTIONS):
        return  # an empty unknown section has no dotted key to override
    dotted = {
        f"{section}.{key}": value for section, table in doc.items() for key, value in table.items()
    }
    try:
        from_file = load_config(write(tmp_path, text))
    except ConfigError:
        with pytest.raises(ConfigError):
            Config().override(dotted)
        return
    assert Config().override(dotted) == from_file


# -- overrides ---------------------------------------------------------------------------------
def test_override_replaces_values_and_leaves_the_original_alone() -> None:
    base = Config()
    c = base.override({"network.port": 5000, "hardware.kind": "pi", "audio.backend": "null"})
    assert (c.network.port, c.hardware.kind) == (5000, "pi")
    assert c.network.bind4 == base.network.bind4
    assert base.network.port == 4720


def test_override_wins_over_the_file(tmp_path: Path) -> None:
    c = load_config(write(tmp_path, '[network]\nport = 6000\n[hardware]\nkind = "emulator"\n'))
    c = c.override({"network.port": 0})
    assert (c.network.port, c.hardware.kind) == (0, "emulator")


def test_override_int_where_float_is_expected_becomes_float() -> None:
    c = Config().override({"network.keepalive_s": 10})
    assert c.network.keepalive_s == 10.0
    assert type(c.network.keepalive_s) is float


@pytest.mark.parametrize(
    ("dotted", "value", "problem"),
    [
        ("network.port", 70000, "must be an integer 0..65535, got 70000"),
        ("network.port", "5000", 'got "5000"'),
        ("network.port", True, "got true"),
        ("hardware.kind", "fake", "must be one of"),
        ("audio.backend", "alsa:", "alsa:<device>"),
        ("network.keepalive_s", 0, "must be a number 1..25"),
    ],
)
def test_override_bad_value_names_source_and_key(dotted: str, value: object, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config().override({dotted: value}, source="command line")
    assert str(info.value).startswith(f"command line: {dotted}: ")
    assert problem in str(info.value)


@pytest.mark.parametrize("dotted", ["port", "network", "network.prot", "net.port", "network."])
def test_override_unknown_key_is_an_error(dotted: str) -> None:
    with pytest.raises(ConfigError, match=f"^command line: {re.escape(dotted)}: unknown key"):
        Config().override({dotted: 1}, source="command line")


def test_override_cross_key_rule_is_checked() -> None:
    c = Config().override({"network.bind4": ""})
    with pytest.raises(ConfigError, match=r"^override: network: bind4 and bind6"):
        c.override({"network.bind6": ""})


# -- the dataclasses themselves ----------------------------------------------------------------
def test_config_is_frozen() -> None:
    c = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.network.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.network = NetworkConfig()  # type: ignore[misc]


def test_building_a_section_directly_is_checked_too() -> None:
    """An invalid Config cannot exist, however it is made."""
    with pytest.raises(ConfigError, match=r"^network\.port: must be an integer"):
        NetworkConfig(port=-1)
    with pytest.raises(ConfigError, match=r"^audio\.backend: "):
        AudioConfig(backend="speaker")
    with pytest.raises(ConfigError, match=r"^network: must be a NetworkConfig"):
        Config(network="0.0.0.0")  # type: ignore[arg-type]


def test_config_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        load_config(write(tmp_path, "[log]\nlevel = 1\n"))


@pytest.mark.parametrize("bad", ["012", "12", "12345", "2a1", "\uff11\uff12\uff13"])
def test_overlay_extension_must_be_three_or_four_digits_not_starting_with_zero(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"overlay\.extension"):
        Config().override({"overlay.extension": bad})


@pytest.mark.parametrize(
    "bad", ["fe80::1%eth0:4720", "[fe80::1%eth0]:4720", "host.example:4720", "1.2.3.4", "1.2.3.4:0"]
)
def test_overlay_seeds_are_ip_literals_with_a_port(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"overlay\.seeds"):
        Config().override({"overlay.seeds": [bad]})


def test_overlay_seeds_accept_keyed_and_ipv6_forms() -> None:
    key = "ab" * 32
    cfg = Config().override({"overlay.seeds": ["192.0.2.1:4720", f"{key}@[2001:db8::1]:4720"]})
    first, second = cfg.overlay.parsed_seeds()
    assert (first.host, first.port, first.public_key) == ("192.0.2.1", 4720, None)
    assert (second.host, second.public_key) == ("2001:db8::1", bytes.fromhex(key))


# -- hardware.pinmap and hardware.hotline ------------------------------------------------------
def test_hardware_pinmap_and_hotline_are_read(tmp_path: Path) -> None:
    text = '[hardware]\nkind = "pi"\npinmap = "hotline"\nhotline = "482155901736"\n'
    c = load_config(write(tmp_path, text))
    assert (c.hardware.kind, c.hardware.pinmap, c.hardware.hotline) == (
        "pi",
        "hotline",
        "482155901736",
    )


def test_default_pinmap_is_a_bundled_one() -> None:
    """The default ``hardware.pinmap`` names a pin map that loads (hw/pinmaps/)."""
    from peerline.store.pinmap import known_pinmaps, load_pinmap

    assert Config().hardware.pinmap in known_pinmaps()
    assert load_pinmap(Config().hardware.pinmap).name == Config().hardware.pinmap


def test_every_bundled_pinmap_name_is_a_valid_hardware_pinmap() -> None:
    from peerline.store.pinmap import known_pinmaps

    for name in known_pinmaps():
        assert Config().override({"hardware.pinmap": name}).hardware.pinmap == name


def test_hardware_pinmap_path_is_not_opened_by_the_config() -> None:
    """The config checks the form; the pin map itself is read (and checked) when it is used."""
    c = Config().override({"hardware.pinmap": "/no/such/dir/handset.toml"})
    assert c.hardware.pinmap == "/no/such/dir/handset.toml"


@pytest.mark.parametrize("bad", ["4821-5590-1736", "+482155901736", "201 ", " 201", "0201"])
def test_hardware_hotline_is_twelve_digits_or_an_extension(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^command line: hardware\.hotline: must be "):
        Config().override({"hardware.hotline": bad}, source="command line")


def test_hardware_section_is_checked_when_built_directly() -> None:
    with pytest.raises(ConfigError, match=r"^hardware\.hotline: "):
        HardwareConfig(hotline="12")
    with pytest.raises(ConfigError, match=r"^hardware\.pinmap: "):
        HardwareConfig(pinmap="My Handset")


def test_every_key_is_documented_in_the_operator_guide() -> None:
    """docs/operator.md section 4 has a row for every key, so a new key cannot go unmentioned."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operator.md").read_text()
    rows = set(re.findall(r"^\| `([a-z_]+\.[a-z_0-9]+)` \|", guide, flags=re.MULTILINE))
    assert schema_keys() <= rows, schema_keys() - rows


def test_a_bad_value_with_line_breaking_characters_is_shown_on_one_line(tmp_path: Path) -> None:
    """C1 controls and U+2028 split ``str.splitlines``: they are shown escaped."""
    path = write(tmp_path, "[phone]\nname = \"a\u0085b\u2028c\\u0001\"\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert len(str(err.value).splitlines()) == 1
    assert "\\u0085" in str(err.value) and "\\u2028" in str(err.value)
