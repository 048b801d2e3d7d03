"""peerline.ui.render: any text a far phone or a contact list holds is drawn without raising
(a render that raises never reaches the screen), and the two trust marks the font lacks are
drawn as their icons."""

from hypothesis import given
from hypothesis import strategies as st
from PIL import ImageChops

from peerline.ui.render import ICONS, KEY_CHANGED, VERIFIED, printable, render
from peerline.ui.screens import AlertScreen, CallScreen, MenuScreen

SIZE = (128, 64)


@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=40))
def test_any_name_or_line_is_drawn_on_every_screen_that_shows_one(a: str, b: str, c: str) -> None:
    for size in (SIZE, (128, 32)):
        render(CallScreen(title=a, who=b, detail=c, other=a, hint=b), size)
        render(MenuScreen(title=a, items=(b, c), selected=1, hint=c), size)
        render(AlertScreen(title=a, lines=(b, c, a), hint=b), size)


@given(st.text(max_size=60))
def test_printable_keeps_the_length_and_only_what_the_font_or_an_icon_draws(text: str) -> None:
    shown = printable(text)
    assert len(shown) == len(text)
    assert all(ch in ICONS or (ch.isprintable() and ord(ch) < 0x100) for ch in shown)


def test_a_control_character_or_a_letter_beyond_latin_1_is_a_question_mark() -> None:
    assert printable("Zo\u00eb \u0141ukasz\n\x07") == "Zo\u00eb ?ukasz??"


def test_the_trust_marks_are_drawn_as_their_icons_not_as_question_marks() -> None:
    def picture(detail: str) -> bytes:
        return render(CallScreen(title="In call", who="201", detail=detail), SIZE).tobytes()

    marks = {picture(f"Bob {m}") for m in (VERIFIED, KEY_CHANGED, "?", "")}
    assert len(marks) == 4


def test_an_alert_is_drawn_lit_with_dark_words() -> None:
    image = render(AlertScreen(title="! KEY CHANGED !", lines=("Bob",), hint=""), SIZE)
    histogram = image.histogram()
    assert histogram[255] > 3 * histogram[0]  # mostly lit
    plain = render(CallScreen(title="! KEY CHANGED !", who="Bob"), SIZE)
    assert ImageChops.difference(image, plain).getbbox() is not None
