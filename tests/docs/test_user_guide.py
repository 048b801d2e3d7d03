"""docs/user-guide.md stays true to the code: its pictures exist, it quotes the emulator's key
help as the emulator prints it, and the times and letters it gives are the code's defaults.

The guide is written by hand; these tests read it back, so a default changed in the code and
not in the guide (or the other way round) fails here.
"""

import re
from pathlib import Path

import pytest

from peerline.adapters.terminal import KEYS_HELP
from peerline.ui.handset import HandsetConfig
from peerline.ui.hook import HookTiming
from peerline.ui.keys import KeyTiming
from peerline.ui.multitap import LETTERS, MultiTap

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "user-guide.md"
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def test_every_image_link_points_to_an_existing_file() -> None:
    links = IMAGE_LINK.findall(guide())
    assert len(links) >= 8, "the guide shows a good selection of the golden screens"
    missing = [link for link in links if not (GUIDE.parent / link).is_file()]
    assert missing == []


def test_the_readmes_screens_exist() -> None:
    readme = ROOT / "README.md"
    links = IMAGE_LINK.findall(readme.read_text(encoding="utf-8"))
    assert len(links) >= 4
    assert [link for link in links if not (ROOT / link).is_file()] == []


def test_every_golden_screen_named_exists() -> None:
    named = set(re.findall(r"tests/golden/screens/([\w.-]+\.png)", guide()))
    assert named
    screens = ROOT / "tests" / "golden" / "screens"
    assert sorted(n for n in named if not (screens / n).is_file()) == []


def test_the_emulator_key_help_is_quoted_verbatim() -> None:
    assert KEYS_HELP in guide()


def _s(seconds: float) -> str:
    """A time as the guide writes it: '0.8', '4', '30'."""
    return f"{seconds:g}"


@pytest.mark.parametrize(
    "phrase",
    [
        f"holding the key down for {_s(KeyTiming().hold_s)} s",
        f"after a {_s(HandsetConfig().inter_digit_s)} s pause after the last digit",
        f"the display sleeps after {_s(HandsetConfig().sleep_after_s)} s",
        f"for more than {_s(KeyTiming().stuck_s)} s",
        f"it stays for {_s(HandsetConfig().ended_s)} s",
        f"after a pause of {_s(MultiTap().commit_s)} s",
        f"rested in the cradle for {_s(HookTiming().flash_max_s)} s",
        f"between {_s(HookTiming().flash_min_s)} and {_s(HookTiming().flash_max_s)} s",
    ],
)
def test_the_times_quoted_are_the_code_defaults(phrase: str) -> None:
    text = " ".join(guide().split())  # phrases may be broken across lines
    assert phrase in text


@pytest.mark.parametrize("key", sorted(k for k in LETTERS if k != "0"))
def test_the_multi_tap_letters_are_the_editors(key: str) -> None:
    row = f"| `{key}` | `{' '.join(LETTERS[key])}` |"
    assert row in guide().splitlines()
