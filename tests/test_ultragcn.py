"""Tests of graphkit.models.ultragcn against independent dense NumPy references."""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphkit.exceptions import ConfigError, TrainingError
from graphkit.models import ultragcn as ug
from graphkit.models.ultragcn import UltraGCN, degree_weights, item_item_neighbors

# 7 users x 9 items: user 5 has one item (item 7, which nobody else has, so item 7 has
# no item-item neighbours: g_7 - G_77 = 0), user 6 has none, item 8 has no interactions.
SMALL_ITEMS = [[0, 1, 2, 3], [1, 2, 4], [0, 3, 4, 5], [2, 5, 6], [0, 1, 6], [7], []]
U_SMALL, I_SMALL = 7, 9


def small_matrix() -> sp.csr_matrix:
    rows = [u for u, items in enumerate(SMALL_ITEMS) for _ in items]
    cols = [i for items in SMALL_ITEMS for i in items]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(U_SMALL, I_SMALL))


def dense_reference(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """β [U, I] and ω [I, I] straight from the paper's formulas, element by element."""
    R = np.asarray(R, dtype=np.float64)
    U, I = R.shape
    d_u, d_i = R.sum(1), R.sum(0)
    beta = np.zeros((U, I))
    for u in range(U):
        for i in range(I):
            if d_u[u] > 0:
                beta[u, i] = (1.0 / d_u[u]) * math.sqrt((d_u[u] + 1.0) / (d_i[i] + 1.0))
    G = R.T @ R
    g = G.sum(1)
    omega = np.zeros((I, I))
    for i in range(I):
        for j in range(I):
            if i != j and G[i, j] > 0:
                omega[i, j] = G[i, j] / (g[i] - G[i, i]) * math.sqrt(g[i] / g[j])
    return beta, omega


def prepared_model(R: sp.csr_matrix, **kw) -> UltraGCN:
    model = UltraGCN(R.shape[0], R.shape[1], **kw)
    model.prepare(R, None)
    return model


# --------------------------------------------------------------------------- 1. β and ω
def test_beta_and_omega_match_dense_reference():
    R = small_matrix()
    beta_ref, omega_ref = dense_reference(R.toarray())
    model = prepared_model(R, num_neighbors=I_SMALL - 1)   # K = I - 1: every neighbour is kept

    beta = (model.beta_user[:, None] * model.beta_item[None, :]).double().numpy()
    np.testing.assert_allclose(beta, beta_ref, rtol=1e-6, atol=0)
    assert model.beta_user[6] == 0.0                        # zero-degree user: defined as 0
    assert model.beta_item[8] == 1.0                        # zero-degree item: 1/sqrt(0 + 1)
    assert model.beta_user[5] == pytest.approx(math.sqrt(2.0))  # one-item user: sqrt(2)/1

    nbr = model.item_neighbors.numpy()
    w = model.item_neighbor_weights.double().numpy()
    assert np.isfinite(w).all() and (w >= 0).all()
    for i in range(I_SMALL):
        got = {int(j): wt for j, wt in zip(nbr[i], w[i]) if wt > 0}
        want = {j: omega_ref[i, j] for j in np.flatnonzero(omega_ref[i] > 0)}
        assert got.keys() == want.keys(), i
        for j in want:
            assert got[j] == pytest.approx(want[j], rel=1e-6)
        assert (np.diff(w[i]) <= 0).all()                   # sorted by decreasing ω
        pad = w[i] == 0
        assert (nbr[i][pad] == i).all()                     # padding: own id, weight 0
    assert (w[7] == 0).all() and (w[8] == 0).all()          # no neighbours, no NaN


def test_degree_weights_function_matches_reference():
    R = small_matrix()
    beta_ref, _ = dense_reference(R.toarray())
    bu, bi = degree_weights(R)
    np.testing.assert_allclose(np.outer(bu, bi), beta_ref, rtol=1e-12)


# --------------------------------------------------------------------------- 2. chunked top-K
def random_matrix(U: int, I: int, density: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((U, I)) < density).astype(np.float64)
    dense[:, 0] = 0                                          # an item without interactions
    return sp.csr_matrix(dense)


def check_topk(nbr: np.ndarray, w: np.ndarray, omega_ref: np.ndarray, K: int) -> None:
    I = omega_ref.shape[0]
    for i in range(I):
        ref_sorted = np.sort(omega_ref[i][omega_ref[i] > 0])[::-1][:K]
        ref_sorted = np.pad(ref_sorted, (0, K - ref_sorted.size))
        np.testing.assert_allclose(w[i], ref_sorted, rtol=1e-6, atol=0)   # the top-K multiset
        real = w[i] > 0
        ids = nbr[i][real]
        assert len(set(ids.tolist())) == ids.size and (ids != i).all()
        np.testing.assert_allclose(omega_ref[i, ids], w[i][real], rtol=1e-6)  # ids carry their ω


@pytest.mark.parametrize("impl", ["numba", "numpy"])
def test_chunked_topk_matches_dense_reference(impl, monkeypatch):
    if impl == "numba" and ug._topk_chunk_numba is None:
        pytest.skip("numba unavailable")
    if impl == "numpy":
        monkeypatch.setattr(ug, "_topk_chunk_numba", None)
    R = random_matrix(40, 37, 0.15, seed=3)
    _, omega_ref = dense_reference(R.toarray())
    K = 5
    results = []
    for chunk_size in (1, 4, 7, 36, 37, 1024):
        nbr, w = item_item_neighbors(R, K, chunk_size=chunk_size)
        assert nbr.shape == (37, K) and nbr.dtype == np.int64 and w.dtype == np.float32
        check_topk(nbr, w.astype(np.float64), omega_ref, K)
        results.append((nbr, w))
    nbr, w = item_item_neighbors(R, K, chunk_memory_mb=1e-6)   # budget forces 1-row chunks
    check_topk(nbr, w.astype(np.float64), omega_ref, K)
    results.append((nbr, w))
    for nbr, w in results[1:]:                                  # deterministic, tie-break included
        np.testing.assert_array_equal(nbr, results[0][0])
        np.testing.assert_array_equal(w, results[0][1])


def test_numba_and_numpy_paths_agree_exactly(monkeypatch):
    if ug._topk_chunk_numba is None:
        pytest.skip("numba unavailable")
    R = random_matrix(60, 50, 0.2, seed=5)
    a = item_item_neighbors(R, 7, chunk_size=9)
    monkeypatch.setattr(ug, "_topk_chunk_numba", None)
    b = item_item_neighbors(R, 7, chunk_size=9)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


# --------------------------------------------------------------------------- 3. the loss
def reference_loss_terms(model: UltraGCN, R, users, pos, neg, hp) -> dict:
    beta, omega = dense_reference(R.toarray())
    Eu = model.user_embedding.weight.detach().double().numpy()
    Ei = model.item_embedding.weight.detach().double().numpy()
    lpos = lambda x: np.logaddexp(0.0, -x)   # −log σ(x)
    lneg = lambda x: np.logaddexp(0.0, x)    # −log σ(−x)
    L_O = L_C = L_I = 0.0
    for b, (u, i) in enumerate(zip(users, pos)):
        s = Eu[u] @ Ei[i]
        sn = np.array([Eu[u] @ Ei[j] for j in neg[b]])
        bn = np.array([beta[u, j] for j in neg[b]])
        L_O += hp["w1"] * lpos(s) + hp["negative_weight"] * hp["w3"] * np.mean(lneg(sn))
        L_C += hp["w2"] * beta[u, i] * lpos(s) + hp["negative_weight"] * hp["w4"] * np.mean(bn * lneg(sn))
        for j in np.flatnonzero(omega[i] > 0):
            L_I += hp["item_item_weight"] * omega[i, j] * lpos(Eu[u] @ Ei[j])
    norm = hp["norm_weight"] * 0.5 * ((Eu ** 2).sum() + (Ei ** 2).sum())
    return {"L_O": L_O, "L_C": L_C, "L_I": L_I, "norm": norm, "total": L_O + L_C + L_I + norm}


@pytest.mark.parametrize("path", ["gather", "dense"])
def test_loss_terms_match_numpy_reference(path, monkeypatch):
    # both ways of scoring the negatives (gathered embeddings, or one dense matmul) against NumPy
    monkeypatch.setattr(UltraGCN, "DENSE_NEGATIVES_FACTOR", 0 if path == "gather" else 10**6)
    R = small_matrix()
    hp = dict(w1=0.3, w2=1.7, w3=0.05, w4=2.5, negative_weight=4.0, norm_weight=0.01, item_item_weight=0.7)
    model = prepared_model(R, embedding_dim=6, num_neighbors=I_SMALL - 1, **hp)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.user_embedding.weight.copy_(torch.randn(U_SMALL, 6, generator=g) * 0.7)
        model.item_embedding.weight.copy_(torch.randn(I_SMALL, 6, generator=g) * 0.7)
    users = torch.tensor([0, 1, 2, 3, 4, 5, 0, 2])
    pos = torch.tensor([0, 4, 5, 6, 1, 7, 3, 0])
    neg = torch.tensor([[8, 2, 5], [0, 8, 3], [1, 1, 6], [8, 7, 0], [2, 3, 4], [0, 1, 2], [5, 6, 8], [7, 2, 1]])
    got = model.loss_terms(users, pos, neg)
    want = reference_loss_terms(model, R, users.tolist(), pos.tolist(), neg.tolist(), hp)
    assert set(got) == {"L_O", "L_C", "L_I", "norm", "total"}
    for key in want:
        assert got[key].item() == pytest.approx(want[key], rel=1e-5), key
    assert model.loss(users, pos, neg).item() == pytest.approx(got["total"].item(), rel=1e-6)
    assert got["total"].item() == pytest.approx(sum(got[k].item() for k in ("L_O", "L_C", "L_I", "norm")), rel=1e-6)


def test_dense_and_gathered_negative_scores_have_equal_gradients(monkeypatch):
    R = small_matrix()
    grads = {}
    for factor in (0, 10**6):
        monkeypatch.setattr(UltraGCN, "DENSE_NEGATIVES_FACTOR", factor)
        torch.manual_seed(0)
        model = prepared_model(R, embedding_dim=5, num_neighbors=2)
        users = torch.tensor([0, 1, 2, 3, 4, 5, 0])
        pos = torch.tensor([0, 4, 5, 6, 1, 7, 3])
        neg = torch.randint(0, I_SMALL, (7, 4), generator=torch.Generator().manual_seed(1))
        model.loss(users, pos, neg).backward()
        grads[factor] = [p.grad.clone() for p in model.parameters()]
    for a, b in zip(grads[0], grads[10**6]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_loss_reduces_to_paper_form_with_paper_weights():
    """w1 = w3 = 1, w2 = w4 = λ, negative_weight = n gives L_O + λ L_C with summed negatives."""
    R = small_matrix()
    lam = 0.4
    model = prepared_model(R, embedding_dim=4, w1=1.0, w2=lam, w3=1.0, w4=lam, negative_weight=3.0,
                           norm_weight=0.0, item_item_weight=0.0, initial_weight=0.5)
    users, pos = torch.tensor([0, 2]), torch.tensor([1, 4])
    neg = torch.tensor([[5, 8, 2], [1, 6, 7]])
    beta, _ = dense_reference(R.toarray())
    s_pos = model(users, pos).double()
    s_neg = (model.user_embedding(users)[:, None] * model.item_embedding(neg)).sum(-1).double()
    b_pos = torch.tensor([beta[0, 1], beta[2, 4]])
    b_neg = torch.tensor([[beta[0, j] for j in (5, 8, 2)], [beta[2, j] for j in (1, 6, 7)]])
    lp, ln = -torch.nn.functional.logsigmoid(s_pos), -torch.nn.functional.logsigmoid(-s_neg)
    L_O = lp.sum() + ln.sum()
    L_C = (b_pos * lp).sum() + (b_neg * ln).sum()
    assert model.loss(users, pos, neg).item() == pytest.approx((L_O + lam * L_C).item(), rel=1e-5)


# --------------------------------------------------------------------------- 4. learning
def planted_dataset(seed: int = 0):
    """4 user groups x 4 item groups of 12; users like ~60% of their group's items."""
    rng = np.random.default_rng(seed)
    U, I, groups = 64, 48, 4
    train, held = [], []
    for u in range(U):
        gi = np.arange(12) + 12 * (u % groups)
        liked = gi[rng.random(12) < 0.6]
        if liked.size < 3:
            liked = gi[:3]
        h = int(rng.choice(liked))                             # held-out positive, at random
        held.append(h)
        train += [(u, int(i)) for i in liked if i != h]
    tr = np.array(train)
    R = sp.csr_matrix((np.ones(len(tr)), (tr[:, 0], tr[:, 1])), shape=(U, I))
    return R, np.array(held)


def test_gradients_flow_to_every_term():
    R = small_matrix()
    model = prepared_model(R, embedding_dim=4, w1=1.0, w3=1.0, initial_weight=0.3, num_neighbors=3)
    users, pos, neg = torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([[8, 6], [7, 1]])
    terms = model.loss_terms(users, pos, neg)
    for key in ("L_O", "L_C", "L_I", "norm"):
        model.zero_grad()
        terms[key].backward(retain_graph=True)
        gu, gi = model.user_embedding.weight.grad, model.item_embedding.weight.grad
        assert torch.isfinite(gu).all() and torch.isfinite(gi).all()
        assert gu[users].abs().sum() > 0, key
    model.zero_grad()
    terms["L_I"].backward(retain_graph=True)
    nbrs = model.item_neighbors[pos][model.item_neighbor_weights[pos] > 0]
    assert nbrs.numel() > 0 and (model.item_embedding.weight.grad[nbrs].abs().sum(1) > 0).all()


def test_training_learns_planted_structure():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # tiny ops: extra threads only add contention
    try:
        _train_planted()
    finally:
        torch.set_num_threads(threads)


def _train_planted() -> None:
    torch.manual_seed(0)
    R, held = planted_dataset()
    U, I = R.shape
    model = prepared_model(R, embedding_dim=8, w1=1.0, w2=1.0, w3=1.0, w4=1.0, negative_weight=1.0,
                           norm_weight=1e-4, item_item_weight=0.5, num_neighbors=5, initial_weight=0.1)
    coo = R.tocoo()
    users, pos = torch.from_numpy(coo.row).long(), torch.from_numpy(coo.col).long()
    g = torch.Generator().manual_seed(1)
    fixed_neg = torch.randint(0, I, (users.numel(), 8), generator=g)
    with torch.no_grad():
        start_loss = model.loss(users, pos, fixed_neg).item()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = model.loss(users, pos, torch.randint(0, I, (users.numel(), 8), generator=g))
        loss.backward()
        opt.step()
    with torch.no_grad():
        end_loss = model.loss(users, pos, fixed_neg).item()
    assert end_loss < 0.5 * start_loss

    scores = model.score(torch.arange(U))
    scores[users, pos] = -float("inf")                    # rank unseen items only
    top5 = scores.topk(5, dim=1).indices.numpy()
    recall = np.mean([held[u] in top5[u] for u in range(U)])
    chance = np.mean(5.0 / (I - np.diff(R.indptr)))       # ~0.12
    assert recall > max(0.6, 4 * chance), (recall, chance)


# --------------------------------------------------------------------------- 5. validation
@pytest.mark.parametrize(
    "name,value",
    [("embedding_dim", 0), ("embedding_dim", 2.5), ("embedding_dim", True),
     ("w1", -1e-3), ("w2", float("nan")), ("w3", float("inf")), ("w4", "1"),
     ("negative_weight", -1.0), ("norm_weight", float("nan")), ("item_item_weight", -0.5),
     ("num_neighbors", -1), ("num_neighbors", 3.0), ("initial_weight", 0.0), ("initial_weight", -1e-4),
     ("chunk_size", 0), ("chunk_memory_mb", 0.0), ("chunk_memory_mb", float("inf")),
     ("negative_sampling", "sift_pos"), ("negative_sampling", None)],
)
def test_bad_hyperparameters_raise_config_error(name, value):
    with pytest.raises(ConfigError) as info:
        UltraGCN(5, 6, **{name: value})
    assert name in str(info.value) and repr(value) in str(info.value)


def test_misuse_raises_clear_errors():
    with pytest.raises(ConfigError):
        UltraGCN(0, 6)
    model = UltraGCN(U_SMALL, I_SMALL)
    users, pos, neg = torch.tensor([0]), torch.tensor([1]), torch.tensor([[2]])
    with pytest.raises(TrainingError, match="prepare"):
        model.loss(users, pos, neg)
    with pytest.raises(ConfigError, match="shape"):
        model.prepare(sp.csr_matrix((U_SMALL + 1, I_SMALL)), None)
    model.prepare(small_matrix(), None)
    with pytest.raises(ConfigError, match="neg_items"):
        model.loss(users, pos, torch.tensor([[2], [3]]))
    assert model.loss(users, pos, torch.tensor([2])).dim() == 0   # [B] negatives read as n = 1


def test_presets_and_hparams():
    for name, preset in UltraGCN.presets.items():
        assert set(preset) == {"model", "train"}, name
        assert set(preset["train"]) == {"lr", "batch_size", "num_negatives", "epochs", "eval_every", "patience"}, name
        model = UltraGCN(3, 4, **preset["model"])
        assert model.hparams()["embedding_dim"] == preset["model"]["embedding_dim"]
    assert {"lr", "batch_size", "num_negatives", "epochs", "optimizer"} <= set(UltraGCN.default_train)
    hp = UltraGCN(3, 4, w1=0.5, item_item_weight=1.5).hparams()
    assert hp["w1"] == 0.5 and hp["item_item_weight"] == 1.5 and hp["num_users"] == 3


def test_state_dict_roundtrip_and_embeddings():
    R = small_matrix()
    model = prepared_model(R, embedding_dim=5, initial_weight=0.2)
    fresh = UltraGCN(U_SMALL, I_SMALL, embedding_dim=5)
    fresh.load_state_dict(model.state_dict())
    users, pos, neg = torch.tensor([0, 3]), torch.tensor([2, 5]), torch.tensor([[8, 1], [0, 7]])
    assert fresh.loss(users, pos, neg).item() == model.loss(users, pos, neg).item()
    ue, ie = fresh.embeddings()
    assert ue.shape == (U_SMALL, 5) and ie.shape == (I_SMALL, 5) and not ue.requires_grad
    assert torch.allclose(fresh.score(torch.tensor([1])), ue[1:2] @ ie.T)


# --------------------------------------------------------------------------- 6. bounded memory
def test_item_item_step_runs_in_bounded_memory(monkeypatch):
    rng = np.random.default_rng(0)
    U, I, per_user = 5000, 20000, 15
    pop = 1.0 / np.arange(1, I + 1) ** 0.8
    items = rng.choice(I, size=U * per_user, p=pop / pop.sum())
    R = sp.csr_matrix((np.ones(items.size), (np.repeat(np.arange(U), per_user), items)), shape=(U, I))

    seen = []
    real = ug._topk_chunk

    def spy(C, start, *args):
        seen.append((C.shape[0], C.nnz))
        return real(C, start, *args)

    item_item_neighbors(small_matrix(), 2)                   # warm-up: numba load is not the step's memory
    monkeypatch.setattr(ug, "_topk_chunk", spy)
    budget_mb = 4.0
    tracemalloc.start()
    try:
        nbr, w = item_item_neighbors(R, 10, chunk_size=700, chunk_memory_mb=budget_mb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert nbr.shape == (I, 10) and np.isfinite(w).all()
    max_entries = budget_mb * 2**20 / ug._BYTES_PER_ENTRY
    assert len(seen) > I // 700                              # really chunked
    assert all(rows <= 700 for rows, _ in seen)
    assert all(nnz <= max_entries for rows, nnz in seen if rows > 1)
    # O(nnz(R) + I*K) baseline (~3 MB here) plus one chunk; a dense I x I float32 G would be 1.6 GB
    assert peak < 16 * 2**20, peak / 2**20


# --------------------------------------------------------------------------- 7. negative sampling
def test_presets_sample_negatives_from_all_items_like_the_authors():
    # the authors' gowalla/yelp2018/amazon/ml-1m configs all set sampling_sift_pos = no
    for name in ("gowalla", "yelp2018", "amazon-book", "ml-1m"):
        assert UltraGCN.presets[name]["model"]["negative_sampling"] == "all_items", name
    assert UltraGCN(3, 4).negative_sampling == "exclude_positives"       # generic default: the trainer's
    assert "negative_sampling" not in UltraGCN(3, 4).hparams()          # as before the option: old checkpoints resume
    assert UltraGCN(3, 4, negative_sampling="all_items").hparams()["negative_sampling"] == "all_items"


def test_all_items_negatives_are_uniform_over_all_items():
    """NegativeSampler(exclude_positives=False): every item, the user's training items included,
    has probability 1/I: 36,000 draws for user 0 (4 of 9 items in training), 4,000 expected each."""
    from graphkit.training.sampling import NegativeSampler

    R = small_matrix()
    users = np.zeros(4000, dtype=np.int64)
    excl = NegativeSampler(R).sample(users, 9, seed=3)
    assert not np.isin(excl, SMALL_ITEMS[0]).any()                  # the default excludes positives
    neg = NegativeSampler(R, exclude_positives=False).sample(users, 9, seed=3)
    counts = np.bincount(neg.ravel(), minlength=I_SMALL)
    sd = math.sqrt(36000 * (1 / 9) * (8 / 9))                        # binomial sd, about 60
    assert np.abs(counts - 4000).max() < 5 * sd, counts
    again = NegativeSampler(R, exclude_positives=False).sample(users, 9, seed=3)
    np.testing.assert_array_equal(neg, again)                         # deterministic in the seed


@pytest.mark.parametrize("mode", ["exclude_positives", "all_items"])
def test_trainer_negatives_follow_the_option(mode, monkeypatch):
    """Through graphkit.fit: the negatives that reach the loss contain the user's training
    items at the rate d_u / I with "all_items", never with "exclude_positives"."""
    import graphkit
    from graphkit.datasets.recommendation import RecDataset

    R, held = planted_dataset()
    U, I = R.shape
    ho = sp.csr_matrix((np.ones(U, dtype=np.float32), (np.arange(U), held)), shape=(U, I))
    R = R.astype(np.float32)
    ds = RecDataset(name="planted", num_users=U, num_items=I, train=R, valid=ho, test=ho,
                    full_train=(R + ho).tocsr(), fingerprint=graphkit.utils.fingerprint_arrays(R.indices, held))
    seen = []
    real = UltraGCN.loss_terms

    def spy(self, users, pos_items, neg_items):
        seen.append((users.clone(), neg_items.clone()))
        return real(self, users, pos_items, neg_items)

    monkeypatch.setattr(UltraGCN, "loss_terms", spy)
    graphkit.fit("ultragcn", ds, negative_sampling=mode, embedding_dim=4, num_neighbors=2, epochs=2,
                 eval_every=1, batch_size=64, num_negatives=16, num_threads=1, progress=False)
    dense = R.toarray() > 0
    hits = draws = 0
    expected = 0.0
    for users, neg in seen:
        hits += int(dense[users.numpy()[:, None], neg.numpy()].sum())
        draws += neg.numel()
        expected += float((dense[users.numpy()].sum(1) / I).sum()) * neg.shape[1]
    assert draws > 5000
    if mode == "exclude_positives":
        assert hits == 0
    else:
        assert abs(hits - expected) < 0.15 * expected, (hits, expected)


# --------------------------------------------------------------------------- 7. SVD warm start
def _dense_low_rank(R: sp.csr_matrix, d: int) -> np.ndarray:
    """The best rank-d approximation of D_u^-1/2 R D_i^-1/2, from numpy's dense SVD."""
    D = R.toarray()
    du, di = D.sum(1), D.sum(0)
    Rn = np.where(du[:, None] > 0, du[:, None], 1) ** -0.5 * D * np.where(di[None, :] > 0, di[None, :], 1) ** -0.5
    P, s, Qt = np.linalg.svd(Rn)
    return (P[:, :d] * s[:d]) @ Qt[:d]


def test_svd_start_is_the_scaled_rank_k_approximation():
    """init="svd": prepare() sets users c·PΣ^½ and items c·QΣ^½, so scores before training are
    c²·(best rank-d approximation of R̃), checked against numpy's dense SVD (sign-free), with
    rows of the normal draw's mean norm initial_weight·√d; the normal init stays the default."""
    R, d = small_matrix(), 3
    m = prepared_model(R, embedding_dim=d, initial_weight=0.05, init="svd")
    ue, ie = (t.detach().double().numpy() for t in m.embeddings())
    low = _dense_low_rank(R, d)
    prod = ue @ ie.T
    c2 = (prod * low).sum() / (low * low).sum()
    np.testing.assert_allclose(prod, c2 * low, atol=1e-5 * np.abs(prod).max())
    norms = np.linalg.norm(np.concatenate([ue, ie]), axis=1)
    assert norms.mean() == pytest.approx(0.05 * d ** 0.5, rel=1e-5)
    normal = prepared_model(R, embedding_dim=d, initial_weight=0.05)
    assert not np.allclose(normal.embeddings()[0].numpy() @ normal.embeddings()[1].numpy().T, c2 * low, atol=1e-3)
    assert "init" not in normal.hparams() and m.hparams()["init"] == "svd"
    with pytest.raises(ConfigError, match="init"):
        UltraGCN(3, 4, init="xavier")
    with pytest.raises(ConfigError, match="svd"):
        prepared_model(R, embedding_dim=7, init="svd")  # rank 7 = min(U, I): no truncated SVD


def test_svd_start_never_replaces_loaded_or_trained_weights():
    """The start applies once, to the constructor's draw: not again on a later prepare(), not
    over weights loaded from a state dict; reset_parameters() re-arms it."""
    R = small_matrix()
    m = prepared_model(R, embedding_dim=3, init="svd")
    svd_rows = m.user_embedding.weight.detach().clone()
    with torch.no_grad():
        m.user_embedding.weight.add_(1.0)          # "trained"
    trained = m.state_dict()
    m.prepare(R, None)
    assert torch.equal(m.user_embedding.weight, trained["user_embedding.weight"])
    back = UltraGCN(U_SMALL, I_SMALL, embedding_dim=3, init="svd")
    back.load_state_dict(trained)
    back.prepare(R, None)
    assert torch.equal(back.user_embedding.weight, trained["user_embedding.weight"])
    back.reset_parameters()
    back.prepare(R, None)
    assert torch.allclose(back.user_embedding.weight, svd_rows)
