"""A newcomer's first hour with the ``peerline`` command (issue 20): one test per surprise
reported, through the real CLI against real daemons on loopback, asserting message and exit
code. Items 6 and 7 (file: and alsa: audio) are in test_audio_daemons.py, 10 and 11 (nothing
leaves loopback) in test_loopback_demo.py, 12's help and 13 in test_cli_help.py."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from daemons import Daemon, cli, cli_json, knows, wait_for

PEERLINE = [sys.executable, "-m", "peerline"]
Phones = Callable[..., Daemon]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``peerline ARGS`` exactly as given (global options wherever the test puts them)."""
    return subprocess.run(
        [*PEERLINE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert "Exception ignored" not in proc.stderr, proc.stderr


# -- 1: status says what matters, without raw Python ----------------------------------------
def test_1_status_shows_addresses_overlay_role_and_audio(phones: Phones) -> None:
    a = phones("a")
    b = phones("b", "--seed", a.addr)
    assert wait_for(lambda: b.status()["overlay"]["joined"], timeout=20)
    proc = cli(b.data, "status")
    text = proc.stdout
    assert "[[" not in text and "['" not in text, text
    assert f"listen    udp 127.0.0.1:{b.port}" in text, text
    assert re.search(r"overlay\s+joined; supernode", text), text
    assert re.search(r"audio\s+file:\S+ \(ready\)", text), text
    assert "lan       off" in text, text


# -- 2: not-found and lookup results read as sentences -----------------------------------------
def test_2_lookup_and_dial_say_not_found_once_with_records_and_brackets(phones: Phones) -> None:
    a = phones("a")
    b = phones("b", "--seed", a.addr)
    assert wait_for(lambda: b.status()["overlay"]["joined"], timeout=20)
    missing = cli(a.data, "lookup", "1111 2222 3333", check=False)
    assert missing.returncode == 1, missing
    assert missing.stdout.count("not found") + missing.stdout.count("no phone") == 1, missing
    assert "(not found)" not in missing.stdout
    dialled = cli(a.data, "dial", "111122223333", check=False)
    assert dialled.returncode == 1, dialled
    assert "failed: no phone has this number (unknown_number)" in dialled.stdout, dialled
    assert dialled.stdout.count("unknown_number") == 1
    found = cli(a.data, "lookup", b.number)
    assert "1 record," in found.stdout and "record(s)" not in found.stdout, found.stdout
    assert "0 hops" not in found.stdout
    assert f"127.0.0.1:{b.port} (host)" in found.stdout


@pytest.mark.skipif(not socket.has_ipv6, reason="NO IPv6 on this host: brackets untestable")
def test_2_ipv6_addresses_are_bracketed(phones: Phones) -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("NO ::1 on this host: IPv6 brackets untested")
    v6 = '[network]\nport = 0\nbind4 = ""\nbind6 = "::1"\n[overlay]\nlan = false\n'
    a = phones("a", config=v6)
    b = phones("b", config=v6)
    knows(a, b)  # no directory here: by hand, [::1]:PORT
    st = cli(b.data, "status").stdout
    assert f"listen    udp [::1]:{b.port}" in st, st
    peers = cli(a.data, "peer", "list").stdout
    assert f"[::1]:{b.port}" in peers, peers


# -- 3: values the phone would refuse are usage errors (2), phone or no phone -----------------
BAD_VALUES = [
    ("msg", "send", "482155901736", ""),
    ("msg", "send", "482155901736", "hi", "--wait", "999"),
    ("msg", "list", "--limit", "-1"),
    ("dtmf", "XYZ"),
    ("answer", "--call-id", "zz"),
    ("peer", "add", "482155901736", "ab" * 32, "127.0.0.1:99999"),
    ("dial", "12345"),
    ("history", "--limit", "0"),
]


@pytest.mark.parametrize("argv", BAD_VALUES, ids=lambda a: " ".join(a)[:40])
def test_3_bad_values_exit_2_before_any_phone_is_asked(tmp_path: Path, argv: tuple[str]) -> None:
    proc = run(*argv, "--data", str(tmp_path / "nobody"))
    assert proc.returncode == 2, proc
    assert "no phone is running" not in proc.stderr
    assert "error: argument" in proc.stderr, proc.stderr
    no_traceback(proc)


def test_3_exit_codes_with_a_phone_running(phones: Phones, tmp_path: Path) -> None:
    a = phones("a")
    for argv in BAD_VALUES:
        assert cli(a.data, *argv, check=False).returncode == 2, argv
    # a value only the phone can judge is a usage error too (the phone says bad_request)
    refused = cli(
        a.data, "contacts", "add", "482155901736", "X", "--speed-dial", "500", check=False
    )
    assert refused.returncode == 2 and "speed" in refused.stderr, refused
    # failures the phone reports are 1; no phone is 3
    assert cli(a.data, "hangup", check=False).returncode == 1
    assert run("status", "--data", str(tmp_path / "none")).returncode == 3


# -- 4: global options anywhere, --json honoured everywhere -----------------------------------
def test_4_global_options_go_before_or_after_the_command(phones: Phones, tmp_path: Path) -> None:
    a = phones("a")
    before = run("--data", str(a.data), "--json", "status")
    after = run("status", "--json", "--data", str(a.data))
    assert before.returncode == after.returncode == 0, before.stderr
    assert json.loads(before.stdout)["number"] == json.loads(after.stdout)["number"] == a.number
    init = run("--json", "init", "--data", str(tmp_path / "fresh"))
    assert json.loads(init.stdout)["number"].isdigit(), init
    verbose = run("-v", "status", "--data", str(a.data))
    assert verbose.returncode == 0 and "peerline: -> status" in verbose.stderr, verbose.stderr
    assert "peerline: <- " in verbose.stderr
    quiet = run("status", "--data", str(a.data), "--log-level", "warning")
    assert quiet.stderr == "", quiet.stderr


def test_4_run_json_prints_its_ready_object(tmp_path: Path) -> None:
    argv = [
        *PEERLINE, "--json", "run", "--data", str(tmp_path / "p"), "--port", "0",
        "--bind", "127.0.0.1", "--no-lan", "--hw", "none", "--audio", "null",
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.read(1) + _read_json_object(proc.stdout))
        assert ready["ready"] is True and ready["listen"][0].startswith("127.0.0.1:"), ready
        assert ready["control"].endswith("control.sock")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def _read_json_object(stream: "subprocess.IO[str]") -> str:  # type: ignore[name-defined]
    text = ""
    while not text.endswith("}\n") or text.count("{") + 1 != text.count("}"):
        chunk = stream.readline()
        assert chunk, text
        text += chunk
    return text


# -- 5: dial follows the call, shows progress, cancels on Ctrl-C ------------------------------
def test_5_dial_follows_a_call_to_a_stopped_phone_and_ctrl_c_cancels_it(phones: Phones) -> None:
    a = phones("a")
    b = phones("b")
    knows(a, b)
    assert cli(a.data, "dial", b.number).returncode == 0  # rings: a session is up
    cli(a.data, "hangup")
    b.stop()
    # The command shows its progress at once and does not return until it is settled.
    proc = subprocess.Popen(
        [*PEERLINE, "dial", b.number, "--data", str(a.data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    t0 = time.monotonic()
    first = proc.stderr.readline()
    assert "calling" in first or "looking up" in first, first
    assert time.monotonic() - t0 < 3
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, (out, err)
    assert "cancelled" in err and "Traceback" not in err, err
    assert wait_for(lambda: all(c["state"] == "ended" for c in cli_json(a.data, "status")["calls"]))
    last = cli_json(a.data, "status")["calls"][0]
    assert last["reason"] == "cancelled", last
    # Left alone, it reports the failure itself (exit 1), not "dialing" and 0.
    failed = cli(a.data, "dial", b.number, check=False, timeout=90)
    assert failed.returncode == 1, failed
    assert "failed: the far phone did not answer" in failed.stdout, failed.stdout


# -- 7: an audio device that does not work shows in status ----------------------------------
def test_7_a_missing_alsa_device_shows_in_plain_status(phones: Phones) -> None:
    a = phones("a", "--audio", "alsa:peerline-no-such-card")
    text = cli(a.data, "status").stdout
    assert re.search(r"audio\s+alsa:peerline-no-such-card: PROBLEM: .+", text), text


# -- 8: no tracebacks ------------------------------------------------------------------------
def test_8_bad_paths_and_closed_pipes_give_sentences_not_tracebacks(tmp_path: Path) -> None:
    wav = tmp_path / "in.wav"
    _silence(wav)
    audio = run(
        "run", "--data", str(tmp_path / "p"), "--port", "0", "--bind", "127.0.0.1",
        "--no-lan", "--hw", "none", "--audio", f"file:{wav},/nonexistent-dir/o.wav",
    )  # fmt: skip
    assert audio.returncode == 2 and "/nonexistent-dir/o.wav" in audio.stderr, audio
    no_traceback(audio)
    assert not (tmp_path / "p" / "identity.key").exists()  # refused before anything is made
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    for argv in (["run"], ["init"]):
        proc = run(*argv, "--data", str(a_file))
        assert proc.returncode == 2 and "is a file" in proc.stderr, proc
        assert "peerline.toml" not in proc.stderr
        no_traceback(proc)
    unwritable = run("init", "--data", "/sys/peerline-test")  # not writable, even by root
    assert unwritable.returncode == 2 and "cannot create it" in unwritable.stderr, unwritable
    no_traceback(unwritable)
    status = run("status", "--data", str(a_file))
    assert status.returncode == 3, status
    no_traceback(status)


def test_8_a_closed_pipe_is_no_traceback(phones: Phones) -> None:
    a = phones("a")
    cmd = " ".join([*PEERLINE, "status", "--json", "--data", str(a.data)])
    proc = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {cmd} | true; echo rc=$?"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    no_traceback(proc)
    assert re.search(r"rc=(0|141)$", proc.stdout.strip()), proc


# -- 9: port in use ------------------------------------------------------------------------
def test_9_a_port_in_use_is_named_with_a_hint_before_anything_is_created(
    phones: Phones, tmp_path: Path
) -> None:
    a = phones("a")
    fresh = tmp_path / "second"
    proc = run(
        "run", "--data", str(fresh), "--port", str(a.port), "--bind", "127.0.0.1",
        "--no-lan", "--hw", "none", "--audio", "null",
    )  # fmt: skip
    assert proc.returncode == 1, proc
    assert f"UDP port {a.port} is in use on 127.0.0.1:{a.port}" in proc.stderr, proc.stderr
    assert "--port" in proc.stderr
    no_traceback(proc)
    assert not (fresh / "identity.key").exists() and not (fresh / "peerline.db").exists()


# -- 12: times in msg list; init's config runs, and errors name the file ----------------------
def test_12_msg_list_shows_times(phones: Phones) -> None:
    a = phones("a")
    b = phones("b")
    knows(a, b)
    cli(a.data, "msg", "send", b.number, "hello")
    listed = cli(a.data, "msg", "list").stdout
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d -> ", listed, re.M), listed


def test_12_every_kind_init_offers_runs_or_says_why_naming_the_file(tmp_path: Path) -> None:
    data = tmp_path / "p"
    assert run("init", "--data", str(data)).returncode == 0
    config = data / "peerline.toml"
    text = config.read_text()
    for kind in ("auto", "none", "pi", "emulator"):  # what the comment above kind offers
        assert f'"{kind}"' in text.split("kind =")[0].rsplit("[hardware]", 1)[1], kind
        config.write_text(text.replace('kind = "auto"', f'kind = "{kind}"', 1))
        argv = [
            *PEERLINE, "run", "--data", str(data), "--port", "0", "--bind", "127.0.0.1",
            "--no-lan", "--audio", "null",
        ]  # fmt: skip
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        ready = any(line.strip() == "ready" for line in iter(proc.stdout.readline, ""))
        if ready:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        if kind == "emulator":  # no terminal here: refused, and the error says where and why
            assert not ready and proc.returncode == 2, (kind, err)
            assert str(config) in err and "terminal" in err, err
        else:  # pi off a Pi runs without its parts, and says so
            assert ready and proc.returncode == 0, (kind, err)
        assert "Traceback" not in err, err


def _silence(path: Path) -> None:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(bytes(3200))


def test_14_status_does_not_load_the_phone(tmp_path: Path) -> None:
    """What makes ``status`` fast: the CLI imports no crypto, asyncio or phone core (the time
    itself is bench/cli_latency.py's to measure)."""
    code = (
        "import sys; from peerline.app.cli import main; main(['status', '--data', sys.argv[1]]);"
        " heavy = [m for m in ('nacl', 'asyncio', 'peerline.proto.phone', 'peerline.app.daemon',"
        " 'opuslib', 'zeroconf') if m in sys.modules]; print(heavy)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ),
    )
    assert proc.stdout.strip() == "[]", proc
