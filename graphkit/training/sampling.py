"""Negative sampling for implicit-feedback training (numba, deterministic).

Each draw ``(row r, slot s, attempt a)`` gets its random number from a
counter-based hash (SplitMix64) of ``(seed, r, s, a)``, so the result depends only
on the seed and the batch, never on the order rows are processed in.

The kernel is deliberately serial: a batch needs a few milliseconds, and a
``parallel=True`` kernel leaves numba's OpenMP worker threads spinning after it
returns, which measurably slowed every following torch operation on a 2-core CPU.
"""
from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from ..exceptions import ConfigError

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


@numba.njit(cache=True, inline="always")
def _splitmix64(x: np.uint64) -> np.uint64:
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK
    z = x
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def _in_sorted(arr: np.ndarray, lo: int, hi: int, value: int) -> bool:
    while lo < hi:
        mid = (lo + hi) >> 1
        v = arr[mid]
        if v < value:
            lo = mid + 1
        elif v > value:
            hi = mid
        else:
            return True
    return False


@numba.njit(cache=True)
def _sample(indptr: np.ndarray, indices: np.ndarray, users: np.ndarray, n: int, num_items: int,
            seed: np.uint64, max_tries: int, exclude: bool) -> np.ndarray:
    B = users.shape[0]
    out = np.empty((B, n), dtype=np.int64)
    for r in range(B):
        u = users[r]
        lo = indptr[u]
        hi = indptr[u + 1]
        free = num_items - (hi - lo)
        for s in range(n):
            base = _splitmix64(seed ^ _splitmix64(np.uint64(r) * np.uint64(1_000_003) + np.uint64(s)))
            j = np.int64(-1)
            if free <= 0 or not exclude:  # uniform over all items (or the user has every item)
                j = np.int64(_splitmix64(base) % np.uint64(num_items))
            else:
                for a in range(max_tries):
                    c = np.int64(_splitmix64(base + np.uint64(a)) % np.uint64(num_items))
                    if not _in_sorted(indices, lo, hi, c):
                        j = c
                        break
                if j < 0:
                    # dense row: take the rank-th item not in the row (exactly uniform)
                    j = np.int64(_splitmix64(base + np.uint64(max_tries)) % np.uint64(free))
                    for p in range(lo, hi):
                        if indices[p] <= j:
                            j += 1
                        else:
                            break
            out[r, s] = j
    return out


class NegativeSampler:
    """Uniform negative items for each user, excluding the user's training items (default)
    or drawn from all items.

    Args:
        train: the [U, I] training matrix (CSR); its rows are the items to exclude.
        max_tries: rejection-sampling attempts per draw; after that (only for users who
            interacted with nearly every item) the draw is made exactly, by picking a
            uniform rank among the items the user lacks and walking the sorted row.
            Either way every draw is uniform over the items the user lacks.
        exclude_positives: ``False`` draws every negative uniformly from all items, the
            user's training items included (UltraGCN's official ``sampling_sift_pos = no``).
    """

    def __init__(self, train: sp.csr_matrix, max_tries: int = 20, exclude_positives: bool = True) -> None:
        csr = sp.csr_matrix(train)
        csr.sort_indices()
        self.indptr = csr.indptr.astype(np.int64)
        self.indices = csr.indices.astype(np.int64)
        self.num_users, self.num_items = csr.shape
        self.max_tries = int(max_tries)
        self.exclude_positives = bool(exclude_positives)

    def sample(self, users: np.ndarray, n: int, seed: int) -> np.ndarray:
        """``[len(users), n]`` negative item ids, deterministic in ``seed``."""
        if n <= 0:
            raise ConfigError(f"the number of negatives must be positive, got {n}")
        users = np.ascontiguousarray(users, dtype=np.int64)
        if users.size and (users.min() < 0 or users.max() >= self.num_users):
            raise ConfigError(f"user ids must lie in [0, {self.num_users}), got {users.min()}..{users.max()}")
        return _sample(self.indptr, self.indices, users, int(n), int(self.num_items),
                       np.uint64(seed % (2**63)), self.max_tries, self.exclude_positives)


__all__ = ["NegativeSampler"]
