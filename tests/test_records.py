"""Atomic writes: whole files or none, with the mode a plain open() gives."""

import os
import stat

import pytest

from kerasgrid import records


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_get_the_mode_open_gives_under_the_umask(tmp_path, umask):
    with open(tmp_path / "plain.txt", "w") as plain:
        plain.write("x")
    records.write_text(tmp_path / "a" / "text.txt", "hello")
    records.write_json(tmp_path / "a" / "data.json", {"a": 1})
    records.write_bytes(tmp_path / "a" / "image.png", b"\x89PNG")
    records.copy_file(tmp_path / "a" / "image.png", tmp_path / "b" / "copy.png")
    expected = 0o666 & ~umask
    assert mode(tmp_path / "plain.txt") == expected
    for path in ("a/text.txt", "a/data.json", "a/image.png", "b/copy.png"):
        assert mode(tmp_path / path) == expected, path
    assert mode(tmp_path / "a") == mode(tmp_path / "b") == 0o777 & ~umask
    assert sorted(os.listdir(tmp_path / "a")) == ["data.json", "image.png", "text.txt"]  # no temporary left


def test_a_rewrite_replaces_the_whole_file_and_a_failed_one_leaves_the_old(tmp_path):
    path = tmp_path / "metrics.json"
    records.write_json(path, {"status": "ok"})
    records.write_json(path, {"status": "failed"})
    assert records.read_json(path) == {"status": "failed"}
    with pytest.raises(ValueError):
        records.write_json(path, {"value": float("nan")})  # refused before anything is written
    with pytest.raises(FileNotFoundError):
        records.copy_file(tmp_path / "missing", path)
    assert records.read_json(path) == {"status": "failed"}
    assert os.listdir(tmp_path) == ["metrics.json"]
