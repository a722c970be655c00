"""``graphkit.pretrain``: the loop (on the engine's Trainer), the corpus, the saved result."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, Union

import torch
from torch import nn

from ..datasets.graph_collection import EpochOrder, batch_ids, training_batches
from ..exceptions import CheckpointError, ConfigError
from ..training.engine import EngineConfig, Trainer, TrainingTask, _is_int
from ..utils import PathLike, atomic_folder, fingerprint_arrays

__all__ = ["PretrainStrategy", "PretrainConfig", "PretrainTask", "PretrainResult", "pretrain", "STRATEGIES",
           "as_corpus"]

#: ``{name: strategy class}``, filled by the strategy modules.
STRATEGIES: Dict[str, Type["PretrainStrategy"]] = {}


class PretrainStrategy(nn.Module):
    """A self-supervised objective: the heads it trains beside the encoder, and its loss.

    Subclasses set :attr:`name`, take their options in ``__init__(encoder, **options)`` and
    implement :meth:`loss`.  The module holds the encoder (``self.encoder``), so the
    optimizer trains encoder and heads together; only the encoder is kept afterwards.

    Args:
        encoder: the :class:`~graphkit.models.graph_level.GNNEncoder` to pre-train.
    """

    name = "strategy"

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def loss(self, batch: Any, generator: torch.Generator) -> Tuple[torch.Tensor, int]:
        """``(mean loss, number of examples)`` of one batch of graphs.

        Args:
            batch: a :class:`~graphkit.datasets.GraphBatch` (on the training device).
            generator: the CPU generator for this batch's random choices (masks, augmentations).
        """
        raise NotImplementedError

    def options(self) -> Dict[str, Any]:
        """The strategy's options, for the record."""
        return {}

    def hparams(self) -> Dict[str, Any]:
        """Record entry (the engine's ``hparams``)."""
        return {"strategy": self.name, **self.options()}


@dataclass
class PretrainConfig(EngineConfig):
    """Pre-training options (Hu et al.: Adam lr 1e-3, batch 256, 100 epochs; no dropout).

    Args:
        batch_size: graphs per batch.
    """

    lr: float = 1e-3
    epochs: int = 100
    patience: int = 0
    batch_size: int = 256

    def validate(self) -> None:
        """Raise :class:`ConfigError` for out-of-range values."""
        self.validate_common()
        if not (_is_int(self.batch_size) and self.batch_size > 0):
            raise ConfigError(f"batch_size must be a positive integer, got {self.batch_size!r}")


class _Corpus:
    """What the engine needs of a dataset: a name, a fingerprint and a record."""

    def __init__(self, collection: Any, name: str, parts: List[str]) -> None:
        self.collection, self.name, self.parts = collection, name, parts
        self.fingerprint = fingerprint_arrays(collection.node_ptr.numpy(), collection.edge_ptr.numpy(),
                                              names=["node_ptr", "edge_ptr"])

    def split_record(self) -> Dict[str, Any]:
        return {"dataset": self.name, "fingerprint": self.fingerprint, "corpus": self.parts,
                "num_graphs": len(self.collection)}


class PretrainTask(TrainingTask):
    """One pass over the shuffled corpus per epoch; no validation (the last epoch's encoder is kept).

    Args:
        dataset: the corpus (see :func:`as_corpus`: ``collection``, ``name``, ``fingerprint``).
    """

    name = "pretrain"
    history_columns = ["epoch", "loss", "seconds"]

    def setup(self, trainer: Any) -> None:
        self.cfg, self.device = trainer.cfg, trainer.device
        trainer.model.to(self.device)
        self._order = EpochOrder(torch.arange(len(self.dataset.collection)), self.cfg.seed)

    def num_batches(self) -> int:
        return training_batches(len(self.dataset.collection), self.cfg.batch_size)

    def train_batch(self, trainer: Any, epoch: int, batch: int) -> Tuple[torch.Tensor, float, float]:
        # per-(seed, epoch) order and per-(seed, epoch, batch) randomness: a resumed run repeats them
        ids = batch_ids(self._order(epoch), batch, self.cfg.batch_size)
        gen = torch.Generator().manual_seed((self.cfg.seed * 1_000_003 + epoch) * 10_007 + batch)
        trainer.model.train()
        loss, count = trainer.model.loss(self.dataset.collection.batch(ids).to(self.device), gen)
        return loss, float(loss.detach()) * count, float(count)

    def has_validation(self) -> bool:
        return False

    def test(self, trainer: Any) -> Dict[str, float]:
        return {}

    def format_row(self, row: Dict[str, Any]) -> Dict[str, Any]:
        row["seconds"] = row["seconds"] + row.pop("eval_seconds", 0.0)
        return row


def as_corpus(graphs: Any, data_dir: Optional[PathLike] = None) -> _Corpus:
    """The pre-training graphs as one collection (labels dropped).

    Args:
        graphs: a dataset name (``"ogbg-molbbbp"``), a loaded
            :class:`~graphkit.datasets.GraphPropDataset`, a
            :class:`~graphkit.datasets.GraphCollection`, or a list of these (concatenated).
        data_dir: data folder for names.
    """
    from ..datasets import GraphCollection, load

    items = list(graphs) if isinstance(graphs, (list, tuple)) else [graphs]
    if not items:
        raise ConfigError("pretrain needs at least one graph dataset")
    cols, names = [], []
    for g in items:
        if isinstance(g, (str, Path)):
            g = load(str(g), root=data_dir)
        if isinstance(g, GraphCollection):
            cols.append(g)
            names.append(g.name)
        elif hasattr(g, "collection"):
            cols.append(g.collection)
            names.append(str(g.name))
        else:
            raise ConfigError(f"pretrain graphs must be dataset names, GraphPropDatasets or GraphCollections, "
                              f"got {type(g).__name__}")
    col = cols[0] if len(cols) == 1 else GraphCollection.concat(cols, name="+".join(names))
    return _Corpus(col, "+".join(names), names)


def _build_encoder(encoder: Any, corpus: _Corpus, model_options: Dict[str, Any]) -> Tuple[nn.Module, Dict[str, Any]]:
    """``(GNNEncoder, encoder_config)`` from a registered name, a GraphModel class or instance."""
    from ..models import get_model
    from ..models.graph_level import GraphModel

    cls = get_model(encoder) if isinstance(encoder, str) else encoder if isinstance(encoder, type) else None
    if isinstance(encoder, GraphModel):
        if model_options:
            raise ConfigError(f"model options {sorted(model_options)} cannot be applied to a built model")
        return encoder.encoder, encoder.encoder_config()
    if cls is None or not issubclass(cls, GraphModel):
        raise ConfigError(f"encoder must be a graph-level model name ('gin', 'gcn-graph'), class or instance; "
                          f"got {encoder!r}")
    col = corpus.collection
    data: Dict[str, Any] = {"num_tasks": 1}
    if col.x.is_floating_point():
        data["in_channels"] = col.num_node_features
        data["edge_channels"] = 0 if col.edge_attr is None else int(col.edge_attr.shape[1])
    model = cls(**{**data, **model_options})
    return model.encoder, model.encoder_config()


@dataclass
class PretrainResult:
    """A pre-trained encoder: its weights, what it fits, how it was made.

    Attributes:
        encoder_state: the :class:`~graphkit.models.graph_level.GNNEncoder` state dict.
        encoder_config: the architecture it fits (conv, layers, width, virtual node, inputs).
        strategy: the strategy's name and options.
        corpus: the pre-training corpus (names, fingerprint, graph count).
        epochs: epochs trained; seed: the run's seed.
        history: one row per epoch (``loss``, ``seconds``).
        record: the engine's record (versions, device, config).
        source: the folder it was loaded from (``None`` when in memory).
    """

    encoder_state: Dict[str, torch.Tensor]
    encoder_config: Dict[str, Any]
    strategy: Dict[str, Any]
    corpus: Dict[str, Any]
    epochs: int
    seed: int
    history: List[Dict[str, Any]] = field(default_factory=list)
    record: Dict[str, Any] = field(default_factory=dict)
    source: Optional[str] = None

    FILES = ("encoder.safetensors", "pretrain.json")

    def save(self, path: PathLike) -> Path:
        """Write ``encoder.safetensors`` + ``pretrain.json`` into the folder ``path`` (atomically:
        a folder is complete or absent).

        Args:
            path: the folder.
        """
        from ..training.result import _jsonable
        from safetensors.torch import save

        path = Path(path)
        meta = {"format": "graphkit-pretrained-encoder", "version": 1, "encoder_config": self.encoder_config,
                "strategy": self.strategy, "corpus": self.corpus, "epochs": self.epochs, "seed": self.seed,
                "history": self.history, "record": self.record}
        with atomic_folder(path) as tmp:
            (tmp / "encoder.safetensors").write_bytes(
                save({k: v.detach().cpu().contiguous() for k, v in self.encoder_state.items()}))
            (tmp / "pretrain.json").write_text(json.dumps(_jsonable(meta), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: PathLike) -> "PretrainResult":
        """Read a folder written by :meth:`save` (safetensors: no pickle, no code runs).

        Args:
            path: the folder.

        Raises:
            CheckpointError: a missing or malformed file (named).
        """
        from safetensors.torch import load as st_load

        path = Path(path)
        meta_path, st_path = path / "pretrain.json", path / "encoder.safetensors"
        for p in (meta_path, st_path):
            if not p.is_file():
                raise CheckpointError(f"{p}: missing (not a folder written by PretrainResult.save)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{meta_path}: not readable JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != "graphkit-pretrained-encoder":
            raise CheckpointError(f"{meta_path}: field 'format': expected 'graphkit-pretrained-encoder', "
                                  f"got {meta.get('format') if isinstance(meta, dict) else meta!r}")
        for key, typ in (("encoder_config", dict), ("strategy", dict), ("corpus", dict), ("epochs", int),
                         ("seed", int)):
            if not isinstance(meta.get(key), typ):
                raise CheckpointError(f"{meta_path}: field {key!r}: expected {typ.__name__}, got {meta.get(key)!r}")
        try:
            state = st_load(st_path.read_bytes())
        except Exception as exc:
            raise CheckpointError(f"{st_path}: not a readable safetensors file ({exc})") from None
        return cls(state, meta["encoder_config"], meta["strategy"], meta["corpus"], meta["epochs"], meta["seed"],
                   list(meta.get("history") or []), dict(meta.get("record") or {}), source=str(path))


def pretrain(encoder: Any, graphs: Any, strategy: Union[str, Type[PretrainStrategy]] = "attr_masking", *,
             data_dir: Optional[PathLike] = None, seed: int = 0, callbacks: Optional[Sequence[Any]] = None,
             strategy_options: Optional[Dict[str, Any]] = None, **options: Any) -> PretrainResult:
    """Pre-train a graph encoder with a self-supervised strategy.

    Args:
        encoder: ``"gin"``, ``"gcn-graph"``, a graph-level model class or a built model (its
            encoder is trained in place).
        graphs: the corpus: dataset names, loaded datasets or collections (see :func:`as_corpus`);
            labels are never read.
        strategy: ``"attr_masking"``, ``"context_pred"``, ``"graphcl"`` or a
            :class:`PretrainStrategy` subclass.
        data_dir: data folder for dataset names.
        seed: seed of initialisation, batch order, masks and augmentations.
        callbacks: engine callbacks (progress, logging, ...).
        strategy_options: the strategy's options (``mask_rate``, ``augmentations``, ...).
        **options: model options of the encoder (``num_layers``, ``emb_dim``, ``virtual_node``,
            ``dropout``: Hu et al. pre-train without dropout, the default here) and
            :class:`PretrainConfig` fields (``epochs``, ``batch_size``, ``lr``, ``max_time``,
            ``device``, ``checkpoint_dir``, ...).

    Returns:
        A :class:`PretrainResult`; ``graphkit.fit(..., init_from=result)`` (or its saved folder)
        fine-tunes from it.
    """
    import dataclasses

    from ..utils import seed_everything

    cls = STRATEGIES.get(strategy) if isinstance(strategy, str) else strategy
    if cls is None or not (isinstance(cls, type) and issubclass(cls, PretrainStrategy)):
        raise ConfigError(f"unknown pre-training strategy {strategy!r}; available: {', '.join(sorted(STRATEGIES))}")
    train_names = {f.name for f in dataclasses.fields(PretrainConfig)}
    train_kw = {k: v for k, v in options.items() if k in train_names}
    model_kw = {k: v for k, v in options.items() if k not in train_names}
    model_kw.setdefault("dropout", 0.0)
    train_kw.setdefault("progress", False)
    cfg = PretrainConfig(seed=seed, **train_kw)
    cfg.validate()
    seed_everything(cfg.seed)
    corpus = as_corpus(graphs, data_dir)
    try:
        enc, enc_cfg = _build_encoder(encoder, corpus, model_kw)
    except TypeError as exc:
        raise ConfigError(f"unknown encoder or training option: {exc}") from None
    module = cls(enc, **(strategy_options or {}))
    result = Trainer(module, PretrainTask(corpus), cfg, callbacks=callbacks).fit()
    return PretrainResult(
        encoder_state={k: v.detach().cpu().clone() for k, v in enc.state_dict().items()},
        encoder_config=enc_cfg, strategy=module.hparams(), corpus=corpus.split_record(),
        epochs=len(result.history), seed=cfg.seed, history=result.history.to_dict("records"),
        record={k: result.record.get(k) for k in ("versions", "device", "train", "train_seconds", "stopped_by")})
