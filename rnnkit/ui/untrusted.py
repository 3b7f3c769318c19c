"""What a visitor or a URL supplies, made safe for the page: text shown as text, numbers parsed
once and clamped.

- `escape_markdown(text)`: visitor text for `st.markdown`, `st.info`, `st.caption`,
  `st.metric` and the other elements that read Markdown. Every ASCII punctuation character is
  backslash-escaped (CommonMark shows an escaped character as itself), so no link, image,
  emphasis, heading, HTML tag, `:color[...]` directive, `:emoji:` or `$math$` can be made of
  it. Line breaks become spaces, and white space at either end character references, so it
  cannot start a block of its own. Escapes do not stop GitHub's autolink literals, which
  Streamlit finds in the text after parsing (`https://...`, `www.` and `name@host` become
  links): an invisible WORD JOINER (U+2060) inside each `://`, after `www` and after `@`
  breaks them.
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
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # the other C0 and C1 controls
# Markdown drops white space at either end, and four spaces at the start make a code block.
_END_SPACES = re.compile(r"^\s+|\s+$")
WORD_JOINER = "\u2060"
# Where GitHub's autolink literals start: `http://`, `https://`, `www.`, `name@host`.
_AUTOLINK_SEAMS = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)


def escape_markdown(text: object) -> str:
    """`text` as Markdown that shows exactly its characters, on one line, and never a link.

    Args:
        text: anything; it is shown as `str(text)`.

    Returns:
        The escaped text, to put inside a Markdown string: line breaks (and tabs) shown as
        spaces, other control characters as U+FFFD (CommonMark shows a NUL so, and readers
        see none of them), and a WORD JOINER (U+2060,
        invisible) inside each `://`, after `www` and after `@` (see the module doc).
    """
    one_line = _CONTROLS.sub("\ufffd", _LINE_BREAKS.sub(" ", str(text)))
    unlinked = _AUTOLINK_SEAMS.sub(WORD_JOINER, one_line)
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", unlinked)
    return _END_SPACES.sub(
        lambda spaces: "".join(f"&#{ord(space)};" for space in spaces.group()), escaped
    )


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
