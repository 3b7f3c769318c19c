"""Learning curves: every stored run in a table; the picked runs' loss and accuracy per epoch,
their differences, their files; and the padding experiment, the course's lesson made visible.

The picked runs live in the URL (`?curves_runs=<run id>&curves_runs=...`), so a link shows the
same comparison; ids that are not stored runs are ignored.
"""

import streamlit as st

from rnnkit.ui import curves
from rnnkit.ui.board import job_board
from rnnkit.ui.pages import link_to
from rnnkit.ui.runs import damaged_runs_warning

st.title("Learning curves")
st.markdown(
    "The course's model learns its training reviews ever better while its validation loss "
    "turns up after a few epochs: it overfits. Pick runs to see where, against their test "
    "accuracy and a TF-IDF + logistic regression baseline."
)

summaries = job_board().store.list_runs()
if not summaries:
    st.info("No run is stored yet: train one on the Train page.")
    link_to("views/train.py", "Train a model")
    st.stop()
curves.runs_table(summaries)
damaged_runs_warning(summaries)
picked = curves.pick_runs(summaries)
curves.notice()
by_id = {summary.run_id: summary for summary in summaries}
runs = [by_id[run_id] for run_id in picked if run_id in by_id]
if not runs:
    st.info("Pick one or more runs to see their curves.")
    st.stop()

st.header("Loss and accuracy per epoch")
layout = st.segmented_control(
    "Layout",
    ["overlaid", "side by side"],
    default="overlaid",
    required=True,
    key="curves_layout",
    bind="query-params",
)
curves.run_curves(runs, side_by_side=layout == "side by side")

st.header("What differs")
curves.differences_table(runs)

st.header("Files")
for run in runs:
    curves.run_files(run)

st.header("The padding experiment")
st.markdown(
    "A recurrent layer reads the zeros of padding like any word: a pass that meets the words "
    "first ends on hundreds of zeros, which wash out what it remembered. Padding *after* the "
    "review (the course's `padding='post'`) does that to the forward pass, padding *before* it "
    "to the backward pass of a bidirectional layer; masking makes every layer skip the zeros. "
    "One click trains a run's configuration all three ways (each a normal run: one already "
    "trained is reused)."
)
base_id = st.selectbox(
    "Configuration to vary", [run.run_id for run in runs], key="curves_experiment_run"
)
curves.padding_experiment(by_id[base_id])
