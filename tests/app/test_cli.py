"""The ``peerline`` CLI's handling of a phone that does not answer in time (operator.md §8)."""

from pathlib import Path
from typing import Any

import pytest

from peerline.app import cli


def test_a_phone_that_does_not_answer_in_time_is_exit_code_1_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def slow_phone(*args: Any, **kwargs: Any) -> Any:
        raise TimeoutError("timed out")  # what the control client's socket raises

    monkeypatch.setattr(cli, "call", slow_phone)
    assert cli.main(["status", "--data", str(tmp_path)]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert "did not answer in time" in err and "Traceback" not in err


def test_dial_without_a_number_asks_the_phone_for_its_hotline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[tuple[str, Any]] = []

    def phone(path: Path, cmd: str, args: Any, **kwargs: Any) -> Any:
        sent.append((cmd, args))
        call = {"state": "ringback", "reason": None}
        return {"number": "482155901736", "path": "direct", "sas": None, "call": call}

    monkeypatch.setattr(cli, "call", phone)
    assert cli.main(["dial", "--data", str(tmp_path)]) == 0
    assert sent == [("dial", {"number": ""})]
    assert "calling 4821 5590 1736" in capsys.readouterr().out
