"""Reproduce the LightGCN / UltraGCN papers' numbers (long runs; not part of the test suite).

Trains with the paper's per-dataset preset, selects on the validation split (never
test), evaluates test once, saves the run (record, history, weights) and prints the
validation curve next to the paper's test numbers.

    GRAPHKIT_DATA=../shared/datasets python benchmarks/reproduce_recsys.py lightgcn gowalla --out runs/repro
    python benchmarks/reproduce_recsys.py ultragcn ml-1m --threads 1 --max-time 3600
    python benchmarks/reproduce_recsys.py ultragcn ml-1m --threads 2 --set refit=true   # select, then retrain on full_train

Paper numbers (test recall@20 / ndcg@20): LightGCN gowalla 0.1830 / 0.1554 (He et al.,
Table 3); UltraGCN gowalla 0.1862 / 0.1580, ml-1m 0.2787 / 0.2642 (Mao et al., Table 3).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import graphkit
from graphkit.cli import parse_assignments

PAPER = {
    ("lightgcn", "gowalla"): {"recall@20": 0.1830, "ndcg@20": 0.1554},
    ("lightgcn", "yelp2018"): {"recall@20": 0.0649, "ndcg@20": 0.0530},
    ("lightgcn", "amazon-book"): {"recall@20": 0.0411, "ndcg@20": 0.0315},
    ("ultragcn", "gowalla"): {"recall@20": 0.1862, "ndcg@20": 0.1580},
    ("ultragcn", "yelp2018"): {"recall@20": 0.0683, "ndcg@20": 0.0561},
    ("ultragcn", "amazon-book"): {"recall@20": 0.0681, "ndcg@20": 0.0556},
    ("ultragcn", "ml-1m"): {"recall@20": 0.2787, "ndcg@20": 0.2642},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("dataset")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--max-time", type=float, default=None, help="seconds of training before stopping")
    ap.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default="runs/repro")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    hp = parse_assignments(args.assignments)
    if args.max_time is not None:
        hp["max_time"] = args.max_time
    if args.device:
        hp["device"] = args.device
    hp.setdefault("ks", (10, 20))
    hp.setdefault("progress", False)
    t0 = time.perf_counter()
    res = graphkit.fit(args.model, args.dataset, seed=args.seed, **hp)
    wall = time.perf_counter() - t0
    out = Path(args.out) / f"{args.model}-{args.dataset}-seed{args.seed}"
    res.save(out)
    paper = PAPER.get((args.model.lower(), args.dataset.lower()), {})
    summary = {"model": args.model, "dataset": args.dataset, "seed": args.seed, "wall_seconds": wall,
               "test": res.metrics, "paper": paper, "record": res.record}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    cols = [c for c in res.history.columns if c in ("epoch", "loss", "seconds", "valid_recall@20", "valid_ndcg@20")]
    print(res.history[cols].dropna(subset=["valid_recall@20"]).to_string(index=False))
    print(f"\n{args.model} on {args.dataset}: stopped by {res.record['stopped_by']} after {res.record['epochs_run']} "
          f"epochs; best epoch {res.record['best_epoch']} (selected on validation); wall {wall:.0f}s on {res.record['device']}")
    if "refit" in res.record:
        r = res.record["refit"]
        print(f"refit (refit=true): a fresh model trained on full_train ({r['train_nnz']:,} interactions instead of "
              f"{r['selection_train_nnz']:,}) for the selected {r['epochs']} epochs in {r['train_seconds']:.0f}s; "
              "the test figures are that model's")
    for key in ("recall@20", "ndcg@20"):
        ref = paper.get(key)
        extra = f"   paper {ref:.4f}   diff {res.metrics[key] - ref:+.4f}" if ref else ""
        print(f"test {key}: {res.metrics[key]:.4f}{extra}")
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
