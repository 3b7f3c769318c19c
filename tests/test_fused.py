"""The fused SimpleRNN layers compute what Keras' SimpleRNN computes, and rnnkit uses them."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from rnnkit import RunStore, fused, train
from rnnkit.devices import uses_fused_rnn
from rnnkit.fused import FusedBidirectional, FusedSimpleRNN
from rnnkit.model import build_model, parameter_count
from rnnkit.training import prepare_data
from tests.helpers import tiny_masked_config

TIME = 12
LENGTHS = [12, 3, 7, 0, 9, 12, 5]  # one row is all padding


def two_layer_model(fused: bool, mask_zero: bool, variant: str, seed: int = 1) -> keras.Model:
    """Embedding -> RNN (sequences) -> RNN (last state) -> Dense, with fused or Keras layers."""
    keras.utils.set_random_seed(seed)
    tokens = keras.Input((None,), dtype="int32")
    hidden = layers.Embedding(50, 8, mask_zero=mask_zero)(tokens)
    if variant == "bidirectional":
        bidirectional = FusedBidirectional if fused else layers.Bidirectional
        hidden = bidirectional(layers.SimpleRNN(6, return_sequences=True))(hidden)
        hidden = bidirectional(layers.SimpleRNN(5))(hidden)
    else:
        rnn = FusedSimpleRNN if fused else layers.SimpleRNN
        hidden = rnn(6, return_sequences=True, go_backwards=True)(hidden)
        hidden = rnn(5, go_backwards=variant == "backwards")(hidden)
    return keras.Model(tokens, layers.Dense(1, activation="sigmoid")(hidden))


def padded_tokens(time: int, padding: str) -> np.ndarray:
    tokens = np.random.default_rng(0).integers(1, 50, size=(len(LENGTHS), time)).astype("int32")
    for row, length in enumerate(LENGTHS):
        length = min(length, time)
        if padding == "post":
            tokens[row, length:] = 0
        else:
            tokens[row, : time - length] = 0
    return tokens


def outputs_and_gradients(model: keras.Model, tokens: np.ndarray) -> list[np.ndarray]:
    labels = (np.arange(len(tokens)) % 2).astype("float32")[:, None]
    with tf.GradientTape() as tape:
        probabilities = model(tokens)
        loss = keras.losses.binary_crossentropy(labels, probabilities)
    gradients = tape.gradient(loss, model.trainable_weights)
    return [probabilities.numpy()] + [tf.convert_to_tensor(g).numpy() for g in gradients]


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float32 rounding of sums taken in another order: 1e-5 of the largest
    entry (a gradient's entries span several orders of magnitude)."""
    scale = max(1e-3, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale)


@pytest.fixture
def fused_loops(monkeypatch) -> list[str]:
    """The names of the compiled loops the fused layers run, as they run them."""
    calls: list[str] = []
    run = fused._in_parallel

    def spy(jobs):
        calls.extend(function.__name__ for function, _ in jobs)
        run(jobs)

    monkeypatch.setattr(fused, "_in_parallel", spy)
    return calls


@pytest.mark.parametrize("variant", ["bidirectional", "forwards", "backwards"])
@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("mask_zero", [True, False])
@pytest.mark.parametrize("time", [TIME, 1])
def test_fused_layers_give_keras_outputs_and_gradients(
    variant, padding, mask_zero, time, fused_loops
):
    keras_model = two_layer_model(False, mask_zero, variant)
    fused_model = two_layer_model(True, mask_zero, variant)
    keras_weights, fused_weights = keras_model.get_weights(), fused_model.get_weights()
    assert len(keras_weights) == len(fused_weights)  # the same weights, in the same order
    for expected, actual in zip(keras_weights, fused_weights, strict=True):
        np.testing.assert_array_equal(actual, expected)
    tokens = padded_tokens(time, padding)
    expected = outputs_and_gradients(keras_model, tokens)
    assert fused_loops == []
    actual = outputs_and_gradients(fused_model, tokens)
    # Two layers, forward and backward passes: each direction ran in the compiled loops.
    directions = 2 if variant == "bidirectional" else 1
    assert fused_loops.count("_forward_direction") == 2 * directions
    assert fused_loops.count("_backward_direction") == 2 * directions
    # The probability, then the gradient of every weight (embedding, kernels, biases, dense).
    for keras_value, fused_value in zip(expected, actual, strict=True):
        assert_close(fused_value, keras_value)


def test_a_batch_of_the_seed_models_size_matches_keras(fused_loops):
    """The real sizes: 64 units, 128 reviews, and a mask that ends rows at different steps."""
    config = tiny_masked_config(
        **{"model.rnn_units": "64,64", "model.dense_units": "64", "model.embedding_dim": "16"}
    )
    keras.utils.set_random_seed(3)
    keras_model = build_model(config, fused=False)
    fused_model = build_model(config, fused=True)
    fused_model.set_weights(keras_model.get_weights())
    rng = np.random.default_rng(3)
    tokens = rng.integers(1, 100, size=(128, 40)).astype("int32")
    for row, length in enumerate(rng.integers(1, 41, size=128)):
        tokens[row, length:] = 0
    for keras_value, fused_value in zip(
        outputs_and_gradients(keras_model, tokens),
        outputs_and_gradients(fused_model, tokens),
        strict=True,
    ):
        assert_close(fused_value, keras_value)
    assert fused_loops.count("_backward_direction") == 4  # 2 layers x 2 directions


def recurrence_in_a_graph():
    """A tf.function, as Keras trains: the outputs of the loops over `inputs` (batch, time, 8),
    two directions of 16 units, and the gradient they give for the projection, as the loops
    return them to TensorFlow."""
    kernel, bias = tf.random.normal((8, 32)), tf.random.normal((32,))
    recurrent_kernels = tf.random.normal((2, 16, 16)) / 4

    @tf.function
    def outputs_and_gradient(inputs):
        with tf.GradientTape() as tape:
            tape.watch(kernel)
            outputs = fused._recurrence(
                inputs, kernel, bias, recurrent_kernels, None, (False, True), True, True
            )
        tape.gradient(outputs, kernel)
        operations = outputs.graph.get_operations()
        [forward] = [op for op in operations if op.name.endswith("fused_rnn_forward")]
        [backward] = [op for op in operations if op.name.endswith("fused_rnn_backward")]
        return forward.outputs[0], backward.outputs[0]

    return outputs_and_gradient


def test_the_loops_outputs_reach_tensorflow_without_a_copy(monkeypatch):
    """In a tf.function (as Keras trains), TensorFlow copies an array that does not start on a
    64-byte boundary: 15 MB per layer and batch for the seed model. The loops' outputs and
    gradients are allocated aligned, and the tensors are those arrays."""
    addresses = []
    allocate = fused._empty

    def spy(shape):
        array = allocate(shape)
        addresses.append(array.ctypes.data)
        return array

    monkeypatch.setattr(fused, "_empty", spy)
    for tensor in recurrence_in_a_graph()(tf.random.normal((64, 50, 8))):
        assert np.asarray(memoryview(tensor)).ctypes.data in addresses


def test_the_loops_reuse_buffers_but_never_one_still_held(monkeypatch):
    """Fresh arrays cost page faults at first touch (a sixth of a batch's time), so the loops
    reuse buffers, but only those no tensor holds: a result kept stays as it was."""
    buffers = fused._Buffers()
    monkeypatch.setattr(fused, "_empty", buffers.empty)
    outputs_and_gradient = recurrence_in_a_graph()

    def address(tensor) -> int:
        return np.asarray(memoryview(tensor)).ctypes.data

    kept, kept_gradient = outputs_and_gradient(tf.random.normal((64, 50, 8)))
    kept_values = kept.numpy()
    held = {address(kept), address(kept_gradient)}
    for _ in range(3):
        outputs, gradient = outputs_and_gradient(tf.random.normal((64, 50, 8)))
        assert {address(outputs), address(gradient)}.isdisjoint(held)
        np.testing.assert_array_equal(kept.numpy(), kept_values)
    del outputs, gradient  # nothing holds their buffers any more
    # Later calls, with as many steps or fewer, take buffers kept, and no more are kept.
    kept_buffers = len(buffers._buffers)
    assert kept_buffers <= 8  # forward: states, outputs, last; backward: one; twice at most
    starts = {buffer.ctypes.data + (-buffer.ctypes.data % 64) for buffer in buffers._buffers}
    for time in (50, 20):
        outputs, gradient = outputs_and_gradient(tf.random.normal((64, time, 8)))
        assert {address(outputs), address(gradient)} <= starts - held
        del outputs, gradient
    assert len(buffers._buffers) == kept_buffers
    np.testing.assert_array_equal(kept.numpy(), kept_values)


def test_the_buffers_kept_are_bounded_and_released():
    buffers = fused._Buffers()
    buffers.MAX_BUFFERS, buffers.MAX_IDLE_BYTES = 3, 10 * 4096
    held = [buffers.empty((1024,)) for _ in range(5)]  # 4 KB each, all held
    assert len(buffers._buffers) == 3  # the other two were allocated as usual
    del held
    buffers.empty((4 * 1024,))  # a larger one replaces the largest idle one
    sizes = sorted(len(buffer) for buffer in buffers._buffers)
    assert sizes == [1024 + 16, 1024 + 16, 4 * 1024 + 16]
    buffers.empty((12 * 1024,))  # 48 KB: more than may stay idle, let go at the next call
    buffers.empty((16,))
    assert sum(buffer.nbytes for buffer in buffers._buffers) <= 10 * 4096
    buffers.release()
    assert buffers._buffers == []


def test_layers_the_fused_loop_cannot_compute_are_keras_own(fused_loops):
    """Recurrent dropout and merge modes other than concat fall back to Keras' computation."""
    tokens = padded_tokens(TIME, "post")
    for make in (
        lambda fast: (FusedSimpleRNN if fast else layers.SimpleRNN)(
            4, recurrent_dropout=0.3, seed=0
        ),
        lambda fast: (FusedBidirectional if fast else layers.Bidirectional)(
            layers.SimpleRNN(4), merge_mode="sum"
        ),
    ):
        results = []
        for fast in (False, True):
            keras.utils.set_random_seed(2)
            inputs = keras.Input((None,), dtype="int32")
            hidden = layers.Embedding(50, 8, mask_zero=True)(inputs)
            results.append(keras.Model(inputs, make(fast)(hidden))(tokens).numpy())
        np.testing.assert_allclose(results[1], results[0], atol=1e-6)
    assert fused_loops == []


def rnn_layer_types(model: keras.Model) -> set[type]:
    return {type(layer) for layer in model.layers if "rnn" in layer.name or "lstm" in layer.name}


def test_build_model_uses_the_fused_layers_where_they_apply(monkeypatch):
    seed = tiny_masked_config(**{"model.rnn_units": "8,8"})
    assert uses_fused_rnn(seed)
    assert rnn_layer_types(build_model(seed)) == {FusedBidirectional}
    assert rnn_layer_types(build_model(seed, fused=False)) == {layers.Bidirectional}
    # The count and the summary describe Keras' layers, whichever computes.
    assert parameter_count(seed) == sum(w.size for w in build_model(seed).get_weights())
    lstm = tiny_masked_config(**{"model.cell": "lstm"})
    dropout = tiny_masked_config(**{"model.recurrent_dropout_rate": "0.2"})
    assert not uses_fused_rnn(lstm) and not uses_fused_rnn(dropout)
    assert FusedBidirectional not in rnn_layer_types(build_model(lstm))
    monkeypatch.setenv("RNNKIT_FUSED_RNN", "0")
    assert not uses_fused_rnn(seed)
    assert rnn_layer_types(build_model(seed)) == {layers.Bidirectional}
    monkeypatch.setenv("RNNKIT_FUSED_RNN", "sometimes")
    with pytest.raises(ValueError, match="RNNKIT_FUSED_RNN must be"):
        build_model(seed)


def test_fused_and_keras_training_agree_and_the_saved_model_is_keras_own(
    data,
    tmp_path,
    monkeypatch,
):
    config = tiny_masked_config(**{"training.epochs": "2"})
    fused_run = train(config, data, RunStore(tmp_path / "fused"))
    assert fused._BUFFERS._buffers == []  # training over, the loops' buffers were let go
    monkeypatch.setenv("RNNKIT_FUSED_RNN", "sometimes")
    with pytest.raises(ValueError, match="RNNKIT_FUSED_RNN must be"):
        train(config, data, RunStore(tmp_path / "refused"))
    assert RunStore(tmp_path / "refused").list_runs() == []  # no failed run left behind
    monkeypatch.setenv("RNNKIT_FUSED_RNN", "0")
    keras_run = train(config, data, RunStore(tmp_path / "keras"))
    for fused_epoch, keras_epoch in zip(fused_run.history, keras_run.history, strict=True):
        for key in ("loss", "val_loss"):
            assert fused_epoch[key] == pytest.approx(keras_epoch[key], rel=1e-4)
    np.testing.assert_allclose(fused_run.predictions, keras_run.predictions, atol=1e-4)
    # The stored model is made of Keras' own layers, and gives the stored predictions.
    model = fused_run.model()
    assert rnn_layer_types(model) == {layers.Bidirectional}
    tokens = prepare_data(config, data).x_test
    np.testing.assert_allclose(
        model.predict(tokens, verbose=0)[:, 0], fused_run.predictions, atol=1e-5
    )


# --- reading forward only ------------------------------------------------------------------------


def random_keras_model(config, seed: int = 0) -> keras.Model:
    """The config's model of Keras' own layers, every weight drawn at random (biases too)."""
    model = build_model(config, fused=False)
    generator = np.random.default_rng(seed)
    model.set_weights(
        [generator.normal(0, 0.5, weight.shape).astype("float32") for weight in model.get_weights()]
    )
    return model


@pytest.mark.parametrize("units", ["6", "6,5", "4,5,3"])
@pytest.mark.parametrize("bidirectional", ["true", "false"])
@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("masked", ["true", "false"])
def test_the_reader_gives_the_models_probabilities(units, bidirectional, padding, masked):
    config = tiny_masked_config(
        **{
            "model.rnn_units": units,
            "model.bidirectional": bidirectional,
            "model.mask_padding": masked,
            "model.dense_units": "4",
            "model.dropout_rate": "0.3",  # nothing at inference
            "data.padding": padding,
        }
    )
    model = random_keras_model(config)
    reader = fused.FusedReader.of(model)
    assert reader is not None
    for time in (TIME, 1):
        tokens = padded_tokens(time, padding)
        expected = model.predict(tokens, verbose=0)[:, 0]
        np.testing.assert_allclose(reader.probabilities(tokens), expected, atol=2e-6)
    reader.release()
    assert reader._buffers._buffers == []


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("masked", [True, False])
def test_the_readers_states_are_the_layers_states_time_major(padding, masked):
    config = tiny_masked_config(
        **{"model.rnn_units": "6,5", "model.mask_padding": str(masked).lower()}
    )
    model = random_keras_model(config, seed=3)
    tokens = padded_tokens(TIME, padding)
    outputs, logits = fused.FusedReader.of(model).layer_outputs(tokens)
    hidden = model.get_layer("embedding")(tokens)
    mask = tokens != 0 if masked else None
    for output, name in zip(outputs, ["simple_rnn_1", "simple_rnn_2"], strict=True):
        layer = model.get_layer(name)
        states = []
        for part in (layer.forward_layer, layer.backward_layer):
            # The direction as a sequence layer: at a masked step it keeps the state.
            sequence = layers.SimpleRNN(
                part.units, return_sequences=True, go_backwards=part.go_backwards
            )
            sequence.build(hidden.shape)
            sequence.set_weights(part.get_weights())
            run = np.asarray(sequence(hidden, mask=mask))  # in the order it ran
            states.append(run[:, ::-1] if part.go_backwards else run)
        expected = np.concatenate(states, axis=-1)  # (batch, time, width), input positions
        np.testing.assert_allclose(output.transpose(1, 0, 2), expected, atol=2e-6)
        hidden = tf.constant(expected)
    probabilities = model.predict(tokens, verbose=0)[:, 0]
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), probabilities, atol=2e-6)


def test_the_reader_steps_aside_where_the_loops_do_not_compute_the_model(monkeypatch):
    for overrides in (
        {"model.cell": "lstm"},
        {"model.cell": "gru"},
        {"model.rnn_units": ""},  # the mean of word vectors
        {"model.recurrent_dropout_rate": "0.2"},
    ):
        assert fused.FusedReader.of(build_model(tiny_masked_config(**overrides))) is None
    keras_model = build_model(tiny_masked_config(), fused=False)
    assert fused.FusedReader.of(keras_model) is not None  # Keras' own SimpleRNN layers too
    monkeypatch.setenv("RNNKIT_FUSED_RNN", "0")
    assert fused.FusedReader.of(keras_model) is None


def test_the_reader_refuses_ids_outside_the_vocabulary():
    reader = fused.FusedReader.of(build_model(tiny_masked_config(), fused=False))
    words = len(reader.embedding)
    for tokens in ([[1, -1]], [[words, 2]]):
        with pytest.raises(ValueError, match=rf"token ids must lie in \[0, {words}\)"):
            reader.probabilities(np.array(tokens, np.int32))


def test_word_extremes_are_each_columns_first_highest_and_lowest_at_a_word():
    generator = np.random.default_rng(5)
    outputs = generator.integers(-3, 4, size=(9, 7, 5)).astype(np.float32)  # many ties
    words = generator.random((9, 7)) < 0.6
    words[:, 2] = False  # a row without words
    highest, highest_at, lowest, lowest_at = fused.word_extremes(outputs, words)
    for row in range(7):
        steps = np.flatnonzero(words[:, row])
        for column in range(5):
            if len(steps) == 0:
                assert (highest[row, column], lowest[row, column]) == (-np.inf, np.inf)
                assert highest_at[row, column] == lowest_at[row, column] == 0
                continue
            values = outputs[steps, row, column]
            assert highest[row, column] == values.max()
            assert lowest[row, column] == values.min()
            assert highest_at[row, column] == steps[np.argmax(values)]  # the first of ties
            assert lowest_at[row, column] == steps[np.argmin(values)]
