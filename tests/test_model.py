"""build_model: the notebook's model to the parameter, variants counted by hand, masking."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rnnkit.config import TrainConfig, preset
from rnnkit.model import build_model, has_fused_layers, model_summary, parameter_count

# A small model whose parameters are easy to count: 100 words, 8-dim embedding, one RNN layer of
# 4 units, one Dense layer of 3 units.
COUNTABLE = {"data.num_words": 100, "embedding_dim": 8, "rnn_units": (4,), "dense_units": (3,)}


def countable_config(**overrides: object) -> TrainConfig:
    return TrainConfig().with_overrides({**COUNTABLE, **overrides})


@pytest.mark.parametrize("name", ["notebook", "seed"])
def test_notebook_and_seed_models_are_the_notebooks_to_the_parameter(name):
    config = preset(name)
    model = build_model(config)
    # Embedding 10000*16 = 160,000; BiSimpleRNN(64) on 16: 2*(16*64 + 64*64 + 64) = 10,368;
    # BiSimpleRNN(64) on 128: 2*(128*64 + 64*64 + 64) = 24,704; Dense(64) on 128: 8,256;
    # Dense(1) on 64: 65.
    assert model.count_params() == 203_393
    assert parameter_count(config) == 203_393
    # The default build computes with rnnkit.fused's subclasses of these Keras layers.
    plain = build_model(config, fused=False)
    assert [type(layer).__name__ for layer in plain.layers] == [
        "InputLayer",
        "Embedding",
        "Bidirectional",
        "Bidirectional",
        "Dense",
        "Dense",
    ]
    for fused_layer, plain_layer in zip(model.layers, plain.layers, strict=True):
        assert isinstance(fused_layer, type(plain_layer))
    first_rnn, second_rnn = model.layers[2], model.layers[3]
    assert isinstance(first_rnn.forward_layer, keras.layers.SimpleRNN)
    assert (
        first_rnn.forward_layer.return_sequences and not second_rnn.forward_layer.return_sequences
    )
    assert model.layers[4].activation is keras.activations.relu
    assert model.layers[5].activation is keras.activations.sigmoid
    assert model.layers[1].mask_zero == (name == "seed")  # seed skips the padding
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001)
    assert model.loss == "binary_crossentropy"
    assert "Total params: 203,393" in model_summary(config)


def test_best_rnn_model_predicts_one_probability_per_review():
    config = preset("best_rnn")
    # Embedding 20000*32 = 640,000; BiLSTM(32) on 32: 2*4*(32*32 + 32*32 + 32) = 16,640;
    # Dense(1) on 32+32: 65.
    assert parameter_count(config) == 656_705
    model = build_model(config)
    short = np.array([[1, 14, 22, 16, 0, 0], [1, 43, 530, 973, 1622, 1385]], dtype="int32")
    longer = np.random.default_rng(0).integers(1, 10000, size=(3, 17)).astype("int32")
    for tokens in (short, longer):  # any number of time steps
        probabilities = model.predict(tokens, verbose=0)
        assert probabilities.shape == (len(tokens), 1)
        assert np.all((probabilities > 0) & (probabilities < 1))
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [
        "dropout_lstm_1"
    ]


def test_recommended_model_is_the_mean_of_word_vectors():
    config = preset("recommended")
    # Embedding 20000*50 = 1,000,000; Dense(1) on the 50-dim mean: 51. No RNN.
    assert parameter_count(config) == 1_000_051
    model = build_model(config)
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer",
        "Embedding",
        "GlobalAveragePooling1D",
        "Dense",
    ]
    vectors = model.get_layer("embedding").get_weights()[0]  # (20000, 50)
    kernel, bias = model.get_layer("probability").get_weights()
    review = [1, 14, 22, 16, 14, 19999]
    expected_mean = vectors[review].mean(axis=0)  # the review's words only, repeats counted
    expected = 1 / (1 + np.exp(-(expected_mean @ kernel + bias)))
    for padding in (0, 7):  # the padding ("post") changes nothing under the mask
        tokens = np.array([review + [0] * padding], dtype="int32")
        assert np.allclose(model.predict(tokens, verbose=0), expected, rtol=0, atol=1e-5)
    assert config.model.cell == "simple_rnn" and not has_fused_layers(model)


def test_without_a_mask_the_mean_counts_the_padding():
    config = countable_config(rnn_units=(), dense_units=(), dropout_rate=0.5)
    model = build_model(config)
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [
        "dropout_mean"
    ]
    vectors = model.get_layer("embedding").get_weights()[0]
    kernel, bias = model.get_layer("probability").get_weights()
    tokens = np.array([[1, 5, 9, 0, 0]], dtype="int32")
    expected_mean = vectors[[1, 5, 9, 0, 0]].mean(axis=0)  # padding's row 0 counted twice
    expected = 1 / (1 + np.exp(-(expected_mean @ kernel + bias)))
    assert np.allclose(model.predict(tokens, verbose=0), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("cell", "bidirectional", "expected"),
    [
        # Embedding 100*8 = 800 in every row; a cell of 4 units on 8 inputs has, per direction,
        # SimpleRNN 8*4 + 4*4 + 4 = 52, LSTM 4 * 52 = 208, GRU 3 * (8*4 + 4*4 + 2*4) = 168
        # (Keras' reset_after GRU has two biases); Dense(3) on 8 (both ways) = 27 or on 4 = 15;
        # Dense(1) on 3 = 4.
        ("simple_rnn", True, 800 + 2 * 52 + 27 + 4),
        ("lstm", True, 800 + 2 * 208 + 27 + 4),
        ("gru", True, 800 + 2 * 168 + 27 + 4),
        ("simple_rnn", False, 800 + 52 + 15 + 4),
        ("lstm", False, 800 + 208 + 15 + 4),
        ("gru", False, 800 + 168 + 15 + 4),
    ],
)
def test_variants_have_the_parameters_counted_by_hand(cell, bidirectional, expected):
    config = countable_config(cell=cell, bidirectional=bidirectional)
    model = build_model(config)
    assert model.count_params() == expected
    assert parameter_count(config) == expected
    rnn = model.get_layer(f"{cell}_1")
    assert isinstance(rnn, keras.layers.Bidirectional) == bidirectional
    assert model.predict(np.array([[1, 5, 9]], dtype="int32"), verbose=0).shape == (1, 1)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_masked_padding_does_not_change_the_output(cell):
    keras.utils.set_random_seed(0)
    review = [1, 17, 42, 8, 99]
    unpadded = np.array([review], dtype="int32")
    padded = np.array([review + [0] * 6], dtype="int32")  # "post" padding
    # Two stacked RNN layers: the mask must pass through the first to the second.
    masked = build_model(countable_config(cell=cell, rnn_units=(4, 4), mask_padding=True))
    assert np.allclose(
        masked.predict(unpadded, verbose=0), masked.predict(padded, verbose=0), rtol=0, atol=1e-5
    )
    unmasked = build_model(countable_config(cell=cell, rnn_units=(4, 4)))
    difference = unmasked.predict(unpadded, verbose=0) - unmasked.predict(padded, verbose=0)
    assert np.abs(difference).max() > 1e-5  # without the mask, padding does change it


def test_dropout_regularization_and_optimizer_follow_the_config():
    config = countable_config(
        rnn_units=(4, 4), dropout_rate=0.5, l2=0.01, optimizer="rmsprop", learning_rate=0.05
    )
    model = build_model(config)
    dropout_names = [
        layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)
    ]
    assert dropout_names == ["dropout_simple_rnn_1", "dropout_simple_rnn_2", "dropout_dense_1"]
    # L2 on 2 layers * 2 directions * (input + recurrent kernel) + the 2 Dense kernels.
    assert len(model.losses) == 2 * 2 * 2 + 2
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)
    sgd = build_model(countable_config(optimizer="sgd"))
    assert isinstance(sgd.optimizer, keras.optimizers.SGD)
    plain = build_model(countable_config())
    assert not plain.losses
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)


def test_a_small_model_trains_for_an_epoch():
    keras.utils.set_random_seed(0)
    config = countable_config(
        cell="lstm", mask_padding=True, dropout_rate=0.2, recurrent_dropout_rate=0.1
    )
    tokens = np.random.default_rng(0).integers(1, 100, size=(32, 12)).astype("int32")
    tokens[::2, 8:] = 0  # half the reviews end in padding
    labels = np.tile([0, 1], 16)
    history = build_model(config).fit(
        tokens, labels, epochs=1, batch_size=16, validation_split=0.25, verbose=0
    )
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert np.isfinite(history.history["loss"][0])
    assert 0 <= history.history["val_accuracy"][0] <= 1


def test_build_model_rejects_a_plain_dict():
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        build_model({"model": {}})


@pytest.mark.parametrize("mask", [True, False])
def test_a_saved_models_fast_copy_computes_the_same_with_the_fused_layers(mask):
    from rnnkit.model import fast_copy

    config = countable_config(rnn_units=(4, 4), mask_padding=mask)
    plain = build_model(config, fused=False)
    fast = fast_copy(plain, config)
    assert has_fused_layers(fast) and not has_fused_layers(plain)
    tokens = np.array([[1, 5, 9, 12, 0, 0], [1, 7, 7, 3, 99, 4]], dtype="int32")
    np.testing.assert_allclose(
        fast.predict(tokens, verbose=0), plain.predict(tokens, verbose=0), atol=1e-6
    )
    assert fast_copy(fast, config) is fast  # fused already: nothing to copy
    lstm = countable_config(cell="lstm")
    lstm_model = build_model(lstm)
    assert fast_copy(lstm_model, lstm) is lstm_model  # no faster layers for an LSTM
