"""Token views: a review's text, its decoded ids as chips, and a padded row.

Every piece of text is escaped before it reaches the page's HTML. The boxes are as tall as
their review: a box that scrolls hides the end of a long review.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

import numpy as np
import streamlit as st

from rnnkit.explore import PaddedReview
from rnnkit.vocabulary import OOV_ID, PAD_ID, Vocabulary

TOKEN_STYLE = """<style>
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
</style>"""

_LINE_BREAK = re.compile(r"&lt;br\s*/?&gt;")


def review_text(text: str) -> None:
    """Show a review's original text, escaped, its `<br />` tags as line breaks."""
    body = _LINE_BREAK.sub("<br>", html.escape(text))
    st.html(f'{TOKEN_STYLE}<div class="rk-box">{body}</div>')


def chip(text: str, title: str, css_class: str = "", extra: str = "") -> str:
    """One token as an HTML chip: `text` and its hover `title` escaped; `extra` is markup."""
    class_attribute = f' class="{css_class}"' if css_class else ""
    return f'<span{class_attribute} title="{html.escape(title)}">{html.escape(text)}{extra}</span>'


def _token_chip(vocab: Vocabulary, word_id: int, show_ids: bool, css_class: str = "") -> str:
    word = vocab.id_to_word(word_id)
    if not css_class:
        special = "rk-special" if word_id <= vocab.index_from else ""
        css_class = {PAD_ID: "rk-pad", OOV_ID: "rk-unk"}.get(word_id, special)
    text = str(word_id) if show_ids else "·" if word_id == PAD_ID else word
    return chip(text, f"{word} (id {word_id})", css_class)


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
                chip(
                    "<UNK>",
                    f"'{original}' is out of the vocabulary (id 2)",
                    "rk-unk",
                    f"<small>{html.escape(original)}</small>",
                )
            )
        else:
            css_class = "rk-match" if word_id == match_id and word_id != OOV_ID else ""
            chips.append(_token_chip(vocab, word_id, show_ids=False, css_class=css_class))
    st.html(f'{TOKEN_STYLE}<div class="rk-box rk-tokens">{"".join(chips)}</div>')


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
    st.html(TOKEN_STYLE + "".join(parts))
