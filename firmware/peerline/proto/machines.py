"""Every state machine's transition table, listed once for the diagrams in the docs.

Each table maps (state, what happened) to the next state and is the only place its machine's
transitions are written (h11's rule): the code moves through it and a pair missing from it is
a bug. ``scripts/diagrams`` draws these tables into docs/state-machines.md, and a test fails
when the drawing and a table differ.
"""

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from peerline.proto.call import state as call_state
from peerline.proto.lan import extensions as lan_extensions
from peerline.proto.nat import portmap
from peerline.proto.noise import handshake
from peerline.proto.overlay import lookup

Transition = tuple[enum.Enum | None, enum.Enum, enum.Enum]
"""(from state, what happened, to state); None as the first: before the machine exists."""


@dataclass(frozen=True, slots=True)
class Machine:
    name: str
    source: str
    "The module that holds the table (and whose code follows it)."
    about: str
    transitions: tuple[Transition, ...]


def _rows(table: Mapping[Any, Any]) -> tuple[Transition, ...]:
    return tuple((state, trigger, nxt) for (state, trigger), nxt in table.items())


def machines() -> list[Machine]:
    noise = [
        Machine(
            name=f"Noise IK handshake, {role.value}",
            source="peerline/proto/noise/handshake.py",
            about="One side of the secure channel's handshake (protocol.md §4).",
            transitions=tuple(
                (state, step, nxt)
                for state, steps in by_state.items()
                for step, nxt in steps.items()
            ),
        )
        for role, by_state in handshake.TRANSITIONS.items()
    ]
    return [
        Machine(
            name="Call",
            source="peerline/proto/call/state.py",
            about="One call, placed or received (protocol.md §6.7).",
            transitions=_rows(call_state.TRANSITIONS),
        ),
        *noise,
        Machine(
            name="Lookup candidate",
            source="peerline/proto/overlay/lookup.py",
            about="One node a directory lookup may ask (protocol.md §9.12.4).",
            transitions=_rows(lookup.TRANSITIONS),
        ),
        Machine(
            name="Port mapping",
            source="peerline/proto/nat/portmap.py",
            about="The NAT-PMP mapping held on the default gateway (protocol.md §9.17).",
            transitions=_rows(portmap.TRANSITIONS),
        ),
        Machine(
            name="LAN extension registry",
            source="peerline/proto/lan/extensions.py",
            about="This phone's claim of a LAN extension (docs/lan.md §3).",
            transitions=_rows(lan_extensions.TRANSITIONS),
        ),
    ]
