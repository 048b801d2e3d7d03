"""The emulator's keys (peerline.adapters.terminal): characters from a terminal become key
presses and hook toggles; read here from a real pipe by the real reader thread."""

import os
import queue
from collections.abc import Iterator

import pytest

from peerline.adapters.terminal import TerminalInput, parse_keys


def test_plain_keys_soft_keys_and_backspace() -> None:
    assert parse_keys("12*#0") == [(k, False) for k in "12*#0"]
    assert parse_keys("aBcD\x7f") == [
        ("A", False),
        ("B", False),
        ("C", False),
        ("D", False),
        ("*", False),
    ]


def test_alt_is_a_long_press_and_arrows_are_soft_keys() -> None:
    assert parse_keys("\x1b0\x1b#") == [("0", True), ("#", True)]
    assert parse_keys("\x1b[A\x1b[B\x1b[C\x1b[D") == [
        ("C", False),
        ("D", False),
        ("A", False),
        ("B", False),
    ]
    assert parse_keys("\x1bOA") == [("C", False)]  # application cursor mode


def test_enter_space_and_h_toggle_the_hook_and_junk_is_ignored() -> None:
    assert parse_keys("\r \nh") == [("hook", False)] * 4
    assert parse_keys("xyz\x1b\x1b[Z\x00é") == []
    assert parse_keys("\x1b") == []  # a lone ESC (the rest never came)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


def test_the_reader_plays_each_key_as_a_press_with_a_release(pipe: tuple[int, int]) -> None:
    r, w = pipe
    edges: queue.Queue[tuple[str, bool, float]] = queue.Queue()
    hooks: queue.Queue[tuple[bool, float]] = queue.Queue()
    terminal = TerminalInput(r, press_s=0.03, long_s=0.1)
    try:
        terminal.hook.start(lambda off, at: hooks.put((off, at)))
        terminal.keys.start(lambda key, down, at: edges.put((key, down, at)))
        assert hooks.get(timeout=2)[0] is False  # on hook at start
        os.write(w, b"55\r\x1b7")
        got = [edges.get(timeout=2) for _ in range(4)]
        assert [(k, d) for k, d, _ in got] == [("5", True), ("5", False), ("5", True), ("5", False)]
        assert got[2][2] - got[1][2] >= 0.03  # let go between two presses of one key
        assert hooks.get(timeout=2)[0] is True
        down, up = edges.get(timeout=2), edges.get(timeout=2)
        assert (down[0], down[1], up[1]) == ("7", True, False) and up[2] - down[2] >= 0.1
    finally:
        terminal.close()
    terminal.close()  # idempotent
