"""hw/README.md and hw/wiring.svg agree with the pin maps in hw/pinmaps/.

The wiring tables in the README, the schema table and the wiring diagram are written by hand;
these tests read them back, so a pin moved in a TOML file and not in the docs (or the other way
round) fails here.
"""

import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from peerline.store.pinmap import (
    GPIO_HEADER_PINS,
    DisplaySpec,
    HookPins,
    KeypadPins,
    LedPins,
    known_pinmaps,
    load_pinmap,
)

HW = Path(__file__).resolve().parents[2] / "hw"
README = HW / "README.md"
POWER_PINS = {"3V3": {1, 17}, "5V": {2, 4}, "GND": {6, 9, 14, 20, 25, 30, 34, 39}}


def tables(text: str) -> dict[str, list[list[str]]]:
    """Every markdown table after a ``### ...`` heading: heading -> rows of cells (no header)."""
    found: dict[str, list[list[str]]] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("|") and heading:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            found.setdefault(heading, []).append(cells)
    return {h: rows[2:] for h, rows in found.items()}  # drop the header and its rule


def pin_tables() -> dict[str, list[list[str]]]:
    """The README's wiring tables, by pin map name (headings "Pin map `NAME`")."""
    out = {}
    for heading, rows in tables(README.read_text(encoding="utf-8")).items():
        match = re.fullmatch(r"Pin map `([a-z0-9-]+)`", heading)
        if match:
            out[match.group(1)] = rows
    return out


def test_readme_has_a_wiring_table_for_each_bundled_pinmap_and_no_other() -> None:
    assert sorted(pin_tables()) == known_pinmaps()


@pytest.mark.parametrize("name", known_pinmaps())
def test_readme_wiring_table_lists_exactly_the_pins_of_the_pinmap(name: str) -> None:
    pinmap = load_pinmap(name)
    listed: dict[int, str] = {}
    for header, gpio, key, wire_to in pin_tables()[name]:
        if gpio in POWER_PINS:
            assert int(header) in POWER_PINS[gpio], (name, header, gpio)
            assert key == "-"
            continue
        assert int(header) == GPIO_HEADER_PINS[int(gpio)], (name, header, gpio)
        assert int(gpio) not in listed, (name, gpio)
        listed[int(gpio)] = key.strip("`")
        row = re.fullmatch(r"keypad\.(rows|columns)\[(\d)\]", listed[int(gpio)])
        if row and pinmap.keypad is not None:  # the key labels are right too
            index = int(row.group(2))
            layout = pinmap.keypad.layout
            labels = layout[index] if row.group(1) == "rows" else [r[index] for r in layout]
            assert f"({' '.join(labels)})" in wire_to, (name, wire_to)
    assert listed == pinmap.pins()


@pytest.mark.parametrize("name", known_pinmaps())
def test_readme_wiring_table_wires_power_and_ground_where_the_pinmap_needs_them(
    name: str,
) -> None:
    pinmap = load_pinmap(name)
    power = {gpio for _, gpio, _, _ in pin_tables()[name] if gpio in POWER_PINS}
    needs = {"GND"} if pinmap.hook or pinmap.leds or pinmap.display else set()
    if pinmap.display is not None:
        needs.add("3V3")
    assert power == needs


def test_readme_schema_table_lists_every_key_of_the_pinmap() -> None:
    """Section 2's table documents the whole schema: the sections and each of their keys."""
    rows = tables(README.read_text(encoding="utf-8"))["2. Pin maps"]
    documented = {row[0].strip("`") for row in rows}
    schema = {"name", "description"}
    for cls in (KeypadPins, HookPins, LedPins, DisplaySpec):
        schema.add(f"[{cls.SECTION}]")
        schema |= {f"{cls.SECTION}.{f.name}" for f in dataclasses.fields(cls)}
    assert documented == schema


def test_wiring_svg_draws_desk_4x3() -> None:
    """Each wired header pin in the diagram is a group saying its GPIO and pin map key."""
    tree = ET.parse(HW / "wiring.svg")
    drawn: dict[int, str] = {}
    for group in tree.iter("{http://www.w3.org/2000/svg}g"):
        if "data-gpio" in group.attrib:
            gpio = int(group.attrib["data-gpio"])
            assert group.attrib["id"] == f"pin-{GPIO_HEADER_PINS[gpio]}"
            drawn[gpio] = group.attrib["data-key"]
    assert drawn == load_pinmap("desk-4x3").pins()
