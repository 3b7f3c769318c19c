"""The data layer on tiny corpora written here: encoding, vocabulary, cache, errors."""

from __future__ import annotations

import gzip
import io
import os
import random
import tarfile
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import rnnkit
from rnnkit import data as data_module
from rnnkit.data import load_imdb
from rnnkit.settings import get_settings
from rnnkit.sources import OFFICIAL_URL, DataError, DataWarning, download_imdb
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


# --- archives cut short ---------------------------------------------------------------------------


def tar_bytes(reviews: dict, urls: bool = False) -> bytes:
    """An uncompressed tar of the aclImdb layout (with urls_*.txt files listing each review
    when `urls`), as bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:

        def add(name: str, data: bytes) -> None:
            member = tarfile.TarInfo(f"aclImdb/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))

        for (split, label), items in reviews.items():
            for review_id, rating, text in items:
                add(f"{split}/{label}/{review_id}_{rating}.txt", text.encode())
            if urls:
                add(f"{split}/urls_{label}.txt", b"".join(b"http://x\n" for _ in items))
    return buffer.getvalue()


# Four reviews per split and label, numbered 0-3: the urls files list 4 each.
FOUR_EACH = {
    key: [(i, 7 if key[1] == "pos" else 2, f"word{i} {key[1]}") for i in range(4)]
    for key in TINY_REVIEWS
}


def load_quietly(path: Path):
    """load_imdb(path), and the DataWarnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_imdb(path=path)
    return data, [str(item.message) for item in caught if item.category is DataWarning]


# FOUR_EACH as a tar: 16 members of a header and a data block each, then the end-of-archive
# marker (two blocks of zeros), then zeros up to a multiple of 10,240 bytes.
MEMBERS_END = 16 * 2 * 512
MARKER_READ = MEMBERS_END + 512  # from here on, the first block of the marker is whole


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.integers(0, len(tar_bytes(FOUR_EACH))),
    how=st.sampled_from(["tar", "tar.gz", "cut gz"]),
)
@example(cut=13 * 1024, how="tar")  # at a file's end: 13 of 16 reviews
@example(cut=13 * 1024 + 100, how="tar.gz")  # in a header
@example(cut=MEMBERS_END, how="tar")  # every review, no marker
def test_an_archive_cut_anywhere_is_refused_or_loads_with_a_warning(tmp_path, cut, how):
    whole = tar_bytes(FOUR_EACH)
    data = {
        "tar": whole[:cut],
        "tar.gz": gzip.compress(whole[:cut], mtime=0),  # a whole gzip of a cut tar
        "cut gz": gzip.compress(whole, mtime=0)[: cut * 2 // 5],  # a gzip cut short
    }[how]
    path = tmp_path / f"cut-{cut}.{how.replace(' ', '.')}"
    path.write_bytes(data)
    try:
        loaded, said = load_quietly(path)
    except DataError as error:
        assert str(path) in str(error)
        assert how == "cut gz" or cut < MARKER_READ  # a whole archive always loads
        return
    reviews = len(loaded.train) + len(loaded.test)
    cut_short = [message for message in said if "ends without tar's end-of-archive" in message]
    if reviews < 16:
        assert cut_short and str(path) in cut_short[0]  # fewer reviews: never in silence
        assert f"({reviews} read)" in cut_short[0]
    if how != "cut gz" and cut >= MARKER_READ:
        assert (reviews, said) == (16, [])
    again, said_again = load_quietly(path)
    assert again.source.from_cache and said_again == said  # the warning outlives the parse


def test_a_tar_cut_at_a_file_boundary_warns_that_it_is_cut(tmp_path):
    whole = tar_bytes(FOUR_EACH)
    boundary = 512 * 2 * (len(FOUR_EACH) * 4 - 2)  # header and data block of 14 reviews
    path = tmp_path / "cut.tar"
    path.write_bytes(whole[:boundary])
    with pytest.warns(
        DataWarning, match=r"cut\.tar ends without tar's end-of-archive marker, after 14 files"
    ):
        data = load_imdb(path=path)
    assert len(data.train) + len(data.test) == 14
    path.write_bytes(whole)
    loaded, said = load_quietly(path)  # the whole archive: no warning
    assert (len(loaded.train) + len(loaded.test), said) == (16, [])


# --- counts the layout promises ------------------------------------------------------------------


def test_missing_reviews_are_named_by_the_urls_files(tmp_path):
    reviews = {
        **FOUR_EACH,
        ("test", "pos"): [item for item in FOUR_EACH["test", "pos"] if item[0] != 2],
    }
    path = tmp_path / "short.tar"
    buffer = tar_bytes(FOUR_EACH, urls=True)
    path.write_bytes(buffer)
    assert load_quietly(path)[1] == []  # every listed review is there
    # The same layout with test/pos/2 gone: its urls file still lists 4.
    with tarfile.open(path, "w") as archive:
        for (split, label), items in reviews.items():
            for review_id, rating, text in items:
                member = tarfile.TarInfo(f"aclImdb/{split}/{label}/{review_id}_{rating}.txt")
                member.size = len(text.encode())
                archive.addfile(member, io.BytesIO(text.encode()))
            listed = b"http://x\n" * 4
            member = tarfile.TarInfo(f"aclImdb/{split}/urls_{label}.txt")
            member.size = len(listed)
            archive.addfile(member, io.BytesIO(listed))
    for attempt in ("parsed", "cached"):
        data, said = load_quietly(path)
        assert data.source.from_cache == (attempt == "cached")
        assert said == [
            f"{path}: test/pos holds 3 reviews where its urls_pos.txt lists 4 (the official "
            f"archive has 12,500 in each); 1 missing (review id 2). The reviews there are used; "
            f"for all of them, use the full aclImdb_v1.tar.gz ({OFFICIAL_URL})."
        ], attempt
        assert len(data.test) == 7


def test_a_folder_is_held_to_its_urls_files_too(tiny_folder):
    (tiny_folder / "train" / "neg" / "urls_neg.txt").unlink(missing_ok=True)
    (tiny_folder / "train" / "urls_neg.txt").write_text("http://x\n" * 5)
    data, said = load_quietly(tiny_folder)
    assert len(data.train) == 6
    (message,) = said
    assert "train/neg holds 3 reviews where its urls_neg.txt lists 5" in message
    assert "2 missing (review id 3, 4)" in message


# --- names out of range, devices, folders that are files ------------------------------------------


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    review_id=st.one_of(st.integers(0, 2**31 - 1), st.integers(2**31, 10**30)),
    rating=st.one_of(st.integers(0, 300), st.integers(10**18, 10**19)),
)
def test_review_ids_and_ratings_outside_their_types_name_the_file(tmp_path, review_id, rating):
    reviews = {
        **TINY_REVIEWS,
        ("train", "pos"): [*TINY_REVIEWS["train", "pos"], (review_id, rating, "Odd.")],
    }
    name = f"{review_id}_{rating}.txt"
    path = write_archive(tmp_path / f"{name}.tar.gz", reviews)
    if review_id < 2**31 and 1 <= rating <= 10:
        data = load_imdb(path=path, seed=None)
        assert review_id in data.train.review_ids.tolist()
        assert rating in data.train.ratings.tolist()
    else:
        with pytest.raises(DataError, match=f"aclImdb/train/pos/{name} in .* is no aclImdb review"):
            load_imdb(path=path)


def loads_within(seconds: float, **arguments) -> BaseException | None:
    """Run load_imdb in a thread; what it raised. Fails if it is still reading after `seconds`."""
    outcome: list = []

    def run() -> None:
        try:
            load_imdb(**arguments)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"load_imdb({arguments}) still reads after {seconds} s"
    return outcome[0]


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_as_the_data_is_refused_at_once(monkeypatch, device):
    monkeypatch.setenv("RNNKIT_DATA", device)
    error = loads_within(10)
    assert isinstance(error, DataError)
    assert (
        f"No IMDB data at {device} (given by RNNKIT_DATA): {device} is a character device"
        in str(error)
    )


def test_a_named_pipe_as_the_data_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    error = loads_within(10, path=tmp_path / "pipe")
    assert isinstance(error, DataError) and "is a named pipe, not an archive or a folder" in str(
        error
    )


@pytest.mark.parametrize("below", ["", "sub/folder"])
def test_a_file_as_the_cache_folder_is_named_with_the_fix(
    tiny_archive, tmp_path, monkeypatch, below
):
    (tmp_path / "a file").write_text("not a folder")
    monkeypatch.setenv("RNNKIT_CACHE_DIR", str(tmp_path / "a file" / below))
    for call in (
        lambda: load_imdb(path=tiny_archive),
        lambda: download_imdb("http://127.0.0.1:9/x.tar.gz"),
    ):
        with pytest.raises(DataError) as raised:
            call()
        message = str(raised.value)
        assert f"{tmp_path / 'a file'} is a file, not a folder" in message
        assert "Point RNNKIT_CACHE_DIR at a folder" in message


# --- a cache changed in place ---------------------------------------------------------------------


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_a_cache_file_changed_in_place_is_found_and_parsed_again(tiny_archive, data):
    first = load_imdb(path=tiny_archive, seed=None)  # its arrays map the cache's files:
    expected_sequences = first.train.sequences.to_list()  # copied before they are changed
    expected_texts = list(first.test.texts)
    (folder,) = [path for path in (get_settings().cache_dir / "imdb").iterdir() if path.is_dir()]
    files = sorted(path for path in folder.iterdir() if path.name != "meta.json")
    target = data.draw(st.sampled_from(files), label="file")
    content = bytearray(target.read_bytes())
    if not content:
        return
    position = data.draw(st.integers(0, len(content) - 1), label="byte")
    content[position] ^= data.draw(st.integers(1, 255), label="bits")
    target.write_bytes(bytes(content))  # the same size
    with pytest.warns(
        DataWarning, match=f"The cached reviews in {folder} are damaged \\({target.name} changed"
    ):
        again = load_imdb(path=tiny_archive, seed=None)
    assert not again.source.from_cache
    assert again.train.sequences.to_list() == expected_sequences
    assert list(again.test.texts) == expected_texts
    assert load_imdb(path=tiny_archive).source.from_cache  # whole again
