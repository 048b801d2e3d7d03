"""Two real daemons on loopback UDP: manual peers, Noise handshake, messages both ways."""

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemons import Daemon, cli, cli_json, start_daemon


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Daemon, Daemon]]:
    a = start_daemon(tmp_path / "a")
    b = start_daemon(tmp_path / "b")
    try:
        yield a, b
    finally:
        for d in (a, b):
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()


def wait_for(pred, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_two_daemons_exchange_messages_both_ways_and_exit_cleanly(
    pair: tuple[Daemon, Daemon],
) -> None:
    a, b = pair
    cli(a.data, "peer", "add", b.number, b.public_key, b.addr)
    cli(b.data, "peer", "add", a.number, a.public_key, a.addr)
    sent_ab = cli_json(a.data, "msg", "send", b.number, "hello from a")
    sent_ba = cli_json(b.data, "msg", "send", a.number, "hello from b")
    assert sent_ab["status"] == "delivered" and sent_ba["status"] == "delivered"

    msgs_b = cli_json(b.data, "msg", "list")
    assert [(m["direction"], m["text"], m["number"]) for m in msgs_b] == [
        ("in", "hello from a", a.number),
        ("out", "hello from b", a.number),
    ]
    msgs_a = cli_json(a.data, "msg", "list")
    assert [(m["direction"], m["text"], m["status"]) for m in msgs_a] == [
        ("out", "hello from a", "delivered"),
        ("in", "hello from b", "received"),
    ]

    st_a, st_b = a.status(), b.status()
    assert st_a["number"] == a.number
    (sa,), (sb,) = st_a["sessions"], st_b["sessions"]
    assert sa["sas"] == sb["sas"]
    assert st_a["counters"]["handshakes_completed"] == 1

    assert (a.data / "control.sock").stat().st_mode & 0o777 == 0o600
    assert a.stop() < 2.0 and b.stop() < 2.0
    assert a.proc.returncode == 0 and b.proc.returncode == 0
    assert not (a.data / "control.sock").exists()


def test_peer_add_refuses_a_key_that_does_not_derive_to_the_number(
    pair: tuple[Daemon, Daemon],
) -> None:
    a, b = pair
    proc = cli(a.data, "peer", "add", a.number, b.public_key, b.addr, check=False)
    assert proc.returncode == 1 and "does not derive" in proc.stderr
    assert cli_json(a.data, "peer", "list") == []


def test_id_prints_number_and_key(tmp_path: Path) -> None:
    ident = cli_json(tmp_path, "init")
    assert cli_json(tmp_path, "id") == {
        "number": ident["number"],
        "public_key": ident["public_key"],
    }
    again = cli(tmp_path, "init", check=False)
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr
    assert (tmp_path / "identity.key").stat().st_mode & 0o777 == 0o600


def test_status_without_a_running_phone_says_so(tmp_path: Path) -> None:
    proc = cli(tmp_path, "status", check=False)
    assert proc.returncode == 3 and "no phone is running" in proc.stderr


def test_bad_config_names_the_key_and_exits_nonzero(tmp_path: Path) -> None:
    cli(tmp_path, "init")
    (tmp_path / "peerline.toml").write_text('[network]\nport = "abc"\n')
    proc = cli(tmp_path, "run", check=False, timeout=20)
    assert proc.returncode == 2 and "network.port" in proc.stderr
    assert not (tmp_path / "control.sock").exists()


class CapturingRelay:
    """A loopback UDP relay between two daemons that records what passes (for replay/tamper)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.ends: dict[tuple[str, int], tuple[str, int]] = {}
        self.seen: list[tuple[tuple[str, int], bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def join(self, x: int, y: int) -> None:
        self.ends = {("127.0.0.1", x): ("127.0.0.1", y), ("127.0.0.1", y): ("127.0.0.1", x)}
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, src = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            dst = self.ends.get(src)
            if dst is not None:
                self.seen.append((dst, data))
                self.sock.sendto(data, dst)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def test_replayed_and_tampered_packets_are_dropped_and_counted(pair: tuple[Daemon, Daemon]) -> None:
    a, b = pair
    relay = CapturingRelay()
    relay.join(a.port, b.port)
    try:
        relay_addr = f"127.0.0.1:{relay.port}"
        cli(a.data, "peer", "add", b.number, b.public_key, relay_addr)
        cli(b.data, "peer", "add", a.number, a.public_key, relay_addr)
        assert cli_json(a.data, "msg", "send", b.number, "authentic")["status"] == "delivered"
        to_b = [d for dst, d in relay.seen if dst[1] == b.port and d[0] == 0x53 and len(d) > 30]
        assert to_b, "no data packet captured"
        data = to_b[0]
        before = b.status()["counters"]
        relay.sock.sendto(data, ("127.0.0.1", b.port))  # replay
        tampered = bytearray(data)
        tampered[6:14] = (1000).to_bytes(8, "big")  # a fresh counter, so only the tag can catch it
        tampered[-1] ^= 0x80
        relay.sock.sendto(bytes(tampered), ("127.0.0.1", b.port))
        relay.sock.sendto(b"\x53\x01garbage", ("127.0.0.1", b.port))
        assert wait_for(
            lambda: b.status()["counters"]["dropped_malformed"] > before["dropped_malformed"]
        )
        after = b.status()["counters"]
        assert after["dropped_replay"] == before["dropped_replay"] + 1
        assert after["dropped_auth"] == before["dropped_auth"] + 1
        texts = [m["text"] for m in cli_json(b.data, "msg", "list") if m["direction"] == "in"]
        assert texts == ["authentic"]
    finally:
        relay.close()


def test_second_phone_on_the_same_data_dir_refuses_to_start(pair: tuple[Daemon, Daemon]) -> None:
    a, _ = pair
    proc = cli(a.data, "run", check=False, timeout=20)
    assert proc.returncode == 1 and "already running" in proc.stderr
    assert a.status()["number"] == a.number  # the first phone is untouched


def test_message_from_a_never_seen_phone_is_stored_and_its_number_filled_in(
    pair: tuple[Daemon, Daemon],
) -> None:
    a, b = pair
    cli(a.data, "peer", "add", b.number, b.public_key, b.addr)  # b does not know a
    assert cli_json(a.data, "msg", "send", b.number, "who am i")["status"] == "delivered"

    def has_number() -> bool:
        msgs = cli_json(b.data, "msg", "list")
        return len(msgs) == 1 and msgs[0]["number"] == a.number

    assert wait_for(has_number)
