"""Shared test fixtures and the opt-in switch for slow tests."""
import os

import pytest

from graphkit.utils import data_dir


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("GRAPHKIT_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: opt in with --runslow or GRAPHKIT_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def one_thread():
    """torch on one thread for the test (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    small problems, where OpenMP fork/join dominates with more threads on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def require_dataset(*parts):
    """The path of a dataset file/folder under GRAPHKIT_DATA, or skip the test saying what is missing."""
    path = data_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"dataset files not found: {path} (set GRAPHKIT_DATA to the shared datasets folder)")
    return path


def run_in_threads(fn, n=4, timeout=60):
    """Call ``fn()`` from ``n`` threads started together; ``(results, errors)`` in finishing order
    (the concurrent-download tests of test_datasets_download.py and test_silent_inputs.py)."""
    import threading

    results, errors = [], []

    def worker():
        try:
            results.append(fn())
        except Exception as exc:  # reported to the caller
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return results, errors
