"""LightGCN (He et al., SIGIR 2020) with ``graphkit.fit``.

Quick mode (the default, ~10 s on 2 CPU cores) trains a few epochs on a subset of
MovieLens-1M: the interactions of the first ``--users`` users, split per user at random
(70 / 10 / 20 % train / validation / test) with :func:`graphkit.datasets.from_interactions`.
The numbers are therefore *not* comparable with the paper's.

``--full`` runs the paper's protocol instead: the official files of ``--dataset`` (gowalla by
default), the paper's preset, model selection on a validation split carved from the training
file, early stopping, the test split evaluated once (hours on a CPU)::

    GRAPHKIT_DATA=/path/to/datasets python examples/lightgcn_ml1m.py            # quick
    GRAPHKIT_DATA=/path/to/datasets python examples/lightgcn_ml1m.py --full --dataset gowalla --out runs/lgcn

Needs the ml-1m files (``$GRAPHKIT_DATA/ml-1m/{train,test}.txt``; downloaded when missing and
online).  See docs/models/lightgcn.md.
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")  # no spinning OpenMP pool (see docs)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import graphkit  # noqa: E402


def ml1m_subset(num_users: int, seed: int) -> graphkit.datasets.RecDataset:
    """The interactions of the first ``num_users`` ml-1m users, split per user at random."""
    full = graphkit.datasets.load("ml-1m", val_ratio=0.0)
    users, items = full.interactions("full_train")
    test_u, test_i = full.interactions("test")
    users, items = np.concatenate([users, test_u]), np.concatenate([items, test_i])
    keep = users < num_users
    df = pd.DataFrame({"user": users[keep], "item": items[keep]})
    return graphkit.datasets.from_interactions(df, split="random", val_ratio=0.1, test_ratio=0.2, seed=seed,
                                               name=f"ml-1m-first-{num_users}-users")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="the paper's protocol on --dataset (long)")
    ap.add_argument("--dataset", default="gowalla", help="dataset of --full (gowalla, yelp2018, amazon-book, ml-1m)")
    ap.add_argument("--users", type=int, default=600, help="quick mode: users of the ml-1m subset")
    ap.add_argument("--epochs", type=int, default=8, help="quick mode: training epochs")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--out", default=None, help="save model, record and history to this folder")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()

    if args.full:
        result = graphkit.fit(graphkit.LightGCN, args.dataset, seed=args.seed)  # paper preset
    else:
        ds = ml1m_subset(args.users, args.seed)
        print(f"data: {ds.name}: {ds.num_users} users, {ds.num_items} items, "
              f"{ds.train.nnz} / {ds.valid.nnz} / {ds.test.nnz} train / valid / test interactions")
        result = graphkit.fit(
            graphkit.LightGCN, ds, seed=args.seed,
            embedding_dim=64, num_layers=3, reg_weight=1e-4,   # the paper's model preset
            lr=5e-3, batch_size=1024, epochs=args.epochs, eval_every=1, patience=3,
            ks=(10, 20), progress=False,
        )

    cols = [c for c in ("epoch", "loss", "valid_recall@20", "valid_ndcg@20", "seconds") if c in result.history]
    print(result.history[cols].to_string(index=False))
    rec = result.record
    print(f"best epoch {rec['best_epoch']} of {rec['epochs_run']} (stopped by {rec['stopped_by']}); "
          f"split fingerprint {rec.get('fingerprint')}")
    print("test " + "  ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items())))
    if args.out:
        print(f"saved to {result.save(args.out)}")
    print(f"total {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
