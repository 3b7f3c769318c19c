"""The IMDB reviews: sources, tokenizing, vocabulary, encoding and the on-disk cache.

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
its labeled part, or the unpacked folder) or Keras' own download ("keras"). Parsing aclImdb takes
seconds; the parsed result is cached on disk for every later process and every `num_words`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import count
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING, Literal

import numpy as np
from filelock import FileLock

from rnnkit.sequences import TokenSequences
from rnnkit.settings import DATA_VARIABLE, get_settings

if TYPE_CHECKING:
    import pandas as pd

PAD_ID, START_ID, OOV_ID, UNUSED_ID = 0, 1, 2, 3
SPECIAL_TOKENS = {PAD_ID: "<PAD>", START_ID: "<START>", OOV_ID: "<UNK>", UNUSED_ID: "<UNUSED>"}
LABEL_NAMES = ("neg", "pos")  # label 0 is a negative review, 1 a positive one
SPLITS = ("train", "test")

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
OFFICIAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"

# Bump when the tokens a text gives change: cached corpora made by another version are rebuilt.
TOKENIZER_VERSION = 1
CACHE_FORMAT = 1

Source = Literal["aclImdb", "keras"]


class DataError(Exception):
    """The data could not be loaded; the message names the file and the fix."""


class DataWarning(UserWarning):
    """The data loaded, but something in it was repaired or skipped."""


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
_DOCUMENT_SEPARATOR = b"\x00"


def _unicode_tokens(text: str) -> list[str]:
    text = _CURLY_APOSTROPHES.sub("'", _BREAK_TEXT.sub(" ", text.lower()))
    return _WORD_TEXT.findall(text)


def _tokenize_documents(documents: Sequence[bytes]) -> tuple[list[bytes], list[int]]:
    """Tokens of many UTF-8 documents in one list, each document led by the separator.

    Returns:
        The tokens (bytes), and the documents' indices in the order their tokens appear there.
    """
    ascii_order = [index for index, document in enumerate(documents) if document.isascii()]
    other_order = [index for index, document in enumerate(documents) if not document.isascii()]
    blob = b"".join(
        b" \x00 " + documents[index].replace(_DOCUMENT_SEPARATOR, b" ") for index in ascii_order
    ).lower()
    blob = _BREAK_BYTES.sub(b" ", blob).translate(_ASCII_WORD_BYTES)
    tokens = _LONE_APOSTROPHE_BYTES.sub(b" ", blob).split()
    for index in other_order:
        tokens.append(_DOCUMENT_SEPARATOR)
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
    tokens, _ = _tokenize_documents([text.encode()])
    return [token.decode() for token in tokens[1:]]


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
        _check_encoding(num_words, index_from)
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


def _check_encoding(num_words: int | None, index_from: int) -> None:
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
        meta = {
            **meta,
            "train_reviews": self.train_reviews,
            "reviews": len(self.starts),
            "tokens": len(self.ranks),
            "replaced_reviews": self.replaced_reviews,
            "shuffled": self.shuffled,
            "arrays": [name for name in self._ARRAYS if getattr(self, name) is not None],
        }
        # meta.json last: a folder without it was never finished.
        (folder / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> tuple[_Corpus, dict]:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
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
    tokens, order = _tokenize_documents(documents)
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
    package_root = str(Path(__file__).resolve().parents[1])
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [package_root, *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    try:
        worker = subprocess.Popen(
            [sys.executable, "-c", "from rnnkit.data import _encode_worker; _encode_worker()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=environment,
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


def _build_corpus(reviews: list[_RawReview]) -> _Corpus:
    """Tokenize, count and rank `reviews` (already in file order)."""
    vocabulary_bytes, token_ids, token_order = _encode_in_parallel(
        [review.data for review in reviews]
    )  # token_ids: (tokens,) provisional word ids
    separator_id = vocabulary_bytes.index(_DOCUMENT_SEPARATOR)

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


# --- reading aclImdb --------------------------------------------------------------------------

_REVIEW_PATH = re.compile(r"(?:^|/)(train|test)/(pos|neg)/([^/]+)$")
_REVIEW_NAME = re.compile(r"(\d+)_(\d+)\.txt")
_LAYOUT_HINT = (
    "expected the aclImdb layout: aclImdb/{train,test}/{pos,neg}/ID_RATING.txt, as in the "
    f"official aclImdb_v1.tar.gz ({OFFICIAL_URL})"
)


@dataclass
class _RawReview:
    split: str
    label: int
    review_id: int
    rating: int
    data: bytes  # valid UTF-8
    replaced: bool  # held bytes that were not UTF-8, now U+FFFD


class _ReviewCollector:
    """Turns (path inside the source, bytes) pairs into reviews, noting what it skips."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.reviews: list[_RawReview] = []
        self.misnamed: list[str] = []
        self.first_replaced: str | None = None

    def add(self, name: str, read: Callable[[], bytes]) -> None:
        match = _REVIEW_PATH.search(name)
        if not match:
            return  # urls_*.txt, the unlabeled "unsup" reviews, .feat files, folders
        split, label_name, file_name = match.groups()
        name_match = _REVIEW_NAME.fullmatch(file_name)
        if not name_match:
            self.misnamed.append(name)
            return
        data = read()
        replaced = False
        if not data.isascii():
            try:
                data.decode()
            except UnicodeDecodeError:
                data = data.decode(errors="replace").encode()
                replaced = True
                self.first_replaced = self.first_replaced or name
        self.reviews.append(
            _RawReview(
                split=split,
                label=LABEL_NAMES.index(label_name),
                review_id=int(name_match.group(1)),
                rating=int(name_match.group(2)),
                data=data,
                replaced=replaced,
            )
        )

    def finish(self) -> list[_RawReview]:
        """The reviews in file order; raises DataError if a split or label has none."""
        if not self.reviews:
            raise DataError(f"No reviews found in {self.source}: {_LAYOUT_HINT}.")
        found = {(split, label): 0 for split in SPLITS for label in range(2)}
        for review in self.reviews:
            found[review.split, review.label] += 1
        empty = [f"{split}/{LABEL_NAMES[label]}" for (split, label), n in found.items() if not n]
        if empty:
            counts = ", ".join(f"{s}/{LABEL_NAMES[label]}: {n}" for (s, label), n in found.items())
            raise DataError(
                f"{self.source} has no reviews in {', '.join(empty)} ({counts}): the copy is "
                f"incomplete. Use the full aclImdb_v1.tar.gz or its unpacked folder."
            )
        if self.misnamed:
            warnings.warn(
                f"Skipped {len(self.misnamed)} file(s) in {self.source} not named ID_RATING.txt "
                f"(first: {self.misnamed[0]}).",
                DataWarning,
                stacklevel=3,
            )
        self.reviews.sort(key=lambda r: (SPLITS.index(r.split), r.label, r.review_id))
        return self.reviews


def _read_archive(path: Path) -> list[_RawReview]:
    collector = _ReviewCollector(path)
    try:
        # Streaming mode reads the archive once, front to back, whatever its compression.
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                if member.isfile():
                    collector.add(member.name, archive.extractfile(member).read)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise DataError(
            f"The archive {path} is damaged or incomplete ({type(error).__name__}: {error}). "
            f"Download aclImdb_v1.tar.gz again ({OFFICIAL_URL}, sha256 {OFFICIAL_SHA256[:12]}...) "
            f"or point {DATA_VARIABLE} at an unpacked aclImdb folder."
        ) from None
    return collector.finish()


def _folder_root(path: Path) -> Path:
    for root in (path, path / "aclImdb"):
        if (root / "train").is_dir() and (root / "test").is_dir():
            return root
    raise DataError(
        f"The folder {path} does not have the aclImdb layout: it has no train/ and test/ folders "
        f"(nor aclImdb/train and aclImdb/test); {_LAYOUT_HINT}."
    )


def _review_files(root: Path) -> Iterator[tuple[str, Path]]:
    for split in SPLITS:
        for label_name in LABEL_NAMES:
            folder = root / split / label_name
            if folder.is_dir():
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.is_file():
                            yield f"{split}/{label_name}/{entry.name}", Path(entry.path)


def _read_folder(path: Path) -> list[_RawReview]:
    collector = _ReviewCollector(path)
    for name, file_path in _review_files(_folder_root(path)):
        try:
            collector.add(name, file_path.read_bytes)
        except OSError as error:
            raise DataError(f"Could not read {file_path}: {error}.") from None
    return collector.finish()


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        # Names, sizes and modification times: a changed or replaced review changes it.
        for name, file_path in sorted(_review_files(_folder_root(path))):
            stat = file_path.stat()
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- finding the source and the cache ---------------------------------------------------------


# (bytes received so far, bytes in all, or None where the server does not say)
DownloadProgress = Callable[[int, int | None], None]
_DOWNLOAD_BLOCK = 1 << 18  # 256 KiB: about 340 progress reports for the official 84 MB
_DOWNLOAD_TIMEOUT = 60  # seconds a stalled connection may wait before the download fails


def download_path(url: str | None = None) -> Path:
    """Where the archive downloaded from `url` is kept: `RNNKIT_CACHE_DIR/downloads`.

    Args:
        url: the archive's address; default `RNNKIT_DATA_URL`, else `OFFICIAL_URL`.

    Returns:
        The file's path (named after the address, so two addresses never share a file); it
        exists once a download has finished.
    """
    url = url or get_settings().data_url or OFFICIAL_URL
    name = Path(urllib.parse.urlsplit(url).path).name or "aclImdb.tar.gz"
    key = hashlib.sha256(url.encode()).hexdigest()[:10]
    return get_settings().cache_dir / "downloads" / f"{key}-{name}"


def _fetch(url: str, destination: Path, on_progress: DownloadProgress | None) -> None:
    with (
        urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as response,
        open(destination, "wb") as file,
    ):
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        if on_progress:
            on_progress(done, total)
        while block := response.read(_DOWNLOAD_BLOCK):
            file.write(block)
            done += len(block)
            if on_progress:
                on_progress(done, total)
    if total is not None and done != total:
        raise ValueError(f"the connection closed after {done:,} of {total:,} bytes")


def _check_download(url: str, path: Path) -> None:
    """Raise ValueError unless `path` is the whole archive: the official file by its sha256,
    any other (no checksum known) by reading it through as a tar archive."""
    if url == OFFICIAL_URL:
        digest = _fingerprint(path)
        if digest != OFFICIAL_SHA256:
            raise ValueError(
                f"its sha256 is {digest[:12]}..., not the official {OFFICIAL_SHA256[:12]}...: "
                f"the file was damaged on the way"
            )
        return
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for _ in archive:  # stream mode reads every member's bytes to reach the next
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise ValueError(
            f"it is not a complete tar archive ({type(error).__name__}: {error})"
        ) from None


def download_imdb(url: str | None = None, on_progress: DownloadProgress | None = None) -> Path:
    """Download the aclImdb archive once; later calls, from any process, return the kept copy.

    The bytes go to a hidden partial file beside `download_path(url)`, which is checked and
    then renamed into place: a failed or interrupted download leaves no archive behind, and a
    partial file left by a killed process is removed by the next download.

    Args:
        url: the archive's address; default `RNNKIT_DATA_URL`, else `OFFICIAL_URL`. Only the
            official file has a known sha256; any other is checked by reading it as a tar.
        on_progress: called with (bytes received, bytes in all or None) as the bytes arrive,
            first with 0; not called when the archive is there already.

    Returns:
        The archive's path in the cache folder.

    Raises:
        DataError: the download failed or is damaged; the message says why and how to point
            rnnkit at a local copy instead.
    """
    url = url or get_settings().data_url or OFFICIAL_URL
    target = download_path(url)
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # One process downloads; the others wait for it and then find the file.
        with FileLock(f"{target}.lock"):
            if target.is_file():
                return target
            for stale in target.parent.glob(f".partial-{target.name}-*"):
                stale.unlink(missing_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".partial-{target.name}-", dir=target.parent)
            os.close(handle)
            partial = Path(name)
            try:
                _fetch(url, partial, on_progress)
                _check_download(url, partial)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise DataError(
            f"No local copy of the IMDB reviews was given and downloading {url} failed "
            f"({error}). Point rnnkit at a copy you have: set {DATA_VARIABLE}=/path/to/"
            f"aclImdb_v1.tar.gz (or an unpacked aclImdb folder), or call "
            f"load_imdb(path=...)."
        ) from None
    return target


def _resolve_path(path: str | os.PathLike | None) -> Path:
    given_by = "the path argument"
    if path is None:
        path = get_settings().data_path
        given_by = f"{DATA_VARIABLE}"
        if path is None:
            return download_imdb()
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(
            f"No IMDB data at {path} (given by {given_by}): the path does not exist. Give the "
            f"aclImdb_v1.tar.gz archive or its unpacked aclImdb folder, e.g. "
            f"{DATA_VARIABLE}=/data/aclImdb_v1.tar.gz."
        )
    return path


def _cache_folder(fingerprint: str) -> Path:
    key = hashlib.sha256(f"{fingerprint}:{TOKENIZER_VERSION}:{CACHE_FORMAT}".encode()).hexdigest()
    return get_settings().cache_dir / "imdb" / key[:20]


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
    fingerprint = _fingerprint(path)
    folder = _cache_folder(fingerprint)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # One process parses; others wait for it and then read its cache.
    with FileLock(str(folder) + ".lock"):
        corpus = None
        if (folder / "meta.json").exists():
            try:
                corpus, _ = _Corpus.load(folder)
            except (OSError, ValueError, KeyError, TypeError) as error:
                warnings.warn(
                    f"The cached reviews in {folder} are damaged ({error}); parsing {path} again.",
                    DataWarning,
                    stacklevel=3,
                )
                shutil.rmtree(folder, ignore_errors=True)
        from_cache = corpus is not None
        if corpus is None:
            reader = _read_folder if path.is_dir() else _read_archive
            corpus = _build_corpus(reader(path))
            _write_cache(
                corpus,
                folder,
                {
                    "format": CACHE_FORMAT,
                    "tokenizer": TOKENIZER_VERSION,
                    "fingerprint": fingerprint,
                    "source_path": str(path.resolve()),
                },
            )
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
    _check_encoding(num_words, index_from)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be None or a whole number of 0 or more, not {seed!r}")
    if source == "aclImdb":
        corpus, source_info = _load_aclimdb_corpus(_resolve_path(path))
    elif source == "keras":
        if path is not None:
            raise ValueError('path is for source="aclImdb"; source="keras" downloads its own')
        corpus, source_info = _load_keras_corpus(113 if seed is None else seed)
    else:
        raise ValueError(f'source must be "aclImdb" or "keras", not {source!r}')
    return _assemble(corpus, num_words, index_from, seed, source_info)
