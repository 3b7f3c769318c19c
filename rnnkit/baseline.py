"""A non-neural baseline: TF-IDF + logistic regression on the same training rows as an RNN, the
score an RNN has to beat, cached on disk (`RNNKIT_CACHE_DIR/baselines/`).

scikit-learn is imported by the function that fits, so importing this module is quick.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnkit.config import TrainConfig, TrainingConfig
from rnnkit.data import ImdbData
from rnnkit.runs import write_json_atomically
from rnnkit.settings import get_settings
from rnnkit.vocabulary import tokenize

BASELINE_VERSION = 1  # bump when the baseline's recipe changes: cached results are recomputed
BASELINE_FOLDER = "baselines"


def _baseline_path(data: ImdbData, validation_split: float, seed: int, texts: bool) -> Path:
    # Token ids depend on num_words (the fingerprint leaves it out); texts do not.
    ids_part = "" if texts else f"-ids{data.num_words}"
    name = f"{data.fingerprint[:20]}-{validation_split}-{seed}{ids_part}.json"
    return get_settings().cache_dir / BASELINE_FOLDER / name


def baseline_path(data: ImdbData, validation_split: float, seed: int) -> Path:
    """Where `tfidf_baseline(data, validation_split, seed)` keeps its result on disk."""
    has_texts = data.train.texts is not None and data.test.texts is not None
    return _baseline_path(data, validation_split, seed, has_texts)


def cached_baseline(data: ImdbData, validation_split: float, seed: int) -> dict | None:
    """The baseline's result if it is on disk already (no fitting), else None: whether
    `tfidf_baseline` would answer at once or fit for most of a minute."""
    return _read_baseline(baseline_path(data, validation_split, seed))


def _read_baseline(path: Path) -> dict | None:
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or result.get("version") != BASELINE_VERSION:
        return None
    return result


def _fit_baseline(data: ImdbData, training: TrainingConfig) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from rnnkit.training import split_rows

    started = time.perf_counter()
    validation_rows, training_rows = split_rows(TrainConfig(training=training), len(data.train))
    if data.train.texts is not None and data.test.texts is not None:
        train_documents: Sequence[str] = data.train.texts
        test_documents: Sequence[str] = data.test.texts
        tokenizer = tokenize
    else:  # the keras source has no texts: its token ids stand in for the words
        train_documents = [" ".join(map(str, ids.tolist())) for ids in data.train.sequences]
        test_documents = [" ".join(map(str, ids.tolist())) for ids in data.test.sequences]
        tokenizer = str.split
    vectorizer = TfidfVectorizer(
        tokenizer=tokenizer,
        lowercase=False,
        token_pattern=None,
        ngram_range=(1, 2),
        min_df=2,
        max_features=100_000,
        sublinear_tf=True,
        dtype=np.float32,
    )
    features = vectorizer.fit_transform([train_documents[int(row)] for row in training_rows])
    classifier = LogisticRegression(C=4.0, solver="liblinear", random_state=training.seed)
    classifier.fit(features, data.train.labels[training_rows])

    def accuracy(documents: Sequence[str], labels: np.ndarray) -> float:
        predicted = classifier.predict(vectorizer.transform(documents))
        return float(np.mean(predicted == labels))

    validation_documents = [train_documents[int(row)] for row in validation_rows]
    return {
        "version": BASELINE_VERSION,
        "val_accuracy": accuracy(validation_documents, data.train.labels[validation_rows]),
        "test_accuracy": accuracy(test_documents, data.test.labels),
        "seconds": time.perf_counter() - started,
        "features": len(vectorizer.vocabulary_),
        "training_reviews": len(training_rows),
        "validation_reviews": len(validation_rows),
        "test_reviews": len(data.test),
        "input": "texts" if tokenizer is tokenize else "token ids",
    }


def tfidf_baseline(
    data: ImdbData, validation_split: float = 0.2, seed: int = 0, cache: bool = True
) -> dict[str, float | int | str | bool]:
    """TF-IDF + logistic regression on the training rows an RNN of these settings trains on.

    Unigrams and bigrams of rnnkit's own tokens (`tokenize`), seen in at least 2 training
    reviews, the 100,000 most frequent, sublinear term frequency; a logistic regression with
    C = 4 (liblinear). Trained on the same rows as `rnnkit.training.prepare_data` with this
    validation_split and seed, scored on its validation rows and the whole test split. A
    source without texts (keras) uses the token ids as words.

    Args:
        data: the loaded reviews.
        validation_split: the share of training reviews held out (training.validation_split).
        seed: the seed of the held-out rows (training.seed).
        cache: read and write the result in the cache folder
            (`RNNKIT_CACHE_DIR/baselines/`), so a later call is instant.

    Returns:
        {"val_accuracy", "test_accuracy", "seconds" (to fit and score, when computed),
        "features", "training_reviews", "validation_reviews", "test_reviews", "input"
        ("texts" or "token ids"), "version", "from_cache"}.
    """
    if not isinstance(data, ImdbData):
        raise ValueError(f"data must be an ImdbData (load_imdb()), not {data!r}")
    training = TrainingConfig(validation_split=validation_split, seed=seed)  # checks both
    has_texts = data.train.texts is not None and data.test.texts is not None
    path = _baseline_path(data, training.validation_split, training.seed, has_texts)
    if not cache:
        return {**_fit_baseline(data, training), "from_cache": False}
    cached = _read_baseline(path)
    if cached is not None:
        return {**cached, "from_cache": True}
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):  # one process computes; the others wait and read
        cached = _read_baseline(path)
        if cached is not None:
            return {**cached, "from_cache": True}
        result = _fit_baseline(data, training)
        write_json_atomically(path, result)
    return {**result, "from_cache": False}
