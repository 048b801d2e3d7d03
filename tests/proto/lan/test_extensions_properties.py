"""Properties of the extension registry under random histories (docs/lan.md §3).

Two kinds of run: one registry fed random announcements, departures, verification delays and
time steps, checked after every step; and whole simulated LANs of registries that start,
collide and leave, checked once they have settled: registries on ``peerline.sim``'s
``Simulator`` and ``LanSegment`` (``lan_harness.RegistryMember``), one seed per LAN.
"""

import dataclasses
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from lan_harness import Binding, RegistryMember, announce, identity, registry
from peerline.proto.identity import Identity
from peerline.proto.lan import (
    PROBE_S,
    ExtensionChanged,
    ExtensionClaimed,
    ExtensionEstablished,
    ExtensionLost,
    ExtensionRegistry,
    LanAnnouncement,
    LanConfig,
    LanEvent,
    RegistryState,
)
from peerline.sim import Simulator
from peerline.sim.lan import LanSegment

EVERYONE = sorted((identity(100 + i) for i in range(7)), key=lambda x: x.public_key)
ME = EVERYONE[3]  # three keys below ours, three above
POOL = [p for p in EVERYONE if p is not ME]
EXTENSIONS = ["200", "201", "202", "203", "150", None, "ours", "ours"]
"""``ours`` stands for whatever extension the registry holds at that moment: contests."""
CONFIG = LanConfig(auto_first=200, auto_last=203)


def strength(ann: LanAnnouncement) -> int:
    return 2 if ann.configured else 1 if ann.established else 0


@dataclass
class Model:
    """What the test told the registry: enough to judge each change of our claim."""

    present: dict[bytes, LanAnnouncement] = field(default_factory=dict)
    pending: set[bytes] = field(default_factory=set)
    seq: dict[bytes, int] = field(default_factory=dict)
    history: dict[bytes, list[LanAnnouncement]] = field(default_factory=dict)
    claimed_at: float = 0.0
    contested_at: float = float("-inf")

    def rivals_of(self, extension: str | None) -> list[bytes]:
        return [k for k, a in self.present.items() if extension and a.extension == extension]


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("hear"),
            st.integers(0, len(POOL) - 1),
            st.sampled_from(EXTENSIONS),
            st.sampled_from([0, 0, 1, 2]),
            st.sampled_from(["10.0.0.1", "10.0.0.2"]),
        ),
        st.tuples(st.just("lose"), st.integers(0, len(POOL) - 1)),
        st.tuples(st.just("tick"), st.floats(0.0, 3.0)),
        st.tuples(st.just("hold"), st.integers(0, len(POOL) - 1)),
        st.tuples(st.just("hold"), st.integers(0, len(POOL) - 1)),
        st.tuples(st.just("release")),
        st.tuples(st.just("forge"), st.integers(0, len(POOL) - 1)),
        st.tuples(st.just("replay"), st.integers(0, len(POOL) - 1)),
    ),
    max_size=60,
)


def check_view(reg: ExtensionRegistry, model: Model) -> None:
    """Invariants that hold after every input."""
    peers = reg.peers()
    assert all(p.public_key not in model.pending for p in peers)
    assert {p.public_key for p in peers} <= set(model.present)
    by_ext: dict[str, list] = {}
    for p in peers:
        if p.extension is not None:
            by_ext.setdefault(p.extension, []).append(p)
    conflicts = reg.conflicts()
    for ext, holders in by_ext.items():
        if len(holders) > 1:
            # Only configured phones share an extension, and then nobody resolves it.
            assert all(h.configured for h in holders) and ext in conflicts
            assert reg.resolve(ext) is None
        elif ext not in conflicts:
            assert reg.resolve(ext) == holders[0]
    own = reg.own_extension
    if own is not None:
        assert reg.resolve(own) is None
        if own not in conflicts:
            assert own not in by_ext


def check_own_change(
    reg: ExtensionRegistry,
    model: Model,
    event: ExtensionChanged | ExtensionLost,
    before: LanAnnouncement,
) -> None:
    """Our claim moved: only to a verified rival whose claim beats ours (rules 3 and 5)."""
    old = event.old if isinstance(event, ExtensionChanged) else event.extension
    assert before.extension == old and not before.configured
    winner = event.winner
    assert winner in model.present and winner not in model.pending
    theirs = model.present[winner]
    assert theirs.extension == old
    assert (strength(theirs), reg.public_key) > (strength(before), winner)
    if before.established:
        # The brief's promise: an established claim yields only to a configured one, or to
        # another established one with a smaller key (two phones that could not hear each
        # other while claiming).
        assert theirs.configured or (theirs.established and winner < reg.public_key)


def run_single(steps: list[tuple], *, configured: str | None) -> None:
    binding = Binding()
    reg = registry(ME, binding=binding, config=CONFIG, configured=configured)
    model = Model()
    now = 0.0
    reg.start(now=now)
    last_own: str | None = reg.own_extension

    def settle(before: LanAnnouncement | None) -> None:
        nonlocal last_own
        events: list[LanEvent] = []
        while (e := reg.next_event()) is not None:
            events.append(e)
        for event in events:
            if isinstance(event, ExtensionChanged | ExtensionLost):
                assert configured is None and before is not None
                check_own_change(reg, model, event, before)
            if isinstance(event, ExtensionClaimed | ExtensionChanged):
                model.claimed_at = now
            if isinstance(event, ExtensionEstablished):
                assert not model.rivals_of(event.extension)
                assert now - max(model.claimed_at, model.contested_at) >= PROBE_S - 1e-9
        if reg.own_extension != last_own and last_own is not None:
            assert any(isinstance(e, ExtensionChanged | ExtensionLost) for e in events)
        if reg.own_extension is not None and last_own is None:
            assert any(isinstance(e, ExtensionClaimed | ExtensionChanged) for e in events)
        last_own = reg.own_extension
        if model.rivals_of(reg.own_extension):
            model.contested_at = now
        check_view(reg, model)

    settle(None)
    for step in steps:
        kind = step[0]
        before = reg.announcement
        if model.rivals_of(reg.own_extension):
            model.contested_at = now
        if kind == "tick":
            target = now + step[1]
            while (t := reg.get_timer()) is not None and t <= target:
                now = t
                before = reg.announcement
                reg.handle_timer(now=now)
                settle(before)
            now = target
            continue
        who: Identity = POOL[step[1]] if len(step) > 1 else POOL[0]
        key = who.public_key
        if kind == "hear":
            _, _, ext, power, host = step
            if ext == "ours":
                ext = reg.own_extension or "200"
            seq = model.seq.get(key, 0) + 1
            ann = announce(
                who,
                ext,
                configured=power == 2 and ext is not None,
                established=power >= 1 and ext is not None,
                seq=seq,
            )
            model.seq[key] = seq
            model.history.setdefault(key, []).append(ann)
            if key not in model.present and key in binding.held:
                model.pending.add(key)
            model.present[key] = ann
            reg.heard(ann, host, now=now)
        elif kind == "lose":
            model.present.pop(key, None)
            model.pending.discard(key)
            reg.lost(key, now=now)
        elif kind == "hold":
            binding.held.add(key)
        elif kind == "release":
            binding.held.clear()
            model.pending.clear()
            reg.bindings_changed(now=now)
        elif kind == "forge":
            real = announce(who, "201", seq=10**6)
            forged = dataclasses.replace(real, extension="202", configured=True)
            views = (reg.peers(), reg.own_extension)
            reg.heard(forged, "10.0.0.9", now=now)
            assert (reg.peers(), reg.own_extension) == views
        elif kind == "replay":
            older = model.history.get(key, [])[:-1]
            if older and key in model.present:
                views = (reg.peers(), reg.own_extension)
                reg.heard(older[-1], "10.0.0.9", now=now)
                assert (reg.peers(), reg.own_extension) == views
        settle(before)


@settings(max_examples=500, deadline=None)
@given(ops, st.sampled_from([None, None, None, "201", "150"]))
def test_random_histories_keep_extensions_unique_and_own_claim_fair(
    steps: list[tuple], configured: str | None
) -> None:
    """No two verified automatic peers resolve to one extension; our claim moves only to a
    verified rival with a stronger claim (or an equal one and a smaller key); an established
    claim only to a configured one or an established one with a smaller key."""
    run_single(steps, configured=configured)


# -- simulated LANs -------------------------------------------------------------------------------
@dataclass
class LanSpec:
    phones: list[dict]
    max_delay: float
    seed: int
    loss: float = 0.0


@st.composite
def lans(draw: st.DrawFn, *, lossy: bool = False) -> LanSpec:
    n = draw(st.integers(2, 6))
    phones = []
    for i in range(n):
        phones.append(
            {
                "seed": draw(st.integers(0, 10**6)),
                "start": draw(st.sampled_from([0.0, 0.0, 0.3, 1.0, 1.9, 2.5, 4.0, 10.0])),
                "configured": draw(st.sampled_from([None, None, None, "150", "201"])),
                "previous": draw(st.sampled_from([None, None, "200", "201", "202"])),
                "leave": draw(st.sampled_from([None, None, None, 3.0, 12.0])) if i else None,
            }
        )
    max_delay = draw(st.sampled_from([0.0, 0.05, 0.3, 0.9] + ([3.0] if lossy else [])))
    loss = draw(st.sampled_from([0.2, 0.5, 0.8])) if lossy else 0.0
    return LanSpec(phones, max_delay, draw(st.integers(0, 2**32)), loss)


@dataclass
class Lan:
    sim: Simulator
    members: list[RegistryMember]

    def run(self, *, until: float) -> None:
        self.sim.run_until(until)

    def live(self) -> list[RegistryMember]:
        return [m for m in self.members if m.live]


def build_lan(spec: LanSpec) -> Lan:
    """The spec's phones as registries on one ``LanSegment``; announcements lost (``loss``)
    until 40 s, each phone starting and leaving when its spec says."""
    sim = Simulator(spec.seed)
    segment = LanSegment(sim, max_delay=spec.max_delay, loss=spec.loss, loss_until=40.0)
    config = LanConfig(auto_first=200, auto_last=200 + len(spec.phones))
    members = []
    seen: set[int] = set()
    for i, p in enumerate(spec.phones):
        who = identity(p["seed"] if p["seed"] not in seen else 10**7 + i)
        seen.add(p["seed"])
        reg = registry(who, config=config, configured=p["configured"], previous=p["previous"])
        member = RegistryMember(reg, f"10.0.0.{i + 1}", sim=sim, segment=segment)
        sim.call_at(p["start"], member.start)
        if p["leave"] is not None:
            sim.call_at(p["leave"], member.leave)
        members.append(member)
    return Lan(sim, members)


def check_settled(lan: Lan) -> None:
    """Every live phone holds an extension, automatic ones distinct and clear of configured
    ones, and every phone resolves every other's extension to it (None if configured twice)."""
    live = lan.live()
    for p in live:
        assert p.reg.state is RegistryState.CLAIMED, (p.events, lan.sim.trace_tail())
    announced = {p.reg.public_key: p.reg.announcement for p in live}
    configured = [a.extension for a in announced.values() if a is not None and a.configured]
    autos = [a.extension for a in announced.values() if a is not None and not a.configured]
    assert len(set(autos)) == len(autos)
    assert not set(autos) & set(configured)
    for me in live:
        seen = {peer.public_key: peer for peer in me.reg.peers()}
        assert set(seen) == {p.reg.public_key for p in live if p is not me}
        for other in live:
            if other is me:
                continue
            ext = other.reg.own_extension
            assert ext is not None
            assert seen[other.reg.public_key].extension == ext
            found = me.reg.resolve(ext)
            if configured.count(ext) > 1:
                assert found is None and ext in me.reg.conflicts()
            else:
                assert found is not None and found.public_key == other.reg.public_key
                assert found.host == other.host


@settings(max_examples=300, deadline=None)
@given(lans())
def test_a_simulated_lan_settles_on_distinct_extensions_everyone_agrees_on(
    spec: LanSpec,
) -> None:
    """Announcements take up to 0.9 s, none lost: the LAN settles (``check_settled``)."""
    lan = build_lan(spec)
    lan.run(until=60.0)
    check_settled(lan)


@settings(max_examples=300, deadline=None)
@given(lans(lossy=True))
def test_a_lossy_lan_settles_once_announcements_get_through(spec: LanSpec) -> None:
    """Up to 80 % of announcements lost (and up to 3 s late) for the first 40 s, re-announced
    every 5 s: phones may hold one extension twice for a while, but once they hear each other
    they agree, and the LAN settles as if nothing had been lost."""
    lan = build_lan(spec)
    lan.run(until=80.0)
    check_settled(lan)


@settings(max_examples=100, deadline=None)
@given(lans())
def test_phones_that_start_apart_never_change_extension(spec: LanSpec) -> None:
    """A phone that starts when the others have settled keeps the extension it first claims,
    unless a configured phone takes it: probing finds every existing claim."""
    for i, p in enumerate(spec.phones):
        p["start"] = 10.0 * i
        p["leave"] = None
    lan = build_lan(spec)
    lan.run(until=10.0 * len(spec.phones) + 30.0)
    configured = {p["configured"] for p in spec.phones} - {None}
    for member in lan.members:
        claims = [e for e in member.events if isinstance(e, ExtensionClaimed)]
        moves = [e for e in member.events if isinstance(e, ExtensionChanged | ExtensionLost)]
        assert len(claims) == 1
        for move in moves:
            old = move.old if isinstance(move, ExtensionChanged) else move.extension
            assert old in configured
