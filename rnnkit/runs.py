"""The on-disk run store: one folder per trained configuration, written so no crash corrupts it.

A run is named by its run id (16 lowercase hex characters, made from a hash of its configuration)
and lives in `root/<run_id>/`:

- `config.json`: the configuration, written when training starts;
- `history.json`: a list of per-epoch dicts, rewritten after each epoch;
- `metrics.json`, `predictions.npy` (test-set probabilities, float32), `model.keras`,
  `timings.json`, `versions.json`: the results;
- `failed.json` (`{"error": ..., "when": ...}`): training stopped with an error;
- `complete.json`: the completion marker, written last, holding a small summary
  (`best_val_accuracy`, `best_epoch`, `test_accuracy`, `created`, `seconds`, `epochs_done`,
  and `test_reviews` and `data_fingerprint`, which say what the predictions must be);
- `backup/`: the checkpoint of an unfinished run, saved after each epoch
  (`write_checkpoint`), so an interrupted run resumes from its last finished epoch.
- `derived/`: what is computed from a complete run's model after training, to read instead of
  computing it again (`write_derived`, `read_derived`; `rnnkit.inside` checks what it reads).

What each file must hold is `rnnkit.run_schema`'s table: every file is checked against it when
it is read, and a run whose files do not match is "damaged", with the reason, in listings, in
`load()` and for training (which starts it over). This module is the only code that writes a
run's files. Every file is written atomically (a temporary file in the same folder, then
`os.replace`), so a reader sees the previous version or the new one, never half of one. A
configuration trained once is never trained again: `create()` refuses a complete run. Trainers
hold `lock(run_id)` while they train, so two processes never train the same run at once.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock, Timeout

from rnnkit.run_schema import (
    CHECKPOINT_FILE,
    COMPLETE_FILE,
    CONFIG_FILE,
    FAILED_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    PREDICTIONS_FILE,
    TIMINGS_FILE,
    VERSIONS_FILE,
    Inspection,
    config_problem,
    history_problem,
    inspect_folder,
    iso_time,
    json_problem,
    read_complete_files,
    read_json_file,
    read_json_or_problem,
)
from rnnkit.settings import get_settings

if TYPE_CHECKING:
    import keras

BACKUP_FOLDER = "backup"
LEGACY_WEIGHTS = "latest.weights.h5"  # Keras' BackupAndRestore's file, in older runs
DERIVED_FOLDER = "derived"
# What a derived file may hold: JSON, or NumPy arrays in an `.npz` (never pickles).
DERIVED_SUFFIXES = (".json", ".npz")
LOCKS_FOLDER = ".locks"  # outside every run folder, so deleting a run never pulls a held lock

STATUSES = ("missing", "complete", "incomplete", "failed", "damaged")

_RUN_ID = re.compile(r"[0-9a-f]{16}")
_RUN_ID_PREFIX = re.compile(r"[0-9a-f]{4,16}")  # the app shows the first 8
# A file of a run folder: a plain name, never a path ("../x", "a/b") nor a hidden file.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class RunError(Exception):
    """A run could not be loaded or written; the message names the run and the fix."""


_ELSEWHERE = "point RNNKIT_RUNS_DIR (or --runs-dir) at another folder"


def _in_the_way(path: Path) -> Path:
    """The file that stands where `path` or one of its folders belongs (or `path`)."""
    for candidate in (path, *path.parents):
        if candidate.is_symlink() or candidate.exists():
            return path if candidate.is_dir() else candidate
    return path


def _write_failure(place: Path, error: OSError) -> str:
    """What went wrong writing under `place` and what to do, for a RunError's message."""
    where = _in_the_way(Path(error.filename)) if isinstance(error.filename, str) else place
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = f"make {place} writable, or {_ELSEWHERE} you can write"
    elif error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = (
            f"free disk space where {place} is and train again (an interrupted run resumes "
            f"from its last finished epoch), or {_ELSEWHERE}"
        )
    elif error.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        fix = f"a file stands where a folder belongs: move {where} away, or {_ELSEWHERE}"
    else:
        fix = f"check the disk, or {_ELSEWHERE}"
    named = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror or error}{named}: {fix}"


class _StoreLock(FileLock):
    """A run's lock whose lock file cannot be made (a read-only store) raises a RunError."""

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().acquire(*args, **kwargs)
        except Timeout:
            raise
        except OSError as error:
            locks = Path(self.lock_file).parent
            raise RunError(
                f"The run store {locks.parent} cannot hold a lock in {locks}: "
                f"{_write_failure(locks, error)}."
            ) from error


def is_run_id(text: object) -> bool:
    """Whether `text` is a run id: 16 lowercase hex characters.

    Args:
        text: anything, typically a value from a URL or a form.

    Returns:
        True when it is a run id.
    """
    return isinstance(text, str) and _RUN_ID.fullmatch(text) is not None


def _check_run_id(run_id: object) -> str:
    if not is_run_id(run_id):
        raise ValueError(
            f"{run_id!r} is not a valid run id: a run id is 16 lowercase hex characters."
        )
    return run_id


def _check_file_name(name: object) -> str:
    if not isinstance(name, str) or _FILE_NAME.fullmatch(name) is None:
        raise ValueError(
            f"{name!r} is not a valid run file name: give a plain name such as 'metrics.json'."
        )
    return name


def _check_derived_name(name: object) -> str:
    _check_file_name(name)
    if not name.endswith(DERIVED_SUFFIXES):
        raise ValueError(f"{name!r} is not a derived file name: it must end in .json or .npz.")
    return name


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _json_default(value: Any) -> Any:
    """Let NumPy scalars and arrays (Keras metrics often are) be written as JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _number(value: Any, kind: type) -> Any:
    """`value` as an int or float when it is a number (bools are not), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return kind(value)


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write a file so that a reader sees the previous version or the new one, never half.

    `write` fills a temporary file in the same folder, which is flushed to disk and renamed over
    `path` (`os.replace`); if anything fails, the temporary file goes and `path` is untouched.

    Args:
        path: the file to write; its folder must exist.
        write: called with the open binary file.

    Returns:
        `path`.
    """
    descriptor, temporary_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".partial"
    )
    temporary = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_json_atomically(path: Path, data: Any) -> Path:
    """Write `data` as indented JSON with `write_atomically` (NumPy values are converted).

    Raises:
        TypeError: `data` cannot be written as JSON; the previous file is kept.
    """
    text = json.dumps(data, indent=2, default=_json_default)
    return write_atomically(path, lambda handle: handle.write(text.encode()))


@dataclass(frozen=True)
class RunSummary:
    """One run as `RunStore.list_runs()` shows it."""

    run_id: str
    status: str  # one of STATUSES
    config: dict | None  # None when config.json is missing or unreadable
    best_val_accuracy: float | None  # from complete.json; None until the run is complete
    best_epoch: int | None
    test_accuracy: float | None
    created: str | None  # ISO time: complete.json's "created", else when config.json was written
    seconds: float | None  # training time, from complete.json
    epochs_done: int  # entries in history.json
    error: str | None  # a failed run's error, or what is damaged; None otherwise


@dataclass
class Run:
    """A complete run, as `RunStore.load()` reads it."""

    run_id: str
    folder: Path
    config: dict
    history: list[dict]  # one dict of metrics per epoch
    metrics: dict  # test-set metrics
    predictions: np.ndarray  # (test reviews,) float32 probabilities of "pos"
    timings: dict
    versions: dict
    summary: dict  # complete.json

    def embedding(self) -> np.ndarray:
        """The trained embedding matrix, read from `model.keras` without loading Keras.

        The `.keras` file is a zip whose `model.weights.h5` holds each layer's variables; the
        layer named "embedding" keeps its matrix as `layers/embedding/vars/0`. Reading it takes
        milliseconds, where `model()` first imports TensorFlow (seconds).

        Returns:
            (input_dim, embedding_dim) float32.

        Raises:
            RunError: the model file is missing, damaged, or holds no such matrix.
        """
        import h5py  # Keras' own dependency, for its weights file

        path = self.folder / MODEL_FILE
        try:
            with zipfile.ZipFile(path) as archive:
                weights = io.BytesIO(archive.read("model.weights.h5"))
            with h5py.File(weights, "r") as handle:
                return np.asarray(handle["layers/embedding/vars/0"], dtype=np.float32)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
            raise RunError(
                f"The embedding of run {self.run_id} cannot be read from {path} ({error}): "
                f"delete the run with `python -m rnnkit delete {self.run_id}` or train it again."
            ) from error

    def model(self) -> keras.Model:
        """Load the trained model from `model.keras` (safe mode: no arbitrary code runs).

        Returns:
            The Keras model, compiled as it was saved.

        Raises:
            RunError: the model file is missing or cannot be loaded, or safe mode refuses it
                (a `Lambda` layer's Python code, say).
        """
        import keras

        path = self.folder / MODEL_FILE
        try:
            return keras.saving.load_model(path, safe_mode=True)
        # Keras' loader raises what the damage leads to: KeyError for an archive without
        # config.json, TypeError for an unknown class, ValueError for a Lambda in safe mode, ...
        except Exception as error:
            raise RunError(
                f"The model of run {self.run_id} ({path}) cannot be loaded ({error}): "
                f"delete the run with `python -m rnnkit delete {self.run_id}` or train it again."
            ) from error


def _summary(run_id: str, inspection: Inspection) -> RunSummary:
    complete = inspection.complete or {}
    return RunSummary(
        run_id=run_id,
        status=inspection.status,
        config=inspection.config,
        best_val_accuracy=_number(complete.get("best_val_accuracy"), float),
        best_epoch=_number(complete.get("best_epoch"), int),
        test_accuracy=_number(complete.get("test_accuracy"), float),
        created=inspection.created,
        seconds=_number(complete.get("seconds"), float),
        epochs_done=inspection.epochs_done,
        error=inspection.reason,
    )


class RunStore:
    """The run folders under one root, with atomic writes, status checks and per-run locks."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        """Open the store at `root` (nothing is created until a run is).

        Args:
            root: the folder holding one folder per run; None: `RNNKIT_RUNS_DIR`, else
                `RNNKIT_CACHE_DIR/runs`, read now.
        """
        self.root = Path(root).expanduser() if root is not None else get_settings().runs_dir

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # --- paths ----------------------------------------------------------------------------------

    def folder(self, run_id: str) -> Path:
        """The folder of a run; nothing is created.

        Args:
            run_id: the run id.

        Returns:
            `root/<run_id>`.

        Raises:
            ValueError: `run_id` is not a run id.
        """
        return self.root / _check_run_id(run_id)

    def model_path(self, run_id: str) -> Path:
        """Where a run's model is saved: `root/<run_id>/model.keras`; nothing is created.

        Raises:
            ValueError: `run_id` is not a run id.
        """
        return self.folder(run_id) / MODEL_FILE

    def backup_dir(self, run_id: str) -> Path:
        """The folder of a run's checkpoint (`write_checkpoint`); nothing is created.

        Raises:
            ValueError: `run_id` is not a run id.
        """
        return self.folder(run_id) / BACKUP_FOLDER

    def lock(self, run_id: str) -> FileLock:
        """A cross-process lock for one run id, to hold while training or repairing it.

        The lock file lives in `root/.locks/`, outside the run folder, so deleting the run leaves
        the lock working for whoever waits on it. Locks are not reentrant across `lock()` calls:
        acquire the returned lock once and pass it around.

        Args:
            run_id: the run id.

        Returns:
            An unacquired `filelock.FileLock` (use `with store.lock(run_id):`); acquiring it
            raises RunError where its file cannot be made.

        Raises:
            ValueError: `run_id` is not a run id.
            RunError: the store's folder cannot be made or written; the message says why.
        """
        _check_run_id(run_id)
        locks = self.root / LOCKS_FOLDER
        with self._writing():
            locks.mkdir(parents=True, exist_ok=True)
        return _StoreLock(locks / f"{run_id}.lock")

    @contextlib.contextmanager
    def _writing(self, run_id: str | None = None) -> Iterator[None]:
        """Make an OSError of the writes inside (a read-only folder, a full disk, a file where a
        folder belongs) a RunError that names the folder and the fix."""
        place = self.root if run_id is None else self.root / run_id
        try:
            yield
        except Timeout:
            raise
        except OSError as error:
            what = (
                f"Run {run_id} could not be saved in {place}"
                if run_id
                else (f"The run store {self.root} could not be written")
            )
            raise RunError(f"{what}: {_write_failure(place, error)}.") from error

    # --- writing --------------------------------------------------------------------------------

    def create(self, run_id: str, config: dict) -> Path:
        """Start (or resume) training a run: make its folder and write `config.json`.

        Call it holding `lock(run_id)`. An existing folder is kept, so an interrupted run resumes
        from `backup/` and `history.json`: a failed run loses its `failed.json` (it is being
        trained again), a damaged run loses its results (`discard_results()`) and starts over.

        Args:
            run_id: the run id, made from `config`.
            config: the configuration, as `TrainConfig.to_dict()` gives it.

        Returns:
            The run folder.

        Raises:
            ValueError: `run_id` is not a run id, or `config` is not a configuration.
            RunError: the run is complete (a configuration is never trained twice), or its
                folder cannot be written (the message names it and the fix).
        """
        _check_run_id(run_id)
        if not isinstance(config, dict):
            raise ValueError(f"config must be a dict, not {type(config).__name__}.")
        problem = config_problem(config, run_id, None)
        if problem is not None:
            raise ValueError(f"Run {run_id} cannot be created: {problem}.")
        status = self.status(run_id)
        if status == "complete":
            raise RunError(
                f"Run {run_id} is already complete and is never trained again: load it, or "
                f"delete it first with `python -m rnnkit delete {run_id}`."
            )
        if status == "damaged":
            self.discard_results(run_id)
        folder = self.folder(run_id)
        with self._writing(run_id):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            unchanged = read_json_file(folder / CONFIG_FILE) == config
        except (OSError, ValueError):
            unchanged = False
        # Left as is when unchanged, so its time stays the time training first started.
        if not unchanged:
            self.write_json(run_id, CONFIG_FILE, config)
        with self._writing(run_id):
            (folder / FAILED_FILE).unlink(missing_ok=True)
        return folder

    def _write_atomically(self, run_id: str, name: str, write: Callable[[IO[bytes]], None]) -> Path:
        folder = self.folder(run_id)
        _check_file_name(name)
        if not folder.is_dir():
            raise RunError(
                f"Run {run_id} has no folder in {self.root} (deleted while it was written?): "
                f"call create() before writing its files."
            )
        with self._writing(run_id):
            return write_atomically(folder / name, write)

    def write_json(self, run_id: str, name: str, data: Any) -> Path:
        """Write one JSON file of a run atomically (NumPy scalars and arrays are converted).

        Args:
            run_id: the run id; its folder must exist (`create()`).
            name: a plain file name, e.g. "history.json".
            data: JSON-compatible data.

        Returns:
            The path written.

        Raises:
            ValueError: `run_id` or `name` is not valid.
            TypeError: `data` cannot be written as JSON; the previous file is kept.
            RunError: the run has no folder, or it cannot be written (read-only, disk full...);
                the previous file is kept.
        """
        text = json.dumps(data, indent=2, default=_json_default)
        return self._write_atomically(run_id, name, lambda handle: handle.write(text.encode()))

    def write_history(self, run_id: str, history: list[dict]) -> Path:
        """Write the finished epochs (`history.json`), after each epoch.

        Args:
            run_id: the run id; its folder must exist (`create()`).
            history: one dict of metrics per finished epoch.
        """
        return self.write_json(run_id, HISTORY_FILE, history)

    def write_results(self, run_id: str, probabilities: np.ndarray, metrics: dict) -> None:
        """Write the test-set results: `predictions.npy` (float32) and `metrics.json`.

        Args:
            run_id: the run id; its folder must exist (`create()`).
            probabilities: (test reviews,) the probabilities of "pos".
            metrics: the test metrics (`test_loss`, `test_accuracy`, ...).
        """
        self.write_array(run_id, PREDICTIONS_FILE, np.asarray(probabilities, np.float32))
        self.write_json(run_id, METRICS_FILE, metrics)

    def save_model(self, run_id: str, model: keras.Model) -> Path:
        """Save the trained model as `model.keras`, atomically (Keras writes a temporary file
        beside it, which is then renamed).

        Args:
            run_id: the run id; its folder must exist (`create()`).
            model: the model, of Keras' own layers (`rnnkit.model.plain_copy`).

        Returns:
            The path of `model.keras`.
        """
        path = self.model_path(run_id)
        if not path.parent.is_dir():
            raise RunError(f"Run {run_id} has no folder in {self.root}: call create() first.")
        with self._writing(run_id):
            # Keras names the format by the file's ending: the temporary file ends in .keras too.
            descriptor, temporary = tempfile.mkstemp(
                dir=path.parent, prefix=f".{MODEL_FILE}.", suffix=".keras"
            )
            os.close(descriptor)
            try:
                model.save(temporary)
                os.replace(temporary, path)
            finally:
                Path(temporary).unlink(missing_ok=True)
        return path

    def write_checkpoint(
        self, run_id: str, epoch: int, save_weights: Callable[[Path], None]
    ) -> Path:
        """Save the training state after `epoch` finished epochs, for a resume to start there.

        The weights go to a file of their own, written beside and renamed into place; then
        `training_metadata.json` is replaced by one naming that file and the epoch. That last
        rename is the moment the new state counts: a process stopped at any instant (killed,
        the disk full) leaves the previous state or the new one, each whole. Older weights go
        last. (Keras' `BackupAndRestore` overwrites its one weights file in place: stopped
        while writing it, the run could not resume from that epoch, nor at all.)

        Args:
            run_id: the run id; its folder must exist (`create()`).
            epoch: finished epochs, 1 or more.
            save_weights: writes the model's weights (and optimizer state) to the path given,
                e.g. `model.save_weights`; the path ends in `.weights.h5`.

        Returns:
            The path of the weights file.

        Raises:
            RunError: the run has no folder, or it cannot be written.
        """
        folder = self.folder(run_id)
        if not folder.is_dir():
            raise RunError(f"Run {run_id} has no folder in {self.root}: call create() first.")
        backup = self.backup_dir(run_id)
        name = f"epoch-{epoch}.weights.h5"
        with self._writing(run_id):
            backup.mkdir(exist_ok=True)
            temporary = backup / f".partial-{name}"  # Keras reads the format from the ending
            try:
                save_weights(temporary)
                with temporary.open("rb+") as handle:
                    os.fsync(handle.fileno())
                os.replace(temporary, backup / name)
            finally:
                temporary.unlink(missing_ok=True)
            write_json_atomically(folder / CHECKPOINT_FILE, {"epoch": epoch, "weights": name})
            for old in backup.glob("*.weights.h5"):
                if old.name != name:
                    old.unlink(missing_ok=True)
        return backup / name

    def checkpoint(self, run_id: str) -> tuple[int, Path] | None:
        """The checkpoint an unfinished run resumes from: its finished epochs and its weights.

        Args:
            run_id: the run id.

        Returns:
            (epochs, weights file), or None when there is no checkpoint to resume from (none
            yet, or one that does not hold what `rnnkit.run_schema` asks: resuming starts over).

        Raises:
            ValueError: `run_id` is not a run id.
        """
        folder = self.folder(run_id)
        metadata, problem = read_json_or_problem(folder / CHECKPOINT_FILE)
        if problem is not None or json_problem(CHECKPOINT_FILE, metadata) is not None:
            return None
        name = metadata.get("weights", LEGACY_WEIGHTS)
        weights = self.backup_dir(run_id) / name
        if _FILE_NAME.fullmatch(name) is None or not weights.is_file():
            return None
        return metadata["epoch"], weights

    def write_run_facts(self, run_id: str, timings: dict, versions: dict) -> None:
        """Write `timings.json` (how long training took, and how it was computed) and
        `versions.json` (the library versions that trained it)."""
        self.write_json(run_id, TIMINGS_FILE, timings)
        self.write_json(run_id, VERSIONS_FILE, versions)

    def write_array(self, run_id: str, name: str, array: np.ndarray) -> Path:
        """Write one `.npy` file of a run atomically (no pickles).

        Args:
            run_id: the run id; its folder must exist (`create()`).
            name: a plain file name, e.g. "predictions.npy".
            array: the array; object arrays are refused.

        Returns:
            The path written.

        Raises:
            ValueError: `run_id` or `name` is not valid, or `array` holds Python objects.
            RunError: the run has no folder.
        """
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise ValueError("array holds Python objects; give numbers (e.g. float32).")
        return self._write_atomically(
            run_id, name, lambda handle: np.save(handle, array, allow_pickle=False)
        )

    def mark_complete(self, run_id: str, summary: dict) -> Path:
        """Mark a run complete: write `complete.json`, after every result is in place.

        Removes `failed.json` first and `backup/` after the marker (a complete run never trains
        again, so its checkpoint is dead weight; removing it before the marker would leave a crash
        an unfinished run with no checkpoint).

        Args:
            run_id: the run id.
            summary: what `rnnkit.run_schema` asks of `complete.json`: best_val_accuracy,
                best_epoch, test_accuracy, epochs_done, seconds, test_reviews,
                data_fingerprint, and created (ISO time; default when config.json was written,
                i.e. when training started).

        Returns:
            The path of `complete.json`.

        Raises:
            ValueError: `run_id` is not a run id, or `summary` is not a dict.
            RunError: a file a complete run needs is missing or does not hold what it must,
                or `summary` does not; the message says which.
        """
        folder = self.folder(run_id)
        if not isinstance(summary, dict):
            raise ValueError(f"summary must be a dict, not {type(summary).__name__}.")
        summary = dict(summary)
        for key in ("test_reviews", "data_fingerprint"):  # what later reads check the files by
            if key not in summary:
                raise RunError(
                    f"Run {run_id} cannot be marked complete: {COMPLETE_FILE} has no {key!r}."
                )
        config, problem = read_json_or_problem(folder / CONFIG_FILE)
        if problem is None:
            summary.setdefault("created", iso_time((folder / CONFIG_FILE).stat().st_mtime))
            problem = read_complete_files(folder, config, summary)[1]
        if problem is not None:
            raise RunError(f"Run {run_id} cannot be marked complete: {problem}.")
        with self._writing(run_id):
            (folder / FAILED_FILE).unlink(missing_ok=True)
        path = self.write_json(run_id, COMPLETE_FILE, summary)
        shutil.rmtree(folder / BACKUP_FOLDER, ignore_errors=True)
        return path

    def mark_failed(self, run_id: str, error: str) -> Path:
        """Record that training stopped with an error (`failed.json`); its files are kept.

        Args:
            run_id: the run id.
            error: what went wrong, for people.

        Returns:
            The path of `failed.json`.

        Raises:
            ValueError: `run_id` is not a run id, or `error` is not a string.
            RunError: the run has no folder.
        """
        _check_run_id(run_id)
        if not isinstance(error, str):
            raise ValueError(f"error must be a string, not {type(error).__name__}.")
        return self.write_json(run_id, FAILED_FILE, {"error": error, "when": _now()})

    def discard_results(self, run_id: str) -> list[str]:
        """Clear a run so its next training starts from epoch 0: everything but `config.json` goes.

        The markers, the results, `history.json` and `backup/` are removed (a damaged run's files
        cannot be trusted, and a checkpoint without its history cannot be resumed). To retrain a
        failed run from its last epoch instead, just train it again: `create()` keeps its backup.
        Call it holding `lock(run_id)`.

        Args:
            run_id: the run id.

        Returns:
            The names removed, sorted.

        Raises:
            ValueError: `run_id` is not a run id.
        """
        folder = self.folder(run_id)
        with self._writing(run_id):
            if folder.is_symlink() or folder.is_file():  # a stray file where the folder belongs
                folder.unlink()
                return [run_id]
            if not folder.is_dir():
                return []
            removed = []
            # The marker first: if this stops halfway, the run reads incomplete, never complete.
            entries = sorted(folder.iterdir(), key=lambda entry: entry.name != COMPLETE_FILE)
            for entry in entries:
                if entry.name == CONFIG_FILE and entry.is_file():
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed.append(entry.name)
        return sorted(removed)

    def delete(self, run_id: str) -> bool:
        """Remove a run's folder.

        The folder is first renamed to a hidden name, so no reader ever sees half of it; the
        lock file is kept (someone may be waiting on it).

        Args:
            run_id: the run id.

        Returns:
            True if something was removed, False if there was no such run.

        Raises:
            ValueError: `run_id` is not a run id.
            RunError: the store cannot be written (the message names it and the fix).
        """
        folder = self.folder(run_id)
        if not folder.exists() and not folder.is_symlink():
            return False
        with self._writing(run_id):
            if folder.is_dir() and not folder.is_symlink():
                trash = Path(tempfile.mkdtemp(prefix=f".deleting-{run_id}-", dir=self.root))
                try:
                    os.replace(folder, trash / run_id)
                except FileNotFoundError:  # deleted by someone else meanwhile
                    trash.rmdir()
                    return False
                shutil.rmtree(trash, ignore_errors=True)
            else:
                folder.unlink()
        return True

    def write_derived(self, run_id: str, name: str, data: Any) -> Path:
        """Write a file computed from a run (`derived/<name>`) atomically, so that it is
        computed once per run, not once per visitor or process.

        Args:
            run_id: the run id; its folder must exist.
            name: a plain file name ending in ".json" (`data`: JSON-compatible values) or
                ".npz" (`data`: a mapping of names to arrays of numbers or strings).

        Returns:
            The path written.

        Raises:
            ValueError: `run_id` or `name` is not valid, or an array holds Python objects.
            TypeError: `data` cannot be written as JSON; the previous file is kept.
            RunError: the run has no folder (deleted meanwhile).
        """
        folder = self.folder(run_id)
        path = folder / DERIVED_FOLDER / _check_derived_name(name)
        if name.endswith(".json"):
            content = json.dumps(data, indent=2, default=_json_default).encode()

            def write(handle: IO[bytes]) -> None:
                handle.write(content)
        else:
            arrays = {key: np.asarray(value) for key, value in dict(data).items()}
            if any(array.dtype.hasobject for array in arrays.values()):
                raise ValueError("an array holds Python objects; give numbers or strings.")

            def write(handle: IO[bytes]) -> None:
                np.savez(handle, allow_pickle=False, **arrays)

        try:  # never `parents=True`: that would bring a deleted run's folder back
            path.parent.mkdir(exist_ok=True)
        except FileNotFoundError as error:
            raise RunError(
                f"Run {run_id} has no folder in {self.root} (deleted meanwhile?)."
            ) from error
        return write_atomically(path, write)

    # --- reading --------------------------------------------------------------------------------

    def resolve(self, prefix: str) -> str:
        """The run id of the one run in the store whose id starts with `prefix`, as people
        copy ids from the app (which shows their first 8 characters).

        Args:
            prefix: 4 to 16 lowercase hex characters.

        Returns:
            The full run id.

        Raises:
            ValueError: `prefix` is not 4 to 16 lowercase hex characters, or several runs start
                with it (the message lists them).
            RunError: no run of the store starts with it (the message names the store).
        """
        if not isinstance(prefix, str) or _RUN_ID_PREFIX.fullmatch(prefix) is None:
            raise ValueError(
                f"{prefix!r} is not a valid run id: give a run id, 16 lowercase hex "
                f"characters, or its first 4 or more (as the app shows it: 8)."
            )
        try:
            matches = sorted(
                entry.name
                for entry in self.root.iterdir()
                if is_run_id(entry.name) and entry.name.startswith(prefix)
            )
        except FileNotFoundError:
            matches = []
        except OSError as error:
            raise RunError(
                f"The run store {self.root} cannot be read ({error}): point RNNKIT_RUNS_DIR "
                f"(or --runs-dir) at the folder of your runs."
            ) from error
        if len(matches) > 1:
            raise ValueError(
                f"{len(matches)} runs start with {prefix!r}: {', '.join(matches)}; give more "
                f"characters of the one you mean."
            )
        if not matches:
            raise RunError(
                f"There is no run {prefix} in {self.root}: `python -m rnnkit runs` lists the "
                f"runs there."
            )
        return matches[0]

    def read_derived(self, run_id: str, name: str) -> Any:
        """Read a file `write_derived` wrote.

        Args:
            run_id: the run id.
            name: the file's name, ending in ".json" or ".npz".

        Returns:
            The parsed JSON, or for ".npz" a dict of the arrays, read into memory.

        Raises:
            ValueError: `run_id` or `name` is not valid, or the file is not whole JSON or
                a whole `.npz` of plain arrays (a pickled array is refused).
            FileNotFoundError: there is no such file.
        """
        path = self.folder(run_id) / DERIVED_FOLDER / _check_derived_name(name)
        if name.endswith(".json"):
            return read_json_file(path)
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):  # a lone .npy array
                raise ValueError("it holds no named arrays")
            with loaded as archive:
                return {key: archive[key] for key in archive.files}
        except FileNotFoundError:
            raise
        # What a damaged archive leads to: a bad zip, a truncated member, an object array.
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
            raise ValueError(f"{path} is not a whole .npz file ({error})") from error

    def read_json(self, run_id: str, name: str) -> Any:
        """Read one JSON file of a run.

        Args:
            run_id: the run id.
            name: a plain file name, e.g. "metrics.json".

        Returns:
            The parsed data.

        Raises:
            ValueError: `run_id` or `name` is not valid, or the file is not JSON.
            FileNotFoundError: the file does not exist.
        """
        return read_json_file(self.folder(run_id) / _check_file_name(name))

    def read_array(self, run_id: str, name: str) -> np.ndarray:
        """Read one `.npy` file of a run (no pickles).

        Args:
            run_id: the run id.
            name: a plain file name, e.g. "predictions.npy".

        Returns:
            The array.

        Raises:
            ValueError: `run_id` or `name` is not valid, or the file is not a whole `.npy` file.
            FileNotFoundError: the file does not exist.
        """
        return np.load(self.folder(run_id) / _check_file_name(name), allow_pickle=False)

    def history_epochs(self, run_id: str) -> list[dict]:
        """The epochs a run has finished, from `history.json`, to resume it.

        Args:
            run_id: the run id.

        Returns:
            One dict of metrics per finished epoch; empty when there is no history yet.

        Raises:
            ValueError: `run_id` is not a run id.
            RunError: `history.json` exists but does not hold the epochs `rnnkit.run_schema`
                asks for.
        """
        path = self.folder(run_id) / HISTORY_FILE
        history, problem = read_json_or_problem(path)
        if problem is None:
            problem = history_problem(history)
        elif not path.exists():
            return []
        if problem is not None:
            raise RunError(
                f"The history of run {run_id} ({path}) is damaged ({problem}): clear the run "
                f"with discard_results() or `python -m rnnkit delete {run_id}`, then train it."
            )
        return history

    def status(self, run_id: str) -> str:
        """Where a run stands.

        Args:
            run_id: the run id.

        Returns:
            "missing" (no folder), "complete" (its marker and every file it needs hold what
            `rnnkit.run_schema` asks), "failed" (training stopped with an error), "incomplete"
            (started; resumable) or "damaged" (its config is not a configuration, its history
            cannot be read to resume it, or it is marked complete but a file it needs is
            missing or does not hold what it must).

        Raises:
            ValueError: `run_id` is not a run id.
        """
        return inspect_folder(self.folder(run_id)).status

    def list_runs(self) -> list[RunSummary]:
        """Every run in the store, newest first; damaged runs included, with what is wrong.

        Entries of the root that are not named by a run id (stray files, "notes", the lock and
        trash folders) are ignored.

        Returns:
            One `RunSummary` per run folder, newest first.

        Raises:
            RunError: the store's root is a file, or cannot be read.
        """
        try:
            entries = [entry for entry in self.root.iterdir() if is_run_id(entry.name)]
        except FileNotFoundError:
            return []
        except OSError as error:  # a file, or a folder this process may not read
            raise RunError(
                f"The run store {self.root} cannot be read ({error.strerror or error}): "
                f"{_ELSEWHERE} (a folder of runs, or a new one)."
            ) from error
        inspected = [(entry.name, inspect_folder(entry)) for entry in entries]
        inspected.sort(key=lambda item: (-item[1].sort_time, item[0]))
        return [_summary(run_id, inspection) for run_id, inspection in inspected]

    def summary(self, run_id: str) -> RunSummary:
        """One run as `list_runs()` shows it: its status, settings, results and what is wrong.

        Args:
            run_id: the run id.

        Returns:
            Its `RunSummary` (status "missing" when there is no such run).

        Raises:
            ValueError: `run_id` is not a run id.
        """
        return _summary(run_id, inspect_folder(self.folder(run_id)))

    def load(self, run_id: str) -> Run:
        """Read a complete run: its config, history, metrics, predictions and summary.

        Args:
            run_id: the run id.

        Returns:
            The `Run`; `run.model()` loads its Keras model.

        Raises:
            ValueError: `run_id` is not a run id.
            RunError: the run is missing, incomplete, failed or damaged; the message says what to
                do.
        """
        folder = self.folder(run_id)
        inspection = inspect_folder(folder)
        delete_hint = f"delete it with `python -m rnnkit delete {run_id}`"
        if inspection.status == "missing":
            raise RunError(f"There is no run {run_id} in {self.root}: train its configuration.")
        if inspection.status == "incomplete":
            raise RunError(
                f"Run {run_id} is not finished ({inspection.epochs_done} epoch(s) done): "
                f"train it again to resume."
            )
        if inspection.status == "failed":
            raise RunError(
                f"Run {run_id} failed: {inspection.reason}. Train it again to resume from its "
                f"last epoch, or {delete_hint}."
            )
        if inspection.status == "damaged":
            raise RunError(
                f"Run {run_id} in {folder} is damaged ({inspection.reason}): {delete_hint} or "
                f"train it again."
            )
        files = inspection.files  # the very contents that were checked
        return Run(
            run_id=run_id,
            folder=folder,
            config=inspection.config,
            history=files.history,
            metrics=files.metrics,
            predictions=files.predictions,
            timings=files.optional.get(TIMINGS_FILE, {}),
            versions=files.optional.get(VERSIONS_FILE, {}),
            summary=inspection.complete,
        )

    def timings(self, run_id: str) -> dict:
        """A run's `timings.json`: {} when it is missing, unreadable or not what it must be."""
        timings, problem = read_json_or_problem(self.folder(run_id) / TIMINGS_FILE)
        if problem is None and json_problem(TIMINGS_FILE, timings) is None:
            return timings
        return {}
