"""Ragged sequences, padding, length statistics and the padding report, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.sequences import (
    TokenSequences,
    forward_batches,
    length_grouped_batches,
    length_stats,
    pad,
    padding_report,
)


def test_token_sequences_index_slice_and_convert():
    sequences = TokenSequences.from_lists([[1, 5, 6], [1], [1, 7, 8, 9]])
    assert len(sequences) == 3
    assert sequences[2].tolist() == [1, 7, 8, 9]
    assert sequences.lengths.tolist() == [3, 1, 4]
    picked = sequences[np.array([2, 0])]
    assert isinstance(picked, TokenSequences)
    assert picked.to_list() == [[1, 7, 8, 9], [1, 5, 6]]
    assert sequences[1:].to_list() == [[1], [1, 7, 8, 9]]
    with pytest.raises(ValueError, match="read-only"):
        sequences[0][0] = 3


def test_pad_follows_keras_pre_and_post():
    sequences = TokenSequences.from_lists([[1, 2, 3, 4, 5], [1, 9]])
    assert pad(sequences, 3, padding="post", truncating="pre").tolist() == [[3, 4, 5], [1, 9, 0]]
    assert pad(sequences, 3, padding="pre", truncating="post").tolist() == [[1, 2, 3], [0, 1, 9]]
    padded = sequences.pad(6)
    assert padded.dtype == np.int32 and padded.shape == (2, 6)
    with pytest.raises(ValueError, match="padding must be 'pre' or 'post', not 'middle'"):
        pad(sequences, 3, padding="middle")
    with pytest.raises(ValueError, match="max_length must be a positive whole number, not 0"):
        pad(sequences, 0)


def test_padding_report_by_hand():
    lengths = np.array([2, 3, 5, 10])
    report = padding_report(lengths, max_length=4, padding="post", truncating="pre", batch_size=2)
    assert report.truncated_share == 0.5  # 5 and 10 are longer than 4
    assert report.tokens_lost_share == pytest.approx(7 / 20)  # 1 + 6 of 20 tokens
    assert report.pad_share == pytest.approx(3 / 16)  # kept 2+3+4+4 = 13 of 4 * 4 steps
    # Length-grouped batches [2, 3] and [4, 4] need 2 * 3 + 2 * 4 = 14 steps for 13 tokens.
    assert report.grouped_pad_share == pytest.approx(1 / 14)
    assert report.grouped_step_saving == pytest.approx(1 - 14 / 16)
    assert report.mean_steps_after_last_token == pytest.approx((2 + 1) / 4)
    pre = padding_report(lengths, max_length=4, padding="pre", batch_size=2)
    assert pre.mean_steps_after_last_token == 0.0
    assert pre.pad_share == report.pad_share


def test_padding_report_rejects_nonsense():
    with pytest.raises(ValueError, match="at least one sequence"):
        padding_report(np.array([], dtype=int))
    with pytest.raises(ValueError, match="truncating must be 'pre' or 'post'"):
        padding_report(np.array([3]), truncating="both")
    with pytest.raises(ValueError, match="batch_size must be a positive whole number"):
        padding_report(np.array([3]), batch_size=0)


def test_length_grouped_batches_cover_every_index_once():
    lengths = np.random.default_rng(0).integers(1, 600, size=1000)
    batches = length_grouped_batches(lengths, batch_size=32, seed=5)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    assert [len(batch) for batch in batches].count(32) == 31
    spreads = [int(lengths[b].max() - lengths[b].min()) for b in batches]
    assert max(spreads) < 60  # sorted by length: neighbours differ little
    again = length_grouped_batches(lengths, batch_size=32, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


def test_length_stats_table():
    table = length_stats({"train / pos": np.array([1, 2, 3, 4]), "test / neg": np.array([10])})
    assert table.loc["train / pos", "count"] == 4
    assert table.loc["train / pos", "mean"] == 2.5
    assert table.loc["train / pos", "p50"] == 2.5
    assert table.loc["test / neg", "max"] == 10
    with pytest.raises(ValueError, match="'empty' has no sequences"):
        length_stats({"empty": np.array([])})


def test_forward_batches_read_the_longest_first_under_a_mask_and_in_order_without():
    lengths = np.array([3, 9, 1, 7, 5, 2, 8])
    tokens = np.zeros((len(lengths), 10), np.int32)
    for row, length in enumerate(lengths):
        tokens[row, :length] = 5
    masked = forward_batches(tokens, 3, masked=True)
    assert sorted(np.concatenate(masked).tolist()) == list(range(len(lengths)))
    longest = [int(lengths[rows].max()) for rows in masked]
    assert longest == sorted(longest, reverse=True) and longest[0] == 9
    # Each batch holds neighbours in length order: read back to front, the lengths ascend.
    ascending = lengths[np.concatenate(masked[::-1])]
    assert ascending.tolist() == sorted(lengths.tolist())
    unmasked = forward_batches(tokens, 3, masked=False)
    assert [rows.tolist() for rows in unmasked] == [[0, 1, 2], [3, 4, 5], [6]]
