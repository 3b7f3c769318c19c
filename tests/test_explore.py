"""rnnkit.explore: look-ups, searches, thinned curves, histograms and padded views."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit import explore, load_imdb
from rnnkit.sequences import pad
from rnnkit.vocabulary import OOV_ID, Vocabulary


@pytest.fixture
def tiny(tiny_archive):
    return load_imdb(path=tiny_archive)


def big_vocabulary(words: int = 80_000) -> Vocabulary:
    """A vocabulary the size of IMDB's, with Zipf-like counts."""
    counts = np.maximum(1, 300_000 // np.arange(1, words + 1))
    return Vocabulary([f"w{rank}" for rank in range(words)], counts, counts // 2 + 1)


def test_pad_row_is_exactly_keras_pad_sequences():
    sequences = [list(range(1, length + 1)) for length in range(0, 9)]
    for max_length in (1, 3, 5, 8, 10):
        for padding in ("pre", "post"):
            for truncating in ("pre", "post"):
                expected = pad(sequences, max_length, padding=padding, truncating=truncating)
                rows = [explore.pad_row(s, max_length, padding, truncating) for s in sequences]
                assert np.array_equal(np.stack(rows), expected), (max_length, padding, truncating)
                assert rows[0].dtype == expected.dtype == np.int32


def test_pad_row_rejects_bad_arguments():
    with pytest.raises(ValueError, match="padding"):
        explore.pad_row([1, 2], 3, padding="middle")
    with pytest.raises(ValueError, match="max_length"):
        explore.pad_row([1, 2], 0)


def test_padded_review_keeps_what_truncating_cut():
    review = explore.padded_review([1, 5, 6, 7, 8, 9], 4, padding="post", truncating="pre")
    assert review.row.tolist() == [6, 7, 8, 9]
    assert review.cut.tolist() == [1, 5]  # 'pre' drops the first tokens
    assert (review.tokens, review.pad_steps) == (4, 0)
    review = explore.padded_review([1, 5, 6, 7, 8, 9], 4, padding="post", truncating="post")
    assert review.cut.tolist() == [8, 9]
    review = explore.padded_review([1, 5], 4, padding="pre", truncating="pre")
    assert review.row.tolist() == [0, 0, 1, 5]
    assert (review.tokens, review.pad_steps, len(review.cut)) == (2, 2, 0)


def test_special_ids_cover_ids_below_the_first_word():
    table = explore.special_ids(3)
    assert table["id"].tolist() == [0, 1, 2, 3]
    assert table["token"].tolist() == ["<PAD>", "<START>", "<UNK>", "<UNUSED>"]
    assert explore.special_ids(5)["token"].tolist()[3:] == ["<UNUSED>"] * 3


def test_look_up_word_and_id(tiny):
    great = explore.look_up_word(tiny.vocab, " Great ", num_words=10000)
    assert (great.token, great.word_id, great.encoded_id, great.rank) == ("great", 5, 5, 2)
    assert (great.count, great.documents) == (4, 2)  # two reviews, twice each
    cut = explore.look_up_word(tiny.vocab, "great", num_words=5)  # keeps only id 4, "bad"
    assert (cut.word_id, cut.encoded_id) == (5, OOV_ID)
    unknown = explore.look_up_word(tiny.vocab, "gem", num_words=10000)  # only in the test split
    assert (unknown.word_id, unknown.encoded_id, unknown.count) == (None, OOV_ID, 0)
    assert explore.look_up_id(tiny.vocab, 4, 10000).token == "bad"
    start = explore.look_up_id(tiny.vocab, 1, 10000)
    assert (start.token, start.special) == ("<START>", True)
    with pytest.raises(ValueError, match="outside"):
        explore.look_up_id(tiny.vocab, 20, 10000)  # 16 words: ids 4 to 19
    assert explore.full_num_words(tiny.vocab) == 20


def test_vocabulary_table_searches_sorts_and_limits(tiny):
    rows, matches = explore.vocabulary_table(tiny.vocab, 10000)
    assert matches == len(rows) == 16
    assert rows["word"].tolist()[:3] == ["bad", "great", "a"]
    rows, matches = explore.vocabulary_table(tiny.vocab, 10000, search="IT")
    assert rows["word"].tolist() == ["it", "it's"] and matches == 2
    rows, _ = explore.vocabulary_table(tiny.vocab, 10000, sort_by="word")
    assert rows["word"].tolist()[:3] == ["a", "acting", "and"]
    rows, _ = explore.vocabulary_table(tiny.vocab, 6, sort_by="documents", descending=True)
    assert rows["word"].tolist()[:2] == ["a", "film"]  # 3 reviews each; id breaks the tie
    assert rows.set_index("word")["kept"].to_dict()["great"]  # id 5 < 6
    assert not rows.set_index("word")["kept"].to_dict()["a"]  # id 6
    rows, matches = explore.vocabulary_table(tiny.vocab, 10000, limit=5)
    assert (len(rows), matches) == (5, 16)
    with pytest.raises(ValueError, match="sort_by"):
        explore.vocabulary_table(tiny.vocab, 10000, sort_by="length")


def test_curves_are_thinned_to_a_few_hundred_points():
    vocab = big_vocabulary()
    zipf = explore.zipf_points(vocab, points=300)
    assert len(zipf) <= 300
    assert zipf["rank"].iloc[0] == 1 and zipf["rank"].iloc[-1] == 80_000
    assert zipf["count"].tolist() == vocab.word_counts[zipf["rank"] - 1].tolist()
    coverage = explore.coverage_points(vocab, points=300)
    assert len(coverage) <= 300
    assert coverage["num_words"].iloc[-1] == explore.full_num_words(vocab)
    assert coverage["coverage"].iloc[-1] == pytest.approx(1.0)
    assert coverage["coverage"].is_monotonic_increasing
    kept = int(coverage["words_kept"].iloc[10])
    assert coverage["coverage"].iloc[10] == pytest.approx(vocab.coverage(kept))


def test_word_id_of_takes_one_word(tiny):
    assert explore.word_id_of(tiny.vocab, "Great") == 5
    assert explore.word_id_of(tiny.vocab, "don't") == tiny.vocab.word_to_id("don't")
    assert explore.word_id_of(tiny.vocab, "gem") == OOV_ID
    assert explore.word_id_of(tiny.vocab, "great film") is None
    assert explore.word_id_of(tiny.vocab, "  ") is None


def test_matching_reviews_filters_by_label_and_word(tiny):
    train = tiny.train
    great = explore.matching_reviews(train, word_id=5)
    assert sorted(train.texts[i] for i in great) == [
        "A great film, great acting.",
        "Great story<br /><br />great fun!",
    ]
    acting = explore.matching_reviews(train, label=0, word_id=8)
    assert [train.texts[i] for i in acting] == ["A bad film. Bad acting, bad story."]
    assert explore.matching_reviews(train).tolist() == list(range(6))
    assert len(explore.matching_reviews(train, label=1)) == 3
    # The test split's reviews share the flat token array: they must not leak in.
    fun_in_test = explore.matching_reviews(tiny.test, word_id=tiny.vocab.word_to_id("fun"))
    assert [tiny.test.texts[i] for i in fun_in_test] == ["Great fun, a gem."]


def test_original_words_mark_what_became_unk(tiny):
    test = tiny.test
    index = next(i for i in range(len(test)) if test.texts[i].startswith("Great fun"))
    ids = test.sequences[index]
    originals = explore.original_words(test.texts[index], ids)
    assert originals == ["great", "fun", "a", "gem"]
    assert tiny.vocab.decode(ids) == "<START> great fun a <UNK>"
    assert explore.unknown_words(ids, originals) == ["gem"]
    assert explore.original_words(None, ids) is None
    assert explore.original_words("one two", ids) is None  # counts differ: no alignment
    assert explore.unknown_words(ids, None) == []
    assert explore.count_id(ids, OOV_ID) == 1


def test_length_histogram_counts_every_review(tiny):
    groups = tiny.lengths_by_group()
    histogram = explore.length_histogram(groups, bins=50)
    sums = histogram.groupby(["split", "label"])["count"].sum().to_dict()
    assert sums == {
        ("test", "neg"): 1,
        ("test", "pos"): 1,
        ("train", "neg"): 3,
        ("train", "pos"): 3,
    }
    assert set(histogram["end"] - histogram["start"]) == {1}  # lengths 4 to 8: whole numbers
    logged = explore.length_histogram(groups, bins=3, log_scale=True)
    assert logged.groupby("split")["count"].sum().to_dict() == {"test": 2, "train": 6}
    assert logged["start"].nunique() <= 3


def test_length_histogram_bins_real_sized_data_into_few_rows():
    rng = np.random.default_rng(0)
    groups = {
        "train / neg": rng.integers(10, 2500, 12_500),
        "test / pos": rng.integers(7, 2200, 12_500),
    }
    histogram = explore.length_histogram(groups, bins=50)
    assert len(histogram) <= 2 * 50
    assert histogram["count"].sum() == 25_000


def test_batch_layout_puts_padding_on_the_chosen_side():
    layout = explore.batch_layout(np.array([3, 7]), max_length=5)
    pre = layout[layout["padding"] == "pre"]
    assert pre[["review", "part", "start", "end"]].values.tolist() == [
        [0, "padding", 0, 2],
        [0, "tokens", 2, 5],
        [1, "tokens", 0, 5],  # 7 tokens cut to 5: no padding
    ]
    post = layout[layout["padding"] == "post"]
    assert post[["review", "part", "start", "end"]].values.tolist() == [
        [0, "tokens", 0, 3],
        [0, "padding", 3, 5],
        [1, "tokens", 0, 5],
    ]


def test_review_file_and_longest_review(tiny):
    name = explore.review_file(tiny.train, "train", 0)
    assert name.startswith("aclImdb/train/") and name.endswith(".txt")
    assert explore.longest_review(tiny) == 8  # "A bad film. Bad acting, bad story." + <START>
