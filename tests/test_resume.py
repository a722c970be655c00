"""Resumable training: checkpoints every N epochs and on signals, resume after a crash or a
``kill -9``, bit-exact equality with an uninterrupted run (CPU), refusal of mismatched runs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import graphkit
from graphkit import CheckpointError, ConfigError
from graphkit.training.checkpoint import (
    CHECKPOINT_FILE, capture_rng_state, checkpoint_dir_lock, load_checkpoint, read_checkpoint_meta,
    restore_rng_state, save_checkpoint,
)

sys.path.insert(0, str(Path(__file__).parent))
from test_training import planted_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# patience=2 with validation every epoch: this run stops early (epoch 9 of 12), so the
# patience counter and the best state are part of what a resume has to restore.
KW = dict(embedding_dim=8, num_layers=1, epochs=12, eval_every=1, batch_size=64, lr=0.05, progress=False,
          patience=2, seed=3)
STEPS = 12  # batches per epoch of planted_dataset(seed=1) with batch_size 64 (708 interactions)


@pytest.fixture(scope="module")
def ds():
    return planted_dataset(seed=1)


@pytest.fixture(scope="module")
def reference(ds):
    """The uninterrupted run (no checkpointing at all)."""
    return graphkit.fit("lightgcn", ds, **KW)


def assert_same_run(a, b):
    """Bit-exact: test metrics, every history value but wall times, selected weights."""
    assert a.metrics == b.metrics
    cols = [c for c in a.history.columns if "seconds" not in c]
    assert list(b.history.columns) == list(a.history.columns)
    pd.testing.assert_frame_equal(a.history[cols], b.history[cols], check_exact=True)
    for k in ("best_epoch", "best_valid", "epochs_run", "stopped_by"):
        assert a.record[k] == b.record[k], k
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def failing_loss(monkeypatch, at_call, action):
    """Make LightGCN.loss run ``action()`` on its ``at_call``-th call (1-based)."""
    return failing_loss_of(graphkit.LightGCN, monkeypatch, at_call, action)


def failing_loss_of(cls, monkeypatch, at_call, action):
    original = cls.loss
    calls = [0]

    def loss(self, u, p, n):
        calls[0] += 1
        if calls[0] == at_call:
            action()
        return original(self, u, p, n)

    monkeypatch.setattr(cls, "loss", loss)
    return calls


def test_reference_stops_early(reference):
    assert reference.record["stopped_by"] == "early stopping" and reference.record["epochs_run"] < KW["epochs"]


@pytest.fixture(scope="module")
def checkpointed(ds, tmp_path_factory):
    """A run with checkpointing, started with resume=True on an empty folder."""
    folder = tmp_path_factory.mktemp("checkpointed")
    with pytest.warns(UserWarning, match="no checkpoint"):
        res = graphkit.fit("lightgcn", ds, checkpoint_dir=str(folder), checkpoint_every=2, resume=True, **KW)
    return res, folder


def test_checkpointing_does_not_change_the_run(reference, checkpointed):
    res, folder = checkpointed
    assert_same_run(reference, res)
    meta = read_checkpoint_meta(folder / CHECKPOINT_FILE)
    assert meta["stopped_by"] == "early stopping" and meta["reason"] == "end of training"
    assert meta["position"] == {"epoch": res.record["epochs_run"] + 1, "batch": 0, "steps": STEPS}
    assert "resumed_from" not in res.record
    assert sorted(p.name for p in folder.iterdir()) == [
        ".graphkit-train.lock", "best.json", "best.safetensors", CHECKPOINT_FILE, "last.json", "last.safetensors"]


def test_resume_after_a_crash_is_bit_exact(ds, reference, tmp_path, monkeypatch):
    class Crash(RuntimeError):
        pass

    def crash():
        raise Crash("simulated crash")

    failing_loss(monkeypatch, 4 * STEPS + 5, crash)  # inside epoch 5
    with pytest.raises(Crash):
        graphkit.fit("lightgcn", ds, checkpoint_dir=str(tmp_path), checkpoint_every=1, **KW)
    meta = read_checkpoint_meta(tmp_path / CHECKPOINT_FILE)
    assert meta["position"]["epoch"] == 5 and meta["position"]["batch"] == 0 and len(meta["history"]) == 4
    monkeypatch.undo()
    res = graphkit.fit("lightgcn", ds, checkpoint_dir=str(tmp_path), resume=True, checkpoint_every=1, **KW)
    assert_same_run(reference, res)
    assert res.record["resumed_from"] == [{"epoch": 5, "batch": 0, "reason": "checkpoint_every"}]


@pytest.mark.parametrize("sig, exc", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)])
def test_signal_checkpoints_mid_epoch_then_resume_is_bit_exact(ds, reference, tmp_path, monkeypatch, sig, exc):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    failing_loss(monkeypatch, 2 * STEPS + 4, lambda: signal.raise_signal(sig))  # epoch 3, batch 3
    with pytest.raises(exc) as info:
        graphkit.fit("lightgcn", ds, checkpoint_dir=str(tmp_path), checkpoint_every=100, **KW)
    if exc is SystemExit:
        assert info.value.code == 128 + signal.SIGTERM
    else:
        assert "checkpoint saved" in str(info.value) and "resume=True" in str(info.value)
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored
    meta = read_checkpoint_meta(tmp_path / CHECKPOINT_FILE)
    # the signal arrived inside batch 3; that batch finished, the checkpoint resumes at batch 4
    assert meta["position"] == {"epoch": 3, "batch": 4, "steps": STEPS}
    assert meta["reason"].startswith("signal SIG") and len(meta["history"]) == 2
    monkeypatch.undo()
    res = graphkit.fit("lightgcn", ds, checkpoint_dir=str(tmp_path), resume=True, checkpoint_every=100, **KW)
    assert_same_run(reference, res)
    assert res.record["resumed_from"][0]["batch"] == 4


def test_ultragcn_resume_is_bit_exact(ds, tmp_path, monkeypatch):
    kw = dict(embedding_dim=8, num_neighbors=5, epochs=4, eval_every=2, batch_size=128, lr=0.01, progress=False,
              patience=0, seed=5)
    ref = graphkit.fit("ultragcn", ds, **kw)
    steps = int(np.ceil(ds.train.nnz / 128))

    def crash():
        raise KeyboardInterrupt("simulated")

    failing_loss_of(graphkit.UltraGCN, monkeypatch, 2 * steps + 2, crash)
    with pytest.raises(KeyboardInterrupt):
        graphkit.fit("ultragcn", ds, checkpoint_dir=str(tmp_path), checkpoint_every=1, **kw)
    monkeypatch.undo()
    res = graphkit.fit("ultragcn", ds, checkpoint_dir=str(tmp_path), checkpoint_every=1, resume=True, **kw)
    assert res.record["resumed_from"][0]["epoch"] == 3
    assert_same_run(ref, res)


def test_signal_on_the_last_batch_checkpoints_at_the_epoch_boundary(ds, tmp_path, monkeypatch):
    failing_loss(monkeypatch, STEPS, lambda: signal.raise_signal(signal.SIGINT))  # last batch of epoch 1
    with pytest.raises(KeyboardInterrupt, match="after epoch 1"):
        graphkit.fit("lightgcn", ds, checkpoint_dir=str(tmp_path), **KW)
    assert read_checkpoint_meta(tmp_path / CHECKPOINT_FILE)["position"] == {"epoch": 2, "batch": 0, "steps": STEPS}


def test_a_second_signal_stops_at_once(ds, tmp_path, monkeypatch):
    def twice():
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    failing_loss(monkeypatch, 3, twice)
    with pytest.raises(KeyboardInterrupt, match="received twice"):
        graphkit.fit("lightgcn", ds, checkpoint_dir=str(tmp_path), **KW)
    assert not (tmp_path / CHECKPOINT_FILE).exists()
    assert signal.getsignal(signal.SIGINT) is before


def test_no_handlers_without_checkpoint_dir(ds, monkeypatch):
    before, seen = signal.getsignal(signal.SIGINT), []
    failing_loss(monkeypatch, 1, lambda: seen.append(signal.getsignal(signal.SIGINT)))
    graphkit.fit("lightgcn", ds, **{**KW, "epochs": 1})
    assert seen == [before]


def test_resuming_a_finished_run_only_evaluates(ds, reference, checkpointed, monkeypatch):
    failing_loss(monkeypatch, 1, lambda: pytest.fail("a finished run must not train again"))
    res = graphkit.fit("lightgcn", ds, checkpoint_dir=str(checkpointed[1]), checkpoint_every=2, resume=True, **KW)
    assert_same_run(reference, res)


def test_resume_needs_checkpoint_dir(ds):
    with pytest.raises(ConfigError, match="resume=True needs checkpoint_dir"):
        graphkit.fit("lightgcn", ds, resume=True, **KW)
    with pytest.raises(ConfigError, match="checkpoint_every needs checkpoint_dir"):
        graphkit.fit("lightgcn", ds, checkpoint_every=1, **KW)
    from graphkit.models.gcn import GCN
    from test_node_training import sbm_dataset

    with pytest.raises(ConfigError, match="resume=True needs checkpoint_dir"):  # node tasks resume too
        graphkit.fit(GCN, sbm_dataset(), resume=True, epochs=2, progress=False)


def test_mismatched_runs_are_refused_by_name(ds, tmp_path):
    short = {**KW, "epochs": 2}
    graphkit.fit("lightgcn", ds, checkpoint_dir=str(tmp_path), **short)
    with pytest.raises(CheckpointError, match=r"config lr: checkpoint 0\.05, now 0\.01"):
        graphkit.fit("lightgcn", ds, checkpoint_dir=str(tmp_path), resume=True, **{**short, "lr": 0.01})
    with pytest.raises(CheckpointError, match=r"config seed: checkpoint 3, now 4"):
        graphkit.fit("lightgcn", ds, checkpoint_dir=str(tmp_path), resume=True, **{**short, "seed": 4})
    with pytest.raises(CheckpointError, match="hparams"):
        graphkit.fit("lightgcn", ds, checkpoint_dir=str(tmp_path), resume=True, **{**short, "embedding_dim": 4})
    other = planted_dataset(seed=2)
    with pytest.raises(CheckpointError, match="fingerprint: checkpoint") as info:
        graphkit.fit("lightgcn", other, checkpoint_dir=str(tmp_path), resume=True, **short)
    assert ds.fingerprint in str(info.value) and other.fingerprint in str(info.value)
    # run-control fields may change: more epochs continue the same run
    longer = graphkit.fit("lightgcn", ds, checkpoint_dir=str(tmp_path), resume=True, **{**short, "epochs": 3})
    assert longer.record["epochs_run"] == 3 and longer.record["resumed_from"][0]["epoch"] == 3


def test_a_second_run_into_the_same_folder_is_refused(ds, tmp_path):
    with checkpoint_dir_lock(tmp_path):
        with pytest.raises(ConfigError, match="another training run"):
            graphkit.fit("lightgcn", ds, checkpoint_dir=str(tmp_path), **{**KW, "epochs": 1})
    graphkit.fit("lightgcn", ds, checkpoint_dir=str(tmp_path), **{**KW, "epochs": 1})  # released


# ----------------------------------------------------------------------------- checkpoint module
@pytest.mark.parametrize("make_opt", [
    lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.8, 0.9), amsgrad=True),
    lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
])
def test_optimizer_and_rng_state_round_trip(tmp_path, make_opt):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = make_opt(list(model.parameters()))
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    np.random.seed(5)
    save_checkpoint(tmp_path / "c.safetensors", model_state=model.state_dict(), optimizer_state=opt.state_dict(),
                    best_state={"w": torch.ones(2)}, meta={"epoch": 3, "history": [{"loss": 0.1 + 0.2}]})
    expected = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(123), np.random.seed(9)  # scramble
    ck = load_checkpoint(tmp_path / "c.safetensors")
    restore_rng_state(ck.rng["tensors"], ck.rng["json"])
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert ck.meta["history"][0]["loss"] == 0.1 + 0.2 and ck.meta["epoch"] == 3
    assert torch.equal(ck.best_state["w"], torch.ones(2))
    # a fresh optimizer loaded from the checkpoint takes exactly the same next step
    model2 = torch.nn.Linear(4, 3)
    model2.load_state_dict(ck.model_state)
    opt2 = make_opt(list(model2.parameters()))
    opt2.load_state_dict(ck.optimizer_state)
    x = torch.randn(5, 4)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).pow(2).sum().backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters()))
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for pid in s1["state"]:
        for k, v in s1["state"][pid].items():
            assert torch.equal(v, s2["state"][pid][k]) if isinstance(v, torch.Tensor) else v == s2["state"][pid][k]


def test_rng_capture_covers_python_numpy_torch():
    import random

    tensors, js = capture_rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    restore_rng_state(tensors, js)
    assert (random.random(), np.random.rand()) == a[:2] and torch.equal(torch.rand(1), a[2])


def test_tied_weights_are_stored(tmp_path):
    w = torch.randn(3, 2)
    save_checkpoint(tmp_path / "t.safetensors", model_state={"a": w, "b": w}, meta={}, rng=False)
    ck = load_checkpoint(tmp_path / "t.safetensors")
    assert torch.equal(ck.model_state["a"], w) and torch.equal(ck.model_state["b"], w)


# ----------------------------------------------------------------------------- kill -9 in subprocesses
CHILD = textwrap.dedent(r"""
    import contextlib, json, os, signal, sys
    folder, ckpt, out, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    import graphkit
    import graphkit.training.checkpoint as ck

    if mode == "kill-in-save":          # SIGKILL after the n-th checkpoint file is written, before its rename
        original_write, count = ck.atomic_write, [0]

        @contextlib.contextmanager
        def killing_write(path, mode="wb"):
            count[0] += 1
            with original_write(path, mode) as fh:
                yield fh
                if count[0] == n:
                    fh.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
        ck.atomic_write = killing_write
    elif mode == "kill-in-batch":       # SIGKILL inside the n-th training step (mid-epoch)
        original_loss, count = graphkit.LightGCN.loss, [0]

        def killing_loss(self, u, p, neg):
            count[0] += 1
            if count[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return original_loss(self, u, p, neg)
        graphkit.LightGCN.loss = killing_loss
    kw = json.loads(os.environ["GK_KW"])
    res = graphkit.fit("lightgcn", folder, checkpoint_dir=ckpt, resume=mode != "fresh", **kw)
    res.save(out)
""")
SUB_KW = dict(embedding_dim=16, num_layers=2, epochs=8, eval_every=2, batch_size=64, lr=0.01, patience=0,
              checkpoint_every=1, num_threads=1, progress=False)
SUB_SEED = 11


def write_lightgcn_folder(folder: Path) -> None:
    data = planted_dataset(seed=0, U=200, I=300)
    folder.mkdir(parents=True)
    for name, mat in (("train.txt", data.full_train), ("test.txt", data.test)):
        lines = [" ".join(map(str, [u, *mat.indices[mat.indptr[u]:mat.indptr[u + 1]]])) for u in range(mat.shape[0])]
        (folder / name).write_text("\n".join(lines) + "\n")


def child_env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore", "GK_KW": json.dumps({**SUB_KW, "seed": SUB_SEED})}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def launch_child(script: Path, folder: Path, ckpt: Path, out: Path, mode: str, n: int = 0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script), str(folder), str(ckpt), str(out), mode, str(n)],
                            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def launch_cli(folder: Path, out: Path) -> subprocess.Popen:
    kw = {k: v for k, v in SUB_KW.items() if k not in ("epochs", "num_threads", "progress")}
    sets = [a for k, v in kw.items() for a in ("--set", f"{k}={v}")]
    return subprocess.Popen(
        [sys.executable, "-m", "graphkit.cli", "fit", "lightgcn", "--dataset", str(folder), "--epochs",
         str(SUB_KW["epochs"]), "--threads", "1", "--seed", str(SUB_SEED), "--quiet", "--no-preset", "--out", str(out),
         "--resume", *sets],
        env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, expect_rc: int, timeout: float = 120) -> str:
    out, _ = proc.communicate(timeout=timeout)
    text = out.decode(errors="replace")
    assert proc.returncode == expect_rc, f"exit {proc.returncode}, expected {expect_rc}:\n{text[-3000:]}"
    return text


def saved_run(out: Path):
    from graphkit.training.result import load_state_dict

    record = json.loads((out / "record.json").read_text())
    hist = pd.read_csv(out / "history.csv", dtype=str)  # compare the written digits exactly
    return record, hist.drop(columns=[c for c in hist.columns if "seconds" in c]), load_state_dict(out / "model.safetensors")


def assert_same_saved(a: Path, b: Path) -> None:
    ra, ha, wa = saved_run(a)
    rb, hb, wb = saved_run(b)
    assert ra["metrics"] == rb["metrics"] and ra["best_epoch"] == rb["best_epoch"]
    pd.testing.assert_frame_equal(ha, hb, check_exact=True)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def wait_for_checkpoint(path: Path, epoch: int, proc: subprocess.Popen, timeout: float = 90) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, "the run ended before it could be killed: " + proc.stdout.read().decode()[-2000:]
        if path.exists():
            try:
                meta = read_checkpoint_meta(path)
            except CheckpointError:  # pragma: no cover - never half-written, but be patient
                meta = None
            if meta and meta["position"]["epoch"] > epoch:
                return meta
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint past epoch {epoch} within {timeout}s")


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path):
    """Faults: SIGKILL while a checkpoint file is being written (before its rename), SIGKILL
    inside a training step mid-epoch, and an external ``kill -9`` of ``graphkit fit`` once a
    checkpoint exists.  Each resume must end bit-identical to the uninterrupted run."""
    folder = tmp_path / "data"
    write_lightgcn_folder(folder)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    steps = int(np.ceil(read_folder_train_size(folder) / SUB_KW["batch_size"]))

    # wave 1: reference | killed while writing its 3rd checkpoint | CLI run killed from outside
    ref = launch_child(script, folder, tmp_path / "ref-ckpt", tmp_path / "ref", "fresh")
    a = launch_child(script, folder, tmp_path / "ckpt", tmp_path / "out", "kill-in-save", 3)
    cli = launch_cli(folder, tmp_path / "cli")
    cli_ckpt = tmp_path / "cli" / "checkpoints" / CHECKPOINT_FILE
    try:
        wait_for_checkpoint(cli_ckpt, 2, cli)
        cli.send_signal(signal.SIGKILL)
        finish(cli, -signal.SIGKILL)
        finish(a, -signal.SIGKILL)
        finish(ref, 0)
    finally:
        for p in (ref, a, cli):
            if p.poll() is None:
                p.kill()
    killed_at = read_checkpoint_meta(cli_ckpt)["position"]
    assert killed_at["epoch"] >= 3 and not (tmp_path / "cli" / "record.json").exists()
    # the interrupted write left its temporary file; the previous checkpoint is intact (after epoch 2)
    ckpt = tmp_path / "ckpt" / CHECKPOINT_FILE
    assert read_checkpoint_meta(ckpt)["position"] == {"epoch": 3, "batch": 0, "steps": steps}
    assert len(list(ckpt.parent.glob(f".{CHECKPOINT_FILE}.*.tmp"))) == 1
    load_checkpoint(ckpt)  # verifies the tensor sha256

    # wave 2: resume, killed again mid-epoch 5 | CLI resume to the end
    b = launch_child(script, folder, tmp_path / "ckpt", tmp_path / "out", "kill-in-batch", 2 * steps + steps // 2)
    cli2 = launch_cli(folder, tmp_path / "cli")
    try:
        finish(b, -signal.SIGKILL)
        finish(cli2, 0)
    finally:
        for p in (b, cli2):
            if p.poll() is None:
                p.kill()
    assert not list(ckpt.parent.glob(f".{CHECKPOINT_FILE}.*.tmp"))  # stale temporary removed on resume
    assert read_checkpoint_meta(ckpt)["position"] == {"epoch": 5, "batch": 0, "steps": steps}
    assert_same_saved(tmp_path / "ref", tmp_path / "cli")
    assert json.loads((tmp_path / "cli" / "record.json").read_text())["resumed_from"][0]["epoch"] == killed_at["epoch"]

    # wave 3: resume to the end
    finish(launch_child(script, folder, tmp_path / "ckpt", tmp_path / "out", "resume", 0), 0)
    assert_same_saved(tmp_path / "ref", tmp_path / "out")
    resumed = json.loads((tmp_path / "out" / "record.json").read_text())["resumed_from"]
    assert [r["epoch"] for r in resumed] == [3, 5]


def read_folder_train_size(folder: Path) -> int:
    """Interactions the trainer iterates over: train.txt minus the carved validation split."""
    return int(graphkit.datasets.load(folder).train.nnz)
