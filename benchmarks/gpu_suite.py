"""Every GPU figure graphkit owes, in one script sized for one device call (<= 9 minutes).

Sections (``--only`` picks some; each one is independent, a failure is printed with its
traceback and the suite goes on):

``env``              torch / CUDA / GPU name, numba-cuda availability.
``lightgcn-gowalla`` LightGCN, ``preset="fast"``, on gowalla with a wall-clock budget
                     (``--gowalla-budget``, 90 s in the full suite; the issue-16 goal is test
                     recall@20 >= 0.1830 within 8 minutes, a call of its own:
                     ``--only lightgcn-gowalla --gowalla-budget 460``).
``lightgcn-ml1m``    the same recipe on ml-1m (``--ml1m-budget``, 30 s).
``ultragcn-ml1m``    UltraGCN, paper preset, on ml-1m (``--ultragcn-budget``, 45 s).
``zero-copy``        ``benchmarks/bench_zero_copy.py``: zero-copy GB/s vs pinned ``index_select`` +
                     copy vs a plain pinned H2D copy, tables of 10 and 40 GB, rows of 128, 512 and
                     4096 B, 1e5 and 1e6 random rows (issue 18: zero-copy >= 2x the CPU gather and
                     >= 80% of the pinned H2D bandwidth for rows >= 512 B); subprocess, 100 s.
``pipeline``         ``benchmarks/bench_pipeline.py``: GraphSAGE-style mini-batch training on a
                     synthetic graph whose feature table exceeds the GPU's memory (1.05x, as host
                     memory allows): epoch time of CPU gather vs zero-copy, synchronous vs the
                     asynchronous pipeline (``prefetch=1``), and the share of the gather it hides
                     (target >= 80%); subprocess, 200 s.

Every training section prints its validation curve (validation recall@20 against wall-clock
seconds from the ``fit`` call, model preparation included) and the test recall@20 / ndcg@20 of
the model selected on validation (seed 2020; the fast recipe was chosen with seed 7 on CPU).
The figures are also written as JSON to ``$OUT/gpu_suite.json`` (the device tool's output
folder) or ``--json``.

Data: the device machine cannot see ``../shared``.  Copy the two datasets into an ignored
folder of the checkout and carry it::

    mkdir -p .devdata && cp -r ../shared/datasets/gowalla ../shared/datasets/ml-1m .devdata/
    grep -qx .devdata .git/info/exclude || echo .devdata >> .git/info/exclude
    # device tool: command "python benchmarks/gpu_suite.py", carry [".devdata"], timeout_s 570

``GRAPHKIT_DATA`` defaults to ``.devdata`` when that folder exists.

Modes: ``--quick`` (budgets 30 / 15 / 15 s, a 1 GB zero-copy table, a 4 GB pipeline table:
about 3 minutes) and ``--dry-run`` (CPU, 3-second budgets, no zero-copy, a 0.2 GB pipeline
table: checks the plumbing on a machine without a GPU in about a minute).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if (ROOT / ".devdata").is_dir():
    os.environ.setdefault("GRAPHKIT_DATA", str(ROOT / ".devdata"))

SECTIONS = ("env", "lightgcn-gowalla", "lightgcn-ml1m", "ultragcn-ml1m", "zero-copy", "pipeline")


def env_section(device: str) -> Dict[str, Any]:
    import torch

    out: Dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(),
                           "cuda_available": torch.cuda.is_available(), "device": device}
    if torch.cuda.is_available():
        out.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda,
                   gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2 ** 30, 1))
    try:
        from numba import cuda  # noqa: F401

        out["numba_cuda"] = bool(cuda.is_available())
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        out["numba_cuda"] = f"unavailable: {exc}"
    return out


def train_section(model: str, dataset: str, preset: Any, budget: float, device: str, threads: int) -> Dict[str, Any]:
    import graphkit
    from graphkit.training.callbacks import ValidationCurve
    from graphkit.training.result import _jsonable

    curve = ValidationCurve()
    res = graphkit.fit(model, dataset, preset=preset, seed=2020, device=device, max_time=budget,
                       num_threads=threads, progress=False, callbacks=[curve])
    wall = curve.elapsed()
    rec = res.record
    out = {"model": model, "dataset": dataset, "preset": preset, "budget_s": budget, "wall_s": round(wall, 1),
           "train_s": round(rec["train_seconds"], 1), "epochs": rec["epochs_run"], "best_epoch": rec["best_epoch"],
           "best_valid_recall@20": rec["best_valid"], "test": res.metrics, "stopped_by": rec["stopped_by"],
           "curve": [{**p, "seconds": round(p["seconds"], 2)} for p in curve.points], "record": _jsonable(rec)}  # split fingerprint, seed, hparams, versions, device
    first = curve.points[0]["seconds"] if curve.points else float("nan")
    print(f"  {model} {dataset}: {rec['epochs_run']} epochs in {rec['train_seconds']:.0f} s of training "
          f"({wall:.0f} s wall, first validation at {first:.0f} s); best validation recall@20 "
          f"{rec['best_valid']:.4f} (epoch {rec['best_epoch']}); test recall@20 {res.metrics['recall@20']:.4f}, "
          f"ndcg@20 {res.metrics['ndcg@20']:.4f}", flush=True)
    marks = [p for p in curve.points if p["epoch"] in (1, 2, 5) or p["epoch"] % 10 == 0] or curve.points
    print("  curve (s, valid recall@20): " + ", ".join(f"({p['seconds']:.0f}, {p['value']:.4f})"
                                                     for p in marks), flush=True)
    return out


def _subprocess_section(cmd: List[str], timeout: float, json_path: str = "") -> Dict[str, Any]:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        rc, text = proc.returncode, (proc.stdout + proc.stderr).strip()
    except subprocess.TimeoutExpired as exc:
        rc, text = "timeout", ((exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes)
                               else (exc.stdout or "")) + f"\n(killed after {timeout:.0f} s)"
    print("\n".join("  " + line for line in text.splitlines()[-30:]), flush=True)
    out: Dict[str, Any] = {"command": " ".join(cmd[1:]), "rc": rc, "seconds": round(time.perf_counter() - t0, 1),
                           "output_tail": text[-4000:]}
    if json_path and os.path.exists(json_path):
        out["figures"] = json.loads(Path(json_path).read_text())
    return out


def zero_copy_section(quick: bool) -> Dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_zero_copy.py"), "--table-gb", "1" if quick else "10,40",
           "--row-bytes", "128,512" if quick else "128,512,4096",
           "--batch-rows", "100000" if quick else "100000,1000000", "--repeats", "3"]
    return _subprocess_section(cmd, 100.0)


def pipeline_section(mode: str, threads: int) -> Dict[str, Any]:
    import tempfile

    import torch

    if mode == "full" and torch.cuda.is_available():
        table_gb = 1.05 * torch.cuda.get_device_properties(0).total_memory / 1e9
        extra = ["--batches", "60", "--epochs", "2"]
    elif mode == "quick":
        table_gb, extra = 4.0, ["--batches", "20", "--epochs", "2"]
    else:
        table_gb, extra = 0.2, ["--batches", "10", "--epochs", "2", "--batch-size", "256", "--device", "cpu"]
    path = os.path.join(tempfile.mkdtemp(prefix="gk-pipeline-"), "pipeline.json")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_pipeline.py"), "--table-gb", f"{table_gb:.1f}",
           "--json", path, "--threads", str(threads), *extra]
    return _subprocess_section(cmd, 200.0, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=None)
    ap.add_argument("--quick", action="store_true", help="short budgets (about 3 minutes in all)")
    ap.add_argument("--dry-run", action="store_true", help="CPU, 3-second budgets, no zero-copy")
    ap.add_argument("--gowalla-budget", type=float, default=90.0)
    ap.add_argument("--ml1m-budget", type=float, default=30.0)
    ap.add_argument("--ultragcn-budget", type=float, default=45.0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--json", default=None, help="where to write the figures (default $OUT/gpu_suite.json)")
    args = ap.parse_args()

    import torch

    device = "cpu" if args.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("gpu_suite: no CUDA device here; use --dry-run to check the script on CPU")
        return 2
    if args.dry_run:
        budgets = {"gowalla": 3.0, "ml1m": 3.0, "ultragcn": 3.0}
    elif args.quick:
        budgets = {"gowalla": 30.0, "ml1m": 15.0, "ultragcn": 15.0}
    else:
        budgets = {"gowalla": args.gowalla_budget, "ml1m": args.ml1m_budget, "ultragcn": args.ultragcn_budget}
    threads = args.threads or torch.get_num_threads()
    only = args.only or [s for s in SECTIONS if not (args.dry_run and s == "zero-copy")]
    jobs: Dict[str, Callable[[], Dict[str, Any]]] = {
        "env": lambda: env_section(device),
        "lightgcn-gowalla": lambda: train_section("lightgcn", "gowalla", "fast", budgets["gowalla"], device, threads),
        "lightgcn-ml1m": lambda: train_section("lightgcn", "ml-1m", "fast", budgets["ml1m"], device, threads),
        "ultragcn-ml1m": lambda: train_section("ultragcn", "ml-1m", "paper", budgets["ultragcn"], device, threads),
        "zero-copy": lambda: zero_copy_section(args.quick),
        "pipeline": lambda: pipeline_section("dry-run" if args.dry_run else "quick" if args.quick else "full", threads),
    }
    results: Dict[str, Any] = {"mode": "dry-run" if args.dry_run else "quick" if args.quick else "full",
                               "GRAPHKIT_DATA": os.environ.get("GRAPHKIT_DATA")}
    plan = {"env": "versions, GPU", "lightgcn-gowalla": f"{budgets['gowalla']:g} s budget",
            "lightgcn-ml1m": f"{budgets['ml1m']:g} s budget", "ultragcn-ml1m": f"{budgets['ultragcn']:g} s budget",
            "zero-copy": "subprocess, <= 100 s", "pipeline": "subprocess, <= 200 s"}
    print(f"gpu_suite ({results['mode']}, device {device}): " + "; ".join(f"{n} ({plan[n]})" for n in only), flush=True)
    t_suite = time.perf_counter()
    for name in only:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            results[name] = jobs[name]()
            if name == "env":
                print("  " + json.dumps(results[name]), flush=True)
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
            results[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            print(f"  FAILED: {type(exc).__name__}: {exc}\n{traceback.format_exc()}", flush=True)
        print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    results["suite_seconds"] = round(time.perf_counter() - t_suite, 1)
    path = args.json or (os.path.join(os.environ["OUT"], "gpu_suite.json") if os.environ.get("OUT") else None)
    if path:
        tmp = f"{path}.tmp"
        Path(tmp).parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w") as fh:
            json.dump(results, fh, indent=1, default=str)
        os.replace(tmp, path)
        print(f"figures written to {path}")
    print(f"suite: {results['suite_seconds']:.0f} s; failed sections: "
          f"{[k for k, v in results.items() if isinstance(v, dict) and 'error' in v] or 'none'}")
    return 1 if any(isinstance(v, dict) and "error" in v for v in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
