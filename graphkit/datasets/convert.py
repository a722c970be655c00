"""Turn your own data into a split, fingerprinted dataset: :func:`as_dataset`.

>>> from graphkit.datasets import as_dataset
>>> rec = as_dataset(df)                  # pandas DataFrame (user, item[, time]) -> RecDataset
>>> rec = as_dataset(csr)                 # scipy.sparse / numpy user x item matrix -> RecDataset
>>> rec = as_dataset(hetero)              # bipartite PyG HeteroData -> RecDataset
>>> node = as_dataset(data)               # PyG Data with x, edge_index, y -> NodeDataset

Every route draws the same standardized splits as the built-in datasets and records
them (``meta``, ``fingerprint``, ``split_record()``):

* recommendation data goes through :func:`~graphkit.datasets.interactions.from_interactions`
  (per-user random split, ``seed=2020``, ``val_ratio=0.1``, ``test_ratio=0.2``); a
  matrix or a HeteroData gives the same split as a DataFrame holding the same integer
  (user, item) pairs, and keeps its full index space (rows/columns without any
  interaction stay users/items); a HeteroData written by ``RecDataset.to_pyg()`` (with
  ``val_edge_index``/``test_edge_index``) keeps the split it carries instead;
* node data uses the ``train_mask``/``val_mask``/``test_mask`` it carries, else the
  random Planetoid split (:func:`~graphkit.datasets.planetoid.random_planetoid_split`).

``torch_geometric`` and ``pandas`` are imported only when such an object is passed.
"""
from __future__ import annotations

import inspect
import sys
import warnings
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from ..exceptions import ConfigError, DataFormatError
from .interactions import from_interactions
from .node import NodeDataset, as_index_tensor, node_split_fingerprint
from .planetoid import random_planetoid_split
from .recommendation import _PYG_SPLIT_KEYS as _SPLIT_KEYS
from .recommendation import RecDataset, binary_csr, split_fingerprint

__all__ = [
    "as_dataset",
    "rec_dataset_from_frame",
    "rec_dataset_from_matrix",
    "rec_dataset_from_hetero",
    "node_dataset_from_pyg",
]

_TIME_SPLITS = ("temporal", "leave-last-out")
_MASKS = ("train_mask", "val_mask", "test_mask")


# ----------------------------------------------------------------------------- helpers
def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _numpy(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu()
        if a.layout != torch.strided:
            a = a.to_dense()
        return a.numpy()
    return np.asarray(a)


def _pyg_class(obj: Any) -> Optional[str]:
    """``"Data"``, ``"HeteroData"`` or ``"Dataset"`` for torch_geometric objects (subclasses
    included), else ``None``; never imports torch_geometric."""
    for klass in type(obj).__mro__:
        if klass.__module__.startswith("torch_geometric") and klass.__name__ in ("HeteroData", "Data", "Dataset"):
            return klass.__name__
    return None


def _rec_from_pairs(
    users: np.ndarray,
    items: np.ndarray,
    num_users: int,
    num_items: int,
    *,
    what: str,
    fmt: str,
    split: str,
    val_ratio: float,
    test_ratio: float,
    seed: int,
    group_by_user: bool,
    name: str,
    extra_meta: Dict[str, Any],
) -> RecDataset:
    """Split integer (user, item) pairs with :func:`from_interactions`, keeping the index
    space ``[num_users, num_items]`` (ids without interactions stay)."""
    import pandas as pd

    if split in _TIME_SPLITS:
        raise ConfigError(
            f"split={split!r} orders interactions by time, and a {what} has no timestamps: use split='random', "
            "or pass a DataFrame with a time column to rec_dataset_from_frame(df, time_col=...)"
        )
    if users.size == 0:
        raise DataFormatError(f"the {what} holds no interactions", expected="at least one interaction", got=0)
    frame = pd.DataFrame({"user": users.astype(np.int64), "item": items.astype(np.int64)})
    # from_interactions factorizes integer ids in sorted order, so indices are monotone in
    # the raw ids: its canonical order, random keys and split are those of the raw pairs.
    ds = from_interactions(frame, "user", "item", None, split, val_ratio, test_ratio, seed,
                           name=name, group_by_user=group_by_user)
    assert ds.user_ids is not None and ds.item_ids is not None
    user_ids = ds.user_ids.astype(np.int64)
    item_ids = ds.item_ids.astype(np.int64)

    def remap(mat: sp.csr_matrix) -> sp.csr_matrix:
        rows = np.repeat(np.arange(mat.shape[0], dtype=np.int64), np.diff(mat.indptr))
        return binary_csr(user_ids[rows], item_ids[mat.indices], num_users, num_items)

    train, valid, test, full_train = (remap(m) for m in (ds.train, ds.valid, ds.test, ds.full_train))
    meta = {k: v for k, v in ds.meta.items() if k not in ("columns", "rows")}
    meta.update(
        format=fmt,
        interactions=int(users.size),
        users_without_train=int((np.diff(train.indptr) == 0).sum()),
        users_without_interactions=int(num_users - user_ids.size),
        items_without_interactions=int(num_items - item_ids.size),
    )
    meta.update(extra_meta)
    return RecDataset(
        name=name, num_users=int(num_users), num_items=int(num_items), train=train, valid=valid, test=test,
        full_train=full_train, fingerprint=split_fingerprint(train, valid, test), meta=meta,
    )


# ----------------------------------------------------------------------------- recommendation
def rec_dataset_from_frame(
    df: Any,
    user_col: str = "user",
    item_col: str = "item",
    time_col: Optional[str] = None,
    split: str = "random",
    val_ratio: float = 0.1,
    test_ratio: float = 0.2,
    seed: int = 2020,
    *,
    name: str = "interactions",
    group_by_user: bool = True,
) -> RecDataset:
    """A :class:`RecDataset` from an interaction table: exactly
    :func:`~graphkit.datasets.interactions.from_interactions` (raw ids of any hashable type,
    ``user_ids``/``item_ids`` maps, random / temporal / leave-last-out splits).

    Args:
        df: a ``pandas.DataFrame`` with one row per interaction.
        user_col: column of the raw user ids.
        item_col: column of the raw item ids.
        time_col: optional timestamp column (needed by the time-based splits).
        split: ``"random"``, ``"temporal"`` or ``"leave-last-out"``.
        val_ratio: validation fraction per user.
        test_ratio: test fraction per user.
        seed: seed of the random split.
        name: dataset name to record.
        group_by_user: split per user (default) or the whole table as one group.

    Raises:
        DataFormatError: not a DataFrame, empty, missing columns, NaN ids.
        ConfigError: bad split options.
    """
    return from_interactions(df, user_col, item_col, time_col, split, val_ratio, test_ratio, seed,
                             name=name, group_by_user=group_by_user)


def _matrix_pairs(mat: Any) -> Tuple[np.ndarray, np.ndarray, Tuple[int, int]]:
    """(users, items, shape) of the nonzero entries of a sparse or dense 2-D matrix, row-major."""
    if sp.issparse(mat):
        if len(mat.shape) != 2:
            raise DataFormatError("the interaction matrix must be 2-D (users x items)", field="matrix",
                                  expected="shape (num_users, num_items)", got=tuple(mat.shape))
        csr = sp.csr_matrix(mat, copy=True)
        csr.sum_duplicates()
        values = np.asarray(csr.data)
    else:
        arr = _numpy(mat)
        if arr.ndim != 2:
            raise DataFormatError("the interaction matrix must be 2-D (users x items)", field="matrix",
                                  expected="shape (num_users, num_items)", got=tuple(arr.shape))
        if arr.dtype.kind not in "biuf":
            raise DataFormatError("the interaction matrix must hold numbers or booleans", field="matrix",
                                  expected="a bool, integer or float dtype", got=str(arr.dtype))
        values = arr
        csr = None
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise DataFormatError(
            "the interaction matrix holds NaN: only zero means 'no interaction', so NaN is ambiguous "
            "(replace it, e.g. np.nan_to_num(mat) if NaN marks a missing entry)",
            field="matrix", expected="finite values or inf (nonzero = interaction)", got="NaN",
        )
    if csr is not None:
        csr.eliminate_zeros()
        csr.sort_indices()
        users = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
        return users, csr.indices.astype(np.int64), (int(csr.shape[0]), int(csr.shape[1]))
    u, i = np.nonzero(values)
    return u.astype(np.int64), i.astype(np.int64), (int(values.shape[0]), int(values.shape[1]))


def rec_dataset_from_matrix(
    mat: Any,
    split: str = "random",
    val_ratio: float = 0.1,
    test_ratio: float = 0.2,
    seed: int = 2020,
    *,
    name: str = "matrix",
    group_by_user: bool = True,
) -> RecDataset:
    """A :class:`RecDataset` from a user x item matrix: rows are users, columns items, every
    nonzero entry an interaction (values are ignored; explicit zeros are not interactions).

    The split is the one :func:`~graphkit.datasets.interactions.from_interactions` draws for
    a DataFrame holding the same integer (row, column) pairs, with the same options; the
    index space is the matrix shape (``num_users = mat.shape[0]``, ``num_items =
    mat.shape[1]``, even for empty rows/columns) and ``user_ids``/``item_ids`` are ``None``.

    Args:
        mat: a ``scipy.sparse`` matrix or array (any format) or a 2-D numpy array / tensor.
        split: ``"random"`` (the only one possible: a matrix has no timestamps).
        val_ratio: validation fraction per user, in ``[0, 1)``.
        test_ratio: test fraction per user, in ``[0, 1)``.
        seed: seed of the random split.
        name: dataset name to record.
        group_by_user: split per user (default) or all interactions as one group.

    Raises:
        DataFormatError: not 2-D, a non-numeric dtype, NaN values, or no nonzero entry.
        ConfigError: ``split="temporal"``/``"leave-last-out"`` or other bad split options.
    """
    users, items, (n_users, n_items) = _matrix_pairs(mat)
    return _rec_from_pairs(
        users, items, n_users, n_items, what="matrix", fmt="matrix", split=split, val_ratio=val_ratio,
        test_ratio=test_ratio, seed=seed, group_by_user=group_by_user, name=name,
        extra_meta={"shape": [n_users, n_items]},
    )


def _pick_edge_type(data: Any, edge_type: Any) -> Tuple[str, str, str]:
    node_types = list(data.node_types)
    edge_types = [tuple(et) for et in data.edge_types]
    if len(node_types) != 2:
        raise DataFormatError("a bipartite HeteroData needs exactly two node types (users and items)",
                              field="node_types", expected="2 node types", got=node_types)
    if edge_type is not None:
        if isinstance(edge_type, str):
            matches = [et for et in edge_types if et[1] == edge_type]
            if len(matches) != 1:
                raise ConfigError(f"edge_type={edge_type!r} matches {len(matches)} edge types; "
                                  f"pass a (source, relation, target) tuple from {edge_types}")
            et = matches[0]
        else:
            et = tuple(edge_type)
            if et not in edge_types:
                raise ConfigError(f"edge_type={edge_type!r} is not in the data; its edge types: {edge_types}")
        if et[0] == et[2]:
            raise DataFormatError("the edge type must join the two node types (user -> item)", field="edge_type",
                                  expected="(user type, relation, item type)", got=et)
        return et  # type: ignore[return-value]
    inner = [et for et in edge_types if et[0] == et[2]]
    if inner:
        raise DataFormatError("not bipartite: edges within one node type", field="edge_types",
                              expected="edges between the two node types only", got=inner)
    if not edge_types:
        raise DataFormatError("the HeteroData has no edge type", field="edge_types",
                              expected="one (user, relation, item) edge type", got=[])
    if len(edge_types) == 1:
        return edge_types[0]  # type: ignore[return-value]
    if len(edge_types) == 2 and edge_types[0][0] == edge_types[1][2] and edge_types[0][2] == edge_types[1][0]:
        forward = [et for et in edge_types if not et[1].startswith("rev_")]
        if len(forward) == 1:  # PyG's ToUndirected names the reverse "rev_<relation>"
            return forward[0]  # type: ignore[return-value]
    raise ConfigError(f"several candidate edge types {edge_types}: pass edge_type=(user type, relation, item type)")


def _hetero_index(store: Any, key: str, et: Tuple[str, str, str], sizes: Tuple[int, int],
                  types: Tuple[str, str]) -> np.ndarray:
    """The validated int64 ``[2, E]`` array ``store[key]`` of edge type ``et``: row 0 holds ids
    of node type ``types[0]`` (``< sizes[0]``), row 1 of ``types[1]`` (``< sizes[1]``)."""
    field = f"{et}.{key}"
    value = store[key] if key in store else None
    if value is None:
        raise DataFormatError(f"the edge type has no {key}", field=field,
                              expected=f"an integer [2, E] {key}", got=None)
    ei = _numpy(value)
    if ei.ndim != 2 or ei.shape[0] != 2 or ei.dtype.kind not in "iu":
        raise DataFormatError(f"bad {key}", field=field, expected="an integer array of shape [2, E]",
                              got=f"{ei.dtype} {tuple(ei.shape)}")
    for row in (0, 1):
        if ei.shape[1] and (ei[row].min() < 0 or ei[row].max() >= sizes[row]):
            bad = int(ei[row].min()) if ei[row].min() < 0 else int(ei[row].max())
            raise DataFormatError(f"{key} row {row} ({types[row]} ids) out of range", field=field,
                                  expected=f"ids in [0, {sizes[row]})", got=bad)
    return ei.astype(np.int64)


def _bipartite_hetero(data: Any, edge_type: Any, what: str) -> Tuple[Tuple[str, str, str], np.ndarray, int, int]:
    """``(edge type, edge_index [2, E] int64, num_users, num_items)`` of the user -> item edge
    type of a bipartite HeteroData, validated (the one reader behind
    :func:`rec_dataset_from_hetero` and ``Graph.from_pyg``)."""
    if _pyg_class(data) != "HeteroData":
        raise DataFormatError(f"{what} expects a torch_geometric HeteroData",
                              expected="torch_geometric.data.HeteroData", got=type(data).__name__)
    et = _pick_edge_type(data, edge_type)
    src, _, dst = et
    counts = []
    for nt in (src, dst):
        n = data[nt].num_nodes
        if n is None:
            raise DataFormatError(f"node type {nt!r} has no num_nodes (and no x to infer it from)",
                                  field=f"{nt}.num_nodes", expected="an int", got=None)
        counts.append(int(n))
    ei = _hetero_index(data[et], "edge_index", et, (counts[0], counts[1]), (src, dst))
    return et, ei, counts[0], counts[1]


def _hetero_weight(store: Any, et: Tuple[str, str, str], num_edges: int) -> Optional[np.ndarray]:
    """The 1-D ``edge_weight`` (else a 1-D ``edge_attr``) of an edge store, or ``None``."""
    for key in ("edge_weight", "edge_attr"):
        value = store[key] if key in store else None
        if value is None:
            continue
        w = _numpy(value)
        if w.ndim != 1:
            if key == "edge_attr":
                continue  # multi-dimensional edge features are not weights
            raise DataFormatError("edge_weight must hold one weight per edge", field=f"{et}.{key}",
                                  expected=f"shape [{num_edges}]", got=tuple(w.shape))
        if w.shape[0] != num_edges:
            raise DataFormatError(f"{key} must hold one weight per edge", field=f"{et}.{key}",
                                  expected=f"shape [{num_edges}]", got=tuple(w.shape))
        return w
    return None


def _merged_pairs(a: np.ndarray, b: np.ndarray, w: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray, Any]:
    """Sorted unique (a, b) pairs, with the weights of duplicates summed."""
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    new = np.ones(a.shape[0], dtype=bool)
    new[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    ws = None
    if w is not None:
        ws = np.add.reduceat(w[order].astype(np.float64), np.flatnonzero(new)) if a.size else w[:0]
    return a[new], b[new], ws


def _graph_from_hetero(data: Any, edge_type: Any = None) -> Any:
    """``Graph.from_pyg`` of a bipartite HeteroData (see there)."""
    from ..graph import Graph

    et, ei, n_users, n_items = _bipartite_hetero(data, edge_type, "Graph.from_pyg")
    src, _, dst = et
    w = _hetero_weight(data[et], et, ei.shape[1])
    for other in (tuple(t) for t in data.edge_types):
        if other == et:
            continue
        if other[0] != dst or other[2] != src:
            raise ConfigError(f"the HeteroData has the edge type {other} besides {et}; a Graph holds one user-item "
                              "relation (and optionally its reverse): drop the others or convert them separately")
        rev = _hetero_index(data[other], "edge_index", other, (n_items, n_users), (dst, src))
        rw = _hetero_weight(data[other], other, rev.shape[1])
        if (w is None) != (rw is None):
            raise DataFormatError(f"the reverse edge type {other} is not the reverse of {et}: only one of them has "
                                  "edge weights", field=f"{other}.edge_weight",
                                  expected="weights on both or on neither", got="weights on one")
        fu, fi, fw = _merged_pairs(ei[0], ei[1], w)
        ru, ri, rws = _merged_pairs(rev[1], rev[0], rw)
        if not (np.array_equal(fu, ru) and np.array_equal(fi, ri)):
            diff = np.setxor1d(fu * max(n_items, 1) + fi, ru * max(n_items, 1) + ri).size
            raise DataFormatError(f"the reverse edge type {other} is not the reverse of {et}", field=f"{other}.edge_index",
                                  expected=f"the {fu.size} reversed {et} pairs", got=f"{diff} pair(s) in only one of them")
        if fw is not None and not np.allclose(fw, rws, rtol=1e-6, atol=0.0):
            k = int(np.flatnonzero(~np.isclose(fw, rws, rtol=1e-6, atol=0.0))[0])
            raise DataFormatError(f"the reverse edge type {other} has other weights than {et}",
                                  field=f"{other}.edge_weight", expected=f"{fw[k]} for pair ({fu[k]}, {fi[k]})",
                                  got=float(rws[k]))
    return Graph.from_user_item(ei[0], ei[1], n_users, n_items, w)


def _given_split(data: Any, et: Tuple[str, str, str], ei: np.ndarray, n_users: int, n_items: int, *,
                 name: str, ignored: list) -> RecDataset:
    """The RecDataset whose train/valid/test are a HeteroData's ``edge_index`` /
    ``val_edge_index`` / ``test_edge_index`` (what :meth:`RecDataset.to_pyg` writes)."""
    src, _, dst = et
    store = data[et]
    val = _hetero_index(store, _SPLIT_KEYS[0], et, (n_users, n_items), (src, dst))
    test = _hetero_index(store, _SPLIT_KEYS[1], et, (n_users, n_items), (src, dst))
    train_m = binary_csr(ei[0], ei[1], n_users, n_items)
    valid_m = binary_csr(val[0], val[1], n_users, n_items)
    test_m = binary_csr(test[0], test[1], n_users, n_items)
    full = binary_csr(np.concatenate([ei[0], val[0]]), np.concatenate([ei[1], val[1]]), n_users, n_items)
    meta: Dict[str, Any] = {
        "format": "hetero",
        "split": "given",
        "split_definition": f"the HeteroData's {et} edge_index (train), {_SPLIT_KEYS[0]} and {_SPLIT_KEYS[1]}",
        "val_ratio": None,
        "test_ratio": None,
        "split_seed": None,
        "interactions": int(ei.shape[1] + val.shape[1] + test.shape[1]),
        "duplicate_pairs_dropped": int(ei.shape[1] + val.shape[1] + test.shape[1]
                                       - train_m.nnz - valid_m.nnz - test_m.nnz),
        "users_without_train": int((np.diff(train_m.indptr) == 0).sum()),
        "edge_type": list(et), "user_type": src, "item_type": dst, "ignored_edge_attributes": ignored,
    }
    return RecDataset(name=name, num_users=n_users, num_items=n_items, train=train_m, valid=valid_m, test=test_m,
                      full_train=full, fingerprint=split_fingerprint(train_m, valid_m, test_m), meta=meta)


def rec_dataset_from_hetero(
    data: Any,
    edge_type: Any = None,
    split: Optional[str] = None,
    val_ratio: float = 0.1,
    test_ratio: float = 0.2,
    seed: int = 2020,
    *,
    name: str = "hetero",
    group_by_user: bool = True,
) -> RecDataset:
    """A :class:`RecDataset` from a bipartite PyG ``HeteroData`` (users -> items).

    The data must have exactly two node types and one edge type between them, or a pair
    of reverse edge types (one of them named ``rev_*``, as ``ToUndirected`` makes; otherwise
    pass ``edge_type``).  The source node type of that edge type are the users, the target
    the items; ``num_users``/``num_items`` are the two node stores' ``num_nodes``.

    Split: when the edge type carries ``val_edge_index`` and ``test_edge_index`` (what
    :meth:`RecDataset.to_pyg` writes), its ``edge_index`` is the training split and those
    two the validation and test splits (``split="given"``; the fingerprint is the one of
    the dataset that wrote them).  Otherwise its ``edge_index`` pairs are all the
    interactions and the standardized split of :func:`rec_dataset_from_matrix` is drawn
    (``split="random"``).  Duplicates collapse; the reverse edge type, edge attributes,
    per-edge split masks and ``edge_label``/``edge_label_index`` are ignored (``meta``
    lists the ignored attributes).

    Args:
        data: a ``torch_geometric.data.HeteroData``.
        edge_type: the ``(user type, relation, item type)`` tuple (or a unique relation
            name) to read, when the data has several candidates.
        split: ``None`` (``"given"`` when the split attributes are there, else
            ``"random"``), ``"given"`` or ``"random"`` (a HeteroData has no timestamps).
        val_ratio: validation fraction per user (random split).
        test_ratio: test fraction per user (random split).
        seed: seed of the random split.
        name: dataset name to record.
        group_by_user: split per user (default) or all interactions as one group (random split).

    Raises:
        DataFormatError: not two node types, edges within a node type, a missing
            ``edge_index`` or ``num_nodes``, ids out of range, only one of
            ``val_edge_index``/``test_edge_index``.
        ConfigError: several candidate edge types and no ``edge_type``, or bad split options.
    """
    et, ei, n_users, n_items = _bipartite_hetero(data, edge_type, "rec_dataset_from_hetero")
    src, _, dst = et
    store = data[et]
    carried = [k for k in _SPLIT_KEYS if k in store]
    if split is None:
        if len(carried) == 1:
            missing = [k for k in _SPLIT_KEYS if k not in carried][0]
            raise DataFormatError(f"the edge type carries {carried[0]} but no {missing}: a given split needs both "
                                  "(or pass split='random' to draw one)", field=f"{et}.{missing}",
                                  expected="an integer [2, E] tensor", got=None)
        split = "given" if carried else "random"
    if split == "given":
        ignored = sorted(k for k in store.keys() if k not in ("edge_index", *_SPLIT_KEYS))
        return _given_split(data, et, ei, n_users, n_items, name=name, ignored=ignored)
    ignored = sorted(k for k in store.keys() if k != "edge_index")
    return _rec_from_pairs(
        ei[0], ei[1], n_users, n_items, what="HeteroData", fmt="hetero",
        split=split, val_ratio=val_ratio, test_ratio=test_ratio, seed=seed, group_by_user=group_by_user,
        name=name, extra_meta={"edge_type": list(et), "user_type": src, "item_type": dst,
                               "ignored_edge_attributes": ignored},
    )


# ----------------------------------------------------------------------------- node classification
def _get(data: Any, key: str) -> Any:
    return data[key] if key in data else None


def _mask_indices(data: Any, key: str, n: int, seed: int) -> Tuple[np.ndarray, Optional[int]]:
    m = _numpy(data[key])
    column: Optional[int] = None
    if m.ndim == 2 and m.shape[0] == n and m.shape[1] >= 1:
        column = seed % m.shape[1]
        m = m[:, column]
    if m.ndim != 1 or m.shape[0] != n or m.dtype != np.bool_:
        raise DataFormatError("bad split mask", field=key,
                              expected=f"a bool mask of shape [{n}] (or [{n}, k] for k splits)",
                              got=f"{m.dtype} {tuple(m.shape)}")
    return np.flatnonzero(m).astype(np.int64), column


def node_dataset_from_pyg(
    data: Any,
    *,
    split: Optional[str] = None,
    seed: int = 0,
    num_train_per_class: int = 20,
    num_val: int = 500,
    num_test: int = 1000,
    to_undirected: bool = True,
    name: str = "pyg",
) -> NodeDataset:
    """A :class:`NodeDataset` from a PyG ``Data`` with ``x``, ``edge_index`` and ``y``.

    Split: with ``split=None`` the data's ``train_mask``/``val_mask``/``test_mask`` are used
    when all three are present (``split="masks"``; 2-D masks ``[N, k]`` hold k splits:
    column ``seed % k`` is used and recorded in ``meta["mask_columns"]``), otherwise the
    random Planetoid split :func:`~graphkit.datasets.planetoid.random_planetoid_split`
    (``num_train_per_class`` per class, then ``num_val``/``num_test`` from the remaining
    labelled nodes; ``split="random"``, ``split_seed=seed``).  ``split="masks"`` or
    ``"random"`` forces one.  Nodes with a negative label are unlabelled (``y = -1``):
    never drawn, and dropped from the masks (with a warning).

    Graph: like the Planetoid loader, the edges are made undirected (unless
    ``to_undirected=False``), self-loops are dropped and duplicates merged; edge weights
    and attributes are not used.  ``num_classes = max(y) + 1`` over labelled nodes.

    Args:
        data: a ``torch_geometric.data.Data``.
        split: ``None`` (masks if present, else random), ``"masks"`` or ``"random"``.
        seed: seed of the random split; picks the column of 2-D masks.
        num_train_per_class: training nodes per class (random split).
        num_val: validation nodes (random split).
        num_test: test nodes (random split).
        to_undirected: add the reverse of every edge (default, as for Planetoid).
        name: dataset name to record.

    Raises:
        DataFormatError: missing ``x``/``y``/``edge_index``, ``y`` not 1-D integer labels,
            ``edge_index`` not ``[2, E]`` or out of range, masks of the wrong shape or
            dtype, overlapping masks (each error names the field).
        ConfigError: bad ``split``/``seed``, or classes too small for the random split.
    """
    from ..graph import Graph

    if _pyg_class(data) != "Data":
        raise DataFormatError("node_dataset_from_pyg expects a torch_geometric Data",
                              expected="torch_geometric.data.Data", got=type(data).__name__)
    if split not in (None, "masks", "random"):
        raise ConfigError(f"split must be None, 'masks' or 'random', got {split!r}")
    seed = _check_seed(seed)
    for key in ("x", "edge_index", "y"):
        if _get(data, key) is None:
            raise DataFormatError(f"the Data has no {key}", field=key,
                                  expected={"x": "node features [N, F]", "edge_index": "an integer [2, E] tensor",
                                            "y": "integer labels [N]"}[key], got=None)
    x = _numpy(data["x"])
    if x.ndim != 2 or x.dtype.kind not in "biuf":
        raise DataFormatError("bad node features", field="x", expected="a numeric [N, F] tensor",
                              got=f"{x.dtype} {tuple(x.shape)}")
    n = int(x.shape[0])
    y = _numpy(data["y"])
    if y.ndim != 1 or y.shape[0] != n:
        raise DataFormatError("y must hold one class label per node (squeeze an [N, 1] tensor)", field="y",
                              expected=f"shape [{n}]", got=tuple(y.shape))
    if y.dtype.kind not in "iu":
        raise DataFormatError("y must hold integer class labels", field="y", expected="an integer dtype",
                              got=str(y.dtype))
    y = np.where(y < 0, -1, y).astype(np.int64)
    labelled = y >= 0
    if not labelled.any():
        raise DataFormatError("no labelled node", field="y", expected="labels >= 0", got="all negative")
    num_classes = int(y.max()) + 1
    ei = _numpy(data["edge_index"])
    if ei.ndim != 2 or ei.shape[0] != 2 or ei.dtype.kind not in "iu":
        raise DataFormatError("bad edge_index", field="edge_index", expected="an integer array of shape [2, E]",
                              got=f"{ei.dtype} {tuple(ei.shape)}")
    ei = ei.astype(np.int64)
    if ei.size and (ei.min() < 0 or ei.max() >= n):
        bad = int(ei.min()) if ei.min() < 0 else int(ei.max())
        raise DataFormatError("node id out of range (N = number of rows of x)", field="edge_index",
                              expected=f"ids in [0, {n})", got=bad)

    present = [k for k in _MASKS if _get(data, k) is not None]
    use_masks = split == "masks" or (split is None and len(present) == 3)
    if split == "masks" and len(present) < 3:
        missing = [k for k in _MASKS if k not in present]
        raise DataFormatError("split='masks' needs all three masks", field=missing[0],
                              expected="train_mask, val_mask and test_mask", got=present)
    meta: Dict[str, Any] = {"format": "pyg"}
    if use_masks:
        idx: Dict[str, np.ndarray] = {}
        columns: Dict[str, Optional[int]] = {}
        dropped = 0
        for key in _MASKS:
            raw_idx, columns[key] = _mask_indices(data, key, n, seed)
            keep = labelled[raw_idx]
            dropped += int((~keep).sum())
            idx[key] = raw_idx[keep]
        for a, b in (("train_mask", "val_mask"), ("train_mask", "test_mask"), ("val_mask", "test_mask")):
            both = np.intersect1d(idx[a], idx[b])
            if both.size:
                raise DataFormatError(f"{a} and {b} overlap", field=b, expected=f"nodes disjoint from {a}",
                                      got=f"{both.size} shared nodes, first {int(both[0])}")
        if dropped:
            warnings.warn(f"{dropped} masked node(s) have no label (y < 0) and were left out of the split",
                          stacklevel=2)
        train_idx, val_idx, test_idx = idx["train_mask"], idx["val_mask"], idx["test_mask"]
        split_name, split_seed = "masks", None
        meta.update(split_definition="the data's train_mask/val_mask/test_mask", mask_columns=columns,
                    unlabelled_in_masks=dropped)
    else:
        train_idx, val_idx, test_idx = random_planetoid_split(
            y, num_classes, seed, num_train_per_class=num_train_per_class, num_val=num_val, num_test=num_test)
        split_name, split_seed = "random", seed
        meta.update(split_definition=f"random: {num_train_per_class} per class / {num_val} val / {num_test} test "
                                     "from labelled nodes", ignored_masks=present)

    src, dst = ei[0], ei[1]
    loops = src == dst
    s, d = src[~loops], dst[~loops]
    if to_undirected:
        s, d = np.concatenate([s, d]), np.concatenate([d, s])
    code = np.unique(s * n + d)
    edge_index = np.stack([code // n, code % n]) if n else np.zeros((2, 0), dtype=np.int64)
    graph = Graph.from_edge_index(edge_index, num_nodes=n)
    meta["edges"] = {"input": int(ei.shape[1]), "self_loops_dropped": int(loops.sum()),
                     "to_undirected": bool(to_undirected), "stored": int(edge_index.shape[1])}
    return NodeDataset(
        name=name, graph=graph, x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), y=torch.from_numpy(y),
        train_idx=as_index_tensor(train_idx), val_idx=as_index_tensor(val_idx), test_idx=as_index_tensor(test_idx),
        num_classes=num_classes, split=split_name, split_seed=split_seed,
        fingerprint=node_split_fingerprint(train_idx, val_idx, test_idx, y), meta=meta,
    )


# ----------------------------------------------------------------------------- dispatch
_TASKS = {"recommendation": "recommendation", "rec": "recommendation",
          "node": "node", "node-classification": "node"}

ACCEPTED = (
    "a pandas DataFrame (recommendation), a scipy.sparse matrix or 2-D numpy array "
    "(user x item, recommendation), a torch_geometric HeteroData (bipartite, recommendation), "
    "a torch_geometric Data or single-graph Dataset (node classification), or an already "
    "loaded RecDataset / NodeDataset / GraphPropDataset"
)


def _call(fn: Callable[..., Any], obj: Any, options: Dict[str, Any]) -> Any:
    params = [p for p in inspect.signature(fn).parameters if p not in ("df", "mat", "data")]
    unknown = [k for k in options if k not in params]
    if unknown:
        raise ConfigError(f"unexpected option(s) {', '.join(map(repr, unknown))} for {fn.__name__}; "
                          f"accepted: {', '.join(params)}")
    return fn(obj, **options)


def _is_loaded_dataset(obj: Any) -> bool:
    from .ogb_loader import GraphPropDataset

    return isinstance(obj, (RecDataset, NodeDataset, GraphPropDataset))


def as_dataset(obj: Any, task: Optional[str] = None, *, name: Optional[str] = None, **split_options: Any) -> Any:
    """Turn any supported object into a split, fingerprinted graphkit dataset.

    * ``pandas.DataFrame`` -> :func:`rec_dataset_from_frame` (a :class:`RecDataset`);
    * ``scipy.sparse`` matrix or 2-D ``numpy`` array (users x items) ->
      :func:`rec_dataset_from_matrix` (a :class:`RecDataset`);
    * bipartite ``torch_geometric.data.HeteroData`` -> :func:`rec_dataset_from_hetero`
      (a :class:`RecDataset`);
    * ``torch_geometric.data.Data`` -> :func:`node_dataset_from_pyg` (a :class:`NodeDataset`);
    * a PyG dataset holding one graph (e.g. ``Planetoid(root, "Cora")``) -> its graph, as above;
    * a ``RecDataset`` / ``NodeDataset`` / ``GraphPropDataset`` -> returned unchanged.

    Args:
        obj: the data.
        task: optional check: ``"recommendation"`` (``"rec"``) or ``"node"``
            (``"node-classification"``); a mismatch raises ConfigError.
        name: dataset name to record (default: per function, or a PyG dataset's ``name``).
        **split_options: options of the function above (``split``, ``seed``,
            ``val_ratio``, ``test_ratio``, ``user_col``, ``edge_type``, ...).

    Raises:
        ConfigError: an unsupported object (the message lists what is accepted), an
            option the chosen function does not take, or a ``task`` mismatch.
        DataFormatError: malformed data (the field is named).
    """
    want = None
    if task is not None:
        if task not in _TASKS:
            raise ConfigError(f"task must be one of {', '.join(_TASKS)} or None, got {task!r}")
        want = _TASKS[task]

    def check(got: str) -> None:
        if want is not None and want != got:
            raise ConfigError(f"a {type(obj).__name__} converts to a {got} dataset, not task={task!r}")

    if _is_loaded_dataset(obj):
        if split_options or name is not None:
            raise ConfigError(f"{type(obj).__name__} is already split; options "
                              f"{sorted([*split_options, *(['name'] if name is not None else [])])} cannot be applied")
        check("recommendation" if isinstance(obj, RecDataset) else "node" if isinstance(obj, NodeDataset) else
              "graph-property")
        return obj
    options = dict(split_options)
    if name is not None:
        options["name"] = name
    kind = _pyg_class(obj)
    if kind == "Dataset":
        if len(obj) != 1:
            raise ConfigError(f"a PyG dataset of {len(obj)} graphs: pass one graph (dataset[i]); "
                              f"as_dataset converts {ACCEPTED}")
        if name is None and isinstance(getattr(obj, "name", None), str):
            options["name"] = obj.name
        obj = obj[0]
        kind = _pyg_class(obj)
    if kind == "HeteroData":
        check("recommendation")
        return _call(rec_dataset_from_hetero, obj, options)
    if kind == "Data":
        check("node")
        return _call(node_dataset_from_pyg, obj, options)
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, pd.DataFrame):
        check("recommendation")
        return _call(rec_dataset_from_frame, obj, options)
    if sp.issparse(obj) or (isinstance(obj, np.ndarray) and obj.ndim == 2):
        check("recommendation")
        return _call(rec_dataset_from_matrix, obj, options)
    raise ConfigError(f"cannot make a dataset from a {type(obj).__module__}.{type(obj).__name__}; "
                      f"as_dataset accepts {ACCEPTED}")
