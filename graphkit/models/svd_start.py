r"""A warm start for embedding recommenders: the truncated SVD of the normalised interactions.

``init="svd"`` (LightGCN, UltraGCN; not in either paper) replaces the random draw of the
embedding tables by the rank-``d`` truncated SVD ``R̃ ≈ P Σ Qᵀ`` of
``R̃ = D_u^{-1/2} R D_i^{-1/2}`` (the user–item block of LightGCN's ``Â``): users ``c·P Σ^{1/2}``,
items ``c·Q Σ^{1/2}``, with ``c`` giving the rows a chosen mean norm (that of the model's own
random rows, so the optimiser sees embeddings of the usual size).  Before any step the model
then scores ``c²·P Σ Qᵀ`` — a spectral low-pass of ``R̃``, the classic PureSVD recommender on the
normalised matrix — and its own loss trains from there instead of from noise.

SciPy's ``svds`` (ARPACK) is used: ``d`` singular triplets of a sparse matrix, a few seconds for
gowalla's 30k × 41k at ``d = 64``.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import scipy.sparse as sp

from ..exceptions import ConfigError, GraphError

__all__ = ["svd_start"]


def svd_start(train: sp.spmatrix, k: int, mean_norm: float, seed: int = 0,
              shape: Tuple[int, int] | None = None) -> Tuple[np.ndarray, np.ndarray]:
    """User and item rows ``(c·P Σ^{1/2} [U, k], c·Q Σ^{1/2} [I, k])``, float32, from the
    rank-``k`` truncated SVD of ``D_u^{-1/2} R D_i^{-1/2}`` (``R`` = ``train`` made binary).

    Args:
        train: the ``[U, I]`` training interactions (non-zeros are interactions).
        k: the rank (the model's embedding size); must be below ``min(U, I)``.
        mean_norm: the mean Euclidean norm of the returned rows (users and items together).
        seed: seed of ARPACK's start vector (the result is deterministic given it).
        shape: the ``(U, I)`` the model was built for; a different ``train`` shape raises.

    Raises:
        GraphError: ``train`` does not have ``shape``.
        ConfigError: ``k >= min(U, I)`` (a truncated SVD needs a smaller rank).
    """
    from scipy.sparse.linalg import svds

    R = sp.csr_matrix(train, dtype=np.float64, copy=True)
    if shape is not None and R.shape != tuple(shape):
        raise GraphError(f"training matrix has shape {R.shape}, the model was built for {tuple(shape)}")
    if k >= min(R.shape):
        raise ConfigError(f"init='svd' needs embedding_dim < min(num_users, num_items) = {min(R.shape)}, got {k}")
    R.data[:] = 1.0
    du = np.asarray(R.sum(1)).ravel()
    di = np.asarray(R.sum(0)).ravel()
    inv_u = np.where(du > 0, 1.0 / np.sqrt(np.maximum(du, 1e-300)), 0.0)
    inv_i = np.where(di > 0, 1.0 / np.sqrt(np.maximum(di, 1e-300)), 0.0)
    Rn = sp.diags(inv_u) @ R @ sp.diags(inv_i)
    v0 = np.random.default_rng(seed).standard_normal(min(R.shape))
    P, sigma, Qt = svds(Rn, k=k, v0=v0)
    half = np.sqrt(np.maximum(sigma, 0.0))
    users, items = P * half, Qt.T * half
    norms = np.concatenate([np.linalg.norm(users, axis=1), np.linalg.norm(items, axis=1)])
    c = float(mean_norm) / max(float(norms.mean()), 1e-12)
    return (users * c).astype(np.float32), (items * c).astype(np.float32)
