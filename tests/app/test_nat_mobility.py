"""A phone whose address changes mid-session: messages resume within seconds, both ways.

Two public phones in the lab have a secure session; one of them gets a new address (its old
one removed, as a DHCP renewal or a move from Wi-Fi to Ethernet would). The moved phone notices
within a second, sends a keepalive from the new address, the other phone's path follows it,
and a message sent towards the moved phone afterwards arrives.
"""

import time
from pathlib import Path

import pytest
from lab_phones import PORT, control, start_phone, wait_until

from netlab import Lab

pytestmark = pytest.mark.netns
NEW_ADDR = "198.51.100.77"


def test_messages_resume_after_an_address_change(lab: Lab, tmp_path: Path) -> None:
    a_host, b_host = lab.host("a"), lab.host("b")
    a, b = tmp_path / "a", tmp_path / "b"
    start_phone(a_host, a)
    wait_until(lambda: control(a, "status"), 15, "phone a")
    start_phone(b_host, b, "--seed", f"{a_host.addr}:{PORT}")
    wait_until(lambda: control(b, "status"), 15, "phone b")
    number_a, number_b = control(a, "id")["number"], control(b, "id")["number"]
    wait_until(lambda: control(b, "lookup", {"number": number_a})["found"], 20, "a's record")
    first = control(b, "msg.send", {"number": number_a, "text": "hello", "wait_s": 10})
    assert first["status"] == "delivered", first

    # Renumbered: the old address goes, a new one comes (deleting a primary address after
    # adding a second one would take the second with it).
    b_host.run(["ip", "addr", "del", f"{b_host.addr}/24", "dev", "eth0"])
    b_host.run(["ip", "addr", "add", f"{NEW_ADDR}/24", "dev", "eth0"])
    moved_at = time.monotonic()

    def a_follows() -> bool:
        sessions = control(a, "status")["sessions"]
        return any(s["endpoint"] and s["endpoint"][0] == NEW_ADDR for s in sessions)

    wait_until(a_follows, 5, "a's path to move to b's new address")
    sent = control(a, "msg.send", {"number": number_b, "text": "found you", "wait_s": 10})
    assert sent["status"] == "delivered", sent
    resumed = time.monotonic() - moved_at
    print(f"messages resumed {resumed:.2f} s after the address change")
    assert resumed < 5
