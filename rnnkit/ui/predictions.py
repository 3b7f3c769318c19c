"""The Predictions page's Streamlit code (`views/predictions.py`): a typed review read by a run's
model, shaded by each word's contribution, with what its curves mean for this kind of model and
a warning when the model is at chance; and the run's test-set report with its most confident
mistakes, each computed once per run (and text) for every session."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from rnnkit import evaluation
from rnnkit.config import TrainConfig
from rnnkit.data import ImdbData
from rnnkit.evaluation import RunReport, TextReading
from rnnkit.runs import Run
from rnnkit.ui.runs import run_key
from rnnkit.ui.tokens import TOKEN_STYLE, review_text
from rnnkit.vocabulary import OOV_ID, Vocabulary

if TYPE_CHECKING:
    import keras

POSITIVE_RGB, NEGATIVE_RGB = (21, 128, 61), (185, 28, 28)  # charts.LABEL_COLORS' pos and neg


@st.cache_data(show_spinner="Reading the text with the model…", max_entries=16)
def _read_text(
    run_key: tuple[str, tuple[int, int]],
    text: str,
    method: str,
    _model: keras.Model,
    _vocab: Vocabulary,
    _config: TrainConfig,
) -> TextReading:
    return evaluation.read_text(_model, _vocab, _config, text, method)


def read_text(
    run: Run, model: keras.Model, vocab: Vocabulary, text: str, method: str
) -> TextReading:
    """The run's prediction on `text` (`evaluation.read_text`), cached per run, text and method.

    Args:
        run: the run (its config says how the text is padded and cut).
        model: its model (`ui.runs.run_model`).
        vocab: the vocabulary of its data.
        text: any text.
        method: "occlusion" or "gradient".

    Raises:
        ValueError: the text has no words, or the method does not suit the model.
    """
    config = TrainConfig.from_dict(run.config)
    return _read_text(run_key(run), text, method, model, vocab, config)


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
    st.html(f'{TOKEN_STYLE}<div class="rk-box rk-tokens">{chips}</div>{legend}')


@st.cache_data(show_spinner="Scoring the test set…", max_entries=4)
def _run_report(run_key: tuple[str, tuple[int, int]], _run: Run, _data: ImdbData) -> RunReport:
    return evaluation.run_report(_run, _data)


def run_report(run: Run, data: ImdbData) -> RunReport:
    """The run's test-set report (`evaluation.run_report`), cached per run."""
    return _run_report(run_key(run), run, data)


def chance_warning(run: Run) -> None:
    """Warn, next to a prediction, that the run is no better than a coin toss (nothing when its
    test accuracy is clear of 50%: `evaluation.at_chance`)."""
    accuracy = run.metrics.get("test_accuracy")
    if accuracy is None or not evaluation.at_chance(accuracy):
        return
    st.warning(
        f"**This model is at chance: its predictions mean nothing.** Its test accuracy is "
        f"{accuracy:.1%}, what guessing gets on these reviews (half of them are positive). "
        f"Train one that learns on the Train page: the seed preset masks the padding, so its "
        f"RNN reads only the words; the notebook's setup, padding read like words, stays near "
        f"50% for its first epochs.",
        icon=":material/warning:",
    )


def reading_caption(config: TrainConfig) -> str:
    """What the two curves of `charts.prefix_predictions` mean for the run's kind of model."""
    if not config.model.rnn_units:
        return (
            "This model has no RNN: it averages the vectors of the words it reads, so it has no "
            "direction and word order means nothing to it. Blue: its prediction for the words "
            "up to each position; orange: for the words from each position to the end. A "
            "curve moves where a word pulls the average."
        )
    if config.model.bidirectional:
        return (
            "Blue: the prediction for the words up to each position, as the forward direction "
            "reads them (left to right). Orange: for the words from each position to the end, "
            "as the backward direction reads them (right to left)."
        )
    return (
        "Blue: the prediction after each prefix, as the model reads the review (left to "
        "right). Orange: the prediction for the text that starts at each word."
    )


def confident_mistakes(report: RunReport) -> None:
    """The run's most confident mistakes in a table, each review on one line, and the one a
    visitor picks in full."""
    table = evaluation.readable_mistakes(report.mistakes)
    st.dataframe(
        table,
        hide_index=True,
        column_config={"text": st.column_config.TextColumn(width="large")},
        key="predict_mistakes",
    )
    if table.empty:
        return
    row = st.selectbox(
        "Read a mistake in full",
        range(len(table)),
        format_func=lambda row: (
            f"test review {table['test review'].iloc[row]}: {table['true label'].iloc[row]}, "
            f"read as {table['probability'].iloc[row]} positive"
        ),
        key="predict_mistake",
    )
    review_text(report.mistakes["text"].iloc[row])
