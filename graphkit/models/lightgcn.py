"""LightGCN.

He, Deng, Wang, Li, Zhang, Wang. "LightGCN: Simplifying and Powering Graph
Convolution Network for Recommendation", SIGIR 2020.  https://arxiv.org/abs/2002.02126
"""
from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..exceptions import ConfigError, GraphError
from ..graph import Graph, _csr_tensor, csr_gather
from ..utils import is_finite_real
from .base import RecommenderModel
from .svd_start import svd_start


class _Propagate(torch.autograd.Function):
    r"""``(Σ_k α_k (Â^k E)[rows], E[rows])`` for k = 0..K, differentiable in E.

    Forward: layers 1..K-1 on every node, layer K only on ``rows`` (a row-sliced
    CSR ``sub`` = Â[rows, :]).  Backward, with s = Pᵀ G the output gradient placed on
    ``rows`` (P selects the rows): ∇E = α_0 s + Â(α_1 s + Â(α_2 s + … + Â(α_K s))),
    evaluated by Horner's rule.  Â is symmetric, so each step multiplies by the same
    CSR again: no transpose is ever built.  ``rows`` must be unique.
    """

    @staticmethod
    def forward(ctx, emb: torch.Tensor, adj: torch.Tensor, sub: torch.Tensor, rows: torch.Tensor,
                alpha: Tuple[float, ...]) -> Tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        K = len(alpha) - 1
        ego = emb[rows]
        out = ego * alpha[0]
        h = emb
        for k in range(1, K):
            h = torch.sparse.mm(adj, h)
            out.add_(h[rows], alpha=alpha[k])
        if K >= 1:
            out.add_(torch.sparse.mm(sub, h), alpha=alpha[K])
        ctx.save_for_backward(adj, rows)
        ctx.alpha = alpha
        ctx.num_nodes = emb.shape[0]
        return out, ego

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor, grad_ego: torch.Tensor):  # type: ignore[override]
        adj, rows = ctx.saved_tensors
        alpha = ctx.alpha
        g = grad_out.contiguous()
        acc = torch.zeros(ctx.num_nodes, g.shape[1], dtype=g.dtype, device=g.device)
        acc.index_copy_(0, rows, g * alpha[-1])
        for k in range(len(alpha) - 2, -1, -1):
            acc = torch.sparse.mm(adj, acc)  # Âᵀ = Â
            acc.index_add_(0, rows, g, alpha=alpha[k])
        if grad_ego is not None:
            acc.index_add_(0, rows, grad_ego)
        return acc, None, None, None, None


#: Values of ``LightGCN(init=...)``.
INITS = ("normal", "xavier", "svd")


class LightGCN(RecommenderModel):
    r"""LightGCN (He et al., SIGIR 2020, `arXiv:2002.02126 <https://arxiv.org/abs/2002.02126>`_).

    Light graph convolution keeps only neighbourhood aggregation: with the
    symmetric-normalized user–item adjacency :math:`\hat A = D^{-1/2} A D^{-1/2}`,

    .. math::
        E^{(k+1)} = \hat A E^{(k)}, \qquad
        E = \sum_{k=0}^{K} \alpha_k E^{(k)}, \qquad \hat y_{ui} = e_u^\top e_i,

    with :math:`\alpha_k = 1/(K+1)` by default.  Training minimises BPR,
    :math:`-\ln\sigma(\hat y_{ui} - \hat y_{uj})`, plus
    :math:`\lambda \cdot \tfrac12(\|e^{(0)}_u\|^2 + \|e^{(0)}_i\|^2 + \|e^{(0)}_j\|^2)`
    averaged over the batch (L2 on the batch's ego embeddings, as in the paper).

    Propagation is fused: layers 1..K-1 run on all nodes, layer K only on the
    batch's rows, and the backward pass multiplies by :math:`\hat A` again instead
    of a transpose (see :class:`_Propagate`).

    Args:
        num_users: number of users U.
        num_items: number of items I.
        embedding_dim: embedding size d.
        num_layers: number of propagation layers K.
        alpha: layer weights; a float gives all K+1 layers that weight, a sequence of
            K+1 floats gives each its own, None means 1/(K+1).
        reg_weight: λ, the weight of the L2 term on the batch's ego embeddings.
        init: how the ego embeddings are drawn.  ``"normal"`` (default, every paper preset):
            ``N(0, init_std²)``.  ``"xavier"``: Xavier/Glorot uniform, applied to the user
            table ``[U, d]`` and the item table ``[I, d]`` separately, i.e.
            ``U(±sqrt(6/(U + d)))`` and ``U(±sqrt(6/(I + d)))``; ``init_std`` is then unused.
            ``"svd"`` (a warm start, not in the paper): :meth:`prepare` sets the ego
            embeddings from the rank-``d`` truncated SVD ``R̃ ≈ P Σ Qᵀ`` of the normalised
            interaction matrix ``R̃ = D_u^{-1/2} R D_i^{-1/2}`` (the user-item block of
            ``Â``): users ``c·P Σ^{1/2}``, items ``c·Q Σ^{1/2}``, with ``c`` giving the rows the
            mean norm of ``N(0, init_std²)`` rows.  Propagation keeps this subspace (``Â`` maps
            ``P`` to ``Q`` scaled by ``Σ`` and back), so before any step the model already
            scores ``P h(Σ) Qᵀ``, a low-pass spectral filter of ``R̃``; BPR then trains from there.
        init_std: standard deviation of the ``"normal"`` initialisation.  The default 0.1 is
            the authors' PyTorch port (gusye1234/LightGCN-PyTorch: ``nn.init.normal_(std=0.1)``),
            not the paper, which states Xavier (``init="xavier"``); the authors' TensorFlow
            code draws from a normal with std 0.01 (``init_std=0.01``).  graphkit keeps 0.1
            because the port is the code most reproductions run, it reproduces the paper's
            numbers, and graphkit's recorded LightGCN runs use it (see the model card).
    """

    #: ``graphkit.tune``'s default ranges: the paper searched λ in {1e-6, ..., 1e-2} and K in 1..4
    #: (Sec. 4.1.2); lr, fixed at 1e-3 in the paper, is searched too (it sets time-to-quality).
    search_space: ClassVar[Dict[str, Tuple[Any, ...]]] = {
        "lr": ("log", 1e-4, 1e-2), "reg_weight": ("log", 1e-6, 1e-2), "num_layers": ("int", 1, 4)}

    #: ``preset="fast"``: the paper's preset updated by this recipe, for time-to-quality.
    #: Chosen on gowalla's validation recall@20 at a 600-second budget (tuning seed 7, 2
    #: threads; ``benchmarks/tune_fast_recipe.py``, 12 candidates in 4 rounds, table in the
    #: model card): batch 32,768 amortises the full-graph propagation of every step, the SVD
    #: warm start, 8 negatives per positive, lr 4e-2 decayed linearly to zero at the end of
    #: ``max_time`` (``scheduler="budget"``; without ``max_time`` it decays over ``epochs``).
    #: Validation every 2 epochs (it costs about a quarter of an epoch on gowalla), patience
    #: 10 evaluations.
    fast_presets: ClassVar[Dict[str, Dict[str, Any]]] = {
        "*": {"model": {"init": "svd"},
              "train": {"batch_size": 32768, "lr": 4e-2, "num_negatives": 8, "scheduler": "budget",
                        "eval_every": 2, "patience": 10}},
    }

    presets = {
        # Paper Sec. 4.1 / official code: d=64, K=3, lr 1e-3, λ=1e-4, batch 2048, Adam.
        # Initialisation: the class default, N(0, 0.1²) of the authors' PyTorch port (see init_std).
        # The official TF README runs amazon-book with batch 8192; ml-1m is not in the paper.
        "gowalla": {"model": {"embedding_dim": 64, "num_layers": 3, "reg_weight": 1e-4},
                    "train": {"lr": 1e-3, "batch_size": 2048, "epochs": 1000, "eval_every": 10, "patience": 5}},
        "yelp2018": {"model": {"embedding_dim": 64, "num_layers": 3, "reg_weight": 1e-4},
                     "train": {"lr": 1e-3, "batch_size": 2048, "epochs": 1000, "eval_every": 10, "patience": 5}},
        "amazon-book": {"model": {"embedding_dim": 64, "num_layers": 3, "reg_weight": 1e-4},
                        "train": {"lr": 1e-3, "batch_size": 2048, "epochs": 1000, "eval_every": 10, "patience": 5}},
        "ml-1m": {"model": {"embedding_dim": 64, "num_layers": 3, "reg_weight": 1e-4},
                  "train": {"lr": 1e-3, "batch_size": 2048, "epochs": 600, "eval_every": 10, "patience": 5}},
    }
    default_train = {"lr": 1e-3, "batch_size": 2048, "num_negatives": 1, "epochs": 1000,
                     "eval_every": 10, "patience": 5, "optimizer": "adam"}

    def __init__(
        self,
        num_users: int,
        num_items: int,
        embedding_dim: int = 64,
        num_layers: int = 3,
        alpha: Optional[Union[float, Sequence[float]]] = None,
        reg_weight: float = 1e-4,
        init_std: float = 0.1,
        init: str = "normal",
    ) -> None:
        super().__init__(num_users, num_items)
        for name, value, most in (("embedding_dim", embedding_dim, 1 << 16), ("num_layers", num_layers, 64)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):  # 8.5 must not become 8
                raise ConfigError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
            if value > most:
                raise ConfigError(f"{name} must be at most {most:,}, got {value!r}")
        if isinstance(reg_weight, bool) or not isinstance(reg_weight, Real):
            raise ConfigError(f"reg_weight must be a finite non-negative number, got {reg_weight!r}")
        if embedding_dim <= 0:
            raise ConfigError(f"embedding_dim must be positive, got {embedding_dim}")
        if num_layers < 0:
            raise ConfigError(f"num_layers must be >= 0, got {num_layers}")
        if not is_finite_real(reg_weight) or reg_weight < 0:
            raise ConfigError(f"reg_weight must be a finite non-negative number, got {reg_weight}")
        if not is_finite_real(init_std) or init_std <= 0:
            raise ConfigError(f"init_std must be a positive finite number, got {init_std!r}")
        if init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(map(repr, INITS))}, got {init!r}")
        if alpha is None:
            weights = [1.0 / (num_layers + 1)] * (num_layers + 1)
        elif isinstance(alpha, (int, float)):
            weights = [float(alpha)] * (num_layers + 1)
        else:
            weights = [float(a) for a in alpha]
            if len(weights) != num_layers + 1:
                raise ConfigError(f"alpha needs num_layers + 1 = {num_layers + 1} values, got {len(weights)}")
        self.embedding_dim = int(embedding_dim)
        self.num_layers = int(num_layers)
        self.alpha = alpha
        self.reg_weight = float(reg_weight)
        self.init_std = float(init_std)
        self.init = str(init)
        self.register_buffer("layer_weights", torch.tensor(weights, dtype=torch.float32), persistent=False)
        self.embedding = nn.Embedding(self.num_users + self.num_items, self.embedding_dim)
        self.graph: Optional[Graph] = None
        self._indptr_np: Optional[np.ndarray] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the ego embeddings: N(0, init_std²), or Xavier-uniform per table (``init``)."""
        w = self.embedding.weight
        if self.init == "xavier":
            # fan_in = d, fan_out = rows of the table, as xavier_uniform_ on a [rows, d] matrix
            nn.init.xavier_uniform_(w[: self.num_users])
            nn.init.xavier_uniform_(w[self.num_users:])
        else:
            nn.init.normal_(w, std=self.init_std)
        self.fresh_weights = True   # init="svd" replaces this draw in the next prepare()

    def hparams(self) -> Dict[str, Any]:
        """The constructor arguments of this instance, without ``init`` when it is the default
        ``"normal"``: run records and resumable checkpoints written before the option existed
        then still match (the trainer refuses to resume when the hyper-parameters differ)."""
        out = super().hparams()
        if out.get("init") == "normal":
            del out["init"]
        return out

    # ------------------------------------------------------------------ data
    def prepare(self, train: sp.csr_matrix, graph: Graph) -> None:
        """Keep the bipartite training graph and warm its normalized adjacency cache.

        Args:
            train: the ``[U, I]`` training matrix (unused: the graph holds the same edges).
            graph: the bipartite training graph (``dataset.graph()``).
        """
        if not graph.is_bipartite or graph.num_users != self.num_users or graph.num_items != self.num_items:
            raise GraphError(
                f"LightGCN({self.num_users} users, {self.num_items} items) needs a bipartite graph of the same "
                f"sizes, got {graph!r}"
            )
        self.graph = graph
        if self.init == "svd" and train is not None and self.fresh_weights:
            self.svd_warm_start(train)
        self._adj = graph.adjacency("sym")
        self._indptr_np = graph.indptr.cpu().numpy()
        self._indices_np = graph.indices.cpu().numpy()
        self._values_np = self._adj.values().detach().cpu().numpy()

    @torch.no_grad()
    def svd_warm_start(self, train: sp.csr_matrix, seed: int = 0) -> None:
        """Set the ego embeddings from the truncated SVD of the normalised interactions (``init="svd"``;
        :func:`graphkit.models.svd_start.svd_start`, rows scaled to the mean norm of ``N(0, init_std²)`` rows).

        Args:
            train: the ``[U, I]`` training matrix.
            seed: seed of the SVD solver's start vector (the result is deterministic).
        """
        users, items = svd_start(train, self.embedding_dim, self.init_std * np.sqrt(self.embedding_dim),
                                 seed=seed, shape=(self.num_users, self.num_items))
        w = self.embedding.weight
        w.copy_(torch.from_numpy(np.concatenate([users, items])).to(w.device))
        self.keep_weights()

    def _require_graph(self) -> Graph:
        if self.graph is None:
            raise GraphError("call model.prepare(train, graph) (or train with graphkit.fit) before using LightGCN")
        if self.graph.device != self.embedding.weight.device:
            self.prepare(None, self.graph.to(self.embedding.weight.device))  # type: ignore[arg-type]
        return self.graph

    # ------------------------------------------------------------------ propagation
    def propagate(self, graph: Optional[Graph] = None) -> torch.Tensor:
        """Final embeddings of all U + I nodes: Σ_k α_k Â^k E⁽⁰⁾ (differentiable).

        Args:
            graph: the graph to propagate on (default: the one given to :meth:`prepare`).
        """
        g = self._require_graph() if graph is None else graph
        h = self.embedding.weight
        out = h * self.layer_weights[0]
        for k in range(1, self.num_layers + 1):
            h = g.spmm(h, norm="sym")
            out = out + h * self.layer_weights[k]
        return out

    def forward(self, nodes: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Final embeddings of ``nodes`` (global ids: users 0..U-1, items U..U+I-1), or of all
        nodes when None.  For a subset the last layer is computed on those rows only."""
        g = self._require_graph()
        if nodes is None:
            return self.propagate(g)
        rows, inverse = torch.unique(nodes, return_inverse=True)
        out, _ = self._propagate_rows(rows)
        return out[inverse]

    def _propagate_rows(self, rows: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(final embeddings, ego embeddings) of the unique global node ids ``rows``."""
        rows_np = rows.cpu().numpy()
        counts = self._indptr_np[rows_np + 1] - self._indptr_np[rows_np]
        sub_ptr = np.zeros(rows_np.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=sub_ptr[1:])
        pos, _ = csr_gather(self._indptr_np, self._indices_np, rows_np)
        dev = self.embedding.weight.device
        sub = _csr_tensor(torch.from_numpy(sub_ptr).to(dev), torch.from_numpy(self._indices_np[pos]).to(dev),
                          torch.from_numpy(self._values_np[pos]).to(dev), (rows_np.shape[0], self.graph.num_nodes))
        alpha = tuple(float(a) for a in self.layer_weights)
        return _Propagate.apply(self.embedding.weight, self._adj, sub, rows.to(dev), alpha)

    # ------------------------------------------------------------------ training
    def loss(self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor) -> torch.Tensor:
        """BPR loss of a batch plus λ·½‖ego embeddings‖² / B (see the class docstring).

        Args:
            users: user ids, int64 ``[B]``.
            pos_items: one positive item per user, int64 ``[B]``.
            neg_items: negative items, int64 ``[B]`` or ``[B, n]``.
        """
        return self.loss_terms(users, pos_items, neg_items)["total"]

    def loss_terms(self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``{"bpr", "reg", "total"}`` for a batch; ``neg_items`` is [B] or [B, n].

        Args:
            users: user ids, int64 ``[B]``.
            pos_items: one positive item per user, int64 ``[B]``.
            neg_items: negative items, int64 ``[B]`` or ``[B, n]``.
        """
        self._require_graph()
        if neg_items.dim() == 1:
            neg_items = neg_items.unsqueeze(1)
        B, n = neg_items.shape
        U = self.num_users
        nodes = torch.cat([users, pos_items + U, neg_items.reshape(-1) + U])
        rows, inverse = torch.unique(nodes, return_inverse=True)
        final, ego = self._propagate_rows(rows)
        final = final[inverse]
        u_e, p_e, n_e = final[:B], final[B:2 * B], final[2 * B:].view(B, n, -1)
        pos_score = (u_e * p_e).sum(-1, keepdim=True)
        neg_score = (u_e.unsqueeze(1) * n_e).sum(-1)
        bpr = torch.nn.functional.softplus(neg_score - pos_score).mean()
        # ½‖e⁰‖² per occurrence in the batch (negatives averaged over the n draws), / B
        occ = torch.ones_like(nodes, dtype=ego.dtype)
        occ[2 * B:] = 1.0 / n
        weight = torch.zeros(rows.shape[0], dtype=ego.dtype, device=ego.device).index_add_(0, inverse, occ)
        reg = 0.5 * (ego.pow(2).sum(1) * weight).sum() / B
        total = bpr + self.reg_weight * reg
        return {"bpr": bpr, "reg": reg, "total": total}

    @torch.no_grad()
    def embeddings(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Final ``(user_embeddings [U, d], item_embeddings [I, d])``."""
        out = self.propagate()
        return out[: self.num_users], out[self.num_users:]

    # ------------------------------------------------------------------ fold-in (new users, items frozen)
    @torch.no_grad()
    def _fold_side(self, new: str) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """What folding in a new ``"user"`` (or ``"item"``) needs, cached until the weights change:
        ``(M, final embeddings, degrees)`` of the *other* side and ``(CᵀC, CᵀE⁽⁰⁾)`` over the
        trained nodes of the *same* side, with ``M = Σ_{k=1..K} α_k (Â^{k-1} E⁽⁰⁾)[other side]``,
        ``C = E_final − α_0 E⁽⁰⁾`` (their propagated part) and ``E⁽⁰⁾`` (their ego embeddings)."""
        g = self._require_graph()
        w = self.embedding.weight
        key = (w._version, w.data_ptr(), id(g))
        cached = getattr(self, "_fold_cache", None)
        if cached is None or cached[0] != key:
            h = w
            out = h * self.layer_weights[0]
            m = torch.zeros_like(w)
            for k in range(1, self.num_layers + 1):
                m.add_(h, alpha=float(self.layer_weights[k]))  # rows of layer k-1 feed the other side's layer k
                h = g.spmm(h, norm="sym")
                out = out + h * self.layer_weights[k]
            deg = g.degree(weighted=True).to(w.dtype)
            U = self.num_users
            sides = {}
            for side, same, other in (("user", slice(0, U), slice(U, None)), ("item", slice(U, None), slice(0, U))):
                ego = w[same].double()
                c = out[same].double() - float(self.layer_weights[0]) * ego
                # the Gram matrices are all the ridge needs: computed once here, not per fold-in call
                sides[side] = (m[other], out[other].contiguous(), deg[other], c.T @ c, c.T @ ego)
            cached = (key, sides)
            self._fold_cache = cached
        return cached[1][new]

    def fold_in_users(self, interactions: sp.csr_matrix, ego_ridge: Optional[float] = 0.01, steps: int = 0, lr: float = 1e-3,
                      num_negatives: int = 1, seed: int = 0) -> torch.Tensor:
        r"""Final embeddings of users *not* in the training graph, items frozen (no refit).

        A new user ``u`` with items ``N(u)`` joins the graph; with the item side frozen (the
        items' layer embeddings ``e_i^{(k)}`` of the trained graph, their final embeddings
        ``e_i``), LightGCN's own propagation gives the user's layers exactly:

        .. math::
            e_u^{(k+1)} = \sum_{i\in N(u)} \frac{e_i^{(k)}}{\sqrt{d_u\,(d_i + 1)}},\qquad
            e_u = \alpha_0 e_u^{(0)} + c_u,\quad c_u = \sum_{k=1}^{K} \alpha_k e_u^{(k)}

        (``d_i + 1``: the item's degree with the new edge).  The ego embedding
        :math:`e_u^{(0)}` is the one free parameter.  Trained users' egos are strongly
        aligned with their propagated part (they dominate the final embedding after
        training), so it is estimated from ``c_u`` the way the trained users have it: a
        ridge regression ``E⁽⁰⁾ ≈ C W`` over the trained users (``C`` their propagated
        parts), ``W = (CᵀC + λI)⁻¹ CᵀE⁽⁰⁾`` with ``λ = ego_ridge · tr(CᵀC)/d``, gives
        ``e_u^{(0)} = c_u W`` (``ego_ridge=None``: ``e_u^{(0)} = 0``, propagation only).
        Then, when ``steps > 0``, the ego takes ``steps`` Adam steps on the model's own loss
        for this user — BPR over its positives against ``num_negatives`` uniform non-positive
        items per positive, plus ``λ_reg·½‖e_u^{(0)}‖²`` — with every item embedding fixed.
        Users do not interact in LightGCN except through items, so users are independent.
        Defaults chosen on ml-1m's validation split (``benchmarks/bench_fold_in.py``, tuning
        seed 7, 300 held-out users; docs/recommender.md): ``ego_ridge`` 0.01 among
        {None, 0, 0.001, 0.003, 0.01, 0.03, 0.3, 3}, no steps (30-100 Adam steps after the
        estimate lowered validation recall, from a zero ego they recovered part of the gap).

        Args:
            interactions: ``[n, I]`` sparse matrix, the new users' items (non-zeros).
            ego_ridge: relative ridge weight of the ego estimate, or None for a zero ego.
            steps: Adam steps on the ego embeddings after the estimate (0: none).
            lr: their learning rate (the trainer's ``lr`` is the natural choice).
            num_negatives: negatives per positive and step.
            seed: seed of the negatives.

        Returns:
            ``[n, d]`` float tensor on the model's device: scores are ``e_u · e_i`` with the
            item embeddings of :meth:`embeddings`.  A user without items gets zeros.
        """
        return self._fold_in(interactions, "user", ego_ridge, steps, lr, num_negatives, seed)

    def fold_in_items(self, interactions: sp.csr_matrix, ego_ridge: Optional[float] = 0.01) -> torch.Tensor:
        r"""Final embeddings of items *not* in the training graph, users frozen: the mirror of
        :meth:`fold_in_users` (LightGCN's graph is symmetric).  A new item's layers are the
        propagation of its new edges over the frozen user layers,
        ``e_i^{(k+1)} = Σ_{u∈N(i)} e_u^{(k)} / sqrt(d_i (d_u + 1))``, and its ego is estimated
        from its propagated part by the ridge regression of the trained *items*.  (No BPR steps:
        BPR is written per user, an item has no loss of its own to descend.)

        Args:
            interactions: ``[m, U]`` sparse matrix, the new items' users (non-zeros).
            ego_ridge: relative ridge weight of the ego estimate, or None for a zero ego.

        Returns:
            ``[m, d]`` float tensor on the model's device.
        """
        return self._fold_in(interactions, "item", ego_ridge, 0, 0.0, 1, 0)

    def _fold_in(self, interactions: sp.csr_matrix, new: str, ego_ridge: Optional[float], steps: int, lr: float,
                 num_negatives: int, seed: int) -> torch.Tensor:
        """:meth:`fold_in_users` (``new="user"``) or :meth:`fold_in_items` (``"item"``)."""
        width, name = (self.num_items, "num_items") if new == "user" else (self.num_users, "num_users")
        R = sp.csr_matrix(interactions, dtype=np.float32)
        if R.ndim != 2 or R.shape[1] != width:
            raise ConfigError(f"interactions must be [n, {name}={width}], got shape {R.shape}")
        if ego_ridge is not None and (not is_finite_real(ego_ridge) or ego_ridge < 0):
            raise ConfigError(f"ego_ridge must be a non-negative number or None, got {ego_ridge!r}")
        R.sum_duplicates()
        R.eliminate_zeros()
        R.data[:] = 1.0
        m, items_final, deg, ctc, cte = self._fold_side(new)
        dev = m.device
        d_u = np.diff(R.indptr).astype(np.float64)
        n = R.shape[0]
        rows = np.repeat(np.arange(n), np.diff(R.indptr))
        d_i = deg.cpu().numpy().astype(np.float64)[R.indices]
        vals = 1.0 / np.sqrt(d_u[rows] * (d_i + 1.0))
        norm = _csr_tensor(torch.from_numpy(R.indptr.astype(np.int64)).to(dev),
                           torch.from_numpy(R.indices.astype(np.int64)).to(dev),
                           torch.from_numpy(vals.astype(np.float32)).to(dev), R.shape)
        a0 = float(self.layer_weights[0])
        with torch.no_grad():
            prop = torch.sparse.mm(norm, m) if R.nnz else torch.zeros(n, m.shape[1], device=dev)
            if ego_ridge is None or a0 == 0.0:
                ego0 = torch.zeros_like(prop)
            else:
                d = ctc.shape[0]
                lam = float(ego_ridge) * float(torch.trace(ctc)) / d
                W = torch.linalg.solve(ctc + lam * torch.eye(d, dtype=ctc.dtype, device=ctc.device), cte)
                ego0 = (prop.double() @ W).to(prop.dtype)
        if steps <= 0 or R.nnz == 0:
            return a0 * ego0 + prop
        ego = ego0.clone().requires_grad_(True)
        opt = torch.optim.Adam([ego], lr=lr)
        gen = torch.Generator().manual_seed(int(seed))
        pos_u = torch.from_numpy(rows).to(dev)
        pos_i = torch.from_numpy(R.indices.astype(np.int64)).to(dev)
        pos_keys = rows.astype(np.int64) * self.num_items + R.indices  # sorted: R is canonical CSR
        rows_rep = np.repeat(rows.astype(np.int64), num_negatives) * self.num_items
        full = d_u[rows] >= self.num_items  # a user with every item has no negative: no BPR term

        def clashes(neg: torch.Tensor) -> torch.Tensor:
            keys = rows_rep + neg.reshape(-1).numpy()
            pos = np.minimum(np.searchsorted(pos_keys, keys), pos_keys.shape[0] - 1)
            hit = (pos_keys[pos] == keys).reshape(neg.shape) & ~full[:, None]
            return torch.from_numpy(hit)

        items_t = items_final.t().contiguous()
        for _ in range(int(steps)):
            neg = torch.randint(self.num_items, (pos_u.shape[0], num_negatives), generator=gen)
            clash = clashes(neg)
            while bool(clash.any()):  # negatives exclude the user's items, as in training
                neg[clash] = torch.randint(self.num_items, (int(clash.sum()),), generator=gen)
                clash = clashes(neg)
            neg = neg.to(dev)
            # all of a user's scores in one [n, I] product, then the sampled pairs picked from it:
            # cheaper than gathering [pairs, d] item rows when users have many positives
            scores = (a0 * ego + prop) @ items_t
            s_pos = scores[pos_u, pos_i].unsqueeze(1)
            s_neg = scores[pos_u.unsqueeze(1), neg]
            bpr = torch.nn.functional.softplus(s_neg - s_pos).mean()
            reg = 0.5 * ego[pos_u].pow(2).sum(1).mean()
            loss = bpr + self.reg_weight * reg
            opt.zero_grad()
            loss.backward()
            opt.step()
        return (a0 * ego + prop).detach()


__all__ = ["LightGCN"]
