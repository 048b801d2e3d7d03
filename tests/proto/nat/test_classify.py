"""RFC 5780 classification (proto.nat.classify) against a scripted NAT and a two-address server.

The scripted world decides, for each request the real StunClient sends, what a NAT of a given
behaviour and an RFC 5780 server would make of it: the mapped address it would report, or no
answer at all when the NAT's filter would drop it.
"""

import pytest

from peerline.proto.nat.classify import Filtering, Mapping, NatClassifier
from peerline.proto.nat.stun_client import BindingFailed, BindingResult, StunClient
from peerline.sim.rng import SeededRng
from peerline.types import Addr
from peerline.wire.stun import CHANGE_IP, CHANGE_PORT, decode_stun

PRIMARY: Addr = ("192.0.2.10", 3478)
OTHER: Addr = ("192.0.2.11", 3479)
LOCAL: Addr = ("10.0.0.2", 4720)


def nat_answer(mapping: str, filtering: str, dst: Addr, change: int) -> tuple[Addr, Addr] | None:
    """(mapped address, responder) the client would see, or None if the NAT drops the answer."""
    if mapping == "none":
        mapped = LOCAL
    elif mapping == "eim":
        mapped = ("198.51.100.1", 40000)
    elif mapping == "adm":
        mapped = ("198.51.100.1", 40000 + (dst[0] == OTHER[0]))
    else:  # apdm
        mapped = ("198.51.100.1", 40000 + 1000 * (dst[0] == OTHER[0]) + dst[1] % 1000)
    responder = (
        OTHER[0] if change & CHANGE_IP else dst[0],
        OTHER[1] if change & CHANGE_PORT else dst[1],
    )
    if filtering == "eif" or responder == dst:
        return mapped, responder
    if filtering == "adf" and responder[0] == dst[0]:
        return mapped, responder
    return None


def classify(mapping: str, filtering: str, *, server_has_other: bool = True) -> NatClassifier:
    stun = StunClient(SeededRng(1), rto_s=0.1, attempts=2)
    classifier = NatClassifier(stun, local={LOCAL})
    now = 0.0
    classifier.start(PRIMARY, now=now)
    for _ in range(20):
        for data, dst in stun.datagrams_to_send(now=now):
            request = decode_stun(data)
            answer = nat_answer(mapping, filtering, dst, request.change)
            if answer is None:
                continue
            event: BindingResult | BindingFailed = BindingResult(
                txid=request.txid,
                server=dst,
                mapped=answer[0],
                other=OTHER if server_has_other else None,
                origin=answer[1],
                responder=answer[1],
                rtt_s=0.01,
            )
            stun._pending.pop(request.txid, None)  # the client consumed its answer
            classifier.on_stun(event, now=now)
        now += 1.0
        stun.handle_timer(now=now)
        while (e := stun.next_event()) is not None:
            classifier.on_stun(e, now=now)
        if classifier.result is not None:
            return classifier
    raise AssertionError("classification did not finish")


@pytest.mark.parametrize(
    ("mapping", "filtering", "want_mapping", "want_filtering"),
    [
        ("none", "eif", Mapping.NONE, Filtering.ENDPOINT_INDEPENDENT),
        ("eim", "eif", Mapping.ENDPOINT_INDEPENDENT, Filtering.ENDPOINT_INDEPENDENT),
        ("eim", "adf", Mapping.ENDPOINT_INDEPENDENT, Filtering.ADDRESS_DEPENDENT),
        ("eim", "apdf", Mapping.ENDPOINT_INDEPENDENT, Filtering.ADDRESS_AND_PORT_DEPENDENT),
        ("adm", "apdf", Mapping.ADDRESS_DEPENDENT, Filtering.ADDRESS_AND_PORT_DEPENDENT),
        ("apdm", "apdf", Mapping.ADDRESS_AND_PORT_DEPENDENT, Filtering.ADDRESS_AND_PORT_DEPENDENT),
    ],
)
def test_each_behaviour_is_told_apart(
    mapping: str, filtering: str, want_mapping: Mapping, want_filtering: Filtering
) -> None:
    result = classify(mapping, filtering).result
    assert result is not None
    assert (result.mapping, result.filtering) == (want_mapping, want_filtering)


def test_a_server_without_a_second_address_gives_unknown_with_a_reason() -> None:
    result = classify("eim", "eif", server_has_other=False).result
    assert result is not None and result.filtering is Filtering.UNKNOWN
    assert "second address" in result.reason
