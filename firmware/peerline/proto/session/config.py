"""What a ``Node`` is told and what it counts: ``NodeConfig`` (the tunables, protocol.md §8.2)
and ``NodeCounters`` (what ``status --json`` shows).

Both are plain dataclasses with no behaviour beyond checking their own bounds, so they live
apart from the node's logic; ``peerline.proto.node`` re-exports them.
"""

from dataclasses import asdict, dataclass

from peerline.wire.spec import REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    """Tunables that do not change the wire format (spec values live in ``wire.spec``)."""

    handshake_retry_s: float = 1.0
    "First handshake retransmission; doubles per attempt up to ``handshake_retry_max_s``."
    handshake_retry_max_s: float = 5.0
    handshake_timeout_s: float = 30.0
    "Give up reaching a peer after this long without a completed handshake."
    message_retry_s: float = 1.0
    "First message retransmission; doubles per attempt up to ``message_retry_max_s``."
    message_retry_max_s: float = 8.0
    message_timeout_s: float = 60.0
    "A message not acknowledged by then is reported failed."
    keepalive_s: float = 15.0
    "An idle live session sends an empty packet this often, holding NAT mappings open."
    rekey_after_time_s: float = REKEY_AFTER_TIME
    rekey_after_messages: int = REKEY_AFTER_MESSAGES
    handshakes_per_s: float = 20.0
    "Initiations answered per second before the responder asks for cookies (under load)."
    confirm_timeout_s: float = 15.0
    "An unconfirmed responder session is dropped after this long (a real initiator confirms"
    " within one round trip; this bounds what forged initiations can hold)."
    max_peers: int = 4096
    "Memory bound: sessions from unknown callers are refused beyond this many peers."
    max_queued_messages: int = 256
    "Per peer: unacknowledged outgoing messages before ``send_message`` refuses more."

    def __post_init__(self) -> None:
        if self.keepalive_s <= 0:
            raise ValueError("keepalive_s must be positive")
        if not 0 < self.rekey_after_time_s <= REKEY_AFTER_TIME:
            raise ValueError("rekey_after_time_s must be in (0, REKEY_AFTER_TIME]")
        if not 0 < self.rekey_after_messages <= REKEY_AFTER_MESSAGES:
            raise ValueError("rekey_after_messages must be in (0, REKEY_AFTER_MESSAGES]")


@dataclass(slots=True)
class NodeCounters:
    """What the node saw and did; ``status --json`` shows these."""

    rx_datagrams: int = 0
    rx_bytes: int = 0
    tx_datagrams: int = 0
    tx_bytes: int = 0
    dropped_malformed: int = 0
    "Did not parse: wrong size, unknown type or version."
    dropped_stun: int = 0
    "STUN datagrams (first byte 0-3): no STUN handler yet."
    dropped_unknown_session: int = 0
    "Well-formed, but for a session or handshake index this node does not have."
    dropped_auth: int = 0
    "Failed authentication: tampered or forged."
    dropped_replay: int = 0
    "Authentic counter already seen, or older than the replay window."
    dropped_handshake: int = 0
    "Handshake messages that failed to decrypt or named a key that does not match."
    dropped_mac1: int = 0
    "Initiations whose mac1 is wrong: not meant for this phone's key (dropped cheaply)."
    initiations_repeated: int = 0
    "Initiations already answered that arrived again (duplicates, replays): no new session."
    cookie_replies_sent: int = 0
    "Initiations answered with a cookie instead of a handshake (under load)."
    cookies_received: int = 0
    dropped_rate_limited: int = 0
    "Initiations with a valid cookie over the per-address limit while under load."
    dropped_peer_limit: int = 0
    dropped_bad_frames: int = 0
    "Authenticated payloads whose frames did not parse."
    unknown_frames: int = 0
    handshakes_initiated: int = 0
    handshakes_completed: int = 0
    rekeys: int = 0
    keepalives_sent: int = 0
    keepalive_bytes_sent: int = 0
    "What idle sessions' keepalives cost (30 bytes each; 36 through a relay, counted there)."
    messages_sent: int = 0
    messages_received: int = 0
    messages_duplicate: int = 0
    messages_delivered: int = 0
    messages_failed: int = 0
    message_retransmissions: int = 0
    media_sent: int = 0
    media_received: int = 0
    media_unsent: int = 0
    "Media packets the app offered with no live session to send them on (dropped)."
    media_reports_sent: int = 0
    media_reports_received: int = 0
    signals_sent: int = 0
    signals_received: int = 0
    path_probes_sent: int = 0
    path_probes_answered: int = 0
    "Path challenges from peers echoed back to where they came from."
    paths_validated: int = 0
    path_migrations: int = 0
    "A peer's path moved: a newer authenticated packet, or a validated probe, from elsewhere."

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
