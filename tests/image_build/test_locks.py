"""Lock files and the apt sources the build takes its registry from."""

from pathlib import Path

import pytest

from imagebuild.host import find_mirrors
from imagebuild.locks import (
    LockError,
    diff_installed,
    dump_debian_lock,
    load_debian_lock,
    load_selections,
    parse_dpkg_query,
)

HERE = Path(__file__).resolve().parents[2] / "image-build"


def test_dpkg_query_and_the_lock_round_trip(tmp_path: Path) -> None:
    listing = "libc6:arm64 2.41-12\nsystemd 257.9-1~deb13u1\ng++ 4:14.2.0-1\n\n"
    installed = parse_dpkg_query(listing)
    assert installed == {"libc6": "2.41-12", "systemd": "257.9-1~deb13u1", "g++": "4:14.2.0-1"}
    path = tmp_path / "debian.lock"
    path.write_text(dump_debian_lock("trixie", "arm64", {"image": installed, "builder": {}}))
    assert load_debian_lock(path) == ("trixie", {"image": installed, "builder": {}})


@pytest.mark.parametrize("line", ["Bad 1.0", "x 1.0; rm -rf", "libc6 ", "ok 1.0 extra words"])
def test_dpkg_query_refuses_odd_lines(line: str) -> None:
    with pytest.raises(LockError):
        parse_dpkg_query(line)


def test_diff_names_every_difference() -> None:
    locked = {"a": "1", "b": "2", "c": "3"}
    installed = {"a": "1", "b": "2.1", "d": "4"}
    assert diff_installed(locked, installed) == [
        "b: locked 2, installed 2.1",
        "c 3: in the lock but not installed",
        "d 4: installed but not in the lock",
    ]
    assert diff_installed(locked, dict(locked)) == []


def test_the_committed_locks_cover_the_selections() -> None:
    selections = load_selections(HERE / "packages.toml")
    suite, sets = load_debian_lock(HERE / "debian.lock")
    assert suite == selections.suite == "trixie"
    for name, wanted in selections.sets.items():
        assert set(wanted) <= set(sets[name]), name
    for kind in ("wheels", "sdists"):
        lines = [
            line
            for line in (HERE / f"python-{kind}.lock").read_text().splitlines()
            if line and not line.startswith("#")
        ]
        assert lines and all("==" in line and "--hash=sha256:" in line for line in lines)


def test_mirrors_come_from_either_apt_format(tmp_path: Path) -> None:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    m = find_mirrors({}, apt)
    assert (m.main, m.security) == (
        "http://mirror.example/debian",
        "http://mirror.example/debian-security",
    )
    assert m.sources("trixie", ["main", "non-free-firmware"])[2] == (
        "deb http://mirror.example/debian-security trixie-security main non-free-firmware"
    )
    (apt / "sources.list.d" / "debian.sources").unlink()
    (apt / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://other.example/debian bookworm main\n"
    )
    m = find_mirrors({}, apt)
    assert (m.main, m.security) == (
        "http://other.example/debian",
        "http://other.example/debian-security",
    )
    override = {
        "PEERLINE_DEBIAN_MIRROR": "http://a.example/d",
        "PEERLINE_DEBIAN_SECURITY": "http://a.example/s",
    }
    assert find_mirrors(override, apt).main == "http://a.example/d"
    (apt / "sources.list").write_text("")
    with pytest.raises(SystemExit):
        find_mirrors({}, apt)
