"""Transport sessions: the keys a finished handshake yields, with counters and a replay window.

A session is identified on the wire by the receiver's 32-bit index. Each packet carries its
64-bit counter in the clear (it is the AEAD nonce), so packets can be opened in any order; the
replay window rejects repeats. The 14-byte packet header is the AEAD's associated data.
"""

import hashlib
from typing import Final

from peerline.errors import CryptoError, LocalProtocolError, ReplayError
from peerline.proto.identity.sas import short_authentication_string
from peerline.wire.packet import TransportPacket, push_transport, transport_header
from peerline.wire.spec import REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME

from ._symmetric import decrypt, encrypt
from .handshake import TransportKeys
from .replay import ReplayWindow

LINK_PERSON: Final = b"peerline-link"
"""BLAKE2b personalisation of link tags (protocol.md §4.7), apart from every other hash."""

LINK_TAG_BYTES: Final = 4
"""A link tag is used as a 4-byte session index."""


class Session:
    """Send and receive state of one secure session.

    ``confirmed`` is False for a responder until the first authenticated packet from the
    initiator arrives: a replayed initiation therefore never displaces a working session.

    Four fields are bookkeeping for the node (protocol.md §2.4, §4.10), set when the session is
    made: ``connection_sas``, ``connection_hash``, ``begun`` and ``made``.
    """

    __slots__ = (
        "_recv_key",
        "_send_key",
        "begun",
        "confirmed",
        "connection_hash",
        "connection_sas",
        "created_at",
        "handshake_hash",
        "initiator",
        "local_index",
        "made",
        "remote_index",
        "remote_static",
        "replay",
        "send_counter",
    )

    def __init__(
        self,
        *,
        keys: TransportKeys,
        local_index: int,
        remote_index: int,
        initiator: bool,
        created_at: float,
    ) -> None:
        self._send_key = keys.send_key
        self._recv_key = keys.recv_key
        self.handshake_hash = keys.handshake_hash
        self.remote_static = keys.remote_static
        self.local_index = local_index
        self.remote_index = remote_index
        self.initiator = initiator
        self.created_at = created_at
        self.confirmed = initiator
        self.send_counter = 0
        self.replay = ReplayWindow()
        self.connection_sas: str = self.sas
        """The SAS phones display while this session is current: this session's own ``sas``,
        unless its handshake proved that both phones still held an earlier session, whose
        ``connection_sas`` it then carries on (protocol.md §2.4). Both ends agree on it."""
        self.connection_hash: bytes = self.handshake_hash
        """The 64-byte handshake hash ``h`` of the session that started this connection: this
        session's own, or the linked session's ``connection_hash`` (set with
        ``connection_sas``). Call SAS input (§2.6); both ends agree on it. Never logged."""
        self.begun = 0
        """This phone's handshake event number when the session's handshake began here: the
        initiation was sent (initiator) or arrived (responder). Orders sessions (§4.10)."""
        self.made = 0
        """The event number when the handshake completed here: the response arrived
        (initiator), or the initiation arrived (responder, ``made == begun``)."""

    @property
    def sas(self) -> str:
        """The SAS of this session's handshake alone (protocol.md §2.4).

        Not what a phone displays: that is ``connection_sas``, which stays the same across
        rekeys. Both phones compute the same value from the handshake hash ``h``.
        """
        return short_authentication_string(self.handshake_hash)

    def link_tag(self, label: bytes, data: bytes) -> int | None:
        """A 32-bit value that only the two holders of this session can compute, or None once
        the session is wiped (protocol.md §4.7).

        A new handshake uses it as a session index to prove that its sender still holds this
        session, without changing the wire format: ``label`` is ``b"i"`` for the initiator's
        index and ``b"r"`` for the responder's, ``data`` the initiation's ephemeral key.
        """
        if not self._send_key:
            return None
        i2r, r2i = (
            (self._send_key, self._recv_key) if self.initiator else (self._recv_key, self._send_key)
        )
        digest = hashlib.blake2b(
            label + data, digest_size=LINK_TAG_BYTES, key=i2r + r2i, person=LINK_PERSON
        ).digest()
        return int.from_bytes(digest, "big")

    def age(self, now: float) -> float:
        return now - self.created_at

    def is_usable(self, now: float) -> bool:
        """False once the session is too old or too used to send or receive on."""
        return (
            bool(self._send_key)
            and now - self.created_at < REJECT_AFTER_TIME
            and self.send_counter < REJECT_AFTER_MESSAGES
            and self.replay.highest < REJECT_AFTER_MESSAGES
        )

    def seal(self, payload: bytes) -> bytes:
        """Encrypt ``payload`` into a complete transport packet. Then: send it to the peer."""
        if self.send_counter >= REJECT_AFTER_MESSAGES or not self._send_key:
            raise LocalProtocolError("session exhausted; a new handshake is needed")
        counter = self.send_counter
        self.send_counter += 1
        header = transport_header(self.remote_index, counter)
        return push_transport(
            self.remote_index, counter, encrypt(self._send_key, counter, header, payload)
        )

    def open(self, packet: TransportPacket) -> bytes:
        """Authenticate and decrypt; raise ``ReplayError`` or ``CryptoError`` on rejection."""
        if not self._recv_key:
            raise CryptoError("session wiped")
        if packet.counter >= REJECT_AFTER_MESSAGES or not self.replay.check(packet.counter):
            raise ReplayError(f"counter {packet.counter} replayed or too old")
        payload = decrypt(self._recv_key, packet.counter, packet.header, packet.ciphertext)
        self.replay.accept(packet.counter)
        return payload

    def wipe(self) -> None:
        """Forget the keys (forward secrecy: old traffic cannot be decrypted later)."""
        self._send_key = self._recv_key = b""
