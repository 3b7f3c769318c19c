"""The model a config describes, layer by layer, counted without building it.

`layer_table(config)` lists the layers `rnnkit.model.build_model` makes, in order, with Keras'
names, output shapes and parameter counts, and the multiply-adds each computes: per time step
for the embedding's followers that read every step (the RNN layers, or the mean of the word
vectors), per review for the rest. It is arithmetic on the config: a page may show the size of
any configuration a visitor types, up to every `LIMITS`, without allocating its weights
(`tests/test_model.py` checks every count against Keras for every cell, direction and depth).
"""

from __future__ import annotations

from dataclasses import dataclass

from rnnkit.config import TrainConfig

# Weight matrices of a cell per unit, in Keras' layout: an LSTM has four gates, a GRU three.
GATES = {"simple_rnn": 1, "gru": 3, "lstm": 4}


@dataclass(frozen=True)
class Layer:
    """One layer of the model."""

    name: str  # as Keras names it in `build_model`
    kind: str  # "Embedding", "Bidirectional(SimpleRNN)", "Dense", ...
    output_shape: str  # as Keras' summary prints it: "(None, None, 16)"
    parameters: int
    step_macs: int  # multiply-adds per time step of a review (the recurrence, the mean)
    review_macs: int  # multiply-adds per review outside the time steps


def _rnn_parameters(cell: str, inputs: int, units: int) -> int:
    """One direction of one RNN layer: input and recurrent kernels and the bias (Keras' GRU,
    with `reset_after`, has two bias vectors)."""
    gates = GATES[cell]
    biases = 2 if cell == "gru" else 1
    return gates * (inputs * units + units * units) + biases * gates * units


def layer_table(config: TrainConfig) -> list[Layer]:
    """The layers of `build_model(config)`, in order, counted (see the module doc).

    Args:
        config: the run's settings; `config.model` and `config.data.num_words` matter.

    Returns:
        One `Layer` per Keras layer, the input layer left out.
    """
    model = config.model
    directions = 2 if model.bidirectional else 1
    layers = [
        Layer(
            "embedding",
            "Embedding",
            f"(None, None, {model.embedding_dim})",
            config.data.num_words * model.embedding_dim,
            0,
            0,
        )
    ]
    width = model.embedding_dim
    dropout = model.dropout_rate > 0

    def dropout_after(name: str, shape: str) -> None:
        if dropout:
            layers.append(Layer(name, "Dropout", shape, 0, 0, 0))

    if not model.rnn_units:
        shape = f"(None, {width})"
        layers.append(Layer("mean_of_word_vectors", "GlobalAveragePooling1D", shape, 0, width, 0))
        dropout_after("dropout_mean", shape)
    cell_name = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}[model.cell]
    for number, units in enumerate(model.rnn_units, start=1):
        last = number == len(model.rnn_units)
        outputs = directions * units
        shape = f"(None, {outputs})" if last else f"(None, None, {outputs})"
        parameters = directions * _rnn_parameters(model.cell, width, units)
        macs = directions * GATES[model.cell] * (width * units + units * units)
        kind = f"Bidirectional({cell_name})" if model.bidirectional else cell_name
        name = f"{model.cell}_{number}"
        layers.append(Layer(name, kind, shape, parameters, macs, 0))
        dropout_after(f"dropout_{name}", shape)
        width = outputs
    for number, units in enumerate((*model.dense_units, 1), start=1):
        output = number > len(model.dense_units)
        name = "probability" if output else f"dense_{number}"
        shape = f"(None, {units})"
        layers.append(Layer(name, "Dense", shape, width * units + units, 0, width * units))
        if not output:
            dropout_after(f"dropout_dense_{number}", shape)
        width = units
    return layers


def parameter_count(config: TrainConfig) -> int:
    """How many trainable parameters the model of `config` has (the seed preset: 203,393),
    counted without building it."""
    return sum(layer.parameters for layer in layer_table(config))
