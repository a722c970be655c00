"""The shared k-means (graphkit._cluster), used by selftask's Distance2Clusters and W2PGNN's cluster bases."""
import numpy as np
import pytest

from graphkit import ConfigError
from graphkit._cluster import kmeans, labels_by_first_appearance


def blobs():
    """Two blobs by hand: {0, 1, 2} x {0} and {10, 11, 12} x {0}; centres (1, 0) and (11, 0)."""
    return np.array([[0.0, 0.0], [10.0, 0.0], [1.0, 0.0], [11.0, 0.0], [2.0, 0.0], [12.0, 0.0]])


def inertia(x, labels):
    return sum(((x[labels == j] - x[labels == j].mean(0)) ** 2).sum() for j in np.unique(labels))


@pytest.mark.parametrize("seed", range(10))
def test_two_blobs_hand_computed(seed):
    x = blobs()
    lab = kmeans(x, 2, seed)
    assert lab.dtype == np.int64 and sorted(np.unique(lab)) == [0, 1]
    np.testing.assert_array_equal(labels_by_first_appearance(lab), [0, 1, 0, 1, 0, 1])
    assert inertia(x, lab) == pytest.approx(4.0)  # (1 + 0 + 1) per blob
    np.testing.assert_allclose(x[lab == lab[0]].mean(0), [1.0, 0.0])


def test_lloyd_moves_points_from_the_seeding():
    # 1-D: {0, 1} and {5, 9}.  Whatever the seeding, Lloyd ends at the optimum {0, 1} | {5, 9}
    # (inertia 0.5 + 8 = 8.5), not at {0, 1, 5} | {9} (inertia 14 + 0).
    x = np.array([[0.0], [1.0], [5.0], [9.0]])
    for seed in range(20):
        lab = labels_by_first_appearance(kmeans(x, 2, seed, n_init=5))
        np.testing.assert_array_equal(lab, [0, 0, 1, 1])


def test_deterministic_for_a_seed_and_a_generator_is_used_as_is():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 1.0, (40, 3)) for c in (0.0, 4.0, 8.0)])
    a, b = kmeans(x, 3, 7, n_init=4), kmeans(x, 3, 7, n_init=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(kmeans(x, 3, np.random.default_rng(7), n_init=4), a)
    # the winning run is the lowest-inertia one of the runs drawn one after the other from the stream
    g = np.random.default_rng(7)
    runs = [kmeans(x, 3, g) for _ in range(4)]
    best = min(range(4), key=lambda r: inertia(x, runs[r]) - 1e-9 * (4 - r))
    np.testing.assert_array_equal(a, runs[best])
    # the caller's generator advances (selftask draws its next numbers from the same stream)
    g1, g2 = np.random.default_rng(1), np.random.default_rng(1)
    kmeans(x, 3, g1)
    assert g1.integers(1 << 30) != g2.integers(1 << 30)


def test_no_cluster_left_empty_with_duplicate_points():
    x = np.array([[0.0], [0.0], [0.0], [5.0], [5.0]])  # two distinct points, three clusters
    for seed in range(10):
        assert sorted(np.unique(kmeans(x, 3, seed))) == [0, 1, 2]


def test_labels_by_first_appearance():
    np.testing.assert_array_equal(labels_by_first_appearance(np.array([2, 2, 0, 1, 0])), [0, 0, 1, 2, 1])
    np.testing.assert_array_equal(labels_by_first_appearance(np.array([5, 9, 5])), [0, 1, 0])


@pytest.mark.parametrize("kw", [dict(k=0), dict(k=7), dict(k=2, n_init=0), dict(k=2, max_iter=0), dict(k=True)])
def test_bad_arguments(kw):
    k = kw.pop("k")
    with pytest.raises(ConfigError):
        kmeans(blobs(), k, 0, **kw)
    with pytest.raises(ConfigError):
        kmeans(np.zeros(3), 1, 0)
