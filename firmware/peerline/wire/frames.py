"""Frames: what travels inside an authenticated transport packet (docs/protocol.md §6).

A decrypted payload is zero or more frames ``type (u8) | length (u16) | body``. An empty payload
is a keepalive. Unknown frame types are skipped by length, so later versions can add frames that
older phones ignore.
"""

import enum
from dataclasses import dataclass

from peerline.errors import DecodeError

from .buffer import Buffer
from .spec import MAX_DATAGRAM, RELAY_HEADER_SIZE

MESSAGE_ID_SIZE = 16
MAX_MESSAGE_BYTES = 1000
"""Largest text message body in UTF-8 bytes (fits one datagram with headers)."""
MAX_PAYLOAD = MAX_DATAGRAM - RELAY_HEADER_SIZE - 14 - 16
"""Largest plaintext in one transport packet (header 14, tag 16), leaving room for a relay's
header so that a relayed packet still fits ``MAX_DATAGRAM``."""
PATH_DATA_SIZE = 8


class FrameType(enum.IntEnum):
    PING = 0x01
    PATH_CHALLENGE = 0x02
    PATH_RESPONSE = 0x03
    MESSAGE = 0x10
    MESSAGE_ACK = 0x11
    SIGNAL = 0x12
    MEDIA = 0x20
    MEDIA_REPORT = 0x21


@dataclass(frozen=True, slots=True, kw_only=True)
class PingFrame:
    """Asks for nothing; proves liveness and keeps NAT mappings open."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PathChallengeFrame:
    """Is this path open both ways? The peer echoes ``data`` back to where this came from.

    A packet that carries only path frames is a probe: it never moves the peer's path."""

    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) != PATH_DATA_SIZE:
            raise ValueError(f"path data is {PATH_DATA_SIZE} bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class PathResponseFrame:
    """The echo of a ``PathChallengeFrame``, sent to the challenge's source address."""

    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) != PATH_DATA_SIZE:
            raise ValueError(f"path data is {PATH_DATA_SIZE} bytes")


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


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalFrame:
    """A call-control message (``peerline.wire.call``), delivered like a text message:
    acknowledged with ``MessageAckFrame`` and retransmitted until then."""

    message_id: bytes
    body: bytes

    def __post_init__(self) -> None:
        if len(self.message_id) != MESSAGE_ID_SIZE:
            raise ValueError(f"message_id must be {MESSAGE_ID_SIZE} bytes")
        if not 1 <= len(self.body) <= MAX_MESSAGE_BYTES:
            raise ValueError(f"a SIGNAL body is 1..{MAX_MESSAGE_BYTES} bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaReportFrame:
    """A call's receiver report (``peerline.wire.call.MediaReport``): never retransmitted."""

    body: bytes

    def __post_init__(self) -> None:
        if not 1 <= len(self.body) <= MAX_MESSAGE_BYTES:
            raise ValueError(f"a MEDIA_REPORT body is 1..{MAX_MESSAGE_BYTES} bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDataFrame:
    """20 ms of a call's audio: a MEDIA body (``peerline.wire.media``), opaque at this layer.
    Never acknowledged or retransmitted: a late voice packet is a useless one."""

    body: bytes

    def __post_init__(self) -> None:
        if not 0 < len(self.body) <= MAX_PAYLOAD - 3:
            raise ValueError(f"a MEDIA body is 1..{MAX_PAYLOAD - 3} bytes")


Frame = (
    PingFrame
    | PathChallengeFrame
    | PathResponseFrame
    | MessageFrame
    | MessageAckFrame
    | SignalFrame
    | MediaDataFrame
    | MediaReportFrame
)
PATH_FRAMES = (PathChallengeFrame, PathResponseFrame)


def push_frame(buf: Buffer, frame: Frame) -> None:
    if isinstance(frame, PingFrame):
        buf.push_u8(FrameType.PING)
        buf.push_vbytes16(b"")
    elif isinstance(frame, PathChallengeFrame):
        buf.push_u8(FrameType.PATH_CHALLENGE)
        buf.push_vbytes16(frame.data)
    elif isinstance(frame, PathResponseFrame):
        buf.push_u8(FrameType.PATH_RESPONSE)
        buf.push_vbytes16(frame.data)
    elif isinstance(frame, MediaDataFrame):
        buf.push_u8(FrameType.MEDIA)
        buf.push_vbytes16(frame.body)
    elif isinstance(frame, MediaReportFrame):
        buf.push_u8(FrameType.MEDIA_REPORT)
        buf.push_vbytes16(frame.body)
    elif isinstance(frame, SignalFrame):
        buf.push_u8(FrameType.SIGNAL)
        buf.push_vbytes16(frame.message_id + frame.body)
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
    if isinstance(frame, PathChallengeFrame | PathResponseFrame):
        return 3 + PATH_DATA_SIZE
    if isinstance(frame, MediaDataFrame | MediaReportFrame):
        return 3 + len(frame.body)
    if isinstance(frame, SignalFrame):
        return 3 + MESSAGE_ID_SIZE + len(frame.body)
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
        elif kind in (FrameType.PATH_CHALLENGE, FrameType.PATH_RESPONSE):
            if len(body) != PATH_DATA_SIZE:
                raise DecodeError(f"path frames carry {PATH_DATA_SIZE} bytes")
            if kind == FrameType.PATH_CHALLENGE:
                frames.append(PathChallengeFrame(data=body))
            else:
                frames.append(PathResponseFrame(data=body))
        elif kind == FrameType.MEDIA:
            if not body:
                raise DecodeError("MEDIA frame is empty")
            frames.append(MediaDataFrame(body=body))
        elif kind == FrameType.MEDIA_REPORT:
            if not 1 <= len(body) <= MAX_MESSAGE_BYTES:
                raise DecodeError("MEDIA_REPORT frame length out of range")
            frames.append(MediaReportFrame(body=body))
        elif kind == FrameType.SIGNAL:
            if not MESSAGE_ID_SIZE < len(body) <= MESSAGE_ID_SIZE + MAX_MESSAGE_BYTES:
                raise DecodeError("SIGNAL frame length out of range")
            frames.append(
                SignalFrame(message_id=body[:MESSAGE_ID_SIZE], body=body[MESSAGE_ID_SIZE:])
            )
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
