"""The extension registry (proto.lan.extensions): probing, claims, contests, verification.

Each test states the rule of docs/lan.md §3 it checks. Time starts at 0.0 and moves by
``PROBE_S`` or to ``get_timer()``.
"""

import dataclasses

import pytest

from lan_harness import Binding, announce, drain, identity, registry
from peerline.errors import LocalProtocolError
from peerline.proto.lan import (
    PROBE_S,
    AnnouncementChanged,
    ExtensionChanged,
    ExtensionClaimed,
    ExtensionConflict,
    ExtensionConflictEnded,
    ExtensionEstablished,
    ExtensionLost,
    ExtensionRegistry,
    LanConfig,
    LanPeerAppeared,
    LanPeerGone,
    LanPeerUpdated,
    RegistryState,
    preferred_extension,
    verify_announcement,
)
from peerline.sim.numbers import sim_number

EVERYONE = sorted((identity(i) for i in range(9)), key=lambda x: x.public_key)
ME = EVERYONE[4]  # four peers have smaller keys, four larger
PEERS = [p for p in EVERYONE if p is not ME]
SMALL = PEERS[0]  # the smallest key of all
HOST = "192.168.1.20"


def smaller_than_me() -> list:
    return [p for p in PEERS if p.public_key < ME.public_key]


def larger_than_me() -> list:
    return [p for p in PEERS if p.public_key > ME.public_key]


def claimed(reg: ExtensionRegistry, *, now: float = 0.0) -> str:
    """Start ``reg`` and run its probe out; returns the extension it claimed (still new)."""
    reg.start(now=now)
    timer = reg.get_timer()
    assert timer == pytest.approx(now + PROBE_S)
    reg.handle_timer(now=timer)
    assert reg.own_extension is not None
    return reg.own_extension


def established(reg: ExtensionRegistry, *, now: float = 0.0) -> str:
    """Start ``reg``, claim and hold the claim unopposed until it is established."""
    mine = claimed(reg, now=now)
    timer = reg.get_timer()
    assert timer == pytest.approx(now + 2 * PROBE_S)
    reg.handle_timer(now=timer)
    ann = reg.announcement
    assert ann is not None and ann.established and ann.extension == mine
    return mine


def of_type(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


# -- probing and claiming -----------------------------------------------------------------------
def test_start_probes_with_no_extension_then_claims_the_preferred_one() -> None:
    """Rule 2: listen PROBE_S announcing no extension, then claim the key's preferred one."""
    reg = registry(ME)
    assert reg.state is RegistryState.IDLE and reg.announcement is None
    reg.start(now=0.0)
    events = drain(reg)
    assert reg.state is RegistryState.PROBING and reg.own_extension is None
    [changed] = of_type(events, AnnouncementChanged)
    assert changed.announcement.extension is None and changed.announcement.claim_seq == 1
    assert verify_announcement(changed.announcement)
    assert reg.get_timer() == pytest.approx(PROBE_S)

    reg.handle_timer(now=PROBE_S - 0.01)
    assert reg.own_extension is None
    reg.handle_timer(now=PROBE_S)
    events = drain(reg)
    preferred = preferred_extension(ME.public_key, 200, 999)
    assert reg.own_extension == preferred
    assert events[0] == ExtensionClaimed(extension=preferred, configured=False)
    [changed] = of_type(events, AnnouncementChanged)
    assert changed.announcement.extension == preferred
    assert not changed.announcement.established
    assert changed.announcement.claim_seq == 2
    assert reg.get_timer() == pytest.approx(2 * PROBE_S)


def test_a_claim_held_unopposed_for_a_probe_becomes_established() -> None:
    """Rule 3: after PROBE_S with no rival the claim is re-announced established."""
    reg = registry(ME)
    mine = claimed(reg)
    drain(reg)
    reg.handle_timer(now=2 * PROBE_S)
    events = drain(reg)
    assert events[0] == ExtensionEstablished(extension=mine)
    [changed] = of_type(events, AnnouncementChanged)
    assert changed.announcement.established and changed.announcement.claim_seq == 3
    assert reg.get_timer() is None and reg.status()["established"] is True


def test_a_contested_claim_is_not_established_until_the_rival_moves() -> None:
    """Rule 3: while a rival claim shows, no timer; it restarts once the rival is gone."""
    rival = larger_than_me()[0]
    reg = registry(ME)
    reg.heard(announce(rival, None), HOST, now=0.0)
    mine = claimed(reg)
    reg.heard(announce(rival, mine, seq=2), HOST, now=PROBE_S + 0.5)
    assert reg.own_extension == mine and reg.get_timer() is None
    reg.heard(announce(rival, "555" if mine != "555" else "556", seq=3), HOST, now=PROBE_S + 1)
    assert reg.get_timer() == pytest.approx(2 * PROBE_S + 1)


def test_preferred_extension_is_spread_over_the_range() -> None:
    values = [int(preferred_extension(identity(i).public_key, 200, 999)) for i in range(400)]
    assert all(200 <= v <= 999 for v in values)
    assert len(set(values)) > 250
    four = preferred_extension(ME.public_key, 2000, 9999)
    assert len(four) == 4


def test_four_digit_configuration_claims_four_digits() -> None:
    reg = registry(ME, config=LanConfig(digits=4))
    assert len(claimed(reg)) == 4


def test_a_configured_extension_is_claimed_at_once_without_probing() -> None:
    reg = registry(ME, configured="100")
    reg.start(now=0.0)
    events = drain(reg)
    assert reg.own_extension == "100" and reg.get_timer() is None
    assert events[0] == ExtensionClaimed(extension="100", configured=True)
    ann = reg.announcement
    assert ann is not None and ann.configured and ann.established and ann.extension == "100"


def test_the_previous_extension_is_tried_first_after_a_restart() -> None:
    reg = registry(ME, previous="777", claim_seq=41)
    assert claimed(reg) == "777"
    assert reg.claim_seq == 43  # probe announcement 42, claim 43


def test_a_previous_extension_outside_the_automatic_range_is_ignored() -> None:
    reg = registry(ME, previous="150")
    assert claimed(reg) == preferred_extension(ME.public_key, 200, 999)


def test_start_twice_is_a_local_error() -> None:
    reg = registry(ME)
    reg.start(now=0.0)
    with pytest.raises(LocalProtocolError):
        reg.start(now=1.0)


def test_bad_local_arguments_raise() -> None:
    with pytest.raises(LocalProtocolError):
        registry(ME, configured="012")
    with pytest.raises(LocalProtocolError):
        registry(ME, claim_seq=2**32 - 1)
    with pytest.raises(ValueError):
        LanConfig(digits=5)
    with pytest.raises(ValueError):
        LanConfig(auto_first=100, auto_last=50)


def test_a_prober_skips_claimed_extensions() -> None:
    """Rule 2: an extension someone already claims is never a candidate."""
    preferred = preferred_extension(ME.public_key, 200, 999)
    reg = registry(ME, previous=preferred)
    reg.heard(announce(PEERS[0], preferred, seq=3), HOST, now=0.0)
    mine = claimed(reg, now=0.1)
    assert mine != preferred
    assert mine == str(int(preferred) + 1) if preferred != "999" else mine == "200"


def test_a_claim_on_the_candidate_during_the_probe_restarts_it_on_another() -> None:
    """Rule 2: probing loses to any claim, and the probe starts over on the next candidate."""
    reg = registry(ME, config=LanConfig(auto_first=200, auto_last=209), previous="203")
    reg.start(now=0.0)
    reg.heard(announce(PEERS[3], None), HOST, now=0.5)
    reg.heard(announce(PEERS[3], "203", seq=2), HOST, now=1.5)
    assert reg.get_timer() == pytest.approx(1.5 + PROBE_S)
    assert reg.counters.probe_restarts == 1
    reg.handle_timer(now=PROBE_S)  # the first probe's end: nothing happens
    assert reg.own_extension is None
    reg.handle_timer(now=1.5 + PROBE_S)
    assert reg.own_extension not in (None, "203")


def test_probing_avoids_the_extension_of_a_phone_that_just_left() -> None:
    """Rule 2: a departed holder's extension is passed over for RESERVE_S when others are free."""
    preferred = preferred_extension(ME.public_key, 200, 999)
    reg = registry(ME)
    reg.heard(announce(PEERS[0], preferred), HOST, now=0.0)
    reg.lost(PEERS[0].public_key, now=1.0)
    assert claimed(reg, now=2.0) != preferred

    later = registry(ME, config=LanConfig(reserve_s=60.0))
    later.heard(announce(PEERS[0], preferred), HOST, now=0.0)
    later.lost(PEERS[0].public_key, now=1.0)
    assert claimed(later, now=61.0) == preferred


def test_the_reserved_extension_is_still_used_when_nothing_else_is_free() -> None:
    reg = registry(ME, config=LanConfig(auto_first=200, auto_last=201))
    reg.heard(announce(PEERS[0], "200"), HOST, now=0.0)
    reg.heard(announce(PEERS[1], "201"), HOST, now=0.0)
    reg.lost(PEERS[0].public_key, now=0.5)
    assert claimed(reg, now=1.0) == "200"


# -- contests between automatic claims ----------------------------------------------------------
def test_an_established_holder_keeps_its_extension_when_a_newcomer_claims_it() -> None:
    """Rule 3: an established claim beats a new one, whatever the keys."""
    for rival in smaller_than_me()[:2]:
        reg = registry(ME)
        mine = established(reg)
        reg.heard(announce(rival, None), HOST, now=5.0)
        drain(reg)
        reg.heard(announce(rival, mine, seq=2), HOST, now=10.0)
        assert reg.own_extension == mine
        assert not of_type(drain(reg), ExtensionChanged)
        peer = next(p for p in reg.peers() if p.public_key == rival.public_key)
        assert peer.extension is None  # the newcomer lost its claim in our view


def test_a_newcomer_whose_probe_missed_the_holder_gives_way() -> None:
    """Rule 3: our claim is new, the holder's established: we move, whatever the keys."""
    for rival in larger_than_me()[:2]:
        reg = registry(ME)
        mine = claimed(reg)
        drain(reg)
        reg.heard(announce(rival, mine, established=True, seq=9), HOST, now=PROBE_S + 0.2)
        events = drain(reg)
        [changed] = of_type(events, ExtensionChanged)
        assert changed.old == mine and changed.winner == rival.public_key
        assert reg.own_extension == changed.new != mine
        assert reg.resolve(mine) is not None
        assert reg.resolve(mine).public_key == rival.public_key  # type: ignore[union-attr]


def test_simultaneous_claims_go_to_the_smaller_key() -> None:
    """Rule 5: both claims new: the smaller public key keeps the extension."""
    bigger, smaller = larger_than_me()[0], smaller_than_me()[0]
    # We have the smaller key: we keep it.
    reg = registry(ME)
    reg.heard(announce(bigger, None), HOST, now=0.0)
    mine = claimed(reg)
    reg.heard(announce(bigger, mine, seq=2), HOST, now=PROBE_S + 0.5)
    assert reg.own_extension == mine
    assert not of_type(drain(reg), ExtensionChanged)
    # The rival has the smaller key: we move to the next free one and re-announce, seq + 1.
    reg = registry(ME)
    reg.heard(announce(smaller, None), HOST, now=0.0)
    mine = claimed(reg)
    seq = reg.claim_seq
    drain(reg)
    reg.heard(announce(smaller, mine, seq=2), HOST, now=PROBE_S + 0.5)
    events = drain(reg)
    [changed] = of_type(events, ExtensionChanged)
    assert changed.winner == smaller.public_key
    [ann] = of_type(events, AnnouncementChanged)
    assert ann.announcement.extension == changed.new and ann.announcement.claim_seq == seq + 1
    assert not ann.announcement.established
    assert reg.counters.claims_lost == 1


def test_two_established_claims_after_a_partition_go_to_the_smaller_key() -> None:
    """Rule 5: both established (they could not hear each other): the key breaks the tie."""
    smaller, bigger = smaller_than_me()[0], larger_than_me()[0]
    reg = registry(ME)
    mine = established(reg)
    reg.heard(announce(bigger, mine, established=True, seq=4), HOST, now=100.0)
    assert reg.own_extension == mine
    reg = registry(ME)
    mine = established(reg)
    reg.heard(announce(smaller, mine, established=True, seq=4), HOST, now=100.0)
    assert reg.own_extension != mine


def test_we_give_way_to_the_strongest_verified_rival() -> None:
    """A pending winner is not yielded to, but a verified rival that also beats us is."""
    binding = Binding()
    pending, verified = smaller_than_me()[0], larger_than_me()[0]
    binding.held.add(pending.public_key)
    reg = registry(ME, binding=binding)
    mine = claimed(reg)
    drain(reg)
    reg.heard(announce(pending, mine, configured=True), HOST, now=3.0)
    assert reg.own_extension == mine
    reg.heard(announce(verified, mine, established=True), HOST, now=3.0)
    [changed] = of_type(drain(reg), ExtensionChanged)
    assert changed.winner == verified.public_key
    assert reg.resolve(mine) is None  # the configured holder is still pending


def test_a_third_phone_resolves_a_contest_like_the_contestants() -> None:
    """Everyone applies the same rule: the established holder is what ``resolve`` returns."""
    holder, newcomer = PEERS[5], PEERS[0]  # the newcomer has the smaller key
    reg = registry(ME)
    reg.heard(announce(holder, "300", established=True, seq=2), HOST, now=0.0)
    reg.heard(announce(newcomer, None), "192.168.1.21", now=1.0)
    reg.heard(announce(newcomer, "300", seq=2), "192.168.1.21", now=10.0)
    found = reg.resolve("300")
    assert found is not None and found.public_key == holder.public_key
    extensions = {p.public_key: p.extension for p in reg.peers()}
    assert extensions == {holder.public_key: "300", newcomer.public_key: None}


# -- configured claims --------------------------------------------------------------------------
def test_a_configured_claim_beats_an_automatic_one() -> None:
    """Rule 3: even an established automatic holder gives way to a configured claim."""
    rival = larger_than_me()[0]
    reg = registry(ME)
    mine = established(reg)
    reg.heard(announce(rival, mine, configured=True), HOST, now=100.0)
    [changed] = of_type(drain(reg), ExtensionChanged)
    assert changed.old == mine and reg.own_extension != mine
    found = reg.resolve(mine)
    assert found is not None and found.configured


def test_a_configured_phone_never_gives_way() -> None:
    reg = registry(ME, configured="201")
    reg.start(now=0.0)
    reg.heard(announce(SMALL, "201", seq=5), HOST, now=0.1)
    assert reg.own_extension == "201"
    assert reg.resolve("201") is None  # our own
    [peer] = reg.peers()
    assert peer.extension is None


def test_two_configured_phones_both_keep_it_and_resolve_is_ambiguous() -> None:
    """Rule 4: a conflict event, both keep the extension, resolve answers None."""
    reg = registry(ME, configured="201")
    reg.start(now=0.0)
    drain(reg)
    reg.heard(announce(SMALL, "201", configured=True), HOST, now=1.0)
    events = drain(reg)
    keys = tuple(sorted([ME.public_key, SMALL.public_key]))
    assert ExtensionConflict(extension="201", keys=keys) in events
    assert reg.own_extension == "201" and reg.resolve("201") is None
    assert reg.conflicts() == {"201": keys}
    [peer] = reg.peers()
    assert peer.extension == "201"
    reg.lost(SMALL.public_key, now=2.0)
    assert ExtensionConflictEnded(extension="201") in drain(reg)
    assert reg.conflicts() == {}


def test_a_conflict_between_two_other_phones_is_reported_too() -> None:
    reg = registry(ME)
    reg.heard(announce(PEERS[1], "150", configured=True), HOST, now=0.0)
    reg.heard(announce(PEERS[2], "150", configured=True), HOST, now=0.0)
    reg.heard(announce(PEERS[3], "150"), HOST, now=0.0)
    assert of_type(drain(reg), ExtensionConflict)
    assert reg.resolve("150") is None
    by_key = {p.public_key: p.extension for p in reg.peers()}
    assert by_key[PEERS[1].public_key] == by_key[PEERS[2].public_key] == "150"
    assert by_key[PEERS[3].public_key] is None


# -- verification -------------------------------------------------------------------------------
def test_peers_appear_only_once_verified() -> None:
    """Rule 1: a pending peer blocks its extension but is neither listed nor resolved."""
    binding = Binding()
    binding.held.add(PEERS[2].public_key)
    reg = registry(ME, binding=binding)
    reg.heard(announce(PEERS[2], "201"), HOST, now=0.0)
    assert reg.peers() == [] and reg.resolve("201") is None and reg.pending_count == 1
    assert not of_type(drain(reg), LanPeerAppeared)
    binding.held.clear()
    reg.bindings_changed(now=1.0)
    [appeared] = of_type(drain(reg), LanPeerAppeared)
    assert appeared.peer.number == sim_number(PEERS[2].public_key)
    assert appeared.peer.host == HOST and appeared.peer.port == 4720
    assert reg.resolve("201") == appeared.peer and reg.pending_count == 0


def test_a_wrong_number_drops_the_peer() -> None:
    binding = Binding()
    binding.wrong.add(PEERS[2].public_key)
    reg = registry(ME, binding=binding)
    reg.heard(announce(PEERS[2], "201"), HOST, now=0.0)
    assert reg.peers() == [] and reg.counters.rejected_number == 1 and reg.pending_count == 0

    binding = Binding()
    binding.held.add(PEERS[2].public_key)
    reg = registry(ME, binding=binding)
    reg.heard(announce(PEERS[2], "201"), HOST, now=0.0)
    binding.held.clear()
    binding.wrong.add(PEERS[2].public_key)
    reg.bindings_changed(now=1.0)
    assert reg.pending_count == 0 and reg.counters.rejected_number == 1


def test_we_never_give_way_to_a_pending_rival_until_it_is_verified() -> None:
    binding = Binding()
    rival = PEERS[6]
    binding.held.add(rival.public_key)
    reg = registry(ME, binding=binding)
    mine = claimed(reg)
    reg.heard(announce(rival, mine, configured=True), HOST, now=5.0)
    assert reg.own_extension == mine
    binding.held.clear()
    reg.bindings_changed(now=6.0)
    assert reg.own_extension != mine


def test_a_verified_peer_is_not_asked_about_again() -> None:
    binding = Binding()
    reg = registry(ME, binding=binding)
    reg.heard(announce(PEERS[1], None, seq=1), HOST, now=0.0)
    reg.heard(announce(PEERS[1], "300", seq=2), HOST, now=1.0)
    assert binding.asked == [PEERS[1].public_key]


def test_bad_signatures_stale_and_own_announcements_are_ignored() -> None:
    reg = registry(ME)
    good = announce(PEERS[1], "300", seq=5)
    forged = dataclasses.replace(good, extension="301", claim_seq=6)
    reg.heard(forged, HOST, now=0.0)
    assert reg.counters.rejected_signature == 1 and reg.peers() == []
    reg.heard(good, HOST, now=0.0)
    reg.heard(announce(PEERS[1], "301", seq=4), HOST, now=1.0)  # older
    reg.heard(announce(PEERS[1], "302", seq=5), HOST, now=1.0)  # same seq, other content
    assert reg.counters.rejected_stale == 2
    reg.heard(announce(ME, "300", seq=99), HOST, now=1.0)
    assert reg.counters.own_echoes == 1
    reg.heard(good, "", now=1.0)
    assert reg.counters.rejected_address == 1
    [peer] = reg.peers()
    assert peer.extension == "300" and peer.host == HOST


def test_the_same_announcement_from_a_new_address_moves_the_peer() -> None:
    reg = registry(ME)
    ann = announce(PEERS[1], "300", seq=5)
    reg.heard(ann, HOST, now=0.0)
    drain(reg)
    reg.heard(ann, "192.168.1.99", now=1.0)
    [updated] = of_type(drain(reg), LanPeerUpdated)
    assert updated.peer.host == "192.168.1.99"


def test_the_number_of_peers_is_bounded() -> None:
    reg = registry(ME, config=LanConfig(max_peers=3))
    for i in range(5):
        reg.heard(announce(PEERS[i], None), HOST, now=0.0)
    assert len(reg.peers()) == 3 and reg.counters.dropped_full == 2
    reg.heard(announce(PEERS[0], "300", seq=2), HOST, now=1.0)  # known peers still update
    assert reg.resolve("300") is not None


def test_lost_peers_are_reported_gone_and_unknown_keys_ignored() -> None:
    reg = registry(ME)
    reg.heard(announce(PEERS[1], "300"), HOST, now=0.0)
    drain(reg)
    reg.lost(PEERS[2].public_key, now=1.0)
    assert drain(reg) == []
    reg.lost(PEERS[1].public_key, now=1.0)
    assert drain(reg) == [
        LanPeerGone(public_key=PEERS[1].public_key, number=sim_number(PEERS[1].public_key))
    ]
    assert reg.resolve("300") is None


def test_a_loser_with_no_free_extension_announces_none_and_waits() -> None:
    reg = registry(ME, config=LanConfig(auto_first=200, auto_last=201))
    reg.heard(announce(PEERS[1], "200"), HOST, now=0.0)
    assert claimed(reg) == "201"
    reg.heard(announce(PEERS[2], "201", configured=True), HOST, now=10.0)
    events = drain(reg)
    assert ExtensionLost(extension="201", winner=PEERS[2].public_key) in events
    assert reg.own_extension is None and reg.get_timer() is None
    ann = reg.announcement
    assert ann is not None and ann.extension is None
    reg.lost(PEERS[1].public_key, now=20.0)
    timer = reg.get_timer()
    assert timer == pytest.approx(20.0 + PROBE_S)
    reg.handle_timer(now=timer)
    assert reg.own_extension == "200"


def test_status_is_json_ready() -> None:
    reg = registry(ME)
    claimed(reg)
    status = reg.status()
    assert status["state"] == "claimed" and status["extension"] == reg.own_extension
    assert isinstance(status["counters"], dict)
