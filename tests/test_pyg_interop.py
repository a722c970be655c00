"""PyG (and scipy / networkx) interop in both directions.

Graph <-> bipartite HeteroData, RecDataset.to_pyg and back through as_dataset, rectangular
``Graph.from_scipy``, ``Graph.from_networkx(return_mapping=, bipartite=)``,
``NodeDataset.from_pyg`` and node models called PyG style, ``model(x, edge_index)``.
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import graphkit
from graphkit import Graph
from graphkit.datasets import NodeDataset, RecDataset, as_dataset, from_interactions, node_dataset_from_pyg
from graphkit.datasets.catgcn import CategoricalFeatures
from graphkit.exceptions import ConfigError, DataFormatError, GraphError
from graphkit.models import DAGNN, GCN
from graphkit.models.catgcn import CatGCN, FieldSumGCN
from graphkit.models.largegt import LargeGT

from conftest import require_dataset

pyg_data = pytest.importorskip("torch_geometric.data")
Data, HeteroData = pyg_data.Data, pyg_data.HeteroData

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- fixtures
def bipartite(weighted: bool = False, seed: int = 0) -> Graph:
    """A bipartite graph with a user (7) and an item (9) that have no interaction."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 7, 40)
    items = rng.integers(0, 9, 40)
    w = rng.random(40).astype(np.float32) + 0.5 if weighted else None
    return Graph.from_user_item(users, items, num_users=8, num_items=10, weights=w)


def same_graph(a: Graph, b: Graph) -> None:
    assert (a.num_nodes, a.num_users, a.num_items) == (b.num_nodes, b.num_users, b.num_items)
    assert torch.equal(a.indptr, b.indptr) and torch.equal(a.indices, b.indices)
    assert (a.edge_weight is None) == (b.edge_weight is None)
    if a.edge_weight is not None:
        assert torch.equal(a.edge_weight, b.edge_weight)


def hetero_of(users, items, n_users, n_items, edge_type=("user", "rates", "item")) -> "HeteroData":
    h = HeteroData()
    h[edge_type[0]].num_nodes = n_users
    h[edge_type[2]].num_nodes = n_items
    h[edge_type].edge_index = torch.as_tensor(np.stack([users, items]), dtype=torch.long)
    return h


def interaction_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    m = rng.random((30, 20)) < 0.3
    m[np.arange(30), np.arange(30) % 20] = True
    u, i = np.nonzero(m)
    return pd.DataFrame({"user": [f"u{k}" for k in u], "item": [f"i{k}" for k in i]})


def planetoid_like(n_per_class: int = 30, classes: int = 3, feat: int = 6, seed: int = 0) -> "Data":
    rng = np.random.default_rng(seed)
    n = n_per_class * classes
    y = np.repeat(np.arange(classes), n_per_class)
    x = rng.normal(size=(n, feat)).astype(np.float32) + np.eye(classes, feat, dtype=np.float32)[y]
    src = rng.integers(0, n, 5 * n)
    dst = np.where(rng.random(5 * n) < 0.8, y[src] * n_per_class + rng.integers(0, n_per_class, 5 * n),
                   rng.integers(0, n, 5 * n))
    perm = rng.permutation(n)
    masks = {}
    for key, part in (("train_mask", perm[:15]), ("val_mask", perm[15:35]), ("test_mask", perm[35:70])):
        m = torch.zeros(n, dtype=torch.bool)
        m[torch.from_numpy(part)] = True
        masks[key] = m
    return Data(x=torch.from_numpy(x), y=torch.from_numpy(y), edge_index=torch.from_numpy(np.stack([src, dst])),
                **masks)


def undirected_edge_index(n: int = 40, e: int = 120, seed: int = 0, weighted: bool = False):
    """A random undirected edge_index (both directions, symmetric weights) without self-loops or
    duplicates (graphkit merges duplicate edges, PyG's layers count them twice)."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n, e), rng.integers(0, n, e)
    pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], 1)[a != b], axis=0)  # no duplicates
    a, b = pairs[:, 0], pairs[:, 1]
    ei = torch.from_numpy(np.stack([np.concatenate([a, b]), np.concatenate([b, a])]))
    if not weighted:
        return ei, None
    w = torch.from_numpy(rng.random(a.shape[0]).astype(np.float32) + 0.5)
    return ei, torch.cat([w, w])


# ----------------------------------------------------------------------------- Graph <-> HeteroData
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_graph_hetero_round_trip_is_identical(weighted, reverse):
    g = bipartite(weighted)
    h = g.to_pyg(hetero=True, reverse=reverse)
    assert isinstance(h, HeteroData)
    et = ("user", "to", "item")
    assert h["user"].num_nodes == 8 and h["item"].num_nodes == 10  # user 7 / item 9 have no edge
    R = g.user_item_matrix().tocoo()
    assert sorted(zip(*h[et].edge_index.tolist())) == sorted(zip(R.row.tolist(), R.col.tolist()))
    assert ("edge_weight" in h[et]) == weighted
    assert set(h.edge_types) == ({et, ("item", "rev_to", "user")} if reverse else {et})
    same_graph(Graph.from_pyg(h), g)
    # the default is unchanged: a Data over all N nodes
    d = g.to_pyg()
    assert isinstance(d, Data) and d.num_nodes == 18 and torch.equal(d.edge_index, g.to_edge_index()[0])


def test_hetero_custom_names_and_node_type_order():
    g = bipartite()
    h = g.to_pyg(hetero=("viewer", "watched", "movie"))
    assert set(h.node_types) == {"viewer", "movie"} and h.edge_types == [("viewer", "watched", "movie")]
    same_graph(Graph.from_pyg(h), g)
    # users are the edge type's source, whatever order the node types were created in
    R = g.user_item_matrix().tocoo()
    h2 = HeteroData()
    h2["movie"].num_nodes = 10
    h2["viewer"].num_nodes = 8
    h2["viewer", "watched", "movie"].edge_index = torch.from_numpy(np.stack([R.row, R.col]).astype(np.int64))
    same_graph(Graph.from_pyg(h2), g)


def test_from_pyg_hetero_matches_from_user_item_and_pyg_to_undirected():
    import torch_geometric.transforms as T

    rng = np.random.default_rng(3)
    u, i = rng.integers(0, 5, 30), rng.integers(0, 6, 30)
    w = rng.random(30).astype(np.float32)
    h = hetero_of(u, i, 6, 7)
    h["user", "rates", "item"].edge_weight = torch.from_numpy(w)
    ref = Graph.from_user_item(u, i, num_users=6, num_items=7, weights=w)  # duplicates summed
    same_graph(Graph.from_pyg(h), ref)
    und = T.ToUndirected()(h)  # adds ("item", "rev_rates", "user") with the weights
    assert ("item", "rev_rates", "user") in und.edge_types
    same_graph(Graph.from_pyg(und), ref)
    # a 1-D edge_attr counts as weights, as for Data
    h2 = hetero_of(u, i, 6, 7)
    h2["user", "rates", "item"].edge_attr = torch.from_numpy(w)
    same_graph(Graph.from_pyg(h2), ref)


def test_from_pyg_hetero_errors():
    u, i = np.array([0, 1, 2]), np.array([1, 0, 3])
    h = hetero_of(u, i, 3, 4)
    h["item", "rev_rates", "user"].edge_index = torch.tensor([[1, 0], [0, 1]])  # pair (2, 3) missing
    with pytest.raises(DataFormatError, match="not the reverse") as exc:
        Graph.from_pyg(h)
    assert exc.value.field == "('item', 'rev_rates', 'user').edge_index"
    h = hetero_of(u, i, 3, 4)
    h["user", "rates", "item"].edge_weight = torch.tensor([1.0, 2.0, 3.0])
    h["item", "rev_rates", "user"].edge_index = torch.tensor([[1, 0, 3], [0, 1, 2]])
    h["item", "rev_rates", "user"].edge_weight = torch.tensor([1.0, 2.0, 5.0])
    with pytest.raises(DataFormatError, match="other weights") as exc:
        Graph.from_pyg(h)
    assert exc.value.got == 5.0
    h = hetero_of(u, i, 3, 4)
    h["user", "likes", "item"].edge_index = torch.tensor([[0], [0]])
    with pytest.raises(ConfigError, match="edge_type="):
        Graph.from_pyg(h)
    with pytest.raises(ConfigError, match="one user-item relation"):
        Graph.from_pyg(h, edge_type=("user", "rates", "item"))
    h = hetero_of(u, i, 3, 4)
    h["tag"].num_nodes = 2
    with pytest.raises(DataFormatError, match="node_types"):
        Graph.from_pyg(h)
    h = hetero_of(u, i, 3, 2)
    with pytest.raises(DataFormatError, match="out of range") as exc:
        Graph.from_pyg(h)
    assert exc.value.got == 3 and "[0, 2)" in exc.value.expected
    h = hetero_of(u, i, 3, 4)
    h["user", "rates", "item"].edge_weight = torch.ones(2)
    with pytest.raises(DataFormatError, match="one weight per edge"):
        Graph.from_pyg(h)
    with pytest.raises(ConfigError, match="HeteroData"):
        Graph.from_pyg(bipartite().to_pyg(), edge_type=("user", "to", "item"))


def test_to_pyg_hetero_errors():
    with pytest.raises(GraphError, match="bipartite"):
        Graph.from_edge_index(torch.tensor([[0, 1], [1, 0]])).to_pyg(hetero=True)
    one_way = Graph.from_coo([0, 1], [2, 3], 4, num_users=2, num_items=2)  # user -> item only
    with pytest.raises(GraphError, match="symmetric bipartite form"):
        one_way.to_pyg(hetero=True)
    inner = Graph.from_coo([0, 1, 0, 2, 2, 0], [1, 0, 2, 0, 3, 3], 4, num_users=2, num_items=2)
    with pytest.raises(GraphError, match="joins two users"):
        inner.to_pyg(hetero=True)
    g = bipartite()
    for bad in (("user", "to"), ("user", "to", "user"), ("user", 3, "item"), "user"):
        with pytest.raises(ConfigError, match="edge type"):
            g.to_pyg(hetero=bad)
    with pytest.raises(ConfigError, match="hetero=True"):
        g.to_pyg(reverse=True)
    with pytest.raises(ConfigError, match="stores"):
        g.to_pyg(hetero=True, x=torch.ones(18, 2))


# ----------------------------------------------------------------------------- RecDataset.to_pyg
def test_rec_dataset_to_pyg_carries_the_split_and_reads_back():
    ds = from_interactions(interaction_frame(), seed=5)
    h = ds.to_pyg()
    et = ("user", "to", "item")
    assert h["user"].num_nodes == ds.num_users and h["item"].num_nodes == ds.num_items
    for key, part in (("edge_index", "train"), ("val_edge_index", "valid"), ("test_edge_index", "test")):
        u, i = ds.interactions(part)
        assert torch.equal(h[et][key], torch.from_numpy(np.stack([u, i])))
    same_graph(Graph.from_pyg(h), ds.graph())
    for obj in (h, ds.to_pyg(("viewer", "saw", "movie"), reverse=True)):
        back = as_dataset(obj)
        assert isinstance(back, RecDataset) and back.fingerprint == ds.fingerprint
        assert back.meta["split"] == "given" and back.split_record()["fingerprint"] == ds.fingerprint
        for part in ("train", "valid", "test", "full_train"):
            assert (getattr(back, part) != getattr(ds, part)).nnz == 0
    # split="random" still draws the standardized split from edge_index (the training pairs)
    redrawn = as_dataset(h, split="random", seed=5)
    assert redrawn.meta["split"] == "random" and redrawn.num_interactions["train"] < ds.num_interactions["train"]


def test_rec_dataset_to_pyg_feeds_fit():
    ds = from_interactions(interaction_frame(), seed=5)
    res = graphkit.fit("lightgcn", ds.to_pyg(), epochs=1, progress=False, preset=False, embedding_dim=8,
                       batch_size=256)
    assert res.record["fingerprint"] == ds.fingerprint


def test_rec_dataset_to_pyg_link_split_triple():
    ds = from_interactions(interaction_frame(), seed=5)
    triple = ds.to_pyg(link_split=True)
    assert isinstance(triple, tuple) and len(triple) == 3
    et = ("user", "to", "item")
    train_u, train_i = ds.interactions("train")
    for data, part in zip(triple, ("train", "valid", "test")):
        assert torch.equal(data[et].edge_index, torch.from_numpy(np.stack([train_u, train_i])))
        u, i = ds.interactions(part)
        assert torch.equal(data[et].edge_label_index, torch.from_numpy(np.stack([u, i])))
        assert data[et].edge_label.dtype == torch.float32 and bool((data[et].edge_label == 1).all())
        assert data[et].edge_label.shape[0] == u.shape[0]


def test_rec_dataset_from_hetero_split_attribute_errors():
    ds = from_interactions(interaction_frame(), seed=5)
    et = ("user", "to", "item")
    h = ds.to_pyg()
    del h[et].test_edge_index
    with pytest.raises(DataFormatError, match="test_edge_index") as exc:
        as_dataset(h)
    assert exc.value.field == f"{et}.test_edge_index"
    with pytest.raises(DataFormatError, match="val_edge_index"):
        as_dataset(bipartite().to_pyg(hetero=True), split="given")
    h = ds.to_pyg()
    h[et].val_edge_index = torch.tensor([[0], [ds.num_items]])
    with pytest.raises(DataFormatError, match="out of range") as exc:
        as_dataset(h)
    assert exc.value.field == f"{et}.val_edge_index" and exc.value.got == ds.num_items
    with pytest.raises(ConfigError, match="edge type"):
        ds.to_pyg(("user", "to", "user"))


def test_ml1m_to_pyg_round_trip():
    require_dataset("ml-1m", "train.txt")
    require_dataset("ml-1m", "test.txt")
    ds = graphkit.datasets.load("ml-1m")
    h = ds.to_pyg()
    assert h["user"].num_nodes == ds.num_users and h["item"].num_nodes == ds.num_items
    assert as_dataset(h).fingerprint == ds.fingerprint
    same_graph(Graph.from_pyg(h), ds.graph())


# ----------------------------------------------------------------------------- from_scipy
@pytest.mark.parametrize("fmt", ["csr", "coo", "csc", "sparray"])
def test_from_scipy_rectangular_is_the_bipartite_graph(fmt):
    rng = np.random.default_rng(1)
    R = sp.random(6, 4, density=0.4, format="csr", random_state=2, dtype=np.float64)
    R.data[:] = rng.integers(1, 4, R.nnz)
    mat = sp.csr_array(R) if fmt == "sparray" else R.asformat(fmt)
    g = Graph.from_scipy(mat)
    coo = R.tocoo()
    ref = Graph.from_user_item(coo.row, coo.col, num_users=6, num_items=4, weights=coo.data)
    same_graph(g, ref)
    np.testing.assert_array_equal(g.user_item_matrix().toarray(), R.toarray())
    same_graph(Graph.from_scipy(g.user_item_matrix()), g)
    # binary: no weights; explicit sizes that agree are fine
    ones = (R > 0).astype(np.float32)
    assert Graph.from_scipy(ones, num_users=6, num_items=4).edge_weight is None


def test_from_scipy_square_keeps_its_meaning_unless_bipartite():
    A = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 0, 0]], dtype=np.float32))
    g = Graph.from_scipy(A)
    assert g.num_nodes == 3 and not g.is_bipartite
    np.testing.assert_array_equal(g.to_scipy().toarray(), A.toarray())
    b = Graph.from_scipy(A, bipartite=True)
    assert (b.num_users, b.num_items, b.num_nodes) == (3, 3, 6)
    np.testing.assert_array_equal(b.user_item_matrix().toarray(), A.toarray())


def test_from_scipy_errors():
    R = sp.random(3, 4, density=0.5, format="csr", random_state=0)
    with pytest.raises(GraphError, match="square"):
        Graph.from_scipy(R, bipartite=False)
    with pytest.raises(GraphError, match="num_users = 2 does not match"):
        Graph.from_scipy(R, num_users=2, num_items=4)
    with pytest.raises(GraphError, match="num_items = 5 does not match"):
        Graph.from_scipy(R, num_items=5)
    with pytest.raises(GraphError, match="bipartite must be"):
        Graph.from_scipy(R, bipartite="yes")
    bad = R.copy()
    bad.data[0] = np.nan
    with pytest.raises(GraphError, match="finite"):
        Graph.from_scipy(bad)


# ----------------------------------------------------------------------------- from_networkx
def test_from_networkx_returns_the_label_mapping():
    G = nx.Graph()
    G.add_edge("carol", "alice", w=2.0)
    G.add_edge("alice", "bob", w=3.0)
    G.add_node("dave")
    g, mapping = Graph.from_networkx(G, weight="w", return_mapping=True)
    assert mapping == {"carol": 0, "alice": 1, "bob": 2, "dave": 3}
    A = g.to_scipy().toarray()
    for a, b, d in G.edges(data=True):
        assert A[mapping[a], mapping[b]] == A[mapping[b], mapping[a]] == d["w"]
    assert A.sum() == 10.0
    assert isinstance(Graph.from_networkx(G), Graph)  # default unchanged: the graph alone
    D = nx.DiGraph([((0, 1), "x"), ("x", (0, 1))])
    g, mapping = Graph.from_networkx(D, return_mapping=True)
    assert mapping == {(0, 1): 0, "x": 1} and g.num_edges == 2


def test_from_networkx_bipartite():
    G = nx.Graph()
    G.add_nodes_from(["i1", "i2", "i3"], bipartite=1)  # items first: users are still numbered first
    G.add_nodes_from(["u1", "u2"], bipartite=0)
    G.add_edges_from([("u1", "i1"), ("i2", "u1"), ("u2", "i3")])
    g, mapping = Graph.from_networkx(G, return_mapping=True, bipartite=True)
    assert (g.num_users, g.num_items) == (2, 3)
    assert mapping == {"u1": 0, "u2": 1, "i1": 2, "i2": 3, "i3": 4}
    np.testing.assert_array_equal(g.user_item_matrix().toarray(), [[1, 1, 0], [0, 0, 1]])
    # networkx's own generators set the attribute; to_networkx of a bipartite graph too
    kb = Graph.from_networkx(nx.complete_bipartite_graph(2, 3), bipartite=True)
    assert kb.user_item_matrix().toarray().sum() == 6
    g = bipartite(weighted=True)
    same_graph(Graph.from_networkx(g.to_networkx(), weight="weight", bipartite=True), g)


def test_from_networkx_bipartite_errors():
    G = nx.Graph()
    G.add_node("u", bipartite=0)
    G.add_node("v")
    with pytest.raises(GraphError, match="'v' has bipartite=None"):
        Graph.from_networkx(G, bipartite=True)
    G = nx.Graph()
    G.add_nodes_from(["u1", "u2"], bipartite=0)
    G.add_edge("u1", "u2")
    with pytest.raises(GraphError, match="joins two users"):
        Graph.from_networkx(G, bipartite=True)
    with pytest.raises(GraphError, match="undirected"):
        Graph.from_networkx(nx.DiGraph(G), bipartite=True)


# ----------------------------------------------------------------------------- NodeDataset.from_pyg
def test_node_dataset_from_pyg_is_node_dataset_from_pyg():
    data = planetoid_like()
    ds = NodeDataset.from_pyg(data, name="tiny")
    ref = node_dataset_from_pyg(data, name="tiny")
    assert isinstance(ds, NodeDataset) and ds.split == "masks" and ds.name == "tiny"
    assert ds.fingerprint == ref.fingerprint == as_dataset(data).fingerprint
    np.testing.assert_array_equal(ds.train_idx.numpy(), np.flatnonzero(data.train_mask.numpy()))
    rnd = NodeDataset.from_pyg(data, split="random", seed=2, num_train_per_class=5, num_val=10, num_test=20)
    assert rnd.fingerprint == node_dataset_from_pyg(data, split="random", seed=2, num_train_per_class=5,
                                                    num_val=10, num_test=20).fingerprint
    # and back: to_pyg -> from_pyg keeps split, graph and features
    again = NodeDataset.from_pyg(ds.to_pyg())
    assert again.fingerprint == ds.fingerprint
    assert torch.equal(again.graph.indices, ds.graph.indices) and torch.equal(again.x, ds.x)


def test_node_dataset_from_pyg_errors():
    data = planetoid_like()
    del data["x"]
    with pytest.raises(DataFormatError, match="field 'x'") as exc:
        NodeDataset.from_pyg(data)
    assert "[N, F]" in exc.value.expected
    data = planetoid_like()
    data.train_mask = data.train_mask[:-3]
    with pytest.raises(DataFormatError, match="field 'train_mask'") as exc:
        NodeDataset.from_pyg(data)
    assert "[90]" in exc.value.expected and "(87,)" in exc.value.got
    data = planetoid_like()
    del data["test_mask"]
    with pytest.raises(DataFormatError, match="test_mask"):
        NodeDataset.from_pyg(data, split="masks")
    with pytest.raises(ConfigError, match="unexpected option.*'num_train'"):
        NodeDataset.from_pyg(planetoid_like(), num_train=3)
    with pytest.raises(DataFormatError, match="expects a torch_geometric Data"):
        NodeDataset.from_pyg(bipartite().to_pyg(hetero=True))


def test_cora_to_pyg_from_pyg_same_fingerprint():
    for suffix in ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index"):
        require_dataset("planetoid", "raw", f"ind.cora.{suffix}")
    cora = graphkit.datasets.load("cora")
    back = NodeDataset.from_pyg(cora.to_pyg(), name="cora")
    assert back.fingerprint == cora.fingerprint
    assert torch.equal(back.graph.indptr, cora.graph.indptr) and torch.equal(back.graph.indices, cora.graph.indices)
    assert torch.equal(back.x, cora.x) and back.num_classes == cora.num_classes


# ----------------------------------------------------------------------------- model(x, edge_index)
@pytest.mark.parametrize("weighted", [False, True])
def test_gcn_takes_edge_index_like_pyg(weighted):
    from torch_geometric.nn import GCNConv as PygGCNConv

    ei, w = undirected_edge_index(weighted=weighted)
    x = torch.randn(40, 5)
    torch.manual_seed(0)
    model = GCN(5, 3, hidden_channels=8).eval()
    out = model(x, ei, w)
    torch.testing.assert_close(out, model(x, Graph.from_edge_index(ei, 40, w)), atol=0, rtol=0)
    c1, c2 = PygGCNConv(5, 8), PygGCNConv(8, 3)
    with torch.no_grad():
        for ours, ref in zip(model.convs, (c1, c2)):
            ref.lin.weight.copy_(ours.lin.weight)
            ref.bias.copy_(torch.randn(ref.bias.shape))
            ours.bias.copy_(ref.bias)
    torch.testing.assert_close(model(x, ei, w), c2(torch.relu(c1(x, ei, w)), ei, w), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.embed(x, ei, w), torch.relu(c1(x, ei, w)), atol=1e-5, rtol=1e-5)


def test_a_directed_edge_index_flows_from_source_to_target_as_in_pyg():
    from torch_geometric.nn import GCNConv as PygGCNConv

    g = torch.Generator().manual_seed(3)
    ei = torch.randint(0, 30, (2, 90), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    ei = torch.unique(ei, dim=1)  # PyG counts duplicate edges twice, graphkit merges them
    x = torch.randn(30, 4, generator=g)
    model = GCN(4, 2, hidden_channels=6, num_layers=1).eval()
    ref = PygGCNConv(4, 2)
    with torch.no_grad():
        ref.lin.weight.copy_(model.convs[0].lin.weight)
        ref.bias.copy_(model.convs[0].bias)
    torch.testing.assert_close(model(x, ei), ref(x, ei), atol=1e-5, rtol=1e-5)


def test_edge_index_graph_is_cached_and_invalidated(monkeypatch):
    ei, _ = undirected_edge_index()
    x = torch.randn(40, 5)
    model = GCN(5, 3).eval()
    built = []
    real = Graph.from_edge_index.__func__

    def counting(cls, *args, **kwargs):
        built.append(1)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(Graph, "from_edge_index", classmethod(counting))
    first = model(x, ei)
    model(x, ei)
    model.train()(x, ei)
    assert len(built) == 1
    model.eval()
    model(x, ei.clone())  # another tensor: rebuilt
    assert len(built) == 2
    ei2 = ei.clone()
    model(x, ei2)
    ei2[:, :] = ei2.flip(1)  # in place: same memory, new version -> rebuilt
    model(x, ei2)
    assert len(built) == 4
    model(torch.randn(41, 5), ei2)  # another node count
    assert len(built) == 5
    torch.testing.assert_close(model(x, ei), first)


def test_dagnn_takes_edge_index():
    ei, w = undirected_edge_index(seed=1, weighted=True)
    x = torch.randn(40, 5)
    torch.manual_seed(0)
    model = DAGNN(5, 3, hidden_channels=8, K=4).eval()
    g = Graph.from_edge_index(ei, 40, w)
    torch.testing.assert_close(model(x, ei, w), model(x, g), atol=0, rtol=0)
    torch.testing.assert_close(model.retainment_scores(x, ei, w), model.retainment_scores(x, g), atol=0, rtol=0)
    # an independent reference: the MLP, then K hops of PyG's gcn_norm operator, weighed by the scores
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    ei_n, w_n = gcn_norm(ei, w, 40, add_self_loops=True)
    A = torch.zeros(40, 40).index_put_((ei_n[1], ei_n[0]), w_n, accumulate=True)
    with torch.no_grad():
        z = model.mlp(x)
        hops = [z]
        for _ in range(4):
            hops.append(A @ hops[-1])
        stack = torch.stack(hops, 1)
        s = torch.sigmoid(stack @ model.prop.weight + model.prop.bias)
        ref = torch.log_softmax((s.unsqueeze(-1) * stack).sum(1), -1)
    torch.testing.assert_close(model(x, ei, w), ref, atol=1e-5, rtol=1e-5)


def test_largegt_and_catgcn_take_edge_index():
    ei, _ = undirected_edge_index(n=30, e=80, seed=2)
    g = Graph.from_edge_index(ei, 30)
    x = torch.randn(30, 4)
    torch.manual_seed(0)
    lgt = LargeGT(4, 3, hidden_channels=8, num_tokens=4, num_centroids=4, global_dim=4, heads=2, dropout=0.0).eval()
    torch.testing.assert_close(lgt(x, ei), lgt(x, g), atol=0, rtol=0)
    cat = CategoricalFeatures.from_multi_hot((torch.rand(30, 6) < 0.4).float())
    for model in (CatGCN(cat.num_embeddings, 3, embedding_dim=4).eval(),
                  FieldSumGCN(cat.num_embeddings, 3, embedding_dim=4, hidden_channels=4).eval()):
        torch.testing.assert_close(model(cat, ei), model(cat, g), atol=0, rtol=0)


def test_model_edge_index_errors():
    model = GCN(5, 3).eval()
    x = torch.randn(10, 5)
    ei = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ConfigError, match=r"edge_index \(an integer tensor of shape \[2, E\]\).*float32"):
        model(x, ei.float())
    with pytest.raises(ConfigError, match=r"shape \(3, 2\)"):
        model(x, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ConfigError, match="got a list"):
        model(x, [[0, 1], [1, 0]])
    with pytest.raises(GraphError, match="target id 12 at position 1 is out of range for 10 nodes"):
        model(x, torch.tensor([[0, 1], [1, 12]]))
    with pytest.raises(ConfigError, match="carries its own weights"):
        model(x, Graph.from_edge_index(ei, 10), torch.ones(2))
    with pytest.raises(ConfigError, match="detach"):
        model(x, ei, torch.ones(2, requires_grad=True))
    with pytest.raises(GraphError, match="edge_weight must have shape"):
        model(x, ei, torch.ones(3))
