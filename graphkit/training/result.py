"""What a training run returns: the model, its test metrics, its history and its record."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict

import torch

from ..exceptions import CheckpointError
from ..utils import PathLike, atomic_write

FORMAT_VERSION = 1


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def write_json(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (temp file, then rename).

    Args:
        path: the file to write.
        obj: the object (tensors, numpy scalars and other values are made JSON-safe).
    """
    with atomic_write(path, "w") as fh:
        json.dump(_jsonable(obj), fh, indent=2, sort_keys=True)
        fh.write("\n")


def save_state_dict(path: PathLike, state: Dict[str, torch.Tensor]) -> None:
    """Save tensors atomically as safetensors (no pickle, so loading runs no code).

    Args:
        path: the file to write.
        state: name -> tensor (moved to the CPU, made contiguous).
    """
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_write(path, "wb") as fh:
        fh.write(save(tensors))


def load_state_dict(path: PathLike) -> Dict[str, torch.Tensor]:
    """Load tensors saved by :func:`save_state_dict`.

    Args:
        path: the file to read.
    """
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc


@dataclass
class FitResult:
    """The outcome of :func:`graphkit.fit`.

    Attributes:
        model: the trained model, with the weights selected on the validation split.
        metrics: test metrics of that model (``{"recall@20": ..., ...}``).
        history: a pandas DataFrame, one row per epoch (loss, seconds, validation metrics).
        record: everything needed to cite the run: dataset, split fingerprint, seed,
            hyper-parameters, package versions, device, best epoch, wall time.
    """

    model: torch.nn.Module
    metrics: Dict[str, float]
    history: Any
    record: Dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in self.metrics.items())
        return f"FitResult({type(self.model).__name__}, {shown})"

    def save(self, path: PathLike) -> Path:
        """Save to a folder: ``model.safetensors``, ``record.json`` and ``history.csv``.

        Each file is written to a temporary name and renamed, so an interrupted save
        never leaves a half-written file.  Returns the folder.

        Args:
            path: the folder (created if needed).
        """
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        save_state_dict(out / "model.safetensors", self.model.state_dict())
        with atomic_write(out / "history.csv", "w") as fh:
            self.history.to_csv(fh, index=False)
        write_json(out / "record.json", {"format_version": FORMAT_VERSION, "metrics": self.metrics, **self.record})
        return out


__all__ = ["FitResult", "write_json", "save_state_dict", "load_state_dict", "FORMAT_VERSION"]
