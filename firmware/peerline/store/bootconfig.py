"""Setting a phone up without a keyboard: a ``peerline.toml`` put on the SD card's boot partition.

A kiosk or a fresh desk phone has SSH off, and maybe no keypad; the FAT boot partition can be
written from any computer. At boot (``peerline boot-config``, before the phone starts) the file is
checked as strictly as the phone's own configuration, its keys are merged into that
configuration (keys it does not name keep their values), and its ``[wifi]`` table, which is the
operating system's business rather than the phone's, becomes wpa_supplicant's configuration.

This module is the pure part: bytes in, texts out, every problem named with file and key. The
command in ``peerline.app.bootconfig`` reads and writes the files.
"""

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigError
from .config import _key, _show, config_from_tree, parse_toml

__all__ = [
    "BOOT_FILE_NAME",
    "MAX_BOOT_FILE_BYTES",
    "ImportPlan",
    "WifiSettings",
    "dump_toml",
    "parse_wifi",
    "plan_import",
    "wpa_supplicant_conf",
]

BOOT_FILE_NAME = "peerline.toml"
MAX_BOOT_FILE_BYTES = 64 * 1024
"""A configuration is a few hundred bytes; anything much larger is not one."""

_COUNTRY = re.compile(r"[A-Z]{2}")
_HEX_PSK = re.compile(r"[0-9a-fA-F]{64}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class WifiSettings:
    """One Wi-Fi network to join: WPA2/WPA3-personal with a passphrase, or open (no psk)."""

    country: str
    "ISO 3166 alpha-2 code: which channels and powers are legal here (the regulatory domain)."
    ssid: str
    psk: str | None
    "8..63 printable ASCII characters, or 64 hex digits (a raw key); None for an open network."


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What importing a boot-partition file would write."""

    config_text: str
    "The phone's configuration after the merge, as TOML."
    changed: list[str]
    "Dotted keys the boot file set, in its order; ``wifi`` when it has a Wi-Fi table."
    wifi: WifiSettings | None


def parse_wifi(table: object, source: str) -> WifiSettings:
    """The ``[wifi]`` table: ``country`` and ``ssid`` required, ``psk`` for a protected network."""
    problems: list[str] = []
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: wifi: must be a table, got {_show(table)}")
    known = {"country", "ssid", "psk"}
    for key in table:
        if key not in known:
            problems.append(
                f"{source}: {_key('wifi', key)}: unknown key (known: {', '.join(sorted(known))})"
            )
    country = table.get("country")
    if not (isinstance(country, str) and _COUNTRY.fullmatch(country)):
        problems.append(
            f'{source}: wifi.country: must be a two-letter country code such as "DE", '
            f"got {_show(country)}"
        )
    ssid = table.get("ssid")
    if not (isinstance(ssid, str) and 1 <= len(ssid.encode()) <= 32):
        problems.append(f"{source}: wifi.ssid: must be 1..32 bytes of text, got {_show(ssid)}")
    psk = table.get("psk")
    if psk is not None and not (
        isinstance(psk, str)
        and ((8 <= len(psk) <= 63 and all(" " <= c <= "~" for c in psk)) or _HEX_PSK.fullmatch(psk))
    ):
        # Never echo a rejected passphrase: it is probably nearly right.
        problems.append(
            f"{source}: wifi.psk: must be 8..63 printable ASCII characters or 64 hex digits"
        )
    if problems:
        raise ConfigError("\n".join(problems))
    assert isinstance(country, str) and isinstance(ssid, str)
    return WifiSettings(country=country, ssid=ssid, psk=psk if isinstance(psk, str) else None)


def wpa_supplicant_conf(wifi: WifiSettings) -> str:
    """wpa_supplicant's configuration for one network.

    The SSID is written in hex and a passphrase as the key derived from it (PBKDF2-HMAC-SHA1,
    4096 rounds, salted with the SSID: IEEE 802.11i), so no quoting rule of the file format can
    be tripped by what the user typed, and the passphrase itself is not stored.
    """
    lines = [
        "# Written by peerline boot-config from the boot partition's peerline.toml.",
        "ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev",
        f"country={wifi.country}",
        "network={",
        f"\tssid={wifi.ssid.encode().hex()}",
        "\tscan_ssid=1",
    ]
    if wifi.psk is None:
        lines.append("\tkey_mgmt=NONE")
    else:
        if _HEX_PSK.fullmatch(wifi.psk):
            key = wifi.psk.lower()
        else:
            key = hashlib.pbkdf2_hmac("sha1", wifi.psk.encode(), wifi.ssid.encode(), 4096, 32).hex()
        lines += ["\tkey_mgmt=WPA-PSK WPA-PSK-SHA256", f"\tpsk={key}", "\tieee80211w=1"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def plan_import(
    boot: bytes, current: bytes | None, *, boot_source: str, current_source: str
) -> ImportPlan:
    """Check the boot file and merge it into the current configuration (None: no file yet).

    Raises ``ConfigError`` listing every problem of the boot file, or of the merge (a rule
    across keys, such as no address to bind, can fail only there).
    """
    if len(boot) > MAX_BOOT_FILE_BYTES:
        raise ConfigError(f"{boot_source}: larger than {MAX_BOOT_FILE_BYTES} bytes")
    tree = parse_toml(boot, boot_source)
    wifi_table = tree.pop("wifi", None)
    problems: list[str] = []
    wifi = None
    if wifi_table is not None:
        try:
            wifi = parse_wifi(wifi_table, boot_source)
        except ConfigError as exc:
            problems.append(str(exc))
    try:
        config_from_tree(tree, boot_source)
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    merged: dict[str, dict[str, object]] = {}
    if current is not None:
        for section, table in parse_toml(current, current_source).items():
            merged[section] = dict(table) if isinstance(table, dict) else table
    changed: list[str] = []
    for section, table in tree.items():
        assert isinstance(table, dict)  # config_from_tree checked it
        merged.setdefault(section, {}).update(table)
        changed += [f"{section}.{key}" for key in table]
    config_from_tree(merged, f"{current_source} with {boot_source}")
    if wifi is not None:
        changed.append("wifi")
    header = (
        "# Peerline configuration, last changed by `peerline boot-config` from the boot\n"
        "# partition's peerline.toml (the file before it is kept beside it as .previous).\n"
    )
    return ImportPlan(config_text=header + dump_toml(merged), changed=changed, wifi=wifi)


def dump_toml(tree: Mapping[str, object]) -> str:
    """A configuration tree (tables of strings, numbers, booleans and arrays of them) as TOML."""
    out: list[str] = []
    for section, table in tree.items():
        if not isinstance(table, Mapping):
            raise ValueError(f"{section}: not a table")
        out.append(f"[{_toml_key(section)}]")
        out += [f"{_toml_key(k)} = {_value(v)}" for k, v in table.items()]
        out.append("")
    return "\n".join(out)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return ("-" if value < 0 else "") + "inf" if math.isinf(value) else "nan"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise ValueError(f"cannot write {type(value).__name__} as TOML")


def _string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and every control character escaped."""
    out = ['"']
    for c in text:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)
