"""The one sparse-graph type every graphkit model uses.

A :class:`Graph` stores the adjacency matrix in CSR form as torch tensors
(``indptr``, ``indices`` and optional ``edge_weight``).  Row ``i`` lists the
out-neighbours of node ``i``.  Recommendation graphs are bipartite and
symmetric: nodes ``0..U-1`` are users and ``U..U+I-1`` are items.

Normalized adjacency matrices are cached per (normalization, self-loops, device)
as ``torch.sparse_csr`` tensors, and :func:`spmm` multiplies them with a dense
matrix under autograd; for a symmetric matrix the backward pass reuses the same
CSR (``A^T = A``), so no transpose is built per step.
"""
from __future__ import annotations

import operator
import warnings
from typing import Any, Dict, Iterable, Optional, Tuple, Union

import numpy as np
import scipy.sparse as sp
import torch

from .exceptions import GraphError

ArrayLike = Union[np.ndarray, torch.Tensor, Iterable[int]]

__all__ = ["Graph", "spmm", "csr_gather"]


# --------------------------------------------------------------------------- helpers
def _to_numpy(a: Any, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise GraphError(f"{name}: cannot convert {type(a).__name__} to an array ({exc})") from exc


def _as_index_array(a: Any, name: str) -> np.ndarray:
    """Validate ``a`` as a 1-D array of non-negative integers and return it as int64."""
    arr = _to_numpy(a, name)
    if arr.ndim != 1:
        raise GraphError(f"{name} must be 1-D, got shape {tuple(arr.shape)}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind == "b":
        raise GraphError(f"{name} must hold integer ids, got dtype bool")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise GraphError(f"{name} must hold integer ids, got {arr[i].item()!r} at position {i}")
    elif arr.dtype.kind not in "iu":
        raise GraphError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise GraphError(f"{name} must be non-negative, got {arr[i]} at position {i}")
    return arr


def _as_weights(w: Any, n: int, name: str = "edge_weight") -> Optional[np.ndarray]:
    if w is None:
        return None
    arr = _to_numpy(w, name)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise GraphError(f"{name} must have shape ({n},), got {tuple(arr.shape)}")
    if arr.dtype.kind not in "fiub":
        raise GraphError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise GraphError(f"{name} must be finite, got {arr[i].item()} at position {i}")
    return arr


#: The edge type ``Graph.to_pyg(hetero=True)`` and ``RecDataset.to_pyg()`` write by default.
PYG_EDGE_TYPE: Tuple[str, str, str] = ("user", "to", "item")


def _hetero_edge_type(value: Any) -> Tuple[str, str, str]:
    """``value`` (``True`` or a ``(user type, relation, item type)`` tuple) as an edge type."""
    from .exceptions import ConfigError

    if value is True:
        return PYG_EDGE_TYPE
    if (isinstance(value, (tuple, list)) and len(value) == 3 and all(isinstance(v, str) and v for v in value)
            and value[0] != value[2]):
        return (str(value[0]), str(value[1]), str(value[2]))
    raise ConfigError(f"the HeteroData edge type must be True or a (user type, relation, item type) tuple of "
                      f"non-empty strings with two different node types, got {value!r}")


#: Largest node count a Graph accepts (far above anything that fits in memory; keeps id
#: arithmetic inside int64 and turns absurd counts into a GraphError, not a MemoryError).
MAX_NODES = 2**40


def _check_count(value: Any, name: str) -> int:
    """``value`` as a node count: an integer in ``[0, MAX_NODES]``, else GraphError."""
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        n = operator.index(value)
    except TypeError:
        raise GraphError(f"{name} must be an integer, got {value!r}") from None
    if n < 0 or n > MAX_NODES:
        raise GraphError(f"{name} must lie in [0, {MAX_NODES}], got {n}")
    return int(n)


def _check_range(ids: np.ndarray, bound: int, name: str) -> None:
    if ids.size and int(ids.max()) >= bound:
        i = int(np.argmax(ids))
        raise GraphError(f"{name} id {int(ids[i])} at position {i} is out of range for {bound} nodes")


def csr_gather(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Positions and owning-row offsets of the CSR entries of ``rows``, vectorized.

    Returns ``(pos, seg)`` where ``indices[pos]`` are the neighbours of the given
    rows concatenated in order and ``seg[j]`` is the index into ``rows`` of entry ``j``.

    Args:
        indptr: CSR row pointer, int64 ``[N + 1]``.
        indices: CSR column indices, int64 ``[E]`` (only its length matters here).
        rows: the rows to gather, int64 ``[R]`` (repeats allowed).
    """
    starts = indptr[rows]
    counts = indptr[rows + 1] - starts
    total = int(counts.sum())
    seg = np.repeat(np.arange(rows.shape[0], dtype=np.int64), counts)
    if total == 0:
        return np.empty(0, dtype=np.int64), seg
    offsets = np.cumsum(counts) - counts
    pos = np.arange(total, dtype=np.int64) - np.repeat(offsets, counts) + np.repeat(starts, counts)
    return pos, seg


def _csr_tensor(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """A ``torch.sparse_csr`` tensor from arrays graphkit has already validated."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(indptr, indices, values, size, check_invariants=False)


# --------------------------------------------------------------------------- spmm
class _SpMM(torch.autograd.Function):
    """y = A x with backward dx = A^T g; A^T is ``adj_t`` (the same tensor when symmetric)."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, adj_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.adj_t = adj_t
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        adj_t = ctx.adj_t
        ctx.adj_t = None
        return None, None, torch.sparse.mm(adj_t, grad.contiguous())


def spmm(adj: torch.Tensor, x: torch.Tensor, symmetric: bool = False, adj_t: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Sparse (CSR) times dense, differentiable with respect to ``x``.

    Args:
        adj: a ``torch.sparse_csr`` matrix of shape [N, M].
        x: a dense tensor of shape [M, D].
        symmetric: ``adj`` is symmetric, so the backward pass multiplies by ``adj``
            itself instead of a transpose.
        adj_t: a precomputed CSR transpose of ``adj`` for non-symmetric matrices;
            when omitted (and not symmetric) it is built on the fly.

    Returns:
        The dense product of shape [N, D].
    """
    if adj.layout != torch.sparse_csr:
        raise GraphError(f"spmm expects a sparse CSR matrix, got layout {adj.layout}")
    if adj.shape[1] != x.shape[0]:
        raise GraphError(f"spmm shape mismatch: adjacency {tuple(adj.shape)} times x {tuple(x.shape)}")
    if not x.requires_grad:
        return torch.sparse.mm(adj, x)
    if symmetric:
        adj_t = adj
    elif adj_t is None:
        adj_t = adj.to_sparse_coo().t().to_sparse_csr()
    return _SpMM.apply(adj, adj_t, x)


# --------------------------------------------------------------------------- Graph
class Graph:
    """A sparse graph in CSR form, shared by every graphkit model.

    Args:
        indptr: row pointer, int64 of shape [N + 1], non-decreasing, ``indptr[0] == 0``.
        indices: column index of every stored edge, int64 of shape [E].
        edge_weight: optional float weights of shape [E] (finite).
        num_nodes: number of nodes N (defaults to ``len(indptr) - 1``).
        num_users: for bipartite user–item graphs, the number of users U.
        num_items: for bipartite user–item graphs, the number of items I (U + I == N).
        validate: check the arrays (ranges, shapes, finiteness); raise :class:`GraphError`.

    Most users build graphs with the ``from_*`` constructors, e.g.
    :meth:`from_edge_index` or :meth:`from_user_item`.
    """

    def __init__(
        self,
        indptr: ArrayLike,
        indices: ArrayLike,
        edge_weight: Optional[ArrayLike] = None,
        *,
        num_nodes: Optional[int] = None,
        num_users: Optional[int] = None,
        num_items: Optional[int] = None,
        validate: bool = True,
    ) -> None:
        if validate:
            ip = _as_index_array(indptr, "indptr")
            ix = _as_index_array(indices, "indices")
            if ip.size == 0 or ip[0] != 0:
                raise GraphError("indptr must start with 0")
            if (np.diff(ip) < 0).any():
                i = int(np.flatnonzero(np.diff(ip) < 0)[0])
                raise GraphError(f"indptr must be non-decreasing, it drops at position {i + 1}")
            if ip[-1] != ix.shape[0]:
                raise GraphError(f"indptr[-1] = {ip[-1]} does not equal the number of indices {ix.shape[0]}")
            n = ip.shape[0] - 1 if num_nodes is None else _check_count(num_nodes, "num_nodes")
            if n != ip.shape[0] - 1:
                raise GraphError(f"num_nodes = {n} but indptr describes {ip.shape[0] - 1} rows")
            _check_range(ix, n, "indices")
            w = _as_weights(edge_weight, ix.shape[0])
            self.indptr = torch.from_numpy(ip)
            self.indices = torch.from_numpy(ix)
            self.edge_weight = None if w is None else torch.from_numpy(w)
        else:
            self.indptr = torch.as_tensor(indptr, dtype=torch.long)
            self.indices = torch.as_tensor(indices, dtype=torch.long, device=self.indptr.device)
            self.edge_weight = None if edge_weight is None else torch.as_tensor(edge_weight, dtype=torch.float32, device=self.indptr.device)
            n = self.indptr.shape[0] - 1 if num_nodes is None else int(num_nodes)
        self.num_nodes: int = int(n)
        if (num_users is None) != (num_items is None):
            raise GraphError("num_users and num_items must be given together")
        if num_users is not None:
            num_users, num_items = _check_count(num_users, "num_users"), _check_count(num_items, "num_items")
            if num_users + num_items != self.num_nodes:
                raise GraphError(
                    f"num_users + num_items must equal num_nodes: {num_users} + {num_items} != {self.num_nodes}"
                )
        self.num_users: Optional[int] = None if num_users is None else int(num_users)
        self.num_items: Optional[int] = None if num_items is None else int(num_items)
        self._cache: Dict[Any, Any] = {}

    # ------------------------------------------------------------------ basics
    @property
    def num_edges(self) -> int:
        """Number of stored (directed) edges."""
        return int(self.indices.shape[0])

    @property
    def is_bipartite(self) -> bool:
        """Whether the graph carries a user/item partition."""
        return self.num_users is not None

    @property
    def device(self) -> torch.device:
        """The device the CSR tensors live on."""
        return self.indptr.device

    @property
    def row(self) -> torch.Tensor:
        """The source node of every stored edge (COO row), computed from ``indptr``."""
        key = ("row", self.device)
        if key not in self._cache:
            counts = self.indptr[1:] - self.indptr[:-1]
            self._cache[key] = torch.repeat_interleave(torch.arange(self.num_nodes, device=self.device), counts)
        return self._cache[key]

    def __repr__(self) -> str:
        extra = f", num_users={self.num_users}, num_items={self.num_items}" if self.is_bipartite else ""
        w = ", weighted" if self.edge_weight is not None else ""
        return f"Graph(num_nodes={self.num_nodes}, num_edges={self.num_edges}{extra}{w}, device={self.device})"

    def _like(self, indptr: Any, indices: Any, weight: Any, **kw: Any) -> "Graph":
        kw.setdefault("num_nodes", self.num_nodes)
        if self.is_bipartite and kw.get("num_nodes") == self.num_nodes:
            kw.setdefault("num_users", self.num_users)
            kw.setdefault("num_items", self.num_items)
        return Graph(indptr, indices, weight, validate=False, **kw)

    def to(self, device: Union[str, torch.device]) -> "Graph":
        """A copy of the graph on ``device`` (the same object when already there)."""
        device = torch.device(device)
        if device == self.device:
            return self
        g = self._like(
            self.indptr.to(device),
            self.indices.to(device),
            None if self.edge_weight is None else self.edge_weight.to(device),
        )
        return g

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_coo(
        cls,
        row: ArrayLike,
        col: ArrayLike,
        num_nodes: Optional[int] = None,
        edge_weight: Optional[ArrayLike] = None,
        *,
        coalesce: bool = True,
        num_users: Optional[int] = None,
        num_items: Optional[int] = None,
    ) -> "Graph":
        """Build from COO arrays ``row``/``col`` (edges ``row[k] -> col[k]``).

        Args:
            row, col: integer node ids of equal length.
            num_nodes: number of nodes; defaults to ``max id + 1``.
            edge_weight: optional weights, one per edge.
            coalesce: merge duplicate edges (weights are summed) and sort each row.
            num_users, num_items: optional bipartite partition.
        """
        r = _as_index_array(row, "row")
        c = _as_index_array(col, "col")
        if r.shape != c.shape:
            raise GraphError(f"row and col must have the same length, got {r.shape[0]} and {c.shape[0]}")
        w = _as_weights(edge_weight, r.shape[0])
        if num_nodes is None:
            num_nodes = int(max(r.max(initial=-1), c.max(initial=-1))) + 1
            if num_nodes > MAX_NODES:
                raise GraphError(f"the largest node id, {num_nodes - 1}, implies more than MAX_NODES = {MAX_NODES} "
                                 "nodes; pass num_nodes or renumber the ids")
        num_nodes = _check_count(num_nodes, "num_nodes")
        _check_range(r, num_nodes, "source")
        _check_range(c, num_nodes, "target")
        if coalesce:
            # scipy's COO -> CSR is a counting sort; sum_duplicates sorts each row and merges
            data = np.ones(r.shape[0], dtype=np.float32) if w is None else w.astype(np.float64)
            try:
                mat = sp.csr_matrix((data, (r, c)), shape=(num_nodes, num_nodes))
            except MemoryError:
                raise GraphError(f"not enough memory for a graph of {num_nodes} nodes") from None
            mat.sum_duplicates()
            indptr = mat.indptr.astype(np.int64)
            c = mat.indices.astype(np.int64)
            if w is not None:
                w = mat.data.astype(np.float32)
        else:
            order = np.argsort(r, kind="stable")
            r, c = r[order], c[order]
            if w is not None:
                w = w[order]
            try:
                indptr = np.zeros(num_nodes + 1, dtype=np.int64)
                np.cumsum(np.bincount(r, minlength=num_nodes), out=indptr[1:])
            except MemoryError:
                raise GraphError(f"not enough memory for a graph of {num_nodes} nodes") from None
        return cls(
            torch.from_numpy(indptr),
            torch.from_numpy(np.ascontiguousarray(c)),
            None if w is None else torch.from_numpy(np.ascontiguousarray(w)),
            num_nodes=num_nodes,
            num_users=num_users,
            num_items=num_items,
            validate=False,
        )

    @classmethod
    def from_edge_index(
        cls,
        edge_index: ArrayLike,
        num_nodes: Optional[int] = None,
        edge_weight: Optional[ArrayLike] = None,
        *,
        coalesce: bool = True,
    ) -> "Graph":
        """Build from a PyG-style ``edge_index`` of shape [2, E] (source row, target row).

        Args:
            edge_index: integer ``[2, E]`` array or tensor.
            num_nodes: number of nodes; defaults to ``max id + 1``.
            edge_weight: optional weights, one per edge.
            coalesce: merge duplicate edges (weights are summed) and sort each row.
        """
        ei = _to_numpy(edge_index, "edge_index")
        if ei.ndim != 2 or ei.shape[0] != 2:
            raise GraphError(f"edge_index must have shape [2, E], got {tuple(ei.shape)}")
        return cls.from_coo(ei[0], ei[1], num_nodes, edge_weight, coalesce=coalesce)

    @classmethod
    def from_scipy(
        cls,
        mat: sp.spmatrix,
        *,
        num_users: Optional[int] = None,
        num_items: Optional[int] = None,
        bipartite: Optional[bool] = None,
    ) -> "Graph":
        """Build from a scipy.sparse matrix: a square adjacency, or a user x item matrix.

        Stored values become edge weights unless they are all 1.  A square ``[N, N]`` matrix
        is the adjacency (row ``i`` lists the out-neighbours of node ``i``).  A rectangular
        ``[U, I]`` matrix is a user x item interaction matrix and gives the symmetric
        bipartite graph of :meth:`from_user_item` (users ``0..U-1``, items ``U..U+I-1``);
        ``user_item_matrix()`` returns it back.

        Args:
            mat: a 2-D ``scipy.sparse`` matrix or array (any format).
            num_users: for a square adjacency, an optional bipartite partition: nodes
                ``0..num_users-1`` are users.  For a user x item matrix it must equal
                ``mat.shape[0]`` when given.
            num_items: for a square adjacency, the next ``num_items`` nodes are items.  For a
                user x item matrix it must equal ``mat.shape[1]`` when given.
            bipartite: ``None`` (default): rectangular means user x item, square means
                adjacency.  ``True``: ``mat`` is a user x item matrix even when square.
                ``False``: ``mat`` must be a square adjacency.

        Raises:
            GraphError: not a 2-D sparse matrix, a rectangular matrix with ``bipartite=False``,
                sizes that disagree with the shape, non-finite or non-numeric values.
        """
        if not sp.issparse(mat):
            raise GraphError(f"from_scipy expects a scipy.sparse matrix, got {type(mat).__name__}")
        if len(mat.shape) != 2:
            raise GraphError(f"from_scipy expects a 2-D matrix, got shape {tuple(mat.shape)}")
        if bipartite not in (None, True, False):
            raise GraphError(f"bipartite must be None, True or False, got {bipartite!r}")
        square = mat.shape[0] == mat.shape[1]
        if bipartite is False and not square:
            raise GraphError(f"adjacency must be square, got shape {mat.shape} (a user x item matrix "
                             "needs bipartite=None or True)")
        csr = sp.csr_matrix(mat)
        csr.sum_duplicates()
        csr.sort_indices()
        data = np.asarray(csr.data)
        weight = None if data.size == 0 or np.all(data == 1) else data
        if bipartite or not square:
            U, I = int(csr.shape[0]), int(csr.shape[1])
            for name, given, size in (("num_users", num_users, U), ("num_items", num_items, I)):
                if given is not None and _check_count(given, name) != size:
                    raise GraphError(f"{name} = {given} does not match the user x item matrix of shape "
                                     f"{(U, I)}")
            users = np.repeat(np.arange(U, dtype=np.int64), np.diff(csr.indptr))
            return cls.from_user_item(users, csr.indices.astype(np.int64), U, I, weight)
        return cls(
            csr.indptr.astype(np.int64), csr.indices.astype(np.int64), weight,
            num_nodes=csr.shape[0], num_users=num_users, num_items=num_items,
        )

    @classmethod
    def from_pyg(cls, data: Any, *, edge_type: Any = None) -> "Graph":
        """Build from a PyG ``Data`` or a bipartite PyG ``HeteroData``.

        * ``torch_geometric.data.Data``: uses ``edge_index``, ``num_nodes`` and a 1-D
          ``edge_weight`` (or a 1-D ``edge_attr``) if present.
        * ``torch_geometric.data.HeteroData`` with two node types and one edge type between
          them, ``(user type, relation, item type)``, optionally with its reverse edge type:
          the symmetric bipartite graph of :meth:`from_user_item` (users ``0..U-1``, items
          ``U..U+I-1``; ``U``/``I`` are the node stores' ``num_nodes``, so users and items
          without edges are kept).  The source node type of the edge type holds the users.
          A 1-D ``edge_weight`` (or ``edge_attr``) of that edge type becomes the edge weights.
          A reverse edge type ``(item type, *, user type)`` must hold exactly the reversed
          edges (and the same weights); any other edge type is an error, since a Graph holds
          one relation.  :meth:`to_pyg` with ``hetero=True`` writes this layout.

        Args:
            data: a ``torch_geometric.data.Data`` or ``HeteroData``.
            edge_type: for a HeteroData with several candidate edge types, the
                ``(user type, relation, item type)`` tuple (or a unique relation name) to read.
                Found automatically for one edge type, or a pair of reverse edge types where
                one is named ``rev_*`` (what ``ToUndirected`` adds).

        Raises:
            GraphError: no ``edge_index`` (Data), ids or weights that do not fit.
            DataFormatError: a HeteroData that is not bipartite (node types, edge types,
                ``edge_index`` shape or id ranges, a reverse edge type that is not the reverse);
                the error names the field.
            ConfigError: several candidate edge types and no ``edge_type``, or an
                ``edge_type`` given for a ``Data``.
        """
        from .datasets.convert import _graph_from_hetero, _pyg_class

        if _pyg_class(data) == "HeteroData":
            return _graph_from_hetero(data, edge_type)
        if edge_type is not None:
            from .exceptions import ConfigError

            raise ConfigError(f"edge_type applies to a HeteroData; got a {type(data).__name__}")
        if not hasattr(data, "edge_index") or data.edge_index is None:
            raise GraphError("PyG data has no edge_index")
        weight = getattr(data, "edge_weight", None)
        if weight is None:
            attr = getattr(data, "edge_attr", None)
            if attr is not None and attr.dim() == 1:
                weight = attr
        return cls.from_edge_index(data.edge_index, data.num_nodes, weight)

    @classmethod
    def from_networkx(
        cls, G: Any, weight: Optional[str] = None, *, return_mapping: bool = False, bipartite: bool = False,
    ) -> Union["Graph", Tuple["Graph", Dict[Any, int]]]:
        """Build from a networkx graph; nodes are numbered in ``G.nodes`` order.

        Undirected graphs get both directions of each edge.

        With ``bipartite=True`` every node must carry networkx's ``bipartite`` attribute
        (``0``: user, ``1``: item, as set by ``networkx.algorithms.bipartite``'s generators and
        by :meth:`to_networkx` of a bipartite graph), every edge must join a user and an item,
        and ``G`` must be undirected: the result is the symmetric bipartite graph of
        :meth:`from_user_item`, users numbered first (``0..U-1``, in ``G.nodes`` order), then
        items (``U..U+I-1``).

        Args:
            G: a networkx ``Graph`` or ``DiGraph`` (multigraphs: parallel edges are merged,
                weights summed).
            weight: the edge attribute to use as edge weight (missing attributes count as 1);
                ``None`` for an unweighted graph.
            return_mapping: also return ``{node label: node index}``.
            bipartite: read the ``bipartite`` node attribute and build a bipartite graph.

        Returns:
            The :class:`Graph`, or ``(graph, mapping)`` with ``return_mapping=True``.

        Raises:
            GraphError: with ``bipartite=True``, a node without a ``bipartite`` attribute of
                0 or 1, an edge between two users or two items, or a directed ``G``.
        """
        nodes = list(G.nodes)
        edges = list(G.edges(data=True))
        w = None
        if weight is not None:
            w = np.fromiter((float(d.get(weight, 1.0)) for _, _, d in edges), dtype=np.float64, count=len(edges))
        if bipartite:
            if G.is_directed():
                raise GraphError("from_networkx(bipartite=True) reads an undirected networkx graph (an interaction "
                                 "has no direction); pass G.to_undirected()")
            side = {}
            for n, attrs in G.nodes(data=True):
                s = attrs.get("bipartite")
                if isinstance(s, (bool, np.bool_)) or s not in (0, 1):
                    raise GraphError(f"node {n!r} has bipartite={s!r}; bipartite=True needs the node attribute "
                                     "bipartite=0 (users) or 1 (items) on every node")
                side[n] = int(s)
            users = [n for n in nodes if side[n] == 0]
            items = [n for n in nodes if side[n] == 1]
            index = {n: k for k, n in enumerate(users)}
            index.update({n: k for k, n in enumerate(items)})
            u = np.empty(len(edges), dtype=np.int64)
            i = np.empty(len(edges), dtype=np.int64)
            for k, (a, b, _) in enumerate(edges):
                if side[a] == side[b]:
                    kind = "users" if side[a] == 0 else "items"
                    raise GraphError(f"edge ({a!r}, {b!r}) joins two {kind}; a bipartite graph has user-item edges only")
                if side[a] == 1:
                    a, b = b, a
                u[k], i[k] = index[a], index[b]
            g = cls.from_user_item(u, i, len(users), len(items), w)
            if not return_mapping:
                return g
            mapping = {n: k for k, n in enumerate(users)}
            mapping.update({n: len(users) + k for k, n in enumerate(items)})
            return g, mapping
        index = {n: i for i, n in enumerate(nodes)}
        src = np.fromiter((index[u] for u, _, _ in edges), dtype=np.int64, count=len(edges))
        dst = np.fromiter((index[v] for _, v, _ in edges), dtype=np.int64, count=len(edges))
        if not G.is_directed():
            loop = src == dst
            src, dst = np.concatenate([src, dst[~loop]]), np.concatenate([dst, src[~loop]])
            if w is not None:
                w = np.concatenate([w, w[~loop]])
        g = cls.from_coo(src, dst, len(nodes), w)
        return (g, index) if return_mapping else g

    @classmethod
    def from_user_item(
        cls,
        users: ArrayLike,
        items: ArrayLike,
        num_users: Optional[int] = None,
        num_items: Optional[int] = None,
        weights: Optional[ArrayLike] = None,
    ) -> "Graph":
        """The symmetric bipartite graph of (user, item) interactions.

        Nodes ``0..U-1`` are users and ``U..U+I-1`` are items.  Duplicate
        interactions are merged (their weights summed when ``weights`` is given).

        Args:
            users, items: integer ids of equal length (0-based).
            num_users, num_items: sizes of the partition (default: max id + 1).
            weights: optional interaction weights.
        """
        u = _as_index_array(users, "users")
        i = _as_index_array(items, "items")
        if u.shape != i.shape:
            raise GraphError(f"users and items must have the same length, got {u.shape[0]} and {i.shape[0]}")
        U = int(u.max(initial=-1)) + 1 if num_users is None else _check_count(num_users, "num_users")
        I = int(i.max(initial=-1)) + 1 if num_items is None else _check_count(num_items, "num_items")
        _check_range(u, U, "user")
        _check_range(i, I, "item")
        w = _as_weights(weights, u.shape[0], "weights")
        row = np.concatenate([u, i + U])
        col = np.concatenate([i + U, u])
        ww = None if w is None else np.concatenate([w, w])
        return cls.from_coo(row, col, U + I, ww, num_users=U, num_items=I)

    # ------------------------------------------------------------------ conversions
    def to_edge_index(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(edge_index [2, E], edge_weight or None)`` in CSR (row-major) order."""
        return torch.stack([self.row, self.indices]), self.edge_weight

    def to_scipy(self, fmt: str = "csr") -> sp.spmatrix:
        """The adjacency as a scipy.sparse matrix (``fmt`` is any scipy format name)."""
        data = np.ones(self.num_edges, dtype=np.float32) if self.edge_weight is None else self.edge_weight.cpu().numpy()
        mat = sp.csr_matrix(
            (data, self.indices.cpu().numpy(), self.indptr.cpu().numpy()), shape=(self.num_nodes, self.num_nodes)
        )
        return mat.asformat(fmt)

    def user_item_matrix(self) -> sp.csr_matrix:
        """The [U, I] interaction matrix of a bipartite graph."""
        if not self.is_bipartite:
            raise GraphError("user_item_matrix() needs a bipartite graph (num_users/num_items)")
        full = self.to_scipy("csr")
        U = self.num_users
        return sp.csr_matrix(full[:U, U:])

    def to_pyg(self, *, hetero: Union[bool, Tuple[str, str, str]] = False, reverse: bool = False,
               **attrs: Any) -> Any:
        """The graph as a PyG ``Data`` (default) or, for a bipartite graph, a ``HeteroData``.

        ``Data``: ``edge_index`` in CSR (row-major) order, ``num_nodes``, ``edge_weight``
        when the graph is weighted, and ``attrs``.

        ``HeteroData`` (``hetero=True`` or an edge type): two node stores with ``num_nodes``
        set (users and items without edges are kept) and the user -> item edge type
        ``(user type, relation, item type)`` holding ``edge_index`` ``[2, E]`` (row 0: user
        ids ``0..U-1``, row 1: item ids ``0..I-1``, sorted by user) and, when weighted,
        ``edge_weight`` ``[E]``.  The graph must be the symmetric bipartite graph that
        :meth:`from_user_item` builds (every edge joins a user and an item, in both
        directions with the same weight); ``Graph.from_pyg`` of the result gives back an
        identical graph (same ``indptr``/``indices``/``edge_weight`` and sizes).

        Args:
            hetero: ``False`` (default) for a ``Data``; ``True`` for a ``HeteroData`` with edge
                type ``("user", "to", "item")``; or a ``(user type, relation, item type)``
                tuple naming the node and edge types.
            reverse: with ``hetero``, also store the item -> user edges as the edge type
                ``(item type, "rev_" + relation, user type)`` (what PyG's ``ToUndirected``
                adds; message passing in both directions needs it).
            **attrs: extra attributes of the ``Data`` (``x=...``, ``y=...``, masks); with
                ``hetero``, set attributes on the HeteroData's stores instead
                (``data["user"].x = ...``).

        Raises:
            GraphError: ``hetero`` for a graph that is not bipartite, or whose edges are not
                the symmetric user-item form.
            ConfigError: a malformed ``hetero`` edge type, ``reverse`` without ``hetero``, or
                ``attrs`` with ``hetero``.
        """
        from .exceptions import ConfigError

        if hetero is False or hetero is None:
            if reverse:
                raise ConfigError("reverse=True adds a reverse edge type to a HeteroData: pass hetero=True too")
            from torch_geometric.data import Data

            edge_index, weight = self.to_edge_index()
            if weight is not None:
                attrs.setdefault("edge_weight", weight)
            return Data(edge_index=edge_index, num_nodes=self.num_nodes, **attrs)
        et = _hetero_edge_type(hetero)
        if attrs:
            raise ConfigError(f"to_pyg(hetero=...) takes no extra attributes (got {sorted(attrs)}); set them on the "
                              "HeteroData's stores, e.g. data['user'].x = ...")
        users, items, weight, rev = self._user_item_edges()
        from torch_geometric.data import HeteroData

        src, rel, dst = et
        data = HeteroData()
        data[src].num_nodes = int(self.num_users)  # type: ignore[arg-type]
        data[dst].num_nodes = int(self.num_items)  # type: ignore[arg-type]
        data[et].edge_index = torch.stack([users, items])
        if weight is not None:
            data[et].edge_weight = weight
        if reverse:
            r_items, r_users, r_weight = rev
            data[dst, "rev_" + rel, src].edge_index = torch.stack([r_items, r_users])
            if r_weight is not None:
                data[dst, "rev_" + rel, src].edge_weight = r_weight
        return data

    def _user_item_edges(self) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], Tuple[Any, Any, Any]]:
        """``(users, items, weights, (rev_items, rev_users, rev_weights))`` of a symmetric bipartite
        graph: the user -> item edges in CSR order and the item -> user edges in CSR order (item
        and user ids 0-based within their side); GraphError when the graph is not of that form."""
        if not self.is_bipartite:
            raise GraphError("to_pyg(hetero=...) needs a bipartite graph (num_users/num_items, e.g. from "
                             "Graph.from_user_item); use to_pyg() for a Data")
        U = int(self.num_users)  # type: ignore[arg-type]
        row, col, w = self.row.cpu(), self.indices.cpu(), self.edge_weight
        w = None if w is None else w.cpu()
        fwd = (row < U) & (col >= U)
        bwd = (row >= U) & (col < U)
        inner = ~(fwd | bwd)
        if bool(inner.any()):
            k = int(torch.nonzero(inner)[0])
            raise GraphError(f"edge {int(row[k])} -> {int(col[k])} joins two {'users' if int(row[k]) < U else 'items'}; "
                             "a bipartite HeteroData holds user-item edges only")
        users, items = row[fwd], col[fwd] - U
        r_items, r_users = row[bwd] - U, col[bwd]
        fw = None if w is None else w[fwd]
        bw = None if w is None else w[bwd]
        # the item -> user edges must be the user -> item edges reversed, with the same weights
        a = np.lexsort((items.numpy(), users.numpy()))
        b = np.lexsort((r_items.numpy(), r_users.numpy()))
        same = users.shape == r_users.shape and bool(
            torch.equal(users[a], r_users[b]) and torch.equal(items[a], r_items[b])
            and (fw is None or torch.equal(fw[a], bw[b])))  # type: ignore[index]
        if not same:
            raise GraphError("to_pyg(hetero=...) needs the symmetric bipartite form (every user -> item edge also "
                             "as item -> user, same weight), as Graph.from_user_item builds; this graph has "
                             f"{int(fwd.sum())} user -> item and {int(bwd.sum())} item -> user edges that do not mirror")
        return users, items, fw, (r_items, r_users, bw)

    def to_networkx(self, directed: Optional[bool] = None) -> Any:
        """A networkx ``DiGraph`` (or ``Graph`` when symmetric and ``directed`` is not True).

        Nodes are ``0..N-1``; edge weights, when present, are the ``weight`` edge attribute.
        The nodes of a bipartite graph carry networkx's ``bipartite`` attribute (0 for users,
        1 for items), which ``Graph.from_networkx(G, bipartite=True)`` reads back.

        Args:
            directed: force a ``DiGraph`` (``True``) or an undirected ``Graph`` (``False``);
                ``None`` picks by :meth:`is_symmetric`.
        """
        import networkx as nx

        if directed is None:
            directed = not self.is_symmetric()
        G = nx.DiGraph() if directed else nx.Graph()
        if self.is_bipartite:
            U = int(self.num_users)  # type: ignore[arg-type]
            G.add_nodes_from(range(U), bipartite=0)
            G.add_nodes_from(range(U, self.num_nodes), bipartite=1)
        else:
            G.add_nodes_from(range(self.num_nodes))
        r = self.row.cpu().numpy()
        c = self.indices.cpu().numpy()
        if self.edge_weight is None:
            G.add_edges_from(zip(r.tolist(), c.tolist()))
        else:
            G.add_weighted_edges_from(zip(r.tolist(), c.tolist(), self.edge_weight.cpu().numpy().tolist()))
        return G

    def to_dgl(self) -> Any:
        """A ``dgl.DGLGraph`` (needs the optional ``dgl`` extra: ``pip install graphkit[dgl]``)."""
        try:
            import dgl  # noqa: F401
        except Exception as exc:  # ImportError, or dgl's own load errors
            raise ImportError(
                "Graph.to_dgl() needs DGL, which is an optional extra: pip install 'graphkit[dgl]' "
                f"(import failed: {exc})"
            ) from exc
        g = dgl.graph(("csr", (self.indptr, self.indices, torch.arange(self.num_edges))), num_nodes=self.num_nodes)
        if self.edge_weight is not None:
            g.edata["w"] = self.edge_weight
        return g

    # ------------------------------------------------------------------ structure
    def out_degree(self) -> torch.Tensor:
        """Number of stored out-edges of each node (int64 [N])."""
        return self.indptr[1:] - self.indptr[:-1]

    def in_degree(self) -> torch.Tensor:
        """Number of stored in-edges of each node (int64 [N])."""
        return torch.bincount(self.indices, minlength=self.num_nodes)

    def degree(self, weighted: bool = False) -> torch.Tensor:
        """Row degrees: edge counts, or weighted row sums (float) when ``weighted``."""
        if not weighted or self.edge_weight is None:
            d = self.out_degree()
            return d.to(torch.float32) if weighted else d
        return torch.zeros(self.num_nodes, device=self.device).index_add_(0, self.row, self.edge_weight)

    def coalesce(self) -> "Graph":
        """Sorted rows with duplicate edges merged (weights summed)."""
        ei, w = self.to_edge_index()
        g = Graph.from_coo(ei[0].cpu(), ei[1].cpu(), self.num_nodes, None if w is None else w.cpu(),
                           num_users=self.num_users, num_items=self.num_items)
        return g.to(self.device)

    def remove_self_loops(self) -> "Graph":
        """The graph without edges ``i -> i``."""
        keep = self.row != self.indices
        return self._filter_edges(keep)

    def add_self_loops(self, fill: float = 1.0) -> "Graph":
        """The graph with one self-loop per node of weight ``fill`` (existing loops are replaced)."""
        g = self.remove_self_loops()
        n = self.num_nodes
        ar = torch.arange(n, device=self.device)
        row = torch.cat([g.row, ar]).cpu()
        col = torch.cat([g.indices, ar]).cpu()
        if g.edge_weight is None and fill == 1.0:
            w = None
        else:
            base = g.edge_weight if g.edge_weight is not None else torch.ones(g.num_edges, device=self.device)
            w = torch.cat([base, torch.full((n,), float(fill), device=self.device)]).cpu()
        out = Graph.from_coo(row, col, n, w, num_users=self.num_users, num_items=self.num_items)
        return out.to(self.device)

    def to_undirected(self) -> "Graph":
        """Symmetrize: every edge also in reverse; duplicates are merged (each pair once,
        weight = the larger of the two directions' weights)."""
        r, c = self.row.cpu().numpy(), self.indices.cpu().numpy()
        row = np.concatenate([r, c])
        col = np.concatenate([c, r])
        if self.edge_weight is None:
            g = Graph.from_coo(row, col, self.num_nodes, None, num_users=self.num_users, num_items=self.num_items)
        else:
            w = self.edge_weight.cpu().numpy()
            mat = sp.csr_matrix((w, (r, c)), shape=(self.num_nodes,) * 2)
            mat.sum_duplicates()
            sym = mat.maximum(mat.T).tocsr()
            sym.sort_indices()
            g = Graph(sym.indptr, sym.indices, sym.data, num_nodes=self.num_nodes,
                      num_users=self.num_users, num_items=self.num_items)
        return g.to(self.device)

    def is_symmetric(self) -> bool:
        """Whether A equals its transpose (structure and weights)."""
        if "symmetric" not in self._cache:
            a = self.to_scipy("csr")
            a.sum_duplicates()
            self._cache["symmetric"] = (abs(a - a.T) > 1e-6).nnz == 0
        return self._cache["symmetric"]

    def _filter_edges(self, keep: torch.Tensor) -> "Graph":
        row = self.row[keep]
        counts = torch.bincount(row, minlength=self.num_nodes)
        indptr = torch.zeros(self.num_nodes + 1, dtype=torch.long, device=self.device)
        indptr[1:] = torch.cumsum(counts, 0)
        w = None if self.edge_weight is None else self.edge_weight[keep]
        return self._like(indptr, self.indices[keep], w)

    def neighbors(self, node: int) -> torch.Tensor:
        """Out-neighbours of one node."""
        if not 0 <= int(node) < self.num_nodes:
            raise GraphError(f"node {node} is out of range for {self.num_nodes} nodes")
        return self.indices[self.indptr[node]: self.indptr[node + 1]]

    def k_hop(self, nodes: ArrayLike, k: int) -> torch.Tensor:
        """All nodes reachable from ``nodes`` in at most ``k`` hops (sorted, seeds included)."""
        if k < 0:
            raise GraphError(f"k must be non-negative, got {k}")
        seeds = _as_index_array(nodes, "nodes")
        _check_range(seeds, self.num_nodes, "seed node")
        indptr = self.indptr.cpu().numpy()
        indices = self.indices.cpu().numpy()
        seen = np.zeros(self.num_nodes, dtype=bool)
        seen[seeds] = True
        frontier = np.unique(seeds)
        for _ in range(k):
            if frontier.size == 0:
                break
            pos, _ = csr_gather(indptr, indices, frontier)
            nbrs = np.unique(indices[pos])
            frontier = nbrs[~seen[nbrs]]
            seen[frontier] = True
        return torch.from_numpy(np.flatnonzero(seen)).to(self.device)

    def subgraph(self, nodes: ArrayLike) -> Tuple["Graph", torch.Tensor]:
        """The subgraph induced by ``nodes``, relabelled ``0..n-1`` in sorted id order.

        Returns ``(subgraph, node_ids)`` where ``node_ids[j]`` is the original id of new node ``j``.
        """
        sel = np.unique(_as_index_array(nodes, "nodes"))
        _check_range(sel, self.num_nodes, "node")
        mapping = np.full(self.num_nodes, -1, dtype=np.int64)
        mapping[sel] = np.arange(sel.shape[0])
        indptr = self.indptr.cpu().numpy()
        indices = self.indices.cpu().numpy()
        pos, seg = csr_gather(indptr, indices, sel)
        new_col = mapping[indices[pos]]
        keep = new_col >= 0
        w = None if self.edge_weight is None else self.edge_weight.cpu().numpy()[pos][keep]
        g = Graph.from_coo(seg[keep], new_col[keep], sel.shape[0], w, coalesce=False)
        return g.to(self.device), torch.from_numpy(sel).to(self.device)

    # ------------------------------------------------------------------ linear algebra
    def adjacency(self, norm: Optional[str] = None, self_loops: bool = False) -> torch.Tensor:
        """The (optionally normalized) adjacency as a cached ``torch.sparse_csr`` float32 tensor.

        Args:
            norm: ``None`` (raw weights), ``"sym"`` for D^-1/2 A D^-1/2 or ``"rw"`` for
                D^-1 A (row-stochastic).  D is the weighted out-degree; rows of zero
                degree stay zero.
            self_loops: add the identity to A before normalizing (GCN's Â = A + I).
        """
        if norm not in (None, "sym", "rw"):
            raise GraphError(f"norm must be None, 'sym' or 'rw', got {norm!r}")
        key = ("adj", norm, bool(self_loops), self.device)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        g = self.add_self_loops() if self_loops else self
        w = g.edge_weight if g.edge_weight is not None else torch.ones(g.num_edges, device=g.device)
        if norm is not None:
            deg = torch.zeros(g.num_nodes, device=g.device).index_add_(0, g.row, w)
            if norm == "sym":
                dinv = deg.pow(-0.5)
                dinv[torch.isinf(dinv)] = 0.0
                w = dinv[g.row] * w * dinv[g.indices]
            else:
                dinv = deg.reciprocal()
                dinv[torch.isinf(dinv)] = 0.0
                w = dinv[g.row] * w
        adj = _csr_tensor(g.indptr, g.indices, w.to(torch.float32), (g.num_nodes, g.num_nodes))
        self._cache[key] = adj
        return adj

    def adjacency_t(self, norm: Optional[str] = None, self_loops: bool = False) -> torch.Tensor:
        """The CSR transpose of :meth:`adjacency` (the same tensor when the result is symmetric).

        Args:
            norm: as in :meth:`adjacency`.
            self_loops: as in :meth:`adjacency`.
        """
        key = ("adj_t", norm, bool(self_loops), self.device)
        if key not in self._cache:
            adj = self.adjacency(norm, self_loops)
            if self.is_symmetric() and norm in (None, "sym"):
                self._cache[key] = adj
            else:
                self._cache[key] = adj.to_sparse_coo().t().coalesce().to_sparse_csr()
        return self._cache[key]

    def spmm(self, x: torch.Tensor, norm: Optional[str] = "sym", self_loops: bool = False) -> torch.Tensor:
        """``A_norm @ x`` with autograd; symmetric matrices reuse their CSR in backward.

        Args:
            x: dense ``[N, d]`` tensor on the graph's device.
            norm: ``None``, ``"sym"`` or ``"rw"``, as in :meth:`adjacency`.
            self_loops: add the identity before normalizing (GCN's ``Â``).
        """
        adj = self.adjacency(norm, self_loops)
        adj_t = self.adjacency_t(norm, self_loops)
        return spmm(adj, x, symmetric=adj_t is adj, adj_t=adj_t)
