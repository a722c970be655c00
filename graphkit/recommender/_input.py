"""Reading what callers pass in: interaction frames / sparse matrices, and scalar arguments.

:func:`_read_pairs` validates an interaction table (a ``pandas.DataFrame`` or a
``scipy.sparse`` matrix), drops zero weights, maps raw ids to indices and applies the
duplicates policy, giving :class:`_Pairs`; :func:`_raw_rows` is its validation step alone
(used by :meth:`~graphkit.recommender.Recommender.evaluate`).  Errors are
:class:`~graphkit.exceptions.DataFormatError` naming the column and rows.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp

from ..exceptions import ConfigError, DataFormatError


def _is_pandas_frame(x: Any) -> bool:
    import pandas as pd

    return isinstance(x, pd.DataFrame)


def _check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


def _check_budget(memory_budget_mb: Any) -> float:
    try:  # an int beyond float range (10**400) is no budget either
        value = float(memory_budget_mb)
    except (TypeError, ValueError, OverflowError):
        value = math.nan
    if isinstance(memory_budget_mb, bool) or not isinstance(memory_budget_mb, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"memory_budget_mb must be a positive finite number, got {memory_budget_mb!r}")
    return value


# ----------------------------------------------------------------------------- reading interactions
@dataclasses.dataclass
class _Pairs:
    """Interactions as index arrays, one row per distinct (user, item) pair."""

    user_ids: np.ndarray  # raw id of each user index
    item_ids: np.ndarray
    users: np.ndarray     # int64 [n]
    items: np.ndarray     # int64 [n]
    weights: np.ndarray   # float64 [n]
    times: Optional[np.ndarray]  # int64 dense time ranks [n] or None
    stats: Dict[str, int]


def _factorize_ids(values: Any, column: str) -> Tuple[np.ndarray, np.ndarray]:
    from ..datasets.interactions import _factorize

    try:
        return _factorize(values, column)
    except (TypeError, ValueError) as exc:
        raise DataFormatError("ids must be hashable values", field=column, expected="hashable ids",
                              got=f"{type(exc).__name__}: {exc}") from None


def _check_weights(w: Any, column: str, index: Any = None) -> np.ndarray:
    try:
        arr = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataFormatError("weights must be numbers", field=column, expected="finite numbers >= 0",
                              got=str(exc)) from None
    for bad, what in ((np.isnan(arr), "missing (NaN/None)"), (np.isinf(arr), "infinite"), (arr < 0, "negative")):
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            where = f", first at row {first}" + (f" (index label {index[first]!r})" if index is not None else "")
            raise DataFormatError(f"{int(bad.sum())} {what} weight(s){where}", field=column,
                                  expected="finite numbers >= 0", got=float(arr[first]))
    return arr


def _require_columns(df: Any, columns: Dict[str, Optional[str]]) -> None:
    needed = [c for c in columns.values() if c is not None]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        roles = {v: k for k, v in columns.items() if v is not None}
        names = ", ".join(f"{c!r} ({roles[c]})" for c in missing)
        raise DataFormatError(f"missing column(s) {names}", expected=f"columns {needed}", got=list(df.columns))
    dup = [c for c in needed if int((df.columns == c).sum()) > 1]
    if dup:
        raise DataFormatError(f"column name(s) {dup} appear more than once in the frame")


def _raw_rows(data: Any, user_col: str, item_col: str, weight_col: Optional[str], time_col: Optional[str],
              *, need_weights: bool = True) -> Tuple[Any, Any, np.ndarray, Any, Optional[str]]:
    """(user values, item values, weights, time values or None, time column) of a frame or
    sparse matrix, validated (no NaN ids, finite non-negative weights)."""
    from ..datasets.interactions import _check_column

    if sp.issparse(data):
        if len(data.shape) != 2:
            raise DataFormatError("a sparse interaction matrix must be 2-D [users, items]", got=data.shape)
        coo = sp.coo_matrix(data)
        if coo.nnz == 0:
            raise DataFormatError("the interaction matrix has no stored entries", expected="at least one", got=0)
        w = _check_weights(coo.data, "matrix values") if need_weights else np.ones(coo.nnz)
        return coo.row.astype(np.int64), coo.col.astype(np.int64), w, None, None
    if not _is_pandas_frame(data):
        raise DataFormatError("interactions must be a pandas DataFrame or a scipy.sparse matrix",
                              expected="pandas.DataFrame or scipy.sparse matrix", got=type(data).__name__)
    df = data
    if len(df) == 0:
        raise DataFormatError("the interaction table is empty", expected="at least one row", got=0)
    cols = {"user": user_col, "item": item_col}
    if need_weights:
        cols.update({"weight": weight_col, "time": time_col})
    _require_columns(df, cols)
    users = _check_column(df, user_col, "user")
    items = _check_column(df, item_col, "item")
    times = _check_column(df, time_col, "time") if (need_weights and time_col is not None) else None
    if need_weights and weight_col is not None:
        w = _check_weights(df[weight_col].to_numpy(), weight_col, df.index)
    else:
        w = np.ones(len(df), dtype=np.float64)
    return users, items, w, times, time_col


def _read_pairs(data: Any, user_col: str, item_col: str, weight_col: Optional[str], time_col: Optional[str],
                duplicates: str) -> _Pairs:
    """Validate, drop zero weights, map raw ids to indices and apply the duplicates policy."""
    from ..datasets.interactions import _check_time_types, _time_codes

    users, items, w, times, tcol = _raw_rows(data, user_col, item_col, weight_col, time_col)
    if times is not None:  # before rows are dropped, so that the row named is the caller's
        _check_time_types(times, str(tcol))
    n_rows = int(w.shape[0])
    keep = w > 0
    n_zero = int(n_rows - keep.sum())
    if n_zero:
        if not keep.any():
            raise DataFormatError("every interaction has weight 0; nothing to learn from",
                                  field=weight_col, expected="some weight > 0", got=0)
        users, items, w = users[keep], items[keep], w[keep]
        times = times[keep] if times is not None else None
    u, user_ids = _factorize_ids(users, user_col)
    i, item_ids = _factorize_ids(items, item_col)
    t = _time_codes(times, tcol) if times is not None else None
    n_items = int(item_ids.shape[0])
    key = u * np.int64(n_items) + i
    # earliest occurrence first (by time, then row order)
    order = np.lexsort((t, key)) if t is not None else np.argsort(key, kind="stable")
    ks = key[order]
    first = np.ones(ks.shape[0], dtype=bool)
    first[1:] = ks[1:] != ks[:-1]
    n_dup = int(ks.shape[0] - first.sum())
    if n_dup and duplicates == "error":
        starts = np.flatnonzero(first)
        counts = np.diff(np.append(starts, ks.shape[0]))
        multi = np.flatnonzero(counts > 1)
        examples = [(user_ids[u[order[starts[j]]]], item_ids[i[order[starts[j]]]], int(counts[j]))
                    for j in multi[:5]]
        shown = ", ".join(f"(user={a!r}, item={b!r}) x{c}" for a, b, c in examples)
        raise DataFormatError(
            f"{n_dup} duplicate row(s) over {multi.shape[0]} (user, item) pair(s), e.g. {shown}; "
            "pass duplicates='count' to sum them or duplicates='drop' to keep the first",
            expected="one row per (user, item) pair", got=f"{n_dup} duplicates")
    rep = order[first]  # representative (earliest) row of every pair, in key order
    if duplicates == "count" and n_dup:
        weights = np.add.reduceat(w[order], np.flatnonzero(first))
    else:
        weights = w[rep]
    stats = {"rows": n_rows, "zero_weight_rows": n_zero, "duplicate_rows": n_dup, "pairs": int(rep.shape[0])}
    return _Pairs(user_ids, item_ids, u[rep], i[rep], weights.astype(np.float64),
                  None if t is None else t[rep], stats)


def _csr(users: np.ndarray, items: np.ndarray, data: np.ndarray, shape: Tuple[int, int]) -> sp.csr_matrix:
    """Canonical CSR from pairs already sorted by (user, item) without duplicates."""
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=shape[0]), out=indptr[1:])
    return sp.csr_matrix((data, items.astype(np.int64), indptr), shape=shape)

