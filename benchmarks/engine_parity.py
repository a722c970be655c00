"""Same runs, old trainers vs the one training engine: DAGNN on Cora, LightGCN on ml-1m (a short
run) and LargeGT on Cora, each with its preset and fixed seeds.  Prints one JSON line per run
(test metrics, best epoch, epochs run); run it once per checkout and compare the lines.

    GRAPHKIT_DATA=../shared/datasets python benchmarks/engine_parity.py > after.jsonl
    (cd <old checkout> && GRAPHKIT_DATA=... python <this file>) > before.jsonl

The engine keeps every random draw and every floating-point operation of the loops it
replaced, so on the same CPU and thread count the metrics are expected to be identical,
not only within seed noise.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

import graphkit

RUNS = {
    "dagnn-cora": dict(model="dagnn", dataset="cora", seeds=[0, 1, 2], kw={}),
    "lightgcn-ml-1m": dict(model="lightgcn", dataset="ml-1m", seeds=[2020],
                           kw={"epochs": 6, "eval_every": 2, "batch_size": 16384, "lr": 1e-2}),
    "largegt-cora": dict(model="largegt", dataset="cora", seeds=[0], kw={"epochs": 10}),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=None, help="comma-separated run names")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name, spec in RUNS.items():
        if args.only and name not in args.only.split(","):
            continue
        for seed in spec["seeds"]:
            t0 = time.perf_counter()
            res = graphkit.fit(spec["model"], spec["dataset"], seed=seed, progress=False, num_threads=args.threads,
                               **spec["kw"])
            print(json.dumps({"run": name, "seed": seed, "metrics": res.metrics, "best_epoch": res.record["best_epoch"],
                              "epochs_run": res.record["epochs_run"], "stopped_by": res.record["stopped_by"],
                              "fingerprint": res.record.get("fingerprint"),
                              "seconds": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
