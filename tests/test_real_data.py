"""The data layer on the real Large Movie Review Dataset (RNNKIT_DATA; CI sets it)."""

from __future__ import annotations

import gzip
import tarfile
import warnings

import numpy as np
import pytest

from rnnkit import DataWarning, load_imdb, padding_report, tokenize
from rnnkit.sources import OFFICIAL_URL

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def imdb(real_data_path, real_cache):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RNNKIT_CACHE_DIR", str(real_cache))
        return load_imdb(num_words=10000, index_from=3, path=real_data_path)


def test_split_sizes_and_labels(imdb):
    assert (len(imdb.train), len(imdb.test)) == (25000, 24999)  # test/pos/7_9.txt is missing
    assert imdb.train.label_counts() == {"neg": 12500, "pos": 12500}
    assert imdb.test.label_counts() == {"neg": 12500, "pos": 12499}
    # Shuffled: the last fifth (model.fit's validation_split=0.2) holds both labels evenly.
    assert 0.45 < imdb.train.labels[-5000:].mean() < 0.55


def test_encoding_follows_keras_conventions(imdb):
    for split in (imdb.train, imdb.test):
        flat_starts = split.sequences.flat[split.sequences.starts]
        assert (flat_starts == 1).all()  # every sequence starts with <START>
        assert int(split.sequences.flat.max()) < 10000
        assert int(split.sequences.flat.min()) >= 1
    assert imdb.vocab.words[:3] == ["the", "and", "a"]
    assert imdb.vocab.word_to_id("the") == 4


def test_ratings_match_labels(imdb):
    positive = imdb.train.labels == 1
    assert (imdb.train.ratings[positive] >= 7).all()
    assert (imdb.train.ratings[~positive] <= 4).all()


def test_decode_of_encode_gives_back_the_words(real_data_path, real_cache, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE_DIR", str(real_cache))
    every_word = load_imdb(num_words=None, path=real_data_path)
    assert every_word.source.from_cache  # the module's load already parsed the archive
    vocab = every_word.vocab
    for index in range(0, 25000, 997):
        text = every_word.train.texts[index]
        ids = vocab.encode(text)
        assert ids.tolist() == every_word.train.sequences[index].tolist()
        assert vocab.decode(ids) == " ".join(["<START>", *tokenize(text)])


def test_out_of_vocabulary_rate_matches_the_encoded_data(imdb):
    flat = np.concatenate(list(imdb.train.sequences))
    words = flat[flat != 1]  # leave out the start tokens
    assert imdb.vocab.oov_rate() == pytest.approx(np.mean(words == 2))


def test_padding_report_on_the_notebook_setup(imdb):
    report = padding_report(imdb.train.lengths, max_length=500, padding="post", batch_size=128)
    kept = np.minimum(imdb.train.lengths, 500)
    assert report.pad_share == pytest.approx(1 - kept.sum() / (25000 * 500))
    assert 0.5 < report.pad_share < 0.6  # real tokens fill under half of the steps
    assert report.grouped_pad_share < 0.01
    assert report.truncated_share == pytest.approx(np.mean(imdb.train.lengths > 500))


def test_the_review_missing_from_this_copy_is_named(real_data_path, real_cache, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE_DIR", str(real_cache))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cached = load_imdb(num_words=10000, path=real_data_path)
    assert cached.source.from_cache  # the warning is kept with the cache
    said = [str(item.message) for item in caught if item.category is DataWarning]
    assert said == [
        f"{real_data_path}: test/pos holds 12,499 reviews where its urls_pos.txt lists 12,500 "
        f"(the official archive has 12,500 in each); 1 missing (review id 7). The reviews there "
        f"are used; for all of them, use the full aclImdb_v1.tar.gz ({OFFICIAL_URL})."
    ]


def test_the_archive_cut_at_a_file_boundary_warns(real_data_path, tmp_path, monkeypatch):
    """The issue's case: a .tar of this archive cut after a file in train/, no end marker."""
    monkeypatch.setenv("RNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    with tarfile.open(real_data_path, "r|gz") as archive:
        for index, member in enumerate(archive):
            if index == 49_000:  # in train/pos
                cut_at = member.offset
                break
    cut = tmp_path / "aclImdb_cut.tar"
    with gzip.open(real_data_path) as source, cut.open("wb") as target:
        target.write(source.read(cut_at))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        imdb = load_imdb(num_words=10000, path=cut)
    said = [str(item.message) for item in caught if item.category is DataWarning]
    assert len(imdb.train) < 25_000
    assert any(
        f"{cut} ends without tar's end-of-archive marker, after 49,000 files" in message
        for message in said
    ), said
