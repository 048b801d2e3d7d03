"""Deterministic discrete-event simulation of many Peerline nodes in virtual time.

``Simulator`` drives the same sans-I/O objects as ``peerline.runtime`` through the same five
calls, on a ``VirtualClock`` and a ``Network`` with per-link latency, jitter, loss, reordering,
duplication, MTU and partitions. A run depends only on its seed, so every failure replays.
Nothing here reads the wall clock or opens a socket.
"""

from peerline.sim.clock import ClockError, VirtualClock
from peerline.sim.network import DEFAULT_MTU, LinkProfile, Network, NetworkStats, Outcome
from peerline.sim.simulator import Observer, SimulationError, Simulator

__all__ = [
    "DEFAULT_MTU",
    "ClockError",
    "LinkProfile",
    "Network",
    "NetworkStats",
    "Observer",
    "Outcome",
    "SimulationError",
    "Simulator",
    "VirtualClock",
]
