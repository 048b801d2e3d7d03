"""STUN Binding against a real STUN server: coturn (Debian's `coturn`), on loopback.

The client is the phone's sans-I/O StunClient driven by the real asyncio UDP driver; the
server is coturn's `turnserver` in STUN-only mode. A daemon configured with the same server
shows what it learned in `status --json`.
"""

import asyncio

from coturn_server import free_udp_port
from peerline.adapters.rng import OsRng
from peerline.proto.nat.stun_client import BindingFailed, BindingResult, StunClient
from peerline.runtime.udp import UdpDriver
from peerline.types import Addr


def test_binding_against_coturn_returns_our_socket_address(coturn: Addr) -> None:
    async def run() -> tuple[list[BindingResult | BindingFailed], Addr]:
        client = StunClient(OsRng())
        events: list[BindingResult | BindingFailed] = []
        driver = UdpDriver(client, events.append)
        (local,) = await driver.start(bind4="127.0.0.1", bind6="", port=0)
        client.request(coturn, now=asyncio.get_running_loop().time())
        driver.poke()
        for _ in range(50):
            if events:
                break
            await asyncio.sleep(0.05)
        driver.close()
        return events, local

    events, local = asyncio.run(run())
    (result,) = events
    assert isinstance(result, BindingResult), result
    assert result.mapped == local
    assert result.server == coturn and result.responder == coturn
    assert 0 < result.rtt_s < 1


def test_a_silent_server_times_out_after_the_retransmissions() -> None:
    async def run() -> tuple[list[BindingResult | BindingFailed], StunClient]:
        client = StunClient(OsRng(), rto_s=0.05, attempts=3)
        events: list[BindingResult | BindingFailed] = []
        driver = UdpDriver(client, events.append)
        await driver.start(bind4="127.0.0.1", bind6="", port=0)
        client.request(("127.0.0.1", free_udp_port()), now=asyncio.get_running_loop().time())
        driver.poke()
        await asyncio.sleep(0.6)
        driver.close()
        return events, client

    events, client = asyncio.run(run())
    (failed,) = events
    assert isinstance(failed, BindingFailed) and failed.reason == "timeout"
    assert client.counters.retransmissions == 2
