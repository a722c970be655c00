"""``graphkit bench``: run a (model x dataset x seed) grid on standardized splits.

Each run trains one registered model with its per-dataset preset (overridable) on the
dataset's standardized split (recommendation: the official train/test files plus the
seed-2020 validation hold-out; Planetoid: the public split; OGB: ogb's split, scored by
OGB's ``Evaluator``) and writes one JSON record to ``<out>/runs/``.  The grid is
resumable: a run whose record says ``"ok"`` (with the same configuration) is skipped,
a failed run is recorded with its traceback and the grid goes on, and a cell that another
``graphkit bench`` process is running (a per-cell file lock) is left to it.  At the end the
records are summarised: a mean ± std table in the terminal, ``results.csv`` (one row
per run), ``leaderboard.md`` and matplotlib plots (validation metric per epoch, time
per epoch).

>>> from graphkit.bench import run_bench
>>> summary = run_bench(["dagnn", "gcn"], ["cora"], seeds=3, out="runs/bench")

Command line: ``graphkit bench --models lightgcn,ultragcn --datasets gowalla,ml-1m --seeds 3``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .datasets.download import try_file_lock
from .exceptions import ConfigError, DatasetError
from .utils import PathLike, atomic_write

__all__ = [
    "PAPER_RESULTS", "BenchRun", "run_bench", "plan_grid", "parse_seeds", "load_records", "summarize",
    "results_frame", "leaderboard_markdown", "compare_paper", "write_plots", "report", "resolve_dataset",
    "RECORD_VERSION",
]

RECORD_VERSION = 1

#: Published test numbers, ``{(model, dataset): {"metrics": {...}, "source": "..."}}``.
#: Node accuracies are fractions (0.844 = 84.4 %), as graphkit reports them.
PAPER_RESULTS: Dict[Tuple[str, str], Dict[str, Any]] = {
    ("lightgcn", "gowalla"): {"metrics": {"recall@20": 0.1830, "ndcg@20": 0.1554},
                              "source": "He et al., LightGCN, arXiv 2002.02126, Table 3"},
    ("lightgcn", "yelp2018"): {"metrics": {"recall@20": 0.0649, "ndcg@20": 0.0530},
                               "source": "He et al., LightGCN, arXiv 2002.02126, Table 3"},
    ("lightgcn", "amazon-book"): {"metrics": {"recall@20": 0.0411, "ndcg@20": 0.0315},
                                  "source": "He et al., LightGCN, arXiv 2002.02126, Table 3"},
    ("ultragcn", "gowalla"): {"metrics": {"recall@20": 0.1862, "ndcg@20": 0.1580},
                              "source": "Mao et al., UltraGCN, arXiv 2110.15114, Table 3"},
    ("ultragcn", "yelp2018"): {"metrics": {"recall@20": 0.0683, "ndcg@20": 0.0561},
                               "source": "Mao et al., UltraGCN, arXiv 2110.15114, Table 3"},
    ("ultragcn", "amazon-book"): {"metrics": {"recall@20": 0.0681, "ndcg@20": 0.0556},
                                  "source": "Mao et al., UltraGCN, arXiv 2110.15114, Table 3"},
    ("ultragcn", "ml-1m"): {"metrics": {"recall@20": 0.2787, "ndcg@20": 0.2642},
                            "source": "Mao et al., UltraGCN, arXiv 2110.15114, Table 3"},
    ("gcn", "cora"): {"metrics": {"accuracy": 0.815}, "source": "Kipf & Welling, GCN, arXiv 1609.02907, Table 2"},
    ("gcn", "citeseer"): {"metrics": {"accuracy": 0.703}, "source": "Kipf & Welling, GCN, arXiv 1609.02907, Table 2"},
    ("gcn", "pubmed"): {"metrics": {"accuracy": 0.790}, "source": "Kipf & Welling, GCN, arXiv 1609.02907, Table 2"},
    ("gcn", "ogbn-arxiv"): {"metrics": {"ogb_acc": 0.7174}, "source": "Hu et al., OGB, arXiv 2005.00687, Table 3"},
    # Hu et al., "Strategies for Pre-training GNNs", ICLR 2020, Table 1: GIN without pre-training,
    # MoleculeNet scaffold split (OGB's split is the same procedure), ROC-AUC mean over 10 seeds.
    ("gin", "ogbg-molbbbp"): {"metrics": {"rocauc": 0.658},
                              "source": "Hu et al., Strategies for Pre-training GNNs, arXiv 1905.12265, Table 1 "
                                        "(no pre-train, 65.8 ± 4.5)"},
    ("gin", "ogbg-molbace"): {"metrics": {"rocauc": 0.701},
                              "source": "Hu et al., Strategies for Pre-training GNNs, arXiv 1905.12265, Table 1 "
                                        "(no pre-train, 70.1 ± 5.4)"},
    ("dagnn", "cora"): {"metrics": {"accuracy": 0.844}, "source": "Liu et al., DAGNN, arXiv 2007.09296, Table 2"},
    ("dagnn", "citeseer"): {"metrics": {"accuracy": 0.733}, "source": "Liu et al., DAGNN, arXiv 2007.09296, Table 2"},
    ("dagnn", "pubmed"): {"metrics": {"accuracy": 0.805}, "source": "Liu et al., DAGNN, arXiv 2007.09296, Table 2"},
}

#: The metrics shown in tables per task; the first is the headline (and the plot's validation metric).
TASK_METRICS: Dict[str, Tuple[str, ...]] = {
    "recommendation": ("recall@20", "ndcg@20"),
    "node": ("accuracy", "macro_f1"),
    # graph property prediction: OGB's metric of the dataset (ROC-AUC for classification, RMSE for regression)
    "graph": ("rocauc", "ap", "rmse", "mae"),
}
#: Metrics where a smaller value is better (leaderboards sort them ascending).
LOWER_IS_BETTER = frozenset({"rmse", "mae"})
#: History column holding the validation metric per task.
VALID_COLUMN = {"recommendation": "valid_recall@20", "node": "val_acc", "graph": "valid_"}


def _valid_column(task: str, history: Mapping[str, Any]) -> str:
    """The history column of the validation metric (graph tasks: ``valid_<OGB metric>``)."""
    col = VALID_COLUMN.get(task, "")
    if col.endswith("_"):
        return next((k for k in history if k.startswith(col)), col)
    return col
#: Standardized loader options per dataset name (recorded in every run).
DATASET_OPTIONS: Dict[str, Dict[str, Any]] = {
    # ogbn-arxiv is a directed citation graph; OGB's baselines train on the symmetrized graph.
    "ogbn-arxiv": {"to_undirected": True},
}


#: Run options that say where a run executes, not what it computes (left out of the config hash).
PLACEMENT_OPTIONS = ("device", "num_threads")


# ----------------------------------------------------------------------------- grid planning
def parse_seeds(seeds: Union[int, str, Sequence[int]]) -> List[int]:
    """Seeds of a grid: ``3`` -> ``[0, 1, 2]``; ``"0,5,7"`` or ``[0, 5, 7]`` -> those seeds.

    Args:
        seeds: a count, a comma-separated string of seeds, or a sequence of seeds.
    """
    if isinstance(seeds, bool):
        raise ConfigError(f"seeds must be a count or a list of seeds, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {seeds}")
        return list(range(seeds))
    if isinstance(seeds, str):
        text = seeds.strip()
        try:
            if "," not in text:
                return parse_seeds(int(text))
            out = [int(s) for s in text.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seeds expects a count (3) or a list (0,1,2), got {seeds!r}") from None
    else:
        out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ConfigError(f"seeds must be a non-empty list without repeats, got {seeds!r}")
    return out


def _split_list(value: Union[str, Sequence[str]]) -> List[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [s.strip() for s in items if s and s.strip()]


def resolve_dataset(name: str, data_dir: Optional[PathLike] = None) -> Tuple[str, str]:
    """``(canonical name, task)`` of a dataset given to the bench; unknown names list the valid ones.

    Args:
        name: a built-in name (``gowalla``, ``cora``, ...), an ``ogbn-*`` name known to ogb, or
            a folder (LightGCN format, or ogb's layout with ``meta_dict.json``).
        data_dir: data folder (default ``$GRAPHKIT_DATA``), to find named local folders.

    Returns:
        ``task`` is ``"recommendation"``, ``"node"`` or ``"graph"`` (``ogbg-*``).
    """
    from . import datasets
    from .datasets._manifest import canonical_name
    from .datasets.ogb_loader import ogb_names
    from .utils import data_dir as default_data_dir

    path = Path(name).expanduser()
    if ("/" in name or name.startswith(".")) or (path.is_dir() and not name.startswith("ogb")):
        if (path / datasets.OGB_META_FILE).is_file():
            try:
                md = json.loads((path / datasets.OGB_META_FILE).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise DatasetError(f"{path / datasets.OGB_META_FILE}: not readable JSON ({exc})") from None
            kind = str(md.get("name", "")) if isinstance(md, dict) else ""
            if not kind.startswith("ogbn-"):
                raise DatasetError(f"{path}: graphkit bench runs node (ogbn-*) OGB datasets; meta_dict.json "
                                   f"names {kind!r}")
            return str(path), "node"
        if (path / "train.txt").is_file() and (path / "test.txt").is_file():
            return str(path), "recommendation"
        raise DatasetError(f"dataset folder {path} holds neither train.txt/test.txt (LightGCN format) nor "
                           f"{datasets.OGB_META_FILE} (ogb layout)")
    key = canonical_name(name)
    if key in datasets.RECOMMENDATION_NAMES:
        return key, "recommendation"
    if key in datasets.PLANETOID_NAMES:
        return key, "node"
    ogb_key = name.strip().replace("_", "-")
    known = ogb_names()
    if ogb_key in known:
        return ogb_key, ("node" if ogb_key.startswith("ogbn-") else "graph")
    local = default_data_dir(data_dir) / name
    if (local / "train.txt").is_file() and (local / "test.txt").is_file():
        return str(local), "recommendation"
    valid = [d.name for d in datasets.available()
             if d.task == "recommendation" or d.task.startswith("node") or d.task.startswith("graph")]
    raise DatasetError(f"unknown dataset {name!r}; valid names: {', '.join(valid)} (or a LightGCN-format folder, "
                       "or an ogb-layout folder with meta_dict.json)")


def _model_task(name: str) -> Tuple[str, type]:
    from .models import get_model

    cls = get_model(name)  # unknown names: ConfigError listing the valid ones
    task = getattr(cls, "task", "recommendation")
    return (task if task in ("node", "graph") else "recommendation"), cls


@dataclass
class BenchRun:
    """One (model, dataset, seed) cell of a grid.

    Args:
        model: registered model name (lower case).
        dataset: dataset name or folder.
        seed: the run's seed.
        task: ``"recommendation"``, ``"node"`` or ``"graph"``.
        hparams: hyper-parameter overrides for this run (``--set``), on top of the preset.
        fit_options: ``graphkit.fit`` options shared by the grid (``max_time``, ``device``, ...).
    """

    model: str
    dataset: str
    seed: int
    task: str
    hparams: Dict[str, Any] = field(default_factory=dict)
    fit_options: Dict[str, Any] = field(default_factory=dict)

    @property
    def dataset_label(self) -> str:
        """A short dataset name for tables (the folder name for folders)."""
        return Path(self.dataset).name if os.sep in self.dataset or "/" in self.dataset else self.dataset

    @property
    def run_id(self) -> str:
        """File-name-safe id ``<model>__<dataset>__seed<seed>``."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.dataset_label)
        return f"{self.model}__{safe}__seed{self.seed}"

    def config(self) -> Dict[str, Any]:
        """What defines the run; a finished record is reused only when this is unchanged.

        Where it runs (``device``, ``num_threads``) is recorded but not part of it, so two
        bench commands on different devices share one grid.
        """
        opts = {k: v for k, v in self.fit_options.items() if k not in PLACEMENT_OPTIONS}
        return {"model": self.model, "dataset": self.dataset, "seed": self.seed, "hparams": self.hparams,
                "fit_options": opts, "dataset_options": DATASET_OPTIONS.get(self.dataset, {})}

    def config_hash(self) -> str:
        """sha256 (16 hex digits) of :meth:`config` as canonical JSON."""
        text = json.dumps(self.config(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _split_overrides(overrides: Mapping[str, Any], models: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """``{"lr": 1e-3, "dagnn.K": 5}`` -> per-model dicts (``model.key`` applies to that model only)."""
    per: Dict[str, Dict[str, Any]] = {m: {} for m in models}
    for key, value in overrides.items():
        prefix, dot, rest = key.partition(".")
        if dot and prefix.lower() in per:
            per[prefix.lower()][rest] = value
        elif dot:
            raise ConfigError(f"--set {key}=...: {prefix!r} is not one of the grid's models ({', '.join(models)})")
        else:
            for m in per:
                per[m].setdefault(key, value)
    return per


def plan_grid(models: Union[str, Sequence[str]], datasets: Union[str, Sequence[str]],
              seeds: Union[int, str, Sequence[int]] = 1, overrides: Optional[Mapping[str, Any]] = None,
              fit_options: Optional[Mapping[str, Any]] = None,
              data_dir: Optional[PathLike] = None) -> Tuple[List[BenchRun], List[Tuple[str, str, str]]]:
    """Validate names and expand the grid.

    Args:
        models: model names (``"lightgcn,ultragcn"`` or a list).
        datasets: dataset names or folders.
        seeds: see :func:`parse_seeds`.
        overrides: hyper-parameters for every run; ``"model.key"`` targets one model.
        fit_options: ``graphkit.fit`` options for every run (``max_time``, ``device``, ``num_threads``).
        data_dir: data folder (default ``$GRAPHKIT_DATA``).

    Returns:
        ``(runs, skipped)``: the runs in grid order (dataset, model, seed) and the
        ``(model, dataset, reason)`` pairs left out because the model's task does not
        match the dataset's (e.g. LightGCN on Cora).

    Raises:
        ConfigError: an unknown model (the message lists the registered ones) or bad seeds.
        DatasetError: an unknown dataset (the message lists the valid names).
    """
    model_names = [m.lower() for m in _split_list(models)]
    ds_names = _split_list(datasets)
    if not model_names:
        raise ConfigError("--models is empty")
    if not ds_names:
        raise ConfigError("--datasets is empty")
    seed_list = parse_seeds(seeds)
    model_tasks = {m: _model_task(m)[0] for m in model_names}
    ds_tasks = [resolve_dataset(d, data_dir) for d in ds_names]
    per_model = _split_overrides(dict(overrides or {}), model_names)
    runs: List[BenchRun] = []
    skipped: List[Tuple[str, str, str]] = []
    for ds, ds_task in ds_tasks:
        for m in model_names:
            if model_tasks[m] != ds_task:
                skipped.append((m, ds, f"{m} is a {model_tasks[m]} model, {Path(ds).name} a {ds_task} dataset"))
                continue
            for s in seed_list:
                runs.append(BenchRun(m, ds, s, ds_task, dict(per_model[m]), dict(fit_options or {})))
    if not runs:
        raise ConfigError("no (model, dataset) pair of the grid matches: " + "; ".join(r for *_, r in skipped))
    return runs, skipped


# ----------------------------------------------------------------------------- one run
def _peak_memory(device: Any) -> Dict[str, Any]:
    import resource

    import torch

    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out: Dict[str, Any] = {"peak_rss_mb": round(rss_kb / 1024.0, 1)}
    if torch.cuda.is_available() and "cuda" in str(device or "").lower():
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def _history_columns(history: Any) -> Dict[str, List[Any]]:
    if history is None or not hasattr(history, "to_dict"):
        return {}
    cols = history.to_dict(orient="list")
    return {str(k): [None if isinstance(v, float) and math.isnan(v) else v for v in vals] for k, vals in cols.items()}


def execute_run(run: BenchRun, data_dir: Optional[PathLike] = None) -> Dict[str, Any]:
    """Train one run in this process and return its record (raises on failure).

    Args:
        run: the grid cell.
        data_dir: data folder (default ``$GRAPHKIT_DATA``).
    """
    import torch

    from . import datasets as gk_datasets
    from .training import fit

    t0 = time.perf_counter()
    hp = {**run.fit_options, **run.hparams}
    if hp.get("num_threads"):
        torch.set_num_threads(int(hp["num_threads"]))
    hp.setdefault("progress", False)
    dataset: Any = run.dataset
    ds_opts = DATASET_OPTIONS.get(run.dataset, {})
    if run.task == "node" and (ds_opts or os.sep in run.dataset or "/" in run.dataset):
        # loaded here (not by name inside fit) to apply the standardized loader options
        dataset = gk_datasets.load(run.dataset, root=data_dir, **ds_opts)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    result = fit(run.model, dataset, data_dir=data_dir, seed=run.seed, **hp)
    wall = time.perf_counter() - t0
    rec = dict(result.record)
    history = _history_columns(result.history)
    valid_col = _valid_column(run.task, history)
    return {
        "status": "ok",
        "metrics": {k: float(v) for k, v in result.metrics.items()},
        # the selected epoch's validation score (recall@20 / accuracy); max over epochs as a fallback
        "best_valid": next((float(rec[k]) for k in ("best_valid", "best_val_acc") if rec.get(k) is not None),
                           _best_valid(history.get(valid_col))),
        "fingerprint": rec.get("fingerprint"),
        "split": rec.get("split"),
        "best_epoch": rec.get("best_epoch"),
        "epochs_run": rec.get("epochs_run"),
        "stopped_by": rec.get("stopped_by"),
        "hparams": rec.get("hparams"),
        "train": rec.get("train"),
        "versions": rec.get("versions"),
        "device": rec.get("device"),
        "wall_seconds": round(wall, 3),
        "train_seconds": rec.get("train_seconds"),
        **_peak_memory(rec.get("device")),
        "dataset_options": ds_opts,
        "history": history,
        "fit_record": rec,
    }


def _best_valid(values: Optional[List[Any]]) -> Optional[float]:
    vals = [float(v) for v in (values or []) if v is not None]
    return max(vals) if vals else None


def _base_record(run: BenchRun) -> Dict[str, Any]:
    from . import __version__

    return {
        "record_version": RECORD_VERSION, "graphkit": __version__, "run_id": run.run_id,
        "model": run.model, "dataset": run.dataset_label, "dataset_path": run.dataset, "task": run.task,
        "seed": run.seed, "overrides": run.hparams, "fit_options": run.fit_options,
        "config_hash": run.config_hash(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _failed_record(run: BenchRun, error: str, tb: str, wall: float) -> Dict[str, Any]:
    from .utils import environment_record

    return {**_base_record(run), "status": "failed", "error": error, "traceback": tb,
            "wall_seconds": round(wall, 3), **environment_record(run.fit_options.get("device"))}


def write_record(path: PathLike, record: Mapping[str, Any]) -> None:
    """Write a run record as JSON atomically (temp file, then rename).

    Args:
        path: the ``.json`` file.
        record: the record.
    """
    from .training.result import _jsonable

    with atomic_write(path, "w") as fh:
        json.dump(_jsonable(dict(record)), fh, indent=2, sort_keys=True)
        fh.write("\n")


def _run_in_process(run: BenchRun, data_dir: Optional[PathLike]) -> Dict[str, Any]:
    t0 = time.perf_counter()
    base = _base_record(run)
    try:
        return {**base, **execute_run(run, data_dir), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # recorded, the grid goes on
        return _failed_record(run, f"{type(exc).__name__}: {exc}", traceback.format_exc(), time.perf_counter() - t0)


def _run_subprocess(run: BenchRun, data_dir: Optional[PathLike], record_path: Path,
                    timeout: Optional[float]) -> Dict[str, Any]:
    """Run in a fresh interpreter (a crash, OOM kill or timeout cannot take the grid down;
    peak memory is the run's own)."""
    t0 = time.perf_counter()
    fd, spec_path = tempfile.mkstemp(prefix=".spec-", suffix=".tmp", dir=str(record_path.parent))
    result_path = record_path.with_name(record_path.name + ".result")  # not *.json: never read as a record
    result_path.unlink(missing_ok=True)
    with os.fdopen(fd, "w") as fh:
        json.dump({"run": run.__dict__, "data_dir": None if data_dir is None else str(data_dir),
                   "record": str(result_path)}, fh, default=str)
    cmd = [sys.executable, "-m", "graphkit.bench", spec_path]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or "")[-4000:] if isinstance(exc.stderr, str) else ""
        return _failed_record(run, f"timeout: the run exceeded {timeout:g} s and was killed", tail,
                              time.perf_counter() - t0)
    finally:
        Path(spec_path).unlink(missing_ok=True)
    rec = _read_json(result_path)
    result_path.unlink(missing_ok=True)
    if rec is not None and rec.get("config_hash") == run.config_hash() and proc.returncode == 0 and \
            rec.get("status") in ("ok", "failed"):
        return rec
    why = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
           else f"exit status {proc.returncode}")
    return _failed_record(run, f"the run's process ended without a record ({why})",
                          (proc.stderr or "")[-4000:], time.perf_counter() - t0)


def _child_main(spec_path: str) -> int:
    """Entry point of the per-run subprocess: ``python -m graphkit.bench SPEC.json``."""
    spec = json.loads(Path(spec_path).read_text())
    run = BenchRun(**spec["run"])
    rec = _run_in_process(run, spec.get("data_dir"))
    write_record(spec["record"], rec)
    return 0


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


# ----------------------------------------------------------------------------- the grid
def run_bench(
    models: Union[str, Sequence[str]],
    datasets: Union[str, Sequence[str]],
    seeds: Union[int, str, Sequence[int]] = 1,
    out: PathLike = "runs/bench",
    *,
    overrides: Optional[Mapping[str, Any]] = None,
    data_dir: Optional[PathLike] = None,
    fit_options: Optional[Mapping[str, Any]] = None,
    isolate: bool = True,
    timeout: Optional[float] = None,
    rerun_failed: bool = True,
    plots: bool = True,
    compare: Optional[str] = None,
    echo: Callable[[str], None] = print,
) -> Dict[str, Any]:
    """Run a grid (resumable) and write its summary files; see the module docstring.

    Args:
        models: model names, e.g. ``"lightgcn,ultragcn"``.
        datasets: dataset names or folders, e.g. ``"gowalla,ml-1m"``.
        seeds: a count (``3`` -> seeds 0, 1, 2) or a list of seeds.
        out: output folder: ``runs/<run_id>.json`` per run, ``results.csv``,
            ``leaderboard.md``, ``plots/``.
        overrides: hyper-parameters on top of each preset (``"model.key"`` for one model).
        data_dir: data folder (default ``$GRAPHKIT_DATA``).
        fit_options: ``graphkit.fit`` options for every run (``max_time``, ``device``, ``num_threads``).
        isolate: run each cell in its own Python process (default): a crash or an OOM kill
            is recorded as a failure; peak memory is per run.
        timeout: seconds after which an isolated run is killed and recorded as failed.
        rerun_failed: re-run cells whose record says failed (finished ones are always skipped).
        plots: write matplotlib plots (skipped with a notice when matplotlib is missing).
        compare: ``"paper"`` adds the published numbers and the difference to the report.
        echo: where progress lines go.

    Returns:
        ``{"records": [...], "summary": DataFrame, "skipped": [...], "seconds": float, "files": {...}}``.
    """
    if compare not in (None, "paper"):
        raise ConfigError(f"--compare accepts 'paper', got {compare!r}")
    t_start = time.perf_counter()
    runs, skipped = plan_grid(models, datasets, seeds, overrides, fit_options, data_dir)
    out = Path(out)
    run_dir = out / "runs"
    run_dir.mkdir(parents=True, exist_ok=True)
    for m, d, why in skipped:
        echo(f"skip {m} on {Path(d).name}: {why}")
    done = reused = failed = 0
    for i, run in enumerate(runs, 1):
        path = run_dir / f"{run.run_id}.json"
        with try_file_lock(run_dir / f".{run.run_id}.lock") as mine:
            if not mine:  # two bench commands on one folder share the grid instead of repeating it
                echo(f"[{i}/{len(runs)}] {run.run_id}: being run by another graphkit bench process; skipped")
                continue
            old = _read_json(path)
            if old is not None and old.get("config_hash") == run.config_hash():
                if old.get("status") == "ok" or (old.get("status") == "failed" and not rerun_failed):
                    reused += 1
                    echo(f"[{i}/{len(runs)}] {run.run_id}: {old.get('status')} (recorded, skipped)")
                    continue
            elif old is not None:
                echo(f"[{i}/{len(runs)}] {run.run_id}: configuration changed since the recorded run; re-running")
            echo(f"[{i}/{len(runs)}] {run.run_id}: running")
            rec = (_run_subprocess(run, data_dir, path, timeout) if isolate else _run_in_process(run, data_dir))
            write_record(path, rec)
        done += 1
        if rec["status"] == "ok":
            shown = "  ".join(f"{k}={rec['metrics'][k]:.4f}" for k in _headline_metrics(rec))
            echo(f"[{i}/{len(runs)}] {run.run_id}: ok  {shown}  ({rec['wall_seconds']:.1f}s, "
                 f"peak {rec.get('peak_rss_mb', float('nan')):.0f} MB)")
        else:
            failed += 1
            echo(f"[{i}/{len(runs)}] {run.run_id}: FAILED  {rec['error']}")
    seconds = time.perf_counter() - t_start
    records = [r for r in (_read_json(run_dir / f"{run.run_id}.json") for run in runs) if r is not None]
    rep = report(records, out, plots=plots, compare=compare, echo=echo)
    echo(f"grid: {len(runs)} runs ({done} run now, {reused} reused, {failed} failed now) in {seconds:.1f}s; "
         f"records in {run_dir}")
    return {"records": records, "skipped": skipped, "seconds": seconds, **rep}


def _headline_metrics(rec: Mapping[str, Any]) -> List[str]:
    metrics = rec.get("metrics") or {}
    keys = [k for k in TASK_METRICS.get(rec.get("task", ""), ()) if k in metrics]
    keys += sorted(k for k in metrics if k.startswith("ogb_"))
    return keys or sorted(metrics)


# ----------------------------------------------------------------------------- reporting
def load_records(folder: PathLike) -> List[Dict[str, Any]]:
    """Every run record under ``<folder>/runs/`` (or ``folder`` itself), sorted by run id.

    Args:
        folder: a bench output folder.
    """
    folder = Path(folder)
    run_dir = folder / "runs" if (folder / "runs").is_dir() else folder
    recs = [r for r in (_read_json(p) for p in sorted(run_dir.glob("*.json"))) if r is not None and "run_id" in r]
    return sorted(recs, key=lambda r: r["run_id"])


def results_frame(records: Iterable[Mapping[str, Any]]) -> Any:
    """One row per run: model, dataset, seed, status, every metric, time, memory, fingerprint.

    Args:
        records: run records (:func:`load_records`).
    """
    import pandas as pd

    rows = []
    for r in records:
        row = {"model": r.get("model"), "dataset": r.get("dataset"), "seed": r.get("seed"),
               "status": r.get("status"), "task": r.get("task")}
        row.update({k: v for k, v in (r.get("metrics") or {}).items()})
        row.update({"best_valid": r.get("best_valid"), "best_epoch": r.get("best_epoch"),
                    "epochs_run": r.get("epochs_run"), "wall_seconds": r.get("wall_seconds"),
                    "peak_rss_mb": r.get("peak_rss_mb"), "peak_cuda_mb": r.get("peak_cuda_mb"),
                    "fingerprint": r.get("fingerprint"), "device": r.get("device"),
                    "options": _options_text(r), "error": r.get("error")})
        rows.append(row)
    return pd.DataFrame(rows)


def _options_text(record: Mapping[str, Any]) -> str:
    """``"max_time=150 num_threads=1 eval_every=1"``: the run options and ``--set`` overrides of a record."""
    opts = {**(record.get("fit_options") or {}), **(record.get("overrides") or {})}
    return " ".join(f"{k}={v}" for k, v in sorted(opts.items()))


def summarize(records: Iterable[Mapping[str, Any]]) -> Any:
    """Mean and standard deviation over seeds per (dataset, model) of the successful runs.

    Args:
        records: run records.

    Returns:
        A DataFrame with columns ``dataset, model, seeds, failed, <metric>_mean, <metric>_std, ...,
        wall_seconds_mean, peak_rss_mb_max`` (std is the sample std; 0 for one seed).
    """
    import pandas as pd

    records = list(records)
    df = results_frame(records)
    if df.empty:
        return pd.DataFrame()
    metric_keys = sorted({k for r in records for k in (r.get("metrics") or {})})
    rows = []
    for (ds, model), grp in df.groupby(["dataset", "model"], sort=True):
        ok = grp[grp["status"] == "ok"]
        row: Dict[str, Any] = {"dataset": ds, "model": model, "task": grp["task"].iloc[0], "seeds": len(ok),
                               "failed": int((grp["status"] != "ok").sum())}
        for c in metric_keys:
            vals = pd.to_numeric(ok[c], errors="coerce").dropna() if c in ok else pd.Series([], dtype=float)
            if len(vals):
                row[f"{c}_mean"] = float(vals.mean())
                row[f"{c}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        if len(ok):
            row["wall_seconds_mean"] = float(pd.to_numeric(ok["wall_seconds"]).mean())
            row["peak_rss_mb_max"] = float(pd.to_numeric(ok["peak_rss_mb"]).max())
        fps = sorted({str(f) for f in ok["fingerprint"].dropna()})
        row["fingerprint"] = ",".join(fps)
        row["device"] = "; ".join(sorted({str(d) for d in ok["device"].dropna()}))
        row["options"] = "; ".join(sorted({str(o) for o in grp["options"].dropna() if str(o)}))
        rows.append(row)
    return pd.DataFrame(rows)


def _table_metrics(summary: Any, task: str) -> List[str]:
    base = [m for m in TASK_METRICS.get(task, ())
            if f"{m}_mean" in summary.columns and summary[f"{m}_mean"].notna().any()]
    extra = sorted(c[:-5] for c in summary.columns if c.endswith("_mean") and c.startswith("ogb_"))
    return base + extra


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _num(value: Any, fmt: str) -> str:
    return "-" if _missing(value) else fmt.format(value)


def _fmt(mean: Any, std: Any) -> str:
    return "-" if _missing(mean) else f"{mean:.4f} ± {0.0 if _missing(std) else std:.4f}"


def compare_paper(summary: Any) -> Any:
    """Published numbers next to ours: one row per (dataset, model, metric) with a paper value.

    Args:
        summary: :func:`summarize` output.

    Returns:
        DataFrame ``dataset, model, metric, ours_mean, ours_std, paper, diff, source``.
    """
    import pandas as pd

    rows = []
    for _, r in summary.iterrows():
        paper = PAPER_RESULTS.get((r["model"], r["dataset"]))
        if not paper:
            continue
        for metric, ref in paper["metrics"].items():
            mean = r.get(f"{metric}_mean")
            ok = not _missing(mean)
            rows.append({"dataset": r["dataset"], "model": r["model"], "metric": metric,
                         "ours_mean": mean if ok else None, "ours_std": r.get(f"{metric}_std") if ok else None,
                         "paper": ref, "diff": (mean - ref) if ok else None, "source": paper["source"]})
    return pd.DataFrame(rows, columns=["dataset", "model", "metric", "ours_mean", "ours_std", "paper", "diff",
                                       "source"])


def leaderboard_markdown(summary: Any, compare: Optional[str] = None, seconds: Optional[float] = None) -> str:
    """A markdown leaderboard: one table per dataset, models sorted by the headline metric.

    Args:
        summary: :func:`summarize` output.
        compare: ``"paper"`` adds a paper column and the difference for the headline metric.
        seconds: the grid's total time, printed under the tables when given.
    """
    lines = ["# graphkit leaderboard", "",
             "Test metrics, mean ± sample std over seeds; each model selected on the validation split "
             "(standardized, fingerprinted splits).", ""]
    if summary is None or len(summary) == 0:
        return "\n".join(lines + ["(no finished runs)", ""])
    for ds, grp in summary.groupby("dataset", sort=True):
        task = grp["task"].iloc[0]
        metrics = _table_metrics(grp, task)
        head = metrics[0] if metrics else None
        if head:
            grp = grp.sort_values(f"{head}_mean", ascending=head in LOWER_IS_BETTER, na_position="last")
        fps = sorted({f for v in grp["fingerprint"] for f in str(v).split(",") if f and f != "nan"})
        lines.append(f"## {ds} ({task}; split {', '.join(fps) or '-'})")
        lines.append("")
        opts = sorted({f"{r['model']}: {r['options']}" for _, r in grp.iterrows() if str(r.get("options") or "")})
        if opts:
            lines += ["Run options (on top of the presets): " + "; ".join(opts) + ".", ""]
        cols = ["model", *metrics, "seeds", "failed", "time / run (s)", "peak RSS (MB)"]
        if compare == "paper" and head:
            cols[1 + len(metrics):1 + len(metrics)] = [f"paper {head}", "diff"]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for _, r in grp.iterrows():
            cells = [str(r["model"])] + [_fmt(r.get(f"{m}_mean"), r.get(f"{m}_std")) for m in metrics]
            if compare == "paper" and head:
                ref = PAPER_RESULTS.get((r["model"], ds), {}).get("metrics", {}).get(head)
                mean = r.get(f"{head}_mean")
                has = ref is not None and not _missing(mean)
                cells += [_num(ref, "{:.4f}"), f"{mean - ref:+.4f}" if has else "-"]
            cells += [str(int(r["seeds"])), str(int(r["failed"])), _num(r.get("wall_seconds_mean"), "{:.1f}"),
                      _num(r.get("peak_rss_mb_max"), "{:.0f}")]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if compare == "paper":
        sources = sorted({p["source"] for (m, d), p in PAPER_RESULTS.items()
                          if ((summary["model"] == m) & (summary["dataset"] == d)).any()})
        if sources:
            lines += ["Paper numbers: " + "; ".join(sources) + ".", ""]
    devices = sorted({d for v in summary.get("device", []) for d in str(v).split("; ") if d and d != "nan"})
    if devices:
        lines += [f"Device: {'; '.join(devices)}.", ""]
    if seconds is not None:
        lines += [f"Grid time (sum of the runs' wall times): {seconds:.1f} s.", ""]
    return "\n".join(lines)


def terminal_table(summary: Any) -> str:
    """The summary as aligned text (mean ± std per metric) for the terminal.

    Args:
        summary: :func:`summarize` output.
    """
    if summary is None or len(summary) == 0:
        return "(no finished runs)"
    out: List[str] = []
    for ds, grp in summary.groupby("dataset", sort=True):
        metrics = _table_metrics(grp, grp["task"].iloc[0])
        header = ["model", *metrics, "seeds", "failed", "s/run"]
        rows = [[str(r["model"]), *[_fmt(r.get(f"{m}_mean"), r.get(f"{m}_std")) for m in metrics],
                 str(int(r["seeds"])), str(int(r["failed"])), _num(r.get("wall_seconds_mean"), "{:.1f}")]
                for _, r in grp.iterrows()]
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        out.append(f"{ds}")
        out.append("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths)))
        out.extend("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)
        out.append("")
    return "\n".join(out).rstrip()


def write_plots(records: Sequence[Mapping[str, Any]], folder: PathLike) -> List[Path]:
    """Per dataset: validation metric per epoch and seconds per epoch, one line per (model, seed).

    Args:
        records: run records with their ``history``.
        folder: where the PNG files go.

    Returns:
        The written files (``<dataset>_valid.png``, ``<dataset>_epoch_time.png``).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    by_ds: Dict[str, List[Mapping[str, Any]]] = {}
    for r in records:
        if r.get("status") == "ok" and r.get("history"):
            by_ds.setdefault(str(r["dataset"]), []).append(r)
    for ds, recs in sorted(by_ds.items()):
        task = recs[0].get("task", "")
        col = _valid_column(task, recs[0]["history"])
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in ds)
        for kind, ylabel in (("valid", f"validation {col.replace('valid_', '').replace('val_', '')}"),
                             ("epoch_time", "seconds per epoch")):
            fig, ax = plt.subplots(figsize=(6.4, 4.0))
            models = sorted({r["model"] for r in recs})
            colors = {m: f"C{i % 10}" for i, m in enumerate(models)}
            labelled = set()
            for r in sorted(recs, key=lambda x: (x["model"], x["seed"])):
                h = r["history"]
                key = col if kind == "valid" else "seconds"
                if key not in h or "epoch" not in h:
                    continue
                pts = [(e, v) for e, v in zip(h["epoch"], h[key]) if v is not None]
                if not pts:
                    continue
                xs, ys = zip(*pts)
                label = r["model"] if r["model"] not in labelled else None
                labelled.add(r["model"])
                ax.plot(xs, ys, marker="." if len(xs) < 30 else None, color=colors[r["model"]], alpha=0.8,
                        label=label)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{ds}: {ylabel} (one line per seed)")
            if labelled:
                ax.legend()
            ax.grid(alpha=0.3)
            fig.tight_layout()
            path = folder / f"{safe}_{kind}.png"
            with atomic_write(path, "wb") as fh:
                fig.savefig(fh, format="png", dpi=110)
            plt.close(fig)
            written.append(path)
    return written


def report(records: Sequence[Mapping[str, Any]], out: PathLike, *, plots: bool = True,
           compare: Optional[str] = None, seconds: Optional[float] = None,
           echo: Callable[[str], None] = print) -> Dict[str, Any]:
    """Write ``results.csv``, ``leaderboard.md`` (and ``paper_comparison.csv``) and plots; print the table.

    Args:
        records: run records.
        out: the bench output folder.
        plots: write plots into ``<out>/plots``.
        compare: ``"paper"`` to print and write the comparison with the published numbers.
        seconds: the grid's time, for the leaderboard footer.
        echo: where the table goes.

    Returns:
        ``{"summary": DataFrame, "comparison": DataFrame or None, "files": {name: path}}``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: Dict[str, Path] = {}
    frame = results_frame(records)
    with atomic_write(out / "results.csv", "w") as fh:
        frame.to_csv(fh, index=False)
    files["results.csv"] = out / "results.csv"
    summary = summarize(records)
    if seconds is None and len(frame):
        seconds = float(sum(float(r.get("wall_seconds") or 0.0) for r in records))
    with atomic_write(out / "leaderboard.md", "w") as fh:
        fh.write(leaderboard_markdown(summary, compare=compare, seconds=seconds))
    files["leaderboard.md"] = out / "leaderboard.md"
    echo(terminal_table(summary))
    comparison = None
    if compare == "paper":
        comparison = compare_paper(summary)
        with atomic_write(out / "paper_comparison.csv", "w") as fh:
            comparison.to_csv(fh, index=False)
        files["paper_comparison.csv"] = out / "paper_comparison.csv"
        echo("")
        if len(comparison):
            echo("compared with the papers (test metrics):")
            for _, c in comparison.iterrows():
                ours = _fmt(c["ours_mean"], c["ours_std"])
                diff = _num(c["diff"], "{:+.4f}")
                echo(f"  {c['dataset']:<12} {c['model']:<10} {c['metric']:<10} ours {ours:<18} paper "
                     f"{c['paper']:.4f}  diff {diff}   ({c['source']})")
        else:
            echo("no published numbers for these (model, dataset) pairs")
    if plots:
        try:
            for p in write_plots(records, out / "plots"):
                files[p.name] = p
        except ImportError:
            echo("plots skipped: matplotlib is not installed (pip install 'graphkit[plot]')")
    return {"summary": summary, "comparison": comparison, "files": files}


if __name__ == "__main__":  # the per-run subprocess of run_bench(isolate=True)
    sys.exit(_child_main(sys.argv[1]))
