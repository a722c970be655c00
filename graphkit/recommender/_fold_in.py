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
from typing import Any, Dict, Optional

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


def read_histories(rec: Any, users: Any, interactions: Any, unknown_items: str) -> Histories:
    """Validate ``(users, interactions)`` of a fold-in call against a fitted Recommender.

    ``interactions`` is a frame with the Recommender's user/item (and optional weight)
    columns, or a sparse ``[len(users), n_items_]`` matrix aligned with ``users`` whose
    columns are the item indices of ``item_index_`` (implicit's ``user_items`` convention).
    ``users=None`` takes the frame's users in order of appearance.
    """
    if unknown_items not in _UNKNOWN_ITEMS:
        raise ConfigError(f"unknown_items must be 'error' or 'drop', got {unknown_items!r}")
    I = rec.n_items_
    if sp.issparse(interactions):
        if users is None:
            raise ConfigError("with a sparse interactions matrix, users= must name its rows (raw user ids)")
        raw_users = _id_array(users)
        M = sp.csr_matrix(interactions)
        if M.ndim != 2 or M.shape != (raw_users.shape[0], I):
            raise ConfigError(f"the interactions matrix must be [len(users)={raw_users.shape[0]}, "
                              f"n_items_={I}] (columns = item_index_ positions), got shape {M.shape}")
        _check_unique(raw_users)
        M = sp.csr_matrix(M, dtype=np.float64, copy=True)
        M.sum_duplicates()
        if M.nnz and (not np.isfinite(M.data).all() or (M.data < 0).any()):
            raise ConfigError("interaction weights must be finite and non-negative")
        M.eliminate_zeros()
        return Histories(raw_users, M.astype(np.float32), 0)
    u_raw, i_raw, w, _, _ = _raw_rows(interactions, rec.user_col, rec.item_col, rec.weight_col, None)
    raw_u, raw_i = _id_array(u_raw), _id_array(i_raw)
    codes, uniques = _factorize_ids(raw_u, rec.user_col)
    if users is None:
        raw_users = uniques
        row = codes
    else:
        raw_users = _id_array(users)
        _check_unique(raw_users)
        row = _lookup(_make_index(raw_users, rec.user_col), raw_u, "user")
        if (row < 0).any():
            extra = list(dict.fromkeys(raw_u[row < 0].tolist()))
            raise ConfigError(f"{len(extra)} user id(s) in interactions are not in users: {_listing(extra)}")
    col = _lookup(rec.item_index_, raw_i, "item")
    unknown = col < 0
    dropped = 0
    if unknown.any():
        if unknown_items == "error":
            ids = list(dict.fromkeys(raw_i[unknown].tolist()))
            raise ConfigError(f"{len(ids)} item id(s) unknown to the model: {_listing(ids)}; pass "
                              "unknown_items='drop' to ignore them (or partial_fit_items to add them first)")
        dropped = int(unknown.sum())
        row, col, w = row[~unknown], col[~unknown], w[~unknown]
    keep = w > 0
    M = sp.csr_matrix((w[keep], (row[keep], col[keep])), shape=(raw_users.shape[0], I), dtype=np.float64)
    M.sum_duplicates()  # weights of repeated pairs add up, as fit's duplicates="count"
    empty = np.flatnonzero(np.diff(M.indptr) == 0)
    if empty.size:
        ids = raw_users[empty].tolist()
        raise ConfigError(f"{len(ids)} user(s) have no interaction with a known item: {_listing(ids)}")
    return Histories(raw_users, M.astype(np.float32), dropped)


def _check_unique(raw_users: np.ndarray) -> None:
    if raw_users.shape[0] == 0:
        raise ConfigError("users is empty")
    _, uniques = _factorize_ids(raw_users, "user")
    if uniques.shape[0] != raw_users.shape[0]:
        raise ConfigError("users must not repeat an id (one history per user)")


def fold_in_options(rec: Any, overrides: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Keyword arguments for ``model_.fold_in_users``: the training settings it accepts
    (``lr``, ``num_negatives``, ``batch_size`` from the run record, ``seed``), then ``overrides``."""
    fn = getattr(rec.model_, "fold_in_users", None)
    if fn is None:
        raise ConfigError(f"{type(rec.model_).__name__} has no fold_in_users(): it cannot embed new users "
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
            raise ConfigError(f"{type(rec.model_).__name__}.fold_in_users takes "
                              f"{', '.join(n for n in accepted if n != 'interactions')}; got {key!r}")
        out[key] = value
    return out


def embed(rec: Any, matrix: sp.csr_matrix, options: Optional[Dict[str, Any]]) -> torch.Tensor:
    """User embeddings of the histories ``matrix`` on the serving device, float32."""
    kw = fold_in_options(rec, options)
    model = rec.model_
    was_training = model.training
    model.eval()
    try:
        emb = model.fold_in_users(matrix, **kw)
    finally:
        model.train(was_training)
    emb = emb.detach().to(rec._user_emb.device, torch.float32)
    if emb.shape != (matrix.shape[0], rec._user_emb.shape[1]) or not bool(torch.isfinite(emb).all()):
        raise ConfigError(f"{type(model).__name__}.fold_in_users returned {tuple(emb.shape)} (finite: "
                          f"{bool(torch.isfinite(emb).all())}), expected ({matrix.shape[0]}, {rec._user_emb.shape[1]})")
    return emb.contiguous()


def model_train(rec: Any) -> sp.csr_matrix:
    """The model's own training interactions ``[model users, I]`` (what ``prepare`` saw)."""
    if rec._model_train is not None:
        return rec._model_train
    seen = rec.seen_.tocoo()
    keep = rec._train_mask
    M = int(rec.model_.num_users) if hasattr(rec.model_, "num_users") else rec.n_users_
    rows, cols = seen.row[keep], seen.col[keep]
    inside = rows < M
    return sp.csr_matrix((np.ones(int(inside.sum()), dtype=np.float32), (rows[inside], cols[inside])),
                         shape=(M, rec.n_items_))
