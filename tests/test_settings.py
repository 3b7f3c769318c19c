"""Settings from the environment: paths, the download address, the training limits, and what
hosted mode (`RNNKIT_HOSTED=1`, e.g. a Streamlit Community Cloud secret) changes."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rnnkit import RunStore
from rnnkit import settings as settings_module
from rnnkit.jobs import JobBoard, LimitError
from rnnkit.settings import (
    HOSTED_LIMITS,
    TrainingLimits,
    get_limits,
    get_settings,
    standby_enabled,
)
from rnnkit.ui.board import job_board
from tests.helpers import (
    APP,
    button,
    open_train_page,
    texts,
    tiny_masked_config,
    tiny_reviews,
    write_archive,
)

ROOT = Path(__file__).resolve().parents[1]
LIMIT_VARIABLES = [f"RNNKIT_{item.name.upper()}" for item in dataclasses.fields(TrainingLimits)]


@pytest.fixture(autouse=True)
def no_limits_from_the_environment(monkeypatch):
    for name in ["RNNKIT_HOSTED", "RNNKIT_DATA_URL", "RNNKIT_RUNS_DIR", *LIMIT_VARIABLES]:
        monkeypatch.delenv(name, raising=False)


def test_paths_and_the_download_address_come_from_the_environment(tmp_path, monkeypatch):
    settings = get_settings()
    assert settings.data_path is None and settings.data_url is None  # the official download
    assert settings.runs_dir == settings.cache_dir / "runs"
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "aclImdb_v1.tar.gz"))
    monkeypatch.setenv("RNNKIT_DATA_URL", " http://mirror.example/aclImdb_v1.tar.gz ")
    monkeypatch.setenv("RNNKIT_RUNS_DIR", str(tmp_path / "runs"))
    settings = get_settings()
    assert settings.data_path == tmp_path / "aclImdb_v1.tar.gz"
    assert settings.data_url == "http://mirror.example/aclImdb_v1.tar.gz"
    assert settings.runs_dir == tmp_path / "runs"


def test_the_limits_default_to_a_machine_of_ones_own():
    assert get_limits() == TrainingLimits()
    assert (get_limits().max_epochs, get_limits().max_units) == (50, 256)


@pytest.mark.parametrize("value", ["1", "true", "Yes", " on "])
def test_hosted_mode_turns_the_hosted_limits_on(monkeypatch, value):
    monkeypatch.setenv("RNNKIT_HOSTED", value)
    limits = get_limits()
    assert limits == HOSTED_LIMITS
    assert dataclasses.asdict(limits) == {
        "allow_training": True,
        "max_epochs": 10,
        "max_units": 128,
        "max_embedding_dim": 128,
        "max_length": 500,  # the notebook's 500 still fits
        "max_num_words": 20_000,
        "max_jobs": 1,
        "max_queue": 5,
        "max_training_minutes": 15.0,
    }


def test_hosted_mode_off_is_the_default(monkeypatch):
    monkeypatch.setenv("RNNKIT_HOSTED", "0")
    assert get_limits() == TrainingLimits()


def test_a_limit_variable_overrides_the_hosted_default(monkeypatch):
    monkeypatch.setenv("RNNKIT_HOSTED", "1")
    monkeypatch.setenv("RNNKIT_MAX_EPOCHS", "3")
    monkeypatch.setenv("RNNKIT_MAX_TRAINING_MINUTES", "2.5")
    monkeypatch.setenv("RNNKIT_ALLOW_TRAINING", "off")
    limits = get_limits()
    assert (limits.max_epochs, limits.max_training_minutes) == (3, 2.5)
    assert limits.allow_training is False
    assert limits.max_units == HOSTED_LIMITS.max_units  # the others stay hosted


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RNNKIT_HOSTED", "maybe", "RNNKIT_HOSTED must be 1/true/yes/on or 0/false/no/off"),
        ("RNNKIT_MAX_UNITS", "0", "RNNKIT_MAX_UNITS must be a positive int, not '0'"),
        ("RNNKIT_MAX_EPOCHS", "ten", "RNNKIT_MAX_EPOCHS must be a positive int, not 'ten'"),
        ("RNNKIT_MAX_TRAINING_MINUTES", "-1", "must be a positive float, not '-1'"),
    ],
)
def test_a_bad_value_names_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        get_limits()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"training.epochs": "30"}, "training.epochs = 30 is over this server's limit of 10"),
        ({"model.rnn_units": "256"}, "model.rnn_units = 256 is over this server's limit of 128"),
        ({"data.max_length": "800"}, "data.max_length = 800 is over this server's limit of 500"),
        (
            {"data.num_words": "30000"},
            "data.num_words = 30000 is over this server's limit of 20000",
        ),
    ],
)
def test_a_hosted_job_board_refuses_what_the_hosted_limits_do_not_allow(
    tmp_path, monkeypatch, data, gated, overrides, message
):
    monkeypatch.setenv("RNNKIT_HOSTED", "1")
    board = JobBoard(RunStore(tmp_path / "runs"))  # its limits read from the environment
    assert board.limits == HOSTED_LIMITS
    with pytest.raises(LimitError, match=message):
        board.submit(tiny_masked_config(**overrides), data)
    assert gated.calls == [] and board.active() == []


def test_without_hosted_mode_the_same_request_is_accepted(tmp_path, data, gated):
    board = JobBoard(RunStore(tmp_path / "runs"))
    job = board.submit(tiny_masked_config(**{"training.epochs": "30"}), data)
    assert job.state in ("queued", "running")
    board.cancel(job.run_id)
    gated.gate(job.run_id).set()
    board.shutdown()


def test_the_train_page_of_a_hosted_server_refuses_the_notebooks_30_epochs(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(write_archive(tmp_path / "c.tar.gz", tiny_reviews())))
    monkeypatch.setenv("RNNKIT_HOSTED", "1")
    job_board.clear()  # a board that reads the hosted limits
    try:
        app = open_train_page(**{"training.epochs": "30"})
        assert "Refused: training.epochs = 30 is over this server's limit of 10" in texts(app)
        assert button(app, "train_start").disabled
    finally:
        job_board().shutdown()
        job_board.clear()


def test_a_hosted_train_page_opens_the_preset_within_the_limits(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(write_archive(tmp_path / "c.tar.gz", tiny_reviews())))
    monkeypatch.setenv("RNNKIT_HOSTED", "1")
    job_board.clear()
    try:
        app = AppTest.from_file(APP, default_timeout=120)
        app.switch_page("views/train.py").run()
        assert not app.exception, app.exception
        (epochs,) = [
            field for field in app.number_input if field.key == "cfg_field_training.epochs"
        ]
        assert epochs.value == 10  # the seed preset's 30, lowered to the hosted limit
        assert "This server's limits lower the preset's training.epochs to 10." in texts(app)
        assert not [text for text in texts(app) if text.startswith("Refused")]
    finally:
        job_board().shutdown()
        job_board.clear()


def test_the_secrets_example_sets_only_known_variables_as_strings():
    """Streamlit turns root-level secrets into environment variables, but only strings and
    numbers: a TOML `true` would silently set nothing."""
    example = tomllib.loads((ROOT / ".streamlit" / "secrets.toml.example").read_text())
    known = {"RNNKIT_DATA", "RNNKIT_DATA_URL", "RNNKIT_CACHE_DIR", "RNNKIT_RUNS_DIR"}
    known |= {"RNNKIT_HOSTED", *LIMIT_VARIABLES}
    assert example["RNNKIT_HOSTED"] == "1"
    assert set(example) <= known
    assert all(isinstance(value, str) for value in example.values())
    for name in example:
        assert f"`{name}`" in settings_module.__doc__  # documented where settings are read


@pytest.mark.parametrize(
    ("hosted", "standby", "expected"),
    [(None, None, True), ("1", None, False), ("1", "1", True), (None, "0", False)],
)
def test_a_process_on_standby_is_the_default_but_on_a_hosted_server(
    monkeypatch, hosted, standby, expected
):
    for name, value in (("RNNKIT_HOSTED", hosted), ("RNNKIT_STANDBY", standby)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert standby_enabled() is expected
