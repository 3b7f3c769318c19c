"""`python -m rnnkit`: train with a progress bar, list, show, delete; clear errors."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit import RunStore, load_imdb, preset, train
from rnnkit.cli import main
from rnnkit.runs import RunError
from rnnkit.settings import child_environment
from tests.helpers import TINY_OVERRIDES, tiny_masked_config

ROOT = Path(__file__).resolve().parents[1]


def tiny_arguments(corpus: Path, runs: Path) -> list[str]:
    arguments = ["--runs-dir", str(runs), "train", "--preset", "seed", "--data", str(corpus)]
    for key, value in TINY_OVERRIDES.items():
        arguments += ["--set", f"{key}={value}"]
    return arguments


def test_train_runs_show_delete(corpus, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main([*tiny_arguments(corpus, runs), "--epochs", "2"]) == 0
    output = capsys.readouterr()
    assert "epoch 1/2 [" in output.err and "ETA" in output.err
    assert "epoch 2: loss" in output.err
    run_id = output.err.split("run id ")[1].split()[0]
    assert f"run {run_id} ready" in output.out

    assert main([*tiny_arguments(corpus, runs), "--epochs", "2"]) == 0
    again = capsys.readouterr()
    assert "already trained" in again.err and "epoch 1/2 [" not in again.err

    assert main(["--runs-dir", str(runs), "runs"]) == 0
    listing = capsys.readouterr().out
    assert run_id in listing and "complete" in listing and "2 epochs" in listing

    assert main(["--runs-dir", str(runs), "show", run_id]) == 0
    shown = capsys.readouterr().out
    assert "test_accuracy" in shown and shown.count("\n    1  ") + shown.count("\n    2  ") == 2

    assert main(["--runs-dir", str(runs), "delete", run_id]) == 0
    assert main(["--runs-dir", str(runs), "delete", run_id]) == 1
    assert "no run" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "model.cell=transformer"], "model.cell must be"),
        (["--set", "training.epochs=0"], "training.epochs must be a whole number from 1"),
        (["--set", "colour=blue"], "unknown setting 'colour'"),
        (["--set", "epochs"], "--set takes key=value"),
        (["--epochs", "３"], "training.epochs must be a whole number from 1 to 1000, not '３'"),
        (["--epochs", "nan"], "training.epochs must be a whole number from 1 to 1000, not 'nan'"),
        (["--set", "model.dropout_rate=inf"], "model.dropout_rate must be a number from 0"),
    ],
)
def test_bad_settings_exit_2_with_a_clear_message(corpus, tmp_path, capsys, extra, message):
    assert main([*tiny_arguments(corpus, tmp_path / "runs"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_bad_data_path_and_bad_run_ids(tmp_path, capsys):
    arguments = ["--runs-dir", str(tmp_path), "train", "--data", str(tmp_path / "nope.tar.gz")]
    assert main(arguments) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["--runs-dir", str(tmp_path), "show", "../../etc"]) == 2
    assert "not a valid run id" in capsys.readouterr().err
    assert main(["--runs-dir", str(tmp_path), "show", "0123456789abcdef"]) == 1
    assert "0123456789abcdef" in capsys.readouterr().err


def test_python_dash_m_rnnkit_is_the_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rnnkit", "--runs-dir", str(tmp_path), "runs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "no runs in" in result.stdout
    unknown = subprocess.run(
        [sys.executable, "-m", "rnnkit", "train", "--preset", "huge"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert unknown.returncode == 2 and "invalid choice: 'huge'" in unknown.stderr


# --- run ids by prefix ---------------------------------------------------------------------------


def stopped_run(store: RunStore, run_id: str) -> None:
    """A run folder that training started (its config only)."""
    store.create(run_id, preset("seed").to_dict())


def test_show_and_delete_take_a_unique_prefix_of_four_or_more_characters(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    for run_id in ("8329d8a6aaaaaaaa", "8329d8a6bbbbbbbb", "0123456789abcdef"):
        stopped_run(store, run_id)
    arguments = ["--runs-dir", str(store.root)]

    assert main([*arguments, "show", "0123"]) == 1  # found: it is not finished
    assert "Run 0123456789abcdef is not finished" in capsys.readouterr().err
    assert main([*arguments, "show", "8329d8a6a"]) == 1
    assert "Run 8329d8a6aaaaaaaa is not finished" in capsys.readouterr().err

    assert main([*arguments, "show", "8329d8a6"]) == 2  # the app's 8 characters, twice
    error = capsys.readouterr().err
    assert "2 runs start with '8329d8a6': 8329d8a6aaaaaaaa, 8329d8a6bbbbbbbb" in error
    assert main([*arguments, "delete", "8329"]) == 2
    assert store.status("8329d8a6aaaaaaaa") == store.status("8329d8a6bbbbbbbb") == "incomplete"

    assert main([*arguments, "delete", "8329d8a6b"]) == 0
    assert "deleted run 8329d8a6bbbbbbbb" in capsys.readouterr().out
    assert main([*arguments, "delete", "8329d8a6"]) == 0  # unique now
    assert store.status("8329d8a6aaaaaaaa") == "missing"

    assert main([*arguments, "show", "feed"]) == 1
    assert f"There is no run feed in {store.root}" in capsys.readouterr().err
    for malformed in ("012", "0123456789abcdef0", "01G3", "0123-", "０１２３", "ABCD"):
        assert main([*arguments, "show", malformed]) == 2, malformed
        assert "its first 4 or more" in capsys.readouterr().err
    assert store.status("0123456789abcdef") == "incomplete"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sets(st.text("0123456789abcdef", min_size=16, max_size=16), max_size=6),
    st.text("0123456789abcdefABG-", min_size=0, max_size=17),
)
def test_resolving_a_prefix_finds_the_one_run_it_names(run_ids, prefix):
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        for run_id in run_ids:
            store.folder(run_id).mkdir(parents=True)
        matches = sorted(run_id for run_id in run_ids if run_id.startswith(prefix))
        well_formed = 4 <= len(prefix) <= 16 and set(prefix) <= set("0123456789abcdef")
        if not well_formed:
            with pytest.raises(ValueError, match="is not a valid run id"):
                store.resolve(prefix)
        elif len(matches) == 1:
            assert store.resolve(prefix) == matches[0]
        elif matches:
            with pytest.raises(ValueError, match=f"{len(matches)} runs start with {prefix!r}"):
                store.resolve(prefix)
        else:
            with pytest.raises(RunError, match=f"There is no run {prefix} in "):
                store.resolve(prefix)


# --- damaged runs --------------------------------------------------------------------------------


def rewrite_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


CLI_DAMAGES = {
    "history without epoch numbers": (
        "history.json",
        lambda path: rewrite_json(path, lambda history: history[0].pop("epoch")),
    ),
    "empty metrics": ("metrics.json", lambda path: path.write_text("{}")),
    "predictions of the wrong length": (
        "predictions.npy",
        lambda path: np.save(path, np.load(path)[:5], allow_pickle=False),
    ),
    "text where numbers belong": (
        "complete.json",
        lambda path: rewrite_json(path, lambda summary: summary.update(best_val_accuracy="0.9")),
    ),
}


def test_a_damaged_run_is_named_by_runs_and_show_and_trained_again(corpus, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main([*tiny_arguments(corpus, runs), "--epochs", "2"]) == 0
    run_id = capsys.readouterr().err.split("run id ")[1].split()[0]
    folder = RunStore(runs).folder(run_id)
    pristine = shutil.copytree(folder, tmp_path / "pristine")
    for damage, (name, spoil) in CLI_DAMAGES.items():
        shutil.rmtree(folder)
        shutil.copytree(pristine, folder)
        spoil(folder / name)
        assert main(["--runs-dir", str(runs), "show", run_id[:8]]) == 1, damage
        error = capsys.readouterr().err
        assert f"Run {run_id} in {folder} is damaged (marked complete, but {name}" in error
        assert f"python -m rnnkit delete {run_id}` or train it again" in error
        assert "Traceback" not in error
        assert main(["--runs-dir", str(runs), "runs"]) == 0
        listing = capsys.readouterr().out
        assert f"{run_id}  damaged" in listing and f"[marked complete, but {name}" in listing

    assert main([*tiny_arguments(corpus, runs), "--epochs", "2"]) == 0
    output = capsys.readouterr()
    assert "the stored run is damaged (marked complete, but complete.json" in output.err
    assert "trained again from scratch" in output.err and "epoch 1/2 [" in output.err
    run = RunStore(runs).load(run_id)
    assert [record["epoch"] for record in run.history] == [1, 2]
    assert len(run.predictions) == run.summary["test_reviews"] == 20


# --- interrupted by a signal ---------------------------------------------------------------------


def train_process(corpus: Path, runs: Path, epochs: int = 4) -> subprocess.Popen:
    """`python -m rnnkit train` of the tiny config, in batches of 2 (32 batches an epoch)."""
    arguments = [*tiny_arguments(corpus, runs), "--epochs", str(epochs)]
    arguments += ["--set", "training.batch_size=2"]
    return subprocess.Popen(
        [sys.executable, "-m", "rnnkit", *arguments],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(stream, marker: str, timeout: float = 240) -> str:
    """What `stream` gives up to and with `marker` (fails after `timeout` seconds)."""
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < deadline, f"{marker!r} not seen in time: {seen[-2000:]}"
        character = stream.read(1)
        assert character, f"the process ended before {marker!r}: {seen[-2000:]}"
        seen += character
    return seen


@pytest.mark.parametrize(
    "moment",
    [
        "  epoch 2: ",  # epoch 2's history is written, its checkpoint not yet
        "epoch 3/4 [",  # epoch 3 has started
    ],
)
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_signal_in_epoch_3_leaves_epochs_1_and_2_to_resume_from(
    corpus, tmp_path, signal_number, moment
):
    runs = tmp_path / "runs"
    process = train_process(corpus, runs)
    try:
        seen = read_until(process.stderr, moment)
        process.send_signal(signal_number)
        _, rest = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signal_number, seen + rest
    assert "interrupted: the run resumes from its last finished epoch" in rest
    assert "Traceback" not in rest
    run_id = seen.split("run id ")[1].split()[0]
    store = RunStore(runs)
    assert store.status(run_id) == "incomplete"
    kept = store.history_epochs(run_id)
    assert [record["epoch"] for record in kept] == [1, 2]
    assert store.checkpoint(run_id)[0] == 2  # the checkpoint agrees with the history

    config = tiny_masked_config(**{"training.epochs": "4", "training.batch_size": "2"})
    events = []
    run = train(config, load_imdb(num_words=100, path=corpus), store, on_progress=events.append)
    assert run.run_id == run_id
    assert events[0].kind == "start" and events[0].epoch == 3  # resumed, epochs 1-2 kept
    assert [record["epoch"] for record in run.history] == [1, 2, 3, 4]
    assert run.history[:2] == kept


def test_cluster_without_an_address_or_with_a_bad_one_exits_2(corpus, tmp_path, capsys):
    assert main([*tiny_arguments(corpus, tmp_path / "runs"), "--cluster"]) == 2
    assert "--cluster needs the cluster's address" in capsys.readouterr().err
    assert main([*tiny_arguments(corpus, tmp_path / "runs"), "--cluster", "head"]) == 2
    assert "--cluster must be auto, ray://HOST:PORT or HOST:PORT" in capsys.readouterr().err


@pytest.mark.cluster
def test_train_on_the_cluster_shows_the_bar_and_ctrl_c_stops_it_resumable(
    corpus, tmp_path, ray_cluster
):
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "rnnkit", *tiny_arguments(corpus, runs), "--epochs", "30"]
    command += ["--cluster"]  # its address from the variable: Ray's client server on the head
    environment = {**child_environment(), "RNNKIT_RAY_ADDRESS": ray_cluster.client_address}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    process = subprocess.Popen(command, cwd=ROOT, env=environment, text=True, **pipes)
    try:
        seen = read_until(process.stderr, "  epoch 1: ")
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=120)
    finally:
        process.kill()
    assert f"training on the Ray cluster at {ray_cluster.client_address}" in seen
    assert "epoch 1/30 [" in seen and " ETA " in seen
    assert process.returncode == 130, seen + rest
    assert "interrupted: the run resumes from its last finished epoch" in rest
    assert "Traceback" not in rest
    run_id = seen.split("run id ")[1].split()[0]
    store = RunStore(runs)
    assert store.status(run_id) == "incomplete"
    saved = len(store.history_epochs(run_id))
    assert 1 <= saved < 30

    again = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"epoch {saved + 1}/30 [" in again.stderr and "epoch 1/30 [" not in again.stderr
    assert f"run {run_id} ready" in again.stdout
    assert store.status(run_id) == "complete"


# --- a store that cannot be written --------------------------------------------------------------


@contextlib.contextmanager
def read_only(folder: Path):
    """Make `folder` read-only for this process, root included (root ignores file modes, not
    the immutable attribute); undone afterwards."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    try:
        probe = folder / "probe"
        with pytest.raises(OSError):
            probe.write_text("written")  # it is read-only
        yield folder
    finally:
        subprocess.run(undo, check=True)


def test_a_read_only_run_folder_is_named_with_the_fix(corpus, tmp_path, capsys):
    runs = tmp_path / "runs"
    config = tiny_masked_config(**{"training.epochs": "1"})
    run_id = config.run_id(load_imdb(num_words=100, path=corpus).fingerprint)
    store = RunStore(runs)
    store.create(run_id, config.to_dict())  # an earlier start, then the folder went read-only
    with read_only(store.folder(run_id)):
        assert main([*tiny_arguments(corpus, runs), "--epochs", "1"]) == 1
    error = capsys.readouterr().err
    assert f"error: Run {run_id} could not be saved in {store.folder(run_id)}: " in error
    assert f"make {store.folder(run_id)} writable, or point RNNKIT_RUNS_DIR" in error
    assert "Traceback" not in error and "PermissionError" not in error
    assert store.status(run_id) == "incomplete"  # nothing lost: it trains once writable
    assert main([*tiny_arguments(corpus, runs), "--epochs", "1"]) == 0


def test_a_file_given_as_the_run_store_is_named(corpus, tmp_path, capsys):
    (tmp_path / "runs").write_text("not a folder")
    assert main([*tiny_arguments(corpus, tmp_path / "runs")]) == 1
    error = capsys.readouterr().err
    assert f"a file stands where a folder belongs: move {tmp_path / 'runs'} away" in error
    assert "Traceback" not in error
