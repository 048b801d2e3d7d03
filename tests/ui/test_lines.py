"""``Lines``: the live calls as the handset groups them (ui/lines.py)."""

from peerline.proto.phone import CallInfo, CallState
from peerline.ui.lines import Lines


def call(n: int, state: CallState, *, held_at: float | None = None) -> CallInfo:
    return CallInfo(
        call_id=bytes([n]) * 8,
        state=state,
        outgoing=True,
        peer_key=bytes([n]) * 32,
        number=f"{n:012d}",
        name="",
        target="",
        reason=None,
        detail="",
        answered=True,
        held_at=held_at,
    )


def test_held_calls_are_ordered_by_when_they_were_held_not_when_they_began() -> None:
    """The core resumes the call held last: ``held[-1]`` must be that one, whatever the order
    the calls began in (the core lists the newest first)."""
    first, second, third = (
        call(1, CallState.HELD, held_at=30.0),
        call(2, CallState.HELD, held_at=10.0),
        call(3, CallState.ACTIVE),
    )
    lines = Lines.of([third, second, first])
    assert [c.call_id for c in lines.held] == [second.call_id, first.call_id]
    assert lines.talking == (third,) and lines.busy and lines.waiting is None
