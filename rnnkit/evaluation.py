"""How good a trained model is and why it says what it says, as plain NumPy and pandas results.

- Scores of test-set probabilities: metrics at a threshold, ROC and precision-recall curves
  (thinned for charts), a probability histogram, accuracy by review length, the most confident
  mistakes.
- A model on any text: `load_model` loads a run's model with its forward pass and gradient
  compiled, `encode_for_model` pads and cuts a text exactly as training pads the
  reviews, `predict_texts` scores texts, `token_contributions` says which words pushed the
  prediction which way, `prefix_predictions` shows the prediction word by word, and
  `nearest_words` looks up neighbours in the trained embedding (`distinguishing_decimals`
  says how many decimals tell their cosines apart).
- What a page shows of a run: `run_report` (its test-set results), `read_text` (what it
  makes of a typed text), whether it is `at_chance`, its probabilities as text
  (`probability_text`) and its mistakes as a table to read (`readable_mistakes`).

The TF-IDF + logistic regression baseline lives in `rnnkit.baseline`.

No Streamlit here; Keras, TensorFlow and scikit-learn are imported by the functions that need
them, so importing this module is quick.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from rnnkit.config import TrainConfig
from rnnkit.sequences import forward_batches
from rnnkit.sources import LABEL_NAMES
from rnnkit.vocabulary import (
    OOV_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    START_ID,
    Vocabulary,
    plain_text,
    tokenize,
)

if TYPE_CHECKING:
    import keras

    from rnnkit.data import ImdbData
    from rnnkit.runs import Run

MAX_TEXT_CHARACTERS = 1_000_000  # a longer text is cut to this many characters before encoding
CURVE_POINTS = 500  # most points a ROC or precision-recall curve keeps for a chart
PREDICT_BATCH = 256  # padded rows per call of the model
# Review-length bucket edges (tokens, <START> included); 0, max_length and infinity are added.
DEFAULT_LENGTH_EDGES = (0, 100, 200, 300, 500, 1000)

Method = Literal["occlusion", "gradient"]


# --- scores of predicted probabilities --------------------------------------------------------


def _check_scores(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate probabilities and 0/1 labels; return them as float64 and bool arrays."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    if probabilities.ndim != 1 or labels.ndim != 1:
        raise ValueError(
            f"probabilities and labels must be 1-D arrays, not of shapes {probabilities.shape} "
            f"and {labels.shape}"
        )
    if len(probabilities) != len(labels):
        raise ValueError(
            f"probabilities ({len(probabilities)}) and labels ({len(labels)}) must have one "
            f"entry per review each"
        )
    if len(labels) == 0:
        raise ValueError("probabilities and labels are empty: give at least one review")
    if not np.all((probabilities >= 0) & (probabilities <= 1)):
        raise ValueError("probabilities must lie between 0 and 1 (and not be NaN)")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 (negative) or 1 (positive)")
    return probabilities, labels == 1


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, or 0.0 where the denominator is 0."""
    return float(numerator / denominator) if denominator else 0.0


def threshold_metrics(
    probabilities: np.ndarray, labels: np.ndarray, threshold: float = 0.5
) -> dict[str, float | int]:
    """Confusion counts and scores when a review is called positive above `threshold`.

    Args:
        probabilities: (n,) predicted probabilities that each review is positive.
        labels: (n,) true labels, 0 negative and 1 positive.
        threshold: a review is predicted positive when its probability is above it (as Keras'
            accuracy counts it).

    Returns:
        {"threshold", "tp", "fp", "tn", "fn" (ints), "accuracy", "precision", "recall",
        "f1"}; a score whose denominator is 0 (no positive prediction, no positive label)
        is 0.0.
    """
    probabilities, positive = _check_scores(probabilities, labels)
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be between 0 and 1, not {threshold!r}")
    predicted = probabilities > threshold
    true_positives = int(np.sum(predicted & positive))
    false_positives = int(np.sum(predicted & ~positive))
    true_negatives = int(np.sum(~predicted & ~positive))
    false_negatives = int(np.sum(~predicted & positive))
    precision = _ratio(true_positives, true_positives + false_positives)
    recall = _ratio(true_positives, true_positives + false_negatives)
    return {
        "threshold": float(threshold),
        "tp": true_positives,
        "fp": false_positives,
        "tn": true_negatives,
        "fn": false_negatives,
        "accuracy": (true_positives + true_negatives) / len(positive),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
    }


def _thin_indices(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most `max_points` points spread evenly along a curve, both ends kept.

    Evenly by distance along the curve, not by index: a steep stretch with few points keeps
    its shape and a long run of nearly equal points shrinks.
    """
    count = len(x)
    if count <= max_points:
        return np.arange(count)
    distance = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])  # (count,)
    targets = np.linspace(0.0, distance[-1], max_points)
    indices = np.minimum(np.searchsorted(distance, targets), count - 1)
    indices[0], indices[-1] = 0, count - 1
    return np.unique(indices)


def _check_both_labels(positive: np.ndarray, curve: str) -> None:
    if positive.all() or not positive.any():
        raise ValueError(f"a {curve} needs reviews of both labels; these are all of one label")


def roc_curve(
    probabilities: np.ndarray, labels: np.ndarray, max_points: int = CURVE_POINTS
) -> tuple[pd.DataFrame, float]:
    """The ROC curve, thinned for a chart, and the area under the whole curve.

    Args:
        probabilities: (n,) predicted probabilities of "positive".
        labels: (n,) true labels 0/1, both present.
        max_points: most points the curve keeps (its two ends always among them).

    Returns:
        (curve, auc): curve has columns fpr, tpr, threshold, in order of decreasing threshold
        (a review counts as positive at probability >= threshold); the first row, where
        nothing is predicted positive, has threshold NaN (scikit-learn's infinity, which JSON
        cannot hold). auc is computed on the unthinned curve.
    """
    from sklearn import metrics

    probabilities, positive = _check_scores(probabilities, labels)
    _check_both_labels(positive, "ROC curve")
    false_positive_rate, true_positive_rate, thresholds = metrics.roc_curve(
        positive, probabilities, drop_intermediate=True
    )
    area = float(metrics.auc(false_positive_rate, true_positive_rate))
    kept = _thin_indices(false_positive_rate, true_positive_rate, max_points)
    curve = pd.DataFrame(
        {
            "fpr": false_positive_rate[kept],
            "tpr": true_positive_rate[kept],
            "threshold": np.where(np.isfinite(thresholds), thresholds, np.nan)[kept],
        }
    )
    return curve, area


def precision_recall_curve(
    probabilities: np.ndarray, labels: np.ndarray, max_points: int = CURVE_POINTS
) -> tuple[pd.DataFrame, float]:
    """The precision-recall curve, thinned for a chart, and the average precision.

    Args:
        probabilities: (n,) predicted probabilities of "positive".
        labels: (n,) true labels 0/1, both present.
        max_points: most points the curve keeps (its two ends always among them).

    Returns:
        (curve, average_precision): curve has columns recall, precision, threshold, in order
        of decreasing threshold (recall rising); the first row is scikit-learn's end point
        (recall 0, precision 1), which has no threshold: NaN. average_precision is
        `sklearn.metrics.average_precision_score` on all reviews.
    """
    from sklearn import metrics

    probabilities, positive = _check_scores(probabilities, labels)
    _check_both_labels(positive, "precision-recall curve")
    precision, recall, thresholds = metrics.precision_recall_curve(
        positive, probabilities, drop_intermediate=True
    )
    # scikit-learn orders by rising threshold and gives the end point no threshold.
    precision, recall = precision[::-1], recall[::-1]
    thresholds = np.concatenate([[np.nan], thresholds[::-1]])
    kept = _thin_indices(recall, precision, max_points)
    curve = pd.DataFrame(
        {"recall": recall[kept], "precision": precision[kept], "threshold": thresholds[kept]}
    )
    return curve, float(metrics.average_precision_score(positive, probabilities))


def probability_histogram(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = 20
) -> pd.DataFrame:
    """How many reviews of each label got probabilities in each of `bins` equal bins of [0, 1].

    Args:
        probabilities: (n,) predicted probabilities of "positive".
        labels: (n,) true labels 0/1.
        bins: number of bins; the last one includes 1.0.

    Returns:
        A DataFrame with columns bin_start, bin_end, label ("neg" or "pos"), count: one row
        per bin and label (2 * bins rows), zero counts included.
    """
    probabilities, positive = _check_scores(probabilities, labels)
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be a positive whole number, not {bins!r}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    frames = []
    for label, label_name in enumerate(LABEL_NAMES):
        counts, _ = np.histogram(probabilities[positive == bool(label)], bins=edges)
        frames.append(
            pd.DataFrame(
                {
                    "bin_start": edges[:-1],
                    "bin_end": edges[1:],
                    "label": label_name,
                    "count": counts,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def accuracy_by_length(
    probabilities: np.ndarray,
    labels: np.ndarray,
    lengths: np.ndarray,
    max_length: int,
    buckets: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Accuracy (at 0.5) of the reviews in each review-length bucket.

    Args:
        probabilities: (n,) predicted probabilities of "positive".
        labels: (n,) true labels 0/1.
        lengths: (n,) tokens per review, <START> included (`Split.lengths`).
        max_length: the length reviews were padded and cut to; a review longer than it lost
            tokens.
        buckets: bucket edges in tokens (whole numbers, rising); None: DEFAULT_LENGTH_EDGES.
            0, max_length and infinity are always edges, so each bucket is either wholly
            truncated or wholly not.

    Returns:
        A DataFrame with one row per bucket (lower, upper]: bucket ("1-100", ..., "1001+"),
        lower, upper (inf for the last), count, accuracy (NaN for an empty bucket) and
        truncated (its reviews are longer than max_length).
    """
    probabilities, positive = _check_scores(probabilities, labels)
    lengths = np.asarray(lengths)
    if lengths.shape != probabilities.shape:
        raise ValueError(
            f"lengths ({lengths.shape}) must have one entry per review ({probabilities.shape})"
        )
    if isinstance(max_length, bool) or not isinstance(max_length, int | np.integer):
        raise ValueError(f"max_length must be a positive whole number, not {max_length!r}")
    if max_length < 1:
        raise ValueError(f"max_length must be a positive whole number, not {max_length!r}")
    edges = list(DEFAULT_LENGTH_EDGES if buckets is None else buckets)
    for edge in edges:
        if not (edge == np.inf or (float(edge).is_integer() and edge >= 0)):
            raise ValueError(f"bucket edges must be whole numbers of 0 or more, not {edge!r}")
    edges = sorted({float(edge) for edge in [*edges, 0, max_length, np.inf]})
    correct = (probabilities > 0.5) == positive
    rows = []
    for lower, upper in itertools.pairwise(edges):
        inside = (lengths > lower) & (lengths <= upper)
        count = int(inside.sum())
        first = int(lower) + 1  # lengths are whole numbers: the bucket is first..upper
        rows.append(
            {
                "bucket": f"{first}+" if upper == np.inf else f"{first}-{int(upper)}",
                "lower": lower,
                "upper": upper,
                "count": count,
                "accuracy": float(correct[inside].mean()) if count else np.nan,
                "truncated": lower >= max_length,
            }
        )
    return pd.DataFrame(rows)


def confident_mistakes(
    probabilities: np.ndarray, labels: np.ndarray, top: int = 10
) -> pd.DataFrame:
    """The wrong predictions (at 0.5) the model was surest of, surest first.

    Args:
        probabilities: (n,) predicted probabilities of "positive", in the split's order.
        labels: (n,) true labels 0/1.
        top: most rows to return.

    Returns:
        A DataFrame with columns index (into the split), label (the true one, 0/1),
        probability, confidence (the probability the model gave its wrong answer:
        max(p, 1 - p)); sorted by confidence, then index. Fewer than `top` rows when there
        are fewer mistakes.
    """
    probabilities, positive = _check_scores(probabilities, labels)
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        raise ValueError(f"top must be a positive whole number, not {top!r}")
    wrong = np.flatnonzero((probabilities > 0.5) != positive)
    confidence = np.maximum(probabilities[wrong], 1.0 - probabilities[wrong])
    order = np.lexsort((wrong, -confidence))[:top]
    return pd.DataFrame(
        {
            "index": wrong[order],
            "label": positive[wrong[order]].astype(int),
            "probability": probabilities[wrong[order]],
            "confidence": confidence[order],
        }
    )


# --- a model on any text ----------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedText:
    """A text as the model reads it: padded and cut exactly as training pads the reviews."""

    ids: np.ndarray  # (max_length,) int32
    tokens: list[str]  # one per non-padding step of ids, in order: "<START>" where kept, the
    # word as the vocabulary has it, "<UNK>" for a word the model has no id for
    words: list[str]  # the same steps as the text has them ("<START>" for the start token)
    truncated: bool  # the text had more steps than max_length
    tokens_dropped: int  # steps cut off (<START> counts, as in training)
    note: str | None  # what was cut and why, for a page to show; None when nothing was

    @property
    def steps(self) -> np.ndarray:
        """(len(tokens),) the indices of `ids` that hold the tokens (no id but padding is 0)."""
        return np.flatnonzero(self.ids != PAD_ID)


def _check_config(config: TrainConfig) -> None:
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, not {config!r}")


def encode_for_model(text: str, vocab: Vocabulary, config: TrainConfig) -> EncodedText:
    """Encode, pad and cut a text as training does (`rnnkit.sequences.pad` with the config's
    max_length, padding and truncating).

    Args:
        text: any text; one longer than MAX_TEXT_CHARACTERS is cut to that many characters
            first (the note says so).
        vocab: the vocabulary of the data the model was trained on.
        config: the model's training configuration; ids of `data.num_words` or more become
            `<UNK>` (2), as in training.

    Returns:
        The `EncodedText`.

    Raises:
        ValueError: the text has no words (empty, spaces or punctuation only).
    """
    from rnnkit.sequences import pad

    _check_config(config)
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, not {type(text).__name__}")
    notes = []
    if len(text) > MAX_TEXT_CHARACTERS:
        notes.append(
            f"The text was cut to its first {MAX_TEXT_CHARACTERS:,} characters (it had "
            f"{len(text):,})."
        )
        text = text[:MAX_TEXT_CHARACTERS]
    text_words = tokenize(text)
    if not text_words:
        raise ValueError(
            "the text has no words: give at least one word (letters or digits) to predict on"
        )
    num_words, max_length = config.data.num_words, config.data.max_length
    word_ids = [vocab.word_to_id(word) for word in text_words]
    ids = np.array([START_ID, *word_ids], dtype=np.int32)  # (steps,)
    ids[ids >= num_words] = OOV_ID  # the model's embedding has num_words rows
    words = [SPECIAL_TOKENS[START_ID], *text_words]
    padded = pad([ids], max_length, config.data.padding, config.data.truncating)[0]
    tokens_dropped = max(0, len(ids) - max_length)
    kept = slice(tokens_dropped, None) if config.data.truncating == "pre" else slice(max_length)
    if tokens_dropped:
        end = "first" if config.data.truncating == "pre" else "last"
        notes.append(
            f"The model reads {max_length} steps; this text has {len(ids):,} (<START> "
            f"included), so its {end} {tokens_dropped:,} are dropped (truncating="
            f"'{config.data.truncating}')."
        )
    return EncodedText(
        ids=padded,
        tokens=[vocab.id_to_word(word_id) for word_id in ids[kept]],
        words=words[kept],
        truncated=bool(tokens_dropped),
        tokens_dropped=tokens_dropped,
        note=" ".join(notes) or None,
    )


@dataclass
class _CompiledModel:
    """A model's forward pass and its gradient x input, each traced once for every shape, and
    its `rnnkit.fused.FusedReader` where one computes it (then the forward pass is the
    reader's)."""

    forward: Any  # (rows, time) int32 ids -> (rows, 1) probabilities
    gradient: Any  # (1, time) int32 ids -> (probability, (time,) gradient x input)
    masked: bool  # the embedding masks id 0: padding columns can be dropped
    reader: Any = None  # FusedReader, or None


def _compiled(model: keras.Model) -> _CompiledModel:
    """The model's compiled functions, made on first use and kept as long as the model.

    Keras' `predict_on_batch` traces a new function for the first call of every model, and an
    eager gradient tape runs each layer's operations one by one: seconds on the first reading
    of a text. One `tf.function` per model with an input shape open in both dimensions is
    traced once; `load_model` traces it before the first visitor asks.
    """
    compiled = getattr(model, "_rnnkit_compiled", None)
    if isinstance(compiled, _CompiledModel):
        return compiled
    import tensorflow as tf

    embedding = model.get_layer("embedding")
    layers = list(model.layers)
    after = layers[layers.index(embedding) + 1 :]  # build_model's chain: RNNs, Dropout, Dense

    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32)])
    def forward(batch):
        return model(batch, training=False)

    @tf.function(input_signature=[tf.TensorSpec((1, None), tf.int32)])
    def gradient(batch):
        # The embedding's output carries the padding mask (with mask_padding) and each later
        # layer passes it on, as inside the model.
        embedded = embedding(batch)  # (1, time, embedding_dim)
        with tf.GradientTape() as tape:
            tape.watch(embedded)
            hidden = embedded
            for layer in after:
                hidden = layer(hidden, training=False)
        gradients = tape.gradient(hidden, embedded)  # (1, time, embedding_dim)
        return hidden[0, 0], tf.reduce_sum(gradients * embedded, axis=-1)[0]

    from rnnkit.model import has_fused_layers

    reader = None
    if has_fused_layers(model):
        from rnnkit.fused import FusedReader

        reader = FusedReader.of(model)
    masked = bool(getattr(embedding, "mask_zero", False))
    compiled = _CompiledModel(forward, gradient, masked, reader)
    # Kept on the model (the functions refer to it): they go when the model goes.
    object.__setattr__(model, "_rnnkit_compiled", compiled)
    return compiled


def load_model(run: Run) -> keras.Model:
    """A run's model, ready to read texts at once: loaded, its SimpleRNN layers computed by
    `rnnkit.fused` where training's would be (`rnnkit.model.fast_copy`), and its forward pass
    and gradient traced (the first reading of a text would otherwise pay seconds for them).

    Args:
        run: a complete run.

    Returns:
        The Keras model.

    Raises:
        RunError: the model cannot be loaded (see `Run.model`).
    """
    from rnnkit.model import fast_copy

    config = TrainConfig.from_dict(run.config)
    model = fast_copy(run.model(), config)  # a saved model is of Keras' own layers
    compiled = _compiled(model)
    row = np.full((1, config.data.max_length), OOV_ID, dtype=np.int32)
    row[0, 0] = START_ID
    if compiled.reader is None:
        compiled.forward(row)
    compiled.gradient(row)
    return model


def _predict(model: keras.Model, rows: np.ndarray) -> np.ndarray:
    """(n,) float32 probabilities of (n, time) padded ids.

    At most PREDICT_BATCH rows per call. When the model masks its padding, rows of similar
    length go together and the columns that are padding in every row of a batch are left out:
    a masked step keeps the state, so the result is the same, and the steps not run are free.
    """
    if len(rows) == 0:
        return np.zeros(0, dtype=np.float32)
    compiled = _compiled(model)
    rows = np.asarray(rows, dtype=np.int32)
    result = np.empty(len(rows), dtype=np.float32)
    for chosen in forward_batches(rows, PREDICT_BATCH, compiled.masked):
        batch = rows[chosen]
        if compiled.masked:
            batch = batch[:, np.flatnonzero(batch.any(axis=0))]
            if batch.shape[1] == 0:  # only padding: one masked step, the zero state
                batch = rows[chosen][:, :1]
        if compiled.reader is not None:
            result[chosen] = compiled.reader.probabilities(batch)
        else:
            result[chosen] = np.asarray(compiled.forward(batch))[:, 0]
    if compiled.reader is not None:
        compiled.reader.release()
    return result


def predict_texts(
    model: keras.Model, vocab: Vocabulary, config: TrainConfig, texts: Sequence[str]
) -> np.ndarray:
    """The model's probability that each text is positive.

    Args:
        model: a trained model (`Run.model()`).
        vocab: the vocabulary of its training data.
        config: its training configuration (`TrainConfig.from_dict(run.config)`).
        texts: the texts; each is encoded with `encode_for_model`.

    Returns:
        (len(texts),) float32 probabilities.

    Raises:
        ValueError: a text has no words (the message gives its index).
    """
    if isinstance(texts, str):
        raise ValueError("texts must be a list of texts, not one string: wrap it in a list")
    rows = []
    for index, text in enumerate(texts):
        try:
            rows.append(encode_for_model(text, vocab, config).ids)
        except ValueError as error:
            raise ValueError(f"text {index}: {error}") from None
    if not rows:
        return np.zeros(0, dtype=np.float32)
    return _predict(model, np.stack(rows))  # (texts, max_length)


def _word_steps(encoded: EncodedText) -> tuple[np.ndarray, np.ndarray]:
    """The steps of the real words (not <START>) and where they are in `encoded.tokens`."""
    steps = encoded.steps
    first_word = 1 if encoded.ids[steps[0]] == START_ID else 0
    return steps[first_word:], np.arange(first_word, len(steps))


def _gradient_times_input(model: keras.Model, ids: np.ndarray) -> np.ndarray:
    """(time,) gradient x input of the probability at the embedding output, summed over the
    embedding dimension."""
    probability, contributions = _compiled(model).gradient(np.asarray(ids[None, :], np.int32))
    if abs(float(probability) - float(_predict(model, ids[None, :])[0])) > 1e-4:
        raise ValueError(
            "the gradient method needs the layers after the embedding to form a chain, as "
            "build_model makes them; use method='occlusion' for this model"
        )
    return np.asarray(contributions)


def token_contributions(
    model: keras.Model,
    vocab: Vocabulary,
    config: TrainConfig,
    text: str,
    method: Method = "occlusion",
) -> pd.DataFrame:
    """How much each word the model reads pushed its prediction toward "positive".

    Args:
        model: a trained model (with a layer named "embedding", as `build_model` makes).
        vocab: the vocabulary of its training data.
        config: its training configuration.
        text: the text (see `encode_for_model` for how it is cut).
        method: "occlusion": the probability of the text minus the probability with that one
            word replaced by `<UNK>` (2); exactly 0 for a word that already is `<UNK>`.
            One batch of at most max_length variants. "gradient": gradient x input of the
            probability at the embedding output, summed over the embedding dimension (one
            forward and backward pass; a first-order estimate, small where the prediction
            is saturated).

    Returns:
        A DataFrame with one row per word kept (no <START>, no padding), in reading order:
        position (1 for the first word), step (its index in the padded ids), word (as the
        text has it), id (2: unknown to the model), contribution (positive: the word pushes
        toward "positive").
    """
    if method not in ("occlusion", "gradient"):
        raise ValueError(f'method must be "occlusion" or "gradient", not {method!r}')
    encoded = encode_for_model(text, vocab, config)
    steps, token_indices = _word_steps(encoded)
    ids = encoded.ids
    if method == "gradient":
        contributions = _gradient_times_input(model, ids)[steps].astype(np.float64)
    else:
        occluded_steps = steps[ids[steps] != OOV_ID]  # replacing <UNK> by <UNK> changes nothing
        variants = np.repeat(ids[None, :], len(occluded_steps) + 1, axis=0)  # (1 + words, time)
        variants[np.arange(1, len(variants)), occluded_steps] = OOV_ID
        probabilities = _predict(model, variants).astype(np.float64)  # first: the whole text
        changes = probabilities[0] - probabilities[1:]  # (occluded words,)
        by_step = dict(zip(occluded_steps.tolist(), changes, strict=True))
        contributions = np.array([by_step.get(step, 0.0) for step in steps.tolist()])
    return pd.DataFrame(
        {
            "position": np.arange(1, len(steps) + 1),
            "step": steps,
            "word": [encoded.words[index] for index in token_indices],
            "id": ids[steps].astype(int),
            "contribution": contributions,
        }
    )


def prefix_predictions(
    model: keras.Model, vocab: Vocabulary, config: TrainConfig, text: str
) -> pd.DataFrame:
    """The review as the model reads it: its prediction after each prefix and from each suffix.

    The text is first cut as training cuts it (`encode_for_model`); then for the i-th of its n
    kept words, the model scores the prefix of words 1..i and the suffix of words i..n, each
    padded as the config says and led by <START> when the full text keeps it (as every
    training review is). The last prefix and the first suffix are the whole text. A
    bidirectional model's forward direction reads prefixes and its backward direction
    suffixes; for a one-directional model the suffix column is simply the prediction for
    the text that starts at that word.

    Args:
        model: a trained model.
        vocab: the vocabulary of its training data.
        config: its training configuration.
        text: the text.

    Returns:
        A DataFrame with one row per kept word: position (1 for the first), step (index in
        the padded ids of the whole text), word (as the text has it), id,
        probability_after_prefix, probability_from_suffix. All 2n sequences are scored in
        batches.
    """
    from rnnkit.sequences import pad

    encoded = encode_for_model(text, vocab, config)
    steps, token_indices = _word_steps(encoded)
    kept = encoded.ids[encoded.steps]  # (tokens,) the ids the model reads, <START> included
    lead = kept[: len(kept) - len(steps)]  # (0 or 1,) <START> where kept
    words = kept[len(lead) :]  # (n,)
    prefixes = [np.concatenate([lead, words[: end + 1]]) for end in range(len(words))]
    suffixes = [np.concatenate([lead, words[start:]]) for start in range(len(words))]
    if words.size:
        settings = config.data
        rows = pad(prefixes + suffixes, settings.max_length, settings.padding, settings.truncating)
        probabilities = _predict(model, rows)  # (2n,)
    else:
        probabilities = np.zeros(0, dtype=np.float32)
    return pd.DataFrame(
        {
            "position": np.arange(1, len(words) + 1),
            "step": steps,
            "word": [encoded.words[index] for index in token_indices],
            "id": words.astype(int),
            "probability_after_prefix": probabilities[: len(words)],
            "probability_from_suffix": probabilities[len(words) :],
        }
    )


def nearest_words(
    model: keras.Model | np.ndarray, vocab: Vocabulary, word: str, k: int = 10
) -> pd.DataFrame:
    """The words whose trained embeddings point most nearly the same way as `word`'s.

    Args:
        model: a trained model with a layer named "embedding", or that layer's matrix
            (input_dim, embedding_dim), e.g. from `Run.embedding()` (no Keras needed).
        vocab: the vocabulary of its training data.
        word: a word the model has an id for (not `<UNK>`).
        k: how many neighbours.

    Returns:
        A DataFrame with columns word, id, cosine (cosine similarity, -1 to 1): the `k`
        nearest words (fewer if the model knows fewer), most similar first, `word` itself and
        the special ids left out. Only ids below the embedding's input_dim are searched.

    Raises:
        ValueError: the model has no id for `word` (unknown, or past num_words), or k < 1.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive whole number, not {k!r}")
    weights = (
        model if isinstance(model, np.ndarray) else model.get_layer("embedding").get_weights()[0]
    )
    matrix = np.asarray(weights, dtype=np.float64)
    input_dim = len(matrix)  # (input_dim, embedding_dim)
    word_id = vocab.word_index.get(str(word).strip().lower(), OOV_ID)
    if word_id == OOV_ID or word_id >= input_dim:
        raise ValueError(
            f"the model has no embedding for {word!r}: it is not among its {input_dim:,} ids "
            f"(out of the vocabulary, or past num_words)"
        )
    last_id = min(input_dim, len(vocab.words) + vocab.index_from + 1)
    candidates = np.arange(vocab.index_from + 1, last_id)  # real words only
    candidates = candidates[candidates != word_id]
    norms = np.linalg.norm(matrix, axis=1)  # (input_dim,)
    products = np.maximum(norms[candidates] * norms[word_id], 1e-12)  # no division by 0
    cosines = matrix[candidates] @ matrix[word_id] / products  # (candidates,)
    order = np.lexsort((candidates, -cosines))[:k]
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(order) + 1),
            "word": [vocab.id_to_word(word_id) for word_id in candidates[order]],
            "id": candidates[order],
            "cosine": np.clip(cosines[order], -1.0, 1.0),
        }
    )


def distinguishing_decimals(values: Sequence[float], least: int = 3, most: int = 8) -> int:
    """How many decimals tell the values apart: the fewest from `least` up to `most` at which
    no two different values round to the same text (neighbours of a word in a trained embedding
    often agree to three decimals).

    Args:
        values: the numbers to show.
        least, most: the range of decimals to choose from.

    Returns:
        The number of decimals; `most` when even those leave two values the same.
    """
    distinct = np.unique(np.asarray(values, dtype=np.float64))
    for decimals in range(least, most):
        if len(np.unique(np.round(distinct, decimals))) == len(distinct):
            return decimals
    return most


# --- what a page shows of a run ---------------------------------------------------------------

CHANCE_MARGIN = 0.05  # a model within 5 points of 50% on the balanced test set is guessing


def at_chance(accuracy: float, margin: float = CHANCE_MARGIN) -> bool:
    """Whether a test accuracy is within `margin` of 0.5, what a coin toss gets on IMDB's test
    set (half positive, half negative): such a model's predictions mean nothing.

    Args:
        accuracy: the test accuracy, 0 to 1.
        margin: how near 0.5 counts as chance.
    """
    return abs(accuracy - 0.5) < margin


def probability_text(probability: float, decimals: int = 3) -> str:
    """A probability for people: "0.508"; "<0.001" or ">0.999" where rounding would show a
    certainty ("0.000", "1.000") that the model did not give.

    Args:
        probability: 0 to 1.
        decimals: digits after the point.
    """
    text = f"{probability:.{decimals}f}"
    smallest = 10.0**-decimals
    if float(text) == 0:
        return f"<{smallest:.{decimals}f}"
    if float(text) == 1:
        return f">{1 - smallest:.{decimals}f}"
    return text


def readable_mistakes(mistakes: pd.DataFrame) -> pd.DataFrame:
    """`RunReport.mistakes` as a table to read: probabilities as text ("<0.001", not "0.000")
    and each review on one line, without its `<br />` tags.

    Args:
        mistakes: `run_report(...).mistakes`.

    Returns:
        Columns test review, true label, probability, confidence (text), length and text.
    """
    readable = mistakes.copy()
    for column in ("probability", "confidence"):
        readable[column] = [probability_text(value) for value in readable[column]]
    readable["text"] = [plain_text(text) for text in readable["text"]]
    return readable


@dataclass(frozen=True)
class RunReport:
    """A run's test-set results that do not depend on the threshold: `run_report`'s."""

    histogram: pd.DataFrame  # probability_histogram
    roc: pd.DataFrame | None  # the ROC curve; None when the test set has one label only
    roc_auc: float
    precision_recall: pd.DataFrame | None
    average_precision: float
    by_length: pd.DataFrame  # accuracy_by_length
    mistakes: pd.DataFrame  # the most confident mistakes, with their text


def run_report(run: Run, data: ImdbData) -> RunReport:
    """The run's test-set histogram, curves, accuracy by length and confident mistakes.

    Args:
        run: a complete run of `data` (its predictions are in `data.test`'s order).
        data: its reviews, loaded with the run's num_words.

    Returns:
        The `RunReport`; its mistakes carry the test review's number, true label, length
        (tokens, <START> included) and text.
    """
    probabilities, labels, test = run.predictions, data.test.labels, data.test
    max_length = TrainConfig.from_dict(run.config).data.max_length
    both_labels = 0 < int(labels.sum()) < len(labels)
    roc, roc_auc = roc_curve(probabilities, labels) if both_labels else (None, 0.0)
    precision_recall, average_precision = (
        precision_recall_curve(probabilities, labels) if both_labels else (None, 0.0)
    )
    mistakes = confident_mistakes(probabilities, labels)
    indices = mistakes["index"].tolist()
    mistakes["label"] = [LABEL_NAMES[label] for label in mistakes["label"]]
    mistakes["length"] = test.lengths[indices]
    mistakes["text"] = [
        test.texts[index]
        if test.texts is not None
        else data.vocab.decode(test.sequences[index], skip_padding=True)
        for index in indices
    ]
    mistakes = mistakes.rename(columns={"index": "test review", "label": "true label"})
    return RunReport(
        histogram=probability_histogram(probabilities, labels),
        roc=roc,
        roc_auc=roc_auc,
        precision_recall=precision_recall,
        average_precision=average_precision,
        by_length=accuracy_by_length(probabilities, labels, test.lengths, max_length),
        mistakes=mistakes,
    )


@dataclass(frozen=True)
class TextReading:
    """What a model makes of one text: `read_text`'s result."""

    encoded: EncodedText  # the text as the model reads it (its note says what was cut)
    probability: float  # of "pos"
    contributions: pd.DataFrame  # token_contributions
    prefixes: pd.DataFrame  # prefix_predictions


def read_text(
    model: keras.Model, vocab: Vocabulary, config: TrainConfig, text: str, method: Method
) -> TextReading:
    """A model's prediction on `text`, each word's contribution and the prediction word by word.

    Args:
        model: a trained model (`Run.model()`).
        vocab: the vocabulary of its training data.
        config: its training configuration (how the text is padded and cut).
        text: any text; a very long one is cut as `encode_for_model` says.
        method: "occlusion" or "gradient" (see `token_contributions`).

    Returns:
        The `TextReading`.

    Raises:
        ValueError: the text has no words, or the method does not suit the model.
    """
    return TextReading(
        encoded=encode_for_model(text, vocab, config),
        probability=float(predict_texts(model, vocab, config, [text])[0]),
        contributions=token_contributions(model, vocab, config, text, method),
        prefixes=prefix_predictions(model, vocab, config, text),
    )
