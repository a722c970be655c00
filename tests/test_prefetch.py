"""The asynchronous batch pipeline (graphkit.training.prefetch): order, overlap, the stream protocol
(recorded by a fake stream object), identical results to the synchronous path, and the
zero-copy gather kernel inside the pipeline under numba's CUDA simulator."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pandas as pd
import pytest
import torch

from graphkit.training.minibatch import MiniBatchTrainConfig, MiniBatchTrainer
from graphkit.training.prefetch import HostStreams, Prefetcher

sys.path.insert(0, str(Path(__file__).parent))
from test_largegt import sbm, small_model  # noqa: E402

ROOT = str(Path(__file__).resolve().parents[1])
pytestmark = pytest.mark.usefixtures("one_thread")


class RecordingStreams(HostStreams):
    """Logs every stream operation with the thread that made it."""

    def __init__(self):
        self.log = []
        self.lock = threading.Lock()
        self.inside = threading.local()

    def _add(self, *entry):
        with self.lock:
            self.log.append((threading.current_thread().name,) + entry)

    def side(self):
        streams = self

        class Ctx:
            def __enter__(self):
                streams.inside.on = True
                streams._add("enter-side")

            def __exit__(self, *exc):
                streams.inside.on = False
                streams._add("exit-side")

        return Ctx()

    def record(self):
        event = object()
        self._add("record", event)
        return event

    def wait(self, event):
        self._add("wait", event)

    def hand_over(self, obj):
        self._add("hand_over", obj)


def test_batches_come_in_order_with_the_stream_protocol():
    streams = RecordingStreams()
    prepared = []

    def prepare(b):
        assert getattr(streams.inside, "on", False), "prepare must run with the side stream current"
        assert threading.current_thread().name.startswith("graphkit-prefetch")
        prepared.append(b)
        return torch.full((2,), float(b))

    with Prefetcher(prepare, range(3, 9), depth=2, streams=streams) as pf:
        got = [(b, t.tolist()) for b, t in pf]
    assert got == [(b, [float(b)] * 2) for b in range(3, 9)]
    assert prepared == list(range(3, 9))
    # worker: enter side stream, prepare, record the event, leave; main: wait for that event, hand over
    events = {}
    for entry in streams.log:
        if entry[1] == "record":
            assert entry[0].startswith("graphkit-prefetch")
            events[id(entry[2])] = len(events)
    waits = [e for e in streams.log if e[1] == "wait"]
    assert [events[id(e[2])] for e in waits] == list(range(6))  # waited in order, each recorded before
    assert all(e[0] == "MainThread" for e in waits)
    hands = [e for e in streams.log if e[1] == "hand_over"]
    assert [h[2].tolist()[0] for h in hands] == [float(b) for b in range(3, 9)]
    for w in waits:  # every wait comes after its event's record in the log
        rec_pos = next(i for i, e in enumerate(streams.log) if e[1] == "record" and e[2] is w[2])
        assert rec_pos < streams.log.index(w)


def test_the_next_batch_is_prepared_while_the_current_one_trains():
    """Structural overlap (no timing): preparing batch b waits until training of b-1 has begun;
    without overlap this would deadlock (the consumer waits for b-1 to be ready, which it is, and
    only then starts training it; b is prepared meanwhile)."""
    n = 5
    training = [threading.Event() for _ in range(n)]
    overlapped = []

    def prepare(b):
        if b >= 2:  # batches 0 and 1 are submitted up front (depth 1); b >= 2 after b-2 was handed out
            overlapped.append(training[b - 1].wait(timeout=10))
        return b

    with Prefetcher(prepare, range(n), depth=1) as pf:
        for b, _ in pf:
            training[b].set()  # "training b": the worker may be preparing b+1 now
    assert overlapped == [True] * (n - 2)


def test_errors_in_the_worker_surface_in_order():
    def prepare(b):
        if b == 2:
            raise ValueError("bad batch 2")
        return b

    pf = Prefetcher(prepare, range(5), depth=1)
    assert [next(pf)[0], next(pf)[0]] == [0, 1]
    with pytest.raises(ValueError, match="bad batch 2"):
        next(pf)
    pf.close()
    with pytest.raises(ValueError):
        Prefetcher(prepare, range(2), depth=0)


def _run(prefetch, **kw):
    ds = sbm()
    cfg = MiniBatchTrainConfig(epochs=4, batch_size=16, patience=0, lr=5e-3, progress=False, seed=0,
                               prefetch=prefetch, **kw)
    tr = MiniBatchTrainer(small_model(ds, dropout=0.2), ds, cfg)
    try:
        return tr.fit()
    finally:
        tr.close()


def test_pipeline_trains_exactly_like_the_synchronous_path():
    sync, one, two = _run(0), _run(1), _run(2)
    cols = [c for c in sync.history.columns if "seconds" not in c]
    for res in (one, two):
        assert res.metrics == sync.metrics
        pd.testing.assert_frame_equal(sync.history[cols], res.history[cols], check_exact=True)
        a, b = sync.model.state_dict(), res.model.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    # synchronous: the loop waits for all preparation; pipelined: at most for all of it
    assert (sync.history["wait_seconds"] == sync.history["sample_seconds"]).all()
    assert (one.history["wait_seconds"] <= one.history["sample_seconds"] + 1e-3).all()
    resampled = [_run(p, resample=True) for p in (0, 1)]
    assert resampled[0].metrics == resampled[1].metrics


SIM_PIPELINE = textwrap.dedent(
    """
    import os, threading
    assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    import numpy as np, torch
    from graphkit import feature_store as fs
    from graphkit.training.prefetch import HostStreams, Prefetcher

    class Log(HostStreams):
        def __init__(self):
            self.records, self.waits = [], []
        def record(self):
            e = object(); self.records.append(e); return e
        def wait(self, e):
            assert e in self.records, "waited for an event that was never recorded"
            self.waits.append(e)

    rng = np.random.default_rng(0)
    table = torch.randn(300, 100)
    batches = [torch.from_numpy(rng.integers(0, 300, (16, 5))) for _ in range(6)]
    sync = [fs.gather_rows_simulated(table, idx, threads_per_block=64, max_blocks=2) for idx in batches]
    log = Log()
    with Prefetcher(lambda b: fs.gather_rows_simulated(table, batches[b], threads_per_block=64, max_blocks=2),
                    range(6), depth=2, streams=log) as pf:
        piped = [out for _, out in pf]
    assert all(torch.equal(a, b) for a, b in zip(sync, piped))
    assert all(torch.equal(a, table[idx]) for a, idx in zip(piped, batches))
    assert log.waits == log.records and len(log.waits) == 6
    print("OK", len(piped))
    """
)


def test_zero_copy_kernel_in_the_pipeline_under_the_cuda_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", SIM_PIPELINE], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK 6")
