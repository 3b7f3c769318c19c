"""Loading the reviews for every page: the shared cache, the download, and the sidebar.

`st.cache_resource` keeps one parsed dataset per (path, file state, num_words) for every
session of the server: the first visitor pays the load, later views are instant. Without
`RNNKIT_DATA`, the archive is downloaded once per server in a thread every session watches
under a progress bar.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from pathlib import Path

import streamlit as st

from rnnkit.config import DataConfig
from rnnkit.data import ImdbData, load_imdb
from rnnkit.settings import DATA_VARIABLE, get_settings
from rnnkit.sources import OFFICIAL_URL, DataError, DataWarning, download_imdb, download_path
from rnnkit.ui.untrusted import escape_markdown

NOTEBOOK = DataConfig()  # the notebook's num_words, max_length, padding and truncating


@st.cache_resource(
    show_spinner="Reading, tokenizing and counting the reviews (the first visit only)…",
    show_time=True,
    max_entries=2,
)
def _cached_imdb(path: str, state: tuple[int, int], num_words: int) -> ImdbData:
    # state is only part of the key: a replaced archive or folder loads afresh.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        data = load_imdb(num_words=num_words, path=path)
    # What the loader warned of (a damaged cache read again, say), for the sidebar to say.
    _LOAD_WARNINGS[id(data)] = [
        str(item.message) for item in caught if item.category is DataWarning
    ]
    return data


_LOAD_WARNINGS: dict[int, list[str]] = {}  # id of a cached ImdbData -> its load's DataWarnings


def file_state(path: str | os.PathLike | None) -> tuple[int, int]:
    """(size, modification time in ns) of a file or folder, (0, 0) when there is none: part of a
    cache key, so that a replaced file is read afresh."""
    try:
        stat = os.stat(path) if path else None
    except OSError:
        return (0, 0)
    return (stat.st_size, stat.st_mtime_ns) if stat else (0, 0)


class _Download:
    """The archive's download in a thread of its own, shared by every session: a rerun or a
    closed tab does not stop it, and every visitor meanwhile watches the same progress."""

    def __init__(self, url: str) -> None:
        self.received, self.total = 0, None  # bytes; total is None where the server won't say
        self.path: Path | None = None
        self.error: Exception | None = None  # raised again in each script that watches
        self.thread = threading.Thread(
            target=self._run, args=(url,), name="rnnkit-download", daemon=True
        )
        self.thread.start()

    def _run(self, url: str) -> None:
        try:
            self.path = download_imdb(url, on_progress=self._progress)
        except Exception as error:
            self.error = error

    def _progress(self, received: int, total: int | None) -> None:
        self.received, self.total = received, total


@st.cache_resource(show_spinner=False)
def _download(url: str) -> _Download:
    return _Download(url)


def _downloaded_archive() -> Path:
    """The downloaded archive; until it is there, the download's progress bar."""
    url = get_settings().data_url or OFFICIAL_URL
    target = download_path(url)
    if target.is_file():
        return target
    download = _download(url)
    bar = st.progress(0.0, text="Downloading the IMDB reviews (once per server)…")
    while download.thread.is_alive():
        received = f"{download.received / 1e6:.1f}"
        fraction = download.received / download.total if download.total else 0.0
        bar.progress(
            min(fraction, 1.0),
            text=f"Downloading the IMDB reviews (once per server): {received}"
            + (f" of {download.total / 1e6:.1f} MB" if download.total else " MB"),
        )
        time.sleep(0.25)
    bar.empty()
    _download.clear()  # finished: a later visit finds the file, or tries again after a failure
    if download.error is not None:
        raise download.error
    return download.path


def _source_key() -> tuple[str, tuple[int, int]]:
    data_path = get_settings().data_path
    path = str(data_path or _downloaded_archive())
    return path, file_state(path)


def _stop_with(error: DataError) -> None:
    st.error(f"**The IMDB reviews could not be loaded.** {escape_markdown(error)}")
    st.stop()


def load_data(num_words: int = NOTEBOOK.num_words) -> ImdbData:
    """The IMDB reviews for every page; on failure show the error with its fix and stop.

    Args:
        num_words: the vocabulary size of the encoding.

    Returns:
        The loaded `ImdbData` (shared by all sessions).
    """
    try:
        return _cached_imdb(*_source_key(), num_words)
    except DataError as error:
        _stop_with(error)


def clear_loaded_data() -> None:
    """Forget every loaded dataset of this server (the next page view loads afresh)."""
    _cached_imdb.clear()


def data_sidebar(num_words: int = NOTEBOOK.num_words) -> ImdbData:
    """Load the reviews under a status in the sidebar, then show where they came from.

    Args:
        num_words: the vocabulary size of the encoding.

    Returns:
        The loaded `ImdbData`; on failure the error is shown in the page and the script stops.
    """
    sidebar = st.sidebar
    sidebar.subheader("Data")
    status = sidebar.status("Loading the IMDB reviews…")
    try:
        # On a cache miss the loader's spinner, with its timer, shows in the page itself.
        data = _cached_imdb(*_source_key(), num_words)
    except DataError as error:
        status.update(label="The IMDB reviews could not be loaded", state="error")
        _stop_with(error)
    source = data.source
    how = "from the cache" if source.from_cache else "parsed"
    status.update(
        label=f"IMDB reviews ready ({how} in {source.load_seconds:.1f} s)",
        state="complete",
    )
    sidebar.caption(
        f"{source.kind}: `{source.path or 'keras.datasets.imdb'}`  \n"
        f"{len(data.train):,} train / {len(data.test):,} test reviews, "
        f"num_words {data.num_words:,}  \n"
        f"Set `{DATA_VARIABLE}` to change the source."
    )
    if source.replaced_reviews:
        sidebar.warning(f"{source.replaced_reviews} review(s) held bytes that are not UTF-8.")
    for message in _LOAD_WARNINGS.get(id(data), []):
        sidebar.warning(escape_markdown(message))
    return data
