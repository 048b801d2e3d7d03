"""The Noise IK handshake (``Noise_IK_25519_ChaChaPoly_BLAKE2b``), sans-I/O.

::

    IK:
      <- s
      ...
      -> e, es, s, ss
      <- e, ee, se

The caller (initiator) knows the callee's static key from its record, so the handshake is one
round trip and hides the initiator's identity from passive observers. Ephemeral private keys are
passed in (drawn from the ``Rng`` port by the node), which keeps the object deterministic and lets
the published test vectors drive it. Transitions live in ``TRANSITIONS``; a step not in the table
is the only illegal-transition path.
"""

import enum
from dataclasses import dataclass, field

from nacl.bindings import crypto_scalarmult, crypto_scalarmult_base

from peerline.errors import CryptoError, DecodeError, LocalProtocolError

from ._symmetric import SymmetricState

PROTOCOL_NAME = b"Noise_IK_25519_ChaChaPoly_BLAKE2b"
DHLEN = 32
TAGLEN = 16


class Role(enum.Enum):
    INITIATOR = "initiator"
    RESPONDER = "responder"


class HandshakeState(enum.Enum):
    START = "start"
    INITIATION_SENT = "initiation-sent"
    INITIATION_RECEIVED = "initiation-received"
    DONE = "done"


class Step(enum.Enum):
    WRITE_INITIATION = "write-initiation"
    READ_INITIATION = "read-initiation"
    WRITE_RESPONSE = "write-response"
    READ_RESPONSE = "read-response"


TRANSITIONS: dict[Role, dict[HandshakeState, dict[Step, HandshakeState]]] = {
    Role.INITIATOR: {
        HandshakeState.START: {Step.WRITE_INITIATION: HandshakeState.INITIATION_SENT},
        HandshakeState.INITIATION_SENT: {Step.READ_RESPONSE: HandshakeState.DONE},
    },
    Role.RESPONDER: {
        HandshakeState.START: {Step.READ_INITIATION: HandshakeState.INITIATION_RECEIVED},
        HandshakeState.INITIATION_RECEIVED: {Step.WRITE_RESPONSE: HandshakeState.DONE},
    },
}


def initiation_length(payload_len: int) -> int:
    """Bytes of the first handshake message for a payload of ``payload_len`` bytes."""
    return DHLEN + (DHLEN + TAGLEN) + (payload_len + TAGLEN)


def response_length(payload_len: int) -> int:
    return DHLEN + payload_len + TAGLEN


def dh(private: bytes, public: bytes) -> bytes:
    """X25519; a low-order peer point (all-zero result) is an authentication failure."""
    try:
        return bytes(crypto_scalarmult(private, public))
    except Exception as exc:  # libsodium refuses all-zero outputs with RuntimeError
        raise CryptoError("invalid X25519 public key") from exc


def x25519_public(private: bytes) -> bytes:
    return bytes(crypto_scalarmult_base(private))


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportKeys:
    """The result of a finished handshake, from this side's point of view."""

    send_key: bytes = field(repr=False)
    recv_key: bytes = field(repr=False)
    handshake_hash: bytes
    remote_static: bytes


class IKHandshake:
    """One IK handshake from one side. Call the steps of ``TRANSITIONS`` in order.

    Then: after ``DONE``, ``transport_keys()``. A read that raises ``CryptoError`` or
    ``DecodeError`` leaves the object as it was, so a forged message cannot spoil a real
    handshake.
    """

    def __init__(
        self,
        *,
        role: Role,
        static_private: bytes,
        ephemeral_private: bytes,
        prologue: bytes,
        remote_static: bytes | None = None,
    ) -> None:
        if role is Role.INITIATOR and remote_static is None:
            raise LocalProtocolError("IK initiator needs the responder's static key")
        if len(static_private) != DHLEN or len(ephemeral_private) != DHLEN:
            raise LocalProtocolError("X25519 private keys are 32 bytes")
        self.role = role
        self.state = HandshakeState.START
        self._s = static_private
        self._s_pub = x25519_public(static_private)
        self._e = ephemeral_private
        self._e_pub = x25519_public(ephemeral_private)
        self._rs = remote_static
        self._re: bytes | None = None
        self._sym = SymmetricState(PROTOCOL_NAME)
        self._sym.mix_hash(prologue)
        # Pre-message "<- s": both sides hash the responder's static key.
        self._sym.mix_hash(remote_static if role is Role.INITIATOR else self._s_pub)  # type: ignore[arg-type]

    @property
    def remote_static(self) -> bytes | None:
        return self._rs

    @property
    def handshake_hash(self) -> bytes:
        return self._sym.h

    def _advance(self, step: Step) -> None:
        try:
            self.state = TRANSITIONS[self.role][self.state][step]
        except KeyError:
            raise LocalProtocolError(
                f"{self.role.value} cannot {step.value} in state {self.state.value}"
            ) from None

    def _check(self, step: Step) -> None:
        if step not in TRANSITIONS[self.role].get(self.state, {}):
            raise LocalProtocolError(
                f"{self.role.value} cannot {step.value} in state {self.state.value}"
            )

    def write_initiation(self, payload: bytes) -> bytes:
        """-> e, es, s, ss. Then: read_response."""
        self._check(Step.WRITE_INITIATION)
        assert self._rs is not None
        sym = self._sym
        sym.mix_hash(self._e_pub)
        sym.mix_key(dh(self._e, self._rs))
        enc_s = sym.encrypt_and_hash(self._s_pub)
        sym.mix_key(dh(self._s, self._rs))
        enc_payload = sym.encrypt_and_hash(payload)
        self._advance(Step.WRITE_INITIATION)
        return self._e_pub + enc_s + enc_payload

    def read_initiation(self, message: bytes) -> bytes:
        """Responder side of the first message; returns its payload. Then: write_response."""
        self._check(Step.READ_INITIATION)
        if len(message) < initiation_length(0):
            raise DecodeError("handshake initiation too short")
        sym = self._sym.copy()
        re = message[:DHLEN]
        sym.mix_hash(re)
        sym.mix_key(dh(self._s, re))
        rs = sym.decrypt_and_hash(message[DHLEN : DHLEN * 2 + TAGLEN])
        sym.mix_key(dh(self._s, rs))
        payload = sym.decrypt_and_hash(message[DHLEN * 2 + TAGLEN :])
        self._sym, self._re, self._rs = sym, re, rs
        self._advance(Step.READ_INITIATION)
        return payload

    def write_response(self, payload: bytes) -> bytes:
        """<- e, ee, se. Then: transport_keys."""
        self._check(Step.WRITE_RESPONSE)
        assert self._re is not None and self._rs is not None
        sym = self._sym
        sym.mix_hash(self._e_pub)
        sym.mix_key(dh(self._e, self._re))
        sym.mix_key(dh(self._e, self._rs))
        enc_payload = sym.encrypt_and_hash(payload)
        self._advance(Step.WRITE_RESPONSE)
        return self._e_pub + enc_payload

    def read_response(self, message: bytes) -> bytes:
        """Initiator side of the second message; returns its payload. Then: transport_keys."""
        self._check(Step.READ_RESPONSE)
        if len(message) < response_length(0):
            raise DecodeError("handshake response too short")
        sym = self._sym.copy()
        re = message[:DHLEN]
        sym.mix_hash(re)
        sym.mix_key(dh(self._e, re))
        sym.mix_key(dh(self._s, re))
        payload = sym.decrypt_and_hash(message[DHLEN:])
        self._sym, self._re = sym, re
        self._advance(Step.READ_RESPONSE)
        return payload

    def transport_keys(self) -> TransportKeys:
        """Split into this side's send and receive keys; wipes the handshake secrets."""
        if self.state is not HandshakeState.DONE:
            raise LocalProtocolError(f"handshake not finished ({self.state.value})")
        assert self._rs is not None
        k1, k2 = self._sym.split()
        send, recv = (k1, k2) if self.role is Role.INITIATOR else (k2, k1)
        keys = TransportKeys(
            send_key=send, recv_key=recv, handshake_hash=self._sym.h, remote_static=self._rs
        )
        self._e = self._s = b""
        return keys
