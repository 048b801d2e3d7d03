"""Bounded byte reader and writer: every parser in Peerline reads through ``Buffer``.

A read past the end raises ``DecodeError``; nothing allocates more than the datagram holds.
Integers are big-endian (network order) unless a name says otherwise.
"""

import struct

from peerline.errors import DecodeError

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Buffer:
    """Read ``data`` front to back; or, with ``data=None``, build bytes with ``push_*``."""

    __slots__ = ("_data", "_pos", "_out")

    def __init__(self, data: bytes | None = None) -> None:
        self._data = memoryview(data if data is not None else b"")
        self._pos = 0
        self._out = bytearray()

    # -- reading -------------------------------------------------------------------------------
    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def pull_bytes(self, n: int) -> bytes:
        if n < 0 or n > self.remaining:
            raise DecodeError(f"need {n} bytes, {self.remaining} left")
        start = self._pos
        self._pos += n
        return bytes(self._data[start : self._pos])

    def pull_rest(self) -> bytes:
        return self.pull_bytes(self.remaining)

    def pull_u8(self) -> int:
        if self.remaining < 1:
            raise DecodeError("need 1 byte, 0 left")
        value = self._data[self._pos]
        self._pos += 1
        return value

    def pull_u16(self) -> int:
        return int(_U16.unpack(self.pull_bytes(2))[0])

    def pull_u32(self) -> int:
        return int(_U32.unpack(self.pull_bytes(4))[0])

    def pull_u64(self) -> int:
        return int(_U64.unpack(self.pull_bytes(8))[0])

    def pull_vbytes16(self, max_len: int) -> bytes:
        """A 16-bit length, then that many bytes; the length may not exceed ``max_len``."""
        n = self.pull_u16()
        if n > max_len:
            raise DecodeError(f"field of {n} bytes exceeds limit {max_len}")
        return self.pull_bytes(n)

    def expect_end(self) -> None:
        """Datagrams are exact: trailing bytes are an error."""
        if self.remaining:
            raise DecodeError(f"{self.remaining} trailing bytes")

    # -- writing -------------------------------------------------------------------------------
    def push_bytes(self, b: bytes) -> None:
        self._out += b

    def push_u8(self, v: int) -> None:
        self._out.append(v)

    def push_u16(self, v: int) -> None:
        self._out += _U16.pack(v)

    def push_u32(self, v: int) -> None:
        self._out += _U32.pack(v)

    def push_u64(self, v: int) -> None:
        self._out += _U64.pack(v)

    def push_vbytes16(self, b: bytes) -> None:
        self.push_u16(len(b))
        self._out += b

    def getvalue(self) -> bytes:
        return bytes(self._out)
