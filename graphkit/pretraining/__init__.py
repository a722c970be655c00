"""Self-supervised pre-training of graph encoders, and fine-tuning from them.

>>> res = graphkit.pretrain("gin", ["ogbg-molbbbp", "ogbg-molesol"], strategy="attr_masking", epochs=20)
>>> res.save("runs/gin-attrmask")
>>> graphkit.fit("gin", dataset="ogbg-molbace", init_from="runs/gin-attrmask")

Strategies (one file each):

* ``"attr_masking"`` (:class:`AttributeMasking`): Hu et al., "Strategies for Pre-training
  Graph Neural Networks", ICLR 2020 (arXiv 1905.12265), Sec. 3.1.2;
* ``"context_pred"`` (:class:`ContextPrediction`): the same paper, Sec. 3.1.1;
* ``"graphcl"`` (:class:`GraphCL`): You et al., "Graph Contrastive Learning with
  Augmentations", NeurIPS 2020 (arXiv 2010.13902).

Training runs on the engine's :class:`~graphkit.training.Trainer` (checkpoints, resume,
``max_time``, callbacks), with a task that has no validation split: the encoder of the last
epoch is the result.
"""
from .base import PretrainResult, PretrainStrategy, STRATEGIES, pretrain
from .context import ContextPrediction
from .graphcl import GraphCL
from .masking import AttributeMasking

__all__ = ["pretrain", "PretrainResult", "PretrainStrategy", "AttributeMasking", "ContextPrediction", "GraphCL",
           "STRATEGIES"]
