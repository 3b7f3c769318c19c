"""The model counted without building it: every layer's name, output shape and parameter count
against the Keras model `build_model` makes, for every cell, direction and depth."""

from __future__ import annotations

import pytest

from rnnkit.architecture import layer_table, parameter_count
from rnnkit.config import LIMITS, TrainConfig, preset
from rnnkit.model import build_model


def keras_layers(config: TrainConfig) -> list[tuple[str, str, int]]:
    model = build_model(config, fused=False)
    return [
        (layer.name, str(layer.output.shape), layer.count_params()) for layer in model.layers[1:]
    ]


def counted_layers(config: TrainConfig) -> list[tuple[str, str, int]]:
    return [(layer.name, layer.output_shape, layer.parameters) for layer in layer_table(config)]


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("rnn_units", ["none", "5", "5,3", "4,3,2", "2,3,4,5"])
def test_every_layer_is_counted_as_keras_builds_it(cell, bidirectional, rnn_units):
    config = TrainConfig().with_overrides(
        {
            "data.num_words": "37",
            "model.embedding_dim": "6",
            "model.cell": cell,
            "model.bidirectional": str(bidirectional),
            "model.rnn_units": rnn_units,
            "model.dense_units": "7,2",
            "model.dropout_rate": "0.25",
        }
    )
    assert counted_layers(config) == keras_layers(config)
    assert parameter_count(config) == build_model(config, fused=False).count_params()


@pytest.mark.parametrize("name", ["seed", "notebook", "recommended", "best_rnn"])
def test_the_presets_are_counted_as_keras_builds_them(name):
    assert counted_layers(preset(name)) == keras_layers(preset(name))


def test_the_largest_configuration_is_counted_at_once():
    # Every setting at its limit: about 4 billion parameters, never allocated to count them.
    largest = TrainConfig().with_overrides(
        {
            "data.num_words": str(LIMITS["data.num_words"].high),
            "model.embedding_dim": str(LIMITS["model.embedding_dim"].high),
            "model.cell": "lstm",
            "model.rnn_units": ",".join(["1024"] * 4),
            "model.dense_units": ",".join(["1024"] * 4),
        }
    )
    embedding = 200_000 * 1024
    # Each LSTM direction: 4 gates of (inputs + units + 1) * units; inputs 1024, then 2048.
    first = 2 * 4 * (1024 + 1024 + 1) * 1024
    later = 2 * 4 * (2048 + 1024 + 1) * 1024
    dense = (2048 * 1024 + 1024) + 3 * (1024 * 1024 + 1024) + (1024 + 1)
    assert parameter_count(largest) == embedding + first + 3 * later + dense
