"""The call history in the database: every call made or received, with its times, outcome and
end reason, written as it goes so that ``kill -9`` loses at most the end of a live call."""

from dataclasses import dataclass
from typing import cast

from .checks import (
    CALL_ID_LEN,
    MAX_CALL_HISTORY,
    MAX_NAME_LEN,
    MAX_TARGET_LEN,
    OUTCOMES,
    UNSET,
    CallOutcome,
    Direction,
    Unset,
    check_bytes,
    check_direction,
    check_end_reason,
    check_flag,
    check_key,
    check_number,
    check_short_text,
    check_time,
)
from .sqlite import SqliteStore


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRow:
    """One call in the history, made or received."""

    call_id: bytes
    direction: Direction
    peer_key: bytes | None
    """None for an outgoing call that never found the callee's key."""
    number: str | None
    """None while the far phone's number is unknown (still being derived, or never resolved)."""
    target: str
    """What the owner dialled (outgoing calls); empty for incoming ones."""
    name: str
    """The display name the caller sent, as sent; the screen sanitizes it."""
    started_at: float
    answered_at: float | None
    ended_at: float | None
    end_reason: str | None
    """Why it ended (an ``EndReason`` value such as ``hangup``, or ``interrupted``)."""
    outcome: CallOutcome
    forwarded_to: str | None
    """The number the call went on to, when ``outcome`` is ``forwarded``."""
    verified: bool
    """The SAS was confirmed (or the key matched a verified contact) during the call."""
    seen: bool
    """False for a missed call the owner has not looked at yet."""

    @property
    def duration_s(self) -> float | None:
        """Seconds from answer to end; None unless both are known.

        Never negative: the wall clock may step back (an NTP correction) during a call.
        """
        if self.answered_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.answered_at)


class CallHistory(SqliteStore):
    """The ``calls`` table (schema migration 4), a part of ``Database``."""

    __slots__ = ()

    def call_started(
        self,
        *,
        call_id: bytes,
        direction: Direction,
        peer_key: bytes | None,
        number: str | None,
        target: str,
        name: str,
        started_at: float,
        verified: bool = False,
    ) -> bool:
        """Record a call as it starts (outcome ``live``); False (nothing changes) if its id is
        already recorded, so a repeated event records the call once.

        The history is bounded: the same transaction drops the oldest calls beyond
        ``MAX_CALL_HISTORY``. Live calls are never dropped, so ``call_ended`` still finds them.

        ``name`` is stored as the far phone sent it (any text the wire allows), not refused:
        the call belongs in the history whatever the caller calls itself.
        """
        check_bytes(call_id, CALL_ID_LEN, "call_id")
        check_direction(direction)
        if peer_key is not None:
            check_key(peer_key, "peer_key")
        if number is not None:
            check_number(number, "number")
        check_short_text(target, "target", MAX_TARGET_LEN)
        check_short_text(name, "name", MAX_NAME_LEN)
        check_time(started_at, "started_at")
        check_flag(verified, "verified")
        with self._write("record call"):
            cur = self._conn.execute(
                "INSERT INTO calls (call_id, direction, peer_key, number, target, name,"
                " started_at, outcome, verified, seen)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'live', ?, 1)"
                " ON CONFLICT (call_id) DO NOTHING",
                (
                    call_id,
                    direction,
                    peer_key,
                    number,
                    target,
                    name,
                    float(started_at),
                    int(verified),
                ),
            )
            if cur.rowcount > 0:
                self._conn.execute(
                    "DELETE FROM calls WHERE outcome != 'live' AND rowid NOT IN"
                    " (SELECT rowid FROM calls ORDER BY started_at DESC, rowid DESC LIMIT ?)",
                    (MAX_CALL_HISTORY,),
                )
        return cur.rowcount > 0

    def call_updated(
        self,
        call_id: bytes,
        *,
        peer_key: bytes | Unset | None = UNSET,
        number: str | Unset | None = UNSET,
        verified: bool | Unset = UNSET,
        answered_at: float | Unset = UNSET,
    ) -> bool:
        """Change the given fields of a recorded call (the caller was identified, the SAS was
        confirmed, the call was answered); False if no call has this id."""
        check_bytes(call_id, CALL_ID_LEN, "call_id")
        if peer_key is not UNSET and peer_key is not None:
            check_key(peer_key, "peer_key")
        if number is not UNSET and number is not None:
            check_number(number, "number")
        if verified is not UNSET:
            check_flag(verified, "verified")
        if answered_at is not UNSET:
            check_time(answered_at, "answered_at")
        with self._write("update call"):
            row = self._conn.execute(
                "SELECT peer_key, number, verified, answered_at FROM calls WHERE call_id = ?",
                (call_id,),
            ).fetchone()
            if row is None:
                return False
            old_key, old_number, old_verified, old_answered_at = row
            self._conn.execute(
                "UPDATE calls SET peer_key = ?, number = ?, verified = ?, answered_at = ?"
                " WHERE call_id = ?",
                (
                    old_key if peer_key is UNSET else peer_key,
                    old_number if number is UNSET else number,
                    old_verified if verified is UNSET else int(verified),
                    old_answered_at if answered_at is UNSET else float(answered_at),
                    call_id,
                ),
            )
        return True

    def call_ended(
        self,
        call_id: bytes,
        *,
        ended_at: float,
        end_reason: str,
        outcome: CallOutcome,
        forwarded_to: str | None = None,
    ) -> bool:
        """Settle a live call: when and why it ended, and how it went. A ``missed`` call counts
        as unseen until ``mark_missed_seen``.

        False if no live call has this id: an unknown call, or one already settled (an end
        reported twice must not mark a missed call the owner has seen as unseen again).
        ``forwarded_to`` is the number the call went on to, and only for ``forwarded``.
        """
        check_bytes(call_id, CALL_ID_LEN, "call_id")
        check_time(ended_at, "ended_at")
        check_end_reason(end_reason)
        if not (isinstance(outcome, str) and outcome in OUTCOMES and outcome != "live"):
            raise ValueError(
                f"outcome must be one of {sorted(OUTCOMES - {'live'})}, got {outcome!r}"
            )
        if forwarded_to is not None:
            check_number(forwarded_to, "forwarded_to")
            if outcome != "forwarded":
                raise ValueError(f"forwarded_to is only for outcome 'forwarded', not {outcome!r}")
        with self._write("end call"):
            cur = self._conn.execute(
                "UPDATE calls SET ended_at = ?, end_reason = ?, outcome = ?, forwarded_to = ?,"
                " seen = ? WHERE call_id = ? AND outcome = 'live'",
                (
                    float(ended_at),
                    str(end_reason),
                    outcome,
                    forwarded_to,
                    int(outcome != "missed"),
                    call_id,
                ),
            )
        return cur.rowcount > 0

    def call_forwarded(self, call_id: bytes, forwarded_to: str) -> bool:
        """A settled call that failed went on to ``forwarded_to`` after all (offline
        forwarding, found once the call had ended unreachable). False if no such call."""
        check_bytes(call_id, CALL_ID_LEN, "call_id")
        check_number(forwarded_to, "forwarded_to")
        with self._write("forward call"):
            cur = self._conn.execute(
                "UPDATE calls SET outcome = 'forwarded', forwarded_to = ?"
                " WHERE call_id = ? AND outcome = 'failed'",
                (forwarded_to, call_id),
            )
        return cur.rowcount > 0

    def set_call_numbers(self, peer_key: bytes, number: str) -> int:
        """Fill in ``number`` on calls with ``peer_key`` recorded before it was known."""
        check_key(peer_key, "peer_key")
        check_number(number, "number")
        with self._write("set call numbers"):
            cur = self._conn.execute(
                "UPDATE calls SET number = ? WHERE peer_key = ? AND number IS NULL",
                (number, peer_key),
            )
        return cur.rowcount

    def close_interrupted_calls(self, *, now: float) -> int:
        """Settle every call still ``live`` (the phone stopped mid-call); how many there were.

        Call this once at start, before any new call. Such a call ends at ``now`` (the real end
        was lost with the process; never before it started or was answered) with reason
        ``interrupted``: ``answered`` if it was, otherwise an incoming call was ``missed``
        (and unseen) and an outgoing one ``cancelled``.
        """
        check_time(now, "now")
        with self._write("close interrupted calls"):
            cur = self._conn.execute(
                "UPDATE calls SET"
                " ended_at = max(?, coalesce(answered_at, started_at)),"
                " end_reason = 'interrupted',"
                " outcome = CASE WHEN answered_at IS NOT NULL THEN 'answered'"
                " WHEN direction = 'in' THEN 'missed' ELSE 'cancelled' END,"
                " seen = CASE WHEN answered_at IS NULL AND direction = 'in' THEN 0 ELSE seen END"
                " WHERE outcome = 'live'",
                (float(now),),
            )
        return cur.rowcount

    def calls(self, limit: int = 100, *, missed_only: bool = False) -> list[CallRow]:
        """The newest ``limit`` calls, newest first (as the history screen lists them), or only
        the missed ones. Calls started at the same time: the one recorded last comes first."""
        if type(limit) is not int or limit < 0:
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        check_flag(missed_only, "missed_only")
        if missed_only:
            sql = (
                "SELECT call_id, direction, peer_key, number, target, name, started_at,"
                " answered_at, ended_at, end_reason, outcome, forwarded_to, verified, seen"
                " FROM calls WHERE outcome = 'missed' ORDER BY started_at DESC, rowid DESC LIMIT ?"
            )
        else:
            sql = (
                "SELECT call_id, direction, peer_key, number, target, name, started_at,"
                " answered_at, ended_at, end_reason, outcome, forwarded_to, verified, seen"
                " FROM calls ORDER BY started_at DESC, rowid DESC LIMIT ?"
            )
        return [_call_row(r) for r in self._read("list calls", sql, (limit,))]

    def call(self, call_id: bytes) -> CallRow | None:
        """The call with this id, or None."""
        check_bytes(call_id, CALL_ID_LEN, "call_id")
        rows = self._read(
            "look up call",
            "SELECT call_id, direction, peer_key, number, target, name, started_at,"
            " answered_at, ended_at, end_reason, outcome, forwarded_to, verified, seen"
            " FROM calls WHERE call_id = ?",
            (call_id,),
        )
        return _call_row(rows[0]) if rows else None

    def missed_unseen(self) -> int:
        """Missed calls the owner has not looked at (the idle screen's count)."""
        rows = self._read(
            "count missed calls",
            "SELECT count(*) FROM calls WHERE outcome = 'missed' AND seen = 0",
            (),
        )
        return cast(int, rows[0][0])

    def mark_missed_seen(self) -> int:
        """Mark every missed call seen (the owner opened the history); how many were unseen."""
        with self._write("mark missed calls seen"):
            cur = self._conn.execute(
                "UPDATE calls SET seen = 1 WHERE outcome = 'missed' AND seen = 0"
            )
        return cur.rowcount


def _call_row(r: tuple[object, ...]) -> CallRow:
    (
        call_id,
        direction,
        peer_key,
        number,
        target,
        name,
        started_at,
        answered_at,
        ended_at,
        end_reason,
        outcome,
        forwarded_to,
        verified,
        seen,
    ) = r
    return CallRow(
        call_id=cast(bytes, call_id),
        direction=cast(Direction, direction),
        peer_key=cast("bytes | None", peer_key),
        number=cast("str | None", number),
        target=cast(str, target),
        name=cast(str, name),
        started_at=cast(float, started_at),
        answered_at=cast("float | None", answered_at),
        ended_at=cast("float | None", ended_at),
        end_reason=cast("str | None", end_reason),
        outcome=cast(CallOutcome, outcome),
        forwarded_to=cast("str | None", forwarded_to),
        verified=bool(verified),
        seen=bool(seen),
    )
