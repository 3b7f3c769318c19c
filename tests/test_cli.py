"""`python -m rnnkit`: train with a progress bar, list, show, delete; clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rnnkit.cli import main
from tests.helpers import TINY_OVERRIDES

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
