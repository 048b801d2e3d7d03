"""The phone's screen: a luma.oled panel on I2C, any luma device, or the emulator's terminal.

    display = OledDisplay.open(driver="sh1106", bus=1, address=0x3C)   # the real panel
    display = OledDisplay(luma.core.device.dummy(width=128, height=64, mode="1"))  # tests
    display = TerminalDisplay(sys.stdout)                                # the emulator
    display.show(image)       # a PIL image of display.size, mode "1"; sent only if it changed

``OledDisplay`` hands whole frames to a luma device and sends no panel commands of its own
(house style §4). luma's SSD1306 and SH1106 drivers always write the full 1 KiB frame, so the
saving is in not writing at all: ``show`` passes the picture through
``luma.core.framebuffer.diff_to_previous`` and sends it only when some pixel changed, so a UI
that redraws at 10 Hz costs the I2C bus nothing while the screen is still.

luma's base device opens ``i2c()`` by itself when given no bus, and registers an ``atexit``
hook that blanks and switches off the panel. Here the I2C interface is always built
explicitly (``OledDisplay.open``), and the device's ``persist`` flag is set, so that luma's
exit hook only closes the bus: what the screen shows at exit is the phone's decision
(``sleep()`` before ``close()`` to switch it off).

Errors: an ``OSError`` or a luma error from the panel (no device at the address, the bus
gone, no permission on ``/dev/i2c-N``) raises ``DisplayError``; the phone then runs headless.
A picture of the wrong size or mode, or a contrast outside 0-255, raises ``ValueError``.
After ``close`` every call is ignored.
"""

import threading
from typing import TYPE_CHECKING, Any, Final, Literal, TextIO

from luma.core.error import Error as LumaError
from luma.core.framebuffer import diff_to_previous
from luma.core.interface.serial import i2c
from luma.oled.device import sh1106, ssd1306
from PIL import Image

from peerline.errors import DisplayError
from peerline.ports import Display

DRIVERS: Final = {"ssd1306": ssd1306, "sh1106": sh1106}
"""luma.oled drivers by name: the 0.96" SSD1306 and the 1.3" SH1106 128x64 panels."""

_PANEL_ERRORS: Final = (OSError, LumaError)


def _check_image(image: object, size: tuple[int, int]) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise ValueError(f"show() takes a PIL image, not {type(image).__name__}")
    if image.size != size or image.mode != "1":
        raise ValueError(
            f"show() takes a mode '1' image of {size[0]}x{size[1]}, "
            f"not a mode {image.mode!r} image of {image.size[0]}x{image.size[1]}"
        )
    return image


def _check_contrast(level: int) -> None:
    if not 0 <= level <= 255:
        raise ValueError(f"contrast must be 0-255, not {level}")


class OledDisplay:
    """A luma device as the phone's ``Display``: only changed pictures reach the panel.

    :param device: any luma device (``luma.oled.device.ssd1306``, ``sh1106``,
        ``luma.core.device.dummy``). The display owns it from
        now on: ``close`` cleans it up, and its ``persist`` flag is set so that luma's exit
        hook leaves the picture alone.
    """

    __slots__ = ("_closed", "_device", "_framebuffer", "_lock")

    def __init__(self, device: Any) -> None:
        self._device = device
        self._device.persist = True
        self._framebuffer = diff_to_previous(num_segments=1)
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(
        cls,
        *,
        driver: Literal["ssd1306", "sh1106"] = "ssd1306",
        bus: int = 1,
        address: int = 0x3C,
        rotate: int = 0,
        width: int = 128,
        height: int = 64,
    ) -> "OledDisplay":
        """Open the panel on I2C bus ``bus`` (``/dev/i2c-<bus>``) at ``address``.

        The driver initialises the panel and shows a blank picture. Then: ``show``.

        :param driver: ``"ssd1306"`` or ``"sh1106"``.
        :param rotate: 0, 1, 2 or 3 quarter turns clockwise (``size`` follows).
        :raises ValueError: an unknown driver or rotation.
        :raises DisplayError: the bus or the panel cannot be opened.
        """
        make = DRIVERS.get(driver)
        if make is None:
            raise ValueError(f"display driver must be one of {sorted(DRIVERS)}, not {driver!r}")
        if rotate not in (0, 1, 2, 3):
            raise ValueError(f"rotate must be 0, 1, 2 or 3, not {rotate!r}")
        where = f"{driver} display on I2C bus {bus} at 0x{address:02X}"
        try:
            serial = i2c(port=bus, address=address)
        except _PANEL_ERRORS as exc:
            raise DisplayError(f"cannot open the {where}: {exc}") from exc
        try:
            device = make(serial, width=width, height=height, rotate=rotate)
        except _PANEL_ERRORS as exc:
            serial.cleanup()
            raise DisplayError(f"cannot open the {where}: {exc}") from exc
        return cls(device)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, after rotation."""
        width, height = self._device.size
        return (int(width), int(height))

    @property
    def device(self) -> Any:
        """The luma device underneath (tests read ``dummy``'s ``image``)."""
        return self._device

    def show(self, image: object) -> None:
        """Send ``image`` (mode ``"1"``, ``size``) unless it is the picture already sent.

        :raises ValueError: wrong size or mode.
        :raises DisplayError: the panel did not take it (the next ``show`` sends in full).
        """
        picture = _check_image(image, self.size)
        with self._lock:
            if self._closed:
                return
            # The framebuffer remembers the picture once its generator has run to the end.
            if not list(self._framebuffer.redraw(picture)):
                return
            if self._device.mode != picture.mode:
                picture = picture.convert(self._device.mode)
            try:
                self._device.display(picture)
            except _PANEL_ERRORS as exc:
                self._framebuffer = diff_to_previous(num_segments=1)  # panel content unknown
                raise DisplayError(f"display: sending a picture failed: {exc}") from exc

    def contrast(self, level: int) -> None:
        """Set the panel's contrast, 0-255 (an OLED's brightness, roughly).

        :raises ValueError: outside 0-255.
        :raises DisplayError: the panel did not take it.
        """
        _check_contrast(level)
        self._command("contrast", level)

    def sleep(self) -> None:
        """Switch the panel off; it keeps its picture, and ``show`` still updates it."""
        self._command("hide")

    def wake(self) -> None:
        """Switch the panel back on, showing the last picture."""
        self._command("show")

    def close(self) -> None:
        """Release the bus, leaving the panel as it is (``sleep`` first to switch it off).
        Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._device.cleanup()  # persist is set: this only closes the bus
            except _PANEL_ERRORS as exc:
                raise DisplayError(f"display: closing failed: {exc}") from exc

    def _command(self, name: str, *args: int) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                getattr(self._device, name)(*args)
            except _PANEL_ERRORS as exc:
                raise DisplayError(f"display: {name} failed: {exc}") from exc


UPPER_HALF: Final = "\u2580"
LOWER_HALF: Final = "\u2584"
FULL_BLOCK: Final = "\u2588"
_CELLS: Final = (" ", LOWER_HALF, UPPER_HALF, FULL_BLOCK)  # index: top pixel * 2 + bottom pixel

HOME: Final = "\x1b[H"
"""ANSI "cursor to the top left": each frame overwrites the previous one in place."""


def render_half_blocks(image: Image.Image) -> list[str]:
    """The picture as text: one character per column and per two rows of pixels.

    A lit pixel is ink: the top pixel of a cell is ``▀`` (U+2580), the bottom one ``▄``
    (U+2584), both ``█`` (U+2588), neither a space. An odd last row has dark pixels below it.
    """
    picture = image.convert("1") if image.mode != "1" else image
    width, height = picture.size
    pixels = picture.load()
    assert pixels is not None

    def lit(x: int, y: int) -> int:
        return 1 if y < height and pixels[x, y] else 0

    return [
        "".join(_CELLS[lit(x, y) * 2 + lit(x, y + 1)] for x in range(width))
        for y in range(0, height, 2)
    ]


class TerminalDisplay:
    """The emulator's screen: the 128x64 picture in half blocks, written to a text stream.

    Each frame is ``height / 2`` lines of ``width`` characters (``render_half_blocks``), in a
    box-drawing frame if ``border``, preceded by ANSI "cursor home" if ``home`` so that a
    terminal redraws it in place. Like ``OledDisplay`` it writes only pictures that changed.
    ``sleep`` draws the panel dark and ``wake`` draws the last picture again; a terminal has
    no contrast, so ``contrast`` only checks and keeps the level. The stream is the caller's:
    ``close`` does not close it. It needs a UTF-8 terminal (``tmux -u``, ``LANG=C.UTF-8``).

    :param stream: where frames go (``sys.stdout``, a pipe, a ``StringIO`` in tests).
    :raises DisplayError: (from ``show``) the stream cannot be written.
    """

    __slots__ = (
        "_asleep",
        "_border",
        "_closed",
        "_contrast",
        "_home",
        "_last",
        "_lock",
        "_size",
        "_stream",
    )

    def __init__(
        self,
        stream: TextIO,
        *,
        width: int = 128,
        height: int = 64,
        home: bool = True,
        border: bool = True,
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"a display needs a size, not {width}x{height}")
        self._stream = stream
        self._size = (width, height)
        self._home = home
        self._border = border
        self._last: Image.Image | None = None
        self._asleep = False
        self._contrast = 255
        self._lock = threading.Lock()
        self._closed = False

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self._size

    @property
    def contrast_level(self) -> int:
        """The last contrast set (0-255)."""
        return self._contrast

    def show(self, image: object) -> None:
        """Draw ``image`` (mode ``"1"``, ``size``) unless it is the picture already drawn."""
        picture = _check_image(image, self._size)
        with self._lock:
            if self._closed or (
                self._last is not None and self._last.tobytes() == picture.tobytes()
            ):
                return
            picture = picture.copy()
            if not self._asleep:
                self._draw(picture)
            self._last = picture

    def contrast(self, level: int) -> None:
        """Keep ``level`` (0-255): a terminal cannot dim."""
        _check_contrast(level)
        self._contrast = level

    def sleep(self) -> None:
        """Draw the panel dark, keeping the picture for ``wake``."""
        with self._lock:
            if self._closed or self._asleep:
                return
            self._asleep = True
            self._draw(Image.new("1", self._size))

    def wake(self) -> None:
        """Draw the last picture again."""
        with self._lock:
            if self._closed or not self._asleep:
                return
            self._asleep = False
            self._draw(self._last if self._last is not None else Image.new("1", self._size))

    def close(self) -> None:
        """Stop drawing (the stream stays open). Idempotent."""
        with self._lock:
            self._closed = True

    def frame_text(self, image: Image.Image) -> str:
        """Exactly what ``show`` writes for ``image``."""
        lines = render_half_blocks(image)
        if self._border:
            rule = "\u2500" * self._size[0]
            lines = [f"\u250c{rule}\u2510", *(f"\u2502{line}\u2502" for line in lines)]
            lines.append(f"\u2514{rule}\u2518")
        return (HOME if self._home else "") + "".join(f"{line}\n" for line in lines)

    def _draw(self, image: Image.Image) -> None:
        try:
            self._stream.write(self.frame_text(image))
            self._stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: a closed stream
            raise DisplayError(f"terminal display: writing failed: {exc}") from exc


if TYPE_CHECKING:  # each adapter is the port (checked by mypy, free at run time)

    def _oled(display: OledDisplay) -> Display:
        return display

    def _terminal(display: TerminalDisplay) -> Display:
        return display
