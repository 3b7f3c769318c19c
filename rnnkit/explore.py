"""What the explorer pages show, computed: look-ups, word searches, thinned curves, histograms
and padded views of the reviews.

Plain NumPy and pandas, no Streamlit: the pages read widgets, call these and render the result.
Every chart's data is kept small here (a few hundred points, binned lengths), so a page never
ships the whole vocabulary or every review length to the browser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rnnkit.data import ImdbData, Split
from rnnkit.sequences import SIDES, Side
from rnnkit.sources import LABEL_NAMES
from rnnkit.vocabulary import (
    OOV_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    START_ID,
    UNUSED_ID,
    Vocabulary,
    tokenize,
)

SORT_COLUMNS = ("id", "word", "count", "documents")
TABLE_ROWS = 1000  # rows of the word table sent to the browser; a search narrows them


# --- vocabulary -------------------------------------------------------------------------------


def full_num_words(vocab: Vocabulary) -> int:
    """The smallest `num_words` that keeps every training word (the highest id + 1)."""
    return len(vocab.words) + vocab.index_from + 1


def special_ids(index_from: int) -> pd.DataFrame:
    """The ids below the first word's, with their tokens and what they stand for.

    Args:
        index_from: the vocabulary's `index_from`; the most frequent word has id index_from + 1.

    Returns:
        A DataFrame with columns id, token, meaning: one row per id 0 to index_from.
    """
    meanings = {
        PAD_ID: "padding: fills a short review up to max_length",
        START_ID: "starts every review",
        OOV_ID: "a word whose id is num_words or more, or that never occurs in training",
    }
    rows = [
        (
            word_id,
            SPECIAL_TOKENS.get(word_id, SPECIAL_TOKENS[UNUSED_ID]),
            meanings.get(word_id, f"reserved, never used (index_from = {index_from})"),
        )
        for word_id in range(index_from + 1)
    ]
    return pd.DataFrame(rows, columns=["id", "token", "meaning"])


@dataclass(frozen=True)
class Entry:
    """One vocabulary entry, as a look-up shows it."""

    token: str  # the word, or <PAD>, <START>, <UNK>, <UNUSED> for a special id
    word_id: int | None  # the word's own id (rank + index_from); None if never in training
    encoded_id: int  # the id encoding gives it under num_words: word_id, or 2 (<UNK>)
    rank: int | None  # 1 = the most frequent training word; None for special ids and unknowns
    count: int  # occurrences in the training reviews
    documents: int  # training reviews it occurs in
    special: bool  # one of the ids 0 to index_from


def look_up_word(vocab: Vocabulary, word: str, num_words: int | None) -> Entry:
    """What encoding does with `word` under `num_words`.

    Args:
        vocab: the training vocabulary.
        word: one word (case and surrounding spaces are ignored).
        num_words: the encoding's num_words (None keeps every word).

    Returns:
        The word's `Entry`; a word never seen in training has word_id None and encoded_id 2.
    """
    token = word.strip().lower()
    word_id = vocab.word_index.get(token)
    if word_id is None:
        return Entry(token, None, OOV_ID, None, 0, 0, special=False)
    kept = num_words is None or word_id < num_words
    rank = word_id - vocab.index_from
    return Entry(
        token,
        word_id,
        word_id if kept else OOV_ID,
        rank,
        int(vocab.word_counts[rank - 1]),
        int(vocab.document_counts[rank - 1]),
        special=False,
    )


def look_up_id(vocab: Vocabulary, word_id: int, num_words: int | None) -> Entry:
    """The vocabulary entry of an id.

    Args:
        vocab: the training vocabulary.
        word_id: 0 to `full_num_words(vocab) - 1`.
        num_words: the encoding's num_words (None keeps every word).

    Returns:
        The id's `Entry`.

    Raises:
        ValueError: the id is outside the vocabulary.
    """
    token = vocab.id_to_word(word_id)  # raises ValueError out of range
    if word_id <= vocab.index_from:
        return Entry(token, word_id, word_id, None, 0, 0, special=True)
    return look_up_word(vocab, token, num_words)


def vocabulary_table(
    vocab: Vocabulary,
    num_words: int | None,
    search: str = "",
    sort_by: str = "id",
    descending: bool = False,
    limit: int = TABLE_ROWS,
) -> tuple[pd.DataFrame, int]:
    """The training words that contain `search`, sorted, at most `limit` of them.

    Args:
        vocab: the training vocabulary.
        num_words: decides the `kept` column (id < num_words; None keeps every word).
        search: keep words containing this text (case-insensitive); "" keeps every word.
        sort_by: one of `SORT_COLUMNS`.
        descending: sort from the highest value.
        limit: rows to return at most.

    Returns:
        The rows (columns id, word, count, documents, kept) and how many words matched.
    """
    if sort_by not in SORT_COLUMNS:
        raise ValueError(f"sort_by must be one of {SORT_COLUMNS}, not {sort_by!r}")
    table = vocab.table()
    table["kept"] = table["id"] < (num_words if num_words is not None else full_num_words(vocab))
    search = search.strip().lower()
    if search:
        table = table[table["word"].str.contains(search, regex=False)]
    if sort_by != "id" or descending:
        # id breaks ties, so equal counts keep their rank order.
        table = table.sort_values([sort_by, "id"], ascending=[not descending, True], kind="stable")
    return table.head(limit).reset_index(drop=True), len(table)


def _log_spaced(end: int, points: int) -> np.ndarray:
    """Distinct whole numbers from 1 to `end`, spaced evenly on a log scale (both ends in)."""
    if end < 1:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.round(np.geomspace(1, end, num=min(points, end))).astype(np.int64))


def zipf_points(vocab: Vocabulary, points: int = 300) -> pd.DataFrame:
    """Word count against rank, at log-spaced ranks: the data of a Zipf plot.

    Args:
        vocab: the training vocabulary.
        points: how many ranks to keep at most (the curve is smooth on a log scale).

    Returns:
        A DataFrame with columns rank, word, count and zipf (the count Zipf's law predicts from
        the most frequent word: count of rank 1 / rank).
    """
    ranks = _log_spaced(len(vocab.words), points)
    counts = vocab.word_counts[ranks - 1]
    return pd.DataFrame(
        {
            "rank": ranks,
            "word": [vocab.words[rank - 1] for rank in ranks],
            "count": counts,
            "zipf": vocab.word_counts[0] / ranks if len(ranks) else [],
        }
    )


def coverage_points(vocab: Vocabulary, points: int = 300) -> pd.DataFrame:
    """Share of training tokens that keep their own id, against num_words, log-spaced.

    Args:
        vocab: the training vocabulary.
        points: how many num_words values to keep at most.

    Returns:
        A DataFrame with columns num_words, words_kept and coverage (0 to 1); num_words runs
        from index_from + 2 (one word kept) to `full_num_words(vocab)` (every word kept).
    """
    words_kept = _log_spaced(len(vocab.words), points)
    curve = vocab.coverage_curve()
    return pd.DataFrame(
        {
            "num_words": words_kept + vocab.index_from + 1,
            "words_kept": words_kept,
            "coverage": curve[words_kept - 1] if len(words_kept) else [],
        }
    )


# --- reviews ----------------------------------------------------------------------------------


def word_id_of(vocab: Vocabulary, text: str) -> int | None:
    """The id the reviews' encoding gives a single word, or None if it is not one word.

    Args:
        vocab: the vocabulary the reviews were encoded with.
        text: what was typed; tokenized as reviews are ("Don't" is one word, "a b" two).

    Returns:
        The id (2 for a word out of the vocabulary), or None for "" or several words.
    """
    tokens = tokenize(text)
    return vocab.word_to_id(tokens[0]) if len(tokens) == 1 else None


def matching_reviews(
    split: Split, label: int | None = None, word_id: int | None = None
) -> np.ndarray:
    """The indices of a split's reviews with `label` that contain `word_id`, in split order.

    Args:
        split: the reviews.
        label: 0 negative, 1 positive, None both.
        word_id: a token id the review must contain; None any review.

    Returns:
        An int64 array of indices into the split.
    """
    keep = np.ones(len(split), dtype=bool) if label is None else split.labels == label
    if word_id is not None:
        sequences = split.sequences
        # The split's reviews are windows on one flat token array (train and test share it).
        positions = np.flatnonzero(sequences.flat == word_id)
        order = np.argsort(sequences.starts)
        starts = sequences.starts[order]
        owner = np.searchsorted(starts, positions, side="right") - 1  # (hits,) index into order
        inside = (owner >= 0) & (positions < starts[owner] + sequences.lengths[order][owner])
        contains = np.zeros(len(split), dtype=bool)
        contains[order[owner[inside]]] = True
        keep &= contains
    return np.flatnonzero(keep)


def original_words(text: str | None, ids: np.ndarray) -> list[str] | None:
    """The words of the original text behind each id after `<START>`, where they line up.

    Args:
        text: the review's original text, or None (the keras source has none).
        ids: the review's ids, `<START>` first.

    Returns:
        tokenize(text), one word per id after the first; None without a text or if the counts
        differ.
    """
    if text is None:
        return None
    words = tokenize(text)
    return words if len(words) == len(ids) - 1 else None


def unknown_words(ids: np.ndarray, originals: Sequence[str] | None) -> list[str]:
    """The original words that became `<UNK>`, in order of first appearance, each once."""
    if originals is None:
        return []
    found = dict.fromkeys(
        word for word, word_id in zip(originals, ids[1:], strict=True) if word_id == OOV_ID
    )
    return list(found)


def pad_row(
    ids: Sequence[int], max_length: int, padding: Side = "pre", truncating: Side = "pre"
) -> np.ndarray:
    """One review padded or cut to `max_length`: exactly `keras.utils.pad_sequences` for one
    sequence, without importing Keras (seconds) to show a single review.

    Args:
        ids: the review's ids.
        max_length: the row's length.
        padding: 'pre' puts the zeros first, 'post' last.
        truncating: 'pre' drops the first tokens of a longer review, 'post' the last ones.

    Returns:
        An int32 array of shape (max_length,).
    """
    if padding not in SIDES or truncating not in SIDES:
        raise ValueError(
            f"padding and truncating must be 'pre' or 'post', not {padding!r}, {truncating!r}"
        )
    if max_length < 1:
        raise ValueError(f"max_length must be a positive whole number, not {max_length!r}")
    ids = np.asarray(ids, dtype=np.int32)
    kept = ids[-max_length:] if truncating == "pre" else ids[:max_length]
    row = np.full(max_length, PAD_ID, dtype=np.int32)
    if len(kept):
        if padding == "post":
            row[: len(kept)] = kept
        else:
            row[max_length - len(kept) :] = kept
    return row


@dataclass(frozen=True)
class PaddedReview:
    """A review as the model sees it after padding and truncating, and what was cut off."""

    row: np.ndarray  # (max_length,) int32, the padded row
    tokens: int  # how many of the review's ids the row keeps
    cut: np.ndarray  # the ids that truncating dropped (may be empty)
    padding: Side  # the side of the row the padding is on
    truncating: Side  # the side of the review `cut` came from

    @property
    def pad_steps(self) -> int:
        """How many steps of the row are padding."""
        return len(self.row) - self.tokens


def padded_review(
    ids: Sequence[int], max_length: int, padding: Side, truncating: Side
) -> PaddedReview:
    """Pad or cut one review to `max_length`, keeping what was cut for display.

    Args:
        ids: the review's ids (no 0s: 0 is padding).
        max_length: the row's length.
        padding: 'pre' or 'post'.
        truncating: 'pre' or 'post'.

    Returns:
        A `PaddedReview`.
    """
    ids = np.asarray(ids, dtype=np.int32)
    row = pad_row(ids, max_length, padding, truncating)
    excess = max(0, len(ids) - max_length)
    cut = ids[:excess] if truncating == "pre" else ids[len(ids) - excess :]
    return PaddedReview(
        row=row, tokens=len(ids) - excess, cut=cut, padding=padding, truncating=truncating
    )


# --- lengths ----------------------------------------------------------------------------------


def longest_review(data: ImdbData) -> int:
    """The most tokens any review of either split has."""
    return int(max(data.train.lengths.max(initial=1), data.test.lengths.max(initial=1)))


def length_histogram(
    lengths_by_group: Mapping[str, np.ndarray], bins: int = 50, log_scale: bool = False
) -> pd.DataFrame:
    """Review lengths counted in shared bins, per group: a histogram's data, binned here.

    Args:
        lengths_by_group: "split / label" (as `ImdbData.lengths_by_group` names them) to lengths.
        bins: how many bins at most.
        log_scale: bins of equal width on a log scale (for a log length axis); else equal
            whole-number widths.

    Returns:
        A DataFrame with columns split, label, start, end (the bin [start, end)) and count: one
        row per group and bin.
    """
    everything = np.concatenate([np.asarray(lengths) for lengths in lengths_by_group.values()])
    low, high = int(everything.min()), int(everything.max()) + 1
    if log_scale:
        edges = np.unique(np.round(np.geomspace(low, high, bins + 1)))
    else:
        width = max(1, -(-(high - low) // bins))  # ceil: at most `bins` bins
        edges = np.arange(low, high + width, width)
    frames = []
    for group, lengths in lengths_by_group.items():
        split, _, label = group.partition(" / ")
        counts, _ = np.histogram(lengths, bins=edges)
        frames.append(
            pd.DataFrame(
                {
                    "split": split,
                    "label": label,
                    "start": edges[:-1],
                    "end": edges[1:],
                    "count": counts,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def batch_layout(lengths: np.ndarray, max_length: int) -> pd.DataFrame:
    """Where the tokens and the padding lie in one batch padded to `max_length`, pre and post.

    Args:
        lengths: (batch,) the batch's review lengths.
        max_length: the length of every row.

    Returns:
        A DataFrame with columns padding ('pre', 'post'), review (row number), part ('tokens',
        'padding'), start and end (steps [start, end)): one row per stretch of a row.
    """
    kept = np.minimum(np.asarray(lengths, dtype=np.int64), max_length)
    rows = []
    for padding in SIDES:
        for review, tokens in enumerate(kept.tolist()):
            pad_steps = max_length - tokens
            parts = [("padding", pad_steps), ("tokens", tokens)]
            step = 0
            for part, steps in parts if padding == "pre" else parts[::-1]:
                if steps:
                    rows.append((padding, review, part, step, step + steps))
                step += steps
    return pd.DataFrame(rows, columns=["padding", "review", "part", "start", "end"])


def count_id(ids: np.ndarray, word_id: int) -> int:
    """How many times `word_id` occurs in `ids`."""
    return int(np.count_nonzero(np.asarray(ids) == word_id))


def review_file(split: Split, split_name: str, index: int) -> str | None:
    """The aclImdb file a review came from ("aclImdb/train/pos/123_9.txt"), if known."""
    if split.review_ids is None or split.ratings is None:
        return None
    label = LABEL_NAMES[int(split.labels[index])]
    return f"aclImdb/{split_name}/{label}/{split.review_ids[index]}_{split.ratings[index]}.txt"


def label_name(label: int) -> str:
    """'neg' for 0, 'pos' for 1."""
    return LABEL_NAMES[int(label)]
