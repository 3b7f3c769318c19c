"""Inside a trained RNN: the hidden state of every layer and direction along a review, how far
back each direction remembers, and what each unit responds to across the test reviews.

- `Inspector(model)` opens up a model that `rnnkit.model.build_model` made (or `Run.model()`
  loaded): its RNN `directions`, their `states` along rows of token ids, the model's `logits`,
  and `position_gradients`, the size of the gradient of the logit with respect to each
  position's word vector, through each direction of the last RNN layer apart.
- `memory_profile` averages those gradients by distance from where each direction finishes
  reading (a review's own scale divided out), and gives each run one number: how many steps
  back the better direction stays at 1% of its peak or more before it first falls below.
- `search_units` streams the test reviews and keeps, per unit, the reviews where it is most
  active (highest and lowest) and its correlation with the logit; `unit_windows` shows the
  words around those places.
- `run_memory_profile` and `run_unit_search` compute these once per run and keep them in the
  run's folder (`RunStore.write_derived`); a file that does not fit the run's model file is
  computed again, never shown.

How the states are computed: each direction of each RNN layer is the trained layer cloned with
`return_sequences=True` and `zero_output_for_mask=False` (so a masked step shows the state it
carries), with the trained weights; a backward direction's sequence comes out in the order it
ran and is turned back to input positions. Layer n + 1 reads layer n's directions concatenated,
forward first, as the model does (at masked steps it reads nothing). A SimpleRNN is computed by
`rnnkit.fused` where training would be: the same function, with its own gradients; the unit
search reads the test reviews with `fused.FusedReader` (forward only) where it computes the
model. Every layer and cell the model builder makes is supported (SimpleRNN, GRU, LSTM; one to
four layers; bidirectional or not; masked or not); `tests/test_inside.py` checks the states
against Keras' layers and the gradients against finite differences.

No Streamlit here; TensorFlow is imported when an `Inspector` is made.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from rnnkit.compare import config_or_none
from rnnkit.config import TrainConfig
from rnnkit.runs import Run, RunStore, RunSummary
from rnnkit.sequences import forward_batches, pad
from rnnkit.vocabulary import PAD_ID, Vocabulary

if TYPE_CHECKING:
    import keras

    from rnnkit.data import ImdbData

PROFILE_REVIEWS = 256  # test reviews the memory profile averages over
SAMPLE_SEED = 0  # the same sample for every run, so their profiles compare
MEMORY_SHARE = 0.01  # a direction "still remembers" while it is at 1% of its peak or more
TOP_WINDOWS = 10  # reviews kept per unit, highest and lowest
WINDOW_WORDS = 10  # words shown around a unit's strongest step
BATCH_SIZE = 128  # reviews per pass of the model
# Reviews per pass of the unit search: its passes read forward only, where more rows make each
# step's matmul cheaper per row (the notebook's model: 22 s at 128, 16 s at 256); its states
# take about 0.5 MB per review of 500 steps.
SEARCH_BATCH_SIZE = 256
PADDING_SHOWN = 20  # padding steps shown beside the words when a chart zooms in on them
PROFILE_FILE = "memory_profile.json"
UNITS_FILE = "unit_search.npz"
FILE_FORMAT = 1  # raised when what a derived file holds changes: old files are computed again
MEAN_OF_WORD_VECTORS = "mean of word vectors"  # the one "direction" of a model without an RNN

_RNN_NAME = re.compile(r"(simple_rnn|lstm|gru)_(\d+)")
Sign = Literal["highest", "lowest"]


@dataclass(frozen=True)
class Direction:
    """One direction of one RNN layer."""

    layer: int  # 1 for the layer that reads the word vectors
    backward: bool  # reads from the last step to the first
    units: int
    bidirectional: bool  # its layer has two directions

    @property
    def name(self) -> str:
        """ "layer 1 forward", "layer 2 backward"; "layer 1" for a one-way layer."""
        if not self.bidirectional:
            return f"layer {self.layer}"
        return f"layer {self.layer} {'backward' if self.backward else 'forward'}"


def _read_steps(tokens: np.ndarray, masked: bool) -> np.ndarray:
    """(batch, time) bool: the steps a direction reads (under a mask, not the padding)."""
    return tokens != PAD_ID if masked else np.ones(tokens.shape, bool)


def _cut_padding(tokens: np.ndarray) -> tuple[np.ndarray, int]:
    """`tokens` without the columns that are padding in every row, at either end, and the
    first column kept: under a mask such columns change nothing (at least one is kept)."""
    used = np.flatnonzero((tokens != PAD_ID).any(axis=0))
    if len(used) == 0:
        return tokens[:, :1], 0
    return tokens[:, used[0] : used[-1] + 1], int(used[0])


class Inspector:
    """A trained model opened up: its RNN directions, their states, its logit and the
    logit's gradient with respect to each position.

    Args:
        model: a model of `build_model`'s layers (embedding, RNN layers or the mean of word
            vectors, dropout, dense layers, probability), e.g. `Run.model()`.
        fused: compute SimpleRNN directions with `rnnkit.fused` (the same function, faster on
            CPUs); None: where training would (`RNNKIT_FUSED_RNN`, no GPU).

    Raises:
        ValueError: the model is not made of those layers.
    """

    def __init__(self, model: keras.Model, fused: bool | None = None) -> None:
        import tensorflow as tf
        from keras import layers

        from rnnkit.devices import cpu_only
        from rnnkit.settings import fused_rnn_enabled

        if fused is None:
            fused = fused_rnn_enabled() and cpu_only()
        self.model = model
        self._fused = fused
        try:
            self._embedding = model.get_layer("embedding")
        except ValueError:
            raise ValueError("the model has no layer named 'embedding'") from None
        self.masked = bool(self._embedding.mask_zero)
        self.directions: list[Direction] = []
        self._clones: list[list] = []  # per RNN layer, its directions as sequence layers
        self._pooling = None
        self._head: list = []  # the Dense layers after the RNN (or the mean), in order
        features = self._embedding.output_dim
        after_embedding = model.layers[model.layers.index(self._embedding) + 1 :]
        for layer in after_embedding:
            if _RNN_NAME.fullmatch(layer.name):
                if self._head or self._pooling is not None:
                    raise ValueError(f"RNN layer {layer.name!r} comes after the dense layers")
                features = self._add_rnn_layer(layer, features, fused)
            elif isinstance(layer, layers.GlobalAveragePooling1D):
                self._pooling = layer
            elif isinstance(layer, layers.Dense):
                self._head.append(layer)
            elif not isinstance(layer, layers.Dropout):  # dropout does nothing at inference
                raise ValueError(
                    f"layer {layer.name!r} ({type(layer).__name__}) is not one of "
                    "build_model's layers"
                )
        if not self._head or self._head[-1].units != 1:
            raise ValueError("the model must end in a Dense layer of one unit")
        if not self._clones and self._pooling is None:
            raise ValueError("the model has neither RNN layers nor a mean of word vectors")
        signature = [tf.TensorSpec((None, None), tf.int32)]
        self._states_function = tf.function(self._states_and_logits, input_signature=signature)
        self._gradients_function = tf.function(self._gradients, input_signature=signature)
        self._summaries_function = tf.function(self._unit_summaries, input_signature=signature)
        self._reader = None  # reads unit summaries forward only, where it computes the model
        if fused and self.has_rnn:
            from rnnkit.fused import FusedReader

            self._reader = FusedReader.of(model)

    # --- structure ---------------------------------------------------------------------------

    def _add_rnn_layer(self, layer, features: int, fused: bool) -> int:
        """Clone each direction of `layer` as a sequence layer with its weights; the width of
        the layer's output (the next layer's features)."""
        from keras import layers

        bidirectional = isinstance(layer, layers.Bidirectional)
        if bidirectional and layer.merge_mode != "concat":
            raise ValueError(f"{layer.name!r} merges its directions by {layer.merge_mode!r}")
        parts = [layer.forward_layer, layer.backward_layer] if bidirectional else [layer]
        number = len(self._clones) + 1
        clones = []
        for part in parts:
            direction = Direction(number, bool(part.go_backwards), part.units, bidirectional)
            self.directions.append(direction)
            clones.append(_sequence_clone(part, features, fused))
        self._clones.append(clones)
        return sum(part.units for part in parts)

    @property
    def has_rnn(self) -> bool:
        """Whether the model has RNN layers (else it averages the word vectors)."""
        return bool(self.directions)

    @property
    def last_directions(self) -> list[str]:
        """The names of the directions the memory profile follows: the last RNN layer's, or
        MEAN_OF_WORD_VECTORS."""
        if not self.has_rnn:
            return [MEAN_OF_WORD_VECTORS]
        last = self.directions[-1].layer
        return [direction.name for direction in self.directions if direction.layer == last]

    def direction(self, name: str) -> Direction:
        """The direction called `name` (`Direction.name`)."""
        for direction in self.directions:
            if direction.name == name:
                return direction
        raise ValueError(f"the model has no direction {name!r}")

    # --- TensorFlow functions ----------------------------------------------------------------

    def _mask(self, tokens):
        import tensorflow as tf

        return tf.not_equal(tokens, PAD_ID) if self.masked else None

    def _sequences(self, embedded, mask) -> list:
        """Every direction's states (batch, time, units), in input order."""
        import tensorflow as tf

        hidden, sequences = embedded, []
        for clones in self._clones:
            outputs = None
            if self._fused and len(clones) > 1:  # both directions at once, in input order
                from rnnkit.fused import fused_states

                outputs = fused_states(clones, hidden, mask)
            if outputs is None:
                outputs = []
                for clone in clones:
                    output = clone(hidden, mask=mask)  # (batch, time, units), in the order run
                    outputs.append(tf.reverse(output, axis=[1]) if clone.go_backwards else output)
            sequences += outputs
            hidden = tf.concat(outputs, axis=-1) if len(outputs) > 1 else outputs[0]
        return sequences

    def _finals(self, embedded, mask, sequences) -> list:
        """What the head reads: each last-layer direction's state where it finishes (the
        forward one's at the last step, which it carries over masked steps; the backward
        one's at the first), or the mean of the word vectors."""
        if self._pooling is not None:
            return [self._pooling(embedded, mask=mask)]  # (batch, embedding_dim)
        last = self.directions[-1].layer
        return [
            sequence[:, 0] if direction.backward else sequence[:, -1]
            for direction, sequence in zip(self.directions, sequences, strict=True)
            if direction.layer == last
        ]

    def _logit(self, finals: list):
        """(batch,) the probability layer's input: the logit, before the sigmoid."""
        import tensorflow as tf
        from keras import ops

        hidden = tf.concat(finals, axis=-1) if len(finals) > 1 else finals[0]
        for layer in self._head[:-1]:
            hidden = layer(hidden)
        output = self._head[-1]
        return (ops.matmul(hidden, output.kernel) + output.bias)[:, 0]

    def _states_and_logits(self, tokens):
        embedded = self._embedding(tokens)
        mask = self._mask(tokens)
        sequences = self._sequences(embedded, mask)
        return sequences, self._logit(self._finals(embedded, mask, sequences))

    def _unit_summaries(self, tokens):
        """Per direction, (batch, units) each: the state where it finishes; the highest state
        at a word and its step; the highest negated state at a word and its step. And the
        logits. Reduced here, so that a pass over many reviews hands back little."""
        import tensorflow as tf

        sequences, logits = self._states_and_logits(tokens)
        words = tf.not_equal(tokens, PAD_ID)[:, :, None]  # (batch, time, 1)
        summaries = []
        for direction, sequence in zip(self.directions, sequences, strict=True):
            summary = [sequence[:, 0] if direction.backward else sequence[:, -1]]
            for signed in (sequence, -sequence):
                candidates = tf.where(words, signed, float("-inf"))  # (batch, time, units)
                summary += [
                    tf.reduce_max(candidates, axis=1),
                    tf.argmax(candidates, axis=1, output_type=tf.int32),
                ]
            summaries.append(summary)
        return summaries, logits

    def _gradients(self, tokens):
        """Per last-layer direction, (batch, time): the L2 norm of the gradient of the logit
        with respect to each position's word vector, through that direction only."""
        import tensorflow as tf

        embedded = self._embedding(tokens)
        mask = self._mask(tokens)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(embedded)
            finals = self._finals(embedded, mask, self._sequences(embedded, mask))
            # A review's logit depends on no other review: the gradient of the batch's sum is
            # each review's own gradient.
            logits = [
                tf.reduce_sum(
                    self._logit(
                        [
                            final if index == chosen else tf.stop_gradient(final)
                            for index, final in enumerate(finals)
                        ]
                    )
                )
                for chosen in range(len(finals))
            ]
        gradients = [tape.gradient(logit, embedded) for logit in logits]
        del tape
        return [tf.norm(gradient, axis=-1) for gradient in gradients]

    # --- NumPy results -----------------------------------------------------------------------

    def states(self, tokens: np.ndarray) -> dict[str, np.ndarray]:
        """The hidden state of every RNN direction at every step.

        Args:
            tokens: (batch, time) token ids, padded as the model was trained.

        Returns:
            Direction name to (batch, time, units) float32, in input positions: the state
            after the direction read that step (a backward direction has then read it and
            every later step). At a masked step, the state it carries over. {} for a model
            without an RNN.
        """
        if not self.has_rnn:
            return {}
        sequences, _ = self._states_function(_as_tokens(tokens))
        return {
            direction.name: np.array(sequence, np.float32)  # a copy: the fused loop reuses
            for direction, sequence in zip(self.directions, sequences, strict=True)
        }

    def states_and_logits(self, tokens: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """`states(tokens)` and `logits(tokens)` from one pass."""
        sequences, logits = self._states_function(_as_tokens(tokens))
        states = {
            direction.name: np.array(sequence, np.float32)
            for direction, sequence in zip(self.directions, sequences, strict=True)
        }
        return states, np.array(logits, np.float32)

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        """(batch,) float32 logits: the model's probability is their sigmoid."""
        return self.states_and_logits(tokens)[1]

    def unit_summaries(self, tokens: np.ndarray) -> tuple[dict[str, dict], np.ndarray]:
        """What a search over many reviews needs of each, from one pass.

        Args:
            tokens: (batch, time) token ids, padded as the model was trained.

        Returns:
            (summaries, logits): direction name to {"final": the state where the direction
            finishes, "highest" and "lowest": each unit's highest and lowest state at a word
            (-inf and +inf for a row without words), "highest_at" and "lowest_at": the steps},
            each (batch, units); and the (batch,) logits.
        """
        if self._reader is not None:
            return self._read_unit_summaries(_as_tokens(tokens))
        summaries, logits = self._summaries_function(_as_tokens(tokens))
        results = {}
        for direction, (final, high, high_at, low, low_at) in zip(
            self.directions, summaries, strict=True
        ):
            results[direction.name] = {
                "final": np.asarray(final),
                "highest": np.asarray(high),
                "highest_at": np.asarray(high_at),
                "lowest": -np.asarray(low),
                "lowest_at": np.asarray(low_at),
            }
        return results, np.asarray(logits)

    def _read_unit_summaries(self, tokens: np.ndarray) -> tuple[dict[str, dict], np.ndarray]:
        """`unit_summaries` by the `FusedReader`: each layer's states time-major, reduced by
        compiled loops (TensorFlow's where, max and argmax took longer than the pass itself)."""
        from rnnkit.fused import word_extremes

        outputs, logits = self._reader.layer_outputs(tokens)
        words = tokens.T != PAD_ID  # (time, batch)
        results = {}
        directions = iter(self.directions)
        for output, clones in zip(outputs, self._clones, strict=True):
            extremes = word_extremes(output, words)  # (batch, width) each
            start = 0
            for _ in clones:
                direction = next(directions)
                columns = slice(start, start + direction.units)
                start += direction.units
                high, high_at, low, low_at = (extreme[:, columns] for extreme in extremes)
                results[direction.name] = {
                    "final": np.array(output[0 if direction.backward else -1, :, columns]),
                    "highest": high,
                    "highest_at": high_at,
                    "lowest": low,
                    "lowest_at": low_at,
                }
        return results, np.asarray(logits, np.float32)

    def release(self) -> None:
        """Give back the arrays a pass over many batches kept for the next one."""
        if self._reader is not None:
            self._reader.release()

    def position_gradients(self, tokens: np.ndarray) -> dict[str, np.ndarray]:
        """How strongly the logit depends on each position's word vector, through each
        direction of the last RNN layer (the other direction's contribution held fixed).

        Args:
            tokens: (batch, time) token ids, padded as the model was trained.

        Returns:
            Name (`last_directions`) to (batch, time) float32: the L2 norm of the gradient of
            the logit with respect to the word vector at each step; 0 at masked steps.
        """
        gradients = self._gradients_function(_as_tokens(tokens))
        return {
            name: np.array(gradient, np.float32)
            for name, gradient in zip(self.last_directions, gradients, strict=True)
        }


def _as_tokens(tokens: np.ndarray) -> np.ndarray:
    tokens = np.asarray(tokens, dtype=np.int32)
    if tokens.ndim != 2 or tokens.shape[1] == 0:
        raise ValueError(f"tokens must be a (batch, time) array with time > 0, not {tokens.shape}")
    return tokens


def _sequence_clone(layer, features: int, fused: bool):
    """`layer` (one direction) as a layer that returns every step's state, its masked steps
    carrying the state, with the trained weights."""
    from keras import layers

    settings = {
        **layer.get_config(),
        "return_sequences": True,
        "return_state": False,
        "zero_output_for_mask": False,
    }
    kind = type(layer)
    if isinstance(layer, layers.SimpleRNN):  # FusedSimpleRNN is one too
        kind = layers.SimpleRNN
        if fused:  # it computes Keras' layer where it can, and is Keras' layer elsewhere
            from rnnkit.fused import FusedSimpleRNN

            kind = FusedSimpleRNN
    clone = kind.from_config(settings)
    clone.build((None, None, features))
    clone.set_weights(layer.get_weights())
    return clone


# --- the state along one review -----------------------------------------------------------------


def state_changes(states: np.ndarray, backward: bool) -> np.ndarray:
    """How far the state moves at each step: ||h_t - h_before||, where h_before is the state
    before the direction read step t (zero before its first step).

    Args:
        states: (time, units) one direction's states in input positions.
        backward: the direction reads from the last step to the first.

    Returns:
        (time,) float32; 0 where a masked step keeps the state.
    """
    states = np.asarray(states, np.float32)
    zero = np.zeros((1, states.shape[1]), np.float32)
    # (time, units): the state each step started from
    before = np.concatenate([states[1:], zero] if backward else [zero, states[:-1]])
    return np.linalg.norm(states - before, axis=1).astype(np.float32)


def review_steps(ids: np.ndarray, vocab: Vocabulary, masked: bool) -> pd.DataFrame:
    """One padded row as the model reads it, a row per step.

    Args:
        ids: (time,) token ids, padded as in training.
        vocab: the vocabulary of the run's data.
        masked: the model skips the padding.

    Returns:
        Columns step, word (as the vocabulary has it; "<PAD>" for padding) and reads ("word",
        "padding, read" or "padding, skipped").
    """
    ids = np.asarray(ids)
    padding = ids == PAD_ID
    return pd.DataFrame(
        {
            "step": np.arange(len(ids)),
            "word": [vocab.id_to_word(int(word_id)) for word_id in ids],
            "reads": np.where(padding, "padding, skipped" if masked else "padding, read", "word"),
        }
    )


def step_frame(steps: pd.DataFrame, states: np.ndarray, backward: bool) -> pd.DataFrame:
    """`review_steps` with a chart label ("12 great") and the size of each step's change of
    one direction's state (`state_changes`), for `charts.hidden_state`.

    Args:
        steps: `review_steps` of the row.
        states: (time, units) the direction's states along it.
        backward: the direction reads from the last step to the first.
    """
    return steps.assign(
        label=[f"{step} {word}" for step, word in zip(steps["step"], steps["word"], strict=True)],
        change=state_changes(states, backward),
    )


def state_frame(steps: pd.DataFrame, states: np.ndarray) -> pd.DataFrame:
    """One direction's states as a long table for a heatmap: step, label, word, unit, state.

    Args:
        steps: `step_frame` of the row.
        states: (time, units).
    """
    time, units = states.shape
    return pd.DataFrame(
        {
            "step": np.repeat(steps["step"].to_numpy(), units),
            "label": pd.Categorical(np.repeat(steps["label"].to_numpy(), units)),
            "word": pd.Categorical(np.repeat(steps["word"].to_numpy(), units)),
            "unit": np.tile(np.arange(units), time),
            "state": np.asarray(states, np.float32).reshape(-1),
        }
    )


def steps_near_words(ids: np.ndarray, padding_shown: int = PADDING_SHOWN) -> slice:
    """The steps of a padded row from `padding_shown` steps before its first word to as many
    after its last (a row without words: its first `padding_shown` steps)."""
    words = np.flatnonzero(np.asarray(ids) != PAD_ID)
    if len(words) == 0:
        return slice(0, min(len(ids), padding_shown))
    return slice(max(0, words[0] - padding_shown), min(len(ids), words[-1] + 1 + padding_shown))


def padded_rows(sequences: Sequence[np.ndarray], config: TrainConfig) -> np.ndarray:
    """Token-id sequences padded and cut exactly as training pads them (the config's
    max_length, padding and truncating): (len(sequences), max_length) int32."""
    settings = config.data
    return pad(sequences, settings.max_length, settings.padding, settings.truncating)


def _batches(tokens: np.ndarray, masked: bool, size: int = BATCH_SIZE):
    """(rows, batch tokens, first column kept) for a pass over padded rows: under a mask, rows
    of similar length, each batch cut to its words; without, in order and whole."""
    for rows in forward_batches(tokens, size, masked):
        if masked:
            batch, first = _cut_padding(tokens[rows])
            yield rows, batch, first
        else:
            yield rows, tokens[rows], 0


# --- how far back each direction remembers ------------------------------------------------------


@dataclass(frozen=True)
class MemoryProfile:
    """The size of the gradient of the logit by distance from where each direction finishes
    reading, averaged over reviews: `memory_profile`'s result."""

    curves: pd.DataFrame  # direction, distance, gradient (relative), reviews (having it)
    reviews: int  # reviews averaged over

    def reach(self) -> dict[str, int]:
        """Per direction, how far back its curve stays at MEMORY_SHARE of its peak or more
        without a break: the last distance before it first falls below (0 when it starts
        below). A SimpleRNN's curve can rise again at the largest distances (a direction's
        first steps start from a zero state, where its small states amplify what they read
        before they saturate); that rise is not counted."""
        reaches = {}
        for name, curve in self.curves.groupby("direction", sort=False):
            gradient, distance = curve["gradient"].to_numpy(), curve["distance"].to_numpy()
            weak = np.flatnonzero(gradient < MEMORY_SHARE * gradient.max())
            if len(weak) == 0:
                reaches[name] = int(distance[-1])
            else:
                reaches[name] = int(distance[weak[0] - 1]) if weak[0] > 0 else 0
        return reaches

    @property
    def memory_steps(self) -> int:
        """The run's number: how far back the better direction reaches (`reach`)."""
        return max(self.reach().values(), default=0)

    @property
    def every_position(self) -> bool:
        """Whether a direction never falls below MEMORY_SHARE of its peak at any distance the
        reviews have: it weighs every position it reads."""
        return any(
            bool(np.all(curve["gradient"] >= MEMORY_SHARE * curve["gradient"].max()))
            for _, curve in self.curves.groupby("direction", sort=False)
        )

    @property
    def memory_text(self) -> str:
        """The number for a table: "37", or "every position"."""
        return "every position" if self.every_position else str(self.memory_steps)


def _distances(read: np.ndarray, backward: bool) -> np.ndarray:
    """(batch, time) each step's distance from where the direction finishes reading (the
    last step it reads, or for a backward direction the first); -1 where it reads nothing."""
    time = read.shape[1]
    positions = np.arange(time)[None, :]
    if backward:
        finish = np.argmax(read, axis=1)[:, None]  # the first step read
        distance = positions - finish
    else:
        finish = time - 1 - np.argmax(read[:, ::-1], axis=1)[:, None]  # the last step read
        distance = finish - positions
    return np.where(read & (distance >= 0), distance, -1)


def memory_profile(
    inspector: Inspector, tokens: np.ndarray, batch_size: int = BATCH_SIZE
) -> MemoryProfile:
    """How strongly each direction of the last RNN layer (or the mean of word vectors) makes
    the logit depend on the word vector at each distance back from where it finishes reading.

    Each review's gradient sizes (`Inspector.position_gradients`) are divided by their mean
    over the steps that direction reads, so long and short reviews, and runs of any scale,
    compare: 1 is an average position of the review. The mean of word vectors weighs every
    position alike, so its curve is flat at 1. Distances are then averaged over the reviews
    that have them.

    Args:
        inspector: the model.
        tokens: (reviews, time) token ids, padded as in training.
        batch_size: reviews per pass.

    Returns:
        The `MemoryProfile`; its curves hold a row per direction and distance that some review
        has.
    """
    tokens = _as_tokens(tokens)
    time = tokens.shape[1]
    names = inspector.last_directions
    sums = {name: np.zeros(time) for name in names}
    counts = {name: np.zeros(time, np.int64) for name in names}
    for _, batch, _ in _batches(tokens, inspector.masked, batch_size):
        read = _read_steps(batch, inspector.masked)
        for name, gradient in inspector.position_gradients(batch).items():
            backward = name != MEAN_OF_WORD_VECTORS and inspector.direction(name).backward
            distance = _distances(read, backward)
            valid = distance >= 0
            scale = np.where(valid, gradient, 0).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
            kept = valid & (scale[:, None] > 0)  # a review whose logit ignores it all: left out
            relative = gradient / np.where(scale > 0, scale, 1)[:, None]
            sums[name] += np.bincount(distance[kept], relative[kept], minlength=time)[:time]
            counts[name] += np.bincount(distance[kept], minlength=time)[:time]
    frames = []
    for name in names:
        present = np.flatnonzero(counts[name])
        frames.append(
            pd.DataFrame(
                {
                    "direction": name,
                    "distance": present,
                    "gradient": sums[name][present] / counts[name][present],
                    "reviews": counts[name][present],
                }
            )
        )
    return MemoryProfile(pd.concat(frames, ignore_index=True), reviews=len(tokens))


def direction_kind(name: str) -> str:
    """ "forward", "backward", "one way" (a one-way layer) or MEAN_OF_WORD_VECTORS."""
    if name == MEAN_OF_WORD_VECTORS:
        return name
    return name.rsplit(" ", 1)[-1] if name.endswith(("forward", "backward")) else "one way"


def memory_frames(profiles: dict[str, MemoryProfile]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The memory profiles of several runs, for `charts.memory_curves`.

    Args:
        profiles: a label per run to its profile.

    Returns:
        (curves, marks): curves has run, direction, kind (`direction_kind`), distance,
        gradient, reviews, without zero gradients; marks a row per run: its better
        direction's memory reach (distance) and the curve's value there.
    """
    curves, marks = [], []
    for label, profile in profiles.items():
        curve = profile.curves.assign(
            run=label, kind=profile.curves["direction"].map(direction_kind)
        )
        curves.append(curve[curve["gradient"] > 0])
        reaches = profile.reach()
        better = max(reaches, key=reaches.get)
        at = curve[(curve["direction"] == better) & (curve["distance"] == reaches[better])]
        marks.append(at[["run", "direction", "distance", "gradient"]])
    columns = ["run", "direction", "kind", "distance", "gradient", "reviews"]
    if not curves:
        return pd.DataFrame(columns=columns), pd.DataFrame(columns=columns[:2] + columns[3:5])
    return (
        pd.concat(curves, ignore_index=True)[columns],
        pd.concat(marks, ignore_index=True),
    )


def profile_sample(test_reviews: int, reviews: int = PROFILE_REVIEWS) -> np.ndarray:
    """The test reviews a memory profile averages over: the same seeded sample for every run.

    Returns:
        Sorted indices into the test split (all of them when there are fewer).
    """
    if test_reviews <= reviews:
        return np.arange(test_reviews)
    rows = np.random.default_rng(SAMPLE_SEED).choice(test_reviews, reviews, replace=False)
    return np.sort(rows)


# --- what units respond to ----------------------------------------------------------------------


@dataclass(frozen=True)
class UnitSearch:
    """Per direction and unit, the test reviews where it is most active and its correlation
    with the logit: `search_units`' result. Positions index the review's tokens
    (`data.test.sequences[review]`)."""

    # direction name -> sign ("highest", "lowest") -> (values, reviews, positions), each
    # (TOP_WINDOWS, units), strongest first
    top: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]
    correlations: dict[str, np.ndarray]  # direction name -> (units,); NaN for a constant unit
    reviews: int  # test reviews searched

    def correlation_frame(self, name: str) -> pd.DataFrame:
        """Columns unit and correlation (of its state where the direction finishes with the
        logit, across the test reviews), strongest first."""
        frame = pd.DataFrame(
            {
                "unit": np.arange(len(self.correlations[name])),
                "correlation": self.correlations[name],
            }
        )
        order = np.argsort(-np.nan_to_num(np.abs(frame["correlation"].to_numpy())), kind="stable")
        return frame.iloc[order].reset_index(drop=True)


class _TopPerUnit:
    """The `keep` largest values per unit seen so far, with their review and position."""

    def __init__(self, keep: int, units: int) -> None:
        self.values = np.full((0, units), -np.inf, np.float32)
        self.reviews = np.zeros((0, units), np.int32)
        self.positions = np.zeros((0, units), np.int32)
        self.keep = keep

    def add(self, values: np.ndarray, reviews: np.ndarray, positions: np.ndarray) -> None:
        """Candidates, each (candidates, units)."""
        values = np.concatenate([self.values, values])
        reviews = np.concatenate([self.reviews, reviews])
        positions = np.concatenate([self.positions, positions])
        if len(values) > self.keep:
            chosen = np.argpartition(-values, self.keep - 1, axis=0)[: self.keep]
            values, reviews, positions = (
                np.take_along_axis(array, chosen, axis=0) for array in (values, reviews, positions)
            )
        self.values, self.reviews, self.positions = values, reviews, positions

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.argsort(-self.values, axis=0, kind="stable")  # strongest first
        return tuple(
            np.take_along_axis(array, order, axis=0)
            for array in (self.values, self.reviews, self.positions)
        )


def search_units(
    inspector: Inspector,
    tokens: np.ndarray,
    token_offsets: np.ndarray,
    keep: int = TOP_WINDOWS,
    batch_size: int = SEARCH_BATCH_SIZE,
    on_batch: Callable[[int, int], None] | None = None,
) -> UnitSearch:
    """Stream reviews through the model and keep, for every unit of every direction, the
    `keep` reviews where it reaches its highest values at a word (one place per review, so the
    windows differ) and those where it reaches its lowest, and the correlation across reviews
    of its state where the direction finishes with the logit. Memory stays bounded: one batch
    of states at a time.

    Args:
        inspector: the model (with an RNN).
        tokens: (reviews, time) token ids, padded as in training.
        token_offsets: (reviews,) what to add to a column of `tokens` to get the index in the
            review's own tokens (`token_offsets_of`).
        keep: reviews kept per unit and sign.
        batch_size: reviews per pass.
        on_batch: called with (reviews done, reviews) after each batch, for progress.

    Returns:
        The `UnitSearch`.
    """
    if not inspector.has_rnn:
        raise ValueError("the model has no RNN: it has no units to search")
    tokens = _as_tokens(tokens)
    top = {
        direction.name: {sign: _TopPerUnit(keep, direction.units) for sign in ("highest", "lowest")}
        for direction in inspector.directions
    }
    # Running sums for the correlations, in float64: (units,) per direction, and the logit's.
    sums = {
        direction.name: np.zeros((3, direction.units)) for direction in inspector.directions
    }  # sum x, sum x^2, sum x*y
    logit_sum = logit_squares = 0.0
    done = 0
    for rows, batch, first in _batches(tokens, inspector.masked, batch_size):
        summaries, logits = inspector.unit_summaries(batch)
        has_words = (batch != PAD_ID).any(axis=1)  # a window needs a word
        offsets = token_offsets[rows][:, None] + first  # column of batch -> review's token
        logits64 = logits.astype(np.float64)
        logit_sum += logits64.sum()
        logit_squares += (logits64**2).sum()
        for direction in inspector.directions:
            summary = summaries[direction.name]  # (batch, units) each
            for sign, factor in (("highest", 1.0), ("lowest", -1.0)):
                place = summary[f"{sign}_at"]  # each review's strongest step
                top[direction.name][sign].add(
                    factor * summary[sign][has_words],
                    np.broadcast_to(rows[:, None], place.shape)[has_words].astype(np.int32),
                    (place + offsets)[has_words].astype(np.int32),
                )
            final = summary["final"].astype(np.float64)
            sums[direction.name] += [
                final.sum(0),
                (final**2).sum(0),
                (final * logits64[:, None]).sum(0),
            ]
        done += len(rows)
        if on_batch is not None:
            on_batch(done, len(tokens))
    inspector.release()
    count = len(tokens)
    correlations = {}
    logit_variance = logit_squares / count - (logit_sum / count) ** 2
    for name, (total, squares, products) in sums.items():
        covariance = products / count - (total / count) * (logit_sum / count)
        variance = squares / count - (total / count) ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = covariance / np.sqrt(variance * logit_variance)
        correlation[(variance <= 1e-12) | (logit_variance <= 1e-12)] = np.nan
        correlations[name] = np.clip(correlation, -1.0, 1.0).astype(np.float32)
    results = {}
    for name, signs in top.items():
        results[name] = {}
        for sign, kept in signs.items():
            values, review_ids, positions = kept.result()
            results[name][sign] = (
                values * (1.0 if sign == "highest" else -1.0),
                review_ids,
                positions,
            )
    return UnitSearch(results, correlations, count)


def token_offsets_of(sequences: Sequence[np.ndarray], config: TrainConfig) -> np.ndarray:
    """(reviews,) for rows padded by `padded_rows`: what to add to a row's column to get the
    index in the review's own tokens (a pre-truncated review lost its first tokens; a
    pre-padded row starts with padding)."""
    settings = config.data
    lengths = np.array([len(sequence) for sequence in sequences], np.int64)
    kept = np.minimum(lengths, settings.max_length)
    dropped = lengths - kept if settings.truncating == "pre" else np.zeros_like(lengths)
    first_word = settings.max_length - kept if settings.padding == "pre" else np.zeros_like(kept)
    return (dropped - first_word).astype(np.int64)


def unit_windows(
    inspector: Inspector,
    search: UnitSearch,
    data: ImdbData,
    config: TrainConfig,
    name: str,
    unit: int,
    sign: Sign = "highest",
    width: int = WINDOW_WORDS,
) -> pd.DataFrame:
    """The words around the places where a unit is most active, with its value at each word.

    A forward direction's window ends at the place (the words it had read), a backward one's
    starts there.

    Args:
        inspector: the run's model.
        search: its `UnitSearch`.
        data: the reviews, loaded with the run's num_words.
        config: the run's configuration.
        name: the direction's name.
        unit: the unit, from 0.
        sign: "highest" or "lowest" values.
        width: words per window.

    Returns:
        A row per kept review, strongest first: review (test index), position (in its tokens),
        value, label ("pos"/"neg"), words (list of str), values (list of float, the unit's
        state at each word), place (the index of the strongest word within words).
    """
    from rnnkit.sources import LABEL_NAMES

    direction = inspector.direction(name)
    if not 0 <= unit < direction.units:
        raise ValueError(f"unit must be between 0 and {direction.units - 1}, not {unit!r}")
    values, reviews, positions = (array[:, unit] for array in search.top[name][sign])
    finite = np.isfinite(values)
    values, reviews, positions = values[finite], reviews[finite], positions[finite]
    if len(reviews) == 0:
        return pd.DataFrame(
            columns=["review", "position", "value", "label", "words", "values", "place"]
        )
    sequences = [data.test.sequences[int(review)] for review in reviews]
    rows = padded_rows(sequences, config)
    offsets = token_offsets_of(sequences, config)
    states = inspector.states(rows)[name][:, :, unit]  # (reviews, time)
    records = []
    for index, (review, position) in enumerate(zip(reviews, positions, strict=True)):
        sequence = sequences[index]
        # The tokens the row kept: a longer review lost its first (or last) ones.
        cut = len(sequence) - config.data.max_length
        first = max(0, cut) if config.data.truncating == "pre" else 0
        last = first + min(len(sequence), config.data.max_length)
        if direction.backward:
            start, end = position, min(last, position + width)
        else:
            start, end = max(first, position - width + 1), position + 1
        columns = np.arange(start, end) - offsets[index]
        records.append(
            {
                "review": int(review),
                "position": int(position),
                "value": float(values[index]),
                "label": LABEL_NAMES[int(data.test.labels[review])],
                "words": [data.vocab.id_to_word(int(word)) for word in sequence[start:end]],
                "values": [float(value) for value in states[index, columns]],
                "place": int(position - start),
            }
        )
    return pd.DataFrame(records)


# --- kept in the run's folder -------------------------------------------------------------------


@lru_cache(maxsize=256)
def _file_digest(path: str, size: int, modified: int) -> str:
    del size, modified  # the cache key: a rewritten file is hashed again
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def model_digest(store: RunStore, run_id: str) -> str:
    """The sha256 of a run's model file: a derived file names the model it was computed from
    (hashed once per state of the file)."""
    path = store.model_path(run_id)
    stat = path.stat()
    return _file_digest(str(path), stat.st_size, stat.st_mtime_ns)


def _profile_to_json(profile: MemoryProfile, digest: str, sample_size: int) -> dict[str, Any]:
    return {
        "format": FILE_FORMAT,
        "model": digest,
        "sample_size": sample_size,  # asked for (`profile_sample`)
        "sample_seed": SAMPLE_SEED,
        "reviews": profile.reviews,  # averaged over: fewer when the test split is smaller
        "curves": {
            name: {
                "distance": curve["distance"].tolist(),
                "gradient": curve["gradient"].tolist(),
                "reviews": curve["reviews"].tolist(),
            }
            for name, curve in profile.curves.groupby("direction", sort=False)
        },
    }


def _profile_from_json(
    stored: Any, digest: str, names: Sequence[str], sample_size: int, max_length: int
) -> MemoryProfile | None:
    """The profile a derived file holds, or None when it does not fit: another format, model,
    sample or set of directions, or values that no profile has."""
    if not isinstance(stored, dict) or stored.get("format") != FILE_FORMAT:
        return None
    if stored.get("model") != digest or stored.get("sample_seed") != SAMPLE_SEED:
        return None
    reviews, curves = stored.get("reviews"), stored.get("curves")
    if stored.get("sample_size") != sample_size or not isinstance(curves, dict):
        return None
    if isinstance(reviews, bool) or not isinstance(reviews, int) or not 0 < reviews <= sample_size:
        return None
    if list(curves) != list(names):
        return None
    frames = []
    for name, curve in curves.items():
        if not isinstance(curve, dict):
            return None
        try:
            distance = np.asarray(curve["distance"], dtype=np.float64)
            gradient = np.asarray(curve["gradient"], dtype=np.float64)
            counts = np.asarray(curve["reviews"], dtype=np.float64)
        except (TypeError, ValueError, KeyError):
            return None
        if not (distance.ndim == gradient.ndim == counts.ndim == 1) or not (
            len(distance) == len(gradient) == len(counts) > 0
        ):
            return None
        whole = np.all(distance == np.round(distance)) and np.all(counts == np.round(counts))
        if not whole or not np.all(np.diff(distance) > 0) or distance[0] < 0:
            return None
        if distance[-1] >= max_length or np.any(counts < 1) or np.any(counts > reviews):
            return None
        if not np.all(np.isfinite(gradient)) or np.any(gradient < 0):
            return None
        frames.append(
            pd.DataFrame(
                {
                    "direction": name,
                    "distance": distance.astype(np.int64),
                    "gradient": gradient,
                    "reviews": counts.astype(np.int64),
                }
            )
        )
    return MemoryProfile(pd.concat(frames, ignore_index=True), reviews=reviews)


def profile_directions(config: TrainConfig) -> list[str]:
    """The directions a run's memory profile follows, from its configuration alone: the last
    RNN layer's (`Direction.name`), or MEAN_OF_WORD_VECTORS."""
    model = config.model
    if not model.rnn_units:
        return [MEAN_OF_WORD_VECTORS]
    last = len(model.rnn_units)
    if not model.bidirectional:
        return [f"layer {last}"]
    return [f"layer {last} forward", f"layer {last} backward"]


def stored_memory_profile(
    store: RunStore, run_id: str, config: TrainConfig, reviews: int = PROFILE_REVIEWS
) -> MemoryProfile | None:
    """A run's memory profile as its folder keeps it, or None when it has none that fits the
    run's model file (never computed, or the file is damaged); nothing is computed.

    Args:
        store: the run store.
        run_id: a complete run.
        config: its configuration.
        reviews: the sample size the profile must have been averaged over.
    """
    try:
        stored = store.read_derived(run_id, PROFILE_FILE)
        digest = model_digest(store, run_id)
    except (OSError, ValueError):
        return None
    return _profile_from_json(
        stored, digest, profile_directions(config), reviews, config.data.max_length
    )


def run_memory_profile(
    store: RunStore,
    run: Run,
    data: ImdbData,
    inspector: Inspector,
    reviews: int = PROFILE_REVIEWS,
) -> MemoryProfile:
    """A run's memory profile over `reviews` test reviews (`profile_sample`): read from its
    folder, or computed and kept there.

    Args:
        store: the run store holding the run.
        run: a complete run of `data`.
        data: its reviews, loaded with the run's num_words.
        inspector: `Inspector(run.model())`.
        reviews: the sample size.

    Returns:
        The `MemoryProfile`.
    """
    config = TrainConfig.from_dict(run.config)
    stored = stored_memory_profile(store, run.run_id, config, reviews)
    if stored is not None:
        return stored
    digest = model_digest(store, run.run_id)  # before computing: the file it is computed from
    rows = profile_sample(len(data.test), reviews)
    profile = memory_profile(inspector, padded_rows(data.test.sequences[rows], config))
    store.write_derived(run.run_id, PROFILE_FILE, _profile_to_json(profile, digest, reviews))
    return profile


def _search_to_arrays(search: UnitSearch, digest: str) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FILE_FORMAT),
        "model": np.array(digest),
        "reviews": np.array(search.reviews),
        "directions": np.array(list(search.top)),
    }
    for index, (name, signs) in enumerate(search.top.items()):
        for sign, (values, review_ids, positions) in signs.items():
            arrays[f"{index}_{sign}_values"] = values
            arrays[f"{index}_{sign}_reviews"] = review_ids
            arrays[f"{index}_{sign}_positions"] = positions
        arrays[f"{index}_correlation"] = search.correlations[name]
    return arrays


def _search_from_arrays(
    arrays: Any, digest: str, directions: Sequence[Direction], lengths: np.ndarray
) -> UnitSearch | None:
    """The search a derived file holds, or None when it does not fit the model and the test
    reviews (another model file, other directions, wrong shapes or types, places that no
    review has)."""
    try:
        if int(arrays["format"]) != FILE_FORMAT or str(arrays["model"]) != digest:
            return None
        if [str(name) for name in arrays["directions"]] != [d.name for d in directions]:
            return None
        if int(arrays["reviews"]) != len(lengths):
            return None
        top, correlations = {}, {}
        for index, direction in enumerate(directions):
            top[direction.name] = {}
            for sign in ("highest", "lowest"):
                values = arrays[f"{index}_{sign}_values"]
                review_ids = arrays[f"{index}_{sign}_reviews"]
                positions = arrays[f"{index}_{sign}_positions"]
                shape = values.shape
                if len(shape) != 2 or shape[1] != direction.units or shape[0] > TOP_WINDOWS:
                    return None
                if review_ids.shape != shape or positions.shape != shape:
                    return None
                if values.dtype.kind != "f" or review_ids.dtype.kind not in "iu":
                    return None
                if positions.dtype.kind not in "iu":
                    return None
                if np.any(review_ids < 0) or np.any(review_ids >= len(lengths)):
                    return None
                if np.any(positions < 0) or np.any(positions >= lengths[review_ids]):
                    return None
                top[direction.name][sign] = (values, review_ids, positions)
            correlation = arrays[f"{index}_correlation"]
            if correlation.shape != (direction.units,) or correlation.dtype.kind != "f":
                return None
            if np.any(np.abs(correlation[np.isfinite(correlation)]) > 1):
                return None
            correlations[direction.name] = correlation
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return UnitSearch(top, correlations, len(lengths))


def stored_unit_search(
    store: RunStore, run: Run, data: ImdbData, inspector: Inspector
) -> UnitSearch | None:
    """A run's unit search as its folder keeps it, or None when it has none that fits its
    model file and these test reviews; nothing is computed."""
    try:
        arrays = store.read_derived(run.run_id, UNITS_FILE)
        digest = model_digest(store, run.run_id)
    except (OSError, ValueError):
        return None
    return _search_from_arrays(arrays, digest, inspector.directions, data.test.lengths)


def run_unit_search(
    store: RunStore,
    run: Run,
    data: ImdbData,
    inspector: Inspector,
    on_batch: Callable[[int, int], None] | None = None,
) -> UnitSearch:
    """Every unit's strongest places over all the test reviews and its correlation with the
    logit (`search_units`): read from the run's folder, or computed and kept there.

    Args:
        store: the run store holding the run.
        run: a complete run of `data`, with an RNN.
        data: its reviews, loaded with the run's num_words.
        inspector: `Inspector(run.model())`.
        on_batch: progress, as `search_units` calls it.

    Returns:
        The `UnitSearch`.
    """
    stored = stored_unit_search(store, run, data, inspector)
    if stored is not None:
        return stored
    digest = model_digest(store, run.run_id)
    config = TrainConfig.from_dict(run.config)
    sequences = data.test.sequences
    tokens = padded_rows(sequences, config)
    offsets = token_offsets_of(sequences, config)
    search = search_units(inspector, tokens, offsets, on_batch=on_batch)
    store.write_derived(run.run_id, UNITS_FILE, _search_to_arrays(search, digest))
    return search


def stored_memory_texts(store: RunStore, summaries: Sequence[RunSummary]) -> dict[str, str]:
    """The memory number (`MemoryProfile.memory_text`) of each complete run whose folder keeps
    a fitting memory profile, for the runs table; the others are left out. Reads a small file
    per run (and hashes its model file once): no model is loaded.

    Args:
        summaries: `RunStore.list_runs()`.

    Returns:
        Run id to its number as text.
    """
    texts = {}
    for summary in summaries:
        config = config_or_none(summary.config) if summary.status == "complete" else None
        if config is None:
            continue
        profile = stored_memory_profile(store, summary.run_id, config)
        if profile is not None:
            texts[summary.run_id] = profile.memory_text
    return texts
