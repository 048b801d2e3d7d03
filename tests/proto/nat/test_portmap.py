"""PortMapper (proto.nat.portmap): the NAT-PMP client's timers and trust rules (RFC 6886
§3.1 retransmission, §3.3 renewal, §3.4 delete, §3.6 epoch), against a scripted gateway.

Time starts at 0.0 and moves only to ``get_timer()`` or by named constants.
"""

import hypothesis.strategies as st
import pytest
from hypothesis import given

from fuzzing import mutations  # type: ignore[import-not-found, unused-ignore]
from peerline.errors import LocalProtocolError
from peerline.proto.nat.portmap import (
    ATTEMPTS,
    RELEASE_ATTEMPTS,
    RESET_JITTER_S,
    RTO_S,
    MappingAcquired,
    MappingFailed,
    MappingLost,
    MappingReleased,
    PortMapEvent,
    PortMapper,
    PortMapState,
)
from peerline.sim.rng import SeededRng
from peerline.types import Addr
from peerline.wire.natpmp import (
    NATPMP_PORT,
    RECOMMENDED_LIFETIME,
    ErrorResponse,
    ExternalAddressRequest,
    ExternalAddressResponse,
    MapRequest,
    MapResponse,
    Opcode,
    ResultCode,
    decode_request,
    encode_request,
    encode_response,
)

GW: Addr = ("10.1.0.1", NATPMP_PORT)
EXT = "203.0.113.1"
PORT = 4720
HALF = RECOMMENDED_LIFETIME / 2


class Gateway:
    """A NAT-PMP gateway that booted at ``booted_at`` (client time) and grants what it is
    asked for, or ``grant_port`` / ``grant_lifetime`` / ``result`` when set."""

    def __init__(self, *, booted_at: float = -1000.0) -> None:
        self.booted_at = booted_at
        self.address = EXT
        self.grant_port: int | None = None
        self.grant_lifetime: int | None = None
        self.result = ResultCode.SUCCESS
        self.requests: list[ExternalAddressRequest | MapRequest] = []

    def epoch(self, now: float) -> int:
        return int(now - self.booted_at)

    def answer(self, data: bytes, now: float) -> bytes:
        request = decode_request(data)
        self.requests.append(request)
        if isinstance(request, ExternalAddressRequest):
            return encode_response(
                ExternalAddressResponse(
                    result=self.result, epoch=self.epoch(now), address=self.address
                )
            )
        delete = request.lifetime == 0
        return encode_response(
            MapResponse(
                opcode=request.opcode,
                result=self.result,
                epoch=self.epoch(now),
                internal_port=request.internal_port,
                external_port=0 if delete else self.grant_port or request.external_port or PORT,
                lifetime=0 if delete else self.grant_lifetime or request.lifetime,
            )
        )


def mapper(**kwargs: object) -> PortMapper:
    return PortMapper(GW, PORT, rng=SeededRng(7), **kwargs)  # type: ignore[arg-type]


def events(m: PortMapper) -> list[PortMapEvent]:
    out = []
    while (event := m.next_event()) is not None:
        out.append(event)
    return out


def exchange(m: PortMapper, gw: Gateway, now: float) -> list[PortMapEvent]:
    """Everything the mapper sends reaches the gateway, and every answer comes back."""
    for data, to in m.datagrams_to_send(now=now):
        assert to == GW
        m.receive_datagram(gw.answer(data, now), GW, now=now)
    return events(m)


def sent(m: PortMapper, now: float) -> list[ExternalAddressRequest | MapRequest]:
    out = m.datagrams_to_send(now=now)
    assert all(to == GW for _, to in out)
    return [decode_request(data) for data, _ in out]


def acquired(m: PortMapper, gw: Gateway, now: float = 0.0) -> MappingAcquired:
    m.start(now=now)
    (event,) = exchange(m, gw, now)
    assert isinstance(event, MappingAcquired)
    return event


def test_start_asks_for_the_address_and_the_mapping_and_reports_both() -> None:
    m, gw = mapper(), Gateway()
    m.start(now=0.0)
    assert sent(m, 0.0) == [
        ExternalAddressRequest(),
        MapRequest(internal_port=PORT, external_port=0, lifetime=RECOMMENDED_LIFETIME),
    ]
    assert m.state is PortMapState.ACQUIRING and m.external is None
    answered = mapper()
    assert acquired(answered, gw) == MappingAcquired(
        external=(EXT, PORT), lifetime=RECOMMENDED_LIFETIME, internal_port=PORT
    )
    assert answered.state is PortMapState.MAPPED and answered.external == (EXT, PORT)
    assert answered.get_timer() == pytest.approx(HALF)


def test_silence_is_retransmitted_from_250_ms_doubling_and_fails_after_nine_tries() -> None:
    """RFC 6886 §3.1: 0, 0.25, 0.75, ... 63.75 s, then the ninth wait (64 s) runs out."""
    m = mapper()
    m.start(now=0.0)
    times = []
    now = 0.0
    while True:
        if (out := sent(m, now)) != []:
            assert out[0] == ExternalAddressRequest() and isinstance(out[1], MapRequest)
            times.append(now)
        if (timer := m.get_timer()) is None:
            break
        now = timer
        m.handle_timer(now=now)
    expected = [RTO_S * (2**k - 1) for k in range(ATTEMPTS)]
    assert times == pytest.approx(expected)
    assert now == pytest.approx(RTO_S * (2**ATTEMPTS - 1))  # 127.75 s
    assert events(m) == [MappingFailed(reason="timeout")]
    assert m.state is PortMapState.FAILED and m.external is None
    assert m.counters.retransmissions == 2 * (ATTEMPTS - 1)


def test_an_answer_to_a_retransmission_completes_the_request() -> None:
    m, gw = mapper(), Gateway()
    m.start(now=0.0)
    m.datagrams_to_send(now=0.0)  # lost
    m.handle_timer(now=RTO_S)
    assert [type(e) for e in exchange(m, gw, RTO_S)] == [MappingAcquired]


def test_the_mapping_is_renewed_at_half_its_granted_lifetime_quietly() -> None:
    m, gw = mapper(), Gateway()
    gw.grant_lifetime = 600  # less than asked for: the gateway decides
    assert acquired(m, gw).lifetime == 600
    assert m.get_timer() == pytest.approx(300)
    m.handle_timer(now=300)
    renewal = sent(m, 300)
    assert MapRequest(internal_port=PORT, external_port=PORT, lifetime=7200) in renewal
    assert ExternalAddressRequest() in renewal
    for request in renewal:  # answered: same address and port, so no event
        m.receive_datagram(gw.answer(encode_request(request), 300), GW, now=300)
    assert events(m) == [] and m.counters.renewals == 1
    assert m.get_timer() == pytest.approx(600) and m.status(now=300)["expires_in_s"] == 600


def test_a_gateway_that_grants_another_port_gets_asked_for_it_again() -> None:
    m, gw = mapper(suggested_external_port=5000), Gateway()
    m.start(now=0.0)
    out = sent(m, 0.0)
    assert out[1] == MapRequest(internal_port=PORT, external_port=5000, lifetime=7200)
    gw.grant_port = 50000
    for request in out:
        m.receive_datagram(gw.answer(encode_request(request), 0.0), GW, now=0.0)
    assert events(m) == [MappingAcquired(external=(EXT, 50000), lifetime=7200, internal_port=PORT)]
    m.handle_timer(now=HALF)
    assert MapRequest(internal_port=PORT, external_port=50000, lifetime=7200) in sent(m, HALF)


def test_an_unanswered_renewal_retries_until_expiry_then_the_mapping_is_lost() -> None:
    m, gw = mapper(), Gateway()
    acquired(m, gw)
    now = HALF
    m.handle_timer(now=now)
    while now < RECOMMENDED_LIFETIME:
        assert sent(m, now) != []  # unanswered
        timer = m.get_timer()
        assert timer is not None and timer <= RECOMMENDED_LIFETIME
        now = timer
        m.handle_timer(now=now)
    assert now == RECOMMENDED_LIFETIME
    assert events(m) == [MappingLost(reason="expired")]
    # It asks again from scratch (a full retransmission run), suggesting the port it had.
    assert m.state is PortMapState.ACQUIRING
    assert MapRequest(internal_port=PORT, external_port=PORT, lifetime=7200) in sent(m, now)
    assert [type(e) for e in exchange(m, gw, now)] == []  # the resend above was "lost"
    m.handle_timer(now=now + RTO_S)
    assert [type(e) for e in exchange(m, gw, now + RTO_S)] == [MappingAcquired]


@pytest.mark.parametrize(
    ("epoch_after_half", "reset"),
    [
        (1000 + int(HALF), False),  # the gateway's clock kept time
        (1000 + int(HALF * 7 / 8) - 2, False),  # slow, but within 7/8 and 2 s
        (1000 + int(HALF * 7 / 8) - 3, True),  # fell behind: it rebooted (RFC 6886 §3.6)
        (5, True),
    ],
)
def test_the_gateway_epoch_is_checked_on_every_response(epoch_after_half: int, reset: bool) -> None:
    m, gw = mapper(), Gateway()
    acquired(m, gw)  # epoch 1000 at t=0
    m.handle_timer(now=HALF)
    gw.booted_at = HALF - epoch_after_half
    got = exchange(m, gw, HALF)
    assert (got == [MappingLost(reason="gateway-reset")]) is reset
    assert m.counters.epoch_resets == int(reset)
    if not reset:
        assert got == [] and m.state is PortMapState.MAPPED


def test_after_a_gateway_reboot_the_mapping_is_asked_for_again_after_a_random_delay() -> None:
    """RFC 6886 §3.7: a whole LAN notices the reboot at once, so each waits 0-5 s."""
    m, gw = mapper(), Gateway()
    acquired(m, gw)
    gw.booted_at = HALF - 3  # rebooted 3 s ago
    m.handle_timer(now=HALF)
    assert exchange(m, gw, HALF) == [MappingLost(reason="gateway-reset")]
    assert m.state is PortMapState.ACQUIRING and m.external is None
    restart = m.get_timer()
    assert restart is not None and HALF <= restart <= HALF + RESET_JITTER_S
    assert m.datagrams_to_send(now=HALF) == []
    m.handle_timer(now=restart)
    assert exchange(m, gw, restart) == [
        MappingAcquired(external=(EXT, PORT), lifetime=7200, internal_port=PORT)
    ]


def test_a_changed_external_address_is_reported() -> None:
    """An announcement (§3.2.1) or a renewal's address answer with a new address."""
    m, gw = mapper(), Gateway()
    acquired(m, gw)
    announcement = ExternalAddressResponse(result=0, epoch=gw.epoch(10.0), address="192.0.2.9")
    m.receive_datagram(encode_response(announcement), GW, now=10.0)
    assert events(m) == [
        MappingAcquired(external=("192.0.2.9", PORT), lifetime=7200, internal_port=PORT)
    ]
    assert m.external == ("192.0.2.9", PORT)


def test_only_the_gateways_address_and_port_are_believed() -> None:
    m, gw = mapper(), Gateway()
    m.start(now=0.0)
    answers = [gw.answer(data, 0.0) for data, _ in m.datagrams_to_send(now=0.0)]
    for wrong in [("10.1.0.1", 5350), ("10.1.0.99", NATPMP_PORT), ("203.0.113.1", 5351)]:
        for answer in answers:
            m.receive_datagram(answer, wrong, now=0.0)
    assert events(m) == [] and m.counters.dropped_wrong_source == 6
    assert m.is_gateway(("::ffff:10.1.0.1", NATPMP_PORT)) and not m.is_gateway(("::1", 5351))
    for answer in answers:  # a dual-stack socket's view of the gateway is the gateway
        m.receive_datagram(answer, ("::ffff:10.1.0.1", NATPMP_PORT), now=0.0)
    assert [type(e) for e in events(m)] == [MappingAcquired]


def test_malformed_and_unsolicited_datagrams_are_dropped_and_counted() -> None:
    m, gw = mapper(), Gateway()
    acquired(m, gw)
    m.receive_datagram(b"\x00\x81garbage", GW, now=1.0)
    m.receive_datagram(b"", GW, now=1.0)
    other_port = MapResponse(
        opcode=Opcode.MAP_UDP, result=0, epoch=1001, internal_port=9, external_port=9, lifetime=9
    )
    tcp = MapResponse(
        opcode=Opcode.MAP_TCP, result=0, epoch=1001, internal_port=PORT, external_port=1, lifetime=9
    )
    late = MapResponse(
        opcode=Opcode.MAP_UDP, result=0, epoch=1001, internal_port=PORT, external_port=1, lifetime=9
    )
    for msg in (other_port, tcp, late):
        m.receive_datagram(encode_response(msg), GW, now=1.0)
    c = m.counters
    assert (c.dropped_malformed, c.dropped_unsolicited) == (2, 3)
    assert events(m) == [] and m.external == (EXT, PORT)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (ResultCode.NOT_AUTHORIZED, "not-authorized"),
        (ResultCode.NETWORK_FAILURE, "network-failure"),
        (ResultCode.OUT_OF_RESOURCES, "out-of-resources"),
        (99, "result 99"),
    ],
)
def test_a_refusal_fails_with_the_result_code(answer: int, reason: str) -> None:
    m, gw = mapper(), Gateway()
    gw.result = answer  # type: ignore[assignment]
    m.start(now=0.0)
    assert exchange(m, gw, 0.0) == [MappingFailed(reason=reason)]
    assert m.state is PortMapState.FAILED and m.get_timer() is None


def test_a_short_error_response_fails_the_request() -> None:
    """The 8-byte form (§3.5), e.g. a gateway that does not speak version 0."""
    m = mapper()
    m.start(now=0.0)
    m.datagrams_to_send(now=0.0)
    short = ErrorResponse(opcode=Opcode.MAP_UDP, result=ResultCode.UNSUPPORTED_VERSION, epoch=3)
    m.receive_datagram(encode_response(short), GW, now=0.0)
    assert events(m) == [MappingFailed(reason="unsupported-version")]


def test_a_gateway_without_an_external_address_is_a_failure() -> None:
    m, gw = mapper(), Gateway()
    gw.address = "0.0.0.0"
    m.start(now=0.0)
    assert exchange(m, gw, 0.0) == [MappingFailed(reason="no-external-address")]


def test_a_refused_renewal_loses_the_mapping() -> None:
    m, gw = mapper(), Gateway()
    acquired(m, gw)
    gw.result = ResultCode.NOT_AUTHORIZED
    m.handle_timer(now=HALF)
    assert exchange(m, gw, HALF) == [MappingLost(reason="not-authorized")]
    assert m.state is PortMapState.FAILED and m.get_timer() is None


def test_release_sends_the_lifetime_zero_delete_and_reports_the_answer() -> None:
    m, gw = mapper(), Gateway()
    acquired(m, gw)
    m.release(now=100.0)
    assert m.status(now=100.0)["state"] == "releasing" and m.external is None
    out = sent(m, 100.0)
    assert out == [MapRequest(internal_port=PORT, external_port=0, lifetime=0)]
    m.receive_datagram(gw.answer(encode_request(out[0]), 100.0), GW, now=100.0)
    assert events(m) == [MappingReleased(confirmed=True)]
    assert m.state is PortMapState.RELEASED and m.get_timer() is None


def test_an_unanswered_release_gives_up_after_three_tries_in_1_75_s() -> None:
    m, gw = mapper(), Gateway()
    acquired(m, gw)
    m.release(now=0.0)
    times, now = [], 0.0
    while True:
        if sent(m, now):
            times.append(now)
        if (timer := m.get_timer()) is None:
            break
        now = timer
        m.handle_timer(now=now)
    assert times == pytest.approx([RTO_S * (2**k - 1) for k in range(RELEASE_ATTEMPTS)])
    assert now == pytest.approx(1.75)
    assert events(m) == [MappingReleased(confirmed=False)]


def test_release_before_asking_sends_nothing_but_while_asking_deletes() -> None:
    idle = mapper()
    idle.release(now=0.0)
    assert idle.state is PortMapState.RELEASED and idle.datagrams_to_send(now=0.0) == []
    assert idle.get_timer() is None and events(idle) == []
    silent = mapper()
    silent.start(now=0.0)
    silent.datagrams_to_send(now=0.0)  # no NAT-PMP there: it never answers anything
    silent.release(now=0.1)
    assert silent.state is PortMapState.RELEASED and silent.datagrams_to_send(now=0.1) == []
    asking, gw = mapper(), Gateway()
    asking.start(now=0.0)
    address_request, _ = asking.datagrams_to_send(now=0.0)
    # The gateway answers the address request; the map answer is lost: it may hold a mapping.
    asking.receive_datagram(gw.answer(address_request[0], 0.05), GW, now=0.05)
    asking.release(now=0.1)
    assert sent(asking, 0.1) == [MapRequest(internal_port=PORT, external_port=0, lifetime=0)]
    # A late answer to the map request is not the delete's answer.
    late = gw.answer(encode_map(lifetime=7200), 0.1)
    asking.receive_datagram(late, GW, now=0.1)
    assert asking.counters.dropped_unsolicited == 1 and asking.state is PortMapState.RELEASING


def encode_map(*, lifetime: int) -> bytes:
    return encode_request(MapRequest(internal_port=PORT, external_port=PORT, lifetime=lifetime))


def test_misuse_is_a_local_error() -> None:
    m, gw = mapper(), Gateway()
    acquired(m, gw)
    with pytest.raises(LocalProtocolError):
        m.start(now=1.0)
    with pytest.raises(ValueError):
        PortMapper(("2001:db8::1", NATPMP_PORT), PORT, rng=SeededRng(1))
    with pytest.raises(ValueError):
        PortMapper(GW, 0, rng=SeededRng(1))
    with pytest.raises(ValueError):
        PortMapper(GW, PORT, rng=SeededRng(1), lifetime=0)


def test_start_again_after_a_failure_or_a_release() -> None:
    m, gw = mapper(), Gateway()
    gw.result = ResultCode.NOT_AUTHORIZED
    m.start(now=0.0)
    assert [type(e) for e in exchange(m, gw, 0.0)] == [MappingFailed]
    gw.result = ResultCode.SUCCESS
    assert acquired(m, gw, now=10.0).external == (EXT, PORT)
    m.release(now=20.0)
    assert exchange(m, gw, 20.0) == [MappingReleased(confirmed=True)]
    assert acquired(m, gw, now=30.0).external == (EXT, PORT)


def test_status_reports_the_mapping_and_counters() -> None:
    m, gw = mapper(), Gateway()
    acquired(m, gw)
    status = m.status(now=100.0)
    assert status["state"] == "mapped" and status["external"] == [EXT, PORT]
    assert status["expires_in_s"] == 7100 and status["lifetime_s"] == 7200
    assert isinstance(status["counters"], dict) and status["counters"]["responses"] == 2


RESPONSES = [
    encode_response(ExternalAddressResponse(result=0, epoch=1000, address=EXT)),
    encode_response(
        MapResponse(
            opcode=Opcode.MAP_UDP,
            result=0,
            epoch=1000,
            internal_port=PORT,
            external_port=PORT,
            lifetime=7200,
        )
    ),
    encode_response(ErrorResponse(opcode=Opcode.MAP_UDP, result=2, epoch=1000)),
]


@given(
    st.lists(st.sampled_from(RESPONSES).flatmap(mutations), max_size=6),
    st.sampled_from(["idle", "acquiring", "mapped", "releasing"]),
)
def test_receive_datagram_never_raises(datagrams: list[bytes], state: str) -> None:
    m, gw = mapper(), Gateway()
    if state != "idle":
        m.start(now=0.0)
    if state in ("mapped", "releasing"):
        exchange(m, gw, 0.0)
    if state == "releasing":
        m.release(now=0.0)
    now = 0.0
    for data in datagrams:
        now += 1.0
        m.receive_datagram(data, GW, now=now)
        m.handle_timer(now=now)
    assert m.counters.dropped_wrong_source == 0
