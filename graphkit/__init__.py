"""graphkit: graph learning and recommendation on PyTorch."""
from .exceptions import (  # noqa: F401
    CheckpointError, ChecksumError, ConfigError, DataFormatError, DataNotFoundError,
    DatasetError, GraphError, GraphkitError, NotFittedError, TrainingError,
)
from .graph import Graph, spmm  # noqa: F401

__version__ = "0.1.0"
from . import datasets, metrics, utils  # noqa: E402,F401
from . import feature_store, sampling, w2pgnn  # noqa: E402,F401
from .models import GCN, DAGNN, CatGCN, LargeGT, LightGCN, UltraGCN  # noqa: E402,F401
from .training import FitResult, fit  # noqa: E402,F401
from .tuning import TuneResult, tune  # noqa: E402,F401
from .recommender import Recommender, leave_last_out, temporal_split  # noqa: E402,F401
