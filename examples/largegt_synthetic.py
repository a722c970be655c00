"""LargeGT (Dwivedi et al., 2023) on a small synthetic graph with the mini-batch trainer.

Quick mode (the default, ~10 s) generates a stochastic block model graph (``--nodes`` nodes
in ``--classes`` communities, class-dependent sparse features), precomputes LargeGT's hop
features ``[X, ÂX, Â²X]``, writes them to a memory-mapped feature store
(:class:`graphkit.feature_store.MemMapStore`, the larger-than-RAM path; ``--store memory``
keeps them in RAM) and trains LargeGT with :func:`graphkit.training.minibatch.fit_minibatch`
for ``--epochs`` epochs.  It also shows the token sequences the sampler draws for one node::

    python examples/largegt_synthetic.py
    python examples/largegt_synthetic.py --nodes 3000 --epochs 200 --store memory
    GRAPHKIT_DATA=/path/to/datasets python examples/largegt_synthetic.py --dataset cora --epochs 200

The synthetic data needs no files.  See docs/models/largegt.md and docs/large_graphs.md.
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import graphkit  # noqa: E402
from graphkit import Graph  # noqa: E402
from graphkit.datasets.node import NodeDataset, node_split_fingerprint  # noqa: E402
from graphkit.models.largegt import LargeGT  # noqa: E402
from graphkit.training.minibatch import fit_minibatch  # noqa: E402


def planted_partition(num_nodes: int, num_classes: int, num_features: int, seed: int = 0) -> NodeDataset:
    """A planted-partition graph: average degree ~8 (6 edges inside the community, 2 anywhere),
    sparse binary features with a weak class signal, 20 training nodes per class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, num_nodes)
    by_class = [np.flatnonzero(y == c) for c in range(num_classes)]
    inside = rng.integers(0, num_nodes, 3 * num_nodes)
    partner = np.array([rng.choice(by_class[c]) for c in y[inside]])
    anywhere = rng.integers(0, num_nodes, (2, num_nodes))
    src = np.concatenate([inside, anywhere[0]])
    dst = np.concatenate([partner, anywhere[1]])
    keep = src != dst
    graph = Graph.from_coo(np.concatenate([src[keep], dst[keep]]), np.concatenate([dst[keep], src[keep]]), num_nodes)
    prototypes = rng.random((num_classes, num_features)) < 0.15
    x = (rng.random((num_nodes, num_features)) < 0.05) | (prototypes[y] & (rng.random((num_nodes, num_features)) < 0.4))
    perm = rng.permutation(num_nodes)
    n_train, n_val = 20 * num_classes, min(300, num_nodes // 4)
    train, val, test = (np.sort(perm[:n_train]), np.sort(perm[n_train:n_train + n_val]),
                        np.sort(perm[n_train + n_val:]))
    return NodeDataset(
        name="planted-partition", graph=graph, x=torch.from_numpy(x.astype(np.float32)), y=torch.from_numpy(y),
        train_idx=torch.from_numpy(train), val_idx=torch.from_numpy(val), test_idx=torch.from_numpy(test),
        num_classes=num_classes, split="random", split_seed=seed,
        fingerprint=node_split_fingerprint(train, val, test, y),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="synthetic", help="synthetic (generated) or a Planetoid name (cora, ...)")
    ap.add_argument("--nodes", type=int, default=1000, help="synthetic: number of nodes")
    ap.add_argument("--classes", type=int, default=4, help="synthetic: number of communities / classes")
    ap.add_argument("--epochs", type=int, default=30, help="maximum epochs")
    ap.add_argument("--store", default="memmap", choices=["memory", "memmap"], help="feature store of the hop features")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()

    ds = planted_partition(args.nodes, args.classes, 64) if args.dataset == "synthetic" else \
        graphkit.datasets.load(args.dataset)
    print(f"data: {ds.name}: {ds.graph.num_nodes} nodes, {ds.graph.num_edges} directed edges, "
          f"{ds.num_features} features, {ds.num_classes} classes")
    # the small-graph preset (graphkit's own, chosen on Cora; not in the paper)
    hp = dict(LargeGT.presets["cora"]["model"], **LargeGT.presets["cora"]["train"])
    hp.update(epochs=args.epochs, progress=False)

    with tempfile.TemporaryDirectory(prefix="graphkit-largegt-") as tmp:
        if args.store == "memmap":
            hp.update(feature_store="memmap", store_path=str(Path(tmp) / "hop_features.gkf"))
        result = fit_minibatch(LargeGT, ds, seed=args.seed, **hp)

    cols = [c for c in ("epoch", "train_loss", "val_loss", "val_acc", "seconds", "sample_seconds")
            if c in result.history]
    print(result.history[cols].to_string(index=False))
    rec = result.record
    print(f"best epoch {rec['best_epoch']} of {rec['epochs_run']} ({rec['stopped_by']}); "
          f"feature store: {rec.get('feature_store')}")
    print("test " + "  ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items())))

    sampler = result.model.make_sampler(ds.graph, seed=args.seed)
    print(f"token sequence of node 0 (K = {result.model.num_tokens}): {sampler.sample(torch.tensor([0]))[0].tolist()}")
    print(f"total {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
