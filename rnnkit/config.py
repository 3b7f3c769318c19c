"""What one training run is: the data encoding, the model and the training settings.

A `TrainConfig` holds three frozen sections, `data`, `model` and `training`; its defaults are the
course notebook exactly (`preset("notebook")`; `preset("seed")` masks its padding). Every setting
is checked against one table, `LIMITS`, when a config is made, so a bad value fails at once with a
message that names the field, the value and what is allowed; a UI reads the same table for its
sliders and choices.

A config names its run: `run_id(data_fingerprint)` hashes the canonical JSON of every setting
together with the data's fingerprint, so the same settings on the same data find the same run.
Each value is stored in one form however it was written (a float setting's 1 is 1.0, -0.0 is
0.0, a list is a tuple; text is read by `Limit.parse`), so equal settings give equal ids.

This module imports neither Keras nor TensorFlow: `rnnkit.model` builds the model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rnnkit.parsing import parse_number
from rnnkit.sequences import SIDES, Side

Cell = Literal["simple_rnn", "lstm", "gru"]
Optimizer = Literal["adam", "rmsprop", "sgd"]
CELLS = ("simple_rnn", "lstm", "gru")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
SECTIONS = ("data", "model", "training")


@dataclass(frozen=True)
class Limit:
    """The values one setting accepts.

    `kind` is "int", "float", "bool", "choice" (one of `choices`) or "int_tuple" (`min_items` to
    `max_items` whole numbers, each from `low` to `high`). Numbers lie from `low` to `high`, the
    ends included unless `low_open` / `high_open`; `optional` settings may also be None.
    """

    kind: Literal["int", "float", "bool", "choice", "int_tuple"]
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    min_items: int = 0
    max_items: int = 0
    optional: bool = False

    @property
    def allowed(self) -> str:
        """What is allowed, in words: "a whole number from 1 to 1000"."""
        low, high = _format(self.low), _format(self.high)
        if self.kind == "bool":
            text = "True or False"
        elif self.kind == "choice":
            text = "one of " + ", ".join(repr(choice) for choice in self.choices)
        elif self.kind == "int_tuple":
            count = f"{self.min_items} to {self.max_items}"
            text = f"a list of {count} whole numbers, each from {low} to {high}"
        else:
            noun = "a whole number" if self.kind == "int" else "a number"
            if self.low_open and self.high_open:
                text = f"{noun} between {low} and {high}, both excluded"
            elif self.low_open:
                text = f"{noun} above {low} and at most {high}"
            elif self.high_open:
                text = f"{noun} from {low} up to but not including {high}"
            else:
                text = f"{noun} from {low} to {high}"
        return f"None or {text}" if self.optional else text

    def _in_range(self, number: float) -> bool:
        above_low = number > self.low if self.low_open else number >= self.low
        below_high = number < self.high if self.high_open else number <= self.high
        return above_low and below_high

    def check(self, name: str, value: Any) -> Any:
        """Check `value` for the setting `name` and return it in its stored form.

        Args:
            name: the dotted field name, for the message ("training.epochs").
            value: the value given; lists become tuples, whole numbers given to a "float"
                setting become floats (so 1 and 1.0 name the same run).

        Returns:
            The value as the config stores it.

        Raises:
            ValueError: the value is not allowed; the message names the field, the value and
                what is allowed.
        """
        if value is None and self.optional:
            return None
        if self.kind == "bool" and isinstance(value, bool):
            return value
        if self.kind == "choice" and isinstance(value, str) and value in self.choices:
            return value
        if self.kind == "int" and _is_whole(value) and self._in_range(value):
            return int(value)
        if (
            self.kind == "float"
            and isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and self._in_range(value)
        ):
            return float(value) + 0.0  # -0.0 + 0.0 is 0.0: one run id for "-0" and "0"
        if (
            self.kind == "int_tuple"
            and isinstance(value, list | tuple)
            and self.min_items <= len(value) <= self.max_items
            and all(_is_whole(item) and self._in_range(item) for item in value)
        ):
            return tuple(int(item) for item in value)
        raise ValueError(f"{name} must be {self.allowed}, not {value!r}")

    def parse(self, name: str, text: str) -> Any:
        """Read a value for `name` from text, as a command line gives it ("3", "64,64", "none").

        Numbers are read by `rnnkit.parsing.parse_number`, as every number from text is: ASCII
        digits only ("３" is refused), "-0" is 0, and "3.0" or "3e0" is the whole number 3.

        Returns:
            The value, checked as `check` does.
        """
        cleaned = text.strip()
        lowered = cleaned.lower()
        try:
            if self.optional and lowered in ("none", "null", ""):
                value: Any = None
            elif self.kind in ("int", "float"):
                value = parse_number(cleaned, self.kind)
            elif self.kind == "bool":
                value = _BOOLEAN_WORDS[lowered]
            elif self.kind == "choice":
                value = lowered
            else:
                items = cleaned.strip("[]() ").replace(",", " ").split()
                empty = items in ([], ["none"])
                value = () if empty else tuple(parse_number(item, "int") for item in items)
        except (ValueError, KeyError):
            raise ValueError(f"{name} must be {self.allowed}, not {text!r}") from None
        return self.check(name, value)


# How a yes or a no may be written on a command line or in a URL.
_BOOLEAN_WORDS = {
    **dict.fromkeys(("true", "yes", "on", "1"), True),
    **dict.fromkeys(("false", "no", "off", "0"), False),
}


def _format(number: float | None) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


_UNITS = Limit("int_tuple", low=1, high=1024, min_items=0, max_items=4)
# Every setting's allowed values, by dotted field name; the config checks against it and a UI
# reads it for its widgets.
LIMITS: dict[str, Limit] = {
    "data.num_words": Limit("int", low=10, high=200_000),
    "data.max_length": Limit("int", low=1, high=5000),
    "data.padding": Limit("choice", choices=SIDES),
    "data.truncating": Limit("choice", choices=SIDES),
    "model.cell": Limit("choice", choices=CELLS),
    "model.bidirectional": Limit("bool"),
    "model.rnn_units": _UNITS,
    "model.embedding_dim": Limit("int", low=1, high=1024),
    "model.dense_units": _UNITS,
    "model.dropout_rate": Limit("float", low=0, high=1, high_open=True),
    "model.recurrent_dropout_rate": Limit("float", low=0, high=1, high_open=True),
    "model.l2": Limit("float", low=0, high=1),
    "model.mask_padding": Limit("bool"),
    "training.epochs": Limit("int", low=1, high=1000),
    "training.batch_size": Limit("int", low=1, high=4096),
    "training.validation_split": Limit("float", low=0, high=0.5, low_open=True),
    "training.optimizer": Limit("choice", choices=OPTIMIZERS),
    "training.learning_rate": Limit("float", low=0, high=1, low_open=True),
    "training.early_stopping_patience": Limit("int", low=1, high=1000, optional=True),
    "training.seed": Limit("int", low=0, high=2**31 - 1),
}


class _Section:
    """Checks and normalizes a section's fields against `LIMITS` when it is made."""

    section: ClassVar[str]

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            name = f"{self.section}.{item.name}"
            value = LIMITS[name].check(name, getattr(self, item.name))
            object.__setattr__(self, item.name, value)  # frozen: store the normalized value


@dataclass(frozen=True)
class DataConfig(_Section):
    """How reviews become fixed-length rows of token ids."""

    section: ClassVar[str] = "data"
    num_words: int = 10000  # the notebook's vocabulary: ids of 10,000 or more become <UNK>
    max_length: int = 500  # the notebook pads and cuts every review to 500 steps
    padding: Side = "post"  # the notebook pads after the words
    truncating: Side = "pre"  # Keras' default: a long review keeps its last words (its verdict)


@dataclass(frozen=True)
class ModelConfig(_Section):
    """The network: embedding, stacked RNN layers, dense layers and a sigmoid output.

    `rnn_units` has one entry per RNN layer; every layer but the last returns its whole sequence
    to the next. With none, `()`, the model has no RNN: it averages the word vectors of each
    review (of its words only, under `mask_padding`), the bag-of-words baseline that shows what
    an RNN adds; `cell`, `bidirectional` and `recurrent_dropout_rate` then change nothing.
    `dense_units` has one entry per hidden relu Dense layer (none is fine).
    Dropout (`dropout_rate` > 0) follows every RNN layer (or the average) and every hidden
    Dense layer, not the embedding; `l2` penalizes every kernel (RNN input and recurrent
    kernels, Dense kernels including the output's), not biases or the embedding.
    """

    section: ClassVar[str] = "model"
    cell: Cell = "simple_rnn"  # the notebook's cell
    bidirectional: bool = True  # the notebook reads each review both ways
    rnn_units: tuple[int, ...] = (64, 64)  # the notebook's two stacked layers
    embedding_dim: int = 16  # the notebook's Embedding(10000, 16)
    dense_units: tuple[int, ...] = (64,)  # the notebook's Dense(64, relu) before the output
    dropout_rate: float = 0.0  # the notebook has no dropout
    recurrent_dropout_rate: float = 0.0  # the notebook has none; > 0 also rules out cuDNN
    l2: float = 0.0  # the notebook has no weight penalty
    mask_padding: bool = False  # the notebook feeds padding to the RNN like any word


@dataclass(frozen=True)
class TrainingConfig(_Section):
    """How the model is fitted."""

    section: ClassVar[str] = "training"
    epochs: int = 30  # the notebook's 30 epochs
    batch_size: int = 128  # the notebook's batch size
    validation_split: float = 0.2  # the notebook holds back a fifth of the training reviews
    optimizer: Optimizer = "adam"  # the notebook's optimizer
    learning_rate: float = 0.001  # Adam's default, which the notebook keeps
    early_stopping_patience: int | None = None  # None: the notebook runs every epoch
    seed: int = 0  # one fixed seed, so a run repeats


_SECTION_CLASSES: dict[str, type[_Section]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
}


_TYPE_NAMES = {
    "int": "int",
    "float": "float",
    "bool": "bool",
    "choice": "str",
    "int_tuple": "tuple[int, ...]",
}


@dataclass(frozen=True)
class FieldSpec:
    """One setting of a `TrainConfig`, for a command line or a UI to list."""

    name: str  # dotted: "training.epochs"
    type: str  # "int", "float", "bool", "str", "tuple[int, ...]", or one of them "| None"
    default: Any  # its value in the seed preset
    limit: Limit  # what it accepts


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run's result; its defaults are the course notebook."""

    data: DataConfig = field(default_factory=DataConfig)  # the notebook's encoding
    model: ModelConfig = field(default_factory=ModelConfig)  # the notebook's model
    training: TrainingConfig = field(default_factory=TrainingConfig)  # the notebook's fit

    def __post_init__(self) -> None:
        for section, section_class in _SECTION_CLASSES.items():
            value = getattr(self, section)
            if not isinstance(value, section_class):
                raise ValueError(
                    f"{section} must be a {section_class.__name__}, not {value!r}; "
                    f"use TrainConfig.from_dict for plain dicts"
                )

    @staticmethod
    def fields() -> list[FieldSpec]:
        """Every setting with its dotted name, type, default and limit, in declaration order."""
        specs = []
        for section, section_class in _SECTION_CLASSES.items():
            defaults = section_class()
            for item in dataclasses.fields(section_class):
                name = f"{section}.{item.name}"
                limit = LIMITS[name]
                type_name = _TYPE_NAMES[limit.kind] + (" | None" if limit.optional else "")
                specs.append(FieldSpec(name, type_name, getattr(defaults, item.name), limit))
        return specs

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The settings as a nested dict of plain JSON values (tuples become lists).

        Returns:
            {"data": {...}, "model": {...}, "training": {...}}.
        """
        return {
            section: {
                name: list(value) if isinstance(value, tuple) else value
                for name, value in dataclasses.asdict(getattr(self, section)).items()
            }
            for section in SECTIONS
        }

    def flat_settings(self) -> dict[str, Any]:
        """Every setting by its dotted name, in declaration order: {"data.num_words": 10000,
        ..., "model.rnn_units": (64, 64), ...}."""
        return {
            f"{section}.{name}": value
            for section in SECTIONS
            for name, value in dataclasses.asdict(getattr(self, section)).items()
        }

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> TrainConfig:
        """Make a config from a nested dict such as `to_dict()` gives.

        Args:
            settings: {"data": {...}, "model": {...}, "training": {...}}; a missing section or
                key takes its default.

        Returns:
            The config.

        Raises:
            ValueError: a section or key is unknown (the message names it), or a value is not
                allowed.
        """
        if not isinstance(settings, Mapping):
            raise ValueError(f"a config must be a dict of sections, not {settings!r}")
        unknown = sorted(set(settings) - set(SECTIONS))
        if unknown:
            raise ValueError(
                f"unknown config section {unknown[0]!r}; the sections are {', '.join(SECTIONS)}"
            )
        sections = {}
        for section, section_class in _SECTION_CLASSES.items():
            values = settings.get(section, {})
            if not isinstance(values, Mapping):
                raise ValueError(f"config section {section!r} must be a dict, not {values!r}")
            names = [item.name for item in dataclasses.fields(section_class)]
            unknown = sorted(set(values) - set(names))
            if unknown:
                raise ValueError(
                    f"unknown config key {section}.{unknown[0]}; the keys of {section} are "
                    f"{', '.join(names)}"
                )
            sections[section] = section_class(**values)
        return cls(**sections)

    def canonical_json(self) -> str:
        """The settings as compact JSON with sorted keys: equal configs give equal text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def run_id(self, data_fingerprint: str) -> str:
        """Name the run of these settings on one dataset.

        Args:
            data_fingerprint: the data's fingerprint (`ImdbData.source.fingerprint`).

        Returns:
            16 hex digits of sha256(canonical JSON + newline + fingerprint): the same settings on
            the same data give the same id, any change gives another.
        """
        if not isinstance(data_fingerprint, str):
            raise ValueError(f"data_fingerprint must be a string, not {data_fingerprint!r}")
        text = f"{self.canonical_json()}\n{data_fingerprint}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_overrides(self, overrides: Mapping[str, object]) -> TrainConfig:
        """A copy with some settings changed.

        Args:
            overrides: dotted names ("training.epochs") or bare field names ("epochs") to new
                values; a string is read as the field's type ("3", "0.5", "lstm", "64,64",
                "none", "true"), anything else is taken as is.

        Returns:
            The new config, checked like any other.

        Raises:
            ValueError: a key is unknown (the message lists the valid keys) or a value is not
                allowed.
        """
        changes: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        for key, value in overrides.items():
            name = _resolve_key(key)
            section, field_name = name.split(".")
            if isinstance(value, str):
                value = LIMITS[name].parse(name, value)
            changes[section][field_name] = value
        return TrainConfig(
            **{
                section: dataclasses.replace(getattr(self, section), **changes[section])
                for section in SECTIONS
            }
        )

    def summary(self) -> str:
        """One short line: "BiSimpleRNN 64-64 · emb 16 · dense 64 · len 500 post · 30 epochs"."""
        model, data, training = self.model, self.data, self.training
        cell_name = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}[model.cell]
        rnn = f"{'Bi' if model.bidirectional else ''}{cell_name} " + "-".join(
            map(str, model.rnn_units)
        )
        parts = [
            rnn if model.rnn_units else "no RNN (mean of word vectors)",
            f"emb {model.embedding_dim}",
            "dense " + "-".join(map(str, model.dense_units)) if model.dense_units else "no dense",
        ]
        if model.dropout_rate:
            parts.append(f"dropout {model.dropout_rate:g}")
        parts.append(
            f"len {data.max_length} {data.padding}" + (", masked" if model.mask_padding else "")
        )
        epochs = f"{training.epochs} epochs"
        if training.early_stopping_patience is not None:
            epochs = f"≤{epochs} (patience {training.early_stopping_patience})"
        parts.append(epochs)
        return " · ".join(parts)


def _resolve_key(key: str) -> str:
    if key in LIMITS:
        return key
    matches = [name for name in LIMITS if name.split(".")[1] == key]
    if len(matches) == 1:
        return matches[0]
    problem = "ambiguous" if matches else "unknown"
    raise ValueError(f"{problem} setting {key!r}; the settings are {', '.join(LIMITS)}")


# Named starting points. "notebook" is the course notebook exactly (the defaults):
# Embedding(10000, 16) -> Bidirectional SimpleRNN(64, return_sequences) -> Bidirectional
# SimpleRNN(64) -> Dense(64, relu) -> Dense(1, sigmoid), reviews padded after to 500 steps, 30
# epochs of Adam (1e-3) in batches of 128 with a fifth held out. Its forward RNN reads up to
# hundreds of padding steps after each review's words: every step must be computed.
# "seed" is the same model and training with the padding masked, so each direction reads only
# a review's words: what the notebook meant, and what rnnkit trains fast (length-grouped
# batches are exact under a mask).
PRESETS: dict[str, TrainConfig] = {
    "seed": TrainConfig(model=ModelConfig(mask_padding=True)),
    "notebook": TrainConfig(),
    # No RNN at all: the mean of each review's word vectors, within a hosted server's limits.
    # It generalizes to the test reviews (other films) better than the RNNs, which fit the
    # training films' words within 2-3 epochs, and trains in seconds (docs/performance.md).
    "recommended": TrainConfig(
        data=DataConfig(num_words=20000),
        model=ModelConfig(rnn_units=(), embedding_dim=50, dense_units=(), mask_padding=True),
        training=TrainingConfig(epochs=10, learning_rate=0.002, early_stopping_patience=2),
    ),
    # The best RNN found: a small bidirectional LSTM that skips the padding, strong dropout
    # against its fast overfitting, stopped early on the validation loss.
    "best_rnn": TrainConfig(
        data=DataConfig(num_words=20000, max_length=400, padding="pre"),
        model=ModelConfig(
            cell="lstm",
            rnn_units=(32,),
            embedding_dim=32,
            dense_units=(),
            dropout_rate=0.5,
            mask_padding=True,
        ),
        training=TrainingConfig(epochs=6, early_stopping_patience=2),
    ),
}


def preset(name: str) -> TrainConfig:
    """A named config from `PRESETS`.

    Args:
        name: "seed" (the course notebook's model, padding masked), "notebook" (the notebook
            exactly), "recommended" (the best test accuracy found: no RNN) or "best_rnn".

    Returns:
        The config (frozen, so sharing it is safe).

    Raises:
        ValueError: no preset has that name; the message lists the names.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; the presets are {', '.join(PRESETS)}")
    return PRESETS[name]
