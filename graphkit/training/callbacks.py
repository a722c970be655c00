"""Epoch callbacks for :func:`graphkit.fit` (``callbacks=[...]``).

A callback is any object with an ``on_epoch_end(trainer, epoch, logs)`` method; ``logs`` holds
the epoch's ``loss``, ``seconds`` and, when the epoch was validated, the ``valid_*`` metrics.
Setting ``trainer.should_stop = True`` ends training after that epoch (``stopped_by =
"callback"``).  Recommendation training calls them; the node trainers do not yet.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List

__all__ = ["ValidationCurve"]


class ValidationCurve:
    """Records a validation metric against wall-clock seconds: a time-to-quality curve.

    The clock starts when the callback is built, so build it just before ``graphkit.fit`` to
    count model preparation (e.g. LightGCN's SVD warm start) and validation time as a user
    waiting for the model would.

    Example::

        curve = ValidationCurve("recall@20")
        graphkit.fit("lightgcn", "gowalla", preset="fast", max_time=600, callbacks=[curve])
        curve.points          # [{"epoch": 2, "seconds": 24.1, "value": 0.1223}, ...]
        curve.best_by(300)    # best validation value reached within 300 s

    Args:
        metric: the validation metric, without the ``valid_`` prefix.
    """

    def __init__(self, metric: str = "recall@20") -> None:
        self.metric = metric
        self.t0 = time.perf_counter()
        self.paused = 0.0  # seconds subclasses take off the clock (their own evaluations)
        self.points: List[Dict[str, float]] = []

    def elapsed(self) -> float:
        """Seconds on the clock since construction."""
        return time.perf_counter() - self.t0 - self.paused

    def on_epoch_end(self, trainer: Any, epoch: int, logs: Dict[str, Any]) -> None:
        """Append ``(epoch, seconds, value)`` when the epoch was validated.

        Args:
            trainer: the running trainer (unused).
            epoch: the epoch just finished (1-based).
            logs: the epoch's row: ``loss``, ``seconds`` and the ``valid_*`` metrics.
        """
        value = logs.get(f"valid_{self.metric}")
        if value is not None:
            self.points.append({"epoch": epoch, "seconds": self.elapsed(), "value": float(value)})

    def best_by(self, seconds: float) -> float:
        """The best value among the validations finished within ``seconds`` (NaN if none)."""
        seen = [p["value"] for p in self.points if p["seconds"] <= seconds]
        return max(seen) if seen else float("nan")
