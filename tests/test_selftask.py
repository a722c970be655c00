"""Tests of graphkit.selftask: pretext targets against independent references, no label
leakage, EdgeMask/AttributeMask inputs, joint training, pre-training, determinism, errors."""
import copy

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphkit import ConfigError, Graph
from graphkit.datasets.node import NodeDataset
from graphkit.models.gcn import GCN
from graphkit.selftask import (
    TASKS, AttributeMask, ContextLabel, CorrectedLabel, Distance2Clusters, Distance2Labeled, EdgeMask,
    EnsembleLabel, NodeProperty, PairwiseAttrSim, PairwiseDistance, SelfTaskGCN, SSLJointModel, get_task,
    label_propagation, pretrain,
)
from graphkit.training.node import NodeClassificationTrainer, NodeTrainConfig


# ----------------------------------------------------------------------------- fixtures
def _nx_graph():
    """Two 5-cliques joined by a path 4-10-5, a pendant 11 on node 0, and a separate
    triangle 12-13-14 (a second connected component)."""
    G = nx.Graph()
    G.add_nodes_from(range(15))
    G.add_edges_from((a, b) for a in range(5) for b in range(a + 1, 5))
    G.add_edges_from((a, b) for a in range(5, 10) for b in range(a + 1, 10))
    G.add_edges_from([(4, 10), (10, 5), (0, 11), (12, 13), (13, 14), (12, 14)])
    return G


@pytest.fixture
def toy():
    G = _nx_graph()
    graph = Graph.from_networkx(G)
    rng = np.random.default_rng(0)
    x = torch.from_numpy((rng.random((15, 12)) < 0.4).astype(np.float32))
    y = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 2, 2, 2])
    train_idx = torch.tensor([0, 1, 6, 7, 12])
    return G, graph, x, y, train_idx


def _sbm_dataset(n_per=40, classes=3, seed=0, feat=20):
    """A small stochastic-block-model node dataset with class-informative features."""
    rng = np.random.default_rng(seed)
    n = n_per * classes
    y = np.repeat(np.arange(classes), n_per)
    p = np.where(y[:, None] == y[None, :], 0.15, 0.01)
    upper = np.triu(rng.random((n, n)) < p, 1)
    r, c = np.nonzero(upper | upper.T)
    graph = Graph.from_coo(r, c, n)
    centers = rng.normal(size=(classes, feat))
    x = (rng.random((n, feat)) < 1 / (1 + np.exp(-centers[y]))).astype(np.float32)
    perm = rng.permutation(n)
    train = np.sort(np.concatenate([perm[y[perm] == k][:5] for k in range(classes)]))
    rest = np.setdiff1d(np.arange(n), train)
    rest = rng.permutation(rest)
    val, test = np.sort(rest[:30]), np.sort(rest[30:])
    return NodeDataset(
        name="toy-sbm", graph=graph, x=torch.from_numpy(x), y=torch.from_numpy(y), train_idx=torch.from_numpy(train),
        val_idx=torch.from_numpy(val), test_idx=torch.from_numpy(test), num_classes=classes, split="random",
        split_seed=seed, fingerprint="toy",
    )


def _prep(task, toy, seed=0):
    G, graph, x, y, tr = toy
    return task.prepare(graph, x, tr, y[tr], 3, np.random.default_rng(seed))


def _nx_dist(G, s):
    return nx.single_source_shortest_path_length(G, s)


# ----------------------------------------------------------------------------- structure tasks
def test_node_property_degree_bins(toy):
    G = toy[0]
    task = _prep(NodeProperty(num_bins=3), toy)
    deg = np.array([G.degree(v) for v in range(15)])
    np.testing.assert_array_equal(task.degree, deg)
    expected = np.minimum(np.floor(np.log2(np.maximum(deg, 1))), 2)
    np.testing.assert_array_equal(task.targets, expected)
    reg = _prep(NodeProperty(mode="regression"), toy)
    ld = np.log1p(deg)
    np.testing.assert_allclose(reg.targets, (ld - ld.mean()) / ld.std(), rtol=1e-5)
    h = torch.randn(15, 4)
    assert task.loss(h, task.head(4, 3)).shape == ()


def test_edge_mask_hides_masked_edges(toy):
    G, graph = toy[0], toy[1]
    task = _prep(EdgeMask(mask_ratio=0.25), toy)
    m = task.masked_edges
    assert m.shape == (round(0.25 * G.number_of_edges()), 2)
    assert all(G.has_edge(int(u), int(v)) for u, v in m)
    mg = task.train_graph(graph)
    kept = set(zip(mg.row.tolist(), mg.indices.tolist()))
    for u, v in m.tolist():
        assert (u, v) not in kept and (v, u) not in kept
    full = set(zip(graph.row.tolist(), graph.indices.tolist()))
    masked = {(u, v) for u, v in m.tolist()} | {(v, u) for u, v in m.tolist()}
    assert kept == full - masked
    neg = task._negatives(50)
    assert not any(G.has_edge(int(u), int(v)) for u, v in neg) and (neg[:, 0] != neg[:, 1]).all()


def test_edge_mask_backbone_sees_masked_graph_only_in_training():
    ds = _sbm_dataset()
    seen = []

    class Spy(GCN):
        def forward(self, x, graph):
            seen.append(graph.num_edges)
            return super().forward(x, graph)

    model = SSLJointModel(Spy(ds.num_features, 3, hidden_channels=8), EdgeMask(mask_ratio=0.2), lam=1.0, pretext_seed=0)
    model.prepare(ds)
    full = ds.graph.num_edges
    model.train()
    model(ds.x, ds.graph)
    model.eval()
    model(ds.x, ds.graph)
    assert seen == [full - 2 * len(model.pretext.masked_edges), full]


def test_pairwise_distance_classes_match_networkx(toy):
    G = toy[0]
    task = _prep(PairwiseDistance(num_anchors=6, num_pairs=40), toy)
    assert task.classes.shape == (6, 15) and task.classes.dtype == np.int8
    for i, a in enumerate(task.anchors):
        d = _nx_dist(G, int(a))
        for v in range(15):
            if v == a:
                exp = -1
            elif v not in d:
                exp = 3
            else:
                exp = min(d[v], 4) - 1
            assert task.classes[i, v] == exp, (a, v)
    loss = task.loss(torch.randn(15, 5), task.head(5, 3))
    assert torch.isfinite(loss)


def test_distance2clusters_partition_and_distances(toy):
    G = toy[0]
    task = _prep(Distance2Clusters(num_clusters=2), toy)
    cl = task.clusters
    assert (cl[12:] == -1).all()  # outside the largest component
    assert len(set(cl[:5])) == 1 and len(set(cl[5:10])) == 1 and cl[0] != cl[5]
    deg = dict(G.degree)
    for j, c in enumerate(task.centers):
        members = np.flatnonzero(cl == j)
        assert deg[int(c)] == max(deg[int(v)] for v in members)
        assert c == min(v for v in members if deg[int(v)] == deg[int(c)])
    finite = max(max(_nx_dist(G, int(c)).values()) for c in task.centers)
    assert task.cap == finite + 1
    for j, c in enumerate(task.centers):
        d = _nx_dist(G, int(c))
        for v in range(15):
            assert task.targets[v, j] == d.get(v, task.cap)


def test_distance2clusters_is_deterministic(toy):
    a = _prep(Distance2Clusters(num_clusters=3), toy, seed=5)
    b = _prep(Distance2Clusters(num_clusters=3), toy, seed=5)
    np.testing.assert_array_equal(a.clusters, b.clusters)
    assert len(np.unique(a.clusters[a.clusters >= 0])) == 3


# ----------------------------------------------------------------------------- attribute tasks
@pytest.mark.parametrize("shape", [(15, 12), (700, 450)])  # exact SVD / randomized path
def test_attribute_mask_pca_matches_numpy_svd(shape):
    rng = np.random.default_rng(1)
    n, f = shape
    # non-negative features with a decaying spectrum (the large case takes the randomized SVD)
    low = rng.random((n, 8)) @ (rng.random((8, f)) * (0.6 ** np.arange(8))[:, None])
    x = (low + 0.01 * rng.random(shape)).astype(np.float32)
    graph = Graph.from_coo(np.arange(n - 1), np.arange(1, n), n).to_undirected()
    dim = 5
    task = AttributeMask(mask_ratio=0.2, pca_dim=dim).prepare(graph, torch.from_numpy(x), [0], [0], 2,
                                                              np.random.default_rng(0))
    xc = x.astype(np.float64) - x.mean(0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    ref = xc @ vt[:dim].T
    for j in range(dim):  # equal up to the sign of each axis
        col, r = task.targets[:, j], ref[:, j]
        sign = np.sign(col @ r)
        np.testing.assert_allclose(col, sign * r, atol=1e-4 * np.abs(r).max())
    assert len(task.masked_nodes) == int(0.2 * (n - 1)) and 0 not in task.masked_nodes  # node 0 is labelled


def test_attribute_mask_masks_unlabelled_nodes_only(toy):
    """The paper's code masks a fraction of the unlabelled nodes; a labelled node's features are
    never hidden from the classification loss (the old version drew from all nodes)."""
    tr = set(toy[4].tolist())
    for seed in range(20):
        task = _prep(AttributeMask(mask_ratio=0.5, pca_dim=4), toy, seed=seed)
        assert len(task.masked_nodes) == 5  # floor(0.5 * 10 unlabelled nodes)
        assert not tr & set(task.masked_nodes.tolist())
    G, graph, x, y, _ = toy
    with pytest.raises(ConfigError, match="unlabelled"):
        AttributeMask(pca_dim=4).prepare(graph, x, np.arange(15), y, 3)


def test_attribute_mask_zeroes_masked_features(toy):
    x = toy[2]
    task = _prep(AttributeMask(mask_ratio=0.3, pca_dim=4), toy)
    xm = task.train_features(x)
    mask = np.zeros(15, bool)
    mask[task.masked_nodes] = True
    assert (xm[torch.from_numpy(mask)] == 0).all()
    assert torch.equal(xm[torch.from_numpy(~mask)], x[torch.from_numpy(~mask)])
    xs = task.train_features(x.to_sparse_csr())
    assert torch.equal(xs.to_dense(), xm)


def test_pairwise_attr_sim_targets_are_cosine(toy):
    x = toy[2].numpy().astype(np.float64)
    task = _prep(PairwiseAttrSim(k=2, num_pairs=16), toy)
    norm = np.linalg.norm(x, axis=1)
    assert (norm == 0).any()  # a featureless node: cosine 0 with every node by convention
    outer = np.outer(norm, norm)
    cos = np.divide(x @ x.T, outer, out=np.zeros((15, 15)), where=outer > 0)
    u, v = task.pairs[:, 0], task.pairs[:, 1]
    np.testing.assert_allclose(task.targets, cos[u, v], rtol=1e-5)
    assert (u != v).all() and len(task.pairs) == 15 * 4
    for a in range(15):  # the 2 most and the 2 least similar other nodes
        others = np.sort(np.delete(cos[a], a))
        chosen = np.sort(task.targets[u == a])
        np.testing.assert_allclose(chosen[:2], others[:2], rtol=1e-5)
        np.testing.assert_allclose(chosen[2:], others[-2:], rtol=1e-5)


# ----------------------------------------------------------------------------- SelfTask
def test_distance2labeled_matches_networkx(toy):
    G, graph, x, y, tr = toy
    task = _prep(Distance2Labeled(), toy)
    t = task.targets.reshape(15, 3, 3)
    lengths = {int(s): _nx_dist(G, int(s)) for s in tr}
    finite = [d for s in lengths.values() for d in s.values()]
    assert task.cap == max(finite) + 1
    for v in range(15):
        for c in range(3):
            ds = [lengths[int(s)][v] for s, yc in zip(tr, y[tr]) if yc == c and v in lengths[int(s)]]
            exp = (min(ds), np.mean(ds), max(ds)) if ds else (task.cap,) * 3
            np.testing.assert_allclose(t[v, c], exp, rtol=1e-6)


def test_distance2labeled_inverse_mean_and_loss_on_unlabelled_nodes(toy):
    """target="inverse_mean" (the SelfTask-GNN code): per class, the mean over its training
    nodes of 1/d (0 if unreachable or d = 0); the loss is the MSE on unlabelled nodes only,
    of the per-column z-scored targets (z-scored over those nodes)."""
    G, graph, x, y, tr = toy
    task = _prep(Distance2Labeled(target="inverse_mean"), toy)
    lengths = {int(s): _nx_dist(G, int(s)) for s in tr}
    ref = np.zeros((15, 3))
    for c in range(3):
        src = [int(s) for s, yc in zip(tr, y[tr]) if yc == c]
        for v in range(15):
            ref[v, c] = np.mean([1.0 / lengths[s][v] if lengths[s].get(v, 0) > 0 else 0.0 for s in src])
    np.testing.assert_allclose(task.targets, ref, rtol=1e-6)
    unl = np.setdiff1d(np.arange(15), tr.numpy())
    t = ref[unl]
    z = (t - t.mean(0)) / np.where(t.std(0) > 0, t.std(0), 1.0)
    head = task.head(4, 3)
    assert head.out_features == 3 and Distance2Labeled().head(4, 3).out_features == 9
    hidden = torch.randn(15, 4)
    out = head(hidden).detach().numpy()
    expected = ((out[unl] - z) ** 2).mean()
    assert float(task.loss(hidden, head).detach()) == pytest.approx(expected, rel=1e-5)
    # changing a training node's hidden row leaves the loss unchanged
    h2 = hidden.clone()
    h2[tr] += 5.0
    assert float(task.loss(h2, head).detach()) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ConfigError, match="target"):
        Distance2Labeled(target="max")


def test_context_label_loss_is_softmax_mse_on_unlabelled_nodes(toy):
    """The paper's code: softmax of the head's output, squared error to the context distribution,
    on unlabelled nodes with a context (graphkit sums over classes: C x the code's F.mse_loss)."""
    G, graph, x, y, tr = toy
    task = _prep(ContextLabel(k=1, source="lp"), toy)
    head = task.head(4, 3)
    hidden = torch.randn(15, 4)
    p = torch.softmax(head(hidden), 1).detach().numpy()
    rows = [v for v in range(15) if v not in set(tr.tolist()) and task.has_context[v]]
    expected = ((p[rows] - task.targets[rows]) ** 2).sum(1).mean()
    assert float(task.loss(hidden, head).detach()) == pytest.approx(expected, rel=1e-5)
    assert float(task.loss(hidden, head).detach()) == pytest.approx(
        3 * float(F.mse_loss(torch.softmax(head(hidden), 1)[rows], torch.as_tensor(task.targets[rows])).detach()),
        rel=1e-5)


def test_context_label_by_hand(toy):
    G, graph, x, y, tr = toy
    task = _prep(ContextLabel(k=1, source=None), toy)  # training labels only
    lab = {int(n): int(c) for n, c in zip(tr, y[tr])}
    for v in range(15):
        counts = np.zeros(3)
        for u in G.neighbors(v):
            if u in lab:
                counts[lab[u]] += 1
        if counts.sum():
            np.testing.assert_allclose(task.targets[v], counts / counts.sum(), rtol=1e-6)
            assert task.has_context[v]
        else:
            assert not task.has_context[v] and (task.targets[v] == 0).all()
    # k = 2 with LP pseudo labels.  Hard: the histogram of task.labels over the 2-hop ball
    # minus v.  Soft: the mean of the LP class distributions (one-hot for training nodes).
    hard = _prep(ContextLabel(k=2, source="lp", soft=False), toy)
    soft = _prep(ContextLabel(k=2, source="lp", soft=True), toy)
    lp = label_propagation(graph, tr, y[tr], 3)
    lp[tr.numpy()] = np.eye(3)[y[tr].numpy()]
    assert (hard.labels[tr.numpy()] == y[tr].numpy()).all()
    np.testing.assert_array_equal(hard.labels, soft.labels)
    for v in range(15):
        ball = [u for u, d in _nx_dist(G, v).items() if 1 <= d <= 2]
        if not ball:
            assert not hard.has_context[v] and not soft.has_context[v]
            continue
        counts = np.bincount(hard.labels[ball], minlength=3)
        np.testing.assert_allclose(hard.targets[v], counts / counts.sum(), rtol=1e-6)
        np.testing.assert_allclose(soft.targets[v], lp[ball].mean(0), rtol=1e-5)


def test_context_label_keep_fraction(toy):
    """keep_fraction=0.4: only the 40 % most confident pseudo-labelled nodes (by LP score,
    ties by node id) count in a context; training nodes always count."""
    G, graph, x, y, tr = toy
    lp = label_propagation(graph, tr, y[tr], 3)
    train = set(tr.tolist())
    pseudo = [v for v in range(15) if v not in train]
    ranked = sorted(pseudo, key=lambda v: (-lp[v].max(), -v))  # most confident first; ties: larger id kept
    kept = set(ranked[:int(np.ceil(0.4 * len(pseudo)))]) | train
    label = {v: (int(y[v]) if v in train else int(lp[v].argmax())) for v in range(15)}
    for soft in (False, True):
        task = _prep(ContextLabel(k=1, source="lp", soft=soft, keep_fraction=0.4), toy)
        assert task.config()["keep_fraction"] == 0.4
        for v in range(15):
            ctx = [u for u in G.neighbors(v) if u in kept]
            if not ctx:
                assert not task.has_context[v] and (task.targets[v] == 0).all()
                continue
            if soft:
                rows = [np.eye(3)[label[u]] if u in train else lp[u] for u in ctx]
                ref = np.mean(rows, 0)
            else:
                ref = np.bincount([label[u] for u in ctx], minlength=3) / len(ctx)
            np.testing.assert_allclose(task.targets[v], ref, rtol=1e-5, atol=1e-7)
    full = _prep(ContextLabel(k=1, source="lp", soft=False, keep_fraction=1.0), toy)
    assert full.has_context.sum() >= task.has_context.sum()
    with pytest.raises(ConfigError, match="keep_fraction"):
        ContextLabel(keep_fraction=0.0)


def test_label_propagation_reference(toy):
    G, graph, x, y, tr = toy
    a = nx.to_numpy_array(G, nodelist=range(15))
    deg = a.sum(1)
    s = a / np.sqrt(np.outer(deg, deg))
    y0 = np.zeros((15, 3))
    y0[tr.numpy(), y[tr].numpy()] = 1
    f = y0.copy()
    for _ in range(30):
        f = 0.8 * s @ f + 0.2 * y0
    f = f / f.sum(1, keepdims=True)
    f[tr.numpy()] = y0[tr.numpy()]
    got = label_propagation(graph, tr, y[tr], 3, alpha=0.8, num_iters=30)
    np.testing.assert_allclose(got, f, atol=1e-10)


def test_corrected_label_refresh_uses_predictions(toy):
    task = _prep(CorrectedLabel(k=1, num_prototypes=3), toy)
    y = toy[3]
    assert (task.corrected[toy[4].numpy()] == y[toy[4]].numpy()).all()
    probs = torch.zeros(15, 3)
    probs[:, 2] = 1.0  # a model that predicts class 2 everywhere dominates the ensemble
    task.model_weight = 10.0
    task.refresh(probs, torch.randn(15, 6))
    unl = np.setdiff1d(np.arange(15), toy[4].numpy())
    assert (task.labels[unl] == 2).all()
    assert np.isfinite(task.loss(torch.randn(15, 6), task.head(6, 3)).item())


LABEL_TASKS = [
    lambda: Distance2Labeled(),
    lambda: ContextLabel(source="lp"),
    lambda: ContextLabel(source="ica", k=2),
    lambda: EnsembleLabel(),
    lambda: CorrectedLabel(),
]


@pytest.mark.parametrize("make", LABEL_TASKS)
def test_no_label_leakage(make):
    ds = _sbm_dataset()
    scrambled = copy.copy(ds)
    y = ds.y.clone()
    other = torch.cat([ds.val_idx, ds.test_idx])
    y[other] = torch.from_numpy(np.random.default_rng(3).permutation(y[other].numpy()))
    y[ds.test_idx[:5]] = (y[ds.test_idx[:5]] + 1) % 3
    scrambled.y = y
    a = make().prepare_dataset(ds, np.random.default_rng(0))
    b = make().prepare_dataset(scrambled, np.random.default_rng(0))
    np.testing.assert_array_equal(a.targets, b.targets)
    if hasattr(a, "corrected"):
        np.testing.assert_array_equal(a.corrected_targets, b.corrected_targets)
    # the joint model reads the dataset the same way
    m1 = SelfTaskGCN(ds.num_features, 3, pretext=make(), hidden_channels=4, pretext_seed=1)
    m2 = SelfTaskGCN(ds.num_features, 3, pretext=make(), hidden_channels=4, pretext_seed=1)
    m1.prepare(ds)
    m2.prepare(scrambled)
    np.testing.assert_array_equal(m1.pretext.targets, m2.pretext.targets)


# ----------------------------------------------------------------------------- joint training
def test_total_loss_is_ce_plus_lambda_ssl():
    ds = _sbm_dataset()
    lam = 2.5
    model = SelfTaskGCN(ds.num_features, 3, pretext="distance2labeled", lam=lam, hidden_channels=8, dropout=0.0,
                        pretext_seed=0)
    ref = copy.deepcopy(model)
    cfg = NodeTrainConfig(epochs=1, patience=0, seed=0, progress=False, device="cpu")
    res = NodeClassificationTrainer(model, ds, cfg).fit()
    ref.prepare(ds)
    ref.train()
    logits = ref(ds.x, ds.graph)
    ce = F.cross_entropy(logits[ds.train_idx], ds.y[ds.train_idx])
    ssl = ref.pretext.loss(ref.last_hidden, ref.head)
    assert torch.allclose(ref.auxiliary_loss(), lam * ssl)
    assert res.history["train_loss"][0] == pytest.approx(float((ce + lam * ssl).detach()), rel=1e-5)
    ref.eval()
    ref(ds.x, ds.graph)
    assert ref.auxiliary_loss() is None


@pytest.mark.parametrize("name", sorted(TASKS))
def test_joint_model_trains_with_every_task(name):
    ds = _sbm_dataset()
    kw = {"pca_dim": 8} if name == "attribute_mask" else {"num_clusters": 3} if name == "distance2clusters" else {}
    model = SelfTaskGCN(ds.num_features, 3, pretext=name, lam=1.0, hidden_channels=16, pretext_kwargs=kw,
                        refresh_every=5)
    cfg = NodeTrainConfig(epochs=40, patience=0, seed=0, progress=False, device="cpu", select="val_acc")
    res = NodeClassificationTrainer(model, ds, cfg).fit()
    assert res.metrics["accuracy"] > 0.6
    assert res.record["hparams"]["pretext"]["name"] == name
    h = model.backbone.embed(ds.x, ds.graph)
    assert torch.isfinite(model.pretext.loss(h, model.head))


def test_refresh_is_called_for_prediction_tasks():
    ds = _sbm_dataset()
    model = SelfTaskGCN(ds.num_features, 3, pretext="ensemble_label", lam=1.0, hidden_channels=8, refresh_every=3,
                        pretext_seed=0)
    model.prepare(ds)
    calls = []
    orig = model.pretext.refresh
    model.pretext.refresh = lambda p, h: (calls.append(p.shape), orig(p, h))
    model.train()
    for _ in range(7):
        model(ds.x, ds.graph)
    assert calls == [(ds.num_nodes, 3)] * 2


def test_determinism_with_seed():
    ds = _sbm_dataset()

    def run(seed):
        m = SelfTaskGCN(ds.num_features, 3, pretext="pairwise_distance", lam=1.0, hidden_channels=8)
        torch.manual_seed(seed)
        m.reset_parameters()
        cfg = NodeTrainConfig(epochs=15, patience=0, seed=seed, progress=False, device="cpu")
        return NodeClassificationTrainer(m, ds, cfg).fit()

    a, b, c = run(3), run(3), run(4)
    assert a.history["train_loss"].tolist() == b.history["train_loss"].tolist()
    assert a.metrics == b.metrics
    assert a.history["train_loss"].tolist() != c.history["train_loss"].tolist()


def test_fit_passes_the_seed_to_the_trainer():
    from graphkit.training import fit

    ds = _sbm_dataset()
    res = fit(SelfTaskGCN, ds, seed=7, preset=False, epochs=2, progress=False, pretext="node_property",
              hidden_channels=8)
    assert res.record["seed"] == 7 and res.record["hparams"]["pretext_seed"] is None


def test_pretrain_then_finetune():
    ds = _sbm_dataset()
    backbone = GCN(ds.num_features, 3, hidden_channels=16)
    before = backbone.convs[0].lin.weight.detach().clone()
    out = pretrain(backbone, "pairwise_distance", ds, epochs=30, lr=0.01, seed=0)
    assert len(out.losses) == 30 and out.losses[-1] < out.losses[0]
    assert not torch.equal(before, backbone.convs[0].lin.weight)
    pre = backbone.convs[0].lin.weight.detach().clone()
    cfg = NodeTrainConfig(epochs=30, patience=0, seed=0, progress=False, device="cpu")
    res = NodeClassificationTrainer(backbone, ds, cfg).fit()  # fine-tuning keeps the pre-trained start
    assert res.metrics["accuracy"] > 0.6
    assert not torch.equal(pre, backbone.convs[0].lin.weight)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("make", [
    lambda: NodeProperty(num_bins=1),
    lambda: NodeProperty(mode="ranking"),
    lambda: EdgeMask(mask_ratio=0.0),
    lambda: EdgeMask(mask_ratio=1.5),
    lambda: PairwiseDistance(num_anchors=0),
    lambda: Distance2Clusters(num_clusters=0),
    lambda: AttributeMask(pca_dim=0),
    lambda: PairwiseAttrSim(k=True),
    lambda: ContextLabel(k=0),
    lambda: ContextLabel(source="knn"),
    lambda: CorrectedLabel(beta=2.0),
    lambda: get_task("jigsaw"),
    lambda: get_task("edge_mask", ratio=0.1),
    lambda: SelfTaskGCN(10, 3, lam=-1.0),
    lambda: SelfTaskGCN(10, 3, num_layers=1),
    lambda: SSLJointModel(torch.nn.Linear(3, 3), "edge_mask"),
    lambda: label_propagation(Graph.from_coo([0], [1], 2), [0], [0], 2, alpha=1.0),
])
def test_bad_arguments_raise_config_error(make):
    with pytest.raises(ConfigError):
        make()


def test_bad_prepare_inputs_raise_config_error(toy):
    G, graph, x, y, tr = toy
    with pytest.raises(ConfigError):
        NodeProperty().loss(torch.randn(15, 4), torch.nn.Linear(4, 5))  # before prepare
    with pytest.raises(ConfigError):
        ContextLabel().prepare(graph, x, tr, y[tr] + 5, 3)  # labels out of range
    with pytest.raises(ConfigError):
        AttributeMask(pca_dim=50).prepare(graph, x, tr, y[tr], 3)  # pca_dim > features
    with pytest.raises(ConfigError):
        Distance2Clusters(num_clusters=20).prepare(graph, x, tr, y[tr], 3)
    with pytest.raises(ConfigError):
        AttributeMask().prepare(graph, None, tr, y[tr], 3)
    task = _prep(NodeProperty(), toy)
    with pytest.raises(ConfigError):
        task.loss(torch.randn(14, 4), task.head(4, 3))
    em = _prep(EdgeMask(), toy)
    with pytest.raises(ConfigError):
        em.train_graph(Graph.from_coo([0], [1], 3))


# ----------------------------------------------------------------------------- real data (opt-in)
@pytest.mark.slow
@pytest.mark.data
def test_cora_context_label_runs():
    from conftest import require_dataset

    require_dataset("planetoid", "raw", "ind.cora.x")
    from graphkit.training.node import run_seeds

    r = run_seeds(SelfTaskGCN, "cora", [0], pretext="corrected_label", lam=1.0, epochs=100)
    assert r.mean["accuracy"] > 0.75
