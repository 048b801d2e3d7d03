"""Voice media: the body of a MEDIA frame (frame type 0x20, docs/protocol.md §6; design §8).

One MEDIA frame carries one 20 ms Opus packet (the *primary* frame) and up to
``MAX_REDUNDANT`` older packets resent for loss recovery (RFC 2198-style redundancy). It rides
inside the encrypted session payload as ``type (u8) | length (u16) | body``; this module encodes
and decodes only the body. Integers are big-endian::

    offset  size  field
    0       1     flags       bit 0 MARKER: first packet of a talkspurt
                              bit 1 DTX: a silence / comfort-noise update
                              bits 2-7: zero (anything else is rejected)
    1       1     codec       1 = Opus (the only value defined; others are rejected)
    2       2     seq         packet sequence number, wraps at 2**16
    4       4     timestamp   media clock of the primary frame in 48 kHz units (Opus' clock),
                              wraps at 2**32
    8       1     redundant   R, the number of redundant frames, 0..MAX_REDUNDANT
    9       ...   R times:    age (u8)     packets before ``seq`` this frame was primary,
                                           1..255, strictly increasing along the list
                              length (u16) 1..MAX_OPUS_FRAME
                              data         ``length`` bytes of Opus
    ...     ...   primary     the rest of the body, 0..MAX_OPUS_FRAME bytes of Opus;
                              empty only when DTX is set

A redundant frame's timestamp is not sent: the receiver derives it from ``age`` and its own
packet duration. The whole body may not exceed ``MAX_MEDIA_BODY`` (the session payload less the
3-byte frame header), so even one ``MAX_OPUS_FRAME`` primary never fits: senders pick bitrates far
below that, and drop redundancy first when a packet would not fit (``push_media`` raises
``ValueError`` then). ``pull_media`` accepts exactly what ``push_media`` can produce.
"""

import enum
import itertools
from dataclasses import dataclass

from peerline.errors import DecodeError

from .buffer import Buffer
from .frames import MAX_PAYLOAD

MAX_OPUS_FRAME = 1275
"""Largest Opus packet (RFC 6716 §3.2.1): the bound on every frame's length."""
MAX_REDUNDANT = 3
"""Most redundant (older) frames one MEDIA frame carries."""
MAX_AGE = 255
MAX_MEDIA_BODY = MAX_PAYLOAD - 3
"""Largest MEDIA frame body: one session payload less the frame's type and length."""
MEDIA_HEADER_SIZE = 9
"""flags, codec, seq, timestamp and the redundant count."""
REDUNDANT_HEADER_SIZE = 3
"""age and length in front of each redundant frame."""
OPUS_CLOCK_RATE = 48_000
"""Units of ``MediaFrame.timestamp`` per second."""

FLAG_MARKER = 0x01
FLAG_DTX = 0x02
_FLAGS_KNOWN = FLAG_MARKER | FLAG_DTX

_SEQ_MOD = 1 << 16
_TS_MOD = 1 << 32


class MediaCodec(enum.IntEnum):
    OPUS = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class RedundantFrame:
    """An older Opus packet resent for loss recovery.

    ``age`` is how many packets before the carrying frame's ``seq`` this one was primary (1..255).
    """

    age: int
    data: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.age <= MAX_AGE:
            raise ValueError(f"redundant age must be 1..{MAX_AGE}")
        if not 1 <= len(self.data) <= MAX_OPUS_FRAME:
            raise ValueError(f"redundant frame must be 1..{MAX_OPUS_FRAME} bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaFrame:
    """One voice packet: a primary Opus frame plus up to ``MAX_REDUNDANT`` older ones.

    ``seq`` (u16) and ``timestamp`` (u32, 48 kHz units) wrap; compare them with
    ``seq_distance``/``ts_distance``. ``marker`` flags the first packet of a talkspurt, ``dtx`` a
    silence update; only a DTX frame may have an empty ``payload``. ``redundant`` ages strictly
    increase (newest first).
    """

    seq: int
    timestamp: int
    payload: bytes
    marker: bool = False
    dtx: bool = False
    redundant: tuple[RedundantFrame, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.seq < _SEQ_MOD:
            raise ValueError("seq must fit 16 bits")
        if not 0 <= self.timestamp < _TS_MOD:
            raise ValueError("timestamp must fit 32 bits")
        if len(self.payload) > MAX_OPUS_FRAME:
            raise ValueError(f"payload exceeds {MAX_OPUS_FRAME} bytes")
        if not self.payload and not self.dtx:
            raise ValueError("an empty payload is allowed only with dtx")
        if len(self.redundant) > MAX_REDUNDANT:
            raise ValueError(f"at most {MAX_REDUNDANT} redundant frames")
        ages = [r.age for r in self.redundant]
        if any(a >= b for a, b in itertools.pairwise(ages)):
            raise ValueError("redundant ages must strictly increase")


def media_size(frame: MediaFrame) -> int:
    """Length in bytes of ``push_media(frame)`` (computed even when it exceeds the limit)."""
    return (
        MEDIA_HEADER_SIZE
        + sum(REDUNDANT_HEADER_SIZE + len(r.data) for r in frame.redundant)
        + len(frame.payload)
    )


def push_media(frame: MediaFrame) -> bytes:
    """Encode a MEDIA frame body.

    Raises ``ValueError`` if it exceeds ``MAX_MEDIA_BODY``.
    Then: drop redundant frames (oldest first) and try again, or send without them.
    """
    size = media_size(frame)
    if size > MAX_MEDIA_BODY:
        raise ValueError(f"MEDIA body of {size} bytes exceeds {MAX_MEDIA_BODY}")
    buf = Buffer()
    buf.push_u8((FLAG_MARKER if frame.marker else 0) | (FLAG_DTX if frame.dtx else 0))
    buf.push_u8(MediaCodec.OPUS)
    buf.push_u16(frame.seq)
    buf.push_u32(frame.timestamp)
    buf.push_u8(len(frame.redundant))
    for r in frame.redundant:
        buf.push_u8(r.age)
        buf.push_vbytes16(r.data)
    buf.push_bytes(frame.payload)
    return buf.getvalue()


def pull_media(body: bytes) -> MediaFrame:
    """Decode a MEDIA frame body; raises ``DecodeError`` (and nothing else) if it is malformed."""
    if len(body) > MAX_MEDIA_BODY:
        raise DecodeError(f"MEDIA body of {len(body)} bytes exceeds {MAX_MEDIA_BODY}")
    buf = Buffer(body)
    flags = buf.pull_u8()
    if flags & ~_FLAGS_KNOWN:
        raise DecodeError(f"MEDIA flags 0x{flags:02x} set reserved bits")
    codec = buf.pull_u8()
    if codec != MediaCodec.OPUS:
        raise DecodeError(f"MEDIA codec {codec} is not defined")
    seq = buf.pull_u16()
    timestamp = buf.pull_u32()
    count = buf.pull_u8()
    if count > MAX_REDUNDANT:
        raise DecodeError(f"MEDIA carries {count} redundant frames, at most {MAX_REDUNDANT}")
    redundant: list[RedundantFrame] = []
    for _ in range(count):
        age = buf.pull_u8()
        if age == 0:
            raise DecodeError("redundant age 0")
        if redundant and age <= redundant[-1].age:
            raise DecodeError("redundant ages do not strictly increase")
        data = buf.pull_vbytes16(MAX_OPUS_FRAME)
        if not data:
            raise DecodeError("empty redundant frame")
        redundant.append(RedundantFrame(age=age, data=data))
    payload = buf.pull_rest()
    if len(payload) > MAX_OPUS_FRAME:  # unreachable while MAX_MEDIA_BODY < MAX_OPUS_FRAME
        raise DecodeError(f"primary frame exceeds {MAX_OPUS_FRAME} bytes")
    dtx = bool(flags & FLAG_DTX)
    if not payload and not dtx:
        raise DecodeError("empty primary frame without DTX")
    return MediaFrame(
        seq=seq,
        timestamp=timestamp,
        payload=payload,
        marker=bool(flags & FLAG_MARKER),
        dtx=dtx,
        redundant=tuple(redundant),
    )


def seq_distance(a: int, b: int) -> int:
    """``b - a`` on the 16-bit circle, in -32768..32767: positive when ``b`` is newer.

    Antisymmetric except at exactly half the circle, where both directions give -32768.
    """
    return ((b - a + (_SEQ_MOD >> 1)) % _SEQ_MOD) - (_SEQ_MOD >> 1)


def ts_distance(a: int, b: int) -> int:
    """``b - a`` on the 32-bit timestamp circle, in -2**31..2**31-1 (48 kHz units)."""
    return ((b - a + (_TS_MOD >> 1)) % _TS_MOD) - (_TS_MOD >> 1)
