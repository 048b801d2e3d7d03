"""Noise IK against the published cacophony vectors (Noise_IK_25519_ChaChaPoly_BLAKE2b)."""

import json
from pathlib import Path

import pytest

from peerline.proto.noise._symmetric import CipherState
from peerline.proto.noise.handshake import PROTOCOL_NAME, IKHandshake, Role

VECTORS = json.loads((Path(__file__).parent / "vectors-25519-chachapoly-blake2b.json").read_text())
IK = next(v for v in VECTORS["vectors"] if v["name"] == PROTOCOL_NAME.decode())


def h(s: str) -> bytes:
    return bytes.fromhex(s)


def test_protocol_name_is_pinned() -> None:
    assert PROTOCOL_NAME == b"Noise_IK_25519_ChaChaPoly_BLAKE2b"


def test_ik_handshake_and_transport_reproduce_published_vectors() -> None:
    init = IKHandshake(
        role=Role.INITIATOR,
        static_private=h(IK["init_static"]),
        ephemeral_private=h(IK["init_ephemeral"]),
        prologue=h(IK["init_prologue"]),
        remote_static=h(IK["init_remote_static"]),
    )
    resp = IKHandshake(
        role=Role.RESPONDER,
        static_private=h(IK["resp_static"]),
        ephemeral_private=h(IK["resp_ephemeral"]),
        prologue=h(IK["resp_prologue"]),
    )
    msgs = IK["messages"]
    m1 = init.write_initiation(h(msgs[0]["payload"]))
    assert m1.hex() == msgs[0]["ciphertext"]
    assert resp.read_initiation(m1) == h(msgs[0]["payload"])
    m2 = resp.write_response(h(msgs[1]["payload"]))
    assert m2.hex() == msgs[1]["ciphertext"]
    assert init.read_response(m2) == h(msgs[1]["payload"])
    assert init.handshake_hash == resp.handshake_hash

    ik, rk = init.transport_keys(), resp.transport_keys()
    assert ik.send_key == rk.recv_key and ik.recv_key == rk.send_key
    i_send, i_recv = CipherState(ik.send_key), CipherState(ik.recv_key)
    r_send, r_recv = CipherState(rk.send_key), CipherState(rk.recv_key)
    for i, msg in enumerate(msgs[2:]):
        sender, receiver = (i_send, r_recv) if i % 2 == 0 else (r_send, i_recv)
        ct = sender.encrypt_with_ad(b"", h(msg["payload"]))
        assert ct.hex() == msg["ciphertext"]
        assert receiver.decrypt_with_ad(b"", ct) == h(msg["payload"])


def test_responder_rejects_initiation_for_another_static_key() -> None:
    init = IKHandshake(
        role=Role.INITIATOR,
        static_private=h(IK["init_static"]),
        ephemeral_private=h(IK["init_ephemeral"]),
        prologue=b"",
        remote_static=h(IK["init_remote_static"]),
    )
    wrong = IKHandshake(
        role=Role.RESPONDER,
        static_private=bytes(range(32)),
        ephemeral_private=bytes(32),
        prologue=b"",
    )
    from peerline.errors import CryptoError

    with pytest.raises(CryptoError):
        wrong.read_initiation(init.write_initiation(b"x"))
