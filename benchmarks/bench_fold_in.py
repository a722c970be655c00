"""Fold-in quality: recommending for users the model never saw, without refitting items.

Protocol (issue 20, item 1).  From a dataset's official training file, ``--holdout`` users
(drawn with ``--seed``) are removed; the model is trained on the remaining users (the
*base* model) and, separately, on everyone (the *full refit*, same settings and seed).
The held-out users are then folded into the base model from their training interactions
(``model.fold_in_users``, items frozen) and both are ranked for them against all items,
their training items excluded:

* ``--split valid``: ground truth = the dataset's validation hold-out (training on
  ``train``); used to choose the fold-in settings (tuning seed 7);
* ``--split test``: ground truth = the test file (training on ``full_train``); reported
  (seed 2020).

Printed per fold-in variant: recall@20 / ndcg@20 of the folded users, of the same users
in the full refit, their ratio, popularity's recall@20 for them, and the fold-in latency
per user (one call for all held-out users, and one user at a time).

    GRAPHKIT_DATA=/work/shared/datasets python benchmarks/bench_fold_in.py --dataset ml-1m \\
        --model lightgcn --split valid --seed 7 --epochs 20
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import scipy.sparse as sp
import torch

import graphkit
from graphkit.datasets.recommendation import RecDataset, split_fingerprint


def _subset(ds: RecDataset, keep_users: np.ndarray, split: str) -> RecDataset:
    """The dataset restricted to ``keep_users`` (re-indexed 0..n-1), items unchanged."""
    def rows(m: sp.csr_matrix) -> sp.csr_matrix:
        return sp.csr_matrix(m[keep_users])
    train_src = ds.train if split == "valid" else ds.full_train
    train = rows(train_src)
    valid = rows(ds.valid) if split == "valid" else sp.csr_matrix(train.shape, dtype=np.float32)
    test = rows(ds.valid if split == "valid" else ds.test)
    return RecDataset(name=ds.name, num_users=train.shape[0], num_items=ds.num_items, train=train,
                      valid=valid if valid.nnz else test, test=test, full_train=train,
                      fingerprint=split_fingerprint(train, valid, test),
                      meta={"split": f"{ds.name} users subset", "split_seed": None, "val_ratio": None})


def _metrics(ue: torch.Tensor, ie: torch.Tensor, seen: sp.csr_matrix, truth: sp.csr_matrix) -> Dict[str, float]:
    from graphkit.metrics import evaluate_ranking

    def score(u: torch.Tensor) -> torch.Tensor:
        return ue[u] @ ie.T

    out = evaluate_ranking(score, truth, exclude=seen, ks=(20,), metrics=("recall", "ndcg"))
    return {k: float(v) for k, v in out.items() if "@" in k}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--model", default="lightgcn", choices=["lightgcn", "ultragcn", "als"])
    ap.add_argument("--split", default="valid", choices=["valid", "test"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--holdout", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="*", default=None,
                    help="fold-in keyword sets as JSON, e.g. '{\"steps\": 0}' '{\"steps\": 50}'")
    ap.add_argument("--out", default=None, help="append a JSON record here")
    ap.add_argument("--cache", default=None, help="save the two trained models here and reuse them on a rerun")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()}", flush=True)
    ds = graphkit.datasets.load(args.dataset)
    rng = np.random.default_rng(args.seed)
    base_src = ds.train if args.split == "valid" else ds.full_train
    truth_src = ds.valid if args.split == "valid" else ds.test
    candidates = np.flatnonzero((np.diff(base_src.indptr) > 0) & (np.diff(truth_src.indptr) > 0))
    held = np.sort(rng.choice(candidates, size=min(args.holdout, candidates.size), replace=False))
    rest = np.setdiff1d(np.arange(ds.num_users), held)
    kw: Dict[str, Any] = {"preset": args.preset, "seed": args.seed, "progress": False,
                          "num_threads": args.threads}
    if args.model != "als":
        kw["epochs"] = args.epochs
        kw["eval_every"] = args.epochs
    if args.preset == "none":
        kw["preset"] = False
    results: Dict[str, Any] = {}
    for name, users in (("full", np.arange(ds.num_users)), ("base", rest)):
        sub = _subset(ds, users, args.split)
        cached = None
        if args.cache:
            cached = Path(args.cache) / (f"{args.dataset}-{args.model}-{args.preset}-{args.split}-s{args.seed}-"
                                         f"h{args.holdout}-e{args.epochs}-{name}")
            if cached.is_dir():
                res = graphkit.training.FitResult.load(cached)
                state = {k: v.clone() for k, v in res.model.state_dict().items()}
                res.model.prepare(sub.train, sub.graph())  # may re-initialise (init="svd"): weights back on top
                res.model.load_state_dict(state)
                results[name] = res
                print(f"{name}: loaded {cached}", flush=True)
                continue
        t0 = time.perf_counter()
        res = graphkit.fit(args.model, dataset=sub, **kw)
        results[name] = res
        print(f"{name}: trained on {sub.num_users} users in {time.perf_counter() - t0:.0f} s", flush=True)
        if cached is not None:
            res.save(cached)
    seen = sp.csr_matrix(base_src[held])
    truth = sp.csr_matrix(truth_src[held])
    full_model = results["full"].model
    with torch.no_grad():
        fu, fi = full_model.embeddings()
    full_m = _metrics(fu[torch.from_numpy(held)], fi, seen, truth)
    pop = np.asarray(sp.csr_matrix(base_src[rest]).sum(0)).ravel().astype(np.float32)
    pop_m = _metrics(torch.ones(held.size, 1), torch.from_numpy(pop)[:, None], seen, truth)
    base = results["base"].model
    with torch.no_grad():
        _, bi = base.embeddings()
    variants: List[Dict[str, Any]] = [json.loads(v) for v in (args.variants or ["{}"])]
    # the training settings fold_in_users takes (as Recommender.partial_fit_users passes them)
    accepted = inspect.signature(base.fold_in_users).parameters
    train_cfg = results["base"].record.get("train", {})
    context = {k: train_cfg[k] for k in ("lr", "num_negatives", "batch_size") if k in accepted and k in train_cfg}
    print(f"fold-in context from the run: {context}", flush=True)
    variants = [{**context, **v} for v in variants]
    rows = []
    for v in variants:
        t0 = time.perf_counter()
        ue = base.fold_in_users(seen, **v)
        batch_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        n1 = min(50, held.size)
        for r in range(n1):
            base.fold_in_users(seen[r], **v)
        single_ms = 1000 * (time.perf_counter() - t0) / n1
        m = _metrics(ue, bi, seen, truth)
        row = {"variant": v, "fold": m, "full": full_m, "popularity": pop_m,
               "ratio": m["recall@20"] / max(full_m["recall@20"], 1e-12),
               "ms_per_user_batch": 1000 * batch_s / held.size, "ms_single_user": single_ms}
        rows.append(row)
        print(f"{json.dumps(v)}: fold-in recall@20 {m['recall@20']:.4f} ndcg@20 {m['ndcg@20']:.4f} | full refit "
              f"{full_m['recall@20']:.4f} / {full_m['ndcg@20']:.4f} | ratio {row['ratio']:.3f} | popularity "
              f"{pop_m['recall@20']:.4f} | {row['ms_per_user_batch']:.2f} ms/user in one call, "
              f"{single_ms:.1f} ms single user", flush=True)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(json.dumps({"dataset": args.dataset, "model": args.model, "split": args.split, "seed": args.seed,
                                 "holdout": int(held.size), "epochs": args.epochs, "preset": args.preset,
                                 "rows": rows, "load_average": os.getloadavg(),
                                 "record": {k: results["full"].record.get(k) for k in ("hparams", "train")}},
                                default=str) + "\n")


if __name__ == "__main__":
    main()
