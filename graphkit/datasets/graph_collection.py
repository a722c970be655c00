"""Many small graphs in flat arrays, and mini-batches of them built without a Python loop per graph.

A :class:`GraphCollection` stores every graph of a graph-property dataset back to back
(the layout PyG's ``InMemoryDataset`` uses on disk): node features ``x`` ``[N, F]``, edge
indices ``[2, E]`` *local* to their graph, edge features ``[E, D]``, labels ``[G, T]`` and
the pointers ``node_ptr``/``edge_ptr`` (``G + 1`` entries) that delimit graph ``g``'s rows.
:meth:`GraphCollection.batch` gathers any list of graphs into one :class:`GraphBatch` (the
disjoint union: node indices shifted by each graph's offset in the batch, a ``batch``
vector mapping nodes to graphs) with a handful of vectorised index operations, whatever
the number of graphs: a batch of 32 molecules or of a whole split costs the same
constant number of tensor calls.

>>> col = GraphCollection.from_dataset(graphkit.datasets.load("ogbg-molbace"))
>>> b = col.batch(torch.tensor([3, 17, 42]))
>>> b.x.shape, b.edge_index.shape, b.batch[:5], b.num_graphs
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import torch

from ..exceptions import ConfigError, DataFormatError

__all__ = ["GraphBatch", "GraphCollection", "segment_ids", "subgraph", "hop_distances", "rank_within",
           "training_batches", "batch_ids", "EpochOrder"]


def segment_ids(counts: torch.Tensor) -> torch.Tensor:
    """``[0]*counts[0] + [1]*counts[1] + ...``: the segment of every element of a ragged array.

    Args:
        counts: non-negative int64 counts ``[S]``.
    """
    return torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)


def training_batches(n: int, batch_size: int) -> int:
    """Training batches per epoch over ``n`` graphs: ``ceil(n / batch_size)``, less one when the
    last batch would hold a single graph (it joins the batch before: batch norm cannot train on
    one row, which OGB's example avoids by skipping such batches).

    Args:
        n: number of training graphs.
        batch_size: graphs per batch.
    """
    full = -(-n // batch_size)
    return full - 1 if full > 1 and n % batch_size == 1 else max(full, 1)


def batch_ids(order: torch.Tensor, batch: int, batch_size: int) -> torch.Tensor:
    """The ``batch``-th training batch of ``order`` under :func:`training_batches` (the last one
    absorbs a trailing single graph).

    Args:
        order: the epoch's graph order.
        batch: batch index (0-based).
        batch_size: graphs per batch.
    """
    last = training_batches(len(order), batch_size) - 1
    end = len(order) if batch == last else (batch + 1) * batch_size
    return order[batch * batch_size:end]


class EpochOrder:
    """The shuffled order of ``ids`` for each epoch, drawn from a generator seeded by (seed, epoch),
    so a resumed run draws the same batches; computed once per epoch, not per batch.

    Args:
        ids: the graph ids to shuffle.
        seed: the run's seed.
    """

    def __init__(self, ids: torch.Tensor, seed: int) -> None:
        self.ids, self.seed = ids, int(seed)
        self._epoch, self._order = -1, ids

    def __call__(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = self.ids[torch.randperm(len(self.ids), generator=gen)]
            self._epoch = epoch
        return self._order


def _ranges(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The concatenation of ``arange(starts[i], starts[i] + counts[i])`` over ``i`` (vectorised)."""
    total = int(counts.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.long, device=starts.device)
    seg = segment_ids(counts)
    first = torch.cumsum(counts, 0) - counts  # position of each segment's first element
    return starts[seg] + (torch.arange(total, device=starts.device) - first[seg])


@dataclass
class GraphBatch:
    """A mini-batch of graphs as one disjoint graph.

    Attributes:
        x: node features ``[N, F]`` (int64 categorical codes for OGB molecules).
        edge_index: ``[2, E]`` int64, indices into the batch's nodes (source row 0, target row 1).
        edge_attr: edge features ``[E, D]`` (``None`` when the dataset has none).
        batch: ``[N]`` int64, the graph (0..num_graphs-1) of every node.
        y: labels ``[num_graphs, T]`` (float; NaN where a task is unlabelled), or ``None``.
        node_ptr: ``[num_graphs + 1]`` int64: graph ``g``'s nodes are ``node_ptr[g]:node_ptr[g+1]``.
        graph_ids: ``[num_graphs]`` int64, the graphs' indices in their collection.
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: Optional[torch.Tensor]
    batch: torch.Tensor
    y: Optional[torch.Tensor]
    node_ptr: torch.Tensor
    graph_ids: torch.Tensor

    @property
    def num_graphs(self) -> int:
        """Number of graphs in the batch."""
        return int(self.node_ptr.numel() - 1)

    @property
    def num_nodes(self) -> int:
        """Number of nodes in the batch."""
        return int(self.batch.numel())

    def to(self, device: Any, non_blocking: bool = False) -> "GraphBatch":
        """A copy on ``device`` (tensors moved; ``None`` fields stay ``None``).

        Args:
            device: the target device.
            non_blocking: passed to :meth:`torch.Tensor.to`.
        """
        return GraphBatch(**{f.name: (None if getattr(self, f.name) is None
                                      else getattr(self, f.name).to(device, non_blocking=non_blocking))
                             for f in fields(self)})


class GraphCollection:
    """Graphs stored back to back; :meth:`batch` gathers any subset of them.

    Args:
        x: node features of every graph, concatenated ``[N, F]``.
        edge_index: ``[2, E]`` int64 edge indices, local to each graph (0..n_g-1).
        edge_attr: ``[E, D]`` edge features or ``None``.
        y: ``[G, T]`` labels (cast to float32) or ``None``.
        node_ptr: ``[G + 1]`` int64 offsets of each graph's nodes in ``x``.
        edge_ptr: ``[G + 1]`` int64 offsets of each graph's edges.
        name: a label for messages.

    Raises:
        DataFormatError: inconsistent pointers, or an edge index outside its graph.
    """

    def __init__(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: Optional[torch.Tensor],
                 y: Optional[torch.Tensor], node_ptr: torch.Tensor, edge_ptr: torch.Tensor,
                 name: str = "graphs") -> None:
        self.name = name
        self.x = x
        self.edge_index = edge_index.long()
        self.edge_attr = edge_attr
        self.node_ptr = node_ptr.long()
        self.edge_ptr = edge_ptr.long()
        self._check()
        if y is not None and (y.numel() == 0 or y.shape[0] != len(self)):
            raise DataFormatError(f"{name}: {y.shape[0] if y.dim() else 0} label rows for {len(self)} graphs")
        self.y = None if y is None else y.reshape(len(self), -1).to(torch.float32)

    def _check(self) -> None:
        g = len(self.node_ptr) - 1
        if g < 0 or len(self.edge_ptr) != g + 1:
            raise DataFormatError(f"{self.name}: node_ptr has {len(self.node_ptr)} entries and edge_ptr "
                                  f"{len(self.edge_ptr)}; both must be num_graphs + 1")
        for what, ptr, n in (("node_ptr", self.node_ptr, self.x.shape[0]),
                             ("edge_ptr", self.edge_ptr, self.edge_index.shape[1])):
            if int(ptr[0]) != 0 or int(ptr[-1]) != n or bool((ptr[1:] < ptr[:-1]).any()):
                raise DataFormatError(f"{self.name}: {what} must rise from 0 to {n} (the row count), got "
                                      f"{ptr[0].item()}..{ptr[-1].item()}")
        if self.edge_index.dim() != 2 or self.edge_index.shape[0] != 2:
            raise DataFormatError(f"{self.name}: edge_index must be [2, E], got {tuple(self.edge_index.shape)}")
        if self.edge_attr is not None and self.edge_attr.shape[0] != self.edge_index.shape[1]:
            raise DataFormatError(f"{self.name}: edge_attr has {self.edge_attr.shape[0]} rows for "
                                  f"{self.edge_index.shape[1]} edges")
        if self.edge_index.numel():
            sizes = (self.node_ptr[1:] - self.node_ptr[:-1])[segment_ids(self.edge_ptr[1:] - self.edge_ptr[:-1])]
            bad = (self.edge_index < 0) | (self.edge_index >= sizes)
            if bool(bad.any()):
                e = int(bad.any(0).nonzero()[0])
                gid = int(torch.searchsorted(self.edge_ptr, torch.tensor(e), right=True)) - 1
                raise DataFormatError(f"{self.name}: edge {e} of graph {gid} is "
                                      f"{tuple(self.edge_index[:, e].tolist())}, outside the graph's "
                                      f"{int(sizes[e])} nodes (edge indices must be local to their graph)")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_pyg(cls, dataset: Any, name: Optional[str] = None) -> "GraphCollection":
        """From a PyG ``InMemoryDataset`` (e.g. ogb's ``PygGraphPropPredDataset``): its collated
        storage is already flat, so nothing is copied per graph.

        Args:
            dataset: the dataset (not a slice of it: index the collection instead).
            name: a label for messages (default: the dataset's ``name``).
        """
        data, slices = getattr(dataset, "_data", None), getattr(dataset, "slices", None)
        if data is None or slices is None or getattr(dataset, "_indices", None) is not None:
            raise ConfigError("GraphCollection.from_pyg needs a whole PyG InMemoryDataset (not a slice or a "
                              "list); index the collection instead, or use GraphCollection.from_data_list")
        if slices is None or "x" not in slices or "edge_index" not in slices:
            raise DataFormatError("the PyG dataset stores no node features x / edge_index")
        return cls(data.x, data.edge_index, getattr(data, "edge_attr", None), getattr(data, "y", None),
                   slices["x"], slices["edge_index"], name=name or str(getattr(dataset, "name", "graphs")))

    @classmethod
    def from_data_list(cls, graphs: Sequence[Any], name: str = "graphs") -> "GraphCollection":
        """From PyG ``Data`` objects with ``x``, ``edge_index`` (local), optional ``edge_attr``/``y``.

        Args:
            graphs: the graphs.
            name: a label for messages.
        """
        if not len(graphs):
            raise ConfigError("no graphs given")
        n = torch.tensor([0] + [int(g.num_nodes) for g in graphs]).cumsum(0)
        m = torch.tensor([0] + [int(g.edge_index.shape[1]) for g in graphs]).cumsum(0)
        has_e = all(getattr(g, "edge_attr", None) is not None for g in graphs)
        has_y = all(getattr(g, "y", None) is not None for g in graphs)
        return cls(torch.cat([g.x for g in graphs]), torch.cat([g.edge_index for g in graphs], 1),
                   torch.cat([g.edge_attr for g in graphs]) if has_e else None,
                   torch.cat([g.y.reshape(1, -1) for g in graphs]) if has_y else None, n, m, name=name)

    @classmethod
    def from_dataset(cls, dataset: Any) -> "GraphCollection":
        """From a graphkit :class:`~graphkit.datasets.GraphPropDataset` (its whole PyG dataset).

        Args:
            dataset: the loaded dataset.
        """
        return cls.from_pyg(dataset.dataset, name=dataset.name)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.node_ptr) - 1

    @property
    def num_node_features(self) -> int:
        """Columns of ``x``."""
        return int(self.x.shape[1]) if self.x.dim() == 2 else 1

    def sizes(self) -> torch.Tensor:
        """Nodes per graph ``[G]``."""
        return self.node_ptr[1:] - self.node_ptr[:-1]

    def batch(self, ids: Union[torch.Tensor, Sequence[int], np.ndarray]) -> GraphBatch:
        """The graphs ``ids`` (in that order) as one :class:`GraphBatch`.

        Args:
            ids: graph indices (repeats allowed).
        """
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= len(self)):
            raise ConfigError(f"graph ids must be in [0, {len(self)}), got {int(ids.min())}..{int(ids.max())}")
        n_cnt = self.node_ptr[ids + 1] - self.node_ptr[ids]
        e_cnt = self.edge_ptr[ids + 1] - self.edge_ptr[ids]
        node_rows = _ranges(self.node_ptr[ids], n_cnt)
        edge_rows = _ranges(self.edge_ptr[ids], e_cnt)
        node_ptr = torch.zeros(len(ids) + 1, dtype=torch.long)
        node_ptr[1:] = torch.cumsum(n_cnt, 0)
        # local edge index + the offset of its graph inside the batch
        shift = node_ptr[:-1][segment_ids(e_cnt)]
        return GraphBatch(
            x=self.x[node_rows],
            edge_index=self.edge_index[:, edge_rows] + shift,
            edge_attr=None if self.edge_attr is None else self.edge_attr[edge_rows],
            batch=segment_ids(n_cnt),
            y=None if self.y is None else self.y[ids],
            node_ptr=node_ptr,
            graph_ids=ids,
        )

    @classmethod
    def concat(cls, collections: Sequence["GraphCollection"], name: str = "graphs",
               keep_labels: bool = False) -> "GraphCollection":
        """The graphs of several collections, one after the other (a pre-training corpus).

        Args:
            collections: collections with the same node/edge feature widths.
            name: a label for messages.
            keep_labels: keep ``y`` (only when every collection has the same number of targets).
        """
        if not collections:
            raise ConfigError("no collections to concatenate")
        widths = {(c.num_node_features, None if c.edge_attr is None else tuple(c.edge_attr.shape[1:]))
                  for c in collections}
        if len(widths) > 1:
            raise DataFormatError(f"{name}: collections with different feature widths cannot be concatenated: "
                                  f"{sorted(widths, key=str)}")
        node_ptr = torch.cat([torch.zeros(1, dtype=torch.long)] + [c.sizes() for c in collections]).cumsum(0)
        edge_ptr = torch.cat([torch.zeros(1, dtype=torch.long)]
                             + [c.edge_ptr[1:] - c.edge_ptr[:-1] for c in collections]).cumsum(0)
        has_e = all(c.edge_attr is not None for c in collections)
        y = torch.cat([c.y for c in collections]) if keep_labels else None
        return cls(torch.cat([c.x for c in collections]), torch.cat([c.edge_index for c in collections], 1),
                   torch.cat([c.edge_attr for c in collections]) if has_e else None, y, node_ptr, edge_ptr,
                   name=name)

    def batches(self, ids: torch.Tensor, batch_size: int) -> Iterator[GraphBatch]:
        """:meth:`batch` over consecutive chunks of ``ids``.

        Args:
            ids: graph indices, in the order wanted.
            batch_size: graphs per batch (the last may be smaller).
        """
        for start in range(0, len(ids), batch_size):
            yield self.batch(ids[start:start + batch_size])


# ----------------------------------------------------------------------------- batch operations
def rank_within(groups: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """The rank (0, 1, ...) of every element among the elements of its group, by ascending ``keys``.

    Args:
        groups: int64 group of every element ``[N]`` (e.g. ``batch.batch``).
        keys: float sort keys ``[N]`` (random keys give a random order within each group).
    """
    order = torch.argsort(keys, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]  # by group, then by key
    counts = torch.bincount(groups, minlength=int(groups.max()) + 1 if groups.numel() else 0)
    first = torch.cumsum(counts, 0) - counts
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(len(order), device=groups.device) - first[groups[order]]
    return ranks


def subgraph(b: GraphBatch, keep: torch.Tensor) -> GraphBatch:
    """The batch restricted to the nodes ``keep`` (bool ``[N]``) and the edges between them;
    every graph keeps its slot (a graph may become empty), indices are renumbered.

    Args:
        b: the batch.
        keep: nodes to keep.
    """
    new_id = torch.cumsum(keep.long(), 0) - 1
    src, dst = b.edge_index
    e_keep = keep[src] & keep[dst]
    counts = torch.bincount(b.batch[keep], minlength=b.num_graphs)
    node_ptr = torch.zeros(b.num_graphs + 1, dtype=torch.long, device=keep.device)
    node_ptr[1:] = torch.cumsum(counts, 0)
    return GraphBatch(x=b.x[keep], edge_index=new_id[b.edge_index[:, e_keep]],
                      edge_attr=None if b.edge_attr is None else b.edge_attr[e_keep], batch=b.batch[keep],
                      y=b.y, node_ptr=node_ptr, graph_ids=b.graph_ids)


def hop_distances(b: GraphBatch, sources: torch.Tensor, max_hops: int) -> torch.Tensor:
    """Shortest-path hop count from each node's graph's source node, by breadth-first
    search over the whole batch at once (graphs are disjoint, so one multi-source search
    serves every graph); ``-1`` beyond ``max_hops`` or unreachable.

    Args:
        b: the batch.
        sources: node indices (into the batch) of the sources, any number per graph.
        max_hops: the search depth.
    """
    dist = torch.full((b.num_nodes,), -1, dtype=torch.long, device=b.batch.device)
    dist[sources] = 0
    frontier = torch.zeros(b.num_nodes, dtype=torch.bool, device=b.batch.device)
    frontier[sources] = True
    src, dst = b.edge_index
    for k in range(1, max_hops + 1):
        reached = torch.zeros_like(frontier)
        reached[dst[frontier[src]]] = True
        frontier = reached & (dist < 0)
        if not bool(frontier.any()):
            break
        dist[frontier] = k
    return dist
