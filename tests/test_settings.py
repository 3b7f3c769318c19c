"""Settings from the environment: paths, the download address, the training limits, and what
hosted mode (`RNNKIT_HOSTED=1`, e.g. a Streamlit Community Cloud secret) changes."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from rnnkit import RunStore, cli
from rnnkit import settings as settings_module
from rnnkit.config import LIMITS
from rnnkit.jobs import JobBoard, LimitError
from rnnkit.parsing import parse_number
from rnnkit.settings import (
    HOSTED_LIMITS,
    LIMIT_RANGES,
    LIMITED_SETTINGS,
    SettingsError,
    TrainingLimits,
    check_environment,
    get_limits,
    get_settings,
    ray_address,
    ray_job_cpus,
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
    wait_for,
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
        (
            "RNNKIT_MAX_UNITS",
            "0",
            "RNNKIT_MAX_UNITS must be a whole number from 1 to 1,024, not '0'",
        ),
        ("RNNKIT_MAX_EPOCHS", "ten", "RNNKIT_MAX_EPOCHS must be a whole number from 1 to 1,000"),
        (
            "RNNKIT_MAX_TRAINING_MINUTES",
            "nan",
            "RNNKIT_MAX_TRAINING_MINUTES must be a number from 1 to 10,080 minutes, not 'nan'",
        ),
        ("RNNKIT_MAX_TRAINING_MINUTES", "-1", "must be a number from 1 to 10,080 minutes"),
        ("RNNKIT_MAX_JOBS", "65", "RNNKIT_MAX_JOBS must be a whole number from 1 to 64"),
        ("RNNKIT_MAX_QUEUE", "１０", "RNNKIT_MAX_QUEUE must be a whole number from 0 to 1,000"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_allows(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=re.escape(message)):
        get_limits()
    with pytest.raises(SettingsError, match=re.escape(message)):
        check_environment()


def test_the_limits_ranges_end_where_a_configs_own_limits_end():
    for setting, field_name in LIMITED_SETTINGS.items():
        assert LIMIT_RANGES[field_name].high == LIMITS[setting].high, setting
        assert LIMIT_RANGES[field_name].low >= LIMITS[setting].low, setting
    assert {item.name for item in dataclasses.fields(TrainingLimits)} == {
        "allow_training",
        *LIMIT_RANGES,
    }
    for limits in (TrainingLimits(), HOSTED_LIMITS):  # the defaults are within their ranges
        for field_name, allowed in LIMIT_RANGES.items():
            assert allowed.low <= getattr(limits, field_name) <= allowed.high, field_name


# What an environment variable can hold: any text but NUL (and no lone surrogate).
ENVIRONMENT_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8
)
# Text an environment may hold for a number: numbers in and out of range, written many ways,
# and what is no number.
ENVIRONMENT_NUMBERS = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(-1e6, 1e6).map(lambda number: f"{number:.3f}"),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-0", "0", "1_000"]),
    st.sampled_from(["１０", "٣", "10 minutes", "", "   ", "0x10", "1,000", "+5", " 7 "]),
    ENVIRONMENT_TEXT,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(LIMIT_RANGES)), ENVIRONMENT_NUMBERS)
def test_a_limit_from_the_environment_is_a_number_in_its_range_or_refused(field_name, text):
    name = f"RNNKIT_{field_name.upper()}"
    allowed = LIMIT_RANGES[field_name]
    try:
        expected = parse_number(text, allowed.kind)
    except ValueError:
        expected = None
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(name, text)
        if not text.strip():  # unset
            assert getattr(get_limits(), field_name) == getattr(TrainingLimits(), field_name)
        elif expected is not None and allowed.low <= expected <= allowed.high:
            value = getattr(get_limits(), field_name)
            assert value == expected and math.isfinite(value)
            assert type(value) is (int if allowed.kind == "int" else float)
            check_environment()  # no complaint
        else:
            with pytest.raises(SettingsError) as raised:
                get_limits()
            problem = f"{name} must be {allowed.allowed}, not {text.strip()!r}"
            assert raised.value.problems == [problem]
            with pytest.raises(SettingsError, match=re.escape(problem)):
                check_environment()


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["RNNKIT_HOSTED", "RNNKIT_ALLOW_TRAINING", "RNNKIT_FUSED_RNN"]),
    st.one_of(ENVIRONMENT_TEXT, st.sampled_from(["1", "True", " off ", "YES", "2", "oui"])),
)
def test_a_yes_or_no_variable_takes_only_a_yes_or_a_no(name, text):
    words = {"1", "true", "yes", "on", "0", "false", "no", "off", ""}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(name, text)
        if text.strip().lower() in words:
            check_environment()
        else:
            with pytest.raises(SettingsError, match=f"{name} must be 1/true/yes/on or 0/false"):
                check_environment()


def test_check_environment_names_every_bad_variable_at_once(tmp_path, monkeypatch):
    (tmp_path / "a file").write_text("not a folder")
    monkeypatch.setenv("RNNKIT_MAX_TRAINING_MINUTES", "nan")
    monkeypatch.setenv("RNNKIT_MAX_JOBS", "0")
    monkeypatch.setenv("RNNKIT_HOSTED", "sometimes")
    monkeypatch.setenv("RNNKIT_FUSED_RNN", "2")
    monkeypatch.setenv("RNNKIT_DATA_URL", "ftp://mirror.example/aclImdb.tar.gz")
    monkeypatch.setenv("RNNKIT_RUNS_DIR", str(tmp_path / "a file" / "runs"))
    with pytest.raises(SettingsError) as raised:
        check_environment()
    assert isinstance(raised.value, ValueError)
    message = str(raised.value)
    assert message.startswith("6 environment variables cannot be used:\n- ")
    for name in (
        "RNNKIT_MAX_TRAINING_MINUTES",
        "RNNKIT_MAX_JOBS",
        "RNNKIT_HOSTED",
        "RNNKIT_FUSED_RNN",
        "RNNKIT_DATA_URL must be an http://, https:// or file:// address",
        f"RNNKIT_RUNS_DIR must be a folder: {tmp_path / 'a file'} is a file, not a folder",
    ):
        assert f"- {name}" in message, name
    assert message.endswith("Fix or unset them and start again.")


@pytest.mark.parametrize("name", ["RNNKIT_CACHE_DIR", "RNNKIT_RUNS_DIR"])
def test_a_file_where_a_folder_belongs_is_refused(tmp_path, monkeypatch, name):
    (tmp_path / "a file").write_text("not a folder")
    monkeypatch.setenv(name, str(tmp_path / "a file"))
    with pytest.raises(SettingsError, match=f"{name} must be a folder: .*a file is a file"):
        check_environment()
    monkeypatch.setenv(name, str(tmp_path / "a file" / "below"))
    with pytest.raises(SettingsError, match=f"{name} must be a folder: .*a file is a file"):
        check_environment()
    monkeypatch.setenv(name, str(tmp_path / "not yet" / "made"))
    check_environment()  # made when needed


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_as_the_data_is_refused(monkeypatch, device):
    monkeypatch.setenv("RNNKIT_DATA", device)
    with pytest.raises(SettingsError, match=f"RNNKIT_DATA must name .*{device} is a character"):
        check_environment()


def test_a_named_pipe_as_the_data_is_refused(tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "pipe")
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "pipe"))
    with pytest.raises(SettingsError, match="is a named pipe, not an archive or a folder"):
        check_environment()


def test_the_command_line_refuses_bad_settings_with_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RNNKIT_MAX_TRAINING_MINUTES", "nan")
    monkeypatch.setenv("RNNKIT_MAX_QUEUE", "-1")
    assert cli.main(["--runs-dir", str(tmp_path), "runs"]) == 2
    error = capsys.readouterr().err
    assert "RNNKIT_MAX_TRAINING_MINUTES must be a number from 1 to 10,080 minutes" in error
    assert "RNNKIT_MAX_QUEUE must be a whole number from 0 to 1,000, not '-1'" in error
    assert "Traceback" not in error


@pytest.mark.parametrize("page", ["views/home.py", "views/train.py", "views/predictions.py"])
def test_the_app_shows_bad_settings_as_an_error_on_every_page(monkeypatch, page):
    monkeypatch.setenv("RNNKIT_MAX_TRAINING_MINUTES", "nan")
    monkeypatch.setenv("RNNKIT_MAX_EPOCHS", "0")
    app = AppTest.from_file(APP, default_timeout=60)
    app.switch_page(page).run()
    assert not app.exception, app.exception
    (error,) = [alert.value for alert in app.error]
    assert "This server's settings cannot be used" in error
    assert "RNNKIT_MAX_TRAINING_MINUTES must be a number from 1 to 10,080 minutes" in error
    assert "RNNKIT_MAX_EPOCHS must be a whole number from 1 to 1,000, not '0'" in error
    assert not app.title  # the page did not run


def test_a_queue_of_zero_starts_a_job_at_once_or_refuses_it(tmp_path, monkeypatch, data, gated):
    monkeypatch.setenv("RNNKIT_MAX_QUEUE", "0")
    board = JobBoard(RunStore(tmp_path / "runs"))
    assert board.limits.max_queue == 0
    running = board.submit(tiny_masked_config(), data)
    wait_for(lambda: board.view(running.run_id).state == "running")
    with pytest.raises(LimitError, match=r"The queue is full: 0 waiting, .*RNNKIT_MAX_QUEUE = 0"):
        board.submit(tiny_masked_config(**{"training.seed": "2"}), data)
    gated.gate(running.run_id).set()
    board.wait(running.run_id, 10)
    board.shutdown()


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


@pytest.mark.parametrize(
    "address", ["auto", "ray://head.example:10001", "10.0.0.5:6379", "[::1]:6379", " auto "]
)
def test_a_ray_address_names_a_cluster(monkeypatch, address):
    monkeypatch.setenv("RNNKIT_RAY_ADDRESS", address)
    assert ray_address() == address.strip()


@pytest.mark.parametrize(
    "address",
    ["head", "ray://head", "head:0", "head:65536", "http://head:8265", "ray:// head:1", "auto:",
     "ray://head:10001/path", "-head:1", "head:１"],
)  # fmt: skip
def test_a_bad_ray_address_is_refused_with_what_is_allowed(monkeypatch, address):
    monkeypatch.setenv("RNNKIT_RAY_ADDRESS", address)
    allowed = "RNNKIT_RAY_ADDRESS must be auto, ray://HOST:PORT or HOST:PORT"
    with pytest.raises(SettingsError, match=re.escape(allowed)):
        ray_address()
    with pytest.raises(SettingsError, match=re.escape(allowed)):
        check_environment()


def test_an_unset_ray_address_keeps_the_jobs_on_this_machine(monkeypatch):
    assert ray_address() is None and ray_job_cpus() == 1
    job_board.clear()
    try:
        board = job_board()
        assert board.ray_address is None
    finally:
        job_board().shutdown()
        job_board.clear()
    monkeypatch.setenv("RNNKIT_RAY_ADDRESS", "auto")
    monkeypatch.setenv("RNNKIT_RAY_JOB_CPUS", "4")
    monkeypatch.setenv("RNNKIT_STANDBY", "1")
    try:
        board = job_board()
        # The nodes train: no training process waits on standby on the server.
        assert (board.ray_address, board.job_cpus, board.standby) == ("auto", 4, False)
    finally:
        job_board().shutdown()
        job_board.clear()


def test_a_ray_address_without_ray_installed_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("RNNKIT_RAY_ADDRESS", "ray://head:10001")
    real_find_spec = settings_module.importlib.util.find_spec
    monkeypatch.setattr(
        settings_module.importlib.util,
        "find_spec",
        lambda name, *rest: None if name == "ray" else real_find_spec(name, *rest),
    )
    with pytest.raises(SettingsError) as raised:
        check_environment()
    assert str(raised.value) == (
        "RNNKIT_RAY_ADDRESS is set to 'ray://head:10001', but ray is not installed: pip install "
        "-r requirements-cluster.txt (or unset the variable to train on this machine). Fix or "
        "unset the variable and start again."
    )


@pytest.mark.parametrize("text", ["0", "65", "two", "1.5"])
def test_the_cpus_of_a_cluster_job_are_a_whole_number_from_1_to_64(monkeypatch, text):
    monkeypatch.setenv("RNNKIT_RAY_JOB_CPUS", text)
    with pytest.raises(SettingsError, match="RNNKIT_RAY_JOB_CPUS must be a whole number from 1"):
        ray_job_cpus()


def test_training_processes_get_tensorflows_pooling_allocator_unless_told_otherwise(
    monkeypatch,
):
    from rnnkit import jobs

    monkeypatch.delenv("TF_CPU_ALLOCATOR_USE_BFC", raising=False)
    assert settings_module.training_environment()["TF_CPU_ALLOCATOR_USE_BFC"] == "true"
    # A training job's process is started with it.
    started = {}

    def popen(command, **options):
        started.update(options["env"])
        raise OSError("not started in this test")

    monkeypatch.setattr(jobs.subprocess, "Popen", popen)
    with pytest.raises(OSError, match="not started"):
        jobs.TrainingProcess.start(["python", "-c", "pass"])
    assert started["TF_CPU_ALLOCATOR_USE_BFC"] == "true"
    # The command line sets it before TensorFlow loads; a value already set is kept.
    settings_module.set_training_variables()
    assert os.environ["TF_CPU_ALLOCATOR_USE_BFC"] == "true"
    monkeypatch.setenv("TF_CPU_ALLOCATOR_USE_BFC", "false")
    settings_module.set_training_variables()
    assert os.environ["TF_CPU_ALLOCATOR_USE_BFC"] == "false"
    assert settings_module.training_environment()["TF_CPU_ALLOCATOR_USE_BFC"] == "false"
