"""Implicit-feedback recommendation datasets in the LightGCN split format.

File format (``train.txt`` / ``test.txt``; NGCF, LightGCN, UltraGCN, ...)::

    <user id> <item id> <item id> ...

one line per user, whitespace separated, ids 0-based.  A line may hold a user and no
items (Amazon-Book's ``test.txt`` has four such lines): the user still counts towards
``num_users``.  Blank lines are ignored; a user listed on several lines gets the union
of those items; repeated items collapse (matrices are binary).

Validation split (the official files have none): for each user with ``n`` train
items, ``round_half_up(val_ratio * n)`` of them (at least 1, at most ``n - 1``; none
for users with a single item) are moved to ``valid``.  Which ones is decided by
``numpy.random.default_rng(seed)`` drawing one uniform key per (user, item) pair in
row-major sorted order (``rng.integers(0, 2**32)``; ties keep that order): the pairs
with the largest keys are held out.  The split therefore depends only on the set of
pairs, the ratio and the seed, not on the file's line or item order, and is identical
on every machine.
``full_train`` (= ``train`` + ``valid``) is the official train file.

Truncated files: a file cut short (an interrupted copy or download) usually still
parses.  A file whose last byte is not a newline may be a complete file saved by an
editor that does not add one, or a cut one, so the missing newline alone proves
nothing; :func:`read_lightgcn_file` warns (``UserWarning`` naming the file and its last
line) only when, in addition, the last line itself looks cut:

* it holds a user id and no items (the cut fell inside or right after the user id), or
* every other line lists its items in strictly increasing order (gowalla, yelp2018,
  amazon-book and files written that way) and the last line ends with an item not
  larger than the one before it (the cut fell inside that number: ``... 1203 1271``
  cut to ``... 1203 12``).

It is a warning, not a :class:`~graphkit.exceptions.DataFormatError`: the file may be
intact (a last user with no items, one unsorted line), and an error would leave no way
to load it.  A cut inside the last number of a file whose lines are not sorted (ml-1m)
cannot be told from a complete file and loads silently.  For the named datasets a cut
file also fails its sha256 (:func:`graphkit.datasets.verify`) and, when the counts
change, the reference-count check of :func:`load_lightgcn_folder`, whose warning then
names the file that does not end with a newline.  The official files all end with a
newline, so they never trigger the check.
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

from ..exceptions import DataFormatError, DataNotFoundError
from ..utils import PathLike, fingerprint_arrays
from . import _split
from ._manifest import Manifest

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph

__all__ = [
    "RecDataset",
    "LightGCNFile",
    "read_lightgcn_file",
    "holdout_validation",
    "load_lightgcn_folder",
    "MAX_ID",
]

#: Largest accepted user/item id.  Larger ids are almost certainly a corrupt file and
#: would make the [U, I] matrices absurdly large.
MAX_ID = 2**31 - 2

_SENTINEL = -1  # marks line ends in the fast parser; real ids are never negative

#: The edge attributes :meth:`RecDataset.to_pyg` stores the validation and test splits in
#: (read back by :func:`graphkit.datasets.rec_dataset_from_hetero`).
_PYG_SPLIT_KEYS = ("val_edge_index", "test_edge_index")


# ----------------------------------------------------------------------------- dataset
@dataclass(eq=False)
class RecDataset:
    """A user-item implicit-feedback dataset with train/valid/test splits.

    All matrices are ``scipy.sparse.csr_matrix`` of shape ``[num_users, num_items]``,
    float32, binary (1 for an interaction), canonical (sorted indices, no duplicates).

    Args:
        name: dataset name.
        num_users: number of users U (max user id + 1 over all files).
        num_items: number of items I (max item id + 1 over all files).
        train: interactions to train on.
        valid: validation interactions (empty when no validation split was made).
        test: test interactions.
        full_train: ``train + valid`` (for LightGCN-format data: the official train file).
        fingerprint: short hash of the (user, item) index arrays of train/valid/test,
            for citing the exact split in a paper or a run record.
        meta: provenance: files, their sha256, split parameters, counts.
        user_ids: for datasets built from raw ids (:func:`from_interactions`), the raw
            id of each user index; ``None`` when ids are already 0..U-1.
        item_ids: same for items.
    """

    name: str
    num_users: int
    num_items: int
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    full_train: sp.csr_matrix
    fingerprint: str
    meta: Dict[str, Any] = field(default_factory=dict)
    user_ids: Optional[np.ndarray] = None
    item_ids: Optional[np.ndarray] = None
    _graph: Optional["Graph"] = field(default=None, init=False, repr=False)

    def graph(self) -> "Graph":
        """The symmetric bipartite user-item :class:`~graphkit.graph.Graph` of ``train``.

        Nodes ``0..U-1`` are users, ``U..U+I-1`` items.  Built on first call and cached.
        """
        if self._graph is None:
            from ..graph import Graph

            users, items = self.interactions("train")
            self._graph = Graph.from_user_item(users, items, num_users=self.num_users, num_items=self.num_items)
        return self._graph

    def to_pyg(self, edge_type: Tuple[str, str, str] = ("user", "to", "item"), *, reverse: bool = False,
               link_split: bool = False) -> Any:
        """The dataset as PyG ``HeteroData``, split included.

        Default: one ``HeteroData`` whose node stores ``edge_type[0]`` (users) and
        ``edge_type[2]`` (items) have ``num_nodes`` set to ``num_users``/``num_items``, and
        whose edge type ``edge_type`` holds

        * ``edge_index`` ``[2, E_train]``: the **training** interactions (row 0 user ids,
          row 1 item ids), the graph to pass messages on (``Graph.from_pyg`` of it equals
          :meth:`graph`);
        * ``val_edge_index`` ``[2, E_val]`` and ``test_edge_index`` ``[2, E_test]``: the
          validation and test interactions, in the same layout.

        ``graphkit.datasets.as_dataset`` (and so ``graphkit.fit``) reads this object back
        as the same split: same train/valid/test and the same :attr:`fingerprint`.

        ``link_split=True`` returns ``(train_data, val_data, test_data)`` in the layout of
        PyG's ``RandomLinkSplit``: each a ``HeteroData`` whose ``edge_index`` is the training
        graph (graphkit's protocol: every split is scored on embeddings of the training
        graph; ``RandomLinkSplit`` would add the validation edges to the test graph) and
        whose ``edge_label_index``/``edge_label`` are that split's positive pairs and ones
        (no negatives: draw them per batch, e.g. with ``LinkNeighborLoader(neg_sampling=...)``).
        Items to exclude when ranking the test split are the training plus validation pairs
        (:attr:`full_train`).

        Args:
            edge_type: ``(user type, relation, item type)`` naming the node and edge types.
            reverse: also store the item -> user training edges as the edge type
                ``(item type, "rev_" + relation, user type)`` (what PyG's ``ToUndirected``
                adds; ``as_dataset`` and ``Graph.from_pyg`` accept it).
            link_split: return the ``RandomLinkSplit``-style triple instead of one object.

        Raises:
            ConfigError: a malformed ``edge_type``.
        """
        import torch

        from ..graph import _hetero_edge_type

        et = _hetero_edge_type(edge_type)
        graph = self.graph()

        def pairs(mat: Optional[sp.csr_matrix]) -> "torch.Tensor":
            if mat is None:
                return torch.zeros((2, 0), dtype=torch.long)
            u, i = csr_pairs(mat)
            return torch.from_numpy(np.stack([u, i]))

        if not link_split:
            data = graph.to_pyg(hetero=et, reverse=reverse)
            for key, mat in zip(_PYG_SPLIT_KEYS, (self.valid, self.test)):
                data[et][key] = pairs(mat)
            return data
        out = []
        for mat in (self.train, self.valid, self.test):
            data = graph.to_pyg(hetero=et, reverse=reverse)
            label_index = pairs(mat)
            data[et].edge_label_index = label_index
            data[et].edge_label = torch.ones(label_index.shape[1])
            out.append(data)
        return tuple(out)

    def interactions(self, split: str = "train") -> Tuple[np.ndarray, np.ndarray]:
        """The (user, item) index arrays of a split, in row-major sorted order.

        Args:
            split: ``"train"``, ``"valid"``, ``"test"`` or ``"full_train"``.
        """
        mats = {"train": self.train, "valid": self.valid, "test": self.test, "full_train": self.full_train}
        if split not in mats:
            from ..exceptions import ConfigError

            raise ConfigError(f"split must be one of {sorted(mats)}, got {split!r}")
        return csr_pairs(mats[split])

    @property
    def num_interactions(self) -> Dict[str, int]:
        """Number of interactions in each split."""
        return {"train": int(self.train.nnz), "valid": int(self.valid.nnz), "test": int(self.test.nnz)}

    def split_record(self) -> Dict[str, Any]:
        """What a result record needs to cite this split exactly.

        Returns:
            ``dict(dataset=..., fingerprint=..., split_seed=..., val_ratio=...)`` plus the
            split method and, where it applies, ``test_ratio``.
        """
        rec: Dict[str, Any] = {
            "dataset": self.name,
            "fingerprint": self.fingerprint,
            "split_seed": self.meta.get("split_seed"),
            "val_ratio": self.meta.get("val_ratio"),
            "split": self.meta.get("split"),
        }
        if "test_ratio" in self.meta:
            rec["test_ratio"] = self.meta["test_ratio"]
        return rec

    def __repr__(self) -> str:
        n = self.num_interactions
        return (
            f"RecDataset(name={self.name!r}, num_users={self.num_users}, num_items={self.num_items}, "
            f"train={n['train']}, valid={n['valid']}, test={n['test']}, fingerprint={self.fingerprint!r})"
        )


# ----------------------------------------------------------------------------- helpers
def csr_pairs(mat: sp.csr_matrix) -> Tuple[np.ndarray, np.ndarray]:
    """(row, col) int64 arrays of the stored entries of a CSR matrix, row-major."""
    rows: np.ndarray = np.repeat(np.arange(mat.shape[0], dtype=np.int64), np.diff(mat.indptr))
    return rows, mat.indices.astype(np.int64)


def binary_csr(users: np.ndarray, items: np.ndarray, num_users: int, num_items: int) -> sp.csr_matrix:
    """A canonical binary float32 CSR matrix [num_users, num_items] from index arrays.

    Duplicate pairs collapse to a single 1.

    Args:
        users, items: int index arrays of equal length.
        num_users, num_items: the matrix shape.
    """
    mat = sp.csr_matrix(
        (np.ones(len(users), dtype=np.float32), (np.asarray(users), np.asarray(items))),
        shape=(int(num_users), int(num_items)),
    )
    mat.sum_duplicates()
    mat.sort_indices()
    mat.data[:] = 1.0
    return mat


def split_fingerprint(train: sp.csr_matrix, valid: sp.csr_matrix, test: sp.csr_matrix) -> str:
    """Fingerprint of a split: :func:`graphkit.utils.fingerprint_arrays` over the (user, item)
    index arrays of train, valid and test (row-major sorted order)."""
    arrays: List[np.ndarray] = []
    names: List[str] = []
    for part, mat in (("train", train), ("valid", valid), ("test", test)):
        u, i = csr_pairs(mat)
        arrays += [u, i]
        names += [f"{part}_user", f"{part}_item"]
    return fingerprint_arrays(*arrays, names=names)


# ----------------------------------------------------------------------------- parsing
@dataclass
class LightGCNFile:
    """The parsed content of one LightGCN-format file.

    Args:
        path: the file.
        users: user id of every interaction (int64, file order).
        items: item id of every interaction (int64, file order).
        line_users: the user id of every non-blank line, including users without items.
        sha256: sha256 of the file's bytes.
        ends_with_newline: whether the file is empty or its last byte is a newline
            (``False`` for a file cut short, and for files saved without a final newline).
        last_line: the 1-based number of the file's last line.
    """

    path: Path
    users: np.ndarray
    items: np.ndarray
    line_users: np.ndarray
    sha256: str
    ends_with_newline: bool = True
    last_line: int = 0


def _parse_fast(data: bytes) -> Optional[np.ndarray]:
    """All numbers of ``data`` with a -1 after every line (and one in front), or ``None``
    when numpy cannot parse the text (the caller then runs the exact slow parser).

    numpy's C text parser does the work: every newline becomes `` -1 `` so line
    structure survives as sentinels.  Only called on text without any ``-``, so -1 can
    only be a sentinel.
    """
    text = b"-1 " + data.replace(b"\n", b" -1 ") + b" -1"
    try:
        with warnings.catch_warnings():
            # older numpy reports unparsable text with a DeprecationWarning (and truncates)
            warnings.simplefilter("error", DeprecationWarning)
            vals = np.fromstring(text, dtype=np.int64, sep=" ")  # type: ignore[call-overload]
    except (ValueError, TypeError, AttributeError, DeprecationWarning):
        return None  # unparsable here, or a numpy without text-mode fromstring
    if vals.size == 0 or vals[0] != _SENTINEL or vals[-1] != _SENTINEL:
        return None
    if vals.max(initial=0) > MAX_ID:
        return None  # let the slow parser report the line
    return vals


def _parse_slow(data: bytes, path: Path) -> np.ndarray:
    """Exact line-by-line parser with precise error reporting; same output as
    :func:`_parse_fast`."""
    out: List[int] = [_SENTINEL]
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        for pos, tok in enumerate(line.split()):
            field_name = "user id" if pos == 0 else f"item id (token {pos + 1})"
            text = tok.decode("utf-8", errors="replace")
            try:
                if not tok.lstrip(b"+-").isdigit():
                    raise ValueError
                value = int(tok)
            except ValueError:
                raise DataFormatError(
                    "not an integer id", path=path, line=lineno, field=field_name,
                    expected="a non-negative integer", got=text,
                ) from None
            if value < 0:
                raise DataFormatError(
                    "negative id", path=path, line=lineno, field=field_name,
                    expected="a non-negative integer", got=text,
                )
            if value > MAX_ID:
                raise DataFormatError(
                    "id too large", path=path, line=lineno, field=field_name,
                    expected=f"an id <= {MAX_ID}", got=text,
                )
            out.append(value)
        out.append(_SENTINEL)
    return np.asarray(out, dtype=np.int64)


def read_lightgcn_file(path: PathLike) -> LightGCNFile:
    """Read one LightGCN-format file (``user item item ...`` per line).

    Fast path: the whole file is read at once and parsed by numpy's C parser, with no
    Python loop over items (gowalla's 4.6 MB train file takes a few tens of ms).  Any
    irregularity falls back to an exact line-by-line parser that reports the problem.

    Args:
        path: the file to read.

    Returns:
        A :class:`LightGCNFile`.

    Raises:
        DataNotFoundError: the file does not exist.
        DataFormatError: a token is not a non-negative integer (or exceeds :data:`MAX_ID`);
            the error carries ``path``, 1-based ``line``, ``field``, ``expected`` and ``got``.

    Warns:
        UserWarning: the file does not end with a newline and its last line looks cut
            (module docstring: "Truncated files").
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataNotFoundError(f"file not found: {p} (expected in folder {p.parent})") from None
    vals = None if b"-" in data else _parse_fast(data)
    if vals is None:
        vals = _parse_slow(data, p)
    is_sep = vals == _SENTINEL
    seps = np.flatnonzero(is_sep)
    starts: np.ndarray = seps[:-1] + 1
    ends: np.ndarray = seps[1:]
    nonblank = ends > starts
    first = starts[nonblank]  # position of each line's user id
    line_users = vals[first]
    counts = (ends - starts)[nonblank] - 1
    item_mask = ~is_sep
    item_mask[first] = False
    items = vals[item_mask]
    users: np.ndarray = np.repeat(line_users, counts)
    complete = not data or data.endswith(b"\n")
    last_line = data.count(b"\n") + 1
    if not complete:
        reason = _cut_evidence(vals, seps, item_mask)
        if reason is not None:
            warnings.warn(
                f"{p}: line {last_line}: the file does not end with a newline and {reason}; it looks cut "
                "off (an interrupted copy or download?): check the file, or end it with a newline if it is complete",
                UserWarning, stacklevel=2,
            )
    return LightGCNFile(p, users, items, line_users, hashlib.sha256(data).hexdigest(), complete, last_line)


def _cut_evidence(vals: np.ndarray, seps: np.ndarray, item_mask: np.ndarray) -> Optional[str]:
    """Why the last line of a file without a final newline looks cut, or ``None``.

    ``vals``/``seps``/``item_mask`` are :func:`read_lightgcn_file`'s parsed numbers, the
    positions of the line sentinels and the mask of the item positions.
    """
    start = int(seps[-2]) + 1  # first position of the last line
    last = vals[start:int(seps[-1])]
    if last.size == 0:
        return None  # trailing blanks after the last newline: nothing was cut
    if last.size == 1:
        return f"its last line holds user id {int(last[0])} and no items"
    if last.size < 3:
        return None  # a single item: no order to compare with
    # adjacent item pairs (same line: sentinels and user ids break the runs) before the last line
    pairs = item_mask[1:start] & item_mask[:start - 1]
    if not pairs.any():
        return None
    increasing = bool(np.all(vals[1:start][pairs] > vals[:start - 1][pairs]))
    if increasing and last[-1] <= last[-2]:
        return (f"every other line lists its items in increasing order, but this one ends with item "
                f"{int(last[-1])} after {int(last[-2])}")
    return None


# ----------------------------------------------------------------------------- splitting
def holdout_validation(
    full_train: sp.csr_matrix, val_ratio: float, seed: int
) -> Tuple[sp.csr_matrix, sp.csr_matrix]:
    """Carve a per-user validation split out of a train matrix.

    See the module docstring for the exact rule.  ``val_ratio == 0`` returns
    ``(full_train, empty)``.

    Args:
        full_train: binary canonical CSR [U, I].
        val_ratio: fraction of each user's items to hold out, in ``[0, 1)``.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        ``(train, valid)``, disjoint, whose union is ``full_train``.
    """
    val_ratio = _split.check_ratio("val_ratio", val_ratio)
    n_users, n_items = full_train.shape
    users, items = csr_pairs(full_train)
    if val_ratio == 0.0 or users.size == 0:
        return full_train.copy(), binary_csr(users[:0], items[:0], n_users, n_items)
    rng = np.random.default_rng(seed)
    keys = _split.random_keys(rng, users.shape[0])
    sizes = _split.group_sizes(users, n_users)
    n_val = _split.holdout_counts(sizes, val_ratio)
    labels = _split.tail_split(users, keys, np.zeros_like(n_val), n_val)
    tr = labels == _split.TRAIN
    return binary_csr(users[tr], items[tr], n_users, n_items), binary_csr(users[~tr], items[~tr], n_users, n_items)


# ----------------------------------------------------------------------------- loading
def _check_seed(seed: Any) -> int:
    from ..exceptions import ConfigError

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def load_lightgcn_folder(
    folder: PathLike,
    *,
    name: Optional[str] = None,
    val_ratio: float = 0.1,
    seed: int = 2020,
    manifest: Optional[Manifest] = None,
    paths: Optional[Dict[str, Path]] = None,
) -> RecDataset:
    """Load a LightGCN-format folder: ``train.txt``, ``test.txt`` and optionally ``valid.txt``.

    If the folder has a ``valid.txt`` it is used as the validation split (and
    ``val_ratio``/``seed`` are ignored); otherwise a validation split is carved from
    ``train.txt`` (module docstring).

    Args:
        folder: the folder holding the files.
        name: dataset name (default: the folder name).
        val_ratio: fraction of each user's train items held out for validation; 0 for none.
        seed: seed of the validation hold-out.
        manifest: the dataset's manifest, if it is a named dataset; its reference counts
            are compared with what was loaded (a mismatch warns: run ``verify``).
        paths: explicit file paths (``{"train.txt": ..., "test.txt": ...}``) overriding
            ``folder / name``.

    Returns:
        A :class:`RecDataset`.

    Raises:
        DataNotFoundError: ``train.txt`` or ``test.txt`` is missing (message names both
            the file and the folder).
        DataFormatError: a malformed line (file and 1-based line in the message).
        ConfigError: bad ``val_ratio`` or ``seed``.
    """
    folder = Path(folder)
    val_ratio = _split.check_ratio("val_ratio", val_ratio)
    seed = _check_seed(seed)
    paths = dict(paths or {})
    for fname in ("train.txt", "test.txt"):
        paths.setdefault(fname, folder / fname)
    missing = [str(paths[f]) for f in ("train.txt", "test.txt") if not Path(paths[f]).is_file()]
    if missing:
        raise DataNotFoundError(
            f"LightGCN-format dataset needs train.txt and test.txt in {folder}; missing: {', '.join(missing)}"
        )
    valid_path = paths.get("valid.txt") or folder / "valid.txt"
    has_valid_file = Path(valid_path).is_file()

    train_f = read_lightgcn_file(paths["train.txt"])
    test_f = read_lightgcn_file(paths["test.txt"])
    parsed = [train_f, test_f]
    valid_f = None
    if has_valid_file:
        valid_f = read_lightgcn_file(valid_path)
        parsed.append(valid_f)
    num_users = int(max((int(f.line_users.max(initial=-1)) for f in parsed), default=-1)) + 1
    num_items = int(max((int(f.items.max(initial=-1)) for f in parsed), default=-1)) + 1

    official_train = binary_csr(train_f.users, train_f.items, num_users, num_items)
    test = binary_csr(test_f.users, test_f.items, num_users, num_items)
    if valid_f is not None:
        valid = binary_csr(valid_f.users, valid_f.items, num_users, num_items)
        train = official_train
        full_train = binary_csr(*_union_pairs(train, valid), num_users, num_items)
        split_kind = "official train/valid/test files"
        val_ratio_rec: Optional[float] = None
        seed_rec: Optional[int] = None
    else:
        train, valid = holdout_validation(official_train, val_ratio, seed)
        full_train = official_train
        split_kind = "official train/test; validation held out per user from train" if val_ratio > 0 else (
            "official train/test; no validation"
        )
        val_ratio_rec, seed_rec = val_ratio, seed

    name = name or folder.name
    meta: Dict[str, Any] = {
        "format": "lightgcn",
        "files": {f.path.name: str(f.path) for f in parsed},
        "sha256": {f.path.name: f.sha256 for f in parsed},
        "val_ratio": val_ratio_rec,
        "split_seed": seed_rec,
        "split": split_kind,
        "users_without_test_items": int(num_users - np.unique(test_f.users).size),
        "duplicate_pairs": {
            train_f.path.name: int(train_f.users.size - official_train.nnz),
            test_f.path.name: int(test_f.users.size - test.nnz),
        },
    }
    if valid_f is not None:
        meta["duplicate_pairs"][valid_f.path.name] = int(valid_f.users.size - valid.nnz)
    if manifest is not None:
        meta["manifest"] = manifest.name
        _check_reference_counts(manifest, num_users, num_items, full_train.nnz, test.nnz, parsed)
    return RecDataset(
        name=name,
        num_users=num_users,
        num_items=num_items,
        train=train,
        valid=valid,
        test=test,
        full_train=full_train,
        fingerprint=split_fingerprint(train, valid, test),
        meta=meta,
    )


def _union_pairs(a: sp.csr_matrix, b: sp.csr_matrix) -> Tuple[np.ndarray, np.ndarray]:
    ua, ia = csr_pairs(a)
    ub, ib = csr_pairs(b)
    return np.concatenate([ua, ub]), np.concatenate([ia, ib])


def _check_reference_counts(
    manifest: Manifest, users: int, items: int, train: int, test: int, files: Sequence[LightGCNFile] = ()
) -> None:
    expected = manifest.counts
    got = {"users": users, "items": items, "train": train, "test": test}
    diff = {k: (expected[k], v) for k, v in got.items() if k in expected and expected[k] != v}
    if diff:
        detail = ", ".join(f"{k}: expected {e:,}, got {g:,}" for k, (e, g) in diff.items())
        cut = [f"{f.path} (line {f.last_line})" for f in files if not f.ends_with_newline]
        hint = (f"; {', '.join(cut)} {'does' if len(cut) == 1 else 'do'} not end with a newline: "
                "probably cut off" if cut else "")
        warnings.warn(
            f"dataset {manifest.name!r} does not match its reference counts ({detail}){hint}; "
            f"the files may differ from the official ones: check them with graphkit.datasets.verify({manifest.name!r})",
            stacklevel=3,
        )
