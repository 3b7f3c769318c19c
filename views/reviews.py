"""Reviews: one review as its text, its ids, its decoded words and the padded row."""

import random

import streamlit as st

from rnnkit import explore
from rnnkit.sources import LABEL_NAMES, SPLITS
from rnnkit.ui.loading import load_data
from rnnkit.ui.padding import padding_controls
from rnnkit.ui.tokens import decoded_review, padded_view, review_text
from rnnkit.ui.untrusted import escape_markdown, keep_in_url, number_from_url
from rnnkit.vocabulary import OOV_ID

data = load_data()
vocab = data.vocab


def start_over() -> None:
    """A new choice of reviews starts at its first review."""
    st.session_state["index"] = 0


def pick_at_random(matches: int) -> None:
    """Jump to one of the matching reviews, chosen at random."""
    st.session_state["index"] = random.randrange(matches)


st.title("Reviews")
st.markdown(
    "Pick a review by split, label and number (the number is its index among the reviews that "
    "match: `x_train[i]` when nothing is filtered, in the notebook's shuffled order), and see "
    "what the encoding and `pad_sequences` make of it."
)
columns = st.columns([1, 1, 2])
split_name = columns[0].segmented_control(
    "Split",
    SPLITS,
    default="train",
    required=True,
    key="split",
    bind="query-params",
    on_change=start_over,
)
label = columns[1].segmented_control(
    "Label",
    ("any", *LABEL_NAMES),
    default="any",
    required=True,
    key="label",
    bind="query-params",
    on_change=start_over,
)
word = columns[2].text_input(
    "Containing the word", key="word", bind="query-params", on_change=start_over
)
split_name, label = split_name or "train", label or "any"  # None after `?split=`: the default
split = data.split(split_name)
word_id = explore.word_id_of(vocab, word) if word.strip() else None
if word.strip() and word_id in (None, OOV_ID):
    st.warning(
        f"*{escape_markdown(word.strip())}* is not one word with an id of its own under "
        f"num_words = {data.num_words:,} (out-of-vocabulary words all became 2, `<UNK>`): try "
        f"another word."
    )
    st.stop()
matches = explore.matching_reviews(split, {"neg": 0, "pos": 1}.get(label), word_id)
if not len(matches):
    st.info("No review matches this choice.")
    st.stop()

columns = st.columns([2, 1, 3], vertical_alignment="bottom")
number_from_url("index", 0, len(matches) - 1, 0)
index = columns[0].number_input(
    f"Review (0 to {len(matches) - 1:,})", min_value=0, max_value=len(matches) - 1, key="index"
)
keep_in_url("index", 0)
columns[1].button("Random", key="random", on_click=pick_at_random, args=(len(matches),))
review_index = int(matches[index])
ids = split.sequences[review_index]
columns[2].caption(f"{len(matches):,} reviews match; this is `x_{split_name}[{review_index}]`")

columns = st.columns(4)
columns[0].metric("Label", explore.label_name(split.labels[review_index]))
if split.ratings is not None:
    columns[1].metric("Rating", f"{split.ratings[review_index]}/10")
columns[2].metric("Tokens", f"{len(ids):,}")
columns[3].metric("<UNK> tokens", f"{explore.count_id(ids, OOV_ID):,}")

text = split.texts[review_index] if split.texts is not None else None
if text is not None:
    st.subheader("The original text")
    st.caption(escape_markdown(explore.review_file(split, split_name, review_index)))
    review_text(text)
st.subheader("The ids")
st.code(" ".join(map(str, ids.tolist())), language=None, wrap_lines=True)
st.subheader("Decoded")
originals = explore.original_words(text, ids)
decoded_review(vocab, ids, originals, word_id)
unknown = explore.unknown_words(ids, originals)
if unknown:
    st.caption(f"Out of the vocabulary, so `<UNK>`: {escape_markdown(', '.join(unknown))}")

st.subheader("Padded and truncated")
max_length, padding, truncating = padding_controls(explore.longest_review(data))
show_ids = st.toggle("Show ids", key="show_ids", bind="query-params")
padded_view(vocab, explore.padded_review(ids, max_length, padding, truncating), show_ids)
