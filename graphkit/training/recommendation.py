"""The recommendation task (LightGCN, UltraGCN, ... and the fitted baselines).

One epoch visits every training interaction once in a seeded random order; each
positive gets ``num_negatives`` uniform negatives that exclude the user's
training items (or, for a model whose ``negative_sampling`` is ``"all_items"``,
uniform over all items).  Every ``eval_every`` epochs the model is ranked on the
validation split (never on test); the best weights by ``select_metric`` are kept
and training stops after ``patience`` evaluations without improvement.  The test
split is evaluated once, at the end, with the selected weights.

The loop itself, checkpoints, resume, callbacks and the record are the engine's
(:mod:`graphkit.training.engine`); this module says only how to make BPR batches and
how to rank.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from ..exceptions import ConfigError, TrainingError
from ..utils import seed_everything
from .engine import MAX_INT, RESUMABLE_CHANGES, EngineConfig, Trainer, TrainingTask, _attach_dataset, _is_int, _is_real
from .result import FitResult
from .sampling import NegativeSampler


@dataclass
class RecTrainConfig(EngineConfig):
    """Training hyper-parameters of a recommendation run (the shared ones are
    :class:`~graphkit.training.engine.EngineConfig`'s: ``optimizer``, ``scheduler``,
    ``checkpoint_dir``, ``max_time``, ...).

    Args:
        lr: learning rate.
        batch_size: positives per step.
        num_negatives: negatives per positive.
        epochs: maximum number of epochs.
        eval_every: validate every this many epochs.
        patience: stop after this many validations without improvement (0 = never stop early).
        ks: cut-offs of the ranking metrics.
        select_metric: validation metric used for model selection.
        weight_decay: optimizer weight decay (models carry their own L2 terms; default 0).
        seed: random seed (initialisation, order of interactions, negatives).
        eval_memory_mb: memory budget of one full-ranking chunk.
        evaluate_test: evaluate the selected model on the test split at the end (``False``:
            ``FitResult.metrics`` is empty; a tuner's trials use it so that only the final
            model ever sees the test split).
        refit: after selecting the epoch on validation, train a fresh model (same seed and
            hyper-parameters) on training + validation interactions (``full_train``: for the
            LightGCN-format sets, the whole official training file, as the papers train) for
            the selected number of epochs, with no validation, and evaluate *that* model on
            test — scikit-learn's ``refit=True``.  The record keeps the selection run
            (``best_epoch``, ``best_valid``, ``history``) and adds ``refit`` (epochs, seconds,
            training interactions); the result's model is the refitted one.  Costs a second
            training; callbacks see only the selection run.  With ``scheduler="budget"`` the
            refit decays over its epochs (it has no ``max_time``).

    A run stopped mid-epoch by ``max_time`` and resumed with a larger budget continues at
    the next epoch.  Resume with ``graphkit.fit(..., resume=True)`` (see ``docs/reliability.md``).
    """

    lr: float = 1e-3
    epochs: int = 1000
    patience: int = 5
    eval_every: int = 10
    seed: int = 2020
    batch_size: int = 2048
    num_negatives: int = 1
    ks: Tuple[int, ...] = (20,)
    select_metric: str = "recall@20"
    eval_memory_mb: int = 256
    evaluate_test: bool = True
    refit: bool = False

    def validate(self) -> None:
        """Raise :class:`ConfigError` for out-of-range values."""
        self.validate_common()
        for name, most in (("batch_size", MAX_INT), ("num_negatives", 1 << 20)):
            v = getattr(self, name)
            if not (_is_int(v) and 0 < v <= most):
                raise ConfigError(f"{name} must be a positive integer (at most {most:,}), got {v!r}")
        if isinstance(self.ks, (str, bytes)) or not isinstance(self.ks, (list, tuple)) or not self.ks or not all(
                _is_int(k) and k > 0 for k in self.ks):
            raise ConfigError(f"ks must be a non-empty list of positive integers (cut-offs), got {self.ks!r}")
        self.ks = tuple(int(k) for k in self.ks)
        if not isinstance(self.refit, (bool, np.bool_)):
            raise ConfigError(f"refit must be True or False, got {self.refit!r}")
        if not (_is_real(self.eval_memory_mb) and self.eval_memory_mb > 0):
            raise ConfigError(f"eval_memory_mb must be a positive finite number, got {self.eval_memory_mb!r}")
        from ..metrics import DEFAULT_RANKING_METRICS

        metric, _, k = str(self.select_metric).partition("@")
        if metric not in DEFAULT_RANKING_METRICS or not k.isdigit() or int(k) not in self.ks:
            raise ConfigError(f"select_metric {self.select_metric!r} must be one of "
                              f"{', '.join(DEFAULT_RANKING_METRICS)} at one of ks={self.ks}, e.g. 'recall@{self.ks[0]}'")


def _interactions(train: sp.csr_matrix) -> Tuple[np.ndarray, np.ndarray]:
    coo = train.tocoo()
    return coo.row.astype(np.int64), coo.col.astype(np.int64)


def _evaluate(model: Any, ground_truth: sp.csr_matrix, exclude: sp.csr_matrix, cfg: Any) -> Dict[str, float]:
    from ..metrics import evaluate_embeddings

    model.eval()
    with torch.no_grad():
        ue, ie = model.embeddings()
    model.train()
    if not (bool(torch.isfinite(ue).all()) and bool(torch.isfinite(ie).all())):
        raise TrainingError(f"{type(model).__name__}'s embeddings are not finite (training diverged: lower lr?); "
                            "nothing is ranked from them")
    return evaluate_embeddings(ue, ie, ground_truth, exclude=exclude, ks=cfg.ks, memory_budget_mb=cfg.eval_memory_mb)


def _test_metrics(model: Any, ds: Any, cfg: Any) -> Dict[str, float]:
    """Test metrics of ``model`` with the training items masked (training + validation items
    when the dataset has a validation split); ``{}`` without a test split.  ``cfg`` needs
    ``ks`` and ``eval_memory_mb``.

    An empty test split (an empty ``test.txt``, a split that left no test interaction)
    warns (``UserWarning`` naming the dataset) instead of returning ``{}`` silently.  (A run
    without a test split by design, such as :meth:`graphkit.Recommender.fit`'s, sets
    ``evaluate_test=False`` and never gets here.)"""
    if ds.test is None or ds.test.nnz == 0:
        import warnings

        name = getattr(ds, "name", None)
        test_file = (getattr(ds, "meta", None) or {}).get("files", {}).get("test.txt")
        where = f" ({test_file} is empty)" if test_file else ""
        warnings.warn(f"dataset {name!r} has no test interactions{where}: no test metrics were computed "
                      "(FitResult.metrics is empty)", UserWarning, stacklevel=2)
        return {}
    exclude = ds.full_train if ds.valid is not None and ds.valid.nnz > 0 else ds.train
    return _evaluate(model, ds.test, exclude, cfg)


class RecommendationTask(TrainingTask):
    """BPR training of a :class:`~graphkit.models.base.RecommenderModel` on a
    :class:`~graphkit.datasets.RecDataset` (``train``, ``valid``, ``test``, ``full_train``,
    ``graph()``, ``split_record()``).

    Args:
        dataset: the recommendation dataset.
    """

    name = "recommendation"
    loss_column = "loss"

    def check(self, model: Any, cfg: Any) -> None:
        if not hasattr(self.dataset, "num_users"):
            raise ConfigError(f"{type(model).__name__} needs a recommendation dataset, got {type(self.dataset).__name__}")

    def setup(self, trainer: Trainer) -> None:
        ds, model = self.dataset, trainer.model
        self.cfg = trainer.cfg
        model.to(trainer.device)
        graph = ds.graph().to(trainer.device)
        model.prepare(ds.train, graph)
        self.sampler = NegativeSampler(ds.train, exclude_positives=model.negative_sampling != "all_items")
        self.users, self.items = _interactions(ds.train)
        self.n = int(self.users.shape[0])
        if self.n == 0:
            raise TrainingError("the training split has no interactions")
        self._order: Tuple[int, Optional[np.ndarray]] = (0, None)

    def num_batches(self) -> int:
        return math.ceil(self.n / self.cfg.batch_size)

    def train_batch(self, trainer: Trainer, epoch: int, batch: int) -> Tuple[torch.Tensor, float, float]:
        cfg, dev = self.cfg, trainer.device
        if self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([cfg.seed, epoch]).permutation(self.n))
        idx = self._order[1][batch * cfg.batch_size:(batch + 1) * cfg.batch_size]
        u_np = self.users[idx]
        neg = self.sampler.sample(u_np, cfg.num_negatives, seed=(cfg.seed * 1_000_003 + epoch) * 65_537 + batch)
        loss = trainer.model.loss(torch.from_numpy(u_np).to(dev), torch.from_numpy(self.items[idx]).to(dev),
                                  torch.from_numpy(neg).to(dev))
        return loss, float(loss.detach()) * idx.shape[0], float(idx.shape[0])

    def has_validation(self) -> bool:
        ds = self.dataset
        return ds.valid is not None and ds.valid.nnz > 0

    def validate(self, trainer: Trainer, epoch: int) -> Dict[str, float]:
        val = _evaluate(trainer.model, self.dataset.valid, self.dataset.train, trainer.cfg)
        return {f"valid_{k}": v for k, v in val.items()}

    def selection_key(self, val: Dict[str, float]) -> Tuple[float, ...]:
        return (val[f"valid_{self.cfg.select_metric}"],)

    def selection_text(self) -> str:
        return f"{self.cfg.select_metric} on validation"

    def selection_record(self, best: Optional[Dict[str, float]]) -> Dict[str, Any]:
        return {"best_valid": best[f"valid_{self.cfg.select_metric}"] if best else None}

    def test(self, trainer: Trainer) -> Dict[str, float]:
        return _test_metrics(trainer.model, self.dataset, trainer.cfg) if trainer.cfg.evaluate_test else {}

    def identity(self, model: Any) -> Dict[str, Any]:
        train = self.dataset.train
        return {**super().identity(model), "num_users": int(train.shape[0]), "num_items": int(train.shape[1]),
                "train_nnz": int(train.nnz)}


class RecommendationTrainer(Trainer):
    """The engine's :class:`~graphkit.training.engine.Trainer` on a :class:`RecommendationTask`.

    A :class:`~graphkit.models.baselines.FittedRecommender` (ALS, EASE, popularity) is fitted
    by one call to its solver instead of epochs of batches, then validated and tested with
    the same record.

    Args:
        model: the model (its hyper-parameters set); ``prepare`` is called in :meth:`fit`.
        dataset: a :class:`graphkit.datasets.RecDataset`.
        config: training hyper-parameters.
        callbacks: see :class:`~graphkit.training.engine.Trainer`.
    """

    def __init__(self, model: Any, dataset: Any, config: RecTrainConfig, callbacks: Optional[List[Any]] = None) -> None:
        super().__init__(model, RecommendationTask(dataset), config, callbacks)

    def fit(self, resume: bool = False) -> FitResult:
        """Train, select on validation, evaluate on test; see :meth:`Trainer.fit`.

        Args:
            resume: continue from ``checkpoint_dir`` (not for fitted baselines).
        """
        fitted = getattr(self.model, "trainer", None) == "fitted"
        if fitted and resume:
            raise ConfigError(f"{type(self.model).__name__} is fitted in one call: there is nothing to resume")
        if self.cfg.refit and self.task.has_validation():
            return self._fit_then_refit(resume, fitted)
        return self._fit_fitted() if fitted else super().fit(resume=resume)

    def _fit_then_refit(self, resume: bool, fitted: bool) -> FitResult:
        """Select the epoch on validation, then retrain on ``full_train`` for that many epochs
        and test the retrained model (``refit=True``; a fitted baseline is fitted again on
        ``full_train``)."""
        cfg, ds = self.cfg, self.dataset
        if not dataclasses.is_dataclass(ds) or getattr(ds, "full_train", None) is None:
            raise ConfigError(f"refit=True needs a dataset with a full_train split, got {type(ds).__name__}")
        self.cfg = dataclasses.replace(cfg, evaluate_test=False)
        try:
            selected = self._fit_fitted() if fitted else super().fit(resume=resume)
        finally:
            self.cfg = cfg
        epochs = max(int(selected.record["best_epoch"]), 1)
        empty = sp.csr_matrix(ds.valid.shape, dtype=ds.valid.dtype)
        whole = dataclasses.replace(ds, train=ds.full_train, valid=empty)
        refit_cfg = dataclasses.replace(cfg, epochs=epochs, patience=0, max_time=None, checkpoint_dir=None,
                                        refit=False)
        seed_everything(cfg.seed)
        model = type(self.model)(**self.model.hparams())
        refitted = RecommendationTrainer(model, whole, refit_cfg).fit()
        record = dict(selected.record)
        record["train"] = {**record["train"], "evaluate_test": cfg.evaluate_test}
        record["refit"] = {"epochs": epochs, "train_seconds": refitted.record["train_seconds"],
                           "train_nnz": int(ds.full_train.nnz), "selection_train_nnz": int(ds.train.nnz)}
        result = FitResult(refitted.model, refitted.metrics, selected.history, record)
        _attach_dataset(result, ds)
        return result

    def _fit_fitted(self) -> FitResult:
        import pandas as pd

        cfg, ds, task = self.cfg, self.dataset, self.task
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        seed_everything(cfg.seed)
        task.cfg = cfg
        self.model.to(self.device)
        self.model.prepare(ds.train, None)
        t0 = time.perf_counter()
        self.model.fit_interactions(ds.train, seed=cfg.seed, num_threads=cfg.num_threads)
        row: Dict[str, Any] = {"epoch": 1, "loss": float("nan"), "seconds": time.perf_counter() - t0}
        has_valid = task.has_validation()
        best = None
        if has_valid:
            t1 = time.perf_counter()
            best = task.validate(self, 1)
            row.update(best)
            row["eval_seconds"] = time.perf_counter() - t1
        test = task.test(self)
        record = self._record(has_valid, 1, best, [row], "fitted", row["seconds"])
        result = FitResult(self.model, test, pd.DataFrame([row]), record)
        _attach_dataset(result, ds)
        return result


__all__ = ["RecTrainConfig", "RecommendationTask", "RecommendationTrainer", "RESUMABLE_CHANGES"]
