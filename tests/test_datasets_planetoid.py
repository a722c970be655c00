"""Planetoid loading: restricted unpickler, Kipf conventions, splits, offline errors."""
from __future__ import annotations

import collections
import os
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphkit.datasets import load
from graphkit.datasets.planetoid import load_planetoid, random_planetoid_split, read_planetoid
from graphkit.datasets.safe_pickle import RestrictedUnpickler, restricted_load_torch_zip, restricted_loads
from graphkit.exceptions import ConfigError, DataFormatError, DataNotFoundError
from graphkit.utils import data_dir

PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_CACHE", str(tmp_path / "cache"))


def need_planetoid(name: str) -> Path:
    raw = data_dir() / "planetoid" / "raw"
    missing = [p for p in PARTS if not (raw / f"ind.{name}.{p}").is_file()]
    if missing:
        pytest.skip(f"needs ind.{name}.{{{','.join(missing)}}} in {raw} (set GRAPHKIT_DATA to the datasets folder)")
    return raw


class _Evil:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ----------------------------------------------------------------------------- synthetic files
def write_synthetic(raw: Path, name: str = "cora", graph_obj=None) -> None:
    """12 nodes, 3 classes: allx/ally cover nodes 0..7 (x/y = nodes 0..2), tx/ty belong to
    test ids [11, 9, 8] in that file order, and node 10 has no data (CiteSeer-style hole)."""
    raw.mkdir(parents=True, exist_ok=True)
    feats = np.eye(12, 5, dtype=np.float32) + np.arange(12, dtype=np.float32)[:, None] / 100
    labels = np.eye(3, dtype=np.int32)[np.arange(12) % 3]
    test_ids = [11, 9, 8]
    objs = {
        "x": sp.csr_matrix(feats[:3]),
        "y": labels[:3],
        "allx": sp.csr_matrix(feats[:8]),
        "ally": labels[:8],
        "tx": sp.csr_matrix(feats[test_ids]),
        "ty": labels[test_ids],
    }
    g = collections.defaultdict(list)
    for a, b in [(0, 1), (1, 0), (1, 2), (2, 3), (3, 3), (4, 5), (5, 4), (5, 4), (8, 9), (9, 11), (10, 0), (6, 7)]:
        g[a].append(b)
    for k in range(12):
        g[k]  # every node is a key, as in the real files
    objs["graph"] = graph_obj if graph_obj is not None else g
    for part, obj in objs.items():
        (raw / f"ind.{name}.{part}").write_bytes(obj if isinstance(obj, bytes) else pickle.dumps(obj, protocol=2))
    (raw / f"ind.{name}.test.index").write_text("".join(f"{i}\n" for i in test_ids))


def test_synthetic_follows_kipf_convention(tmp_path):
    raw = tmp_path / "planetoid" / "raw"
    write_synthetic(raw)
    r = read_planetoid("cora", {f"ind.cora.{p}": raw / f"ind.cora.{p}" for p in PARTS})
    feats = np.eye(12, 5, dtype=np.float32) + np.arange(12, dtype=np.float32)[:, None] / 100
    expected = feats.copy()
    expected[10] = 0  # the hole: no features
    np.testing.assert_allclose(r.x, expected)
    assert r.y.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, -1, 2]
    assert r.test_idx.tolist() == [8, 9, 11] and r.train_idx.tolist() == [0, 1, 2]
    edges = set(map(tuple, r.edge_index.T.tolist()))
    und = {(0, 1), (1, 2), (2, 3), (4, 5), (8, 9), (9, 11), (10, 0), (6, 7)}
    assert edges == und | {(b, a) for a, b in und}  # symmetric, no (3, 3), no duplicate (5, 4)
    assert r.stats["self_loop_entries"] == 1 and r.stats["feature_rows_without_data"] == 1


def test_synthetic_through_load(tmp_path):
    pytest.importorskip("graphkit.graph")
    write_synthetic(tmp_path / "planetoid" / "raw")
    ds = load("cora", root=tmp_path, download=False)
    assert ds.x.dtype == torch.float32 and ds.y.dtype == torch.int64 and ds.x.shape == (12, 5)
    assert ds.graph.num_nodes == 12 and ds.graph.num_edges == 16
    assert ds.graph.is_symmetric()


# ----------------------------------------------------------------------------- restricted unpickler
def test_malicious_pickle_is_rejected_without_running(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(marker), protocol=2)
    with pytest.raises(DataFormatError, match="forbidden global") as info:
        restricted_loads(payload, path="evil.pkl")
    assert "system" in str(info.value.got)
    assert not marker.exists()
    assert pickle.loads(payload) == 0 and marker.exists()  # the payload is real: plain pickle runs it


@pytest.mark.parametrize("target", [eval, getattr, np.load, os.system, __import__, sp.load_npz])
def test_other_globals_are_rejected(target):
    class Reduce:
        def __reduce__(self):
            return (target, ("1",))

    with pytest.raises(DataFormatError, match="forbidden global"):
        restricted_loads(pickle.dumps(Reduce(), protocol=2))


def test_malicious_graph_file_fails_the_load(tmp_path):
    marker = tmp_path / "pwned"
    raw = tmp_path / "planetoid" / "raw"
    write_synthetic(raw, graph_obj=pickle.dumps(_Evil(marker), protocol=2))
    with pytest.raises(DataFormatError, match="forbidden global") as info:
        load_planetoid("cora", root=tmp_path, download=False)
    assert "ind.cora.graph" in str(info.value)
    assert not marker.exists()


def test_legacy_scipy_module_path_and_numpy_types():
    mat = sp.csr_matrix(np.array([[0, 1.5], [2, 0]], dtype=np.float32))
    legacy = pickle.dumps(mat, protocol=2).replace(b"scipy.sparse._csr\n", b"scipy.sparse.csr\n")
    assert b"scipy.sparse.csr\ncsr_matrix" in legacy
    out = restricted_loads(legacy)
    assert isinstance(out, sp.csr_matrix) and (out != mat).nnz == 0
    arr = np.arange(6, dtype=np.int64).reshape(2, 3)
    np.testing.assert_array_equal(restricted_loads(pickle.dumps(arr, protocol=4)), arr)
    assert restricted_loads(pickle.dumps({"a": [1, (2, 3.0)], "b": {4}})) == {"a": [1, (2, 3.0)], "b": {4}}


def test_corrupt_pickle_and_torch_zip(tmp_path):
    with pytest.raises(DataFormatError, match="not a readable pickle"):
        restricted_loads(b"\x80\x02garbage")
    p = tmp_path / "t.pt"
    torch.save({"a": np.arange(3)}, p)
    np.testing.assert_array_equal(restricted_load_torch_zip(p)["a"], np.arange(3))
    torch.save({"t": torch.ones(2)}, p)  # tensors need torch's persistent loads: refused
    with pytest.raises(DataFormatError):
        restricted_load_torch_zip(p)
    assert issubclass(RestrictedUnpickler, pickle.Unpickler)


# ----------------------------------------------------------------------------- real files
@pytest.mark.data
def test_cora_counts_and_public_split():
    need_planetoid("cora")
    ds = load("cora")
    assert (ds.num_nodes, ds.num_features, ds.num_classes) == (2708, 1433, 7)
    assert ds.graph.num_edges == 10_556
    assert (len(ds.train_idx), len(ds.val_idx), len(ds.test_idx)) == (140, 500, 1000)
    assert torch.bincount(ds.y[ds.train_idx], minlength=7).tolist() == [20] * 7
    assert (ds.y >= 0).all()
    assert ds.split == "public" and ds.split_seed is None
    assert ds.graph.is_symmetric()
    ei, _ = ds.graph.to_edge_index()
    assert (ei[0] != ei[1]).all()
    m = ds.masks()
    assert not (m["train"] & m["val"]).any() and not (m["val"] & m["test"]).any() and not (m["train"] & m["test"]).any()


@pytest.mark.data
def test_citeseer_counts_and_padding():
    need_planetoid("citeseer")
    ds = load("citeseer")
    assert (ds.num_nodes, ds.num_features, ds.num_classes) == (3327, 3703, 6)
    assert ds.graph.num_edges == 9_104
    assert (len(ds.train_idx), len(ds.val_idx), len(ds.test_idx)) == (120, 500, 1000)
    unlabelled = (ds.y < 0).nonzero().flatten()
    assert len(unlabelled) == 15 and int((ds.y >= 0).sum()) == 3312
    assert (ds.x[unlabelled] == 0).all()
    assert ds.meta["stats"]["self_loop_entries"] == 248


@pytest.mark.data
@pytest.mark.parametrize("name", ["cora", "citeseer"])
def test_matches_pyg_reference_reader(name):
    raw = need_planetoid(name)
    pyg_planetoid = pytest.importorskip("torch_geometric.io.planetoid")
    ref = pyg_planetoid.read_planetoid_data(str(raw), name)
    ds = load(name)
    assert torch.equal(ds.x, ref.x)
    labelled = ds.y >= 0
    assert torch.equal(ds.y[labelled], ref.y[labelled])
    n = ds.num_nodes
    ours, _ = ds.graph.to_edge_index()
    assert set((ours[0] * n + ours[1]).tolist()) == set((ref.edge_index[0] * n + ref.edge_index[1]).tolist())
    m = ds.masks()
    for key in ("train", "val", "test"):
        assert torch.equal(m[key], ref[f"{key}_mask"])


@pytest.mark.data
def test_random_split_is_reproducible_and_balanced():
    need_planetoid("cora")
    a = load("cora", split="random", seed=1)
    b = load("cora", split="random", seed=1)
    c = load("cora", split="random", seed=2)
    assert torch.bincount(a.y[a.train_idx], minlength=7).tolist() == [20] * 7
    assert (len(a.train_idx), len(a.val_idx), len(a.test_idx)) == (140, 500, 1000)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert torch.equal(a.test_idx, b.test_idx)
    parts = [set(t.tolist()) for t in (a.train_idx, a.val_idx, a.test_idx)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert a.split_record() == {"dataset": "cora", "fingerprint": a.fingerprint, "split": "random", "split_seed": 1}


def test_random_split_skips_unlabelled_and_checks_sizes():
    y = np.array([0] * 30 + [1] * 30 + [-1] * 10)
    tr, va, te = random_planetoid_split(y, 2, seed=0, num_train_per_class=5, num_val=10, num_test=20)
    assert np.bincount(y[tr]).tolist() == [5, 5] and (y[np.concatenate([va, te])] >= 0).all()
    with pytest.raises(ConfigError):
        random_planetoid_split(y, 2, seed=0, num_train_per_class=31)
    with pytest.raises(ConfigError):
        random_planetoid_split(y, 2, seed=0, num_train_per_class=5, num_val=40, num_test=20)


@pytest.mark.data
def test_normalize_features():
    need_planetoid("cora")
    ds = load("cora", normalize_features=True)
    sums = ds.x.sum(1)
    assert torch.allclose(sums[sums > 0], torch.ones(int((sums > 0).sum())), atol=1e-5)


@pytest.mark.data
def test_pubmed_missing_allx_names_file_and_folder(monkeypatch):
    raw = data_dir() / "planetoid" / "raw"
    if not (raw / "ind.pubmed.graph").is_file() or (raw / "ind.pubmed.allx").is_file():
        pytest.skip(f"needs the shared planetoid folder without ind.pubmed.allx at {raw}")

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network unreachable (test)")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    for kwargs in ({"download": False}, {}):
        with pytest.raises(DataNotFoundError) as info:
            load("pubmed", **kwargs)
        msg = str(info.value)
        assert str(raw / "ind.pubmed.allx") in msg
        assert f"Put the file(s) in {raw}" in msg
        assert "508e538e2abdccdd54c4d3e9f49d638b4af7107d85845f66ddea5a5152658b7e" in msg
        assert "ind.pubmed.graph" not in msg  # only the missing file is listed


def test_codecs_encode_only_rebuilds_bytes():
    import _codecs

    assert restricted_loads(pickle.dumps(b"\x00\xffab", protocol=2)) == b"\x00\xffab"

    class Rot:
        def __reduce__(self):
            return (_codecs.encode, ("text", "rot13"))

    with pytest.raises(DataFormatError, match="_codecs.encode"):
        restricted_loads(pickle.dumps(Rot(), protocol=2))


@pytest.mark.parametrize("shape", [(10**7, 10**7), (100_000, 100_000)])
def test_a_small_file_cannot_declare_a_huge_sparse_matrix(tmp_path, shape):
    """A few-hundred-byte pickle declaring a huge (empty) sparse matrix must not be densified:
    the allocation it asks for is bounded by what the file's size can justify."""
    import pickle

    import scipy.sparse as sp

    from graphkit import DataFormatError
    from graphkit.datasets.planetoid import _dense
    from graphkit.datasets.safe_pickle import restricted_loads

    blob = pickle.dumps(sp.coo_matrix(([], ([], [])), shape=shape), protocol=2)
    assert len(blob) < 2000
    path = tmp_path / "ind.cora.x"
    path.write_bytes(blob)
    obj = restricted_loads(blob, path)
    with pytest.raises(DataFormatError, match="more than a .*-byte file can describe") as info:
        _dense(obj, path, "x", len(blob))
    assert info.value.field == "shape" and str(path) in str(info.value)
    ok = _dense(sp.coo_matrix(([1.0], ([0], [2])), shape=(3, 4)), path, "x", len(blob))  # small: fine
    assert ok.shape == (3, 4) and ok[0, 2] == 1.0
