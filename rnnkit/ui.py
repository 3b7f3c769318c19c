"""Streamlit glue shared by the pages: the cached loader, the sidebar, shared widgets and the
token views. The only Streamlit import.

`st.cache_resource` keeps one parsed dataset per (path, file state, num_words) for every
session of the server: the first visitor pays the load, later views are instant. Without
`RNNKIT_DATA`, the archive is downloaded once per server in a thread every session watches
under a progress bar.

Widgets that shape a page's view are bound to the URL (`bind="query-params"`, the widget's key
naming the parameter): a copied URL reopens the same view, and a parameter with a bad value is
ignored, so the widget keeps its default.
"""

from __future__ import annotations

import gc
import html
import json
import os
import re
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import streamlit as st
from filelock import Timeout

from rnnkit import charts, evaluation
from rnnkit.config import LIMITS, PRESETS, SECTIONS, DataConfig, TrainConfig, preset
from rnnkit.data import (
    LABEL_NAMES,
    OFFICIAL_URL,
    OOV_ID,
    PAD_ID,
    DataError,
    DataWarning,
    ImdbData,
    Vocabulary,
    download_imdb,
    download_path,
    load_imdb,
)
from rnnkit.evaluation import EncodedText
from rnnkit.explore import PaddedReview
from rnnkit.jobs import ACTIVE_STATES, JobBoard, LimitError, limit_problems
from rnnkit.runs import MODEL_FILE, Run, RunError, RunStore, RunSummary, is_run_id
from rnnkit.sequences import SIDES
from rnnkit.settings import DATA_VARIABLE, TrainingLimits, get_limits, get_settings
from rnnkit.training import COMPUTATIONS, computation, estimate_epoch_seconds

if TYPE_CHECKING:
    import keras

NOTEBOOK = DataConfig()  # the notebook's num_words, max_length, padding and truncating


@st.cache_resource(
    show_spinner="Reading, tokenizing and counting the reviews (the first visit only)…",
    show_time=True,
    max_entries=2,
)
def _cached_imdb(path: str, file_state: tuple[int, int], num_words: int) -> ImdbData:
    # file_state is only part of the key: a replaced archive or folder loads afresh.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        data = load_imdb(num_words=num_words, path=path)
    # What the loader warned of (a damaged cache read again, say), for the sidebar to say.
    _LOAD_WARNINGS[id(data)] = [
        str(item.message) for item in caught if item.category is DataWarning
    ]
    return data


_LOAD_WARNINGS: dict[int, list[str]] = {}  # id of a cached ImdbData -> its load's DataWarnings


def _file_state(path: str | None) -> tuple[int, int]:
    try:
        stat = os.stat(path) if path else None
    except OSError:
        return (0, 0)
    return (stat.st_size, stat.st_mtime_ns) if stat else (0, 0)


class _Download:
    """The archive's download in a thread of its own, shared by every session: a rerun or a
    closed tab does not stop it, and every visitor meanwhile watches the same progress."""

    def __init__(self, url: str) -> None:
        self.received, self.total = 0, None  # bytes; total is None where the server won't say
        self.path: Path | None = None
        self.error: Exception | None = None  # raised again in each script that watches
        self.thread = threading.Thread(
            target=self._run, args=(url,), name="rnnkit-download", daemon=True
        )
        self.thread.start()

    def _run(self, url: str) -> None:
        try:
            self.path = download_imdb(url, on_progress=self._progress)
        except Exception as error:
            self.error = error

    def _progress(self, received: int, total: int | None) -> None:
        self.received, self.total = received, total


@st.cache_resource(show_spinner=False)
def _download(url: str) -> _Download:
    return _Download(url)


def _downloaded_archive() -> Path:
    """The downloaded archive; until it is there, the download's progress bar."""
    url = get_settings().data_url or OFFICIAL_URL
    target = download_path(url)
    if target.is_file():
        return target
    download = _download(url)
    bar = st.progress(0.0, text="Downloading the IMDB reviews (once per server)…")
    while download.thread.is_alive():
        received = f"{download.received / 1e6:.1f}"
        fraction = download.received / download.total if download.total else 0.0
        bar.progress(
            min(fraction, 1.0),
            text=f"Downloading the IMDB reviews (once per server): {received}"
            + (f" of {download.total / 1e6:.1f} MB" if download.total else " MB"),
        )
        time.sleep(0.25)
    bar.empty()
    _download.clear()  # finished: a later visit finds the file, or tries again after a failure
    if download.error is not None:
        raise download.error
    return download.path


def _source_key() -> tuple[str, tuple[int, int]]:
    data_path = get_settings().data_path
    path = str(data_path or _downloaded_archive())
    return path, _file_state(path)


def _stop_with(error: DataError) -> None:
    st.error(f"**The IMDB reviews could not be loaded.** {error}")
    st.stop()


def load_data(num_words: int = NOTEBOOK.num_words) -> ImdbData:
    """The IMDB reviews for every page; on failure show the error with its fix and stop.

    Args:
        num_words: the vocabulary size of the encoding.

    Returns:
        The loaded `ImdbData` (shared by all sessions).
    """
    try:
        return _cached_imdb(*_source_key(), num_words)
    except DataError as error:
        _stop_with(error)


def data_sidebar(num_words: int = NOTEBOOK.num_words) -> ImdbData:
    """Load the reviews under a status in the sidebar, then show where they came from.

    Args:
        num_words: the vocabulary size of the encoding.

    Returns:
        The loaded `ImdbData`; on failure the error is shown in the page and the script stops.
    """
    sidebar = st.sidebar
    sidebar.subheader("Data")
    status = sidebar.status("Loading the IMDB reviews…")
    try:
        # On a cache miss the loader's spinner, with its timer, shows in the page itself.
        data = _cached_imdb(*_source_key(), num_words)
    except DataError as error:
        status.update(label="The IMDB reviews could not be loaded", state="error")
        _stop_with(error)
    source = data.source
    how = "from the cache" if source.from_cache else "parsed"
    status.update(
        label=f"IMDB reviews ready ({how} in {source.load_seconds:.1f} s)",
        state="complete",
    )
    sidebar.caption(
        f"{source.kind}: `{source.path or 'keras.datasets.imdb'}`  \n"
        f"{len(data.train):,} train / {len(data.test):,} test reviews, "
        f"num_words {data.num_words:,}  \n"
        f"Set `{DATA_VARIABLE}` to change the source."
    )
    if source.replaced_reviews:
        sidebar.warning(f"{source.replaced_reviews} review(s) held bytes that are not UTF-8.")
    for message in _LOAD_WARNINGS.get(id(data), []):
        sidebar.warning(message)
    return data


def padding_controls(max_length_limit: int) -> tuple[int, str, str]:
    """max_length, padding and truncating, as the notebook's `pad_sequences` takes them.

    The same keys on every page, so the URL carries one choice from page to page.

    Args:
        max_length_limit: the slider's top (the longest review, at least the notebook's 500).

    Returns:
        (max_length, padding, truncating).
    """
    columns = st.columns([3, 1, 1])
    max_length = columns[0].slider(
        "max_length",
        1,
        max(max_length_limit, NOTEBOOK.max_length),
        NOTEBOOK.max_length,
        key="max_length",
        bind="query-params",
        help="Every review is padded or cut to this many steps (the notebook: 500).",
    )
    padding = columns[1].segmented_control(
        "padding",
        SIDES,
        default=NOTEBOOK.padding,
        required=True,
        key="padding",
        bind="query-params",
        help="Where the zeros go: before the words ('pre') or after them ('post', the notebook).",
    )
    truncating = columns[2].segmented_control(
        "truncating",
        SIDES,
        default=NOTEBOOK.truncating,
        required=True,
        key="truncating",
        bind="query-params",
        help="Which end of a longer review is dropped: its start ('pre', Keras' default) or end.",
    )
    return max_length, padding, truncating


# --- token views ------------------------------------------------------------------------------

_STYLE = """<style>
.rk-tokens { line-height: 1.9; font-size: 0.9rem; }
.rk-tokens span { display: inline-block; padding: 0 0.3em; margin: 1px; border-radius: 3px;
  background: #f5f5f4; line-height: 1.4; }
.rk-tokens .rk-special { background: #e0e7ff; color: #3730a3; }
.rk-tokens .rk-unk { background: #fde68a; color: #92400e; font-weight: 600; }
.rk-tokens .rk-unk small { font-weight: 400; color: #a16207; margin-left: 0.25em; }
.rk-tokens .rk-match { background: #bbf7d0; font-weight: 600; }
.rk-tokens .rk-pad { background: #d6d3d1; color: #78716c; min-width: 0.6em; padding: 0 0.1em; }
.rk-tokens .rk-cut { background: #fee2e2; color: #991b1b; text-decoration: line-through; }
.rk-box { border: 1px solid #d6d3d1; border-radius: 6px; padding: 0.3rem 0.5rem;
  margin: 0.2rem 0 0.6rem 0; }
.rk-box-cut { border-style: dashed; border-color: #fca5a5; }
.rk-caption { color: #78716c; font-size: 0.8rem; }
.rk-text { max-height: 16rem; overflow-y: auto; }
</style>"""

_LINE_BREAK = re.compile(r"&lt;br\s*/?&gt;")


def review_text(text: str) -> None:
    """Show a review's original text, escaped, its `<br />` tags as line breaks."""
    body = _LINE_BREAK.sub("<br>", html.escape(text))
    st.html(f'{_STYLE}<div class="rk-box rk-text">{body}</div>')


def _chip(text: str, title: str, css_class: str = "", extra: str = "") -> str:
    class_attribute = f' class="{css_class}"' if css_class else ""
    return f'<span{class_attribute} title="{html.escape(title)}">{html.escape(text)}{extra}</span>'


def _token_chip(vocab: Vocabulary, word_id: int, show_ids: bool, css_class: str = "") -> str:
    word = vocab.id_to_word(word_id)
    if not css_class:
        special = "rk-special" if word_id <= vocab.index_from else ""
        css_class = {PAD_ID: "rk-pad", OOV_ID: "rk-unk"}.get(word_id, special)
    text = str(word_id) if show_ids else "·" if word_id == PAD_ID else word
    return _chip(text, f"{word} (id {word_id})", css_class)


def decoded_review(
    vocab: Vocabulary,
    ids: np.ndarray,
    originals: Sequence[str] | None,
    match_id: int | None = None,
) -> None:
    """Show a review decoded from its ids, `<UNK>` marked with the word it replaced.

    Args:
        vocab: the vocabulary the ids were encoded with.
        ids: the review's ids, `<START>` first.
        originals: the original word behind each id after `<START>` (`explore.original_words`),
            or None where the source has no text.
        match_id: an id to highlight (the word searched for).
    """
    chips = []
    for position, word_id in enumerate(ids.tolist()):
        if word_id == OOV_ID and originals is not None and position > 0:
            original = originals[position - 1]
            chips.append(
                _chip(
                    "<UNK>",
                    f"'{original}' is out of the vocabulary (id 2)",
                    "rk-unk",
                    f"<small>{html.escape(original)}</small>",
                )
            )
        else:
            css_class = "rk-match" if word_id == match_id and word_id != OOV_ID else ""
            chips.append(_token_chip(vocab, word_id, show_ids=False, css_class=css_class))
    st.html(f'{_STYLE}<div class="rk-box rk-tokens rk-text">{"".join(chips)}</div>')


def padded_view(vocab: Vocabulary, review: PaddedReview, show_ids: bool) -> None:
    """Show a padded row (padding as grey cells) and, apart, the ids truncating cut off.

    Args:
        vocab: the vocabulary the ids were encoded with.
        review: `explore.padded_review`'s result.
        show_ids: show ids instead of words.
    """
    row = "".join(_token_chip(vocab, word_id, show_ids) for word_id in review.row.tolist())
    parts = [
        f'<div class="rk-caption">the row the model reads: {len(review.row):,} steps, '
        f"{review.tokens:,} tokens and {review.pad_steps:,} &lt;PAD&gt; "
        f"(padding='{review.padding}')</div>"
        f'<div class="rk-box rk-tokens">{row}</div>'
    ]
    if len(review.cut):
        cut = "".join(
            _token_chip(vocab, word_id, show_ids, "rk-cut") for word_id in review.cut.tolist()
        )
        where = "its first" if review.truncating == "pre" else "its last"
        cut_part = (
            f"<div class=\"rk-caption\">cut off (truncating='{review.truncating}'): {where} "
            f"{len(review.cut):,} tokens</div>"
            f'<div class="rk-box rk-box-cut rk-tokens">{cut}</div>'
        )
        parts.insert(0 if review.truncating == "pre" else 1, cut_part)
    st.html(_STYLE + "".join(parts))


# --- training ---------------------------------------------------------------------------------

# The server limit that caps each setting, for the form's help texts.
_SERVER_LIMITS = {
    "training.epochs": "max_epochs",
    "data.max_length": "max_length",
    "data.num_words": "max_num_words",
    "model.embedding_dim": "max_embedding_dim",
    "model.rnn_units": "max_units",
    "model.dense_units": "max_units",
}


@st.cache_resource(show_spinner=False)
def job_board() -> JobBoard:
    """The server's one job board: every session sees, and attaches to, the same jobs."""
    return JobBoard(RunStore(), get_limits())


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"


def _settings_of(config: TrainConfig) -> dict[str, Any]:
    return {
        f"{section}.{name}": value
        for section, values in config.to_dict().items()
        for name, value in values.items()
    }


def _field_value(name: str, value: Any) -> Any:
    """A setting as its form field holds it: text for layer lists and optional numbers."""
    limit = LIMITS[name]
    if limit.kind in ("bool", "choice"):
        return value
    if limit.kind == "int_tuple":
        return ", ".join(map(str, value))
    if limit.optional:
        return "none" if value is None else str(value)
    return int(value) if limit.kind == "int" else float(value)


def _fill_fields(config: TrainConfig) -> None:
    # Each field's state is written, not deleted: a widget with a key keeps its identity, so
    # the browser shows a new state but would send back what it showed for a deleted one.
    for name, value in _settings_of(config).items():
        st.session_state[f"cfg_field_{name}"] = _field_value(name, value)
    st.session_state["cfg_saved"] = config.to_dict()


def _reset_fields() -> None:
    # A new preset: every field starts again from the preset's value.
    _fill_fields(_within_limits(preset(st.session_state["cfg_preset"]), get_limits()))


def open_config(config: TrainConfig) -> None:
    """Fill the Train form with `config` (e.g. a running job's); call it in a widget's
    callback, or before the form is drawn, then rerun."""
    _fill_fields(config)


def _field_widget(name: str, value: Any, server_limit: int | None) -> Any:
    limit = LIMITS[name]
    key = f"cfg_field_{name}"
    help_text = f"Allowed: {limit.allowed}."
    if server_limit is not None:
        help_text += f" This server trains up to {server_limit}."
    label = name.split(".")[1].replace("_", " ")
    shown = _field_value(name, value)
    if limit.kind == "bool":
        return st.toggle(label, value=shown, key=key, help=help_text)
    if limit.kind == "choice":
        return st.selectbox(
            label, limit.choices, index=limit.choices.index(shown), key=key, help=help_text
        )
    if limit.kind == "int_tuple":
        help_text += " Comma-separated, one number per layer; empty: no such layer."
        if name == "model.rnn_units":
            help_text += (
                " With no RNN layer the model averages each review's word vectors (the "
                "bag-of-words baseline), and cell, bidirectional and recurrent dropout rate "
                "change nothing."
            )
        return st.text_input(label, shown, key=key, help=help_text)
    if limit.optional:
        help_text += " 'none' turns it off."
        return st.text_input(label, shown, key=key, help=help_text)
    if limit.kind == "int":
        return st.number_input(label, value=shown, step=1, key=key, help=help_text)
    return st.number_input(label, value=shown, format="%g", key=key, help=help_text)


def _within_limits(config: TrainConfig, limits: TrainingLimits) -> TrainConfig:
    """`config` with every setting over this server's limits lowered to the limit, said in a
    note (a hosted server trains fewer epochs than the notebook's 30, say)."""
    lowered = {}
    for name, limit_name in _SERVER_LIMITS.items():
        highest = getattr(limits, limit_name)
        value = _settings_of(config)[name]
        if isinstance(value, list) and any(item > highest for item in value):
            lowered[name] = [min(item, highest) for item in value]
        elif isinstance(value, int) and value > highest:
            lowered[name] = highest
    if lowered:
        changes = ", ".join(f"{name} to {value}" for name, value in lowered.items())
        st.info(f"This server's limits lower the preset's {changes}.")
    return config.with_overrides(lowered)


def config_form() -> TrainConfig | None:
    """A preset and every setting with its limits; the config, or None with the errors shown."""
    limits = get_limits()
    preset_name = st.selectbox(
        "Preset",
        list(PRESETS),
        key="cfg_preset",
        on_change=_reset_fields,
        help="seed: the course notebook's model and training, each direction reading only the "
        "review's words (padding masked). notebook: the notebook exactly, padding read like "
        "words. recommended: the best test accuracy found within 5 minutes of CPU training, by a "
        "model without an RNN (the mean of each review's word vectors). best_rnn: the best RNN "
        "found in the same search, a small bidirectional LSTM. "
        "Every setting below can be changed.",
    )
    # The form comes back as it was left: page switches drop widget state, not this.
    saved = st.session_state.get("cfg_saved")
    start = TrainConfig.from_dict(saved) if saved else _within_limits(preset(preset_name), limits)
    defaults = _settings_of(start)
    values: dict[str, Any] = {}
    for column, section in zip(st.columns(3), SECTIONS, strict=True):
        with column:
            st.markdown(f"**{section}**")
            for name, value in defaults.items():
                if name.startswith(f"{section}."):
                    limit_name = _SERVER_LIMITS.get(name)
                    server_limit = getattr(limits, limit_name) if limit_name else None
                    values[name] = _field_widget(name, value, server_limit)
    try:
        config = start.with_overrides(values)
    except ValueError as error:
        st.error(f"**This configuration is not valid.** {error}")
        return None
    st.session_state["cfg_saved"] = config.to_dict()
    return config


def active_jobs_panel() -> None:
    """The jobs this server is training or has queued, from any session, to open in the form."""
    views = job_board().active()
    if not views:
        return
    with st.container(border=True):
        st.markdown(f"**Training on this server now** ({len(views)})")
        for view in views:
            event = view.progress
            if view.state == "queued":
                state = f"queued, place {view.queue_position}"
            elif event is None:
                state = "starting"
            else:
                state = f"epoch {event.epoch}/{event.epochs}, {event.fraction:.0%}"
            text, button = st.columns([5, 1])
            text.markdown(f"`{view.run_id}` {view.config.summary()} — {state}")
            if button.button("Open", key=f"open_job_{view.run_id}"):
                open_config(view.config)
                st.rerun()


def stopped_runs_panel(summaries: Sequence[RunSummary], data: ImdbData) -> None:
    """The stored runs of these reviews that stopped part way (the server restarted, a cancel,
    the time limit, an error) and no job trains now, each with a button that opens it in the
    form to resume it from its last finished epoch.

    Args:
        summaries: `RunStore.list_runs()`.
        data: the reviews (runs of other data cannot resume on them).
    """
    stopped = []
    for summary in summaries:
        config = _config_or_none(summary.config)
        if (
            summary.status in ("incomplete", "failed")
            and config is not None
            and config.run_id(data.fingerprint) == summary.run_id
            and _active_view(summary.run_id) is None
        ):
            stopped.append((summary, config))
    if not stopped:
        return
    with st.container(border=True):
        st.markdown(f"**Stopped part way** ({len(stopped)}): they resume from their last epoch")
        for summary, config in stopped:
            done = f"{summary.epochs_done} of {config.training.epochs} epochs"
            state = (
                f"failed after {done}: {summary.error}"
                if summary.status == "failed"
                else f"incomplete, {done} trained"
            )
            text, button = st.columns([5, 1])
            text.markdown(f"`{summary.run_id}` {config.summary()} — {state}")
            button.button(
                "Continue", key=f"resume_run_{summary.run_id}", on_click=open_config, args=(config,)
            )


def damaged_runs_warning(summaries: Sequence[RunSummary]) -> None:
    """Name each damaged run with what is wrong and the fix (nothing when none is damaged).

    Args:
        summaries: `RunStore.list_runs()`.
    """
    damaged = [summary for summary in summaries if summary.status == "damaged"]
    if not damaged:
        return
    lines = "\n".join(f"- `{summary.run_id}`: {summary.error}" for summary in damaged)
    st.warning(
        f"**{len(damaged)} stored run(s) are damaged**; the other runs work as usual.\n"
        f"{lines}\n\nTraining a damaged run's configuration again starts it over; "
        f"`python -m rnnkit delete <run id>` (or Delete on the Learning curves page) removes it."
    )


@st.cache_data(show_spinner="Building the model to count its parameters…", max_entries=64)
def _model_facts(config_json: str) -> tuple[int, str]:
    # Imported here: Keras loads TensorFlow (seconds), which the explorer pages never need.
    from rnnkit.model import model_summary, parameter_count

    config = TrainConfig.from_dict(json.loads(config_json))
    facts = parameter_count(config), model_summary(config)
    _freeze_heap()
    return facts


def _freeze_heap() -> None:
    """Take every object alive now out of the garbage collector's rounds (`gc.freeze`).

    Once Keras is imported, Streamlit calls `keras.backend.clear_session()` after every script
    run, and with it a full collection: over TensorFlow's 400,000 objects that took about 0.2 s
    holding the interpreter lock, for every page view of every session. Frozen, it takes a
    millisecond. Call it after loading Keras or a model.
    """
    gc.freeze()


def model_overview(config: TrainConfig, data: ImdbData) -> None:
    """The model's size and the time an epoch should take, before any training."""
    parameters, summary = _model_facts(config.canonical_json())
    seconds = estimate_epoch_seconds(config, data.train.lengths, job_board().store)
    columns = st.columns(3)
    columns[0].metric("Parameters", f"{parameters:,}")
    columns[1].metric("Estimated time per epoch", _duration(seconds))
    columns[2].metric(
        f"Estimated for {config.training.epochs} epochs",
        _duration(seconds * config.training.epochs),
    )
    steps = (
        f"batches of reviews of similar length, each as wide as its longest review (at most "
        f"{config.data.max_length} steps), since the padding is masked"
        if config.model.mask_padding
        else f"reviews padded to {config.data.max_length} steps"
    )
    loop, default = COMPUTATIONS[computation(config)]
    computed = f"{loop} ({default / 1e9:g} GFLOP/s until there is one)"
    st.caption(
        f"{config.summary()}. The estimate counts the operations of an epoch over {steps}, at "
        f"the speed this server showed on its completed runs computed by {computed}."
    )
    with st.expander("Model summary (Keras)"):
        st.code(summary, language=None)


def show_run(run: Run, label: str = "this run") -> None:
    """A completed run's results: the numbers and its learning curves."""
    summary = run.summary
    columns = st.columns(4)
    columns[0].metric("Best validation accuracy", f"{summary.get('best_val_accuracy') or 0:.2%}")
    columns[1].metric("Best epoch", summary.get("best_epoch") or "–")
    columns[2].metric("Test accuracy", f"{run.metrics['test_accuracy']:.2%}")
    columns[3].metric("Training time", _duration(summary.get("seconds")))
    references = {"test accuracy": run.metrics["test_accuracy"]}
    st.altair_chart(
        charts.learning_curves(
            {label: run.history}, {label: summary.get("best_epoch")}, references
        ),
        key=f"curves_{run.run_id}",
    )


@st.fragment(run_every=1.0)
def _live_job(run_id: str) -> None:
    board = job_board()
    view = board.view(run_id)
    if view is None or view.state not in ACTIVE_STATES:
        st.rerun()  # finished: the whole page shows the result
    if view.state == "queued":
        st.info(
            f"Waiting for the trainer: place {view.queue_position} in the queue (this server "
            f"trains {board.limits.max_jobs} at a time). You can leave this page; the job stays."
        )
    elif view.progress is None:
        st.info("Starting the training process: loading the reviews and TensorFlow…")
    else:
        event = view.progress
        st.progress(
            min(1.0, event.batch / max(1, event.batches)),
            text=f"Epoch {event.epoch} of {event.epochs}: batch {event.batch} of {event.batches}",
        )
        st.progress(
            event.fraction,
            text=f"All epochs: {event.fraction:.0%} · elapsed {_duration(event.elapsed)} · "
            f"about {_duration(event.eta)} left",
        )
        history = board.store.history_epochs(run_id)
        if history:
            st.dataframe(history, hide_index=True, key=f"live_table_{run_id}")
            st.altair_chart(
                charts.learning_curves({"training now": history}),
                key=f"live_curves_{run_id}",
            )
    st.caption("Training runs on the server: switching pages or closing the tab does not stop it.")
    if st.button("Cancel training", key="train_cancel"):
        board.cancel(run_id)
        st.rerun()


def training_panel(config: TrainConfig, data: ImdbData) -> None:
    """The run of `config`: its results, its live job, or a button to train (or resume) it."""
    board = job_board()
    store = board.store
    run_id = config.run_id(data.fingerprint)
    st.caption(f"Run id `{run_id}`")
    view = board.view(run_id)
    if view is not None and view.state in ACTIVE_STATES:
        _live_job(run_id)
        return
    status = store.status(run_id)
    if status == "complete":
        st.success("This configuration is trained already: its results, with no training.")
        show_run(store.load(run_id))
        return
    if view is not None and view.state == "failed":
        st.error(f"Training failed: {view.error}")
    elif view is not None and view.state == "cancelled":
        st.warning(f"Training stopped{': ' + view.error if view.error else ''}.")
    epochs_done = len(store.history_epochs(run_id)) if status in ("incomplete", "failed") else 0
    if epochs_done:
        st.info(
            f"{epochs_done} of {config.training.epochs} epochs are trained; training resumes "
            f"from epoch {epochs_done + 1}."
        )
    if status == "damaged":
        st.warning(
            f"This run is damaged ({store.summary(run_id).error}): training starts it again "
            f"from scratch."
        )
    allowed = board.limits.allow_training
    problems = limit_problems(config, board.limits)
    if not allowed:
        st.info("Training is switched off on this server: it shows runs trained elsewhere.")
    for problem in problems:
        st.error(f"Refused: {problem}.")
    label = "Resume training" if epochs_done else "Train"
    if st.button(label, key="train_start", type="primary", disabled=bool(problems) or not allowed):
        try:
            board.submit(config, data)
        except LimitError as error:
            st.error(str(error))
            return
        st.rerun()


# --- predictions ------------------------------------------------------------------------------

RUN_KEY = "predict_run"
POSITIVE_RGB, NEGATIVE_RGB = (21, 128, 61), (185, 28, 28)  # charts.LABEL_COLORS' pos and neg


def complete_runs(
    data: ImdbData, summaries: Sequence[RunSummary] | None = None
) -> list[RunSummary]:
    """The complete runs trained on these reviews (with any num_words), newest first.

    A run trained on other data (another archive, another shuffle) is left out: its vocabulary
    and test set are not these.

    Args:
        data: the reviews.
        summaries: `RunStore().list_runs()`, when the caller has it already.
    """
    runs = []
    for summary in RunStore().list_runs() if summaries is None else summaries:
        if summary.status != "complete" or summary.config is None:
            continue
        try:
            config = TrainConfig.from_dict(summary.config)
        except ValueError:  # a config of another rnnkit version
            continue
        if config.run_id(data.fingerprint) == summary.run_id:
            runs.append(summary)
    return runs


def _run_label(summary: RunSummary) -> str:
    accuracy = "–" if summary.test_accuracy is None else f"{summary.test_accuracy:.1%}"
    config = TrainConfig.from_dict(summary.config)
    return f"{config.summary()} · test {accuracy} · {summary.run_id}"


def run_picker(data: ImdbData) -> Run:
    """A select box of the complete runs of these reviews, bound to the URL; the chosen run.

    The URL may also name a run by its bare id (`?predict_run=<run id>`, as the Train page
    shows it); an id that is not a complete run here is ignored, with a note. Damaged runs are
    named above it. With no complete run, says how to train one and stops the script.

    Args:
        data: the reviews the page shows (their fingerprint picks the runs).

    Returns:
        The chosen run, loaded.
    """
    summaries = RunStore().list_runs()
    damaged_runs_warning(summaries)  # left out of the choice: say which, and the fix
    runs = {summary.run_id: summary for summary in complete_runs(data, summaries)}
    if not runs:
        st.info(
            "No model is trained on these reviews yet. Train one on the Train page (a small "
            "configuration takes a minute or two), then come back."
        )
        st.page_link("views/train.py", label="Train a model", icon="🏋️")
        st.stop()
    wanted = st.query_params.get(RUN_KEY)
    if is_run_id(wanted) and wanted in runs and RUN_KEY not in st.session_state:
        st.session_state[RUN_KEY] = wanted
    elif wanted and wanted not in runs and wanted not in map(_run_label, runs.values()):
        # The value is not shown: a crafted link could put any text on the page.
        st.info("The link names a run that is not a complete run of these reviews here.")
    run_id = st.selectbox(
        "Run",
        list(runs),
        format_func=lambda run_id: _run_label(runs[run_id]),
        key=RUN_KEY,
        bind="query-params",
        help="The complete runs trained on these reviews, newest first.",
    )
    try:
        return RunStore().load(run_id)
    except RunError as error:  # deleted or damaged since it was listed
        st.error(str(error))
        st.stop()


@st.cache_resource(show_spinner="Loading the trained model…", max_entries=2)
def _cached_model(folder: str, model_state: tuple[int, int], _run: Run) -> keras.Model:
    # Two models at most: a server's memory is small. model_state: a retrained run loads afresh.
    model = _run.model()
    _freeze_heap()
    return model


def _run_key(run: Run) -> tuple[str, tuple[int, int]]:
    # The folder and its model file's state: a run deleted and trained again is a new key.
    return str(run.folder), _file_state(str(run.folder / MODEL_FILE))


def run_model(run: Run) -> keras.Model:
    """The run's Keras model, shared by all sessions; on failure show the error and stop."""
    try:
        return _cached_model(*_run_key(run), run)
    except RunError as error:
        st.error(str(error))
        st.stop()


@dataclass(frozen=True)
class TextReading:
    """What a model makes of one text: `read_text`'s result."""

    encoded: EncodedText  # the text as the model reads it (its note says what was cut)
    probability: float  # of "pos"
    contributions: pd.DataFrame  # evaluation.token_contributions
    prefixes: pd.DataFrame  # evaluation.prefix_predictions


@st.cache_data(show_spinner="Reading the text with the model…", max_entries=16)
def _read_text(
    run_key: tuple[str, tuple[int, int]],
    text: str,
    method: str,
    _model: keras.Model,
    _vocab: Vocabulary,
    _config: TrainConfig,
) -> TextReading:
    return TextReading(
        encoded=evaluation.encode_for_model(text, _vocab, _config),
        probability=float(evaluation.predict_texts(_model, _vocab, _config, [text])[0]),
        contributions=evaluation.token_contributions(_model, _vocab, _config, text, method),
        prefixes=evaluation.prefix_predictions(_model, _vocab, _config, text),
    )


def read_text(
    run: Run, model: keras.Model, vocab: Vocabulary, text: str, method: str
) -> TextReading:
    """The run's prediction on `text`, each word's contribution and the prediction word by word.

    Cached per run, text and method.

    Args:
        run: the run (its config says how the text is padded and cut).
        model: its model (`run_model`).
        vocab: the vocabulary of its data.
        text: any text; a very long one is cut as `evaluation.encode_for_model` says.
        method: "occlusion" or "gradient" (see `evaluation.token_contributions`).

    Returns:
        The `TextReading`.

    Raises:
        ValueError: the text has no words, or the method does not suit the model.
    """
    config = TrainConfig.from_dict(run.config)
    return _read_text(_run_key(run), text, method, model, vocab, config)


def _contribution_chip(word: str, word_id: int, contribution: float, scale: float) -> str:
    red, green, blue = POSITIVE_RGB if contribution > 0 else NEGATIVE_RGB
    strength = min(1.0, abs(contribution) / scale)
    style = f"background: rgba({red}, {green}, {blue}, {0.05 + 0.7 * strength:.2f})"
    if strength > 0.6:
        style += "; color: white"
    title = f"{word}: {contribution:+.4f}"
    if word_id == OOV_ID:
        style += "; border: 1px dashed #a16207"
        title += " (unknown to the model: read as <UNK>)"
    return f'<span style="{style}" title="{html.escape(title)}">{html.escape(word)}</span>'


def highlighted_contributions(contributions: pd.DataFrame) -> None:
    """Show the words the model read, each shaded by how far it pushed the prediction.

    Green pushes toward "pos", red toward "neg"; the stronger the push, the stronger the
    colour, on a scale set by the strongest word. Hovering a word shows its contribution.

    Args:
        contributions: `evaluation.token_contributions` (word, id, contribution).
    """
    values = contributions["contribution"].to_numpy(dtype=np.float64)
    scale = max(float(np.abs(values).max(initial=0.0)), 1e-9)
    chips = "".join(
        _contribution_chip(word, int(word_id), float(value), scale)
        for word, word_id, value in zip(
            contributions["word"], contributions["id"], values, strict=True
        )
    )
    negative, positive = (f"rgba({r}, {g}, {b}, 0.6)" for r, g, b in (NEGATIVE_RGB, POSITIVE_RGB))
    legend = (
        f'<div class="rk-caption"><span style="background: {negative}; color: white">'
        f'toward neg</span> <span style="background: {positive}; color: white">toward pos'
        f"</span> the strongest word: ±{scale:.4f}; dashed: unknown to the model (&lt;UNK&gt;)"
        "</div>"
    )
    st.html(f'{_STYLE}<div class="rk-box rk-tokens rk-text">{chips}</div>{legend}')


@dataclass(frozen=True)
class RunReport:
    """A run's test-set results that do not depend on the threshold: `run_report`'s."""

    histogram: pd.DataFrame  # evaluation.probability_histogram
    roc: pd.DataFrame | None  # the ROC curve; None when the test set has one label only
    roc_auc: float
    precision_recall: pd.DataFrame | None
    average_precision: float
    by_length: pd.DataFrame  # evaluation.accuracy_by_length
    mistakes: pd.DataFrame  # the most confident mistakes, with their text


@st.cache_data(show_spinner="Scoring the test set…", max_entries=4)
def _run_report(run_key: tuple[str, tuple[int, int]], _run: Run, _data: ImdbData) -> RunReport:
    probabilities, labels, test = _run.predictions, _data.test.labels, _data.test
    max_length = TrainConfig.from_dict(_run.config).data.max_length
    both_labels = 0 < int(labels.sum()) < len(labels)
    roc, roc_auc = evaluation.roc_curve(probabilities, labels) if both_labels else (None, 0.0)
    precision_recall, average_precision = (
        evaluation.precision_recall_curve(probabilities, labels) if both_labels else (None, 0.0)
    )
    mistakes = evaluation.confident_mistakes(probabilities, labels)
    indices = mistakes["index"].tolist()
    mistakes["label"] = [LABEL_NAMES[label] for label in mistakes["label"]]
    mistakes["length"] = test.lengths[indices]  # tokens, <START> included
    mistakes["text"] = [
        test.texts[index]
        if test.texts is not None
        else _data.vocab.decode(test.sequences[index], skip_padding=True)
        for index in indices
    ]
    mistakes = mistakes.rename(columns={"index": "test review", "label": "true label"})
    return RunReport(
        histogram=evaluation.probability_histogram(probabilities, labels),
        roc=roc,
        roc_auc=roc_auc,
        precision_recall=precision_recall,
        average_precision=average_precision,
        by_length=evaluation.accuracy_by_length(probabilities, labels, test.lengths, max_length),
        mistakes=mistakes,
    )


def run_report(run: Run, data: ImdbData) -> RunReport:
    """The run's test-set histogram, curves, accuracy by length and confident mistakes.

    Cached per run.

    Args:
        run: a complete run of `data` (its predictions are in `data.test`'s order).
        data: its reviews, loaded with the run's num_words.

    Returns:
        The `RunReport`.
    """
    return _run_report(_run_key(run), run, data)


def nearest_words_table(model: keras.Model | np.ndarray, vocab: Vocabulary, word: str) -> None:
    """Show the 10 words nearest to `word` in a model's embedding (the model or its matrix),
    or why there are none."""
    try:
        neighbours = evaluation.nearest_words(model, vocab, word)
    except ValueError as error:
        st.info(f"No neighbours: {error}.")
        return
    st.dataframe(
        neighbours,
        hide_index=True,
        column_config={
            "cosine": st.column_config.ProgressColumn(min_value=-1, max_value=1, format="%.3f")
        },
    )


def embedding_neighbours(data: ImdbData, word: str) -> None:
    """The nearest words of `word` in the newest complete run's embedding (nothing if none)."""
    runs = complete_runs(data)
    if not runs:
        st.caption("Once a model is trained, its embedding's nearest words of this word show here.")
        return
    try:
        run = RunStore().load(runs[0].run_id)
    except RunError as error:  # deleted or damaged since it was listed
        st.caption(str(error))
        return
    try:
        # The matrix alone: the Vocabulary page never waits for TensorFlow to load a model.
        matrix = _run_embedding(str(run.folder), run.run_id)
    except RunError as error:
        st.caption(str(error))
        return
    st.markdown(f"**Nearest words** in the embedding of the newest run, `{run.run_id}` (cosine):")
    nearest_words_table(matrix, data.vocab, word)


@st.cache_resource(show_spinner=False, max_entries=2)
def _run_embedding(folder: str, run_id: str) -> np.ndarray:
    # Keyed by the run's folder too: two stores may hold the same run id.
    return RunStore(Path(folder).parent).load(run_id).embedding()


# --- learning curves --------------------------------------------------------------------------

# The course's lesson in three runs: where the zeros go, and whether the RNN may skip them.
PADDING_VARIANTS: dict[str, dict[str, Any]] = {
    "post padding": {"data.padding": "post", "model.mask_padding": False},
    "pre padding": {"data.padding": "pre", "model.mask_padding": False},
    "post padding, masked": {"data.padding": "post", "model.mask_padding": True},
}
BASELINE_NAME = "TF-IDF + logistic regression (test)"
RUN_COLUMNS = {
    "best val accuracy": st.column_config.NumberColumn(format="percent"),
    "test accuracy": st.column_config.NumberColumn(format="percent"),
}


def padding_variants(config: TrainConfig) -> dict[str, TrainConfig]:
    """The padding experiment: `config` with post padding, pre padding, and post padding masked.

    Args:
        config: the configuration to vary (its other settings are kept).

    Returns:
        Label to config, in `PADDING_VARIANTS` order; each config names a run of its own.
    """
    return {label: config.with_overrides(changes) for label, changes in PADDING_VARIANTS.items()}


def _config_or_none(settings: object) -> TrainConfig | None:
    """A run's stored settings as a config; None when missing or no longer valid."""
    try:
        return TrainConfig.from_dict(settings) if settings is not None else None
    except (ValueError, TypeError):
        return None


def _setting_text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def _flat_settings(settings: Mapping[str, Any]) -> dict[str, str]:
    return {
        f"{section}.{name}": _setting_text(value)
        for section, values in settings.items()
        if isinstance(values, Mapping)
        for name, value in values.items()
    }


def config_differences(configs: Mapping[str, Mapping[str, Any] | None]) -> pd.DataFrame:
    """The settings on which runs differ.

    Args:
        configs: run id to its stored config (`RunSummary.config`); runs without one are left
            out.

    Returns:
        A row per differing setting (index "setting", dotted names in config order), a column
        per run id holding the values as text ("–" where a config lacks the setting); no rows
        when the runs agree on every setting.
    """
    flat = {run_id: _flat_settings(settings) for run_id, settings in configs.items() if settings}
    names = dict.fromkeys(name for settings in flat.values() for name in settings)
    rows = {}
    for name in names:
        values = [settings.get(name, "–") for settings in flat.values()]
        if len(set(values)) > 1:
            rows[name] = values
    frame = pd.DataFrame(list(rows.values()), index=list(rows), columns=list(flat), dtype=str)
    return frame.rename_axis("setting")


def run_labels(configs: Mapping[str, Mapping[str, Any] | None]) -> dict[str, str]:
    """Chart labels: a run id's first 8 characters and what sets the run apart.

    Args:
        configs: run id to its stored config.

    Returns:
        Run id to label: "1a2b3c4d · padding pre, mask_padding True" (up to three differing
        settings), or the config's summary when nothing differs or the run is alone.
    """
    differences = config_differences(configs)
    labels = {}
    for run_id, settings in configs.items():
        if len(differences) and run_id in differences.columns:
            shown = [
                f"{name.split('.')[-1]} {differences.at[name, run_id]}"
                for name in differences.index[:3]
            ]
            detail = ", ".join(shown) + (", …" if len(differences) > 3 else "")
        else:
            config = _config_or_none(settings)
            detail = config.summary() if config else "settings unreadable"
        labels[run_id] = f"{run_id[:8]} · {detail}"
    return labels


def _active_view(run_id: str) -> Any:
    view = job_board().view(run_id)
    return view if view is not None and view.state in ACTIVE_STATES else None


def runs_table(summaries: Sequence[RunSummary]) -> pd.DataFrame:
    """Every stored run in a row: status, key settings and results (show with `RUN_COLUMNS`).

    Args:
        summaries: `RunStore.list_runs()`.

    Returns:
        Columns run, status ("training" or "queued" while this server trains it), settings,
        epochs (done / asked), best epoch, best val accuracy, test accuracy, training time,
        created and problem (a failed run's error, or what is damaged).
    """
    rows = []
    for summary in summaries:
        config = _config_or_none(summary.config)
        view = _active_view(summary.run_id)
        status = {"running": "training"}.get(view.state, view.state) if view else summary.status
        rows.append(
            {
                "run": summary.run_id,
                "status": status,
                "settings": config.summary() if config else "–",
                "epochs": f"{summary.epochs_done} / {config.training.epochs if config else '?'}",
                "best epoch": summary.best_epoch,
                "best val accuracy": summary.best_val_accuracy,
                "test accuracy": summary.test_accuracy,
                "training time": _duration(summary.seconds),
                "created": summary.created,
                "problem": summary.error or "",
            }
        )
    table = pd.DataFrame(rows)
    table["best epoch"] = table["best epoch"].astype("Int64")
    return table.astype({"best val accuracy": "Float64", "test accuracy": "Float64"})


def pick_runs(summaries: Sequence[RunSummary]) -> list[str]:
    """The runs to compare (kept in the URL; ids that are not stored runs are left out, with
    a note).

    Args:
        summaries: `RunStore.list_runs()`.

    Returns:
        The picked run ids; at first the newest complete run.
    """
    run_ids = [summary.run_id for summary in summaries]
    newest = [summary.run_id for summary in summaries if summary.status == "complete"][:1]
    unknown = [value for value in st.query_params.get_all("curves_runs") if value not in run_ids]
    if unknown:  # not shown: a crafted link could put any text on the page
        st.info(f"The link names {len(unknown)} run(s) not in this store: they are left out.")
    return st.multiselect(
        "Runs to compare",
        run_ids,
        default=newest,
        key="curves_runs",
        bind="query-params",
        help="Run ids from the table's first column. A link to this page keeps the picked runs.",
    )


def _baseline_on_disk(data: ImdbData, validation_split: float, seed: int) -> bool:
    # Whether tfidf_baseline would read its disk cache rather than fit for ~45 s.
    texts = data.train.texts is not None and data.test.texts is not None
    path = evaluation._baseline_path(data, validation_split, seed, texts)
    return evaluation._read_baseline(path) is not None


@st.cache_data(
    show_spinner="Fitting TF-IDF + logistic regression on the training reviews…",
    show_time=True,
    max_entries=8,
)
def _tfidf_baseline(
    _data: ImdbData, fingerprint: str, num_words: int, validation_split: float, seed: int
) -> dict:
    # Keyed by the data's fingerprint and num_words: the reviews themselves are not hashed.
    return evaluation.tfidf_baseline(_data, validation_split, seed)


def baseline_reference(settings: Mapping[str, Any] | None) -> dict[str, float]:
    """The TF-IDF + logistic regression baseline's test accuracy, as a reference line.

    Fitted on the training rows of `settings` (its validation_split and seed); when it is not
    on disk yet, a button fits it (about 45 s on the real data, once).

    Args:
        settings: a run's stored config; None: the seed preset's.

    Returns:
        {BASELINE_NAME: test accuracy}, or {} until it is computed.
    """
    config = _config_or_none(settings) or preset("seed")
    data = load_data(config.data.num_words)
    split, seed = config.training.validation_split, config.training.seed
    button_slot = st.empty()  # emptied once the baseline is fitted, in the same run
    if not _baseline_on_disk(data, split, seed) and not button_slot.button(
        "Compute the TF-IDF + logistic regression baseline (about 45 s once)",
        key="curves_baseline",
    ):
        return {}
    result = _tfidf_baseline(data, data.fingerprint, data.num_words, split, seed)
    button_slot.empty()
    return {BASELINE_NAME: result["test_accuracy"]}


def run_curves(summaries: Sequence[RunSummary], side_by_side: bool = False) -> None:
    """The runs' loss and accuracy per epoch with their best epochs, test accuracies and the
    TF-IDF baseline; runs without epochs are named, not drawn.

    Args:
        summaries: the picked runs.
        side_by_side: a column of panels per run instead of all runs overlaid.
    """
    store = job_board().store
    labels = run_labels({summary.run_id: summary.config for summary in summaries})
    histories, best_epochs, test_accuracies = {}, {}, {}
    for summary in summaries:
        run_id, label = summary.run_id, labels[summary.run_id]
        if summary.status == "damaged":
            st.warning(f"`{run_id}` is damaged ({summary.error}): it has no curves. Delete it.")
            continue
        try:
            history = store.history_epochs(run_id)
        except RunError as error:
            st.warning(str(error))
            continue
        if not history:
            st.caption(f"`{run_id}` has no finished epoch yet.")
            continue
        if summary.status == "failed":
            st.caption(f"`{run_id}` failed after {len(history)} epoch(s): {summary.error}")
        histories[label] = history
        best_epochs[label] = summary.best_epoch
        if summary.test_accuracy is not None:
            test_accuracies[label] = summary.test_accuracy
    if not histories:
        return
    references = baseline_reference(summaries[0].config)
    draw = charts.curves_side_by_side if side_by_side else charts.compared_curves
    st.altair_chart(draw(histories, best_epochs, test_accuracies, references), key="curves_chart")
    st.caption(
        "Solid: training; dashed: validation; the shaded band between them is the gap that "
        "grows as a model overfits. Vertical dotted line: the best epoch (highest validation "
        "accuracy, the weights a run keeps); horizontal dotted line: the run's test accuracy"
        + (f"; grey dashed: the {BASELINE_NAME} baseline." if references else ".")
    )


def notice() -> None:
    """Show, once, what the last deletion did (callbacks run before the page is drawn)."""
    message = st.session_state.pop("curves_notice", None)
    if message:
        kind, text = message
        (st.success if kind == "success" else st.error)(text)


def _delete_run(run_id: str) -> None:
    # A callback: it runs before the page, so the picked runs can lose the deleted one.
    st.session_state.pop("curves_confirm", None)
    board = job_board()
    refusal = ("error", f"Run `{run_id}` is training: cancel it first, then delete it.")
    if _active_view(run_id) is not None:
        st.session_state["curves_notice"] = refusal
        return
    try:
        with board.store.lock(run_id).acquire(timeout=0):  # held while anyone trains the run
            board.store.delete(run_id)
    except Timeout:
        st.session_state["curves_notice"] = refusal
        return
    picked = st.session_state.get("curves_runs", [])
    st.session_state["curves_runs"] = [picked_id for picked_id in picked if picked_id != run_id]
    st.session_state["curves_notice"] = ("success", f"Run `{run_id}` is deleted.")


def run_files(summary: RunSummary) -> None:
    """A run's downloads, history (CSV) and model (`.keras`), and its delete button, which
    asks for a confirmation and is refused while the run trains."""
    store = job_board().store
    run_id = summary.run_id
    try:
        history = store.history_epochs(run_id)
    except RunError:
        history = []
    training = _active_view(run_id) is not None
    name, csv, model, delete = st.columns([3, 2, 2, 2], vertical_alignment="center")
    name.markdown(f"`{run_id}` {summary.status}")
    csv.download_button(
        "History (CSV)",
        pd.DataFrame(history).to_csv(index=False),
        file_name=f"{run_id}-history.csv",
        mime="text/csv",
        key=f"curves_csv_{run_id}",
        on_click="ignore",
        disabled=not history,
    )
    model.download_button(
        "Model (.keras)",
        store.model_path(run_id).read_bytes,  # read when clicked, not on every run of the page
        file_name=f"{run_id}.keras",
        mime="application/octet-stream",
        key=f"curves_model_{run_id}",
        on_click="ignore",
        disabled=summary.status != "complete",
    )
    delete.button(
        "Delete…",
        key=f"curves_delete_{run_id}",
        disabled=training,
        help="It is training: cancel it first." if training else "Asks before it deletes.",
        on_click=lambda: st.session_state.update(curves_confirm=run_id),
    )
    if st.session_state.get("curves_confirm") == run_id:
        with st.container(border=True):
            st.warning(
                f"Delete run `{run_id}` for good? Its history, model and results go; training "
                f"its configuration again starts from scratch."
            )
            yes, no = st.columns(2)
            yes.button(
                "Yes, delete it",
                key="curves_delete_confirm",
                type="primary",
                on_click=_delete_run,
                args=(run_id,),
            )
            no.button(
                "Keep it",
                key="curves_delete_cancel",
                on_click=lambda: st.session_state.pop("curves_confirm", None),
            )


_NOT_TRAINING = {  # a variant's state when no job trains it, by its run's status
    "missing": "Not trained yet.",
    "incomplete": "Stopped part way: the experiment resumes it.",
    "failed": "Failed: the experiment resumes it from its last epoch.",
    "damaged": "Damaged: the experiment trains it again.",
}


def _variant_state(run_id: str) -> None:
    store = job_board().store
    view = job_board().view(run_id)
    status = store.status(run_id)
    if status == "complete":
        st.success("Done.")
    elif view is not None and view.state == "queued":
        st.info(f"Queued: place {view.queue_position}.")
    elif view is not None and view.state == "running" and view.progress is not None:
        event = view.progress
        st.progress(event.fraction, text=f"Epoch {event.epoch} of {event.epochs}")
    elif view is not None and view.state == "running":
        st.info("Starting…")
    elif view is not None and view.state == "failed":
        st.error(f"Failed: {view.error}")
    elif view is not None and view.state == "cancelled":
        st.warning(f"Stopped{': ' + view.error if view.error else ''}.")
    else:
        st.caption(_NOT_TRAINING[status])


def _variant_states(run_ids: Mapping[str, str]) -> None:
    for column, (label, run_id) in zip(st.columns(len(run_ids)), run_ids.items(), strict=True):
        with column:
            st.markdown(f"**{label}**  \n`{run_id}`")
            _variant_state(run_id)


@st.fragment(run_every=1.0)
def _live_variant_states(run_ids: Mapping[str, str]) -> None:
    if not any(_active_view(run_id) for run_id in run_ids.values()):
        st.rerun()  # all finished: the whole page shows the curves
    _variant_states(run_ids)


def _submit_variants(variants: Mapping[str, TrainConfig], data: ImdbData) -> list[str]:
    """Queue every variant that is not trained; the refusals, one sentence per variant."""
    refusals = []
    for label, variant in variants.items():
        if job_board().store.status(variant.run_id(data.fingerprint)) == "complete":
            continue
        try:
            job_board().submit(variant, data)
        except LimitError as error:
            refusals.append(f"{label}: refused. {error}")
    return refusals


def padding_experiment(summary: RunSummary) -> None:
    """Train a run's config with post padding, pre padding and masking; their states, then
    their curves side by side (a variant already trained is not trained again).

    Args:
        summary: the run whose configuration is varied.
    """
    config = _config_or_none(summary.config)
    if config is None:
        st.error(f"Run `{summary.run_id}` has no readable configuration to vary.")
        return
    board = job_board()
    data = load_data(config.data.num_words)
    variants = padding_variants(config)
    run_ids = {label: variant.run_id(data.fingerprint) for label, variant in variants.items()}
    done = {label for label, run_id in run_ids.items() if board.store.status(run_id) == "complete"}
    active = any(_active_view(run_id) for run_id in run_ids.values())
    problems = limit_problems(config, board.limits)
    if not board.limits.allow_training:
        problems.insert(0, "training is switched off on this server")
    to_train = len(variants) - len(done)
    for problem in problems if to_train else []:
        st.error(f"Refused: {problem}.")
    if to_train and st.button(
        f"Run the padding experiment ({to_train} to train)",
        key="curves_padding_start",
        type="primary",
        disabled=bool(problems) or active,
    ):
        refusals = _submit_variants(variants, data)
        for refusal in refusals:
            st.error(refusal)
        if not refusals:
            st.rerun()
    if active:
        _live_variant_states(run_ids)
    else:
        _variant_states(run_ids)
    try:
        runs = {label: board.store.load(run_ids[label]) for label in variants if label in done}
    except RunError as error:  # deleted or damaged since its status was read
        st.warning(str(error))
        return
    if runs:
        st.altair_chart(
            charts.curves_side_by_side(
                {label: run.history for label, run in runs.items()},
                {label: run.summary.get("best_epoch") for label, run in runs.items()},
                {label: run.metrics["test_accuracy"] for label, run in runs.items()},
            ),
            key="curves_padding_chart",
        )
