"""Training one configuration on the IMDB reviews: progress, cancel, resume, and the run store.

A config that masks the padding trains on batches of reviews of similar length, each cut to its
longest review (and is evaluated and predicted the same way): the mask makes the result
independent of how much padding a batch has, so this changes the speed, not the model. A config
that feeds the padding to the RNN (the notebook's) must compute every padded step.

`train()` never trains a configuration twice: under a cross-process lock per run id it returns
the stored run if one is complete, resumes an interrupted one from its last finished epoch (the
checkpoint `RunStore.write_checkpoint` saves after each epoch, after the epoch's history), and
otherwise trains from scratch; a damaged run is trained again from scratch. What it writes:
config, per-epoch history, test metrics, test-set probabilities, the model, timings, versions,
and last the completion marker.

While it writes a run, SIGINT (Ctrl+C) and SIGTERM stop training after the batch in progress,
as a `CancelToken` does, and are then delivered as usual (KeyboardInterrupt; the process ends):
a signal never lands between an epoch's history and its checkpoint, so the last finished epoch
is always where the run resumes. A second signal stops at once (every write is atomic).
"""

from __future__ import annotations

import contextlib
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rnnkit.config import TrainConfig
from rnnkit.data import ImdbData
from rnnkit.runs import Run, RunError, RunStore
from rnnkit.sequences import length_grouped_batches, pad
from rnnkit.settings import fused_rnn_enabled
from rnnkit.version import VERSION

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

# Length-grouped batches are sorted within pools of this many batches, so that which reviews
# share a batch changes every epoch while each batch still holds reviews of similar length.
POOL_BATCHES = 50

EventKind = Literal["start", "batch", "epoch", "end"]


@dataclass(frozen=True)
class ProgressEvent:
    """What training is doing now, for a progress bar or a live chart."""

    kind: EventKind
    run_id: str
    epoch: int  # 1-based; the epoch in progress (or just finished, for "epoch")
    epochs: int
    batch: int  # 1-based batch within the epoch; 0 outside batches
    batches: int  # batches per epoch
    logs: dict[str, float] = field(default_factory=dict)  # loss, accuracy, val_* at epoch end
    elapsed: float = 0.0  # seconds since this process started training
    eta: float | None = None  # seconds left for the remaining epochs, from the pace so far

    @property
    def fraction(self) -> float:
        """Share of all batches of all epochs done."""
        done = (self.epoch - 1) * self.batches + self.batch
        return min(1.0, done / max(1, self.epochs * self.batches))


class TrainingCancelled(Exception):
    """Training stopped because it was asked to; the run resumes from its last finished epoch."""


class CancelToken:
    """Ask a running `train()` to stop; it stops within one batch."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class PreparedData:
    """Padded arrays of the three parts that training uses."""

    x_train: np.ndarray  # (n_train, max_length) int32
    y_train: np.ndarray  # (n_train,) float32
    x_validation: np.ndarray
    y_validation: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def split_rows(config: TrainConfig, train_reviews: int) -> tuple[np.ndarray, np.ndarray]:
    """Which training-split reviews validate and which train: a seeded random share.

    Args:
        config: gives `training.validation_split` and `training.seed`.
        train_reviews: reviews in the training split.

    Returns:
        (validation_rows, training_rows), indices into the training split.
    """
    order = np.random.default_rng(config.training.seed).permutation(train_reviews)
    validation_count = round(train_reviews * config.training.validation_split)
    if validation_count < 1 or validation_count >= train_reviews:
        raise ValueError(
            f"training.validation_split={config.training.validation_split} leaves "
            f"{validation_count} of {train_reviews} training reviews for validation"
        )
    return order[:validation_count], order[validation_count:]


def prepare_data(config: TrainConfig, data: ImdbData) -> PreparedData:
    """Pad the reviews as `config.data` says and carve the validation split from train.

    The validation reviews are a seeded random share (`training.validation_split`) of the
    training split, so the test split is only used once, at the end.

    Args:
        config: the training configuration.
        data: reviews loaded with `num_words == config.data.num_words`.

    Returns:
        The padded arrays.
    """
    if data.num_words != config.data.num_words:
        raise ValueError(
            f"the data was loaded with num_words={data.num_words} but the config asks for "
            f"data.num_words={config.data.num_words}: load it with "
            f"load_imdb(num_words={config.data.num_words})"
        )
    settings = config.data
    validation_rows, training_rows = split_rows(config, len(data.train))

    def padded(sequences) -> np.ndarray:
        return pad(sequences, settings.max_length, settings.padding, settings.truncating)

    labels = data.train.labels.astype(np.float32)
    return PreparedData(
        x_train=padded(data.train.sequences[training_rows]),
        y_train=labels[training_rows],
        x_validation=padded(data.train.sequences[validation_rows]),
        y_validation=labels[validation_rows],
        x_test=padded(data.test.sequences),
        y_test=data.test.labels.astype(np.float32),
    )


@dataclass(frozen=True)
class TrainingSetup:
    """A built model and the arguments of its `model.fit`, as `train()` uses them."""

    model: keras.Model
    prepared: PreparedData
    fit_arguments: dict[str, Any]  # x (and y, batch_size), validation_data; no epochs
    batches_per_epoch: int
    config: TrainConfig

    def predict(self, tokens: np.ndarray) -> np.ndarray:
        """Probabilities (reviews,) for padded rows of token ids; with a mask, computed in
        batches of similar length cut to their longest review."""
        if not self.config.model.mask_padding:
            return self.model.predict(tokens, batch_size=512, verbose=0)[:, 0]
        labels = np.zeros(len(tokens), np.float32)
        dataset, order = _length_grouped(tokens, labels, self.config, shuffle=False, size=512)
        probabilities = self.model.predict(dataset.map(lambda x, y: x), verbose=0)[:, 0]
        result = np.empty(len(tokens), np.float32)
        result[order] = probabilities
        return result


def _cut(rows: np.ndarray, padding: str) -> np.ndarray:
    """Drop the columns that are padding in every row (at least one column is kept)."""
    width = max(1, int(np.count_nonzero(rows, axis=1).max()))  # id 0 is only ever padding
    return rows[:, :width] if padding == "post" else rows[:, rows.shape[1] - width :]


def _random_grouping(
    lengths: np.ndarray, size: int, seeds: np.random.Generator
) -> list[np.ndarray]:
    """One training pass's length-grouped batches, seeded by the next draw from `seeds` (a
    generator seeded by `training.seed`: the first draw is the first epoch's grouping)."""
    seed = int(seeds.integers(2**31))
    return length_grouped_batches(lengths, size, seed=seed, pool_batches=POOL_BATCHES)


def _length_grouped(
    tokens: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig,
    shuffle: bool,
    size: int | None = None,
) -> tuple[tf.data.Dataset, np.ndarray]:
    """Batches of reviews of similar length, each cut to its longest review, for Keras.

    With `shuffle`, every pass draws new pools and a new batch order (seeded by the config);
    otherwise the batches are in length order, the same every pass.

    Args:
        tokens: (reviews, max_length) padded token ids.
        labels: (reviews,) labels.
        config: gives the padding side, the batch size and the seed.
        shuffle: draw a new random grouping every pass (training).
        size: reviews per batch; default the config's batch size.

    Returns:
        The dataset (its number of batches known to Keras), and the rows of the first pass in
        the order the dataset yields them.
    """
    import tensorflow as tf

    size = size or config.training.batch_size
    lengths = np.count_nonzero(tokens, axis=1)
    seeds = np.random.default_rng(config.training.seed)

    def draw() -> list[np.ndarray]:
        if not shuffle:
            return length_grouped_batches(lengths, size, seed=None)
        return _random_grouping(lengths, size, seeds)

    first = draw()
    passes = [first]  # the first pass yields the batches drawn here

    def batches():
        rows_list = passes.pop() if passes else draw()
        for rows in rows_list:
            yield _cut(tokens[rows], config.data.padding), labels[rows]

    signature = (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.float32))
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(first)))
    # No autotuning: a generator has nothing to tune, and destroying an iterator (Keras makes
    # one per epoch and per validation pass) waits for the tuning thread to wake, which can
    # leave an epoch idle for seconds.
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = dataset.with_options(options)
    return dataset, np.concatenate(first)


def setup_training(
    config: TrainConfig, data: ImdbData, strategy: tf.distribute.Strategy | None = None
) -> TrainingSetup:
    """Seed, build the model and prepare what `model.fit` is given, exactly as `train()` does
    (benchmarks/train_speed.py times epochs of this).

    Args:
        config: the configuration.
        data: the reviews, loaded with `num_words == config.data.num_words`.
        strategy: a `tf.distribute` strategy to build the model under, or None.

    Returns:
        The `TrainingSetup`.
    """
    import keras

    from rnnkit.model import build_model

    prepared = prepare_data(config, data)
    keras.utils.set_random_seed(config.training.seed)
    if strategy is None:
        model = build_model(config)
    else:
        with strategy.scope():
            model = build_model(config)
    model.build((None, config.data.max_length))
    if config.model.mask_padding:
        batches, _ = _length_grouped(prepared.x_train, prepared.y_train, config, shuffle=True)
        validation, _ = _length_grouped(
            prepared.x_validation, prepared.y_validation, config, shuffle=False
        )
        # The dataset draws its own random grouping each epoch: nothing for Keras to shuffle.
        fit_arguments: dict[str, Any] = {
            "x": batches,
            "validation_data": validation,
            "shuffle": False,
        }
        count = int(batches.cardinality())
    else:
        batch_size = config.training.batch_size
        count = -(-len(prepared.x_train) // batch_size)
        fit_arguments = {
            "x": prepared.x_train,
            "y": prepared.y_train,
            "batch_size": batch_size,
            "validation_data": (prepared.x_validation, prepared.y_validation),
        }
    return TrainingSetup(model, prepared, fit_arguments, count, config)


def _progress_callback(
    run_id: str,
    epochs: int,
    batches: int,
    store: RunStore,
    on_progress: Callable[[ProgressEvent], None] | None,
    cancels: list[CancelToken],
) -> keras.callbacks.Callback:
    import keras

    class Progress(keras.callbacks.Callback):
        """Reports progress, records history each epoch, and stops on cancel."""

        def __init__(self) -> None:
            super().__init__()
            self.started = time.perf_counter()
            self.history = store.history_epochs(run_id)
            self.epoch = 0
            self.epoch_started = self.started
            self.epoch_seconds: list[float] = []
            self.batches_done = 0

        def emit(self, kind: EventKind, batch: int = 0, logs: dict | None = None) -> None:
            if on_progress is None:
                return
            elapsed = time.perf_counter() - self.started
            remaining = (epochs - self.epoch - 1) * batches + (batches - batch)
            eta = elapsed / self.batches_done * remaining if self.batches_done else None
            on_progress(
                ProgressEvent(
                    kind=kind,
                    run_id=run_id,
                    epoch=self.epoch + 1,
                    epochs=epochs,
                    batch=batch,
                    batches=batches,
                    logs={key: float(value) for key, value in (logs or {}).items()},
                    elapsed=elapsed,
                    eta=eta,
                )
            )

        def check_cancel(self) -> None:
            if any(cancel.cancelled for cancel in cancels):
                # Raised, not stop_training: Keras would otherwise close the partial epoch as
                # finished, and its history and checkpoint would skip the rest of it.
                raise TrainingCancelled(f"run {run_id} was cancelled in epoch {self.epoch + 1}")

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            # A resumed run starts at its restored epoch: history past it is dropped.
            self.history = self.history[:epoch]
            self.epoch = epoch
            self.epoch_started = time.perf_counter()
            if not self.batches_done:
                self.emit("start")

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.batches_done += 1
            self.emit("batch", batch + 1, logs)
            self.check_cancel()

        def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.check_cancel()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seconds = time.perf_counter() - self.epoch_started
            record = {"epoch": epoch + 1, "seconds": seconds}
            record.update({key: float(value) for key, value in (logs or {}).items()})
            self.history.append(record)
            store.write_history(run_id, self.history)
            self.emit("epoch", batches, logs)

    return Progress()


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {
        "rnnkit": VERSION,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _best_epoch(history: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [record for record in history if "val_accuracy" in record]
    if not scored:
        return {"best_epoch": None, "best_val_accuracy": None}
    best = max(scored, key=lambda record: record["val_accuracy"])
    return {"best_epoch": best["epoch"], "best_val_accuracy": best["val_accuracy"]}


def _checkpoint_callback(run_id: str, store: RunStore) -> keras.callbacks.Callback:
    import keras

    class Checkpoint(keras.callbacks.Callback):
        """Saves the training state after each epoch (`RunStore.write_checkpoint`)."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            store.write_checkpoint(run_id, epoch + 1, self.model.save_weights)

    return Checkpoint()


def _restore(
    model: keras.Model, store: RunStore, run_id: str, strategy: tf.distribute.Strategy | None
) -> int:
    """Load the run's checkpoint into `model`; the epoch to start at (0: from scratch).

    A checkpoint ahead of `history.json` (whose epochs it would lack) or one Keras cannot load
    (a weights file written by an older rnnkit, cut off) cannot be resumed: the run starts over.
    """
    checkpoint = store.checkpoint(run_id)
    if checkpoint is None:
        return 0
    epoch, weights = checkpoint
    try:
        if epoch > len(store.history_epochs(run_id)):
            raise ValueError(f"the checkpoint holds {epoch} epochs, the history fewer")
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)  # its state is restored too
            model.load_weights(weights)
    # Keras raises what the damage leads to: OSError, ValueError for missing variables, ...
    except Exception:
        store.discard_results(run_id)
        return 0
    return epoch


def _fit_and_store(
    config: TrainConfig,
    data: ImdbData,
    store: RunStore,
    run_id: str,
    on_progress: Callable[[ProgressEvent], None] | None,
    cancels: list[CancelToken],
    strategy: tf.distribute.Strategy | None,
) -> None:
    import keras

    from rnnkit.model import has_fused_layers, plain_copy

    started = time.perf_counter()
    setup = setup_training(config, data, strategy)
    model, prepared, training = setup.model, setup.prepared, config.training
    initial_epoch = _restore(model, store, run_id, strategy)
    progress = _progress_callback(
        run_id, training.epochs, setup.batches_per_epoch, store, on_progress, cancels
    )
    callbacks = [
        # History first, then the checkpoint: the checkpoint is never ahead of the history, and
        # a signal never stops training between the two (_SignalStop).
        progress,
        _checkpoint_callback(run_id, store),
    ]
    if training.early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=training.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    model.fit(
        **setup.fit_arguments,
        epochs=training.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=0,
    )
    fit_seconds = time.perf_counter() - started
    probabilities = setup.predict(prepared.x_test)
    test_metrics = test_metrics_of(probabilities, prepared.y_test)
    store.write_results(run_id, probabilities, test_metrics)
    store.save_model(run_id, plain_copy(model, config))
    history = progress.history
    timings = {
        "seconds": time.perf_counter() - started,
        "fit_seconds": fit_seconds,
        "epoch_seconds": [record["seconds"] for record in history],
        "fused_rnn": has_fused_layers(model),  # which speed it calibrates (the estimate)
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    store.write_run_facts(run_id, timings, _versions())
    store.mark_complete(
        run_id,
        {
            **_best_epoch(history),
            "test_accuracy": test_metrics["test_accuracy"],
            "epochs_done": len(history),
            "seconds": timings["seconds"],
            # What the predictions must be: one per test review of this data.
            "test_reviews": len(prepared.y_test),
            "data_fingerprint": data.fingerprint,
        },
    )
    progress.emit("end", setup.batches_per_epoch, test_metrics)


def test_metrics_of(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Test loss (binary cross-entropy) and accuracy at 0.5, from the predicted probabilities
    (one pass over the test set instead of predict and evaluate)."""
    clipped = np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)  # as Keras clips
    loss = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))
    accuracy = np.mean((probabilities > 0.5) == (labels > 0.5))
    return {"test_loss": float(loss), "test_accuracy": float(accuracy)}


# Default training speeds (floating-point operations per second) for the epoch estimate, until
# completed runs in the store give this machine's own, each from runs computed the same way:
# Keras' RNN loop; rnnkit.fused's SimpleRNN loop; a model without an RNN, whose few operations
# leave TensorFlow's per-batch work to dominate. docs/performance.md ("The estimate before
# training") gives the runs behind them.
DEFAULT_FLOPS_PER_SECOND = 40e9
FUSED_FLOPS_PER_SECOND = 100e9
NO_RNN_FLOPS_PER_SECOND = 0.85e9
# How a config's epochs are computed -> (in words, the default speed).
COMPUTATIONS = {
    "fused": ("rnnkit's fused SimpleRNN loop", FUSED_FLOPS_PER_SECOND),
    "keras": ("Keras' RNN loop", DEFAULT_FLOPS_PER_SECOND),
    "no_rnn": ("the mean of word vectors, no RNN", NO_RNN_FLOPS_PER_SECOND),
}
_GATES = {"simple_rnn": 1, "gru": 3, "lstm": 4}


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
    batches = _random_grouping(kept, config.training.batch_size, first_epoch)
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
    model = config.model
    directions = 2 if model.bidirectional else 1
    # Without an RNN each step adds its word vector to the review's mean.
    inputs, step_macs = model.embedding_dim, 0 if model.rnn_units else model.embedding_dim
    for units in model.rnn_units:
        step_macs += directions * _GATES[model.cell] * (inputs * units + units * units)
        inputs = directions * units
    row_macs = 0
    for units in (*model.dense_units, 1):
        row_macs += inputs * units
        inputs = units
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
    counted: dict[tuple, tuple[int, int]] = {}  # step settings -> (training reviews, steps)

    def epoch_flops(of: TrainConfig) -> float:
        key = _step_settings(of)  # most completed runs share these: count their steps once
        if key not in counted:
            rows = len(split_rows(of, len(lengths))[1])
            counted[key] = (rows, training_steps_per_epoch(of, lengths))
        return training_flops_per_epoch(of, *counted[key])

    kind = computation(config)
    speeds = []
    for summary in store.list_runs() if store is not None else []:
        if summary.status != "complete" or not summary.config:
            continue
        try:
            past = TrainConfig.from_dict(summary.config)
            timings = store.timings(summary.run_id)
            epoch_seconds = timings["epoch_seconds"]
            fused = bool(timings.get("fused_rnn", False))
            if epoch_seconds and computation(past, fused) == kind:
                speeds.append(epoch_flops(past) / float(np.median(epoch_seconds)))
        except (ValueError, KeyError, TypeError, OSError):
            continue  # a damaged run, or a split these lengths cannot make: not a measurement
    speed = float(np.median(speeds)) if speeds else COMPUTATIONS[kind][1]
    return epoch_flops(config) / speed


def computation(config: TrainConfig, fused: bool | None = None) -> str:
    """How the epochs of `config` are computed, a key of `COMPUTATIONS`: "no_rnn" (no RNN
    layer), "fused" (rnnkit.fused's loops) or "keras" (Keras' RNN layers).

    Args:
        config: the configuration.
        fused: whether its RNN layers were fused (a completed run's `timings.json` says);
            None: whether they would be in this process (`model.uses_fused_rnn`).

    Returns:
        The key.
    """
    from rnnkit.model import uses_fused_rnn

    if not config.model.rnn_units:
        return "no_rnn"
    if fused is None:
        fused = uses_fused_rnn(config)
    return "fused" if fused else "keras"


def train(
    config: TrainConfig,
    data: ImdbData,
    store: RunStore | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    cancel: CancelToken | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> Run:
    """Train `config` on `data` unless the store already holds the run; return the run.

    Two processes asking for one configuration train it once: the second waits for the
    first and returns its result. A run interrupted (killed, cancelled) resumes from its last
    finished epoch.

    Args:
        config: what to train.
        data: the reviews, loaded with `num_words == config.data.num_words`.
        store: where runs live (default: `RunStore()`, `RNNKIT_RUNS_DIR`).
        on_progress: called with a `ProgressEvent` at start, after each batch and epoch, and
            at the end.
        cancel: a `CancelToken`; cancelling raises `TrainingCancelled` within one batch.
        strategy: a `tf.distribute` strategy (e.g. MirroredStrategy) to train under.

    Returns:
        The completed `Run` (history, metrics, predictions, model).

    Raises:
        TrainingCancelled: `cancel` was set; the run stays resumable.
        KeyboardInterrupt: SIGINT (Ctrl+C) stopped training after its batch; resumable.
        RunError: the run store cannot be written (read-only, disk full, a file where a folder
            belongs); the message names the folder and the fix.
        ValueError: `RNNKIT_FUSED_RNN` is neither a yes nor a no (no run is created).
    """
    store = store or RunStore()
    fused_rnn_enabled()  # a bad RNNKIT_FUSED_RNN is named before any run folder is made
    run_id = config.run_id(data.fingerprint)
    cancels = [cancel] if cancel is not None else []
    stop = _SignalStop()
    try:
        with store.lock(run_id):
            if store.status(run_id) == "complete":
                return store.load(run_id)
            with stop:
                store.create(run_id, config.to_dict())
                try:
                    _fit_and_store(
                        config, data, store, run_id, on_progress, [*cancels, stop.token], strategy
                    )
                except TrainingCancelled:
                    raise
                except Exception as error:
                    # The store may be what failed: then the record cannot be written either,
                    # and the error raised says so.
                    with contextlib.suppress(RunError):
                        store.mark_failed(run_id, f"{type(error).__name__}: {error}")
                    raise
                finally:
                    _release_fused_buffers()
    except TrainingCancelled:
        stop.deliver()  # a signal asked for the stop: it has its usual effect now
        raise
    stop.deliver()
    return store.load(run_id)


class _SignalStop:
    """While it is entered (in the main thread), SIGINT and SIGTERM ask training to stop after
    the batch in progress, through `token`, instead of interrupting wherever Python is: between
    an epoch's history and its checkpoint, that lost the epoch. `deliver()` then gives the
    signal its usual effect. A second signal is delivered at once. Signals this process ignores
    stay ignored (a job's child ignores Ctrl+C, which its server handles)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.token = CancelToken()
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _SignalStop:
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                previous = signal.getsignal(number)
                if previous not in (signal.SIG_IGN, None):
                    self._previous[number] = previous
                    signal.signal(number, self._on_signal)
        return self

    def __exit__(self, *exception: object) -> None:
        self._restore()

    def _on_signal(self, number: int, frame: object) -> None:
        if self.received is not None:  # asked twice: at once
            self._restore()
            signal.raise_signal(number)
            return
        self.received = number
        self.token.cancel()

    def _restore(self) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous.clear()

    def deliver(self) -> None:
        """Give a signal received meanwhile its usual effect (the handlers are restored)."""
        self._restore()
        if self.received is not None:
            received, self.received = self.received, None
            signal.raise_signal(received)


def _release_fused_buffers() -> None:
    """Give back the memory `rnnkit.fused` keeps for the next batch (if it was used)."""
    fused = sys.modules.get("rnnkit.fused")
    if fused is not None:
        fused.release_buffers()
