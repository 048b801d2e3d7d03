"""Short LAN extensions (``201``) claimed and defended with no server: a sans-I/O registry.

Every phone runs one ``ExtensionRegistry``. It is fed what LAN discovery hears (``heard``,
``lost``) and the time (``handle_timer``), and hands out events, the next deadline and this
phone's signed announcement. Who holds an extension is a function of the announcements alone,
never of when each phone happened to hear them, so every phone that has heard the same
announcements draws the same map without talking about it. The rules (``docs/lan.md`` §3 gives
the reasoning and the failure cases):

1. **Only checked claims count.** An announcement is kept only if it is signed by the key it
   carries (``verify_announcement``). The key must also derive to the announced number
   (argon2id, too slow for the event loop): the ``NumberBinding`` port answers now or None
   ("being derived"); the caller calls ``bindings_changed`` when it knows more. A pending peer
   already counts as a claimant (nobody picks its extension, and it may win a contest), but
   ``peers()`` and ``resolve()`` show only verified peers, and this phone gives up its own
   extension only to a verified rival. A wrong number drops the peer. At most
   ``LanConfig.max_peers`` (1024) peers are held, pending ones included.
2. **Probe before claiming.** An automatic extension is claimed only after ``probe_s`` (2 s)
   of listening while no one claims it, as mDNS probes a name (RFC 6762 §8.1); meanwhile the
   phone announces itself with no extension. The first candidate is the persisted previous
   extension, then one derived from the key (``preferred_extension``: 200 + BLAKE2b(key) mod
   800 for 3 digits, 2000 + ... mod 8000 for 4), then the next free one upwards, wrapping.
   Extensions whose holder left in the last ``reserve_s`` (10 min) are skipped while others
   are free, so a phone that reboots gets its own back. If a claim for the candidate appears
   during the probe, the phone picks another and probes again. A configured extension is
   claimed at once, with no probe.
3. **Claims have a strength, announced and signed:** *configured* (an administrator's) beats
   *established*, which beats *new*. An automatic claim is new when made and becomes
   established once it has been held for ``probe_s`` with no rival claim in sight; the phone
   then re-announces it with ``established`` set (``ExtensionEstablished``). A newcomer whose
   probe missed the holder (lost packets) therefore loses to it, and a phone that already
   holds an extension keeps it when a newcomer appears.
4. **Two configured claims** for one extension: both phones keep it, everyone raises
   ``ExtensionConflict`` and ``resolve`` answers None for it (dialling it would be a guess).
5. **Otherwise, between claims of equal strength the smaller public key wins** (bytewise):
   two new claims made in the same probe window, or two established ones meeting after a
   partition heals. The loser picks the next free extension at once (it has listened for a
   whole probe already) and re-announces it, new, with ``claim_seq + 1``; with none free it
   announces no extension (``ExtensionLost``) and probes again when one is freed.

Because the outcome depends only on announcements, views that have heard the same ones agree,
and a phone gives way only when the final outcome also says it loses (a rival's claim only
ever gets stronger). Lost or late packets delay agreement but cannot leave two phones both
keeping one automatic extension once they hear each other.

``claim_seq`` orders one key's announcements: a lower one is stale, and an equal one with
different content is refused (keep the first). A phone therefore starts from its persisted
``claim_seq``. Our own announcement heard back is ignored.
"""

import hashlib
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Final, NamedTuple, Protocol

from peerline.errors import LocalProtocolError
from peerline.proto.identity import Identity

from .announcement import (
    MAX_CLAIM_SEQ,
    GroupMode,
    LanAnnouncement,
    LanGroup,
    canonical_groups,
    is_extension,
    sign_announcement,
    verify_announcement,
)
from .events import (
    AnnouncementChanged,
    ExtensionChanged,
    ExtensionClaimed,
    ExtensionConflict,
    ExtensionConflictEnded,
    ExtensionEstablished,
    ExtensionLost,
    LanEvent,
    LanPeer,
    LanPeerAppeared,
    LanPeerGone,
    LanPeerUpdated,
)

__all__ = [
    "AUTO_RANGES",
    "MAX_LAN_PEERS",
    "PROBE_S",
    "RESERVE_S",
    "ExtensionRegistry",
    "LanConfig",
    "LanCounters",
    "NumberBinding",
    "RegistryState",
    "preferred_extension",
]

PROBE_S: Final = 2.0
"""Seconds of listening before an automatic claim, and of holding it unopposed before it is
established.

RFC 6762 §8.1 probes for about 750 ms; we wait longer because a whole announcement must cross
the LAN, be resolved and be checked in that time, and a phone boots only now and then.
"""

MAX_LAN_PEERS: Final = 1024
"""Default bound on peers held (verified and pending): a LAN of phones, not the internet."""

RESERVE_S: Final = 600.0
"""How long a departed phone's extension is passed over when others are free."""

AUTO_RANGES: Final = {3: (200, 999), 4: (2000, 9999)}
"""Automatic extensions by length. 100-199 and 1000-1999 stay free for configured ones
(reception, a hotline), and nothing automatic starts with 0 (left to dial-out prefixes)."""

_EXTENSION_PERSON: Final = b"peerline-ext"
"""BLAKE2b personalisation for the preferred extension: independent of every other hash."""


class NumberBinding(Protocol):
    """Which number a public key derives to (argon2id; slow, so it may answer "not yet").

    The same shape as ``peerline.proto.overlay.records.NumberBinding``: one daemon object can
    serve both.
    """

    def number_of(self, public_key: bytes) -> str | None:
        """The number, if known now; None means "being derived, ask again later".

        An implementation that answers None must make its driver call
        ``ExtensionRegistry.bindings_changed`` once it knows more.
        """
        ...


def preferred_extension(public_key: bytes, first: int, last: int) -> str:
    """The automatic extension a key tries first: spread evenly over ``first..last``.

    Keys, not numbers, because the key is known at once and the number only after argon2id.
    """
    digest = hashlib.blake2b(public_key, digest_size=8, person=_EXTENSION_PERSON).digest()
    return str(first + int.from_bytes(digest, "big") % (last - first + 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class LanConfig:
    """Tunables of the extension registry; none changes the announcement format."""

    digits: int = 3
    "Length of automatic extensions: 3 (200-999) or 4 (2000-9999)."
    probe_s: float = PROBE_S
    "Listening time before an automatic claim, and unopposed time before it is established."
    max_peers: int = MAX_LAN_PEERS
    reserve_s: float = RESERVE_S
    auto_first: int | None = None
    "First automatic extension; default from ``AUTO_RANGES`` (tests narrow it to force clashes)."
    auto_last: int | None = None

    def __post_init__(self) -> None:
        if self.digits not in AUTO_RANGES:
            raise ValueError("digits must be 3 or 4")
        if not (self.probe_s > 0 and self.reserve_s >= 0 and self.max_peers >= 1):
            raise ValueError("probe_s > 0, reserve_s >= 0 and max_peers >= 1")
        first, last = self.auto_range
        low, high = 10 ** (self.digits - 1), 10**self.digits - 1
        if not low <= first <= last <= high:
            raise ValueError(f"automatic range must lie in {low}..{high}, first <= last")

    @property
    def auto_range(self) -> tuple[int, int]:
        default_first, default_last = AUTO_RANGES[self.digits]
        first = default_first if self.auto_first is None else self.auto_first
        last = default_last if self.auto_last is None else self.auto_last
        return first, last


@dataclass(slots=True)
class LanCounters:
    heard: int = 0
    own_echoes: int = 0
    "Our own announcement, heard back through the browser."
    rejected_signature: int = 0
    rejected_number: int = 0
    "Key does not derive to the announced number."
    rejected_stale: int = 0
    "Lower claim_seq than held, or the same claim_seq with different content."
    rejected_address: int = 0
    dropped_full: int = 0
    "New peers refused because ``max_peers`` are held."
    probe_restarts: int = 0
    "Our candidate was claimed by someone else while we probed."
    claims_lost: int = 0
    "Times this phone gave its extension up to a winning rival."

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class RegistryState(Enum):
    IDLE = "idle"
    "Not started: no announcement yet."
    PROBING = "probing"
    "Listening before a claim (or waiting for a free extension); announcing none."
    CLAIMED = "claimed"


class RegistryTrigger(Enum):
    """What moves the registry's own claim: the second key of ``TRANSITIONS``."""

    PROBE = "probe"
    "Start listening for an automatic extension."
    CLAIM = "claim"
    "Claim the probed extension (its probe ended unopposed), or the configured one."
    ESTABLISH = "establish"
    "The claim was held a whole probe with no rival."
    CHANGE = "change"
    "Lost the claim to a stronger one and took the next free extension at once."
    LOSE = "lose"
    "Lost the claim and no extension is free: listen again."


TRANSITIONS: dict[tuple[RegistryState, RegistryTrigger], RegistryState] = {
    (RegistryState.IDLE, RegistryTrigger.PROBE): RegistryState.PROBING,
    (RegistryState.IDLE, RegistryTrigger.CLAIM): RegistryState.CLAIMED,
    (RegistryState.PROBING, RegistryTrigger.CLAIM): RegistryState.CLAIMED,
    (RegistryState.CLAIMED, RegistryTrigger.ESTABLISH): RegistryState.CLAIMED,
    (RegistryState.CLAIMED, RegistryTrigger.CHANGE): RegistryState.CLAIMED,
    (RegistryState.CLAIMED, RegistryTrigger.LOSE): RegistryState.PROBING,
}
"""(state, trigger) -> the next state of this phone's own claim (docs/lan.md §3)."""


@dataclass(slots=True)
class _Peer:
    ann: LanAnnouncement
    host: str
    verified: bool


class _Claim(NamedTuple):
    strength: int
    "2 configured, 1 established, 0 new (rule 3)."
    key: bytes


def _beats(a: _Claim, b: _Claim) -> bool:
    """Rules 3 and 5: the stronger claim wins, then the smaller key."""
    return a.strength > b.strength or (a.strength == b.strength and a.key < b.key)


def _strength(ann: LanAnnouncement) -> int:
    return 2 if ann.configured else 1 if ann.established else 0


class ExtensionRegistry:
    """Who holds which LAN extension, as this phone sees it, and this phone's own claim.

    Sans-I/O: the driver (``peerline.runtime.lan.LanDriver``) feeds ``heard``/``lost`` from
    zeroconf and ``handle_timer`` at ``get_timer()``, drains ``next_event()``, and registers
    ``announcement`` whenever ``AnnouncementChanged`` comes out.

    Example::

        reg = ExtensionRegistry(identity=me, number=n, port=4433, binding=binding)
        reg.start(now=0.0)                       # probing, announcing no extension
        reg.heard(their_ann, "192.168.1.20", now=0.5)
        reg.handle_timer(now=reg.get_timer())    # claims, e.g. "417"
        reg.resolve("201")                       # -> LanPeer or None
    """

    def __init__(
        self,
        *,
        identity: Identity,
        number: str,
        port: int,
        binding: NumberBinding,
        config: LanConfig | None = None,
        configured_extension: str | None = None,
        previous_extension: str | None = None,
        claim_seq: int = 0,
        groups: tuple[LanGroup, ...] = (),
    ) -> None:
        """``claim_seq`` is the last one this phone announced (persisted), or 0 at first boot.

        ``configured_extension`` is the administrator's (always kept); ``previous_extension``
        the automatic one held before a restart (tried first; ignored if outside the range).
        """
        self.config = config or LanConfig()
        if configured_extension is not None and not is_extension(configured_extension):
            raise LocalProtocolError("configured extension must be 3-4 digits, not 0-prefixed")
        if not (type(claim_seq) is int and 0 <= claim_seq < MAX_CLAIM_SEQ):
            raise LocalProtocolError("claim_seq must be in 0..2**32-2")
        self.identity = identity
        self.public_key = identity.public_key
        self.number = number
        self.port = port
        self.binding = binding
        self.counters = LanCounters()
        try:
            self.groups = canonical_groups(groups)
        except ValueError as exc:
            raise LocalProtocolError(f"LAN groups: {exc}") from None
        if configured_extension is not None and any(
            g.extension == configured_extension for g in self.groups
        ):
            raise LocalProtocolError("the configured extension cannot also be a group")
        # Build one announcement now so a bad number or port fails here, not at start().
        sign_announcement(
            identity,
            number=number,
            port=port,
            extension=None,
            configured=False,
            established=False,
            claim_seq=0,
        )
        self._configured = configured_extension
        first, last = self.config.auto_range
        self._first, self._last = first, last
        self._previous: str | None = None
        if (
            previous_extension is not None
            and is_extension(previous_extension)
            and first <= int(previous_extension) <= last
        ):
            self._previous = previous_extension
        self._preferred = int(preferred_extension(self.public_key, first, last))
        self._seq = claim_seq
        self._state = RegistryState.IDLE
        self._candidate: str | None = None
        self._probe_until: float | None = None
        self._own: str | None = None
        self._established = False
        self._established_at: float | None = None
        self._announcement: LanAnnouncement | None = None
        self._peers: dict[bytes, _Peer] = {}
        self._reserved: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._events: deque[LanEvent] = deque()
        self._winners: dict[str, bytes] = {}
        self._conflicts: dict[str, tuple[bytes, ...]] = {}
        self._reported_conflicts: dict[str, tuple[bytes, ...]] = {}
        self._view: dict[bytes, LanPeer] = {}

    # -- API ----------------------------------------------------------------------------------
    def start(self, *, now: float) -> None:
        """Begin: claim the configured extension, or probe for an automatic one.

        Then: ``next_event`` (``AnnouncementChanged`` carries the first announcement) and
        ``get_timer``. Raises LocalProtocolError if already started.
        """
        if self._state is not RegistryState.IDLE:
            raise LocalProtocolError("the registry is already started")
        if self._configured is not None:
            self._claim(self._configured, now)
        else:
            self._move(RegistryTrigger.PROBE)
            self._begin_probe(now)
        self._publish()
        self._reconcile(now)

    def heard(self, announcement: LanAnnouncement, addr_host: str, *, now: float) -> None:
        """An announcement arrived from ``addr_host`` (new or changed). Never raises."""
        c = self.counters
        c.heard += 1
        ann = announcement
        if ann.public_key == self.public_key:
            c.own_echoes += 1
            return
        if not (isinstance(addr_host, str) and 0 < len(addr_host) <= 64):
            c.rejected_address += 1
            return
        if not verify_announcement(ann):
            c.rejected_signature += 1
            return
        peer = self._peers.get(ann.public_key)
        if peer is not None:
            held = peer.ann
            if ann.claim_seq < held.claim_seq or (ann.claim_seq == held.claim_seq and ann != held):
                c.rejected_stale += 1
                return
        elif len(self._peers) >= self.config.max_peers:
            c.dropped_full += 1
            return
        if peer is not None and peer.verified and ann.number == peer.ann.number:
            number: str | None = ann.number  # a key derives to one number: no need to ask
        else:
            number = self.binding.number_of(ann.public_key)
        if number is not None and number != ann.number:
            c.rejected_number += 1
            return
        if peer is None:
            self._peers[ann.public_key] = _Peer(ann, addr_host, number is not None)
        else:
            peer.ann = ann
            peer.host = addr_host
            peer.verified = number is not None
        self._reconcile(now)

    def lost(self, public_key: bytes, *, now: float) -> None:
        """The phone with this key left (goodbye or expired records). Unknown keys are ignored."""
        peer = self._peers.pop(public_key, None)
        if peer is None:
            return
        ext = peer.ann.extension
        if ext is not None and self._winners.get(ext) == public_key and self.config.reserve_s:
            self._reserved[ext] = (public_key, now + self.config.reserve_s)
            self._reserved.move_to_end(ext)
            while len(self._reserved) > self.config.max_peers:
                self._reserved.popitem(last=False)
        self._reconcile(now)

    def bindings_changed(self, *, now: float) -> None:
        """The NumberBinding learned something: re-check the peers waiting on it."""
        for key, peer in list(self._peers.items()):
            if peer.verified:
                continue
            number = self.binding.number_of(key)
            if number is None:
                continue
            if number == peer.ann.number:
                peer.verified = True
            else:
                del self._peers[key]
                self.counters.rejected_number += 1
        self._reconcile(now)

    def resolve(self, extension: str) -> LanPeer | None:
        """The verified phone holding ``extension``, for ``dial 201``.

        None if nobody holds it, its holder is not verified yet, it is configured on several
        phones (ambiguous, rule 4), or it is this phone's own.
        """
        if extension in self._conflicts:
            return None
        winner = self._winners.get(extension)
        if winner is None or winner == self.public_key:
            return None
        return self._view.get(winner)

    def group(self, extension: str) -> tuple[GroupMode, list[LanPeer]] | None:
        """A hunt or page group as this phone sees it: how it rings and its verified members
        other than this phone (in order of their own extension, then number), or None if no
        phone announces ``extension`` as a group. The members' modes may differ for a moment
        while an administrator changes them: the mode most of them announce wins, ring all
        on a tie (a call then reaches everyone)."""
        members: list[tuple[LanPeer, GroupMode]] = []
        modes = [g.mode for g in self.groups if g.extension == extension]
        for peer in self._view.values():
            for g in peer.groups:
                if g.extension == extension:
                    members.append((peer, g.mode))
                    modes.append(g.mode)
        if not modes:
            return None
        votes = {m: modes.count(m) for m in GroupMode}
        top = max(votes.values())
        leaders = [m for m in GroupMode if votes[m] == top]
        mode = leaders[0] if len(leaders) == 1 else GroupMode.RING_ALL
        members.sort(key=lambda pm: (int(pm[0].extension or 99999), pm[0].number))
        return mode, [peer for peer, _ in members]

    def peers(self) -> list[LanPeer]:
        """Every verified phone on the LAN, with the extension each holds in this view."""
        return list(self._view.values())

    def conflicts(self) -> dict[str, tuple[bytes, ...]]:
        """Extensions configured on several phones, with their keys (rule 4)."""
        return dict(self._conflicts)

    @property
    def own_extension(self) -> str | None:
        """This phone's extension; None while probing or when none is free."""
        return self._own if self._state is RegistryState.CLAIMED else None

    @property
    def state(self) -> RegistryState:
        return self._state

    @property
    def announcement(self) -> LanAnnouncement | None:
        """What this phone announces now (None before ``start``)."""
        return self._announcement

    @property
    def claim_seq(self) -> int:
        """The claim_seq of the current announcement: persist it with the extension."""
        return self._seq

    @property
    def pending_count(self) -> int:
        """Peers whose number is still being derived."""
        return sum(1 for p in self._peers.values() if not p.verified)

    def status(self) -> dict[str, object]:
        """A JSON-ready summary for ``peerline status``."""
        return {
            "state": self._state.value,
            "extension": self.own_extension,
            "configured": self._configured is not None,
            "established": self._state is RegistryState.CLAIMED and self._established,
            "claim_seq": self._seq,
            "peers": len(self._view),
            "groups": [str(g) for g in self.groups],
            "pending": self.pending_count,
            "conflicts": sorted(self._conflicts),
            "counters": self.counters.as_dict(),
        }

    # -- the driver's calls -------------------------------------------------------------------
    def get_timer(self) -> float | None:
        """The end of the current probe, or when our claim becomes established."""
        if self._state is RegistryState.PROBING:
            return self._probe_until
        return self._established_at

    def handle_timer(self, *, now: float) -> None:
        """Claim the probed candidate, or mark our claim established. Then: next_event."""
        if self._state is RegistryState.PROBING:
            if self._probe_until is not None and now >= self._probe_until:
                assert self._candidate is not None
                self._claim(self._candidate, now)
                self._publish()
                self._reconcile(now)
        elif self._established_at is not None and now >= self._established_at:
            assert self._own is not None
            self._move(RegistryTrigger.ESTABLISH)
            self._established = True
            self._established_at = None
            self._events.append(ExtensionEstablished(extension=self._own))
            self._publish()
            self._reconcile(now)

    def next_event(self) -> LanEvent | None:
        return self._events.popleft() if self._events else None

    # -- own claim ----------------------------------------------------------------------------
    def _move(self, trigger: RegistryTrigger) -> None:
        """Change state as ``TRANSITIONS`` says; anything else is a bug here."""
        try:
            self._state = TRANSITIONS[(self._state, trigger)]
        except KeyError:
            raise LocalProtocolError(
                f"the registry may not {trigger.value} when {self._state.value}"
            ) from None

    def _claim(self, extension: str, now: float) -> None:
        self._move(RegistryTrigger.CLAIM)
        self._own = extension
        self._established = self._configured is not None
        self._established_at = None if self._established else now + self.config.probe_s
        self._candidate = None
        self._probe_until = None
        self._events.append(
            ExtensionClaimed(extension=extension, configured=self._configured is not None)
        )

    def _begin_probe(self, now: float) -> None:
        self._candidate = self._choose(now)
        self._probe_until = None if self._candidate is None else now + self.config.probe_s

    def _publish(self) -> None:
        if self._seq >= MAX_CLAIM_SEQ:
            raise LocalProtocolError("claim_seq exhausted; restart with a fresh identity")
        self._seq += 1
        claimed = self._state is RegistryState.CLAIMED
        self._announcement = sign_announcement(
            self.identity,
            number=self.number,
            port=self.port,
            extension=self._own if claimed else None,
            configured=claimed and self._configured is not None,
            established=claimed and self._established,
            claim_seq=self._seq,
            groups=self.groups,
        )
        self._events.append(AnnouncementChanged(announcement=self._announcement))

    def _taken(self) -> set[str]:
        """Extensions an automatic claim must avoid: other phones' and every group's."""
        taken = {p.ann.extension for p in self._peers.values() if p.ann.extension is not None}
        taken.update(g.extension for p in self._peers.values() for g in p.ann.groups)
        taken.update(g.extension for g in self.groups)
        return taken

    def _choose(self, now: float) -> str | None:
        """The first free automatic extension in preference order (rule 2), or None."""
        for ext, (_, until) in list(self._reserved.items()):
            if until <= now:
                del self._reserved[ext]
        taken = self._taken()
        reserved = {e for e, (key, _) in self._reserved.items() if key != self.public_key}
        first, last = self._first, self._last
        order = [str(v) for v in range(self._preferred, last + 1)]
        order += [str(v) for v in range(first, self._preferred)]
        if self._previous is not None:
            order.insert(0, self._previous)
        for skip in (taken | reserved, taken):
            for ext in order:
                if ext not in skip:
                    return ext
        return None

    # -- agreeing on holders ------------------------------------------------------------------
    def _reconcile(self, now: float) -> None:
        """Re-derive every holder from the claims, act on our own, then report what changed."""
        for _ in range(4):  # after a yield our new claim is free, so this settles in two rounds
            if self._state is RegistryState.PROBING:
                candidate = self._candidate
                if candidate is None or candidate in self._taken():
                    if candidate is not None:
                        self.counters.probe_restarts += 1
                    self._begin_probe(now)
            self._compute_holders()
            winner = self._beaten_by()
            if winner is None:
                break
            self._give_way(winner, now)
        if self._state is RegistryState.CLAIMED and not self._established:
            if any(p.ann.extension == self._own for p in self._peers.values()):
                self._established_at = None  # contested: not established while a rival shows
            elif self._established_at is None:
                self._established_at = now + self.config.probe_s
        self._report()

    def _own_claim(self) -> _Claim | None:
        if self._state is not RegistryState.CLAIMED:
            return None
        strength = 2 if self._configured is not None else 1 if self._established else 0
        return _Claim(strength, self.public_key)

    def _beaten_by(self) -> bytes | None:
        """The strongest verified rival that beats our claim, if any (we never yield to a
        pending one: its number may turn out wrong)."""
        own = self._own_claim()
        if own is None or own.strength == 2:
            return None
        best: _Claim | None = None
        for key, peer in self._peers.items():
            if peer.verified and peer.ann.extension == self._own:
                rival = _Claim(_strength(peer.ann), key)
                if _beats(rival, own) and (best is None or _beats(rival, best)):
                    best = rival
        return None if best is None else best.key

    def _give_way(self, winner: bytes, now: float) -> None:
        """Rule 5: the loser takes the next free extension at once, or none."""
        old = self._own
        assert old is not None
        self.counters.claims_lost += 1
        new = self._choose(now)
        if new is None:
            self._move(RegistryTrigger.LOSE)
            self._own = None
            self._established = False
            self._established_at = None
            self._candidate = None
            self._probe_until = None
            self._events.append(ExtensionLost(extension=old, winner=winner))
        else:
            self._move(RegistryTrigger.CHANGE)
            self._own = new
            self._established = False
            self._established_at = now + self.config.probe_s
            self._events.append(ExtensionChanged(old=old, new=new, winner=winner))
        self._publish()

    def _compute_holders(self) -> None:
        claims: dict[str, list[_Claim]] = {}
        for key, peer in self._peers.items():
            ext = peer.ann.extension
            if ext is not None:
                claims.setdefault(ext, []).append(_Claim(_strength(peer.ann), key))
        own = self._own_claim()
        if own is not None and self._own is not None:
            claims.setdefault(self._own, []).append(own)
        winners: dict[str, bytes] = {}
        conflicts: dict[str, tuple[bytes, ...]] = {}
        for ext, rivals in claims.items():
            best = rivals[0]
            for rival in rivals[1:]:
                if _beats(rival, best):
                    best = rival
            configured = [c.key for c in rivals if c.strength == 2]
            if len(configured) > 1:
                conflicts[ext] = tuple(sorted(configured))
            else:
                winners[ext] = best.key
        self._winners = winners
        self._conflicts = conflicts

    def _report(self) -> None:
        """Turn the difference between the old and the new view into events."""
        view: dict[bytes, LanPeer] = {}
        for key, peer in self._peers.items():
            if not peer.verified:
                continue
            ext = peer.ann.extension
            holds = ext is not None and (
                self._winners.get(ext) == key or key in self._conflicts.get(ext, ())
            )
            view[key] = LanPeer(
                number=peer.ann.number,
                public_key=key,
                host=peer.host,
                port=peer.ann.port,
                extension=ext if holds else None,
                configured=peer.ann.configured,
                groups=peer.ann.groups,
            )
        old_view, self._view = self._view, view
        for key, lan_peer in view.items():
            before = old_view.get(key)
            if before is None:
                self._events.append(LanPeerAppeared(peer=lan_peer))
            elif before != lan_peer:
                self._events.append(LanPeerUpdated(peer=lan_peer))
        for key, gone in old_view.items():
            if key not in view:
                self._events.append(LanPeerGone(public_key=key, number=gone.number))
        old_conflicts, self._reported_conflicts = self._reported_conflicts, dict(self._conflicts)
        for ext, keys in self._conflicts.items():
            if old_conflicts.get(ext) != keys:
                self._events.append(ExtensionConflict(extension=ext, keys=keys))
        for ext in old_conflicts:
            if ext not in self._conflicts:
                self._events.append(ExtensionConflictEnded(extension=ext))
