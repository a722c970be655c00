"""GCN (Kipf & Welling, ICLR 2017) on a Planetoid citation graph with ``graphkit.fit``.

The default run uses the paper's preset on Cora's public split (2 layers, 16 hidden units,
dropout 0.5, lr 0.01, weight decay 5e-4 on the first layer, 200 epochs, early stopping with
patience 10 on the validation loss); it takes a few seconds.  ``--seeds N`` repeats it over
seeds 0..N-1 with :func:`graphkit.training.node.run_seeds` and prints mean ± std::

    GRAPHKIT_DATA=/path/to/datasets python examples/gcn_cora.py
    GRAPHKIT_DATA=/path/to/datasets python examples/gcn_cora.py --dataset citeseer --seeds 10

Needs the Planetoid files (``$GRAPHKIT_DATA/planetoid/raw/ind.<name>.*``).  See docs/models/gcn.md.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

import graphkit  # noqa: E402
from graphkit.training.node import run_seeds  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="cora", help="cora, citeseer or pubmed")
    ap.add_argument("--seeds", type=int, default=1, help="number of seeds (1: a single run with its history)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--out", default=None, help="save model, record and history of the single run here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()

    if args.seeds > 1:
        runs = run_seeds(graphkit.GCN, args.dataset, args.seeds, progress=False)
        print(runs.table().to_string(index=False))
        print(f"GCN on {args.dataset}: test accuracy {runs.summary('accuracy')}, "
              f"macro-F1 {runs.summary('macro_f1')}")
    else:
        result = graphkit.fit(graphkit.GCN, args.dataset, seed=0, progress=False)
        print(result.history.iloc[::10].to_string(index=False))
        rec = result.record
        print(f"GCN {rec['hparams']} on {rec['dataset']} ({rec['split']} split, fingerprint {rec['fingerprint']}): "
              f"best epoch {rec['best_epoch']} of {rec['epochs_run']} ({rec['stopped_by']})")
        print("test " + "  ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items())))
        if args.out:
            print(f"saved to {result.save(args.out)}")
    print(f"total {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
