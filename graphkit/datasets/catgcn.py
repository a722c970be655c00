"""Graphs whose nodes carry categorical features (CatGCN's setting): container, loader, generator.

A node has *fields* (gender, city, liked pages, words, ...), each holding a set of
*values*; a field may be multi-valued (a bag of words is one field with many values).
:class:`CategoricalFeatures` stores these sets in CSR form (node -> list of
``(field, value)``), :class:`CatGCNData` is a :class:`NodeDataset` that carries them.

File layout read by :func:`load_catgcn` (the semantics of the CatGCN release's
``user_edge.csv`` / ``user_field.npy`` / ``user_<target>.csv``, all as CSV text):

``user_edge.csv``
    one undirected edge per line: ``uid1,uid2`` (the graph is symmetrized, self-loops dropped).
``user_field.csv``
    one categorical value per line: ``uid,field,value``; several lines with the same
    ``uid`` and ``field`` make a multi-valued field.  ``field`` and ``value`` are
    non-negative integers; value ids are local to their field (field ``f`` has
    ``max value + 1`` values).
``user_label.csv``
    ``uid,label`` with integer labels ``0..C-1``; nodes without a line are unlabelled (``-1``).
``user_split.csv`` (optional)
    ``uid,split`` with ``split`` in ``train``/``val``/``test``; without it a seeded random
    split of the labelled nodes is drawn (``train_ratio``, ``val_ratio``, rest test).

Node ids are non-negative integers; the number of nodes is ``1 + the largest id in any
file``.  Each file may start with a header line (its first token is not a number).
Blank lines and lines starting with ``#`` are skipped.  Malformed rows raise
:class:`~graphkit.exceptions.DataFormatError` naming the file, the line and the column.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..exceptions import ConfigError, DataFormatError, DataNotFoundError
from ..utils import PathLike
from .node import NodeDataset, as_index_tensor, node_split_fingerprint

__all__ = [
    "CategoricalFeatures",
    "CatGCNData",
    "load_catgcn",
    "save_catgcn",
    "make_categorical_graph",
    "categorical_from_node_dataset",
    "CATGCN_FILES",
]

#: Largest id accepted in a file (the same bound as the LightGCN reader).
_MAX_ID = 2**31 - 2

#: Default file names of :func:`load_catgcn`.
CATGCN_FILES = {"edges": "user_edge.csv", "fields": "user_field.csv", "labels": "user_label.csv",
                "split": "user_split.csv"}


# --------------------------------------------------------------------------- container
class CategoricalFeatures:
    """The categorical values of every node, in CSR form.

    Entry ``j`` in ``indptr[i]:indptr[i+1]`` says node ``i`` has value ``value[j]`` of field
    ``field[j]``.  Values are numbered per field; :attr:`global_index` numbers them across
    fields (``offsets[field] + value``), which is what embedding tables use.

    Args:
        indptr: int64 ``[N + 1]`` row pointer.
        field: int64 ``[nnz]`` field id of every entry.
        value: int64 ``[nnz]`` value id (within its field) of every entry.
        num_values: number of values of every field (``len == num_fields``).
        validate: check ranges and shapes (raise :class:`ConfigError`).
    """

    def __init__(self, indptr: Any, field: Any, value: Any, num_values: Sequence[int], *, validate: bool = True) -> None:
        self.indptr = as_index_tensor(indptr) if not isinstance(indptr, torch.Tensor) else indptr.long()
        self.field = as_index_tensor(field) if not isinstance(field, torch.Tensor) else field.long()
        self.value = as_index_tensor(value) if not isinstance(value, torch.Tensor) else value.long()
        self.num_values = tuple(int(v) for v in num_values)
        if validate:
            self._validate()
        self._cache: Dict[str, torch.Tensor] = {}

    def _validate(self) -> None:
        ip, f, v = self.indptr, self.field, self.value
        if ip.dim() != 1 or ip.numel() < 1 or int(ip[0]) != 0:
            raise ConfigError("indptr must be 1-D and start with 0")
        if bool((ip[1:] < ip[:-1]).any()):
            raise ConfigError("indptr must be non-decreasing")
        if f.shape != v.shape or f.dim() != 1 or int(ip[-1]) != f.numel():
            raise ConfigError(f"field/value must be 1-D of length indptr[-1]={int(ip[-1])}, got {tuple(f.shape)} "
                              f"and {tuple(v.shape)}")
        if any(n < 1 for n in self.num_values):
            raise ConfigError(f"every field needs >= 1 value, got num_values={self.num_values}")
        if f.numel():
            if int(f.min()) < 0 or int(f.max()) >= len(self.num_values):
                raise ConfigError(f"field ids must lie in [0, {len(self.num_values)})")
            nv = torch.tensor(self.num_values, dtype=torch.long)
            bad = (v < 0) | (v >= nv[f])
            if bool(bad.any()):
                j = int(torch.nonzero(bad)[0])
                raise ConfigError(f"entry {j}: value {int(v[j])} out of range for field {int(f[j])} "
                                  f"({self.num_values[int(f[j])]} values)")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_triples(cls, node: Any, field: Any, value: Any, num_nodes: int,
                     num_values: Optional[Sequence[int]] = None) -> "CategoricalFeatures":
        """Build from parallel arrays ``(node, field, value)`` (any order; duplicates merged).

        Args:
            node: node id of every entry.
            field: field id of every entry.
            value: value id (within its field) of every entry.
            num_nodes: number of nodes N (nodes without an entry have no values).
            num_values: values per field; defaults to ``max value + 1`` per field.
        """
        n = np.asarray(node, dtype=np.int64).reshape(-1)
        f = np.asarray(field, dtype=np.int64).reshape(-1)
        v = np.asarray(value, dtype=np.int64).reshape(-1)
        if not (n.shape == f.shape == v.shape):
            raise ConfigError("node, field and value must have the same length")
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)) or num_nodes < 0:
            raise ConfigError(f"num_nodes must be a non-negative integer, got {num_nodes!r}")
        if n.size and (n.min() < 0 or n.max() >= num_nodes):
            raise ConfigError(f"node ids must lie in [0, {num_nodes})")
        if f.size and (f.min() < 0 or v.min() < 0):
            raise ConfigError("field and value ids must be non-negative")
        if num_values is None:
            nv = np.ones(int(f.max()) + 1 if f.size else 0, dtype=np.int64)
            np.maximum.at(nv, f, v + 1)
            num_values = nv.tolist()
        nv = np.asarray(num_values, dtype=np.int64).reshape(-1)
        if (nv < 1).any():
            raise ConfigError(f"every field needs >= 1 value, got num_values={list(num_values)}")
        if f.size and (int(f.max()) >= nv.size or bool((v >= nv[np.minimum(f, max(nv.size - 1, 0))]).any())):
            raise ConfigError(f"field ids must lie in [0, {nv.size}) and value ids below their field's num_values "
                              f"({list(num_values)})")
        width = max(1, max(num_values, default=1))
        if int(num_nodes) * max(1, len(num_values)) * width >= 2**63:
            raise ConfigError(f"{num_nodes} nodes x {len(num_values)} fields x {width} values overflow int64 keys")
        key = np.unique((n * len(num_values) + f) * width + v) if n.size else np.zeros(0, dtype=np.int64)
        v2 = key % width
        f2 = (key // width) % max(1, len(num_values))
        n2 = key // width // max(1, len(num_values))
        indptr = np.zeros(num_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(n2, minlength=num_nodes), out=indptr[1:])
        return cls(indptr, f2, v2, num_values)

    @classmethod
    def from_multi_hot(cls, x: Any) -> "CategoricalFeatures":
        """One multi-valued field whose values are the non-zero columns of each row of
        ``x`` ``[N, F]`` (e.g. a bag of words: one value per word present)."""
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu()
            if x.layout != torch.strided:
                x = x.to_dense()
            x = x.numpy()
        x = np.asarray(x)
        if x.ndim != 2:
            raise ConfigError(f"x must be 2-D, got shape {x.shape}")
        rows, cols = np.nonzero(x)
        indptr = np.zeros(x.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=x.shape[0]), out=indptr[1:])
        return cls(indptr, np.zeros_like(cols), cols, [max(1, x.shape[1])])

    # ------------------------------------------------------------------ properties
    @property
    def num_nodes(self) -> int:
        """Number of nodes N."""
        return int(self.indptr.numel() - 1)

    @property
    def num_fields(self) -> int:
        """Number of categorical fields."""
        return len(self.num_values)

    @property
    def num_entries(self) -> int:
        """Number of stored (node, field, value) entries."""
        return int(self.field.numel())

    @property
    def num_embeddings(self) -> int:
        """Total number of values over all fields (size of an embedding table)."""
        return int(sum(self.num_values))

    @property
    def device(self) -> torch.device:
        """The device of the index tensors."""
        return self.indptr.device

    @property
    def offsets(self) -> torch.Tensor:
        """First global id of every field, int64 ``[num_fields]``."""
        if "offsets" not in self._cache:
            nv = torch.tensor((0,) + self.num_values[:-1], dtype=torch.long, device=self.device)
            self._cache["offsets"] = torch.cumsum(nv, 0)
        return self._cache["offsets"]

    @property
    def global_index(self) -> torch.Tensor:
        """Global value id (``offsets[field] + value``) of every entry, int64 ``[nnz]``."""
        if "global" not in self._cache:
            self._cache["global"] = self.offsets[self.field] + self.value if self.num_entries else self.value
        return self._cache["global"]

    @property
    def row(self) -> torch.Tensor:
        """Node of every entry, int64 ``[nnz]``."""
        if "row" not in self._cache:
            counts = self.indptr[1:] - self.indptr[:-1]
            self._cache["row"] = torch.repeat_interleave(torch.arange(self.num_nodes, device=self.device), counts)
        return self._cache["row"]

    def counts(self) -> torch.Tensor:
        """Number of values of every node, int64 ``[N]``."""
        return self.indptr[1:] - self.indptr[:-1]

    # ------------------------------------------------------------------ conversions
    def to(self, device: Any) -> "CategoricalFeatures":
        """A copy on ``device`` (``self`` when already there).

        Args:
            device: the target device.
        """
        device = torch.device(device)
        if device == self.device:
            return self
        return CategoricalFeatures(self.indptr.to(device), self.field.to(device), self.value.to(device),
                                   self.num_values, validate=False)

    def incidence(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The node-by-value 0/1 matrix ``[N, num_embeddings]`` as ``torch.sparse_csr`` and its
        CSR transpose (cached), for differentiable sums of value embeddings per node:
        ``graphkit.spmm(inc, table, adj_t=inc_t)``."""
        if "inc" not in self._cache:
            from ..graph import _csr_tensor

            n, v = self.num_nodes, self.num_embeddings
            gi, row = self.global_index, self.row
            order = torch.argsort(row * v + gi)
            vals = torch.ones(self.num_entries, device=self.device)
            self._cache["inc"] = _csr_tensor(self.indptr, gi[order], vals, (n, v))
            order_t = torch.argsort(gi * n + row)
            indptr_t = torch.zeros(v + 1, dtype=torch.long, device=self.device)
            indptr_t[1:] = torch.cumsum(torch.bincount(gi, minlength=v), 0)
            self._cache["inc_t"] = _csr_tensor(indptr_t, row[order_t], vals, (v, n))
        return self._cache["inc"], self._cache["inc_t"]

    def multi_hot(self, sparse: bool = False) -> torch.Tensor:
        """The ``[N, num_embeddings]`` 0/1 indicator matrix (dense, or ``torch.sparse_csr``).

        Args:
            sparse: return a ``torch.sparse_csr`` tensor instead of a dense one.
        """
        vals = torch.ones(self.num_entries, device=self.device)
        if sparse:
            from ..graph import _csr_tensor

            order = torch.argsort(self.row * self.num_embeddings + self.global_index)
            return _csr_tensor(self.indptr, self.global_index[order], vals, (self.num_nodes, self.num_embeddings))
        out = torch.zeros(self.num_nodes, self.num_embeddings, device=self.device)
        out[self.row, self.global_index] = 1.0
        return out

    def subset_fields(self, fields: Sequence[int]) -> "CategoricalFeatures":
        """Only the given fields (renumbered 0..len(fields)-1 in the given order)."""
        fields = list(fields)
        keep = torch.isin(self.field, torch.tensor(fields, dtype=torch.long, device=self.device))
        remap = torch.full((self.num_fields,), -1, dtype=torch.long, device=self.device)
        remap[torch.tensor(fields, device=self.device)] = torch.arange(len(fields), device=self.device)
        return CategoricalFeatures.from_triples(
            self.row[keep].cpu(), remap[self.field[keep]].cpu(), self.value[keep].cpu(), self.num_nodes,
            [self.num_values[f] for f in fields])

    def __repr__(self) -> str:
        return (f"CategoricalFeatures(num_nodes={self.num_nodes}, num_fields={self.num_fields}, "
                f"num_values={self.num_embeddings}, entries={self.num_entries})")


@dataclass(eq=False)
class CatGCNData(NodeDataset):
    """A :class:`NodeDataset` whose nodes carry :class:`CategoricalFeatures` (``categorical``).

    ``x`` may be ``None`` (categorical features only) or a dense feature matrix kept for
    feature-based baselines (e.g. the bag of words a Planetoid dataset was converted from).
    """

    categorical: Optional[CategoricalFeatures] = None

    @property
    def num_features(self) -> int:
        """Feature width: the number of categorical values (or ``x``'s width without them)."""
        if self.categorical is not None:
            return self.categorical.num_embeddings
        return super().num_features

    def __repr__(self) -> str:
        base = super().__repr__().replace("NodeDataset(", "CatGCNData(", 1)
        return base[:-1] + f", categorical={self.categorical!r})"


def categorical_from_node_dataset(ds: NodeDataset) -> CatGCNData:
    """A Planetoid-style :class:`NodeDataset` with its binary features turned into one
    multi-valued categorical field (each non-zero feature column is a value); the split,
    labels, graph and ``x`` are kept.

    Args:
        ds: a :class:`NodeDataset` with features ``x``.
    """
    if ds.x is None:
        raise ConfigError(f"{ds.name} has no node features to turn into a categorical field")
    cat = CategoricalFeatures.from_multi_hot(ds.x)
    return CatGCNData(
        name=ds.name, graph=ds.graph, x=ds.x, y=ds.y, train_idx=ds.train_idx, val_idx=ds.val_idx,
        test_idx=ds.test_idx, num_classes=ds.num_classes, split=ds.split, split_seed=ds.split_seed,
        fingerprint=ds.fingerprint, meta={**ds.meta, "categorical": "bag of words as one multi-valued field"},
        categorical=cat,
    )


# --------------------------------------------------------------------------- reading
def _read_int_csv(path: Path, columns: Sequence[str], str_columns: Sequence[str] = ()) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """Parse a small CSV of non-negative integer columns (plus string ``str_columns``).

    Returns ``({column: array}, line_numbers)``; raises DataFormatError(path, line, field).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataNotFoundError(f"file not found: {path} (expected in folder {path.parent})") from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not UTF-8 text ({exc.reason})", path=path) from None
    rows: List[List[str]] = []
    lines: List[int] = []
    first = True
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if first:
            first = False
            head = parts[0].lstrip("+-")
            if not head.isdigit():  # a header line
                if len(parts) != len(columns):
                    raise DataFormatError("header has the wrong number of columns", path=path, line=lineno,
                                          expected=",".join(columns), got=line)
                continue
        if len(parts) != len(columns):
            raise DataFormatError("wrong number of columns", path=path, line=lineno,
                                  expected=f"{len(columns)} ({','.join(columns)})", got=len(parts))
        rows.append(parts)
        lines.append(lineno)
    line_arr = np.asarray(lines, dtype=np.int64)
    out: Dict[str, np.ndarray] = {}
    table = np.asarray(rows, dtype=object).reshape(len(rows), len(columns))
    for k, name in enumerate(columns):
        col = table[:, k].astype(str) if len(rows) else np.zeros(0, dtype=str)
        if name in str_columns:
            out[name] = col
            continue
        vals: Optional[np.ndarray] = np.zeros(0, dtype=np.int64)
        if col.size:
            try:  # isdigit admits non-ASCII digits ('²', '٣'); int64 overflows raise
                if not np.char.isdigit(col).all():
                    raise ValueError
                np.char.encode(col, "ascii")
                vals = col.astype(np.int64)
            except (UnicodeEncodeError, ValueError, OverflowError):
                vals = None
        bad = (np.array([not (c.isascii() and c.isdigit() and int(c) <= _MAX_ID) for c in col.tolist()])
               if vals is None else vals > _MAX_ID)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            text = str(col[i])
            large = text.isascii() and text.isdigit()
            raise DataFormatError("id too large" if large else "not a non-negative integer", path=path,
                                  line=int(line_arr[i]), field=name, got=text,
                                  expected=f"an integer <= {_MAX_ID}" if large else "a non-negative integer")
        out[name] = vals
    return out, line_arr


def _random_split(labelled: np.ndarray, train_ratio: float, val_ratio: float, seed: int
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not (0 < train_ratio < 1 and 0 <= val_ratio < 1 and train_ratio + val_ratio < 1):
        raise ConfigError(f"need 0 < train_ratio, 0 <= val_ratio, train_ratio + val_ratio < 1; "
                          f"got {train_ratio}, {val_ratio}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(labelled)
    n_tr = int(round(train_ratio * perm.size))
    n_va = int(round(val_ratio * perm.size))
    return np.sort(perm[:n_tr]), np.sort(perm[n_tr:n_tr + n_va]), np.sort(perm[n_tr + n_va:])


def _build(name: str, num_nodes: int, edges: np.ndarray, cat: CategoricalFeatures, y: np.ndarray,
           split: Tuple[np.ndarray, np.ndarray, np.ndarray], split_name: str, split_seed: Optional[int],
           meta: Dict[str, Any]) -> CatGCNData:
    from ..graph import Graph

    src, dst = edges
    loop = src == dst
    s = np.concatenate([src[~loop], dst[~loop]])
    d = np.concatenate([dst[~loop], src[~loop]])
    graph = Graph.from_coo(s, d, num_nodes)
    num_classes = int(y.max()) + 1 if (y >= 0).any() else 0
    tr, va, te = split
    return CatGCNData(
        name=name, graph=graph, x=None, y=torch.from_numpy(y.astype(np.int64)),
        train_idx=as_index_tensor(tr), val_idx=as_index_tensor(va), test_idx=as_index_tensor(te),
        num_classes=num_classes, split=split_name, split_seed=split_seed,
        fingerprint=node_split_fingerprint(tr, va, te, y), meta=meta, categorical=cat,
    )


def load_catgcn(
    folder: PathLike,
    *,
    name: Optional[str] = None,
    edges_file: str = CATGCN_FILES["edges"],
    fields_file: str = CATGCN_FILES["fields"],
    labels_file: str = CATGCN_FILES["labels"],
    split_file: Optional[str] = CATGCN_FILES["split"],
    train_ratio: float = 0.6,
    val_ratio: float = 0.2,
    seed: int = 0,
) -> CatGCNData:
    """Load a categorical-feature graph in the CSV layout described in the module docstring.

    Args:
        folder: the folder holding the files.
        name: dataset name for records (default: the folder name).
        edges_file, fields_file, labels_file: file names inside ``folder``.
        split_file: optional ``uid,split`` file; used when it exists, otherwise a random
            split is drawn.  ``None`` always draws the random split.
        train_ratio, val_ratio: fractions of the labelled nodes for the random split
            (the rest is test).
        seed: seed of the random split.

    Raises:
        DataNotFoundError: a required file is missing.
        DataFormatError: a malformed row (file, line and column named), a node with two
            labels, an unknown split name, a labelled node missing from the split, ...
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataNotFoundError(f"dataset folder {folder} does not exist")
    ep, fp, lp = folder / edges_file, folder / fields_file, folder / labels_file
    e, _ = _read_int_csv(ep, ("uid1", "uid2"))
    f, f_lines = _read_int_csv(fp, ("uid", "field", "value"))
    lab, l_lines = _read_int_csv(lp, ("uid", "label"))
    sp_path = folder / split_file if split_file else None
    use_split = sp_path is not None and sp_path.is_file()
    s, s_lines = (_read_int_csv(sp_path, ("uid", "split"), str_columns=("split",)) if use_split
                  else ({"uid": np.zeros(0, dtype=np.int64)}, np.zeros(0, dtype=np.int64)))

    num_nodes = 1 + max(int(a.max(initial=-1)) for a in (e["uid1"], e["uid2"], f["uid"], lab["uid"], s["uid"]))
    if num_nodes == 0:
        raise DataFormatError("no nodes in any file", path=folder)

    y = np.full(num_nodes, -1, dtype=np.int64)
    order = np.argsort(lab["uid"], kind="stable")
    sorted_uid = lab["uid"][order]
    dup = np.flatnonzero(sorted_uid[1:] == sorted_uid[:-1])
    if dup.size:
        i = int(order[dup[0] + 1])
        raise DataFormatError("node has more than one label line", path=lp, line=int(l_lines[i]), field="uid",
                              got=int(lab["uid"][i]))
    y[lab["uid"]] = lab["label"]
    if (y >= 0).any():
        present = np.unique(y[y >= 0])
        if present.size != int(present.max()) + 1:
            # (the first 5 gaps lie below present.size + 5: no range over a huge label)
            missing = np.setdiff1d(np.arange(min(int(present.max()) + 1, present.size + 5)), present).tolist()
            raise DataFormatError("labels must be 0..C-1 without gaps", path=lp, field="label",
                                  expected=f"0..{int(present.max())}", got=f"missing {missing[:5]}")

    num_fields = int(f["field"].max()) + 1 if f["field"].size else 0
    nv = np.ones(num_fields, dtype=np.int64)
    np.maximum.at(nv, f["field"], f["value"] + 1)  # max value + 1 per field, 1 for empty fields
    num_values = nv.tolist()
    cat = CategoricalFeatures.from_triples(f["uid"], f["field"], f["value"], num_nodes, num_values)

    if use_split:
        names = {"train": 0, "val": 1, "test": 2}
        code = np.full(num_nodes, -1, dtype=np.int64)
        for i, (u, name_) in enumerate(zip(s["uid"], s["split"])):
            c = names.get(str(name_).lower())
            if c is None:
                raise DataFormatError("unknown split name", path=sp_path, line=int(s_lines[i]), field="split",
                                      expected="train, val or test", got=str(name_))
            if code[u] != -1 and code[u] != c:
                raise DataFormatError("node assigned to two splits", path=sp_path, line=int(s_lines[i]),
                                      field="uid", got=int(u))
            code[u] = c
        bad = np.flatnonzero((code >= 0) & (y < 0))
        if bad.size:
            i = int(np.flatnonzero(s["uid"] == bad[0])[0])
            raise DataFormatError("split node has no label", path=sp_path, line=int(s_lines[i]), field="uid",
                                  got=int(bad[0]))
        split = tuple(np.flatnonzero(code == c) for c in range(3))
        split_name, split_seed = "file", None
    else:
        split = _random_split(np.flatnonzero(y >= 0), train_ratio, val_ratio, seed)
        split_name, split_seed = "random", int(seed)
    meta = {"format": "catgcn-csv", "folder": str(folder),
            "files": {k: str(p) for k, p in (("edges", ep), ("fields", fp), ("labels", lp),
                                             ("split", sp_path if use_split else None)) if p is not None},
            "split_definition": "from file" if use_split else
            f"random: {train_ratio:.0%} train / {val_ratio:.0%} val / rest test of labelled nodes"}
    return _build(name or folder.name, num_nodes, np.stack([e["uid1"], e["uid2"]]), cat, y, split,  # type: ignore[arg-type]
                  split_name, split_seed, meta)


def save_catgcn(data: CatGCNData, folder: PathLike, *, write_split: bool = True) -> Path:
    """Write ``data`` in the :func:`load_catgcn` layout (each undirected edge once).

    Args:
        data: the dataset (needs ``data.categorical``).
        folder: the output folder (created if needed).
        write_split: also write ``user_split.csv`` with the dataset's split.

    Returns:
        The folder.
    """
    from ..utils import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if data.categorical is None:
        raise ConfigError("save_catgcn needs data.categorical")
    ei, _ = data.graph.to_edge_index()
    keep = ei[0] < ei[1]
    with atomic_write(folder / CATGCN_FILES["edges"], "w") as fh:
        fh.write("uid1,uid2\n")
        fh.writelines(f"{a},{b}\n" for a, b in zip(ei[0][keep].tolist(), ei[1][keep].tolist()))
    cat = data.categorical
    with atomic_write(folder / CATGCN_FILES["fields"], "w") as fh:
        fh.write("uid,field,value\n")
        fh.writelines(f"{a},{b},{c}\n" for a, b, c in zip(cat.row.tolist(), cat.field.tolist(), cat.value.tolist()))
    with atomic_write(folder / CATGCN_FILES["labels"], "w") as fh:
        fh.write("uid,label\n")
        lab = torch.nonzero(data.y >= 0).flatten()
        fh.writelines(f"{u},{int(data.y[u])}\n" for u in lab.tolist())
    if write_split:
        with atomic_write(folder / CATGCN_FILES["split"], "w") as fh:
            fh.write("uid,split\n")
            for nm, idx in (("train", data.train_idx), ("val", data.val_idx), ("test", data.test_idx)):
                fh.writelines(f"{u},{nm}\n" for u in idx.tolist())
    return folder


# --------------------------------------------------------------------------- generator
def make_categorical_graph(
    num_nodes: int = 3000,
    num_fields: int = 6,
    values_per_field: int = 8,
    homophily: float = 0.7,
    interaction_strength: float = 1.0,
    seed: int = 0,
    *,
    num_classes: int = 2,
    avg_degree: float = 8.0,
    latent_dim: int = 8,
    label_noise: float = 0.0,
    train_ratio: float = 0.2,
    val_ratio: float = 0.2,
) -> CatGCNData:
    r"""A synthetic graph whose labels depend on an *interaction* of two categorical fields.

    Every node has one value in each of ``num_fields`` fields (uniformly drawn).  Each
    value ``v`` of field ``f`` has a latent vector :math:`u_{f,v} \sim N(0, I_d)` and the
    label is

    .. math::
        y = \arg\max_c\; s\,\langle u_{0,v_0} \odot u_{1,v_1}, w_c\rangle
            + (1 - s)\,\langle u_{0,v_0} + u_{1,v_1}, w'_c\rangle

    with ``s = interaction_strength``: at ``s = 1`` the label is a pure interaction of
    fields 0 and 1, at ``s = 0`` it is additive.  The values of fields 0 and 1 come in
    antipodal pairs :math:`(u, -u)`, so at ``s = 1`` with two classes and an even
    ``values_per_field`` the label given either field alone is exactly balanced
    (XOR-like): no additive model of the fields predicts it better than chance, while
    the pair (field 0, field 1) determines it.  Fields 2.. are distractors.  A fraction ``label_noise`` of labels is
    redrawn uniformly.  Edges follow a stochastic block model over the labels: every edge
    joins two nodes of the same class with probability ``homophily`` (so the edge
    homophily is about ``homophily + (1 - homophily) * 0``) and ``avg_degree`` is the mean
    degree.  The split is random over all nodes (``train_ratio``, ``val_ratio``, rest test).

    Args:
        num_nodes: number of nodes.
        num_fields: number of categorical fields (fields 2.. are distractors).
        values_per_field: values of every field.
        homophily: probability that an edge joins two nodes of the same class.
        interaction_strength: ``s`` above, in ``[0, 1]``.
        seed: seed of every random choice (values, latent vectors, edges, split).
        num_classes: number of classes.
        avg_degree: mean node degree.
        latent_dim: dimension ``d`` of the latent value vectors.
        label_noise: fraction of labels redrawn uniformly.
        train_ratio: fraction of nodes in the training split.
        val_ratio: fraction of nodes in the validation split.

    Returns:
        A :class:`CatGCNData` named ``"synthetic-categorical"``; ``meta`` holds the generator
        arguments and the measured edge homophily.
    """
    for nm, v, lo in (("num_nodes", num_nodes, 2), ("num_fields", num_fields, 2), ("values_per_field", values_per_field, 2),
                      ("num_classes", num_classes, 2), ("latent_dim", latent_dim, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ConfigError(f"{nm} must be an int >= {lo}, got {v!r}")
    if not 0.0 <= homophily <= 1.0:
        raise ConfigError(f"homophily must be in [0, 1], got {homophily}")
    if not 0.0 <= interaction_strength <= 1.0:
        raise ConfigError(f"interaction_strength must be in [0, 1], got {interaction_strength}")
    if not 0.0 <= label_noise <= 1.0:
        raise ConfigError(f"label_noise must be in [0, 1], got {label_noise}")
    rng = np.random.default_rng(seed)
    vals = rng.integers(0, values_per_field, size=(num_nodes, num_fields))
    latent = rng.standard_normal((num_fields, values_per_field, latent_dim))
    # Fields 0 and 1 get antipodal value pairs (u, -u): for any value of one field, half of
    # the other field's values flip the sign of the interaction, so with two classes the
    # label is exactly balanced given either field alone (a true XOR-like interaction).
    half = (values_per_field + 1) // 2
    for f in (0, 1):
        base = rng.standard_normal((half, latent_dim))
        latent[f] = np.concatenate([base, -base])[:values_per_field]
    w_int = rng.standard_normal((latent_dim, num_classes))
    w_add = rng.standard_normal((latent_dim, num_classes))
    u0, u1 = latent[0, vals[:, 0]], latent[1, vals[:, 1]]
    inter = (u0 * u1) @ w_int
    add = (u0 + u1) @ w_add
    # put both terms on the same scale before mixing
    inter /= inter.std() + 1e-12
    add /= add.std() + 1e-12
    score = interaction_strength * inter + (1.0 - interaction_strength) * add
    y = score.argmax(axis=1).astype(np.int64)
    if label_noise > 0:
        flip = rng.random(num_nodes) < label_noise
        y[flip] = rng.integers(0, num_classes, size=int(flip.sum()))

    # SBM by label: each edge picks a source uniformly, then a same-class target with
    # probability `homophily`, else a target of another class.
    num_edges = int(round(num_nodes * avg_degree / 2))
    members = [np.flatnonzero(y == c) for c in range(num_classes)]
    src = rng.integers(0, num_nodes, size=num_edges)
    same = rng.random(num_edges) < homophily
    dst = np.empty(num_edges, dtype=np.int64)
    for c in range(num_classes):
        sel = np.flatnonzero((y[src] == c) & same)
        if members[c].size:
            dst[sel] = members[c][rng.integers(0, members[c].size, size=sel.size)]
        others = np.flatnonzero(y != c)
        sel = np.flatnonzero((y[src] == c) & ~same)
        pool = others if others.size else members[c]
        dst[sel] = pool[rng.integers(0, pool.size, size=sel.size)]
    edges = np.stack([src, dst])
    node = np.repeat(np.arange(num_nodes), num_fields)
    field = np.tile(np.arange(num_fields), num_nodes)
    cat = CategoricalFeatures.from_triples(node, field, vals.reshape(-1), num_nodes, [values_per_field] * num_fields)
    split = _random_split(np.arange(num_nodes), train_ratio, val_ratio, seed)
    nonloop = src != dst
    meta = {
        "format": "generator",
        "generator": dict(num_nodes=num_nodes, num_fields=num_fields, values_per_field=values_per_field,
                          homophily=homophily, interaction_strength=interaction_strength, seed=seed,
                          num_classes=num_classes, avg_degree=avg_degree, latent_dim=latent_dim,
                          label_noise=label_noise, train_ratio=train_ratio, val_ratio=val_ratio),
        "edge_homophily": float((y[src] == y[dst])[nonloop].mean()) if nonloop.any() else float("nan"),
        "class_counts": np.bincount(y, minlength=num_classes).tolist(),
    }
    return _build("synthetic-categorical", num_nodes, edges, cat, y, split, "random", int(seed), meta)
