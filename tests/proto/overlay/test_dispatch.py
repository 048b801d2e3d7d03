"""The overlay's dispatch tables: request and reply kinds registered by other packages
(``Overlay.register_request`` / ``register_reply``), as ``proto.nat`` uses them."""

import hashlib

import pytest

from peerline.errors import LocalProtocolError
from peerline.proto.identity import Identity
from peerline.proto.overlay.auth import PairKeys, mac
from peerline.proto.overlay.overlay import Overlay
from peerline.proto.overlay.records import SyncBinding
from peerline.proto.overlay.rpc import Reply, Request
from peerline.proto.overlay.serving import Inbound
from peerline.sim.rng import SeededRng
from peerline.types import Addr
from peerline.wire.overlay import (
    NO_TOKEN,
    Body,
    Header,
    IntroAck,
    Introduce,
    IntroStatus,
    Kind,
    OverlayMessage,
    RelayOpen,
    RelayOpened,
    RelayStatus,
    decode_overlay,
    encode_overlay,
)

HERE: Addr = ("203.0.113.10", 7000)
THERE: Addr = ("198.51.100.20", 40000)


def number_of(public_key: bytes) -> str:
    value = int.from_bytes(hashlib.blake2b(public_key, digest_size=8).digest(), "big")
    return f"{value % 10**12:012d}"


def overlay(n: int) -> Overlay:
    me = Identity.from_seed(hashlib.sha256(b"dispatch-%d" % n).digest())
    return Overlay(
        identity=me,
        rng=SeededRng(f"dispatch-{n}"),
        binding=SyncBinding(number_of),
        number=number_of(me.public_key),
    )


def send(sender: Identity, to: Overlay, kind: Kind, body: Body, *, now: float = 0.0) -> bytes:
    """Hand ``to`` a request from ``sender`` at THERE; returns its txid."""
    txid = bytes(8)
    data = encode_overlay(Header(kind=kind, flags=0, txid=txid, sender=sender.public_key), body)
    pairs = PairKeys(x25519_private=sender.x25519_private, public_key=sender.public_key)
    key = pairs.key_for(to.public_key)
    assert key is not None
    to.receive_datagram(data + mac(key, data), THERE, now=now)
    return txid


def replies(node: Overlay) -> list[OverlayMessage]:
    return [decode_overlay(d) for d, _ in node.datagrams_to_send(now=0.0)]


def caller() -> Identity:
    return Identity.from_seed(bytes([9]) * 32)


def test_a_request_kind_nothing_serves_is_dropped_and_counted() -> None:
    node = overlay(1)
    body = Introduce(token=NO_TOKEN, target=bytes(32), candidates=(THERE,))
    send(caller(), node, Kind.INTRODUCE, body)
    assert replies(node) == []
    assert node.counters.dropped_malformed == 1 and node.counters.queries_answered == 0


def test_a_registered_request_handler_answers_through_the_size_and_token_rules() -> None:
    node = overlay(2)
    seen: list[Inbound] = []

    def handler(q: Inbound) -> tuple[Body, int]:
        seen.append(q)
        return IntroAck(status=IntroStatus.REFUSED, token=q.token), 0

    node.register_request(Kind.INTRODUCE, handler)
    send(
        caller(),
        node,
        Kind.INTRODUCE,
        Introduce(token=NO_TOKEN, target=bytes(32), candidates=(THERE,)),
    )
    (q,) = seen
    assert not q.validated and q.limit is not None and q.addr == THERE
    (reply,) = replies(node)
    assert reply.header.kind is Kind.INTRO_ACK and isinstance(reply.body, IntroAck)
    assert reply.body.token == q.token != NO_TOKEN
    assert node.counters.queries_answered == 1


def test_a_fixed_size_reply_larger_than_an_unvalidated_request_is_not_sent() -> None:
    node = overlay(3)
    node.register_request(
        Kind.RELAY_OPEN,
        lambda q: (RelayOpened(status=RelayStatus.FULL, token=q.token, channel=0), 0),
    )
    send(caller(), node, Kind.RELAY_OPEN, RelayOpen(token=NO_TOKEN, target=bytes(32)))
    assert len(replies(node)) == 1  # 73 bytes: no larger than the 100-byte request
    with pytest.raises(LocalProtocolError):
        node.register_request(Kind.RELAY_OPEN, lambda q: None)


def test_kinds_are_registered_once_and_on_the_right_side() -> None:
    node = overlay(4)
    with pytest.raises(LocalProtocolError):
        node.register_request(Kind.PING, lambda q: None)  # the overlay serves it
    with pytest.raises(LocalProtocolError):
        node.register_request(Kind.INTRO_ACK, lambda q: None)  # a reply kind
    with pytest.raises(LocalProtocolError):
        node.register_reply(Kind.NODES, lambda r: None)  # the overlay takes it
    with pytest.raises(LocalProtocolError):
        node.register_reply(Kind.INTRODUCE, lambda r: None)  # a request kind


def test_registered_replies_and_timeouts_reach_their_handlers() -> None:
    a, b = overlay(5), overlay(6)
    b.register_request(
        Kind.INTRODUCE, lambda q: (IntroAck(status=IntroStatus.DONE, token=q.token), 0)
    )
    got: list[Reply] = []
    failed: list[Request] = []
    a.register_reply(Kind.INTRO_ACK, got.append, on_timeout=lambda req, now: failed.append(req))
    body = Introduce(token=NO_TOKEN, target=bytes(32), candidates=(THERE,))
    answered = a.request(Kind.INTRODUCE, body, b.public_key, HERE, now=0.0, context="first")
    lost = a.request(Kind.INTRODUCE, body, b.public_key, HERE, now=0.0, context="second")
    assert answered is not None and lost is not None
    first, _ = a.datagrams_to_send(now=0.0)
    b.receive_datagram(first[0], THERE, now=0.1)
    ((ack, _),) = b.datagrams_to_send(now=0.1)
    a.receive_datagram(ack, HERE, now=0.2)
    (reply,) = got
    assert reply.request is answered and reply.request.context == "first"
    assert isinstance(reply.body, IntroAck) and reply.token == a.token_for(HERE, 0.2)
    a.handle_timer(now=2.0)  # the hard timeout (query_hard_timeout_s) of both
    assert failed == [lost] and a.counters.query_timeouts == 1
