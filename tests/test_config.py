"""TrainConfig: the notebook's defaults, validation messages, dict and JSON forms, run ids."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from rnnkit.config import (
    LIMITS,
    PRESETS,
    DataConfig,
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
