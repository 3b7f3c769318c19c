"""The IMDB reviews, loaded: parsing, encoding, the loaded dataset and the on-disk cache.

`load_imdb()` gives the reviews encoded the way `keras.datasets.imdb.load_data` encodes them, so
the course notebook's code and numbers carry over:

- id 0 is padding `<PAD>`, 1 starts every review `<START>`, 2 stands for a word out of the
  vocabulary `<UNK>`, and 3 (up to `index_from`) is never used `<UNUSED>`;
- words are ranked by how often they occur in the training split (ties: alphabetical order), and
  a word's id is its rank + `index_from`, so with `index_from=3` "the" (rank 1) is 4;
- ids of `num_words` or more become 2;
- each split is shuffled with `seed` (113, as Keras does), so `validation_split` in `model.fit`
  takes a random fifth and not one label.

Sources: the Large Movie Review Dataset ("aclImdb": the official `aclImdb_v1.tar.gz`, a copy of
its labeled part, or the unpacked folder; `rnnkit.sources` reads and downloads it) or Keras' own
download ("keras"). Parsing aclImdb takes seconds; the parsed result is cached on disk for every
later process and every `num_words`, with a CRC-32 of each cached file in its `meta.json`: a file
changed since (even in place, at the same size) is found on reading, and the source is parsed
again with a warning. What the source warned of when it was parsed (a cut archive, missing
reviews) is kept with the cache and warned of at every load. Tokenizing and the vocabulary live
in `rnnkit.vocabulary`.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from filelock import FileLock

from rnnkit.sequences import TokenSequences
from rnnkit.settings import DATA_VARIABLE, child_environment
from rnnkit.sources import (
    LABEL_NAMES,
    OFFICIAL_URL,
    SPLITS,
    DataError,
    DataWarning,
    RawReview,
    check_cache_folder,
    download_imdb,
    download_path,
    read_archive,
    read_folder,
    resolve_source,
    source_fingerprint,
)
from rnnkit.vocabulary import (
    DOCUMENT_SEPARATOR,
    OOV_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    START_ID,
    TOKENIZER_VERSION,
    UNUSED_ID,
    Vocabulary,
    check_encoding,
    tokenize,
    tokenize_documents,
)

if TYPE_CHECKING:
    pass

# What `rnnkit.data` offers: its own loader and dataset, and (from their modules) the errors,
# the encoding's ids, the tokenizer, the vocabulary and the download, as it always has.
__all__ = [
    "LABEL_NAMES",
    "OFFICIAL_URL",
    "OOV_ID",
    "PAD_ID",
    "SPECIAL_TOKENS",
    "SPLITS",
    "START_ID",
    "UNUSED_ID",
    "DataError",
    "DataWarning",
    "ImdbData",
    "ReviewTexts",
    "SourceInfo",
    "Split",
    "Vocabulary",
    "download_imdb",
    "download_path",
    "load_imdb",
    "tokenize",
]

# Bump when the layout of the cached corpus changes: caches of another format are rebuilt.
CACHE_FORMAT = 2  # 2: checksums and the source's warnings in meta.json

Source = Literal["aclImdb", "keras"]


# --- the loaded dataset -----------------------------------------------------------------------


class ReviewTexts(Sequence[str]):
    """The original review texts, decoded only when read (the archive's 65 MB stay on disk)."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray, order: np.ndarray) -> None:
        self._blob = blob  # (bytes,) uint8, every review's UTF-8 text in file order
        self._offsets = offsets  # (reviews + 1,) where each review starts in blob
        self._order = order  # (len,) file-order index of each review of this view

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, index):
        if isinstance(index, int | np.integer):
            review = self._order[index]
            start, end = self._offsets[review], self._offsets[review + 1]
            return self._blob[start:end].tobytes().decode()
        return ReviewTexts(self._blob, self._offsets, self._order[index])

    def __iter__(self) -> Iterator[str]:
        for index in range(len(self)):
            yield self[index]


@dataclass(frozen=True)
class Split:
    """One split's reviews, all arrays in the same (shuffled) order."""

    sequences: TokenSequences  # token ids, each starting with <START>
    labels: np.ndarray  # (n,) int8: 0 negative, 1 positive
    texts: ReviewTexts | None  # the original texts, where the source has them
    ratings: np.ndarray | None  # (n,) int8 star rating 1-10, where the source has them
    review_ids: np.ndarray | None  # (n,) int32 the ID of ID_RATING.txt, where the source has it

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        """(n,) tokens per review, the start token included."""
        return self.sequences.lengths

    def label_counts(self) -> dict[str, int]:
        """Reviews per label name."""
        counts = np.bincount(self.labels, minlength=2)
        return {name: int(counts[label]) for label, name in enumerate(LABEL_NAMES)}


@dataclass(frozen=True)
class SourceInfo:
    """Where the data came from and how it was loaded."""

    kind: str  # "aclImdb archive", "aclImdb folder" or "keras"
    path: Path | None
    fingerprint: str  # sha256 of the archive, or of a folder's file names, sizes and times
    from_cache: bool
    load_seconds: float
    replaced_reviews: int = 0  # reviews with bytes that were not UTF-8


@dataclass(frozen=True)
class ImdbData:
    """Both splits of the IMDB reviews, their vocabulary and their source."""

    train: Split
    test: Split
    vocab: Vocabulary
    source: SourceInfo
    num_words: int | None
    index_from: int
    seed: int | None  # the shuffle of each split

    @property
    def fingerprint(self) -> str:
        """Names this data as a model sees it: source, tokenizer, index_from and shuffle.

        num_words is left out: a training configuration names it itself.
        """
        parts = f"{self.source.fingerprint}:{TOKENIZER_VERSION}:{self.index_from}:{self.seed}"
        return hashlib.sha256(parts.encode()).hexdigest()

    def split(self, name: str) -> Split:
        """The split called `name` ("train" or "test")."""
        if name not in SPLITS:
            raise ValueError(f"split must be 'train' or 'test', not {name!r}")
        return self.train if name == "train" else self.test

    def lengths_by_group(self) -> dict[str, np.ndarray]:
        """Review lengths for each split and label, keyed "train / pos" and so on."""
        groups = {}
        for split_name in SPLITS:
            split = self.split(split_name)
            for label, label_name in enumerate(LABEL_NAMES):
                groups[f"{split_name} / {label_name}"] = split.lengths[split.labels == label]
        return groups

    def summary(self) -> dict[str, int | float | str | None]:
        """The dataset in numbers, for a table or a page."""
        train_lengths = self.train.lengths
        return {
            "source": self.source.kind,
            "train reviews": len(self.train),
            "test reviews": len(self.test),
            "train positive": self.train.label_counts()["pos"],
            "train negative": self.train.label_counts()["neg"],
            "test positive": self.test.label_counts()["pos"],
            "test negative": self.test.label_counts()["neg"],
            "training words": len(self.vocab),
            "num_words": self.num_words,
            "index_from": self.index_from,
            "median train length": float(np.median(train_lengths)),
            "mean train length": float(np.mean(train_lengths)),
            "train OOV rate": self.vocab.oov_rate(),
        }


# --- the parsed corpus, as cached -------------------------------------------------------------


@dataclass
class _Corpus:
    """Every review parsed, before `num_words`, `index_from` and shuffling are applied.

    Review arrays are in file order: train then test, each by label then review id.
    """

    ranks: np.ndarray  # (tokens,) int32 word rank (1 = most frequent), 0 if not a training word;
    # each review's first slot is its start token and holds 0
    starts: np.ndarray  # (reviews,) int64 where each review starts in ranks
    lengths: np.ndarray  # (reviews,) int32 tokens per review, the start slot included
    labels: np.ndarray  # (reviews,) int8
    train_reviews: int  # the first train_reviews reviews are the training split
    words: list[str]  # words[r - 1] has rank r
    word_counts: np.ndarray  # (words,) int64 occurrences in training reviews
    document_counts: np.ndarray  # (words,) int64 training reviews containing the word
    ratings: np.ndarray | None = None  # (reviews,) int8
    review_ids: np.ndarray | None = None  # (reviews,) int32
    text_blob: np.ndarray | None = None  # (bytes,) uint8
    text_offsets: np.ndarray | None = None  # (reviews + 1,) int64
    replaced_reviews: int = 0
    shuffled: bool = False  # the source already shuffled each split (Keras does)

    _ARRAYS = (
        "ranks",
        "starts",
        "lengths",
        "labels",
        "word_counts",
        "document_counts",
        "ratings",
        "review_ids",
        "text_blob",
        "text_offsets",
    )

    def save(self, folder: Path, meta: dict) -> None:
        for name in self._ARRAYS:
            value = getattr(self, name)
            if value is not None:
                np.save(folder / f"{name}.npy", value, allow_pickle=False)
        (folder / "words.txt").write_text("\n".join(self.words), encoding="utf-8")
        arrays = [name for name in self._ARRAYS if getattr(self, name) is not None]
        meta = {
            **meta,
            "train_reviews": self.train_reviews,
            "reviews": len(self.starts),
            "tokens": len(self.ranks),
            "replaced_reviews": self.replaced_reviews,
            "shuffled": self.shuffled,
            "arrays": arrays,
            "checksums": {
                name: _checksum(folder / name)
                for name in [*(f"{array}.npy" for array in arrays), "words.txt"]
            },
        }
        # meta.json last: a folder without it was never finished.
        (folder / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> tuple[_Corpus, dict]:
        """Read a cached corpus, each file checked against its checksum first.

        Raises:
            ValueError, KeyError, TypeError, OSError: the cache is damaged or incomplete.
        """
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if not set(meta["arrays"]) <= set(cls._ARRAYS):
            raise ValueError(f"meta.json names arrays no corpus has: {meta['arrays']!r}")
        checksums = meta["checksums"]
        for name in [*(f"{array}.npy" for array in meta["arrays"]), "words.txt"]:
            if _checksum(folder / name) != checksums[name]:
                raise ValueError(f"{name} changed since it was cached (its CRC-32 differs)")
        arrays = {name: None for name in cls._ARRAYS}
        for name in meta["arrays"]:
            # Memory-mapped: the tokens and texts are read from disk as they are used.
            arrays[name] = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        words_text = (folder / "words.txt").read_text(encoding="utf-8")
        corpus = cls(
            words=words_text.split("\n") if words_text else [],
            train_reviews=meta["train_reviews"],
            replaced_reviews=meta["replaced_reviews"],
            shuffled=meta["shuffled"],
            **arrays,
        )
        corpus.check(meta)
        return corpus, meta

    def check(self, meta: dict) -> None:
        """Raise ValueError if the arrays do not fit together (a damaged cache)."""
        reviews = meta["reviews"]
        problems = []
        if len(self.ranks) != meta["tokens"]:
            problems.append(f"ranks has {len(self.ranks)} tokens, expected {meta['tokens']}")
        for name in ("starts", "lengths", "labels", "ratings", "review_ids"):
            value = getattr(self, name)
            if value is not None and len(value) != reviews:
                problems.append(f"{name} has {len(value)} entries, expected {reviews}")
        if not len(self.words) == len(self.word_counts) == len(self.document_counts):
            problems.append("words, word_counts and document_counts differ in length")
        if self.text_offsets is not None and (
            len(self.text_offsets) != reviews + 1 or self.text_offsets[-1] != len(self.text_blob)
        ):
            problems.append("text offsets do not match the text blob")
        if not problems and reviews and int((self.starts + self.lengths).max()) > len(self.ranks):
            problems.append("a review reaches past the end of ranks")
        if problems:
            raise ValueError("; ".join(problems))


def _checksum(path: Path) -> int:
    """CRC-32 of a file's bytes: tens of milliseconds for the whole cache, which a parse takes
    seconds to rebuild."""
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return zlib.crc32(b"")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return zlib.crc32(view)


def _rank_words(
    token_ids: np.ndarray, is_training_token: np.ndarray, token_documents: np.ndarray, words: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank word ids by training frequency.

    Args:
        token_ids: (tokens,) provisional word id of each token (0 to words - 1).
        is_training_token: (tokens,) whether the token is in a training review.
        token_documents: (tokens,) the review each token belongs to.
        words: how many provisional ids there are.

    Returns:
        rank_of (words,) rank of each provisional id (0: not in training), and the word
        counts and document counts of the ranked words, in rank order.
    """
    training_ids = token_ids[is_training_token]
    counts = np.bincount(training_ids, minlength=words)
    # One (review, word) pair per word present in a review gives document counts.
    pairs = np.sort(token_documents[is_training_token].astype(np.int64) * words + training_ids)
    distinct_pairs = pairs[np.append(True, pairs[1:] != pairs[:-1])]
    documents = np.bincount(distinct_pairs % words, minlength=words)
    return counts, documents, np.flatnonzero(counts)


def _encode_documents(documents: Sequence[bytes]) -> tuple[list[bytes], np.ndarray, list[int]]:
    """Tokenize documents and number their distinct tokens.

    Returns:
        The distinct tokens (first seen first), each token's number among them (the
        tokens of each document led by the separator), and the documents in token order.
    """
    tokens, order = tokenize_documents(documents)
    # dict.setdefault gives each new token its first position, in one C-level pass.
    first_positions: dict[bytes, int] = {}
    positions = np.fromiter(
        map(first_positions.setdefault, tokens, count()), dtype=np.int64, count=len(tokens)
    )
    del tokens
    number_of_position = np.zeros(len(positions), dtype=np.int32)
    number_of_position[np.fromiter(first_positions.values(), dtype=np.int64)] = np.arange(
        len(first_positions), dtype=np.int32
    )
    return list(first_positions), number_of_position[positions], order


def _encode_in_parallel(documents: Sequence[bytes]) -> tuple[list[bytes], np.ndarray, list[int]]:
    """`_encode_documents` over halves of `documents`, one in a second process where there is
    a second core (it halves the longest step of the first load), then merged.

    The second process is a plain `python -c` child fed through a pipe, not multiprocessing:
    multiprocessing's "spawn" re-imports the parent's `__main__`, which under `streamlit run`
    is the app itself, and "fork" can deadlock a threaded server.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2 or len(documents) < 2000:
        return _encode_documents(documents)
    half = len(documents) // 2
    try:
        worker = subprocess.Popen(
            [sys.executable, "-c", "from rnnkit.data import _encode_worker; _encode_worker()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=child_environment(),
        )
    except OSError:
        return _encode_documents(documents)
    replies: list[bytes] = []
    feeder = threading.Thread(
        target=lambda: replies.append(
            worker.communicate(pickle.dumps(list(documents[half:]), protocol=5))[0]
        ),
        daemon=True,
    )
    feeder.start()
    first = _encode_documents(documents[:half])
    feeder.join()
    try:
        # Our own child's answer: unpickling it is safe.
        second = pickle.loads(replies[0]) if worker.returncode == 0 else None
    except (pickle.UnpicklingError, EOFError, IndexError):
        second = None
    if second is None:  # the child failed (no memory, a broken interpreter): do it here
        second = _encode_documents(documents[half:])
    merged: dict[bytes, int] = {}
    token_ids, orders = [], []
    for offset, (distinct, numbers, order) in zip((0, half), (first, second), strict=True):
        global_number = np.fromiter(
            (merged.setdefault(token, len(merged)) for token in distinct),
            dtype=np.int32,
            count=len(distinct),
        )
        token_ids.append(global_number[numbers])
        orders.extend(index + offset for index in order)
    return list(merged), np.concatenate(token_ids), orders


def _encode_worker() -> None:
    """The second process of `_encode_in_parallel`: documents in on stdin, results out."""
    documents = pickle.load(sys.stdin.buffer)
    pickle.dump(_encode_documents(documents), sys.stdout.buffer, protocol=5)


def _build_corpus(reviews: list[RawReview]) -> _Corpus:
    """Tokenize, count and rank `reviews` (already in file order)."""
    vocabulary_bytes, token_ids, token_order = _encode_in_parallel(
        [review.data for review in reviews]
    )  # token_ids: (tokens,) provisional word ids
    separator_id = vocabulary_bytes.index(DOCUMENT_SEPARATOR)

    review_starts_in_order = np.flatnonzero(token_ids == separator_id)  # (reviews,)
    lengths_in_order = np.diff(np.append(review_starts_in_order, len(token_ids)))
    token_order = np.asarray(token_order, dtype=np.int64)
    token_documents = np.repeat(token_order, lengths_in_order)  # (tokens,) review index
    is_training = np.array([review.split == "train" for review in reviews])
    is_training_token = is_training[token_documents] & (token_ids != separator_id)

    counts, documents, present = _rank_words(
        token_ids, is_training_token, token_documents, len(vocabulary_bytes)
    )
    present_words = [vocabulary_bytes[word_id].decode() for word_id in present]
    present_counts = counts[present].tolist()
    by_rank = sorted(range(len(present)), key=lambda i: (-present_counts[i], present_words[i]))
    ranked_ids = present[by_rank]
    rank_of = np.zeros(len(vocabulary_bytes), dtype=np.int32)
    rank_of[ranked_ids] = np.arange(1, len(ranked_ids) + 1, dtype=np.int32)

    starts = np.empty(len(reviews), dtype=np.int64)
    lengths = np.empty(len(reviews), dtype=np.int32)
    starts[token_order] = review_starts_in_order
    lengths[token_order] = lengths_in_order
    texts = [review.data for review in reviews]
    text_offsets = np.zeros(len(reviews) + 1, dtype=np.int64)
    np.cumsum([len(text) for text in texts], out=text_offsets[1:])
    return _Corpus(
        ranks=rank_of[token_ids],  # separator slots have rank 0: the start token's place
        starts=starts,
        lengths=lengths,
        labels=np.array([review.label for review in reviews], dtype=np.int8),
        train_reviews=int(is_training.sum()),
        words=[present_words[i] for i in by_rank],
        word_counts=counts[ranked_ids].astype(np.int64),
        document_counts=documents[ranked_ids].astype(np.int64),
        ratings=np.array([review.rating for review in reviews], dtype=np.int8),
        review_ids=np.array([review.review_id for review in reviews], dtype=np.int32),
        text_blob=np.frombuffer(b"".join(texts), dtype=np.uint8),
        text_offsets=text_offsets,
        replaced_reviews=sum(review.replaced for review in reviews),
    )


def _assemble(
    corpus: _Corpus,
    num_words: int | None,
    index_from: int,
    seed: int | None,
    source: SourceInfo,
) -> ImdbData:
    """Apply `num_words`, `index_from` and the shuffle to a parsed corpus."""
    ranks = np.asarray(corpus.ranks)
    ids = ranks.astype(np.int32) + index_from  # (tokens,)
    ids[ranks == 0] = OOV_ID
    if num_words is not None:
        ids[ids >= num_words] = OOV_ID
    ids[corpus.starts] = START_ID

    splits = []
    boundaries = ((0, corpus.train_reviews), (corpus.train_reviews, len(corpus.starts)))
    for first, end in boundaries:
        order = np.arange(first, end)
        if seed is not None and not corpus.shuffled:
            # Keras' own shuffle, so the same seed gives the notebook's order of reviews.
            np.random.RandomState(seed).shuffle(order)
        has_texts = corpus.text_blob is not None
        splits.append(
            Split(
                sequences=TokenSequences(ids, corpus.starts[order], corpus.lengths[order]),
                labels=np.asarray(corpus.labels[order]),
                texts=ReviewTexts(corpus.text_blob, corpus.text_offsets, order)
                if has_texts
                else None,
                ratings=None if corpus.ratings is None else np.asarray(corpus.ratings[order]),
                review_ids=None
                if corpus.review_ids is None
                else np.asarray(corpus.review_ids[order]),
            )
        )
    vocab = Vocabulary(
        corpus.words, corpus.word_counts, corpus.document_counts, num_words, index_from
    )
    return ImdbData(
        train=splits[0],
        test=splits[1],
        vocab=vocab,
        source=source,
        num_words=num_words,
        index_from=index_from,
        seed=seed,
    )


# --- the on-disk cache -------------------------------------------------------------------


def _cache_folder(fingerprint: str) -> Path:
    key = hashlib.sha256(f"{fingerprint}:{TOKENIZER_VERSION}:{CACHE_FORMAT}".encode()).hexdigest()
    return check_cache_folder() / "imdb" / key[:20]


def _write_cache(corpus: _Corpus, folder: Path, meta: dict) -> None:
    """Write the corpus to `folder` atomically: a temporary folder, then one rename."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=".partial-", dir=folder.parent))
    try:
        corpus.save(temporary, meta)
        os.replace(temporary, folder)
    except OSError as error:
        warnings.warn(
            f"Could not cache the parsed reviews in {folder} ({error}); the next load parses "
            f"them again. Set RNNKIT_CACHE_DIR to a writable folder.",
            DataWarning,
            stacklevel=3,
        )
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    # A source that changed leaves its older cached copy behind: remove it.
    for other in folder.parent.iterdir():
        if other != folder and other.is_dir() and not other.name.startswith("."):
            try:
                other_meta = json.loads((other / "meta.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if other_meta.get("source_path") == meta["source_path"]:
                shutil.rmtree(other, ignore_errors=True)


def _load_aclimdb_corpus(path: Path) -> tuple[_Corpus, SourceInfo]:
    started = time.perf_counter()
    kind = "aclImdb folder" if path.is_dir() else "aclImdb archive"
    fingerprint = source_fingerprint(path)
    folder = _cache_folder(fingerprint)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(folder) + ".lock")
        lock.acquire()
    except OSError as error:  # a read-only cache, a file where its folder belongs
        raise DataError(
            f"The cache folder {folder.parent} cannot be written ({error.strerror or error}): "
            f"point RNNKIT_CACHE_DIR at a folder this process can write."
        ) from None
    # One process parses; others wait for it and then read its cache.
    try:
        corpus = None
        if (folder / "meta.json").exists():
            try:
                corpus, meta = _Corpus.load(folder)
                source_warnings = meta["source_warnings"]
                if not all(isinstance(message, str) for message in source_warnings):
                    raise TypeError("meta.json's source_warnings are not texts")
            except (OSError, ValueError, KeyError, TypeError) as error:
                warnings.warn(
                    f"The cached reviews in {folder} are damaged ({error}); parsing {path} again.",
                    DataWarning,
                    stacklevel=3,
                )
                corpus = None
                shutil.rmtree(folder, ignore_errors=True)
        from_cache = corpus is not None
        if corpus is None:
            reader = read_folder if path.is_dir() else read_archive
            source = reader(path)
            corpus, source_warnings = _build_corpus(source.reviews), source.warnings
            _write_cache(
                corpus,
                folder,
                {
                    "format": CACHE_FORMAT,
                    "tokenizer": TOKENIZER_VERSION,
                    "fingerprint": fingerprint,
                    "source_path": str(path.resolve()),
                    "source_warnings": source_warnings,
                },
            )
    finally:
        lock.release()
    for message in source_warnings:  # at every load, from the cache too
        warnings.warn(message, DataWarning, stacklevel=3)
    if corpus.replaced_reviews:
        warnings.warn(
            f"{corpus.replaced_reviews} review(s) in {path} hold bytes that are not UTF-8; "
            f"they were replaced with U+FFFD.",
            DataWarning,
            stacklevel=3,
        )
    source = SourceInfo(
        kind=kind,
        path=path,
        fingerprint=fingerprint,
        from_cache=from_cache,
        load_seconds=time.perf_counter() - started,
        replaced_reviews=corpus.replaced_reviews,
    )
    return corpus, source


def _load_keras_corpus(seed: int) -> tuple[_Corpus, SourceInfo]:
    """The notebook's own route: `keras.datasets.imdb` (downloads imdb.npz once)."""
    started = time.perf_counter()
    from keras.datasets import imdb

    try:
        # Raw ranks (the word index's values): no start token, no shift, no cut.
        (x_train, y_train), (x_test, y_test) = imdb.load_data(
            num_words=np.iinfo(np.int32).max,
            skip_top=0,
            seed=seed,
            start_char=None,
            oov_char=None,
            index_from=0,
        )
        word_index = imdb.get_word_index()
    except Exception as error:  # the download raises Exception for every network failure
        raise DataError(
            f"keras.datasets.imdb could not be loaded ({error}). Without a network, use the "
            f'aclImdb source: load_imdb(source="aclImdb", path=...) or set {DATA_VARIABLE}.'
        ) from None
    reviews = [[0, *review] for review in (*x_train, *x_test)]  # 0: the start token's slot
    sequences = TokenSequences.from_lists(reviews)
    ranks = sequences.flat
    words = [""] * int(max(word_index.values(), default=0))
    for word, rank in word_index.items():
        words[rank - 1] = word
    train_tokens = int(sequences.lengths[: len(x_train)].sum())
    token_documents = np.repeat(np.arange(len(reviews)), sequences.lengths)
    is_training_token = (np.arange(len(ranks)) < train_tokens) & (ranks > 0)
    counts, documents, _ = _rank_words(ranks, is_training_token, token_documents, len(words) + 1)
    corpus = _Corpus(
        ranks=ranks,
        starts=sequences.starts,
        lengths=sequences.lengths.astype(np.int32),
        labels=np.concatenate([y_train, y_test]).astype(np.int8),
        train_reviews=len(x_train),
        words=words,
        word_counts=counts[1:].astype(np.int64),
        document_counts=documents[1:].astype(np.int64),
        shuffled=True,
    )
    source = SourceInfo(
        kind="keras",
        path=None,
        fingerprint=hashlib.sha256(json.dumps(sorted(word_index.items())).encode()).hexdigest(),
        from_cache=False,
        load_seconds=time.perf_counter() - started,
    )
    return corpus, source


def load_imdb(
    num_words: int | None = 10000,
    index_from: int = 3,
    source: Source = "aclImdb",
    path: str | os.PathLike | None = None,
    seed: int | None = 113,
) -> ImdbData:
    """Load the IMDB reviews, encoded as `keras.datasets.imdb.load_data` encodes them.

    Args:
        num_words: keep the `num_words` lowest ids (words ranked by training frequency,
            shifted by `index_from`); higher ids become `<UNK>` (2). None keeps every word.
        index_from: the id of the most frequent word is index_from + 1; ids 0-3 are
            `<PAD>`, `<START>`, `<UNK>`, `<UNUSED>`.
        source: "aclImdb" reads the Large Movie Review Dataset from `path`, else from the
            `RNNKIT_DATA` environment variable, else downloads the official archive once
            (`download_imdb`). "keras" uses `keras.datasets.imdb` (needs a network the
            first time; no texts, ratings or review ids).
        path: the aclImdb archive (`aclImdb_v1.tar.gz` or a tar of the same layout) or the
            unpacked folder.
        seed: each split is shuffled with `np.random.RandomState(seed)`, as Keras does; None
            keeps file order (by label, then review id).

    Returns:
        An `ImdbData` with `train` and `test` (`sequences`, `labels`, `texts`, `ratings`,
        `review_ids`), the `vocab` and where it came from (`source`).

    Raises:
        DataError: the source is missing, of the wrong layout, damaged or incomplete; the
            message says which file and how to fix it.
        ValueError: an argument is out of range.
    """
    check_encoding(num_words, index_from)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be None or a whole number of 0 or more, not {seed!r}")
    if source == "aclImdb":
        corpus, source_info = _load_aclimdb_corpus(resolve_source(path))
    elif source == "keras":
        if path is not None:
            raise ValueError('path is for source="aclImdb"; source="keras" downloads its own')
        corpus, source_info = _load_keras_corpus(113 if seed is None else seed)
    else:
        raise ValueError(f'source must be "aclImdb" or "keras", not {source!r}')
    return _assemble(corpus, num_words, index_from, seed, source_info)
