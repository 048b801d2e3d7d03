"""netlab: network namespace topologies with nftables NAT routers, for tests and benchmarks.

``Lab`` builds hosts, NAT routers (RFC 4787 behaviours from ``nat.NatBehaviour``), double NAT
and a public switch out of Linux network namespaces and veth links, and deletes all of it on
exit (also on failure, SIGTERM, or at the next lab's start after a SIGKILL). Loss comes from
nftables ``numgen``; delay and jitter from a userspace frame relay (``relay.py``); there is
no netem. ``probe`` measures what a NAT really does (mapping, filtering, hairpinning,
timeouts), RFC 5780 style. Tests anywhere under tests/ can ``from netlab import Lab`` and use
the ``lab`` fixture (``netlab.plugin``, loaded by tests/conftest.py). docs/nat.md has the
recipes and the measured behaviour.
"""

from ._ns import NetlabError, reap_stale, unavailable_reason
from .lab import Host, Lab, LabUnavailable, Node, Router
from .nat import Filtering, Mapping, NatBehaviour, loss_ruleset, router_ruleset

__all__ = [
    "Filtering",
    "Host",
    "Lab",
    "LabUnavailable",
    "Mapping",
    "NatBehaviour",
    "NetlabError",
    "Node",
    "Router",
    "loss_ruleset",
    "reap_stale",
    "router_ruleset",
    "unavailable_reason",
]
