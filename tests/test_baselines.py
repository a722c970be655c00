"""Recommendation baselines (popularity, EASE, ALS), epoch callbacks, preset="fast" and graphkit.tune."""
import math
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import graphkit
from graphkit import ConfigError, TrainingError
from graphkit.metrics import evaluate_embeddings
from graphkit.models.baselines import ALS, EASE, Popularity
from graphkit.training.hparams import preset_for

from test_training import planted_dataset


def tiny_matrix(seed=0, U=30, I=12, p=0.25):
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((U, I)) < p).astype(np.float32))


# ----------------------------------------------------------------------------- popularity
def test_popularity_scores_are_training_counts():
    R = tiny_matrix()
    m = Popularity(*R.shape)
    m.fit_interactions(R)
    ue, ie = m.embeddings()
    np.testing.assert_array_equal((ue @ ie.T)[3].numpy(), np.asarray(R.sum(0)).ravel())
    with pytest.raises(TrainingError, match="fit_interactions"):
        m.loss(torch.tensor([0]), torch.tensor([1]), torch.tensor([[2]]))
    with pytest.raises(ConfigError, match="shape"):
        m.fit_interactions(R[:5])


# ----------------------------------------------------------------------------- EASE
def test_ease_matches_per_column_ridge_reference():
    """Steck (2019): B minimises ||X - XB||² + λ||B||² with diag(B) = 0.  Independent reference:
    column i is the ridge regression of X[:, i] on the other columns."""
    R = tiny_matrix(1)
    lam = 3.0
    m = EASE(*R.shape, l2=lam)
    m.fit_interactions(R)
    X = R.toarray().astype(np.float64)
    B = m.weights.double().numpy()
    for i in range(X.shape[1]):
        rest = np.delete(np.arange(X.shape[1]), i)
        Z = X[:, rest]
        b = np.linalg.solve(Z.T @ Z + lam * np.eye(len(rest)), Z.T @ X[:, i])
        np.testing.assert_allclose(B[rest, i], b, rtol=1e-4, atol=1e-6)
        assert B[i, i] == 0.0
    ue, ie = m.embeddings()
    np.testing.assert_allclose((ue @ ie.T).numpy(), X @ B, rtol=1e-4, atol=1e-5)


def test_ease_refuses_large_item_sets():
    with pytest.raises(ConfigError, match="max_items"):
        EASE(10, 30_000)
    with pytest.raises(ConfigError, match="l2"):
        EASE(10, 10, l2=-1.0)


# ----------------------------------------------------------------------------- ALS
def test_als_item_factors_solve_the_normal_equations():
    """Hu et al. (2008) with implicit's confidence (alpha on observed entries, 1 elsewhere): after
    the last sweep each item factor solves (X^T C_i X + λI) y_i = X^T C_i p_i exactly (Cholesky)."""
    pytest.importorskip("implicit")
    R = tiny_matrix(2)
    lam, alpha = 0.1, 3.0
    m = ALS(*R.shape, factors=4, regularization=lam, alpha=alpha, iterations=4, use_cg=False)
    m.fit_interactions(R, seed=1, num_threads=1)
    X, Y = m.user_factors.double().numpy(), m.item_factors.double().numpy()
    D = R.toarray()
    for i in range(R.shape[1]):
        p = (D[:, i] > 0).astype(np.float64)
        c = np.where(p > 0, alpha, 1.0)
        y = np.linalg.solve(X.T @ (c[:, None] * X) + lam * np.eye(4), X.T @ (c * p))
        np.testing.assert_allclose(Y[i], y, rtol=1e-3, atol=1e-5)
    seen = []
    m.fit_interactions(R, seed=1, num_threads=1, callback=seen.append)
    assert seen == [1, 2, 3, 4]


def test_als_without_implicit_is_a_clear_error(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("implicit"):
            raise ImportError("no implicit")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ConfigError, match=r"graphkit\[baselines\]"):
        ALS(5, 5).fit_interactions(tiny_matrix(U=5, I=5))


def test_fit_reports_a_missing_extra_before_loading_data(monkeypatch):
    # Without the early check the dataset is loaded (here the patched loader fails the test)
    # and, for a real dataset, prepared before ALS finds implicit missing.
    for mod in ("implicit", "implicit.cpu", "implicit.cpu.als"):
        monkeypatch.setitem(sys.modules, mod, None)
    monkeypatch.setattr(graphkit.datasets, "load", lambda *a, **k: pytest.fail("data loaded before the check"))
    with pytest.raises(ConfigError, match="implicit"):
        graphkit.fit("als", dataset="no-such-dataset")
    graphkit.models.get_model("lightgcn").check_dependencies()  # needs nothing: no error


# ----------------------------------------------------------------------------- through graphkit.fit
@pytest.mark.parametrize("name", ["popularity", "ease", "als"])
def test_baselines_fit_like_models(name):
    if name == "als":
        pytest.importorskip("implicit")
    ds = planted_dataset()
    res = graphkit.fit(name, ds, progress=False, num_threads=1)
    rec = res.record
    assert rec["stopped_by"] == "fitted" and rec["fingerprint"] == ds.fingerprint and rec["epochs_run"] == 1
    assert rec["best_valid"] == pytest.approx(res.history["valid_recall@20"].iloc[0])
    ue, ie = res.model.embeddings()
    ref = evaluate_embeddings(ue, ie, ds.test, exclude=ds.full_train, ks=(20,))
    assert res.metrics["recall@20"] == pytest.approx(ref["recall@20"], abs=1e-6)
    if name != "popularity":  # personalised models beat popularity on planted clusters
        pop = graphkit.fit("popularity", ds, progress=False)
        assert res.metrics["recall@20"] > pop.metrics["recall@20"] + 0.1
    with pytest.raises(ConfigError, match="nothing to resume"):
        graphkit.fit(name, ds, progress=False, resume=True, checkpoint_dir="unused")


# ----------------------------------------------------------------------------- callbacks
def test_epoch_callbacks_see_validation_and_can_stop():
    ds = planted_dataset()
    seen = []

    class Stopper:
        def on_epoch_end(self, trainer, epoch, logs):
            seen.append((epoch, "valid_recall@20" in logs, logs["loss"]))
            if epoch == 3:
                trainer.should_stop = True

    res = graphkit.fit("lightgcn", ds, embedding_dim=8, epochs=10, eval_every=2, batch_size=256, lr=0.01,
                       progress=False, patience=0, callbacks=[Stopper()])
    assert [e for e, _, _ in seen] == [1, 2, 3] and [v for _, v, _ in seen] == [False, True, False]
    assert res.record["stopped_by"] == "callback" and res.record["epochs_run"] == 3


def test_validation_curve_records_every_validation_on_the_wall_clock():
    from graphkit.training.callbacks import ValidationCurve

    curve = ValidationCurve("recall@20")
    res = graphkit.fit("lightgcn", planted_dataset(), embedding_dim=8, epochs=6, eval_every=2, batch_size=256,
                       lr=0.01, progress=False, patience=0, callbacks=[curve])
    valid = res.history.dropna(subset=["valid_recall@20"])
    assert [p["epoch"] for p in curve.points] == valid["epoch"].tolist() == [2, 4, 6]
    assert [p["value"] for p in curve.points] == pytest.approx(valid["valid_recall@20"].tolist())
    seconds = [p["seconds"] for p in curve.points]
    assert seconds == sorted(seconds) and seconds[-1] <= curve.elapsed()
    assert curve.best_by(seconds[-1]) == pytest.approx(max(p["value"] for p in curve.points))
    assert curve.best_by(seconds[0]) == pytest.approx(curve.points[0]["value"])
    assert math.isnan(curve.best_by(-1.0))


# ----------------------------------------------------------------------------- presets
def test_fast_preset_is_the_paper_preset_updated_by_the_recipe():
    from graphkit.models import LightGCN

    paper = preset_for(LightGCN, "gowalla", "paper")
    assert preset_for(LightGCN, "gowalla", True) == paper
    fast = preset_for(LightGCN, "gowalla", "fast")
    recipe = LightGCN.fast_presets.get("gowalla", LightGCN.fast_presets.get("*"))
    expected_train = {**paper["train"], **recipe.get("train", {})}
    assert fast["train"] == expected_train and fast["model"] == {**paper["model"], **recipe.get("model", {})}
    assert preset_for(LightGCN, "gowalla", False) == {}
    with pytest.raises(ConfigError, match="preset"):
        preset_for(LightGCN, "gowalla", "quick")
    with pytest.raises(ConfigError, match="fast recipe"):
        preset_for(Popularity, "gowalla", "fast")


def test_ultragcn_fast_recipe_is_for_ml1m_only():
    from graphkit.models import UltraGCN

    fast, paper = preset_for(UltraGCN, "ml-1m", "fast"), preset_for(UltraGCN, "ml-1m", "paper")
    # the recipe: the SVD warm start at ten times the preset's init norm, and round 1's training changes
    assert fast["model"] == {**paper["model"], "init": "svd", "initial_weight": 1e-2}
    UltraGCN(5, 6, **fast["model"])
    assert fast["train"] == {**paper["train"], "batch_size": 4096, "lr": 4e-3, "num_negatives": 100}
    with pytest.raises(ConfigError, match="no fast recipe for 'gowalla'.*ml-1m"):
        preset_for(UltraGCN, "gowalla", "fast")


# ----------------------------------------------------------------------------- graphkit.tune
def test_tune_selects_on_validation_and_resumes(tmp_path):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from graphkit.tuning import tune

    ds = planted_dataset()
    db = tmp_path / "study.db"
    fixed = dict(embedding_dim=8, epochs=4, eval_every=2, batch_size=256, patience=0, num_threads=1)
    space = {"lr": ("log", 1e-3, 3e-2), "num_layers": ("int", 1, 2)}
    first = tune("lightgcn", ds, n_trials=2, space=space, storage=str(db), seed=0, **fixed)
    assert len(first.trials) == 2 and set(first.best_params) == {"lr", "num_layers"}
    values = first.trials["value"].tolist()
    assert first.best_value == pytest.approx(max(values))
    assert first.result.record["best_valid"] == pytest.approx(first.best_value)
    assert first.result.record["train"]["evaluate_test"] is False  # trials never looked at test
    ue, ie = first.result.model.embeddings()
    ref = evaluate_embeddings(ue, ie, ds.test, exclude=ds.full_train, ks=(20,))
    assert first.result.metrics["recall@20"] == pytest.approx(ref["recall@20"], abs=1e-6)
    # a "killed" search resumes from its storage: 3 trials in total, one new
    again = tune("lightgcn", ds, n_trials=3, space=space, storage=str(db), seed=0, **fixed)
    assert len(again.trials) == 3 and again.trials["value"].tolist()[:2] == values
    if again.best_value == first.best_value:  # best trial from the "killed" process: retrained, same model
        assert again.result.metrics["recall@20"] == pytest.approx(first.result.metrics["recall@20"], abs=1e-6)
        assert again.result.record["best_valid"] == pytest.approx(first.best_value, abs=1e-6)
    # a best trial cut by its time budget is retrained to its selected epoch, not to `epochs`
    cut = dict(embedding_dim=8, epochs=2000, eval_every=1, batch_size=1024, patience=0, num_threads=1)
    db2, lr = str(tmp_path / "cut.db"), {"lr": ("log", 1e-2, 2e-2)}
    timed = tune("lightgcn", ds, n_trials=1, space=lr, storage=db2, trial_max_time=0.3, **cut)
    assert timed.result.record["epochs_run"] < 2000 and timed.result.record["stopped_by"] == "max_time"
    resumed = tune("lightgcn", ds, n_trials=1, space=lr, storage=db2, trial_max_time=0.3, **cut)
    assert resumed.result.record["best_epoch"] == timed.result.record["best_epoch"]
    assert resumed.result.metrics["recall@20"] == pytest.approx(timed.result.metrics["recall@20"], abs=1e-6)
    with pytest.raises(ConfigError, match="budget"):
        tune("lightgcn", ds, space=space)
    with pytest.raises(ConfigError, match="recommendation"):
        tune("gcn", "cora", n_trials=1)


# ----------------------------------------------------------------------------- command line
def test_cli_tune_and_preset_option(tmp_path):
    pytest.importorskip("optuna")
    from click.testing import CliRunner

    from graphkit.cli import main
    from test_bench import write_rec_folder

    folder = str(write_rec_folder(tmp_path / "rec"))
    run = CliRunner().invoke(main, ["tune", "popularity", "--dataset", folder, "--n-trials", "1"],
                             catch_exceptions=False)
    assert run.exit_code == 2 and "no default search space" in run.output  # one line, no traceback
    run = CliRunner().invoke(main, ["tune", "als", "--dataset", folder, "--n-trials", "2", "--threads", "1",
                                    "--storage", str(tmp_path / "s.db"), "--out", str(tmp_path / "best")],
                             catch_exceptions=False)
    if run.exit_code == 2 and "implicit" in run.output:
        pytest.skip("implicit not installed")
    assert run.exit_code == 0, run.output
    assert "2 trials" in run.output and "recall@20=" in run.output.splitlines()[1]
    assert (tmp_path / "best" / "record.json").is_file()
    run = CliRunner().invoke(main, ["tune", "als", "--dataset", folder, "--n-trials", "1", "--preset", "fast"],
                             catch_exceptions=False)
    assert run.exit_code == 2 and "fast recipe" in run.output  # tune --preset reaches the trials
    run = CliRunner().invoke(main, ["fit", "popularity", "--dataset", folder, "--preset", "fast"],
                             catch_exceptions=False)
    assert run.exit_code == 2 and "fast recipe" in run.output
    run = CliRunner().invoke(main, ["fit", "popularity", "--dataset", folder, "--preset", "none", "--quiet"],
                             catch_exceptions=False)
    assert run.exit_code == 0 and "recall@20=" in run.output
    run = CliRunner().invoke(main, ["fit", "popularity", "--dataset", folder, "--preset", "none", "--quiet",
                                    "--set", "refit=true"], catch_exceptions=False)
    assert run.exit_code == 0 and "refit on train + validation" in run.output, run.output


def test_tune_starts_from_the_preset_and_widens_the_default_space():
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from graphkit.models import LightGCN
    from graphkit.tuning import tune

    ds = planted_dataset()
    fixed = dict(embedding_dim=8, epochs=4, eval_every=2, batch_size=256, patience=0, num_threads=1)
    res = tune("lightgcn", ds, n_trials=1, preset="fast", seed=0, trial_seed=3, **fixed)
    # trial 0 = what graphkit.fit(preset="fast") uses: the recipe's lr (2e-2, above the paper's
    # search range, which is widened to contain it), the constructor's reg_weight and num_layers
    recipe_lr = LightGCN.fast_presets["*"]["train"]["lr"]
    assert res.best_params == {"lr": recipe_lr, "reg_weight": 1e-4, "num_layers": 3}
    assert res.result.record["tuning"]["start"] == res.best_params
    assert res.result.record["tuning"]["space"]["lr"] == ["log", 1e-4, recipe_lr]
    plain = graphkit.fit("lightgcn", ds, preset="fast", seed=3, evaluate_test=False, progress=False, **fixed)
    assert res.best_value == pytest.approx(plain.record["best_valid"], abs=1e-6)  # the same run
    # a space the caller passes is kept: a starting value outside it is left to the sampler
    own = tune("lightgcn", ds, n_trials=1, preset="fast", space={"lr": ("log", 1e-3, 1e-2), "num_layers": ("int", 1, 2)},
               **fixed)
    assert own.result.record["tuning"]["start"] == {} and 1e-3 <= own.best_params["lr"] <= 1e-2
    assert own.result.record["tuning"]["space"]["lr"] == ["log", 1e-3, 1e-2]
    off = tune("lightgcn", ds, n_trials=1, preset="fast", start_from_preset=False, seed=0, **fixed)
    assert off.result.record["tuning"]["start"] == {} and off.best_params["lr"] <= 1e-2
    with pytest.raises(ConfigError, match="'lr'"):  # a malformed range is named, not a ValueError
        tune("lightgcn", ds, n_trials=1, space={"lr": ("log", "a", 1)}, **fixed)
