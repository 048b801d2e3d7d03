"""The ``peerline`` command explains itself (issue 20, items 12 and 13): every command's help
has examples and says what each argument is; the README's command and exit-code tables match
the parser; the man page renders; bash completes commands, choices and options."""

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from peerline.app.cli.exits import EXIT_CODES
from peerline.app.cli.parser import build_parser, commands, examples

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MANPAGE = ROOT / "docs" / "peerline.1"
GLOBAL = {"-h", "--help", "--data", "--json", "-v", "--verbose", "--log-level"}
ALL = list(commands(build_parser()))


@pytest.mark.parametrize(("name", "parser"), ALL[1:], ids=[n for n, _ in ALL[1:]])
def test_every_command_has_examples_and_help_for_each_argument(
    name: str, parser: argparse.ArgumentParser
) -> None:
    lines = examples(parser)
    assert lines, f"{name} --help has no examples"
    assert all("peerline" in line for line in lines), lines
    assert any(name in line for line in lines), (name, lines)
    for action in parser._actions:
        assert action.help, f"{name}: {action.dest} has no help"
        default = action.default
        takes_value = action.option_strings and action.nargs != 0
        if takes_value and default not in (None, argparse.SUPPRESS, False):
            assert "default" in action.help, f"{name}: {action.dest} hides its default"


def test_top_help_lists_examples_and_exit_codes() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "peerline", "--help"], capture_output=True, text=True, check=True
    )
    assert "examples:" in proc.stdout and "exit codes:" in proc.stdout
    for code, text in EXIT_CODES.items():
        assert f"{code:<3} {text}" in proc.stdout
    sub = subprocess.run(
        [sys.executable, "-m", "peerline", "msg", "send", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "examples:" in sub.stdout and "default: 10" in sub.stdout, sub.stdout


def test_the_readme_exit_codes_are_the_parsers() -> None:
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", README.read_text(), re.M)
    assert {int(code): text.replace("\\|", "|") for code, text in rows} == EXIT_CODES


def test_the_readme_command_table_names_every_command_and_option() -> None:
    table = [line for line in README.read_text().splitlines() if line.startswith("| `peerline ")]
    for name, parser in ALL[1:]:
        words = name.split(" ")[1:]
        row = next(
            (r for r in table if f"`peerline {' '.join(words)}" in r or _alt(r, words)), None
        )
        assert row is not None, f"README's command table has no row for {name}"
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in GLOBAL and flag.startswith("--"):
                    assert flag in row, f"README: {name} row lacks {flag}"


def _alt(row: str, words: list[str]) -> bool:
    """``peerline answer ... / hangup ...``: later commands of a row are written without
    ``peerline`` (and a group's without the group: ``peer add ... / peer list``)."""
    return f"/ `{' '.join(words)}" in row


def test_the_man_page_renders_without_warnings(tmp_path: Path) -> None:
    man = shutil.which("man")
    if man is None:
        pytest.skip("NO man here (apt install man-db groff-base): man page not rendered")
    proc = subprocess.run(
        [man, "--warnings", "-l", str(MANPAGE)],
        capture_output=True,
        text=True,
        env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr
    text = re.sub(".\x08", "", proc.stdout)  # man's overstrike bold and underline
    for heading in ("SYNOPSIS", "EXAMPLES", "EXIT STATUS", "FILES", "ENVIRONMENT"):
        assert heading in text, heading
    assert "peerline dial 4821 5590 1736" in text


def _complete(words: list[str], script: str) -> list[str]:
    """What bash offers at the last of ``words`` (COMP_WORDS), through shtab's function."""
    line = " ".join(words)
    program = (
        f"{script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1};"
        f" COMP_LINE={line!r}; COMP_POINT={len(line)};"
        ' _shtab_peerline; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    proc = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return proc.stdout.split()


def test_bash_completes_commands_choices_and_options() -> None:
    if shutil.which("bash") is None:
        pytest.skip("NO bash here: completion untested")
    script = subprocess.run(
        [sys.executable, "-m", "peerline", "completion", "bash"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "complete" in script and "_shtab_peerline" in script
    assert _complete(["peerline", "di"], script) == ["dial"]
    assert set(_complete(["peerline", "forward", "set", ""], script)) == {
        "always",
        "busy",
        "no-answer",
        "offline",
    }
    assert _complete(["peerline", "mute", ""], script) == ["off", "on"] or set(
        _complete(["peerline", "mute", ""], script)
    ) == {"on", "off"}
    assert "--attended" in _complete(["peerline", "transfer", "--a"], script)
    assert _complete(["peerline", "status", "--da"], script) == ["--data"]
