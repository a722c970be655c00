"""Mini-batch samplers for large graphs: uniform neighbour sampling and LargeGT's token sampler.

Both samplers run compiled numba kernels over the CSR arrays of a :class:`~graphkit.Graph`
and are deterministic: every random choice comes from a counter-based hash (SplitMix64) of
``(seed, epoch, hop, node, slot)``, never from a stateful generator, so the result depends
only on the seed, the epoch and the node ids, not on batch composition, thread count or
the order in which threads process nodes.

Parallelism and threads
-----------------------
The per-node work (drawing neighbours, building 2-hop candidate sets) is split into
contiguous chunks of the node list and run concurrently.  Two backends give identical output:

``backend="threads"`` (default)
    numba kernels compiled with ``nogil=True`` run on a small persistent pool of Python
    threads (one chunk runs in the calling thread).  Idle pool threads block on a queue and
    use no CPU, the pool is re-created after ``fork`` and calls from several Python threads
    at once are safe.  numba's global threading layer is not touched.
``backend="prange"``
    the same per-node code inside one ``numba.njit(parallel=True)`` ``prange`` loop.  With
    numba's default layer this is usually OpenMP, whose worker threads keep spinning for a
    while after a parallel region; on a 2-core machine that slowed the torch operations
    that followed 4-5x.  So, unless the user has chosen a layer (``NUMBA_THREADING_LAYER``
    or ``numba.config.THREADING_LAYER``), graphkit selects ``"workqueue"`` before its first
    parallel launch (:func:`ensure_threading_layer`).  workqueue threads sleep when idle,
    but the layer does not allow two parallel launches at once from different Python
    threads; prefer the default backend in multi-threaded pipelines.

The number of threads is ``num_threads`` when given, else ``numba.get_num_threads()`` once
numba's thread pool is running, else ``numba.config.NUMBA_NUM_THREADS`` (the default backend
never starts numba's pool itself).

The neighbour sampler follows PyG's ``NeighborLoader`` output layout (seeds first, nodes in
order of discovery, one block of edges per hop, ``num_sampled_nodes``/``num_sampled_edges``)
so PyG models and ``trim_to_layer`` consume :meth:`SampledBatch.to_pyg` directly.

LargeGT's token sampler implements the sequence construction of Dwivedi et al.,
"Graph Transformers for Large Graphs", arXiv 2312.11109 (https://arxiv.org/abs/2312.11109);
the exact rule is documented on :class:`LargeGTTokenSampler`.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import numba
import numpy as np
import torch

from .exceptions import ConfigError, GraphError
from .graph import Graph

__all__ = [
    "SampledBatch",
    "NeighborSampler",
    "LargeGTTokenSampler",
    "sample_neighbors",
    "sample_tokens",
    "shard_batches",
    "ensure_threading_layer",
]

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# --------------------------------------------------------------------------- counter-based RNG
@numba.njit(cache=True, inline="always")
def _mix(x):
    """SplitMix64 finalizer: a bijective 64-bit hash."""
    z = (x + _GOLDEN) & _MASK
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def _node_key(base, node):
    """The random stream of one node: hash of (base key, node id)."""
    return _mix(base ^ _mix(np.uint64(node)))


@numba.njit(cache=True, inline="always")
def _below(key, slot, n):
    """A uniform integer in [0, n) for draw number ``slot`` of a stream (bias <= n / 2**64)."""
    return np.int64(_mix(key ^ _mix(np.uint64(slot) * np.uint64(0xD1B54A32D192ED03))) % np.uint64(n))


def _base_key(seed: int, epoch: int, hop: int) -> np.uint64:
    """The key of (seed, epoch, hop), mixed in Python with the same hash as the kernels."""
    m = 0xFFFFFFFFFFFFFFFF

    def mix(x: int) -> int:
        z = (x + 0x9E3779B97F4A7C15) & m
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        return z ^ (z >> 31)

    k = mix(int(seed) & m)
    k = mix(k ^ (int(epoch) & m))
    k = mix(k ^ ((int(hop) + 0x5851F42D4C957F2D) & m))
    return np.uint64(k)


# --------------------------------------------------------------------------- per-node kernels
@numba.njit(cache=True, inline="always")
def _floyd(key, n, k, out, o):
    """Robert Floyd's algorithm: ``k`` distinct uniform positions of ``range(n)`` into
    ``out[o:o+k]`` (k <= n).  Every k-subset is equally likely; draw j uses slot j."""
    t = 0
    for j in range(n - k, n):
        r = _below(key, j, j + 1)
        dup = False
        for q in range(t):
            if out[o + q] == r:
                dup = True
                break
        out[o + t] = j if dup else r
        t += 1


@numba.njit(cache=True, inline="always")
def _neighbors_one(indptr, v, fanout, key, out_pos, o):
    """CSR positions of the sampled neighbours of ``v`` into ``out_pos[o:]``: all of them
    when ``deg <= fanout`` (or fanout < 0), else ``fanout`` distinct ones, uniformly."""
    lo = indptr[v]
    deg = indptr[v + 1] - lo
    if fanout < 0 or deg <= fanout:
        for j in range(deg):
            out_pos[o + j] = lo + j
    else:
        _floyd(_node_key(key, v), deg, fanout, out_pos, o)
        for j in range(fanout):
            out_pos[o + j] += lo


@numba.njit(cache=True, nogil=True)
def _neighbors_range(indptr, frontier, offsets, fanout, key, out_pos, a, b):
    for i in range(a, b):
        _neighbors_one(indptr, frontier[i], fanout, key, out_pos, offsets[i])


@numba.njit(cache=True, parallel=True)
def _neighbors_prange(indptr, frontier, offsets, fanout, key, out_pos):
    for i in numba.prange(frontier.shape[0]):
        _neighbors_one(indptr, frontier[i], fanout, key, out_pos, offsets[i])


@numba.njit(cache=True, nogil=True)
def _relabel(indices, pos, counts, tgt_start, mark, n_id, n, src, dst):
    """Assign local ids to newly seen neighbours in order of first appearance (serial, so
    deterministic).  Writes ``src``/``dst`` local ids of every sampled edge; returns the new n."""
    e = 0
    for i in range(counts.shape[0]):
        t = tgt_start + i
        for _ in range(counts[i]):
            u = indices[pos[e]]
            m = mark[u]
            if m < 0:
                m = n
                mark[u] = n
                n_id[n] = u
                n += 1
            src[e] = m
            dst[e] = t
            e += 1
    return n


@numba.njit(cache=True, nogil=True)
def _register_seeds(seeds, mark, n_id):
    n = 0
    for i in range(seeds.shape[0]):
        v = seeds[i]
        n_id[n] = v
        if mark[v] < 0:
            mark[v] = n
        n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _reset_marks(mark, n_id, n):
    for i in range(n):
        mark[n_id[i]] = -1


@numba.njit(cache=True, inline="always")
def _tokens_one(indptr, indices, v, K, key, num_nodes, out, row):
    """LargeGT token ids of node ``v`` into ``out[row]`` (see :class:`LargeGTTokenSampler`)."""
    out[row, 0] = v
    need = K - 1
    if need <= 0:
        return
    lo = indptr[v]
    hi = indptr[v + 1]
    d1 = hi - lo
    total = 0
    for p in range(lo, hi):
        u = indices[p]
        total += indptr[u + 1] - indptr[u]
    two = np.empty(total, dtype=np.int64)
    t = 0
    for p in range(lo, hi):
        u = indices[p]
        for q in range(indptr[u], indptr[u + 1]):
            two[t] = indices[q]
            t += 1
    two = np.unique(two)  # the 2-hop set: distinct nodes reachable by a walk of length 2 (v included)
    c = d1 + two.shape[0]
    k = _node_key(key, v)
    if c >= need:
        sel = np.empty(need, dtype=np.int64)
        _floyd(k, c, need, sel, 0)
        sel.sort()
        for j in range(need):
            s = sel[j]
            out[row, 1 + j] = indices[lo + s] if s < d1 else two[s - d1]
    elif c > 0:
        for j in range(need):
            s = j % c
            out[row, 1 + j] = indices[lo + s] if s < d1 else two[s - d1]
    elif num_nodes >= need:
        sel = np.empty(need, dtype=np.int64)
        _floyd(k, num_nodes, need, sel, 0)
        sel.sort()
        for j in range(need):
            out[row, 1 + j] = sel[j]
    else:
        for j in range(need):
            out[row, 1 + j] = _below(k, j, num_nodes)


@numba.njit(cache=True, nogil=True)
def _tokens_range(indptr, indices, nodes, K, key, num_nodes, out, a, b):
    for i in range(a, b):
        _tokens_one(indptr, indices, nodes[i], K, key, num_nodes, out, i)


@numba.njit(cache=True, parallel=True)
def _tokens_prange(indptr, indices, nodes, K, key, num_nodes, out):
    for i in numba.prange(nodes.shape[0]):
        _tokens_one(indptr, indices, nodes[i], K, key, num_nodes, out, i)


# --------------------------------------------------------------------------- threads
_POOL: Optional[ThreadPoolExecutor] = None
_POOL_KEY: Tuple[int, int] = (-1, -1)
_POOL_LOCK = threading.Lock()
#: Below this many nodes a chunked launch costs more than it saves; run in the caller's thread.
MIN_PARALLEL_ITEMS = 256


def _thread_pool(workers: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_KEY
    key = (os.getpid(), workers)
    with _POOL_LOCK:
        if _POOL is None or _POOL_KEY != key:
            if _POOL is not None and _POOL_KEY[0] == os.getpid():
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="graphkit-sampler")
            _POOL_KEY = key
        return _POOL


def _numba_started() -> bool:
    try:
        from numba.np.ufunc import parallel as _par

        return bool(getattr(_par, "_is_initialized", False))
    except Exception:  # pragma: no cover - numba internals moved
        return True


def _resolve_threads(num_threads: Optional[int]) -> int:
    if num_threads is None:
        # numba.get_num_threads() would start numba's thread pool (fixing its threading layer);
        # before that, the configured default count is the answer.
        if _numba_started():
            return max(1, int(numba.get_num_threads()))
        return max(1, int(numba.config.NUMBA_NUM_THREADS))
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
        raise ConfigError(f"num_threads must be a positive int, got {num_threads!r}")
    return int(num_threads)


def _run_chunks(kernel: Callable[..., Any], args: Tuple[Any, ...], n: int, threads: int) -> None:
    """``kernel(*args, a, b)`` over contiguous chunks of ``range(n)``, one per thread."""
    if threads <= 1 or n < MIN_PARALLEL_ITEMS:
        kernel(*args, 0, n)
        return
    threads = min(threads, n)
    bounds = np.linspace(0, n, threads + 1).astype(np.int64)
    pool = _thread_pool(threads - 1)
    futures = [pool.submit(kernel, *args, int(bounds[t]), int(bounds[t + 1])) for t in range(1, threads)]
    kernel(*args, int(bounds[0]), int(bounds[1]))
    for f in futures:
        f.result()


_LAYER_CHECKED = False


def ensure_threading_layer() -> str:
    """Select numba's ``workqueue`` threading layer unless the user chose one.

    Called before graphkit's first ``parallel=True`` launch (the ``"prange"`` backend).
    OpenMP worker threads spin after a parallel region and slowed the following torch
    operations 4-5x on a 2-core machine; workqueue threads sleep.  The choice is left alone
    when ``NUMBA_THREADING_LAYER`` is set, when ``numba.config.THREADING_LAYER`` is not
    ``"default"``, or when numba's thread pool has already been started (by any parallel
    kernel, or by ``numba.get_num_threads()``/``numba.set_num_threads()``, which start it
    with the layer configured at that moment: call this function first to get workqueue
    there too).  Returns the configured layer name.
    """
    global _LAYER_CHECKED
    if not _LAYER_CHECKED:
        _LAYER_CHECKED = True
        if ("NUMBA_THREADING_LAYER" not in os.environ and numba.config.THREADING_LAYER == "default"
                and not _numba_started()):
            numba.config.THREADING_LAYER = "workqueue"
    return str(numba.config.THREADING_LAYER)


def _check_backend(backend: str) -> str:
    if backend not in ("threads", "prange"):
        raise ConfigError(f"backend must be 'threads' or 'prange', got {backend!r}")
    return backend


def _csr_numpy(graph: Graph) -> Tuple[np.ndarray, np.ndarray]:
    if not isinstance(graph, Graph):
        raise ConfigError(f"expected a graphkit.Graph, got {type(graph).__name__}")
    indptr = np.ascontiguousarray(graph.indptr.cpu().numpy(), dtype=np.int64)
    indices = np.ascontiguousarray(graph.indices.cpu().numpy(), dtype=np.int64)
    return indptr, indices


def _as_nodes(nodes: Any, num_nodes: int, name: str = "seed nodes") -> np.ndarray:
    if isinstance(nodes, torch.Tensor):
        arr = nodes.detach().cpu().numpy()
    else:
        arr = np.asarray(nodes)
    if arr.ndim != 1:
        raise GraphError(f"{name} must be 1-D, got shape {tuple(arr.shape)}")
    if arr.size and arr.dtype.kind not in "iu":
        raise GraphError(f"{name} must be integer node ids, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= num_nodes:
            bad = lo if lo < 0 else hi
            raise GraphError(f"{name}: node id {bad} is out of range for a graph with {num_nodes} nodes "
                             f"(valid ids 0..{num_nodes - 1})")
    return arr


# --------------------------------------------------------------------------- neighbour sampling
@dataclass
class SampledBatch:
    """One mini-batch from :class:`NeighborSampler` / :func:`sample_neighbors`.

    Attributes:
        n_id: global ids of the sampled nodes, int64 ``[n]``; the ``batch_size`` seeds come
            first, then the nodes first reached at hop 1, hop 2, ... in order of discovery.
        batch_size: number of seed nodes.
        edge_indices: per hop, the sampled edges ``[2, E_h]`` in local ids (positions in
            ``n_id``).  Row 0 is the sampled neighbour (message source), row 1 the node it
            was sampled for (message target), as in PyG's ``NeighborLoader``
            (``flow="source_to_target"``).  Hop 1 targets are seeds; hop h targets are the
            nodes first reached at hop h-1.
        e_ids: per hop, the CSR positions (edge ids) of the sampled edges in the graph, so
            ``graph.edge_weight[e_id]`` gives their weights.
        num_sampled_nodes: nodes per hop, ``[batch_size, new at hop 1, new at hop 2, ...]``.
        num_sampled_edges: edges per hop, ``[E_1, E_2, ...]``.
    """

    n_id: torch.Tensor
    batch_size: int
    edge_indices: List[torch.Tensor]
    e_ids: List[torch.Tensor]
    num_sampled_nodes: List[int]
    num_sampled_edges: List[int] = field(default_factory=list)

    @property
    def num_nodes(self) -> int:
        """Number of sampled nodes (seeds included)."""
        return int(self.n_id.shape[0])

    @property
    def seeds(self) -> torch.Tensor:
        """Global ids of the seed nodes (``n_id[:batch_size]``)."""
        return self.n_id[: self.batch_size]

    @property
    def edge_index(self) -> torch.Tensor:
        """All sampled edges ``[2, E]`` (hop 1 first), local ids."""
        if not self.edge_indices:
            return torch.empty(2, 0, dtype=torch.long)
        return torch.cat(self.edge_indices, dim=1)

    @property
    def e_id(self) -> torch.Tensor:
        """CSR positions of all sampled edges, in :attr:`edge_index` order."""
        if not self.e_ids:
            return torch.empty(0, dtype=torch.long)
        return torch.cat(self.e_ids)

    def global_edge_index(self) -> torch.Tensor:
        """:attr:`edge_index` in global node ids."""
        return self.n_id[self.edge_index]

    def to_pyg(self, x: Any = None, y: Optional[torch.Tensor] = None, **attrs: Any) -> Any:
        """A ``torch_geometric.data.Data`` laid out like ``NeighborLoader``'s output.

        Args:
            x: node features of the whole graph, a tensor ``[N, F]`` or any feature store
                with ``gather`` (:mod:`graphkit.feature_store`); the batch gets ``x[n_id]``.
            y: labels of the whole graph; the batch gets ``y[n_id]``.
            **attrs: extra attributes set on the ``Data``.

        The result has ``edge_index``, ``n_id``, ``e_id``, ``batch_size``, ``input_id``
        (the seeds), ``num_sampled_nodes`` and ``num_sampled_edges`` (so
        ``torch_geometric.utils.trim_to_layer`` works), plus ``x``/``y`` when given.
        """
        from torch_geometric.data import Data

        data = Data(edge_index=self.edge_index, num_nodes=self.num_nodes)
        data.n_id = self.n_id
        data.e_id = self.e_id
        data.batch_size = self.batch_size
        data.input_id = self.seeds
        data.num_sampled_nodes = list(self.num_sampled_nodes)
        data.num_sampled_edges = list(self.num_sampled_edges)
        if x is not None:
            data.x = x.gather(self.n_id) if hasattr(x, "gather") and not isinstance(x, torch.Tensor) else x[self.n_id]
        if y is not None:
            data.y = y[self.n_id]
        for k, v in attrs.items():
            setattr(data, k, v)
        return data

    def __repr__(self) -> str:
        return (f"SampledBatch(batch_size={self.batch_size}, num_nodes={self.num_nodes}, "
                f"num_sampled_nodes={self.num_sampled_nodes}, num_sampled_edges={self.num_sampled_edges})")


class _MarkPool:
    """Reusable ``global id -> local id`` arrays (all -1 between uses), one per concurrent caller."""

    def __init__(self, num_nodes: int) -> None:
        self.num_nodes = num_nodes
        self._free: List[np.ndarray] = []
        self._lock = threading.Lock()

    def acquire(self) -> np.ndarray:
        with self._lock:
            if self._free:
                return self._free.pop()
        dtype = np.int32 if self.num_nodes < 2**31 - 1 else np.int64
        return np.full(self.num_nodes, -1, dtype=dtype)

    def release(self, mark: np.ndarray) -> None:
        with self._lock:
            self._free.append(mark)


def _check_fanouts(fanouts: Sequence[int]) -> List[int]:
    if isinstance(fanouts, (int, np.integer)):
        fanouts = [int(fanouts)]
    out = []
    for f in fanouts:
        if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or (f < 0 and f != -1) or f == 0:
            raise ConfigError(f"fanouts must be positive ints (or -1 for all neighbours), got {list(fanouts)!r}")
        out.append(int(f))
    if not out:
        raise ConfigError("fanouts must name at least one hop")
    return out


def _sample_neighbors_np(indptr: np.ndarray, indices: np.ndarray, seeds: np.ndarray, fanouts: List[int],
                         seed: int, epoch: int, threads: int, backend: str, marks: _MarkPool) -> SampledBatch:
    mark = marks.acquire()
    n_id = np.empty(max(16, 2 * seeds.shape[0]), dtype=np.int64)
    n = 0
    try:
        n = int(_register_seeds(seeds, mark, n_id))
        num_nodes_hop = [n]
        edge_indices: List[torch.Tensor] = []
        e_ids: List[torch.Tensor] = []
        num_edges_hop: List[int] = []
        tgt_start, tgt_end = 0, n
        for hop, fanout in enumerate(fanouts):
            frontier = n_id[tgt_start:tgt_end]
            deg = indptr[frontier + 1] - indptr[frontier]
            counts = deg if fanout < 0 else np.minimum(deg, fanout)
            offsets = np.zeros(frontier.shape[0] + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            total = int(offsets[-1])
            pos = np.empty(total, dtype=np.int64)
            key = _base_key(seed, epoch, hop)
            if backend == "prange":
                ensure_threading_layer()
                _neighbors_prange(indptr, frontier, offsets, fanout, key, pos)
            else:
                _run_chunks(_neighbors_range, (indptr, frontier, offsets, fanout, key, pos), frontier.shape[0], threads)
            if n + total > n_id.shape[0]:
                grown = np.empty(max(n + total, 2 * n_id.shape[0]), dtype=np.int64)
                grown[:n] = n_id[:n]
                n_id = grown
            src = np.empty(total, dtype=np.int64)
            dst = np.empty(total, dtype=np.int64)
            new_n = int(_relabel(indices, pos, counts.astype(np.int64), tgt_start, mark, n_id, n, src, dst))
            edge_indices.append(torch.from_numpy(np.stack([src, dst])))
            e_ids.append(torch.from_numpy(pos))
            num_edges_hop.append(total)
            num_nodes_hop.append(new_n - n)
            tgt_start, tgt_end, n = n, new_n, new_n
        return SampledBatch(
            n_id=torch.from_numpy(n_id[:n].copy()), batch_size=int(seeds.shape[0]), edge_indices=edge_indices,
            e_ids=e_ids, num_sampled_nodes=num_nodes_hop, num_sampled_edges=num_edges_hop,
        )
    finally:
        _reset_marks(mark, n_id, n)
        marks.release(mark)


def sample_neighbors(graph: Graph, seeds: Any, fanouts: Sequence[int], *, seed: int = 0, epoch: int = 0,
                     num_threads: Optional[int] = None, backend: str = "threads") -> SampledBatch:
    """Sample a multi-hop neighbourhood of ``seeds`` (one-off; :class:`NeighborSampler`
    reuses its buffers across batches).

    Hop ``h`` samples, for every node first reached at hop ``h-1`` (the seeds for hop 1),
    ``fanouts[h-1]`` distinct out-neighbours uniformly without replacement, or all of them
    when the node has at most that many (``-1``: always all).  See :class:`SampledBatch`.

    Args:
        graph: the graph; row ``v`` of its CSR lists the neighbours sampled for ``v``.
        seeds: the seed node ids (tensor, array or list).
        fanouts: neighbours per hop, e.g. ``[15, 10, 5]`` (``-1``: all neighbours).
        seed: base seed of every neighbour draw.
        epoch: the epoch number, mixed into every draw (same seed and epoch, same sample).
        num_threads: threads for the sampling kernels (default ``numba.get_num_threads()``).
        backend: ``"threads"`` (default) or ``"prange"``; see the module docstring.

    Returns:
        A :class:`SampledBatch`.
    """
    indptr, indices = _csr_numpy(graph)
    seeds_np = _as_nodes(seeds, graph.num_nodes)
    return _sample_neighbors_np(indptr, indices, seeds_np, _check_fanouts(fanouts), int(seed), int(epoch),
                                _resolve_threads(num_threads), _check_backend(backend), _MarkPool(graph.num_nodes))


def shard_batches(num_items: int, batch_size: int, *, shuffle: bool = True, seed: int = 0, epoch: int = 0,
                  rank: int = 0, world_size: int = 1, drop_last: bool = False) -> List[np.ndarray]:
    """Positions ``0..num_items-1`` split into global batches, each cut into ``world_size``
    strided shards; returns this rank's shard of every global batch.

    The global order is a permutation seeded by ``(seed, epoch)`` (identity without
    ``shuffle``), the same on every rank, so ranks together cover exactly the global batches
    a single process would see (shard ``r`` of a batch is ``batch[r::world_size]``).  Every
    rank gets the same number of batches (a shard may be empty for a short last batch).

    Args:
        num_items: number of positions to split.
        batch_size: size of a global batch (all ranks together).
        shuffle: permute the positions (seeded by ``(seed, epoch)``) before batching.
        seed: base seed of the permutation.
        epoch: the epoch number, mixed into the permutation's seed.
        rank: this process's rank, ``0 <= rank < world_size``.
        world_size: number of processes.
        drop_last: drop the last incomplete global batch.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank must lie in [0, world_size), got rank={rank}, world_size={world_size}")
    if shuffle:
        order = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch) & 0xFFFFFFFF, 0x6B]).permutation(num_items)
    else:
        order = np.arange(num_items)
    stop = (num_items // batch_size) * batch_size if drop_last else num_items
    return [order[s: min(s + batch_size, stop)][rank::world_size] for s in range(0, stop, batch_size)]


class NeighborSampler:
    """Iterate over seed nodes in mini-batches, sampling a multi-hop neighbourhood for each.

    Args:
        graph: the graph; row ``v`` of its CSR lists the neighbours sampled for ``v``.
        fanouts: neighbours per hop, e.g. ``[15, 10, 5]`` (``-1``: all neighbours).
        batch_size: seeds per (global) mini-batch.
        shuffle: shuffle the seeds every epoch (seeded, deterministic).
        seed: base seed of the shuffle and of every neighbour draw.
        input_nodes: the seed nodes to iterate over (ids or a boolean mask; default all).
        drop_last: drop the last incomplete batch.
        num_threads: threads for the sampling kernels (default ``numba.get_num_threads()``).
        backend: ``"threads"`` (default) or ``"prange"``; see the module docstring.
        rank, world_size: for distributed training: this rank gets shard ``rank`` of every
            global batch (:func:`shard_batches`).

    Iterating yields :class:`SampledBatch` objects for the current epoch and then advances
    the epoch, so successive passes reshuffle and redraw; :meth:`set_epoch` pins it (as
    with ``DistributedSampler``).  A node's draws depend on ``(seed, epoch, hop, node)``
    only, never on the batch it lands in or on the thread count.

    Example::

        sampler = NeighborSampler(graph, [15, 10, 5], batch_size=1024, seed=0)
        for batch in sampler:
            data = batch.to_pyg(x=features)      # PyG Data, seeds first
            out = model(data.x, data.edge_index)[: batch.batch_size]
    """

    def __init__(self, graph: Graph, fanouts: Sequence[int], batch_size: int = 1024, shuffle: bool = True,
                 seed: int = 0, *, input_nodes: Any = None, drop_last: bool = False,
                 num_threads: Optional[int] = None, backend: str = "threads", rank: int = 0,
                 world_size: int = 1) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
        self.graph = graph
        self.indptr, self.indices = _csr_numpy(graph)
        self.fanouts = _check_fanouts(fanouts)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.num_threads = num_threads
        _resolve_threads(num_threads)
        self.backend = _check_backend(backend)
        self.rank, self.world_size = int(rank), int(world_size)
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank must lie in [0, world_size), got rank={rank}, world_size={world_size}")
        if input_nodes is None:
            self.input_nodes = np.arange(graph.num_nodes, dtype=np.int64)
        else:
            arr = input_nodes.cpu().numpy() if isinstance(input_nodes, torch.Tensor) else np.asarray(input_nodes)
            if arr.dtype == bool:
                if arr.shape != (graph.num_nodes,):
                    raise GraphError(f"input_nodes mask must have shape ({graph.num_nodes},), got {arr.shape}")
                arr = np.flatnonzero(arr)
            self.input_nodes = _as_nodes(arr, graph.num_nodes, "input_nodes")
        self.epoch = 0
        self._marks = _MarkPool(graph.num_nodes)

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next pass (shuffle order and neighbour draws)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = self.input_nodes.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def sample(self, seeds: Any, epoch: Optional[int] = None) -> SampledBatch:
        """The sampled neighbourhood of explicit ``seeds`` (global ids) for ``epoch``."""
        seeds_np = _as_nodes(seeds, self.graph.num_nodes)
        return _sample_neighbors_np(self.indptr, self.indices, seeds_np, self.fanouts, self.seed,
                                    self.epoch if epoch is None else int(epoch),
                                    _resolve_threads(self.num_threads), self.backend, self._marks)

    def __iter__(self) -> Iterator[SampledBatch]:
        epoch = self.epoch
        self.epoch += 1
        shards = shard_batches(self.input_nodes.shape[0], self.batch_size, shuffle=self.shuffle, seed=self.seed,
                               epoch=epoch, rank=self.rank, world_size=self.world_size, drop_last=self.drop_last)
        for pos in shards:
            yield self.sample(self.input_nodes[pos], epoch)

    def __repr__(self) -> str:
        return (f"NeighborSampler(fanouts={self.fanouts}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"seed={self.seed}, nodes={self.input_nodes.shape[0]}, backend={self.backend!r})")


# --------------------------------------------------------------------------- LargeGT tokens
def sample_tokens(graph: Graph, nodes: Any, num_tokens: int, *, seed: int = 0, epoch: int = 0,
                  num_threads: Optional[int] = None, backend: str = "threads") -> torch.Tensor:
    """LargeGT token ids ``[len(nodes), num_tokens]`` (one-off form of :class:`LargeGTTokenSampler`).

    Args:
        graph: the graph.
        nodes: the nodes to build sequences for.
        num_tokens: sequence length ``K`` (column 0 is the node itself).
        seed: base seed of the draws.
        epoch: the epoch number, mixed into every draw.
        num_threads: threads for the sampling kernels (default ``numba.get_num_threads()``).
        backend: ``"threads"`` (default) or ``"prange"``; see the module docstring.
    """
    return LargeGTTokenSampler(graph, num_tokens, seed=seed, num_threads=num_threads, backend=backend).sample(
        nodes, epoch=epoch)


class LargeGTTokenSampler:
    """The node sequences of LargeGT's local module.

    Paper: Vijay Prakash Dwivedi, Yozen Liu, Anh Tuan Luu, Xavier Bresson, Neil Shah, Tong Zhao,
    "Graph Transformers for Large Graphs", arXiv 2312.11109, https://arxiv.org/abs/2312.11109
    (Algorithm 1, "fast neighbourhood sampling").

    For every node ``v`` the sequence is ``[v, u_1, ..., u_{K-1}]`` where the ``u_j`` come from
    the candidate list ``C(v) = N1(v) ++ N2(v)``:

    * ``N1(v)``: the out-neighbours of ``v`` (row ``v`` of the CSR);
    * ``N2(v)``: the distinct nodes reachable from ``v`` by a walk of exactly two edges
      (the non-zero columns of row ``v`` of ``A²``; contains ``v`` itself whenever ``v`` has
      a neighbour with a back edge), in increasing id order.

    A node in both lists appears twice in ``C(v)`` (the paper concatenates the two lists).
    Then, with ``c = |C(v)|``:

    * ``c >= K-1``: ``K-1`` distinct positions of ``C(v)`` drawn uniformly without
      replacement (sorted by position, so 1-hop candidates come first);
    * ``0 < c < K-1``: ``C(v)`` repeated cyclically up to length ``K-1``;
    * ``c = 0`` (isolated node): ``K-1`` distinct nodes drawn uniformly from the whole graph
      (with replacement only if the graph has fewer than ``K-1`` nodes).

    Draws depend on ``(seed, epoch, v)`` only.  The paper (and its code) samples the
    sequences once before training; keep ``epoch=0`` for that, or pass the epoch to redraw.
    Combined with the precomputed ``ÂX`` and ``Â²X`` tokens
    (:func:`graphkit.models.largegt.hop_features`) each sequence sees up to 4 hops.

    Args:
        graph: the graph (usually undirected).
        num_tokens: sequence length ``K`` (node itself included), ``K >= 1``.
        seed: base seed.
        num_threads, backend: as for :class:`NeighborSampler`.
    """

    def __init__(self, graph: Graph, num_tokens: int, *, seed: int = 0, num_threads: Optional[int] = None,
                 backend: str = "threads") -> None:
        if isinstance(num_tokens, bool) or not isinstance(num_tokens, (int, np.integer)) or num_tokens < 1:
            raise ConfigError(f"num_tokens must be a positive int, got {num_tokens!r}")
        if graph.num_nodes == 0:
            raise GraphError("LargeGTTokenSampler needs a graph with at least one node")
        self.graph = graph
        self.indptr, self.indices = _csr_numpy(graph)
        self.num_tokens = int(num_tokens)
        self.seed = int(seed)
        self.num_threads = num_threads
        _resolve_threads(num_threads)
        self.backend = _check_backend(backend)

    def sample(self, nodes: Any, epoch: int = 0) -> torch.Tensor:
        """Token node ids, int64 ``[len(nodes), K]``; column 0 is the node itself.

        Args:
            nodes: the nodes to build sequences for.
            epoch: the epoch, mixed into every draw (the trainer samples once, at epoch 0).
        """
        arr = _as_nodes(nodes, self.graph.num_nodes, "nodes")
        out = np.empty((arr.shape[0], self.num_tokens), dtype=np.int64)
        key = _base_key(self.seed, epoch, 0x70CE)
        args = (self.indptr, self.indices, arr, self.num_tokens, key, self.graph.num_nodes, out)
        if self.backend == "prange":
            ensure_threading_layer()
            _tokens_prange(*args)
        else:
            _run_chunks(_tokens_range, args, arr.shape[0], _resolve_threads(self.num_threads))
        return torch.from_numpy(out)

    def __repr__(self) -> str:
        return f"LargeGTTokenSampler(num_tokens={self.num_tokens}, seed={self.seed}, backend={self.backend!r})"
