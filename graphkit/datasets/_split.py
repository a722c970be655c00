"""Per-group hold-out splits shared by the recommendation loaders.

The building block is :func:`tail_split`: within each group (usually a user) order
the rows by a key (a random number for random splits, the timestamp for temporal
ones) and label the last ``n_test`` rows *test*, the ``n_val`` rows before them
*valid*, and the rest *train*.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ..exceptions import ConfigError

TRAIN, VALID, TEST = 0, 1, 2


def round_half_up(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, halves up (unlike numpy's banker's rounding)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def check_ratio(name: str, value: float, *, allow_one: bool = False) -> float:
    """Validate a split ratio in ``[0, 1)`` (``[0, 1]`` when ``allow_one``); raise ConfigError."""
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}") from None
    hi_ok = v <= 1.0 if allow_one else v < 1.0
    if not (v >= 0.0 and hi_ok):
        raise ConfigError(f"{name} must be in [0, 1{']' if allow_one else ')'}, got {value!r}")
    return v


def holdout_counts(sizes: np.ndarray, ratio: float, reserved: np.ndarray | int = 0) -> np.ndarray:
    """How many rows each group holds out for a given ratio.

    ``round_half_up(ratio * n)``, at least 1 when ``ratio > 0``, and never so many that
    fewer than one row of the group stays in train (after ``reserved`` rows already held
    out for another part).  Groups with a single row hold out nothing.

    Args:
        sizes: number of rows of each group.
        ratio: the fraction to hold out, in ``[0, 1)``.
        reserved: rows of each group already held out (e.g. the test rows when
            computing the validation counts).
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if ratio <= 0:
        return np.zeros_like(sizes)
    n = np.maximum(round_half_up(ratio * sizes), 1)
    room = np.maximum(sizes - 1 - np.asarray(reserved, dtype=np.int64), 0)
    return np.minimum(n, room)


#: Sort keys handed to :func:`tail_split` must lie in ``[0, KEY_BOUND)``.
KEY_BOUND = 2**32


def random_keys(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniform random sort keys for :func:`tail_split` (int64 in ``[0, KEY_BOUND)``)."""
    return rng.integers(0, KEY_BOUND, size=n, dtype=np.int64)


def tail_split(groups: np.ndarray, keys: np.ndarray, n_test: np.ndarray, n_val: np.ndarray) -> np.ndarray:
    """Label rows train/valid/test by their rank within their group.

    Rows are ordered by ``(group, key)``; ties in ``key`` keep their input order, so
    the result is fully determined by the inputs.  Within each group the last
    ``n_test[g]`` rows become :data:`TEST`, the ``n_val[g]`` before them :data:`VALID`,
    the rest :data:`TRAIN`.

    Args:
        groups: group id (0..G-1, G < 2**31) of each row.
        keys: integer sort key of each row in ``[0, KEY_BOUND)``: :func:`random_keys`
            for random splits, dense timestamp ranks for temporal ones.
        n_test: test rows per group, shape [G].
        n_val: validation rows per group, shape [G].

    Returns:
        int8 labels of shape [len(groups)].
    """
    groups = np.asarray(groups, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.int64)
    if keys.size and (keys.min() < 0 or keys.max() >= KEY_BOUND):
        raise ValueError("tail_split keys must lie in [0, 2**32)")
    # One stable argsort of a combined int64 key is several times faster than lexsort.
    order = np.argsort((groups << 32) | keys, kind="stable")
    g_sorted = groups[order]
    sizes = np.bincount(groups, minlength=n_test.shape[0])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.arange(groups.shape[0]) - starts[g_sorted]
    from_end = sizes[g_sorted] - rank  # 1 for the last row of a group
    labels_sorted = np.full(groups.shape[0], TRAIN, dtype=np.int8)
    labels_sorted[from_end <= n_test[g_sorted] + n_val[g_sorted]] = VALID
    labels_sorted[from_end <= n_test[g_sorted]] = TEST
    labels = np.empty_like(labels_sorted)
    labels[order] = labels_sorted
    return labels


def group_sizes(groups: np.ndarray, num_groups: int) -> np.ndarray:
    """Rows per group as int64, shape [num_groups]."""
    return np.bincount(np.asarray(groups, dtype=np.int64), minlength=num_groups).astype(np.int64)


def split_masks(labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean train/valid/test masks from :func:`tail_split` labels."""
    return labels == TRAIN, labels == VALID, labels == TEST
