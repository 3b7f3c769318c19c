"""The padding controls: max_length, padding and truncating, as `pad_sequences` takes them.

The same keys on every page that shows them, so the URL carries one choice from page to page.
"""

from __future__ import annotations

import streamlit as st

from rnnkit.sequences import SIDES
from rnnkit.ui.loading import NOTEBOOK
from rnnkit.ui.untrusted import keep_in_url, number_from_url


def padding_controls(max_length_limit: int) -> tuple[int, str, str]:
    """max_length, padding and truncating, as the notebook's `pad_sequences` takes them.

    Args:
        max_length_limit: the slider's top (the longest review, at least the notebook's 500).

    Returns:
        (max_length, padding, truncating).
    """
    columns = st.columns([3, 1, 1])
    top = max(max_length_limit, NOTEBOOK.max_length)
    number_from_url("max_length", 1, top, NOTEBOOK.max_length)
    max_length = columns[0].slider(
        "max_length",
        1,
        top,
        key="max_length",
        help="Every review is padded or cut to this many steps (the notebook: 500).",
    )
    keep_in_url("max_length", NOTEBOOK.max_length)
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
    # A link with an empty value (`?padding=`) empties even a required choice: the default then.
    return max_length, padding or NOTEBOOK.padding, truncating or NOTEBOOK.truncating
