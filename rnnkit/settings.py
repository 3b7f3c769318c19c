"""Every setting that an environment variable can change, read in one place.

- `RNNKIT_DATA`: the aclImdb archive (`.tar.gz`) or unpacked `aclImdb` folder; unset, the
  archive is downloaded once into `RNNKIT_CACHE_DIR/downloads` (`rnnkit.data.download_imdb`).
- `RNNKIT_DATA_URL`: where that download comes from; default the official
  `aclImdb_v1.tar.gz`, whose sha256 is checked. A file from another address (a mirror, a test
  server) has no known checksum: it is checked by reading it through as a tar archive instead.
- `RNNKIT_CACHE_DIR`: where parsed datasets are cached; default the user's cache folder
  (`~/.cache/rnnkit` on Linux).
- `RNNKIT_RUNS_DIR`: the run store, one folder per trained configuration; default
  `RNNKIT_CACHE_DIR/runs`.
- Training limits of the app's server (`TrainingLimits`; the command line and the library
  are not limited): `RNNKIT_HOSTED` (1: the tighter hosted defaults below),
  `RNNKIT_ALLOW_TRAINING`, `RNNKIT_MAX_EPOCHS`, `RNNKIT_MAX_UNITS`, `RNNKIT_MAX_EMBEDDING_DIM`,
  `RNNKIT_MAX_LENGTH`, `RNNKIT_MAX_NUM_WORDS`, `RNNKIT_MAX_JOBS` (trained at once),
  `RNNKIT_MAX_QUEUE` (waiting), `RNNKIT_MAX_TRAINING_MINUTES` (a job running longer is
  cancelled; it stays resumable).
- `RNNKIT_STANDBY`: 1 keeps one training process on standby while visitors use the Train page,
  so that a job starts without waiting for TensorFlow to load; 0 saves its memory (several
  hundred MB). Default: 1, but 0 when `RNNKIT_HOSTED` is on.
- `RNNKIT_FUSED_RNN`: 1 (default) computes SimpleRNN layers with the fused CPU loop of
  `rnnkit.fused` (same results, faster); 0 uses Keras' own loop.

Settings are read when asked for, not at import, so a test or a notebook can change the
environment and see the change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

import platformdirs

DATA_VARIABLE = "RNNKIT_DATA"
DATA_URL_VARIABLE = "RNNKIT_DATA_URL"
CACHE_VARIABLE = "RNNKIT_CACHE_DIR"
RUNS_VARIABLE = "RNNKIT_RUNS_DIR"


@dataclass(frozen=True)
class Settings:
    """The environment's settings, as read by `get_settings()`."""

    data_path: Path | None  # None: download the archive from data_url
    data_url: str | None  # None: the official aclImdb_v1.tar.gz (rnnkit.data.OFFICIAL_URL)
    cache_dir: Path  # parsed datasets live in cache_dir / "imdb"
    runs_dir: Path  # one folder per run id


def _path_from_env(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def get_settings() -> Settings:
    """Read the settings from the environment now.

    Returns:
        A `Settings` with every variable resolved to its value or its default.
    """
    cache_dir = _path_from_env(CACHE_VARIABLE) or Path(platformdirs.user_cache_dir("rnnkit"))
    return Settings(
        data_path=_path_from_env(DATA_VARIABLE),
        data_url=os.environ.get(DATA_URL_VARIABLE, "").strip() or None,
        cache_dir=cache_dir,
        runs_dir=_path_from_env(RUNS_VARIABLE) or cache_dir / "runs",
    )


@dataclass(frozen=True)
class TrainingLimits:
    """What the app's server lets a visitor train; enforced by `rnnkit.jobs`, shown by the form."""

    allow_training: bool = True  # False: the app only shows runs trained elsewhere
    max_epochs: int = 50  # the notebook's 30 fits
    max_units: int = 256  # per RNN or Dense layer
    max_embedding_dim: int = 256
    max_length: int = 1000  # 99% of IMDB reviews are shorter
    max_num_words: int = 50_000  # about two thirds of the training words
    max_jobs: int = 1  # trainings at once: one CPU-bound job already uses the cores
    max_queue: int = 10  # jobs waiting; further requests are refused
    max_training_minutes: float = 60.0  # then the job is cancelled, resumable

    def highest(self, setting: str) -> int | None:
        """The most this server allows for a config setting (each entry of a list), or None
        when the setting is not limited here.

        Args:
            setting: a dotted config name, e.g. "training.epochs".
        """
        field_name = LIMITED_SETTINGS.get(setting)
        return None if field_name is None else getattr(self, field_name)


# Each config setting a server limits, to the `TrainingLimits` field that caps it (for a list,
# each of its entries): `rnnkit.jobs` enforces these and the Train form shows them.
LIMITED_SETTINGS = {
    "training.epochs": "max_epochs",
    "data.max_length": "max_length",
    "data.num_words": "max_num_words",
    "model.embedding_dim": "max_embedding_dim",
    "model.rnn_units": "max_units",
    "model.dense_units": "max_units",
}


# A hosted instance (one small CPU, many visitors) gets tighter defaults.
HOSTED_LIMITS = TrainingLimits(
    max_epochs=10,
    max_units=128,
    max_embedding_dim=128,
    max_length=500,
    max_num_words=20_000,
    max_queue=5,
    max_training_minutes=15.0,
)
HOSTED_VARIABLE = "RNNKIT_HOSTED"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise ValueError(f"{name} must be 1/true/yes/on or 0/false/no/off, not {value!r}")


FUSED_VARIABLE = "RNNKIT_FUSED_RNN"


STANDBY_VARIABLE = "RNNKIT_STANDBY"


def standby_enabled() -> bool:
    """Whether the app's job board keeps a training process on standby, TensorFlow loaded, so
    that a job starts at once (`RNNKIT_STANDBY`; default on, but off on a hosted server,
    `RNNKIT_HOSTED`, whose memory is small: the process holds several hundred MB).

    Raises:
        ValueError: the variable is set to something other than a yes or a no.
    """
    return _flag(STANDBY_VARIABLE, not _flag(HOSTED_VARIABLE, False))


def fused_rnn_enabled() -> bool:
    """Whether SimpleRNN layers use `rnnkit.fused` (`RNNKIT_FUSED_RNN`, default on).

    Raises:
        ValueError: the variable is set to something other than a yes or a no.
    """
    return _flag(FUSED_VARIABLE, True)


def child_environment() -> dict[str, str]:
    """The environment of a Python child process of rnnkit (a training job, a parsing helper):
    this process's, with this copy of the package first on `PYTHONPATH`, so the child imports
    the same rnnkit whether or not it is installed.

    Returns:
        A copy of `os.environ` with `PYTHONPATH` set.
    """
    package_root = str(Path(__file__).resolve().parents[1])
    paths = [package_root, *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def get_limits() -> TrainingLimits:
    """Read the app's training limits from the environment now.

    Each field `max_epochs` is read from `RNNKIT_MAX_EPOCHS` and so on; unset fields take the
    defaults, or the hosted defaults when `RNNKIT_HOSTED` is on.

    Returns:
        The `TrainingLimits`.

    Raises:
        ValueError: a variable holds something else than a positive number (or a flag).
    """
    base = HOSTED_LIMITS if _flag(HOSTED_VARIABLE, False) else TrainingLimits()
    values = {}
    for item in fields(TrainingLimits):
        name = f"RNNKIT_{item.name.upper()}"
        default = getattr(base, item.name)
        if isinstance(default, bool):
            values[item.name] = _flag(name, default)
            continue
        text = os.environ.get(name, "").strip()
        if not text:
            values[item.name] = default
            continue
        kind = type(default)
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value <= 0:
            raise ValueError(f"{name} must be a positive {kind.__name__}, not {text!r}")
        values[item.name] = value
    return TrainingLimits(**values)
