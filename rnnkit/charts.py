"""Altair charts for the app's pages.

Each function takes the small DataFrame that `rnnkit.explore` prepares (a few hundred rows at
most: thinned curves, binned lengths) and returns an Altair chart; rendering is the page's job.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

LABEL_COLORS = alt.Scale(domain=["neg", "pos"], range=["#b91c1c", "#15803d"])
PART_COLORS = alt.Scale(domain=["tokens", "padding"], range=["#c2410c", "#d6d3d1"])
KEPT_COLORS = alt.Scale(domain=[True, False], range=["#c2410c", "#a8a29e"])
MARK_COLOR = "#1d4ed8"  # the chosen num_words or max_length


def top_words(table: pd.DataFrame) -> alt.Chart:
    """A bar per word, longest first: the most frequent training words.

    Args:
        table: rows of `explore.vocabulary_table` (id, word, count, documents, kept).

    Returns:
        A horizontal bar chart of count by word, coloured by whether num_words keeps it.
    """
    return (
        alt.Chart(table)
        .mark_bar()
        .encode(
            x=alt.X("count:Q", title="occurrences in the training reviews"),
            y=alt.Y("word:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False)),
            color=alt.Color("kept:N", scale=KEPT_COLORS, title="id < num_words"),
            tooltip=["id:Q", "word:N", alt.Tooltip("count:Q", format=","), "documents:Q"],
        )
        .properties(height=alt.Step(16))
    )


def zipf(points: pd.DataFrame, words_kept: int) -> alt.LayerChart:
    """Word count against rank on log-log axes, with Zipf's law and the num_words cut.

    Args:
        points: `explore.zipf_points` (rank, word, count, zipf).
        words_kept: the rank of the last word that keeps its own id under num_words.

    Returns:
        A layered chart: the counts, the 1/rank law (dashed) and a rule at the cut.
    """
    base = alt.Chart(points).encode(
        x=alt.X("rank:Q", scale=alt.Scale(type="log"), title="rank (1 = most frequent word)")
    )
    counts = base.mark_line(color="#c2410c").encode(
        y=alt.Y("count:Q", scale=alt.Scale(type="log"), title="occurrences"),
        tooltip=["rank:Q", "word:N", alt.Tooltip("count:Q", format=",")],
    )
    law = base.mark_line(color="#78716c", strokeDash=[4, 4]).encode(y="zipf:Q")
    cut = (
        alt.Chart(pd.DataFrame({"rank": [max(words_kept, 1)], "label": ["num_words cut"]}))
        .mark_rule(color=MARK_COLOR)
        .encode(x="rank:Q", tooltip=["label:N", "rank:Q"])
    )
    return alt.layer(counts, law, cut)


def coverage(points: pd.DataFrame, num_words: int, covered: float) -> alt.LayerChart:
    """Share of training tokens that keep their own id against num_words, the choice marked.

    Args:
        points: `explore.coverage_points` (num_words, words_kept, coverage).
        num_words: the chosen num_words.
        covered: the share of tokens it covers (1 - the out-of-vocabulary rate).

    Returns:
        A layered chart: the curve, a rule and a labelled point at the chosen num_words.
    """
    curve = (
        alt.Chart(points)
        .mark_line(color="#c2410c")
        .encode(
            x=alt.X("num_words:Q", scale=alt.Scale(type="log"), title="num_words"),
            y=alt.Y(
                "coverage:Q",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%"),
                title="training tokens with their own id",
            ),
            tooltip=[
                alt.Tooltip("num_words:Q", format=","),
                alt.Tooltip("coverage:Q", format=".1%"),
            ],
        )
    )
    choice = pd.DataFrame(
        {
            "num_words": [num_words],
            "coverage": [covered],
            "label": [f"{num_words:,}: {covered:.1%} covered, {1 - covered:.1%} <UNK>"],
        }
    )
    marked = alt.Chart(choice).encode(x="num_words:Q")
    return alt.layer(
        curve,
        marked.mark_rule(color=MARK_COLOR),
        marked.mark_point(color=MARK_COLOR, filled=True, size=60).encode(y="coverage:Q"),
        marked.mark_text(align="right", dx=-6, dy=12, color=MARK_COLOR).encode(
            y="coverage:Q", text="label:N"
        ),
    )


def length_histogram(histogram: pd.DataFrame, max_length: int, log_scale: bool) -> alt.FacetChart:
    """Review lengths per label, one panel per split, with max_length marked.

    Args:
        histogram: `explore.length_histogram` (split, label, start, end, count).
        max_length: where padding and truncating cut; drawn as a rule.
        log_scale: a log length axis (give a histogram binned with log_scale too).

    Returns:
        Overlaid bars for neg and pos, faceted by split.
    """
    length_axis = alt.Scale(type="log") if log_scale else alt.Scale(zero=False)
    bars = (
        alt.Chart()
        .mark_rect(opacity=0.55)
        .encode(
            x=alt.X("start:Q", scale=length_axis, title="review length (tokens)"),
            x2="end:Q",
            y=alt.Y("count:Q", stack=None, title="reviews"),
            y2=alt.datum(0),
            color=alt.Color("label:N", scale=LABEL_COLORS),
            tooltip=["split:N", "label:N", "start:Q", "end:Q", "count:Q"],
        )
    )
    rule = (
        alt.Chart().mark_rule(color=MARK_COLOR, strokeDash=[4, 2]).encode(x=alt.datum(max_length))
    )
    return (
        alt.layer(bars, rule, data=histogram)
        .properties(width=380, height=220)
        .facet(column=alt.Column("split:N", sort=["train", "test"], title=None))
    )


def padded_batch(layout: pd.DataFrame) -> alt.FacetChart:
    """One batch padded to max_length: a row per review, tokens against padding, pre and post.

    Args:
        layout: `explore.batch_layout` (padding, review, part, start, end).

    Returns:
        A rectangle chart faceted by padding side.
    """
    return (
        alt.Chart(layout)
        .mark_rect(stroke="white", strokeWidth=0.5)
        .encode(
            x=alt.X("start:Q", title="time step", scale=alt.Scale(nice=False)),
            x2="end:Q",
            y=alt.Y("review:O", title="review in the batch"),
            color=alt.Color("part:N", scale=PART_COLORS, title=None),
            tooltip=["padding:N", "review:O", "part:N", "start:Q", "end:Q"],
        )
        .properties(width=380, height=alt.Step(12))
        .facet(column=alt.Column("padding:N", sort=["pre", "post"], title="padding"))
    )
