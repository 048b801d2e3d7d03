"""NAT behaviours (RFC 4787 terms) and the nftables rulesets that implement them.

RFC 4787 describes a NAT by two independent properties of a *mapping* (the external
address:port a NAT gives an internal endpoint, §4.1) and its *filtering* (which outside
endpoints may send through that mapping, §5):

- mapping: endpoint-independent (EIM: one external port per internal endpoint, whatever the
  destination), address-dependent (ADM) or address-and-port-dependent (APDM: a new external
  port for each destination address:port);
- filtering: endpoint-independent (EIF: anyone may send to the mapping), address-dependent
  (ADF: only addresses the internal endpoint has sent to) or address-and-port-dependent
  (APDF: only the exact address:port it has sent to).

The classic names are combinations: full cone = EIM+EIF, (address-)restricted cone = EIM+ADF,
port-restricted cone = EIM+APDF, symmetric = APDM+APDF. ``router_ruleset`` renders one
nftables table for a router namespace; ``docs/nat.md`` shows the rendered rules and what
tests/netlab/test_recipes.py measured for each.
"""

from __future__ import annotations

import enum
import ipaddress


class Mapping(enum.Enum):
    """RFC 4787 §4.1 mapping behaviour."""

    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"


class Filtering(enum.Enum):
    """RFC 4787 §5 filtering behaviour."""

    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"


class NatBehaviour(enum.Enum):
    """The NAT types a lab router can be, each a (mapping, filtering) pair of RFC 4787."""

    #: "Full cone": EIM + EIF. Once an internal endpoint has sent anything out, any outside
    #: host may reach it at its mapped address:port.
    FULL_CONE = (Mapping.ENDPOINT_INDEPENDENT, Filtering.ENDPOINT_INDEPENDENT)
    #: "(Address-)restricted cone": EIM + ADF. Outside hosts the endpoint has sent to may
    #: reach the mapping from any of their ports.
    ADDRESS_RESTRICTED = (Mapping.ENDPOINT_INDEPENDENT, Filtering.ADDRESS_DEPENDENT)
    #: "Port-restricted cone": EIM + APDF, what plain Linux ``masquerade`` does. Only the exact
    #: address:port the endpoint has sent to may answer.
    PORT_RESTRICTED = (Mapping.ENDPOINT_INDEPENDENT, Filtering.ADDRESS_AND_PORT_DEPENDENT)
    #: "Symmetric": APDM + APDF (``snat ... fully-random``, iptables' ``--random-fully``): a
    #: fresh random external port per destination, and only that destination may answer on it.
    SYMMETRIC = (Mapping.ADDRESS_AND_PORT_DEPENDENT, Filtering.ADDRESS_AND_PORT_DEPENDENT)

    @property
    def mapping(self) -> Mapping:
        return self.value[0]

    @property
    def filtering(self) -> Filtering:
        return self.value[1]


SEQUENTIAL_PORTS = 64
"""A sequential symmetric NAT cycles through external ports 40000-40063."""


def router_ruleset(
    nat: NatBehaviour,
    *,
    wan_addr: str,
    lan: ipaddress.IPv4Network,
    hairpin: bool,
    udp_timeout_s: int,
    sequential: bool = False,
) -> str:
    """The nftables table (``table ip netlab``) for a NAT router namespace.

    The router has two interfaces: ``wan`` (address ``wan_addr``) and ``lan`` (a bridge for
    ``lan``). UDP gets explicit mappings; other protocols get plain conntrack NAT. A mapping
    lives ``udp_timeout_s`` after the last outbound packet (RFC 4787 REQ-6); the lab sets the
    namespace's conntrack UDP timeouts (``net.netfilter.nf_conntrack_udp_timeout`` and
    ``..._stream``) to the same value, so sessions and mappings age together.

    ``sequential`` (address-and-port-dependent mapping only): each new mapping takes the next
    external port (40000-40063, cycling) instead of a random one, as many real symmetric NATs
    do; the case port prediction is for.
    """
    if sequential and nat.mapping is not Mapping.ADDRESS_AND_PORT_DEPENDENT:
        raise ValueError("sequential ports are for address-and-port-dependent mapping")
    if nat.mapping is Mapping.ADDRESS_DEPENDENT:  # pragma: no cover - no such member today
        raise ValueError("address-dependent mapping has no recipe")
    eim = nat.mapping is Mapping.ENDPOINT_INDEPENDENT
    adf = nat.filtering is Filtering.ADDRESS_DEPENDENT
    eif = nat.filtering is Filtering.ENDPOINT_INDEPENDENT
    wan = wan_addr
    timed = f"flags dynamic,timeout; timeout {int(udp_timeout_s)}s;"
    to_inside = "dnat ip to udp dport map @eim_in"
    out: list[str] = []

    def add(*lines: str) -> None:
        out.extend(lines)

    add("table ip netlab {")
    if eim:
        add(
            "    # The mappings (RFC 4787 4.1) made explicit, so they outlive any one",
            "    # conntrack session: internal endpoint -> external port, and back.",
            "    # Filled in by chain learn.",
            f"    map eim_out {{ type ipv4_addr . inet_service : inet_service; {timed} }}",
            f"    map eim_in {{ type inet_service : ipv4_addr . inet_service; {timed} }}",
        )
    else:
        add(
            "    # External port -> internal endpoint, for hairpinning. Filled in by chain learn.",
            f"    map eim_in {{ type inet_service : ipv4_addr . inet_service; {timed} }}",
        )
    if adf:
        add(
            "    # ADF: (outside address . external port) pairs the inside has sent to",
            f"    set contacted {{ type ipv4_addr . inet_service; {timed} }}",
        )
    add(
        "",
        "    # New inbound sessions; replies to existing ones never get here (conntrack).",
        "    chain prerouting {",
        "        type nat hook prerouting priority dstnat; policy accept;",
    )
    if eif:
        add(f'        iifname "wan" udp dport @eim_in {to_inside}  # EIF')
    if adf:
        add(f'        iifname "wan" ip saddr . udp dport @contacted {to_inside}  # ADF')
    if hairpin:
        add(f'        iifname "lan" ip daddr {wan} udp dport @eim_in {to_inside}  # hairpin')
    add(
        "    }",
        "",
        "    chain postrouting {",
        "        type nat hook postrouting priority srcnat; policy accept;",
        f'        oifname "wan" ip saddr {lan} jump outbound',
    )
    if hairpin:
        add(
            "        # hairpinned: the receiver sees the sender's external mapping (REQ-9)",
            f'        oifname "lan" ip saddr {lan} ct status dnat jump outbound',
        )
    add(
        "    }",
        "",
        "    # The external port of a new session. `snat to WAN` is masquerade with the address",
        "    # spelled out (masquerade would take the LAN address for hairpinned packets).",
        "    chain outbound {",
    )
    if eim:
        add(
            "        # EIM: an endpoint that has a mapping keeps it, whatever the destination",
            "        meta l4proto udp ip saddr . udp sport @eim_out"
            f" snat ip to {wan} : ip saddr . udp sport map @eim_out",
            "        # its port is already another endpoint's mapping: a random free port instead",
            "        # (plain masquerade shares the port, then moves the first endpoint elsewhere",
            "        # for a destination the second one uses: port overloading, not EIM)",
            f"        meta l4proto udp udp sport @eim_in snat ip to {wan} random",
            "        # otherwise keep the internal port when free (Linux port preservation)",
            f"        snat ip to {wan}",
        )
    elif sequential:
        add(
            "        # APDM, sequential: the next external port for every new destination",
            "        # (a typed map: numgen's value would go on the wire in host byte order)",
            f"        meta l4proto udp snat ip to {wan} : numgen inc mod {SEQUENTIAL_PORTS}"
            f" map {{ {', '.join(f'{i} : {40000 + i}' for i in range(SEQUENTIAL_PORTS))} }}",
            f"        snat ip to {wan} fully-random",
        )
    else:
        add(
            "        # APDM: a random external port for every new destination",
            f"        snat ip to {wan} fully-random",
        )
    add(
        "    }",
        "",
        "    # After the NAT step: the packet now carries its external source port. The inside",
        "    # endpoint is the original source, or the reply source of a session let in.",
        "    chain learn {",
        "        type filter hook postrouting priority srcnat + 1; policy accept;",
    )
    for direction in ("original", "reply"):
        inside = f"ct {direction} ip saddr . ct {direction} proto-src"
        updates = f"update @eim_in {{ udp sport : {inside} }}"
        if eim:
            updates = f"update @eim_out {{ {inside} : udp sport }} " + updates
        add(
            f"        meta l4proto udp ip saddr {wan} ct direction {direction}"
            f" ct {direction} ip saddr {lan} {updates}"
        )
    if adf:
        add(
            f'        meta l4proto udp oifname "wan" ip saddr {wan}'
            " update @contacted { ip daddr . udp sport }"
        )
    add(
        "    }",
        "",
        "    chain forward {",
        "        type filter hook forward priority filter; policy drop;",
        "        ct state established,related accept",
        '        iifname "lan" accept',
        '        iifname "wan" ct status dnat accept  # let in by chain prerouting',
        "    }",
        "",
        "    # Nothing unsolicited reaches the router itself. Dropping it matters: a dropped",
        "    # packet leaves no conntrack entry, so an early inbound punch packet cannot claim",
        "    # the external port the inside is about to use.",
        "    chain input {",
        "        type filter hook input priority filter; policy drop;",
        "        ct state established,related accept",
        '        iifname { "lo", "lan" } accept',
        "    }",
        "}",
    )
    return "\n".join(out) + "\n"


def loss_ruleset(percent: float, *, device: str) -> str:
    """``table netdev netlab_loss``: drop each packet crossing ``device`` with probability
    ``percent``/100, in each direction independently.

    The ``netdev`` ingress and egress hooks sit at the very edge of the interface, before
    conntrack and routing, so a lossy link behaves like a lossy wire: nothing is answered,
    and a sender's ``sendto`` still succeeds (an egress drop reports ENOBUFS, which UDP
    sockets ignore; a drop in the inet output hook would fail the call with EPERM).
    ``numgen random mod 10000 < N`` gives a resolution of 0.01 %. Replaces any earlier loss
    table of the namespace; 0 % removes it.
    """
    if not 0.0 <= percent <= 100.0:
        raise ValueError(f"loss must be 0..100 %, not {percent}")
    threshold = round(percent * 100)
    out = ["table netdev netlab_loss", "delete table netdev netlab_loss"]
    if threshold == 0:
        return "\n".join(out) + "\n"
    out.append("table netdev netlab_loss {")
    for hook in ("ingress", "egress"):
        out += [
            f"    chain {hook} {{",
            f'        type filter hook {hook} device "{device}" priority -500; policy accept;',
            f"        numgen random mod 10000 < {threshold} drop",
            "    }",
        ]
    out.append("}")
    return "\n".join(out) + "\n"


#: Example addresses for rendering the recipes in docs/nat.md.
DOC_WAN = "203.0.113.1"
DOC_LAN = ipaddress.IPv4Network("10.1.0.0/24")
DOC_TIMEOUT_S = 30


def doc_rulesets() -> dict[str, str]:
    """The rulesets docs/nat.md shows verbatim (tests/netlab/test_docs.py checks it does):
    each behaviour with hairpinning off, then full cone with hairpinning on."""
    out = {}
    for nat in NatBehaviour:
        out[nat.name] = router_ruleset(
            nat, wan_addr=DOC_WAN, lan=DOC_LAN, hairpin=False, udp_timeout_s=DOC_TIMEOUT_S
        )
    return out


def hairpin_lines() -> list[str]:
    """The lines hairpinning adds to any ruleset (rendered with the docs' addresses)."""
    plain, with_hairpin = (
        router_ruleset(
            NatBehaviour.PORT_RESTRICTED,
            wan_addr=DOC_WAN,
            lan=DOC_LAN,
            hairpin=hp,
            udp_timeout_s=DOC_TIMEOUT_S,
        ).splitlines()
        for hp in (False, True)
    )
    return [line for line in with_hairpin if line not in plain]
