"""Every setting that an environment variable can change, read in one place.

- `RNNKIT_DATA`: the aclImdb archive (`.tar.gz`) or unpacked `aclImdb` folder; unset, the
  official archive is downloaded with `keras.utils.get_file`.
- `RNNKIT_CACHE_DIR`: where parsed datasets are cached; default the user's cache folder
  (`~/.cache/rnnkit` on Linux).
- `RNNKIT_RUNS_DIR`: the run store, one folder per trained configuration; default
  `RNNKIT_CACHE_DIR/runs`.

Settings are read when asked for, not at import, so a test or a notebook can change the
environment and see the change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DATA_VARIABLE = "RNNKIT_DATA"
CACHE_VARIABLE = "RNNKIT_CACHE_DIR"
RUNS_VARIABLE = "RNNKIT_RUNS_DIR"


@dataclass(frozen=True)
class Settings:
    """The environment's settings, as read by `get_settings()`."""

    data_path: Path | None  # None: download the official archive with keras.utils.get_file
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
        cache_dir=cache_dir,
        runs_dir=_path_from_env(RUNS_VARIABLE) or cache_dir / "runs",
    )
