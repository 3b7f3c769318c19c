"""What a visitor or a URL supplies, made safe for the page: text shown as text, numbers parsed
once and clamped.

- `escape_markdown(text)`: visitor text for `st.markdown`, `st.info`, `st.caption` and the
  other elements that read Markdown. Every ASCII punctuation character is backslash-escaped
  (CommonMark shows an escaped character as itself), so no link, image, emphasis, heading,
  HTML tag, `:color[...]` directive, `:emoji:` or `$math$` can be made of it; line breaks
  become spaces, so it cannot start a block of its own.
- `number_from_url(key, ...)`: a number widget's value from the URL's `?key=`, read with
  `rnnkit.parsing.clamp_number` (NaN, infinities, huge, negative and non-numeric values
  included), clamped into the widget's range or ignored with a short notice. Number widgets
  are not bound to the URL by Streamlit (`bind="query-params"`), whose parsing of such values
  raises; `keep_in_url` writes the value back instead.
"""

from __future__ import annotations

import re
import string

import streamlit as st

from rnnkit.parsing import NumberKind, clamp_number

_MARKDOWN_SPECIAL = re.compile("([" + re.escape(string.punctuation) + "])")
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\u2028\u2029]+")


def escape_markdown(text: object) -> str:
    """`text` as Markdown that shows exactly its characters (on one line).

    Args:
        text: anything; it is shown as `str(text)`.

    Returns:
        The escaped text, to put inside a Markdown string.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(text)))


def number_from_url(
    key: str, low: float, high: float, default: float, kind: NumberKind = "int"
) -> None:
    """Seed a number widget's state from the URL, once per session of the widget.

    Call it before the widget (`st.number_input(..., key=key)` without `value`), and
    `keep_in_url(key, default)` after it. A value the page cannot use is clamped into
    [low, high] or ignored, with a notice that names the parameter (never the value).

    Args:
        key: the widget's key, also the URL parameter's name.
        low, high: the widget's range.
        default: its value when the URL gives none (or none usable).
        kind: "int" or "float".
    """
    if key in st.session_state:
        st.session_state[key] = min(max(st.session_state[key], low), high)  # the range moved
        return
    value = default
    raw = st.query_params.get(key)
    if raw is not None:
        parsed, note = clamp_number(raw, low, high, kind)
        if parsed is not None:
            value = parsed
        if note:
            st.info(f"The link's {key} {note}.")  # the key is the page's own name
    st.session_state[key] = value


def keep_in_url(key: str, default: float) -> None:
    """Write a number widget's value to the URL (`?key=value`), or remove it at its default,
    so that a copied link reopens the same view."""
    value = st.session_state.get(key, default)
    if value == default:
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = str(value)
