"""``benchmarks/bench_time_to_quality.py``: the settings it forces on every run."""
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
ttq = pytest.importorskip("bench_time_to_quality")


@pytest.mark.parametrize("method, dataset, epochs", [
    ("lightgcn-fast", "gowalla", 2 * 10),   # fast recipe: patience 10 validations every 2 epochs
    ("lightgcn-paper", "gowalla", 10 * 5),  # paper: patience 5 validations every 10 epochs
    ("ultragcn", "ml-1m", 5 * 10),
])
def test_every_epoch_keeps_the_presets_early_stopping_window_in_epochs(method, dataset, epochs):
    # Validating every epoch with the preset's patience unscaled would stop a run eval_every
    # times sooner (the 1,800-s LightGCN fast run stopped at 819 s that way).
    assert ttq.every_epoch(SimpleNamespace(name=dataset), method) == {"eval_every": 1, "patience": epochs}


def test_only_budget_scheduled_methods_get_one_run_per_budget():
    assert ttq.follows_budget(SimpleNamespace(name="gowalla"), "lightgcn-fast")
    assert not ttq.follows_budget(SimpleNamespace(name="gowalla"), "lightgcn-paper")
