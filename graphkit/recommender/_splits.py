"""Train/test splits of an interaction frame: :func:`leave_last_out` and :func:`temporal_split`.

Both return row subsets of the frame and use the split rules of :mod:`graphkit.datasets`
(``graphkit.datasets._split.tail_split``), so a frame split here and one split by
``graphkit.datasets.from_interactions`` agree.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from ..exceptions import ConfigError, DataFormatError
from ._input import _check_k, _factorize_ids, _is_pandas_frame, _require_columns


def _frame(df: Any, what: str) -> Any:
    if not _is_pandas_frame(df):
        raise DataFormatError(f"{what} expects a pandas DataFrame", expected="pandas.DataFrame", got=type(df).__name__)
    if len(df) == 0:
        raise DataFormatError("the interaction table is empty", expected="at least one row", got=0)
    return df


def leave_last_out(df: Any, user_col: str = "user", time_col: Optional[str] = None, *, n: int = 1) -> Tuple[Any, Any]:
    """Hold out each user's last ``n`` interactions as test.

    Rows are ordered within each user by ``time_col`` (ties, and every row when
    ``time_col`` is None, keep their order in ``df``); a user's last ``n`` rows go to
    test, the rest to train.  Users with ``n`` rows or fewer keep at least one row in
    train (so they stay known to the model).  Uses :func:`graphkit.datasets._split.tail_split`,
    the rule of ``graphkit.datasets.from_interactions(split="leave-last-out")``.
    Duplicate rows are not merged: a test row whose (user, item) pair also occurs in
    train is counted as ``seen_pairs`` by :meth:`Recommender.evaluate`.

    Args:
        df: the interaction frame (all columns are kept).
        user_col: the user column.
        time_col: the timestamp column, or None to use the row order as time.
        n: rows per user to hold out (>= 1).

    Returns:
        ``(train_df, test_df)``: row subsets of ``df`` (original index kept).

    Raises:
        DataFormatError: not a DataFrame, empty, a missing column, missing values,
            incomparable timestamps.
        ConfigError: ``n < 1``.
    """
    from ..datasets._split import TEST, group_sizes, tail_split
    from ..datasets.interactions import _check_column, _time_codes

    df = _frame(df, "leave_last_out")
    n = _check_k(n, "n")
    _require_columns(df, {"user": user_col, "time": time_col})
    users = _check_column(df, user_col, "user")
    groups, uniques = _factorize_ids(users, user_col)
    if time_col is not None:
        keys = _time_codes(_check_column(df, time_col, "time"), time_col)
    else:
        keys = np.zeros(len(df), dtype=np.int64)
    sizes = group_sizes(groups, uniques.shape[0])
    n_test = np.minimum(sizes - 1, n).clip(min=0)
    labels = tail_split(groups, keys, n_test, np.zeros_like(n_test))
    test = labels == TEST
    return df[~test], df[test]


def temporal_split(df: Any, time_col: str, test_fraction: Optional[float] = None, *,
                   cutoff: Any = None) -> Tuple[Any, Any]:
    """A global time cut: everything after a point in time is test.

    Give exactly one of:

    * ``test_fraction``: the latest ``round_half_up(test_fraction * len(df))`` rows (at
      least 1, leaving at least one train row) are test; rows with equal timestamps
      keep their order in ``df`` (so ties at the boundary are cut by row order).
      Uses :func:`graphkit.datasets._split.tail_split` with one global group, the rule of
      ``from_interactions(split="temporal", group_by_user=False)``.
    * ``cutoff``: rows with ``time >= cutoff`` are test (compared with the column's own
      type, e.g. a number or a ``pandas.Timestamp``).

    Users and items that only appear in test are unknown to a model trained on train;
    :meth:`Recommender.evaluate` counts and skips / scores them as documented there.

    Args:
        df: the interaction frame (all columns are kept).
        time_col: the timestamp column.
        test_fraction: fraction of rows for test, in ``(0, 1)``.
        cutoff: first test timestamp.

    Returns:
        ``(train_df, test_df)``: row subsets of ``df`` (original index kept).

    Raises:
        DataFormatError: not a DataFrame, empty, missing column, missing timestamps,
            incomparable timestamps.
        ConfigError: neither or both of ``test_fraction`` / ``cutoff``, a fraction out of
            range, a cutoff not comparable with the column, or a cutoff leaving train or
            test empty.
    """
    from ..datasets._split import TEST, check_ratio, holdout_counts, tail_split
    from ..datasets.interactions import _check_column, _time_codes

    df = _frame(df, "temporal_split")
    if (test_fraction is None) == (cutoff is None):
        raise ConfigError("give exactly one of test_fraction= and cutoff=")
    _require_columns(df, {"time": time_col})
    times = _check_column(df, time_col, "time")
    if test_fraction is not None:
        frac = check_ratio("test_fraction", test_fraction)
        if frac == 0:
            raise ConfigError("test_fraction must be > 0")
        keys = _time_codes(times, time_col)
        n_test = holdout_counts(np.array([len(df)]), frac)
        labels = tail_split(np.zeros(len(df), dtype=np.int64), keys, n_test, np.zeros_like(n_test))
        test = labels == TEST
    else:
        try:
            test = np.asarray(times >= cutoff, dtype=bool)
        except TypeError as exc:
            raise ConfigError(f"cutoff {cutoff!r} cannot be compared with column {time_col!r}: {exc}") from None
        if test.all() or not test.any():
            raise ConfigError(f"cutoff {cutoff!r} puts {'every' if test.all() else 'no'} row in test")
    return df[~test], df[test]


class LeaveLastOutSplit:
    """A scikit-learn cross-validation splitter of an interaction frame: each user's latest rows are test.

    Fold ``f`` (0-based) holds out, per user, the ``n`` rows just before the ``f·n`` latest
    ones and trains on the rows before them (a rolling origin: no fold trains on rows later
    than its test rows).  Rows are ordered within each user by ``time_col`` (ties, and every
    row when ``time_col`` is None, by their order in the frame), as :func:`leave_last_out`.
    A user keeps at least one training row in every fold; users too short for a fold are
    left out of its test rows.  With ``GridSearchCV`` / ``cross_val_score``::

        from sklearn.model_selection import GridSearchCV
        search = GridSearchCV(Recommender("lightgcn", epochs=20), {"embedding_dim": [32, 64]},
                              cv=LeaveLastOutSplit(n_splits=2))
        search.fit(df)            # Recommender.score: recall@20 on each fold's test rows

    Args:
        n_splits: number of folds.
        n: rows per user held out in each fold.
        user_col: the user column.
        time_col: the timestamp column, or None for the row order.
    """

    def __init__(self, n_splits: int = 1, n: int = 1, user_col: str = "user", time_col: Optional[str] = None) -> None:
        self.n_splits = _check_k(n_splits, "n_splits")
        self.n = _check_k(n, "n")
        self.user_col = user_col
        self.time_col = time_col

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """The number of folds (scikit-learn's splitter API).

        Args:
            X: unused.
            y: unused.
            groups: unused.
        """
        return self.n_splits

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Any:
        """Yield ``(train_positions, test_positions)`` (integer row positions of ``X``) per fold.

        Args:
            X: the interaction frame.
            y: unused.
            groups: unused.

        Raises:
            DataFormatError: not a frame, missing columns, missing values, incomparable timestamps.
            ConfigError: a fold with no test row (too few rows per user for ``n_splits · n``).
        """
        from ..datasets.interactions import _check_column, _time_codes

        df = _frame(X, "LeaveLastOutSplit")
        _require_columns(df, {"user": self.user_col, "time": self.time_col})
        groups_, uniques = _factorize_ids(_check_column(df, self.user_col, "user"), self.user_col)
        keys = (_time_codes(_check_column(df, self.time_col, "time"), self.time_col) if self.time_col is not None
                else np.zeros(len(df), dtype=np.int64))
        order = np.lexsort((np.arange(len(df)), keys, groups_))
        sizes = np.bincount(groups_, minlength=uniques.shape[0])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        from_end = np.empty(len(df), dtype=np.int64)
        g_sorted = groups_[order]
        from_end[order] = sizes[g_sorted] - 1 - (np.arange(len(df)) - starts[g_sorted])
        for f in range(self.n_splits):
            lo, hi = f * self.n, (f + 1) * self.n
            test = (from_end >= lo) & (from_end < hi) & (sizes[groups_] > hi)
            train = from_end >= hi
            if not test.any():
                raise ConfigError(f"fold {f} of LeaveLastOutSplit(n_splits={self.n_splits}, n={self.n}) has no test "
                                  f"row: no user has more than {hi} rows")
            yield np.flatnonzero(train), np.flatnonzero(test)

    def __repr__(self) -> str:
        return (f"LeaveLastOutSplit(n_splits={self.n_splits}, n={self.n}, user_col={self.user_col!r}, "
                f"time_col={self.time_col!r})")


def ranking_scorer(metric: str = "recall@20") -> Any:
    """A scikit-learn ``scoring=`` callable: ``scorer(recommender, X, y=None)`` = ``metric`` of
    :meth:`Recommender.evaluate` on ``X`` (e.g. ``"ndcg@10"``; several scorers can be given to
    ``GridSearchCV(scoring={...})``).

    Args:
        metric: ``"<recall|ndcg|precision|hit|mrr>@k"``.

    Raises:
        ConfigError: an unknown metric name.
    """
    from ..metrics import RANKING_METRICS

    name, _, k = str(metric).partition("@")
    if name not in RANKING_METRICS or not k.isdigit() or int(k) < 1:
        raise ConfigError(f"metric must be one of {', '.join(RANKING_METRICS)} at a cut-off, e.g. 'ndcg@10'; "
                          f"got {metric!r}")

    def scorer(estimator: Any, X: Any, y: Any = None) -> float:
        return float(estimator.evaluate(X, k=int(k))[metric])

    scorer.__name__ = f"ranking_scorer_{name}_{k}"
    return scorer
