"""Tokenizing: the documented rules, and the bytes fast path agreeing with the Unicode path."""

from __future__ import annotations

import random

from rnnkit import vocabulary as vocabulary_module
from rnnkit.vocabulary import plain_text, tokenize, tokenize_documents


def test_tokenize_follows_the_documented_rules():
    assert tokenize("Don't stop<br />the CAMERAMAN'S work!") == [
        "don't", "stop", "the", "cameraman's", "work",
    ]  # fmt: skip
    assert tokenize("'Quoted' words, it''s odd") == ["quoted", "words", "it", "s", "odd"]
    assert tokenize("Don’t: curly apostrophes count") == ["don't", "curly", "apostrophes", "count"]
    assert tokenize("Café Москва 東京 naïve 10/10 snake_case") == [
        "café", "москва", "東京", "naïve", "10", "10", "snake", "case",
    ]  # fmt: skip
    assert tokenize("") == []
    assert tokenize("... !!! <br/>") == []


def test_plain_text_puts_a_review_on_one_line():
    assert plain_text("Great.<br /><br />Really  great<br/>fun<BR>") == "Great. Really great fun"
    assert plain_text(" \n ") == ""


def test_ascii_fast_path_gives_the_same_tokens_as_the_unicode_path():
    alphabet = "ab Z9'_-.,!<>/\x00\t\nbr"
    generator = random.Random(7)
    documents = [
        "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 40)))
        for _ in range(500)
    ] + ["<br />x", "a'b''c 'd' e'", "<BR/>y<br>z"]
    tokens, order = tokenize_documents([text.encode() for text in documents])
    per_document, current = [], None
    for token in tokens:
        if token == b"\x00":
            current = []
            per_document.append(current)
        else:
            current.append(token.decode())
    by_index = dict(zip(order, per_document, strict=True))
    for index, text in enumerate(documents):
        assert by_index[index] == vocabulary_module._unicode_tokens(text), repr(text)
