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
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rnnkit.config import TrainConfig
from rnnkit.data import ImdbData
from rnnkit.devices import evaluation_batch_size, uses_fused_rnn
from rnnkit.runs import Run, RunError, RunStore
from rnnkit.sequences import forward_batches, length_grouped_batches, pad
from rnnkit.settings import fused_rnn_enabled
from rnnkit.version import VERSION

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

# Length-grouped batches are sorted within pools of this many batches, so that which reviews
# share a batch changes every epoch while each batch still holds reviews of similar length.
POOL_BATCHES = 50

# What a run is doing, in order: "start" (the first epoch begins), "batch" (one trained),
# "validate" (the epoch's validation pass begins), "epoch" (one finished), "evaluate" (the
# test-set pass begins), "save" (the results and the model are written), "end" (done).
EventKind = Literal["start", "batch", "validate", "epoch", "evaluate", "save", "end"]
# A forward pass costs about a third of a training step (forward and backward) over the same
# steps: what validation and the test-set pass are estimated at, before they are timed.
FORWARD_SHARE = 1 / 3
SAVE_SECONDS = 0.5  # writing the results and the model: about constant, and short


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
    elapsed: float = 0.0  # seconds since the run was asked for (its process started)
    eta: float | None = None  # seconds left for every phase still to come, from the pace so far
    sent_at: float = 0.0  # when the event was made (`time.time()`), to count the time left down
    test_reviews: int = 0  # reviews the test-set pass reads

    @property
    def fraction(self) -> float:
        """Share of all batches of all epochs done."""
        done = (self.epoch - 1) * self.batches + self.batch
        return min(1.0, done / max(1, self.epochs * self.batches))

    def seconds_left(self, now: float | None = None) -> float | None:
        """The time left at `now` (default: the current time), counted down from `eta`."""
        if self.eta is None:
            return None
        return max(0.0, self.eta - ((time.time() if now is None else now) - self.sent_at))

    def elapsed_at(self, now: float | None = None) -> float:
        """Seconds since the run was asked for, at `now` (default: the current time)."""
        return self.elapsed + max(0.0, (time.time() if now is None else now) - self.sent_at)

    def overall_fraction(self, now: float | None = None) -> float:
        """Share of the whole run's time done, every phase counted (never 1 before the end)."""
        if self.kind == "end":
            return 1.0
        left = self.seconds_left(now)
        if left is None:
            return self.fraction
        done = self.elapsed_at(now)
        return min(0.99, done / max(1e-9, done + left))

    @property
    def phase(self) -> str:
        """What the run is doing, in words: "epoch 2 of 5: batch 31 of 157", "evaluating the
        test set (24,999 reviews)", ..."""
        if self.kind == "validate":
            return f"epoch {self.epoch} of {self.epochs}: validating"
        if self.kind == "evaluate":
            return f"evaluating the test set ({self.test_reviews:,} reviews)"
        if self.kind == "save":
            return "saving the model and the results"
        if self.kind == "end":
            return "done"
        if self.kind == "epoch" and self.epoch < self.epochs:
            return f"epoch {self.epoch} of {self.epochs} done: the next begins"
        return f"epoch {self.epoch} of {self.epochs}: batch {self.batch} of {self.batches}"


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


@dataclass
class TrainingSetup:
    """A built model and the arguments of its `model.fit`, as `train()` uses them."""

    model: keras.Model
    prepared: PreparedData
    fit_arguments: dict[str, Any]  # x (and y, batch_size), validation_data; no epochs
    batches_per_epoch: int
    config: TrainConfig
    _forward: Any = None  # the model's forward pass, compiled once for every width

    def evaluation_batches(self, tokens: np.ndarray, size: int | None = None) -> list[np.ndarray]:
        """The rows of `tokens` in the batches a forward pass reads: with a mask, reviews of
        similar length, each batch cut to its longest, the longest batch first (its arrays then
        serve every later batch); without, in order. `size` rows per batch, by default the
        training's (a validation pass)."""
        size = size or self.config.training.batch_size
        return forward_batches(tokens, size, self.config.model.mask_padding)

    def forward_steps(self, tokens: np.ndarray, size: int | None = None) -> int:
        """Time steps a forward pass over `tokens` in batches of `size` computes, summed over
        its batches (`evaluation_batches`)."""
        if not self.config.model.mask_padding:
            return int(tokens.shape[0] * tokens.shape[1])
        lengths = np.count_nonzero(tokens, axis=1)
        batches = self.evaluation_batches(tokens, size)
        return int(sum(len(rows) * int(lengths[rows].max()) for rows in batches))

    def predict(self, tokens: np.ndarray) -> np.ndarray:
        """Probabilities (reviews,) for padded rows of token ids, in `evaluation_batches`: read
        by `rnnkit.fused.FusedReader` where training's layers are fused (the same function,
        forward only), else by the model itself."""
        import tensorflow as tf

        reader = None
        if uses_fused_rnn(self.config):
            from rnnkit.fused import FusedReader

            reader = FusedReader.of(self.model)
        if reader is None and self._forward is None:
            model = self.model
            self._forward = tf.function(
                lambda batch: model(batch, training=False),
                input_signature=[tf.TensorSpec((None, None), tf.int32)],
            )
        result = np.empty(len(tokens), np.float32)
        for rows in self.evaluation_batches(tokens, evaluation_batch_size(self.config)):
            batch = tokens[rows]
            if self.config.model.mask_padding:
                batch = _cut(batch, self.config.data.padding)
            if reader is not None:
                result[rows] = reader.probabilities(batch)
            else:
                result[rows] = self._forward(batch).numpy()[:, 0]
        if reader is not None:
            reader.release()
        return result


def _cut(rows: np.ndarray, padding: str) -> np.ndarray:
    """Drop the columns that are padding in every row (at least one column is kept)."""
    width = max(1, int(np.count_nonzero(rows, axis=1).max()))  # id 0 is only ever padding
    return rows[:, :width] if padding == "post" else rows[:, rows.shape[1] - width :]


def random_grouping(lengths: np.ndarray, size: int, seeds: np.random.Generator) -> list[np.ndarray]:
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
    first_pass: int = 0,
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
        first_pass: the passes done before this dataset's first (a resumed run's finished
            epochs): with `shuffle`, its first pass draws the grouping that pass would have
            drawn, so that a resumed run sees the batches of an uninterrupted one.

    Returns:
        The dataset (its number of batches known to Keras), and the rows of the first pass in
        the order the dataset yields them.
    """
    import tensorflow as tf

    size = size or config.training.batch_size
    lengths = np.count_nonzero(tokens, axis=1)
    seeds = np.random.default_rng(config.training.seed)
    if shuffle:
        seeds.integers(2**31, size=first_pass)  # one draw per pass, as random_grouping draws

    def draw() -> list[np.ndarray]:
        if not shuffle:
            return length_grouped_batches(lengths, size, seed=None)
        return random_grouping(lengths, size, seeds)

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


@dataclass(frozen=True)
class _Plan:
    """What a run will compute, in training batches' worth of steps, for its time left."""

    epochs: int
    batches: int  # training batches per epoch
    validation_batches: float  # a validation pass, in training batches of steps
    test_batches: float  # the test-set pass, likewise
    test_reviews: int
    started_at: float  # when the run was asked for (`time.time()`)


def _progress_callback(
    run_id: str,
    plan: _Plan,
    store: RunStore,
    on_progress: Callable[[ProgressEvent], None] | None,
    cancels: tuple[CancelToken, ...],
) -> keras.callbacks.Callback:
    import keras

    class Progress(keras.callbacks.Callback):
        """Reports progress with the time left for every phase, records history each epoch,
        times each phase, and stops on cancel."""

        def __init__(self) -> None:
            super().__init__()
            self.history = store.history_epochs(run_id)
            self.epoch = 0
            self.epoch_started = time.perf_counter()
            self.batch_started = self.epoch_started
            self.training_seconds = 0.0  # in training batches only: the pace
            self.batches_done = 0
            self.validation_started: float | None = None
            self.validation_seconds: list[float] = []
            self.first_batch_at: float | None = None  # time.time() as the first batch began

        def pace(self) -> float | None:
            """Seconds per training batch so far."""
            return self.training_seconds / self.batches_done if self.batches_done else None

        def seconds_left(self, kind: EventKind, batch: int) -> float | None:
            pace = self.pace()
            if pace is None:
                return None
            if self.validation_seconds:
                validation = float(np.mean(self.validation_seconds))
            else:
                validation = plan.validation_batches * pace * FORWARD_SHARE
            test = plan.test_batches * pace * FORWARD_SHARE
            if kind == "evaluate":
                return test + SAVE_SECONDS
            if kind in ("save", "end"):
                return SAVE_SECONDS if kind == "save" else 0.0
            # "validate" and "epoch" come with batch == batches: this epoch's training is done.
            epochs_after = plan.epochs - self.epoch - 1
            batches_left = epochs_after * plan.batches + plan.batches - batch
            validations = epochs_after + (0 if kind == "epoch" else 1)
            return batches_left * pace + validations * validation + test + SAVE_SECONDS

        def emit(self, kind: EventKind, batch: int = 0, logs: dict | None = None) -> None:
            if on_progress is None:
                return
            now = time.time()
            on_progress(
                ProgressEvent(
                    kind=kind,
                    run_id=run_id,
                    epoch=self.epoch + 1,
                    epochs=plan.epochs,
                    batch=batch,
                    batches=plan.batches,
                    logs={key: float(value) for key, value in (logs or {}).items()},
                    elapsed=now - plan.started_at,
                    eta=self.seconds_left(kind, batch),
                    sent_at=now,
                    test_reviews=plan.test_reviews,
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

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            if self.first_batch_at is None:
                self.first_batch_at = time.time()
            self.batch_started = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.training_seconds += time.perf_counter() - self.batch_started
            self.batches_done += 1
            self.emit("batch", batch + 1, logs)
            self.check_cancel()

        def on_test_begin(self, logs: dict | None = None) -> None:
            self.validation_started = time.perf_counter()
            self.emit("validate", plan.batches)

        def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.check_cancel()

        def on_test_end(self, logs: dict | None = None) -> None:
            if self.validation_started is not None:
                self.validation_seconds.append(time.perf_counter() - self.validation_started)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seconds = time.perf_counter() - self.epoch_started
            record = {"epoch": epoch + 1, "seconds": seconds}
            record.update({key: float(value) for key, value in (logs or {}).items()})
            self.history.append(record)
            store.write_history(run_id, self.history)
            self.emit("epoch", plan.batches, logs)

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


@dataclass(frozen=True)
class _Request:
    """What one `train` call asked for, as its chief and its other workers pass it on (see
    `train` for each field); the store is passed beside it, a worker's being a scratch one."""

    config: TrainConfig
    data: ImdbData
    run_id: str
    on_progress: Callable[[ProgressEvent], None] | None
    cancels: tuple[CancelToken, ...]  # any one of them cancelled stops training
    strategy: tf.distribute.Strategy | None
    started_at: float
    warm_start: bool


def _fit_and_store(request: _Request, store: RunStore) -> None:
    import keras

    from rnnkit.model import has_fused_layers, plain_copy

    config, data, run_id, strategy = request.config, request.data, request.run_id, request.strategy
    started = time.perf_counter()
    setup = setup_training(config, data, strategy)
    model, prepared, training = setup.model, setup.prepared, config.training
    initial_epoch = _restore(model, store, run_id, strategy)
    if initial_epoch and config.model.mask_padding:
        # The epochs after the checkpoint get the groupings an uninterrupted run gives them.
        setup.fit_arguments["x"], _ = _length_grouped(
            prepared.x_train, prepared.y_train, config, shuffle=True, first_pass=initial_epoch
        )
    steps_per_batch = setup.forward_steps(prepared.x_train) / setup.batches_per_epoch
    plan = _Plan(
        epochs=training.epochs,
        batches=setup.batches_per_epoch,
        validation_batches=setup.forward_steps(prepared.x_validation) / steps_per_batch,
        test_batches=setup.forward_steps(prepared.x_test, evaluation_batch_size(config))
        / steps_per_batch,
        test_reviews=len(prepared.x_test),
        started_at=request.started_at,
    )
    progress = _progress_callback(run_id, plan, store, request.on_progress, request.cancels)
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
    if _workers(strategy) > 1:
        _fit_over_workers(model, config, strategy)
    model.fit(
        **setup.fit_arguments,
        epochs=training.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=0,
    )
    fit_seconds = time.perf_counter() - started
    progress.emit("evaluate", setup.batches_per_epoch)
    probabilities = setup.predict(prepared.x_test)
    test_seconds = time.perf_counter() - started - fit_seconds
    progress.emit("save", setup.batches_per_epoch)
    test_metrics = test_metrics_of(probabilities, prepared.y_test)
    store.write_results(run_id, probabilities, test_metrics)
    store.save_model(run_id, plain_copy(model, config))
    history = progress.history
    first_batch_at = progress.first_batch_at or time.time()
    timings = {
        "seconds": time.perf_counter() - started,
        "fit_seconds": fit_seconds,
        "epoch_seconds": [record["seconds"] for record in history],
        # The phases a visitor waits for, which the next estimates calibrate on.
        "start_seconds": first_batch_at - request.started_at,  # the request to the first batch
        "warm_start": request.warm_start,  # TensorFlow was loaded before the request
        "validation_seconds": progress.validation_seconds,  # within epoch_seconds
        "test_seconds": test_seconds,
        "save_seconds": time.perf_counter() - started - fit_seconds - test_seconds,
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


def train(
    config: TrainConfig,
    data: ImdbData,
    store: RunStore | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    cancel: CancelToken | None = None,
    strategy: tf.distribute.Strategy | None = None,
    started_at: float | None = None,
    warm_start: bool = False,
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
        strategy: a `tf.distribute` strategy to train under: a `MirroredStrategy` over this
            process's devices, or a `MultiWorkerMirroredStrategy` whose workers (processes,
            each with its `TF_CONFIG`) all call `train` with the same arguments; only its
            chief writes the run (`is_chief`), and every worker returns it.
        started_at: when the run was asked for (`time.time()`, e.g. before its process
            started), from which progress counts the elapsed time and `timings.json` its
            start; default now.
        warm_start: this process was loaded ahead of the request (a job's process on
            standby); `timings.json` says so, and estimates calibrate such starts apart.

    Returns:
        The completed `Run` (history, metrics, predictions, model).

    Raises:
        TrainingCancelled: `cancel` was set; the run stays resumable.
        KeyboardInterrupt: SIGINT (Ctrl+C) stopped training after its batch; resumable.
        RunError: the run store cannot be written (read-only, disk full, a file where a folder
            belongs); the message names the folder and the fix.
        ValueError: `RNNKIT_FUSED_RNN` is neither a yes nor a no (no run is created).
    """
    started_at = time.time() if started_at is None else started_at
    store = store or RunStore()
    fused_rnn_enabled()  # a bad RNNKIT_FUSED_RNN is named before any run folder is made
    run_id = config.run_id(data.fingerprint)
    request = _Request(
        config=config,
        data=data,
        run_id=run_id,
        on_progress=on_progress,
        cancels=(cancel,) if cancel is not None else (),
        strategy=strategy,
        started_at=started_at,
        warm_start=warm_start,
    )
    if strategy is not None and not is_chief(strategy):
        return _train_beside_the_chief(request, store)
    stop = _SignalStop()
    try:
        with store.lock(run_id):
            if store.status(run_id) == "complete":
                return store.load(run_id)
            with stop:
                store.create(run_id, config.to_dict())
                try:
                    _fit_and_store(replace(request, cancels=(*request.cancels, stop.token)), store)
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


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run under `strategy`: always, but under a multi-worker
    strategy, where only the chief does ("chief" task, else "worker" 0, as Keras decides).

    Args:
        strategy: a `tf.distribute` strategy.

    Returns:
        True where this process is the one that writes.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def _workers(strategy: tf.distribute.Strategy | None) -> int:
    """How many processes train under `strategy` (1 without one, or on one machine)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1
    return sum(len(tasks) for tasks in resolver.cluster_spec().as_dict().values())


def _fit_over_workers(
    model: keras.Model, config: TrainConfig, strategy: tf.distribute.Strategy
) -> None:
    """Make Keras 3.15's `model.fit` work under a multi-worker strategy of several workers.

    Its `fit` reduces two things over the replicas with `strategy.reduce`, which such a strategy
    does for single tensors with a batch axis only: a first batch, the (tokens, labels) pair,
    to learn the inputs' shapes; and each step's logs, scalars, with `axis=0`. Both fail. The
    shapes are known without a batch: the model is built here from symbolic inputs of them and
    `fit` told there is nothing left to build; and each step returns its logs with an axis of
    one, so that `reduce(..., axis=0)` averages them over the workers.
    """
    import tensorflow as tf

    tokens = np.zeros((1, config.data.max_length), np.int32)
    labels = np.zeros((1,), np.float32)
    with strategy.scope():
        model._symbolic_build(data_batch=(tokens, labels, None))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    train_step, test_step = model.train_step, model.test_step

    def with_an_axis(logs: dict) -> dict:
        return {name: tf.reshape(value, (1,)) for name, value in logs.items()}

    model.train_step = lambda data: with_an_axis(train_step(data))
    model.test_step = lambda data: with_an_axis(test_step(data))


def _train_beside_the_chief(request: _Request, store: RunStore) -> Run:
    """A multi-worker strategy's other workers: train beside the chief (each step's gradients
    are summed over the workers) without writing the store, then return the chief's run.

    The worker starts from what the store holds, as the chief does (a checkpoint to resume
    from, its history), copied to a scratch store that its writes go to and that is deleted
    after; then it waits for the chief to release the run's lock.
    """
    run_id = request.run_id
    if store.status(run_id) == "complete":  # the chief returns it too, without training
        return store.load(run_id)
    scratch = tempfile.mkdtemp(prefix="rnnkit-worker-")
    try:
        scratch_store = RunStore(scratch)
        if store.folder(run_id).is_dir():
            shutil.copytree(store.folder(run_id), scratch_store.folder(run_id))
        else:
            scratch_store.create(run_id, request.config.to_dict())
        _fit_and_store(replace(request, warm_start=False), scratch_store)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _release_fused_buffers()
    with store.lock(run_id):  # the chief holds it until the run is complete
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


def warm_up() -> None:
    """Load what training needs (TensorFlow, Keras, the fused loops) and train a tiny model
    for one batch, so that a process that trains next starts at once: a job's process on
    standby calls it while it waits for its order."""
    import keras

    from rnnkit.config import preset
    from rnnkit.model import build_model

    tiny = preset("seed").with_overrides(
        {"data.num_words": 20, "model.rnn_units": "2", "model.dense_units": "2"}
    )
    model = build_model(tiny)
    tokens = np.array([[1, 5, 7, 0], [1, 9, 0, 0]], dtype=np.int32)
    model.fit(tokens, np.array([1.0, 0.0], np.float32), epochs=1, verbose=0)
    keras.backend.clear_session()
    _release_fused_buffers()


def _release_fused_buffers() -> None:
    """Give back the memory `rnnkit.fused` keeps for the next batch (if it was used)."""
    fused = sys.modules.get("rnnkit.fused")
    if fused is not None:
        fused.release_buffers()
