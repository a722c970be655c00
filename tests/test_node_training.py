"""Node-classification training: GCN layer vs PyG, epoch selection, determinism, fit dispatch, errors."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import graphkit
from graphkit import ConfigError, Graph, TrainingError
from graphkit.datasets.node import NodeDataset, node_split_fingerprint
from graphkit.metrics import accuracy
from graphkit.models.base import NodeModel
from graphkit.models.gcn import GCN, GCNConv
from graphkit.training.node import (
    NodeClassificationTrainer, NodeTrainConfig, SeedsResult, run_seeds, select_epoch,
)

from conftest import require_dataset


def sbm_dataset(seed=0, n=240, classes=3, feat=30, p_in=0.06, p_out=0.006, name="sbm"):
    """Planted classes: SBM edges and noisy class-dependent bag-of-words features."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    prob = np.where(y[:, None] == y[None, :], p_in, p_out)
    adj = np.triu(rng.random((n, n)) < prob, 1)
    r, c = np.nonzero(adj)
    graph = Graph.from_coo(np.concatenate([r, c]), np.concatenate([c, r]), n)
    centers = rng.random((classes, feat)) < 0.15
    x = ((rng.random((n, feat)) < 0.05) | (centers[y] & (rng.random((n, feat)) < 0.4))).astype(np.float32)
    perm = rng.permutation(n)
    tr, va, te = np.sort(perm[:60]), np.sort(perm[60:120]), np.sort(perm[120:])
    return NodeDataset(
        name=name, graph=graph, x=torch.from_numpy(x), y=torch.from_numpy(y), train_idx=torch.from_numpy(tr),
        val_idx=torch.from_numpy(va), test_idx=torch.from_numpy(te), num_classes=classes, split="random",
        split_seed=seed, fingerprint=node_split_fingerprint(tr, va, te, y),
    )


FAST = dict(epochs=40, patience=0, progress=False, device="cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- GCN layer
@pytest.mark.parametrize("weighted", [False, True])
def test_gcnconv_equals_pyg_with_copied_weights(weighted):
    from torch_geometric.nn import GCNConv as PygGCNConv

    torch.manual_seed(0)
    ds = sbm_dataset(n=60)
    ei, _ = ds.graph.to_edge_index()
    # symmetric weights (one per undirected pair): PyG aggregates over in-edges, graphkit over
    # a row's out-edges; the two agree on symmetric graphs
    lo, hi = torch.minimum(ei[0], ei[1]), torch.maximum(ei[0], ei[1])
    w = (torch.sin(lo * 7.0 + hi * 13.0) + 1.5) if weighted else None
    graph = Graph.from_edge_index(ei, 60, w)
    ours, ref = GCNConv(30, 8), PygGCNConv(30, 8)
    with torch.no_grad():
        ours.lin.weight.copy_(ref.lin.weight)
        ours.bias.copy_(torch.randn(8))
        ref.bias.copy_(ours.bias)
    x = torch.randn(60, 30)
    out = ours(x, graph)
    expected = ref(x, ei, w)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    # gradients agree too
    out.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(ours.lin.weight.grad, ref.lin.weight.grad, atol=1e-4, rtol=1e-4)


def test_gcn_model_matches_stacked_pyg_layers_and_sparse_input():
    from torch_geometric.nn import GCNConv as PygGCNConv

    ds = sbm_dataset(n=50)
    model = GCN(30, 3, hidden_channels=8).eval()
    c1, c2 = PygGCNConv(30, 8), PygGCNConv(8, 3)
    with torch.no_grad():
        for ours, ref in zip(model.convs, (c1, c2)):
            ref.lin.weight.copy_(ours.lin.weight)
            ref.bias.copy_(ours.bias)
    ei, _ = ds.graph.to_edge_index()
    expected = c2(torch.relu(c1(ds.x, ei)), ei)
    torch.testing.assert_close(model(ds.x, ds.graph), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model(ds.x.to_sparse_csr(), ds.graph), expected, atol=1e-5, rtol=1e-5)
    assert model.last_hidden.shape == (50, 8)


# ----------------------------------------------------------------------------- selection
def test_select_epoch_on_a_constructed_history():
    hist = pd.DataFrame({
        "epoch": [1, 2, 3, 4, 5, 6],
        "val_loss": [1.0, 0.7, 0.5, 0.55, 0.5, 0.6],
        "val_acc": [0.5, 0.6, 0.7, 0.8, 0.8, 0.8],
    })
    assert select_epoch(hist, "val_loss") == 3          # first of the tied minima
    assert select_epoch(hist, "val_acc") == 5           # ties on accuracy -> lower loss
    with pytest.raises(ConfigError):
        select_epoch(hist, "test_acc")


def test_trainer_reports_test_metric_of_the_lowest_val_loss_epoch():
    ds = sbm_dataset()
    res = graphkit.fit(GCN, ds, seed=3, dropout=0.5, **FAST)
    hist = res.history
    assert list(hist.columns) == ["epoch", "train_loss", "val_loss", "val_acc", "seconds"]
    assert list(hist["epoch"]) == list(range(1, 41))
    best = select_epoch(hist, "val_loss")
    assert res.record["best_epoch"] == best == int(hist.loc[hist["val_loss"].idxmin(), "epoch"])
    assert res.record["best_val_loss"] == pytest.approx(hist["val_loss"].min())
    # the returned weights are those of the best epoch ...
    model = res.model.eval()
    with torch.no_grad():
        logits = model(ds.x, ds.graph)
    val_loss = torch.nn.functional.cross_entropy(logits[ds.val_idx], ds.y[ds.val_idx]).item()
    assert val_loss == pytest.approx(hist["val_loss"].min(), abs=1e-5)
    assert res.metrics["accuracy"] == pytest.approx(accuracy(logits[ds.test_idx], ds.y[ds.test_idx]))
    # ... and training for exactly best_epoch epochs gives the same test metrics (deterministic)
    again = graphkit.fit(GCN, ds, seed=3, dropout=0.5, **{**FAST, "epochs": best})
    assert again.metrics == res.metrics
    pd.testing.assert_frame_equal(again.history.drop(columns="seconds"),
                                  hist.drop(columns="seconds").iloc[:best])


def test_select_val_acc_and_patience():
    ds = sbm_dataset()
    res = graphkit.fit(GCN, ds, seed=0, select="val_acc", epochs=200, patience=5, progress=False)
    hist = res.history
    assert res.record["best_epoch"] == select_epoch(hist, "val_acc")
    assert res.record["stopped_by"] == "early stopping"
    assert len(hist) == res.record["best_epoch"] + 5


def test_determinism_and_seed_sensitivity():
    ds = sbm_dataset()
    a = graphkit.fit(GCN, ds, seed=1, **FAST)
    b = graphkit.fit(GCN, ds, seed=1, **FAST)
    c = graphkit.fit(GCN, ds, seed=2, **FAST)
    pd.testing.assert_frame_equal(a.history.drop(columns="seconds"), b.history.drop(columns="seconds"))
    assert a.metrics == b.metrics
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])
    assert not a.history["train_loss"].equals(c.history["train_loss"])


class _NaNAfter(NodeModel):
    def __init__(self, in_channels, num_classes, bad_epoch=3):
        super().__init__(in_channels, num_classes)
        self.bad_epoch = bad_epoch
        self.lin = torch.nn.Linear(in_channels, num_classes)
        self.calls = 0

    def reset_parameters(self):
        self.lin.reset_parameters()

    def forward(self, x, graph):
        if self.training:
            self.calls += 1
        out = self.lin(x)
        return out * float("nan") if self.training and self.calls >= self.bad_epoch else out


def test_nan_loss_raises_training_error_naming_the_epoch():
    with pytest.raises(TrainingError, match="epoch 3"):
        graphkit.fit(_NaNAfter, sbm_dataset(), **FAST)


def test_record_history_and_save(tmp_path):
    ds = sbm_dataset()
    res = graphkit.fit(GCN, ds, seed=5, epochs=5, progress=False, hidden_channels=4)
    rec = res.record
    assert set(res.metrics) == {"accuracy", "macro_f1"}
    for key in ("dataset", "fingerprint", "split", "split_seed", "seed", "hparams", "versions", "device",
                "best_epoch", "epochs_run", "stopped_by", "train_seconds", "train"):
        assert key in rec, key
    assert rec["task"] == "node" and rec["model"] == "GCN" and rec["seed"] == 5
    assert rec["fingerprint"] == ds.fingerprint and rec["split_seed"] == ds.split_seed
    assert rec["hparams"]["hidden_channels"] == 4 and rec["train"]["epochs"] == 5
    out = res.save(tmp_path / "run")
    saved = json.loads((out / "record.json").read_text())
    assert saved["metrics"]["accuracy"] == pytest.approx(res.metrics["accuracy"])
    assert len(pd.read_csv(out / "history.csv")) == 5


def test_max_time_stops_training():
    res = graphkit.fit(GCN, sbm_dataset(), epochs=10_000, patience=0, max_time=0.3, progress=False)
    assert res.record["stopped_by"] == "max_time"
    assert res.record["epochs_run"] < 10_000


def test_config_errors():
    ds = sbm_dataset()
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        graphkit.fit(GCN, ds, learning_rate=0.1)
    with pytest.raises(ConfigError, match="select"):
        graphkit.fit(GCN, ds, select="test_acc")
    with pytest.raises(ConfigError):
        NodeTrainConfig(lr=-1).validate()
    with pytest.raises(ConfigError, match="cannot be applied"):
        graphkit.fit(GCN(30, 3), ds, hidden_channels=4)
    with pytest.raises(ConfigError, match="split"):
        graphkit.fit(GCN, ds, split="random")


def test_fit_dispatch_by_name_instance_and_trainer_class():
    from graphkit.models import _REGISTRY, register_model

    ds = sbm_dataset()
    register_model("gcn-test", GCN)
    try:
        res = graphkit.fit("gcn-test", ds, **FAST)
    finally:
        _REGISTRY.pop("gcn-test", None)
    assert res.record["task"] == "node" and isinstance(res.model, GCN)
    inst = GCN(30, 3, hidden_channels=8)
    res2 = graphkit.fit(inst, ds, **FAST)
    assert res2.model is inst
    res3 = NodeClassificationTrainer(GCN(30, 3), ds, NodeTrainConfig(**FAST)).fit()
    assert 0.0 <= res3.metrics["accuracy"] <= 1.0
    with pytest.raises(ConfigError, match="node"):
        NodeClassificationTrainer(torch.nn.Linear(2, 2), ds)


def test_run_seeds_aggregates():
    ds = sbm_dataset()
    out = run_seeds(GCN, ds, [0, 1, 2], epochs=20, patience=0)
    assert isinstance(out, SeedsResult)
    accs = [p["accuracy"] for p in out.per_seed]
    assert out.mean["accuracy"] == pytest.approx(np.mean(accs))
    assert out.std["accuracy"] == pytest.approx(np.std(accs, ddof=1))
    table = out.table()
    assert list(table["seed"]) == [0, 1, 2] and "macro_f1" in table
    assert [r["seed"] for r in out.records] == [0, 1, 2]
    assert "±" in out.summary()


def test_random_split_per_seed_and_cli_output_on_cora():
    require_dataset("planetoid", "raw", "ind.cora.x")
    from click.testing import CliRunner

    from graphkit.cli import main
    from graphkit.models import _REGISTRY, register_model

    out = run_seeds(GCN, "cora", [0, 1], split="random", epochs=3)
    assert [r["split_seed"] for r in out.records] == [0, 1]
    assert out.records[0]["fingerprint"] != out.records[1]["fingerprint"]
    assert out.records[0]["split"] == "random"
    register_model("gcn-test", GCN)
    try:
        result = CliRunner().invoke(main, ["fit", "gcn-test", "--dataset", "cora", "--epochs", "3", "--quiet",
                                           "--seed", "1", "--set", "split=random"])
    finally:
        _REGISTRY.pop("gcn-test", None)
    assert result.exit_code == 0, result.output
    assert "GCN on cora" in result.output and "test accuracy=" in result.output and "macro_f1=" in result.output


def test_sparse_input_flag_controls_the_feature_layout():
    seen = {}

    class DenseUser(GCN):  # a subclass that reads x densely switches the flag off
        sparse_input = False

        def forward(self, x, graph):
            seen["layout"] = x.layout
            return super().forward(x, graph)

    graphkit.fit(DenseUser, sbm_dataset(), epochs=1, progress=False)
    assert seen["layout"] == torch.strided
    trainer = NodeClassificationTrainer(GCN(30, 3), sbm_dataset(), NodeTrainConfig(**FAST))
    assert trainer._inputs().layout == torch.sparse_csr  # bag of words, <= 10% non-zero


def test_dataset_without_features_is_a_config_error():
    ds = sbm_dataset()
    ds.x = None
    with pytest.raises(ConfigError, match="no node features"):
        graphkit.fit(GCN(30, 3), ds, **FAST)
