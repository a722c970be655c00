"""Graph pre-training: the batch operations against networkx/PyG, each strategy's pieces against a
hand or NumPy computation, and a tiny pre-train -> fine-tune run through the public API."""
from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pytest
import torch

import graphkit
from graphkit.datasets.graph_collection import GraphCollection, hop_distances, rank_within, subgraph
from graphkit.exceptions import CheckpointError, ConfigError
from graphkit.pretraining import PretrainResult
from graphkit.pretraining.graphcl import augment, nt_xent
from graphkit.pretraining.masking import mask_nodes

from test_graph_prop import random_molecules


def _collection(n=16, seed=0, max_nodes=9, regression=False):
    return GraphCollection.from_data_list(random_molecules(n, seed=seed, max_nodes=max_nodes, regression=regression))


def test_hop_distances_equal_networkx_bfs():
    col = _collection(10, seed=1)
    b = col.batch(torch.arange(10))
    starts = torch.tensor([int(b.node_ptr[g]) for g in range(10)])
    dist = hop_distances(b, starts, max_hops=3)
    g = nx.Graph()
    g.add_nodes_from(range(b.num_nodes))
    g.add_edges_from(b.edge_index.t().tolist())
    for s in starts.tolist():
        ref = nx.single_source_shortest_path_length(g, s, cutoff=3)
        lo, hi = int(b.node_ptr[b.batch[s]]), int(b.node_ptr[b.batch[s] + 1])
        for v in range(lo, hi):
            assert int(dist[v]) == ref.get(v, -1)


def test_subgraph_equals_pyg_subgraph():
    from torch_geometric.utils import subgraph as pyg_subgraph

    b = _collection(8, seed=2).batch(torch.arange(8))
    keep = torch.rand(b.num_nodes, generator=torch.Generator().manual_seed(0)) < 0.6
    s = subgraph(b, keep)
    ei, ea = pyg_subgraph(keep, b.edge_index, b.edge_attr, relabel_nodes=True, num_nodes=b.num_nodes)
    assert torch.equal(s.edge_index, ei) and torch.equal(s.edge_attr, ea)
    assert torch.equal(s.x, b.x[keep]) and torch.equal(s.batch, b.batch[keep]) and s.num_graphs == 8


def test_rank_within_groups():
    groups = torch.tensor([1, 0, 1, 1, 0])
    keys = torch.tensor([0.5, 0.9, 0.1, 0.7, 0.2])
    assert rank_within(groups, keys).tolist() == [1, 1, 0, 2, 0]


def test_mask_count_is_hu_et_al():
    b = _collection(30, seed=3).batch(torch.arange(30))
    m = mask_nodes(b, 0.15, torch.Generator().manual_seed(0))
    n = torch.bincount(b.batch, minlength=30)
    got = torch.bincount(b.batch[m], minlength=30)
    assert got.tolist() == [min(k, int(k * 0.15 + 1)) for k in n.tolist()]


def test_nt_xent_matches_hand_formula():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    a = z1.numpy() / np.linalg.norm(z1.numpy(), axis=1, keepdims=True)
    c = z2.numpy() / np.linalg.norm(z2.numpy(), axis=1, keepdims=True)
    sim = a @ c.T / 0.1
    ref = np.mean([-math.log(math.exp(sim[i, i]) / sum(math.exp(sim[i, j]) for j in range(5) if j != i))
                   for i in range(5)])
    assert float(nt_xent(z1, z2, 0.1)) == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("how", ["drop_nodes", "subgraph"])
def test_augmentations_drop_the_paper_count_per_graph(how):
    b = _collection(20, seed=4).batch(torch.arange(20))
    out, _ = augment(b, how, 0.2, torch.Generator().manual_seed(1))
    n = torch.bincount(b.batch, minlength=20)
    kept = torch.bincount(out.batch, minlength=20)
    assert kept.tolist() == [k - int(k * 0.2) for k in n.tolist()]
    if how == "subgraph":  # kept nodes are a hop ball (plus random ties) around the start: connected to it
        g = nx.Graph()
        g.add_nodes_from(range(out.num_nodes))
        g.add_edges_from(out.edge_index.t().tolist())
        for gid in range(20):
            nodes = (out.batch == gid).nonzero().squeeze(1).tolist()
            comp = [c for c in nx.connected_components(g.subgraph(nodes))]
            full = nx.Graph(); full.add_nodes_from(range(b.num_nodes)); full.add_edges_from(b.edge_index.t().tolist())
            n_comp_before = nx.number_connected_components(full.subgraph((b.batch == gid).nonzero().squeeze(1).tolist()))
            assert len(comp) <= max(1, n_comp_before)


@pytest.mark.parametrize("strategy", ["attr_masking", "context_pred", "graphcl"])
def test_tiny_pretrain_then_finetune(tmp_path, strategy):
    corpus = _collection(40, seed=5)
    res = graphkit.pretrain("gin", corpus, strategy=strategy, epochs=3, batch_size=16, emb_dim=16, num_layers=2,
                            seed=3)
    assert len(res.history) == 3 and all(math.isfinite(r["loss"]) for r in res.history)
    assert res.strategy["strategy"] == strategy and res.corpus["num_graphs"] == 40
    path = res.save(tmp_path / "enc")
    back = PretrainResult.load(path)
    assert back.encoder_config == res.encoder_config
    assert all(torch.equal(back.encoder_state[k], v) for k, v in res.encoder_state.items())
    # fine-tuning starts from the pre-trained encoder: the loaded weights are the saved ones
    from graphkit.models.gin import GIN
    from graphkit.training.graph import load_encoder_into

    model = GIN(num_tasks=1, emb_dim=16, num_layers=2)
    info = load_encoder_into(model, path)
    assert info["strategy"]["strategy"] == strategy
    assert all(torch.equal(model.encoder.state_dict()[k], v) for k, v in res.encoder_state.items())


def test_pretraining_reduces_its_loss():
    # every atom of a graph has the graph's type (one of 5): a masked atom's type is predictable
    # from its neighbours, down to about log(5) for an isolated atom
    corpus = _collection(64, seed=6)
    graph_type = torch.randint(0, 5, (len(corpus),), generator=torch.Generator().manual_seed(0))
    corpus.x[:, 0] = graph_type.repeat_interleave(corpus.sizes())
    res = graphkit.pretrain("gin", corpus, strategy="attr_masking", epochs=30, batch_size=32, emb_dim=32,
                            num_layers=2, lr=3e-3, seed=0)
    assert res.history[0]["loss"] > 3.0 and res.history[-1]["loss"] < 1.0  # below log(5): neighbours used


def test_init_from_refuses_other_architectures(tmp_path):
    res = graphkit.pretrain("gin", _collection(20, seed=7), epochs=1, emb_dim=16, num_layers=2)
    res.save(tmp_path / "enc")
    from graphkit.models.gcn_graph import GCNGraph
    from graphkit.training.graph import load_encoder_into

    with pytest.raises(CheckpointError, match=r"conv: saved 'GINConv', model 'MolGCNConv'"):
        load_encoder_into(GCNGraph(num_tasks=1, emb_dim=16, num_layers=2), tmp_path / "enc")
    from graphkit.models.gin import GIN

    with pytest.raises(CheckpointError, match="emb_dim: saved 16, model 32"):
        load_encoder_into(GIN(num_tasks=1, emb_dim=32, num_layers=2), tmp_path / "enc")
    meta = json.loads((tmp_path / "enc" / "pretrain.json").read_text())
    meta["format"] = "other"
    (tmp_path / "enc" / "pretrain.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="field 'format'"):
        PretrainResult.load(tmp_path / "enc")
    with pytest.raises(CheckpointError, match="missing"):
        PretrainResult.load(tmp_path / "nothing")


def test_pretrain_refuses_unknown_strategy_and_options():
    with pytest.raises(ConfigError, match="unknown pre-training strategy"):
        graphkit.pretrain("gin", _collection(4), strategy="nope")
    with pytest.raises(ConfigError, match="augmentations"):
        graphkit.pretrain("gin", _collection(4), strategy="graphcl", strategy_options={"augmentations": ["x", "y"]})
    with pytest.raises(ConfigError, match="graph-level model"):
        graphkit.pretrain("lightgcn", _collection(4))


def test_real_valued_features_pretrain_and_finetune():
    """Non-molecule graphs (real node features, no edge features) go through a linear input encoder."""
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(0)
    graphs = []
    for i in range(24):
        n = 5 + i % 4
        ei = torch.tensor([[k for k in range(n - 1)] + [k + 1 for k in range(n - 1)],
                           [k + 1 for k in range(n - 1)] + [k for k in range(n - 1)]])
        graphs.append(Data(x=torch.randn(n, 3, generator=g), edge_index=ei, y=torch.tensor([[float(i % 2)]]),
                           num_nodes=n))
    col = GraphCollection.from_data_list(graphs)
    res = graphkit.pretrain("gcn-graph", col, strategy="attr_masking", epochs=2, batch_size=8, emb_dim=8,
                            num_layers=2)
    assert res.encoder_config["in_channels"] == 3 and res.encoder_config["edge_channels"] == 0
