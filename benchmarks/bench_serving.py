"""Serving latency: graphkit's ``Recommender.recommend`` and fold-in next to implicit's, same embeddings.

Gowalla-sized serving state (the gowalla training file: 29,858 users, 40,981 items, 810k
interactions to exclude; LightGCN embeddings of width 64) is served by

* graphkit: ``Recommender.recommend(users, k=20)`` (seen items excluded), one user per
  call and 1,000 users per call; fold-in latency of ``partial_fit_users`` /
  ``recommend(..., interactions=)`` for one new user (LightGCN: propagation; ALS: its user step);
* implicit (``implicit.cpu`` ALS object whose factors are set to the *same* embeddings):
  ``recommend(userid, user_items[userid], N=20)`` one user and 1,000 users per call, and
  ``recommend(..., recalculate_user=True)`` as its fold-in.

Both libraries use ``--threads`` threads.  Reported: p50 / p99 latency (ms) and throughput
(users/s), and the implicit / graphkit ratio (> 1: graphkit faster).  The two top-k lists are
compared (fraction of identical items) as a check that both answer the same question.

    GRAPHKIT_DATA=/work/shared/datasets python benchmarks/bench_serving.py --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any, Callable, Dict, List

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

import graphkit


def _timings(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(repeats)
    for r in range(repeats):
        t0 = time.perf_counter()
        fn()
        out[r] = time.perf_counter() - t0
    return out * 1000.0


def _row(name: str, ms: np.ndarray, users_per_call: int) -> Dict[str, Any]:
    return {"case": name, "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "users_per_s": users_per_call * 1000.0 / float(np.mean(ms)), "calls": int(ms.shape[0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="gowalla")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--single", type=int, default=300, help="single-user calls timed")
    ap.add_argument("--batches", type=int, default=10, help="1,000-user calls timed")
    ap.add_argument("--fold", type=int, default=100, help="fold-in calls timed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="append the JSON record here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    print(f"graphkit {graphkit.__version__}, torch {torch.__version__}, {args.threads} threads, "
          f"load average {os.getloadavg()}", flush=True)
    ds = graphkit.datasets.load(args.dataset)
    u, i = ds.interactions("full_train")
    df = pd.DataFrame({"user": u, "item": i})
    # epochs=0: the model is built and prepared, not trained (serving cost does not depend on training)
    rec = graphkit.Recommender("lightgcn", validation=None, epochs=0, seed=args.seed, device="cpu").fit(df)
    ue = rec.user_embeddings().to_numpy()
    ie = rec.item_embeddings().to_numpy()
    U, I = ue.shape[0], ie.shape[0]
    # implicit, same embeddings, same seen items (its rows in graphkit's id order)
    user_items = sp.csr_matrix(rec.seen_, dtype=np.float32)
    imp = AlternatingLeastSquares(factors=ue.shape[1], num_threads=args.threads, random_state=0)
    imp.user_factors, imp.item_factors = ue.astype(np.float32), ie.astype(np.float32)
    rng = np.random.default_rng(args.seed)
    raw_users = np.asarray(rec.user_index_)
    single = rng.integers(0, U, args.single + 3)
    batch = rng.choice(U, size=1000, replace=False)
    it = iter(range(10 ** 9))
    rows: List[Dict[str, Any]] = []

    def gk_one() -> None:
        rec.recommend(raw_users[single[next(it) % single.shape[0]]], k=20)

    def imp_one() -> None:
        uid = int(single[next(it) % single.shape[0]])
        imp.recommend(uid, user_items[uid], N=20, filter_already_liked_items=True)

    with threadpool_limits(args.threads):
        rows.append({"lib": "graphkit", **_row("recommend 1 user", _timings(gk_one, args.single), 1)})
        rows.append({"lib": "implicit", **_row("recommend 1 user", _timings(imp_one, args.single), 1)})
        rows.append({"lib": "graphkit", **_row("recommend 1,000 users",
                                               _timings(lambda: rec.recommend(raw_users[batch], k=20), args.batches),
                                               1000)})
        rows.append({"lib": "implicit", **_row("recommend 1,000 users", _timings(
            lambda: imp.recommend(batch, user_items[batch], N=20, filter_already_liked_items=True), args.batches),
            1000)})
        # agreement on the batch
        gk = rec.recommend(raw_users[batch], k=20)
        ids, _ = imp.recommend(batch, user_items[batch], N=20, filter_already_liked_items=True)
        gk_items = rec.item_index_.get_indexer(gk["item"]).reshape(1000, 20)
        agree = float(np.mean([len(set(a) & set(b)) / 20 for a, b in zip(gk_items, ids)]))

        # fold-in: a new user with the history of an existing one (same size distribution)
        hist_users = rng.integers(0, U, args.fold + 3)

        def history(j: int) -> pd.DataFrame:
            uid = int(hist_users[j % hist_users.shape[0]])
            cols = rec.seen_.indices[rec.seen_.indptr[uid]:rec.seen_.indptr[uid + 1]]
            return pd.DataFrame({"user": ["new"] * cols.shape[0], "item": np.asarray(rec.item_index_)[cols]})

        frames = [history(j) for j in range(hist_users.shape[0])]
        it2 = iter(range(10 ** 9))
        rows.append({"lib": "graphkit", **_row("fold-in + recommend, 1 new user (LightGCN)", _timings(
            lambda: rec.recommend(["new"], k=20, interactions=frames[next(it2) % len(frames)]), args.fold), 1)})
        als = graphkit.Recommender("als", validation=None, factors=64, iterations=1, seed=args.seed).fit(df)
        it3 = iter(range(10 ** 9))
        rows.append({"lib": "graphkit", **_row("fold-in + recommend, 1 new user (ALS)", _timings(
            lambda: als.recommend(["new"], k=20, interactions=frames[next(it3) % len(frames)]), args.fold), 1)})
        imp2 = AlternatingLeastSquares(factors=64, num_threads=args.threads, random_state=0)
        imp2.user_factors = als.user_embeddings().to_numpy().astype(np.float32)
        imp2.item_factors = als.item_embeddings().to_numpy().astype(np.float32)
        imp2.alpha, imp2.regularization = als.model_.alpha, als.model_.regularization
        it4 = iter(range(10 ** 9))

        def imp_fold() -> None:
            j = int(hist_users[next(it4) % hist_users.shape[0]])
            imp2.recommend(0, user_items[j], N=20, recalculate_user=True, filter_already_liked_items=True)

        rows.append({"lib": "implicit", **_row("fold-in + recommend, 1 new user (ALS)", _timings(imp_fold, args.fold),
                                               1)})
    print(f"\n{args.dataset}: {U:,} users x {I:,} items, d={ue.shape[1]}, k=20, seen excluded "
          f"({rec.seen_.nnz:,} interactions); top-20 agreement graphkit vs implicit {agree:.4f}\n")
    print("| case | graphkit p50 / p99 ms | graphkit users/s | implicit p50 / p99 ms | implicit users/s | "
          "speed ratio (implicit time / graphkit time) |")
    print("|---|---|---|---|---|---|")
    by = {(r["lib"], r["case"]): r for r in rows}
    for case in dict.fromkeys(r["case"] for r in rows):
        g, m = by.get(("graphkit", case)), by.get(("implicit", case))
        gs = f"{g['p50_ms']:.2f} / {g['p99_ms']:.2f} | {g['users_per_s']:,.0f}" if g else "— | —"
        ms = f"{m['p50_ms']:.2f} / {m['p99_ms']:.2f} | {m['users_per_s']:,.0f}" if m else "— | —"
        ratio = f"{m['p50_ms'] / g['p50_ms']:.2f}x" if g and m else "—"
        print(f"| {case} | {gs} | {ms} | {ratio} |")
    print(f"\nload average {os.getloadavg()}")
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(json.dumps({"dataset": args.dataset, "threads": args.threads, "rows": rows, "agreement": agree,
                                 "load_average": os.getloadavg(), "versions": graphkit.utils.package_versions()},
                                default=str) + "\n")


if __name__ == "__main__":
    main()
