"""Feature stores: where node-feature tables live and how mini-batches read rows from them.

Every store has one interface::

    store.gather(indices) -> Tensor      # rows ``indices`` (any shape) on ``store.device``
    store.shape, store.dtype, store.device, len(store)
    store.close()                         # also a context manager: ``with MemMapStore(p) as s: ...``

``InMemoryStore``
    a tensor; ``index_select``.
``MemMapStore``
    a file read through ``np.memmap``, for tables larger than RAM.  :meth:`MemMapStore.create`
    writes one chunk at a time from an iterator, to a temporary file renamed into place only
    when complete.  The file starts with a 4096-byte header (magic ``GKFEATS1``, then JSON with
    shape and dtype), so data and metadata are written and renamed together.  ``gather`` reads
    the distinct requested rows in increasing order (sequential, page-cache friendly) and
    un-permutes them.
``ZeroCopyStore``
    a host (CPU) table that the GPU reads directly over PCIe/NVLink, without staging copies:
    the table's memory is page-locked in place with ``cudaHostRegister`` (flag ``Mapped``), and
    a numba-cuda kernel gathers the requested rows straight into a torch CUDA tensor.  This is
    the "zero-copy" data path of PyTorch-Direct: Seung Won Min, Kun Wu, Sitao Huang, Mert
    Hidayetoğlu, Jinjun Xiong, Eiman Ebrahimi, Deming Chen, Wen-mei Hwu, "Large Graph
    Convolutional Network Training with GPU-Oriented Data Communication Architecture",
    VLDB 2021, arXiv 2101.07956 (https://arxiv.org/abs/2101.07956).  Without CUDA it warns
    once and behaves as an :class:`InMemoryStore` on the CPU.

Out-of-range indices raise :class:`graphkit.GraphError` naming the offending index, the largest
valid index and the table size; the check runs on the host before any read or kernel launch.
"""
from __future__ import annotations

import json
import math
import threading
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .exceptions import ConfigError, DataFormatError, GraphError
from .utils import PathLike, atomic_write

__all__ = [
    "FeatureStore",
    "InMemoryStore",
    "MemMapStore",
    "ZeroCopyStore",
    "open_store",
    "gather_rows_simulated",
    "WARP_SIZE",
    "ALIGN_BYTES",
]

#: Threads per warp; each warp copies one row.
WARP_SIZE = 32
#: Each warp's first read starts at an address rounded down to this boundary (PyTorch-Direct).
ALIGN_BYTES = 128

_NP_OF_TORCH: Dict[torch.dtype, np.dtype] = {
    torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64), torch.float16: np.dtype(np.float16),
    torch.int64: np.dtype(np.int64), torch.int32: np.dtype(np.int32), torch.int16: np.dtype(np.int16),
    torch.int8: np.dtype(np.int8), torch.uint8: np.dtype(np.uint8), torch.bool: np.dtype(np.bool_),
}
_TORCH_OF_NP = {v: k for k, v in _NP_OF_TORCH.items()}


def _np_dtype(dtype: Any) -> np.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype not in _NP_OF_TORCH:
            raise ConfigError(f"feature stores support {sorted(str(d) for d in _NP_OF_TORCH)}, got {dtype}")
        return _NP_OF_TORCH[dtype]
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ConfigError(f"unknown dtype {dtype!r}") from exc
    if dt not in _TORCH_OF_NP:
        raise ConfigError(f"feature stores support {sorted(str(d) for d in _TORCH_OF_NP)}, got {dt}")
    return dt


def _check_indices(indices: Any, num_rows: int) -> Union[np.ndarray, torch.Tensor]:
    """Validate integer indices against a table of ``num_rows`` rows (host-side check).

    Returns an int64 numpy array, or an int64 tensor for CUDA input (checked with one
    min/max reduction).
    """
    if isinstance(indices, torch.Tensor):
        if indices.dtype in (torch.bool,) or indices.is_floating_point() or indices.is_complex():
            raise GraphError(f"indices must be integers, got dtype {indices.dtype}")
        idx: Union[np.ndarray, torch.Tensor]
        if indices.is_cuda:
            idx = indices.to(torch.int64)
            if idx.numel():
                lo, hi = torch.aminmax(idx)
                lo_i, hi_i = int(lo), int(hi)
                _range_error(lo_i, hi_i, num_rows)
            return idx
        idx = indices.detach().to(torch.int64).numpy()
    else:
        idx = np.asarray(indices)
        if idx.size == 0:
            idx = idx.astype(np.int64)
        if idx.dtype.kind not in "iu":
            raise GraphError(f"indices must be integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64, copy=False)
    if idx.size:
        _range_error(int(idx.min()), int(idx.max()), num_rows)
    return idx


def _range_error(lo: int, hi: int, num_rows: int) -> None:
    if lo < 0:
        raise GraphError(f"feature index {lo} is negative (valid indices 0..{num_rows - 1}; table size {num_rows} rows)")
    if hi >= num_rows:
        raise GraphError(f"feature index {hi} is out of range: the largest valid index is {num_rows - 1} "
                         f"(table size {num_rows} rows)")


class FeatureStore:
    """Base class: a ``[num_rows, ...]`` table with :meth:`gather`.

    Subclasses set ``shape``, ``dtype`` (torch) and ``device`` and implement ``_gather``
    (flat, validated int64 indices -> ``[n, *row_shape]`` tensor on ``device``).
    """

    shape: Tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    _closed: bool = False

    @property
    def num_rows(self) -> int:
        """Number of rows of the table."""
        return int(self.shape[0])

    @property
    def row_shape(self) -> Tuple[int, ...]:
        """Shape of one row (``shape[1:]``)."""
        return tuple(self.shape[1:])

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __len__(self) -> int:
        return self.num_rows

    def gather(self, indices: Any) -> torch.Tensor:
        """Rows ``indices`` (any shape; result ``[*indices.shape, *row_shape]``) on :attr:`device`."""
        if self._closed:
            raise ConfigError(f"{type(self).__name__} is closed")
        idx = _check_indices(indices, self.num_rows)
        shape = tuple(idx.shape)
        flat = idx.reshape(-1)
        out = self._gather(flat)
        return out.reshape(shape + self.row_shape)

    __getitem__ = gather

    def _gather(self, idx: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release the table (file handles, registrations).  Idempotent."""
        self._closed = True

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype}, device={self.device}{state})"


# --------------------------------------------------------------------------- in memory
class InMemoryStore(FeatureStore):
    """A tensor held in memory (CPU or GPU).

    Args:
        table: the table, a tensor or numpy array ``[N, ...]`` (not copied when already a tensor).
        device: where :meth:`gather` returns rows (default: the table's device).  Rows are
            selected where the table lives and then moved.
    """

    def __init__(self, table: Any, device: Any = None) -> None:
        if isinstance(table, np.ndarray):
            table = torch.from_numpy(np.ascontiguousarray(table))
        if not isinstance(table, torch.Tensor):
            raise ConfigError(f"table must be a tensor or numpy array, got {type(table).__name__}")
        if table.dim() < 1:
            raise ConfigError("table must have at least one dimension (rows)")
        self.table = table
        self.shape = tuple(table.shape)
        self.dtype = table.dtype
        self.device = torch.device(device) if device is not None else table.device

    def _gather(self, idx: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:
        t = torch.from_numpy(idx) if isinstance(idx, np.ndarray) else idx
        out = self.table.index_select(0, t.to(self.table.device))
        return out.to(self.device)

    def close(self) -> None:
        self.table = None  # type: ignore[assignment]
        super().close()


# --------------------------------------------------------------------------- memory-mapped file
_MAGIC = b"GKFEATS1"
HEADER_BYTES = 4096
FORMAT_VERSION = 1


def _header(shape: Tuple[int, ...], dtype: np.dtype) -> bytes:
    meta = json.dumps({"format_version": FORMAT_VERSION, "shape": list(shape), "dtype": dtype.str,
                       "order": "C", "data_offset": HEADER_BYTES}, sort_keys=True).encode()
    block = _MAGIC + len(meta).to_bytes(4, "little") + meta
    if len(block) > HEADER_BYTES:  # pragma: no cover - only for absurd ranks
        raise ConfigError("feature table header too large")
    return block + b"\0" * (HEADER_BYTES - len(block))


def read_header(path: PathLike) -> Dict[str, Any]:
    """The metadata (shape, dtype, ...) of a :class:`MemMapStore` file."""
    path = Path(path)
    if not path.is_file():
        from .exceptions import DataNotFoundError

        raise DataNotFoundError(f"feature table {path} does not exist")
    with open(path, "rb") as fh:
        head = fh.read(HEADER_BYTES)
    if len(head) < 12 or head[:8] != _MAGIC:
        raise DataFormatError("not a graphkit feature table", path=path, field="magic", expected=_MAGIC, got=head[:8])
    n = int.from_bytes(head[8:12], "little")
    try:
        meta = json.loads(head[12:12 + n].decode())
        shape = tuple(int(s) for s in meta["shape"])
        dtype = np.dtype(meta["dtype"])
    except Exception as exc:
        raise DataFormatError(f"unreadable header ({exc})", path=path, field="header") from exc
    expected = HEADER_BYTES + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise DataFormatError("file size does not match its header", path=path, field="size",
                              expected=expected, got=size)
    meta["shape"], meta["dtype"] = shape, dtype
    return meta


_MADVISE = {"random": "MADV_RANDOM", "normal": "MADV_NORMAL", "sequential": "MADV_SEQUENTIAL"}


def _advise(mm: np.ndarray, access: str) -> bool:
    """``madvise`` the mapping behind a ``np.memmap``; whether it was applied."""
    import mmap as _mmap_module

    handle = getattr(mm, "_mmap", None)
    flag = getattr(_mmap_module, _MADVISE[access], None)
    if handle is None or flag is None or not hasattr(handle, "madvise"):
        return False
    handle.madvise(flag)
    return True


class MemMapStore(FeatureStore):
    """A feature table in a file, read through ``np.memmap`` (for tables larger than RAM).

    Args:
        path: a file written by :meth:`create` (or :meth:`from_tensor`).
        device: where :meth:`gather` returns rows (default CPU).

    ``gather`` reads the distinct requested rows in increasing order, then restores the
    requested order (and duplicates), so reads are sequential in the file.

    ``access`` is the kernel's read-ahead policy for the mapping (``madvise``): ``"random"``
    (default) turns read-ahead off, so a gathered row that is not in the page cache costs one
    page read instead of a whole read-ahead window (128 KiB and more) of rows nobody asked
    for -- on a table larger than RAM, read-ahead fills the page cache with unused rows and
    evicts used ones (``benchmarks/bench_out_of_core.py`` measures both); ``"normal"`` keeps
    the kernel's default; ``"sequential"`` suits full scans.  No effect where ``madvise`` is
    unavailable.

    Args:
        access: ``"random"``, ``"normal"`` or ``"sequential"``.
    """

    def __init__(self, path: PathLike, device: Any = "cpu", access: str = "random") -> None:
        if access not in _MADVISE:
            raise ConfigError(f"access must be one of {', '.join(_MADVISE)}, got {access!r}")
        self.path = Path(path)
        meta = read_header(self.path)
        self._np_dtype = meta["dtype"]
        self.shape = tuple(meta["shape"])
        self.dtype = _TORCH_OF_NP[_np_dtype(self._np_dtype)]
        self.device = torch.device(device)
        self.access = access
        if int(np.prod(self.shape, dtype=np.int64)) == 0:
            self._mm: Optional[np.ndarray] = np.empty(self.shape, dtype=self._np_dtype)
        else:
            self._mm = np.memmap(self.path, dtype=self._np_dtype, mode="r", offset=HEADER_BYTES, shape=self.shape)
            _advise(self._mm, access)

    @classmethod
    def create(cls, path: PathLike, shape: Sequence[int], dtype: Any, chunks: Iterable[Any],
               device: Any = "cpu") -> "MemMapStore":
        """Write a table chunk by chunk and open it.

        Args:
            path: destination file.
            shape: full table shape ``[N, ...]``.
            dtype: numpy or torch dtype.
            chunks: an iterable of row blocks (numpy arrays or tensors) ``[n_i, *shape[1:]]``
                in order, with ``sum(n_i) == N``; only one is held in memory at a time.
            device: as for the constructor.

        The file is written under a temporary name in the same folder, flushed to disk and
        renamed to ``path`` only after the last chunk: an exception from the iterator, a
        shape mismatch or a crash leaves no file at ``path`` (and an existing one untouched).
        """
        shape = tuple(int(s) for s in shape)
        if not shape or any(s < 0 for s in shape):
            raise ConfigError(f"shape must be non-empty with non-negative sizes, got {shape}")
        dt = _np_dtype(dtype)
        rows = 0
        with atomic_write(path, "wb") as fh:
            fh.write(_header(shape, dt))
            for i, chunk in enumerate(chunks):
                arr = chunk.detach().cpu().numpy() if isinstance(chunk, torch.Tensor) else np.asarray(chunk)
                if arr.ndim != len(shape) or tuple(arr.shape[1:]) != shape[1:]:
                    raise ConfigError(f"chunk {i} has shape {tuple(arr.shape)}; rows must have shape {shape[1:]}")
                if rows + arr.shape[0] > shape[0]:
                    raise ConfigError(f"chunks hold more than the declared {shape[0]} rows (chunk {i})")
                fh.write(np.ascontiguousarray(arr, dtype=dt).tobytes())
                rows += arr.shape[0]
            if rows != shape[0]:
                raise ConfigError(f"chunks hold {rows} rows, the declared shape has {shape[0]}")
        return cls(path, device=device)

    @classmethod
    def from_tensor(cls, path: PathLike, table: Any, chunk_rows: int = 1 << 16, device: Any = "cpu") -> "MemMapStore":
        """Write an in-memory table (tensor or array) to ``path`` and open it.

        Args:
            path: the file to write (atomically).
            table: the table ``[N, ...]``, a tensor or a numpy array.
            chunk_rows: rows written per block.
            device: where gathered rows are returned.
        """
        arr = table.detach().cpu() if isinstance(table, torch.Tensor) else np.asarray(table)
        n = int(arr.shape[0])
        return cls.create(path, tuple(arr.shape), arr.dtype, (arr[s: s + chunk_rows] for s in range(0, n, chunk_rows)),
                          device=device)

    def _gather(self, idx: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu().numpy()
        if idx.size == 0:
            rows = np.empty((0,) + self.row_shape, dtype=self._np_dtype)
        else:
            uniq, inverse = np.unique(idx, return_inverse=True)  # sorted distinct rows: sequential reads
            block = np.asarray(self._mm[uniq])
            rows = block[inverse.reshape(-1)]
        return torch.from_numpy(rows).to(self.device)

    def close(self) -> None:
        mm = self._mm
        self._mm = None
        if isinstance(mm, np.memmap) and getattr(mm, "_mmap", None) is not None:
            try:
                mm._mmap.close()
            except (BufferError, ValueError):  # still referenced by a view: let GC unmap it
                pass
        super().close()


# --------------------------------------------------------------------------- zero copy (CUDA)
_KERNEL: Any = None
_KERNEL_LOCK = threading.Lock()
cuda: Any = None  # numba.cuda, imported by _gather_kernel()
_ALIGNED_START: list = [None]  # the kernel's device function (callable from Python under the simulator)


def _gather_kernel() -> Any:
    """The numba-cuda row-gather kernel (built on first use: ``numba.cuda`` must not be
    imported before ``NUMBA_ENABLE_CUDASIM`` is set)."""
    global _KERNEL, cuda
    with _KERNEL_LOCK:
        if _KERNEL is None:
            # a module global, not a local: numba's CUDA simulator swaps the ``cuda`` module
            # in the kernel's globals for its fake one.
            from numba import cuda

            @cuda.jit(device=True)
            def aligned_start(start, base_mis, align_words):
                """The word where a warp starts reading a row beginning at word ``start``:
                rounded down so its absolute address is a multiple of 128 bytes."""
                return start - (start + base_mis) % align_words

            @cuda.jit
            def gather_rows(src, idx, out, row_words, base_mis, align_words, n_rows):
                """Warp ``w`` copies output rows ``w, w + n_warps, ...``.

                Row ``r`` starts at word ``s = idx[r] * row_words`` of ``src``.  The warp's first
                read starts at the aligned word ``a = s - ((s + base_mis) % align_words)``: the
                absolute address rounded down to a 128-byte boundary (``base_mis`` is the
                misalignment of ``src`` itself).  Lane ``l`` reads words ``a + l``, ``a + l + 32``,
                ... below the row end; lanes with ``a + l < s`` idle on the first pass, so every
                32-lane request after the first covers exactly one aligned 128-byte segment.
                """
                tid = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
                lane = cuda.threadIdx.x % 32
                warp = tid // 32
                n_warps = (cuda.gridDim.x * cuda.blockDim.x) // 32
                r = warp
                while r < n_rows:
                    start = idx[r] * row_words
                    end = start + row_words
                    p = aligned_start(start, base_mis, align_words) + lane
                    o = r * row_words - start
                    while p < end:
                        if p >= start:
                            out[o + p] = src[p]
                        p += 32
                    r += n_warps

            _KERNEL = gather_rows
            _ALIGNED_START[0] = aligned_start
        return _KERNEL


def _word_view(row_bytes: int) -> Tuple[int, np.dtype, torch.dtype]:
    """(bytes per word, numpy word dtype, torch word dtype): 4-byte words when rows allow."""
    if row_bytes % 4 == 0:
        return 4, np.dtype(np.int32), torch.int32
    return 1, np.dtype(np.uint8), torch.uint8


def _launch_dims(n_rows: int, threads_per_block: int, max_blocks: int) -> Tuple[int, int]:
    warps_per_block = max(1, threads_per_block // WARP_SIZE)
    blocks = max(1, min(max_blocks, math.ceil(n_rows / warps_per_block)))
    return blocks, warps_per_block * WARP_SIZE


def gather_rows_simulated(table: Any, indices: Any, threads_per_block: int = 64, max_blocks: int = 4) -> torch.Tensor:
    """Run the zero-copy gather kernel under numba's CUDA simulator (tests, no GPU needed).

    ``NUMBA_ENABLE_CUDASIM=1`` must be set before ``numba.cuda`` is first imported (run it in
    a fresh process).  The same kernel, launch geometry and alignment arithmetic as
    :class:`ZeroCopyStore`, with numpy arrays standing in for device memory.  Returns
    ``table[indices]`` as a CPU tensor.

    Args:
        table: the host table ``[N, ...]`` (tensor or array).
        indices: row ids of any shape.
        threads_per_block: CUDA threads per block of the simulated launch (a multiple of 32).
        max_blocks: upper bound on the number of blocks of the simulated launch.
    """
    import numba

    if not numba.config.ENABLE_CUDASIM:
        raise ConfigError("gather_rows_simulated needs NUMBA_ENABLE_CUDASIM=1 set before numba.cuda is imported")
    table = torch.as_tensor(table)
    if not table.is_contiguous():
        table = table.contiguous()
    idx = _check_indices(indices, int(table.shape[0]))
    if isinstance(idx, torch.Tensor):
        idx = idx.cpu().numpy()
    shape = tuple(idx.shape)
    flat = np.ascontiguousarray(idx.reshape(-1), dtype=np.int64)
    row_shape = tuple(table.shape[1:])
    out = torch.empty((flat.shape[0],) + row_shape, dtype=table.dtype)
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) * table.element_size()
    if flat.shape[0] and row_bytes:
        wb, np_word, _ = _word_view(row_bytes)
        src = table.reshape(-1).numpy().view(np.uint8).view(np_word)
        dst = out.reshape(-1).numpy().view(np.uint8).view(np_word)
        base_mis = (src.ctypes.data % ALIGN_BYTES) // wb
        blocks, tpb = _launch_dims(flat.shape[0], threads_per_block, max_blocks)
        _gather_kernel()[blocks, tpb](src, flat, dst, row_bytes // wb, base_mis, ALIGN_BYTES // wb, flat.shape[0])
    return out.reshape(shape + row_shape)


class _CudaArrayView:
    """A raw device pointer presented through ``__cuda_array_interface__`` (for numba)."""

    def __init__(self, ptr: int, n: int, typestr: str) -> None:
        self.__cuda_array_interface__ = {
            "shape": (n,), "typestr": typestr, "data": (int(ptr), True), "version": 3, "strides": None,
            "stream": None,
        }


# (ptr) -> [nbytes, refcount]; guarded by _REG_LOCK.  Registration happens once per table.
_REGISTERED: Dict[int, list] = {}
_REG_LOCK = threading.Lock()
_CUDA_HOST_REGISTER_PORTABLE = 1
_CUDA_HOST_REGISTER_MAPPED = 2


def _cuda_rc(rc: Any) -> int:
    return int(getattr(rc, "value", rc))


def _register_host(ptr: int, nbytes: int) -> None:
    with _REG_LOCK:
        entry = _REGISTERED.get(ptr)
        if entry is not None:
            if entry[0] != nbytes:
                raise ConfigError(f"host memory at {ptr:#x} is already registered with {entry[0]} bytes, not {nbytes}")
            entry[1] += 1
            return
        rc = torch.cuda.cudart().cudaHostRegister(
            ptr, nbytes, _CUDA_HOST_REGISTER_MAPPED | _CUDA_HOST_REGISTER_PORTABLE)
        if _cuda_rc(rc) != 0:
            raise ConfigError(f"cudaHostRegister of {nbytes} bytes failed with CUDA error {_cuda_rc(rc)} "
                              "(is the table in ordinary, writable host memory?)")
        _REGISTERED[ptr] = [nbytes, 1]


def _unregister_host(ptr: int) -> None:
    with _REG_LOCK:
        entry = _REGISTERED.get(ptr)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _REGISTERED[ptr]
            torch.cuda.cudart().cudaHostUnregister(ptr)


def registered_tables() -> Dict[int, int]:
    """``{host pointer: bytes}`` of the tables :class:`ZeroCopyStore` currently keeps registered."""
    with _REG_LOCK:
        return {p: e[0] for p, e in _REGISTERED.items()}


def _device_pointer(host_ptr: int) -> int:
    """The device address of page-locked, mapped host memory (``cudaHostGetDevicePointer``).

    Asks the CUDA runtime through ctypes; if libcudart cannot be loaded, asks the driver
    through numba (``cuMemHostGetDevicePointer``); failing both, uses the host address when
    the device reports it can (unified virtual addressing, 64-bit Linux), where all three
    agree anyway.
    """
    import ctypes

    candidates = ["libcudart.so"]
    try:
        import nvidia.cuda_runtime as _rt  # the CUDA runtime wheel torch depends on

        lib_dir = Path(list(_rt.__path__)[0]) / "lib"
        candidates = [str(p) for p in sorted(lib_dir.glob("libcudart.so*"))] + candidates
    except Exception:
        pass
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        dptr = ctypes.c_void_p()
        rc = lib.cudaHostGetDevicePointer(ctypes.byref(dptr), ctypes.c_void_p(host_ptr), ctypes.c_uint(0))
        if rc == 0 and dptr.value is not None:
            return int(dptr.value)
        raise ConfigError(f"cudaHostGetDevicePointer failed with CUDA error {rc}")
    from numba import cuda

    try:  # the driver API through numba (cuMemHostGetDevicePointer)
        from numba.cuda.cudadrv import driver as _drv

        if getattr(_drv, "USE_NV_BINDING", False):
            return int(_drv.driver.cuMemHostGetDevicePointer(host_ptr, 0))
        dptr_d = _drv.drvapi.cu_device_ptr()
        _drv.driver.cuMemHostGetDevicePointer(ctypes.byref(dptr_d), ctypes.c_void_p(host_ptr), 0)
        if dptr_d.value:
            return int(dptr_d.value)
    except Exception:
        pass
    dev = cuda.get_current_device()
    if getattr(dev, "CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM", 0):
        return int(host_ptr)
    raise ConfigError("cannot find the device address of the registered table: libcudart not loadable and the "
                      "device cannot use host pointers for registered memory")


class ZeroCopyStore(FeatureStore):
    """A host table gathered by the GPU in place (PyTorch-Direct's zero-copy access).

    Paper: Min et al., "Large Graph Convolutional Network Training with GPU-Oriented Data
    Communication Architecture", VLDB 2021, arXiv 2101.07956, https://arxiv.org/abs/2101.07956.

    How: the table (a contiguous CPU tensor in ordinary memory) is page-locked where it is
    with ``cudaHostRegister(ptr, bytes, Mapped | Portable)`` through
    ``torch.cuda.cudart()``.  Registering in place, rather than copying into a fresh
    ``pin_memory()`` tensor, needs no second host copy of a table that may be tens of GB, and
    works for tables built by any library.  ``cudaHostGetDevicePointer`` gives its device
    address.  ``gather`` copies the indices to the GPU, allocates the output with torch, and
    launches a numba-cuda kernel on torch's current stream
    (``numba.cuda.external_stream(torch.cuda.current_stream().cuda_stream)``).  The kernel
    reads the host rows over the bus and writes them straight into the torch tensor (shared
    with numba through ``__cuda_array_interface__``), with no staging buffer and no extra
    copy.  Memory access follows the paper: one warp per row, lanes reading consecutive
    4-byte words, each warp's first read aligned down to a 128-byte boundary (leading lanes
    idle), correct for any row size (e.g. 100 float32 = 400 B; rows whose size is not a
    multiple of 4 bytes are copied byte-wise).  A table already in pinned memory
    (``table.is_pinned()``) is used as is.

    The registration happens once per table (shared by stores over the same tensor) and is
    undone by :meth:`close` (or garbage collection) when the last store over it closes.

    Without CUDA, or with ``device="cpu"``, the store warns once and gathers on the CPU like
    :class:`InMemoryStore` (``store.zero_copy`` is then False).

    Args:
        table: contiguous CPU tensor or numpy array ``[N, ...]``; kept alive by the store.
        device: CUDA device of the output (default ``cuda`` when available).
        threads_per_block: CUDA block size (a multiple of 32).
        max_blocks: grid size cap; warps loop over rows beyond it.
    """

    def __init__(self, table: Any, device: Any = None, *, threads_per_block: int = 256, max_blocks: int = 65535) -> None:
        if isinstance(table, np.ndarray):
            table = torch.from_numpy(np.ascontiguousarray(table))
        if not isinstance(table, torch.Tensor):
            raise ConfigError(f"table must be a tensor or numpy array, got {type(table).__name__}")
        if table.dim() < 1:
            raise ConfigError("table must have at least one dimension (rows)")
        if table.is_cuda:
            raise ConfigError("ZeroCopyStore serves host tables; this one is already on the GPU (use InMemoryStore)")
        if threads_per_block % WARP_SIZE or threads_per_block <= 0:
            raise ConfigError(f"threads_per_block must be a positive multiple of {WARP_SIZE}, got {threads_per_block}")
        if not table.is_contiguous():
            table = table.contiguous()
        self.table = table
        self.shape = tuple(table.shape)
        self.dtype = table.dtype
        self.threads_per_block = int(threads_per_block)
        self.max_blocks = int(max_blocks)
        self._ptr: Optional[int] = None
        want = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.zero_copy = want.type == "cuda" and torch.cuda.is_available()
        if not self.zero_copy:
            reason = "CUDA is not available" if not torch.cuda.is_available() else f"device={want}"
            warnings.warn(f"ZeroCopyStore: {reason}; falling back to CPU gathers (InMemoryStore behaviour)",
                          RuntimeWarning, stacklevel=2)
            self.device = torch.device("cpu")
            return
        self.device = torch.device("cuda", want.index if want.index is not None else torch.cuda.current_device())
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * table.element_size()
        self._word_bytes, self._np_word, self._torch_word = _word_view(self.row_bytes)
        nbytes = table.numel() * table.element_size()
        with torch.cuda.device(self.device):
            torch.cuda.init()
            host_ptr = table.data_ptr()
            if nbytes and not table.is_pinned():
                _register_host(host_ptr, nbytes)
                self._ptr = host_ptr
            self._dev_ptr = _device_pointer(host_ptr) if nbytes else 0
        self._base_mis = (self._dev_ptr % ALIGN_BYTES) // self._word_bytes
        n_words = nbytes // self._word_bytes
        typestr = "<i4" if self._word_bytes == 4 else "|u1"
        self._src_view = _CudaArrayView(self._dev_ptr, n_words, typestr) if nbytes else None

    def _gather(self, idx: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:
        if not self.zero_copy:
            t = torch.from_numpy(idx) if isinstance(idx, np.ndarray) else idx.cpu()
            return self.table.index_select(0, t)
        from numba import cuda

        n = int(idx.shape[0])
        out = torch.empty((n,) + self.row_shape, dtype=self.dtype, device=self.device)
        if n == 0 or self.row_bytes == 0:
            return out
        with torch.cuda.device(self.device):
            stream = torch.cuda.current_stream(self.device)
            if isinstance(idx, np.ndarray):
                idx_dev = torch.from_numpy(idx).pin_memory().to(self.device, non_blocking=True)
            else:
                idx_dev = idx.to(self.device, dtype=torch.int64).contiguous()
            words = out.view(-1).view(torch.uint8).view(self._torch_word)
            nb_stream = cuda.external_stream(stream.cuda_stream)
            # sync=False: everything is ordered on torch's current stream, no host synchronisation
            src = cuda.as_cuda_array(self._src_view, sync=False)
            blocks, tpb = _launch_dims(n, self.threads_per_block, self.max_blocks)
            _gather_kernel()[blocks, tpb, nb_stream](
                src, cuda.as_cuda_array(idx_dev, sync=False), cuda.as_cuda_array(words, sync=False),
                self.row_bytes // self._word_bytes, self._base_mis, ALIGN_BYTES // self._word_bytes, n)
        return out

    def close(self) -> None:
        if self._closed:
            return
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            _unregister_host(ptr)
        self._src_view = None
        self.table = None  # type: ignore[assignment]
        super().close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def open_store(kind: str, table: Any = None, *, path: Optional[PathLike] = None, device: Any = None) -> FeatureStore:
    """Build a store by name: ``"memory"``, ``"memmap"`` (writes ``table`` to ``path`` unless
    ``path`` already holds a table and ``table`` is None) or ``"zerocopy"``.

    Args:
        kind: ``"memory"`` (:class:`InMemoryStore`), ``"memmap"`` (:class:`MemMapStore`) or
            ``"zerocopy"`` (:class:`ZeroCopyStore`); case, ``-`` and ``_`` are ignored.
        table: the feature table (``[N, ...]`` tensor or array); ``None`` opens an existing
            memmap file at ``path``.
        path: the file of a ``"memmap"`` store (required for that kind).
        device: where gathered rows are returned (default: the store's own default).

    Returns:
        The :class:`FeatureStore`.

    Raises:
        ConfigError: an unknown ``kind``, or ``"memmap"`` without ``path``.
    """
    kind = kind.lower().replace("-", "").replace("_", "")
    if kind in ("memory", "inmemory"):
        return InMemoryStore(table, device=device)
    if kind == "memmap":
        if path is None:
            raise ConfigError("a memmap feature store needs a path")
        if table is None:
            return MemMapStore(path, device=device or "cpu")
        return MemMapStore.from_tensor(path, table, device=device or "cpu")
    if kind == "zerocopy":
        return ZeroCopyStore(table, device=device)
    raise ConfigError(f"unknown feature store {kind!r}; choose memory, memmap or zerocopy")
