"""Issue 19, item 5: inputs that used to be accepted without a word.

* a LightGCN-format file cut mid-line warns (file and line named), a complete file saved
  without a final newline does not, and the official files load silently;
* an empty test split warns that no test metrics were computed (not the Recommender's
  internal dataset, which has no test split by design);
* int and str timestamps mixed in one column raise a ``DataFormatError`` (column, row, types);
* a data folder that does not exist is not created when the download fails.
"""
from __future__ import annotations

import datetime
import hashlib
import tempfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_in_threads

import graphkit
from graphkit.datasets import from_interactions, load
from graphkit.datasets._manifest import FileSpec, Manifest
from graphkit.datasets.download import ensure_files
from graphkit.datasets.recommendation import load_lightgcn_folder, read_lightgcn_file
from graphkit.exceptions import ChecksumError, DataFormatError, DataNotFoundError
from graphkit.utils import data_dir

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Never write into ~/.cache, never reach the network (file:// URLs still work)."""
    monkeypatch.setenv("GRAPHKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAPHKIT_OFFLINE", raising=False)
    real = urllib.request.urlopen

    def no_network(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else str(request)
        if url.startswith("file:"):
            return real(request, *args, **kwargs)
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr("urllib.request.urlopen", no_network)


SORTED = b"0 3 17 25\n1 2 14 1203 1271\n2 5 9\n3 1 4 7 1203 1271"  # complete, no final newline


def write_folder(folder: Path, train: bytes, test: bytes = b"0 4\n1 5\n2 6\n3 8\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_bytes(train)
    (folder / "test.txt").write_bytes(test)
    return folder


# ----------------------------------------------------------------------------- truncated files
@pytest.mark.parametrize("cut, line, reason", [
    (SORTED[:-2], 4, r"ends with item 12 after 1203"),          # inside the last number
    (SORTED[:-3], 4, r"ends with item 1 after 1203"),           # inside the last number, one digit left
    (SORTED.rsplit(b"\n", 1)[0] + b"\n3", 4, r"user id 3 and no items"),  # right after the user id
    (SORTED.rsplit(b"\n", 1)[0] + b"\n3 ", 4, r"user id 3 and no items"),
    (b"0 1 2\n1 2 3\n2 4 9\n2", 4, r"user id 2 and no items"),
])
def test_cut_file_warns_naming_file_and_line(tmp_path, cut, line, reason):
    p = tmp_path / "train.txt"
    p.write_bytes(cut)
    with pytest.warns(UserWarning, match=rf"train\.txt: line {line}: the file does not end with a newline and .*{reason}"):
        f = read_lightgcn_file(p)
    assert not f.ends_with_newline and f.last_line == line


def test_cut_train_file_warns_when_the_folder_is_loaded(tmp_path):
    folder = write_folder(tmp_path / "shop", SORTED[:-2])
    with pytest.warns(UserWarning, match=r"train\.txt: line 4: .*looks cut off"):
        ds = load(folder, val_ratio=0.0)
    assert ds.num_users == 4


@pytest.mark.parametrize("content", [
    SORTED,                                  # sorted lines, complete last line without a newline
    b"0 9 3\n1 8 2 5\n2 7 1",                # unsorted lines (ml-1m style): nothing to compare with
    b"0 1 2\n1 2 3\n2 4",                    # last line with a single item
    b"0 1 2\n1 2 3\n",                       # a final newline
    b"0 1 2\n1 2 3\n   ",                    # blanks after the final newline
    b"0 1 2\r\n1 2 3\r\n2 5 9\r",            # CRLF cut between CR and LF: no id lost
    b"",                                     # empty file
])
def test_complete_files_without_final_newline_load_silently(tmp_path, content):
    p = tmp_path / "train.txt"
    p.write_bytes(content)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_lightgcn_file(p)


def test_reference_count_warning_names_the_cut_file(tmp_path):
    folder = write_folder(tmp_path / "toy", b"0 1 2\n1 3 4\n2 5 6\n3 7 8")  # last line looks complete
    manifest = Manifest(name="toy", task="recommendation", format="lightgcn", subdir="toy", description="",
                        files=(FileSpec("train.txt"), FileSpec("test.txt")),
                        counts={"users": 4, "items": 9, "train": 9, "test": 4})
    with pytest.warns(UserWarning, match=r"reference counts \(train: expected 9, got 8\).*train\.txt \(line 4\) "
                                         r"does not end with a newline: probably cut off"):
        load_lightgcn_folder(folder, manifest=manifest, val_ratio=0.0)


@pytest.mark.data
@pytest.mark.parametrize("name", ["gowalla", "ml-1m"])
def test_official_files_end_with_a_newline_and_load_silently(name):
    folder = data_dir() / name
    if not (folder / "train.txt").is_file() or not (folder / "test.txt").is_file():
        pytest.skip(f"needs {folder}/train.txt and test.txt (set GRAPHKIT_DATA to the datasets folder)")
    for fname in ("train.txt", "test.txt"):
        with open(folder / fname, "rb") as fh:
            fh.seek(-1, 2)
            assert fh.read(1) == b"\n", fname
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load(name, download=False)
    assert ds.test.nnz > 0


# ----------------------------------------------------------------------------- empty test split
def test_empty_test_file_warns_that_no_test_metrics_were_computed(tmp_path):
    folder = write_folder(tmp_path / "notest", b"0 1 2 3\n1 2 3 4\n2 0 4 5\n3 1 5 6\n", test=b"")
    with pytest.warns(UserWarning, match=r"dataset 'notest' has no test interactions \(.*test\.txt is empty\): "
                                         r"no test metrics were computed"):
        res = graphkit.fit("lightgcn", str(folder), preset=False, epochs=1, embedding_dim=4, num_layers=1,
                           batch_size=64, progress=False, ks=(3,), select_metric="recall@3")
    assert res.metrics == {}


def test_empty_test_split_of_a_frame_warns(tmp_path):
    df = pd.DataFrame({"user": [0, 1, 2, 3], "item": [0, 1, 2, 3]})  # one interaction each: no test
    ds = from_interactions(df, val_ratio=0.0, test_ratio=0.2, name="singles")
    assert ds.test.nnz == 0
    with pytest.warns(UserWarning, match=r"dataset 'singles' has no test interactions: no test metrics"):
        res = graphkit.fit("lightgcn", ds, preset=False, epochs=1, embedding_dim=4, num_layers=1, progress=False,
                           ks=(2,), select_metric="recall@2")
    assert res.metrics == {}


def test_recommender_fit_does_not_warn_about_its_missing_test_split():
    df = pd.DataFrame({"user": np.repeat(np.arange(6), 4), "item": np.arange(24) % 7})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graphkit.Recommender("lightgcn", epochs=1, embedding_dim=4, num_layers=1, validation=0.25).fit(df)
    assert not [w for w in caught if "no test metrics" in str(w.message)]


# ----------------------------------------------------------------------------- mixed timestamps
MIXED = pd.DataFrame({"user": [1, 1, 1, 2], "item": [1, 2, 3, 1], "ts": [10, 20, "30", 40]})


def test_from_interactions_refuses_int_and_str_timestamps():
    with pytest.raises(DataFormatError) as info:
        from_interactions(MIXED, time_col="ts", split="temporal")
    err = info.value
    assert err.field == "ts" and err.got == "int and str"
    assert "row 2 (index label 2) holds str '30', but row 0 holds int 10" in str(err)


def test_recommender_refuses_int_and_str_timestamps_naming_the_callers_row():
    frame = MIXED.assign(w=[0.0, 1.0, 1.0, 1.0]).set_axis(["a", "b", "c", "d"])  # row 0 is dropped (weight 0)
    with pytest.raises(DataFormatError) as info:
        graphkit.Recommender(time_col="ts", weight_col="w", epochs=0).fit(frame)
    err = info.value
    assert err.field == "ts" and err.got == "int and str"
    assert "row 2 (index label 'c') holds str '30', but row 0 holds int 10" in str(err)


def test_date_and_datetime_cannot_be_mixed_either():
    df = pd.DataFrame({"user": [1, 1], "item": [1, 2],
                       "ts": pd.Series([datetime.date(2024, 1, 1), datetime.datetime(2024, 1, 2)], dtype=object)})
    with pytest.raises(DataFormatError, match="date and datetime|datetime and date"):
        from_interactions(df, time_col="ts", split="temporal")


@pytest.mark.parametrize("ts", [
    [1, 2.5, np.int64(3), 4],                          # numbers of several types compare
    ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
    pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]),
])
def test_comparable_timestamps_are_still_accepted(ts):
    df = pd.DataFrame({"user": [1, 1, 1, 1], "item": [1, 2, 3, 4], "ts": pd.Series(list(ts), dtype=object)})
    ds = from_interactions(df, time_col="ts", split="leave-last-out")
    assert ds.test.nnz == 1
    rec = graphkit.Recommender(time_col="ts", epochs=0, validation=0.25).fit(df)
    assert rec.n_items_ == 4


# ----------------------------------------------------------------------------- data_dir not created
def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def no_staging_left(folder: Path) -> bool:
    """No staging folder or file left in the temporary folder (the per-file lock stays)."""
    return [p.name for p in folder.iterdir() if not p.name.endswith(".lock")] == []


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """The system temporary folder, redirected so that leftovers can be seen."""
    folder = tmp_path / "systmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_failed_download_leaves_no_data_folder(tmp_path, private_tmp):
    root = tmp_path / "new" / "data"
    with pytest.raises(DataNotFoundError, match="could not download"):
        load("gowalla", root=root)
    assert not (tmp_path / "new").exists()
    assert not (tmp_path / "cache").exists()
    assert no_staging_left(private_tmp)


def test_offline_load_leaves_no_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_OFFLINE", "1")
    root = tmp_path / "new"
    with pytest.raises(DataNotFoundError, match="GRAPHKIT_OFFLINE"):
        load("ml-1m", root=root)
    assert not root.exists()


def test_checksum_mismatch_creates_no_folder(tmp_path, private_tmp):
    src = tmp_path / "server.txt"
    src.write_bytes(b"0 1 2\n")
    manifest = Manifest(name="toy", task="recommendation", format="lightgcn", subdir="toy", description="",
                        files=(FileSpec("train.txt", urls=(src.as_uri(),), sha256="0" * 64),))
    with pytest.raises(ChecksumError, match="was not written"):
        ensure_files(manifest, tmp_path / "new", progress=False)
    assert not (tmp_path / "new").exists()
    assert no_staging_left(private_tmp)


def test_download_into_a_new_folder_creates_it_with_the_verified_file(tmp_path, private_tmp):
    data = b"0 1 2\n1 2 3\n" * 100
    src = tmp_path / "server.txt"
    src.write_bytes(data)
    manifest = Manifest(name="toy", task="recommendation", format="lightgcn", subdir="toy", description="",
                        files=(FileSpec("train.txt", urls=(src.as_uri(),), bytes=len(data), sha256=sha(data)),))
    paths = ensure_files(manifest, tmp_path / "new", progress=False)
    assert paths["train.txt"] == tmp_path / "new" / "toy" / "train.txt"
    assert paths["train.txt"].read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "new" / "toy").iterdir()) == ["train.txt", "train.txt.lock"]
    assert no_staging_left(private_tmp)


def test_concurrent_downloads_into_a_new_folder_fetch_once(tmp_path, private_tmp, monkeypatch):
    """Staging must not cost the one-request guarantee: four threads wanting the same file of
    a folder that does not exist yet fetch it once; the others find the finished file."""
    import time

    import graphkit.datasets.download as dl

    data = b"0 1 2\n1 2 3\n" * 100
    src = tmp_path / "server.txt"
    src.write_bytes(data)
    manifest = Manifest(name="toy", task="recommendation", format="lightgcn", subdir="toy", description="",
                        files=(FileSpec("train.txt", urls=(src.as_uri(),), bytes=len(data), sha256=sha(data)),))
    fetches = []
    real_fetch = dl._fetch_once

    def slow_fetch(*args, **kwargs):
        fetches.append(args[0])
        time.sleep(0.2)  # the other threads arrive while this one downloads
        return real_fetch(*args, **kwargs)

    monkeypatch.setattr(dl, "_fetch_once", slow_fetch)
    results, errors = run_in_threads(lambda: ensure_files(manifest, tmp_path / "new", progress=False)["train.txt"])
    assert not errors and len(results) == 4
    assert len(fetches) == 1, fetches
    dest = tmp_path / "new" / "toy" / "train.txt"
    assert all(r == dest for r in results) and dest.read_bytes() == data
    assert sorted(p.name for p in dest.parent.iterdir()) == ["train.txt", "train.txt.lock"]
    assert no_staging_left(private_tmp)
