"""Golden images: every handset screen (tests/ui/golden_screens.py) drawn through the luma
``dummy`` device, as the OLED adapter shows it, and compared pixel for pixel with
tests/golden/screens/<name>.png. On a difference, look at the new picture
(``scripts/goldens --sheet /tmp/sheet.png``); if it is right, run ``scripts/goldens``."""

from pathlib import Path

import pytest
from golden_screens import GOLDEN
from PIL import Image, ImageChops

from peerline.ui.render import render

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "screens"
SIZE = (128, 64)


def test_there_are_golden_images_for_at_least_twenty_screens_and_no_strays() -> None:
    on_disk = {p.stem for p in GOLDEN_DIR.glob("*.png")}
    assert len(GOLDEN) >= 20
    assert on_disk == set(GOLDEN), "run scripts/goldens"


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_a_screen_is_drawn_as_its_golden_image(name: str) -> None:
    dummy = pytest.importorskip("luma.core.device").dummy(width=SIZE[0], height=SIZE[1], mode="1")
    dummy.display(render(GOLDEN[name], SIZE))
    shown = dummy.image.convert("1")
    with Image.open(GOLDEN_DIR / f"{name}.png") as golden:
        expected = golden.convert("1")
    assert shown.size == expected.size
    diff = ImageChops.difference(shown, expected).getbbox()
    assert diff is None, f"{name}: pixels differ in {diff}; run scripts/goldens if it is right"


def test_the_renderer_never_assumes_128_by_64() -> None:
    """A 128x32 panel gets fewer lines of the same screens, and nothing raises."""
    for screen in GOLDEN.values():
        image = render(screen, (128, 32))
        assert image.size == (128, 32)
