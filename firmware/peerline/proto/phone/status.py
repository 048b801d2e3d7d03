"""The phone core's state as plain data, for ``status`` displays (never key material).

Kept apart from the core so that what the control API shows is read in one place
(docs/control-api.md ``status`` lists every field); the shell adds what only it knows
(version, sockets, uptime, the audio device).
"""

from typing import TYPE_CHECKING, Any

from peerline.proto.call.state import Call, CallState
from peerline.proto.identity import format_number
from peerline.proto.nat.relay import is_relayed, relay_of
from peerline.proto.nat.stun_client import BindingFailed, BindingResult

if TYPE_CHECKING:
    from .core import PhoneCore


def session_status(session: dict[str, Any], number: str | None = None) -> dict[str, Any]:
    """A node session for status: the far phone's number if known, and its path: direct or
    relayed (and through whom)."""
    session["number"] = number
    endpoint = session["endpoint"]
    via = relay_of((endpoint[0], endpoint[1])) if endpoint else None
    session["path"] = "relayed" if via is not None else "direct"
    session["relay"] = list(via[0]) if via is not None else None
    return session


def call_json(core: "PhoneCore", call: Call, now: float) -> dict[str, Any]:
    """A call for the control API: call control's view plus the number and the path."""
    out = core.calls.call_status(call, now)
    known = core.numbers.get(call.peer_key) if call.peer_key else None
    out["number"] = number = call.number if call.number is not None else known
    card = core.book.get(number)
    out["contact"] = card.name if card is not None else None
    out["trust"] = str(core.book.trust(number, call.peer_key)) if call.peer_key else "unknown"
    out["verified"] = out["trust"] == "verified"
    endpoint = core.node.peer_endpoint(call.peer_key) if call.peer_key else None
    out["path"] = None
    if call.live and endpoint is not None and call.state is not CallState.RESOLVING:
        out["path"] = "relayed" if is_relayed(endpoint) else "direct"
    return out


def phone_status(core: "PhoneCore", *, now: float, uptime_s: float = 0.0) -> dict[str, Any]:
    """Everything ``status`` shows that the core knows. ``uptime_s`` turns byte counts into
    rates."""
    node, overlay, engine = core.node, core.overlay, core.engine
    counters = node.counters.as_dict()
    counters["numbers_deferred"] = core.numbers.counters.numbers_deferred
    classifier = core.reach.classifier
    seconds = max(1.0, uptime_s)
    return {
        "number": core.number,
        "number_display": format_number(core.number),
        "public_key": core.public_key.hex(),
        "nat": {
            "stun": [
                {
                    "server": list(server),
                    "mapped": list(r.mapped) if isinstance(r, BindingResult) else None,
                    "rtt_ms": round(r.rtt_s * 1000, 1) if isinstance(r, BindingResult) else None,
                    "error": r.reason if isinstance(r, BindingFailed) else None,
                }
                for server, r in core.reach.stun_results.items()
            ],
            "behaviour": (
                classifier.result.as_dict()
                if classifier is not None and classifier.result is not None
                else None
            ),
            "counters": core.stun.counters.as_dict(),
            "server": core.stun_server.counters.as_dict(),
            "port_mapping": (
                engine.portmap.status(now=now) if engine.portmap is not None else None
            ),
        },
        "peers": len(core.contacts),
        "sessions": [
            session_status(s, core.numbers.get(bytes.fromhex(s["peer_key"])))
            for s in node.sessions(now=now)
        ],
        "calls": [call_json(core, c, now) for c in core.calls.calls()],
        "forwarding": core.calls.forwarding.as_dict(),
        "do_not_disturb": core.calls.do_not_disturb,
        "contacts": len(core.book),
        "call_counters": core.calls.counters.as_dict(),
        "counters": counters,
        "lan": core.lan.status() if core.lan is not None else None,
        "overlay": {
            "role": "supernode" if overlay.member else "client",
            "relays": [list(c.addr) for c in overlay.relays],
            "joined": overlay.joined,
            "contacts": len(overlay.table),
            "records_held": len(overlay.store),
            "reflexive": list(overlay.reflexive) if overlay.reflexive else None,
            "record_seq": overlay.record.seq if overlay.record else None,
            "record_stored_seq": core.record_stored[0] if core.record_stored else None,
            "record_storers": core.record_stored[1] if core.record_stored else 0,
            "keepalive_bytes_per_s": round(overlay.counters.keepalive_bytes_sent / seconds, 1),
            "session_keepalive_bytes_per_s": round(node.counters.keepalive_bytes_sent / seconds, 1),
            "counters": overlay.counters.as_dict()
            | engine.introductions.counters.as_dict()
            | engine.relay_service.counters.as_dict(),
            "relaying": {
                "channels": len(engine.relay_service.table),
                "counters": engine.relay_service.table.counters.as_dict(),
            },
        },
        "traversal": core.traversal.counters.as_dict(),
    }


def lan_view(core: "PhoneCore") -> dict[str, Any]:
    """The ``lan`` command's answer: this phone's extension and the verified phones seen."""
    registry = core.lan
    if registry is None:
        return {"enabled": False, "extension": None, "phones": []}
    status = registry.status()
    return {
        "enabled": True,
        "extension": status["extension"],
        "state": status["state"],
        "phones": [
            {
                "extension": p.extension,
                "number": p.number,
                "public_key": p.public_key.hex(),
                "host": p.host,
                "port": p.port,
                "configured": p.configured,
                "groups": [str(g) for g in p.groups],
            }
            for p in registry.peers()
        ],
        "conflicts": status["conflicts"],
        "groups": [str(g) for g in registry.groups],
    }
