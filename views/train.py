"""Train: configure the bidirectional RNN, see its size and cost, train it in the background.

A configuration trained once is never trained again: its results show at once. One that is
training (started from any session) shows its live progress; leaving the page stops nothing.
Runs that stopped part way (a server restart, a cancel) are listed to resume; damaged ones are
named with the fix.
"""

import streamlit as st

from rnnkit import ui

st.title("Train")
st.markdown(
    "Start from a preset, change any setting, and train. The server trains in the background "
    "and keeps every run: asking again for a trained configuration shows its results at once."
)

ui.active_jobs_panel()
summaries = ui.job_board().store.list_runs()
ui.stopped_runs_panel(summaries, ui.load_data())
ui.damaged_runs_warning(summaries)
config = ui.config_form()
if config is None:
    st.stop()
data = ui.load_data(config.data.num_words)

st.header("The model")
ui.model_overview(config, data)

st.header("The run")
ui.training_panel(config, data)
