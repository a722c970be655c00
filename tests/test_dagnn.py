"""DAGNN: propagation + adaptive adjustment against a dense NumPy reference, training on Cora."""

import numpy as np
import pytest
import torch

import graphkit
from graphkit import ConfigError, Graph
from graphkit.models.dagnn import DAGNN, AdaptivePropagation

from conftest import require_dataset


pytestmark = pytest.mark.usefixtures("one_thread")


def random_graph(n=15, p=0.25, seed=0, isolated=True):
    rng = np.random.default_rng(seed)
    a = np.triu(rng.random((n, n)) < p, 1)
    if isolated:
        a[-1, :] = False
        a[:, -1] = False  # one isolated node: only its self-loop
    a = a | a.T
    r, c = np.nonzero(a)
    return Graph.from_coo(r, c, n), a.astype(np.float64)


def dense_ahat(a):
    a = a + np.eye(a.shape[0])
    d = a.sum(1) ** -0.5
    return d[:, None] * a * d[None, :]


def numpy_dagnn_prop(z, a, q, b, K):
    """DAGNN Eq. (9) with dense matrices: H_k = Â^k Z, s = σ(S q + b), out = Σ_k s_k H_k."""
    ahat = dense_ahat(a)
    hops = [np.linalg.matrix_power(ahat, k) @ z for k in range(K + 1)]
    S = np.stack(hops, axis=1)                     # [N, K+1, C]
    s = 1.0 / (1.0 + np.exp(-(S @ q + b)))         # [N, K+1]
    return (s[:, :, None] * S).sum(1), s


@pytest.mark.parametrize("K", [0, 1, 5, 10])
def test_adaptive_propagation_equals_dense_reference(K):
    graph, a = random_graph()
    torch.manual_seed(K)
    prop = AdaptivePropagation(4, K)
    z = torch.randn(graph.num_nodes, 4)
    out = prop(z, graph)
    ref, s_ref = numpy_dagnn_prop(z.double().numpy(), a, prop.weight.detach().double().numpy(),
                                  prop.bias.item(), K)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-5, atol=1e-5)
    s = prop.scores(prop.propagate(z, graph))
    np.testing.assert_allclose(s.detach().numpy(), s_ref, rtol=1e-5, atol=1e-6)


def test_adaptive_propagation_gradients_match_dense_torch():
    graph, a = random_graph(seed=1)
    prop = AdaptivePropagation(3, 4)
    z = torch.randn(graph.num_nodes, 3, requires_grad=True)
    prop(z, graph).pow(2).sum().backward()
    g_ours = (z.grad.clone(), prop.weight.grad.clone(), prop.bias.grad.clone())
    ahat = torch.tensor(dense_ahat(a), dtype=torch.float32)
    z2 = z.detach().clone().requires_grad_(True)
    q = prop.weight.detach().clone().requires_grad_(True)
    b = prop.bias.detach().clone().requires_grad_(True)
    hops, h = [z2], z2
    for _ in range(4):
        h = ahat @ h
        hops.append(h)
    S = torch.stack(hops, 1)
    s = torch.sigmoid(S @ q + b)
    (s.unsqueeze(-1) * S).sum(1).pow(2).sum().backward()
    for ours, ref in zip(g_ours, (z2.grad, q.grad, b.grad)):
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_dagnn_forward_equals_reference_mlp_then_propagation():
    graph, a = random_graph(n=12, seed=2)
    model = DAGNN(6, 3, hidden_channels=5, K=3, dropout=0.5).eval()
    x = torch.rand(12, 6)
    W1, b1 = model.lin1.weight.detach().double().numpy(), model.lin1.bias.detach().double().numpy()
    W2, b2 = model.lin2.weight.detach().double().numpy(), model.lin2.bias.detach().double().numpy()
    z = np.maximum(x.double().numpy() @ W1.T + b1, 0) @ W2.T + b2
    out, _ = numpy_dagnn_prop(z, a, model.prop.weight.detach().double().numpy(), model.prop.bias.item(), 3)
    ref = out - np.log(np.exp(out).sum(1, keepdims=True))
    np.testing.assert_allclose(model(x, graph).detach().numpy(), ref, rtol=1e-5, atol=1e-5)
    # the same with sparse CSR input
    np.testing.assert_allclose(model(x.to_sparse_csr(), graph).detach().numpy(), ref, rtol=1e-5, atol=1e-5)
    assert model.retainment_scores(x, graph).shape == (12, 4)


def test_paper_equation_without_bias_and_config_errors():
    prop = AdaptivePropagation(3, 2, bias=False)
    assert prop.bias is None
    graph, a = random_graph(n=8, seed=3)
    z = torch.randn(8, 3)
    ref, _ = numpy_dagnn_prop(z.double().numpy(), a, prop.weight.detach().double().numpy(), 0.0, 2)
    np.testing.assert_allclose(prop(z, graph).detach().numpy(), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError):
        DAGNN(5, 2, K=-1)
    with pytest.raises(ConfigError):
        DAGNN(5, 2, dropout=1.0)
    with pytest.raises(ConfigError):
        DAGNN(0, 2)


def test_dagnn_presets():
    assert DAGNN.presets["cora"]["model"] == {"hidden_channels": 64, "K": 10, "dropout": 0.8}
    assert DAGNN.presets["citeseer"]["train"]["weight_decay"] == 0.02
    assert DAGNN.presets["pubmed"]["model"]["K"] == 20
    assert DAGNN.default_train["normalize_features"] is True and DAGNN.default_train["select"] == "val_loss"


def test_dagnn_reaches_80_percent_on_cora_in_200_epochs():
    require_dataset("planetoid", "raw", "ind.cora.x")
    res = graphkit.fit(DAGNN, dataset="cora", seed=0, epochs=200, progress=False, device="cpu")
    assert res.record["hparams"]["K"] == 10 and res.record["train"]["weight_decay"] == 5e-3  # preset applied
    assert res.record["dataset"] == "cora" and res.record["split"] == "public"
    assert res.metrics["accuracy"] >= 0.80, res.metrics
