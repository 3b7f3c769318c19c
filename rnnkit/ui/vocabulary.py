"""The Vocabulary page's Streamlit code (`views/vocabulary.py`): the nearest words of a word in
a trained run's embedding (the newest at first), read without loading TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from rnnkit import compare
from rnnkit.data import ImdbData
from rnnkit.runs import RunError, RunStore
from rnnkit.ui.runs import nearest_words_table, run_choice
from rnnkit.ui.untrusted import escape_markdown


@st.cache_resource(show_spinner=False, max_entries=2)
def _run_embedding(folder: str, run_id: str) -> np.ndarray:
    # Keyed by the run's folder too: two stores may hold the same run id.
    return RunStore(Path(folder).parent).load(run_id).embedding()


def embedding_neighbours(data: ImdbData, word: str) -> None:
    """The nearest words of `word` in the embedding of a complete run of these reviews, chosen
    in a select box kept in the URL (`?vocabulary_run=`; the newest at first); a note when no
    run is trained."""
    runs = compare.complete_runs(RunStore().list_runs(), data.fingerprint)
    if not runs:
        st.caption("Once a model is trained, its embedding's nearest words of this word show here.")
        return
    run_id = run_choice(
        runs,
        "vocabulary_run",
        "The complete runs trained on these reviews, newest first: whose embedding to search.",
    )
    try:
        run = RunStore().load(run_id)
    except RunError as error:  # deleted or damaged since it was listed
        st.caption(escape_markdown(error))
        return
    try:
        # The matrix alone: the Vocabulary page never waits for TensorFlow to load a model.
        matrix = _run_embedding(str(run.folder), run.run_id)
    except RunError as error:
        st.caption(escape_markdown(error))
        return
    st.markdown(f"**Nearest words** in the embedding of run `{run.run_id}` (cosine):")
    nearest_words_table(matrix, data.vocab, word)
