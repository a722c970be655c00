"""`graphkit bench` and `graphkit datasets download|verify`: the CLI end to end on Cora, a small
recommendation folder and a small node dataset in ogb's own layout (loaded by ogb's loader)."""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from click.testing import CliRunner

from graphkit import bench
from graphkit.cli import main
from graphkit.exceptions import ConfigError, DatasetError

from conftest import require_dataset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def write_rec_folder(folder: Path, users: int = 60, items: int = 40, seed: int = 0) -> Path:
    """Two taste groups: users of group g interact with items of group g (train and test disjoint)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    half = items // 2
    with open(folder / "train.txt", "w") as tr, open(folder / "test.txt", "w") as te:
        for u in range(users):
            pool = np.arange(half) + (half if u % 2 else 0)
            chosen = rng.choice(pool, size=8, replace=False)
            tr.write(" ".join(map(str, [u, *sorted(chosen[:6])])) + "\n")
            te.write(" ".join(map(str, [u, *sorted(chosen[6:])])) + "\n")
    return folder


def write_ogb_node_folder(folder: Path, n: int = 90, classes: int = 3, seed: int = 0) -> Path:
    """A stochastic block model in ogb's node-property layout with a meta_dict.json."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    edges = []
    for i in range(n):
        for j in range(i + 1, n):
            if rng.random() < (0.3 if y[i] == y[j] else 0.005):
                edges.append((i, j))
    edges_arr = np.array(edges, dtype=np.int64)
    feats = np.eye(classes)[y] * 1.0 + rng.normal(scale=1.0, size=(n, classes))
    perm = rng.permutation(n)
    tables = {
        "raw/edge.csv.gz": edges_arr,
        "raw/num-node-list.csv.gz": [[n]],
        "raw/num-edge-list.csv.gz": [[len(edges_arr)]],
        "raw/node-feat.csv.gz": feats.round(5),
        "raw/node-label.csv.gz": y[:, None],
        "split/random/train.csv.gz": np.sort(perm[:30])[:, None],
        "split/random/valid.csv.gz": np.sort(perm[30:60])[:, None],
        "split/random/test.csv.gz": np.sort(perm[60:])[:, None],
    }
    for rel, table in tables.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt") as fh:
            fh.writelines(",".join(str(v) for v in row) + "\n" for row in table)
    (folder / "RELEASE_v1.txt").write_text("test dataset v1\n")
    meta = {
        "name": "ogbn-sbm", "version": 1, "download_name": "sbm", "url": "https://example.invalid/sbm.zip",
        "num tasks": 1, "task type": "multiclass classification", "eval metric": "acc", "num classes": classes,
        "is hetero": "False", "binary": "False", "add_inverse_edge": "True", "has_node_attr": "True",
        "has_edge_attr": "False", "split": "random", "additional node files": "None",
        "additional edge files": "None",
    }
    (folder / "meta_dict.json").write_text(json.dumps(meta))
    return folder


# ----------------------------------------------------------------------------- pure pieces
def test_parse_seeds():
    assert bench.parse_seeds(3) == [0, 1, 2]
    assert bench.parse_seeds("3") == [0, 1, 2]
    assert bench.parse_seeds("0,5,7") == [0, 5, 7]
    for bad in (0, "x", "1,1", True):
        with pytest.raises(ConfigError):
            bench.parse_seeds(bad)


def test_unknown_model_and_dataset_list_the_valid_names(tmp_path):
    r = invoke("bench", "--models", "nosuchmodel", "--datasets", "cora", "--out", str(tmp_path))
    assert r.exit_code == 2
    assert "nosuchmodel" in r.output and "lightgcn" in r.output and "dagnn" in r.output
    r = invoke("bench", "--models", "gcn", "--datasets", "nosuchdata", "--out", str(tmp_path))
    assert r.exit_code == 2
    assert "nosuchdata" in r.output and "gowalla" in r.output and "cora" in r.output
    r = invoke("bench", "--out", str(tmp_path))
    assert r.exit_code == 2 and "--models" in r.output and "ultragcn" in r.output
    with pytest.raises(ConfigError, match="not one of the grid's models"):
        bench.plan_grid("gcn", "cora", 1, overrides={"dagnn.K": 3})


def test_plan_grid_skips_mismatched_tasks_and_routes_overrides(tmp_path):
    rec = write_rec_folder(tmp_path / "rec")
    runs, skipped = bench.plan_grid("lightgcn,gcn", [str(rec)], 2, overrides={"lr": 0.1, "lightgcn.num_layers": 1})
    assert [(r.model, r.seed) for r in runs] == [("lightgcn", 0), ("lightgcn", 1)]
    assert runs[0].hparams == {"lr": 0.1, "num_layers": 1}
    assert skipped and skipped[0][0] == "gcn"
    with pytest.raises(ConfigError, match="no .* pair"):
        bench.plan_grid("gcn", [str(rec)], 1)
    with pytest.raises(ConfigError, match="gcn is a node model, ogbg-molesol a graph dataset"):
        bench.plan_grid("gcn", "ogbg-molesol", 1)


def test_compare_paper_and_summary_against_hand_computation():
    recs: List[Dict[str, Any]] = [
        {"run_id": f"dagnn__cora__seed{s}", "model": "dagnn", "dataset": "cora", "seed": s, "status": "ok",
         "task": "node", "metrics": {"accuracy": a, "macro_f1": a - 0.01}, "wall_seconds": 2.0, "peak_rss_mb": 100.0,
         "fingerprint": "abc"} for s, a in enumerate([0.84, 0.85, 0.83])
    ] + [{"run_id": "dagnn__cora__seed3", "model": "dagnn", "dataset": "cora", "seed": 3, "status": "failed",
          "task": "node", "error": "boom"}]
    summary = bench.summarize(recs)
    row = summary.iloc[0]
    assert row["seeds"] == 3 and row["failed"] == 1
    assert row["accuracy_mean"] == pytest.approx(0.84)
    assert row["accuracy_std"] == pytest.approx(0.01)  # sample std of 0.84, 0.85, 0.83
    cmp = bench.compare_paper(summary)
    assert list(cmp["metric"]) == ["accuracy"]
    assert cmp["paper"].iloc[0] == 0.844 and cmp["diff"].iloc[0] == pytest.approx(0.84 - 0.844)
    md = bench.leaderboard_markdown(summary, compare="paper")
    assert "| dagnn | 0.8400 ± 0.0100 | 0.8300 ± 0.0100 | 0.8440 | -0.0040 | 3 | 1 |" in md


# ----------------------------------------------------------------------------- end to end
def test_cli_end_to_end_cora_and_recommendation_folder(tmp_path):
    require_dataset("planetoid", "raw", "ind.cora.x")
    from graphkit import datasets

    rec_dir = write_rec_folder(tmp_path / "tinyrec")
    out = tmp_path / "bench"
    args = ["bench", "--models", "gcn,dagnn,lightgcn", "--datasets", f"cora,{rec_dir}", "--seeds", "2",
            "--epochs", "4", "--threads", "1", "--set", "lightgcn.batch_size=64", "--set", "lightgcn.eval_every=1",
            "--set", "lightgcn.ks=[5,20]", "--out", str(out), "--compare", "paper", "--no-isolate"]
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    assert "skip lightgcn on cora" in r.output and "skip gcn on tinyrec" in r.output
    records = bench.load_records(out)
    assert sorted(x["run_id"] for x in records) == sorted(
        [f"{m}__cora__seed{s}" for m in ("gcn", "dagnn") for s in (0, 1)] + ["lightgcn__tinyrec__seed0",
                                                                             "lightgcn__tinyrec__seed1"])
    cora_fp = datasets.load("cora").fingerprint
    rec_fp = datasets.load(str(rec_dir)).fingerprint
    for x in records:
        assert x["status"] == "ok"
        assert x["fingerprint"] == (cora_fp if x["dataset"] == "cora" else rec_fp)
        assert x["versions"]["torch"] and x["device"].startswith("cpu")
        assert x["hparams"] and x["train"]["epochs"] == 4 and x["train"]["seed"] == x["seed"]
        assert x["wall_seconds"] > 0 and x["peak_rss_mb"] > 50
        assert len(x["history"]["epoch"]) == x["epochs_run"] <= 4
    # the records of the two seeds differ (the seed reaches the model)
    gcn = {x["seed"]: x for x in records if x["model"] == "gcn"}
    assert gcn[0]["metrics"] != gcn[1]["metrics"]

    # results.csv: one row per run, values equal to the records
    import pandas as pd

    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == 6
    for x in records:
        row = csv[(csv["model"] == x["model"]) & (csv["seed"] == x["seed"]) & (csv["dataset"] == x["dataset"])]
        metric = "accuracy" if x["task"] == "node" else "recall@20"
        assert float(row[metric].iloc[0]) == pytest.approx(x["metrics"][metric])
    # leaderboard: mean ± sample std recomputed independently from the records
    md = (out / "leaderboard.md").read_text()
    accs = [x["metrics"]["accuracy"] for x in records if x["model"] == "dagnn"]
    assert f"{np.mean(accs):.4f} ± {np.std(accs, ddof=1):.4f}" in md
    assert "## cora (node; split " + cora_fp in md and "## tinyrec (recommendation" in md
    assert "paper accuracy" in md and "0.8440" in md
    assert "compared with the papers" in r.output
    for name in ("cora_valid.png", "cora_epoch_time.png", "tinyrec_valid.png", "tinyrec_epoch_time.png"):
        assert (out / "plots" / name).read_bytes()[:8] == PNG_MAGIC

    # resumable: the same command skips every finished run and leaves the records untouched
    before = {p.name: p.read_bytes() for p in (out / "runs").glob("*.json")}
    r2 = invoke(*args)
    assert r2.exit_code == 0
    assert r2.output.count("(recorded, skipped)") == 6 and ": running" not in r2.output
    assert {p.name: p.read_bytes() for p in (out / "runs").glob("*.json")} == before
    # --report-only rebuilds the tables from the records alone
    (out / "leaderboard.md").unlink()
    r3 = invoke("bench", "--report-only", "--out", str(out), "--no-plots")
    assert r3.exit_code == 0 and (out / "leaderboard.md").read_text().count("| gcn |") == 1


def test_failed_run_is_recorded_and_the_grid_goes_on(tmp_path):
    rec_dir = write_rec_folder(tmp_path / "rec")
    out = tmp_path / "bench"
    # ultragcn gets an impossible hyper-parameter: its runs fail, lightgcn's still finish
    args = ["bench", "--models", "ultragcn,lightgcn", "--datasets", str(rec_dir), "--seeds", "1", "--epochs", "2",
            "--set", "batch_size=64", "--set", "ultragcn.num_negatives=-3", "--out", str(out), "--no-isolate",
            "--no-plots"]
    r = invoke(*args)
    assert r.exit_code == 1
    recs = {x["model"]: x for x in bench.load_records(out)}
    assert recs["lightgcn"]["status"] == "ok"
    failed = recs["ultragcn"]
    assert failed["status"] == "failed" and "num_negatives" in failed["error"]
    assert "Traceback" in failed["traceback"] and failed["versions"]["torch"]
    assert "FAILED" in r.output
    csv = (out / "results.csv").read_text()
    assert "failed" in csv
    # a re-run retries the failed cell (and only it); --skip-failed keeps the failure
    r2 = invoke(*args, "--skip-failed")
    assert r2.output.count("(recorded, skipped)") == 2
    r3 = invoke(*args)
    assert "ultragcn__rec__seed0: running" in r3.output and "lightgcn__rec__seed0: ok (recorded, skipped)" in r3.output


def test_isolated_runs_and_timeout(tmp_path):
    rec_dir = write_rec_folder(tmp_path / "rec")
    out = tmp_path / "bench"
    r = invoke("bench", "--models", "lightgcn", "--datasets", str(rec_dir), "--seeds", "1", "--epochs", "2",
               "--set", "batch_size=64", "--out", str(out), "--no-plots")
    assert r.exit_code == 0, r.output
    (x,) = bench.load_records(out)
    assert x["status"] == "ok" and x["peak_rss_mb"] > 50
    assert not list((out / "runs").glob("*.result")) and not list((out / "runs").glob(".spec-*"))
    # a run that exceeds --timeout is killed and recorded as failed
    out2 = tmp_path / "bench2"
    r = invoke("bench", "--models", "lightgcn", "--datasets", str(rec_dir), "--seeds", "1", "--timeout", "0.05",
               "--out", str(out2), "--no-plots")
    assert r.exit_code == 1
    (y,) = bench.load_records(out2)
    assert y["status"] == "failed" and y["error"].startswith("timeout")


def test_ogb_layout_node_dataset_uses_ogbs_loader_and_evaluator(tmp_path):
    pytest.importorskip("ogb")
    from ogb.nodeproppred import Evaluator

    from graphkit import datasets

    folder = write_ogb_node_folder(tmp_path / "ogbn_sbm")
    ds = datasets.load(str(folder))
    assert ds.meta["format"] == "ogb" and ds.meta["eval_metric"] == "acc" and ds.num_classes == 3
    # ogb's loader applied add_inverse_edge from the meta_dict: both directions present
    assert ds.graph.is_symmetric()
    out = tmp_path / "bench"
    r = invoke("bench", "--models", "gcn", "--datasets", str(folder), "--seeds", "2", "--epochs", "100",
               "--set", "patience=0", "--out", str(out), "--no-isolate", "--compare", "paper")
    assert r.exit_code == 0, r.output
    recs = bench.load_records(out)
    assert len(recs) == 2
    for x in recs:
        m = x["metrics"]
        # OGB's Evaluator agrees with graphkit's accuracy on the same predictions
        assert m["ogb_acc"] == pytest.approx(m["accuracy"])
        assert x["fingerprint"] == ds.fingerprint
        assert m["ogb_acc"] > 0.75  # the blocks are learnable; chance is 1/3
    assert "ogb_acc" in (out / "leaderboard.md").read_text()
    # the helper computes exactly what ogb's Evaluator computes on hand-made predictions
    from graphkit.datasets.ogb_loader import ogb_node_metrics
    import torch

    idx = ds.test_idx
    logits = torch.randn(len(idx), 3, generator=torch.Generator().manual_seed(0))
    want = Evaluator.__new__(Evaluator)
    want.eval_metric, want.num_tasks = "acc", 1
    ref = want.eval({"y_true": ds.y[idx].view(-1, 1).numpy(), "y_pred": logits.argmax(1, keepdim=True).numpy()})
    hand = float((logits.argmax(1) == ds.y[idx]).float().mean())
    assert ogb_node_metrics(ds, logits, idx) == {"ogb_acc": pytest.approx(ref["acc"])}
    assert ref["acc"] == pytest.approx(hand)


# ----------------------------------------------------------------------------- datasets download | verify
def test_datasets_verify_and_download(tmp_path, monkeypatch):
    src = require_dataset("planetoid", "raw")
    root = tmp_path / "data"
    (root / "planetoid" / "raw").mkdir(parents=True)
    for f in src.glob("ind.cora.*"):
        shutil.copy(f, root / "planetoid" / "raw" / f.name)
    r = invoke("datasets", "verify", "cora", "--data-dir", str(root))
    assert r.exit_code == 0 and "cora: 8/8 file(s) verified" in r.output
    # download finds everything present and checksum-verified: no network needed
    monkeypatch.setenv("GRAPHKIT_OFFLINE", "1")
    r = invoke("datasets", "download", "cora", "--data-dir", str(root))
    assert r.exit_code == 0 and "8 file(s) present and checksum-verified" in r.output
    # one flipped byte and one missing file
    target = root / "planetoid" / "raw" / "ind.cora.y"
    data = bytearray(target.read_bytes())
    data[10] ^= 0xFF
    target.write_bytes(bytes(data))
    (root / "planetoid" / "raw" / "ind.cora.graph").unlink()
    r = invoke("datasets", "verify", "cora", "--data-dir", str(root))
    assert r.exit_code == 1
    assert f"CHECKSUM MISMATCH  {target}" in r.output and "MISSING" in r.output and "6/8" in r.output
    r = invoke("datasets", "download", "cora", "--data-dir", str(root))
    assert r.exit_code == 2 and "ind.cora.graph" in r.output
    r = invoke("datasets", "verify", "nosuch")
    assert r.exit_code == 2 and "gowalla" in r.output


def test_a_cell_locked_by_another_bench_process_is_left_to_it(tmp_path):
    from graphkit.datasets.download import try_file_lock

    rec_dir = write_rec_folder(tmp_path / "rec")
    out = tmp_path / "bench"
    args = ["bench", "--models", "lightgcn", "--datasets", str(rec_dir), "--seeds", "2", "--epochs", "1",
            "--set", "batch_size=64", "--out", str(out), "--no-isolate", "--no-plots"]
    with try_file_lock(out / "runs" / ".lightgcn__rec__seed0.lock") as held:
        assert held
        r = invoke(*args)
    assert "lightgcn__rec__seed0: being run by another graphkit bench process; skipped" in r.output
    assert [x["run_id"] for x in bench.load_records(out)] == ["lightgcn__rec__seed1"]
    r = invoke(*args)  # the lock is free again: the cell runs now, the finished one is reused
    assert "lightgcn__rec__seed0: running" in r.output and "seed1: ok (recorded, skipped)" in r.output
    # where a run executes is not part of its configuration: another thread count reuses the records
    r = invoke(*args, "--threads", "1", "--device", "cpu")
    assert r.output.count("(recorded, skipped)") == 2
