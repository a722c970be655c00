"""Time to quality: test recall@20 of graphkit's recommenders at wall-clock budgets, next to
the non-graph baselines, on the same split, machine and thread count, in one run.

For every dataset and method, **one** ``graphkit.fit`` run with ``max_time`` = the largest
budget.  A callback clocks wall-clock seconds from the ``fit`` call (model preparation such
as LightGCN's SVD warm start, training and validations all count; the test evaluations the
benchmark adds are taken off the clock).  At the first epoch end past each budget ``B``, the
model selected on validation *among the validations finished by* ``B`` is evaluated once on
test: what a user who had stopped at ``B`` would have.  A budget reached before the first
validation shows "—".  Budgets the run never reaches (early stopping) take the final model.
Fitted baselines (ALS, popularity, EASE) have no budget: they are fitted once, their fit
time is reported, and a budget shorter than it shows "—".  Every run records its
validation curve (validation recall@20 against wall-clock seconds), plotted with ``--plot``.
Iterative methods validate every epoch here (``eval_every=1``, so the curves have points;
the paper protocols validate every 5-10 epochs), with the epoch time including it; their
``patience`` is scaled by the preset's ``eval_every`` so early stopping waits as many epochs
as the preset would (patience 5 every 10 epochs = 50 validations every epoch).

A method whose preset decays the learning rate over ``max_time`` (``scheduler="budget"``, the
LightGCN fast recipe) behaves differently at each ``max_time``: it gets one run per budget,
each with ``max_time`` = that budget and probed at it (cost: the sum of the budgets); its
curve is the largest budget's run.  The engine's ``max_time`` counts training seconds only, so
such a run's rate reaches zero a little after its wall-clock budget (by the preparation time):
the probe at the budget sees a model that had not quite finished its decay.

Methods: ``lightgcn-fast`` (``preset="fast"``), ``lightgcn-paper`` (the paper's protocol),
``ultragcn`` (paper preset), ``ultragcn-fast`` (its fast recipe, ml-1m only), ``als``,
``popularity``, ``ease``.

Usage::

    GRAPHKIT_DATA=/work/shared/datasets python benchmarks/bench_time_to_quality.py \\
        --datasets gowalla ml-1m --budgets 10 60 300 600 1800 --max-budget lightgcn-paper=600 ultragcn=600 \\
        --threads 2 --out runs/ttq --plot runs/ttq/curves.png

Targets (issue 16; checked by reading the table, not asserted): LightGCN gowalla fast at
600 s: test recall@20 >= 0.170 and above ALS; >= 0.1830 within 1,800 s; UltraGCN ml-1m >= 0.2787.
Every run is appended to ``--out``/runs.jsonl with its record (split fingerprint, seed,
hyper-parameters, versions, device); finished (dataset, method) runs are skipped on
a rerun.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import graphkit  # noqa: E402
from graphkit.training.callbacks import ValidationCurve  # noqa: E402
from graphkit.training.result import _jsonable  # noqa: E402

METHODS: Dict[str, Dict[str, Any]] = {
    "lightgcn-fast": {"model": "lightgcn", "preset": "fast"},
    "lightgcn-paper": {"model": "lightgcn", "preset": "paper"},
    "ultragcn": {"model": "ultragcn", "preset": "paper"},
    "ultragcn-fast": {"model": "ultragcn", "preset": "fast"},
    "als": {"model": "als", "preset": "paper"},
    "popularity": {"model": "popularity", "preset": "paper"},
    "ease": {"model": "ease", "preset": "paper"},
}
FITTED = {"als", "popularity", "ease"}


class BudgetProbe(ValidationCurve):
    """Callback: the validation curve, and the test metrics of the model selected on
    validation at each wall-clock budget (clock from construction, test time excluded)."""

    def __init__(self, dataset: Any, budgets: List[float], metric: str = "recall@20") -> None:
        super().__init__(metric)
        self.ds = dataset
        self.pending = sorted(budgets)
        self.at_budget: Dict[float, Dict[str, Any]] = {}
        self.best: Optional[Dict[str, Any]] = None  # {"value", "epoch", "state"}

    def _test_best(self, trainer: Any, budget: float) -> None:
        from graphkit.training.recommendation import _test_metrics

        if self.best is None:
            self.at_budget[budget] = {"test": None, "epoch": None}
            return
        t = time.perf_counter()
        current = copy.deepcopy(trainer.model.state_dict())
        trainer.model.load_state_dict(self.best["state"])
        test = _test_metrics(trainer.model, self.ds, trainer.cfg)
        trainer.model.load_state_dict(current)
        self.at_budget[budget] = {"test": test, "epoch": self.best["epoch"], "valid": self.best["value"]}
        self.paused += time.perf_counter() - t

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Dict[str, Any]) -> None:
        now = self.elapsed()
        while self.pending and now > self.pending[0]:
            self._test_best(trainer, self.pending.pop(0))
        n = len(self.points)
        super().on_epoch_end(trainer, epoch, logs)  # test time is off the clock: stamped ≈ ``now``
        if len(self.points) > n:
            value = self.points[-1]["value"]
            if self.best is None or value > self.best["value"]:
                self.best = {"value": float(value), "epoch": epoch,
                             "state": copy.deepcopy(trainer.model.state_dict())}


def load_done(path: Path) -> Dict[str, Dict[str, Any]]:
    done: Dict[str, Dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[f"{r['dataset']}|{r['method']}"] = r
    return done


def run_hparams(ds: Any, method: str) -> Dict[str, Any]:
    """The merged hyper-parameters the method's ``graphkit.fit`` would use on ``ds`` (training
    config defaults, the model's ``default_train``, its preset)."""
    from graphkit.models import get_model
    from graphkit.training.hparams import merge_preset
    from graphkit.training.recommendation import RecTrainConfig

    spec = METHODS[method]
    defaults = {k: getattr(RecTrainConfig, k) for k in ("eval_every", "patience")}
    return {**defaults, **merge_preset(get_model(spec["model"]), ds, {}, seed=0, use_preset=spec["preset"])}


def follows_budget(ds: Any, method: str) -> bool:
    """Whether the method's preset decays its rate over ``max_time`` (``scheduler="budget"``):
    then a budget's figure needs its own run with that ``max_time``."""
    return run_hparams(ds, method).get("scheduler") == "budget"


def every_epoch(ds: Any, method: str) -> Dict[str, Any]:
    """``eval_every=1`` (curves with a point per epoch) and the preset's early-stopping window
    kept in *epochs*: ``patience`` counts validations, so it is multiplied by the preset's
    ``eval_every`` (10 validations every 2 epochs = 20 validations every epoch)."""
    hp = run_hparams(ds, method)
    return {"eval_every": 1, "patience": int(hp["patience"]) * int(hp["eval_every"])}


def run_one(ds: Any, method: str, budgets: List[float], threads: int, seed: int) -> Dict[str, Any]:
    """One run with ``max_time`` = the largest budget, probed at every budget; a method whose
    schedule follows ``max_time`` gets one run per budget instead (each probed at its own)."""
    if method not in FITTED and follows_budget(ds, method) and len(budgets) > 1:
        runs = [_run_one(ds, method, [b], threads, seed) for b in sorted(budgets)]
        out = runs[-1]
        out["budgets"] = budgets
        out["at_budget"] = {k: v for r in runs for k, v in r["at_budget"].items()}
        out["per_budget_runs"] = [{k: r[k] for k in ("budgets", "wall_seconds", "train_seconds", "test", "best_valid",
                                                      "best_epoch", "epochs_run", "curve", "load_average")}
                                  for r in runs[:-1]]
        return out
    return _run_one(ds, method, budgets, threads, seed)


def _run_one(ds: Any, method: str, budgets: List[float], threads: int, seed: int) -> Dict[str, Any]:
    spec = METHODS[method]
    kw: Dict[str, Any] = {"num_threads": threads, "progress": False}
    probe = BudgetProbe(ds, budgets)
    if method not in FITTED:
        kw.update(max_time=max(budgets), callbacks=[probe], **every_epoch(ds, method))
    res = graphkit.fit(spec["model"], ds, preset=spec["preset"], seed=seed, **kw)
    wall = probe.elapsed()
    for b in probe.pending:  # budgets the run did not reach: the final (validation-selected) model
        probe.at_budget[b] = {"test": res.metrics, "epoch": res.record["best_epoch"], "valid": res.record["best_valid"]}
    return {"dataset": ds.name, "method": method, "budgets": budgets, "wall_seconds": wall,
            "train_seconds": res.record["train_seconds"], "test": res.metrics,
            "at_budget": {str(b): v for b, v in probe.at_budget.items()},
            "best_valid": res.record["best_valid"], "best_epoch": res.record["best_epoch"],
            "epochs_run": res.record["epochs_run"], "curve": probe.points, "record": _jsonable(res.record),
            "load_average": os.getloadavg()}


def _cell(test: Optional[Dict[str, float]]) -> str:
    return "—" if not test else f"{test['recall@20']:.4f} ({test['ndcg@20']:.4f})"


def table(done: Dict[str, Dict[str, Any]], dsets: List[str], methods: List[str], budgets: List[float]) -> str:
    lines = []
    for d in dsets:
        lines += [f"**{d}** — test recall@20 (ndcg@20) of the model selected on validation, by training budget",
                  "", "| method | " + " | ".join(f"{b:g} s" for b in budgets) + " | note |",
                  "|---|" + "---|" * (len(budgets) + 1)]
        for m in methods:
            cells, note = [], ""
            if m in FITTED:
                r = done.get(f"{d}|{m}")
                if r is None:
                    continue
                for b in budgets:
                    ok = r["train_seconds"] <= b
                    cells.append(_cell(r["test"]) if ok else "—")
                note = f"fitted in {r['train_seconds']:.1f} s"
            else:
                r = done.get(f"{d}|{m}")
                if r is None:
                    continue
                for b in budgets:
                    hit = r["at_budget"].get(str(float(b)))
                    cells.append("not run" if hit is None else _cell(hit["test"]))
                note = f"{r['epochs_run']} epochs in {r['wall_seconds']:.0f} s"
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {note} |")
        lines.append("")
    return "\n".join(lines)


def curve_table(done: Dict[str, Dict[str, Any]], dsets: List[str], methods: List[str],
                times: List[float] = (15, 30, 60, 120, 300, 600, 900, 1200, 1800)) -> str:
    """The validation curves as text: best validation recall@20 reached by each wall-clock time."""
    lines = []
    for d in dsets:
        rows = []
        for m in methods:
            r = done.get(f"{d}|{m}")
            if r is None or m in FITTED or not r["curve"]:
                continue
            cells = []
            for t in times:
                seen = [p["value"] for p in r["curve"] if p["seconds"] <= t]
                cells.append("" if t > r["wall_seconds"] + 1 else f"{max(seen):.4f}" if seen else "—")
            rows.append(f"| {m} | " + " | ".join(cells) + " |")
        if rows:
            lines += [f"**{d}** — best validation recall@20 reached by each wall-clock time (s)", "",
                      "| method | " + " | ".join(f"{t:g}" for t in times) + " |", "|---|" + "---|" * len(times),
                      *rows, ""]
    return "\n".join(lines)


def plot(done: Dict[str, Dict[str, Any]], dsets: List[str], methods: List[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(dsets), figsize=(6 * len(dsets), 4), squeeze=False)
    for ax, d in zip(axes[0], dsets):
        for m in methods:
            r = done.get(f"{d}|{m}")
            if r is None:
                continue
            if m in FITTED:
                ax.axhline(r["best_valid"], ls="--", lw=1, label=f"{m} ({r['train_seconds']:.0f} s fit)")
                continue
            if r["curve"]:
                ax.plot([p["seconds"] for p in r["curve"]], [p["value"] for p in r["curve"]], marker=".", label=m)
        ax.set_xscale("log")
        ax.set_xlabel("wall-clock seconds (training + validation)")
        ax.set_ylabel("validation recall@20")
        ax.set_title(d)
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def check_dependencies(methods: List[str]) -> None:
    """Exit 2 with one line before any run when a method's optional extra is missing
    (an hour-long invocation once lost its ALS baseline to a missing ``implicit``; ``main``
    checks ``--plot``'s matplotlib the same way)."""
    from graphkit.exceptions import ConfigError
    from graphkit.models import get_model

    for m in methods:
        try:
            get_model(METHODS[m]["model"]).check_dependencies()
        except ConfigError as exc:
            print(f"bench_time_to_quality: {m}: {exc}", file=sys.stderr)
            raise SystemExit(2) from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["gowalla", "ml-1m"])
    ap.add_argument("--methods", nargs="+", default=["lightgcn-fast", "lightgcn-paper", "ultragcn", "als"],
                    choices=sorted(METHODS))
    ap.add_argument("--budgets", nargs="+", type=float, default=[10, 60, 600, 3600])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--out", default="runs/ttq")
    ap.add_argument("--plot", default=None, help="write the validation curves to this PNG")
    ap.add_argument("--max-budget", nargs="*", default=[], metavar="METHOD=SECONDS",
                    help="cap a method's largest budget (e.g. lightgcn-paper=600); the table shows '' beyond it")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    args.max_budget = {k: float(v) for k, v in (x.split("=", 1) for x in args.max_budget)}
    if not args.table_only:
        check_dependencies(args.methods)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        print("bench_time_to_quality: --plot needs matplotlib, an optional extra: pip install 'graphkit[plot]'",
              file=sys.stderr)
        raise SystemExit(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "runs.jsonl"
    done = load_done(path)
    print(f"graphkit {graphkit.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads, "
          f"load average {os.getloadavg()}", flush=True)
    if not args.table_only:
        for d in args.datasets:
            ds = graphkit.datasets.load(d)
            for m in args.methods:
                key = f"{ds.name}|{m}"
                if key in done:
                    continue
                budgets = [b for b in args.budgets if b <= args.max_budget.get(m, math.inf)]
                r = run_one(ds, m, budgets, args.threads, args.seed)
                done[key] = r
                with open(path, "a") as fh:
                    fh.write(json.dumps(_jsonable(r)) + "\n")
                cells = ", ".join(f"{b}: {_cell(v['test'])}" for b, v in r["at_budget"].items())
                print(f"{d} {m}: {cells}; best valid {r['best_valid']:.4f}, {r['epochs_run']} epochs, "
                      f"{r['wall_seconds']:.0f} s wall, load {r['load_average'][0]:.2f}", flush=True)
    print()
    labels = [Path(d).name if os.sep in d or "/" in d else d for d in args.datasets]  # ds.name of a folder
    print(table(done, labels, args.methods, args.budgets))
    print(curve_table(done, labels, args.methods))
    if args.plot:
        plot(done, labels, args.methods, args.plot)
        print(f"curves written to {args.plot}")


if __name__ == "__main__":
    main()
