r"""LargeGT: a graph transformer for large graphs, trained on sampled node sequences.

Paper: Vijay Prakash Dwivedi, Yozen Liu, Anh Tuan Luu, Xavier Bresson, Neil Shah, Tong Zhao,
"Graph Transformers for Large Graphs", arXiv 2312.11109, https://arxiv.org/abs/2312.11109.

For a node ``v`` of a mini-batch:

1. **Tokens.**  :class:`graphkit.sampling.LargeGTTokenSampler` draws ``K`` nodes
   ``[v, u_1, ..., u_{K-1}]`` from the 1- and 2-hop neighbourhood of ``v``.  Each of them
   contributes three tokens, its rows of the precomputed ``X``, ``ÂX`` and ``Â²X``
   (``Â = D̃^{-1/2}(A + I)D̃^{-1/2}``, :func:`hop_features`): a sequence of ``3K`` tokens whose
   receptive field reaches 4 hops with only 2-hop sampling.
2. **Local module.**  An MLP embeds every token; one pre-LayerNorm transformer layer
   (multi-head self-attention + FFN by default; full-width heads and no FFN, as in the
   authors' code, with ``head_width="full", encoder_ffn=False``) runs over the ``3K``
   tokens; a final LayerNorm; then an
   attention readout: with ``h_0`` the node's own ``X`` token and ``h_t`` the others,
   ``α = softmax_t(w^T [h_0 ‖ h_t] + b)`` and ``h_local = h_0 + Σ_t α_t h_t`` (the ``h_0`` half
   of ``w`` and ``b`` add the same value to every score and cancel in the softmax, so graphkit
   stores only the ``h_t`` half: the same function without parameters whose gradient is 0).
3. **Global module** (GOAT's approximate global attention).  The node's feature embedding is
   projected to ``global_dim`` (query space ``q``).  A codebook of ``C`` centroids, kept by
   EMA k-means on the layer-normalised ``q`` of each training batch
   (:class:`EMAKMeansCodebook`), provides keys and values, and the node attends over the
   centroids with logits ``q·k_c/√d + log n_c``, where ``n_c`` is the number of graph nodes
   currently assigned to centroid ``c``, so each centroid stands for its cluster's mass.
4. ``[h_local ‖ h_global]`` → FFN (Linear, LayerNorm, ReLU, dropout, twice) → linear classifier.

Main differences from the authors' code (the full list is in docs/models/largegt.md): the
default layer layout splits the width across the heads and has an FFN (option above);
LayerNorm replaces BatchNorm (batch statistics would make distributed training differ from
single-process training); the global query uses node features only (the paper appends
node2vec positional encodings, which graphkit does not compute); the codebook's EMA starts
from count 1 at each random centroid, so centroids that receive no points stay finite.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import ConfigError, GraphError
from ..graph import Graph
from .base import NodeModel

__all__ = ["LargeGT", "EMAKMeansCodebook", "hop_features", "token_sequences", "PAPER_PRESETS"]


# --------------------------------------------------------------------------- inputs
@torch.no_grad()
def hop_features(graph: Graph, x: torch.Tensor, num_hops: int = 2) -> torch.Tensor:
    """``[X, ÂX, …, Â^{num_hops}X]`` concatenated per node: ``[N, (num_hops + 1) * F]``.

    ``Â = D̃^{-1/2}(A + I)D̃^{-1/2}`` (GCN normalisation, :meth:`Graph.spmm` with
    ``norm="sym", self_loops=True``).  Computed once before training; a large table can be
    written to a :class:`~graphkit.feature_store.MemMapStore` and served from there.

    Args:
        graph: the graph (:class:`~graphkit.graph.Graph`).
        x: node features ``[N, F]``.
        num_hops: the largest power of ``Â`` (2 in the paper).
    """
    if x.dim() != 2 or x.shape[0] != graph.num_nodes:
        raise GraphError(f"x must have shape [{graph.num_nodes}, F], got {tuple(x.shape)}")
    if x.layout != torch.strided:
        x = x.to_dense()
    x = x.to(torch.float32)
    out = [x]
    h = x
    for _ in range(num_hops):
        h = graph.spmm(h, norm="sym", self_loops=True)
        out.append(h)
    return torch.cat(out, dim=1)


def token_sequences(features: Any, token_ids: torch.Tensor, num_hops: int = 2) -> torch.Tensor:
    """The local module's input ``[B, (num_hops+1)·K, F]`` for token ids ``[B, K]``.

    ``features`` is the :func:`hop_features` table (a tensor or any feature store with
    ``gather``); token ``3j + h`` of row ``b`` is ``Â^h X`` of node ``token_ids[b, j]``.
    """
    if token_ids.dim() != 2:
        raise ConfigError(f"token_ids must be [B, K], got shape {tuple(token_ids.shape)}")
    rows = features.gather(token_ids) if hasattr(features, "gather") and not isinstance(features, torch.Tensor) \
        else features[token_ids.to(features.device)]
    B, K, D = rows.shape
    if D % (num_hops + 1):
        raise ConfigError(f"feature width {D} is not a multiple of num_hops + 1 = {num_hops + 1}")
    return rows.reshape(B, K * (num_hops + 1), D // (num_hops + 1))


def _all_gather_varlen(t: torch.Tensor) -> torch.Tensor:
    """Concatenation over ranks of 1-D tensors of different lengths (rank order)."""
    import torch.distributed as dist

    world = dist.get_world_size()
    n = torch.tensor([t.shape[0]], device=t.device, dtype=torch.long)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    m = int(max(int(s) for s in sizes))
    padded = torch.zeros(m, dtype=t.dtype, device=t.device)
    padded[: t.shape[0]] = t
    parts = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s)] for p, s in zip(parts, sizes)])


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


# --------------------------------------------------------------------------- codebook
class EMAKMeansCodebook(nn.Module):
    r"""Centroids maintained by exponential-moving-average k-means (VQ-VAE / GOAT style).

    For a batch of vectors ``z_i`` (already normalised by the caller):

    * assignment ``a_i = argmin_c ‖z_i − μ_c‖²``;
    * batch statistics ``n_c = #{i: a_i = c}``, ``s_c = Σ_{a_i = c} z_i``;
    * ``N_c ← γ N_c + (1 − γ) n_c`` and ``M_c ← γ M_c + (1 − γ) s_c``;
    * Laplace smoothing ``Ñ_c = (N_c + ε) / (Σ_j N_j + C ε) · Σ_j N_j``;
    * centroids ``μ_c = M_c / Ñ_c``.

    Initially ``μ_c ~ N(0, I)``, ``N_c = 1`` and ``M_c = μ_c``.  Under
    ``torch.distributed`` the batch statistics ``n_c`` and ``s_c`` are summed over ranks
    before the update, so every rank keeps the codebook a single process would.

    It also remembers the latest centroid of every graph node (``assignment``, random at
    the start, updated for each batch's nodes) and the number of nodes per centroid
    (``node_counts``), which the global attention uses as its log-count bias.

    Args:
        num_centroids: ``C``.
        dim: vector width.
        decay: ``γ``.
        eps: ``ε`` of the Laplace smoothing.
        num_nodes: number of graph nodes to track (0: no per-node assignment; the attention
            bias then uses the smoothed EMA counts ``Ñ_c`` instead).
    """

    def __init__(self, num_centroids: int, dim: int, decay: float = 0.99, eps: float = 1e-5, num_nodes: int = 0) -> None:
        super().__init__()
        if num_centroids < 1 or dim < 1:
            raise ConfigError(f"num_centroids and dim must be positive, got {num_centroids} and {dim}")
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"decay must be in [0, 1), got {decay}")
        self.num_centroids = int(num_centroids)
        self.dim = int(dim)
        self.decay = float(decay)
        self.eps = float(eps)
        self.register_buffer("centroids", torch.zeros(num_centroids, dim))
        self.register_buffer("ema_count", torch.ones(num_centroids))
        self.register_buffer("ema_sum", torch.zeros(num_centroids, dim))
        self.register_buffer("assignment", torch.zeros(0, dtype=torch.long))
        self.register_buffer("node_counts", torch.zeros(num_centroids, dtype=torch.long))
        self.reset_parameters()
        self.track_nodes(num_nodes)

    def reset_parameters(self) -> None:
        """Centroids from ``N(0, I)``, EMA counts 1, EMA sums equal to the centroids."""
        with torch.no_grad():
            self.centroids.normal_()
            self.ema_count.fill_(1.0)
            self.ema_sum.copy_(self.centroids)

    def track_nodes(self, num_nodes: int, generator: Optional[torch.Generator] = None) -> None:
        """Start tracking ``num_nodes`` graph nodes, each assigned to a random centroid.

        Args:
            num_nodes: number of graph nodes.
            generator: torch generator of the random initial assignment.
        """
        dev = self.centroids.device
        if num_nodes <= 0:
            self.assignment = torch.zeros(0, dtype=torch.long, device=dev)
            self.node_counts = torch.zeros(self.num_centroids, dtype=torch.long, device=dev)
            return
        a = torch.randint(0, self.num_centroids, (int(num_nodes),), generator=generator)
        self.assignment = a.to(dev)
        self.node_counts = torch.bincount(self.assignment, minlength=self.num_centroids)

    def smoothed_counts(self) -> torch.Tensor:
        """``Ñ_c`` (Laplace-smoothed EMA counts)."""
        total = self.ema_count.sum()
        return (self.ema_count + self.eps) / (total + self.num_centroids * self.eps) * total

    def log_counts(self) -> torch.Tensor:
        """The attention bias: ``log`` of the nodes per centroid (``-inf`` for empty ones)."""
        if self.assignment.numel():
            return torch.log(self.node_counts.to(self.centroids.dtype))
        return torch.log(self.smoothed_counts())

    @torch.no_grad()
    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest centroid of every row of ``z``."""
        d = (z * z).sum(1, keepdim=True) - 2.0 * z @ self.centroids.t() + (self.centroids ** 2).sum(1)
        return d.argmin(dim=1)

    @torch.no_grad()
    def update(self, z: torch.Tensor, node_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """One EMA k-means step on the batch ``z`` ``[B, dim]``; returns the assignments.

        Args:
            z: the batch vectors ``[B, dim]``.
            node_ids: global ids of the batch nodes, to update their tracked assignment.
        """
        z = z.detach().to(self.centroids.dtype)
        a = self.assign(z)
        n = torch.bincount(a, minlength=self.num_centroids).to(z.dtype)
        s = torch.zeros_like(self.ema_sum).index_add_(0, a, z)
        dist_on = _distributed()
        if dist_on:
            import torch.distributed as dist

            dist.all_reduce(n)
            dist.all_reduce(s)
        self.ema_count.mul_(self.decay).add_(n, alpha=1.0 - self.decay)
        self.ema_sum.mul_(self.decay).add_(s, alpha=1.0 - self.decay)
        self.centroids.copy_(self.ema_sum / self.smoothed_counts().unsqueeze(1))
        if node_ids is not None and self.assignment.numel():
            ids = node_ids.to(self.assignment.device, torch.long)
            new = a.to(self.assignment.device)
            if dist_on:
                ids = _all_gather_varlen(ids)
                new = _all_gather_varlen(new)
            self._reassign(ids, new)
        return a

    def _reassign(self, ids: torch.Tensor, new: torch.Tensor) -> None:
        if ids.numel() == 0:
            return
        uniq, inv = torch.unique(ids, return_inverse=True)
        if uniq.numel() != ids.numel():  # duplicates: the last occurrence wins
            last = torch.full((uniq.numel(),), -1, dtype=torch.long, device=ids.device)
            last.scatter_reduce_(0, inv, torch.arange(ids.numel(), device=ids.device), reduce="amax")
            ids, new = uniq, new[last]
        old = self.assignment[ids]
        self.node_counts.index_add_(0, old, torch.full_like(old, -1))
        self.node_counts.index_add_(0, new, torch.ones_like(new))
        self.assignment[ids] = new

    def extra_repr(self) -> str:
        """Sizes and decay, for ``repr``."""
        return f"num_centroids={self.num_centroids}, dim={self.dim}, decay={self.decay}, tracked_nodes={self.assignment.numel()}"


# --------------------------------------------------------------------------- layers
class _MultiHeadAttention(nn.Module):
    """Multi-head self-attention over ``dim``-wide tokens.

    ``head_dim`` is the width of each head: ``dim // heads`` (the usual split, output ``dim``
    wide) or ``dim`` (every head gets the full width and the output is ``heads · dim`` wide,
    as in the authors' code).  Logits are scaled by ``1/√head_dim``.  The key projection has
    no bias: a key bias adds the same ``q·b`` to every logit of a query, which the softmax
    cancels (its gradient is zero)."""

    def __init__(self, dim: int, heads: int, dropout: float, head_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        self.width = heads * head_dim
        self.query = nn.Linear(dim, self.width)
        self.key = nn.Linear(dim, self.width, bias=False)
        self.value = nn.Linear(dim, self.width)
        self.out = nn.Linear(self.width, self.width)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = (lin(x).view(B, T, self.heads, self.head_dim).transpose(1, 2)
                   for lin in (self.query, self.key, self.value))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, T, self.width))


class _EncoderLayer(nn.Module):
    """Pre-LayerNorm transformer layer: ``r(x) + MHA(LN(x))``, then ``+ FFN(LN(·))`` when ``ffn``.

    With ``full_width=False`` the heads split ``dim`` and ``r`` is the identity.  With
    ``full_width=True`` every head is ``dim`` wide, the attention output is ``w = heads·dim``
    wide and ``r`` is a learned linear map ``dim → w`` (the authors' ``res_proj``, present
    for any number of heads).  The FFN is ``Linear(w, 2w) → GELU → Linear(2w, w)``; the
    authors' layer has none (``ffn=False``)."""

    def __init__(self, dim: int, heads: int, dropout: float, attn_dropout: float,
                 full_width: bool = False, ffn: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _MultiHeadAttention(dim, heads, attn_dropout, dim if full_width else dim // heads)
        w = self.width = self.attn.width
        self.res_proj = nn.Linear(dim, w) if full_width else None
        if ffn:
            self.norm2 = nn.LayerNorm(w)
            self.ffn = nn.Sequential(nn.Linear(w, 2 * w), nn.GELU(), nn.Linear(2 * w, w))
        else:
            self.norm2 = self.ffn = None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.res_proj is None else self.res_proj(x)
        x = res + self.dropout(self.attn(self.norm1(x)))
        if self.ffn is None:
            return x
        return x + self.dropout(self.ffn(self.norm2(x)))


def _mlp(i: int, h: int, dropout: float, norm: bool) -> nn.Sequential:
    layers = [nn.Linear(i, h)] + ([nn.LayerNorm(h)] if norm else []) + [nn.ReLU(), nn.Dropout(dropout), nn.Linear(h, h)]
    return nn.Sequential(*layers)


#: The paper's settings (Sec. 5 / Table 3 and the authors' scripts, docs/03_reproduce.md of
#: snap-research/LargeGT): sequence length K, hidden width, global dim (128 on papers100M, else
#: 64), 4096 centroids, 2 heads, Adam lr 1e-3, batch 1024 (2048 on snap-patents), 500 epochs budget,
#: and the authors' layer layout: full-width heads, no FFN in the local transformer layer.
PAPER_PRESETS: Dict[str, Dict[str, Any]] = {
    "ogbn-products": {"model": {"num_tokens": 100, "hidden_channels": 256, "global_dim": 64}, "batch_size": 1024},
    "snap-patents": {"model": {"num_tokens": 50, "hidden_channels": 128, "global_dim": 64}, "batch_size": 2048},
    "ogbn-papers100M": {"model": {"num_tokens": 100, "hidden_channels": 512, "global_dim": 128}, "batch_size": 1024},
}
for _p in PAPER_PRESETS.values():
    _p["model"].update({"num_centroids": 4096, "heads": 2, "dropout": 0.5, "attn_dropout": 0.0,
                        "head_width": "full", "encoder_ffn": False})
    _p["train"] = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": _p.pop("batch_size"), "epochs": 500,
                   "patience": 50, "select": "val_acc"}


class LargeGT(NodeModel):
    """LargeGT (Dwivedi et al., arXiv 2312.11109): local sequence attention + global codebook attention.

    Args:
        in_channels: node feature width F.
        num_classes: number of classes C.
        hidden_channels: transformer / MLP width.
        num_tokens: sampled nodes per sequence ``K`` (the node itself included); the local
            module sees ``(num_hops + 1) · K`` tokens.
        num_hops: powers of Â in the token features (2: ``X, ÂX, Â²X``).
        num_centroids: codebook size of the global module.
        global_dim: width of the global module's query space (the codebook vectors).
        heads: attention heads (local and global).
        dropout: dropout in the MLPs and after attention / FFN blocks.
        attn_dropout: dropout on attention weights.
        ema_decay: codebook EMA decay γ.
        mode: ``"full"`` (local + global), ``"local"`` or ``"global"`` (ablations).
        token_seed: seed of the token sequences drawn by :meth:`forward` on a whole graph.
        head_width: ``"split"`` (default): the ``heads`` heads share ``hidden_channels``
            (``hidden_channels / heads`` each, the usual transformer layout), and each branch
            outputs ``hidden_channels``.  ``"full"``: as in the authors' code, every head of the
            local and the global attention is ``hidden_channels`` wide; each branch then
            outputs ``w = heads · hidden_channels``, the local residual goes through a linear
            map ``hidden_channels → w``, the final LayerNorm and the readout work on width
            ``w`` and the output FFN maps ``[h_local ‖ h_global]`` to ``w`` and then to
            ``hidden_channels``.
        encoder_ffn: give the local transformer layer its position-wise FFN sublayer
            (``+ FFN(LN(·))``, default).  The authors' layer has none (``False``).

    ``head_width="full", encoder_ffn=False`` is the authors' architecture (snap-research/LargeGT,
    ``local_module.py`` and ``model.py``), used by the paper-dataset presets; the defaults (and
    the small-graph presets) are graphkit's layout, with which the model card's numbers were
    measured.  The other differences from the authors' code are listed in the model card.

    Mini-batch use (what :mod:`graphkit.training.minibatch` does)::

        feats = hop_features(graph, x)                       # [N, 3F], once
        sampler = LargeGTTokenSampler(graph, model.num_tokens, seed=0)
        ids = sampler.sample(batch_nodes)                    # [B, K]
        logits = model(token_sequences(feats, ids), node_ids=batch_nodes)

    ``model(x, graph)`` with ``x`` of shape ``[N, F]`` runs every node (token sequences drawn
    with ``token_seed``) in chunks, which is what the full-batch node trainer calls.
    """

    presets: ClassVar[Dict[str, Dict[str, Any]]] = {
        **PAPER_PRESETS,
        # graphkit's settings for the small Planetoid graphs (not in the paper), chosen on validation
        # accuracy: ~140-node training sets need small batches (16) to get enough updates at the
        # paper's lr 1e-3; raw (not row-normalised) bag-of-words features train much better here.
        **{name: {"model": {"num_tokens": 10, "hidden_channels": 64, "num_centroids": 64, "heads": 2,
                            "global_dim": 32, "dropout": 0.5, "attn_dropout": 0.0},
                  "train": {"lr": 1e-3, "weight_decay": 5e-4, "batch_size": 16, "epochs": 200, "patience": 30,
                            "select": "val_acc", "normalize_features": False}}
           for name in ("cora", "citeseer", "pubmed")},
    }
    default_train: ClassVar[Dict[str, Any]] = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 1024, "epochs": 100,
                                               "patience": 20, "select": "val_acc"}
    #: :func:`graphkit.fit` should train this model with the mini-batch trainer.
    trainer: ClassVar[str] = "minibatch"

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        hidden_channels: int = 256,
        num_tokens: int = 100,
        num_hops: int = 2,
        num_centroids: int = 4096,
        global_dim: int = 64,
        heads: int = 2,
        dropout: float = 0.5,
        attn_dropout: float = 0.0,
        ema_decay: float = 0.99,
        mode: str = "full",
        token_seed: int = 0,
        head_width: str = "split",
        encoder_ffn: bool = True,
    ) -> None:
        super().__init__(in_channels, num_classes)
        for name, value in (("hidden_channels", hidden_channels), ("num_tokens", num_tokens), ("heads", heads),
                            ("num_centroids", num_centroids), ("global_dim", global_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(num_hops, int) or num_hops < 0:
            raise ConfigError(f"num_hops must be an int >= 0, got {num_hops!r}")
        if mode not in ("full", "local", "global"):
            raise ConfigError(f"mode must be 'full', 'local' or 'global', got {mode!r}")
        for name, p in (("dropout", dropout), ("attn_dropout", attn_dropout)):
            if not 0.0 <= float(p) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {p!r}")
        if head_width not in ("split", "full"):
            raise ConfigError(f"head_width must be 'split' or 'full', got {head_width!r}")
        if not isinstance(encoder_ffn, bool):
            raise ConfigError(f"encoder_ffn must be True or False, got {encoder_ffn!r}")
        if head_width == "split" and hidden_channels % heads:
            raise ConfigError(f"hidden_channels ({hidden_channels}) must be divisible by heads ({heads}) "
                              "with head_width='split'")
        if head_width == "split" and global_dim % heads:
            raise ConfigError(f"global_dim ({global_dim}) must be divisible by heads ({heads}) "
                              "with head_width='split'")
        self.hidden_channels = hidden_channels
        self.num_tokens = num_tokens
        self.num_hops = num_hops
        self.num_centroids = num_centroids
        self.global_dim = global_dim
        self.heads = heads
        self.dropout = float(dropout)
        self.attn_dropout = float(attn_dropout)
        self.ema_decay = float(ema_decay)
        self.mode = mode
        self.token_seed = int(token_seed)
        self.head_width = head_width
        self.encoder_ffn = encoder_ffn
        h = hidden_channels
        full = head_width == "full"
        hd = h if full else h // heads          # width of one attention head
        w = self.branch_width = heads * hd      # width of each branch's output
        self.use_local = mode in ("full", "local")
        self.use_global = mode in ("full", "global")
        if self.use_local:
            self.token_mlp = _mlp(in_channels, h, self.dropout, norm=False)
            self.encoder = _EncoderLayer(h, heads, self.dropout, self.attn_dropout, full_width=full,
                                         ffn=encoder_ffn)
            self.final_norm = nn.LayerNorm(w)
            # the paper scores w^T [h_0 || h_t] + b; the h_0 half and b are the same for every t and
            # cancel in the softmax over t, so only the h_t half is a parameter here (same function)
            self.readout = nn.Linear(w, 1, bias=False)
        if self.use_global:
            self.node_mlp = _mlp(in_channels, h, self.dropout, norm=True)
            self.query_proj = nn.Linear(h, global_dim)
            self.g_query = nn.Linear(global_dim, w)
            self.g_key = nn.Linear(global_dim, w, bias=False)  # a key bias cancels in the softmax
            self.g_value = nn.Linear(global_dim, w)
            self.codebook = EMAKMeansCodebook(num_centroids, global_dim, decay=ema_decay)
        width = w * (int(self.use_local) + int(self.use_global))
        self.ffn = nn.Sequential(nn.Linear(width, w), nn.LayerNorm(w), nn.ReLU(), nn.Dropout(self.dropout),
                                 nn.Linear(w, h), nn.LayerNorm(h), nn.ReLU(), nn.Dropout(self.dropout))
        self.classifier = nn.Linear(h, num_classes)
        self._full_cache: Dict[Any, Any] = {}
        self.reset_parameters()

    # ------------------------------------------------------------------ NodeModel hooks
    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.LayerNorm)):
                m.reset_parameters()
        if self.use_global:
            self.codebook.reset_parameters()
            self.codebook.track_nodes(self.codebook.assignment.numel())

    def prepare(self, dataset: Any) -> None:
        """Track the dataset's nodes in the codebook (per-node assignments for the log-count bias)."""
        self.track_nodes(int(dataset.graph.num_nodes))

    def track_nodes(self, num_nodes: int) -> None:
        """(Re)start per-node centroid tracking for a graph of ``num_nodes`` nodes."""
        if self.use_global:
            g = torch.Generator().manual_seed(self.token_seed)
            self.codebook.track_nodes(num_nodes, generator=g)

    # ------------------------------------------------------------------ mini-batch hooks
    def feature_table(self, graph: Graph, x: torch.Tensor) -> torch.Tensor:
        """The table the feature store should hold: :func:`hop_features` of ``x`` ``[N, (hops+1)·F]``.

        Args:
            graph: the graph.
            x: node features ``[N, F]``.
        """
        return hop_features(graph, x, self.num_hops)

    def make_sampler(self, graph: Graph, seed: int = 0) -> Any:
        """The token sampler of this model (:class:`graphkit.sampling.LargeGTTokenSampler`).

        Args:
            graph: the graph to sample from.
            seed: base seed of the token draws.
        """
        from ..sampling import LargeGTTokenSampler

        return LargeGTTokenSampler(graph, self.num_tokens, seed=seed)

    def batch_args(self, store: Any, token_ids: torch.Tensor, nodes: torch.Tensor, device: Any,
                   epoch: int = 0) -> tuple:
        """``model(*batch_args(...))`` inputs: token sequences gathered from ``store`` and node ids.

        Args:
            store: the feature store holding :meth:`feature_table`.
            token_ids: sampled token ids ``[B, K]`` (from :meth:`make_sampler`).
            nodes: global ids of the batch nodes ``[B]``.
            device: where the model runs.
            epoch: the epoch (unused; part of the trainer's hook signature).
        """
        tokens = token_sequences(store, token_ids, self.num_hops).to(device, non_blocking=True)
        return tokens, None, nodes.to(device)

    # ------------------------------------------------------------------ forward
    def local_forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The local branch: token MLP, transformer layer and attention readout, ``[B, w]``
        (``w`` = ``branch_width``: ``hidden_channels``, or ``heads · hidden_channels`` with
        ``head_width="full"``).

        Args:
            tokens: token sequences ``[B, T, F]``.
        """
        h = self.final_norm(self.encoder(self.token_mlp(tokens)))
        h0, rest = h[:, :1], h[:, 1:]
        if rest.shape[1] == 0:
            return h0.squeeze(1)
        score = self.readout(rest)  # [B, T-1, 1] = w^T h_t (see __init__)
        alpha = torch.softmax(score, dim=1)
        return h0.squeeze(1) + (alpha * rest).sum(1)

    def global_forward(self, x_nodes: torch.Tensor, node_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The global branch: attention of each node over the codebook centroids, ``[B, w]``
        (``w`` = ``branch_width``).

        In training mode the codebook also takes one EMA k-means step on the batch queries.

        Args:
            x_nodes: the batch nodes' own features ``[B, F]`` (token 0 of each sequence).
            node_ids: global ids of the batch nodes (tracked assignments).
        """
        q_in = self.query_proj(self.node_mlp(x_nodes))  # [B, global_dim]
        z = F.layer_norm(q_in, (self.global_dim,))
        cb = self.codebook
        B, H, w = q_in.shape[0], self.heads, self.branch_width
        d = w // H                                                            # one head's width
        q = self.g_query(z).view(B, H, d).transpose(0, 1)                     # [H, B, d]
        cents = cb.centroids.clone()  # a snapshot: the EMA update below rewrites the buffer in place
        k = self.g_key(cents).view(-1, H, d).transpose(0, 1)           # [H, C, d]
        v = self.g_value(cents).view(-1, H, d).transpose(0, 1)         # [H, C, d]
        logits = q @ k.transpose(1, 2) / math.sqrt(d) + cb.log_counts()  # [H, B, C]
        attn = torch.softmax(logits, dim=-1)
        attn = F.dropout(attn, self.attn_dropout, self.training)
        out = (attn @ v).transpose(0, 1).reshape(B, w)
        if self.training:
            cb.update(z, node_ids)
        return out

    def forward_tokens(self, tokens: torch.Tensor, node_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits ``[B, C]`` from token sequences ``[B, (num_hops+1)·K, F]`` (:func:`token_sequences`).

        ``node_ids`` (global ids of the batch nodes) let the codebook track assignments.

        Args:
            tokens: token sequences ``[B, T, F]``.
            node_ids: global ids of the batch nodes.
        """
        if tokens.dim() != 3 or tokens.shape[-1] != self.in_channels:
            raise ConfigError(f"tokens must be [B, T, {self.in_channels}], got {tuple(tokens.shape)}")
        parts = []
        if self.use_local:
            parts.append(self.local_forward(tokens))
        if self.use_global:
            parts.append(self.global_forward(tokens[:, 0], node_ids))
        return self.classifier(self.ffn(torch.cat(parts, dim=1)))

    def forward(self, x: torch.Tensor, graph: Any = None,  # type: ignore[override]
                node_ids: Optional[torch.Tensor] = None, chunk_size: int = 1024, *,
                edge_weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Token sequences ``[B, T, F]`` → logits ``[B, C]``; or node features ``[N, F]`` with
        ``graph`` → logits ``[N, C]`` for every node (sequences drawn with ``token_seed``).

        With node features, ``graph`` may also be a PyG ``edge_index`` ``[2, E]``
        (``model(x, edge_index)``, weights as ``edge_weight=``): its graph is built once and
        cached (:meth:`NodeModel._as_graph`).

        Args:
            x: token sequences ``[B, T, F]``, or node features ``[N, F]``.
            graph: the graph or an ``edge_index`` (needed with node features).
            node_ids: global ids of the batch nodes (token-sequence input).
            chunk_size: nodes per chunk when running every node.
            edge_weight: optional weights ``[E]`` of an ``edge_index``'s edges.
        """
        if x.dim() == 3:
            return self.forward_tokens(x, node_ids)
        if graph is None:
            raise ConfigError("LargeGT.forward needs token sequences [B, T, F], or node features [N, F] and the graph")
        graph = self._as_graph(graph, x.shape[0], edge_weight)
        from ..sampling import LargeGTTokenSampler

        key = (id(graph), x.data_ptr(), tuple(x.shape))
        cached = self._full_cache.get("key")
        if cached != key:
            self._full_cache = {"key": key, "feats": hop_features(graph, x, self.num_hops),
                                "ids": LargeGTTokenSampler(graph, self.num_tokens, seed=self.token_seed).sample(
                                    torch.arange(graph.num_nodes))}
        if self.use_global and self.codebook.assignment.numel() != graph.num_nodes:
            self.track_nodes(graph.num_nodes)
        feats, ids = self._full_cache["feats"], self._full_cache["ids"].to(x.device)
        outs = []
        for s in range(0, graph.num_nodes, chunk_size):
            nodes = torch.arange(s, min(s + chunk_size, graph.num_nodes), device=x.device)
            outs.append(self.forward_tokens(token_sequences(feats, ids[nodes], self.num_hops), nodes))
        return torch.cat(outs)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.num_classes}, hidden={self.hidden_channels}, "
                f"K={self.num_tokens}, hops={self.num_hops}, centroids={self.num_centroids}, heads={self.heads}, "
                f"mode={self.mode!r}, head_width={self.head_width!r}, encoder_ffn={self.encoder_ffn})")
