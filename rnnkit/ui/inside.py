"""The Inside the RNN page's Streamlit code (`views/inside.py`): the review to look into, each
direction's state along it, the memory profiles of the chosen runs, and what a unit responds
to. What takes long is computed once per run on request and kept in the run's folder
(`rnnkit.inside`); the rest is cached per run and review for every session."""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from rnnkit import charts, compare, evaluation, inside
from rnnkit.config import TrainConfig
from rnnkit.data import ImdbData
from rnnkit.inside import Inspector
from rnnkit.runs import Run, RunError, RunStore
from rnnkit.sources import LABEL_NAMES
from rnnkit.ui.loading import load_data
from rnnkit.ui.predictions import run_report
from rnnkit.ui.runs import run_key, run_model
from rnnkit.ui.tokens import TOKEN_STYLE
from rnnkit.ui.untrusted import escape_markdown, keep_in_url, number_from_url

EXAMPLE = (
    "I expected a dull remake, but the acting is superb and the story kept me watching. "
    "The ending is a bit weak, still a great film."
)
SOURCES = ("typed", "test review", "confident mistake")
MEMORY_RUNS_KEY = "inside_memory_runs"  # the widget's key and the URL's parameter
# Rough costs on a 2-core CPU, for the buttons: the seed preset's figures (docs/performance.md).
PROFILE_SECONDS, SEARCH_SECONDS = 15, 20
POSITIVE_RGB, NEGATIVE_RGB = (29, 78, 216), (185, 28, 28)  # charts.STATE_COLORS' ends


@st.cache_resource(show_spinner="Opening the model up…", max_entries=2)
def _cached_inspector(
    folder: str, model_state: tuple[int, int], _model: object
) -> Inspector:  # keyed like the model: a run trained again is opened again
    return Inspector(_model)


def run_inspector(run: Run) -> Inspector:
    """The run's `Inspector`, made once per server for every session (its model loaded by
    `ui.runs.run_model`)."""
    return _cached_inspector(*run_key(run), run_model(run))


@dataclass(frozen=True)
class ChosenReview:
    """A review to look into, padded as the run was trained."""

    ids: np.ndarray  # (max_length,) int32
    description: str  # Markdown, escaped


def pick_review(run: Run, data: ImdbData, config: TrainConfig) -> ChosenReview | None:
    """A typed review, a test review by number, or one of the run's most confident mistakes.

    Args:
        run: the run.
        data: its reviews (loaded with its num_words).
        config: its configuration (how a review is padded and cut).

    Returns:
        The review, or None when there is none to show (a text without words, no mistake).
    """
    source = st.segmented_control(
        "Review",
        SOURCES,
        default="typed",
        required=True,
        key="inside_source",
        bind="query-params",
    )
    if source == "typed":
        text = st.text_area("Type or paste a review", EXAMPLE, height=100, key="inside_text")
        try:
            encoded = evaluation.encode_for_model(text, data.vocab, config)
        except ValueError as error:
            st.info(f"No review to look into: {error}.")
            return None
        if encoded.note:
            st.warning(encoded.note)
        return ChosenReview(encoded.ids, "your review")
    if source == "test review":
        last = len(data.test) - 1
        number_from_url("inside_review", 0, last, 0)
        index = int(
            st.number_input(f"Test review (0 to {last:,})", 0, last, step=1, key="inside_review")
        )
        keep_in_url("inside_review", 0)
    else:
        mistakes = run_report(run, data).mistakes
        if mistakes.empty:
            st.info("The run makes no mistake on the test set.")
            return None
        index = st.selectbox(
            "One of the run's most confident mistakes",
            mistakes["test review"].tolist(),
            format_func=lambda review: (
                f"test review {review}: "
                f"{LABEL_NAMES[int(data.test.labels[review])]}, "
                f"the run says {run.predictions[review]:.3f}"
            ),
            key="inside_mistake",
        )
    ids = inside.padded_rows([data.test.sequences[index]], config)[0]
    label = LABEL_NAMES[int(data.test.labels[index])]
    return ChosenReview(
        ids, f"test review {index} ({label}; probability of pos {run.predictions[index]:.3f})"
    )


@st.cache_data(show_spinner="Reading the review step by step…", max_entries=16)
def _review_states(
    run_key: tuple[str, tuple[int, int]], ids: bytes, _inspector: Inspector
) -> dict[str, np.ndarray]:
    tokens = np.frombuffer(ids, np.int32)[None, :]  # (1, time)
    return {name: states[0] for name, states in _inspector.states(tokens).items()}


def state_along_review(
    run: Run, inspector: Inspector, review: ChosenReview, data: ImdbData
) -> None:
    """For every RNN layer and direction, a heatmap of its state at each step of the review,
    what each step is, and how far the state moves at each step."""
    ids = np.ascontiguousarray(review.ids, np.int32)
    states = _review_states(run_key(run), ids.tobytes(), inspector)
    steps = inside.review_steps(ids, data.vocab, inspector.masked)
    words = int((steps["reads"] == "word").sum())
    st.markdown(
        f"**{review.description}**: {words} words in {len(ids)} steps "
        f"({len(ids) - words} of padding, {'skipped' if inspector.masked else 'read'})."
    )
    near = st.toggle(
        f"Only the words and the {inside.PADDING_SHOWN} padding steps beside them",
        value=inspector.masked,  # a mask skips the rest: the state stays as it is there
        key="inside_near_words",
    )
    shown = inside.steps_near_words(ids) if near else slice(0, len(ids))
    for direction in inspector.directions:
        sequence = states[direction.name]  # (time, units)
        frame = inside.step_frame(steps, sequence, direction.backward).iloc[shown]
        st.altair_chart(
            charts.hidden_state(inside.state_frame(frame, sequence[shown]), frame, direction.name),
            key=f"inside_states_{direction.name}",
        )
    hidden = len(ids) - len(range(len(ids))[shown])
    if hidden:
        st.caption(f"{hidden} more padding steps are not shown (switch the toggle off).")
    st.caption(
        "Each heatmap is one direction of one layer: a row per unit, a column per step, the "
        "unit's state after the direction read that step (blue above 0, red below; a "
        "backward direction reads from the right). The strip above says what the step is: "
        "a word, padding the model reads like a word, or padding the mask skips. The line "
        "below is how far the state moved at that step (‖h_t − h_before‖): 0 where a masked "
        "step keeps the state. Without a mask, a forward direction goes on reading the "
        "padding after the words, and what its state does there is what its last step hands "
        "on: it may keep what the words made of it, settle, or swing in a pattern of its own "
        "that looks the same whatever the review said."
    )


# --- how far back each run remembers ------------------------------------------------------------


def _profiled_runs(data: ImdbData, current: Run) -> dict[str, str]:
    """The complete runs of these reviews for the memory chart, run id to label: its id's
    first 8 characters and its settings (the cell, padding and mask tell the curves apart)."""
    labels = {}
    for summary in compare.complete_runs(RunStore().list_runs(), data.fingerprint):
        config = compare.config_or_none(summary.config)
        settings = config.summary() if config else "settings unreadable"
        labels[summary.run_id] = f"{summary.run_id[:8]} · {settings}"
    return {current.run_id: labels.get(current.run_id, current.run_id)} | labels


@st.cache_data(show_spinner=False, max_entries=32)
def _memory_profile(run_key: tuple[str, tuple[int, int]], _run: Run) -> inside.MemoryProfile:
    # Computed once per run (kept in its folder); this cache keeps two visitors from both
    # computing it at the same time.
    config = TrainConfig.from_dict(_run.config)
    data = load_data(config.data.num_words)
    return inside.run_memory_profile(RunStore(), _run, data, run_inspector(_run))


def memory_section(current: Run, data: ImdbData) -> None:
    """The chosen runs' memory profiles on one chart (computed on request, once per run), and
    each run's memory in steps.

    Args:
        current: the page's run, chosen at first.
        data: the reviews (their fingerprint picks the runs).
    """
    choices = _profiled_runs(data, current)
    if MEMORY_RUNS_KEY not in st.session_state:  # first view: the link's runs, by bare id
        wanted = st.query_params.get_all(MEMORY_RUNS_KEY)
        unknown = [value for value in wanted if value not in choices]
        if unknown:  # not shown: a crafted link could put any text on the page
            st.info(
                f"The link names {len(unknown)} run(s) that are not complete runs here: left out."
            )
        known = [value for value in dict.fromkeys(wanted) if value in choices]
        st.session_state[MEMORY_RUNS_KEY] = known or [current.run_id]
    else:  # a run deleted since: no longer a choice
        st.session_state[MEMORY_RUNS_KEY] = [
            value for value in st.session_state[MEMORY_RUNS_KEY] if value in choices
        ]
    picked = st.multiselect(
        "Runs to compare",
        list(choices),
        format_func=choices.get,
        key=MEMORY_RUNS_KEY,
        help="Any complete runs of these reviews: SimpleRNN, GRU and LSTM, post- and "
        "pre-padded, masked or not. A link to this page keeps the chosen runs.",
    )
    # Bare run ids in the URL (Streamlit's own binding would write the labels).
    st.query_params[MEMORY_RUNS_KEY] = picked
    store = RunStore()
    runs, profiles = {}, {}
    for run_id in picked:
        try:
            runs[run_id] = store.load(run_id)
        except RunError as error:  # deleted or damaged since it was listed
            st.warning(str(error))
            continue
        config = TrainConfig.from_dict(runs[run_id].config)
        profiles[run_id] = inside.stored_memory_profile(store, run_id, config)
    missing = [run_id for run_id, profile in profiles.items() if profile is None]
    button_slot = st.empty()  # emptied once the profiles are computed, in the same run
    if missing and button_slot.button(
        f"Compute the memory profile of {len(missing)} run(s) (up to about "
        f"{PROFILE_SECONDS} s each, once per run)",
        key="inside_memory_compute",
        type="primary",
    ):
        for number, run_id in enumerate(missing, start=1):
            with st.spinner(
                f"Run {number} of {len(missing)}: {inside.PROFILE_REVIEWS} test "
                "reviews, a gradient per direction…",
                show_time=True,
            ):
                profiles[run_id] = _memory_profile(run_key(runs[run_id]), runs[run_id])
        button_slot.empty()
    shown = {choices[run_id]: profile for run_id, profile in profiles.items() if profile}
    if not shown:
        st.caption("No profile is computed for the chosen runs yet.")
        return
    curves, marks = inside.memory_frames(shown)
    st.altair_chart(charts.memory_curves(curves, marks), key="inside_memory_chart")
    st.dataframe(
        pd.DataFrame(
            {
                "run": list(shown),
                "memory (steps)": [profile.memory_text for profile in shown.values()],
                "reviews": [profile.reviews for profile in shown.values()],
            }
        ),
        hide_index=True,
        key="inside_memory_table",
    )
    st.caption(
        "For each direction of the last RNN layer: how strongly the output (the logit, before "
        "the sigmoid) depends on the word vector at each distance back from where the "
        "direction finishes reading: its last step (the last word under a mask, the last "
        "padding step of a post-padded row without one), or for a backward direction its "
        "first. The size of the gradient, divided by the review's average over the steps the "
        f"direction reads, averaged over a sample of {inside.PROFILE_REVIEWS} test reviews "
        "(the same for every run; all of them if there are fewer); dashed: backward. A "
        "diamond marks each run's memory: how far back its better direction stays at 1% of "
        "its peak or more, up to where it first falls below. A SimpleRNN's curve can rise "
        "again at the largest distances: a direction's first steps start from a zero state, "
        "whose small states amplify what they read before they saturate; that rise is not "
        "counted. The mean of word vectors weighs every position alike: a flat line at 1. "
        "Where the words lie beyond a direction's memory, as they can behind hundreds of "
        "padding steps, its output barely depends on them, and training gets almost no "
        "signal from them."
    )


# --- what a unit responds to ----------------------------------------------------------------


def _search_units(run: Run, data: ImdbData, inspector: Inspector) -> inside.UnitSearch:
    progress = st.progress(0.0, text="Searching the test reviews…")

    def on_batch(done: int, total: int) -> None:
        progress.progress(done / total, text=f"Searching the test reviews: {done:,} of {total:,}")

    search = inside.run_unit_search(RunStore(), run, data, inspector, on_batch=on_batch)
    progress.empty()
    return search


def _window_html(window: pd.Series, scale: float) -> str:
    chips = []
    for index, (word, value) in enumerate(zip(window["words"], window["values"], strict=True)):
        red, green, blue = POSITIVE_RGB if value > 0 else NEGATIVE_RGB
        strength = min(1.0, abs(value) / scale)
        style = f"background: rgba({red}, {green}, {blue}, {0.08 + 0.72 * strength:.2f})"
        if strength > 0.6:
            style += "; color: white"
        if index == window["place"]:
            style += "; outline: 2px solid #111827; font-weight: 600"
        title = html.escape(f"{word}: {value:+.3f}")
        chips.append(f'<span style="{style}" title="{title}">{html.escape(word)}</span>')
    head = html.escape(
        f"test review {window['review']} ({window['label']}), word {window['position']}: "
        f"{window['value']:+.3f}"
    )
    return (
        f'<div class="rk-caption">{head}</div><div class="rk-box rk-tokens">{"".join(chips)}</div>'
    )


def unit_section(run: Run, data: ImdbData, inspector: Inspector, config: TrainConfig) -> None:
    """Pick a direction and a unit: its correlation with the output beside every other
    unit's, and the test-review windows where it is most active, shaded by its state."""
    names = [direction.name for direction in inspector.directions]
    name = st.selectbox("Layer and direction", names, key="inside_direction")
    search = inside.stored_unit_search(RunStore(), run, data, inspector)
    button_slot = st.empty()
    if search is None:
        if not button_slot.button(
            f"Search the {len(data.test):,} test reviews for every unit (about "
            f"{SEARCH_SECONDS} s on the real data, once per run)",
            key="inside_units_compute",
            type="primary",
        ):
            return
        button_slot.empty()
        search = _search_units(run, data, inspector)
    correlations = search.correlation_frame(name)
    strongest = int(correlations["unit"].iloc[0])
    units = inspector.direction(name).units
    number_from_url("inside_unit", 0, units - 1, strongest)
    unit = int(st.number_input(f"Unit (0 to {units - 1})", 0, units - 1, key="inside_unit"))
    keep_in_url("inside_unit", strongest)
    st.altair_chart(charts.unit_correlations(correlations, unit), key="inside_correlations")
    carriers = ", ".join(
        f"{row.unit} ({row.correlation:+.2f})" for row in correlations.head(5).itertuples()
    )
    st.caption(
        f"Each unit's state where {escape_markdown(name)} finishes reading, correlated with "
        f"the output (the logit) across the {search.reviews:,} test reviews. The units that "
        f"carry the sentiment most: {carriers}."
    )
    sign = st.segmented_control(
        "Where the unit is",
        ["highest", "lowest"],
        default="highest",
        required=True,
        key="inside_sign",
    )
    windows = inside.unit_windows(inspector, search, data, config, name, unit, sign)
    if windows.empty:
        st.info("No test review has a word for this unit.")
        return
    scale = max(float(np.abs(np.concatenate(windows["values"].to_numpy())).max()), 1e-6)
    blocks = "".join(_window_html(window, scale) for _, window in windows.iterrows())
    st.html(f"{TOKEN_STYLE}{blocks}")
    st.caption(
        f"The {len(windows)} test reviews where unit {unit} reaches its {sign} state at a "
        "word (one place per review), the words the direction had read up to there (a "
        "backward direction reads them from the right), each shaded by the unit's state "
        "after it: blue above 0, red below. Outlined: the word where it peaks."
    )
