"""LAN groups in the announcement and the registry (docs/lan.md §2 and §7): the signed group
fields and ``grp`` TXT value, malformed ones refused, and ``ExtensionRegistry.group``."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lan_harness import Binding, identity
from peerline.errors import DecodeError, LocalProtocolError
from peerline.proto.identity import Identity
from peerline.proto.lan import (
    MAX_GROUPS,
    ExtensionRegistry,
    GroupMode,
    LanAnnouncement,
    LanConfig,
    LanGroup,
    canonical_groups,
    from_txt,
    sign_announcement,
    to_txt,
    verify_announcement,
)
from peerline.sim.numbers import sim_number

ALL, TURN, PAGE = GroupMode.RING_ALL, GroupMode.IN_TURN, GroupMode.PAGE
ME = identity(0)


def announce(
    who: Identity, groups: tuple[LanGroup, ...], *, extension: str | None = "201", seq: int = 1
) -> LanAnnouncement:
    return sign_announcement(
        who,
        number=sim_number(who.public_key),
        port=4720,
        extension=extension,
        configured=extension is not None,
        established=extension is not None,
        claim_seq=seq,
        groups=groups,
    )


GROUPS = (LanGroup("700", ALL), LanGroup("701", TURN), LanGroup("8000", PAGE))


def test_a_phone_in_no_group_signs_exactly_the_bytes_it_signed_before_groups() -> None:
    ann = announce(ME, ())
    assert len(ann.signed_bytes()) == 69 and "grp" not in to_txt(ann)


def test_groups_are_signed_after_claim_seq_and_travel_as_grp() -> None:
    ann = announce(ME, GROUPS)
    tail = ann.signed_bytes()[69:]
    assert tail == b"\x03" + b"\x03700\x00" + b"\x03701\x01" + b"\x048000\x02"
    assert to_txt(ann)["grp"] == b"700,701t,8000p"
    back = from_txt({k.encode(): v for k, v in to_txt(ann).items()})
    assert back == ann and verify_announcement(back)


def test_a_changed_group_breaks_the_signature() -> None:
    ann = announce(ME, GROUPS)
    txt = to_txt(ann)
    txt["grp"] = b"700,701,8000p"  # a member of an in-turn group claims ring all
    assert not verify_announcement(from_txt(txt))
    del txt["grp"]
    assert not verify_announcement(from_txt(txt))


@pytest.mark.parametrize(
    "grp",
    [
        b"",
        b"701,700",  # not in increasing order
        b"700,700t",  # twice
        b"070",
        b"70",
        b"700x",
        b"700tp",
        b"700,",
        b",".join(b"%d" % (700 + i) for i in range(MAX_GROUPS + 1)),
    ],
)
def test_a_malformed_grp_is_refused(grp: bytes) -> None:
    txt = to_txt(announce(ME, GROUPS))
    txt["grp"] = grp
    with pytest.raises(DecodeError):
        from_txt(txt)


def test_a_phone_cannot_announce_its_own_extension_as_a_group() -> None:
    with pytest.raises(ValueError):
        announce(ME, (LanGroup("201", ALL),), extension="201")


@given(st.text(alphabet="0123456789tp,x", max_size=60))
def test_any_grp_value_decodes_or_raises_decode_error(grp: str) -> None:
    txt = to_txt(announce(ME, GROUPS))
    txt["grp"] = grp.encode()
    try:
        ann = from_txt(txt)
    except DecodeError:
        return
    assert list(ann.groups) == sorted(ann.groups) and len(ann.groups) <= MAX_GROUPS


def test_canonical_groups_sorts_and_refuses_repeats() -> None:
    assert canonical_groups([GROUPS[2], GROUPS[0], GROUPS[1]]) == GROUPS
    with pytest.raises(ValueError):
        canonical_groups([LanGroup("700", ALL), LanGroup("700", PAGE)])


def registry(
    who: Identity, groups: tuple[LanGroup, ...] = (), **kwargs: object
) -> ExtensionRegistry:
    reg = ExtensionRegistry(
        identity=who,
        number=sim_number(who.public_key),
        port=4720,
        binding=Binding(),
        config=LanConfig(auto_first=700, auto_last=702),
        groups=groups,
        **kwargs,  # type: ignore[arg-type]
    )
    reg.start(now=0.0)
    return reg


def test_group_lists_verified_members_in_extension_order_without_this_phone() -> None:
    me = registry(ME, (LanGroup("800", TURN),))
    b, c, d = identity(1), identity(2), identity(3)
    me.heard(announce(c, (LanGroup("800", TURN),), extension="203"), "192.168.1.3", now=0.1)
    me.heard(announce(b, (LanGroup("800", TURN),), extension="202"), "192.168.1.2", now=0.1)
    me.heard(announce(d, (LanGroup("801", PAGE),), extension="204"), "192.168.1.4", now=0.1)
    found = me.group("800")
    assert found is not None
    mode, members = found
    assert mode is TURN and [m.public_key for m in members] == [b.public_key, c.public_key]
    assert members[0].groups == (LanGroup("800", TURN),)
    page = me.group("801")
    assert page is not None and page[0] is PAGE
    assert [m.public_key for m in page[1]] == [d.public_key]
    assert me.group("802") is None and me.resolve("800") is None


def test_the_mode_most_members_announce_wins_and_a_tie_rings_all() -> None:
    me = registry(ME)
    peers = [identity(i) for i in range(1, 4)]
    modes = (TURN, TURN, PAGE)
    for i, (p, m) in enumerate(zip(peers, modes, strict=True)):
        me.heard(announce(p, (LanGroup("800", m),), extension=f"20{i + 2}"), "h", now=0.1)
    assert me.group("800") is not None and me.group("800")[0] is TURN  # type: ignore[index]
    me.lost(peers[0].public_key, now=0.2)  # one turn, one page: a tie
    assert me.group("800")[0] is ALL  # type: ignore[index]


def test_an_automatic_claim_never_takes_a_group_extension() -> None:
    other = identity(1)
    reg = ExtensionRegistry(
        identity=ME,
        number=sim_number(ME.public_key),
        port=4720,
        binding=Binding(),
        config=LanConfig(auto_first=700, auto_last=702),
        groups=(LanGroup("701", ALL),),
    )
    reg.start(now=0.0)
    reg.heard(announce(other, (LanGroup("700", PAGE),), extension=None), "h", now=0.1)
    reg.handle_timer(now=reg.get_timer() or 0.0)
    assert reg.own_extension == "702"


def test_a_configured_extension_may_not_also_be_a_group() -> None:
    with pytest.raises(LocalProtocolError):
        ExtensionRegistry(
            identity=ME,
            number=sim_number(ME.public_key),
            port=4720,
            binding=Binding(),
            configured_extension="700",
            groups=(LanGroup("700", ALL),),
        )
