"""The one training engine: callbacks (order, stop requests, built-ins), loggers, optimizer and
scheduler choice, and bit-exact resume of every task after ``kill -9`` (node full-batch,
node mini-batch; the recommendation task is covered in test_resume.py)."""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import graphkit
from graphkit import CheckpointError, ConfigError
from graphkit.training import (
    Callback, CSVLogger, EarlyStopping, LoggingCallback, MLflowLogger, ProgressBar, TensorBoardLogger,
)
from graphkit.training.checkpoint import CHECKPOINT_FILE, read_checkpoint_meta

sys.path.insert(0, str(Path(__file__).parent))
from test_node_training import sbm_dataset  # noqa: E402
from test_training import planted_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REC = dict(embedding_dim=8, num_layers=1, epochs=4, eval_every=2, batch_size=128, lr=0.05, progress=False,
           patience=0, seed=3, preset=False)
STEPS = 6  # batches per epoch: 708 training interactions of planted_dataset(seed=1) / 128
NODE = dict(epochs=30, lr=0.01, progress=False, patience=0, preset=False, dropout=0.5, hidden_channels=16)
LGT = dict(epochs=6, batch_size=16, lr=5e-3, progress=False, patience=0, preset=False, hidden_channels=16,
           num_tokens=6, num_centroids=8, global_dim=8, heads=2, dropout=0.2)


@pytest.fixture(scope="module")
def rec_ds():
    return planted_dataset(seed=1)


class Recorder(Callback):
    """Every hook call, in order."""

    def __init__(self):
        self.calls = []

    def on_fit_start(self, trainer):
        self.calls.append(("fit_start",))

    def on_epoch_start(self, trainer, epoch):
        self.calls.append(("epoch_start", epoch))

    def on_batch_end(self, trainer, batch, logs):
        self.calls.append(("batch_end", logs["epoch"], batch, logs["loss"]))

    def on_epoch_end(self, trainer, epoch, logs):
        self.calls.append(("epoch_end", epoch, dict(logs)))

    def on_fit_end(self, trainer, result):
        self.calls.append(("fit_end", result))


# ----------------------------------------------------------------------------- callbacks
def test_hooks_run_in_order_with_the_documented_logs(rec_ds):
    rec = Recorder()
    res = graphkit.fit("lightgcn", rec_ds, callbacks=[rec], **REC)
    kinds = [c[0] for c in rec.calls]
    expected = ["fit_start"]
    for _ in range(REC["epochs"]):
        expected += ["epoch_start"] + ["batch_end"] * STEPS + ["epoch_end"]
    assert kinds == expected + ["fit_end"]
    assert rec.calls[-1][1] is res
    ends = [c for c in rec.calls if c[0] == "epoch_end"]
    # logs == the history row; validated epochs carry the validation metrics
    for (_, epoch, logs), (_, row) in zip(ends, res.history.iterrows()):
        assert logs["epoch"] == epoch == row["epoch"] and logs["loss"] == row["loss"]
        assert ("valid_recall@20" in logs) == (epoch % REC["eval_every"] == 0)
    # the epoch loss is the size-weighted mean of the batch losses
    n = rec_ds.train.nnz
    sizes = [min(128, n - b * 128) for b in range(STEPS)]
    batch_losses = [c[3] for c in rec.calls if c[0] == "batch_end" and c[1] == 1]
    assert res.history["loss"].iloc[0] == pytest.approx(sum(s * l for s, l in zip(sizes, batch_losses)) / n, rel=1e-6)


def test_node_task_calls_the_same_hooks():
    rec = Recorder()
    res = graphkit.fit("gcn", sbm_dataset(), callbacks=[rec], **{**NODE, "epochs": 3})
    assert [c[0] for c in rec.calls] == ["fit_start"] + ["epoch_start", "batch_end", "epoch_end"] * 3 + ["fit_end"]
    assert rec.calls[3][2]["val_acc"] == res.history["val_acc"].iloc[0]


def test_a_callback_can_stop_training(rec_ds):
    class StopAt2(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            trainer.should_stop = epoch == 2

    res = graphkit.fit("lightgcn", rec_ds, callbacks=[StopAt2()], **{**REC, "epochs": 10})
    assert res.record["stopped_by"] == "callback" and res.record["epochs_run"] == 2


def test_early_stopping_callback_matches_a_hand_count():
    res_full = graphkit.fit("gcn", sbm_dataset(), **{**NODE, "epochs": 100})
    accs = res_full.history["val_acc"].tolist()
    best, bad, stop = -math.inf, 0, None
    for epoch, v in enumerate(accs, start=1):  # patience 3 on val_acc (ties do not count), by hand
        if v > best:
            best, bad = v, 0
        else:
            bad += 1
            if bad >= 3:
                stop = epoch
                break
    assert stop is not None
    es = EarlyStopping("val_acc", mode="max", patience=3)
    res = graphkit.fit("gcn", sbm_dataset(), callbacks=[es], **{**NODE, "epochs": 100})
    assert res.record["stopped_by"] == "callback" and res.record["epochs_run"] == stop == es.stopped_epoch
    with pytest.raises(ConfigError, match="mode"):
        EarlyStopping("val_loss", mode="down")


def test_csv_logger_writes_the_history(rec_ds, tmp_path):
    path = tmp_path / "log" / "history.csv"
    res = graphkit.fit("lightgcn", rec_ds, callbacks=[CSVLogger(path)], **REC)
    logged = pd.read_csv(path)
    assert list(logged.columns) == list(res.history.columns)
    pd.testing.assert_frame_equal(logged.drop(columns=[c for c in logged if "seconds" in c]),
                                  res.history.drop(columns=[c for c in res.history if "seconds" in c]),
                                  check_dtype=False, rtol=1e-12)


def test_logging_messages_under_the_graphkit_logger(rec_ds, caplog):
    with caplog.at_level(logging.INFO, logger="graphkit"):
        graphkit.fit("lightgcn", rec_ds, **REC)
    msgs = [r.getMessage() for r in caplog.records if r.name == "graphkit"]
    assert msgs[0].startswith("fit LightGCN on planted") and msgs[-1].startswith("done: best epoch")
    assert sum(m.startswith("epoch ") for m in msgs) == REC["epochs"]
    assert any("valid_recall@20=" in m for m in msgs)
    with caplog.at_level(logging.DEBUG, logger="graphkit"):
        caplog.clear()
        graphkit.fit("lightgcn", rec_ds, **{**REC, "epochs": 1})
    assert sum(" batch " in r.getMessage() for r in caplog.records) == STEPS


class _KeepTotals(ProgressBar):
    def on_fit_end(self, trainer, result):
        self.final = (self.bar.n, self.bar.total)
        super().on_fit_end(trainer, result)


def test_progress_bar_counts_batches_and_its_total_honours_max_time(rec_ds):
    bar = _KeepTotals()
    graphkit.fit("lightgcn", rec_ds, callbacks=[bar], **REC)
    assert bar.final == (REC["epochs"] * STEPS, REC["epochs"] * STEPS)

    class Slow(Callback):
        def on_batch_end(self, trainer, batch, logs):
            time.sleep(0.02)

    bar = _KeepTotals(refresh_seconds=0.05)
    res = graphkit.fit("lightgcn", rec_ds, callbacks=[bar, Slow()], **{**REC, "epochs": 1000, "max_time": 0.6})
    assert res.record["stopped_by"] == "max_time"
    n, total = bar.final
    # an epochs-only total would be 6000 batches; the time-based one is near what 0.6 s allows
    assert total < 200 and n <= total + 1


def test_tensorboard_logger(rec_ds, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is an optional extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    res = graphkit.fit("lightgcn", rec_ds, callbacks=[TensorBoardLogger(tmp_path, log_every_n_batches=1)], **REC)
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"train/loss", "valid/recall@20", "train/batch_loss", "test/recall@20"} <= set(tags)
    assert [e.value for e in acc.Scalars("train/loss")] == pytest.approx(res.history["loss"].tolist())
    assert len(acc.Scalars("train/batch_loss")) == REC["epochs"] * STEPS


def test_mlflow_logger(rec_ds, tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is an optional extra")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # MLflow 3 keeps the file store in maintenance mode
    res = graphkit.fit("lightgcn", rec_ds, callbacks=[MLflowLogger(experiment="gk", tracking_uri=uri)], **REC)
    client = mlflow.tracking.MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("gk").experiment_id])[0]
    assert run.data.params["model"] == "LightGCN" and run.data.params["train.lr"] == "0.05"
    assert run.data.metrics["test_recall_at_20"] == pytest.approx(res.metrics["recall@20"])
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == pytest.approx(
        res.history["loss"].tolist())


def test_optional_loggers_say_what_to_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_extras(name, *a, **k):
        if name.startswith(("mlflow", "torch.utils.tensorboard")):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_extras)
    with pytest.raises(ConfigError, match=r"graphkit\[tensorboard\]"):
        TensorBoardLogger("x")
    with pytest.raises(ConfigError, match=r"graphkit\[mlflow\]"):
        MLflowLogger()


def test_defaults_are_added_once(rec_ds):
    from graphkit.training import RecommendationTrainer, RecTrainConfig

    t = RecommendationTrainer(graphkit.LightGCN(rec_ds.num_users, rec_ds.num_items), rec_ds, RecTrainConfig())
    assert [type(c) for c in t.callbacks] == [ProgressBar, LoggingCallback]
    t = RecommendationTrainer(graphkit.LightGCN(rec_ds.num_users, rec_ds.num_items), rec_ds,
                              RecTrainConfig(progress=False), callbacks=[LoggingCallback("mine")])
    assert [type(c) for c in t.callbacks] == [LoggingCallback]


# ----------------------------------------------------------------------------- optimizer, scheduler
def test_optimizer_by_name_and_by_factory(rec_ds):
    seen = {}

    class Grab(Callback):
        def on_fit_end(self, trainer, result):
            seen["opt"] = trainer.optimizer

    res = graphkit.fit("lightgcn", rec_ds, optimizer="adamw", callbacks=[Grab()], **REC)
    assert type(seen["opt"]) is torch.optim.AdamW and res.record["train"]["optimizer"] == "adamw"
    factory = functools.partial(torch.optim.SGD, momentum=0.9)
    res = graphkit.fit("lightgcn", rec_ds, optimizer=factory, callbacks=[Grab()], **REC)
    assert type(seen["opt"]) is torch.optim.SGD and seen["opt"].defaults["momentum"] == 0.9
    assert res.record["train"]["optimizer"].startswith("torch.optim.sgd.SGD(")
    with pytest.raises(ConfigError, match="optimizer must be one of"):
        graphkit.fit("lightgcn", rec_ds, optimizer="adamax", **REC)


def test_cosine_scheduler_follows_its_formula_and_a_factory_is_accepted():
    lrs = []

    class LR(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            lrs.append(trainer.optimizer.param_groups[0]["lr"])

    graphkit.fit("gcn", sbm_dataset(), scheduler="cosine", callbacks=[LR()], **{**NODE, "epochs": 8})
    base = NODE["lr"]
    assert lrs == pytest.approx([base * (1 + math.cos(math.pi * e / 8)) / 2 for e in range(1, 9)])
    lrs.clear()
    graphkit.fit("gcn", sbm_dataset(), scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5),
                 callbacks=[LR()], **{**NODE, "epochs": 4})
    assert lrs == pytest.approx([base, base / 2, base / 2, base / 4])
    with pytest.raises(ConfigError, match="scheduler_options do not fit"):
        graphkit.fit("gcn", sbm_dataset(), scheduler="step", scheduler_options={"bogus": 1}, **NODE)


def test_budget_scheduler_decays_linearly_to_the_end_of_the_epoch_or_time_budget():
    from graphkit.training.engine import BudgetLR

    lrs = []

    class LR(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            lrs.append(trainer.optimizer.param_groups[0]["lr"])

    # no max_time: over the epochs, reaching `final` (here 0.2) at the last one
    graphkit.fit("gcn", sbm_dataset(), scheduler="budget", scheduler_options={"final": 0.2}, callbacks=[LR()],
                 **{**NODE, "epochs": 5})
    base = NODE["lr"]
    assert lrs == pytest.approx([base * (1 - 0.8 * e / 5) for e in range(1, 6)])
    # with max_time: the rate follows the clock, whatever the epoch count (Li et al., ICLR 2020)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.4)
    seconds = [0.0]
    sched = BudgetLR(opt, epochs=1000, max_time=10.0, clock=lambda: seconds[0])
    got = []
    for t in (1.0, 2.5, 7.5, 12.0):
        seconds[0] = t
        sched.step()
        got.append(sched.get_last_lr()[0])
    assert got == pytest.approx([0.36, 0.3, 0.1, 0.0])
    # the state a checkpoint keeps brings back the same schedule
    again = BudgetLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=9.9), epochs=1000, max_time=10.0,
                     clock=lambda: 5.0)
    again.load_state_dict(json.loads(json.dumps(sched.state_dict())))
    again.step()
    assert again.get_last_lr()[0] == pytest.approx(0.2) and again.last_epoch == 5
    with pytest.raises(ConfigError, match="takes only 'final'"):
        graphkit.fit("gcn", sbm_dataset(), scheduler="budget", scheduler_options={"gamma": 0.5}, **NODE)
    with pytest.raises(ConfigError, match=r"final must be a number in \[0, 1\]"):
        graphkit.fit("gcn", sbm_dataset(), scheduler="budget", scheduler_options={"final": 2}, **NODE)


# ----------------------------------------------------------------------------- resume, every task
def _same_run(a, b):
    assert a.metrics == b.metrics
    cols = [c for c in a.history.columns if "seconds" not in c]
    pd.testing.assert_frame_equal(a.history[cols], b.history[cols], check_exact=True)
    for k in ("best_epoch", "epochs_run", "stopped_by"):
        assert a.record[k] == b.record[k], k
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_node_resume_after_a_crash_is_bit_exact(tmp_path, monkeypatch):
    """In-process crash (fast); the kill -9 version for every task is below."""
    ds = sbm_dataset()
    kw = {**NODE, "scheduler": "cosine", "num_threads": 1}
    ref = graphkit.fit("gcn", ds, **kw)
    from graphkit.models.gcn import GCN

    original, calls = GCN.forward, [0]

    def crashing(self, x, graph):
        if self.training:
            calls[0] += 1
            if calls[0] == 13:
                raise RuntimeError("simulated crash")
        return original(self, x, graph)

    monkeypatch.setattr(GCN, "forward", crashing)
    with pytest.raises(RuntimeError, match="simulated"):
        graphkit.fit("gcn", ds, checkpoint_dir=str(tmp_path), checkpoint_every=5, **kw)
    assert read_checkpoint_meta(tmp_path / CHECKPOINT_FILE)["position"]["epoch"] == 11
    monkeypatch.undo()
    res = graphkit.fit("gcn", ds, checkpoint_dir=str(tmp_path), checkpoint_every=5, resume=True, **kw)
    _same_run(ref, res)
    assert res.record["resumed_from"] == [{"epoch": 11, "batch": 0, "reason": "checkpoint_every"}]
    # another task's checkpoint is refused by name
    with pytest.raises(CheckpointError, match="mismatch in .*hparams"):
        graphkit.fit("gcn", ds, checkpoint_dir=str(tmp_path), resume=True, **{**kw, "hidden_channels": 8})


CHILD = textwrap.dedent(r"""
    import json, os, signal, sys
    sys.path.insert(0, os.environ["GK_TESTS"])
    task, ckpt, out, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    import torch
    import graphkit
    from test_largegt import sbm as largegt_sbm
    from test_node_training import sbm_dataset

    kw = json.loads(os.environ["GK_KW"])
    if task == "node":
        model, ds, cls = "gcn", sbm_dataset(), graphkit.GCN
    else:
        model, ds, cls = "largegt", largegt_sbm(), graphkit.LargeGT
    if kill_at:
        original, calls = cls.forward, [0]

        def killing(self, *args, **kwargs):
            if self.training:
                calls[0] += 1
                if calls[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return original(self, *args, **kwargs)
        cls.forward = killing
    res = graphkit.fit(model, ds, checkpoint_dir=ckpt, resume=True, **kw)
    res.save(out)
""")


def _run_child(script, task, kw, ckpt, out, kill_at):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore", "GK_KW": json.dumps(kw), "GK_TESTS": str(REPO / "tests"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, str(script), task, str(ckpt), str(out), str(kill_at)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    return p.returncode, p.stdout.decode(errors="replace")


@pytest.mark.parametrize("task, kw, kill_at", [
    ("node", {**NODE, "scheduler": "cosine", "checkpoint_every": 4, "num_threads": 1}, 14),
    # LargeGT: 60 training nodes / 16 = 4 batches per epoch; killed in epoch 4, batch 3
    ("minibatch", {**LGT, "checkpoint_every": 1, "num_threads": 1}, 15),
])
def test_kill_9_mid_training_then_resume_equals_an_uninterrupted_run(tmp_path, task, kw, kill_at):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    rc, text = _run_child(script, task, kw, tmp_path / "ref-ckpt", tmp_path / "ref", 0)
    assert rc == 0, text[-3000:]
    rc, text = _run_child(script, task, kw, tmp_path / "ckpt", tmp_path / "out", kill_at)
    assert rc == -signal.SIGKILL, text[-3000:]
    meta = read_checkpoint_meta(tmp_path / "ckpt" / CHECKPOINT_FILE)
    assert meta["task"] == "node" and 1 < meta["position"]["epoch"] <= kw["epochs"]
    assert not (tmp_path / "out").exists()
    rc, text = _run_child(script, task, kw, tmp_path / "ckpt", tmp_path / "out", 0)
    assert rc == 0, text[-3000:]
    ra = json.loads((tmp_path / "ref" / "record.json").read_text())
    rb = json.loads((tmp_path / "out" / "record.json").read_text())
    assert ra["metrics"] == rb["metrics"] and ra["best_epoch"] == rb["best_epoch"]
    assert rb["resumed_from"][0]["epoch"] == meta["position"]["epoch"]
    ha = pd.read_csv(tmp_path / "ref" / "history.csv", dtype=str)
    hb = pd.read_csv(tmp_path / "out" / "history.csv", dtype=str)
    drop = [c for c in ha.columns if "seconds" in c]
    pd.testing.assert_frame_equal(ha.drop(columns=drop), hb.drop(columns=drop), check_exact=True)
    from graphkit.training.result import load_state_dict

    wa, wb = load_state_dict(tmp_path / "ref" / "model.safetensors"), load_state_dict(tmp_path / "out" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
