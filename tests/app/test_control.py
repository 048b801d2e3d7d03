"""The control API's handlers (``peerline.app.control``) in isolation, where a daemon test
cannot choose the timing."""

from peerline.app.control import _glare_survivor
from peerline.proto.phone import CallInfo, CallState, EndReason

PEER = b"\x01" * 32
OTHER = b"\x02" * 32


def _info(call_id: bytes, state: CallState, *, peer: bytes = PEER, **kw: object) -> CallInfo:
    fields: dict[str, object] = {
        "outgoing": True,
        "number": "482155901736",
        "name": "",
        "target": "482155901736",
        "reason": None,
        "detail": "",
        "answered": False,
    }
    fields.update(kw)
    return CallInfo(call_id=call_id, state=state, peer_key=peer, **fields)  # type: ignore[arg-type]


class Core:
    def __init__(self, *calls: CallInfo) -> None:
        self.calls = list(calls)

    def recent_calls(self) -> list[CallInfo]:
        return self.calls


def test_dial_answers_with_the_peers_call_when_ours_ended_in_glare() -> None:
    """However far our call got (resolving, or its INVITE out) before the peer's crossed it,
    ``dial`` stands for the call that survived: the peer's, answered here."""
    ours = _info(b"ours", CallState.ENDED, reason=EndReason.GLARE)
    theirs = _info(b"theirs", CallState.ACTIVE, outgoing=False, answered=True)
    held = _info(b"held", CallState.HELD, peer=OTHER, answered=True)
    core = Core(held, theirs, ours)
    assert _glare_survivor(core, ours) == theirs  # type: ignore[arg-type]
    # Not glare, or no call with that peer left: the call itself.
    refused = _info(b"refused", CallState.ENDED, reason=EndReason.BUSY)
    assert _glare_survivor(core, refused) == refused  # type: ignore[arg-type]
    assert _glare_survivor(Core(held, ours), ours) == ours  # type: ignore[arg-type]
    ringing = _info(b"ringing", CallState.RINGBACK)
    assert _glare_survivor(core, ringing) == ringing  # type: ignore[arg-type]
