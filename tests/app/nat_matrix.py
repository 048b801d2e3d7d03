"""One cell of the NAT matrix: two real phones behind two NAT situations dial each other by
number through a public supernode; shared by tests/app/test_nat_matrix.py and bench/nat.py.

``run_pair`` builds the pair in a given (fresh) lab, waits until the overlay is ready (the
NATted phones are clients with a relay, the callee's record is visible from the caller, with
its relays if it has any), and only then times the caller's ``dial``: resolving the number,
punching and the handshake are what ``connect_ms`` measures, the daemons' start and join are
not. It never raises for a phone that misbehaves: the result says what failed (``detail``,
with the daemons' log tails), so one bad cell cannot hide the others.

The kinds are ``netlab.plan.KINDS``; double NAT is the plan's: a port-restricted home NAT
behind a symmetric carrier NAT (hairpinning on, as in tests/netlab/test_paths.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab_phones import PORT, control, start_phone

from netlab import Host, Lab, NatBehaviour, Node
from netlab.plan import EXPECTED, KINDS, NATS
from peerline.app.control_client import ControlError, NotRunning, call
from peerline.app.paths import CONTROL_SOCKET_NAME

#: Seconds to wait for each readiness step (phone up, clients with relays, callee's record).
READY_TIMEOUT_S = 45.0
#: How long a message may take to be acknowledged (``msg.send`` ``wait_s``).
MESSAGE_WAIT_S = 10.0
LOG_TAIL_CHARS = 2500
DELAY_SCOPES = ("all", "internet")


@dataclass
class Side:
    """One phone's situation: its host, and the address the outside world sees it at."""

    kind: str
    host: Host
    public_addr: str
    """The phone's own address if public, else its outermost NAT's WAN address."""
    nodes: list[Node]
    """Every node built for this side (its links get the delays)."""


@dataclass
class PairResult:
    """What happened to one pair. ``path`` is "direct" | "relayed" | None (not connected)."""

    a: str
    b: str
    connected: bool
    path: str | None
    connect_ms: float | None
    detail: str = ""
    expected: str = ""
    """The plan's path ("direct" | "relayed")."""
    messages: dict[str, str] = field(default_factory=dict)
    """``{"a->b": status, "b->a": status}``; "delivered" when acknowledged."""
    message_ms: dict[str, float] = field(default_factory=dict)
    """How long each ``msg.send`` took (lookup of the number included)."""
    path_source: str = ""
    """Where ``path`` came from: "dial" (the daemon said) or "endpoint" (derived from the
    caller's session right after the dial)."""
    final_path: str | None = None
    """The caller's session path after the messages (a relayed session may have moved on)."""
    callee_path: str | None = None
    """The callee's session path for the caller, after the messages: must be ``final_path``."""
    caller_id_ok: bool | None = None
    """The callee's inbox shows the caller's number on its message (None: not got that far)."""
    sas_ok: bool | None = None
    """The dial's SAS is the one both sessions have after the messages (not in ``problems``
    yet: a glare right after the dial can still replace the session, see run_pair)."""
    ready_ms: float | None = None
    """Daemons' start to overlay readiness (not part of ``connect_ms``)."""
    delays_ms: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """Everything that went wrong after the dial (``detail`` has them with the logs)."""

    @property
    def delivered_both_ways(self) -> bool:
        return self.messages.get("a->b") == "delivered" and self.messages.get("b->a") == "delivered"

    def row(self) -> dict[str, Any]:
        """The benchmark's JSON row."""
        return {
            "a": self.a,
            "b": self.b,
            "connected": self.connected,
            "path": self.path,
            "connect_ms": self.connect_ms,
            "expected": self.expected,
            "final_path": self.final_path,
            "callee_path": self.callee_path,
            "messages": self.messages,
            "message_ms": self.message_ms,
            "caller_id_ok": self.caller_id_ok,
            "sas_ok": self.sas_ok,
            "ready_ms": self.ready_ms,
        }


def pairs() -> list[tuple[str, str]]:
    """The 21 unordered pairs, in plan order (the first kind dials the second)."""
    return list(EXPECTED)


def expected_path(kind_a: str, kind_b: str) -> str:
    """The plan's path for a pair, in the daemon's words ("direct" | "relayed")."""
    plan = EXPECTED.get((kind_a, kind_b)) or EXPECTED[(kind_b, kind_a)]
    return "relayed" if plan == "relay" else "direct"


def pair_id(kind_a: str, kind_b: str) -> str:
    """Ids like "symmetric-double" (short: pytest ids and ``bench/nat.py --pairs``)."""
    return f"{_short(kind_a)}-{_short(kind_b)}"


def parse_pair_id(text: str) -> tuple[str, str]:
    """The pair a ``pair_id`` (or "kind+kind" with full names) names; ValueError if none."""
    for a, b in pairs():
        if text in (pair_id(a, b), pair_id(b, a), f"{a}+{b}", f"{b}+{a}"):
            return (a, b) if text in (pair_id(a, b), f"{a}+{b}") else (b, a)
    raise ValueError(f"unknown pair {text!r}; e.g. {pair_id(*pairs()[-1])}")


_SHORT = {
    "full-cone": "full",
    "address-restricted": "address",
    "port-restricted": "port",
    "double-nat": "double",
}


def _short(kind: str) -> str:
    return _SHORT.get(kind, kind)


def build_side(lab: Lab, tag: str, kind: str) -> Side:
    """The phone host of one side (``tag`` names its nodes: host ``tag``, routers ``r``/``c``
    + ``tag``)."""
    if kind == "public":
        host = lab.host(tag)
        return Side(kind, host, host.addr, [host])
    if kind in NATS:
        router = lab.router(f"r{tag}", nat=NATS[kind])
        host = lab.host(tag, behind=router)
        return Side(kind, host, router.addr, [router, host])
    if kind == "double-nat":
        carrier = lab.router(f"c{tag}", nat=NatBehaviour.SYMMETRIC, carrier=True, hairpin=True)
        home = lab.router(f"r{tag}", nat=NatBehaviour.PORT_RESTRICTED, behind=carrier)
        host = lab.host(tag, behind=home)
        return Side(kind, host, carrier.addr, [carrier, home, host])
    raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")


def run_pair(
    lab: Lab,
    tmp_path: Path,
    kind_a: str,
    kind_b: str,
    *,
    delays: tuple[int, int] | None,
    rng: random.Random,
    delay_scope: str = "all",
    dial_timeout_s: float = 40.0,
) -> PairResult:
    """Build and run one pair in ``lab`` (fresh, entered); phone data goes under ``tmp_path``.

    ``delays=(lo, hi)`` puts a delay drawn uniformly from lo..hi ms (whole ms, each way) on
    every link of the topology with the lab's userspace relay: each node's port on its switch
    (the seed's, each router's WAN, each host's LAN port) for ``delay_scope="all"``, only the
    ports on the public switch (the seed, public phones, outermost routers) for "internet".
    A dial slower than ``dial_timeout_s`` counts as not connected.
    """
    result = PairResult(
        a=kind_a,
        b=kind_b,
        connected=False,
        path=None,
        connect_ms=None,
        expected=expected_path(kind_a, kind_b),
    )
    seed_host = lab.host("seed")
    side_a = build_side(lab, "a", kind_a)
    side_b = build_side(lab, "b", kind_b)
    if delays is not None:
        if delay_scope not in DELAY_SCOPES:
            raise ValueError(f"delay_scope {delay_scope!r}: one of {', '.join(DELAY_SCOPES)}")
        lo, hi = delays
        for node in [seed_host, *side_a.nodes, *side_b.nodes]:
            if delay_scope == "internet" and not node.public:
                continue
            ms = rng.randint(lo, hi)
            delay(lab, node, ms)
            result.delays_ms[node.name] = ms
    seed, a, b = tmp_path / "seed", tmp_path / "a", tmp_path / "b"
    for d in (seed, a, b):
        d.mkdir(parents=True, exist_ok=True)
    logs = [p / "daemon.log" for p in (seed, a, b)]

    def fail(what: str) -> PairResult:
        result.detail = f"{what}\n{log_tails(logs)}"
        return result

    started = time.perf_counter()
    start_phone(seed_host, seed)
    if not _wait(lambda: control(seed, "status"), READY_TIMEOUT_S):
        return fail("the seed phone did not start")
    start_phone(side_a.host, a, "--seed", f"{seed_host.addr}:{PORT}")
    start_phone(side_b.host, b, "--seed", f"{seed_host.addr}:{PORT}")

    def overlay_ready() -> bool:
        for side, data in ((side_a, a), (side_b, b)):
            overlay = control(data, "status")["overlay"]
            want = "supernode" if side.kind == "public" else "client"
            if overlay["role"] != want or (want == "client" and not overlay["relays"]):
                return False
        return True

    if not _wait(overlay_ready, READY_TIMEOUT_S):
        return fail("the phones did not join (NATted ones as clients with a relay)")
    id_a, id_b = control(a, "id"), control(b, "id")

    def callee_visible() -> bool:
        found = control(a, "lookup", {"number": id_b["number"]})
        if not found["found"]:
            return False
        return side_b.kind == "public" or bool(found["records"][0]["relays"])

    if not _wait(callee_visible, READY_TIMEOUT_S):
        return fail("the callee's record (with its relays) did not become visible to the caller")
    result.ready_ms = round((time.perf_counter() - started) * 1000.0, 1)

    t0 = time.perf_counter()
    try:
        dialled = call(
            a / CONTROL_SOCKET_NAME, "dial", {"number": id_b["number"]}, timeout=dial_timeout_s
        )
    except (ControlError, NotRunning, OSError) as exc:  # OSError: TimeoutError included
        spent = (time.perf_counter() - t0) * 1000.0
        return fail(f"dial failed after {spent:.0f} ms: {exc}")
    result.connect_ms = round((time.perf_counter() - t0) * 1000.0, 1)
    result.connected = True
    if isinstance(dialled.get("path"), str):
        result.path, result.path_source = dialled["path"], "dial"
    else:
        result.path = _session_path(a, id_b["public_key"], side_b.public_addr)
        result.path_source = "endpoint"

    # b answers at once, by number: it has a session with a but has never looked a up, so this
    # is the overlay lookup racing b's own derivation of a's number from the incoming message
    # (which once stalled the lookup for 10 s), and a directory address that must not replace
    # the session's (a symmetric caller's record names its mapping towards the supernode).
    for way, src, number in (("a->b", a, id_b["number"]), ("b->a", b, id_a["number"])):
        t0 = time.perf_counter()
        result.messages[way] = _send(src, number, f"{way}: {kind_a} x {kind_b}")
        result.message_ms[way] = round((time.perf_counter() - t0) * 1000.0, 1)
    caller_id = _caller_id(b, id_a["public_key"])

    result.final_path = _session_path(a, id_b["public_key"], side_b.public_addr)
    result.callee_path = _session_path(b, id_a["public_key"], side_a.public_addr)

    problems = result.problems
    if not result.delivered_both_ways:
        problems.append(f"messages: {result.messages}")
    result.caller_id_ok = caller_id == id_a["number"]
    if not result.caller_id_ok:
        problems.append(f"the callee shows caller ID {caller_id}, not {id_a['number']}")
    if result.path != result.expected:
        problems.append(f"path {result.path} at the dial, the plan says {result.expected}")
    if result.callee_path != result.final_path:
        problems.append(
            f"the callee sees path {result.callee_path}, the caller {result.final_path}"
        )
    sessions = {
        "caller": _session(a, id_b["public_key"]),
        "callee": _session(b, id_a["public_key"]),
    }
    # The SAS the caller's screen showed should be the one both sessions have now (people
    # compare them to detect a MITM); a glare that replaced the dialled session changes it.
    # Not yet a problem that fails the pair: the daemon still shows the first one (reported).
    sas = {end: (sessions[end] or {}).get("sas") for end in sessions}
    result.sas_ok = dialled.get("sas") == sas["caller"] == sas["callee"]
    notes = [] if result.sas_ok else [f"the dial showed SAS {dialled.get('sas')}, now {sas}"]
    # "direct" must mean the peer's own NAT (or address), whoever says it.
    for end, path, peer in (
        ("caller", result.final_path, side_b),
        ("callee", result.callee_path, side_a),
    ):
        endpoint = (sessions[end] or {}).get("endpoint")
        if path == "direct" and (not endpoint or endpoint[0] != peer.public_addr):
            problems.append(f"the {end}'s direct endpoint {endpoint} is not {peer.public_addr}")
    if problems or notes:
        result.detail = (
            f"{'; '.join(problems + notes)}; dial={dialled}; sessions={sessions}\n{log_tails(logs)}"
        )
    return result


def delay(lab: Lab, node: Node, delay_ms: float) -> None:
    """``lab.delay`` (which also works on a router's or a carrier's LAN)."""
    lab.delay(node, delay_ms)


def _wait(pred: Callable[[], Any], timeout: float) -> bool:
    """Poll ``pred`` until true (errors count as "not yet": a phone still starting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except (ControlError, NotRunning, OSError, KeyError, IndexError):
            pass
        time.sleep(0.1)
    return False


def _caller_id(data: Path, peer_key: str, timeout: float = 5.0) -> str | None:
    """The number ``data``'s inbox shows for messages from ``peer_key`` (the caller ID: the
    phone derives it from the key in the background), or None if none within ``timeout``."""
    found: list[str | None] = [None]

    def derived() -> bool:
        for m in control(data, "msg.list", {"limit": 50}):
            if m["direction"] == "in" and m["peer_key"] == peer_key and m["number"]:
                found[0] = str(m["number"])
                return True
        return False

    _wait(derived, timeout)
    return found[0]


def _send(data: Path, number: str, text: str) -> str:
    try:
        sent = control(data, "msg.send", {"number": number, "text": text, "wait_s": MESSAGE_WAIT_S})
    except (ControlError, NotRunning, OSError) as exc:
        return f"error: {exc}"
    return str(sent["status"])


def _session(data: Path, peer_key: str) -> dict[str, Any] | None:
    try:
        sessions = control(data, "status")["sessions"]
    except (ControlError, NotRunning, OSError):
        return None
    found: list[dict[str, Any]] = [s for s in sessions if s["peer_key"] == peer_key]
    return found[0] if found else None


def _session_path(data: Path, peer_key: str, peer_public_addr: str) -> str | None:
    """The session's path: its own "path" if the daemon reports one, else "direct" when the
    endpoint is the peer's own public address (its outermost NAT), "relayed" otherwise."""
    session = _session(data, peer_key)
    if session is None:
        return None
    if isinstance(session.get("path"), str):
        return str(session["path"])
    endpoint = session.get("endpoint")
    return "direct" if endpoint and endpoint[0] == peer_public_addr else "relayed"


def log_tails(logs: list[Path], chars: int = LOG_TAIL_CHARS) -> str:
    """The end of each daemon log, labelled: what a failure report needs."""
    return "\n".join(f"--- {p}\n{p.read_text()[-chars:]}" for p in logs if p.exists())
