"""The app's pages, in the sidebar's order: each one's script, title, icon and what it shows.

`app.py` builds its navigation from `PAGES` and Home links every page but itself from it, so a
new page shows in both. Icons are Streamlit's Material Symbols (`:material/name:`), drawn from a
font Streamlit serves itself: emoji need an emoji font, which many systems lack (Debian's
Chromium shows an empty box).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.navigation.page import StreamlitPage

APP_ICON = ":material/movie:"


@dataclass(frozen=True)
class PageInfo:
    """One page of the app."""

    script: str  # its file, relative to the app's root
    title: str
    icon: str  # `:material/<name>:`
    summary: str  # what it shows, after its title in Home's link


PAGES = (
    PageInfo(
        "views/home.py",
        "Home",
        ":material/home:",
        "what rnnkit is for, the dataset in numbers and the notebook's setup",
    ),
    PageInfo(
        "views/vocabulary.py",
        "Vocabulary",
        ":material/menu_book:",
        "the words, their ids and counts; what num_words keeps and loses",
    ),
    PageInfo(
        "views/reviews.py",
        "Reviews",
        ":material/rate_review:",
        "one review as text, ids, decoded words and the padded row",
    ),
    PageInfo(
        "views/lengths.py",
        "Lengths and padding",
        ":material/straighten:",
        "how long reviews are and what max_length costs",
    ),
    PageInfo(
        "views/train.py",
        "Train",
        ":material/model_training:",
        "configure a bidirectional RNN, see its size and cost, and train it",
    ),
    PageInfo(
        "views/curves.py",
        "Learning curves",
        ":material/show_chart:",
        "the runs' loss and accuracy per epoch side by side; the padding experiment",
    ),
    PageInfo(
        "views/inside.py",
        "Inside the RNN",
        ":material/neurology:",
        "the hidden state along a review, how far back each model remembers, what units do",
    ),
    PageInfo(
        "views/predictions.py",
        "Predictions",
        ":material/psychology:",
        "what a trained run says about any text, how it does on the test set, its nearest words",
    ),
)
HOME = PAGES[0]


def page_info(script: str) -> PageInfo:
    """The page whose script is `script` (e.g. "views/train.py")."""
    (found,) = [page for page in PAGES if page.script == script]
    return found


def navigation() -> StreamlitPage:
    """The app's navigation over `PAGES`, Home first and the default; the page to run."""
    return st.navigation(
        [
            st.Page(page.script, title=page.title, icon=page.icon, default=page is HOME)
            for page in PAGES
        ]
    )


def page_links() -> None:
    """A link to every page but Home, with its icon, title and what it shows."""
    for page in PAGES:
        if page is not HOME:
            st.page_link(page.script, label=f"**{page.title}**: {page.summary}", icon=page.icon)


def link_to(script: str, label: str) -> None:
    """A link to one page, with the page's icon."""
    st.page_link(script, label=label, icon=page_info(script).icon)
