"""The TF-IDF + logistic regression baseline: what it learns of the tiny corpus, the rows it
trains on, and its cache on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit import load_imdb
from rnnkit.baseline import baseline_path, tfidf_baseline
from rnnkit.training import split_rows
from tests.helpers import tiny_masked_config


def test_tfidf_baseline_learns_the_tiny_corpus_and_caches_its_result(data, tmp_path, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    first = tfidf_baseline(data, validation_split=0.2, seed=0)
    assert first["test_accuracy"] > 0.8  # tiny_reviews' sentiment words are disjoint
    assert first["training_reviews"] == 64 and first["validation_reviews"] == 16
    assert first["test_reviews"] == 20 and first["input"] == "texts"
    assert first["features"] > 0 and not first["from_cache"]
    path = tmp_path / "cache" / "baselines" / f"{data.fingerprint[:20]}-0.2-0.json"
    assert baseline_path(data, validation_split=0.2, seed=0) == path
    assert json.loads(path.read_text())["test_accuracy"] == first["test_accuracy"]

    def refuse(*args, **kwargs):
        raise AssertionError("the cached result should have been used")

    monkeypatch.setattr(LogisticRegression, "fit", refuse)
    second = tfidf_baseline(data, validation_split=0.2, seed=0)
    assert second["from_cache"]
    assert {key: value for key, value in second.items() if key != "from_cache"} == {
        key: value for key, value in first.items() if key != "from_cache"
    }
    with pytest.raises(AssertionError, match="cached"):  # another split is computed anew
        tfidf_baseline(data, validation_split=0.25, seed=0)


def test_tfidf_baseline_trains_on_the_rows_training_uses(data, tmp_path, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    seen = {}
    fit = LogisticRegression.fit

    def recording_fit(self, features, labels):
        seen["labels"] = np.asarray(labels)
        return fit(self, features, labels)

    monkeypatch.setattr(LogisticRegression, "fit", recording_fit)
    tfidf_baseline(data, validation_split=0.25, seed=3, cache=False)
    config = tiny_masked_config(**{"training.validation_split": "0.25", "training.seed": "3"})
    _, training_rows = split_rows(config, len(data.train))
    np.testing.assert_array_equal(seen["labels"], data.train.labels[training_rows])
    assert not (tmp_path / "cache" / "baselines").exists()  # cache=False writes nothing


@pytest.mark.real_data
def test_tfidf_baseline_on_the_real_reviews(real_data_path, real_cache, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE_DIR", str(real_cache))
    data = load_imdb(num_words=10000, path=real_data_path)
    result = tfidf_baseline(data)
    assert result["training_reviews"] == 20000 and result["validation_reviews"] == 5000
    assert 0.85 < result["val_accuracy"] < 0.93
    assert 0.85 < result["test_accuracy"] < 0.93
    assert result["features"] == 100_000
