"""Downloads (checksums, atomic rename, locking, offline errors), verify(), and manifests."""
from __future__ import annotations

import hashlib
import json
import threading
import urllib.error
from pathlib import Path

import pytest
from conftest import run_in_threads

from graphkit.datasets import available, verify
from graphkit.datasets._manifest import FileSpec, Manifest, canonical_name, load_manifest, manifest_names
from graphkit.datasets.download import (
    download_file,
    ensure_files,
    file_checksum_ok,
    file_lock,
    is_writable_dir,
)
from graphkit.exceptions import ChecksumError, DataNotFoundError, DatasetError
from graphkit.utils import data_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAPHKIT_OFFLINE", raising=False)


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "server" / "train.txt"
    src.parent.mkdir()
    src.write_bytes(b"0 1 2\n1 2 3\n" * 1000)
    return src


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def manifest_for(tmp_path: Path, source: Path, sha256: str) -> Manifest:
    return Manifest(
        name="toy", task="recommendation", format="lightgcn", subdir="toy", description="toy",
        files=(FileSpec("train.txt", urls=(source.as_uri(),), bytes=source.stat().st_size, sha256=sha256),
               FileSpec("test.txt", urls=(source.as_uri(),), bytes=source.stat().st_size, sha256=sha256)),
    )


# ----------------------------------------------------------------------------- download_file
def test_download_verifies_and_renames(tmp_path, source):
    dest = tmp_path / "data" / "train.txt"
    out = download_file(source.as_uri(), dest, sha256=sha(source.read_bytes()), progress=False)
    assert out == dest and dest.read_bytes() == source.read_bytes()
    assert leftovers(dest.parent) == ["train.txt"]


def test_checksum_mismatch_removes_temp_file(tmp_path, source):
    dest = tmp_path / "data" / "train.txt"
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        download_file(source.as_uri(), dest, sha256=wrong, progress=False)
    msg = str(info.value)
    assert f"expected {wrong}" in msg and f"got {sha(source.read_bytes())}" in msg
    assert not dest.exists()
    assert leftovers(dest.parent) == []  # no temporary file left behind


def test_md5_used_when_sha256_unknown(tmp_path, source):
    dest = tmp_path / "d" / "f"
    with pytest.raises(ChecksumError, match="md5 mismatch"):
        download_file(source.as_uri(), dest, md5="f" * 32, progress=False)
    download_file(source.as_uri(), dest, md5=hashlib.md5(source.read_bytes()).hexdigest(), progress=False)
    assert dest.is_file()


def test_size_mismatch_is_a_checksum_error(tmp_path, source):
    with pytest.raises(ChecksumError, match="size mismatch"):
        download_file(source.as_uri(), tmp_path / "d" / "f", size=1, progress=False)


def test_mirror_is_tried_after_a_bad_copy(tmp_path, source):
    bad = tmp_path / "server" / "bad.txt"
    bad.write_bytes(b"corrupted")
    dest = tmp_path / "d" / "train.txt"
    download_file([bad.as_uri(), source.as_uri()], dest, sha256=sha(source.read_bytes()), progress=False)
    assert dest.read_bytes() == source.read_bytes()


def test_unreachable_url_is_data_not_found(tmp_path):
    with pytest.raises(DataNotFoundError, match="could not download"):
        download_file((tmp_path / "nope").as_uri(), tmp_path / "d" / "x", progress=False)


def test_concurrent_downloads_leave_one_good_copy(tmp_path, source):
    dest = tmp_path / "d" / "train.txt"
    digest = sha(source.read_bytes())
    _, errors = run_in_threads(lambda: download_file(source.as_uri(), dest, sha256=digest, progress=False))
    assert not errors
    assert sha(dest.read_bytes()) == digest
    assert leftovers(dest.parent) == ["train.txt"]


def test_file_lock_is_exclusive(tmp_path):
    lock = tmp_path / "x.lock"
    order = []
    entered = threading.Event()

    def second():
        entered.wait()
        with file_lock(lock):
            order.append("second")

    t = threading.Thread(target=second)
    with file_lock(lock):
        t.start()
        entered.set()
        t.join(timeout=0.3)
        assert t.is_alive()  # blocked on our lock
        order.append("first")
    t.join(timeout=5)
    assert order == ["first", "second"]


# ----------------------------------------------------------------------------- ensure_files
def test_ensure_files_downloads_missing(tmp_path, source):
    m = manifest_for(tmp_path, source, sha(source.read_bytes()))
    paths = ensure_files(m, tmp_path / "data", progress=False)
    assert paths["train.txt"] == tmp_path / "data" / "toy" / "train.txt"
    assert all(p.is_file() for p in paths.values())


def test_offline_error_names_files_and_folder(tmp_path, source, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    m = Manifest(
        name="toy", task="recommendation", format="lightgcn", subdir="toy", description="",
        files=(FileSpec("train.txt", urls=("https://example.invalid/train.txt",), bytes=10, sha256="a" * 64),
               FileSpec("test.txt", urls=("https://example.invalid/test.txt",), md5="b" * 32)),
    )
    root = tmp_path / "data"
    with pytest.raises(DataNotFoundError) as info:
        ensure_files(m, root, progress=False)
    msg = str(info.value)
    folder = root / "toy"
    assert str(folder / "train.txt") in msg and str(folder / "test.txt") in msg
    assert f"Put the file(s) in {folder}" in msg and "GRAPHKIT_DATA" in msg
    assert "no network (test)" in msg and "a" * 64 in msg and "b" * 32 in msg
    assert not folder.exists() or leftovers(folder) == []


def test_graphkit_offline_env_blocks_network(tmp_path, source, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_OFFLINE", "1")
    m = manifest_for(tmp_path, source, sha(source.read_bytes()))
    with pytest.raises(DataNotFoundError, match="GRAPHKIT_OFFLINE"):
        ensure_files(m, tmp_path / "data")


def test_read_only_data_folder_downloads_into_cache(tmp_path, source):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    try:
        assert not is_writable_dir(root / "toy")
        m = manifest_for(tmp_path, source, sha(source.read_bytes()))
        paths = ensure_files(m, root, progress=False)
        assert paths["train.txt"] == tmp_path / "cache" / "toy" / "train.txt"
        assert list(root.iterdir()) == []
        # a second call finds the cached copy without downloading
        assert ensure_files(m, root, download=False) == paths
    finally:
        root.chmod(0o755)


# ----------------------------------------------------------------------------- verify
@pytest.mark.data
def test_verify_real_files():
    if not (data_dir() / "gowalla" / "train.txt").is_file():
        pytest.skip(f"needs gowalla/ under GRAPHKIT_DATA={data_dir()}")
    result = verify("gowalla")
    assert len(result) == 2 and all(result.values()), result
    planetoid = verify("citeseer")
    assert len(planetoid) == 8 and all(planetoid.values())
    ogb = verify("ogbg-molesol")
    assert len(ogb) == 11 and all(ogb.values())


def test_verify_detects_tampering_and_missing(tmp_path):
    m = load_manifest("ml-1m")
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "train.txt").write_bytes(b"0 1\n")
    result = verify("ml-1m", root=tmp_path)
    assert result == {str(folder / "train.txt"): False, str(folder / "test.txt"): False}
    assert not file_checksum_ok(folder / "train.txt", m.file("train.txt"))


def test_verify_unknown_name():
    with pytest.raises(DatasetError, match="no manifest"):
        verify("ogbn-arxiv")


# ----------------------------------------------------------------------------- manifests
def test_manifests_are_complete_and_consistent():
    names = manifest_names()
    for n in ("gowalla", "yelp2018", "amazon-book", "ml-1m", "cora", "citeseer", "pubmed", "ogbg-molesol"):
        assert n in names
    for n in names:
        m = load_manifest(n)
        assert m.name == n and m.files and m.task and m.subdir
        raw = json.loads((REPO / "datasets" / f"{n}.json").read_text())
        assert raw["name"] == n
        for f in m.files:
            assert f.sha256 or f.md5, f"{n}/{f.name} has no checksum"
            if m.format != "ogb":
                assert f.urls and all(u.startswith("https://") for u in f.urls)
    assert load_manifest("gowalla").counts == {"users": 29858, "items": 40981, "train": 810128, "test": 217242}
    assert load_manifest("yelp2018").file("train.txt").sha256 is None
    assert load_manifest("yelp2018").file("train.txt").md5 == "1b8b5d22a227e01d6de002c53d32b4c4"
    assert load_manifest("cora").file("ind.cora.x").urls[0] == (
        "https://github.com/kimiyoung/planetoid/raw/master/data/ind.cora.x"
    )
    assert load_manifest("gowalla").file("test.txt").urls[0] == (
        "https://raw.githubusercontent.com/kuandeng/LightGCN/master/Data/gowalla/test.txt"
    )
    assert load_manifest("ml-1m").file("train.txt").urls[0] == (
        "https://raw.githubusercontent.com/xue-pai/UltraGCN/master/data/ml-1m/train.txt"
    )
    assert (REPO / "datasets" / "__init__.py").is_file()


def test_names_and_available():
    assert canonical_name("Amazon_Book") == "amazon-book" and canonical_name("ML-1M") == "ml-1m"
    entries = {d.name: d.task for d in available()}
    assert entries["gowalla"] == "recommendation" and entries["cora"] == "node-classification"
    assert entries["ogbg-molesol"].startswith("graph-property") and entries["ogbn-arxiv"].startswith("node-property")
    assert "ogbn-mag" not in entries  # heterogeneous: not supported
