"""The Learning curves page's Streamlit code (`views/curves.py`): the runs table, the picked
runs' curves against their test accuracy and the TF-IDF baseline, each run's files, and the
padding experiment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st
from filelock import Timeout

from rnnkit import baseline, charts, compare, inside
from rnnkit.config import TrainConfig, preset
from rnnkit.data import ImdbData
from rnnkit.jobs import LimitError, limit_problems
from rnnkit.runs import RunError, RunSummary
from rnnkit.ui.board import active_view, job_board, job_states
from rnnkit.ui.loading import load_data
from rnnkit.ui.untrusted import escape_markdown

BASELINE_NAME = "TF-IDF + logistic regression (test)"
# Widths that show the results in full on a laptop's screen; the settings, the widest, come
# last and take the rest. The creation time is left out (the runs are listed newest first),
# and the problem column shows only when a run has one.
RUN_COLUMNS = {
    "run": st.column_config.TextColumn(width=135),
    "status": st.column_config.TextColumn(width=80),
    "test accuracy": st.column_config.NumberColumn("test acc.", format="percent", width=75),
    "best val accuracy": st.column_config.NumberColumn("best val acc.", format="percent", width=90),
    "best epoch": st.column_config.NumberColumn(width=65),
    "epochs": st.column_config.TextColumn(width=60),
    "memory (steps)": st.column_config.TextColumn("memory", width=60),
    "training time": st.column_config.TextColumn("time", width=75),
    "problem": st.column_config.TextColumn(width=160),
    "settings": st.column_config.TextColumn(width="large"),
}


def runs_table(summaries: Sequence[RunSummary]) -> None:
    """Every stored run in a row (`compare.runs_table`), its status live from the job board,
    and its memory where the Inside the RNN page has computed it."""
    memory = inside.stored_memory_texts(job_board().store, summaries)
    table = compare.runs_table(summaries, job_states(), memory)
    shown = [name for name in RUN_COLUMNS if name != "problem" or table["problem"].any()]
    st.dataframe(
        table,
        hide_index=True,
        column_order=shown,
        column_config=RUN_COLUMNS,
        key="curves_runs_table",
    )


def pick_runs(summaries: Sequence[RunSummary]) -> list[str]:
    """The runs to compare, each shown by a short label and kept in the URL by its id
    (`?curves_runs=<run id>&curves_runs=...`); ids that are not stored runs are left out, with
    a note.

    The URL is read and written here rather than by Streamlit's binding, which would keep the
    labels there: they change as runs come and go, the ids do not.

    Args:
        summaries: `RunStore.list_runs()`.

    Returns:
        The picked run ids; at first those of the URL, or the newest complete run.
    """
    run_ids = [summary.run_id for summary in summaries]
    wanted = st.query_params.get_all("curves_runs")
    unknown = [value for value in wanted if value not in run_ids]
    if unknown:  # not shown: a crafted link could put any text on the page
        st.info(f"The link names {len(unknown)} run(s) not in this store: they are left out.")
    if "curves_runs" in st.session_state:  # runs deleted since are dropped
        picked = [run_id for run_id in st.session_state["curves_runs"] if run_id in run_ids]
    elif wanted:
        picked = list(dict.fromkeys(value for value in wanted if value in run_ids))
    else:
        picked = [summary.run_id for summary in summaries if summary.status == "complete"][:1]
    st.session_state["curves_runs"] = picked
    labels = compare.choice_labels(summaries)
    picked = st.multiselect(
        "Runs to compare",
        run_ids,
        format_func=labels.get,
        key="curves_runs",
        help="Each label starts with the run id's first 8 characters, as in the table. A link "
        "to this page keeps the picked runs.",
    )
    st.query_params["curves_runs"] = picked
    return picked


@st.cache_data(
    show_spinner="Fitting TF-IDF + logistic regression on the training reviews…",
    show_time=True,
    max_entries=8,
)
def _tfidf_baseline(
    _data: ImdbData, fingerprint: str, num_words: int, validation_split: float, seed: int
) -> dict:
    # Keyed by the data's fingerprint and num_words: the reviews themselves are not hashed.
    return baseline.tfidf_baseline(_data, validation_split, seed)


def baseline_reference(settings: Mapping[str, Any] | None) -> dict[str, float]:
    """The TF-IDF + logistic regression baseline's test accuracy, as a reference line.

    Fitted on the training rows of `settings` (its validation_split and seed); when it is not
    on disk yet, a button fits it (about 45 s on the real data, once).

    Args:
        settings: a run's stored config; None: the seed preset's.

    Returns:
        {BASELINE_NAME: test accuracy}, or {} until it is computed.
    """
    config = compare.config_or_none(settings) or preset("seed")
    data = load_data(config.data.num_words)
    split, seed = config.training.validation_split, config.training.seed
    button_slot = st.empty()  # emptied once the baseline is fitted, in the same run
    if baseline.cached_baseline(data, split, seed) is None and not button_slot.button(
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
    labels = compare.run_labels({summary.run_id: summary.config for summary in summaries})
    histories, best_epochs, test_accuracies = {}, {}, {}
    for summary in summaries:
        run_id, label = summary.run_id, labels[summary.run_id]
        if summary.status == "damaged":
            st.warning(
                f"`{run_id}` is damaged ({escape_markdown(summary.error)}): it has no curves. "
                f"Delete it."
            )
            continue
        try:
            history = store.history_epochs(run_id)
        except RunError as error:
            st.warning(escape_markdown(error))
            continue
        if not history:
            st.caption(f"`{run_id}` has no finished epoch yet.")
            continue
        if summary.status == "failed":
            st.caption(
                f"`{run_id}` failed after {len(history)} epoch(s): {escape_markdown(summary.error)}"
            )
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


def differences_table(summaries: Sequence[RunSummary]) -> None:
    """The settings the picked runs differ in, or why there is nothing to show."""
    differences = compare.config_differences(
        {summary.run_id: summary.config for summary in summaries}
    )
    if len(summaries) < 2:
        st.caption("Pick two or more runs to see the settings they differ in.")
    elif differences.empty:
        st.info("The picked runs have the same settings (their data differs).")
    else:
        st.dataframe(differences)


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
    if active_view(run_id) is not None:
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
    training = active_view(run_id) is not None
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
        left = event.seconds_left()
        st.progress(
            event.overall_fraction(),
            text=event.phase.capitalize()
            + (f" · about {compare.duration_text(left)} left" if left is not None else ""),
        )
    elif view is not None and view.state == "running":
        st.progress(0.0, text="Starting the training process…")
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
    if not any(active_view(run_id) for run_id in run_ids.values()):
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
    config = compare.config_or_none(summary.config)
    if config is None:
        st.error(f"Run `{summary.run_id}` has no readable configuration to vary.")
        return
    board = job_board()
    data = load_data(config.data.num_words)
    variants = compare.padding_variants(config)
    run_ids = {label: variant.run_id(data.fingerprint) for label, variant in variants.items()}
    done = {label for label, run_id in run_ids.items() if board.store.status(run_id) == "complete"}
    active = any(active_view(run_id) for run_id in run_ids.values())
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
        st.dataframe(
            compare.variant_results(runs),
            hide_index=True,
            column_config={
                "test accuracy": st.column_config.NumberColumn(format="percent"),
                "best val accuracy": st.column_config.NumberColumn(format="percent"),
            },
            key="curves_padding_results",
        )
