"""Streamlit glue shared by the pages: the cached loader, the sidebar, shared widgets and the
token views. The only Streamlit import.

`st.cache_resource` keeps one parsed dataset per (path, file state, num_words) for every
session of the server: the first visitor pays the load, later views are instant.

Widgets that shape a page's view are bound to the URL (`bind="query-params"`, the widget's key
naming the parameter): a copied URL reopens the same view, and a parameter with a bad value is
ignored, so the widget keeps its default.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence

import numpy as np
import streamlit as st

from rnnkit.config import DataConfig
from rnnkit.data import OOV_ID, PAD_ID, DataError, ImdbData, Vocabulary, load_imdb
from rnnkit.explore import PaddedReview
from rnnkit.sequences import SIDES
from rnnkit.settings import DATA_VARIABLE, get_settings

NOTEBOOK = DataConfig()  # the notebook's num_words, max_length, padding and truncating


@st.cache_resource(
    show_spinner="Reading, tokenizing and counting the reviews (the first visit only)…",
    show_time=True,
    max_entries=2,
)
def _cached_imdb(path: str | None, file_state: tuple[int, int], num_words: int) -> ImdbData:
    # file_state is only part of the key: a replaced archive or folder loads afresh.
    return load_imdb(num_words=num_words, path=path)


def _file_state(path: str | None) -> tuple[int, int]:
    try:
        stat = os.stat(path) if path else None
    except OSError:
        return (0, 0)
    return (stat.st_size, stat.st_mtime_ns) if stat else (0, 0)


def _source_key() -> tuple[str | None, tuple[int, int]]:
    data_path = get_settings().data_path
    path = str(data_path) if data_path else None
    return path, _file_state(path)


def _stop_with(error: DataError) -> None:
    st.error(f"**The IMDB reviews could not be loaded.** {error}")
    st.stop()


def _run_through_app() -> None:
    """Rerun through app.py when Streamlit ran a page file on its own.

    With a `pages/` folder beside app.py, Streamlit starts in its old multipage mode and keeps
    it until app.py's `st.navigation` has run once in the server process: until then a link
    straight to a page (a shared URL, the first visit after a restart) runs the page file alone,
    without app.py's layout, sidebar and navigation (streamlit/streamlit#10276 discusses it).
    Leaving that mode, as `st.navigation` does, and rerunning gives the page through app.py.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # another Streamlit layout: the page still works, on its own
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


def load_data(num_words: int = NOTEBOOK.num_words) -> ImdbData:
    """The IMDB reviews for every page; on failure show the error with its fix and stop.

    Call it first in a page: a page run without app.py reruns through it.

    Args:
        num_words: the vocabulary size of the encoding.

    Returns:
        The loaded `ImdbData` (shared by all sessions).
    """
    _run_through_app()
    try:
        return _cached_imdb(*_source_key(), num_words)
    except DataError as error:
        _stop_with(error)


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
    return data


def padding_controls(max_length_limit: int) -> tuple[int, str, str]:
    """max_length, padding and truncating, as the notebook's `pad_sequences` takes them.

    The same keys on every page, so the URL carries one choice from page to page.

    Args:
        max_length_limit: the slider's top (the longest review, at least the notebook's 500).

    Returns:
        (max_length, padding, truncating).
    """
    columns = st.columns([3, 1, 1])
    max_length = columns[0].slider(
        "max_length",
        1,
        max(max_length_limit, NOTEBOOK.max_length),
        NOTEBOOK.max_length,
        key="max_length",
        bind="query-params",
        help="Every review is padded or cut to this many steps (the notebook: 500).",
    )
    padding = columns[1].segmented_control(
        "padding",
        SIDES,
        default=NOTEBOOK.padding,
        required=True,
        key="padding",
        bind="query-params",
        help="Where the zeros go: before the words ('pre') or after them ('post', the notebook).",
    )
    truncating = columns[2].segmented_control(
        "truncating",
        SIDES,
        default=NOTEBOOK.truncating,
        required=True,
        key="truncating",
        bind="query-params",
        help="Which end of a longer review is dropped: its start ('pre', Keras' default) or end.",
    )
    return max_length, padding, truncating


# --- token views ------------------------------------------------------------------------------

_STYLE = """<style>
.rk-tokens { line-height: 1.9; font-size: 0.9rem; }
.rk-tokens span { display: inline-block; padding: 0 0.3em; margin: 1px; border-radius: 3px;
  background: #f5f5f4; line-height: 1.4; }
.rk-tokens .rk-special { background: #e0e7ff; color: #3730a3; }
.rk-tokens .rk-unk { background: #fde68a; color: #92400e; font-weight: 600; }
.rk-tokens .rk-unk small { font-weight: 400; color: #a16207; margin-left: 0.25em; }
.rk-tokens .rk-match { background: #bbf7d0; font-weight: 600; }
.rk-tokens .rk-pad { background: #d6d3d1; color: #78716c; min-width: 0.6em; padding: 0 0.1em; }
.rk-tokens .rk-cut { background: #fee2e2; color: #991b1b; text-decoration: line-through; }
.rk-box { border: 1px solid #d6d3d1; border-radius: 6px; padding: 0.3rem 0.5rem;
  margin: 0.2rem 0 0.6rem 0; }
.rk-box-cut { border-style: dashed; border-color: #fca5a5; }
.rk-caption { color: #78716c; font-size: 0.8rem; }
.rk-text { max-height: 16rem; overflow-y: auto; }
</style>"""

_LINE_BREAK = re.compile(r"&lt;br\s*/?&gt;")


def review_text(text: str) -> None:
    """Show a review's original text, escaped, its `<br />` tags as line breaks."""
    body = _LINE_BREAK.sub("<br>", html.escape(text))
    st.html(f'{_STYLE}<div class="rk-box rk-text">{body}</div>')


def _chip(text: str, title: str, css_class: str = "", extra: str = "") -> str:
    class_attribute = f' class="{css_class}"' if css_class else ""
    return f'<span{class_attribute} title="{html.escape(title)}">{html.escape(text)}{extra}</span>'


def _token_chip(vocab: Vocabulary, word_id: int, show_ids: bool, css_class: str = "") -> str:
    word = vocab.id_to_word(word_id)
    if not css_class:
        special = "rk-special" if word_id <= vocab.index_from else ""
        css_class = {PAD_ID: "rk-pad", OOV_ID: "rk-unk"}.get(word_id, special)
    text = str(word_id) if show_ids else "·" if word_id == PAD_ID else word
    return _chip(text, f"{word} (id {word_id})", css_class)


def decoded_review(
    vocab: Vocabulary,
    ids: np.ndarray,
    originals: Sequence[str] | None,
    match_id: int | None = None,
) -> None:
    """Show a review decoded from its ids, `<UNK>` marked with the word it replaced.

    Args:
        vocab: the vocabulary the ids were encoded with.
        ids: the review's ids, `<START>` first.
        originals: the original word behind each id after `<START>` (`explore.original_words`),
            or None where the source has no text.
        match_id: an id to highlight (the word searched for).
    """
    chips = []
    for position, word_id in enumerate(ids.tolist()):
        if word_id == OOV_ID and originals is not None and position > 0:
            original = originals[position - 1]
            chips.append(
                _chip(
                    "<UNK>",
                    f"'{original}' is out of the vocabulary (id 2)",
                    "rk-unk",
                    f"<small>{html.escape(original)}</small>",
                )
            )
        else:
            css_class = "rk-match" if word_id == match_id and word_id != OOV_ID else ""
            chips.append(_token_chip(vocab, word_id, show_ids=False, css_class=css_class))
    st.html(f'{_STYLE}<div class="rk-box rk-tokens rk-text">{"".join(chips)}</div>')


def padded_view(vocab: Vocabulary, review: PaddedReview, show_ids: bool) -> None:
    """Show a padded row (padding as grey cells) and, apart, the ids truncating cut off.

    Args:
        vocab: the vocabulary the ids were encoded with.
        review: `explore.padded_review`'s result.
        show_ids: show ids instead of words.
    """
    row = "".join(_token_chip(vocab, word_id, show_ids) for word_id in review.row.tolist())
    parts = [
        f'<div class="rk-caption">the row the model reads: {len(review.row):,} steps, '
        f"{review.tokens:,} tokens and {review.pad_steps:,} &lt;PAD&gt; "
        f"(padding='{review.padding}')</div>"
        f'<div class="rk-box rk-tokens">{row}</div>'
    ]
    if len(review.cut):
        cut = "".join(
            _token_chip(vocab, word_id, show_ids, "rk-cut") for word_id in review.cut.tolist()
        )
        where = "its first" if review.truncating == "pre" else "its last"
        cut_part = (
            f"<div class=\"rk-caption\">cut off (truncating='{review.truncating}'): {where} "
            f"{len(review.cut):,} tokens</div>"
            f'<div class="rk-box rk-box-cut rk-tokens">{cut}</div>'
        )
        parts.insert(0 if review.truncating == "pre" else 1, cut_part)
    st.html(_STYLE + "".join(parts))
