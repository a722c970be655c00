"""W2PGNN: graphon estimation, entropic Gromov-Wasserstein, generator-space fitting, feasibility."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from graphkit import Graph
from graphkit import w2pgnn as W
from graphkit.exceptions import ConfigError, GraphError, GraphkitError

from conftest import require_dataset


# ----------------------------------------------------------------------------- helpers
def sbm(sizes, P):
    cuts = np.cumsum(sizes)[:-1]
    P = np.asarray(P, dtype=float)
    return lambda x, y: P[np.searchsorted(cuts, x, side="right"), np.searchsorted(cuts, y, side="right")]


# degree decreases along x in every one of these, so they are their own degree-sorted versions
SBM2 = sbm([0.4, 0.6], [[0.6, 0.1], [0.1, 0.3]])
POWER = lambda x, y: 0.9 * ((1 - x) * (1 - y)) ** 2  # noqa: E731
ER = lambda x, y: np.full(np.broadcast(x, y).shape, 0.15)  # noqa: E731
CORE = lambda x, y: 0.8 * (np.minimum(x, y) < 0.2) + 0.02  # noqa: E731
EXP = lambda x, y: 0.7 * np.exp(-(x + y))  # noqa: E731
LOGISTIC = lambda x, y: 1 / (1 + np.exp(10 * (x + y - 0.6)))  # noqa: E731


def sample_graph(f, n, rng):
    u = rng.random(n)
    A = np.triu(rng.random((n, n)) < f(u[:, None], u[None, :]), 1)
    r, c = np.nonzero(A)
    return Graph.from_coo(np.r_[r, c], np.r_[c, r], n)


def sample_set(f, count, rng, lo=40, hi=120):
    return [sample_graph(f, int(n), rng) for n in rng.integers(lo, hi + 1, count)]


def step(f, R, sub=16):
    """The R x R block averages of a graphon function (exact for step graphons aligned to the grid)."""
    g = (np.arange(R * sub) + 0.5) / (R * sub)
    return f(g[:, None], g[None, :]).reshape(R, sub, R, sub).mean((1, 3))


def rmse(a, b):
    return float(np.sqrt(((np.asarray(a) - np.asarray(b)) ** 2).mean()))


# ----------------------------------------------------------------------------- graphon estimation
def test_estimator_recovers_sbm_and_error_decreases_with_n():
    rng = np.random.default_rng(0)
    R = 10
    truth = step(SBM2, R)
    errs = {}
    for n in (60, 200, 600):
        graphs = [sample_graph(SBM2, n, rng) for _ in range(8)]
        est = W.estimate_graphon(graphs, R)
        assert est.shape == (R, R) and est.dtype == torch.float64
        assert torch.allclose(est, est.T)
        errs[n] = rmse(est, truth)
    assert errs[600] < errs[200] < errs[60]
    assert errs[600] < 0.04, errs


def test_usvt_estimator_recovers_sbm():
    rng = np.random.default_rng(1)
    graphs = [sample_graph(SBM2, 400, rng) for _ in range(6)]
    est = W.estimate_graphon(graphs, 10, method="usvt")
    err = rmse(est, step(SBM2, 10))
    assert err < 0.06 and err < 1.2 * rmse(W.estimate_graphon(graphs, 10), step(SBM2, 10))
    assert float(est.min()) >= 0.0 and float(est.max()) <= 1.0


def test_estimator_is_permutation_invariant():
    rng = np.random.default_rng(2)
    graphs = sample_set(POWER, 12, rng, 20, 60)
    permuted = []
    for g in graphs:
        perm = rng.permutation(g.num_nodes)
        ei, _ = g.to_edge_index()
        permuted.append(Graph.from_edge_index(perm[ei.numpy()], g.num_nodes))
    order = rng.permutation(len(graphs))
    for method in ("sas", "usvt"):
        a = W.estimate_graphon(graphs, 16, method=method)
        b = W.estimate_graphon([permuted[i] for i in order], 16, method=method)
        assert torch.allclose(a, b, atol=1e-12), method


def test_estimator_simple_cases_and_sizes():
    """The plain histogram (method="histogram", the estimator without smoothing) on hand-made graphs."""
    H = dict(method="histogram", align="resize")
    star = Graph.from_coo([0, 0, 0, 1, 2, 3], [1, 2, 3, 0, 0, 0], 4)
    est = W.estimate_graphon([star], 4, **H)  # hub first, then the three (tied) leaves
    expected = np.zeros((4, 4))
    expected[0, 1:] = expected[1:, 0] = 1.0
    assert torch.allclose(est, torch.tensor(expected))
    assert torch.allclose(W.estimate_graphon([star], 8, **H), torch.tensor(np.kron(expected, np.ones((2, 2)))))
    # all nodes tied (a regular graph): they share [0, 1], so the estimate is constant (the density)
    complete = Graph.from_coo(*np.nonzero(1 - np.eye(5)), 5)
    assert torch.allclose(W.estimate_graphon([complete], 10, **H), torch.full((10, 10), 0.8, dtype=torch.float64))
    empty = Graph.from_coo([], [], 7)  # nodes, no edges: a valid all-zero graphon
    assert float(W.estimate_graphon(empty, 4).abs().max()) == 0.0
    # graphs of different sizes; padding leaves the region beyond a small graph empty
    small = Graph.from_coo(*np.nonzero(1 - np.eye(2)), 2)
    pad = W.estimate_graphon([complete, small], 10, method="histogram", align="pad")  # small covers [0, 0.4]
    assert float(pad[0, 1]) == pytest.approx((0.8 + 0.5) / 2) and float(pad[9, 9]) == pytest.approx(0.8 / 2)
    resize = W.estimate_graphon([complete, small], 10, **H)
    assert torch.allclose(resize, torch.full((10, 10), (0.8 + 0.5) / 2, dtype=torch.float64))
    # directions, duplicates, weights and self-loops do not matter
    g = Graph.from_coo([0, 0, 1, 2, 2], [1, 1, 2, 2, 0], 3, edge_weight=[1, 2, 3, 4, 5])
    h = Graph.from_coo([0, 1, 0, 1, 2, 2], [1, 0, 2, 2, 0, 1], 3)
    assert torch.equal(W.estimate_graphon(g, 6), W.estimate_graphon(h, 6))


# ----------------------------------------------------------------------------- the paper's estimator (SAS)
def _rof_objective(u, f, w):
    gx = np.zeros_like(u)
    gy = np.zeros_like(u)
    gx[:-1] = u[1:] - u[:-1]
    gy[:, :-1] = u[:, 1:] - u[:, :-1]
    return 0.5 * ((u - f) ** 2).sum() + w * np.sqrt(gx**2 + gy**2).sum()


def test_tv_denoise_solves_the_rof_problem():
    """Reference: the ROF objective minimized by a generic solver (scipy L-BFGS on the TV with a
    1e-9 smoothing), and scikit-image's denoise_tv_chambolle when it is installed."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(7)
    f = rng.random((5, 5))
    f = (f + f.T) / 2
    for w in (0.02, 0.1, 0.4):
        ours = W.tv_denoise(f, w)
        assert ours.mean() == pytest.approx(f.mean(), abs=1e-12)

        def obj(x, d=1e-9):
            u = x.reshape(f.shape)
            gx = np.zeros_like(u)
            gy = np.zeros_like(u)
            gx[:-1] = u[1:] - u[:-1]
            gy[:, :-1] = u[:, 1:] - u[:, :-1]
            nrm = np.sqrt(gx**2 + gy**2 + d * d)
            val = 0.5 * ((u - f) ** 2).sum() + w * nrm.sum()
            ax, ay = w * gx / nrm, w * gy / nrm  # gradient = (u - f) - w div(grad u / |grad u|)
            g = u - f
            g[:-1] -= ax[:-1]
            g[1:] += ax[:-1]
            g[:, :-1] -= ay[:, :-1]
            g[:, 1:] += ay[:, :-1]
            return val, g.ravel()

        ref = minimize(obj, f.ravel(), jac=True, method="L-BFGS-B", options={"maxiter": 20000, "ftol": 1e-15,
                                                                              "gtol": 1e-12})
        assert _rof_objective(ours, f, w) <= ref.fun + 1e-7
        assert _rof_objective(ours, f, w) >= ref.fun - w * f.size * 2e-9 - 1e-9
        assert np.abs(ours - ref.x.reshape(f.shape)).max() < 2e-3
    # weight 0 is the identity; a weight beyond f's G-norm gives the constant mean
    assert np.array_equal(W.tv_denoise(f, 0.0), f)
    assert np.allclose(W.tv_denoise(f, 50.0), f.mean(), atol=1e-7)
    skimage = pytest.importorskip("skimage.restoration")
    for w in (0.02, 0.1, 0.4):
        ref = skimage.denoise_tv_chambolle(f, weight=w, eps=1e-14, max_num_iter=200000)
        assert np.abs(W.tv_denoise(f, w) - ref).max() < 1e-5


def _dense_sas_reference(adjs, m, R, tv):
    """Dense NumPy re-computation of the default estimator: sort each graph by decreasing degree
    (tied nodes averaged, i.e. sharing their positions), zero-pad to the largest size N, average,
    block-average into m x m blocks of N/m nodes, TV-denoise, write on the R x R grid."""
    N = max(a.shape[0] for a in adjs)
    total = np.zeros((N, N))
    for A in adjs:
        n = A.shape[0]
        deg = A.sum(1)
        order = np.argsort(-deg, kind="stable")
        As = A[np.ix_(order, order)]
        sd = deg[order]
        S = (sd[:, None] == sd[None, :]) / np.array([(sd == d).sum() for d in sd])[None, :]
        As = S.T @ As @ S
        total[:n, :n] += As
    mean = total / len(adjs)
    h = N // m
    H = mean.reshape(m, h, m, h).mean((1, 3))
    S = W.tv_denoise(H, tv) if tv > 0 else H
    return np.kron(S, np.ones((R // m, R // m)))


def test_default_estimator_is_the_papers_pipeline():
    """estimate_graphon's default = zero-padding + SAS (histogram with blocks of floor(log2 N) + 1
    nodes, TV denoising), checked against a dense computation on three small graphs."""
    rng = np.random.default_rng(8)
    graphs, adjs = [], []
    for n in (12, 9, 7):
        A = np.triu(rng.random((n, n)) < 0.45, 1).astype(float)
        A = A + A.T
        adjs.append(A)
        r, c = np.nonzero(A)
        graphs.append(Graph.from_coo(r, c, n))
    assert W.paper_block_size(12) == 4  # so m = 12 // 4 = 3 blocks of 4 nodes
    est = W.estimate_graphon(graphs, 6)
    ref = _dense_sas_reference(adjs, 3, 6, W.DEFAULT_TV_WEIGHT)
    assert np.abs(est.numpy() - ref).max() < 1e-9
    # stronger smoothing and no smoothing, through the same reference
    for tv, tol in ((0.2, 1e-9), (0, 1e-12)):
        est_tv = W.estimate_graphon(graphs, 6, tv_weight=tv).numpy()
        assert np.abs(est_tv - _dense_sas_reference(adjs, 3, 6, tv)).max() < tol
    # blocks= overrides the paper's rule; the authors' weight (h) flattens the estimate to its mean
    assert np.abs(W.estimate_graphon(graphs, 6, blocks=6, tv_weight=0).numpy()
                  - _dense_sas_reference(adjs, 6, 6, 0)).max() < 1e-12
    flat = W.estimate_graphon(graphs, 6, tv_weight="authors").numpy()
    assert np.ptp(flat) < 1e-6 and flat.mean() == pytest.approx(ref.mean(), abs=1e-9)


# ----------------------------------------------------------------------------- exact GW
def test_exact_gw_simple_cases():
    rng = np.random.default_rng(9)
    A = step(POWER, 8) + 0.01 * rng.random((8, 8))
    A = (A + A.T) / 2
    perm = rng.permutation(8)
    assert W.exact_gw(A, A[np.ix_(perm, perm)]).value < 1e-14  # unlike entropic GW, no floor
    assert W.exact_gw(np.full((4, 4), 0.3), np.full((5, 5), 0.1)).value == pytest.approx(0.04, abs=1e-12)
    two = np.array([[0.6, 0.1], [0.1, 0.3]])
    fine = np.kron(two, np.ones((3, 3)))
    res = W.exact_gw(two, fine)
    assert res.value < 1e-14 and res.epsilon == 0.0
    assert np.allclose(res.plan.sum(1).numpy(), 0.5) and np.allclose(res.plan.sum(0).numpy(), 1 / 6)
    # exact GW is below the GW value at the entropic plan (a feasible coupling)
    B = step(SBM2, 8)
    ent = W.entropic_gw(A, B)
    assert W.exact_gw(A, B).value <= ent.value + 1e-12


def test_exact_gw_matches_pot():
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(10)
    for n1, n2 in ((8, 8), (12, 12), (9, 6)):
        A, B = rng.random((n1, n1)), rng.random((n2, n2))
        A, B = (A + A.T) / 2, (B + B.T) / 2
        p, q = np.full(n1, 1 / n1), np.full(n2, 1 / n2)
        ref = float(ot.gromov.gromov_wasserstein2(A, B, p, q, "square_loss"))
        ours = W.exact_gw(A, B, init="product")  # POT starts from p q^T too
        assert ours.value == pytest.approx(ref, rel=1e-7), (n1, n2)
        assert W.exact_gw(A, B).value <= ours.value + 1e-12
    p = rng.random(8) + 0.2
    p /= p.sum()
    A = rng.random((8, 8))
    A = (A + A.T) / 2
    ref = float(ot.gromov.gromov_wasserstein2(A, step(EXP, 6), p, np.full(6, 1 / 6), "square_loss"))
    assert W.exact_gw(A, step(EXP, 6), p=p, init="product").value == pytest.approx(ref, rel=1e-7)


def test_feasibility_reports_the_exact_gw_of_the_fitted_combination(domains):
    rng = np.random.default_rng(12)
    down = sample_set(lambda x, y: 0.5 * SBM2(x, y) + 0.5 * ER(x, y), 20, rng)
    res = W.feasibility(domains, down, resolution=12, restarts=2, rounds=10)
    assert res.basis_names == ["all", "domain sbm", "domain power", "domain er"] + [f"cluster {j}" for j in range(5)]
    assert res.details["basis_kinds"] == ["all", "domain", "cluster"] and res.details["distance"] == "exact"
    C, D = res.combined.numpy(), res.downstream.numpy()
    assert res.distance == res.exact_distance == pytest.approx(np.sqrt(W.exact_gw(C, D).value), rel=1e-12)
    assert res.fitted_distance == pytest.approx(W.entropic_gw(C, D, epsilon=res.details["epsilon"]).value, rel=1e-3)
    assert res.details["basis_distances"] == res.details["basis_exact_distances"]
    ot = pytest.importorskip("ot")
    u = np.full(12, 1 / 12)
    ref = np.sqrt(float(ot.gromov.gromov_wasserstein2(C, D, u, u, "square_loss")))
    assert res.exact_distance <= ref + 1e-9 and res.exact_distance >= 0.9 * ref
    # the previous score is an option: the entropic discrepancy itself
    old = W.feasibility(domains, down, resolution=12, restarts=2, rounds=10, distance="entropic")
    assert old.distance == old.fitted_distance == pytest.approx(res.fitted_distance) and old.score == -old.distance
    # without domains the paper's bases are the integrated one and min(5, graphs) clusters
    _, names, _ = W.graphon_bases(domains["sbm"][:3], resolution=8)
    assert names == ["all", "cluster 0", "cluster 1", "cluster 2"]


# ----------------------------------------------------------------------------- entropic GW
def test_gw_self_distance_is_at_the_floor_and_symmetric():
    A, B, C = step(EXP, 12), step(POWER, 12), step(CORE, 12)
    self_a = W.entropic_gw(A, A)
    ab, ba = W.entropic_gw(A, B), W.entropic_gw(B, A)
    assert self_a.value < 0.05 * ab.value
    assert ab.value == pytest.approx(ba.value, rel=1e-6)
    assert W.entropic_gw(A, C).value == pytest.approx(W.entropic_gw(C, A).value, rel=1e-6)
    # the entropic floor vanishes with the regularization; distances between graphons do not
    floors = [W.entropic_gw(A, A, epsilon=e).value for e in (3e-3, 1e-3, 3e-4)]
    assert floors[0] > floors[1] > floors[2] and floors[2] < 1e-6
    assert W.entropic_gw(A, B, epsilon=3e-4).value > 0.5 * ab.value
    plan = ab.plan
    assert torch.allclose(plan.sum(1), torch.full((12,), 1 / 12, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(plan.sum(0), torch.full((12,), 1 / 12, dtype=torch.float64), atol=1e-6)


def test_gw_invariant_to_permuting_steps():
    rng = np.random.default_rng(3)
    A, B = step(SBM2, 12), step(POWER, 12)
    perm = rng.permutation(12)
    Bp = B[np.ix_(perm, perm)]
    v = W.entropic_gw(A, B, init="product").value
    assert W.entropic_gw(A, Bp, init="product").value == pytest.approx(v, rel=1e-6)
    Ap = A[np.ix_(perm[::-1], perm[::-1])]
    assert W.entropic_gw(Ap, Bp, init="product").value == pytest.approx(v, rel=1e-6)
    # different resolutions: a refined copy of a step graphon sits at the same floor as the graphon itself
    fine = np.kron(A, np.ones((2, 2)))
    assert W.entropic_gw(A, fine).value == pytest.approx(W.entropic_gw(A, A).value, rel=1e-3)


def test_gw_matches_pot():
    ot = pytest.importorskip("ot")
    p, q = np.full(12, 1 / 12), np.full(10, 1 / 10)
    for (A, B), eps in (((step(SBM2, 12), step(POWER, 10)), 1e-2), ((step(POWER, 12), step(LOGISTIC, 10)), 3e-3)):
        T, log = ot.gromov.entropic_gromov_wasserstein(
            A, B, p, q, "square_loss", epsilon=eps, log=True, max_iter=1000, tol=1e-11,
            numItermax=100000, stopThr=1e-13,
        )
        ours = W.entropic_gw(A, B, epsilon=eps, init="product", tol=1e-11)
        assert ours.value == pytest.approx(float(log["gw_dist"]), rel=1e-5, abs=1e-9)
        assert np.abs(ours.plan.numpy() - T).max() < 1e-5


# ----------------------------------------------------------------------------- generator space
def _bases(R=12):
    return torch.tensor(np.stack([step(EXP, R), step(POWER, R), step(LOGISTIC, R)]))


@pytest.mark.parametrize("optimizer", ["adam", "grid"])
def test_fit_recovers_known_mixture(optimizer):
    Bs = _bases()
    w = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    target = torch.einsum("k,kij->ij", w, Bs)
    fit = W.fit_combination(Bs, target, optimizer=optimizer, grid_step=0.1, restarts=3)
    assert torch.allclose(fit.weights, w, atol=0.05), fit.weights
    floor = W.entropic_gw(target, target, epsilon=fit.epsilon).value  # the entropic floor
    assert fit.distance - floor < 0.05 * (min(fit.basis_distances) - floor)
    assert float(fit.weights.sum()) == pytest.approx(1.0)
    # deterministic
    again = W.fit_combination(Bs, target, optimizer=optimizer, grid_step=0.1, restarts=3)
    assert torch.equal(fit.weights, again.weights) and fit.distance == again.distance


def test_fit_vertex_and_outside_the_span():
    Bs = _bases()
    fit = W.fit_combination(Bs, Bs[1], restarts=2)
    assert float(fit.weights[1]) > 0.9
    outside = W.fit_combination(Bs, torch.tensor(step(CORE, 12)), restarts=2)
    assert outside.distance > 20 * fit.distance


# ----------------------------------------------------------------------------- feasibility end to end
@pytest.fixture(scope="module")
def domains():
    rng = np.random.default_rng(4)
    return {"sbm": sample_set(SBM2, 25, rng), "power": sample_set(POWER, 25, rng), "er": sample_set(ER, 25, rng)}


def test_feasibility_mixture_beats_unrelated(domains):
    rng = np.random.default_rng(5)
    mixed = sample_set(lambda x, y: 0.6 * SBM2(x, y) + 0.4 * POWER(x, y), 40, rng)
    unrelated = sample_set(CORE, 40, rng)
    res = W.feasibility(domains, mixed, bases="domain", resolution=16)
    assert res.basis_names == ["domain sbm", "domain power", "domain er"]
    assert res.score == -res.distance and res.distance == res.exact_distance
    assert float(res.weights[2]) < 0.1, res.weights
    bad = W.feasibility(domains, unrelated, bases="domain", resolution=16)
    assert bad.score < res.score and bad.distance > 5 * res.distance
    assert bad.fitted_distance > 5 * res.fitted_distance
    assert res.details["basis_sizes"] == [25, 25, 25]
    assert "W2PGNN feasibility" in res.summary()
    # the weights: zero-padding (the default) puts a graph of n nodes on [0, n/N], so a padded graphon
    # also carries its set's size distribution; these sets have different random sizes, and the
    # weights absorb the difference (0.36 / 0.61 here).  With every graph on [0, 1]: 0.6 / 0.4
    resized = W.feasibility(domains, mixed, bases="domain", resolution=16, align="resize")
    assert abs(float(resized.weights[0]) - 0.6) < 0.1 and float(resized.weights[2]) < 0.1, resized.weights


def test_cluster_bases_are_deterministic_and_separate_families(domains):
    flat = domains["sbm"] + domains["er"]
    B1, names, info = W.graphon_bases(flat, "cluster", num_bases=2, resolution=8, seed=3)
    B2, _, info2 = W.graphon_bases(flat, "cluster", num_bases=2, resolution=8, seed=3)
    assert torch.equal(B1, B2) and names == ["cluster 0", "cluster 1"]
    lab = info["assignments"]["cluster"]
    assert np.array_equal(lab, info2["assignments"]["cluster"])
    assert len(set(lab[:25])) == 1 and len(set(lab[25:])) == 1 and lab[0] != lab[25]
    # pooled kinds: one "all" basis plus one per domain
    B, names, _ = W.graphon_bases(domains, ["all", "domain"], resolution=8)
    assert B.shape == (4, 8, 8) and names[0] == "all"
    # domains given as labels
    _, names, _ = W.graphon_bases(flat, "domain", domains=["a"] * 25 + ["b"] * 25, resolution=8)
    assert names == ["domain a", "domain b"]


def test_cluster_bases_group_by_generator_not_by_size():
    """Graphs of one graphon come in very different sizes (20 to 300 nodes): clustering must follow
    the generator, not the size (log n and the mean degree would split each family by size)."""
    rng = np.random.default_rng(11)
    fams = [SBM2, POWER, ER]
    graphs, truth = [], []
    for k, f in enumerate(fams):
        for n in np.r_[rng.integers(20, 40, 10), rng.integers(200, 300, 10)]:
            graphs.append(sample_graph(f, int(n), rng))
            truth.append(k)
    _, _, info = W.graphon_bases(graphs, "cluster", num_bases=3, resolution=8, seed=0)
    lab = info["assignments"]["cluster"]
    truth = np.array(truth)
    purity = sum(np.bincount(truth[lab == c]).max() for c in np.unique(lab)) / len(lab)
    assert purity >= 0.9, (purity, lab)
    # the same k-means on all of graph_statistics (standardized) mixes the families by size
    from graphkit.w2pgnn.graphon import _kmeans

    S = W.graph_statistics(graphs).to_numpy()
    Z = (S - S.mean(0)) / S.std(0)
    lab_all = _kmeans(Z, 3, 0)
    purity_all = sum(np.bincount(truth[lab_all == c]).max() for c in np.unique(lab_all)) / len(lab_all)
    assert purity_all < purity


def test_statistics_match_networkx():
    nx = pytest.importorskip("networkx")
    graphs = [nx.gnp_random_graph(30, 0.2, seed=s) for s in range(3)] + [nx.path_graph(5), nx.empty_graph(3)]
    df = W.graph_statistics(graphs)
    assert list(df.columns) == list(W.STATISTIC_NAMES)
    for i, G in enumerate(graphs):
        assert df["density"][i] == pytest.approx(nx.density(G))
        assert df["avg_clustering"][i] == pytest.approx(nx.average_clustering(G))
        assert df["transitivity"][i] == pytest.approx(nx.transitivity(G))


def test_inputs_graph_pyg_networkx_identical(domains):
    pytest.importorskip("networkx")
    graphs = domains["sbm"][:10] + domains["power"][:10]
    down = domains["er"][:10]
    forms = {
        "graph": (graphs, down),
        "pyg": ([g.to_pyg() for g in graphs], [g.to_pyg() for g in down]),
        "networkx": ([g.to_networkx() for g in graphs], [g.to_networkx() for g in down]),
    }
    results = {k: W.feasibility(p, d, bases="cluster", num_bases=2, resolution=8, restarts=1, rounds=5)
               for k, (p, d) in forms.items()}
    ref = results["graph"]
    for k, res in results.items():
        assert torch.equal(res.bases, ref.bases), k
        assert torch.equal(res.downstream, ref.downstream), k
        assert res.distance == ref.distance and torch.equal(res.weights, ref.weights), k
    # a single graph and a PyG Batch are accepted too
    from torch_geometric.data import Batch

    one = W.estimate_graphon(graphs[0], 8)
    assert torch.equal(one, W.estimate_graphon([graphs[0].to_pyg()], 8))
    assert torch.equal(W.estimate_graphon(Batch.from_data_list(forms["pyg"][0]), 8), W.estimate_graphon(graphs, 8))


def test_pyg_in_memory_dataset_fast_path(tmp_path, domains):
    from torch_geometric.data import InMemoryDataset

    data = []
    for g in domains["sbm"][:6] + domains["er"][:6]:
        d = g.to_pyg()
        d.x = torch.zeros(g.num_nodes, 1)
        data.append(d)

    class Tiny(InMemoryDataset):
        def __init__(self):
            super().__init__(str(tmp_path))
            self.data, self.slices = self.collate(data)

    ds = Tiny()
    full = W.estimate_graphon(ds, 8)
    assert torch.equal(full, W.estimate_graphon(data, 8))
    sub = ds[[7, 2, 9]]
    assert torch.equal(W.estimate_graphon(sub, 8), W.estimate_graphon([data[7], data[2], data[9]], 8))


# ----------------------------------------------------------------------------- node level: ego-networks
def test_ego_networks():
    n = 30
    path = Graph.from_coo(np.r_[np.arange(n - 1), np.arange(1, n)], np.r_[np.arange(1, n), np.arange(n - 1)], n)
    egos = W.ego_networks(path, nodes=[0, 10], hops=2)
    assert [e.num_nodes for e in egos] == [3, 5] and egos[1].num_edges == 8
    star = Graph.from_coo(np.r_[np.zeros(20, int), np.arange(1, 21)], np.r_[np.arange(1, 21), np.zeros(20, int)], 21)
    capped = W.ego_networks(star, nodes=[0], hops=2, max_nodes=6, seed=0)
    assert capped[0].num_nodes == 6
    a = W.ego_networks(star, nodes=5, hops=1, seed=1)
    b = W.ego_networks(star, nodes=5, hops=1, seed=1)
    assert len(a) == 5 and [g.num_nodes for g in a] == [g.num_nodes for g in b]
    assert len(W.ego_networks(path)) == n
    rng = np.random.default_rng(6)
    big_a, big_b = sample_graph(SBM2, 150, rng), sample_graph(POWER, 150, rng)
    res = W.feasibility(big_a, big_b, bases="all", level="node", resolution=8, ego_samples=40, ego_max_nodes=30)
    assert res.details["num_downstream_graphs"] == 40 and res.bases.shape == (1, 8, 8)
    doms = W.feasibility({"a": big_a, "b": big_b}, big_b, bases="domain", level="node", resolution=8,
                         ego_samples=20, restarts=1)
    assert doms.basis_names == ["domain a", "domain b"] and doms.details["basis_sizes"] == [20, 20]


# ----------------------------------------------------------------------------- errors
def test_bad_inputs_raise_graphkit_errors(domains):
    g = domains["sbm"][0]
    with pytest.raises(ConfigError, match="no graphs"):
        W.estimate_graphon([], 8)
    with pytest.raises(GraphError, match="no nodes"):
        W.estimate_graphon([g, Graph.from_coo([], [], 0)], 8)
    assert W.estimate_graphon([g, Graph.from_coo([], [], 0)], 8, drop_empty=True).shape == (8, 8)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="resolution"):
            W.estimate_graphon([g], bad)
    with pytest.raises(ConfigError, match="method"):
        W.estimate_graphon([g], 8, method="nope")
    with pytest.raises(ConfigError, match="align"):
        W.estimate_graphon([g], 8, align="nope")
    for bad in (-0.1, "nope", float("nan"), True):
        with pytest.raises(ConfigError, match="tv_weight"):
            W.estimate_graphon([g], 8, tv_weight=bad)
    with pytest.raises(ConfigError, match="blocks"):
        W.estimate_graphon([g], 8, blocks=0)
    with pytest.raises(ConfigError, match="distance"):
        W.feasibility([g], [g], distance="l2")
    with pytest.raises(ConfigError, match="bases"):
        W.graphon_bases([g], ["paper"])
    with pytest.raises(ConfigError, match="init"):
        W.exact_gw(np.ones((3, 3)), np.ones((3, 3)), init="nope")
    with pytest.raises(ConfigError, match="max_iter"):
        W.exact_gw(np.ones((3, 3)), np.ones((3, 3)), max_iter=0)
    with pytest.raises(ConfigError, match="tv_weight"):
        W.tv_denoise(np.ones((3, 3)), -1.0)
    with pytest.raises(ConfigError, match="cannot"):
        W.estimate_graphon([g, 42], 8)
    with pytest.raises(ConfigError, match="cannot"):
        W.estimate_graphon(3.5, 8)
    from torch_geometric.data import Data

    with pytest.raises(GraphError, match="outside"):
        W.estimate_graphon(Data(edge_index=torch.tensor([[0], [5]]), num_nodes=3), 8)
    with pytest.raises(ConfigError, match="bases"):
        W.feasibility([g], [g], bases="nope")
    with pytest.raises(ConfigError, match="domains"):
        W.feasibility([g, g], [g], bases="domain")
    with pytest.raises(ConfigError, match="domains has"):
        W.graphon_bases([g, g], "domain", domains=["a"])
    with pytest.raises(ConfigError, match="num_bases"):
        W.feasibility([g, g], [g], bases="cluster", num_bases=3)
    with pytest.raises(ConfigError, match="level"):
        W.feasibility([g], [g], level="edge")
    with pytest.raises(GraphError, match="square"):
        W.entropic_gw(np.ones((3, 4)), np.ones((3, 3)))
    with pytest.raises(GraphError, match="NaN"):
        W.entropic_gw(np.full((3, 3), np.nan), np.ones((3, 3)))
    with pytest.raises(ConfigError, match="epsilon"):
        W.entropic_gw(np.ones((3, 3)), np.ones((3, 3)), epsilon=-1.0)
    with pytest.raises(ConfigError, match="at most 3"):
        W.fit_combination(torch.rand(4, 5, 5), torch.rand(5, 5), optimizer="grid")
    with pytest.raises(GraphError, match=r"\[K, R, R\]"):
        W.fit_combination(torch.rand(5, 5), torch.rand(5, 5))
    with pytest.raises(GraphkitError):
        W.feasibility("no-such-dataset", [g])


# ----------------------------------------------------------------------------- plot
def test_plot_feasibility(domains, monkeypatch):
    res = W.feasibility(domains, domains["er"][:10], bases="domain", resolution=8, restarts=1)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        W.plot_feasibility(res)
    monkeypatch.undo()
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = W.plot_feasibility(res)
    assert len(fig.axes) == 3 + 2 + 1  # bases, combination, downstream, colour bar
    plt.close(fig)


# ----------------------------------------------------------------------------- real data
@pytest.mark.data
def test_dataset_names_and_objects(monkeypatch, tmp_path):
    require_dataset("ogb", "ogbg_molfreesolv")
    monkeypatch.setenv("GRAPHKIT_CACHE", str(tmp_path / "cache"))
    from graphkit import datasets

    ds = datasets.load("ogbg-molfreesolv")
    by_name = W.estimate_graphon("ogbg-molfreesolv", 16)
    assert torch.equal(by_name, W.estimate_graphon(ds, 16))
    loop = [ds.dataset[i] for i in range(len(ds.dataset))]
    assert torch.allclose(by_name, W.estimate_graphon(loop, 16), atol=1e-12)
    train = ds.split("train")
    assert torch.allclose(W.estimate_graphon(train, 16),
                          W.estimate_graphon([train[i] for i in range(len(train))], 16), atol=1e-12)
