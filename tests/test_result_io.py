"""Saved results: FitResult.save (atomic as a folder, under a lock, umask-respecting, keeping what it
did not write) and FitResult.load (verified, safetensors only); filelock-based locks;
``graphkit fit --config FILE`` and ``graphkit fit --from record.json``."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import graphkit
from graphkit import CheckpointError, ConfigError
from graphkit.cli import main
from graphkit.models import LightGCN
from graphkit.training.result import CHECKSUMS_FILE, FitResult, _jsonable
from graphkit.utils import atomic_write, folder_leftovers, sha256_file

sys.path.insert(0, str(Path(__file__).parent))
from test_node_training import sbm_dataset  # noqa: E402
from test_bench import write_rec_folder  # noqa: E402
from test_training import planted_dataset  # noqa: E402

REC_KW = dict(epochs=2, eval_every=1, batch_size=128, lr=0.01, embedding_dim=8, num_layers=2, progress=False,
              preset=False, seed=3)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def rec_result():
    return graphkit.fit("lightgcn", planted_dataset(seed=1), **REC_KW)


def tagged_result(tag: int, dim: int = 4) -> FitResult:
    """A cheap FitResult whose weights, metrics, history and record all carry ``tag``."""
    model = LightGCN(num_users=5, num_items=7, embedding_dim=dim, num_layers=1)
    with torch.no_grad():
        model.embedding.weight.fill_(float(tag))
    record = {"model": "LightGCN", "task": "recommendation", "hparams": model.hparams(), "tag": tag}
    history = pd.DataFrame({"epoch": [1, 2], "loss": [float(tag), float(tag) / 2]})
    return FitResult(model, {"recall@20": float(tag)}, history, record)


def assert_consistent(res: FitResult) -> int:
    tag = res.record["tag"]
    assert torch.all(res.model.embedding.weight == float(tag))
    assert res.metrics == {"recall@20": float(tag)} and res.history["loss"].iloc[0] == float(tag)
    return tag


def listing(folder: Path):
    return sorted(os.listdir(folder))


def rewrite_checksums(folder: Path) -> None:
    """What someone editing the folder on purpose would do: make the manifest match again."""
    sums = json.loads((folder / CHECKSUMS_FILE).read_text())
    sums["sha256"] = {n: sha256_file(folder / n) for n in sums["sha256"]}
    (folder / CHECKSUMS_FILE).write_text(json.dumps(sums))


# ----------------------------------------------------------------------------- round trips
def test_lightgcn_result_round_trips(rec_result, tmp_path):
    res = rec_result
    out = res.save(tmp_path / "run")
    assert listing(out) == ["checksums.json", "history.csv", "model.safetensors", "record.json"]
    back = FitResult.load(out)
    assert type(back.model) is LightGCN and not back.model.training
    sa, sb = res.model.state_dict(), back.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert back.metrics == res.metrics
    pd.testing.assert_frame_equal(back.history, res.history, check_exact=True)
    assert back.record == json.loads(json.dumps(_jsonable(res.record)))
    assert back.record["hparams"]["num_users"] == 80 and back.record["hparams"]["embedding_dim"] == 8
    assert back.dataset is None and repr(back).startswith("FitResult(LightGCN, ")
    # a loaded result saves again to the same files
    again = back.save(tmp_path / "again")
    for name in ("model.safetensors", "record.json", "checksums.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_dataset_attribute_is_never_saved_nor_compared(rec_result, tmp_path):
    res = FitResult(rec_result.model, rec_result.metrics, rec_result.history, rec_result.record, dataset=object())
    assert res == FitResult(rec_result.model, rec_result.metrics, rec_result.history, rec_result.record)
    assert "dataset" not in repr(res)
    res.save(tmp_path / "r")
    assert FitResult.load(tmp_path / "r").dataset is None


def test_node_model_result_round_trips(tmp_path):
    res = graphkit.fit("gcn", sbm_dataset(), epochs=5, patience=0, progress=False, device="cpu", preset=False)
    back = FitResult.load(res.save(tmp_path / "gcn"), device="cpu")
    assert back.record["hparams"]["in_channels"] == 30 and back.record["hparams"]["num_classes"] == 3
    sa, sb = res.model.state_dict(), back.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert back.metrics == res.metrics and back.record == json.loads(json.dumps(_jsonable(res.record)))
    pd.testing.assert_frame_equal(back.history, res.history, check_exact=True)
    ds = sbm_dataset()
    with torch.no_grad():
        assert torch.equal(res.model(ds.x, ds.graph), back.model(ds.x, ds.graph))


# ----------------------------------------------------------------------------- atomic folder
def test_save_keeps_checkpoints_and_other_entries(tmp_path):
    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint.safetensors").write_bytes(b"state")
    (out / "notes.txt").write_text("mine")
    tagged_result(1).save(out)
    tagged_result(2).save(out)
    assert listing(out) == ["checkpoints", "checksums.json", "history.csv", "model.safetensors", "notes.txt",
                            "record.json"]
    assert (out / "checkpoints" / "checkpoint.safetensors").read_bytes() == b"state"
    assert (out / "notes.txt").read_text() == "mine"
    assert assert_consistent(FitResult.load(out)) == 2
    assert listing(tmp_path) == [".out.lock", "out"]  # no temporary folders left


def test_save_refuses_a_folder_a_live_training_run_is_writing(tmp_path):
    from graphkit.training.checkpoint import checkpoint_dir_lock

    out = tmp_path / "out"
    tagged_result(1).save(out)
    with checkpoint_dir_lock(out / "checkpoints"):
        with pytest.raises(ConfigError, match="another training run is writing checkpoints"):
            tagged_result(2).save(out)
    assert assert_consistent(FitResult.load(out)) == 1 and (out / "checkpoints").is_dir()
    tagged_result(3).save(out)  # the lock is free again
    assert assert_consistent(FitResult.load(out)) == 3 and (out / "checkpoints" / ".graphkit-train.lock").exists()


class _BrokenHistory:
    def to_csv(self, *args, **kwargs):
        raise RuntimeError("disk full (simulated)")


def test_an_interrupted_save_leaves_the_previous_folder_intact(tmp_path):
    out = tagged_result(1).save(tmp_path / "out")
    before = {n: (out / n).read_bytes() for n in listing(out)}
    bad = tagged_result(2)
    bad.history = _BrokenHistory()
    with pytest.raises(RuntimeError, match="simulated"):
        bad.save(out)
    assert {n: (out / n).read_bytes() for n in listing(out)} == before
    assert listing(tmp_path) == [".out.lock", "out"]
    with pytest.raises(RuntimeError, match="simulated"):
        bad.save(tmp_path / "new")  # nothing existed: nothing is created
    assert listing(tmp_path) == [".new.lock", ".out.lock", "out"]


def test_leftovers_of_a_crash_are_recovered_by_the_next_save(tmp_path):
    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "c").write_text("keep")
    tagged_result(1).save(out)
    # a crash between the two renames of a save: the old folder aside, the new one half-built
    os.rename(out, tmp_path / ".out.0123abcd.old")
    (tmp_path / ".out.zzzz9999.tmp").mkdir()
    (tmp_path / ".out.zzzz9999.tmp" / "model.safetensors").write_bytes(b"partial")
    (tmp_path / ".out.zzzz9999.tmp" / ".record.json.k3j4h5g6.tmp").write_bytes(b"{")
    with pytest.raises(CheckpointError, match=r"no such folder; not a saved FitResult \(an interrupted save left the previous one in"):
        FitResult.load(out)
    tagged_result(2).save(out)
    assert assert_consistent(FitResult.load(out)) == 2
    assert (out / "checkpoints" / "c").read_text() == "keep"
    assert listing(out) == ["checkpoints", "checksums.json", "history.csv", "model.safetensors", "record.json"]
    assert folder_leftovers(out) == [] and listing(tmp_path) == [".out.lock", "out"]
    # a crash after the entries were carried into the new folder, before the swap
    (tmp_path / ".out.abcdefgh.tmp").mkdir()
    os.rename(out / "checkpoints", tmp_path / ".out.abcdefgh.tmp" / "checkpoints")
    tagged_result(3).save(out)
    assert (out / "checkpoints" / "c").read_text() == "keep" and listing(tmp_path) == [".out.lock", "out"]


def test_save_refuses_the_current_directory_and_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="current directory"):
        tagged_result(1).save(".")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        tagged_result(1).save(tmp_path / "f")


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775)])
def test_saved_files_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        out = tagged_result(1).save(tmp_path / "out")
        with atomic_write(tmp_path / "plain.txt", "w") as fh:
            fh.write("x")
    finally:
        os.umask(old)
    assert os.stat(out).st_mode & 0o777 == dir_mode
    for name in listing(out):
        assert os.stat(out / name).st_mode & 0o777 == file_mode, name
    assert os.stat(tmp_path / "plain.txt").st_mode & 0o777 == file_mode


def _save_many(path: str, tag: int, times: int) -> None:
    for _ in range(times):
        tagged_result(tag).save(path)


def test_concurrent_saves_never_mix_two_runs(tmp_path):
    out = tmp_path / "out"
    tagged_result(0).save(out)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_save_many, args=(str(out), tag, 25)) for tag in (1, 2)]
    for p in procs:
        p.start()
    seen = set()
    deadline = time.monotonic() + 240
    while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
        seen.add(assert_consistent(FitResult.load(out)))  # a reader never sees a mix either
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    final = assert_consistent(FitResult.load(out))
    assert final in (1, 2) and seen <= {0, 1, 2}
    assert listing(tmp_path) == [".out.lock", "out"]
    assert listing(out) == ["checksums.json", "history.csv", "model.safetensors", "record.json"]


# ----------------------------------------------------------------------------- load validation
def test_tampered_or_mismatched_folders_raise_checkpoint_error(tmp_path):
    out = tagged_result(1).save(tmp_path / "a")
    other = tagged_result(2, dim=6).save(tmp_path / "b")

    rec = json.loads((out / "record.json").read_text())
    rec["hparams"]["embedding_dim"] = 6
    (out / "record.json").write_text(json.dumps(rec))
    with pytest.raises(CheckpointError, match=r"record\.json: sha256 .* differs from checksums\.json"):
        FitResult.load(out)
    rewrite_checksums(out)  # made consistent on purpose: the shapes still give it away
    with pytest.raises(CheckpointError, match=r"model\.safetensors: tensor 'embedding\.weight' has shape \(12, 4\).*"
                                              r"field 'hparams'.* expects \(12, 6\)"):
        FitResult.load(out)

    out = tagged_result(1).save(tmp_path / "a")
    (out / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())  # swapped weights
    with pytest.raises(CheckpointError, match=r"model\.safetensors: sha256"):
        FitResult.load(out)

    for field, value, message in [
        ("model", "NoSuchModel", r"record\.json: field 'model': unknown model class 'NoSuchModel'"),
        ("hparams", {"num_users": 5, "num_items": 7, "embedding_dim": -1}, r"field 'hparams' does not build"),
        ("hparams", {"num_users": 5}, r"field 'hparams': missing 'num_items'"),
        ("hparams", {"num_users": 5, "num_items": 7, "bogus": 1}, r"field 'hparams'.*takes no argument 'bogus'"),
        ("task", "node", r"field 'task'"),
        ("metrics", {"recall@20": "high"}, r"field 'metrics'"),
        ("format_version", 99, r"field 'format_version': 99"),
    ]:
        out = tagged_result(1).save(tmp_path / "a")
        rec = json.loads((out / "record.json").read_text())
        rec[field] = value
        (out / "record.json").write_text(json.dumps(rec))
        rewrite_checksums(out)
        with pytest.raises(CheckpointError, match=message):
            FitResult.load(out)

    out = tagged_result(1).save(tmp_path / "a")
    import pickle  # only to build the hostile file; graphkit never unpickles

    (out / "model.safetensors").write_bytes(pickle.dumps({"embedding.weight": np.zeros(3)}))
    rewrite_checksums(out)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        FitResult.load(out)
    for name in ("model.safetensors", "record.json", "history.csv", "checksums.json"):
        out = tagged_result(1).save(tmp_path / "a")
        (out / name).unlink()
        with pytest.raises(CheckpointError, match=rf"{name}: missing"):
            FitResult.load(out)
    with pytest.raises(CheckpointError, match="no such folder"):
        FitResult.load(tmp_path / "nowhere")


def test_format_1_folder_loads_with_a_warning(tmp_path):
    out = tagged_result(1).save(tmp_path / "a")
    rec = json.loads((out / "record.json").read_text())
    (out / "record.json").write_text(json.dumps({**rec, "format_version": 1}))
    (out / "checksums.json").unlink()
    with pytest.warns(UserWarning, match="files not verified"):
        assert assert_consistent(FitResult.load(out)) == 1


# ----------------------------------------------------------------------------- locks
def test_locks_exclude_a_second_holder_in_the_same_process(tmp_path):
    from graphkit.datasets.download import try_file_lock
    from graphkit.training.checkpoint import checkpoint_dir_lock

    with checkpoint_dir_lock(tmp_path / "ck"):
        with pytest.raises(ConfigError, match="another training run is writing checkpoints into"):
            with checkpoint_dir_lock(tmp_path / "ck"):
                pass
    with checkpoint_dir_lock(tmp_path / "ck"):  # released
        pass
    with try_file_lock(tmp_path / "x.lock") as first:
        with try_file_lock(tmp_path / "x.lock") as second:
            assert first and not second
    with try_file_lock(tmp_path / "x.lock") as again:
        assert again


# ----------------------------------------------------------------------------- CLI
def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def rec_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_CACHE", str(tmp_path / "cache"))
    return write_rec_folder(tmp_path / "data" / "rec")


def test_fit_from_record_reruns_the_same_run(rec_folder, tmp_path):
    r = invoke("fit", "lightgcn", "-d", rec_folder, "--preset", "fast", "--epochs", "3", "--seed", "5", "--quiet",
               "--set", "eval_every=1", "--set", "batch_size=64", "--set", "embedding_dim=8", "--out", tmp_path / "a")
    assert r.exit_code == 0, r.output
    first = FitResult.load(tmp_path / "a")
    r = invoke("fit", "--from", tmp_path / "a" / "record.json", "--data-dir", rec_folder.parent, "--quiet",
               "--out", tmp_path / "b")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.output
    again = FitResult.load(tmp_path / "b")
    assert again.metrics == first.metrics
    assert again.record["hparams"] == first.record["hparams"] and again.record["seed"] == 5
    assert {k: v for k, v in again.record["train"].items() if k != "progress"} == \
        {k: v for k, v in first.record["train"].items() if k != "progress"}
    sa, sb = first.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # the folder works as well as the file; the command line overrides the record
    r = invoke("fit", "--from", tmp_path / "a", "--dataset", rec_folder, "--epochs", "1", "--quiet")
    assert r.exit_code == 0 and "best epoch 1 of 1" in r.output, r.output


def test_fit_config_file_with_command_line_overrides(rec_folder, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"model: lightgcn\ndataset: {rec_folder}\nseed: 4\npreset: none\nepochs: 2\nquiet: true\n"
                   "hparams:\n  embedding_dim: 8\n  batch_size: 64\n  eval_every: 1\n"
                   f"out: {tmp_path / 'y'}\n")
    r = invoke("fit", "--config", cfg)
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "y" / "record.json").read_text())
    assert rec["seed"] == 4 and rec["hparams"]["embedding_dim"] == 8 and rec["train"]["batch_size"] == 64
    assert rec["epochs_run"] == 2 and rec["hparams"]["num_layers"] == 3  # preset none: the class default
    r = invoke("fit", "--config", cfg, "--seed", "6", "--set", "embedding_dim=4", "--out", tmp_path / "z")
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "z" / "record.json").read_text())
    assert rec["seed"] == 6 and rec["hparams"]["embedding_dim"] == 4
    js = tmp_path / "run.json"
    js.write_text(json.dumps({"dataset": str(rec_folder), "no-preset": True, "epochs": 1, "quiet": True,
                              "hparams": {"embedding_dim": 4, "batch_size": 64}}))
    r = invoke("fit", "lightgcn", "--config", js)
    assert r.exit_code == 0 and "best epoch 1 of 1" in r.output, r.output


@pytest.mark.parametrize("text, message", [
    ("model: lightgcn\nepochz: 3\n", r"run\.yaml:2: unknown key 'epochz'"),
    ("model: lightgcn\nseed: [1, 2\n", r"run\.yaml:3: not valid YAML"),
    ("model: lightgcn\nseed: three\n", r"run\.yaml:2: key 'seed' must be an integer, got 'three'"),
    ("model: lightgcn\nhparams: [1, 2]\n", r"run\.yaml:2: key 'hparams' must be a mapping"),
    ("- lightgcn\n", r"run\.yaml: expected a mapping"),
    ("seed: 1\n", r"no MODEL given"),
    ("model: lightgcn\n", r"no dataset given"),
    ("model: !!python/object/apply:os.system ['echo hacked']\n", r"run\.yaml:1: not valid YAML"),
])
def test_fit_config_errors_are_one_line(tmp_path, text, message):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    r = invoke("fit", "--config", cfg)
    assert r.exit_code == 2 and "Traceback" not in r.output and "hacked" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    import re

    assert re.search(message, lines[0]), lines[0]


def test_fit_from_errors_are_one_line(tmp_path):
    r = invoke("fit", "--config", tmp_path / "missing.yaml")
    assert r.exit_code == 2 and "missing.yaml: no such file" in r.output
    r = invoke("fit", "--from", tmp_path / "nothing" / "record.json")
    assert r.exit_code == 2 and "record.json: no such file" in r.output
    bad = tmp_path / "record.json"
    bad.write_text('{"model": "LightGCN",\n "dataset": }')
    r = invoke("fit", "--from", bad)
    assert r.exit_code == 2 and "record.json:2: not valid JSON" in r.output
    bad.write_text(json.dumps({"model": "Nope", "dataset": "x", "seed": 1, "hparams": {}}))
    r = invoke("fit", "--from", bad)
    assert r.exit_code == 2 and "unknown model class 'Nope'" in r.output and "Traceback" not in r.output
