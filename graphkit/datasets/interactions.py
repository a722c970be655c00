"""Build a :class:`RecDataset` from an interaction table (pandas DataFrame).

Raw user/item ids may be of any hashable type (ints, strings, UUIDs, tuples, ...).
They are mapped to contiguous indices ``0..U-1`` / ``0..I-1``: in sorted order of the
raw ids when they are mutually comparable, else in order of first appearance.
``RecDataset.user_ids[k]`` / ``item_ids[k]`` give the raw id of index ``k``.

Duplicate (user, item) pairs collapse to their earliest occurrence (by ``time_col``,
ties and untimed tables by row order) before splitting, so a pair is never both in
train and in test.

Splits (per user unless ``group_by_user=False``; every user keeps at least one
train interaction):

``"random"``
    each user's interactions are shuffled (``numpy.random.default_rng(seed)``);
    ``round_half_up(test_ratio * n)`` go to test and ``round_half_up(val_ratio * n)`` to
    valid (each at least 1 when its ratio is > 0 and the user has enough interactions).
``"temporal"``
    the same counts, but the *latest* interactions of each user go to test and the
    ones just before them to valid.  Needs ``time_col``.  With ``group_by_user=False``
    it is a global time cut: the last ``test_ratio`` of all interactions are test.
``"leave-last-out"``
    each user's last interaction is test and the one before valid (users with fewer
    than 3 interactions give up validation first, then test).  Needs ``time_col``.
    ``test_ratio`` is not used; ``val_ratio=0`` disables validation.
"""
from __future__ import annotations

from typing import Any, Dict, Hashable, Optional, Tuple

import numpy as np

from ..exceptions import ConfigError, DataFormatError
from . import _split
from .recommendation import RecDataset, binary_csr, split_fingerprint

__all__ = ["from_interactions", "SPLIT_METHODS"]

SPLIT_METHODS = ("random", "temporal", "leave-last-out")


def _factorize(values: Any, column: str) -> Tuple[np.ndarray, np.ndarray]:
    """(codes, uniques): sorted uniques when the ids are comparable, else first-seen order."""
    import pandas as pd

    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # mixed, non-comparable id types
        codes, uniques = pd.factorize(values, sort=False)
    uniques = np.asarray(uniques)
    return np.asarray(codes, dtype=np.int64), uniques


def _factorize_ids(values: Any, column: str) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`_factorize`, with unhashable ids (lists, dicts, ...) as a DataFormatError."""
    try:
        return _factorize(values, column)
    except TypeError as exc:
        raise DataFormatError("ids must be hashable values", field=column,
                              expected="hashable ids (str, int, tuple, ...)", got=f"{type(exc).__name__}: {exc}") from None


def _check_time_types(values: Any, column: str) -> None:
    """Raise :class:`DataFormatError` when the timestamps mix types that cannot be compared.

    pandas sorts a column holding, say, ints and strs without complaint (numbers first),
    which would silently order every int timestamp before every str one.  Python's own
    rule decides instead: two types are compatible when their values compare (int, float,
    bool and ``Decimal`` do; int and str, ``date`` and ``datetime`` do not).  Only an
    object column whose inferred type is mixed (or ``date``) is inspected, one value per
    type; numeric, datetime64 and all-str columns cost nothing.

    Args:
        values: the time column (a ``pandas.Series``, an array or a list).
        column: its name, for the message.
    """
    import pandas as pd

    arr = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values, dtype=object)
    # "date" covers date mixed with datetime (a subclass of date that does not compare with it)
    if arr.dtype != object or pd.api.types.infer_dtype(arr, skipna=True) not in ("mixed", "mixed-integer", "date"):
        return
    index = getattr(values, "index", None)
    first_of: Dict[type, int] = {}
    for pos, value in enumerate(arr):
        kind = type(value)
        if kind in first_of:
            continue
        for other, at in first_of.items():
            try:
                arr[at] < value, value < arr[at]  # noqa: B015 - raises for incomparable types
            except Exception:  # noqa: BLE001 - TypeError mostly; anything that cannot be ordered
                label = f" (index label {index[pos]!r})" if index is not None else ""
                raise DataFormatError(
                    f"timestamps of different types cannot be compared: row {pos}{label} holds "
                    f"{kind.__name__} {value!r}, but row {at} holds {other.__name__} {arr[at]!r}",
                    field=column, expected="timestamps of one comparable type (numbers, datetimes or strings)",
                    got=f"{other.__name__} and {kind.__name__}",
                ) from None
        first_of[kind] = pos


def _time_codes(values: Any, column: str) -> np.ndarray:
    """Dense ranks (0, 1, ...) of the timestamps, ties sharing a rank.

    Raises:
        DataFormatError: timestamps of types that cannot be compared (:func:`_check_time_types`).
    """
    import pandas as pd

    _check_time_types(values, column)
    try:
        codes, _ = pd.factorize(values, sort=True)
    except TypeError as exc:
        raise DataFormatError(
            "timestamps must be mutually comparable", field=column, expected="numbers or datetimes", got=str(exc)
        ) from None
    return np.asarray(codes, dtype=np.int64)


def _check_column(df: Any, column: Optional[str], role: str) -> Any:
    if column not in df.columns:
        raise DataFormatError(
            f"missing {role} column", field=column, expected=f"a column named {column!r}", got=list(df.columns)
        )
    series = df[column]
    if series.ndim != 1:  # a repeated column name, or the top level of MultiIndex columns
        raise DataFormatError(f"the {role} column name selects {series.shape[1]} columns", field=column,
                              expected=f"exactly one column named {column!r}", got=list(series.columns))
    na = series.isna().to_numpy()
    if na.any():
        first = int(np.flatnonzero(na)[0])
        raise DataFormatError(
            f"{int(na.sum())} missing (NaN/None) value(s) in the {role} column, first at row {first} "
            f"(index label {series.index[first]!r})",
            field=column, expected="no missing values", got=series.iloc[first],
        )
    return series


def from_interactions(
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
    """Turn an interaction table into a split :class:`RecDataset`.

    Args:
        df: a ``pandas.DataFrame`` with one row per interaction.
        user_col: column holding the raw user ids (any hashable type).
        item_col: column holding the raw item ids (any hashable type).
        time_col: optional timestamp column (numbers, datetimes or any comparable type);
            required by ``"temporal"`` and ``"leave-last-out"``.
        split: ``"random"``, ``"temporal"`` or ``"leave-last-out"`` (module docstring).
        val_ratio: validation fraction, in ``[0, 1)``.
        test_ratio: test fraction, in ``[0, 1)``; ``val_ratio + test_ratio < 1``.
        seed: seed of the random split (also recorded for the other methods).
        name: dataset name to record.
        group_by_user: split each user's interactions (default) or the whole table as
            one group (a global random or time-based split; users may then be missing
            from train).

    Returns:
        A :class:`RecDataset` with ``user_ids``/``item_ids`` mapping indices to raw ids
        and ``meta`` recording the split parameters.

    Raises:
        DataFormatError: not a DataFrame, empty, a missing column (named), NaN ids or
            timestamps, or timestamps of types that cannot be compared such as ints mixed
            with strs (column and first row named).
        ConfigError: unknown ``split``, bad ratios or seed, or a time-based split
            without ``time_col``.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise DataFormatError("from_interactions expects a pandas DataFrame", expected="pandas.DataFrame",
                              got=type(df).__name__)
    if split not in SPLIT_METHODS:
        raise ConfigError(f"split must be one of {', '.join(SPLIT_METHODS)}, got {split!r}")
    val_ratio = _split.check_ratio("val_ratio", val_ratio)
    test_ratio = _split.check_ratio("test_ratio", test_ratio)
    if split != "leave-last-out" and val_ratio + test_ratio >= 1.0:
        raise ConfigError(f"val_ratio + test_ratio must be < 1, got {val_ratio} + {test_ratio}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if split in ("temporal", "leave-last-out") and time_col is None:
        raise ConfigError(f"split={split!r} orders interactions by time: pass time_col=")
    users_s = _check_column(df, user_col, "user")
    items_s = _check_column(df, item_col, "item")
    times_s = _check_column(df, time_col, "time") if time_col is not None else None
    if len(df) == 0:
        raise DataFormatError("the interaction table is empty", expected="at least one row", got=0)

    u, user_ids = _factorize_ids(users_s, user_col)
    i, item_ids = _factorize_ids(items_s, item_col)
    t = _time_codes(times_s, str(time_col)) if times_s is not None else np.zeros(len(df), dtype=np.int64)
    n_users, n_items = int(user_ids.shape[0]), int(item_ids.shape[0])

    # collapse duplicate pairs to the earliest occurrence (stable: row order breaks ties)
    pair = u * n_items + i
    order = np.lexsort((t, pair))
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = pair[order][1:] != pair[order][:-1]
    keep = np.sort(order[first])
    n_dupes = int(len(df) - keep.shape[0])
    u, i, t = u[keep], i[keep], t[keep]

    groups = u if group_by_user else np.zeros_like(u)
    n_groups = n_users if group_by_user else 1
    sizes = _split.group_sizes(groups, n_groups)
    if split == "leave-last-out":
        n_test = (sizes >= 2).astype(np.int64)
        n_val = ((sizes >= 3) & (val_ratio > 0)).astype(np.int64)
        keys = t
    else:
        n_test = _split.holdout_counts(sizes, test_ratio)
        n_val = _split.holdout_counts(sizes, val_ratio, reserved=n_test)
        if split == "random":
            # canonical order first, so the split does not depend on the table's row order
            canon = np.lexsort((i, u))
            u, i, t, groups = u[canon], i[canon], t[canon], groups[canon]
            keys = _split.random_keys(np.random.default_rng(seed), u.shape[0])
        else:
            keys = t
    labels = _split.tail_split(groups, keys, n_test, n_val)
    tr, va, te = _split.split_masks(labels)

    train = binary_csr(u[tr], i[tr], n_users, n_items)
    valid = binary_csr(u[va], i[va], n_users, n_items)
    test = binary_csr(u[te], i[te], n_users, n_items)
    full_train = binary_csr(u[tr | va], i[tr | va], n_users, n_items)
    meta: Dict[str, Any] = {
        "format": "interactions",
        "split": split,
        "val_ratio": val_ratio,
        "test_ratio": None if split == "leave-last-out" else test_ratio,
        "split_seed": int(seed),
        "group_by_user": bool(group_by_user),
        "columns": {"user": user_col, "item": item_col, "time": time_col},
        "rows": int(len(df)),
        "duplicate_pairs_dropped": n_dupes,
        "users_without_train": int(n_users - np.unique(u[tr]).shape[0]),
    }
    return RecDataset(
        name=name,
        num_users=n_users,
        num_items=n_items,
        train=train,
        valid=valid,
        test=test,
        full_train=full_train,
        fingerprint=split_fingerprint(train, valid, test),
        meta=meta,
        user_ids=user_ids,
        item_ids=item_ids,
    )


def raw_id_lookup(ids: np.ndarray) -> Dict[Hashable, int]:
    """``{raw id: index}`` for a ``user_ids``/``item_ids`` array."""
    return {k: n for n, k in enumerate(ids.tolist())}
