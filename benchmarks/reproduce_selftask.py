"""Reproduce SelfTask-GNN's joint-training table (Jin et al., 2020, arXiv 2006.10141) on
Cora and CiteSeer (public Planetoid split): GCN alone vs. GCN + each pretext task.

Protocol (one for every row, baseline included; the SelfTask-GNN repository's GCN setting):
2-layer GCN, 128 hidden units, dropout 0.5, Adam lr 0.01, weight decay 5e-4 (GCN's first
layer and the pretext head), row-normalised features, 200 full-batch epochs, no early
stopping, the epoch with the best validation accuracy is selected (ties: lower validation
loss) and its test accuracy reported.

λ (weight of the self-supervised loss) is tuned on VALIDATION accuracy only: every λ of
the grid is trained with the first ``--tune-seeds`` seeds, the λ with the highest mean
validation accuracy (ties: the smaller λ) is kept and trained with the remaining seeds,
so every row reports the same ``--seeds`` seeds.  Test accuracy is never looked at for
the choice.

Usage::

    python benchmarks/reproduce_selftask.py --threads 1 --out runs/selftask.json
    python benchmarks/reproduce_selftask.py --datasets cora --tasks context_label --seeds 3
    python benchmarks/reproduce_selftask.py --tasks ensemble_label --seeds 3 --lams 1 3 10 \
        --task-options '{"ensemble_label": {"model_weight": 4, "soft": true}}'

Every finished run is appended to ``--out`` (JSON lines) with the task's options, and runs
already there with the same options are skipped, so an interrupted reproduction resumes
where it stopped.  The table is printed
at the end (and with ``--table-only`` from the saved runs).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # numpy/scipy BLAS threads: oversubscription is very slow here

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphkit import datasets  # noqa: E402
from graphkit.models.gcn import GCN  # noqa: E402
from graphkit.selftask import TASKS, SelfTaskGCN  # noqa: E402
from graphkit.training import fit  # noqa: E402

PROTOCOL = {"hidden_channels": 128, "num_layers": 2, "dropout": 0.5, "lr": 0.01, "weight_decay": 5e-4,
            "epochs": 200, "patience": 0, "select": "val_acc", "normalize_features": True}
TASK_ORDER = ["node_property", "edge_mask", "pairwise_distance", "distance2clusters", "attribute_mask",
              "pairwise_attr_sim", "distance2labeled", "context_label", "ensemble_label", "corrected_label"]
GROUP = {name: TASKS[name].group for name in TASKS}
PAPER = {  # the paper's GCN row for orientation (joint training, public split)
    "gcn": {"cora": 81.3, "citeseer": 70.5},
}


def run_key(dataset: str, task: str, lam: float, seed: int) -> str:
    return f"{dataset}|{task}|{lam:g}|{seed}"


TASK_OPTIONS: dict = {}  # task name -> options overriding the task's defaults (--task-options)


def task_config(task: str) -> dict:
    """The pretext task's options (``{}`` for the GCN baseline); part of a run's identity."""
    return {} if task == "gcn" else TASKS[task](**TASK_OPTIONS.get(task, {})).config()


def load_runs(path: Path) -> dict:
    """Saved runs whose task options equal the current defaults (others are stale: ignored)."""
    runs = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                if r.get("pretext", {}) == task_config(r["task"]):
                    runs[run_key(r["dataset"], r["task"], r["lam"], r["seed"])] = r
    return runs


def one_run(ds, task: str, lam: float, seed: int) -> dict:
    t0 = time.perf_counter()
    if task == "gcn":
        res = fit(GCN, ds, seed=seed, preset=False, progress=False, **PROTOCOL)
    else:
        res = fit(SelfTaskGCN, ds, seed=seed, preset=False, progress=False, pretext=task, lam=lam,
                  pretext_kwargs=TASK_OPTIONS.get(task), **PROTOCOL)
    return {"dataset": ds.name, "task": task, "lam": lam, "seed": seed, "test_acc": res.metrics["accuracy"],
            "val_acc": res.record["best_val_acc"], "best_epoch": res.record["best_epoch"],
            "seconds": time.perf_counter() - t0, "fingerprint": ds.fingerprint, "pretext": task_config(task)}


def ensure(runs: dict, out: Path, ds, task: str, lam: float, seeds) -> list:
    rows = []
    for s in seeds:
        key = run_key(ds.name, task, lam, s)
        if key not in runs:
            r = one_run(ds, task, lam, s)
            runs[key] = r
            with open(out, "a") as fh:
                fh.write(json.dumps(r) + "\n")
            print(f"  {ds.name} {task} lam={lam:g} seed={s}: test {100 * r['test_acc']:.1f} "
                  f"val {100 * r['val_acc']:.1f} ({r['seconds']:.0f}s)", flush=True)
        rows.append(runs[key])
    return rows


def choose_lambda(runs: dict, dataset: str, task: str, lams, tune_seeds) -> float:
    def score(lam):
        return np.mean([runs[run_key(dataset, task, lam, s)]["val_acc"] for s in tune_seeds])

    best = max(lams, key=lambda lam: (score(lam), -lam))
    return float(best)


def table(runs: dict, dsets, tasks, lams, seeds, tune) -> str:
    lines = ["| pretext task | group | " + " | ".join(f"{d} test acc (λ)" for d in dsets) + " |",
             "|---|---|" + "---|" * len(dsets)]
    base = {}
    for task in ["gcn"] + tasks:
        cells = []
        for d in dsets:
            if task == "gcn":
                lam = 0.0
            else:
                try:
                    lam = choose_lambda(runs, d, task, lams, seeds[:tune])
                except KeyError:
                    cells.append("—")
                    continue
            acc = [runs.get(run_key(d, task, lam, s), {}).get("test_acc") for s in seeds]
            if any(a is None for a in acc):
                cells.append("—")
                continue
            m, sd = 100 * np.mean(acc), 100 * np.std(acc, ddof=1) if len(acc) > 1 else 0.0
            if task == "gcn":
                base[d] = m
                cells.append(f"{m:.2f} ± {sd:.2f}")
            else:
                delta = m - base.get(d, np.nan)
                cells.append(f"{m:.2f} ± {sd:.2f} ({lam:g}; {delta:+.2f})")
        label = "GCN (baseline)" if task == "gcn" else task
        lines.append(f"| {label} | {'—' if task == 'gcn' else GROUP[task]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["cora", "citeseer"])
    p.add_argument("--tasks", nargs="+", default=TASK_ORDER, choices=TASK_ORDER)
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..n-1 for every row")
    p.add_argument("--tune-seeds", type=int, default=3, help="seeds used to choose λ on validation")
    p.add_argument("--lams", type=float, nargs="+", default=[0.1, 1.0, 10.0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/selftask_runs.jsonl")
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--task-options", default="{}",
                   help="JSON of task options replacing the defaults, e.g. "
                        "'{\"ensemble_label\": {\"model_weight\": 4}}'; runs are keyed by the options, "
                        "so variants can share one --out file")
    args = p.parse_args()
    opts = json.loads(args.task_options)
    if not isinstance(opts, dict) or any(t not in TASKS or not isinstance(o, dict) for t, o in opts.items()):
        p.error(f"--task-options must map task names ({', '.join(TASK_ORDER)}) to option dicts")
    TASK_OPTIONS.update(opts)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = load_runs(out)
    seeds = list(range(args.seeds))
    tune = min(args.tune_seeds, args.seeds)
    if not args.table_only:
        t0 = time.perf_counter()
        for d in args.datasets:
            ds = datasets.load(d, split="public")
            print(f"{ds!r}", flush=True)
            ensure(runs, out, ds, "gcn", 0.0, seeds)
            for task in args.tasks:
                for lam in args.lams:
                    ensure(runs, out, ds, task, lam, seeds[:tune])
                lam = choose_lambda(runs, d, task, args.lams, seeds[:tune])
                ensure(runs, out, ds, task, lam, seeds)
                print(f"{d} {task}: λ = {lam:g} (validation)", flush=True)
        print(f"total {time.perf_counter() - t0:.0f}s", flush=True)
    print()
    print(f"Test accuracy (%), mean ± std over seeds 0..{args.seeds - 1}; λ chosen from {args.lams} on "
          f"validation with seeds 0..{tune - 1}; (λ; difference to the GCN row).")
    print(table(runs, args.datasets, args.tasks, args.lams, seeds, tune))


if __name__ == "__main__":
    main()
