"""rnnkit: explore the IMDB reviews and train bidirectional RNNs on them, fast, with cached results.

`import rnnkit` is light: it loads neither Streamlit nor TensorFlow; Keras is imported by the
functions that need it.
"""

from rnnkit.data import (
    DataError,
    DataWarning,
    ImdbData,
    Split,
    Vocabulary,
    load_imdb,
    tokenize,
)
from rnnkit.sequences import PaddingReport, TokenSequences, pad, padding_report

__all__ = [
    "DataError",
    "DataWarning",
    "ImdbData",
    "PaddingReport",
    "Split",
    "TokenSequences",
    "Vocabulary",
    "load_imdb",
    "pad",
    "padding_report",
    "tokenize",
]
__version__ = "0.1.0"
