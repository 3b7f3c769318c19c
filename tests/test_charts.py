"""rnnkit.charts: each chart is a valid Vega-Lite spec of little data that marks the choice."""

from __future__ import annotations

import json
import math

import altair as alt
import numpy as np
import pandas as pd
import pytest

from rnnkit import charts, explore
from rnnkit.vocabulary import Vocabulary


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    """A vocabulary the size of IMDB's (80,000 words), Zipf-like counts."""
    counts = np.maximum(1, 300_000 // np.arange(1, 80_001))
    return Vocabulary([f"w{rank}" for rank in range(80_000)], counts, counts // 2 + 1)


def rows_shipped(chart: alt.TopLevelMixin) -> int:
    """How many data rows the chart's spec carries to the browser."""
    return sum(len(rows) for rows in chart.to_dict()["datasets"].values())


def layer_marks(spec: dict) -> list[str]:
    return [
        layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
        for layer in spec["layer"]
    ]


def test_default_data_transformer_keeps_its_row_guard():
    # The charts stay small; nothing in rnnkit lifts Altair's 5,000-row limit.
    assert alt.data_transformers.active == "default"
    assert alt.data_transformers.options.get("max_rows", 5000) == 5000


def test_top_words_is_one_bar_per_word(vocab):
    rows, _ = explore.vocabulary_table(vocab, 10000, limit=30)
    spec = charts.top_words(rows).to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["y"]["field"] == "word"
    assert rows_shipped(charts.top_words(rows)) == 30


def test_zipf_is_log_log_and_marks_the_cut(vocab):
    chart = charts.zipf(explore.zipf_points(vocab), vocab.words_kept(10000))
    spec = chart.to_dict()
    counts = spec["layer"][0]["encoding"]
    assert counts["x"]["scale"]["type"] == counts["y"]["scale"]["type"] == "log"
    assert layer_marks(spec) == ["line", "line", "rule"]
    assert rows_shipped(chart) <= 301  # thinned curve + the cut


def test_coverage_marks_the_chosen_num_words(vocab):
    covered = 1 - vocab.oov_rate(10000)
    chart = charts.coverage(explore.coverage_points(vocab), 10000, covered)
    spec = chart.to_dict()
    assert layer_marks(spec) == ["line", "rule", "point", "text"]
    assert spec["layer"][0]["encoding"]["x"]["scale"]["type"] == "log"
    choice = next(rows for rows in spec["datasets"].values() if len(rows) == 1)[0]
    assert choice["num_words"] == 10000
    assert choice["coverage"] == pytest.approx(covered)
    assert "<UNK>" in choice["label"]
    assert rows_shipped(chart) <= 301


@pytest.mark.parametrize(("num_words", "side"), [(10000, "right"), (100, "left"), (30, "left")])
def test_the_coverage_label_sits_at_the_foot_of_the_rule_away_from_the_curve(
    vocab, num_words, side
):
    # The curve rises from the bottom left: the foot of the rule, on its wider side, is clear.
    spec = charts.coverage(explore.coverage_points(vocab), num_words, 0.9).to_dict()
    text = spec["layer"][3]
    assert text["encoding"]["y"] == {"datum": 0}
    assert text["mark"]["align"] == side  # right-aligned: the label ends left of the rule
    assert (text["mark"]["dx"] < 0) == (side == "right")


def test_length_histogram_facets_splits_and_marks_max_length():
    rng = np.random.default_rng(0)
    groups = {
        f"{split} / {label}": rng.integers(5, 2500, 12_500)
        for split in ("train", "test")
        for label in ("neg", "pos")
    }
    for log_scale in (False, True):
        histogram = explore.length_histogram(groups, log_scale=log_scale)
        chart = charts.length_histogram(histogram, 500, log_scale)
        spec = chart.to_dict()
        assert spec["facet"]["column"]["field"] == "split"
        assert spec["facet"]["row"]["field"] == "label"  # neg and pos apart, not overlaid
        bars, rule = spec["spec"]["layer"]
        assert "opacity" not in bars["mark"]
        assert rule["encoding"]["x"]["datum"] == 500
        assert ("type" in bars["encoding"]["x"]["scale"]) == log_scale
        assert rows_shipped(chart) <= 4 * 51  # 50,000 lengths binned into <= 51 bins per group


def test_padded_batch_shows_pre_and_post_side_by_side():
    layout = explore.batch_layout(np.arange(40, 200, 10), max_length=100)  # 16 reviews
    chart = charts.padded_batch(layout)
    spec = chart.to_dict()
    assert spec["facet"]["column"]["field"] == "padding"
    assert spec["facet"]["column"]["sort"] == ["pre", "post"]
    assert spec["spec"]["mark"]["type"] == "rect"
    assert rows_shipped(chart) == len(layout) <= 2 * 16 * 2
    axis = spec["spec"]["encoding"]["x"]["axis"]
    assert axis["tickMinStep"] == 1 and axis["format"] == "d"  # no 0.5, 1.5 at max_length 6


def test_the_prefix_chart_names_its_curves_true_of_any_model():
    prefixes = pd.DataFrame(
        {
            "position": [1, 2],
            "word": ["good", "film"],
            "probability_after_prefix": [0.7, 0.6],
            "probability_from_suffix": [0.6, 0.5],
        }
    )
    spec = charts.prefix_predictions(prefixes).to_dict()
    assert spec["layer"][0]["encoding"]["color"]["scale"]["domain"] == ["words 1..i", "words i..n"]


# --- learning curves --------------------------------------------------------------------------

HISTORIES = {
    run: [
        {"epoch": epoch, "loss": 0.7 / epoch, "accuracy": 0.5 + 0.1 * epoch}
        | {"val_loss": 0.7, "val_accuracy": 0.55}
        for epoch in (1, 2, 3)
    ]
    for run in ("run a", "run b", "run c")
}


def encodings(spec: object) -> list[dict]:
    """Every `encoding` of a spec, however deeply its layers and panels nest."""
    if isinstance(spec, dict):
        found = [spec["encoding"]] if isinstance(spec.get("encoding"), dict) else []
        return found + [item for value in spec.values() for item in encodings(value)]
    if isinstance(spec, list):
        return [item for value in spec for item in encodings(value)]
    return []


def lab(color: str) -> tuple[float, float, float]:
    """An sRGB colour ("#rrggbb") in CIE L*a*b* (D65), where distance is perceived difference."""
    linear = [
        value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4
        for value in (int(color[index : index + 2], 16) / 255 for index in (1, 3, 5))
    ]
    x, y, z = (
        sum(weight * value for weight, value in zip(row, linear, strict=True)) / white
        for row, white in (
            ((0.4124, 0.3576, 0.1805), 0.95047),
            ((0.2126, 0.7152, 0.0722), 1.0),
            ((0.0193, 0.1192, 0.9505), 1.08883),
        )
    )
    f = [value ** (1 / 3) if value > 0.008856 else 7.787 * value + 16 / 116 for value in (x, y, z)]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def test_the_first_eight_run_colours_are_far_apart():
    first = [lab(color) for color in charts.RUN_COLORS[:8]]
    gaps = [math.dist(a, b) for index, a in enumerate(first) for b in first[index + 1 :]]
    assert min(gaps) > 25  # CIE76 ΔE: two blues of Tableau's pairs are 37 apart, these more


@pytest.mark.parametrize("draw", [charts.compared_curves, charts.curves_side_by_side])
def test_each_run_keeps_one_colour_in_every_panel_and_the_legends_show_lines(draw):
    chart = draw(HISTORIES, {"run b": 2}, {"run a": 0.6, "run c": 0.7}, {"baseline": 0.8})
    found = encodings(chart.to_dict())
    colours = [encoding["color"] for encoding in found if encoding.get("color", {}).get("field")]
    assert {colour["field"] for colour in colours} == {"run"}
    # Lines, the gap band, the best-epoch and test-accuracy rules: the same runs, same colours.
    assert len(colours) >= 4
    for colour in colours:
        assert colour["scale"] == {"domain": list(HISTORIES), "range": charts.RUN_COLORS}
        assert colour["legend"]["symbolType"] == "stroke"
    (dash,) = {json.dumps(encoding["strokeDash"]) for encoding in found if "strokeDash" in encoding}
    assert json.loads(dash)["legend"]["symbolType"] == "stroke"  # solid and dashed, as lines


def review_frames(time: int, units: int):
    """A review's step and state frames as `rnnkit.inside` makes them, for one direction."""
    from rnnkit import inside

    vocab = Vocabulary([f"w{rank}" for rank in range(50)], np.ones(50, int), np.ones(50, int))
    ids = np.zeros(time, np.int32)
    ids[: time // 2] = np.arange(time // 2) % 40 + 4  # words, then padding
    states = np.tanh(np.random.default_rng(0).normal(size=(time, units))).astype(np.float32)
    steps = inside.step_frame(inside.review_steps(ids, vocab, masked=True), states, False)
    return steps, inside.state_frame(steps, states)


def test_hidden_state_stacks_what_each_step_is_the_heatmap_and_the_change():
    steps, states = review_frames(20, 8)
    chart = charts.hidden_state(states, steps, "layer 1 forward")
    spec = chart.to_dict()
    reads, heatmap, _ = spec["vconcat"]
    assert [part["mark"]["type"] for part in spec["vconcat"]] == ["rect", "rect", "line"]
    assert heatmap["encoding"]["y"]["field"] == "unit"
    scale = heatmap["encoding"]["color"]["scale"]
    assert scale["domainMid"] == 0 and scale["domain"] == [-1, 1]  # diverging around 0
    assert spec["resolve"]["scale"]["x"] == "shared"  # one time axis for the three
    assert reads["encoding"]["color"]["scale"]["domain"][-1] == "padding, skipped"
    assert rows_shipped(chart) == 20 * 8 + 20  # the states, and the steps once for two charts


def test_hidden_state_of_500_steps_and_64_units_is_one_chart_streamlit_ships_whole():
    steps, states = review_frames(500, 64)
    chart = charts.hidden_state(states, steps, "layer 2 backward")
    # Streamlit ships the rows as Arrow without Altair's row guard; the guard stays on here.
    with alt.data_transformers.disable_max_rows():
        assert rows_shipped(chart) == 500 * 64 + 500
    assert alt.data_transformers.options.get("max_rows", 5000) == 5000


def test_memory_curves_are_on_a_log_scale_with_each_runs_reach_marked():
    import pandas as pd

    from rnnkit import inside

    curve = pd.DataFrame(
        {
            "direction": ["layer 1 forward"] * 4 + ["layer 1 backward"] * 4,
            "distance": [0, 1, 2, 3] * 2,
            "gradient": [4.0, 1.0, 0.02, 0.0, 4.0, 2.0, 0.5, 0.1],
            "reviews": [8, 8, 6, 2] * 2,
        }
    )
    profiles = {"a": inside.MemoryProfile(curve, 8), "b": inside.MemoryProfile(curve, 8)}
    curves, marks = inside.memory_frames(profiles)
    assert (curves["gradient"] > 0).all()  # a log scale has no place for 0
    assert marks["distance"].tolist() == [3, 3]  # the backward direction reaches farther
    spec = charts.memory_curves(curves, marks).to_dict()
    assert layer_marks(spec) == ["line", "point"]
    lines = spec["layer"][0]["encoding"]
    assert lines["y"]["scale"]["type"] == "log"
    assert lines["strokeDash"]["field"] == "kind"


def test_unit_correlations_leave_out_units_that_never_change():
    import pandas as pd

    frame = pd.DataFrame({"unit": [3, 0, 1, 2], "correlation": [0.9, -0.5, np.nan, 0.1]})
    chart = charts.unit_correlations(frame, chosen=0)
    assert rows_shipped(chart) == 3
    assert chart.to_dict()["encoding"]["y"]["scale"]["domain"] == [-1, 1]
