"""The identity key file: 0600, never overwritten, read strictly (protocol.md §2.5)."""

import os
import pathlib
import stat
from collections.abc import Iterator

import pytest

from peerline.errors import StoreError
from peerline.proto.identity import Identity
from peerline.store.keyfile import KEY_FILE_NAME, read_identity, write_identity

SEED = bytes(range(32))


@pytest.fixture
def identity() -> Identity:
    return Identity.from_seed(SEED)


@pytest.fixture
def key_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / KEY_FILE_NAME


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask whatever a test sets it to."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def written(key_path: pathlib.Path, identity: Identity) -> bytes:
    write_identity(key_path, identity)
    return key_path.read_bytes()


def test_key_file_name_is_identity_key() -> None:
    assert KEY_FILE_NAME == "identity.key"


def test_write_then_read_round_trips(key_path: pathlib.Path, identity: Identity) -> None:
    write_identity(key_path, identity)
    loaded = read_identity(key_path)
    assert loaded == identity
    assert loaded.public_key == identity.public_key


def test_key_file_is_three_lines_header_seed_hex_public_key_hex(
    key_path: pathlib.Path, identity: Identity
) -> None:
    expected = f"peerline-identity-v1\n{SEED.hex()}\n{identity.public_key.hex()}\n".encode()
    assert written(key_path, identity) == expected


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077, 0o277])
def test_key_file_is_created_with_mode_0600_whatever_the_umask(
    key_path: pathlib.Path, identity: Identity, umask: None, mask: int
) -> None:
    os.umask(mask)
    write_identity(key_path, identity)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_write_refuses_to_overwrite_an_existing_key_file(
    key_path: pathlib.Path, identity: Identity
) -> None:
    before = written(key_path, identity)
    with pytest.raises(StoreError, match="refusing to overwrite"):
        write_identity(key_path, Identity.from_seed(bytes(32)))
    assert key_path.read_bytes() == before


def test_write_refuses_to_replace_any_existing_file_or_symlink(
    tmp_path: pathlib.Path, identity: Identity
) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"not a key")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    for path in (plain, dangling):
        with pytest.raises(StoreError, match="refusing to overwrite"):
            write_identity(path, identity)
    assert plain.read_bytes() == b"not a key"
    assert not (tmp_path / "nowhere").exists()


def test_write_leaves_no_temp_file_behind(tmp_path: pathlib.Path, identity: Identity) -> None:
    key_path = tmp_path / KEY_FILE_NAME
    write_identity(key_path, identity)
    with pytest.raises(StoreError):
        write_identity(key_path, identity)
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEY_FILE_NAME]


def test_write_into_a_missing_directory_raises_store_error(
    tmp_path: pathlib.Path, identity: Identity
) -> None:
    with pytest.raises(StoreError, match="cannot create"):
        write_identity(tmp_path / "missing" / KEY_FILE_NAME, identity)


def test_read_of_a_missing_file_says_it_does_not_exist(key_path: pathlib.Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        read_identity(key_path)


def test_read_of_a_directory_raises_store_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(StoreError):
        read_identity(tmp_path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o660, 0o644, 0o610])
def test_read_rejects_a_file_group_or_others_can_access_and_says_chmod_600(
    key_path: pathlib.Path, identity: Identity, mode: int
) -> None:
    write_identity(key_path, identity)
    key_path.chmod(mode)
    with pytest.raises(StoreError, match=f"chmod 600 {key_path}"):
        read_identity(key_path)


def test_read_accepts_an_owner_read_only_file(key_path: pathlib.Path, identity: Identity) -> None:
    write_identity(key_path, identity)
    key_path.chmod(0o400)
    assert read_identity(key_path) == identity


def test_read_rejects_a_public_key_that_does_not_match_the_seed(
    key_path: pathlib.Path, identity: Identity
) -> None:
    other = Identity.from_seed(bytes(32))
    key_path.write_bytes(
        f"peerline-identity-v1\n{identity.seed.hex()}\n{other.public_key.hex()}\n".encode()
    )
    key_path.chmod(0o600)
    with pytest.raises(StoreError, match="does not match its seed"):
        read_identity(key_path)


@pytest.mark.parametrize("index", [21, 40, 84, 86, 120, 149])
def test_read_rejects_a_file_with_one_changed_hex_digit(
    key_path: pathlib.Path, identity: Identity, index: int
) -> None:
    content = bytearray(written(key_path, identity))
    assert chr(content[index]) in "0123456789abcdef"
    content[index] = ord("0") if content[index] != ord("0") else ord("1")
    key_path.write_bytes(bytes(content))
    with pytest.raises(StoreError):
        read_identity(key_path)


def test_read_rejects_every_truncation(key_path: pathlib.Path, identity: Identity) -> None:
    content = written(key_path, identity)
    for length in range(len(content)):
        key_path.write_bytes(content[:length])
        with pytest.raises(StoreError):
            read_identity(key_path)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c + b"\n",
        lambda c: c + b"extra\n",
        lambda c: c.replace(b"\n", b"\r\n"),
        lambda c: c.upper(),
        lambda c: c.replace(b"peerline-identity-v1", b"peerline-identity-v2"),
        lambda c: c.replace(b"peerline-identity-v1\n", b""),
        lambda c: b"\xef\xbb\xbf" + c,
        lambda c: c[:-1] + b" \n",
        lambda c: c + b"\x00" * 5000,
    ],
    ids=[
        "blank-line",
        "extra-line",
        "crlf",
        "uppercase",
        "other-version",
        "no-header",
        "utf8-bom",
        "trailing-space",
        "oversize",
    ],
)
def test_read_rejects_anything_but_the_exact_format(
    key_path: pathlib.Path, identity: Identity, mangle: object
) -> None:
    content = written(key_path, identity)
    key_path.write_bytes(mangle(content))  # type: ignore[operator]
    with pytest.raises(StoreError, match="malformed"):
        read_identity(key_path)


def test_store_error_is_an_os_error_so_callers_can_catch_either(key_path: pathlib.Path) -> None:
    with pytest.raises(OSError):
        read_identity(key_path)
