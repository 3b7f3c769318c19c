"""rnnkit.inside: hidden states against Keras' own layers, the mask's kept state, gradients
against finite differences, the memory profile on a synthetic task and on the mean of word
vectors, the unit search against a brute-force search, and the derived files in a run's folder.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers

from rnnkit import RunStore, inside, load_imdb, preset
from rnnkit.config import TrainConfig
from rnnkit.inside import Inspector, MemoryProfile, memory_profile
from rnnkit.model import build_model
from tests.helpers import train_tiny_runs

KERAS_CELLS = {"simple_rnn": layers.SimpleRNN, "gru": layers.GRU, "lstm": layers.LSTM}
TIME = 11
# Rows of TIME steps: post-padded, pre-padded, whole, one word at each end, all but one step.
ROWS = [("post", 6), ("pre", 4), ("post", TIME), ("post", 1), ("pre", 1), ("pre", TIME - 1)]


def tiny_config(cell: str, masked: bool, **overrides: str) -> TrainConfig:
    """Two bidirectional layers (5 and 3 units) over 4-dimensional word vectors of 40 words."""
    settings = {
        "data.num_words": "40",
        "model.cell": cell,
        "model.rnn_units": "5,3",
        "model.embedding_dim": "4",
        "model.dense_units": "6",
        "model.mask_padding": str(masked).lower(),
        **overrides,
    }
    return preset("seed").with_overrides(settings)


def random_model(config: TrainConfig, fused: bool | None = None, seed: int = 0) -> keras.Model:
    """The config's model with every weight drawn at random (biases too), so that no state or
    gradient is zero by construction."""
    keras.utils.set_random_seed(seed)
    model = build_model(config, fused=fused)
    generator = np.random.default_rng(seed)
    model.set_weights(
        [generator.normal(0, 0.6, weight.shape).astype("float32") for weight in model.get_weights()]
    )
    return model


def padded_tokens(rows=ROWS, time: int = TIME, seed: int = 0) -> np.ndarray:
    tokens = np.random.default_rng(seed).integers(1, 40, size=(len(rows), time)).astype("int32")
    for row, (padding, length) in enumerate(rows):
        if padding == "post":
            tokens[row, length:] = 0
        else:
            tokens[row, : time - length] = 0
    return tokens


def keras_sequences(model: keras.Model, config: TrainConfig, tokens: np.ndarray) -> dict:
    """Each direction's states as fresh Keras layers with the trained weights compute them
    with `return_sequences=True`, each reading what that RNN layer of the model reads."""
    cell = config.model.cell
    names = [f"{cell}_{number}" for number in range(1, len(config.model.rnn_units) + 1)]
    # What each RNN layer reads: the word vectors, or the layer before's output (Keras gives
    # a Bidirectional layer's input as a list of one tensor).
    reads = [model.get_layer(name).input for name in names]
    reads = [tensor[0] if isinstance(tensor, list) else tensor for tensor in reads]
    inputs = keras.Model(model.input, reads)(tokens)
    inputs = inputs if isinstance(inputs, list) else [inputs]  # one layer: one tensor
    mask = tf.constant(tokens != 0) if config.model.mask_padding else None
    expected = {}
    for number, (name, reads) in enumerate(zip(names, inputs, strict=True), start=1):
        wrapper = model.get_layer(name)
        for part, direction in (
            (wrapper.forward_layer, "forward"),
            (wrapper.backward_layer, "backward"),
        ):
            fresh = KERAS_CELLS[cell](
                part.units, return_sequences=True, go_backwards=part.go_backwards
            )
            fresh.build(reads.shape)
            fresh.set_weights(part.get_weights())
            sequence = np.asarray(fresh(reads, mask=mask))  # (batch, time, units), order run
            expected[f"layer {number} {direction}"] = (
                sequence[:, ::-1] if part.go_backwards else sequence
            )
    return expected


# --- states --------------------------------------------------------------------------------------


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize(
    ("cell", "fused"),
    [("simple_rnn", True), ("simple_rnn", False), ("gru", None), ("lstm", None)],
)
def test_states_are_the_trained_layers_run_with_return_sequences(cell, fused, masked):
    config = tiny_config(cell, masked)
    model = random_model(config)
    tokens = padded_tokens()  # post- and pre-padded rows in one batch
    inspector = Inspector(model, fused=fused)
    states, logits = inspector.states_and_logits(tokens)
    expected = keras_sequences(model, config, tokens)
    assert list(states) == list(expected)  # layer 1 forward, backward, layer 2 forward, ...
    for name, sequence in expected.items():
        assert states[name].shape == sequence.shape
        np.testing.assert_allclose(states[name], sequence, atol=3e-6, err_msg=name)
    probabilities = model.predict_on_batch(tokens)[:, 0]
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), probabilities, atol=2e-6)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm"])
def test_one_way_layers_have_one_direction_each(cell):
    config = tiny_config(cell, True, **{"model.bidirectional": "false", "model.rnn_units": "5,4,3"})
    model = random_model(config)
    tokens = padded_tokens()
    inspector = Inspector(model)
    assert [direction.name for direction in inspector.directions] == [
        "layer 1",
        "layer 2",
        "layer 3",
    ]
    states, logits = inspector.states_and_logits(tokens)
    last = np.asarray(keras.Model(model.input, model.get_layer(f"{cell}_3").output)(tokens))
    np.testing.assert_allclose(states["layer 3"][:, -1], last, atol=3e-6)
    first = np.asarray(keras.Model(model.input, model.get_layer(f"{cell}_1").output)(tokens))
    words = tokens != 0  # Keras passes the state on at masked steps of a one-way layer
    np.testing.assert_allclose(states["layer 1"][words], first[words], atol=3e-6)
    np.testing.assert_allclose(
        1 / (1 + np.exp(-logits)), model.predict_on_batch(tokens)[:, 0], atol=2e-6
    )


@pytest.mark.parametrize("cell", ["simple_rnn", "gru", "lstm"])
def test_under_a_mask_the_state_does_not_change_over_padding(cell):
    model = random_model(tiny_config(cell, True))
    tokens = padded_tokens()
    inspector = Inspector(model)
    states = inspector.states(tokens)
    for row, (padding, length) in enumerate(ROWS):
        if length == TIME:
            continue
        words = np.flatnonzero(tokens[row])
        first, last = words[0], words[-1]
        for direction in inspector.directions:
            sequence = states[direction.name][row]  # (time, units)
            changes = inside.state_changes(sequence, direction.backward)
            padding_steps = np.flatnonzero(tokens[row] == 0)
            assert np.all(changes[padding_steps] == 0), (direction.name, padding)
            assert np.all(changes[words] > 0), direction.name
            # Before a direction reads its first word the state is zero; after its last word
            # it carries that word's state to the end.
            if direction.backward:
                carried, before = sequence[first], sequence[last + 1 :]
                after = sequence[:first]
            else:
                carried, before = sequence[last], sequence[:first]
                after = sequence[last + 1 :]
            assert np.all(before == 0), direction.name
            assert np.all(after == carried), direction.name


def test_without_a_mask_the_state_moves_over_padding_too():
    inspector = Inspector(random_model(tiny_config("simple_rnn", False)))
    tokens = padded_tokens()
    states = inspector.states(tokens)
    row = 0  # post-padded: 6 words, then 5 padding steps
    forward = inside.state_changes(states["layer 1 forward"][row], backward=False)
    assert np.all(forward[6:] > 0)


def test_a_model_without_an_rnn_has_no_state():
    config = preset("recommended").with_overrides({"data.num_words": "40"})
    inspector = Inspector(random_model(config))
    assert not inspector.has_rnn
    assert inspector.directions == []
    assert inspector.states(padded_tokens()) == {}
    assert inspector.last_directions == ["mean of word vectors"]


# --- gradients -----------------------------------------------------------------------------------


def finite_difference_norms(model, tokens, through: str | None, epsilon: float = 1e-2):
    """(time,) the norm of d logit / d word vector at each step of one row, by central
    differences, through the forward or backward direction of the model's one RNN layer (the
    other direction reads the unchanged vectors), or through the whole model (None)."""
    embedded = np.asarray(model.get_layer("embedding")(tokens))  # (1, time, dims)
    time, dims = embedded.shape[1:]
    shifted = np.repeat(embedded, 2 * time * dims, axis=0)
    for index in range(time * dims):
        step, dim = divmod(index, dims)
        shifted[2 * index, step, dim] += epsilon
        shifted[2 * index + 1, step, dim] -= epsilon
    rows = len(shifted)
    mask = (
        tf.constant(np.repeat(tokens != 0, rows, axis=0))
        if model.get_layer("embedding").mask_zero
        else None
    )
    output = model.get_layer("probability")
    if through is None:
        hidden = model.get_layer("mean_of_word_vectors")(shifted, mask=mask)
    else:
        rnn = model.layers[2]
        still = np.repeat(embedded, rows, axis=0)
        forward = rnn.forward_layer(shifted if through == "forward" else still, mask=mask)
        backward = rnn.backward_layer(shifted if through == "backward" else still, mask=mask)
        hidden = tf.concat([forward, backward], axis=-1)
    logits = np.asarray(tf.matmul(hidden, output.kernel) + output.bias, np.float64)[:, 0]
    derivatives = (logits[0::2] - logits[1::2]) / (2 * epsilon)  # (time * dims,)
    return np.linalg.norm(derivatives.reshape(time, dims), axis=1)


@pytest.mark.parametrize(
    ("cell", "masked", "padding"),
    [("simple_rnn", False, "post"), ("gru", True, "pre"), ("lstm", True, "post")],
)
def test_position_gradients_agree_with_finite_differences(cell, masked, padding):
    config = tiny_config(cell, masked, **{"model.rnn_units": "5", "model.dense_units": ""})
    model = random_model(config)
    tokens = padded_tokens(rows=[(padding, 5)], time=7)
    gradients = Inspector(model).position_gradients(tokens)
    assert list(gradients) == ["layer 1 forward", "layer 1 backward"]
    for direction in ("forward", "backward"):
        expected = finite_difference_norms(model, tokens, direction)
        np.testing.assert_allclose(
            gradients[f"layer 1 {direction}"][0], expected, rtol=2e-2, atol=2e-4
        )
    if masked:
        assert np.all(gradients["layer 1 forward"][0][tokens[0] == 0] == 0)


def test_the_mean_of_word_vectors_weighs_every_position_alike():
    config = preset("recommended").with_overrides({"data.num_words": "40"})
    model = random_model(config)
    tokens = padded_tokens()
    inspector = Inspector(model)
    (gradient,) = inspector.position_gradients(tokens).values()
    np.testing.assert_allclose(
        gradient[:1], [finite_difference_norms(model, tokens[:1], None)], rtol=2e-2, atol=2e-4
    )
    profile = memory_profile(inspector, tokens)
    np.testing.assert_allclose(profile.curves["gradient"], 1.0, rtol=1e-5)  # a flat curve
    assert profile.curves["distance"].tolist() == list(range(TIME))
    assert profile.every_position
    assert profile.memory_text == "every position"


# --- the memory profile --------------------------------------------------------------------------


def test_memory_reach_is_how_far_back_a_curve_stays_at_one_percent_of_its_peak():
    curves = MemoryProfile(
        inside.pd.DataFrame(
            {
                "direction": ["a"] * 6 + ["b"] * 3,
                "distance": [0, 1, 2, 3, 4, 5, 0, 1, 2],
                "gradient": [5.0, 1.0, 0.2, 0.04, 0.001, 6.0, 2.0, 1.0, 0.5],
                "reviews": [9, 9, 9, 5, 1, 1, 9, 9, 9],
            }
        ),
        reviews=9,
    )
    # a: 0.04 < 1% of its peak (6.0) at distance 3; its rise at distance 5 does not count.
    # b: never under 1% of its peak: every position it reads.
    assert curves.reach() == {"a": 2, "b": 2}
    assert curves.memory_steps == 2
    assert curves.every_position
    only_a = MemoryProfile(curves.curves[curves.curves["direction"] == "a"], 9)
    assert not only_a.every_position
    assert only_a.memory_text == "2"


SYNTHETIC_TIME = 300  # every review: a label word, 2-6 filler words, then padding


def synthetic_task(reviews: int, seed: int, padding: str) -> tuple[np.ndarray, np.ndarray]:
    """The label is the first word (id 4 or 5); filler words (ids 6-29) follow; then padding
    to 300 steps (or padding first)."""
    generator = np.random.default_rng(seed)
    labels = generator.integers(0, 2, reviews)
    tokens = np.zeros((reviews, SYNTHETIC_TIME), np.int32)
    for row, label in enumerate(labels):
        words = [4 + label, *generator.integers(6, 30, generator.integers(2, 7))]
        if padding == "post":
            tokens[row, : len(words)] = words
        else:
            tokens[row, SYNTHETIC_TIME - len(words) :] = words
    return tokens, labels.astype("float32")


@pytest.mark.parametrize(
    ("variant", "padding", "masked"),
    [("post-padded", "post", False), ("masked", "post", True), ("pre-padded", "pre", False)],
)
def test_the_profile_shows_that_post_padding_puts_the_words_out_of_reach(variant, padding, masked):
    config = preset("seed").with_overrides(
        {
            "data.num_words": "30",
            "model.rnn_units": "8",
            "model.embedding_dim": "8",
            "model.bidirectional": "false",
            "model.dense_units": "",
            "model.mask_padding": str(masked).lower(),
            "training.learning_rate": "0.01",
        }
    )
    train_tokens, train_labels = synthetic_task(800, 0, padding)
    test_tokens, test_labels = synthetic_task(200, 1, padding)
    keras.utils.set_random_seed(1)
    model = build_model(config)
    model.fit(train_tokens, train_labels, epochs=4, batch_size=32, verbose=0)
    accuracy = model.evaluate(test_tokens, test_labels, verbose=0)[1]
    profile = memory_profile(Inspector(model), test_tokens)
    curve = profile.curves.set_index("distance")["gradient"]
    # The label word's distance back from where the forward direction finishes reading: from
    # the last padding step (post-padded, unmasked) or from the last word.
    lengths = np.count_nonzero(test_tokens, axis=1)
    label_distances = SYNTHETIC_TIME - 1 if variant == "post-padded" else lengths - 1
    nearest_label = int(np.min(label_distances))
    share = curve.loc[nearest_label] / curve.max()
    if variant == "post-padded":
        # 294+ padding steps after the words: the curve is under 1% of its peak long before
        # them, so the label word cannot teach the model anything: it stays at chance.
        assert profile.memory_steps < SYNTHETIC_TIME - 7
        assert share < 0.01
        assert accuracy < 0.6
    else:  # the label word lies within reach, and the model learns the task
        assert share >= 0.01
        assert accuracy > 0.9


# --- the unit search -----------------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "masked"), [("simple_rnn", True), ("lstm", False)])
def test_the_unit_search_finds_what_a_search_of_every_state_finds(cell, masked):
    model = random_model(tiny_config(cell, masked))
    rows = [("post" if index % 3 else "pre", 1 + (index * 7) % TIME) for index in range(40)]
    tokens = padded_tokens(rows=rows, seed=3)
    offsets = np.arange(len(tokens)) * 0 + 100  # any offset: it is added to the positions
    inspector = Inspector(model)
    search = inside.search_units(inspector, tokens, offsets, keep=4, batch_size=8)
    states, logits = inspector.states_and_logits(tokens)  # every review at once, full width
    words = tokens != 0
    for direction in inspector.directions:
        sequence = states[direction.name]
        for sign, factor in (("highest", 1), ("lowest", -1)):
            signed = np.where(words[:, :, None], factor * sequence, -np.inf)
            best = signed.max(axis=1)  # (reviews, units): each review's strongest word
            places = signed.argmax(axis=1)
            values, reviews, positions = search.top[direction.name][sign]
            assert values.shape == (4, direction.units)
            for unit in range(direction.units):
                order = np.argsort(-best[:, unit], kind="stable")[:4]
                np.testing.assert_allclose(values[:, unit], factor * best[order, unit], atol=1e-6)
                assert set(reviews[:, unit]) == set(order)
                assert np.all(positions[:, unit] == places[reviews[:, unit], unit] + 100)
        finals = sequence[:, 0] if direction.backward else sequence[:, -1]
        expected = [np.corrcoef(finals[:, unit], logits)[0, 1] for unit in range(direction.units)]
        np.testing.assert_allclose(search.correlations[direction.name], expected, atol=1e-4)


@pytest.mark.parametrize(
    ("padding", "truncating"), [("post", "pre"), ("pre", "post"), ("pre", "pre")]
)
def test_token_offsets_map_a_rows_columns_to_the_reviews_tokens(padding, truncating):
    config = tiny_config(
        "simple_rnn",
        True,
        **{"data.max_length": "6", "data.padding": padding, "data.truncating": truncating},
    )
    sequences = [np.arange(1, length + 1, dtype=np.int32) * 3 for length in (1, 4, 6, 9)]
    rows = inside.padded_rows(sequences, config)
    offsets = inside.token_offsets_of(sequences, config)
    for row, sequence, offset in zip(rows, sequences, offsets, strict=True):
        columns = np.flatnonzero(row)
        assert np.all(row[columns] == sequence[columns + offset])


# --- kept in the run's folder --------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_runs(tmp_path_factory.mktemp("inside"))


@pytest.fixture
def tiny_run(trained, tmp_path, monkeypatch):
    """A copy of the tiny store, its newer run, its data and its inspector."""
    import shutil

    store = RunStore(shutil.copytree(trained.runs, tmp_path / "runs"))
    monkeypatch.setenv("RNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    run = store.load(trained.run_id)
    data = load_imdb(num_words=100, path=trained.corpus)
    return store, run, data, Inspector(run.model())


def counting(monkeypatch, name: str) -> list:
    """Count the calls of `rnnkit.inside.<name>` (it still runs)."""
    calls = []
    original = getattr(inside, name)

    def counted(*arguments, **keywords):
        calls.append(1)
        return original(*arguments, **keywords)

    monkeypatch.setattr(inside, name, counted)
    return calls


def test_the_memory_profile_is_computed_once_then_read_from_the_runs_folder(tiny_run, monkeypatch):
    store, run, data, inspector = tiny_run
    calls = counting(monkeypatch, "memory_profile")
    assert (
        inside.stored_memory_profile(store, run.run_id, TrainConfig.from_dict(run.config)) is None
    )
    first = inside.run_memory_profile(store, run, data, inspector)
    path = store.folder(run.run_id) / "derived" / inside.PROFILE_FILE
    written = path.stat().st_mtime_ns
    again = inside.run_memory_profile(store, run, data, inspector)
    assert len(calls) == 1 and path.stat().st_mtime_ns == written
    inside.pd.testing.assert_frame_equal(again.curves, first.curves)
    # The sample of 256 is every one of the 20 tiny test reviews.
    assert again.reviews == first.reviews == 20 and first.curves["reviews"].max() == 20
    # Another sample size is another profile.
    assert (
        inside.stored_memory_profile(store, run.run_id, TrainConfig.from_dict(run.config), 12)
        is None
    )
    # The runs table's number comes from the file alone.
    texts = inside.stored_memory_texts(store, store.list_runs())
    assert texts == {run.run_id: first.memory_text}


def damage_json(path):
    path.write_text(path.read_text()[:40])


def other_model(path):
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "model": "0" * 64}))


def negative_gradient(path):
    stored = json.loads(path.read_text())
    (name,) = [name for name in stored["curves"] if name.endswith("forward")]
    stored["curves"][name]["gradient"][0] = -1.0
    path.write_text(json.dumps(stored))


@pytest.mark.parametrize("damage", [damage_json, other_model, negative_gradient])
def test_a_damaged_memory_profile_is_computed_again(tiny_run, monkeypatch, damage):
    store, run, data, inspector = tiny_run
    first = inside.run_memory_profile(store, run, data, inspector, reviews=12)
    damage(store.folder(run.run_id) / "derived" / inside.PROFILE_FILE)
    calls = counting(monkeypatch, "memory_profile")
    again = inside.run_memory_profile(store, run, data, inspector, reviews=12)
    assert len(calls) == 1
    inside.pd.testing.assert_frame_equal(again.curves, first.curves)
    config = TrainConfig.from_dict(run.config)
    assert inside.stored_memory_profile(store, run.run_id, config, reviews=12) is not None


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
VALID_PROFILE = {
    "format": inside.FILE_FORMAT,
    "model": "digest",
    "sample_size": 12,
    "sample_seed": inside.SAMPLE_SEED,
    "reviews": 12,
    "curves": {
        "layer 1": {"distance": [0, 1, 2], "gradient": [3.0, 1.0, 0.5], "reviews": [12, 9, 4]}
    },
}
PROFILE_PLACES = [
    ("format",),
    ("model",),
    ("sample_size",),
    ("sample_seed",),
    ("reviews",),
    ("curves",),
    ("curves", "layer 1"),
    ("curves", "layer 1", "distance"),
    ("curves", "layer 1", "gradient"),
    ("curves", "layer 1", "reviews"),
]


@settings(max_examples=200, deadline=None)
@given(place=st.sampled_from(PROFILE_PLACES), value=JSON_VALUES)
def test_a_profile_file_with_any_value_anywhere_is_read_as_a_fitting_profile_or_refused(
    place, value
):
    stored = json.loads(json.dumps(VALID_PROFILE))
    target = stored
    for key in place[:-1]:
        target = target[key]
    target[place[-1]] = value
    profile = inside._profile_from_json(stored, "digest", ["layer 1"], 12, 16)
    if profile is not None:  # what is read is a profile of that run and sample
        assert profile.reviews <= 12
        assert (profile.curves["gradient"] >= 0).all()
        assert profile.curves["distance"].between(0, 15).all()
        assert profile.curves["reviews"].between(1, profile.reviews).all()


def test_the_untouched_profile_of_the_generated_test_reads_back():
    profile = inside._profile_from_json(VALID_PROFILE, "digest", ["layer 1"], 12, 16)
    assert profile.memory_text == "every position"
    assert inside._profile_from_json(VALID_PROFILE, "other", ["layer 1"], 12, 16) is None
    assert inside._profile_from_json(VALID_PROFILE, "digest", ["layer 1"], 256, 16) is None


def test_the_unit_search_is_computed_once_then_read_from_the_runs_folder(tiny_run, monkeypatch):
    store, run, data, inspector = tiny_run
    calls = counting(monkeypatch, "search_units")
    first = inside.run_unit_search(store, run, data, inspector)
    second = inside.run_unit_search(store, run, data, inspector)
    assert len(calls) == 1
    for name in first.top:
        for sign in ("highest", "lowest"):
            for expected, read in zip(first.top[name][sign], second.top[name][sign], strict=True):
                np.testing.assert_array_equal(read, expected)
        np.testing.assert_array_equal(second.correlations[name], first.correlations[name])
    # A window's strongest word holds the value the search found there.
    config = TrainConfig.from_dict(run.config)
    windows = inside.unit_windows(inspector, first, data, config, "layer 1 backward", 2, "lowest")
    assert len(windows) == min(inside.TOP_WINDOWS, len(data.test))
    for window in windows.itertuples():
        assert window.values[window.place] == pytest.approx(window.value, abs=1e-5)
        review = data.test.sequences[window.review]
        assert window.words[window.place] == data.vocab.id_to_word(int(review[window.position]))
        assert len(window.words) <= inside.WINDOW_WORDS


def shuffled_reviews(path):
    arrays = dict(np.load(path))
    arrays["0_highest_reviews"] = (
        arrays["0_highest_reviews"] + len(arrays["0_highest_reviews"]) * 1000
    )
    np.savez(path, **arrays)


def wrong_shape(path):
    arrays = dict(np.load(path))
    arrays["1_correlation"] = arrays["1_correlation"][:-1]
    np.savez(path, **arrays)


def junk(path):
    path.write_bytes(b"PK\x03\x04" + bytes(range(200)))


@pytest.mark.parametrize("damage", [shuffled_reviews, wrong_shape, junk])
def test_a_damaged_unit_search_is_computed_again(tiny_run, monkeypatch, damage):
    store, run, data, inspector = tiny_run
    inside.run_unit_search(store, run, data, inspector)
    damage(store.folder(run.run_id) / "derived" / inside.UNITS_FILE)
    assert inside.stored_unit_search(store, run, data, inspector) is None
    calls = counting(monkeypatch, "search_units")
    inside.run_unit_search(store, run, data, inspector)
    assert len(calls) == 1
    assert inside.stored_unit_search(store, run, data, inspector) is not None


def test_the_steps_near_the_words_keep_twenty_padding_steps_on_each_side():
    post = np.zeros(500, np.int32)
    post[:37] = 7
    assert inside.steps_near_words(post) == slice(0, 57)
    pre = np.zeros(400, np.int32)
    pre[-37:] = 7
    assert inside.steps_near_words(pre) == slice(343, 400)
    assert inside.steps_near_words(np.zeros(30, np.int32)) == slice(0, 20)
    assert inside.steps_near_words(np.full(16, 7, np.int32)) == slice(0, 16)


def test_a_stored_runs_states_are_its_trained_keras_layers_run_with_return_sequences(tiny_run):
    _, run, data, inspector = tiny_run
    model = run.model()  # Keras' own SimpleRNN layers; the inspector computes them fused
    config = TrainConfig.from_dict(run.config)
    tokens = inside.padded_rows(data.test.sequences, config)
    states = inspector.states(tokens)
    for name, sequence in keras_sequences(model, config, tokens).items():
        np.testing.assert_allclose(states[name], sequence, atol=3e-6, err_msg=name)
