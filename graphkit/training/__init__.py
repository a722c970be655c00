"""Training entry points: :func:`fit` and the task-specific trainers."""
from __future__ import annotations

from pathlib import PurePath
from typing import Any, Dict, List, Optional, Tuple, Type, Union

from ..exceptions import ConfigError
from ..utils import PathLike
from .callbacks import (
    Callback, CSVLogger, EarlyStopping, LoggingCallback, MLflowLogger, ProgressBar, TensorBoardLogger, ValidationCurve,
)
from .engine import EngineConfig, Trainer, TrainingTask
from .hparams import build_run, split_hparams
from .recommendation import RecommendationTask, RecommendationTrainer, RecTrainConfig
from .node import NodeClassificationTrainer, NodeTask, NodeTrainConfig, SeedsResult, run_seeds
from .result import FitResult


def _resolve_model(model: Union[str, Type, Any]) -> Tuple[Type, Optional[Any]]:
    from ..models import get_model

    import torch

    if isinstance(model, str):
        return get_model(model), None
    if isinstance(model, type):
        if not issubclass(model, torch.nn.Module):
            raise ConfigError(f"model must be a registered name, a model class or a built model; got the class "
                              f"{model.__name__}, which is not a torch.nn.Module")
        return model, None
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model must be a registered name (e.g. 'lightgcn'), a model class or a built model; "
                          f"got {model!r} ({type(model).__name__})")
    return type(model), model


def _split_hparams(cls: Type, config_cls: Type, hparams: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Recommendation models: :func:`~graphkit.training.hparams.split_hparams` with the dataset-sized arguments."""
    return split_hparams(cls, config_cls, hparams, data_args=("num_users", "num_items"))


def fit(
    model: Union[str, Type, Any],
    dataset: Union[str, Any],
    *,
    data_dir: Optional[PathLike] = None,
    preset: Union[bool, str] = True,
    seed: int = 2020,
    resume: bool = False,
    callbacks: Optional[List[Any]] = None,
    **hparams: Any,
) -> FitResult:
    """Train ``model`` on ``dataset`` with the standardized split and return a :class:`FitResult`.

    Example::

        import graphkit
        result = graphkit.fit(graphkit.LightGCN, dataset="gowalla", epochs=50)
        result.metrics          # test metrics of the model selected on validation
        result.history          # one row per epoch
        result.save("runs/lightgcn-gowalla")

    Args:
        model: a model class (``graphkit.LightGCN``), its registered name (``"lightgcn"``)
            or an already built instance (used as is: no preset, no re-initialisation).
        dataset: a dataset name for :func:`graphkit.datasets.load` (``"gowalla"``,
            ``"ml-1m"``, a folder path, ...), a loaded dataset object, or your own data
            (:func:`graphkit.datasets.as_dataset`): a pandas DataFrame of interactions
            (``user``/``item`` columns) or a scipy/NumPy user×item matrix or a bipartite PyG
            ``HeteroData`` (recommendation), a PyG ``Data`` (node classification: its masks, or
            the standardized random split); each gets a fingerprinted split.
        data_dir: where dataset files live (default ``$GRAPHKIT_DATA``).
        preset: ``True`` or ``"paper"`` (default): start from the paper's hyper-parameters
            for this dataset when the model has a preset for it; ``"fast"``: the paper's
            preset updated by the model's fast recipe (chosen on validation for
            time-to-quality; see the model card); ``False``: none.  Explicit ``hparams``
            override the preset.
        seed: random seed of the run (initialisation, sampling).
        resume: continue an interrupted run from ``<checkpoint_dir>/checkpoint.safetensors``
            (needs ``checkpoint_dir``; every task).  Same arguments as the interrupted run;
            the result equals an uninterrupted run's (CPU, bit for bit).  See
            ``docs/reliability.md``.
        callbacks: objects with any of ``on_fit_start``, ``on_epoch_start``,
            ``on_batch_end``, ``on_epoch_end``, ``on_fit_end`` (see
            :mod:`graphkit.training.callbacks`: progress bar, CSV, ``logging``, TensorBoard,
            MLflow, early stopping).
        **hparams: model hyper-parameters (e.g. ``embedding_dim``, ``num_layers``) and
            training ones (``lr``, ``epochs``, ``batch_size``, ``max_time``, ``device``, ...;
            see :class:`~graphkit.training.RecTrainConfig`).

    Graph-property models (``model.task == "graph"``: ``"gin"``, ``"gcn-graph"``) go to
    :func:`graphkit.training.graph.fit_graph` (:class:`~graphkit.training.graph.GraphTrainConfig`
    options; ``init_from=`` a :func:`graphkit.pretrain` result or folder).

    Node-classification models (``model.task == "node"``: GCN, DAGNN, CatGCN, ...) go to
    :func:`graphkit.training.node.fit_node`: their training options are
    :class:`~graphkit.training.node.NodeTrainConfig` fields, and a dataset given by name
    also takes ``split="public"|"random"`` and ``split_seed``.
    """
    from .. import datasets as gk_datasets

    cls, instance = _resolve_model(model)
    if callable(getattr(cls, "check_dependencies", None)):
        cls.check_dependencies()  # a missing optional extra fails before any data is loaded
    task = getattr(cls, "task", "recommendation")
    if isinstance(dataset, PurePath):
        dataset = str(dataset)
    elif task == "graph":
        pass  # graph-property data: an ogbg-* name or a GraphPropDataset (checked by fit_graph)
    elif type(dataset).__module__.split(".")[0] in ("pandas", "scipy", "numpy", "torch_geometric"):
        from ..datasets.convert import as_dataset

        dataset = as_dataset(dataset, task=task)
    if task == "node":
        if getattr(cls, "trainer", "full") == "minibatch":
            from .minibatch import fit_minibatch

            return fit_minibatch(model, dataset, data_dir=data_dir, preset=preset, seed=seed, resume=resume,
                                 callbacks=callbacks, **hparams)
        from .node import fit_node

        return fit_node(model, dataset, data_dir=data_dir, preset=preset, seed=seed, resume=resume,
                        callbacks=callbacks, **hparams)
    if task == "graph":
        from .graph import fit_graph

        return fit_graph(model, dataset, data_dir=data_dir, preset=preset, seed=seed, resume=resume,
                         callbacks=callbacks, **hparams)
    ds = gk_datasets.load(dataset, root=data_dir) if isinstance(dataset, str) else dataset
    if task != "recommendation":
        raise ConfigError(f"{cls.__name__} is a {task} model; graphkit.fit supports it once its trainer is registered")
    if not hasattr(ds, "num_users"):
        raise ConfigError(f"{cls.__name__} needs a recommendation dataset, got {type(ds).__name__}")
    instance, cfg = build_run(cls, instance, ds, hparams, seed, preset, RecTrainConfig, ("num_users", "num_items"),
                              lambda **kw: cls(ds.num_users, ds.num_items, **kw))
    return RecommendationTrainer(instance, ds, cfg, callbacks=callbacks).fit(resume=resume)


__all__ = [
    "fit", "FitResult", "Trainer", "TrainingTask", "EngineConfig",
    "RecTrainConfig", "RecommendationTask", "RecommendationTrainer",
    "NodeTrainConfig", "NodeTask", "NodeClassificationTrainer", "SeedsResult", "run_seeds",
    "Callback", "ProgressBar", "LoggingCallback", "CSVLogger", "TensorBoardLogger", "MLflowLogger", "EarlyStopping",
    "ValidationCurve",
]
