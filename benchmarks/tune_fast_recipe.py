"""Choose a model's fast recipe (``preset="fast"``) on the validation split.

Every candidate (a set of hyper-parameters on top of the paper's preset) trains once with a
wall-clock budget (``--budget``, the one the recipe is for) and a *tuning* seed (``--seed``,
not the seed reported elsewhere); trials never evaluate the test split.  The candidate with
the best validation recall@20 of the model selected inside the budget wins; the table also
shows the validation value at intermediate times, so a reader can see the curves.

Usage::

    GRAPHKIT_DATA=/work/shared/datasets python benchmarks/tune_fast_recipe.py --model lightgcn \\
        --dataset gowalla --budget 600 --threads 2 --out runs/fast_lightgcn_gowalla.jsonl

Candidates are the ``CANDIDATES[model]`` list below (fixed before each round of runs); ``--only``
runs some of them.  Finished candidates are skipped on a rerun (same out file).

LightGCN on gowalla (2026-12-06, 2-core CPU VM, seed 7, 600 s): rounds 1 (indices 0-5), 2
(index 6), 3 (indices 7, 9, 10) and 4 (indices 11, 12) were run; index 12 (batch 32,768, lr
4e-2 decayed to zero at the budget's end, SVD warm start, 8 negatives) won with validation
recall@20 0.1901 (index 11: 0.1895; round 3's index 10: 0.1877, beaten by more than the 0.002
fixed beforehand) and is ``LightGCN.fast_presets``.  Index 8 was not run (time); the table is
in docs/models/lightgcn.md.

UltraGCN on ml-1m (2026-12-06, same machine, seed 7, 300 s): indices 0-3 were run; index 2
(batch 4,096, lr 4e-3, 100 negatives) won with validation recall@20 0.1810 against 0.1395 for
the paper preset itself (index 3) and became ``UltraGCN.fast_presets["ml-1m"]``.  (A nice-19
compiler build ran beside these runs: load average 2.3-3.2 with the runs' own 2 threads.)  Round
2 (``--only 2 4 5 --out runs/fast_ultragcn_ml1m_r2.jsonl``, idle cores, load 1.9-2.1): index 5
(the SVD warm start at initial_weight 1e-2) 0.2319, index 2 rerun 0.1898, index 4 (SVD at the
preset's norm) 0.1734; round 3 (``--only 6``, same out file): index 6 (1e-2 without the SVD)
0.2025, more than 0.002 below index 5, so index 5 is ``UltraGCN.fast_presets["ml-1m"]``; the
table is in docs/models/ultragcn.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import graphkit  # noqa: E402
from graphkit.training.callbacks import ValidationCurve  # noqa: E402

CANDIDATES: Dict[str, List[Dict[str, Any]]] = {
    "lightgcn": [
        {"batch_size": 16384, "lr": 1e-2},                               # the one-line probe
        {"batch_size": 16384, "lr": 1e-2, "init": "svd"},                # + warm start from the SVD of R~
        {"batch_size": 16384, "lr": 2e-2, "init": "svd"},
        {"batch_size": 32768, "lr": 2e-2, "init": "svd"},
        {"batch_size": 8192, "lr": 5e-3, "init": "svd"},
        {"batch_size": 16384, "lr": 1e-2, "init": "svd", "num_negatives": 4},
        # second round, after the first six: more negatives was the best direction
        {"batch_size": 16384, "lr": 1e-2, "init": "svd", "num_negatives": 8},   # the fast preset
        {"batch_size": 16384, "lr": 1e-2, "init": "svd", "num_negatives": 16},
        {"batch_size": 16384, "lr": 1e-2, "num_negatives": 4},          # the same without the warm start
        # third round (fixed before it ran): the curves of round 2 still rose at 600 s, so decay
        # the rate linearly to zero at the end of the time budget (scheduler="budget")
        {"batch_size": 16384, "lr": 1e-2, "init": "svd", "num_negatives": 8, "scheduler": "budget"},
        {"batch_size": 16384, "lr": 2e-2, "init": "svd", "num_negatives": 8, "scheduler": "budget"},
        # fourth round (fixed before it ran): doubling the decayed rate won round 3 (0.1757 ->
        # 0.1877), so double it again, and the same rate at twice the batch (half the
        # propagations per epoch).  Rule fixed beforehand: a candidate replaces the recipe only
        # if it beats 0.1877 by >= 0.002 (round 3's margin, 0.0018, is one seed's noise).
        {"batch_size": 16384, "lr": 4e-2, "init": "svd", "num_negatives": 8, "scheduler": "budget"},
        {"batch_size": 32768, "lr": 4e-2, "init": "svd", "num_negatives": 8, "scheduler": "budget"},
    ],
    "ultragcn": [
        {"batch_size": 4096, "lr": 4e-3},
        {"batch_size": 8192, "lr": 8e-3},
        {"batch_size": 4096, "lr": 4e-3, "num_negatives": 100},
        {},  # the paper preset itself, on the tuning seed: what a candidate has to beat
        # second round (fixed before it ran): every round-1 curve sat at the popularity level
        # (validation ~0.110) for the first ~120 s before rising, so start from the SVD of the
        # normalised interactions (init="svd") at the normal draw's norm, and at 10x that norm.
        # Run with index 2 (the recipe) again in the same invocation (--only 2 4 5, its own
        # --out), since round 1 ran beside a compiler build.  Rule fixed beforehand: a candidate
        # replaces the recipe only if it beats index 2's rerun by >= 0.002 (the higher one wins).
        {"batch_size": 4096, "lr": 4e-3, "num_negatives": 100, "init": "svd"},
        {"batch_size": 4096, "lr": 4e-3, "num_negatives": 100, "init": "svd", "initial_weight": 1e-2},
        # third round (fixed after round 2, before it ran): index 5 won round 2 (0.2319 vs 0.1898
        # for index 2), but after one epoch its validation equals the others' (0.1103), so the
        # gain may be the larger norm alone.  The same without the SVD start; rule fixed
        # beforehand: if it comes within 0.002 of index 5 (or above), the simpler recipe wins.
        {"batch_size": 4096, "lr": 4e-3, "num_negatives": 100, "initial_weight": 1e-2},
    ],
}


def best_before(points: List[Dict[str, float]], t: float) -> float:
    vals = [p["value"] for p in points if p["seconds"] <= t]
    return max(vals) if vals else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lightgcn", choices=sorted(CANDIDATES))
    ap.add_argument("--dataset", default="gowalla")
    ap.add_argument("--budget", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=7, help="tuning seed (the reported runs use the default 2020)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=1)
    ap.add_argument("--only", type=int, nargs="*", default=None, help="candidate indices to run")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = Path(args.out or f"runs/fast_{args.model}_{args.dataset}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done[json.dumps(r["candidate"], sort_keys=True)] = r
    ds = graphkit.datasets.load(args.dataset)
    cands = CANDIDATES[args.model]
    for i, cand in enumerate(cands):
        key = json.dumps(cand, sort_keys=True)
        if (args.only is not None and i not in args.only) or key in done:
            continue
        curve = ValidationCurve()
        t0 = time.perf_counter()
        res = graphkit.fit(args.model, ds, preset="paper", seed=args.seed, max_time=args.budget,
                           eval_every=args.eval_every, patience=0, num_threads=args.threads, progress=False,
                           evaluate_test=False, callbacks=[curve], **cand)
        r = {"candidate": cand, "budget": args.budget, "seed": args.seed, "best_valid": res.record["best_valid"],
             "epochs": res.record["epochs_run"], "wall": time.perf_counter() - t0, "curve": curve.points,
             "load_average": os.getloadavg(), "fingerprint": ds.fingerprint}
        done[key] = r
        with open(out, "a") as fh:
            fh.write(json.dumps(r) + "\n")
        print(f"[{i}] {cand}: best validation recall@20 {r['best_valid']:.4f} after {r['epochs']} epochs "
              f"({r['wall']:.0f} s, load {r['load_average'][0]:.2f})", flush=True)
    marks = [t for t in (60, 120, 300, 600, 1200, 1800) if t <= args.budget] or [args.budget]
    print(f"\nvalidation recall@20 of the model selected by each time (seconds), seed {args.seed}, "
          f"{args.threads} threads, budget {args.budget:g} s")
    print("| candidate | " + " | ".join(f"{t:g} s" for t in marks) + " | epochs |")
    print("|---|" + "---|" * (len(marks) + 1))
    rows = [done[json.dumps(c, sort_keys=True)] for c in cands if json.dumps(c, sort_keys=True) in done]
    best = max(rows, key=lambda r: r["best_valid"]) if rows else None
    for r in rows:
        mark = "**" if r is best else ""
        print(f"| {mark}{r['candidate']}{mark} | " + " | ".join(f"{best_before(r['curve'], t):.4f}" for t in marks)
              + f" | {r['epochs']} |")


if __name__ == "__main__":
    main()
