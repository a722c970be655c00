"""Asynchronous batch preparation for the mini-batch trainer: the overlap half of PyTorch-Direct.

Min et al. (VLDB 2021, arXiv 2101.07956) get their speed-up from two things: GPU threads that
read pinned host rows directly (:class:`~graphkit.feature_store.ZeroCopyStore`) and *overlap* of
that data movement with training.  :class:`Prefetcher` provides the overlap: while batch ``i``
trains on the compute stream,

1. batch ``i + 1`` is sampled on a CPU worker thread (graphkit's samplers are numba kernels
   compiled ``nogil``, so the thread runs beside the training thread), and
2. its features are gathered on a **side CUDA stream** (the worker makes that stream current,
   so the zero-copy kernel, the index copy and any ``.to(device, non_blocking=True)`` are
   queued there), after which the worker records a CUDA event;
3. the training thread makes its compute stream wait for that event
   (``wait_event``: a GPU-side dependency, no host synchronisation) and marks the batch's
   tensors as used by the compute stream (``record_stream``), so the caching allocator does
   not hand their memory to the next gather too early.

``depth`` batches are prepared ahead (1 = double buffering).  Batches come out in order, and
each is exactly what the synchronous path would have produced: preparing batch ``b`` must be
a pure function of ``b`` (the sampler draws from ``(seed, epoch, node)`` keys, the gather reads
a fixed table), never of the model's changing weights.  Bounds of the gathered indices are
checked on the CPU before the copy (the indices come from the sampler on the host), so nothing
on the hot path reads a GPU value back.

Without CUDA the stream operations are no-ops (:class:`HostStreams`) and the thread still
overlaps sampling with the CPU's training step.  Tests substitute a recording stream object
(any object with ``side()``, ``record()``, ``wait(event)``, ``hand_over(obj)``).
"""
from __future__ import annotations

import collections
import contextlib
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Deque, Iterable, Iterator, Optional, Tuple

import torch

__all__ = ["Prefetcher", "CudaStreams", "HostStreams", "streams_for"]


class HostStreams:
    """Stream operations for CPU training: all no-ops."""

    def side(self) -> Any:
        """A context manager making the side stream current in the calling thread."""
        return contextlib.nullcontext()

    def record(self) -> Any:
        """An event marking the end of the work queued so far on the side stream."""
        return None

    def wait(self, event: Any) -> None:
        """Make the compute stream wait for ``event`` (no host synchronisation).

        Args:
            event: what :meth:`record` returned.
        """

    def hand_over(self, obj: Any) -> None:
        """Mark the tensors in ``obj`` as used by the compute stream.

        Args:
            obj: a tensor or a (nested) tuple/list of tensors.
        """


class CudaStreams(HostStreams):
    """A side CUDA stream for the gathers, events, and the compute stream of ``device``.

    Args:
        device: the CUDA device training runs on.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self.compute = torch.cuda.current_stream(self.device)
        self.stream = torch.cuda.Stream(self.device)

    def side(self) -> Any:
        return torch.cuda.stream(self.stream)

    def record(self) -> Any:
        event = torch.cuda.Event()
        event.record(self.stream)
        return event

    def wait(self, event: Any) -> None:
        self.compute.wait_event(event)

    def hand_over(self, obj: Any) -> None:
        for t in _tensors(obj):
            if t.is_cuda:
                t.record_stream(self.compute)


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _tensors(o)


def streams_for(device: torch.device) -> HostStreams:
    """:class:`CudaStreams` for a CUDA device, else :class:`HostStreams`.

    Args:
        device: the training device.
    """
    device = torch.device(device)
    return CudaStreams(device) if device.type == "cuda" and torch.cuda.is_available() else HostStreams()


class Prefetcher:
    """Prepares batches ``depth`` ahead on a worker thread and a side stream; yields them in order.

    Example (what the mini-batch trainer does with ``prefetch=1``)::

        with Prefetcher(lambda b: prepare(epoch, b), range(start, n), depth=1,
                        streams=streams_for(device)) as batches:
            for b, args in batches:
                loss = model(*args) ...

    Args:
        prepare: ``prepare(b) -> batch`` (a tensor or tuple of tensors and other values); runs
            on the worker thread with the side stream current.  Must not depend on state the
            training thread changes (model weights).
        indices: the batch indices to prepare, in order.
        depth: batches prepared ahead of the one being consumed (>= 1).
        streams: stream operations (default: :class:`HostStreams`).

    Attributes:
        prepare_seconds: worker time spent preparing (sampling + issuing gathers).
        wait_seconds: training-thread time spent waiting for a prepared batch; with full
            overlap it is close to 0, without any it equals ``prepare_seconds``.
    """

    def __init__(self, prepare: Callable[[int], Any], indices: Iterable[int], depth: int = 1,
                 streams: Optional[HostStreams] = None) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.prepare = prepare
        self.depth = int(depth)
        self.streams = streams or HostStreams()
        self.prepare_seconds = 0.0
        self.wait_seconds = 0.0
        self._indices = iter(indices)
        self._pending: Deque[Tuple[int, "Future[Tuple[Any, Any]]"]] = collections.deque()
        self._pool: Optional[ThreadPoolExecutor] = ThreadPoolExecutor(1, thread_name_prefix="graphkit-prefetch")
        self._lock = threading.Lock()
        for _ in range(self.depth + 1):  # the batch consumed next, plus `depth` ahead
            self._submit()

    def _work(self, b: int) -> Tuple[Any, Any]:
        t0 = time.perf_counter()
        with self.streams.side():
            batch = self.prepare(b)
            event = self.streams.record()
        with self._lock:
            self.prepare_seconds += time.perf_counter() - t0
        return batch, event

    def _submit(self) -> None:
        if self._pool is None:
            return
        b = next(self._indices, None)
        if b is not None:
            self._pending.append((b, self._pool.submit(self._work, b)))

    def __iter__(self) -> "Prefetcher":
        return self

    def __next__(self) -> Tuple[int, Any]:
        if not self._pending:
            raise StopIteration
        b, fut = self._pending.popleft()
        t0 = time.perf_counter()
        batch, event = fut.result()  # host: the worker has *issued* the batch's work
        self.wait_seconds += time.perf_counter() - t0
        self.streams.wait(event)     # device: compute waits for the gather, the host does not
        self.streams.hand_over(batch)
        self._submit()
        return b, batch

    def close(self) -> None:
        """Stop preparing (batches already submitted finish first).  Idempotent."""
        pool, self._pool = self._pool, None
        if pool is not None:
            for _, fut in self._pending:
                fut.cancel()
            pool.shutdown(wait=True)
        self._pending.clear()

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover
            pass
