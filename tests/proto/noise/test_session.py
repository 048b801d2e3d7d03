"""Session: link tags that let a new handshake prove it continues a session (protocol.md §4.7).

The vector uses the session of the worked example (protocol.md Appendix A).
"""

from peerline.proto.identity import Identity
from peerline.proto.identity.sas import call_sas
from peerline.proto.noise.handshake import IKHandshake, Role, x25519_public
from peerline.proto.noise.session import Session
from peerline.wire.packet import initiation_header
from peerline.wire.spec import PROLOGUE

SEED_A = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
SEED_B = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
INDEX_A, INDEX_B = 0x01020304, 0x0A0B0C0D
NEXT_EPHEMERAL_PRIVATE = b"\x55" * 32
NEXT_EPHEMERAL = bytes.fromhex("38ab664bd86f77d7e66bdd9ae0792913a94fd8b33a1260027e4b46c1f4884c67")
LINK_I, LINK_R = 0x1E3CAF57, 0x273D7CFA


def appendix_a_sessions() -> tuple[Session, Session]:
    a, b = Identity.from_seed(SEED_A), Identity.from_seed(SEED_B)
    prologue = PROLOGUE + initiation_header(INDEX_A)
    ini = IKHandshake(
        role=Role.INITIATOR,
        static_private=a.x25519_private,
        ephemeral_private=b"\x11" * 32,
        prologue=prologue,
        remote_static=b.x25519_public,
    )
    res = IKHandshake(
        role=Role.RESPONDER,
        static_private=b.x25519_private,
        ephemeral_private=b"\x22" * 32,
        prologue=prologue,
    )
    res.read_initiation(ini.write_initiation(a.public_key))
    ini.read_response(res.write_response(INDEX_B.to_bytes(4, "big")))
    at_a = Session(
        keys=ini.transport_keys(),
        local_index=INDEX_A,
        remote_index=INDEX_B,
        initiator=True,
        created_at=0.0,
    )
    at_b = Session(
        keys=res.transport_keys(),
        local_index=INDEX_B,
        remote_index=INDEX_A,
        initiator=False,
        created_at=0.0,
    )
    return at_a, at_b


def test_link_tags_match_the_worked_example_on_both_ends() -> None:
    at_a, at_b = appendix_a_sessions()
    assert at_a.sas == at_b.sas == at_a.connection_sas == "366 095"
    assert x25519_public(NEXT_EPHEMERAL_PRIVATE) == NEXT_EPHEMERAL
    for session in (at_a, at_b):
        assert session.link_tag(b"i", NEXT_EPHEMERAL) == LINK_I
        assert session.link_tag(b"r", NEXT_EPHEMERAL) == LINK_R


def test_link_tags_depend_on_label_and_ephemeral_and_vanish_with_the_keys() -> None:
    at_a, _ = appendix_a_sessions()
    other = x25519_public(b"\x56" * 32)
    assert at_a.link_tag(b"i", other) not in (None, LINK_I)
    assert LINK_I != LINK_R
    at_a.wipe()
    assert at_a.link_tag(b"i", NEXT_EPHEMERAL) is None


def test_a_new_session_begins_its_own_connection_with_its_handshake_hash() -> None:
    """§2.4: until the node links it to an earlier one, a session's connection hash is its own
    ``h``; both ends of one handshake hold the same 64 bytes."""
    at_a, at_b = appendix_a_sessions()
    assert len(at_a.connection_hash) == 64
    assert at_a.connection_hash == at_a.handshake_hash
    assert at_a.connection_hash == at_b.connection_hash == at_b.handshake_hash
    at_a.wipe()
    assert at_a.connection_hash == at_b.connection_hash  # not key material: kept for the call


def test_the_call_sas_of_the_worked_example() -> None:
    """protocol.md §2.6's vector from Appendix A's ``h``."""
    at_a, at_b = appendix_a_sessions()
    call_id, n_i, n_r = bytes(range(1, 9)), bytes(range(0x10, 0x20)), bytes(range(0x20, 0x30))
    assert call_sas(at_a.connection_hash, call_id, n_i, n_r) == "259 688"
    assert call_sas(at_b.connection_hash, call_id, n_i, n_r) == "259 688"
