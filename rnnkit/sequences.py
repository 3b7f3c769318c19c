"""Token-id sequences: a compact ragged container, lengths, padding and length-grouped batches.

Reviews have very different lengths (IMDB: from a handful of words to over 2,000). The course
notebook pads every review to 500 steps; this module measures what that costs (reviews cut,
tokens lost, steps spent on padding) and how much grouping reviews of similar length saves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, overload

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

Side = Literal["pre", "post"]
SIDES = ("pre", "post")
PERCENTILES = (5, 25, 50, 75, 90, 95, 99)


class TokenSequences(Sequence[np.ndarray]):
    """Variable-length token-id sequences stored as one flat array.

    `sequences[i]` is the i-th sequence (a read-only int32 view); indexing with a slice, a
    boolean mask or an index array gives a `TokenSequences` over the chosen sequences without
    copying tokens. 25,000 reviews take one array instead of 25,000 Python lists.
    """

    def __init__(self, flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> None:
        if len(starts) != len(lengths):
            raise ValueError(f"starts ({len(starts)}) and lengths ({len(lengths)}) differ")
        self.flat = flat  # (total_tokens,) all sequences' tokens
        self.starts = np.asarray(starts, dtype=np.int64)  # (n,) offset of each sequence in flat
        self.lengths = np.asarray(lengths, dtype=np.int64)  # (n,) tokens in each sequence

    @classmethod
    def from_lists(cls, sequences: Sequence[Sequence[int]]) -> TokenSequences:
        """Build from a list of token-id lists (as `keras.datasets.imdb.load_data` returns)."""
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        flat = np.fromiter(
            (token for sequence in sequences for token in sequence),
            dtype=np.int32,
            count=int(lengths.sum()),
        )
        return cls(flat, starts[: len(sequences)], lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...
    @overload
    def __getitem__(self, index: slice | np.ndarray | Sequence[int]) -> TokenSequences: ...
    def __getitem__(self, index):
        if isinstance(index, int | np.integer):
            start = self.starts[index]
            view = self.flat[start : start + self.lengths[index]]
            view.flags.writeable = False
            return view
        return TokenSequences(self.flat, self.starts[index], self.lengths[index])

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(len(self)):
            yield self[index]

    def __repr__(self) -> str:
        return f"TokenSequences({len(self)} sequences, {int(self.lengths.sum())} tokens)"

    def to_list(self) -> list[list[int]]:
        """The sequences as plain lists of ints, the way Keras' IMDB loader gives them."""
        return [sequence.tolist() for sequence in self]

    def pad(self, max_length: int, padding: Side = "pre", truncating: Side = "pre") -> np.ndarray:
        """Pad or cut every sequence to `max_length`; see `rnnkit.sequences.pad`."""
        return pad(self, max_length, padding=padding, truncating=truncating)


def _check_side(name: str, value: str) -> None:
    if value not in SIDES:
        raise ValueError(f"{name} must be 'pre' or 'post', not {value!r}")


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive whole number, not {value!r}")


def pad(
    sequences: Sequence[Sequence[int]],
    max_length: int,
    padding: Side = "pre",
    truncating: Side = "pre",
) -> np.ndarray:
    """Pad with 0 or cut each sequence to `max_length` tokens (`keras.utils.pad_sequences`).

    Args:
        sequences: token-id sequences (a `TokenSequences` or lists of ints).
        max_length: the length of every row of the result.
        padding: 'pre' puts the zeros before the tokens, 'post' after them.
        truncating: 'pre' drops the first tokens of a longer sequence, 'post' the last ones.

    Returns:
        An int32 array of shape (len(sequences), max_length).
    """
    _check_positive("max_length", max_length)
    _check_side("padding", padding)
    _check_side("truncating", truncating)
    from keras.utils import pad_sequences  # imported here: Keras loads TensorFlow (seconds)

    return pad_sequences(
        list(sequences), maxlen=max_length, dtype="int32", padding=padding, truncating=truncating
    )


def length_stats(lengths_by_group: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Describe the lengths of each group of sequences.

    Args:
        lengths_by_group: group name (e.g. "train / pos") to an array of sequence lengths.

    Returns:
        A DataFrame indexed by group, with columns count, mean, min, p5 ... p99, max.
    """
    import pandas as pd

    rows = {}
    for group, lengths in lengths_by_group.items():
        lengths = np.asarray(lengths)
        if len(lengths) == 0:
            raise ValueError(f"group {group!r} has no sequences to describe")
        row = {"count": len(lengths), "mean": float(lengths.mean()), "min": int(lengths.min())}
        for percentile, value in zip(PERCENTILES, np.percentile(lengths, PERCENTILES), strict=True):
            row[f"p{percentile}"] = float(value)
        row["max"] = int(lengths.max())
        rows[group] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, seed: int | None = 0, pool_batches: int | None = None
) -> list[np.ndarray]:
    """Split sequence indices into batches of similar length, in random batch order.

    Sorting by length (ties broken at random) and cutting the order into batches makes each
    batch need only as many steps as its longest member; shuffling the batches keeps the
    order of training random. With `pool_batches`, the sequences are shuffled first and sorted
    only within pools of `pool_batches * batch_size`, so that which sequences share a batch
    changes from one call (one epoch) to the next.

    Args:
        lengths: (n,) sequence lengths.
        batch_size: sequences per batch (the last batch of a pool may be smaller).
        seed: seeds the tie-breaking, the pools and the batch order; None keeps batches in
            length order (and ignores `pool_batches`).
        pool_batches: batches per pool; None sorts all sequences together.

    Returns:
        A list of index arrays that together hold every index once.
    """
    _check_positive("batch_size", batch_size)
    if pool_batches is not None:
        _check_positive("pool_batches", pool_batches)
    lengths = np.asarray(lengths)
    rng = np.random.default_rng(seed)
    if seed is None:
        pools = [np.arange(len(lengths))]
    else:
        shuffled = rng.permutation(len(lengths))
        size = len(lengths) if pool_batches is None else pool_batches * batch_size
        pools = [shuffled[start : start + size] for start in range(0, len(shuffled), size)]
    batches = []
    for pool in pools:
        order = pool[np.argsort(lengths[pool], kind="stable")]  # ties keep the random order
        batches += [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if seed is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


@dataclass(frozen=True)
class PaddingReport:
    """What padding and cutting to `max_length` does to a set of sequences."""

    max_length: int
    padding: Side
    truncating: Side
    batch_size: int
    sequences: int
    truncated_share: float  # share of sequences longer than max_length
    tokens_lost_share: float  # share of all real tokens cut off
    pad_share: float  # share of the steps of batches padded to max_length that are padding
    grouped_pad_share: float  # the same when batches group sequences of similar length
    mean_steps_after_last_token: float  # padding a forward RNN reads after the last real token

    @property
    def grouped_step_saving(self) -> float:
        """Share of the steps of max_length batches that length-grouped batches avoid."""
        kept_tokens = 1.0 - self.pad_share
        return 1.0 - kept_tokens / (1.0 - self.grouped_pad_share) if kept_tokens else 1.0


def forward_batches(tokens: np.ndarray, batch_size: int, masked: bool) -> list[np.ndarray]:
    """The rows of padded `tokens` in the batches a forward pass reads.

    Under a mask, rows of similar length (`length_grouped_batches` without a seed), the longest
    batch first: the arrays a pass makes for its first batch then serve every later one, where
    shortest first needed larger fresh ones, faulted in page by page, for almost every batch.
    Without a mask, the rows in order.

    Args:
        tokens: (n, time) padded token ids, 0 the padding.
        batch_size: rows per batch (the last batch may be smaller).
        masked: the model masks its padding, so a batch may be cut to its longest row.

    Returns:
        A list of index arrays that together hold every row once.
    """
    if masked:
        lengths = np.count_nonzero(tokens, axis=1)
        return length_grouped_batches(lengths, batch_size, seed=None)[::-1]
    _check_positive("batch_size", batch_size)
    return [
        np.arange(start, min(start + batch_size, len(tokens)))
        for start in range(0, len(tokens), batch_size)
    ]


def padding_report(
    lengths: np.ndarray,
    max_length: int = 500,
    padding: Side = "post",
    truncating: Side = "pre",
    batch_size: int = 128,
) -> PaddingReport:
    """Measure what padding and truncating to `max_length` costs. Defaults: the notebook's.

    Args:
        lengths: (n,) lengths of the sequences (tokens, the start token included).
        max_length: the length every sequence is padded or cut to.
        padding: 'pre' or 'post'; decides where a forward RNN meets the padding.
        truncating: 'pre' or 'post'; decides which end of a long review is lost.
        batch_size: sequences per batch, for the length-grouped figure.

    Returns:
        A `PaddingReport`.
    """
    _check_positive("max_length", max_length)
    _check_positive("batch_size", batch_size)
    _check_side("padding", padding)
    _check_side("truncating", truncating)
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) == 0:
        raise ValueError("padding_report needs at least one sequence length")
    kept = np.minimum(lengths, max_length)  # (n,) real tokens left after cutting
    total_tokens = int(lengths.sum())
    # Each length-grouped batch is padded only to its longest member.
    grouped_steps = sum(
        len(batch) * int(kept[batch].max())
        for batch in length_grouped_batches(kept, batch_size, seed=None)
    )
    trailing_pad = max_length - kept if padding == "post" else np.zeros_like(kept)
    return PaddingReport(
        max_length=max_length,
        padding=padding,
        truncating=truncating,
        batch_size=batch_size,
        sequences=len(lengths),
        truncated_share=float(np.mean(lengths > max_length)),
        tokens_lost_share=float((lengths - kept).sum() / total_tokens) if total_tokens else 0.0,
        pad_share=float(1.0 - kept.sum() / (len(lengths) * max_length)),
        grouped_pad_share=float(1.0 - kept.sum() / grouped_steps) if grouped_steps else 0.0,
        mean_steps_after_last_token=float(trailing_pad.mean()),
    )
