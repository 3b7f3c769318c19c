"""Home: what rnnkit is for, the dataset in numbers, the notebook's setup and the pages."""

import streamlit as st

from rnnkit.ui.loading import load_data
from rnnkit.ui.pages import page_links

data = load_data()
st.title("rnnkit: bidirectional RNNs on the IMDB reviews")
st.markdown(
    "A course notebook trains a bidirectional SimpleRNN on 25,000 IMDB reviews and gives up: "
    "one run takes too long on a CPU. This app shows what is in the data, what padding and "
    "truncation do to it, and trains and compares RNN settings with cached results."
)
summary = data.summary()

st.header("The dataset in numbers")
columns = st.columns(5)
columns[0].metric("Training reviews", f"{summary['train reviews']:,}")
columns[1].metric("Test reviews", f"{summary['test reviews']:,}")
columns[2].metric("Words in training", f"{summary['training words']:,}")
columns[3].metric("Median length (tokens)", f"{summary['median train length']:g}")
columns[4].metric("Mean length (tokens)", f"{summary['mean train length']:.1f}")
st.dataframe(
    {
        "split": ["train", "test"],
        "positive": [summary["train positive"], summary["test positive"]],
        "negative": [summary["train negative"], summary["test negative"]],
    },
    hide_index=True,
    column_config={
        "positive": st.column_config.NumberColumn(format="localized"),
        "negative": st.column_config.NumberColumn(format="localized"),
    },
    key="home_counts",
)
st.caption(
    f"Lengths of the training reviews, the start token included. With num_words = "
    f"{summary['num_words']:,}, {summary['train OOV rate']:.1%} of training words become "
    f"`<UNK>`."
)

st.header("The notebook's setup")
st.markdown(
    "- `keras.datasets.imdb`, 10,000 words, `index_from=3`: ids 0 `<PAD>`, 1 `<START>`, "
    "2 `<UNK>`, 3 unused, words from 4 by training frequency\n"
    "- every review padded or cut to 500 tokens, `padding='post'`\n"
    "- Embedding(10000, 16) → Bidirectional SimpleRNN(64, return_sequences) → "
    "Bidirectional SimpleRNN(64) → Dense(64, relu) → Dense(1, sigmoid): 203,393 parameters\n"
    "- 30 epochs, batch size 128, 20% of the training reviews for validation"
)

st.header("The pages")
page_links()
