"""graphkit.fit for recommendation: learning, determinism, validation-based selection, records, errors."""
import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import graphkit
from graphkit import ConfigError, TrainingError
from graphkit.datasets.recommendation import RecDataset
from graphkit.metrics import evaluate_embeddings


def planted_dataset(seed=0, U=80, I=200, clusters=5, p_in=0.3, p_out=0.005):
    """Users of cluster c mostly interact with the items of cluster c; split 70/10/20."""
    rng = np.random.default_rng(seed)
    uc = rng.integers(0, clusters, U)
    ic = np.arange(I) % clusters
    prob = np.where(uc[:, None] == ic[None, :], p_in, p_out)
    dense = rng.random((U, I)) < prob
    u, i = np.nonzero(dense)
    part = rng.random(u.shape[0])

    def mat(mask):
        return sp.csr_matrix((np.ones(mask.sum(), dtype=np.float32), (u[mask], i[mask])), shape=(U, I))

    train, valid, test = mat(part < 0.7), mat((part >= 0.7) & (part < 0.8)), mat(part >= 0.8)
    return RecDataset(
        name="planted", num_users=U, num_items=I, train=train, valid=valid, test=test,
        full_train=(train + valid).tocsr(), fingerprint=graphkit.utils.fingerprint_arrays(u, i, part > 0.7),
        meta={"split_seed": seed, "val_ratio": 0.1},
    )


FAST = dict(epochs=12, eval_every=2, batch_size=256, lr=0.01, progress=False, patience=0)


def test_lightgcn_learns_planted_structure_and_selects_on_validation():
    ds = planted_dataset()
    res = graphkit.fit("lightgcn", ds, embedding_dim=16, num_layers=2, **FAST)
    # random ranking gives recall@20 ~ 20/200 = 0.1
    assert res.metrics["recall@20"] > 0.4, res.metrics
    hist = res.history
    assert isinstance(hist, pd.DataFrame) and list(hist["epoch"]) == list(range(1, 13))
    evaluated = hist.dropna(subset=["valid_recall@20"])
    assert list(evaluated["epoch"]) == [2, 4, 6, 8, 10, 12]
    best = evaluated.loc[evaluated["valid_recall@20"].idxmax()]
    assert res.record["best_epoch"] == int(best["epoch"])
    # the returned weights are the selected ones: re-evaluating on valid gives the best value
    ue, ie = res.model.embeddings()
    again = evaluate_embeddings(ue, ie, ds.valid, exclude=ds.train, ks=(20,))
    assert again["recall@20"] == pytest.approx(best["valid_recall@20"], abs=1e-6)
    # test metrics exclude train and valid items
    ref = evaluate_embeddings(ue, ie, ds.test, exclude=ds.full_train, ks=(20,))
    assert res.metrics["recall@20"] == pytest.approx(ref["recall@20"], abs=1e-6)


def test_same_seed_same_result_other_seed_differs():
    ds = planted_dataset(seed=1)
    kw = dict(embedding_dim=8, num_layers=1, **{**FAST, "epochs": 3, "eval_every": 1})
    a = graphkit.fit(graphkit.LightGCN, ds, seed=7, **kw)
    b = graphkit.fit(graphkit.LightGCN, ds, seed=7, **kw)
    c = graphkit.fit(graphkit.LightGCN, ds, seed=8, **kw)
    assert a.history["loss"].tolist() == b.history["loss"].tolist()
    assert a.metrics == b.metrics
    assert torch.equal(a.model.embedding.weight, b.model.embedding.weight)
    assert a.history["loss"].tolist() != c.history["loss"].tolist()


@pytest.mark.parametrize("model", ["lightgcn", "ultragcn"])
def test_refit_retrains_on_train_plus_valid_for_the_selected_epochs(model):
    """refit=True = select the epoch on validation, then an independent run on full_train."""
    ds = planted_dataset(seed=2)
    kw = dict(embedding_dim=8, **{**FAST, "epochs": 6, "eval_every": 1}, seed=5, preset=False)
    if model == "lightgcn":
        kw["num_layers"] = 1
    sel = graphkit.fit(model, ds, evaluate_test=False, **kw)
    res = graphkit.fit(model, ds, refit=True, **kw)
    best = sel.record["best_epoch"]
    assert 1 <= best <= 6 and res.record["best_epoch"] == best
    assert res.record["refit"]["epochs"] == best
    assert res.record["refit"]["train_nnz"] == ds.full_train.nnz > ds.train.nnz
    assert res.history["loss"].tolist() == sel.history["loss"].tolist()
    # the reference: a plain run on a dataset whose training split is train + valid, no validation
    whole = RecDataset(name="planted", num_users=ds.num_users, num_items=ds.num_items, train=ds.full_train,
                       valid=sp.csr_matrix(ds.valid.shape, dtype=np.float32), test=ds.test,
                       full_train=ds.full_train, fingerprint=ds.fingerprint, meta=ds.meta)
    ref = graphkit.fit(model, whole, **{**kw, "epochs": best, "patience": 0})
    assert res.metrics == ref.metrics and res.metrics
    sa, sb = res.model.state_dict(), ref.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sb)
    # the selection model is not the refitted one (it saw fewer interactions)
    assert not torch.equal(next(iter(sel.model.state_dict().values())), next(iter(sa.values())))
    assert res.record["train"]["refit"] is True and res.record["train"]["evaluate_test"] is True
    with pytest.raises(ConfigError, match="refit must be True or False"):
        graphkit.fit(model, ds, refit="yes", **kw)


def test_refit_of_a_fitted_baseline_fits_it_again_on_train_plus_valid():
    ds = planted_dataset(seed=2)
    res = graphkit.fit("ease", ds, refit=True, preset=False, progress=False, l2=50.0)
    whole = RecDataset(name="planted", num_users=ds.num_users, num_items=ds.num_items, train=ds.full_train,
                       valid=sp.csr_matrix(ds.valid.shape, dtype=np.float32), test=ds.test,
                       full_train=ds.full_train, fingerprint=ds.fingerprint, meta=ds.meta)
    ref = graphkit.fit("ease", whole, preset=False, progress=False, l2=50.0)
    plain = graphkit.fit("ease", ds, preset=False, progress=False, l2=50.0)
    assert res.metrics == pytest.approx(ref.metrics) and res.metrics != pytest.approx(plain.metrics)
    assert res.record["refit"]["epochs"] == 1 and res.record["best_valid"] == plain.record["best_valid"]


def test_record_and_save(tmp_path):
    ds = planted_dataset(seed=2)
    res = graphkit.fit("lightgcn", ds, embedding_dim=8, num_layers=1, **{**FAST, "epochs": 2, "eval_every": 1})
    rec = res.record
    assert rec["fingerprint"] == ds.fingerprint and rec["dataset"] == "planted"
    assert rec["seed"] == 2020 and rec["hparams"]["embedding_dim"] == 8 and rec["train"]["lr"] == 0.01
    assert rec["versions"]["torch"] and rec["device"].startswith("cpu")
    assert rec["selection"] == "recall@20 on validation"
    out = res.save(tmp_path / "run")
    saved = json.loads((out / "record.json").read_text())
    assert saved["metrics"] == pytest.approx(res.metrics) and saved["fingerprint"] == ds.fingerprint
    from graphkit.training.result import load_state_dict

    state = load_state_dict(out / "model.safetensors")
    assert torch.equal(state["embedding.weight"], res.model.embedding.weight)
    assert len(pd.read_csv(out / "history.csv")) == 2
    assert not list(out.glob("*.tmp"))


def test_max_time_stops_and_keeps_best():
    ds = planted_dataset(seed=3)
    res = graphkit.fit("lightgcn", ds, embedding_dim=8, num_layers=1, max_time=0.0, **{**FAST, "epochs": 50})
    assert res.record["stopped_by"] == "max_time" and res.record["epochs_run"] == 1
    assert "valid_recall@20" in res.history.columns  # validated before stopping


def test_max_time_cuts_an_epoch_mid_way():
    """max_time is checked after every batch: with 0 s the first epoch stops after one batch; the
    row's loss is the mean over the interactions actually trained, and the cut epoch is validated."""
    ds = planted_dataset(seed=3)
    n = ds.train.nnz
    cfg = {**FAST, "batch_size": 64, "epochs": 5}
    steps = -(-n // 64)
    assert steps > 2
    cut = graphkit.fit("lightgcn", ds, embedding_dim=8, num_layers=1, max_time=0.0, seed=5, **cfg)
    row = cut.history.iloc[0]
    assert cut.record["stopped_by"] == "max_time" and cut.record["epochs_run"] == 1
    assert row["batches"] == 1 and not np.isnan(row["valid_recall@20"])
    # the loss is the mean over the one batch trained: at initialisation (small embeddings) the
    # BPR loss of a batch is ln 2 (σ(0) = 1/2), whereas a whole epoch's mean has already learned
    assert row["loss"] == pytest.approx(np.log(2), abs=0.02)
    full = graphkit.fit("lightgcn", ds, embedding_dim=8, num_layers=1, seed=5, **{**cfg, "epochs": 1})
    assert full.history.iloc[0]["batches"] == steps
    assert full.history.iloc[0]["loss"] < row["loss"]


def test_bad_hyperparameters_are_named():
    ds = planted_dataset()
    with pytest.raises(ConfigError, match="unknown hyper-parameter 'embeding_dim'"):
        graphkit.fit("lightgcn", ds, embeding_dim=8)
    with pytest.raises(ConfigError, match="unknown model 'lightgcm'; available: .*lightgcn"):
        graphkit.fit("lightgcm", ds)
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        graphkit.fit("lightgcn", ds, batch_size=0)
    with pytest.raises(ConfigError, match="select_metric"):
        graphkit.fit("lightgcn", ds, select_metric="recall@50")


def test_huge_integers_for_real_hyperparameters_are_config_errors():
    """np.isfinite(10**400) raises TypeError; graphkit must answer with a ConfigError (fuzzer find)."""
    from graphkit.models import EASE, LightGCN

    for kw in ({"reg_weight": 10 ** 400}, {"init_std": 10 ** 400}, {"reg_weight": float("nan")}):
        with pytest.raises(ConfigError, match=next(iter(kw))):
            LightGCN(4, 5, **kw)
    with pytest.raises(ConfigError, match="l2"):
        EASE(4, 5, l2=10 ** 400)
    model = LightGCN(4, 5)
    with pytest.raises(ConfigError, match="ego_ridge"):
        model.fold_in_users(sp.csr_matrix(np.ones((1, 5), dtype=np.float32)), ego_ridge=10 ** 400)


def test_non_finite_loss_names_epoch_and_batch(monkeypatch):
    ds = planted_dataset()
    monkeypatch.setattr(graphkit.LightGCN, "loss", lambda self, u, p, n: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(TrainingError, match="epoch 1, batch 0"):
        graphkit.fit("lightgcn", ds, embedding_dim=4, **FAST)


def test_model_argument_named_like_a_training_option_is_an_error():
    """A constructor argument that is also a trainer option (here ``seed``) would silently take the
    other's value; split_hparams refuses such a model instead of routing the name to one side."""
    from graphkit.exceptions import ConfigError
    from graphkit.training.hparams import split_hparams
    from graphkit.training.node import NodeTrainConfig

    class Clashing:
        def __init__(self, in_channels: int, num_classes: int, hidden: int = 8, seed: int = 0, **extra):
            pass

    with pytest.raises(ConfigError, match="'seed'.*training option of NodeTrainConfig.*rename"):
        split_hparams(Clashing, NodeTrainConfig, {"hidden": 4}, data_args=("in_channels", "num_classes"))

    class Fine:
        def __init__(self, in_channels: int, num_classes: int, hidden: int = 8, **extra):
            pass

    assert split_hparams(Fine, NodeTrainConfig, {"hidden": 4, "lr": 0.1},
                         data_args=("in_channels", "num_classes")) == ({"hidden": 4}, {"lr": 0.1})
