"""A supernode's STUN answers (proto.nat.stun_server): reflection without amplification."""

from peerline.proto.nat.stun_server import BURST, StunServer
from peerline.wire.stun import CHANGE_IP, decode_stun, encode_binding_request

CLIENT = ("198.51.100.7", 40000)


def test_a_padded_request_is_answered_with_the_senders_address() -> None:
    server = StunServer()
    request = encode_binding_request(bytes(range(12)), pad_to=48)
    server.receive_datagram(request, CLIENT, now=0.0)
    ((answer, to),) = server.datagrams_to_send(now=0.0)
    assert to == CLIENT and len(answer) <= len(request)
    assert decode_stun(answer).mapped == CLIENT


def test_no_answer_larger_than_the_request() -> None:
    server = StunServer()
    tiny = encode_binding_request(bytes(12))[:20]
    tiny = tiny[:2] + b"\x00\x00" + tiny[4:]  # header only: 20 bytes, no attributes
    server.receive_datagram(tiny, CLIENT, now=0.0)
    assert server.datagrams_to_send(now=0.0) == []
    assert server.counters.dropped_too_small == 1


def test_change_requests_and_floods_are_refused_and_counted() -> None:
    server = StunServer()
    server.receive_datagram(
        encode_binding_request(bytes(12), change=CHANGE_IP, pad_to=64), CLIENT, now=0.0
    )
    assert server.counters.dropped_change_request == 1
    for i in range(50):
        server.receive_datagram(encode_binding_request(bytes([i]) * 12, pad_to=48), CLIENT, now=0.0)
    assert server.counters.answered == int(BURST)
    assert server.counters.dropped_rate_limited == 50 - int(BURST)
    server.receive_datagram(b"\x00\x01junk", CLIENT, now=0.0)
    assert server.counters.dropped_malformed == 1
