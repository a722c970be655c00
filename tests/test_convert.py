"""graphkit.datasets.convert: as_dataset and the DataFrame / matrix / HeteroData / PyG Data routes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import graphkit
from graphkit.datasets import (
    NodeDataset, RecDataset, as_dataset, from_interactions, node_dataset_from_pyg, rec_dataset_from_frame,
    rec_dataset_from_hetero, rec_dataset_from_matrix,
)
from graphkit.datasets.planetoid import random_planetoid_split
from graphkit.exceptions import ConfigError, DataFormatError

pyg_data = pytest.importorskip("torch_geometric.data")
Data, HeteroData = pyg_data.Data, pyg_data.HeteroData


# ----------------------------------------------------------------------------- fixtures
def dense_matrix(n_users: int = 40, n_items: int = 25, p: float = 0.3, seed: int = 0) -> np.ndarray:
    """A random binary matrix where every row and column has an interaction."""
    rng = np.random.default_rng(seed)
    m = (rng.random((n_users, n_items)) < p).astype(np.float32)
    m[np.arange(n_users), np.arange(n_users) % n_items] = 1.0
    m[np.arange(n_items) % n_users, np.arange(n_items)] = 1.0
    return m


def pairs_frame(m: np.ndarray) -> pd.DataFrame:
    u, i = np.nonzero(m)
    return pd.DataFrame({"user": u, "item": i})


def node_data(n_per_class: int = 40, num_classes: int = 3, num_features: int = 8, seed: int = 0,
              masks: bool = False) -> "Data":
    """A small planted-partition graph: features and edges depend on the class."""
    rng = np.random.default_rng(seed)
    n = n_per_class * num_classes
    y = np.repeat(np.arange(num_classes), n_per_class)
    x = rng.normal(size=(n, num_features)).astype(np.float32)
    x[:, :num_classes] += 2.0 * np.eye(num_classes, dtype=np.float32)[y]
    src = rng.integers(0, n, size=6 * n)
    dst = np.where(rng.random(6 * n) < 0.8,
                   y[src] * n_per_class + rng.integers(0, n_per_class, size=6 * n), rng.integers(0, n, size=6 * n))
    data = Data(x=torch.from_numpy(x), y=torch.from_numpy(y), edge_index=torch.from_numpy(np.stack([src, dst])))
    if masks:
        perm = rng.permutation(n)
        for key, part in (("train_mask", perm[:30]), ("val_mask", perm[30:60]), ("test_mask", perm[60:100])):
            mask = torch.zeros(n, dtype=torch.bool)
            mask[torch.from_numpy(part)] = True
            data[key] = mask
    return data


def hetero(m: np.ndarray, reverse: bool = False) -> "HeteroData":
    u, i = np.nonzero(m)
    h = HeteroData()
    h["user"].num_nodes = m.shape[0]
    h["item"].num_nodes = m.shape[1]
    h["user", "rates", "item"].edge_index = torch.from_numpy(np.stack([u, i]))
    if reverse:
        h["item", "rev_rates", "user"].edge_index = torch.from_numpy(np.stack([i, u]))
    return h


def split_pairs(ds: RecDataset, part: str):
    u, i = ds.interactions(part)
    if ds.user_ids is not None:
        u, i = ds.user_ids[u].astype(np.int64), ds.item_ids[i].astype(np.int64)
    return set(zip(u.tolist(), i.tolist()))


# ----------------------------------------------------------------------------- recommendation
def test_frame_route_is_from_interactions():
    df = pairs_frame(dense_matrix())
    a = as_dataset(df, seed=3)
    b = from_interactions(df, seed=3)
    c = rec_dataset_from_frame(df, seed=3)
    assert a.fingerprint == b.fingerprint == c.fingerprint
    assert a.meta == b.meta


@pytest.mark.parametrize("fmt", ["csr", "coo", "csc", "lil", "dense", "sparray"])
def test_matrix_matches_frame_with_same_pairs(fmt):
    m = dense_matrix()
    mat = {"csr": sp.csr_matrix, "coo": sp.coo_matrix, "csc": sp.csc_matrix, "lil": sp.lil_matrix,
           "dense": np.asarray, "sparray": sp.csr_array}[fmt](m)
    ds = as_dataset(mat, val_ratio=0.1, test_ratio=0.2, seed=7)
    ref = from_interactions(pairs_frame(m), val_ratio=0.1, test_ratio=0.2, seed=7)
    assert isinstance(ds, RecDataset)
    assert ds.fingerprint == ref.fingerprint
    assert ds.num_interactions == ref.num_interactions
    for part in ("train", "valid", "test"):  # per-user sizes too
        np.testing.assert_array_equal(np.diff(getattr(ds, part).indptr), np.diff(getattr(ref, part).indptr))
    assert ds.user_ids is None and ds.item_ids is None
    assert {k: ds.meta[k] for k in ("format", "split", "val_ratio", "test_ratio", "split_seed")} == {
        "format": "matrix", "split": "random", "val_ratio": 0.1, "test_ratio": 0.2, "split_seed": 7}
    assert ds.split_record()["fingerprint"] == ds.fingerprint


def test_matrix_values_ignored_except_zero():
    m = dense_matrix()
    m[0, -1] = 0.0
    weighted = m * np.random.default_rng(1).integers(1, 5, size=m.shape)
    assert rec_dataset_from_matrix(weighted).fingerprint == rec_dataset_from_matrix(m).fingerprint
    # stored zeros and duplicates summing to zero are not interactions
    csr = sp.csr_matrix(m)
    csr.data[:3] = 0.0
    coo = sp.coo_matrix(m)
    dup = sp.coo_matrix((np.concatenate([coo.data, [1.0, -1.0]]),
                         (np.concatenate([coo.row, [0, 0]]), np.concatenate([coo.col, [m.shape[1] - 1] * 2]))),
                        shape=m.shape)
    stripped = csr.toarray()
    assert csr.nnz == int(m.sum()) and (stripped != 0).sum() == int(m.sum()) - 3
    assert rec_dataset_from_matrix(csr).fingerprint == rec_dataset_from_matrix(stripped).fingerprint
    assert rec_dataset_from_matrix(dup).fingerprint == rec_dataset_from_matrix(m).fingerprint


def test_matrix_keeps_empty_rows_and_columns():
    m = dense_matrix()
    m[[3, 17], :] = 0.0
    m[:, 5] = 0.0
    ds = rec_dataset_from_matrix(sp.csr_matrix(m), seed=11)
    ref = from_interactions(pairs_frame(m), seed=11)
    assert (ds.num_users, ds.num_items) == m.shape
    assert (ref.num_users, ref.num_items) == (m.shape[0] - 2, m.shape[1] - 1)
    for part in ("train", "valid", "test"):  # the same pairs, in the original index space
        assert split_pairs(ds, part) == split_pairs(ref, part)
    assert ds.full_train.shape == m.shape and ds.full_train[3].nnz == 0 and ds.full_train[:, 5].nnz == 0
    assert ds.meta["users_without_interactions"] == 2 and ds.meta["items_without_interactions"] == 1
    assert ds.graph().num_nodes == m.shape[0] + m.shape[1]


def test_matrix_split_is_deterministic_and_seeded():
    m = sp.csr_matrix(dense_matrix())
    a, b, c = (rec_dataset_from_matrix(m, seed=s) for s in (5, 5, 6))
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint
    full = split_pairs(a, "train") | split_pairs(a, "valid") | split_pairs(a, "test")
    assert full == set(zip(*map(np.ndarray.tolist, np.nonzero(m.toarray()))))


def test_matrix_group_by_user_false_matches_frame():
    m = dense_matrix()
    ds = rec_dataset_from_matrix(m, group_by_user=False, seed=1)
    assert ds.fingerprint == from_interactions(pairs_frame(m), group_by_user=False, seed=1).fingerprint


@pytest.mark.parametrize("split", ["temporal", "leave-last-out"])
def test_matrix_time_split_is_config_error(split):
    with pytest.raises(ConfigError, match=split):
        rec_dataset_from_matrix(dense_matrix(), split=split)


def test_matrix_format_errors():
    with pytest.raises(DataFormatError, match="NaN"):
        rec_dataset_from_matrix(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(DataFormatError, match="'matrix'"):
        rec_dataset_from_matrix(np.ones((2, 2, 2)))
    with pytest.raises(DataFormatError, match="no interactions"):
        rec_dataset_from_matrix(sp.csr_matrix((3, 4)))
    with pytest.raises(DataFormatError, match="dtype"):
        rec_dataset_from_matrix(np.array([["a", "b"]], dtype=object))
    with pytest.raises(ConfigError, match="val_ratio"):
        rec_dataset_from_matrix(dense_matrix(), val_ratio=1.5)


def test_hetero_round_trip():
    m = dense_matrix()
    m[7, :] = 0.0
    for h in (hetero(m), hetero(m, reverse=True)):
        ds = as_dataset(h, seed=4)
        ref = rec_dataset_from_matrix(m, seed=4)
        assert isinstance(ds, RecDataset)
        assert (ds.num_users, ds.num_items) == m.shape
        assert ds.fingerprint == ref.fingerprint
        assert ds.meta["format"] == "hetero" and ds.meta["edge_type"] == ["user", "rates", "item"]


def test_hetero_ignores_split_attributes_and_dedups():
    m = dense_matrix()
    h = hetero(m)
    ei = h["user", "rates", "item"].edge_index
    h["user", "rates", "item"].edge_index = torch.cat([ei, ei[:, :5]], dim=1)  # 5 duplicate edges
    h["user", "rates", "item"].train_mask = torch.ones(ei.shape[1] + 5, dtype=torch.bool)
    h["user", "rates", "item"].edge_label_index = ei[:, :3]
    ds = rec_dataset_from_hetero(h)
    assert ds.fingerprint == rec_dataset_from_matrix(m).fingerprint
    assert ds.meta["duplicate_pairs_dropped"] == 5
    assert ds.meta["ignored_edge_attributes"] == ["edge_label_index", "train_mask"]


def test_hetero_user_is_source_type():
    m = dense_matrix()
    u, i = np.nonzero(m)
    h = HeteroData()
    h["movie"].num_nodes = m.shape[1]
    h["viewer"].num_nodes = m.shape[0]
    h["viewer", "watched", "movie"].edge_index = torch.from_numpy(np.stack([u, i]))
    ds = rec_dataset_from_hetero(h)
    assert (ds.num_users, ds.num_items) == m.shape and ds.meta["user_type"] == "viewer"


def test_hetero_errors():
    m = dense_matrix()
    h = hetero(m)
    h["tag"].num_nodes = 3
    with pytest.raises(DataFormatError, match="node_types"):
        rec_dataset_from_hetero(h)
    h = hetero(m)
    h["user", "follows", "user"].edge_index = torch.zeros(2, 1, dtype=torch.long)
    with pytest.raises(DataFormatError, match="edge_types"):
        rec_dataset_from_hetero(h)
    h = hetero(m)
    h["item", "bought_by", "user"].edge_index = torch.zeros(2, 1, dtype=torch.long)
    with pytest.raises(ConfigError, match="edge_type="):
        rec_dataset_from_hetero(h)
    assert rec_dataset_from_hetero(h, edge_type=("user", "rates", "item")).fingerprint == \
        rec_dataset_from_matrix(m).fingerprint
    assert rec_dataset_from_hetero(h, edge_type="rates").num_users == m.shape[0]
    h = hetero(m)
    h["user", "likes", "item"].edge_attr = torch.ones(4)  # an edge type without edge_index
    with pytest.raises(DataFormatError, match="edge_index"):
        rec_dataset_from_hetero(h, edge_type="likes")
    h = hetero(m)
    h["item"].num_nodes = 3
    with pytest.raises(DataFormatError, match="edge_index.*out of range"):
        rec_dataset_from_hetero(h)
    with pytest.raises(ConfigError, match="temporal"):
        rec_dataset_from_hetero(hetero(m), split="temporal")


# ----------------------------------------------------------------------------- node classification
def test_pyg_data_masks_are_kept():
    data = node_data(masks=True)
    ds = as_dataset(data)
    assert isinstance(ds, NodeDataset) and ds.split == "masks" and ds.split_seed is None
    for idx, key in ((ds.train_idx, "train_mask"), (ds.val_idx, "val_mask"), (ds.test_idx, "test_mask")):
        np.testing.assert_array_equal(idx.numpy(), np.flatnonzero(data[key].numpy()))
    assert ds.num_classes == 3 and ds.num_features == 8 and ds.num_nodes == 120
    assert ds.fingerprint == as_dataset(node_data(masks=True)).fingerprint


def test_pyg_data_2d_masks_take_column_seed_mod_k():
    data = node_data()
    n = data.num_nodes
    rng = np.random.default_rng(0)
    cols = [rng.permutation(n) for _ in range(3)]
    for key, sl in (("train_mask", slice(0, 30)), ("val_mask", slice(30, 60)), ("test_mask", slice(60, 90))):
        mask = np.zeros((n, 3), dtype=bool)
        for k in range(3):
            mask[cols[k][sl], k] = True
        data[key] = torch.from_numpy(mask)
    ds = node_dataset_from_pyg(data, seed=4)
    np.testing.assert_array_equal(ds.train_idx.numpy(), np.sort(cols[1][:30]))
    assert ds.meta["mask_columns"] == {"train_mask": 1, "val_mask": 1, "test_mask": 1}


def test_pyg_data_without_masks_gets_random_planetoid_split():
    data = node_data()
    ds = as_dataset(data, seed=3, num_val=20, num_test=30)
    tr, va, te = random_planetoid_split(data.y.numpy(), 3, 3, num_val=20, num_test=30)
    assert ds.split == "random" and ds.split_seed == 3
    for got, want in ((ds.train_idx, tr), (ds.val_idx, va), (ds.test_idx, te)):
        np.testing.assert_array_equal(got.numpy(), want)
    assert ds.fingerprint == as_dataset(node_data(), seed=3, num_val=20, num_test=30).fingerprint
    assert ds.fingerprint != as_dataset(node_data(), seed=4, num_val=20, num_test=30).fingerprint
    forced = node_dataset_from_pyg(node_data(masks=True), split="random", seed=3, num_val=20, num_test=30)
    assert forced.fingerprint == ds.fingerprint and forced.meta["ignored_masks"] == list(
        ("train_mask", "val_mask", "test_mask"))


def test_pyg_graph_like_planetoid():
    data = Data(x=torch.ones(4, 2), y=torch.tensor([0, 1, 0, 1]),
                edge_index=torch.tensor([[0, 0, 1, 2, 2], [1, 1, 1, 3, 0]]))
    ds = node_dataset_from_pyg(data, num_train_per_class=1, num_val=1, num_test=1)
    ei, _ = ds.graph.to_edge_index()
    assert sorted(map(tuple, ei.t().tolist())) == [(0, 1), (0, 2), (1, 0), (2, 0), (2, 3), (3, 2)]
    assert ds.meta["edges"] == {"input": 5, "self_loops_dropped": 1, "to_undirected": True, "stored": 6}
    directed = node_dataset_from_pyg(data, num_train_per_class=1, num_val=1, num_test=1, to_undirected=False)
    assert directed.graph.num_edges == 3


def test_pyg_unlabelled_nodes_never_in_split():
    data = node_data(masks=True)
    y = data.y.clone()
    y[torch.nonzero(data.train_mask).view(-1)[:2]] = -1
    data.y = y
    with pytest.warns(UserWarning, match="no label"):
        ds = node_dataset_from_pyg(data)
    assert len(ds.train_idx) == 28 and (ds.y[ds.train_idx] >= 0).all()
    rnd = node_dataset_from_pyg(data, split="random", num_val=20, num_test=30)
    all_idx = torch.cat([rnd.train_idx, rnd.val_idx, rnd.test_idx])
    assert (rnd.y[all_idx] >= 0).all()


@pytest.mark.parametrize("key", ["x", "y", "edge_index"])
def test_pyg_missing_field(key):
    data = node_data()
    del data[key]
    with pytest.raises(DataFormatError, match=f"'{key}'"):
        node_dataset_from_pyg(data)


def test_pyg_format_errors():
    data = node_data()
    data.edge_index = torch.tensor([[0, 1], [1, 500]])
    with pytest.raises(DataFormatError, match="'edge_index'.*500") as exc:
        node_dataset_from_pyg(data)
    assert exc.value.field == "edge_index" and exc.value.got == 500
    data = node_data()
    data.y = data.y.view(-1, 1)
    with pytest.raises(DataFormatError, match="'y'"):
        node_dataset_from_pyg(data)
    data = node_data()
    data.y = data.y.float()
    with pytest.raises(DataFormatError, match="'y'.*integer"):
        node_dataset_from_pyg(data)
    data = node_data(masks=True)
    data.val_mask = data.val_mask[:-1]
    with pytest.raises(DataFormatError, match="'val_mask'") as exc:
        node_dataset_from_pyg(data)
    assert exc.value.field == "val_mask" and "[120]" in str(exc.value.expected)
    data = node_data(masks=True)
    data.test_mask = data.test_mask | data.train_mask
    with pytest.raises(DataFormatError, match="overlap"):
        node_dataset_from_pyg(data)
    data = node_data(masks=True)
    del data["test_mask"]
    with pytest.raises(DataFormatError, match="'test_mask'"):
        node_dataset_from_pyg(data, split="masks")
    with pytest.raises(ConfigError, match="num_val"):  # default sizes do not fit 120 nodes
        node_dataset_from_pyg(node_data())


# ----------------------------------------------------------------------------- dispatch
def test_as_dataset_passes_datasets_through_and_rejects_others():
    ds = rec_dataset_from_matrix(dense_matrix())
    assert as_dataset(ds) is ds
    node = node_dataset_from_pyg(node_data(masks=True))
    assert as_dataset(node, task="node") is node
    with pytest.raises(ConfigError, match="already split"):
        as_dataset(ds, seed=1)
    with pytest.raises(ConfigError, match="DataFrame"):
        as_dataset([1, 2, 3])
    with pytest.raises(ConfigError, match="task"):
        as_dataset(node_data(masks=True), task="recommendation")
    with pytest.raises(ConfigError, match="accepted"):
        as_dataset(dense_matrix(), user_col="u")
    assert as_dataset(dense_matrix(), task="rec", name="mine").name == "mine"


def test_as_dataset_single_graph_pyg_dataset():
    from torch_geometric.data import InMemoryDataset

    class Tiny(InMemoryDataset):
        name = "Tiny"

        def __init__(self):
            super().__init__(None)
            self.data, self.slices = self.collate([node_data(masks=True)])

    ds = as_dataset(Tiny())
    assert ds.name == "Tiny" and ds.split == "masks"


# ----------------------------------------------------------------------------- fit
NODE_FIT = dict(epochs=5, progress=False, preset=False)
REC_FIT = dict(epochs=2, progress=False, preset=False, eval_every=1, embedding_dim=8, batch_size=256)


def interaction_frame() -> pd.DataFrame:
    df = pairs_frame(dense_matrix())
    return df.assign(user=[f"u{k}" for k in df["user"]], item=[f"i{k}" for k in df["item"]])


def test_fit_gcn_on_pyg_data():
    res = graphkit.fit("gcn", as_dataset(node_data(masks=True)), **NODE_FIT)
    assert 0.0 <= res.metrics["accuracy"] <= 1.0


def test_fit_lightgcn_on_frame():
    res = graphkit.fit("lightgcn", as_dataset(interaction_frame()), **REC_FIT)
    assert len(res.history) == 2 and res.metrics


def test_fit_raw_objects():
    """graphkit.fit converts a raw object exactly as as_dataset does: same split, same run."""
    data, frame = node_data(masks=True), interaction_frame()
    for model, obj, kw in (("gcn", data, NODE_FIT), ("lightgcn", frame, REC_FIT)):
        raw, converted = graphkit.fit(model, obj, **kw), graphkit.fit(model, as_dataset(obj), **kw)
        assert raw.record["fingerprint"] == as_dataset(obj).fingerprint == converted.record["fingerprint"]
        assert raw.metrics == converted.metrics
    mat = sp.csr_matrix((np.ones(len(frame)), (frame["user"].astype("category").cat.codes,
                                               frame["item"].astype("category").cat.codes)))
    res = graphkit.fit("lightgcn", mat, **REC_FIT)
    assert res.record["fingerprint"] == as_dataset(mat).fingerprint and res.metrics
