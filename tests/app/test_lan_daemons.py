"""Three real phones on one LAN, no seeds and no config file: zeroconf does everything.

The LAN is built for the test from network namespaces: one namespace per phone, each with a
veth into a bridge namespace (a switch), addresses in 10.77.0.0/24 and nothing else. The
phones run with the default config (port 4720 on every address), find each other over mDNS,
take distinct extensions, form an overlay through each other, resolve each other's numbers and
deliver messages dialled by extension.
"""

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netns_lan import netns_lan, run_in, stop_all

from peerline.app.control_client import call
from peerline.app.paths import CONTROL_SOCKET_NAME

pytestmark = pytest.mark.netns
PHONES = 3


@pytest.fixture
def lan() -> Iterator[list[str]]:
    with netns_lan(PHONES) as phones:
        yield phones


def control(data: Path, cmd: str, args: dict[str, Any] | None = None) -> Any:
    return call(data / CONTROL_SOCKET_NAME, cmd, args, timeout=30)


def wait_until(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_phones_with_no_seeds_and_no_config_find_each_other_by_extension(
    lan: list[str], tmp_path: Path
) -> None:
    procs: list[subprocess.Popen[str]] = []
    datas = [tmp_path / f"phone{i}" for i in range(PHONES)]
    try:
        for ns, data in zip(lan, datas, strict=True):
            procs.append(run_in(ns, data))

        def settled() -> bool:
            try:
                views = [control(d, "lan") for d in datas]
            except Exception:  # a phone still starting up
                return False
            own = [v["extension"] for v in views]
            return (
                all(own)
                and len(set(own)) == PHONES
                and all(len(v["phones"]) == PHONES - 1 for v in views)
                and all(all(p["extension"] for p in v["phones"]) for v in views)
            )

        wait_until(settled, 40, "distinct extensions, each phone seeing the other two")
        ids = [control(d, "id") for d in datas]
        views = [control(d, "lan") for d in datas]
        extensions = [v["extension"] for v in views]
        for i, view in enumerate(views):
            seen = {p["number"]: p["extension"] for p in view["phones"]}
            assert seen == {ids[j]["number"]: extensions[j] for j in range(PHONES) if j != i}

        # The LAN phones formed an overlay with no seed: numbers resolve through it.
        def resolves() -> bool:
            return all(
                control(datas[i], "lookup", {"number": ids[j]["number"]})["found"]
                for i in range(PHONES)
                for j in range(PHONES)
                if i != j
            )

        wait_until(resolves, 40, "every number to resolve through the LAN-formed overlay")

        # Dialling by extension reaches the phone that holds it.
        for i in range(PHONES):
            j = (i + 1) % PHONES
            sent = control(datas[i], "msg.send", {"number": extensions[j], "text": f"to {j}"})
            assert sent["status"] == "delivered", sent
            got = [m for m in control(datas[j], "msg.list") if m["direction"] == "in"]
            assert any(m["text"] == f"to {j}" and m["number"] == ids[i]["number"] for m in got)
    finally:
        stop_all(procs, datas)
