"""A phone behind a router that offers NAT-PMP (Debian's miniupnpd in the lab) maps its port,
publishes the mapped address first in its record, and so is reachable directly even from a
symmetric NAT (a pair that would otherwise need a relay); at exit it deletes the mapping.
"""

from pathlib import Path

import pytest
from lab_phones import PORT, control, start_phone, wait_until

from netlab import Lab, NatBehaviour
from netlab.miniupnpd import available, start_miniupnpd

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not available(), reason="miniupnpd-nftables is not installed"),
]


def test_a_port_mapped_phone_is_called_directly_and_releases_its_mapping(
    lab: Lab, tmp_path: Path
) -> None:
    seed_host = lab.host("seed")
    router_a = lab.router("ra", nat=NatBehaviour.SYMMETRIC)
    router_b = lab.router("rb", nat=NatBehaviour.PORT_RESTRICTED)
    upnp = start_miniupnpd(router_b, stun=seed_host, workdir=tmp_path / "miniupnpd")
    a_host = lab.host("a", behind=router_a)
    b_host = lab.host("b", behind=router_b)
    seed, a, b = tmp_path / "seed", tmp_path / "a", tmp_path / "b"
    logs = [p / "daemon.log" for p in (seed, a, b)]
    start_phone(seed_host, seed)
    wait_until(lambda: control(seed, "status"), 15, "the seed phone", logs)
    start_phone(a_host, a, "--seed", f"{seed_host.addr}:{PORT}")
    b_proc = start_phone(b_host, b, "--seed", f"{seed_host.addr}:{PORT}")

    def mapped() -> bool:
        return bool(control(b, "status")["nat"]["port_mapping"]["state"] == "mapped")

    wait_until(mapped, 20, "b's port mapping", logs)
    external = control(b, "status")["nat"]["port_mapping"]["external"]
    assert external[0] == router_b.addr
    assert "dnat" in upnp.rules()
    number_b = control(b, "id")["number"]

    def published_mapped() -> bool:
        found = control(a, "lookup", {"number": number_b})
        if not found["found"]:
            return False
        first = found["records"][0]["addresses"][0]
        return bool(first == {"kind": "mapped", "host": external[0], "port": external[1]})

    wait_until(published_mapped, 30, "b's record to list the mapped address first", logs)
    dialed = control(a, "dial", {"number": number_b})
    assert dialed["path"] == "direct" and dialed["addr"] == external, dialed
    sent = control(a, "msg.send", {"number": number_b, "text": "mapped", "wait_s": 10})
    assert sent["status"] == "delivered"

    b_proc.terminate()  # a clean exit: the mapping is deleted
    b_proc.wait(10)
    assert "dnat" not in upnp.rules(), upnp.rules()
    assert "port mapping" in (b / "daemon.log").read_text()
