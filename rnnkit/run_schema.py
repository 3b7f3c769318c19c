"""What a run's files must hold: one table, `SCHEMA`, the checks that hold a run's parsed files
against it, and `inspect_folder`, which reads a run folder and says where it stands.

`rnnkit.runs` writes a run's files (it alone) and asks this module what a folder holds. A file
that does not match makes the run "damaged", with the reason these checks give, e.g.
"metrics.json: test_accuracy is 'high', not a number from 0 to 1".

The table, by file (JSON unless said otherwise):

- `config.json`: a `TrainConfig` as `TrainConfig.to_dict()` writes it; once complete, its run
  id with `complete.json`'s `data_fingerprint` is the folder's name.
- `history.json`: a list, one object per finished epoch: `epoch` the whole numbers 1, 2, ... n
  in order; `loss` and `val_loss` numbers of 0 or more, `accuracy` and `val_accuracy` from 0
  to 1, `seconds` 0 or more; any other key a finite number (what else Keras logs).
- `metrics.json`: `test_accuracy` from 0 to 1, `test_loss` 0 or more; other keys finite numbers.
- `predictions.npy`: a 1-D float32 array of probabilities from 0 to 1, one per test review:
  `complete.json`'s `test_reviews` of them.
- `complete.json`: `test_accuracy` from 0 to 1 (the one in `metrics.json`), `test_reviews` and
  `epochs_done` (the epochs in `history.json`) whole numbers of 1 or more (`test_reviews` and
  `data_fingerprint` are absent in runs completed before rnnkit recorded them: such a run's
  predictions and run id are not checked against them), `best_epoch` (1 to
  `epochs_done`) and `best_val_accuracy` (0 to 1), both null without validation, `seconds` 0 or
  more, `created` an ISO 8601 time, `data_fingerprint` the data's 64 hex digits.
- `timings.json`, `versions.json`: optional; when present, `timings.json`'s `seconds`,
  `fit_seconds`, `start_seconds`, `test_seconds` and `save_seconds` are 0 or more,
  `epoch_seconds` and `validation_seconds` lists of such numbers, `warm_start` and `fused_rnn`
  true or false, `finished` text; every value of `versions.json` is text.
- `failed.json`: `error` text, `when` an ISO 8601 time.
- `model.keras`: a zip archive holding a model's `config.json`, as every `.keras` file is.
- `backup/training_metadata.json`, the checkpoint of an unfinished run: `epoch` (the finished
  epochs it holds, 1 or more) and `weights`, the name of its weights file in `backup/`.

Numbers are finite (NaN and infinities are not numbers here) and never true or false; a whole
number is an int, not 3.0.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rnnkit.config import TrainConfig

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.npy"
MODEL_FILE = "model.keras"
TIMINGS_FILE = "timings.json"
VERSIONS_FILE = "versions.json"
FAILED_FILE = "failed.json"
COMPLETE_FILE = "complete.json"
CHECKPOINT_FILE = "backup/training_metadata.json"
# What a complete run must hold besides its marker.
REQUIRED_FILES = (CONFIG_FILE, HISTORY_FILE, METRICS_FILE, PREDICTIONS_FILE, MODEL_FILE)

ValueKind = Literal["int", "number", "bool", "text", "time", "hex", "numbers"]
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Value:
    """One JSON value: its kind and, for numbers, the range it lies in (both ends included).

    Kinds: "int" (a whole number), "number" (finite), "bool", "text", "time" (ISO 8601 text),
    "hex" (64 lowercase hex digits, a sha256) or "numbers" (a list of numbers in the range).
    """

    kind: ValueKind
    low: float | None = None
    high: float | None = None
    nullable: bool = False  # null is allowed too

    @property
    def allowed(self) -> str:
        """What is allowed, in words: "a number from 0 to 1"."""
        nouns = {
            "int": "a whole number",
            "number": "a number",
            "bool": "true or false",
            "text": "text",
            "time": "an ISO 8601 time",
            "hex": "64 lowercase hex digits",
            "numbers": "a list of numbers",
        }
        text = nouns[self.kind]
        if self.low is not None and self.high is not None:
            text += f" from {self.low:g} to {self.high:g}"
        elif self.low is not None:
            text += f" of {self.low:g} or more"
        return f"{text} or null" if self.nullable else text

    def _number_fits(self, value: Any, whole: bool) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if whole and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def fits(self, value: Any) -> bool:
        """Whether `value` (parsed JSON) is allowed."""
        if value is None:
            return self.nullable
        if self.kind in ("int", "number"):
            return self._number_fits(value, whole=self.kind == "int")
        if self.kind == "numbers":
            return isinstance(value, list) and all(
                self._number_fits(item, whole=False) for item in value
            )
        if self.kind == "bool":
            return isinstance(value, bool)
        if not isinstance(value, str):
            return False
        if self.kind == "hex":
            return _HEX.fullmatch(value) is not None
        if self.kind == "time":
            try:
                datetime.fromisoformat(value)
            except ValueError:
                return False
        return True


@dataclass(frozen=True)
class JsonObject:
    """A JSON object: keys it must have, keys it may have, and what any other key may hold."""

    required: Mapping[str, Value] = field(default_factory=dict)
    optional: Mapping[str, Value] = field(default_factory=dict)
    others: Value | None = None  # None: another key may hold anything

    def problem(self, data: Any, where: str) -> str | None:
        """What in `data` does not match, or None; `where` names it ("metrics.json")."""
        if not isinstance(data, dict):
            return f"{where} is {_shown(data)}, not a JSON object"
        for key in self.required:
            if key not in data:
                return f"{where} has no {key!r}"
        for key, item in data.items():
            expected = self.required.get(key) or self.optional.get(key) or self.others
            if expected is not None and not expected.fits(item):
                return f"{where}: {key} is {_shown(item)}, not {expected.allowed}"
        return None


@dataclass(frozen=True)
class JsonList:
    """A JSON list of objects of one kind."""

    items: JsonObject

    def problem(self, data: Any, where: str) -> str | None:
        """What in `data` does not match, or None; `where` names it ("history.json")."""
        if not isinstance(data, list):
            return f"{where} is {_shown(data)}, not a JSON list"
        for index, item in enumerate(data):
            problem = self.items.problem(item, f"{where} entry {index + 1}")
            if problem is not None:
                return problem
        return None


@dataclass(frozen=True)
class Probabilities:
    """A 1-D float32 `.npy` array of probabilities, one per test review."""

    dtype: str = "float32"

    def problem(self, array: np.ndarray, test_reviews: int | None, where: str) -> str | None:
        """What in `array` does not match, or None.

        Args:
            array: the array read.
            test_reviews: how many values it must hold; None: not checked.
            where: names it ("predictions.npy").
        """
        if array.dtype != np.dtype(self.dtype) or array.ndim != 1:
            return f"{where} holds {array.dtype} of shape {array.shape}, not 1-D {self.dtype}"
        if test_reviews is not None and len(array) != test_reviews:
            return f"{where} holds {len(array)} values, not one per test review ({test_reviews})"
        outside = ~((array >= 0) & (array <= 1))  # NaN is outside too
        if outside.any():
            first = array[np.flatnonzero(outside)[0]]
            return f"{where} holds {first!r}, not a probability from 0 to 1"
        return None


PROBABILITY = Value("number", 0, 1)
NON_NEGATIVE = Value("number", 0)
FINITE = Value("number")

EPOCH_RECORD = JsonObject(
    required={"epoch": Value("int", 1)},
    optional={
        "seconds": NON_NEGATIVE,
        "loss": NON_NEGATIVE,
        "accuracy": PROBABILITY,
        "val_loss": NON_NEGATIVE,
        "val_accuracy": PROBABILITY,
    },
    others=FINITE,
)

# Every file of a run and what it holds (config.json and model.keras are checked by code: a
# TrainConfig, and a zip archive with a model's config.json; see the module doc).
SCHEMA: dict[str, JsonObject | JsonList | Probabilities] = {
    HISTORY_FILE: JsonList(EPOCH_RECORD),
    METRICS_FILE: JsonObject(
        required={"test_accuracy": PROBABILITY, "test_loss": NON_NEGATIVE}, others=FINITE
    ),
    PREDICTIONS_FILE: Probabilities(),
    COMPLETE_FILE: JsonObject(
        required={
            "test_accuracy": PROBABILITY,
            "epochs_done": Value("int", 1),
            "best_epoch": Value("int", 1, nullable=True),
            "best_val_accuracy": Value("number", 0, 1, nullable=True),
            "seconds": NON_NEGATIVE,
            "created": Value("time"),
        },
        # Every run completed now has these (`RunStore.mark_complete` asks for them); runs
        # completed before rnnkit recorded them lack them, and stay complete, unchecked there.
        optional={"test_reviews": Value("int", 1), "data_fingerprint": Value("hex")},
    ),
    TIMINGS_FILE: JsonObject(
        optional={
            "seconds": NON_NEGATIVE,
            "fit_seconds": NON_NEGATIVE,
            "epoch_seconds": Value("numbers", 0),
            "fused_rnn": Value("bool"),
            "finished": Value("text"),
            "start_seconds": NON_NEGATIVE,
            "warm_start": Value("bool"),
            "validation_seconds": Value("numbers", 0),
            "test_seconds": NON_NEGATIVE,
            "save_seconds": NON_NEGATIVE,
        }
    ),
    VERSIONS_FILE: JsonObject(others=Value("text")),
    FAILED_FILE: JsonObject(required={"error": Value("text")}, optional={"when": Value("time")}),
    CHECKPOINT_FILE: JsonObject(
        # "weights" is absent in checkpoints of Keras' BackupAndRestore: latest.weights.h5.
        required={"epoch": Value("int", 1)},
        optional={"weights": Value("text"), "batch": Value("int", 0)},
    ),
}
OPTIONAL_FILES = (TIMINGS_FILE, VERSIONS_FILE)  # a complete run may lack them


_PLAIN_TEXT = re.compile(r"[\w .:+-]{0,24}", re.ASCII)


def _shown(value: Any) -> str:
    """A value for a message, short, and quoted only where it is plain: a damaged file may
    hold megabytes, or text that means something to whatever shows the message."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 24 else f"a number of {len(text)} digits"
    if isinstance(value, str):
        plain = _PLAIN_TEXT.fullmatch(value) is not None
        return repr(value) if plain else f"text of {len(value)} characters"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    return "a JSON object" if isinstance(value, dict) else type(value).__name__


def json_problem(name: str, data: Any) -> str | None:
    """What keeps parsed JSON from being the run file `name`, or None.

    Args:
        name: a JSON file of `SCHEMA` ("metrics.json").
        data: its parsed content.

    Returns:
        None, or the reason, naming the file and the key.
    """
    spec = SCHEMA[name]
    if isinstance(spec, Probabilities):
        raise ValueError(f"{name} is not a JSON file")
    return spec.problem(data, name)


def history_problem(history: Any) -> str | None:
    """What keeps parsed `history.json` from being a run's finished epochs, or None: it must
    match the schema and number its epochs 1, 2, ... in order.
    """
    problem = json_problem(HISTORY_FILE, history)
    if problem is not None:
        return problem
    for index, record in enumerate(history):
        if record["epoch"] != index + 1:
            return f"{HISTORY_FILE} entry {index + 1} is epoch {record['epoch']}, not {index + 1}"
    return None


def config_problem(config: Any, run_id: str, data_fingerprint: str | None) -> str | None:
    """What keeps parsed `config.json` from being this run's configuration, or None.

    Args:
        config: the parsed file.
        run_id: the folder's name.
        data_fingerprint: the data the run was trained on (`complete.json`); None before the
            run is complete, when the run id cannot be checked.
    """
    if not isinstance(config, dict):
        return f"{CONFIG_FILE} is {_shown(config)}, not a JSON object"
    try:
        parsed = TrainConfig.from_dict(config)
    except ValueError as error:
        return f"{CONFIG_FILE} is not a configuration ({error})"
    if data_fingerprint is not None and parsed.run_id(data_fingerprint) != run_id:
        return f"{CONFIG_FILE} is the configuration of run {parsed.run_id(data_fingerprint)}"
    return None


def complete_run_problem(
    run_id: str,
    config: Any,
    history: list[dict],
    complete: Any,
    metrics: Any,
    predictions: np.ndarray,
    optional: Mapping[str, Any],
) -> str | None:
    """What keeps a run's parsed files from being a complete run, or None: each file against
    `SCHEMA`, then the files against each other.

    Args:
        run_id: the folder's name.
        config, complete, metrics: the parsed JSON files.
        history: the parsed `history.json`, already checked by `history_problem`.
        predictions: `predictions.npy`.
        optional: the optional files present (`timings.json`, `versions.json`), parsed.

    Returns:
        None, or the first reason found.
    """
    problem = (
        json_problem(COMPLETE_FILE, complete)
        or config_problem(config, run_id, complete.get("data_fingerprint"))
        or json_problem(METRICS_FILE, metrics)
        or SCHEMA[PREDICTIONS_FILE].problem(
            predictions, complete.get("test_reviews"), PREDICTIONS_FILE
        )
        or next(filter(None, (json_problem(name, data) for name, data in optional.items())), None)
    )
    if problem is not None:
        return problem
    if complete["epochs_done"] != len(history):
        return (
            f"{COMPLETE_FILE} says {complete['epochs_done']} epochs, {HISTORY_FILE} holds "
            f"{len(history)}"
        )
    best_epoch = complete["best_epoch"]
    if best_epoch is not None and best_epoch > len(history):
        return f"{COMPLETE_FILE}: best_epoch is {best_epoch}, after the last epoch"
    if complete["test_accuracy"] != metrics["test_accuracy"]:
        return (
            f"{COMPLETE_FILE}'s test_accuracy {complete['test_accuracy']!r} is not "
            f"{METRICS_FILE}'s {metrics['test_accuracy']!r}"
        )
    return None


# --- reading a run folder ---------------------------------------------------------------------


def read_json_file(path: Path) -> Any:
    """A file's JSON, read as UTF-8."""
    return json.loads(path.read_text(encoding="utf-8"))


def read_json_or_problem(path: Path) -> tuple[Any, str | None]:
    """(parsed JSON, None), or (None, why it cannot be read) naming the file."""
    try:
        return read_json_file(path), None
    except FileNotFoundError:
        return None, f"{path.name} is missing"
    except (OSError, ValueError) as error:
        return None, f"{path.name} is unreadable ({error})"


def iso_time(timestamp: float) -> str:
    """Seconds since the epoch as an ISO 8601 time in UTC, to the second."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _is_model_archive(path: Path) -> bool:
    """Whether `path` is a zip archive with a model's `config.json`, as every `.keras` file is.

    Only the archive's directory is read (milliseconds), not the weights.
    """
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return "config.json" in archive.namelist()


@dataclass(frozen=True)
class CompleteFiles:
    """A complete run's files as read and checked against the schema."""

    history: list[dict]
    metrics: dict
    predictions: np.ndarray
    optional: dict[str, dict]  # timings.json and versions.json, where present


@dataclass(frozen=True)
class Inspection:
    """Where a run folder stands, as `inspect_folder` read it."""

    status: str  # "missing", "complete", "incomplete", "failed" or "damaged"
    reason: str | None  # a failed run's error or what is damaged
    config: dict | None  # None when it is missing or not a configuration
    complete: dict | None  # complete.json of a complete run
    epochs_done: int
    created: str | None
    sort_time: float  # seconds since the epoch, newest first in listings
    files: CompleteFiles | None = None  # a complete run's files, as checked


def read_complete_files(
    folder: Path, config: Any, complete: Any
) -> tuple[CompleteFiles | None, str | None]:
    """Read the files a complete run needs and check them, with `complete` (complete.json,
    parsed) and `config` (config.json), against the schema.

    Returns:
        (the files, None), or (None, what is missing or wrong).
    """
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            return None, f"{name} is missing"
    history, problem = read_json_or_problem(folder / HISTORY_FILE)
    problem = problem or history_problem(history)
    if problem is not None:
        return None, problem
    metrics, problem = read_json_or_problem(folder / METRICS_FILE)
    if problem is not None:
        return None, problem
    try:
        predictions = np.load(folder / PREDICTIONS_FILE, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        return None, f"{PREDICTIONS_FILE} is unreadable ({error})"
    try:
        if not _is_model_archive(folder / MODEL_FILE):
            return None, f"{MODEL_FILE} is not a whole Keras model file"
    except (OSError, zipfile.BadZipFile) as error:
        return None, f"{MODEL_FILE} is unreadable ({error})"
    optional = {}
    for name in OPTIONAL_FILES:
        if (folder / name).exists():
            optional[name], problem = read_json_or_problem(folder / name)
            if problem is not None:
                return None, problem
    problem = complete_run_problem(
        folder.name, config, history, complete, metrics, predictions, optional
    )
    if problem is not None:
        return None, problem
    return CompleteFiles(history, metrics, predictions, optional), None


def inspect_folder(folder: Path) -> Inspection:
    """Read one run folder and say where it stands, with what listings show; never raises for
    bad files: what does not match the schema makes the run "damaged", with the reason.

    Args:
        folder: the run folder, named by its run id.

    Returns:
        The `Inspection`; for a complete run it holds its checked files.
    """
    try:
        folder_time = folder.lstat().st_mtime
    except (FileNotFoundError, NotADirectoryError):  # no such folder (the root is a file)
        return Inspection("missing", None, None, None, 0, None, 0.0)
    except OSError as error:
        return Inspection("damaged", f"unreadable ({error})", None, None, 0, None, 0.0)

    def damaged(reason: str, config: dict | None = None, epochs_done: int = 0) -> Inspection:
        return Inspection(
            "damaged", reason, config, None, epochs_done, iso_time(folder_time), folder_time
        )

    if not folder.is_dir() or folder.is_symlink():
        return damaged("not a folder")
    config_path = folder / CONFIG_FILE
    config, problem = read_json_or_problem(config_path)
    problem = problem or config_problem(config, folder.name, None)
    if problem is not None:
        return damaged(problem)
    try:
        started = config_path.stat().st_mtime
    except OSError as error:  # deleted meanwhile
        return damaged(f"{CONFIG_FILE} is unreadable ({error})")
    history_path = folder / HISTORY_FILE
    if history_path.exists():
        history, history_trouble = read_json_or_problem(history_path)
        history_trouble = history_trouble or history_problem(history)
    else:
        history, history_trouble = [], None
    epochs_done = len(history) if history_trouble is None else 0

    complete_path = folder / COMPLETE_FILE
    if complete_path.exists():
        complete, problem = read_json_or_problem(complete_path)
        files = None
        if problem is None:
            files, problem = read_complete_files(folder, config, complete)
        if problem is not None:
            return damaged(f"marked complete, but {problem}", config, epochs_done)
        created = complete["created"]
        parsed = datetime.fromisoformat(created)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return Inspection(
            "complete", None, config, complete, epochs_done, created, parsed.timestamp(), files
        )

    if history_trouble is not None:  # what resuming needs: the run cannot go on
        return damaged(history_trouble, config)
    failed_path = folder / FAILED_FILE
    if failed_path.exists():
        failure, problem = read_json_or_problem(failed_path)
        problem = problem or json_problem(FAILED_FILE, failure)
        # Why it failed is for people: a damaged record still leaves the run resumable.
        reason = failure["error"] if problem is None else f"unknown error ({problem})"
        return Inspection("failed", reason, config, None, epochs_done, iso_time(started), started)
    return Inspection("incomplete", None, config, None, epochs_done, iso_time(started), started)
