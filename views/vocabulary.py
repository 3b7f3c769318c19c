"""Vocabulary: the training words, their ids and counts, and what num_words keeps and loses."""

import streamlit as st

from rnnkit import charts, explore
from rnnkit.ui.loading import load_data
from rnnkit.ui.untrusted import escape_markdown, keep_in_url, number_from_url
from rnnkit.ui.vocabulary import embedding_neighbours

data = load_data()
vocab = data.vocab

st.title("Vocabulary")
st.markdown(
    f"Every word of the training reviews, ranked by how often it occurs (ties alphabetically). "
    f"A word's id is its rank + `index_from` ({vocab.index_from}): the most frequent word, "
    f"*{escape_markdown(vocab.words[0] if vocab.words else '-')}*, is {vocab.index_from + 1}. "
    f"Encoding with `num_words` keeps the ids below it; every other word becomes 2, `<UNK>`."
)
fewest_words, most_words = vocab.index_from + 2, max(explore.full_num_words(vocab), data.num_words)
number_from_url("num_words", fewest_words, most_words, data.num_words)
num_words = st.number_input(
    "num_words",
    min_value=fewest_words,
    max_value=most_words,
    step=1000,
    key="num_words",
    help=f"Figures on this page only; the reviews stay encoded with {data.num_words:,}.",
)
keep_in_url("num_words", data.num_words)
columns = st.columns(4)
columns[0].metric("Training words", f"{len(vocab):,}")
columns[1].metric("Words kept", f"{vocab.words_kept(num_words):,}")
columns[2].metric("Tokens covered", f"{vocab.coverage(vocab.words_kept(num_words)):.1%}")
columns[3].metric("Out of vocabulary", f"{vocab.oov_rate(num_words):.1%}")
st.altair_chart(
    charts.coverage(explore.coverage_points(vocab), num_words, 1 - vocab.oov_rate(num_words)),
    key="coverage_chart",
)
st.caption("Share of training tokens (word occurrences) that keep their own id, by num_words.")

st.header("Ids and look-ups")
left, right = st.columns(2)
left.table(explore.special_ids(vocab.index_from), hide_index=True)  # a table wraps its text
word = right.text_input("Word → id", key="word", bind="query-params", placeholder="great")
if word.strip():
    entry = explore.look_up_word(vocab, word, num_words)
    if entry.word_id is None:
        right.markdown(
            f"*{escape_markdown(entry.token)}* never occurs in the training reviews: encoded as 2."
        )
    else:
        fate = "kept" if entry.encoded_id == entry.word_id else "encoded as 2 (`<UNK>`)"
        right.markdown(
            f"*{escape_markdown(entry.token)}*: id **{entry.word_id:,}** (rank {entry.rank:,}), "
            f"**{entry.count:,}** times in {entry.documents:,} training reviews; {fate} "
            f"with num_words = {num_words:,}."
        )
number_from_url("id", 0, explore.full_num_words(vocab) - 1, vocab.index_from + 1)
word_id = right.number_input(
    "Id → word", min_value=0, max_value=explore.full_num_words(vocab) - 1, key="id"
)
keep_in_url("id", vocab.index_from + 1)
entry = explore.look_up_id(vocab, word_id, num_words)
if entry.special:
    right.markdown(f"{word_id} is `{entry.token}`, a special id (see the table).")
else:
    fate = "kept" if entry.encoded_id == entry.word_id else "becomes 2 (`<UNK>`)"
    right.markdown(
        f"{word_id:,} is *{escape_markdown(entry.token)}*: **{entry.count:,}** times in "
        f"{entry.documents:,} training reviews; {fate} with num_words = {num_words:,}."
    )
if word.strip():
    with right:
        embedding_neighbours(data, word)

st.header("The words")
columns = st.columns([3, 2, 1])
search = columns[0].text_input("Search words", key="search", bind="query-params")
sort_by = columns[1].selectbox("Sort by", explore.SORT_COLUMNS, key="sort", bind="query-params")
descending = columns[2].toggle("Descending", key="descending", bind="query-params")
rows, matches = explore.vocabulary_table(vocab, num_words, search, sort_by, descending)
counts = st.column_config.NumberColumn(format="localized")
st.dataframe(
    rows, hide_index=True, column_config={"count": counts, "documents": counts}, key="words_table"
)
st.caption(f"{len(rows):,} of {matches:,} matching words shown; `kept`: id < num_words.")

left, right = st.columns(2)
with left:
    st.subheader("The most frequent words")
    number_from_url("top_n", 5, 100, 30)
    top_n = st.slider("Words", 5, 100, key="top_n")
    keep_in_url("top_n", 30)
    top_rows, _ = explore.vocabulary_table(vocab, num_words, limit=top_n)
    st.altair_chart(charts.top_words(top_rows), key="top_words_chart")
with right:
    st.subheader("Zipf's law")
    st.altair_chart(
        charts.zipf(explore.zipf_points(vocab), vocab.words_kept(num_words)), key="zipf_chart"
    )
    st.caption(
        "Count against rank, both on log scales: nearly a straight line, as Zipf's law "
        "(dashed: count of the top word / rank) says. The rule marks the num_words cut."
    )
