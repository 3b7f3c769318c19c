"""The estimate before training: operation counts by hand, the step counts an epoch and the
test-set pass really compute, and the calibration on completed runs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rnnkit import RunStore, estimate, preset, train
from rnnkit.devices import READ_BATCH_SIZE, evaluation_batch_size
from rnnkit.estimate import (
    COLD_START_SECONDS,
    DEFAULT_FLOPS_PER_SECOND,
    FUSED_FLOPS_PER_SECOND,
    FUSED_PADDED_FLOPS_PER_SECOND,
    NO_RNN_FLOPS_PER_SECOND,
    PROBE_REFERENCE_FLOPS_PER_SECOND,
    TEST_SPEED_RATIOS,
    WARM_START_SECONDS,
    estimate_epoch_seconds,
    estimate_run,
    evaluation_steps,
    forward_flops,
    training_flops_per_epoch,
    training_steps_per_epoch,
)
from rnnkit.settings import child_environment
from rnnkit.training import SAVE_SECONDS, setup_training, split_rows
from tests.helpers import tiny_masked_config


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs")


@pytest.fixture(autouse=True)
def reference_machine(monkeypatch):
    """This machine as fast as the one the defaults were measured on, unless a test says."""
    monkeypatch.setattr(estimate, "probe_speed", lambda: PROBE_REFERENCE_FLOPS_PER_SECOND)


def test_training_flops_by_hand():
    # Per step: 2 directions x (8 x 8 input + 8 x 8 recurrent) = 256 multiply-adds; per review
    # after the RNN: 16 x 8 + 8 x 1 = 136; 16 steps; x2 for multiply-add, x3 for training.
    tiny = tiny_masked_config()
    assert training_flops_per_epoch(tiny, 64) == 3 * 2 * 64 * (16 * 256 + 136)
    assert training_flops_per_epoch(tiny, 64, steps=500) == 3 * 2 * (500 * 256 + 64 * 136)
    assert training_flops_per_epoch(preset("seed"), 20000) == pytest.approx(2.08995072e12)
    # Without an RNN each step adds its 8-dim vector to the mean; per review, Dense(8) on 8 and
    # Dense(1) on 8: 64 + 8 = 72.
    no_rnn = tiny_masked_config(**{"model.rnn_units": "none"})
    assert training_flops_per_epoch(no_rnn, 64, steps=500) == 3 * 2 * (500 * 8 + 64 * 72)


def trained_steps(setup) -> int:
    """Time steps (rows x columns) of the batches the first training epoch feeds the model."""
    arguments = setup.fit_arguments
    if "y" in arguments:  # padded arrays
        return arguments["x"].size
    return sum(int(np.prod(tokens.shape)) for tokens, _ in arguments["x"].as_numpy_iterator())


@pytest.mark.parametrize("masked", [True, False])
def test_the_step_count_is_what_an_epoch_trains(data, masked):
    config = tiny_masked_config(**{"model.mask_padding": str(masked)})
    steps = training_steps_per_epoch(config, data.train.lengths)
    assert steps == trained_steps(setup_training(config, data))
    padded = len(split_rows(config, len(data.train))[1]) * config.data.max_length
    assert (steps < padded) if masked else (steps == padded)


def test_the_estimate_calibrates_on_completed_runs(data, store, monkeypatch):
    config = tiny_masked_config()
    lengths = data.train.lengths
    steps = training_steps_per_epoch(config, lengths)
    assert estimate_epoch_seconds(config, lengths) == pytest.approx(
        training_flops_per_epoch(config, 64, steps) / FUSED_FLOPS_PER_SECOND
    )  # a SimpleRNN: computed by rnnkit.fused
    run = train(config, data, store)
    assert run.timings["fused_rnn"] is True
    measured = float(np.median(run.timings["epoch_seconds"]))
    assert estimate_epoch_seconds(config, lengths, store) == pytest.approx(measured)
    # The unmasked config computes every padded step, at a speed of its own (its arrays are
    # longer): the masked run does not time it.
    unmasked = tiny_masked_config(**{"model.mask_padding": "false"})
    assert estimate_epoch_seconds(unmasked, lengths, store) == pytest.approx(
        training_flops_per_epoch(unmasked, 64) / FUSED_PADDED_FLOPS_PER_SECOND
    )
    unmasked_run = train(unmasked, data, store)
    assert estimate_epoch_seconds(unmasked, lengths, store) == pytest.approx(
        float(np.median(unmasked_run.timings["epoch_seconds"]))
    )
    # A model without an RNN is not timed by RNN runs, nor they by it: each keeps its speed.
    no_rnn = tiny_masked_config(**{"model.rnn_units": "none"})
    no_rnn_flops = training_flops_per_epoch(no_rnn, 64, steps)
    assert estimate_epoch_seconds(no_rnn, lengths, store) == pytest.approx(
        no_rnn_flops / NO_RNN_FLOPS_PER_SECOND
    )
    no_rnn_run = train(no_rnn, data, store)
    no_rnn_measured = float(np.median(no_rnn_run.timings["epoch_seconds"]))
    assert estimate_epoch_seconds(no_rnn, lengths, store) == pytest.approx(no_rnn_measured)
    assert estimate_epoch_seconds(config, lengths, store) == pytest.approx(measured)
    # A config Keras computes is not timed by the fused run: it keeps Keras' default speed.
    monkeypatch.setenv("RNNKIT_FUSED_RNN", "0")
    assert estimate_epoch_seconds(config, lengths, store) == pytest.approx(
        training_flops_per_epoch(config, 64, steps) / DEFAULT_FLOPS_PER_SECOND
    )


@pytest.mark.parametrize("masked", [True, False])
def test_the_test_step_count_is_what_the_test_pass_computes(data, masked):
    config = tiny_masked_config(**{"model.mask_padding": str(masked)})
    setup = setup_training(config, data)
    size = evaluation_batch_size(config)  # the fused reader reads this SimpleRNN's pass
    assert size == READ_BATCH_SIZE
    lstm = config.with_overrides({"model.cell": "lstm"})  # Keras reads it, at training's size
    assert evaluation_batch_size(lstm) == lstm.training.batch_size
    assert evaluation_steps(config, data.test.lengths) == setup.forward_steps(
        setup.prepared.x_test, size
    )


def test_the_whole_run_is_estimated_and_calibrated_phase_by_phase(data, store):
    config = tiny_masked_config()
    lengths, test_lengths = data.train.lengths, data.test.lengths
    first = estimate_run(config, lengths, test_lengths, store)
    epoch = estimate_epoch_seconds(config, lengths)
    assert first.start == COLD_START_SECONDS and first.save == SAVE_SECONDS
    assert first.epoch == pytest.approx(epoch) and first.epochs == 3
    # The test pass at its default speed against the training's: its share of an epoch's time
    # is its share of the operations over that ratio.
    train_flops = training_flops_per_epoch(config, 64, training_steps_per_epoch(config, lengths))
    test_flops = forward_flops(config, 20, evaluation_steps(config, test_lengths))
    ratio = TEST_SPEED_RATIOS["fused"]
    assert first.test == pytest.approx(epoch * test_flops / train_flops / ratio)
    assert first.total == pytest.approx(first.start + 3 * first.epoch + first.test + first.save)
    # After one completed run, each phase is what that run took.
    timings = train(config, data, store).timings
    again = estimate_run(config, lengths, test_lengths, store)
    assert again.start == pytest.approx(timings["start_seconds"])
    # A start in a process on standby is not estimated from this one's (TensorFlow's load).
    assert estimate_run(config, lengths, test_lengths, store, warm_start=True).start == (
        WARM_START_SECONDS
    )
    assert again.save == pytest.approx(timings["save_seconds"])
    assert again.test == pytest.approx(timings["test_seconds"])
    assert again.epoch == pytest.approx(float(np.median(timings["epoch_seconds"])))


def test_the_defaults_follow_how_fast_this_machine_is_now(data, store, monkeypatch):
    config = tiny_masked_config()
    lengths, test_lengths = data.train.lengths, data.test.lengths
    there = estimate_run(config, lengths, test_lengths)
    # A machine twice as fast (or half as busy) as the defaults' gets half of every phase.
    monkeypatch.setattr(estimate, "probe_speed", lambda: 2 * PROBE_REFERENCE_FLOPS_PER_SECOND)
    here = estimate_run(config, lengths, test_lengths)
    for phase in ("start", "epoch", "test", "save"):
        assert getattr(here, phase) == pytest.approx(getattr(there, phase) / 2)
    # A probe far off (a stalled or absurd timing) moves the defaults by 5x at most.
    for wild, factor in ((1e6, 5.0), (1e-6, 0.2), (0.0, 0.2)):
        monkeypatch.setattr(
            estimate, "probe_speed", lambda wild=wild: wild * PROBE_REFERENCE_FLOPS_PER_SECOND
        )
        assert estimate.machine_factor() == factor
        assert estimate_run(config, lengths, test_lengths).epoch == pytest.approx(
            there.epoch / factor
        )
    # Once a run completed here, its own figures count and the probe no longer does.
    timings = train(config, data, store).timings
    assert estimate_run(config, lengths, test_lengths, store).epoch == pytest.approx(
        float(np.median(timings["epoch_seconds"]))
    )


def test_the_probe_measures_once_per_five_minutes(monkeypatch):
    monkeypatch.undo()  # the real probe
    monkeypatch.setattr(estimate, "_probe", None)
    clock = [1000.0]
    monkeypatch.setattr(estimate.time, "monotonic", lambda: clock[0])
    first = estimate.probe_speed()
    assert np.isfinite(first) and first > 0
    clock[0] += estimate.PROBE_SECONDS_KEPT - 1
    monkeypatch.setattr(estimate.np, "matmul", lambda *arguments, **keywords: 1 / 0)
    assert estimate.probe_speed() == first  # kept: no matmul ran
    clock[0] += 2
    with pytest.raises(ZeroDivisionError):  # measured again
        estimate.probe_speed()


def test_the_estimate_does_not_load_tensorflow():
    # The Train page's estimate runs in the app's server: TensorFlow (half a GB) stays out.
    code = (
        "import sys, rnnkit\n"
        "from rnnkit.estimate import computation\n"
        "print(computation(rnnkit.preset('seed')), computation(rnnkit.preset('notebook')),\n"
        "      computation(rnnkit.preset('recommended')), 'tensorflow' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=child_environment(),
    )
    assert done.stdout.split() == ["fused", "fused_padded", "no_rnn", "False"]
