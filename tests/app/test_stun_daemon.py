"""A phone configured with a STUN server shows what the server says in ``status --json``."""

import time
from pathlib import Path

from daemons import start_daemon

from peerline.types import Addr


def test_a_phone_reports_what_its_stun_server_says(coturn: Addr, tmp_path: Path) -> None:
    config = f"""\
[network]
port = 0
bind4 = "127.0.0.1"
bind6 = ""

[overlay]
lan = false

[nat]
stun_servers = ["{coturn[0]}:{coturn[1]}"]
"""
    phone = start_daemon(tmp_path / "p", config=config)
    try:
        deadline = time.monotonic() + 10
        while True:
            stun = phone.status()["nat"]["stun"]
            if stun and stun[0]["mapped"]:
                break
            assert time.monotonic() < deadline, stun
            time.sleep(0.1)
        assert stun[0]["server"] == list(coturn)
        assert stun[0]["mapped"] == ["127.0.0.1", phone.port]
    finally:
        phone.stop()
