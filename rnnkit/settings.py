"""Every setting that an environment variable can change, read and checked in one place.

- `RNNKIT_DATA`: the aclImdb archive (`.tar.gz`) or unpacked `aclImdb` folder; unset, the
  archive is downloaded once into `RNNKIT_CACHE_DIR/downloads` (`rnnkit.data.download_imdb`).
  A device, a pipe or a socket is refused (reading one would never end).
- `RNNKIT_DATA_URL`: where that download comes from, an `http://`, `https://` or `file://`
  address; default the official `aclImdb_v1.tar.gz`, whose sha256 is checked. A file from
  another address (a mirror, a test server) has no known checksum: it is checked by reading it
  through as a tar archive instead.
- `RNNKIT_CACHE_DIR`: where parsed datasets are cached; default the user's cache folder
  (`~/.cache/rnnkit` on Linux). It must be a folder, or a path where one can be made.
- `RNNKIT_RUNS_DIR`: the run store, one folder per trained configuration; default
  `RNNKIT_CACHE_DIR/runs`. A folder, like the cache.
- Training limits of the app's server (`TrainingLimits`; the command line and the library
  are not limited), each a number in a range (`LIMIT_RANGES`):

  | variable | allowed | default (hosted) |
  |---|---|---|
  | `RNNKIT_MAX_EPOCHS` | 1 to 1,000 | 50 (10) |
  | `RNNKIT_MAX_UNITS` (per RNN or Dense layer) | 1 to 1,024 | 256 (128) |
  | `RNNKIT_MAX_EMBEDDING_DIM` | 1 to 1,024 | 256 (128) |
  | `RNNKIT_MAX_LENGTH` | 1 to 5,000 | 1,000 (500) |
  | `RNNKIT_MAX_NUM_WORDS` | 10 to 200,000 | 50,000 (20,000) |
  | `RNNKIT_MAX_JOBS` (trained at once) | 1 to 64 | 1 |
  | `RNNKIT_MAX_QUEUE` (waiting; 0: none wait) | 0 to 1,000 | 10 (5) |
  | `RNNKIT_MAX_TRAINING_MINUTES` (then cancelled, resumable) | 1 to 10,080 (a week) | 60 (15) |

  The sizes' upper ends are what a configuration allows at all (`rnnkit.config.LIMITS`).
- Yes-or-no variables, each 1/true/yes/on or 0/false/no/off: `RNNKIT_HOSTED` (the tighter
  hosted defaults above; default off), `RNNKIT_ALLOW_TRAINING` (whether the app trains at all;
  default on), `RNNKIT_FUSED_RNN` (SimpleRNN layers computed by the fused CPU loop of
  `rnnkit.fused`, same results, faster; 0 uses Keras' own loop; default on),
  `RNNKIT_STANDBY` (the app keeps one training process on standby while visitors use the Train
  page, so that a job starts without waiting for TensorFlow to load; 0 saves its several
  hundred MB; default on, but off when `RNNKIT_HOSTED` is on).
- `RNNKIT_RAY_ADDRESS`: the Ray cluster that trains the app's jobs (`rnnkit.cluster`): `auto`
  (the cluster this machine belongs to), `ray://HOST:PORT` (Ray's client server on the head,
  port 10001 by default) or `HOST:PORT` (the head's own address, from a cluster node). Unset,
  jobs train in child processes of the server, and `ray` need not be installed; set, it must be
  (`pip install -r requirements-cluster.txt`).
- `RNNKIT_RAY_JOB_CPUS`: the CPUs Ray reserves for each job on a node, 1 to 64; default 1.

Numbers are read by `rnnkit.parsing.parse_number`, as everywhere in rnnkit: ASCII digits, finite
("nan", "inf" and "３" are refused). Settings are read when asked for, not at import, so a test
or a notebook can change the environment and see the change. `check_environment()` reads every
variable at once and raises one `SettingsError` naming each bad one: the command line and the
app call it as they start.
"""

from __future__ import annotations

import importlib.util
import os
import re
import stat
import urllib.parse
from dataclasses import dataclass, fields
from pathlib import Path

import platformdirs

from rnnkit.parsing import NumberKind, parse_number

DATA_VARIABLE = "RNNKIT_DATA"
DATA_URL_VARIABLE = "RNNKIT_DATA_URL"
CACHE_VARIABLE = "RNNKIT_CACHE_DIR"
RUNS_VARIABLE = "RNNKIT_RUNS_DIR"
URL_SCHEMES = ("http", "https", "file")


class SettingsError(ValueError):
    """Environment variables hold values rnnkit cannot use; the message names each variable, its
    value and what it allows."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"{self.problems[0]}. Fix or unset the variable and start again."
        else:
            lines = "\n".join(f"- {problem}" for problem in self.problems)
            message = (
                f"{len(self.problems)} environment variables cannot be used:\n{lines}\n\n"
                f"Fix or unset them and start again."
            )
        super().__init__(message)


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


def folder_problem(path: Path) -> str | None:
    """What keeps `path` from being used as a folder rnnkit writes in, or None.

    A folder that exists is fine; one that does not is fine when its nearest existing parent is
    a folder (it is made when needed). Write permission is left to the writes, whose errors say
    so.

    Args:
        path: the folder.

    Returns:
        None, or a short reason ("/a/b is a file, not a folder").
    """
    for candidate in (path, *path.parents):
        try:
            mode = candidate.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):  # not there: its parent decides
            continue
        except OSError as error:
            return f"{candidate} cannot be read ({error.strerror or error})"
        if stat.S_ISDIR(mode):
            return None
        return f"{candidate} is {_kind_of_file(mode)}, not a folder"
    return None


def source_problem(path: Path) -> str | None:
    """What keeps an existing `path` from being read as the reviews (an archive or a folder): a
    device, a pipe or a socket would be read forever, or block. None when it is a regular file,
    a folder or missing (the loader says what is missing).
    """
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        return f"{path} cannot be read ({error.strerror or error})"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return f"{path} is {_kind_of_file(mode)}, not an archive or a folder"


def _kind_of_file(mode: int) -> str:
    kinds = [
        (stat.S_ISREG, "a file"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


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
class LimitRange:
    """The values a limit variable accepts: numbers of one kind from `low` to `high`."""

    kind: NumberKind
    low: float
    high: float
    unit: str = ""

    @property
    def allowed(self) -> str:
        """In words: "a whole number from 1 to 1,000"."""
        noun = "a whole number" if self.kind == "int" else "a number"
        unit = f" {self.unit}" if self.unit else ""
        return f"{noun} from {self.low:,g} to {self.high:,g}{unit}"


# What each limit variable (RNNKIT_<FIELD>) accepts. The sizes end where a configuration's own
# limits end (rnnkit.config.LIMITS); jobs, queue and minutes at what one server can hold.
LIMIT_RANGES = {
    "max_epochs": LimitRange("int", 1, 1000),
    "max_units": LimitRange("int", 1, 1024),
    "max_embedding_dim": LimitRange("int", 1, 1024),
    "max_length": LimitRange("int", 1, 5000),
    "max_num_words": LimitRange("int", 10, 200_000),
    "max_jobs": LimitRange("int", 1, 64),  # each job keeps the cores busy: more only queue
    "max_queue": LimitRange("int", 0, 1000),  # 0: a job starts at once or is refused
    "max_training_minutes": LimitRange("float", 1, 10_080, "minutes"),  # a week
}


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


def _flag_problem(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    if not value or value.lower() in _TRUE | _FALSE:
        return None
    return f"{name} must be 1/true/yes/on or 0/false/no/off, not {value!r}"


def _flag(name: str, default: bool) -> bool:
    problem = _flag_problem(name)
    if problem is not None:
        raise SettingsError([problem])
    value = os.environ.get(name, "").strip().lower()
    return value in _TRUE if value else default


def _limit_from_env(name: str, limit_range: LimitRange, default: float) -> tuple[float, str | None]:
    """(the limit's value, None) or (the default, what is wrong with the variable)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default, None
    try:
        value = parse_number(text, limit_range.kind)
    except ValueError:
        value = None
    if value is None or not limit_range.low <= value <= limit_range.high:
        return default, f"{name} must be {limit_range.allowed}, not {text!r}"
    return value, None


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
        SettingsError: the variable is set to something other than a yes or a no.
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


# For a process that trains: TensorFlow's pooling (BFC) allocator on CPUs, so that a batch's
# tensors reuse the memory of the batch before. With glibc's malloc, TensorFlow's threads map
# and fault in fresh memory for some of them: about 13,700 page faults a `seed` batch, and 66 to
# 14,000 a batch of the notebook's model, by the luck of which thread frees what (a few hundred
# with the pool). A variable already set is kept.
TRAINING_TENSORFLOW_VARIABLES = {"TF_CPU_ALLOCATOR_USE_BFC": "true"}


def training_variables() -> dict[str, str]:
    """TRAINING_TENSORFLOW_VARIABLES, each at this process's value where it sets one."""
    return {
        name: os.environ.get(name, value) for name, value in TRAINING_TENSORFLOW_VARIABLES.items()
    }


def training_environment() -> dict[str, str]:
    """`child_environment()` for a training process, with `training_variables()`."""
    return {**child_environment(), **training_variables()}


def set_training_variables() -> None:
    """Set `training_variables()` in this process's environment, for a command that trains:
    before TensorFlow is imported, or it reads them too late."""
    os.environ.update(training_variables())


RAY_ADDRESS_VARIABLE = "RNNKIT_RAY_ADDRESS"
RAY_JOB_CPUS_VARIABLE = "RNNKIT_RAY_JOB_CPUS"
RAY_JOB_CPUS_RANGE = LimitRange("int", 1, 64)
CLUSTER_REQUIREMENTS = "pip install -r requirements-cluster.txt"
# A host name or an IPv4 address, or an IPv6 address in brackets; then a port.
_HOST_AND_PORT = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})"
)


def ray_address_problem(address: str) -> str | None:
    """What keeps `address` from naming a Ray cluster, or None.

    Args:
        address: `auto`, `ray://HOST:PORT` or `HOST:PORT`.

    Returns:
        None, or the sentence that names the variable and what it allows.
    """
    rest = address[len("ray://") :] if address.startswith("ray://") else address
    match = _HOST_AND_PORT.fullmatch(rest)
    if address == "auto" or (match and 1 <= int(match.group(1)) <= 65535):
        return None
    return (
        f"{RAY_ADDRESS_VARIABLE} must be auto, ray://HOST:PORT or HOST:PORT (a port from 1 "
        f"to 65535), not {address!r}"
    )


def ray_missing_message(address: str) -> str:
    """The error for a Ray address set where `ray` is not installed."""
    return (
        f"{RAY_ADDRESS_VARIABLE} is set to {address!r}, but ray is not installed: "
        f"{CLUSTER_REQUIREMENTS} (or unset the variable to train on this machine)"
    )


def ray_address() -> str | None:
    """The Ray cluster that trains the app's jobs (`RNNKIT_RAY_ADDRESS`), or None: train them
    on this machine, as child processes of the server.

    Raises:
        SettingsError: the variable is not `auto`, `ray://HOST:PORT` or `HOST:PORT`.
    """
    address = os.environ.get(RAY_ADDRESS_VARIABLE, "").strip()
    if not address:
        return None
    problem = ray_address_problem(address)
    if problem:
        raise SettingsError([problem])
    return address


def ray_job_cpus() -> int:
    """The CPUs Ray reserves on a node for each training job (`RNNKIT_RAY_JOB_CPUS`, default 1).

    Raises:
        SettingsError: the variable is not a whole number from 1 to 64.
    """
    value, problem = _limit_from_env(RAY_JOB_CPUS_VARIABLE, RAY_JOB_CPUS_RANGE, 1)
    if problem:
        raise SettingsError([problem])
    return int(value)


def _cluster_problems() -> list[str]:
    """What is wrong with the cluster's variables, ray's absence included."""
    problems = []
    address = os.environ.get(RAY_ADDRESS_VARIABLE, "").strip()
    if address:
        problem = ray_address_problem(address)
        if problem:
            problems.append(problem)
        elif importlib.util.find_spec("ray") is None:
            problems.append(ray_missing_message(address))
    cpus_problem = _limit_from_env(RAY_JOB_CPUS_VARIABLE, RAY_JOB_CPUS_RANGE, 1)[1]
    if cpus_problem:
        problems.append(cpus_problem)
    return problems


def get_limits() -> TrainingLimits:
    """Read the app's training limits from the environment now.

    Each field `max_epochs` is read from `RNNKIT_MAX_EPOCHS` and so on, within its
    `LIMIT_RANGES`; unset fields take the defaults, or the hosted defaults when `RNNKIT_HOSTED`
    is on.

    Returns:
        The `TrainingLimits`.

    Raises:
        SettingsError: variables hold something else than a number in range (or a flag); the
            message names every one of them.
    """
    limits, problems = _limits_from_env()
    if problems:
        raise SettingsError(problems)
    return limits


def _limits_from_env() -> tuple[TrainingLimits, list[str]]:
    """The limits from the environment, each bad variable left at its default, and what is bad."""
    hosted_problem = _flag_problem(HOSTED_VARIABLE)
    base = HOSTED_LIMITS if not hosted_problem and _flag(HOSTED_VARIABLE, False) else None
    base = base or TrainingLimits()
    problems = [hosted_problem] if hosted_problem else []
    values = {}
    for item in fields(TrainingLimits):
        name = f"RNNKIT_{item.name.upper()}"
        default = getattr(base, item.name)
        if isinstance(default, bool):
            problem = _flag_problem(name)
            values[item.name] = default if problem else _flag(name, default)
        else:
            values[item.name], problem = _limit_from_env(name, LIMIT_RANGES[item.name], default)
        if problem:
            problems.append(problem)
    return TrainingLimits(**values), problems


def check_environment() -> None:
    """Read every `RNNKIT_*` variable now and check it, as a process starts.

    Checks the training limits and the flags (see the module doc for what each allows), the
    download address, the Ray cluster's address (and that `ray` is installed when it is set),
    and the paths: the cache and the run store must be folders (or where one
    can be made), the data a regular file or a folder, never a device, a pipe or a socket.

    Raises:
        SettingsError: one or more variables cannot be used; the message lists every one with
            its value and what it allows.
    """
    problems = _limits_from_env()[1] + _cluster_problems()
    for flag in (FUSED_VARIABLE, STANDBY_VARIABLE):
        flag_problem = _flag_problem(flag)
        if flag_problem:
            problems.append(flag_problem)
    data_url = os.environ.get(DATA_URL_VARIABLE, "").strip()
    if data_url:
        parts = urllib.parse.urlsplit(data_url)
        if parts.scheme.lower() not in URL_SCHEMES or not (parts.netloc or parts.path):
            problems.append(
                f"{DATA_URL_VARIABLE} must be an http://, https:// or file:// address, not "
                f"{data_url!r}"
            )
    data_path = _path_from_env(DATA_VARIABLE)
    problem = source_problem(data_path) if data_path else None
    if problem:
        problems.append(f"{DATA_VARIABLE} must name an aclImdb archive or folder: {problem}")
    settings = get_settings()
    cache_problem = folder_problem(settings.cache_dir)
    if cache_problem:
        problems.append(f"{CACHE_VARIABLE} must be a folder: {cache_problem}")
    # Unset, the run store is a folder of the cache: its problem is the cache's, named above.
    runs_problem = folder_problem(settings.runs_dir)
    if runs_problem and (_path_from_env(RUNS_VARIABLE) or not cache_problem):
        problems.append(f"{RUNS_VARIABLE} must be a folder: {runs_problem}")
    if problems:
        raise SettingsError(problems)
