"""The Train page's Streamlit code (`views/train.py`): the configuration form, the model's size
and cost, and the run of the configuration: its results, its live job, or a button to train it.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from rnnkit import charts, compare
from rnnkit.compare import duration_text
from rnnkit.config import LIMITS, PRESETS, SECTIONS, TrainConfig, preset
from rnnkit.data import ImdbData
from rnnkit.jobs import ACTIVE_STATES, LimitError, limit_problems, lower_to_limits
from rnnkit.runs import Run, RunSummary
from rnnkit.settings import get_limits
from rnnkit.training import COMPUTATIONS, computation, estimate_epoch_seconds
from rnnkit.ui.board import active_view, freeze_heap, job_board
from rnnkit.ui.untrusted import escape_markdown


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
    for name, value in config.flat_settings().items():
        st.session_state[f"cfg_field_{name}"] = _field_value(name, value)
    st.session_state["cfg_saved"] = config.to_dict()


def _reset_fields() -> None:
    # A new preset: every field starts again from the preset's value.
    _fill_fields(_within_limits(preset(st.session_state["cfg_preset"])))


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


def _within_limits(config: TrainConfig) -> TrainConfig:
    """`config` with every setting over this server's limits lowered to the limit, said in a
    note (a hosted server trains fewer epochs than the notebook's 30, say)."""
    lowered_config, lowered = lower_to_limits(config, get_limits())
    if lowered:
        changes = ", ".join(f"{name} to {value}" for name, value in lowered.items())
        st.info(f"This server's limits lower the preset's {changes}.")
    return lowered_config


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
    start = TrainConfig.from_dict(saved) if saved else _within_limits(preset(preset_name))
    defaults = start.flat_settings()
    values: dict[str, Any] = {}
    for column, section in zip(st.columns(3), SECTIONS, strict=True):
        with column:
            st.markdown(f"**{section}**")
            for name, value in defaults.items():
                if name.startswith(f"{section}."):
                    values[name] = _field_widget(name, value, limits.highest(name))
    try:
        config = start.with_overrides(values)
    except ValueError as error:
        st.error(f"**This configuration is not valid.** {escape_markdown(error)}")
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


def stopped_runs_panel(summaries: list[RunSummary], data: ImdbData) -> None:
    """The stored runs of these reviews that stopped part way (the server restarted, a cancel,
    the time limit, an error) and no job trains now, each with a button that opens it in the
    form to resume it from its last finished epoch.

    Args:
        summaries: `RunStore.list_runs()`.
        data: the reviews (runs of other data cannot resume on them).
    """
    active = {view.run_id for view in job_board().active()}
    stopped = compare.stopped_runs(summaries, data.fingerprint, active)
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


@st.cache_data(show_spinner="Building the model to count its parameters…", max_entries=64)
def _model_facts(config_json: str) -> tuple[int, str]:
    # Imported here: Keras loads TensorFlow (seconds), which the explorer pages never need.
    from rnnkit.model import model_summary, parameter_count

    config = TrainConfig.from_dict(json.loads(config_json))
    facts = parameter_count(config), model_summary(config)
    freeze_heap()
    return facts


def model_overview(config: TrainConfig, data: ImdbData) -> None:
    """The model's size and the time an epoch should take, before any training."""
    parameters, summary = _model_facts(config.canonical_json())
    seconds = estimate_epoch_seconds(config, data.train.lengths, job_board().store)
    columns = st.columns(3)
    columns[0].metric("Parameters", f"{parameters:,}")
    columns[1].metric("Estimated time per epoch", duration_text(seconds))
    columns[2].metric(
        f"Estimated for {config.training.epochs} epochs",
        duration_text(seconds * config.training.epochs),
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
    columns[3].metric("Training time", duration_text(summary.get("seconds")))
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
            text=f"All epochs: {event.fraction:.0%} · elapsed {duration_text(event.elapsed)} · "
            f"about {duration_text(event.eta)} left",
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
    if active_view(run_id) is not None:
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
            st.error(escape_markdown(error))
            return
        st.rerun()
