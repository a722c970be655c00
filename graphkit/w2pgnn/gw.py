"""Entropic and exact Gromov-Wasserstein between step graphons and the fit of the generator space
(convex combinations of graphon bases) for :mod:`graphkit.w2pgnn`."""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import linear_sum_assignment

from ..exceptions import ConfigError, GraphError


# ============================================================================ entropic Gromov-Wasserstein
@dataclass
class GWResult:
    """Result of :func:`entropic_gw`.

    Attributes:
        value: ``sum_{i,j,k,l} (W1[i,k] - W2[j,l])^2 T[i,j] T[k,l]`` at the entropic plan (the
            squared-loss GW discrepancy, as POT's ``entropic_gromov_wasserstein2`` returns).
        plan: the coupling T [R1, R2] (rows sum to p, columns to q).
        epsilon: the absolute entropic regularization used.
        n_iter: outer (mirror-descent) iterations.
    """

    value: float
    plan: torch.Tensor
    epsilon: float
    n_iter: int


def _as_graphon(W: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(W) if not isinstance(W, torch.Tensor) else W).detach().to(torch.float64)
    if t.dim() != 2 or t.shape[0] != t.shape[1] or t.shape[0] == 0:
        raise GraphError(f"{name} must be a non-empty square matrix (a step graphon), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise GraphError(f"{name} holds NaN or Inf values")
    return t


def _measure(m: Any, R: int, name: str) -> torch.Tensor:
    if m is None:
        return torch.full((R,), 1.0 / R, dtype=torch.float64)
    t = torch.as_tensor(np.asarray(m) if not isinstance(m, torch.Tensor) else m).to(torch.float64).reshape(-1)
    if t.shape[0] != R or (t <= 0).any() or not torch.isfinite(t).all() or abs(float(t.sum()) - 1.0) > 1e-6:
        raise ConfigError(f"{name} must be {R} positive weights summing to 1")
    return t


def _second_moment(W: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """<W^2, p p^T> (batched over leading dims)."""
    return torch.einsum("...ik,i,k->...", W * W, p, p)


def _auto_epsilon(scale: float, epsilon: Optional[float]) -> float:
    if epsilon is None:
        return max(0.01 * float(scale), 1e-8)
    if (isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0
            or not math.isfinite(epsilon)):
        raise ConfigError(f"epsilon must be a positive number or None (automatic), got {epsilon!r}")
    return float(epsilon)


@contextlib.contextmanager
def _one_thread(numel: int, limit: int = 1 << 18):
    """Run the solver on one intra-op thread when its tensors are small.

    GW here is thousands of tiny tensor operations; with several OpenMP threads each one pays
    a synchronisation that costs far more than the arithmetic (8x slower on a busy 2-core
    machine), so for tensors of at most ``limit`` elements the thread count is set to 1 for
    the duration of the call and restored afterwards.
    """
    prev = torch.get_num_threads()
    if prev > 1 and numel <= limit:
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(prev)
    else:
        yield


def _lse(x: torch.Tensor, dim: int) -> torch.Tensor:
    """log-sum-exp along ``dim`` (finite inputs; a little faster than torch.logsumexp on tiny tensors)."""
    m = x.amax(dim, keepdim=True)
    return (x - m).exp().sum(dim).log() + m.squeeze(dim)


def _sinkhorn_log(cost: torch.Tensor, log_p: torch.Tensor, log_q: torch.Tensor, eps: float,
                  f: Optional[torch.Tensor], g: Optional[torch.Tensor], max_iter: int, tol: float,
                  absorb_every: int = 10) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Entropic OT in the log domain, batched over ``cost``'s leading dim.

    Dual potentials ``f, g`` are updated by exact log-sum-exp steps every ``absorb_every``
    iterations; in between, cheap scaling iterations run on the *stabilized* kernel
    ``exp((f_i + g_j - C_ij) / eps)`` (whose entries are <= 1 right after an absorption), and
    their log-scalings are absorbed back into ``f, g`` -- so nothing overflows whatever eps.
    Returns ``(plan, f, g, iterations)``; stops when the row marginals are within ``tol`` (L1).
    """
    B, n1, n2 = cost.shape
    if f is None:
        f = torch.zeros(B, n1, dtype=cost.dtype)
    if g is None:
        g = torch.zeros(B, n2, dtype=cost.dtype)
    p, q = log_p.exp(), log_q.exp()
    pc, qc = p[:, None], q[:, None]
    it = 0
    while it < max_iter:
        # exact log-domain half steps (columns last: column sums are then exact)
        f = eps * (log_p - _lse((g[:, None, :] - cost) / eps, 2))
        g = eps * (log_q - _lse((f[:, :, None] - cost) / eps, 1))
        K = ((f[:, :, None] + g[:, None, :] - cost) / eps).exp()
        it += 1
        err = float((K.sum(2) - p).abs().sum(1).max())
        if err < tol or it >= max_iter:
            break
        u = torch.ones(B, n1, 1, dtype=cost.dtype)
        v = torch.ones(B, n2, 1, dtype=cost.dtype)
        Kt = K.transpose(1, 2)
        steps = min(absorb_every - 1, max_iter - it)
        for _ in range(steps):
            u = pc / torch.bmm(K, v)
            v = qc / torch.bmm(Kt, u)
        it += steps
        lu, lv = u.squeeze(2).log(), v.squeeze(2).log()
        if not (torch.isfinite(lu).all() and torch.isfinite(lv).all()):
            continue  # an underflow: the next exact step restarts from f, g
        f = f + eps * lu
        g = g + eps * lv
    plan = ((f[:, :, None] + g[:, None, :] - cost) / eps).exp()
    return plan, f, g, it


_TRACE: List[int] = []  # Sinkhorn iterations of recent solves (diagnostics)


def _gw_const(C1: torch.Tensor, C2: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(C1^2 p) 1^T + 1 (C2^2 q)^T, batched (the constant part of the square-loss tensor)."""
    return ((C1 * C1) @ p)[..., :, None] + ((C2 * C2) @ q)[..., None, :]


def _gw_value(C1: torch.Tensor, C2: torch.Tensor, T: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """sum (C1[i,k] - C2[j,l])^2 T[i,j] T[k,l]; differentiable in C1 and C2; batched."""
    cross = (C1 * (T @ C2 @ T.transpose(-1, -2))).sum((-1, -2))
    return _second_moment(C1, p) + _second_moment(C2, q) - 2.0 * cross


def _monotone_plan(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The north-west-corner (comonotone) coupling: step order matched to step order."""
    cp = torch.cat([torch.zeros(1, dtype=p.dtype), p.cumsum(0)])
    cq = torch.cat([torch.zeros(1, dtype=q.dtype), q.cumsum(0)])
    T = torch.minimum(cp[1:, None], cq[None, 1:]) - torch.maximum(cp[:-1, None], cq[None, :-1])
    return T.clamp_min(0.0)


def _gw_solve(C1: torch.Tensor, C2: torch.Tensor, p: torch.Tensor, q: torch.Tensor, eps: float, T0: torch.Tensor,
              max_iter: int, tol: float, sinkhorn_iter: int = 1000, sinkhorn_tol: float = 1e-8,
              potentials: Optional[Tuple[torch.Tensor, torch.Tensor]] = None, damp_after: int = 10,
              vtol: float = 0.0,
              ) -> Tuple[torch.Tensor, int, Tuple[torch.Tensor, torch.Tensor]]:
    """Entropic GW by mirror descent, batched.

    Minimizes ``GW(T) - eps * H(T)`` over couplings.  The first ``damp_after`` iterations take
    the full step of Peyre et al. (2016) (as POT does): ``T <- Sinkhorn(grad GW(T), eps)``,
    ``grad GW(T) = 2 (C1^2 p 1^T + 1 q^T C2^2 - 2 C1 T C2^T)`` (square loss, symmetric C).
    That iteration can cycle between couplings, so every further ``damp_after`` iterations the
    step in the KL geometry is halved (up to 1/64): ``T <- Sinkhorn(grad - (s - 1) eps log T,
    s eps)`` with ``s = 2, 4, ..``, a weighted geometric mean of T and the full step with the
    same fixed points.  The coupling with the lowest GW value visited is returned.

    ``C1`` [B, n1, n1], ``C2`` [n2, n2] or [B, n2, n2], ``T0`` [B, n1, n2]; ``potentials``
    warm-start the Sinkhorn duals.  Stops when every plan moves less than ``tol`` (Frobenius)
    or, with ``vtol > 0``, when every GW value changed by at most ``vtol`` (relative) in each
    of the last two iterations.  Returns ``(T, outer iterations, (f, g))``."""
    const = _gw_const(C1, C2, p, q)
    T = T0
    f, g = (None, None) if potentials is None else potentials
    log_p, log_q = p.log(), q.log()
    logT = None
    best_T, best_v, prev_v, calm = None, None, None, 0
    it = 0
    for it in range(1, max_iter + 1):
        grad = 2.0 * (const - 2.0 * (C1 @ T @ C2.transpose(-1, -2)))
        level = min((it - 1) // damp_after, 6) if logT is not None else 0
        reg = eps * 2.0**level
        cost = grad - (reg - eps) * logT if level else grad
        T_new, f, g, n_sk = _sinkhorn_log(cost, log_p, log_q, reg, f, g, sinkhorn_iter, sinkhorn_tol)
        logT = (f[:, :, None] + g[:, None, :] - cost) / reg
        _TRACE.append(n_sk)
        delta = float((T_new - T).pow(2).sum((-1, -2)).sqrt().max())
        T = T_new
        v = _gw_value(C1, C2, T, p, q)
        if best_T is None:
            best_T, best_v = T, v
        else:
            better = v < best_v
            best_T = torch.where(better[:, None, None], T, best_T)
            best_v = torch.minimum(v, best_v)
        if delta < tol:
            break
        if vtol > 0 and prev_v is not None:
            calm = calm + 1 if bool(((v - prev_v).abs() <= vtol * v.abs() + 1e-12).all()) else 0
            if calm >= 2:
                break
        prev_v = v
    return best_T, it, (f, g)


def entropic_gw(
    W1: Any,
    W2: Any,
    *,
    p: Any = None,
    q: Any = None,
    epsilon: Optional[float] = None,
    init: str = "best",
    max_iter: int = 200,
    tol: float = 1e-7,
    sinkhorn_iter: int = 1000,
    sinkhorn_tol: float = 1e-8,
) -> GWResult:
    """Entropic Gromov-Wasserstein discrepancy between two step graphons.

    Solves ``min_T sum (W1[i,k] - W2[j,l])^2 T[i,j] T[k,l] + epsilon * KL-ish entropy`` over
    couplings T of ``p`` and ``q`` by projected mirror descent, each step a log-domain
    Sinkhorn problem (Peyre, Cuturi & Solomon 2016).  Runs in float64.

    Args:
        W1, W2: square matrices (torch or numpy), the step values of two graphons; their
            sizes may differ.
        p, q: measures of the steps (default uniform: each step has length 1/R).
        epsilon: absolute entropic regularization; ``None`` picks
            ``0.01 * (<W1^2, p p^T> + <W2^2, q q^T>)``, i.e. relative to the graphons' scale.
        init: ``"product"`` (``p q^T``, as POT), ``"monotone"`` (step i with step i: natural for
            degree-sorted graphons), or ``"best"`` (both; the lower value wins).
        max_iter: outer iterations; ``tol``: stop when the plan moves less than this (Frobenius).
        sinkhorn_iter, sinkhorn_tol: cap and tolerance (L1 error of the row marginals) of each
            inner Sinkhorn solve.

    Returns:
        :class:`GWResult` (value, plan, epsilon, n_iter).  ``value`` is the discrepancy at the
        entropic plan, without the entropy term; it is >= 0 and exactly symmetric in (W1, W2)
        (the pair is solved in a canonical order and the plan transposed back).
    """
    A, B = _as_graphon(W1, "W1"), _as_graphon(W2, "W2")
    pp, qq = _measure(p, A.shape[0], "p"), _measure(q, B.shape[0], "q")
    eps = _auto_epsilon(float(_second_moment(A, pp) + _second_moment(B, qq)), epsilon)
    if init not in ("product", "monotone", "best"):
        raise ConfigError(f"init must be 'product', 'monotone' or 'best', got {init!r}")
    inits = []
    if init in ("product", "best"):
        inits.append(torch.outer(pp, qq))
    if init in ("monotone", "best"):
        inits.append(_monotone_plan(pp, qq))
    # put the pair in a canonical order so that the result is exactly symmetric in (W1, W2)
    swap = _order_key(A, pp) > _order_key(B, qq)
    if swap:
        A, B, pp, qq = B, A, qq, pp
        inits = [t.T.contiguous() for t in inits]
    T0 = torch.stack(inits)
    with _one_thread(T0.numel() * max(A.shape[0], B.shape[0])):
        T, it, _ = _gw_solve(A.expand(len(inits), -1, -1), B, pp, qq, eps, T0, max_iter, tol, sinkhorn_iter,
                             sinkhorn_tol)
        vals = _gw_value(A, B, T, pp, qq)
    j = int(torch.argmin(vals))
    plan = T[j].T.contiguous() if swap else T[j]
    return GWResult(value=float(vals[j].clamp_min(0.0)), plan=plan, epsilon=eps, n_iter=it)


def _order_key(W: torch.Tensor, p: torch.Tensor) -> Tuple[int, bytes, bytes]:
    return (W.shape[0], W.numpy().tobytes(), p.numpy().tobytes())


# ============================================================================ exact Gromov-Wasserstein
# Hand-written rather than POT's ot.gromov.gromov_wasserstein2, which computes the same values
# (tests/test_w2pgnn.py checks them against POT to 1e-7 when it is installed): the solver is
# ~60 lines on scipy, while POT would be a new dependency whose import alone took 4.7 s here.
def _lp_plan(cost: np.ndarray, p: np.ndarray, q: np.ndarray, uniform_square: bool) -> np.ndarray:
    """argmin <cost, T> over couplings of p and q (an optimal vertex).

    Uniform measures on equally many steps: the vertices are permutations / n, so the linear
    assignment solver (scipy) is exact; otherwise the transport LP is solved by HiGHS (scipy).
    """
    n1, n2 = cost.shape
    if uniform_square:
        rows, cols = linear_sum_assignment(cost)
        T = np.zeros_like(cost)
        T[rows, cols] = 1.0 / n1
        return T
    from scipy.optimize import linprog

    A_rows = sp.kron(sp.eye(n1), np.ones((1, n2)))
    A_cols = sp.kron(np.ones((1, n1)), sp.eye(n2))
    res = linprog(cost.ravel(), A_eq=sp.vstack([A_rows, A_cols]).tocsr(), b_eq=np.concatenate([p, q]),
                  bounds=(0, None), method="highs")
    if res.status != 0:  # pragma: no cover - the transport LP is always feasible and bounded
        raise GraphError(f"exact_gw: the transport LP failed ({res.message})")
    return np.clip(res.x.reshape(n1, n2), 0.0, None)


def _fw_gw(C1: np.ndarray, C2: np.ndarray, p: np.ndarray, q: np.ndarray, T: np.ndarray, max_iter: int,
           tol: float, uniform_square: bool) -> Tuple[np.ndarray, float, int]:
    """Frank-Wolfe (conditional gradient) on the square-loss GW objective from the coupling T, with
    the exact line search of the quadratic along each direction (Titouan et al., ICML 2019;
    the algorithm of POT's ``gromov_wasserstein``).  Returns ``(T, value, iterations)``."""
    const = float((C1 * C1) @ p @ p + (C2 * C2) @ q @ q)

    def cross(A: np.ndarray, B: np.ndarray) -> np.ndarray:  # C1 A C2^T + C1^T A C2 (the gradient's core)
        return C1 @ A @ C2.T + C1.T @ A @ C2

    G = cross(T, T)
    value = const - float((C1 @ T @ C2.T * T).sum()) * 2.0
    it = 0
    for it in range(1, max_iter + 1):
        # grad of value = -2 * cross(T); row/column-constant terms do not change the LP's solution
        D = _lp_plan(-G, p, q, uniform_square) - T
        b = -2.0 * float((G * D).sum())
        a = -2.0 * float((C1 @ D @ C2.T * D).sum())
        if a > 0:
            tau = min(1.0, max(0.0, -b / (2.0 * a)))
        else:
            tau = 1.0 if a + b < 0 else 0.0
        if tau == 0.0:
            break
        T = T + tau * D
        G = cross(T, T)
        new = const - 2.0 * float((C1 @ T @ C2.T * T).sum())
        delta = abs(new - value)
        value = new
        if delta <= tol * max(abs(value), 1e-300) or delta <= tol:
            break
    return T, max(value, 0.0), it


def exact_gw(
    W1: Any,
    W2: Any,
    *,
    p: Any = None,
    q: Any = None,
    init: str = "best",
    max_iter: int = 10000,
    tol: float = 1e-9,
) -> GWResult:
    """Exact (unregularized) square-loss Gromov-Wasserstein discrepancy between two step graphons.

    ``GW(W1, W2) = min_T sum_{i,j,k,l} (W1[i,k] - W2[j,l])^2 T[i,j] T[k,l]`` over couplings T of
    ``p`` and ``q``, solved like POT's ``ot.gromov.gromov_wasserstein2`` (square loss): Frank-Wolfe
    with an exact line search, each linear step an exact optimal-transport LP (scipy's linear
    assignment for uniform measures on equally many steps, HiGHS otherwise).  The problem is
    non-convex; like every solver of it this returns a stationary point.  The W2PGNN paper's
    distance is ``sqrt(value)`` (the 2-order GW distance of the step graphons); the authors
    report it after fitting the combination with entropic GW.  Runs in float64 NumPy.

    Args:
        W1, W2: square matrices (torch or numpy), the step values of two graphons; their
            sizes may differ.
        p, q: measures of the steps (default uniform).
        init: ``"product"`` (start from ``p q^T``, as POT), ``"monotone"`` (step i with step i:
            natural for degree-sorted graphons), or ``"best"`` (both; the lower value wins).
        max_iter: cap on Frank-Wolfe iterations; ``tol``: stop when the value changes by less
            than ``tol`` (relative or absolute) -- POT's defaults (10^4, 10^-9).

    Returns:
        :class:`GWResult` with ``value`` (>= 0), ``plan``, ``epsilon = 0.0`` and ``n_iter``
        (iterations of the winning start).
    """
    A, B = _as_graphon(W1, "W1"), _as_graphon(W2, "W2")
    pp, qq = _measure(p, A.shape[0], "p"), _measure(q, B.shape[0], "q")
    if init not in ("product", "monotone", "best"):
        raise ConfigError(f"init must be 'product', 'monotone' or 'best', got {init!r}")
    for nm, val in (("max_iter", max_iter),):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ConfigError(f"{nm} must be a positive integer, got {val!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
        raise ConfigError(f"tol must be a non-negative number, got {tol!r}")
    C1, C2, pn, qn = A.numpy(), B.numpy(), pp.numpy(), qq.numpy()
    uniform_square = (C1.shape[0] == C2.shape[0] and np.allclose(pn, pn[0], rtol=0, atol=1e-15)
                      and np.allclose(qn, qn[0], rtol=0, atol=1e-15))
    starts = []
    if init in ("product", "best"):
        starts.append(np.outer(pn, qn))
    if init in ("monotone", "best"):
        starts.append(_monotone_plan(pp, qq).numpy())
    best = None
    for T0 in starts:
        T, v, it = _fw_gw(C1, C2, pn, qn, T0, int(max_iter), float(tol), uniform_square)
        if best is None or v < best[1]:
            best = (T, v, it)
    T, v, it = best
    return GWResult(value=float(v), plan=torch.from_numpy(np.ascontiguousarray(T)), epsilon=0.0, n_iter=it)


# ============================================================================ generator space
@dataclass
class CombinationFit:
    """The best convex combination of bases for a target graphon (:func:`fit_combination`).

    Attributes:
        distance: GW discrepancy between ``combined`` and the target.
        weights: the combination weights [K] (on the simplex).
        combined: ``sum_k weights[k] * bases[k]`` [R, R].
        plan: the GW coupling between ``combined`` and the target.
        epsilon: the absolute entropic regularization used.
        restarts: ``(distance, weights)`` of every restart / grid point kept (best first).
        basis_distances: GW discrepancy of the target to each basis alone.
        exact_distance: ``sqrt`` of the exact GW discrepancy (:func:`exact_gw`) between
            ``combined`` and the target -- the paper's GW distance, evaluated at the fitted
            weights (``None`` with ``exact=False``).
        basis_exact_distances: the same for each basis alone (``None`` with ``exact=False``).
    """

    distance: float
    weights: torch.Tensor
    combined: torch.Tensor
    plan: torch.Tensor
    epsilon: float
    restarts: List[Tuple[float, List[float]]]
    basis_distances: List[float]
    exact_distance: Optional[float] = None
    basis_exact_distances: Optional[List[float]] = None


def _simplex_grid(K: int, step: float) -> torch.Tensor:
    m = int(round(1.0 / step))
    if abs(m * step - 1.0) > 1e-9 or m < 1:
        raise ConfigError(f"grid_step must divide 1 (e.g. 0.05, 0.1), got {step!r}")
    if K == 1:
        return torch.ones(1, 1, dtype=torch.float64)
    pts = []
    if K == 2:
        pts = [(i, m - i) for i in range(m + 1)]
    else:
        pts = [(i, j, m - i - j) for i in range(m + 1) for j in range(m + 1 - i)]
    return torch.tensor(pts, dtype=torch.float64) / m


def _full_gw(C1: torch.Tensor, target: torch.Tensor, p: torch.Tensor, q: torch.Tensor, eps: float,
             max_iter: int, tol: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Batched full solve from both inits; returns (values [B], plans [B, R1, R2])."""
    B = C1.shape[0]
    T0 = torch.cat([torch.outer(p, q).expand(B, -1, -1), _monotone_plan(p, q).expand(B, -1, -1)])
    T, _, _ = _gw_solve(torch.cat([C1, C1]), target, p, q, eps, T0, max_iter, tol, sinkhorn_tol=1e-6, vtol=1e-6)
    vals = _gw_value(torch.cat([C1, C1]), target, T, p, q).reshape(2, B)
    best = vals.argmin(0)
    plans = T.reshape(2, B, *T.shape[1:])[best, torch.arange(B)]
    return vals.min(0).values.clamp_min(0.0), plans


def fit_combination(
    bases: Any,
    target: Any,
    *,
    optimizer: str = "adam",
    restarts: int = 4,
    steps: int = 50,
    rounds: int = 30,
    lr: float = 0.1,
    grid_step: float = 0.05,
    epsilon: Optional[float] = None,
    seed: int = 0,
    max_iter: int = 200,
    tol: float = 1e-6,
    exact: bool = True,
) -> CombinationFit:
    """``min over alpha in the simplex of GW(sum_k alpha_k bases[k], target)``.

    Args:
        bases: [K, R, R] step graphons (the generator space is their convex hull).
        target: [R', R'] step graphon (R' may differ from R).
        optimizer: ``"adam"`` -- gradient descent on softmax logits ``theta`` (``alpha =
            softmax(theta)``) from ``restarts`` starting points (the first uniform weights, the
            others seeded N(0, 1) logits), run as alternating rounds: ``steps`` Adam steps
            on the GW objective with the coupling T held fixed (by the envelope theorem its
            gradient in alpha is the gradient of the GW distance), then T is re-solved at the
            new weights (warm-started); the rate starts at ``lr`` and shrinks by 0.8 per
            round; at most ``rounds`` rounds, fewer once the weights move less than 1e-4.
            Each restart ends with a full GW solve at its weights; the best one is returned.
            ``"grid"`` -- a full GW solve at every point of the simplex grid of spacing
            ``grid_step`` (K <= 3; an exhaustive check).
        epsilon: absolute entropic regularization; ``None``: ``0.02 * <target^2, q q^T>``
            (set by the target alone, so the scores of different pre-training sets against
            one downstream set share it).
        seed: seed of the restarts.
        max_iter, tol: outer iterations / tolerance of the (entropic) GW solves.
        exact: also compute ``exact_distance`` and ``basis_exact_distances`` (exact GW,
            :func:`exact_gw`, at the fitted weights and at each basis), as the paper reports.

    Returns:
        :class:`CombinationFit`.
    """
    Bs = torch.as_tensor(np.asarray(bases) if not isinstance(bases, torch.Tensor) else bases).detach().to(torch.float64)
    if Bs.dim() != 3 or Bs.shape[1] != Bs.shape[2] or Bs.shape[0] == 0 or Bs.shape[1] == 0:
        raise GraphError(f"bases must have shape [K, R, R], got {tuple(Bs.shape)}")
    if not torch.isfinite(Bs).all():
        raise GraphError("bases hold NaN or Inf values")
    T_ = _as_graphon(target, "target")
    K, R = Bs.shape[0], Bs.shape[1]
    p = torch.full((R,), 1.0 / R, dtype=torch.float64)
    q = torch.full((T_.shape[0],), 1.0 / T_.shape[0], dtype=torch.float64)
    eps = _auto_epsilon(2.0 * float(_second_moment(T_, q)), epsilon)
    if optimizer not in ("adam", "grid"):
        raise ConfigError(f"optimizer must be 'adam' or 'grid', got {optimizer!r}")
    for nm, val in (("restarts", restarts), ("steps", steps), ("rounds", rounds)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ConfigError(f"{nm} must be a positive integer, got {val!r}")

    if not isinstance(exact, bool):
        raise ConfigError(f"exact must be True or False, got {exact!r}")
    if optimizer == "grid" and K > 3:
        raise ConfigError(f"optimizer='grid' handles at most 3 bases, got {K}; use optimizer='adam'")
    with _one_thread(max(K, int(restarts), 66) * 2 * R * max(R, T_.shape[0])):
        basis_vals, _ = _full_gw(Bs, T_, p, q, eps, max_iter, tol)
        if K == 1:
            alphas = torch.ones(1, 1, dtype=torch.float64)
        elif optimizer == "grid":
            alphas = _simplex_grid(K, grid_step)
        else:
            alphas = _adam_rounds(Bs, T_, p, q, eps, int(restarts), int(steps), int(rounds), float(lr), int(seed),
                                  max_iter, tol)
        C = torch.einsum("sk,kij->sij", alphas, Bs)
        vals, plans = _full_gw(C, T_, p, q, eps, max_iter, tol)
    order = torch.argsort(vals)
    j = int(order[0])
    kept = [(float(vals[i]), [float(a) for a in alphas[i]]) for i in order.tolist()]
    exact_d = basis_exact = None
    if exact:
        exact_d = math.sqrt(exact_gw(C[j], T_).value)
        basis_exact = [math.sqrt(exact_gw(Bs[k], T_).value) for k in range(K)]
    return CombinationFit(
        distance=float(vals[j]),
        weights=alphas[j].clone(),
        combined=C[j].clone(),
        plan=plans[j].clone(),
        epsilon=eps,
        restarts=kept if optimizer == "adam" or K == 1 else kept[:10],
        basis_distances=[float(v) for v in basis_vals],
        exact_distance=exact_d,
        basis_exact_distances=basis_exact,
    )


def _adam_rounds(Bs: torch.Tensor, target: torch.Tensor, p: torch.Tensor, q: torch.Tensor, eps: float,
                 restarts: int, steps: int, rounds: int, lr: float, seed: int, max_iter: int, tol: float
                 ) -> torch.Tensor:
    """Softmax-parameterised weights by Adam, alternating with GW couplings (see fit_combination).

    With the coupling T fixed, ``GW(sum_k a_k B_k, target) = a^T Q a - 2 a^T b(T) + const`` with
    ``Q_kl = <B_k B_l, p p^T>`` and ``b_k = <B_k, T target T^T>``; its gradient in the logits is
    ``a * (g - <a, g>)`` with ``g = 2 (Q a - b)`` (the softmax Jacobian), so the Adam steps need
    no autograd.  Adam's moments carry over from round to round.
    """
    K = Bs.shape[0]
    gen = torch.Generator().manual_seed(seed)
    theta = torch.randn(restarts, K, generator=gen, dtype=torch.float64)
    theta[0] = 0.0
    m = torch.zeros_like(theta)
    v = torch.zeros_like(theta)
    beta1, beta2, adam_eps = 0.9, 0.999, 1e-8
    t = 0
    Q = torch.einsum("kij,lij,i,j->kl", Bs, Bs, p, p)
    alpha = torch.softmax(theta, 1)
    C = torch.einsum("sk,kij->sij", alpha, Bs)
    T, _, duals = _gw_solve(C, target, p, q, eps, _monotone_plan(p, q).expand(restarts, -1, -1).clone(),
                            50, tol, sinkhorn_iter=300, sinkhorn_tol=1e-6, vtol=1e-5)
    for r in range(rounds):
        rate = lr * 0.8**r
        b = torch.einsum("kij,sij->sk", Bs, T @ target @ T.transpose(1, 2))
        for _ in range(steps):
            a = torch.softmax(theta, 1)
            g = 2.0 * (a @ Q - b)
            grad = a * (g - (a * g).sum(1, keepdim=True))
            t += 1
            m.mul_(beta1).add_(grad, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            theta -= rate * (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + adam_eps)
        new = torch.softmax(theta, 1)
        moved = float((new - alpha).abs().max())
        alpha = new
        C = torch.einsum("sk,kij->sij", alpha, Bs)
        T, _, duals = _gw_solve(C, target, p, q, eps, T, 50, tol, sinkhorn_iter=300, sinkhorn_tol=1e-6,
                                potentials=duals, vtol=1e-5)
        if moved < 1e-4:
            break
    return alpha
