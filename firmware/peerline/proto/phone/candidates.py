"""Addresses: where others may reach this phone, and where to reach a phone from its record.

Two small policies with one job each, kept apart from the machinery that uses them so they can
be read (and tested) on their own: what this phone publishes in its directory record and offers
in introductions, and which address of a looked-up record a first handshake goes to.
"""

import ipaddress
from collections.abc import Sequence

from peerline.types import Addr
from peerline.wire.record import CandidateKind, Record

MAX_PUBLISHED = 8
"""Addresses in this phone's record at most (mapped and reflexive first: never cut off)."""


def own_candidates(
    *, mapped: Addr | None, reflexive: Addr | None, host: Sequence[Addr]
) -> list[tuple[CandidateKind, Addr]]:
    """Where others may reach this phone, best first: a router's port mapping, the address
    overlay peers see, then the host's own addresses; each address once."""
    out: list[tuple[CandidateKind, Addr]] = []
    if mapped is not None:
        out.append((CandidateKind.MAPPED, mapped))
    if reflexive is not None and reflexive not in host:
        out.append((CandidateKind.REFLEXIVE, reflexive))
    out.extend((CandidateKind.HOST, a) for a in host)
    unique: list[tuple[CandidateKind, Addr]] = []
    for kind, addr in out:
        if all(addr != a for _, a in unique):
            unique.append((kind, addr))
    return unique


def pick_address(record: Record, *, reflexive: Addr | None) -> Addr | None:
    """The address a first handshake to ``record``'s phone goes to (traversal then punches and
    falls back to relays): behind the same NAT as this phone (the same reflexive host), its
    host address; otherwise a reflexive or mapped one first, unless all its host addresses are
    loopback (phones on one machine); None if the record lists none."""
    hosts = [a for k, a in record.addresses if k is CandidateKind.HOST]
    others = [a for k, a in record.addresses if k is not CandidateKind.HOST]
    if reflexive is not None and any(a[0] == reflexive[0] for a in others) and hosts:
        return hosts[0]
    if others and not all(ipaddress.ip_address(h).is_loopback for h, _ in hosts):
        return others[0]
    return hosts[0] if hosts else (others[0] if others else None)
