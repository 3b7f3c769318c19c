"""Words and their ids: tokenizing a review, the special ids and the vocabulary.

Encoding follows `keras.datasets.imdb`: id 0 is padding `<PAD>`, 1 starts every review
`<START>`, 2 stands for a word out of the vocabulary `<UNK>`, and 3 (up to `index_from`) is
never used `<UNUSED>`; a word of training-frequency rank r has id r + `index_from`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from types import EllipsisType
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

PAD_ID, START_ID, OOV_ID, UNUSED_ID = 0, 1, 2, 3
SPECIAL_TOKENS = {PAD_ID: "<PAD>", START_ID: "<START>", OOV_ID: "<UNK>", UNUSED_ID: "<UNUSED>"}

# Bump when the tokens a text gives change: cached corpora made by another version are rebuilt.
TOKENIZER_VERSION = 1

# --- tokenizing -------------------------------------------------------------------------------

_BREAK_BYTES = re.compile(rb"<br\s*/?>")
_BREAK_TEXT = re.compile(r"<br\s*/?>")
# An apostrophe is part of a word only between two letters or digits ("don't", "cameraman's").
_LONE_APOSTROPHE_BYTES = re.compile(rb"'(?:(?<![a-z0-9]')|(?![a-z0-9]))")
_WORD_TEXT = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_CURLY_APOSTROPHES = re.compile("[\u2019\u2018\u02bc]")
# ASCII reviews (about 90% of IMDB) take a byte-level path that gives the same tokens as
# _WORD_TEXT, several times faster: every byte but letters, digits, "'" and the document
# separator becomes a space.
_ASCII_WORD_BYTES = (
    bytes(byte if chr(byte).isalnum() or byte in b"'\x00" else ord(" ") for byte in range(128))
    + b" " * 128
)
DOCUMENT_SEPARATOR = b"\x00"  # leads each document in `tokenize_documents`' list


def _unicode_tokens(text: str) -> list[str]:
    text = _CURLY_APOSTROPHES.sub("'", _BREAK_TEXT.sub(" ", text.lower()))
    return _WORD_TEXT.findall(text)


def tokenize_documents(documents: Sequence[bytes]) -> tuple[list[bytes], list[int]]:
    """Tokens of many UTF-8 documents in one list, each document led by the separator.

    Returns:
        The tokens (bytes), and the documents' indices in the order their tokens appear there.
    """
    ascii_order = [index for index, document in enumerate(documents) if document.isascii()]
    other_order = [index for index, document in enumerate(documents) if not document.isascii()]
    blob = b"".join(
        b" \x00 " + documents[index].replace(DOCUMENT_SEPARATOR, b" ") for index in ascii_order
    ).lower()
    blob = _BREAK_BYTES.sub(b" ", blob).translate(_ASCII_WORD_BYTES)
    tokens = _LONE_APOSTROPHE_BYTES.sub(b" ", blob).split()
    for index in other_order:
        tokens.append(DOCUMENT_SEPARATOR)
        tokens.extend(" ".join(_unicode_tokens(documents[index].decode())).encode().split())
    return tokens, ascii_order + other_order


def tokenize(text: str) -> list[str]:
    """Split a review into words, as every rnnkit encoding does.

    Lower case; HTML line breaks (`<br />`) removed; a word is a run of letters or digits of any
    script, with apostrophes kept inside it ("don't", "cameraman's"; a curly ’ counts as ');
    everything else (punctuation, symbols, spaces) separates words.

    Args:
        text: the review.

    Returns:
        Its words, in order.
    """
    tokens, _ = tokenize_documents([text.encode()])
    return [token.decode() for token in tokens[1:]]


def plain_text(text: str) -> str:
    """A review's text on one line, to read in a table: its HTML line breaks (`<br />`) and
    runs of white space as single spaces.

    Args:
        text: the review as its file has it.

    Returns:
        The text, stripped.
    """
    return " ".join(re.sub(r"<br\s*/?>", " ", text, flags=re.IGNORECASE).split())


# --- vocabulary -------------------------------------------------------------------------------


class Vocabulary:
    """The training split's words with their ids, counts and coverage.

    A word of rank r (1 = most frequent in the training split) has id r + `index_from`; with
    `num_words` set, encoding maps ids of `num_words` or more to `<UNK>` (2).
    """

    def __init__(
        self,
        words: Sequence[str],
        word_counts: np.ndarray,
        document_counts: np.ndarray,
        num_words: int | None = 10000,
        index_from: int = 3,
    ) -> None:
        check_encoding(num_words, index_from)
        if not len(words) == len(word_counts) == len(document_counts):
            raise ValueError("words, word_counts and document_counts must have one entry each")
        self.words = list(words)  # words[r - 1] has rank r
        self.word_counts = np.asarray(word_counts, dtype=np.int64)  # occurrences in training
        self.document_counts = np.asarray(document_counts, dtype=np.int64)  # training reviews
        self.num_words = num_words
        self.index_from = index_from

    @cached_property
    def word_index(self) -> dict[str, int]:
        """Every training word to its id (before the `num_words` cut)."""
        return {word: rank + self.index_from for rank, word in enumerate(self.words, start=1)}

    @property
    def size(self) -> int:
        """How many ids encoded reviews use (0 to size - 1): an Embedding's `input_dim`."""
        full = len(self.words) + self.index_from + 1
        return full if self.num_words is None else min(full, self.num_words)

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return (
            f"Vocabulary({len(self.words)} training words, num_words={self.num_words}, "
            f"index_from={self.index_from})"
        )

    def word_to_id(self, word: str) -> int:
        """The id that encoding gives `word` (lower-cased): its own, or 2 if out of vocabulary."""
        word_id = self.word_index.get(word.strip().lower(), OOV_ID)
        return OOV_ID if word_id >= self.size else word_id

    def id_to_word(self, word_id: int) -> str:
        """The word for an id; special ids give `<PAD>`, `<START>`, `<UNK>` or `<UNUSED>`."""
        word_id = int(word_id)
        if word_id < 0 or word_id >= len(self.words) + self.index_from + 1:
            raise ValueError(
                f"id {word_id} is outside this vocabulary (0 to "
                f"{len(self.words) + self.index_from})"
            )
        if word_id <= self.index_from:
            return SPECIAL_TOKENS.get(word_id, SPECIAL_TOKENS[UNUSED_ID])
        return self.words[word_id - self.index_from - 1]

    def _rank(self, word: str) -> int | None:
        word_id = self.word_index.get(word.strip().lower())
        return None if word_id is None else word_id - self.index_from

    def count(self, word: str) -> int:
        """How often `word` occurs in the training split (0 if never)."""
        rank = self._rank(word)
        return 0 if rank is None else int(self.word_counts[rank - 1])

    def documents(self, word: str) -> int:
        """In how many training reviews `word` occurs."""
        rank = self._rank(word)
        return 0 if rank is None else int(self.document_counts[rank - 1])

    def encode(self, text: str, add_start: bool = True) -> np.ndarray:
        """Encode a text the way the dataset's reviews are encoded.

        Args:
            text: any text; see `tokenize` for how it is split into words.
            add_start: begin with the `<START>` id (1), as every review in the dataset does.

        Returns:
            An int32 array of ids.
        """
        ids = [self.word_to_id(word) for word in tokenize(text)]
        return np.array([START_ID, *ids] if add_start else ids, dtype=np.int32)

    def decode(self, ids: Sequence[int] | np.ndarray, skip_padding: bool = False) -> str:
        """The words of `ids`, separated by spaces, special ids shown as `<PAD>`, `<UNK>` ...

        Args:
            ids: token ids (a review, padded or not).
            skip_padding: leave out the `<PAD>` (0) ids.

        Returns:
            The decoded text.
        """
        return " ".join(
            self.id_to_word(word_id) for word_id in ids if not (skip_padding and word_id == PAD_ID)
        )

    @cached_property
    def _cumulative_counts(self) -> np.ndarray:
        return np.cumsum(self.word_counts)

    def coverage_curve(self) -> np.ndarray:
        """(len(vocab),) share of training-token occurrences covered by the top 1, 2, ... words."""
        total = self._cumulative_counts[-1] if len(self.words) else 0
        return self._cumulative_counts / total if total else np.zeros(len(self.words))

    def coverage(self, top_n: int) -> float:
        """Share of training-token occurrences that are one of the `top_n` most frequent words."""
        if top_n < 0:
            raise ValueError(f"top_n must be 0 or more, not {top_n}")
        if top_n == 0 or not len(self.words):
            return 0.0
        return float(self.coverage_curve()[min(top_n, len(self.words)) - 1])

    def words_kept(self, num_words: int | EllipsisType | None = ...) -> int:
        """How many words keep their own id under `num_words` (None: every word; default:
        this vocabulary's)."""
        num_words = self.num_words if num_words is ... else num_words
        if num_words is None:
            return len(self.words)
        return max(0, min(len(self.words), num_words - self.index_from - 1))

    def oov_rate(self, num_words: int | EllipsisType | None = ...) -> float:
        """Share of training-token occurrences that become `<UNK>` under `num_words` (None:
        every word; default: this vocabulary's)."""
        return 1.0 - self.coverage(self.words_kept(num_words))

    def table(self) -> pd.DataFrame:
        """One row per training word: id, word, count, documents, kept (id < num_words)."""
        import pandas as pd

        ids = np.arange(len(self.words)) + self.index_from + 1
        return pd.DataFrame(
            {
                "id": ids,
                "word": self.words,
                "count": self.word_counts,
                "documents": self.document_counts,
                "kept": ids < self.size,
            }
        )


def check_encoding(num_words: int | None, index_from: int) -> None:
    if isinstance(index_from, bool) or not isinstance(index_from, int) or index_from < 2:
        raise ValueError(
            f"index_from must be a whole number of at least 2 (ids 0-2 are <PAD>, <START> and "
            f"<UNK>), not {index_from!r}"
        )
    if num_words is not None and (
        isinstance(num_words, bool) or not isinstance(num_words, int) or num_words < index_from + 2
    ):
        raise ValueError(
            f"num_words must be None (every word) or a whole number of at least index_from + 2 "
            f"= {index_from + 2} (room for one word), not {num_words!r}"
        )
