"""LightGCN against independent references: PyG's LightGCN and a dense NumPy/torch computation."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphkit import ConfigError, Graph, GraphError
from graphkit.models import LightGCN
from graphkit.training.sampling import NegativeSampler


def _random_bipartite(seed=0, U=13, I=17, n=60):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, U, n)
    i = rng.integers(0, I, n)
    return u, i, Graph.from_user_item(u, i, U, I)


def _dense_sym_norm(u, i, U, I):
    A = np.zeros((U + I, U + I))
    A[u, i + U] = 1
    A[i + U, u] = 1
    d = A.sum(1)
    dinv = np.where(d > 0, d ** -0.5, 0.0)
    return dinv[:, None] * A * dinv[None, :]


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_final_embeddings_equal_pyg(layers):
    from torch_geometric.nn import LightGCN as PygLightGCN

    u, i, g = _random_bipartite()
    model = LightGCN(13, 17, embedding_dim=8, num_layers=layers)
    model.prepare(None, g)
    ref = PygLightGCN(30, 8, layers)
    ref.embedding.weight.data.copy_(model.embedding.weight.data)
    edge_index, _ = g.to_edge_index()
    expected = ref.get_embedding(edge_index)
    assert torch.allclose(model.propagate(), expected, atol=1e-5)
    nodes = torch.tensor([0, 5, 5, 13, 29, 2])
    assert torch.allclose(model(nodes), expected[nodes], atol=1e-5)


def test_loss_and_gradient_equal_dense_reference():
    u, i, g = _random_bipartite(seed=1)
    U, I = 13, 17
    model = LightGCN(U, I, embedding_dim=6, num_layers=3, alpha=[0.4, 0.3, 0.2, 0.1], reg_weight=0.5).double()
    model.prepare(None, g)
    model._adj = model._adj.double()
    model._values_np = model._values_np.astype(np.float64)
    users = torch.tensor([0, 3, 3, 12])
    pos = torch.tensor([1, 2, 2, 16])
    neg = torch.tensor([[4, 5, 6], [0, 1, 1], [7, 7, 8], [3, 2, 9]])
    terms = model.loss_terms(users, pos, neg)
    terms["total"].backward()

    A = torch.from_numpy(_dense_sym_norm(u, i, U, I))
    E = model.embedding.weight.detach().clone().requires_grad_(True)
    alpha = [0.4, 0.3, 0.2, 0.1]
    F = sum(alpha[k] * torch.linalg.matrix_power(A, k) @ E for k in range(4))
    ue, pe, ne = F[users], F[pos + U], F[neg + U]
    bpr = torch.nn.functional.softplus((ue[:, None] * ne).sum(-1) - (ue * pe).sum(-1, keepdim=True)).mean()
    reg = 0.5 * (E[users].pow(2).sum() + E[pos + U].pow(2).sum() + E[neg.reshape(-1) + U].pow(2).sum() / 3) / 4
    (bpr + 0.5 * reg).backward()
    assert torch.allclose(terms["bpr"], bpr, rtol=1e-6, atol=1e-9)
    assert torch.allclose(terms["reg"], reg, rtol=1e-6, atol=1e-9)
    assert torch.allclose(model.embedding.weight.grad, E.grad, rtol=1e-6, atol=1e-9)


def test_fused_propagation_gradcheck():
    from graphkit.models.lightgcn import _Propagate

    u, i, g = _random_bipartite(seed=2)
    model = LightGCN(13, 17, embedding_dim=3, num_layers=2).double()
    model.prepare(None, g)
    model._adj = model._adj.double()
    model._values_np = model._values_np.astype(np.float64)
    rows = torch.tensor([0, 4, 13, 20])

    emb = torch.randn(30, 3, dtype=torch.float64, requires_grad=True)
    sub = torch.sparse_csr_tensor(*_sub_csr(model, rows), (4, 30), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda e: _Propagate.apply(e, model._adj, sub, rows, (0.2, 0.3, 0.5)), (emb,))


def _sub_csr(model, rows):
    ip = model._indptr_np
    r = rows.numpy()
    cnt = ip[r + 1] - ip[r]
    ptr = np.concatenate([[0], np.cumsum(cnt)])
    pos = np.concatenate([np.arange(ip[x], ip[x + 1]) for x in r])
    return torch.from_numpy(ptr), torch.from_numpy(model._indices_np[pos]), torch.from_numpy(model._values_np[pos])


def test_bad_hyperparameters_and_missing_graph():
    with pytest.raises(ConfigError, match="embedding_dim"):
        LightGCN(3, 4, embedding_dim=0)
    with pytest.raises(ConfigError, match="alpha"):
        LightGCN(3, 4, num_layers=2, alpha=[0.5, 0.5])
    with pytest.raises(ConfigError, match="reg_weight"):
        LightGCN(3, 4, reg_weight=float("nan"))
    model = LightGCN(3, 4)
    with pytest.raises(GraphError, match="prepare"):
        model.embeddings()
    _, _, g = _random_bipartite()
    with pytest.raises(GraphError, match="bipartite graph of the same sizes"):
        model.prepare(None, g)


def test_negative_sampler_excludes_training_items_and_is_deterministic():
    rng = np.random.default_rng(3)
    U, I = 50, 40
    dense = rng.random((U, I)) < 0.3
    dense[0, :] = True  # a user who has every item: sampler must still return in-range ids
    dense[0, 0] = False
    train = sp.csr_matrix(dense.astype(np.float32))
    s = NegativeSampler(train)
    users = np.repeat(np.arange(U), 7)
    a = s.sample(users, 5, seed=11)
    b = s.sample(users, 5, seed=11)
    c = s.sample(users, 5, seed=12)
    assert a.shape == (U * 7, 5)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert ((a >= 0) & (a < I)).all()
    assert not dense[users[:, None], a].any()
    assert (a[users == 0] == 0).all()  # the only item user 0 lacks
    # roughly uniform over the allowed items of one user
    many = s.sample(np.full(20000, 1), 1, seed=5).ravel()
    allowed = np.flatnonzero(~dense[1])
    freq = np.bincount(many, minlength=I)[allowed] / many.size
    assert np.abs(freq - 1 / allowed.size).max() < 0.02
    with pytest.raises(ConfigError):
        s.sample(np.array([U]), 1, seed=0)


def test_initialisation_options():
    """Default N(0, 0.1²) (the authors' PyTorch port); init="xavier" (the paper) is Glorot-uniform
    per table: users U(±sqrt(6/(U+d))), items U(±sqrt(6/(I+d))), variance a²/3."""
    U, I, d = 3000, 500, 64
    torch.manual_seed(0)
    w = LightGCN(U, I, embedding_dim=d).embedding.weight.detach()
    assert abs(w.std().item() - 0.1) < 0.002 and w.abs().max() > 0.35     # normal, not uniform(±0.1·√3)
    torch.manual_seed(0)
    m = LightGCN(U, I, embedding_dim=d, init="xavier")
    w = m.embedding.weight.detach()
    for part, rows in ((w[:U], U), (w[U:], I)):
        a = (6.0 / (rows + d)) ** 0.5
        assert part.abs().max() <= a and part.abs().max() > 0.99 * a
        assert part.var().item() == pytest.approx(a * a / 3, rel=0.03)
    assert m.hparams()["init"] == "xavier" and "init" not in LightGCN(U, I).hparams()
    assert LightGCN(U, I, init_std=0.01).hparams()["init_std"] == 0.01  # the authors' TF code
    for kw, name in (({"init": "uniform"}, "init"), ({"init_std": 0.0}, "init_std"),
                     ({"init_std": float("nan")}, "init_std"), ({"init_std": "0.1"}, "init_std")):
        with pytest.raises(ConfigError, match=name) as info:
            LightGCN(3, 4, **kw)
        assert repr(next(iter(kw.values()))) in str(info.value)


def test_svd_warm_start_is_the_scaled_rank_k_approximation():
    """init="svd": prepare() sets users c·PΣ^½ and items c·QΣ^½ from the rank-d SVD of
    R̃ = D_u^-½ R D_i^-½, so E_users E_itemsᵀ = c²·(best rank-d approximation of R̃), checked
    against numpy's dense SVD (sign-free), with rows of mean norm init_std·√d."""
    U, I, d = 13, 17, 4
    u, i, graph = _random_bipartite(3, U, I, 70)
    R = sp.csr_matrix((np.ones(len(u)), (u, i)), shape=(U, I))
    R.sum_duplicates()
    R.data[:] = 1.0  # binary, as the training matrices are
    m = LightGCN(U, I, embedding_dim=d, init="svd", init_std=0.1)
    m.prepare(R, graph)
    w = m.embedding.weight.detach().double().numpy()
    D = R.toarray()
    du, di = D.sum(1), D.sum(0)
    Rn = np.where(du[:, None] > 0, du[:, None], 1) ** -0.5 * D * np.where(di[None, :] > 0, di[None, :], 1) ** -0.5
    P, s, Qt = np.linalg.svd(Rn)
    low = (P[:, :d] * s[:d]) @ Qt[:d]
    prod = w[:U] @ w[U:].T
    c2 = (prod * low).sum() / (low * low).sum()
    np.testing.assert_allclose(prod, c2 * low, atol=1e-6 * np.abs(prod).max() + 1e-9)
    assert np.linalg.norm(w, axis=1).mean() == pytest.approx(0.1 * d ** 0.5, rel=1e-5)
    with pytest.raises(ConfigError, match="svd"):
        LightGCN(3, 4, embedding_dim=3, init="svd").svd_warm_start(sp.csr_matrix(np.ones((3, 4))))
