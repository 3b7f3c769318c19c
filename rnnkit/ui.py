"""Streamlit glue shared by the pages: cached loaders and the sidebar. The only Streamlit import.

`st.cache_resource` keeps one parsed dataset per (path, file state, num_words) for every
session of the server: the first visitor pays the load, later views are instant.
"""

from __future__ import annotations

import os

import streamlit as st

from rnnkit.data import DataError, ImdbData, load_imdb
from rnnkit.settings import DATA_VARIABLE, get_settings


@st.cache_resource(show_spinner=False, max_entries=2)
def _cached_imdb(path: str | None, file_state: tuple[int, int], num_words: int) -> ImdbData:
    # file_state is only part of the key: a replaced archive or folder loads afresh.
    return load_imdb(num_words=num_words, path=path)


def _file_state(path: str | None) -> tuple[int, int]:
    try:
        stat = os.stat(path) if path else None
    except OSError:
        return (0, 0)
    return (stat.st_size, stat.st_mtime_ns) if stat else (0, 0)


def load_data(num_words: int = 10000) -> ImdbData:
    """The IMDB reviews for every page; on failure show the error with its fix and stop.

    Args:
        num_words: the vocabulary size of the encoding.

    Returns:
        The loaded `ImdbData` (shared by all sessions).
    """
    data_path = get_settings().data_path
    path = str(data_path) if data_path else None
    try:
        with st.status("Loading the IMDB reviews…", expanded=False) as status:
            data = _cached_imdb(path, _file_state(path), num_words)
            how = "from the cache" if data.source.from_cache else "parsed"
            status.update(
                label=f"IMDB reviews ready ({how} in {data.source.load_seconds:.1f} s)",
                state="complete",
            )
    except DataError as error:
        st.error(f"**The IMDB reviews could not be loaded.** {error}")
        st.stop()
    return data


def source_sidebar(data: ImdbData) -> None:
    """Show in the sidebar where the data came from and its state."""
    source = data.source
    with st.sidebar:
        st.subheader("Data")
        st.caption(
            f"{source.kind}: `{source.path or 'keras.datasets.imdb'}`  \n"
            f"{len(data.train):,} train / {len(data.test):,} test reviews, "
            f"num_words {data.num_words:,}  \n"
            f"{'cached' if source.from_cache else 'parsed'} in {source.load_seconds:.1f} s; "
            f"set `{DATA_VARIABLE}` to change the source."
        )
        if source.replaced_reviews:
            st.warning(f"{source.replaced_reviews} review(s) held bytes that are not UTF-8.")
