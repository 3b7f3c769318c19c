"""Build the Keras model that a `TrainConfig` describes, and describe it without training.

`build_model(config)` gives a compiled Functional model:

    tokens (batch, time) int32
    -> Embedding                          (batch, time, embedding_dim)
    -> RNN layer 1 ... n, each optionally Bidirectional and followed by Dropout
                                          (batch, time, directions * units); the last layer
                                          gives (batch, directions * units)
       or, with no RNN layer, the mean of the word vectors (batch, embedding_dim), over each
       review's words only under the mask, followed by Dropout
    -> Dense(relu) layers, each followed by Dropout
    -> Dense(1, sigmoid)                  (batch, 1): the probability that a review is positive

The input takes any number of time steps, so one model serves every padding length. Dropout
layers appear only when `dropout_rate` > 0, so the seed preset is the course notebook's model
layer for layer. No random seed is set here: the trainer calls `keras.utils.set_random_seed`.

SimpleRNN layers without recurrent dropout are built as `rnnkit.fused`'s subclasses when
`RNNKIT_FUSED_RNN` is on (the default): the same weights and results, computed faster on CPUs.
`plain_copy` turns such a model back into one of Keras' own layers only, for saving.
`parameter_count` (from `rnnkit.architecture`) counts the model's parameters without building it.
"""

from __future__ import annotations

from functools import lru_cache

import keras
from keras import layers

from rnnkit.architecture import parameter_count
from rnnkit.config import TrainConfig
from rnnkit.devices import uses_fused_rnn

__all__ = [
    "build_model",
    "fast_copy",
    "has_fused_layers",
    "model_summary",
    "parameter_count",
    "plain_copy",
    "uses_fused_rnn",
]
_RNN_LAYERS = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}
_OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}


def build_model(config: TrainConfig, fused: bool | None = None) -> keras.Model:
    """Build and compile the model of `config`.

    Args:
        config: the run's settings; `config.model` gives the layers, `config.data.num_words`
            the embedding's input size and `config.training` the optimizer and learning rate.
        fused: compute SimpleRNN layers with `rnnkit.fused` (same weights and results); None:
            where `uses_fused_rnn(config)`.

    Returns:
        A compiled `keras.Model` (binary cross-entropy, accuracy) that maps int32 token ids of
        shape (batch, time), any time, to probabilities of shape (batch, 1).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, not {config!r}")
    model_config = config.model
    # L2 on every kernel (RNN input and recurrent kernels, Dense kernels), not on biases.
    regularizer = keras.regularizers.L2(model_config.l2) if model_config.l2 > 0 else None
    rnn_layer = _RNN_LAYERS[model_config.cell]
    bidirectional = layers.Bidirectional
    if fused is None:
        fused = uses_fused_rnn(config)
    if fused and model_config.cell == "simple_rnn":
        from rnnkit.fused import FusedBidirectional, FusedSimpleRNN

        rnn_layer, bidirectional = FusedSimpleRNN, FusedBidirectional
    prefix = "bidirectional_" if model_config.bidirectional else ""

    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")  # (batch, time)
    hidden = layers.Embedding(
        config.data.num_words,
        model_config.embedding_dim,
        mask_zero=model_config.mask_padding,
        name="embedding",
    )(tokens)  # (batch, time, embedding_dim)
    if not model_config.rnn_units:  # no RNN: the bag-of-words baseline
        # (batch, embedding_dim); Keras averages over the unmasked steps when there is a mask
        hidden = layers.GlobalAveragePooling1D(name="mean_of_word_vectors")(hidden)
        if model_config.dropout_rate > 0:
            hidden = layers.Dropout(model_config.dropout_rate, name="dropout_mean")(hidden)
    for number, units in enumerate(model_config.rnn_units, start=1):
        rnn = rnn_layer(
            units,
            return_sequences=number < len(model_config.rnn_units),
            recurrent_dropout=model_config.recurrent_dropout_rate,
            kernel_regularizer=regularizer,
            recurrent_regularizer=regularizer,
            name=f"{model_config.cell}_{number}",
        )
        if model_config.bidirectional:
            rnn = bidirectional(rnn, name=f"{model_config.cell}_{number}")
        # (batch, time, directions * units), or (batch, directions * units) for the last layer
        hidden = rnn(hidden)
        if model_config.dropout_rate > 0:
            hidden = layers.Dropout(
                model_config.dropout_rate, name=f"dropout_{model_config.cell}_{number}"
            )(hidden)
    for number, units in enumerate(model_config.dense_units, start=1):
        hidden = layers.Dense(
            units, activation="relu", kernel_regularizer=regularizer, name=f"dense_{number}"
        )(hidden)  # (batch, units)
        if model_config.dropout_rate > 0:
            hidden = layers.Dropout(model_config.dropout_rate, name=f"dropout_dense_{number}")(
                hidden
            )
    probability = layers.Dense(
        1, activation="sigmoid", kernel_regularizer=regularizer, name="probability"
    )(hidden)  # (batch, 1)

    name = f"{prefix}{model_config.cell}" if model_config.rnn_units else "mean_of_word_vectors"
    model = keras.Model(tokens, probability, name=name)
    model.compile(
        optimizer=_OPTIMIZERS[config.training.optimizer](
            learning_rate=config.training.learning_rate
        ),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def has_fused_layers(model: keras.Model) -> bool:
    """Whether `model` computes some RNN layers with `rnnkit.fused` (`build_model` chose to)."""
    return any(type(layer).__module__ == "rnnkit.fused" for layer in model.layers)


def plain_copy(model: keras.Model, config: TrainConfig) -> keras.Model:
    """`model` (of `config`) rebuilt from Keras' own layers with the same weights and optimizer
    state: a saved model that loads with Keras alone, whatever computed it."""
    plain = build_model(config, fused=False)
    plain.set_weights(model.get_weights())
    if model.optimizer.built:  # and the optimizer's state (its moments, step count) too
        plain.optimizer.build(plain.trainable_variables)
        for target, source in zip(
            plain.optimizer.variables, model.optimizer.variables, strict=True
        ):
            target.assign(source)
    return plain


def fast_copy(model: keras.Model, config: TrainConfig) -> keras.Model:
    """`model` (of `config`, e.g. a saved run's, of Keras' own layers) with its SimpleRNN layers
    computed by `rnnkit.fused` where `uses_fused_rnn(config)`: the same weights and function,
    faster on a CPU. Elsewhere, or when it has them already, the model itself. For predictions
    only: the copy's optimizer starts afresh."""
    if has_fused_layers(model) or not uses_fused_rnn(config):
        return model
    fast = build_model(config, fused=True)
    fast.set_weights(model.get_weights())
    return fast


@lru_cache(maxsize=128)
def model_summary(config: TrainConfig) -> str:
    """Keras' summary of the model of `config`, as plain text (no colors), for a UI to show.

    Args:
        config: the run's settings.

    Returns:
        The table of layers, output shapes and parameter counts, with the totals.
    """
    lines: list[str] = []
    build_model(config, fused=False).summary(line_length=80, print_fn=lines.append)
    return "\n".join(lines).rstrip()
