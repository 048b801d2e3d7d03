"""Frames: what travels inside an authenticated transport packet (docs/protocol.md §6).

A decrypted payload is zero or more frames ``type (u8) | length (u16) | body``. An empty payload
is a keepalive. Unknown frame types are skipped by length, so later versions can add frames that
older phones ignore.
"""

import enum
from dataclasses import dataclass

from peerline.errors import DecodeError

from .buffer import Buffer
from .spec import MAX_DATAGRAM

MESSAGE_ID_SIZE = 16
MAX_MESSAGE_BYTES = 1000
"""Largest text message body in UTF-8 bytes (fits one datagram with headers)."""
MAX_PAYLOAD = MAX_DATAGRAM - 14 - 16
"""Largest plaintext in one transport packet (header 14, tag 16)."""


class FrameType(enum.IntEnum):
    PING = 0x01
    MESSAGE = 0x10
    MESSAGE_ACK = 0x11


@dataclass(frozen=True, slots=True, kw_only=True)
class PingFrame:
    """Asks for nothing; proves liveness and keeps NAT mappings open."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageFrame:
    """A text message; the receiver answers with ``MessageAckFrame`` (also for duplicates)."""

    message_id: bytes
    text: str

    def __post_init__(self) -> None:
        if len(self.message_id) != MESSAGE_ID_SIZE:
            raise ValueError(f"message_id must be {MESSAGE_ID_SIZE} bytes")
        if len(self.text.encode("utf-8")) > MAX_MESSAGE_BYTES:
            raise ValueError(f"message text exceeds {MAX_MESSAGE_BYTES} UTF-8 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageAckFrame:
    message_id: bytes

    def __post_init__(self) -> None:
        if len(self.message_id) != MESSAGE_ID_SIZE:
            raise ValueError(f"message_id must be {MESSAGE_ID_SIZE} bytes")


Frame = PingFrame | MessageFrame | MessageAckFrame


def push_frame(buf: Buffer, frame: Frame) -> None:
    if isinstance(frame, PingFrame):
        buf.push_u8(FrameType.PING)
        buf.push_vbytes16(b"")
    elif isinstance(frame, MessageFrame):
        buf.push_u8(FrameType.MESSAGE)
        buf.push_vbytes16(frame.message_id + frame.text.encode("utf-8"))
    else:
        buf.push_u8(FrameType.MESSAGE_ACK)
        buf.push_vbytes16(frame.message_id)


def frame_size(frame: Frame) -> int:
    if isinstance(frame, MessageFrame):
        return 3 + MESSAGE_ID_SIZE + len(frame.text.encode("utf-8"))
    if isinstance(frame, MessageAckFrame):
        return 3 + MESSAGE_ID_SIZE
    return 3


def push_frames(frames: list[Frame]) -> bytes:
    buf = Buffer()
    for frame in frames:
        push_frame(buf, frame)
    return buf.getvalue()


def pull_frames(payload: bytes) -> tuple[list[Frame], int]:
    """Decode a payload into its frames; returns (frames, number of unknown frames skipped).

    Raises ``DecodeError`` on truncation or on a known frame with a bad body.
    """
    buf = Buffer(payload)
    frames: list[Frame] = []
    unknown = 0
    while buf.remaining:
        kind = buf.pull_u8()
        body = buf.pull_vbytes16(MAX_PAYLOAD)
        if kind == FrameType.PING:
            if body:
                raise DecodeError("PING frame has a body")
            frames.append(PingFrame())
        elif kind == FrameType.MESSAGE:
            if not MESSAGE_ID_SIZE <= len(body) <= MESSAGE_ID_SIZE + MAX_MESSAGE_BYTES:
                raise DecodeError("MESSAGE frame length out of range")
            try:
                text = body[MESSAGE_ID_SIZE:].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DecodeError("MESSAGE text is not UTF-8") from exc
            frames.append(MessageFrame(message_id=body[:MESSAGE_ID_SIZE], text=text))
        elif kind == FrameType.MESSAGE_ACK:
            if len(body) != MESSAGE_ID_SIZE:
                raise DecodeError("MESSAGE_ACK frame must carry a 16-byte id")
            frames.append(MessageAckFrame(message_id=body))
        else:
            unknown += 1
    return frames, unknown
