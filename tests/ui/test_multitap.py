"""MultiTap (peerline.ui.multitap): letters on the digit keys, with a pause to fix each."""

from peerline.ui.multitap import Mode, MultiTap


def typed(keys: str, *, gap: float = 0.3) -> MultiTap:
    """Press ``keys`` ``gap`` seconds apart (``_`` is a pause long enough to fix a letter,
    ``^`` switches the mode)."""
    m = MultiTap()
    now = 0.0
    for key in keys:
        now += gap
        if key == "_":
            now += m.commit_s
            m.handle_timer(now=now)
        elif key == "^":
            m.switch_mode()
        else:
            m.key(key, now=now)
    m.handle_timer(now=now + m.commit_s)
    return m


def test_repeated_presses_cycle_through_the_keys_letters() -> None:
    assert typed("44_444_").text == "hi"
    assert typed("2222").text == "2"  # a, b, c, then the digit


def test_another_key_fixes_the_letter_at_once() -> None:
    assert typed("4433555").text == "hel"


def test_the_mode_switches_case_then_digits_and_0_is_a_space_then_0() -> None:
    m = typed("^44^05")
    assert m.text == "H05"  # in digit mode 0 is 0
    assert m.mode is Mode.DIGITS
    assert typed("440_3300").text == "h e0"  # 0 once: a space; twice: 0


def test_insert_types_a_character_as_it_is() -> None:
    m = MultiTap()
    m.key("4", now=0.0)
    m.insert("4")
    assert m.text == "g4" and m.pending is None


def test_backspace_drops_the_pending_letter_first() -> None:
    m = MultiTap()
    m.key("2", now=0.0)
    m.handle_timer(now=2.0)
    m.key("3", now=2.1)
    assert m.pending == "d" and m.text == "ad"
    m.backspace()
    assert m.text == "a"
    m.backspace()
    assert m.text == ""


def test_text_stops_at_its_maximum_length() -> None:
    m = MultiTap(max_len=3)
    for i, key in enumerate("2345"):
        m.key(key, now=float(i))
    m.handle_timer(now=10.0)
    assert m.text == "adg"
