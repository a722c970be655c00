"""Fold-in: histories of new (or changed) users turned into user embeddings, items frozen.

:meth:`Recommender.partial_fit_users` and ``Recommender.recommend(..., interactions=...)``
end here.  The per-model method is the model's own ``fold_in_users(R_new)`` (LightGCN:
propagation from the frozen item layers plus optional ego steps; UltraGCN: the user's
convex sub-problem of its loss; ALS: its user step; EASE: the raw row; popularity: a
constant), see each model's docstring and ``docs/recommender.md``.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from ..exceptions import ConfigError
from ._ids import _id_array, _listing, _lookup, _make_index
from ._input import _factorize_ids, _raw_rows

_UNKNOWN_ITEMS = ("error", "drop")


@dataclass
class Histories:
    """The parsed histories of a fold-in call.

    Attributes:
        raw_users: the raw user ids, one per row of ``matrix`` (request order, unique).
        matrix: ``[n, n_items_]`` CSR of merged weights (canonical; every stored entry > 0).
        dropped_items: number of rows whose item was unknown and dropped.
    """

    raw_users: np.ndarray
    matrix: sp.csr_matrix
    dropped_items: int


def read_histories(rec: Any, users: Any, interactions: Any, unknown_items: str, kind: str = "user") -> Histories:
    """Validate ``(users, interactions)`` of a fold-in call against a fitted Recommender.

    ``interactions`` is a frame with the Recommender's user/item (and optional weight)
    columns, or a sparse ``[len(users), n_items_]`` matrix aligned with ``users`` whose
    columns are the item indices of ``item_index_`` (implicit's ``user_items`` convention).
    ``users=None`` takes the frame's users in order of appearance.  With ``kind="item"`` the
    roles swap: ``users`` are new item ids, rows are items and columns the known users
    (``[len(items), n_users_]``, ``user_index_`` order); ``unknown_items`` then applies to users.
    """
    if unknown_items not in _UNKNOWN_ITEMS:
        raise ConfigError(f"unknown_{'items' if kind == 'user' else 'users'} must be 'error' or 'drop', "
                          f"got {unknown_items!r}")
    row_name, col_name = ("user", "item") if kind == "user" else ("item", "user")
    row_col = rec.user_col if kind == "user" else rec.item_col
    col_index = rec.item_index_ if kind == "user" else rec.user_index_
    width = col_index.shape[0]
    if sp.issparse(interactions):
        if users is None:
            raise ConfigError(f"with a sparse interactions matrix, {row_name}s= must name its rows (raw {row_name} ids)")
        raw_users = _id_array(users)
        M = sp.csr_matrix(interactions)
        if M.ndim != 2 or M.shape != (raw_users.shape[0], width):
            raise ConfigError(f"the interactions matrix must be [len({row_name}s)={raw_users.shape[0]}, "
                              f"n_{col_name}s_={width}] (columns = {col_name}_index_ positions), got shape {M.shape}")
        _check_unique(raw_users, row_name)
        M = sp.csr_matrix(M, dtype=np.float64, copy=True)
        M.sum_duplicates()
        if M.nnz and (not np.isfinite(M.data).all() or (M.data < 0).any()):
            raise ConfigError("interaction weights must be finite and non-negative")
        M.eliminate_zeros()
        return Histories(raw_users, M.astype(np.float32), 0)
    u_raw, i_raw, w, _, _ = _raw_rows(interactions, rec.user_col, rec.item_col, rec.weight_col, None)
    if kind == "item":
        u_raw, i_raw = i_raw, u_raw
    raw_u, raw_i = _id_array(u_raw), _id_array(i_raw)
    codes, uniques = _factorize_ids(raw_u, row_col)
    if users is None:
        raw_users = uniques
        row = codes
    else:
        raw_users = _id_array(users)
        _check_unique(raw_users, row_name)
        row = _lookup(_make_index(raw_users, row_col), raw_u, row_name)
        if (row < 0).any():
            extra = list(dict.fromkeys(raw_u[row < 0].tolist()))
            raise ConfigError(f"{len(extra)} {row_name} id(s) in interactions are not in {row_name}s: {_listing(extra)}")
    col = _lookup(col_index, raw_i, col_name)
    unknown = col < 0
    dropped = 0
    if unknown.any():
        if unknown_items == "error":
            ids = list(dict.fromkeys(raw_i[unknown].tolist()))
            hint = ("partial_fit_items to add them first" if kind == "user" else "partial_fit_users to add them first")
            raise ConfigError(f"{len(ids)} {col_name} id(s) unknown to the model: {_listing(ids)}; pass "
                              f"unknown_{col_name}s='drop' to ignore them (or {hint})")
        dropped = int(unknown.sum())
        row, col, w = row[~unknown], col[~unknown], w[~unknown]
    keep = w > 0
    M = sp.csr_matrix((w[keep], (row[keep], col[keep])), shape=(raw_users.shape[0], width), dtype=np.float64)
    M.sum_duplicates()  # weights of repeated pairs add up, as fit's duplicates="count"
    empty = np.flatnonzero(np.diff(M.indptr) == 0)
    if empty.size:
        ids = raw_users[empty].tolist()
        raise ConfigError(f"{len(ids)} {row_name}(s) have no interaction with a known {col_name}: {_listing(ids)}")
    return Histories(raw_users, M.astype(np.float32), dropped)


def _check_unique(raw_users: np.ndarray, what: str = "user") -> None:
    if raw_users.shape[0] == 0:
        raise ConfigError(f"{what}s is empty")
    _, uniques = _factorize_ids(raw_users, what)
    if uniques.shape[0] != raw_users.shape[0]:
        raise ConfigError(f"{what}s must not repeat an id (one history per {what})")


def fold_in_options(rec: Any, overrides: Optional[Dict[str, Any]], kind: str = "user") -> Dict[str, Any]:
    """Keyword arguments for ``model_.fold_in_users`` (``fold_in_items``): the training settings it
    accepts (``lr``, ``num_negatives``, ``batch_size`` from the run record, ``seed``), then ``overrides``."""
    fn = getattr(rec.model_, f"fold_in_{kind}s", None)
    if fn is None:
        raise ConfigError(f"{type(rec.model_).__name__} has no fold_in_{kind}s(): it cannot embed new {kind}s "
                          "without a refit")
    accepted = inspect.signature(fn).parameters
    train = dict((rec.record_ or {}).get("train") or {})
    out: Dict[str, Any] = {}
    for name in ("lr", "num_negatives", "batch_size"):
        if name in accepted and name in train:
            out[name] = train[name]
    if "seed" in accepted:
        out["seed"] = int(rec.seed)
    for key, value in dict(overrides or {}).items():
        if key not in accepted or key == "interactions":
            raise ConfigError(f"{type(rec.model_).__name__}.fold_in_{kind}s takes "
                              f"{', '.join(n for n in accepted if n != 'interactions')}; got {key!r}")
        out[key] = value
    return out


def embed(rec: Any, matrix: sp.csr_matrix, options: Optional[Dict[str, Any]],
          kind: str = "user") -> Tuple[torch.Tensor, Dict[str, Any]]:
    """``(embeddings, keyword arguments used)`` of the histories ``matrix`` (rows = new users, or
    items with ``kind="item"``), the embeddings on the serving device, float32.  Columns the model was not trained with (users or items
    added by an earlier fold-in) are left out of the model's input: it has no layers for them."""
    kw = fold_in_options(rec, options, kind)
    model = rec.model_
    width = int(model.num_items if kind == "user" else model.num_users)
    serving = rec._user_emb if kind == "user" else rec._item_emb
    was_training = model.training
    model.eval()
    try:
        emb = getattr(model, f"fold_in_{kind}s")(sp.csr_matrix(matrix[:, :width]), **kw)
    finally:
        model.train(was_training)
    emb = emb.detach().to(serving.device, torch.float32)
    if emb.shape != (matrix.shape[0], serving.shape[1]) or not bool(torch.isfinite(emb).all()):
        raise ConfigError(f"{type(model).__name__}.fold_in_{kind}s returned {tuple(emb.shape)} (finite: "
                          f"{bool(torch.isfinite(emb).all())}), expected ({matrix.shape[0]}, {serving.shape[1]})")
    return emb.contiguous(), kw


def model_train(rec: Any) -> sp.csr_matrix:
    """The model's own training interactions ``[model users, model items]`` (what ``prepare`` saw)."""
    if rec._model_train is not None:
        return rec._model_train
    seen = rec.seen_.tocoo()
    keep = rec._train_mask
    M = int(getattr(rec.model_, "num_users", rec.n_users_))
    N = int(getattr(rec.model_, "num_items", rec.n_items_))
    rows, cols = seen.row[keep], seen.col[keep]
    inside = (rows < M) & (cols < N)
    return sp.csr_matrix((np.ones(int(inside.sum()), dtype=np.float32), (rows[inside], cols[inside])),
                         shape=(M, N))
