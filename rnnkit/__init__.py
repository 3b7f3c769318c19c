"""rnnkit: explore the IMDB reviews and train bidirectional RNNs on them, fast, with cached results.

`import rnnkit` is light: it loads neither Streamlit nor TensorFlow; Keras is imported by the
functions that need it.
"""

from rnnkit.config import PRESETS, TrainConfig, preset
from rnnkit.data import ImdbData, Split, load_imdb
from rnnkit.runs import Run, RunError, RunStore
from rnnkit.sequences import PaddingReport, TokenSequences, pad, padding_report
from rnnkit.sources import DataError, DataWarning
from rnnkit.training import CancelToken, ProgressEvent, TrainingCancelled, train
from rnnkit.version import VERSION
from rnnkit.vocabulary import Vocabulary, tokenize

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
    "load_imdb",
    "pad",
    "padding_report",
    "preset",
    "tokenize",
    "train",
]
__version__ = VERSION


def __getattr__(name: str):
    # build_model imports Keras (and TensorFlow): only when it is asked for.
    if name == "build_model":
        from rnnkit.model import build_model

        return build_model
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
