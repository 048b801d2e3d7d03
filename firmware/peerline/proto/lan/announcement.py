"""The LAN announcement: a phone's number, key, port and extension claim, signed by that key.

Phones on one LAN find each other over mDNS/DNS-SD (RFC 6762, RFC 6763) with no server. What a
DNS-SD TXT record says is unauthenticated: any host on the link can answer for any name. So the
facts that matter (which key holds which extension, and where to send its datagrams) travel
inside an Ed25519 signature by the announcing key, over a domain-separated byte string, and a
receiver believes nothing else the record says. The service instance name and the SRV port are
only hints. The address is not signed (DHCP changes it and a phone may have several): a forged
address can misdirect a call, but the Noise IK handshake to the announced key then fails, so it
can deny service, not impersonate (``docs/lan.md`` §3.3).

Signed bytes (``signed_bytes``), all integers big-endian::

    b"peerline-lan/1"   14 bytes  domain separator; also the version
    number              12 bytes  ASCII digits
    public_key          32 bytes  Ed25519
    port                 2 bytes  u16, 1..65535
    ext_len              1 byte   0 (no extension), 3 or 4
    extension      ext_len bytes  ASCII digits, first digit 1-9
    flags                1 byte   bit 0 configured, bit 1 established, others 0;
                                  either bit needs an extension
    claim_seq            4 bytes  u32
    -- only when the phone is in a group (a phone in none signs exactly the bytes above) --
    group_count          1 byte   1..MAX_GROUPS
    per group, in increasing order of extension (as strings):
      ext_len            1 byte   3 or 4
      extension    ext_len bytes  ASCII digits, first digit 1-9
      mode               1 byte   0 ring all, 1 in turn, 2 page (``GroupMode``)

TXT record (``to_txt`` / ``from_txt``), RFC 6763 §6 key=value strings, every value ASCII and at
most 255 bytes::

    v=1  num=<12 digits>  pk=<64 lowercase hex>  port=<decimal>  ext=<3-4 digits, absent if none>
    cfg=<0|1>  est=<0|1>  seq=<decimal u32>  sig=<base64url, no padding, 86 chars>
    grp=<groups, absent if none: comma-separated extensions in increasing order, each
         followed by "t" (in turn) or "p" (page), nothing for ring all; e.g. "700,701t,800p">

A group extension (a hunt group or a page group, docs/lan.md §7) is held by every phone that
announces it as a member; it is never a phone's own extension.

Decoding takes what the network gave (keys and values as bytes or str, values possibly None),
is bounded (``MAX_TXT_ENTRIES``), ignores unknown keys for forward compatibility, and raises
only ``DecodeError``. It does not check the signature; ``verify_announcement`` does.
"""

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, NamedTuple

from peerline.errors import DecodeError
from peerline.proto.identity import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, Identity, verify_signature
from peerline.wire.number_text import is_extension

__all__ = [
    "ANNOUNCEMENT_DOMAIN",
    "FLAG_CONFIGURED",
    "FLAG_ESTABLISHED",
    "MAX_CLAIM_SEQ",
    "MAX_GROUPS",
    "MAX_TXT_ENTRIES",
    "SERVICE_TYPE",
    "TXT_VERSION",
    "GroupMode",
    "LanAnnouncement",
    "LanGroup",
    "canonical_groups",
    "from_txt",
    "is_extension",
    "sign_announcement",
    "to_txt",
    "verify_announcement",
]

SERVICE_TYPE: Final = "_peerline._udp.local."
"""The DNS-SD service type every phone registers and browses (RFC 6763 §7)."""

ANNOUNCEMENT_DOMAIN: Final = b"peerline-lan/1"
"""Prefix of the signed bytes: a LAN signature can never pass as a record or anything else."""

TXT_VERSION: Final = "1"
"""The ``v`` value this code writes and accepts; another value is a different format."""

MAX_CLAIM_SEQ: Final = 2**32 - 1
"""``claim_seq`` is a u32 in the signed bytes."""

FLAG_CONFIGURED: Final = 0x01
"""Flags bit: an administrator set this extension."""
FLAG_ESTABLISHED: Final = 0x02
"""Flags bit: the claim has been held for a whole probe with no rival in sight."""

MAX_GROUPS: Final = 8
"""Groups one phone may be a member of (the ``grp`` TXT value stays under 255 bytes)."""

MAX_TXT_ENTRIES: Final = 32
"""More keys than this in one TXT record is not a Peerline announcement; refuse to look."""

MAX_TXT_VALUE: Final = 255
"""A TXT string holds at most 255 bytes, key and ``=`` included (RFC 6763 §6.1)."""

_NUMBER_DIGITS: Final = 12
_DIGITS: Final = frozenset("0123456789")
_HEX: Final = frozenset("0123456789abcdef")
_B64URL: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_SIG_B64_LEN: Final = 86
"""Characters of a 64-byte value in unpadded base64url."""


def _is_number(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == _NUMBER_DIGITS
        and all(ch in _DIGITS for ch in value)
    )


class GroupMode(IntEnum):
    """How a call to a group extension reaches its members."""

    RING_ALL = 0
    "Every member rings at once; the first to answer takes the call."
    IN_TURN = 1
    "Members ring one after another, in order of their own extensions."
    PAGE = 2
    "A one-way announcement: every member answers at once and only listens."


_MODE_SUFFIX: Final = {GroupMode.RING_ALL: "", GroupMode.IN_TURN: "t", GroupMode.PAGE: "p"}


class LanGroup(NamedTuple):
    """One group a phone is a member of."""

    extension: str
    mode: GroupMode

    def __str__(self) -> str:
        return self.extension + _MODE_SUFFIX[self.mode]


def _check_groups(groups: object) -> None:
    if not isinstance(groups, tuple) or len(groups) > MAX_GROUPS:
        raise ValueError(f"groups must be a tuple of at most {MAX_GROUPS}")
    previous = ""
    for group in groups:
        if not (
            isinstance(group, LanGroup)
            and is_extension(group.extension)
            and isinstance(group.mode, GroupMode)
        ):
            raise ValueError("each group is a LanGroup of an extension and a GroupMode")
        if group.extension <= previous:
            raise ValueError("groups must be in increasing order of extension, each once")
        previous = group.extension


def canonical_groups(groups: object) -> tuple[LanGroup, ...]:
    """``groups`` sorted as the announcement carries them; ValueError on a repeated or bad one."""
    if not isinstance(groups, tuple | list):
        raise ValueError("groups must be a sequence")
    ordered = tuple(sorted(groups, key=lambda g: str(getattr(g, "extension", ""))))
    _check_groups(ordered)
    return ordered


@dataclass(frozen=True, slots=True, kw_only=True)
class LanAnnouncement:
    """What one phone says about itself on the LAN; an invalid instance cannot exist.

    Construction checks types and ranges (ValueError), not the signature: a decoded
    announcement is untrusted until ``verify_announcement`` passes.
    """

    number: str
    "The phone's 12-digit number; trusted only once its key is checked to derive to it."
    public_key: bytes
    "Ed25519 public key, 32 bytes; the identity every other field is bound to."
    port: int
    "The UDP port of the phone's shared socket (1..65535)."
    extension: str | None
    "The claimed extension (3-4 digits), or None while probing or when none is free."
    configured: bool
    "True if an administrator set the extension; a configured claim beats an automatic one."
    established: bool
    "The claim was held ``PROBE_S`` with no rival in sight; it beats a new automatic claim."
    claim_seq: int
    "Grows by one with every change of the announcement; a lower one for a key is stale."
    signature: bytes
    "Ed25519 signature over ``signed_bytes()``, 64 bytes."
    groups: tuple[LanGroup, ...] = ()
    "The hunt and page groups the phone is a member of, in increasing order of extension."

    def __post_init__(self) -> None:
        if not _is_number(self.number):
            raise ValueError("number must be 12 ASCII digits")
        if not (isinstance(self.public_key, bytes) and len(self.public_key) == PUBLIC_KEY_SIZE):
            raise ValueError(f"public_key must be {PUBLIC_KEY_SIZE} bytes")
        if not (type(self.port) is int and 1 <= self.port <= 0xFFFF):
            raise ValueError("port must be an int in 1..65535")
        if self.extension is not None and not is_extension(self.extension):
            raise ValueError("extension must be 3 or 4 digits, not starting with 0")
        if type(self.configured) is not bool:
            raise ValueError("configured must be a bool")
        if type(self.established) is not bool:
            raise ValueError("established must be a bool")
        if (self.configured or self.established) and self.extension is None:
            raise ValueError("a configured or established claim needs an extension")
        if not (type(self.claim_seq) is int and 0 <= self.claim_seq <= MAX_CLAIM_SEQ):
            raise ValueError("claim_seq must be an int in 0..2**32-1")
        if not (isinstance(self.signature, bytes) and len(self.signature) == SIGNATURE_SIZE):
            raise ValueError(f"signature must be {SIGNATURE_SIZE} bytes")
        _check_groups(self.groups)
        if self.extension is not None and any(g.extension == self.extension for g in self.groups):
            raise ValueError("a phone's extension cannot also be one of its groups")

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers (layout in the module docstring)."""
        return _signed_bytes(
            number=self.number,
            public_key=self.public_key,
            port=self.port,
            extension=self.extension,
            configured=self.configured,
            established=self.established,
            claim_seq=self.claim_seq,
            groups=self.groups,
        )

    def __repr__(self) -> str:
        return (
            f"LanAnnouncement(number={self.number!r}, key={self.public_key.hex()[:16]}, "
            f"port={self.port}, extension={self.extension!r}, configured={self.configured}, "
            f"established={self.established}, claim_seq={self.claim_seq}, "
            f"groups={','.join(map(str, self.groups))!r})"
        )


def _signed_bytes(
    *,
    number: str,
    public_key: bytes,
    port: int,
    extension: str | None,
    configured: bool,
    established: bool,
    claim_seq: int,
    groups: tuple[LanGroup, ...],
) -> bytes:
    ext = (extension or "").encode("ascii")
    flags = (FLAG_CONFIGURED if configured else 0) | (FLAG_ESTABLISHED if established else 0)
    return b"".join(
        (
            ANNOUNCEMENT_DOMAIN,
            number.encode("ascii"),
            public_key,
            port.to_bytes(2, "big"),
            len(ext).to_bytes(1, "big"),
            ext,
            flags.to_bytes(1, "big"),
            claim_seq.to_bytes(4, "big"),
            _group_bytes(groups),
        )
    )


def _group_bytes(groups: tuple[LanGroup, ...]) -> bytes:
    if not groups:
        return b""
    parts = [len(groups).to_bytes(1, "big")]
    for group in groups:
        ext = group.extension.encode("ascii")
        parts += [len(ext).to_bytes(1, "big"), ext, int(group.mode).to_bytes(1, "big")]
    return b"".join(parts)


def sign_announcement(
    identity: Identity,
    *,
    number: str,
    port: int,
    extension: str | None,
    configured: bool,
    established: bool,
    claim_seq: int,
    groups: tuple[LanGroup, ...] = (),
) -> LanAnnouncement:
    """Make this phone's signed announcement. Raises ValueError on out-of-range fields.

    Then: ``to_txt`` for the zeroconf registration.
    """
    unsigned = LanAnnouncement(
        number=number,
        public_key=identity.public_key,
        port=port,
        extension=extension,
        configured=configured,
        established=established,
        claim_seq=claim_seq,
        signature=bytes(SIGNATURE_SIZE),
        groups=groups,
    )
    return LanAnnouncement(
        number=number,
        public_key=identity.public_key,
        port=port,
        extension=extension,
        configured=configured,
        established=established,
        claim_seq=claim_seq,
        signature=identity.sign(unsigned.signed_bytes()),
        groups=groups,
    )


def verify_announcement(announcement: LanAnnouncement) -> bool:
    """Whether the announcement is signed by the key it carries. Never raises.

    Says nothing about the number: whether the key derives to it is the slow argon2id check the
    caller makes through a ``NumberBinding`` (``peerline.proto.lan.extensions``).
    """
    return verify_signature(
        announcement.public_key, announcement.signed_bytes(), announcement.signature
    )


def to_txt(announcement: LanAnnouncement) -> dict[str, bytes]:
    """The TXT properties for zeroconf's ``ServiceInfo(properties=...)``."""
    a = announcement
    txt = {
        "v": TXT_VERSION.encode(),
        "num": a.number.encode(),
        "pk": a.public_key.hex().encode(),
        "port": str(a.port).encode(),
        "cfg": b"1" if a.configured else b"0",
        "est": b"1" if a.established else b"0",
        "seq": str(a.claim_seq).encode(),
        "sig": base64.urlsafe_b64encode(a.signature).rstrip(b"="),
    }
    if a.extension is not None:
        txt["ext"] = a.extension.encode()
    if a.groups:
        txt["grp"] = ",".join(map(str, a.groups)).encode()
    return txt


def from_txt(txt: object) -> LanAnnouncement:
    """Parse TXT properties as the network delivered them. Raises only DecodeError.

    ``txt`` is a mapping (zeroconf's ``ServiceInfo.properties``: bytes keys, bytes or None
    values; str keys and values are accepted too); it is typed ``object`` because it is remote
    input, checked here.

    Keys are matched case-insensitively (RFC 6763 §6.4); two keys that differ only in case are
    ambiguous and refused. Values must be canonical (no leading zeros, lowercase hex, unpadded
    base64url), so one announcement has exactly one encoding.
    """
    if not isinstance(txt, Mapping):
        raise DecodeError("TXT properties must be a mapping")
    try:
        size = len(txt)
    except Exception as exc:  # a hostile Mapping implementation
        raise DecodeError("TXT properties have no length") from exc
    if size > MAX_TXT_ENTRIES:
        raise DecodeError(f"more than {MAX_TXT_ENTRIES} TXT entries")
    fields: dict[str, str | None] = {}
    try:
        items = list(txt.items())
    except Exception as exc:
        raise DecodeError("TXT properties cannot be read") from exc
    for raw_key, raw_value in items[:MAX_TXT_ENTRIES]:
        key = _ascii(raw_key, "key").lower()
        if not key or "=" in key:
            raise DecodeError("empty TXT key or '=' in a key")
        value = None if raw_value is None else _ascii(raw_value, f"value of {key!r}")
        if len(key) + 1 + (len(value) if value is not None else 0) > MAX_TXT_VALUE:
            raise DecodeError(f"TXT entry {key!r} longer than {MAX_TXT_VALUE} bytes")
        if key in fields:
            raise DecodeError(f"TXT key {key!r} appears twice")
        fields[key] = value

    if _required(fields, "v") != TXT_VERSION:
        raise DecodeError("unsupported announcement version")
    number = _required(fields, "num")
    if not _is_number(number):
        raise DecodeError("num is not 12 digits")
    pk_hex = _required(fields, "pk")
    if len(pk_hex) != 2 * PUBLIC_KEY_SIZE or not set(pk_hex) <= _HEX:
        raise DecodeError("pk is not 64 lowercase hex digits")
    port = _decimal(_required(fields, "port"), "port", 0xFFFF)
    cfg = _required(fields, "cfg")
    est = _required(fields, "est")
    if cfg not in ("0", "1") or est not in ("0", "1"):
        raise DecodeError("cfg or est is not 0 or 1")
    seq = _decimal(_required(fields, "seq"), "seq", MAX_CLAIM_SEQ)
    extension: str | None = None
    if "ext" in fields:
        extension = fields["ext"]
        if not is_extension(extension):
            raise DecodeError("ext is not 3-4 digits starting with 1-9")
    groups = _groups(fields["grp"]) if "grp" in fields else ()
    sig_text = _required(fields, "sig")
    if len(sig_text) != _SIG_B64_LEN or not set(sig_text) <= _B64URL:
        raise DecodeError("sig is not 86 base64url characters")
    try:
        signature = base64.urlsafe_b64decode(sig_text + "==")
    except (binascii.Error, ValueError) as exc:
        raise DecodeError("sig is not base64url") from exc
    if base64.urlsafe_b64encode(signature).rstrip(b"=").decode() != sig_text:
        raise DecodeError("sig is not canonical base64url")
    try:
        return LanAnnouncement(
            number=number,
            public_key=bytes.fromhex(pk_hex),
            port=port,
            extension=extension,
            configured=cfg == "1",
            established=est == "1",
            claim_seq=seq,
            signature=signature,
            groups=groups,
        )
    except ValueError as exc:  # e.g. port 0, or est=1 without ext
        raise DecodeError(f"invalid announcement: {exc}") from exc


def _groups(text: str | None) -> tuple[LanGroup, ...]:
    """``grp``: canonical (increasing, each once, at most ``MAX_GROUPS``), or DecodeError."""
    if not text:
        raise DecodeError("grp is empty")
    entries = text.split(",")
    if len(entries) > MAX_GROUPS:
        raise DecodeError(f"grp lists more than {MAX_GROUPS} groups")
    groups = []
    suffixes = {suffix: mode for mode, suffix in _MODE_SUFFIX.items() if suffix}
    for entry in entries:
        mode = suffixes.get(entry[-1:], GroupMode.RING_ALL)
        extension = entry if mode is GroupMode.RING_ALL else entry[:-1]
        if not is_extension(extension):
            raise DecodeError("a grp entry is not an extension (3-4 digits, then t or p)")
        groups.append(LanGroup(extension, mode))
    try:
        _check_groups(tuple(groups))
    except ValueError as exc:
        raise DecodeError(f"grp: {exc}") from exc
    return tuple(groups)


def _ascii(value: object, what: str) -> str:
    if isinstance(value, bytes | bytearray):
        if len(value) > MAX_TXT_VALUE:
            raise DecodeError(f"TXT {what} longer than {MAX_TXT_VALUE} bytes")
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"TXT {what} is not ASCII") from exc
    if isinstance(value, str):
        if len(value) > MAX_TXT_VALUE or not value.isascii():
            raise DecodeError(f"TXT {what} is not short ASCII")
        return value
    raise DecodeError(f"TXT {what} is neither bytes nor str")


def _required(fields: dict[str, str | None], key: str) -> str:
    value = fields.get(key)
    if value is None:
        raise DecodeError(f"TXT key {key!r} missing or without a value")
    return value


def _decimal(text: str, what: str, maximum: int) -> int:
    """A canonical decimal: digits only, no sign, no leading zero, at most ``maximum``."""
    if not text or len(text) > 10 or not set(text) <= _DIGITS or (text[0] == "0" and text != "0"):
        raise DecodeError(f"{what} is not a canonical decimal")
    value = int(text)
    if value > maximum:
        raise DecodeError(f"{what} exceeds {maximum}")
    return value
