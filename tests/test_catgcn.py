"""CatGCN: bi-interaction and feature-graph convolution against brute force, data loader, generator."""
import itertools

import numpy as np
import pytest
import torch

import graphkit
from graphkit import ConfigError, DataFormatError, DataNotFoundError, Graph
from graphkit.datasets.catgcn import (
    CategoricalFeatures, CatGCNData, categorical_from_node_dataset, load_catgcn, make_categorical_graph,
    save_catgcn,
)
from graphkit.models.catgcn import CatGCN, FieldSumGCN, bi_interaction, feature_graph_conv

from conftest import require_dataset


pytestmark = pytest.mark.usefixtures("one_thread")


def small_features(seed=0, n=7):
    """Nodes with 0..5 values over 3 fields, multi-valued field 2 included."""
    rng = np.random.default_rng(seed)
    node, field, value = [], [], []
    for i in range(n):
        for f, nv in enumerate((3, 4, 6)):
            k = 0 if i == 0 else (rng.integers(1, 3) if f == 2 else rng.integers(0, 2))
            for v in rng.choice(nv, size=k, replace=False):
                node.append(i), field.append(f), value.append(int(v))
    return CategoricalFeatures.from_triples(node, field, value, n, [3, 4, 6])


# ----------------------------------------------------------------------------- interactions
def test_bi_interaction_equals_brute_force_pairwise_sum():
    cat = small_features()
    emb = torch.randn(cat.num_entries, 5, dtype=torch.float64)
    out = bi_interaction(emb, cat.row, cat.num_nodes)
    for i in range(cat.num_nodes):
        idx = range(int(cat.indptr[i]), int(cat.indptr[i + 1]))
        ref = sum((emb[j] * emb[k] for j, k in itertools.combinations(idx, 2)), torch.zeros(5, dtype=torch.float64))
        torch.testing.assert_close(out[i], ref)


def test_model_local_interaction_equals_brute_force():
    cat = small_features(1)
    model = CatGCN(cat.num_embeddings, 3, embedding_dim=4)
    table = model.embedding.weight.detach()
    out = model.local_interaction(cat).detach()
    g = cat.global_index
    for i in range(cat.num_nodes):
        vals = g[cat.indptr[i]:cat.indptr[i + 1]].tolist()
        ref = torch.zeros(4)
        for a, b in itertools.combinations(vals, 2):
            ref += table[a] * table[b]
        torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=1e-5)


def dense_feature_graph_reference(E, probe):
    """The paper's artificial feature graph of one node, built densely: P' = 11^T + probe*I (every
    value linked to every value, itself included, plus the diagonal probe), then
    Q^-1/2 P' Q^-1/2 with Q the degree matrix (CatGCN, TKDE 2021, Sec. IV-B)."""
    m = E.shape[0]
    A = np.ones((m, m)) + probe * np.eye(m)
    d = A.sum(1) ** -0.5
    return (d[:, None] * A * d[None, :]) @ E


def test_feature_graph_reference_by_hand():
    # m = 2 values, probe 1: P' = [[2, 1], [1, 2]], degrees 3 -> rows (2e1 + e2)/3, (e1 + 2e2)/3
    E = np.array([[3.0, 0.0], [0.0, 6.0]])
    np.testing.assert_allclose(dense_feature_graph_reference(E, 1.0), [[2.0, 2.0], [1.0, 4.0]])


@pytest.mark.parametrize("probe", [1.0, 3.0, 0.5])
def test_feature_graph_conv_equals_dense_reference(probe):
    cat = small_features(2)
    emb = torch.randn(cat.num_entries, 3, dtype=torch.float64)
    out = feature_graph_conv(emb, cat.row, cat.counts(), probe)
    for i in range(cat.num_nodes):
        lo, hi = int(cat.indptr[i]), int(cat.indptr[i + 1])
        if hi > lo:
            ref = dense_feature_graph_reference(emb[lo:hi].numpy(), probe)
            np.testing.assert_allclose(out[lo:hi].numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("probe", [1.0, 4.0])
def test_model_global_interaction_equals_dense_reference(probe):
    cat = small_features(3)
    model = CatGCN(cat.num_embeddings, 3, embedding_dim=4, probe=probe).eval()
    table = model.embedding.weight.detach().double().numpy()
    W = model.feature_conv.weight.detach().double().numpy()
    b = model.feature_conv.bias.detach().double().numpy()
    out = model.global_interaction(cat).detach().numpy()
    g = cat.global_index.numpy()
    for i in range(cat.num_nodes):
        lo, hi = int(cat.indptr[i]), int(cat.indptr[i + 1])
        if hi == lo:
            np.testing.assert_allclose(out[i], 0.0)
            continue
        conv = dense_feature_graph_reference(table[g[lo:hi]], probe) @ W.T + b
        np.testing.assert_allclose(out[i], np.maximum(conv, 0).mean(0), rtol=1e-4, atol=1e-5)


def test_global_interaction_is_not_a_function_of_the_mean_at_the_default_probe():
    """With the default probe (1) the values of a node keep distinct representations, so the
    global branch is not an MLP of the node's mean embedding (the defect of the old
    11^T - I + probe*I graph, which gave every value the mean at probe 1).  Hand-computed."""
    cat = CategoricalFeatures.from_triples([0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 1, 1], 2, [2, 2])
    model = CatGCN(cat.num_embeddings, 2, embedding_dim=2).eval()
    with torch.no_grad():  # value rows: field0={0,1} -> 0,1; field1={0,1} -> 2,3; node 0 = {0, 2}, node 1 = {1, 3}
        model.embedding.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]))
        model.feature_conv.weight.copy_(torch.eye(2))
        model.feature_conv.bias.zero_()
    assert model.probe == 1.0
    with torch.no_grad():
        model.feature_conv.bias.copy_(torch.tensor([-0.6, 0.0]))
    out = model.global_interaction(cat)
    # node 0: rows (e0 + e2 + e0)/3 = (2/3, 1/3), (e0 + e2 + e2)/3 = (1/3, 2/3); ReLU(x - 0.6 in dim 0)
    np.testing.assert_allclose(out.detach().numpy(), [[(2 / 3 - 0.6) / 2, 0.5], [(2 / 3 - 0.6) / 2, 0.5]], atol=1e-6)
    # the old graph gave every value the node mean (0.5, 0.5) -> ReLU(0.5 - 0.6) = 0 in dim 0
    assert out[0, 0] > 0


def test_global_dropout_acts_per_value():
    cat = small_features(4)
    model = CatGCN(cat.num_embeddings, 3, embedding_dim=64, dropout=0.5).train()
    torch.manual_seed(0)
    out = model.global_interaction(cat)
    m = cat.counts()
    # a node with several values: per-value dropout leaves pooled entries that are not 0 and not
    # 2x the eval-mode value for every coordinate (pooled dropout would give only those two)
    model.eval()
    ref = model.global_interaction(cat)
    i = int(torch.nonzero(m >= 3)[0])
    ratio = (out[i] / ref[i])[ref[i] > 1e-6]
    assert ((ratio - 0).abs() > 1e-4).logical_and((ratio - 2).abs() > 1e-4).any()


def test_catgcn_forward_shapes_ablations_and_errors():
    ds = make_categorical_graph(num_nodes=200, num_fields=4, values_per_field=5, seed=1)
    for kw in ({}, {"local": False}, {"global_": False}, {"propagation": "appnp", "num_hops": 3}):
        model = CatGCN(ds.num_features, ds.num_classes, embedding_dim=8, hidden_channels=8, **kw)
        out = model(ds.categorical, ds.graph)
        assert out.shape == (200, 2) and torch.isfinite(out).all()
    with pytest.raises(ConfigError):
        CatGCN(10, 2, local=False, global_=False)
    with pytest.raises(ConfigError):
        CatGCN(10, 2, propagation="gat")
    with pytest.raises(ConfigError):
        CatGCN(ds.num_features, 2)(torch.zeros(200, 3), ds.graph)


def test_aggregation_is_khop_sym_propagation():
    graph = Graph.from_coo([0, 1, 1, 2], [1, 0, 2, 1], 3)
    model = CatGCN(5, 2, num_hops=2)
    h = torch.randn(3, 2)
    a = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=np.float64)
    d = a.sum(1) ** -0.5
    ahat = d[:, None] * a * d[None, :]
    np.testing.assert_allclose(model.aggregate(h, graph).numpy(), ahat @ ahat @ h.double().numpy(), atol=1e-5)


# ----------------------------------------------------------------------------- container
def test_categorical_features_container():
    cat = CategoricalFeatures.from_triples([1, 0, 1, 1], [0, 1, 1, 1], [2, 0, 1, 1], 3, [3, 2])
    assert cat.num_entries == 3 and cat.counts().tolist() == [1, 2, 0]  # duplicate merged
    assert cat.global_index.tolist() == [3, 2, 4] and cat.num_embeddings == 5
    mh = cat.multi_hot()
    assert mh.tolist() == [[0, 0, 0, 1, 0], [0, 0, 1, 0, 1], [0, 0, 0, 0, 0]]
    assert torch.equal(cat.multi_hot(sparse=True).to_dense(), mh)
    inc, inc_t = cat.incidence()
    assert torch.equal(inc_t.to_dense(), mh.T)
    with pytest.raises(ConfigError):
        CategoricalFeatures([0, 1], [0], [5], [3])
    x = torch.tensor([[1.0, 0, 2], [0, 0, 0]])
    bow = CategoricalFeatures.from_multi_hot(x)
    assert bow.num_fields == 1 and bow.value.tolist() == [0, 2] and bow.counts().tolist() == [2, 0]


# ----------------------------------------------------------------------------- loader
def write_folder(path, edges="uid1,uid2\n0,1\n1,2\n", fields="uid,field,value\n0,0,1\n1,0,0\n1,1,2\n2,1,0\n2,1,1\n",
                 labels="uid,label\n0,0\n1,1\n2,1\n", split=None):
    path.mkdir(parents=True, exist_ok=True)
    (path / "user_edge.csv").write_text(edges)
    (path / "user_field.csv").write_text(fields)
    (path / "user_label.csv").write_text(labels)
    if split is not None:
        (path / "user_split.csv").write_text(split)
    return path


def test_loader_reads_the_documented_layout(tmp_path):
    folder = write_folder(tmp_path / "d", split="uid,split\n0,train\n1,val\n2,test\n")
    ds = load_catgcn(folder)
    assert isinstance(ds, CatGCNData) and ds.num_nodes == 3 and ds.graph.num_edges == 4
    assert ds.categorical.num_values == (2, 3) and ds.categorical.counts().tolist() == [1, 2, 2]
    assert ds.y.tolist() == [0, 1, 1] and ds.num_classes == 2 and ds.split == "file"
    assert ds.train_idx.tolist() == [0] and ds.test_idx.tolist() == [2]
    (folder / "user_split.csv").unlink()
    ds2 = load_catgcn(folder, train_ratio=0.34, val_ratio=0.33, seed=3)
    assert ds2.split == "random" and ds2.split_seed == 3
    assert sorted(torch.cat([ds2.train_idx, ds2.val_idx, ds2.test_idx]).tolist()) == [0, 1, 2]


def test_loader_round_trip_of_generated_data(tmp_path):
    ds = make_categorical_graph(num_nodes=150, num_fields=3, values_per_field=4, seed=2)
    back = load_catgcn(save_catgcn(ds, tmp_path / "gen"))
    assert back.fingerprint == ds.fingerprint
    assert torch.equal(back.categorical.global_index, ds.categorical.global_index)
    assert torch.equal(back.graph.indptr, ds.graph.indptr) and torch.equal(back.graph.indices, ds.graph.indices)


@pytest.mark.parametrize("kind, kwargs, file, line, field", [
    ("token", {"edges": "uid1,uid2\n0,1\n1,x\n"}, "user_edge.csv", 3, "uid2"),
    ("negative", {"fields": "uid,field,value\n0,0,1\n\n1,0,-2\n"}, "user_field.csv", 4, "value"),
    ("columns", {"labels": "uid,label\n0,0\n1,1,5\n"}, "user_label.csv", 3, None),
    ("dup label", {"labels": "uid,label\n0,0\n1,1\n0,1\n"}, "user_label.csv", 4, "uid"),
    ("split name", {"split": "uid,split\n0,train\n1,dev\n"}, "user_split.csv", 3, "split"),
])
def test_loader_errors_name_file_line_and_field(tmp_path, kind, kwargs, file, line, field):
    folder = write_folder(tmp_path / kind.replace(" ", "_"), **kwargs)
    with pytest.raises(DataFormatError) as info:
        load_catgcn(folder)
    err = info.value
    assert err.path.endswith(file) and err.line == line and err.field == field, str(err)
    assert file in str(err) and f"line {line}" in str(err)


def test_loader_missing_file(tmp_path):
    folder = write_folder(tmp_path / "m")
    (folder / "user_label.csv").unlink()
    with pytest.raises(DataNotFoundError, match="user_label.csv"):
        load_catgcn(folder)


# ----------------------------------------------------------------------------- generator
def test_generator_is_seeded_homophilous_and_interaction_driven():
    a = make_categorical_graph(num_nodes=2000, num_fields=5, values_per_field=6, homophily=0.8, seed=4)
    b = make_categorical_graph(num_nodes=2000, num_fields=5, values_per_field=6, homophily=0.8, seed=4)
    assert a.fingerprint == b.fingerprint and torch.equal(a.graph.indices, b.graph.indices)
    assert abs(a.meta["edge_homophily"] - 0.8) < 0.03
    cat, y = a.categorical, a.y.numpy()
    vals = cat.value.view(-1, 5).numpy()
    # the label is a function of the (field 0, field 1) pair ...
    pair = vals[:, 0] * 6 + vals[:, 1]
    purity = sum(np.bincount(y[pair == p]).max() for p in np.unique(pair)) / y.size
    assert purity == 1.0
    # ... while a single field, or an additive model of all fields, predicts it poorly
    single = max(sum(np.bincount(y[vals[:, f] == v]).max() for v in range(6)) / y.size for f in range(5))
    assert single < 0.75, single


def test_categorical_from_planetoid_and_fit_on_cora():
    require_dataset("planetoid", "raw", "ind.cora.x")
    ds = graphkit.datasets.load("cora")
    cat_ds = categorical_from_node_dataset(ds)
    assert cat_ds.categorical.num_entries == int((ds.x != 0).sum()) and cat_ds.fingerprint == ds.fingerprint
    res = graphkit.fit(CatGCN, "cora", epochs=3, progress=False)
    assert res.record["hparams"]["propagation"] == "appnp" and 0 <= res.metrics["accuracy"] <= 1


def test_catgcn_beats_field_sum_gcn_on_interaction_labels():
    ds = make_categorical_graph(num_nodes=1200, num_fields=4, values_per_field=6, homophily=0.7, seed=0)
    kw = dict(epochs=150, patience=50, progress=False, seed=0)
    cat = graphkit.fit(CatGCN, ds, embedding_dim=16, hidden_channels=16, **kw)
    base = graphkit.fit(FieldSumGCN, ds, embedding_dim=16, hidden_channels=16, **kw)
    assert cat.metrics["accuracy"] > base.metrics["accuracy"] + 0.03, (cat.metrics, base.metrics)
