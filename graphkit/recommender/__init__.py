"""A scikit-learn style recommender: raw-id interactions in, top-k out, save/load, serve.

::

    import graphkit
    rec = graphkit.Recommender("lightgcn", epochs=50, embedding_dim=64)
    rec.fit(df)                                   # columns "user", "item" (raw ids of any hashable type)
    rec.recommend(["alice", "bob"], k=10)         # DataFrame: user, item, score, rank
    rec.save("models/shop")                       # weights.safetensors + metadata.json + ...
    rec = graphkit.Recommender.load("models/shop")

Hyper-parameters go to ``__init__``; everything learned by :meth:`Recommender.fit` is
an attribute whose name ends in ``_`` (``model_``, ``user_index_``, ``item_index_``,
``seen_``, ``popularity_``, ``history_``, ``record_``).  Training is done by
:class:`graphkit.training.RecommendationTrainer`; the validation hold-out uses the
split primitives of :mod:`graphkit.datasets`.  See ``docs/recommender.md``.

:meth:`Recommender.from_result` serves a model trained by :func:`graphkit.fit` instead.

Where things live (import them from ``graphkit.recommender``):

* this file: the :class:`Recommender` class (parameters, ``fit``, ``recommend``, ``score``,
  ``similar_items``, ``evaluate``) and its ranking core (chunked top-k with seen-item masking);
* ``_ids.py``: raw-id arrays, their lookup in the id maps and their JSON encoding;
* ``_input.py``: reading and validating interaction frames / sparse matrices and arguments;
* ``_io.py``: :meth:`Recommender.save` / :meth:`Recommender.load` (folder layout, format version);
* ``_from_result.py``: :meth:`Recommender.from_result` (a :func:`graphkit.fit` result to a
  serving Recommender);
* ``_splits.py``: :func:`leave_last_out` and :func:`temporal_split`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, Union

import numpy as np
import scipy.sparse as sp
import torch

from ..exceptions import CheckpointError, ConfigError, NotFittedError
from ..utils import PathLike, environment_record, seed_everything
from . import _fold_in, _from_result, _io
from ._ids import _id_array, _listing, _lookup, _make_index, _unique_keep_order
from ._input import _check_budget, _check_k, _csr, _factorize_ids, _raw_rows, _read_pairs
from ._io import FORMAT_VERSION, SUPPORTED_FORMAT_VERSIONS
from ._splits import LeaveLastOutSplit, leave_last_out, ranking_scorer, temporal_split

__all__ = [
    "Recommender",
    "NotFittedError",
    "leave_last_out",
    "temporal_split",
    "LeaveLastOutSplit",
    "ranking_scorer",
    "FORMAT_VERSION",
    "SUPPORTED_FORMAT_VERSIONS",
]

_DUPLICATES = ("count", "drop", "error")
_ON_UNKNOWN = ("error", "popular", "skip")
_UNKNOWN_ITEMS = ("miss", "drop")
# On CPU a chunk of scores is kept small enough to stay in cache between the matmul
# that writes it and the top-k that reads it (same reasoning as graphkit.metrics).
_CPU_CHUNK_BYTES = 8 << 20


def _chunk_rows(n_cols: int, memory_budget_mb: float, device: torch.device) -> int:
    """Rows of a ``[rows, n_cols]`` float32 score chunk that fit the memory budget.

    The budget covers the scores plus as much again for the top-k and masking
    temporaries.  Never less than one row, so no request fails for lack of memory
    (a single row of a huge catalogue may then exceed a tiny budget).  On CPU the
    chunk is additionally kept around ``_CPU_CHUNK_BYTES``.
    """
    row_bytes = max(int(n_cols), 1) * 4
    rows = max(1, int(memory_budget_mb * (1 << 20) // (2 * row_bytes)))
    if device.type == "cpu":
        rows = min(rows, max(8, _CPU_CHUNK_BYTES // row_bytes))
    return rows


# ----------------------------------------------------------------------------- warm start
def _id_tables(model: Any) -> List[Tuple[torch.Tensor, str, int]]:
    """``(parameter, "user"|"item", row offset)`` for every embedding table of ``model``
    whose rows belong to users or items (used to carry rows over in a warm start)."""
    from ..models import LightGCN, UltraGCN

    if hasattr(model, "id_tables"):
        return list(model.id_tables())
    if isinstance(model, LightGCN):
        w = model.embedding.weight
        return [(w, "user", 0), (w, "item", model.num_users)]
    if isinstance(model, UltraGCN):
        return [(model.user_embedding.weight, "user", 0), (model.item_embedding.weight, "item", 0)]
    raise ConfigError(
        f"warm_start does not know how {type(model).__name__} stores its user/item embeddings; "
        "give the model an id_tables() method returning (parameter, 'user'|'item', row offset) triples"
    )


# =============================================================================== Recommender
class Recommender:
    """Top-k recommendation from an interaction table with raw ids, in the scikit-learn style.

    Hyper-parameters are set here and never changed by :meth:`fit`; what ``fit`` learns
    is stored in attributes ending in ``_``.  Raw ids may be any hashable values (str,
    int, tuples, UUIDs, mixed types, ...); they are mapped to contiguous indices
    internally and every result is given back in raw ids.

    Args:
        model: a registered model name (``"lightgcn"``, ``"ultragcn"``, see
            :func:`graphkit.models.available_models`) or a
            :class:`~graphkit.models.base.RecommenderModel` subclass.  Saving needs a
            registered name.
        user_col: column of the user ids in the frames given to :meth:`fit` /
            :meth:`evaluate`; also the name of the user column in results.
        item_col: same for items.
        weight_col: optional column of non-negative interaction weights (counts,
            ratings, ...).  Rows of weight 0 are not interactions and are dropped.  The
            ranking models learn from binary implicit feedback, so weights only shape
            the popularity ranking (``popularity_``, ``on_unknown="popular"``) and are
            kept in ``seen_``.
        time_col: optional timestamp column (any comparable type).  With it the
            validation hold-out takes each user's *latest* interactions and
            ``duplicates="drop"`` keeps the earliest row of a pair; without it the
            hold-out is random (seeded) and ``"drop"`` keeps the first row.
        duplicates: what to do with repeated (user, item) rows: ``"count"`` (default)
            merges them, summing their weights (their number when there is no
            ``weight_col``); ``"drop"`` keeps one row; ``"error"`` raises a
            :class:`~graphkit.exceptions.DataFormatError` quoting examples.
        validation: fraction of each user's interactions held out to select the epoch
            (early stopping on validation recall, see
            :class:`~graphkit.training.RecTrainConfig`), in ``[0, 1)``; users with a
            single interaction hold out nothing.  ``None`` or 0 trains for exactly
            ``epochs`` epochs (or ``max_time``) on everything.  Held-out interactions are
            still excluded from recommendations (they are in ``seen_``).
        seed: seed of the initialisation, the hold-out, the order of interactions and
            the negative samples.
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available).
        **hparams: model hyper-parameters (``embedding_dim``, ``num_layers``,
            ``reg_weight``, ...) and training ones (``epochs``, ``lr``, ``batch_size``,
            ``max_time``, ``eval_every``, ``patience``, ``num_threads``, ``progress``, ...;
            see :class:`~graphkit.training.RecTrainConfig`).  Unset ones take the
            model's ``default_train`` values; ``progress`` defaults to False.
            ``epochs=0`` builds and initialises the model without training.

    Attributes (after :meth:`fit` or :meth:`load`):
        model_: the trained :class:`~graphkit.models.base.RecommenderModel` (weights of
            the selected epoch).
        user_index_: ``pandas.Index`` of the raw user ids; position = internal index.
        item_index_: same for items.
        seen_: ``scipy.sparse.csr_matrix [n_users_, n_items_]`` of every interaction given
            to ``fit`` (validation included), values = merged weights.  These are the
            items ``exclude_seen`` removes.
        popularity_: ``numpy.ndarray [n_items_]``, the summed weight of each item
            (its number of interactions when unweighted).
        n_users_, n_items_: sizes of the id maps.
        history_: ``pandas.DataFrame``, one row per epoch (loss, seconds, validation metrics).
        record_: dict describing the run: hyper-parameters, split fingerprint, seed, best
            epoch, stopping reason, package versions, device, input statistics.

    Example::

        rec = Recommender("lightgcn", validation=0.1, epochs=200, max_time=60)
        rec.fit(df)
        top = rec.recommend(["u1", "u2"], k=20)
        rec.evaluate(test_df, k=(10, 20))
    """

    def __init__(
        self,
        model: Union[str, Type[Any]] = "lightgcn",
        user_col: str = "user",
        item_col: str = "item",
        weight_col: Optional[str] = None,
        time_col: Optional[str] = None,
        duplicates: str = "count",
        validation: Optional[float] = 0.1,
        seed: int = 2020,
        device: Optional[str] = None,
        **hparams: Any,
    ) -> None:
        self.model = model
        self.user_col = user_col
        self.item_col = item_col
        self.weight_col = weight_col
        self.time_col = time_col
        self.duplicates = duplicates
        self.validation = validation
        self.seed = seed
        self.device = device
        self.hparams = dict(hparams)
        self._check_params()

    # ------------------------------------------------------------------ parameters
    _PARAMS = ("model", "user_col", "item_col", "weight_col", "time_col", "duplicates", "validation", "seed", "device")

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        """The constructor arguments (``**hparams`` flattened in), as scikit-learn expects.

        Args:
            deep: accepted for scikit-learn compatibility; there are no nested estimators.
        """
        return {**{p: getattr(self, p) for p in self._PARAMS}, **self.hparams}

    def set_params(self, **params: Any) -> "Recommender":
        """Set constructor arguments (named ones or ``**hparams``); returns ``self``.

        Takes effect at the next :meth:`fit`.

        Args:
            **params: parameter names and values.
        """
        before = ({p: getattr(self, p) for p in self._PARAMS}, dict(self.hparams))
        for key, value in params.items():
            if key in self._PARAMS:
                setattr(self, key, value)
            else:
                self.hparams[key] = value
        try:
            self._check_params()
        except ConfigError:  # leave the estimator as it was
            for p, v in before[0].items():
                setattr(self, p, v)
            self.hparams = before[1]
            raise
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run (``sklearn.utils.validation.check_is_fitted``)."""
        return "model_" in self.__dict__

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (scikit-learn >= 1.6): no target, interaction frames
        (string / categorical ids) or sparse matrices as input, validated by graphkit itself."""
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False), no_validation=True,
                    input_tags=InputTags(two_d_array=True, sparse=True, categorical=True, string=True),
                    non_deterministic=True)

    def _model_class(self) -> Type[Any]:
        from ..models import RecommenderModel, get_model

        if isinstance(self.model, str):
            cls = get_model(self.model)
            if not (isinstance(cls, type) and issubclass(cls, RecommenderModel)):
                raise ConfigError(f"model {self.model!r} is a {getattr(cls, 'task', 'non-recommendation')} model; "
                                  "Recommender needs a recommendation model (e.g. 'lightgcn', 'ultragcn', 'als')")
            return cls
        if isinstance(self.model, type) and issubclass(self.model, RecommenderModel):
            return self.model
        raise ConfigError(
            f"model must be a registered model name or a RecommenderModel subclass, got {self.model!r}"
        )

    def _check_params(self) -> None:
        for name in ("user_col", "item_col"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a column name (str), got {getattr(self, name)!r}")
        for name in ("weight_col", "time_col"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise ConfigError(f"{name} must be a column name (str) or None, got {v!r}")
        named = [c for c in (self.user_col, self.item_col, self.weight_col, self.time_col) if c is not None]
        if len(set(named)) != len(named):
            raise ConfigError(f"user_col, item_col, weight_col and time_col must differ, got {named}")
        for name in (self.user_col, self.item_col):
            if name in ("score", "rank", "source") or name in (f"similar_{self.item_col}", f"similar_{self.user_col}"):
                raise ConfigError(f"column name {name!r} clashes with a column of the results; rename it")
        if self.duplicates not in _DUPLICATES:
            raise ConfigError(f"duplicates must be one of {', '.join(map(repr, _DUPLICATES))}, got {self.duplicates!r}")
        if self.validation is not None:
            from ..datasets._split import check_ratio

            check_ratio("validation", self.validation)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.device is not None:
            from ..training.engine import check_device

            check_device(self.device)
        self._split_hparams(self._model_class(), dict(self.hparams))

    @staticmethod
    def _split_hparams(cls: Type[Any], hparams: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        from ..training import RecTrainConfig, _split_hparams

        for reserved in ("seed", "device", "num_users", "num_items"):
            if reserved in hparams:
                raise ConfigError(f"{reserved!r} cannot be a hyper-parameter here (it is set by the Recommender)")
        return _split_hparams(cls, RecTrainConfig, hparams)

    def __repr__(self) -> str:
        defaults = {"model": "lightgcn", "user_col": "user", "item_col": "item", "weight_col": None, "time_col": None,
                    "duplicates": "count", "validation": 0.1, "seed": 2020, "device": None}
        parts = []
        for key, value in self.get_params().items():
            if key in defaults and defaults[key] == value and type(defaults[key]) is type(value):
                continue
            shown = value.__name__ if isinstance(value, type) else repr(value)
            parts.append(f"{key}={shown}")
        return f"Recommender({', '.join(parts)})"

    # ------------------------------------------------------------------ fitting
    def fit(self, interactions: Any, warm_start: bool = False) -> "Recommender":
        """Learn from ``interactions``; returns ``self``.

        Args:
            interactions: a ``pandas.DataFrame`` with columns ``user_col``, ``item_col``
                (and ``weight_col`` / ``time_col`` when set; other columns are ignored),
                one row per interaction; or a ``scipy.sparse`` ``[users, items]`` matrix whose
                row/column indices are the raw ids and whose values are weights (only ids
                with a stored non-zero entry are known afterwards).
            warm_start: start from the current model (ignored when not fitted yet).  The
                new data replaces the old (pass old and new rows together to add data);
                users and items present before keep their embedding rows (matched by raw
                id), new ones are initialised as the model's own initialisation does
                (its random draw: a data-dependent start such as ``init="svd"`` is not
                re-applied, since it would overwrite the kept rows), the graph is rebuilt from the new data and training continues with a
                fresh optimizer.  The model class and its embedding sizes must not change.

        Raises:
            DataFormatError: not a frame/matrix, empty, missing columns (named), missing
                ids (column and row count named), bad weights, incomparable timestamps,
                duplicates with ``duplicates="error"`` (examples quoted).
            ConfigError: invalid hyper-parameters; a warm start with a different model.
            TrainingError: the loss became NaN/Inf.
        """
        import pandas as pd

        from ..datasets._split import group_sizes, holdout_counts, tail_split, TRAIN
        from ..datasets.recommendation import RecDataset, binary_csr, holdout_validation, split_fingerprint
        from ..training import RecTrainConfig, RecommendationTrainer

        self._check_params()
        cls = self._model_class()
        pairs = _read_pairs(interactions, self.user_col, self.item_col, self.weight_col, self.time_col,
                            self.duplicates)
        U, I = int(pairs.user_ids.shape[0]), int(pairs.item_ids.shape[0])
        # canonical (user, item) order; every array below is aligned with the CSR entries
        order = np.argsort(pairs.users * np.int64(I) + pairs.items, kind="stable")
        u, i, w = pairs.users[order], pairs.items[order], pairs.weights[order]
        t = None if pairs.times is None else pairs.times[order]
        seen = _csr(u, i, w.astype(np.float32), (U, I))

        # ---- validation hold-out (graphkit.datasets split code)
        ratio = float(self.validation or 0.0)
        if ratio > 0 and t is not None:
            n_val = holdout_counts(group_sizes(u, U), ratio)
            train_mask = tail_split(u, t, np.zeros_like(n_val), n_val) == TRAIN
            how = "latest interactions of each user (time_col)"
        elif ratio > 0:
            tr, _ = holdout_validation(binary_csr(u, i, U, I), ratio, int(self.seed))
            tr_keys = np.repeat(np.arange(U, dtype=np.int64), np.diff(tr.indptr)) * I + tr.indices
            train_mask = np.isin(u * np.int64(I) + i, tr_keys, assume_unique=True)
            how = "random per user (graphkit.datasets.holdout_validation)"
        else:
            train_mask = np.ones(u.shape[0], dtype=bool)
            how = "none"
        train = binary_csr(u[train_mask], i[train_mask], U, I)
        valid = binary_csr(u[~train_mask], i[~train_mask], U, I)
        full = binary_csr(u, i, U, I)
        empty = binary_csr(u[:0], i[:0], U, I)
        # No test split here: the trainer skips the test evaluation of an empty one.
        ds = RecDataset(
            name="Recommender.fit", num_users=U, num_items=I, train=train, valid=valid, test=empty,
            full_train=full, fingerprint=split_fingerprint(train, valid, empty),
            meta={"format": "interactions", "split": f"validation hold-out: {how}", "val_ratio": ratio or None,
                  "split_seed": int(self.seed)},
            user_ids=pairs.user_ids, item_ids=pairs.item_ids,
        )

        # ---- hyper-parameters
        merged: Dict[str, Any] = dict(getattr(cls, "default_train", {}))
        merged["progress"] = False
        merged.update(self.hparams)
        model_kw, train_kw = self._split_hparams(cls, merged)
        if "ks" in train_kw:
            pass  # validated (and made a tuple) by RecTrainConfig.validate
        elif I < 20 and "select_metric" not in train_kw:  # the default recall@20 needs >= 20 items
            train_kw["ks"], train_kw["select_metric"] = (I,), f"recall@{I}"
        epochs = train_kw.get("epochs", RecTrainConfig.epochs)
        no_training = isinstance(epochs, (int, np.integer)) and not isinstance(epochs, bool) and epochs == 0
        if no_training:
            train_kw["epochs"] = 1  # validated as a normal config, then not run
        train_kw.setdefault("evaluate_test", False)  # the dataset built above has no test split, by design
        cfg = RecTrainConfig(seed=int(self.seed), device=self.device, **train_kw)
        cfg.validate()

        # ---- model (fresh, or warm-started from the fitted one)
        old = self.__dict__.get("model_") if warm_start else None
        seed_everything(int(self.seed))
        model = cls(U, I, **model_kw)
        if old is not None:
            self._warm_copy(old, model, pairs.user_ids, pairs.item_ids)

        if no_training:
            dev = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
            model.to(dev)
            model.prepare(ds.train, ds.graph().to(dev))
            history = pd.DataFrame(columns=["epoch", "loss", "seconds"])
            record: Dict[str, Any] = {
                "task": "recommendation", "model": type(model).__name__, "hparams": model.hparams(),
                "train": {**{k: v for k, v in dataclasses.asdict(cfg).items() if k != "progress"}, "epochs": 0},
                "seed": int(self.seed), **ds.split_record(), "selection": "none (epochs=0: not trained)",
                "best_epoch": 0, "best_valid": None, "epochs_run": 0, "stopped_by": "epochs", "train_seconds": 0.0,
                **environment_record(dev),
            }
        else:
            result = RecommendationTrainer(model, ds, cfg).fit()
            model, history, record = result.model, result.history, dict(result.record)
        model.eval()
        record["warm_start"] = old is not None
        record["input"] = {**pairs.stats, "users": U, "items": I, "train_pairs": int(train.nnz),
                           "valid_pairs": int(valid.nnz), "duplicates": self.duplicates,
                           "weight_col": self.weight_col, "time_col": self.time_col}

        # ---- learned state
        with torch.no_grad():
            ue, ie = model.embeddings()
        self._set_learned(model, pairs.user_ids, pairs.item_ids, seen, train_mask, history, record, ue, ie)
        return self

    def _set_learned(self, model: Any, user_ids: np.ndarray, item_ids: np.ndarray, seen: sp.csr_matrix,
                     train_mask: np.ndarray, history: Any, record: Dict[str, Any], ue: torch.Tensor,
                     ie: torch.Tensor, model_train: Optional[sp.csr_matrix] = None) -> None:
        """Set every learned attribute (``fit``, ``load`` and ``from_result`` end here)."""
        self.model_ = model
        self.user_index_ = _make_index(user_ids, self.user_col)
        self.item_index_ = _make_index(item_ids, self.item_col)
        self.n_users_, self.n_items_ = int(user_ids.shape[0]), int(item_ids.shape[0])
        self.seen_ = seen
        self.popularity_ = np.asarray(seen.sum(axis=0), dtype=np.float64).ravel()
        self.history_ = history
        self.record_ = record
        self._train_mask = train_mask
        self._user_ids, self._item_ids = user_ids, item_ids
        # the model's own training matrix once users were folded in (None: it is seen_[train_mask])
        self._model_train: Optional[sp.csr_matrix] = model_train
        self._set_serving(ue, ie)

    def _warm_copy(self, old: Any, new: Any, user_ids: np.ndarray, item_ids: np.ndarray) -> None:
        """Copy the embedding rows of ids known to ``old`` into ``new`` (matched by raw id)."""
        if type(old) is not type(new):
            raise ConfigError(f"warm_start needs the same model class, fitted {type(old).__name__}, "
                              f"asked for {type(new).__name__}")
        old_t, new_t = _id_tables(old), _id_tables(new)
        # users / items folded in after the fit have no row in the old model: only its own ones map
        maps = {"user": (self._user_ids[: old.num_users], user_ids), "item": (self._item_ids[: old.num_items], item_ids)}
        with torch.no_grad():
            for (po, kind, off_o), (pn, kind_n, off_n) in zip(old_t, new_t):
                if kind != kind_n or po.shape[1:] != pn.shape[1:]:
                    raise ConfigError(
                        f"warm_start needs embeddings of the same shape; fitted {kind} rows {tuple(po.shape[1:])}, "
                        f"new {tuple(pn.shape[1:])} (keep embedding_dim and the model class)")
                old_ids, new_ids = maps[kind]
                pos = _lookup(_make_index(new_ids, kind), old_ids, kind)
                keep = np.flatnonzero(pos >= 0)
                if keep.size:
                    src = torch.from_numpy(keep + off_o).to(po.device)
                    dst = torch.from_numpy(pos[keep] + off_n).to(pn.device)
                    pn.index_copy_(0, dst, po.index_select(0, src).to(pn.device, pn.dtype))
        if hasattr(new, "keep_weights"):
            new.keep_weights()  # prepare() must not replace the copied rows by a data-dependent start (init="svd")

    def _set_serving(self, ue: torch.Tensor, ie: torch.Tensor) -> None:
        """Keep the final embeddings used by recommend / score / similar_items."""
        self._user_emb = ue.detach().to(torch.float32).contiguous()
        self._item_emb = ie.detach().to(torch.float32).contiguous()
        self._cache: Dict[Any, Any] = {}

    def _check_fitted(self) -> None:
        if "model_" not in self.__dict__:
            raise NotFittedError(
                "this Recommender is not fitted yet: call fit(interactions) or Recommender.load(path) first")

    # ------------------------------------------------------------------ id mapping
    def _map(self, values: Any, kind: str) -> Tuple[np.ndarray, np.ndarray]:
        """(raw id array, index array with -1 for unknown ids)."""
        arr = _id_array(values)
        index = self.user_index_ if kind == "user" else self.item_index_
        return arr, _lookup(index, arr, kind)

    def _items_strict(self, items: Any, what: str = "items") -> np.ndarray:
        raw, idx = self._map(items, "item")
        bad = idx < 0
        if bad.any():
            unknown = list(dict.fromkeys(raw[bad].tolist()))
            raise ConfigError(f"{len(unknown)} unknown item id(s) in {what}: {_listing(unknown)}")
        if idx.size == 0:
            raise ConfigError(f"{what} is empty")
        return idx

    # ------------------------------------------------------------------ ranking core
    def _seen_on(self, device: torch.device, seen: Optional[sp.csr_matrix] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        if seen is not None:
            return (torch.from_numpy(seen.indptr.astype(np.int64)).to(device),
                    torch.from_numpy(seen.indices.astype(np.int64)).to(device))
        key = ("seen", device)
        if key not in self._cache:
            self._cache[key] = self._seen_on(device, self.seen_)
        return self._cache[key]

    @torch.no_grad()
    def _topk(self, users: np.ndarray, k: int, cand: Optional[np.ndarray], exclude_seen: bool,
              memory_budget_mb: float, user_emb: Optional[torch.Tensor] = None,
              seen: Optional[sp.csr_matrix] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores for user indices, chunk by chunk.

        ``user_emb`` / ``seen`` replace the fitted users' embeddings and seen items (ad-hoc
        histories); ``users`` then index their rows.  Returns ``(ids [n, kk] int64, scores
        [n, kk] float32)`` with ``kk = min(k, #candidates)``; ``-1`` ids (score ``-inf``) pad
        users who have fewer unseen candidates than ``kk``.
        """
        ue = self._user_emb if user_emb is None else user_emb
        ie = self._item_emb
        dev = ue.device
        n = int(users.shape[0])
        n_cand = ie.shape[0] if cand is None else int(cand.shape[0])
        kk = min(int(k), n_cand)
        out_ids = torch.empty((n, kk), dtype=torch.int64)
        out_val = torch.empty((n, kk), dtype=torch.float32)
        if n == 0:
            return out_ids.numpy(), out_val.numpy()
        pos_map = cand_t = None
        if cand is None:
            item_rows = ie
        else:
            cand_t = torch.from_numpy(cand).to(dev)
            item_rows = ie.index_select(0, cand_t)
            pos_map = torch.full((ie.shape[0],), -1, dtype=torch.int64, device=dev)
            pos_map[cand_t] = torch.arange(n_cand, device=dev)
        item_t = None
        step = _chunk_rows(n_cand, memory_budget_mb, dev)
        u_all = torch.from_numpy(np.ascontiguousarray(users, dtype=np.int64)).to(dev)
        indptr, indices = self._seen_on(dev, seen) if exclude_seen else (None, None)
        neg_inf = float("-inf")
        for s in range(0, n, step):
            e = min(n, s + step)
            u = u_all[s:e]
            if e - s == 1 and dev.type == "cpu":
                # One user on CPU, the common serving request: NumPy's matrix-vector product over the
                # row-major item table.  torch's [1, d] x [d, I] matmul (out= or not) and torch.mv pay
                # for waking the intra-op thread pool: measured 0.3-30 ms per call on a busy 2-core
                # machine against 0.01 ms (ml-1m) / 1.3 ms (gowalla) here; see bench_serving.py.
                scores = torch.from_numpy(item_rows.numpy() @ ue[u[0]].numpy()).unsqueeze(0)
            else:
                if item_t is None:
                    if cand is None:
                        key = ("item_t", dev)
                        if key not in self._cache:
                            self._cache[key] = ie.t().contiguous()
                        item_t = self._cache[key]
                    else:
                        item_t = item_rows.t().contiguous()
                scores = torch.mm(ue.index_select(0, u), item_t)
            if indptr is not None:
                starts = indptr[u]
                lens = indptr[u + 1] - starts
                total = int(lens.sum())
                if total:
                    row = torch.repeat_interleave(torch.arange(e - s, device=dev), lens, output_size=total)
                    shift = torch.repeat_interleave(starts - (torch.cumsum(lens, 0) - lens), lens, output_size=total)
                    cols = indices[shift + torch.arange(total, device=dev)]
                    if pos_map is not None:
                        cols = pos_map[cols]
                        hit = cols >= 0
                        row, cols = row[hit], cols[hit]
                    scores.view(-1).index_fill_(0, row * n_cand + cols, neg_inf)
            vals, ids = torch.topk(scores, kk, dim=1, largest=True, sorted=True)
            out_val[s:e] = vals
            out_ids[s:e] = ids
        if cand_t is not None:
            out_ids = cand_t.cpu()[out_ids]
        out_ids[out_val == neg_inf] = -1
        return out_ids.numpy(), out_val.numpy()

    def _popular(self, k: int, cand: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """Most popular candidates: (item indices, popularity), ties by index."""
        idx = np.arange(self.n_items_, dtype=np.int64) if cand is None else cand
        order = np.argsort(-self.popularity_[idx], kind="stable")[:k]
        top = idx[order]
        return top, self.popularity_[top]

    # ------------------------------------------------------------------ public API
    def recommend(
        self,
        users: Any = None,
        k: int = 10,
        exclude_seen: bool = True,
        items: Any = None,
        on_unknown: str = "error",
        memory_budget_mb: float = 256,
        *,
        filter_items: Any = None,
        interactions: Any = None,
        fold_in: Optional[Dict[str, Any]] = None,
        unknown_items: str = "error",
    ) -> Any:
        """Top-``k`` items for each user, in raw ids.

        Scores are ``user_embedding @ item_embedding`` (chunked ``matmul`` + seen-item
        masking + ``torch.topk``; the full users × items matrix is never built).

        Args:
            users: one raw user id, or a list / numpy array / pandas Series or Index of
                them (a ``tuple`` is one id).  ``None``: every known user (with
                ``interactions``: the users of that frame).  Repeated users are answered
                repeatedly, in the order given.
            k: list length.  A user gets ``min(k, number of candidates)`` rows, fewer
                when ``exclude_seen`` removes candidates (never padding rows).
            exclude_seen: leave out the items the user interacted with in ``fit``
                (validation hold-out included), or in ``interactions`` when given.
            items: restrict the candidates to these raw item ids (duplicates ignored);
                ``None`` means every known item.
            on_unknown: users absent from training: ``"error"`` raises a
                :class:`~graphkit.exceptions.ConfigError` listing them, ``"popular"``
                gives them the most popular candidates (by ``popularity_``) with
                ``source="popular"`` and ``score`` NaN (popularity is not on the model's
                scale), ``"skip"`` leaves them out.
            memory_budget_mb: bound on the working memory of one chunk of users (the
                chunk size follows from it; at least one user per chunk).
            filter_items: a blocklist: raw item ids never recommended (ids the model does
                not know are ignored, so a catalogue-wide list can be passed as it is).
            interactions: ad-hoc histories — a frame (user/item columns of this
                Recommender) or a sparse ``[len(users), n_items_]`` matrix aligned with
                ``users`` — to recommend from *instead of* the fitted ones, for new or
                changed users, without storing anything (see :meth:`partial_fit_users`,
                which stores them).  Their rows get ``source="fold_in"``.
            fold_in: keyword arguments for the model's ``fold_in_users`` (e.g.
                ``{"steps": 50}`` for LightGCN, ``{"iters": 100}`` for UltraGCN).
            unknown_items: items of ``interactions`` unknown to the model: ``"error"`` or
                ``"drop"``.

        Returns:
            ``pandas.DataFrame`` with columns ``[user_col, item_col, "score", "rank",
            "source"]``, users in request order, rank 1 = best, ``score`` float32;
            ``source`` is ``"model"`` (scored by the embeddings), ``"fold_in"`` (scored by
            embeddings folded in from ``interactions``) or ``"popular"`` (fallback, score NaN).

        Raises:
            NotFittedError: before :meth:`fit`.
            ConfigError: unknown users with ``on_unknown="error"``, unknown or empty
                ``items``, no candidate left after ``filter_items``, a bad ``k`` /
                ``on_unknown`` / ``memory_budget_mb``, bad ``interactions``.
        """
        import pandas as pd

        self._check_fitted()
        k = _check_k(k)
        budget = _check_budget(memory_budget_mb)
        if on_unknown not in _ON_UNKNOWN:
            raise ConfigError(f"on_unknown must be one of {', '.join(map(repr, _ON_UNKNOWN))}, got {on_unknown!r}")
        user_emb = seen = None
        source = "model"
        if interactions is not None:
            hist = _fold_in.read_histories(self, users, interactions, unknown_items)
            user_emb, seen = _fold_in.embed(self, hist.matrix, fold_in)[0], hist.matrix
            raw, uidx, source = hist.raw_users, np.arange(hist.raw_users.shape[0], dtype=np.int64), "fold_in"
            ids_of_rows = hist.raw_users
        else:
            if fold_in is not None:
                raise ConfigError("fold_in= applies to interactions=; pass the histories to fold in")
            ids_of_rows = self._user_ids
            if users is None:
                raw = None
                uidx = np.arange(self.n_users_, dtype=np.int64)
            else:
                raw, uidx = self._map(users, "user")
        unknown = uidx < 0
        n_unknown = int(unknown.sum())
        if n_unknown and on_unknown == "error":
            ids = list(dict.fromkeys(raw[unknown].tolist()))
            raise ConfigError(
                f"{len(ids)} unknown user id(s) (not in the training data): {_listing(ids)}; "
                "pass on_unknown='popular' or 'skip' to serve them anyway, or fold them in "
                "(partial_fit_users, or interactions=)")
        cand = self._candidates(items, filter_items)
        known = np.flatnonzero(~unknown) if n_unknown else None
        ids, vals = self._topk(uidx if known is None else uidx[known], k, cand, bool(exclude_seen), budget,
                               user_emb, seen)
        valid = ids >= 0
        r, c = np.nonzero(valid)
        req_row = r if known is None else known[r]
        item_i = ids[r, c]
        score = vals[r, c].astype(np.float32, copy=False)
        rank = c.astype(np.int64) + 1
        user_vals = ids_of_rows[uidx[req_row]]
        src = np.full(req_row.shape[0], source, dtype=object)
        if n_unknown and on_unknown == "popular":
            pop_items, _ = self._popular(k, cand)
            unk_rows = np.flatnonzero(unknown)
            m, n_unk = pop_items.shape[0], unk_rows.shape[0]
            pop_rows = np.repeat(unk_rows, m)
            req_row = np.concatenate([req_row, pop_rows])
            item_i = np.concatenate([item_i, np.tile(pop_items, n_unk)])
            score = np.concatenate([score, np.full(m * n_unk, np.nan, dtype=np.float32)])
            rank = np.concatenate([rank, np.tile(np.arange(1, m + 1, dtype=np.int64), n_unk)])
            src = np.concatenate([src, np.full(m * n_unk, "popular", dtype=object)])
            unk_vals = raw[pop_rows]
            if unk_vals.dtype != user_vals.dtype:
                user_vals, unk_vals = user_vals.astype(object), unk_vals.astype(object)
            user_vals = np.concatenate([user_vals, unk_vals])
            order = np.lexsort((rank, req_row))  # back to request order
            user_vals, item_i, score, rank, src = (user_vals[order], item_i[order], score[order], rank[order],
                                                   src[order])
        return pd.DataFrame({
            self.user_col: user_vals,
            self.item_col: self._item_ids[item_i],
            "score": score,
            "rank": rank,
            "source": src,
        })

    def partial_fit_users(self, users: Any, interactions: Any = None, *, fold_in: Optional[Dict[str, Any]] = None,
                          unknown_items: str = "error") -> "Recommender":
        """Add new users, or replace known users' histories, without refitting (fold-in).

        Each user's embedding is computed by the model's own fold-in with every item
        embedding frozen (``model_.fold_in_users``; LightGCN: propagation of the user's new
        edges over the frozen item layers; UltraGCN: the minimiser of its loss for that user;
        ALS: its user step; see ``docs/recommender.md``).  Afterwards the users are known to
        :meth:`recommend`, :meth:`evaluate`, :meth:`similar_users`, :meth:`save` ...; their
        histories are in ``seen_`` and ``popularity_``.  The item embeddings and the model's
        weights do not change, and other users' recommendations stay exactly the same.  A
        later ``fit(..., warm_start=True)`` starts from the model's trained users only.

        Args:
            users: raw user ids, one history each (known ids: the history *replaces* the
                fitted one; unknown ids: new users, appended in this order).  A frame may be
                given here alone (``partial_fit_users(df)``): its users, in order of appearance.
            interactions: a frame with ``user_col`` / ``item_col`` (and ``weight_col`` when
                set), whose users are all in ``users``; or a sparse ``[len(users), n_items_]``
                matrix aligned with ``users``, columns in ``item_index_`` order (implicit's
                ``user_items``).
            fold_in: keyword arguments for ``model_.fold_in_users`` (defaults: the model's,
                with the run's ``lr`` / ``num_negatives`` / ``batch_size`` where it takes them).
            unknown_items: items unknown to the model: ``"error"`` (listed) or ``"drop"``.

        Returns:
            ``self``.

        Raises:
            NotFittedError: before :meth:`fit`.
            ConfigError: a user without any known item, users in the frame missing from
                ``users``, repeated users, unknown items with ``unknown_items="error"``, a
                model without fold-in.
        """
        return self._partial_fit("user", users, interactions, fold_in, unknown_items)

    def partial_fit_items(self, items: Any, interactions: Any = None, *, fold_in: Optional[Dict[str, Any]] = None,
                          unknown_users: str = "error") -> "Recommender":
        """Add new items, or replace known items' histories, without refitting (item fold-in).

        The mirror of :meth:`partial_fit_users`, for models whose fold-in is symmetric
        (``model_.fold_in_items``: LightGCN — the item's propagation over the frozen user
        layers and the ridge ego of the trained items —, ALS — its item step —, popularity).
        The new items become candidates of :meth:`recommend` for every user at once; user
        embeddings and the model's weights do not change.  Later user fold-ins store their
        interactions with these items in ``seen_`` but embed users from the model's own items.

        Args:
            items: raw item ids, one history each (known ids: replaced; unknown: appended).  A
                frame may be given here alone: its items, in order of appearance.
            interactions: a frame with ``user_col`` / ``item_col`` (and ``weight_col``) whose
                items are all in ``items``, or a sparse ``[len(items), n_users_]`` matrix aligned
                with ``items``, columns in ``user_index_`` order.
            fold_in: keyword arguments for ``model_.fold_in_items``.
            unknown_users: users unknown to the model: ``"error"`` (listed) or ``"drop"``.

        Returns:
            ``self``.

        Raises:
            NotFittedError: before :meth:`fit`.
            ConfigError: a model without item fold-in (UltraGCN's loss is written per user; EASE's
                weights are per item pair), an item without a known user, items in the frame
                missing from ``items``, repeated items, unknown users with ``unknown_users="error"``.
        """
        return self._partial_fit("item", items, interactions, fold_in, unknown_users)

    def _partial_fit(self, kind: str, ids: Any, interactions: Any, fold_in: Optional[Dict[str, Any]],
                     unknown: str) -> "Recommender":
        """:meth:`partial_fit_users` (``kind="user"``) and :meth:`partial_fit_items` (``"item"``)."""
        self._check_fitted()
        if interactions is None and (hasattr(ids, "columns") or sp.issparse(ids)):
            ids, interactions = None, ids
        if interactions is None:
            raise ConfigError(f"partial_fit_{kind}s needs the {kind}s' interactions")
        hist = _fold_in.read_histories(self, ids, interactions, unknown, kind)
        emb, used = _fold_in.embed(self, hist.matrix, fold_in, kind)
        model_train = _fold_in.model_train(self)
        raw = hist.raw_users
        _, idx = self._map(raw, kind)
        old = idx >= 0
        n_new = int((~old).sum())
        U, I = self.n_users_, self.n_items_
        size = U if kind == "user" else I
        rows_of = np.where(old, idx, size + np.cumsum(~old) - 1)     # position of each history in the new tables
        known_ids = self._user_ids if kind == "user" else self._item_ids
        if n_new:
            add = raw[~old]
            if add.dtype != known_ids.dtype:
                known_ids, add = known_ids.astype(object), add.astype(object)
            known_ids = np.concatenate([known_ids, add])
        table = self._user_emb if kind == "user" else self._item_emb
        new_rows = torch.from_numpy(np.flatnonzero(~old)).to(emb.device)
        table = torch.cat([table, emb[new_rows]]) if n_new else table.clone()
        if old.any():
            table[torch.from_numpy(idx[old]).to(table.device)] = emb[torch.from_numpy(np.flatnonzero(old)).to(emb.device)]
        # seen_: the replaced histories dropped, the new ones added; train_mask aligned with it
        coo = self.seen_.tocoo()
        mine = coo.row if kind == "user" else coo.col
        keep = ~np.isin(mine, idx[old])
        h = hist.matrix.tocoo()
        a, b = rows_of[h.row], h.col.astype(np.int64)                 # (own index, other side's index)
        hr, hc = (a, b) if kind == "user" else (b, a)
        r = np.concatenate([coo.row[keep].astype(np.int64), hr])
        c = np.concatenate([coo.col[keep].astype(np.int64), hc])
        w = np.concatenate([coo.data[keep], h.data]).astype(np.float32)
        m = np.concatenate([self._train_mask[keep], np.ones(h.nnz, dtype=bool)])
        U2, I2 = (U + n_new, I) if kind == "user" else (U, I + n_new)
        order = np.argsort(r * np.int64(I2) + c, kind="stable")
        seen = _csr(r[order], c[order], w[order], (U2, I2))
        record = dict(self.record_)
        before = dict(record.get("fold_in") or {})
        record["fold_in"] = {
            **before,
            f"{kind}s_added": int(before.get(f"{kind}s_added", 0)) + n_new,
            f"{kind}s_replaced": int(before.get(f"{kind}s_replaced", 0)) + int(old.sum()),
            "model_users": int(model_train.shape[0]),
            "model_items": int(model_train.shape[1]),
            f"{kind}_options": dict(used),
            f"dropped_unknown_{'items' if kind == 'user' else 'users'}":
                int(before.get(f"dropped_unknown_{'items' if kind == 'user' else 'users'}", 0)) + hist.dropped_items,
        }
        user_ids, item_ids = (known_ids, self._item_ids) if kind == "user" else (self._user_ids, known_ids)
        ue, ie = (table, self._item_emb) if kind == "user" else (self._user_emb, table)
        self._set_learned(self.model_, user_ids, item_ids, seen, m[order], self.history_, record, ue, ie,
                          model_train)
        return self

    def _candidates(self, items: Any, filter_items: Any) -> Optional[np.ndarray]:
        """Candidate item indices from an allow-list (strict ids) minus a blocklist (unknown ids
        ignored); None for every item."""
        cand = None if items is None else _unique_keep_order(self._items_strict(items))
        if filter_items is None:
            return cand
        _, blocked = self._map(filter_items, "item")
        blocked = blocked[blocked >= 0]
        if blocked.size == 0:
            return cand
        base = np.arange(self.n_items_, dtype=np.int64) if cand is None else cand
        cand = base[~np.isin(base, blocked)]
        if cand.size == 0:
            raise ConfigError("filter_items removes every candidate item")
        return cand

    def score(self, X: Any, y: Any = None) -> float:
        """One number for held-out interactions, as scikit-learn's ``score`` expects (higher is better).

        The ranking metric ``select_metric`` of this Recommender (``recall@20`` unless set as a
        hyper-parameter) of :meth:`evaluate` on ``X``: every user of ``X`` known to the model
        is ranked against all items, training items excluded, ``X``'s items as ground
        truth.  So ``GridSearchCV(Recommender(...), grid, cv=LeaveLastOutSplit())`` selects
        hyper-parameters on held-out interactions.  Per-pair scores are :meth:`predict_score`.

        Args:
            X: held-out interactions: a frame with ``user_col`` / ``item_col`` or a sparse
                matrix in the raw-id convention of :meth:`fit`.
            y: unused (scikit-learn passes None).  The two-argument form of graphkit 0.1,
                ``score(users, items)``, still returns per-pair scores, with a
                ``FutureWarning``: call :meth:`predict_score`.

        Returns:
            The metric as a float.
        """
        if y is not None:
            import warnings

            warnings.warn("Recommender.score(users, items) is now predict_score(users, items); score(X) returns "
                          "a ranking metric for scikit-learn", FutureWarning, stacklevel=2)
            return self.predict_score(X, y)  # type: ignore[return-value]
        metric = str(self.hparams.get("select_metric", "recall@20"))
        k = int(metric.partition("@")[2] or 20)
        return float(self.evaluate(X, k=k)[metric])

    def predict_score(self, users: Any, items: Any) -> np.ndarray:
        """Scores of (user, item) pairs: ``user_embedding · item_embedding``.

        Args:
            users: raw user ids (collection or one id, as in :meth:`recommend`).
            items: raw item ids, the same length as ``users`` (a single user or item
                is broadcast against the other side).

        Returns:
            ``numpy.ndarray`` float32 of one score per pair.

        Raises:
            NotFittedError: before :meth:`fit`.
            ConfigError: unknown users or items (listed), or lengths that do not match.
        """
        self._check_fitted()
        raw_u, u = self._map(users, "user")
        raw_i, i = self._map(items, "item")
        for raw, idx, what in ((raw_u, u, "user"), (raw_i, i, "item")):
            if (idx < 0).any():
                ids = list(dict.fromkeys(raw[idx < 0].tolist()))
                raise ConfigError(f"{len(ids)} unknown {what} id(s): {_listing(ids)}")
        if u.shape[0] != i.shape[0]:
            if u.shape[0] == 1:
                u = np.repeat(u, i.shape[0])
            elif i.shape[0] == 1:
                i = np.repeat(i, u.shape[0])
            else:
                raise ConfigError(f"users and items must have the same length, got {u.shape[0]} and {i.shape[0]}")
        ue, ie = self._user_emb, self._item_emb
        out = np.empty(u.shape[0], dtype=np.float32)
        step = 1 << 16
        with torch.no_grad():
            for s in range(0, u.shape[0], step):
                ut = torch.from_numpy(u[s:s + step]).to(ue.device)
                it = torch.from_numpy(i[s:s + step]).to(ie.device)
                out[s:s + step] = (ue.index_select(0, ut) * ie.index_select(0, it)).sum(1).cpu().numpy()
        return out

    def similar_items(self, items: Any = None, k: int = 10, memory_budget_mb: float = 256) -> Any:
        """The ``k`` items most similar to each given item (cosine of item embeddings).

        The item itself is never listed.

        Args:
            items: one raw item id or a collection of them; ``None``: every item.
            k: list length (at most ``n_items_ - 1`` rows per item).
            memory_budget_mb: bound on one chunk's working memory.

        Returns:
            ``pandas.DataFrame`` with columns ``[item_col, "similar_" + item_col, "score",
            "rank"]``; score is the cosine similarity (float32).

        Raises:
            NotFittedError: before :meth:`fit`.
            ConfigError: unknown items (listed), a bad ``k``.
        """
        self._check_fitted()
        q = None if items is None else self._items_strict(items)
        return self._similar("item", q, k, memory_budget_mb)

    def similar_users(self, users: Any = None, k: int = 10, memory_budget_mb: float = 256) -> Any:
        """The ``k`` users most similar to each given user (cosine of the serving user embeddings,
        folded-in users included).

        The user itself is never listed.

        Args:
            users: one raw user id or a collection of them; ``None``: every user.
            k: list length (at most ``n_users_ - 1`` rows per user).
            memory_budget_mb: bound on one chunk's working memory.

        Returns:
            ``pandas.DataFrame`` with columns ``[user_col, "similar_" + user_col, "score",
            "rank"]``; score is the cosine similarity (float32).

        Raises:
            NotFittedError: before :meth:`fit`.
            ConfigError: unknown users (listed), a bad ``k``.
        """
        self._check_fitted()
        if users is None:
            q = None
        else:
            raw, q = self._map(users, "user")
            if (q < 0).any():
                unknown = list(dict.fromkeys(raw[q < 0].tolist()))
                raise ConfigError(f"{len(unknown)} unknown user id(s): {_listing(unknown)}")
            if q.size == 0:
                raise ConfigError("users is empty")
        return self._similar("user", q, k, memory_budget_mb)

    def _similar(self, kind: str, q: Optional[np.ndarray], k: int, memory_budget_mb: float) -> Any:
        """Cosine neighbours of the ``kind`` rows ``q`` (None: all) among the same kind."""
        import pandas as pd

        k = _check_k(k)
        budget = _check_budget(memory_budget_mb)
        emb, ids, col = ((self._item_emb, self._item_ids, self.item_col) if kind == "item"
                         else (self._user_emb, self._user_ids, self.user_col))
        if q is None:
            q = np.arange(emb.shape[0], dtype=np.int64)
        dev = emb.device
        key = ("normed", kind, dev)
        # (issue 19 item 6) one cache entry set in one step: with two entries, a thread could find
        # "normed" already cached but "normed_t" not yet (KeyError under concurrent first calls)
        pair = self._cache.get(key)
        if pair is None:
            normed = torch.nn.functional.normalize(emb, dim=1, eps=1e-12)
            pair = self._cache.setdefault(key, (normed, normed.t().contiguous()))
        normed, normed_t = pair
        N = emb.shape[0]
        kk = min(k, N - 1)
        n = q.shape[0]
        out_ids = np.empty((n, max(kk, 0)), dtype=np.int64)
        out_val = np.empty((n, max(kk, 0)), dtype=np.float32)
        if kk > 0:
            step = _chunk_rows(N, budget, dev)
            q_t = torch.from_numpy(q).to(dev)
            with torch.no_grad():
                for s in range(0, n, step):
                    e = min(n, s + step)
                    sims = normed.index_select(0, q_t[s:e]) @ normed_t
                    sims.view(-1).index_fill_(0, torch.arange(e - s, device=dev) * N + q_t[s:e], float("-inf"))
                    vals, top = torch.topk(sims, kk, dim=1)
                    out_val[s:e] = vals.cpu().numpy()
                    out_ids[s:e] = top.cpu().numpy()
        rows = np.repeat(np.arange(n), out_ids.shape[1])
        return pd.DataFrame({
            col: ids[q[rows]],
            f"similar_{col}": ids[out_ids.reshape(-1)],
            "score": out_val.reshape(-1),
            "rank": np.tile(np.arange(1, out_ids.shape[1] + 1, dtype=np.int64), n),
        })

    def user_embeddings(self) -> Any:
        """The final user embeddings (those :meth:`recommend` scores with).

        Returns:
            ``pandas.DataFrame [n_users_, d]`` (float32) indexed by raw user id.
        """
        import pandas as pd

        self._check_fitted()
        return pd.DataFrame(self._user_emb.cpu().numpy().copy(), index=self.user_index_.copy())

    def item_embeddings(self) -> Any:
        """The final item embeddings.

        Returns:
            ``pandas.DataFrame [n_items_, d]`` (float32) indexed by raw item id.
        """
        import pandas as pd

        self._check_fitted()
        return pd.DataFrame(self._item_emb.cpu().numpy().copy(), index=self.item_index_.copy())

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self,
        test_interactions: Any,
        k: Union[int, Sequence[int]] = (10, 20),
        exclude_seen: bool = True,
        unknown_items: str = "miss",
        memory_budget_mb: float = 256,
    ) -> Dict[str, Any]:
        """Ranking metrics of the model's top-k lists against held-out interactions.

        Every test user known to the model is ranked against all items (seen ones
        excluded when ``exclude_seen``); the metrics of :mod:`graphkit.metrics`
        (``ranking_metrics``: recall, ndcg, precision, hit, mrr) are averaged over the
        evaluated users.  The ground truth of a user is the set of its distinct test items.

        * test users unknown to the model cannot be ranked: they are skipped and counted
          (``"unknown_users"``);
        * test items unknown to the model can never be recommended: with
          ``unknown_items="miss"`` (default) they stay in the ground truth as misses,
          with ``"drop"`` they are removed; either way they are counted (``"unknown_items"``,
          in test pairs);
        * with ``exclude_seen`` a test pair already seen in training can never be
          recommended, so it is removed from the ground truth and counted
          (``"seen_pairs"``); users left without ground truth are not evaluated.

        Args:
            test_interactions: a DataFrame with ``user_col`` / ``item_col`` (other columns
                ignored) or a sparse matrix in the raw-id convention of :meth:`fit`.
            k: one cut-off or several.
            exclude_seen: exclude training items from the rankings (the usual protocol).
            unknown_items: ``"miss"`` or ``"drop"`` (see above).
            memory_budget_mb: bound on one chunk's working memory.

        Returns:
            ``{"recall@10": ..., "ndcg@10": ..., "precision@10": ..., "hit@10": ...,
            "mrr@10": ..., ..., "users": evaluated users, "unknown_users": ...,
            "unknown_items": ..., "seen_pairs": ...}``.

        Raises:
            NotFittedError: before :meth:`fit`.
            DataFormatError: a malformed test frame (as in :meth:`fit`).
            ConfigError: bad ``k``, or no test user left to evaluate.
        """
        from ..metrics import RANKING_METRICS, _check_ks, ranking_metrics

        self._check_fitted()
        ks = _check_ks(k)
        budget = _check_budget(memory_budget_mb)
        if unknown_items not in _UNKNOWN_ITEMS:
            raise ConfigError(f"unknown_items must be 'miss' or 'drop', got {unknown_items!r}")
        users_raw, items_raw, _, _, _ = _raw_rows(test_interactions, self.user_col, self.item_col, None, None,
                                                  need_weights=False)
        raw_u, raw_i = _id_array(users_raw), _id_array(items_raw)
        u = _lookup(self.user_index_, raw_u, "user")
        i = _lookup(self.item_index_, raw_i, "item")
        known_u = u >= 0
        unknown_users = 0
        if not known_u.all():
            codes, _ = _factorize_ids(raw_u[~known_u], self.user_col)
            unknown_users = int(codes.max()) + 1
        u, i, raw_i = u[known_u], i[known_u], raw_i[known_u]
        unk_i = i < 0
        n_unknown_items = int(unk_i.sum())
        I = self.n_items_
        width = I
        if n_unknown_items:
            if unknown_items == "drop":
                u, i = u[~unk_i], i[~unk_i]
            else:  # every unknown raw item gets its own column past the known ones: a sure miss
                codes, uniques = _factorize_ids(raw_i[unk_i], self.item_col)
                i = i.copy()
                i[unk_i] = I + codes
                width = I + int(uniques.shape[0])
        key = np.unique(u * np.int64(width) + i)  # distinct (user, item) pairs
        u, i = key // width, key % width
        seen_pairs = 0
        if exclude_seen and u.size:
            inside = i < I
            hit = np.zeros(u.shape[0], dtype=bool)
            if inside.any():
                hit[inside] = np.asarray(self.seen_[u[inside], i[inside]]).ravel() != 0
            seen_pairs = int(hit.sum())
            u, i = u[~hit], i[~hit]
        users = np.unique(u)
        if users.size == 0:
            raise ConfigError(
                f"no test user left to evaluate ({unknown_users} unknown user(s), {seen_pairs} test pair(s) already "
                "seen in training)")
        rows = np.searchsorted(users, u)
        truth = sp.csr_matrix((np.ones(rows.shape[0], dtype=np.float32), (rows, i)), shape=(users.shape[0], width))
        kmax = ks[-1]
        ids, _ = self._topk(users, kmax, None, bool(exclude_seen), budget)
        if ids.shape[1] < kmax:
            ids = np.concatenate([ids, np.full((ids.shape[0], kmax - ids.shape[1]), -1, dtype=np.int64)], axis=1)
        out: Dict[str, Any] = dict(ranking_metrics(ids, truth, ks=ks, metrics=RANKING_METRICS))
        out.update({"users": int(users.shape[0]), "unknown_users": unknown_users,
                    "unknown_items": n_unknown_items, "seen_pairs": seen_pairs})
        return out

    # ------------------------------------------------------------------ persistence
    def _registered_name(self) -> str:
        from ..models import available_models, get_model

        for name in available_models():
            if get_model(name) is type(self.model_):
                return name
        raise CheckpointError(
            f"cannot save a {type(self.model_).__name__}: only registered models can be saved "
            "(graphkit.models.register_model(name, cls)), so that load() never imports code by name")

    def save(self, path: PathLike) -> Path:
        """Save to a folder, atomically.

        Layout: ``metadata.json`` (format version, model name and hyper-parameters,
        Recommender parameters, raw-id maps with their types, record, history, package
        versions, sha256 of every other file), ``weights.safetensors`` (the model's
        ``state_dict``), ``embeddings.safetensors`` (final user/item embeddings used for
        serving) and ``interactions.safetensors`` (``seen_`` as CSR arrays and the
        train/validation mask).  No pickle anywhere.  The folder is written under a
        temporary name beside ``path`` and renamed into place; an existing save at
        ``path`` is replaced.

        Args:
            path: the folder to write.

        Returns:
            The folder.

        Raises:
            NotFittedError: before :meth:`fit`.
            CheckpointError: ids or parameters that cannot be stored as JSON (named),
                an unregistered model class, or ``path`` being a file or a non-empty
                folder that is not a saved Recommender.
        """
        return _io.save(self, path)

    @classmethod
    def load(cls, path: PathLike, device: Optional[str] = None) -> "Recommender":
        """Load a folder written by :meth:`save`.

        The result recommends exactly as the saved one (the final embeddings are stored),
        and can be warm-started or evaluated like a freshly fitted one.

        Args:
            path: the folder.
            device: where to put the model (default: the saved ``device`` parameter; a
                saved CUDA device falls back to CPU, with a warning, when CUDA is absent).

        Raises:
            CheckpointError: a missing folder or file, a file whose sha256 does not match
                ``metadata.json``, a format version this graphkit does not read (both
                versions named), an unregistered model name, or weights that do not fit
                the model.
        """
        return _io.load(cls, path, device)

    @classmethod
    def from_result(cls, result: Any, *, dataset: Any = None, data_dir: Optional[PathLike] = None,
                    user_col: str = "user", item_col: str = "item") -> "Recommender":
        """A fitted Recommender serving the model of a :func:`graphkit.fit` result.

        No training: the result's model is used as it is (the same object becomes
        ``model_``).  Afterwards :meth:`recommend`, :meth:`score`, :meth:`similar_items`,
        :meth:`evaluate`, :meth:`save` and a warm-started :meth:`fit` work as after
        :meth:`fit`::

            result = graphkit.fit("lightgcn", dataset="gowalla", epochs=50)
            rec = graphkit.Recommender.from_result(result)
            rec.recommend([0, 1], k=20)

        * raw ids: the dataset's ``user_ids`` / ``item_ids`` (datasets built from a frame by
          :func:`graphkit.datasets.from_interactions`), else the indices ``0..U-1`` / ``0..I-1``;
        * ``seen_``: the dataset's ``full_train`` (train + validation), so test items are
          recommendable; ``popularity_`` is counted from it;
        * ``history_`` and ``record_``: the result's; the parameters (``get_params()``): the
          registered model name (else the class), the model's hyper-parameters, the run's
          training options (not its seed, device, progress or checkpoint settings, which are
          ``seed``/``device`` or left out), ``validation`` = the dataset's validation ratio;
        * a model rebuilt from a saved result has not been prepared: it is prepared with the
          dataset's training graph (its trained weights kept).

        Args:
            result: a :class:`~graphkit.training.FitResult` of a recommendation model.
            dataset: the :class:`~graphkit.datasets.recommendation.RecDataset` it was trained
                on.  Default: ``result.dataset`` when the result carries it, else
                ``graphkit.datasets.load(result.record["dataset"], root=data_dir)`` with the
                recorded validation ratio and split seed.
            data_dir: where :func:`graphkit.datasets.load` finds the dataset files (default
                ``$GRAPHKIT_DATA``).
            user_col: name of the user column in results and in frames given to
                :meth:`evaluate` / :meth:`fit`.
            item_col: same for items.

        Raises:
            ConfigError: not a recommendation result, a dataset whose user/item counts differ
                from the model's, or a result that names no dataset when none is given.
            CheckpointError: the dataset's split fingerprint differs from the one recorded in
                the result (both named): other files or another split than the model was
                trained on.
        """
        return _from_result.from_result(cls, result, dataset=dataset, data_dir=data_dir, user_col=user_col,
                                        item_col=item_col)
