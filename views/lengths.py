"""Lengths and padding: how long the reviews are, and what padding them to max_length costs."""

import streamlit as st

from rnnkit import charts, explore
from rnnkit.config import TrainingConfig
from rnnkit.sequences import length_stats, padding_report
from rnnkit.ui.loading import load_data
from rnnkit.ui.padding import padding_controls
from rnnkit.ui.untrusted import keep_in_url, number_from_url

data = load_data()

st.title("Lengths and padding")
st.markdown(
    "An RNN reads a batch step by step, so every review of a batch is padded with 0s (or cut) "
    "to one length. The notebook pads every review to 500 steps. Here: how long the reviews "
    "are, and what a choice of `max_length`, `padding` and `truncating` costs."
)
max_length, padding, truncating = padding_controls(explore.longest_review(data))

st.header("How long the reviews are")
log_scale = st.toggle("Log length axis", key="log_scale", bind="query-params")
histogram = explore.length_histogram(data.lengths_by_group(), log_scale=log_scale)
st.altair_chart(charts.length_histogram(histogram, max_length, log_scale), key="lengths_chart")
st.caption("Tokens per review, the start token included; the dashed rule is max_length.")
st.dataframe(length_stats(data.lengths_by_group()).round(1), key="length_percentiles")

st.header("What max_length costs")
batch_size = st.selectbox(
    "Batch size",
    (32, 64, 128, 256),
    index=2,
    key="batch_size",
    bind="query-params",
    help=f"The notebook's is {TrainingConfig().batch_size}.",
)
report = padding_report(data.train.lengths, max_length, padding, truncating, batch_size)
columns = st.columns(3)
columns[0].metric("Reviews truncated", f"{report.truncated_share:.1%}")
columns[1].metric("Tokens lost", f"{report.tokens_lost_share:.1%}")
columns[2].metric("Pad steps (wasted RNN work)", f"{report.pad_share:.1%}")
columns = st.columns(3)
columns[0].metric("Pad steps, length-grouped batches", f"{report.grouped_pad_share:.1%}")
columns[1].metric("Steps saved by grouping", f"{report.grouped_step_saving:.1%}")
columns[2].metric("Pad steps after the last word", f"{report.mean_steps_after_last_token:.1f}")
st.caption(
    f"The {len(data.train):,} training reviews in batches of {batch_size}. Length-grouped "
    f"batches put reviews of similar length together, so each batch is padded only to its "
    f"longest review (up to max_length); the last figure is the mean number of padding steps "
    f"a forward RNN reads after a review's last word."
)

st.header("One batch, padded")
last_batch = max(0, (len(data.train) - 1) // 16)
number_from_url("batch", 0, last_batch, 0)
batch = st.number_input(
    "Batch of 16 training reviews", min_value=0, max_value=last_batch, key="batch"
)
keep_in_url("batch", 0)
lengths = data.train.lengths[batch * 16 : (batch + 1) * 16]
st.altair_chart(charts.padded_batch(explore.batch_layout(lengths, max_length)), key="batch_chart")
st.markdown(
    "**Why `padding='post'` hurts without masking.** The forward RNN reads left to right and "
    "its last state is what the next layer sees. With post padding that last state comes after "
    "every padding step: a 100-word review padded to 500 hands on the state after 400 zeros, "
    "through which the RNN has to carry what it read, and a SimpleRNN forgets within tens of "
    "steps. Pre padding puts the zeros first, so the forward RNN ends on the review's last "
    "word; the backward RNN of a bidirectional layer then starts with the padding instead, "
    "but reads the words last. A `mask_zero=True` embedding makes the RNN skip padding either "
    "way."
)
