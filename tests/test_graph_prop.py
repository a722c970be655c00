"""Graph property prediction: batching, GIN/GCN layers against independent references,
evaluator wiring, the graph-level task in the engine, the bench on OGB molecule sets."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import graphkit
from graphkit.datasets.graph_collection import GraphCollection
from graphkit.exceptions import CheckpointError, ConfigError, DataFormatError
from graphkit.models.gcn_graph import GCNGraph, MolGCNConv
from graphkit.models.gin import GIN, GINConv
from graphkit.models.graph_level import ATOM_FEATURE_DIMS, BOND_FEATURE_DIMS, global_pool

DATA = Path(os.environ.get("GRAPHKIT_DATA", "")) / "ogb" / "ogbg_molesol"
needs_ogb = pytest.mark.skipif(not (DATA / "raw" / "edge.csv.gz").is_file(),
                               reason="OGB molecule files not found under $GRAPHKIT_DATA/ogb")


def random_molecules(n_graphs: int, seed: int = 0, max_nodes: int = 7, tasks: int = 1, regression: bool = False):
    """PyG ``Data`` molecules with OGB-style categorical atom/bond codes (undirected edges)."""
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n_graphs):
        n = int(torch.randint(1, max_nodes + 1, (1,), generator=g))
        x = torch.stack([torch.randint(0, d, (n,), generator=g) for d in ATOM_FEATURE_DIMS], 1)
        pairs = [(a, b) for a in range(n) for b in range(a + 1, n) if torch.rand(1, generator=g) < 0.5]
        ei = torch.tensor([[a for a, b in pairs] + [b for a, b in pairs],
                           [b for a, b in pairs] + [a for a, b in pairs]], dtype=torch.long).reshape(2, -1)
        half = torch.stack([torch.randint(0, d, (len(pairs),), generator=g) for d in BOND_FEATURE_DIMS], 1)
        ea = torch.cat([half, half]).reshape(-1, len(BOND_FEATURE_DIMS))
        y = torch.randn(1, tasks, generator=g) if regression else (torch.rand(1, tasks, generator=g) < 0.5).float()
        out.append(Data(x=x, edge_index=ei, edge_attr=ea, y=y, num_nodes=n))
    return out


def test_feature_dims_match_ogb():
    from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims

    assert list(ATOM_FEATURE_DIMS) == get_atom_feature_dims()
    assert list(BOND_FEATURE_DIMS) == get_bond_feature_dims()


# ----------------------------------------------------------------------------- batching
def test_batch_equals_pyg_batch():
    from torch_geometric.data import Batch

    graphs = random_molecules(20, seed=1)
    col = GraphCollection.from_data_list(graphs)
    ids = torch.tensor([5, 0, 19, 7, 7, 3])
    b = col.batch(ids)
    ref = Batch.from_data_list([graphs[i] for i in ids.tolist()])
    assert torch.equal(b.x, ref.x)
    assert torch.equal(b.edge_index, ref.edge_index)
    assert torch.equal(b.edge_attr, ref.edge_attr)
    assert torch.equal(b.batch, ref.batch)
    assert torch.equal(b.node_ptr, ref.ptr)
    assert torch.equal(b.y, ref.y)
    assert b.num_graphs == 6


@pytest.mark.parametrize("cls", [GIN, GCNGraph])
@pytest.mark.parametrize("virtual_node", [False, True])
def test_batched_forward_equals_per_graph_loop(cls, virtual_node):
    torch.manual_seed(0)
    graphs = random_molecules(12, seed=2)
    col = GraphCollection.from_data_list(graphs)
    model = cls(num_tasks=2, num_layers=3, emb_dim=16, virtual_node=virtual_node).eval()
    batched = model(col.batch(torch.arange(12)))
    singles = torch.cat([model(col.batch(torch.tensor([i]))) for i in range(12)])
    assert torch.allclose(batched, singles, atol=1e-5)


def test_collection_rejects_edges_outside_their_graph():
    graphs = random_molecules(3, seed=3, max_nodes=4)
    col = GraphCollection.from_data_list(graphs)
    bad = col.edge_index.clone()
    bad[0, -1] = 10
    with pytest.raises(DataFormatError, match="outside the graph"):
        GraphCollection(col.x, bad, col.edge_attr, col.y, col.node_ptr, col.edge_ptr)
    with pytest.raises(DataFormatError, match="node_ptr"):
        GraphCollection(col.x, col.edge_index, col.edge_attr, col.y, col.node_ptr[:-1] * 0, col.edge_ptr)
    with pytest.raises(ConfigError, match="graph ids"):
        col.batch([0, 3])


# ----------------------------------------------------------------------------- layers vs references
def test_gin_conv_equals_pyg_gineconv():
    from torch_geometric.nn import GINEConv

    torch.manual_seed(0)
    graphs = random_molecules(6, seed=4)
    b = GraphCollection.from_data_list(graphs).batch(torch.arange(6))
    ours = GINConv(8).eval()
    with torch.no_grad():
        ours.eps.fill_(0.3)
    ref = GINEConv(ours.mlp, train_eps=True).eval()
    with torch.no_grad():
        ref.eps.fill_(0.3)
    h = torch.randn(b.num_nodes, 8)
    e = ours.edge_encoder(b.edge_attr)
    assert torch.allclose(ours(h, b.edge_index, b.edge_attr), ref(h, b.edge_index, e), atol=1e-5)


def test_gcn_conv_equals_dense_numpy():
    torch.manual_seed(0)
    graphs = random_molecules(4, seed=5)
    b = GraphCollection.from_data_list(graphs).batch(torch.arange(4))
    conv = MolGCNConv(5).eval()
    h = torch.randn(b.num_nodes, 5)
    out = conv(h, b.edge_index, b.edge_attr).detach().numpy()
    W, bias = conv.linear.weight.detach().numpy(), conv.linear.bias.detach().numpy()
    root = conv.root_emb.weight.detach().numpy()[0]
    E = conv.edge_encoder(b.edge_attr).detach().numpy()
    xw = h.numpy() @ W.T + bias
    n = b.num_nodes
    deg = np.zeros(n)
    for s in b.edge_index[0].tolist():
        deg[s] += 1
    deg += 1
    ref = np.maximum(xw + root, 0) / deg[:, None]
    for k, (s, t) in enumerate(b.edge_index.t().tolist()):
        ref[t] += np.maximum(xw[s] + E[k], 0) / math.sqrt(deg[s] * deg[t])
    assert np.allclose(out, ref, atol=1e-5)


def test_pooling_and_virtual_node_match_hand_computation():
    h = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    batch = torch.tensor([0, 0, 2])
    assert torch.equal(global_pool(h, batch, 3, "sum"), torch.tensor([[4.0, 6.0], [0.0, 0.0], [5.0, 6.0]]))
    assert torch.equal(global_pool(h, batch, 3, "mean"), torch.tensor([[2.0, 3.0], [0.0, 0.0], [5.0, 6.0]]))
    # the virtual node starts at zero: one layer with it equals one layer without it
    torch.manual_seed(0)
    graphs = random_molecules(4, seed=6)
    b = GraphCollection.from_data_list(graphs).batch(torch.arange(4))
    a = GIN(1, num_layers=1, emb_dim=8, virtual_node=True).eval()
    plain = GIN(1, num_layers=1, emb_dim=8, virtual_node=False).eval()
    plain.load_state_dict({k: v for k, v in a.state_dict().items() if "vn_" not in k})
    assert torch.allclose(a(b), plain(b), atol=1e-6)


# ----------------------------------------------------------------------------- evaluator wiring
def test_own_metrics_follow_ogb_definitions():
    from ogb.graphproppred import Evaluator

    from graphkit.training.graph import _own_metric

    rng = np.random.default_rng(0)
    y = (rng.random((40, 3)) < 0.4).astype(float)
    y[rng.random((40, 3)) < 0.2] = np.nan
    p = rng.normal(size=(40, 3))
    ogb = Evaluator("ogbg-moltox21")  # rocauc, 12 tasks: only the definitions are shared
    ref = ogb._eval_rocauc(y, p)["rocauc"]
    assert _own_metric("rocauc", y, p) == pytest.approx(ref)
    yr, pr = rng.normal(size=(30, 1)), rng.normal(size=(30, 1))
    assert _own_metric("rmse", yr, pr) == pytest.approx(Evaluator("ogbg-molesol")._eval_rmse(yr, pr)["rmse"])


@needs_ogb
def test_fit_gin_on_ogb_uses_the_evaluator_and_selects_on_validation(monkeypatch):
    import ogb.graphproppred

    calls = []
    real = ogb.graphproppred.Evaluator.eval

    def spy(self, d):
        calls.append((self.name, len(d["y_true"])))
        return real(self, d)

    monkeypatch.setattr(ogb.graphproppred.Evaluator, "eval", spy)
    ds = graphkit.datasets.load("ogbg-molesol")
    r = graphkit.fit("gin", ds, epochs=3, emb_dim=32, num_layers=2, progress=False, seed=1)
    n_valid, n_test = len(ds.split_idx["valid"]), len(ds.split_idx["test"])
    assert calls == [("ogbg-molesol", n_valid)] * 3 + [("ogbg-molesol", n_test)]  # 3 validations, 1 test
    assert set(r.metrics) == {"rmse"}
    hist = r.history
    best = hist["valid_rmse"].idxmin()
    assert r.record["best_epoch"] == int(hist.loc[best, "epoch"])
    assert r.record["best_valid"] == pytest.approx(hist["valid_rmse"].min())
    assert r.record["fingerprint"] == ds.fingerprint and r.record["task"] == "graph"
    # the selected model's test RMSE, recomputed from a reloaded result through ogb's evaluator
    y, pred = _predict(r.model, ds, "test")
    assert ogb.graphproppred.Evaluator("ogbg-molesol").eval(
        {"y_true": y.numpy(), "y_pred": pred.numpy()})["rmse"] == pytest.approx(r.metrics["rmse"], rel=1e-5)


def _predict(model, ds, part):
    model.eval()
    b = ds.collection.batch(ds.split_idx[part])
    with torch.no_grad():
        return b.y, model(b)


@needs_ogb
def test_fit_result_round_trip_and_resume(tmp_path):
    ds = graphkit.datasets.load("ogbg-molfreesolv")
    kw = dict(emb_dim=16, num_layers=2, progress=False, seed=3)
    full = graphkit.fit("gcn-graph", ds, epochs=4, **kw)
    path = full.save(tmp_path / "res")
    again = graphkit.FitResult.load(path)
    y, p1 = _predict(full.model, ds, "test")
    _, p2 = _predict(again.model, ds, "test")
    assert torch.allclose(p1, p2)
    # an interrupted run resumed from its checkpoint ends where the uninterrupted one does
    ck = tmp_path / "ck"
    graphkit.fit("gcn-graph", ds, epochs=2, checkpoint_dir=str(ck), **kw)
    resumed = graphkit.fit("gcn-graph", ds, epochs=4, checkpoint_dir=str(ck), resume=True, **kw)
    assert resumed.metrics["rmse"] == pytest.approx(full.metrics["rmse"], rel=1e-6)


def test_graph_task_refuses_wrong_inputs():
    ds_like = type("NotGraphs", (), {"name": "x"})()
    with pytest.raises(ConfigError, match="not a graph-property dataset"):
        graphkit.fit("gin", ds_like)
    with pytest.raises(ConfigError, match="pooling"):
        GIN(1, pooling="max")


@needs_ogb
def test_bench_graph_grid_writes_leaderboard_with_paper_column(tmp_path):
    from graphkit.bench import run_bench

    out = run_bench(["gin"], ["ogbg-molbace", "ogbg-molfreesolv"], seeds=1, out=tmp_path,
                    overrides={"epochs": 1, "emb_dim": 16, "num_layers": 2}, compare="paper", plots=False, isolate=False,
                    echo=lambda *_: None)
    board = (tmp_path / "leaderboard.md").read_text()
    assert "paper rocauc" in board and "0.7010" in board
    fs = board.split("## ogbg-molfreesolv")[1]
    assert "| rmse |" in fs.replace("| model | rmse |", "| rmse |") and "rocauc" not in fs.split("\n\n")[2]
    assert {r["status"] for r in out["records"]} == {"ok"}


class _TinyGraphData:
    """A graph-property dataset built in memory (what the task reads of a GraphPropDataset)."""

    def __init__(self, graphs, n_train, n_valid, metric="rmse", task_type="regression"):
        self.collection = GraphCollection.from_data_list(graphs)
        n = len(graphs)
        self.split_idx = {"train": torch.arange(n_train), "valid": torch.arange(n_train, n_train + n_valid),
                          "test": torch.arange(n_train + n_valid, n)}
        self.name, self.task_type, self.eval_metric = "tiny", task_type, metric
        self.num_tasks, self.num_graphs, self.meta, self.fingerprint = 1, n, {}, "tiny"

    def split_record(self):
        return {"dataset": self.name, "fingerprint": self.fingerprint}


def test_training_batches_never_leave_a_single_graph():
    from graphkit.datasets.graph_collection import batch_ids, training_batches

    assert [training_batches(n, 32) for n in (1, 31, 32, 33, 64, 65, 66)] == [1, 1, 1, 1, 2, 2, 3]
    order = torch.arange(65)
    assert [len(batch_ids(order, b, 32)) for b in range(2)] == [32, 33]
    # 33 one-atom training molecules, batch 32: the last batch would be one node (batch norm fails)
    graphs = random_molecules(45, seed=9, max_nodes=1, regression=True)
    ds = _TinyGraphData(graphs, 33, 6)
    r = graphkit.fit("gin", ds, epochs=2, emb_dim=8, num_layers=2, batch_size=32, progress=False, preset=False)
    assert list(r.history["epoch"]) == [1, 2] and set(r.metrics) == {"rmse"}
