"""Drawing a screen: ``render(screen, size) -> PIL image`` (mode "1"), for every display.

One pixel font, Pillow's built-in bitmap font (6 px a character, an 11 px cell), so that the
picture is the same on every machine (the golden images depend on it) and crisp on a 128x64
OLED; numbers that matter (what is being dialled, the caller) are drawn twice as large where
they fit. The geometry comes from ``size``: nothing here assumes 128x64 (a 128x32 panel gets
fewer lines). A render that raises never reaches the screen (the display adapter shows only
what was drawn to the end), so nothing a far phone sends may make it raise: a character the
font lacks is drawn as '?'. Two marks the font lacks are drawn as icons (``ICONS``): the check
of a verified caller and the warning of a changed key.
"""

from collections.abc import Callable
from functools import cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from .screens import (
    AlertScreen,
    BlankScreen,
    CallScreen,
    ComposeScreen,
    DialScreen,
    IdleScreen,
    MenuScreen,
    Screen,
    StatusBar,
    TextScreen,
)

ON = 255
"""A lit pixel. Mode "1" stores 0 or 255; drawing with 1 stores a 1 that packs as lit
but compares unequal to a lit pixel read back from a PNG."""
OFF = 0

CHAR_W = 6
LINE_H = 10
"""Line pitch: the font's cell is 11 px with a blank top row; 10 px fits six lines in 64."""
TOP = -1
"""The first line starts one pixel up (the font's cell has a blank top row)."""


VERIFIED = "\u2713"
"""The check mark after a caller whose key was verified (drawn as an icon)."""
KEY_CHANGED = "\u26a0"
"""The warning mark after a caller whose key is not the one pinned (drawn as an icon)."""

ICONS: dict[str, tuple[str, ...]] = {
    VERIFIED: (
        "......",
        "......",
        "......",
        ".....#",
        "....##",
        "#..##.",
        "##.##.",
        ".###..",
        "..#...",
        "......",
        "......",
    ),
    KEY_CHANGED: (
        "......",
        "######",
        "##..##",
        "##..##",
        "##..##",
        "##..##",
        "##..##",
        "######",
        "##..##",
        "######",
        "......",
    ),
}
"""Marks the font lacks, as 6 x 11 cells ('#' lit), aligned with its letters: a check, and an
exclamation mark cut out of a lit block (taller than the letters, as loud as a cell can be)."""


@cache
def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default_imagefont()


@cache
def _icon(char: str) -> Image.Image:
    rows = ICONS[char]
    image = Image.new("1", (CHAR_W, len(rows)), OFF)
    for y, row in enumerate(rows):
        for x, cell in enumerate(row):
            if cell == "#":
                image.putpixel((x, y), ON)
    return image


def printable(text: str) -> str:
    """``text`` with what the font cannot draw (controls, characters beyond Latin-1) as '?';
    the icons stay."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if c in ICONS or (c.isprintable() and ord(c) < 0x100) else "?" for c in text)


def columns(width: int) -> int:
    """Characters that fit on one line."""
    return width // CHAR_W


def rows(height: int) -> int:
    """Lines that fit (the status bar is one of them)."""
    return (height - TOP) // LINE_H


def wrap(text: str, width_chars: int) -> list[str]:
    """``text`` broken into lines of at most ``width_chars``, at spaces where it can."""
    out: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for whole in paragraph.split(" "):
            word = whole
            while len(word) > width_chars:
                if line:
                    out.append(line)
                    line = ""
                out.append(word[:width_chars])
                word = word[width_chars:]
            candidate = f"{line} {word}" if line else word
            if len(candidate) <= width_chars:
                line = candidate
            else:
                out.append(line)
                line = word
        out.append(line)
    return out


def render(screen: Screen, size: tuple[int, int]) -> Image.Image:
    """The picture of ``screen`` on a ``size`` panel."""
    image = Image.new("1", size, OFF)
    draw = ImageDraw.Draw(image)
    _DRAW[type(screen)](draw, screen, size)
    return image


def _text(
    draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, *, invert: bool = False
) -> None:
    x, y = xy
    text = printable(text)
    if invert:
        draw.rectangle((x, y + 1, x + CHAR_W * len(text), y + LINE_H), fill=ON)
    fill = OFF if invert else ON
    start = 0
    for i, char in enumerate(text):
        if char in ICONS:
            if start < i:
                draw.text((x + CHAR_W * start, y), text[start:i], font=_font(), fill=fill)
            draw.bitmap((x + CHAR_W * i, y), _icon(char), fill=fill)
            start = i + 1
    if start < len(text):
        draw.text((x + CHAR_W * start, y), text[start:], font=_font(), fill=fill)


def _line(
    draw: ImageDraw.ImageDraw, row: int, text: str, size: tuple[int, int], *, invert: bool = False
) -> None:
    _text(draw, (0, TOP + row * LINE_H), text[: columns(size[0])], invert=invert)


def _centred(draw: ImageDraw.ImageDraw, row: int, text: str, size: tuple[int, int]) -> None:
    text = text[: columns(size[0])]
    x = (size[0] - CHAR_W * len(text)) // 2
    _text(draw, (x, TOP + row * LINE_H), text)


def _big(image_draw: ImageDraw.ImageDraw, y: int, text: str, size: tuple[int, int]) -> bool:
    """``text`` twice as large, centred at ``y``; False (nothing drawn) if it does not fit."""
    width = CHAR_W * len(text)
    if not text or 2 * width > size[0]:
        return False
    small = Image.new("1", (width, LINE_H + 1), OFF)
    _text(ImageDraw.Draw(small), (0, TOP), text)
    large = small.resize((2 * width, 2 * (LINE_H + 1)), Image.Resampling.NEAREST)
    image_draw.bitmap(((size[0] - 2 * width) // 2, y), large, fill=ON)
    return True


def _status(draw: ImageDraw.ImageDraw, bar: StatusBar, size: tuple[int, int]) -> None:
    left = ("net R" if bar.relayed else "net") if bar.online else "no net"
    if bar.dnd:
        left += " DND"
    if bar.forwarded:
        left += " FWD"
    if bar.muted:
        left += " MUTE"
    if bar.volume is not None:
        left += f" vol {bar.volume}"
    right = bar.clock
    marks = []
    if bar.missed:
        marks.append(f"!{bar.missed}")
    if bar.unread:
        marks.append(f"@{bar.unread}")
    if marks:
        right = " ".join(marks) + (" " + right if right else "")
    cols = columns(size[0])
    line = left + " " * max(1, cols - len(left) - len(right)) + right
    _line(draw, 0, line, size)
    draw.line((0, LINE_H, size[0] - 1, LINE_H), fill=ON)


def _hint(draw: ImageDraw.ImageDraw, hint: str, size: tuple[int, int]) -> None:
    if hint:
        _line(draw, rows(size[1]) - 1, hint, size, invert=True)


def _idle(draw: ImageDraw.ImageDraw, s: IdleScreen, size: tuple[int, int]) -> None:
    _status(draw, s.status, size)
    _centred(draw, 1, s.name, size)
    _centred(draw, 2, s.number, size)
    if s.extension:
        _centred(draw, 3, f"ext {s.extension}", size)
    if s.note:
        _centred(draw, rows(size[1]) - 1, s.note, size)


def _dial(draw: ImageDraw.ImageDraw, s: DialScreen, size: tuple[int, int]) -> None:
    _status(draw, s.status, size)
    digits = s.digits
    if not _big(draw, TOP + LINE_H + 4, digits, size):
        shown = digits[-columns(size[0]) :]
        for i, chunk in enumerate(wrap(shown, columns(size[0]))[:2]):
            _centred(draw, 2 + i, chunk, size)
    _hint(draw, s.hint, size)


def _call(draw: ImageDraw.ImageDraw, s: CallScreen, size: tuple[int, int]) -> None:
    cols = columns(size[0])
    top = s.title
    right = s.timer
    if s.muted:
        right = ("MUTE " + right).strip()
    _line(draw, 0, top + " " * max(1, cols - len(top) - len(right)) + right, size)
    draw.line((0, LINE_H, size[0] - 1, LINE_H), fill=ON)
    if s.other:  # a second call to show: everything small, one line each
        _centred(draw, 1, s.who, size)
        row = 2
        last = rows(size[1]) - 2  # the other call's line, just above the hint line
    else:
        if not _big(draw, TOP + LINE_H + 3, s.who, size):
            _centred(draw, 2, s.who, size)
        row = 3
        last = rows(size[1]) - (1 if s.hint else 0)
    if s.detail and row < last:
        _centred(draw, row, s.detail, size)
        row += 1
    facts = []
    if s.sas:
        facts.append(f"SAS {s.sas}")
    if s.path:
        facts.append(s.path)
    if facts and row < last:
        _centred(draw, row, "  ".join(facts), size)
    if s.other and last >= 2:
        _line(draw, last, s.other, size)
    if s.bars is not None:
        _bars(draw, s.bars, size)
    _hint(draw, s.hint, size)


def _alert(draw: ImageDraw.ImageDraw, s: AlertScreen, size: tuple[int, int]) -> None:
    """Light on dark turned round: the whole panel lit, the words dark. Hard to miss."""
    draw.rectangle((0, 0, size[0] - 1, size[1] - 1), fill=ON)
    cols = columns(size[0])
    title = printable(s.title)[:cols]
    _text(draw, ((size[0] - CHAR_W * len(title)) // 2, TOP), title, invert=True)
    draw.line((0, LINE_H, size[0] - 1, LINE_H), fill=OFF)
    last = rows(size[1]) - (1 if s.hint else 0)
    for i, line in enumerate(s.lines[: max(0, last - 1)]):
        text = printable(line)[:cols]
        x = (size[0] - CHAR_W * len(text)) // 2
        _text(draw, (x, TOP + (1 + i) * LINE_H), text, invert=True)
    if s.hint:
        row = rows(size[1]) - 1
        draw.rectangle((0, TOP + row * LINE_H + 1, size[0] - 1, size[1] - 1), fill=OFF)
        _line(draw, row, s.hint, size)


def _bars(draw: ImageDraw.ImageDraw, bars: int, size: tuple[int, int]) -> None:
    """Four signal bars in the bottom right corner, ``bars`` of them filled."""
    base_y = size[1] - 2 if size[1] > 40 else size[1] - 1
    for i in range(4):
        x = size[0] - 4 * 5 + i * 5
        h = 2 + 2 * i
        box = (x, base_y - h, x + 3, base_y)
        draw.rectangle(box, outline=ON, fill=ON if i < bars else OFF)


def _menu(draw: ImageDraw.ImageDraw, s: MenuScreen, size: tuple[int, int]) -> None:
    _line(draw, 0, s.title, size)
    draw.line((0, LINE_H, size[0] - 1, LINE_H), fill=ON)
    visible = rows(size[1]) - 1 - (1 if s.hint else 0)
    top = max(0, min(s.selected - visible // 2, len(s.items) - visible))
    for i, item in enumerate(s.items[top : top + visible]):
        index = top + i
        selected = index == s.selected
        mark = ">" if selected else " "
        shown = item[s.scroll :] if selected else item
        _line(draw, 1 + i, f"{mark}{shown}", size, invert=selected)
    _hint(draw, s.hint, size)


def _page(draw: ImageDraw.ImageDraw, s: TextScreen, size: tuple[int, int]) -> None:
    _line(draw, 0, s.title, size)
    draw.line((0, LINE_H, size[0] - 1, LINE_H), fill=ON)
    visible = rows(size[1]) - 1 - (1 if s.hint else 0)
    for i, line in enumerate(s.lines[s.top : s.top + visible]):
        _line(draw, 1 + i, line, size)
    if s.top + visible < len(s.lines):
        _text(draw, (size[0] - CHAR_W, TOP + visible * LINE_H), "v")
    _hint(draw, s.hint, size)


def _compose(draw: ImageDraw.ImageDraw, s: ComposeScreen, size: tuple[int, int]) -> None:
    cols = columns(size[0])
    _line(draw, 0, s.title + " " * max(1, cols - len(s.title) - len(s.mode)) + s.mode, size)
    draw.line((0, LINE_H, size[0] - 1, LINE_H), fill=ON)
    visible = rows(size[1]) - 1 - (1 if s.hint else 0)
    typed = s.text[:-1] if s.pending else s.text
    lines = wrap(typed + (s.pending or "_"), cols)[-visible:]
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last:
            head = line[:-1]
            _line(draw, 1 + i, head, size)
            _text(draw, (CHAR_W * len(head), TOP + (1 + i) * LINE_H), line[-1], invert=True)
        else:
            _line(draw, 1 + i, line, size)
    _hint(draw, s.hint, size)


def _blank(draw: ImageDraw.ImageDraw, s: BlankScreen, size: tuple[int, int]) -> None:
    return


_DRAW: dict[type[Screen], Callable[[ImageDraw.ImageDraw, Any, tuple[int, int]], None]] = {
    AlertScreen: _alert,
    IdleScreen: _idle,
    DialScreen: _dial,
    CallScreen: _call,
    MenuScreen: _menu,
    TextScreen: _page,
    ComposeScreen: _compose,
    BlankScreen: _blank,
}
"""Screen type -> how it is drawn."""
