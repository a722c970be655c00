"""Graph: constructors, conversions, structure ops and normalization against independent references."""
import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphkit import Graph, GraphError, spmm


def _random_edges(seed=0, n=12, e=40):
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, e), rng.integers(0, n, e), n


def _dense(g):
    return g.to_scipy().toarray()


def test_from_coo_matches_scipy_with_duplicates_summed():
    r, c, n = _random_edges()
    w = np.random.default_rng(1).random(r.shape[0]).astype(np.float32)
    g = Graph.from_coo(r, c, n, w)
    ref = sp.coo_matrix((w, (r, c)), shape=(n, n)).toarray()  # scipy sums duplicates
    np.testing.assert_allclose(_dense(g), ref, rtol=1e-6)
    # rows sorted, no duplicate (row, col)
    ei, _ = g.to_edge_index()
    key = ei[0] * n + ei[1]
    assert torch.all(key[1:] > key[:-1])
    assert g.num_edges == np.count_nonzero(ref)


def test_round_trips():
    r, c, n = _random_edges(seed=2)
    g = Graph.from_edge_index(np.stack([r, c]), n)
    A = _dense(g)
    assert np.array_equal(_dense(Graph.from_scipy(g.to_scipy("coo"))), A)
    assert np.array_equal(_dense(Graph.from_pyg(g.to_pyg())), A)
    assert np.array_equal(_dense(Graph.from_networkx(g.to_networkx(directed=True))), A)
    ei, _ = g.to_edge_index()
    assert np.array_equal(_dense(Graph.from_edge_index(ei, n)), A)


def test_from_networkx_undirected_and_weights():
    G = nx.Graph()
    G.add_edge("a", "b", w=2.0)
    G.add_edge("b", "c", w=3.0)
    G.add_node("d")
    g = Graph.from_networkx(G, weight="w")
    expected = np.zeros((4, 4))
    expected[0, 1] = expected[1, 0] = 2
    expected[1, 2] = expected[2, 1] = 3
    np.testing.assert_allclose(_dense(g), expected)
    assert g.is_symmetric()


def test_from_user_item_bipartite():
    users = np.array([0, 0, 1, 2, 2])
    items = np.array([1, 1, 0, 2, 3])  # duplicate (0, 1) merged
    g = Graph.from_user_item(users, items, num_users=4, num_items=5)
    assert (g.num_users, g.num_items, g.num_nodes) == (4, 5, 9)
    R = np.zeros((4, 5))
    R[users, items] = 1
    np.testing.assert_array_equal(g.user_item_matrix().toarray(), R)
    full = np.block([[np.zeros((4, 4)), R], [R.T, np.zeros((5, 5))]])
    np.testing.assert_array_equal(_dense(g), full)
    assert g.is_symmetric()
    assert g.degree().tolist() == full.sum(1).tolist()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: Graph.from_coo([0, 1], [1, 5], num_nodes=3), "target id 5 at position 1 is out of range for 3 nodes"),
        (lambda: Graph.from_coo([0, -1], [1, 2]), "row must be non-negative, got -1 at position 1"),
        (lambda: Graph.from_coo([0.5], [1]), "row must hold integer ids, got 0.5"),
        (lambda: Graph.from_coo([0, 1], [1]), "same length"),
        (lambda: Graph.from_coo([0, 1], [1, 0], edge_weight=[1.0, float("nan")]), "edge_weight must be finite, got nan at position 1"),
        (lambda: Graph.from_edge_index(np.zeros((3, 2), dtype=int)), r"edge_index must have shape \[2, E\]"),
        (lambda: Graph([0, 2, 1], [0, 1]), "indptr must be non-decreasing"),
        (lambda: Graph([0, 1, 3], [0, 1]), "indptr\\[-1\\] = 3 does not equal the number of indices 2"),
        (lambda: Graph.from_user_item([0, 1], [0, 7], num_users=2, num_items=3), "item id 7"),
        (lambda: Graph.from_scipy(sp.random(3, 4, density=0.5), bipartite=False), "square"),
        (lambda: Graph.from_coo(["a"], [1]), "integer ids"),
    ],
)
def test_validation_errors_name_the_problem(call, message):
    with pytest.raises(GraphError, match=message):
        call()


def test_structure_ops():
    r, c, n = _random_edges(seed=3)
    g = Graph.from_coo(r, c, n)
    A = (_dense(g) > 0).astype(float)
    np.testing.assert_array_equal(g.out_degree().numpy(), A.sum(1))
    np.testing.assert_array_equal(g.in_degree().numpy(), A.sum(0))
    no_loops = A.copy()
    np.fill_diagonal(no_loops, 0)
    np.testing.assert_array_equal(_dense(g.remove_self_loops()), no_loops)
    with_loops = no_loops.copy()
    np.fill_diagonal(with_loops, 1)
    np.testing.assert_array_equal(_dense(g.add_self_loops()), with_loops)
    np.testing.assert_array_equal(_dense(g.to_undirected()), np.maximum(A, A.T))
    assert g.to_undirected().is_symmetric()


def test_k_hop_and_subgraph_match_networkx():
    r, c, n = _random_edges(seed=4, n=30, e=45)
    g = Graph.from_coo(r, c, n)
    G = g.to_networkx(directed=True)
    for k in (0, 1, 2, 3):
        expected = sorted(nx.single_source_shortest_path_length(G, 0, cutoff=k))
        assert g.k_hop([0], k).tolist() == expected
    nodes = [3, 1, 7, 20, 1]
    sub, ids = g.subgraph(nodes)
    assert ids.tolist() == [1, 3, 7, 20]
    np.testing.assert_array_equal(_dense(sub), _dense(g)[np.ix_([1, 3, 7, 20], [1, 3, 7, 20])])


def test_normalized_adjacency_matches_dense():
    r, c, n = _random_edges(seed=5)
    g = Graph.from_coo(np.concatenate([r, c]), np.concatenate([c, r]), n).remove_self_loops()
    A = _dense(g)
    d = A.sum(1)
    with np.errstate(divide="ignore"):
        dsym = np.where(d > 0, d ** -0.5, 0)
        drw = np.where(d > 0, 1 / d, 0)
    np.testing.assert_allclose(g.adjacency("sym").to_dense().numpy(), dsym[:, None] * A * dsym[None, :], rtol=1e-6)
    np.testing.assert_allclose(g.adjacency("rw").to_dense().numpy(), drw[:, None] * A, rtol=1e-6)
    Ah = A + np.eye(n)
    dh = Ah.sum(1) ** -0.5
    np.testing.assert_allclose(g.adjacency("sym", self_loops=True).to_dense().numpy(), dh[:, None] * Ah * dh[None, :], rtol=1e-6)
    assert g.adjacency("sym") is g.adjacency("sym")  # cached


def test_normalized_adjacency_matches_pyg_gcn_norm():
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    r, c, n = _random_edges(seed=6)
    g = Graph.from_coo(np.concatenate([r, c]), np.concatenate([c, r]), n).remove_self_loops()
    ei, _ = g.to_edge_index()
    ei2, w = gcn_norm(ei, None, n, add_self_loops=True)
    ref = torch.sparse_coo_tensor(ei2, w, (n, n)).to_dense()
    assert torch.allclose(g.adjacency("sym", self_loops=True).to_dense(), ref, atol=1e-6)


@pytest.mark.parametrize("symmetric", [True, False])
def test_spmm_forward_and_backward(symmetric):
    r, c, n = _random_edges(seed=7)
    if symmetric:
        g = Graph.from_coo(np.concatenate([r, c]), np.concatenate([c, r]), n)
        norm = "sym"
    else:
        g = Graph.from_coo(r, c, n)
        norm = "rw"
    x = torch.randn(n, 5, dtype=torch.float32, requires_grad=True)
    y = g.spmm(x, norm=norm)
    A = torch.from_numpy(g.adjacency(norm).to_dense().numpy())
    x2 = x.detach().clone().requires_grad_(True)
    y2 = A @ x2
    assert torch.allclose(y, y2, atol=1e-5)
    gout = torch.randn_like(y)
    y.backward(gout)
    y2.backward(gout)
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)
    if symmetric:
        assert g.adjacency_t("sym") is g.adjacency("sym")  # backward reuses the same CSR


def test_spmm_function_checks_inputs():
    g = Graph.from_coo([0, 1], [1, 0], 2)
    with pytest.raises(GraphError, match="CSR"):
        spmm(g.adjacency().to_sparse_coo(), torch.ones(2, 1))
    with pytest.raises(GraphError, match="shape mismatch"):
        spmm(g.adjacency(), torch.ones(3, 1))


def test_to_device_and_dgl_optional():
    g = Graph.from_coo([0, 1], [1, 0], 2)
    assert g.to("cpu") is g
    try:
        import dgl  # noqa: F401
    except Exception:
        with pytest.raises(ImportError, match=r"graphkit\[dgl\]"):
            g.to_dgl()
