"""Validate graphkit.w2pgnn (W2PGNN feasibility, Cao et al., KDD 2023, arXiv 2303.16458).

Three parts, each printed as a table and written to ``--out`` (JSON):

1. ``synthetic``: pre-training graphs drawn from four known graphons (2-block SBM,
   Erdos-Renyi, power law, smooth exponential); 25 downstream sets drawn from mixtures of
   them, from unrelated graphons, and from blends of the two.  The Spearman correlation
   between the estimated feasibility distance and the *true* distance of the downstream
   generator to the pre-training span:

       true_L2(W) = min over alpha in the simplex (grid step 0.05) of
                    || sort(W) - sort(sum_k alpha_k P_k) ||_{L2([0,1]^2)}

   where ``sort`` is the degree-sorted (measure-preserving, decreasing-degree) rearrangement,
   evaluated on a 128 x 128 grid; this is independent of the GW solver.  A second truth,
   ``true_GW``, runs :func:`graphkit.w2pgnn.fit_combination` on the *true* graphons (so it
   isolates the estimation error).  Two extra "stress" cases have graphons whose nodes are
   not told apart by degree (equal block degrees, a band); degree sorting cannot recover
   them, and they are reported separately.
2. ``real``: the four OGB molecule sets (bace, bbbp, esol, freesolv).  For each target, the
   feasibility of pre-training on the other three (domain bases and k-means cluster bases)
   next to the measured gain of pre-training: a 3-layer GIN (hidden 64) pre-trained by
   attribute masking on the other three sets, then fine-tuned on the target's scaffold
   split, against the same GIN trained from scratch (same seeds).  Metric from the OGB
   evaluator (rocauc for bace/bbbp, rmse for esol/freesolv), test score at the best
   validation epoch.  gain = pretrained - scratch for rocauc, scratch - pretrained for rmse
   (positive = pre-training helped); relative gain = gain / scratch.
3. ``timing``: graphon estimation for 2,000 graphs (synthetic and ogbg-molbbbp) and
   feasibility scoring.

Every part scores with the defaults of :func:`graphkit.w2pgnn.feasibility` (the paper's pipeline:
zero-padding, sorting-and-smoothing with TV denoising, integrated + domain + 5 topological bases,
exact GW distance at the entropic fit) and with domain / cluster bases alone.  ``--legacy`` adds
graphkit's previous defaults (``method="histogram", align="resize", distance="entropic"``) for
before/after tables from one run.  ``--tv-weights`` (synthetic part only) scores the default
pipeline at several TV weights, to choose the default on a validation seed.

    GRAPHKIT_DATA=/path/to/datasets python benchmarks/validate_w2pgnn.py --threads 1 --legacy --out runs/w2pgnn.json
    python benchmarks/validate_w2pgnn.py --parts synthetic --seed 2 --tv-weights 0 0.003 0.01 0.03 0.1 authors
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

import numpy as np
import torch

from graphkit import Graph
from graphkit import w2pgnn as W
from graphkit.utils import environment_record

Graphon = Callable[[np.ndarray, np.ndarray], np.ndarray]


# ============================================================================ synthetic graphons
def sbm(sizes: Sequence[float], P: Sequence[Sequence[float]]) -> Graphon:
    cuts = np.cumsum(sizes)[:-1]
    P = np.asarray(P, dtype=float)
    return lambda x, y: P[np.searchsorted(cuts, x, side="right"), np.searchsorted(cuts, y, side="right")]


def mix(fs: Sequence[Graphon], w: Sequence[float]) -> Graphon:
    return lambda x, y: sum(wi * f(x, y) for wi, f in zip(w, fs))


# every graphon is written with degree decreasing in x (its own degree-sorted version)
PRETRAIN: Dict[str, Graphon] = {
    "sbm": sbm([0.4, 0.6], [[0.6, 0.1], [0.1, 0.3]]),
    "erdos-renyi": lambda x, y: np.full(np.broadcast(x, y).shape, 0.15),
    "power-law": lambda x, y: 0.9 * ((1 - x) * (1 - y)) ** 2,
    "exponential": lambda x, y: 0.7 * np.exp(-(x + y)),
}
UNRELATED: Dict[str, Graphon] = {
    "core-periphery": lambda x, y: 0.8 * (np.minimum(x, y) < 0.2) + 0.02,
    "assortative-3": sbm([0.2, 0.3, 0.5], [[0.9, 0.02, 0.02], [0.02, 0.35, 0.02], [0.02, 0.02, 0.08]]),
    "max": lambda x, y: 0.9 * np.maximum(1 - x, 1 - y) ** 4,
    "logistic": lambda x, y: 1 / (1 + np.exp(10 * (x + y - 0.6))),
    "threshold": lambda x, y: 0.95 * (x + y < 0.5),
}
STRESS: Dict[str, Graphon] = {  # degree does not identify the nodes
    "assortative-equal-degree": sbm([0.5, 0.5], [[0.5, 0.05], [0.05, 0.5]]),
    "band": lambda x, y: 0.8 * np.exp(-8 * np.abs(x - y)),
}


def sample_graph(f: Graphon, n: int, rng: np.random.Generator) -> Graph:
    u = rng.random(n)
    A = np.triu(rng.random((n, n)) < f(u[:, None], u[None, :]), 1)
    r, c = np.nonzero(A)
    return Graph.from_coo(np.r_[r, c], np.r_[c, r], n)


def sample_set(f: Graphon, count: int, rng: np.random.Generator, lo: int = 40, hi: int = 150) -> List[Graph]:
    return [sample_graph(f, int(n), rng) for n in rng.integers(lo, hi + 1, count)]


def on_grid(f: Graphon, M: int) -> np.ndarray:
    g = (np.arange(M) + 0.5) / M
    return f(g[:, None], g[None, :])


def degree_sorted(Wm: np.ndarray) -> np.ndarray:
    order = np.argsort(-Wm.mean(1), kind="stable")
    return Wm[np.ix_(order, order)]


def simplex_grid(K: int, m: int) -> np.ndarray:
    return np.array([c for c in itertools.product(range(m + 1), repeat=K) if sum(c) == m], dtype=float) / m


def true_l2(f: Graphon, bases: Sequence[Graphon], M: int = 128, m: int = 20) -> float:
    D = degree_sorted(on_grid(f, M))
    G = np.stack([on_grid(b, M) for b in bases])
    best = np.inf
    for a in simplex_grid(len(bases), m):
        C = degree_sorted(np.tensordot(a, G, 1))
        best = min(best, float(np.sqrt(((C - D) ** 2).mean())))
    return best


def block_average(f: Graphon, R: int, sub: int = 8) -> torch.Tensor:
    return torch.tensor(degree_sorted(on_grid(f, R * sub)).reshape(R, sub, R, sub).mean((1, 3)))


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).correlation)


def part_synthetic(args: argparse.Namespace) -> Dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    R = args.resolution
    fam = list(PRETRAIN.values())
    pre = {k: sample_set(f, args.graphs_per_set, rng) for k, f in PRETRAIN.items()}
    true_bases = torch.stack([block_average(f, R) for f in fam])
    cases = []
    for i in range(8):
        a = np.eye(4)[[0, 2][i]] if i < 2 else rng.dirichlet(np.ones(4))
        cases.append(("mixture", f"mix{i}", mix(fam, a), a, 0.0))
    for k, u in UNRELATED.items():
        cases.append(("unrelated", k, u, None, 1.0))
    unrel = list(UNRELATED.items())
    for i, lam in enumerate([0.25, 0.5, 0.75] * 4):
        a = rng.dirichlet(np.ones(4))
        uname, u = unrel[i % len(unrel)]
        cases.append(("blend", f"blend{i}:{uname}", mix([mix(fam, a), u], [1 - lam, lam]), a, lam))
    for k, u in STRESS.items():
        cases.append(("stress", k, u, None, 1.0))

    legacy = dict(method="histogram", align="resize", distance="entropic")
    configs: Dict[str, Dict[str, Any]] = {}
    if args.tv_weights:
        for w in args.tv_weights:
            configs[f"paper_tv{w}"] = dict(tv_weight=w if w == "authors" else float(w))
    else:
        configs["paper"] = {}
        configs["domain"] = dict(bases="domain")
        configs["cluster"] = dict(bases="cluster", num_bases=4)
        if args.legacy:
            configs["legacy_domain"] = dict(bases="domain", **legacy)
            configs["legacy_cluster"] = dict(bases="cluster", num_bases=4, **legacy)
    rows = []
    print(f"\n== synthetic: {len(cases)} downstream sets, {args.graphs_per_set} graphs each, R={R}; "
          f"configs {list(configs)}")
    print(f"{'case':32s} {'kind':9s} {'lam':>4s} {'true_L2':>8s} {'true_GW':>9s} "
          + " ".join(f"{c[:12]:>12s}" for c in configs) + "  weights (first config with domains)")
    for kind, name, f, a, lam in cases:
        down = sample_set(f, args.graphs_per_set, rng)
        t0 = time.perf_counter()
        res = {c: W.feasibility(pre, down, resolution=R, seed=args.seed, **kw) for c, kw in configs.items()}
        secs = time.perf_counter() - t0
        true_fit = W.fit_combination(true_bases, block_average(f, R), seed=args.seed)
        tgw = true_fit.distance
        tl2 = true_l2(f, fam)
        row = dict(case=name, kind=kind, lam=lam, true_alpha=None if a is None else a.round(3).tolist(),
                   true_l2=tl2, true_gw=tgw, true_gw_exact=true_fit.exact_distance, seconds=secs)
        for c, r in res.items():
            row[f"distance_{c}"] = r.distance
            row[f"fitted_{c}"] = r.fitted_distance
            row[f"exact_{c}"] = r.exact_distance
            row[f"weights_{c}"] = dict(zip(r.basis_names, r.weights.numpy().round(3).tolist()))
            if a is not None and c.endswith("domain"):
                row[f"weight_error_{c}"] = float(np.abs(r.weights.numpy() - a).mean())
        rows.append(row)
        shown = next((r for c, r in res.items() if "domain" in c), next(iter(res.values())))
        print(f"{name:32s} {kind:9s} {lam:4.2f} {tl2:8.4f} {tgw:9.5f} "
              + " ".join(f"{r.distance:12.5g}" for r in res.values()) + f"  {np.round(shown.weights.numpy(), 2)}",
              flush=True)
    main = [r for r in rows if r["kind"] != "stress"]
    out: Dict[str, Any] = {"rows": rows, "num_main_cases": len(main), "configs": {c: {k: str(v) for k, v in kw.items()}
                                                                                   for c, kw in configs.items()}}
    for truth in ("true_l2", "true_gw"):
        for c in configs:
            est = f"distance_{c}"
            out[f"spearman_{est}_vs_{truth}"] = spearman([r[est] for r in main], [r[truth] for r in main])
            out[f"spearman_{est}_vs_{truth}_with_stress"] = spearman([r[est] for r in rows], [r[truth] for r in rows])
    for c in configs:
        errs = [r[f"weight_error_{c}"] for r in rows if f"weight_error_{c}" in r and r["kind"] == "mixture"]
        if errs:
            out[f"weight_error_{c}_mixtures"] = float(np.mean(errs))
    print("Spearman (main cases, n=%d):" % len(main))
    for k, v in out.items():
        if k.startswith("spearman") or k.startswith("weight_error"):
            print(f"  {k:60s} {v:+.3f}")
    return out


# ============================================================================ real data
MOLECULES = ["ogbg-molbace", "ogbg-molbbbp", "ogbg-molesol", "ogbg-molfreesolv"]


class GIN(torch.nn.Module):
    """A small GIN (GINE layers with OGB atom/bond encoders) and two heads."""

    def __init__(self, hidden: int, layers: int, num_tasks: int = 1, dropout: float = 0.2) -> None:
        super().__init__()
        from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder
        from torch_geometric.nn import GINEConv

        self.atom = AtomEncoder(hidden)
        self.mask_token = torch.nn.Parameter(torch.zeros(hidden))
        self.bonds = torch.nn.ModuleList(BondEncoder(hidden) for _ in range(layers))
        self.convs = torch.nn.ModuleList(
            GINEConv(torch.nn.Sequential(
                torch.nn.Linear(hidden, 2 * hidden), torch.nn.BatchNorm1d(2 * hidden), torch.nn.ReLU(),
                torch.nn.Linear(2 * hidden, hidden)))
            for _ in range(layers)
        )
        self.norms = torch.nn.ModuleList(torch.nn.BatchNorm1d(hidden) for _ in range(layers))
        self.dropout = dropout
        self.atom_head = torch.nn.Linear(hidden, 119)  # attribute masking: predict the atom type
        self.graph_head = torch.nn.Linear(hidden, num_tasks)

    def nodes(self, batch: Any, mask: Any = None) -> torch.Tensor:
        h = self.atom(batch.x)
        if mask is not None:
            h = torch.where(mask[:, None], self.mask_token.expand_as(h), h)
        for i, (conv, norm, bond) in enumerate(zip(self.convs, self.norms, self.bonds)):
            h = norm(conv(h, batch.edge_index, bond(batch.edge_attr)))
            if i < len(self.convs) - 1:
                h = torch.relu(h)
            h = torch.nn.functional.dropout(h, self.dropout, self.training)
        return h

    def forward(self, batch: Any) -> torch.Tensor:
        from torch_geometric.nn import global_mean_pool

        return self.graph_head(global_mean_pool(self.nodes(batch), batch.batch))


def pretrain_masking(model: GIN, graphs: Any, epochs: int, seed: int, mask_rate: float = 0.15) -> float:
    from torch_geometric.loader import DataLoader

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(graphs, batch_size=64, shuffle=True, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        for batch in loader:
            mask = torch.rand(batch.num_nodes, generator=gen) < mask_rate
            if not mask.any():
                continue
            logits = model.atom_head(model.nodes(batch, mask)[mask])
            loss = torch.nn.functional.cross_entropy(logits, batch.x[mask, 0])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return loss.item()


def finetune(model: GIN, ds: Any, epochs: int, seed: int) -> Dict[str, float]:
    """Train on ds's train split; the test score at the best validation epoch (OGB evaluator)."""
    from torch_geometric.loader import DataLoader

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    evaluator = ds.evaluator()
    metric = ds.eval_metric
    regression = ds.task_type == "regression"
    train = ds.split("train")
    y_train = torch.cat([d.y for d in train]).float()
    mu, sd = (float(y_train.mean()), float(y_train.std())) if regression else (0.0, 1.0)
    loaders = {k: DataLoader(ds.split(k), batch_size=64) for k in ("valid", "test")}
    train_loader = DataLoader(train, batch_size=64, shuffle=True, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    higher = metric != "rmse"
    best = {"valid": -np.inf if higher else np.inf, "test": float("nan"), "epoch": -1}

    def evaluate(loader: Any) -> float:
        model.eval()
        ys, ps = [], []
        with torch.no_grad():
            for b in loader:
                ps.append(model(b) * sd + mu)
                ys.append(b.y.float())
        return float(evaluator.eval({"y_true": torch.cat(ys).numpy(), "y_pred": torch.cat(ps).numpy()})[metric])

    for epoch in range(epochs):
        model.train()
        for b in train_loader:
            out = model(b)
            y = b.y.float()
            ok = ~torch.isnan(y)
            if regression:
                loss = torch.nn.functional.mse_loss(out[ok], (y[ok] - mu) / sd)
            else:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(out[ok], y[ok])
            opt.zero_grad()
            loss.backward()
            opt.step()
        v = evaluate(loaders["valid"])
        if (v > best["valid"]) if higher else (v < best["valid"]):
            best = {"valid": v, "test": evaluate(loaders["test"]), "epoch": epoch}
    return best


def part_real(args: argparse.Namespace) -> Dict[str, Any]:
    from graphkit import datasets

    data = {n: datasets.load(n) for n in MOLECULES}
    out: Dict[str, Any] = {"targets": {}}
    print(f"\n== real: OGB molecules, feasibility of pre-training on the other three (R={args.resolution})")
    legacy = dict(method="histogram", align="resize", distance="entropic")
    configs: Dict[str, Dict[str, Any]] = {"paper": {}, "domain": dict(bases="domain"), "cluster": dict(bases="cluster")}
    if args.legacy:
        configs["legacy_domain"] = dict(bases="domain", **legacy)
        configs["legacy_cluster"] = dict(bases="cluster", num_bases=4, **legacy)
    for target in MOLECULES:
        others = {n: data[n] for n in MOLECULES if n != target}
        t0 = time.perf_counter()
        res = {c: W.feasibility(others, data[target], resolution=args.resolution, seed=args.seed, **kw)
               for c, kw in configs.items()}
        secs = time.perf_counter() - t0
        entry: Dict[str, Any] = {"feasibility_seconds": secs}
        for c, r in res.items():
            entry[f"score_{c}"] = r.score
            entry[f"fitted_{c}"] = r.fitted_distance
            entry[f"exact_{c}"] = r.exact_distance
            entry[f"weights_{c}"] = dict(zip(r.basis_names, r.weights.numpy().round(3).tolist()))
            entry[f"basis_distances_{c}"] = dict(zip(r.basis_names, r.details["basis_distances"]))
        out["targets"][target] = entry
        dom = res["domain"]
        short = {k.split("-mol")[-1]: round(v, 2) for k, v in zip(dom.basis_names, dom.weights.tolist())}
        print(f"{target:18s} " + "  ".join(f"score({c}) {r.score:+.5g}" for c, r in res.items())
              + f"  domain weights {short}  ({secs:.1f}s)", flush=True)
    out["configs"] = list(configs)

    if args.gin_seeds > 0:
        from torch.utils.data import ConcatDataset

        print(f"\n== GIN (hidden {args.hidden}, {args.layers} layers): attribute-masking pre-training "
              f"({args.pretrain_epochs} epochs) then fine-tuning ({args.finetune_epochs} epochs) vs scratch; "
              f"seeds 0..{args.gin_seeds - 1}")
        for target in MOLECULES:
            ds = data[target]
            pool = ConcatDataset([data[n].dataset for n in MOLECULES if n != target])
            res = {"pretrained": [], "scratch": []}
            t0 = time.perf_counter()
            for seed in range(args.gin_seeds):
                torch.manual_seed(seed)
                scratch = GIN(args.hidden, args.layers, ds.num_tasks)
                torch.manual_seed(seed)
                pre = GIN(args.hidden, args.layers, ds.num_tasks)
                pretrain_masking(pre, pool, args.pretrain_epochs, seed)
                res["pretrained"].append(finetune(pre, ds, args.finetune_epochs, seed)["test"])
                res["scratch"].append(finetune(scratch, ds, args.finetune_epochs, seed)["test"])
            p, s = np.mean(res["pretrained"]), np.mean(res["scratch"])
            gain = (p - s) if ds.eval_metric != "rmse" else (s - p)
            entry = out["targets"][target]
            entry.update(metric=ds.eval_metric, pretrained=res["pretrained"], scratch=res["scratch"],
                         pretrained_mean=float(p), scratch_mean=float(s), gain=float(gain),
                         relative_gain=float(gain / abs(s)), gin_seconds=time.perf_counter() - t0)
            print(f"{target:18s} {ds.eval_metric:6s} pretrained {p:.4f} ± {np.std(res['pretrained']):.4f}  "
                  f"scratch {s:.4f} ± {np.std(res['scratch']):.4f}  gain {gain:+.4f} ({100 * gain / abs(s):+.1f}%)  "
                  f"({time.perf_counter() - t0:.0f}s)", flush=True)
        t = out["targets"]
        for which in [f"score_{c}" for c in out["configs"]]:
            out[f"spearman_{which}_vs_relative_gain"] = spearman([t[n][which] for n in MOLECULES],
                                                                 [t[n]["relative_gain"] for n in MOLECULES])
            print(f"Spearman({which}, relative gain) over 4 targets: {out[f'spearman_{which}_vs_relative_gain']:+.2f}"
                  "  (4 points: only values in {-1, -0.8, ..., 1} are possible; noisy)")
    return out


# ============================================================================ timing
def part_timing(args: argparse.Namespace) -> Dict[str, Any]:
    from graphkit import datasets

    rng = np.random.default_rng(args.seed + 1)
    out: Dict[str, Any] = {}
    f = mix(list(PRETRAIN.values()), [0.25] * 4)
    graphs = sample_set(f, 2000, rng)
    down = sample_set(UNRELATED["logistic"], 500, rng)
    R = args.resolution

    def timed(key: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        res = fn()
        out[key] = time.perf_counter() - t0
        return res

    legacy = dict(method="histogram", align="resize")
    print(f"\n== timing (threads={torch.get_num_threads()}, R={R})")
    timed("estimate_2000_synthetic_default_first_call", lambda: W.estimate_graphon(graphs, R))
    timed("estimate_2000_synthetic_default", lambda: W.estimate_graphon(graphs, R))
    timed("estimate_2000_synthetic_histogram_resize", lambda: W.estimate_graphon(graphs, R, **legacy))
    timed("estimate_2000_synthetic_usvt", lambda: W.estimate_graphon(graphs, R, method="usvt"))
    timed("cluster_bases_2000_synthetic", lambda: W.graphon_bases(graphs, "cluster", num_bases=4, resolution=R))
    timed("paper_bases_2000_synthetic", lambda: W.graphon_bases(graphs, resolution=R))
    res = timed("feasibility_2000_vs_500_default", lambda: W.feasibility(graphs, down, resolution=R))
    out["feasibility_2000_vs_500_default_fit_part"] = res.details["seconds_fit"]
    out["feasibility_2000_vs_500_default_num_bases"] = len(res.basis_names)
    res = timed("feasibility_2000_vs_500_cluster4_legacy",
                lambda: W.feasibility(graphs, down, bases="cluster", num_bases=4, resolution=R, distance="entropic",
                                      **legacy))
    out["feasibility_2000_vs_500_cluster4_legacy_fit_part"] = res.details["seconds_fit"]
    A, B = W.estimate_graphon(graphs, R), W.estimate_graphon(down, R)
    timed("exact_gw_R32", lambda: W.exact_gw(A, B))
    timed("entropic_gw_R32", lambda: W.entropic_gw(A, B))
    bbbp = timed("load_ogbg_molbbbp", lambda: datasets.load("ogbg-molbbbp"))
    timed("estimate_ogbg_molbbbp_2039_default", lambda: W.estimate_graphon(bbbp, R))
    timed("estimate_ogbg_molbbbp_2039_histogram_resize", lambda: W.estimate_graphon(bbbp, R, **legacy))
    out["num_edges_synthetic_2000"] = int(sum(g.num_edges for g in graphs) // 2)
    for k, v in out.items():
        print(f"  {k:45s} {v:.3f}" if isinstance(v, float) else f"  {k:45s} {v}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["synthetic", "real", "timing"],
                    choices=["synthetic", "real", "timing"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--graphs-per-set", type=int, default=60)
    ap.add_argument("--gin-seeds", type=int, default=3, help="0 skips the GIN runs")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--pretrain-epochs", type=int, default=3)
    ap.add_argument("--finetune-epochs", type=int, default=15)
    ap.add_argument("--legacy", action="store_true",
                    help="also score with graphkit's previous defaults (histogram, resize, entropic distance)")
    ap.add_argument("--tv-weights", nargs="+", default=None,
                    help="synthetic part: score only the default pipeline at these TV weights ('authors' allowed)")
    ap.add_argument("--out", default="runs/validate_w2pgnn.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    result: Dict[str, Any] = {"args": vars(args), "environment": environment_record(), "machine": platform.node(),
                              "load_average_start": os.getloadavg()}
    print(f"load average at start: {os.getloadavg()}")
    if "synthetic" in args.parts:
        result["synthetic"] = part_synthetic(args)
    if "real" in args.parts:
        result["real"] = part_real(args)
    if "timing" in args.parts:
        result["timing"] = part_timing(args)
    result["total_seconds"] = time.perf_counter() - t0
    result["load_average_end"] = os.getloadavg()
    print(f"\ntotal {result['total_seconds']:.0f}s; load average at end: {result['load_average_end']}")
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
