"""SelfTask pretext tasks (Jin et al., 2020) on Cora: joint training and the two-stage scheme.

Quick mode (the default, ~20 s) runs the protocol of docs/models/selftask.md once (seed 0):
a 2-layer GCN with 128 hidden units trained for 200 epochs without early stopping, the epoch
with the best validation accuracy, (1) alone, (2) jointly with the ``--pretext`` task
(``L = L_task + λ L_ssl``, :class:`graphkit.selftask.SelfTaskGCN`), and (3) pre-trained on
the task alone, then fine-tuned (:func:`graphkit.selftask.pretrain`).  One seed says
little: the reproduction averages 20 seeds and picks λ and the task's variant on validation
with other seeds
(``benchmarks/reproduce_selftask.py``)::

    GRAPHKIT_DATA=/path/to/datasets python examples/selftask_cora.py
    GRAPHKIT_DATA=/path/to/datasets python examples/selftask_cora.py \
        --pretext pairwise_attr_sim --lam 3 --dataset citeseer

Needs the Planetoid files (``$GRAPHKIT_DATA/planetoid/raw/ind.<name>.*``).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

import graphkit  # noqa: E402
from graphkit.models.gcn import GCN  # noqa: E402
from graphkit.selftask import TASKS, SelfTaskGCN, pretrain  # noqa: E402
from graphkit.training.node import NodeClassificationTrainer, NodeTrainConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="cora", help="cora, citeseer or pubmed")
    ap.add_argument("--pretext", default="ensemble_label", choices=list(TASKS), help="the pretext task")
    ap.add_argument("--lam", type=float, default=3.0,
                    help="weight λ of the self-supervised loss (3: chosen on validation for ensemble_label, "
                         "Cora and CiteSeer)")
    ap.add_argument("--epochs", type=int, default=200, help="training epochs (the protocol: 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    ds = graphkit.datasets.load(args.dataset)
    protocol = dict(epochs=args.epochs, patience=0, select="val_acc", normalize_features=True,
                    lr=0.01, weight_decay=5e-4, progress=False)

    # (1) the baseline: the same GCN and protocol, no pretext task
    base = graphkit.fit(GCN, ds, seed=args.seed, preset=False, hidden_channels=128, dropout=0.5, **protocol)
    # (2) joint training; SelfTaskGCN's presets are this protocol
    joint = graphkit.fit(SelfTaskGCN, ds, seed=args.seed, pretext=args.pretext, lam=args.lam, epochs=args.epochs,
                         progress=False)
    # (3) two-stage: pre-train the backbone on the pretext task, then fine-tune it on the labels
    torch.manual_seed(args.seed)
    backbone = GCN(ds.num_features, ds.num_classes, hidden_channels=128, dropout=0.5)
    pretrain(backbone, args.pretext, ds, epochs=args.epochs, lr=0.01, seed=args.seed)
    cfg = NodeTrainConfig(epochs=args.epochs, patience=0, select="val_acc", normalize_features=True,
                          seed=args.seed, progress=False)
    two_stage = NodeClassificationTrainer(backbone, ds, cfg).fit()

    for name, res in (("GCN", base), (f"joint {args.pretext} (λ={args.lam:g})", joint),
                      (f"pre-train {args.pretext} + fine-tune", two_stage)):
        print(f"{name:45s} test accuracy {100 * res.metrics['accuracy']:.2f}%  "
              f"(best validation epoch {res.record['best_epoch']})")
    print(f"total {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
