"""The master secret: generated once into a private file, or given explicitly."""

from __future__ import annotations

import base64
import stat
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr

from backchannel.master_secret import MasterSecret, MasterSecretError, load_master_secret
from backchannel.settings import KeySettings


def file_settings(path: Path) -> KeySettings:
    return KeySettings(master_secret_file=str(path))


def test_generates_a_private_file_with_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "var" / "master.key"
    master = load_master_secret(file_settings(path))

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = base64.urlsafe_b64decode(path.read_bytes().strip() + b"=")
    assert len(secret) == 32
    assert len(master.key_encryption_key) == 32
    assert len(master.pepper) == 32
    assert master.key_encryption_key != master.pepper
    assert sorted(p.name for p in path.parent.iterdir()) == ["master.key"]  # no temp left


def test_second_load_reuses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    first = load_master_secret(file_settings(path))
    content = path.read_bytes()
    second = load_master_secret(file_settings(path))
    assert second == first
    assert path.read_bytes() == content


def test_different_files_give_different_keys(tmp_path: Path) -> None:
    one = load_master_secret(file_settings(tmp_path / "a.key"))
    two = load_master_secret(file_settings(tmp_path / "b.key"))
    assert one.key_encryption_key != two.key_encryption_key
    assert one.pepper != two.pepper


def test_explicit_master_secret_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    from_file = load_master_secret(file_settings(path))
    explicit = KeySettings(master_secret=SecretStr("x" * 40), master_secret_file=str(path))

    master = load_master_secret(explicit)

    assert master != from_file
    assert master == load_master_secret(explicit)  # deterministic derivation


def test_explicit_master_secret_creates_no_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    load_master_secret(KeySettings(master_secret=SecretStr("y" * 32), master_secret_file=str(path)))
    assert not path.exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_too_loose_permissions_are_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    load_master_secret(file_settings(path))
    path.chmod(mode)
    with pytest.raises(MasterSecretError, match="chmod 600"):
        load_master_secret(file_settings(path))


def test_a_short_or_garbled_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(b"c2hvcnQ\n")
    path.chmod(0o600)
    with pytest.raises(MasterSecretError, match="fewer than 32 bytes"):
        load_master_secret(file_settings(path))
    path.write_bytes(b"c2hvcnQ+" + b"A" * 40)  # "+" is not base64url
    with pytest.raises(MasterSecretError, match="base64url"):
        load_master_secret(file_settings(path))


def test_racing_loaders_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "race" / "master.key"
    results: list[MasterSecret] = []
    start = threading.Barrier(8)

    def load() -> None:
        start.wait()
        results.append(load_master_secret(file_settings(path)))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 8
    assert all(result == results[0] for result in results)
    assert sorted(p.name for p in path.parent.iterdir()) == ["master.key"]


def test_repr_does_not_reveal_the_keys(tmp_path: Path) -> None:
    master = load_master_secret(file_settings(tmp_path / "master.key"))
    assert master.key_encryption_key.hex() not in repr(master)
    assert repr(master.pepper) not in repr(master)
