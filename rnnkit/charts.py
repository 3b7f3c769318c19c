"""Altair charts for the app's pages.

Each function takes the small DataFrame that `rnnkit.explore` prepares (a few hundred rows at
most: thinned curves, binned lengths) and returns an Altair chart; rendering is the page's job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

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
        A layered chart: the curve, a rule and a point at the chosen num_words, and the
        choice's label at the foot of the rule, on the side away from the curve.
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
    # The curve rises from the bottom left, so the bottom of the chart is clear beside the rule
    # but for the first few words: the label goes there, on the wider side of the rule.
    smallest, largest = math.log(points["num_words"].min()), math.log(points["num_words"].max())
    on_the_left = math.log(max(num_words, 1)) > (smallest + largest) / 2
    return alt.layer(
        curve,
        marked.mark_rule(color=MARK_COLOR),
        marked.mark_point(color=MARK_COLOR, filled=True, size=60).encode(y="coverage:Q"),
        marked.mark_text(
            align="right" if on_the_left else "left",
            baseline="bottom",
            dx=-6 if on_the_left else 6,
            dy=-4,
            color=MARK_COLOR,
        ).encode(y=alt.datum(0), text="label:N"),
    )


def length_histogram(histogram: pd.DataFrame, max_length: int, log_scale: bool) -> alt.FacetChart:
    """Review lengths, a panel per split (columns) and label (rows), with max_length marked.

    Args:
        histogram: `explore.length_histogram` (split, label, start, end, count).
        max_length: where padding and truncating cut; drawn as a rule.
        log_scale: a log length axis (give a histogram binned with log_scale too).

    Returns:
        Bars faceted by split and label: the two labels' lengths in panels of their own, one
        above the other on a shared length axis, rather than overlaid in one muddy colour.
    """
    length_axis = alt.Scale(type="log") if log_scale else alt.Scale(zero=False)
    bars = (
        alt.Chart()
        .mark_rect()
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
        .properties(width=380, height=130)
        .facet(
            column=alt.Column("split:N", sort=["train", "test"], title=None),
            row=alt.Row("label:N", sort=["neg", "pos"], title=None),
        )
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
            x=alt.X(
                "start:Q",
                title="time step",
                scale=alt.Scale(nice=False),
                axis=alt.Axis(tickMinStep=1, format="d"),  # steps are whole
            ),
            x2="end:Q",
            y=alt.Y("review:O", title="review in the batch"),
            color=alt.Color("part:N", scale=PART_COLORS, title=None),
            tooltip=["padding:N", "review:O", "part:N", "start:Q", "end:Q"],
        )
        .properties(width=380, height=alt.Step(12))
        .facet(column=alt.Column("padding:N", sort=["pre", "post"], title="padding"))
    )


# --- learning curves --------------------------------------------------------------------------

PART_DASH = alt.Scale(domain=["training", "validation"], range=[[1, 0], [5, 3]])
METRIC_TITLES = {"loss": "loss (binary cross-entropy)", "accuracy": "accuracy"}
# One colour per run, in the order of the runs: Tableau 10's well-separated hues, its pale
# yellow last (it reads poorly on white); an eleventh run starts the list again.
RUN_COLORS = [
    "#4c78a8",  # blue
    "#f58518",  # orange
    "#54a24b",  # green
    "#e45756",  # red
    "#b279a2",  # purple
    "#9d755d",  # brown
    "#72b7b2",  # teal
    "#ff9da6",  # pink
    "#79706e",  # grey
    "#eeca3b",  # yellow
]
# Legend entries drawn as short lines: a run's colour, or a part's dash pattern, not dots.
_LINE_SYMBOL = {
    "symbolType": "stroke",
    "symbolSize": 400,
    "symbolStrokeWidth": 2.5,
    "symbolOpacity": 1,  # not the gap band's faint opacity
}


def run_color(runs: Sequence[str]) -> alt.Color:
    """The colour channel of the curve charts: each of `runs` its own colour, in their order, in
    every panel and layer (lines, gap band, rules) that uses it."""
    return alt.Color(
        "run:N",
        title="run",
        scale=alt.Scale(domain=list(runs), range=RUN_COLORS),
        legend=alt.Legend(orient="bottom", columns=1, **_LINE_SYMBOL),
    )


def history_frame(histories: Mapping[str, Sequence[Mapping[str, float]]]) -> pd.DataFrame:
    """Per-epoch histories in long form for the curve charts.

    Args:
        histories: run label to its per-epoch dicts (epoch, loss, accuracy, val_loss, ...).

    Returns:
        Rows of run, epoch, metric ("loss" or "accuracy"), part ("training" or
        "validation") and value; plus, per run, epoch and metric, the training and validation
        values side by side (columns training, validation) for the gap band.
    """
    rows = []
    for run, history in histories.items():
        for record in history:
            for metric in METRIC_TITLES:
                for part, key in (("training", metric), ("validation", f"val_{metric}")):
                    if key in record:
                        rows.append(
                            {
                                "run": run,
                                "epoch": int(record["epoch"]),
                                "metric": metric,
                                "part": part,
                                "value": float(record[key]),
                            }
                        )
    return pd.DataFrame(rows, columns=["run", "epoch", "metric", "part", "value"])


def _curve_panel(
    frame: pd.DataFrame,
    metric: str,
    best_epochs: Mapping[str, int | None],
    references: Mapping[str, float],
    color: alt.Color,
) -> alt.LayerChart:
    rows = frame[frame["metric"] == metric]
    x = alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1))
    y = alt.Y("value:Q", title=METRIC_TITLES[metric], scale=alt.Scale(zero=False))
    wide = rows.pivot_table(index=["run", "epoch"], columns="part", values="value").reset_index()
    layers = []
    if {"training", "validation"} <= set(wide.columns):
        # The gap between training and validation: overfitting made visible.
        layers.append(
            alt.Chart(wide)
            .mark_area(opacity=0.15)
            .encode(x=x, y="training:Q", y2="validation:Q", color=color)
        )
    # Lines and their points in layers of their own: a line with point=True gets point symbols
    # in its legend, which hide the dash that tells training from validation.
    lines = alt.Chart(rows).encode(x=x, y=y, color=color, detail="part:N")
    layers.append(
        lines.mark_line().encode(
            strokeDash=alt.StrokeDash(
                "part:N",
                scale=PART_DASH,
                title=None,
                legend=alt.Legend(symbolStrokeColor="#44403c", **_LINE_SYMBOL),
            )
        )
    )
    layers.append(
        lines.mark_point(filled=True, size=30).encode(
            tooltip=["run:N", "epoch:Q", "part:N", alt.Tooltip("value:Q", format=".4f")]
        )
    )
    best = pd.DataFrame(
        [{"run": run, "epoch": epoch} for run, epoch in best_epochs.items() if epoch]
    )
    if not best.empty:
        layers.append(
            alt.Chart(best)
            .mark_rule(strokeDash=[2, 2])
            .encode(
                x="epoch:Q",
                color=color,
                tooltip=["run:N", alt.Tooltip("epoch:Q", title="best epoch")],
            )
        )
    if metric == "accuracy" and references:
        lines = pd.DataFrame(
            [{"reference": name, "value": value} for name, value in references.items()]
        )
        layers.append(
            alt.Chart(lines)
            .mark_rule(color="#57534e", strokeDash=[6, 2])
            .encode(y="value:Q", tooltip=["reference:N", alt.Tooltip("value:Q", format=".4f")])
        )
        layers.append(
            alt.Chart(lines)
            .mark_text(align="left", dx=4, dy=-6, color="#57534e", fontSize=11)
            .encode(y="value:Q", x=alt.value(0), text="reference:N")
        )
    return alt.layer(*layers).properties(width=360, height=260, title=metric)


def learning_curves(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    best_epochs: Mapping[str, int | None] | None = None,
    references: Mapping[str, float] | None = None,
    small_multiples: bool = False,
) -> alt.VConcatChart | alt.HConcatChart:
    """Loss and accuracy per epoch, training (solid) against validation (dashed).

    Args:
        histories: run label to its per-epoch dicts.
        best_epochs: run label to its best epoch (a dotted rule); None for none.
        references: accuracy reference lines by name (test accuracy, a baseline).
        small_multiples: one row of panels per run instead of all runs overlaid.

    Returns:
        The chart: loss and accuracy side by side, the train/validation gap shaded.
    """
    best_epochs = best_epochs or {}
    references = references or {}
    frame = history_frame(histories)
    color = run_color(list(histories))
    if not small_multiples:
        return alt.hconcat(
            *(
                _curve_panel(frame, metric, best_epochs, references, color)
                for metric in METRIC_TITLES
            )
        )
    rows = []
    for run in histories:
        run_frame = frame[frame["run"] == run]
        run_best = {run: best_epochs.get(run)}
        rows.append(
            alt.hconcat(
                *(
                    _curve_panel(run_frame, metric, run_best, references, color)
                    for metric in METRIC_TITLES
                )
            ).properties(title=run)
        )
    return alt.vconcat(*rows)


# --- comparing runs ---------------------------------------------------------------------------

SIDE_BY_SIDE_COLUMNS = 3  # runs per row of panels; more runs wrap onto further rows


def _with_test_accuracies(
    panel: alt.LayerChart, test_accuracies: Mapping[str, float], color: alt.Color
) -> alt.LayerChart:
    """Add each run's test accuracy to an accuracy panel: a dotted line in the run's colour."""
    if not test_accuracies:
        return panel
    tests = pd.DataFrame(
        [{"run": run, "test accuracy": value} for run, value in test_accuracies.items()]
    )
    rule = (
        alt.Chart(tests)
        .mark_rule(strokeDash=[1, 3], strokeWidth=2)
        .encode(
            y="test accuracy:Q",
            color=color,
            tooltip=["run:N", alt.Tooltip("test accuracy:Q", format=".4f")],
        )
    )
    panel.layer = [*panel.layer, rule]
    return panel


def compared_curves(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    best_epochs: Mapping[str, int | None] | None = None,
    test_accuracies: Mapping[str, float] | None = None,
    references: Mapping[str, float] | None = None,
) -> alt.HConcatChart:
    """Several runs overlaid: loss and accuracy per epoch, each run's test accuracy marked.

    Args:
        histories: run label to its per-epoch dicts.
        best_epochs: run label to its best epoch (a dotted rule in the run's colour).
        test_accuracies: run label to its test accuracy (a dotted line in the run's colour).
        references: accuracy reference lines by name, for every run (a baseline).

    Returns:
        Loss and accuracy side by side, training solid and validation dashed, the gap shaded.
    """
    frame = history_frame(histories)
    color = run_color(list(histories))
    loss, accuracy = (
        _curve_panel(frame, metric, best_epochs or {}, references or {}, color)
        for metric in METRIC_TITLES
    )
    chart = alt.hconcat(loss, _with_test_accuracies(accuracy, test_accuracies or {}, color))
    return chart.configure_legend(labelLimit=400)  # run labels name what sets each run apart


def curves_side_by_side(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    best_epochs: Mapping[str, int | None] | None = None,
    test_accuracies: Mapping[str, float] | None = None,
    references: Mapping[str, float] | None = None,
    columns: int = SIDE_BY_SIDE_COLUMNS,
) -> alt.VConcatChart:
    """Small multiples: a column per run, its loss above its accuracy, axes shared per row.

    Args:
        histories: run label to its per-epoch dicts.
        best_epochs: run label to its best epoch (a dotted rule).
        test_accuracies: run label to its test accuracy, marked in that run's panel.
        references: accuracy reference lines by name, in every run's panel (a baseline).
        columns: runs per row; more runs wrap onto further rows.

    Returns:
        A grid: per group of `columns` runs, a row of loss panels over a row of accuracy
        panels, each titled by its run.
    """
    best_epochs = best_epochs or {}
    test_accuracies = test_accuracies or {}
    frame = history_frame(histories)
    runs = list(histories)
    color = run_color(runs)
    rows = []
    for start in range(0, len(runs), columns):
        for metric in METRIC_TITLES:
            panels = []
            for run in runs[start : start + columns]:
                panel = _curve_panel(
                    frame[frame["run"] == run],
                    metric,
                    {run: best_epochs.get(run)},
                    references or {},
                    color,
                )
                if metric == "accuracy" and run in test_accuracies:
                    panel = _with_test_accuracies(panel, {run: test_accuracies[run]}, color)
                # Three columns of 210 px fit a wide page beside the legend; a long label
                # ("1a2b3c4d · padding pre, ...") breaks into lines at its " · ".
                title = alt.TitleParams([*run.split(" · "), metric], fontSize=11, limit=260)
                panels.append(panel.properties(width=210, height=200, title=title))
            rows.append(alt.hconcat(*panels).resolve_scale(y="shared"))
    return alt.vconcat(*rows).configure_legend(labelLimit=400)


# --- predictions ------------------------------------------------------------------------------

# Named by what each curve scores, true of every model; the page's caption says which
# direction of an RNN reads which.
READING_COLORS = alt.Scale(domain=["words 1..i", "words i..n"], range=["#1d4ed8", "#c2410c"])
_PROBABILITY_AXIS = alt.Scale(domain=[0, 1])


def probability_histogram(histogram: pd.DataFrame, threshold: float) -> alt.LayerChart:
    """Test reviews by predicted probability, one colour per true label, the threshold marked.

    Args:
        histogram: `evaluation.probability_histogram` (bin_start, bin_end, label, count).
        threshold: the decision threshold; drawn as a rule.

    Returns:
        Overlaid bars for neg and pos with a rule at the threshold.
    """
    bars = (
        alt.Chart(histogram)
        .mark_rect(opacity=0.55)
        .encode(
            x=alt.X("bin_start:Q", scale=_PROBABILITY_AXIS, title="predicted probability of pos"),
            x2="bin_end:Q",
            y=alt.Y("count:Q", stack=None, title="test reviews"),
            y2=alt.datum(0),
            color=alt.Color("label:N", scale=LABEL_COLORS, title="true label"),
            tooltip=["label:N", "bin_start:Q", "bin_end:Q", alt.Tooltip("count:Q", format=",")],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        .mark_rule(color=MARK_COLOR, strokeDash=[4, 2])
        .encode(x="threshold:Q", tooltip=[alt.Tooltip("threshold:Q", format="g")])
    )
    return alt.layer(bars, rule).properties(height=260)


def confusion_frame(scores: Mapping[str, float]) -> pd.DataFrame:
    """The confusion matrix of `evaluation.threshold_metrics` as rows for a heatmap.

    Args:
        scores: `threshold_metrics`'s dict (tp, fp, tn, fn).

    Returns:
        Four rows of true ("neg"/"pos"), predicted ("neg"/"pos"), count and share (of all
        reviews).
    """
    counts = {
        ("neg", "neg"): scores["tn"],
        ("neg", "pos"): scores["fp"],
        ("pos", "neg"): scores["fn"],
        ("pos", "pos"): scores["tp"],
    }
    total = max(1, sum(counts.values()))
    return pd.DataFrame(
        [
            {"true": true, "predicted": predicted, "count": int(count), "share": count / total}
            for (true, predicted), count in counts.items()
        ]
    )


def confusion_matrix(scores: Mapping[str, float]) -> alt.LayerChart:
    """A 2 x 2 heatmap of true against predicted labels, each cell with its count.

    Args:
        scores: `evaluation.threshold_metrics`'s dict (tp, fp, tn, fn).

    Returns:
        The heatmap: cells shaded by count, labelled with count and share.
    """
    frame = confusion_frame(scores)
    frame["text"] = [
        f"{count:,} ({share:.1%})"
        for count, share in zip(frame["count"], frame["share"], strict=True)
    ]
    base = alt.Chart(frame).encode(
        x=alt.X("predicted:N", title="predicted", axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("true:N", title="true label"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("count:Q", scale=alt.Scale(scheme="blues"), legend=None),
        tooltip=[
            "true:N",
            "predicted:N",
            alt.Tooltip("count:Q", format=","),
            alt.Tooltip("share:Q", format=".1%"),
        ],
    )
    labels = base.mark_text(fontSize=14).encode(
        text="text:N",
        color=alt.when(alt.datum.share > 0.3)
        .then(alt.value("white"))
        .otherwise(alt.value("#1c1917")),
    )
    return alt.layer(cells, labels).properties(width=260, height=180)


def _operating_point(x: float, y: float, label: str) -> alt.Chart:
    point = pd.DataFrame({"x": [x], "y": [y], "label": [label]})
    return (
        alt.Chart(point)
        .mark_point(color=MARK_COLOR, filled=True, size=80)
        .encode(
            x="x:Q",
            y="y:Q",
            tooltip=["label:N", alt.Tooltip("x:Q", format=".3f"), alt.Tooltip("y:Q", format=".3f")],
        )
    )


def roc(curve: pd.DataFrame, auc: float, scores: Mapping[str, float]) -> alt.LayerChart:
    """The ROC curve with chance as a diagonal and the threshold's operating point.

    Args:
        curve: `evaluation.roc_curve`'s curve (fpr, tpr, threshold).
        auc: the area under the curve, for the title.
        scores: `evaluation.threshold_metrics` at the chosen threshold (the point).

    Returns:
        A layered line chart titled with the AUC.
    """
    line = (
        alt.Chart(curve)
        .mark_line(color="#c2410c")
        .encode(
            x=alt.X("fpr:Q", scale=_PROBABILITY_AXIS, title="false positive rate"),
            y=alt.Y("tpr:Q", scale=_PROBABILITY_AXIS, title="true positive rate (recall)"),
            tooltip=[alt.Tooltip(name, format=".3f") for name in ("fpr:Q", "tpr:Q", "threshold:Q")],
        )
    )
    chance = (
        alt.Chart(pd.DataFrame({"x": [0, 1], "y": [0, 1]}))
        .mark_line(color="#a8a29e", strokeDash=[4, 4])
        .encode(x="x:Q", y="y:Q")
    )
    false_positive_rate = scores["fp"] / max(1, scores["fp"] + scores["tn"])
    point = _operating_point(
        false_positive_rate, scores["recall"], f"threshold {scores['threshold']:g}"
    )
    return alt.layer(chance, line, point).properties(
        width=300, height=300, title=f"ROC curve: AUC {auc:.3f}"
    )


def precision_recall(
    curve: pd.DataFrame, average_precision: float, scores: Mapping[str, float]
) -> alt.LayerChart:
    """The precision-recall curve with the threshold's operating point.

    Args:
        curve: `evaluation.precision_recall_curve`'s curve (recall, precision, threshold).
        average_precision: its area (average precision), for the title.
        scores: `evaluation.threshold_metrics` at the chosen threshold (the point).

    Returns:
        A layered line chart titled with the average precision.
    """
    line = (
        alt.Chart(curve)
        .mark_line(color="#c2410c")
        .encode(
            x=alt.X("recall:Q", scale=_PROBABILITY_AXIS, title="recall"),
            y=alt.Y("precision:Q", scale=_PROBABILITY_AXIS, title="precision"),
            tooltip=[
                alt.Tooltip(name, format=".3f")
                for name in ("recall:Q", "precision:Q", "threshold:Q")
            ],
        )
    )
    point = _operating_point(
        scores["recall"], scores["precision"], f"threshold {scores['threshold']:g}"
    )
    return alt.layer(line, point).properties(
        width=300,
        height=300,
        title=f"Precision-recall: AUC (average precision) {average_precision:.3f}",
    )


def accuracy_by_length(table: pd.DataFrame) -> alt.Chart:
    """Accuracy per review-length bucket, truncated buckets in another colour.

    Args:
        table: `evaluation.accuracy_by_length` (bucket, lower, count, accuracy, truncated).

    Returns:
        A bar chart, buckets from short to long, empty buckets left out.
    """
    return (
        alt.Chart(table.dropna(subset=["accuracy"]))
        .mark_bar()
        .encode(
            x=alt.X(
                "bucket:N",
                sort=alt.EncodingSortField("lower"),
                title="review length (tokens)",
                axis=alt.Axis(labelAngle=0),
            ),
            y=alt.Y(
                "accuracy:Q",
                scale=_PROBABILITY_AXIS,
                axis=alt.Axis(format="%"),
                title="accuracy at 0.5",
            ),
            color=alt.Color(
                "truncated:N",
                scale=alt.Scale(domain=[False, True], range=["#15803d", "#c2410c"]),
                title="cut by max_length",
            ),
            tooltip=[
                "bucket:N",
                alt.Tooltip("count:Q", format=","),
                alt.Tooltip("accuracy:Q", format=".1%"),
                "truncated:N",
            ],
        )
        .properties(height=260)
    )


def prefix_predictions(prefixes: pd.DataFrame) -> alt.LayerChart:
    """The prediction word by word: after each prefix (forward) and from each suffix (backward).

    Args:
        prefixes: `evaluation.prefix_predictions` (position, word, probability_after_prefix,
            probability_from_suffix).

    Returns:
        Two lines against word position, the 0.5 boundary as a rule.
    """
    readings = {
        "probability_after_prefix": "words 1..i",
        "probability_from_suffix": "words i..n",
    }
    long = prefixes.melt(
        id_vars=["position", "word"],
        value_vars=list(readings),
        var_name="reading",
        value_name="probability",
    )
    long["reading"] = long["reading"].map(readings)
    lines = (
        alt.Chart(long)
        .mark_line(point=len(prefixes) <= 60)
        .encode(
            x=alt.X("position:Q", title="word position", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("probability:Q", scale=_PROBABILITY_AXIS, title="probability of pos"),
            color=alt.Color(
                "reading:N", scale=READING_COLORS, title=None, legend=alt.Legend(orient="bottom")
            ),
            tooltip=[
                "reading:N",
                "position:Q",
                "word:N",
                alt.Tooltip("probability:Q", format=".3f"),
            ],
        )
    )
    boundary = (
        alt.Chart(pd.DataFrame({"probability": [0.5]}))
        .mark_rule(color="#a8a29e", strokeDash=[4, 4])
        .encode(y="probability:Q")
    )
    return alt.layer(lines, boundary).properties(height=260)


# --- inside the RNN ---------------------------------------------------------------------------

# A unit's state: tanh and the LSTM's output lie in (-1, 1); red below 0, white at 0, blue
# above.
STATE_COLORS = alt.Scale(scheme="redblue", domain=[-1, 1], domainMid=0)
READS_COLORS = alt.Scale(
    domain=["word", "padding, read", "padding, skipped"], range=["#1d4ed8", "#f59e0b", "#d6d3d1"]
)
DIRECTION_DASHES = alt.Scale(
    domain=["forward", "backward", "one way", "mean of word vectors"],
    range=[[1, 0], [6, 3], [1, 0], [2, 2]],
)


def _step_axis(steps: int) -> alt.X:
    """The time axis of a review's charts: one band per step, labelled "step word"; labels
    that would overlap are left out."""
    return alt.X(
        "label:N",
        sort=None,  # the rows come in step order
        title="step: word (hover for each step)",
        axis=alt.Axis(labelAngle=-90, labelOverlap="greedy", labelLimit=90, ticks=steps <= 80),
    )


def hidden_state(states: pd.DataFrame, steps: pd.DataFrame, title: str) -> alt.VConcatChart:
    """One direction's hidden state along a review: what each step is (word, padding read,
    padding skipped), a heatmap of every unit at every step, and how far the state moves at
    each step.

    Args:
        states: `inside.state_frame` (step, label, unit, state): a row per step and unit (a
            500-step review of 64 units is 32,000 rows; Streamlit ships them as Arrow).
        steps: `inside.step_frame` (step, label, word, reads, change).
        title: the direction's name.

    Returns:
        Three charts stacked on one shared time axis.
    """
    count = len(steps)
    width = int(min(1100, max(360, 8 * count)))
    x = _step_axis(count)
    no_labels = alt.X("label:N", sort=None, axis=None)
    reads = (
        alt.Chart(steps, title=title)
        .mark_rect()
        .encode(
            x=no_labels,
            color=alt.Color("reads:N", scale=READS_COLORS, title="the step is"),
            tooltip=["step:Q", "word:N", "reads:N"],
        )
        .properties(width=width, height=10)
    )
    heatmap = (
        alt.Chart(states)
        .mark_rect()
        .encode(
            x=no_labels,
            y=alt.Y("unit:O", title="unit", axis=alt.Axis(labelOverlap="greedy")),
            color=alt.Color("state:Q", scale=STATE_COLORS, title="state"),
            tooltip=["step:Q", "word:N", "unit:Q", alt.Tooltip("state:Q", format=".3f")],
        )
        .properties(width=width, height=min(320, max(90, 4 * int(states["unit"].max() + 1))))
    )
    change = (
        alt.Chart(steps)
        .mark_line(point=count <= 80, color=MARK_COLOR)
        .encode(
            x=x,
            y=alt.Y("change:Q", title="‖h_t − h_before‖"),
            tooltip=["step:Q", "word:N", alt.Tooltip("change:Q", format=".3f")],
        )
        .properties(width=width, height=90)
    )
    return alt.vconcat(reads, heatmap, change, spacing=4).resolve_scale(
        x="shared", color="independent"
    )


def memory_curves(curves: pd.DataFrame, marks: pd.DataFrame) -> alt.LayerChart:
    """How strongly each run's output depends on the word vector at each distance back from
    where a direction finishes reading, on a log scale, with each run's memory reach marked.

    Args:
        curves: `inside.memory_frames`' curves (run, direction, kind, distance, gradient,
            reviews), zeros left out (a log scale has no place for them).
        marks: its marks (run, direction, distance, gradient): how far back each run's
            better direction stays at 1% of its peak (`MemoryProfile.reach`).

    Returns:
        A line per run and direction (dashed: backward), a point per run.
    """
    color = alt.Color(
        "run:N", title="run", legend=alt.Legend(orient="bottom", columns=1, labelLimit=0)
    )
    lines = (
        alt.Chart(curves)
        .mark_line()
        .encode(
            x=alt.X("distance:Q", title="steps back from where the direction finishes reading"),
            y=alt.Y(
                "gradient:Q",
                scale=alt.Scale(type="log"),
                title="gradient ÷ review mean",
            ),
            color=color,
            strokeDash=alt.StrokeDash("kind:N", scale=DIRECTION_DASHES, title="direction"),
            detail="direction:N",
            tooltip=[
                "run:N",
                "direction:N",
                "distance:Q",
                alt.Tooltip("gradient:Q", format=".3g"),
                alt.Tooltip("reviews:Q", title="reviews with this distance"),
            ],
        )
    )
    points = (
        alt.Chart(marks)
        .mark_point(size=90, filled=True, shape="diamond")
        .encode(
            x="distance:Q",
            y="gradient:Q",
            color=color,
            tooltip=[
                "run:N",
                "direction:N",
                alt.Tooltip("distance:Q", title="memory (steps)"),
            ],
        )
    )
    return alt.layer(lines, points).properties(height=340)


def unit_correlations(correlations: pd.DataFrame, chosen: int) -> alt.Chart:
    """Each unit's correlation with the model's logit across the test reviews, strongest
    first, the chosen unit outlined.

    Args:
        correlations: `UnitSearch.correlation_frame` (unit, correlation), NaN for units that
            never change.
        chosen: the unit shown below the chart.

    Returns:
        A bar per unit.
    """
    frame = correlations.dropna().assign(
        sign=lambda table: (table["correlation"] > 0).map({True: "pos", False: "neg"}),
        chosen=lambda table: table["unit"] == chosen,
    )
    return (
        alt.Chart(frame)
        .mark_bar(stroke="black")
        .encode(
            x=alt.X("unit:O", sort=None, title="unit (strongest correlation first)"),
            y=alt.Y(
                "correlation:Q", scale=alt.Scale(domain=[-1, 1]), title="correlation with logit"
            ),
            color=alt.Color("sign:N", scale=LABEL_COLORS, title="toward"),
            strokeWidth=alt.condition("datum.chosen", alt.value(2), alt.value(0)),
            tooltip=["unit:Q", alt.Tooltip("correlation:Q", format=".3f")],
        )
        .properties(height=200)
    )
