"""The identity key file: the phone's one secret, written once and never silently replaced.

Losing or overwriting it changes the phone's number and breaks every contact's pinned key, so
the writer refuses to replace an existing file and the reader refuses a file others can read.
Format (text, so an operator recognises it): ``docs/protocol.md`` §2.5.
"""

import contextlib
import os
import pathlib
import secrets
import stat
from typing import Final

from peerline.errors import InvalidKey, StoreError
from peerline.proto.identity import Identity

KEY_FILE_NAME: Final = "identity.key"
"""Name of the key file inside the data directory."""

KEY_FILE_HEADER: Final = "peerline-identity-v1"
"""First line of the file; a new format gets a new header."""

KEY_FILE_MODE: Final = 0o600
"""Owner read/write only; ``read_identity`` rejects any group or other bit."""

_MAX_SIZE: Final = 4096
_HEX: Final = frozenset("0123456789abcdef")

__all__ = ["KEY_FILE_HEADER", "KEY_FILE_MODE", "KEY_FILE_NAME", "read_identity", "write_identity"]


def write_identity(path: pathlib.Path, identity: Identity) -> None:
    """Create the key file at ``path`` with mode 0600, atomically, refusing to overwrite.

    The content goes to a fresh temp file in the same directory (O_CREAT|O_EXCL, 0600), is
    fsynced, then hard-linked to ``path``: the link fails if ``path`` exists, so an existing key
    is never replaced, and readers see either no file or a complete one. The directory is
    fsynced last so the new name survives a power cut. Raises StoreError on any failure.
    """
    path = pathlib.Path(path)
    content = _encode(identity)
    if os.path.lexists(path):
        raise _refuse_overwrite(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, KEY_FILE_MODE)
    except OSError as exc:
        raise StoreError(f"cannot create identity key file in {path.parent}: {exc}") from exc
    try:
        try:
            os.fchmod(fd, KEY_FILE_MODE)  # the umask may have removed bits; make it exact
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise _refuse_overwrite(path) from None
        _fsync_directory(path.parent)
    except StoreError:
        raise
    except OSError as exc:
        raise StoreError(f"cannot write identity key file {path}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):  # a stray temp file must not mask the real outcome
            os.unlink(tmp)


def read_identity(path: pathlib.Path) -> Identity:
    """Load the identity from the key file at ``path``.

    Raises StoreError, naming the file and the fix, if it is missing, unreadable, not a regular
    file, readable or writable by group or others, malformed, or if its public key does not
    match its seed (a damaged or tampered file).
    """
    path = pathlib.Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise StoreError(f"identity key file {path} does not exist") from None
    except OSError as exc:
        raise StoreError(f"cannot open identity key file {path}: {exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StoreError(f"identity key file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise StoreError(
                f"identity key file {path} is readable or writable by group or others "
                f"(mode {mode:04o}); run: chmod 600 {path}"
            )
        data = _read_at_most(fd, _MAX_SIZE + 1)
    except StoreError:
        raise
    except OSError as exc:
        raise StoreError(f"cannot read identity key file {path}: {exc}") from exc
    finally:
        os.close(fd)
    return _decode(path, data)


def _read_at_most(fd: int, limit: int) -> bytes:
    """Read to end of file or ``limit`` bytes, whichever comes first."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _encode(identity: Identity) -> bytes:
    """The file content: header, seed hex, public key hex, one line each, LF-terminated."""
    lines = (KEY_FILE_HEADER, identity.seed.hex(), identity.public_key.hex())
    return "".join(f"{line}\n" for line in lines).encode("ascii")


def _decode(path: pathlib.Path, data: bytes) -> Identity:
    """Parse strictly: anything but the exact format written by ``_encode`` is refused."""
    if len(data) > _MAX_SIZE:
        raise _malformed(path, "file is too large")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise _malformed(path, "file is not ASCII text") from None
    if not text.endswith("\n"):
        raise _malformed(path, "file is truncated (no final newline)")
    lines = text[:-1].split("\n")
    if lines[0] != KEY_FILE_HEADER:
        raise _malformed(path, f"first line is not {KEY_FILE_HEADER!r}")
    if len(lines) != 3:
        raise _malformed(path, f"expected 3 lines, found {len(lines)}")
    seed = _parse_hex(path, lines[1], "seed")
    public_key = _parse_hex(path, lines[2], "public key")
    try:
        identity = Identity.from_seed(seed)
    except InvalidKey as exc:
        raise _malformed(path, str(exc)) from exc
    if identity.public_key != public_key:
        raise StoreError(
            f"identity key file {path} is damaged: its public key does not match its seed"
        )
    return identity


def _parse_hex(path: pathlib.Path, line: str, what: str) -> bytes:
    """Exactly 64 lowercase hex digits, or a StoreError naming the line."""
    if len(line) != 64 or not set(line) <= _HEX:
        raise _malformed(path, f"the {what} line is not 64 lowercase hex digits")
    return bytes.fromhex(line)


def _malformed(path: pathlib.Path, detail: str) -> StoreError:
    return StoreError(f"identity key file {path} is malformed: {detail}")


def _refuse_overwrite(path: pathlib.Path) -> StoreError:
    return StoreError(
        f"refusing to overwrite existing identity key file {path}: replacing it would change "
        "this phone's number and break every contact's pinned key; move it away first"
    )


def _fsync_directory(directory: pathlib.Path) -> None:
    """Make the new directory entry durable (the file's own fsync does not cover it)."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
