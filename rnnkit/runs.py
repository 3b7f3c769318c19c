"""The on-disk run store: one folder per trained configuration, written so no crash corrupts it.

A run is named by its run id (16 lowercase hex characters, made from a hash of its configuration)
and lives in `root/<run_id>/`:

- `config.json`: the configuration, written when training starts;
- `history.json`: a list of per-epoch dicts, rewritten after each epoch;
- `metrics.json`, `predictions.npy` (test-set probabilities, float32), `model.keras`,
  `timings.json`, `versions.json`: the results;
- `failed.json` (`{"error": ..., "when": ...}`): training stopped with an error;
- `complete.json`: the completion marker, written last, holding a small summary
  (`best_val_accuracy`, `best_epoch`, `test_accuracy`, `created`, `seconds`);
- `backup/`: the folder `keras.callbacks.BackupAndRestore` keeps its checkpoint in, so an
  interrupted run resumes from its last epoch;
- `derived/`: what is computed from a complete run's model after training, to read instead of
  computing it again (`write_derived`, `read_derived`; `rnnkit.inside` checks what it reads).

Every file is written atomically (a temporary file in the same folder, then `os.replace`), so a
reader sees the previous version or the new one, never half of one. A configuration trained once is
never trained again: `create()` refuses a complete run. Trainers hold `lock(run_id)` while they
train, so two processes never train the same run at once.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock

from rnnkit.settings import get_settings

if TYPE_CHECKING:
    import keras

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.npy"
MODEL_FILE = "model.keras"
TIMINGS_FILE = "timings.json"
VERSIONS_FILE = "versions.json"
FAILED_FILE = "failed.json"
COMPLETE_FILE = "complete.json"
BACKUP_FOLDER = "backup"
DERIVED_FOLDER = "derived"
# What a derived file may hold: JSON, or NumPy arrays in an `.npz` (never pickles).
DERIVED_SUFFIXES = (".json", ".npz")
LOCKS_FOLDER = ".locks"  # outside every run folder, so deleting a run never pulls a held lock

# What a complete run must hold besides its marker; `status()` checks each one.
REQUIRED_FILES = (CONFIG_FILE, HISTORY_FILE, METRICS_FILE, PREDICTIONS_FILE, MODEL_FILE)
STATUSES = ("missing", "complete", "incomplete", "failed", "damaged")

_RUN_ID = re.compile(r"[0-9a-f]{16}")
# A file of a run folder: a plain name, never a path ("../x", "a/b") nor a hidden file.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class RunError(Exception):
    """A run could not be loaded or written; the message names the run and the fix."""


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


def _iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _json_default(value: Any) -> Any:
    """Let NumPy scalars and arrays (Keras metrics often are) be written as JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _read_json_file(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _check_array_file(path: Path) -> None:
    """Raise ValueError unless `path` is a whole `.npy` file (its size matches its header)."""
    with path.open("rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        expected_size = handle.tell() + int(np.prod(shape)) * dtype.itemsize
    if path.stat().st_size != expected_size:
        raise ValueError(f"holds {path.stat().st_size} bytes, its header says {expected_size}")


def _is_model_archive(path: Path) -> bool:
    """Whether `path` is a zip archive with a model's `config.json`, as every `.keras` file is.

    Only the archive's directory is read (milliseconds), not the weights.
    """
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return "config.json" in archive.namelist()


def _is_history(data: Any) -> bool:
    """Whether `data` (parsed `history.json`) is a list of per-epoch dicts."""
    return isinstance(data, list) and all(isinstance(epoch, dict) for epoch in data)


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


@dataclass(frozen=True)
class _Inspection:
    status: str
    reason: str | None  # a failed run's error or what is damaged
    config: dict | None
    complete: dict | None  # complete.json, when it parsed
    epochs_done: int
    created: str | None
    sort_time: float  # seconds since the epoch, newest first in listings


def _summary(run_id: str, inspection: _Inspection) -> RunSummary:
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
        """The folder to give `keras.callbacks.BackupAndRestore`; nothing is created (Keras does).

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
            An unacquired `filelock.FileLock` (use `with store.lock(run_id):`).

        Raises:
            ValueError: `run_id` is not a run id.
        """
        _check_run_id(run_id)
        locks = self.root / LOCKS_FOLDER
        locks.mkdir(parents=True, exist_ok=True)
        return FileLock(locks / f"{run_id}.lock")

    # --- writing --------------------------------------------------------------------------------

    def create(self, run_id: str, config: dict) -> Path:
        """Start (or resume) training a run: make its folder and write `config.json`.

        Call it holding `lock(run_id)`. An existing folder is kept, so an interrupted run resumes
        from `backup/` and `history.json`: a failed run loses its `failed.json` (it is being
        trained again), a damaged run loses its results (`discard_results()`) and starts over.

        Args:
            run_id: the run id, made from `config`.
            config: the configuration, as JSON-compatible values.

        Returns:
            The run folder.

        Raises:
            ValueError: `run_id` is not a run id, or `config` is not a dict.
            RunError: the run is complete; a configuration is never trained twice.
        """
        _check_run_id(run_id)
        if not isinstance(config, dict):
            raise ValueError(f"config must be a dict, not {type(config).__name__}.")
        status = self.status(run_id)
        if status == "complete":
            raise RunError(
                f"Run {run_id} is already complete and is never trained again: load it, or "
                f"delete it first with `python -m rnnkit delete {run_id}`."
            )
        if status == "damaged":
            self.discard_results(run_id)
        folder = self.folder(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            unchanged = _read_json_file(folder / CONFIG_FILE) == config
        except (OSError, ValueError):
            unchanged = False
        # Left as is when unchanged, so its time stays the time training first started.
        if not unchanged:
            self.write_json(run_id, CONFIG_FILE, config)
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
            RunError: the run has no folder.
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
            summary: JSON-compatible values for listings: best_val_accuracy, best_epoch,
                test_accuracy, seconds, and created (ISO time; default when config.json was
                written, i.e. when training started).

        Returns:
            The path of `complete.json`.

        Raises:
            ValueError: `run_id` is not a run id, or `summary` is not a dict.
            RunError: a file a complete run needs is missing or damaged.
        """
        folder = self.folder(run_id)
        if not isinstance(summary, dict):
            raise ValueError(f"summary must be a dict, not {type(summary).__name__}.")
        problem = self._required_files_problem(folder)
        if problem is not None:
            raise RunError(f"Run {run_id} cannot be marked complete: {problem}.")
        summary = dict(summary)
        summary.setdefault("created", _iso_time((folder / CONFIG_FILE).stat().st_mtime))
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
        """
        folder = self.folder(run_id)
        if not folder.exists() and not folder.is_symlink():
            return False
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
            return _read_json_file(path)
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
        return _read_json_file(self.folder(run_id) / _check_file_name(name))

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
            RunError: `history.json` exists but is not a list of dicts.
        """
        path = self.folder(run_id) / HISTORY_FILE
        try:
            history = _read_json_file(path)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as error:
            raise RunError(
                f"The history of run {run_id} ({path}) is unreadable ({error}): clear the run "
                f"with discard_results() or `python -m rnnkit delete {run_id}`, then train it."
            ) from error
        if not _is_history(history):
            raise RunError(
                f"The history of run {run_id} ({path}) is not a list of epochs: clear the run "
                f"with discard_results() or `python -m rnnkit delete {run_id}`, then train it."
            )
        return history

    def status(self, run_id: str) -> str:
        """Where a run stands.

        Args:
            run_id: the run id.

        Returns:
            "missing" (no folder), "complete" (its marker and every file it needs are whole),
            "failed" (training stopped with an error), "incomplete" (started; resumable) or
            "damaged" (its config is unreadable, its history cannot be read to resume it, or
            it is marked complete but a file it needs is missing or truncated).

        Raises:
            ValueError: `run_id` is not a run id.
        """
        return self._inspect(self.folder(run_id)).status

    def list_runs(self) -> list[RunSummary]:
        """Every run in the store, newest first; damaged runs included, with what is wrong.

        Entries of the root that are not named by a run id (stray files, "notes", the lock and
        trash folders) are ignored.

        Returns:
            One `RunSummary` per run folder, newest first.
        """
        try:
            entries = [entry for entry in self.root.iterdir() if is_run_id(entry.name)]
        except FileNotFoundError:
            return []
        inspected = [(entry.name, self._inspect(entry)) for entry in entries]
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
        return _summary(run_id, self._inspect(self.folder(run_id)))

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
        inspection = self._inspect(folder)
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
        try:
            return Run(
                run_id=run_id,
                folder=folder,
                config=inspection.config,
                history=self.history_epochs(run_id),
                metrics=self.read_json(run_id, METRICS_FILE),
                predictions=self.read_array(run_id, PREDICTIONS_FILE),
                timings=self._optional_json(folder / TIMINGS_FILE),
                versions=self._optional_json(folder / VERSIONS_FILE),
                summary=inspection.complete,
            )
        except (OSError, ValueError) as error:  # deleted or rewritten while it was read
            raise RunError(
                f"Run {run_id} in {folder} could not be read ({error}): {delete_hint} or train "
                f"it again."
            ) from error

    def timings(self, run_id: str) -> dict:
        """A run's `timings.json`: {} when it is missing or unreadable."""
        return self._optional_json(self.folder(run_id) / TIMINGS_FILE)

    # --- inspection -----------------------------------------------------------------------------

    @staticmethod
    def _optional_json(path: Path) -> dict:
        """A JSON object that is nice to have (timings, versions): {} when absent or unreadable."""
        try:
            data = _read_json_file(path)
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _required_files_problem(folder: Path) -> str | None:
        """What keeps `folder` from holding a complete run's files, or None when nothing does."""
        expected_types = {CONFIG_FILE: dict, METRICS_FILE: dict}
        for name in REQUIRED_FILES:
            path = folder / name
            if not path.is_file():
                return f"{name} is missing"
            try:
                if name == HISTORY_FILE:
                    if not _is_history(_read_json_file(path)):
                        return f"{name} does not hold a JSON list of epochs"
                elif name in expected_types:
                    if not isinstance(_read_json_file(path), expected_types[name]):
                        return f"{name} does not hold a JSON {expected_types[name].__name__}"
                elif name == PREDICTIONS_FILE:
                    _check_array_file(path)
                elif not _is_model_archive(path):
                    return f"{name} is not a whole Keras model file"
            except (OSError, ValueError, zipfile.BadZipFile) as error:
                return f"{name} is unreadable ({error})"
        return None

    def _inspect(self, folder: Path) -> _Inspection:
        """The status of one run folder, with what listings show; never raises for bad files."""
        try:
            folder_time = folder.lstat().st_mtime
        except FileNotFoundError:
            return _Inspection("missing", None, None, None, 0, None, 0.0)
        except OSError as error:
            return _Inspection("damaged", f"unreadable ({error})", None, None, 0, None, 0.0)

        def damaged(reason: str, config: dict | None = None, epochs_done: int = 0) -> _Inspection:
            return _Inspection(
                "damaged", reason, config, None, epochs_done, _iso_time(folder_time), folder_time
            )

        if not folder.is_dir() or folder.is_symlink():
            return damaged("not a folder")
        config_path = folder / CONFIG_FILE
        try:
            config = _read_json_file(config_path)
            started = config_path.stat().st_mtime
        except FileNotFoundError:
            return damaged(f"{CONFIG_FILE} is missing")
        except (OSError, ValueError) as error:
            return damaged(f"{CONFIG_FILE} is unreadable ({error})")
        if not isinstance(config, dict):
            return damaged(f"{CONFIG_FILE} does not hold a JSON object")
        history_path = folder / HISTORY_FILE
        try:
            history = _read_json_file(history_path)
            history_problem = None if _is_history(history) else "is not a list of epochs"
        except FileNotFoundError:
            history, history_problem = [], None
        except (OSError, ValueError) as error:
            history, history_problem = [], f"is unreadable ({error})"
        epochs_done = len(history) if history_problem is None else 0

        complete_path = folder / COMPLETE_FILE
        if complete_path.exists():
            try:
                complete = _read_json_file(complete_path)
            except (OSError, ValueError) as error:
                return damaged(f"{COMPLETE_FILE} is unreadable ({error})", config, epochs_done)
            if not isinstance(complete, dict):
                return damaged(f"{COMPLETE_FILE} does not hold a JSON object", config, epochs_done)
            problem = self._required_files_problem(folder)
            if problem is not None:
                return damaged(f"marked complete, but {problem}", config, epochs_done)
            created = complete.get("created")
            if isinstance(created, str):
                try:
                    parsed = datetime.fromisoformat(created)
                    if parsed.tzinfo is None:
                        parsed = parsed.replace(tzinfo=UTC)
                    sort_time = parsed.timestamp()
                except ValueError:
                    sort_time = started
            else:
                created, sort_time = _iso_time(started), started
            return _Inspection("complete", None, config, complete, epochs_done, created, sort_time)

        if history_problem is not None:  # what resuming needs: the run cannot go on
            return damaged(f"{HISTORY_FILE} {history_problem}", config)
        failed_path = folder / FAILED_FILE
        if failed_path.exists():
            try:
                failure = _read_json_file(failed_path)
                reason = str(failure["error"]) if isinstance(failure, dict) else str(failure)
            except (OSError, ValueError, KeyError) as error:
                reason = f"unknown error ({FAILED_FILE} is unreadable: {error})"
            return _Inspection(
                "failed", reason, config, None, epochs_done, _iso_time(started), started
            )
        return _Inspection(
            "incomplete", None, config, None, epochs_done, _iso_time(started), started
        )
