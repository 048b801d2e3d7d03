"""What the phone core tells its front ends: one closed set of small, immutable, past-tense events.

Every front end (the control socket and its event stream, the keypad UI, the emulator, the
shell's persistence, a gateway) learns what happened only from these, pulled one at a time with
``PhoneCore.next_event()``. None of them reaches into the engine's parts. Fields are plain
values (bytes, str, int, float, tuples, enums) so that a front end can print them as JSON.
"""

from dataclasses import dataclass

from peerline.proto.call.state import CallState, EndReason
from peerline.proto.lan import LanAnnouncement
from peerline.types import Addr
from peerline.wire.record import Record


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneEvent:
    """Base of every phone event."""


# -- calls ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class CallStateChanged(PhoneEvent):
    call_id: bytes
    state: CallState
    outgoing: bool
    peer_key: bytes
    "The far phone's key; empty while an outgoing call still resolves its number."
    number: str | None
    "The far phone's number; None while a caller's is still being derived from its key."
    name: str = ""
    "The caller's display name (incoming), else empty."
    reason: EndReason | None = None
    "Why it ended (``ENDED`` only)."
    detail: str = ""
    "A sentence for people about the reason, or empty."
    target: str = ""
    "What was dialled (outgoing)."
    answered: bool = False
    "Whether it was ever answered (for the history's outcome)."
    forwarded_to: str | None = None
    "Where it was forwarded (by the callee, or by this phone)."
    trust: str = "unknown"
    "The far phone's key against the contacts: 'verified', 'pinned', 'key_changed', 'unknown'."


@dataclass(frozen=True, slots=True, kw_only=True)
class CallUpdated(PhoneEvent):
    """Something about a call changed but not its state: ``aspect`` is 'held_by_peer',
    'sas', 'transfer' or 'transfer_failed' (a live call), or 'forwarded' (an outgoing call
    that ended unreachable is followed to the forwarding target in the callee's record);
    ``status`` has the rest."""

    call_id: bytes
    aspect: str
    held_by_peer: bool = False
    sas: str | None = None
    forwarded_to: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyChanged(PhoneEvent):
    """A contact's number called or was reached from another key than the one pinned: a
    reset phone, or an impostor. Shown loudly; nothing is re-pinned without the user."""

    call_id: bytes
    number: str
    pinned_key: bytes
    public_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactSaved(PhoneEvent):
    """A contact was added or changed (store it)."""

    number: str
    name: str
    public_key: bytes | None
    verified_at: float | None
    speed_dial: int | None
    auto_answer: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactRemoved(PhoneEvent):
    number: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardingChanged(PhoneEvent):
    """The forwarding settings changed (store them; ``offline`` goes into the record)."""

    always: str | None
    busy: str | None
    no_answer: str | None
    no_answer_s: float
    offline: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingCall(PhoneEvent):
    """This phone rings (also reported as a ``CallStateChanged`` to ``INCOMING``)."""

    call_id: bytes
    peer_key: bytes
    "The caller's key: what its secure session authenticated."
    number: str | None
    "The caller's number, derived from its key; None until known (``CallerIdentified``)."
    name: str
    "The display name the caller sent (not verified: show the number with it)."
    known: bool
    "Whether the caller is a stored peer (added by hand or pinned on first use)."
    contact: str | None = None
    "The contact's name for the caller's number, if it is one."
    trust: str = "unknown"
    "'verified', 'pinned', 'key_changed' (loud warning) or 'unknown' (``addressbook.Trust``)."
    waiting: bool = False
    "Another call is up: this one rings as call waiting."
    group: str | None = None
    "The LAN group extension the caller dialled (a hunt group or a page), if any."
    page: bool = False
    "A one-way announcement (answered at once when it comes from a page group's member)."


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerIdentified(PhoneEvent):
    """A live call's far phone's number became known after the call began."""

    call_id: bytes
    peer_key: bytes
    number: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(PhoneEvent):
    call_id: bytes
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEstablished(PhoneEvent):
    """A secure session with a peer completed its handshake."""

    peer_key: bytes
    number: str | None
    sas: str
    "Short authentication string, to compare by voice."
    addr: Addr
    "Where the peer answered (a relay channel for a relayed session)."
    relayed: bool
    initiator: bool


# -- messages ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived(PhoneEvent):
    """A text message arrived (already acknowledged: store it now, it is not sent again)."""

    message_id: bytes
    peer_key: bytes
    number: str | None
    "None while the sender's number is still being derived (``NumberLearned`` follows)."
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSent(PhoneEvent):
    """A ``SendMessage`` found its recipient and the message is on its way."""

    request: int
    message_id: bytes
    peer_key: bytes
    number: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStatusChanged(PhoneEvent):
    message_id: bytes
    peer_key: bytes
    status: str
    "'delivered' (the recipient acknowledged it) or 'failed'."
    reason: str = ""
    "Why it failed: 'timeout' or 'unreachable'."


# -- requests that finish later ---------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class RequestFailed(PhoneEvent):
    """A command accepted with a request id could not be carried out."""

    request: int
    code: str
    "A control-API error code: unknown_number, number_conflict, unreachable, number_mismatch..."
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupFinished(PhoneEvent):
    request: int
    number: str
    found: bool
    records: tuple[Record, ...] = ()
    "Each key's newest verified record (``peerline.wire.record.Record``), sorted by key."
    hops: int = 0
    elapsed_s: float = 0.0
    queries: int = 0
    replies: int = 0
    reason: str = ""
    "Not found: 'not found', 'timeout' (the overlay's deadline) or 'no overlay contacts'."


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerAdded(PhoneEvent):
    """An ``AddPeer`` checked out: the key derives to the number and is stored."""

    request: int
    public_key: bytes
    number: str
    addr: Addr


# -- what the shell keeps on disk -------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class PeerSaved(PhoneEvent):
    """A stored peer was added or changed (store it)."""

    public_key: bytes
    number: str
    addr: Addr


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerSeen(PhoneEvent):
    """A stored peer was heard from at a new address (an authenticated packet)."""

    public_key: bytes
    addr: Addr


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerMoved(PhoneEvent):
    """The directory says a peer moved, and this phone now reaches it there."""

    public_key: bytes
    number: str
    addr: Addr
    why: str
    "'directory' (a silent peer's record) or 'newer record' (a first contact's recheck)."


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberLearned(PhoneEvent):
    """A key's number is now known (fill it in on what was stored without it)."""

    public_key: bytes
    number: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordPublished(PhoneEvent):
    """This phone's directory record: signed (``storers`` None) or stored on nodes."""

    seq: int
    "Its sequence number: it must never go back, across restarts (keep the highest)."
    storers: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerCacheSaved(PhoneEvent):
    """Overlay contacts worth remembering for the next start (every few minutes, and at
    ``close``)."""

    contacts: tuple[tuple[bytes, Addr], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LanAnnouncementChanged(PhoneEvent):
    """This phone's LAN announcement changed: register it on the LAN, and keep
    ``claim_seq`` and an automatic ``extension`` for the next start."""

    announcement: LanAnnouncement
    "The signed announcement to register."
    extension: str | None
    configured: bool
    claim_seq: int


# -- the phone and its network ----------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkChanged(PhoneEvent):
    aspect: str
    """'directory' (joined or left), 'role', 'reflexive', 'relays', 'port_mapping', 'nat',
    'addresses' or 'lan'."""
    summary: str
    "One line for people (and the log)."


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioActiveChanged(PhoneEvent):
    """Whether the sound device is needed (a call, a tone): idle, it is closed."""

    active: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneClosed(PhoneEvent):
    """After ``close``: nothing is left to wait for (the router confirmed, or gave up on, the
    release of the port mapping). The shell may stop now."""
