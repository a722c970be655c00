"""Feature stores: in-memory, memory-mapped (chunk-wise, atomic) and zero-copy (CUDA kernel under the simulator)."""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

from graphkit import ConfigError, DataFormatError, GraphError
from graphkit import feature_store as fs
from graphkit.feature_store import InMemoryStore, MemMapStore, ZeroCopyStore, open_store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def table():
    return torch.randn(500, 33, generator=torch.Generator().manual_seed(0))


def idx_cases(n):
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, n, 64),                      # unsorted, with repeats
        np.array([n - 1, 0, n - 1, 5, 5, 5]),        # repeated, extremes
        np.array([], dtype=np.int64),                # empty batch
        torch.tensor([[3, 1], [2, 3]]),              # 2-D indices
    ]


def test_in_memory_equals_index_select(table):
    s = InMemoryStore(table)
    for idx in idx_cases(len(table)):
        t = torch.as_tensor(idx, dtype=torch.long)
        assert torch.equal(s.gather(idx), table[t])
    assert s.shape == (500, 33) and s.dtype == torch.float32 and len(s) == 500
    with pytest.raises(GraphError, match=r"index 500 .* largest valid index is 499 \(table size 500 rows\)"):
        s.gather([1, 500])
    with pytest.raises(GraphError, match="negative"):
        s.gather(torch.tensor([-1]))
    with pytest.raises(GraphError, match="integers"):
        s.gather(torch.tensor([1.0]))
    with s:
        pass
    assert s.closed
    with pytest.raises(ConfigError, match="closed"):
        s.gather([0])


def test_memmap_built_chunkwise_equals_table(tmp_path, table):
    path = tmp_path / "x.gkf"
    chunks = (table[i:i + 37] for i in range(0, len(table), 37))  # uneven chunks, one in memory at a time
    with MemMapStore.create(path, table.shape, torch.float32, chunks) as s:
        assert s.shape == tuple(table.shape) and s.dtype == torch.float32
        for idx in idx_cases(len(table)):
            assert torch.equal(s.gather(idx), table[torch.as_tensor(idx, dtype=torch.long)])
        full = s.gather(np.arange(len(table)))
        assert torch.equal(full, table)
    again = MemMapStore(path)  # re-open from the header
    assert torch.equal(again.gather([7, 3]), table[[7, 3]])
    again.close()
    ints = torch.arange(60, dtype=torch.int64).view(20, 3)
    with MemMapStore.from_tensor(tmp_path / "i.gkf", ints, chunk_rows=7) as s2:
        assert s2.dtype == torch.int64 and torch.equal(s2.gather([19, 0]), ints[[19, 0]])
    half = torch.randn(10, 5).half()
    with open_store("memmap", half, path=tmp_path / "h.gkf") as s3:
        assert torch.equal(s3.gather([9, 9, 1]), half[[9, 9, 1]])


def test_memmap_gather_reads_sorted_distinct_rows(tmp_path, table):
    s = MemMapStore.from_tensor(tmp_path / "x.gkf", table)
    seen = []

    class Spy:
        def __init__(self, mm):
            self.mm = mm

        def __getitem__(self, idx):
            seen.append(np.array(idx))
            return self.mm[idx]

    s._mm = Spy(s._mm)
    idx = np.array([9, 2, 9, 400, 2, 0])
    assert torch.equal(s.gather(idx), table[idx])
    assert np.array_equal(seen[-1], [0, 2, 9, 400])  # sorted, duplicates read once; then un-permuted


def test_memmap_creation_is_atomic(tmp_path, table):
    path = tmp_path / "x.gkf"

    def failing():
        yield table[:100]
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        MemMapStore.create(path, table.shape, torch.float32, failing())
    assert os.listdir(tmp_path) == []  # no file, no temporary left behind
    with pytest.raises(ConfigError, match="declared shape has 500"):
        MemMapStore.create(path, table.shape, torch.float32, [table[:100]])
    with pytest.raises(ConfigError, match="rows must have shape"):
        MemMapStore.create(path, table.shape, torch.float32, [table[:, :5]])
    assert os.listdir(tmp_path) == []
    # an existing table survives a failed rewrite
    MemMapStore.from_tensor(path, table).close()
    with pytest.raises(RuntimeError):
        MemMapStore.create(path, table.shape, torch.float32, failing())
    with MemMapStore(path) as s:
        assert torch.equal(s.gather([499]), table[[499]])
    assert sorted(os.listdir(tmp_path)) == ["x.gkf"]


def test_memmap_rejects_bad_files(tmp_path, table):
    bad = tmp_path / "bad.gkf"
    bad.write_bytes(b"hello world" * 10)
    with pytest.raises(DataFormatError, match="not a graphkit feature table"):
        MemMapStore(bad)
    good = tmp_path / "good.gkf"
    MemMapStore.from_tensor(good, table).close()
    with open(good, "ab") as fh:
        fh.write(b"\0" * 4)
    with pytest.raises(DataFormatError, match="size does not match"):
        MemMapStore(good)
    from graphkit import DataNotFoundError

    with pytest.raises(DataNotFoundError):
        MemMapStore(tmp_path / "missing.gkf")
    with pytest.raises(ConfigError):
        open_store("memmap", table)


def test_zero_copy_falls_back_to_cpu_without_cuda(table):
    if torch.cuda.is_available():
        pytest.skip("has CUDA: the fallback is for CPU-only machines")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = ZeroCopyStore(table)
    assert len(w) == 1 and "falling back" in str(w[0].message)
    assert not s.zero_copy and s.device == torch.device("cpu")
    for idx in idx_cases(len(table)):
        assert torch.equal(s.gather(idx), table[torch.as_tensor(idx, dtype=torch.long)])
    with pytest.raises(GraphError, match="table size 500"):
        s.gather([10_000])
    s.close()
    s.close()  # idempotent
    assert s.closed


def test_host_registration_is_refcounted(monkeypatch):
    """One cudaHostRegister per table however many stores share it; unregistered when the last closes."""
    calls = []

    class FakeCudart:
        def cudaHostRegister(self, ptr, size, flags):
            calls.append(("register", ptr, size, flags))
            return 0

        def cudaHostUnregister(self, ptr):
            calls.append(("unregister", ptr))
            return 0

    monkeypatch.setattr(torch.cuda, "cudart", lambda: FakeCudart())
    fs._register_host(0x1000, 4096)
    fs._register_host(0x1000, 4096)
    assert fs.registered_tables() == {0x1000: 4096}
    fs._unregister_host(0x1000)
    assert [c[0] for c in calls] == ["register"]
    fs._unregister_host(0x1000)
    assert [c[0] for c in calls] == ["register", "unregister"] and fs.registered_tables() == {}
    assert calls[0][3] == 3  # Mapped | Portable
    fs._register_host(0x1000, 4096)  # re-open after close registers again
    fs._unregister_host(0x1000)
    assert [c[0] for c in calls] == ["register", "unregister", "register", "unregister"]


SIM_SCRIPT = textwrap.dedent(
    """
    import os, sys
    assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    import numpy as np, torch
    from graphkit import GraphError
    from graphkit import feature_store as fs

    rng = np.random.default_rng(0)
    checked = 0
    for cols, dtype in [(100, torch.float32), (3, torch.float32), (1, torch.float32), (33, torch.float32),
                        (32, torch.float32), (7, torch.float16), (5, torch.uint8), (4, torch.int64)]:
        for offset in (0, 1, 3):  # the table need not start on a 128-byte boundary
            base = (torch.randn(64 * cols + offset) * 100).to(dtype)
            table = base[offset:].view(64, cols)
            for idx in (rng.integers(0, 64, 20), np.array([63, 0, 63, 63, 5]), np.array([], dtype=np.int64)):
                out = fs.gather_rows_simulated(table, torch.from_numpy(idx))
                ref = table.index_select(0, torch.from_numpy(idx).long())
                assert out.shape == ref.shape, (cols, dtype, offset, out.shape)
                assert torch.equal(out, ref), (cols, dtype, offset, idx)
                checked += 1
    # 2-D indices, many rows per warp (grid-stride loop: 1 block of 2 warps for 50 rows)
    table = torch.randn(200, 100)
    idx = torch.from_numpy(rng.integers(0, 200, (10, 5)))
    assert torch.equal(fs.gather_rows_simulated(table, idx, threads_per_block=64, max_blocks=1), table[idx])
    try:
        fs.gather_rows_simulated(table, torch.tensor([3, 200]))
        raise SystemExit("out-of-range index accepted")
    except GraphError as exc:
        assert "199" in str(exc) and "200 rows" in str(exc), exc
    # the alignment rule: each warp starts at a 128-byte boundary at or before the row, within 128 bytes
    aligned_start = fs._ALIGNED_START[0]
    for base_addr in (0, 4, 64, 124):
        for row_words in (1, 3, 33, 100):
            for row in range(40):
                s = row * row_words
                a = aligned_start(s, (base_addr % 128) // 4, 32)
                assert (base_addr + 4 * a) % 128 == 0 and a <= s < a + 32, (base_addr, row_words, row)
    print("OK", checked)
    """
)


def test_gather_kernel_under_cuda_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", SIM_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK")


def test_simulated_gather_refuses_without_simulator(table):
    import numba

    if numba.config.ENABLE_CUDASIM:
        pytest.skip("simulator enabled in this process")
    with pytest.raises(ConfigError, match="NUMBA_ENABLE_CUDASIM"):
        fs.gather_rows_simulated(table, [0])


def test_memmap_read_ahead_policy(tmp_path):
    """access= sets the mapping's madvise policy; gathers are the same under every policy."""
    table = torch.randn(500, 7)
    base = fs.MemMapStore.from_tensor(tmp_path / "t.gkf", table)
    assert base.access == "random"
    idx = torch.tensor([499, 0, 17, 17, 250])
    for access in ("random", "normal", "sequential"):
        store = fs.MemMapStore(tmp_path / "t.gkf", access=access)
        assert torch.equal(store.gather(idx), table[idx])
        if hasattr(__import__("mmap"), "MADV_RANDOM"):
            assert fs._advise(store._mm, access) is True
        store.close()
    base.close()
    with pytest.raises(ConfigError, match="access must be one of"):
        fs.MemMapStore(tmp_path / "t.gkf", access="fast")
