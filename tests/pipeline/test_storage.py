"""The two backends behind one interface: a folder, and a bucket (moto)."""

from __future__ import annotations

import pytest

from pipeline.storage import LocalStorage, ObjectMissing, S3Storage, StorageError, open_location
from tests.pipeline.conftest import BUCKET


@pytest.fixture
def folder(tmp_path):
    for name in ("b.jpg", "a/c.png", "a/.hidden", ".git/config", "out/results/x.json"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"123")
    return LocalStorage(tmp_path, exclude=tmp_path / "out")


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path)
    return S3Storage(BUCKET, client=request.getfixturevalue("s3"))


def test_a_folder_lists_its_files_but_hidden_ones_and_the_excluded(folder):
    assert list(folder.iter_keys()) == ["a/c.png", "b.jpg"]
    assert list(folder.iter_keys("a/")) == ["a/c.png"]
    assert list(folder.iter_keys("nothing/")) == []


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a/../../x", "", "a//b", "./a"])
def test_a_key_never_leaves_the_folder(folder, key):
    with pytest.raises(StorageError):
        folder.path(key)


def test_both_backends_keep_json_and_bytes_alike(storage):
    assert storage.read_json("results/a.jpg.json") is None
    assert storage.info("inbox/a.jpg") is None
    with pytest.raises(ObjectMissing):
        storage.read("inbox/a.jpg", 100)
    storage.delete("results/a.jpg.json")  # absent: not an error

    storage.write_json("results/a.jpg.json", {"name": "a.jpg", "label": "café"})
    assert storage.read_json("results/a.jpg.json") == {"name": "a.jpg", "label": "café"}
    assert list(storage.iter_keys("results/")) == ["results/a.jpg.json"]
    size = storage.info("results/a.jpg.json").size
    blob = storage.read("results/a.jpg.json", size)
    assert blob.size == size
    assert b"caf\xc3\xa9" in blob.data
    too_long = storage.read("results/a.jpg.json", size - 1)
    assert (too_long.data, too_long.size, too_long.etag) == (None, size, blob.etag)
    storage.delete("results/a.jpg.json")
    assert list(storage.iter_keys("results/")) == []


def test_an_etag_changes_with_the_bytes(storage, tmp_path):
    storage.write_json("a.json", {"n": 1})
    first = storage.info("a.json").etag
    storage.write_json("a.json", {"n": 22})
    assert storage.info("a.json").etag != first


def test_a_json_file_that_is_not_an_object_reads_as_absent(tmp_path):
    (tmp_path / "x.json").write_text("[1, 2")
    (tmp_path / "y.json").write_text("[1, 2]")
    storage = LocalStorage(tmp_path)
    assert storage.read_json("x.json") is None
    assert storage.read_json("y.json") is None


def test_writes_are_whole_and_leave_nothing_behind(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.write_json("deep/er/a.json", {"a": 1})
    assert sorted(p.name for p in (tmp_path / "deep" / "er").iterdir()) == ["a.json"]


def test_a_location_names_its_backend(tmp_path):
    assert isinstance(open_location(str(tmp_path)), LocalStorage)
    s3 = open_location(f"s3://{BUCKET}")
    assert isinstance(s3, S3Storage)
    assert s3.describe() == f"s3://{BUCKET}"
