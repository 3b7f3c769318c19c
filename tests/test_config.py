"""TrainConfig: the notebook's defaults, validation messages, dict and JSON forms, run ids."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.config import (
    LIMITS,
    PRESETS,
    DataConfig,
    Limit,
    ModelConfig,
    TrainConfig,
    TrainingConfig,
    preset,
)

FINGERPRINT = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"

BELOW_ONE = "a number from 0 up to but not including 1"

# For every setting, an allowed value other than its default.
OTHER_VALUES = {
    "data.num_words": 20000,
    "data.max_length": 400,
    "data.padding": "pre",
    "data.truncating": "post",
    "model.cell": "gru",
    "model.bidirectional": False,
    "model.rnn_units": (64,),
    "model.embedding_dim": 32,
    "model.dense_units": (),
    "model.dropout_rate": 0.1,
    "model.recurrent_dropout_rate": 0.1,
    "model.l2": 1e-4,
    "model.mask_padding": True,
    "training.epochs": 29,
    "training.batch_size": 64,
    "training.validation_split": 0.25,
    "training.optimizer": "rmsprop",
    "training.learning_rate": 0.002,
    "training.early_stopping_patience": 3,
    "training.seed": 1,
}


def test_defaults_are_the_course_notebook():
    config = TrainConfig()
    assert config == preset("notebook")
    assert config.data == DataConfig(
        num_words=10000, max_length=500, padding="post", truncating="pre"
    )
    assert config.model == ModelConfig(
        cell="simple_rnn",
        bidirectional=True,
        rnn_units=(64, 64),
        embedding_dim=16,
        dense_units=(64,),
        dropout_rate=0.0,
        recurrent_dropout_rate=0.0,
        l2=0.0,
        mask_padding=False,
    )
    assert config.training == TrainingConfig(
        epochs=30,
        batch_size=128,
        validation_split=0.2,
        optimizer="adam",
        learning_rate=0.001,
        early_stopping_patience=None,
        seed=0,
    )
    assert config.summary() == "BiSimpleRNN 64-64 · emb 16 · dense 64 · len 500 post · 30 epochs"


def test_seed_preset_is_the_notebook_reading_only_words():
    # The notebook's model and training; the mask makes each direction skip the padding.
    notebook, seed = preset("notebook"), preset("seed")
    assert seed.model.mask_padding and not notebook.model.mask_padding
    assert seed.with_overrides({"model.mask_padding": False}) == notebook
    assert seed.summary() == (
        "BiSimpleRNN 64-64 · emb 16 · dense 64 · len 500 post, masked · 30 epochs"
    )


def test_recommended_preset_has_no_rnn():
    config = preset("recommended")
    assert (config.data.num_words, config.data.max_length, config.data.padding) == (
        20000,
        500,
        "post",
    )
    assert (config.model.rnn_units, config.model.embedding_dim, config.model.dense_units) == (
        (),
        50,
        (),
    )
    assert config.model.dropout_rate == 0 and config.model.mask_padding
    assert (config.training.epochs, config.training.early_stopping_patience) == (10, 2)
    assert config.training.learning_rate == 0.002
    assert config.summary() == (
        "no RNN (mean of word vectors) · emb 50 · no dense · len 500 post, masked · "
        "≤10 epochs (patience 2)"
    )


def test_best_rnn_preset():
    config = preset("best_rnn")
    assert (config.data.num_words, config.data.max_length, config.data.padding) == (
        20000,
        400,
        "pre",
    )
    assert config.model.cell == "lstm" and config.model.bidirectional
    assert (config.model.rnn_units, config.model.embedding_dim, config.model.dense_units) == (
        (32,),
        32,
        (),
    )
    assert config.model.dropout_rate == 0.5 and config.model.mask_padding
    assert (config.training.epochs, config.training.early_stopping_patience) == (6, 2)
    assert config.summary() == (
        "BiLSTM 32 · emb 32 · no dense · dropout 0.5 · len 400 pre, masked · ≤6 epochs (patience 2)"
    )
    assert sorted(PRESETS) == ["best_rnn", "notebook", "recommended", "seed"]
    with pytest.raises(
        ValueError,
        match="unknown preset 'best'; the presets are seed, notebook, recommended, best_rnn",
    ):
        preset("best")


def test_presets_fit_a_hosted_servers_limits():
    from rnnkit.jobs import limit_problems
    from rnnkit.settings import HOSTED_LIMITS

    for name in ("recommended", "best_rnn"):
        assert limit_problems(preset(name), HOSTED_LIMITS) == []


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("data.num_words", 9, "a whole number from 10 to 200000"),
        ("data.num_words", 200_001, "a whole number from 10 to 200000"),
        ("data.num_words", 10000.0, "a whole number from 10 to 200000"),
        ("data.max_length", 0, "a whole number from 1 to 5000"),
        ("data.max_length", "500", "a whole number from 1 to 5000"),
        ("data.padding", "middle", "one of 'pre', 'post'"),
        ("data.truncating", None, "one of 'pre', 'post'"),
        ("model.cell", "rnn", "one of 'simple_rnn', 'lstm', 'gru'"),
        ("model.bidirectional", 1, "True or False"),
        ("model.rnn_units", (64, 0), "a list of 0 to 4 whole numbers, each from 1 to 1024"),
        ("model.rnn_units", [8] * 5, "a list of 0 to 4 whole numbers, each from 1 to 1024"),
        ("model.rnn_units", 64, "a list of 0 to 4 whole numbers, each from 1 to 1024"),
        ("model.embedding_dim", 1025, "a whole number from 1 to 1024"),
        ("model.dense_units", (2048,), "a list of 0 to 4 whole numbers, each from 1 to 1024"),
        ("model.dropout_rate", 1.0, BELOW_ONE),
        ("model.dropout_rate", -0.1, BELOW_ONE),
        ("model.recurrent_dropout_rate", float("nan"), BELOW_ONE),
        ("model.l2", 2.0, "a number from 0 to 1"),
        ("model.mask_padding", "yes", "True or False"),
        ("training.epochs", 0, "a whole number from 1 to 1000"),
        ("training.epochs", True, "a whole number from 1 to 1000"),
        ("training.batch_size", 4097, "a whole number from 1 to 4096"),
        ("training.validation_split", 0.0, "a number above 0 and at most 0.5"),
        ("training.validation_split", 0.6, "a number above 0 and at most 0.5"),
        ("training.optimizer", "Adam", "one of 'adam', 'rmsprop', 'sgd'"),
        ("training.learning_rate", 0, "a number above 0 and at most 1"),
        ("training.learning_rate", False, "a number above 0 and at most 1"),
        ("training.early_stopping_patience", 0, "None or a whole number from 1 to 1000"),
        ("training.seed", -1, "a whole number from 0 to 2147483647"),
        ("training.seed", 2**31, "a whole number from 0 to 2147483647"),
    ],
)
def test_validation_names_the_field_the_value_and_the_range(name, value, allowed):
    section, field_name = name.split(".")
    with pytest.raises(ValueError) as raised:
        TrainConfig.from_dict({section: {field_name: value}})
    assert str(raised.value) == f"{name} must be {allowed}, not {value!r}"
    assert str(raised.value).startswith(f"{name} must be {LIMITS[name].allowed}")


def test_edges_of_the_ranges_are_allowed():
    config = TrainConfig.from_dict(
        {
            "data": {"num_words": 10, "max_length": 5000},
            "model": {"rnn_units": [1, 2, 3, 1024], "dense_units": [], "dropout_rate": 0.99},
            "training": {"validation_split": 0.5, "learning_rate": 1, "seed": 2**31 - 1},
        }
    )
    assert config.model.rnn_units == (1, 2, 3, 1024)
    assert config.training.learning_rate == 1.0


def test_values_are_stored_in_one_form():
    given = ModelConfig(rnn_units=[64, 64], dense_units=[64])
    assert given.rnn_units == (64, 64) and isinstance(given.dense_units, tuple)
    assert hash(given) == hash(ModelConfig())
    as_int = TrainConfig(training=TrainingConfig(learning_rate=1))
    as_float = TrainConfig(training=TrainingConfig(learning_rate=1.0))
    assert isinstance(as_int.training.learning_rate, float)
    assert as_int.run_id(FINGERPRINT) == as_float.run_id(FINGERPRINT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        given.cell = "lstm"
    with pytest.raises(ValueError, match="model must be a ModelConfig, not"):
        TrainConfig(model={"cell": "lstm"})


def test_dict_and_json_round_trip():
    config = preset("best_rnn")
    plain = config.to_dict()
    assert plain["model"]["rnn_units"] == [32]  # plain JSON values: lists, not tuples
    assert plain == json.loads(config.canonical_json())
    assert TrainConfig.from_dict(plain) == config
    assert TrainConfig.from_dict(json.loads(config.canonical_json())) == config
    assert config.canonical_json().startswith('{"data":{"max_length":400,"num_words":20000,')
    assert TrainConfig.from_dict({}) == TrainConfig()  # missing sections and keys: defaults
    assert TrainConfig.from_dict({"training": {"epochs": 3}}).training.epochs == 3


def test_from_dict_rejects_unknown_sections_and_keys():
    with pytest.raises(ValueError, match="unknown config section 'optimizer'"):
        TrainConfig.from_dict({"optimizer": {}})
    with pytest.raises(ValueError, match=r"unknown config key model\.units; the keys of model"):
        TrainConfig.from_dict({"model": {"units": 64}})
    with pytest.raises(ValueError, match="config section 'data' must be a dict, not 3"):
        TrainConfig.from_dict({"data": 3})


def test_run_id_is_stable_and_changes_with_every_setting_and_the_data():
    config = TrainConfig()
    run_id = config.run_id(FINGERPRINT)
    assert len(run_id) == 16 and int(run_id, 16) >= 0
    assert config.run_id(FINGERPRINT) == run_id
    assert TrainConfig().run_id(FINGERPRINT) == run_id
    assert TrainConfig.from_dict(config.to_dict()).run_id(FINGERPRINT) == run_id
    assert config.run_id(FINGERPRINT[:-1] + "f") != run_id

    assert set(OTHER_VALUES) == set(LIMITS)  # every setting is tried below
    ids = {run_id}
    for name, value in OTHER_VALUES.items():
        changed = config.with_overrides({name: value})
        assert changed != config, name
        ids.add(changed.run_id(FINGERPRINT))
    assert len(ids) == 1 + len(OTHER_VALUES)  # each single change gives an id of its own


def test_no_rnn_layer_is_a_valid_model():
    for text in ("none", "", "[]"):
        config = TrainConfig().with_overrides({"rnn_units": text})
        assert config.model.rnn_units == ()
    assert config.summary().startswith("no RNN (mean of word vectors) · emb 16 · dense 64")
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.run_id("data") != TrainConfig().run_id("data")


def test_with_overrides_reads_command_line_strings():
    config = TrainConfig().with_overrides(
        {
            "training.epochs": "3",
            "learning_rate": "1e-2",
            "cell": "LSTM",
            "model.rnn_units": "32,16",
            "dense_units": "none",
            "mask_padding": "true",
            "bidirectional": "no",
            "early_stopping_patience": "2",
            "data.padding": "pre",
            "validation_split": 0.1,  # not a string: taken as is
        }
    )
    assert config.training.epochs == 3
    assert config.training.learning_rate == 0.01
    assert config.model.cell == "lstm"
    assert config.model.rnn_units == (32, 16)
    assert config.model.dense_units == ()
    assert config.model.mask_padding is True and config.model.bidirectional is False
    assert config.training.early_stopping_patience == 2
    assert config.data.padding == "pre"
    assert config.training.validation_split == 0.1
    assert TrainConfig().training.epochs == 30  # the original is unchanged
    patience = config.with_overrides({"training.early_stopping_patience": "none"})
    assert patience.training.early_stopping_patience is None
    assert config.with_overrides({"rnn_units": "[64, 64]"}).model.rnn_units == (64, 64)


def test_with_overrides_rejects_unknown_keys_and_bad_strings():
    with pytest.raises(ValueError, match="unknown setting 'epoch'; the settings are") as raised:
        TrainConfig().with_overrides({"epoch": "3"})
    assert "training.epochs" in str(raised.value) and "model.rnn_units" in str(raised.value)
    with pytest.raises(ValueError, match=r"unknown setting 'model\.epochs'"):
        TrainConfig().with_overrides({"model.epochs": 3})
    with pytest.raises(ValueError, match=r"training\.epochs must be .* not '3\.5'"):
        TrainConfig().with_overrides({"epochs": "3.5"})
    with pytest.raises(ValueError, match=r"model\.rnn_units must be .* not '64-64'"):
        TrainConfig().with_overrides({"rnn_units": "64-64"})
    with pytest.raises(ValueError, match=r"model\.mask_padding must be True or False, not 'maybe'"):
        TrainConfig().with_overrides({"mask_padding": "maybe"})
    with pytest.raises(ValueError, match=r"training\.epochs must be .* not 0"):
        TrainConfig().with_overrides({"epochs": "0"})


def test_fields_list_every_setting_with_its_default():
    specs = TrainConfig.fields()
    assert [spec.name for spec in specs] == list(LIMITS)
    defaults = TrainConfig().to_dict()
    for spec in specs:
        section, field_name = spec.name.split(".")
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        assert default == defaults[section][field_name], spec.name
    by_name = {spec.name: spec for spec in specs}
    assert by_name["training.epochs"].type == "int"
    assert by_name["model.rnn_units"].type == "tuple[int, ...]"
    assert by_name["training.early_stopping_patience"].type == "int | None"
    assert (LIMITS["training.epochs"].low, LIMITS["training.epochs"].high) == (1, 1000)
    assert LIMITS["model.cell"].choices == ("simple_rnn", "lstm", "gru")


def test_importing_the_config_loads_no_keras():
    code = "import sys, rnnkit.config; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False False"


# --- equal settings written differently name one run ---------------------------------------------


def canonical_values(limit: Limit) -> st.SearchStrategy:
    """Values a setting accepts, in the form the config stores them."""
    if limit.kind == "bool":
        values = st.booleans()
    elif limit.kind == "choice":
        values = st.sampled_from(limit.choices)
    elif limit.kind == "int":
        values = st.integers(int(limit.low), int(limit.high))
    elif limit.kind == "float":
        values = st.floats(
            limit.low,
            limit.high,
            exclude_min=limit.low_open,
            exclude_max=limit.high_open,
            allow_nan=False,
        ).map(lambda number: number + 0.0)
        if not limit.low_open and limit.low == 0:
            values = st.just(0.0) | values  # the value "-0" must reach
    else:
        items = st.integers(int(limit.low), int(limit.high))
        values = st.lists(items, min_size=limit.min_items, max_size=limit.max_items).map(tuple)
    return st.none() | values if limit.optional else values


def spellings(limit: Limit, value) -> st.SearchStrategy:
    """Ways a person, a URL or a program may write `value` for a setting."""
    if value is None:
        return st.sampled_from([None, "none", "None", "null", "", "  NONE "])
    if limit.kind == "bool":
        words = ["true", "True", "TRUE", "yes", "on", "1"] if value else ["false", "no", "0"]
        return st.sampled_from([value, *words, f" {words[0]} ", "Off" if not value else "ON"])
    if limit.kind == "choice":
        return st.sampled_from([value, value.upper(), f" {value} ", value.title()])
    if limit.kind == "int":
        written = [value, np.int64(value), str(value), f"+{value}", f" {value} ", f"{value}.0"]
        return st.sampled_from([*written, f"{value}e0", f"{value}.000", f"0{value}"])
    if limit.kind == "float":
        written = [value, np.float64(value), Fraction(value), repr(value), f" {value!r} "]
        written += [repr(value).upper(), f"+{value!r}"]
        if value == 0:
            written += [-0.0, "-0", "-0.0", "0", 0, "-0e3", "+0.000", np.float64(-0.0)]
        elif value.is_integer():
            written += [int(value), str(int(value))]
        return st.sampled_from(written)
    separated = [",".join(map(str, value)), " ".join(map(str, value)), ", ".join(map(str, value))]
    written = [value, list(value), *separated, f"[{', '.join(map(str, value))}]"]
    written += [f"({','.join(map(str, value))})", [np.int64(item) for item in value]]
    if not value:
        written += ["none", "[]", "()", "  "]
    return st.sampled_from(written)


def key_spellings(name: str) -> list[str]:
    """The dotted name, and the bare field name where no other section has it."""
    bare = name.split(".")[1]
    unique = [other for other in LIMITS if other.split(".")[1] == bare] == [name]
    return [name, bare] if unique else [name]


@st.composite
def settings_written_twice(draw) -> tuple[dict, dict, dict]:
    """Some settings' values, and two ways of writing each."""
    names = draw(st.lists(st.sampled_from(list(LIMITS)), min_size=1, max_size=8, unique=True))
    values = {name: draw(canonical_values(LIMITS[name])) for name in names}
    written = []
    for _ in range(2):
        overrides = {}
        for name, value in values.items():
            key = draw(st.sampled_from(key_spellings(name)))
            overrides[key] = draw(spellings(LIMITS[name], value))
        written.append(overrides)
    return values, written[0], written[1]


@settings(max_examples=300, deadline=None)
@given(settings_written_twice(), st.sampled_from(sorted(PRESETS)))
def test_equal_settings_written_differently_give_one_run_id(written, preset_name):
    values, first, second = written
    base = preset(preset_name)
    one, other = base.with_overrides(first), base.with_overrides(second)
    assert one == other
    assert one.canonical_json() == other.canonical_json()
    assert one.run_id(FINGERPRINT) == other.run_id(FINGERPRINT)
    stored = one.flat_settings()
    for name, value in values.items():
        assert stored[name] == value and type(stored[name]) is type(value), name
    assert "-0.0" not in one.canonical_json()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_different_settings_give_different_run_ids(data):
    name = data.draw(st.sampled_from(list(LIMITS)))
    first = data.draw(canonical_values(LIMITS[name]))
    second = data.draw(canonical_values(LIMITS[name]).filter(lambda value: value != first))
    base = TrainConfig()
    one = base.with_overrides({name: data.draw(spellings(LIMITS[name], first))})
    other = base.with_overrides({name: data.draw(spellings(LIMITS[name], second))})
    assert one.run_id(FINGERPRINT) != other.run_id(FINGERPRINT)


def test_minus_zero_names_the_presets_run():
    seed = preset("seed")
    for written in ("-0", "-0.0", -0.0, "0"):
        changed = seed.with_overrides({"model.dropout_rate": written})
        assert changed.run_id(FINGERPRINT) == seed.run_id(FINGERPRINT), written
    zero = TrainConfig(model=ModelConfig(l2=-0.0))
    assert zero.canonical_json() == TrainConfig().canonical_json()


NOT_ASCII_DIGITS = ["３", "٣", "३", "3\u200b", "1_000", "nan", "inf", "-inf", "0x10", "²"]


@pytest.mark.parametrize("text", NOT_ASCII_DIGITS)
@pytest.mark.parametrize("name", ["training.epochs", "model.dropout_rate", "model.rnn_units"])
def test_numbers_written_in_other_scripts_or_words_are_refused(name, text):
    with pytest.raises(ValueError, match=f"{name} must be"):
        TrainConfig().with_overrides({name: text})


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=4))
def test_a_number_from_text_is_read_only_in_ascii_digits(text):
    if text.isascii():
        assert TrainConfig().with_overrides({"seed": text}).training.seed == int(text)
    else:
        with pytest.raises(ValueError, match=r"training\.seed must be"):
            TrainConfig().with_overrides({"seed": text})
