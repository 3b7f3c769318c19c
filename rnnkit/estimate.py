"""How long a run will take before it starts: what the Train page promises a visitor.

A run's time is its phases: starting (the training process, TensorFlow, the reviews, the
model), each epoch with its validation, the test-set pass, and saving. Epochs and the test
pass are estimated from their operation counts (`rnnkit.architecture`: multiply-adds per step
and per review, over the steps the batches really have) at a speed; the start and the saving
take about the same time whatever the model. The speeds and times come from the completed runs
in the store that were computed the same way (`computation`), so the estimate learns this
machine; until there is one, from defaults measured on a 2-core CPU (docs/performance.md),
scaled by how fast a quick matmul runs here against there (`machine_factor`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from rnnkit.architecture import layer_table
from rnnkit.config import TrainConfig
from rnnkit.devices import evaluation_batch_size, uses_fused_rnn
from rnnkit.runs import RunStore
from rnnkit.sequences import length_grouped_batches
from rnnkit.training import SAVE_SECONDS, random_grouping, split_rows

# Default training speeds (floating-point operations per second) for the epoch estimate, until
# completed runs in the store give this machine's own, each from runs computed the same way:
# Keras' RNN loop; rnnkit.fused's SimpleRNN loop over length-grouped batches (masked); the same
# loop over every padded step (unmasked: batches all of one width, a little faster per
# operation); a model without an RNN, whose few operations leave TensorFlow's per-batch work to
# dominate. docs/performance.md ("The estimate before training") gives the runs behind them.
DEFAULT_FLOPS_PER_SECOND = 16.7e9
FUSED_FLOPS_PER_SECOND = 41e9
FUSED_PADDED_FLOPS_PER_SECOND = 48.5e9
NO_RNN_FLOPS_PER_SECOND = 0.265e9
# How a config's epochs are computed -> (in words, the default speed).
COMPUTATIONS = {
    "fused": ("rnnkit's fused SimpleRNN loop", FUSED_FLOPS_PER_SECOND),
    "fused_padded": (
        "rnnkit's fused SimpleRNN loop over every padded step",
        FUSED_PADDED_FLOPS_PER_SECOND,
    ),
    "keras": ("Keras' RNN loop", DEFAULT_FLOPS_PER_SECOND),
    "no_rnn": ("the mean of word vectors, no RNN", NO_RNN_FLOPS_PER_SECOND),
}


# The defaults above were measured where `probe_speed()` gave this: a machine as fast as that,
# as busy as then, gets them as they are; another gets them scaled by `machine_factor()`.
PROBE_REFERENCE_FLOPS_PER_SECOND = 142e9
PROBE_SIZE = 384  # a float32 matmul of two 384 x 384 matrices: 113 MFLOP, milliseconds
PROBE_REPEATS = 9
PROBE_SECONDS_KEPT = 300.0  # a measurement serves the estimates of the next 5 minutes
FACTOR_RANGE = (0.2, 5.0)  # beyond, the probe itself is more likely wrong than the machine

_probe_lock = threading.Lock()
_probe: tuple[float, float] | None = None  # (when measured, time.monotonic(); speed)


def probe_speed() -> float:
    """This machine's speed now, in floating-point operations per second of a NumPy float32
    matmul on all its cores: the median of PROBE_REPEATS timings (about 20-50 ms in all on
    a 2-core CPU), measured at most once per PROBE_SECONDS_KEPT.

    Returns:
        Operations per second.
    """
    global _probe
    with _probe_lock:
        now = time.monotonic()
        if _probe is not None and now - _probe[0] < PROBE_SECONDS_KEPT:
            return _probe[1]
        generator = np.random.default_rng(0)
        left, right = (
            generator.standard_normal((PROBE_SIZE, PROBE_SIZE), dtype=np.float32) for _ in range(2)
        )
        result = np.empty((PROBE_SIZE, PROBE_SIZE), np.float32)
        np.matmul(left, right, out=result)  # the first call pays for BLAS' threads starting
        seconds = []
        for _ in range(PROBE_REPEATS):
            started = time.perf_counter()
            np.matmul(left, right, out=result)
            seconds.append(time.perf_counter() - started)
        speed = 2 * PROBE_SIZE**3 / max(float(np.median(seconds)), 1e-9)
        _probe = (now, speed)
        return speed


def machine_factor() -> float:
    """How fast this machine is now against the one the defaults were measured on
    (`probe_speed()` / PROBE_REFERENCE_FLOPS_PER_SECOND, kept within FACTOR_RANGE): the
    default speeds are multiplied by it, the default times divided. Completed runs in the
    store replace the defaults, and so the factor, with this machine's own figures."""
    low, high = FACTOR_RANGE
    return min(high, max(low, probe_speed() / PROBE_REFERENCE_FLOPS_PER_SECOND))


def _step_settings(config: TrainConfig) -> tuple:
    """The settings `training_steps_per_epoch` depends on besides the lengths: configs alike in
    these train the same reviews over the same steps."""
    return (
        config.model.mask_padding,
        config.data.max_length,
        config.training.batch_size,
        config.training.validation_split,
        config.training.seed,
    )


def training_steps_per_epoch(config: TrainConfig, lengths: np.ndarray) -> int:
    """RNN time steps, summed over the reviews, that one training epoch computes.

    Without a mask every review is padded (or cut) to `max_length` steps. With
    `model.mask_padding`, training runs on length-grouped batches, each as wide as its longest
    review (cut at `max_length`), so only those steps are computed.

    Args:
        config: the configuration.
        lengths: (n,) token counts of the training split's reviews (`data.train.lengths`);
            validation is carved from them as in training.

    Returns:
        The step count.
    """
    rows = split_rows(config, len(lengths))[1]
    if not config.model.mask_padding:
        return len(rows) * config.data.max_length
    kept = np.minimum(np.asarray(lengths)[rows], config.data.max_length)
    first_epoch = np.random.default_rng(config.training.seed)
    batches = random_grouping(kept, config.training.batch_size, first_epoch)
    return int(sum(len(batch) * int(kept[batch].max()) for batch in batches))


def training_flops_per_epoch(
    config: TrainConfig, training_reviews: int, steps: int | None = None
) -> float:
    """Floating-point operations of one training epoch (forward and backward, about 3x the
    forward pass).

    Args:
        config: the configuration.
        training_reviews: reviews trained on per epoch (the validation share excluded).
        steps: RNN time steps summed over those reviews (`training_steps_per_epoch`); default
            every review padded to `max_length`.

    Returns:
        The operation count.
    """
    layers = layer_table(config)
    step_macs = sum(layer.step_macs for layer in layers)
    row_macs = sum(layer.review_macs for layer in layers)
    if steps is None:
        steps = training_reviews * config.data.max_length
    forward_macs = steps * step_macs + training_reviews * row_macs
    return 3 * 2 * forward_macs


def estimate_epoch_seconds(
    config: TrainConfig, lengths: np.ndarray, store: RunStore | None = None
) -> float:
    """Estimate seconds per epoch before training, from the operation count of the steps an
    epoch computes and the speed this machine showed in the store's completed runs computed
    the same way (`computation`), or else that way's default speed (`COMPUTATIONS`).

    Args:
        config: the configuration.
        lengths: (n,) token counts of the training split's reviews (`data.train.lengths`).
        store: completed runs calibrate the speed; None uses the default.

    Returns:
        The estimated seconds per epoch.
    """
    lengths = np.asarray(lengths)
    counted: dict[tuple, tuple[int, int]] = {}  # most completed runs share their step counts
    kind = computation(config)
    speeds = []
    for past, timings in _completed_timings(store):
        try:
            if computation(past, bool(timings["fused_rnn"])) == kind:
                seconds = float(np.median(timings["epoch_seconds"]))
                speeds.append(_epoch_flops(past, lengths, counted) / seconds)
        except (ValueError, KeyError, TypeError, ZeroDivisionError):
            continue  # a split these lengths cannot make, or no number: not a measurement
    speed = float(np.median(speeds)) if speeds else COMPUTATIONS[kind][1] * machine_factor()
    return _epoch_flops(config, lengths, counted) / speed


def _epoch_flops(config: TrainConfig, lengths: np.ndarray, counted: dict) -> float:
    """`training_flops_per_epoch` over the steps these training lengths give; `counted`
    keeps step counts by their settings for the next call."""
    key = _step_settings(config)
    if key not in counted:
        rows = len(split_rows(config, len(lengths))[1])
        counted[key] = (rows, training_steps_per_epoch(config, lengths))
    return training_flops_per_epoch(config, *counted[key])


def computation(config: TrainConfig, fused: bool | None = None) -> str:
    """How the epochs of `config` are computed, a key of `COMPUTATIONS`: "no_rnn" (no RNN
    layer), "fused" (rnnkit.fused's loops, masked), "fused_padded" (the same over every padded
    step) or "keras" (Keras' RNN layers).

    Args:
        config: the configuration.
        fused: whether its RNN layers were fused (a completed run's `timings.json` says);
            None: whether they would be in a training process on this machine
            (`devices.uses_fused_rnn`, answered without loading TensorFlow).

    Returns:
        The key.
    """
    if not config.model.rnn_units:
        return "no_rnn"
    if fused is None:
        fused = uses_fused_rnn(config, load_tensorflow=False)
    if not fused:
        return "keras"
    return "fused" if config.model.mask_padding else "fused_padded"


# Seconds from a Train click (or a command) to the first batch, until a completed run says:
# with TensorFlow loaded ahead (a job's process on standby), the cached reviews and the model's
# first trace; from a new process, TensorFlow's load too.
WARM_START_SECONDS = 0.8
COLD_START_SECONDS = 6.5
# A forward pass over the test set runs faster than the training's operations per second (its
# operations are a third of a training step's): the fused reader keeps no states and reads 512
# rows a batch; Keras' loop and the model without an RNN weigh per-batch work more than the
# arithmetic. Its speed over the training's, by computation, until completed runs give theirs.
TEST_SPEED_RATIOS = {"fused": 1.4, "fused_padded": 1.4, "keras": 1.7, "no_rnn": 1.65}


@dataclass(frozen=True)
class RunEstimate:
    """The estimated seconds of each phase of a run: `estimate_run`'s result."""

    start: float  # the request to the first batch
    epoch: float  # one epoch with its validation pass
    epochs: int
    test: float  # the test-set pass
    save: float  # writing the results and the model

    @property
    def total(self) -> float:
        """From the request to the results, every phase counted."""
        return self.start + self.epochs * self.epoch + self.test + self.save


def evaluation_steps(config: TrainConfig, lengths: np.ndarray) -> int:
    """RNN time steps the test-set pass computes, summed over its batches: length-grouped
    batches (`evaluation_batch_size`) cut to their longest review under a mask, else every
    review padded to `max_length` (as `TrainingSetup.predict` reads them).

    Args:
        config: the configuration.
        lengths: (n,) token counts of the test split's reviews (`data.test.lengths`).
    """
    if not config.model.mask_padding:
        return len(lengths) * config.data.max_length
    kept = np.minimum(np.asarray(lengths), config.data.max_length)
    size = evaluation_batch_size(config, load_tensorflow=False)
    batches = length_grouped_batches(kept, size, seed=None)
    return int(sum(len(batch) * int(kept[batch].max()) for batch in batches))


def forward_flops(config: TrainConfig, reviews: int, steps: int) -> float:
    """Floating-point operations of a forward pass over `reviews` reviews of `steps` steps in
    all (2 per multiply-add)."""
    layers = layer_table(config)
    step_macs = sum(layer.step_macs for layer in layers)
    row_macs = sum(layer.review_macs for layer in layers)
    return 2 * (steps * step_macs + reviews * row_macs)


def estimate_run(
    config: TrainConfig,
    train_lengths: np.ndarray,
    test_lengths: np.ndarray,
    store: RunStore | None = None,
    warm_start: bool = False,
) -> RunEstimate:
    """Estimate every phase of a run of `config` before it starts (see the module doc).

    Args:
        config: the configuration.
        train_lengths: (n,) token counts of the training split (`data.train.lengths`).
        test_lengths: (m,) token counts of the test split (`data.test.lengths`).
        store: completed runs calibrate the speeds and times; None uses the defaults.
        warm_start: the run will start in a process with TensorFlow loaded (the app's job
            board keeps one on standby); its start is estimated from such starts.

    Returns:
        The `RunEstimate` (`.total`: from the request to the results).
    """
    epoch = estimate_epoch_seconds(config, train_lengths, store)
    kind = computation(config)
    epoch_speed = _epoch_flops(config, np.asarray(train_lengths), {}) / epoch
    starts, saves, test_ratios = [], [], []
    for past, timings in _completed_timings(store):
        try:
            if "start_seconds" in timings:
                if bool(timings.get("warm_start", False)) == warm_start:
                    starts.append(float(timings["start_seconds"]))
                saves.append(float(timings["save_seconds"]))
            if "test_seconds" in timings and computation(past, timings["fused_rnn"]) == kind:
                past_speed = _epoch_flops(past, np.asarray(train_lengths), {}) / float(
                    np.median(timings["epoch_seconds"])
                )
                test_flops = forward_flops(
                    past, len(test_lengths), evaluation_steps(past, test_lengths)
                )
                test_ratios.append(test_flops / float(timings["test_seconds"]) / past_speed)
        except (ValueError, KeyError, TypeError, ZeroDivisionError):
            continue  # not a whole measurement
    ratio = float(np.median(test_ratios)) if test_ratios else TEST_SPEED_RATIOS[kind]
    test_flops = forward_flops(config, len(test_lengths), evaluation_steps(config, test_lengths))
    default_start = WARM_START_SECONDS if warm_start else COLD_START_SECONDS
    return RunEstimate(
        start=float(np.median(starts)) if starts else default_start / machine_factor(),
        epoch=epoch,
        epochs=config.training.epochs,
        test=test_flops / (epoch_speed * ratio),
        save=float(np.median(saves)) if saves else SAVE_SECONDS / machine_factor(),
    )


def _completed_timings(store: RunStore | None):
    """(config, timings) of every completed run in the store whose files can be read."""
    for summary in store.list_runs() if store is not None else []:
        if summary.status != "complete" or not summary.config:
            continue
        try:
            past = TrainConfig.from_dict(summary.config)
        except (ValueError, TypeError):
            continue
        timings = store.timings(summary.run_id)
        if timings.get("epoch_seconds"):
            yield past, {"fused_rnn": False, **timings}
