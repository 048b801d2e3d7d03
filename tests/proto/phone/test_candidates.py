"""Address policies (peerline.proto.phone.candidates): what this phone publishes, and which of a
record's addresses a first handshake goes to (protocol.md §9.17)."""

from peerline.proto.phone.candidates import own_candidates, pick_address
from peerline.wire.record import CandidateKind, Record

HOST = ("10.0.0.5", 4720)
REFLEXIVE = ("198.51.100.7", 31000)
MAPPED = ("198.51.100.7", 4720)


def record(*addresses: tuple[CandidateKind, tuple[str, int]]) -> Record:
    return Record(
        number="123456789012", public_key=bytes(32), seq=1, ttl_s=3600, addresses=addresses
    )


def test_own_candidates_put_a_mapping_first_then_the_reflexive_address_then_host_ones() -> None:
    assert own_candidates(mapped=MAPPED, reflexive=REFLEXIVE, host=[HOST]) == [
        (CandidateKind.MAPPED, MAPPED),
        (CandidateKind.REFLEXIVE, REFLEXIVE),
        (CandidateKind.HOST, HOST),
    ]


def test_own_candidates_list_an_address_once_and_skip_a_reflexive_one_that_is_ours() -> None:
    assert own_candidates(mapped=None, reflexive=HOST, host=[HOST]) == [(CandidateKind.HOST, HOST)]
    assert own_candidates(mapped=REFLEXIVE, reflexive=REFLEXIVE, host=[HOST]) == [
        (CandidateKind.MAPPED, REFLEXIVE),
        (CandidateKind.HOST, HOST),
    ]


def test_pick_address_prefers_the_public_address_of_a_phone_elsewhere() -> None:
    r = record((CandidateKind.HOST, HOST), (CandidateKind.REFLEXIVE, REFLEXIVE))
    assert pick_address(r, reflexive=("203.0.113.9", 5000)) == REFLEXIVE


def test_pick_address_takes_the_host_address_behind_the_same_nat() -> None:
    r = record((CandidateKind.HOST, HOST), (CandidateKind.REFLEXIVE, REFLEXIVE))
    assert pick_address(r, reflexive=("198.51.100.7", 40000)) == HOST


def test_pick_address_takes_loopback_for_phones_on_one_machine_and_none_without_any() -> None:
    loop = ("127.0.0.1", 4801)
    r = record((CandidateKind.HOST, loop), (CandidateKind.REFLEXIVE, ("127.0.0.1", 4801)))
    assert pick_address(r, reflexive=None) == loop
    assert pick_address(record(), reflexive=None) is None
