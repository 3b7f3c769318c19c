"""rnnkit.ui.untrusted: text a visitor or a URL supplies reaches the page as text, and a number
from a URL is clamped into its widget's range or ignored with a notice.

Every page, opened with such values in each of its URL parameters: tests/test_page_inputs.py
(AppTest) and tests/test_browser.py (Chromium).
"""

from __future__ import annotations

import math
import re
import string
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from rnnkit.ui.untrusted import WORD_JOINER, escape_markdown
from tests.helpers import HOSTILE_TEXTS, render_markdown

# Characters that Markdown, GFM and Streamlit's extensions give a meaning.
MARKUP = st.text(alphabet=st.sampled_from([*string.punctuation, " ", "\n", "\t", "w", "h", "1"]))
# Whole pieces of markup, joined by spaces or nothing.
PIECES = st.lists(
    st.sampled_from(
        [*HOSTILE_TEXTS, "http://", "https://", "www.", "@", "evil.example", "    ", "\n", "#"]
    ),
    max_size=6,
).map("".join)


def shown_as(text: str) -> str:
    """What escape_markdown promises a reader sees: line breaks and tabs as one space, other
    control characters as U+FFFD, the word joiners it adds left out."""
    one_line = re.sub("[\r\n\t\v\f\u2028\u2029]+", " ", text)
    shown = "".join("\ufffd" if unicodedata.category(c) == "Cc" else c for c in one_line)
    return shown.replace(WORD_JOINER, "")


def unescaped_punctuation(markdown: str) -> list[str]:
    """The ASCII punctuation characters of `markdown` without a backslash before them, the
    character references at either end aside: Streamlit's `:color[...]`, `:emoji:`,
    `:material/...:` and `$math$` all need one."""
    inner = re.sub(r"^(?:&#\d+;)+|(?:&#\d+;)+$", "", markdown)
    found, position = [], 0
    while position < len(inner):
        if inner[position] == "\\" and position + 1 < len(inner):
            position += 2
            continue
        if inner[position] in string.punctuation:
            found.append(inner[position])
        position += 1
    return found


@settings(max_examples=300)
@given(st.one_of(st.text(), MARKUP, PIECES))
@example("[x](https://evil.example)")
@example("    four spaces make a code block")
@example(" \u00a0leading and trailing white space\u3000 ")
@example("mailto:me@evil.example and WWW.evil.example")
@example("a\x00b\x1f")
@example("")
def test_escaped_text_renders_as_exactly_its_characters_and_nothing_else(text):
    escaped = escape_markdown(text)
    rendered = render_markdown(escaped)
    assert rendered.blocks in ([], ["paragraph_open", "inline", "paragraph_close"])  # no heading
    assert set(rendered.inline) <= {"text"}  # no link, image, emphasis, code or line break
    assert rendered.targets == []  # no link, GFM's autolink literals included
    assert rendered.html == []
    assert unescaped_punctuation(escaped) == []
    assert rendered.text.replace(WORD_JOINER, "") == shown_as(text)


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_each_hostile_text_is_shown_as_itself(text):
    rendered = render_markdown(f"*{escape_markdown(text)}* is not a word")
    assert rendered.inline == ["em_open", "text", "em_close", "text"]  # the page's own markup
    assert rendered.text.replace(WORD_JOINER, "") == f"{text} is not a word"
    assert rendered.targets == []


def test_autolink_literals_are_broken_by_an_invisible_word_joiner():
    escaped = escape_markdown("see https://evil.example, www.evil.example or me@evil.example")
    assert escaped.count(WORD_JOINER) == 3
    assert render_markdown(escaped).targets == []
    assert render_markdown("see https://evil.example").targets == ["https://evil.example"]


def test_anything_is_shown_as_its_text():
    assert escape_markdown(3) == "3"
    assert escape_markdown(ValueError("'*x*' is bad")) == "\\'\\*x\\*\\' is bad"


def _number_page():
    import streamlit as st

    from rnnkit.ui.untrusted import keep_in_url, number_from_url

    high = st.session_state.get("high", 10)  # a test lowers it: the range moves
    number_from_url("count", 0, high, 4)
    st.number_input("count", min_value=0, max_value=high, key="count")
    number_from_url("share", 0.0, 1.0, 0.5, "float")
    st.slider("share", 0.0, 1.0, key="share")
    keep_in_url("count", 4)
    keep_in_url("share", 0.5)


def open_number_page(**query_params: str) -> AppTest:
    app = AppTest.from_function(_number_page, default_timeout=30)
    for name, value in query_params.items():
        app.query_params[name] = value
    app.run()
    assert not app.exception, app.exception
    return app


@pytest.mark.parametrize(
    ("count", "share", "used", "notes"),
    [
        ("7", "0.25", (7, 0.25), []),
        ("inf", "-inf", (10, 0.0), ["count is out of range", "share is out of range"]),
        ("1e400", "nan", (10, 0.5), ["count is out of range", "share is not a number"]),
        ("-3", "2", (0, 1.0), ["count is out of range", "share is out of range"]),
        ("２", "0x1", (4, 0.5), ["count is not a number", "share is not a number"]),
        ("2.6", "0.5", (3, 0.5), ["count is not a whole number: 3 is used"]),
    ],
)
def test_a_number_from_the_url_is_clamped_or_ignored_with_a_notice(count, share, used, notes):
    app = open_number_page(count=count, share=share)
    assert (app.number_input(key="count").value, app.slider(key="share").value) == used
    shown = [info.value for info in app.info]
    assert len(shown) == len(notes)
    for note, info in zip(notes, shown, strict=True):
        assert note in info
        assert count not in info.replace(note, "")  # the value itself is never shown


def test_the_value_goes_back_to_the_url_and_leaves_it_at_the_default():
    app = open_number_page(count="inf")
    assert app.query_params["count"] == "10"
    app.number_input(key="count").set_value(4).run()
    assert "count" not in app.query_params
    app.slider(key="share").set_value(0.75).run()
    assert app.query_params["share"] == "0.75"


def test_a_range_that_moves_clamps_the_value_kept_in_the_session():
    app = open_number_page(count="9")
    app.session_state["high"] = 5
    app.run()
    assert app.number_input(key="count").value == 5
    assert math.isclose(app.slider(key="share").value, 0.5)
