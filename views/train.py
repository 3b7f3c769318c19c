"""Train: configure the bidirectional RNN, see its size and cost, train it in the background.

A configuration trained once is never trained again: its results show at once. One that is
training (started from any session) shows its live progress; leaving the page stops nothing.
Runs that stopped part way (a server restart, a cancel) are listed to resume; damaged ones are
named with the fix.
"""

import streamlit as st

from rnnkit.ui import train
from rnnkit.ui.board import job_board
from rnnkit.ui.loading import load_data
from rnnkit.ui.runs import damaged_runs_warning

st.title("Train")
st.markdown(
    "Start from a preset, change any setting, and train. The server trains in the background "
    "and keeps every run: asking again for a trained configuration shows its results at once."
)

train.active_jobs_panel()
summaries = job_board().store.list_runs()
train.stopped_runs_panel(summaries, load_data())
damaged_runs_warning(summaries)
config = train.config_form()
if config is None:
    st.stop()
data = load_data(config.data.num_words)

st.header("The model")
train.model_overview(config, data)

st.header("The run")
train.training_panel(config, data)
