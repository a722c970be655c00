"""Does graph pre-training help on the OGB molecule sets, and does W2PGNN predict when?

Two studies, one script (resumable: every fine-tuning run is one JSON line in
``<out>/runs.jsonl``, every pre-trained encoder a folder in ``<out>/encoders/``):

1. **transfer** -- for each downstream set D of ``--datasets``, pre-train the encoder on the
   *other* sets (labels never read) with each strategy (attribute masking, context
   prediction, GraphCL), fine-tune on D with ``--seeds`` seeds, and compare with the same
   model trained from scratch with the same seeds (paired).  Test metric of the epoch
   selected on validation, OGB's evaluator.
2. **w2pgnn** -- (pre-training set, downstream set) pairs: every ordered pair of distinct
   sets (12 for 4 sets) plus "the other sets -> D" (4), pre-trained with attribute masking;
   the measured gain (relative, sign-adjusted so that > 0 means pre-training helped:
   ``(pre - scratch) / scratch`` for ROC-AUC, ``(scratch - pre) / scratch`` for RMSE, mean
   over seeds) against W2PGNN's feasibility (``graphkit.w2pgnn.feasibility``) for the paper's
   pipeline and graphkit's variants; Spearman's rho with a bootstrap 95 % interval over pairs.

Nothing here is tuned: the settings are fixed before any run (Hu et al.'s fine-tuning
protocol at a smaller width and fewer epochs, for a 2-core CPU; see ``--help``).

    python benchmarks/bench_pretraining.py --out runs/pretrain_study            # both studies
    python benchmarks/bench_pretraining.py --dry-run                            # 1 seed, tiny, fast
    python benchmarks/bench_pretraining.py --out runs/pretrain_study --report   # tables only
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

DATASETS = ("ogbg-molbace", "ogbg-molbbbp", "ogbg-molesol", "ogbg-molfreesolv")
STRATEGIES = ("attr_masking", "context_pred", "graphcl")
W2PGNN_VARIANTS = {
    "paper (integrated+domain+topological bases, exact GW)": {},
    "integrated basis only": {"bases": "all"},
    "entropic GW distance": {"distance": "entropic"},
}


def _args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--seeds", type=int, default=10, help="fine-tuning seeds 0..n-1 (paired scratch vs pre-trained)")
    p.add_argument("--emb-dim", type=int, default=64, help="hidden width (Hu et al.: 300; 64 fits a 2-core CPU)")
    p.add_argument("--num-layers", type=int, default=5)
    p.add_argument("--epochs", type=int, default=20, help="fine-tuning epochs (Hu et al.: 100)")
    p.add_argument("--pretrain-epochs", type=int, default=20, help="pre-training epochs (Hu et al.: 100)")
    p.add_argument("--pretrain-batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--study", choices=("transfer", "w2pgnn", "all"), default="all")
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--out", default="runs/pretrain_study")
    p.add_argument("--report", action="store_true", help="only rebuild the tables from runs.jsonl")
    p.add_argument("--dry-run", action="store_true", help="1 seed, width 16, 1 epoch, two sets: checks the pipeline")
    a = p.parse_args(argv)
    if a.dry_run:
        a.seeds, a.emb_dim, a.epochs, a.pretrain_epochs, a.bootstrap = 1, 16, 1, 1, 50
        a.datasets = "ogbg-molesol,ogbg-molfreesolv"
        a.out = a.out + "_dry"
    return a


def _done(path: Path) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["key"]] = rec
    return out


def _append(path: Path, rec: Dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:  # one line per run: a killed study loses at most one
        fh.write(json.dumps(rec, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _encoder(a: argparse.Namespace, strategy: str, corpus: Sequence[str]) -> Path:
    import graphkit
    from graphkit.pretraining import PretrainResult

    folder = Path(a.out) / "encoders" / f"{strategy}__{'+'.join(sorted(corpus))}"
    if (folder / "pretrain.json").is_file():
        return folder
    t0 = time.perf_counter()
    res = graphkit.pretrain("gin", list(corpus), strategy=strategy, epochs=a.pretrain_epochs,
                            batch_size=a.pretrain_batch, emb_dim=a.emb_dim, num_layers=a.num_layers, seed=0,
                            num_threads=a.threads)
    res.save(folder)
    print(f"  pre-trained {strategy} on {'+'.join(corpus)}: loss {res.history[0]['loss']:.3f} -> "
          f"{res.history[-1]['loss']:.3f} in {time.perf_counter() - t0:.0f}s", flush=True)
    assert isinstance(PretrainResult.load(folder), PretrainResult)
    return folder


def _finetune(a: argparse.Namespace, done: Dict[str, Any], runs: Path, dataset: str, seed: int,
              init: Optional[Path], label: str) -> Dict[str, Any]:
    import graphkit

    key = f"{label}|{dataset}|{seed}"
    if key in done:
        return done[key]
    t0 = time.perf_counter()
    r = graphkit.fit("gin", dataset, seed=seed, epochs=a.epochs, emb_dim=a.emb_dim, num_layers=a.num_layers,
                     num_threads=a.threads, progress=False, init_from=str(init) if init else None)
    metric = r.record["select_metric"]
    rec = {"key": key, "label": label, "dataset": dataset, "seed": seed, "metric": metric,
           "test": r.metrics[metric], "best_valid": r.record["best_valid"], "best_epoch": r.record["best_epoch"],
           "fingerprint": r.record["fingerprint"], "seconds": round(time.perf_counter() - t0, 2),
           "hparams": r.record["hparams"], "train": r.record["train"], "versions": r.record.get("versions"),
           "device": r.record.get("device"), "init_from": r.record.get("init_from")}
    _append(runs, rec)
    done[key] = rec
    print(f"  {label:<40} {dataset:<18} seed {seed}: test {metric} {rec['test']:.4f} "
          f"(valid {rec['best_valid']:.4f}, {rec['seconds']:.0f}s)", flush=True)
    return rec


def _gain(metric: str, pre: float, scratch: float) -> float:
    """Relative gain, > 0 when pre-training helped (lower RMSE/MAE is better)."""
    return (scratch - pre) / abs(scratch) if metric in ("rmse", "mae") else (pre - scratch) / abs(scratch)


def _pairs(datasets: Sequence[str]) -> List[Tuple[Tuple[str, ...], str]]:
    single = [((p,), d) for p, d in itertools.permutations(datasets, 2)]
    others = [(tuple(x for x in datasets if x != d), d) for d in datasets]
    return list(dict.fromkeys(single + others))  # with two sets, "the others" is the single other set


def run(a: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = out / "runs.jsonl"
    done = _done(runs)
    datasets = [d for d in a.datasets.split(",") if d]
    strategies = [s for s in a.strategies.split(",") if s]
    seeds = list(range(a.seeds))
    print(f"load average {os.getloadavg()}; {len(datasets)} sets, seeds {seeds}, width {a.emb_dim}", flush=True)
    for d in datasets:
        for s in seeds:
            _finetune(a, done, runs, d, s, None, "scratch")
    if a.study in ("transfer", "all"):
        for d in datasets:
            corpus = [x for x in datasets if x != d]
            for strat in strategies:
                enc = _encoder(a, strat, corpus)
                for s in seeds:
                    _finetune(a, done, runs, d, s, enc, f"{strat}<-{'+'.join(sorted(corpus))}")
    if a.study in ("w2pgnn", "all"):
        for corpus, d in _pairs(datasets):
            enc = _encoder(a, "attr_masking", corpus)
            for s in seeds:
                _finetune(a, done, runs, d, s, enc, f"attr_masking<-{'+'.join(sorted(corpus))}")
        _feasibility(a, datasets)
    report(a)


def _feasibility(a: argparse.Namespace, datasets: Sequence[str]) -> Dict[str, Dict[str, float]]:
    from graphkit.w2pgnn import feasibility

    path = Path(a.out) / "feasibility.json"
    table: Dict[str, Dict[str, float]] = json.loads(path.read_text()) if path.is_file() else {}
    for corpus, d in _pairs(datasets):
        key = f"{'+'.join(sorted(corpus))}|{d}"
        for name, kw in W2PGNN_VARIANTS.items():
            if name in table.get(key, {}):
                continue
            t0 = time.perf_counter()
            res = feasibility(list(corpus), d, seed=0, **kw)
            table.setdefault(key, {})[name] = float(res.score)
            print(f"  feasibility {key:<60} {name}: {res.score:.4f} ({time.perf_counter() - t0:.0f}s)", flush=True)
            path.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    return table


def _spearman_ci(x: np.ndarray, y: np.ndarray, n_boot: int, seed: int = 0) -> Tuple[float, float, float]:
    from scipy.stats import spearmanr

    rho = float(spearmanr(x, y).statistic)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        if len(set(idx.tolist())) < 3:
            continue
        r = spearmanr(x[idx], y[idx]).statistic
        if np.isfinite(r):
            boots.append(r)
    lo, hi = np.percentile(boots, [2.5, 97.5]) if boots else (float("nan"), float("nan"))
    return rho, float(lo), float(hi)


def report(a: argparse.Namespace) -> str:
    out = Path(a.out)
    recs = list(_done(out / "runs.jsonl").values())
    datasets = [d for d in a.datasets.split(",") if d]
    by: Dict[Tuple[str, str], Dict[int, Dict[str, Any]]] = {}
    for r in recs:
        by.setdefault((r["label"], r["dataset"]), {})[r["seed"]] = r
    lines = ["# Pre-training study", "",
             f"GIN, {a.num_layers} layers of {a.emb_dim}, fine-tuned {a.epochs} epochs (batch 32, Adam 1e-3, "
             f"epoch selected on validation), pre-trained {a.pretrain_epochs} epochs (batch {a.pretrain_batch}). "
             "Test metric (OGB evaluator), mean ± sample std over seeds; gain = paired relative gain "
             "(> 0: pre-training helped), mean over seeds with its 95 % t-interval.", ""]
    lines += ["## Transfer: pre-trained on the other sets", "",
              "| downstream | metric | scratch | " + " | ".join(f"{s} | gain" for s in STRATEGIES) + " |",
              "|---|---|---|" + "---|---|" * len(STRATEGIES)]
    for d in datasets:
        sc = by.get(("scratch", d), {})
        if not sc:
            continue
        metric = next(iter(sc.values()))["metric"]
        corpus = "+".join(sorted(x for x in datasets if x != d))
        cells = [d, metric, _ms([r["test"] for r in sc.values()])]
        for s in STRATEGIES:
            pre = by.get((f"{s}<-{corpus}", d), {})
            common = sorted(set(pre) & set(sc))
            if not common:
                cells += ["-", "-"]
                continue
            gains = [_gain(metric, pre[k]["test"], sc[k]["test"]) for k in common]
            cells += [_ms([pre[k]["test"] for k in common]), _gain_ci(gains)]
        lines.append("| " + " | ".join(cells) + " |")
    feas_path = out / "feasibility.json"
    if feas_path.is_file():
        feas = json.loads(feas_path.read_text())
        rows = []
        for corpus, d in _pairs(datasets):
            label = f"attr_masking<-{'+'.join(sorted(corpus))}"
            sc, pre = by.get(("scratch", d), {}), by.get((label, d), {})
            common = sorted(set(sc) & set(pre))
            key = f"{'+'.join(sorted(corpus))}|{d}"
            if not common or key not in feas:
                continue
            metric = sc[common[0]]["metric"]
            gain = float(np.mean([_gain(metric, pre[k]["test"], sc[k]["test"]) for k in common]))
            rows.append((corpus, d, gain, feas[key], len(common)))
        if rows:
            names = list(W2PGNN_VARIANTS)
            lines += ["", "## W2PGNN: feasibility against the measured gain (attribute masking)", "",
                      "| pre-training set | downstream | gain | " + " | ".join(names) + " | seeds |",
                      "|---|---|---|" + "---|" * len(names) + "---|"]
            for corpus, d, gain, f, n in rows:
                lines.append(f"| {'+'.join(c.replace('ogbg-mol', '') for c in corpus)} | {d.replace('ogbg-mol', '')} "
                             f"| {100 * gain:+.1f} % | " + " | ".join(f"{f.get(v, float('nan')):.4f}" for v in names)
                             + f" | {n} |")
            g = np.array([r[2] for r in rows])
            lines += ["", f"Spearman's rho between feasibility and gain over {len(rows)} pairs, with a "
                      f"{a.bootstrap}-resample bootstrap 95 % interval over pairs:", ""]
            for v in names:
                f = np.array([r[3].get(v, np.nan) for r in rows])
                rho, lo, hi = _spearman_ci(f, g, a.bootstrap)
                lines.append(f"- {v}: rho = {rho:+.3f} [{lo:+.3f}, {hi:+.3f}]")
            # W2PGNN's use: for one downstream set, which pre-training set? Ranks within each target.
            lines += ["", "Within each downstream set (its pre-training candidates ranked against their gains; "
                      "Spearman per target, then the mean over targets):", ""]
            from scipy.stats import spearmanr

            for v in names:
                per = {}
                for d in datasets:
                    sub = [r for r in rows if r[1] == d]
                    if len(sub) >= 3:
                        per[d] = float(spearmanr([r[3].get(v, np.nan) for r in sub], [r[2] for r in sub]).statistic)
                text = ", ".join(f"{d.replace('ogbg-mol', '')} {x:+.2f}" for d, x in per.items())
                lines.append(f"- {v}: mean {np.nanmean(list(per.values())):+.3f} ({text})")
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    print(text)
    return text


def _gain_ci(gains: Sequence[float]) -> str:
    """Mean paired relative gain with its 95 % t-interval over seeds, in percent."""
    from scipy.stats import t

    g = 100 * np.asarray(gains, dtype=float)
    if len(g) < 2:
        return f"{g.mean():+.1f} % (1 seed)"
    half = t.ppf(0.975, len(g) - 1) * g.std(ddof=1) / np.sqrt(len(g))
    return f"{g.mean():+.1f} % [{g.mean() - half:+.1f}, {g.mean() + half:+.1f}]"


def _ms(vals: Sequence[float]) -> str:
    v = np.asarray(vals, dtype=float)
    return f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.4f}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    a = _args(argv)
    if a.report:
        report(a)
        return 0
    run(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
