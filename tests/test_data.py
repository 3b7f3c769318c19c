"""The data layer on tiny corpora written here: encoding, vocabulary, cache, errors."""

from __future__ import annotations

import os
import random
import warnings

import numpy as np
import pytest

import rnnkit
from rnnkit import data as data_module
from rnnkit.data import load_imdb
from rnnkit.sources import DataError, DataWarning
from rnnkit.vocabulary import tokenize
from tests.helpers import TINY_RANKED, TINY_REVIEWS, write_archive, write_corpus

TINY_TRAINING_TOKENS = 29


def test_tiny_folder_loads_with_keras_conventions(tiny_folder):
    imdb = load_imdb(path=tiny_folder, seed=None)
    assert (len(imdb.train), len(imdb.test)) == (6, 2)
    assert imdb.train.label_counts() == {"neg": 3, "pos": 3}
    assert imdb.vocab.words == TINY_RANKED
    # seed=None keeps file order: label 0 (neg) first, then by review id.
    assert imdb.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert imdb.train.ratings.tolist() == [2, 1, 3, 9, 8, 10]
    assert imdb.train.review_ids.tolist() == [0, 1, 2, 0, 1, 2]
    # "A bad film. Bad acting, bad story." -> a=6, bad=4, film=7, acting=8, story=10
    assert imdb.train.sequences[0].tolist() == [1, 6, 4, 7, 4, 8, 4, 10]
    assert imdb.train.texts[0] == "A bad film. Bad acting, bad story."
    # Test-only words ("gem", "awful") are out of the vocabulary.
    assert imdb.test.sequences[1].tolist() == [1, 5, 15, 6, 2]
    assert imdb.test.sequences[0].tolist() == [1, 14, 12, 2]


def test_num_words_cuts_rare_words_to_unk(tiny_folder):
    imdb = load_imdb(num_words=8, path=tiny_folder, seed=None)
    for split in (imdb.train, imdb.test):
        assert all(sequence[0] == 1 for sequence in split.sequences)
        assert max(int(sequence.max()) for sequence in split.sequences) < 8
    assert imdb.train.sequences[0].tolist() == [1, 6, 4, 7, 4, 2, 4, 2]
    assert imdb.vocab.size == 8
    assert imdb.vocab.words_kept() == 4


def test_index_from_shifts_every_word(tiny_folder):
    imdb = load_imdb(num_words=None, index_from=5, path=tiny_folder, seed=None)
    assert imdb.vocab.word_to_id("bad") == 6
    assert imdb.train.sequences[0].tolist() == [1, 8, 6, 9, 6, 10, 6, 12]
    assert imdb.vocab.id_to_word(4) == "<UNUSED>"


def test_seed_shuffles_like_keras(tiny_folder):
    file_order = load_imdb(path=tiny_folder, seed=None)
    shuffled = load_imdb(path=tiny_folder, seed=113)
    indices = np.arange(6)
    np.random.RandomState(113).shuffle(indices)
    assert shuffled.train.labels.tolist() == file_order.train.labels[indices].tolist()
    assert shuffled.train.sequences.to_list() == [
        file_order.train.sequences[i].tolist() for i in indices
    ]
    assert list(shuffled.train.texts) == [file_order.train.texts[i] for i in indices]


def test_archive_and_folder_give_the_same_data(tiny_folder, tiny_archive):
    from_folder = load_imdb(path=tiny_folder)
    from_archive = load_imdb(path=tiny_archive)
    assert from_archive.source.kind == "aclImdb archive"
    assert from_folder.source.kind == "aclImdb folder"
    for split in ("train", "test"):
        a, b = from_folder.split(split), from_archive.split(split)
        assert a.sequences.to_list() == b.sequences.to_list()
        assert a.labels.tolist() == b.labels.tolist()
        assert list(a.texts) == list(b.texts)
    # The parent folder of aclImdb/ is accepted too.
    assert load_imdb(path=tiny_folder.parent).vocab.words == TINY_RANKED


def test_vocabulary_counts_coverage_and_lookups(tiny_folder):
    vocab = load_imdb(num_words=10, path=tiny_folder).vocab
    assert (vocab.count("great"), vocab.documents("great")) == (4, 2)
    assert (vocab.count("a"), vocab.documents("a")) == (3, 3)
    assert vocab.count("gem") == 0
    assert vocab.word_to_id("Great") == 5
    assert vocab.word_to_id("story") == 2  # id 10 is not below num_words=10
    assert vocab.word_index["story"] == 10
    assert [vocab.id_to_word(i) for i in range(5)] == [
        "<PAD>", "<START>", "<UNK>", "<UNUSED>", "bad",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="outside this vocabulary"):
        vocab.id_to_word(99)
    assert vocab.coverage(2) == pytest.approx(8 / TINY_TRAINING_TOKENS)
    assert vocab.coverage(100) == pytest.approx(1.0)
    # num_words=10 keeps ids 4-9: bad, great, a, film, acting, it = 4+4+3+3+2+2 tokens
    assert vocab.oov_rate() == pytest.approx(1 - 18 / TINY_TRAINING_TOKENS)
    assert vocab.oov_rate(num_words=None) == 0.0
    table = vocab.table()
    assert table.loc[0].to_dict() == {
        "id": 4, "word": "bad", "count": 4, "documents": 2, "kept": True,
    }  # fmt: skip
    assert table["kept"].sum() == 6


def test_encode_decode_round_trip(tiny_folder):
    vocab = load_imdb(num_words=None, path=tiny_folder).vocab
    text = "A great film; I loved it!"
    assert vocab.decode(vocab.encode(text)) == "<START> " + " ".join(tokenize(text))
    assert vocab.decode(vocab.encode("a gem", add_start=False)) == "a <UNK>"
    padded = [0, 0, 1, 4]
    assert vocab.decode(padded) == "<PAD> <PAD> <START> bad"
    assert vocab.decode(padded, skip_padding=True) == "<START> bad"
    imdb = load_imdb(num_words=None, path=tiny_folder)
    for text, sequence in zip(imdb.train.texts, imdb.train.sequences, strict=True):
        assert vocab.encode(text).tolist() == sequence.tolist()


def test_second_load_comes_from_the_cache(tiny_archive):
    first = load_imdb(path=tiny_archive)
    second = load_imdb(path=tiny_archive)
    assert (first.source.from_cache, second.source.from_cache) == (False, True)
    assert first.train.sequences.to_list() == second.train.sequences.to_list()
    assert list(first.test.texts) == list(second.test.texts)
    # One parse serves every num_words.
    assert load_imdb(num_words=6, path=tiny_archive).source.from_cache


def test_a_changed_source_invalidates_the_cache(tmp_path):
    archive = write_archive(tmp_path / "a.tar.gz")
    load_imdb(path=archive)
    changed = {**TINY_REVIEWS, ("train", "pos"): [(0, 9, "Superb superb superb.")]}
    write_archive(archive, changed)
    reloaded = load_imdb(path=archive)
    assert not reloaded.source.from_cache
    assert reloaded.vocab.words[0] == "bad" and reloaded.vocab.count("superb") == 3
    cached = [p for p in (tmp_path / "cache" / "imdb").iterdir() if p.is_dir()]
    assert len(cached) == 1  # the stale copy was removed


def test_a_changed_folder_invalidates_the_cache(tiny_folder):
    load_imdb(path=tiny_folder)
    (tiny_folder / "train" / "pos" / "3_7.txt").write_text("Superb superb superb superb superb.")
    reloaded = load_imdb(path=tiny_folder)
    assert not reloaded.source.from_cache
    assert reloaded.vocab.words[0] == "superb"


def test_a_damaged_cache_is_rebuilt_with_a_warning(tiny_archive, tmp_path):
    expected = load_imdb(path=tiny_archive).train.sequences.to_list()
    (cached,) = [p for p in (tmp_path / "cache" / "imdb").iterdir() if p.is_dir()]
    ranks = cached / "ranks.npy"
    ranks.write_bytes(ranks.read_bytes()[:100])
    with pytest.warns(DataWarning, match="damaged"):
        rebuilt = load_imdb(path=tiny_archive)
    assert rebuilt.train.sequences.to_list() == expected
    assert load_imdb(path=tiny_archive).source.from_cache


def test_a_failed_cache_write_leaves_no_partial_cache(tiny_archive, tmp_path, monkeypatch):
    def fail_midway(self, folder, meta):
        np.save(folder / "ranks.npy", self.ranks)
        raise OSError("disk full")

    monkeypatch.setattr(data_module._Corpus, "save", fail_midway)
    with pytest.warns(DataWarning, match="disk full"):
        imdb = load_imdb(path=tiny_archive)
    assert len(imdb.train) == 6
    assert [p.name for p in (tmp_path / "cache" / "imdb").iterdir() if p.is_dir()] == []
    monkeypatch.undo()
    assert not load_imdb(path=tiny_archive).source.from_cache


def test_missing_path_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(DataError, match=r"No IMDB data at .*nowhere.*does not exist.*RNNKIT_DATA"):
        load_imdb(path=tmp_path / "nowhere")


def test_missing_path_from_the_environment_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "gone.tar.gz"))
    with pytest.raises(DataError, match=r"gone\.tar\.gz \(given by RNNKIT_DATA\)"):
        load_imdb()


def test_folder_of_the_wrong_layout(tmp_path):
    (tmp_path / "reviews" / "pos").mkdir(parents=True)
    with pytest.raises(DataError, match=r"does not have the aclImdb layout.*ID_RATING\.txt"):
        load_imdb(path=tmp_path / "reviews")


def test_corrupt_archive(tmp_path):
    bad = tmp_path / "aclImdb_v1.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + bytes(random.Random(1).randbytes(5000)))
    with pytest.raises(DataError, match=r"aclImdb_v1\.tar\.gz is damaged or incomplete"):
        load_imdb(path=bad)
    not_an_archive = tmp_path / "notes.txt"
    not_an_archive.write_text("hello")
    with pytest.raises(DataError, match=r"notes\.txt is damaged or incomplete"):
        load_imdb(path=not_an_archive)


def test_truncated_archive(tmp_path):
    many = {key: [(i, 7, "word " * 400 + str(i)) for i in range(30)] for key in TINY_REVIEWS}
    whole = write_archive(tmp_path / "whole.tar.gz", many).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"cut\.tar\.gz is damaged or incomplete.*Download"):
        load_imdb(path=cut)


def test_an_empty_split_is_named(tmp_path):
    reviews = {key: items for key, items in TINY_REVIEWS.items() if key != ("test", "neg")}
    folder = write_corpus(tmp_path / "data", reviews)
    (folder / "test" / "neg").mkdir()
    with pytest.raises(DataError, match=r"no reviews in test/neg.*incomplete"):
        load_imdb(path=folder)
    with pytest.raises(DataError, match=r"no reviews in test/neg"):
        load_imdb(path=write_archive(tmp_path / "a.tar.gz", reviews))


def test_empty_source(tmp_path):
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "test").mkdir()
    with pytest.raises(DataError, match="No reviews found"):
        load_imdb(path=tmp_path / "empty")


def test_undecodable_bytes_are_replaced_and_counted(tmp_path):
    reviews = {**TINY_REVIEWS, ("test", "pos"): [(0, 7, b"Great \xff\xfe fun"), (1, 8, b"ok \xc3")]}
    archive = write_archive(tmp_path / "a.tar.gz", reviews)
    for attempt in ("parsed", "cached"):
        with pytest.warns(DataWarning, match=r"2 review\(s\) .* not UTF-8"):
            imdb = load_imdb(path=archive, seed=None)
        assert imdb.source.replaced_reviews == 2, attempt
        assert imdb.test.texts[1] == "Great \ufffd\ufffd fun"
        assert imdb.vocab.decode(imdb.test.sequences[1]) == "<START> great fun"  # U+FFFD splits


def test_misnamed_files_are_skipped_with_a_warning(tiny_folder):
    (tiny_folder / "train" / "pos" / "notes.txt").write_text("not a review")
    with pytest.warns(DataWarning, match=r"Skipped 1 file.*notes\.txt"):
        imdb = load_imdb(path=tiny_folder)
    assert len(imdb.train) == 6


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"num_words": 4}, "num_words must be None .* at least index_from \\+ 2 = 5"),
        ({"num_words": 10.5}, "num_words must be"),
        ({"index_from": 1}, "index_from must be a whole number of at least 2"),
        ({"seed": -1}, "seed must be None or a whole number"),
        ({"source": "imdb"}, 'source must be "aclImdb" or "keras"'),
    ],
)
def test_invalid_arguments_raise_clear_errors(tiny_folder, arguments, message):
    with pytest.raises(ValueError, match=message):
        load_imdb(path=tiny_folder, **arguments)


def test_keras_source_with_the_download_patched(monkeypatch):
    from keras.datasets import imdb as keras_imdb

    word_index = {"the": 1, "film": 2, "good": 3, "bad": 4}
    x_train = [[1, 2, 3], [1, 2, 4, 4]]
    x_test = [[2, 3, 1]]

    def fake_load_data(**kwargs):
        assert kwargs["index_from"] == 0 and kwargs["start_char"] is None
        return (x_train, np.array([1, 0])), (x_test, np.array([1]))

    monkeypatch.setattr(keras_imdb, "load_data", fake_load_data)
    monkeypatch.setattr(keras_imdb, "get_word_index", lambda: word_index)
    imdb = load_imdb(num_words=6, source="keras")
    assert imdb.train.sequences.to_list() == [[1, 4, 5, 2], [1, 4, 5, 2, 2]]
    assert imdb.test.sequences.to_list() == [[1, 5, 2, 4]]
    assert imdb.train.texts is None and imdb.source.kind == "keras"
    assert (imdb.vocab.count("bad"), imdb.vocab.documents("bad")) == (2, 1)
    assert imdb.vocab.id_to_word(4) == "the"


def test_import_rnnkit_loads_neither_tensorflow_nor_streamlit():
    import subprocess
    import sys

    code = "import sys, rnnkit; print('tensorflow' in sys.modules, 'streamlit' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
    assert rnnkit.load_imdb is load_imdb


def test_parallel_and_serial_encoding_agree(tmp_path):
    generator = random.Random(3)
    words = ["alpha", "beta", "gamma", "délta", "don't", "x9"]
    documents = [
        " ".join(generator.choice(words) for _ in range(generator.randint(1, 12))).encode()
        for _ in range(2500)
    ]
    serial_words, serial_ids, serial_order = data_module._encode_documents(documents)
    parallel_words, parallel_ids, parallel_order = data_module._encode_in_parallel(documents)

    def per_document(words_, ids, order):
        tokens = [words_[i] for i in ids]
        result, current = {}, None
        positions = iter(order)
        for token in tokens:
            if token == b"\x00":
                current = result.setdefault(next(positions), [])
            else:
                current.append(token)
        return result

    assert per_document(serial_words, serial_ids, serial_order) == per_document(
        parallel_words, parallel_ids, parallel_order
    )


def test_concurrent_first_loads_parse_once(tiny_archive):
    from concurrent.futures import ThreadPoolExecutor

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda _: load_imdb(path=tiny_archive), range(3)))
    assert sorted(result.source.from_cache for result in results) == [False, True, True]
    assert len({tuple(r.train.labels.tolist()) for r in results}) == 1


def test_tarfile_errors_never_escape(tmp_path):
    archive = write_archive(tmp_path / "a.tar.gz")
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte: gzip's CRC or the inflate fails
    archive.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="damaged or incomplete"):
        load_imdb(path=archive)


def test_a_script_that_loads_at_top_level_does_not_hang(tmp_path):
    """`streamlit run` executes the app as __main__; the parallel first load must not re-run it
    (multiprocessing's spawn would, and wait forever on the cache lock)."""
    import subprocess
    import sys
    from pathlib import Path

    reviews = {
        key: [(i, 7, f"word{i % 50} and more words") for i in range(600)] for key in TINY_REVIEWS
    }
    archive = write_archive(tmp_path / "big.tar.gz", reviews)  # 2,400 reviews: parallel path
    script = tmp_path / "app_like.py"
    script.write_text(
        f"import rnnkit\ndata = rnnkit.load_imdb(path={str(archive)!r})\nprint(len(data.train))\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "1200"
