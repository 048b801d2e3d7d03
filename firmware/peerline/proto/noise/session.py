"""Transport sessions: the keys a finished handshake yields, with counters and a replay window.

A session is identified on the wire by the receiver's 32-bit index. Each packet carries its
64-bit counter in the clear (it is the AEAD nonce), so packets can be opened in any order; the
replay window rejects repeats. The 14-byte packet header is the AEAD's associated data.
"""

from peerline.errors import CryptoError, LocalProtocolError, ReplayError
from peerline.proto.identity.sas import short_authentication_string
from peerline.wire.packet import TransportPacket, push_transport, transport_header
from peerline.wire.spec import REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME

from ._symmetric import decrypt, encrypt
from .handshake import TransportKeys
from .replay import ReplayWindow


class Session:
    """Send and receive state of one secure session.

    ``confirmed`` is False for a responder until the first authenticated packet from the
    initiator arrives: a replayed initiation therefore never displaces a working session.
    """

    __slots__ = (
        "_recv_key",
        "_send_key",
        "confirmed",
        "created_at",
        "handshake_hash",
        "initiator",
        "local_index",
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

    @property
    def sas(self) -> str:
        """Short authentication string both phones display for this session."""
        return short_authentication_string(self.handshake_hash)

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
