"""The Train page's Streamlit code (`views/train.py`): the configuration form, the model's size
and cost, and the run of the configuration: its results, its live job, or a button to train it.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from rnnkit import charts, compare
from rnnkit.architecture import layer_table
from rnnkit.cluster import ClusterError
from rnnkit.compare import duration_text
from rnnkit.config import LIMITS, PRESETS, SECTIONS, TrainConfig, preset
from rnnkit.data import ImdbData
from rnnkit.estimate import COMPUTATIONS, computation, estimate_run, machine_factor
from rnnkit.jobs import ACTIVE_STATES, LimitError, limit_problems, lower_to_limits
from rnnkit.runs import Run, RunSummary
from rnnkit.settings import get_limits
from rnnkit.ui.board import active_view, job_board
from rnnkit.ui.untrusted import escape_markdown

# Settings that only an RNN layer reads: with `model.rnn_units` empty they change nothing.
RNN_ONLY_SETTINGS = ("model.cell", "model.bidirectional", "model.recurrent_dropout_rate")
PRESET_KEY, CONFIG_KEY, NOTICE_KEY = "cfg_preset", "cfg_config", "cfg_notices"


def _field_key(name: str) -> str:
    return f"cfg_field_{name}"


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
        st.session_state[_field_key(name)] = _field_value(name, value)
    st.session_state[CONFIG_KEY] = config.to_dict()


def _within_limits(config: TrainConfig) -> TrainConfig:
    """`config` with every setting over this server's limits lowered to the limit, with a note
    for the page (a hosted server trains fewer epochs than the notebook's 30, say)."""
    lowered_config, lowered = lower_to_limits(config, get_limits())
    if lowered:
        changes = ", ".join(f"{name} to {value}" for name, value in lowered.items())
        _notify(f"This server's limits lower the preset's {changes}.")
    return lowered_config


def _notify(message: str) -> None:
    # Callbacks run before the page is drawn: their notes wait in the session for it.
    st.session_state.setdefault(NOTICE_KEY, []).append(message)


def _reset_fields() -> None:
    # A new preset: every field starts again from the preset's value.
    _fill_fields(_within_limits(preset(st.session_state[PRESET_KEY])))


def open_config(config: TrainConfig) -> None:
    """Fill the Train form with `config` (e.g. a running job's); call it in a widget's
    callback, or before the form is drawn, then rerun."""
    _fill_fields(config)


def _config_from_url() -> tuple[str, TrainConfig]:
    """The preset and settings a link names (`?preset=notebook&training.epochs=2`), each
    checked as the form checks it; what cannot be used is left out, with a note that names
    the parameter (never its value: a crafted link could put any text on the page)."""
    name = st.query_params.get("preset", "seed")
    if name not in PRESETS:
        _notify(f"The link's preset is not one of {', '.join(PRESETS)}: seed is used.")
        name = "seed"
    config = preset(name)
    ignored = []
    for setting, limit in LIMITS.items():
        text = st.query_params.get(setting)
        if text is None:
            continue
        try:
            config = config.with_overrides({setting: limit.parse(setting, text)})
        except ValueError:
            ignored.append(setting)
    if ignored:
        _notify(f"The link's {', '.join(ignored)} are not valid settings: they are left out.")
    return name, _within_limits(config)


def _config_to_url(preset_name: str, config: TrainConfig) -> None:
    """The form in the URL: the preset and each setting that differs from it, so a copied
    link reopens the same configuration."""
    base = preset(preset_name).flat_settings()
    changed = {
        name: str(_field_value(name, value)).replace(" ", "")
        for name, value in config.flat_settings().items()
        if value != base[name]
    }
    st.query_params.from_dict({"preset": preset_name, **changed})


def _field_widget(name: str, server_limit: int | None, disabled: bool) -> Any:
    limit = LIMITS[name]
    key = _field_key(name)
    help_text = f"Allowed: {limit.allowed}."
    if server_limit is not None:
        help_text += f" This server trains up to {server_limit}."
    label = name.split(".")[1].replace("_", " ")
    common = {"key": key, "help": help_text, "disabled": disabled}
    if limit.kind == "bool":
        return st.toggle(label, **common)
    if limit.kind == "choice":
        return st.selectbox(label, limit.choices, **common)
    if limit.kind == "int_tuple":
        common["help"] += " Comma-separated, one number per layer; empty: no such layer."
        if name == "model.rnn_units":
            common["help"] += (
                " With no RNN layer the model averages each review's word vectors (the "
                "bag-of-words baseline), and cell, bidirectional and recurrent dropout rate "
                "change nothing."
            )
        return st.text_input(label, **common)
    if limit.optional:
        common["help"] += " 'none' turns it off."
        return st.text_input(label, **common)
    if limit.kind == "int":
        return st.number_input(label, int(limit.low), int(limit.high), step=1, **common)
    return st.number_input(label, float(limit.low), float(limit.high), format="%g", **common)


def _has_no_rnn() -> bool:
    """Whether the rnn units field, as it stands, asks for no RNN layer."""
    try:
        units = LIMITS["model.rnn_units"].parse(
            "model.rnn_units", st.session_state.get(_field_key("model.rnn_units"), "")
        )
    except ValueError:
        return False
    return units == ()


def config_form() -> TrainConfig | None:
    """A preset and every setting with its limits; the config, or None with the errors shown.

    The form's state lives in the session (page switches keep it) and in the URL (a link
    reopens it); a new session starts from the URL, else from the seed preset.
    """
    limits = get_limits()
    if CONFIG_KEY not in st.session_state:
        name, start = _config_from_url()
        st.session_state[PRESET_KEY] = name
        _fill_fields(start)
    saved = TrainConfig.from_dict(st.session_state[CONFIG_KEY])
    # Widgets not drawn in a run lose their state (a visit to another page): from the saved form.
    st.session_state.setdefault(PRESET_KEY, st.session_state.get("cfg_preset_name", "seed"))
    for name, value in saved.flat_settings().items():
        st.session_state.setdefault(_field_key(name), _field_value(name, value))
    preset_name = st.selectbox(
        "Preset",
        list(PRESETS),
        key=PRESET_KEY,
        on_change=_reset_fields,
        help="seed: the course notebook's model and training, each direction reading only the "
        "review's words (padding masked). notebook: the notebook exactly, padding read like "
        "words. recommended: the best test accuracy found within 5 minutes of CPU training, by a "
        "model without an RNN (the mean of each review's word vectors). best_rnn: the best RNN "
        "found in the same search, a small bidirectional LSTM. "
        "Every setting below can be changed.",
    )
    st.session_state["cfg_preset_name"] = preset_name  # kept across pages, unlike the widget's
    for message in st.session_state.pop(NOTICE_KEY, []):
        st.info(message)
    no_rnn = _has_no_rnn()
    values: dict[str, Any] = {}
    for column, section in zip(st.columns(3), SECTIONS, strict=True):
        with column:
            st.markdown(f"**{section}**")
            for name in saved.flat_settings():
                if name.startswith(f"{section}."):
                    disabled = no_rnn and name in RNN_ONLY_SETTINGS
                    values[name] = _field_widget(name, limits.highest(name), disabled)
            if section == "model" and no_rnn:
                st.caption(
                    "No RNN layer: the model averages the word vectors, so cell, "
                    "bidirectional and recurrent dropout rate change nothing."
                )
    try:
        config = saved.with_overrides(values)
    except ValueError as error:
        st.error(f"**This configuration is not valid.** {escape_markdown(error)}")
        return None
    st.session_state[CONFIG_KEY] = config.to_dict()
    _config_to_url(preset_name, config)
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


def model_overview(config: TrainConfig, data: ImdbData) -> None:
    """The model's size, its layers and the time an epoch should take, before any training.

    Everything here is counted from the config (`rnnkit.architecture`): the server builds no
    model, so a visitor's numbers cost it no memory.
    """
    layers = layer_table(config)
    board = job_board()
    estimate = estimate_run(
        config, data.train.lengths, data.test.lengths, board.store, warm_start=board.standby
    )
    columns = st.columns(3)
    columns[0].metric("Parameters", f"{sum(layer.parameters for layer in layers):,}")
    columns[1].metric("Estimated time per epoch", duration_text(estimate.epoch))
    columns[2].metric(
        "Estimated until the results",
        duration_text(estimate.total),
        help=f"Starting the training process {duration_text(estimate.start)}, "
        f"{config.training.epochs} epochs with their validation, the test set "
        f"{duration_text(estimate.test)}, saving {duration_text(estimate.save)}"
        + (" (early stopping may end it sooner)" if config.training.early_stopping_patience else "")
        + ".",
    )
    steps = (
        f"batches of reviews of similar length, each as wide as its longest review (at most "
        f"{config.data.max_length} steps), since the padding is masked"
        if config.model.mask_padding
        else f"reviews padded to {config.data.max_length} steps"
    )
    loop, default = COMPUTATIONS[computation(config)]
    computed = f"{loop} (about {default * machine_factor() / 1e9:.3g} GFLOP/s until there is one)"
    st.caption(
        f"{config.summary()}. The estimate counts the operations of an epoch over {steps}, at "
        f"the speed this server showed on its completed runs computed by {computed}."
    )
    with st.expander("Layers, as Keras builds them"):
        st.dataframe(
            pd.DataFrame(
                {
                    "layer": [layer.name for layer in layers],
                    "type": [layer.kind for layer in layers],
                    "output shape": [layer.output_shape for layer in layers],
                    "parameters": [layer.parameters for layer in layers],
                }
            ),
            hide_index=True,
            column_config={"parameters": st.column_config.NumberColumn(format="localized")},
            key="train_layers",
        )


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
    if view.state == "queued" and board.ray_address is not None:
        st.info(
            f"Waiting for a free node of the cluster: place {view.queue_position} among this "
            f"server's jobs. You can leave this page; the job stays."
        )
    elif view.state == "queued":
        st.info(
            f"Waiting for the trainer: place {view.queue_position} in the queue (this server "
            f"trains {board.limits.max_jobs} at a time). You can leave this page; the job stays."
        )
    elif view.progress is None:
        waited = time.time() - (view.started or view.submitted)
        where = f" on node {view.node}" if view.node else ""
        st.progress(
            0.0,
            text=f"Starting the training process{where}: loading TensorFlow and the reviews "
            f"({waited:.0f} s)",
        )
    else:
        event = view.progress
        batch_share = event.batch / max(1, event.batches) if event.kind != "epoch" else 1.0
        in_epochs = event.kind in ("start", "batch", "validate", "epoch")
        st.progress(min(1.0, batch_share if in_epochs else 1.0), text=event.phase.capitalize())
        left = event.seconds_left()
        st.progress(
            event.overall_fraction(),
            text=f"The whole run: elapsed {duration_text(event.elapsed_at())}"
            + (f" · about {duration_text(left)} left" if left is not None else ""),
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
    if allowed and not problems:
        board.prepare()  # a training process loads TensorFlow while the visitor decides
    label = "Resume training" if epochs_done else "Train"
    if st.button(label, key="train_start", type="primary", disabled=bool(problems) or not allowed):
        try:
            board.submit(config, data)
        except (LimitError, ClusterError) as error:
            st.error(escape_markdown(error))
            return
        st.rerun()
