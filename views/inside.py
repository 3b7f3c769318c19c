"""Inside the RNN: a trained run's hidden state along a review, how far back each of its
directions remembers (against other runs), and what its units respond to."""

import streamlit as st

from rnnkit.config import TrainConfig
from rnnkit.ui import inside
from rnnkit.ui.loading import load_data
from rnnkit.ui.runs import run_picker

st.title("Inside the RNN")
st.markdown(
    "A recurrent layer carries a state from step to step, "
    "$s_t = \\tanh(W s_{t-1} + U x_t)$: each word changes it, and what the model decides is "
    "read from the state the last step hands on. Here is that state for a trained run, how "
    "far back its output still depends on the words, and what single units of it track."
)
run = run_picker(load_data())
config = TrainConfig.from_dict(run.config)
data = load_data(config.data.num_words)
inspector = inside.run_inspector(run)

st.header("The state along a review")
if not inspector.has_rnn:
    st.info(
        "This run has no RNN: it averages the word vectors of each review (the mean of word "
        "vectors), so there is no state carried from step to step to show. Its memory below "
        "is flat: it weighs every position alike."
    )
else:
    review = inside.pick_review(run, data, config)
    if review is not None:
        inside.state_along_review(run, inspector, review, data)

st.header("How far back it remembers")
inside.memory_section(run, data)

if inspector.has_rnn:
    st.header("What a unit responds to")
    inside.unit_section(run, data, inspector, config)
