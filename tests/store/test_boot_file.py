"""The boot-partition peerline.toml: checking, merging, TOML writing and wpa_supplicant's file."""

import hashlib
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerline.errors import ConfigError
from peerline.store.bootconfig import (
    WifiSettings,
    dump_toml,
    parse_wifi,
    plan_import,
    wpa_supplicant_conf,
)
from peerline.store.config import DEFAULT_CONFIG_TEXT, config_from_tree, load_config

BOOT = "/boot/firmware/peerline.toml"
CURRENT = "/etc/peerline/peerline.toml"


def plan(boot: str, current: str | None = None):  # type: ignore[no-untyped-def]
    return plan_import(
        boot.encode(),
        None if current is None else current.encode(),
        boot_source=BOOT,
        current_source=CURRENT,
    )


def test_merge_keeps_what_the_boot_file_does_not_name() -> None:
    current = '[phone]\nname = "Front desk"\n[calls]\nauto_answer = true\n'
    p = plan('[hardware]\nhotline = "482155901736"\n', current)
    tree = tomllib.loads(p.config_text)
    assert tree == {
        "phone": {"name": "Front desk"},
        "calls": {"auto_answer": True},
        "hardware": {"hotline": "482155901736"},
    }
    assert p.changed == ["hardware.hotline"]
    assert p.wifi is None


def test_merge_onto_the_commented_default_file_and_onto_none() -> None:
    p = plan('[phone]\nname = "Lobby"\n', DEFAULT_CONFIG_TEXT)
    config = config_from_tree(tomllib.loads(p.config_text), "merged")
    assert config.phone.name == "Lobby"
    assert config == load_config(None).override({"phone.name": "Lobby"})
    assert tomllib.loads(plan('[phone]\nname = "Lobby"\n').config_text) == {
        "phone": {"name": "Lobby"}
    }


def test_every_problem_is_named_with_file_and_key_and_nothing_is_planned() -> None:
    with pytest.raises(ConfigError) as info:
        plan(
            '[phone]\nname = ""\n[hardware]\nhotlin = "1"\n'
            '[wifi]\ncountry = "germany"\nssid = "x"\npsk = "short"\n'
        )
    text = str(info.value)
    assert f"{BOOT}: phone.name:" in text
    assert f"{BOOT}: hardware.hotlin: unknown key" in text
    assert f"{BOOT}: wifi.country:" in text
    assert f"{BOOT}: wifi.psk:" in text
    assert "short" not in text  # a rejected passphrase is never echoed


@pytest.mark.parametrize(
    "boot",
    [
        "not toml = = =",
        b"\xff\xfe".decode("latin-1"),
        "[wifi]\nssid = 'x'\n",  # no country
        "[wifi]\ncountry = 'DE'\nssid = ''\n",
        "[wifi]\ncountry = 'DE'\nssid = 'x'\nextra = 1\n",
        "wifi = 3\n",
        "[network]\nbind4 = ''\nbind6 = ''\n",  # a rule across keys
        "x" * 70000,
    ],
)
def test_refused(boot: str) -> None:
    with pytest.raises(ConfigError):
        plan(boot)


def test_a_rule_across_keys_can_fail_only_in_the_merge() -> None:
    with pytest.raises(ConfigError, match="with"):
        plan("[network]\nbind6 = ''\n", "[network]\nbind4 = ''\n")


def test_wifi_becomes_a_derived_key_and_a_hex_ssid() -> None:
    p = plan('[wifi]\ncountry = "DE"\nssid = "Büro \\"2\\""\npsk = "correct horse"\n')
    assert p.wifi == WifiSettings(country="DE", ssid='Büro "2"', psk="correct horse")
    assert p.changed == ["wifi"]
    assert "wifi" not in tomllib.loads(p.config_text)
    conf = wpa_supplicant_conf(p.wifi)
    key = hashlib.pbkdf2_hmac("sha1", b"correct horse", 'Büro "2"'.encode(), 4096, 32).hex()
    assert f"\tpsk={key}\n" in conf
    ssid_hex = 'Büro "2"'.encode().hex()
    assert f"\tssid={ssid_hex}\n" in conf
    assert "country=DE\n" in conf
    assert "correct horse" not in conf


def test_wifi_known_answer() -> None:
    # IEEE 802.11i-2004 annex H.4.1 test vector: "password" / "IEEE"
    conf = wpa_supplicant_conf(WifiSettings(country="US", ssid="IEEE", psk="password"))
    assert "psk=f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e" in conf


def test_open_network_and_raw_key() -> None:
    assert "key_mgmt=NONE" in wpa_supplicant_conf(
        parse_wifi({"country": "GB", "ssid": "Cafe"}, "f")
    )
    raw = "AB" * 32
    conf = wpa_supplicant_conf(parse_wifi({"country": "GB", "ssid": "x", "psk": raw}, "f"))
    assert f"psk={raw.lower()}" in conf


_texts = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)
_values = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    _texts,
    st.lists(_texts, max_size=4),
)
_bare = st.from_regex(r"[a-z_][a-z0-9_-]{0,10}", fullmatch=True)


@settings(max_examples=300)
@given(st.dictionaries(_bare, st.dictionaries(st.one_of(_bare, _texts.filter(bool)), _values)))
def test_dump_toml_round_trips(tree: dict[str, dict[str, object]]) -> None:
    assert tomllib.loads(dump_toml(tree)) == tree


@settings(max_examples=300)
@given(st.binary(max_size=400), st.binary(max_size=200))
def test_any_bytes_are_planned_or_refused_cleanly(boot: bytes, current: bytes) -> None:
    try:
        p = plan_import(boot, current, boot_source=BOOT, current_source=CURRENT)
    except ConfigError:
        return
    config_from_tree(tomllib.loads(p.config_text), "merged")
