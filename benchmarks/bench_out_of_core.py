"""Training on a feature table larger than RAM: a memory-mapped store on this machine.  Opt-in.

Builds, in chunks (never more than one 256 MB chunk in memory), a float32 feature table of
``--table-gb`` GB on disk (:meth:`graphkit.feature_store.MemMapStore.create`), larger than the
machine's RAM, and trains the GraphSAGE-style model of ``benchmarks/bench_pipeline.py`` on it
with the mini-batch trainer (CPU, the asynchronous pipeline on: ``prefetch=1`` overlaps the
page faults of batch i+1 with the step of batch i), once with the kernel's default read-ahead
on the mapping (``access="normal"``) and once with read-ahead off (``access="random"``,
MemMapStore's default).  For comparison, the same model and batch
count on a table that fits (``--fit-gb``): held in memory (:class:`InMemoryStore`) and
memory-mapped (warm page cache).

Reported per configuration: epoch seconds (mean after the first epoch), the loop's wait for
batches, peak resident memory of the process (``VmHWM``) and its split into anonymous memory
(``RssAnon``: what the process itself holds) and file-backed pages (``RssFile``: mapped pages
of the table, which the kernel reclaims under pressure), major page faults (reads from disk)
and the page cache before and after.  The table files are deleted at the end (``--keep`` keeps
them); a build that fails leaves no file (``MemMapStore.create`` writes atomically).

Usage (about 10-15 minutes on the 2-core, 24 GiB development VM)::

    python benchmarks/bench_out_of_core.py --table-gb 32 --fit-gb 4 --dir runs/ooc --drop-caches \\
        --json runs/ooc/result.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_pipeline import SAGEMean, random_graph  # noqa: E402
from graphkit.datasets.node import NodeDataset  # noqa: E402
from graphkit.feature_store import InMemoryStore, MemMapStore  # noqa: E402
from graphkit.graph import Graph  # noqa: E402
from graphkit.training.minibatch import MiniBatchTrainConfig, MiniBatchTrainer  # noqa: E402


def meminfo(key: str, path: str = "/proc/meminfo") -> int:
    """A ``kB`` field of /proc/meminfo or /proc/self/status, in bytes (0 when absent)."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def status(key: str) -> int:
    return meminfo(key, "/proc/self/status")


def drop_caches() -> bool:
    """Flush dirty pages and drop the page cache (root only), so every configuration starts cold."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def chunks(n: int, feat: int, seed: int) -> Iterator[np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    step = max(1, (1 << 28) // (feat * 4))
    for s in range(0, n, step):
        yield torch.empty((min(step, n - s), feat)).uniform_(-1.0, 1.0, generator=g).numpy()


def dataset(n: int, batches: int, batch_size: int) -> NodeDataset:
    rng = np.random.default_rng(1)
    m = batches * batch_size
    perm = rng.choice(n, size=m + 2 * batch_size, replace=False)
    tr, va, te = (torch.from_numpy(np.sort(p)) for p in (perm[:m], perm[m:m + batch_size], perm[m + batch_size:]))
    return NodeDataset(name="synthetic", graph=Graph.from_coo(np.zeros(0, np.int64), np.zeros(0, np.int64), n),
                       x=None, y=torch.from_numpy(rng.integers(0, 8, n)), train_idx=tr, val_idx=va, test_idx=te,
                       num_classes=8, split="random", split_seed=1, fingerprint="synthetic")


def train(name: str, store: Any, n: int, csr: tuple, args: Any) -> Dict[str, Any]:
    ds = dataset(n, args.batches, args.batch_size)
    torch.manual_seed(0)
    model = SAGEMean(args.feat, 8, hidden=args.hidden, fanout=args.fanout)
    model._csr = csr
    cfg = MiniBatchTrainConfig(epochs=args.epochs, batch_size=args.batch_size, max_batches=args.batches, patience=0,
                               lr=1e-3, progress=False, seed=0, device="cpu", prefetch=1)
    cached0, faults0 = meminfo("Cached"), resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    t0 = time.perf_counter()
    res = MiniBatchTrainer(model, ds, cfg, store=store).fit()
    h = res.history
    later = h.iloc[1:] if len(h) > 1 else h
    out = {"config": name, "store": type(store).__name__, "table_gb": round(n * args.feat * 4 / 1e9, 2),
           "epoch_seconds": float(later["seconds"].mean()), "first_epoch_seconds": float(h["seconds"].iloc[0]),
           "wait_seconds": float(later["wait_seconds"].mean()), "wall_seconds": time.perf_counter() - t0,
           "peak_rss_gb": status("VmHWM") / 1e9, "rss_anon_gb": status("RssAnon") / 1e9,
           "rss_file_gb": status("RssFile") / 1e9,
           "major_faults": resource.getrusage(resource.RUSAGE_SELF).ru_majflt - faults0,
           "page_cache_gb_before": cached0 / 1e9, "page_cache_gb_after": meminfo("Cached") / 1e9,
           "train_loss_last": float(h["train_loss"].iloc[-1])}
    print(f"  {name:22s} epoch {out['epoch_seconds']:7.2f} s (first {out['first_epoch_seconds']:.2f} s; loop waited "
          f"{out['wait_seconds']:.2f} s) | peak RSS {out['peak_rss_gb']:.2f} GB (anon {out['rss_anon_gb']:.2f}, "
          f"file {out['rss_file_gb']:.2f}) | major faults {out['major_faults']:,} | page cache "
          f"{out['page_cache_gb_before']:.1f} -> {out['page_cache_gb_after']:.1f} GB", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table-gb", type=float, default=32.0, help="the larger-than-RAM table (10^9 bytes)")
    ap.add_argument("--fit-gb", type=float, default=4.0, help="the table that fits, for comparison")
    ap.add_argument("--feat", type=int, default=256)
    ap.add_argument("--fanout", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--avg-degree", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dir", default="runs/ooc", help="where the table files go (deleted at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the table files")
    ap.add_argument("--access", default="normal,random",
                    help="read-ahead policies of the > RAM memmap to compare (MemMapStore access=)")
    ap.add_argument("--drop-caches", action="store_true", help="drop the page cache before each > RAM run (root)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ram = meminfo("MemTotal")
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if args.table_gb * 1e9 > 0.9 * free:
        print(f"not enough disk: {args.table_gb} GB table, {free / 1e9:.0f} GB free in {folder}", flush=True)
        return 2
    print(f"RAM {ram / 2**30:.1f} GiB; table {args.table_gb:g} GB ({args.table_gb * 1e9 / ram:.2f}x RAM) "
          f"and {args.fit_gb:g} GB; {args.threads} threads; load average {os.getloadavg()[0]:.2f}", flush=True)
    results = []
    files = []
    try:
        # ---- the table larger than RAM, written chunk by chunk (first: the process's peak RSS is its own)
        n_big = int(args.table_gb * 1e9) // (args.feat * 4)
        path_big = folder / "big.gkf"
        files.append(path_big)
        t0 = time.perf_counter()
        store = MemMapStore.create(path_big, (n_big, args.feat), np.float32, chunks(n_big, args.feat, 1))
        build_s = time.perf_counter() - t0
        print(f"  wrote {n_big * args.feat * 4 / 1e9:.1f} GB in {build_s:.0f} s "
              f"({n_big * args.feat * 4 / 1e9 / build_s:.2f} GB/s); peak RSS so far {status('VmHWM') / 1e9:.2f} GB",
              flush=True)
        store.close()
        csr_big = random_graph(n_big, args.avg_degree, 0)
        for access in args.access.split(","):
            dropped = drop_caches() if args.drop_caches else False
            store = MemMapStore(path_big, access=access)
            r = train(f"memmap (> RAM) {access}", store, n_big, csr_big, args)
            r.update(build_seconds=build_s, access=access, page_cache_dropped_before=dropped)
            results.append(r)
            store.close()
        # ---- the table that fits: in memory, then memory-mapped
        n_fit = int(args.fit_gb * 1e9) // (args.feat * 4)
        csr_fit = random_graph(n_fit, args.avg_degree, 0)
        table = torch.from_numpy(np.concatenate(list(chunks(n_fit, args.feat, 0))))
        results.append(train("in-memory (fits)", InMemoryStore(table), n_fit, csr_fit, args))
        path_fit = folder / "fit.gkf"
        files.append(path_fit)
        store = MemMapStore.from_tensor(path_fit, table, chunk_rows=1 << 18)
        del table
        results.append(train("memmap (fits)", store, n_fit, csr_fit, args))
        store.close()
        del csr_fit
    finally:
        if not args.keep:
            for f in files:
                f.unlink(missing_ok=True)
    summary = {"ram_bytes": ram, "runs": results, "args": vars(args), "load_average_end": os.getloadavg(),
               "files_kept": args.keep}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
