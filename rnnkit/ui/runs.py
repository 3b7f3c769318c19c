"""Stored runs on the pages: the damaged-run warning, the run picker, a run's model (loaded
once per server) and the nearest words of its embedding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from rnnkit import compare, evaluation
from rnnkit.data import ImdbData
from rnnkit.runs import MODEL_FILE, Run, RunError, RunStore, RunSummary, is_run_id
from rnnkit.ui.board import freeze_heap
from rnnkit.ui.loading import file_state
from rnnkit.ui.pages import link_to
from rnnkit.ui.untrusted import escape_markdown
from rnnkit.vocabulary import Vocabulary

if TYPE_CHECKING:
    import keras

RUN_KEY = "predict_run"


def damaged_runs_warning(summaries: Sequence[RunSummary]) -> None:
    """Name each damaged run with what is wrong and the fix (nothing when none is damaged).

    Args:
        summaries: `RunStore.list_runs()`.
    """
    damaged = [summary for summary in summaries if summary.status == "damaged"]
    if not damaged:
        return
    lines = "\n".join(
        f"- `{summary.run_id}`: {escape_markdown(summary.error)}" for summary in damaged
    )
    st.warning(
        f"**{len(damaged)} stored run(s) are damaged**; the other runs work as usual.\n"
        f"{lines}\n\nTraining a damaged run's configuration again starts it over; "
        f"`python -m rnnkit delete <run id>` (or Delete on the Learning curves page) removes it."
    )


def run_choice(runs: Sequence[RunSummary], key: str, help_text: str) -> str:
    """A select box of runs, bound to the URL (`?<key>=`); the chosen run's id.

    The URL names a run by its label, as the select box writes it, or by its bare id (as the
    Train page shows it); anything else is ignored with a note that does not repeat it.

    Args:
        runs: the runs to choose from, the default first (`compare.complete_runs`: newest
            first); at least one.
        key: the widget's key and the URL parameter's name.
        help_text: the select box's help.

    Returns:
        The chosen run id.
    """
    by_id = {summary.run_id: summary for summary in runs}
    wanted = st.query_params.get(key)
    labels = {compare.run_label(summary) for summary in runs}
    if is_run_id(wanted) and wanted in by_id and key not in st.session_state:
        st.session_state[key] = wanted
    elif wanted and wanted not in by_id and wanted not in labels:
        # The value is not shown: a crafted link could put any text on the page.
        st.info("The link names a run that is not a complete run of these reviews here.")
    return st.selectbox(
        "Run",
        list(by_id),
        format_func=lambda run_id: compare.run_label(by_id[run_id]),
        key=key,
        bind="query-params",
        help=help_text,
    )


def run_picker(data: ImdbData) -> Run:
    """A choice of the complete runs of these reviews (`run_choice`, `?predict_run=`); the
    chosen run.

    Damaged runs are named above it. With no complete run, says how to train one and stops the
    script.

    Args:
        data: the reviews the page shows (their fingerprint picks the runs).

    Returns:
        The chosen run, loaded.
    """
    summaries = RunStore().list_runs()
    damaged_runs_warning(summaries)  # left out of the choice: say which, and the fix
    runs = compare.complete_runs(summaries, data.fingerprint)
    if not runs:
        st.info(
            "No model is trained on these reviews yet. Train one on the Train page (a small "
            "configuration takes a minute or two), then come back."
        )
        link_to("views/train.py", "Train a model")
        st.stop()
    run_id = run_choice(runs, RUN_KEY, "The complete runs trained on these reviews, newest first.")
    try:
        return RunStore().load(run_id)
    except RunError as error:  # deleted or damaged since it was listed
        st.error(escape_markdown(error))
        st.stop()


@st.cache_resource(show_spinner="Loading the trained model…", max_entries=2)
def _cached_model(folder: str, model_state: tuple[int, int], _run: Run) -> keras.Model:
    # Two models at most: a server's memory is small. model_state: a retrained run loads afresh.
    import keras  # noqa: F401  (TensorFlow's objects, frozen before the model is made)

    # Frozen before, not after: a model dropped from this cache must be collected (it holds
    # reference cycles); its own objects cost a collection a few milliseconds.
    freeze_heap()
    return evaluation.load_model(_run)  # its forward pass and gradient traced, too


def run_key(run: Run) -> tuple[str, tuple[int, int]]:
    """A cache key for what is computed from a run: its folder and its model file's state, so
    a run deleted and trained again is a new key."""
    return str(run.folder), file_state(run.folder / MODEL_FILE)


def run_model(run: Run) -> keras.Model:
    """The run's Keras model, shared by all sessions; on failure show the error and stop."""
    try:
        return _cached_model(*run_key(run), run)
    except RunError as error:
        st.error(escape_markdown(error))
        st.stop()


def nearest_words_table(model: keras.Model | np.ndarray, vocab: Vocabulary, word: str) -> None:
    """Show the 10 words nearest to `word` in a model's embedding (the model or its matrix),
    ranked, with their cosines to as many decimals as tell them apart; or why there are none."""
    try:
        neighbours = evaluation.nearest_words(model, vocab, word)
    except ValueError as error:
        st.info(f"No neighbours: {escape_markdown(error)}.")
        return
    decimals = evaluation.distinguishing_decimals(neighbours["cosine"])
    st.dataframe(
        neighbours,
        hide_index=True,
        column_config={
            "rank": st.column_config.NumberColumn(width=50),
            "cosine": st.column_config.ProgressColumn(
                min_value=-1, max_value=1, format=f"%.{decimals}f"
            ),
        },
    )
