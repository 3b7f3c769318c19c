"""rnnkit: explore the IMDB reviews and train bidirectional RNNs on them, fast, with cached results.

`import rnnkit` is light: it loads neither Streamlit nor TensorFlow; Keras is imported by the
functions that need it.
"""

from rnnkit.config import PRESETS, TrainConfig, preset
from rnnkit.data import (
    DataError,
    DataWarning,
    ImdbData,
    Split,
    Vocabulary,
    load_imdb,
    tokenize,
)
from rnnkit.runs import Run, RunError, RunStore
from rnnkit.sequences import PaddingReport, TokenSequences, pad, padding_report
from rnnkit.training import CancelToken, ProgressEvent, TrainingCancelled, get_or_train, train

__all__ = [
    "PRESETS",
    "CancelToken",
    "DataError",
    "DataWarning",
    "ImdbData",
    "PaddingReport",
    "ProgressEvent",
    "Run",
    "RunError",
    "RunStore",
    "Split",
    "TokenSequences",
    "TrainConfig",
    "TrainingCancelled",
    "Vocabulary",
    "build_model",
    "get_or_train",
    "load_imdb",
    "pad",
    "padding_report",
    "preset",
    "tokenize",
    "train",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    # build_model imports Keras (and TensorFlow): only when it is asked for.
    if name == "build_model":
        from rnnkit.model import build_model

        return build_model
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
