"""UltraGCN epoch time on gowalla with the paper's preset (batch 512, 1500 negatives, dim 64).

Times ``--steps`` training steps (negative sampling + loss + backward + Adam, exactly
as the trainer does them) after ``prepare()`` and reports the per-step time, the
projected epoch time (steps per epoch = train interactions / batch size), and the
one-off ``prepare()`` time (β weights + chunked item–item top-K).  With
``--full-epoch`` it runs and times one whole epoch instead of projecting.

The peer, timed in the same run on the same batches: the same model scoring its negatives
the way the official UltraGCN code does (gathering the ``[B, n, d]`` negative embeddings),
which graphkit switches to a dense ``[B, I]`` matmul when negatives are a sizeable fraction
of the catalogue (``UltraGCN.DENSE_NEGATIVES_FACTOR``).  The ratio is printed.

    GRAPHKIT_DATA=../shared/datasets python benchmarks/bench_ultragcn_epoch.py --threads 2
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

import graphkit
from graphkit.models import UltraGCN
from graphkit.training.sampling import NegativeSampler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="gowalla")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--full-epoch", action="store_true")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = graphkit.datasets.load(args.dataset)
    preset = UltraGCN.presets[args.dataset]
    tr = preset["train"]
    torch.manual_seed(0)
    model = UltraGCN(ds.num_users, ds.num_items, **preset["model"]).to(args.device)
    t0 = time.perf_counter()
    model.prepare(ds.train, ds.graph().to(args.device))
    t_prepare = time.perf_counter() - t0
    opt = torch.optim.Adam(model.parameters(), lr=tr["lr"])
    sampler = NegativeSampler(ds.train)
    coo = ds.train.tocoo()
    users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
    n = users.shape[0]
    steps_per_epoch = math.ceil(n / tr["batch_size"])
    order = np.random.default_rng(0).permutation(n)
    bs = tr["batch_size"]

    def step(b: int) -> None:
        idx = order[(b % steps_per_epoch) * bs:((b % steps_per_epoch) + 1) * bs]
        neg = sampler.sample(users[idx], tr["num_negatives"], seed=b)
        dev = args.device
        loss = model.loss(torch.from_numpy(users[idx]).to(dev), torch.from_numpy(items[idx]).to(dev),
                          torch.from_numpy(neg).to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    print(f"{args.dataset}: {ds.num_users} users, {ds.num_items} items, {n} train interactions; batch {bs}, "
          f"{tr['num_negatives']} negatives, dim {preset['model']['embedding_dim']}, {torch.get_num_threads()} threads, "
          f"device {args.device}")
    print(f"prepare() (beta weights + chunked item-item top-{model.num_neighbors}): {t_prepare:.2f} s")
    step(0)
    if args.full_epoch:
        t0 = time.perf_counter()
        for b in range(steps_per_epoch):
            step(b)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        print(f"one full epoch ({steps_per_epoch} steps): {time.perf_counter() - t0:.1f} s (measured)")
        return
    dense = tr["num_negatives"] * UltraGCN.DENSE_NEGATIVES_FACTOR >= ds.num_items
    print(f"graphkit scores negatives {'densely ([B, I] matmul)' if dense else 'by gathering'} here")
    default_factor = UltraGCN.DENSE_NEGATIVES_FACTOR
    medians = {}
    # interleave the two variants so that load changes hit both alike
    times = {"graphkit": [], "gathered (official code's way)": []}
    for b in range(1, args.steps + 1):
        for name in times:
            UltraGCN.DENSE_NEGATIVES_FACTOR = default_factor if name == "graphkit" else 0
            t0 = time.perf_counter()
            step(b)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
    UltraGCN.DENSE_NEGATIVES_FACTOR = default_factor
    for name, ts in times.items():
        med = medians[name] = statistics.median(ts)
        print(f"{name:32s} step median {med * 1e3:7.1f} ms over {args.steps} steps; epoch ({steps_per_epoch} steps) "
              f"{med * steps_per_epoch:7.1f} s projected")
    ratio = medians["gathered (official code's way)"] / medians["graphkit"]
    print(f"speed-up of graphkit's step over the gathered one: {ratio:.2f}x")


if __name__ == "__main__":
    main()
