"""Epoch time of graphkit's GIN against PyG's, on the same batches, in the same run.

Both sides train the same architecture (OGB's GIN: atom encoder, 5 GIN layers with bond
embeddings and the Linear-BN-ReLU-Linear MLP, batch norm, ReLU, dropout 0.5, mean pooling,
linear head; Adam 1e-3, BCE) for one epoch over the same shuffled batches of 32 graphs:

* **graphkit**: ``GraphCollection.batch`` (vectorised gather) + :class:`graphkit.models.GIN`;
* **PyG**: ``torch_geometric.loader.DataLoader`` over ogb's ``PygGraphPropPredDataset``
  (per-graph ``Data`` objects collated by ``Batch.from_data_list``) + a model built from
  PyG's ``GINEConv`` and ``global_mean_pool`` (no torch-scatter/pyg-lib here: PyG's own
  fallbacks).

Timings alternate (graphkit, PyG, graphkit, ...) over ``--repeats`` epochs each, after one
warm-up epoch each; the median epoch time and the ratio are printed with the load average.

    python benchmarks/bench_graph_epoch.py --dataset ogbg-molbace --threads 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class PygGIN(nn.Module):
    """OGB's GIN from PyG layers (GINEConv), for the comparison."""

    def __init__(self, num_tasks: int, num_layers: int = 5, emb_dim: int = 300, dropout: float = 0.5) -> None:
        super().__init__()
        from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder
        from torch_geometric.nn import GINEConv

        self.atom = AtomEncoder(emb_dim)
        self.bonds = nn.ModuleList(BondEncoder(emb_dim) for _ in range(num_layers))
        self.convs = nn.ModuleList(
            GINEConv(nn.Sequential(nn.Linear(emb_dim, 2 * emb_dim), nn.BatchNorm1d(2 * emb_dim), nn.ReLU(),
                                   nn.Linear(2 * emb_dim, emb_dim)), train_eps=True)
            for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(emb_dim) for _ in range(num_layers))
        self.head = nn.Linear(emb_dim, num_tasks)
        self.dropout, self.num_layers = dropout, num_layers

    def forward(self, data: Any) -> torch.Tensor:
        from torch_geometric.nn import global_mean_pool

        h = self.atom(data.x)
        for k in range(self.num_layers):
            h = self.norms[k](self.convs[k](h, data.edge_index, self.bonds[k](data.edge_attr)))
            if k < self.num_layers - 1:
                h = F.relu(h)
            h = F.dropout(h, self.dropout, self.training)
        return self.head(global_mean_pool(h, data.batch))


def _epoch(model: nn.Module, opt: torch.optim.Optimizer, batches: Any) -> float:
    model.train()
    t0 = time.perf_counter()
    for b in batches():
        y = b.y.to(torch.float32)
        pred = model(b)
        ok = ~torch.isnan(y)
        loss = F.binary_cross_entropy_with_logits(pred[ok], y[ok])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ogbg-molbace")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--emb-dim", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    a = p.parse_args(argv)
    import graphkit
    from graphkit.models import GIN
    from torch_geometric.loader import DataLoader

    torch.set_num_threads(a.threads)
    ds = graphkit.datasets.load(a.dataset)
    train = ds.split_idx["train"]
    col = ds.collection
    order = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))]
    chunks = [order[i:i + a.batch_size] for i in range(0, len(order), a.batch_size)]
    pyg_subset = ds.dataset[order]  # same graphs, same order, same batch boundaries (shuffle=False)

    def gk_batches():
        return (col.batch(c) for c in chunks)

    def pyg_batches():
        return iter(DataLoader(pyg_subset, batch_size=a.batch_size, shuffle=False))

    first = next(iter(pyg_batches()))
    assert torch.equal(first.edge_index, col.batch(chunks[0]).edge_index), "batches differ"
    torch.manual_seed(0)
    gk = GIN(ds.num_tasks, emb_dim=a.emb_dim)
    pyg = PygGIN(ds.num_tasks, emb_dim=a.emb_dim)
    opt_gk = torch.optim.Adam(gk.parameters(), lr=1e-3)
    opt_pyg = torch.optim.Adam(pyg.parameters(), lr=1e-3)
    _epoch(gk, opt_gk, gk_batches)
    _epoch(pyg, opt_pyg, pyg_batches)
    t_gk: List[float] = []
    t_pyg: List[float] = []
    for _ in range(a.repeats):
        t_gk.append(_epoch(gk, opt_gk, gk_batches))
        t_pyg.append(_epoch(pyg, opt_pyg, pyg_batches))
    # the batching alone (no model): graphkit's gather against PyG's loader + collate
    t0 = time.perf_counter()
    for _ in gk_batches():
        pass
    gather = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in pyg_batches():
        pass
    collate = time.perf_counter() - t0
    m_gk, m_pyg = statistics.median(t_gk), statistics.median(t_pyg)
    print(f"{a.dataset}: {len(train)} training graphs, {len(chunks)} batches of {a.batch_size}, width {a.emb_dim}, "
          f"{a.threads} threads, load average {tuple(round(x, 2) for x in os.getloadavg())}")
    print(f"  graphkit GIN epoch: median {m_gk:.2f} s  ({', '.join(f'{t:.2f}' for t in t_gk)})")
    print(f"  PyG GIN epoch:      median {m_pyg:.2f} s  ({', '.join(f'{t:.2f}' for t in t_pyg)})")
    print(f"  ratio PyG / graphkit: {m_pyg / m_gk:.2f}x")
    print(f"  batching only, one epoch: graphkit {gather * 1000:.0f} ms, PyG DataLoader {collate * 1000:.0f} ms "
          f"({collate / max(gather, 1e-9):.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
