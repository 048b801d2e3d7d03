"""Abuse of one overlay node, by a scripted attacker speaking the real wire format.

Each test hands crafted datagrams to a real ``Overlay`` and reads what it sends back: forged
records, stale sequence numbers, wrong number bindings, oversize records, spoofed sources,
amplification attempts, bad MACs and floods are each rejected and counted.
"""

import hashlib

import pytest

from peerline.proto.identity import Identity
from peerline.proto.overlay.auth import PairKeys, mac
from peerline.proto.overlay.ids import node_id, record_key
from peerline.proto.overlay.overlay import Overlay, OverlayConfig
from peerline.proto.overlay.records import SyncBinding, sign_record
from peerline.sim.rng import SeededRng
from peerline.types import Addr
from peerline.wire.overlay import (
    FLAG_ANONYMOUS,
    FLAG_MEMBER,
    FLAG_TRUNCATED,
    NO_TOKEN,
    Body,
    Contact,
    FindNode,
    FindValue,
    Header,
    Kind,
    Nodes,
    OverlayMessage,
    Ping,
    Pong,
    Store,
    StoreAck,
    StoreStatus,
    decode_overlay,
    encode_overlay,
)
from peerline.wire.record import CandidateKind, Record


def stand_in_number(public_key: bytes) -> str:
    value = int.from_bytes(hashlib.blake2b(public_key, digest_size=8).digest(), "big")
    return f"{value % 10**12:012d}"


def identity(n: int) -> Identity:
    return Identity.from_seed(hashlib.sha256(f"abuse-{n}".encode()).digest())


VICTIM_ADDR: Addr = ("203.0.113.10", 7000)
ATTACKER_ADDR: Addr = ("198.51.100.20", 40000)
NOW = 1000.0


class Client:
    """A scripted overlay peer: builds authenticated messages with its own key."""

    def __init__(self, me: Identity, target: Overlay, addr: Addr = ATTACKER_ADDR) -> None:
        self.me = me
        self.target = target
        self.addr = addr
        self.pairs = PairKeys(x25519_private=me.x25519_private, public_key=me.public_key)
        self.n = 0

    def send(
        self,
        kind: Kind,
        body: Body,
        *,
        flags: int = 0,
        addr: Addr | None = None,
        tamper: bool = False,
    ) -> list[OverlayMessage]:
        self.n += 1
        header = Header(
            kind=kind, flags=flags, txid=self.n.to_bytes(8, "big"), sender=self.me.public_key
        )
        data = encode_overlay(header, body)
        if flags & FLAG_ANONYMOUS:
            tag = bytes(16)
        else:
            key = self.pairs.key_for(self.target.public_key)
            assert key is not None
            tag = mac(key, data)
        if tamper:
            data = data[:5] + bytes([data[5] ^ 1]) + data[6:]  # a txid byte: still well-formed
        self.target.receive_datagram(data + tag, addr or self.addr, now=NOW)
        self.sizes = [len(data + tag)]
        replies = []
        for raw, to in self.target.datagrams_to_send(now=NOW):
            assert to == (addr or self.addr), (
                "a reply goes only to the address the request came from"
            )
            msg = decode_overlay(raw)
            key = self.pairs.key_for(msg.header.sender)
            assert key is not None and mac(key, msg.signed_part) == msg.mac
            replies.append(msg)
            self.sizes.append(len(raw))
        return replies

    def join_table(self) -> None:
        """Ping as a DHT member from a validated address, as a real node does: it goes in."""
        self.send(Kind.PING, Ping(token=self.token()), flags=FLAG_MEMBER)

    def token(self) -> bytes:
        (pong,) = self.send(Kind.PING, Ping(padding=40))
        assert isinstance(pong.body, Pong)
        return pong.body.token

    def store(
        self, record: bytes, token: bytes | None = None, addr: Addr | None = None
    ) -> StoreAck:
        tok = self.token() if token is None else token
        (ack,) = self.send(Kind.STORE, Store(token=tok, record=record), addr=addr)
        assert isinstance(ack.body, StoreAck)
        return ack.body


def victim(**config: object) -> Overlay:
    me = identity(0)
    return Overlay(
        identity=me,
        rng=SeededRng(b"victim"),
        binding=SyncBinding(stand_in_number),
        number=stand_in_number(me.public_key),
        config=OverlayConfig(**config),  # type: ignore[arg-type]
    )


def record_of(me: Identity, seq: int = 1, *, number: str | None = None, addrs: int = 1) -> Record:
    return sign_record(
        me,
        Record(
            number=number or stand_in_number(me.public_key),
            public_key=me.public_key,
            seq=seq,
            ttl_s=600,
            addresses=tuple(
                (CandidateKind.HOST, (f"203.0.113.{i + 1}", 7000)) for i in range(addrs)
            ),
        ),
    )


def test_a_valid_record_is_stored_and_served() -> None:
    node = victim()
    owner = identity(1)
    client = Client(owner, node)
    assert client.store(record_of(owner).encode()).status is StoreStatus.STORED
    assert node.counters.records_stored == 1
    (reply,) = client.send(
        Kind.FIND_VALUE,
        FindValue(key=record_key(stand_in_number(owner.public_key)), token=client.token()),
    )
    assert isinstance(reply.body, Nodes)
    assert reply.body.records == (record_of(owner).encode(),)


def test_forged_signature_is_rejected_and_counted() -> None:
    node = victim()
    owner = identity(1)
    raw = bytearray(record_of(owner).encode())
    raw[45] ^= 0x40  # a sequence-number byte: still well-formed, but no longer what was signed
    ack = Client(identity(2), node).store(bytes(raw))
    assert ack.status is StoreStatus.INVALID
    assert node.counters.records_rejected_signature == 1
    assert len(node.store) == 0


def test_wrong_number_binding_is_rejected_and_counted() -> None:
    node = victim()
    attacker = identity(2)
    victim_number = stand_in_number(identity(1).public_key)
    forged = record_of(attacker, number=victim_number)  # validly signed, but not its number
    ack = Client(attacker, node).store(forged.encode())
    assert ack.status is StoreStatus.INVALID
    assert node.counters.records_rejected_binding == 1
    assert node.store.get(record_key(victim_number), NOW) == []


def test_stale_sequence_is_rejected_and_counted_and_names_the_held_sequence() -> None:
    node = victim()
    owner = identity(1)
    client = Client(owner, node)
    assert client.store(record_of(owner, seq=5).encode()).status is StoreStatus.STORED
    ack = client.store(record_of(owner, seq=4).encode())
    assert ack.status is StoreStatus.STALE and ack.held_seq == 5
    assert node.counters.records_rejected_stale == 1
    key = record_key(stand_in_number(owner.public_key))
    assert node.store.get(key, NOW) == [record_of(owner, seq=5).encode()]
    assert client.store(record_of(owner, seq=6).encode()).status is StoreStatus.STORED
    assert node.store.get(key, NOW) == [record_of(owner, seq=6).encode()]


def test_oversize_record_is_rejected_and_counted() -> None:
    node = victim()
    ack = Client(identity(2), node).store(bytes(600))
    assert ack.status is StoreStatus.INVALID
    assert node.counters.records_rejected_oversize == 1
    assert len(node.store) == 0


def test_store_from_a_spoofed_source_is_refused() -> None:
    """A token is bound to the address it was handed to; from anywhere else STORE fails."""
    node = victim()
    owner = identity(1)
    client = Client(owner, node)
    token = client.token()  # fetched from ATTACKER_ADDR
    ack = client.store(record_of(owner).encode(), token=token, addr=("192.0.2.99", 40000))
    assert ack.status is StoreStatus.BAD_TOKEN
    assert node.counters.stores_bad_token == 1
    assert len(node.store) == 0
    no_token = client.store(record_of(owner).encode(), token=NO_TOKEN)
    assert no_token.status is StoreStatus.BAD_TOKEN


def test_replies_to_unvalidated_addresses_are_never_larger_than_the_request() -> None:
    node = victim()
    for i in range(40):  # give it a full routing table to answer with
        peer = identity(100 + i)
        Client(peer, node, addr=(f"203.0.{i}.7", 7000)).join_table()
    assert len(node.table) >= 8
    client = Client(identity(2), node)
    replies = client.send(Kind.FIND_NODE, FindNode(target=bytes(20)))
    (reply,) = replies
    assert client.sizes[1] <= client.sizes[0]
    assert reply.header.flags & FLAG_TRUNCATED
    assert node.counters.replies_truncated == 1
    full = client.send(Kind.FIND_NODE, FindNode(target=bytes(20), token=client.token()))
    assert isinstance(full[0].body, Nodes) and len(full[0].body.contacts) == 8
    # An anonymous ping too small to cover the pong gets no answer at all.
    assert client.send(Kind.PING, Ping(), flags=FLAG_ANONYMOUS) == []
    padded = client.send(Kind.PING, Ping(padding=40), flags=FLAG_ANONYMOUS)
    assert len(padded) == 1 and client.sizes[1] <= client.sizes[0]


def test_truncated_record_reply_then_full_answer_with_token() -> None:
    node = victim()
    owner = identity(1)
    Client(owner, node).store(record_of(owner, addrs=8).encode())
    client = Client(identity(2), node)
    key = record_key(stand_in_number(owner.public_key))
    (first,) = client.send(Kind.FIND_VALUE, FindValue(key=key))
    assert isinstance(first.body, Nodes) and first.body.records == ()
    assert first.header.flags & FLAG_TRUNCATED
    (second,) = client.send(Kind.FIND_VALUE, FindValue(key=key, token=first.body.token))
    assert isinstance(second.body, Nodes) and len(second.body.records) == 1


def test_bad_mac_and_unsolicited_replies_are_dropped_and_counted() -> None:
    node = victim()
    client = Client(identity(2), node)
    assert client.send(Kind.PING, Ping(padding=40), tamper=True) == []
    assert node.counters.dropped_bad_mac == 1
    client.send(Kind.PONG, Pong(observed=ATTACKER_ADDR, token=bytes(8)))
    assert node.counters.dropped_unsolicited == 1
    # A forged peer cannot get into the routing table.
    assert len(node.table) == 0


def test_a_request_flood_from_one_address_is_rate_limited() -> None:
    node = victim()
    client = Client(identity(2), node)
    answered = sum(len(client.send(Kind.PING, Ping(padding=40))) for _ in range(200))
    assert node.counters.dropped_rate_limited == 200 - answered
    assert 40 <= answered <= 80  # the burst allowance, nothing like all 200


def test_contacts_in_replies_cannot_claim_ids() -> None:
    """A contact is a key and an address: the id is derived from the key, never sent."""
    node = victim()
    peer = identity(3)
    Client(peer, node, addr=("203.0.113.77", 7000)).join_table()
    entry = node.table.get(int.from_bytes(node_id(peer.public_key), "big"))
    assert entry is not None and entry.contact == Contact(peer.public_key, ("203.0.113.77", 7000))


@pytest.mark.parametrize("junk", [b"", b"\x54", b"\x54\x01" + bytes(100), bytes(range(256)) * 4])
def test_junk_is_dropped_and_counted(junk: bytes) -> None:
    node = victim()
    node.receive_datagram(junk, ATTACKER_ADDR, now=NOW)
    assert node.datagrams_to_send(now=NOW) == []
    assert node.counters.dropped_malformed == 1


def test_only_a_validated_address_enters_the_routing_table() -> None:
    """A MEMBER ping from an address that showed no token (spoofable) adds nothing, and so
    triggers no replication towards that address."""
    node = victim()
    owner = identity(1)
    Client(owner, node).store(record_of(owner).encode())
    spoofer = Client(identity(5), node, addr=("203.0.113.200", 7000))
    spoofer.send(Kind.PING, Ping(padding=40), flags=FLAG_MEMBER)
    assert len(node.table) == 0
    spoofer.join_table()
    assert len(node.table) == 1


def test_unsolicited_replies_cost_no_key_derivation() -> None:
    node = victim()
    stranger = Client(identity(6), node)
    before = node.pairs.derived
    for i in range(20):
        stranger.n = 1000 + i
        stranger.send(Kind.PONG, Pong(observed=ATTACKER_ADDR, token=bytes(8)))
    assert node.pairs.derived == before
    assert node.counters.dropped_unsolicited == 20


def test_nodes_replies_always_fit_one_datagram() -> None:
    node = victim()
    client = Client(identity(2), node)
    number = stand_in_number(identity(1).public_key)
    for i in range(40):
        Client(identity(100 + i), node, addr=(f"203.0.{i}.7", 7000)).join_table()
    big = record_of(identity(1), addrs=8).encode()
    node.store.put(record_key(number), record_of(identity(1), addrs=8), big, "x", NOW)
    replies = client.send(Kind.FIND_VALUE, FindValue(key=record_key(number), token=client.token()))
    assert len(replies) == 1 and max(client.sizes) <= 1232
    assert isinstance(replies[0].body, Nodes) and replies[0].body.records == (big,)
