"""Non-graph recommendation baselines, trained on the same splits and ranked by the same
evaluation as the graph models: popularity, ALS (through ``implicit``) and EASE.

They are :class:`FittedRecommender` subclasses: instead of BPR steps the trainer calls
:meth:`FittedRecommender.fit_interactions` once with the training matrix, then validates and
tests like any other model (``graphkit.fit("als", dataset="gowalla")``, ``graphkit bench
--models als,popularity,lightgcn``).
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from ..exceptions import ConfigError, NotFittedError, TrainingError
from ..utils import is_finite_real
from .base import RecommenderModel

__all__ = ["FittedRecommender", "Popularity", "ALS", "EASE"]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _positive_real(name: str, value: Any, allow_zero: bool = False) -> float:
    ok = is_finite_real(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} finite number, "
                          f"got {value!r}")
    return float(value)


def _single_threaded_blas() -> Any:
    """A context limiting BLAS to one thread (threadpoolctl, installed with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, "blas")


def _fold_rows(interactions: Any, num_items: int) -> sp.csr_matrix:
    """``interactions`` as a binary float32 CSR matrix ``[n, num_items]`` (duplicates merged)."""
    R = sp.csr_matrix(interactions, dtype=np.float32)
    if R.ndim != 2 or R.shape[1] != num_items:
        raise ConfigError(f"interactions must be [n, num_items={num_items}], got shape {R.shape}")
    R.sum_duplicates()
    R.eliminate_zeros()
    R.data[:] = 1.0
    return R


class FittedRecommender(RecommenderModel):
    """Base of the recommenders that are fitted by their own solver, not by BPR steps.

    The trainer calls :meth:`fit_interactions` once with the ``[U, I]`` training matrix, then
    evaluates :meth:`embeddings` on validation and test; ``loss`` is not used.

    Class attributes:
        trainer: ``"fitted"`` (how the trainer tells them from gradient-trained models).
    """

    trainer: ClassVar[str] = "fitted"

    def fit_interactions(self, train: sp.csr_matrix, seed: int = 0, num_threads: Optional[int] = None,
                         callback: Optional[Callable[[int], None]] = None) -> None:
        """Fit the model to the training interactions.

        Args:
            train: the ``[U, I]`` binary training matrix (CSR).
            seed: random seed (initial factors).
            num_threads: CPU threads for the solver (default: the solver's own).
            callback: called as ``callback(iteration)`` after each iteration of an iterative
                solver (time-to-quality curves); ignored by closed-form models.
        """
        raise NotImplementedError

    def loss(self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor) -> torch.Tensor:
        raise TrainingError(f"{type(self).__name__} is fitted by fit_interactions(), not by gradient steps")

    def _check_shape(self, train: Any) -> sp.csr_matrix:
        csr = sp.csr_matrix(train)
        if csr.shape != (self.num_users, self.num_items):
            raise ConfigError(f"training matrix has shape {csr.shape}, the model was built for "
                              f"({self.num_users}, {self.num_items})")
        csr = csr.astype(np.float32)
        csr.data[:] = 1.0
        return csr


class Popularity(FittedRecommender):
    """Most-popular baseline: every user gets the items with the most training interactions.

    ``score(u, i) = n_i``, the number of training users of item ``i`` (ties by item id in
    the full ranking).  No hyper-parameters.

    Args:
        num_users: U.
        num_items: I.
    """

    def __init__(self, num_users: int, num_items: int) -> None:
        super().__init__(num_users, num_items)
        self.register_buffer("item_counts", torch.zeros(self.num_items))

    def fit_interactions(self, train: sp.csr_matrix, seed: int = 0, num_threads: Optional[int] = None,
                         callback: Optional[Callable[[int], None]] = None) -> None:
        csr = self._check_shape(train)
        self.item_counts.copy_(torch.from_numpy(np.asarray(csr.sum(0)).ravel().astype(np.float32)))

    @torch.no_grad()
    def embeddings(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(ones [U, 1], item_counts [I, 1])``: the score of every user for item ``i`` is ``n_i``."""
        ones = torch.ones(self.num_users, 1, device=self.item_counts.device)
        return ones, self.item_counts.unsqueeze(1)

    def fold_in_users(self, interactions: sp.csr_matrix) -> torch.Tensor:
        """``ones [n, 1]``: a new user gets the same popularity ranking as everyone.

        Args:
            interactions: ``[n, I]`` sparse matrix of the new users' items (only its row count matters).
        """
        return torch.ones(_fold_rows(interactions, self.num_items).shape[0], 1, device=self.item_counts.device)

    def fold_in_items(self, interactions: sp.csr_matrix) -> torch.Tensor:
        """``counts [m, 1]``: a new item's score is its number of users, as for trained items.

        Args:
            interactions: ``[m, U]`` sparse matrix of the new items' users (non-zeros).
        """
        R = _fold_rows(interactions, self.num_users)
        return torch.from_numpy(np.diff(R.indptr).astype(np.float32)).unsqueeze(1).to(self.item_counts.device)


class ALS(FittedRecommender):
    r"""Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren and
    Volinsky, "Collaborative Filtering for Implicit Feedback Datasets", ICDM 2008), solved by
    the ``implicit`` library (Ben Frederickson), an optional extra: ``pip install
    'graphkit[baselines]'``.

    .. math::
        \min_{X, Y} \sum_{u,i} c_{ui}\,(p_{ui} - x_u^\top y_i)^2
        + \lambda\,(\lVert X\rVert^2 + \lVert Y\rVert^2),

    with ``p_ui = 1`` for a training interaction and 0 otherwise, and ``implicit``'s
    confidence: ``c_ui = alpha`` for a training interaction, 1 otherwise (the paper writes
    ``1 + alpha·r_ui``; ``implicit`` scales the binary matrix by ``alpha``).  Scores are
    ``x_u · y_i``.  ``tests/test_baselines.py`` checks the fitted item factors against these
    normal equations.

    Args:
        num_users: U.
        num_items: I.
        factors: latent dimension.
        regularization: λ.
        alpha: confidence scale of the observed interactions.
        iterations: ALS sweeps (each solves all users, then all items).
        use_cg: conjugate-gradient solver (``implicit``'s default) instead of Cholesky.
    """

    #: ``graphkit.tune``'s default ranges.  λ reaches 1e3: implicit does not scale λ with a
    #: user's number of interactions, and on ml-1m (users with hundreds of items) 128-256
    #: factors only pay off with λ in the tens to hundreds; a first search capped at 10 kept
    #: choosing 64 factors.
    search_space: ClassVar[Dict[str, Tuple[Any, ...]]] = {
        "factors": ("choice", [32, 64, 128, 256]), "regularization": ("log", 1e-2, 1e3),
        "alpha": ("log", 0.1, 100.0), "iterations": ("int", 5, 30)}
    #: chosen on the validation split by ``graphkit tune als`` (tuning seed 7; the search and
    #: the scores are in docs/models/baselines.md), values rounded to 3 significant digits.
    presets: ClassVar[Dict[str, Dict[str, Any]]] = {
        "gowalla": {"model": {"factors": 256, "regularization": 62.5, "alpha": 80.5, "iterations": 7}},
        "ml-1m": {"model": {"factors": 64, "regularization": 28.9, "alpha": 3.48, "iterations": 24}},
    }

    def __init__(self, num_users: int, num_items: int, factors: int = 64, regularization: float = 0.01,
                 alpha: float = 1.0, iterations: int = 15, use_cg: bool = True) -> None:
        super().__init__(num_users, num_items)
        self.factors = _positive_int("factors", factors)
        self.regularization = _positive_real("regularization", regularization, allow_zero=True)
        self.alpha = _positive_real("alpha", alpha)
        self.iterations = _positive_int("iterations", iterations)
        if not isinstance(use_cg, bool):
            raise ConfigError(f"use_cg must be True or False, got {use_cg!r}")
        self.use_cg = use_cg
        self.register_buffer("user_factors", torch.zeros(self.num_users, self.factors))
        self.register_buffer("item_factors", torch.zeros(self.num_items, self.factors))

    @classmethod
    def check_dependencies(cls) -> None:
        """Raise :class:`~graphkit.exceptions.ConfigError` when ``implicit`` is not installed."""
        cls._implicit()

    @staticmethod
    def _implicit() -> Any:
        try:
            from implicit.cpu.als import AlternatingLeastSquares
        except ImportError:
            raise ConfigError("the ALS baseline needs the 'implicit' package, an optional extra: "
                              "pip install 'graphkit[baselines]' (or pip install implicit)") from None
        return AlternatingLeastSquares

    def fit_interactions(self, train: sp.csr_matrix, seed: int = 0, num_threads: Optional[int] = None,
                         callback: Optional[Callable[[int], None]] = None) -> None:
        csr = self._check_shape(train)
        cls = self._implicit()

        def on_iteration(iteration: int, elapsed: float, loss: Any) -> None:
            if callback is not None:
                self._copy_factors(solver)
                callback(iteration + 1)

        # implicit parallelises over users itself; a threaded BLAS underneath slows it down
        # (and implicit warns about it when the solver is built)
        with _single_threaded_blas():
            solver = cls(factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                         iterations=self.iterations, use_cg=self.use_cg, num_threads=num_threads or 0,
                         random_state=int(seed) % (2 ** 32), calculate_training_loss=False)
            solver.fit(csr, show_progress=False, callback=on_iteration)
        self._copy_factors(solver)

    def _copy_factors(self, solver: Any) -> None:
        self.user_factors.copy_(torch.from_numpy(np.ascontiguousarray(solver.user_factors, dtype=np.float32)))
        self.item_factors.copy_(torch.from_numpy(np.ascontiguousarray(solver.item_factors, dtype=np.float32)))

    @torch.no_grad()
    def embeddings(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(user_factors [U, f], item_factors [I, f])``."""
        return self.user_factors, self.item_factors

    @torch.no_grad()
    def fold_in_users(self, interactions: sp.csr_matrix) -> torch.Tensor:
        r"""Factors of users *not* trained, item factors fixed: ALS's own user step.

        For a user with items ``N(u)`` the user half of an ALS sweep is the exact minimiser
        ``x_u = (YᵀY + (α − 1) Σ_{i∈N(u)} y_i y_iᵀ + λI)⁻¹ · α Σ_{i∈N(u)} y_i`` (confidence α on
        the user's items, 1 elsewhere, as ``implicit`` weighs them; solved directly, not by CG).

        Args:
            interactions: ``[n, I]`` sparse matrix of the new users' items (non-zeros).

        Returns:
            ``[n, f]`` float tensor.
        """
        return self._half_step(_fold_rows(interactions, self.num_items), self.item_factors)

    @torch.no_grad()
    def fold_in_items(self, interactions: sp.csr_matrix) -> torch.Tensor:
        r"""Factors of items *not* trained, user factors fixed: ALS's own item step (the mirror of
        :meth:`fold_in_users`).

        Args:
            interactions: ``[m, U]`` sparse matrix of the new items' users (non-zeros).

        Returns:
            ``[m, f]`` float tensor.
        """
        return self._half_step(_fold_rows(interactions, self.num_users), self.user_factors)

    def _half_step(self, R: sp.csr_matrix, fixed: torch.Tensor) -> torch.Tensor:
        """One ALS half-step for the rows of ``R`` against the ``fixed`` factors of the other side."""
        Y = fixed.double().cpu()
        yty = Y.T @ Y
        eye = torch.eye(Y.shape[1], dtype=torch.float64)
        out = torch.zeros(R.shape[0], Y.shape[1], dtype=torch.float64)
        for u in range(R.shape[0]):
            idx = torch.from_numpy(R.indices[R.indptr[u]:R.indptr[u + 1]].astype(np.int64))
            if idx.numel() == 0:
                continue
            Yu = Y[idx]
            A = yty + (self.alpha - 1.0) * (Yu.T @ Yu) + self.regularization * eye
            out[u] = torch.linalg.solve(A, self.alpha * Yu.sum(0))
        return out.to(fixed.device, torch.float32)


class EASE(FittedRecommender):
    r"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): a
    closed-form item-item linear model with a zero diagonal.

    .. math::
        \hat B = \arg\min_B \lVert X - XB\rVert_F^2 + \lambda \lVert B\rVert_F^2
        \ \text{s.t.}\ \operatorname{diag}(B) = 0
        \;\Rightarrow\; \hat B = I - P\,\operatorname{diagMat}(1 / \operatorname{diag} P),
        \quad P = (X^\top X + \lambda I)^{-1}.

    Scores are ``X B``.  The ``I x I`` inverse costs ``O(I^3)`` time and ``O(I^2)`` memory:
    datasets with more than ``max_items`` items are refused (gowalla's 41k items would need
    ~13 GB and tens of minutes on two cores).

    Args:
        num_users: U.
        num_items: I.
        l2: λ (the paper's best values are in the hundreds for MovieLens-style data).
        max_items: refuse larger item sets.
    """

    search_space: ClassVar[Dict[str, Tuple[Any, ...]]] = {"l2": ("log", 1.0, 1e4)}
    #: chosen on the validation split by ``graphkit tune ease --n-trials 12 --trial-seed 7``
    #: (docs/models/baselines.md).
    presets: ClassVar[Dict[str, Dict[str, Any]]] = {"ml-1m": {"model": {"l2": 726.0}}}

    def __init__(self, num_users: int, num_items: int, l2: float = 500.0, max_items: int = 20000) -> None:
        super().__init__(num_users, num_items)
        self.l2 = _positive_real("l2", l2)
        self.max_items = _positive_int("max_items", max_items)
        if self.num_items > self.max_items:
            raise ConfigError(f"EASE inverts an items x items matrix: {self.num_items} items exceed max_items="
                              f"{self.max_items} (about {8 * self.num_items ** 2 / 2 ** 30:.1f} GiB); "
                              "raise max_items if the machine has the memory")
        self.register_buffer("weights", torch.zeros(self.num_items, self.num_items))
        self._train: Optional[sp.csr_matrix] = None

    def fit_interactions(self, train: sp.csr_matrix, seed: int = 0, num_threads: Optional[int] = None,
                         callback: Optional[Callable[[int], None]] = None) -> None:
        csr = self._check_shape(train)
        gram = (csr.T @ csr).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        P = np.linalg.inv(gram)
        B = -P / np.diag(P)[None, :]
        B[np.diag_indices_from(B)] = 0.0
        self.weights.copy_(torch.from_numpy(B.astype(np.float32)))
        self._train = csr

    def prepare(self, train: sp.csr_matrix, graph: Any = None) -> None:
        """Keep the training matrix: the user side of the scores is ``X`` itself.

        Args:
            train: the ``[U, I]`` training matrix.
            graph: unused (EASE needs no graph).
        """
        self._train = self._check_shape(train)

    @torch.no_grad()
    def embeddings(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(X [U, I] dense, Bᵀ [I, I])``: ``score(u, i) = X[u] · B[:, i]``."""
        if self._train is None:
            raise NotFittedError("EASE.embeddings() needs the training matrix: call prepare() or fit_interactions()")
        x = torch.from_numpy(self._train.toarray()).to(self.weights.device)
        return x, self.weights.T

    @torch.no_grad()
    def fold_in_users(self, interactions: sp.csr_matrix) -> torch.Tensor:
        """The users' binary rows ``X_new [n, I]``: EASE scores ``X_new B`` need nothing learned per user.

        Args:
            interactions: ``[n, I]`` sparse matrix of the new users' items (non-zeros).
        """
        return torch.from_numpy(_fold_rows(interactions, self.num_items).toarray()).to(self.weights.device)
