"""Planetoid citation datasets (Cora, CiteSeer, PubMed) from the raw ``ind.*`` files.

The raw files (Yang et al., 2016; ``kimiyoung/planetoid``) are Python-2 pickles.
They are read with :class:`RestrictedUnpickler`, which only admits the handful of
numpy / scipy.sparse / builtin container types these files use, so a tampered file
cannot run code.

Conventions (Kipf & Welling 2017, PyG ``split="public"``):

* the ``i``-th row of ``tx``/``ty`` belongs to node ``test.index[i]``; ``allx``/``ally``
  cover nodes ``0..len(allx)-1``.  For CiteSeer, 15 ids inside the test range have no
  features or label: they become all-zero feature rows with label ``-1``;
* public split: train = ``range(len(y))``, val = the next 500 ids, test = the ids in
  ``test.index`` (sorted);
* edges: the adjacency lists made undirected, self-loops dropped, duplicates merged
  (Cora 10,556 and CiteSeer 9,104 directed edges, as in PyG).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from ..exceptions import ConfigError, DataFormatError, DataNotFoundError, DatasetError
from ..utils import PathLike
from ._manifest import load_manifest
from .download import ensure_files
from .node import NodeDataset, as_index_tensor, node_split_fingerprint
from .safe_pickle import RestrictedUnpickler, restricted_loads

__all__ = [
    "PLANETOID_NAMES",
    "RestrictedUnpickler",
    "restricted_loads",
    "PlanetoidRaw",
    "read_planetoid",
    "random_planetoid_split",
    "load_planetoid",
]

PLANETOID_NAMES = ("cora", "citeseer", "pubmed")
_PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")

# ----------------------------------------------------------------------------- reading
@dataclass
class PlanetoidRaw:
    """A Planetoid dataset decoded to numpy arrays (no graphkit types involved).

    Args:
        name: ``"cora"``, ``"citeseer"`` or ``"pubmed"``.
        x: float32 features ``[N, F]``.
        y: int64 labels ``[N]``, ``-1`` where a node has no label.
        edge_index: int64 ``[2, E]``, both directions, no self-loops, no duplicates,
            sorted by (source, target).
        train_idx, val_idx, test_idx: the public (Kipf) split, int64, sorted.
        num_classes: width of the one-hot label matrices.
        stats: raw counts (adjacency entries, self-loops, ...) for reference.
        files: ``{file name: path}``.
        sha256: ``{file name: sha256}`` of the bytes read.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    edge_index: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    num_classes: int
    stats: Dict[str, int]
    files: Dict[str, str]
    sha256: Dict[str, str]


#: A sparse matrix is densified only when its dense size is at most this many bytes, or
#: ``_DENSE_PER_FILE_BYTE`` times the size of the file that holds it, whichever is larger: a
#: header can declare any shape, the file's size bounds what it can honestly describe.  (The
#: real files: Cora's ``allx`` is 1,708 x 1,433 = 9.8 MB dense from a 0.3 MB file, PubMed's
#: 18,217 x 500 = 36 MB from 4 MB.)
_DENSE_FLOOR_BYTES = 256 << 20
_DENSE_PER_FILE_BYTE = 1024


def _dense(obj: Any, path: Path, what: str, file_bytes: Optional[int] = None) -> np.ndarray:
    """A 2-D float32 array from a pickled scipy.sparse matrix or numpy array."""
    if sp.issparse(obj):
        shape = getattr(obj, "shape", None)
        if not (isinstance(shape, tuple) and len(shape) == 2 and all(isinstance(d, (int, np.integer)) and d >= 0
                                                                      for d in shape)):
            raise DataFormatError(f"invalid sparse {what} matrix shape", path=path, expected="2 non-negative sizes",
                                  got=shape)
        dense_bytes = int(shape[0]) * int(shape[1]) * 4
        size = file_bytes if file_bytes is not None else (path.stat().st_size if path.exists() else 0)
        limit = max(_DENSE_FLOOR_BYTES, _DENSE_PER_FILE_BYTE * size)
        if dense_bytes > limit:
            raise DataFormatError(
                f"the sparse {what} matrix declares shape {shape[0]:,} x {shape[1]:,} ({dense_bytes / 1e9:,.1f} GB "
                f"dense), more than a {size:,}-byte file can describe (limit {limit / 1e9:,.2f} GB); "
                "the file is corrupt or crafted", path=path, field="shape", expected=f"<= {limit:,} dense bytes",
                got=dense_bytes)
        try:
            # Rebuild from the raw arrays and check them fully: a tampered index array
            # must not reach scipy's C routines.
            csr = sp.csr_matrix(obj)
            csr.check_format(full_check=True)
        except (ValueError, TypeError, AttributeError) as exc:
            raise DataFormatError(f"invalid sparse {what} matrix: {exc}", path=path) from None
        return np.asarray(csr.toarray(), dtype=np.float32)
    if isinstance(obj, np.ndarray) and obj.ndim == 2 and obj.dtype.kind in "biuf":
        return obj.astype(np.float32, copy=False)
    raise DataFormatError(
        f"unexpected content for the {what} matrix", path=path,
        expected="a 2-D numpy array or scipy.sparse matrix", got=type(obj).__name__,
    )


def _read_index(data: bytes, path: Path) -> np.ndarray:
    out = []
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        tok = line.strip()
        if not tok:
            continue
        if not tok.isdigit():
            raise DataFormatError(
                "not a node id", path=path, line=lineno, expected="a non-negative integer",
                got=tok.decode("utf-8", errors="replace"),
            )
        out.append(int(tok))
    return np.asarray(out, dtype=np.int64)


def read_planetoid(name: str, paths: Mapping[str, PathLike]) -> PlanetoidRaw:
    """Decode the eight raw files of a Planetoid dataset.

    Args:
        name: ``"cora"``, ``"citeseer"`` or ``"pubmed"``.
        paths: ``{"ind.<name>.<part>": path}`` for the parts
            x, y, tx, ty, allx, ally, graph, test.index.

    Returns:
        A :class:`PlanetoidRaw` (see the module docstring for the conventions).

    Raises:
        DataNotFoundError: a file is missing.
        DataFormatError: a file does not decode, references a forbidden global, or the
            files are inconsistent with each other (shapes, ids out of range).
    """
    raw: Dict[str, Any] = {}
    files: Dict[str, str] = {}
    digests: Dict[str, str] = {}
    for part in _PARTS:
        key = f"ind.{name}.{part}"
        p = Path(paths[key])
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise DataNotFoundError(f"file not found: {p} (expected in folder {p.parent})") from None
        files[key], digests[key] = str(p), hashlib.sha256(data).hexdigest()
        raw[part] = (_read_index(data, p) if part == "test.index" else restricted_loads(data, p), p, len(data))

    def arr(part: str) -> np.ndarray:
        return _dense(raw[part][0], raw[part][1], part, raw[part][2])

    x, y, tx, ty, allx, ally = (arr(k) for k in ("x", "y", "tx", "ty", "allx", "ally"))
    test_order, test_path, _ = raw["test.index"]
    graph, graph_path, _ = raw["graph"]

    def fail(msg: str, path: Path, expected: Any = None, got: Any = None) -> DataFormatError:
        return DataFormatError(msg, path=path, expected=expected, got=got)

    for a, b, an, bn in ((x, y, "x", "y"), (allx, ally, "allx", "ally"), (tx, ty, "tx", "ty")):
        if a.shape[0] != b.shape[0]:
            raise fail(f"{an} and {bn} have different row counts", raw[bn][1], a.shape[0], b.shape[0])
    if tx.shape[0] != test_order.shape[0]:
        raise fail("tx rows do not match the number of test ids", test_path, tx.shape[0], test_order.shape[0])
    if not (x.shape[1] == tx.shape[1] == allx.shape[1]):
        raise fail("feature widths differ between x/tx/allx", raw["tx"][1], x.shape[1], tx.shape[1])
    if not (y.shape[1] == ty.shape[1] == ally.shape[1]):
        raise fail("label widths differ between y/ty/ally", raw["ty"][1], y.shape[1], ty.shape[1])
    if not isinstance(graph, Mapping):
        raise fail("the graph file must hold a dict of adjacency lists", graph_path, "dict", type(graph).__name__)
    if np.unique(test_order).shape[0] != test_order.shape[0]:
        raise fail("duplicate ids in test.index", test_path)
    if test_order.size and test_order.min() < allx.shape[0]:
        raise fail("test ids overlap the allx rows", test_path, f"ids >= {allx.shape[0]}", int(test_order.min()))

    # adjacency lists -> COO
    try:
        keys = np.fromiter((int(k) for k in graph.keys()), dtype=np.int64, count=len(graph))
        lists = [np.asarray(list(v), dtype=np.int64) for v in graph.values()]
    except (TypeError, ValueError) as exc:
        raise fail(f"adjacency lists must hold integer node ids ({exc})", graph_path) from None
    lengths = np.fromiter((len(v) for v in lists), dtype=np.int64, count=len(lists))
    src: np.ndarray = np.repeat(keys, lengths)
    dst = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)

    # Nodes: allx rows, then the test range (CiteSeer's range has holes).  Bound the
    # size by what the files describe so a corrupt id cannot trigger a huge allocation.
    num_nodes = int(max(allx.shape[0], int(test_order.max(initial=-1)) + 1))
    limit = max(len(graph), allx.shape[0] + tx.shape[0])
    if num_nodes > limit:
        raise fail("test ids exceed the number of nodes the files describe", test_path, f"ids < {limit}", num_nodes - 1)
    for ids in (src, dst):
        bad = (ids < 0) | (ids >= num_nodes)
        if bad.any():
            raise fail("node id out of range in the adjacency lists", graph_path,
                       f"ids in [0, {num_nodes})", int(ids[bad][0]))

    features = np.zeros((num_nodes, allx.shape[1]), dtype=np.float32)
    features[: allx.shape[0]] = allx
    features[test_order] = tx
    onehot = np.zeros((num_nodes, ally.shape[1]), dtype=np.float32)
    onehot[: ally.shape[0]] = ally
    onehot[test_order] = ty
    labels = np.where(onehot.sum(axis=1) > 0, onehot.argmax(axis=1), -1).astype(np.int64)

    self_loops = src == dst
    s = np.concatenate([src[~self_loops], dst[~self_loops]])
    d = np.concatenate([dst[~self_loops], src[~self_loops]])
    code = np.unique(s * num_nodes + d)
    edge_index = np.stack([code // num_nodes, code % num_nodes])

    n_train = y.shape[0]
    train_idx = np.arange(n_train, dtype=np.int64)
    val_idx = np.arange(n_train, min(n_train + 500, num_nodes), dtype=np.int64)
    test_idx = np.sort(test_order)
    stats = {
        "adjacency_entries": int(src.shape[0]),
        "self_loop_entries": int(self_loops.sum()),
        "graph_keys": int(keys.shape[0]),
        "feature_rows_without_data": int(num_nodes - allx.shape[0] - tx.shape[0]),
        "labelled_nodes": int((labels >= 0).sum()),
    }
    return PlanetoidRaw(
        name=name, x=features, y=labels, edge_index=edge_index, train_idx=train_idx, val_idx=val_idx,
        test_idx=test_idx, num_classes=int(ally.shape[1]), stats=stats, files=files, sha256=digests,
    )


# ----------------------------------------------------------------------------- splits
def random_planetoid_split(
    y: np.ndarray,
    num_classes: int,
    seed: int,
    *,
    num_train_per_class: int = 20,
    num_val: int = 500,
    num_test: int = 1000,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random split in the style of DAGNN / Shchur et al.: ``num_train_per_class`` labelled
    nodes of every class for training, then ``num_val`` and ``num_test`` nodes drawn from
    the remaining labelled nodes.

    Args:
        y: int labels ``[N]`` with ``-1`` for unlabelled nodes (never selected).
        num_classes: number of classes C.
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same split.
        num_train_per_class: training nodes per class.
        num_val: validation nodes.
        num_test: test nodes.

    Returns:
        ``(train_idx, val_idx, test_idx)``, int64, each sorted.

    Raises:
        ConfigError: a class has fewer than ``num_train_per_class`` labelled nodes, or
            too few labelled nodes remain for ``num_val + num_test``.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    train_parts = []
    for c in range(num_classes):
        members = np.flatnonzero(y == c)
        if members.shape[0] < num_train_per_class:
            raise ConfigError(
                f"class {c} has {members.shape[0]} labelled nodes, fewer than num_train_per_class={num_train_per_class}"
            )
        train_parts.append(rng.permutation(members)[:num_train_per_class])
    train = np.concatenate(train_parts) if train_parts else np.zeros(0, dtype=np.int64)
    rest = np.setdiff1d(np.flatnonzero(y >= 0), train)
    if rest.shape[0] < num_val + num_test:
        raise ConfigError(
            f"only {rest.shape[0]} labelled nodes remain after the training nodes; "
            f"num_val + num_test = {num_val + num_test}"
        )
    rest = rng.permutation(rest)
    return (
        np.sort(train).astype(np.int64),
        np.sort(rest[:num_val]).astype(np.int64),
        np.sort(rest[num_val : num_val + num_test]).astype(np.int64),
    )


# ----------------------------------------------------------------------------- loading
def load_planetoid(
    name: str,
    root: Optional[PathLike] = None,
    *,
    split: str = "public",
    seed: int = 0,
    normalize_features: bool = False,
    num_train_per_class: int = 20,
    num_val: int = 500,
    num_test: int = 1000,
    download: bool = True,
) -> NodeDataset:
    """Load Cora, CiteSeer or PubMed as a :class:`NodeDataset`.

    Files are looked up in ``<data_dir>/planetoid/raw/`` (then the cache folder) and
    downloaded from kimiyoung/planetoid when missing and allowed.

    Args:
        name: ``"cora"``, ``"citeseer"`` or ``"pubmed"``.
        root: data folder (default :func:`graphkit.utils.data_dir`).
        split: ``"public"`` (Kipf & Welling) or ``"random"`` (:func:`random_planetoid_split`).
        seed: seed of the random split (ignored for ``"public"``).
        normalize_features: divide every feature row by its sum (rows summing to 0 stay 0).
        num_train_per_class, num_val, num_test: sizes of the random split.
        download: allow downloading missing files.

    Returns:
        A :class:`NodeDataset`; ``meta`` holds the files, their sha256 and raw counts.

    Raises:
        DataNotFoundError: files missing (e.g. PubMed's ``ind.pubmed.allx``) and not
            downloadable: the message names each missing file and its folder.
        DataFormatError: a malformed or unsafe file.
        ConfigError: bad ``split`` or split sizes.
    """
    from ..graph import Graph

    key = name.lower()
    if key not in PLANETOID_NAMES:
        raise DatasetError(f"unknown Planetoid dataset {name!r}; choose one of {', '.join(PLANETOID_NAMES)}")
    if split not in ("public", "random"):
        raise ConfigError(f"split must be 'public' or 'random', got {split!r}")
    manifest = load_manifest(key)
    assert manifest is not None, f"missing manifest datasets/{key}.json"
    paths = ensure_files(manifest, root, download=download)
    raw = read_planetoid(key, paths)

    x = raw.x
    if normalize_features:
        rowsum = x.sum(axis=1, keepdims=True)
        x = np.divide(x, rowsum, out=np.zeros_like(x), where=rowsum != 0)
    if split == "public":
        train_idx, val_idx, test_idx = raw.train_idx, raw.val_idx, raw.test_idx
        split_seed: Optional[int] = None
    else:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        split_seed = int(seed)
        train_idx, val_idx, test_idx = random_planetoid_split(
            raw.y, raw.num_classes, split_seed,
            num_train_per_class=num_train_per_class, num_val=num_val, num_test=num_test,
        )
    graph = Graph.from_edge_index(raw.edge_index, num_nodes=raw.x.shape[0])
    meta: Dict[str, Any] = {
        "format": "planetoid",
        "files": raw.files,
        "sha256": raw.sha256,
        "stats": raw.stats,
        "normalize_features": bool(normalize_features),
        "split_definition": (
            "public: train=range(len(y)), val=next 500 ids, test=test.index"
            if split == "public"
            else f"random: {num_train_per_class} per class / {num_val} val / {num_test} test from labelled nodes"
        ),
    }
    return NodeDataset(
        name=key,
        graph=graph,
        x=torch.from_numpy(np.ascontiguousarray(x)),
        y=torch.from_numpy(raw.y),
        train_idx=as_index_tensor(train_idx),
        val_idx=as_index_tensor(val_idx),
        test_idx=as_index_tensor(test_idx),
        num_classes=raw.num_classes,
        split=split,
        split_seed=split_seed,
        fingerprint=node_split_fingerprint(train_idx, val_idx, test_idx, raw.y),
        meta=meta,
    )
