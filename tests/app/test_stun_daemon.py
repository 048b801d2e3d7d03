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


def test_a_supernode_phone_answers_stun_binding_requests(tmp_path: Path) -> None:
    import asyncio

    from peerline.adapters.rng import OsRng
    from peerline.proto.nat.stun_client import BindingFailed, BindingResult, StunClient
    from peerline.runtime.udp import UdpDriver

    phone = start_daemon(tmp_path / "reflector")
    try:

        async def ask() -> tuple[list[BindingResult | BindingFailed], Addr]:
            client = StunClient(OsRng())
            events: list[BindingResult | BindingFailed] = []
            driver = UdpDriver(client, events.append)
            (local,) = await driver.start(bind4="127.0.0.1", bind6="", port=0)
            client.request(("127.0.0.1", phone.port), now=asyncio.get_running_loop().time())
            driver.poke()
            for _ in range(40):
                if events:
                    break
                await asyncio.sleep(0.05)
            driver.close()
            return events, local

        events, local = asyncio.run(ask())
        (result,) = events
        assert isinstance(result, BindingResult) and result.mapped == local
        assert phone.status()["nat"]["server"]["answered"] == 1
    finally:
        phone.stop()
